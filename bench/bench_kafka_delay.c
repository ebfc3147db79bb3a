/*
 * bench_kafka_delay.c - verdict delay of `canaryd run`: the time from
 * consuming the event that makes a rule fire to the verdict line being
 * written.
 *
 *   bash tools/build && build/release/bench_kafka_delay [TRIALS]   (from the repo root)
 *   (or bash bench/run, which runs every benchmark)
 *
 * Setup: an in-process mock cluster (kbench.h), topic of 1 partition;
 * canaryd run (default threads) with config/sop.json plus 14 trial rules,
 * one per (event type, cohort): threshold count > 0 over a 2s window, for
 * 0s, resolve_for 0s, action alert; verdicts.alert_repeat_interval 2500ms;
 * kafka.properties fetch.wait.max.ms 10 (the mock answers an empty fetch
 * only after that wait: it only shortens the trials, not what is measured).
 * Each trial is one event, timestamped now, of the next (type, cohort) in
 * turn, every KBENCH_PACE_MS (default 200 ms): a rule sees its next event
 * 14 x 200 ms = 2.8 s later, after it has resolved (its window is clear
 * 2 s after the event) and after alert_repeat_interval, so every trial
 * fires its rule anew and yields exactly one ALERT line, and a firing rule
 * never repeats its ALERT in between.
 *
 * What is timed, on CLOCK_MONOTONIC (one clock for both processes):
 *   start: canaryd's consume trace (CANARYD_TRACE_CONSUME=1,
 *          agent/source/kafka_source.c): when rd_kafka_consumer_poll returned the
 *          trial's message, before decoding;
 *   end:   when this process read the ALERT line from canaryd's stdout (a
 *          pipe; canaryd flushes after every record): an upper bound on the
 *          write, including the pipe and this process's wake-up.
 * The k-th ALERT of a rule is the k-th trial of that rule (no repeats, see
 * above); the message is identified by its offset from the delivery
 * report. Also shown: produce -> consume (the broker and fetch path) and
 * produce -> line. Trials whose ALERT is missing or extra are counted and
 * reported. No other traffic: the SOP rules are evaluated with no data.
 * KBENCH_PACE_MS (>= 200) sets the pace; KBENCH_DEBUG=1 echoes every line
 * canaryd writes. Target (issue 3): p99 <= 50 ms.
 */
#include <jansson.h>
#include <poll.h>
#include <stdbool.h>

#include "kbench.h"

#define TOPIC "kbench-delay"
#define NRULES 14
#define MAX_WARMUP 60

static const char *const types[7] = {"REQUEST_COMPLETED", "ERROR_OCCURRED", "USER_LOGIN",
                                     "USER_LOGIN_FAILED", "PAYMENT_COMPLETED", "PAYMENT_FAILED",
                                     "AUDIT_LOG_FAILED"};

typedef struct bench {
    int ntrials;
    int64_t *produce_ns, *offset; /* per trial */
    int64_t *consume_ns;          /* per offset */
    int64_t *recv_ns[NRULES];     /* per rule, per ALERT */
    int nrecv[NRULES], extra;
    int64_t max_offset;
    bool warm;
} bench_t;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    bench_t *b = opaque;
    long i = (long)(intptr_t)m->_private - 1; /* -1: warm-up */
    (void)rk;
    if (!m->err && i >= 0 && i < b->ntrials) b->offset[i] = m->offset;
}

/* Writes config/sop.json + the trial rules to path. */
static int write_config(const char *sop, const char *path)
{
    json_error_t je;
    json_t *c = json_load_file(sop, 0, &je);
    if (!c) {
        fprintf(stderr, "bench_kafka_delay: %s: %s\n", sop, je.text);
        return -1;
    }
    json_t *rules = json_object_get(c, "rules");
    for (int r = 0; r < NRULES; r++) {
        char name[32];
        snprintf(name, sizeof name, "delay-%d", r);
        json_array_append_new(
            rules, json_pack("{s:s,s:s,s:[s],s:s,s:s,s:i,s:s,s:s,s:s,s:s}", "name", name, "kind",
                             "threshold", "numerator", types[r % 7], "scope",
                             r < 7 ? "canary" : "stable", "op", ">", "threshold", 0, "window",
                             "2s", "for", "0s", "resolve_for", "0s", "action", "alert"));
    }
    json_object_set_new(json_object_get(c, "verdicts"), "alert_repeat_interval",
                        json_string("2500ms"));
    json_object_set_new(c, "kafka",
                        json_pack("{s:{s:s}}", "properties", "fetch.wait.max.ms", "10"));
    int rc = json_dump_file(c, path, JSON_INDENT(1));
    json_decref(c);
    return rc;
}

