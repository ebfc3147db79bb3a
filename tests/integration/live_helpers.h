/*
 * live_helpers.h - the helpers every suite that runs the built canaryd
 * binary (CANARYD_BIN) as a child process used to copy: a scratch folder
 * per test and the files in it, children spawned, waited for and reaped,
 * waits on a condition bounded by a timeout, GET over loopback, a free
 * loopback port, the agent's exit `stats` line.
 *
 * Header-only (static inline, like sink_test.h): only tests/.../test_*.c
 * files become binaries, and an unused static inline function costs nothing.
 * The short names (path_of, read_file, start, wait_for, wait_exit ...) are
 * the ones the suites had before they shared this header, so a test written
 * beside it keeps compiling.
 *
 * State: one scratch folder (scratch_make / scratch_remove) and the children
 * not yet reaped (at most LH_MAX_KIDS; kill_children in teardown), per test
 * process: Criterion runs each test in a process of its own.
 * Threading: call from the test's main thread. Children are forked with
 * PR_SET_PDEATHSIG, which fires when the forking *thread* ends: a test that
 * Criterion kills on timeout (before its teardown runs) leaves no agent.
 *
 * Waits poll their condition and are bounded by limit_ms on CLOCK_MONOTONIC,
 * not by counting sleeps (which stretches the bound by the time each poll
 * takes, more so on a loaded machine, and so hides how long a wait took).
 * The clocks, sleep_ms and wait_until are ../wait_helpers.h's, shared with
 * the suites that do not run the binary.
 */
#ifndef CANARYD_TEST_LIVE_HELPERS_H
#define CANARYD_TEST_LIVE_HELPERS_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../wait_helpers.h"
#include "canaryd/timeutil.h"

#define LH_MAX_KIDS 16

/* A NULL-terminated argument list: ARGS("replay", "--config", path) */
#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static char lh_dir[64];
/* the mock cluster's bootstrap list, for start(); a suite fills it */
static char bootstraps[256];
/* children not yet reaped: killed by kill_children when a test fails early */
static pid_t lh_kids[LH_MAX_KIDS];
static int lh_nkids;

/* A wall-clock bound on what a child agent does (how late a verdict may
 * come, how soon it stops): LH_BOUND(20) is 20 in the plain and ASan
 * builds, 60 under TSan, which runs canaryd 5-15x slower (a bound that
 * holds with room plainly would measure the sanitizer there; the factor
 * is tests/tsan/shim_main.c's for .timeout). Only the upper bounds of
 * lateness: "not before" bounds follow from the config and stay exact. A
 * constant expression, for initializers too. */
#ifdef __SANITIZE_THREAD__
#define LH_SANITIZER_SCALE 3
#else
#define LH_SANITIZER_SCALE 1
#endif
#define LH_BOUND(x) ((x) * LH_SANITIZER_SCALE)

/* ---- the scratch folder --------------------------------------------------- */

static inline int lh_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Makes /tmp/<prefix>XXXXXX, this test's folder. */
static inline void scratch_make(const char *prefix)
{
    snprintf(lh_dir, sizeof(lh_dir), "/tmp/%sXXXXXX", prefix);
    cr_assert_not_null(mkdtemp(lh_dir), "mkdtemp %s: %s", lh_dir, strerror(errno));
}

/* Removes the folder and all in it (call after kill_children). */
static inline void scratch_remove(void)
{
    if (lh_dir[0]) nftw(lh_dir, lh_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    lh_dir[0] = '\0';
}

static inline const char *scratch_dir(void)
{
    return lh_dir;
}

/* name inside the scratch folder. A ring of buffers: an argument list can
 * hold many of these while later calls make more. */
static inline const char *path_of(const char *name)
{
    static char buf[256][256];
    static int i;
    char *p = buf[i++ % 256];
    snprintf(p, 256, "%s/%s", lh_dir, name);
    return p;
}

/* The whole file (malloc'ed); "" when it does not exist (yet). */
static inline char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)(n > 0 ? n : 0) + 1);
    cr_assert_not_null(s);
    size_t got = fread(s, 1, (size_t)(n > 0 ? n : 0), f);
    s[got] = '\0';
    fclose(f);
    return s;
}

