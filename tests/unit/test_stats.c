/*
 * test_stats.c - the engine's statistics against values computed by hand
 * (formulas in rules/stats.h, worked with a calculator; 1e-6 tolerance).
 */
#include <criterion/criterion.h>
#include <math.h>

#include "../../rules/stats.h"

#define EPS 1e-6

/* Fisher's exact one-sided test: 3/10 vs 1/10 is R's
 * fisher.test(matrix(c(3, 7, 1, 9), 2), alternative = "greater")$p.value
 * = 0.2910217 (sum of the hypergeometric terms P(X >= 3), N 20, K 4, n 10:
 * (C(4,3) C(16,7) + C(4,4) C(16,6)) / C(20,10) = (45760 + 8008) / 184756). */
Test(stats, fisher_greater_small_table)
{
    cr_assert_float_eq(cd_stats_fisher_greater(3, 10, 1, 10), 53768.0 / 184756.0, EPS);
    /* P(X >= 4) alone: C(4,4) C(16,6) / C(20,10) */
    cr_assert_float_eq(cd_stats_fisher_greater(4, 10, 0, 10), 8008.0 / 184756.0, EPS);
}

/* The false ROLLBACK of fleet-drop seed 105 (issue 10): 19/195 failed canary
 * logins against stable's 185/3869 gave z 3.10 >= 3 with the normal
 * approximation; the exact p is 0.0037, well above 1 - Phi(3). */
Test(stats, fisher_greater_fleet_drop_seed_105)
{
    cr_assert_gt(cd_stats_z_two_prop(19, 195, 185, 3869), 3.0);
    double p = cd_stats_fisher_greater(19, 195, 185, 3869);
    cr_assert(p > 0.0036 && p < 0.0038, "p %g", p);
    cr_assert_gt(p, cd_stats_norm_tail(3.0));
    cr_assert_float_eq(cd_stats_norm_tail(3.0), 0.001349898, EPS);
}

Test(stats, fisher_greater_degenerate)
{
    cr_assert_eq(cd_stats_fisher_greater(0, 0, 5, 100), 1.0); /* no trials */
    cr_assert_eq(cd_stats_fisher_greater(5, 100, 0, 0), 1.0);
    cr_assert_eq(cd_stats_fisher_greater(5, 100, 10, 200), 1.0); /* equal: not above */
    cr_assert_eq(cd_stats_fisher_greater(1, 100, 5, 100), 1.0);  /* below */
    /* x > n is clamped: 20/10 is 10/10 */
    cr_assert_float_eq(cd_stats_fisher_greater(20, 10, 0, 10),
                       cd_stats_fisher_greater(10, 10, 0, 10), EPS);
    /* all-failure canary against a clean stable: 1 / C(20,10) */
    cr_assert_float_eq(cd_stats_fisher_greater(10, 10, 0, 10), 1.0 / 184756.0, 1e-12);
    /* large counts stay finite and tiny, not NaN */
    double p = cd_stats_fisher_greater(1000, 1000000, 0, 1000000);
    cr_assert(p >= 0.0 && p < 1e-200, "p %g", p);
}

Test(stats, z_two_prop_spike)
{
    /* p1 = 60/500 = .12, p2 = 100/2000 = .05, pooled 160/2500 = .064;
     * se = sqrt(.064 * .936 * (1/500 + 1/2000)) = sqrt(.00014976) = .0122376;
     * z = .07 / .0122376 = 5.720054 */
    cr_assert_float_eq(cd_stats_z_two_prop(60, 500, 100, 2000), 5.720053942, EPS);
}

Test(stats, z_two_prop_symmetric)
{
    /* .10 vs .05 on 100 each: pooled .075, se = sqrt(.075 * .925 * .02) =
     * .0372491, z = .05 / .0372491 = 1.342312 */
    cr_assert_float_eq(cd_stats_z_two_prop(10, 100, 5, 100), 1.342312110, EPS);
    cr_assert_float_eq(cd_stats_z_two_prop(5, 100, 10, 100), -1.342312110, EPS);
    cr_assert_float_eq(cd_stats_z_two_prop(7, 100, 7, 100), 0.0, EPS);
}

