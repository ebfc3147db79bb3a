/*
 * shim_main.c - runner for the TSan builds of the concurrency suites (see
 * criterion/criterion.h beside this file for why Criterion itself is not
 * used there). Runs every registered test in-process, in registration order;
 * an assertion failing on any thread marks the running test failed.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "criterion/criterion.h"

#define SHIM_MAX_TESTS 64

static struct {
    const char *suite, *name;
    shim_fn fn;
} tests[SHIM_MAX_TESTS];
static int ntests;
static atomic_int failures_in_test;
_Thread_local jmp_buf *shim_jmp;

void shim_register(const char *suite, const char *name, shim_fn fn)
{
    if (ntests == SHIM_MAX_TESTS) {
        fprintf(stderr, "shim: more than %d tests\n", SHIM_MAX_TESTS);
        exit(2);
    }
    tests[ntests].suite = suite;
    tests[ntests].name = name;
    tests[ntests++].fn = fn;
}

void shim_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    atomic_fetch_add(&failures_in_test, 1);
    if (shim_jmp)
        longjmp(*shim_jmp, 1);
    /* On a helper thread there is no way back into the runner. */
    abort();
}

/* setjmp lives in its own frame so that no local of main() can be clobbered. */
static int run_one(shim_fn fn)
{
    jmp_buf env;
    atomic_store(&failures_in_test, 0);
    if (setjmp(env) == 0) {
        shim_jmp = &env;
        fn();
    }
    shim_jmp = NULL;
    return atomic_load(&failures_in_test) == 0;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    for (int i = 0; i < ntests; i++) {
        if (argc > 1 && !strstr(tests[i].name, argv[1]))
            continue;
        fprintf(stderr, "[RUN ] %s::%s\n", tests[i].suite, tests[i].name);
        if (run_one(tests[i].fn)) {
            passed++;
            fprintf(stderr, "[PASS] %s::%s\n", tests[i].suite, tests[i].name);
        } else {
            failed++;
            fprintf(stderr, "[FAIL] %s::%s\n", tests[i].suite, tests[i].name);
        }
    }
    printf("concurrency: %d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
