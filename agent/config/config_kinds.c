/*
 * config_kinds.c - the keys particular to each rule kind (threshold,
 * relative, spike, flatline, percentile, silence) and the event type lists that make
 * a rule's signal. config_rules.c has already checked which keys the kind
 * takes; here each one is parsed, defaulted and sanity-checked.
 *
 * Sanity checks are the ones that catch real mistakes: a ratio threshold
 * above 1 when the signal is a proportion (95 meant as 95 %), z on a plain
 * count (it only means something on a ratio), a percentile of a numeric
 * field that is not declared. Start-up only, single-threaded.
 */
#include <math.h>
#include <string.h>

#include "config_internal.h"

static const char *const OPS[] = {">", ">=", "<", "<=", NULL};
static const char *const SCOPES[] = {"canary", "stable", "any", NULL};

#define TYPES_ACCEPTED "an array of 1 to 8 event type names such as [\"ERROR_OCCURRED\"]"

/* A list of 1..8 distinct type names, interned into the catalog. */
static void types_array(cd_cfgctx_t *x, const char *p, const json_t *v, int *ids, int *n)
{
    char ep[CD_CFG_PATH_MAX], name[CD_NAME_MAX];
    size_t i;
    json_t *e;

    if (!json_is_array(v)) {
        cd_cfg_bad(x, p, v, "is not an array", TYPES_ACCEPTED);
        return;
    }
    size_t size = json_array_size(v);
    if (size == 0 || size > CD_MAX_SIGNAL_TYPES) {
        cd_cfg_bad(x, p, v, size ? "has more than 8 types" : "is empty", TYPES_ACCEPTED);
        return;
    }
    json_array_foreach(v, i, e)
    {
        cd_cfg_path_index(ep, sizeof(ep), p, i);
        if (!cd_cfg_string(x, ep, e, name, sizeof(name), false,
                           "an event type name such as \"ERROR_OCCURRED\""))
            continue;
        int id = cd_cfg_type_intern(x, ep, e, name);
        if (id < 0) continue;
        bool dup = false;
        for (int j = 0; j < *n; j++)
            dup = dup || ids[j] == id;
        if (dup) {
            cd_cfg_bad(x, ep, e, "is listed twice", "each type once per list");
            continue;
        }
        ids[(*n)++] = id;
    }
}

static void req_types(cd_cfgctx_t *x, const char *path, const json_t *r, const char *key, int kind,
                      int *ids, int *n)
{
    char p[CD_CFG_PATH_MAX];
    json_t *v = cd_cfg_need(x, path, r, key, kind, TYPES_ACCEPTED);
    if (!v) return;
    cd_cfg_subpath(p, sizeof(p), path, key);
    types_array(x, p, v, ids, n);
}

static void opt_types(cd_cfgctx_t *x, const char *path, const json_t *r, const char *key, int *ids,
                      int *n)
{
    char p[CD_CFG_PATH_MAX];
    json_t *v = json_object_get(r, key);
    if (!v) return;
    cd_cfg_subpath(p, sizeof(p), path, key);
    types_array(x, p, v, ids, n);
}

static void req_op(cd_cfgctx_t *x, const char *path, const json_t *r, int kind, cd_op_t *op)
{
    char p[CD_CFG_PATH_MAX];
    json_t *v = cd_cfg_need(x, path, r, "op", kind, ">, >=, <, <=");
    if (!v) return;
    cd_cfg_subpath(p, sizeof(p), path, "op");
    int i = cd_cfg_enum(x, p, v, "an operator", OPS);
    if (i >= 0) *op = (cd_op_t)i;
}

/* True when the signal is a proportion: every numerator type is counted in
 * the denominator too, so the value cannot leave [0, 1]. */
static bool is_proportion(const cd_signal_t *s)
{
    if (s->nden == 0 || s->nnum == 0) return false;
    for (int i = 0; i < s->nnum; i++) {
        bool found = false;
        for (int j = 0; j < s->nden; j++)
            found = found || s->num[i] == s->den[j];
        if (!found) return false;
    }
    return true;
}

