/*
 * alertmanager.c - the "alertmanager" sink: canaryd's rule alerts POSTed to
 * Alertmanager's API (POST <url>/api/v2/alerts, a JSON array of
 * postableAlert: labels, annotations, startsAt, endsAt, generatorURL, as
 * api/v2/openapi.yaml defines it), so that users keep their routing,
 * grouping, silences, inhibitions and receivers.
 *
 * Which records: state records of a rule. A rule entering "firing" makes an
 * alert firing from the record's time (startsAt, no endsAt); a rule leaving
 * "firing" resolves it (endsAt = the record's time, startsAt kept). Other
 * records (pending, verdict lines) are acknowledged without a request: the
 * firing state record of the rule that caused a ROLLBACK carries it.
 *
 * Data structure: a table of the alerts Alertmanager should know, one per
 * rule (at most CD_MAX_RULES), each firing or resolved-but-not-yet-
 * acknowledged. Every request carries the whole table, so one answer brings
 * Alertmanager up to date however many requests failed before it; resolved
 * entries leave the table once a request carrying them got a 2xx.
 *
 * Re-sending: Alertmanager resolves an alert posted without endsAt after its
 * resolve_timeout (5m by default) unless the alert is posted again. The
 * sink asks the dispatcher for a heartbeat (cd_sink_ops.heartbeat) every
 * resend_interval (default 1m) while its table holds anything; the
 * config checks resend_interval < resolve_timeout (the Alertmanager's
 * setting, declared here, default 5m).
 *
 * Transport: the webhook sink's (webhook.c, format "generic": the body is
 * sent as given), with its timeouts, headers, HMAC, Retry-After and
 * redaction: this file renders bodies and keeps the table, nothing more.
 * The URL is a secret (url_file / url_env, docs/config.md) and is only ever
 * shown as scheme://host/….
 *
 * Threading: init on the main thread, everything else on the dispatcher
 * thread (state is unshared).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canaryd/log.h"
#include "canaryd/sink.h"
#include "canaryd/timeutil.h"
#include "sink_util.h"

extern const struct cd_sink_ops cd_sink_webhook;

#define API_PATH "/api/v2/alerts"
#define DEFAULT_RESEND_MS 60000
#define DEFAULT_RESOLVE_TIMEOUT_MS 300000

typedef struct am_alert {
    char rule[CD_NAME_MAX];
    json_t *alert; /* the postableAlert as last rendered (owned) */
    bool resolved; /* endsAt set: dropped once a 2xx carried it */
} am_alert_t;

typedef struct am {
    void *http;     /* the webhook sink's state doing the requests */
    json_t *labels; /* configured extra labels (owned), may be empty */
    char *generator_url;
    int64_t resend_ms, resolve_timeout_ms;
    am_alert_t alerts[CD_MAX_RULES];
    int nalerts;
    int64_t last_sent_ms; /* monotonic time of the last request that held the table */
    /* the request in flight: its message id and whether it carried resolved
     * entries to drop on success */
    uint64_t inflight_id;
    cd_sink_done_cb done;
    void *done_opaque;
} am_t;

static const char *const KEYS[] = {
    "url",     "resend_interval", "resolve_timeout", "labels", "generator_url",
    "headers", "connect_timeout", "timeout",         "secret", NULL};

static void am_destroy(void *state);

/* Alertmanager label names: [a-zA-Z_][a-zA-Z0-9_]* (Prometheus's data model). */
static bool label_name_ok(const char *s)
{
    if (!*s || (*s >= '0' && *s <= '9')) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

static const char *const OWN_LABELS[] = {"alertname", "action",   "release",
                                         "service",   "severity", NULL};

static bool parse_labels(am_t *a, const json_t *l, const char *path, cd_diag_t *diag)
{
    char p[256];
    cd_sconf_path(p, sizeof(p), path, "labels");
    a->labels = json_object();
    if (!a->labels) return false;
    if (!l) return true;
    if (!json_is_object(l)) {
        cd_sconf_bad(diag, p, l, false, "is not an object",
                     "{\"name\": \"value\", ...} with label names such as \"env\"");
        return false;
    }
    const char *k;
    json_t *v;
    bool ok = true;
    json_object_foreach((json_t *)l, k, v)
    {
        char q[300];
        cd_sconf_path(q, sizeof(q), p, k);
        bool own = false;
        for (int i = 0; OWN_LABELS[i]; i++)
            own |= strcmp(k, OWN_LABELS[i]) == 0;
        if (!label_name_ok(k) || own) {
            cd_sconf_bad(diag, q, NULL, false,
                         own ? "is a label canaryd sets itself" : "is not a label name",
                         "a name matching [a-zA-Z_][a-zA-Z0-9_]* other than alertname, action, "
                         "release, service, severity");
            ok = false;
        } else if (!json_is_string(v) || json_string_length(v) == 0) {
            cd_sconf_bad(diag, q, v, false, "is not a label value", "a non-empty string");
            ok = false;
        } else {
            json_object_set(a->labels, k, v);
        }
    }
    return ok;
}

/* The webhook sink's entry for the transport: url + API path, format
 * generic, and the transport keys as given. NULL when out of memory. */
static json_t *transport_entry(const json_t *e, const char *url)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    bool has_path = n >= strlen(API_PATH) &&
                    strncmp(url + n - strlen(API_PATH), API_PATH, strlen(API_PATH)) == 0;
    char *full = malloc(n + sizeof(API_PATH));
    if (!full) return NULL;
    snprintf(full, n + sizeof(API_PATH), "%.*s%s", (int)n, url, has_path ? "" : API_PATH);
    json_t *t = json_pack("{s:s, s:s}", "url", full, "format", "generic");
    free(full);
    static const char *const PASS[] = {"name",    "headers", "connect_timeout",
                                       "timeout", "secret",  NULL};
    for (int i = 0; t && PASS[i]; i++) {
        json_t *v = json_object_get(e, PASS[i]);
        if (v) json_object_set(t, PASS[i], v);
    }
    return t;
}

