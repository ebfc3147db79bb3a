/*
 * kafka_source.c - Kafka consumers in a consumer group feeding the pipeline
 * from N worker threads.
 *
 * How partitions reach threads: one librdkafka high-level consumer per
 * worker thread, all in the same group. The group coordinator spreads the
 * partitions over the workers exactly as it spreads them over processes, so
 * each worker polls, decodes, counts and stores offsets for its own
 * partitions, sequentially. Chosen over one consumer with per-partition
 * queues forwarded to workers because the offset rules then hold by
 * construction: a worker stores a message's offset right after counting it,
 * on the thread that polled it, and the rebalance callback runs inside that
 * same thread's poll, so when a revoke arrives every message polled before
 * it is already counted and stored, and committing first is one synchronous
 * rd_kafka_commit (no hand-off between a dispatcher and workers to drain).
 * Counting shares nothing but the lock-free windows: each worker counts into
 * its own stripe (its id) of the window's counters and of the pipeline's
 * statistics, and keeps its own message count, all on cache lines no other
 * worker writes (a shared line per count made 2 workers slower than 1). The
 * cost: one set of broker connections per
 * worker, and workers beyond the partition count stay idle (a topic should
 * have at least as many partitions as canaryd has threads).
 *
 * Offsets: enable.auto.offset.store=false (stored after counting),
 * enable.auto.commit=true (librdkafka commits the stored offsets every
 * auto.commit.interval.ms, default 5 s, and retries failures at the next
 * commit), a synchronous commit on revoke and on stop. An event is thus
 * counted once per group unless a commit it needed did not happen: the
 * process died between counting and the next commit, or the commit before a
 * revoke was refused (Kafka refuses commits while the group rebalances) and
 * another process got the partition -- it then counts again from the last
 * committed offset. At-least-once across processes; exactly once inside one
 * process, across its workers' rebalances and lost assignments, through the
 * remembered positions below (see "gone"). A position this process counted
 * gives way to a committed offset past it only when someone else made that
 * commit since this process first had the partition: a process started by
 * time below its group's commit (a restart rebuilding its windows) resumes
 * after what it counted, not at that older commit, when a rebalance comes
 * before it has read up to it (fresher_than_committed).
 *
 * Cohort header: when kafka.cohort_header is set and a message carries that
 * header, its value (the configured canary or stable value) is the event's
 * cohort. The decoder takes the cohort from the payload and uses the last
 * occurrence of a key, so the worker appends the cohort field to the
 * payload's top-level object (in a per-worker buffer) before decoding: the
 * header wins over any cohort in the payload, everything else is decoded
 * exactly as without a header, and the decoder stays untouched. A header
 * value that is neither cohort value is counted as unknown_cohort.
 *
 * Prefetch sizing and fetch nudging (issue #3: throughput >= 0.8x a bare
 * librdkafka consumer with peak RSS <= 32 MB). The agent's memory is mostly
 * librdkafka's prefetch: each consumer fetches until its queue holds
 * queued.max.messages.kbytes of payload or queued.min.messages messages
 * (both counted over the whole consumer, since the high-level consumer
 * forwards every partition's queue to the one consumer queue), and every
 * Fetch answer (up to fetch.max.bytes, which librdkafka sets to the queue's
 * size unless given, but at least message.max.bytes, 1 MB) stays allocated
 * until its last message is destroyed, plus librdkafka's bookkeeping (an
 * op structure) per queued message. So canaryd's defaults keep the queue
 * small: 512 KB / 2500 messages per worker (librdkafka's are 65536 KB /
 * 100000): bench_kafka's peak RSS stays under the 32 MB target with no
 * measurable loss of throughput (larger queues and their figures:
 * docs/performance-history.md).
 *
 * A small queue is slow on librdkafka < 2.1 (Debian 12 has 2.0.2): once the
 * queue is over a limit the broker thread stops fetching and looks again
 * only when something wakes it -- a request or answer on its connection, or
 * its 1 s timer; the application draining the queue does not. Every full
 * queue then costs up to a second (a fraction of the bare consumer's
 * throughput: docs/performance-history.md). librdkafka 2.1 added
 * fetch.queue.backoff.ms for this: where the library is >= 2.1 at run time
 * canaryd sets it (DEFAULT_QUEUE_BACKOFF_MS) and does nothing else. Below
 * 2.1 the fetcher is nudged: a worker samples its consumer queue's length
 * every NUDGE_SAMPLE messages (rd_kafka_queue_length, one lock; the payload
 * bytes estimated from the mean size of the messages just polled); after
 * seeing it at least 3/4 full (a limit may have stopped the fetcher), the
 * first sample below 3/4 of both limits sets the worker's nudge flag (and
 * the first below 1/4 once more, if no Fetch answer refilled the queue in
 * between) and signals the nudger thread, which asks the leaders of that
 * worker's assigned partitions
 * for their end offsets (rd_kafka_offsets_for_times with "timestamp" -1:
 * one ListOffsets request per leader broker, made on the worker's own
 * consumer handle, so exactly the broker threads that fetch for it wake up,
 * re-decide and fetch again while the rest of the queue is consumed).
 * The answer is not used. The cleaner public calls all have side effects:
 * rd_kafka_pause / rd_kafka_resume bump the partition's version and
 * rd_kafka_seek purges, both discarding prefetched messages and fetching
 * them again; the 2.0.2 admin API has no ListOffsets. Cost: at most two ListOffsets per leader per queue fill,
 * during a backlog only (a consumer keeping up with a live topic never sees
 * its queue 3/4 full, so never nudges; rd_kafka_queue_length every 32
 * messages is the only steady cost). The nudge runs on its own thread, never
 * on a worker, and does not wait for the answer: only the request matters
 * (it is what wakes the broker thread), and librdkafka sends the requests
 * before it starts waiting, so the call is given NUDGE_TIMEOUT_MS (1 ms) and
 * a late answer is dropped by librdkafka (waiting for each round trip would
 * delay the next worker's nudge behind it). It stops with the workers in cd_kafka_source_stop and logs how many nudges
 * it made ("kafka: N fetch nudges"; also cd_kafka_stats_t.fetch_nudges).
 * CANARYD_KAFKA_NUDGE=0 turns it off (for comparing). User-set
 * kafka.properties win over every default here; the nudge thresholds follow
 * the queue limits actually in effect.
 *
 * Logging: librdkafka's log lines and errors go through canaryd's log,
 * rate-limited per facility, so a broker that stays down is reported once
 * per interval while librdkafka reconnects with its backoff.
 *
 * Watermark (issue 10, item 4; the live clock's side is in live.c). Every
 * assigned partition carries the time up to which it is known to be read:
 * the larger of the newest event time counted from it (clamped to the wall
 * clock when folded: a timestamp from the future proves nothing) and the
 * last wall time the broker confirmed it read to its end. Confirmations
 * come from an end-of-partition event (its time minus fetch.wait.max.ms, as
 * the broker may have held that empty Fetch answer that long) and from a
 * prober thread that asks the leaders of every assigned partition for their
 * end offsets every PROBE_EVERY_MS (rd_kafka_offsets_for_times, one
 * ListOffsets per leader, on a handle of its own: on a worker's handle the
 * request waits behind that worker's Fetch, which an idle broker holds for
 * fetch.wait.max.ms, and the workers' probes then took 0.5 s each, one
 * after the other -- a watermark lag of ~1.1 s with 2 workers, growing
 * with more; measured with the mock broker): an answer sent at t whose end
 * offset the worker has counted up to -- now or later, during a catch-up --
 * confirms the partition through t. Without the prober, a partition at its
 * end and a partition whose broker stalled look alike (no message either
 * way, and librdkafka reports the end only once). The prober hands its
 * answers to the worker through a small mailbox (a mutex and a flag on a
 * line of their own), which the worker empties at its run boundaries; the
 * worker folds its run of messages into its partition's watermark when it
 * stores the run's offset (flush_store: per run of up to STORE_EVERY
 * messages from one partition, never per event) and publishes the minimum
 * over its partitions on a line of its own. cd_kafka_source_watermark()
 * takes the minimum over the workers. A partition just assigned is unknown
 * (INT64_MIN) until its first message, end or confirmation. A partition
 * that comes back after it could not be confirmed for STALL_GAP_MS takes
 * the broker's confirmations again only RECOVERY_MS later (confirm()): its
 * producers could not write during the stall either, and "read to the end"
 * before they have delivered would judge the stalled seconds without their
 * events (seen in test_live_lag's broker stall). Cost: one
 * clock_gettime and one pass over the worker's partitions per run; 2
 * ListOffsets requests per leader broker and second, and one more
 * librdkafka handle (its threads and connections, outside any group).
 *
 * Coverage (issue 11). Every agent reads the whole stream in a consumer
 * group of its own (coordinated replicas too: docs/operations.md), so its
 * assignment must be every partition of its topics. After a SIGKILL the
 * dead process stays a member until its session expires, and a rebalance
 * meanwhile gives the restarted one only part of them: the watermark, a
 * minimum over ASSIGNED partitions only, would judge half the stream. So
 * the prober also asks for the topics' partition count (metadata on its
 * own handle, at start and every META_EVERY_MS: a topic that grows is
 * seen), and while the workers' assignment covers fewer partitions,
 * cd_kafka_source_watermark answers "unknown" with the reason
 * (cd_kafka_coverage): the live clock holds the verdict exactly as for a
 * partition not yet read, and /readyz answers 503 with it. Until the
 * first metadata answer the count is unknown and nothing is held for it.
 *
 * Benchmark trace (bench/bench_kafka_delay.c): with CANARYD_TRACE_CONSUME=1
 * in the environment, every consumed message also writes one line
 * "canaryd trace: consumed TOPIC [PARTITION] @OFFSET mono_ns NS" on stderr,
 * NS being CLOCK_MONOTONIC when poll returned it (before decoding), written
 * after the message was counted so that the write does not delay counting.
 * Off by default: one branch on a flag read once at creation.
 */
#include "canaryd/kafka_source.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "canaryd/clock.h"
#include "canaryd/deadline.h"
#include "canaryd/log.h"
#include "kafka_start.h"

/* Aligned: each worker's per-message fields (messages, the nudge sampling,
 * the partition cache) on cache lines no other worker writes. */
