/*
 * cli_report.c - `canaryd report`: one self-contained HTML file showing why
 * the agent decided what it decided (agent/report/report.c renders it).
 *
 * Two sources:
 *  - a recorded event stream (`EVENTS.jsonl|-`): run through replay's own
 *    event-time loop (cd_replay_main with hooks: the same clock, pipeline
 *    and engine as `canaryd replay`, so the report shows exactly replay's
 *    verdicts), sampling every rule's evidence after each evaluation into
 *    an unbounded history (agent/report/history.c) and keeping every record;
 *  - a verdict log (`--from-log FILE`): only the records exist, so each
 *    rule gets a point per record (the values the record carries) and the
 *    spans between its state changes; no summary.
 * No sink is opened in either case: a report never notifies anyone.
 *
 * Memory: 40 bytes per rule per second of event time plus the records
 * (~700 bytes each): 20 minutes of 6 rules is ~300 KB.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canaryd/config.h"
#include "canaryd/history.h"
#include "canaryd/timeutil.h"
#include "cli.h"
#include "../source/replay.h"
#include "../report/report.h"

enum { EXIT_OK = 0, EXIT_IO = 1, EXIT_USAGE = 2 };

typedef struct report {
    const char *config_path, *input, *from_log, *output, *max_line;
    cd_history_t *hist;
    cd_pipeline_stats_t stats;
    char verdict[16];
    uint64_t lines;
    bool have_stats;
} report_t;

static void usage(FILE *f)
{
    fprintf(
        f, "usage: canaryd report --config FILE [--output FILE] [--max-line BYTES] EVENTS.jsonl|-\n"
           "       canaryd report --config FILE [--output FILE] --from-log VERDICTS.jsonl\n"
           "  Writes one self-contained HTML file (inline SVG and CSS, opens offline): the\n"
           "  release's verdict timeline, a summary of the input, and per rule the canary's\n"
           "  and the stable fleet's signal at every evaluation against the threshold as the\n"
           "  rule computes it, pending and firing spans, verdicts with their reasons.\n"
           "  From events it runs the same engine as `canaryd replay` (no sink is called);\n"
           "  from a verdict log it draws the records only. --output defaults to\n"
           "  canaryd-report.html. The path is printed on stdout.\n"
           "  exit: 0 written, 1 I/O error, 2 usage or config error\n");
}

static int parse_args(report_t *r, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return EXIT_OK;
        } else if (strcmp(a, "--config") == 0 && v) {
            r->config_path = argv[++i];
        } else if ((strcmp(a, "--output") == 0 || strcmp(a, "-o") == 0) && v) {
            r->output = argv[++i];
        } else if (strcmp(a, "--from-log") == 0 && v) {
            r->from_log = argv[++i];
        } else if (strcmp(a, "--max-line") == 0 && v) {
            r->max_line = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "canaryd report: unknown option or missing value: \"%s\"\n", a);
            usage(stderr);
            return EXIT_USAGE;
        } else if (!r->input) {
            r->input = a;
        } else {
            fprintf(stderr, "canaryd report: more than one input given (\"%s\")\n", a);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    const char *why = !r->config_path ? "--config FILE is required"
                      : !r->input && !r->from_log
                          ? "no input given (EVENTS.jsonl, - or --from-log FILE)"
                      : r->input && r->from_log ? "give either EVENTS or --from-log, not both"
                                                : NULL;
    if (why) {
        fprintf(stderr, "canaryd report: %s\n", why);
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!r->output) r->output = "canaryd-report.html";
    return -1;
}

static int render(report_t *r, const cd_config_t *cfg, const char *source)
{
    char err[512];
    cd_report_input_t in = {.cfg = cfg,
                            .stats = r->have_stats ? &r->stats : NULL,
                            .source = source,
                            .final_verdict = r->verdict[0] ? r->verdict : "ANALYZING",
                            .lines = r->lines};
    long n = cd_report_write(r->output, r->hist, &in, err, sizeof err);
    if (n < 0) {
        fprintf(stderr, "canaryd report: %s\n", err);
        return EXIT_IO;
    }
    if (strcmp(r->output, "-") != 0) {
        printf("%s\n", r->output);
        fprintf(stderr, "canaryd report: wrote %s (%ld bytes, verdict %s)\n", r->output, n,
                in.final_verdict);
    }
    return EXIT_OK;
}

/* ---- from events: replay's loop with hooks ---- */

