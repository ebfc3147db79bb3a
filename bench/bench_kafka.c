/*
 * bench_kafka.c - live mode end to end: `canaryd run` against a bare
 * librdkafka consumer on the same preloaded topic, then canaryd's peak RSS
 * and idle CPU.
 *
 *   bash tools/build && build/release/bench_kafka [EVENTS]   (from the repo root)
 *   (or bash bench/run, which runs every benchmark)
 *
 * 1. Preload: an in-process mock cluster (kbench.h) with one topic of
 *    KBENCH_PARTITIONS (default 64) partitions; EVENTS (default 1,000,000)
 *    healthy-scenario lines of the generator (simgen, ~222 bytes) at 8000
 *    requests/s, so they span ~110 s of event time ending ~40 s before now:
 *    every one is inside the window ring and is decoded, counted and
 *    evaluated (neither late nor future). Produced round-robin over the
 *    partitions in large batches (linger.ms 100, up to 10000 messages per
 *    batch): ~3.5 MB per partition, under the mock's ~5 MB cap.
 * 2. Throughput, 2 rounds, each consumer in its own consumer group reading
 *    the whole topic from the start:
 *    - bare: this binary again as a child (`bench_kafka --bare BOOT GROUP N
 *      THREADS`, a process of its own like canaryd): librdkafka high-level
 *      consumers (1, then 2 consumer threads), default properties but
 *      auto.offset.reset=earliest and the mock's session settings below, polling and discarding until EVENTS
 *      messages came;
 *    - canaryd: `canaryd run --config config/sop.json --threads T
 *      --exit-after-events EVENTS` (T = 1, 2) as a child, CANARYD_LOG_LEVEL=info.
 *    Measured for both: from the first partition assignment to the EVENTS-th
 *    message (canaryd: the timestamps of its log lines "worker N assigned"
 *    and "N messages counted: stopping"; the latter is checked every 20 ms),
 *    so the group join, which the mock delays, and process start and
 *    shutdown are left out of both. canaryd's whole process wall time and
 *    peak RSS (the last VmHWM read while it ran, polled every 5 ms) are
 *    shown beside it, with the process's CPU time (wait4 rusage) -- for the
 *    bare consumer too. Its stats line must say
 *    accepted = EVENTS, late = future = bad = 0, or the run fails.
 *    The table shows the best of the rounds; the ratio is best canaryd over
 *    best bare consumer, both from this run.
 * 3. Peak RSS and idle CPU: `canaryd run --config config/sop.json` as it is
 *    (librdkafka's own session and heartbeat timing; default
 *    threads: one per core) consumes the topic in a new group; once the
 *    group's committed offsets (queried from the broker) reach EVENTS, VmHWM
 *    and VmRSS are read from /proc/PID/status and utime+stime from
 *    /proc/PID/stat over KBENCH_IDLE_SECONDS (default 20) with nothing
 *    arriving. Then SIGTERM.
 *
 * Both consumers get session.timeout.ms=6000 and heartbeat.interval.ms=500
 * (canaryd as kafka.properties added to config/sop.json, in a temporary
 * copy): librdkafka 2.0's mock cluster holds a rebalance for the session
 * timeout minus 1 s when a member joins a group already up, and with the
 * default 45 s a consumer thread joining a moment late stalled its side for
 * 44 s, on either side, at random.
 * KBENCH_AB=PATH also runs the canaryd binary PATH right after each
 * canaryd run, on the same preload, and adds its rows ("B: PATH"): an A/B
 * of two builds within one run (the idle run is the first binary's only).
 * KBENCH_RATE=R generates the events at R requests/s of event time instead
 * of 8000 (2000: 1 M events over ~7 minutes, filling the window rings).
 * KBENCH_BARE_PROPS="k=v,k=v" adds librdkafka properties to the bare
 * consumer (e.g. canaryd's prefetch limits, to see what they cost it).
 * KBENCH_KAFKA_PROPS="k=v,k=v" runs canaryd with config/sop.json plus those
 * kafka.properties (the sizing experiments of docs/live.md); KBENCH_DEBUG=1
 * prints every canaryd run's stderr; KBENCH_LOG_LEVEL=CANARYD_LOG_LEVEL=debug
 * replaces the throughput runs' CANARYD_LOG_LEVEL=info (with debug=fetch in
 * KBENCH_KAFKA_PROPS: librdkafka's fetch decisions). The environment passes
 * through to canaryd: CANARYD_KAFKA_NUDGE=0 measures it without its fetch
 * nudging (kafka_source.c), whose count each run logs ("kafka: N fetch
 * nudges", shown with KBENCH_DEBUG=1).
 *
 * Targets (issue 3): canaryd >= 0.8x the bare consumer; peak RSS <= 32 MB;
 * idle CPU <= 1 % of a core. Nothing is left running: every child is reaped
 * (killed past its deadline), the cluster is destroyed at exit.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "canaryd/simgen.h"
#include "kbench.h"

#define TOPIC "kbench"
/* Both consumers (bare and canaryd) run with these: librdkafka 2.0's mock
 * cluster holds a rebalance for session.timeout.ms - 1 s (44 s with the
 * default) when a member joins a group that is already up, so a second
 * consumer thread joining a moment late stalled one side for 44 s. The same
 * for both, so the comparison stays fair (docs/live.md). */