static void *am_init(const void *conf, const char *path, cd_diag_t *diag)
{
    const json_t *e = conf;
    int before = diag->count;
    char p[256];
    am_t *a = calloc(1, sizeof(*a));
    if (!a) {
        cd_diag_add(diag, "%s: out of memory", path);
        return NULL;
    }
    a->resend_ms = DEFAULT_RESEND_MS;
    a->resolve_timeout_ms = DEFAULT_RESOLVE_TIMEOUT_MS;
    cd_sconf_keys(diag, path, e, KEYS, true);
    char *url = NULL;
    cd_sconf_string(diag, path, e, "url", true, true, &url);
    /* Both parsed (each reports its own problem) before they are compared. */
    bool resend_ok =
        cd_sconf_duration(diag, path, e, "resend_interval", 1000, 3600000, &a->resend_ms);
    bool timeout_ok = cd_sconf_duration(diag, path, e, "resolve_timeout", 2000, 24 * 3600000LL,
                                        &a->resolve_timeout_ms);
    if (resend_ok && timeout_ok && a->resend_ms >= a->resolve_timeout_ms) {
        char acc[128], rt[32];
        cd_sconf_path(p, sizeof(p), path, "resend_interval");
        snprintf(acc, sizeof(acc),
                 "a duration shorter than resolve_timeout (%s), so Alertmanager hears a firing "
                 "alert again before it resolves it",
                 cd_duration_format(a->resolve_timeout_ms, rt, sizeof(rt)));
        cd_sconf_bad(diag, p, json_object_get(e, "resend_interval"), false,
                     "is not shorter than resolve_timeout", acc);
    }
    parse_labels(a, json_object_get(e, "labels"), path, diag);
    cd_sconf_string(diag, path, e, "generator_url", false, false, &a->generator_url);
    if (url) {
        json_t *t = transport_entry(e, url);
        memset(url, 0, strlen(url));
        free(url);
        if (!t) {
            cd_diag_add(diag, "%s: out of memory", path);
        } else {
            /* Its messages name url, headers, ... under this entry's path. */
            a->http = cd_sink_webhook.init(t, path, diag);
            json_decref(t);
        }
    }
    if (diag->count > before || !a->http) goto err;
    return a;
err:
    am_destroy(a);
    return NULL;
}

static am_alert_t *find(am_t *a, const char *rule)
{
    for (int i = 0; i < a->nalerts; i++)
        if (strcmp(a->alerts[i].rule, rule) == 0) return &a->alerts[i];
    return NULL;
}

static void drop(am_t *a, int i)
{
    json_decref(a->alerts[i].alert);
    a->alerts[i] = a->alerts[--a->nalerts];
}

/* The postableAlert for a firing rule (endsAt absent) from its record. */
static json_t *render_firing(const am_t *a, const cd_sink_msg_t *m)
{
    const cd_verdict_t *v = m->v;
    const char *release = v->release && *v->release ? v->release : "unknown";
    bool rollback = v->action == CD_ACTION_ROLLBACK;
    char starts[40], summary[512];
    cd_time_format(v->time_ms, starts, sizeof(starts));

    json_t *labels = json_pack("{s:s, s:s, s:s, s:s}", "alertname", v->rule, "action",
                               rollback ? "rollback" : "alert", "release", release, "severity",
                               rollback ? "critical" : "warning");
    if (!labels) return NULL;
    if (m->service && *m->service) json_object_set_new(labels, "service", json_string(m->service));
    json_object_update(labels, a->labels);
    snprintf(summary, sizeof(summary), "%s: %s canary %s%s%s", v->rule,
             rollback ? "roll back" : "alert on", release, m->service && *m->service ? " of " : "",
             m->service ? m->service : "");
    json_t *ann = json_pack("{s:s, s:s}", "summary", summary, "description", v->reason);
    if (ann && *v->todo) json_object_set_new(ann, "todo", json_string(v->todo));
    json_t *alert =
        json_pack("{s:o, s:o, s:s}", "labels", labels, "annotations", ann, "startsAt", starts);
    if (alert && a->generator_url)
        json_object_set_new(alert, "generatorURL", json_string(a->generator_url));
    return alert;
}

