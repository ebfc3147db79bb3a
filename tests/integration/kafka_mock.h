/*
 * kafka_mock.h - librdkafka's mock cluster for the live suites, started in
 * the test process on loopback: one broker, one topic, its bootstrap list
 * in live_helpers.h's `bootstraps` (which start() passes to canaryd run),
 * and a producer on it. One copy for test_live, test_live_coord,
 * test_live_recover and test_http_api.
 *
 * Header-only (static inline) like live_helpers.h, which it needs. State:
 * one cluster per test process (Criterion runs each test in its own).
 * Threading: the test's thread; the cluster runs librdkafka's own threads.
 */
#ifndef CANARYD_TEST_KAFKA_MOCK_H
#define CANARYD_TEST_KAFKA_MOCK_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "live_helpers.h"

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;

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

/* Waits (20 s at most) until everything produced is acknowledged. */
static inline void flush_all(rd_kafka_t *rk)
{
    cr_assert_eq(rd_kafka_flush(rk, 20000), 0, "flush timed out");
}

#endif