static void on_start(cd_pipeline_t *p, const cd_config_t *cfg, void *opaque)
{
    report_t *r = opaque;
    r->hist = cd_history_new(cfg->rules, cfg->nrules, 0, 0);
    if (r->hist) cd_pipeline_set_eval_hook(p, cd_history_sample, r->hist);
}

static void on_record(const cd_verdict_t *v, void *opaque)
{
    report_t *r = opaque;
    if (r->hist) cd_history_record(r->hist, v);
}

static int on_done(cd_pipeline_t *p, const cd_config_t *cfg, uint64_t lines, void *opaque)
{
    report_t *r = opaque;
    if (!r->hist) {
        fprintf(stderr, "canaryd report: out of memory\n");
        return EXIT_IO;
    }
    cd_pipeline_stats(p, &r->stats);
    r->have_stats = true;
    r->lines = lines;
    snprintf(r->verdict, sizeof r->verdict, "%s", cd_report_final_verdict(p));
    return render(r, cfg, strcmp(r->input, "-") == 0 ? "stdin" : r->input);
}

static int from_events(report_t *r)
{
    char *argv[8];
    int argc = 0;
    argv[argc++] = "report";
    argv[argc++] = "--config";
    argv[argc++] = (char *)r->config_path;
    if (r->max_line) {
        argv[argc++] = "--max-line";
        argv[argc++] = (char *)r->max_line;
    }
    argv[argc++] = (char *)r->input;
    argv[argc] = NULL;
    cd_replay_hooks_t hooks = {on_start, on_record, on_done, r};
    int rc = cd_replay_main(argc, argv, &hooks);
    /* replay's verdict statuses mean "the report was written" here */
    if (rc == 0 || rc == 10 || rc == 11 || rc == 12 || rc == 20)
        rc = r->verdict[0] ? EXIT_OK : EXIT_IO;
    return rc;
}

/* ---- from a verdict log ---- */

static int rule_index(const cd_config_t *cfg, const char *name)
{
    for (int i = 0; name && i < cfg->nrules; i++)
        if (strcmp(cfg->rules[i].name, name) == 0) return i;
    return -1;
}

static int index_of(const char *s, const char *(*name)(int), int n)
{
    for (int i = 0; s && i < n; i++)
        if (strcmp(name(i), s) == 0) return i;
    return -1;
}

static const char *verdict_name_i(int i)
{
    return cd_verdict_kind_name((cd_verdict_kind_t)i);
}

static const char *state_name_i(int i)
{
    return cd_rule_state_name((cd_rule_state_t)i);
}

static float obs_value(json_t *obs, const char *cohort, uint32_t *n)
{
    json_t *o = json_object_get(obs, cohort);
    json_t *s = json_object_get(o, "samples");
    *n = json_is_integer(s) && json_integer_value(s) > 0 ? (uint32_t)json_integer_value(s) : 0;
    json_t *v = json_object_get(o, "value");
    return json_is_number(v) ? (float)json_number_value(v) : NAN;
}

