/*
 * test_baseline.c - `canaryd baseline` end to end (CANARYD_BIN): the exact
 * file captured from a hand-written stream, --window, the round trip through
 * cd_config_load with baseline_file, a replay with no stable traffic that
 * compares with the captured baseline, rules with too few stable samples,
 * exit 3 when nothing is captured, usage errors, and the loader's checks of
 * the informational keys. Every run works in its own folder under /tmp,
 * removed afterwards.
 *
 * The stream (write_stream) covers 12:00:00-12:00:29, one group of events
 * at 0.250 s into every second s:
 *   stable  REQUEST_COMPLETED x4; ERROR_OCCURRED when s % 5 == 0;
 *           PAYMENT_COMPLETED x1; PAYMENT_FAILED when s % 10 == 9
 *   canary  REQUEST_COMPLETED x10, ERROR_OCCURRED x5 (never counted)
 * then, out of order at the end: a stable ERROR_OCCURRED at 12:00:21.000
 * (inside the 10 s window) and one at 12:00:19.900 (outside it), a line that
 * is not JSON, and a stable ERROR_OCCURRED 30 minutes ahead ("future").
 * By hand, over the last 10 s (12:00:20-12:00:30): errors at s = 20, 25 and
 * the late 21.000 = 3, requests 40: 0.075. Over the last 5 s the error
 * count is 1 (s = 25). Payments over 20 s: 20 completed + 2 failed = 22
 * samples, below the 50 required. Over the whole stream: errors 6 + 2 late
 * = 8 of 120 requests; payments 30 + 3 = 33.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "canaryd/config.h"
#include "live_helpers.h"

static void setup(void)
{
    scratch_make("cd_baseline_");
}

static void teardown(void)
{
    kill_children();
    scratch_remove();
}

TestSuite(baseline, .init = setup, .fini = teardown);

/* Runs canaryd with args (NULL-terminated), stdin from in (NULL: /dev/null),
 * stdout and stderr into "out" and "err"; returns the exit status. */
static int run(const char *in, const char *const *args)
{
    return wait_exit(spawn_canaryd(in, "out", "err", args), 120000);
}

/* stderr of the last run contains needle */
static void err_has(const char *needle)
{
    char *e = read_file("err");
    cr_assert_not_null(e);
    cr_assert(strstr(e, needle) != NULL, "stderr lacks\n  %s\nstderr:\n%s", needle, e);
    free(e);
}

static void out_is(const char *expected)
{
    char *o = read_file("out");
    cr_assert_not_null(o);
    cr_assert_str_eq(o, expected);
    free(o);
}

static const char CONFIG[] =
    "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\", "
    "\"PAYMENT_COMPLETED\", \"PAYMENT_FAILED\"]},\n"
    " \"windows\": {\"allowed_lateness\": \"2s\", \"max_future_skew\": \"1m\", \"slack\": "
    "\"10s\"},\n"
    " \"baseline_file\": \"baseline.json\",\n"
    " \"rules\": [\n"
    "  {\"name\": \"errors\", \"kind\": \"relative\", \"numerator\": [\"ERROR_OCCURRED\"],\n"
    "   \"denominator\": [\"REQUEST_COMPLETED\"], \"op\": \">\", \"factor\": 2, \"floor\": "
    "0.01,\n"
    "   \"window\": \"10s\", \"min_samples\": {\"canary\": 10, \"stable\": 20}, \"action\": "
    "\"rollback\"},\n"
    "  {\"name\": \"payments\", \"kind\": \"relative\", \"numerator\": [\"PAYMENT_FAILED\"],\n"
    "   \"denominator\": [\"PAYMENT_COMPLETED\", \"PAYMENT_FAILED\"], \"op\": \">\", "
    "\"factor\": 2,\n"
    "   \"window\": \"20s\", \"min_samples\": {\"canary\": 5, \"stable\": 50}, \"action\": "
    "\"alert\"},\n"
    "  {\"name\": \"err-count\", \"kind\": \"relative\", \"numerator\": [\"ERROR_OCCURRED\"],\n"
    "   \"op\": \">\", \"factor\": 3, \"window\": \"5s\", \"action\": \"alert\"},\n"
    "  {\"name\": \"pay-floor\", \"kind\": \"threshold\", \"numerator\": [\"PAYMENT_FAILED\"],\n"
    "   \"op\": \">\", \"threshold\": 100, \"window\": \"10s\", \"action\": \"alert\"}\n"
    " ]}\n";

