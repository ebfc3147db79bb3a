/*
 * rule.h - rule definitions (what the config loader produces and the rule
 * engine evaluates). Plain data, no behaviour; see engine.h.
 *
 * A signal is sum(numerator types) / sum(denominator types) over a window for
 * one cohort; with no denominator it is the plain count. Examples:
 *   error rate      = ERROR_OCCURRED / REQUEST_COMPLETED
 *   payment success = PAYMENT_COMPLETED / (PAYMENT_COMPLETED + PAYMENT_FAILED)
 *   audit failures  = AUDIT_LOG_FAILED (count)
 * A signal's "samples" are its denominator count (its count when it has none).
 */
#ifndef CANARYD_RULE_H
#define CANARYD_RULE_H

#include <stdbool.h>
#include <stdint.h>

#include "canaryd/common.h"

#define CD_MAX_SIGNAL_TYPES 8
#define CD_MAX_RULES 32
/* Largest look-back of a sequential rule, in buckets (window + for over the
 * resolution): its per-bucket increments live in a stack array that long. */
#define CD_SEQ_MAX_BUCKETS 4096

typedef enum cd_rule_kind {
    CD_RULE_THRESHOLD,  /* signal (op) constant */
    CD_RULE_RELATIVE,   /* canary signal (op) factor x stable signal (or baseline) */
    CD_RULE_SPIKE,      /* canary proportion significantly above stable's */
    CD_RULE_FLATLINE,   /* an event type flowing in stable, stopped in canary */
    CD_RULE_PERCENTILE, /* canary quantile (op) factor x stable quantile */
    CD_RULE_SILENCE,    /* the canary's traffic collapsed while stable's did not */
} cd_rule_kind_t;

typedef enum cd_action { CD_ACTION_ROLLBACK, CD_ACTION_ALERT } cd_action_t;

typedef enum cd_op { CD_OP_GT, CD_OP_GE, CD_OP_LT, CD_OP_LE } cd_op_t;

/* Which cohort a threshold rule looks at. ANY: fires if either does. */
typedef enum cd_scope { CD_SCOPE_CANARY, CD_SCOPE_STABLE, CD_SCOPE_ANY } cd_scope_t;

typedef struct cd_signal {
    int num[CD_MAX_SIGNAL_TYPES]; /* event type ids */
    int nnum;
    int den[CD_MAX_SIGNAL_TYPES];
    int nden; /* 0: the signal is the numerator count */
} cd_signal_t;

