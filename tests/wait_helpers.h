/*
 * wait_helpers.h - the tests tree's one copy of its clocks and its bounded
 * wait: sleep_ms, now_ms (wall: event timestamps), mono_ms (monotonic:
 * deadlines and durations) and wait_until, which polls a condition until it
 * holds or a deadline on CLOCK_MONOTONIC passes. Unit suites, integration
 * suites and the helpers they share (live_helpers.h, live_clock_fixture.h)
 * include it instead of each keeping a copy.
 *
 * Why a deadline and not a count of sleeps: a loop of N sleeps of 20 ms
 * lasts N x (20 ms + the time each poll takes), which on a loaded 2-core
 * machine is far more than N x 20 ms, so the bound it states is not the
 * bound it holds, and a failure message cannot say how long it waited.
 *
 * Header-only (static inline): only tests/.../test_*.c files become
 * binaries, and an unused static inline function costs nothing. No state;
 * any thread. Needs no test framework, so threads a test starts may call it.
 */
#ifndef CANARYD_TEST_WAIT_HELPERS_H
#define CANARYD_TEST_WAIT_HELPERS_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "canaryd/clock.h"

/* Sleeps ms, the whole of it (resumed after a signal). */
static inline void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Wall-clock ms: event timestamps the agent compares with its own clock. */
static inline int64_t now_ms(void)
{
    return cd_wall_ms();
}

/* Monotonic ms: deadlines and durations. */
static inline int64_t mono_ms(void)
{
    return cd_mono_ms();
}

/* Polls cond(arg) every 20 ms until it holds (true) or limit_ms have passed
 * on the monotonic clock (false). cond is called at least once. */
static inline bool wait_until(bool (*cond)(void *), void *arg, long limit_ms)
{
    for (int64_t end = mono_ms() + limit_ms;; sleep_ms(20)) {
        if (cond(arg)) return true;
        if (mono_ms() >= end) return false;
    }
}

#endif
