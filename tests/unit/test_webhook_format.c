/*
 * test_webhook_format.c - the exact body of every webhook format for one
 * ROLLBACK record (and a resolved alert for Alertmanager), and the length
 * limits: Slack's 3000-character section text, Discord's title / content /
 * field limits, cuts on UTF-8 character boundaries.
 *
 * These are the test seam of the webhook sink: cd_webhook_render() is what
 * the sink POSTs (test_webhook.c checks the transport).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canaryd/verdict_fmt.h"
#include "canaryd/webhook.h"

static cd_verdict_t sample_rollback(void)
{
    cd_verdict_t v;
    memset(&v, 0, sizeof(v));
    v.record = CD_RECORD_VERDICT;
    v.time_ms = 1795781364000; /* 2026-11-27T12:09:24Z */
    v.verdict = CD_VERDICT_ROLLBACK;
    v.rule = "error-rate";
    v.rule_kind = "relative";
    v.action = CD_ACTION_ROLLBACK;
    v.release = "2.5.0";
    v.service = "checkout"; /* as the pipeline stamps it; the dispatcher passes it as m.service */
    v.canary = (cd_obs_t){true, 29.0 / 1214, 29, 1214};
    v.stable = (cd_obs_t){true, 225.0 / 22964, 225, 22964};
    v.stable_source = "stable";
    v.threshold = 0.0196;
    v.window_ms = 60000;
    v.for_ms = 300000;
    snprintf(v.reason, sizeof(v.reason),
             "canary error-rate 2.39%% (29/1214) > 1.96%% for 5m (window 1m; samples canary 1214 "
             ">= 500)");
    snprintf(v.todo, sizeof(v.todo),
             "Roll back: error rate above 2x baseline for more than 5 minutes.");
    return v;
}

/* Renders v in format f (service "checkout", username "canaryd"). */
static char *render(const cd_verdict_t *v, cd_webhook_format_t f)
{
    static char json[4096];
    int n = cd_verdict_to_json(v, json, sizeof(json));
    cr_assert_gt(n, 0);
    cd_sink_msg_t m = {
        .id = 1, .v = v, .json = json, .json_len = (size_t)n, .service = "checkout", .attempt = 1};
    cd_webhook_opts_t o = {.username = "canaryd"};
    size_t len = 0;
    char *s = cd_webhook_render(f, &m, &o, &len);
    cr_assert_not_null(s);
    cr_assert_eq(len, strlen(s));
    return s;
}

static void expect_render(const cd_verdict_t *v, cd_webhook_format_t f, const char *want)
{
    char *s = render(v, f);
    cr_expect_str_eq(s, want, "format %s:\n got %s\nwant %s", cd_webhook_format_names[f], s, want);
    free(s);
}

static const char WANT_SLACK[] =
    "{\"text\":\"ROLLBACK canary 2.5.0 of checkout, rule error-rate\",\"attachments\":[{\"color"
    "\":\"#d00000\",\"blocks\":[{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":\""
    "*ROLLBACK canary 2.5.0 of checkout, rule error-rate*\\ncanary error-rate 2.39% (29/1214) &"
    "gt; 1.96% for 5m (window 1m; samples canary 1214 &gt;= 500)\\n*What to do:* Roll back: err"
    "or rate above 2x baseline for more than 5 minutes.\"}},{\"type\":\"context\",\"elements\":"
    "[{\"type\":\"mrkdwn\",\"text\":\"release 2.5.0 · service checkout · rule error-rate · wind"
    "ow 1m · 2026-11-27T12:09:24.000Z\"}]}]}]}";

static const char WANT_MSTEAMS[] =
    "{\"type\":\"message\",\"attachments\":[{\"contentType\":\"application/vnd.microsoft.card.a"
    "daptive\",\"contentUrl\":null,\"content\":{\"$schema\":\"http://adaptivecards.io/schemas/a"
    "daptive-card.json\",\"type\":\"AdaptiveCard\",\"version\":\"1.2\",\"body\":[{\"type\":\"Te"
    "xtBlock\",\"size\":\"Medium\",\"weight\":\"Bolder\",\"color\":\"Attention\",\"text\":\"ROL"
    "LBACK canary 2.5.0 of checkout, rule error-rate\",\"wrap\":true},{\"type\":\"TextBlock\",\""
    "text\":\"canary error-rate 2.39% (29/1214) > 1.96% for 5m (window 1m; samples canary 1214 "
    ">= 500)\",\"wrap\":true},{\"type\":\"FactSet\",\"facts\":[{\"title\":\"Release\",\"value\""
    ":\"2.5.0\"},{\"title\":\"Service\",\"value\":\"checkout\"},{\"title\":\"Rule\",\"value\":\""
    "error-rate\"},{\"title\":\"Window\",\"value\":\"1m\"},{\"title\":\"Time\",\"value\":\"2026"
    "-11-27T12:09:24.000Z\"}]},{\"type\":\"TextBlock\",\"weight\":\"Bolder\",\"text\":\"What to"
    " do: Roll back: error rate above 2x baseline for more than 5 minutes.\",\"wrap\":true}]}}]"
    "}";