static inline char *read_file(const char *name)
{
    return slurp(path_of(name));
}

static inline bool file_exists(const char *name)
{
    return access(path_of(name), F_OK) == 0;
}

/* Writes (mode "w") or appends (mode "a") text to name in the folder. */
static inline void write_file(const char *name, const char *text, const char *mode)
{
    FILE *f = fopen(path_of(name), mode);
    cr_assert_not_null(f, "open %s: %s", path_of(name), strerror(errno));
    fputs(text, f);
    fclose(f);
}

static inline void write_text(const char *name, const char *text)
{
    write_file(name, text, "w");
}

/* ---- children ------------------------------------------------------------- */

static inline void reaped(pid_t pid)
{
    for (int i = 0; i < lh_nkids; i++)
        if (lh_kids[i] == pid) lh_kids[i] = 0;
}

/* fork + exec argv (argv[0] a path, or a name looked up in PATH). stdin from
 * in (NULL: /dev/null); stdout into out, or into a pipe whose read end
 * (non-blocking) is *out_pipe when out_pipe is set; stderr into err (NULL:
 * /dev/null). Paths are whole paths. The child dies with this process; the
 * caller reaps it (finish, wait_exit), or track()s it for kill_children. */
static inline pid_t spawn_child(char *const argv[], const char *in, const char *out,
                                const char *err, int *out_pipe)
{
    int p[2] = {-1, -1};
    if (out_pipe) cr_assert_eq(pipe2(p, O_CLOEXEC), 0, "pipe: %s", strerror(errno));
    const char *in_path = in ? in : "/dev/null", *err_path = err ? err : "/dev/null";
    const char *out_path = out ? out : "/dev/null";
    pid_t parent = getpid(), pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* async-signal-safe calls only until exec */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int i = open(in_path, O_RDONLY);
        int o = out_pipe ? p[1] : open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (i < 0 || o < 0 || e < 0) _exit(127);
        dup2(i, 0), dup2(o, 1), dup2(e, 2);
        if (i > 2) close(i);
        if (o > 2) close(o);
        if (e > 2) close(e);
        if (strchr(argv[0], '/'))
            execv(argv[0], argv);
        else
            execvp(argv[0], argv);
        _exit(127);
    }
    if (out_pipe) {
        close(p[1]);
        fcntl(p[0], F_SETFL, O_NONBLOCK);
        *out_pipe = p[0];
    }
    return pid;
}

/* Registers pid for kill_children (teardown, when a test failed early). */
static inline pid_t track(pid_t pid)
{
    for (int i = 0; i < lh_nkids; i++)
        if (lh_kids[i] == 0) return lh_kids[i] = pid;
    if (lh_nkids < LH_MAX_KIDS) lh_kids[lh_nkids++] = pid;
    return pid;
}

/* SIGTERM first when term; then waits up to limit_ms for pid to exit (on its
 * pidfd), SIGKILL after that (*timed_out set, when given). Returns the
 * waitpid status. */
static inline int finish(pid_t pid, bool term, long limit_ms, bool *timed_out)
{
    int fd = (int)syscall(SYS_pidfd_open, pid, 0), st = 0;
    cr_assert_geq(fd, 0, "pidfd_open: %s", strerror(errno));
    if (term) kill(pid, SIGTERM);
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    int64_t deadline = mono_ms() + limit_ms;
    int r;
    do {
        int64_t left = deadline - mono_ms();
        r = poll(&pf, 1, left > 0 ? (int)left : 0);
    } while (r < 0 && errno == EINTR);
    if (timed_out) *timed_out = r == 0;
    if (r == 0) kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    close(fd);
    reaped(pid);
    return st;
}

