/*
 * replay.c - `canaryd replay`: runs a recorded event stream (JSONL) through
 * the pipeline in event time and writes the verdict records.
 *
 * Event-time clock: which events move the stream's time, which are dropped
 * as "future" or "late", the look-ahead that anchors a first event, and
 * following the stream after a jump are event_clock.c's, shared with
 * `canaryd baseline`. Replay's evaluation clock trails the highest
 * accepted event time (max_ts) by allowed_lateness, so events up to that
 * much out of order still land before any evaluation reads their second,
 * and the verdicts are the same on every run. The look-ahead's lines are
 * held in memory and counted once, when taken here. The clock is advanced
 * before the event is added (the window only accepts events up to
 * allowed_lateness after its clock); this evaluates exactly what advancing
 * after the add would, since every boundary evaluated is <= clock <= the
 * event's time and a window ending at b excludes b itself. At the end of
 * input the clock goes to max_ts, so the last boundaries are evaluated too.
 *
 * Output: every record goes to the sink dispatcher (sinks/dispatcher.c),
 * which renders it once as JSON. --verdict-log and stdout are log sinks
 * ("--verdict-log": the JSON, fsync'ed; "stdout": JSON when there is no
 * log, or the human line with --pretty, also when a log is written), next
 * to the sinks of the config's "sinks" section. Replay is a batch: submit
 * waits for room in the queue rather than dropping a record, and at the
 * end the dispatcher drains, at most sinks.drain_timeout (default 10 s),
 * before the summary. A failed write to --verdict-log or stdout is an I/O
 * error (exit 1); failures of configured sinks are counted in the summary
 * and logged, and do not change the exit status (it reports the verdict).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../cli/cli.h"
#include "../cli/outputs.h"
#include "canaryd/clock.h"
#include "canaryd/config.h"
#include "canaryd/dispatcher.h"
#include "canaryd/engine.h"
#include "canaryd/log.h"
#include "canaryd/pipeline.h"
#include "canaryd/timeutil.h"
#include "event_clock.h"
#include "linereader.h"
#include "replay.h"

/* Exit statuses (also in `canaryd help`). */
enum {
    EXIT_PROMOTE = 0,
    EXIT_IO = 1,
    EXIT_USAGE = 2,
    EXIT_HEALTHY = 10,
    EXIT_ANALYZING = 11,
    EXIT_ALERT = 12,
    EXIT_ROLLBACK = 20,
    EXIT_INTERRUPTED = 130,
};

typedef struct replay {
    const char *config_path, *input, *log_path;
    bool pretty, colour;
    double speed;
    size_t max_line;

    cd_outputs_t out; /* the config's sinks, then --verdict-log and/or stdout */
    bool to_stdout;
    bool io_failed;
    bool progress_shown;
    const cd_replay_hooks_t *hooks; /* canaryd report: records to it, no outputs */
} replay_t;

static volatile sig_atomic_t stop, hup;

/* SIGHUP: the log sinks reopen their files (logrotate); the flag is picked
 * up by the read loop, which asks the dispatcher thread to do it. */