typedef struct worker {
    _Alignas(64) struct cd_kafka_source *s;
    int id;
    rd_kafka_t *rk;
    pthread_t thread;
    bool started;
    char *buf; /* payload + appended cohort */
    size_t cap;
    atomic_int assigned;
    atomic_bool caught_up;
    /* assigned partitions and whether each is at its end (worker thread only) */
    struct part {
        char topic[256];
        int32_t partition;
        bool eof;
        int64_t next; /* offset after the last one counted; -1 unknown */
        /* watermark (see the top): INT64_MIN unknown */
        int64_t seen;      /* newest event time counted, clamped to the wall clock */
        int64_t confirmed; /* wall time the broker confirmed it read to its end */
        int64_t want_end;  /* a probe's end offset not reached yet (-1: none)... */
        int64_t want_sent; /* ...and when that probe was sent */
        int64_t heard;       /* wall time of the last confirmation (INT64_MIN: none) */
        int64_t grace_until; /* after a silence: confirmations deferred until then... */
        int64_t deferred;    /* ...the latest of them (confirm()) */
        int tidx;          /* index in the source's topic list, -1 if not there */
        /* the group's committed offset when this process first had the
         * partition (start by time only; -1: none; BASE_UNKNOWN: not read),
         * kept in `gone` with the position (fresher_than_committed) */
        int64_t base;
    } *parts;
    int nparts, capparts;
    int cur; /* index in parts of the last message's partition (a cache), or -1 */
    bool quiet; /* no message since the last poll that returned none: poke after the next */
    /* The last message counted whose offset is not stored yet (see
     * flush_store), and how many were counted since the last store. */
    rd_kafka_message_t *held;
    unsigned held_n;
    atomic_uint_fast64_t messages; /* handed to the pipeline (relaxed, summed on read) */
    /* the run of messages counted since the last store: its newest event
     * time and its partition's index in parts (-1: none) */
    int64_t run_max;
    int run_idx;
    /* fetch nudging (worker thread, except nudge_wanted) */
    rd_kafka_queue_t *cq;      /* the consumer queue, to sample its length */
    unsigned since_sample;     /* messages since the last sample */
    size_t bytes_since;        /* their payload bytes */
    int armed;                 /* nudges still due: 2 after the queue was seen 3/4 full */
    atomic_bool nudge_wanted;  /* set by the worker, taken by the nudger */
    /* published watermark (see the top): written by the worker per run, read
     * by the live clock; its own line */
    _Alignas(64) atomic_int_fast64_t wm; /* INT64_MAX: no partition */
    atomic_int wm_partition, wm_tidx;  /* the slowest partition (for the reason text) */
    /* the prober's mailbox: under pmu, except the flag */
    _Alignas(64) pthread_mutex_t pmu;
    struct probe_end {
        char topic[256];
        int32_t partition;
        int64_t end;
    } *probe;
    int nprobe, capprobe;
    int64_t probe_sent;
    atomic_bool probe_ready; /* relaxed: pmu orders the data */
} worker_t;

struct cd_kafka_source {
    cd_pipeline_t *p;
    int nworkers;
    worker_t *w;
    char hdr[128];
    char *suffix[CD_NCOHORTS];     /* ",\"cohort\":\"canary\"}" */
    size_t suffix_len[CD_NCOHORTS];
    const char *cohort_value[CD_NCOHORTS];
    /* The stop's deadline (monotonic ms), published by the release store of
     * stop: a worker that sees stop (acquire, stopping()) sees the deadline
     * and gives its final commit that long. */
    atomic_int_fast64_t deadline_ms;
    int nstarted;          /* workers started (written before any starts) */
    atomic_int committed;  /* workers past their final commit */
    atomic_bool stop;
    atomic_bool failed;
    bool trace; /* CANARYD_TRACE_CONSUME: one stderr line per message (benchmarks) */
    /* statistics: relaxed, exact in total (as in pipeline.c) */
    atomic_uint_fast64_t header_cohort, kafka_errors, commits_failed, rebalances;
    atomic_int_fast64_t redelivered;
    /* Offsets counted in partitions this process gave up (revoked or lost),
     * so that a partition coming back to any worker resumes after what was
     * counted even when the commit could not be made (broker down longer
     * than the session: the assignment is lost, the commit impossible).
     * Checked where used: an entry wins only over an older committed offset,
     * or over the very commit the group had when this process first got the
     * partition (its base, kept here too; fresher_than_committed, on
     * assignment): in a shared group another process may have had the
     * partition in between and committed further, and then the committed
     * offset replaces it (overtaken).
     * Touched on rebalances only, under the mutex. */
    pthread_mutex_t mu;
    struct part *gone;
    int ngone, capgone;
    /* Fetch nudging (librdkafka < 2.1, see the top of the file): the
     * prefetch limits in effect (kafka.properties applied), the nudger
     * thread and what wakes it. */
    bool queue_backoff;        /* librdkafka has fetch.queue.backoff.ms (>= 2.1) */
    bool nudge;                /* nudging on (both written before any thread starts) */
    int64_t q_max_bytes;       /* queued.max.messages.kbytes * 1024 */
    int64_t q_min_msgs;        /* queued.min.messages */
    pthread_t nudger;
    bool nudger_started;
    pthread_mutex_t nmu;
    pthread_cond_t ncv;
    bool nudge_pending;        /* under nmu */
    atomic_uint_fast64_t nudges;
    /* watermark (see the top) */
    char topics[CD_KAFKA_MAX_TOPICS][256]; /* the subscription, for the reason text */
    int ntopics;
    int64_t fetch_wait_ms; /* fetch.wait.max.ms in effect */
    rd_kafka_t *prk; /* the prober's own handle (no group) */
    /* coverage (see the top): the subscribed topics' partition count from
     * the prober's metadata, -1 unknown; the group, for the reason text */
    atomic_int topic_parts;
    int64_t meta_at; /* prober thread: wall time of the last metadata answer */
    char group[256];
    pthread_t prober;
    bool prober_started;
    pthread_mutex_t prmu;
    pthread_cond_t prcv;
    atomic_uint_fast64_t probes_failed;
    /* start by time (issue 11; kafka_start.c): how far back a partition
     * this process has not counted before starts; 0 = at the committed
     * offset. Written before the workers start. */
    int64_t history_ms;
    int64_t history_from; /* wall time of cd_kafka_source_set_history - history_ms */
    cd_kafka_start_t *start;
};

/* The prober (see the top): how often each worker's end offsets are asked,
 * and how long one answer may take. The live clock's leeway
 * (CD_LIVE_WATERMARK_LEEWAY_MS, 2 s) covers the interval plus a round trip. */
#define PROBE_EVERY_MS 500
#define PROBE_TIMEOUT_MS 1000
/* How often the prober asks for the topics' partition count (coverage). */
#define META_EVERY_MS 5000
/* A partition not confirmed for this long was unreachable; once it answers
 * again, confirmations wait RECOVERY_MS for the producers (confirm()). */
#define STALL_GAP_MS 5000
#define RECOVERY_MS 12000

/* Prefetch sizing defaults (see the top of the file and docs/live.md). */
#define DEFAULT_QUEUE_KBYTES "512"
#define DEFAULT_QUEUE_MSGS "2500"
#define DEFAULT_QUEUE_BACKOFF_MS "10" /* librdkafka >= 2.1 only */
/* librdkafka versions from which fetch.queue.backoff.ms exists */
#define RDK_QUEUE_BACKOFF_VERSION 0x02010000
/* A worker samples its queue's length every this many messages. */
#define NUDGE_SAMPLE 32
/* ms a nudge may block the nudger thread: its ListOffsets requests are sent
 * at once, its answers are not needed (see the top of the file) */
#define NUDGE_TIMEOUT_MS 1

/* A condition variable whose timed waits use CLOCK_MONOTONIC. */
static void cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void inc(atomic_uint_fast64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* Whether the source is stopping: acquire, pairing with the release store
 * in cd_kafka_source_stop, so that deadline() then reads its deadline. */
static bool stopping(const struct cd_kafka_source *s)
{
    return atomic_load_explicit(&((struct cd_kafka_source *)s)->stop, memory_order_acquire);
}

/* The stop's deadline; read only after stopping() returned true. */
static int64_t deadline(const struct cd_kafka_source *s)
{
    return atomic_load_explicit(&((struct cd_kafka_source *)s)->deadline_ms, memory_order_relaxed);
}

/* ---- librdkafka callbacks (librdkafka's threads or the polling worker) -- */

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    char key[64];
    cd_log_level_t l = level <= LOG_ERR       ? CD_LOG_ERROR
                       : level <= LOG_WARNING ? CD_LOG_WARN
                       : level <= LOG_INFO    ? CD_LOG_INFO
                                              : CD_LOG_DEBUG;
    (void)rk;
    if (!cd_log_enabled(l)) return;
    snprintf(key, sizeof(key), "rdkafka:%s", fac);
    cd_log_ratelimited(key, l, "kafka %s: %s", fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct cd_kafka_source *s = ((worker_t *)opaque)->s;
    char key[64];
    inc(&s->kafka_errors);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[512];
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        cd_log(CD_LOG_ERROR, "kafka: fatal error: %s; stopping", fatal);
        atomic_store_explicit(&s->failed, true, memory_order_relaxed);
        return;
    }
    snprintf(key, sizeof(key), "kafka:%s", rd_kafka_err2name((rd_kafka_resp_err_t)err));
    cd_log_ratelimited(key, CD_LOG_WARN, "kafka: %s (librdkafka keeps retrying)", reason);
}

static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    struct cd_kafka_source *s = ((worker_t *)opaque)->s;
    (void)rk, (void)offsets;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
    inc(&s->commits_failed);
    cd_log_ratelimited("kafka:commit", CD_LOG_WARN,
                       "kafka: offset commit failed: %s (retried at the next commit)",
                       rd_kafka_err2str(err));
}

/* The worker's record of partition (topic, partition), or NULL. Messages
 * come in runs from one partition (a Fetch answer's batch): the last one
 * found is tried first. */
static struct part *part_of(worker_t *w, const char *topic, int32_t partition)
{
    if (w->cur >= 0 && w->cur < w->nparts && w->parts[w->cur].partition == partition &&
        strcmp(w->parts[w->cur].topic, topic) == 0)
        return &w->parts[w->cur];
    for (int i = 0; i < w->nparts; i++)
        if (w->parts[i].partition == partition && strcmp(w->parts[i].topic, topic) == 0) {
            w->cur = i;
            return &w->parts[i];
        }
    return NULL;
}

/* ---- watermark (see the top; worker thread unless said) ------------------ */

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* A confirmation (an end-of-partition event, or a probe's end offset
 * reached) that p was read to its end as of t, applied at wall time now.
 * After a silence longer than STALL_GAP_MS (its leader unreachable: no
 * probe answered, no end reported) the broker's word is taken again only
 * RECOVERY_MS later: the producers, which could not write either, need
 * that long to reconnect and deliver what they held back (librdkafka's
 * reconnect.backoff.max.ms is 10 s), and until they have, "read to the
 * end" would judge the stalled seconds without their events. The
 * partition's own events move its watermark meanwhile. */
