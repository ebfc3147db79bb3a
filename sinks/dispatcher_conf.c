/*
 * dispatcher_conf.c - one entry of the "sinks" section: the keys every sink
 * takes (type, name, filter, retry, rate_limit, send_resolved; see
 * docs/sinks.md), then the sink's own init, which reads the rest.
 *
 * Every problem is reported with its key path, the value and what is
 * accepted; the sink's own keys are checked even when common ones are
 * wrong, so one run of check-config shows everything. Main thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatcher_internal.h"
#include "sink_util.h"

static const char *const VERDICT_NAMES[] = {"ANALYZING", "HEALTHY", "PROMOTE",
                                            "ROLLBACK",  "ALERT",   NULL};
static const char *const ACTION_NAMES[] = {"rollback", "alert", NULL};
static const char *const KIND_NAMES[] = {"verdict", "state", NULL};

static int name_index(const char *s, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

/* A list of names into a bit mask; rule names are checked against cfg. */
static bool parse_names(cd_diag_t *diag, const char *path, const json_t *v,
                        const char *const *names, const char *accepted, unsigned *mask)
{
    if (!json_is_array(v) || json_array_size(v) == 0) {
        cd_sconf_bad(diag, path, v, false, "is not a non-empty list", accepted);
        return false;
    }
    size_t i;
    json_t *x;
    bool ok = true;
    json_array_foreach(v, i, x)
    {
        int k = json_is_string(x) ? name_index(json_string_value(x), names) : -1;
        if (k < 0) {
            char p[256];
            snprintf(p, sizeof(p), "%s[%zu]", path, i);
            cd_sconf_bad(diag, p, x, false, "is not accepted", accepted);
            ok = false;
            continue;
        }
        *mask |= 1u << k;
    }
    return ok;
}

static bool parse_filter(cd_diag_t *diag, const char *path, const json_t *f, const cd_config_t *cfg,
                         filter_t *out)
{
    static const char *const KEYS[] = {"verdicts", "actions", "rules", "kinds", NULL};
    char p[256];
    bool ok = true;
    unsigned kinds = 0;

    out->kind_verdict = true;
    if (!f) return true;
    if (!json_is_object(f)) {
        cd_sconf_bad(diag, path, f, false, "is not an object",
                     "an object with the keys verdicts, actions, rules, kinds");
        return false;
    }
    ok &= cd_sconf_keys(diag, path, f, KEYS, false);
    json_t *v;
    if ((v = json_object_get(f, "verdicts"))) {
        cd_sconf_path(p, sizeof(p), path, "verdicts");
        ok &= parse_names(diag, p, v, VERDICT_NAMES,
                          "a list of \"ANALYZING\", \"HEALTHY\", \"PROMOTE\", \"ROLLBACK\", "
                          "\"ALERT\"",
                          &out->verdicts);
    }
    if ((v = json_object_get(f, "actions"))) {
        cd_sconf_path(p, sizeof(p), path, "actions");
        ok &= parse_names(diag, p, v, ACTION_NAMES, "a list of \"rollback\", \"alert\"",
                          &out->actions);
    }
    if ((v = json_object_get(f, "kinds"))) {
        cd_sconf_path(p, sizeof(p), path, "kinds");
        ok &= parse_names(diag, p, v, KIND_NAMES, "a list of \"verdict\", \"state\"", &kinds);
        out->kind_verdict = kinds & 1u;
        out->kind_state = kinds & 2u;
    }
    if ((v = json_object_get(f, "rules"))) {
        char acc[1024];
        size_t n = (size_t)snprintf(acc, sizeof(acc), "a list of rule names of this config (");
        for (int r = 0; cfg && r < cfg->nrules && n < sizeof(acc); r++)
            n += (size_t)snprintf(acc + n, sizeof(acc) - n, "%s%s", r ? ", " : "",
                                  cfg->rules[r].name);
        if (n < sizeof(acc)) snprintf(acc + n, sizeof(acc) - n, ")");
        cd_sconf_path(p, sizeof(p), path, "rules");
        if (!json_is_array(v) || json_array_size(v) == 0) {
            cd_sconf_bad(diag, p, v, false, "is not a non-empty list", acc);
            return false;
        }
        out->rules = calloc(json_array_size(v), sizeof(*out->rules));
        if (!out->rules) {
            cd_diag_add(diag, "%s: out of memory", p);
            return false;
        }
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            bool known = false;
            for (int r = 0; cfg && json_is_string(x) && r < cfg->nrules; r++)
                known |= strcmp(cfg->rules[r].name, json_string_value(x)) == 0;
            if (!known) {
                char q[300];
                snprintf(q, sizeof(q), "%s[%zu]", p, i);
                cd_sconf_bad(diag, q, x, false, "is not a rule of this config", acc);
                ok = false;
                continue;
            }
            snprintf(out->rules[out->nrules++], CD_NAME_MAX, "%s", json_string_value(x));
        }
    }
    return ok;
}

