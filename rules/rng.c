/*
 * rng.c - the draws of rng.h built on xoshiro256**: standard normal and
 * Poisson. Pure functions of the generator's state; no allocation.
 */
#include "canaryd/rng.h"

#include <math.h>

double cd_rng_normal(cd_rng_t *r)
{
    double u1 = 1.0 - cd_rng_uniform(r); /* (0, 1]: log() stays finite */
    double u2 = cd_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

long cd_rng_poisson(cd_rng_t *r, double lambda)
{
    if (lambda <= 0.0) return 0;
    if (lambda < 30.0) {
        double limit = exp(-lambda), p = 1.0;
        long k = -1;
        do {
            k++;
            p *= cd_rng_uniform(r);
        } while (p > limit);
        return k;
    }
    /* PTRS: transformed rejection with squeeze (Hormann 1993) */
    double slam = sqrt(lambda), loglam = log(lambda);
    double b = 0.931 + 2.53 * slam;
    double a = -0.059 + 0.02483 * b;
    double invalpha = 1.1239 + 1.1328 / (b - 3.4);
    double vr = 0.9277 - 3.6224 / (b - 2.0);
    for (;;) {
        double u = cd_rng_uniform(r) - 0.5;
        double v = cd_rng_uniform(r);
        double us = 0.5 - fabs(u);
        double k = floor((2.0 * a / us + b) * u + lambda + 0.43);
        if (us >= 0.07 && v <= vr) return (long)k;
        if (k < 0.0 || (us < 0.013 && v > us)) continue;
        if (log(v) + log(invalpha) - log(a / (us * us) + b) <=
            -lambda + k * loglam - lgamma(k + 1.0))
            return (long)k;
    }
}
