/*
 * test_dispatcher.c - the sink dispatcher with real sinks (log files, exec
 * commands): the "sinks" config section and its errors, filters and the
 * notification semantics, a full queue counted, a slow sink never blocking
 * submit, retries with backoff and their limit, reopen for logrotate,
 * draining at the end.
 */
#include "sink_test.h"

#include <stdarg.h>
#include <sys/stat.h>

TestSuite(dispatcher, .init = st_setup, .fini = st_teardown);

static void expect_has(const char *text, const char *want)
{
    cr_expect(strstr(text, want) != NULL, "missing:\n  %s\nin:\n%s", want, text);
}

/* Every problem is reported, each with its key path, the value and what is
 * accepted; nothing is built. */
Test(dispatcher, config_errors_name_key_paths)
{
    cd_diag_t d;
    cd_config_t *c = st_config(
        "{\"queue_size\":0,\"extra\":1,\"outputs\":["
        "{\"type\":\"pigeon\"},"
        "{\"type\":\"log\",\"path\":\"/dev/null\",\"filter\":{\"verdicts\":[\"ROLLBACK\",\"NOPE\"],"
        "\"rules\":[\"errors\",\"typo\"],\"kinds\":\"state\"},\"retry\":{\"base\":\"5x\","
        "\"max_attempts\":2.5},\"rate_limit\":-1,\"colour\":\"yes\"},"
        "{\"type\":\"webhook\",\"url\":\"ftp://user:pw@example.com/T0/SECRETPATH\","
        "\"format\":\"teams\"},"
        "{\"type\":\"exec\",\"command\":[],\"timeout\":\"1h1m\"},"
        "{\"type\":\"log\"}]}",
        &d);
    cr_assert_not_null(c, "%s", d.text);
    cd_diag_init(&d);
    cr_expect_null(cd_dispatcher_new(c, &d));
    const char *want[] = {
        "sinks.extra: unknown key; accepted: queue_size, drain_timeout, outputs, ledger",
        "sinks.queue_size: 0 is out of range; accepted: a number from 1 to 1048576",
        "sinks.outputs[0].type: \"pigeon\" is not a sink type; accepted: log, webhook, exec, "
        "redis, kafka",
        "sinks.outputs[1].filter.verdicts[1]: \"NOPE\" is not accepted; accepted: a list of "
        "\"ANALYZING\", \"HEALTHY\", \"PROMOTE\", \"ROLLBACK\", \"ALERT\"",
        "sinks.outputs[1].filter.kinds: \"state\" is not a non-empty list; accepted: a list of "
        "\"verdict\", \"state\"",
        "sinks.outputs[1].filter.rules[1]: \"typo\" is not a rule of this config; accepted: a list "
        "of rule names of this config (errors, fatal)",
        "sinks.outputs[1].retry.base: \"5x\" is not a duration; accepted: a duration from 1ms to "
        "1h",
        "sinks.outputs[1].retry.max_attempts: 2.5 is not an integer; accepted: an integer from 1 "
        "to 1000",
        "sinks.outputs[1].rate_limit: -1 is out of range; accepted: a number from 0 to 1000000",
        "sinks.outputs[1].colour: \"yes\" is not a boolean; accepted: true or false",
        "sinks.outputs[2].format: \"teams\" is not accepted; accepted: \"slack\", \"msteams\", "
        "\"discord\", \"mattermost\", \"googlechat\", \"generic\", \"alertmanager\"",
        "sinks.outputs[2].url: ftp://example.com/… is not an http or https URL",
        "sinks.outputs[3].command: [] is not a non-empty list; accepted: a list of strings",
        "sinks.outputs[3].timeout: \"1h1m\" is out of range; accepted: a duration from 1ms to 1h",
        "sinks.outputs[4].path: missing; accepted: a non-empty string",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        expect_has(d.text, want[i]);
    cr_expect_eq(d.count, 15, "%s", d.text);
    cr_expect_null(strstr(d.text, "SECRETPATH"), "%s", d.text);
    cr_expect_null(strstr(d.text, "pw@"), "%s", d.text);
    /* the log sink's own key is checked by the log sink, not silently ignored */
    cr_expect_eq(cd_dispatcher_check(c, &d), 15);
    cd_config_free(c);

    c = st_config("{\"queue_size\":4.5,\"drain_timeout\":\"1h\",\"outputs\":{},\"ledger\":7}", &d);
    cr_assert_not_null(c, "%s", d.text);
    cd_diag_init(&d);
    cr_expect_eq(cd_dispatcher_check(c, &d), 4, "%s", d.text);
    expect_has(d.text, "sinks.ledger: 7 is not a non-empty string; accepted: a non-empty string");
    expect_has(d.text, "sinks.queue_size: 4.5 is not an integer; accepted: an integer from 1 to "
                       "1048576\n");
    expect_has(d.text, "sinks.drain_timeout: \"1h\" is out of range; accepted: a duration from "
                       "0s to 10m");
    expect_has(d.text, "sinks.outputs: {} is not a list; accepted: a list of sink entries");
    cd_config_free(c);
}

static char *sinks_json(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *sinks_json(const char *fmt, ...)
{
    static char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return buf;
}

/*
 * Filters and notification semantics, through three log sinks:
 *   all:      default filter (verdict records of every kind, no states)
 *   states:   kinds ["state"] for rule "errors" only
 *   paging:   verdicts ROLLBACK and ALERT, send_resolved
 * A ROLLBACK reaches each sink once per release; a resolved alert rule
 * reaches sinks with send_resolved even when they take no state records.
 */
Test(dispatcher, filters_and_notification_semantics)
{
    cd_dispatcher_t *d = st_dispatcher(
        sinks_json("{\"outputs\":["
                   "{\"type\":\"log\",\"name\":\"all\",\"path\":\"%s\"},"
                   "{\"type\":\"log\",\"name\":\"states\",\"path\":\"%s\","
                   "\"filter\":{\"kinds\":[\"state\"],\"rules\":[\"errors\"]}},"
                   "{\"type\":\"log\",\"name\":\"paging\",\"path\":\"%s\",\"send_resolved\":true,"
                   "\"filter\":{\"verdicts\":[\"ROLLBACK\",\"ALERT\"]}}]}",
                   st_path("all.log"), st_path("states.log"), st_path("paging.log")),
        true);
    cd_verdict_t r[] = {
        st_verdict(CD_VERDICT_ANALYZING, NULL, CD_ACTION_ROLLBACK, 0),                 /* 0 */
        st_state("errors", CD_ACTION_ALERT, CD_STATE_INACTIVE, CD_STATE_PENDING, 1),   /* 1 */
        st_state("errors", CD_ACTION_ALERT, CD_STATE_PENDING, CD_STATE_FIRING, 2),     /* 2 */
        st_verdict(CD_VERDICT_ALERT, "errors", CD_ACTION_ALERT, 2),                    /* 3 */
        st_state("fatal", CD_ACTION_ROLLBACK, CD_STATE_INACTIVE, CD_STATE_PENDING, 3), /* 4 */
        st_state("errors", CD_ACTION_ALERT, CD_STATE_FIRING, CD_STATE_RESOLVED, 4),    /* 5 */
        st_state("fatal", CD_ACTION_ROLLBACK, CD_STATE_FIRING, CD_STATE_RESOLVED, 5),  /* 6 */
        st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 6),               /* 7 */
        st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 7), /* 8: same release */
        st_verdict(CD_VERDICT_HEALTHY, NULL, CD_ACTION_ROLLBACK, 8),     /* 9 */
    };
    cd_verdict_t other = st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 9);
    other.release = "2.6.0";
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
        cr_assert(cd_dispatcher_submit(d, &r[i]));
    cr_assert(cd_dispatcher_submit(d, &other));
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);

    char want[16384];
    snprintf(want, sizeof(want), "%s%s%s%s%s", st_json(&r[0]), st_json(&r[3]), st_json(&r[7]),
             st_json(&r[9]), st_json(&other));
    char *got = st_read(st_path("all.log"));
    cr_expect_str_eq(got, want);
    free(got);
    snprintf(want, sizeof(want), "%s%s%s", st_json(&r[1]), st_json(&r[2]), st_json(&r[5]));
    got = st_read(st_path("states.log"));
    cr_expect_str_eq(got, want);
    free(got);
    snprintf(want, sizeof(want), "%s%s%s%s", st_json(&r[3]), st_json(&r[5]), st_json(&r[7]),
             st_json(&other));
    got = st_read(st_path("paging.log"));
    cr_expect_str_eq(got, want);
    free(got);

    cd_sink_stats_t s = st_stats(d, 0);
    cr_expect_str_eq(s.name, "all");
    cr_expect_str_eq(s.type, "log");
    cr_expect_eq(s.delivered, 5);
    cr_expect_eq(s.filtered, 6); /* 5 states + the second ROLLBACK of 2.5.0 */
    cr_expect_eq(s.failed + s.retries + s.dropped + s.pending, 0);
    cr_expect_eq(st_stats(d, 1).delivered, 3);
    cr_expect_eq(st_stats(d, 2).delivered, 4);
    cr_expect_eq(cd_dispatcher_overflows(d), 0);
    cd_dispatcher_destroy(d);
}

