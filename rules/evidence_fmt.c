/*
 * evidence_fmt.c - the bounded string builder and the sentence pieces every
 * evidence kind shares (see evidence_fmt.h): values as percentages or
 * counts, signals by their type names, sample counts against minimums.
 *
 * Every write goes through cd_sb_printf, which truncates instead of
 * overflowing: a catalog of long names can shorten a reason, never corrupt
 * a record. Pure; thread-safe on distinct buffers.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "canaryd/timeutil.h"
#include "evidence_fmt.h"

void cd_sb_init(cd_sb_t *sb, char *buf, size_t size)
{
    CD_ASSERT(buf != NULL && size > 0);
    sb->buf = buf;
    sb->size = size;
    sb->len = 0;
    buf[0] = '\0';
}

void cd_sb_printf(cd_sb_t *sb, const char *fmt, ...)
{
    if (sb->len + 1 >= sb->size) return; /* full: the rest of the sentence is dropped */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sb->buf + sb->len, sb->size - sb->len, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    sb->len += (size_t)n;
    if (sb->len >= sb->size) sb->len = sb->size - 1;
}

const char *cd_evfmt_op(cd_op_t op, bool holds)
{
    if (holds) return cd_op_name(op);
    switch (op) { /* the comparison that does hold instead */
    case CD_OP_GT:
        return "<=";
    case CD_OP_GE:
        return "<";
    case CD_OP_LT:
        return ">=";
    case CD_OP_LE:
        return ">";
    }
    return "?";
}

void cd_evfmt_type(cd_sb_t *sb, const cd_evidence_names_t *n, int id)
{
    if (n && id >= 0 && id < n->ntypes && n->types[id])
        cd_sb_printf(sb, "%s", n->types[id]);
    else
        cd_sb_printf(sb, "type#%d", id);
}

static void fmt_types(cd_sb_t *sb, const cd_evidence_names_t *n, const int *ids, int count)
{
    if (count > 1) cd_sb_printf(sb, "(");
    for (int i = 0; i < count; i++) {
        if (i) cd_sb_printf(sb, "+");
        cd_evfmt_type(sb, n, ids[i]);
    }
    if (count > 1) cd_sb_printf(sb, ")");
}

void cd_evfmt_signal(cd_sb_t *sb, const cd_evidence_names_t *n, const cd_signal_t *s)
{
    fmt_types(sb, n, s->num, s->nnum);
    if (s->nden > 0) {
        cd_sb_printf(sb, "/");
        fmt_types(sb, n, s->den, s->nden);
    }
}

void cd_evfmt_value(cd_sb_t *sb, bool ratio, double v)
{
    if (ratio)
        cd_sb_printf(sb, "%.2f%%", v * 100.0);
    else if (v == floor(v) && fabs(v) < 1e15)
        cd_sb_printf(sb, "%.0f", v);
    else
        cd_sb_printf(sb, "%g", v);
}

void cd_evfmt_obs(cd_sb_t *sb, const cd_evidence_names_t *n, const cd_signal_t *s,
                  const cd_obs_t *o, bool with_names)
{
    if (s->nden == 0) {
        cd_evfmt_value(sb, false, o->value);
        if (with_names) {
            cd_sb_printf(sb, " (");
            cd_evfmt_signal(sb, n, s);
            cd_sb_printf(sb, ")");
        }
        return;
    }
    if (o->valid)
        cd_evfmt_value(sb, true, o->value);
    else
        cd_sb_printf(sb, "n/a");
    cd_sb_printf(sb, " (");
    if (with_names) {
        cd_evfmt_signal(sb, n, s);
        cd_sb_printf(sb, " ");
    }
    cd_sb_printf(sb, "%" PRIu64 "/%" PRIu64 ")", o->numerator, o->denominator);
}

void cd_evfmt_need(cd_sb_t *sb, bool *first, const char *cohort, uint64_t have, uint64_t need,
                   int64_t window_ms)
{
    char d[32];
    cd_sb_printf(sb, "%s%s has %" PRIu64 " samples in %s, needs %" PRIu64,
                 *first ? "insufficient data: " : "; ", cohort, have,
                 cd_duration_format(window_ms, d, sizeof d), need);
    *first = false;
}

void cd_evfmt_samples(cd_sb_t *sb, bool *first, const char *cohort, uint64_t have, uint64_t need)
{
    cd_sb_printf(sb, "%s%s %" PRIu64 " %s %" PRIu64, *first ? "samples " : ", ", cohort, have,
                 have >= need ? ">=" : "<", need);
    *first = false;
}

void cd_evfmt_window(cd_sb_t *sb, int64_t window_ms)
{
    char d[32];
    cd_sb_printf(sb, "(window %s; ", cd_duration_format(window_ms, d, sizeof d));
}

/* A ratio is undefined without a denominator, so it needs at least one
 * sample whatever the configured minimum. */
uint64_t cd_evfmt_min(uint64_t configured, bool ratio)
{
    return ratio && configured == 0 ? 1 : configured;
}

void cd_evfmt_clock(cd_sb_t *sb, int64_t ms)
{
    char t[40];
    cd_time_format(ms, t, sizeof t); /* 2026-11-27T12:04:03.250Z */
    const char *tod = strchr(t, 'T');
    tod = tod ? tod + 1 : t;
    if (ms % 1000 == 0)
        cd_sb_printf(sb, "%.8sZ", tod);
    else
        cd_sb_printf(sb, "%s", tod);
}
