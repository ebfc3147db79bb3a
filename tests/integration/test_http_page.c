/*
 * test_http_page.c - the status page's endpoints (agent/http/http_page.c) on a
 * real libmicrohttpd server started in this process (cd_http_new on
 * 127.0.0.1:0) with a history filled through its public calls, read with
 * libcurl (no proxy):
 *   GET /                  the page: HTML, no external asset, the polling script;
 *   GET /api/v1/dashboard  the snapshot's verdict and release, one chart
 *                          fragment per rule with the history's points;
 *   GET /api/v1/history    every point and mark; since= in ms and RFC 3339
 *                          filters; a bad since is 400;
 *   GET /api/v1/windows    a real pipeline's window counts closed at a
 *                          second: exact, 409 / 404 / 400 (see the test);
 *   a token configured: the read endpoints still answer without it (the
 *   page works with the token or without); POST / is 405.
 * A writer thread adds points while readers fetch (for ASan).
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../pipeline_fixture.h"
#include "canaryd/config.h"
#include "canaryd/history.h"
#include "canaryd/http_api.h"
#include "canaryd/pipeline.h"
#include "canaryd/timeutil.h"
#include "html_check.h"

#define T0 1795780800000LL /* 2026-11-27T12:00:00.000Z */

static const char CONFIG[] =
    "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\"]},"
    " \"rules\": [{\"name\": \"error-rate\", \"kind\": \"relative\","
    "  \"description\": \"Roll back.\", \"numerator\": [\"ERROR_OCCURRED\"],"
    "  \"denominator\": [\"REQUEST_COMPLETED\"], \"op\": \">\", \"factor\": 2, \"floor\": 0.01,"
    "  \"window\": \"10s\", \"action\": \"rollback\"},"
    " {\"name\": \"errors\", \"kind\": \"threshold\", \"description\": \"Alert.\","
    "  \"numerator\": [\"ERROR_OCCURRED\"], \"op\": \">\", \"threshold\": 5, \"window\": \"10s\","
    "  \"action\": \"alert\"}]}";

static cd_config_t *cfg;
static cd_history_t *hist;
static cd_http_t *http;
static int port;

static void start(const char *token)
{
    char err[256];
    cfg = fx_config(CONFIG);
    hist = cd_history_new(cfg->rules, cfg->nrules, 60, 16);
    cr_assert_not_null(hist);
    /* 30 seconds: canary 1 % then 5 % from +20 s, a pending, a firing, a ROLLBACK */
    for (int s = 0; s < 30; s++)
        for (int i = 0; i < cfg->nrules; i++) {
            cd_history_point_t p = {.t_ms = T0 + s * 1000,
                                    .canary = s < 20 ? 0.01f : 0.05f,
                                    .stable = 0.01f,
                                    .threshold = 0.02f,
                                    .band = NAN,
                                    .compared = NAN,
                                    .canary_n = 500,
                                    .stable_n = 9000,
                                    .state = s < 20   ? CD_STATE_INACTIVE
                                             : s < 25 ? CD_STATE_PENDING
                                                      : CD_STATE_FIRING};
            cd_history_add_point(hist, i, &p);
        }
    cd_verdict_t rb = {.record = CD_RECORD_VERDICT,
                       .verdict = CD_VERDICT_ROLLBACK,
                       .time_ms = T0 + 25000,
                       .rule = "error-rate"};
    snprintf(rb.reason, sizeof rb.reason, "canary error-rate 5.00%% > 2.00%% <b>");
    cd_history_record(hist, &rb);
    cd_history_set_verdict(hist, T0, CD_VERDICT_HEALTHY);
    cd_history_set_verdict(hist, T0 + 25000, CD_VERDICT_ROLLBACK);
    cd_history_set_release(hist, "2.5.0");

    cd_http_conf_t hc = {.enabled = true, .host = "127.0.0.1", .port = 0, .loopback = true};
    if (token) snprintf(hc.token, sizeof hc.token, "%s", token);
    cd_http_sources_t src = {.history = hist, .cfg = cfg};
    http = cd_http_new(&hc, &src, err, sizeof err);
    cr_assert_not_null(http, "%s", err);
    cr_assert_eq(cd_http_start(http, err, sizeof err), 0, "%s", err);
    port = cd_http_port(http);
    cd_snapshot_t *snap = calloc(1, sizeof *snap);
    snap->verdict = CD_VERDICT_ROLLBACK;
    snprintf(snap->release, sizeof snap->release, "2.5.0");
    snap->since_ms = snap->time_ms = T0 + 25000;
    cd_http_publish(http, snap);
    free(snap);
}

