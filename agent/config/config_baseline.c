/*
 * config_baseline.c - the optional baseline file: stable-cohort values
 * captured from an earlier healthy period, for relative rules to compare the
 * canary with while the stable cohort has too few samples of its own.
 *
 *   {"captured_at": "2026-11-20T10:00:00Z", "values": {"error-rate": 0.0031}}
 *
 * Every name in "values" must be a relative rule of the same config: a
 * baseline for a rule that does not exist (renamed, or a typo) would
 * otherwise be silently ignored, and a release engineer would believe a
 * comparison is happening that is not. Messages name the file and the key.
 *
 * `canaryd baseline` (agent/cli/cli_baseline.c) writes this file and adds two
 * informational objects, keyed the same way as "values": "samples" (the
 * stable sample count behind each value, an integer >= 0) and "window"
 * (what it was measured over: a duration such as "1m", or "all" for the
 * whole stream). They are checked like "values" (relative rule names, the
 * right type) but change nothing; every other key is still rejected.
 *
 * The file must be a regular file of at most 1 MiB (read by
 * cd_cfg_read_file). Start-up only, single-threaded.
 */
#include <math.h>
#include <string.h>

#include "canaryd/timeutil.h"
#include "config_internal.h"

static const char *const BASELINE_KEYS[] = {"captured_at", "values", "samples", "window", NULL};

#define BASELINE_ACCEPTED                                                                          \
    "an object such as {\"captured_at\": \"2026-11-20T10:00:00Z\", \"values\": {\"error-rate\": "  \
    "0.003}}"

static void relative_rules(const cd_config_t *c, char *buf, size_t size)
{
    const char *names[CD_MAX_RULES + 1];
    int n = 0;
    for (int i = 0; i < c->nrules; i++)
        if (c->rules[i].kind == CD_RULE_RELATIVE && c->rules[i].name[0])
            names[n++] = c->rules[i].name;
    names[n] = NULL;
    if (n)
        cd_cfg_join(buf, size, names);
    else
        snprintf(buf, size, "(none: this config has no relative rule)");
}

/* What a per-rule object of the baseline file holds. */
typedef enum { OBJ_VALUES, OBJ_SAMPLES, OBJ_WINDOW } baseline_obj_t;

/* The relative rule named key, or NULL after reporting why there is none. */
static cd_rule_conf_t *relative_rule(cd_cfgctx_t *x, const char *path, const char *key,
                                     const char *list)
{
    cd_rule_conf_t *rc = NULL;
    for (int i = 0; i < x->c->nrules && !rc; i++)
        if (strcmp(x->c->rules[i].name, key) == 0) rc = &x->c->rules[i];
    if (!rc) {
        cd_diag_add(x->d,
                    "%s: no rule of this config has that name; accepted: names of "
                    "relative rules: %s",
                    path, list);
        return NULL;
    }
    if (rc->kind != CD_RULE_RELATIVE) {
        cd_diag_add(x->d,
                    "%s: rule is of kind %s, and only relative rules take a "
                    "baseline; accepted: names of relative rules: %s",
                    path, cd_rule_kind_name(rc->kind), list);
        return NULL;
    }
    return rc;
}

/* "samples": an integer >= 0 (informational). */
static void check_samples(cd_cfgctx_t *x, const char *path, const json_t *v)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        cd_cfg_bad(x, path, v, "is not a sample count", "an integer >= 0");
}

/* "window": a duration string or "all" (informational). */
static void check_window(cd_cfgctx_t *x, const char *path, const json_t *v)
{
    int64_t ms;
    const char *s = json_string_value(v);
    if (!s || (strcmp(s, "all") != 0 && !cd_duration_parse(s, &ms)))
        cd_cfg_bad(x, path, v, "is not a capture window",
                   "a duration such as \"1m\" or \"5m\", or \"all\" (the whole stream)");
}

