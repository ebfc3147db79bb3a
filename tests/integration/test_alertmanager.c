/*
 * test_alertmanager.c - the alertmanager sink (sinks/alertmanager.c) against
 * a local receiver standing in for Alertmanager: every request is POST
 * /api/v2/alerts and its body is checked against the API's shape
 * (api/v2/openapi.yaml: postableAlerts is an array of postableAlert, whose
 * properties are labels (required), annotations (labelSet: string values),
 * startsAt, endsAt (date-time) and generatorURL (uri)), then pinned
 * byte for byte. Also: the firing alert re-sent while firing and not after
 * it resolved, retries carrying the whole table, config errors, and the URL
 * (a secret) kept out of the log.
 */
#include "sink_test.h"

#include <jansson.h>
#include <regex.h>

#include "canaryd/timeutil.h"
#include "http_receiver.c"

static rx_t *rx;

static void setup(void)
{
    st_setup();
    rx = rx_start(0);
    cr_assert_not_null(rx);
}

static void teardown(void)
{
    rx_stop(rx);
    rx = NULL;
    st_teardown();
}

TestSuite(alertmanager, .init = setup, .fini = teardown, .timeout = 90);

static cd_dispatcher_t *am(const char *extra)
{
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"outputs\":[{\"type\":\"alertmanager\",\"name\":\"am\","
             "\"url\":\"http://user:PASSWORD@127.0.0.1:%u/\",\"labels\":{\"env\":\"prod\"},"
             "\"retry\":{\"base\":\"100ms\",\"cap\":\"200ms\"}%s}]}",
             rx_port(rx), extra);
    return st_dispatcher(json, true);
}

/* A label name of Prometheus's data model, [a-zA-Z_][a-zA-Z0-9_]*, checked
 * by libc's regex engine and not by a copy of the sink's own loop
 * (sinks/alertmanager.c label_name_ok): the same mistake in both would
 * pass. */
static bool label_name_ok(const char *s)
{
    static regex_t re;
    static bool ready;
    if (!ready) {
        cr_assert_eq(regcomp(&re, "^[a-zA-Z_][a-zA-Z0-9_]*$", REG_EXTENDED | REG_NOSUB), 0);
        ready = true;
    }
    return regexec(&re, s, 0, NULL, 0) == 0;
}

static void check_label_set(const json_t *o, const char *what)
{
    cr_assert(json_is_object(o), "%s is not an object", what);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        cr_assert(label_name_ok(k), "%s: bad label name %s", what, k);
        cr_assert(json_is_string(v), "%s.%s is not a string", what, k);
    }
}

static void check_time(const json_t *t, const char *what)
{
    int64_t ms;
    cr_assert(json_is_string(t), "%s is not a string", what);
    cr_assert(cd_time_parse_rfc3339(json_string_value(t), json_string_length(t), &ms),
              "%s: %s is not RFC 3339", what, json_string_value(t));
}

/* Request i: POST /api/v2/alerts, JSON, a postableAlerts; returns the body. */
static json_t *posted(int i)
{
    rx_request_t q = rx_get(rx, i);
    cr_assert_str_eq(q.method, "POST");
    cr_assert_str_eq(q.path, "/api/v2/alerts");
    char ct[128];
    cr_assert(rx_header(&q, "Content-Type", ct, sizeof(ct)));
    cr_assert_str_eq(ct, "application/json");
    json_error_t e;
    json_t *arr = json_loads(q.body, 0, &e);
    cr_assert_not_null(arr, "request %d: %s: %s", i, e.text, q.body);
    rx_request_free(&q);
    cr_assert(json_is_array(arr));
    size_t n;
    json_t *a;
    json_array_foreach(arr, n, a)
    {
        static const char *const KNOWN[] = {"labels", "annotations",  "startsAt",
                                            "endsAt", "generatorURL", NULL};
        const char *k;
        json_t *v;
        json_object_foreach(a, k, v)
        {
            bool known = false;
            for (int j = 0; KNOWN[j]; j++)
                known |= strcmp(k, KNOWN[j]) == 0;
            cr_assert(known, "postableAlert has no property %s", k);
        }
        check_label_set(json_object_get(a, "labels"), "labels"); /* required */
        cr_assert_gt(json_object_size(json_object_get(a, "labels")), 0);
        if (json_object_get(a, "annotations"))
            check_label_set(json_object_get(a, "annotations"), "annotations");
        if (json_object_get(a, "startsAt")) check_time(json_object_get(a, "startsAt"), "startsAt");
        if (json_object_get(a, "endsAt")) check_time(json_object_get(a, "endsAt"), "endsAt");
        if (json_object_get(a, "generatorURL"))
            cr_assert(json_is_string(json_object_get(a, "generatorURL")));
    }
    return arr;
}

static char *body(int i)
{
    rx_request_t q = rx_get(rx, i);
    char *b = strdup(q.body);
    rx_request_free(&q);
    return b;
}

