/*
 * history.h - the per-rule series charts draw: for every rule, one point per
 * second of evaluation (canary and stable values, the threshold as the rule
 * computed it, the hysteresis band, sample counts, state, the release's
 * verdict), and the records (state changes, verdicts) as marks.
 *
 * Used by `canaryd report` (unbounded: the whole stream) and by the live
 * agent (a bounded ring, the last `capacity` seconds) for the status page
 * and GET /api/v1/history.
 *
 * Threading: cd_history_sample / _record on the evaluating thread (the
 * pipeline's eval hook and record callback); cd_history_copy from any
 * thread (HTTP handlers). One mutex guards the rings; the writer holds it
 * for one point per rule once per evaluation and never allocates in the
 * bounded mode; readers hold it only to copy out what they asked for.
 */
#ifndef CANARYD_HISTORY_H
#define CANARYD_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canaryd/pipeline.h"
#include "canaryd/rule.h"
#include "canaryd/verdict.h"

/* CD_HP_EDGE: the point starts a run of its state (its time is the
 * evaluation that changed it, not the last one of its second). */
enum { CD_HP_INSUFFICIENT = 1, CD_HP_BREACH = 2, CD_HP_FLEET = 4, CD_HP_EDGE = 8 };

/* One rule at one second. Values are NaN when the cohort had no data (or
 * the rule has no such value). float: a chart needs no more, and it halves
 * the ring. */
typedef struct cd_history_point {
    int64_t t_ms; /* evaluation time: the last in its second, or the first in a new state */
    float canary, stable;
    float threshold;             /* what the canary was compared with */
    float band;                  /* hysteresis band edge (healthy side), NaN without one */
    float compared;              /* canary-side value compared (e.g. a Wilson bound), NaN if none */
    uint32_t canary_n, stable_n; /* samples (denominators / observations), saturating */
    uint8_t state;               /* cd_rule_state_t */
    uint8_t flags;               /* CD_HP_* */
    uint8_t verdict;             /* the release's cd_verdict_kind_t after the evaluation */
} cd_history_point_t;

/* A record: a rule's state change or verdict, or a release-wide verdict. */
typedef struct cd_history_mark {
    int64_t t_ms;
    int rule;       /* rule index, -1 for release-wide records */
    uint8_t record; /* cd_record_kind_t */
    uint8_t verdict, from, to;
    char reason[640];
} cd_history_mark_t;

/* The release's verdict from t_ms on (a change; the timeline's segments). */
typedef struct cd_history_verdict {
    int64_t t_ms;
    int verdict; /* cd_verdict_kind_t */
} cd_history_verdict_t;

/* A copy for rendering; owns its arrays (cd_history_view_free). */
typedef struct cd_history_view {
    int nrules;
    const cd_rule_conf_t *rules; /* borrowed from the history's owner (the config) */
    cd_history_point_t **points; /* [nrules][npoints[i]], oldest first */
    size_t *npoints;
    cd_history_mark_t *marks; /* oldest first */
    size_t nmarks;
    cd_history_verdict_t *verdicts; /* changes, oldest first; the first one may be before since */
    size_t nverdicts;
    char release[128];
    int64_t first_ms, last_ms; /* span of the points (0 when none) */
} cd_history_view_t;

typedef struct cd_history cd_history_t;

/*
 * rules: borrowed, must outlive the history (the config's). seconds: points
 * kept per rule (0 = unbounded, growing). marks: records kept (0 = unbounded).
 * NULL when out of memory.
 */
cd_history_t *cd_history_new(const cd_rule_conf_t *rules, int nrules, size_t seconds, size_t marks);
void cd_history_destroy(cd_history_t *h);

/* The pipeline's eval hook (cd_pipeline_set_eval_hook with h as opaque):
 * samples every rule at boundary b. A second boundary in the same second
 * replaces that second's point (live evaluates up to 100 times a second). */
void cd_history_sample(cd_pipeline_t *p, int64_t b, void *h);

/* Keeps record v as a mark (call from the record callback). */
void cd_history_record(cd_history_t *h, const cd_verdict_t *v);

/* For histories rebuilt from a verdict log (no evaluations to sample):
 * adds rule i's point (times must not decrease per rule), a release
 * verdict change at t_ms, and the release's name. Evaluating thread. */
void cd_history_add_point(cd_history_t *h, int i, const cd_history_point_t *pt);
void cd_history_set_verdict(cd_history_t *h, int64_t t_ms, cd_verdict_kind_t v);
void cd_history_set_release(cd_history_t *h, const char *release);

/* Copies the points and marks with t_ms > since_ms (INT64_MIN: all) into
 * *out. false when out of memory (*out is then empty). Any thread. */
bool cd_history_copy(cd_history_t *h, int64_t since_ms, cd_history_view_t *out);
void cd_history_view_free(cd_history_view_t *v);

#endif
