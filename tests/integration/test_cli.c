/*
 * test_cli.c - the built canaryd binary (CANARYD_BIN) end to end: replay's
 * records, summary and exit status, the verdict log, `tail` without and with
 * following (appends, rotation, truncation), and usage errors. Every run
 * works in its own folder under /tmp, removed afterwards.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "live_helpers.h"

static void setup(void)
{
    scratch_make("cd_cli_");
}

static void teardown(void)
{
    kill_children();
    scratch_remove();
}

static int run(const char *in, const char *const *args)
{
    return wait_exit(spawn_canaryd(in, "out", "err", args), 120000);
}

/* ---- replay ---- */

static const char CONFIG[] =
    "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\"]},\n"
    " \"windows\": {\"allowed_lateness\": \"2s\", \"max_future_skew\": \"1m\", \"slack\": "
    "\"10s\"},\n"
    " \"verdicts\": {\"promote_after\": \"1m\", \"min_canary_events\": 0},\n"
    " \"rules\": [{\"name\": \"errors\", \"kind\": \"threshold\",\n"
    "   \"description\": \"Roll back on any canary error.\", \"numerator\": [\"ERROR_OCCURRED\"],\n"
    "   \"scope\": \"canary\", \"op\": \">\", \"threshold\": 0, \"window\": \"10s\", \"for\": "
    "\"0s\",\n"
    "   \"resolve_for\": \"10s\", \"action\": \"rollback\"}]}\n";

#define EV(type, time, rest)                                                                       \
    "{\"event_type\":\"" type "\",\"timestamp\":\"2026-11-27T" time "Z\",\"cohort\":" rest "}"

/* One event per line, kept so by hand: */
/* clang-format off */
static const char EVENTS[] =
    EV("REQUEST_COMPLETED", "12:00:00.100", "\"stable\",\"version\":\"2.4.0\"") "\n"
    EV("REQUEST_COMPLETED", "12:00:00.200", "\"canary\",\"version\":\"2.5.0\"") "\n"
    "\n"
    "not json\n"
    EV("ERROR_OCCURRED", "12:00:02.500", "\"canary\",\"version\":\"2.5.0\"") "\n"
    EV("REQUEST_COMPLETED", "12:09:00.000", "\"canary\"") "\n"        /* future: dropped */
    EV("REQUEST_COMPLETED", "12:00:01.000", "\"stable\"") "\n"        /* out of order, in time */
    EV("REQUEST_COMPLETED", "11:59:59.000", "\"stable\"") "\n"        /* before the first evaluation */
    EV("REQUEST_COMPLETED", "11:50:00.000", "\"stable\"") "\n"        /* older than the ring */
    EV("REQUEST_COMPLETED", "12:00:04.000", "\"stable\"") "\n"        /* evaluates 12:00:01, :02 */
    EV("REQUEST_COMPLETED", "12:00:00.500", "\"stable\"") "\n"        /* after an evaluation */
    EV("REQUEST_COMPLETED", "12:00:05.000", "\"stable\"") "\r\n"; /* CRLF, last line */
/* clang-format on */

#define HEALTHY_JSON                                                                               \
    "{\"time\":\"2026-11-27T12:00:01.000Z\",\"kind\":\"verdict\",\"verdict\":\"HEALTHY\","         \
    "\"rule\":null,\"rule_kind\":null,\"action\":null,\"dry_run\":false,\"release\":\"2.5.0\","    \
    "\"service\":\"\",\"reason\":\"every rule has enough data and none is firing; promote after "  \
    "1m healthy\","                                                                                \
    "\"todo\":\"\",\"observed\":{\"canary\":null,\"stable\":null,\"stable_source\":null},"         \
    "\"threshold\":null,\"window\":null,\"for\":null}\n"
#define EVIDENCE                                                                                   \
    "\"rule\":\"errors\",\"rule_kind\":\"threshold\",\"action\":\"rollback\",\"dry_run\":false,"   \
    "\"release\":\"2.5.0\",\"service\":\"\",\"reason\":\"canary errors 1 (ERROR_OCCURRED) > 0 "    \
    "(window 10s; "                                                                                \
    "samples canary 1 >= 0)\",\"todo\":\"Roll back on any canary error.\",\"observed\":{"          \
    "\"canary\":{\"value\":1.0,\"numerator\":1,\"samples\":1},\"stable\":{\"value\":0.0,"          \
    "\"numerator\":0,\"samples\":0},\"stable_source\":null},\"threshold\":0.0,\"window\":\"10s\"," \
    "\"for\":\"0s\"}\n"

