/*
 * kafka_start.c - finding where a partition starts by time (issue 11,
 * "Start by time"): the first offset whose event time is at or after t.
 *
 * Why: the windows are a function of the events of the last few minutes,
 * and Kafka still has them. A new member starting at the committed offset
 * (or, for a new group, at the topic's beginning: days of retention) either
 * misses the windows' history or reads far more than it; starting at the
 * offset of t = now - the history the rules need reads exactly that span.
 *
 * How, per call (one assignment's partitions at once):
 *  1. Each partition's bounds [lo, hi) and the broker's own answer, in two
 *     ListOffsets rounds for the whole list (rd_kafka_offsets_for_times with
 *     the logical beginning / end, then with t). A real broker answers t
 *     from its time index: the first offset whose message timestamp is >= t,
 *     or -1 when none is. librdkafka 2.0.2's mock cluster answers -1 for
 *     every time (measured: 10 messages stamped 1000 s..1009 s, asked for
 *     500 s, 1003.5 s, 1005 s and 2000 s: -1 each time; only -1 / -2, the
 *     end and the beginning, are answered).
 *  2. The answer is never taken on faith: it is checked by reading the
 *     message before it and the message at it (an answer of -1 by reading
 *     the last message). A broker's correct answer is thus confirmed in two
 *     probes, one of -1 on a partition whose history is older than t in one
 *     (the partition starts at its end), and a wrong one (the mock's)
 *     narrows nothing and the search goes on. The first message is read
 *     next: a partition whose whole retention is recent starts there.
 *  3. A lower-bound search over [lo, hi): each probe reads the one message
 *     at an offset and compares its event time with t (decoded from the
 *     payload with the agent's own decoder, so "event time" means the same
 *     as in the windows; the message timestamp when the payload does not
 *     decode). Probes alternate between interpolation (offsets of a live
 *     topic are nearly linear in time: usually 2-4 probes) and bisection
 *     (which bounds the worst case at log2(hi - lo) + 1 rounds). All the
 *     partitions of the call probe in the same round: one assign and one
 *     Fetch per leader per round, not one per partition.
 *
 * Data: one librdkafka consumer handle of its own (a group id it never
 * joins or commits with: assign() needs one), never the workers' (a search
 * runs inside a worker's rebalance callback; its own consumer must not
 * fetch for it) nor the watermark prober's (its ListOffsets every 500 ms
 * must not wait behind a search). Small fetches (16 KB a partition,
 * fetch.wait.max.ms 10): a probe wants one message. queued.min.messages
 * stays at librdkafka's default: at 1, a round's leftover message made
 * librdkafka 2.0.2 wait for its 1 s timer before fetching the next round's
 * offsets (kafka_source.c, "fetch nudging"): rounds took 1.0 s, now 0-11 ms
 * on the mock cluster (measured, 3 partitions of 562 messages, 9 rounds).
 *
 * Threading: calls are serialized by a mutex (several workers may be
 * assigned at once); the counters are relaxed atomics.
 *
 * Trade-off: a probe reads a whole Fetch answer for one message (the batch
 * the producer wrote, up to the fetch size), and the search costs a round
 * trip per round; both are small beside reading the topic from the last
 * commit or the beginning, and nothing is counted into the windows from a
 * probe. Timestamps are assumed non-decreasing in offset order, give or take
 * the allowed lateness that the caller already subtracted from t.
 */
#include "kafka_start.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canaryd/clock.h"
#include "canaryd/event.h"
#include "canaryd/log.h"

struct cd_kafka_start {
    rd_kafka_t *rk;
    cd_decoder_t *dec;
    pthread_mutex_t mu;
    atomic_uint_fast64_t searches, probes, broker_answers, at_end, failed;
};

/* One partition's search: the answer lies in [a, b]; every existing offset
 * below a is older than t, offset b (when < hi) is at or after t. */
typedef struct srch {
    int idx;                 /* element of the caller's list */
    int64_t lo, hi, a, b;
    int64_t ta, tb;          /* event times at a - 1 and at b; INT64_MIN = unknown */
    int64_t hints[3];        /* offsets to read first: the broker's answer, the beginning */
    int nhints, round;
    int64_t probe;           /* offset asked this round */
    bool got, done, fail;
} srch_t;

