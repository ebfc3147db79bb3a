/*
 * config_json.c - the config loader's vocabulary: typed getters over jansson
 * values that check a value, convert it and, when it is wrong, report one
 * line "<path>: <value> <problem>; accepted: <what is>".
 *
 * Values in messages are rendered by jansson itself (compact, ASCII-only,
 * 12 significant digits so 0.1 reads "0.1") and cut to ~60 characters, so a
 * message shows what the user wrote without flooding the terminal. Key names
 * that are not plain words are shown as JSON strings for the same reason.
 *
 * Pure and reentrant; all state is in the caller's cd_cfgctx_t.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "canaryd/timeutil.h"
#include "config_internal.h"

/* Longest duration anywhere in a config: a week. Longer values are typos
 * ("15000m") and would overflow arithmetic in the windows. */
#define CD_CFG_DURATION_MAX_MS (7LL * 24 * 3600 * 1000)

#define DURATION_ACCEPTED                                                                          \
    "a non-negative integer of milliseconds or a string such as \"250ms\", \"30s\", "              \
    "\"5m\", \"1h30m\""

static void shorten(char *buf, size_t size, const char *s)
{
    size_t n = strlen(s);
    if (n <= CD_CFG_VALUE_MAX) {
        snprintf(buf, size, "%s", s);
        return;
    }
    /* s is ASCII (JSON_ENSURE_ASCII), so any cut is a character boundary. */
    snprintf(buf, size, "%.*s...", CD_CFG_VALUE_MAX - 3, s);
}

void cd_cfg_render(const json_t *v, char *buf, size_t size)
{
    char *s =
        json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(12));
    if (!s) {
        snprintf(buf, size, "(value)");
        return;
    }
    shorten(buf, size, s);
    free(s);
}

void cd_cfg_render_str(const char *s, char *buf, size_t size)
{
    json_t *j = json_string(s);
    if (!j) { /* not UTF-8: cannot come from jansson's parser, but be safe */
        snprintf(buf, size, "(string)");
        return;
    }
    cd_cfg_render(j, buf, size);
    json_decref(j);
}

static bool plain_word(const char *s)
{
    if (!*s) return false;
    for (; *s; s++) {
        char ch = *s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

void cd_cfg_path_key(char *out, size_t size, const char *base, const char *key)
{
    if (plain_word(key)) {
        snprintf(out, size, "%s%s%s", base, *base ? "." : "", key);
        return;
    }
    char r[CD_CFG_VALUE_MAX + 8];
    cd_cfg_render_str(key, r, sizeof(r));
    snprintf(out, size, "%s[%s]", base, r);
}

void cd_cfg_path_index(char *out, size_t size, const char *base, size_t i)
{
    snprintf(out, size, "%s[%zu]", base, i);
}

const char *cd_cfg_where(const char *path)
{
    return *path ? path : "top level";
}

void cd_cfg_bad(cd_cfgctx_t *x, const char *path, const json_t *v, const char *problem,
                const char *accepted)
{
    char r[CD_CFG_VALUE_MAX + 8];
    cd_cfg_render(v, r, sizeof(r));
    cd_diag_add(x->d, "%s: %s %s; accepted: %s", cd_cfg_where(path), r, problem, accepted);
}

void cd_cfg_join(char *buf, size_t size, const char *const *list)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; list[i] && len < size; i++) {
        int n = snprintf(buf + len, size - len, "%s%s", i ? ", " : "", list[i]);
        if (n < 0) break;
        len += (size_t)n;
    }
}

static bool in_list(const char *s, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(s, list[i]) == 0) return true;
    return false;
}

bool cd_cfg_check_keys(cd_cfgctx_t *x, const char *path, const json_t *obj,
                       const char *const *known)
{
    const char *key;
    json_t *v;
    bool ok = true;
    char list[512];

    cd_cfg_join(list, sizeof(list), known);
    json_object_foreach((json_t *)obj, key, v)
    {
        if (in_list(key, known)) continue;
        char r[CD_CFG_VALUE_MAX + 8];
        cd_cfg_render_str(key, r, sizeof(r));
        cd_diag_add(x->d, "%s: unknown key %s; known keys: %s", cd_cfg_where(path), r, list);
        ok = false;
    }
    return ok;
}

bool cd_cfg_object(cd_cfgctx_t *x, const char *path, const json_t *v, const char *accepted)
{
    if (json_is_object(v)) return true;
    cd_cfg_bad(x, path, v, "is not an object", accepted);
    return false;
}

bool cd_cfg_duration(cd_cfgctx_t *x, const char *path, const json_t *v, int64_t *ms)
{
    int64_t val;

    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        val = json_integer_value(v);
    } else if (json_is_string(v) && cd_duration_parse(json_string_value(v), &val) && val >= 0) {
        /* parsed */
    } else {
        cd_cfg_bad(x, path, v, "is not a duration", DURATION_ACCEPTED);
        return false;
    }
    if (val > CD_CFG_DURATION_MAX_MS) {
        cd_cfg_bad(x, path, v, "is longer than a week", "a duration up to \"168h\"");
        return false;
    }
    *ms = val;
    return true;
}

static void range_text(char *buf, size_t size, double lo, bool lo_open, double hi, bool hi_open)
{
    if (!isnan(lo) && !isnan(hi))
        snprintf(buf, size, "a number in %c%g, %g%c", lo_open ? '(' : '[', lo, hi,
                 hi_open ? ')' : ']');
    else if (!isnan(lo))
        snprintf(buf, size, "a number %s %g", lo_open ? ">" : ">=", lo);
    else if (!isnan(hi))
        snprintf(buf, size, "a number %s %g", hi_open ? "<" : "<=", hi);
    else
        snprintf(buf, size, "a number");
}