/* One record of the log into the history; false when it is not a record. */
static bool take_record(report_t *r, const cd_config_t *cfg, json_t *j, int state[])
{
    const char *time = json_string_value(json_object_get(j, "time"));
    const char *kind = json_string_value(json_object_get(j, "kind"));
    int64_t t;
    if (!time || !kind || !cd_time_parse_rfc3339(time, strlen(time), &t)) return false;
    cd_verdict_t v = {.time_ms = t};
    const char *reason = json_string_value(json_object_get(j, "reason"));
    snprintf(v.reason, sizeof v.reason, "%s", reason ? reason : "");
    const char *rule = json_string_value(json_object_get(j, "rule"));
    int ri = rule_index(cfg, rule);
    v.rule = ri >= 0 ? cfg->rules[ri].name : NULL;
    const char *release = json_string_value(json_object_get(j, "release"));
    if (release && *release) cd_history_set_release(r->hist, release);
    if (strcmp(kind, "state") == 0) {
        int from = index_of(json_string_value(json_object_get(j, "from")), state_name_i, 4);
        int to = index_of(json_string_value(json_object_get(j, "to")), state_name_i, 4);
        if (ri < 0 || from < 0 || to < 0) return false;
        v.record = CD_RECORD_STATE;
        v.from = (cd_rule_state_t)from;
        v.to = (cd_rule_state_t)to;
        state[ri] = to;
    } else if (strcmp(kind, "verdict") == 0) {
        int vk = index_of(json_string_value(json_object_get(j, "verdict")), verdict_name_i, 5);
        if (vk < 0) return false;
        v.record = CD_RECORD_VERDICT;
        v.verdict = (cd_verdict_kind_t)vk;
        if (ri < 0 || vk == CD_VERDICT_ROLLBACK) cd_history_set_verdict(r->hist, t, v.verdict);
        if (ri < 0 || vk == CD_VERDICT_ROLLBACK)
            snprintf(r->verdict, sizeof r->verdict, "%s", cd_verdict_kind_name(v.verdict));
    } else {
        return false;
    }
    cd_history_record(r->hist, &v);
    if (ri >= 0) {
        json_t *obs = json_object_get(j, "observed"), *th = json_object_get(j, "threshold");
        cd_history_point_t pt = {
            .t_ms = t, .band = NAN, .compared = NAN, .state = (uint8_t)state[ri]};
        pt.canary = obs_value(obs, "canary", &pt.canary_n);
        pt.stable = obs_value(obs, "stable", &pt.stable_n);
        pt.threshold = json_is_number(th) ? (float)json_number_value(th) : NAN;
        if (reason && strncmp(reason, "insufficient data", 17) == 0) pt.flags |= CD_HP_INSUFFICIENT;
        cd_history_add_point(r->hist, ri, &pt);
    }
    return true;
}

static int from_log(report_t *r, const cd_config_t *cfg)
{
    FILE *f = fopen(r->from_log, "r");
    if (!f) {
        fprintf(stderr, "canaryd report: %s: %s\n", r->from_log, strerror(errno));
        return EXIT_IO;
    }
    r->hist = cd_history_new(cfg->rules, cfg->nrules, 0, 0);
    if (!r->hist) {
        fclose(f);
        fprintf(stderr, "canaryd report: out of memory\n");
        return EXIT_IO;
    }
    int state[CD_MAX_RULES] = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t skipped = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        r->lines++;
        json_t *j = json_loadb(line, (size_t)n, 0, NULL);
        if (!json_is_object(j) || !take_record(r, cfg, j, state)) skipped++;
        json_decref(j);
    }
    bool err = ferror(f);
    free(line);
    fclose(f);
    if (err) {
        fprintf(stderr, "canaryd report: reading %s: %s\n", r->from_log, strerror(errno));
        return EXIT_IO;
    }
    if (skipped)
        fprintf(stderr,
                "canaryd report: %llu of %llu lines of %s are not verdict records "
                "of this config's rules; skipped\n",
                (unsigned long long)skipped, (unsigned long long)r->lines, r->from_log);
    return render(r, cfg, r->from_log);
}

int cd_cli_report(int argc, char **argv)
{
    report_t r = {0};
    int rc = parse_args(&r, argc, argv);
    if (rc >= 0) return rc;
    if (r.input) {
        rc = from_events(&r);
    } else {
        cd_diag_t *diag = malloc(sizeof *diag);
        if (!diag) return EXIT_IO;
        cd_diag_init(diag);
        cd_config_t *cfg = cd_config_load(r.config_path, diag);
        if (!cfg) {
            fprintf(stderr, "canaryd report: config %s:\n%s", r.config_path, diag->text);
            rc = EXIT_USAGE;
        } else {
            rc = from_log(&r, cfg);
        }
        cd_config_free(cfg);
        free(diag);
    }
    cd_history_destroy(r.hist);
    return rc;
}