static int set(rd_kafka_conf_t *c, const char *name, const char *val, char *errbuf, size_t errsize)
{
    char e[512];
    if (rd_kafka_conf_set(c, name, val, e, sizeof(e)) == RD_KAFKA_CONF_OK) return 0;
    snprintf(errbuf, errsize, "kafka start search: %s: %s", name, e);
    return -1;
}

cd_kafka_start_t *cd_kafka_start_new(const cd_kafka_conf_t *kc, const cd_config_t *cfg,
                                     char *errbuf, size_t errsize)
{
    char e[512];
    cd_kafka_start_t *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(errbuf, errsize, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&k->mu, NULL);
    k->dec = cd_decoder_new(&cfg->decode, errbuf, errsize);
    if (!k->dec) goto err;
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    for (int i = 0; i < kc->nprops; i++)
        if (rd_kafka_conf_set(c, kc->prop_names[i], kc->prop_values[i], e, sizeof(e)) !=
            RD_KAFKA_CONF_OK) {
            /* the workers reported it first; never echo a value */
            snprintf(errbuf, errsize, "kafka.properties.%s: librdkafka refused it",
                     kc->prop_names[i]);
            rd_kafka_conf_destroy(c);
            goto err;
        }
    if (set(c, "bootstrap.servers", kc->brokers, errbuf, errsize) ||
        set(c, "client.id", "canaryd-start", errbuf, errsize) ||
        set(c, "group.id", "canaryd-start-search", errbuf, errsize) ||
        set(c, "enable.auto.commit", "false", errbuf, errsize) ||
        set(c, "enable.auto.offset.store", "false", errbuf, errsize) ||
        set(c, "enable.partition.eof", "true", errbuf, errsize) ||
        set(c, "auto.offset.reset", "error", errbuf, errsize) ||
        set(c, "queued.max.messages.kbytes", "4096", errbuf, errsize) ||
        set(c, "max.partition.fetch.bytes", "16384", errbuf, errsize) ||
        set(c, "fetch.wait.max.ms", "10", errbuf, errsize)) {
        rd_kafka_conf_destroy(c);
        goto err;
    }
    k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof(e));
    if (!k->rk) {
        snprintf(errbuf, errsize, "kafka start search: %s", e);
        rd_kafka_conf_destroy(c);
        goto err;
    }
    rd_kafka_poll_set_consumer(k->rk);
    return k;
err:
    cd_kafka_start_free(k);
    return NULL;
}

rd_kafka_t *cd_kafka_start_handle(cd_kafka_start_t *k)
{
    return k ? k->rk : NULL;
}

