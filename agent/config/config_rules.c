/*
 * config_rules.c - the "rules" array: one cd_rule_conf_t per object.
 *
 * Keys are of two sorts: common keys every kind takes, and kind keys listed
 * in KIND_KEYS with the kinds that take them. A key of the wrong kind gets
 * its own message ("key applies to kinds relative, spike, percentile, not
 * threshold") because it is the likeliest mistake when a rule is copied and
 * its kind changed; an unknown key lists exactly the keys of the rule's kind.
 *
 * Type names resolve to catalog ids as they are met, so the catalog is
 * events.types followed by the types rules name, in first-seen order.
 * Fields a kind does not use stay zero (hist too: it is meaningful only for
 * percentile rules). Start-up only, single-threaded.
 */
#include <math.h>
#include <string.h>

#include "config_internal.h"

#define K(kind) (1u << (kind))
#define THR K(CD_RULE_THRESHOLD)
#define REL K(CD_RULE_RELATIVE)
#define SPK K(CD_RULE_SPIKE)
#define FLT K(CD_RULE_FLATLINE)
#define PCT K(CD_RULE_PERCENTILE)
#define SIL K(CD_RULE_SILENCE)

static const char *const KINDS[] = {"threshold",  "relative", "spike", "flatline",
                                    "percentile", "silence",  NULL};
static const char *const ACTIONS[] = {"rollback", "alert", NULL};
static const char *const MIN_SAMPLES_KEYS[] = {"canary", "stable", NULL};

static const char *const COMMON_KEYS[] = {"name",        "kind",       "description", "window",
                                          "for",         "resolve_for", "hysteresis", "min_samples",
                                          "action",      "dry_run",    "guard",       NULL};
static const struct {
    const char *key;
    unsigned kinds;
} KIND_KEYS[] = {
    {"numerator", THR | REL | SPK},
    {"denominator", THR | REL | SPK},
    {"op", THR | REL | PCT},
    {"threshold", THR},
    {"scope", THR},
    {"z", THR | SPK},
    {"factor", REL | SPK | PCT},
    {"floor", REL | PCT},
    {"reference_window", SPK | SIL},
    {"events", FLT},
    {"traffic", FLT | SIL},
    {"max_ratio", FLT | SIL},
    {"min_expected", FLT | SIL},
    {"field", PCT},
    {"quantile", PCT},
    {"sequential", THR | REL},
};
#define NKIND_KEYS (int)(sizeof(KIND_KEYS) / sizeof(KIND_KEYS[0]))

#define NAME_ACCEPTED "1 to 63 characters from a-z, 0-9, \"_\" and \"-\""

/* "name, kind, ..., floor": the keys a rule of this kind (-1: any) takes. */
static void known_keys(char *buf, size_t size, int kind)
{
    const char *list[32];
    int n = 0;
    for (int i = 0; COMMON_KEYS[i]; i++)
        list[n++] = COMMON_KEYS[i];
    for (int i = 0; i < NKIND_KEYS; i++)
        if (kind < 0 || (KIND_KEYS[i].kinds & K(kind))) list[n++] = KIND_KEYS[i].key;
    list[n] = NULL;
    cd_cfg_join(buf, size, list);
}

static void check_rule_keys(cd_cfgctx_t *x, const char *path, const json_t *r, int kind)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)r, key, v)
    {
        bool common = false;
        for (int i = 0; COMMON_KEYS[i] && !common; i++)
            common = strcmp(key, COMMON_KEYS[i]) == 0;
        if (common) continue;
        int k = 0;
        while (k < NKIND_KEYS && strcmp(key, KIND_KEYS[k].key) != 0)
            k++;
        if (k < NKIND_KEYS) {
            if (kind < 0 || (KIND_KEYS[k].kinds & K(kind))) continue;
            const char *takers[8];
            int n = 0;
            for (int j = 0; KINDS[j]; j++)
                if (KIND_KEYS[k].kinds & K(j)) takers[n++] = KINDS[j];
            takers[n] = NULL;
            char list[128];
            cd_cfg_join(list, sizeof(list), takers);
            cd_diag_add(x->d, "%s.%s: key applies to kind%s %s, not %s", path, key,
                        n > 1 ? "s" : "", list, KINDS[kind]);
            continue;
        }
        char r_key[CD_CFG_VALUE_MAX + 8], list[512];
        cd_cfg_render_str(key, r_key, sizeof(r_key));
        known_keys(list, sizeof(list), kind);
        if (kind >= 0)
            cd_diag_add(x->d, "%s: unknown key %s; known keys for kind %s: %s", path, r_key,
                        KINDS[kind], list);
        else
            cd_diag_add(x->d, "%s: unknown key %s; known keys: %s", path, r_key, list);
    }
}

static void parse_min_samples(cd_cfgctx_t *x, const char *path, const json_t *v, cd_rule_conf_t *rc)
{
    char p[CD_CFG_PATH_MAX];
    if (!cd_cfg_object(x, path, v, "an object such as {\"canary\": 500, \"stable\": 2000}")) return;
    cd_cfg_check_keys(x, path, v, MIN_SAMPLES_KEYS);
    for (int i = 0; i < 2; i++) {
        json_t *e = json_object_get(v, MIN_SAMPLES_KEYS[i]);
        if (!e) continue;
        cd_cfg_subpath(p, sizeof(p), path, MIN_SAMPLES_KEYS[i]);
        if (!json_is_integer(e) || json_integer_value(e) < 0) {
            cd_cfg_bad(x, p, e, json_is_integer(e) ? "is negative" : "is not an integer",
                       "an integer >= 0");
            continue;
        }
        uint64_t n = (uint64_t)json_integer_value(e);
        if (i == 0)
            rc->min_samples_canary = n;
        else
            rc->min_samples_stable = n;
    }
}

