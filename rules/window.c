/*
 * window.c - lock-free sliding-window counters and histograms in event time.
 *
 * Data structure. A ring of n = ceil(span/res) + ceil(ahead/res) + 2 buckets of
 * res ms. The bucket of time t >= 0 is second index s = t / res (floor: times
 * before 1970 are rejected as LATE, so t is never negative), held by slot
 * s % n. All writable seconds at one clock
 * value, [clock/res - span_b, (clock+ahead)/res], number at most n - 1, so they
 * never share a slot. One calloc'd block holds the ring; each bucket is
 *
 *   [epoch]                           own 64-byte line: the s it holds
 *   [stripe 0 cells][stripe 1 cells]  nmetrics x 2 counters, each stripe
 *   ...                               starting on its own cache line
 *   [octave masks]                    one word per (hist, cohort)
 *   [group counts]                    NGROUPS cells per (hist, cohort)
 *   [bin 0: (hist 0, stable),         CD_HIST_BINS x nhists x 2 cells,
 *    (hist 0, canary), ...][bin 1...]  interleaved (b_bin): an octave's
 *                                     cells for both cohorts are adjacent
 *
 * Cells carry their second. Every counter and bin cell is one 64-bit word:
 * a 24-bit tag (s mod 2^24) above a 40-bit count. A writer adds with one CAS
 * that succeeds only while the tag is its own second, so an add can never land
 * in another second's data: a writer that read epoch == s and was then
 * preempted while the slot was recycled for s + n finds the tag changed and
 * reports LATE. (The plain "CAS epoch, zero, store epoch" protocol alone can
 * leak such an add into the new second; the tag closes that hole for the
 * price of a CAS instead of a fetch_add, which costs the same uncontended.)
 *
 * Claiming. A bucket whose epoch is older than the wanted s is claimed by one
 * CAS of its epoch to CLAIMING; the winner resets the cells to (tag(s), 0) -
 * all counters, and the bins of the octaves whose bit is set in the bucket's
 * octave mask - then store-releases epoch = s. Writers that meet CLAIMING wait
 * (one bucket's reset, microseconds); a writer whose slot holds a newer second
 * has a late event. set_clock() pre-claims the seconds up to clock + ahead so
 * writers rarely take this path.
 *
 * Histograms. Bins are shared by all writers (a hot bin is contended; the
 * counters are what must scale). Beside them, an octave mask has one bit per
 * group of sub-bins (bin 0, each octave's 64 bins, overflow) that any writer
 * sets before touching a bin of it in this second. Readers merge, and claimers
 * reset, only the octaves whose bit is set: a latency histogram touches a few
 * octaves, so a merge over 300 buckets reads a few hundred cells per bucket,
 * not 4356. A bin untouched since an older second keeps that second's tag and
 * a zero count; the first writer of this second adopts it (CAS to (tag, n))
 * after re-checking, sequentially consistently, that epoch is still s.
 *
 * Group counts. Beside its bin, an observation adds 1 to its group's count
 * cell (same tag protocol, same mask bit, reset with the group's bins), so a
 * bucket knows how many values each octave holds without reading its 64
 * bins. cd_window_quantile() uses that to find the octave holding the rank
 * from a few cells per bucket and then merges only that octave's bins: a
 * p99 over 300 buckets reads about 300 x (octaves + 64) cells instead of
 * 300 x 64 x octaves. The price is a second CAS per observation.
 *
 * Memory orders. epoch: store-release after the reset / load-acquire by
 * writers and readers, so whoever sees epoch == s sees the reset cells.
 * Counters and bins on the fast path (tag matches): relaxed CAS - the cell's
 * own modification order decides which second an add belongs to, nothing
 * else is published through it. The adopt path and the claimer's epoch CAS,
 * mask exchange and cell resets are seq_cst: either the adopter's epoch
 * re-check precedes the claim in the single total order (then the claimer
 * sees its mask bit and resets its cell after the adopt: the add leaves with
 * its old second) or it sees CLAIMING / the new second and reports LATE.
 * Readers: load-acquire epoch, relaxed loads of the cells (counting only
 * cells tagged with the second read), acquire fence, reload epoch: if it
 * changed, the bucket was recycled while read and is discarded (its second
 * is then out of any range a reader may ask for). clock and the LATE/FUTURE
 * limits: written by the single set_clock caller, read relaxed by writers -
 * they only gate admission; a stale value admits or rejects at the edge
 * exactly as if the event had arrived a moment earlier.
 *
 * Read ranges. cd_window_sum/hist/quantile(end, len) cover the buckets that
 * start in [end - len, end): index in [ceil((end - len) / res),
 * ceil(end / res) - 1], clipped below at the oldest second the clock still
 * admits (clock / res - span buckets). With end and len multiples of res
 * that is exactly [end - len, end) (replay evaluates there). In between -
 * the live agent evaluates every 10 ms - the bucket holding end, still
 * filling, is included and the one holding end - len is not: a window read
 * at 12:00:00.350 is the one of 12:00:01 so far, so an event is judged as
 * soon as it is counted. len <= 0 or end <= 0 give 0.
 *
 * Limits, documented trade-offs: a count saturates at 2^40 - 1 per stripe,
 * bucket and counter; tags repeat every 2^24 buckets (194 days at 1 s), so a
 * writer preempted across that many buckets could add into the new second.
 * Metric, histogram and cohort ids out of range are programming errors
 * (CD_ASSERT), not input: the decoder maps unknown types to CD_TYPE_OTHER.
 * No allocation after cd_window_new(); untouched parts of the ring stay
 * untouched pages (calloc), so resident memory follows the octaves in use.
 *
 * Histogram ring. Histogram bins are most of a bucket (a latency histogram
 * fills a few octaves of 64 cells per cohort), and the percentile rules read
 * shorter windows than the longest counter window (config/sop.json: 5 min
 * of p99 against 15 min for the spike rule's reference). With hist_span_ms
 * shorter than span_ms, cd_window_new() builds two rings from the same code:
 * this one with the counters only, and w->hw with the histograms only and
 * the shorter span. Both are clocked together by cd_window_set_clock();
 * observe/hist/quantile go to w->hw. An observation is first admitted by the
 * counter ring (LATE / FUTURE answers are the counters'); one admitted there
 * but older than the histogram ring is dropped from the histograms and
 * reported CD_WIN_OK: no histogram read reaches that far back.
 */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "canaryd/window.h"

