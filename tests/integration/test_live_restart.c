/*
 * test_live_restart.c - issue 11, "Start by time" and "Rebuild silently, in
 * event time", live: `canaryd run` (CANARYD_BIN, a child process) against
 * librdkafka's mock cluster started in this process on loopback.
 *
 *  - new pod on a long topic: an hour of history (10 events/s over 16
 *    partitions, ~0.4 MB each, far under the mock's ~5 MB per partition); a
 *    new agent in a new group is current (/readyz 200, /metrics
 *    canaryd_catchup 0) within 30 s and has read only the history its rules
 *    need (55 s here): canaryd_kafka_messages_total lies between the events
 *    of the last 55 s before it became ready and those of the last 55 s
 *    before it was started -- the only slack is the clock moving between
 *    the two (about 10 messages a second of start-up), not the hour;
 *  - a rule pending at the start is replayed: errors began 12 s before the
 *    agent started; the rebuilt rule goes pending at the event time the
 *    6th error made the count exceed 5 (a record marked "catchup":true),
 *    and fires `for` 20 s after that, in event time -- not 20 s after the
 *    start, as a fresh agent's would;
 *  - while catching up the agent says so: the broker leading one partition
 *    is down at the start, so that partition is not read (its start search
 *    fails after 10 s: it starts at the committed offset); /readyz answers
 *    503 "catching up: ..." and /metrics canaryd_catchup 1 until the broker
 *    is back and the partition read, then 200 and canaryd_catchup 0.
 *
 * Each test works in its own folder under /tmp, removed afterwards; every
 * child is waited for (killed by the teardown when a test fails early).
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <ftw.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "canaryd/timeutil.h"
#include "live_helpers.h"

#define TOPIC "events"

static rd_kafka_t *mrk;
static rd_kafka_mock_cluster_t *mc;

static void setup(void)
{
    char e[256];
    scratch_make("cd_restart_");
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "log_level", "0", e, sizeof(e));
    mrk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof(e));
    cr_assert_not_null(mrk, "%s", e);
    mc = rd_kafka_mock_cluster_new(mrk, 2);
    cr_assert_not_null(mc);
    /* groups coordinated by broker 1: broker 2 going down stalls only the
     * partitions it leads */
    static const char *const groups[] = {"new-pod", "replay", "held"};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(rd_kafka_mock_coordinator_set(mc, "group", groups[i], 1), 0);
    snprintf(bootstraps, sizeof(bootstraps), "%s", rd_kafka_mock_cluster_bootstraps(mc));
}

static void teardown(void)
{
    kill_children();
    if (mc) rd_kafka_mock_cluster_destroy(mc);
    if (mrk) rd_kafka_destroy(mrk);
    mc = NULL;
    mrk = NULL;
    if (!getenv("CANARYD_TEST_KEEP")) scratch_remove();
}

TestSuite(live_restart, .init = setup, .fini = teardown, .timeout = 180);

/* The rules need 55 s: window 30 s + for 20 s + allowed_lateness 5 s. */
#define HISTORY_MS 55000

static void write_config(const char *group)
{
    FILE *f = fopen(path_of("c.json"), "w");
    cr_assert_not_null(f);
    fprintf(f,
            "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\"]},\n"
            " \"windows\": {\"max_future_skew\": \"1m\", \"slack\": \"30s\"},\n"
            " \"verdicts\": {\"min_canary_events\": 0},\n"
            " \"rules\": [{\"name\": \"errors\", \"kind\": \"threshold\",\n"
            "   \"description\": \"Roll back on canary errors.\", \"numerator\": "
            "[\"ERROR_OCCURRED\"],\n"
            "   \"scope\": \"canary\", \"op\": \">\", \"threshold\": 5, \"window\": \"30s\", "
            "\"for\": \"20s\", \"action\": \"rollback\"}],\n"
            " \"http\": {\"bind\": \"127.0.0.1:0\"},\n"
            " \"kafka\": {\"topics\": [\"" TOPIC "\"], \"group\": \"%s\",\n"
            "   \"properties\": {\"session.timeout.ms\": 6000, \"heartbeat.interval.ms\": 500}}}\n",
            group);
    fclose(f);
}

/* canaryd run on the cluster with c.json, 2 workers and a verdict log;
 * stdout and stderr into out and err. */
static pid_t start_agent(void)
{
    return start("out", "err",
                 ARGS("--config", path_of("c.json"), "--threads", "2", "--verdict-log",
                      path_of("verdicts.log")));
}

/* SIGTERM, reaped (SIGKILL after 10 s). */
static void stop_agent(pid_t pid)
{
    finish(pid, true, 10000, NULL);
}

static rd_kafka_t *producer(void)
{
    char e[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(c, "bootstrap.servers", bootstraps, e, sizeof(e)), 0);
    rd_kafka_conf_set(c, "log_level", "0", e, sizeof(e));
    rd_kafka_conf_set(c, "linger.ms", "20", e, sizeof(e));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof(e));
    cr_assert_not_null(rk, "%s", e);
    return rk;
}

