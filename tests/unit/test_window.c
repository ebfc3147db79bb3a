/*
 * test_window.c - single-threaded behaviour of the sliding windows: exact
 * sums per second, range edges (end exclusive), LATE / FUTURE exactly at the
 * boundaries, bucket reuse after the ring wraps, independence of cohorts and
 * metrics, histogram merges over ranges, a clock that never goes back, and
 * configuration errors.
 *
 * The standard window here: 3 metrics, 1 histogram, 1 s buckets, span 10 s,
 * ahead 5 s, 2 stripes: ring of 10 + 5 + 2 = 17 buckets.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "canaryd/window.h"

#define S CD_COHORT_STABLE
#define C CD_COHORT_CANARY

static cd_window_t *std_window(void)
{
    cd_window_conf_t conf = {.nmetrics = 3,
                             .nhists = 1,
                             .resolution_ms = 1000,
                             .span_ms = 10000,
                             .ahead_ms = 5000,
                             .nstripes = 2};
    char err[256] = "";
    cd_window_t *w = cd_window_new(&conf, err, sizeof(err));
    cr_assert_not_null(w, "cd_window_new: %s", err);
    return w;
}

Test(window, add_and_sum_exact_per_second)
{
    cd_window_t *w = std_window();
    cd_window_set_clock(w, 100000);
    cr_assert_eq(cd_window_add(w, 0, 1, C, 100000, 3), CD_WIN_OK);
    cr_assert_eq(cd_window_add(w, 1, 1, C, 100999, 4), CD_WIN_OK);
    cr_assert_eq(cd_window_add(w, 0, 1, C, 101000, 5), CD_WIN_OK);
    cr_assert_eq(cd_window_add(w, 1, 1, C, 99000, 11), CD_WIN_OK);
    cr_assert_eq(cd_window_sum(w, 1, C, 100000, 1000), 11);
    cr_assert_eq(cd_window_sum(w, 1, C, 101000, 1000), 7);
    cr_assert_eq(cd_window_sum(w, 1, C, 102000, 1000), 5);
    cr_assert_eq(cd_window_sum(w, 1, C, 102000, 2000), 12);
    cr_assert_eq(cd_window_sum(w, 1, C, 102000, 3000), 23);
    cr_assert_eq(cd_window_sum(w, 1, C, 102000, 10000), 23);
    /* end is exclusive: a window ending where a second starts misses it */
    cr_assert_eq(cd_window_sum(w, 1, C, 99000, 5000), 0);
    cr_assert_eq(cd_window_sum(w, 1, C, 101000, 2000), 18);
    /* empty and negative ranges */
    cr_assert_eq(cd_window_sum(w, 1, C, 102000, 0), 0);
    cr_assert_eq(cd_window_sum(w, 1, C, 102000, -1000), 0);
    cr_assert_eq(cd_window_sum(w, 1, C, 0, 1000), 0);
    cd_window_destroy(w);
}

Test(window, unaligned_range_counts_buckets_starting_inside)
{
    /* Documented: buckets [ceil((end-len)/res), ceil(end/res) - 1], i.e. those
     * that start in [end - len, end): mid-second reads include the bucket
     * still filling (the live agent's 10 ms evaluations). */
    cd_window_t *w = std_window();
    cd_window_set_clock(w, 100000);
    cd_window_add(w, 0, 0, S, 98000, 1);
    cd_window_add(w, 0, 0, S, 99000, 2);
    cd_window_add(w, 0, 0, S, 100000, 4);
    cr_assert_eq(cd_window_sum(w, 0, S, 100500, 1000), 4); /* [100, 100] */
    cr_assert_eq(cd_window_sum(w, 0, S, 100500, 1500), 6); /* [99, 100] */
    cr_assert_eq(cd_window_sum(w, 0, S, 100500, 1600), 6); /* [99, 100] */
    cr_assert_eq(cd_window_sum(w, 0, S, 100500, 2500), 7); /* [98, 100] */
    cr_assert_eq(cd_window_sum(w, 0, S, 100001, 1), 4);    /* [100, 100] */
    cr_assert_eq(cd_window_sum(w, 0, S, 100999, 1000), 4); /* [100, 100] */
    cr_assert_eq(cd_window_sum(w, 0, S, 100999, 999), 4);  /* [100, 100] */
    cr_assert_eq(cd_window_sum(w, 0, S, 101000, 500), 0);  /* [101, 100]: none */
    cr_assert_eq(cd_window_sum(w, 0, S, 100400, 300), 0);  /* [101, 100]: none */
    /* aligned: exactly [end - len, end) */
    cr_assert_eq(cd_window_sum(w, 0, S, 100000, 2000), 3); /* [98, 99] */
    cr_assert_eq(cd_window_sum(w, 0, S, 101000, 1000), 4); /* [100, 100] */
    cd_window_destroy(w);
}