static void on_hup(int sig)
{
    (void)sig;
    hup = 1;
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void clear_progress(replay_t *r)
{
    if (r->progress_shown) fputs("\r\033[K", stderr);
    r->progress_shown = false;
}

static void on_record(const cd_verdict_t *v, void *opaque)
{
    replay_t *r = opaque;
    if (r->hooks) {
        r->hooks->record(v, r->hooks->opaque);
        return;
    }
    if (r->to_stdout) clear_progress(r);
    /* blocking mode: false only when the record could not be rendered,
     * which bounded reason/todo make impossible; never drop one silently */
    if (!cd_dispatcher_submit(r->out.disp, v)) r->io_failed = true;
    if (cd_outputs_builtin_failed(&r->out)) r->io_failed = true;
}


static void usage(FILE *f)
{
    fprintf(f, "usage: canaryd replay --config FILE [--verdict-log FILE] [--pretty] [--speed N]\n"
               "                      [--max-line BYTES] EVENTS.jsonl|-\n"
               "  Replays recorded events in event time and writes one verdict record per line:\n"
               "  JSON on stdout, or into --verdict-log (appended, fsync'ed); --pretty prints the\n"
               "  human format on stdout (also when a verdict log is written). --speed N paces\n"
               "  the replay at N x event time. Lines over --max-line bytes (default 65536) are\n"
               "  skipped and counted. A summary goes to stderr.\n"
               "  exit: 0 PROMOTE, 10 HEALTHY, 11 ANALYZING, 12 ALERT (a rule firing at the end,\n"
               "        not promoted), 20 ROLLBACK, 1 I/O error, 2 usage or config error,\n"
               "        130 interrupted\n");
}

static int parse_args(replay_t *r, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--pretty") == 0) {
            r->pretty = true;
        } else if (strcmp(a, "--config") == 0 && v) {
            r->config_path = argv[++i];
        } else if (strcmp(a, "--verdict-log") == 0 && v) {
            r->log_path = argv[++i];
        } else if (strcmp(a, "--speed") == 0 && v) {
            i++;
            r->speed = strtod(v, &end);
            if (end == v || *end || !isfinite(r->speed) || r->speed <= 0) {
                fprintf(stderr,
                        "canaryd replay: --speed: \"%s\" is not accepted; accepted: a "
                        "number > 0 (60 = one minute of events per second)\n",
                        v);
                return EXIT_USAGE;
            }
        } else if (strcmp(a, "--max-line") == 0 && v) {
            i++;
            errno = 0;
            unsigned long long n = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-' || n == 0 || n > (1ull << 30)) {
                fprintf(stderr,
                        "canaryd replay: --max-line: \"%s\" is not accepted; accepted: "
                        "bytes, 1..1073741824\n",
                        v);
                return EXIT_USAGE;
            }
            r->max_line = (size_t)n;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "canaryd replay: unknown option or missing value: \"%s\"\n", a);
            usage(stderr);
            return EXIT_USAGE;
        } else if (!r->input) {
            r->input = a;
        } else {
            fprintf(stderr, "canaryd replay: more than one input given (\"%s\")\n", a);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!r->config_path || !r->input) {
        fprintf(stderr, "canaryd replay: %s\n",
                !r->config_path ? "--config FILE is required" : "no input given (a file or -)");
        usage(stderr);
        return EXIT_USAGE;
    }
    return -1; /* go on */
}

static void sleep_until(int64_t target_ms)
{
    int64_t now = cd_mono_ms();
    while (!stop && now < target_ms) {
        int64_t d = target_ms - now;
        struct timespec ts = {d / 1000, (d % 1000) * 1000000L};
        nanosleep(&ts, NULL); /* a signal cuts it short; stop is then checked */
        now = cd_mono_ms();
    }
}

static void progress(replay_t *r, const cd_linereader_t *lr, int64_t clock, bool have_clock)
{
    char t[40] = "-";
    if (have_clock) cd_time_format(clock, t, sizeof(t));
    fprintf(stderr, "\r\033[Kreplay: %llu lines, %.1f MB, event time %s",
            (unsigned long long)cd_linereader_lineno(lr), cd_linereader_bytes(lr) / 1e6, t);
    r->progress_shown = true;
}

