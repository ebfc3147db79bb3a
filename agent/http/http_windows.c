/*
 * http_windows.c - GET /api/v1/windows[?at=S]: every rule's window counts
 * per event type and cohort closed at the whole second S (window_counts.h),
 * so that an operator (or a test) can compare two agents, or an agent with
 * the events, exactly.
 *
 * Data: reads the window ring directly (lock-free readers, any thread) and
 * the latest snapshot's watermark (judged_ms) to refuse a second whose
 * buckets may still fill: S is answered once judged_ms - allowed_lateness
 * has passed it. Why the lateness: judgement runs up to the slowest
 * partition's watermark plus a leeway, and a partition read to its end has
 * the wall time of that read as its watermark, so an event stamped before
 * it may still be on its way (producer batching, a round trip); the
 * allowed lateness is what the config promises such an event. Nothing is
 * kept between requests.
 *
 * Threading: libmicrohttpd's threads; no lock but the snapshot copy the
 * caller made.
 *
 * Trade-off: answered from the ring, so only the seconds the ring still
 * holds (a rule's window closed at S must start after its oldest bucket:
 * about windows.slack behind the clock), instead of a per-second column in
 * the history ring: that would be 16 minutes deep but would store what the
 * evaluation saw at its millisecond (a filling bucket), which two agents
 * do not share.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "canaryd/timeutil.h"
#include "canaryd/window_counts.h"
#include "http_internal.h"

static json_t *time_or_null(int64_t ms)
{
    char t[40];
    return ms > 0 ? json_string(cd_time_format(ms, t, sizeof t)) : json_null();
}

static json_t *rule_json(const cd_config_t *cfg, int i, const cd_window_counts_rule_t *r)
{
    json_t *j = json_pack("{s:s,s:I}", "name", cfg->rules[i].name, "window_ms",
                          (json_int_t)r->window_ms);
    if (r->hist >= 0) {
        json_object_set_new(j, "field", json_string(cfg->numeric_names[r->hist]));
        json_object_set_new(j, "observations",
                            json_pack("{s:I,s:I}", "canary",
                                      (json_int_t)r->observations[CD_COHORT_CANARY], "stable",
                                      (json_int_t)r->observations[CD_COHORT_STABLE]));
        return j;
    }
    json_t *counts = json_object();
    static const struct {
        const char *name;
        cd_cohort_t c;
    } cohorts[] = {{"canary", CD_COHORT_CANARY}, {"stable", CD_COHORT_STABLE}};
    for (size_t k = 0; k < sizeof cohorts / sizeof cohorts[0]; k++) {
        json_t *o = json_object();
        for (int t = 0; t < r->ntypes; t++)
            json_object_set_new(o, cfg->type_names[r->types[t]],
                                json_integer((json_int_t)r->count[t][cohorts[k].c]));
        json_object_set_new(counts, cohorts[k].name, o);
    }
    json_object_set_new(j, "counts", counts);
    return j;
}

json_t *cd_http_windows_json(const cd_config_t *cfg, const cd_window_t *w, int64_t judged_ms,
                             const char *at, int *status)
{
    int64_t res = cd_window_resolution(w), at_ms;
    if (at) {
        char *end;
        long long s = strtoll(at, &end, 10);
        if (*at && *end == '\0' && s > 0 && s < INT64_MAX / 1000) {
            at_ms = (int64_t)s * 1000;
        } else if (!cd_time_parse_rfc3339(at, strlen(at), &at_ms) || at_ms <= 0) {
            *status = 400;
            return json_pack("{s:s}", "error",
                             "at: accepted: seconds since the epoch or an RFC 3339 time, "
                             "on a bucket boundary (a whole second with the default resolution)");
        }
        if (at_ms % res != 0) {
            *status = 400;
            return json_pack("{s:s,s:I}", "error",
                             "at: not on a bucket boundary (windows.resolution)", "resolution_ms",
                             (json_int_t)res);
        }
    }
    int64_t complete = judged_ms > 0 ? judged_ms - cfg->allowed_lateness_ms : 0;
    if (!at) at_ms = complete > 0 ? complete / res * res : 0; /* the last complete boundary */
    cd_window_counts_t *wc = malloc(sizeof *wc);
    if (!wc) {
        *status = 500;
        return json_pack("{s:s}", "error", "out of memory");
    }
    cd_wc_result_t r = cd_window_counts(cfg, w, at_ms, complete, wc);
    json_t *j = json_pack("{s:o,s:I,s:o,s:o,s:o}", "at", time_or_null(at_ms), "at_ms",
                          (json_int_t)at_ms, "judged_until", time_or_null(judged_ms),
                          "complete_until", time_or_null(complete), "oldest",
                          time_or_null(wc->oldest_ms));
    if (r == CD_WC_NOT_JUDGED) {
        *status = 409;
        json_object_set_new(j, "error",
                            json_string("not complete yet: events stamped before it may still "
                                        "arrive; ask again once complete_until (judged_until "
                                        "minus windows.allowed_lateness) has passed it"));
    } else if (r == CD_WC_GONE) {
        *status = 404;
        json_object_set_new(j, "error",
                            json_string("no longer retained: a rule's window closed then starts "
                                        "before the oldest bucket the agent keeps"));
    } else {
        *status = 200;
        json_t *rules = json_array();
        for (int i = 0; i < wc->nrules; i++)
            json_array_append_new(rules, rule_json(cfg, i, &wc->rules[i]));
        json_object_set_new(j, "rules", rules);
    }
    free(wc);
    return j;
}
