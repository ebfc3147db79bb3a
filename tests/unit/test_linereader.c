/*
 * test_linereader.c - exact lines out of the line reader: CRLF, a last line
 * without newline, blank lines, a line over the limit skipped without
 * disturbing the next one, NUL bytes kept with their length.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../agent/source/linereader.h"

typedef struct got {
    cd_lr_status_t st[16];
    char *line[16];
    size_t len[16];
    uint64_t lineno[16];
    int n;
} got_t;

/* Writes data to a temp file and reads it back through a reader. */
static void read_all(const char *data, size_t size, size_t max_line, got_t *g)
{
    char path[] = "/tmp/cd_lr_XXXXXX";
    char err[256];
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    unlink(path);
    cr_assert_eq(write(fd, data, size), (ssize_t)size);
    cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);

    cd_linereader_t *r = cd_linereader_new(fd, max_line, err, sizeof(err));
    cr_assert_not_null(r, "%s", err);
    memset(g, 0, sizeof(*g));
    for (;;) {
        const char *l;
        size_t n;
        cd_lr_status_t st = cd_linereader_next(r, &l, &n);
        if (st == CD_LR_EOF) break;
        cr_assert_lt(g->n, 16);
        g->st[g->n] = st;
        g->line[g->n] = malloc(n + 1);
        memcpy(g->line[g->n], l, n);
        g->line[g->n][n] = '\0';
        g->len[g->n] = n;
        g->lineno[g->n] = cd_linereader_lineno(r);
        g->n++;
    }
    cr_assert_eq(cd_linereader_bytes(r), size);
    cd_linereader_destroy(r);
    close(fd);
}

static void free_got(got_t *g)
{
    for (int i = 0; i < g->n; i++)
        free(g->line[i]);
}

static void expect_line(got_t *g, int i, const char *s, uint64_t lineno)
{
    cr_assert_eq(g->st[i], CD_LR_LINE, "entry %d: status %d", i, g->st[i]);
    cr_assert_eq(g->len[i], strlen(s), "entry %d: length %zu", i, g->len[i]);
    cr_assert_str_eq(g->line[i], s);
    cr_assert_eq(g->lineno[i], lineno, "entry %d: line number %llu", i,
                 (unsigned long long)g->lineno[i]);
}

Test(linereader, crlf_and_lf_mixed)
{
    const char in[] = "{\"a\":1}\r\n{\"b\":2}\n{\"c\":3}\r\n";
    got_t g;
    read_all(in, sizeof(in) - 1, 1024, &g);
    cr_assert_eq(g.n, 3);
    expect_line(&g, 0, "{\"a\":1}", 1);
    expect_line(&g, 1, "{\"b\":2}", 2);
    expect_line(&g, 2, "{\"c\":3}", 3);
    free_got(&g);
}

Test(linereader, last_line_without_newline)
{
    const char in[] = "first\nsecond";
    got_t g;
    read_all(in, sizeof(in) - 1, 1024, &g);
    cr_assert_eq(g.n, 2);
    expect_line(&g, 0, "first", 1);
    expect_line(&g, 1, "second", 2);
    free_got(&g);
}

Test(linereader, blank_lines_skipped_but_numbered)
{
    const char in[] = "\n  \t\r\nx\n\r\n\ny \n   ";
    got_t g;
    read_all(in, sizeof(in) - 1, 1024, &g);
    cr_assert_eq(g.n, 2);
    expect_line(&g, 0, "x", 3);
    expect_line(&g, 1, "y ", 6);
    free_got(&g);
}

Test(linereader, empty_input)
{
    got_t g;
    read_all("", 0, 16, &g);
    cr_assert_eq(g.n, 0);
}