static void confirm(struct part *p, int64_t t, int64_t now)
{
    if (p->heard != INT64_MIN && now - p->heard > STALL_GAP_MS && now >= p->grace_until)
        p->grace_until = now + RECOVERY_MS;
    p->heard = now;
    if (now < p->grace_until) {
        p->deferred = max64(p->deferred, t);
        return;
    }
    p->confirmed = max64(p->confirmed, max64(t, p->deferred));
}

/* A probe's end offset reached by what was counted: confirmed through the
 * time the probe was sent. */
static void reach(struct part *p, int64_t now)
{
    if (p->want_end >= 0 && p->next >= p->want_end) {
        confirm(p, p->want_sent, now);
        p->want_end = -1;
    }
}

/* Publishes the minimum over the worker's partitions (release: the live
 * clock reads it with acquire, with the slowest partition's name beside). */
static void publish(worker_t *w)
{
    int64_t wm = INT64_MAX;
    int slow = -1;
    for (int i = 0; i < w->nparts; i++) {
        int64_t v = max64(w->parts[i].seen, w->parts[i].confirmed);
        if (v < wm) {
            wm = v;
            slow = i;
        }
    }
    if (slow >= 0) {
        atomic_store_explicit(&w->wm_partition, w->parts[slow].partition, memory_order_relaxed);
        atomic_store_explicit(&w->wm_tidx, w->parts[slow].tidx, memory_order_relaxed);
    }
    atomic_store_explicit(&w->wm, wm, memory_order_release);
}

/* The run of messages since the last store (one partition's) is stored:
 * its newest event time, clamped to now, moves the partition's watermark. */
static void fold_run(worker_t *w)
{
    if (w->run_idx < 0) return;
    if (w->run_idx < w->nparts && w->run_max != INT64_MIN) {
        struct part *p = &w->parts[w->run_idx];
        int64_t now = cd_wall_ms();
        p->seen = max64(p->seen, w->run_max < now ? w->run_max : now);
        reach(p, now);
    }
    w->run_idx = -1;
    w->run_max = INT64_MIN;
    publish(w);
}

/* The prober's latest answer: partitions counted up to the end offset it
 * found are confirmed through the time it asked; the others wait for it. */
static void take_probe(worker_t *w)
{
    atomic_store_explicit(&w->probe_ready, false, memory_order_relaxed);
    int64_t now = cd_wall_ms();
    pthread_mutex_lock(&w->pmu);
    for (int i = 0; i < w->nprobe; i++) {
        struct probe_end *e = &w->probe[i];
        struct part *p = part_of(w, e->topic, e->partition);
        if (!p) continue;
        if (p->next >= 0 && p->next >= e->end) {
            confirm(p, w->probe_sent, now);
        } else if (p->want_end < 0) {
            p->want_end = e->end;
            p->want_sent = w->probe_sent;
        }
    }
    w->nprobe = 0;
    pthread_mutex_unlock(&w->pmu);
    publish(w);
}

/* An end-of-partition event at offset end: read to the end the broker had
 * when it formed that (possibly held) empty Fetch answer. */
static void at_partition_end(worker_t *w, struct part *p, int64_t end)
{
    if (end > p->next) p->next = end;
    int64_t now = cd_wall_ms();
    confirm(p, now - w->s->fetch_wait_ms, now);
    reach(p, now);
    publish(w);
}

/* Every assigned partition reported its end (enable.partition.eof) with no
 * message since. */
static bool at_end(const worker_t *w)
{
    for (int i = 0; i < w->nparts; i++)
        if (!w->parts[i].eof) return false;
    return w->nparts > 0;
}

/* struct part's base when the group's commit was not read. */
#define BASE_UNKNOWN INT64_MIN

/* Remembers p's counted position in the source (rebalance, worker thread). */
static void remember(cd_kafka_source_t *s, const struct part *q)
{
    if (q->next < 0) return;
    struct part copy = *q, *p = &copy;
    /* Given up while confirmed lately: the time it then spends unassigned is
     * a rebalance, not a stall, and earns no recovery grace when it comes
     * back (confirm()); given up in the middle of a stall, it keeps it. */
    if (p->heard != INT64_MIN && cd_wall_ms() - p->heard <= STALL_GAP_MS) p->heard = INT64_MIN;
    pthread_mutex_lock(&s->mu);
    int i;
    for (i = 0; i < s->ngone; i++)
        if (s->gone[i].partition == p->partition && strcmp(s->gone[i].topic, p->topic) == 0) break;
    if (i == s->ngone && s->ngone == s->capgone) {
        int cap = s->capgone ? 2 * s->capgone : 16;
        struct part *ng = realloc(s->gone, (size_t)cap * sizeof(*ng));
        if (ng) {
            s->gone = ng;
            s->capgone = cap;
        }
    }
    if (i < s->capgone) {
        if (i == s->ngone) {
            s->gone[i] = *p;
            s->ngone++;
        } else {
            struct part *g = &s->gone[i];
            if (p->next > g->next) g->next = p->next;
            /* the watermark's history too (track() restores it): a
             * partition coming back keeps its stall's grace */
            g->seen = max64(g->seen, p->seen);
            g->confirmed = max64(g->confirmed, p->confirmed);
            g->heard = p->heard;
            g->grace_until = max64(g->grace_until, p->grace_until);
            g->deferred = max64(g->deferred, p->deferred);
            if (g->base == BASE_UNKNOWN) g->base = p->base; /* the first one stays */
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* Restores the watermark fields of (p->topic, p->partition), and the
 * group's commit when this process first had it, when this process had it
 * before (rebalance, worker thread). */
static void recall_watermark(cd_kafka_source_t *s, struct part *p)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->ngone; i++)
        if (s->gone[i].partition == p->partition && strcmp(s->gone[i].topic, p->topic) == 0) {
            p->seen = s->gone[i].seen;
            p->confirmed = s->gone[i].confirmed;
            p->heard = s->gone[i].heard;
            p->grace_until = s->gone[i].grace_until;
            p->deferred = s->gone[i].deferred;
            p->base = s->gone[i].base;
        }
    pthread_mutex_unlock(&s->mu);
}

/* The counted position of (topic, partition) when this process had it
 * before, else -1. */
static int64_t recall(cd_kafka_source_t *s, const char *topic, int32_t partition)
{
    int64_t next = -1;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->ngone; i++)
        if (s->gone[i].partition == partition && strcmp(s->gone[i].topic, topic) == 0)
            next = s->gone[i].next;
    pthread_mutex_unlock(&s->mu);
    return next;
}

/* The group committed next for (topic, partition), at or past what this
 * process remembered: the remembered position is outdated (another member
 * counted further), and next is where the partition resumes. */
static void overtaken(cd_kafka_source_t *s, const char *topic, int32_t partition, int64_t next)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->ngone; i++)
        if (s->gone[i].partition == partition && strcmp(s->gone[i].topic, topic) == 0)
            s->gone[i].next = next;
    pthread_mutex_unlock(&s->mu);
}

/* Rebalance (worker thread): track the assignment for at_end(). */
static void track(worker_t *w, rd_kafka_topic_partition_list_t *l, bool add)
{
    for (int i = 0; i < l->cnt; i++) {
        struct part *p = part_of(w, l->elems[i].topic, l->elems[i].partition);
        if (!add) {
            if (p) {
                remember(w->s, p);
                *p = w->parts[--w->nparts];
            }
            continue;
        }
        if (p) continue;
        if (w->nparts == w->capparts) {
            int cap = w->capparts ? 2 * w->capparts : 16;
            struct part *np = realloc(w->parts, (size_t)cap * sizeof(*np));
            if (!np) return; /* caught_up then stays false: idle exit only delayed */
            w->parts = np;
            w->capparts = cap;
        }
        p = &w->parts[w->nparts++];
        snprintf(p->topic, sizeof(p->topic), "%s", l->elems[i].topic);
        p->partition = l->elems[i].partition;
        p->eof = false;
        p->seen = p->confirmed = p->heard = p->deferred = INT64_MIN;
        p->grace_until = 0;
        p->base = BASE_UNKNOWN;
        recall_watermark(w->s, p);
        p->next = recall(w->s, p->topic, p->partition);
        p->want_end = -1;
        p->want_sent = 0;
        p->tidx = -1;
        for (int t = 0; t < w->s->ntopics; t++)
            if (strcmp(w->s->topics[t], p->topic) == 0) p->tidx = t;
        /* Resume after what this process counted (the committed offset may be older). */
        if (p->next >= 0) l->elems[i].offset = p->next;
    }
    w->cur = -1;
    publish(w);
}

/* How long an assignment may wait for the group's committed offsets of the
 * partitions it remembers (fresher_than_committed). */
#define COMMITTED_WAIT_MS 5000

/* Rebalance, after track(): a remembered position (track() set it as the
 * partition's offset) is this process's count, but another process may have
 * had the partition since and committed further; then the committed offset
 * is the newer one, and resuming (and storing) the remembered one would
 * count the other's events again and move the group's commit back. So a
 * committed offset past the remembered position wins, and the partition
 * resumes there, set explicitly (it is not "new" to this process, so it
 * does not start by time) -- unless it is the very commit the group had
 * when this process first got the partition (base): that one is nobody's
 * progress since. A process starting by time (kafka_start.c) starts below
 * its group's commit to rebuild its windows (after a restart: below its
 * dead predecessor's commit), and a rebalance while it is still below it
 * (its second worker joining late, the commit before the revoke refused as
 * Kafka refuses commits during a rebalance, the auto-commit not made yet)
 * must resume after what it counted, not at that commit: the events in
 * between would never reach its windows (test_live_kill under TSan: 714 of
 * 1008 canary requests). This process's own commits need no such record:
 * they never pass what it counted, so never pass a remembered position.
 * What is left ambiguous: another member committing exactly base after
 * counting up to it; this process then counts those events again
 * (at-least-once, as after any refused commit). The base is read here, in
 * the same request, for the partitions new to this process when it starts
 * by time (at the commit, a process is never below it). A remembered
 * position is kept, too, where nothing is committed or the commit is older
 * (the commit before the revoke failed and nobody counted further). If the
 * committed offsets cannot be read, a remembered partition starts as one
 * this process never had: at the commit, or by time when that is on
 * (at-least-once, never backwards); a new one's base stays unknown (a
 * rebalance while it is below the commit then resumes at the commit, as
 * before). */
