/*
 * names.c - the stable spellings of canaryd's enums. These strings appear in
 * the verdict log, config files and metrics, so they are part of the public
 * contract: change them only with a migration note.
 */
#include "canaryd/common.h"
#include "canaryd/rule.h"
#include "canaryd/verdict.h"

const char *cd_cohort_name(cd_cohort_t c)
{
    return c == CD_COHORT_CANARY ? "canary" : "stable";
}

const char *cd_rule_kind_name(cd_rule_kind_t k)
{
    switch (k) {
    case CD_RULE_THRESHOLD: return "threshold";
    case CD_RULE_RELATIVE: return "relative";
    case CD_RULE_SPIKE: return "spike";
    case CD_RULE_FLATLINE: return "flatline";
    case CD_RULE_PERCENTILE: return "percentile";
    case CD_RULE_SILENCE: return "silence";
    }
    return "unknown";
}

const char *cd_action_name(cd_action_t a)
{
    return a == CD_ACTION_ROLLBACK ? "rollback" : "alert";
}

const char *cd_op_name(cd_op_t op)
{
    switch (op) {
    case CD_OP_GT: return ">";
    case CD_OP_GE: return ">=";
    case CD_OP_LT: return "<";
    case CD_OP_LE: return "<=";
    }
    return "?";
}

bool cd_op_holds(cd_op_t op, double lhs, double rhs)
{
    switch (op) {
    case CD_OP_GT: return lhs > rhs;
    case CD_OP_GE: return lhs >= rhs;
    case CD_OP_LT: return lhs < rhs;
    case CD_OP_LE: return lhs <= rhs;
    }
    return false;
}

const char *cd_verdict_kind_name(cd_verdict_kind_t v)
{
    switch (v) {
    case CD_VERDICT_ANALYZING: return "ANALYZING";
    case CD_VERDICT_HEALTHY: return "HEALTHY";
    case CD_VERDICT_PROMOTE: return "PROMOTE";
    case CD_VERDICT_ROLLBACK: return "ROLLBACK";
    case CD_VERDICT_ALERT: return "ALERT";
    }
    return "UNKNOWN";
}

const char *cd_rule_state_name(cd_rule_state_t s)
{
    switch (s) {
    case CD_STATE_INACTIVE: return "inactive";
    case CD_STATE_PENDING: return "pending";
    case CD_STATE_FIRING: return "firing";
    case CD_STATE_RESOLVED: return "resolved";
    }
    return "unknown";
}

bool cd_rule_judged_without_canary(const cd_rule_conf_t *r)
{
    switch (r->kind) {
    case CD_RULE_THRESHOLD:
        /* stable / any: the stable side alone is judged; canary: a count of
         * 0 is a valid observation unless a minimum is asked for. */
        if (r->scope != CD_SCOPE_CANARY) return true;
        return r->signal.nden == 0 && r->min_samples_canary == 0;
    case CD_RULE_RELATIVE:
        return r->signal.nden == 0 && r->min_samples_canary == 0;
    case CD_RULE_SPIKE:      /* a proportion needs attempts */
    case CD_RULE_FLATLINE:   /* needs canary traffic (at least 1) */
    case CD_RULE_PERCENTILE: /* a quantile of nothing is undefined */
    case CD_RULE_SILENCE:    /* needs canary traffic in its reference */
        return false;
    }
    return false;
}
