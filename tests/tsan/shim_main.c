/*
 * shim_main.c - runner for the TSan builds of the threaded suites (see
 * criterion/criterion.h beside this file for why Criterion itself is not
 * used there). Runs every registered test in registration order, each in a
 * forked child like Criterion (globals fresh, a crash or a TSan report ends
 * only that test): suite .init, test .init, body, test .fini, suite .fini.
 * The parent kills a child past its .timeout (scaled by SHIM_TIMEOUT_SCALE,
 * default 3: TSan runs code 5-15x slower) and counts it failed. Each
 * [PASS]/[FAIL] line gives the test's wall time.
 * Arguments: substrings of the names of the tests to run (optional; a test
 * runs if its name contains any of them; CMakeLists.txt passes
 * CANARYD_TSAN_FILTER_<suite> for the suites run only in part under TSan).
 */
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "canaryd/clock.h"

#include "criterion/criterion.h"

#define SHIM_MAX_TESTS 128
#define SHIM_MAX_SUITES 8

static struct {
    const char *suite, *name;
    shim_fn fn;
    const struct shim_opts *o;
} tests[SHIM_MAX_TESTS];
static int ntests;
static struct {
    const char *suite;
    const struct shim_opts *o;
} suites[SHIM_MAX_SUITES];
static int nsuites;
static atomic_int failures_in_test;
static atomic_int skipped;
_Thread_local jmp_buf *shim_jmp;

void shim_register(const char *suite, const char *name, shim_fn fn, const struct shim_opts *o)
{
    if (ntests == SHIM_MAX_TESTS) {
        fprintf(stderr, "shim: more than %d tests\n", SHIM_MAX_TESTS);
        exit(2);
    }
    tests[ntests].suite = suite;
    tests[ntests].name = name;
    tests[ntests].o = o;
    tests[ntests++].fn = fn;
}

void shim_register_suite(const char *suite, const struct shim_opts *o)
{
    if (nsuites == SHIM_MAX_SUITES) {
        fprintf(stderr, "shim: more than %d suites\n", SHIM_MAX_SUITES);
        exit(2);
    }
    suites[nsuites].suite = suite;
    suites[nsuites++].o = o;
}

void shim_msg(const char *fmt, ...)
{
    va_list ap;
    if (!*fmt) return;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void shim_fail(const char *file, int line, const char *expr, int fatal)
{
    fprintf(stderr, "%s:%d: %s failed: %s\n", file, line, fatal ? "assertion" : "expectation",
            expr);
    atomic_fetch_add(&failures_in_test, 1);
    if (!fatal) return;
    if (shim_jmp) longjmp(*shim_jmp, 1);
    /* On a helper thread there is no way back into the runner. */
    _exit(1);
}

void shim_fail_fatal(const char *file, int line, const char *expr)
{
    shim_fail(file, line, expr, 1);
    _exit(1); /* not reached: shim_fail(.., 1) longjmps or exits */
}

void shim_skip(void)
{
    atomic_store(&skipped, 1);
    if (shim_jmp) longjmp(*shim_jmp, 1);
    _exit(0);
}

/* setjmp lives in its own frame so that no local of the caller can be clobbered. */
static void run_guarded(shim_fn fn)
{
    jmp_buf env;
    if (!fn) return;
    if (setjmp(env) == 0) {
        shim_jmp = &env;
        fn();
    }
    shim_jmp = NULL;
}

static const struct shim_opts *suite_opts(const char *suite)
{
    for (int i = 0; i < nsuites; i++)
        if (strcmp(suites[i].suite, suite) == 0) return suites[i].o;
    return NULL;
}

/* The child: runs one test and exits 0 (passed or skipped) or 1. */
static void child(int i)
{
    const struct shim_opts *so = suite_opts(tests[i].suite), *to = tests[i].o;
    if (so) run_guarded(so->init);
    if (!atomic_load(&failures_in_test) && !atomic_load(&skipped)) {
        run_guarded(to->init);
        if (!atomic_load(&failures_in_test) && !atomic_load(&skipped)) run_guarded(tests[i].fn);
        run_guarded(to->fini);
    }
    if (so) run_guarded(so->fini);
    fflush(NULL);
    exit(atomic_load(&failures_in_test) ? 1 : 0);
}

static int run_one(int i)
{
    const char *scale_env = getenv("SHIM_TIMEOUT_SCALE");
    double scale = scale_env ? atof(scale_env) : 3.0;
    double timeout = tests[i].o->timeout > 0 ? tests[i].o->timeout : 0;
    const struct shim_opts *so = suite_opts(tests[i].suite);
    if (timeout == 0 && so && so->timeout > 0) timeout = so->timeout;
    if (timeout == 0) timeout = 600;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("shim: fork");
        return 0;
    }
    if (pid == 0) child(i);
    int64_t deadline = cd_mono_ms() + (int64_t)(timeout * scale * 1000);
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) break;
        if (cd_mono_ms() > deadline) {
            fprintf(stderr, "shim: timed out after %.0f s\n", timeout * scale);
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return 0;
        }
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    if (WIFSIGNALED(st)) fprintf(stderr, "shim: killed by signal %d\n", WTERMSIG(st));
    else if (WEXITSTATUS(st) != 0) fprintf(stderr, "shim: exit status %d\n", WEXITSTATUS(st));
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    for (int i = 0; i < ntests; i++) {
        bool wanted = argc == 1;
        for (int a = 1; a < argc && !wanted; a++)
            wanted = strstr(tests[i].name, argv[a]) != NULL;
        if (!wanted) continue;
        if (tests[i].o->disabled) continue;
        fprintf(stderr, "[RUN ] %s::%s\n", tests[i].suite, tests[i].name);
        int64_t t0 = cd_mono_ms();
        bool ok = run_one(i);
        /* each test's wall time: what CANARYD_TSAN_FILTER_* choices weigh */
        fprintf(stderr, "[%s] %s::%s (%.1f s)\n", ok ? "PASS" : "FAIL", tests[i].suite,
                tests[i].name, (double)(cd_mono_ms() - t0) / 1000.0);
        if (ok)
            passed++;
        else
            failed++;
    }
    printf("concurrency: %d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