static void fresher_than_committed(worker_t *w, rd_kafka_topic_partition_list_t *parts)
{
    bool by_time = w->s->start != NULL;
    int remembered = 0;
    rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_new(parts->cnt);
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *el = &parts->elems[i];
        const struct part *pt = part_of(w, el->topic, el->partition);
        if (el->offset >= 0)
            remembered++;
        else if (!by_time || !pt || pt->base != BASE_UNKNOWN)
            continue; /* new, and its base not needed or known */
        rd_kafka_topic_partition_list_add(q, el->topic, el->partition);
    }
    if (q->cnt == 0) {
        rd_kafka_topic_partition_list_destroy(q);
        return;
    }
    rd_kafka_resp_err_t e = rd_kafka_committed(w->rk, q, COMMITTED_WAIT_MS);
    if (e && remembered > 0)
        cd_log(CD_LOG_WARN,
               "kafka: worker %d: committed offsets unreadable (%s): %d remembered position(s) "
               "not used, resuming from the group's commits",
               w->id, rd_kafka_err2str(e), remembered);
    if (e && q->cnt > remembered)
        cd_log(CD_LOG_WARN,
               "kafka: worker %d: committed offsets unreadable (%s): for %d partition(s) "
               "starting by time the group's earlier commit is unknown (a rebalance while "
               "below it resumes at it)",
               w->id, rd_kafka_err2str(e), q->cnt - remembered);
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *el = &parts->elems[i];
        rd_kafka_topic_partition_t *c =
            e ? NULL : rd_kafka_topic_partition_list_find(q, el->topic, el->partition);
        bool known = c && !c->err;
        struct part *pt = part_of(w, el->topic, el->partition);
        if (el->offset < 0) { /* new to this process: the group's commit now is its base */
            if (known && pt) pt->base = c->offset >= 0 ? c->offset : -1;
            continue;
        }
        if (known && (c->offset < 0 || c->offset < el->offset)) continue; /* ours is newer */
        if (known && pt && pt->base >= 0 && c->offset == pt->base && c->offset > el->offset) {
            cd_log(CD_LOG_INFO,
                   "kafka: worker %d: %s [%d]: the group's commit %lld is the one it had before "
                   "this process started below it by time: resuming at %lld, after what this "
                   "process counted",
                   w->id, el->topic, (int)el->partition, (long long)c->offset,
                   (long long)el->offset);
            continue;
        }
        if (known && c->offset > el->offset)
            cd_log(CD_LOG_INFO,
                   "kafka: worker %d: %s [%d]: the group committed %lld, past the %lld this "
                   "process counted: resuming there",
                   w->id, el->topic, (int)el->partition, (long long)c->offset,
                   (long long)el->offset);
        /* the commit, explicitly (a partition this process counted does not
         * start by time); unreadable: unset, as for a partition never had */
        int64_t start = known && c->offset >= 0 ? c->offset : -1;
        el->offset = start >= 0 ? start : RD_KAFKA_OFFSET_INVALID;
        if (pt) pt->next = start;
        if (start >= 0) overtaken(w->s, el->topic, el->partition, start);
    }
    rd_kafka_topic_partition_list_destroy(q);
}

/* After an assignment: partitions that resume after what this process
 * already counted (track() set their offset) get that position stored, so
 * the next commit records it. Without this, a partition whose commit before
 * revoke failed (Kafka refuses commits during a rebalance) and that came
 * back read to the end would keep its old committed offset until new events
 * arrive, and the next member would count those events again. */
static void store_recalled(worker_t *w, const rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts->cnt);
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].offset >= 0)
            rd_kafka_topic_partition_list_add(l, parts->elems[i].topic, parts->elems[i].partition)
                ->offset = parts->elems[i].offset;
    if (l->cnt > 0) {
        rd_kafka_resp_err_t e = rd_kafka_offsets_store(w->rk, l);
        for (int i = 0; !e && i < l->cnt; i++)
            if (l->elems[i].err) e = l->elems[i].err; /* per partition */
        if (e) {
            inc(&w->s->commits_failed);
            cd_log(CD_LOG_WARN, "kafka: worker %d: storing resumed positions failed: %s", w->id,
                   rd_kafka_err2str(e));
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* Offsets are stored per run of messages from one partition, not per
 * message (rd_kafka_offset_store looks the partition up and takes its lock):
 * the worker keeps the last message it counted (w->held) and stores its
 * offset when the next message comes from another partition, after
 * STORE_EVERY messages, when the queue is empty or a partition reached its
 * end, before the commit that precedes a revoke and before the final
 * commit. Every store and commit thus still covers exactly the messages
 * counted (an offset is stored only after its message, and every one before
 * it in the partition, was counted), just fewer times. Worker thread. */
#define STORE_EVERY 64

/* Stores m's offset (+1) for the next commit. It fails when the partition
 * is no longer assigned (librdkafka: __STATE, e.g. the assignment was lost
 * before the store): that offset will not be committed by this process,
 * counted as a failed commit and logged (rate-limited). */
static void store_offset(worker_t *w, const rd_kafka_message_t *m)
{
    rd_kafka_resp_err_t e = rd_kafka_offset_store(m->rkt, m->partition, m->offset);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    inc(&w->s->commits_failed);
    cd_log_ratelimited("kafka:store", CD_LOG_WARN,
                       "kafka: worker %d: storing the offset of %s [%d] @%lld failed: %s "
                       "(not committed by this process)",
                       w->id, rd_kafka_topic_name(m->rkt), (int)m->partition,
                       (long long)m->offset, rd_kafka_err2str(e));
}

static void flush_store(worker_t *w)
{
    if (atomic_load_explicit(&w->probe_ready, memory_order_relaxed)) take_probe(w);
    if (!w->held) return;
    fold_run(w);
    store_offset(w, w->held);
    rd_kafka_message_destroy(w->held);
    w->held = NULL;
    w->held_n = 0;
}

/* m was counted: hold it, storing the held one's offset first if due. */
static void hold(worker_t *w, rd_kafka_message_t *m)
{
    if (w->held) {
        if (w->held->rkt != m->rkt || w->held->partition != m->partition ||
            w->held_n >= STORE_EVERY) {
            flush_store(w);
        } else {
            rd_kafka_message_destroy(w->held);
        }
    }
    w->held = m;
    w->held_n++;
}

/* How long a commit before a revoke may take while running (a stop uses
 * its own deadline). */
#define REVOKE_COMMIT_WAIT_MS 5000

/* Commits the worker's stored offsets and waits for the result until
 * until_ms (monotonic): rd_kafka_commit(), synchronous, waits as long as
 * librdkafka does when the coordinator is unreachable (seconds to minutes),
 * which would break the shutdown budget. __TIMED_OUT when no result came. */
static rd_kafka_resp_err_t final_commit(worker_t *w, int64_t until_ms)
{
    flush_store(w);
    rd_kafka_queue_t *q = rd_kafka_queue_new(w->rk);
    if (!q) return rd_kafka_commit(w->rk, NULL, 0);
    rd_kafka_resp_err_t err = rd_kafka_commit_queue(w->rk, NULL, q, NULL, NULL);
    if (err) {
        rd_kafka_queue_destroy(q);
        return err;
    }
    err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    for (;;) {
        int64_t left = until_ms - cd_mono_ms();
        if (left < 0) break;
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, (int)(left > 100 ? 100 : left));
        if (!ev) continue;
        bool done = rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT;
        if (done) err = rd_kafka_event_error(ev);
        rd_kafka_event_destroy(ev);
        if (done) break;
    }
    rd_kafka_queue_destroy(q);
    return err;
}

/* How long finding the start offsets by time may hold an assignment (the
 * worker polls nothing meanwhile); past it, a partition starts at its
 * committed offset. */
#define START_SEARCH_WAIT_MS 10000

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    worker_t *w = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    inc(&w->s->rebalances);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        cd_log(CD_LOG_INFO, "kafka: worker %d assigned %d partition(s)", w->id, parts->cnt);
        track(w, parts, true);
        /* Counted as assigned at once, before the committed offsets are
         * read and the search below: the watermark
         * (cd_kafka_source_watermark) then includes these partitions, not
         * yet read (INT64_MIN, published by track), and no second is judged
         * without them while this worker looks for their start; and the
         * coverage (/readyz) sees the workers of one rebalance assigned
         * together, not one a round trip after the other. */
        atomic_fetch_add_explicit(&w->assigned, parts->cnt, memory_order_relaxed);
        fresher_than_committed(w, parts);
        /* Start by time: partitions this process has not counted before
         * (track() left their offset unset) start at the first offset of
         * the history the windows need, whatever was committed. On a copy:
         * store_recalled stores only what this process counted. */
        rd_kafka_topic_partition_list_t *at = w->s->start ? rd_kafka_topic_partition_list_copy(parts)
                                                          : NULL;
        if (at) {
            /* While nothing is judged yet or the start's catch-up runs, the
             * history the grid starts from is the one at the start (an
             * assignment late by a slow group join must not leave the first
             * judged seconds' windows without their beginning); afterwards
             * the present's. */
            int64_t t = cd_wall_ms() - w->s->history_ms;
            if ((cd_pipeline_catchup(w->s->p) || cd_pipeline_last_eval(w->s->p) == INT64_MIN) &&
                w->s->history_from < t)
                t = w->s->history_from;
            cd_kafka_start_find(w->s->start, at, t, START_SEARCH_WAIT_MS);
        }
        if (coop) {
            rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, at ? at : parts);
            if (e) rd_kafka_error_destroy(e);
        } else {
            rd_kafka_assign(rk, at ? at : parts);
        }
        if (at) rd_kafka_topic_partition_list_destroy(at);
        store_recalled(w, parts);
        atomic_store_explicit(&w->caught_up, false, memory_order_relaxed);
        return;
    }
    /* Revoked (or an error): every message polled before this callback ran
     * on this thread is counted and stored; commit it before letting go. */
    flush_store(w);
    if (rd_kafka_assignment_lost(rk)) {
        /* the session expired (coordinator unreachable longer than
         * session.timeout.ms): a commit would be refused; the positions are
         * remembered (track) for when the partitions come back */
        cd_log(CD_LOG_WARN, "kafka: worker %d lost its assignment: no commit, positions kept",
               w->id);
    } else {
        /* Bounded: with the coordinator unreachable a synchronous commit
         * waits as long as librdkafka does, and a stop must not wait that. */
        rd_kafka_resp_err_t ce =
            final_commit(w, stopping(w->s) ? deadline(w->s) - CD_STOP_COMMIT_END_MS
                                           : cd_mono_ms() + REVOKE_COMMIT_WAIT_MS);
        if (ce && ce != RD_KAFKA_RESP_ERR__NO_OFFSET)
            cd_log(CD_LOG_WARN, "kafka: worker %d: commit before revoke failed: %s", w->id,
                   rd_kafka_err2str(ce));
    }
    cd_log(CD_LOG_INFO, "kafka: worker %d revoked %d partition(s)", w->id, parts->cnt);
    if (coop) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
        if (e) rd_kafka_error_destroy(e);
        atomic_fetch_sub_explicit(&w->assigned, parts->cnt, memory_order_relaxed);
    } else {
        rd_kafka_assign(rk, NULL);
        atomic_store_explicit(&w->assigned, 0, memory_order_relaxed);
    }
    track(w, parts, false);
    if (!coop) {
        for (int i = 0; i < w->nparts; i++) /* eager: everything goes */
            remember(w->s, &w->parts[i]);
        w->nparts = 0;
        w->cur = -1;
        publish(w);
    }
    atomic_store_explicit(&w->caught_up, at_end(w), memory_order_relaxed);
}

