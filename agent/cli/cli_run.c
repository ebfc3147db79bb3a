/*
 * cli_run.c - `canaryd run`: the live agent. Kafka consumers (kafka_source.c)
 * count events into the pipeline from worker threads; the live clock
 * (live.c) evaluates the rules on wall time; records go out as replay's do
 * (outputs.c): through the sink dispatcher to the config's sinks and the
 * built-in log sinks (JSON lines on stdout, the human line with --pretty,
 * and/or the fsync'ed --verdict-log). The evaluating thread only queues a
 * record: a slow or dead sink never delays an evaluation.
 *
 * Threads: main (signals, exit conditions, shutdown), N Kafka workers, the
 * live clock thread (evaluations; records are queued from it, and SIGHUP's
 * reopen request goes to the dispatcher from its tick callback), the
 * dispatcher thread (writes and deliveries). Signal handlers only set flags; main polls them every
 * 20 ms.
 *
 * Shutdown (SIGINT/SIGTERM, --exit-after-events, --exit-when-idle): stop
 * consuming (every worker commits what it counted and leaves the group, with
 * a deadline), evaluate once more, flush, print the summary and a
 * machine-readable stats line on stderr, exit 0, within the shutdown
 * budget whose shares are named in include/canaryd/shutdown.h:
 * CD_STOP_KAFKA_MS for Kafka, then at most CD_STOP_SINKS_MS for the sinks
 * to deliver what is queued (what is still pending then is abandoned,
 * counted and logged), CD_KAFKA_DESTROY_WAIT_MS for librdkafka's handles,
 * and CD_SHUTDOWN_SLACK_MS for the rest (the last evaluation, the summary).
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "../report/report.h"
#include "canaryd/clock.h"
#include "canaryd/config.h"
#include "canaryd/coord.h"
#include "canaryd/dispatcher.h"
#include "canaryd/http_api.h"
#include "canaryd/kafka_source.h"
#include "canaryd/ledger.h"
#include "canaryd/live.h"
#include "canaryd/log.h"
#include "canaryd/pipeline.h"
#include "canaryd/shutdown.h"
#include "canaryd/snapshot.h"
#include "canaryd/timeutil.h"
#include "cli.h"
#include "outputs.h"

enum { EXIT_OK = 0, EXIT_IO = 1, EXIT_USAGE = 2 };

typedef struct run {
    const char *config_path, *log_path, *brokers, *topic, *group;
    int threads; /* -1: from config */
    bool pretty, colour, to_stdout;
    uint64_t exit_after;   /* 0 = never */
    int64_t exit_idle_ms;  /* 0 = never */
    cd_outputs_t out;
    atomic_bool io_failed;
    /* HTTP API (NULL when the config has no "http" section); the snapshot
     * and its timing belong to the evaluating thread. */
    cd_http_t *http;
    cd_pipeline_t *p;
    cd_live_t *live;
    cd_snapshot_t *snap;
    int64_t published_ms;
    cd_history_t *hist; /* the status page's series (with the HTTP API or --report) */
    const char *report_path;
    cd_ledger_t *ledger; /* <verdict log>.ledger: decisions across restarts; NULL: none */
} run_t;

static volatile sig_atomic_t stop_sig, hup_sig;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        hup_sig = 1;
    else
        stop_sig = sig;
}

/* The status page's history ring (agent/report/history.c): seconds per rule, records. */
#define HISTORY_SECONDS (16 * 60)
#define HISTORY_MARKS 256

/* How often the HTTP API's snapshot is refreshed when nothing changed. */
#define SNAPSHOT_EVERY_MS 100

/* Evaluating thread: a snapshot of the pipeline and the live clock's
 * watermark state, published. */
static void publish(run_t *r, int64_t now)
{
    cd_live_wm_t st;
    cd_snapshot_fill(r->snap, r->p, cd_live_now_ms());
    cd_live_watermark_state(r->live, &st);
    r->snap->judged_ms = st.judged_ms;
    r->snap->lag_known = st.known;
    r->snap->lag_ms = st.lag_ms;
    r->snap->held = st.held;
    snprintf(r->snap->held_reason, sizeof(r->snap->held_reason), "%s", st.reason);
    r->snap->catchup = st.catchup;
    r->snap->catchup_ms = st.catchup_ms;
    cd_http_publish(r->http, r->snap);
    r->published_ms = now;
}