/* Sends trial i (i < 0: a warm-up event of a type no rule watches). */
static int send_event(rd_kafka_t *p, bench_t *b, int i)
{
    char line[512];
    int r = i < 0 ? 0 : i % NRULES;
    int n = snprintf(line, sizeof line,
                     "{\"event_type\":\"%s\",\"timestamp\":%lld,\"cohort\":\"%s\",\"service\":"
                     "\"checkout\",\"version\":\"2.5.0\",\"request_id\":\"bench-%d\",\"data\":{"
                     "\"latency_ms\":12.5}}",
                     i < 0 ? "WARMUP" : types[r % 7], (long long)kb_real_ms(),
                     r < 7 ? "canary" : "stable", i);
    if (i >= 0) b->produce_ns[i] = kb_mono_ns();
    rd_kafka_resp_err_t e = rd_kafka_producev(
        p, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_VALUE(line, (size_t)n),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE((void *)(intptr_t)(i + 1)),
        RD_KAFKA_V_END);
    rd_kafka_poll(p, 0);
    return e ? -1 : 0;
}

static void on_line(bench_t *b, char *l, bool is_err, int64_t now)
{
    if (getenv("KBENCH_DEBUG")) fprintf(stderr, "bench: %s: %s\n", is_err ? "err" : "out", l);
    if (is_err) {
        long long off, ns;
        const char *t = strstr(l, "canaryd trace: consumed ");
        if (!t) {
            if (*l) fprintf(stderr, "canaryd: %s\n", l);
            return;
        }
        if (sscanf(strchr(t, '@'), "@%lld mono_ns %lld", &off, &ns) == 2 && off >= 0 &&
            off <= b->max_offset)
            b->consume_ns[off] = ns;
        b->warm = true;
        return;
    }
    json_error_t je;
    json_t *j = json_loads(l, 0, &je);
    const char *kind = NULL, *verdict = NULL, *rule = NULL;
    if (j && json_unpack(j, "{s:s,s?s,s?s}", "kind", &kind, "verdict", &verdict, "rule", &rule) ==
                 0 &&
        strcmp(kind, "verdict") == 0 && verdict && strcmp(verdict, "ALERT") == 0 && rule &&
        strncmp(rule, "delay-", 6) == 0) {
        int r = atoi(rule + 6);
        if (r >= 0 && r < NRULES) {
            if (b->nrecv[r] < b->ntrials / NRULES + 1)
                b->recv_ns[r][b->nrecv[r]++] = now;
            else
                b->extra++;
        }
    }
    json_decref(j);
}

/* Reads what is there on fd into acc (lines handed to on_line). 0 at EOF. */
static int drain(bench_t *b, int fd, char *acc, size_t *len, size_t cap, bool is_err)
{
    ssize_t n = read(fd, acc + *len, cap - *len - 1);
    if (n <= 0) return n == 0 ? 0 : 1;
    int64_t now = kb_mono_ns();
    *len += (size_t)n;
    acc[*len] = '\0';
    char *s = acc, *nl;
    while ((nl = strchr(s, '\n'))) {
        *nl = '\0';
        on_line(b, s, is_err, now);
        s = nl + 1;
    }
    *len -= (size_t)(s - acc);
    memmove(acc, s, *len);
    if (*len == cap - 1) *len = 0; /* an overlong line: dropped */
    return 1;
}

static void report(const char *what, int64_t *v, size_t n)
{
    qsort(v, n, sizeof(*v), kb_cmp_i64);
    printf("| %s | %zu | %.2f | %.2f | %.2f | %.2f |\n", what, n, kb_quantile(v, n, 0.5) / 1e6,
           kb_quantile(v, n, 0.9) / 1e6, kb_quantile(v, n, 0.99) / 1e6,
           n ? v[n - 1] / 1e6 : 0.0);
}

