/*
 * webhook_format.c - the body of each webhook format (see webhook.h).
 *
 * Built with jansson (JSON_PRESERVE_ORDER | JSON_COMPACT), so bodies are
 * deterministic and byte-exact tests can pin them. The text every chat
 * format shows is made once by describe(): a headline (what happened, which
 * release), the reason (why, with the numbers) and the todo (what to do).
 * Length limits are enforced on code points, never cutting a UTF-8
 * sequence, with "…" marking a cut.
 *
 * Alertmanager's fingerprint is computed the way Prometheus's
 * model.LabelSet.Fingerprint did it (FNV-1a 64 over the label pairs sorted
 * by name, each name and value followed by 0xff): receivers only need it to
 * be stable for the same labels, so a resolved alert matches its firing one.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canaryd/timeutil.h"
#include "canaryd/webhook.h"
#include "sink_util.h"

const char *const cd_webhook_format_names[] = {
    "slack", "msteams", "discord", "mattermost", "googlechat", "generic", "alertmanager", NULL};

typedef enum tone { TONE_BAD, TONE_WARN, TONE_GOOD, TONE_NEUTRAL } tone_t;

typedef struct desc {
    char headline[512];
    const char *reason; /* with "[dry run] " in front for dry-run records: see reason_buf */
    char reason_buf[700];
    const char *todo;
    char time[40], window[32];
    const char *release, *rule, *service;
    tone_t tone;
    bool resolved; /* a state record: an alert rule resolved */
} desc_t;

static void describe(const cd_sink_msg_t *m, desc_t *d)
{
    const cd_verdict_t *v = m->v;
    char where[300];
    memset(d, 0, sizeof(*d));
    d->release = v->release && *v->release ? v->release : "unknown";
    d->rule = v->rule;
    d->service = m->service ? m->service : "";
    snprintf(where, sizeof(where), "canary %s%s%s", d->release, *d->service ? " of " : "",
             d->service);
    if (v->record == CD_RECORD_STATE) {
        d->resolved = v->to == CD_STATE_RESOLVED;
        if (d->resolved)
            snprintf(d->headline, sizeof(d->headline), "RESOLVED %s: %s", v->rule ? v->rule : "-",
                     where);
        else
            snprintf(d->headline, sizeof(d->headline), "%s %s -> %s: %s", v->rule ? v->rule : "-",
                     cd_rule_state_name(v->from), cd_rule_state_name(v->to), where);
        d->tone = d->resolved || v->to == CD_STATE_INACTIVE ? TONE_GOOD : TONE_WARN;
    } else {
        snprintf(d->headline, sizeof(d->headline), "%s %s%s%s", cd_verdict_kind_name(v->verdict),
                 where, v->rule ? ", rule " : "", v->rule ? v->rule : "");
        d->tone = v->verdict == CD_VERDICT_ROLLBACK    ? TONE_BAD
                  : v->verdict == CD_VERDICT_ALERT     ? TONE_WARN
                  : v->verdict == CD_VERDICT_ANALYZING ? TONE_NEUTRAL
                                                       : TONE_GOOD;
    }
    snprintf(d->reason_buf, sizeof(d->reason_buf), "%s%s", v->dry_run ? "[dry run] " : "",
             v->reason);
    d->reason = d->reason_buf;
    d->todo = v->todo;
    cd_time_format(v->time_ms, d->time, sizeof(d->time));
    if (v->window_ms > 0) cd_duration_format(v->window_ms, d->window, sizeof(d->window));
}

/* s cut to max_chars code points, "…" ending a cut text (within the limit). */
static json_t *limited(const char *s, size_t max_chars)
{
    size_t len = strlen(s);
    size_t n = cd_utf8_prefix(s, len, max_chars, len);
    if (n == len) return json_string(s);
    n = cd_utf8_prefix(s, len, max_chars - 1, len);
    char *buf = malloc(n + 4);
    if (!buf) return NULL;
    memcpy(buf, s, n);
    memcpy(buf + n, "\xe2\x80\xa6", 4); /* U+2026 and the NUL */
    json_t *j = json_string(buf);
    free(buf);
    return j;
}