/* Defaults of "sequential" (also what `"sequential": true` means). */
#define SEQ_H0 0.7
#define SEQ_H1 2.0
#define SEQ_LLR 9.0
#define SEQ_ONSET_LLR 2.0
#define SEQ_ACCEPTED                                                                               \
    "true, false, or an object with any of h0 (in (0, 1], default 0.7), h1 (> h0, default 2), "    \
    "llr (> 0, default 9), onset_llr (>= 0, default 2), onset_h0 (in (0, h1), default h0)"
static const char *const SEQ_KEYS[] = {"h0", "h1", "llr", "onset_llr", "onset_h0", NULL};

/* "sequential": true / false / {h0, h1, llr, onset_llr, onset_h0}. Called after the
 * kind's other keys, so the signal, op, scope and z are known. */
static void parse_sequential(cd_cfgctx_t *x, const char *path, const json_t *r, cd_rule_conf_t *rc)
{
    char p[CD_CFG_PATH_MAX], acc[160];
    json_t *v = json_object_get(r, "sequential");
    if (!v) return;
    cd_cfg_subpath(p, sizeof(p), path, "sequential");
    rc->seq_h0 = SEQ_H0;
    rc->seq_h1 = SEQ_H1;
    rc->seq_llr = SEQ_LLR;
    rc->seq_onset_llr = SEQ_ONSET_LLR;
    if (json_is_boolean(v)) {
        rc->sequential = json_is_true(v);
    } else if (json_is_object(v)) {
        rc->sequential = true;
        cd_cfg_check_keys(x, p, v, SEQ_KEYS);
        cd_cfg_opt_number(x, p, v, "h0", 0, true, 1, false, &rc->seq_h0);
        cd_cfg_opt_number(x, p, v, "h1", 0, true, NAN, false, &rc->seq_h1);
        cd_cfg_opt_number(x, p, v, "llr", 0, true, NAN, false, &rc->seq_llr);
        cd_cfg_opt_number(x, p, v, "onset_llr", 0, false, NAN, false, &rc->seq_onset_llr);
        rc->seq_onset_h0 = rc->seq_h0;
        cd_cfg_opt_number(x, p, v, "onset_h0", 0, true, NAN, false, &rc->seq_onset_h0);
        json_t *h1 = json_object_get(v, "h1");
        if (rc->seq_h1 <= rc->seq_h0) {
            char hp[CD_CFG_PATH_MAX];
            cd_cfg_subpath(hp, sizeof(hp), p, h1 ? "h1" : "h0");
            snprintf(acc, sizeof(acc), "h1 > h0 (here h0 %g, h1 %g): the tested bad share above "
                     "the in-control one", rc->seq_h0, rc->seq_h1);
            cd_cfg_bad(x, hp, h1 ? h1 : json_object_get(v, "h0"), "is not above h0", acc);
        } else if (rc->seq_onset_h0 >= rc->seq_h1) {
            char hp[CD_CFG_PATH_MAX];
            cd_cfg_subpath(hp, sizeof(hp), p, "onset_h0");
            snprintf(acc, sizeof(acc), "onset_h0 < h1 (here h1 %g): the share before the onset "
                     "below the tested one", rc->seq_h1);
            cd_cfg_bad(x, hp, json_object_get(v, "onset_h0"), "is not below h1", acc);
        }
    } else {
        cd_cfg_bad(x, p, v, "is not a boolean or an object", SEQ_ACCEPTED);
        return;
    }
    if (!rc->sequential) return;
    /* What the test needs: Bernoulli counts of the canary. */
    if (rc->signal.nden == 0)
        cd_cfg_bad(x, p, v, "needs a denominator",
                   "sequential only on a ratio signal (with \"denominator\"): it tests the share "
                   "of bad events per trial");
    else if ((rc->op == CD_OP_LT || rc->op == CD_OP_LE) && !is_proportion(&rc->signal))
        cd_cfg_bad(x, p, v, "needs a proportion with op < / <=",
                   "every numerator type also in the denominator, so that 1 - signal is the "
                   "share of bad events");
    if (rc->kind == CD_RULE_THRESHOLD || json_object_get(r, "scope")) {
        if (json_object_get(r, "scope") && rc->scope != CD_SCOPE_CANARY)
            cd_cfg_bad(x, p, v, "needs scope canary",
                       "scope \"canary\" (the default): the test is on the canary's counts");
        if (json_object_get(r, "z"))
            cd_cfg_bad(x, p, v, "and z together",
                       "one of them: the sequential test replaces the Wilson bound (remove z)");
    }
    if (x->resolution_ok) {
        int64_t buckets = (rc->window_ms + rc->for_ms) / x->c->resolution_ms;
        if (buckets > CD_SEQ_MAX_BUCKETS) {
            snprintf(acc, sizeof(acc),
                     "window + for at most %d buckets of windows.resolution (%lldms); this rule "
                     "looks back %lld",
                     CD_SEQ_MAX_BUCKETS, (long long)x->c->resolution_ms, (long long)buckets);
            cd_cfg_bad(x, p, v, "looks back too far", acc);
        }
    }
}