static void stop(void)
{
    cd_http_stop(http);
    cd_http_destroy(http);
    cd_history_destroy(hist);
    cd_config_free(cfg);
}

typedef struct body {
    char *s;
    size_t len;
    char ctype[128];
} body_t;

static size_t on_body(char *p, size_t size, size_t n, void *opaque)
{
    body_t *b = opaque;
    size_t k = size * n;
    b->s = realloc(b->s, b->len + k + 1);
    memcpy(b->s + b->len, p, k);
    b->len += k;
    b->s[b->len] = '\0';
    return k;
}

/* GET (or POST) path; the status; the body in *out (caller frees). */
static long get(const char *method, const char *path, body_t *out)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    memset(out, 0, sizeof *out);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK, "%s %s", method, path);
    long status = 0;
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(out->ctype, sizeof out->ctype, "%s", ct ? ct : "");
    curl_easy_cleanup(c);
    if (!out->s) out->s = calloc(1, 1);
    return status;
}

static json_t *get_json(const char *path)
{
    body_t b;
    cr_assert_eq(get("GET", path, &b), 200, "GET %s: %s", path, b.s);
    cr_expect_str_eq(b.ctype, "application/json");
    json_t *j = json_loads(b.s, 0, NULL);
    cr_assert_not_null(j, "GET %s: not JSON: %.200s", path, b.s);
    free(b.s);
    return j;
}

TestSuite(http_page, .timeout = 60);

Test(http_page, page_is_self_contained)
{
    start(NULL);
    body_t b;
    cr_assert_eq(get("GET", "/", &b), 200);
    cr_expect_str_eq(b.ctype, "text/html; charset=utf-8");
    cr_expect(strncmp(b.s, "<!DOCTYPE html>", 15) == 0);
    cr_expect_eq(html_count(b.s, "http://") + html_count(b.s, "https://"), 0, "external asset");
    cr_expect_eq(html_count(b.s, "<script>"), 1);
    cr_expect_eq(html_count(b.s, "<script src"), 0);
    cr_expect_eq(html_count(b.s, "fetch('api/v1/dashboard'"), 1);
    cr_expect_eq(html_count(b.s, "name=\"viewport\""), 1, "not usable on a phone");
    free(b.s);
    cr_expect_eq(get("POST", "/", &b), 405);
    free(b.s);
    stop();
}

Test(http_page, dashboard_renders_the_history)
{
    start(NULL);
    json_t *d = get_json("/api/v1/dashboard");
    cr_expect_str_eq(json_string_value(json_object_get(d, "verdict")), "ROLLBACK");
    cr_expect_str_eq(json_string_value(json_object_get(d, "release")), "2.5.0");
    cr_expect_str_eq(json_string_value(json_object_get(d, "sinks")), "none");
    json_t *rules = json_object_get(d, "rules");
    cr_assert_eq(json_array_size(rules), 2);
    const char *er = json_string_value(json_array_get(rules, 0));
    const char *want = "<section class=\"rule\" data-rule=\"error-rate\"";
    cr_expect(strncmp(er, want, strlen(want)) == 0, "%.80s", er);
    cr_expect_eq(html_attr_ll(er, "<path class=\"series canary\"", 0, "data-points"), 30);
    cr_expect_eq(html_attr_ll(er, "<rect class=\"span pending\"", 0, "data-from"), T0 + 20000);
    cr_expect_eq(html_attr_ll(er, "<rect class=\"span pending\"", 0, "data-to"), T0 + 25000);
    cr_expect_eq(html_attr_ll(er, "<g class=\"mark verdict m-ROLLBACK\"", 0, "data-t"), T0 + 25000);
    /* the reason is escaped, not markup */
    cr_expect(strstr(er, "2.00% &lt;b&gt;") != NULL);
    const char *tl = json_string_value(json_object_get(d, "timeline"));
    cr_expect_eq(html_attr_ll(tl, "<rect class=\"seg v-ROLLBACK\"", 0, "data-from"), T0 + 25000);
    json_decref(d);
    stop();
}

