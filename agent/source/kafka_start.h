/*
 * kafka_start.h - where a partition starts: the first offset whose event
 * time is at or after a given time (issue 11, "Start by time"). Internal to
 * agent/source (the Kafka source calls it on every assignment); see
 * kafka_start.c for how the offset is found and docs/operations.md ("What
 * survives a restart") for what a real broker does differently from the
 * mock cluster.
 */
#ifndef CANARYD_KAFKA_START_H
#define CANARYD_KAFKA_START_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "canaryd/config.h"
#include "canaryd/kafka_source.h"

typedef struct cd_kafka_start cd_kafka_start_t;

/* Counters of the searches (relaxed snapshot). */
typedef struct cd_kafka_start_stats {
    uint64_t searches;       /* partitions whose start was looked for */
    uint64_t probes;         /* messages read to find them (one per probe) */
    uint64_t broker_answers; /* partitions where the broker's offsets-for-times answer held */
    uint64_t at_end;         /* partitions started at their end (no history in the span) */
    uint64_t failed;         /* partitions not found in time (they start at the committed offset) */
} cd_kafka_start_stats_t;

/* A searcher with its own librdkafka handle (the connection properties of
 * kc, no group membership), decoding event times with cfg's decoder
 * settings. NULL with a message. */
cd_kafka_start_t *cd_kafka_start_new(const cd_kafka_conf_t *kc, const cd_config_t *cfg,
                                     char *errbuf, size_t errsize);

/* The handle (for the source's bounded destroy) and the searcher without
 * it: cd_kafka_start_free leaves the handle to the caller. */
rd_kafka_t *cd_kafka_start_handle(cd_kafka_start_t *k);
void cd_kafka_start_free(cd_kafka_start_t *k);

/*
 * For every element of l whose offset is RD_KAFKA_OFFSET_INVALID, sets it to
 * the first offset whose event time is >= t_ms, or to the partition's end
 * offset when no message is that recent (an empty partition included).
 * An element not found within timeout_ms keeps RD_KAFKA_OFFSET_INVALID
 * (librdkafka then starts at the committed offset). Returns how many were
 * set. Any thread; calls are serialized (one handle).
 */
int cd_kafka_start_find(cd_kafka_start_t *k, rd_kafka_topic_partition_list_t *l, int64_t t_ms,
                        int64_t timeout_ms);

void cd_kafka_start_stats(cd_kafka_start_t *k, cd_kafka_start_stats_t *out);

#endif
