/*
 * test_live_scenarios.c - the deployment procedure's scenarios produced live
 * and judged live, with the demo config (config/demo.json), as `bash
 * tools/demo` runs them: one canaryd-mock-kafka ($CANARYD_TOOLS_DIR), and per
 * scenario its own topic (8 partitions) and group, a `canaryd simulate
 * --rate 1000 --onset 20s` and a `canaryd run --threads 2` (CANARYD_BIN), all
 * child processes. The seven scenarios run concurrently, so the suite takes as
 * long as the slowest one (healthy: PROMOTE at about 2m10s, then the stop).
 *
 * The simulator's stream is a pure function of its seed and of each
 * second's offset from its start (simgen.h), so the live events are those a
 * replay of `canaryd generate --onset 20s --rate 1000` sees; what live mode
 * adds is timing. The expectations are therefore the replay's verdicts with
 * bounds that follow from the config rather than exact seconds:
 *   - the deciding verdict (kind and rule), and no ROLLBACK where none is due;
 *   - not before it can be: a ROLLBACK not before onset + the rule's `for`,
 *     and its rule's pending -> firing not before `for` after the last
 *     inactive -> pending; a PROMOTE not before `promote_after` (2m) after the
 *     HEALTHY it follows; an audit ALERT not before the onset;
 *   - not later than onset + window + `for` + SLACK_S (live noise: the
 *     machine is shared, the suite also runs under ASan);
 *   - every process exits 0 (the agent and the broker on SIGTERM, the
 *     simulator on SIGTERM after delivering everything), and the agent
 *     counted exactly what the simulator delivered, with nothing bad, late
 *     or future: the simulator is stopped first, and the agent, started with
 *     --exit-when-idle 5s, stops by itself once it has consumed the rest.
 *
 * Times: a record's "time" is the wall-clock time of the evaluation; the
 * simulator's start (a whole second) comes from its start line on stderr.
 * The driver waits in poll() on the agents' stdout pipes (records arrive as
 * JSON lines) and on pidfds (a child exiting); nothing sleeps in place of a
 * condition. A scenario with a final verdict (ROLLBACK, PROMOTE) is stopped
 * GRACE_MS after it, an alert scenario OBSERVE_S after its start, and any
 * scenario early when a ROLLBACK comes that should not, or when its deadline
 * passes without its verdict.
 *
 * Cleanup: every child gets PR_SET_PDEATHSIG(SIGKILL) (it dies with this
 * process even if this process crashes), and the suite's fini kills and
 * reaps whatever a failed assertion left running, then removes the work
 * folder.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "live_helpers.h"

#include "canaryd/timeutil.h"

#define NSCEN 7
#define ONSET_S 20
/* live noise on top of what the config implies (LH_BOUND: wider under TSan) */
#define SLACK_S LH_BOUND(20)
#define GRACE_MS 3000     /* keep watching after a final verdict */
#define OBSERVE_S 100     /* how long an alert scenario is watched */
#define SUITE_LIMIT_S 280 /* everything stops by then, pass or fail */
#define MAX_RECORDS 512

/* What one scenario must yield. Bounds are seconds after the simulator's
 * start; the demo config's rules: error-rate window 30s for 20s,
 * payment-success and login-failure-spike window 30s for 10s,
 * audit-log-failures for 0s, promote_after 2m. */
typedef struct expect {
    const char *scenario;
    const char *verdict; /* "ROLLBACK", "PROMOTE" or "ALERT" */
    const char *rule;    /* the rule that decides; NULL for PROMOTE */
    int for_s;           /* the rule's `for` */
    int lo_s, hi_s;      /* the verdict's time, after the start */
} expect_t;

