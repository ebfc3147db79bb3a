/*
 * test_report.c - `canaryd report` end to end (CANARYD_BIN): golden
 * structural checks on the HTML it writes for the error-regression scenario
 * (tests/data/scenarios/error-regression: canary errors x3 from 12:04,
 * config/sop.json), whose records are known exactly (its expected.jsonl):
 *   - one chart per rule of the config, each with canary and threshold
 *     series that have points, and the stable series where the rule has one;
 *   - the error-rate chart's pending span from the inactive -> pending record
 *     to the pending -> firing one, its firing span from there, the ROLLBACK
 *     mark at the ROLLBACK record's time, after the scenario's onset, with
 *     the record's reason in its <title>;
 *   - the timeline's segments and sequence at the release-wide records' times;
 *   - the summary's counts equal replay's summary of the same stream, bad
 *     input by reason included (2 % garbage mixed in);
 *   - self-contained: no script, no external reference, under 1 MB;
 *   - from the verdict log (--from-log) the same spans and marks.
 * Each case runs the binaries as child processes in a temporary folder.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "canaryd/timeutil.h"
#include "html_check.h"
#include "live_helpers.h"

#define SOP CANARYD_SOURCE_DIR "/config/sop.json"
#define SCEN CANARYD_SOURCE_DIR "/tests/data/scenarios/error-regression"

/* Runs argv with stdout and stderr into files; returns the exit status. */
static int run(char *const argv[], const char *out, const char *err)
{
    bool late = false;
    int st = finish(spawn_child(argv, NULL, out, err, NULL), false, 240000, &late);
    cr_assert(!late, "%s did not exit within 240 s", argv[0]);
    return exit_code(st);
}

static void setup(void)
{
    scratch_make("canaryd-report.");
}

static void teardown(void)
{
    scratch_remove();
}

TestSuite(report, .init = setup, .fini = teardown, .timeout = 300);

/* Generates the scenario's stream (extra: a generator option and value). */
static void generate(const char *out, const char *opt, const char *val)
{
    char *argv[] = {
        (char *)canaryd_bin(), "generate", "--scenario-file", SCEN "/scenario.json", (char *)opt,
        (char *)val,           NULL};
    cr_assert_eq(run(argv, out, path_of("gen.err")), 0, "generate failed: %s",
                 slurp(path_of("gen.err")));
}

static int64_t t_of(const char *rfc3339)
{
    int64_t ms;
    cr_assert(cd_time_parse_rfc3339(rfc3339, strlen(rfc3339), &ms), "bad time %s", rfc3339);
    return ms;
}

