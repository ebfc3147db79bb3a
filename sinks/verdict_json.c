/*
 * verdict_json.c - a verdict record as one JSON line, and that line as one
 * human line (see verdict_fmt.h for both formats).
 *
 * JSON is built with jansson (JSON_PRESERVE_ORDER keeps the documented key
 * order) rather than printf, so reasons holding quotes, backslashes or
 * control characters are always escaped correctly. Rendering allocates a
 * small tree per record; records are rare (at most a few per evaluation), so
 * this is far from any hot path. The pretty side parses the JSON back, so
 * `tail` can render a log written by any canaryd version with these keys.
 */
#include "canaryd/verdict_fmt.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canaryd/timeutil.h"

#define DUMP_FLAGS (JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(15))

/* A number, or null when it is NaN or infinite (JSON has neither). */
static json_t *real_or_null(double d)
{
    return isfinite(d) ? json_real(d) : json_null();
}

/* jansson refuses invalid UTF-8 (json_string returns NULL and the key would
 * be missing). Reasons are ASCII, but a release or service name is learnt from events
 * and cut to a fixed size, possibly inside a multi-byte character: such
 * bytes are written as '?' rather than losing the key. */
static json_t *str_json(const char *s)
{
    json_t *j = json_string(s);
    if (j) return j;
    size_t n = strlen(s);
    char *copy = malloc(n + 1);
    if (!copy) return NULL;
    for (size_t i = 0; i <= n; i++)
        copy[i] = (unsigned char)s[i] >= 0x80 ? '?' : s[i];
    j = json_string(copy);
    free(copy);
    return j;
}

static json_t *str_or_null(const char *s)
{
    return s ? str_json(s) : json_null();
}

static json_t *obs_json(const cd_obs_t *o)
{
    if (!o->valid) return json_null();
    json_t *j = json_object();
    if (!j) return NULL;
    json_object_set_new(j, "value", real_or_null(o->value));
    json_object_set_new(j, "numerator", json_integer((json_int_t)o->numerator));
    json_object_set_new(j, "samples", json_integer((json_int_t)o->denominator));
    return j;
}

/* Release-wide records have no window of their own: null unless one is set. */
static json_t *duration_json(const cd_verdict_t *v, int64_t ms)
{
    char tmp[32];
    if (!v->rule && ms == 0) return json_null();
    return json_string(cd_duration_format(ms, tmp, sizeof(tmp)));
}

int cd_verdict_to_json(const cd_verdict_t *v, char *buf, size_t size)
{
    char tbuf[40];
    json_t *o = json_object();
    json_t *obs = json_object();
    int rc = -1;

    if (size > 0) buf[0] = '\0';
    if (!o || !obs) goto out;
    json_object_set_new(o, "time", json_string(cd_time_format(v->time_ms, tbuf, sizeof(tbuf))));
    if (v->record == CD_RECORD_STATE) {
        json_object_set_new(o, "kind", json_string("state"));
        json_object_set_new(o, "from", json_string(cd_rule_state_name(v->from)));
        json_object_set_new(o, "to", json_string(cd_rule_state_name(v->to)));
    } else {
        json_object_set_new(o, "kind", json_string("verdict"));
        json_object_set_new(o, "verdict", json_string(cd_verdict_kind_name(v->verdict)));
    }
    json_object_set_new(o, "rule", str_or_null(v->rule));
    json_object_set_new(o, "rule_kind", str_or_null(v->rule ? v->rule_kind : NULL));
    json_object_set_new(o, "action",
                        v->rule ? json_string(cd_action_name(v->action)) : json_null());
    json_object_set_new(o, "dry_run", json_boolean(v->dry_run));
    json_object_set_new(o, "release", str_json(v->release ? v->release : ""));
    json_object_set_new(o, "service", str_json(v->service ? v->service : ""));
    json_object_set_new(o, "reason", str_json(v->reason));
    json_object_set_new(o, "todo", str_json(v->todo));
    json_object_set_new(obs, "canary", obs_json(&v->canary));
    json_object_set_new(obs, "stable", obs_json(&v->stable));
    json_object_set_new(obs, "stable_source", str_or_null(v->stable_source));
    json_object_set_new(o, "observed", obs);
    obs = NULL; /* owned by o now */
    json_object_set_new(o, "threshold", real_or_null(v->threshold));
    json_object_set_new(o, "window", duration_json(v, v->window_ms));
    json_object_set_new(o, "for", duration_json(v, v->for_ms));
    /* only when set: records judged on the present keep their exact bytes */
    if (v->catchup) json_object_set_new(o, "catchup", json_true());

    size_t n = json_dumpb(o, buf, size, DUMP_FLAGS);
    if (n == 0 || n >= size) {
        if (size > 0) buf[0] = '\0';
        goto out;
    }
    buf[n] = '\0';
    rc = (int)n;
out:
    json_decref(obs);
    json_decref(o);
    return rc;
}