/* ---- construction --------------------------------------------------------- */

static int set(rd_kafka_conf_t *c, const char *path, const char *name, const char *val,
               char *errbuf, size_t errsize)
{
    char e[512];
    if (rd_kafka_conf_set(c, name, val, e, sizeof(e)) == RD_KAFKA_CONF_OK) return 0;
    snprintf(errbuf, errsize, "%s: librdkafka refused it: %s", path, e);
    return -1;
}

/* The prefetch limits in effect for c (canaryd's defaults or the user's
 * kafka.properties): what the workers compare their queue length with. */
static int prefetch_limits(cd_kafka_source_t *s, const rd_kafka_conf_t *c, char *errbuf,
                           size_t errsize)
{
    char v[64];
    size_t vs = sizeof(v);
    if (rd_kafka_conf_get(c, "queued.max.messages.kbytes", v, &vs) != RD_KAFKA_CONF_OK) goto err;
    s->q_max_bytes = strtoll(v, NULL, 10) * 1024;
    vs = sizeof(v);
    if (rd_kafka_conf_get(c, "queued.min.messages", v, &vs) != RD_KAFKA_CONF_OK) goto err;
    s->q_min_msgs = strtoll(v, NULL, 10);
    vs = sizeof(v);
    if (rd_kafka_conf_get(c, "fetch.wait.max.ms", v, &vs) != RD_KAFKA_CONF_OK) goto err;
    s->fetch_wait_ms = strtoll(v, NULL, 10);
    if (s->q_max_bytes > 0 && s->q_min_msgs > 0) return 0;
err:
    snprintf(errbuf, errsize, "kafka: cannot read back queued.max.messages.kbytes / "
                              "queued.min.messages / fetch.wait.max.ms from librdkafka");
    return -1;
}

static rd_kafka_t *make_consumer(worker_t *w, const cd_kafka_conf_t *kc,
                                 char *errbuf, size_t errsize)
{
    char e[512], path[256];
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *topics = NULL;
    rd_kafka_conf_t *c = rd_kafka_conf_new();

    /* Defaults canaryd picks, overridable by kafka.properties (the prefetch
     * sizing is explained at the top of the file). */
    if (set(c, "(default)", "auto.offset.reset", "earliest", errbuf, errsize) ||
        set(c, "(default)", "queued.max.messages.kbytes", DEFAULT_QUEUE_KBYTES, errbuf, errsize) ||
        set(c, "(default)", "queued.min.messages", DEFAULT_QUEUE_MSGS, errbuf, errsize) ||
        set(c, "(default)", "client.id", "canaryd", errbuf, errsize) ||
        set(c, "(default)", "enable.partition.eof", "true", errbuf, errsize))
        goto err;
    if (w->s->queue_backoff &&
        set(c, "(default)", "fetch.queue.backoff.ms", DEFAULT_QUEUE_BACKOFF_MS, errbuf, errsize))
        goto err;
    for (int i = 0; i < kc->nprops; i++) {
        snprintf(path, sizeof(path), "kafka.properties.%s", kc->prop_names[i]);
        if (rd_kafka_conf_set(c, kc->prop_names[i], kc->prop_values[i], e, sizeof(e)) !=
            RD_KAFKA_CONF_OK) {
            /* cd_kafka_conf_parse reports with secrets cut out; never echo a value here. */
            snprintf(errbuf, errsize, "%s: librdkafka refused it%s%s", path,
                     cd_kafka_prop_is_secret(kc->prop_names[i]) ? "" : ": ",
                     cd_kafka_prop_is_secret(kc->prop_names[i]) ? "" : e);
            goto err;
        }
    }
    if (set(c, "kafka.brokers", "bootstrap.servers", kc->brokers, errbuf, errsize) ||
        set(c, "kafka.group", "group.id", kc->group, errbuf, errsize) ||
        set(c, "(canaryd)", "enable.auto.offset.store", "false", errbuf, errsize) ||
        set(c, "(canaryd)", "enable.auto.commit", "true", errbuf, errsize))
        goto err;
    if (kc->group_instance_id[0]) {
        /* static membership: one identity per worker (each is a member),
         * the same after a restart, so it takes its partitions back at once */
        char id[300];
        snprintf(id, sizeof(id), "%s-%d", kc->group_instance_id, w->id);
        if (set(c, "kafka.group_instance_id", "group.instance.id", id, errbuf, errsize)) goto err;
    }
    if (prefetch_limits(w->s, c, errbuf, errsize) != 0) goto err;
    rd_kafka_conf_set_log_cb(c, log_cb);
    rd_kafka_conf_set_error_cb(c, error_cb);
    rd_kafka_conf_set_offset_commit_cb(c, commit_cb);
    rd_kafka_conf_set_rebalance_cb(c, rebalance_cb);
    rd_kafka_conf_set_opaque(c, w); /* every callback's opaque: the worker */

    rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof(e));
    if (!rk) {
        snprintf(errbuf, errsize, "kafka consumer: %s", e);
        goto err;
    }
    c = NULL; /* owned by rk now */
    rd_kafka_poll_set_consumer(rk);
    topics = rd_kafka_topic_partition_list_new(kc->ntopics);
    for (int i = 0; i < kc->ntopics; i++)
        rd_kafka_topic_partition_list_add(topics, kc->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t se = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (se) {
        snprintf(errbuf, errsize, "kafka.topics: subscribe failed: %s", rd_kafka_err2str(se));
        goto err;
    }
    return rk;
err:
    if (c) rd_kafka_conf_destroy(c);
    if (rk) rd_kafka_destroy(rk);
    return NULL;
}

/* The prober's handle: a consumer outside any group (it only asks for end
 * offsets), with the workers' connection properties (kafka.properties:
 * security, timeouts). */
static rd_kafka_t *make_prober(const cd_kafka_conf_t *kc, char *errbuf, size_t errsize)
{
    char e[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (set(c, "(default)", "client.id", "canaryd-watermark", errbuf, errsize)) goto err;
    for (int i = 0; i < kc->nprops; i++)
        if (rd_kafka_conf_set(c, kc->prop_names[i], kc->prop_values[i], e, sizeof(e)) !=
            RD_KAFKA_CONF_OK) {
            /* the workers' make_consumer reported it first; never echo a value */
            snprintf(errbuf, errsize, "kafka.properties.%s: librdkafka refused it",
                     kc->prop_names[i]);
            goto err;
        }
    if (set(c, "kafka.brokers", "bootstrap.servers", kc->brokers, errbuf, errsize)) goto err;
    rd_kafka_conf_set_log_cb(c, log_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof(e));
    if (!rk) {
        snprintf(errbuf, errsize, "kafka watermark prober: %s", e);
        goto err;
    }
    return rk;
err:
    rd_kafka_conf_destroy(c);
    return NULL;
}

/* ",\"<key>\":\"<value>\"}" with JSON escaping by jansson. */
static char *make_suffix(const char *key, const char *value, size_t *len)
{
    json_t *k = json_string(key), *v = json_string(value);
    char *ks = k ? json_dumps(k, JSON_ENCODE_ANY) : NULL;
    char *vs = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
    char *out = NULL;
    if (ks && vs) {
        size_t n = strlen(ks) + strlen(vs) + 4;
        out = malloc(n);
        if (out) *len = (size_t)snprintf(out, n, ",%s:%s}", ks, vs);
    }
    free(ks);
    free(vs);
    json_decref(k);
    json_decref(v);
    return out;
}

cd_kafka_source_t *cd_kafka_source_new(const cd_kafka_conf_t *kc, const cd_config_t *cfg,
                                       cd_pipeline_t *p, char *errbuf, size_t errsize)
{
    cd_kafka_source_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(errbuf, errsize, "out of memory");
        return NULL;
    }
    s->p = p;
    const char *trace = getenv("CANARYD_TRACE_CONSUME");
    s->trace = trace && *trace && strcmp(trace, "0") != 0;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->nmu, NULL);
    cond_init_monotonic(&s->ncv);
    pthread_mutex_init(&s->prmu, NULL);
    cond_init_monotonic(&s->prcv);
    atomic_init(&s->probes_failed, 0);
    s->ntopics = kc->ntopics;
    atomic_init(&s->topic_parts, -1);
    snprintf(s->group, sizeof(s->group), "%s", kc->group);
    for (int i = 0; i < kc->ntopics && i < CD_KAFKA_MAX_TOPICS; i++)
        snprintf(s->topics[i], sizeof(s->topics[i]), "%s", kc->topics[i]);
    /* Nudging is for librdkafka < 2.1 (which has no fetch.queue.backoff.ms);
     * CANARYD_KAFKA_NUDGE=0 turns it off (the benchmark's comparison). */
    const char *nudge = getenv("CANARYD_KAFKA_NUDGE");
    s->queue_backoff = rd_kafka_version() >= RDK_QUEUE_BACKOFF_VERSION;
    s->nudge = !s->queue_backoff && !(nudge && strcmp(nudge, "0") == 0);
    atomic_init(&s->committed, 0);
    atomic_init(&s->nudges, 0);
    s->nworkers = kc->threads > 0 ? kc->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (s->nworkers < 1) s->nworkers = 1;
    if (s->nworkers > CD_KAFKA_MAX_THREADS) s->nworkers = CD_KAFKA_MAX_THREADS;
    snprintf(s->hdr, sizeof(s->hdr), "%s", kc->cohort_header);
    if (s->hdr[0]) {
        s->cohort_value[CD_COHORT_CANARY] = cfg->decode.canary_value;
        s->cohort_value[CD_COHORT_STABLE] = cfg->decode.stable_value;
        for (int c = 0; c < CD_NCOHORTS; c++) {
            s->suffix[c] = make_suffix(cfg->decode.cohort_path, s->cohort_value[c],
                                       &s->suffix_len[c]);
            if (!s->suffix[c]) {
                snprintf(errbuf, errsize, "out of memory");
                goto err;
            }
        }
    }
    s->w = aligned_alloc(64, (size_t)s->nworkers * sizeof(worker_t));
    if (s->w) memset(s->w, 0, (size_t)s->nworkers * sizeof(worker_t));
    if (!s->w) {
        snprintf(errbuf, errsize, "out of memory");
        goto err;
    }
    for (int i = 0; i < s->nworkers; i++) {
        worker_t *w = &s->w[i];
        w->s = s;
        w->id = i;
        atomic_init(&w->assigned, 0);
        atomic_init(&w->caught_up, false);
        atomic_init(&w->nudge_wanted, false);
        atomic_init(&w->wm, INT64_MAX);
        atomic_init(&w->wm_partition, -1);
        atomic_init(&w->wm_tidx, -1);
        atomic_init(&w->probe_ready, false);
        pthread_mutex_init(&w->pmu, NULL);
        w->run_idx = -1;
        w->run_max = INT64_MIN;
        w->rk = make_consumer(w, kc, errbuf, errsize);
        if (!w->rk) goto err;
    }
    s->prk = make_prober(kc, errbuf, errsize);
    if (!s->prk) goto err;
    return s;