/* Evaluating thread, from on_record: publishes the snapshot with the
 * verdict just decided (the engine's own verdict follows at the end of the
 * evaluation; the next fill keeps this since_ms). */
static void publish_decided(run_t *r, cd_verdict_kind_t decided)
{
    cd_snapshot_fill(r->snap, r->p, cd_live_now_ms());
    if (r->snap->verdict != decided) {
        r->snap->verdict = decided;
        r->snap->since_ms = cd_live_now_ms();
    }
    cd_http_publish(r->http, r->snap);
}

/* Evaluating thread: applies a POST /api/v1/release, and publishes a
 * snapshot for the HTTP API when something changed or every 100 ms (the
 * tick runs before each evaluation step, so it shows the previous one). */
static void http_tick(run_t *r)
{
    char rel[128];
    int64_t now = cd_mono_ms();
    if (cd_http_take_release(r->http, rel, sizeof(rel))) {
        if (rel[0]) {
            cd_pipeline_new_release(r->p, rel);
            cd_log(CD_LOG_INFO, "new release %s: verdict, rule states and canary windows reset",
                   rel);
        } else {
            cd_pipeline_new_judgement(r->p);
            const char *now_rel = cd_pipeline_release(r->p);
            cd_log(CD_LOG_INFO,
                   "new canary run: verdict, rule states and canary windows reset; release %s%s",
                   now_rel[0] ? now_rel : "learnt again from the next canary event",
                   now_rel[0] ? " (kept)" : "");
        }
        /* the previous decisions are no longer this judgement's (ledger.h) */
        if (r->ledger) cd_ledger_judgement(r->ledger, cd_pipeline_release(r->p), cd_live_now_ms());
        publish(r, now);
        cd_http_release_done(r->http);
        return;
    }
    /* The cheap check runs every tick; the copy only when it says so or
     * every SNAPSHOT_EVERY_MS (values and counters move continuously). */
    cd_live_wm_t st;
    cd_live_watermark_state(r->live, &st);
    if (cd_snapshot_stale(r->snap, r->p) || st.held != r->snap->held ||
        st.catchup != r->snap->catchup ||
        now - r->published_ms >= SNAPSHOT_EVERY_MS)
        publish(r, now);
}

/* The live clock's watermark source (any thread). */
static int64_t source_watermark(void *opaque, char *who, size_t size)
{
    return cd_kafka_source_watermark(opaque, who, size);
}

/* Evaluating thread: SIGHUP reopens the verdict log; the HTTP API's hand-over. */
static void on_tick(void *opaque)
{
    run_t *r = opaque;
    if (r->http) http_tick(r);
    if (!hup_sig) return;
    hup_sig = 0;
    cd_log(CD_LOG_INFO, "SIGHUP: reopening the verdict log and sink files");
    cd_dispatcher_reopen(r->out.disp);
}

/* Evaluating thread: queue the record for the sinks; never waits for one. */
static void on_record(const cd_verdict_t *v, void *opaque)
{
    run_t *r = opaque;
    /* A decision is on the HTTP API before any sink is handed it: a Flagger
     * hook asked as soon as a webhook arrived must not be answered from the
     * snapshot of the step before (the next tick publishes after the whole
     * step, which during a catch-up judges many seconds; test_live_recover
     * saw a 409 ANALYZING 29 ms after its receiver had the ROLLBACK). The
     * engine sets its release verdict after an evaluation's rule verdicts,
     * so the ROLLBACK (final) is applied to the snapshot here. */
    if (r->http && r->snap && v->record == CD_RECORD_VERDICT && !v->dry_run &&
        (v->verdict == CD_VERDICT_ROLLBACK || v->verdict == CD_VERDICT_PROMOTE))
        publish_decided(r, v->verdict);
    /* A full queue is counted and logged by the dispatcher (the live agent
     * never blocks on its sinks); a failed write to stdout or the verdict
     * log is the run's I/O failure. */
    cd_dispatcher_submit(r->out.disp, v);
    if (r->hist) cd_history_record(r->hist, v);
    if (cd_outputs_builtin_failed(&r->out)) atomic_store(&r->io_failed, true);
}

