/*
 * kbench.h - helpers shared by the live-mode benchmarks (bench_kafka.c,
 * bench_kafka_delay.c, bench_catchup.c): an in-process mock Kafka cluster,
 * a bulk producer to preload it (kb_loader_t), the canaryd binary next to
 * the benchmark, child processes with their output captured, and /proc
 * readings. Header-only (static functions) because every bench/bench_*.c
 * is its own binary and CMake globs only those.
 *
 * The mock cluster (librdkafka's rdkafka_mock.h) runs on a librdkafka thread
 * inside the benchmark process and listens on 127.0.0.1; the canaryd child
 * and the benchmark's own clients connect to it like to any broker. Its
 * thread therefore competes for the same 2 cores as the consumer being
 * measured, the same way for every consumer measured.
 *
 * Not thread-safe beyond what each function says; used from main().
 */
#ifndef CANARYD_BENCH_KBENCH_H
#define CANARYD_BENCH_KBENCH_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "canaryd/timeutil.h"

extern char **environ;

static inline int64_t kb_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t kb_real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void kb_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* The child being measured, killed if this process is interrupted (bench/run's
 * timeout sends SIGTERM): a benchmark never leaves an agent behind. */
static volatile pid_t kb_child = -1;

static void kb_on_signal(int sig)
{
    if (kb_child > 0) kill(kb_child, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* SIGPIPE ignored; SIGINT / SIGTERM / SIGHUP kill kb_child, then this process. */
static inline void kb_signals(void)
{
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, kb_on_signal);
    signal(SIGTERM, kb_on_signal);
    signal(SIGHUP, kb_on_signal);
}

/* The canaryd binary: $CANARYD_BIN, else "canaryd" next to this binary. */
static inline int kb_canaryd_bin(char *bin, size_t size)
{
    const char *env = getenv("CANARYD_BIN");
    if (env && *env) {
        snprintf(bin, size, "%s", env);
        return access(bin, X_OK);
    }
    ssize_t n = readlink("/proc/self/exe", bin, size - 16);
    if (n <= 0) return -1;
    bin[n] = '\0';
    strcpy(strrchr(bin, '/') + 1, "canaryd");
    return access(bin, X_OK);
}

/* librdkafka's lines from the benchmark's own clients: errors only. */
static inline void kb_quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 3) fprintf(stderr, "bench: rdkafka %s: %s\n", fac, buf);
}

/*
 * A mock cluster with one broker and topic (partitions) created. *holder
 * receives the rd_kafka_t the cluster needs for its bookkeeping (destroy it
 * after the cluster). Bootstrap address into boot. NULL on failure.
 */
static inline rd_kafka_mock_cluster_t *kb_mock_new(rd_kafka_t **holder, const char *topic,
                                                   int partitions, char *boot, size_t bootsize)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(c, kb_quiet_log);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "bench: mock holder: %s\n", err);
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 1);
    if (!mc || rd_kafka_mock_topic_create(mc, topic, partitions, 1) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "bench: cannot start the mock cluster\n");
        if (mc) rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        return NULL;
    }
    snprintf(boot, bootsize, "%s", rd_kafka_mock_cluster_bootstraps(mc));
    *holder = rk;
    return mc;
}

/* Sets a client property; prints librdkafka's message and returns -1 if refused. */
static inline int kb_set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[512];
    if (rd_kafka_conf_set(c, k, v, err, sizeof err) == RD_KAFKA_CONF_OK) return 0;
    fprintf(stderr, "bench: %s: %s\n", k, err);
    return -1;
}

/* Epoch ms of a canaryd log line "2026-11-27T09:25:01.123Z canaryd[...]"
 * (its first word, RFC 3339), or -1. */
static inline int64_t kb_log_line_ms(const char *l)
{
    int64_t ms;
    return cd_time_parse_rfc3339(l, strcspn(l, " \n"), &ms) ? ms : -1;
}