#define LINE 64
#define EPOCH_EMPTY INT64_C(-1)
#define EPOCH_CLAIMING INT64_C(-2)
#define TAG_SHIFT 40
#define COUNT_MASK ((UINT64_C(1) << TAG_SHIFT) - 1)
#define TAG_MASK UINT64_C(0xFFFFFF)
#define NGROUPS (CD_HIST_OCTAVES + 2) /* bin 0, octaves, overflow */
#define MAX_BUCKETS INT64_C(10000000)
#define MAX_STRIPES 64

typedef _Atomic uint64_t cell_t;

struct cd_window {
    int nmetrics, nhists, nstripes;
    int64_t res, span_ms, ahead_ms;
    int64_t span_b, ahead_b, n;
    size_t stripe_stride; /* bytes per stripe block, a multiple of LINE */
    size_t mask_off;      /* offset of the octave masks in a bucket */
    size_t gcount_off;    /* offset of the group counts in a bucket */
    size_t bins_off;      /* offset of the bins in a bucket */
    size_t bucket_stride; /* bytes per bucket, a multiple of LINE */
    size_t nhc;           /* (hist, cohort) pairs: nhists * CD_NCOHORTS */
    size_t alloc_size;
    void *raw;           /* what calloc returned */
    unsigned char *ring; /* raw aligned up to LINE */
    /* Written only by the set_clock caller; read relaxed by everyone. */
    _Alignas(LINE) _Atomic int64_t clock;
    _Atomic int64_t late_before_ms;  /* t < this: LATE */
    _Atomic int64_t future_after_ms; /* t > this: FUTURE */
    int64_t preclaimed_hi;           /* set_clock caller only */
    struct cd_window *hw;            /* histogram ring when split (see top), or NULL */
    int nhists_conf;                 /* histograms as configured (nhists is this ring's) */
};

/* ---- layout helpers ---------------------------------------------------- */

static inline unsigned char *bucket_at(const cd_window_t *w, int64_t s)
{
    return w->ring + (size_t)(s % w->n) * w->bucket_stride;
}

static inline _Atomic int64_t *b_epoch(unsigned char *b)
{
    return (_Atomic int64_t *)(void *)b;
}

static inline cell_t *b_counters(const cd_window_t *w, unsigned char *b, int stripe)
{
    return (cell_t *)(void *)(b + LINE + (size_t)stripe * w->stripe_stride);
}

static inline cell_t *b_mask(const cd_window_t *w, unsigned char *b, int hc)
{
    return (cell_t *)(void *)(b + w->mask_off) + hc;
}