/* A full submit queue refuses records, counts them and says so in the log;
 * what was queued is delivered. */
Test(dispatcher, full_queue_counts_overflows)
{
    cd_dispatcher_t *d = st_dispatcher(
        sinks_json("{\"queue_size\":4,\"outputs\":[{\"type\":\"log\",\"path\":\"%s\"}]}",
                   st_path("v.log")),
        false); /* not started: nothing drains the queue */
    int ok = 0;
    for (int i = 0; i < 6; i++) {
        cd_verdict_t v = st_verdict(CD_VERDICT_HEALTHY, NULL, CD_ACTION_ROLLBACK, i);
        ok += cd_dispatcher_submit(d, &v);
    }
    cr_expect_eq(ok, 4);
    cr_expect_eq(cd_dispatcher_overflows(d), 2);
    char err[256];
    cr_assert_eq(cd_dispatcher_start(d, err, sizeof(err)), 0);
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    char *got = st_read(st_path("v.log"));
    cr_expect_eq(st_count_lines(got), 4);
    cd_verdict_t first = st_verdict(CD_VERDICT_HEALTHY, NULL, CD_ACTION_ROLLBACK, 0);
    cr_expect_eq(strncmp(got, st_json(&first), strlen(st_json(&first))), 0);
    free(got);
    cd_dispatcher_destroy(d);
    char *log = st_log_text();
    expect_has(log,
               "canaryd[warn]: sink queue full (4 records): HEALTHY record dropped (1 so far)");
    expect_has(log,
               "canaryd[warn]: sink queue full (4 records): HEALTHY record dropped (2 so far)");
    free(log);
}

