/*
 * kafka_mock.h - librdkafka's mock cluster for the live suites, started in
 * the test process on loopback: one broker, one topic, its bootstrap list
 * in live_helpers.h's `bootstraps` (which start() passes to canaryd run),
 * a producer on it, and the events the suites produce (JSON stamped with
 * the current time, round-robin over the partitions). One copy for
 * test_live, test_live_coord, test_live_recover and test_http_api.
 *
 * Header-only (static inline) like live_helpers.h, which it needs. State:
 * one cluster per test process (Criterion runs each test in its own), and
 * the topic and partition count it was started with, which produce_raw
 * writes to.
 * Threading: the test's thread; the cluster runs librdkafka's own threads.
 */
#ifndef CANARYD_TEST_KAFKA_MOCK_H
#define CANARYD_TEST_KAFKA_MOCK_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "live_helpers.h"

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static char mock_topic[64];
static int mock_parts;

/* A one-broker cluster holding topic with parts partitions; fills
 * bootstraps. */
static inline void mock_start(const char *topic, int parts)
{
    char e[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "log_level", "0", e, sizeof(e));
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof(e));
    cr_assert_not_null(mock_rk, "%s", e);
    mock = rd_kafka_mock_cluster_new(mock_rk, 1);
    cr_assert_not_null(mock);
    cr_assert_eq(rd_kafka_mock_topic_create(mock, topic, parts, 1), 0);
    snprintf(mock_topic, sizeof(mock_topic), "%s", topic);
    mock_parts = parts;
    snprintf(bootstraps, sizeof(bootstraps), "%s", rd_kafka_mock_cluster_bootstraps(mock));
}

/* Teardown: destroys the cluster (after the agents are gone). */
static inline void mock_stop(void)
{
    if (mock) rd_kafka_mock_cluster_destroy(mock);
    if (mock_rk) rd_kafka_destroy(mock_rk);
    mock = NULL;
    mock_rk = NULL;
}

/* A producer on bootstraps. Idempotent: no duplicates from producer
 * retries when a test takes the broker down. */
static inline rd_kafka_t *producer(void)
{
    char e[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(c, "bootstrap.servers", bootstraps, e, sizeof(e)), 0);
    rd_kafka_conf_set(c, "log_level", "0", e, sizeof(e));
    cr_assert_eq(rd_kafka_conf_set(c, "enable.idempotence", "true", e, sizeof(e)), 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof(e));
    cr_assert_not_null(rk, "%s", e);
    return rk;
}

/* One message holding payload on the next partition of mock_start's topic
 * (*seq counts them, round-robin); header: the `cohort` header's value, or
 * NULL for none. */
static inline void produce_with_header(rd_kafka_t *rk, const char *payload, const char *header,
                                       int *seq)
{
    rd_kafka_resp_err_t e;
    int part = (*seq)++ % mock_parts;
    if (header)
        e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(mock_topic), RD_KAFKA_V_PARTITION(part),
                              RD_KAFKA_V_VALUE((void *)payload, strlen(payload)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_HEADER("cohort", header, -1), RD_KAFKA_V_END);
    else
        e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(mock_topic), RD_KAFKA_V_PARTITION(part),
                              RD_KAFKA_V_VALUE((void *)payload, strlen(payload)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    cr_assert_eq(e, 0, "produce: %s", rd_kafka_err2str(e));
}

static inline void produce_raw(rd_kafka_t *rk, const char *payload, int *seq)
{
    produce_with_header(rk, payload, NULL, seq);
}

/* n events of type stamped now + ahead_ms (ahead_ms may be negative).
 * cohort NULL: none in the payload, version 2.5.0; else version, or when
 * NULL 2.5.0 for the canary and 2.4.0 for any other cohort. header: the
 * `cohort` header's value, or NULL. */
static inline void produce_events(rd_kafka_t *rk, int n, const char *type, const char *cohort,
                                  const char *version, int64_t ahead_ms, const char *header,
                                  int *seq)
{
    for (int i = 0; i < n; i++) {
        char payload[256];
        long long ts = (long long)(now_ms() + ahead_ms);
        if (cohort) {
            const char *v = version                         ? version
                            : strcmp(cohort, "canary") == 0 ? "2.5.0"
                                                            : "2.4.0";
            snprintf(payload, sizeof(payload),
                     "{\"event_type\":\"%s\",\"timestamp\":%lld,\"cohort\":\"%s\","
                     "\"version\":\"%s\"}",
                     type, ts, cohort, v);
        } else {
            snprintf(payload, sizeof(payload),
                     "{\"event_type\":\"%s\",\"timestamp\":%lld,\"version\":\"2.5.0\"}", type,
                     ts);
        }
        produce_with_header(rk, payload, header, seq);
    }
}

/* n events of type/cohort stamped now (see produce_events). */
static inline void produce(rd_kafka_t *rk, int n, const char *type, const char *cohort,
                           const char *header, int *seq)
{
    produce_events(rk, n, type, cohort, NULL, 0, header, seq);
}

/* Sum of the offsets group has committed on mock_start's topic (-1 while
 * the coordinator cannot answer). Asked with a consumer handle of the group
 * that never subscribes, so it does not join. */
static inline long long mock_committed(const char *group)
{
    char e[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(c, "bootstrap.servers", bootstraps, e, sizeof(e)), 0);
    cr_assert_eq(rd_kafka_conf_set(c, "group.id", group, e, sizeof(e)), 0);
    rd_kafka_conf_set(c, "log_level", "0", e, sizeof(e));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof(e));
    cr_assert_not_null(rk, "%s", e);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(mock_parts);
    for (int i = 0; i < mock_parts; i++)
        rd_kafka_topic_partition_list_add(l, mock_topic, i);
    long long total = -1;
    if (rd_kafka_committed(rk, l, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        total = 0;
        for (int i = 0; i < l->cnt; i++)
            if (l->elems[i].offset > 0) total += l->elems[i].offset;
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return total;
}

/* Waits (20 s at most) until everything produced is acknowledged. */
static inline void flush_all(rd_kafka_t *rk)
{
    cr_assert_eq(rd_kafka_flush(rk, 20000), 0, "flush timed out");
}

#endif
