/*
 * chart.c - SVG charts of the rules' history (agent/report/chart.h): the verdict
 * timeline and one chart per rule, as HTML fragments.
 *
 * One renderer for both pictures: `canaryd report` writes the fragments
 * into a static file, the live status page receives the same fragments
 * from /api/v1/dashboard and swaps them in, so a chart in a post-mortem
 * and on the page during the rollout look and mean the same.
 *
 * Data: a cd_history_view_t (one point per rule per second, the records as
 * marks). Output: SVG with a fixed viewBox (scales to any width, a phone
 * included), paths with one decimal, a <title> on every shaded span, mark
 * and short-of-data run (the browser's tooltip, no script needed). Each
 * element a test or a reader may look for carries a class and data-t /
 * data-from / data-to in milliseconds.
 *
 * Size: a path point is ~12 bytes, so 20 minutes of 6 rules with three
 * series is ~260 KB; beyond MAX_POINTS per series the points are thinned
 * by stride (state changes keep their exact times as spans from every
 * point, which are cheap: one rect per run).
 *
 * Threading: pure functions of their arguments; any thread.
 */
#include "chart.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canaryd/timeutil.h"

#define W 960.0
#define H 230.0
#define ML 70.0 /* left margin: value labels */
#define MR 14.0
#define MT 14.0
#define MB 26.0 /* bottom: time labels */
#define MAX_POINTS 1500

/* ---- scales and labels ------------------------------------------------------- */

typedef struct scale {
    int64_t t0, t1;
    double lo, hi;
    double x0, x1, y0, y1; /* plot area */
} scale_t;

static double sx(const scale_t *s, int64_t t)
{
    double f = s->t1 > s->t0 ? (double)(t - s->t0) / (double)(s->t1 - s->t0) : 0;
    if (f < 0) f = 0;
    if (f > 1) f = 1;
    return s->x0 + f * (s->x1 - s->x0);
}

/* Clamped to the plot: values taken while short of data may lie far off
 * the range (which they do not set, see cd_chart_rule) and are drawn at
 * its edge, over the hatched run that says why. */
static double sy(const scale_t *s, double v)
{
    double f = s->hi > s->lo ? (v - s->lo) / (s->hi - s->lo) : 0;
    if (f < -0.02) f = -0.02;
    if (f > 1.02) f = 1.02;
    return s->y1 - f * (s->y1 - s->y0);
}

/* "12:04:10" (UTC) */
static const char *clock_of(int64_t ms, char *buf, size_t size)
{
    char full[40];
    cd_time_format(ms, full, sizeof full); /* 2026-11-27T12:04:10.000Z */
    const char *t = strchr(full, 'T');
    snprintf(buf, size, "%.8s", t ? t + 1 : full);
    return buf;
}

typedef enum unit { U_RATIO, U_COUNT, U_VALUE } unit_t;

static unit_t unit_of(const cd_rule_conf_t *r)
{
    if (r->kind == CD_RULE_PERCENTILE) return U_VALUE;
    if (r->kind == CD_RULE_FLATLINE) return U_RATIO; /* drawn as a share of expected */
    if (r->kind == CD_RULE_SILENCE) return U_VALUE;  /* traffic in events per second */
    return r->signal.nden > 0 ? U_RATIO : U_COUNT;
}

static const char *fmt_value(unit_t u, double v, char *buf, size_t size)
{
    if (!isfinite(v)) {
        snprintf(buf, size, "-");
    } else if (u == U_RATIO) {
        double p = v * 100;
        snprintf(buf, size, fabs(p) >= 10 || p == 0 ? "%.1f%%" : "%.2f%%", p);
    } else if (u == U_COUNT && v == floor(v)) {
        snprintf(buf, size, "%.0f", v);
    } else {
        snprintf(buf, size, fabs(v) >= 100 ? "%.0f" : "%.3g", v);
    }
    return buf;
}

