/*
 * test_live_lag.c - issue 10, item 4: consumer lag is not canary behaviour.
 * `canaryd run` (CANARYD_BIN, child processes) against two librdkafka mock
 * clusters started in this process on loopback: the broker leading one
 * partition goes down for 60 s in the middle of a healthy live run. A
 * suite of its own (about 100 s, three agents): ctest runs the live suites
 * one at a time (RUN_SERIAL), so its load never meets another live suite's
 * timing. Each run works in its own folder under /tmp, removed afterwards;
 * every child is waited for.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "live_helpers.h"

#define TOPIC "events"
#define PARTS 4

static void setup(void)
{
    scratch_make("cd_lag_");
}

static void teardown(void)
{
    kill_children();
    scratch_remove();
}

TestSuite(live_lag, .init = setup, .fini = teardown, .timeout = 300);

/* A mock cluster of two brokers: partition 0 of the topic led by broker 2,
 * the others by broker 1, every group coordinated by broker 1 (so broker 2
 * going down stalls partition 0 alone, without a rebalance). */
typedef struct cluster {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *m;
    char boot[256];
} cluster_t;

static void cluster_new(cluster_t *c)
{
    char e[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", e, sizeof(e));
    c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
    cr_assert_not_null(c->rk, "%s", e);
    c->m = rd_kafka_mock_cluster_new(c->rk, 2);
    cr_assert_not_null(c->m);
    cr_assert_eq(rd_kafka_mock_topic_create(c->m, TOPIC, PARTS, 1), 0);
    for (int p = 0; p < PARTS; p++)
        cr_assert_eq(rd_kafka_mock_partition_set_leader(c->m, TOPIC, p, p == 0 ? 2 : 1), 0);
    static const char *const groups[] = {"ga", "gb", "gc"};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(rd_kafka_mock_coordinator_set(c->m, "group", groups[i], 1), 0);
    snprintf(c->boot, sizeof(c->boot), "%s", rd_kafka_mock_cluster_bootstraps(c->m));
}

static void cluster_destroy(cluster_t *c)
{
    if (c->m) rd_kafka_mock_cluster_destroy(c->m);
    if (c->rk) rd_kafka_destroy(c->rk);
    c->m = NULL;
    c->rk = NULL;
}

static rd_kafka_t *producer_on(const char *boot)
{
    char e[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(c, "bootstrap.servers", boot, e, sizeof(e)), 0);
    rd_kafka_conf_set(c, "log_level", "0", e, sizeof(e));
    cr_assert_eq(rd_kafka_conf_set(c, "linger.ms", "5", e, sizeof(e)), 0);
    /* no duplicates from retries while a broker is down */
    cr_assert_eq(rd_kafka_conf_set(c, "enable.idempotence", "true", e, sizeof(e)), 0);
    /* back within a second of the broker (librdkafka's default backoff
     * grows to 10 s; the agent's recovery grace covers up to 12 s) */
    cr_assert_eq(rd_kafka_conf_set(c, "reconnect.backoff.max.ms", "1000", e, sizeof(e)), 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof(e));
    cr_assert_not_null(rk, "%s", e);
    return rk;
}

/* n events of type/cohort stamped ts on partition part. */
static void produce_at(rd_kafka_t *rk, int n, const char *type, const char *cohort, int part,
                       int64_t ts)
{
    for (int i = 0; i < n; i++) {
        char payload[256];
        snprintf(payload, sizeof(payload),
                 "{\"event_type\":\"%s\",\"timestamp\":%lld,\"cohort\":\"%s\","
                 "\"version\":\"%s\"}",
                 type, (long long)ts, cohort, strcmp(cohort, "canary") == 0 ? "2.5.0" : "2.4.0");
        cr_assert_eq(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(part),
                                       RD_KAFKA_V_VALUE(payload, strlen(payload)),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     0);
    }
}

/* A healthy canary's 100 ms of traffic: canary logins alone on partition 0
 * (the stalled one), everything else spread over partitions 1..3. */
static void produce_tick(rd_kafka_t *p0, rd_kafka_t *rest, int64_t ts, int *seq)
{
    produce_at(p0, 1, "USER_LOGIN", "canary", 0, ts);
    for (int i = 0; i < 10; i++)
        produce_at(rest, 1, "REQUEST_COMPLETED", "stable", 1 + (*seq)++ % 3, ts);
    for (int i = 0; i < 3; i++)
        produce_at(rest, 1, "USER_LOGIN", "stable", 1 + (*seq)++ % 3, ts);
    for (int i = 0; i < 2; i++)
        produce_at(rest, 1, "REQUEST_COMPLETED", "canary", 1 + (*seq)++ % 3, ts);
    rd_kafka_poll(p0, 0);
    rd_kafka_poll(rest, 0);
}

/* The time of the first stdout record containing needle (JSON lines), or
 * "" (static buffer). */
static const char *record_time(const char *out_name, const char *needle)
{
    static char t[40];
    char *s = read_file(out_name);
    const char *p = strstr(s, needle);
    t[0] = '\0';
    if (p) {
        while (p > s && p[-1] != '\n') p--;
        const char *q = strstr(p, "\"time\":\"");
        if (q) snprintf(t, sizeof(t), "%.24s", q + 8);
    }
    free(s);
    return t;
}

static int64_t parse_ms(const char *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int ms = 0;
    if (sscanf(t, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/*
 * The broker leading partition 0 is down for 60 s in the middle of a healthy
 * live run; partition 0 carries the canary's logins alone, so while it is
 * stalled the canary looks as if its login handler had died (the flatline
 * rules), though the events are only late. Three agents read the same
 * stream: A on this cluster (judging on the watermark, the default), B on
 * an identical cluster without the stall, C on this cluster with
 * kafka.max_lag_wait "0s" (judging on the wall clock, as before). A holds
 * its verdict while partition 0 is behind (the HTTP API and /metrics say
 * so, with the lag), issues no ROLLBACK and no ALERT, catches up once the
 * broker is back, and ends as B does, PROMOTE at the same event time; C,
 * the control, is rolled back by the stall (the test can fail).
 */
Test(live_lag, broker_stall_60s_is_not_canary_behaviour)
{
    cluster_t st = {0}, calm = {0};
    cluster_new(&st);
    cluster_new(&calm);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *rules =
        " \"rules\": [{\"name\": \"errors\", \"kind\": \"threshold\",\n"
        "   \"numerator\": [\"ERROR_OCCURRED\"], \"denominator\": [\"REQUEST_COMPLETED\"],\n"
        "   \"op\": \">\", \"threshold\": 0.2, \"window\": \"10s\", \"min_samples\": {\"canary\": "
        "20}, \"action\": \"rollback\"},\n"
        "  {\"name\": \"login-flatline\", \"kind\": \"flatline\", \"events\": [\"USER_LOGIN\"],\n"
        "   \"traffic\": [\"REQUEST_COMPLETED\"], \"window\": \"10s\", \"for\": \"15s\",\n"
        "   \"min_expected\": 20, \"action\": \"rollback\"},\n"
        "  {\"name\": \"login-flatline-alert\", \"kind\": \"flatline\", \"events\": [\"USER_LOGIN\"],\n"
        "   \"traffic\": [\"REQUEST_COMPLETED\"], \"window\": \"10s\", \"for\": \"5s\",\n"
        "   \"min_expected\": 20, \"action\": \"alert\"}],\n";
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(path_of(i ? "wall.json" : "c.json"), "w");
        cr_assert_not_null(f);
        fprintf(f,
                "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\", "
                "\"USER_LOGIN\"]},\n"
                " \"windows\": {\"max_future_skew\": \"1m\", \"slack\": \"2m\"},\n"
                " \"verdicts\": {\"promote_after\": \"75s\"},\n%s"
                " \"kafka\": {\"topics\": [\"" TOPIC "\"]%s,\n"
                "   \"properties\": {\"session.timeout.ms\": 6000, \"heartbeat.interval.ms\": "
                "500}},\n"
                " \"http\": {\"bind\": \"127.0.0.1:0\"}}\n",
                rules, i ? ", \"max_lag_wait\": \"0s\"" : "");
        fclose(f);
    }
    snprintf(bootstraps, sizeof(bootstraps), "%s", st.boot);
    pid_t a = start("outa", "erra", ARGS("--config", path_of("c.json"), "--group", "ga"));
    pid_t c = start("outc", "errc", ARGS("--config", path_of("wall.json"), "--group", "gc"));
    snprintf(bootstraps, sizeof(bootstraps), "%s", calm.boot);
    pid_t b = start("outb", "errb", ARGS("--config", path_of("c.json"), "--group", "gb"));
    for (int i = 0; i < 3; i++) {
        const char *err = i == 0 ? "erra" : i == 1 ? "errb" : "errc";
        cr_assert(wait_for(err, "worker 0 assigned", 20000), "%s: no assignment", err);
        cr_assert(wait_for(err, "worker 1 assigned", 20000), "%s: no assignment", err);
    }
    int port_a = http_port("erra", 10000), port_b = http_port("errb", 10000),
        port_c = http_port("errc", 10000);

    rd_kafka_t *sp0 = producer_on(st.boot), *srest = producer_on(st.boot);
    rd_kafka_t *cp0 = producer_on(calm.boot), *crest = producer_on(calm.boot);
    int seq_s = 0, seq_c = 0;
    long long ticks = 0;
    const int64_t t0 = now_ms();
    /* healthy from about t0 + 2 s, so PROMOTE (75 s later) falls after the stall */
    const int64_t stall_at = t0 + 8000, stall_end = t0 + 68000;
    bool stalled = false, resumed = false, checked_held = false, checked_caught_up = false;
    int64_t next = t0;
    for (;;) {
        int64_t now = now_ms();
        if (now >= next) {
            produce_tick(sp0, srest, now, &seq_s);
            produce_tick(cp0, crest, now, &seq_c);
            ticks++;
            next += 100;
        }
        if (!stalled && now >= stall_at) {
            cr_assert_eq(rd_kafka_mock_broker_set_down(st.m, 2), 0);
            stalled = true;
        }
        if (stalled && !checked_held && now >= stall_at + 30000) {
            /* 30 s into the stall: A holds its verdict, and says why */
            char *v = http_get_at(port_a, "/api/v1/verdict", NULL);
            json_t *j = json_loads(v, 0, NULL);
            cr_assert_not_null(j, "verdict: %s", v);
            cr_assert_str_eq(json_string_value(json_object_get(j, "verdict")), "HEALTHY", "%s", v);
            const char *why = json_string_value(json_object_get(j, "reason"));
            cr_assert(why && strstr(why, "verdict held: partition events[0] is "), "%s", v);
            double lag = json_real_value(json_object_get(j, "lag_seconds"));
            cr_assert(lag >= 25 && lag <= 40, "lag_seconds %g: %s", lag, v);
            json_decref(j);
            free(v);
            char *m = http_get_at(port_a, "/metrics", NULL);
            cr_assert_eq(metric_of(m, "canaryd_verdict_held"), 1, "%s", m);
            double wl = metric_of(m, "canaryd_watermark_lag_seconds");
            cr_assert(wl >= 25 && wl <= 40, "canaryd_watermark_lag_seconds %g", wl);
            free(m);
            checked_held = true;
        }
        if (stalled && !resumed && now >= stall_end) {
            cr_assert_eq(rd_kafka_mock_broker_set_up(st.m, 2), 0);
            resumed = true;
        }
        if (resumed && !checked_caught_up && now >= stall_end + 10000) {
            /* caught up: the held seconds judged, judging the present again */
            char *m = http_get_at(port_a, "/metrics", NULL);
            cr_assert_eq(metric_of(m, "canaryd_verdict_held"), 0, "%s", m);
            double wl = metric_of(m, "canaryd_watermark_lag_seconds");
            cr_assert(wl >= 0 && wl < 5, "canaryd_watermark_lag_seconds %g after the stall", wl);
            free(m);
            checked_caught_up = true;
        }
        bool promoted = record_time("outa", "\"verdict\":\"PROMOTE\"")[0] &&
                        record_time("outb", "\"verdict\":\"PROMOTE\"")[0];
        if (checked_caught_up && (promoted || now >= t0 + 130000)) break;
        sleep_ms(10);
    }
    cr_assert_eq(rd_kafka_flush(sp0, 20000), 0);
    cr_assert_eq(rd_kafka_flush(srest, 20000), 0);
    cr_assert_eq(rd_kafka_flush(cp0, 20000), 0);
    cr_assert_eq(rd_kafka_flush(crest, 20000), 0);
    /* every agent has read every event (16 a tick) before it is stopped */
    const int ports[3] = {port_a, port_b, port_c};
    for (int i = 0; i < 3; i++) {
        double got = NAN;
        for (int64_t end = mono_ms() + 20000; mono_ms() < end;) {
            char *m = http_get_at(ports[i], "/metrics", NULL);
            got = metric_of(m, "canaryd_kafka_messages_total");
            free(m);
            if (got == 16.0 * (double)ticks) break;
            sleep_ms(50);
        }
        cr_assert_eq(got, 16.0 * (double)ticks, "agent %c read %g of %lld events", "abc"[i], got,
                     16 * ticks);
    }
    rd_kafka_destroy(sp0);
    rd_kafka_destroy(srest);
    rd_kafka_destroy(cp0);
    rd_kafka_destroy(crest);
    kill(a, SIGTERM);
    kill(b, SIGTERM);
    kill(c, SIGTERM);
    cr_assert_eq(wait_exit(a, 10000), 0);
    cr_assert_eq(wait_exit(b, 10000), 0);
    cr_assert_eq(wait_exit(c, 10000), 0);

    char *oa = read_file("outa"), *ob = read_file("outb"), *oc = read_file("outc");
    char *ea0 = read_file("erra");
    /* A: no ROLLBACK, no ALERT, nothing firing; B likewise */
    cr_assert_null(strstr(oa, "\"verdict\":\"ROLLBACK\""), "A (stall %lld..%lld):\n%s\nstderr:\n%s",
                   (long long)stall_at, (long long)stall_end, oa, ea0);
    free(ea0);
    cr_assert_null(strstr(oa, "\"verdict\":\"ALERT\""), "A:\n%s", oa);
    cr_assert_null(strstr(oa, "\"to\":\"firing\""), "A:\n%s", oa);
    cr_assert_null(strstr(ob, "\"verdict\":\"ROLLBACK\""), "B:\n%s", ob);
    cr_assert_null(strstr(ob, "\"verdict\":\"ALERT\""), "B:\n%s", ob);
    /* the same final verdict as without the stall, at the same event time
     * (both streams are the same events; the agents started within a
     * second of each other) */
    json_t *sa = stats_of("erra"), *sb = stats_of("errb"), *sc = stats_of("errc");
    cr_assert_str_eq(json_string_value(json_object_get(sa, "verdict")), "PROMOTE", "A:\n%s", oa);
    cr_assert_str_eq(json_string_value(json_object_get(sb, "verdict")), "PROMOTE", "B:\n%s", ob);
    int64_t pa = parse_ms(record_time("outa", "\"verdict\":\"PROMOTE\""));
    int64_t pb = parse_ms(record_time("outb", "\"verdict\":\"PROMOTE\""));
    cr_assert(pa > 0 && pb > 0);
    cr_assert(pa > stall_end, "A promoted before the stall ended");
    cr_assert(llabs(pa - pb) <= 3000, "PROMOTE at %lld (stalled) vs %lld (calm)", (long long)pa,
              (long long)pb);
    /* every event counted once, the late ones included */
    cr_assert_eq(stat_int(sa, "accepted"), 16 * ticks);
    cr_assert_eq(stat_int(sb, "accepted"), 16 * ticks);
    cr_assert_eq(by_type(sa, "USER_LOGIN", "canary"), ticks);
    cr_assert_eq(by_type(sb, "USER_LOGIN", "canary"), ticks);
    /* C, judging on the wall clock, took the stall for a dead login handler */
    cr_assert_not_null(strstr(oc, "\"verdict\":\"ROLLBACK\",\"rule\":\"login-flatline\""), "C:\n%s",
                       oc);
    cr_assert_str_eq(json_string_value(json_object_get(sc, "verdict")), "ROLLBACK");
    char *ea = read_file("erra");
    cr_assert_not_null(strstr(ea, "live clock: verdict held: partition events[0]"), "%s", ea);
    cr_assert_not_null(strstr(ea, "live clock: caught up after"), "%s", ea);
    free(ea);
    json_decref(sa);
    json_decref(sb);
    json_decref(sc);
    free(oa);
    free(ob);
    free(oc);
    curl_global_cleanup();
    cluster_destroy(&st);
    cluster_destroy(&calm);
}
