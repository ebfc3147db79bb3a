/*
 * tail.c - `canaryd tail [-n N|all] [--no-follow] FILE`: the verdict log for
 * people, like `tail -F` piped through the pretty format.
 *
 * Start: the last N lines are found by reading backwards from the end in
 * chunks (a large log is not read whole). Follow: every 200 ms the open
 * descriptor is read to its end; the path is stat'ed, and if it now names
 * another file (inode or device changed: rotation) the old descriptor is
 * drained first and the new file read from its start; if the file shrank
 * below what was read (truncation) reading restarts at 0. Only complete
 * lines are printed while following; a partial last line waits for its
 * newline (or is printed as it is when the file is rotated away or at the
 * end of --no-follow). SIGINT / SIGTERM end the loop; exit status 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "canaryd/verdict_fmt.h"
#include "../cli/cli.h"

#define POLL_MS 200
#define LINE_MAX_BYTES (1 << 20)

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

typedef struct tail {
    const char *path;
    int fd;
    dev_t dev;
    ino_t ino;
    off_t offset; /* bytes of the current file consumed */
    char *buf;    /* partial line */
    size_t len, cap;
    bool colour;
} tail_t;

static void print_line(tail_t *t, const char *s, size_t n)
{
    char out[8192];
    if (n > 0 && s[n - 1] == '\r') n--;
    if (n == 0) return;
    if (cd_verdict_pretty_from_json(s, n, out, sizeof(out), t->colour) >= 0) {
        fputs(out, stdout);
        fputc('\n', stdout);
    } else {
        fwrite(s, 1, n, stdout); /* too long to render: shown as it is */
        fputc('\n', stdout);
    }
}

/* Adds bytes to the partial line; beyond LINE_MAX_BYTES they are dropped
 * (such a line is no verdict record; its first megabyte is shown as is). */
static void append(tail_t *t, const char *data, size_t n)
{
    if (t->len + n > LINE_MAX_BYTES) n = LINE_MAX_BYTES - t->len;
    if (t->len + n > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n)
            cap *= 2;
        char *b = realloc(t->buf, cap);
        if (!b) return; /* out of memory: the line is shown shortened */
        t->buf = b;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, data, n);
    t->len += n;
}

/* Feeds data through the partial line buffer, printing every complete line. */
static void consume(tail_t *t, const char *data, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) : n;
        if (!nl) {
            append(t, data, take);
            return;
        }
        if (t->len == 0) {
            print_line(t, data, take);
        } else {
            append(t, data, take);
            print_line(t, t->buf, t->len);
            t->len = 0;
        }
        data += take + 1;
        n -= take + 1;
    }
}

static void flush_partial(tail_t *t)
{
    if (t->len > 0) print_line(t, t->buf, t->len);
    t->len = 0;
}

/* Reads fd from its offset to EOF. Returns -1 on a read error. */
static int drain(tail_t *t)
{
    char chunk[65536];
    for (;;) {
        ssize_t n = read(t->fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            fprintf(stderr, "canaryd tail: %s: %s\n", t->path, strerror(errno));
            return -1;
        }
        if (n == 0) return 0;
        t->offset += n;
        consume(t, chunk, (size_t)n);
    }
}

static int open_file(tail_t *t, bool quiet)
{
    struct stat st;
    int fd = open(t->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (!quiet) fprintf(stderr, "canaryd tail: %s: %s\n", t->path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    t->fd = fd;
    t->dev = st.st_dev;
    t->ino = st.st_ino;
    t->offset = 0;
    return 0;
}

/* Offset where the last n lines of fd (size bytes) start. */
static off_t last_lines_start(int fd, off_t size, long n)
{
    char chunk[65536];
    off_t pos = size;
    long seen = 0;
    bool skip_final = true; /* the newline that ends the last line */

    while (pos > 0) {
        size_t len = pos < (off_t)sizeof(chunk) ? (size_t)pos : sizeof(chunk);
        pos -= (off_t)len;
        if (pread(fd, chunk, len, pos) != (ssize_t)len) return 0;
        for (size_t i = len; i-- > 0;) {
            if (chunk[i] != '\n') continue;
            if (skip_final && pos + (off_t)i == size - 1) {
                skip_final = false;
                continue;
            }
            if (++seen == n) return pos + (off_t)i + 1;
        }
        skip_final = false;
    }
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL); /* a signal cuts it short: the loop checks stop */
}

static void follow(tail_t *t)
{
    while (!stop) {
        struct stat st, cur;
        if (drain(t) < 0) return;
        fflush(stdout);
        sleep_ms(POLL_MS);
        if (stop) break;
        if (stat(t->path, &st) == 0 && (st.st_dev != t->dev || st.st_ino != t->ino)) {
            /* Rotated: finish the old file, then the new one from its start. */
            if (drain(t) < 0) return;
            flush_partial(t);
            close(t->fd);
            t->fd = -1;
            if (open_file(t, true) < 0) {
                /* Gone again before we opened it: wait for the next one. */
                while (!stop && open_file(t, true) < 0)
                    sleep_ms(POLL_MS);
                if (stop) return;
            }
            continue;
        }
        if (fstat(t->fd, &cur) == 0 && cur.st_size < t->offset) {
            /* Truncated in place (copytruncate): start over. */
            fprintf(stderr, "canaryd tail: %s: file truncated\n", t->path);
            lseek(t->fd, 0, SEEK_SET);
            t->offset = 0;
            t->len = 0;
        }
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: canaryd tail [-n N|all] [--no-follow] FILE\n"
               "  Prints the last N verdict records of FILE (default 10; 0 = none, all = every\n"
               "  one) in the human format, then follows the file through rotation and\n"
               "  truncation until SIGINT/SIGTERM. Colour when stdout is a terminal and\n"
               "  NO_COLOR is unset.\n"
               "  exit: 0 done or interrupted, 1 the file cannot be read, 2 usage error\n");
}

int cd_cli_tail(int argc, char **argv)
{
    tail_t t = {.fd = -1};
    long n = 10;
    bool follow_mode = true;
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "-n") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            char *end;
            if (strcmp(v, "all") == 0) {
                n = -1;
                continue;
            }
            errno = 0;
            n = strtol(v, &end, 10);
            if (errno || end == v || *end || n < 0) {
                fprintf(stderr,
                        "canaryd tail: -n: \"%s\" is not a count; accepted: a number "
                        ">= 0 or \"all\"\n",
                        v);
                return 2;
            }
        } else if (strcmp(a, "--no-follow") == 0) {
            follow_mode = false;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "canaryd tail: unknown option \"%s\"\n", a);
            usage(stderr);
            return 2;
        } else if (!t.path) {
            t.path = a;
        } else {
            fprintf(stderr, "canaryd tail: more than one file given (\"%s\")\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!t.path) {
        usage(stderr);
        return 2;
    }
    const char *nc = getenv("NO_COLOR");
    t.colour = isatty(STDOUT_FILENO) && !(nc && *nc);

    cd_cli_on_signals(on_signal, NULL);

    if (open_file(&t, false) < 0) return 1;
    struct stat st;
    if (fstat(t.fd, &st) != 0) goto out;
    off_t start = n < 0 ? 0 : n == 0 ? st.st_size : last_lines_start(t.fd, st.st_size, n);
    if (lseek(t.fd, start, SEEK_SET) < 0) goto out;
    t.offset = start;
    if (drain(&t) < 0) goto out;
    if (follow_mode)
        follow(&t);
    else
        flush_partial(&t);
    fflush(stdout);
    rc = 0;
out:
    if (t.fd >= 0) close(t.fd);
    free(t.buf);
    return rc;
}