Test(stats, z_two_prop_degenerate_is_zero)
{
    cr_assert_eq(cd_stats_z_two_prop(0, 1000, 0, 5000), 0.0); /* 0 vs 0 */
    cr_assert_eq(cd_stats_z_two_prop(10, 10, 50, 50), 0.0);   /* all vs all */
    cr_assert_eq(cd_stats_z_two_prop(0, 0, 5, 100), 0.0);     /* no trials */
    cr_assert_eq(cd_stats_z_two_prop(5, 100, 0, 0), 0.0);
    /* x > n is clamped: 20/10 behaves like 10/10 against 0/10 */
    cr_assert_float_eq(cd_stats_z_two_prop(20, 10, 0, 10), cd_stats_z_two_prop(10, 10, 0, 10), EPS);
    cr_assert(isfinite(cd_stats_z_two_prop(20, 10, 0, 10)));
}

Test(stats, wilson_payment_success)
{
    /* 547/607 at z = 1.645: p = .901153, z^2 = 2.706025, 1 + z^2/n = 1.004458;
     * centre = (.901153 + .002229) / 1.004458 = .899373;
     * half = 1.645 / 1.004458 * sqrt(.000146331 + .000001836) = .019963 */
    cr_assert_float_eq(cd_stats_wilson_upper(547, 607, 1.645), 0.919335548, EPS);
    cr_assert_float_eq(cd_stats_wilson_lower(547, 607, 1.645), 0.879410044, EPS);
    /* 96 % of 600 is not below 95 % at 95 % confidence: upper bound .971227 */
    cr_assert_float_eq(cd_stats_wilson_upper(576, 600, 1.645), 0.971226554, EPS);
    cr_assert_float_eq(cd_stats_wilson_lower(576, 600, 1.645), 0.944642836, EPS);
}

Test(stats, wilson_edges)
{
    /* 0/50 at 1.96: upper = z^2/n / (1 + z^2/n) = .076832 / 1.076832 = .071350 */
    cr_assert_float_eq(cd_stats_wilson_upper(0, 50, 1.96), 0.071350034, EPS);
    cr_assert_float_eq(cd_stats_wilson_lower(0, 50, 1.96), 0.0, EPS);
    cr_assert_float_eq(cd_stats_wilson_lower(50, 50, 1.96), 0.928649966, EPS);
    cr_assert_float_eq(cd_stats_wilson_upper(50, 50, 1.96), 1.0, EPS);
    /* z = 0 is the point estimate */
    cr_assert_float_eq(cd_stats_wilson_upper(3, 4, 0.0), 0.75, EPS);
    cr_assert_float_eq(cd_stats_wilson_lower(3, 4, 0.0), 0.75, EPS);
    /* nothing known without trials */
    cr_assert_eq(cd_stats_wilson_upper(0, 0, 1.645), 1.0);
    cr_assert_eq(cd_stats_wilson_lower(0, 0, 1.645), 0.0);
    cr_assert_float_eq(cd_stats_wilson_upper(9, 4, 1.645), 1.0, EPS);
}

Test(stats, norm_cdf)
{
    cr_assert_float_eq(cd_stats_norm_cdf(0.0), 0.5, EPS);
    cr_assert_float_eq(cd_stats_norm_cdf(1.645), 0.950015094, EPS);
    cr_assert_float_eq(cd_stats_norm_cdf(-1.645), 1.0 - 0.950015094, EPS);
}

/* ---- the sequential test: Bernoulli log-likelihood ratio and CUSUM ---- */