err:
    cd_kafka_source_destroy(s);
    return NULL;
}

/* ---- consuming -------------------------------------------------------------- */

/* Where the payload's top-level object closes: the index of its last '}'
 * (after trailing whitespace), and whether the object is empty. -1 when the
 * payload does not end like an object (it is then decoded as it is). */
static long object_end(const char *b, size_t n, bool *empty)
{
    size_t i = n;
    while (i > 0 && (b[i - 1] == ' ' || b[i - 1] == '\t' || b[i - 1] == '\r' || b[i - 1] == '\n'))
        i--;
    if (i == 0 || b[i - 1] != '}') return -1;
    size_t close = i - 1, j = close;
    while (j > 0 && (b[j - 1] == ' ' || b[j - 1] == '\t' || b[j - 1] == '\r' || b[j - 1] == '\n'))
        j--;
    *empty = j > 0 && b[j - 1] == '{';
    return (long)close;
}

/* Decodes and counts m; returns the event time when the event was
 * accepted into the windows, else INT64_MIN. */
static int64_t process(worker_t *w, const rd_kafka_message_t *m, int stripe)
{
    cd_kafka_source_t *s = w->s;
    const char *buf = m->payload;
    size_t len = m->len;
    cd_event_t ev;

    if (s->hdr[0]) {
        rd_kafka_headers_t *h;
        const void *v;
        size_t vl;
        if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            rd_kafka_header_get_last(h, s->hdr, &v, &vl) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            int c = -1;
            for (int k = 0; k < CD_NCOHORTS; k++)
                if (v && vl == strlen(s->cohort_value[k]) && memcmp(v, s->cohort_value[k], vl) == 0)
                    c = k;
            if (c < 0) {
                cd_pipeline_count_bad(s->p, CD_BAD_UNKNOWN_COHORT, buf, len, 0);
                return INT64_MIN;
            }
            bool empty = false;
            long close = object_end(buf, len, &empty);
            if (close >= 0) {
                size_t need = (size_t)close + s->suffix_len[c] + 1;
                if (need > w->cap) {
                    char *nb = realloc(w->buf, need);
                    if (!nb) {
                        cd_log_ratelimited("kafka:oom", CD_LOG_ERROR,
                                           "out of memory: cohort header not applied");
                        goto decode;
                    }
                    w->buf = nb;
                    w->cap = need;
                }
                memcpy(w->buf, buf, (size_t)close);
                /* an empty object takes the field without the leading comma */
                memcpy(w->buf + close, s->suffix[c] + (empty ? 1 : 0),
                       s->suffix_len[c] - (empty ? 1 : 0));
                buf = w->buf;
                len = (size_t)close + s->suffix_len[c] - (empty ? 1 : 0);
                inc(&s->header_cohort);
            }
        }
    }
decode:
    if (cd_pipeline_decode(s->p, buf, len, 0, &ev) == CD_BAD_NONE &&
        cd_pipeline_add(s->p, &ev, stripe) == CD_WIN_OK)
        return ev.ts_ms;
    return INT64_MIN;
}

/* ---- fetch nudging (librdkafka < 2.1; see the top of the file) ----------- */

/* Worker thread, per message polled: every NUDGE_SAMPLE messages, compares
 * the consumer queue's length (and its estimated payload bytes, from the
 * mean size of the messages just polled) with the prefetch limits. Seen at
 * least 3/4 full, the queue may have stopped the fetcher; the first sample
 * below 3/4 of both limits asks the nudger to wake the fetcher, early enough
 * for a Fetch answer to arrive while the rest is consumed. If no answer has
 * refilled the queue by the time it is below 1/4 (the byte estimate was off,
 * and the fetcher still saw a full queue), it asks once more. */
static void sample_queue(worker_t *w, size_t len)
{
    cd_kafka_source_t *s = w->s;
    w->bytes_since += len;
    if (++w->since_sample < NUDGE_SAMPLE) return;
    int64_t n = (int64_t)rd_kafka_queue_length(w->cq);
    int64_t bytes = n * (int64_t)(w->bytes_since / w->since_sample);
    w->since_sample = 0;
    w->bytes_since = 0;
    if (4 * n >= 3 * s->q_min_msgs || 4 * bytes >= 3 * s->q_max_bytes) {
        w->armed = 2;
        return;
    }
    if (w->armed == 0) return;
    if (w->armed == 1 && (4 * n >= s->q_min_msgs || 4 * bytes >= s->q_max_bytes)) return;
    w->armed--;
    /* relaxed: the flag carries no data, and the nudger reads it after
     * taking nmu, which this thread takes after setting it */
    atomic_store_explicit(&w->nudge_wanted, true, memory_order_relaxed);
    pthread_mutex_lock(&s->nmu);
    s->nudge_pending = true;
    pthread_cond_signal(&s->ncv);
    pthread_mutex_unlock(&s->nmu);
}

/* Nudger thread: wakes a worker's fetchers by asking the leaders of its
 * assigned partitions for their end offsets (one ListOffsets request per
 * leader broker, made by the worker's own consumer, whose broker threads
 * thereby wake up and re-decide whether to fetch). The answer is not used. */
static void nudge(worker_t *w)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    if (rd_kafka_assignment(w->rk, &l) != RD_KAFKA_RESP_ERR_NO_ERROR || !l) return;
    if (l->cnt > 0) {
        for (int i = 0; i < l->cnt; i++)
            l->elems[i].offset = RD_KAFKA_OFFSET_END; /* "timestamp" -1: the end offset */
        rd_kafka_offsets_for_times(w->rk, l, NUDGE_TIMEOUT_MS);
        inc(&w->s->nudges);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void *nudger_run(void *arg)
{
    cd_kafka_source_t *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->nmu);
        /* No lost wake-up: stop is set before nudger_stop broadcasts under
         * nmu, and it is checked here under nmu before every wait. */
        while (!s->nudge_pending && !atomic_load_explicit(&s->stop, memory_order_relaxed))
            pthread_cond_wait(&s->ncv, &s->nmu);
        s->nudge_pending = false;
        pthread_mutex_unlock(&s->nmu);
        if (atomic_load_explicit(&s->stop, memory_order_relaxed)) break;
        for (int i = 0; i < s->nworkers; i++)
            if (atomic_exchange_explicit(&s->w[i].nudge_wanted, false, memory_order_relaxed))
                nudge(&s->w[i]);
    }
    cd_log(CD_LOG_INFO, "kafka: %llu fetch nudges",
           (unsigned long long)atomic_load_explicit(&s->nudges, memory_order_relaxed));
    return NULL;
}

/* Stops and joins the nudger (within NUDGE_TIMEOUT_MS; it uses the workers'
 * handles, which live until cd_kafka_source_destroy). s->stop is set. The
 * thread that calls cd_kafka_source_stop. */
static void nudger_stop(cd_kafka_source_t *s)
{
    if (!s->nudger_started) return;
    pthread_mutex_lock(&s->nmu);
    pthread_cond_broadcast(&s->ncv);
    pthread_mutex_unlock(&s->nmu);
    pthread_join(s->nudger, NULL);
    s->nudger_started = false;
}

/* ---- the watermark prober (see the top) ---------------------------------- */

/* Prober thread: leaves in worker w's mailbox the end offsets in all (the
 * answer sent at sent) of w's partitions l. */
static void post_probe(worker_t *w, const rd_kafka_topic_partition_list_t *l,
                       const rd_kafka_topic_partition_list_t *all, int64_t sent)
{
    pthread_mutex_lock(&w->pmu);
    if (l->cnt > w->capprobe) {
        struct probe_end *np = realloc(w->probe, (size_t)l->cnt * sizeof(*np));
        if (np) {
            w->probe = np;
            w->capprobe = l->cnt;
        }
    }
    w->nprobe = 0;
    for (int i = 0; i < l->cnt && w->nprobe < w->capprobe; i++) {
        const rd_kafka_topic_partition_t *a =
            rd_kafka_topic_partition_list_find(all, l->elems[i].topic, l->elems[i].partition);
        if (!a || a->err || a->offset < 0) continue;
        struct probe_end *pe = &w->probe[w->nprobe++];
        snprintf(pe->topic, sizeof(pe->topic), "%s", a->topic);
        pe->partition = a->partition;
        pe->end = a->offset;
    }
    w->probe_sent = sent;
    pthread_mutex_unlock(&w->pmu);
    atomic_store_explicit(&w->probe_ready, true, memory_order_relaxed);
}

/* Prober thread: asks the leaders of every worker's partitions for their
 * end offsets, on the prober's own handle (its own connections: on a
 * worker's, the request would wait behind that worker's Fetch, which an
 * idle broker holds for fetch.wait.max.ms), and posts the answers. */
