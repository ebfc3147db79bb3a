/*
 * test_ledger.c - the decision ledger (sinks/ledger.c) and the dispatcher
 * with it: decision identity, what a reopened ledger recovers (the sticky
 * decision, deliveries per sink, Flagger runs), a new judgement or release
 * ending a decision, ALERT repeats told apart by time, a line torn by a
 * crash, and a dispatcher "restarted" over the same ledger that delivers a
 * decided-but-undelivered ROLLBACK once and a delivered one never again.
 */
#include "sink_test.h"

#include <fcntl.h>
#include <stdarg.h>

#include "canaryd/coord.h"
#include "canaryd/ledger.h"
#include "http_receiver.c"
#include "live_helpers.h"
#include "redis_server.h"

TestSuite(ledger, .init = st_setup, .fini = st_teardown, .timeout = 60);

static cd_ledger_t *open_ledger(void)
{
    char err[512];
    cd_ledger_t *l = cd_ledger_open(st_path("v.log.ledger"), err, sizeof(err));
    cr_assert_not_null(l, "%s", err);
    return l;
}

static cd_verdict_t with_service(cd_verdict_t v)
{
    v.service = "checkout";
    return v;
}

Test(ledger, identity_is_what_not_when)
{
    char id[CD_DECISION_ID_MAX];
    bool once;
    cd_verdict_t rb = with_service(st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 1));
    cr_assert(cd_decision_id(&rb, id, sizeof(id), &once));
    cr_expect_str_eq(id, "checkout:2.5.0:ROLLBACK:fatal");
    cr_expect(once);
    rb.time_ms += 60000; /* the same decision, decided again later */
    char id2[CD_DECISION_ID_MAX];
    cr_assert(cd_decision_id(&rb, id2, sizeof(id2), &once));
    cr_expect_str_eq(id2, id);
    cd_verdict_t pr = st_verdict(CD_VERDICT_PROMOTE, NULL, CD_ACTION_ROLLBACK, 1);
    cr_assert(cd_decision_id(&pr, id, sizeof(id), &once));
    cr_expect_str_eq(id, "-:2.5.0:PROMOTE:-");
    cr_expect(once);
    cd_verdict_t al = with_service(st_verdict(CD_VERDICT_ALERT, "errors", CD_ACTION_ALERT, 1));
    cr_assert(cd_decision_id(&al, id, sizeof(id), &once));
    cr_expect_str_eq(id, "checkout:2.5.0:ALERT:errors");
    cr_expect_not(once);
    rb.dry_run = true;
    cr_assert(cd_decision_id(&rb, id, sizeof(id), &once));
    cr_expect_str_eq(id, "checkout:2.5.0:ROLLBACK:fatal:dry");
    cr_expect_not(once);
    cd_verdict_t h = st_verdict(CD_VERDICT_HEALTHY, NULL, CD_ACTION_ROLLBACK, 1);
    cr_expect_not(cd_decision_id(&h, id, sizeof(id), &once));
    cd_verdict_t s = st_state("fatal", CD_ACTION_ROLLBACK, CD_STATE_PENDING, CD_STATE_FIRING, 1);
    cr_expect_not(cd_decision_id(&s, id, sizeof(id), &once));
}

static char got_json[4][4200];
static int ngot;
static void collect(const char *json, void *opaque)
{
    (void)opaque;
    if (ngot < 4) snprintf(got_json[ngot], sizeof(got_json[0]), "%s\n", json);
    ngot++;
}

static char runs[256];
static void collect_run(const char *key, const char *sum, void *opaque)
{
    (void)opaque;
    size_t n = strlen(runs);
    snprintf(runs + n, sizeof(runs) - n, "%s=%s;", key, sum);
}

