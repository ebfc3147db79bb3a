/*
 * config.c - loads canaryd's configuration (JSON, or YAML through
 * config_yaml.c into the same tree) into a cd_config_t: the document's top
 * level and the "windows" and "verdicts" sections; every other section has
 * a parser of its own.
 *
 * The loader's files call in one direction, top to bottom; a file calls
 * only the layers below it, never one above (so no section parser calls
 * back into this file, which calls them):
 *
 *   config.c            the top-level loader (cd_config_load / _parse): reads
 *                       the file, builds the tree, runs the stages below
 *   config_env.c        environment overlay before validation, and the
 *                       check of overridden keys after it, with the kafka,
 *                       http and sinks sections' own parsers
 *   config_yaml.c       YAML into the tree; line/column of each key path
 *   config_secrets.c    K_file / K_env resolved into K
 *   config_events.c     "events" and the type catalog
 *   config_rules.c      "rules": common keys, then config_kinds.c per kind
 *   config_baseline.c   baseline_file into the relative rules
 *   config_kafka.c, config_http.c, config_coord.c
 *                       sections the agent's modules parse when it starts
 *                       (kafka, http, coordination), also called by
 *                       config_env.c for overridden keys
 *   config_json.c       leaves: typed getters, paths and messages;
 *   config_file.c       reading a file (size cap, regular files only);
 *   diag.c              the problem list
 *
 * Parsing is two-phase in spirit: jansson turns the text into a tree (with
 * duplicate keys rejected and line/column on syntax errors), then every
 * section is checked against the tree, reporting each problem and carrying
 * on, so one run of `canaryd check-config` lists every mistake. Sections are
 * read in dependency order whatever their order in the file: events (the
 * catalog starts with events.types), windows (rule windows must be multiples
 * of the resolution), verdicts, rules (which extend the catalog), baseline.
 *
 * The result is one calloc'd block; cd_decode_conf_t's strings point into
 * it, so a cd_config_t must not be copied by value. Start-up only: nothing
 * here is on the hot path, and nothing is shared between threads.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "canaryd/engine.h"
#include "config_env.h"
#include "config_internal.h"

/* Largest config file read. */
#define CD_CFG_FILE_MAX (4 << 20)

static const char *const TOP_KEYS[] = {"events", "windows", "verdicts", "baseline_file", "rules",
                                       "kafka",  "sinks",   "http",     "log",
                                       "coordination", NULL};
static const char *const WINDOWS_KEYS[] = {"resolution", "allowed_lateness", "max_future_skew",
                                           "slack", NULL};
static const char *const VERDICTS_KEYS[] = {"promote_after", "alert_repeat_interval",
                                            "eval_interval", "min_canary_events", NULL};

static void get_duration(cd_cfgctx_t *x, const json_t *sec, const char *secname, const char *key,
                         int64_t *ms, bool *ok)
{
    char path[CD_CFG_PATH_MAX];
    json_t *v = sec ? json_object_get(sec, key) : NULL;
    if (!v) return;
    snprintf(path, sizeof(path), "%s.%s", secname, key);
    if (!cd_cfg_duration(x, path, v, ms) && ok) *ok = false;
}

static void parse_windows(cd_cfgctx_t *x, const json_t *w)
{
    cd_config_t *c = x->c;
    bool res_ok = true;

    if (w && cd_cfg_object(x, "windows", w, "an object with the keys of docs/config.md"))
        cd_cfg_check_keys(x, "windows", w, WINDOWS_KEYS);
    else
        w = NULL;
    get_duration(x, w, "windows", "resolution", &c->resolution_ms, &res_ok);
    get_duration(x, w, "windows", "allowed_lateness", &c->allowed_lateness_ms, NULL);
    get_duration(x, w, "windows", "max_future_skew", &c->max_future_skew_ms, NULL);
    get_duration(x, w, "windows", "slack", &c->slack_ms, NULL);
    if (res_ok) {
        int64_t r = c->resolution_ms;
        if (r < 100 || (1000 % r != 0 && r % 1000 != 0)) {
            cd_cfg_bad(x, "windows.resolution", json_object_get(w, "resolution"),
                       "is not a valid resolution",
                       "100ms, 125ms, 200ms, 250ms, 500ms or a whole number of seconds");
            res_ok = false;
        }
    }
    x->resolution_ok = res_ok;
}

