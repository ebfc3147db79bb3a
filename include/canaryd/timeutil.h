/*
 * timeutil.h - event-time parsing and formatting (pure, thread-safe).
 *
 * canaryd keeps all times as int64 milliseconds since the Unix epoch (UTC).
 */
#ifndef CANARYD_TIMEUTIL_H
#define CANARYD_TIMEUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Parses an RFC 3339 timestamp of exactly len bytes (no NUL needed):
 * "2026-11-27T12:00:03.250Z", "2026-11-27T13:00:03+01:00", lower-case 't'/'z'
 * and a space instead of 'T' accepted, 0-9 fraction digits (truncated to ms).
 * Returns true and stores epoch ms in *ms; false on any deviation (range
 * checks on month/day/hour/minute/second, leap second 60 accepted as 59.999).
 */
bool cd_time_parse_rfc3339(const char *s, size_t len, int64_t *ms);

/* Formats epoch ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (>= 32 bytes).
 * Returns buf. */
char *cd_time_format(int64_t ms, char *buf, size_t size);

/* Formats a duration in ms as "5m", "2m30s", "1h", "250ms", "0s" into buf.
 * Returns buf. */
char *cd_duration_format(int64_t ms, char *buf, size_t size);

/*
 * Parses a duration: "250ms", "30s", "5m", "1h", "1h30m", "1.5s". Returns
 * true and stores ms; false for anything else (negative, no unit, overflow).
 */
bool cd_duration_parse(const char *s, int64_t *ms);

#endif
