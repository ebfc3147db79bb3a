/*
 * kafka_source.h - the live event source: librdkafka high-level consumers in
 * a consumer group, feeding payloads into a pipeline from N worker threads.
 *
 * Configuration comes from the config's "kafka" section (parsed by
 * agent/config/config_kafka.c, see docs/live.md), optionally overridden on the
 * command line, and every librdkafka property is passed through. Offsets are
 * stored only after the event was counted and committed periodically
 * (librdkafka's auto commit of stored offsets), on rebalance revoke (before
 * giving the partitions up) and on stop.
 */
#ifndef CANARYD_KAFKA_SOURCE_H
#define CANARYD_KAFKA_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canaryd/config.h"
#include "canaryd/pipeline.h"
#include "canaryd/shutdown.h"

#define CD_KAFKA_MAX_TOPICS 16
#define CD_KAFKA_MAX_PROPS 64
#define CD_KAFKA_MAX_THREADS 64

/* The parsed "kafka" section. Plain data: copy it freely. */
typedef struct cd_kafka_conf {
    char brokers[1024];                     /* bootstrap.servers; "" = not given */
    char topics[CD_KAFKA_MAX_TOPICS][256];  /* at least one needed to run */
    int ntopics;
    char group[256];                        /* group.id; default "canaryd" */
    char group_instance_id[200];            /* static membership: worker i's group.instance.id
                                               is "<this>-<i>"; "" = dynamic (default) */
    char cohort_header[128];                /* message header holding the cohort; "" = none */
    int threads;                            /* worker threads; 0 = number of online CPUs */
    int64_t max_lag_wait_ms;                /* longest judgement hold for a partition behind
                                               (live.c, "Watermark"); -1 = windows.slack, 0 = none */
    bool start_committed;                   /* kafka.start "committed": no start by time */
    int nprops;                             /* "properties", passed to librdkafka as is */
    char prop_names[CD_KAFKA_MAX_PROPS][128];
    char prop_values[CD_KAFKA_MAX_PROPS][1024];
} cd_kafka_conf_t;

/* Defaults: no brokers, no topics, group "canaryd", no header, threads 0. */
void cd_kafka_conf_init(cd_kafka_conf_t *kc);

/*
 * Parses the "kafka" section (a jansson object, cd_config_t.kafka_json; NULL
 * = absent: defaults) into *kc and checks it against the rest of cfg (the
 * cohort header needs a top-level cohort field). Every property is tried on a
 * librdkafka configuration; a refused one is reported with its key path and
 * librdkafka's own message ("kafka.properties.foo: No such configuration
 * property: \"foo\""), with the value of secret properties (passwords, keys)
 * never shown. Problems go to diag, one line each; returns true when none.
 * Any thread; allocates only temporarily.
 */
bool cd_kafka_conf_parse(const cd_config_t *cfg, cd_kafka_conf_t *kc, cd_diag_t *diag);

/* What running needs beyond a valid section: brokers and at least one topic
 * (from the config or the command line). Reports into diag; true when ok. */
bool cd_kafka_conf_runnable(const cd_kafka_conf_t *kc, cd_diag_t *diag);

/* Whether a librdkafka property holds a secret (its value is never logged). */
bool cd_kafka_prop_is_secret(const char *name);

typedef struct cd_kafka_source cd_kafka_source_t;

typedef struct cd_kafka_stats {
    uint64_t messages;       /* payloads handed to the pipeline (each counted exactly once there) */
    uint64_t header_cohort;  /* of which the cohort came from the message header */
    uint64_t kafka_errors;   /* consumer errors reported by librdkafka (retried by it) */
    uint64_t commits_failed; /* offset commits that failed (retried at the next commit) */
    uint64_t rebalances;     /* assignments and revocations */
    uint64_t redelivered;    /* messages skipped: already counted by this process */
    uint64_t fetch_nudges;   /* fetchers woken after a full prefetch queue drained (librdkafka < 2.1) */
    int assigned;            /* partitions assigned now, over all workers */
    int topic_partitions;    /* the subscribed topics' partitions (metadata); -1 unknown */
    bool covered;            /* assigned covers them all (or the count is unknown) */
    char coverage[200];      /* why not, when !covered (cd_kafka_coverage) */
    /* start by time (cd_kafka_source_set_history) */
    uint64_t start_searches; /* partitions whose start offset was looked for by time */
    uint64_t start_probes;   /* messages read (not counted) to find them */
    uint64_t start_broker;   /* of the searches, answered by the broker's offsets-for-times */
    uint64_t start_at_end;   /* of the searches, started at the partition's end (no history) */
    uint64_t start_failed;   /* not found in time: started at the committed offset */
} cd_kafka_stats_t;

/*
 * Creates kc->threads consumers (one per worker; see kafka_source.c for why)
 * in group kc->group, subscribed to kc->topics, counting into p (borrowed;
 * must outlive the source), with cfg's decoder settings (borrowed). Nothing
 * is consumed before cd_kafka_source_start(). Returns NULL with a message in
 * errbuf (a refused property names its key path). Free with
 * cd_kafka_source_destroy(). Caller's thread.
 */
