/*
 * log.h - canaryd's diagnostics on stderr (never the verdicts: those go to
 * sinks).
 *
 * Each line: "2026-11-27T12:00:03.250Z canaryd[warn]: message". The level
 * comes from CANARYD_LOG_LEVEL (error | warn | info | debug, default info),
 * read once on first use; an unknown value is reported once and info used.
 *
 * Messages that can repeat once per input (bad events, I/O retries) go
 * through cd_log_ratelimited(): the first 5 per key are printed, then at most
 * one per 10 s, carrying "(N similar suppressed)".
 *
 * Threading: every function may be called from any thread; each message is
 * written with one fputs on an unbuffered stream, so lines do not interleave.
 */
#ifndef CANARYD_LOG_H
#define CANARYD_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum cd_log_level {
    CD_LOG_ERROR = 0,
    CD_LOG_WARN,
    CD_LOG_INFO,
    CD_LOG_DEBUG,
} cd_log_level_t;

/* The rate limit: burst per key, then one per interval. */
#define CD_LOG_BURST 5
#define CD_LOG_INTERVAL_MS 10000
/* Most bytes of an input payload ever written to the log. */
#define CD_LOG_PAYLOAD_MAX 120

void cd_log(cd_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Like cd_log, rate-limited per key (a string; compared by content, copied).
 * Up to 64 distinct keys are tracked; further keys share one overflow slot.
 */
void cd_log_ratelimited(const char *key, cd_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * A sample gate: the same rule as cd_log_ratelimited() (the first
 * CD_LOG_BURST pass, then one per CD_LOG_INTERVAL_MS) decided with atomics
 * only, before any lock or formatting. For messages that can come once per
 * input event (bad input): a stream of 100 % garbage must not serialize the
 * workers on the log mutex nor pay for formatting lines that are dropped.
 * Zero-initialised (static storage) is ready. The caller counts the input
 * itself; the gate counts only what it suppressed.
 */
typedef struct cd_log_gate {
    _Atomic uint64_t seen;       /* calls since the last reset */
    _Atomic uint64_t suppressed; /* since the last line that passed */
    _Atomic int64_t next_ms;     /* after the burst, the next line is due then */
    _Atomic unsigned epoch;      /* cd_log_reset() generation this gate belongs to */
} cd_log_gate_t;

/* True when this occurrence is to be logged at level l; then *suppressed
 * gets how many were suppressed since the previous one that passed (to be
 * shown with cd_log_suppressed()). False: counted as suppressed. Lock-free. */
bool cd_log_gate_pass(cd_log_gate_t *g, cd_log_level_t l, uint64_t *suppressed);

/* cd_log() with " (N similar suppressed)" appended when suppressed > 0. */
void cd_log_suppressed(cd_log_level_t level, uint64_t suppressed, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Whether a message of this level would be written. */
bool cd_log_enabled(cd_log_level_t level);

/* Overrides the level from the environment (tests, --verbose). */
void cd_log_set_level(cd_log_level_t level);

/* Parses "error" | "warn" | "info" | "debug"; false for anything else. */
bool cd_log_level_parse(const char *s, cd_log_level_t *out);

/*
 * Writes an escaped sample of a payload into out (always NUL-terminated):
 * at most CD_LOG_PAYLOAD_MAX input bytes, printable ASCII as is, backslash
 * as "\\", every other byte (control, NUL, any byte >= 0x80, hence invalid
 * UTF-8 too) as "\xNN", and "..." when the payload was longer. out must hold
 * 4 * CD_LOG_PAYLOAD_MAX + 4 bytes to never truncate. Returns out.
 */
char *cd_log_escape(const void *buf, size_t len, char *out, size_t size);
#define CD_LOG_ESCAPED_MAX (4 * CD_LOG_PAYLOAD_MAX + 4)

/*
 * Test seams: where lines go (NULL = stderr) and the monotonic clock used by
 * the rate limit (NULL = CLOCK_MONOTONIC). Not for use while other threads log.
 */
void cd_log_set_stream(FILE *f);
void cd_log_set_clock(int64_t (*now_ms)(void));
/* Forgets all rate-limit keys and resets every gate (tests). */
void cd_log_reset(void);

#endif