/* Opens the decision ledger: sinks.ledger, else <verdict log>.ledger
 * (docs/operations.md, "What survives a restart"). false: it cannot be read
 * or written (the agent stops: running without the memory it was
 * configured to keep would notify twice). */
static bool ledger_open(run_t *r, const cd_coord_conf_t *cc, const cd_config_t *cfg)
{
    char path[4096], err[1024];
    const char *conf = cd_dispatcher_ledger_path(r->out.disp);
    if (conf)
        snprintf(path, sizeof(path), "%s", conf);
    else if (r->log_path)
        snprintf(path, sizeof(path), "%s.ledger", r->log_path);
    else if (!cc->enabled)
        return true;
    /* coordinated without a file: the ledger lives in the shared Redis */
    bool file = conf || r->log_path;
    r->ledger = cd_ledger_open(file ? path : NULL, err, sizeof(err));
    if (!r->ledger) {
        fprintf(stderr, "canaryd run: %s\n", err);
        return false;
    }
    if (cc->enabled) {
        int n = cd_ledger_attach_redis(r->ledger, cc);
        if (n > 0)
            cd_log(CD_LOG_INFO, "ledger: %d line%s recovered from Redis (%s:ledger)", n,
                   n == 1 ? "" : "s", cc->prefix);
    }
    /* A config naming another release is a new release's agent: a new
     * judgement, so the previous release's decisions are neither restored
     * nor offered to the sinks again (a late ROLLBACK of the old release
     * must not reach a hook that would act on the new one). */
    cd_ledger_decision_t dec;
    if (cfg->canary_version[0] && cd_ledger_decision(r->ledger, &dec) &&
        strcmp(cfg->canary_version, dec.release) != 0) {
        cd_log(CD_LOG_INFO,
               "ledger %s: the %s of release %s is not restored: the config judges release %s",
               cd_ledger_path(r->ledger), cd_verdict_kind_name(dec.verdict), dec.release,
               cfg->canary_version);
        cd_ledger_judgement(r->ledger, cfg->canary_version, cd_live_now_ms());
    }
    return true;
}

/* Restores the sticky decision of the current judgement into the pipeline
 * before anything is judged or served (ledger_open has made a config that
 * names another release a new judgement: its pod inherits nothing). */
static void ledger_restore(run_t *r, cd_pipeline_t *p, const cd_config_t *cfg)
{
    cd_ledger_decision_t dec;
    char t[40];
    if (!r->ledger || !cd_ledger_decision(r->ledger, &dec)) return;
    /* another configured release was made a new judgement by ledger_open */
    CD_ASSERT(!cfg->canary_version[0] || strcmp(cfg->canary_version, dec.release) == 0);
    cd_pipeline_restore_decision(p, dec.release, dec.verdict);
    cd_log(CD_LOG_INFO, "ledger %s: restored %s of release %s (%s%s, decided at %s)",
           cd_ledger_path(r->ledger), cd_verdict_kind_name(dec.verdict), dec.release,
           dec.rule[0] ? "rule " : "release-wide", dec.rule,
           cd_time_format(dec.time_ms, t, sizeof(t)));
}

static void ledger_flagger_run(const char *key, const char *checksum, void *opaque)
{
    cd_ledger_flagger(opaque, key, checksum);
}

static void http_restore_run(const char *key, const char *checksum, void *opaque)
{
    cd_http_restore_run(opaque, key, checksum);
}