/*
 * A bulk producer preloading a topic: kb_loader_open, then kb_load_cb for
 * each event (simgen's cd_sim_second callback), then kb_loader_close.
 * Round-robin over the partitions; a full queue is waited out (polled), any
 * other refusal or failed delivery is counted in failed. Batches of 10,000
 * messages up to 1 MB, 100 ms linger: the preload is not what is measured.
 */
typedef struct kb_loader {
    rd_kafka_t *rk;
    const char *topic;
    int partitions;
    long want;    /* events to send at most; <= 0: no limit */
    bool stamp;   /* the message timestamp is the event's time (else: now) */
    long sent;
    size_t bytes; /* payload bytes sent */
    int failed;
} kb_loader_t;

static inline void kb_loader_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    if (m->err) ((kb_loader_t *)opaque)->failed++;
}

/* Opens l->rk on boot (l's other settings filled by the caller); 0, or -1
 * with a message naming who. */
static inline int kb_loader_open(kb_loader_t *l, const char *boot, const char *who)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(c, kb_quiet_log);
    if (kb_set(c, "bootstrap.servers", boot) || kb_set(c, "linger.ms", "100") ||
        kb_set(c, "batch.num.messages", "10000") || kb_set(c, "batch.size", "1000000") ||
        kb_set(c, "queue.buffering.max.messages", "2000000") ||
        kb_set(c, "queue.buffering.max.kbytes", "1048576")) {
        rd_kafka_conf_destroy(c);
        return -1;
    }
    rd_kafka_conf_set_dr_msg_cb(c, kb_loader_dr);
    rd_kafka_conf_set_opaque(c, l);
    l->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!l->rk) {
        fprintf(stderr, "%s: producer: %s\n", who, err);
        rd_kafka_conf_destroy(c);
        return -1;
    }
    return 0;
}

/* One event line (time ts) to the next partition; a cd_sim_second callback
 * with the loader as opaque. */
static inline void kb_load_cb(const char *line, size_t len, int64_t ts, void *opaque)
{
    kb_loader_t *l = opaque;
    if (l->want > 0 && l->sent >= l->want) return;
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            l->rk, RD_KAFKA_V_TOPIC(l->topic),
            RD_KAFKA_V_PARTITION((int32_t)(l->sent % l->partitions)),
            RD_KAFKA_V_VALUE((void *)line, len), RD_KAFKA_V_TIMESTAMP(l->stamp ? ts : 0),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            l->failed++;
            return;
        }
        rd_kafka_poll(l->rk, 50);
    }
    l->sent++;
    l->bytes += len;
    if (l->sent % 10000 == 0) rd_kafka_poll(l->rk, 0);
}

/* Flushes (2 minutes at most) and destroys l->rk; 0 when every event was
 * delivered (and, with a want, all of them sent), else -1 with a message
 * naming who. */
static inline int kb_loader_close(kb_loader_t *l, const char *who)
{
    rd_kafka_resp_err_t fe = rd_kafka_flush(l->rk, 120000);
    rd_kafka_destroy(l->rk);
    l->rk = NULL;
    if (fe || l->failed || (l->want > 0 && l->sent != l->want)) {
        fprintf(stderr, "%s: preload failed: %ld sent (%ld wanted), %d failed, flush: %s\n", who,
                l->sent, l->want, l->failed, rd_kafka_err2str(fe));
        return -1;
    }
    return 0;
}

/*
 * Starts argv[0] with argv; stdout and stderr go to out_fd / err_fd (-1:
 * /dev/null). extra_env ("K=V") is added to the environment when not NULL.
 * Returns the pid, or -1.
 */
