/*
 * history.c - the per-rule series charts draw (include/canaryd/history.h).
 *
 * Data: per rule a ring of cd_history_point_t (40 bytes; one per second of
 * evaluation), and one ring of marks (records). Bounded mode (the live
 * agent): fixed rings allocated up front, the oldest point overwritten; 15
 * minutes of 6 rules is ~220 KB. Unbounded mode (canaryd report): the
 * arrays double as they fill and never wrap.
 *
 * Threading: one mutex. The evaluating thread takes it once per evaluation
 * to store one point per rule (evidence read before locking); the ingest
 * path (decode, windows) never sees it. Readers copy what they need under
 * the lock and render after releasing it.
 *
 * Trade-off: one point per second, not per evaluation (the last one of the
 * second). Live evaluates on a 10 ms grid; a chart of 15 minutes has no use
 * for 90,000 points per rule. A state change starts a point of its own at
 * the changing evaluation's time, so spans begin exactly where the records
 * say.
 */
#include "canaryd/history.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct ring {
    void *a;
    size_t size, cap, head, n; /* element size; capacity; oldest; count */
} ring_t;

struct cd_history {
    pthread_mutex_t mu;
    const cd_rule_conf_t *rules;
    int nrules;
    bool bounded_pts, bounded_marks;
    ring_t *pts; /* [nrules] */
    ring_t marks;
    ring_t verdicts; /* cd_history_verdict_t, changes only */
    char release[128];
};

static bool ring_init(ring_t *r, size_t size, size_t cap)
{
    r->size = size;
    r->cap = cap ? cap : 256;
    r->head = r->n = 0;
    r->a = malloc(r->cap * size);
    return r->a != NULL;
}

static void *ring_at(const ring_t *r, size_t i) /* i-th oldest */
{
    return (char *)r->a + ((r->head + i) % r->cap) * r->size;
}

/* Slot for a new element (the oldest's when full and bounded); NULL on OOM. */
static void *ring_push(ring_t *r, bool bounded)
{
    if (r->n == r->cap) {
        if (bounded) {
            void *slot = ring_at(r, 0);
            r->head = (r->head + 1) % r->cap;
            return slot;
        }
        void *a = realloc(r->a, 2 * r->cap * r->size); /* unbounded: head stays 0 */
        if (!a) return NULL;
        r->a = a;
        r->cap *= 2;
    }
    return ring_at(r, r->n++);
}

cd_history_t *cd_history_new(const cd_rule_conf_t *rules, int nrules, size_t seconds, size_t marks)
{
    cd_history_t *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->rules = rules;
    h->nrules = nrules;
    h->bounded_pts = seconds > 0;
    h->bounded_marks = marks > 0;
    h->pts = calloc(nrules > 0 ? (size_t)nrules : 1, sizeof *h->pts);
    if (!h->pts) goto err;
    for (int i = 0; i < nrules; i++)
        if (!ring_init(&h->pts[i], sizeof(cd_history_point_t), seconds)) goto err;
    if (!ring_init(&h->marks, sizeof(cd_history_mark_t), marks ? marks : 64)) goto err;
    if (!ring_init(&h->verdicts, sizeof(cd_history_verdict_t), marks ? marks : 64)) goto err;
    pthread_mutex_init(&h->mu, NULL);
    return h;
err:
    if (h->pts)
        for (int i = 0; i < nrules; i++)
            free(h->pts[i].a);
    free(h->pts);
    free(h->marks.a);
    free(h);
    return NULL;
}