/* --report: the run's last HISTORY_SECONDS as `canaryd report` draws them. */
static void write_report(run_t *r, const cd_pipeline_t *p, const cd_config_t *cfg)
{
    char err[512];
    cd_pipeline_stats_t st;
    cd_pipeline_stats(p, &st);
    cd_report_input_t in = {.cfg = cfg, .stats = &st, .source = "canaryd run (live)",
                            .final_verdict = cd_report_final_verdict(p)};
    long n = cd_report_write(r->report_path, r->hist, &in, err, sizeof err);
    if (n < 0) {
        fprintf(stderr, "canaryd run: --report: %s\n", err);
        atomic_store(&r->io_failed, true);
    } else {
        fprintf(stderr, "canaryd run: report written to %s (%ld bytes)\n", r->report_path, n);
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: canaryd run --config FILE [--brokers B] [--topic T] [--group G]\n"
            "                   [--threads N] [--verdict-log FILE] [--pretty]\n"
            "                   [--exit-after-events N] [--exit-when-idle D] [--report FILE]\n"
            "  Consumes events from Kafka in a consumer group with N worker threads\n"
            "  (default: the config's kafka.threads, else one per core), evaluates the\n"
            "  rules on the wall clock and writes verdict records like replay: JSON on\n"
            "  stdout, or into --verdict-log (appended, fsync'ed; SIGHUP reopens it);\n"
            "  --pretty prints the human format on stdout. --brokers, --topic, --group\n"
            "  override the config's kafka section. --exit-after-events N stops after N\n"
            "  messages were counted; --exit-when-idle D (e.g. 2s) stops once every\n"
            "  assigned partition is caught up and no message came for D.\n"
            "  SIGINT/SIGTERM: stop consuming, evaluate once more, commit, flush, exit.\n"
            "  A summary and a `stats` JSON line go to stderr at exit.\n"
            "  With an \"http\" config section, serves probes, /metrics and the verdict\n"
            "  endpoints (docs/http-api.md) and prints \"http: listening on HOST:PORT\".\n"
            "  --report FILE writes `canaryd report`'s HTML of the last 16 minutes at exit.\n"
            "  exit: 0 stopped, 1 I/O or fatal Kafka error, 2 usage or config error\n");
}

static int bad_opt(const char *opt, const char *v, const char *accepted)
{
    fprintf(stderr, "canaryd run: %s: \"%s\" is not accepted; accepted: %s\n", opt, v, accepted);
    return EXIT_USAGE;
}