/* The summary on stderr: what came in, what was counted where, the result. */
static void summary(const cd_pipeline_t *p, uint64_t lines, FILE *f)
{
    cd_pipeline_stats_t s;
    char t1[40], t2[40];
    cd_pipeline_stats(p, &s);

    fprintf(f,
            "canaryd replay: %llu lines, %llu events accepted, %llu bad, %llu late, "
            "%llu future",
            (unsigned long long)lines, (unsigned long long)s.accepted,
            (unsigned long long)s.bad_total, (unsigned long long)s.late,
            (unsigned long long)s.future);
    if (cd_pipeline_service_configured(p))
        fprintf(f, ", %llu other services", (unsigned long long)(s.other_service + s.no_service));
    fputc('\n', f);
    fprintf(f, "  %-24s %10s %10s\n", "event type", "canary", "stable");
    for (int t = 0; t <= cd_pipeline_ntypes(p); t++) {
        int row = t < cd_pipeline_ntypes(p) ? t : CD_PIPELINE_OTHER;
        const char *name = row == CD_PIPELINE_OTHER ? "(other)" : cd_pipeline_type_name(p, t);
        fprintf(f, "  %-24s %10llu %10llu\n", name,
                (unsigned long long)s.by_type[row][CD_COHORT_CANARY],
                (unsigned long long)s.by_type[row][CD_COHORT_STABLE]);
    }
    fprintf(f, "  bad input: %llu\n", (unsigned long long)s.bad_total);
    for (int r = 1; r < CD_BAD__COUNT; r++)
        if (s.bad[r])
            fprintf(f, "    %-22s %10llu\n", cd_bad_reason_name((cd_bad_reason_t)r),
                    (unsigned long long)s.bad[r]);
    fprintf(f, "  bad numeric fields: %llu\n", (unsigned long long)s.bad_numeric);
    fprintf(f, "  late (older than the window ring, dropped): %llu\n", (unsigned long long)s.late);
    fprintf(f, "  future (beyond max_future_skew, dropped): %llu\n", (unsigned long long)s.future);
    fprintf(f,
            "  after evaluation (beyond allowed_lateness, counted in later windows only): "
            "%llu\n",
            (unsigned long long)s.after_eval);
    if (s.accepted)
        fprintf(f, "  event time: %s .. %s\n", cd_time_format(s.first_ms, t1, sizeof(t1)),
                cd_time_format(s.last_ms, t2, sizeof(t2)));
    else
        fprintf(f, "  event time: none\n");
    fprintf(f, "  evaluations: %llu, records: %llu\n", (unsigned long long)s.evaluations,
            (unsigned long long)s.records);
    const char *rel = cd_pipeline_release(p);
    fprintf(f, "  release: %s\n", *rel ? rel : "(unknown)");
    cd_pipeline_summary_service(p, &s, f);
}

/* Final verdict line and exit status. An ALERT is a firing rule at the end
 * that neither rolled back nor was outweighed by a PROMOTE. */
static int exit_status(const cd_pipeline_t *p, FILE *f, bool show_exit)
{
    const char *names[8];
    cd_verdict_kind_t v = cd_pipeline_verdict(p);
    int nf = cd_pipeline_firing_rules(p, names, 8);
    int rc;

    if (v == CD_VERDICT_ROLLBACK)
        rc = EXIT_ROLLBACK;
    else if (v == CD_VERDICT_PROMOTE)
        rc = EXIT_PROMOTE;
    else if (nf > 0)
        rc = EXIT_ALERT;
    else if (v == CD_VERDICT_HEALTHY)
        rc = EXIT_HEALTHY;
    else
        rc = EXIT_ANALYZING;
    fprintf(f, "  final verdict: %s", rc == EXIT_ALERT ? "ALERT" : cd_verdict_kind_name(v));
    if (nf > 0) {
        fprintf(f, " (firing:");
        for (int i = 0; i < nf && i < 8; i++)
            fprintf(f, " %s", names[i]);
        fprintf(f, "%s)", nf > 8 ? " ..." : "");
    }
    if (show_exit) fprintf(f, ", exit %d", rc); /* canaryd report exits 0 when written */
    fputc('\n', f);
    return rc;
}

/* Event-time clock state of run(): the shared clock (event_clock.h) and
 * where replay's evaluations stand. */
typedef struct rclock {
    cd_event_clock_t ec;
    int64_t clock, wall0, ev0;
} rclock_t;

