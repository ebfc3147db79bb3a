/*
 * test_kafka_start.c - issue 11, "Start by time": the Kafka source (in this
 * process, with a pipeline) against librdkafka's mock cluster started here
 * on loopback. Each partition starts at the first offset whose event time
 * is within the history the rules need, whatever the group committed and
 * never at the topic's beginning, with eager and with cooperative-sticky
 * (incremental) assignment; a partition without history starts at its
 * end. Counts are exact: the history has a 100 s gap around the start time,
 * so any start time the wall clock gives (the search runs a few ms to
 * seconds after the events were made, up to 50 s on a loaded machine)
 * selects the same events.
 */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../pipeline_fixture.h"
#include "../wait_helpers.h"
#include "canaryd/clock.h"
#include "canaryd/config.h"
#include "canaryd/kafka_source.h"
#include "canaryd/pipeline.h"
#include "canaryd/timeutil.h"

#define TOPIC "events"

static const char CONFIG[] =
    "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\"]},"
    " \"windows\": {\"resolution\": \"1s\", \"allowed_lateness\": \"5s\","
    "  \"max_future_skew\": \"2m\", \"slack\": \"30s\"},"
    " \"verdicts\": {\"eval_interval\": \"1s\", \"min_canary_events\": 0},"
    " \"rules\": [{\"name\": \"errors\", \"kind\": \"threshold\","
    "  \"description\": \"Alert: any canary error.\", \"numerator\": [\"ERROR_OCCURRED\"],"
    "  \"scope\": \"canary\", \"op\": \">\", \"threshold\": 0, \"window\": \"10s\", \"for\": "
    "\"0s\", \"action\": \"alert\"}]}";

static rd_kafka_t *mrk;
static rd_kafka_mock_cluster_t *mc;
static char boot[256];
static cd_config_t *cfg;
static cd_pipeline_t *pl;
/* The source a test has running, NULL once finish()ed: teardown stops and
 * joins it before destroying the pipeline its workers write into, so a test
 * that fails an assertion mid-way (which leaves the test at once) never
 * frees the windows under running workers. */
static cd_kafka_source_t *running;
/* Bound on every wait for the source: generous, the source's progress is
 * the condition (under TSan on a loaded 2-core machine the start search of
 * a few partitions has taken longer than 30 s). */
#define WAIT_LIMIT_MS 90000

static void on_record(const cd_verdict_t *v, void *opaque)
{
    (void)v, (void)opaque;
}

static void setup(void)
{
    char e[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "log_level", "0", e, sizeof(e));
    mrk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof(e));
    cr_assert_not_null(mrk, "%s", e);
    mc = rd_kafka_mock_cluster_new(mrk, 1);
    cr_assert_not_null(mc);
    snprintf(boot, sizeof(boot), "%s", rd_kafka_mock_cluster_bootstraps(mc));
    cfg = fx_config(CONFIG);
    pl = fx_pipeline(cfg, cfg->max_future_skew_ms, 2, on_record, NULL);
    cd_pipeline_advance(pl, now_ms()); /* the window clock: events are not "future" */
}

static void finish(cd_kafka_source_t *s);

static void teardown(void)
{
    if (running) finish(running);
    cd_pipeline_destroy(pl);
    cd_config_free(cfg);
    if (mc) rd_kafka_mock_cluster_destroy(mc);
    if (mrk) rd_kafka_destroy(mrk);
}

TestSuite(kafka_start, .init = setup, .fini = teardown, .timeout = 240);

/* Produces one event per second of [from, to] (epoch ms, inclusive) into
 * partition part, message timestamp = event time. Returns how many. */