static double nice_step(double range, int ticks)
{
    double raw = range / ticks, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

static const char *verdict_name(int v)
{
    return cd_verdict_kind_name((cd_verdict_kind_t)v);
}

/* ---- timeline -------------------------------------------------------------- */

static void time_axis(cd_buf_t *b, const scale_t *s, double y)
{
    static const int64_t steps[] = {10000,   30000,   60000,   120000,   300000,   600000,  900000,
                                    1800000, 3600000, 7200000, 21600000, 43200000, 86400000};
    int64_t span = s->t1 - s->t0, step = steps[0];
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        step = steps[i];
        if (span / step <= 8) break;
    }
    int64_t first = (s->t0 / step + (s->t0 % step != 0)) * step;
    for (int64_t t = first; t <= s->t1; t += step) {
        char c[16];
        double x = sx(s, t);
        clock_of(t, c, sizeof c);
        if (step % 60000 == 0) c[5] = '\0'; /* whole minutes: 12:04 */
        cd_buf_printf(b, "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>",
                      x, x, s->y0, s->y1);
        /* a label at an edge of the plot stays inside the picture */
        const char *anchor = x > s->x1 - 30 ? "end" : x < s->x0 + 30 ? "start" : "middle";
        cd_buf_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">%s</text>",
                      x, y, anchor, c);
    }
}

void cd_chart_timeline(cd_buf_t *b, const cd_history_view_t *v, int64_t t0, int64_t t1)
{
    const double th = 64;
    scale_t s = {.t0 = t0, .t1 = t1, .x0 = ML, .x1 = W - MR, .y0 = 8, .y1 = 40};
    const cd_history_verdict_t *p = v->verdicts;
    size_t n = v->nverdicts;
    cd_buf_t seq = {0};

    /* the wrapper scrolls sideways on a phone rather than shrink the text */
    cd_buf_puts(b, "<section class=\"timeline\"><div class=\"chart-wrap\">");
    cd_buf_printf(b,
                  "<svg class=\"timeline\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
                  "aria-label=\"verdict timeline\">",
                  W, th);
    cd_buf_printf(b, "<text class=\"axis-label\" x=\"4\" y=\"28\">verdict</text>");
    time_axis(b, &s, 58); /* first: the segments cover its grid lines */
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && p[j + 1].verdict == p[i].verdict)
            j++;
        int64_t from = p[i].t_ms < t0 ? t0 : p[i].t_ms;
        int64_t to = j + 1 < n ? p[j + 1].t_ms : (t1 > p[j].t_ms ? t1 : p[j].t_ms + 1000);
        char a[16], c[16];
        double x0 = sx(&s, from), x1 = sx(&s, to);
        const char *name = verdict_name(p[i].verdict);
        cd_buf_printf(b,
                      "<rect class=\"seg v-%s\" data-verdict=\"%s\" data-from=\"%lld\" "
                      "data-to=\"%lld\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
                      "<title>%s %s - %s</title></rect>",
                      name, name, (long long)from, (long long)to, x0, s.y0,
                      x1 - x0 > 0.5 ? x1 - x0 : 0.5, s.y1 - s.y0, name, clock_of(from, a, sizeof a),
                      clock_of(to, c, sizeof c));
        if (x1 - x0 > 10.0 * (double)strlen(name))
            cd_buf_printf(b, "<text class=\"seg-label\" x=\"%.1f\" y=\"%.1f\">%s</text>", x0 + 5,
                          s.y0 + 21, name);
        cd_buf_printf(&seq, "%s<span class=\"v-%s\" data-t=\"%lld\">%s</span> %s",
                      i ? " &rarr; " : "", name, (long long)from, name, a);
        i = j + 1;
    }
    /* rule verdicts (ROLLBACK, ALERT) as ticks on the bar */
    for (size_t k = 0; k < v->nmarks; k++) {
        const cd_history_mark_t *m = &v->marks[k];
        if (m->record != CD_RECORD_VERDICT || m->rule < 0) continue;
        if (m->t_ms < t0 || m->t_ms > t1) continue;
        const char *name = verdict_name(m->verdict);
        double x = sx(&s, m->t_ms);
        char a[16];
        cd_buf_printf(b, "<g class=\"tl-mark m-%s\" data-t=\"%lld\" data-rule=\"", name,
                      (long long)m->t_ms);
        cd_buf_html(b, v->rules[m->rule].name);
        cd_buf_printf(b, "\"><line x1=\"%.1f\" x2=\"%.1f\" y1=\"4\" y2=\"44\"/><title>%s %s ", x, x,
                      name, clock_of(m->t_ms, a, sizeof a));
        cd_buf_html(b, v->rules[m->rule].name);
        cd_buf_puts(b, ": ");
        cd_buf_html(b, m->reason);
        cd_buf_puts(b, "</title></g>");
    }
    cd_buf_puts(b, "</svg></div>");
    size_t len;
    char *text = cd_buf_take(&seq, &len);
    cd_buf_printf(b, "<p class=\"sequence\">%s</p></section>",
                  text && *text ? text : "no evaluation yet");
    free(text);
}

