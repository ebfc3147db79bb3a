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
 * The difference is what the report costs. Targets (issue 14): the report
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

extern char **environ;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
    double best_replay = 1e9, best_report = 1e9;
    long rss_replay = 0, rss_report = 0;
    int failed = 0;
    for (int i = 0; i < RUNS; i++) {
        double a = timed(rep, NULL, &rss);
        if (a < 0) failed = 1;
        if (a >= 0 && a < best_replay) best_replay = a;
        if (rss > rss_replay) rss_replay = rss;
        double b = timed(rpt, NULL, &rss);
        if (b < 0) failed = 1;
        if (b >= 0 && b < best_report) best_report = b;
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
    printf("| run | wall | peak RSS | output |\n|---|---|---|---|\n");
    printf("| `canaryd replay` (baseline) | %.3f s | %.1f MB | |\n", best_replay,
           rss_replay / 1024.0);
    printf("| `canaryd report` | **%.3f s** | %.1f MB | **%lld bytes (%.0f KB)** |\n", best_report,
           rss_report / 1024.0, out_size, out_size / 1024.0);
    printf("| report's own cost | %.3f s | %+.1f MB | |\n\n", best_report - best_replay,
           (rss_report - rss_replay) / 1024.0);
    printf("target: under %.0f s and under 1 MB - %s\n", TIME_TARGET_S, ok ? "met" : "NOT MET");
    return ok ? 0 : 1;
}