Test(window, late_and_future_exactly_at_the_boundaries)
{
    cd_window_t *w = std_window();
    cd_window_set_clock(w, 100500); /* clock second 100: late before second 90 */
    cr_assert_eq(cd_window_add(w, 0, 0, S, 90000, 1), CD_WIN_OK);
    cr_assert_eq(cd_window_add(w, 0, 0, S, 89999, 1), CD_WIN_LATE);
    cr_assert_eq(cd_window_add(w, 0, 0, S, 105500, 1), CD_WIN_OK); /* clock + ahead */
    cr_assert_eq(cd_window_add(w, 0, 0, S, 105501, 1), CD_WIN_FUTURE);
    cr_assert_eq(cd_window_add(w, 0, 0, S, -1, 1), CD_WIN_LATE);
    cr_assert_eq(cd_window_add(w, 0, 0, S, INT64_MAX, 1), CD_WIN_FUTURE);
    cr_assert_eq(cd_window_observe(w, 0, S, 89999, 5.0), CD_WIN_LATE);
    cr_assert_eq(cd_window_observe(w, 0, S, 105501, 5.0), CD_WIN_FUTURE);
    cr_assert_eq(cd_window_observe(w, 0, S, 90000, 5.0), CD_WIN_OK);
    /* rejected events left no trace; accepted ones are exact */
    cr_assert_eq(cd_window_sum(w, 0, S, 91000, 1000), 1);
    cr_assert_eq(cd_window_sum(w, 0, S, 106000, 1000), 1);
    cr_assert_eq(cd_window_sum(w, 0, S, 106000, 17000), 2);
    cd_hist_t h;
    cd_window_hist(w, 0, S, 106000, 17000, &h);
    cr_assert_eq(h.count, 1);
    cd_window_destroy(w);
}

Test(window, before_the_first_clock)
{
    cd_window_t *w = std_window();
    cr_assert_eq(cd_window_clock(w), 0);
    cr_assert_eq(cd_window_add(w, 0, 2, C, 0, 1), CD_WIN_OK);
    cr_assert_eq(cd_window_add(w, 0, 2, C, 5000, 1), CD_WIN_OK);
    cr_assert_eq(cd_window_add(w, 0, 2, C, 5001, 1), CD_WIN_FUTURE);
    cr_assert_eq(cd_window_add(w, 0, 2, C, -1, 1), CD_WIN_LATE);
    cr_assert_eq(cd_window_sum(w, 2, C, 1000, 1000), 1);
    cr_assert_eq(cd_window_sum(w, 2, C, 6000, 6000), 2);
    cd_window_destroy(w);
}

