/*
 * test_live_browser.c - the report and the live status page in a real
 * browser: headless Chromium (Debian's `chromium`, installed by tools/setup)
 * renders them and the test reads the DOM it ends up with (--dump-dom).
 *
 *   report: `canaryd generate` error-regression | `canaryd report` with
 *     config/sop.json, loaded from file:// - the ROLLBACK verdict, one chart
 *     per rule with points, the ROLLBACK mark after the scenario's onset;
 *   live: canaryd-mock-kafka, `canaryd simulate --scenario error-regression
 *     --onset 20s` and `canaryd run` with an HTTP API (config/demo.json plus
 *     an "http" section with a token); once the agent has printed its
 *     ROLLBACK, Chromium loads http://127.0.0.1:PORT/#token=... and lets the
 *     page's script poll (--virtual-time-budget): the DOM must show ROLLBACK
 *     in the big verdict, the page must have rendered at least one poll, the
 *     error-rate chart must have canary points and its ROLLBACK mark at
 *     exactly the record's time (after the onset); /api/v1/history answers
 *     the same series and honours since=.
 *
 * No console errors: Chromium runs with --enable-logging=stderr, which
 * prints every console message as ":CONSOLE"; the pages log nothing, so any
 * such line fails the test (a control case shows a throwing script is
 * caught), and the live page records a script error in body[data-error].
 *
 * Screenshots (--screenshot) go to <build>/artifacts/browser/: report.png,
 * live.png, live-phone.png (390 px wide).
 *
 * Chromium runs as root here: --no-sandbox --headless, its own profile
 * folder, every run killed after CHROME_LIMIT_MS. Without chromium every
 * test is skipped with a message saying so.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "canaryd/timeutil.h"
#include "html_check.h"
#include "live_helpers.h"

#define SOP CANARYD_SOURCE_DIR "/config/sop.json"
#define DEMO CANARYD_SOURCE_DIR "/config/demo.json"
#define SCEN CANARYD_SOURCE_DIR "/tests/data/scenarios/error-regression"
#define ARTIFACTS CANARYD_BINARY_DIR "/artifacts/browser"
#define CHROME_LIMIT_MS 90000
#define ROLLBACK_LIMIT_MS 180000 /* demo config: ROLLBACK ~55 s after the start */
#define TOKEN "browser-test-token"

static char chrome[256];
static pid_t kids[3] = {-1, -1, -1};

/* Waits up to limit_ms for pid (SIGTERM first when term), SIGKILL after;
 * returns the exit status (128 + signal when killed by one). */
static int ended(pid_t pid, bool term, long limit_ms)
{
    bool late = false;
    int st = finish(pid, term, limit_ms, &late);
    cr_expect(!late, "pid %d did not exit within %ld ms: killed", (int)pid, limit_ms);
    return exit_code(st);
}

static int run(char *const argv[], const char *out, const char *err)
{
    return ended(spawn_child(argv, NULL, out, err, NULL), false, 120000);
}

/* Chromium on url: the DOM after the page's scripts ran for budget_ms of
 * virtual time (malloc'd), or a screenshot when png is set. Asserts that no
 * console message was printed. */
static char *chromium(const char *url, int budget_ms, const char *size, const char *png)
{
    char budget[64], win[64], shot[300], profile[200];
    snprintf(budget, sizeof budget, "--virtual-time-budget=%d", budget_ms);
    snprintf(win, sizeof win, "--window-size=%s", size);
    snprintf(shot, sizeof shot, "--screenshot=%s", png ? png : "");
    snprintf(profile, sizeof profile, "--user-data-dir=%s", path_of("chromium-profile"));
    char *argv[] = {chrome,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--hide-scrollbars",
                    "--no-first-run",
                    "--disable-extensions",
                    "--enable-logging=stderr",
                    "--v=0",
                    profile,
                    budget,
                    win,
                    png ? shot : "--dump-dom",
                    (char *)url,
                    NULL};
    const char *out = path_of("chromium.out"), *err = path_of("chromium.err");
    int rc = ended(spawn_child(argv, NULL, out, err, NULL), false, CHROME_LIMIT_MS);
    char *log = slurp(err);
    cr_expect_eq(rc, 0, "chromium exit %d on %s: %s", rc, url, log);
    /* every console message is a ":CONSOLE" line; these pages print none */
    const char *c = strstr(log, ":CONSOLE");
    cr_expect_null(c, "console output loading %s: %.300s", url, c ? c : "");
    free(log);
    if (png) {
        struct stat st;
        cr_expect(stat(png, &st) == 0 && st.st_size > 10000, "no screenshot %s", png);
        return NULL;
    }
    return slurp(out);
}

