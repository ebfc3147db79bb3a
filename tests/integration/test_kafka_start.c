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
 * selects the same events. A rebalance while the source is still below
 * the group's older commit resumes after what it counted (the last test).
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
#include "canaryd/window.h"

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
        /* each partition looked for at least once, and again each time a
         * rebalance between the two workers' joins moved it before anything
         * was read from it (nothing counted there, so nothing to resume
         * from): under TSan at load 10 the first worker was assigned two
         * partitions and revoked twice before the second joined (7
         * assignments of a partition, 40 probes in all). The
         * messages above are exact whatever the rebalances. */
        cr_assert_geq(st.start_searches, 3);
        cr_assert_eq(st.start_failed, 0);
        cr_assert_eq(st.start_at_end, 0);
        /* the mock answers no time (kafka_start.c): found by reading, in a
         * handful of probes per search (bisection alone: 10) */
        cr_assert_eq(st.start_broker, 0);
        cr_assert_leq(st.start_probes, st.start_searches * 12, "%llu probes for %llu searches",
                      (unsigned long long)st.start_probes,
                      (unsigned long long)st.start_searches);
        cr_assert_geq(st.start_probes, st.start_searches);
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

/* Kafka protocol request types, for the mock's error injection. */
#define KAFKA_API_FETCH 1
#define KAFKA_API_OFFSET_COMMIT 8

/* The next n requests of type api, from any client, fail with err. */
static void refuse(int16_t api, rd_kafka_resp_err_t err, size_t n)
{
    rd_kafka_resp_err_t *e = malloc(n * sizeof(*e));
    cr_assert_not_null(e);
    for (size_t i = 0; i < n; i++)
        e[i] = err;
    rd_kafka_mock_push_request_errors_array(mc, api, n, e);
    free(e);
}

/* A plain member of group (eager, commits only when told): another
 * process sharing the group, or a worker joining late. */