static int parse_args(run_t *r, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return EXIT_OK;
        } else if (strcmp(a, "--pretty") == 0) {
            r->pretty = true;
        } else if (strcmp(a, "--config") == 0 && v) {
            r->config_path = argv[++i];
        } else if (strcmp(a, "--verdict-log") == 0 && v) {
            r->log_path = argv[++i];
        } else if (strcmp(a, "--report") == 0 && v) {
            r->report_path = argv[++i];
        } else if (strcmp(a, "--brokers") == 0 && v && *v) {
            r->brokers = argv[++i];
        } else if (strcmp(a, "--topic") == 0 && v && *v) {
            r->topic = argv[++i];
        } else if (strcmp(a, "--group") == 0 && v && *v) {
            r->group = argv[++i];
        } else if (strcmp(a, "--threads") == 0 && v) {
            i++;
            long n = strtol(v, &end, 10);
            if (end == v || *end || n < 1 || n > CD_KAFKA_MAX_THREADS)
                return bad_opt(a, v, "an integer 1..64");
            r->threads = (int)n;
        } else if (strcmp(a, "--exit-after-events") == 0 && v) {
            i++;
            errno = 0;
            unsigned long long n = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-' || n == 0)
                return bad_opt(a, v, "an integer >= 1");
            r->exit_after = n;
        } else if (strcmp(a, "--exit-when-idle") == 0 && v) {
            i++;
            if (!cd_duration_parse(v, &r->exit_idle_ms) || r->exit_idle_ms <= 0)
                return bad_opt(a, v, "a duration > 0 such as \"500ms\" or \"2s\"");
        } else {
            fprintf(stderr, "canaryd run: unknown option or missing value: \"%s\"\n", a);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!r->config_path) {
        fprintf(stderr, "canaryd run: --config FILE is required\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    return -1;
}

/* Config section plus command-line overrides; problems on stderr. */
static bool kafka_settings(const run_t *r, const cd_config_t *cfg, cd_kafka_conf_t *kc)
{
    cd_diag_t *d = malloc(sizeof(*d));
    bool ok;
    if (!d) return false;
    cd_diag_init(d);
    ok = cd_kafka_conf_parse(cfg, kc, d);
    if (r->brokers) snprintf(kc->brokers, sizeof(kc->brokers), "%s", r->brokers);
    if (r->topic) {
        snprintf(kc->topics[0], sizeof(kc->topics[0]), "%s", r->topic);
        kc->ntopics = 1;
    }
    if (r->group) snprintf(kc->group, sizeof(kc->group), "%s", r->group);
    if (r->threads > 0) kc->threads = r->threads;
    if (ok) ok = cd_kafka_conf_runnable(kc, d);
    cd_config_locate(cfg, d, 0);
    if (!ok) fprintf(stderr, "canaryd run: config %s:\n%s", r->config_path, d->text);
    free(d);
    return ok;
}

/* Human summary, then one JSON line tests and scripts can parse. */
static void summary(const cd_pipeline_t *p, const cd_kafka_source_t *src, uint64_t steps, FILE *f)
{
    cd_pipeline_stats_t s;
    cd_kafka_stats_t k;
    char t1[40], t2[40];
    cd_pipeline_stats(p, &s);
    cd_kafka_source_stats(src, &k);

    char others[48] = "";
    if (cd_pipeline_service_configured(p))
        snprintf(others, sizeof(others), ", %llu other services",
                 (unsigned long long)(s.other_service + s.no_service));
    fprintf(f,
            "canaryd run: %llu messages, %llu events accepted, %llu bad, %llu late, %llu "
            "future%s; %llu evaluations\n",
            (unsigned long long)k.messages, (unsigned long long)s.accepted,
            (unsigned long long)s.bad_total, (unsigned long long)s.late,
            (unsigned long long)s.future, others, (unsigned long long)s.evaluations);
    fprintf(f, "  %-24s %10s %10s\n", "event type", "canary", "stable");
    json_t *types = json_object();
    for (int t = 0; t <= cd_pipeline_ntypes(p); t++) {
        int row = t < cd_pipeline_ntypes(p) ? t : CD_PIPELINE_OTHER;
        const char *name = row == CD_PIPELINE_OTHER ? "(other)" : cd_pipeline_type_name(p, t);
        uint64_t c = s.by_type[row][CD_COHORT_CANARY], st = s.by_type[row][CD_COHORT_STABLE];
        fprintf(f, "  %-24s %10llu %10llu\n", name, (unsigned long long)c, (unsigned long long)st);
        json_object_set_new(types, name,
                            json_pack("{s:I,s:I}", "canary", (json_int_t)c, "stable",
                                      (json_int_t)st));
    }
    json_t *bad = json_object();
    for (int r = 1; r < CD_BAD__COUNT; r++)
        if (s.bad[r]) {
            fprintf(f, "    bad %-22s %10llu\n", cd_bad_reason_name((cd_bad_reason_t)r),
                    (unsigned long long)s.bad[r]);
            json_object_set_new(bad, cd_bad_reason_name((cd_bad_reason_t)r),
                                json_integer((json_int_t)s.bad[r]));
        }
    if (s.accepted)
        fprintf(f, "  event time: %s .. %s\n", cd_time_format(s.first_ms, t1, sizeof(t1)),
                cd_time_format(s.last_ms, t2, sizeof(t2)));
    fprintf(f,
            "  kafka: %llu errors (retried), %llu failed commits, %llu rebalances, %llu "
            "redelivered messages skipped (already counted), %llu fetch nudges\n",
            (unsigned long long)k.kafka_errors, (unsigned long long)k.commits_failed,
            (unsigned long long)k.rebalances, (unsigned long long)k.redelivered,
            (unsigned long long)k.fetch_nudges);
    const char *rel = cd_pipeline_release(p);
    fprintf(f, "  release: %s, verdict: %s\n", *rel ? rel : "(unknown)",
            cd_verdict_kind_name(cd_pipeline_verdict(p)));
    cd_pipeline_summary_service(p, &s, f);

    json_t *j = json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:I,s:I,s:I,s:s,s:I,s:I,s:I}", "messages",
        (json_int_t)k.messages, "accepted", (json_int_t)s.accepted, "bad",
        (json_int_t)s.bad_total, "late", (json_int_t)s.late, "future", (json_int_t)s.future,
        "header_cohort", (json_int_t)k.header_cohort, "by_type", types, "bad_by_reason", bad,
        "evaluations", (json_int_t)s.evaluations, "records", (json_int_t)s.records,
        "clock_steps", (json_int_t)steps, "verdict", cd_verdict_kind_name(cd_pipeline_verdict(p)),
        "kafka_errors", (json_int_t)k.kafka_errors, "redelivered", (json_int_t)k.redelivered,
        "fetch_nudges", (json_int_t)k.fetch_nudges);
    if (j) {
        json_object_set_new(j, "other_service", json_integer((json_int_t)s.other_service));
        json_object_set_new(j, "no_service", json_integer((json_int_t)s.no_service));
        json_object_set_new(j, "service", json_string(cd_pipeline_service(p)));
    }
    char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (line) fprintf(f, "canaryd run: stats %s\n", line);
    free(line);
    json_decref(j);
}