static inline cell_t *b_gcounts(const cd_window_t *w, unsigned char *b, int hc)
{
    return (cell_t *)(void *)(b + w->gcount_off) + (size_t)hc * NGROUPS;
}

/* Bin `bin` of (hist, cohort) hc. Bins are interleaved: the cells of one bin
 * for every (hist, cohort) are adjacent, so the octaves a latency histogram
 * uses form one run of pages for both cohorts instead of one run each
 * (a bucket's resident memory is mostly these pages). */
static inline cell_t *b_bin(const cd_window_t *w, unsigned char *b, int hc, int bin)
{
    return (cell_t *)(void *)(b + w->bins_off) + (size_t)bin * w->nhc + (size_t)hc;
}

static inline uint64_t tag_of(int64_t s)
{
    return ((uint64_t)s & TAG_MASK) << TAG_SHIFT;
}

static inline int group_of(int bin)
{
    if (bin == 0) return 0;
    if (bin == CD_HIST_BINS - 1) return NGROUPS - 1;
    return 1 + (bin - 1) / CD_HIST_SUB;
}

/* Bins [*lo, *hi) of group g. */
static inline void group_bins(int g, int *lo, int *hi)
{
    if (g == 0) {
        *lo = 0;
        *hi = 1;
    } else if (g == NGROUPS - 1) {
        *lo = CD_HIST_BINS - 1;
        *hi = CD_HIST_BINS;
    } else {
        *lo = 1 + (g - 1) * CD_HIST_SUB;
        *hi = *lo + CD_HIST_SUB;
    }
}

static inline int64_t second_of(const cd_window_t *w, int64_t t)
{
    /* The default resolution divides by a constant (a multiply). */
    return w->res == 1000 ? t / 1000 : t / w->res;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* ---- construction ------------------------------------------------------ */

static int default_stripes(void)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1) ncpu = 1;
    return ncpu > 16 ? 16 : (int)ncpu;
}

static size_t round_line(size_t x)
{
    return (x + LINE - 1) / LINE * LINE;
}

