/*
 * clock.h - the two clocks canaryd reads, in milliseconds: cd_mono_ms
 * (CLOCK_MONOTONIC: durations, deadlines, rate limits; never jumps) and
 * cd_wall_ms (CLOCK_REALTIME: epoch ms, what event times are compared with
 * in the live agent). One copy for the agent, the sinks and the tests'
 * runner; deadline.h turns a duration into a pthread deadline.
 *
 * Not in timeutil.h: that header is rules/'s, which reads no clock (time is
 * passed in), and keeping the readers out of it keeps rules/ from reaching
 * one by accident. Static inline: a call is one vDSO clock_gettime.
 * Any thread.
 */
#ifndef CANARYD_CLOCK_H
#define CANARYD_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t cd_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t cd_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