static bool find_chromium(void)
{
    const char *path = getenv("PATH");
    char *copy = strdup(path ? path : "/usr/bin:/bin");
    bool found = false;
    for (char *d = strtok(copy, ":"); d && !found; d = strtok(NULL, ":")) {
        snprintf(chrome, sizeof chrome, "%s/chromium", d);
        found = access(chrome, X_OK) == 0;
    }
    free(copy);
    return found;
}

static void setup(void)
{
    scratch_make("canaryd-browser.");
    mkdir(CANARYD_BINARY_DIR "/artifacts", 0755);
    mkdir(ARTIFACTS, 0755);
}

static void teardown(void)
{
    kill_children();
    scratch_remove();
}

TestSuite(browser, .init = setup, .fini = teardown, .timeout = 500);

#define NEED_CHROMIUM()                                                                            \
    do {                                                                                           \
        if (!find_chromium())                                                                      \
            cr_skip_test("chromium is not installed (Debian package chromium, which tools/setup "  \
                         "installs): the browser tests are skipped");                              \
    } while (0)

/* How many rules a config file has: one chart (and one history series) each. */
static int rules_in(const char *config)
{
    json_error_t err;
    json_t *c = json_load_file(config, 0, &err);
    cr_assert_not_null(c, "%s: %s", config, err.text);
    int n = (int)json_array_size(json_object_get(c, "rules"));
    json_decref(c);
    cr_assert_gt(n, 0, "%s has no rules", config);
    return n;
}

static int64_t t_of(const char *s, size_t n);

/* The time of the scenario's ROLLBACK record in its expected.jsonl (the
 * replay suite keeps that file exact), in epoch ms. */
static int64_t expected_rollback_ms(void)
{
    char *text = slurp(SCEN "/expected.jsonl");
    int64_t t = -1;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *r = json_loads(line, 0, NULL);
        const char *v = json_string_value(json_object_get(r, "verdict"));
        if (v && strcmp(v, "ROLLBACK") == 0) {
            const char *ts = json_string_value(json_object_get(r, "time"));
            t = t_of(ts, strlen(ts));
        }
        json_decref(r);
    }
    free(text);
    cr_assert_geq(t, 0, "no ROLLBACK in " SCEN "/expected.jsonl");
    return t;
}

static int64_t t_of(const char *s, size_t n)
{
    int64_t ms;
    cr_assert(cd_time_parse_rfc3339(s, n, &ms), "bad time %.*s", (int)n, s);
    return ms;
}

/* The control: the console check catches a throwing script. */
Test(browser, console_errors_are_caught)
{
    NEED_CHROMIUM();
    FILE *f = fopen(path_of("bad.html"), "w");
    fputs("<!DOCTYPE html><html><body><script>nosuch();</script></body></html>", f);
    fclose(f);
    char url[256], profile[200];
    snprintf(url, sizeof url, "file://%s", path_of("bad.html"));
    snprintf(profile, sizeof profile, "--user-data-dir=%s", path_of("chromium-profile"));
    char *argv[] = {chrome,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--enable-logging=stderr",
                    "--v=0",
                    profile,
                    "--dump-dom",
                    url,
                    NULL};
    cr_assert_eq(ended(spawn_child(argv, NULL, path_of("c.out"), path_of("c.err"), NULL), false,
                       CHROME_LIMIT_MS),
                 0);
    char *log = slurp(path_of("c.err"));
    cr_expect(strstr(log, ":CONSOLE") && strstr(log, "nosuch is not defined"),
              "chromium did not report the script error: %s", log);
    free(log);
}