Test(linereader, long_line_skipped_next_intact)
{
    size_t big = 100 * 1024;
    char *in = malloc(big + 64);
    size_t n = 0;
    memcpy(in + n, "before\n", 7);
    n += 7;
    for (size_t i = 0; i < big; i++)
        in[n++] = (char)('a' + i % 26);
    memcpy(in + n, "\nafter\n", 7);
    n += 7;

    got_t g;
    read_all(in, n, 65536, &g);
    cr_assert_eq(g.n, 3);
    expect_line(&g, 0, "before", 1);
    cr_assert_eq(g.st[1], CD_LR_TOO_LONG);
    cr_assert_eq(g.len[1], CD_LR_PREFIX, "prefix of %zu bytes", g.len[1]);
    cr_assert_eq(memcmp(g.line[1], "abcdefghijklmnopqrstuvwxyzabcdef", 32), 0);
    cr_assert_eq(g.lineno[1], 2);
    expect_line(&g, 2, "after", 3);
    free_got(&g);
    free(in);
}

Test(linereader, long_last_line_without_newline)
{
    char in[300];
    memset(in, 'z', sizeof(in));
    memcpy(in, "ok\n", 3);
    got_t g;
    read_all(in, sizeof(in), 100, &g);
    cr_assert_eq(g.n, 2);
    expect_line(&g, 0, "ok", 1);
    cr_assert_eq(g.st[1], CD_LR_TOO_LONG);
    cr_assert_eq(g.len[1], 100);
    cr_assert_eq(g.lineno[1], 2);
    free_got(&g);
}

Test(linereader, limit_is_exact_and_excludes_crlf)
{
    /* limit 5: "12345\r\n" fits, "123456\n" does not, "abcde" at EOF fits */
    const char in[] = "12345\r\n123456\nabcde";
    got_t g;
    read_all(in, sizeof(in) - 1, 5, &g);
    cr_assert_eq(g.n, 3);
    expect_line(&g, 0, "12345", 1);
    cr_assert_eq(g.st[1], CD_LR_TOO_LONG);
    cr_assert_eq(g.len[1], 5);
    cr_assert_eq(memcmp(g.line[1], "12345", 5), 0);
    expect_line(&g, 2, "abcde", 3);
    free_got(&g);
}

Test(linereader, nul_bytes_pass_through)
{
    const char in[] = "a\0b\nc\0\0\n";
    got_t g;
    read_all(in, sizeof(in) - 1, 64, &g);
    cr_assert_eq(g.n, 2);
    cr_assert_eq(g.st[0], CD_LR_LINE);
    cr_assert_eq(g.len[0], 3);
    cr_assert_eq(memcmp(g.line[0], "a\0b", 3), 0);
    cr_assert_eq(g.len[1], 3);
    cr_assert_eq(memcmp(g.line[1], "c\0\0", 3), 0);
    free_got(&g);
}

Test(linereader, rejects_zero_limit)
{
    char err[128];
    cr_assert_null(cd_linereader_new(0, 0, err, sizeof(err)));
    cr_assert_str_eq(err, "line limit 0 is outside the accepted range 1..1073741824");
}

Test(linereader, lines_across_read_chunks)
{
    /* 3000 lines of 50 bytes = 150 KB, more than one 64 KB read. */
    size_t n = 3000 * 50;
    char *in = malloc(n);
    for (size_t i = 0; i < 3000; i++) {
        char *l = in + i * 50;
        snprintf(l, 50, "%048zu", i);
        l[49] = '\n';
    }
    char path[] = "/tmp/cd_lr_XXXXXX", err[128];
    int fd = mkstemp(path);
    unlink(path);
    cr_assert_eq(write(fd, in, n), (ssize_t)n);
    lseek(fd, 0, SEEK_SET);
    cd_linereader_t *r = cd_linereader_new(fd, 60, err, sizeof(err));
    cr_assert_not_null(r);
    for (size_t i = 0; i < 3000; i++) {
        const char *l;
        size_t len;
        char want[64];
        snprintf(want, sizeof(want), "%048zu", i);
        cr_assert_eq(cd_linereader_next(r, &l, &len), CD_LR_LINE, "line %zu", i);
        cr_assert_eq(len, 49, "line %zu has %zu bytes", i, len);
        cr_assert_eq(memcmp(l, want, 48), 0);
    }
    const char *l;
    size_t len;
    cr_assert_eq(cd_linereader_next(r, &l, &len), CD_LR_EOF);
    cd_linereader_destroy(r);
    close(fd);
    free(in);
}
