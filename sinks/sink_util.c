/*
 * sink_util.c - config reading, URL redaction and UTF-8 cutting shared by the
 * sinks (see sink_util.h).
 *
 * URLs are taken apart with libcurl's URL API (curl_url), not by hand: it is
 * the parser the webhook sink's transfers use, so what is redacted is exactly
 * what would be sent.
 */
#include "sink_util.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "canaryd/clock.h"
#include "canaryd/timeutil.h"

const char *const cd_sink_common_keys[] = {"type",       "name",          "filter", "retry",
                                           "rate_limit", "send_resolved", NULL};

int64_t cd_sink_now_ms(void)
{
    return cd_mono_ms();
}

void cd_sconf_path(char *out, size_t size, const char *path, const char *key)
{
    snprintf(out, size, "%s%s%s", path, *path ? "." : "", key);
}

void cd_sconf_bad(cd_diag_t *d, const char *path, const json_t *v, bool secret, const char *problem,
                  const char *accepted)
{
    char val[96] = "";
    if (v && secret) {
        snprintf(val, sizeof(val), "(secret) ");
    } else if (v) {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
        if (s && strlen(s) > 60)
            snprintf(val, sizeof(val), "%.57s... ", s);
        else
            snprintf(val, sizeof(val), "%s ", s ? s : "(value)");
        free(s);
    }
    cd_diag_add(d, "%s: %s%s; accepted: %s", path, val, problem, accepted);
}

static bool in_list(const char *k, const char *const *list)
{
    for (; list && *list; list++)
        if (strcmp(k, *list) == 0) return true;
    return false;
}

bool cd_sconf_keys(cd_diag_t *d, const char *path, const json_t *obj, const char *const *known,
                   bool common)
{
    const char *k;
    json_t *v;
    bool ok = true;
    json_object_foreach((json_t *)obj, k, v)
    {
        if (in_list(k, known) || (common && in_list(k, cd_sink_common_keys))) continue;
        char list[512] = "", p[256];
        size_t n = 0;
        for (const char *const *l = known; l && *l && n < sizeof(list); l++)
            n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", n ? ", " : "", *l);
        for (const char *const *l = cd_sink_common_keys; common && *l && n < sizeof(list); l++)
            n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", n ? ", " : "", *l);
        cd_sconf_path(p, sizeof(p), path, k);
        cd_diag_add(d, "%s: unknown key; accepted: %s", p, list);
        ok = false;
    }
    return ok;
}

bool cd_sconf_string(cd_diag_t *d, const char *path, const json_t *obj, const char *key,
                     bool required, bool secret, char **out)
{
    char p[256];
    json_t *v = json_object_get(obj, key);
    cd_sconf_path(p, sizeof(p), path, key);
    if (!v) {
        if (!required) return true;
        cd_diag_add(d, "%s: missing; accepted: a non-empty string", p);
        return false;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        cd_sconf_bad(d, p, v, secret, "is not a non-empty string", "a non-empty string");
        return false;
    }
    char *s = strdup(json_string_value(v));
    if (!s) {
        cd_diag_add(d, "%s: out of memory", p);
        return false;
    }
    free(*out);
    *out = s;
    return true;
}

bool cd_sconf_duration(cd_diag_t *d, const char *path, const json_t *obj, const char *key,
                       int64_t lo, int64_t hi, int64_t *ms)
{
    char p[256], acc[160], a[32], b[32];
    json_t *v = json_object_get(obj, key);
    int64_t x = -1;
    if (!v) return true;
    cd_sconf_path(p, sizeof(p), path, key);
    if (json_is_integer(v))
        x = json_integer_value(v);
    else if (json_is_string(v) && !cd_duration_parse(json_string_value(v), &x))
        x = -1;
    snprintf(acc, sizeof(acc), "a duration from %s to %s, such as \"500ms\", \"10s\" or \"2m\"",
             cd_duration_format(lo, a, sizeof(a)), cd_duration_format(hi, b, sizeof(b)));
    if ((!json_is_integer(v) && !json_is_string(v)) || x < lo || x > hi) {
        cd_sconf_bad(d, p, v, false, x < 0 ? "is not a duration" : "is out of range", acc);
        return false;
    }
    *ms = x;
    return true;
}

bool cd_sconf_number(cd_diag_t *d, const char *path, const json_t *obj, const char *key, double lo,
                     double hi, double *out)
{
    char p[256], acc[96];
    json_t *v = json_object_get(obj, key);
    if (!v) return true;
    cd_sconf_path(p, sizeof(p), path, key);
    snprintf(acc, sizeof(acc), "a number from %.15g to %.15g", lo, hi);
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi) {
        cd_sconf_bad(d, p, v, false, json_is_number(v) ? "is out of range" : "is not a number",
                     acc);
        return false;
    }
    *out = json_number_value(v);
    return true;
}

bool cd_sconf_bool(cd_diag_t *d, const char *path, const json_t *obj, const char *key, bool *out)
{
    char p[256];
    json_t *v = json_object_get(obj, key);
    if (!v) return true;
    if (!json_is_boolean(v)) {
        cd_sconf_path(p, sizeof(p), path, key);
        cd_sconf_bad(d, p, v, false, "is not a boolean", "true or false");
        return false;
    }
    *out = json_is_true(v);
    return true;
}

int cd_sconf_enum(cd_diag_t *d, const char *path, const json_t *obj, const char *key,
                  const char *const *names, int dflt)
{
    char p[256], list[256] = "";
    json_t *v = json_object_get(obj, key);
    if (!v) return dflt;
    for (int i = 0; names[i]; i++)
        if (json_is_string(v) && strcmp(json_string_value(v), names[i]) == 0) return i;
    size_t n = 0;
    for (int i = 0; names[i] && n < sizeof(list); i++)
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s\"%s\"", i ? ", " : "", names[i]);
    cd_sconf_path(p, sizeof(p), path, key);
    cd_sconf_bad(d, p, v, false, "is not accepted", list);
    return -1;
}

char *cd_sink_redact_url(const char *url, char *out, size_t size)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    snprintf(out, size, "(unparseable URL)");
    if (!u) return out;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK) port = NULL;
        snprintf(out, size, "%s://%s%s%s/…", scheme, host, port ? ":" : "", port ? port : "");
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return out;
}

size_t cd_utf8_prefix(const char *s, size_t len, size_t max_chars, size_t max_bytes)
{
    size_t i = 0, chars = 0;
    while (i < len && chars < max_chars) {
        unsigned char c = (unsigned char)s[i];
        size_t w = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
        if (i + w > len || i + w > max_bytes) break;
        i += w;
        chars++;
    }
    return i;
}
