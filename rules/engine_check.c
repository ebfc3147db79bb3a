/*
 * engine_check.c - validation of the rules handed to cd_engine_new().
 *
 * The config loader validates the user's file with key paths; this is the
 * engine's own guard, so a rule that would make a verdict meaningless (a
 * type id outside the catalog, a negative window, a hysteresis band of 150 %)
 * is refused with a message instead of judged. Messages name the rule by
 * index and name, the field, the value and what is accepted.
 *
 * Pure, no allocation; thread-safe.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine_internal.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        int o_ = snprintf(err, errsize, "rules[%d] (\"%.*s\"): ", i, CD_NAME_MAX, r->name);        \
        if (o_ >= 0 && (size_t)o_ < errsize)                                                       \
            snprintf(err + o_, errsize - (size_t)o_, __VA_ARGS__);                                 \
        return false;                                                                              \
    } while (0)

static bool ids_ok(const int *ids, int n, int limit)
{
    for (int k = 0; k < n; k++)
        if (ids[k] < 0 || ids[k] >= limit) return false;
    return true;
}

static bool check_rule(const cd_rule_conf_t *r, int i, int ntypes, int nhists, char *err,
                       size_t errsize)
{
    if (memchr(r->name, '\0', sizeof r->name) == NULL || r->name[0] == '\0')
        FAIL("name is empty or not NUL-terminated within %d bytes", CD_NAME_MAX);
    if (memchr(r->description, '\0', sizeof r->description) == NULL)
        FAIL("description is not NUL-terminated within %zu bytes", sizeof r->description);
    if ((unsigned)r->kind > CD_RULE_SILENCE)
        FAIL("kind %d is unknown; accepted: threshold, relative, spike, flatline, percentile, "
             "silence",
             (int)r->kind);
    if (r->action != CD_ACTION_ROLLBACK && r->action != CD_ACTION_ALERT)
        FAIL("action %d is unknown; accepted: rollback, alert", (int)r->action);
    if ((unsigned)r->op > CD_OP_LE) FAIL("op %d is unknown; accepted: >, >=, <, <=", (int)r->op);
    if (r->window_ms <= 0) FAIL("window %lld ms must be > 0", (long long)r->window_ms);
    if (r->for_ms < 0 || r->resolve_for_ms < 0)
        FAIL("for %lld ms / resolve_for %lld ms must be >= 0", (long long)r->for_ms,
             (long long)r->resolve_for_ms);
    if (!(r->hysteresis >= 0.0 && r->hysteresis < 1.0))
        FAIL("hysteresis %g is outside [0, 1)", r->hysteresis);
    if (!isfinite(r->threshold) || !isfinite(r->factor) || !isfinite(r->floor) ||
        !(r->z >= 0.0 && isfinite(r->z)))
        FAIL("threshold %g, factor %g, floor %g must be finite and z %g finite and >= 0",
             r->threshold, r->factor, r->floor, r->z);
    const cd_signal_t *s = &r->signal;
    if (s->nnum < 0 || s->nnum > CD_MAX_SIGNAL_TYPES || s->nden < 0 ||
        s->nden > CD_MAX_SIGNAL_TYPES)
        FAIL("signal has %d numerator and %d denominator types; accepted: 0..%d each", s->nnum,
             s->nden, CD_MAX_SIGNAL_TYPES);
    if (!ids_ok(s->num, s->nnum, ntypes) || !ids_ok(s->den, s->nden, ntypes))
        FAIL("signal names a type id outside the catalog 0..%d", ntypes - 1);

    if (r->sequential) {
        if (r->kind != CD_RULE_THRESHOLD && r->kind != CD_RULE_RELATIVE)
            FAIL("sequential applies to threshold and relative rules, not %s",
                 cd_rule_kind_name(r->kind));
        if (s->nden == 0) FAIL("sequential needs a ratio signal (denominator types)");
        if (r->kind == CD_RULE_THRESHOLD && r->scope != CD_SCOPE_CANARY)
            FAIL("sequential tests the canary: scope must be canary");
        if (r->z > 0) FAIL("sequential replaces the Wilson bound: z must be 0");
        if (!(r->seq_h0 > 0.0 && r->seq_h0 < r->seq_h1 && isfinite(r->seq_h1)))
            FAIL("sequential h0 %g and h1 %g: accepted 0 < h0 < h1, finite", r->seq_h0,
                 r->seq_h1);
        if (!(r->seq_llr > 0.0 && isfinite(r->seq_llr)) ||
            !(r->seq_onset_llr >= 0.0 && isfinite(r->seq_onset_llr)))
            FAIL("sequential llr %g must be > 0 and onset_llr %g >= 0, both finite", r->seq_llr,
                 r->seq_onset_llr);
        if (!(r->seq_onset_h0 >= 0.0 && r->seq_onset_h0 < r->seq_h1))
            FAIL("sequential onset_h0 %g: accepted 0 (= h0) or 0 < onset_h0 < h1 %g",
                 r->seq_onset_h0, r->seq_h1);
    }

    switch (r->kind) {
    case CD_RULE_THRESHOLD:
    case CD_RULE_RELATIVE:
        if (s->nnum == 0)
            FAIL("a %s rule needs at least one numerator type", cd_rule_kind_name(r->kind));
        if (r->kind == CD_RULE_THRESHOLD && (unsigned)r->scope > CD_SCOPE_ANY)
            FAIL("scope %d is unknown; accepted: canary, stable, any", (int)r->scope);
        if (r->kind == CD_RULE_RELATIVE && r->has_baseline && !isfinite(r->baseline))
            FAIL("baseline %g must be finite", r->baseline);
        break;
    case CD_RULE_SPIKE:
        if (s->nnum == 0 || s->nden == 0)
            FAIL("a spike rule compares proportions: it needs numerator and denominator types");
        if (r->reference_ms < 0)
            FAIL("reference window %lld ms must be >= 0", (long long)r->reference_ms);
        break;
    case CD_RULE_FLATLINE:
        if (s->nden == 0) FAIL("a flatline rule needs traffic (denominator) types");
        if (r->nflat < 1 || r->nflat > CD_MAX_SIGNAL_TYPES ||
            !ids_ok(r->flat_types, r->nflat, ntypes))
            FAIL("needs 1..%d watched types inside the catalog 0..%d (has %d)", CD_MAX_SIGNAL_TYPES,
                 ntypes - 1, r->nflat);
        if (!(r->max_ratio >= 0.0 && isfinite(r->max_ratio)) ||
            !(r->min_expected >= 0.0 && isfinite(r->min_expected)))
            FAIL("max_ratio %g and min_expected %g must be finite and >= 0", r->max_ratio,
                 r->min_expected);
        break;
    case CD_RULE_PERCENTILE:
        if (r->hist < 0 || r->hist >= nhists)
            FAIL("histogram id %d is outside the numeric fields 0..%d", r->hist, nhists - 1);
        if (!(r->quantile >= 0.0 && r->quantile <= 1.0))
            FAIL("quantile %g is outside [0, 1]", r->quantile);
        break;
    case CD_RULE_SILENCE:
        if (s->nnum == 0 || s->nden != 0)
            FAIL("a silence rule needs traffic (numerator) types and no denominator");
        if (r->reference_ms <= 0)
            FAIL("reference window %lld ms must be > 0", (long long)r->reference_ms);
        if (!(r->max_ratio >= 0.0 && r->max_ratio < 1.0) ||
            !(r->min_expected > 0.0 && isfinite(r->min_expected)))
            FAIL("max_ratio %g must be in [0, 1) and min_expected %g finite and > 0", r->max_ratio,
                 r->min_expected);
        break;
    }
    return true;
}

bool cd_engine_check_conf(const cd_engine_conf_t *conf, char *err, size_t errsize)
{
    if (conf == NULL) {
        snprintf(err, errsize, "engine conf is NULL");
        return false;
    }
    if (conf->nrules < 0 || conf->nrules > CD_MAX_RULES || (conf->nrules > 0 && !conf->rules)) {
        snprintf(err, errsize, "nrules %d is outside 0..%d (or rules is NULL)", conf->nrules,
                 CD_MAX_RULES);
        return false;
    }
    if (conf->ntypes < 0 || conf->ntypes > CD_MAX_TYPES || conf->nhists < 0 ||
        conf->nhists > CD_MAX_NUMERIC) {
        snprintf(err, errsize, "ntypes %d / nhists %d outside 0..%d / 0..%d", conf->ntypes,
                 conf->nhists, CD_MAX_TYPES, CD_MAX_NUMERIC);
        return false;
    }
    if (conf->promote_after_ms < 0 || conf->alert_repeat_ms < 0) {
        snprintf(err, errsize,
                 "promote_after %lld ms / alert_repeat %lld ms must be >= 0 (0: default)",
                 (long long)conf->promote_after_ms, (long long)conf->alert_repeat_ms);
        return false;
    }
    for (int i = 0; i < conf->nrules; i++) {
        const cd_rule_conf_t *r = &conf->rules[i];
        if (!check_rule(r, i, conf->ntypes, conf->nhists, err, errsize)) return false;
        for (int j = 0; j < i; j++)
            if (strncmp(conf->rules[j].name, r->name, CD_NAME_MAX) == 0)
                FAIL("name is used by rules[%d] too; rule names must be unique", j);
    }
    return true;
}
