/*
 * verdict_log.c - append-only JSON-lines file with one write(2) and one
 * fsync(2) per record.
 *
 * The record and its newline are copied into one buffer so a single write
 * places the whole line (O_APPEND makes the offset update atomic with it).
 * fsync per record is deliberate: verdicts are a few per minute at most and
 * a ROLLBACK that is acted on must survive a crash of the host. A short
 * write (disk full, quota) is continued until the line is complete or an
 * error is reported, so a reader never waits on a line without its newline
 * unless the disk refused it.
 */
#include "canaryd/verdict_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cd_verdict_log {
    int fd;
    char *path;
    char *buf;
    size_t cap;
};

static int open_path(const char *path, char *errbuf, size_t errsize)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) snprintf(errbuf, errsize, "verdict log %s: %s", path, strerror(errno));
    return fd;
}

cd_verdict_log_t *cd_verdict_log_open(const char *path, char *errbuf, size_t errsize)
{
    cd_verdict_log_t *l = calloc(1, sizeof(*l));
    if (!l) {
        snprintf(errbuf, errsize, "verdict log %s: out of memory", path);
        return NULL;
    }
    l->fd = -1;
    l->path = strdup(path);
    if (!l->path) {
        snprintf(errbuf, errsize, "verdict log %s: out of memory", path);
        goto err;
    }
    l->fd = open_path(path, errbuf, errsize);
    if (l->fd < 0) goto err;
    return l;
err:
    cd_verdict_log_close(l);
    return NULL;
}

int cd_verdict_log_write(cd_verdict_log_t *l, const char *line, size_t len, char *errbuf,
                         size_t errsize)
{
    if (len + 1 > l->cap) {
        size_t cap = len + 1 < 4096 ? 4096 : len + 1;
        char *b = realloc(l->buf, cap);
        if (!b) {
            snprintf(errbuf, errsize, "verdict log %s: out of memory", l->path);
            return -1;
        }
        l->buf = b;
        l->cap = cap;
    }
    memcpy(l->buf, line, len);
    l->buf[len] = '\n';

    size_t done = 0;
    while (done < len + 1) {
        ssize_t n = write(l->fd, l->buf + done, len + 1 - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            snprintf(errbuf, errsize, "verdict log %s: write: %s", l->path,
                     n < 0 ? strerror(errno) : "no progress");
            return -1;
        }
        done += (size_t)n;
    }
    if (fsync(l->fd) != 0) {
        snprintf(errbuf, errsize, "verdict log %s: fsync: %s", l->path, strerror(errno));
        return -1;
    }
    return 0;
}

int cd_verdict_log_reopen(cd_verdict_log_t *l, char *errbuf, size_t errsize)
{
    int fd = open_path(l->path, errbuf, errsize);
    if (fd < 0) return -1;
    close(l->fd);
    l->fd = fd;
    return 0;
}

const char *cd_verdict_log_path(const cd_verdict_log_t *l)
{
    return l->path;
}

void cd_verdict_log_close(cd_verdict_log_t *l)
{
    if (!l) return;
    if (l->fd >= 0) close(l->fd);
    free(l->buf);
    free(l->path);
    free(l);
}