static cd_window_t *ring_new(const cd_window_conf_t *conf, char *errbuf, size_t errsize)
{
    cd_window_t *w = NULL;
    int64_t res = conf->resolution_ms ? conf->resolution_ms : 1000;
    if (conf->nmetrics < 0 || conf->nmetrics > CD_MAX_TYPES) {
        snprintf(errbuf, errsize, "window: nmetrics %d is outside allowed range 0..%d",
                 conf->nmetrics, CD_MAX_TYPES);
        goto err;
    }
    if (conf->nhists < 0 || conf->nhists > CD_MAX_NUMERIC) {
        snprintf(errbuf, errsize, "window: nhists %d is outside allowed range 0..%d", conf->nhists,
                 CD_MAX_NUMERIC);
        goto err;
    }
    if (res < 1) {
        snprintf(errbuf, errsize,
                 "window: resolution_ms %lld is not allowed; accepted: > 0, or 0 for 1000",
                 (long long)conf->resolution_ms);
        goto err;
    }
    if (conf->span_ms < 0 || conf->ahead_ms < 0) {
        snprintf(errbuf, errsize, "window: span_ms %lld / ahead_ms %lld must not be negative",
                 (long long)conf->span_ms, (long long)conf->ahead_ms);
        goto err;
    }
    if (conf->nstripes < 0 || conf->nstripes > MAX_STRIPES) {
        snprintf(errbuf, errsize,
                 "window: nstripes %d is outside allowed range 0..%d (0 = online CPUs, max 16)",
                 conf->nstripes, MAX_STRIPES);
        goto err;
    }
    int64_t span_b = conf->span_ms / res + (conf->span_ms % res != 0);
    int64_t ahead_b = conf->ahead_ms / res + (conf->ahead_ms % res != 0);
    if (span_b > MAX_BUCKETS || ahead_b > MAX_BUCKETS || span_b + ahead_b + 2 > MAX_BUCKETS) {
        snprintf(errbuf, errsize,
                 "window: span %lld ms + ahead %lld ms at resolution %lld ms need more than %lld "
                 "buckets",
                 (long long)conf->span_ms, (long long)conf->ahead_ms, (long long)res,
                 (long long)MAX_BUCKETS);
        goto err;
    }
    /* aligned: the clock fields sit on their own cache line (_Alignas) */
    w = aligned_alloc(LINE, round_line(sizeof(*w)));
    if (w) memset(w, 0, sizeof(*w));
    if (!w) {
        snprintf(errbuf, errsize, "window: out of memory");
        goto err;
    }
    w->nmetrics = conf->nmetrics;
    w->nhists = conf->nhists;
    w->nstripes = conf->nstripes ? conf->nstripes : default_stripes();
    w->res = res;
    w->span_ms = conf->span_ms;
    w->ahead_ms = conf->ahead_ms;
    w->span_b = span_b;
    w->ahead_b = ahead_b;
    w->n = span_b + ahead_b + 2;
    w->stripe_stride = round_line((size_t)w->nmetrics * CD_NCOHORTS * sizeof(cell_t));
    if (w->stripe_stride == 0)
        w->stripe_stride = LINE; /* keep stripes distinct even with no metrics */
    size_t nhc = w->nhc = (size_t)w->nhists * CD_NCOHORTS;
    w->mask_off = LINE + (size_t)w->nstripes * w->stripe_stride;
    w->gcount_off = w->mask_off + round_line(nhc * sizeof(cell_t));
    w->bins_off = w->gcount_off + round_line(nhc * NGROUPS * sizeof(cell_t));
    w->bucket_stride = round_line(w->bins_off + nhc * CD_HIST_BINS * sizeof(cell_t));
    if ((size_t)w->n > (SIZE_MAX - LINE) / w->bucket_stride) {
        snprintf(errbuf, errsize, "window: %lld buckets of %zu bytes overflow the address space",
                 (long long)w->n, w->bucket_stride);
        goto err;
    }
    w->alloc_size = (size_t)w->n * w->bucket_stride + LINE;
    /* calloc, not posix_memalign + memset: large blocks come zeroed from
     * mmap and pages nobody writes are never made resident. */
    w->raw = calloc(1, w->alloc_size);
    if (!w->raw) {
        snprintf(errbuf, errsize, "window: cannot allocate %zu bytes for %lld buckets: %s",
                 w->alloc_size, (long long)w->n, strerror(errno));
        goto err;
    }
    w->ring = (unsigned char *)(((uintptr_t)w->raw + LINE - 1) / LINE * LINE);
    for (int64_t i = 0; i < w->n; i++)
        atomic_init(b_epoch(w->ring + (size_t)i * w->bucket_stride), EPOCH_EMPTY);
    atomic_init(&w->clock, 0);
    atomic_init(&w->late_before_ms, 0);
    atomic_init(&w->future_after_ms, w->ahead_ms);
    w->preclaimed_hi = -1;
    w->nhists_conf = w->nhists;
    return w;
err:
    if (w) free(w->raw);
    free(w);
    return NULL;
}

cd_window_t *cd_window_new(const cd_window_conf_t *conf, char *errbuf, size_t errsize)
{
    if (conf->hist_span_ms < 0) {
        snprintf(errbuf, errsize, "window: hist_span_ms %lld must not be negative",
                 (long long)conf->hist_span_ms);
        return NULL;
    }
    if (conf->nhists <= 0 || conf->hist_span_ms == 0 || conf->hist_span_ms >= conf->span_ms)
        return ring_new(conf, errbuf, errsize);
    cd_window_conf_t cc = *conf, hc = *conf;
    cc.nhists = 0;
    hc.nmetrics = 0;
    hc.span_ms = conf->hist_span_ms;
    cd_window_t *w = ring_new(&cc, errbuf, errsize);
    if (!w) return NULL;
    /* validated above by ring_new(&cc) except nhists, which ring_new(&hc) checks */
    w->hw = ring_new(&hc, errbuf, errsize);
    if (!w->hw) {
        cd_window_destroy(w);
        return NULL;
    }
    w->nhists_conf = conf->nhists;
    return w;
}

void cd_window_destroy(cd_window_t *w)
{
    if (!w) return;
    cd_window_destroy(w->hw);
    free(w->raw);
    free(w);
}

size_t cd_window_memory(const cd_window_t *w)
{
    return w->alloc_size + sizeof(*w) + (w->hw ? cd_window_memory(w->hw) : 0);
}

/* ---- claiming ---------------------------------------------------------- */

/* Resets bucket b for second s. Caller holds the claim (epoch == CLAIMING).
 * seq_cst stores: see "Memory orders" above. */