Test(window, ring_wrap_reuses_buckets)
{
    cd_window_t *w = std_window();
    cd_window_set_clock(w, 100000);
    for (int s = 90; s <= 105; s++)
        cr_assert_eq(cd_window_add(w, s & 1, 0, C, s * 1000, (uint64_t)s), CD_WIN_OK);
    cr_assert_eq(cd_window_sum(w, 0, C, 106000, 16000), (90 + 105) * 16 / 2);

    /* 34 s later = two laps of the 17-bucket ring: second 134 uses the slot
     * of 100 and 117, second 124 the slot of 90 and 107. */
    cd_window_set_clock(w, 130000);
    cr_assert_eq(cd_window_sum(w, 0, C, 106000, 16000), 0); /* old seconds gone */
    cr_assert_eq(cd_window_add(w, 0, 0, C, 100000, 1), CD_WIN_LATE);
    cr_assert_eq(cd_window_add(w, 0, 0, C, 134000, 7), CD_WIN_OK);
    cr_assert_eq(cd_window_add(w, 1, 0, C, 124500, 9), CD_WIN_OK);
    cr_assert_eq(cd_window_sum(w, 0, C, 135000, 1000), 7);
    cr_assert_eq(cd_window_sum(w, 0, C, 125000, 1000), 9);
    cr_assert_eq(cd_window_sum(w, 0, C, 101000, 1000), 0);
    cr_assert_eq(cd_window_sum(w, 0, C, 135000, 15000), 16);
    cr_assert_eq(cd_window_sum(w, 0, C, 136000, 40000), 16);

    /* every slot, one lap later, holds exactly its new second */
    cd_window_set_clock(w, 200000);
    for (int s = 190; s <= 205; s++)
        cr_assert_eq(cd_window_add(w, 0, 0, C, s * 1000 + (s < 205 ? 999 : 0), 1000 + (uint64_t)s),
                     CD_WIN_OK, "s=%d", s);
    for (int s = 190; s <= 205; s++)
        cr_assert_eq(cd_window_sum(w, 0, C, (s + 1) * 1000, 1000), 1000 + (uint64_t)s, "s=%d", s);
    cr_assert_eq(cd_window_sum(w, 0, C, 135000, 1000), 0);
    cd_window_destroy(w);
}

Test(window, cohorts_and_metrics_are_independent)
{
    cd_window_t *w = std_window();
    cd_window_set_clock(w, 50000);
    for (int m = 0; m < 3; m++)
        for (int c = 0; c < 2; c++)
            cd_window_add(w, m, m, (cd_cohort_t)c, 49000, (uint64_t)(10 * m + c + 1));
    for (int m = 0; m < 3; m++)
        for (int c = 0; c < 2; c++)
            cr_assert_eq(cd_window_sum(w, m, (cd_cohort_t)c, 50000, 1000),
                         (uint64_t)(10 * m + c + 1), "m=%d c=%d", m, c);
    cd_hist_t h;
    cd_window_hist(w, 0, S, 50000, 1000, &h);
    cr_assert_eq(h.count, 0);
    cd_window_observe(w, 0, C, 49000, 12.0);
    cd_window_hist(w, 0, S, 50000, 1000, &h);
    cr_assert_eq(h.count, 0);
    cd_window_hist(w, 0, C, 50000, 1000, &h);
    cr_assert_eq(h.count, 1);
    cd_window_destroy(w);
}