static void parse_threshold(cd_cfgctx_t *x, const char *path, const json_t *r, cd_rule_conf_t *rc)
{
    char p[CD_CFG_PATH_MAX];
    json_t *v;
    int kind = CD_RULE_THRESHOLD;

    req_types(x, path, r, "numerator", kind, rc->signal.num, &rc->signal.nnum);
    opt_types(x, path, r, "denominator", rc->signal.den, &rc->signal.nden);
    req_op(x, path, r, kind, &rc->op);
    if ((v = cd_cfg_need(x, path, r, "threshold", kind, "a number >= 0"))) {
        cd_cfg_subpath(p, sizeof(p), path, "threshold");
        if (cd_cfg_number(x, p, v, 0, false, NAN, false, &rc->threshold) &&
            is_proportion(&rc->signal) && rc->threshold > 1)
            cd_cfg_bad(x, p, v, "is above 1",
                       "a number in [0, 1]: every numerator type is also in the denominator, "
                       "so the signal is a proportion");
    }
    if ((v = json_object_get(r, "scope"))) {
        cd_cfg_subpath(p, sizeof(p), path, "scope");
        int i = cd_cfg_enum(x, p, v, "a scope", SCOPES);
        if (i >= 0) rc->scope = (cd_scope_t)i;
    }
    if ((v = json_object_get(r, "z"))) {
        cd_cfg_subpath(p, sizeof(p), path, "z");
        if (!json_object_get(r, "denominator"))
            cd_cfg_bad(x, p, v, "needs a denominator",
                       "z only on a ratio signal (with \"denominator\"); leave it out on counts");
        else
            cd_cfg_number(x, p, v, 0, false, NAN, false, &rc->z);
    }
    rc->kind = CD_RULE_THRESHOLD;
    parse_sequential(x, path, r, rc);
}

static void parse_relative(cd_cfgctx_t *x, const char *path, const json_t *r, cd_rule_conf_t *rc)
{
    int kind = CD_RULE_RELATIVE;
    req_types(x, path, r, "numerator", kind, rc->signal.num, &rc->signal.nnum);
    opt_types(x, path, r, "denominator", rc->signal.den, &rc->signal.nden);
    req_op(x, path, r, kind, &rc->op);
    cd_cfg_req_number(x, path, r, "factor", kind, 0, true, "a number > 0", &rc->factor);
    cd_cfg_opt_number(x, path, r, "floor", 0, false, NAN, false, &rc->floor);
    rc->kind = CD_RULE_RELATIVE;
    parse_sequential(x, path, r, rc);
}

static void parse_spike(cd_cfgctx_t *x, const char *path, const json_t *r, cd_rule_conf_t *rc)
{
    char p[CD_CFG_PATH_MAX];
    int kind = CD_RULE_SPIKE;
    json_t *v;

    rc->z = 3.0;
    rc->reference_ms = 10 * 60000;
    req_types(x, path, r, "numerator", kind, rc->signal.num, &rc->signal.nnum);
    req_types(x, path, r, "denominator", kind, rc->signal.den, &rc->signal.nden);
    cd_cfg_req_number(x, path, r, "factor", kind, 0, true, "a number > 0", &rc->factor);
    cd_cfg_opt_number(x, path, r, "z", 0, true, NAN, false, &rc->z);
    if ((v = json_object_get(r, "reference_window"))) {
        cd_cfg_subpath(p, sizeof(p), path, "reference_window");
        cd_cfg_lookback(x, p, v, 6 * 3600000LL, "6h", &rc->reference_ms);
    }
}

