/*
 * config_expect.h - the config suites' check that a document was refused
 * with exactly the problems expected: the diagnostics' text line for line
 * and one count per line. One copy for test_config (JSON), test_config_yaml
 * and test_config_env (files and environment), which each had their own.
 *
 * Header-only (static inline): only tests/.../test_*.c files become
 * binaries. No state; the test's thread.
 */
#ifndef CANARYD_TEST_CONFIG_EXPECT_H
#define CANARYD_TEST_CONFIG_EXPECT_H

#include <criterion/criterion.h>

#include "canaryd/config.h"

/* c, what a parse or load returned with diagnostics d, must be NULL, and d
 * must hold exactly lines (each problem a line ending in '\n'). */
static inline void expect_refused(const cd_config_t *c, const cd_diag_t *d, const char *lines)
{
    cr_assert_null(c, "accepted, expected:\n%s", lines);
    cr_assert_str_eq(d->text, lines);
    int n = 0;
    for (const char *s = lines; *s; s++)
        n += *s == '\n';
    cr_assert_eq(d->count, n, "count %d, lines %d", d->count, n);
}

#endif