#define MOCK_SESSION_TIMEOUT_MS "6000"
#define MOCK_HEARTBEAT_MS "500"
#define ROUNDS 2
#define RUN_TIMEOUT_MS 180000

static const char *boot_g;
static long events_g;
static int partitions_g;

/* ---- preload ------------------------------------------------------------- */

/* Produces events_g events; total payload bytes, or 0. */
static size_t preload(void)
{
    char err[512];
    kb_loader_t l = {.topic = TOPIC, .partitions = partitions_g, .want = events_g};
    if (kb_loader_open(&l, boot_g, "bench_kafka")) return 0;
    cd_sim_conf_t sc;
    cd_sim_conf_init(&sc);
    /* KBENCH_RATE: requests/s of event time (default 8000: ~110 s for 1 M
     * events, 1.16 events per request), ending ~40 s ago. 2000 spreads 1 M
     * events over ~7 minutes, which fills the histogram ring (5.5 minutes
     * with config/sop.json): the peak RSS of an agent that meets a backlog
     * with its windows full. */
    const char *rs = getenv("KBENCH_RATE");
    sc.rate = rs && atof(rs) > 0 ? atof(rs) : 8000;
    int64_t span_s = (int64_t)((double)l.want / (1.16 * sc.rate)) + 1;
    sc.start_ms = (kb_real_ms() / 1000 - span_s - 40) * 1000;
    cd_sim_t *sim = cd_sim_new(&sc, err, sizeof err);
    if (!sim) {
        fprintf(stderr, "bench_kafka: generator: %s\n", err);
        rd_kafka_destroy(l.rk);
        return 0;
    }
    for (int64_t s = sc.start_ms; l.sent < l.want && !l.failed; s += 1000)
        cd_sim_second(sim, s, kb_load_cb, &l);
    cd_sim_destroy(sim);
    return kb_loader_close(&l, "bench_kafka") ? 0 : l.bytes;
}

/* ---- bare consumer --------------------------------------------------------- */

typedef struct bare {
    char group[64];
    atomic_long total;
    atomic_llong first_assign_ms, done_ms;
    atomic_int failed;
} bare_t;

static void bare_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    bare_t *b = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        long long zero = 0;
        atomic_compare_exchange_strong(&b->first_assign_ms, &zero, kb_real_ms());
        rd_kafka_assign(rk, parts);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