/* One input line through the pipeline (see the top of the file). */
static void take(replay_t *r, cd_pipeline_t *p, const cd_config_t *cfg, rclock_t *k,
                 cd_lr_status_t st, const char *line, size_t len, uint64_t lineno)
{
    cd_event_t ev;
    bool first = !k->ec.have;
    if (cd_event_clock_take_line(&k->ec, p, st, line, len, lineno, &ev) != CD_EC_TAKE) return;
    k->clock = k->ec.max_ts - cfg->allowed_lateness_ms;
    if (r->speed > 0) {
        if (first) {
            k->wall0 = cd_mono_ms();
            k->ev0 = k->clock;
        }
        sleep_until(k->wall0 + (int64_t)((double)(k->clock - k->ev0) / r->speed));
    }
    if (first) cd_pipeline_begin(p, ev.ts_ms);
    cd_pipeline_advance(p, k->clock);
    cd_pipeline_add(p, &ev, 0);
}

/* Reads every line; returns EXIT_IO on a read error, else -1. */
static int run(replay_t *r, cd_pipeline_t *p, cd_linereader_t *lr, const cd_config_t *cfg)
{
    int64_t last_progress = 0, start = cd_mono_ms();
    bool tty = isatty(STDERR_FILENO);
    uint64_t n = 0;
    rclock_t k = {0};
    cd_event_clock_init(&k.ec, cfg->max_future_skew_ms, cd_config_span_ms(cfg));

    cd_held_line_t *held = NULL;
    long nheld = cd_event_clock_look_ahead(&k.ec, lr, &cfg->decode, &stop, &held);
    if (nheld < 0) {
        cd_log(CD_LOG_ERROR, "reading %s: %s", r->input, strerror(errno));
        return EXIT_IO;
    }
    for (long i = 0; i < nheld; i++) {
        if (!stop && !r->io_failed)
            take(r, p, cfg, &k, held[i].st, held[i].text, held[i].len, held[i].lineno);
        free(held[i].text);
    }
    free(held);
    cd_event_clock_unanchor(&k.ec); /* only the look-ahead's events are held to it */

    while (!stop && !r->io_failed) {
        if (hup) {
            hup = 0;
            if (r->out.disp) cd_dispatcher_reopen(r->out.disp);
        }
        const char *line;
        size_t len;
        cd_lr_status_t st = cd_linereader_next(lr, &line, &len);
        if (st == CD_LR_EOF) break;
        if (st == CD_LR_ERROR) {
            clear_progress(r);
            cd_log(CD_LOG_ERROR, "reading %s: %s", r->input, strerror(errno));
            return EXIT_IO;
        }
        if (tty && (++n & 1023) == 0) {
            int64_t now = cd_mono_ms();
            if (now - start >= 1000 && now - last_progress >= 250) {
                progress(r, lr, k.clock, k.ec.have);
                last_progress = now;
            }
        }
        take(r, p, cfg, &k, st, line, len, cd_linereader_lineno(lr));
    }
    if (k.ec.have && !stop && !r->io_failed) cd_pipeline_advance(p, k.ec.max_ts);
    clear_progress(r);
    return -1;
}

int cd_cli_replay(int argc, char **argv)
{
    return cd_replay_main(argc, argv, NULL);
}