static void apply_object(cd_cfgctx_t *x, const char *name, const char *what, const json_t *obj,
                         baseline_obj_t kind)
{
    static const char *const accepted[] = {
        [OBJ_VALUES] = "an object of relative rule name -> number",
        [OBJ_SAMPLES] = "an object of relative rule name -> sample count",
        [OBJ_WINDOW] = "an object of relative rule name -> duration or \"all\"",
    };
    char path[CD_CFG_PATH_MAX + 1100], base[1100], list[1024];
    const char *key;
    json_t *v;

    snprintf(base, sizeof(base), "%s: %s", name, what);
    if (!cd_cfg_object(x, base, obj, accepted[kind])) return;
    relative_rules(x->c, list, sizeof(list));
    json_object_foreach((json_t *)obj, key, v)
    {
        cd_cfg_path_key(path, sizeof(path), base, key);
        cd_rule_conf_t *rc = relative_rule(x, path, key, list);
        if (!rc) continue;
        if (kind == OBJ_SAMPLES) {
            check_samples(x, path, v);
            continue;
        }
        if (kind == OBJ_WINDOW) {
            check_window(x, path, v);
            continue;
        }
        double d;
        if (cd_cfg_number(x, path, v, 0, false, NAN, false, &d)) {
            rc->has_baseline = true;
            rc->baseline = d;
        }
    }
}

void cd_cfg_apply_baseline(cd_cfgctx_t *x, const char *name, const char *text, size_t len)
{
    json_error_t jerr;
    char path[1100];
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);

    if (!root) {
        cd_diag_add(x->d, "%s (line %d, column %d): syntax error: %s", name, jerr.line, jerr.column,
                    jerr.text);
        return;
    }
    if (!cd_cfg_object(x, name, root, BASELINE_ACCEPTED)) goto out;
    cd_cfg_check_keys(x, name, root, BASELINE_KEYS);
    json_t *v = json_object_get(root, "captured_at");
    if (v) {
        int64_t ms;
        snprintf(path, sizeof(path), "%s: captured_at", name);
        if (!json_is_string(v) ||
            !cd_time_parse_rfc3339(json_string_value(v), json_string_length(v), &ms))
            cd_cfg_bad(x, path, v, "is not an RFC 3339 time",
                       "a time such as \"2026-11-20T10:00:00Z\"");
    }
    v = json_object_get(root, "values");
    if (!v)
        cd_diag_add(x->d, "%s: missing required key \"values\"; accepted: %s", name,
                    BASELINE_ACCEPTED);
    else
        apply_object(x, name, "values", v, OBJ_VALUES);
    if ((v = json_object_get(root, "samples"))) apply_object(x, name, "samples", v, OBJ_SAMPLES);
    if ((v = json_object_get(root, "window"))) apply_object(x, name, "window", v, OBJ_WINDOW);
out:
    json_decref(root);
}

void cd_cfg_parse_baseline(cd_cfgctx_t *x, const json_t *v, const char *origin_dir)
{
    cd_config_t *c = x->c;
    char rel[1024], err[256];
    char *text = NULL;
    size_t len;

    if (!cd_cfg_string(x, "baseline_file", v, rel, sizeof(rel), false,
                       "a path to a baseline JSON file, relative to the config file's folder"))
        return;
    int n;
    if (rel[0] == '/' || !origin_dir || !*origin_dir)
        n = snprintf(c->baseline_file, sizeof(c->baseline_file), "%s", rel);
    else
        n = snprintf(c->baseline_file, sizeof(c->baseline_file), "%s%s%s", origin_dir,
                     origin_dir[strlen(origin_dir) - 1] == '/' ? "" : "/", rel);
    if (n < 0 || (size_t)n >= sizeof(c->baseline_file)) {
        cd_cfg_bad(x, "baseline_file", v, "is too long once resolved against the config's folder",
                   "a path of at most 1023 bytes");
        c->baseline_file[0] = '\0';
        return;
    }
    if (x->flags & CD_CFG_NO_BASELINE) return; /* about to be (re)written, not read */
    if (x->flags & CD_CFG_NO_FILES) {
        cd_diag_add(x->d, "baseline_file: %s: not read: file access is disabled for this parse",
                    c->baseline_file);
        return;
    }
    if (cd_cfg_read_file(c->baseline_file, CD_CFG_BASELINE_MAX, &text, &len, err, sizeof(err))) {
        cd_diag_add(x->d, "baseline_file: %s: %s", c->baseline_file, err);
        return;
    }
    cd_cfg_apply_baseline(x, c->baseline_file, text, len);
    free(text);
}