/* One event stamped ts (message timestamp too) on partition part. */
static void produce_at(rd_kafka_t *rk, const char *type, const char *cohort, int part, int64_t ts)
{
    char payload[256];
    int n = snprintf(payload, sizeof(payload),
                     "{\"event_type\":\"%s\",\"timestamp\":%lld,\"cohort\":\"%s\","
                     "\"version\":\"%s\"}",
                     type, (long long)ts, cohort, strcmp(cohort, "canary") == 0 ? "2.5.0" : "2.4.0");
    rd_kafka_resp_err_t e;
    while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(part),
                                  RD_KAFKA_V_VALUE(payload, (size_t)n), RD_KAFKA_V_TIMESTAMP(ts),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(rk, 10);
    cr_assert_eq(e, 0, "produce: %s", rd_kafka_err2str(e));
}

#define NPARTS 16
#define EVERY_MS 100 /* 10 events/s */

/* Events of the hour's preload stamped at or after t. */
static long events_since(int64_t first, int64_t last, int64_t t)
{
    long all = (long)((last - first) / EVERY_MS) + 1;
    if (t <= first) return all;
    if (t > last) return 0;
    long kmin = (long)((t - first + EVERY_MS - 1) / EVERY_MS); /* first index stamped >= t */
    return all - kmin;
}

Test(live_restart, new_pod_on_a_long_topic_reads_only_the_window_span)
{
    cr_assert_eq(rd_kafka_mock_topic_create(mc, TOPIC, NPARTS, 1), 0);
    rd_kafka_t *pr = producer();
    int64_t last = now_ms() / EVERY_MS * EVERY_MS, first = last - 3600 * 1000;
    long n = 0;
    for (int64_t t = first; t <= last; t += EVERY_MS, n++)
        produce_at(pr, "REQUEST_COMPLETED", (n % 20) ? "stable" : "canary", (int)(n % NPARTS), t);
    cr_assert_eq(rd_kafka_flush(pr, 30000), 0);
    rd_kafka_destroy(pr);
    cr_assert_eq(n, 36001);

    write_config("new-pod");
    int64_t spawned = now_ms();
    pid_t pid = start_agent();
    int port = http_port("err", 20000);
    long code = 0;
    int64_t ready = 0;
    for (int64_t until = spawned + 30000; now_ms() < until; sleep_ms(50)) {
        free(http_get_at(port, "/readyz", &code));
        if (code == 200) {
            ready = now_ms();
            break;
        }
    }
    char *err = read_file("err");
    cr_assert_gt(ready, 0, "not ready within 30 s; stderr:\n%s", err);
    long code2;
    char *m = http_get_at(port, "/metrics", &code2);
    cr_assert_eq(code2, 200);
    double read = metric_of(m, "canaryd_kafka_messages_total");
    cr_assert_eq(metric_of(m, "canaryd_catchup"), 0);
    /* every partition looked for (again when a rebalance moved it before
     * it was read) */
    cr_assert_geq(metric_of(m, "canaryd_kafka_start_searches_total"), NPARTS);
    cr_assert_eq(metric_of(m, "canaryd_kafka_start_failed_total"), 0);
    double probes = metric_of(m, "canaryd_kafka_start_probes_total");
    long lo = events_since(first, last, ready - HISTORY_MS);
    long hi = events_since(first, last, spawned - HISTORY_MS);
    cr_assert(read >= (double)lo && read <= (double)hi,
              "read %.0f messages of %ld; the last 55 s before ready: %ld, before start: %ld "
              "(ready %.1f s after start; %.0f probes); stderr:\n%s",
              read, n, lo, hi, (double)(ready - spawned) / 1000.0, probes, err);
    /* each partition's start in a handful of probes, not the hour */
    cr_assert_leq(probes, NPARTS * 24, "%.0f probes", probes);
    cr_assert_not_null(strstr(err, "live clock: caught up:"), "stderr:\n%s", err);
    free(m);
    free(err);
    stop_agent(pid);
}

