/*
 * verdict_log.h - the verdict log: an append-only file of JSON lines, one per
 * record, each made durable (fsync) before the next decision is acted on.
 *
 * Every record is written with a single write(2) on an O_APPEND descriptor,
 * so concurrent readers (`canaryd tail`) and other appenders never see half
 * a line interleaved with another. cd_verdict_log_reopen() closes and
 * re-opens the path, for log rotation on SIGHUP (logrotate's "create" mode).
 *
 * Threading: a log belongs to one thread at a time (the sink thread); call
 * reopen from that thread too (e.g. when a signal handler set a flag).
 */
#ifndef CANARYD_VERDICT_LOG_H
#define CANARYD_VERDICT_LOG_H

#include <stddef.h>

typedef struct cd_verdict_log cd_verdict_log_t;

/*
 * Opens (creating, mode 0644) path for appending. Returns NULL with
 * "verdict log PATH: strerror" in errbuf on failure. The path is copied.
 * Free with cd_verdict_log_close().
 */
cd_verdict_log_t *cd_verdict_log_open(const char *path, char *errbuf, size_t errsize);

/*
 * Appends line (len bytes, no newline; a newline is added) and fsyncs.
 * Returns 0, or -1 with the path and strerror in errbuf (the record may then
 * be partly written; the caller decides whether to retry or stop).
 */
int cd_verdict_log_write(cd_verdict_log_t *l, const char *line, size_t len, char *errbuf,
                         size_t errsize);

/* Closes and re-opens the path. On failure returns -1 with a message and
 * keeps writing to the old descriptor. */
int cd_verdict_log_reopen(cd_verdict_log_t *l, char *errbuf, size_t errsize);

/* The path given to open (borrowed). */
const char *cd_verdict_log_path(const cd_verdict_log_t *l);

void cd_verdict_log_close(cd_verdict_log_t *l);

#endif