Test(window, histogram_merge_over_ranges)
{
    cd_window_t *w = std_window();
    cd_window_set_clock(w, 100000);
    /* second 96: 10 x 1 ms; 97: 10 x 100 ms; 98: 5 x 0 (bin 0), 5 x 1e9 (overflow) */
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(cd_window_observe(w, 0, C, 96000 + i, 1.0), CD_WIN_OK);
        cr_assert_eq(cd_window_observe(w, 0, C, 97000 + i, 100.0), CD_WIN_OK);
        cr_assert_eq(cd_window_observe(w, 0, C, 98000 + i, i < 5 ? 0.0 : 1e9), CD_WIN_OK);
    }
    cd_hist_t h;
    cd_window_hist(w, 0, C, 97000, 1000, &h);
    cr_assert_eq(h.count, 10);
    cr_assert_eq(h.bins[cd_hist_bin(1.0)], 10);
    cd_window_hist(w, 0, C, 98000, 2000, &h);
    cr_assert_eq(h.count, 20);
    cr_assert_eq(h.bins[cd_hist_bin(1.0)], 10);
    cr_assert_eq(h.bins[cd_hist_bin(100.0)], 10);
    cr_assert_float_eq(cd_hist_quantile(&h, 0.5), cd_hist_bin_value(cd_hist_bin(1.0)), 1e-12);
    cr_assert_float_eq(cd_hist_quantile(&h, 0.51), cd_hist_bin_value(cd_hist_bin(100.0)), 1e-12);
    cd_window_hist(w, 0, C, 99000, 3000, &h);
    cr_assert_eq(h.count, 30);
    cr_assert_eq(h.bins[0], 5);
    cr_assert_eq(h.bins[CD_HIST_BINS - 1], 5);
    uint64_t total = 0;
    for (int i = 0; i < CD_HIST_BINS; i++)
        total += h.bins[i];
    cr_assert_eq(total, 30);
    cd_window_hist(w, 0, C, 99000, 1000, &h);
    cr_assert_eq(h.count, 10);
    cr_assert_eq(h.bins[cd_hist_bin(1.0)], 0);
    /* after the ring wraps, the old bins are gone and the new ones exact */
    cd_window_set_clock(w, 113000); /* seconds 96..98 -> slots reused by 113..115 */
    cr_assert_eq(cd_window_observe(w, 0, C, 113000, 100.0), CD_WIN_OK);
    cr_assert_eq(cd_window_observe(w, 0, C, 114000, 7.0), CD_WIN_OK);
    cd_window_hist(w, 0, C, 116000, 17000, &h);
    cr_assert_eq(h.count, 2);
    cr_assert_eq(h.bins[cd_hist_bin(100.0)], 1);
    cr_assert_eq(h.bins[cd_hist_bin(7.0)], 1);
    cd_window_destroy(w);
}

Test(window, clock_never_moves_backwards)
{
    cd_window_t *w = std_window();
    cd_window_set_clock(w, 100000);
    cd_window_set_clock(w, 50000);
    cr_assert_eq(cd_window_clock(w), 100000);
    cr_assert_eq(cd_window_add(w, 0, 0, S, 89999, 1), CD_WIN_LATE);
    cr_assert_eq(cd_window_add(w, 0, 0, S, 105000, 1), CD_WIN_OK);
    cd_window_set_clock(w, 100000);
    cd_window_set_clock(w, 100001);
    cr_assert_eq(cd_window_clock(w), 100001);
    cd_window_destroy(w);
}

Test(window, large_counts_and_stripes_sum)
{
    cd_window_t *w = std_window();
    cd_window_set_clock(w, 10000);
    cr_assert_eq(cd_window_add(w, 0, 0, S, 10000, UINT64_C(1) << 39), CD_WIN_OK);
    cr_assert_eq(cd_window_add(w, 1, 0, S, 10000, UINT64_C(1) << 39), CD_WIN_OK);
    cr_assert_eq(cd_window_add(w, 5, 0, S, 10000, 1), CD_WIN_OK); /* stripe 5 = 5 % 2 */
    cr_assert_eq(cd_window_sum(w, 0, S, 11000, 1000), (UINT64_C(1) << 40) + 1);
    cr_assert_eq(cd_window_add(w, 0, 0, S, 10000, 0), CD_WIN_OK);
    cr_assert_eq(cd_window_sum(w, 0, S, 11000, 1000), (UINT64_C(1) << 40) + 1);
    cd_window_destroy(w);
}

Test(window, stripe_is_stable_per_thread)
{
    cd_window_t *w = std_window();
    int a = cd_window_stripe(w);
    cr_assert(a >= 0 && a < 2);
    cr_assert_eq(cd_window_stripe(w), a);
    cd_window_destroy(w);
}

