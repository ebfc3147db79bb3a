/*
 * linereader.h - newline-delimited input of any length, with a bounded buffer.
 *
 * Used by `canaryd replay` for JSONL files and stdin. Lines are handed out
 * as (pointer, length) into the reader's buffer, so they may contain NUL
 * bytes (the decoder rejects them with a reason instead of having them cut
 * the line short). Memory is bounded by the line limit: a line longer than
 * the limit is skipped to its newline without being buffered whole and is
 * reported as CD_LR_TOO_LONG together with its first bytes (for the log).
 *
 * Line rules: '\n' ends a line and a trailing '\r' is dropped (CRLF input);
 * a last line without '\n' is still a line; lines holding only spaces, tabs
 * and '\r' are skipped (they are not bad input), but are counted in the line
 * numbers. The limit applies to the line without its "\r\n".
 *
 * Threading: a reader belongs to one thread.
 */
#ifndef CANARYD_AGENT_LINEREADER_H
#define CANARYD_AGENT_LINEREADER_H

#include <stddef.h>
#include <stdint.h>

typedef struct cd_linereader cd_linereader_t;

typedef enum cd_lr_status {
    CD_LR_LINE = 0, /* *line / *len hold a line */
    CD_LR_TOO_LONG, /* a line over the limit was skipped; *line / *len hold its first bytes */
    CD_LR_EOF,      /* end of input */
    CD_LR_ERROR,    /* read(2) failed; errno is set */
} cd_lr_status_t;

/* Bytes of a too-long line kept for the log sample. */
#define CD_LR_PREFIX 128

/*
 * Reads from fd (not owned: the caller closes it) with lines of at most
 * max_line bytes (> 0). Returns NULL with a message in errbuf on a bad limit
 * or allocation failure. Free with cd_linereader_destroy().
 */
cd_linereader_t *cd_linereader_new(int fd, size_t max_line, char *errbuf, size_t errsize);
void cd_linereader_destroy(cd_linereader_t *r);

/*
 * Next line. The returned pointer is borrowed: valid until the next call or
 * destroy. Retries read(2) on EINTR.
 */
cd_lr_status_t cd_linereader_next(cd_linereader_t *r, const char **line, size_t *len);

/* 1-based number of the line last returned (blank lines included). */
uint64_t cd_linereader_lineno(const cd_linereader_t *r);

/* Bytes consumed from fd so far. */
uint64_t cd_linereader_bytes(const cd_linereader_t *r);

#endif