Test(live_restart, pending_rule_replayed_in_event_time)
{
    cr_assert_eq(rd_kafka_mock_topic_create(mc, TOPIC, 4, 1), 0);
    rd_kafka_t *pr = producer();
    /* 40 s of healthy traffic, and from onset (12 s before the start) one
     * canary error a second, each 500 ms into its second */
    int64_t now = now_ms() / 1000 * 1000, onset = now - 12000;
    long n = 0;
    int k = 0;
    /* in time order in every partition, as producers write them (the
     * watermark is the newest event time read: an error written after
     * newer events would count as late as it is) */
    for (int64_t t = now - 40000; t <= now; t += EVERY_MS, n++) {
        produce_at(pr, "REQUEST_COMPLETED", (n % 5) ? "stable" : "canary", (int)(n % 4), t);
        if (t == onset + k * 1000 + 500) {
            produce_at(pr, "ERROR_OCCURRED", "canary", k % 4, t);
            k++;
        }
    }
    cr_assert_eq(k, 12);
    cr_assert_eq(rd_kafka_flush(pr, 30000), 0);
    rd_kafka_destroy(pr);

    write_config("replay");
    int64_t spawned = now_ms();
    pid_t pid = start_agent();
    cr_assert(wait_for("verdicts.log", "\"verdict\":\"ROLLBACK\"", 60000),
              "no ROLLBACK within 60 s");
    stop_agent(pid);
    char *log = read_file("verdicts.log");
    /* the 6th error (onset + 5.5 s) made the count exceed 5: pending from
     * the first evaluation that reads its second's bucket, in catch-up */
    const char *pend = strstr(log, "\"from\":\"inactive\",\"to\":\"pending\"");
    cr_assert_not_null(pend, "no pending record:\n%s", log);
    const char *bol = pend;
    while (bol > log && bol[-1] != '\n') bol--;
    const char *eol = strchr(pend, '\n');
    char line[2048];
    snprintf(line, sizeof(line), "%.*s", (int)(eol ? eol - bol : (long)strlen(bol)), bol);
    cr_assert_not_null(strstr(line, "\"catchup\":true"), "pending record not marked: %s", line);
    char tbuf[40];
    int64_t pending_at = 0;
    for (int64_t t = onset + 5000; t <= onset + 6000 && !pending_at; t += 10) {
        char needle[64];
        snprintf(needle, sizeof(needle), "{\"time\":\"%s\"", cd_time_format(t, tbuf, sizeof(tbuf)));
        if (strncmp(line, needle, strlen(needle)) == 0) pending_at = t;
    }
    cr_assert_gt(pending_at, 0, "pending record not in [onset + 5 s, onset + 6 s] (onset %s): %s",
                 cd_time_format(onset, tbuf, sizeof(tbuf)), line);
    /* ROLLBACK exactly `for` later, in event time: 13 s after the start,
     * not 20 s as a fresh agent's would */
    char want[96];
    snprintf(want, sizeof(want), "{\"time\":\"%s\",\"kind\":\"verdict\",\"verdict\":\"ROLLBACK\"",
             cd_time_format(pending_at + 20000, tbuf, sizeof(tbuf)));
    cr_assert_not_null(strstr(log, want), "want %s in:\n%s", want, log);
    cr_assert_lt(pending_at + 20000, spawned + 20000);
    free(log);
}

Test(live_restart, readyz_says_catching_up_until_current)
{
    cr_assert_eq(rd_kafka_mock_topic_create(mc, TOPIC, 4, 1), 0);
    for (int p = 0; p < 4; p++)
        cr_assert_eq(rd_kafka_mock_partition_set_leader(mc, TOPIC, p, p == 0 ? 2 : 1), 0);
    rd_kafka_t *pr = producer();
    int64_t now = now_ms() / 1000 * 1000;
    long n = 0;
    for (int64_t t = now - 30000; t <= now; t += EVERY_MS, n++)
        produce_at(pr, "REQUEST_COMPLETED", (n % 5) ? "stable" : "canary", (int)(n % 4), t);
    cr_assert_eq(rd_kafka_flush(pr, 30000), 0);
    rd_kafka_destroy(pr);
    cr_assert_eq(rd_kafka_mock_broker_set_down(mc, 2), 0);

    write_config("held");
    pid_t pid = start_agent();
    int port = http_port("err", 20000);
    long code = 0;
    char *body = NULL;
    bool seen = false;
    for (int64_t until = now_ms() + 40000; now_ms() < until && !seen; sleep_ms(50)) {
        free(body);
        body = http_get_at(port, "/readyz", &code);
        seen = code == 503 && strstr(body, "\"catching up: rebuilding the windows from Kafka");
    }
    cr_assert(seen, "never 503 catching up within 40 s; last: %ld %s", code, body);
    cr_assert_not_null(strstr(body, "messages behind"), "%s", body);
    free(body);
    char *m = http_get_at(port, "/metrics", &code);
    cr_assert_eq(metric_of(m, "canaryd_catchup"), 1, "%s", m);
    free(m);
    cr_assert_eq(rd_kafka_mock_broker_set_up(mc, 2), 0);
    bool ready = false;
    for (int64_t until = now_ms() + 60000; now_ms() < until && !ready; sleep_ms(50)) {
        free(http_get_at(port, "/readyz", &code));
        ready = code == 200;
    }
    char *err = read_file("err");
    cr_assert(ready, "not ready within 60 s of the broker's return; stderr:\n%s", err);
    m = http_get_at(port, "/metrics", &code);
    cr_assert_eq(metric_of(m, "canaryd_catchup"), 0);
    cr_assert_gt(metric_of(m, "canaryd_catchup_duration_seconds"), 0);
    free(m);
    cr_assert_not_null(strstr(err, "live clock: caught up:"), "stderr:\n%s", err);
    free(err);
    stop_agent(pid);
}