static const expect_t EXPECT[NSCEN] = {
    {"error-regression", "ROLLBACK", "error-rate", 20, ONSET_S + 20, ONSET_S + 30 + 20 + SLACK_S},
    {"payment-drop", "ROLLBACK", "payment-success", 10, ONSET_S + 10, ONSET_S + 30 + 10 + SLACK_S},
    {"login-spike-canary", "ROLLBACK", "login-failure-spike", 10, ONSET_S + 10,
     ONSET_S + 30 + 10 + SLACK_S},
    {"login-spike-fleet", "ALERT", "login-failure-spike", 10, ONSET_S + 10,
     ONSET_S + 30 + 10 + SLACK_S},
    {"audit-failure", "ALERT", "audit-log-failures", 0, ONSET_S, ONSET_S + 1 + SLACK_S},
    /* The canary's pods die at the onset: canary-silence (window 20s, for
     * 10s) sees its 20s window at <= 10 % of what its share predicts. */
    {"canary-crash", "ROLLBACK", "canary-silence", 10, ONSET_S + 10,
     ONSET_S + 20 + 10 + SLACK_S},
    /* HEALTHY needs each rule's minimum samples in a 30s window, then 2m. */
    {"healthy", "PROMOTE", NULL, 0, 120, 30 + 120 + SLACK_S},
};

/* Under TSan (CMakeLists.txt, CANARYD_TSAN_SUITES) two of the seven run:
 * every agent runs the same threads whatever its scenario (`canaryd run
 * --threads 2`: workers, nudger, prober, clock, dispatcher; the simulator's
 * producer), and what differs between scenarios is the rules, pure code
 * the plain and ASan builds check. error-regression is the ratio rule's
 * ROLLBACK, events flowing; canary-crash the silence rule's, judged by the
 * clock while the canary's events stop. Seven TSan agents at 1000 events/s
 * and the healthy one's 2m10s would cost the TSan stage minutes. */
static bool wanted(const expect_t *e)
{
#ifdef __SANITIZE_THREAD__
    return strcmp(e->scenario, "error-regression") == 0 || strcmp(e->scenario, "canary-crash") == 0;
#else
    (void)e;
    return true;
#endif
}

typedef struct rec {
    char kind[16], verdict[16], rule[64], from[16], to[16];
    int64_t t; /* epoch ms */
} rec_t;

typedef struct scen {
    const expect_t *e;
    pid_t sim, run;
    int sim_pidfd, run_pidfd, out_fd;
    int sim_status, run_status; /* waitpid status; -1 not reaped */
    char buf[1 << 16];
    size_t len;
    rec_t recs[MAX_RECORDS];
    int nrecs, bad_lines;
    char bad_sample[200];
    int64_t start;   /* simulator's start, epoch ms; -1 not known yet */
    int64_t stop_at; /* epoch ms; -1 not decided */
    bool stopped, failed;
    char why_stopped[96];
} scen_t;

static pid_t broker = -1;
static scen_t *sc;

/* ---- helpers ------------------------------------------------------------------ */

/* The file of one scenario: <folder>/<scenario><suffix>. */
static const char *scen_file(const char *scenario, const char *suffix)
{
    char name[160];
    snprintf(name, sizeof(name), "%s%s", scenario, suffix);
    return path_of(name);
}

static int pidfd_of(pid_t pid)
{
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    cr_assert_geq(fd, 0, "pidfd_open: %s", strerror(errno));
    return fd;
}

/* ---- records -------------------------------------------------------------------- */

static void copy_str(char *dst, size_t n, json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    snprintf(dst, n, "%s", s ? s : "");
}

static void on_line(scen_t *s, const char *line, size_t len)
{
    json_error_t je;
    json_t *j = json_loadb(line, len, 0, &je);
    rec_t r;
    memset(&r, 0, sizeof(r));
    const char *t = j ? json_string_value(json_object_get(j, "time")) : NULL;
    if (!j || !t || !cd_time_parse_rfc3339(t, strlen(t), &r.t) || s->nrecs == MAX_RECORDS) {
        if (s->bad_lines++ == 0)
            snprintf(s->bad_sample, sizeof(s->bad_sample), "%.*s", (int)(len < 150 ? len : 150),
                     line);
        json_decref(j);
        return;
    }
    copy_str(r.kind, sizeof(r.kind), j, "kind");
    copy_str(r.verdict, sizeof(r.verdict), j, "verdict");
    copy_str(r.rule, sizeof(r.rule), j, "rule");
    copy_str(r.from, sizeof(r.from), j, "from");
    copy_str(r.to, sizeof(r.to), j, "to");
    s->recs[s->nrecs++] = r;
    json_decref(j);
}

