/*
 * rule_sample.h - what one rule saw at the last evaluation, as a few
 * numbers: the per-evaluation evidence charts draw (canaryd report, the
 * live status page, /api/v1/history).
 *
 * Why not cd_engine_rule_state(): that copies a whole record (~1 KB with
 * its reason sentence) and says nothing of the hysteresis band or whether
 * the rule was short of data; a chart needs ~60 bytes per rule per
 * evaluation, taken on the evaluating thread right after cd_engine_eval.
 * Pure: reads the engine's state, no I/O (rules/engine_sample.c).
 */
#ifndef CANARYD_RULE_SAMPLE_H
#define CANARYD_RULE_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>

#include "canaryd/engine.h"

typedef struct cd_rule_sample {
    cd_rule_state_t state; /* after the evaluation */
    bool insufficient;     /* short of samples: never a breach */
    bool breach;           /* the condition held at this evaluation */
    bool fleet;            /* SPIKE: the stable cohort spiked too (ALERT) */
    cd_obs_t canary, stable;
    double threshold; /* what the canary was compared with (max(factor x stable, floor), ...); NaN
                         if none */
    double compared;  /* the canary-side value compared (a Wilson bound, a quantile, ...); NaN if
                         none */
    /* The edge of the hysteresis band on the healthy side: once pending or
     * firing, the value must pass it to count as clear. NaN without a band. */
    double band;
} cd_rule_sample_t;

/* Rule i's evidence at the last cd_engine_eval (all NaN / invalid before
 * the first). false when i is out of range. Evaluating thread only. */
bool cd_engine_rule_sample(const cd_engine_t *e, int i, cd_rule_sample_t *out);

#endif