Test(window, bad_conf_is_rejected_with_reason)
{
    char err[256];
    cd_window_conf_t conf = {.nmetrics = 3, .nhists = 1, .span_ms = 1000, .ahead_ms = 0};
    conf.nmetrics = 33;
    cr_assert_null(cd_window_new(&conf, err, sizeof(err)));
    cr_assert_str_eq(err, "window: nmetrics 33 is outside allowed range 0..32");
    conf.nmetrics = 3;
    conf.resolution_ms = -5;
    cr_assert_null(cd_window_new(&conf, err, sizeof(err)));
    cr_assert_str_eq(err, "window: resolution_ms -5 is not allowed; accepted: > 0, or 0 for 1000");
    conf.resolution_ms = 1;
    conf.span_ms = INT64_C(1) << 50;
    cr_assert_null(cd_window_new(&conf, err, sizeof(err)));
    cr_assert(strstr(err, "need more than 10000000 buckets") != NULL, "%s", err);
}

Test(window, defaults_and_memory)
{
    char err[256] = "";
    cd_window_conf_t conf = {.nmetrics = 7, .nhists = 1, .span_ms = 300000, .ahead_ms = 5000};
    cd_window_t *w = cd_window_new(&conf, err, sizeof(err));
    cr_assert_not_null(w, "%s", err);
    /* 300 + 5 + 2 buckets, each at least two cohorts of bins */
    size_t mem = cd_window_memory(w);
    cr_assert(mem >= 307 * 2 * CD_HIST_BINS * sizeof(uint64_t), "%zu", mem);
    cd_window_set_clock(w, 1700000000000);
    cr_assert_eq(cd_window_add(w, cd_window_stripe(w), 6, C, 1700000000123, 2), CD_WIN_OK);
    cr_assert_eq(cd_window_sum(w, 6, C, 1700000001000, 1000), 2);
    cr_assert_eq(cd_window_memory(w), mem); /* nothing allocated after new */
    cd_window_destroy(w);
}

Test(window, other_resolution_and_rounded_up_span)
{
    /* 250 ms buckets; span 1100 ms rounds up to 5 buckets, ahead 500 ms = 2 */
    cd_window_conf_t conf = {.nmetrics = 1,
                             .nhists = 1,
                             .resolution_ms = 250,
                             .span_ms = 1100,
                             .ahead_ms = 500,
                             .nstripes = 1};
    char err[256] = "";
    cd_window_t *w = cd_window_new(&conf, err, sizeof(err));
    cr_assert_not_null(w, "%s", err);
    cd_window_set_clock(w, 10100); /* bucket 40; oldest admitted bucket 35 = 8750 ms */
    cr_assert_eq(cd_window_add(w, 0, 0, S, 8750, 1), CD_WIN_OK);
    cr_assert_eq(cd_window_add(w, 0, 0, S, 8749, 1), CD_WIN_LATE);
    cr_assert_eq(cd_window_add(w, 0, 0, S, 10600, 2), CD_WIN_OK);
    cr_assert_eq(cd_window_add(w, 0, 0, S, 10601, 1), CD_WIN_FUTURE);
    cr_assert_eq(cd_window_add(w, 0, 0, S, 9999, 4), CD_WIN_OK);
    cr_assert_eq(cd_window_observe(w, 0, S, 9999, 3.0), CD_WIN_OK);
    cr_assert_eq(cd_window_sum(w, 0, S, 9000, 250), 1);
    cr_assert_eq(cd_window_sum(w, 0, S, 10000, 250), 4);
    cr_assert_eq(cd_window_sum(w, 0, S, 10750, 250), 2);
    cr_assert_eq(cd_window_sum(w, 0, S, 10750, 2000), 7);
    cd_hist_t h;
    cd_window_hist(w, 0, S, 10000, 250, &h);
    cr_assert_eq(h.count, 1);
    cr_assert_eq(h.bins[cd_hist_bin(3.0)], 1);
    cd_window_destroy(w);
}

/* ---- cd_window_quantile: the same answer as merge + cd_hist_quantile ---- */

static uint64_t qrng = 0x2545F4914F6CDD1Du;
static uint64_t qrand(void)
{
    qrng ^= qrng << 13;
    qrng ^= qrng >> 7;
    qrng ^= qrng << 17;
    return qrng;
}

/* A value from one of several shapes: bin 0 (zero, tiny, negative, NaN),
 * overflow (huge, +inf), one fixed value, log-uniform over the whole range,
 * and latency-like values in a few octaves. */
