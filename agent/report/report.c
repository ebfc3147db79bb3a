/*
 * report.c - the document of `canaryd report` (agent/report/report.h).
 *
 * Layout, top to bottom: the release, the final verdict in large type and
 * the stream's span; the verdict timeline (ANALYZING -> HEALTHY -> ROLLBACK
 * ...); the summary (events by type and cohort, bad input by reason, late
 * and future); then one chart per rule (agent/report/chart.c) with its records
 * listed beside it. Everything is inline: the file opens offline and can be
 * attached to a post-mortem as it is. No script: hover texts are SVG
 * <title>s.
 *
 * Threading: pure; the caller's thread.
 */
#include "report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canaryd/event.h"
#include "canaryd/timeutil.h"
#include "chart.h"

/* The rules' names for the captions, from the config. */
static cd_chart_names_t names_of(const cd_config_t *cfg)
{
    return (cd_chart_names_t){cfg->type_names, cfg->decode.ntypes, cfg->numeric_names,
                              cfg->decode.nnumeric};
}

static void summary(cd_buf_t *b, const cd_report_input_t *in)
{
    const cd_pipeline_stats_t *s = in->stats;
    const cd_config_t *cfg = in->cfg;
    char lines[96] = ""; /* a live run reads messages, not lines */
    if (in->lines)
        snprintf(lines, sizeof lines, "<tr><td>lines read</td><td>%llu</td></tr>",
                 (unsigned long long)in->lines);
    cd_buf_puts(b, "<section class=\"summary\"><h2>Summary</h2><div class=\"cols\">");
    cd_buf_printf(b, "<table class=\"events\"><thead><tr><th>event type</th><th>canary</th>"
                     "<th>stable</th></tr></thead><tbody>");
    for (int t = 0; t <= cfg->decode.ntypes; t++) {
        int row = t < cfg->decode.ntypes ? t : CD_PIPELINE_OTHER;
        uint64_t c = s->by_type[row][CD_COHORT_CANARY], st = s->by_type[row][CD_COHORT_STABLE];
        if (row == CD_PIPELINE_OTHER && c + st == 0) continue;
        cd_buf_puts(b, "<tr><td>");
        cd_buf_html(b, row == CD_PIPELINE_OTHER ? "(other)" : cfg->type_names[t]);
        cd_buf_printf(b, "</td><td>%llu</td><td>%llu</td></tr>", (unsigned long long)c,
                      (unsigned long long)st);
    }
    cd_buf_printf(b,
                  "</tbody></table><table class=\"bad\"><thead><tr><th>bad input</th>"
                  "<th>%llu</th></tr></thead><tbody>",
                  (unsigned long long)s->bad_total);
    for (int r = 1; r < CD_BAD__COUNT; r++)
        if (s->bad[r])
            cd_buf_printf(b, "<tr data-reason=\"%s\"><td>%s</td><td>%llu</td></tr>",
                          cd_bad_reason_name((cd_bad_reason_t)r),
                          cd_bad_reason_name((cd_bad_reason_t)r), (unsigned long long)s->bad[r]);
    cd_buf_printf(b,
                  "<tr><td>bad numeric fields</td><td>%llu</td></tr>"
                  "<tr><td>late (older than the ring)</td><td>%llu</td></tr>"
                  "<tr><td>future (beyond max_future_skew)</td><td>%llu</td></tr>"
                  "</tbody></table><table class=\"totals\"><tbody>"
                  "%s"
                  "<tr><td>events accepted</td><td>%llu</td></tr>"
                  "<tr><td>evaluations</td><td>%llu</td></tr>"
                  "<tr><td>records</td><td>%llu</td></tr></tbody></table>",
                  (unsigned long long)s->bad_numeric, (unsigned long long)s->late,
                  (unsigned long long)s->future, lines, (unsigned long long)s->accepted,
                  (unsigned long long)s->evaluations, (unsigned long long)s->records);
    cd_buf_puts(b, "</div></section>");
}

