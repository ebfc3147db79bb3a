/*
 * test_scenarios.c - the data-driven end-to-end suite: every folder under
 * tests/data/scenarios/ is one case, discovered at run time (a new case is a
 * new folder, not new code):
 *   scenario.json   generator settings (what `canaryd generate
 *                   --scenario-file` reads) plus "description" and "expect";
 *   expected.jsonl  the records replay must print, projected to the keys
 *                   time, kind, verdict, rule, from, to.
 * Each case runs `canaryd generate --scenario-file F [fault] | canaryd replay
 * --config C -` through the built binary ($CANARYD_BIN) three
 * times: plain, with --garbage 0.02 and with --disorder 3s. Every run must
 * print exactly the expected projection (bad lines are rejected and events
 * out of order by less than allowed_lateness are counted exactly, so neither
 * fault may change a verdict). The plain run also checks "expect":
 *   final            verdict at the end; the exit code must match it
 *   never            verdicts that must not appear
 *   rollback_rule    the rule of the ROLLBACK record
 *   rollback_between [min, max] durations after onset for the ROLLBACK record
 *   promote_between  [min, max] durations after start for the PROMOTE record
 *   alert_rules      exactly the rules that raise ALERT records
 *   reason_contains  {"VERDICT": "text", ...}: the last record of each named
 *                    verdict exists and its reason contains the text
 * C is config/sop.json, or the scenario's "config" key (a path from the
 * source root, e.g. tests/data/config/count_only.json).
 * and the garbage run checks that the summary counts every kind of bad line.
 *
 * CANARYD_SCENARIO_REGEN=1 writes expected.jsonl from the plain run instead
 * of comparing (then read every record and check it follows from the
 * generator's parameters and config/sop.json before keeping it).
 * Processes: posix_spawn, a pipe between the two, outputs in temp files.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "canaryd/timeutil.h"
#include "replay_pipe.h"

#define SCEN_DIR CANARYD_SOURCE_DIR "/tests/data/scenarios"
#define SOP CANARYD_SOURCE_DIR "/config/sop.json"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* generate (argv from scenario file + extra) | replay; collects the outputs. */
static void run_case(const char *scen_file, const char *config, const char *fault,
                     const char *fault_val, run_out_t *r)
{
    const char *args[] = {"--scenario-file", scen_file, fault, fault_val, NULL};
    run_pipe(args, config, r);
}

/* The projection of one record, as a compact JSON line. */
static char *project(const char *line, size_t len, const char *what)
{
    static const char *const keys[] = {"time", "kind", "verdict", "rule", "from", "to"};
    json_error_t e;
    json_t *o = json_loadb(line, len, 0, &e);
    cr_assert_not_null(o, "%s: not a JSON record: %.*s", what, (int)len, line);
    json_t *p = json_object();
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        json_t *v = json_object_get(o, keys[i]);
        if (v) json_object_set(p, keys[i], v);
    }
    char *s = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(p);
    json_decref(o);
    return s;
}

/* Projects every non-empty line of text; returns the count. */
static size_t project_all(const char *text, char ***lines, const char *what)
{
    size_t n = 0, cap = 0;
    *lines = NULL;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > 0) {
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                *lines = realloc(*lines, cap * sizeof **lines);
            }
            (*lines)[n++] = project(p, len, what);
        }
        p += len + (nl ? 1 : 0);
    }
    return n;
}