static void event(FILE *f, const char *type, const char *cohort, int sec, int ms)
{
    fprintf(f,
            "{\"event_type\":\"%s\",\"timestamp\":\"2026-11-27T12:00:%02d.%03dZ\","
            "\"cohort\":\"%s\"}\n",
            type, sec, ms, cohort);
}

static void write_stream(const char *name)
{
    FILE *f = fopen(path_of(name), "w");
    cr_assert_not_null(f);
    for (int s = 0; s < 30; s++) {
        for (int i = 0; i < 4; i++)
            event(f, "REQUEST_COMPLETED", "stable", s, 250);
        if (s % 5 == 0) event(f, "ERROR_OCCURRED", "stable", s, 250);
        event(f, "PAYMENT_COMPLETED", "stable", s, 250);
        if (s % 10 == 9) event(f, "PAYMENT_FAILED", "stable", s, 250);
        for (int i = 0; i < 10; i++)
            event(f, "REQUEST_COMPLETED", "canary", s, 250);
        for (int i = 0; i < 5; i++)
            event(f, "ERROR_OCCURRED", "canary", s, 250);
    }
    event(f, "ERROR_OCCURRED", "stable", 21, 0);
    event(f, "ERROR_OCCURRED", "stable", 19, 900);
    fputs("this is not json\n", f);
    fputs("{\"event_type\":\"ERROR_OCCURRED\",\"timestamp\":\"2026-11-27T12:30:00Z\","
          "\"cohort\":\"stable\"}\n",
          f);
    fclose(f);
}

static const char EXPECTED[] = "{\n"
                               "  \"captured_at\": \"2026-11-27T12:00:29.250Z\",\n"
                               "  \"values\": {\n"
                               "    \"errors\": 0.075,\n"
                               "    \"err-count\": 1.0\n"
                               "  },\n"
                               "  \"samples\": {\n"
                               "    \"errors\": 40,\n"
                               "    \"err-count\": 1\n"
                               "  },\n"
                               "  \"window\": {\n"
                               "    \"errors\": \"10s\",\n"
                               "    \"err-count\": \"5s\"\n"
                               "  }\n"
                               "}\n";

Test(baseline, exact_capture_from_hand_written_stream)
{
    write_text("config.json", CONFIG); /* names baseline.json, which does not exist yet */
    write_stream("events.jsonl");
    cr_assert_eq(
        run(NULL, ARGS("baseline", "--config", path_of("config.json"), path_of("events.jsonl"))),
        0);
    out_is(EXPECTED);
    /* 30 x (4 + 1 + 10 + 5) + 6 errors + 3 failed payments + 4 trailing lines */
    err_has("canaryd baseline: 613 lines, 611 events (161 stable, 450 canary: not counted), "
            "1 bad, 1 future\n");
    err_has("    invalid_json                    1\n");
    err_has("  event time: 2026-11-27T12:00:00.250Z .. 2026-11-27T12:00:29.250Z\n");
    err_has("  errors: 0.075 = stable ERROR_OCCURRED/REQUEST_COMPLETED 3/40 over 10s ending "
            "2026-11-27T12:00:30.000Z (min samples 20)\n");
    err_has("  err-count: 1 = stable ERROR_OCCURRED 1 over 5s ending 2026-11-27T12:00:30.000Z "
            "(min samples 0)\n");
    err_has("canaryd baseline: 2 of 3 relative rules captured\n");
}

Test(baseline, insufficient_rule_is_reported_and_left_out)
{
    write_text("config.json", CONFIG);
    write_stream("events.jsonl");
    cr_assert_eq(
        run(NULL, ARGS("baseline", "--config", path_of("config.json"), path_of("events.jsonl"))),
        0);
    err_has("  payments: not captured: stable has 22 samples "
            "(PAYMENT_FAILED/(PAYMENT_COMPLETED+PAYMENT_FAILED)) in 20s ending at the last "
            "event, needs 50 (min_samples.stable)\n");
    char *o = read_file("out");
    cr_assert(strstr(o, "payments") == NULL, "%s", o);
    free(o);
}