static rd_kafka_t *member(const char *group)
{
    char e[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    const char *props[][2] = {{"bootstrap.servers", boot},
                              {"group.id", group},
                              {"session.timeout.ms", "6000"},
                              {"heartbeat.interval.ms", "500"},
                              {"enable.auto.commit", "false"}};
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
        cr_assert_eq(rd_kafka_conf_set(c, props[i][0], props[i][1], e, sizeof(e)), RD_KAFKA_CONF_OK,
                     "%s", e);
    rd_kafka_t *k = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof(e));
    cr_assert_not_null(k, "%s", e);
    rd_kafka_poll_set_consumer(k);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, TOPIC, RD_KAFKA_PARTITION_UA);
    cr_assert_eq(rd_kafka_subscribe(k, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    return k;
}

/* Waits (WAIT_LIMIT_MS at most) until the source has n partitions assigned. */
static void wait_assigned(cd_kafka_source_t *s, int n)
{
    cd_kafka_stats_t st;
    for (int64_t t0 = cd_mono_ms(); cd_mono_ms() - t0 <= WAIT_LIMIT_MS; sleep_ms(10)) {
        cd_kafka_source_stats(s, &st);
        if (st.assigned == n) return;
    }
    cr_assert_fail("the source never had %d partition(s) assigned (%d)", n, st.assigned);
}

/* The per-partition offsets of the test below: the history the source
 * reads before the rebalance (after 401 older events each), the events
 * produced while it is held at the end of that history, the group's
 * commit (made before the source starts, by an earlier process that had
 * counted further: past the history's end) and the commit the second
 * member makes on the partition it takes. */
#define RB_OLD 401
#define RB_HISTORY 20
#define RB_NEW 10
#define RB_COMMITTED (RB_OLD + RB_HISTORY + 5)
#define RB_OTHERS (RB_OLD + RB_HISTORY + 8)

/* kafka_source.c, fresher_than_committed: a restarted agent starts each
 * partition by time, below the commit its dead predecessor made; a
 * rebalance while it is still below that commit (found under TSan in
 * test_live_kill: its second worker joining late) must not resume its
 * partitions at the commit, skipping what lies between what it counted and
 * the commit: its windows would stay short. The commit of another member
 * that had a partition meanwhile still wins (it counted further).
 * Deterministic on the mock: every OffsetCommit of the source is refused
 * (REBALANCE_IN_PROGRESS, as Kafka refuses a commit during a rebalance;
 * the auto-commits too, so the group's commit stays the old one), and once
 * the source has read its history to the end every Fetch fails (retried
 * by librdkafka) until its last assignment, so it is held below the commit
 * through both rebalances: a second member joining (it takes one partition
 * and commits on it) and leaving. The mock's Fetch cannot hold a consumer
 * below events it already has, so the events above the history are
 * produced while it is held, and the old commit is made past the log's end
 * at the time. Failed before the fix: 47 messages for 52 (both partitions
 * resumed at a commit; the source's own one skipped 5 events). */
Test(kafka_start, rebalance_below_an_older_commit_resumes_after_what_was_counted)
{
    cr_assert_eq(rd_kafka_mock_topic_create(mc, TOPIC, 2, 1), 0);
    int64_t now = now_ms() / 1000 * 1000;
    /* event times within the window ring (40 s: 10 s window + 30 s slack),
     * the history start (100 s back) in the gap after the old events */
    int64_t hist = now - 35000, fresh = hist + RB_HISTORY * 1000;
    rd_kafka_t *p = producer();
    for (int part = 0; part < 2; part++) {
        cr_assert_eq(produce(p, part, now - 600000, now - 200000), RB_OLD);
        cr_assert_eq(produce(p, part, hist, fresh - 1000), RB_HISTORY);
    }
    flush(p);
    commit_for("restarted", 2, RB_COMMITTED);
    refuse(KAFKA_API_OFFSET_COMMIT, RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS, 10000);
    cd_kafka_source_t *s = source("restarted", 1, 100000);
    cr_assert_eq(read_to_end(s, 2), 2 * RB_HISTORY);
    /* held: the Fetch requests answered from here on carry an error, and
     * none answered before had these events */
    refuse(KAFKA_API_FETCH, RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE, 100000);
    for (int part = 0; part < 2; part++)
        cr_assert_eq(produce(p, part, fresh, fresh + (RB_NEW - 1) * 1000), RB_NEW);
    flush(p);

    /* a second member joins: the source gives both partitions up (its
     * commit refused) and gets one back */
    rd_kafka_t *m = member("restarted");
    rd_kafka_topic_partition_list_t *mine = NULL;
    for (int64_t t0 = cd_mono_ms(); cd_mono_ms() - t0 <= WAIT_LIMIT_MS;) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(m, 100);
        if (msg) rd_kafka_message_destroy(msg);
        if (mine) rd_kafka_topic_partition_list_destroy(mine);
        mine = NULL;
        cr_assert_eq(rd_kafka_assignment(m, &mine), RD_KAFKA_RESP_ERR_NO_ERROR);
        if (mine->cnt > 0) break;
    }
    cr_assert_eq(mine->cnt, 1, "the second member has %d partition(s)", mine->cnt);
    int32_t theirs = mine->elems[0].partition;
    rd_kafka_topic_partition_list_destroy(mine);
    wait_assigned(s, 1);
    /* it counted further there and committed (its commit alone let through) */
    rd_kafka_mock_clear_request_errors(mc, KAFKA_API_OFFSET_COMMIT);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, TOPIC, theirs)->offset = RB_OTHERS;
    cr_assert_eq(rd_kafka_commit(m, l, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    refuse(KAFKA_API_OFFSET_COMMIT, RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS, 10000);
    /* and leaves: the source gets both partitions back */
    cr_assert_eq(rd_kafka_consumer_close(m), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(m);
    wait_assigned(s, 2);
    rd_kafka_mock_clear_request_errors(mc, KAFKA_API_FETCH);
    rd_kafka_mock_clear_request_errors(mc, KAFKA_API_OFFSET_COMMIT);

    /* its own partition from where it stopped counting, the other's from
     * that member's commit */
    const int want = 2 * RB_HISTORY + RB_NEW + (RB_OLD + RB_HISTORY + RB_NEW - RB_OTHERS);
    uint64_t got = read_to_end(s, 2);
    cd_kafka_stats_t st;
    cd_kafka_source_stats(s, &st);
    finish(s);
    rd_kafka_destroy(p);
    cr_assert_eq(got, (uint64_t)want, "counted %llu messages, want %d", (unsigned long long)got,
                 want);
    cr_assert_eq(st.redelivered, 0);
    cr_assert_eq(st.start_searches, 2); /* the first assignment only */
    /* the windows hold each of them once */
    cd_pipeline_stats_t ps;
    cd_pipeline_stats(pl, &ps);
    cr_assert_eq(ps.accepted, (uint64_t)want);
    cr_assert_eq(ps.late, 0);
    int type = -1;
    for (int i = 0; i < cd_pipeline_ntypes(pl); i++)
        if (strcmp(cd_pipeline_type_name(pl, i), "REQUEST_COMPLETED") == 0) type = i;
    cr_assert_geq(type, 0);
    cr_assert_eq(cd_window_sum(cd_pipeline_window(pl), type, CD_COHORT_STABLE, now + 60000, 200000),
                 (uint64_t)want);
}
