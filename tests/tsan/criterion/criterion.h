/*
 * tests/tsan/criterion/criterion.h - a minimal stand-in for Criterion, used
 * only to run the concurrency suites under ThreadSanitizer.
 *
 * Why: Criterion cannot start under TSan ("Could not initialize inheritable
 * arena: Resource temporarily unavailable", Snaipe/Criterion#274, open): its
 * boxfort arena maps memory where TSan's shadow lives. The concurrency suites
 * are therefore compiled twice from the same source: with real Criterion
 * (plain and ASan builds) and, under TSan, against this header plus
 * shim_main.c, which run the same Test() bodies in-process, one after the
 * other, and print "concurrency: N passed, N failed".
 *
 * Only the macros the concurrency suites use are provided. An assertion
 * failure prints the location and longjmps out of the test body.
 */
#ifndef CANARYD_TSAN_CRITERION_SHIM_H
#define CANARYD_TSAN_CRITERION_SHIM_H

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

typedef void (*shim_fn)(void);
void shim_register(const char *suite, const char *name, shim_fn fn);
void shim_fail(const char *file, int line, const char *expr);
extern _Thread_local jmp_buf *shim_jmp;

#define Test(suite, name, ...)                                                   \
    static void suite##_##name##_impl(void);                                     \
    __attribute__((constructor)) static void suite##_##name##_reg(void)          \
    {                                                                            \
        shim_register(#suite, #name, suite##_##name##_impl);                     \
    }                                                                            \
    static void suite##_##name##_impl(void)

#define SHIM_CHECK(cond, text)                                                   \
    do {                                                                         \
        if (!(cond))                                                             \
            shim_fail(__FILE__, __LINE__, text);                                 \
    } while (0)

#define cr_assert(cond, ...) SHIM_CHECK((cond), #cond)
#define cr_assert_not(cond, ...) SHIM_CHECK(!(cond), "!(" #cond ")")
#define cr_assert_eq(a, b, ...) SHIM_CHECK((a) == (b), #a " == " #b)
#define cr_assert_neq(a, b, ...) SHIM_CHECK((a) != (b), #a " != " #b)
#define cr_assert_gt(a, b, ...) SHIM_CHECK((a) > (b), #a " > " #b)
#define cr_assert_geq(a, b, ...) SHIM_CHECK((a) >= (b), #a " >= " #b)
#define cr_assert_lt(a, b, ...) SHIM_CHECK((a) < (b), #a " < " #b)
#define cr_assert_leq(a, b, ...) SHIM_CHECK((a) <= (b), #a " <= " #b)
#define cr_assert_null(p, ...) SHIM_CHECK((p) == NULL, #p " == NULL")
#define cr_assert_not_null(p, ...) SHIM_CHECK((p) != NULL, #p " != NULL")
#define cr_log_info(...) (fprintf(stderr, __VA_ARGS__), fputc('\n', stderr))

#endif