static const char WANT_DISCORD[] =
    "{\"content\":\"ROLLBACK canary 2.5.0 of checkout, rule error-rate\",\"username\":\"canaryd"
    "\",\"embeds\":[{\"title\":\"ROLLBACK canary 2.5.0 of checkout, rule error-rate\",\"descrip"
    "tion\":\"canary error-rate 2.39% (29/1214) > 1.96% for 5m (window 1m; samples canary 1214 "
    ">= 500)\",\"color\":13631488,\"fields\":[{\"name\":\"Release\",\"value\":\"2.5.0\",\"inlin"
    "e\":true},{\"name\":\"Service\",\"value\":\"checkout\",\"inline\":true},{\"name\":\"Rule\""
    ",\"value\":\"error-rate\",\"inline\":true},{\"name\":\"Window\",\"value\":\"1m\",\"inline\""
    ":true},{\"name\":\"What to do\",\"value\":\"Roll back: error rate above 2x baseline for mo"
    "re than 5 minutes.\",\"inline\":false}],\"timestamp\":\"2026-11-27T12:09:24.000Z\"}]}";

static const char WANT_MATTERMOST[] =
    "{\"text\":\"ROLLBACK canary 2.5.0 of checkout, rule error-rate\",\"username\":\"canaryd\","
    "\"attachments\":[{\"fallback\":\"ROLLBACK canary 2.5.0 of checkout, rule error-rate\",\"co"
    "lor\":\"#d00000\",\"title\":\"ROLLBACK canary 2.5.0 of checkout, rule error-rate\",\"text\""
    ":\"canary error-rate 2.39% (29/1214) > 1.96% for 5m (window 1m; samples canary 1214 >= 500"
    ")\",\"fields\":[{\"short\":true,\"title\":\"Release\",\"value\":\"2.5.0\"},{\"short\":true"
    ",\"title\":\"Service\",\"value\":\"checkout\"},{\"short\":true,\"title\":\"Rule\",\"value\""
    ":\"error-rate\"},{\"short\":true,\"title\":\"Window\",\"value\":\"1m\"},{\"short\":false,\""
    "title\":\"What to do\",\"value\":\"Roll back: error rate above 2x baseline for more than 5"
    " minutes.\"}],\"footer\":\"2026-11-27T12:09:24.000Z\"}]}";

static const char WANT_GOOGLECHAT[] =
    "{\"text\":\"*ROLLBACK canary 2.5.0 of checkout, rule error-rate*\\ncanary error-rate 2.39%"
    " (29/1214) > 1.96% for 5m (window 1m; samples canary 1214 >= 500)\\n*What to do:* Roll bac"
    "k: error rate above 2x baseline for more than 5 minutes.\\nrelease 2.5.0 · rule error-rate"
    " · window 1m · 2026-11-27T12:09:24.000Z\"}";

static const char WANT_GENERIC[] =
    "{\"time\":\"2026-11-27T12:09:24.000Z\",\"kind\":\"verdict\",\"verdict\":\"ROLLBACK\",\"rul"
    "e\":\"error-rate\",\"rule_kind\":\"relative\",\"action\":\"rollback\",\"dry_run\":false,\""
    "release\":\"2.5.0\",\"service\":\"checkout\",\"reason\":\"canary error-rate 2.39% (29/1214) "
    "> 1.96% for 5m (window "
    "1m; samples canary 1214 >= 500)\",\"todo\":\"Roll back: error rate above 2x baseline for m"
    "ore than 5 minutes.\",\"observed\":{\"canary\":{\"value\":0.0238879736408567,\"numerator\""
    ":29,\"samples\":1214},\"stable\":{\"value\":0.00979794460895314,\"numerator\":225,\"sample"
    "s\":22964},\"stable_source\":\"stable\"},\"threshold\":0.0196,\"window\":\"1m\",\"for\":\""
    "5m\"}";