Test(http_page, history_and_since)
{
    start("page-token");
    json_t *h = get_json("/api/v1/history"), *r;
    size_t i;
    cr_expect_str_eq(json_string_value(json_object_get(h, "release")), "2.5.0");
    cr_expect_eq(json_integer_value(json_object_get(h, "next_since")), T0 + 29000);
    cr_assert_eq(json_array_size(json_object_get(h, "rules")), 2);
    json_array_foreach(json_object_get(h, "rules"), i, r)
    {
        cr_expect_eq(json_array_size(json_object_get(r, "t")), 30);
        cr_expect_eq(json_integer_value(json_array_get(json_object_get(r, "t"), 0)), T0);
        cr_expect_str_eq(json_string_value(json_array_get(json_object_get(r, "state"), 29)),
                         "firing");
        cr_expect(json_is_null(json_array_get(json_object_get(r, "band"), 0)));
        cr_expect_eq(json_integer_value(json_array_get(json_object_get(r, "canary_samples"), 0)),
                     500);
    }
    json_t *m = json_array_get(json_object_get(h, "marks"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(m, "verdict")), "ROLLBACK");
    cr_expect_str_eq(json_string_value(json_object_get(m, "rule")), "error-rate");
    cr_expect_str_eq(json_string_value(json_object_get(m, "time")), "2026-11-27T12:00:25.000Z");
    json_decref(h);

    char path[96];
    snprintf(path, sizeof path, "/api/v1/history?since=%lld", T0 + 25000);
    h = get_json(path);
    r = json_array_get(json_object_get(h, "rules"), 0);
    cr_expect_eq(json_array_size(json_object_get(r, "t")), 4); /* 26..29 */
    cr_expect_eq(json_array_size(json_object_get(h, "marks")), 0);
    cr_expect_eq(json_array_size(json_object_get(h, "verdicts")), 1, "the verdict in effect");
    json_decref(h);
    h = get_json("/api/v1/history?since=2026-11-27T12:00:27Z");
    r = json_array_get(json_object_get(h, "rules"), 1);
    cr_expect_eq(json_array_size(json_object_get(r, "t")), 2);
    json_decref(h);

    body_t b;
    cr_expect_eq(get("GET", "/api/v1/history?since=yesterday", &b), 400);
    cr_expect(strstr(b.s, "since: accepted:") != NULL, "%s", b.s);
    free(b.s);
    /* reads need no token, so the page works with or without one */
    cr_expect_eq(get("GET", "/", &b), 200);
    free(b.s);
    cr_expect_eq(get("GET", "/api/v1/dashboard", &b), 200);
    free(b.s);
    stop();
}

/* GET /api/v1/windows on a server reading a real pipeline's window ring:
 * exact counts per rule, type and cohort closed at a whole second (given
 * in seconds or RFC 3339; by default the last second complete), 409 after
 * the watermark minus the allowed lateness, 404 once the ring no longer holds the window, 400 for a
 * bad or fractional second. */
static void no_record(const cd_verdict_t *v, void *opaque)
{
    (void)v;
    (void)opaque;
}

static void ingest(cd_pipeline_t *p, const char *type, const char *cohort, int64_t t)
{
    char line[200];
    int n = snprintf(line, sizeof line,
                     "{\"event_type\":\"%s\",\"timestamp\":%lld,\"cohort\":\"%s\"}", type,
                     (long long)t, cohort);
    cr_assert_eq(cd_pipeline_ingest(p, line, (size_t)n, 0), CD_BAD_NONE);
}

static void publish_judged(int64_t judged_ms)
{
    cd_snapshot_t *snap = calloc(1, sizeof *snap);
    snap->verdict = CD_VERDICT_ANALYZING;
    snap->time_ms = snap->judged_ms = judged_ms;
    cd_http_publish(http, snap);
    free(snap);
}