static const char WANT_JSON[] =
    HEALTHY_JSON "{\"time\":\"2026-11-27T12:00:03.000Z\",\"kind\":\"state\",\"from\":\"inactive\","
                 "\"to\":\"firing\"," EVIDENCE "{\"time\":\"2026-11-27T12:00:03.000Z\",\"kind\":"
                 "\"verdict\",\"verdict\":\"ROLLBACK\"," EVIDENCE;

static const char WANT_PRETTY[] =
    "2026-11-27 12:00:01Z  HEALTHY   -               every rule has enough data and none is "
    "firing; promote after 1m healthy (release 2.5.0)\n"
    "2026-11-27 12:00:03Z  state     errors          inactive -> firing  canary errors 1 "
    "(ERROR_OCCURRED) > 0 (window 10s; samples canary 1 >= 0)\n"
    "2026-11-27 12:00:03Z  ROLLBACK  errors          canary errors 1 (ERROR_OCCURRED) > 0 "
    "(window 10s; samples canary 1 >= 0) (release 2.5.0)\n";

static void expect_in(const char *name, const char *needle)
{
    char *s = read_file(name);
    cr_expect_not_null(strstr(s, needle), "%s lacks \"%s\":\n%s", name, needle, s);
    free(s);
}

static void expect_file(const char *name, const char *want)
{
    char *s = read_file(name);
    cr_expect_str_eq(s, want, "%s:\n%s", name, s);
    free(s);
}

Test(replay, records_summary_and_exit_status, .init = setup, .fini = teardown)
{
    write_file("cfg.json", CONFIG, "w");
    write_file("ev.jsonl", EVENTS, "w");
    cr_assert_eq(run(NULL, ARGS("replay", "--config", path_of("cfg.json"), path_of("ev.jsonl"))),
                 20);
    expect_file("out", WANT_JSON);
    expect_in("err", "canaryd replay: 12 lines, 8 events accepted, 1 bad, 1 late, 1 future\n");
    expect_in("err", "  REQUEST_COMPLETED                 1          6\n"
                     "  ERROR_OCCURRED                    1          0\n"
                     "  (other)                           0          0\n"
                     "  bad input: 1\n"
                     "    invalid_json                    1\n"
                     "  bad numeric fields: 0\n"
                     "  late (older than the window ring, dropped): 1\n"
                     "  future (beyond max_future_skew, dropped): 1\n"
                     "  after evaluation (beyond allowed_lateness, counted in later windows "
                     "only): 1\n"
                     "  event time: 2026-11-27T11:59:59.000Z .. 2026-11-27T12:00:05.000Z\n"
                     "  evaluations: 5, records: 3\n"
                     "  release: 2.5.0\n"
                     "  service: (unknown; events.service not set: every event judged)\n"
                     "  final verdict: ROLLBACK (firing: errors), exit 20\n");
    expect_in("err", "bad input (invalid_json) at line 4: not json\n");

    /* the same from stdin, and deterministic */
    cr_assert_eq(run("ev.jsonl", ARGS("replay", "--config", path_of("cfg.json"), "-")), 20);
    expect_file("out", WANT_JSON);

    cr_assert_eq(
        run(NULL, ARGS("replay", "--pretty", "--config", path_of("cfg.json"), path_of("ev.jsonl"))),
        20);
    expect_file("out", WANT_PRETTY);
}

Test(replay, healthy_analyzing_and_line_limit, .init = setup, .fini = teardown)
{
    write_file("cfg.json", CONFIG, "w");
    write_file("ok.jsonl",
               EV("REQUEST_COMPLETED", "12:00:00.000", "\"canary\",\"version\":\"2.5.0\"") "\n" EV(
                   "REQUEST_COMPLETED", "12:00:04.000", "\"stable\"") "\n",
               "w");
    cr_assert_eq(run(NULL, ARGS("replay", "--config", path_of("cfg.json"), path_of("ok.jsonl"))),
                 10);
    expect_in("err", "  final verdict: HEALTHY, exit 10\n");

    /* no events: nothing evaluated, still analyzing */
    write_file("empty.jsonl", "\n  \n", "w");
    cr_assert_eq(run(NULL, ARGS("replay", "--config", path_of("cfg.json"), path_of("empty.jsonl"))),
                 11);
    expect_file("out", "");
    expect_in("err", "canaryd replay: 2 lines, 0 events accepted, 0 bad, 0 late, 0 future\n");
    expect_in("err", "  event time: none\n");
    expect_in("err", "  final verdict: ANALYZING, exit 11\n");

    /* --max-line 60: the ~90-byte events are too long, counted, not decoded */
    cr_assert_eq(run(NULL, ARGS("replay", "--max-line", "60", "--config", path_of("cfg.json"),
                                path_of("ok.jsonl"))),
                 11);
    expect_in("err", "    line_too_long                   2\n");
}