typedef struct cd_rule_conf {
    char name[CD_NAME_MAX];
    char description[256]; /* what the procedure says to do; shown in verdicts */
    cd_rule_kind_t kind;
    cd_action_t action;
    bool dry_run; /* evaluated and logged, but never changes the verdict */
    /* A guard acts when it fires, but its lack of data never holds the
     * release in ANALYZING nor breaks the promotion clock: emergency fast
     * paths (an outage, a silent canary) watch for the extreme on short
     * windows, and a quiet minute that leaves them blind is not a reason
     * to withhold HEALTHY when the other rules have their evidence. */
    bool guard;

    int64_t window_ms;      /* look-back of the signal */
    int64_t for_ms;         /* condition must hold continuously this long to fire (0: at once) */
    int64_t resolve_for_ms; /* condition must be clear this long to resolve */
    /* Hysteresis band as a fraction of the threshold: once pending or firing,
     * the condition only counts as clear when the value is beyond
     * threshold * (1 -/+ hysteresis) on the healthy side. 0: no band. */
    double hysteresis;
    uint64_t min_samples_canary; /* below either: "insufficient data", never fires */
    uint64_t min_samples_stable;

    cd_signal_t signal; /* all kinds but PERCENTILE */
    cd_op_t op;         /* THRESHOLD, RELATIVE, PERCENTILE */

    /* THRESHOLD */
    cd_scope_t scope;
    double threshold;
    /* THRESHOLD on a ratio signal, and SPIKE: significance. When > 0 a
     * threshold rule compares the one-sided Wilson score bound at this z
     * (upper bound for < / <=, lower for > / >=) instead of the point value,
     * so a 96 % success rate measured on 600 payments is not taken for < 95 %. */
    double z;

    /* RELATIVE, SPIKE, PERCENTILE: canary vs factor x stable */
    double factor;
    /* RELATIVE, PERCENTILE: the compared threshold is max(factor x stable,
     * floor), so 0 errors in stable does not make one canary error a 2x
     * regression. 0: no floor. */
    double floor;
    /* RELATIVE: stable value to use when stable has fewer than
     * min_samples_stable samples (from the baseline file). */
    bool has_baseline;
    double baseline;

    /* SPIKE: signal is a proportion (failures / attempts). Fires when the
     * canary's proportion is >= factor x stable's and a one-sided
     * two-proportion z-test gives z >= z (above). The stable cohort is itself
     * checked against its own preceding reference_ms: if stable spikes
     * (same test), it is fleet-wide user behaviour and the rule raises an
     * ALERT instead of its action. */
    int64_t reference_ms;

    /* FLATLINE: for each type in flat_types, the canary's expected count is
     * stable_count(type) / stable_traffic x canary_traffic, traffic being the
     * signal's denominator types. Fires when some type's canary count is at
     * most max_ratio x expected while expected >= min_expected. */
    int flat_types[CD_MAX_SIGNAL_TYPES];
    int nflat;
    double max_ratio;
    double min_expected;

    /* PERCENTILE */
    int hist;        /* numeric field id */
    double quantile; /* e.g. 0.99 */

    /* SILENCE: the traffic types are the signal's numerator (a count). The
     * canary's share of the traffic is measured over the reference_ms
     * before the window; expected = share x stable's traffic in the window.
     * Fires when the canary's traffic in the window is at most max_ratio x
     * expected while expected >= min_expected (reference_ms, max_ratio and
     * min_expected are the fields above). min_samples_canary: the canary's
     * traffic in the reference (it must have been talking);
     * min_samples_stable: stable's traffic in the window. */
    /* THRESHOLD (scope canary) and RELATIVE on a ratio signal: decide with a
     * sequential test instead of the window's value (rules/evidence_seq.c).
     * The "bad share" is the signal for > / >=, 1 - signal for < / <=; with
     * B the threshold's bad share, Page's CUSUM of the per-bucket canary
     * counts tests bad share seq_h0 x B (in control) against seq_h1 x B
     * over the last window + for, breaches at seq_llr, and `for` counts
     * from the estimated onset (margin seq_onset_llr) instead of from the
     * crossing. The onset is estimated with in-control share seq_onset_h0 x
     * B (0 = seq_h0): the rate before the change, e.g. a relative rule's
     * baseline (1 / factor), which locates the change more sharply than the
     * detection's h0. */
    bool sequential;
    double seq_h0, seq_h1; /* multiples of B: 0 < h0 < h1 */
    double seq_llr;        /* decision threshold, nats (> 0) */
    double seq_onset_llr;  /* onset margin, nats (>= 0) */
    double seq_onset_h0;   /* onset's in-control multiple of B: 0 < it < h1; 0 = seq_h0 */
} cd_rule_conf_t;

const char *cd_rule_kind_name(cd_rule_kind_t k); /* "threshold", ... */
const char *cd_action_name(cd_action_t a);       /* "rollback", "alert" */
const char *cd_op_name(cd_op_t op);              /* ">", ">=", "<", "<=" */
bool cd_op_holds(cd_op_t op, double lhs, double rhs);

/*
 * Can rule r be judged (not "insufficient data") when the canary has sent
 * nothing? True for counts with min_samples.canary 0 (0 is a valid count)
 * and for threshold rules scoped to stable or any. A rule set where every
 * non-dry-run rule can is one a silent canary passes (check-config warns).
 */
bool cd_rule_judged_without_canary(const cd_rule_conf_t *r);

#endif