static int64_t counted(json_t *rule, const char *cohort, const char *type)
{
    json_t *v = json_object_get(json_object_get(json_object_get(rule, "counts"), cohort), type);
    cr_assert(json_is_integer(v), "%s %s missing", cohort, type);
    return json_integer_value(v);
}

Test(http_page, windows_counts_at_a_second)
{
    char err[256];
    cfg = fx_config(CONFIG);
    cd_pipeline_t *p = fx_pipeline(cfg, 5000, 1, no_record, NULL);
    cd_pipeline_begin(p, T0);
    /* seconds 0..19: canary 10 requests and an error on even seconds,
     * stable 20 requests and 1 error */
    for (int s = 0; s < 20; s++) {
        int64_t t = T0 + s * 1000LL;
        cd_pipeline_advance(p, t);
        for (int k = 0; k < 10; k++)
            ingest(p, "REQUEST_COMPLETED", "canary", t + k * 50);
        if (s % 2 == 0) ingest(p, "ERROR_OCCURRED", "canary", t + 999);
        for (int k = 0; k < 20; k++)
            ingest(p, "REQUEST_COMPLETED", "stable", t + k * 25);
        ingest(p, "ERROR_OCCURRED", "stable", t);
    }
    cd_pipeline_advance(p, T0 + 25500);
    hist = NULL;
    cd_http_conf_t hc = {.enabled = true, .host = "127.0.0.1", .port = 0, .loopback = true};
    cd_http_sources_t src = {.cfg = cfg, .window = cd_pipeline_window(p)};
    http = cd_http_new(&hc, &src, err, sizeof err);
    cr_assert_not_null(http, "%s", err);
    cr_assert_eq(cd_http_start(http, err, sizeof err), 0, "%s", err);
    port = cd_http_port(http);
    /* judged up to 25.3 s; allowed_lateness 5s (the default): complete up to 20.3 s */
    publish_judged(T0 + 25300);

    char path[128];
    snprintf(path, sizeof path, "/api/v1/windows?at=%lld", (T0 + 15000) / 1000);
    json_t *j = get_json(path);
    cr_expect_str_eq(json_string_value(json_object_get(j, "at")), "2026-11-27T12:00:15.000Z");
    cr_expect_eq(json_integer_value(json_object_get(j, "at_ms")), T0 + 15000);
    cr_expect_str_eq(json_string_value(json_object_get(j, "judged_until")),
                     "2026-11-27T12:00:25.300Z");
    cr_expect_str_eq(json_string_value(json_object_get(j, "complete_until")),
                     "2026-11-27T12:00:20.300Z");
    json_t *rules = json_object_get(j, "rules");
    cr_assert_eq(json_array_size(rules), 2);
    json_t *r0 = json_array_get(rules, 0), *r1 = json_array_get(rules, 1);
    cr_expect_str_eq(json_string_value(json_object_get(r0, "name")), "error-rate");
    cr_expect_eq(json_integer_value(json_object_get(r0, "window_ms")), 10000);
    /* [5 s, 15 s): seconds 5..14 */
    cr_expect_eq(counted(r0, "canary", "REQUEST_COMPLETED"), 100);
    cr_expect_eq(counted(r0, "canary", "ERROR_OCCURRED"), 5); /* 6, 8, 10, 12, 14 */
    cr_expect_eq(counted(r0, "stable", "REQUEST_COMPLETED"), 200);
    cr_expect_eq(counted(r0, "stable", "ERROR_OCCURRED"), 10);
    cr_expect_eq(json_object_size(json_object_get(json_object_get(r0, "counts"), "canary")), 2);
    cr_expect_str_eq(json_string_value(json_object_get(r1, "name")), "errors");
    cr_expect_eq(counted(r1, "canary", "ERROR_OCCURRED"), 5);
    cr_expect_eq(json_object_size(json_object_get(json_object_get(r1, "counts"), "stable")), 1);
    json_decref(j);

    /* default: the last whole second complete (20: seconds 10..19) */
    j = get_json("/api/v1/windows");
    cr_expect_eq(json_integer_value(json_object_get(j, "at_ms")), T0 + 20000);
    cr_expect_eq(counted(json_array_get(json_object_get(j, "rules"), 0), "canary",
                         "ERROR_OCCURRED"),
                 5); /* 10, 12, 14, 16, 18 */
    json_decref(j);
    j = get_json("/api/v1/windows?at=2026-11-27T12:00:11Z");
    cr_expect_eq(counted(json_array_get(json_object_get(j, "rules"), 0), "canary",
                         "REQUEST_COMPLETED"),
                 100); /* 1..10 */
    cr_expect_eq(counted(json_array_get(json_object_get(j, "rules"), 0), "canary",
                         "ERROR_OCCURRED"),
                 5); /* 2, 4, 6, 8, 10 */
    json_decref(j);

    body_t b;
    snprintf(path, sizeof path, "/api/v1/windows?at=%lld", (T0 + 21000) / 1000);
    cr_expect_eq(get("GET", path, &b), 409, "%s", b.s);
    cr_expect(strstr(b.s, "not complete yet") != NULL, "%s", b.s);
    free(b.s);
    cr_expect_eq(get("GET", "/api/v1/windows?at=soon", &b), 400);
    free(b.s);
    cr_expect_eq(get("GET", "/api/v1/windows?at=2026-11-27T12:00:11.5Z", &b), 400);
    cr_expect(strstr(b.s, "bucket boundary") != NULL, "%s", b.s);
    free(b.s);

    /* an hour later the ring holds none of it */
    cd_pipeline_advance(p, T0 + 3600000);
    publish_judged(T0 + 3600000);
    snprintf(path, sizeof path, "/api/v1/windows?at=%lld", (T0 + 15000) / 1000);
    cr_expect_eq(get("GET", path, &b), 404, "%s", b.s);
    cr_expect(strstr(b.s, "no longer retained") != NULL, "%s", b.s);
    j = json_loads(b.s, 0, NULL);
    cr_assert_not_null(j);
    int64_t oldest;
    cr_assert(cd_time_parse_rfc3339(json_string_value(json_object_get(j, "oldest")),
                                    strlen(json_string_value(json_object_get(j, "oldest"))),
                                    &oldest));
    cr_expect_gt(oldest, T0 + 2400000); /* the ring: promote_after 15m + slack 30s */
    cr_expect_leq(oldest, T0 + 3600000);
    json_decref(j);
    free(b.s);
    snprintf(path, sizeof path, "/api/v1/windows?at=%lld", (long long)(oldest / 1000));
    j = get_json(path);
    cr_expect_eq(counted(json_array_get(json_object_get(j, "rules"), 0), "canary",
                         "REQUEST_COMPLETED"),
                 0);
    json_decref(j);

    cd_http_stop(http);
    cd_http_destroy(http);
    cd_pipeline_destroy(p);
    cd_config_free(cfg);
}