/* The exit code, or 128 + the signal that ended it. */
static inline int exit_code(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Waits up to limit_ms for the child to exit by itself and returns its exit
 * status; fails the test (after SIGKILL) when it does not, or when a signal
 * ended it. */
static inline int wait_exit(pid_t pid, long limit_ms)
{
    bool late = false;
    int st = finish(pid, false, limit_ms, &late);
    cr_assert(!late, "pid %d did not exit within %ld ms: killed", (int)pid, limit_ms);
    cr_assert(WIFEXITED(st), "pid %d did not exit normally (status 0x%x)", (int)pid, st);
    return WEXITSTATUS(st);
}

/* Teardown: SIGKILLs and reaps every tracked child still running (one a
 * test reaped itself is not signalled: waitpid no longer knows it). */
static inline void kill_children(void)
{
    for (int i = 0; i < lh_nkids; i++) {
        if (lh_kids[i] > 0 && waitpid(lh_kids[i], NULL, WNOHANG) == 0) {
            kill(lh_kids[i], SIGKILL);
            waitpid(lh_kids[i], NULL, 0);
        }
        lh_kids[i] = 0;
    }
    lh_nkids = 0;
}

static inline const char *canaryd_bin(void)
{
    const char *b = getenv("CANARYD_BIN");
    cr_assert_not_null(b, "CANARYD_BIN is not set (ctest sets it)");
    return b;
}

/* canaryd with args (NULL-terminated); stdin from file in of the folder
 * (NULL: /dev/null), stdout and stderr into files out and err of it.
 * Tracked for kill_children. */
static inline pid_t spawn_canaryd(const char *in, const char *out, const char *err,
                                  const char *const *args)
{
    char *argv[48];
    int n = 0;
    argv[n++] = (char *)canaryd_bin();
    for (int i = 0; args[i] && n < 47; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    return track(spawn_child(argv, in ? path_of(in) : NULL, path_of(out), path_of(err), NULL));
}

/* `canaryd run --brokers <bootstraps> args`, stdout/stderr into out/err. */
static inline pid_t start(const char *out, const char *err, const char *const *args)
{
    const char *run[48] = {"run", "--brokers", bootstraps};
    int n = 3;
    for (int i = 0; args[i] && n < 47; i++)
        run[n++] = args[i];
    run[n] = NULL;
    return spawn_canaryd(NULL, out, err, run);
}

/* ---- waiting -------------------------------------------------------------- */

static inline int count_of(const char *s, const char *needle)
{
    int k = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        k++;
    return k;
}

/* Waits up to limit_ms for file name of the folder to contain needle at
 * least n times. */
static inline bool wait_count(const char *name, const char *needle, int n, long limit_ms)
{
    for (int64_t end = mono_ms() + limit_ms;; sleep_ms(20)) {
        char *s = read_file(name);
        int k = count_of(s, needle);
        free(s);
        if (k >= n) return true;
        if (mono_ms() >= end) return false;
    }
}

/* Waits up to limit_ms for file name of the folder to contain needle. */
static inline bool wait_for(const char *name, const char *needle, long limit_ms)
{
    return wait_count(name, needle, 1, limit_ms);
}

/* ---- HTTP on loopback ------------------------------------------------------ */

#define LH_LISTENING "http: listening on 127.0.0.1:"

/* The port the agent writing stderr file err listens on; 0 while it has not
 * said (no wait). */
static inline int http_port_now(const char *err)
{
    char *s = read_file(err);
    const char *p = strstr(s, LH_LISTENING);
    int port = p ? atoi(p + strlen(LH_LISTENING)) : 0;
    free(s);
    return port;
}

/* Waits up to limit_ms for the port; fails the test without one. */
static inline int http_port(const char *err, long limit_ms)
{
    int port = 0;
    for (int64_t end = mono_ms() + limit_ms; !(port = http_port_now(err)); sleep_ms(20))
        cr_assert_lt(mono_ms(), end, "no \"" LH_LISTENING "\" in %s within %ld ms:\n%s", err,
                     limit_ms, read_file(err));
    return port;
}

static inline size_t lh_gather(char *p, size_t sz, size_t n, void *f)
{
    return fwrite(p, sz, n, f);
}

/* GET url, or POST of the JSON text body when body is not NULL (no proxy,
 * 10 s at most): the answer (malloc'ed) and the status in *status (when
 * given); NULL when no answer came. */
static inline char *http_request(const char *url, const char *body, long *status)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    cr_assert_not_null(f);
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, lh_gather);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    }
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    fclose(f);
    if (status) *status = code;
    if (rc == CURLE_OK) return out;
    free(out);
    return NULL;
}

static inline char *http_get(const char *url, long *status)
{
    return http_request(url, NULL, status);
}