/* A sink that takes 1 s per record never slows submit down; its own FIFO
 * (queue_size records, the one in delivery included) overflows into its
 * "dropped" counter. A submit that waited for that sink would take a whole
 * second: the 500 ms bound tells the two apart with room for a loaded CI. */
Test(dispatcher, slow_sink_never_blocks_submit)
{
    cd_dispatcher_t *d =
        st_dispatcher(sinks_json("{\"queue_size\":4,\"drain_timeout\":\"10s\",\"outputs\":["
                                 "{\"type\":\"exec\",\"command\":[\"sleep\",\"1\"]},"
                                 "{\"type\":\"log\",\"path\":\"%s\"}]}",
                                 st_path("fast.log")),
                      true);
    int64_t worst = 0;
    int ok = 0;
    for (int i = 0; i < 20; i++) {
        cd_verdict_t v = st_verdict(CD_VERDICT_HEALTHY, NULL, CD_ACTION_ROLLBACK, i);
        int64_t t0 = st_now_ms();
        ok += cd_dispatcher_submit(d, &v);
        int64_t dt = st_now_ms() - t0;
        if (dt > worst) worst = dt;
        /* let the dispatcher move records into FIFOs: the submit queue itself
         * must not be what overflows here */
        if (i % 4 == 3) {
            int64_t until = st_now_ms() + 20000;
            while (st_stats(d, 1).delivered < (uint64_t)i + 1 && st_now_ms() < until)
                usleep(1000);
        }
    }
    cr_expect_lt(worst, 500, "a submit took %lld ms", (long long)worst);
    cr_expect_eq(ok, 20);
    cr_expect_eq(st_stats(d, 1).delivered, 20); /* the fast sink is not held back */
    cr_expect_eq(cd_dispatcher_drain(d, 30000), 0);
    cd_sink_stats_t s = st_stats(d, 0);
    cr_expect_eq(s.delivered, 4, "delivered %llu", (unsigned long long)s.delivered);
    cr_expect_eq(s.dropped, 16);
    cd_dispatcher_destroy(d);
}

/* Full-jitter backoff: a command failing temporarily (exit 75) is retried
 * until it succeeds; one that keeps failing is given up after max_attempts. */