cd_kafka_source_t *cd_kafka_source_new(const cd_kafka_conf_t *kc, const cd_config_t *cfg,
                                       cd_pipeline_t *p, char *errbuf, size_t errsize);

/*
 * Start by time (issue 11): on every assignment, each partition this
 * process has not counted before starts at the first offset whose event
 * time is at or after (the wall clock then - history_ms; the wall clock of
 * this call instead while the pipeline has judged nothing or catches up,
 * cd_pipeline_catchup: the grid starts from that history), or at its end
 * when it has nothing that recent -- never at the topic's beginning, never
 * merely at the committed offset (found by kafka_start.c: the broker's
 * offsets-for-times where it answers, checked by reading, else a search
 * that reads one message per probe on a handle of its own). A partition
 * whose start is not found within 10 s starts at its committed offset.
 * history_ms 0 (the default without this call): the committed offset, as
 * librdkafka does. kc: the connection properties for the search's handle;
 * cfg: the decoder settings (event times). Before cd_kafka_source_start;
 * 0, or -1 with a message. Caller's thread.
 */
int cd_kafka_source_set_history(cd_kafka_source_t *s, const cd_kafka_conf_t *kc,
                                const cd_config_t *cfg, int64_t history_ms, char *errbuf,
                                size_t errsize);

/* Starts the worker threads. 0, or -1 with a message. */
int cd_kafka_source_start(cd_kafka_source_t *s, char *errbuf, size_t errsize);

/*
 * Stops consuming: every worker finishes the message in hand (counted and
 * stored), commits its stored offsets synchronously and leaves the group,
 * within deadline_ms in all (after that the consumer is destroyed without
 * leaving the group; its uncommitted events will be consumed again by the
 * next member). Joins the workers. Idempotent. The thread that started it.
 */
void cd_kafka_source_stop(cd_kafka_source_t *s, int64_t deadline_ms);

/* How long cd_kafka_source_destroy() waits for librdkafka to shut down:
 * CD_KAFKA_DESTROY_WAIT_MS, a share of the shutdown budget (shutdown.h). */

/*
 * Stops (deadline 0 if not stopped yet) and frees. librdkafka's handles are
 * destroyed within CD_KAFKA_DESTROY_WAIT_MS; when it takes longer (with the
 * broker gone it can take minutes), they and the source are left to a
 * detached thread until the process exits, with a warning: the agent still
 * exits within its shutdown budget. Caller's thread.
 */
void cd_kafka_source_destroy(cd_kafka_source_t *s);

/* Counters (relaxed snapshot). Any thread. */
void cd_kafka_source_stats(const cd_kafka_source_t *s, cd_kafka_stats_t *out);

/* True when partitions are assigned and every one has reached its known end
 * (the consumer position is at the high watermark last fetched). Any thread. */
bool cd_kafka_source_caught_up(const cd_kafka_source_t *s);

/* One assigned partition's consumer lag: messages between the consumer's
 * position and the high watermark last fetched; -1 while either is unknown
 * (nothing fetched yet). */
typedef struct cd_kafka_lag {
    char topic[256];
    int32_t partition;
    int64_t lag;
} cd_kafka_lag_t;

/* The assigned partitions' lag, up to max stored in out; returns how many
 * partitions are assigned (may exceed max). From librdkafka's cached state,
 * no broker round trip. Any thread, while the source is started and not yet
 * stopped (cd_kafka_source_stop closes the consumers). */
int cd_kafka_source_lag(const cd_kafka_source_t *s, cd_kafka_lag_t *out, int max);

/* The coverage decision (kafka_source.c, "Coverage"): true when `assigned`
 * partitions cover the topics' `total` (or total is unknown, <= 0); else
 * false, with the reason naming `group` in why. Pure; any thread. */
bool cd_kafka_coverage(int assigned, int total, const char *group, char *why, size_t size);

/*
 * The source's watermark (kafka_source.c, "Watermark"): epoch ms up to which
 * every assigned partition is known to be read (the minimum over them of
 * the newest event time counted and the last time the broker confirmed the
 * partition read to its end); INT64_MIN while a partition's is unknown,
 * nothing is assigned, or the assignment does not cover every partition of
 * the topics (cd_kafka_coverage). who (may be NULL) receives the slowest partition,
 * "events[2]", or why it is unknown. Any thread; reads what the workers
 * publish per run of messages (a live clock's cd_live_watermark_cb).
 */
int64_t cd_kafka_source_watermark(const cd_kafka_source_t *s, char *who, size_t size);

/* End-offset probes of the watermark prober that failed (timed out, broker
 * unreachable). Any thread. */
uint64_t cd_kafka_source_probes_failed(const cd_kafka_source_t *s);

/* True once librdkafka raised a fatal error (the agent must stop). */
bool cd_kafka_source_failed(const cd_kafka_source_t *s);

#endif