static void bucket_reset(const cd_window_t *w, unsigned char *b, int64_t s)
{
    uint64_t tag = tag_of(s);
    int ncells = w->nmetrics * CD_NCOHORTS;
    for (int st = 0; st < w->nstripes; st++) {
        cell_t *c = b_counters(w, b, st);
        for (int i = 0; i < ncells; i++)
            atomic_store_explicit(&c[i], tag, memory_order_seq_cst);
    }
    for (int hc = 0; hc < w->nhists * CD_NCOHORTS; hc++) {
        uint64_t mask = atomic_exchange_explicit(b_mask(w, b, hc), 0, memory_order_seq_cst);
        cell_t *gcounts = b_gcounts(w, b, hc);
        while (mask) {
            int g = __builtin_ctzll(mask);
            mask &= mask - 1;
            int lo, hi;
            group_bins(g, &lo, &hi);
            atomic_store_explicit(&gcounts[g], tag, memory_order_seq_cst);
            for (int i = lo; i < hi; i++)
                atomic_store_explicit(b_bin(w, b, hc, i), tag, memory_order_seq_cst);
        }
    }
}

static void backoff(int *spins)
{
    if (++*spins > 64) sched_yield();
}

/*
 * Returns the bucket holding s, claiming it if it holds an older second, or
 * NULL when it holds a newer one (the event is late).
 */
static unsigned char *bucket_for_write(const cd_window_t *w, int64_t s)
{
    unsigned char *b = bucket_at(w, s);
    _Atomic int64_t *ep = b_epoch(b);
    int spins = 0;
    for (;;) {
        int64_t e = atomic_load_explicit(ep, memory_order_acquire);
        if (e == s) return b;
        if (e == EPOCH_CLAIMING) {
            backoff(&spins);
            continue;
        }
        if (e > s) return NULL;
        if (atomic_compare_exchange_strong_explicit(ep, &e, EPOCH_CLAIMING, memory_order_seq_cst,
                                                    memory_order_relaxed)) {
            bucket_reset(w, b, s);
            atomic_store_explicit(ep, s, memory_order_release);
            return b;
        }
    }
}

/* Claims s's bucket if it holds an older second and nobody is claiming it. */
static void preclaim(const cd_window_t *w, int64_t s)
{
    unsigned char *b = bucket_at(w, s);
    _Atomic int64_t *ep = b_epoch(b);
    int64_t e = atomic_load_explicit(ep, memory_order_acquire);
    if (e >= s || e == EPOCH_CLAIMING) return;
    if (atomic_compare_exchange_strong_explicit(ep, &e, EPOCH_CLAIMING, memory_order_seq_cst,
                                                memory_order_relaxed)) {
        bucket_reset(w, b, s);
        atomic_store_explicit(ep, s, memory_order_release);
    }
}

/* ---- clock ------------------------------------------------------------- */

void cd_window_set_clock(cd_window_t *w, int64_t now_ms)
{
    if (w->hw) cd_window_set_clock(w->hw, now_ms);
    int64_t old = atomic_load_explicit(&w->clock, memory_order_relaxed);
    if (now_ms <= old) return;
    int64_t c = second_of(w, now_ms);
    int64_t late = c - w->span_b;
    /* late * res <= now_ms, so no overflow; below 0 every t >= 0 is in. */
    atomic_store_explicit(&w->late_before_ms, late > 0 ? late * w->res : 0, memory_order_relaxed);
    atomic_store_explicit(&w->future_after_ms, sat_add(now_ms, w->ahead_ms), memory_order_relaxed);
    atomic_store_explicit(&w->clock, now_ms, memory_order_relaxed);

    int64_t hi = second_of(w, sat_add(now_ms, w->ahead_ms));
    int64_t lo = w->preclaimed_hi + 1 > c ? w->preclaimed_hi + 1 : c;
    if (hi - lo > w->n - 2) /* a jump: the last n - 1 seconds are all we can hold */
        lo = hi - (w->n - 2);
    for (int64_t s = lo; s <= hi; s++)
        preclaim(w, s);
    if (hi > w->preclaimed_hi) w->preclaimed_hi = hi;
}

int64_t cd_window_resolution(const cd_window_t *w)
{
    return w->res;
}

int64_t cd_window_oldest(const cd_window_t *w, bool hist)
{
    if (hist && w->hw) w = w->hw;
    return atomic_load_explicit(&w->late_before_ms, memory_order_relaxed);
}

int64_t cd_window_clock(const cd_window_t *w)
{
    return atomic_load_explicit(&w->clock, memory_order_relaxed);
}

/* ---- writers ----------------------------------------------------------- */

static _Atomic int next_thread_id;
static _Thread_local int thread_id = -1;

int cd_window_stripe(const cd_window_t *w)
{
    if (thread_id < 0) /* relaxed: only uniqueness matters, not ordering */
        thread_id = atomic_fetch_add_explicit(&next_thread_id, 1, memory_order_relaxed) & INT32_MAX;
    return thread_id % w->nstripes;
}