Test(dispatcher, retries_then_gives_up)
{
    char script[1024];
    snprintf(script, sizeof(script),
             "#!/bin/sh\nn=$(cat %s 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > %s\n"
             "[ \"$CANARYD_VERDICT\" = ROLLBACK ] && exit 75\n[ $n -ge 3 ] && exit 0\nexit 75\n",
             st_path("count"), st_path("count"));
    st_write("hook.sh", script, 0755);
    cd_dispatcher_t *d = st_dispatcher(
        sinks_json("{\"outputs\":[{\"type\":\"exec\",\"command\":[\"%s\"],"
                   "\"retry\":{\"base\":\"20ms\",\"cap\":\"40ms\",\"max_attempts\":4}}]}",
                   st_path("hook.sh")),
        true);
    cd_verdict_t v = st_verdict(CD_VERDICT_HEALTHY, NULL, CD_ACTION_ROLLBACK, 0);
    cr_assert(cd_dispatcher_submit(d, &v));
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    cd_sink_stats_t s = st_stats(d, 0);
    cr_expect_eq(s.delivered, 1);
    cr_expect_eq(s.retries, 2);
    char *n = st_read(st_path("count"));
    cr_expect_str_eq(n, "3\n");
    free(n);

    cd_verdict_t rb = st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 1);
    cr_assert(cd_dispatcher_submit(d, &rb));
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    s = st_stats(d, 0);
    cr_expect_eq(s.delivered, 1);
    cr_expect_eq(s.failed, 1);
    cr_expect_eq(s.retries, 2 + 3);
    n = st_read(st_path("count"));
    cr_expect_str_eq(n, "7\n");
    free(n);
    cd_dispatcher_destroy(d);
    char *log = st_log_text();
    expect_has(log, "record 2 (ROLLBACK fatal) dropped after 4 attempts");
    free(log);
}

/* logrotate: after the file is renamed, reopen makes the sink write a new
 * file at the configured path. */
Test(dispatcher, reopen_after_rotation)
{
    cd_dispatcher_t *d = st_dispatcher(
        sinks_json("{\"outputs\":[{\"type\":\"log\",\"path\":\"%s\"}]}", st_path("v.log")), true);
    cd_verdict_t a = st_verdict(CD_VERDICT_ANALYZING, NULL, CD_ACTION_ROLLBACK, 0);
    cd_verdict_t b = st_verdict(CD_VERDICT_HEALTHY, NULL, CD_ACTION_ROLLBACK, 1);
    cr_assert(cd_dispatcher_submit(d, &a));
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    cr_assert_eq(rename(st_path("v.log"), st_path("v.log.1")), 0);
    cd_dispatcher_reopen(d);
    cr_assert(cd_dispatcher_submit(d, &b));
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    char *old = st_read(st_path("v.log.1")), *cur = st_read(st_path("v.log"));
    cr_expect_str_eq(old, st_json(&a));
    cr_expect_str_eq(cur, st_json(&b));
    free(old);
    free(cur);
    cd_dispatcher_destroy(d);
}

/* destroy drains first (bounded by drain_timeout): a record in a slow sink
 * is delivered, not abandoned. */
Test(dispatcher, destroy_drains)
{
    cd_dispatcher_t *d = st_dispatcher(
        sinks_json("{\"drain_timeout\":\"5s\",\"outputs\":[{\"type\":\"exec\",\"command\":"
                   "[\"sh\",\"-c\",\"sleep 0.2; cat > %s\"]}]}",
                   st_path("out")),
        true);
    cd_verdict_t v = st_verdict(CD_VERDICT_PROMOTE, NULL, CD_ACTION_ROLLBACK, 0);
    cr_assert(cd_dispatcher_submit(d, &v));
    cd_dispatcher_destroy(d);
    char *got = st_read(st_path("out"));
    cr_expect_str_eq(got, st_json(&v));
    free(got);
}

/*
 * A full submit queue makes room by rank (docs/sinks.md, "Queue
 * priority"): a state record gives way first, then an ANALYZING / HEALTHY
 * verdict, a decision (ROLLBACK, PROMOTE, ALERT) never; a decision that
 * finds only decisions grows the queue. Not started: nothing drains it.
 */