/* Everything written is what a reopened ledger knows. */
Test(ledger, reopened_ledger_recovers_decision_deliveries_and_runs)
{
    cd_ledger_t *l = open_ledger();
    cd_verdict_t al = with_service(st_verdict(CD_VERDICT_ALERT, "errors", CD_ACTION_ALERT, 5));
    cd_verdict_t rb = with_service(st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 9));
    cr_assert_eq(cd_ledger_decided(l, &al, st_json(&al), 1000), 0);
    cr_assert_eq(cd_ledger_decided(l, &rb, st_json(&rb), 2000), 0);
    cr_assert_eq(cd_ledger_decided(l, &rb, st_json(&rb), 3000), 0); /* known: no line */
    cr_assert_eq(cd_ledger_delivered(l, "checkout:2.5.0:ROLLBACK:fatal", true, rb.time_ms, "chat"),
                 0);
    cr_assert_eq(cd_ledger_flagger(l, "prod/checkout", "abc"), 0);
    cr_assert_eq(cd_ledger_flagger(l, "prod/checkout", "abc"), 0); /* same: no line */
    cd_ledger_close(l);
    char *text = st_read(st_path("v.log.ledger"));
    cr_expect_eq(st_count_lines(text), 4, "%s", text);
    cr_log_info("ledger of 2 decisions, 1 delivery, 1 Flagger run: %zu bytes", strlen(text));
    free(text);

    l = open_ledger();
    cr_expect_eq(cd_ledger_skipped(l), 0);
    cd_ledger_decision_t d;
    cr_assert(cd_ledger_decision(l, &d));
    cr_expect_eq(d.verdict, CD_VERDICT_ROLLBACK);
    cr_expect_str_eq(d.release, "2.5.0");
    cr_expect_str_eq(d.service, "checkout");
    cr_expect_str_eq(d.rule, "fatal");
    cr_expect_eq(d.time_ms, rb.time_ms);
    cr_expect_eq(d.at_ms, 2000);
    const char *id = "checkout:2.5.0:ROLLBACK:fatal";
    cr_expect_eq(cd_ledger_sink_state(l, id, true, rb.time_ms + 5000, "chat"), CD_LEDGER_DELIVERED);
    cr_expect_eq(cd_ledger_sink_state(l, id, true, rb.time_ms, "audit"), CD_LEDGER_NEW);
    ngot = 0;
    cr_expect_eq(cd_ledger_each_decided(l, collect, NULL), 2);
    cr_expect_str_eq(got_json[0], st_json(&al));
    cr_expect_str_eq(got_json[1], st_json(&rb));
    runs[0] = '\0';
    cd_ledger_each_flagger(l, collect_run, NULL);
    cr_expect_str_eq(runs, "prod/checkout=abc;");
    cd_ledger_close(l);
}

/* A new judgement (POST /api/v1/release, a new Flagger checksum) ends the
 * decision and its deliveries: the same release judged again is notified
 * again. A decision of another release replaces the current one's. */
Test(ledger, judgement_and_new_release_end_a_decision)
{
    cd_ledger_t *l = open_ledger();
    cd_verdict_t rb = st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 9);
    cd_ledger_decided(l, &rb, st_json(&rb), 1000);
    cd_ledger_delivered(l, "-:2.5.0:ROLLBACK:fatal", true, rb.time_ms, "chat");
    cd_ledger_judgement(l, "2.5.0", 5000);
    cd_ledger_close(l);
    l = open_ledger();
    cd_ledger_decision_t d;
    cr_expect_not(cd_ledger_decision(l, &d));
    cr_expect_eq(cd_ledger_sink_state(l, "-:2.5.0:ROLLBACK:fatal", true, 0, "chat"),
                 CD_LEDGER_NEW);
    ngot = 0;
    cr_expect_eq(cd_ledger_each_decided(l, collect, NULL), 0);
    /* PROMOTE of 2.5.0, then a decision of 2.6.0: 2.5.0's is not current */
    cd_verdict_t pr = st_verdict(CD_VERDICT_PROMOTE, NULL, CD_ACTION_ROLLBACK, 20);
    cd_ledger_decided(l, &pr, st_json(&pr), 6000);
    cr_assert(cd_ledger_decision(l, &d));
    cr_expect_eq(d.verdict, CD_VERDICT_PROMOTE);
    cd_verdict_t al = st_verdict(CD_VERDICT_ALERT, "errors", CD_ACTION_ALERT, 30);
    al.release = "2.6.0";
    cd_ledger_decided(l, &al, st_json(&al), 7000);
    cd_ledger_close(l);
    l = open_ledger();
    cr_expect_not(cd_ledger_decision(l, &d));
    ngot = 0;
    cr_expect_eq(cd_ledger_each_decided(l, collect, NULL), 1);
    cr_expect_str_eq(got_json[0], st_json(&al));
    cd_ledger_close(l);
}

