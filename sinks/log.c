/*
 * log.c - the "log" sink: verdict records appended to a file (the verdict
 * log of sinks/verdict_log.c: one write and one fsync per record, reopened on
 * SIGHUP for logrotate) or written to stdout ("path": "-").
 *
 * Config: {"type": "log", "path": FILE | "-", "format": "json" | "pretty",
 * "colour": false}. "pretty" is the human line of `canaryd tail` (made from
 * the JSON, so what people read is what is logged); colour wraps the verdict
 * word in ANSI colour.
 *
 * Delivery is synchronous (a local write); a failed write returns RETRY (a
 * full disk may be freed) and is logged rate-limited. Dispatcher thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canaryd/log.h"
#include "canaryd/sink.h"
#include "canaryd/verdict_fmt.h"
#include "canaryd/verdict_log.h"
#include "sink_util.h"

typedef struct log_sink {
    cd_verdict_log_t *file; /* NULL: stdout */
    bool pretty, colour;
    char key[300]; /* rate-limit key */
} log_sink_t;

static void log_destroy(void *state);

static void *log_init(const void *conf, const char *path, cd_diag_t *diag)
{
    static const char *const KEYS[] = {"path", "format", "colour", NULL};
    static const char *const FORMATS[] = {"json", "pretty", NULL};
    const json_t *e = conf;
    char *file = NULL, err[512], p[256];
    int before = diag->count;
    log_sink_t *l = calloc(1, sizeof(*l));
    if (!l) {
        cd_diag_add(diag, "%s: out of memory", path);
        return NULL;
    }
    cd_sconf_keys(diag, path, e, KEYS, true);
    cd_sconf_string(diag, path, e, "path", true, false, &file);
    l->pretty = cd_sconf_enum(diag, path, e, "format", FORMATS, 0) == 1;
    cd_sconf_bool(diag, path, e, "colour", &l->colour);
    if (diag->count > before) goto err;
    snprintf(l->key, sizeof(l->key), "log sink %s", file);
    if (strcmp(file, "-") != 0) {
        l->file = cd_verdict_log_open(file, err, sizeof(err));
        if (!l->file) {
            cd_sconf_path(p, sizeof(p), path, "path");
            cd_diag_add(diag, "%s: %s", p, err);
            goto err;
        }
    }
    free(file);
    return l;
err:
    free(file);
    log_destroy(l);
    return NULL;
}

static cd_sink_result_t log_deliver(void *state, const cd_sink_msg_t *m, int64_t *retry_after_ms)
{
    log_sink_t *l = state;
    char err[512];
    (void)retry_after_ms;
    if (l->file) {
        if (cd_verdict_log_write(l->file, m->json, m->json_len, err, sizeof(err)) != 0) {
            cd_log_ratelimited(l->key, CD_LOG_ERROR, "%s", err);
            return CD_SINK_RETRY;
        }
        return CD_SINK_OK;
    }
    char out[8192];
    const char *line = m->json;
    if (l->pretty &&
        cd_verdict_pretty_from_json(m->json, m->json_len, out, sizeof(out), l->colour) >= 0)
        line = out;
    if (fputs(line, stdout) == EOF || fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
        cd_log_ratelimited(l->key, CD_LOG_ERROR, "writing records to stdout: %s", strerror(errno));
        clearerr(stdout);
        return CD_SINK_RETRY;
    }
    return CD_SINK_OK;
}

static void log_reopen(void *state)
{
    log_sink_t *l = state;
    char err[512];
    if (l->file && cd_verdict_log_reopen(l->file, err, sizeof(err)) != 0)
        cd_log(CD_LOG_ERROR, "%s (still writing to the old file)", err);
    else if (l->file)
        cd_log(CD_LOG_INFO, "verdict log %s reopened", cd_verdict_log_path(l->file));
}

static void log_destroy(void *state)
{
    log_sink_t *l = state;
    if (!l) return;
    cd_verdict_log_close(l->file);
    free(l);
}

const struct cd_sink_ops cd_sink_log = {
    .name = "log",
    .init = log_init,
    .deliver = log_deliver,
    .reopen = log_reopen,
    .destroy = log_destroy,
};
