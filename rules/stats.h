/*
 * stats.h - the few statistics the rule engine needs (internal to rules/).
 *
 * Rules decide on counts of events, so every test here takes counts, not
 * pre-rounded proportions: x successes (or failures) out of n trials.
 *   - cd_stats_z_two_prop: the pooled two-proportion z statistic (kept
 *     for comparison; no rule decides on it any more: its normal
 *     approximation is not calibrated at a few hundred samples).
 *   - cd_stats_fisher_greater: the exact one-sided p-value of "is p1 above
 *     p2?" (Fisher's exact test, conditional on the total count), used by
 *     spike rules.
 *   - cd_stats_wilson_*: one-sided Wilson score bounds, used by threshold
 *     rules so a small sample is not taken for a breach (96 % of 600 payments
 *     is not evidence of < 95 %).
 *   - cd_stats_norm_cdf: the one-sided confidence a z corresponds to, for
 *     reason sentences ("upper 95% bound").
 *   - cd_stats_bernoulli_llr / cd_stats_cusum: the sequential test of
 *     threshold and relative rules (evidence_seq.c): the log-likelihood ratio
 *     of a bucket's k "bad" events out of n under q1 against q0, and Page's
 *     CUSUM over a run of such increments with its change-point estimate.
 *
 * Pure functions: no state, no allocation, safe from any thread. Degenerate
 * inputs (n == 0, x > n) never produce NaN: see each function.
 */
#ifndef CANARYD_RULES_STATS_H
#define CANARYD_RULES_STATS_H

#include <stdint.h>

/*
 * z = (p1 - p2) / sqrt(p (1 - p) (1/n1 + 1/n2)), p1 = x1/n1, p2 = x2/n2 and
 * p = (x1 + x2) / (n1 + n2) the pooled proportion. Positive when p1 > p2.
 * Returns 0 when either n is 0 or the pooled proportion is 0 or >= 1 (no
 * variance: 0 failures against 0 failures is no evidence of anything).
 * Counts with x > n (a "proportion" whose numerator is not a subset of its
 * denominator) are clamped to x = n.
 */
double cd_stats_z_two_prop(uint64_t x1, uint64_t n1, uint64_t x2, uint64_t n2);

/*
 * One-sided p-value of x1/n1 > x2/n2 conditional on the total x1 + x2:
 * P(X >= x1) for X hypergeometric (x1 + x2 "successes" among n1 + n2, n1
 * drawn), Fisher's exact test. It is exact at any sample size (no normal
 * approximation), so rejecting at p <= alpha gives a false-alarm rate of at
 * most alpha when both cohorts share one proportion (conservative: the
 * discreteness only lowers it). Returns 1 when either n is 0 or x1/n1 <=
 * x2/n2 (no evidence of "above"). x > n is clamped to n.
 */
double cd_stats_fisher_greater(uint64_t x1, uint64_t n1, uint64_t x2, uint64_t n2);

/* The one-sided level of a normal quantile: 1 - Phi(z). */
double cd_stats_norm_tail(double z);

/*
 * One-sided Wilson score bounds of the proportion x/n at z (z >= 0):
 *   centre = (p + z^2/2n) / (1 + z^2/n)
 *   half   = z / (1 + z^2/n) * sqrt(p (1 - p) / n + z^2 / 4n^2)
 * upper = centre + half, lower = centre - half, both clamped to [0, 1].
 * n == 0: upper 1, lower 0 (nothing is known). x > n is clamped to n.
 */
double cd_stats_wilson_upper(uint64_t x, uint64_t n, double z);
double cd_stats_wilson_lower(uint64_t x, uint64_t n, double z);

/* Standard normal CDF Phi(z): the one-sided confidence of a bound at z. */
double cd_stats_norm_cdf(double z);

/*
 * log L(q1) / L(q0) of k bad events out of n Bernoulli trials:
 *   k ln(q1 / q0) + (n - k) ln((1 - q1) / (1 - q0)),
 * for 0 < q0 < q1 < 1 (the caller clamps). k > n is clamped to n; n == 0
 * gives 0 (an empty bucket is no evidence either way).
 */
double cd_stats_bernoulli_llr(uint64_t k, uint64_t n, double q0, double q1);

/*
 * Page's CUSUM over increments inc[0..n-1] (oldest first), read as a
 * function of where the exceedance started. U_i = inc[i] + ... + inc[n-1]
 * is the evidence for "it started at i":
 *   stat     S = max(0, max_i U_i): the CUSUM at the newest increment
 *            (Page's recursion S = max(0, S + inc) started n increments ago
 *            gives the same number);
 *   best     the latest i with U_i = S (the maximum-likelihood change
 *            point; Page's "last reset"), -1 when S == 0;
 *   onset    the latest i with U_i >= S - onset_llr (>= best): the latest
 *            start the data cannot reject at that margin, so an onset
 *            estimated from it is early with probability <= e^-onset_llr
 *            when the bad share before the true onset was at most q0;
 *            -1 when S == 0;
 *   end_stat D = max(0, max_{i > best} -U_i): the same test reversed on the
 *            increments after best, i.e. evidence that the exceedance has
 *            ended since then; 0 when S == 0.
 * Exact in double for the lengths used (a few thousand increments); no
 * allocation.
 */
typedef struct cd_cusum {
    double stat;
    int best;
    int onset;
    double end_stat;
} cd_cusum_t;

void cd_stats_cusum(const double *inc, int n, double onset_llr, cd_cusum_t *out);

#endif