/* ALERT repeats are notifications of their own: delivered at +5 s means a
 * copy of +5 s (or earlier) is delivered, one of +305 s is not. */
Test(ledger, alert_repeats_told_apart_by_time)
{
    cd_ledger_t *l = open_ledger();
    cd_verdict_t al = st_verdict(CD_VERDICT_ALERT, "errors", CD_ACTION_ALERT, 5);
    const char *id = "-:2.5.0:ALERT:errors";
    cd_ledger_decided(l, &al, st_json(&al), 1000);
    cd_ledger_delivered(l, id, false, al.time_ms, "chat");
    cd_ledger_close(l);
    l = open_ledger();
    cr_expect_eq(cd_ledger_sink_state(l, id, false, al.time_ms, "chat"), CD_LEDGER_DELIVERED);
    cr_expect_eq(cd_ledger_sink_state(l, id, false, al.time_ms - 1000, "chat"),
                 CD_LEDGER_DELIVERED);
    cr_expect_eq(cd_ledger_sink_state(l, id, false, al.time_ms + 300000, "chat"), CD_LEDGER_NEW);
    cd_ledger_sink_queued(l, id, false, al.time_ms + 300000, "chat");
    cr_expect_eq(cd_ledger_sink_state(l, id, false, al.time_ms + 300000, "chat"),
                 CD_LEDGER_QUEUED);
    cd_ledger_sink_failed(l, id, false, "chat");
    cr_expect_eq(cd_ledger_sink_state(l, id, false, al.time_ms + 300000, "chat"), CD_LEDGER_NEW);
    cd_ledger_close(l);
}

/* A line cut short by a crash is skipped (and said); the rest counts. */
Test(ledger, torn_last_line_is_skipped)
{
    cd_ledger_t *l = open_ledger();
    cd_verdict_t rb = st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 9);
    cd_ledger_decided(l, &rb, st_json(&rb), 1000);
    cd_ledger_close(l);
    FILE *f = fopen(st_path("v.log.ledger"), "a");
    fputs("{\"t\":\"delivered\",\"id\":\"-:2.5.0:ROLL", f);
    fclose(f);
    l = open_ledger();
    cr_expect_eq(cd_ledger_skipped(l), 1);
    cd_ledger_decision_t d;
    cr_expect(cd_ledger_decision(l, &d));
    cr_expect_eq(cd_ledger_sink_state(l, "-:2.5.0:ROLLBACK:fatal", true, 0, "chat"),
                 CD_LEDGER_NEW);
    cd_ledger_close(l);
    char *log = st_log_text();
    cr_expect(strstr(log, "line 2 skipped (cut short, by a crash while it was written)") != NULL,
              "%s", log);
    free(log);
}

/* A dispatcher with the ledger, its webhook's receiver down: the ROLLBACK
 * reaches the log sink, not the webhook, and the process "dies" (destroyed
 * with the delivery abandoned). A second dispatcher over the same ledger
 * (the restart) offers it again: the webhook gets it once the receiver is
 * up, the log sink not again; the rebuild's copy of it goes nowhere. */