static void *bare_thread(void *arg)
{
    bare_t *b = arg;
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(c, kb_quiet_log);
    if (kb_set(c, "bootstrap.servers", boot_g) || kb_set(c, "group.id", b->group) ||
        kb_set(c, "auto.offset.reset", "earliest") ||
        kb_set(c, "session.timeout.ms", MOCK_SESSION_TIMEOUT_MS) ||
        kb_set(c, "heartbeat.interval.ms", MOCK_HEARTBEAT_MS)) {
        rd_kafka_conf_destroy(c);
        b->failed = 1;
        return NULL;
    }
    /* KBENCH_BARE_PROPS="k=v,k=v": more properties for the bare consumer
     * (e.g. canaryd's prefetch limits, to see what they cost it) */
    const char *bp = getenv("KBENCH_BARE_PROPS");
    if (bp && *bp) {
        char *dup = strdup(bp), *save = NULL;
        for (char *kv = strtok_r(dup, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            if (eq) *eq = '\0';
            if (!eq || kb_set(c, kv, eq + 1)) {
                fprintf(stderr, "bench_kafka: KBENCH_BARE_PROPS: bad property %s\n", kv);
                free(dup);
                rd_kafka_conf_destroy(c);
                b->failed = 1;
                return NULL;
            }
        }
        free(dup);
    }
    rd_kafka_conf_set_rebalance_cb(c, bare_rebalance);
    rd_kafka_conf_set_opaque(c, b);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "bench_kafka: consumer: %s\n", err);
        rd_kafka_conf_destroy(c);
        b->failed = 1;
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, TOPIC, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, t);
    rd_kafka_topic_partition_list_destroy(t);
    int64_t end = kb_mono_ns() + (int64_t)RUN_TIMEOUT_MS * 1000000;
    while (atomic_load(&b->total) < events_g && kb_mono_ns() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (!m->err && atomic_fetch_add(&b->total, 1) + 1 == events_g)
            atomic_store(&b->done_ms, kb_real_ms());
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return NULL;
}

/* In the child (bench_kafka --bare BOOT GROUP EVENTS THREADS): seconds from
 * first assignment to the last message; -1 on failure. */
static double bare_consume(int nthreads, const char *group)
{
    bare_t b;
    memset(&b, 0, sizeof b);
    snprintf(b.group, sizeof b.group, "%s", group);
    pthread_t th[2];
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, bare_thread, &b);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    if (b.failed || atomic_load(&b.total) < events_g || !b.done_ms || !b.first_assign_ms) {
        fprintf(stderr, "bench_kafka: bare consumer got %ld of %ld messages\n",
                (long)atomic_load(&b.total), events_g);
        return -1;
    }
    return (double)(b.done_ms - b.first_assign_ms) / 1e3;
}

typedef struct crun {
    double consume_s, wall_s, rss_mb, cpu_s;
} crun_t;

static double ru_cpu(const struct rusage *ru)
{
    return (double)ru->ru_utime.tv_sec + ru->ru_utime.tv_usec / 1e6 + (double)ru->ru_stime.tv_sec +
           ru->ru_stime.tv_usec / 1e6;
}

/* The bare consumer in a process of its own, like canaryd: this binary
 * again, with --bare. */
static int run_bare(int nthreads, int round, crun_t *out)
{
    char self[PATH_MAX], group[64], n[32], thr[16], outp[] = "/tmp/kbench-bare-XXXXXX";
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) return -1;
    self[sl] = '\0';
    snprintf(group, sizeof group, "kbench-bare-%d-%d-%d", nthreads, round, (int)getpid());
    snprintf(n, sizeof n, "%ld", events_g);
    snprintf(thr, sizeof thr, "%d", nthreads);
    char *argv[] = {self, "--bare", (char *)boot_g, group, n, thr, NULL};
    int ofd = mkstemp(outp);
    if (ofd < 0) return -1;
    unlink(outp);
    int64_t t0 = kb_mono_ns();
    pid_t pid = kb_spawn(argv, ofd, STDERR_FILENO, NULL);
    kb_child = pid;
    long hwm = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    int rc = pid > 0 ? kb_wait(pid, RUN_TIMEOUT_MS, &ru, &hwm) : -1;
    char *res = kb_slurp_fd(ofd);
    close(ofd);
    double s = res && rc == 0 ? strtod(res, NULL) : -1;
    free(res);
    if (s <= 0) {
        fprintf(stderr, "bench_kafka: bare consumer failed (exit %d)\n", rc);
        return -1;
    }
    out->consume_s = s;
    out->wall_s = (double)(kb_mono_ns() - t0) / 1e9;
    out->rss_mb = hwm / 1024.0;
    out->cpu_s = ru_cpu(&ru);
    return 0;
}