int main(int argc, char **argv)
{
    char bin[PATH_MAX], boot[256], err[512], cfgp[] = "/tmp/kbench-delay-XXXXXX.json";
    const char *pace_env = getenv("KBENCH_PACE_MS");
    int pace_ms = pace_env && atoi(pace_env) >= 200 ? atoi(pace_env) : 200;
    bench_t b = {.ntrials = argc > 1 ? atoi(argv[1]) : 300};
    if (b.ntrials < NRULES || b.ntrials > 100000) {
        fprintf(stderr, "usage: bench_kafka_delay [TRIALS %d..100000]\n", NRULES);
        return 2;
    }
    if (kb_canaryd_bin(bin, sizeof bin) != 0 || access("config/sop.json", R_OK) != 0) {
        fprintf(stderr, "bench_kafka_delay: need %s and config/sop.json (run from the repo root)\n",
                bin);
        return 2;
    }
    kb_signals();
    b.max_offset = b.ntrials + MAX_WARMUP + 16;
    b.produce_ns = calloc((size_t)b.ntrials, sizeof(int64_t));
    b.offset = calloc((size_t)b.ntrials, sizeof(int64_t));
    b.consume_ns = calloc((size_t)b.max_offset + 1, sizeof(int64_t));
    for (int r = 0; r < NRULES; r++)
        b.recv_ns[r] = calloc((size_t)(b.ntrials / NRULES + 1), sizeof(int64_t));
    int cfd = mkstemps(cfgp, 5);
    if (cfd < 0 || !b.consume_ns || !b.recv_ns[NRULES - 1]) return 1;
    close(cfd);
    if (write_config("config/sop.json", cfgp) != 0) {
        unlink(cfgp);
        return 1;
    }
    for (int i = 0; i < b.ntrials; i++)
        b.offset[i] = -1;

    int rc = 1;
    rd_kafka_t *holder = NULL, *prod = NULL;
    pid_t pid = -1;
    int out[2] = {-1, -1}, errp[2] = {-1, -1};
    rd_kafka_mock_cluster_t *mc = kb_mock_new(&holder, TOPIC, 1, boot, sizeof boot);
    if (!mc) goto out;
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(c, kb_quiet_log);
    rd_kafka_conf_set_dr_msg_cb(c, dr_cb);
    rd_kafka_conf_set_opaque(c, &b);
    if (kb_set(c, "bootstrap.servers", boot) || kb_set(c, "linger.ms", "0")) {
        rd_kafka_conf_destroy(c);
        goto out;
    }
    prod = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!prod) {
        fprintf(stderr, "bench_kafka_delay: producer: %s\n", err);
        rd_kafka_conf_destroy(c);
        goto out;
    }
    if (pipe(out) != 0 || pipe(errp) != 0) goto out;
    setenv("CANARYD_LOG_LEVEL", "warn", 1);
    char *args[] = {bin, "run", "--config", cfgp, "--brokers", boot, "--topic", TOPIC,
                    "--group", "kbench-delay", NULL};
    pid = kb_spawn(args, out[1], errp[1], "CANARYD_TRACE_CONSUME=1");
    kb_child = pid;
    close(out[1]), close(errp[1]);
    out[1] = errp[1] = -1;
    if (pid < 0) goto out;

    static char acc_out[1 << 16], acc_err[1 << 16];
    size_t len_out = 0, len_err = 0;
    int64_t t0 = kb_mono_ns(), next = t0;
    int sent = 0, warmups = 0;
    bool eof = false, started = false;
    /* Warm up until canaryd consumes (group joined), then the trials; then
     * wait for the last ALERTs (at most 3 s). */
    for (;;) {
        int64_t now = kb_mono_ns();
        if (!b.warm) {
            if (now - t0 > 30 * 1000000000LL || warmups >= MAX_WARMUP) {
                fprintf(stderr, "bench_kafka_delay: canaryd consumed nothing in 30 s\n");
                goto out;
            }
            if (now >= next) {
                send_event(prod, &b, -1);
                warmups++;
                next = now + 500 * 1000000LL;
            }
        } else if (sent < b.ntrials) {
            if (!started) { /* a second after the warm-up, in case of a rebalance */
                started = true;
                next = now + 1000 * 1000000LL;
            }
            if (now >= next) {
                if (send_event(prod, &b, sent) != 0) goto out;
                sent++;
                next += (int64_t)pace_ms * 1000000;
            }
        } else {
            int got = 0;
            for (int r = 0; r < NRULES; r++)
                got += b.nrecv[r];
            if (got >= b.ntrials || now - next > 3000 * 1000000LL || eof) break;
        }
        rd_kafka_poll(prod, 0);
        struct pollfd pf[2] = {{out[0], POLLIN, 0}, {errp[0], POLLIN, 0}};
        int wait = next > now ? (int)((next - now) / 1000000) : 0;
        if (poll(pf, 2, wait > 5 ? 5 : wait) > 0) {
            if (pf[0].revents && !drain(&b, out[0], acc_out, &len_out, sizeof acc_out, false))
                eof = true;
            if (pf[1].revents) drain(&b, errp[0], acc_err, &len_err, sizeof acc_err, true);
        }
        if (eof) {
            fprintf(stderr, "bench_kafka_delay: canaryd exited early\n");
            goto out;
        }
    }
    rd_kafka_flush(prod, 5000);

    int64_t *d = calloc((size_t)b.ntrials, sizeof(int64_t)), *fetch = calloc((size_t)b.ntrials, 8),
            *e2e = calloc((size_t)b.ntrials, 8);
    size_t nd = 0, missed = 0, notraced = 0;
    for (int i = 0; d && fetch && e2e && i < b.ntrials; i++) {
        int r = i % NRULES, k = i / NRULES;
        int64_t off = b.offset[i];
        int64_t cns = off >= 0 && off <= b.max_offset ? b.consume_ns[off] : 0;
        if (k >= b.nrecv[r]) {
            missed++;
            continue;
        }
        if (!cns || b.recv_ns[r][k] < cns) {
            notraced++;
            continue;
        }
        d[nd] = b.recv_ns[r][k] - cns;
        fetch[nd] = cns - b.produce_ns[i];
        e2e[nd++] = b.recv_ns[r][k] - b.produce_ns[i];
    }
    printf("### bench_kafka_delay: %d trials, one event every %d ms, %d rules (SOP + 14 trial "
           "rules), canaryd default threads, mock broker in process\n\n",
           b.ntrials, pace_ms, 6 + NRULES);
    printf("| interval | trials | p50 ms | p90 ms | p99 ms | max ms |\n");
    printf("|---|---:|---:|---:|---:|---:|\n");
    report("**consume (canaryd's poll returned it) -> ALERT line read from canaryd's stdout**", d,
           nd);
    report("produce -> consume (broker, fetch.wait.max.ms 10)", fetch, nd);
    report("produce -> ALERT line", e2e, nd);
    printf("\nALERT missing: %zu trials; ALERT without a consume trace (or before it): %zu; "
           "extra ALERTs: %d. Target: p99 <= 50 ms (%s).\n",
           missed, notraced, b.extra,
           nd && kb_quantile(d, nd, 0.99) <= 50 * 1000000LL ? "met" : "NOT met");
    rc = nd > 0 && missed == 0 && notraced == 0 && b.extra == 0 ? 0 : 1;
    free(d), free(fetch), free(e2e);