Test(ledger, restart_delivers_undelivered_once_and_delivered_never)
{
    rx_t *rx = rx_start(0);
    cr_assert_not_null(rx);
    rx_pause(rx);
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"drain_timeout\":\"0s\",\"outputs\":[{\"type\":\"log\",\"name\":\"audit\","
             "\"path\":\"%s\"},{\"type\":\"webhook\",\"name\":\"chat\",\"format\":\"generic\","
             "\"url\":\"http://127.0.0.1:%u/hook\",\"rate_limit\":0,"
             "\"retry\":{\"base\":\"50ms\",\"cap\":\"200ms\",\"max_attempts\":1000}}]}",
             st_path("v.log"), rx_port(rx));
    cd_verdict_t rb = with_service(st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 9));
    char err[256];

    cd_ledger_t *l = open_ledger();
    cd_dispatcher_t *d = st_dispatcher(json, false);
    cd_dispatcher_set_ledger(d, l);
    cr_assert_eq(cd_dispatcher_start(d, err, sizeof(err)), 0, "%s", err);
    cr_assert(cd_dispatcher_submit(d, &rb));
    int64_t t0 = st_now_ms();
    while ((st_stats(d, 0).delivered < 1 || st_stats(d, 1).retries < 1) &&
           st_now_ms() - t0 < 20000)
        usleep(10 * 1000);
    cr_assert_eq(st_stats(d, 0).delivered, 1);
    cr_assert_eq(st_stats(d, 1).delivered, 0);
    cd_dispatcher_drain(d, 0);
    cd_dispatcher_destroy(d); /* the crash: the webhook's delivery is abandoned */
    cd_ledger_close(l);

    cr_assert(rx_resume(rx));
    l = open_ledger();
    d = st_dispatcher(json, false);
    cd_dispatcher_set_ledger(d, l);
    cr_assert_eq(cd_dispatcher_start(d, err, sizeof(err)), 0, "%s", err);
    cr_assert(rx_wait(rx, 1, 20000));
    cd_verdict_t again = rb; /* the rebuild decides it again, while catching up */
    again.catchup = true;
    cr_assert(cd_dispatcher_submit(d, &again));
    cr_assert_eq(cd_dispatcher_drain(d, 10000), 0);
    cr_expect_eq(st_stats(d, 0).delivered, 0);
    cr_expect_eq(st_stats(d, 1).delivered, 1);
    cr_expect_eq(st_stats(d, 0).filtered, 2); /* offered again + the rebuild's */
    cr_expect_eq(st_stats(d, 1).filtered, 1); /* the rebuild's: queued already */
    cd_dispatcher_destroy(d);
    cd_ledger_close(l);

    cr_expect_eq(rx_count(rx), 1);
    rx_request_t q = rx_get(rx, 0);
    char want[4200];
    snprintf(want, sizeof(want), "%s", st_json(&rb));
    want[strlen(want) - 1] = '\0'; /* no newline in a body */
    cr_expect_str_eq(q.body, want);
    rx_request_free(&q);
    char *log = st_read(st_path("v.log"));
    cr_expect_str_eq(log, st_json(&rb)); /* exactly once in the verdict log */
    free(log);
    /* a third start: everything delivered, nothing goes out */
    l = open_ledger();
    d = st_dispatcher(json, false);
    cd_dispatcher_set_ledger(d, l);
    cr_assert_eq(cd_dispatcher_start(d, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cd_dispatcher_drain(d, 10000), 0);
    cr_expect_eq(st_stats(d, 0).delivered + st_stats(d, 1).delivered, 0);
    cd_dispatcher_destroy(d);
    cd_ledger_close(l);
    cr_expect_eq(rx_count(rx), 1);
    rx_stop(rx);
}

/* ---- the Redis mirror (coordinated agents) ---- */

static pid_t redis_pid = -1;
static int redis_port;

static void redis_start(void)
{
    redis_port = free_port();
    redis_pid = redis_server_start(redis_port, NULL, NULL);
}

static void redis_stop(void)
{
    redis_server_kill(&redis_pid);
}

static cd_ledger_t *open_at(const char *name, const cd_coord_conf_t *cc, int *recovered)
{
    char err[512];
    cd_ledger_t *l = cd_ledger_open(name ? st_path(name) : NULL, err, sizeof(err));
    cr_assert_not_null(l, "%s", err);
    *recovered = cd_ledger_attach_redis(l, cc);
    return l;
}

static void redis_teardown(void)
{
    redis_stop();
    st_teardown();
}

/* A new pod (empty ledger file, or none) recovers the decision and the
 * Flagger runs from the Redis list its peers (or its predecessor) wrote;
 * deliveries are not mirrored; an agent with its own file uses the file. */
