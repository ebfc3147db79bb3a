/*
 * event_clock.h - the event-time clock of the commands that read a recorded
 * stream (replay, report through replay, baseline): which event times the
 * stream's time follows, and which events are dropped as "future" or
 * "late" instead of moving it. One implementation, so that `canaryd
 * baseline` captures over the same stream time replay judges.
 *
 * The rules (event_clock.c has the why):
 *  - max_ts is the highest accepted event time;
 *  - an event more than max_future_skew after max_ts is "future", until
 *    CD_EC_REANCHOR_RUN come in a row: then the stream has moved on and the
 *    clock follows it (logged once per jump, counted in `followed`);
 *  - before the first event sets the clock, the caller looks ahead at up to
 *    CD_EC_ANCHOR_EVENTS decodable events (cd_event_clock_look_ahead) and
 *    their median is the stream's start: a first event more than
 *    max_future_skew after it is "future", one further before it than the
 *    window ring reaches (and more than max_future_skew before the next
 *    event) "late", so one bogus timestamp at the head of a file moves
 *    nothing.
 *
 * Single-threaded: one clock per reading loop; no allocation but the
 * look-ahead's held lines.
 */
#ifndef CANARYD_AGENT_EVENT_CLOCK_H
#define CANARYD_AGENT_EVENT_CLOCK_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "canaryd/event.h"
#include "canaryd/pipeline.h"
#include "linereader.h"

/* Consecutive "future" events after which the clock follows the stream. */
#define CD_EC_REANCHOR_RUN 64
/* The look-ahead: at most this many decodable events, lines, bytes held. */
#define CD_EC_ANCHOR_EVENTS 64
#define CD_EC_ANCHOR_LINES 4096
#define CD_EC_ANCHOR_BYTES (1 << 20) /* held text: long bad lines must not pile up */

typedef enum cd_ec_verdict {
    CD_EC_TAKE,   /* accepted; max_ts is updated */
    CD_EC_BAD,    /* not an event (too long, not decodable): counted as bad */
    CD_EC_FUTURE, /* drop, counted as future against *ref */
    CD_EC_LATE,   /* drop, counted as late against *ref (the look-ahead's anchor) */
} cd_ec_verdict_t;

typedef struct cd_event_clock {
    int64_t max_ts;      /* highest accepted event time, once have */
    bool have;           /* an event has set the clock */
    uint64_t future_run; /* consecutive "future" events */
    uint64_t followed;   /* times the clock followed a run of them */
    bool anchored;       /* anchor holds the look-ahead's median */
    int64_t anchor;
    int64_t second; /* time of the look-ahead's second decodable event */
    int64_t span;   /* how far back the window ring reaches */
    int64_t skew;   /* windows.max_future_skew */
} cd_event_clock_t;

/* A line read by the look-ahead, to be taken again by the caller. */
typedef struct cd_held_line {
    char *text; /* malloc'ed copy; the caller frees it */
    size_t len;
    uint64_t lineno;
    cd_lr_status_t st;
} cd_held_line_t;

void cd_event_clock_init(cd_event_clock_t *k, int64_t max_future_skew_ms, int64_t span_ms);

/*
 * Reads up to CD_EC_ANCHOR_LINES lines of lr (CD_EC_ANCHOR_BYTES of text)
 * until CD_EC_ANCHOR_EVENTS of them decode with a decoder of its own made
 * from dc (which counts nothing), and anchors k at their median time.
 * Stops early when *stop becomes set (stop may be NULL). The lines read are
 * returned in *out (calloc'ed; the caller takes each one through its usual
 * path, in order, then frees every text and the array), their number as
 * the result; -1 on a read error (errno set, nothing held). Out of memory:
 * fewer lines held, or none and no anchor (the first event then sets the
 * clock, as without a look-ahead).
 */
long cd_event_clock_look_ahead(cd_event_clock_t *k, cd_linereader_t *lr, const cd_decode_conf_t *dc,
                               const volatile sig_atomic_t *stop, cd_held_line_t **out);

/* The look-ahead's events are taken: later events are held to max_ts only. */
void cd_event_clock_unanchor(cd_event_clock_t *k);

/* Judges one decoded event's time ts (line lineno, for the log): TAKE
 * (max_ts updated), or FUTURE / LATE with the reference time in *ref. */
cd_ec_verdict_t cd_event_clock_judge(cd_event_clock_t *k, int64_t ts, uint64_t lineno,
                                     int64_t *ref);

/* One line as read (st, line, len, lineno): decoded by p, which counts and
 * samples it when it is bad (BAD), or judged, p counting it as future or
 * late when so (FUTURE, LATE). TAKE: *ev holds the event to use. */
cd_ec_verdict_t cd_event_clock_take_line(cd_event_clock_t *k, cd_pipeline_t *p, cd_lr_status_t st,
                                         const char *line, size_t len, uint64_t lineno,
                                         cd_event_t *ev);

#endif