static atomic_bool done;

static void *writer(void *arg)
{
    (void)arg;
    for (int s = 30; !atomic_load(&done); s++) {
        cd_history_point_t p = {.t_ms = T0 + s * 1000, .canary = 0.01f, .threshold = 0.02f};
        cd_history_add_point(hist, 0, &p);
        cd_verdict_t v = {.record = CD_RECORD_STATE, .time_ms = T0 + s * 1000, .rule = "errors"};
        cd_history_record(hist, &v);
    }
    return NULL;
}

Test(http_page, reads_while_the_history_grows)
{
    start(NULL);
    pthread_t t;
    atomic_store(&done, false);
    pthread_create(&t, NULL, writer, NULL);
    for (int k = 0; k < 20; k++) {
        json_t *h = get_json(k % 2 ? "/api/v1/history" : "/api/v1/dashboard");
        json_decref(h);
    }
    atomic_store(&done, true);
    pthread_join(t, NULL);
    /* bounded: 60 points per rule whatever was written */
    json_t *h = get_json("/api/v1/history");
    cr_expect_eq(
        json_array_size(json_object_get(json_array_get(json_object_get(h, "rules"), 0), "t")), 60);
    cr_expect_eq(json_array_size(json_object_get(h, "marks")), 16);
    json_decref(h);
    stop();
}