/* ---- pretty ---- */

typedef struct out {
    char *p;
    size_t size, len;
    bool overflow;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->len + n >= o->size) {
        n = o->size - 1 - o->len;
        o->overflow = true;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void putf(out_t *o, const char *fmt, const char *s)
{
    char tmp[1024];
    int n = snprintf(tmp, sizeof(tmp), fmt, s);
    put(o, tmp, n < 0 ? 0 : (size_t)n >= sizeof(tmp) ? sizeof(tmp) - 1 : (size_t)n);
}

static const char *colour_of(const char *verdict)
{
    if (strcmp(verdict, "ROLLBACK") == 0) return CD_ANSI_RED;
    if (strcmp(verdict, "ALERT") == 0) return CD_ANSI_YELLOW;
    if (strcmp(verdict, "PROMOTE") == 0 || strcmp(verdict, "HEALTHY") == 0) return CD_ANSI_GREEN;
    if (strcmp(verdict, "ANALYZING") == 0) return CD_ANSI_DIM;
    return NULL;
}

/* "2026-11-27T12:05:30.000Z" -> "2026-11-27 12:05:30Z"; anything else as is. */
static void put_time(out_t *o, const char *t)
{
    size_t n = strlen(t);
    if (n >= 20 && t[10] == 'T' && t[n - 1] == 'Z') {
        put(o, t, 10);
        put(o, " ", 1);
        put(o, t + 11, 8);
        put(o, "Z", 1);
    } else {
        put(o, t, n);
    }
}

static const char *get_str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int finish(out_t *o)
{
    return o->overflow ? -1 : (int)o->len;
}

int cd_verdict_pretty_from_json(const char *line, size_t len, char *outbuf, size_t size,
                                bool colour)
{
    out_t o = {outbuf, size, 0, false};
    json_t *j;
    const char *time, *kind, *rule, *reason, *release, *service;

    if (size == 0) return -1;
    outbuf[0] = '\0';
    j = json_loadb(line, len, 0, NULL);
    time = j ? get_str(j, "time") : NULL;
    kind = j ? get_str(j, "kind") : NULL;
    if (!json_is_object(j) || !time || !kind ||
        (strcmp(kind, "verdict") != 0 && strcmp(kind, "state") != 0)) {
        json_decref(j);
        put(&o, line, len);
        return finish(&o);
    }
    rule = get_str(j, "rule");
    reason = get_str(j, "reason");
    release = get_str(j, "release");
    service = get_str(j, "service");

    put_time(&o, time);
    put(&o, "  ", 2);
    if (strcmp(kind, "state") == 0) {
        const char *from = get_str(j, "from"), *to = get_str(j, "to");
        putf(&o, "%-9s ", "state");
        putf(&o, "%-15s ", rule ? rule : "-");
        putf(&o, "%s -> ", from ? from : "?");
        putf(&o, "%s  ", to ? to : "?");
    } else {
        const char *verdict = get_str(j, "verdict");
        const char *c = colour && verdict ? colour_of(verdict) : NULL;
        if (c) put(&o, c, strlen(c));
        putf(&o, "%-9s", verdict ? verdict : "?");
        if (c) put(&o, CD_ANSI_RESET, strlen(CD_ANSI_RESET));
        putf(&o, " %-15s ", rule ? rule : "-");
    }
    if (json_is_true(json_object_get(j, "dry_run"))) put(&o, "[dry run] ", 10);
    if (reason) put(&o, reason, strlen(reason));
    if (strcmp(kind, "verdict") == 0 && release && *release) {
        putf(&o, " (release %s", release);
        if (service && *service) putf(&o, " of %s", service);
        put(&o, ")", 1);
    }
    json_decref(j);
    return finish(&o);
}

/* ---- parse (cd_verdict_from_json) ---- */

static bool str_into(const json_t *o, const char *key, char *dst, size_t size, const char **field)
{
    const json_t *j = json_object_get(o, key);
    if (json_is_null(j) || !j) {
        if (field) *field = NULL;
        dst[0] = '\0';
        return true;
    }
    if (!json_is_string(j)) return false;
    snprintf(dst, size, "%s", json_string_value(j));
    if (field) *field = dst;
    return true;
}

static bool obs_from(const json_t *j, cd_obs_t *o)
{
    memset(o, 0, sizeof(*o));
    if (!j || json_is_null(j)) return true;
    if (!json_is_object(j)) return false;
    const json_t *val = json_object_get(j, "value");
    o->valid = true;
    o->value = json_is_number(val) ? json_number_value(val) : NAN;
    o->numerator = (uint64_t)json_integer_value(json_object_get(j, "numerator"));
    o->denominator = (uint64_t)json_integer_value(json_object_get(j, "samples"));
    return true;
}

static bool duration_from(const json_t *j, int64_t *ms)
{
    *ms = 0;
    if (!j || json_is_null(j)) return true;
    return json_is_string(j) && cd_duration_parse(json_string_value(j), ms);
}

bool cd_verdict_from_json(const char *line, size_t len, cd_verdict_parsed_t *out, char *errbuf,
                          size_t errsize)
{
    json_error_t jerr;
    json_t *o = json_loadb(line, len, 0, &jerr);
    const char *why = NULL;
    memset(out, 0, sizeof(*out));
    cd_verdict_t *v = &out->v;
    if (!json_is_object(o)) {
        why = o ? "not a JSON object" : jerr.text;
        goto out;
    }
    const char *t = json_string_value(json_object_get(o, "time"));
    const char *kind = json_string_value(json_object_get(o, "kind"));
    if (!t || !cd_time_parse_rfc3339(t, strlen(t), &v->time_ms)) {
        why = "no RFC 3339 \"time\"";
        goto out;
    }
    if (kind && strcmp(kind, "verdict") == 0) {
        const char *w = json_string_value(json_object_get(o, "verdict"));
        v->record = CD_RECORD_VERDICT;
        int k = CD_VERDICT_ANALYZING;
        for (; w && k <= CD_VERDICT_ALERT; k++)
            if (strcmp(w, cd_verdict_kind_name((cd_verdict_kind_t)k)) == 0) break;
        if (!w || k > CD_VERDICT_ALERT) {
            why = "unknown \"verdict\"";
            goto out;
        }
        v->verdict = (cd_verdict_kind_t)k;
    } else if (kind && strcmp(kind, "state") == 0) {
        const char *f = json_string_value(json_object_get(o, "from"));
        const char *to = json_string_value(json_object_get(o, "to"));
        int a = -1, b = -1;
        for (int s = CD_STATE_INACTIVE; s <= CD_STATE_RESOLVED; s++) {
            if (f && strcmp(f, cd_rule_state_name((cd_rule_state_t)s)) == 0) a = s;
            if (to && strcmp(to, cd_rule_state_name((cd_rule_state_t)s)) == 0) b = s;
        }
        if (a < 0 || b < 0) {
            why = "unknown \"from\" / \"to\"";
            goto out;
        }
        v->record = CD_RECORD_STATE;
        v->from = (cd_rule_state_t)a;
        v->to = (cd_rule_state_t)b;
    } else {
        why = "\"kind\" is neither \"verdict\" nor \"state\"";
        goto out;
    }
    const char *act = json_string_value(json_object_get(o, "action"));
    v->action = act && strcmp(act, cd_action_name(CD_ACTION_ALERT)) == 0 ? CD_ACTION_ALERT
                                                                         : CD_ACTION_ROLLBACK;
    v->dry_run = json_is_true(json_object_get(o, "dry_run"));
    v->catchup = json_is_true(json_object_get(o, "catchup"));
    const json_t *obs = json_object_get(o, "observed");
    const json_t *th = json_object_get(o, "threshold");
    v->threshold = json_is_number(th) ? json_number_value(th) : NAN;
    const char *reason = json_string_value(json_object_get(o, "reason"));
    const char *todo = json_string_value(json_object_get(o, "todo"));
    snprintf(v->reason, sizeof(v->reason), "%s", reason ? reason : "");
    snprintf(v->todo, sizeof(v->todo), "%s", todo ? todo : "");
    if (!str_into(o, "rule", out->rule, sizeof(out->rule), &v->rule) ||
        !str_into(o, "rule_kind", out->rule_kind, sizeof(out->rule_kind), &v->rule_kind) ||
        !str_into(o, "release", out->release, sizeof(out->release), &v->release) ||
        !str_into(o, "service", out->service, sizeof(out->service), &v->service) ||
        (obs && !json_is_object(obs)) ||
        !str_into(obs, "stable_source", out->stable_source, sizeof(out->stable_source),
                  &v->stable_source) ||
        !obs_from(json_object_get(obs, "canary"), &v->canary) ||
        !obs_from(json_object_get(obs, "stable"), &v->stable) ||
        !duration_from(json_object_get(o, "window"), &v->window_ms) ||
        !duration_from(json_object_get(o, "for"), &v->for_ms))
        why = "a key has the wrong type";
    if (!v->release) v->release = out->release;
    if (!v->service) v->service = out->service;
out:
    if (why) snprintf(errbuf, errsize, "not a verdict record: %s", why);
    json_decref(o);
    return why == NULL;
}
