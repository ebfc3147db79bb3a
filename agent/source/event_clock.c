/*
 * event_clock.c - the event-time clock of replay and baseline (rules in
 * event_clock.h).
 *
 * Why the rules: the clock trails max_ts in replay (by allowed_lateness),
 * so one bad timestamp far ahead must not fast-forward the analysis past
 * every real event: it is dropped as "future" and the clock stays. But
 * when CD_EC_REANCHOR_RUN such events come in a row it is the stream that
 * moved on (a pause longer than the skew, or a bogus first timestamp far in
 * the past that every real event now looks "future" against): the clock
 * follows it from the last of them, with a warning. The first event has no
 * reference of its own, hence the look-ahead's median: a bogus first
 * timestamp (2099 in a 2026 stream, or 2001) is then judged against the
 * stream's start instead of becoming it. The "late" test also asks that the
 * first event be more than max_future_skew before the look-ahead's second
 * event, which keeps a sparse stream's legitimate first events (far before
 * the median of 64, but close to each other).
 *
 * Comparisons use unsigned differences: exact whatever the order, no
 * overflow at the extremes of int64. Single-threaded.
 */
#include "event_clock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "canaryd/log.h"
#include "canaryd/timeutil.h"

void cd_event_clock_init(cd_event_clock_t *k, int64_t max_future_skew_ms, int64_t span_ms)
{
    memset(k, 0, sizeof(*k));
    k->skew = max_future_skew_ms;
    k->span = span_ms;
}

/* ts more than max_future_skew after ref */
static bool after_skew(const cd_event_clock_t *k, int64_t ts, int64_t ref)
{
    return ts > ref && (uint64_t)ts - (uint64_t)ref > (uint64_t)k->skew;
}

cd_ec_verdict_t cd_event_clock_judge(cd_event_clock_t *k, int64_t ts, uint64_t lineno, int64_t *ref)
{
    if (!k->have && k->anchored) {
        if (after_skew(k, ts, k->anchor)) {
            *ref = k->anchor;
            return CD_EC_FUTURE;
        }
        if (ts < k->anchor && (uint64_t)k->anchor - (uint64_t)ts > (uint64_t)k->span &&
            after_skew(k, k->second, ts)) {
            *ref = k->anchor;
            return CD_EC_LATE;
        }
    }
    if (k->have && after_skew(k, ts, k->max_ts)) {
        if (++k->future_run < CD_EC_REANCHOR_RUN) {
            *ref = k->max_ts;
            return CD_EC_FUTURE;
        }
        char from[40], to[40];
        cd_log(CD_LOG_WARN,
               "line %llu: %d events in a row more than max_future_skew after %s; "
               "following the stream to %s",
               (unsigned long long)lineno, CD_EC_REANCHOR_RUN,
               cd_time_format(k->max_ts, from, sizeof(from)), cd_time_format(ts, to, sizeof(to)));
        k->followed++;
    }
    k->future_run = 0;
    if (!k->have || ts > k->max_ts) k->max_ts = ts;
    k->have = true;
    return CD_EC_TAKE;
}

cd_ec_verdict_t cd_event_clock_take_line(cd_event_clock_t *k, cd_pipeline_t *p, cd_lr_status_t st,
                                         const char *line, size_t len, uint64_t lineno,
                                         cd_event_t *ev)
{
    if (st == CD_LR_TOO_LONG) {
        cd_pipeline_count_bad(p, CD_BAD_LINE_TOO_LONG, line, len, lineno);
        return CD_EC_BAD;
    }
    if (cd_pipeline_decode(p, line, len, lineno, ev) != CD_BAD_NONE) return CD_EC_BAD;
    int64_t ref;
    cd_ec_verdict_t v = cd_event_clock_judge(k, ev->ts_ms, lineno, &ref);
    if (v == CD_EC_FUTURE) cd_pipeline_count_future(p, ev, ref, lineno);
    if (v == CD_EC_LATE) cd_pipeline_count_late(p, ev, ref, lineno);
    return v;
}

void cd_event_clock_unanchor(cd_event_clock_t *k)
{
    k->anchored = false;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

long cd_event_clock_look_ahead(cd_event_clock_t *k, cd_linereader_t *lr, const cd_decode_conf_t *dc,
                               const volatile sig_atomic_t *stop, cd_held_line_t **out)
{
    char err[256];
    cd_held_line_t *held = calloc(CD_EC_ANCHOR_LINES, sizeof(*held));
    int64_t ts[CD_EC_ANCHOR_EVENTS];
    int nts = 0;
    long n = 0;
    size_t bytes = 0;
    cd_decoder_t *d = cd_decoder_new(dc, err, sizeof(err));
    if (!held || !d) {
        free(held);
        cd_decoder_destroy(d);
        *out = NULL;
        return 0;
    }
    while (nts < CD_EC_ANCHOR_EVENTS && n < CD_EC_ANCHOR_LINES && bytes < CD_EC_ANCHOR_BYTES &&
           !(stop && *stop)) {
        const char *line;
        size_t len;
        cd_lr_status_t st = cd_linereader_next(lr, &line, &len);
        if (st == CD_LR_EOF) break;
        if (st == CD_LR_ERROR) {
            int e = errno;
            for (long i = 0; i < n; i++)
                free(held[i].text);
            free(held);
            cd_decoder_destroy(d);
            *out = NULL;
            errno = e;
            return -1;
        }
        cd_held_line_t *h = &held[n];
        h->text = malloc(len ? len : 1);
        if (!h->text) break; /* the rest is read by the caller's loop, unanchored */
        memcpy(h->text, line, len);
        bytes += len;
        h->len = len;
        h->st = st;
        h->lineno = cd_linereader_lineno(lr);
        n++;
        cd_event_t ev;
        if (st == CD_LR_LINE && cd_decode(d, h->text, len, &ev) == CD_BAD_NONE) {
            ts[nts++] = ev.ts_ms;
            if (nts == 2) k->second = ev.ts_ms;
        }
    }
    cd_decoder_destroy(d);
    if (nts > 0) {
        qsort(ts, (size_t)nts, sizeof(ts[0]), cmp_i64);
        k->anchor = ts[nts / 2];
        k->anchored = true;
    }
    *out = held;
    return n;
}