Test(stats, bernoulli_llr_exact)
{
    /* 3 bad of 100 under q1 = .05 against q0 = .02:
     * 3 ln(2.5) + 97 ln(.95 / .98) = 2.748872 - 3.015787 = -0.266915 */
    cr_assert_float_eq(cd_stats_bernoulli_llr(3, 100, 0.02, 0.05), -0.266914750, EPS);
    /* 12 of 100, q0 .035, q1 .10: 12 ln(10/3.5) + 88 ln(.9/.965) = 12.597865 - 6.136533 = 6.461332
     */
    cr_assert_float_eq(cd_stats_bernoulli_llr(12, 100, 0.035, 0.10),
                       12 * log(0.10 / 0.035) + 88 * log(0.90 / 0.965), 1e-12);
    cr_assert_float_eq(cd_stats_bernoulli_llr(12, 100, 0.035, 0.10), 6.461332, 1e-6);
    cr_assert_eq(cd_stats_bernoulli_llr(0, 0, 0.02, 0.05), 0.0); /* empty bucket */
    /* k > n is clamped: 150 of 100 counts as 100 of 100 */
    cr_assert_float_eq(cd_stats_bernoulli_llr(150, 100, 0.02, 0.05), 100 * log(2.5), 1e-9);
}

Test(stats, cusum_change_point)
{
    /* Suffix sums U_i (newest first): i7 -1, i6 -2, i5 0, i4 2, i3 4, i2 3,
     * i1 2, i0 1: S = 4 at i3 (the first +2); after it the sums fall to -2,
     * so D = 2. Onset at margin 2.5: latest U >= 1.5 is i4. */
    const double inc[] = {-1, -1, -1, 2, 2, 2, -1, -1};
    cd_cusum_t c;
    cd_stats_cusum(inc, 8, 2.5, &c);
    cr_assert_float_eq(c.stat, 4.0, 1e-12);
    cr_assert_eq(c.best, 3);
    cr_assert_eq(c.onset, 4);
    cr_assert_float_eq(c.end_stat, 2.0, 1e-12);
    cd_stats_cusum(inc, 8, 0.0, &c); /* margin 0: the maximum-likelihood point */
    cr_assert_eq(c.onset, 3);
    cd_stats_cusum(inc, 8, 5.0, &c); /* every U >= -1 qualifies: the newest, i7 */
    cr_assert_eq(c.onset, 7);
}

Test(stats, cusum_ties_take_the_latest)
{
    /* U: i2 1, i1 0, i0 1: two starts with S = 1; the latest (i2) is best. */
    const double inc[] = {1, -1, 1};
    cd_cusum_t c;
    cd_stats_cusum(inc, 3, 0.0, &c);
    cr_assert_float_eq(c.stat, 1.0, 1e-12);
    cr_assert_eq(c.best, 2);
    cr_assert_eq(c.onset, 2);
    cr_assert_float_eq(c.end_stat, 0.0, 1e-12);
}

Test(stats, cusum_no_evidence)
{
    const double inc[] = {-0.5, -2, 0, -1};
    cd_cusum_t c;
    cd_stats_cusum(inc, 4, 1.0, &c);
    cr_assert_eq(c.stat, 0.0);
    cr_assert_eq(c.best, -1);
    cr_assert_eq(c.onset, -1);
    cr_assert_eq(c.end_stat, 0.0);
    cd_stats_cusum(inc, 0, 1.0, &c); /* nothing to look at */
    cr_assert_eq(c.stat, 0.0);
    cr_assert_eq(c.best, -1);
}

Test(stats, cusum_equals_page_recursion)
{
    /* S = max(0, S + inc) from the first increment on gives the same S at
     * the end, and best is one after the last reset to 0. A fixed LCG
     * drives the increments (uniform in [-1.5, 1.0)). */
    double inc[500];
    uint64_t x = 12345;
    double page = 0.0;
    int last_zero = -1;
    for (int i = 0; i < 500; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        inc[i] = (double)(x >> 11) * 0x1.0p-53 * 2.5 - 1.5;
        page = page + inc[i] > 0 ? page + inc[i] : 0.0;
        if (page == 0.0) last_zero = i;
        cd_cusum_t c;
        cd_stats_cusum(inc, i + 1, 0.0, &c);
        cr_assert_float_eq(c.stat, page, 1e-9, "at %d", i);
        if (page > 0) cr_assert_eq(c.best, last_zero + 1, "at %d", i);
    }
}