static void probe_all(cd_kafka_source_t *s)
{
    rd_kafka_topic_partition_list_t *mine[CD_KAFKA_MAX_THREADS] = {0};
    rd_kafka_topic_partition_list_t *all = rd_kafka_topic_partition_list_new(64);
    for (int i = 0; i < s->nworkers; i++) {
        worker_t *w = &s->w[i];
        if (atomic_load_explicit(&w->assigned, memory_order_relaxed) <= 0) continue;
        if (rd_kafka_assignment(w->rk, &mine[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) mine[i] = NULL;
        for (int k = 0; mine[i] && k < mine[i]->cnt; k++)
            rd_kafka_topic_partition_list_add(all, mine[i]->elems[k].topic,
                                              mine[i]->elems[k].partition)
                ->offset = RD_KAFKA_OFFSET_END; /* "timestamp" -1: the end offset */
    }
    if (all->cnt > 0) {
        int64_t sent = cd_wall_ms();
        rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(s->prk, all, PROBE_TIMEOUT_MS);
        if (e) /* no confirmation: the partitions' watermarks stay where they are */
            atomic_fetch_add_explicit(&s->probes_failed, 1, memory_order_relaxed);
        else
            for (int i = 0; i < s->nworkers; i++)
                if (mine[i]) post_probe(&s->w[i], mine[i], all, sent);
    }
    for (int i = 0; i < s->nworkers; i++)
        if (mine[i]) rd_kafka_topic_partition_list_destroy(mine[i]);
    rd_kafka_topic_partition_list_destroy(all);
}

/* Prober thread: the subscribed topics' partition count, from a metadata
 * request on the prober's handle every META_EVERY_MS (a topic that gains
 * partitions is seen within that). A topic the broker does not know, or a
 * failed request, leaves the count as it was (unknown at first: no hold). */
static void refresh_partitions(cd_kafka_source_t *s)
{
    int64_t now = cd_wall_ms();
    if (s->meta_at && now - s->meta_at < META_EVERY_MS) return;
    int total = 0;
    for (int t = 0; t < s->ntopics; t++) {
        /* one topic per request: never the whole cluster's topic list */
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(s->prk, s->topics[t], NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__FAIL;
        if (rkt) e = rd_kafka_metadata(s->prk, 0, rkt, &md, PROBE_TIMEOUT_MS);
        int n = !e && md->topic_cnt == 1 && !md->topics[0].err ? md->topics[0].partition_cnt : 0;
        if (md) rd_kafka_metadata_destroy(md);
        if (rkt) rd_kafka_topic_destroy(rkt);
        if (n <= 0) return; /* not known (yet): keep what was */
        total += n;
    }
    s->meta_at = now;
    int was = atomic_exchange_explicit(&s->topic_parts, total, memory_order_relaxed);
    if (was != total)
        cd_log(CD_LOG_INFO, "kafka: the subscribed topic(s) have %d partition(s)", total);
}

bool cd_kafka_coverage(int assigned, int total, const char *group, char *why, size_t size)
{
    if (total <= 0 || assigned >= total) return true; /* unknown, or all of them */
    if (why && size)
        snprintf(why, size,
                 "%d of %d partitions assigned: another member of group %.60s holds the rest "
                 "(a previous process's session, until it expires?)",
                 assigned, total, group);
    return false;
}

static void *prober_run(void *arg)
{
    cd_kafka_source_t *s = arg;
    refresh_partitions(s);
    pthread_mutex_lock(&s->prmu);
    while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
        struct timespec until = cd_deadline_after(CLOCK_MONOTONIC, PROBE_EVERY_MS);
        /* No lost wake-up: stop is set before prober_stop signals under prmu. */
        while (!atomic_load_explicit(&s->stop, memory_order_relaxed) &&
               pthread_cond_timedwait(&s->prcv, &s->prmu, &until) == 0)
            ;
        if (atomic_load_explicit(&s->stop, memory_order_relaxed)) break;
        pthread_mutex_unlock(&s->prmu);
        refresh_partitions(s);
        probe_all(s);
        pthread_mutex_lock(&s->prmu);
    }
    pthread_mutex_unlock(&s->prmu);
    return NULL;
}

/* Stops and joins the prober (s->stop is set); it may be inside one probe,
 * at most PROBE_TIMEOUT_MS. */
static void prober_stop(cd_kafka_source_t *s)
{
    if (!s->prober_started) return;
    pthread_mutex_lock(&s->prmu);
    pthread_cond_broadcast(&s->prcv);
    pthread_mutex_unlock(&s->prmu);
    pthread_join(s->prober, NULL);
    s->prober_started = false;
}

int64_t cd_kafka_source_watermark(const cd_kafka_source_t *s, char *who, size_t size)
{
    cd_kafka_source_t *q = (cd_kafka_source_t *)s;
    int64_t wm = INT64_MAX;
    int assigned = 0, slow = -1;
    for (int i = 0; i < s->nworkers; i++) {
        int a = atomic_load_explicit(&q->w[i].assigned, memory_order_relaxed);
        if (a <= 0) continue;
        assigned += a;
        int64_t v = atomic_load_explicit(&q->w[i].wm, memory_order_acquire);
        if (v < wm || slow < 0) {
            wm = v;
            slow = i;
        }
    }
    if (!assigned) {
        if (who && size) snprintf(who, size, "no partition is assigned");
        return INT64_MIN;
    }
    /* coverage (see the top): part of the topic is judged as none of it */
    if (!cd_kafka_coverage(assigned, atomic_load_explicit(&q->topic_parts, memory_order_relaxed),
                           s->group, who, size))
        return INT64_MIN;
    if (who && size) {
        /* read after wm: may name a partition that became the slowest since
         * (only the reason text) */
        int part = atomic_load_explicit(&q->w[slow].wm_partition, memory_order_relaxed);
        int t = atomic_load_explicit(&q->w[slow].wm_tidx, memory_order_relaxed);
        if (wm == INT64_MIN)
            snprintf(who, size, "partition %.200s[%d] has not been read yet",
                     t >= 0 && t < s->ntopics ? s->topics[t] : "?", part);
        else
            snprintf(who, size, "%.200s[%d]", t >= 0 && t < s->ntopics ? s->topics[t] : "?",
                     part);
    }
    return wm;
}

uint64_t cd_kafka_source_probes_failed(const cd_kafka_source_t *s)
{
    return atomic_load_explicit(&((cd_kafka_source_t *)s)->probes_failed, memory_order_relaxed);
}

static void *worker_run(void *arg)
{
    worker_t *w = arg;
    cd_kafka_source_t *s = w->s;
    /* The worker's own stripe of the window and of the pipeline's counters
     * (both take it modulo their stripe count). */
    int stripe = w->id;
    w->cur = -1;
    w->quiet = true;
    w->run_idx = -1;
    w->run_max = INT64_MIN;
    w->cq = s->nudge ? rd_kafka_queue_get_consumer(w->rk) : NULL;
    while (!stopping(s)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w->rk, w->held ? 0 : 100);
        if (!m) {
            flush_store(w); /* the queue is empty: store what was counted */
            w->quiet = true;
            continue;
        }
        if (w->cq) sample_queue(w, m->len);
        int64_t polled_ns = s->trace ? mono_ns() : 0;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && m->rkt) {
            flush_store(w);
            struct part *p = part_of(w, rd_kafka_topic_name(m->rkt), m->partition);
            if (p) {
                p->eof = true;
                at_partition_end(w, p, m->offset);
            }
            atomic_store_explicit(&w->caught_up, at_end(w), memory_order_relaxed);
        }
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                char key[64];
                inc(&s->kafka_errors);
                snprintf(key, sizeof(key), "kafka:consume:%s", rd_kafka_err2name(m->err));
                cd_log_ratelimited(key, CD_LOG_WARN, "kafka: consume: %s",
                                   rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        struct part *pt = part_of(w, rd_kafka_topic_name(m->rkt), m->partition);
        if (pt && pt->eof) {
            pt->eof = false;
            atomic_store_explicit(&w->caught_up, false, memory_order_relaxed);
        }
        if (pt && pt->next >= 0 && m->offset < pt->next) {
            /* Already counted by this process (redelivered after a lost
             * assignment): never count an event twice. */
            atomic_fetch_add_explicit(&s->redelivered, 1, memory_order_relaxed);
            flush_store(w);
            store_offset(w, m);
            rd_kafka_message_destroy(m);
            continue;
        }
        if (pt) pt->next = m->offset + 1;
        int64_t ts = process(w, m, stripe);
        if (w->quiet) {
            /* The first event after a quiet spell wakes an idle live clock
             * (cd_pipeline_poke; live.c, "Idle steps"): once per spell, not
             * per event. */
            w->quiet = false;
            cd_pipeline_poke(s->p);
        }
        if (s->trace)
            fprintf(stderr, "canaryd trace: consumed %s [%d] @%lld mono_ns %lld\n",
                    rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset,
                    (long long)polled_ns);
        /* Counted: now its offset may be committed (offset + 1 is stored,
         * with the run of messages it ends: hold). */
        inc(&w->messages);
        hold(w, m); /* may store the previous run, folding its watermark */
        if (pt) {
            /* this run is m's partition's (hold stores a run at every switch) */
            w->run_idx = (int)(pt - w->parts);
            if (ts > w->run_max) w->run_max = ts;
        }
    }
    if (w->cq) rd_kafka_queue_destroy(w->cq);
    w->cq = NULL;

    /* Stop: commit what was counted, then leave the group, within the deadline. */
    /* Retried until CD_STOP_COMMIT_END_MS before the deadline (shutdown.h):
     * an injected or transient coordinator error must not make the next
     * member count these events again. */
    rd_kafka_resp_err_t ce;
    const int64_t until = deadline(s); /* the loop above ended on stopping() */
    while ((ce = final_commit(w, until - CD_STOP_COMMIT_END_MS)) &&
           ce != RD_KAFKA_RESP_ERR__NO_OFFSET && ce != RD_KAFKA_RESP_ERR__TIMED_OUT &&
           cd_mono_ms() < until - CD_STOP_COMMIT_END_MS) {
        cd_log_ratelimited("kafka:final-commit", CD_LOG_WARN,
                           "kafka: worker %d: final commit failed: %s; retrying", w->id,
                           rd_kafka_err2str(ce));
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (ce && ce != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        inc(&s->commits_failed);
        cd_log(CD_LOG_WARN, "kafka: worker %d: final commit failed: %s", w->id,
               rd_kafka_err2str(ce));
    }
    /* Leave only once every worker has committed: the first to leave starts
     * a rebalance that makes the others' commits fail. */
    atomic_fetch_add_explicit(&s->committed, 1, memory_order_acq_rel);
    while (atomic_load_explicit(&s->committed, memory_order_acquire) < s->nstarted &&
           cd_mono_ms() < until - CD_STOP_CLOSE_MS) {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(w->rk);
    rd_kafka_error_t *e = rd_kafka_consumer_close_queue(w->rk, q);
    if (e) {
        cd_log(CD_LOG_WARN, "kafka: worker %d: close: %s", w->id, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else {
        while (!rd_kafka_consumer_closed(w->rk) && cd_mono_ms() < until) {
            rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 50);
            if (!ev) continue;
            /* Rebalance events during close: give the partitions up. */
            if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE) {
                if (strcmp(rd_kafka_rebalance_protocol(w->rk), "COOPERATIVE") == 0) {
                    rd_kafka_error_t *ue = rd_kafka_incremental_unassign(
                        w->rk, rd_kafka_event_topic_partition_list(ev));
                    if (ue) rd_kafka_error_destroy(ue);
                } else {
                    rd_kafka_assign(w->rk, NULL);
                }
            }
            rd_kafka_event_destroy(ev);
        }
        if (!rd_kafka_consumer_closed(w->rk))
            cd_log(CD_LOG_WARN, "kafka: worker %d did not leave the group in time", w->id);
    }
    rd_kafka_queue_destroy(q);
    return NULL;
}

int cd_kafka_source_set_history(cd_kafka_source_t *s, const cd_kafka_conf_t *kc,
                                const cd_config_t *cfg, int64_t history_ms, char *errbuf,
                                size_t errsize)
{
    if (history_ms <= 0 || s->start) {
        s->history_ms = s->start ? history_ms : 0;
        return 0;
    }
    s->start = cd_kafka_start_new(kc, cfg, errbuf, errsize);
    if (!s->start) return -1;
    s->history_ms = history_ms;
    s->history_from = cd_wall_ms() - history_ms;
    return 0;
}

int cd_kafka_source_start(cd_kafka_source_t *s, char *errbuf, size_t errsize)
{
    /* Written before any worker exists (pthread_create orders it before
     * their reads); a failed start leaves the others waiting out their
     * deadline, not forever. */
    s->nstarted = s->nworkers;
    for (int i = 0; i < s->nworkers; i++) {
        int e = pthread_create(&s->w[i].thread, NULL, worker_run, &s->w[i]);
        if (e != 0) {
            snprintf(errbuf, errsize, "kafka worker thread: %s", strerror(e));
            return -1;
        }
        s->w[i].started = true;
    }
    int pe = pthread_create(&s->prober, NULL, prober_run, s);
    if (pe == 0)
        s->prober_started = true;
    else /* consuming works; partitions at their end then wait out kafka.max_lag_wait */
        cd_log(CD_LOG_WARN, "kafka: watermark prober thread: %s", strerror(pe));
    if (s->nudge) {
        int e = pthread_create(&s->nudger, NULL, nudger_run, s);
        if (e == 0)
            s->nudger_started = true;
        else /* consuming still works, with librdkafka's stalls */
            cd_log(CD_LOG_WARN, "kafka: fetch nudger thread: %s", strerror(e));
    }
    return 0;
}

void cd_kafka_source_stop(cd_kafka_source_t *s, int64_t deadline_ms)
{
    if (!s) return;
    /* deadline first, then stop with release (stopping() acquires it) */
    atomic_store_explicit(&s->deadline_ms, cd_mono_ms() + deadline_ms, memory_order_relaxed);
    atomic_store_explicit(&s->stop, true, memory_order_release);
    nudger_stop(s);
    for (int i = 0; i < s->nworkers; i++) {
        if (!s->w[i].started) continue;
        pthread_join(s->w[i].thread, NULL);
        s->w[i].started = false;
    }
    /* after the workers: it is done by then (they take longer to stop than
     * one probe), and the handles it uses live until destroy */
    prober_stop(s);
}

/*
 * Destroying the consumers. rd_kafka_destroy() waits for librdkafka's own
 * threads, and with the broker gone its group coordinator work can take
 * minutes (requests in flight wait out socket.timeout.ms, then retry), far
 * past the agent's 5 s shutdown budget. So the handles are destroyed on a
 * thread of their own and waited for at most CD_KAFKA_DESTROY_WAIT_MS; past
 * that they are abandoned, together with the source itself (librdkafka's
 * threads may still call our callbacks, whose opaque is a worker), and the
 * process exits without them. Nothing is lost by that: the final commit
 * already succeeded or failed (counted) before the stop returned.
 */
typedef struct reaper {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    rd_kafka_t **rks;
    int n;
} reaper_t;

static void *reap(void *arg)
{
    reaper_t *r = arg;
    for (int i = 0; i < r->n; i++)
        if (r->rks[i]) rd_kafka_destroy_flags(r->rks[i], RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    pthread_mutex_lock(&r->mu);
    r->done = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* true when every handle is destroyed; false when abandoned (still being
 * destroyed by a detached thread). */
static bool destroy_handles(cd_kafka_source_t *s, int64_t wait_ms)
{
    reaper_t *r = calloc(1, sizeof(*r));
    rd_kafka_t **rks = calloc((size_t)s->nworkers + 2, sizeof(*rks));
    if (!r || !rks) {
        free(r);
        free(rks);
        for (int i = 0; i < s->nworkers; i++)
            if (s->w[i].rk) rd_kafka_destroy_flags(s->w[i].rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        if (s->prk) rd_kafka_destroy_flags(s->prk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        if (cd_kafka_start_handle(s->start))
            rd_kafka_destroy_flags(cd_kafka_start_handle(s->start),
                                   RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        return true;
    }
    /* Closed by the worker (or never started): no second close. The
     * prober's handle (never in a group) last. */
    for (int i = 0; i < s->nworkers; i++)
        rks[i] = s->w[i].rk;
    rks[s->nworkers] = s->prk;
    rks[s->nworkers + 1] = cd_kafka_start_handle(s->start); /* may be NULL */
    r->rks = rks;
    r->n = s->nworkers + 2;
    pthread_mutex_init(&r->mu, NULL);
    cond_init_monotonic(&r->cv);
    pthread_t t;
    if (pthread_create(&t, NULL, reap, r) != 0) {
        reap(r);
    } else {
        struct timespec until = cd_deadline_after(CLOCK_MONOTONIC, wait_ms);
        pthread_mutex_lock(&r->mu);
        while (!r->done && pthread_cond_timedwait(&r->cv, &r->mu, &until) == 0)
            ;
        bool done = r->done;
        pthread_mutex_unlock(&r->mu);
        if (!done) {
            pthread_detach(t);
            cd_log(CD_LOG_WARN,
                   "kafka: librdkafka did not shut down within %lld ms (broker unreachable?); "
                   "exiting without waiting for it",
                   (long long)wait_ms);
            return false; /* r, rks: the detached thread's until the process exits */
        }
        pthread_join(t, NULL);
    }
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(rks);
    free(r);
    return true;
}

void cd_kafka_source_destroy(cd_kafka_source_t *s)
{
    if (!s) return;
    cd_kafka_source_stop(s, 0);
    if ((s->w || s->prk || s->start) && !destroy_handles(s, CD_KAFKA_DESTROY_WAIT_MS))
        return; /* abandoned, see above */
    cd_kafka_start_free(s->start); /* its handle went with the others */
    for (int i = 0; s->w && i < s->nworkers; i++) {
        free(s->w[i].buf);
        free(s->w[i].parts);
        free(s->w[i].probe);
        pthread_mutex_destroy(&s->w[i].pmu);
    }
    free(s->w);
    for (int c = 0; c < CD_NCOHORTS; c++)
        free(s->suffix[c]);
    free(s->gone);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->nmu);
    pthread_cond_destroy(&s->ncv);
    pthread_mutex_destroy(&s->prmu);
    pthread_cond_destroy(&s->prcv);
    free(s);
}

void cd_kafka_source_stats(const cd_kafka_source_t *s, cd_kafka_stats_t *out)
{
    cd_kafka_source_t *q = (cd_kafka_source_t *)s;
    memset(out, 0, sizeof(*out));
    out->header_cohort = atomic_load_explicit(&q->header_cohort, memory_order_relaxed);
    out->kafka_errors = atomic_load_explicit(&q->kafka_errors, memory_order_relaxed);
    out->commits_failed = atomic_load_explicit(&q->commits_failed, memory_order_relaxed);
    out->rebalances = atomic_load_explicit(&q->rebalances, memory_order_relaxed);
    out->redelivered = (uint64_t)atomic_load_explicit(&q->redelivered, memory_order_relaxed);
    out->fetch_nudges = atomic_load_explicit(&q->nudges, memory_order_relaxed);
    cd_kafka_start_stats_t st;
    cd_kafka_start_stats(q->start, &st);
    out->start_searches = st.searches;
    out->start_probes = st.probes;
    out->start_broker = st.broker_answers;
    out->start_at_end = st.at_end;
    out->start_failed = st.failed;
    for (int i = 0; i < s->nworkers; i++) {
        out->assigned += atomic_load_explicit(&q->w[i].assigned, memory_order_relaxed);
        out->messages += atomic_load_explicit(&q->w[i].messages, memory_order_relaxed);
    }
    out->topic_partitions = atomic_load_explicit(&q->topic_parts, memory_order_relaxed);
    out->covered = cd_kafka_coverage(out->assigned, out->topic_partitions, s->group,
                                     out->coverage, sizeof(out->coverage));
}

bool cd_kafka_source_caught_up(const cd_kafka_source_t *s)
{
    cd_kafka_source_t *q = (cd_kafka_source_t *)s;
    int assigned = 0;
    for (int i = 0; i < s->nworkers; i++) {
        int a = atomic_load_explicit(&q->w[i].assigned, memory_order_relaxed);
        assigned += a;
        if (a > 0 && !atomic_load_explicit(&q->w[i].caught_up, memory_order_relaxed)) return false;
    }
    return assigned > 0;
}

bool cd_kafka_source_failed(const cd_kafka_source_t *s)
{
    return atomic_load_explicit(&((cd_kafka_source_t *)s)->failed, memory_order_relaxed);
}

/* For the HTTP API (any thread while the workers run): librdkafka's handle
 * calls used here are thread-safe, and answer from the client's cached state
 * (assignment, position, the high watermark of the last fetch): no request
 * goes to the broker. */
int cd_kafka_source_lag(const cd_kafka_source_t *s, cd_kafka_lag_t *out, int max)
{
    int n = 0;
    for (int i = 0; i < s->nworkers; i++) {
        rd_kafka_t *rk = s->w[i].rk;
        rd_kafka_topic_partition_list_t *l = NULL;
        if (!rk || rd_kafka_assignment(rk, &l) != RD_KAFKA_RESP_ERR_NO_ERROR || !l) continue;
        rd_kafka_position(rk, l);
        for (int k = 0; k < l->cnt; k++, n++) {
            if (n >= max) continue; /* counted, not stored */
            cd_kafka_lag_t *o = &out[n];
            int64_t lo = -1, hi = -1;
            snprintf(o->topic, sizeof(o->topic), "%s", l->elems[k].topic);
            o->partition = l->elems[k].partition;
            rd_kafka_get_watermark_offsets(rk, o->topic, o->partition, &lo, &hi);
            int64_t pos = l->elems[k].offset;
            /* No position yet on this worker: the partition may have moved
             * here in a rebalance after another worker of this process had
             * counted it up to the end (nothing new to fetch since). */
            if (pos < 0) pos = recall((cd_kafka_source_t *)s, o->topic, o->partition);
            if (pos >= 0 && hi >= 0)
                o->lag = hi > pos ? hi - pos : 0;
            else if (pos < 0 && (hi == 0 || (lo >= 0 && hi == lo)))
                o->lag = 0; /* no position yet because the partition is empty: nothing to read */
            else
                o->lag = -1; /* unknown */
        }
        rd_kafka_topic_partition_list_destroy(l);
    }
    return n;
}