/* limited() for Slack mrkdwn: a cut never leaves half an "&amp;" entity. */
static json_t *limited_mrkdwn(char *s, size_t max_chars)
{
    size_t len = strlen(s);
    if (cd_utf8_prefix(s, len, max_chars, len) == len) return json_string(s);
    size_t n = cd_utf8_prefix(s, len, max_chars - 1, len);
    char *amp = memrchr(s, '&', n);
    if (amp && !memchr(amp, ';', (size_t)(s + n - amp))) n = (size_t)(amp - s);
    char *buf = malloc(n + 4);
    if (!buf) return NULL;
    memcpy(buf, s, n);
    memcpy(buf + n, "\xe2\x80\xa6", 4); /* U+2026 and the NUL */
    json_t *j = json_string(buf);
    free(buf);
    return j;
}

/* Slack mrkdwn: &, < and > are control characters and must be escaped. */
static void slack_escape(const char *s, char *out, size_t size)
{
    size_t n = 0;
    for (; *s && n + 6 < size; s++) {
        const char *rep = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
        if (rep) {
            n += (size_t)snprintf(out + n, size - n, "%s", rep);
        } else {
            out[n++] = *s;
        }
    }
    out[n] = '\0';
}

static const char *hex_colour(tone_t t)
{
    static const char *const C[] = {"#d00000", "#f2a900", "#2eb67d", "#9e9e9e"};
    return C[t];
}

static json_t *slack(const desc_t *d)
{
    char head[2600], reason[3600], todo[1300], body[7600], ctx[700];
    slack_escape(d->headline, head, sizeof(head));
    slack_escape(d->reason, reason, sizeof(reason));
    slack_escape(d->todo, todo, sizeof(todo));
    snprintf(body, sizeof(body), "*%s*\n%s%s%s", head, reason, *todo ? "\n*What to do:* " : "",
             todo);
    snprintf(ctx, sizeof(ctx), "release %s%s%s%s%s%s%s · %s", d->release,
             *d->service ? " · service " : "", d->service, d->rule ? " · rule " : "",
             d->rule ? d->rule : "", *d->window ? " · window " : "", d->window, d->time);
    char ctx_esc[3600];
    slack_escape(ctx, ctx_esc, sizeof(ctx_esc));
    return json_pack("{s:o, s:[{s:s, s:[{s:s, s:{s:s, s:o}}, {s:s, s:[{s:s, s:o}]}]}]}", "text",
                     limited_mrkdwn(head, 3000), "attachments", "color", hex_colour(d->tone),
                     "blocks", "type", "section", "text", "type", "mrkdwn", "text",
                     limited_mrkdwn(body, 3000), "type", "context", "elements", "type", "mrkdwn",
                     "text", limited_mrkdwn(ctx_esc, 3000));
}

static json_t *msteams(const desc_t *d)
{
    static const char *const COLOUR[] = {"Attention", "Warning", "Good", "Default"};
    json_t *facts = json_array();
    json_array_append_new(facts, json_pack("{s:s, s:s}", "title", "Release", "value", d->release));
    if (*d->service)
        json_array_append_new(facts,
                              json_pack("{s:s, s:s}", "title", "Service", "value", d->service));
    if (d->rule)
        json_array_append_new(facts, json_pack("{s:s, s:s}", "title", "Rule", "value", d->rule));
    if (*d->window)
        json_array_append_new(facts,
                              json_pack("{s:s, s:s}", "title", "Window", "value", d->window));
    json_array_append_new(facts, json_pack("{s:s, s:s}", "title", "Time", "value", d->time));
    json_t *body = json_pack("[{s:s, s:s, s:s, s:s, s:s, s:b}, {s:s, s:s, s:b}, {s:s, s:o}]",
                             "type", "TextBlock", "size", "Medium", "weight", "Bolder", "color",
                             COLOUR[d->tone], "text", d->headline, "wrap", 1, "type", "TextBlock",
                             "text", d->reason, "wrap", 1, "type", "FactSet", "facts", facts);
    if (body && *d->todo) {
        char todo[400];
        snprintf(todo, sizeof(todo), "What to do: %s", d->todo);
        json_array_append_new(body, json_pack("{s:s, s:s, s:s, s:b}", "type", "TextBlock", "weight",
                                              "Bolder", "text", todo, "wrap", 1));
    }
    return json_pack("{s:s, s:[{s:s, s:n, s:{s:s, s:s, s:s, s:o}}]}", "type", "message",
                     "attachments", "contentType", "application/vnd.microsoft.card.adaptive",
                     "contentUrl", "content", "$schema",
                     "http://adaptivecards.io/schemas/adaptive-card.json", "type", "AdaptiveCard",
                     "version", "1.2", "body", body);
}