/* ---- one rule ---------------------------------------------------------------- */

static void signal_text(cd_buf_t *b, const cd_signal_t *sig, const cd_chart_names_t *nm)
{
    for (int k = 0; k < sig->nnum; k++) {
        cd_buf_puts(b, k ? "+" : "");
        cd_buf_html(b, sig->num[k] < nm->ntypes ? nm->types[sig->num[k]] : "?");
    }
    if (sig->nden == 0) return;
    cd_buf_puts(b, " / ");
    if (sig->nden > 1) cd_buf_puts(b, "(");
    for (int k = 0; k < sig->nden; k++) {
        cd_buf_puts(b, k ? "+" : "");
        cd_buf_html(b, sig->den[k] < nm->ntypes ? nm->types[sig->den[k]] : "?");
    }
    if (sig->nden > 1) cd_buf_puts(b, ")");
}

/* The rule in one line: what is compared with what. */
static void caption(cd_buf_t *b, const cd_rule_conf_t *r, const cd_chart_names_t *nm)
{
    char d1[32], d2[32], f[32];
    unit_t u = unit_of(r);
    cd_buf_puts(b, "<p class=\"rule-def\">");
    switch (r->kind) {
    case CD_RULE_THRESHOLD:
        cd_buf_puts(b, r->scope == CD_SCOPE_STABLE ? "stable "
                       : r->scope == CD_SCOPE_ANY  ? "either cohort's "
                                                   : "canary ");
        signal_text(b, &r->signal, nm);
        cd_buf_printf(b, " %s %s", cd_op_name(r->op), fmt_value(u, r->threshold, f, sizeof f));
        if (r->z > 0) cd_buf_printf(b, " (Wilson bound, z %.3g)", r->z);
        break;
    case CD_RULE_RELATIVE:
        cd_buf_puts(b, "canary ");
        signal_text(b, &r->signal, nm);
        cd_buf_printf(b, " %s max(%g &times; stable, floor %s)", cd_op_name(r->op), r->factor,
                      fmt_value(u, r->floor, f, sizeof f));
        break;
    case CD_RULE_SPIKE:
        cd_buf_puts(b, "canary ");
        signal_text(b, &r->signal, nm);
        cd_buf_printf(b, " &ge; %g &times; stable and z &ge; %g", r->factor, r->z);
        break;
    case CD_RULE_FLATLINE:
        cd_buf_printf(b,
                      "canary count / expected count (stable's rate &times; canary traffic) "
                      "&le; %s, when expected &ge; %g",
                      fmt_value(U_RATIO, r->max_ratio, f, sizeof f), r->min_expected);
        break;
    case CD_RULE_SILENCE:
        cd_buf_puts(b, "canary traffic (");
        signal_text(b, &r->signal, nm);
        cd_buf_printf(b,
                      ", events/s) &le; %s &times; expected (its share of the previous %s "
                      "&times; stable's traffic now), when expected &ge; %g",
                      fmt_value(U_RATIO, r->max_ratio, f, sizeof f),
                      cd_duration_format(r->reference_ms, d1, sizeof d1), r->min_expected);
        break;
    case CD_RULE_PERCENTILE:
        cd_buf_printf(b, "canary p%g of ", r->quantile * 100);
        cd_buf_html(b, r->hist < nm->nhists ? nm->hists[r->hist] : "?");
        cd_buf_printf(b, " %s max(%g &times; stable, floor %g)", cd_op_name(r->op), r->factor,
                      r->floor);
        break;
    }
    cd_buf_printf(b, "; window %s, for %s", cd_duration_format(r->window_ms, d1, sizeof d1),
                  cd_duration_format(r->for_ms, d2, sizeof d2));
    if (r->hysteresis > 0) cd_buf_printf(b, ", hysteresis %g%%", r->hysteresis * 100);
    cd_buf_printf(b, "; min samples canary %llu, stable %llu</p>",
                  (unsigned long long)r->min_samples_canary,
                  (unsigned long long)r->min_samples_stable);
}

