/*
 * linereader.c - bounded-memory line splitting over a file descriptor.
 *
 * One buffer of max_line + 2 + CHUNK bytes: [start, end) holds bytes read but
 * not yet returned. A line is returned in place when its '\n' is in the
 * buffer. When the pending bytes alone exceed what any acceptable line can
 * hold (max_line + a '\r'), the line is too long: its first bytes are copied
 * aside for the log, and the rest is read and thrown away chunk by chunk up
 * to the next '\n', so a 1 GB line costs one buffer, not 1 GB. Pending bytes
 * are moved to the front before each read; they are less than one line, so
 * the copying stays proportional to the input.
 */
#include "linereader.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK 65536

struct cd_linereader {
    int fd;
    size_t max_line;
    char *buf;
    size_t cap, start, end;
    bool eof;
    uint64_t lineno;
    uint64_t bytes;
    char prefix[CD_LR_PREFIX];
};

cd_linereader_t *cd_linereader_new(int fd, size_t max_line, char *errbuf, size_t errsize)
{
    cd_linereader_t *r = NULL;

    if (max_line == 0 || max_line > ((size_t)1 << 30)) {
        snprintf(errbuf, errsize, "line limit %zu is outside the accepted range 1..%zu", max_line,
                 (size_t)1 << 30);
        goto err;
    }
    r = calloc(1, sizeof(*r));
    if (!r) goto oom;
    r->fd = fd;
    r->max_line = max_line;
    r->cap = max_line + 2 + CHUNK;
    r->buf = malloc(r->cap);
    if (!r->buf) goto oom;
    return r;
oom:
    snprintf(errbuf, errsize, "out of memory for a %zu-byte line buffer", max_line + 2 + CHUNK);
err:
    cd_linereader_destroy(r);
    return NULL;
}

void cd_linereader_destroy(cd_linereader_t *r)
{
    if (!r) return;
    free(r->buf);
    free(r);
}

uint64_t cd_linereader_lineno(const cd_linereader_t *r)
{
    return r->lineno;
}

uint64_t cd_linereader_bytes(const cd_linereader_t *r)
{
    return r->bytes;
}

/* read(2) into buf[end, cap); returns bytes read, 0 at EOF, -1 on error. */
static ssize_t fill(cd_linereader_t *r)
{
    for (;;) {
        ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
        if (n < 0 && errno == EINTR) continue;
        if (n > 0) {
            r->end += (size_t)n;
            r->bytes += (uint64_t)n;
        }
        return n;
    }
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

static cd_lr_status_t too_long(cd_linereader_t *r, const char *s, const char **line, size_t *len)
{
    size_t n = r->max_line < CD_LR_PREFIX ? r->max_line : CD_LR_PREFIX;
    memcpy(r->prefix, s, n);
    *line = r->prefix;
    *len = n;
    return CD_LR_TOO_LONG;
}

/* Discards input up to and including the next '\n' (or to EOF). */
static cd_lr_status_t skip_rest(cd_linereader_t *r)
{
    r->start = r->end = 0;
    for (;;) {
        ssize_t n = fill(r);
        if (n < 0) return CD_LR_ERROR;
        if (n == 0) {
            r->eof = true;
            r->start = r->end = 0;
            return CD_LR_TOO_LONG;
        }
        char *nl = memchr(r->buf, '\n', r->end);
        if (nl) {
            r->start = (size_t)(nl - r->buf) + 1;
            return CD_LR_TOO_LONG;
        }
        r->end = 0;
    }
}

/* Hands out [s, s + n) as the current line (CR stripped, limit checked).
 * Returns CD_LR_EOF for a blank line: the caller then looks further. */
static cd_lr_status_t emit(cd_linereader_t *r, const char *s, size_t n, const char **line,
                           size_t *len)
{
    r->lineno++;
    if (n > 0 && s[n - 1] == '\r') n--;
    if (n > r->max_line) return too_long(r, s, line, len);
    if (blank(s, n)) return CD_LR_EOF;
    *line = s;
    *len = n;
    return CD_LR_LINE;
}

cd_lr_status_t cd_linereader_next(cd_linereader_t *r, const char **line, size_t *len)
{
    for (;;) {
        char *s = r->buf + r->start;
        size_t pending = r->end - r->start;
        char *nl = pending ? memchr(s, '\n', pending) : NULL;

        if (nl) {
            r->start += (size_t)(nl - s) + 1;
            cd_lr_status_t st = emit(r, s, (size_t)(nl - s), line, len);
            if (st != CD_LR_EOF) return st;
            continue;
        }
        if (r->eof) {
            if (pending == 0) return CD_LR_EOF;
            r->start = r->end;
            cd_lr_status_t st = emit(r, s, pending, line, len);
            if (st != CD_LR_EOF) return st;
            continue;
        }
        if (pending > r->max_line + 1) {
            /* No '\n' within max_line + '\r' bytes: too long whatever follows. */
            r->lineno++;
            too_long(r, s, line, len);
            return skip_rest(r);
        }
        if (r->start > 0) {
            memmove(r->buf, s, pending);
            r->start = 0;
            r->end = pending;
        }
        ssize_t n = fill(r);
        if (n < 0) return CD_LR_ERROR;
        if (n == 0) r->eof = true;
    }
}
