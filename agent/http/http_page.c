/*
 * http_page.c - the live status page and its data (agent/http/http_internal.h):
 *
 *   GET /                    the page: static HTML, CSS and a small script, no
 *                            external asset (works offline, on a phone)
 *   GET /api/v1/dashboard    what the page shows, every 1.5 s: verdict,
 *                            release, lag, sinks, and the timeline and rule
 *                            charts as HTML fragments rendered by agent/report/chart.c,
 *                            the same code as `canaryd report`
 *   GET /api/v1/history      the per-rule series as JSON (since=), for people
 *                            building their own dashboards
 *
 * Why the server renders the charts: one renderer for the report and the
 * page means they cannot drift apart, and the page's script stays a
 * dozen lines (fetch, swap innerHTML). The cost is ~60-250 KB per poll for
 * 15 minutes of 6 rules; the page is for people, polling every 1.5 s.
 *
 * Threading: HTTP handler threads; reads the history through its copy
 * (a mutex held for a memcpy) and the snapshot the caller copied.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canaryd/timeutil.h"
#include "../report/chart.h"
#include "http_internal.h"

#define PAGE_WINDOW_MS (15 * 60 * 1000)

static const char PAGE_HEAD[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
    "<link rel=\"icon\" href=\"data:,\"><title>canaryd</title><style>";

/* The script: polls the dashboard (with the token from the URL fragment,
 * #token=..., which browsers never send to the server nor log), swaps the
 * fragments in, and marks the body for tests: data-polls counts renders,
 * data-error holds the first script error. */
static const char PAGE_BODY[] =
    ".live-status{font-size:12px;color:var(--muted)}.live-status.down{color:var(--bad)}"
    "</style></head><body class=\"live\" data-polls=\"0\">%s<main>"
    "<header class=\"top\"><h1>canaryd &middot; release <span id=\"release\">-</span></h1>"
    "<div id=\"verdict\" class=\"verdict-big v-ANALYZING\" data-verdict=\"\">&hellip;</div>"
    "<div class=\"facts\"><span>since <b id=\"since\">-</b></span>"
    "<span>lag <b id=\"lag\">-</b></span><span>sinks <b id=\"sinks\">-</b></span>"
    "<span id=\"status\" class=\"live-status\">connecting</span></div></header>"
    "<div id=\"timeline\"></div><div id=\"rules\"></div>"
    "<p class=\"legend\">last 15 minutes, one point per rule per second; times UTC; "
    "<a href=\"api/v1/history\">api/v1/history</a></p></main>"
    "<script>(function(){"
    "var b=document.body,$=function(i){return document.getElementById(i)};"
    "window.onerror=function(m){if(!b.dataset.error)b.dataset.error=String(m)};"
    "var tk=/[#&]token=([^&]*)/.exec(location.hash),h={};"
    "if(tk)h.Authorization='Bearer '+decodeURIComponent(tk[1]);"
    "function show(d){var v=$('verdict');v.textContent=d.verdict;v.dataset.verdict=d.verdict;"
    "v.className='verdict-big v-'+d.verdict;$('release').textContent=d.release||'(unknown)';"
    "$('since').textContent=d.since||'-';$('lag').textContent=d.lag;$('sinks').textContent=d.sinks;"
    "$('sinks').className=d.sinks_ok?'':'v-ROLLBACK';"
    "$('timeline').innerHTML=d.timeline;$('rules').innerHTML=d.rules.join('');"
    "document.title='canaryd '+d.verdict+' '+(d.release||'');"
    /* on a phone the charts scroll sideways: show the newest end */
    "document.querySelectorAll('.chart-wrap').forEach(function(w){w.scrollLeft=w.scrollWidth});"
    "b.dataset.polls=String(+b.dataset.polls+1)}"
    "function poll(){fetch('api/v1/dashboard',{headers:h,cache:'no-store'})"
    ".then(function(r){if(!r.ok)throw new Error('HTTP '+r.status);return r.json()})"
    ".then(function(d){show(d);var s=$('status');s.className='live-status';"
    "s.textContent='live, updated '+new Date().toLocaleTimeString()})"
    ".catch(function(e){var s=$('status');s.className='live-status down';"
    "s.textContent='no answer from the agent ('+e.message+'); retrying'})"
    ".then(function(){setTimeout(poll,1500)})}"
    "poll()})();</script></body></html>\n";