static json_t *field(const char *name, const char *value, size_t max, bool is_inline)
{
    return json_pack("{s:s, s:o, s:b}", "name", name, "value", limited(value, max), "inline",
                     is_inline);
}

static json_t *discord(const desc_t *d, const cd_webhook_opts_t *o)
{
    static const int COLOUR[] = {0xd00000, 0xf2a900, 0x2eb67d, 0x9e9e9e};
    json_t *fields = json_array();
    json_array_append_new(fields, field("Release", d->release, 1024, true));
    if (*d->service) json_array_append_new(fields, field("Service", d->service, 1024, true));
    if (d->rule) json_array_append_new(fields, field("Rule", d->rule, 1024, true));
    if (*d->window) json_array_append_new(fields, field("Window", d->window, 1024, true));
    if (*d->todo) json_array_append_new(fields, field("What to do", d->todo, 1024, false));
    json_t *root = json_pack("{s:o}", "content", limited(d->headline, 2000));
    if (root && o->username) json_object_set_new(root, "username", limited(o->username, 80));
    json_t *embeds = json_pack("[{s:o, s:o, s:i, s:o, s:s}]", "title", limited(d->headline, 256),
                               "description", limited(d->reason, 4096), "color", COLOUR[d->tone],
                               "fields", fields, "timestamp", d->time);
    if (root) json_object_set_new(root, "embeds", embeds);
    return root;
}

static json_t *mm_field(const char *title, const char *value, bool is_short)
{
    return json_pack("{s:b, s:s, s:s}", "short", is_short, "title", title, "value", value);
}

static json_t *mattermost(const desc_t *d, const cd_webhook_opts_t *o)
{
    json_t *fields = json_array();
    json_array_append_new(fields, mm_field("Release", d->release, true));
    if (*d->service) json_array_append_new(fields, mm_field("Service", d->service, true));
    if (d->rule) json_array_append_new(fields, mm_field("Rule", d->rule, true));
    if (*d->window) json_array_append_new(fields, mm_field("Window", d->window, true));
    if (*d->todo) json_array_append_new(fields, mm_field("What to do", d->todo, false));
    json_t *root = json_pack("{s:s}", "text", d->headline);
    if (root && o->username) json_object_set_new(root, "username", json_string(o->username));
    json_t *att = json_pack("[{s:s, s:s, s:s, s:s, s:o, s:s}]", "fallback", d->headline, "color",
                            hex_colour(d->tone), "title", d->headline, "text", d->reason, "fields",
                            fields, "footer", d->time);
    if (root) json_object_set_new(root, "attachments", att);
    return root;
}

static json_t *googlechat(const desc_t *d)
{
    char text[2000];
    snprintf(text, sizeof(text), "*%s*\n%s%s%s\nrelease %s%s%s%s%s · %s", d->headline, d->reason,
             *d->todo ? "\n*What to do:* " : "", d->todo, d->release, d->rule ? " · rule " : "",
             d->rule ? d->rule : "", *d->window ? " · window " : "", d->window, d->time);
    return json_pack("{s:s}", "text", text);
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    h ^= 0xff;
    return h * 1099511628211ull;
}

