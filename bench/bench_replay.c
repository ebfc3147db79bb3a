/*
 * bench_replay.c - end-to-end throughput and memory of `canaryd replay`.
 *
 *   bash tools/build && build/release/bench_replay [EVENTS] [CONFIG]
 *   (or bash bench/run, which runs every benchmark)
 *
 * Writes EVENTS (default 1,000,000) events of the healthy scenario (simgen,
 * ~222 bytes each, event time ~36 minutes at the default 400 requests/s) to a
 * temp file in /tmp, then in the same run:
 *   1. baseline: reads the file with read(2) in 1 MiB chunks, the way
 *      `cat FILE > /dev/null` does (page cache warm: it was just written);
 *   2. runs `canaryd replay --config CONFIG FILE` as a child (posix_spawn,
 *      stdout to /dev/null, stderr captured to check that every event was
 *      accepted), wall time around spawn..wait4, peak RSS from wait4's
 *      ru_maxrss.
 * Each is measured 3 times; the table shows the best wall time and the
 * largest peak RSS. canaryd is the binary next to this one (override with
 * $CANARYD_BIN); CONFIG defaults to config/sop.json relative to the current
 * directory (bench/run runs from the repository root). Target: peak RSS
 * <= 32 MB. The file is deleted at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_clock.h"
#include "canaryd/simgen.h"

#define RUNS 3
#define RSS_TARGET_MB 32.0

extern char **environ;

typedef struct writer {
    FILE *f;
    long want, written;
    size_t bytes;
} writer_t;

static void write_cb(const char *line, size_t len, int64_t ts, void *opaque)
{
    writer_t *w = opaque;
    if (w->written >= w->want) return;
    fwrite(line, 1, len, w->f);
    putc('\n', w->f);
    w->written++;
    w->bytes += len + 1;
}

/* Fills path with EVENTS healthy events; returns bytes written or 0. */
static size_t make_file(char *path, long events)
{
    cd_sim_conf_t conf;
    char err[256];
    cd_sim_conf_init(&conf);
    cd_sim_t *sim = cd_sim_new(&conf, err, sizeof err);
    int fd = mkstemp(path);
    if (!sim || fd < 0) {
        fprintf(stderr, "bench_replay: %s\n", sim ? strerror(errno) : err);
        cd_sim_destroy(sim);
        return 0;
    }
    writer_t w = {.f = fdopen(fd, "w"), .want = events};
    for (int64_t s = conf.start_ms; w.written < events; s += 1000)
        cd_sim_second(sim, s, write_cb, &w);
    cd_sim_destroy(sim);
    if (fclose(w.f) != 0) {
        fprintf(stderr, "bench_replay: writing %s: %s\n", path, strerror(errno));
        unlink(path);
        return 0;
    }
    return w.bytes;
}

static double read_file(const char *path)
{
    static char buf[1 << 20];
    double t0 = now_s();
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        ;
    close(fd);
    return n < 0 ? -1 : now_s() - t0;
}

/* One replay; wall seconds, peak RSS in KB; -1 on failure. */
static double run_replay(const char *bin, const char *config, const char *file, long events,
                         long *maxrss_kb)
{
    char errp[] = "/tmp/canaryd-bench-err-XXXXXX";
    int efd = mkstemp(errp);
    if (efd < 0) return -1;
    char *argv[] = {(char *)bin, "replay", "--config", (char *)config, (char *)file, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, efd, STDERR_FILENO);
    pid_t pid;
    double t0 = now_s();
    int rc = posix_spawn(&pid, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(stderr, "bench_replay: cannot run %s: %s\n", bin, strerror(rc));
        close(efd), unlink(errp);
        return -1;
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid) return -1;
    double wall = now_s() - t0;
    *maxrss_kb = ru.ru_maxrss;

    /* The summary's first line must account for every event. */
    char sum[512] = "", want[64];
    ssize_t n = pread(efd, sum, sizeof sum - 1, 0);
    sum[n > 0 ? n : 0] = '\0';
    close(efd), unlink(errp);
    snprintf(want, sizeof want, ", %ld events accepted, 0 bad", events);
    if (!WIFEXITED(status) || !strstr(sum, want)) {
        fprintf(stderr, "bench_replay: replay failed (status %d):\n%s\n", status, sum);
        return -1;
    }
    return wall;
}

int main(int argc, char **argv)
{
    long events = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    const char *config = argc > 2 ? argv[2] : "config/sop.json";
    char bin[PATH_MAX], path[] = "/tmp/canaryd-bench-XXXXXX";
    const char *env = getenv("CANARYD_BIN");
    if (events <= 0) {
        fprintf(stderr, "usage: bench_replay [EVENTS > 0] [CONFIG]\n");
        return 2;
    }
    if (env) {
        snprintf(bin, sizeof bin, "%s", env);
    } else {
        ssize_t n = readlink("/proc/self/exe", bin, sizeof bin - 16);
        if (n <= 0) return 1;
        bin[n] = '\0';
        strcpy(strrchr(bin, '/') + 1, "canaryd");
    }
    if (access(config, R_OK) != 0) {
        fprintf(stderr, "bench_replay: %s: %s (run from the repository root)\n", config,
                strerror(errno));
        return 2;
    }

    double t0 = now_s();
    size_t bytes = make_file(path, events);
    if (!bytes) return 1;
    double gen = now_s() - t0;

    double best_read = 1e30, best_replay = 1e30;
    long rss = 0;
    int rc = 0;
    for (int i = 0; i < RUNS; i++) {
        double r = read_file(path);
        long kb = 0;
        double w = run_replay(bin, config, path, events, &kb);
        if (r < 0 || w < 0) {
            rc = 1;
            break;
        }
        best_read = r < best_read ? r : best_read;
        best_replay = w < best_replay ? w : best_replay;
        rss = kb > rss ? kb : rss;
    }
    unlink(path);
    if (rc) return rc;

    double mb = bytes / 1e6, rss_mb = rss / 1024.0;
    printf("### bench_replay: %ld events, %.1f MB (%.0f bytes/event), best of %d\n\n", events, mb,
           (double)bytes / events, RUNS);
    printf("| step | wall s | events/s | MB/s | peak RSS MB |\n");
    printf("|---|---:|---:|---:|---:|\n");
    printf("| generate file (simgen, in process) | %.3f | %.0f | %.1f | |\n", gen, events / gen,
           mb / gen);
    printf("| read file (baseline, like cat > /dev/null) | %.3f | %.0f | %.1f | |\n", best_read,
           events / best_read, mb / best_read);
    printf("| canaryd replay --config %s | %.3f | %.0f | %.1f | %.1f |\n\n", config, best_replay,
           events / best_replay, mb / best_replay, rss_mb);
    printf("replay is %.1fx slower than reading the file; peak RSS %.1f MB: %s the %.0f MB "
           "target\n",
           best_replay / best_read, rss_mb, rss_mb <= RSS_TARGET_MB ? "within" : "ABOVE",
           RSS_TARGET_MB);
    return 0;
}