#define FIRING_ERRORS                                                                              \
    "{\"labels\":{\"alertname\":\"errors\",\"action\":\"alert\",\"release\":\"2.5.0\","            \
    "\"severity\":\"warning\",\"env\":\"prod\"},\"annotations\":{\"summary\":\"errors: alert on "  \
    "canary 2.5.0\",\"description\":\"errors pending -> firing at +10s\"},\"startsAt\":"           \
    "\"2026-11-27T12:00:10.000Z\""

Test(alertmanager, firing_then_resolved_exact_payloads)
{
    cd_dispatcher_t *d = am(",\"resend_interval\":\"1h\",\"resolve_timeout\":\"2h\"");
    cd_verdict_t p = st_state("errors", CD_ACTION_ALERT, CD_STATE_INACTIVE, CD_STATE_PENDING, 0);
    cd_verdict_t f = st_state("errors", CD_ACTION_ALERT, CD_STATE_PENDING, CD_STATE_FIRING, 10);
    cd_verdict_t v = st_verdict(CD_VERDICT_ALERT, "errors", CD_ACTION_ALERT, 10);
    cd_verdict_t r = st_state("errors", CD_ACTION_ALERT, CD_STATE_FIRING, CD_STATE_RESOLVED, 70);
    cr_assert(cd_dispatcher_submit(d, &p));
    cr_assert(cd_dispatcher_submit(d, &f));
    cr_assert(cd_dispatcher_submit(d, &v));
    cr_assert(rx_wait(rx, 1, 10000));
    cr_assert(cd_dispatcher_submit(d, &r));
    cr_assert(rx_wait(rx, 2, 10000));
    cr_assert_eq(cd_dispatcher_drain(d, 10000), 0);
    cr_assert_eq(rx_count(rx), 2, "pending and the ALERT verdict line send nothing");

    json_decref(posted(0));
    json_decref(posted(1));
    char *b0 = body(0), *b1 = body(1);
    cr_assert_str_eq(b0, "[" FIRING_ERRORS "}]");
    cr_assert_str_eq(b1, "[" FIRING_ERRORS ",\"endsAt\":\"2026-11-27T12:01:10.000Z\"}]");
    free(b0);
    free(b1);
    cd_sink_stats_t s = st_stats(d, 0);
    cr_assert_eq(s.delivered, 3, "pending, firing, resolved (the verdict line is filtered)");
    cr_assert_eq(s.filtered, 1);
    cr_assert_eq(s.failed, 0);
    cd_dispatcher_destroy(d);
    char *log = st_log_text();
    cr_assert_null(strstr(log, "PASSWORD"), "%s", log);
    free(log);
}

/* While firing, the whole table goes out again every resend_interval, with
 * the same startsAt; once resolved (and acknowledged), nothing more. */
Test(alertmanager, resent_while_firing_only)
{
    cd_dispatcher_t *d = am(",\"resend_interval\":\"1s\",\"resolve_timeout\":\"3s\"");
    cd_verdict_t f1 = st_state("errors", CD_ACTION_ALERT, CD_STATE_PENDING, CD_STATE_FIRING, 10);
    cd_verdict_t f2 = st_state("fatal", CD_ACTION_ROLLBACK, CD_STATE_PENDING, CD_STATE_FIRING, 20);
    cr_assert(cd_dispatcher_submit(d, &f1));
    cr_assert(cd_dispatcher_submit(d, &f2));
    /* two records, then at least two heartbeats */
    cr_assert(rx_wait(rx, 4, 20000));
    int n = rx_count(rx);
    for (int i = 1; i < n; i++) {
        rx_request_t a = rx_get(rx, i - 1), b = rx_get(rx, i);
        if (i >= 2)
            cr_assert_geq(b.at_ms - a.at_ms, 900, "re-sent after %lld ms",
                          (long long)(b.at_ms - a.at_ms));
        rx_request_free(&a);
        rx_request_free(&b);
    }
    char *last = body(n - 1);
    cr_assert_str_eq(
        last, "[" FIRING_ERRORS "},{\"labels\":{\"alertname\":\"fatal\",\"action\":\"rollback\","
              "\"release\":\"2.5.0\",\"severity\":\"critical\",\"env\":\"prod\"},\"annotations\":"
              "{\"summary\":\"fatal: roll back canary 2.5.0\",\"description\":\"fatal pending -> "
              "firing at +20s\"},\"startsAt\":\"2026-11-27T12:00:20.000Z\"}]");
    free(last);
    for (int i = 0; i < n; i++)
        json_decref(posted(i));

    cd_verdict_t r1 = st_state("errors", CD_ACTION_ALERT, CD_STATE_FIRING, CD_STATE_RESOLVED, 80);
    cd_verdict_t r2 = st_state("fatal", CD_ACTION_ROLLBACK, CD_STATE_FIRING, CD_STATE_RESOLVED, 90);
    cr_assert(cd_dispatcher_submit(d, &r1));
    cr_assert(cd_dispatcher_submit(d, &r2));
    cr_assert_eq(cd_dispatcher_drain(d, 10000), 0);
    int after = rx_count(rx);
    char *b = body(after - 1);
    cr_assert(strstr(b, "\"endsAt\":\"2026-11-27T12:01:30.000Z\""), "%s", b);
    cr_assert_null(strstr(b, "\"errors\""), "errors was acknowledged resolved already: %s", b);
    free(b);
    /* Nothing firing: no heartbeat in three resend intervals. */
    cr_assert_not(rx_wait(rx, after + 1, 3000), "a request after everything resolved");
    cd_dispatcher_destroy(d);
}