Test(browser, report_renders_in_chromium)
{
    NEED_CHROMIUM();
    char *gen[] = {(char *)canaryd_bin(), "generate", "--scenario-file", SCEN "/scenario.json",
                   NULL};
    cr_assert_eq(run(gen, path_of("events.jsonl"), path_of("gen.err")), 0);
    char *rep[] = {(char *)canaryd_bin(),
                   "report",
                   "--config",
                   SOP,
                   "-o",
                   (char *)path_of("report.html"),
                   (char *)path_of("events.jsonl"),
                   NULL};
    cr_assert_eq(run(rep, path_of("rep.out"), path_of("rep.err")), 0, "%s",
                 slurp(path_of("rep.err")));
    char url[256];
    snprintf(url, sizeof url, "file://%s", path_of("report.html"));
    char *dom = chromium(url, 1000, "1100,1400", NULL);
    cr_assert(strlen(dom) > 100000, "DOM of %zu bytes", strlen(dom));
    cr_expect_eq(
        html_count(dom, "class=\"verdict-big v-ROLLBACK\" data-verdict=\"ROLLBACK\">ROLLBACK<"), 1);
    cr_expect_eq(html_count(dom, "<svg class=\"chart\""), rules_in(SOP));
    char *er = html_rule_section(dom, "error-rate");
    cr_assert_not_null(er);
    cr_expect_gt(html_attr_ll(er, "<path class=\"series canary\"", 0, "data-points"), 1000);
    /* the ROLLBACK at the scenario's expected time, after the onset at 12:04 */
    long long t = html_attr_ll(er, "<g class=\"mark verdict m-ROLLBACK\"", 0, "data-t");
    cr_expect_eq(t, expected_rollback_ms());
    cr_expect_gt(t, t_of("2026-11-27T12:04:00Z", 20));
    free(er);
    free(dom);
    chromium(url, 1000, "1100,2600", ARTIFACTS "/report.png");
}

/* Waits until path holds needle (bounded); returns the file's text. */
static char *wait_text(const char *path, const char *needle, int64_t limit_ms, pid_t alive)
{
    int64_t deadline = mono_ms() + limit_ms;
    for (;;) {
        char *s = slurp(path);
        if (strstr(s, needle)) return s;
        free(s);
        cr_assert_lt(mono_ms(), deadline, "no \"%s\" in %s within %lld ms", needle, path,
                     (long long)limit_ms);
        cr_assert_eq(waitpid(alive, NULL, WNOHANG), 0, "the process writing %s died: %s", path,
                     slurp(path_of("run.err")));
        poll(NULL, 0, 50); /* the file is written by another process */
    }
}

