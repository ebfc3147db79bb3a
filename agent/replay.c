/*
 * replay.c - `canaryd replay`: runs a recorded event stream (JSONL) through
 * the pipeline in event time and writes the verdict records.
 *
 * Event-time clock: max_ts is the highest event time seen; the clock trails
 * it by allowed_lateness, so events up to that much out of order still land
 * before any evaluation reads their second, and the verdicts are the same
 * on every run. An event more than max_future_skew after max_ts (after the
 * first event) is dropped as "future" without moving the clock: one bad
 * timestamp must not fast-forward the analysis. But when REANCHOR_RUN such
 * events come in a row, it is the stream that moved on (a pause longer than
 * the skew, or a bogus first timestamp far in the past that every real event
 * now looks "future" against): the clock follows the stream again from the
 * last of them, with a warning. The clock is advanced before
 * the event is added (the window only accepts events up to allowed_lateness
 * after its clock); this evaluates exactly what advancing after the add
 * would, since every boundary evaluated is <= clock <= the event's time and
 * a window ending at b excludes b itself. At the end of input the clock goes
 * to max_ts, so the last boundaries are evaluated too.
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

#include "canaryd/config.h"
#include "canaryd/dispatcher.h"
#include "outputs.h"
#include "canaryd/log.h"
#include "canaryd/pipeline.h"
#include "canaryd/timeutil.h"
#include "cli.h"
#include "linereader.h"

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

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void clear_progress(replay_t *r)
{
    if (r->progress_shown) fputs("\r\033[K", stderr);
    r->progress_shown = false;
}

static void on_record(const cd_verdict_t *v, void *opaque)
{
    replay_t *r = opaque;
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
    int64_t now = mono_ms();
    while (!stop && now < target_ms) {
        int64_t d = target_ms - now;
        struct timespec ts = {d / 1000, (d % 1000) * 1000000L};
        nanosleep(&ts, NULL); /* a signal cuts it short; stop is then checked */
        now = mono_ms();
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
            "%llu future\n",
            (unsigned long long)lines, (unsigned long long)s.accepted,
            (unsigned long long)s.bad_total, (unsigned long long)s.late,
            (unsigned long long)s.future);
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
}

/* Final verdict line and exit status. An ALERT is a firing rule at the end
 * that neither rolled back nor was outweighed by a PROMOTE. */
static int exit_status(const cd_pipeline_t *p, FILE *f)
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
    fprintf(f, ", exit %d\n", rc);
    return rc;
}

/* Consecutive "future" events after which the clock follows the stream. */
#define REANCHOR_RUN 64

/* Reads every line; returns EXIT_IO on a read error, else -1. */
static int run(replay_t *r, cd_pipeline_t *p, cd_linereader_t *lr, const cd_config_t *cfg)
{
    int64_t max_ts = 0, clock = 0, wall0 = 0, ev0 = 0, last_progress = 0, start = mono_ms();
    bool have = false, tty = isatty(STDERR_FILENO);
    uint64_t n = 0, future_run = 0;

    while (!stop && !r->io_failed) {
        if (hup) {
            hup = 0;
            cd_dispatcher_reopen(r->out.disp);
        }
        const char *line;
        size_t len;
        cd_event_t ev;
        cd_lr_status_t st = cd_linereader_next(lr, &line, &len);
        if (st == CD_LR_EOF) break;
        if (st == CD_LR_ERROR) {
            clear_progress(r);
            cd_log(CD_LOG_ERROR, "reading %s: %s", r->input, strerror(errno));
            return EXIT_IO;
        }
        uint64_t lineno = cd_linereader_lineno(lr);
        if (tty && (++n & 1023) == 0) {
            int64_t now = mono_ms();
            if (now - start >= 1000 && now - last_progress >= 250) {
                progress(r, lr, clock, have);
                last_progress = now;
            }
        }
        if (st == CD_LR_TOO_LONG) {
            cd_pipeline_count_bad(p, CD_BAD_LINE_TOO_LONG, line, len, lineno);
            continue;
        }
        if (cd_pipeline_decode(p, line, len, lineno, &ev) != CD_BAD_NONE) continue;
        /* unsigned difference: exact when ts > max_ts, no overflow at the extremes */
        if (have && ev.ts_ms > max_ts &&
            (uint64_t)ev.ts_ms - (uint64_t)max_ts > (uint64_t)cfg->max_future_skew_ms) {
            if (++future_run < REANCHOR_RUN) {
                cd_pipeline_count_future(p, &ev, max_ts, lineno);
                continue;
            }
            char from[40], to[40];
            cd_log(CD_LOG_WARN,
                   "line %llu: %d events in a row more than max_future_skew after %s; "
                   "following the stream to %s",
                   (unsigned long long)lineno, REANCHOR_RUN, cd_time_format(max_ts, from, sizeof(from)),
                   cd_time_format(ev.ts_ms, to, sizeof(to)));
        }
        future_run = 0;
        if (!have || ev.ts_ms > max_ts) {
            max_ts = ev.ts_ms;
            clock = max_ts - cfg->allowed_lateness_ms;
        }
        if (r->speed > 0) {
            if (!have) {
                wall0 = mono_ms();
                ev0 = clock;
            }
            sleep_until(wall0 + (int64_t)((double)(clock - ev0) / r->speed));
        }
        if (!have) cd_pipeline_begin(p, ev.ts_ms);
        have = true;
        cd_pipeline_advance(p, clock);
        cd_pipeline_add(p, &ev, 0);
    }
    if (have && !stop && !r->io_failed) cd_pipeline_advance(p, max_ts);
    clear_progress(r);
    return -1;
}

int cd_cli_replay(int argc, char **argv)
{
    replay_t r = {.max_line = 65536};
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
    r.to_stdout = !r.log_path || r.pretty;
    const char *nc = getenv("NO_COLOR");
    r.colour = r.pretty && isatty(STDOUT_FILENO) && !(nc && *nc);
    int orc = cd_outputs_open(&r.out, cfg, r.log_path, r.to_stdout, r.pretty, r.colour, diag);
    if (orc == CD_OUTPUTS_CONFIG) {
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

    cd_dispatcher_set_blocking(r.out.disp, true);
    if (cd_dispatcher_start(r.out.disp, err, sizeof(err)) != 0) {
        fprintf(stderr, "canaryd replay: %s\n", err);
        goto out;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);

    rc = run(&r, p, lr, cfg);
    uint64_t left = cd_dispatcher_drain(r.out.disp, cd_dispatcher_drain_timeout(r.out.disp));
    if (cd_outputs_builtin_failed(&r.out)) r.io_failed = true;
    summary(p, cd_linereader_lineno(lr), stderr);
    cd_outputs_summary(&r.out, stderr);
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
        rc = exit_status(p, stderr);
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