static inline cd_window_result_t admit(const cd_window_t *w, int64_t t)
{
    if (t < 0 || t < atomic_load_explicit(&w->late_before_ms, memory_order_relaxed))
        return CD_WIN_LATE;
    if (t > atomic_load_explicit(&w->future_after_ms, memory_order_relaxed)) return CD_WIN_FUTURE;
    return CD_WIN_OK;
}

/*
 * Adds n to cell, which must carry second s. Returns false if the cell (and
 * so the bucket) was recycled for another second: the caller's event is late.
 */
static bool cell_add(cell_t *cell, _Atomic int64_t *ep, int64_t s, uint64_t n)
{
    uint64_t tag = tag_of(s);
    uint64_t v = atomic_load_explicit(cell, memory_order_relaxed);
    for (;;) {
        if ((v & ~COUNT_MASK) == tag) {
            uint64_t c = v & COUNT_MASK;
            c = n > COUNT_MASK - c ? COUNT_MASK : c + n;
            if (atomic_compare_exchange_weak_explicit(cell, &v, tag | c, memory_order_relaxed,
                                                      memory_order_relaxed))
                return true;
            continue;
        }
        /* Another second's tag: a stale zero left by an older second (adopt
         * it) or a reset for a newer one (we are late). The seq_cst re-check
         * of the epoch tells which; see the design comment. */
        v = atomic_load_explicit(cell, memory_order_seq_cst);
        if ((v & ~COUNT_MASK) == tag) continue;
        if (atomic_load_explicit(ep, memory_order_seq_cst) != s) return false;
        /* Only zero counts survive a reset; anything else means a writer
         * added to a bucket it did not hold, which would corrupt verdicts. */
        CD_ASSERT((v & COUNT_MASK) == 0);
        uint64_t c = n > COUNT_MASK ? COUNT_MASK : n;
        if (atomic_compare_exchange_strong_explicit(cell, &v, tag | c, memory_order_seq_cst,
                                                    memory_order_seq_cst))
            return true;
    }
}

cd_window_result_t cd_window_add(cd_window_t *w, int stripe, int metric, cd_cohort_t c,
                                 int64_t ts_ms, uint64_t n)
{
    CD_ASSERT(metric >= 0 && metric < w->nmetrics);
    CD_ASSERT(c == CD_COHORT_STABLE || c == CD_COHORT_CANARY);
    CD_ASSERT(stripe >= 0);
    cd_window_result_t r = admit(w, ts_ms);
    if (r != CD_WIN_OK) return r;
    int64_t s = second_of(w, ts_ms);
    unsigned char *b = bucket_for_write(w, s);
    if (!b) return CD_WIN_LATE;
    cell_t *cell = &b_counters(w, b, stripe % w->nstripes)[metric * CD_NCOHORTS + (int)c];
    return cell_add(cell, b_epoch(b), s, n) ? CD_WIN_OK : CD_WIN_LATE;
}

cd_window_result_t cd_window_observe(cd_window_t *w, int hist, cd_cohort_t c, int64_t ts_ms,
                                     double v)
{
    if (w->hw) {
        CD_ASSERT(hist >= 0 && hist < w->nhists_conf);
        cd_window_result_t r = admit(w, ts_ms); /* the counters' answer */
        if (r != CD_WIN_OK) return r;
        /* LATE here: older than any histogram read (see the top) */
        return cd_window_observe(w->hw, hist, c, ts_ms, v) == CD_WIN_FUTURE ? CD_WIN_FUTURE
                                                                             : CD_WIN_OK;
    }
    CD_ASSERT(hist >= 0 && hist < w->nhists);
    CD_ASSERT(c == CD_COHORT_STABLE || c == CD_COHORT_CANARY);
    cd_window_result_t r = admit(w, ts_ms);
    if (r != CD_WIN_OK) return r;
    int64_t s = second_of(w, ts_ms);
    unsigned char *b = bucket_for_write(w, s);
    if (!b) return CD_WIN_LATE;
    int hc = hist * CD_NCOHORTS + (int)c;
    int bin = cd_hist_bin(v);
    uint64_t bit = UINT64_C(1) << group_of(bin);
    cell_t *mask = b_mask(w, b, hc);
    /* Acquire: if another writer set the bit, its setting is ordered after
     * this second's claim (release sequence of the claimer's exchange), so
     * the next claimer will see it. Set it ourselves before the bin. */
    if (!(atomic_load_explicit(mask, memory_order_acquire) & bit))
        atomic_fetch_or_explicit(mask, bit, memory_order_seq_cst);
    /* Bin first, then its group's count: if the bucket is recycled in
     * between, the second both belonged to is gone and the event is late. */
    if (!cell_add(b_bin(w, b, hc, bin), b_epoch(b), s, 1)) return CD_WIN_LATE;
    return cell_add(&b_gcounts(w, b, hc)[group_of(bin)], b_epoch(b), s, 1) ? CD_WIN_OK
                                                                           : CD_WIN_LATE;
}