static void parse_verdicts(cd_cfgctx_t *x, const json_t *vd)
{
    cd_config_t *c = x->c;
    bool ok = true;

    if (vd && cd_cfg_object(x, "verdicts", vd, "an object with the keys of docs/config.md"))
        cd_cfg_check_keys(x, "verdicts", vd, VERDICTS_KEYS);
    else
        vd = NULL;
    get_duration(x, vd, "verdicts", "promote_after", &c->promote_after_ms, NULL);
    get_duration(x, vd, "verdicts", "alert_repeat_interval", &c->alert_repeat_ms, NULL);
    get_duration(x, vd, "verdicts", "eval_interval", &c->eval_interval_ms, &ok);
    json_t *mce = vd ? json_object_get(vd, "min_canary_events") : NULL;
    if (mce) {
        if (!json_is_integer(mce) || json_integer_value(mce) < 0)
            cd_cfg_bad(x, "verdicts.min_canary_events", mce,
                       json_is_integer(mce) ? "is negative" : "is not an integer",
                       "an integer >= 0 (0 turns the canary-evidence check off)");
        else
            c->min_canary_events = (uint64_t)json_integer_value(mce);
    }
    if (ok && x->resolution_ok &&
        (c->eval_interval_ms == 0 || c->eval_interval_ms % c->resolution_ms != 0)) {
        char acc[96];
        snprintf(acc, sizeof(acc), "a positive multiple of windows.resolution (%lldms)",
                 (long long)c->resolution_ms);
        cd_cfg_bad(x, "verdicts.eval_interval", json_object_get(vd, "eval_interval"),
                   "is not a multiple of the resolution", acc);
    }
}

static void set_defaults(cd_config_t *c)
{
    cd_cfg_events_defaults(c);
    c->resolution_ms = 1000;
    c->allowed_lateness_ms = 5000;
    c->max_future_skew_ms = 120000;
    c->slack_ms = 30000;
    c->promote_after_ms = 15 * 60000;
    c->alert_repeat_ms = 5 * 60000;
    c->eval_interval_ms = 1000;
    c->min_canary_events = 100;
}

int64_t cd_config_span_ms(const cd_config_t *c)
{
    int64_t span = cd_engine_span_ms(c->rules, c->nrules);
    if (c->min_canary_events > 0 && c->promote_after_ms > span) span = c->promote_after_ms;
    return span + c->slack_ms;
}

static void parse_root(cd_cfgctx_t *x, const json_t *root, const char *origin_dir)
{
    cd_cfg_check_keys(x, "", root, TOP_KEYS);
    cd_cfg_parse_events(x, json_object_get(root, "events"));
    parse_windows(x, json_object_get(root, "windows"));
    parse_verdicts(x, json_object_get(root, "verdicts"));
    json_t *rules = json_object_get(root, "rules");
    if (!rules)
        cd_diag_add(x->d,
                    "top level: missing required key \"rules\"; accepted: an array of "
                    "1 to %d rule objects",
                    CD_MAX_RULES);
    else
        cd_cfg_parse_rules(x, rules);
    json_t *b = json_object_get(root, "baseline_file");
    if (b) cd_cfg_parse_baseline(x, b, origin_dir);

    /* Sections owned by other modules: kept as JSON for them to parse (and
     * to report problems in, with their key paths) when they start; an
     * absent section is NULL. Each must at least be an object. */
    static const char *const sections[] = {"kafka", "sinks", "http", "log", "coordination"};
    void **slots[] = {&x->c->kafka_json, &x->c->sinks_json, &x->c->http_json, &x->c->log_json,
                      &x->c->coord_json};
    for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
        json_t *sec = json_object_get(root, sections[i]);
        if (!sec) continue;
        if (!json_is_object(sec)) {
            cd_cfg_bad(x, sections[i], sec, "is not an object", "a JSON object");
            continue;
        }
        if (strcmp(sections[i], "log") == 0) {
            /* Reserved: accepting and ignoring them would be a silent default. */
            cd_diag_add(x->d, "%s: not supported by this version yet; accepted: leave the key out",
                        sections[i]);
            continue;
        }
        *slots[i] = json_incref(sec);
    }
}