/* n stable REQUEST_COMPLETED lines from hour:00:00.000 on, 100 ms apart. */
static void stable_requests(FILE *f, int hour, int n)
{
    for (int i = 0; i < n; i++)
        fprintf(f, EV("REQUEST_COMPLETED", "%02d:00:%02d.%03d", "\"stable\"") "\n", hour, i / 10,
                (i % 10) * 100);
}

/* A bogus first timestamp (1970) used to make every real event look
 * "future" until 64 of them in a row re-anchored the clock (63 lost). The
 * look-ahead (replay.c) now judges the first event against the median of
 * the first 64 and the event after it: it is dropped as late, and every
 * real event counts. */
Test(replay, bogus_first_timestamp_dropped_by_the_look_ahead, .init = setup, .fini = teardown)
{
    write_file("cfg.json", CONFIG, "w");
    FILE *f = fopen(path_of("ev.jsonl"), "w");
    cr_assert_not_null(f);
    fprintf(f, "{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":1000,\"cohort\":\"stable\"}\n");
    stable_requests(f, 12, 70);
    fclose(f);
    cr_assert_eq(run(NULL, ARGS("replay", "--config", path_of("cfg.json"), path_of("ev.jsonl"))),
                 10);
    expect_in("err", "canaryd replay: 71 lines, 70 events accepted, 0 bad, 1 late, 0 future\n");
    expect_in("err", "event at line 1 dropped: its time is 1795780802100 ms before the stream's "
                     "start, further back than the window ring");
    expect_in("err", "  event time: 2026-11-27T12:00:00.000Z .. 2026-11-27T12:00:06.900Z\n");
    expect_in("err", "  final verdict: HEALTHY, exit 10\n");
}

/* The stream pauses for an hour (longer than max_future_skew): every event
 * after the pause looks "future"; after 64 of them in a row the clock
 * follows the stream again, without evaluating the hour in between one
 * second at a time. */
Test(replay, reanchors_after_a_run_of_future_events, .init = setup, .fini = teardown)
{
    write_file("cfg.json", CONFIG, "w");
    FILE *f = fopen(path_of("ev.jsonl"), "w");
    cr_assert_not_null(f);
    stable_requests(f, 12, 10);
    stable_requests(f, 13, 70);
    fclose(f);
    /* This config's only rule needs no samples, so the empty windows around
     * the gap count as healthy and the release is promoted. */
    cr_assert_eq(run(NULL, ARGS("replay", "--config", path_of("cfg.json"), path_of("ev.jsonl"))),
                 0);
    expect_in("err", "canaryd replay: 80 lines, 17 events accepted, 0 bad, 0 late, 63 future\n");
    expect_in("err", "line 74: 64 events in a row more than max_future_skew after "
                     "2026-11-27T12:00:00.900Z; following the stream to 2026-11-27T13:00:06.300Z");
    expect_in("err", "  evaluations: 44, records: 2\n");
    expect_in("err", "  final verdict: PROMOTE, exit 0\n");
}

Test(replay, verdict_log_appended, .init = setup, .fini = teardown)
{
    write_file("cfg.json", CONFIG, "w");
    write_file("ev.jsonl", EVENTS, "w");
    const char *const *args = ARGS("replay", "--config", path_of("cfg.json"), "--verdict-log",
                                   path_of("verdicts.log"), path_of("ev.jsonl"));
    cr_assert_eq(run(NULL, args), 20);
    expect_file("out", "");
    expect_file("verdicts.log", WANT_JSON);
    cr_assert_eq(run(NULL, args), 20);
    char twice[sizeof(WANT_JSON) * 2];
    snprintf(twice, sizeof(twice), "%s%s", WANT_JSON, WANT_JSON);
    expect_file("verdicts.log", twice);

    /* --pretty with a log: human lines on stdout, JSON in the log */
    cr_assert_eq(run(NULL, ARGS("replay", "--pretty", "--config", path_of("cfg.json"),
                                "--verdict-log", path_of("v2.log"), path_of("ev.jsonl"))),
                 20);
    expect_file("out", WANT_PRETTY);
    expect_file("v2.log", WANT_JSON);

    /* an unwritable log is an I/O error */
    cr_assert_eq(run(NULL, ARGS("replay", "--config", path_of("cfg.json"), "--verdict-log",
                                path_of("no/such/dir.log"), path_of("ev.jsonl"))),
                 1);
    expect_in("err", "verdict log ");
    expect_in("err", "no/such/dir.log: No such file or directory\n");
}

/* ---- tail ---- */

#define REC(n)                                                                                     \
    "{\"time\":\"2026-11-27T12:00:0" #n ".000Z\",\"kind\":\"verdict\",\"verdict\":\"HEALTHY\","    \
    "\"rule\":null,\"dry_run\":false,\"release\":\"2.5.0\",\"reason\":\"r" #n "\"}\n"