Test(browser, live_page_shows_the_rollback)
{
    NEED_CHROMIUM();
    /* 1. broker */
    char mock[512];
    snprintf(mock, sizeof mock, "%s/canaryd-mock-kafka", getenv("CANARYD_TOOLS_DIR"));
    char *bargv[] = {mock, "--topic", "events:8", "--port-file", (char *)path_of("broker"), NULL};
    kids[0] = track(spawn_child(bargv, NULL, "/dev/null", path_of("broker.err"), NULL));
    char *brokers = wait_text(path_of("broker"), ":", 15000, kids[0]);
    brokers[strcspn(brokers, "\n")] = '\0';

    /* 2. the agent, with the HTTP API on a free port and a token */
    json_t *cfg = json_load_file(DEMO, 0, NULL);
    cr_assert_not_null(cfg);
    json_object_set_new(cfg, "http", json_pack("{s:s,s:s}", "bind", "127.0.0.1:0", "token", TOKEN));
    cr_assert_eq(json_dump_file(cfg, path_of("cfg.json"), 0), 0);
    json_decref(cfg);
    char *rargv[] = {(char *)canaryd_bin(),
                     "run",
                     "--config",
                     (char *)path_of("cfg.json"),
                     "--brokers",
                     brokers,
                     "--topic",
                     "events",
                     "--group",
                     "browser",
                     "--threads",
                     "2",
                     NULL};
    kids[1] = track(spawn_child(rargv, NULL, path_of("run.out"), path_of("run.err"), NULL));
    char *err = wait_text(path_of("run.err"), "http: listening on 127.0.0.1:", 30000, kids[1]);
    int port = atoi(strstr(err, "http: listening on 127.0.0.1:") + 29);
    free(err);
    cr_assert_gt(port, 0);

    /* 3. the canary release going bad 20 s in */
    char *sargv[] = {(char *)canaryd_bin(),
                     "simulate",
                     "--brokers",
                     brokers,
                     "--topic",
                     "events",
                     "--scenario",
                     "error-regression",
                     "--rate",
                     "1000",
                     "--onset",
                     "20s",
                     NULL};
    kids[2] = track(spawn_child(sargv, NULL, "/dev/null", path_of("sim.err"), NULL));
    char *sim = wait_text(path_of("sim.err"), " (onset", 30000, kids[2]);
    const char *from = strstr(strstr(sim, "simulate: scenario "), " from ") + 6;
    int64_t start = t_of(from, (size_t)(strstr(from, " (onset") - from));
    free(sim);

    /* 4. the agent's ROLLBACK record */
    char *out =
        wait_text(path_of("run.out"), "\"verdict\":\"ROLLBACK\"", ROLLBACK_LIMIT_MS, kids[1]);
    const char *rb = strstr(out, "\"verdict\":\"ROLLBACK\"");
    const char *line = rb;
    while (line > out && line[-1] != '\n')
        line--;
    json_t *rec = json_loadb(line, (size_t)(strchr(rb, '\n') - line), 0, NULL);
    cr_assert_not_null(rec);
    const char *rt = json_string_value(json_object_get(rec, "time"));
    int64_t rollback_ms = t_of(rt, strlen(rt));
    cr_expect_gt(rollback_ms, start + 20000, "ROLLBACK before the onset");
    json_decref(rec);
    free(out);

    /* 5. the page, as a browser sees it after its script polled */
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/#token=%s", port, TOKEN);
    char *dom = chromium(url, 4000, "1100,1400", NULL);
    cr_expect(strstr(dom, "data-polls=\"0\"") == NULL, "the page never rendered a poll");
    cr_expect(strstr(dom, "data-error=") == NULL, "script error: %.200s",
              strstr(dom, "data-error="));
    cr_expect_eq(
        html_count(dom, "class=\"verdict-big v-ROLLBACK\" data-verdict=\"ROLLBACK\">ROLLBACK<"), 1,
        "the page does not show ROLLBACK");
    cr_expect_eq(html_count(dom, "<span id=\"release\">2.5.0</span>"), 1);
    cr_expect_eq(html_count(dom, "<svg class=\"chart\""), rules_in(DEMO));
    char *er = html_rule_section(dom, "error-rate");
    cr_assert_not_null(er, "no error-rate chart in the page");
    long long pts = html_attr_ll(er, "<path class=\"series canary\"", 0, "data-points");
    cr_expect_gt(pts, 20, "canary series with %lld points", pts);
    cr_expect_eq(html_attr_ll(er, "<g class=\"mark verdict m-ROLLBACK\"", 0, "data-t"), rollback_ms,
                 "the ROLLBACK mark is not at the record's time");
    cr_expect_eq(html_count(er, "<rect class=\"span firing\""), 1);
    free(er);
    free(dom);
    chromium(url, 4000, "1100,2200", ARTIFACTS "/live.png");
    chromium(url, 4000, "390,2400", ARTIFACTS "/live-phone.png");

    /* 6. the same series as JSON, and since= */
    char hu[128];
    snprintf(hu, sizeof hu, "http://127.0.0.1:%d/api/v1/history", port);
    json_t *h = http_get_json(hu, 200), *r;
    size_t i;
    cr_expect_eq((int)json_array_size(json_object_get(h, "rules")), rules_in(DEMO));
    json_array_foreach(json_object_get(h, "rules"), i, r)
    {
        size_t n = json_array_size(json_object_get(r, "t"));
        cr_expect_gt(n, 20, "%s: %zu points", json_string_value(json_object_get(r, "name")), n);
        cr_expect_eq(json_array_size(json_object_get(r, "canary")), n);
        cr_expect_eq(json_array_size(json_object_get(r, "threshold")), n);
    }
    bool seen = false;
    json_array_foreach(json_object_get(h, "marks"), i, r) seen |=
        json_is_string(json_object_get(r, "verdict")) &&
        strcmp(json_string_value(json_object_get(r, "verdict")), "ROLLBACK") == 0 &&
        json_integer_value(json_object_get(r, "t")) == rollback_ms;
    cr_expect(seen, "no ROLLBACK mark at the record's time in /api/v1/history");
    int64_t next = json_integer_value(json_object_get(h, "next_since"));
    snprintf(hu, sizeof hu, "http://127.0.0.1:%d/api/v1/history?since=%lld", port,
             (long long)rollback_ms);
    json_t *h2 = http_get_json(hu, 200);
    json_array_foreach(json_object_get(h2, "rules"), i, r)
    {
        json_t *t = json_object_get(r, "t");
        cr_expect_gt(json_integer_value(json_array_get(t, 0)), rollback_ms);
    }
    cr_expect_geq(next, rollback_ms);
    json_decref(h);
    json_decref(h2);

    /* 7. stop: simulator, agent, broker */
    cr_expect_eq(ended(kids[2], true, 15000), 0);
    kids[2] = -1;
    cr_expect_eq(ended(kids[1], true, 15000), 0);
    kids[1] = -1;
    cr_expect_eq(ended(kids[0], true, 15000), 0);
    kids[0] = -1;
    free(brokers);
}