static double qvalue(int shape)
{
    switch (shape) {
    case 0: {
        static const double low[] = {0.0, 0.0005, -3.0, 0.001};
        return qrand() % 8 == 0 ? NAN : low[qrand() % 4];
    }
    case 1:
        return qrand() % 2 ? 1e8 : INFINITY;
    case 2:
        return 42.0;
    case 3:
        return pow(10.0, -4.0 + (double)(qrand() % 13000) / 1000.0); /* 1e-4 .. 1e9 */
    default:
        return 5.0 + (double)(qrand() % 40000) / 100.0 + (qrand() % 100 == 0 ? 2000.0 : 0.0);
    }
}

/* Compares cd_window_quantile with cd_window_hist + cd_hist_quantile for
 * several q over (end, len); returns the merged count. */
static uint64_t assert_quantiles_match(const cd_window_t *w, int hist, cd_cohort_t c, int64_t end,
                                       int64_t len)
{
    static const double qs[] = {0.0,  1e-9,  0.001, 0.25, 0.5, 0.75, 0.9,
                                0.99, 0.999, 1.0,   -1.0, 2.0, NAN};
    cd_hist_t h;
    cd_window_hist(w, hist, c, end, len, &h);
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        uint64_t n = 12345;
        double got = cd_window_quantile(w, hist, c, end, len, qs[i], &n);
        double want = cd_hist_quantile(&h, qs[i]);
        cr_assert_eq(n, h.count, "count: end %lld len %lld q %g", (long long)end, (long long)len,
                     qs[i]);
        cr_assert(memcmp(&got, &want, sizeof got) == 0,
                  "end %lld len %lld q %g: got %.17g want %.17g (count %llu)", (long long)end,
                  (long long)len, qs[i], got, want, (unsigned long long)h.count);
    }
    /* count may be NULL */
    double v = cd_window_quantile(w, hist, c, end, len, 0.5, NULL);
    double want = cd_hist_quantile(&h, 0.5);
    cr_assert(memcmp(&v, &want, sizeof v) == 0);
    return h.count;
}

Test(window, quantile_equals_merge_on_varied_data)
{
    cd_window_conf_t conf = {.nmetrics = 1,
                             .nhists = 2,
                             .resolution_ms = 1000,
                             .span_ms = 30000,
                             .ahead_ms = 5000,
                             .nstripes = 2};
    char err[256] = "";
    cd_window_t *w = cd_window_new(&conf, err, sizeof(err)); /* ring of 37 buckets */
    cr_assert_not_null(w, "%s", err);

    /* empty window, before and after a clock */
    uint64_t n = 99;
    cr_assert_eq(cd_window_quantile(w, 0, C, 10000, 5000, 0.5, &n), 0.0);
    cr_assert_eq(n, 0);
    cd_window_set_clock(w, 1000000);
    cr_assert_eq(assert_quantiles_match(w, 0, C, 1000000, 30000), 0);

    /* a single value */
    cr_assert_eq(cd_window_observe(w, 0, C, 999500, 7.25), CD_WIN_OK);
    cr_assert_eq(assert_quantiles_match(w, 0, C, 1000000, 30000), 1);
    cr_assert_eq(cd_window_quantile(w, 0, C, 1000000, 30000, 0.99, NULL),
                 cd_hist_bin_value(cd_hist_bin(7.25)));

    /* 400 seconds of mixed data: the ring (37 buckets) is recycled more than
     * ten times, and shapes change every 25 s so that old values in recycled
     * buckets would show if they leaked. */
    uint64_t compared = 0, nonempty = 0, low = 0, high = 0;
    for (int64_t sec = 1000; sec < 1400; sec++) {
        int64_t clock = sec * 1000;
        cd_window_set_clock(w, clock);
        int shape = (int)(sec / 25 % 6);
        int per_sec = (int)(qrand() % 40);
        for (int k = 0; k < per_sec; k++) {
            /* mostly the current second, some late ones, a few out of range */
            int64_t t = clock + (int64_t)(qrand() % 1000) - (qrand() % 4 == 0 ? 20000 : 0) -
                        (qrand() % 50 == 0 ? 40000 : 0) + (qrand() % 50 == 0 ? 9000 : 0);
            int s = qrand() % 3 == 0 ? shape : (int)(qrand() % 6);
            cd_window_result_t r =
                cd_window_observe(w, (int)(qrand() % 2), qrand() % 4 ? S : C, t, qvalue(s));
            cr_assert(r == CD_WIN_OK || r == CD_WIN_LATE || r == CD_WIN_FUTURE);
        }
        if (sec % 3) continue;
        static const int64_t lens[] = {1000, 5000, 30000, 45000, 2500, 999};
        static const int64_t ends[] = {0, 1000, -7000, 1500, 6000, -31000};
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            for (int hist = 0; hist < 2; hist++) {
                for (int c = 0; c < 2; c++) {
                    int64_t end = clock + ends[li];
                    uint64_t cnt = assert_quantiles_match(w, hist, (cd_cohort_t)c, end, lens[li]);
                    compared++;
                    nonempty += cnt > 0;
                    cd_hist_t h;
                    cd_window_hist(w, hist, (cd_cohort_t)c, end, lens[li], &h);
                    low += h.bins[0];
                    high += h.bins[CD_HIST_BINS - 1];
                }
            }
        }
    }
    /* the comparisons were about real data, bin 0 and overflow included */
    cr_assert_eq(compared, 133 * 24); /* 133 evaluation seconds x 6 ranges x 2 x 2 */
    cr_assert_gt(nonempty, compared / 2);
    cr_assert_gt(low, 1000);
    cr_assert_gt(high, 1000);
    cd_window_destroy(w);
}