/* The scenario's expected records (time, kind, verdict, rule, from, to). */
static json_t *expected(void)
{
    json_t *a = json_array();
    char *text = slurp(SCEN "/expected.jsonl");
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        json_array_append_new(a, json_loads(line, 0, NULL));
    free(text);
    return a;
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static int64_t onset_ms(void)
{
    json_t *s = json_load_file(SCEN "/scenario.json", 0, NULL);
    int64_t start = t_of(str(s, "start")), onset;
    cr_assert(cd_duration_parse(str(s, "onset"), &onset));
    json_decref(s);
    return start + onset;
}

/* The rule names of config/sop.json, in order. */
static json_t *rule_names(void)
{
    json_t *c = json_load_file(SOP, 0, NULL), *names = json_array(), *r;
    size_t i;
    cr_assert_not_null(c);
    json_array_foreach(json_object_get(c, "rules"), i, r)
        json_array_append(names, json_object_get(r, "name"));
    json_decref(c);
    return names;
}

/* The spans and marks the expected records imply, checked in doc. */
static void check_records_drawn(const char *doc, bool sampled)
{
    json_t *exp = expected(), *rec;
    size_t i;
    int rollbacks = 0;
    json_array_foreach(exp, i, rec)
    {
        int64_t t = t_of(str(rec, "time"));
        const char *rule = str(rec, "rule");
        if (!*rule) { /* release-wide: a timeline segment starts there */
            char key[128];
            snprintf(key, sizeof key, "data-verdict=\"%s\" data-from=\"%lld\"", str(rec, "verdict"),
                     (long long)t);
            cr_expect_eq(html_count(doc, key), 1, "no timeline segment %s", key);
            continue;
        }
        char *sec = html_rule_section(doc, rule);
        cr_assert_not_null(sec, "no chart for rule %s", rule);
        if (strcmp(str(rec, "kind"), "state") == 0) {
            const char *to = str(rec, "to");
            char key[128];
            if (strcmp(to, "pending") == 0 || strcmp(to, "firing") == 0) {
                snprintf(key, sizeof key, "data-state=\"%s\" data-from=\"%lld\"", to, (long long)t);
                cr_expect_eq(html_count(sec, key), 1, "%s: no %s span from %s", rule, to,
                             str(rec, "time"));
            }
            if (strcmp(str(rec, "from"), "pending") == 0) { /* the pending span ends here */
                snprintf(key, sizeof key, "data-state=\"pending\" data-from=\"");
                cr_expect_eq(html_attr_ll(sec, "<rect class=\"span pending\"", 0, "data-to"), t,
                             "%s: the pending span does not end at %s", rule, str(rec, "time"));
            }
            if (sampled) { /* a state mark with its reason */
                snprintf(key, sizeof key, "<g class=\"mark state m-%s\" data-t=\"%lld\">", to,
                         (long long)t);
                cr_expect_eq(html_count(sec, key), 1, "%s: no mark %s", rule, key);
            }
        } else {
            char key[128];
            snprintf(key, sizeof key, "<g class=\"mark verdict m-%s\" data-t=\"%lld\">",
                     str(rec, "verdict"), (long long)t);
            cr_expect_eq(html_count(sec, key), 1, "%s: no mark %s", rule, key);
            if (strcmp(str(rec, "verdict"), "ROLLBACK") == 0) {
                rollbacks++;
                cr_expect_gt(t, onset_ms(), "the ROLLBACK is not after the onset");
                /* its reason: hover text and the list beside the chart */
                cr_expect(strstr(strstr(sec, key), "ROLLBACK: canary error-rate") != NULL,
                          "the ROLLBACK mark has no reason");
                snprintf(key, sizeof key, "<li class=\"verdict\" data-t=\"%lld\">", (long long)t);
                cr_expect_eq(html_count(sec, key), 1, "the ROLLBACK is not listed");
            }
        }
        free(sec);
    }
    cr_expect_eq(rollbacks, 1);
    json_decref(exp);
}

Test(report, error_regression_charts_spans_and_marks)
{
    generate(path_of("events.jsonl"), "--seed", "1");
    char *argv[] = {(char *)canaryd_bin(),
                    "report",
                    "--config",
                    SOP,
                    "--output",
                    (char *)path_of("r.html"),
                    (char *)path_of("events.jsonl"),
                    NULL};
    int rc = run(argv, path_of("out"), path_of("err"));
    cr_assert_eq(rc, 0, "report exit %d: %s", rc, slurp(path_of("err")));
    char *out = slurp(path_of("out"));
    char want[200];
    snprintf(want, sizeof want, "%s\n", path_of("r.html"));
    cr_expect_str_eq(out, want, "the path is printed on stdout");
    free(out);
    char *doc = slurp(path_of("r.html"));
    size_t size = strlen(doc);
    cr_expect_lt(size, 1024 * 1024, "report is %zu bytes", size);

    /* self-contained */
    cr_expect_eq(html_count(doc, "<script"), 0);
    cr_expect_eq(html_count(doc, "http://") + html_count(doc, "https://"), 0);
    cr_expect_eq(html_count(doc, "@import") + html_count(doc, "@font-face"), 0);
    cr_expect(strncmp(doc, "<!DOCTYPE html>", 15) == 0);
    cr_expect_eq(html_count(doc, "</html>"), 1);

    cr_expect_eq(html_count(doc, "id=\"verdict\" class=\"verdict-big v-ROLLBACK\""), 1);
    cr_expect_eq(html_count(doc, "<span id=\"release\">2.5.0</span>"), 1);

    /* one chart per rule, with its series */
    json_t *names = rule_names(), *n;
    size_t i;
    cr_expect_eq(html_count(doc, "<section class=\"rule\""), (int)json_array_size(names));
    cr_expect_eq(html_count(doc, "<svg class=\"chart\""), (int)json_array_size(names));
    json_array_foreach(names, i, n)
    {
        char *sec = html_rule_section(doc, json_string_value(n));
        cr_assert_not_null(sec, "no chart for %s", json_string_value(n));
        cr_expect_eq(html_count(sec, "<svg class=\"chart\""), 1);
        /* 18 minutes evaluated every second: 1079 evaluations; a series has
         * a point wherever its value is defined (a spike's threshold needs
         * stable data: it starts a little later) */
        long long pc = html_attr_ll(sec, "<path class=\"series canary\"", 0, "data-points");
        long long pt = html_attr_ll(sec, "<path class=\"series threshold\"", 0, "data-points");
        if (strstr(sec, "data-kind=\"silence\"")) {
            /* a silence rule is not judged after the release's decision
             * (the ROLLBACK at +9m24s): points up to it only, no stable line */
            cr_expect(pc > 540 && pc <= 565, "%s: canary series has %lld points",
                      json_string_value(n), pc);
            cr_expect_gt(pt, 450, "%s: threshold series has %lld points", json_string_value(n),
                         pt);
            cr_expect_null(strstr(sec, "<path class=\"series stable\""));
            free(sec);
            continue;
        }
        cr_expect_gt(pc, 1000, "%s: canary series has %lld points", json_string_value(n), pc);
        cr_expect_gt(pt, 900, "%s: threshold series has %lld points", json_string_value(n), pt);
        if (!strstr(sec, "data-kind=\"flatline\"")) {
            long long ps = html_attr_ll(sec, "<path class=\"series stable\"", 0, "data-points");
            cr_expect_gt(ps, 1000, "%s: stable series has %lld points", json_string_value(n), ps);
        }
        free(sec);
    }
    json_decref(names);

    /* error-rate: hysteresis band drawn, short-of-data run at the start */
    char *er = html_rule_section(doc, "error-rate");
    cr_expect_geq(html_count(er, "<path class=\"band\""), 1);
    cr_expect_geq(html_count(er, "<g class=\"short\""), 1);
    cr_expect_eq(html_count(er, "<rect class=\"span firing\""), 1);
    cr_expect_eq(html_count(er, "<rect class=\"span pending\""), 1);
    free(er);

    check_records_drawn(doc, true);
    cr_expect(strstr(doc, "<p class=\"sequence\"><span class=\"v-ANALYZING\"") != NULL);
    free(doc);
}

/* The summary table equals replay's summary of the same stream. */
Test(report, summary_matches_replay_with_garbage)
{
    generate(path_of("g.jsonl"), "--garbage", "0.02");
    char *rep[] = {(char *)canaryd_bin(),      "replay", "--config", SOP,
                   (char *)path_of("g.jsonl"), NULL};
    cr_assert_eq(run(rep, path_of("rep.out"), path_of("rep.err")), 20);
    char *argv[] = {
        (char *)canaryd_bin(),      "report", "--config", SOP, "-o", (char *)path_of("g.html"),
        (char *)path_of("g.jsonl"), NULL};
    cr_assert_eq(run(argv, path_of("out"), path_of("err")), 0, "%s", slurp(path_of("err")));
    char *doc = slurp(path_of("g.html")), *sum = slurp(path_of("rep.err"));
    /* each "  TYPE  canary  stable" and "    reason  count" line of replay's
     * summary is a table row of the report */
    int rows = 0, reasons = 0;
    char *start = strstr(sum, "\ncanaryd replay: "); /* after the logged samples */
    cr_assert_not_null(start);
    for (char *line = strtok(start, "\n"); line; line = strtok(NULL, "\n")) {
        char name[64], row[256];
        unsigned long long a, b;
        int end = 0;
        if (strncmp(line, "  ", 2) == 0 && line[2] >= 'A' && line[2] <= 'Z' &&
            sscanf(line, " %63[A-Z_] %llu %llu%n", name, &a, &b, &end) == 3 && !line[end]) {
            snprintf(row, sizeof row, "<tr><td>%s</td><td>%llu</td><td>%llu</td></tr>", name, a, b);
            cr_expect_eq(html_count(doc, row), 1, "no row %s", row);
            rows++;
        } else if (strncmp(line, "    ", 4) == 0 && line[4] >= 'a' && line[4] <= 'z' &&
                   sscanf(line, " %63[a-z_0-9] %llu%n", name, &a, &end) == 2 && !line[end]) {
            snprintf(row, sizeof row, "<tr data-reason=\"%s\"><td>%s</td><td>%llu</td></tr>", name,
                     name, a);
            cr_expect_eq(html_count(doc, row), 1, "no row %s", row);
            reasons++;
        }
    }
    cr_expect_eq(rows, 7, "event type rows in replay's summary: %d", rows);
    cr_expect_geq(reasons, 5, "bad input reasons: %d", reasons);
    cr_expect_eq(html_count(doc, "<tr data-reason="), reasons);
    /* garbage changes no verdict: the same records are drawn */
    check_records_drawn(doc, true);
    free(doc);
    free(sum);
}

/* From the verdict log: the records alone give the same spans and marks. */
Test(report, from_verdict_log)
{
    generate(path_of("e.jsonl"), "--seed", "1");
    char *rep[] = {(char *)canaryd_bin(),
                   "replay",
                   "--config",
                   SOP,
                   "--verdict-log",
                   (char *)path_of("v.jsonl"),
                   (char *)path_of("e.jsonl"),
                   NULL};
    cr_assert_eq(run(rep, path_of("rep.out"), path_of("rep.err")), 20);
    char *argv[] = {(char *)canaryd_bin(),
                    "report",
                    "--config",
                    SOP,
                    "-o",
                    (char *)path_of("l.html"),
                    "--from-log",
                    (char *)path_of("v.jsonl"),
                    NULL};
    cr_assert_eq(run(argv, path_of("out"), path_of("err")), 0, "%s", slurp(path_of("err")));
    char *doc = slurp(path_of("l.html"));
    cr_expect_eq(html_count(doc, "id=\"verdict\" class=\"verdict-big v-ROLLBACK\""), 1);
    cr_expect_eq(html_count(doc, "<section class=\"summary\""), 0, "no summary without events");
    check_records_drawn(doc, false);
    free(doc);
}

Test(report, usage_errors)
{
    char *a[] = {(char *)canaryd_bin(), "report", "--config", SOP, NULL};
    cr_expect_eq(run(a, path_of("out"), path_of("err")), 2);
    cr_expect(strstr(slurp(path_of("err")), "no input given") != NULL);
    char *b[] = {(char *)canaryd_bin(), "report", "--config", SOP, "--from-log", "x", "y", NULL};
    cr_expect_eq(run(b, path_of("out"), path_of("err")), 2);
    char *c[] = {(char *)canaryd_bin(),
                 "report",
                 "--config",
                 SOP,
                 "-o",
                 "/nonexistent/dir/r.html",
                 "--from-log",
                 SCEN "/expected.jsonl",
                 NULL};
    cr_expect_eq(run(c, path_of("out"), path_of("err")), 1);
    cr_expect(strstr(slurp(path_of("err")), "/nonexistent/dir/r.html") != NULL);
}