char *cd_http_page_render(size_t *len)
{
    cd_buf_t b = {0};
    cd_buf_puts(&b, PAGE_HEAD);
    cd_buf_puts(&b, cd_chart_css);
    cd_buf_printf(&b, PAGE_BODY, cd_chart_defs);
    return cd_buf_take(&b, len);
}

/* ---- /api/v1/dashboard ------------------------------------------------------ */

static void lag_text(const cd_kafka_source_t *k, const cd_snapshot_t *s, char *out, size_t size)
{
    long long total = 0, worst = 0;
    int n = 0;
    if (k) {
        enum { MAXP = 256 };
        cd_kafka_lag_t *lag = malloc(MAXP * sizeof *lag);
        if (lag) {
            n = cd_kafka_source_lag(k, lag, MAXP);
            for (int i = 0; i < n && i < MAXP; i++)
                if (lag[i].lag >= 0) {
                    total += lag[i].lag;
                    if (lag[i].lag > worst) worst = lag[i].lag;
                }
            free(lag);
        }
    }
    /* how far the evaluations trail the snapshot's clock */
    long long behind =
        s->stats.last_eval_ms > 0 ? (long long)(s->time_ms - s->stats.last_eval_ms) : -1;
    if (k)
        snprintf(out, size, "%lld messages (max %lld in one of %d partitions)%s", total, worst, n,
                 behind >= 0 && behind > 2000 ? "; evaluation behind" : "");
    else
        snprintf(out, size, "-");
}

/* "3 ok" or "webhook[0]: 2 failed, 5 pending; ..." */
static void sinks_text(cd_dispatcher_t *d, char *out, size_t size, bool *ok)
{
    enum { MAXS = 32 };
    cd_sink_stats_t st[MAXS];
    *ok = true;
    int n = d ? cd_dispatcher_stats(d, st, MAXS) : 0;
    if (n == 0) {
        snprintf(out, size, "none");
        return;
    }
    size_t used = 0;
    int healthy = 0;
    out[0] = '\0';
    for (int i = 0; i < n && i < MAXS; i++) {
        if (st[i].failed == 0 && st[i].dropped == 0 && st[i].pending < 10) {
            healthy++;
            continue;
        }
        *ok = false;
        int w = snprintf(out + used, size - used, "%s%s: %llu failed, %llu dropped, %llu pending",
                         used ? "; " : "", st[i].name, (unsigned long long)st[i].failed,
                         (unsigned long long)st[i].dropped, (unsigned long long)st[i].pending);
        if (w < 0 || (size_t)w >= size - used) break;
        used += (size_t)w;
    }
    if (*ok) snprintf(out, size, "%d ok", healthy);
}

char *cd_http_dashboard_render(const cd_snapshot_t *s, cd_history_t *h, const cd_config_t *cfg,
                               const cd_kafka_source_t *k, cd_dispatcher_t *d, int64_t now_ms,
                               size_t *len)
{
    json_t *rules = json_array(), *j = NULL;
    char lag[256], sinks[512], since[40];
    bool sinks_ok;
    lag_text(k, s, lag, sizeof lag);
    sinks_text(d, sinks, sizeof sinks, &sinks_ok);
    cd_history_view_t v;
    char *timeline = NULL;
    /* The ring holds a little more than the page shows: the charts end at
     * the latest evaluation (not at this server's clock, so a test's or a
     * stalled agent's data still shows, and the status line says when it
     * was updated) and reach back PAGE_WINDOW_MS. */
    bool have = h && cd_history_copy(h, INT64_MIN, &v);
    if (have) {
        int64_t t1 = v.last_ms ? v.last_ms : now_ms;
        int64_t t0 = v.first_ms ? v.first_ms : t1 - 60000;
        if (t0 < t1 - PAGE_WINDOW_MS) t0 = t1 - PAGE_WINDOW_MS;
        if (t1 - t0 < 60000) t0 = t1 - 60000; /* at least a minute wide */
        cd_buf_t b = {0};
        cd_chart_timeline(&b, &v, t0, t1);
        timeline = cd_buf_take(&b, NULL);
        cd_chart_names_t nm = {cfg->type_names, cfg->decode.ntypes, cfg->numeric_names,
                               cfg->decode.nnumeric};
        for (int i = 0; i < v.nrules; i++) {
            cd_chart_rule(&b, &v, i, t0, t1, &nm, 5);
            char *f = cd_buf_take(&b, NULL);
            json_array_append_new(rules, json_string(f ? f : ""));
            free(f);
        }
        cd_history_view_free(&v);
    }
    j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:s,s:o,s:I}", "verdict",
                  cd_verdict_kind_name(s->verdict), "release", s->release, "since",
                  s->since_ms > 0 ? cd_time_format(s->since_ms, since, sizeof since) : "", "lag",
                  lag, "sinks", sinks, "sinks_ok", sinks_ok, "timeline", timeline ? timeline : "",
                  "rules", rules, "time", (json_int_t)now_ms);
    free(timeline);
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(7)) : NULL;
    json_decref(j);
    if (len) *len = text ? strlen(text) : 0;
    return text;
}

