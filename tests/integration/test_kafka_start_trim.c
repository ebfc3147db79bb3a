/*
 * test_kafka_start_trim.c - the start-by-time search (agent/source/kafka_start.c)
 * while retention removes the partition's oldest messages under it: a probe
 * at an offset that was the log's start when the search began answers
 * "offset out of range", and the search must go on above it instead of
 * giving up (the partition then started at its committed offset: a
 * restarted agent read from a beginning that kept moving and was never
 * current, found by test_live_kill).
 *
 * librdkafka's mock cluster (started in this process) keeps about 5 MB per
 * partition and drops the oldest messages past that as new ones are
 * appended. The partition is filled with 20 KB messages (one per second of
 * event time), then a thread keeps appending while the search runs for a
 * time close to the head, so the head moves between the search's look at
 * the bounds and its probes. Checked: the search answers, with an offset
 * still readable whose event time is at or after the time asked, and the
 * message before it (when still there) is older.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../pipeline_fixture.h"
#include "../../agent/source/kafka_start.h"
#include "../wait_helpers.h"
#include "canaryd/config.h"

#define TOPIC "events"
#define T0 1795780800000LL /* 2026-11-27T12:00:00.000Z */
#define PAD 20000

static const char CONFIG[] =
    "{\"events\": {\"types\": [\"REQUEST_COMPLETED\"]},"
    " \"rules\": [{\"name\": \"errors\", \"kind\": \"threshold\", \"description\": \"Alert.\","
    "  \"numerator\": [\"REQUEST_COMPLETED\"], \"op\": \">\", \"threshold\": 0,"
    "  \"window\": \"10s\", \"action\": \"alert\"}]}";

static rd_kafka_t *mrk, *prod;
static rd_kafka_mock_cluster_t *mc;
static char boot[256];
static atomic_bool stop;
static atomic_llong next_sec; /* event second of the next message */
static char pad[PAD + 1];

static void produce_one(void)
{
    static char payload[PAD + 256];
    long long s = atomic_fetch_add(&next_sec, 1);
    int n = snprintf(payload, sizeof payload,
                     "{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":%lld,"
                     "\"cohort\":\"stable\",\"pad\":\"%s\"}",
                     T0 + s * 1000, pad);
    while (rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(0),
                             RD_KAFKA_V_VALUE(payload, (size_t)n),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(prod, 10);
    rd_kafka_poll(prod, 0);
}

static void *appender(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        produce_one();
        rd_kafka_flush(prod, 1000); /* one append at a time: the head moves steadily */
    }
    return NULL;
}

/* Bounds [lo, hi) of partition 0 now. */
static void bounds(int64_t *lo, int64_t *hi)
{
    cr_assert_eq(rd_kafka_query_watermark_offsets(prod, TOPIC, 0, lo, hi, 5000), 0);
}

/* The event second of the message at off (a consumer of its own); -1 when
 * it is no longer there. */