static const char WANT_ALERTMANAGER[] =
    "{\"receiver\":\"canaryd\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\",\"label"
    "s\":{\"action\":\"rollback\",\"alertname\":\"error-rate\",\"release\":\"2.5.0\",\"service\""
    ":\"checkout\",\"severity\":\"critical\"},\"annotations\":{\"summary\":\"ROLLBACK canary 2."
    "5.0 of checkout, rule error-rate\",\"description\":\"canary error-rate 2.39% (29/1214) > 1"
    ".96% for 5m (window 1m; samples canary 1214 >= 500)\",\"todo\":\"Roll back: error rate abo"
    "ve 2x baseline for more than 5 minutes.\",\"verdict\":\"ROLLBACK\"},\"startsAt\":\"2026-11"
    "-27T12:09:24.000Z\",\"endsAt\":\"0001-01-01T00:00:00Z\",\"generatorURL\":\"\",\"fingerprin"
    "t\":\"490b0c0a10d9e9c0\"}],\"groupLabels\":{\"alertname\":\"error-rate\"},\"commonLabels\""
    ":{\"action\":\"rollback\",\"alertname\":\"error-rate\",\"release\":\"2.5.0\",\"service\":\""
    "checkout\",\"severity\":\"critical\"},\"commonAnnotations\":{\"summary\":\"ROLLBACK canary"
    " 2.5.0 of checkout, rule error-rate\",\"description\":\"canary error-rate 2.39% (29/1214) "
    "> 1.96% for 5m (window 1m; samples canary 1214 >= 500)\",\"todo\":\"Roll back: error rate "
    "above 2x baseline for more than 5 minutes.\",\"verdict\":\"ROLLBACK\"},\"externalURL\":\"\""
    ",\"version\":\"4\",\"groupKey\":\"{}:{alertname=\\\"error-rate\\\"}\",\"truncatedAlerts\":"
    "0}";

static const char WANT_RESOLVED[] =
    "{\"receiver\":\"canaryd\",\"status\":\"resolved\",\"alerts\":[{\"status\":\"resolved\",\"l"
    "abels\":{\"action\":\"alert\",\"alertname\":\"audit-log-failures\",\"release\":\"2.5.0\",\""
    "service\":\"checkout\",\"severity\":\"warning\"},\"annotations\":{\"summary\":\"RESOLVED a"
    "udit-log-failures: canary 2.5.0 of checkout\",\"description\":\"canary error-rate 2.39% (2"
    "9/1214) > 1.96% for 5m (window 1m; samples canary 1214 >= 500)\",\"verdict\":\"resolved\"}"
    ",\"startsAt\":\"2026-11-27T12:09:24.000Z\",\"endsAt\":\"2026-11-27T12:09:24.000Z\",\"gener"
    "atorURL\":\"\",\"fingerprint\":\"39f0ab5f0ed71680\"}],\"groupLabels\":{\"alertname\":\"aud"
    "it-log-failures\"},\"commonLabels\":{\"action\":\"alert\",\"alertname\":\"audit-log-failur"
    "es\",\"release\":\"2.5.0\",\"service\":\"checkout\",\"severity\":\"warning\"},\"commonAnno"
    "tations\":{\"summary\":\"RESOLVED audit-log-failures: canary 2.5.0 of checkout\",\"descrip"
    "tion\":\"canary error-rate 2.39% (29/1214) > 1.96% for 5m (window 1m; samples canary 1214 "
    ">= 500)\",\"verdict\":\"resolved\"},\"externalURL\":\"\",\"version\":\"4\",\"groupKey\":\""
    "{}:{alertname=\\\"audit-log-failures\\\"}\",\"truncatedAlerts\":0}";

Test(webhook_format, slack_exact)
{
    cd_verdict_t v = sample_rollback();
    expect_render(&v, CD_WEBHOOK_SLACK, WANT_SLACK);
}

Test(webhook_format, msteams_exact)
{
    cd_verdict_t v = sample_rollback();
    expect_render(&v, CD_WEBHOOK_MSTEAMS, WANT_MSTEAMS);
}

