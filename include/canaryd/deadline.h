/*
 * deadline.h - the absolute time ms milliseconds from now on clock clk, as
 * pthread_cond_timedwait wants it (CLOCK_REALTIME for a default condition
 * variable, CLOCK_MONOTONIC for one made with pthread_condattr_setclock).
 * Any thread.
 */
#ifndef CANARYD_DEADLINE_H
#define CANARYD_DEADLINE_H

#include <stdint.h>
#include <time.h>

static inline struct timespec cd_deadline_after(clockid_t clk, int64_t ms)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

#endif