static bool parse_retry(cd_diag_t *diag, const char *path, const json_t *r, sink_t *s)
{
    static const char *const KEYS[] = {"base", "cap", "max_attempts", NULL};
    bool ok = true;
    double attempts = s->max_attempts;
    if (!r) return true;
    if (!json_is_object(r)) {
        cd_sconf_bad(diag, path, r, false, "is not an object",
                     "an object with the keys base, cap, max_attempts");
        return false;
    }
    ok &= cd_sconf_keys(diag, path, r, KEYS, false);
    ok &= cd_sconf_duration(diag, path, r, "base", 1, 3600000, &s->base_ms);
    ok &= cd_sconf_duration(diag, path, r, "cap", 1, 24 * 3600000LL, &s->cap_ms);
    bool num = cd_sconf_number(diag, path, r, "max_attempts", 1, 1000, &attempts);
    ok &= num;
    if (num && attempts != (int)attempts) {
        char p[256];
        cd_sconf_path(p, sizeof(p), path, "max_attempts");
        cd_sconf_bad(diag, p, json_object_get(r, "max_attempts"), false, "is not an integer",
                     "an integer from 1 to 1000");
        ok = false;
    }
    s->max_attempts = (int)attempts;
    if (ok && s->cap_ms < s->base_ms) {
        char p[256];
        cd_sconf_path(p, sizeof(p), path, "cap");
        cd_sconf_bad(diag, p, json_object_get(r, "cap"), false, "is below retry.base",
                     "a duration >= base");
        ok = false;
    }
    return ok;
}

void cd_dsp_sink_free(sink_t *s)
{
    if (!s) return;
    if (s->state && s->ops->destroy) s->ops->destroy(s->state);
    free(s->f.rules);
    free(s);
}

sink_t *cd_dsp_parse_entry(cd_dispatcher_t *d, const cd_config_t *cfg, const json_t *e,
                           const char *path, cd_diag_t *diag)
{
    char p[256];
    int before = diag->count;
    sink_t *s = NULL;
    if (!json_is_object(e)) {
        cd_sconf_bad(diag, path, e, false, "is not an object",
                     "an object with at least \"type\" (see docs/sinks.md)");
        return NULL;
    }
    json_t *t = json_object_get(e, "type");
    const struct cd_sink_ops *ops =
        json_is_string(t) ? cd_sink_ops_find(json_string_value(t)) : NULL;
    cd_sconf_path(p, sizeof(p), path, "type");
    if (!ops) {
        if (t)
            cd_sconf_bad(diag, p, t, false, "is not a sink type", cd_sink_types());
        else
            cd_diag_add(diag, "%s: missing; accepted: %s", p, cd_sink_types());
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        cd_diag_add(diag, "%s: out of memory", path);
        return NULL;
    }
    s->d = d;
    s->ops = ops;
    s->base_ms = 1000;
    s->cap_ms = 60000;
    s->max_attempts = 10;
    snprintf(s->type, sizeof(s->type), "%s", ops->name);
    s->local = strcmp(s->type, "log") == 0;
    snprintf(s->name, sizeof(s->name), "%s-%d", ops->name, d->nsinks);
    json_t *n = json_object_get(e, "name");
    if (n) {
        cd_sconf_path(p, sizeof(p), path, "name");
        if (!json_is_string(n) || json_string_length(n) == 0 || json_string_length(n) >= 64)
            cd_sconf_bad(diag, p, n, false, "is not a name", "a string of 1 to 63 bytes");
        else
            snprintf(s->name, sizeof(s->name), "%s", json_string_value(n));
        for (int i = 0; i < d->nsinks; i++)
            if (strcmp(d->sinks[i]->name, s->name) == 0)
                cd_sconf_bad(diag, p, n, false, "is the name of another sink",
                             "a name no other sink has");
    }
    cd_sconf_path(p, sizeof(p), path, "filter");
    parse_filter(diag, p, json_object_get(e, "filter"), cfg, &s->f);
    /* Alertmanager alerts are made from state records (a rule firing,
     * resolving): the default kinds there are state records only. */
    json_t *flt = json_object_get(e, "filter");
    if (strcmp(s->type, "alertmanager") == 0 &&
        !(json_is_object(flt) && json_object_get(flt, "kinds"))) {
        s->f.kind_state = true;
        s->f.kind_verdict = false;
    }
    cd_sconf_path(p, sizeof(p), path, "retry");
    parse_retry(diag, p, json_object_get(e, "retry"), s);
    /* Chat services limit incoming webhooks to about one message per second
     * (Slack documents it; Discord, Teams and Google Chat are similar). */
    json_t *fmt = json_object_get(e, "format");
    if (strcmp(s->type, "webhook") == 0 &&
        !(json_is_string(fmt) && (strcmp(json_string_value(fmt), "generic") == 0 ||
                                  strcmp(json_string_value(fmt), "alertmanager") == 0)))
        s->rate = 1;
    cd_sconf_number(diag, path, e, "rate_limit", 0, 1e6, &s->rate);
    /* Alertmanager must hear that an alert resolved, or it keeps it until
     * its resolve_timeout: on by default there. */
    s->send_resolved = strcmp(s->type, "alertmanager") == 0;
    s->beat_at = INT64_MAX;
    cd_sconf_bool(diag, path, e, "send_resolved", &s->send_resolved);
    /* the sink's own keys are checked even when common ones are wrong, so
     * one run of check-config shows every problem */
    int common_problems = diag->count - before;
    s->state = ops->init(e, path, diag);
    if (!s->state && diag->count == before)
        cd_diag_add(diag, "%s: the %s sink failed to start", path, s->type);
    if (!s->state || common_problems) goto err;
    s->tokens = s->rate > 1 ? s->rate : 1;
    s->tokens_at = cd_sink_now_ms();
    return s;
err:
    cd_dsp_sink_free(s);
    return NULL;
}
