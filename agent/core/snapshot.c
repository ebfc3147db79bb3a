/*
 * snapshot.c - fills a cd_snapshot_t from the pipeline on the evaluating
 * thread (see snapshot.h for why the HTTP API reads a copy). Plain copies:
 * the strings are copied, never borrowed from the engine, because the engine
 * rewrites its records at every evaluation.
 */
#include "canaryd/snapshot.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

bool cd_snapshot_fill(cd_snapshot_t *s, const cd_pipeline_t *p, int64_t now_ms)
{
    bool changed = false;
    cd_verdict_kind_t v = cd_pipeline_verdict(p);
    const char *rel = cd_pipeline_release(p);
    if (s->since_ms == 0 || v != s->verdict || strcmp(rel, s->release) != 0) {
        s->since_ms = now_ms;
        changed = true;
    }
    s->verdict = v;
    snprintf(s->release, sizeof(s->release), "%s", rel);
    snprintf(s->service, sizeof(s->service), "%s", cd_pipeline_service(p));
    s->service_configured = cd_pipeline_service_configured(p);
    s->time_ms = now_ms;

    int n = cd_pipeline_nrules(p);
    if (n > CD_MAX_RULES) n = CD_MAX_RULES;
    if (n != s->nrules) changed = true;
    s->nrules = n;
    for (int i = 0; i < n; i++) {
        cd_verdict_t last;
        cd_snapshot_rule_t *r = &s->rules[i];
        cd_rule_state_t st = cd_pipeline_rule_state(p, i, &last);
        if (st != r->state) changed = true;
        r->state = st;
        snprintf(r->name, sizeof(r->name), "%s", last.rule ? last.rule : "");
        r->action = last.action;
        r->dry_run = last.dry_run;
        r->quantile = last.rule_kind && strcmp(last.rule_kind, "percentile") == 0;
        r->observed_valid = last.canary.valid && isfinite(last.canary.value);
        r->observed = last.canary.value;
        r->threshold = last.threshold;
        r->samples = last.canary.denominator;
        snprintf(r->reason, sizeof(r->reason), "%s", last.reason);
    }
    cd_pipeline_stats(p, &s->stats);
    s->ntypes = cd_pipeline_ntypes(p);
    for (int t = 0; t < s->ntypes && t < CD_MAX_TYPES; t++)
        s->type_names[t] = cd_pipeline_type_name(p, t);
    return changed;
}

bool cd_snapshot_stale(const cd_snapshot_t *s, const cd_pipeline_t *p)
{
    if (s->since_ms == 0 || cd_pipeline_verdict(p) != s->verdict) return true;
    if (strcmp(cd_pipeline_release(p), s->release) != 0) return true;
    if (strcmp(cd_pipeline_service(p), s->service) != 0) return true;
    int n = cd_pipeline_nrules(p);
    if (n > CD_MAX_RULES) n = CD_MAX_RULES;
    if (n != s->nrules) return true;
    for (int i = 0; i < n; i++)
        if (cd_pipeline_rule_state(p, i, NULL) != s->rules[i].state) return true;
    return false;
}