/* write_stream's events with one more line before them. */
static void write_stream_after(const char *name, const char *first)
{
    write_stream("plain.jsonl");
    char *body = read_file("plain.jsonl");
    FILE *f = fopen(path_of(name), "w");
    cr_assert_not_null(f);
    fputs(first, f);
    fputs(body, f);
    fclose(f);
    free(body);
}

/* A bogus first timestamp far ahead (2099 in a 2026 stream) is judged
 * against the median of the first 64 events (agent/source/event_clock.c,
 * replay's clock) and counted as future: the capture is the same as
 * without it. Before baseline shared replay's clock the first event set
 * the last event time, every real event fell outside the capture windows
 * and nothing was captured (exit 3). */
Test(baseline, bogus_first_timestamp_ahead_changes_no_value)
{
    write_text("config.json", CONFIG);
    write_stream_after("events.jsonl", "{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":"
                                       "\"2099-01-01T00:00:00Z\",\"cohort\":\"stable\"}\n");
    cr_assert_eq(
        run(NULL, ARGS("baseline", "--config", path_of("config.json"), path_of("events.jsonl"))), 0,
        "%s", read_file("err"));
    out_is(EXPECTED);
    err_has("canaryd baseline: 614 lines, 611 events (161 stable, 450 canary: not counted), "
            "1 bad, 2 future\n");
    err_has("  event time: 2026-11-27T12:00:00.250Z .. 2026-11-27T12:00:29.250Z\n");
}

/* One far behind (2001): counted as late, the capture unchanged. Before,
 * every real event looked "future" against it until 64 came in a row, and
 * those 63 were lost from the counts. */
Test(baseline, bogus_first_timestamp_behind_changes_no_value)
{
    write_text("config.json", CONFIG);
    write_stream_after("events.jsonl", "{\"event_type\":\"ERROR_OCCURRED\",\"timestamp\":"
                                       "\"2001-01-01T00:00:00Z\",\"cohort\":\"stable\"}\n");
    cr_assert_eq(
        run(NULL, ARGS("baseline", "--config", path_of("config.json"), path_of("events.jsonl"))), 0,
        "%s", read_file("err"));
    out_is(EXPECTED);
    err_has("canaryd baseline: 614 lines, 611 events (161 stable, 450 canary: not counted), "
            "1 bad, 1 future, 1 late\n");
}

/* The same stream from stdin, over the whole stream: ratios over all of it,
 * the count still over its own window (and said so). */
Test(baseline, window_all_from_stdin)
{
    write_text("config.json", CONFIG);
    write_stream("events.jsonl");
    cr_assert_eq(run("events.jsonl",
                     ARGS("baseline", "--config", path_of("config.json"), "--window", "all", "-")),
                 0);
    char *o = read_file("out");
    json_error_t je;
    json_t *root = json_loads(o, 0, &je);
    cr_assert_not_null(root, "%s: %s", je.text, o);
    cr_assert_str_eq(json_string_value(json_object_get(root, "captured_at")),
                     "2026-11-27T12:00:29.250Z");
    json_t *values = json_object_get(root, "values");
    cr_assert_eq(json_object_size(values), 2);
    /* exact: the text reads back as the very double 8 / 120 */
    cr_assert(json_real_value(json_object_get(values, "errors")) == 8.0 / 120.0, "%s", o);
    cr_assert(json_real_value(json_object_get(values, "err-count")) == 1.0, "%s", o);
    json_t *samples = json_object_get(root, "samples");
    cr_assert_eq(json_integer_value(json_object_get(samples, "errors")), 120);
    cr_assert_eq(json_integer_value(json_object_get(samples, "err-count")), 1);
    json_t *win = json_object_get(root, "window");
    cr_assert_str_eq(json_string_value(json_object_get(win, "errors")), "all");
    cr_assert_str_eq(json_string_value(json_object_get(win, "err-count")), "5s");
    json_decref(root);
    free(o);
    err_has("  err-count: a count (ERROR_OCCURRED) compares only over the rule's own window: "
            "captured over 5s, not --window\n");
    err_has("  payments: not captured: stable has 33 samples "
            "(PAYMENT_FAILED/(PAYMENT_COMPLETED+PAYMENT_FAILED)) in the whole stream, needs 50 "
            "(min_samples.stable)\n");
}

