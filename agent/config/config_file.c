/*
 * config_file.c - reads a whole file the config names: the config itself
 * (config.c), its baseline_file (config_baseline.c), a secret's K_file
 * (config_secrets.c), the HTTP token file (config_http.c).
 *
 * A leaf of the loader, like config_json.c and diag.c: it calls nothing of
 * the loader's, so the section parsers that read files need not call back
 * up into config.c (which calls them). Refuses what is not a regular file
 * (a FIFO named by mistake must not hang start-up), a file over the
 * caller's size cap, and a file that changed size while read.
 *
 * Start-up only; no state, any thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_internal.h"

int cd_cfg_read_file(const char *path, size_t max, char **out, size_t *outlen, char *err,
                     size_t errsize)
{
    char *buf = NULL;
    struct stat st;
    size_t len = 0;

    /* O_NONBLOCK: opening a FIFO named by mistake must not hang start-up. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, errsize, "cannot open: %s", strerror(errno));
        goto err;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(err, errsize, "cannot stat: %s", strerror(errno));
        goto err;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errsize, "not a regular file");
        goto err;
    }
    if ((uint64_t)st.st_size > max) {
        snprintf(err, errsize, "larger than %zu bytes", max);
        goto err;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        snprintf(err, errsize, "out of memory");
        goto err;
    }
    /* Read up to one byte more than stat said, to notice a file that grew. */
    while (len <= (size_t)st.st_size) {
        ssize_t n = read(fd, buf + len, (size_t)st.st_size + 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(err, errsize, "cannot read: %s", strerror(errno));
            goto err;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    if (len > (size_t)st.st_size) {
        snprintf(err, errsize, "changed while being read");
        goto err;
    }
    close(fd);
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return 0;
err:
    if (fd >= 0) close(fd);
    free(buf);
    return -1;
}