/* Main thread: waits for a reason to stop. Returns the exit status. */
static int wait_for_stop(run_t *r, cd_kafka_source_t *src)
{
    int64_t idle_since = -1; /* when caught up with no message since */
    uint64_t seen = 0;
    /* How soon a stop or the conditions below are seen (a signal landing on
     * this thread also cuts the sleep short; one landing on another thread
     * waits for it, well inside the 5 s shutdown budget). 20 ms with
     * --exit-after-events (benchmarks time that exit), 100 ms otherwise: an
     * idle agent's main thread then wakes 10 times a second, not 50. */
    long step_ms = r->exit_after ? 20 : 100;
    while (!stop_sig) {
        struct timespec ts = {0, step_ms * 1000000L};
        nanosleep(&ts, NULL);
        if (cd_kafka_source_failed(src)) return EXIT_IO;
        if (atomic_load(&r->io_failed)) return EXIT_IO;
        if (r->exit_after) {
            cd_kafka_stats_t k;
            cd_kafka_source_stats(src, &k);
            if (k.messages >= r->exit_after) {
                cd_log(CD_LOG_INFO, "%llu messages counted: stopping (--exit-after-events)",
                       (unsigned long long)k.messages);
                break;
            }
        }
        if (r->exit_idle_ms) {
            cd_kafka_stats_t k;
            cd_kafka_source_stats(src, &k);
            int64_t now = cd_mono_ms();
            if (!cd_kafka_source_caught_up(src) || k.messages != seen) {
                idle_since = -1;
                seen = k.messages;
            } else if (idle_since < 0) {
                idle_since = now;
            } else if (now - idle_since >= r->exit_idle_ms) {
                cd_log(CD_LOG_INFO, "caught up and idle for %lld ms: stopping (--exit-when-idle)",
                       (long long)(now - idle_since));
                break;
            }
        }
    }
    if (stop_sig) cd_log(CD_LOG_INFO, "signal %d: stopping", (int)stop_sig);
    return EXIT_OK;
}

