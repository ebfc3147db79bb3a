/*
 * test_histogram.c - the log-linear bin layout and nearest-rank quantiles.
 *
 * Accuracy is checked against the exact nearest-rank quantile of the sorted
 * samples, for deterministic sample sets drawn from a seeded xorshift PRNG
 * (lognormal-ish latencies, uniform, bimodal, constant).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "canaryd/histogram.h"

/* xorshift64*: deterministic, seeded, good enough for test data. */
static uint64_t rng_state;
static void rng_seed(uint64_t s)
{
    rng_state = s ? s : 1;
}
static double rng_unit(void) /* [0, 1) */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * UINT64_C(2685821657736338717)) >> 11) / 9007199254740992.0;
}
static double rng_normal(void) /* Box-Muller */
{
    double u = rng_unit(), v = rng_unit();
    return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Exact nearest-rank quantile of sorted v[0..n). */
static double exact_quantile(const double *v, size_t n, double q)
{
    size_t rank = (size_t)ceil(q * (double)n);
    if (rank < 1) rank = 1;
    return v[rank - 1];
}

#define NSAMPLES 20000
static double samples[NSAMPLES];
static cd_hist_t hist;

static void check_quantiles(const char *what)
{
    cd_hist_reset(&hist);
    for (size_t i = 0; i < NSAMPLES; i++)
        cd_hist_record(&hist, samples[i]);
    cr_assert_eq(hist.count, NSAMPLES);
    qsort(samples, NSAMPLES, sizeof(double), cmp_double);
    const double qs[] = {0.5, 0.95, 0.99};
    for (int i = 0; i < 3; i++) {
        double want = exact_quantile(samples, NSAMPLES, qs[i]);
        double got = cd_hist_quantile(&hist, qs[i]);
        double rel = fabs(got - want) / want;
        cr_assert(rel <= 0.01, "%s p%g: histogram %.6f, exact %.6f, error %.4f%%", what,
                  qs[i] * 100, got, want, rel * 100);
    }
}

Test(histogram, bin_and_value_round_trip)
{
    for (int b = 0; b < CD_HIST_BINS; b++) {
        double v = cd_hist_bin_value(b);
        cr_assert_eq(cd_hist_bin(v), b, "bin %d value %g maps to %d", b, v, cd_hist_bin(v));
        if (b > 0) cr_assert_gt(v, cd_hist_bin_value(b - 1), "bin values increase at %d", b);
    }
}

Test(histogram, bin_edges)
{
    /* octave 0 is [0.001, 0.002) in 64 sub-bins of 1/64000 */
    cr_assert_eq(cd_hist_bin(0.001 * (1 + 0.5 / 64)), 1);
    cr_assert_eq(cd_hist_bin(0.001 * (1 + 1.5 / 64)), 2);
    cr_assert_eq(cd_hist_bin(0.0019999), 64);
    cr_assert_eq(cd_hist_bin(0.002), 65);
    /* 1 ms = 0.001 * 1000 lies in octave 9 ([0.512, 1.024)) */
    int b = cd_hist_bin(1.0);
    cr_assert_eq((b - 1) / CD_HIST_SUB, 9);
    cr_assert_eq((b - 1) % CD_HIST_SUB, (int)((1.0 / 0.512 - 1.0) * 64));
    /* midpoint within 1/128 of every value in the bin */
    for (double v = 0.0011; v < 1e7; v *= 1.37) {
        double m = cd_hist_bin_value(cd_hist_bin(v));
        cr_assert(fabs(m - v) / v <= 1.0 / 128 + 1e-12, "v %g midpoint %g", v, m);
    }
}

Test(histogram, edge_values)
{
    cr_assert_eq(cd_hist_bin(0.0), 0);
    cr_assert_eq(cd_hist_bin(-5.0), 0);
    cr_assert_eq(cd_hist_bin(-INFINITY), 0);
    cr_assert_eq(cd_hist_bin(NAN), 0);
    cr_assert_eq(cd_hist_bin(CD_HIST_MIN), 0);
    cr_assert_eq(cd_hist_bin(nextafter(CD_HIST_MIN, 1.0)), 1);
    double top = ldexp(CD_HIST_MIN, CD_HIST_OCTAVES);
    cr_assert_eq(cd_hist_bin(top), CD_HIST_BINS - 1);
    cr_assert_eq(cd_hist_bin(nextafter(top, 0.0)), CD_HIST_BINS - 2);
    cr_assert_eq(cd_hist_bin(1e300), CD_HIST_BINS - 1);
    cr_assert_eq(cd_hist_bin(INFINITY), CD_HIST_BINS - 1);
    cr_assert_float_eq(cd_hist_bin_value(0), CD_HIST_MIN / 2, 1e-15);
    cr_assert_float_eq(cd_hist_bin_value(CD_HIST_BINS - 1), top, 1e-6);

    cd_hist_reset(&hist);
    cd_hist_record(&hist, NAN);
    cd_hist_record(&hist, -1.0);
    cd_hist_record(&hist, 1e12);
    cr_assert_eq(hist.count, 3);
    cr_assert_eq(hist.bins[0], 2);
    cr_assert_eq(hist.bins[CD_HIST_BINS - 1], 1);
    cr_assert_float_eq(cd_hist_quantile(&hist, 0.5), CD_HIST_MIN / 2, 1e-15);
    cr_assert_float_eq(cd_hist_quantile(&hist, 1.0), top, 1e-6);
}

Test(histogram, quantile_nearest_rank_and_clamping)
{
    cd_hist_reset(&hist);
    cr_assert_float_eq(cd_hist_quantile(&hist, 0.5), 0.0, 0.0); /* empty */
    for (int i = 1; i <= 100; i++)
        cd_hist_record(&hist, (double)i);
    double v50 = cd_hist_bin_value(cd_hist_bin(50.0));
    double v51 = cd_hist_bin_value(cd_hist_bin(51.0));
    cr_assert_float_eq(cd_hist_quantile(&hist, 0.50), v50, 1e-12);  /* rank 50 */
    cr_assert_float_eq(cd_hist_quantile(&hist, 0.501), v51, 1e-12); /* rank 51 */
    cr_assert_float_eq(cd_hist_quantile(&hist, 0.0), cd_hist_bin_value(cd_hist_bin(1.0)), 1e-12);
    cr_assert_float_eq(cd_hist_quantile(&hist, -3.0), cd_hist_bin_value(cd_hist_bin(1.0)), 1e-12);
    cr_assert_float_eq(cd_hist_quantile(&hist, NAN), cd_hist_bin_value(cd_hist_bin(1.0)), 1e-12);
    cr_assert_float_eq(cd_hist_quantile(&hist, 1.0), cd_hist_bin_value(cd_hist_bin(100.0)), 1e-12);
    cr_assert_float_eq(cd_hist_quantile(&hist, 7.0), cd_hist_bin_value(cd_hist_bin(100.0)), 1e-12);
}

Test(histogram, accuracy_lognormal_latencies)
{
    rng_seed(42);
    for (size_t i = 0; i < NSAMPLES; i++)
        samples[i] = exp(log(40.0) + 0.8 * rng_normal()); /* median 40 ms, long tail */
    check_quantiles("lognormal");
}

Test(histogram, accuracy_uniform)
{
    rng_seed(7);
    for (size_t i = 0; i < NSAMPLES; i++)
        samples[i] = 5.0 + 995.0 * rng_unit();
    check_quantiles("uniform");
}

Test(histogram, accuracy_bimodal)
{
    rng_seed(1234);
    for (size_t i = 0; i < NSAMPLES; i++) /* 90 % cache hits ~2 ms, 10 % misses ~250 ms */
        samples[i] =
            rng_unit() < 0.9 ? 2.0 * exp(0.2 * rng_normal()) : 250.0 * exp(0.3 * rng_normal());
    check_quantiles("bimodal");
}

Test(histogram, accuracy_constant)
{
    for (size_t i = 0; i < NSAMPLES; i++)
        samples[i] = 123.456;
    check_quantiles("constant");
}

/* The frexp() formulation cd_hist_bin used before it read the IEEE bits. */
static int frexp_bin(double v)
{
    if (!(v > CD_HIST_MIN)) return 0;
    if (v >= CD_HIST_MIN * (double)(UINT64_C(1) << CD_HIST_OCTAVES)) return CD_HIST_BINS - 1;
    int e;
    double m = frexp(v / CD_HIST_MIN, &e);
    int k = e - 1;
    int j = (int)((2.0 * m - 1.0) * CD_HIST_SUB);
    if (k < 0) {
        k = 0;
        j = 0;
    } else if (k >= CD_HIST_OCTAVES) {
        k = CD_HIST_OCTAVES - 1;
        j = CD_HIST_SUB - 1;
    }
    if (j >= CD_HIST_SUB) j = CD_HIST_SUB - 1;
    return 1 + k * CD_HIST_SUB + j;
}

Test(histogram, bin_from_bits_equals_frexp)
{
    /* every bin edge and its neighbours one ulp away, in every octave */
    int checked = 0;
    for (int b = 0; b < CD_HIST_BINS; b++) {
        double m = cd_hist_bin_value(b);
        double lo = b > 0 ? (cd_hist_bin_value(b - 1) + m) / 2 : CD_HIST_MIN;
        double vs[] = {m,
                       lo,
                       nextafter(lo, 0),
                       nextafter(lo, INFINITY),
                       nextafter(m, 0),
                       nextafter(m, INFINITY)};
        for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
            cr_assert_eq(cd_hist_bin(vs[i]), frexp_bin(vs[i]), "v %.17g", vs[i]);
            checked++;
        }
    }
    /* powers of two times MIN (the octave edges) and the range limits */
    for (int k = -3; k <= CD_HIST_OCTAVES + 3; k++) {
        double e = ldexp(CD_HIST_MIN, k);
        double vs[] = {e, nextafter(e, 0), nextafter(e, INFINITY)};
        for (size_t i = 0; i < 3; i++)
            cr_assert_eq(cd_hist_bin(vs[i]), frexp_bin(vs[i]), "v %.17g", vs[i]);
    }
    /* random doubles of every magnitude, from raw bits */
    rng_seed(77);
    for (int i = 0; i < 200000; i++) {
        uint64_t bits =
            (uint64_t)(rng_unit() * 9007199254740992.0) << 11 ^ (uint64_t)(rng_unit() * 2048.0);
        double v;
        memcpy(&v, &bits, sizeof v);
        cr_assert_eq(cd_hist_bin(v), frexp_bin(v), "bits %016llx", (unsigned long long)bits);
        double u = pow(10.0, -5.0 + 15.0 * rng_unit()); /* 1e-5 .. 1e10 */
        cr_assert_eq(cd_hist_bin(u), frexp_bin(u), "v %.17g", u);
    }
    cr_assert_eq(checked, CD_HIST_BINS * 6);
}