static int produce(rd_kafka_t *p, int part, int64_t from, int64_t to)
{
    int n = 0;
    for (int64_t t = from; t <= to; t += 1000, n++) {
        char ts[40], buf[256];
        int len = snprintf(buf, sizeof(buf),
                           "{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":\"%s\","
                           "\"cohort\":\"stable\"}",
                           cd_time_format(t, ts, sizeof(ts)));
        cr_assert_eq(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(part),
                                       RD_KAFKA_V_VALUE(buf, (size_t)len),
                                       RD_KAFKA_V_TIMESTAMP(t),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    return n;
}

static rd_kafka_t *producer(void)
{
    char e[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", boot, e, sizeof(e));
    rd_kafka_conf_set(c, "linger.ms", "5", e, sizeof(e));
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof(e));
    cr_assert_not_null(p, "%s", e);
    return p;
}

static void flush(rd_kafka_t *p)
{
    cr_assert_eq(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* Commits offset `off` of every partition for group (as an earlier member
 * would have). */
static void commit_for(const char *group, int nparts, int64_t off)
{
    char e[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", boot, e, sizeof(e));
    rd_kafka_conf_set(c, "group.id", group, e, sizeof(e));
    rd_kafka_t *k = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof(e));
    cr_assert_not_null(k, "%s", e);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nparts);
    for (int i = 0; i < nparts; i++) rd_kafka_topic_partition_list_add(l, TOPIC, i)->offset = off;
    cr_assert_eq(rd_kafka_commit(k, l, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(k);
}

static cd_kafka_source_t *source_with(const char *group, int threads, int64_t history_ms,
                                      const char *strategy);

static cd_kafka_source_t *source(const char *group, int threads, int64_t history_ms)
{
    return source_with(group, threads, history_ms, NULL);
}

/* strategy: partition.assignment.strategy, or NULL for librdkafka's (eager) */
static cd_kafka_source_t *source_with(const char *group, int threads, int64_t history_ms,
                                      const char *strategy)
{
    char err[512];
    cd_kafka_conf_t kc;
    cd_kafka_conf_init(&kc);
    snprintf(kc.brokers, sizeof(kc.brokers), "%s", boot);
    snprintf(kc.topics[0], sizeof(kc.topics[0]), TOPIC);
    kc.ntopics = 1;
    snprintf(kc.group, sizeof(kc.group), "%s", group);
    kc.threads = threads;
    /* librdkafka 2.0's mock holds a rebalance for the session timeout minus
     * 1 s when a member joins late (bench_kafka.c): 45 s by default */
    const char *props[][2] = {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"}};
    for (int i = 0; i < 2; i++) {
        snprintf(kc.prop_names[i], sizeof(kc.prop_names[i]), "%s", props[i][0]);
        snprintf(kc.prop_values[i], sizeof(kc.prop_values[i]), "%s", props[i][1]);
    }
    kc.nprops = 2;
    if (strategy) {
        snprintf(kc.prop_names[2], sizeof(kc.prop_names[2]), "partition.assignment.strategy");
        snprintf(kc.prop_values[2], sizeof(kc.prop_values[2]), "%s", strategy);
        kc.nprops = 3;
    }
    cd_kafka_source_t *s = cd_kafka_source_new(&kc, cfg, pl, err, sizeof(err));
    cr_assert_not_null(s, "%s", err);
    cr_assert_eq(cd_kafka_source_set_history(s, &kc, cfg, history_ms, err, sizeof(err)), 0, "%s",
                 err);
    running = s; /* from here teardown stops it should the test fail */
    cr_assert_eq(cd_kafka_source_start(s, err, sizeof(err)), 0, "%s", err);
    return s;
}

/* A clean stop (commit, leave the group), then free. */
static void finish(cd_kafka_source_t *s)
{
    cd_kafka_source_stop(s, 5000);
    cd_kafka_source_destroy(s);
    if (s == running) running = NULL;
}

/* Waits (WAIT_LIMIT_MS at most, on the monotonic clock) until every
 * partition is assigned and read to its end; returns the messages counted
 * then. */
static uint64_t read_to_end(cd_kafka_source_t *s, int nparts)
{
    cd_kafka_stats_t st;
    int64_t t0 = cd_mono_ms();
    for (;;) {
        cd_kafka_source_stats(s, &st);
        if (st.assigned == nparts && cd_kafka_source_caught_up(s)) return st.messages;
        if (cd_mono_ms() - t0 > WAIT_LIMIT_MS) break;
        sleep_ms(10);
    }
    cr_assert_fail("not read to the end within %d s: %d of %d partitions assigned, %llu messages",
                   WAIT_LIMIT_MS / 1000, st.assigned, nparts, (unsigned long long)st.messages);
    return 0;
}

/* 3 partitions, each with old history (600 s to 200 s ago) and the last
 * 100 s: a member starting with 150 s of history reads exactly the last
 * 100 s of each, with a new group and with a group whose commit is at the
 * topic's beginning. */
Test(kafka_start, starts_at_the_history_span_whatever_was_committed)
{
    cr_assert_eq(rd_kafka_mock_topic_create(mc, TOPIC, 3, 1), 0);
    int64_t now = now_ms() / 1000 * 1000;
    rd_kafka_t *p = producer();
    int recent = 0, old = 0;
    for (int part = 0; part < 3; part++) {
        old += produce(p, part, now - 600000, now - 200000);
        recent += produce(p, part, now - 100000, now);
    }
    flush(p);
    cr_assert_eq(recent, 3 * 101);
    cr_assert_eq(old, 3 * 401);
    commit_for("committed-at-start", 3, 0);
    const char *groups[] = {"new-group", "committed-at-start"};
    for (int g = 0; g < 2; g++) {
        cd_kafka_stats_t st;
        cd_kafka_source_t *s = source(groups[g], 2, 150000);
        uint64_t got = read_to_end(s, 3);
        cd_kafka_source_stats(s, &st);
        finish(s);
        cr_assert_eq(got, (uint64_t)recent, "group %s read %llu messages, want %d", groups[g],
                     (unsigned long long)got, recent);
        cr_assert_eq(st.start_searches, 3);
        cr_assert_eq(st.start_failed, 0);
        cr_assert_eq(st.start_at_end, 0);
        /* the mock answers no time (kafka_start.c): found by reading, in a
         * handful of probes per partition (bisection alone: 10) */
        cr_assert_eq(st.start_broker, 0);
        cr_assert_leq(st.start_probes, 3 * 12, "%llu probes",
                      (unsigned long long)st.start_probes);
        cr_assert_geq(st.start_probes, 3);
    }
    rd_kafka_destroy(p);
}

/* An empty partition and one whose events are all older than the history
 * start at their end: nothing is read until new events come, then exactly
 * those. */
Test(kafka_start, partition_without_history_starts_at_its_end)
{
    cr_assert_eq(rd_kafka_mock_topic_create(mc, TOPIC, 2, 1), 0);
    int64_t now = now_ms() / 1000 * 1000;
    rd_kafka_t *p = producer();
    cr_assert_eq(produce(p, 1, now - 600000, now - 300000), 301);
    flush(p);
    cd_kafka_source_t *s = source("fresh", 1, 60000);
    cr_assert_eq(read_to_end(s, 2), 0);
    cd_kafka_stats_t st;
    cd_kafka_source_stats(s, &st);
    cr_assert_eq(st.start_searches, 2);
    cr_assert_eq(st.start_at_end, 2);
    cr_assert_eq(st.start_failed, 0);
    /* new events, in both partitions */
    int64_t t = now_ms() / 1000 * 1000;
    int n = produce(p, 0, t, t + 4000) + produce(p, 1, t, t + 4000);
    flush(p);
    for (int64_t t0 = cd_mono_ms(); cd_mono_ms() - t0 <= WAIT_LIMIT_MS; sleep_ms(10)) {
        cd_kafka_source_stats(s, &st);
        if (st.messages >= (uint64_t)n && cd_kafka_source_caught_up(s)) break;
    }
    cd_kafka_source_stats(s, &st);
    cr_assert_eq(st.messages, (uint64_t)n);
    finish(s);
    rd_kafka_destroy(p);
}

/* Without a history (the default), the committed offset as before: a group
 * committed at 0 reads everything. */
Test(kafka_start, no_history_keeps_the_committed_offset)
{
    cr_assert_eq(rd_kafka_mock_topic_create(mc, TOPIC, 1, 1), 0);
    int64_t now = now_ms() / 1000 * 1000;
    rd_kafka_t *p = producer();
    int n = produce(p, 0, now - 100000, now);
    flush(p);
    cd_kafka_source_t *s = source("plain", 1, 0);
    cr_assert_eq(read_to_end(s, 1), (uint64_t)n);
    cd_kafka_stats_t st;
    cd_kafka_source_stats(s, &st);
    cr_assert_eq(st.start_searches, 0);
    finish(s);
    rd_kafka_destroy(p);
}

/* Cooperative-sticky: the partitions come in incremental assigns (each
 * worker its own, as it joins); every one starts by time all the same. */
Test(kafka_start, cooperative_sticky_incremental_assigns_start_by_time)
{
    cr_assert_eq(rd_kafka_mock_topic_create(mc, TOPIC, 4, 1), 0);
    int64_t now = now_ms() / 1000 * 1000;
    rd_kafka_t *p = producer();
    int recent = 0;
    for (int part = 0; part < 4; part++) {
        produce(p, part, now - 600000, now - 200000);
        recent += produce(p, part, now - 100000, now);
    }
    flush(p);
    cd_kafka_source_t *s = source_with("coop", 2, 150000, "cooperative-sticky");
    uint64_t got = read_to_end(s, 4);
    cd_kafka_stats_t st;
    cd_kafka_source_stats(s, &st);
    finish(s);
    cr_assert_eq(got, (uint64_t)recent, "read %llu, want %d", (unsigned long long)got, recent);
    cr_assert_geq(st.start_searches, 4);
    cr_assert_eq(st.start_failed, 0);
    rd_kafka_destroy(p);
}
