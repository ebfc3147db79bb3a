/*
 * test_stats.c - the engine's statistics against values computed by hand
 * (formulas in rules/stats.h, worked with a calculator; 1e-6 tolerance).
 */
#include <criterion/criterion.h>
#include <math.h>

#include "../../rules/stats.h"

#define EPS 1e-6

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