#define PRETTY(n) "2026-11-27 12:00:0" #n "Z  HEALTHY   -               r" #n " (release 2.5.0)\n"

Test(tail, no_follow_last_lines, .init = setup, .fini = teardown)
{
    write_file("v.log", REC(1) "plain text line\n" REC(2) REC(3), "w");
    cr_assert_eq(run(NULL, ARGS("tail", "--no-follow", "-n", "2", path_of("v.log"))), 0);
    expect_file("out", PRETTY(2) PRETTY(3));
    cr_assert_eq(run(NULL, ARGS("tail", "--no-follow", path_of("v.log"))), 0);
    expect_file("out", PRETTY(1) "plain text line\n" PRETTY(2) PRETTY(3));
    cr_assert_eq(run(NULL, ARGS("tail", "--no-follow", "-n", "0", path_of("v.log"))), 0);
    expect_file("out", "");
    cr_assert_eq(run(NULL, ARGS("tail", "--no-follow", "-n", "all", path_of("v.log"))), 0);
    expect_file("out", PRETTY(1) "plain text line\n" PRETTY(2) PRETTY(3));
    cr_assert_eq(run(NULL, ARGS("tail", "--no-follow", path_of("missing.log"))), 1);
    expect_in("err", "missing.log: No such file or directory\n");
}

Test(tail, follows_appends_rotation_and_truncation, .init = setup, .fini = teardown)
{
    write_file("v.log", REC(1) REC(2), "w");
    pid_t pid = spawn_canaryd(NULL, "out", "err", ARGS("tail", "-n", "1", path_of("v.log")));
    cr_assert(wait_for("out", PRETTY(2), 10000));

    write_file("v.log", REC(3), "a");
    cr_assert(wait_for("out", PRETTY(3), 10000));

    /* rotation: the old file gets one more line after the rename */
    cr_assert_eq(rename(path_of("v.log"), path_of("v.log.1")), 0);
    write_file("v.log.1", REC(4), "a");
    write_file("v.log", REC(5), "w");
    cr_assert(wait_for("out", PRETTY(5), 10000));

    /* truncation in place */
    cr_assert_eq(truncate(path_of("v.log"), 0), 0);
    cr_assert(wait_for("err", "file truncated", 10000));
    write_file("v.log", REC(6), "a");
    cr_assert(wait_for("out", PRETTY(6), 10000));

    kill(pid, SIGTERM);
    cr_assert_eq(wait_exit(pid, 10000), 0);
    expect_file("out", PRETTY(2) PRETTY(3) PRETTY(4) PRETTY(5) PRETTY(6));
}

/* ---- usage ---- */

Test(usage, bad_usage_exits_2, .init = setup, .fini = teardown)
{
    write_file("cfg.json", CONFIG, "w");
    write_file("bad.json", "{\"rules\": 5}", "w");
    cr_assert_eq(run(NULL, ARGS("frobnicate")), 2);
    expect_in("err", "canaryd: unknown command \"frobnicate\"");
    expect_in("err", "usage: canaryd COMMAND");
    cr_assert_eq(run(NULL, ARGS("replay", "x.jsonl")), 2);
    expect_in("err", "--config FILE is required");
    cr_assert_eq(run(NULL, ARGS("replay", "--config", path_of("cfg.json"), "--speed", "0", "-")),
                 2);
    expect_in("err", "--speed: \"0\" is not accepted");
    cr_assert_eq(
        run(NULL, ARGS("replay", "--config", path_of("cfg.json"), "--max-line", "-5", "-")), 2);
    cr_assert_eq(run(NULL, ARGS("replay", "--config", path_of("cfg.json"), "--bogus", "-")), 2);
    cr_assert_eq(run(NULL, ARGS("replay", "--config", path_of("bad.json"), "-")), 2);
    expect_in("err", "rules");
    cr_assert_eq(run(NULL, ARGS("replay", "--config", path_of("cfg.json"), path_of("none"))), 1);
    expect_in("err", "none: No such file or directory\n");
    cr_assert_eq(run(NULL, ARGS("tail")), 2);
    cr_assert_eq(run(NULL, ARGS("tail", "-n", "x", "f")), 2);
    expect_in("err", "-n: \"x\" is not a count");
}

Test(usage, help_and_version)
{
    setup();
    cr_assert_eq(run(NULL, ARGS("help")), 0);
    expect_in("out", "0 PROMOTE, 10 HEALTHY, 11 ANALYZING");
    expect_in("out", "20 ROLLBACK");
    cr_assert_eq(run(NULL, ARGS("version")), 0);
    expect_file("out", "canaryd " CANARYD_VERSION "\n");
    teardown();
}