Test(baseline, window_option_overrides_rule_windows)
{
    write_text("config.json", CONFIG);
    write_stream("events.jsonl");
    cr_assert_eq(run(NULL, ARGS("baseline", "--config", path_of("config.json"), "--window", "20s",
                                path_of("events.jsonl"))),
                 0);
    /* 12:00:10-12:00:30: errors at 10, 15, 20, 25 + both late ones = 6 of 80 */
    char *o = read_file("out");
    cr_assert(strstr(o, "\"errors\": 0.075,\n") != NULL, "%s", o);
    cr_assert(strstr(o, "\"errors\": 80,\n") != NULL, "%s", o);
    cr_assert(strstr(o, "\"errors\": \"20s\",\n") != NULL, "%s", o);
    free(o);
    err_has("  errors: 0.075 = stable ERROR_OCCURRED/REQUEST_COMPLETED 6/80 over 20s ending "
            "2026-11-27T12:00:30.000Z (min samples 20)\n");
}

/* Written with --output, the file loads back through the config's
 * baseline_file unchanged: the same doubles in the rules. */
Test(baseline, round_trip_through_config_load)
{
    write_text("config.json", CONFIG);
    write_stream("events.jsonl");
    cr_assert_eq(run(NULL, ARGS("baseline", "--config", path_of("config.json"), "--output",
                                path_of("baseline.json"), path_of("events.jsonl"))),
                 0);
    out_is("");
    err_has(", written to ");
    char *b = read_file("baseline.json");
    cr_assert_not_null(b);
    cr_assert_str_eq(b, EXPECTED);
    free(b);
    struct stat st;
    cr_assert_eq(stat(path_of("baseline.json"), &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0644);

    cd_diag_t *diag = malloc(sizeof(*diag));
    cd_config_t *c = cd_config_load(path_of("config.json"), diag);
    cr_assert_not_null(c, "%s", diag->text);
    cr_assert_str_eq(c->rules[0].name, "errors");
    cr_assert(c->rules[0].has_baseline);
    cr_assert(c->rules[0].baseline == 0.075);
    cr_assert_not(c->rules[1].has_baseline); /* payments: left out */
    cr_assert(c->rules[2].has_baseline);
    cr_assert(c->rules[2].baseline == 1.0);
    cd_config_free(c);
    free(diag);

    /* capturing again over an existing file replaces it whole */
    cr_assert_eq(run(NULL, ARGS("baseline", "--config", path_of("config.json"), "--window", "all",
                                "--output", path_of("baseline.json"), path_of("events.jsonl"))),
                 0);
    b = read_file("baseline.json");
    cr_assert(strstr(b, "\"errors\": \"all\"") != NULL, "%s", b);
    free(b);
}

/* A replay in which the stable fleet sends nothing compares the canary with
 * the captured value: stable_source "baseline" in the verdict record. */
Test(baseline, replay_without_stable_traffic_uses_captured_baseline)
{
    write_text("config.json", CONFIG);
    write_stream("events.jsonl");
    cr_assert_eq(run(NULL, ARGS("baseline", "--config", path_of("config.json"), "--output",
                                path_of("baseline.json"), path_of("events.jsonl"))),
                 0);
    /* canary only: 4 requests and 1 error per second, 25% > max(2 x 7.5%, 1%) */
    FILE *f = fopen(path_of("canary.jsonl"), "w");
    cr_assert_not_null(f);
    for (int s = 0; s < 20; s++) {
        for (int i = 0; i < 4; i++)
            event(f, "REQUEST_COMPLETED", "canary", s, 500);
        event(f, "ERROR_OCCURRED", "canary", s, 500);
    }
    fclose(f);
    cr_assert_eq(
        run(NULL, ARGS("replay", "--config", path_of("config.json"), path_of("canary.jsonl"))), 20);
    char *o = read_file("out");
    const char *v = strstr(o, "\"verdict\":\"ROLLBACK\",\"rule\":\"errors\"");
    cr_assert_not_null(v, "%s", o);
    const char *eol = strchr(v, '\n');
    char line[4096];
    snprintf(line, sizeof(line), "%.*s", (int)(eol - v), v);
    cr_assert(strstr(line, "\"stable_source\":\"baseline\"") != NULL, "%s", line);
    cr_assert(strstr(line, "\"threshold\":0.15,") != NULL, "%s", line);
    cr_assert(strstr(line, "2 x baseline 7.50%") != NULL, "%s", line);
    free(o);
}

Test(baseline, nothing_captured_exits_3_and_writes_nothing)
{
    write_text("config.json", CONFIG);
    /* stable: 5 requests in the last 10 s (20 needed); payments none; the
     * count rule has no minimum, so drop it from the config */
    static const char ONE_RULE[] =
        "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\"]},\n"
        " \"rules\": [{\"name\": \"errors\", \"kind\": \"relative\", \"numerator\": "
        "[\"ERROR_OCCURRED\"], \"denominator\": [\"REQUEST_COMPLETED\"], \"op\": \">\", "
        "\"factor\": 2, \"window\": \"10s\", \"min_samples\": {\"stable\": 20}, \"action\": "
        "\"rollback\"}]}\n";
    write_text("one.json", ONE_RULE);
    FILE *f = fopen(path_of("few.jsonl"), "w");
    for (int s = 0; s < 5; s++)
        event(f, "REQUEST_COMPLETED", "stable", s, 0);
    fclose(f);
    cr_assert_eq(run(NULL, ARGS("baseline", "--config", path_of("one.json"), "--output",
                                path_of("b.json"), path_of("few.jsonl"))),
                 3);
    cr_assert_not(file_exists("b.json"));
    err_has("  errors: not captured: stable has 5 samples (ERROR_OCCURRED/REQUEST_COMPLETED) in "
            "10s ending at the last event, needs 20 (min_samples.stable)\n");
    err_has("canaryd baseline: no relative rule had enough stable samples; nothing written, "
            "exit 3\n");

    /* an empty stream: nothing either, and no time to speak of */
    write_text("empty.jsonl", "");
    cr_assert_eq(
        run(NULL, ARGS("baseline", "--config", path_of("one.json"), path_of("empty.jsonl"))), 3);
    out_is("");
    err_has("  event time: none\n");
    err_has("  errors: not captured: stable has 0 samples (ERROR_OCCURRED/REQUEST_COMPLETED) in "
            "10s, needs 20 (min_samples.stable)\n");
}

Test(baseline, usage_and_config_errors_exit_2)
{
    write_text("config.json", CONFIG);
    write_stream("events.jsonl");
    const char *cfg = path_of("config.json"), *ev = path_of("events.jsonl");

    cr_assert_eq(run(NULL, ARGS("baseline", ev)), 2);
    err_has("canaryd baseline: --config FILE is required\n");
    cr_assert_eq(run(NULL, ARGS("baseline", "--config", cfg)), 2);
    err_has("canaryd baseline: no input given (a file or -)\n");
    cr_assert_eq(run(NULL, ARGS("baseline", "--config", cfg, "--bogus", ev)), 2);
    err_has("canaryd baseline: unknown option or missing value: \"--bogus\"\n");
    cr_assert_eq(run(NULL, ARGS("baseline", "--config", cfg, ev, ev)), 2);
    err_has("more than one input given");
    cr_assert_eq(run(NULL, ARGS("baseline", "--config", cfg, ev, "--window")), 2);
    err_has("unknown option or missing value: \"--window\"");
    cr_assert_eq(run(NULL, ARGS("baseline", "--config", cfg, "--window", "5x", ev)), 2);
    err_has("canaryd baseline: --window: \"5x\" is not accepted; accepted: \"all\" or a duration "
            "> 0 up to 24h that is a multiple of windows.resolution (1s), such as \"1m\" or "
            "\"30m\"\n");
    cr_assert_eq(run(NULL, ARGS("baseline", "--config", cfg, "--window", "1500ms", ev)), 2);
    err_has("--window: \"1500ms\" is not accepted");
    cr_assert_eq(run(NULL, ARGS("baseline", "--config", cfg, "--window", "25h", ev)), 2);
    err_has("--window: \"25h\" is not accepted");
    cr_assert_eq(run(NULL, ARGS("baseline", "--config", cfg, "--max-line", "0", ev)), 2);
    err_has("--max-line: \"0\" is not accepted");
    out_is("");

    cr_assert_eq(run(NULL, ARGS("baseline", "--config", path_of("missing.json"), ev)), 2);
    err_has("missing.json: cannot open");
    write_text("thresholds.json",
               "{\"rules\": [{\"name\": \"a\", \"kind\": \"threshold\", \"numerator\": "
               "[\"X\"], \"op\": \">\", \"threshold\": 1, \"window\": \"1m\", \"action\": "
               "\"alert\"}]}");
    cr_assert_eq(run(NULL, ARGS("baseline", "--config", path_of("thresholds.json"), ev)), 2);
    err_has("has no relative rule; a baseline holds values only for relative rules (kind "
            "\"relative\")\n");

    cr_assert_eq(run(NULL, ARGS("baseline", "--config", cfg, path_of("nope.jsonl"))), 1);
    err_has("nope.jsonl: No such file or directory\n");

    cr_assert_eq(run(NULL, ARGS("baseline", "--help")), 0);
    char *o = read_file("out");
    cr_assert(strncmp(o, "usage: canaryd baseline --config FILE", 37) == 0, "%s", o);
    free(o);
}

/* The loader checks the informational keys like "values", and still
 * rejects every other key. */
Test(baseline, loader_checks_informational_keys)
{
    write_text("config.json", CONFIG);
    cd_diag_t *diag = malloc(sizeof(*diag));

    write_text("baseline.json",
               "{\"values\": {\"errors\": 0.01}, \"samples\": {\"errors\": -1, \"nope\": 3}, "
               "\"window\": {\"errors\": \"10q\", \"err-count\": \"all\", \"pay-floor\": \"1m\"}, "
               "\"comment\": \"x\"}");
    cd_config_t *c = cd_config_load(path_of("config.json"), diag);
    cr_assert_null(c);
    cr_assert_eq(diag->count, 5, "%s", diag->text);
    const char *want[] = {
        "baseline.json: unknown key \"comment\"; known keys: captured_at, values, samples, "
        "window\n",
        "baseline.json: samples.errors: -1 is not a sample count; accepted: an integer >= 0\n",
        "baseline.json: samples.nope: no rule of this config has that name; accepted: names of "
        "relative rules: errors, payments, err-count\n",
        "baseline.json: window.errors: \"10q\" is not a capture window; accepted: a duration "
        "such as \"1m\" or \"5m\", or \"all\" (the whole stream)\n",
        "baseline.json: window.pay-floor: rule is of kind threshold, and only relative rules "
        "take a baseline; accepted: names of relative rules: errors, payments, err-count\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_assert(strstr(diag->text, want[i]) != NULL, "missing\n  %s\nin\n%s", want[i],
                  diag->text);

    write_text("baseline.json", "{\"values\": {\"errors\": 0.01}, \"samples\": {\"errors\": "
                                "40}, \"window\": {\"errors\": \"10s\"}}");
    c = cd_config_load(path_of("config.json"), diag);
    cr_assert_not_null(c, "%s", diag->text);
    cr_assert(c->rules[0].baseline == 0.01);
    cd_config_free(c);
    free(diag);
}

/* Bad lines and events shuffled within a few seconds change nothing: every
 * accepted event counts in its own second, however late it arrives. */
Test(baseline, garbage_and_disorder_do_not_change_the_capture)
{
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "%s/config/sop.json", CANARYD_SOURCE_DIR);
    cr_assert_eq(run(NULL, ARGS("generate", "--scenario", "healthy", "--duration", "2m")), 0);
    cr_assert_eq(rename(path_of("out"), path_of("clean.jsonl")), 0);
    cr_assert_eq(run(NULL, ARGS("generate", "--scenario", "healthy", "--duration", "2m",
                                "--garbage", "0.05", "--disorder", "3s")),
                 0);
    cr_assert_eq(rename(path_of("out"), path_of("messy.jsonl")), 0);

    cr_assert_eq(run(NULL, ARGS("baseline", "--config", cfg, path_of("clean.jsonl"))), 0);
    char *clean = read_file("out");
    err_has(", 0 bad, 0 future\n");
    cr_assert_eq(run(NULL, ARGS("baseline", "--config", cfg, path_of("messy.jsonl"))), 0);
    char *messy = read_file("out");
    char *e = read_file("err");
    cr_assert(strstr(e, ", 0 bad, ") == NULL, "%s", e); /* the garbage was there */
    free(e);
    cr_assert(strstr(clean, "\"error-rate\": ") != NULL, "%s", clean);
    cr_assert_str_eq(messy, clean);
    free(clean);
    free(messy);
}