static long long second_at(int64_t off)
{
    char e[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", boot, e, sizeof e);
    rd_kafka_conf_set(c, "group.id", "trim-check", e, sizeof e);
    rd_kafka_conf_set(c, "auto.offset.reset", "error", e, sizeof e);
    rd_kafka_conf_set(c, "log_level", "0", e, sizeof e);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof e);
    cr_assert_not_null(rk, "%s", e);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, TOPIC, 0)->offset = off;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    long long sec = -2;
    for (int64_t end = mono_ms() + 10000; mono_ms() < end && sec == -2;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (m->err)
            sec = -1;
        else if (m->offset == off) {
            const char *p = strstr((const char *)m->payload, "\"timestamp\":");
            cr_assert_not_null(p);
            sec = (strtoll(p + 12, NULL, 10) - T0) / 1000;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    cr_assert_neq(sec, -2, "offset %lld: no answer", (long long)off);
    return sec;
}

Test(kafka_start_trim, search_goes_on_above_offsets_retention_removed, .timeout = 120)
{
    char e[256];
    memset(pad, 'x', PAD);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", e, sizeof e);
    mrk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    cr_assert_not_null(mrk, "%s", e);
    mc = rd_kafka_mock_cluster_new(mrk, 1);
    cr_assert_not_null(mc);
    cr_assert_eq(rd_kafka_mock_topic_create(mc, TOPIC, 1, 1), 0);
    snprintf(boot, sizeof boot, "%s", rd_kafka_mock_cluster_bootstraps(mc));
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", boot, e, sizeof e);
    rd_kafka_conf_set(conf, "linger.ms", "0", e, sizeof e);
    rd_kafka_conf_set(conf, "log_level", "0", e, sizeof e);
    prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    cr_assert_not_null(prod, "%s", e);

    /* fill until retention drops the oldest: the log's start leaves 0 */
    int64_t lo = 0, hi = 0;
    for (int i = 0; lo == 0; i++) {
        for (int k = 0; k < 50; k++)
            produce_one();
        rd_kafka_flush(prod, 10000);
        bounds(&lo, &hi);
        cr_assert_lt(i, 40, "the mock cluster kept %lld messages of 20 KB", (long long)hi);
    }

    cd_config_t *cfg = fx_config(CONFIG);
    cd_kafka_conf_t kc;
    cd_kafka_conf_init(&kc);
    snprintf(kc.brokers, sizeof kc.brokers, "%s", boot);
    cd_kafka_conf_t *kcp = &kc;
    kcp->nprops = 1;
    snprintf(kcp->prop_names[0], sizeof kcp->prop_names[0], "log_level");
    snprintf(kcp->prop_values[0], sizeof kcp->prop_values[0], "0");
    cd_kafka_start_t *ks = cd_kafka_start_new(&kc, cfg, e, sizeof e);
    cr_assert_not_null(ks, "%s", e);

    pthread_t th;
    atomic_store(&stop, false);
    cr_assert_eq(pthread_create(&th, NULL, appender, NULL), 0);
    int rounds = 0, found = 0;
    for (; rounds < 20 && found < 5; rounds++) {
        /* a time two messages after the head: the probes are near it */
        bounds(&lo, &hi);
        long long t_sec = second_at(lo) + 2;
        if (t_sec < 2) continue; /* the head moved before it was read */
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, TOPIC, 0)->offset = RD_KAFKA_OFFSET_INVALID;
        int n = cd_kafka_start_find(ks, l, T0 + t_sec * 1000, 10000);
        int64_t off = l->elems[0].offset;
        rd_kafka_topic_partition_list_destroy(l);
        cr_assert_eq(n, 1, "round %d: the search gave up (t = +%lld s, head then %lld)", rounds,
                     t_sec, (long long)lo);
        long long at = second_at(off), before = second_at(off - 1);
        cr_assert(at == -1 || at >= t_sec, "round %d: offset %lld holds +%lld s < +%lld s", rounds,
                  (long long)off, at, t_sec);
        cr_assert(before < t_sec, "round %d: offset %lld - 1 holds +%lld s >= +%lld s", rounds,
                  (long long)off, before, t_sec);
        found++;
    }
    atomic_store(&stop, true);
    pthread_join(th, NULL);
    cd_kafka_start_stats_t st;
    cd_kafka_start_stats(ks, &st);
    cr_log_info("searches %llu, probes %llu, failed %llu", (unsigned long long)st.searches,
                (unsigned long long)st.probes, (unsigned long long)st.failed);
    cr_assert_eq(st.failed, 0);
    cr_assert_eq(found, 5, "%d searches in %d rounds", found, rounds);
    rd_kafka_destroy(cd_kafka_start_handle(ks));
    cd_kafka_start_free(ks);
    cd_config_free(cfg);
    rd_kafka_destroy(prod);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mrk);
}