/* GET url, which must answer want with a JSON body (new reference). */
static inline json_t *http_get_json(const char *url, long want)
{
    long status = 0;
    char *body = http_get(url, &status);
    cr_assert_not_null(body, "GET %s: no answer", url);
    cr_assert_eq(status, want, "GET %s: %ld %s", url, status, body);
    json_error_t je;
    json_t *j = json_loads(body, 0, &je);
    cr_assert_not_null(j, "GET %s: not JSON (%s): %.200s", url, je.text, body);
    free(body);
    return j;
}

/* GET http://127.0.0.1:port path: the body (malloc'ed; "" when no answer
 * came), the status in *status (when given; 0 without an answer). */
static inline char *http_get_at(int port, const char *path, long *status)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    char *body = http_get(url, status);
    return body ? body : strdup("");
}

/* The same answer as JSON (new reference); NULL when none came or it is not
 * JSON (the status says which). */
static inline json_t *http_json_at(int port, const char *path, long *status)
{
    char *body = http_get_at(port, path, status);
    json_t *j = json_loads(body, 0, NULL);
    free(body);
    return j;
}

/* judged_until of the /api/v1/verdict of the agent on port (wall ms); 0
 * while it has none (or gives no answer). */
static inline int64_t judged_until_ms(int port)
{
    long st = 0;
    json_t *j = http_json_at(port, "/api/v1/verdict", &st);
    const char *t = j ? json_string_value(json_object_get(j, "judged_until")) : NULL;
    int64_t ms = 0;
    if (!t || !cd_time_parse_rfc3339(t, strlen(t), &ms)) ms = 0;
    json_decref(j);
    return ms;
}

/* The "rules" of GET /api/v1/windows?at=S of the agent on port (new
 * reference), waiting out 409 (that second not judged yet) for up to 30 s;
 * any other answer fails the test, naming who. */
static inline json_t *windows_rules_at(int port, int64_t s, const char *who)
{
    char path[64];
    snprintf(path, sizeof path, "/api/v1/windows?at=%lld", (long long)s);
    for (int64_t end = mono_ms() + 30000;; sleep_ms(50)) {
        long st = 0;
        json_t *j = http_json_at(port, path, &st);
        if (st == 200) {
            json_t *r = json_incref(json_object_get(j, "rules"));
            json_decref(j);
            return r;
        }
        char *d = j ? json_dumps(j, JSON_COMPACT) : NULL;
        cr_assert(st == 409 && mono_ms() < end, "%s %s: %ld %s", who, path, st,
                  d ? d : "(no JSON)");
        free(d);
        json_decref(j);
    }
}

/* The value of the sample line "series value" of a /metrics page; NAN when
 * it has none. */
static inline double metric_of(const char *page, const char *series)
{
    char needle[160];
    snprintf(needle, sizeof(needle), "\n%s ", series);
    const char *p = strstr(page, needle);
    return p ? strtod(p + strlen(needle), NULL) : NAN;
}

/* A loopback TCP port free right now (bound, read, closed: another process
 * can take it before the caller does; servers started on it say so). */
static inline int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind: %s", strerror(errno));
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- the agent's exit stats ------------------------------------------------ */

/* The `canaryd run: stats {...}` line of the file at path (new
 * reference); NULL when it has none (yet) or it is not JSON. */
static inline json_t *stats_in(const char *path)
{
    char *s = slurp(path);
    const char *p = strstr(s, "canaryd run: stats ");
    json_t *j = p ? json_loadb(p + 19, strcspn(p + 19, "\n"), 0, NULL) : NULL;
    free(s);
    return j;
}

/* The stats line of stderr file err of the folder, which must have one. */
static inline json_t *stats_of(const char *err)
{
    json_t *j = stats_in(path_of(err));
    cr_assert_not_null(j, "no stats line (or not JSON) in:\n%s", read_file(err));
    return j;
}

static inline long long stat_int(json_t *st, const char *key)
{
    return (long long)json_integer_value(json_object_get(st, key));
}

static inline long long by_type(json_t *st, const char *type, const char *cohort)
{
    return (long long)json_integer_value(
        json_object_get(json_object_get(json_object_get(st, "by_type"), type), cohort));
}

#endif
