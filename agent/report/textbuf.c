/*
 * textbuf.c - cd_buf_t (agent/report/chart.h): a growing text buffer for the
 * report and the status page, which build documents of a few hundred KB
 * piece by piece.
 *
 * Data: one malloc'd block that doubles when full. On OOM it stops growing
 * and remembers it; callers check once at the end (cd_buf_take returns
 * NULL), so rendering code need not check every append. HTML escaping of
 * text and attribute values (five characters) is here too: there is no
 * Debian library for that alone worth a dependency.
 *
 * Threading: a buffer belongs to its caller's thread.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chart.h"

static bool grow(cd_buf_t *b, size_t need)
{
    if (b->oom) return false;
    if (b->len + need + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + need + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->oom = true;
        return false;
    }
    b->s = s;
    b->cap = cap;
    return true;
}

void cd_buf_printf(cd_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0 || !grow(b, (size_t)n)) return;
    if ((size_t)n < sizeof small) {
        memcpy(b->s + b->len, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void cd_buf_puts(cd_buf_t *b, const char *s)
{
    size_t n = strlen(s);
    if (!grow(b, n)) return;
    memcpy(b->s + b->len, s, n + 1);
    b->len += n;
}

void cd_buf_html(cd_buf_t *b, const char *s)
{
    for (; *s; s++) {
        const char *e = NULL;
        switch (*s) {
        case '&':
            e = "&amp;";
            break;
        case '<':
            e = "&lt;";
            break;
        case '>':
            e = "&gt;";
            break;
        case '"':
            e = "&quot;";
            break;
        case '\'':
            e = "&#39;";
            break;
        }
        if (e) {
            cd_buf_puts(b, e);
        } else if (grow(b, 1)) {
            b->s[b->len++] = *s;
            b->s[b->len] = '\0';
        }
    }
}

char *cd_buf_take(cd_buf_t *b, size_t *len)
{
    char *s = b->oom ? NULL : b->s;
    if (b->oom) free(b->s);
    if (s == NULL && !b->oom) s = calloc(1, 1); /* nothing written: "" */
    if (len) *len = s ? b->len : 0;
    memset(b, 0, sizeof *b);
    return s;
}