static json_t *alertmanager(const desc_t *d, const cd_sink_msg_t *m, const cd_webhook_opts_t *o)
{
    const cd_verdict_t *v = m->v;
    const char *alertname = v->rule ? v->rule : "canary-release";
    const char *severity = !v->rule ? (v->verdict == CD_VERDICT_ROLLBACK ? "critical" : "info")
                           : v->action == CD_ACTION_ROLLBACK ? "critical"
                                                             : "warning";
    /* labels in name order: the fingerprint hashes them in that order */
    json_t *labels = json_object();
    if (v->rule)
        json_object_set_new(labels, "action",
                            json_string(v->action == CD_ACTION_ROLLBACK ? "rollback" : "alert"));
    json_object_set_new(labels, "alertname", json_string(alertname));
    json_object_set_new(labels, "release", json_string(d->release));
    if (*d->service) json_object_set_new(labels, "service", json_string(d->service));
    json_object_set_new(labels, "severity", json_string(severity));
    uint64_t h = 14695981039346656037ull;
    const char *k;
    json_t *val;
    json_object_foreach(labels, k, val)
    {
        h = fnv1a(h, k);
        h = fnv1a(h, json_string_value(val));
    }
    char fp[20], group_key[300];
    snprintf(fp, sizeof(fp), "%016llx", (unsigned long long)h);
    snprintf(group_key, sizeof(group_key), "{}:{alertname=\"%s\"}", alertname);

    json_t *ann = json_pack("{s:s, s:s}", "summary", d->headline, "description", d->reason);
    if (ann && *d->todo) json_object_set_new(ann, "todo", json_string(d->todo));
    if (ann)
        json_object_set_new(ann, "verdict",
                            json_string(v->record == CD_RECORD_STATE
                                            ? cd_rule_state_name(v->to)
                                            : cd_verdict_kind_name(v->verdict)));
    const char *status = d->resolved ? "resolved" : "firing";
    json_t *alert = json_pack("{s:s, s:O, s:O, s:s, s:s, s:s, s:s}", "status", status, "labels",
                              labels, "annotations", ann, "startsAt", d->time, "endsAt",
                              d->resolved ? d->time : "0001-01-01T00:00:00Z", "generatorURL", "",
                              "fingerprint", fp);
    json_t *root =
        json_pack("{s:s, s:s, s:[o], s:{s:s}, s:o, s:o, s:s, s:s, s:s, s:i}", "receiver",
                  o->receiver ? o->receiver : "canaryd", "status", status, "alerts", alert,
                  "groupLabels", "alertname", alertname, "commonLabels", labels,
                  "commonAnnotations", ann, "externalURL", o->external_url ? o->external_url : "",
                  "version", "4", "groupKey", group_key, "truncatedAlerts", 0);
    return root;
}

char *cd_webhook_render(cd_webhook_format_t f, const cd_sink_msg_t *m, const cd_webhook_opts_t *o,
                        size_t *len)
{
    static const cd_webhook_opts_t none = {0};
    desc_t d;
    json_t *j = NULL;
    if (!o) o = &none;
    if (f == CD_WEBHOOK_GENERIC) {
        char *s = malloc(m->json_len + 1);
        if (!s) return NULL;
        memcpy(s, m->json, m->json_len);
        s[m->json_len] = '\0';
        *len = m->json_len;
        return s;
    }
    describe(m, &d);
    switch (f) {
    case CD_WEBHOOK_SLACK:
        j = slack(&d);
        break;
    case CD_WEBHOOK_MSTEAMS:
        j = msteams(&d);
        break;
    case CD_WEBHOOK_DISCORD:
        j = discord(&d, o);
        break;
    case CD_WEBHOOK_MATTERMOST:
        j = mattermost(&d, o);
        break;
    case CD_WEBHOOK_GOOGLECHAT:
        j = googlechat(&d);
        break;
    case CD_WEBHOOK_ALERTMANAGER:
        j = alertmanager(&d, m, o);
        break;
    case CD_WEBHOOK_GENERIC:
        break;
    }
    if (!j) return NULL;
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (s) *len = strlen(s);
    return s;
}