Test(dispatcher, full_queue_decisions_never_give_way)
{
    cd_dispatcher_t *d = st_dispatcher(
        sinks_json("{\"queue_size\":4,\"outputs\":[{\"type\":\"log\",\"path\":\"%s\","
                   "\"filter\":{\"kinds\":[\"verdict\",\"state\"]}}]}",
                   st_path("v.log")),
        false);
    cd_verdict_t st[5], h[3], dec[6];
    for (int i = 0; i < 5; i++) /* 4 fill the queue, the 5th is refused */
        st[i] = st_state("errors", CD_ACTION_ALERT, CD_STATE_INACTIVE, CD_STATE_PENDING, i);
    for (int i = 0; i < 4; i++)
        cr_assert(cd_dispatcher_submit(d, &st[i]));
    cr_expect_not(cd_dispatcher_submit(d, &st[4])); /* nothing ranks below it */
    dec[0] = st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 10);
    cr_assert(cd_dispatcher_submit(d, &dec[0])); /* st[0] gives way */
    for (int i = 0; i < 3; i++) {
        h[i] = st_verdict(CD_VERDICT_HEALTHY, NULL, CD_ACTION_ROLLBACK, 20 + i);
        cr_assert(cd_dispatcher_submit(d, &h[i])); /* st[1], st[2], st[3] give way */
    }
    dec[1] = st_verdict(CD_VERDICT_PROMOTE, NULL, CD_ACTION_ROLLBACK, 30);
    cr_assert(cd_dispatcher_submit(d, &dec[1])); /* h[0] gives way */
    cr_expect_not(cd_dispatcher_submit(d, &st[4])); /* no state left to evict, none below */
    dec[2] = st_verdict(CD_VERDICT_ALERT, "errors", CD_ACTION_ALERT, 31);
    dec[3] = st_verdict(CD_VERDICT_ALERT, "errors", CD_ACTION_ALERT, 32);
    dec[4] = st_verdict(CD_VERDICT_ALERT, "errors", CD_ACTION_ALERT, 33);
    dec[5] = st_verdict(CD_VERDICT_ALERT, "errors", CD_ACTION_ALERT, 34);
    for (int i = 2; i < 6; i++) /* h[1], h[2] give way; then the queue grows */
        cr_assert(cd_dispatcher_submit(d, &dec[i]));
    cr_expect_eq(cd_dispatcher_overflows(d), 2 + 7); /* 2 refused; st[0..3], h[0..2] evicted */

    char err[256];
    cr_assert_eq(cd_dispatcher_start(d, err, sizeof(err)), 0);
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    char want[16384];
    snprintf(want, sizeof(want), "%s%s%s%s%s%s", st_json(&dec[0]), st_json(&dec[1]),
             st_json(&dec[2]), st_json(&dec[3]), st_json(&dec[4]), st_json(&dec[5]));
    char *got = st_read(st_path("v.log"));
    cr_expect_str_eq(got, want);
    free(got);
    cd_dispatcher_destroy(d);
    char *log = st_log_text();
    expect_has(log, "canaryd[warn]: sink queue full (4 records): a state record dropped (1 so far)");
    expect_has(log, "canaryd[warn]: sink queue full (4 records): a state record dropped to make "
                    "room for a more important record (2 so far)");
    free(log);
}

/* A ROLLBACK reaches a sink once per judgement of a release: a second one
 * of the same judgement does not, the one after a new judgement (the
 * release-wide ANALYZING that opens it) does, also at a sink whose filter
 * takes ROLLBACKs only. */
Test(dispatcher, rollback_once_per_judgement)
{
    cd_dispatcher_t *d = st_dispatcher(
        sinks_json("{\"outputs\":[{\"type\":\"log\",\"name\":\"rb\",\"path\":\"%s\","
                   "\"filter\":{\"verdicts\":[\"ROLLBACK\"]}}]}",
                   st_path("rb.log")),
        true);
    cd_verdict_t r[] = {
        st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 1),
        st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 2), /* same judgement */
        st_verdict(CD_VERDICT_ANALYZING, NULL, CD_ACTION_ROLLBACK, 3),   /* a new one */
        st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 4),
    };
    for (int i = 0; i < 4; i++)
        cr_assert(cd_dispatcher_submit(d, &r[i]));
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    char want[8192];
    snprintf(want, sizeof(want), "%s%s", st_json(&r[0]), st_json(&r[3]));
    char *got = st_read(st_path("rb.log"));
    cr_expect_str_eq(got, want);
    free(got);
    cd_dispatcher_destroy(d);
}
