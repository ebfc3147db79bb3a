/*
 * diag.c - accumulated diagnostics for the config loader (cd_diag_t).
 *
 * A diag is a fixed buffer of newline-terminated lines plus a count, so a
 * loader can report every problem it finds without allocating, and a caller
 * can print them all at once. Each line is formatted into a bounded local
 * buffer first (an absurd line is cut with "..." at 1023 bytes) and appended
 * only if it fits whole: a reader never sees half a line. Lines that do not
 * fit are still counted, so count may exceed the number of lines in text;
 * callers can say how many were left out.
 *
 * Not thread-safe: one diag belongs to one loader call.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "canaryd/config.h"

#define CD_DIAG_LINE_MAX 1024

void cd_diag_init(cd_diag_t *d)
{
    d->count = 0;
    d->len = 0;
    d->text[0] = '\0';
}

void cd_diag_add(cd_diag_t *d, const char *fmt, ...)
{
    char line[CD_DIAG_LINE_MAX];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    d->count++;
    if (n < 0) return;
    size_t len = (size_t)n;
    if (len >= sizeof(line)) {
        len = sizeof(line) - 1;
        memcpy(line + len - 3, "...", 3);
    }
    /* The line, its newline and the terminating NUL must all fit. */
    if (d->len + len + 2 > sizeof(d->text)) return;
    memcpy(d->text + d->len, line, len);
    d->len += len;
    d->text[d->len++] = '\n';
    d->text[d->len] = '\0';
}
