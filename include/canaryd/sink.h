/*
 * sink.h - where verdict records go: the verdict log, chat webhooks,
 * Alertmanager, an exec hook, Redis, a Kafka topic. One interface, one file
 * per sink in sinks/, one `static const struct cd_sink_ops` per file
 * (Fluent Bit's output plugins).
 *
 * Alertmanager's API has its own sink (sinks/alertmanager.c) besides the
 * webhook sink's "alertmanager" receiver format.
 *
 * Records reach sinks through the dispatcher (sinks/dispatcher.c): the
 * evaluating thread renders a record once and enqueues it into a bounded
 * queue (never blocking: a full queue drops and counts); one dispatcher thread
 * applies each sink's filter and calls its ops. A sink never sleeps, never
 * loops on retries and never blocks for long: it returns OK / RETRY / DROP,
 * or PENDING for an asynchronous delivery that it completes from poll(). The
 * dispatcher owns retries (full-jitter exponential backoff, base / cap /
 * max attempts per sink, honouring a destination's Retry-After), per-sink
 * rate limits, and the notification semantics (a resolved alert is sent only
 * to sinks with send_resolved).
 */
#ifndef CANARYD_SINK_H
#define CANARYD_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canaryd/config.h"
#include "canaryd/verdict.h"

typedef enum cd_sink_result {
    CD_SINK_OK = 0, /* delivered */
    CD_SINK_RETRY,  /* transient failure (timeout, 5xx, 429, connection refused): try again later */
    CD_SINK_DROP,   /* permanent failure (4xx other than 408/429, bad command): give up, logged */
    CD_SINK_PENDING /* asynchronous: the outcome is reported later through poll() */
} cd_sink_result_t;

/* One record as a sink sees it. Everything is borrowed for the duration of
 * the call (deliver) or until the delivery completes (PENDING): a sink that
 * needs it longer copies it. */
typedef struct cd_sink_msg {
    uint64_t id;            /* dispatcher sequence number, unique per process */
    const cd_verdict_t *v;  /* the record (its strings point into the message) */
    const char *json;       /* canaryd's verdict JSON for v, one line, no newline */
    size_t json_len;
    const char *service;    /* service name when known, else "" */
    int attempt;            /* 1 on the first try */
    uint64_t fencing_token; /* coordination (coord.h): the notifier's token, also the
                             * JSON's "fencing_token"; 0 = uncoordinated */
    bool heartbeat;         /* a message the sink asked for (ops->heartbeat): v is NULL,
                             * json is "" */
} cd_sink_msg_t;

/* Completion of a PENDING delivery. retry_after_ms: the destination's
 * Retry-After in ms, or -1. */
typedef void (*cd_sink_done_cb)(void *dispatcher_opaque, uint64_t msg_id, cd_sink_result_t r,
                                int64_t retry_after_ms);

struct cd_sink_ops {
    const char *name; /* the "type" in config: "log", "webhook", "exec", "redis", "kafka" */
    /*
     * Builds the sink from its config entry (a jansson json_t * object,
     * borrowed). Keys common to all sinks (type, name, filter, retry,
     * rate_limit, send_resolved) are the dispatcher's; the sink reads only
     * its own and rejects unknown ones. Problems go into diag as
     * "<path>.<key>: <value> ...; accepted: ..." lines. Returns the sink's
     * state, or NULL on error. Called on the main thread at start-up.
     */
    void *(*init)(const void *conf, const char *path, cd_diag_t *diag);
    /*
     * Delivers (or starts delivering) one message. retry_after_ms: set when
     * the destination asked for a delay (else leave it). Dispatcher thread.
     */
    cd_sink_result_t (*deliver)(void *state, const cd_sink_msg_t *m, int64_t *retry_after_ms);
    /*
     * Optional (asynchronous sinks): makes progress on PENDING deliveries,
     * waiting at most timeout_ms, and reports each finished one through
     * done(opaque, ...). Returns the number still in flight. Dispatcher thread.
     */
    int (*poll)(void *state, int timeout_ms, cd_sink_done_cb done, void *opaque);
    /* Optional: make delivered data durable (fsync, flush a producer). */
    void (*flush)(void *state);
    /* Optional: reopen files after rotation (SIGHUP). Dispatcher thread. */
    void (*reopen)(void *state);
    /* Frees the state; in-flight deliveries are abandoned. */
    void (*destroy)(void *state);
    /*
     * Optional: for a sink that must repeat itself without new records (the
     * alertmanager sink re-sends firing alerts before Alertmanager's
     * resolve_timeout forgets them). Returns the time (cd_sink_now_ms's
     * monotonic clock) at which the sink wants a message of its own, or
     * INT64_MAX for none. The dispatcher asks after every delivery outcome;
     * when the time comes and nothing of the sink is queued, it delivers a
     * message with heartbeat set, retried and counted like a record.
     * Dispatcher thread.
     */
    int64_t (*heartbeat)(void *state, int64_t now_ms);
};

/* Looks up a sink implementation by config type; NULL if unknown.
 * (sinks/registry.c lists every `struct cd_sink_ops` in the tree.) */
const struct cd_sink_ops *cd_sink_ops_find(const char *type);

/* Comma-separated list of known sink types, for error messages. */
const char *cd_sink_types(void);

#endif
