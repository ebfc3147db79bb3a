/*
 * bench_report.c - time, memory and size of `canaryd report` on a 20-minute
 * stream through the deployment procedure's rules (config/sop.json).
 *
 *   bash tools/build build/release && build/release/bench_report [CONFIG]
 *   (or bash bench/run, which runs every benchmark)
 *
 * Writes `canaryd generate --scenario error-regression --duration 20m` (the
 * default 400 requests/s: ~560,000 events, ~125 MB; a ROLLBACK at 12:09:24,
 * so every kind of mark and span is drawn) to a temp file in /tmp, then in
 * the same run, 3 times each, best wall time and largest peak RSS:
 *   1. `canaryd replay --config CONFIG FILE` (stdout to /dev/null): the
 *      engine alone, the baseline;
 *   2. `canaryd report --config CONFIG -o OUT FILE`: the same run plus the
 *      per-evaluation sampling and the HTML.
 * The difference is what the report costs. Wall time and CPU time (user +
 * sys from wait4: less sensitive to a loaded machine) are both shown. Then,
 * in process, what the live agent's history tap adds to an evaluation: two
 * pipelines from CONFIG on the live 10 ms grid over the same events, one
 * with the history's eval hook (cd_history_sample into a 16-minute ring),
 * 20,000 evaluations each, CPU time per evaluation. Targets (issue 14): the report
 * of a 20-minute SOP stream in under 2 s and under 1 MB. canaryd is the
 * binary next to this one (override with $CANARYD_BIN). Files are deleted
 * at the end. Exit 1 when a target is missed or a run fails.
 */
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUNS 3
#define TIME_TARGET_S 2.0
#define SIZE_TARGET (1024 * 1024)

#include "bench_clock.h"
#include "canaryd/config.h"
#include "canaryd/history.h"
#include "canaryd/pipeline.h"

extern char **environ;

#define T0 1795780800000LL
#define EVALS 20000

static double last_cpu; /* user + sys of the last timed() child */
static double tap_ns;   /* cd_history_sample alone, ns per call (the last eval_ns) */

static void no_record(const cd_verdict_t *v, void *opaque)
{
    (void)v, (void)opaque;
}

/* ns of CPU per evaluation over EVALS 10 ms boundaries; hist may be NULL. */
static double eval_ns(const cd_config_t *cfg, cd_history_t *hist)
{
    char err[256];
    cd_pipeline_t *p = cd_pipeline_new(cfg, 120000, 1, no_record, NULL, err, sizeof err);
    if (!p) return -1;
    if (hist) cd_pipeline_set_eval_hook(p, cd_history_sample, hist);
    cd_pipeline_begin(p, T0);
    cd_pipeline_advance(p, T0);
    static const char *const types[] = {"REQUEST_COMPLETED", "REQUEST_COMPLETED", "ERROR_OCCURRED",
                                        "PAYMENT_COMPLETED", "USER_LOGIN"};
    /* 400 events/s over 100 s, then 200 s of evaluations on the grid */
    for (int i = 0; i < 40000; i++) {
        char line[256];
        int n = snprintf(line, sizeof line,
                         "{\"event_type\":\"%s\",\"timestamp\":%lld,\"cohort\":\"%s\","
                         "\"data\":{\"latency_ms\":%d}}",
                         types[i % 5], (long long)(T0 + i * 5 / 2), i % 20 ? "stable" : "canary",
                         100 + i % 50);
        cd_pipeline_ingest(p, line, (size_t)n, 0);
    }
    cd_pipeline_advance(p, T0 + 100000);
    double t0 = cpu_s();
    for (int k = 1; k <= EVALS; k++)
        cd_pipeline_advance(p, T0 + 100000 + k * 10);
    double t = cpu_s() - t0;
    if (hist) { /* the tap alone, on the same pipeline: what each evaluation pays */
        double t1 = cpu_s();
        for (int k = 1; k <= EVALS; k++)
            cd_history_sample(p, T0 + 300000 + k * 10, hist);
        tap_ns = (cpu_s() - t1) / EVALS * 1e9;
    }
    cd_pipeline_destroy(p);
    return t / EVALS * 1e9;
}

/* Runs argv with stdout into out (NULL: /dev/null); wall seconds, or -1 on
 * failure; *rss_kb the child's peak RSS. */
static double timed(char *const argv[], const char *out, long *rss_kb)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out ? out : "/dev/null",
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    double t0 = now_s();
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return -1;
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) != pid) return -1;
    double t = now_s() - t0;
    *rss_kb = ru.ru_maxrss;
    last_cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    return WIFEXITED(st) ? (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 20 ? t : -WEXITSTATUS(st))
                         : -1;
}