bool cd_cfg_number(cd_cfgctx_t *x, const char *path, const json_t *v, double lo, bool lo_open,
                   double hi, bool hi_open, double *out)
{
    char acc[96];
    range_text(acc, sizeof(acc), lo, lo_open, hi, hi_open);
    if (!json_is_number(v)) {
        cd_cfg_bad(x, path, v, "is not a number", acc);
        return false;
    }
    double d = json_number_value(v);
    bool ok = isfinite(d);
    if (ok && !isnan(lo)) ok = lo_open ? d > lo : d >= lo;
    if (ok && !isnan(hi)) ok = hi_open ? d < hi : d <= hi;
    if (!ok) {
        cd_cfg_bad(x, path, v, "is out of range", acc);
        return false;
    }
    *out = d;
    return true;
}

bool cd_cfg_string(cd_cfgctx_t *x, const char *path, const json_t *v, char *dst, size_t size,
                   bool allow_empty, const char *accepted)
{
    if (!json_is_string(v)) {
        cd_cfg_bad(x, path, v, "is not a string", accepted);
        return false;
    }
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0 && !allow_empty) {
        cd_cfg_bad(x, path, v, "is empty", accepted);
        return false;
    }
    if (n >= size) {
        char problem[64];
        snprintf(problem, sizeof(problem), "is longer than %zu bytes", size - 1);
        cd_cfg_bad(x, path, v, problem, accepted);
        return false;
    }
    memcpy(dst, s, n + 1);
    return true;
}

int cd_cfg_enum(cd_cfgctx_t *x, const char *path, const json_t *v, const char *what,
                const char *const *names)
{
    if (json_is_string(v)) {
        for (int i = 0; names[i]; i++)
            if (strcmp(json_string_value(v), names[i]) == 0) return i;
    }
    char problem[64], list[256];
    snprintf(problem, sizeof(problem), "is not %s", what);
    cd_cfg_join(list, sizeof(list), names);
    cd_cfg_bad(x, path, v, problem, list);
    return -1;
}

/* --- rule-level helpers (config_rules.c, config_kinds.c) ---------------- */

/* The value of a required key, or NULL after reporting it missing. */
json_t *cd_cfg_need(cd_cfgctx_t *x, const char *path, const json_t *r, const char *key, int kind,
                    const char *accepted)
{
    json_t *v = json_object_get(r, key);
    if (!v) {
        if (kind >= 0)
            cd_diag_add(x->d, "%s: missing required key \"%s\" (kind %s); accepted: %s", path, key,
                        cd_rule_kind_name((cd_rule_kind_t)kind), accepted);
        else
            cd_diag_add(x->d, "%s: missing required key \"%s\"; accepted: %s", path, key, accepted);
    }
    return v;
}

void cd_cfg_subpath(char *out, size_t size, const char *path, const char *key)
{
    /* Paths are short (rules[31].min_samples.canary); a cut one is still useful. */
    if (snprintf(out, size, "%s.%s", path, key) >= (int)size) out[size - 1] = '\0';
}

/* An optional number in range: absent leaves *out as is. */
void cd_cfg_opt_number(cd_cfgctx_t *x, const char *path, const json_t *r, const char *key,
                       double lo, bool lo_open, double hi, bool hi_open, double *out)
{
    char p[CD_CFG_PATH_MAX];
    json_t *v = json_object_get(r, key);
    if (!v) return;
    cd_cfg_subpath(p, sizeof(p), path, key);
    cd_cfg_number(x, p, v, lo, lo_open, hi, hi_open, out);
}

void cd_cfg_req_number(cd_cfgctx_t *x, const char *path, const json_t *r, const char *key, int kind,
                       double lo, bool lo_open, const char *accepted, double *out)
{
    char p[CD_CFG_PATH_MAX];
    json_t *v = cd_cfg_need(x, path, r, key, kind, accepted);
    if (!v) return;
    cd_cfg_subpath(p, sizeof(p), path, key);
    cd_cfg_number(x, p, v, lo, lo_open, NAN, false, out);
}

/* A look-back (window, reference_window): > 0, <= max, a multiple of the
 * resolution. */
bool cd_cfg_lookback(cd_cfgctx_t *x, const char *p, const json_t *v, int64_t max_ms,
                     const char *max_text, int64_t *out)
{
    int64_t ms;
    char acc[160];
    if (!cd_cfg_duration(x, p, v, &ms)) return false;
    snprintf(acc, sizeof(acc), "a duration > 0 and up to %s, a multiple of windows.resolution",
             max_text);
    if (ms == 0) {
        cd_cfg_bad(x, p, v, "is zero", acc);
        return false;
    }
    if (ms > max_ms) {
        char problem[64];
        snprintf(problem, sizeof(problem), "is longer than %s", max_text);
        cd_cfg_bad(x, p, v, problem, acc);
        return false;
    }
    if (x->resolution_ok && ms % x->c->resolution_ms != 0) {
        char problem[96];
        snprintf(problem, sizeof(problem), "is not a multiple of windows.resolution (%lldms)",
                 (long long)x->c->resolution_ms);
        cd_cfg_bad(x, p, v, problem, acc);
        return false;
    }
    *out = ms;
    return true;
}