Test(ledger, redis_mirror_recovers_a_new_pods_decision, .fini = redis_teardown)
{
    redis_start();
    cd_coord_conf_t cc = {.enabled = true, .port = redis_port, .lease_ms = 10000};
    snprintf(cc.host, sizeof(cc.host), "127.0.0.1");
    snprintf(cc.prefix, sizeof(cc.prefix), "cdtest");
    int n;
    cd_ledger_t *a = open_at("a.ledger", &cc, &n);
    cr_expect_eq(n, 0); /* nothing in Redis yet */
    cd_verdict_t rb = with_service(st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 9));
    cr_assert_eq(cd_ledger_decided(a, &rb, st_json(&rb), 1000), 0);
    cr_assert_eq(cd_ledger_delivered(a, "checkout:2.5.0:ROLLBACK:fatal", true, rb.time_ms, "hook"),
                 0);
    cr_assert_eq(cd_ledger_flagger(a, "prod/checkout", "run-1"), 0);
    cd_ledger_close(a);

    cd_ledger_t *b = open_at(NULL, &cc, &n); /* a new pod without a file */
    cr_expect_eq(n, 2); /* decided + flagger; the delivery stays in a's file */
    cd_ledger_decision_t d;
    cr_assert(cd_ledger_decision(b, &d));
    cr_expect_eq(d.verdict, CD_VERDICT_ROLLBACK);
    cr_expect_str_eq(d.release, "2.5.0");
    cr_expect_eq(cd_ledger_sink_state(b, "checkout:2.5.0:ROLLBACK:fatal", true, 0, "hook"),
                 CD_LEDGER_NEW);
    runs[0] = '\0';
    cd_ledger_each_flagger(b, collect_run, NULL);
    cr_expect_str_eq(runs, "prod/checkout=run-1;");
    /* b declares a new judgement: the mirror says so to the next pod */
    cr_assert_eq(cd_ledger_judgement(b, "2.5.0", 5000), 0);
    cd_ledger_close(b);
    cd_ledger_t *c = open_at("c.ledger", &cc, &n);
    cr_expect_eq(n, 3);
    cr_expect_not(cd_ledger_decision(c, &d));
    cd_ledger_close(c);
    /* an agent with its own record ignores the mirror */
    FILE *f = fopen(st_path("own.ledger"), "w");
    fputs("{\"t\":\"judgement\",\"release\":\"2.4.0\",\"at\":1}\n", f);
    fclose(f);
    cd_ledger_t *o = open_at("own.ledger", &cc, &n);
    cr_expect_eq(n, 0);
    cr_expect_not(cd_ledger_decision(o, &d));
    cd_ledger_close(o);

    /* Redis gone: the ledger says so, goes on with its file, decides on */
    redis_stop();
    cd_ledger_t *e = open_at("e.ledger", &cc, &n);
    cr_expect_eq(n, -1);
    cr_expect_eq(cd_ledger_decided(e, &rb, st_json(&rb), 1000), 0);
    cr_expect(cd_ledger_decision(e, &d));
    cd_ledger_close(e);
    char *log = st_log_text();
    cr_expect(strstr(log, "Redis 127.0.0.1:") != NULL, "%s", log);
    free(log);
}

/* An ALERT repeat is news; the same ALERT made again while catching up
 * (flagged catchup, on the rebuild's grid: a later time) is not, once the
 * sink has any copy of it; a firing ALERT the sink never had is news even
 * while catching up. */
Test(ledger, alert_again_while_catching_up_is_old_news)
{
    cd_ledger_t *l = open_ledger();
    char json[512];
    snprintf(json, sizeof(json),
             "{\"outputs\":[{\"type\":\"log\",\"name\":\"audit\",\"path\":\"%s\"}]}",
             st_path("a.log"));
    cd_dispatcher_t *d = st_dispatcher(json, false);
    cd_dispatcher_set_ledger(d, l);
    char err[256];
    cr_assert_eq(cd_dispatcher_start(d, err, sizeof(err)), 0, "%s", err);
    cd_verdict_t a = st_verdict(CD_VERDICT_ALERT, "errors", CD_ACTION_ALERT, 5);
    cr_assert(cd_dispatcher_submit(d, &a));
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    cd_verdict_t rebuilt = st_verdict(CD_VERDICT_ALERT, "errors", CD_ACTION_ALERT, 6);
    rebuilt.catchup = true;
    cr_assert(cd_dispatcher_submit(d, &rebuilt));
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    cr_expect_eq(st_stats(d, 0).delivered, 1);
    cr_expect_eq(st_stats(d, 0).filtered, 1);
    cd_verdict_t repeat = st_verdict(CD_VERDICT_ALERT, "errors", CD_ACTION_ALERT, 305);
    cr_assert(cd_dispatcher_submit(d, &repeat));
    cd_verdict_t other = st_verdict(CD_VERDICT_ALERT, "fatal", CD_ACTION_ALERT, 306);
    other.catchup = true;
    cr_assert(cd_dispatcher_submit(d, &other));
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    cr_expect_eq(st_stats(d, 0).delivered, 3);
    cd_dispatcher_destroy(d);
    cd_ledger_close(l);
    char want[16384];
    snprintf(want, sizeof(want), "%s%s%s", st_json(&a), st_json(&repeat), st_json(&other));
    char *got = st_read(st_path("a.log"));
    cr_expect_str_eq(got, want);
    free(got);
}