Test(window, quantile_matches_recorded_histogram)
{
    /* 1..100 ms over ten seconds against a cd_hist_t recorded directly. */
    cd_window_t *w = std_window();
    cd_window_set_clock(w, 100000);
    cd_hist_t h;
    cd_hist_reset(&h);
    for (int i = 1; i <= 100; i++) {
        cr_assert_eq(cd_window_observe(w, 0, S, 90000 + (i % 10) * 1000, (double)i), CD_WIN_OK);
        cd_hist_record(&h, (double)i);
    }
    uint64_t n = 0;
    cr_assert_eq(cd_window_quantile(w, 0, S, 100000, 10000, 0.5, &n), cd_hist_quantile(&h, 0.5));
    cr_assert_eq(n, 100);
    cr_assert_eq(cd_window_quantile(w, 0, S, 100000, 10000, 0.5, NULL),
                 cd_hist_bin_value(cd_hist_bin(50.0)));
    cr_assert_eq(cd_window_quantile(w, 0, S, 100000, 10000, 0.99, NULL),
                 cd_hist_bin_value(cd_hist_bin(99.0)));
    cr_assert_eq(cd_window_quantile(w, 0, S, 100000, 10000, 1.0, NULL),
                 cd_hist_bin_value(cd_hist_bin(100.0)));
    cr_assert_eq(cd_window_quantile(w, 0, S, 100000, 10000, 0.0, NULL),
                 cd_hist_bin_value(cd_hist_bin(1.0)));
    /* the other cohort and an empty range stay empty */
    cr_assert_eq(cd_window_quantile(w, 0, C, 100000, 10000, 0.5, &n), 0.0);
    cr_assert_eq(n, 0);
    cr_assert_eq(cd_window_quantile(w, 0, S, 100000, 0, 0.5, &n), 0.0);
    cr_assert_eq(n, 0);
    cd_window_destroy(w);
}

/* hist_span_ms shorter than span_ms: the histograms get a ring of their own
 * (window.c, "Histogram ring"). Counters keep the long span; histogram reads
 * inside the short span answer exactly as an unsplit window does; a value
 * older than the short span but admitted by the counters is dropped from the
 * histograms and still answered OK; LATE and FUTURE are the counters'. */