cd_config_t *cd_config_parse_ex(const char *text, size_t len, const char *origin_dir,
                                unsigned flags, cd_diag_t *diag)
{
    cd_diag_t local;
    json_error_t jerr;
    json_t *root = NULL, *pos = NULL;
    cd_config_t *c = NULL;

    if (!diag) diag = &local;
    cd_diag_init(diag);
    if (flags & CD_CFG_YAML) {
        root = cd_cfg_yaml_load(text, len, &pos, diag);
        if (!root) goto err;
    } else {
        root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    }
    if (!root) {
        cd_diag_add(diag, "(line %d, column %d): syntax error: %s", jerr.line, jerr.column,
                    jerr.text);
        goto err;
    }
    if (!json_is_object(root)) {
        cd_cfgctx_t x0 = {.d = diag};
        cd_cfg_bad(&x0, "", root, "is not an object",
                   "a JSON object with the keys events, windows, verdicts, baseline_file, rules, "
                   "kafka, sinks, http, log, coordination");
        goto err;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        cd_diag_add(diag, "out of memory");
        goto err;
    }
    set_defaults(c);
    cd_cfgctx_t x = {.c = c, .d = diag, .flags = flags};
    /* Environment overrides (config_env.c): overlaid onto the tree before
     * validation; then messages about overridden keys name the variable. */
    cd_cfg_env_t env = {0};
    if (flags & CD_CFG_ENV) cd_cfg_env_overlay(&x, root, &env);
    /* Secrets from files and variables (config_secrets.c), then the same
     * checks as inline values. */
    cd_cfg_secrets_resolve(&x, root, pos);
    parse_root(&x, root, origin_dir);
    if (flags & CD_CFG_ENV) cd_cfg_env_check(&x, &env);
    /* Positions last: the environment's rewriting reads bare key paths. */
    cd_cfg_locate(diag, 0, pos);
    if (diag->count > 0) goto err;
    c->src_pos = pos;
    json_decref(root);
    return c;
err:
    if (!c) cd_cfg_locate(diag, 0, pos);
    cd_config_free(c);
    json_decref(root);
    json_decref(pos);
    return NULL;
}

void cd_config_locate(const cd_config_t *c, cd_diag_t *d, size_t from)
{
    if (c) cd_cfg_locate(d, from, c->src_pos);
}

/* A .yaml or .yml name. */
static bool yaml_name(const char *path)
{
    size_t n = strlen(path);
    return (n > 5 && strcmp(path + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(path + n - 4, ".yml") == 0);
}

cd_config_t *cd_config_parse(const char *text, size_t len, const char *origin_dir, cd_diag_t *diag)
{
    return cd_config_parse_ex(text, len, origin_dir, 0, diag);
}

cd_config_t *cd_config_load_ex(const char *path, unsigned flags, cd_diag_t *diag)
{
    cd_diag_t local;
    char err[256], dir[1024];
    char *text = NULL;
    size_t len;

    if (!diag) diag = &local;
    cd_diag_init(diag);
    if (cd_cfg_read_file(path, CD_CFG_FILE_MAX, &text, &len, err, sizeof(err)) != 0) {
        cd_diag_add(diag, "%s: %s", path, err);
        return NULL;
    }
    /* Relative paths inside the file are relative to the file's folder. */
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    if (yaml_name(path)) flags |= CD_CFG_YAML;
    cd_config_t *c = cd_config_parse_ex(text, len, dir, flags, diag);
    free(text);
    return c;
}

cd_config_t *cd_config_load(const char *path, cd_diag_t *diag)
{
    /* A file is what the agent runs: the environment overrides it (CD_CFG_ENV). */
    return cd_config_load_ex(path, CD_CFG_ENV, diag);
}

void cd_config_free(cd_config_t *c)
{
    if (!c) return;
    json_decref(c->kafka_json);
    json_decref(c->sinks_json);
    json_decref(c->http_json);
    json_decref(c->coord_json);
    json_decref(c->log_json);
    json_decref(c->src_pos);
    free(c);
}

int cd_config_type_id(const cd_config_t *c, const char *name)
{
    for (int i = 0; i < c->decode.ntypes; i++)
        if (strcmp(c->type_names[i], name) == 0) return i;
    return CD_TYPE_OTHER;
}