static inline pid_t kb_spawn(char *const argv[], int out_fd, int err_fd, const char *extra_env)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    else
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    if (err_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO);
    else
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof(*env));
    if (!env) {
        posix_spawn_file_actions_destroy(&fa);
        return -1;
    }
    memcpy(env, environ, n * sizeof(*env));
    if (extra_env) env[n++] = (char *)extra_env;
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    if (rc != 0) {
        fprintf(stderr, "bench: cannot run %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    return pid;
}

static inline long kb_status_kb(pid_t pid, const char *key);

/*
 * Waits for pid up to timeout_ms; past it, SIGKILL and reap (never leaves a
 * child behind). Exit status or -1 (killed / not exited normally); rusage
 * into ru when not NULL; the largest VmHWM seen while polling every 5 ms into
 * *hwm_kb when not NULL (wait4's ru_maxrss is no use here: posix_spawn's
 * child starts on the parent's memory, whose high-water mark -- the mock
 * broker's data -- the kernel carries over into the child's maxrss at exec).
 */
static inline int kb_wait(pid_t pid, int timeout_ms, struct rusage *ru, long *hwm_kb)
{
    int status = 0;
    struct rusage r;
    int64_t end = kb_mono_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        pid_t w = wait4(pid, &status, WNOHANG, &r);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) return -1;
        if (hwm_kb) {
            long h = kb_status_kb(pid, "VmHWM");
            if (h > *hwm_kb) *hwm_kb = h;
        }
        if (kb_mono_ns() > end) {
            fprintf(stderr, "bench: pid %d did not exit in %d ms: killed\n", (int)pid, timeout_ms);
            kill(pid, SIGKILL);
            wait4(pid, &status, 0, &r);
            if (ru) *ru = r;
            return -1;
        }
        kb_sleep_ms(5);
    }
    if (ru) *ru = r;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* utime + stime in clock ticks from a /proc stat file, or -1. */
static inline long long kb_stat_ticks(const char *path)
{
    char buf[2048];
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p) return -1;
    unsigned long long ut = 0, st = 0;
    /* after ") ": state(3) ... utime is field 14, stime 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (long long)(ut + st);
}

/* utime + stime of pid (all threads) in clock ticks, or -1. */
static inline long long kb_cpu_ticks(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    return kb_stat_ticks(path);
}

/*
 * utime + stime of pid's threads in clock ticks, split by thread name:
 * librdkafka's own threads (named "rdk:...") into *rdk, the rest (canaryd's
 * main, workers, live clock, sinks) into *own. -1 on failure.
 */
static inline int kb_thread_ticks(pid_t pid, long long *rdk, long long *own)
{
    char path[320], comm[64];
    *rdk = *own = 0;
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "/proc/%d/task/%s/comm", (int)pid, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (!fgets(comm, sizeof comm, f)) comm[0] = '\0';
        fclose(f);
        snprintf(path, sizeof path, "/proc/%d/task/%s/stat", (int)pid, e->d_name);
        long long t = kb_stat_ticks(path); /* this thread only (/proc/TID/stat sums them all) */
        if (t < 0) continue;
        *(strncmp(comm, "rdk:", 4) == 0 ? rdk : own) += t;
    }
    closedir(d);
    return 0;
}

/* A "Key:   N kB" line of /proc/pid/status, in kB, or -1. */
static inline long kb_status_kb(pid_t pid, const char *key)
{
    char path[64], line[256];
    size_t kl = strlen(key);
    long v = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Reads a whole file (NUL-terminated, caller frees), or NULL. */
static inline char *kb_slurp_fd(int fd)
{
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0) return NULL;
    char *b = malloc((size_t)size + 1);
    if (!b) return NULL;
    ssize_t n = pread(fd, b, (size_t)size, 0);
    b[n > 0 ? n : 0] = '\0';
    return b;
}

static inline int kb_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of n sorted values, nearest rank. */
static inline int64_t kb_quantile(const int64_t *sorted, size_t n, double q)
{
    if (n == 0) return 0;
    size_t r = (size_t)(q * (double)n + 0.999999);
    if (r < 1) r = 1;
    if (r > n) r = n;
    return sorted[r - 1];
}

#endif
