/*
 * chart.h - SVG charts of the per-rule history (agent/report/chart.c), shared by
 * `canaryd report` (a static HTML file) and the live status page (the
 * server renders the same fragments into /api/v1/dashboard). Internal to
 * agent/. The look (CSS) is agent/report/chart_style.c.
 */
#ifndef CANARYD_AGENT_CHART_H
#define CANARYD_AGENT_CHART_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canaryd/history.h"

/* A growing text buffer (agent/report/textbuf.c); on OOM it stops growing and sets oom (callers
 * check once at the end). */
typedef struct cd_buf {
    char *s;
    size_t len, cap;
    bool oom;
} cd_buf_t;

void cd_buf_printf(cd_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cd_buf_puts(cd_buf_t *b, const char *s);
/* Appends s with &, <, >, " and ' escaped (text and attribute values). */
void cd_buf_html(cd_buf_t *b, const char *s);
/* Takes the text (malloc'd, NUL-terminated; NULL after OOM) and resets b. */
char *cd_buf_take(cd_buf_t *b, size_t *len);

/* Names used in chart captions; borrowed. */
typedef struct cd_chart_names {
    const char (*types)[CD_NAME_MAX];
    int ntypes;
    const char (*hists)[CD_NAME_MAX];
    int nhists;
} cd_chart_names_t;

/*
 * The release's verdict timeline over [t0, t1]: a bar of verdict segments
 * (class "seg v-<VERDICT>", data-from / data-to in ms), ALERT and ROLLBACK
 * marks, and the sequence as text ("ANALYZING 12:00:00 -> HEALTHY ...").
 */
void cd_chart_timeline(cd_buf_t *b, const cd_history_view_t *v, int64_t t0, int64_t t1);

/*
 * Rule i's chart over [t0, t1] as an HTML <section class="rule"> holding a
 * caption, one <svg class="chart"> (canary, stable, threshold and band
 * series as paths; pending / firing spans and short-of-data runs as
 * rects with <title>s; verdicts and state changes as marks with their
 * reasons in <title>) and the rule's records listed beside it (the last
 * max_listed; 0 = none).
 */
void cd_chart_rule(cd_buf_t *b, const cd_history_view_t *v, int i, int64_t t0, int64_t t1,
                   const cd_chart_names_t *names, int max_listed);

/* Shared SVG definitions (the short-of-data hatch): once per document,
 * before the charts. */
extern const char cd_chart_defs[];

/* The stylesheet of the report and the status page (one look). */
extern const char cd_chart_css[];

#endif