static const char *threshold_label(const cd_rule_conf_t *r)
{
    switch (r->kind) {
    case CD_RULE_RELATIVE:
        return "threshold: max(factor x stable, floor)";
    case CD_RULE_SPIKE:
        return "threshold: factor x stable";
    case CD_RULE_FLATLINE:
        return "threshold: max_ratio of expected";
    case CD_RULE_PERCENTILE:
        return "threshold: max(factor x stable, floor)";
    case CD_RULE_SILENCE:
        return "threshold: max_ratio x expected rate";
    default:
        return "threshold";
    }
}

/* Which value a series reads. */
typedef enum { S_CANARY, S_STABLE, S_THRESHOLD, S_BAND, S_COMPARED } series_t;

/* A flatline is drawn as the canary's count over the expected count
 * against max_ratio: the watched type the rule reports may change from one
 * evaluation to the next (it reports the worst), so raw counts would jump
 * between types' scales while the ratio it tests stays comparable. */
static float value_of(const cd_history_point_t *p, series_t s, const cd_rule_conf_t *r)
{
    if (r->kind == CD_RULE_FLATLINE) {
        if (s == S_CANARY)
            return isfinite(p->canary) && isfinite(p->threshold) && p->threshold > 0
                       ? p->canary / p->threshold
                       : NAN;
        return s == S_THRESHOLD ? (float)r->max_ratio : NAN;
    }
    switch (s) {
    case S_CANARY:
        return p->canary;
    case S_STABLE:
        return p->stable;
    case S_THRESHOLD:
        return p->threshold;
    case S_BAND:
        return p->band;
    default:
        return p->compared;
    }
}

/* A polyline through the finite values, broken where a value is missing;
 * returns the number of points drawn. */
static size_t path(cd_buf_t *b, const scale_t *s, const cd_history_point_t *p, size_t n,
                   const cd_rule_conf_t *r, series_t which, const char *cls, const char *label)
{
    size_t stride = n > MAX_POINTS ? (n + MAX_POINTS - 1) / MAX_POINTS : 1, drawn = 0;
    bool pen = false;
    for (size_t i = 0; i < n; i += stride) {
        float v = value_of(&p[i], which, r);
        if (!isfinite(v) || p[i].t_ms < s->t0 || p[i].t_ms > s->t1) {
            pen = false;
            continue;
        }
        if (drawn == 0) {
            cd_buf_printf(b, "<path class=\"series %s\" data-series=\"%s\" d=\"", cls, cls);
        }
        cd_buf_printf(b, "%c%.1f %.1f", pen ? 'L' : 'M', sx(s, p[i].t_ms), sy(s, v));
        pen = true;
        drawn++;
    }
    if (drawn) cd_buf_printf(b, "\" data-points=\"%zu\"><title>%s</title></path>", drawn, label);
    return drawn;
}

/* The hysteresis band: the area between the threshold and the band edge. */
static void band_area(cd_buf_t *b, const scale_t *s, const cd_history_point_t *p, size_t n)
{
    size_t stride = n > MAX_POINTS ? (n + MAX_POINTS - 1) / MAX_POINTS : 1;
    for (size_t i = 0; i < n;) {
        while (i < n && !(isfinite(p[i].band) && isfinite(p[i].threshold)))
            i += stride;
        if (i >= n) break;
        size_t j = i;
        while (j + stride < n && isfinite(p[j + stride].band) && isfinite(p[j + stride].threshold))
            j += stride;
        cd_buf_puts(b, "<path class=\"band\" d=\"");
        for (size_t k = i; k <= j; k += stride)
            cd_buf_printf(b, "%c%.1f %.1f", k == i ? 'M' : 'L', sx(s, p[k].t_ms),
                          sy(s, p[k].threshold));
        for (size_t k = j;; k -= stride) { /* back along the band edge */
            cd_buf_printf(b, "L%.1f %.1f", sx(s, p[k].t_ms), sy(s, p[k].band));
            if (k == i) break;
        }
        cd_buf_puts(b, "Z\"><title>hysteresis band: once pending or firing, the value must "
                       "leave it to count as clear</title></path>");
        i = j + stride;
    }
}