int cd_replay_main(int argc, char **argv, const cd_replay_hooks_t *hooks)
{
    replay_t r = {.max_line = 65536, .hooks = hooks};
    cd_config_t *cfg = NULL;
    cd_pipeline_t *p = NULL;
    cd_linereader_t *lr = NULL;
    int fd = -1, rc;
    char err[512];
    cd_diag_t *diag = NULL;

    rc = parse_args(&r, argc, argv);
    if (rc >= 0) return rc;
    rc = EXIT_USAGE;
    diag = malloc(sizeof(*diag));
    if (!diag) goto io;
    cd_diag_init(diag);
    cfg = cd_config_load(r.config_path, diag);
    if (!cfg) {
        fprintf(stderr, "canaryd replay: config %s:\n%s", r.config_path, diag->text);
        goto out;
    }
    rc = EXIT_IO;
    fd = strcmp(r.input, "-") == 0 ? STDIN_FILENO : open(r.input, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "canaryd replay: %s: %s\n", r.input, strerror(errno));
        goto out;
    }
    r.to_stdout = !hooks && (!r.log_path || r.pretty);
    const char *nc = getenv("NO_COLOR");
    r.colour = r.pretty && isatty(STDOUT_FILENO) && !(nc && *nc);
    /* canaryd report sends records to its hooks only: no sink is opened */
    int orc = hooks ? CD_OUTPUTS_OK
                    : cd_outputs_open(&r.out, cfg, r.log_path, r.to_stdout, r.pretty, r.colour, diag);
    if (orc == CD_OUTPUTS_CONFIG) {
        cd_config_locate(cfg, diag, 0);
        fprintf(stderr, "canaryd replay: config %s:\n%s", r.config_path, diag->text);
        rc = EXIT_USAGE;
        goto out;
    }
    if (orc != CD_OUTPUTS_OK) {
        fprintf(stderr, "canaryd replay: %s", diag->text);
        goto out;
    }

    lr = cd_linereader_new(fd, r.max_line, err, sizeof(err));
    if (!lr) {
        fprintf(stderr, "canaryd replay: %s\n", err);
        goto out;
    }
    p = cd_pipeline_new(cfg, cfg->allowed_lateness_ms, 1, on_record, &r, err, sizeof(err));
    if (!p) {
        fprintf(stderr, "canaryd replay: %s\n", err);
        rc = EXIT_USAGE; /* a config the pipeline refuses is a config error */
        goto out;
    }
    cd_pipeline_log_service(p);

    if (hooks && hooks->start) hooks->start(p, cfg, hooks->opaque);
    if (!hooks) cd_dispatcher_set_blocking(r.out.disp, true);
    if (!hooks && cd_dispatcher_start(r.out.disp, err, sizeof(err)) != 0) {
        fprintf(stderr, "canaryd replay: %s\n", err);
        goto out;
    }

    cd_cli_on_signals(on_signal, on_hup);

    rc = run(&r, p, lr, cfg);
    uint64_t left = 0;
    if (!hooks) {
        left = cd_dispatcher_drain(r.out.disp, cd_dispatcher_drain_timeout(r.out.disp));
        if (cd_outputs_builtin_failed(&r.out)) r.io_failed = true;
    }
    summary(p, cd_linereader_lineno(lr), stderr);
    if (!hooks) cd_outputs_summary(&r.out, stderr);
    if (hooks && hooks->done && rc < 0 && !stop &&
        hooks->done(p, cfg, cd_linereader_lineno(lr), hooks->opaque) != 0)
        r.io_failed = true;
    if (left)
        fprintf(stderr,
                "  sinks: %llu deliveries still pending after the drain timeout; "
                "abandoned\n",
                (unsigned long long)left);
    if (rc >= 0) goto out;
    if (r.io_failed) {
        rc = EXIT_IO;
    } else if (stop) {
        fprintf(stderr, "  interrupted: verdict so far %s, not final, exit %d\n",
                cd_verdict_kind_name(cd_pipeline_verdict(p)), EXIT_INTERRUPTED);
        rc = EXIT_INTERRUPTED;
    } else {
        rc = exit_status(p, stderr, !hooks);
    }
    goto out;
io:
    fprintf(stderr, "canaryd replay: out of memory\n");
    rc = EXIT_IO;
out:
    cd_pipeline_destroy(p);
    cd_outputs_close(&r.out);
    cd_linereader_destroy(lr);
    if (fd > STDIN_FILENO) close(fd);
    cd_config_free(cfg);
    free(diag);
    return rc;
}