int cd_cli_run(int argc, char **argv)
{
    run_t r = {.threads = -1};
    cd_config_t *cfg = NULL, *lcfg = NULL;
    cd_kafka_conf_t *kc = NULL;
    cd_pipeline_t *p = NULL;
    cd_kafka_source_t *src = NULL;
    cd_live_t *live = NULL;
    cd_diag_t *diag = NULL;
    cd_http_conf_t hc;
    cd_coord_conf_t cc;
    cd_coord_t *coord = NULL;
    char err[1024];
    int rc = parse_args(&r, argc, argv);
    if (rc >= 0) return rc;
    atomic_init(&r.io_failed, false);

    rc = EXIT_IO;
    diag = malloc(sizeof(*diag));
    kc = malloc(sizeof(*kc));
    lcfg = malloc(sizeof(*lcfg));
    if (!diag || !kc || !lcfg) {
        fprintf(stderr, "canaryd run: out of memory\n");
        goto out;
    }
    rc = EXIT_USAGE;
    cd_diag_init(diag);
    cfg = cd_config_load(r.config_path, diag);
    if (!cfg) {
        fprintf(stderr, "canaryd run: config %s:\n%s", r.config_path, diag->text);
        goto out;
    }
    if (!kafka_settings(&r, cfg, kc)) goto out;
    if (!cd_http_conf_parse(cfg, &hc, diag)) {
        cd_config_locate(cfg, diag, 0);
        fprintf(stderr, "canaryd run: config %s:\n%s", r.config_path, diag->text);
        goto out;
    }

    r.to_stdout = !r.log_path || r.pretty;
    const char *nc = getenv("NO_COLOR");
    r.colour = r.pretty && isatty(STDOUT_FILENO) && !(nc && *nc);
    int orc = cd_outputs_open(&r.out, cfg, r.log_path, r.to_stdout, r.pretty, r.colour, diag);
    if (orc == CD_OUTPUTS_CONFIG) {
        cd_config_locate(cfg, diag, 0);
        fprintf(stderr, "canaryd run: config %s:\n%s", r.config_path, diag->text);
        goto out;
    }
    rc = EXIT_IO;
    if (orc != CD_OUTPUTS_OK) {
        fprintf(stderr, "canaryd run: %s", diag->text);
        goto out;
    }
    if (!cd_coord_conf_parse(cfg, &cc, diag)) {
        cd_config_locate(cfg, diag, 0);
        fprintf(stderr, "canaryd run: config %s:\n%s", r.config_path, diag->text);
        rc = EXIT_USAGE;
        goto out;
    }
    if (cc.enabled) {
        coord = cd_coord_new(&cc, err, sizeof(err));
        if (!coord) {
            fprintf(stderr, "canaryd run: %s\n", err);
            goto out;
        }
        cd_dispatcher_set_coord(r.out.disp, coord);
        cd_log(CD_LOG_INFO, "coordination: agent %s, Redis %s:%d, prefix %s, lease %lld ms",
               cc.agent_id, cc.host, cc.port, cc.prefix, (long long)cc.lease_ms);
    }
    if (!ledger_open(&r, &cc, cfg)) goto out;
    if (r.ledger) cd_dispatcher_set_ledger(r.out.disp, r.ledger);
    if (cd_dispatcher_start(r.out.disp, err, sizeof(err)) != 0) {
        fprintf(stderr, "canaryd run: %s\n", err);
        goto out;
    }

    /* Restart without forgetting (issue 11; live.c, "Catch-up"): each
     * partition starts at the history the rules need, read into a ring that
     * reaches back that far, and judged in event time. */
    int64_t history = kc->start_committed ? 0 : cd_live_history_ms(cfg);
    if (history > 0)
        cd_live_config_rebuild(cfg, lcfg);
    else
        cd_live_config(cfg, lcfg);
    /* Live: events may be up to max_future_skew ahead of the wall clock. */
    p = cd_pipeline_new(lcfg, cfg->max_future_skew_ms, kc->threads, on_record, &r, err,
                        sizeof(err));
    if (!p) {
        fprintf(stderr, "canaryd run: %s\n", err);
        rc = EXIT_USAGE;
        goto out;
    }
    cd_pipeline_log_service(p);
    ledger_restore(&r, p, cfg);
    src = cd_kafka_source_new(kc, cfg, p, err, sizeof(err));
    if (!src) {
        fprintf(stderr, "canaryd run: %s\n", err);
        rc = EXIT_USAGE;
        goto out;
    }
    if (cd_kafka_source_set_history(src, kc, cfg, history, err, sizeof(err)) != 0) {
        fprintf(stderr, "canaryd run: %s\n", err);
        goto out;
    }
    live = cd_live_new(p, on_tick, &r, err, sizeof(err));
    if (!live) {
        fprintf(stderr, "canaryd run: %s\n", err);
        goto out;
    }
    /* Judge a second only once every partition is read past it, waiting at
     * most kafka.max_lag_wait (default windows.slack; live.c, "Watermark"). */
    int64_t max_wait = kc->max_lag_wait_ms < 0 ? cfg->slack_ms : kc->max_lag_wait_ms;
    cd_live_set_watermark(live, source_watermark, src, max_wait);
    if (history > 0) {
        char d[32];
        cd_duration_format(history, d, sizeof(d));
        if (max_wait > 0) {
            /* held at most as far back as the rebuilt ring reaches */
            cd_live_set_catchup(live, cfg, cd_live_now_ms(),
                                lcfg->slack_ms - cfg->allowed_lateness_ms);
            cd_log(CD_LOG_INFO,
                   "rebuilding from Kafka: each partition starts at its events of the last %s "
                   "(the longest window, for and allowed_lateness), judged in event time "
                   "until current",
                   d);
        } else {
            cd_log(CD_LOG_INFO,
                   "each partition starts at its events of the last %s; kafka.max_lag_wait 0: "
                   "judged on the wall clock at once, rule states are not replayed",
                   d);
        }
    }
    if (max_wait > 0) {
        char d[32];
        cd_log(CD_LOG_INFO,
               "judging on the partitions' watermark: a partition behind holds judgement for at "
               "most %s (kafka.max_lag_wait)",
               cd_duration_format(max_wait, d, sizeof(d)));
    }
    if (hc.enabled || r.report_path) {
        /* the status page's last 15 minutes (16 kept), one point a second */
        r.hist = cd_history_new(lcfg->rules, lcfg->nrules, HISTORY_SECONDS, HISTORY_MARKS);
        if (!r.hist) {
            fprintf(stderr, "canaryd run: out of memory\n");
            goto out;
        }
        cd_pipeline_set_eval_hook(p, cd_history_sample, r.hist);
    }
    if (hc.enabled) {
        cd_http_sources_t hs = {.kafka = src, .disp = r.out.disp, .history = r.hist, .cfg = lcfg,
                                .window = cd_pipeline_window(p)};
        r.p = p;
        r.snap = r.hist ? calloc(1, sizeof(*r.snap)) : NULL;
        r.http = r.snap ? cd_http_new(&hc, &hs, err, sizeof(err)) : NULL;
        if (!r.http) {
            fprintf(stderr, "canaryd run: %s\n", r.snap ? err : "out of memory");
            goto out;
        }
        if (r.ledger) {
            cd_ledger_decision_t dec;
            cd_ledger_each_flagger(r.ledger, http_restore_run, r.http);
            cd_http_set_run_hook(r.http, ledger_flagger_run, r.ledger);
            /* a restored decision is as old as it was: "since" its decision */
            if (cd_ledger_decision(r.ledger, &dec) &&
                strcmp(dec.release, cd_pipeline_release(p)) == 0 &&
                dec.verdict == cd_pipeline_verdict(p)) {
                r.snap->verdict = dec.verdict;
                snprintf(r.snap->release, sizeof(r.snap->release), "%s", dec.release);
                r.snap->since_ms = dec.at_ms;
            }
        }
        /* This thread evaluates until cd_live_start: the first snapshot,
         * published before the API answers (a restored decision included). */
        r.live = live;
        publish(&r, cd_mono_ms());
    }

    cd_cli_on_signals(on_signal, on_signal);

    if (cd_live_start(live, err, sizeof(err)) != 0 ||
        cd_kafka_source_start(src, err, sizeof(err)) != 0 ||
        (r.http && cd_http_start(r.http, err, sizeof(err)) != 0)) {
        fprintf(stderr, "canaryd run: %s\n", err);
        cd_kafka_source_stop(src, CD_STOP_KAFKA_MS);
        cd_live_stop(live);
        goto out;
    }
    cd_log(CD_LOG_INFO, "consuming %s%s from %s as group %s", kc->topics[0],
           kc->ntopics > 1 ? " (and more)" : "", kc->brokers, kc->group);

    rc = wait_for_stop(&r, src);
    cd_http_stop(r.http); /* first: its handlers read the consumers' state */
    cd_kafka_source_stop(src, CD_STOP_KAFKA_MS); /* stop consuming, commit, leave */
    /* evaluate once more: with --exit-after-events the N events are the
     * whole input, judged whatever the watermark; on a signal a second no
     * partition was read past stays unjudged (live.h) */
    if (r.exit_after)
        cd_live_finish(live);
    else
        cd_live_stop(live);
    uint64_t left = cd_dispatcher_drain(r.out.disp, CD_STOP_SINKS_MS);
    if (cd_outputs_builtin_failed(&r.out)) atomic_store(&r.io_failed, true);
    fflush(stdout);
    summary(p, src, cd_live_steps(live), stderr);
    cd_outputs_summary(&r.out, stderr);
    if (r.report_path) write_report(&r, p, lcfg);
    if (left)
        fprintf(stderr, "  sinks: %llu deliveries still pending at shutdown; abandoned\n",
                (unsigned long long)left);
    if (atomic_load(&r.io_failed)) rc = EXIT_IO;
out:
    cd_http_stop(r.http);
    cd_live_destroy(live);
    cd_http_destroy(r.http);
    free(r.snap);
    cd_kafka_source_destroy(src);
    cd_pipeline_destroy(p);
    cd_history_destroy(r.hist);
    cd_coord_destroy(coord); /* after the drain, before the dispatcher: it submits to it */
    cd_outputs_close(&r.out);
    cd_ledger_close(r.ledger); /* after the dispatcher and the HTTP API: both write to it */
    cd_config_free(cfg);
    free(lcfg);
    free(kc);
    free(diag);
    return rc;
}