/* Shaded runs of points in a state (or short of data). */
static void spans(cd_buf_t *b, const scale_t *s, const cd_history_point_t *p, size_t n,
                  const cd_rule_conf_t *r)
{
    for (size_t i = 0; i < n;) {
        int st = p[i].state;
        bool shorts = p[i].flags & CD_HP_INSUFFICIENT;
        size_t j = i;
        while (j + 1 < n && p[j + 1].state == st &&
               (bool)(p[j + 1].flags & CD_HP_INSUFFICIENT) == shorts)
            j++;
        int64_t from = p[i].t_ms, to = j + 1 < n ? p[j + 1].t_ms : p[j].t_ms + 1000;
        if (to <= s->t0 || from > s->t1) { /* outside the chart (the live page's ring) */
            i = j + 1;
            continue;
        }
        double x0 = sx(s, from), x1 = sx(s, to), w = x1 - x0 > 0.5 ? x1 - x0 : 0.5;
        char a[16], c[16];
        if (st == CD_STATE_PENDING || st == CD_STATE_FIRING) {
            const char *name = cd_rule_state_name((cd_rule_state_t)st);
            cd_buf_printf(b,
                          "<rect class=\"span %s\" data-state=\"%s\" data-from=\"%lld\" "
                          "data-to=\"%lld\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
                          "<title>%s %s - %s</title></rect>",
                          name, name, (long long)from, (long long)to, x0, s->y0, w, s->y1 - s->y0,
                          name, clock_of(from, a, sizeof a), clock_of(to, c, sizeof c));
        }
        if (shorts) {
            cd_buf_printf(
                b,
                "<g class=\"short\" data-from=\"%lld\" data-to=\"%lld\"><rect x=\"%.1f\" "
                "y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/><title>short of data %s - %s: "
                "canary %u samples (min %llu), stable %u (min %llu) at the start</title>",
                (long long)from, (long long)to, x0, s->y0, w, s->y1 - s->y0,
                clock_of(from, a, sizeof a), clock_of(to, c, sizeof c), p[i].canary_n,
                (unsigned long long)r->min_samples_canary, p[i].stable_n,
                (unsigned long long)r->min_samples_stable);
            if (w > 120)
                cd_buf_printf(b,
                              "<text class=\"short-label\" x=\"%.1f\" y=\"%.1f\">short of data: "
                              "canary n=%u/%llu, stable n=%u/%llu</text>",
                              x0 + 4, s->y0 + 12, p[j].canary_n,
                              (unsigned long long)r->min_samples_canary, p[j].stable_n,
                              (unsigned long long)r->min_samples_stable);
            cd_buf_puts(b, "</g>");
        }
        i = j + 1;
    }
}

static void mark_label(cd_buf_t *b, const cd_history_mark_t *m)
{
    if (m->record == CD_RECORD_VERDICT)
        cd_buf_puts(b, verdict_name(m->verdict));
    else
        cd_buf_printf(b, "%s &rarr; %s", cd_rule_state_name((cd_rule_state_t)m->from),
                      cd_rule_state_name((cd_rule_state_t)m->to));
}

static void marks(cd_buf_t *b, const scale_t *s, const cd_history_view_t *v, int rule)
{
    for (size_t k = 0; k < v->nmarks; k++) {
        const cd_history_mark_t *m = &v->marks[k];
        if (m->rule != rule || m->t_ms < s->t0 || m->t_ms > s->t1) continue;
        double x = sx(s, m->t_ms);
        char a[16];
        bool verdict = m->record == CD_RECORD_VERDICT;
        const char *name =
            verdict ? verdict_name(m->verdict) : cd_rule_state_name((cd_rule_state_t)m->to);
        cd_buf_printf(b, "<g class=\"mark %s m-%s\" data-t=\"%lld\">",
                      verdict ? "verdict" : "state", name, (long long)m->t_ms);
        if (verdict) {
            cd_buf_printf(b,
                          "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">%s</text>",
                          x, x, s->y0, s->y1, x > W - 120 ? x - 4 : x + 4, s->y0 + 26,
                          x > W - 120 ? "end" : "start", name);
        } else {
            cd_buf_printf(b, "<path d=\"M%.1f %.1fl-5 -8h10z\"/>", x, s->y0 + 8);
        }
        cd_buf_printf(b, "<title>%s ", clock_of(m->t_ms, a, sizeof a));
        mark_label(b, m);
        cd_buf_puts(b, ": ");
        cd_buf_html(b, m->reason);
        cd_buf_puts(b, "</title></g>");
    }
}