Test(window, split_histogram_ring_keeps_histograms_for_their_span_only)
{
    char err[256] = "";
    cd_window_conf_t whole = {.nmetrics = 2,
                              .nhists = 1,
                              .resolution_ms = 1000,
                              .span_ms = 60000,
                              .ahead_ms = 5000,
                              .nstripes = 1};
    cd_window_conf_t split = whole;
    split.hist_span_ms = 10000;
    cd_window_t *a = cd_window_new(&whole, err, sizeof(err));
    cr_assert_not_null(a, "%s", err);
    cd_window_t *b = cd_window_new(&split, err, sizeof(err));
    cr_assert_not_null(b, "%s", err);
    /* the histogram bins of 60 + 5 + 2 buckets against 10 + 5 + 2 */
    cr_assert(cd_window_memory(b) < cd_window_memory(a) / 3, "%zu vs %zu", cd_window_memory(b),
              cd_window_memory(a));

    cd_window_t *ws[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        cd_window_t *w = ws[k];
        cd_window_set_clock(w, 100000);
        /* 30 s back: inside the counters' span, outside the histograms' */
        cr_assert_eq(cd_window_add(w, 0, 0, C, 70000, 1), CD_WIN_OK);
        cr_assert_eq(cd_window_observe(w, 0, C, 70000, 500.0), CD_WIN_OK);
        /* recent values */
        for (int i = 1; i <= 100; i++) {
            cr_assert_eq(cd_window_add(w, 0, 0, C, 95000 + i * 10, 1), CD_WIN_OK);
            cr_assert_eq(cd_window_observe(w, 0, C, 95000 + i * 10, (double)i), CD_WIN_OK);
        }
        /* LATE and FUTURE exactly as the counters answer */
        cr_assert_eq(cd_window_observe(w, 0, C, 39999, 1.0), CD_WIN_LATE);
        cr_assert_eq(cd_window_observe(w, 0, C, 40000, 1.0), CD_WIN_OK);
        cr_assert_eq(cd_window_observe(w, 0, C, 105001, 1.0), CD_WIN_FUTURE);
        cr_assert_eq(cd_window_sum(w, 0, C, 101000, 60000), 101);
    }
    uint64_t na, nb;
    double qa = cd_window_quantile(a, 0, C, 101000, 10000, 0.99, &na);
    double qb = cd_window_quantile(b, 0, C, 101000, 10000, 0.99, &nb);
    cr_assert_eq(na, 100);
    cr_assert_eq(nb, 100);
    cr_assert_eq(qa, qb);
    cr_assert(fabs(qb - 99.0) <= 0.01 * 99.0, "p99 %f", qb);
    /* the long read: the unsplit window still has the old value, the split
     * one kept the histograms for 10 s only */
    cd_window_quantile(a, 0, C, 101000, 60000, 0.5, &na);
    cd_window_quantile(b, 0, C, 101000, 60000, 0.5, &nb);
    cr_assert_eq(na, 101); /* 70000 and the 100 (40000 is before the read range) */
    cr_assert_eq(nb, 100);
    cd_hist_t h;
    cd_window_hist(b, 0, C, 101000, 10000, &h);
    cr_assert_eq(h.count, 100);

    /* the histogram ring follows the clock: 10 s later the values are gone */
    cd_window_set_clock(b, 112000);
    cd_window_quantile(b, 0, C, 112000, 10000, 0.5, &nb);
    cr_assert_eq(nb, 0);
    cr_assert_eq(cd_window_sum(b, 0, C, 112000, 60000), 101);
    cd_window_destroy(a);
    cd_window_destroy(b);

    split.hist_span_ms = -1;
    cr_assert_null(cd_window_new(&split, err, sizeof(err)));
    cr_assert_str_eq(err, "window: hist_span_ms -1 must not be negative");
    split.hist_span_ms = 10000;
    split.nhists = 99;
    cr_assert_null(cd_window_new(&split, err, sizeof(err)));
    cr_assert(strstr(err, "nhists 99 is outside allowed range") != NULL, "%s", err);
}