int main(int argc, char **argv)
{
    const char *config = argc > 1 ? argv[1] : "config/sop.json";
    char bin[PATH_MAX];
    const char *env = getenv("CANARYD_BIN");
    if (env) {
        snprintf(bin, sizeof bin, "%s", env);
    } else {
        ssize_t n = readlink("/proc/self/exe", bin, sizeof bin - 1);
        if (n < 0) return 1;
        bin[n] = '\0';
        char *slash = strrchr(bin, '/');
        snprintf(slash + 1, sizeof bin - (size_t)(slash + 1 - bin), "canaryd");
    }
    char events[] = "/tmp/bench_report.XXXXXX";
    int fd = mkstemp(events);
    if (fd < 0) return 1;
    close(fd);
    char html[64];
    snprintf(html, sizeof html, "%s.html", events);

    long rss;
    char *gen[] = {bin, "generate", "--scenario", "error-regression", "--duration", "20m", NULL};
    if (timed(gen, events, &rss) < 0) {
        fprintf(stderr, "bench_report: canaryd generate failed\n");
        unlink(events);
        return 1;
    }
    struct stat st;
    stat(events, &st);
    long long in_size = st.st_size;

    char *rep[] = {bin, "replay", "--config", (char *)config, events, NULL};
    char *rpt[] = {bin, "report", "--config", (char *)config, "-o", html, events, NULL};
    double best_replay = 1e9, best_report = 1e9, cpu_replay = 1e9, cpu_report = 1e9;
    long rss_replay = 0, rss_report = 0;
    int failed = 0;
    for (int i = 0; i < RUNS; i++) {
        double a = timed(rep, NULL, &rss);
        if (a < 0) failed = 1;
        if (a >= 0 && a < best_replay) best_replay = a;
        if (a >= 0 && last_cpu < cpu_replay) cpu_replay = last_cpu;
        if (rss > rss_replay) rss_replay = rss;
        double b = timed(rpt, NULL, &rss);
        if (b < 0) failed = 1;
        if (b >= 0 && b < best_report) best_report = b;
        if (b >= 0 && last_cpu < cpu_report) cpu_report = last_cpu;
        if (rss > rss_report) rss_report = rss;
    }
    long long out_size = stat(html, &st) == 0 ? st.st_size : -1;
    unlink(events);
    unlink(html);
    if (failed) {
        fprintf(stderr, "bench_report: a run failed\n");
        return 1;
    }
    bool ok = best_report < TIME_TARGET_S && out_size >= 0 && out_size < SIZE_TARGET;
    printf("20-minute error-regression stream (%.1f MB), %s, best of %d\n\n", in_size / 1e6, config,
           RUNS);
    printf("| run | wall | CPU | peak RSS | output |\n|---|---|---|---|---|\n");
    printf("| `canaryd replay` (baseline) | %.3f s | %.3f s | %.1f MB | |\n", best_replay,
           cpu_replay, rss_replay / 1024.0);
    printf("| `canaryd report` | **%.3f s** | %.3f s | %.1f MB | **%lld bytes (%.0f KB)** |\n",
           best_report, cpu_report, rss_report / 1024.0, out_size, out_size / 1024.0);
    printf("| report's own cost | %+.3f s | %+.3f s | %+.1f MB | |\n\n", best_report - best_replay,
           cpu_report - cpu_replay, (rss_report - rss_replay) / 1024.0);
    printf("target: under %.0f s and under 1 MB - %s\n\n", TIME_TARGET_S, ok ? "met" : "NOT MET");

    cd_diag_t diag;
    cd_diag_init(&diag);
    cd_config_t *cfg = cd_config_load(config, &diag);
    if (!cfg) {
        fprintf(stderr, "bench_report: %s: %s\n", config, diag.text);
        return 1;
    }
    cfg->eval_interval_ms = 10; /* the live grid */
    cd_history_t *h = cd_history_new(cfg->rules, cfg->nrules, 16 * 60, 256);
    double best0 = 1e18, best1 = 1e18, best_tap = 1e18;
    for (int i = 0; i < RUNS; i++) { /* interleaved: the machine's drift hits both */
        double a = eval_ns(cfg, NULL), b = eval_ns(cfg, h);
        if (a >= 0 && a < best0) best0 = a;
        if (b >= 0 && b < best1) best1 = b;
        if (tap_ns < best_tap) best_tap = tap_ns;
    }
    printf("| live evaluation (%d rules, 10 ms grid, %d evaluations, best of %d) | CPU per "
           "evaluation |\n|---|---|\n| without the history tap | %.0f ns |\n"
           "| with it (status page, --report) | %.0f ns (%+.0f ns, %+.1f %%) |\n",
           cfg->nrules, EVALS, RUNS, best0, best1, best1 - best0, (best1 / best0 - 1) * 100);
    printf(
        "| the tap alone (cd_history_sample: %d rules sampled, one ring slot each) | %.0f ns |\n",
        cfg->nrules, best_tap);
    cd_history_destroy(h);
    cd_config_free(cfg);
    return ok ? 0 : 1;
}
