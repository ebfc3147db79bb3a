/*
 * verdict_fmt.h - the two spellings of a verdict record: one JSON object per
 * line (the verdict log, stdout of `canaryd replay`, webhook bodies) and one
 * human line (`--pretty`, `canaryd tail`). The human line is always made from
 * the JSON, so whatever is logged is exactly what people read.
 *
 * JSON keys, in this order:
 *   time       RFC 3339 event time, "2026-11-27T12:05:30.000Z"
 *   kind       "verdict" | "state"
 *   verdict    "ROLLBACK", ... (verdict records only)
 *   from, to   "inactive" | "pending" | "firing" | "resolved" (state records only)
 *   rule       rule name, null for release-wide records
 *   rule_kind  "threshold", ... or null
 *   action     "rollback" | "alert", null for release-wide records
 *   dry_run    true | false
 *   release    canary version ("" when unknown)
 *   service    the service judged: events.service, or learnt from the first
 *              canary event ("" when unknown)
 *   reason     sentence with the values and thresholds
 *   todo       what the procedure says to do ("" if nothing)
 *   observed   {"canary": {"value", "numerator", "samples"} | null,
 *               "stable": {...} | null, "stable_source": "stable" | "baseline" | null}
 *   threshold  number or null
 *   window     "1m" (null on a release-wide record without one)
 *   for        "5m" (same)
 * Numbers that are NaN or infinite are written as null; reals carry 15
 * significant digits.
 *
 * Thread-safety: pure functions of their arguments.
 */
#ifndef CANARYD_VERDICT_FMT_H
#define CANARYD_VERDICT_FMT_H

#include <stdbool.h>
#include <stddef.h>

#include "canaryd/verdict.h"

/*
 * Renders v as one JSON line (no newline) into buf, NUL-terminated. Returns
 * its length, or -1 when it does not fit in size bytes (4096 always does:
 * reason and todo are bounded) or on allocation failure (buf then holds "").
 */
int cd_verdict_to_json(const cd_verdict_t *v, char *buf, size_t size);

/* A record parsed back from its JSON line, with the storage its strings
 * point into (v's rule, rule_kind, release, service, stable_source). */
typedef struct cd_verdict_parsed {
    cd_verdict_t v;
    char rule[CD_NAME_MAX], rule_kind[32], release[128], service[CD_NAME_MAX],
        stable_source[16];
} cd_verdict_parsed_t;

/*
 * Parses one JSON line made by cd_verdict_to_json (len bytes) back into
 * *out, so that rendering out->v gives the same line again (unknown keys
 * are ignored: a newer writer's additions). false, with a reason in errbuf,
 * when it is not such a record. Used to deliver again, after a restart, a
 * decision that was made but not delivered (ledger.h).
 */
bool cd_verdict_from_json(const char *line, size_t len, cd_verdict_parsed_t *out, char *errbuf,
                          size_t errsize);

/* ANSI colours used by the pretty format. */
#define CD_ANSI_RED "\033[31m"
#define CD_ANSI_YELLOW "\033[33m"
#define CD_ANSI_GREEN "\033[32m"
#define CD_ANSI_DIM "\033[2m"
#define CD_ANSI_RESET "\033[0m"

/*
 * Renders a verdict-log line (len bytes, no newline, need not be
 * NUL-terminated) as one human line into out (no newline), e.g.
 *   2026-11-27 12:05:30Z  ROLLBACK  error-rate      canary ... (release 2.5.0 of checkout)
 *   2026-11-27 12:05:30Z  state     error-rate      inactive -> pending  canary error rate ...
 *   2026-11-27 12:05:31Z  HEALTHY   -               every rule has enough data (release 2.5.0)
 * (" of SERVICE" only when the record names one.) Dry-run records carry
 * "[dry run] " before the reason. With colour, the
 * verdict word is wrapped in ANSI colour: ROLLBACK red, ALERT yellow,
 * PROMOTE and HEALTHY green, ANALYZING dim. A line that is not a verdict
 * record (not JSON, or lacking "time" / "kind") is copied as it is.
 * Returns the length written, or -1 if out was too small (out then holds
 * the truncated, NUL-terminated text).
 */
int cd_verdict_pretty_from_json(const char *line, size_t len, char *out, size_t size, bool colour);

#endif