/* ---- canaryd --------------------------------------------------------------- */

/* Checks the `canaryd run: stats {...}` line: every event accepted, none
 * late, future or bad. */
static int check_stats(const char *log, const char *what)
{
    const char *s = strstr(log, "canaryd run: stats ");
    json_error_t je;
    json_t *j = s ? json_loadb(s + 19, strcspn(s + 19, "\n"), 0, &je) : NULL;
    json_int_t msgs = -1, acc = -1, late = -1, fut = -1, bad = -1;
    if (j)
        json_unpack(j, "{s:I,s:I,s:I,s:I,s:I}", "messages", &msgs, "accepted", &acc, "late", &late,
                    "future", &fut, "bad", &bad);
    json_decref(j);
    if (acc != events_g || late != 0 || fut != 0 || bad != 0 || msgs != events_g) {
        fprintf(stderr,
                "bench_kafka: %s: messages %lld, accepted %lld, late %lld, future %lld, bad %lld "
                "(want %ld accepted, 0 others)\n",
                what, (long long)msgs, (long long)acc, (long long)late, (long long)fut,
                (long long)bad, events_g);
        return -1;
    }
    return 0;
}

static int run_canaryd(const char *bin, const char *config, int threads, int round, crun_t *out)
{
    char group[64], thr[16], n[32], errp[] = "/tmp/kbench-err-XXXXXX";
    static int seq; /* each run its own group (KBENCH_AB runs two per round) */
    snprintf(group, sizeof group, "kbench-canaryd-%d-%d-%d-%d", threads, round, (int)getpid(),
             seq++);
    snprintf(thr, sizeof thr, "%d", threads);
    snprintf(n, sizeof n, "%ld", events_g);
    char *argv[] = {(char *)bin, "run", "--config", (char *)config, "--brokers", (char *)boot_g,
                    "--topic", TOPIC, "--group", group, "--threads", thr,
                    "--exit-after-events", n, NULL};
    int efd = mkstemp(errp);
    if (efd < 0) return -1;
    unlink(errp);
    int64_t t0 = kb_mono_ns();
    pid_t pid = kb_spawn(argv, -1, efd, getenv("KBENCH_LOG_LEVEL") ? getenv("KBENCH_LOG_LEVEL") : "CANARYD_LOG_LEVEL=info");
    kb_child = pid;
    long hwm = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    int rc = pid > 0 ? kb_wait(pid, RUN_TIMEOUT_MS, &ru, &hwm) : -1;
    double wall = (double)(kb_mono_ns() - t0) / 1e9;
    char *log = kb_slurp_fd(efd);
    close(efd);
    if (!log) return -1;
    int64_t first = -1, done = -1;
    char *stats = strstr(log, "canaryd run: stats ");
    int ok = rc == 0 && stats && check_stats(stats, "canaryd run") == 0;
    if (!ok || getenv("KBENCH_DEBUG"))
        fprintf(stderr, "bench_kafka: canaryd run exited %d; its stderr:\n%s\n", rc, log);
    char *save = NULL;
    for (char *l = strtok_r(log, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (first < 0 && strstr(l, "kafka: worker ") && strstr(l, " assigned ")) first = kb_log_line_ms(l);
        if (done < 0 && strstr(l, "messages counted: stopping")) done = kb_log_line_ms(l);
    }
    ok = ok && first > 0 && done >= first;
    if (!ok) fprintf(stderr, "bench_kafka: canaryd run failed (exit %d)\n", rc);
    free(log);
    if (!ok) return -1;
    out->consume_s = (double)(done - first) / 1e3;
    out->wall_s = wall;
    out->rss_mb = hwm / 1024.0;
    out->cpu_s = ru_cpu(&ru);
    return 0;
}

/* ---- peak RSS and idle CPU -------------------------------------------------- */

/* Sum of the committed offsets of group over the topic, or -1. */
static long committed(rd_kafka_t *rk)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions_g);
    for (int p = 0; p < partitions_g; p++)
        rd_kafka_topic_partition_list_add(l, TOPIC, p);
    long sum = -1;
    if (rd_kafka_committed(rk, l, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        sum = 0;
        for (int i = 0; i < l->cnt; i++)
            if (l->elems[i].offset > 0) sum += (long)l->elems[i].offset;
    }
    rd_kafka_topic_partition_list_destroy(l);
    return sum;
}

