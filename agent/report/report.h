/*
 * report.h - the HTML document of `canaryd report` (agent/report/report.c): one
 * self-contained file (inline CSS and SVG, no script, no font, nothing
 * fetched) from a rule history and the stream's counters. Internal to agent/.
 */
#ifndef CANARYD_AGENT_REPORT_H
#define CANARYD_AGENT_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "canaryd/config.h"
#include "canaryd/history.h"
#include "canaryd/pipeline.h"

typedef struct cd_report_input {
    const cd_history_view_t *view;
    const cd_config_t *cfg;           /* rule definitions and names */
    const cd_pipeline_stats_t *stats; /* NULL: no summary (report from a verdict log) */
    const char *source;               /* what was read: "events.jsonl", "stdin", ... */
    const char *final_verdict;        /* e.g. "ROLLBACK" */
    uint64_t lines;
} cd_report_input_t;

/* The document, malloc'd and NUL-terminated (caller frees), or NULL when
 * out of memory. Pure. */
char *cd_report_render(const cd_report_input_t *in, size_t *len);

/*
 * Renders h (all of it) with in's other fields and writes it to path ("-":
 * stdout). Returns the bytes written, or -1 with a message in errbuf.
 * The caller's thread.
 */
long cd_report_write(const char *path, cd_history_t *h, const cd_report_input_t *in, char *errbuf,
                     size_t errsize);

/* The final verdict as replay states it: ROLLBACK and PROMOTE stick, a rule
 * still firing otherwise is an ALERT. Evaluating thread of p. */
const char *cd_report_final_verdict(const cd_pipeline_t *p);

#endif