/* Reads what is there; returns false at EOF. */
static bool read_records(scen_t *s)
{
    for (;;) {
        if (s->len == sizeof(s->buf)) { /* a line longer than 64 KiB: count it, drop it */
            on_line(s, s->buf, s->len);
            s->len = 0;
        }
        ssize_t n = read(s->out_fd, s->buf + s->len, sizeof(s->buf) - s->len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return true; /* EAGAIN */
        if (n == 0) return false;
        s->len += (size_t)n;
        char *nl;
        while ((nl = memchr(s->buf, '\n', s->len))) {
            on_line(s, s->buf, (size_t)(nl - s->buf));
            size_t rest = s->len - (size_t)(nl + 1 - s->buf);
            memmove(s->buf, nl + 1, rest);
            s->len = rest;
        }
    }
}

/* The first verdict record of kind v (and rule, if not NULL); -1 if none. */
static int find_verdict(const scen_t *s, const char *v, const char *rule, int from)
{
    for (int i = from; i < s->nrecs; i++)
        if (strcmp(s->recs[i].kind, "verdict") == 0 && strcmp(s->recs[i].verdict, v) == 0 &&
            (!rule || strcmp(s->recs[i].rule, rule) == 0))
            return i;
    return -1;
}

static int count_verdicts(const scen_t *s, const char *v)
{
    int n = 0;
    for (int i = 0; i < s->nrecs; i++)
        n += strcmp(s->recs[i].kind, "verdict") == 0 && strcmp(s->recs[i].verdict, v) == 0;
    return n;
}

/* The simulator's start, from "simulate: scenario X from <time> (onset". */
static void find_start(scen_t *s)
{
    char *txt = slurp(scen_file(s->e->scenario, ".sim.err"));
    const char *p = strstr(txt, "simulate: scenario ");
    const char *from = p ? strstr(p, " from ") : NULL;
    const char *end = from ? strstr(from, " (onset") : NULL;
    int64_t t;
    if (end && cd_time_parse_rfc3339(from + 6, (size_t)(end - from - 6), &t)) s->start = t;
    free(txt);
}

/* ---- running --------------------------------------------------------------------- */

static void start_broker(char *addr, size_t n)
{
    const char *tools = getenv("CANARYD_TOOLS_DIR");
    cr_assert_not_null(tools, "CANARYD_TOOLS_DIR is not set");
    char bin[512];
    snprintf(bin, sizeof(bin), "%s/canaryd-mock-kafka", tools);
    char *argv[2 * NSCEN + 2];
    char topics[NSCEN][64];
    int k = 0;
    argv[k++] = bin;
    for (int i = 0; i < NSCEN; i++) {
        snprintf(topics[i], sizeof(topics[i]), "%s:8", EXPECT[i].scenario);
        argv[k++] = "--topic";
        argv[k++] = topics[i];
    }
    argv[k] = NULL;
    int out;
    broker = spawn_child(argv, NULL, NULL, path_of("broker.err"), &out);
    /* The first line of its stdout is the bootstrap address. */
    size_t len = 0;
    int64_t deadline = now_ms() + 15000;
    while (!memchr(addr, '\n', len)) {
        struct pollfd pf = {.fd = out, .events = POLLIN};
        int left = (int)(deadline - now_ms());
        cr_assert_gt(left, 0, "canaryd-mock-kafka printed no address within 15 s");
        if (poll(&pf, 1, left) <= 0) continue;
        ssize_t r = read(out, addr + len, n - 1 - len);
        cr_assert_gt(r, 0, "canaryd-mock-kafka exited before printing its address");
        len += (size_t)r;
        addr[len] = '\0';
    }
    *strchr(addr, '\n') = '\0';
    close(out); /* it prints nothing else */
}

static void start_scenario(scen_t *s, const char *brokers)
{
    const char *bin = getenv("CANARYD_BIN");
    cr_assert_not_null(bin, "CANARYD_BIN is not set");
    char group[96];
    snprintf(group, sizeof(group), "live-%s", s->e->scenario);
    const char *cfg = CANARYD_SOURCE_DIR "/config/demo.json";
    char *run_argv[] = {(char *)bin,
                        "run",
                        "--config",
                        (char *)cfg,
                        "--brokers",
                        (char *)brokers,
                        "--topic",
                        (char *)s->e->scenario,
                        "--group",
                        group,
                        "--threads",
                        "2",
                        "--exit-when-idle",
                        "5s",
                        NULL};
    s->run = spawn_child(run_argv, NULL, NULL, scen_file(s->e->scenario, ".run.err"), &s->out_fd);
    s->run_pidfd = pidfd_of(s->run);
    char *sim_argv[] = {(char *)bin,  "simulate",
                        "--brokers",  (char *)brokers,
                        "--topic",    (char *)s->e->scenario,
                        "--scenario", (char *)s->e->scenario,
                        "--rate",     "1000",
                        "--onset",    "20s",
                        NULL};
    s->sim = spawn_child(sim_argv, NULL, "/dev/null", scen_file(s->e->scenario, ".sim.err"), NULL);
    s->sim_pidfd = pidfd_of(s->sim);
    s->sim_status = s->run_status = -1;
    s->start = s->stop_at = -1;
}

/* The simulator first (it flushes), then the agent: it exits by itself once
 * idle (it has consumed everything); SIGTERM only if it does not. */
static void stop_scenario(scen_t *s, const char *why)
{
    bool late;
    snprintf(s->why_stopped, sizeof(s->why_stopped), "%s", why);
    if (s->sim_status == -1) {
        s->sim_status = finish(s->sim, true, 15000, &late);
        close(s->sim_pidfd);
        cr_expect(!late, "%s: canaryd simulate did not exit within 15 s of SIGTERM",
                  s->e->scenario);
    }
    if (s->run_status == -1) {
        s->run_status = finish(s->run, false, 15000, &late);
        close(s->run_pidfd);
        if (late)
            cr_expect_fail("%s: canaryd run did not stop within 15 s of the simulator "
                           "(--exit-when-idle 5s)",
                           s->e->scenario);
    }
    s->sim = s->run = 0;
    while (read_records(s)) { /* the pipe's writer is gone: EOF comes */
        struct pollfd pf = {.fd = s->out_fd, .events = POLLIN};
        poll(&pf, 1, 1000);
    }
    close(s->out_fd);
    s->stopped = true;
}

/* Decides whether s is done, from its records and the clock. */
static void check_scenario(scen_t *s, int64_t now)
{
    const expect_t *e = s->e;
    if (s->start < 0) find_start(s);
    bool final = strcmp(e->verdict, "ALERT") != 0;
    bool seen = find_verdict(s, e->verdict, e->rule, 0) >= 0;
    if (s->stop_at < 0 && final && seen) s->stop_at = now + GRACE_MS;
    if (strcmp(e->verdict, "ROLLBACK") != 0 && count_verdicts(s, "ROLLBACK") > 0) {
        stop_scenario(s, "an unexpected ROLLBACK");
        return;
    }
    if (s->stop_at >= 0 && now >= s->stop_at) {
        stop_scenario(s, "its final verdict");
        return;
    }
    if (s->start >= 0 && !final && now >= s->start + OBSERVE_S * 1000) {
        stop_scenario(s, "the end of its observation");
        return;
    }
    if (s->start >= 0 && !seen && now >= s->start + (e->hi_s + 5) * 1000LL) {
        stop_scenario(s, "its deadline, without its verdict");
        return;
    }
    struct pollfd pf[2] = {{.fd = s->sim_pidfd, .events = POLLIN},
                           {.fd = s->run_pidfd, .events = POLLIN}};
    if (poll(pf, 2, 0) > 0) stop_scenario(s, "a process exiting on its own");
}

/* ---- checking -------------------------------------------------------------------- */

static long long delivered_of(const scen_t *s)
{
    char *txt = slurp(scen_file(s->e->scenario, ".sim.err"));
    const char *p = strstr(txt, "canaryd simulate: delivered ");
    long long n = p ? atoll(p + 28) : -1;
    free(txt);
    return n;
}

static long long jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

/* cr_expect that also marks the scenario failed, so its records get logged. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        bool ok_ = (cond);                                                                         \
        cr_expect(ok_, __VA_ARGS__);                                                               \
        if (!ok_) s->failed = true;                                                                \
    } while (0)

/* A child's diagnostics (its log lines: "... canaryd[level]: ..."), up to
 * max of them, as warnings. */
static void log_diagnostics(const scen_t *s, const char *suffix, int max)
{
    char *txt = slurp(scen_file(s->e->scenario, suffix));
    int n = 0;
    for (char *line = strtok(txt, "\n"); line && n < max; line = strtok(NULL, "\n"))
        if (strstr(line, " canaryd[")) {
            cr_log_warn("%s %s: %.300s", s->e->scenario, suffix + 1, line);
            n++;
        }
    free(txt);
}

/* On a failure: every record, relative to the start, and the children's
 * last words, as warnings. */
static void log_records(const scen_t *s)
{
    log_diagnostics(s, ".sim.err", 10);
    log_diagnostics(s, ".run.err", 40);
    for (int i = 0; i < s->nrecs; i++) {
        const rec_t *r = &s->recs[i];
        cr_log_warn("%s: +%.2fs %s %s %s %s%s%s", s->e->scenario, (r->t - s->start) / 1000.0,
                    r->kind, r->verdict, r->rule, r->from, *r->to ? " -> " : "", r->to);
    }
}

static void check_results(scen_t *s)
{
    const expect_t *e = s->e;
    const char *n = e->scenario;
    cr_log_info("%s: %d records, stopped at %s", n, s->nrecs, s->why_stopped);

    CHECK(WIFEXITED(s->sim_status) && WEXITSTATUS(s->sim_status) == 0,
          "%s: canaryd simulate exit status 0x%x, expected exit 0", n, s->sim_status);
    CHECK(WIFEXITED(s->run_status) && WEXITSTATUS(s->run_status) == 0,
          "%s: canaryd run exit status 0x%x, expected exit 0", n, s->run_status);
    CHECK(s->bad_lines == 0, "%s: %d unreadable record lines, first: %s", n, s->bad_lines,
          s->bad_sample);
    CHECK(s->start >= 0, "%s: no start line from canaryd simulate", n);
    if (s->start < 0) return;

    /* Counting: exactly what was delivered, nothing bad, late or future. */
    long long delivered = delivered_of(s);
    json_t *st = stats_in(scen_file(s->e->scenario, ".run.err"));
    CHECK(st != NULL, "%s: no stats line from canaryd run", n);
    CHECK(delivered > 10000, "%s: canaryd simulate delivered %lld events", n, delivered);
    if (st) {
        CHECK(jint(st, "messages") == delivered,
              "%s: canaryd run counted %lld messages, the simulator delivered %lld", n,
              jint(st, "messages"), delivered);
        CHECK(jint(st, "accepted") == delivered, "%s: %lld accepted of %lld", n,
              jint(st, "accepted"), delivered);
        CHECK(jint(st, "bad") == 0, "%s: %lld bad", n, jint(st, "bad"));
        CHECK(jint(st, "late") == 0, "%s: %lld late", n, jint(st, "late"));
        CHECK(jint(st, "future") == 0, "%s: %lld future", n, jint(st, "future"));
        if (strcmp(e->verdict, "ALERT") != 0) {
            const char *v = json_string_value(json_object_get(st, "verdict"));
            CHECK(strcmp(v ? v : "", e->verdict) == 0, "%s: final verdict %s, expected %s", n,
                  v ? v : "(none)", e->verdict);
        }
        json_decref(st);
    }

    /* The first record is ANALYZING (no data yet), and HEALTHY comes before
     * the deciding verdict. */
    CHECK(s->nrecs > 0 && strcmp(s->recs[0].verdict, "ANALYZING") == 0,
          "%s: the first record is %s %s, expected verdict ANALYZING", n,
          s->nrecs ? s->recs[0].kind : "(none)", s->nrecs ? s->recs[0].verdict : "");
    int d = find_verdict(s, e->verdict, e->rule, 0);
    CHECK(d >= 0, "%s: no %s by %s in %d records (stopped at %s)", n, e->verdict,
          e->rule ? e->rule : "-", s->nrecs, s->why_stopped);
    if (d < 0) return;
    int h = -1;
    for (int i = 0; i < d; i++)
        if (strcmp(s->recs[i].verdict, "HEALTHY") == 0) h = i;
    CHECK(h >= 0, "%s: no HEALTHY before %s", n, e->verdict);

    /* Timing, from the config. */
    int64_t at = s->recs[d].t - s->start;
    cr_log_info("%s: %s by %s at +%.2fs", n, e->verdict, e->rule ? e->rule : "-", at / 1000.0);
    CHECK(at >= e->lo_s * 1000LL && at <= e->hi_s * 1000LL,
          "%s: %s by %s at +%.2fs, expected within [+%ds, +%ds]", n, e->verdict,
          e->rule ? e->rule : "-", at / 1000.0, e->lo_s, e->hi_s);
    if (e->rule) {
        /* its rule went pending after the onset and fired `for` later */
        int pend = -1, fire = -1;
        for (int i = 0; i <= d; i++) {
            const rec_t *r = &s->recs[i];
            if (strcmp(r->kind, "state") || strcmp(r->rule, e->rule)) continue;
            if (strcmp(r->to, "pending") == 0) pend = i;
            if (strcmp(r->to, "firing") == 0) fire = i;
        }
        CHECK(fire >= 0, "%s: no state record %s -> firing before the %s", n, e->rule, e->verdict);
        /* A rule that counts `for` from its estimated onset (the demo
         * config's sequential payment-success, and canary-silence:
         * docs/config.md) may fire at the crossing itself, straight from
         * inactive, or less than `for` after going pending, once the onset is
         * `for` ago: its firing is then at least `for` after the scenario's
         * onset. The others fire `for` after going pending. */
        bool from_onset =
            strcmp(e->rule, "payment-success") == 0 || strcmp(e->rule, "canary-silence") == 0;
        if (fire >= 0 && e->for_s > 0 && from_onset)
            CHECK(s->recs[fire].t - s->start >= (ONSET_S + e->for_s) * 1000LL,
                  "%s: %s fired at +%.2fs, before the onset + `for` %ds", n, e->rule,
                  (s->recs[fire].t - s->start) / 1000.0, e->for_s);
        if (fire >= 0 && e->for_s > 0 && !from_onset) {
            CHECK(pend >= 0, "%s: %s fired without going pending", n, e->rule);
            if (pend >= 0) {
                CHECK(s->recs[pend].t >= s->start + ONSET_S * 1000LL,
                      "%s: %s pending at +%.2fs, before the onset", n, e->rule,
                      (s->recs[pend].t - s->start) / 1000.0);
                CHECK(s->recs[fire].t - s->recs[pend].t >= e->for_s * 1000LL,
                      "%s: %s fired %.2fs after going pending, `for` is %ds", n, e->rule,
                      (s->recs[fire].t - s->recs[pend].t) / 1000.0, e->for_s);
            }
        }
    } else {
        /* PROMOTE: healthy for promote_after (2m) without a break */
        int64_t healthy_for = s->recs[d].t - s->recs[h].t;
        CHECK(healthy_for >= 120000 && healthy_for <= 125000,
              "%s: PROMOTE %.2fs after the last HEALTHY, expected 120s (promote_after) "
              "to 125s",
              n, healthy_for / 1000.0);
    }

    /* Nothing else decided: one ROLLBACK where one is due, none elsewhere;
     * every ALERT by the expected rule; one PROMOTE at most. */
    int rollbacks = count_verdicts(s, "ROLLBACK");
    CHECK(rollbacks == (strcmp(e->verdict, "ROLLBACK") == 0 ? 1 : 0), "%s: %d ROLLBACK verdicts", n,
          rollbacks);
    CHECK(count_verdicts(s, "PROMOTE") <= 1, "%s: more than one PROMOTE", n);
    for (int i = 0; i < s->nrecs; i++) {
        const rec_t *r = &s->recs[i];
        if (strcmp(r->kind, "verdict") || strcmp(r->verdict, "ALERT")) continue;
        CHECK(strcmp(e->verdict, "ALERT") == 0 && strcmp(r->rule, e->rule) == 0,
              "%s: ALERT by %s at +%.2fs, expected %s", n, r->rule, (r->t - s->start) / 1000.0,
              strcmp(e->verdict, "ALERT") == 0 ? e->rule : "none");
    }
}

/* ---- the suite ------------------------------------------------------------------- */

static void setup(void)
{
    scratch_make("cd_live_scen_");
    sc = calloc(NSCEN, sizeof(*sc));
    cr_assert_not_null(sc);
    setenv("CANARYD_LOG_LEVEL", "info", 1); /* the simulator's start line */
}

/* Whatever a failed assertion left running is killed and reaped. */
static void teardown(void)
{
    int st;
    for (int i = 0; sc && i < NSCEN; i++) {
        if (sc[i].sim > 0) kill(sc[i].sim, SIGKILL), waitpid(sc[i].sim, &st, 0);
        if (sc[i].run > 0) kill(sc[i].run, SIGKILL), waitpid(sc[i].run, &st, 0);
    }
    if (broker > 0) kill(broker, SIGKILL), waitpid(broker, &st, 0);
    broker = -1;
    free(sc);
    sc = NULL;
    scratch_remove();
}

TestSuite(live_scenarios, .init = setup, .fini = teardown, .timeout = 400);

Test(live_scenarios, each_scenario_live_with_the_demo_config)
{
    char brokers[512];
    start_broker(brokers, sizeof(brokers));
    for (int i = 0; i < NSCEN; i++) {
        sc[i].e = &EXPECT[i];
        sc[i].stopped = !wanted(sc[i].e);
        if (!sc[i].stopped) start_scenario(&sc[i], brokers);
    }

    int64_t limit = now_ms() + SUITE_LIMIT_S * 1000LL;
    for (;;) {
        struct pollfd pf[NSCEN];
        int idx[NSCEN], np = 0;
        for (int i = 0; i < NSCEN; i++)
            if (!sc[i].stopped) {
                pf[np] = (struct pollfd){.fd = sc[i].out_fd, .events = POLLIN};
                idx[np++] = i;
            }
        if (np == 0) break;
        /* 200 ms at most: the stop decisions depend on the clock too */
        if (poll(pf, (nfds_t)np, 200) > 0)
            for (int k = 0; k < np; k++)
                if (pf[k].revents) read_records(&sc[idx[k]]);
        int64_t now = now_ms();
        for (int i = 0; i < NSCEN; i++) {
            if (sc[i].stopped) continue;
            if (now >= limit)
                stop_scenario(&sc[i], "the suite's time limit");
            else
                check_scenario(&sc[i], now);
        }
    }

    bool late;
    int st = finish(broker, true, 10000, &late);
    broker = -1;
    cr_expect(!late, "canaryd-mock-kafka did not exit within 10 s of SIGTERM");
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "canaryd-mock-kafka exit status 0x%x, expected exit 0", st);

    for (int i = 0; i < NSCEN; i++) {
        if (!wanted(sc[i].e)) continue;
        check_results(&sc[i]);
        if (sc[i].failed) log_records(&sc[i]);
    }
}