static void value_axis(cd_buf_t *b, const scale_t *s, unit_t u)
{
    double step = nice_step(s->hi - s->lo, 4);
    for (double y = ceil(s->lo / step) * step; y <= s->hi + step * 1e-9; y += step) {
        char f[32];
        double py = sy(s, y);
        cd_buf_printf(b, "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>",
                      s->x0, s->x1, py, py);
        cd_buf_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>",
                      s->x0 - 6, py + 4, fmt_value(u, fabs(y) < step * 1e-9 ? 0 : y, f, sizeof f));
    }
}

static void listed(cd_buf_t *b, const cd_history_view_t *v, int rule, int max)
{
    size_t total = 0;
    for (size_t k = 0; k < v->nmarks; k++)
        total += v->marks[k].rule == rule;
    if (max <= 0 || total == 0) return;
    cd_buf_puts(b, "<ol class=\"records\">");
    size_t skip = total > (size_t)max ? total - (size_t)max : 0, seen = 0;
    for (size_t k = 0; k < v->nmarks; k++) {
        const cd_history_mark_t *m = &v->marks[k];
        if (m->rule != rule || seen++ < skip) continue;
        char a[16];
        bool verdict = m->record == CD_RECORD_VERDICT;
        cd_buf_printf(b, "<li class=\"%s\" data-t=\"%lld\"><time>%s</time> <b class=\"%s-%s\">",
                      verdict ? "verdict" : "state", (long long)m->t_ms,
                      clock_of(m->t_ms, a, sizeof a), verdict ? "v" : "s",
                      verdict ? verdict_name(m->verdict)
                              : cd_rule_state_name((cd_rule_state_t)m->to));
        mark_label(b, m);
        cd_buf_puts(b, "</b> ");
        cd_buf_html(b, m->reason);
        cd_buf_puts(b, "</li>");
    }
    cd_buf_puts(b, "</ol>");
}