/* Applies a record to the table. False when out of memory. */
static bool apply(am_t *a, const cd_sink_msg_t *m)
{
    const cd_verdict_t *v = m->v;
    if (v->record != CD_RECORD_STATE || !v->rule) return true;
    am_alert_t *al = find(a, v->rule);
    if (v->to == CD_STATE_FIRING) {
        json_t *j = render_firing(a, m);
        if (!j) return false;
        if (!al) {
            if (a->nalerts == CD_MAX_RULES) { /* cannot happen: one entry per rule */
                json_decref(j);
                return true;
            }
            al = &a->alerts[a->nalerts++];
            snprintf(al->rule, sizeof(al->rule), "%s", v->rule);
        } else if (!al->resolved) {
            /* A retry, or a repeat: the alert started when it first fired. */
            json_object_set(j, "startsAt", json_object_get(al->alert, "startsAt"));
            json_decref(al->alert);
            al->alert = NULL;
        } else {
            json_decref(al->alert); /* fired again after resolving: a new start */
        }
        al->alert = j;
        al->resolved = false;
    } else if (v->from == CD_STATE_FIRING || v->to == CD_STATE_RESOLVED) {
        if (!al) return true; /* resolved before this sink heard it fire (or already acked) */
        if (!al->resolved) {
            char ends[40];
            cd_time_format(v->time_ms, ends, sizeof(ends));
            json_object_set_new(al->alert, "endsAt", json_string(ends));
            al->resolved = true;
        }
    }
    return true;
}

static cd_sink_result_t am_deliver(void *state, const cd_sink_msg_t *m, int64_t *retry_after_ms)
{
    am_t *a = state;
    if (!m->heartbeat && !apply(a, m)) return CD_SINK_RETRY;
    bool relevant =
        m->heartbeat || (m->v->record == CD_RECORD_STATE && m->v->rule &&
                         (m->v->to == CD_STATE_FIRING || m->v->from == CD_STATE_FIRING ||
                          m->v->to == CD_STATE_RESOLVED));
    if (!relevant || a->nalerts == 0) return CD_SINK_OK;

    json_t *arr = json_array();
    for (int i = 0; arr && i < a->nalerts; i++)
        json_array_append(arr, a->alerts[i].alert);
    char *body = arr ? json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(arr);
    if (!body) return CD_SINK_RETRY;
    cd_sink_msg_t t = *m;
    t.json = body;
    t.json_len = strlen(body);
    cd_sink_result_t r = cd_sink_webhook.deliver(a->http, &t, retry_after_ms);
    free(body); /* the webhook sink copied it (format generic) */
    a->last_sent_ms = cd_sink_now_ms();
    a->inflight_id = m->id;
    if (r == CD_SINK_OK)
        for (int i = a->nalerts; i-- > 0;)
            if (a->alerts[i].resolved) drop(a, i);
    return r;
}

/* The webhook transport's completion, seen first here. */
static void on_done(void *opaque, uint64_t id, cd_sink_result_t r, int64_t retry_after_ms)
{
    am_t *a = opaque;
    if (r == CD_SINK_OK && id == a->inflight_id)
        for (int i = a->nalerts; i-- > 0;)
            if (a->alerts[i].resolved) drop(a, i);
    a->done(a->done_opaque, id, r, retry_after_ms);
}

static int am_poll(void *state, int timeout_ms, cd_sink_done_cb done, void *opaque)
{
    am_t *a = state;
    a->done = done;
    a->done_opaque = opaque;
    return cd_sink_webhook.poll(a->http, timeout_ms, on_done, a);
}

static int64_t am_heartbeat(void *state, int64_t now_ms)
{
    am_t *a = state;
    (void)now_ms;
    /* Resolved entries not yet acknowledged are re-sent too: a resolution
     * lost for good would leave the alert firing until resolve_timeout. */
    return a->nalerts > 0 ? a->last_sent_ms + a->resend_ms : INT64_MAX;
}

static void am_destroy(void *state)
{
    am_t *a = state;
    if (!a) return;
    if (a->http) cd_sink_webhook.destroy(a->http);
    for (int i = 0; i < a->nalerts; i++)
        json_decref(a->alerts[i].alert);
    json_decref(a->labels);
    free(a->generator_url);
    free(a);
}

const struct cd_sink_ops cd_sink_alertmanager = {
    .name = "alertmanager",
    .init = am_init,
    .deliver = am_deliver,
    .poll = am_poll,
    .destroy = am_destroy,
    .heartbeat = am_heartbeat,
};
