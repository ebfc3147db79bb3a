/*
 * engine_sample.c - cd_engine_rule_sample (include/canaryd/rule_sample.h):
 * a rule's last evidence as plain numbers, for charts.
 *
 * Reads rule_rt_t.ev, which cd_engine_eval refreshes for every rule at every
 * evaluation, so nothing is added to the evaluation itself: a caller that
 * does not chart pays nothing. The band is computed here from the rule's
 * hysteresis exactly as cd_evidence_is_clear() applies it (threshold x
 * (1 - h) for > / >=, x (1 + h) for < / <=); spike and flatline rules
 * have none. Evaluating thread only.
 */
#include <math.h>
#include <string.h>

#include "canaryd/rule_sample.h"
#include "engine_internal.h"

bool cd_engine_rule_sample(const cd_engine_t *e, int i, cd_rule_sample_t *out)
{
    memset(out, 0, sizeof *out);
    out->threshold = out->compared = out->band = NAN;
    if (e == NULL || i < 0 || i >= e->nrules) return false;
    const rule_rt_t *rt = &e->rules[i];
    out->state = rt->state;
    if (rt->ev.what[0] == '\0') return true; /* never evaluated: zeroed evidence is no reading */
    out->insufficient = rt->ev.insufficient;
    out->breach = rt->ev.breach;
    out->fleet = rt->ev.fleet;
    out->canary = rt->ev.canary;
    out->stable = rt->ev.stable;
    out->threshold = rt->ev.threshold;
    out->compared = rt->ev.compared;
    double h = rt->conf.hysteresis;
    /* spike and flatline rules have no band (evidence_spike.c): clear == !breach */
    bool banded = rt->conf.kind != CD_RULE_SPIKE && rt->conf.kind != CD_RULE_FLATLINE;
    if (banded && h > 0 && isfinite(out->threshold)) {
        /* a silence rule breaches at or below its threshold whatever its op
         * (evidence_silence.c), so its band lies above it */
        bool up = rt->conf.kind != CD_RULE_SILENCE &&
                  (rt->conf.op == CD_OP_GT || rt->conf.op == CD_OP_GE);
        out->band = out->threshold * (up ? 1 - h : 1 + h);
    }
    return true;
}