void cd_kafka_start_free(cd_kafka_start_t *k)
{
    if (!k) return;
    cd_decoder_destroy(k->dec);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

/* The event time of m: decoded from the payload, else its timestamp. */
static int64_t time_of(cd_kafka_start_t *k, const rd_kafka_message_t *m)
{
    cd_event_t ev;
    if (m->payload && cd_decode(k->dec, m->payload, m->len, &ev) == CD_BAD_NONE) return ev.ts_ms;
    return rd_kafka_message_timestamp(m, NULL);
}

/* The next offset to read for s (s->a < s->b): the broker's answer first,
 * then interpolation between (a - 1, ta) and (b, tb) on even rounds when
 * both times are known, bisection otherwise. */
static int64_t next_probe(srch_t *s, int64_t t)
{
    while (s->nhints > 0) {
        int64_t h = s->hints[0];
        memmove(s->hints, s->hints + 1, sizeof(s->hints) - sizeof(s->hints[0]));
        s->nhints--;
        if (h >= s->a && h < s->b) return h;
    }
    if ((s->round++ & 1) == 0 && s->ta != INT64_MIN && s->tb != INT64_MIN && s->tb > s->ta &&
        t > s->ta) {
        double f = (double)(t - s->ta) / (double)(s->tb - s->ta);
        int64_t o = (s->a - 1) + (int64_t)(f * (double)(s->b - (s->a - 1)));
        if (o < s->a) o = s->a;
        if (o > s->b - 1) o = s->b - 1;
        return o;
    }
    return s->a + (s->b - s->a) / 2;
}

/* A probe of s read the message at offset off (the first at or after the
 * offset asked) with event time ts. */
static void learn(srch_t *s, int64_t t, int64_t off, int64_t ts)
{
    if (ts >= t) {
        /* nothing exists between the offset asked and off */
        if (s->probe < s->b) {
            s->b = s->probe;
            s->tb = ts;
        }
    } else if (off + 1 > s->a) {
        s->a = off + 1 < s->b ? off + 1 : s->b;
        s->ta = ts;
    }
}

int cd_kafka_start_find(cd_kafka_start_t *k, rd_kafka_topic_partition_list_t *l, int64_t t_ms,
                        int64_t timeout_ms)
{
    int n = 0, found = 0;
    for (int i = 0; i < l->cnt; i++)
        if (l->elems[i].offset == RD_KAFKA_OFFSET_INVALID) n++;
    if (n == 0) return 0;
    srch_t *ss = calloc((size_t)n, sizeof(*ss));
    rd_kafka_topic_partition_list_t *lo = rd_kafka_topic_partition_list_new(n),
                                    *hi = rd_kafka_topic_partition_list_new(n),
                                    *at = rd_kafka_topic_partition_list_new(n);
    if (!ss || !lo || !hi || !at) goto out;
    pthread_mutex_lock(&k->mu);
    int64_t until = cd_mono_ms() + timeout_ms;
    n = 0;
    for (int i = 0; i < l->cnt; i++) {
        if (l->elems[i].offset != RD_KAFKA_OFFSET_INVALID) continue;
        ss[n].idx = i;
        rd_kafka_topic_partition_list_add(lo, l->elems[i].topic, l->elems[i].partition)->offset =
            RD_KAFKA_OFFSET_BEGINNING; /* "timestamp" -2 */
        rd_kafka_topic_partition_list_add(hi, l->elems[i].topic, l->elems[i].partition)->offset =
            RD_KAFKA_OFFSET_END; /* "timestamp" -1 */
        rd_kafka_topic_partition_list_add(at, l->elems[i].topic, l->elems[i].partition)->offset =
            t_ms;
        n++;
    }
    atomic_fetch_add_explicit(&k->searches, (uint64_t)n, memory_order_relaxed);
    int left = (int)(until - cd_mono_ms());
    rd_kafka_resp_err_t e1 = rd_kafka_offsets_for_times(k->rk, lo, left > 0 ? left : 1);
    left = (int)(until - cd_mono_ms());
    rd_kafka_resp_err_t e2 = rd_kafka_offsets_for_times(k->rk, hi, left > 0 ? left : 1);
    left = (int)(until - cd_mono_ms());
    rd_kafka_resp_err_t e3 = rd_kafka_offsets_for_times(k->rk, at, left > 0 ? left : 1);
    int active = 0;
    for (int j = 0; j < n; j++) {
        srch_t *s = &ss[j];
        s->ta = s->tb = INT64_MIN;
        if (e1 || e2 || lo->elems[j].err || hi->elems[j].err || lo->elems[j].offset < 0 ||
            hi->elems[j].offset < 0) {
            s->fail = s->done = true;
            continue;
        }
        s->lo = s->a = lo->elems[j].offset;
        s->hi = s->b = hi->elems[j].offset;
        if (!e3 && !at->elems[j].err) {
            int64_t o = at->elems[j].offset;
            if (o >= s->lo && o < s->hi) { /* check both sides of the answer */
                s->hints[s->nhints++] = o - 1;
                s->hints[s->nhints++] = o;
            } else if (o < 0) { /* "none that recent": check the last message */
                s->hints[s->nhints++] = s->hi - 1;
            }
        }
        /* then the first: a partition whose whole retention is recent (a
         * new topic, a benchmark's preload) is answered in one probe */
        s->hints[s->nhints++] = s->lo;
        if (s->a >= s->b)
            s->done = true; /* empty: its end */
        else
            active++;
    }
    while (active > 0 && cd_mono_ms() < until) {
        rd_kafka_topic_partition_list_t *asg = rd_kafka_topic_partition_list_new(active);
        for (int j = 0; j < n; j++) {
            srch_t *s = &ss[j];
            if (s->done) continue;
            s->probe = next_probe(s, t_ms);
            s->got = false;
            rd_kafka_topic_partition_list_add(asg, l->elems[s->idx].topic,
                                              l->elems[s->idx].partition)
                ->offset = s->probe;
        }
        rd_kafka_assign(k->rk, asg);
        rd_kafka_topic_partition_list_destroy(asg);
        int want = active;
        while (want > 0 && cd_mono_ms() < until) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(k->rk, 100);
            if (!m) continue;
            for (int j = 0; j < n && m->rkt; j++) {
                srch_t *s = &ss[j];
                if (s->done || s->got || m->partition != l->elems[s->idx].partition ||
                    strcmp(rd_kafka_topic_name(m->rkt), l->elems[s->idx].topic) != 0)
                    continue;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                    if (m->offset < s->probe) break; /* a stale end from an earlier round */
                    s->b = s->probe; /* nothing at or after the offset asked */
                } else if ((m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
                            m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) &&
                           m->offset == s->probe) {
                    /* Retention removed the offset asked: the log's start
                     * moved past it during the search (a probe is below the
                     * end, which only grows). Nothing at or before it can be
                     * read any more, so the answer lies above it; its time
                     * is unknown (bisect). Found by test_live_kill: the mock
                     * cluster drops a partition's oldest messages one by one
                     * past ~5 MB, and a restart then started at the
                     * committed offset instead. */
                    s->a = s->probe + 1 < s->b ? s->probe + 1 : s->b;
                    s->ta = INT64_MIN;
                } else if (m->err) {
                    cd_log_ratelimited("kafka:start-search", CD_LOG_WARN,
                                       "kafka: finding %s[%d]'s start by time: %s",
                                       l->elems[s->idx].topic, (int)m->partition,
                                       rd_kafka_message_errstr(m));
                    s->fail = true;
                } else if (m->offset < s->probe) {
                    break; /* from an earlier round's fetch */
                } else {
                    atomic_fetch_add_explicit(&k->probes, 1, memory_order_relaxed);
                    learn(s, t_ms, m->offset, time_of(k, m));
                }
                s->got = true;
                want--;
                break;
            }
            rd_kafka_message_destroy(m);
        }
        for (int j = 0; j < n; j++) {
            srch_t *s = &ss[j];
            if (s->done || !s->got) continue;
            if (s->fail || s->a >= s->b) {
                s->done = true;
                active--;
            }
        }
    }
    rd_kafka_assign(k->rk, NULL);
    for (int j = 0; j < n; j++) {
        srch_t *s = &ss[j];
        if (s->fail || !s->done) {
            atomic_fetch_add_explicit(&k->failed, 1, memory_order_relaxed);
            cd_log(CD_LOG_WARN,
                   "kafka: %s[%d]: start by time not found within %lld ms; starting at the "
                   "committed offset",
                   l->elems[s->idx].topic, (int)l->elems[s->idx].partition, (long long)timeout_ms);
            continue;
        }
        l->elems[s->idx].offset = s->a;
        found++;
        cd_log(CD_LOG_DEBUG, "kafka: %s[%d] starts at offset %lld of [%lld, %lld) (%d rounds)",
               l->elems[s->idx].topic, (int)l->elems[s->idx].partition, (long long)s->a,
               (long long)s->lo, (long long)s->hi, s->round);
        if (s->a >= s->hi) atomic_fetch_add_explicit(&k->at_end, 1, memory_order_relaxed);
        if (!e3 && !at->elems[j].err &&
            (at->elems[j].offset == s->a || (at->elems[j].offset < 0 && s->a >= s->hi)))
            atomic_fetch_add_explicit(&k->broker_answers, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&k->mu);
out:
    free(ss);
    if (lo) rd_kafka_topic_partition_list_destroy(lo);
    if (hi) rd_kafka_topic_partition_list_destroy(hi);
    if (at) rd_kafka_topic_partition_list_destroy(at);
    return found;
}

void cd_kafka_start_stats(cd_kafka_start_t *k, cd_kafka_start_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!k) return;
    out->searches = atomic_load_explicit(&k->searches, memory_order_relaxed);
    out->probes = atomic_load_explicit(&k->probes, memory_order_relaxed);
    out->broker_answers = atomic_load_explicit(&k->broker_answers, memory_order_relaxed);
    out->at_end = atomic_load_explicit(&k->at_end, memory_order_relaxed);
    out->failed = atomic_load_explicit(&k->failed, memory_order_relaxed);
}