/* A ledger past 1,000 lines is rewritten at open as the current judgement
 * alone: the same decision, deliveries and Flagger run, in 6 lines; an
 * older release's lines are gone. */
Test(ledger, long_ledger_compacted_at_open)
{
    cd_ledger_t *l = open_ledger();
    for (int i = 0; i < 600; i++)
        cd_ledger_flagger(l, "prod/checkout", i % 2 ? "odd" : "even");
    cd_verdict_t old = st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 1);
    old.release = "2.4.0";
    cd_ledger_decided(l, &old, st_json(&old), 10);
    cd_ledger_delivered(l, "-:2.4.0:ROLLBACK:fatal", true, 0, "chat");
    cd_verdict_t al;
    for (int i = 0; i < 500; i++) {
        al = st_verdict(CD_VERDICT_ALERT, "errors", CD_ACTION_ALERT, 10 + i);
        cd_ledger_decided(l, &al, st_json(&al), 1000 + i);
        cd_ledger_delivered(l, "-:2.5.0:ALERT:errors", false, al.time_ms, "chat");
    }
    cd_verdict_t rb = st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 600);
    cd_ledger_decided(l, &rb, st_json(&rb), 2000);
    cd_ledger_delivered(l, "-:2.5.0:ROLLBACK:fatal", true, rb.time_ms, "chat");
    cd_ledger_close(l);
    char *text = st_read(st_path("v.log.ledger"));
    cr_assert_eq(st_count_lines(text), 600 + 2 + 1000 + 2);
    free(text);

    for (int round = 0; round < 2; round++) { /* compacted, then read as it is */
        l = open_ledger();
        text = st_read(st_path("v.log.ledger"));
        cr_expect_eq(st_count_lines(text), 6, "%s", text);
        free(text);
        cd_ledger_decision_t d;
        cr_assert(cd_ledger_decision(l, &d));
        cr_expect_eq(d.verdict, CD_VERDICT_ROLLBACK);
        cr_expect_str_eq(d.release, "2.5.0");
        cr_expect_eq(d.at_ms, 2000);
        cr_expect_eq(cd_ledger_sink_state(l, "-:2.5.0:ROLLBACK:fatal", true, 0, "chat"),
                     CD_LEDGER_DELIVERED);
        cr_expect_eq(cd_ledger_sink_state(l, "-:2.5.0:ALERT:errors", false, al.time_ms, "chat"),
                     CD_LEDGER_DELIVERED);
        cr_expect_eq(cd_ledger_sink_state(l, "-:2.5.0:ALERT:errors", false, al.time_ms + 1, "chat"),
                     CD_LEDGER_NEW);
        cr_expect_eq(cd_ledger_sink_state(l, "-:2.4.0:ROLLBACK:fatal", true, 0, "chat"),
                     CD_LEDGER_NEW);
        ngot = 0;
        cr_expect_eq(cd_ledger_each_decided(l, collect, NULL), 2);
        cr_expect_str_eq(got_json[0], st_json(&al));
        cr_expect_str_eq(got_json[1], st_json(&rb));
        runs[0] = '\0';
        cd_ledger_each_flagger(l, collect_run, NULL);
        cr_expect_str_eq(runs, "prod/checkout=odd;");
        cd_ledger_close(l);
    }
    char *log = st_log_text();
    cr_expect(strstr(log, "compacted from 1604 lines to the current judgement's") != NULL, "%s",
              log);
    free(log);
}
