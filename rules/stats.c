/*
 * stats.c - two-proportion z statistic, Wilson score bounds, the Bernoulli
 * log-likelihood ratio and Page's CUSUM (see stats.h).
 *
 * Everything is computed in double from integer counts; the counts of one
 * window (at most a few billion events) are exact in a double. No state, no
 * allocation; thread-safe.
 */
#include "stats.h"

#include <math.h>

double cd_stats_z_two_prop(uint64_t x1, uint64_t n1, uint64_t x2, uint64_t n2)
{
    if (n1 == 0 || n2 == 0) return 0.0;
    if (x1 > n1) x1 = n1;
    if (x2 > n2) x2 = n2;
    double p1 = (double)x1 / (double)n1;
    double p2 = (double)x2 / (double)n2;
    double p = ((double)x1 + (double)x2) / ((double)n1 + (double)n2);
    /* No variance in the pooled sample: the difference is exactly 0 (both
     * all-zero or both all-one), never a spike. */
    if (p <= 0.0 || p >= 1.0) return 0.0;
    double se = sqrt(p * (1.0 - p) * (1.0 / (double)n1 + 1.0 / (double)n2));
    return (p1 - p2) / se;
}

static double lchoose(double n, double k)
{
    int sg; /* lgamma_r: lgamma's sign lives in a global (a data race between engines) */
    return lgamma_r(n + 1.0, &sg) - lgamma_r(k + 1.0, &sg) - lgamma_r(n - k + 1.0, &sg);
}

double cd_stats_fisher_greater(uint64_t x1, uint64_t n1, uint64_t x2, uint64_t n2)
{
    if (n1 == 0 || n2 == 0) return 1.0;
    if (x1 > n1) x1 = n1;
    if (x2 > n2) x2 = n2;
    /* x1/n1 <= x2/n2 in exact integer arithmetic (products fit in double
     * exactly enough for any window's counts; compared as long double). */
    if ((long double)x1 * (long double)n2 <= (long double)x2 * (long double)n1) return 1.0;
    double n = (double)n1 + (double)n2, k = (double)x1 + (double)x2, d = (double)n1;
    double hi = k < d ? k : d; /* the largest possible X */
    /* P(X = x1), then the ratio recurrence P(j+1)/P(j) = (k-j)(d-j) /
     * ((j+1)(n-k-d+j+1)): above the mean every ratio is < 1 and shrinking,
     * so the terms fall geometrically and the sum stops once they no longer
     * change it. */
    double j = (double)x1;
    double term = exp(lchoose(k, j) + lchoose(n - k, d - j) - lchoose(n, d));
    double sum = 0.0;
    while (term > 0.0) {
        sum += term;
        if (j >= hi || term < sum * 1e-17) break;
        term *= (k - j) * (d - j) / ((j + 1.0) * (n - k - d + j + 1.0));
        j += 1.0;
    }
    return sum > 1.0 ? 1.0 : sum;
}

double cd_stats_norm_tail(double z)
{
    return 0.5 * erfc(z / sqrt(2.0));
}

/* Returns the centre of the Wilson interval in *centre and its half-width. */
static double wilson_half(uint64_t x, uint64_t n, double z, double *centre)
{
    if (x > n) x = n;
    double nn = (double)n;
    double p = (double)x / nn;
    double z2 = z * z;
    double denom = 1.0 + z2 / nn;
    *centre = (p + z2 / (2.0 * nn)) / denom;
    return z / denom * sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn));
}

double cd_stats_wilson_upper(uint64_t x, uint64_t n, double z)
{
    if (n == 0) return 1.0;
    double c, h = wilson_half(x, n, z, &c);
    double u = c + h;
    return u > 1.0 ? 1.0 : u;
}

double cd_stats_wilson_lower(uint64_t x, uint64_t n, double z)
{
    if (n == 0) return 0.0;
    double c, h = wilson_half(x, n, z, &c);
    double l = c - h;
    return l < 0.0 ? 0.0 : l;
}

double cd_stats_norm_cdf(double z)
{
    return 0.5 * erfc(-z / sqrt(2.0));
}

double cd_stats_bernoulli_llr(uint64_t k, uint64_t n, double q0, double q1)
{
    if (n == 0) return 0.0;
    if (k > n) k = n;
    return (double)k * log(q1 / q0) + (double)(n - k) * log((1.0 - q1) / (1.0 - q0));
}

void cd_stats_cusum(const double *inc, int n, double onset_llr, cd_cusum_t *out)
{
    /* Newest to oldest: the suffix sums U_i come out one by one, and the
     * first index met with a given value is the latest one, which is what
     * both best and onset want on ties. Two passes: onset and end_stat need
     * S and best first. */
    double u = 0.0, s = 0.0;
    int best = -1;
    for (int i = n - 1; i >= 0; i--) {
        u += inc[i];
        if (u > s) {
            s = u;
            best = i;
        }
    }
    out->stat = s;
    out->best = best;
    out->onset = -1;
    out->end_stat = 0.0;
    if (best < 0) return;
    u = 0.0;
    for (int i = n - 1; i >= best; i--) {
        u += inc[i];
        if (i > best && -u > out->end_stat) out->end_stat = -u;
        if (out->onset < 0 && u >= s - onset_llr) out->onset = i;
    }
    /* u summed in the other order than in the first pass: rounding can put
     * U_best a hair under s; best itself always qualifies. */
    if (out->onset < 0) out->onset = best;
}