void cd_history_destroy(cd_history_t *h)
{
    if (!h) return;
    for (int i = 0; i < h->nrules; i++)
        free(h->pts[i].a);
    free(h->pts);
    free(h->marks.a);
    free(h->verdicts.a);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static float fval(bool valid, double v)
{
    return valid && isfinite(v) ? (float)v : NAN;
}

static uint32_t sat32(uint64_t n)
{
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

static int64_t second_of(int64_t t)
{
    return t >= 0 ? t / 1000 : -((-t + 999) / 1000);
}

/* Appends a verdict change (nothing when the verdict is the current one). */
static void set_verdict_locked(cd_history_t *h, int64_t t, int verdict)
{
    ring_t *r = &h->verdicts;
    if (r->n > 0 && ((cd_history_verdict_t *)ring_at(r, r->n - 1))->verdict == verdict) return;
    cd_history_verdict_t *slot = ring_push(r, h->bounded_marks);
    if (slot) *slot = (cd_history_verdict_t){t, verdict};
}

void cd_history_set_verdict(cd_history_t *h, int64_t t_ms, cd_verdict_kind_t v)
{
    pthread_mutex_lock(&h->mu);
    set_verdict_locked(h, t_ms, (int)v);
    pthread_mutex_unlock(&h->mu);
}

void cd_history_set_release(cd_history_t *h, const char *release)
{
    pthread_mutex_lock(&h->mu);
    snprintf(h->release, sizeof h->release, "%s", release ? release : "");
    pthread_mutex_unlock(&h->mu);
}

void cd_history_add_point(cd_history_t *h, int i, const cd_history_point_t *pt)
{
    if (i < 0 || i >= h->nrules) return;
    pthread_mutex_lock(&h->mu);
    cd_history_point_t *slot = ring_push(&h->pts[i], h->bounded_pts);
    if (slot) *slot = *pt;
    pthread_mutex_unlock(&h->mu);
}

void cd_history_sample(cd_pipeline_t *p, int64_t b, void *opaque)
{
    cd_history_t *h = opaque;
    cd_history_point_t pt[CD_MAX_RULES];
    int n = h->nrules < CD_MAX_RULES ? h->nrules : CD_MAX_RULES;
    uint8_t verdict = (uint8_t)cd_pipeline_verdict(p);
    for (int i = 0; i < n; i++) {
        cd_rule_sample_t s;
        cd_pipeline_rule_sample(p, i, &s);
        pt[i] = (cd_history_point_t){
            .t_ms = b,
            .canary = fval(s.canary.valid, s.canary.value),
            .stable = fval(s.stable.valid, s.stable.value),
            .threshold = fval(true, s.threshold),
            .band = fval(true, s.band),
            .compared = fval(true, s.compared),
            .canary_n = sat32(s.canary.denominator),
            .stable_n = sat32(s.stable.denominator),
            .state = (uint8_t)s.state,
            .flags = (uint8_t)((s.insufficient ? CD_HP_INSUFFICIENT : 0) |
                               (s.breach ? CD_HP_BREACH : 0) | (s.fleet ? CD_HP_FLEET : 0)),
            .verdict = verdict,
        };
    }
    const char *rel = cd_pipeline_release(p);
    pthread_mutex_lock(&h->mu);
    if (strcmp(h->release, rel) != 0) snprintf(h->release, sizeof h->release, "%s", rel);
    set_verdict_locked(h, b, verdict);
    for (int i = 0; i < n; i++) {
        ring_t *r = &h->pts[i];
        cd_history_point_t *slot = NULL, *last = r->n > 0 ? ring_at(r, r->n - 1) : NULL;
        /* A change of state (or of having enough data) starts a new point
         * even within a second, and that point keeps the time of the
         * evaluation that changed it: spans then start at the transition's
         * exact time, as the records do, not at the end of its second. */
        bool edge = last && (last->state != pt[i].state || (last->flags & CD_HP_INSUFFICIENT) !=
                                                               (pt[i].flags & CD_HP_INSUFFICIENT));
        if (last && !edge && second_of(last->t_ms) == second_of(b)) {
            slot = last;
            if (last->flags & CD_HP_EDGE) {
                pt[i].t_ms = last->t_ms;
                pt[i].flags |= CD_HP_EDGE;
            }
        }
        if (edge) pt[i].flags |= CD_HP_EDGE;
        if (!slot) slot = ring_push(r, h->bounded_pts);
        if (slot) *slot = pt[i]; /* OOM in unbounded mode: the point is lost, not the run */
    }
    pthread_mutex_unlock(&h->mu);
}

void cd_history_record(cd_history_t *h, const cd_verdict_t *v)
{
    cd_history_mark_t m = {.t_ms = v->time_ms, .rule = -1, .record = (uint8_t)v->record};
    if (v->rule)
        for (int i = 0; i < h->nrules; i++)
            if (strcmp(h->rules[i].name, v->rule) == 0) {
                m.rule = i;
                break;
            }
    m.verdict = (uint8_t)v->verdict;
    m.from = (uint8_t)v->from;
    m.to = (uint8_t)v->to;
    snprintf(m.reason, sizeof m.reason, "%s", v->reason);
    pthread_mutex_lock(&h->mu);
    cd_history_mark_t *slot = ring_push(&h->marks, h->bounded_marks);
    if (slot) *slot = m;
    pthread_mutex_unlock(&h->mu);
}

void cd_history_view_free(cd_history_view_t *v)
{
    if (v->points)
        for (int i = 0; i < v->nrules; i++)
            free(v->points[i]);
    free(v->points);
    free(v->npoints);
    free(v->marks);
    free(v->verdicts);
    memset(v, 0, sizeof *v);
}

/* Index of the first element with t_ms > since (elements are in time order). */
static size_t first_after(const ring_t *r, int64_t since)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (*(const int64_t *)ring_at(r, mid) > since)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

bool cd_history_copy(cd_history_t *h, int64_t since, cd_history_view_t *out)
{
    memset(out, 0, sizeof *out);
    out->nrules = h->nrules;
    out->rules = h->rules;
    out->points = calloc(h->nrules > 0 ? (size_t)h->nrules : 1, sizeof *out->points);
    out->npoints = calloc(h->nrules > 0 ? (size_t)h->nrules : 1, sizeof *out->npoints);
    if (!out->points || !out->npoints) goto oom;
    pthread_mutex_lock(&h->mu);
    bool ok = true;
    for (int i = 0; i < h->nrules && ok; i++) {
        const ring_t *r = &h->pts[i];
        size_t from = first_after(r, since), n = r->n - from;
        out->points[i] = malloc((n ? n : 1) * sizeof(cd_history_point_t));
        if (!out->points[i]) {
            ok = false;
            break;
        }
        for (size_t k = 0; k < n; k++)
            out->points[i][k] = *(cd_history_point_t *)ring_at(r, from + k);
        out->npoints[i] = n;
        if (n) {
            int64_t f = out->points[i][0].t_ms, l = out->points[i][n - 1].t_ms;
            if (!out->first_ms || f < out->first_ms) out->first_ms = f;
            if (l > out->last_ms) out->last_ms = l;
        }
    }
    if (ok) {
        size_t from = first_after(&h->marks, since), n = h->marks.n - from;
        out->marks = malloc((n ? n : 1) * sizeof *out->marks);
        if (out->marks) {
            for (size_t k = 0; k < n; k++)
                out->marks[k] = *(cd_history_mark_t *)ring_at(&h->marks, from + k);
            out->nmarks = n;
        } else {
            ok = false;
        }
    }
    if (ok) {
        /* from the change in effect at since on, so the timeline starts right */
        const ring_t *r = &h->verdicts;
        size_t from = first_after(r, since), n;
        if (from > 0) from--;
        n = r->n - from;
        out->verdicts = malloc((n ? n : 1) * sizeof *out->verdicts);
        if (out->verdicts) {
            for (size_t k = 0; k < n; k++)
                out->verdicts[k] = *(cd_history_verdict_t *)ring_at(r, from + k);
            out->nverdicts = n;
        } else {
            ok = false;
        }
    }
    memcpy(out->release, h->release, sizeof out->release);
    pthread_mutex_unlock(&h->mu);
    if (ok) return true;
oom:
    cd_history_view_free(out);
    return false;
}