char *cd_report_render(const cd_report_input_t *in, size_t *len)
{
    const cd_history_view_t *v = in->view;
    cd_buf_t b = {0};
    char t0s[40], t1s[40], d[32];
    /* the span of everything drawn: points, verdict changes and marks (a
     * report from a verdict log has points only where rules spoke) */
    int64_t t0 = v->first_ms, t1 = v->last_ms;
    if (v->nverdicts && (!t0 || v->verdicts[0].t_ms < t0)) t0 = v->verdicts[0].t_ms;
    for (size_t k = 0; k < v->nmarks; k++) {
        if (!t0 || v->marks[k].t_ms < t0) t0 = v->marks[k].t_ms;
        if (v->marks[k].t_ms > t1) t1 = v->marks[k].t_ms;
    }
    if (t1 < t0 + 1000) t1 = t0 + 1000;
    const char *rel = v->release[0] ? v->release : "(unknown)";
    const char *verdict = in->final_verdict ? in->final_verdict : "ANALYZING";

    cd_buf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                    "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                    "<link rel=\"icon\" href=\"data:,\"><title>canaryd report: ");
    cd_buf_html(&b, rel);
    cd_buf_printf(&b, " %s</title><style>%s</style></head><body class=\"report\">%s<main>", verdict,
                  cd_chart_css, cd_chart_defs);
    cd_buf_puts(&b,
                "<header class=\"top\"><h1>canaryd report &middot; release <span id=\"release\">");
    cd_buf_html(&b, rel);
    cd_buf_printf(
        &b,
        "</span></h1><div id=\"verdict\" class=\"verdict-big v-%s\" data-verdict=\"%s\">%s</div>",
        verdict, verdict, verdict);
    cd_buf_puts(&b, "<div class=\"facts\"><span>source <b>");
    cd_buf_html(&b, in->source ? in->source : "-");
    cd_buf_printf(&b, "</b></span><span>event time <b>%s</b> &ndash; <b>%s</b> (%s)</span>",
                  t0 ? cd_time_format(t0, t0s, sizeof t0s) : "-",
                  t0 ? cd_time_format(t1, t1s, sizeof t1s) : "-",
                  cd_duration_format(t0 ? (t1 - t0 + 500) / 1000 * 1000 : 0, d, sizeof d));
    cd_buf_printf(&b, "<span>rules <b>%d</b></span><span>times UTC</span></div></header>",
                  v->nrules);
    cd_chart_timeline(&b, v, t0, t1);
    if (in->stats) summary(&b, in);
    cd_chart_names_t nm = names_of(in->cfg);
    for (int i = 0; i < v->nrules; i++)
        cd_chart_rule(&b, v, i, t0, t1, &nm, 40);
    cd_buf_puts(&b, "<p class=\"legend\">canaryd ");
    cd_buf_html(&b, CANARYD_VERSION);
    cd_buf_puts(&b, " &middot; one point per rule per second of evaluation; hover a span or a "
                    "mark for its reason</p></main></body></html>\n");
    return cd_buf_take(&b, len);
}

long cd_report_write(const char *path, cd_history_t *h, const cd_report_input_t *in, char *errbuf,
                     size_t errsize)
{
    cd_history_view_t v;
    if (!cd_history_copy(h, INT64_MIN, &v)) {
        snprintf(errbuf, errsize, "out of memory");
        return -1;
    }
    cd_report_input_t all = *in;
    all.view = &v;
    size_t len = 0;
    char *html = cd_report_render(&all, &len);
    cd_history_view_free(&v);
    if (!html) {
        snprintf(errbuf, errsize, "out of memory");
        return -1;
    }
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    if (!f) {
        snprintf(errbuf, errsize, "%s: %s", path, strerror(errno));
        free(html);
        return -1;
    }
    bool bad = fwrite(html, 1, len, f) != len || ferror(f);
    bad |= (f == stdout ? fflush(f) : fclose(f)) != 0;
    free(html);
    if (bad) {
        snprintf(errbuf, errsize, "writing %s: %s", path, strerror(errno));
        return -1;
    }
    return (long)len;
}

const char *cd_report_final_verdict(const cd_pipeline_t *p)
{
    cd_verdict_kind_t k = cd_pipeline_verdict(p);
    const char *firing[1];
    if (k != CD_VERDICT_ROLLBACK && k != CD_VERDICT_PROMOTE &&
        cd_pipeline_firing_rules(p, firing, 1) > 0)
        k = CD_VERDICT_ALERT;
    return cd_verdict_kind_name(k);
}