static void parse_flatline(cd_cfgctx_t *x, const char *path, const json_t *r, cd_rule_conf_t *rc)
{
    int kind = CD_RULE_FLATLINE;
    rc->max_ratio = 0.1;
    rc->min_expected = 20;
    req_types(x, path, r, "events", kind, rc->flat_types, &rc->nflat);
    req_types(x, path, r, "traffic", kind, rc->signal.den, &rc->signal.nden);
    cd_cfg_opt_number(x, path, r, "max_ratio", 0, false, 1, true, &rc->max_ratio);
    cd_cfg_opt_number(x, path, r, "min_expected", 0, true, NAN, false, &rc->min_expected);
}

/* silence: traffic is a count (the signal's numerator); the reference
 * precedes the window (rules/evidence_silence.c). */
static void parse_silence(cd_cfgctx_t *x, const char *path, const json_t *r, cd_rule_conf_t *rc)
{
    char p[CD_CFG_PATH_MAX];
    int kind = CD_RULE_SILENCE;
    json_t *v;

    rc->reference_ms = 5 * 60000;
    rc->max_ratio = 0.1;
    rc->min_expected = 30;
    req_types(x, path, r, "traffic", kind, rc->signal.num, &rc->signal.nnum);
    if ((v = json_object_get(r, "reference_window"))) {
        cd_cfg_subpath(p, sizeof(p), path, "reference_window");
        cd_cfg_lookback(x, p, v, 6 * 3600000LL, "6h", &rc->reference_ms);
    }
    cd_cfg_opt_number(x, path, r, "max_ratio", 0, false, 1, true, &rc->max_ratio);
    cd_cfg_opt_number(x, path, r, "min_expected", 0, true, NAN, false, &rc->min_expected);
}

static void parse_percentile(cd_cfgctx_t *x, const char *path, const json_t *r, cd_rule_conf_t *rc)
{
    char p[CD_CFG_PATH_MAX], list[512];
    int kind = CD_RULE_PERCENTILE;
    const cd_config_t *c = x->c;
    json_t *v;

    const char *names[CD_MAX_NUMERIC + 1];
    for (int i = 0; i < c->decode.nnumeric; i++)
        names[i] = c->numeric_names[i];
    names[c->decode.nnumeric] = NULL;
    cd_cfg_join(list, sizeof(list), names);
    char acc[600];
    snprintf(acc, sizeof(acc), "a name from events.numeric_fields (%s)",
             c->decode.nnumeric ? list : "none defined");

    if ((v = cd_cfg_need(x, path, r, "field", kind, acc))) {
        cd_cfg_subpath(p, sizeof(p), path, "field");
        rc->hist = -1;
        for (int i = 0; json_is_string(v) && i < c->decode.nnumeric; i++)
            if (strcmp(json_string_value(v), c->numeric_names[i]) == 0) rc->hist = i;
        if (rc->hist < 0) {
            cd_cfg_bad(x, p, v, "is not a numeric field", acc);
            rc->hist = 0;
        }
    }
    if ((v = cd_cfg_need(x, path, r, "quantile", kind, "a number in (0, 1)"))) {
        cd_cfg_subpath(p, sizeof(p), path, "quantile");
        cd_cfg_number(x, p, v, 0, true, 1, true, &rc->quantile);
    }
    req_op(x, path, r, kind, &rc->op);
    cd_cfg_req_number(x, path, r, "factor", kind, 0, true, "a number > 0", &rc->factor);
    cd_cfg_opt_number(x, path, r, "floor", 0, false, NAN, false, &rc->floor);
}

void cd_cfg_parse_kind(cd_cfgctx_t *x, const char *path, const json_t *r, int kind,
                       cd_rule_conf_t *rc)
{
    switch (kind) {
    case CD_RULE_THRESHOLD:
        parse_threshold(x, path, r, rc);
        break;
    case CD_RULE_RELATIVE:
        parse_relative(x, path, r, rc);
        break;
    case CD_RULE_SPIKE:
        parse_spike(x, path, r, rc);
        break;
    case CD_RULE_FLATLINE:
        parse_flatline(x, path, r, rc);
        break;
    case CD_RULE_PERCENTILE:
        parse_percentile(x, path, r, rc);
        break;
    case CD_RULE_SILENCE:
        parse_silence(x, path, r, rc);
        break;
    default:
        CD_ASSERT(!"rule kind out of range");
    }
}