Test(webhook_format, discord_exact)
{
    cd_verdict_t v = sample_rollback();
    expect_render(&v, CD_WEBHOOK_DISCORD, WANT_DISCORD);
}

Test(webhook_format, mattermost_exact)
{
    cd_verdict_t v = sample_rollback();
    expect_render(&v, CD_WEBHOOK_MATTERMOST, WANT_MATTERMOST);
}

Test(webhook_format, googlechat_exact)
{
    cd_verdict_t v = sample_rollback();
    expect_render(&v, CD_WEBHOOK_GOOGLECHAT, WANT_GOOGLECHAT);
}

Test(webhook_format, generic_is_the_verdict_json)
{
    cd_verdict_t v = sample_rollback();
    char json[4096];
    cd_verdict_to_json(&v, json, sizeof(json));
    expect_render(&v, CD_WEBHOOK_GENERIC, WANT_GENERIC);
    expect_render(&v, CD_WEBHOOK_GENERIC, json);
}

Test(webhook_format, alertmanager_firing_exact)
{
    cd_verdict_t v = sample_rollback();
    expect_render(&v, CD_WEBHOOK_ALERTMANAGER, WANT_ALERTMANAGER);
}

static cd_verdict_t audit_alert(void)
{
    cd_verdict_t v = sample_rollback();
    v.rule = "audit-log-failures";
    v.action = CD_ACTION_ALERT;
    v.verdict = CD_VERDICT_ALERT;
    v.todo[0] = '\0';
    return v;
}

/* The resolution of an alert rule is "resolved", ends at its time, and keeps
 * the firing alert's labels and so its fingerprint. */
Test(webhook_format, alertmanager_resolved_matches_firing)
{
    cd_verdict_t v = audit_alert();
    v.record = CD_RECORD_STATE;
    v.from = CD_STATE_FIRING;
    v.to = CD_STATE_RESOLVED;
    expect_render(&v, CD_WEBHOOK_ALERTMANAGER, WANT_RESOLVED);

    cd_verdict_t f = audit_alert();
    char *s = render(&f, CD_WEBHOOK_ALERTMANAGER);
    json_t *j = json_loads(s, 0, NULL);
    cr_assert_not_null(j);
    json_t *a = json_array_get(json_object_get(j, "alerts"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(a, "status")), "firing");
    cr_expect_str_eq(json_string_value(json_object_get(a, "fingerprint")), "39f0ab5f0ed71680");
    cr_expect_str_eq(json_string_value(json_object_get(a, "endsAt")), "0001-01-01T00:00:00Z");
    cr_expect_str_eq(json_string_value(json_object_get(j, "version")), "4");
    json_decref(j);
    free(s);
}

/* Slack: "&", "<", ">" escaped; a section's text stays within 3000
 * characters, cut with an ellipsis. */