typedef struct idle {
    double hwm_mb, rss_mb, rss_after_mb, cpu_pct, caught_s, ticks, rdk_ticks, own_ticks;
    int seconds;
} idle_t;

static int run_idle(const char *bin, const char *config, idle_t *out)
{
    char group[64], err[512], errp[] = "/tmp/kbench-err-XXXXXX";
    snprintf(group, sizeof group, "kbench-idle-%d", (int)getpid());
    char *argv[] = {(char *)bin, "run", "--config", (char *)config, "--brokers", (char *)boot_g,
                    "--topic", TOPIC, "--group", group, NULL};
    const char *is = getenv("KBENCH_IDLE_SECONDS");
    out->seconds = is && atoi(is) > 0 ? atoi(is) : 20;

    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(c, kb_quiet_log);
    kb_set(c, "bootstrap.servers", boot_g);
    kb_set(c, "group.id", group);
    rd_kafka_t *q = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (!q) {
        fprintf(stderr, "bench_kafka: offsets client: %s\n", err);
        rd_kafka_conf_destroy(c);
        return -1;
    }
    int efd = mkstemp(errp);
    if (efd < 0) {
        rd_kafka_destroy(q);
        return -1;
    }
    unlink(errp);
    int64_t t0 = kb_mono_ns();
    pid_t pid = kb_spawn(argv, -1, efd, "CANARYD_LOG_LEVEL=info");
    kb_child = pid;
    long sum = -1;
    while (pid > 0 && kb_mono_ns() - t0 < (int64_t)RUN_TIMEOUT_MS * 1000000 &&
           waitpid(pid, NULL, WNOHANG) == 0) {
        sum = committed(q);
        if (sum >= events_g) break;
        kb_sleep_ms(500);
    }
    rd_kafka_destroy(q); /* not talking to the broker during the idle window */
    int rc = -1;
    if (sum >= events_g) {
        out->caught_s = (double)(kb_mono_ns() - t0) / 1e9;
        out->hwm_mb = kb_status_kb(pid, "VmHWM") / 1024.0;
        out->rss_mb = kb_status_kb(pid, "VmRSS") / 1024.0;
        long long c0 = kb_cpu_ticks(pid), r0, o0, r1, o1;
        kb_thread_ticks(pid, &r0, &o0);
        int64_t w0 = kb_mono_ns();
        kb_sleep_ms(out->seconds * 1000);
        long long c1 = kb_cpu_ticks(pid);
        kb_thread_ticks(pid, &r1, &o1);
        out->rdk_ticks = (double)(r1 - r0);
        out->own_ticks = (double)(o1 - o0);
        double secs = (double)(kb_mono_ns() - w0) / 1e9;
        out->rss_after_mb = kb_status_kb(pid, "VmRSS") / 1024.0;
        out->ticks = (double)(c1 - c0);
        out->cpu_pct = 100.0 * (double)(c1 - c0) / (double)sysconf(_SC_CLK_TCK) / secs;
        rc = c0 >= 0 && c1 >= c0 ? 0 : -1;
    } else {
        fprintf(stderr, "bench_kafka: idle run: committed offsets reached %ld of %ld\n", sum,
                events_g);
    }
    if (pid > 0) {
        kill(pid, SIGTERM);
        if (kb_wait(pid, 10000, NULL, NULL) != 0) rc = -1;
    }
    char *log = kb_slurp_fd(efd);
    close(efd);
    if (rc == 0 && (!log || check_stats(log, "idle run") != 0)) rc = -1;
    if (rc != 0 && log) fprintf(stderr, "bench_kafka: idle run's stderr:\n%s\n", log);
    free(log);
    return rc;
}

/* config/sop.json with kafka.properties from KBENCH_KAFKA_PROPS ("k=v,k=v"),
 * written to path: the sizing experiments in docs/live.md. */