/* A 500 is retried with the table as it is then; the resolution is sent
 * until a 2xx acknowledges it. */
Test(alertmanager, retries_carry_the_table)
{
    rx_answer_t a[] = {{500, NULL, "busy", 0}, {503, NULL, "busy", 0}};
    rx_script(rx, a, 2);
    cd_dispatcher_t *d = am(",\"resend_interval\":\"1h\",\"resolve_timeout\":\"2h\"");
    cd_verdict_t f = st_state("errors", CD_ACTION_ALERT, CD_STATE_PENDING, CD_STATE_FIRING, 10);
    cd_verdict_t r = st_state("errors", CD_ACTION_ALERT, CD_STATE_FIRING, CD_STATE_RESOLVED, 70);
    cr_assert(cd_dispatcher_submit(d, &f));
    cr_assert(rx_wait(rx, 3, 10000));
    cr_assert(cd_dispatcher_submit(d, &r));
    cr_assert_eq(cd_dispatcher_drain(d, 10000), 0);
    cr_assert_eq(rx_count(rx), 4);
    for (int i = 0; i < 3; i++) {
        char *b = body(i);
        cr_assert_str_eq(b, "[" FIRING_ERRORS "}]");
        free(b);
    }
    char *b = body(3);
    cr_assert_str_eq(b, "[" FIRING_ERRORS ",\"endsAt\":\"2026-11-27T12:01:10.000Z\"}]");
    free(b);
    cd_sink_stats_t s = st_stats(d, 0);
    cr_assert_eq(s.delivered, 2);
    cr_assert_eq(s.retries, 2);
    cd_dispatcher_destroy(d);
}

Test(alertmanager, generator_url_and_api_path_kept)
{
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"outputs\":[{\"type\":\"alertmanager\",\"url\":\"http://127.0.0.1:%u/api/v2/"
             "alerts\",\"generator_url\":\"https://canaryd.example/status\","
             "\"resolve_timeout\":\"10m\",\"resend_interval\":\"2m\"}]}",
             rx_port(rx));
    cd_dispatcher_t *d = st_dispatcher(json, true);
    cd_verdict_t f = st_state("errors", CD_ACTION_ALERT, CD_STATE_PENDING, CD_STATE_FIRING, 10);
    cr_assert(cd_dispatcher_submit(d, &f));
    cr_assert_eq(cd_dispatcher_drain(d, 10000), 0);
    json_t *arr = posted(0);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, 0), "generatorURL")),
                     "https://canaryd.example/status");
    cr_assert_null(json_object_get(json_object_get(json_array_get(arr, 0), "labels"), "env"));
    json_decref(arr);
    cd_dispatcher_destroy(d);
}

Test(alertmanager, config_errors)
{
    static cd_diag_t dg;
    cd_config_t *c = st_config(
        "{\"outputs\":[{\"type\":\"alertmanager\",\"url\":\"http://am:9093\",\"resend_interval\":"
        "\"5m\",\"labels\":{\"severity\":\"x\",\"9bad\":\"y\",\"ok\":\"\"},\"bogus\":1},"
        "{\"type\":\"alertmanager\"}]}",
        &dg);
    cr_assert_not_null(c, "%s", dg.text);
    cd_diag_init(&dg);
    cr_assert_null(cd_dispatcher_new(c, &dg));
    cr_assert_str_eq(
        dg.text,
        "sinks.outputs[0].bogus: unknown key; accepted: url, resend_interval, resolve_timeout, "
        "labels, generator_url, headers, connect_timeout, timeout, secret, type, name, filter, "
        "retry, rate_limit, send_resolved\n"
        "sinks.outputs[0].resend_interval: \"5m\" is not shorter than resolve_timeout; accepted: "
        "a duration shorter than resolve_timeout (5m), so Alertmanager hears a firing alert again "
        "before it resolves it\n"
        "sinks.outputs[0].labels.severity: is a label canaryd sets itself; accepted: a name "
        "matching [a-zA-Z_][a-zA-Z0-9_]* other than alertname, action, release, service, "
        "severity\n"
        "sinks.outputs[0].labels.9bad: is not a label name; accepted: a name matching "
        "[a-zA-Z_][a-zA-Z0-9_]* other than alertname, action, release, service, severity\n"
        "sinks.outputs[0].labels.ok: \"\" is not a label value; accepted: a non-empty string\n"
        "sinks.outputs[1].url: missing; accepted: a non-empty string\n");
    cd_config_free(c);
}
