/*
 * verdict.h - what the rule engine decides, as plain data handed to sinks.
 *
 * Two kinds of record:
 *  - a verdict line (ANALYZING, HEALTHY, PROMOTE, ROLLBACK, ALERT), for the
 *    release as a whole or caused by one rule;
 *  - a state line: one rule moved between inactive / pending / firing /
 *    resolved.
 * Both carry the evidence: observed values and sample counts per cohort, the
 * threshold, window and `for`, and a sentence saying why.
 */
#ifndef CANARYD_VERDICT_H
#define CANARYD_VERDICT_H

#include <stdbool.h>
#include <stdint.h>

#include "canaryd/rule.h"

typedef enum cd_verdict_kind {
    CD_VERDICT_ANALYZING = 0, /* not enough data yet */
    CD_VERDICT_HEALTHY,       /* every rule has enough data, none firing */
    CD_VERDICT_PROMOTE,       /* healthy with enough samples for promote_after */
    CD_VERDICT_ROLLBACK,      /* a rollback rule fired: final for the release */
    CD_VERDICT_ALERT,         /* an alert rule fired */
} cd_verdict_kind_t;

typedef enum cd_rule_state {
    CD_STATE_INACTIVE = 0,
    CD_STATE_PENDING,
    CD_STATE_FIRING,
    CD_STATE_RESOLVED,
} cd_rule_state_t;

typedef enum cd_record_kind { CD_RECORD_VERDICT, CD_RECORD_STATE } cd_record_kind_t;

/* One cohort's evidence. For ratio signals value = numerator / denominator;
 * for counts value = numerator; for percentiles value = the quantile and
 * denominator = the number of observations. */
typedef struct cd_obs {
    bool valid; /* false: no data for this cohort */
    double value;
    uint64_t numerator;
    uint64_t denominator; /* = samples */
} cd_obs_t;

typedef struct cd_verdict {
    cd_record_kind_t record;
    int64_t time_ms;        /* event time of the decision */
    cd_verdict_kind_t verdict;   /* CD_RECORD_VERDICT */
    cd_rule_state_t from, to;    /* CD_RECORD_STATE */
    const char *rule;       /* rule name, NULL for release-wide verdicts; borrowed from the engine */
    const char *rule_kind;  /* "threshold", ... or NULL */
    cd_action_t action;     /* valid when rule != NULL */
    bool dry_run;
    const char *release;    /* canary version or "" when unknown; borrowed */
    /* the service judged (events.service, or learnt from the first canary
     * event); "" or NULL when unknown; borrowed. Set by the pipeline, not the
     * engine (which knows no service). */
    const char *service;
    cd_obs_t canary, stable;
    const char *stable_source; /* "stable" or "baseline" (relative rules), NULL otherwise */
    double threshold;       /* the value the canary was compared with, NaN if none */
    int64_t window_ms, for_ms;
    char reason[640];       /* one or two sentences, values and thresholds included */
    char todo[256];         /* what the procedure says to do, "" if nothing */
    /* Made while the live agent rebuilt its windows after a start, judging
     * history read back from Kafka in event time (live.c, "Catch-up"): a
     * decision it repeats may already have been delivered before the
     * restart. Set by the pipeline, not the engine; rendered as
     * "catchup":true in the JSON line (absent when false). */
    bool catchup;
} cd_verdict_t;

const char *cd_verdict_kind_name(cd_verdict_kind_t v); /* "ROLLBACK", ... */
const char *cd_rule_state_name(cd_rule_state_t s);     /* "pending", ... */

#endif
