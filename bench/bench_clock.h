/*
 * bench_clock.h - the benchmarks' one copy of their two clocks, in seconds
 * as doubles: now_s (CLOCK_MONOTONIC: wall time of a run) and cpu_s
 * (CLOCK_THREAD_CPUTIME_ID: the calling thread's CPU time, which on a
 * shared, loaded machine does not count the time other processes held the
 * core). Header-only (static inline) because every bench/bench_*.c is its
 * own binary and CMake globs only those. Any thread.
 */
#ifndef CANARYD_BENCH_CLOCK_H
#define CANARYD_BENCH_CLOCK_H

#include <time.h>

static inline double bench_clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double now_s(void)
{
    return bench_clock_s(CLOCK_MONOTONIC);
}

static inline double cpu_s(void)
{
    return bench_clock_s(CLOCK_THREAD_CPUTIME_ID);
}

#endif