Test(webhook_format, slack_section_limit)
{
    cd_verdict_t v = sample_rollback();
    memset(v.reason, '&', sizeof(v.reason) - 1);
    v.reason[sizeof(v.reason) - 1] = '\0'; /* 639 "&" = 3195 chars as "&amp;" */
    snprintf(v.todo, sizeof(v.todo), "%0255d", 7);
    char *s = render(&v, CD_WEBHOOK_SLACK);
    json_t *j = json_loads(s, 0, NULL);
    cr_assert_not_null(j);
    json_t *sec = json_array_get(
        json_object_get(json_array_get(json_object_get(j, "attachments"), 0), "blocks"), 0);
    const char *text = json_string_value(json_object_get(json_object_get(sec, "text"), "text"));
    cr_assert_not_null(text);
    size_t chars = 0;
    for (const char *c = text; *c; c++)
        chars += ((unsigned char)*c & 0xc0) != 0x80;
    /* "*<50-char headline>*\n" then 589 whole "&amp;" (53 + 2945 = 2998 <= 2999) and "…" */
    cr_expect_eq(chars, 2999);
    size_t n = strlen(text);
    /* cut before a whole entity, never inside one */
    cr_expect_str_eq(text + n - 8, "&amp;\xe2\x80\xa6");
    json_decref(j);
    free(s);
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* Discord: title <= 256, field values <= 1024, content <= 2000, cut on a
 * character boundary (2-byte "é" here). */
Test(webhook_format, discord_limits)
{
    cd_verdict_t v = sample_rollback();
    char release[128], rule[64];
    memset(release, 0, sizeof(release));
    for (size_t i = 0; i + 2 < sizeof(release); i += 2)
        memcpy(release + i, "\xc3\xa9", 2); /* 63 x "é" */
    memset(rule, 'r', sizeof(rule) - 1);
    rule[sizeof(rule) - 1] = '\0';
    v.release = release;
    v.rule = rule;
    char *s = render(&v, CD_WEBHOOK_DISCORD);
    json_t *j = json_loads(s, 0, NULL);
    cr_assert_not_null(j, "not valid JSON (a cut split a character?): %s", s);
    json_t *e = json_array_get(json_object_get(j, "embeds"), 0);
    const char *title = json_string_value(json_object_get(e, "title"));
    const char *content = json_string_value(json_object_get(j, "content"));
    /* headline: "ROLLBACK canary " + 63 + " of checkout, rule " + 63 = 161 chars */
    cr_expect_eq(utf8_chars(title), 161);
    cr_expect_str_eq(title, content);
    json_decref(j);
    free(s);

    /* a headline over 256 characters is cut to 256 with an ellipsis */
    char service[200];
    memset(service, 's', sizeof(service) - 1);
    service[sizeof(service) - 1] = '\0';
    static char json[4096];
    int n = cd_verdict_to_json(&v, json, sizeof(json));
    cd_sink_msg_t m = {.id = 1, .v = &v, .json = json, .json_len = (size_t)n, .service = service};
    size_t len;
    s = cd_webhook_render(CD_WEBHOOK_DISCORD, &m, NULL, &len);
    j = json_loads(s, 0, NULL);
    cr_assert_not_null(j);
    e = json_array_get(json_object_get(j, "embeds"), 0);
    title = json_string_value(json_object_get(e, "title"));
    cr_expect_eq(utf8_chars(title), 256);
    cr_expect_str_eq(title + strlen(title) - 3, "\xe2\x80\xa6");
    cr_expect_gt(utf8_chars(json_string_value(json_object_get(j, "content"))), 256);
    cr_expect_leq(utf8_chars(json_string_value(json_object_get(j, "content"))), 2000);
    cr_expect_null(json_object_get(j, "username"));
    json_decref(j);
    free(s);
}

/* Every verdict gets its colour; state changes and dry runs say what they are. */
Test(webhook_format, colours_state_and_dry_run)
{
    static const struct {
        cd_verdict_kind_t k;
        const char *hex;
        int dec;
    } C[] = {{CD_VERDICT_ROLLBACK, "#d00000", 0xd00000},
             {CD_VERDICT_ALERT, "#f2a900", 0xf2a900},
             {CD_VERDICT_HEALTHY, "#2eb67d", 0x2eb67d},
             {CD_VERDICT_PROMOTE, "#2eb67d", 0x2eb67d},
             {CD_VERDICT_ANALYZING, "#9e9e9e", 0x9e9e9e}};
    for (size_t i = 0; i < sizeof(C) / sizeof(C[0]); i++) {
        cd_verdict_t v = sample_rollback();
        v.verdict = C[i].k;
        char *s = render(&v, CD_WEBHOOK_SLACK);
        char want[64];
        snprintf(want, sizeof(want), "\"color\":\"%s\"", C[i].hex);
        cr_expect(strstr(s, want), "%s: %s", cd_verdict_kind_name(C[i].k), s);
        free(s);
        s = render(&v, CD_WEBHOOK_DISCORD);
        snprintf(want, sizeof(want), "\"color\":%d,", C[i].dec);
        cr_expect(strstr(s, want), "%s: %s", cd_verdict_kind_name(C[i].k), s);
        free(s);
    }
    cd_verdict_t v = sample_rollback();
    v.record = CD_RECORD_STATE;
    v.from = CD_STATE_PENDING;
    v.to = CD_STATE_FIRING;
    v.dry_run = true;
    char *s = render(&v, CD_WEBHOOK_GOOGLECHAT);
    cr_expect_str_eq(s, "{\"text\":\"*error-rate pending -> firing: canary 2.5.0 of checkout*\\n"
                        "[dry run] canary error-rate 2.39% (29/1214) > 1.96% for 5m (window 1m; "
                        "samples canary 1214 >= 500)\\n*What to do:* Roll back: error rate above "
                        "2x baseline for more than 5 minutes.\\nrelease 2.5.0 · rule error-rate "
                        "· window 1m · 2026-11-27T12:09:24.000Z\"}");
    free(s);
}
