/*
 * tests/tsan/criterion/criterion.h - a minimal stand-in for Criterion, used
 * only to run the threaded suites under ThreadSanitizer.
 *
 * Why: Criterion cannot start under TSan ("Could not initialize inheritable
 * arena: Resource temporarily unavailable", Snaipe/Criterion#274, open): its
 * boxfort arena maps memory where TSan's shadow lives. The threaded suites
 * are therefore compiled twice from the same source: with real Criterion
 * (plain and ASan builds) and, under TSan, against this header plus
 * shim_main.c, which run the same Test() bodies, each in a forked child as
 * Criterion does (own globals, .init/.fini of the suite and the test, the
 * .timeout), one after the other, and print "concurrency: N passed, N
 * failed". A TSan report in a child fails that test (TSan's exit code).
 *
 * Only the macros the threaded suites use are provided. A cr_assert failure
 * prints the location and message and ends the test; cr_expect failures are
 * counted and the test goes on; cr_skip_test ends it as skipped (passed).
 */
#ifndef CANARYD_TSAN_CRITERION_SHIM_H
#define CANARYD_TSAN_CRITERION_SHIM_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

typedef void (*shim_fn)(void);
struct shim_opts {
    int pad_; /* lets the initializer lists below start with a known member */
    shim_fn init, fini;
    double timeout;
    int disabled;
};
void shim_register(const char *suite, const char *name, shim_fn fn, const struct shim_opts *o);
void shim_register_suite(const char *suite, const struct shim_opts *o);
void shim_fail(const char *file, int line, const char *expr, int fatal);
/* shim_fail(..., 1): never returns (longjmp to the runner or _exit), said
 * so the compiler knows what follows a failed cr_assert is not reached
 * (as with Criterion's own, e.g. a NULL checked by cr_assert, then used) */
__attribute__((noreturn)) void shim_fail_fatal(const char *file, int line, const char *expr);
void shim_msg(const char *fmt, ...);
void shim_skip(void);
extern _Thread_local jmp_buf *shim_jmp;

#define Test(suite, name, ...)                                                   \
    static void suite##_##name##_impl(void);                                     \
    static const struct shim_opts suite##_##name##_opts = {.pad_ = 0, __VA_ARGS__}; \
    __attribute__((constructor)) static void suite##_##name##_reg(void)          \
    {                                                                            \
        shim_register(#suite, #name, suite##_##name##_impl, &suite##_##name##_opts); \
    }                                                                            \
    static void suite##_##name##_impl(void)

#define TestSuite(suite, ...)                                                    \
    static const struct shim_opts suite##_suite_opts = {.pad_ = 0, __VA_ARGS__}; \
    __attribute__((constructor)) static void suite##_suite_reg(void)             \
    {                                                                            \
        shim_register_suite(#suite, &suite##_suite_opts);                        \
    }

/* The message arguments (a format and its values, or nothing) are printed
 * only on failure: "" __VA_ARGS__ makes an empty one a valid format. */
#define SHIM_CHECK(fatal, cond, text, ...)                                       \
    do {                                                                         \
        if (!(cond)) {                                                           \
            shim_msg("" __VA_ARGS__);                                            \
            if (fatal) shim_fail_fatal(__FILE__, __LINE__, text);                \
            shim_fail(__FILE__, __LINE__, text, 0);                              \
        }                                                                        \
    } while (0)

#define cr_assert(cond, ...) SHIM_CHECK(1, (cond), #cond, __VA_ARGS__)
#define cr_expect(cond, ...) SHIM_CHECK(0, (cond), #cond, __VA_ARGS__)
#define cr_assert_not(cond, ...) SHIM_CHECK(1, !(cond), "!(" #cond ")", __VA_ARGS__)
#define cr_expect_not(cond, ...) SHIM_CHECK(0, !(cond), "!(" #cond ")", __VA_ARGS__)
#define cr_assert_fail(...) SHIM_CHECK(1, 0, "cr_assert_fail", __VA_ARGS__)
#define cr_expect_fail(...) SHIM_CHECK(0, 0, "cr_expect_fail", __VA_ARGS__)
#define SHIM_CMP(fatal, a, op, b, ...) SHIM_CHECK(fatal, (a)op(b), #a " " #op " " #b, __VA_ARGS__)
#define cr_assert_eq(a, b, ...) SHIM_CMP(1, a, ==, b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) SHIM_CMP(1, a, !=, b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) SHIM_CMP(1, a, >, b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) SHIM_CMP(1, a, >=, b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...) SHIM_CMP(1, a, <, b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) SHIM_CMP(1, a, <=, b, __VA_ARGS__)
#define cr_expect_eq(a, b, ...) SHIM_CMP(0, a, ==, b, __VA_ARGS__)
#define cr_expect_neq(a, b, ...) SHIM_CMP(0, a, !=, b, __VA_ARGS__)
#define cr_expect_gt(a, b, ...) SHIM_CMP(0, a, >, b, __VA_ARGS__)
#define cr_expect_geq(a, b, ...) SHIM_CMP(0, a, >=, b, __VA_ARGS__)
#define cr_expect_lt(a, b, ...) SHIM_CMP(0, a, <, b, __VA_ARGS__)
#define cr_expect_leq(a, b, ...) SHIM_CMP(0, a, <=, b, __VA_ARGS__)
#define cr_assert_null(p, ...) SHIM_CHECK(1, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...) SHIM_CHECK(1, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_expect_null(p, ...) SHIM_CHECK(0, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_expect_not_null(p, ...) SHIM_CHECK(0, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) SHIM_CHECK(1, strcmp((a), (b)) == 0, #a " eq " #b, __VA_ARGS__)
#define cr_expect_str_eq(a, b, ...) SHIM_CHECK(0, strcmp((a), (b)) == 0, #a " eq " #b, __VA_ARGS__)
#define cr_expect_str_neq(a, b, ...)                                             \
    SHIM_CHECK(0, strcmp((a), (b)) != 0, #a " neq " #b, __VA_ARGS__)
#define cr_assert_float_eq(a, b, eps, ...)                                       \
    SHIM_CHECK(1, fabs((double)(a) - (double)(b)) <= (eps), #a " ~= " #b, __VA_ARGS__)
#define cr_skip_test(...) (shim_msg("skipped: " __VA_ARGS__), shim_skip())
#define cr_log_info(...) (shim_msg(__VA_ARGS__))
#define cr_log_warn(...) (shim_msg(__VA_ARGS__))

#endif
