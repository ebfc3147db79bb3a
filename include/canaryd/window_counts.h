/*
 * window_counts.h - what each rule's window held at one evaluation second,
 * as exact counts per event type and cohort (GET /api/v1/windows, docs/http-api.md).
 *
 * Why: two agents that consumed the same events must have the same windows,
 * whatever millisecond they evaluated at and however they got there (one
 * restarted and rebuilt its windows from Kafka, issue 11). The live agent
 * evaluates on a 10 ms grid, where a window still holds its filling bucket;
 * the answer here is the window closed at a whole second S: the buckets that
 * start in [S - window, S), all complete once the agent has judged S and
 * the allowed lateness after it.
 *
 * Pure reads of the lock-free window ring (window.h): any thread, no lock,
 * no allocation; the rules and the catalog are read from the config (borrowed,
 * immutable).
 */
#ifndef CANARYD_WINDOW_COUNTS_H
#define CANARYD_WINDOW_COUNTS_H

#include <stdint.h>

#include "canaryd/config.h"
#include "canaryd/window.h"

/* Distinct event types one rule reads: numerator, denominator, flatline types. */
#define CD_WC_MAX_TYPES (3 * CD_MAX_SIGNAL_TYPES)

typedef struct cd_window_counts_rule {
    int64_t window_ms;
    int ntypes;
    int types[CD_WC_MAX_TYPES];                /* type ids, in the rule's order, each once */
    uint64_t count[CD_WC_MAX_TYPES][CD_NCOHORTS]; /* [i][cohort] over [S - window, S) */
    int hist;                                  /* percentile rule: numeric field id; else -1 */
    uint64_t observations[CD_NCOHORTS];        /* percentile rule: values in its histogram */
} cd_window_counts_rule_t;

typedef struct cd_window_counts {
    int64_t at_ms;     /* S x 1000 */
    int64_t oldest_ms; /* the earliest S answerable now (every rule's window retained) */
    int nrules;
    cd_window_counts_rule_t rules[CD_MAX_RULES];
} cd_window_counts_t;

typedef enum cd_wc_result {
    CD_WC_OK = 0,
    CD_WC_NOT_JUDGED, /* S after complete_ms: its buckets may still fill */
    CD_WC_GONE,       /* a rule's window closed at S reaches before the ring's oldest bucket */
} cd_wc_result_t;

/*
 * Fills *out with every rule's counts over its window closed at at_ms (a
 * multiple of the window resolution; the caller checks), read from w.
 * complete_ms: the instant up to which the agent's input is complete (the
 * HTTP API: its watermark, judged_until, minus windows.allowed_lateness:
 * until then an event stamped earlier may still arrive in time to count);
 * at_ms > complete_ms answers CD_WC_NOT_JUDGED. A window reaching before the
 * oldest retained bucket, checked after reading (the ring only moves
 * forward, so a read that passes the check saw every bucket whole), answers
 * CD_WC_GONE. out->oldest_ms is set whatever the answer. Any thread.
 */
cd_wc_result_t cd_window_counts(const cd_config_t *cfg, const cd_window_t *w, int64_t at_ms,
                                int64_t complete_ms, cd_window_counts_t *out);

#endif
