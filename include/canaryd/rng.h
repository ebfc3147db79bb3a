/*
 * rng.h - the project's one pseudo-random generator: xoshiro256** (Blackman
 * and Vigna), its state filled through splitmix64, and the draws built on
 * it (uniform, standard normal, Poisson). Used where a stream must be
 * reproducible from a seed: the event generator (agent/source/simgen.c:
 * one stream per second and cohort) and the benchmarks' Monte Carlo
 * (bench/bench_onset.c: one stream per trial).
 *
 * Seeding is the caller's: it folds its own indices (second, cohort,
 * trial) into one 64-bit value with cd_splitmix64 and fills the state from
 * it with cd_rng_fill, so that each keeps the exact stream it had when the
 * generator lived in it (simgen's scenarios' expected outputs depend on
 * every bit).
 *
 * Pure: no global state, no I/O; a cd_rng_t belongs to one thread. next and
 * uniform are inline (simgen draws several per event); the rest in
 * rules/rng.c.
 */
#ifndef CANARYD_RNG_H
#define CANARYD_RNG_H

#include <stdint.h>

typedef struct cd_rng {
    uint64_t s[4];
} cd_rng_t;

/* splitmix64: advances *x and returns its next output. */
static inline uint64_t cd_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The state: four splitmix64 outputs from x. */
static inline void cd_rng_fill(cd_rng_t *r, uint64_t x)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = cd_splitmix64(&x);
}

static inline uint64_t cd_rng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256**: the next 64 bits. */
static inline uint64_t cd_rng_next(cd_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = cd_rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = cd_rng_rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double cd_rng_uniform(cd_rng_t *r)
{
    return (double)(cd_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Standard normal (Box-Muller, one of the pair; two uniforms). */
double cd_rng_normal(cd_rng_t *r);

/* Poisson(lambda): multiplication (Knuth) below 30, PTRS (Hormann 1993)
 * above; 0 for lambda <= 0. */
long cd_rng_poisson(cd_rng_t *r, double lambda);

#endif