/* ---- readers ----------------------------------------------------------- */

/* Second indexes [*lo, *hi] covered by [end - len, end); false if none. */
static bool read_range(const cd_window_t *w, int64_t end_ms, int64_t len_ms, int64_t *lo,
                       int64_t *hi)
{
    if (len_ms <= 0 || end_ms <= 0) return false;
    int64_t start = end_ms - len_ms; /* no overflow: both positive */
    /* ceilings: buckets that start in [start, end) */
    *lo = start > 0 ? second_of(w, sat_add(start, w->res - 1)) : 0;
    *hi = second_of(w, sat_add(end_ms, w->res - 1)) - 1;
    /* Seconds older than clock - span are gone even where a slot has not
     * been reused yet: clip, so the answer does not depend on reuse order. */
    int64_t oldest = second_of(w, atomic_load_explicit(&w->late_before_ms, memory_order_relaxed));
    if (*lo < oldest) *lo = oldest;
    if (*hi - *lo >= w->n) *lo = *hi - w->n + 1;
    return *hi >= *lo;
}

uint64_t cd_window_sum(const cd_window_t *w, int metric, cd_cohort_t c, int64_t end_ms,
                       int64_t len_ms)
{
    CD_ASSERT(metric >= 0 && metric < w->nmetrics);
    CD_ASSERT(c == CD_COHORT_STABLE || c == CD_COHORT_CANARY);
    int64_t lo, hi;
    if (!read_range(w, end_ms, len_ms, &lo, &hi)) return 0;
    uint64_t total = 0;
    int idx = metric * CD_NCOHORTS + (int)c;
    for (int64_t s = lo; s <= hi; s++) {
        unsigned char *b = bucket_at(w, s);
        _Atomic int64_t *ep = b_epoch(b);
        if (atomic_load_explicit(ep, memory_order_acquire) != s) continue;
        uint64_t tag = tag_of(s), part = 0;
        for (int st = 0; st < w->nstripes; st++) {
            uint64_t v = atomic_load_explicit(&b_counters(w, b, st)[idx], memory_order_relaxed);
            if ((v & ~COUNT_MASK) == tag) part += v & COUNT_MASK;
        }
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(ep, memory_order_relaxed) == s) total += part;
    }
    return total;
}

void cd_window_hist(const cd_window_t *w, int hist, cd_cohort_t c, int64_t end_ms, int64_t len_ms,
                    cd_hist_t *out)
{
    if (w->hw) w = w->hw;
    CD_ASSERT(hist >= 0 && hist < w->nhists);
    CD_ASSERT(c == CD_COHORT_STABLE || c == CD_COHORT_CANARY);
    cd_hist_reset(out);
    int64_t lo, hi;
    if (!read_range(w, end_ms, len_ms, &lo, &hi)) return;
    int hc = hist * CD_NCOHORTS + (int)c;
    uint64_t part[CD_HIST_BINS]; /* one bucket's bins, committed after the re-check */
    for (int64_t s = lo; s <= hi; s++) {
        unsigned char *b = bucket_at(w, s);
        _Atomic int64_t *ep = b_epoch(b);
        if (atomic_load_explicit(ep, memory_order_acquire) != s) continue;
        uint64_t tag = tag_of(s);
        uint64_t mask = atomic_load_explicit(b_mask(w, b, hc), memory_order_relaxed);
        for (uint64_t m = mask; m; m &= m - 1) {
            int lo_bin, hi_bin;
            group_bins(__builtin_ctzll(m), &lo_bin, &hi_bin);
            for (int i = lo_bin; i < hi_bin; i++) {
                uint64_t v = atomic_load_explicit(b_bin(w, b, hc, i), memory_order_relaxed);
                part[i] = (v & ~COUNT_MASK) == tag ? v & COUNT_MASK : 0;
            }
        }
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(ep, memory_order_relaxed) != s) continue;
        for (uint64_t m = mask; m; m &= m - 1) {
            int lo_bin, hi_bin;
            group_bins(__builtin_ctzll(m), &lo_bin, &hi_bin);
            for (int i = lo_bin; i < hi_bin; i++) {
                out->bins[i] += part[i];
                out->count += part[i];
            }
        }
    }
}