static bool valid_rule_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= CD_NAME_MAX) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return false;
    return true;
}

static void parse_name(cd_cfgctx_t *x, const char *path, const json_t *r, int idx,
                       cd_rule_conf_t *rc)
{
    char p[CD_CFG_PATH_MAX];
    json_t *v = cd_cfg_need(x, path, r, "name", -1, NAME_ACCEPTED);
    if (!v) return;
    cd_cfg_subpath(p, sizeof(p), path, "name");
    if (!json_is_string(v) || !valid_rule_name(json_string_value(v))) {
        cd_cfg_bad(x, p, v, "is not a rule name", NAME_ACCEPTED);
        return;
    }
    for (int i = 0; i < idx; i++) {
        if (strcmp(x->c->rules[i].name, json_string_value(v)) == 0) {
            char problem[64];
            snprintf(problem, sizeof(problem), "is already the name of rules[%d]", i);
            cd_cfg_bad(x, p, v, problem, "a name unique among the rules");
            return;
        }
    }
    snprintf(rc->name, sizeof(rc->name), "%s", json_string_value(v));
}

static void parse_common(cd_cfgctx_t *x, const char *path, const json_t *r, cd_rule_conf_t *rc)
{
    char p[CD_CFG_PATH_MAX];
    json_t *v;

    if ((v = json_object_get(r, "description"))) {
        cd_cfg_subpath(p, sizeof(p), path, "description");
        cd_cfg_string(x, p, v, rc->description, sizeof(rc->description), true,
                      "a sentence saying what to do, shown in verdicts");
    }
    if ((v = cd_cfg_need(x, path, r, "window", -1, "a duration such as \"5m\""))) {
        cd_cfg_subpath(p, sizeof(p), path, "window");
        cd_cfg_lookback(x, p, v, 3600000, "1h", &rc->window_ms);
    }
    if ((v = json_object_get(r, "for"))) {
        cd_cfg_subpath(p, sizeof(p), path, "for");
        cd_cfg_duration(x, p, v, &rc->for_ms);
    }
    if ((v = json_object_get(r, "resolve_for"))) {
        cd_cfg_subpath(p, sizeof(p), path, "resolve_for");
        cd_cfg_duration(x, p, v, &rc->resolve_for_ms);
    }
    cd_cfg_opt_number(x, path, r, "hysteresis", 0, false, 1, true, &rc->hysteresis);
    if ((v = json_object_get(r, "min_samples"))) {
        cd_cfg_subpath(p, sizeof(p), path, "min_samples");
        parse_min_samples(x, p, v, rc);
    }
    if ((v = cd_cfg_need(x, path, r, "action", -1, "rollback, alert"))) {
        cd_cfg_subpath(p, sizeof(p), path, "action");
        int i = cd_cfg_enum(x, p, v, "an action", ACTIONS);
        if (i >= 0) rc->action = (cd_action_t)i;
    }
    if ((v = json_object_get(r, "dry_run"))) {
        cd_cfg_subpath(p, sizeof(p), path, "dry_run");
        if (json_is_boolean(v))
            rc->dry_run = json_is_true(v);
        else
            cd_cfg_bad(x, p, v, "is not a boolean", "true, false");
    }
    if ((v = json_object_get(r, "guard"))) {
        cd_cfg_subpath(p, sizeof(p), path, "guard");
        if (json_is_boolean(v))
            rc->guard = json_is_true(v);
        else
            cd_cfg_bad(x, p, v, "is not a boolean", "true, false");
    }
}

static void parse_rule(cd_cfgctx_t *x, const json_t *r, int idx)
{
    char path[32], p[CD_CFG_PATH_MAX], kinds[128];
    cd_rule_conf_t *rc = &x->c->rules[idx];
    int kind = -1;

    memset(rc, 0, sizeof(*rc));
    snprintf(path, sizeof(path), "rules[%d]", idx);
    if (!cd_cfg_object(x, path, r,
                       "an object with name, kind, window, action and the keys of "
                       "its kind"))
        return;
    cd_cfg_join(kinds, sizeof(kinds), KINDS);
    json_t *v = cd_cfg_need(x, path, r, "kind", -1, kinds);
    if (v) {
        cd_cfg_subpath(p, sizeof(p), path, "kind");
        kind = cd_cfg_enum(x, p, v, "a rule kind", KINDS);
    }
    check_rule_keys(x, path, r, kind);
    parse_name(x, path, r, idx, rc);
    parse_common(x, path, r, rc);
    if (kind < 0) return; /* already reported; kind keys cannot be checked */
    cd_cfg_parse_kind(x, path, r, kind, rc);
    rc->kind = (cd_rule_kind_t)kind;
}

void cd_cfg_parse_rules(cd_cfgctx_t *x, const json_t *rules)
{
    char acc[64];
    snprintf(acc, sizeof(acc), "an array of 1 to %d rule objects", CD_MAX_RULES);
    if (!json_is_array(rules)) {
        cd_cfg_bad(x, "rules", rules, "is not an array", acc);
        return;
    }
    size_t n = json_array_size(rules);
    if (n == 0) {
        cd_cfg_bad(x, "rules", rules, "is empty", acc);
        return;
    }
    if (n > CD_MAX_RULES) {
        char problem[64];
        snprintf(problem, sizeof(problem), "has %zu rules", n);
        cd_cfg_bad(x, "rules", rules, problem, acc);
        n = CD_MAX_RULES;
    }
    for (size_t i = 0; i < n; i++)
        parse_rule(x, json_array_get(rules, i), (int)i);
    x->c->nrules = (int)n;
}