/* ---- /api/v1/history --------------------------------------------------------- */

static json_t *num(float x)
{
    return isfinite(x) ? json_real((double)x) : json_null();
}

char *cd_http_history_render(cd_history_t *h, int64_t since, size_t *len)
{
    cd_history_view_t v;
    if (!cd_history_copy(h, since, &v)) return NULL;
    json_t *rules = json_array(), *marks = json_array(), *verdicts = json_array();
    int64_t last = since;
    for (int i = 0; i < v.nrules; i++) {
        const cd_rule_conf_t *r = &v.rules[i];
        json_t *t = json_array(), *c = json_array(), *st = json_array(), *th = json_array(),
               *bd = json_array(), *cn = json_array(), *sn = json_array(), *state = json_array(),
               *shorts = json_array();
        for (size_t k = 0; k < v.npoints[i]; k++) {
            const cd_history_point_t *p = &v.points[i][k];
            json_array_append_new(t, json_integer(p->t_ms));
            json_array_append_new(c, num(p->canary));
            json_array_append_new(st, num(p->stable));
            json_array_append_new(th, num(p->threshold));
            json_array_append_new(bd, num(p->band));
            json_array_append_new(cn, json_integer(p->canary_n));
            json_array_append_new(sn, json_integer(p->stable_n));
            json_array_append_new(state,
                                  json_string(cd_rule_state_name((cd_rule_state_t)p->state)));
            json_array_append_new(shorts, json_boolean(p->flags & CD_HP_INSUFFICIENT));
            if (p->t_ms > last) last = p->t_ms;
        }
        json_array_append_new(rules, json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
                                               "name", r->name, "kind", cd_rule_kind_name(r->kind),
                                               "action", cd_action_name(r->action), "t", t,
                                               "canary", c, "stable", st, "threshold", th, "band",
                                               bd, "canary_samples", cn, "stable_samples", sn,
                                               "state", state, "insufficient", shorts));
    }
    for (size_t k = 0; k < v.nmarks; k++) {
        const cd_history_mark_t *m = &v.marks[k];
        char tb[40];
        json_t *o =
            json_pack("{s:I,s:s,s:s,s:s}", "t", (json_int_t)m->t_ms, "time",
                      cd_time_format(m->t_ms, tb, sizeof tb), "kind",
                      m->record == CD_RECORD_VERDICT ? "verdict" : "state", "reason", m->reason);
        json_object_set_new(o, "rule",
                            m->rule >= 0 ? json_string(v.rules[m->rule].name) : json_null());
        if (m->record == CD_RECORD_VERDICT) {
            json_object_set_new(o, "verdict", json_string(cd_verdict_kind_name(m->verdict)));
        } else {
            json_object_set_new(o, "from", json_string(cd_rule_state_name(m->from)));
            json_object_set_new(o, "to", json_string(cd_rule_state_name(m->to)));
        }
        json_array_append_new(marks, o);
    }
    for (size_t k = 0; k < v.nverdicts; k++)
        json_array_append_new(verdicts,
                              json_pack("{s:I,s:s}", "t", (json_int_t)v.verdicts[k].t_ms, "verdict",
                                        cd_verdict_kind_name(v.verdicts[k].verdict)));
    json_t *j = json_pack("{s:s,s:I,s:o,s:o,s:o}", "release", v.release, "next_since",
                          (json_int_t)(last == INT64_MIN ? 0 : last), "rules", rules, "marks",
                          marks, "verdicts", verdicts);
    cd_history_view_free(&v);
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(7)) : NULL;
    json_decref(j);
    if (len) *len = text ? strlen(text) : 0;
    return text;
}