double cd_window_quantile(const cd_window_t *w, int hist, cd_cohort_t c, int64_t end_ms,
                          int64_t len_ms, double q, uint64_t *count)
{
    if (w->hw) w = w->hw;
    CD_ASSERT(hist >= 0 && hist < w->nhists);
    CD_ASSERT(c == CD_COHORT_STABLE || c == CD_COHORT_CANARY);
    if (count) *count = 0;
    int64_t lo, hi;
    if (!read_range(w, end_ms, len_ms, &lo, &hi)) return 0.0;
    int hc = hist * CD_NCOHORTS + (int)c;

    /* Pass 1: per-group totals over the range (validated per bucket exactly
     * like cd_window_hist, so the totals are what a merge would count). */
    uint64_t gsum[NGROUPS] = {0}, total = 0;
    for (int64_t s = lo; s <= hi; s++) {
        unsigned char *b = bucket_at(w, s);
        _Atomic int64_t *ep = b_epoch(b);
        if (atomic_load_explicit(ep, memory_order_acquire) != s) continue;
        uint64_t tag = tag_of(s), part[NGROUPS];
        uint64_t mask = atomic_load_explicit(b_mask(w, b, hc), memory_order_relaxed);
        const cell_t *gc = b_gcounts(w, b, hc);
        for (uint64_t m = mask; m; m &= m - 1) {
            int g = __builtin_ctzll(m);
            uint64_t v = atomic_load_explicit(&gc[g], memory_order_relaxed);
            part[g] = (v & ~COUNT_MASK) == tag ? v & COUNT_MASK : 0;
        }
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(ep, memory_order_relaxed) != s) continue;
        for (uint64_t m = mask; m; m &= m - 1) {
            int g = __builtin_ctzll(m);
            gsum[g] += part[g];
            total += part[g];
        }
    }
    if (count) *count = total;
    if (total == 0) return 0.0;

    /* The rank, exactly as cd_hist_quantile computes it. */
    if (!(q >= 0.0)) /* negative or NaN */
        q = 0.0;
    if (q > 1.0) q = 1.0;
    uint64_t rank = (uint64_t)ceil(q * (double)total);
    if (rank < 1) rank = 1;
    if (rank > total) rank = total;

    /* Pass 2: the group holding the rank, then its bins merged over the
     * range. Quiescent, that group holds the answer. With writers running,
     * group counts and bins may differ by the adds in flight: a shortfall
     * moves on to merge the following groups, and the last non-empty bin
     * seen is the answer of last resort (as in cd_hist_quantile). */
    int g = 0, last = -1;
    uint64_t cum = 0;
    while (g < NGROUPS && cum + gsum[g] < rank)
        cum += gsum[g++];
    for (; g < NGROUPS; g++) {
        int blo, bhi;
        group_bins(g, &blo, &bhi);
        uint64_t merged[CD_HIST_SUB] = {0}, part[CD_HIST_SUB];
        for (int64_t s = lo; s <= hi; s++) {
            /* validated like cd_window_hist: the bucket holds s with g in its
             * mask, and still holds s after the bins were read */
            unsigned char *b = bucket_at(w, s);
            _Atomic int64_t *ep = b_epoch(b);
            if (atomic_load_explicit(ep, memory_order_acquire) != s) continue;
            uint64_t mask = atomic_load_explicit(b_mask(w, b, hc), memory_order_relaxed);
            if (!(mask & (UINT64_C(1) << g))) continue;
            uint64_t tag = tag_of(s);
            for (int i = blo; i < bhi; i++) {
                uint64_t v = atomic_load_explicit(b_bin(w, b, hc, i), memory_order_relaxed);
                part[i - blo] = (v & ~COUNT_MASK) == tag ? v & COUNT_MASK : 0;
            }
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(ep, memory_order_relaxed) != s) continue;
            for (int i = 0; i < bhi - blo; i++)
                merged[i] += part[i];
        }
        for (int i = 0; i < bhi - blo; i++) {
            if (merged[i] == 0) continue;
            cum += merged[i];
            last = blo + i;
            if (cum >= rank) return cd_hist_bin_value(last);
        }
    }
    return last >= 0 ? cd_hist_bin_value(last) : 0.0;
}