void cd_chart_rule(cd_buf_t *b, const cd_history_view_t *v, int i, int64_t t0, int64_t t1,
                   const cd_chart_names_t *names, int max_listed)
{
    const cd_rule_conf_t *r = &v->rules[i];
    const cd_history_point_t *p = v->points[i];
    size_t n = v->npoints[i];
    unit_t u = unit_of(r);
    scale_t s = {.t0 = t0, .t1 = t1, .x0 = ML, .x1 = W - MR, .y0 = MT, .y1 = H - MB};
    bool show_compared = r->kind == CD_RULE_THRESHOLD && r->z > 0;

    /* value range over everything drawn, from the points with enough data
     * when there are any: a Wilson bound on 3 payments is 0 %, and would
     * squash the 95-100 % that matters into a sliver */
    double lo = INFINITY, hi = -INFINITY;
    series_t all[] = {S_CANARY, S_STABLE, S_THRESHOLD, S_BAND, S_COMPARED};
    bool any_full = false;
    for (size_t k = 0; k < n && !any_full; k++)
        any_full = !(p[k].flags & CD_HP_INSUFFICIENT);
    for (size_t k = 0; k < n; k++)
        for (size_t a = 0; a < sizeof all / sizeof all[0]; a++) {
            if (any_full && (p[k].flags & CD_HP_INSUFFICIENT)) break;
            if (all[a] == S_COMPARED && !show_compared) continue;
            if (all[a] == S_STABLE && (r->kind == CD_RULE_FLATLINE || r->kind == CD_RULE_SILENCE))
                continue;
            float x = value_of(&p[k], all[a], r);
            if (!isfinite(x) || p[k].t_ms < t0 || p[k].t_ms > t1) continue;
            if (x < lo) lo = x;
            if (x > hi) hi = x;
        }
    if (!isfinite(lo)) lo = 0, hi = 1;
    if (lo >= 0 && lo <= hi * 0.5) lo = 0;
    if (hi - lo < 1e-12) hi = lo + (lo > 0 ? lo * 0.1 : 1);
    double pad = (hi - lo) * 0.08;
    hi += pad;
    if (lo > 0) lo = lo - pad > 0 ? lo - pad : 0;
    s.lo = lo;
    s.hi = hi;

    cd_buf_puts(b, "<section class=\"rule\" data-rule=\"");
    cd_buf_html(b, r->name);
    cd_buf_printf(b, "\" data-kind=\"%s\" data-action=\"%s\" data-points=\"%zu\"",
                  cd_rule_kind_name(r->kind), cd_action_name(r->action), n);
    if (n)
        cd_buf_printf(b, " data-state=\"%s\"", cd_rule_state_name((cd_rule_state_t)p[n - 1].state));
    cd_buf_puts(b, "><h2>");
    cd_buf_html(b, r->name);
    cd_buf_printf(b, " <span class=\"tag a-%s\">%s</span> <span class=\"tag\">%s</span>",
                  cd_action_name(r->action), cd_action_name(r->action), cd_rule_kind_name(r->kind));
    if (r->dry_run) cd_buf_puts(b, " <span class=\"tag\">dry run</span>");
    if (n) {
        const cd_history_point_t *l = &p[n - 1];
        char c[32], st[32], th[32];
        const char *state = cd_rule_state_name((cd_rule_state_t)l->state);
        cd_buf_printf(b, " <span class=\"now s-%s\">%s</span><span class=\"nowval\">canary %s",
                      state, state, fmt_value(u, value_of(l, S_CANARY, r), c, sizeof c));
        cd_buf_printf(b, " &middot; stable %s &middot; threshold %s</span>",
                      fmt_value(u, value_of(l, S_STABLE, r), st, sizeof st),
                      fmt_value(u, value_of(l, S_THRESHOLD, r), th, sizeof th));
    }
    cd_buf_puts(b, "</h2>");
    caption(b, r, names);

    cd_buf_puts(b, "<div class=\"chart-wrap\">");
    cd_buf_printf(b, "<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"", W,
                  H);
    cd_buf_html(b, r->name);
    cd_buf_puts(b, "\">");
    cd_buf_printf(b, "<rect class=\"plot\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>",
                  s.x0, s.y0, s.x1 - s.x0, s.y1 - s.y0);
    spans(b, &s, p, n, r);
    value_axis(b, &s, u);
    time_axis(b, &s, H - 8);
    band_area(b, &s, p, n);
    path(b, &s, p, n, r, S_THRESHOLD, "threshold", threshold_label(r));
    /* a flatline's stable value is the watched type's count in the whole
     * fleet: a different magnitude from the canary's, and not what the
     * canary is held to (the expected count is) */
    /* nor is a silence rule's: stable's whole traffic dwarfs the canary's
     * share of it; the threshold line carries the expectation from stable */
    bool show_stable = r->kind != CD_RULE_FLATLINE && r->kind != CD_RULE_SILENCE;
    if (show_stable) path(b, &s, p, n, r, S_STABLE, "stable", "stable fleet");
    if (show_compared)
        path(b, &s, p, n, r, S_COMPARED, "compared", "canary's Wilson bound (what is compared)");
    path(b, &s, p, n, r, S_CANARY, "canary", "canary");
    marks(b, &s, v, i);
    if (n == 0)
        cd_buf_printf(b,
                      "<text class=\"empty\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">no "
                      "evaluation yet</text>",
                      W / 2, H / 2);
    cd_buf_puts(b, "</svg></div>");
    cd_buf_puts(b, "<p class=\"legend\"><span class=\"k canary\"></span>canary ");
    if (show_stable) cd_buf_puts(b, "<span class=\"k stable\"></span>stable ");
    cd_buf_puts(b, "<span class=\"k threshold\"></span>");
    cd_buf_html(b, threshold_label(r));
    if (show_compared) cd_buf_puts(b, " <span class=\"k compared\"></span>Wilson bound");
    if (r->hysteresis > 0 && r->kind != CD_RULE_SPIKE && r->kind != CD_RULE_FLATLINE)
        cd_buf_puts(b, " <span class=\"k band\"></span>hysteresis band");
    cd_buf_puts(b,
                " <span class=\"k pending\"></span>pending <span class=\"k firing\"></span>firing "
                "<span class=\"k short\"></span>short of data</p>");
    listed(b, v, i, max_listed);
    cd_buf_puts(b, "</section>");
}