static int props_config(const char *sop, const char *props, char *path)
{
    json_error_t je;
    json_t *c = json_load_file(sop, 0, &je), *pr = json_object();
    char *dup = strdup(props), *save = NULL;
    int rc = -1;
    for (char *kv = strtok_r(dup, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) goto out;
        *eq = '\0';
        json_object_set_new(pr, kv, json_string(eq + 1));
    }
    json_object_set_new(c, "kafka", json_pack("{s:O}", "properties", pr));
    int fd = mkstemps(path, 5);
    if (fd < 0) goto out;
    close(fd);
    rc = json_dump_file(c, path, JSON_INDENT(1));
out:
    free(dup);
    json_decref(pr);
    json_decref(c);
    return rc;
}

int main(int argc, char **argv)
{
    const char *config = "config/sop.json";
    const char *ps = getenv("KBENCH_PARTITIONS");
    char bin[PATH_MAX], boot[256];
    if (argc == 6 && strcmp(argv[1], "--bare") == 0) {
        boot_g = argv[2];
        events_g = strtol(argv[4], NULL, 10);
        double s = bare_consume(atoi(argv[5]) == 2 ? 2 : 1, argv[3]);
        printf("%.6f\n", s);
        return s > 0 ? 0 : 1;
    }
    events_g = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    partitions_g = ps && atoi(ps) > 0 ? atoi(ps) : 64;
    if (events_g <= 0) {
        fprintf(stderr, "usage: bench_kafka [EVENTS > 0]\n");
        return 2;
    }
    if (kb_canaryd_bin(bin, sizeof bin) != 0 || access(config, R_OK) != 0) {
        fprintf(stderr, "bench_kafka: need %s and %s (run from the repository root)\n", bin,
                config);
        return 2;
    }
    kb_signals();
    const char *uprops = getenv("KBENCH_KAFKA_PROPS");
    static char pcfg[] = "/tmp/kbench-props-XXXXXX.json";
    char props[1024];
    snprintf(props, sizeof props,
             "session.timeout.ms=" MOCK_SESSION_TIMEOUT_MS
             ",heartbeat.interval.ms=" MOCK_HEARTBEAT_MS "%s%s",
             uprops && *uprops ? "," : "", uprops && *uprops ? uprops : "");
    if (props_config(config, props, pcfg) != 0) {
        fprintf(stderr, "bench_kafka: KBENCH_KAFKA_PROPS: want k=v,k=v\n");
        return 2;
    }
    const char *label = "config/sop.json";
    /* The idle run measures the agent as deployed: config/sop.json with only
     * the user's properties, librdkafka's own session and heartbeat timing
     * (the mock's 500 ms heartbeats would be idle work of their own). One
     * group joining at once, so the mock's rebalance hold does not apply. */
    static char icfg[] = "/tmp/kbench-idle-XXXXXX.json";
    const char *idle_config = config;
    if (uprops && *uprops) {
        if (props_config(config, uprops, icfg) != 0) {
            fprintf(stderr, "bench_kafka: KBENCH_KAFKA_PROPS: want k=v,k=v\n");
            unlink(pcfg);
    if (idle_config == icfg) unlink(icfg);
            return 2;
        }
        idle_config = icfg;
    }
    config = pcfg;
    rd_kafka_t *holder = NULL;
    rd_kafka_mock_cluster_t *mc = kb_mock_new(&holder, TOPIC, partitions_g, boot, sizeof boot);
    if (!mc) return 1;
    boot_g = boot;

    int rc = 1;
    int64_t t0 = kb_mono_ns();
    size_t bytes = preload();
    double load_s = (double)(kb_mono_ns() - t0) / 1e9;
    if (!bytes) goto out;

    crun_t bare[3], cd[3], cdb[3];
    for (int t = 1; t <= 2; t++)
        bare[t] = cd[t] = cdb[t] = (crun_t){.consume_s = 1e30};
    const char *ab = getenv("KBENCH_AB");
    for (int r = 0; r < ROUNDS; r++) {
        for (int t = 1; t <= 2; t++) {
            crun_t b, c;
            if (run_bare(t, r, &b) != 0 || run_canaryd(bin, config, t, r, &c) != 0) goto out;
            if (b.consume_s < bare[t].consume_s) bare[t] = b;
            if (c.consume_s < cd[t].consume_s) cd[t] = c;
            /* KBENCH_AB: another canaryd binary, right after this one, on the
             * same preload (an A/B in one run; its row is "B"). */
            if (ab && *ab) {
                if (run_canaryd(ab, config, t, r, &c) != 0) goto out;
                if (c.consume_s < cdb[t].consume_s) cdb[t] = c;
            }
        }
    }
    idle_t idle;
    if (run_idle(bin, idle_config, &idle) != 0) goto out;

    double mb = (double)bytes / 1e6;
    double best_bare = bare[1].consume_s < bare[2].consume_s ? bare[1].consume_s : bare[2].consume_s;
    printf("### bench_kafka: %ld events (%.1f MB, %.0f bytes/event), mock broker in process, "
           "%d partitions, best of %d rounds\n\n",
           events_g, mb, (double)bytes / (double)events_g, partitions_g, ROUNDS);
    printf("Preload (simgen + produce + flush): %.2f s, %.0f events/s. canaryd's config: "
           "config/sop.json with kafka.properties %s for the throughput runs (the first two for "
           "both consumers: the mock's rebalance hold); the idle run uses config/sop.json as it "
           "is.\n\n",
           load_s, (double)events_g / load_s, props);
    printf("| consumer | threads | assignment to last event, s | events/s | MB/s | x best bare | "
           "process wall s | process CPU s | peak RSS MB |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int t = 1; t <= 2; t++)
        printf("| bare librdkafka consumer (bench_kafka --bare: poll, discard) | %d | %.3f | %.0f | "
               "%.1f | %.2f | %.2f | %.2f | %.1f |\n",
               t, bare[t].consume_s, events_g / bare[t].consume_s, mb / bare[t].consume_s,
               best_bare / bare[t].consume_s, bare[t].wall_s, bare[t].cpu_s, bare[t].rss_mb);
    for (int t = 1; t <= 2; t++)
        printf("| canaryd run --config %s --threads %d | %d | %.3f | %.0f | %.1f | **%.2f** | %.2f "
               "| %.2f | %.1f |\n",
               label, t, t, cd[t].consume_s, events_g / cd[t].consume_s, mb / cd[t].consume_s,
               best_bare / cd[t].consume_s, cd[t].wall_s, cd[t].cpu_s, cd[t].rss_mb);
    for (int t = 1; ab && *ab && t <= 2; t++)
        printf("| B: %s --threads %d | %d | %.3f | %.0f | %.1f | **%.2f** | %.2f | %.2f | %.1f |\n",
               ab, t, t, cdb[t].consume_s, events_g / cdb[t].consume_s, mb / cdb[t].consume_s,
               best_bare / cdb[t].consume_s, cdb[t].wall_s, cdb[t].cpu_s, cdb[t].rss_mb);
    printf("\n| canaryd run --config %s (default threads), %ld events consumed, then idle | "
           "value | target |\n|---|---:|---:|\n",
           label, events_g);
    printf("| committed offsets reached the end after | %.1f s | |\n", idle.caught_s);
    printf("| VmHWM (peak RSS) after consuming | %.1f MB | <= 32 MB |\n", idle.hwm_mb);
    printf("| VmRSS after consuming / after %d s idle | %.1f / %.1f MB | |\n", idle.seconds,
           idle.rss_mb, idle.rss_after_mb);
    printf("| idle CPU, utime+stime over %d s with no events | %.2f %% of a core (%.0f ticks) | "
           "<= 1 %% |\n",
           idle.seconds, idle.cpu_pct, idle.ticks);
    printf("| of which librdkafka's threads (rdk:*) / canaryd's own (main, workers, live clock, "
           "sinks) | %.0f / %.0f ticks | |\n",
           idle.rdk_ticks, idle.own_ticks);
    printf("\nbest canaryd / best bare consumer: %.2f (target >= 0.8)\n",
           best_bare / (cd[1].consume_s < cd[2].consume_s ? cd[1].consume_s : cd[2].consume_s));
    rc = 0;
out:
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(holder);
    unlink(pcfg);
    if (idle_config == icfg) unlink(icfg);
    return rc;
}