static void free_lines(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

static int64_t dur(json_t *v, const char *what)
{
    int64_t ms;
    cr_assert(json_is_string(v) && cd_duration_parse(json_string_value(v), &ms),
              "%s is not a duration", what);
    return ms;
}

static int exit_for(const char *verdict)
{
    static const char *const names[] = {"PROMOTE", "HEALTHY", "ANALYZING", "ALERT", "ROLLBACK"};
    static const int codes[] = {0, 10, 11, 12, 20};
    for (int i = 0; i < 5; i++)
        if (strcmp(verdict, names[i]) == 0) return codes[i];
    cr_assert_fail("\"%s\" is not a final verdict", verdict);
    return -1;
}

/* Checks scenario.json's "expect" against the plain run's records. */
static void check_expect(const char *name, json_t *scen, const run_out_t *r)
{
    json_t *ex = json_object_get(scen, "expect");
    cr_assert(json_is_object(ex), "%s: scenario.json has no \"expect\" object", name);
    int64_t start = 1795780800000LL, onset = 4 * 60000LL;
    json_t *v;
    if ((v = json_object_get(scen, "start")))
        cr_assert(
            cd_time_parse_rfc3339(json_string_value(v), strlen(json_string_value(v)), &start));
    if ((v = json_object_get(scen, "onset"))) onset = dur(v, "onset");

    const char *final = json_string_value(json_object_get(ex, "final"));
    cr_assert_not_null(final, "%s: expect.final is required", name);
    cr_assert_eq(r->replay_status, exit_for(final), "%s: exit %d, expected %d (%s); summary:\n%s",
                 name, r->replay_status, exit_for(final), final, r->err);

    json_t *never = json_object_get(ex, "never"), *alert_rules = json_object_get(ex, "alert_rules");
    const char *rb_rule = json_string_value(json_object_get(ex, "rollback_rule"));
    json_t *rb_between = json_object_get(ex, "rollback_between");
    json_t *pr_between = json_object_get(ex, "promote_between");
    int rollbacks = 0, promotes = 0;
    json_t *alerted = json_object();
    json_t *reason_want = json_object_get(ex, "reason_contains");
    json_t *last_reason = json_object(); /* verdict -> reason of its last record */
    for (const char *p = r->out; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        json_t *o = json_loadb(p, len, 0, NULL);
        p += len + (nl ? 1 : 0);
        if (!o) continue;
        const char *kind = json_string_value(json_object_get(o, "kind"));
        const char *verdict = json_string_value(json_object_get(o, "verdict"));
        const char *rule = json_string_value(json_object_get(o, "rule"));
        const char *ts = json_string_value(json_object_get(o, "time"));
        int64_t t = 0;
        if (!kind || strcmp(kind, "verdict") != 0 || !verdict) {
            json_decref(o);
            continue;
        }
        cr_assert(ts && cd_time_parse_rfc3339(ts, strlen(ts), &t));
        size_t i;
        json_t *nv;
        json_array_foreach(never, i, nv)
        {
            cr_assert_str_neq(verdict, json_string_value(nv), "%s: %s at %s is in expect.never",
                              name, verdict, ts);
        }
        if (strcmp(verdict, "ROLLBACK") == 0) {
            rollbacks++;
            if (rb_rule)
                cr_assert_str_eq(rule ? rule : "(none)", rb_rule, "%s: ROLLBACK by %s", name,
                                 rule ? rule : "(none)");
            if (rb_between) {
                int64_t lo = dur(json_array_get(rb_between, 0), "rollback_between[0]");
                int64_t hi = dur(json_array_get(rb_between, 1), "rollback_between[1]");
                cr_assert(t - start - onset >= lo && t - start - onset <= hi,
                          "%s: ROLLBACK at %s is %lld ms after onset, outside the expected range",
                          name, ts, (long long)(t - start - onset));
            }
        }
        if (strcmp(verdict, "PROMOTE") == 0) {
            promotes++;
            if (pr_between) {
                int64_t lo = dur(json_array_get(pr_between, 0), "promote_between[0]");
                int64_t hi = dur(json_array_get(pr_between, 1), "promote_between[1]");
                cr_assert(t - start >= lo && t - start <= hi,
                          "%s: PROMOTE at %s is outside the expected range", name, ts);
            }
        }
        if (strcmp(verdict, "ALERT") == 0 && rule) json_object_set_new(alerted, rule, json_true());
        json_t *reason = json_object_get(o, "reason");
        if (reason) json_object_set(last_reason, verdict, reason);
        json_decref(o);
    }
    const char *rv;
    json_t *rtext;
    json_object_foreach(reason_want, rv, rtext)
    {
        const char *got = json_string_value(json_object_get(last_reason, rv));
        cr_assert_not_null(got, "%s: no %s record (expect.reason_contains)", name, rv);
        cr_assert(strstr(got, json_string_value(rtext)) != NULL,
                  "%s: the last %s reason lacks \"%s\": %s", name, rv, json_string_value(rtext),
                  got);
    }
    json_decref(last_reason);
    if (rb_rule || rb_between)
        cr_assert_eq(rollbacks, 1, "%s: %d ROLLBACK records, expected 1", name, rollbacks);
    if (pr_between) cr_assert_eq(promotes, 1, "%s: %d PROMOTE records, expected 1", name, promotes);
    if (alert_rules) {
        size_t i;
        json_t *ar;
        cr_assert_eq(json_object_size(alerted), json_array_size(alert_rules),
                     "%s: %zu rules raised ALERTs, expected %zu", name, json_object_size(alerted),
                     json_array_size(alert_rules));
        json_array_foreach(alert_rules, i, ar)
        {
            cr_assert_not_null(json_object_get(alerted, json_string_value(ar)),
                               "%s: no ALERT from %s", name, json_string_value(ar));
        }
    }
    json_decref(alerted);
}

static void compare(const char *name, const char *variant, char **want, size_t nwant,
                    const run_out_t *r)
{
    char **got;
    size_t ngot = project_all(r->out, &got, name);
    cr_assert_eq(r->gen_status, 0, "%s (%s): generate exit %d: %s", name, variant, r->gen_status,
                 r->gen_err);
    for (size_t i = 0; i < nwant || i < ngot; i++) {
        cr_assert(i < nwant && i < ngot && strcmp(want[i], got[i]) == 0,
                  "%s (%s run): record %zu differs\n  expected: %s\n  got:      %s\n"
                  "(%zu records expected, %zu printed; replay exit %d)\n%s",
                  name, variant, i + 1, i < nwant ? want[i] : "(end)", i < ngot ? got[i] : "(end)",
                  nwant, ngot, r->replay_status, r->err);
    }
    free_lines(got, ngot);
}

/* ---- discovery ---- */

typedef struct scen_param {
    char *name;
} scen_param_t;

static void free_params(struct criterion_test_params *crp)
{
    scen_param_t *p = crp->params;
    for (size_t i = 0; i < crp->length; i++)
        cr_free(p[i].name);
    cr_free(crp->params);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted folder names (malloc'd); returns the count. */
static size_t list_folders(char ***out)
{
    DIR *d = opendir(SCEN_DIR);
    size_t n = 0;
    *out = NULL;
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[1024];
        struct stat st;
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s/scenario.json", SCEN_DIR, e->d_name);
        if (stat(path, &st) != 0) continue;
        *out = realloc(*out, (n + 1) * sizeof **out);
        (*out)[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(*out, n, sizeof **out, name_cmp);
    return n;
}

ParameterizedTestParameters(scenarios, run)
{
    char **names;
    size_t n = list_folders(&names);
    scen_param_t *params = cr_malloc(sizeof(scen_param_t) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        params[i].name = cr_malloc(strlen(names[i]) + 1);
        strcpy(params[i].name, names[i]);
        free(names[i]);
    }
    free(names);
    return cr_make_param_array(scen_param_t, params, n, free_params);
}

ParameterizedTest(scen_param_t *p, scenarios, run, .timeout = 300)
{
    char scen_path[1024], exp_path[1024];
    snprintf(scen_path, sizeof scen_path, "%s/%s/scenario.json", SCEN_DIR, p->name);
    snprintf(exp_path, sizeof exp_path, "%s/%s/expected.jsonl", SCEN_DIR, p->name);
    json_error_t e;
    json_t *scen = json_load_file(scen_path, 0, &e);
    cr_assert_not_null(scen, "%s: %s (line %d)", scen_path, e.text, e.line);
    char config[1024];
    const char *cfg_rel = json_string_value(json_object_get(scen, "config"));
    if (cfg_rel)
        snprintf(config, sizeof config, "%s/%s", CANARYD_SOURCE_DIR, cfg_rel);
    else
        snprintf(config, sizeof config, "%s", SOP);

    run_out_t plain;
    run_case(scen_path, config, NULL, NULL, &plain);
    cr_assert_eq(plain.gen_status, 0, "%s: generate failed: %s", p->name, plain.gen_err);
    const char *regen = getenv("CANARYD_SCENARIO_REGEN");
    if (regen && strcmp(regen, "1") == 0) {
        char **got;
        size_t n = project_all(plain.out, &got, p->name);
        FILE *f = fopen(exp_path, "w");
        cr_assert_not_null(f);
        for (size_t i = 0; i < n; i++)
            fprintf(f, "%s\n", got[i]);
        fclose(f);
        free_lines(got, n);
    }
    char *exp_text = slurp(exp_path);
    char **want;
    size_t nwant = project_all(exp_text, &want, exp_path);
    cr_assert(nwant > 0, "%s: expected.jsonl is empty", p->name);

    compare(p->name, "plain", want, nwant, &plain);
    int plain_status = plain.replay_status;
    check_expect(p->name, scen, &plain);
    run_free(&plain);

    run_out_t garbage;
    run_case(scen_path, config, "--garbage", "0.02", &garbage);
    compare(p->name, "--garbage 0.02", want, nwant, &garbage);
    cr_assert_eq(
        garbage.replay_status,
        exit_for(json_string_value(json_object_get(json_object_get(scen, "expect"), "final"))));
    check_bad_counts(p->name, garbage.err);
    run_free(&garbage);

    run_out_t disorder;
    run_case(scen_path, config, "--disorder", "3s", &disorder);
    compare(p->name, "--disorder 3s", want, nwant, &disorder);
    cr_assert_eq(disorder.replay_status, plain_status, "%s: exit %d with --disorder, %d plain",
                 p->name, disorder.replay_status, plain_status);
    cr_assert_eq(summary_count(disorder.err, "\n  late "), 0,
                 "%s: events dropped as late in the disorder run:\n%s", p->name, disorder.err);
    cr_assert_eq(summary_count(disorder.err, "\n  after evaluation "), 0,
                 "%s: events arrived after their window was evaluated:\n%s", p->name, disorder.err);
    run_free(&disorder);

    free_lines(want, nwant);
    free(exp_text);
    json_decref(scen);
}

Test(scenarios, every_required_case_has_a_folder)
{
    static const char *const required[] = {
        "audit-failure", "error-blip",         "error-regression",   "handler-flatline",
        "healthy",       "latency-regression", "login-spike-canary", "login-spike-fleet",
        "payment-96",    "payment-drop",       "payment-sparse",     "canary-crash",
        "canary-outage", "payment-outage",     "login-outage",       "fleet-drop",
        "canary-absent", "count-only-no-canary"};
    char **names;
    size_t n = list_folders(&names);
    for (size_t i = 0; i < sizeof required / sizeof *required; i++) {
        bool found = false;
        for (size_t j = 0; j < n; j++)
            found = found || strcmp(names[j], required[i]) == 0;
        cr_assert(found, "no folder %s/%s", SCEN_DIR, required[i]);
    }
    for (size_t j = 0; j < n; j++)
        free(names[j]);
    free(names);
}

/* Runs bin with argv, stdin from in_fd (or /dev/null when -1); returns the
 * exit code and the outputs (malloc'd). */
static int spawn_collect(char *const argv[], int in_fd, char **out, char **err)
{
    int out_fd = tmpfile_fd(), err_fd = tmpfile_fd();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (in_fd >= 0) posix_spawn_file_actions_adddup2(&fa, in_fd, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO);
    pid_t pid;
    int st;
    cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    posix_spawn_file_actions_destroy(&fa);
    *out = slurp_fd(out_fd, NULL);
    *err = slurp_fd(err_fd, NULL);
    close(out_fd);
    close(err_fd);
    return exit_of(st);
}

/* A stream whose first line carries a bogus time (far in the future, or far
 * in the past) gives exactly the records of the same stream without it:
 * replay judges the first event against the median of the first 64
 * (agent/source/replay.c, look_ahead) and counts it as future or late. Before,
 * a 2099 first line made every real event late (no verdict at all). */
Test(scenarios, bogus_first_timestamp_changes_no_record, .timeout = 120)
{
    const char *bin = getenv("CANARYD_BIN");
    cr_assert_not_null(bin);
    char scen[1024];
    snprintf(scen, sizeof scen, "%s/error-regression/scenario.json", SCEN_DIR);
    char *gen_argv[] = {(char *)bin, "generate", "--scenario-file", scen, NULL};
    char *events, *gerr;
    cr_assert_eq(spawn_collect(gen_argv, -1, &events, &gerr), 0, "%s", gerr);
    free(gerr);

    static const char *const heads[3] = {
        "",
        "{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":\"2099-01-01T00:00:00Z\","
        "\"cohort\":\"stable\",\"version\":\"2.4.0\"}\n",
        "{\"event_type\":\"ERROR_OCCURRED\",\"timestamp\":\"2001-01-01T00:00:00Z\","
        "\"cohort\":\"canary\",\"version\":\"2.5.0\"}\n"};
    char *out[3], *err[3];
    int rc[3];
    for (int i = 0; i < 3; i++) {
        int fd = tmpfile_fd();
        size_t hl = strlen(heads[i]), el = strlen(events);
        cr_assert_eq(write(fd, heads[i], hl), (ssize_t)hl);
        cr_assert_eq(write(fd, events, el), (ssize_t)el);
        cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
        char *rep_argv[] = {(char *)bin, "replay", "--config", SOP, "-", NULL};
        rc[i] = spawn_collect(rep_argv, fd, &out[i], &err[i]);
        close(fd);
    }
    cr_assert_eq(rc[0], 20, "plain run: exit %d\n%s", rc[0], err[0]); /* ROLLBACK */
    cr_assert(strstr(out[0], "\"verdict\":\"ROLLBACK\"") != NULL);
    for (int i = 1; i < 3; i++) {
        cr_assert_eq(rc[i], rc[0], "variant %d: exit %d\n%s", i, rc[i], err[i]);
        cr_assert_str_eq(out[i], out[0], "variant %d: records differ", i);
    }
    cr_assert_eq(summary_count(err[0], "\n  future "), 0);
    cr_assert_eq(summary_count(err[0], "\n  late "), 0);
    cr_assert_eq(summary_count(err[1], "\n  future "), 1, "%s", err[1]);
    cr_assert_eq(summary_count(err[1], "\n  late "), 0, "%s", err[1]);
    cr_assert_eq(summary_count(err[2], "\n  late "), 1, "%s", err[2]);
    cr_assert_eq(summary_count(err[2], "\n  future "), 0, "%s", err[2]);
    for (int i = 0; i < 3; i++) {
        free(out[i]);
        free(err[i]);
    }
    free(events);
}