out:
    if (pid > 0) {
        kill(pid, SIGTERM);
        /* keep draining so that canaryd never blocks on a full pipe while stopping */
        int64_t end = kb_mono_ns() + 10000 * 1000000LL;
        int st = 0;
        pid_t w;
        while ((w = waitpid(pid, &st, WNOHANG)) == 0 && kb_mono_ns() < end) {
            char sink[4096];
            struct pollfd pf[2] = {{out[0], POLLIN, 0}, {errp[0], POLLIN, 0}};
            if (poll(pf, 2, 10) > 0) {
                if (pf[0].revents && read(out[0], sink, sizeof sink) <= 0) close(out[0]), out[0] = -1;
                if (pf[1].revents && read(errp[0], sink, sizeof sink) <= 0) close(errp[0]), errp[0] = -1;
            }
        }
        if (w == 0) {
            fprintf(stderr, "bench_kafka_delay: canaryd did not stop in 10 s: killed\n");
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            rc = 1;
        } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "bench_kafka_delay: canaryd exited with status %d\n", st);
            rc = 1;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0) close(out[i]);
        if (errp[i] >= 0) close(errp[i]);
    }
    if (prod) rd_kafka_destroy(prod);
    if (mc) rd_kafka_mock_cluster_destroy(mc);
    if (holder) rd_kafka_destroy(holder);
    unlink(cfgp);
    free(b.produce_ns), free(b.offset), free(b.consume_ns);
    for (int r = 0; r < NRULES; r++)
        free(b.recv_ns[r]);
    return rc;
}
