/*
 * test_pipeline.c - the pipeline's counting and clock: one payload per bad
 * input reason, "other" types, bad numeric fields, late / future / after
 * evaluation, release learning, evaluation boundaries, records delivered;
 * and the log's escaping and rate limit that bad input goes through.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../pipeline_fixture.h"
#include "canaryd/config.h"
#include "canaryd/log.h"
#include "canaryd/pipeline.h"

#define T0 1795780800000LL /* 2026-11-27T12:00:00.000Z */

static const char CONFIG[] =
    "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\"],"
    "  \"numeric_fields\": {\"latency_ms\": \"data.latency_ms\"}},"
    " \"windows\": {\"resolution\": \"1s\", \"allowed_lateness\": \"5s\","
    "  \"max_future_skew\": \"2m\", \"slack\": \"30s\"},"
    " \"verdicts\": {\"eval_interval\": \"1s\", \"min_canary_events\": 0},"
    " \"rules\": [{\"name\": \"errors\", \"kind\": \"threshold\","
    "  \"description\": \"Alert: any canary error.\", \"numerator\": [\"ERROR_OCCURRED\"],"
    "  \"scope\": \"canary\", \"op\": \">\", \"threshold\": 0, \"window\": \"10s\", \"for\": "
    "\"0s\","
    "  \"resolve_for\": \"10s\", \"action\": \"alert\"}]}";

typedef struct rec {
    int n;
    cd_verdict_t v[64];
    char rule[64][64];
    char release[64][64];
    char service[64][64];
} rec_t;

static void on_record(const cd_verdict_t *v, void *opaque)
{
    rec_t *r = opaque;
    cr_assert_lt(r->n, 64);
    r->v[r->n] = *v;
    snprintf(r->rule[r->n], 64, "%s", v->rule ? v->rule : "");
    snprintf(r->release[r->n], 64, "%s", v->release ? v->release : "");
    snprintf(r->service[r->n], 64, "%s", v->service ? v->service : "(null)");
    r->n++;
}

static cd_config_t *cfg;
static cd_pipeline_t *pl;
static rec_t recs;
static FILE *log_fp;

static void setup(void)
{
    cfg = fx_config(CONFIG);
    memset(&recs, 0, sizeof(recs));
    pl = fx_pipeline(cfg, 5000, 1, on_record, &recs);
    log_fp = tmpfile();
    cd_log_set_stream(log_fp);
    cd_log_reset();
}

static void teardown(void)
{
    cd_log_set_stream(NULL);
    cd_log_set_clock(NULL);
    if (log_fp) fclose(log_fp);
    cd_pipeline_destroy(pl);
    cd_config_free(cfg);
}

/* Decodes and adds one event (the replay's path), returning the reason. */
static cd_bad_reason_t feed(const char *s, size_t len, uint64_t lineno)
{
    cd_event_t ev;
    cd_bad_reason_t r = cd_pipeline_decode(pl, s, len, lineno, &ev);
    if (r == CD_BAD_NONE) cd_pipeline_add(pl, &ev, 0);
    return r;
}

static cd_bad_reason_t feeds(const char *s, uint64_t lineno)
{
    return feed(s, strlen(s), lineno);
}

static char *log_text(void)
{
    static char buf[16384];
    fflush(log_fp);
    long n = ftell(log_fp);
    rewind(log_fp);
    size_t got = fread(buf, 1, n < (long)sizeof(buf) - 1 ? (size_t)n : sizeof(buf) - 1, log_fp);
    buf[got] = '\0';
    return buf;
}

Test(pipeline, every_bad_input_reason_counted_once, .init = setup, .fini = teardown)
{
    char complex[1024] = "{\"a\":[";
    for (int i = 0; i < 300; i++)
        strcat(complex, i ? ",1" : "1");
    strcat(complex, "]}");
    static const char nul[] = "{\"event_type\":\"A\0\"}";
    static const struct {
        const char *s;
        cd_bad_reason_t want;
    } cases[] = {
        {"{\"event_type\":\"\xff\"}", CD_BAD_INVALID_UTF8},
        {"{\"event_type\":\"REQUEST_COMPLETED\"", CD_BAD_TRUNCATED_JSON},
        {"{\"event_type\" \"REQUEST_COMPLETED\"}", CD_BAD_INVALID_JSON},
        {"[1,2]", CD_BAD_NOT_OBJECT},
        {"{\"timestamp\":\"2026-11-27T12:00:00Z\",\"cohort\":\"canary\"}", CD_BAD_MISSING_TYPE},
        {"{\"event_type\":5,\"timestamp\":\"2026-11-27T12:00:00Z\",\"cohort\":\"canary\"}",
         CD_BAD_WRONG_TYPE},
        {"{\"event_type\":\"REQUEST_COMPLETED\",\"cohort\":\"canary\"}", CD_BAD_MISSING_TIMESTAMP},
        {"{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":\"yesterday\",\"cohort\":\"canary\"}",
         CD_BAD_BAD_TIMESTAMP},
        {"{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":\"2026-11-27T12:00:00Z\"}",
         CD_BAD_MISSING_COHORT},
        {"{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":\"2026-11-27T12:00:00Z\","
         "\"cohort\":\"blue\"}",
         CD_BAD_UNKNOWN_COHORT},
    };
    size_t ncases = sizeof(cases) / sizeof(cases[0]);

    cd_pipeline_count_bad(pl, CD_BAD_LINE_TOO_LONG, "{\"event_type\":", 14, 1);
    cr_assert_eq(feed(nul, sizeof(nul) - 1, 2), CD_BAD_NUL_BYTE);
    cr_assert_eq(feeds(complex, 3), CD_BAD_TOO_COMPLEX);
    for (size_t i = 0; i < ncases; i++) {
        cd_bad_reason_t r = feeds(cases[i].s, 4 + i);
        cr_assert_eq(r, cases[i].want, "case %zu: got %s", i, cd_bad_reason_name(r));
    }

    cd_pipeline_stats_t s;
    cd_pipeline_stats(pl, &s);
    cr_assert_eq(s.bad_total, 2 + 1 + ncases);
    for (int r = 1; r < CD_BAD__COUNT; r++)
        cr_assert_eq(s.bad[r], 1, "reason %s counted %llu times", cd_bad_reason_name(r),
                     (unsigned long long)s.bad[r]);
    cr_assert_eq(s.bad[CD_BAD_NONE], 0);
    cr_assert_eq(s.accepted, 0);
    cr_assert_eq(s.first_ms, 0);
    cr_assert_eq(s.last_ms, 0);

    /* samples: reason, line number, escaped payload */
    char *log = log_text();
    cr_assert_not_null(strstr(log, "canaryd[warn]: bad input (line_too_long) at line 1: "
                                   "{\"event_type\":\n"),
                       "%s", log);
    cr_assert_not_null(strstr(log, "bad input (nul_byte) at line 2: {\"event_type\":\"A\\x00\"}\n"),
                       "%s", log);
    cr_assert_not_null(
        strstr(log, "bad input (invalid_utf8) at line 4: {\"event_type\":\"\\xff\"}\n"), "%s", log);
    /* the 607-byte payload is cut at 120 bytes */
    char want[200];
    snprintf(want, sizeof(want), "bad input (too_complex) at line 3: %.120s...\n", complex);
    cr_assert_not_null(strstr(log, want), "%s", log);
}

Test(pipeline, accepted_events_by_type_and_cohort, .init = setup, .fini = teardown)
{
    cd_pipeline_advance(pl, T0);
    cr_assert_eq(
        feeds("{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":\"2026-11-27T12:00:00.500Z\","
              "\"cohort\":\"canary\",\"version\":\"2.5.0\",\"data\":{\"latency_ms\":12.5}}",
              1),
        CD_BAD_NONE);
    cr_assert_eq(feeds("{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":1795780801000,"
                       "\"cohort\":\"stable\",\"version\":\"2.4.0\"}",
                       2),
                 CD_BAD_NONE);
    cr_assert_eq(feeds("{\"event_type\":\"USER_LOGIN\",\"timestamp\":\"2026-11-27T12:00:01Z\","
                       "\"cohort\":\"stable\"}",
                       3),
                 CD_BAD_NONE);
    cr_assert_eq(
        feeds("{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":\"2026-11-27T12:00:02Z\","
              "\"cohort\":\"canary\",\"data\":{\"latency_ms\":\"fast\"}}",
              4),
        CD_BAD_NONE);

    cd_pipeline_stats_t s;
    cd_pipeline_stats(pl, &s);
    cr_assert_eq(s.accepted, 4);
    cr_assert_eq(s.by_type[0][CD_COHORT_CANARY], 2);
    cr_assert_eq(s.by_type[0][CD_COHORT_STABLE], 1);
    cr_assert_eq(s.by_type[1][CD_COHORT_CANARY], 0);
    cr_assert_eq(s.by_type[CD_PIPELINE_OTHER][CD_COHORT_STABLE], 1);
    cr_assert_eq(s.by_type[CD_PIPELINE_OTHER][CD_COHORT_CANARY], 0);
    cr_assert_eq(s.bad_numeric, 1);
    cr_assert_eq(s.bad_total, 0);
    cr_assert_eq(s.first_ms, T0 + 500);
    cr_assert_eq(s.last_ms, T0 + 2000);
    cr_assert_eq(cd_pipeline_ntypes(pl), 2);
    cr_assert_str_eq(cd_pipeline_type_name(pl, 1), "ERROR_OCCURRED");
    /* the release comes from the first canary event, not the stable one */
    cr_assert_str_eq(cd_pipeline_release(pl), "2.5.0");
}

Test(pipeline, late_future_and_after_eval, .init = setup, .fini = teardown)
{
    cd_pipeline_advance(pl, T0);
    cd_pipeline_advance(pl, T0 + 10000);
    /* ring span: rule window 10s + slack 30s behind the clock; ahead 5s */
    cr_assert_eq(feeds("{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":1795780200000,"
                       "\"cohort\":\"canary\"}",
                       1),
                 CD_BAD_NONE); /* 10 min before T0: late */
    cr_assert_eq(feeds("{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":1795780870000,"
                       "\"cohort\":\"canary\"}",
                       2),
                 CD_BAD_NONE); /* clock + 60 s: future */
    cr_assert_eq(feeds("{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":1795780805000,"
                       "\"cohort\":\"canary\"}",
                       3),
                 CD_BAD_NONE); /* before last eval: after_eval */
    cr_assert_eq(feeds("{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":1795780812000,"
                       "\"cohort\":\"canary\"}",
                       4),
                 CD_BAD_NONE); /* in time */
    cr_assert_eq(feeds("{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":1795780810000,"
                       "\"cohort\":\"canary\"}",
                       5),
                 CD_BAD_NONE); /* at the boundary: in time */

    cd_event_t ev = {.ts_ms = T0 + 500000, .cohort = CD_COHORT_CANARY, .type = 0};
    cd_pipeline_count_future(pl, &ev, T0 + 10000, 6);

    cd_pipeline_stats_t s;
    cd_pipeline_stats(pl, &s);
    cr_assert_eq(s.late, 1);
    cr_assert_eq(s.future, 2);
    cr_assert_eq(s.accepted, 3);
    cr_assert_eq(s.after_eval, 1);
    cr_assert_eq(s.first_ms, T0 + 5000);
    cr_assert_eq(s.last_ms, T0 + 12000);
    cr_assert_not_null(strstr(log_text(), "event at line 6 dropped: its time is 490000 ms after "
                                          "the latest event time, more than max_future_skew"));
}

Test(pipeline, evaluation_boundaries, .init = setup, .fini = teardown)
{
    cd_pipeline_stats_t s;
    cd_pipeline_advance(pl, T0 + 300); /* starts the grid at T0, evaluates nothing */
    cd_pipeline_stats(pl, &s);
    cr_assert_eq(s.evaluations, 0);
    cr_assert_eq(s.last_eval_ms, 0); /* nothing evaluated yet */

    cd_pipeline_advance(pl, T0 + 3000);
    cd_pipeline_stats(pl, &s);
    cr_assert_eq(s.evaluations, 3); /* T0+1s, +2s, +3s */
    cr_assert_eq(s.last_eval_ms, T0 + 3000);

    cd_pipeline_advance(pl, T0 + 2000); /* backwards: ignored */
    cd_pipeline_advance(pl, T0 + 3999);
    cd_pipeline_stats(pl, &s);
    cr_assert_eq(s.evaluations, 3);
    cr_assert_eq(s.clock_ms, T0 + 3999);
    cd_pipeline_advance(pl, T0 + 4000);
    cd_pipeline_stats(pl, &s);
    cr_assert_eq(s.evaluations, 4);
}

/* after_eval is counted on the adding thread's stripe (in live mode nearly
 * every event is after an evaluation) and summed over the stripes on read. */
Test(pipeline, after_eval_is_summed_over_stripes, .init = setup, .fini = teardown)
{
    cd_pipeline_advance(pl, T0);
    cd_pipeline_advance(pl, T0 + 3000);
    const int stripes[] = {0, 1, 5, 15, 16, 31};
    for (int i = 0; i < 6; i++) {
        cd_event_t ev = {.type = 0, .cohort = CD_COHORT_CANARY, .ts_ms = T0 + 2000 + i};
        cr_assert_eq(cd_pipeline_add(pl, &ev, stripes[i]), CD_WIN_OK);
    }
    cd_event_t in_time = {.type = 0, .cohort = CD_COHORT_STABLE, .ts_ms = T0 + 3000};
    cr_assert_eq(cd_pipeline_add(pl, &in_time, 3), CD_WIN_OK);
    cd_pipeline_stats_t s;
    cd_pipeline_stats(pl, &s);
    cr_assert_eq(s.accepted, 7);
    cr_assert_eq(s.after_eval, 6);
}

/* Replay's clock trails the first event by the allowed lateness; the grid
 * starts at the first event, so no evaluation predates the stream, and an
 * event from before the grid's start is not "after evaluation". */
Test(pipeline, begin_starts_the_grid_at_the_first_event, .init = setup, .fini = teardown)
{
    cd_pipeline_stats_t s;
    cd_pipeline_begin(pl, T0 + 300);
    cd_pipeline_advance(pl, T0 + 300 - 5000);
    cd_pipeline_advance(pl, T0 + 999);
    cd_pipeline_stats(pl, &s);
    cr_assert_eq(s.evaluations, 0);
    cr_assert_eq(feeds("{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":"
                          "\"2026-11-27T11:59:59.000Z\",\"cohort\":\"stable\"}", 1),
                 CD_BAD_NONE);
    cd_pipeline_advance(pl, T0 + 1000);
    cd_pipeline_stats(pl, &s);
    cr_assert_eq(s.evaluations, 1);
    cr_assert_eq(s.last_eval_ms, T0 + 1000);
    cr_assert_eq(s.after_eval, 0);
    cr_assert_eq(recs.n, 1); /* the release-wide verdict of the first evaluation */
    cr_assert_eq(recs.v[0].time_ms, T0 + 1000);
}

/* A clock jump longer than the ring evaluates until the windows are empty,
 * then only the last span before the new time: span = 10s window + 30s
 * slack = 40s, so 41 boundaries on each side of the gap, not 172800. */
Test(pipeline, long_gap_evaluates_only_around_it, .init = setup, .fini = teardown)
{
    cd_pipeline_stats_t s;
    const int64_t day2 = 2LL * 86400 * 1000;
    cd_pipeline_advance(pl, T0);
    cd_pipeline_advance(pl, T0 + day2);
    cd_pipeline_stats(pl, &s);
    cr_assert_eq(s.evaluations, 82);
    cr_assert_eq(s.last_eval_ms, T0 + day2);
    cd_pipeline_advance(pl, T0 + day2 + 1000);
    cd_pipeline_stats(pl, &s);
    cr_assert_eq(s.evaluations, 83);
}

Test(pipeline, records_arrive_with_learnt_release, .init = setup, .fini = teardown)
{
    cd_pipeline_advance(pl, T0);
    feeds("{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":\"2026-11-27T12:00:00.500Z\","
          "\"cohort\":\"canary\",\"version\":\"2.5.0\"}",
          1);
    feeds("{\"event_type\":\"ERROR_OCCURRED\",\"timestamp\":\"2026-11-27T12:00:02.500Z\","
          "\"cohort\":\"canary\",\"version\":\"2.5.0\"}",
          2);
    cd_pipeline_advance(pl, T0 + 2000);
    int before = recs.n;
    for (int i = 0; i < before; i++)
        cr_assert(!(recs.v[i].record == CD_RECORD_VERDICT && recs.v[i].verdict == CD_VERDICT_ALERT),
                  "ALERT before the error's second was evaluated");
    cd_pipeline_advance(pl, T0 + 3000);

    int alert = -1;
    for (int i = 0; i < recs.n; i++)
        if (recs.v[i].record == CD_RECORD_VERDICT && recs.v[i].verdict == CD_VERDICT_ALERT)
            alert = i;
    cr_assert_geq(alert, before, "no ALERT record; %d records", recs.n);
    cr_assert_eq(recs.v[alert].time_ms, T0 + 3000);
    cr_assert_str_eq(recs.rule[alert], "errors");
    cr_assert_str_eq(recs.release[alert], "2.5.0");
    cr_assert_eq(recs.v[alert].canary.numerator, 1);

    const char *names[4];
    cr_assert_eq(cd_pipeline_firing_rules(pl, names, 4), 1);
    cr_assert_str_eq(names[0], "errors");

    cd_pipeline_stats_t s;
    cd_pipeline_stats(pl, &s);
    cr_assert_eq(s.records, (uint64_t)recs.n);
    cr_assert_eq(s.evaluations, 3);
}

Test(pipeline, catchup_marks_the_records_made_while_set, .init = setup, .fini = teardown)
{
    cd_pipeline_advance(pl, T0);
    feeds("{\"event_type\":\"ERROR_OCCURRED\",\"timestamp\":\"2026-11-27T12:00:00.500Z\","
          "\"cohort\":\"canary\",\"version\":\"2.5.0\"}",
          1);
    cr_assert(!cd_pipeline_catchup(pl));
    cd_pipeline_set_catchup(pl, true);
    cr_assert(cd_pipeline_catchup(pl));
    cd_pipeline_advance(pl, T0 + 1000); /* the error: pending -> firing, ALERT */
    int during = recs.n;
    cr_assert_gt(during, 0);
    for (int i = 0; i < during; i++) cr_assert(recs.v[i].catchup, "record %d not marked", i);
    cd_pipeline_set_catchup(pl, false);
    /* the error leaves the 10 s window: resolved after resolve_for */
    cd_pipeline_advance(pl, T0 + 30000);
    cr_assert_gt(recs.n, during);
    for (int i = during; i < recs.n; i++) cr_assert(!recs.v[i].catchup, "record %d marked", i);
}

Test(pipeline, records_carry_the_learnt_service, .init = setup, .fini = teardown)
{
    cr_assert_str_eq(cd_pipeline_service(pl), "");
    cr_assert(!cd_pipeline_service_configured(pl));
    cd_pipeline_advance(pl, T0);
    /* a stable event names no service of ours to learn; nor does a canary
     * event without one */
    feeds("{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":\"2026-11-27T12:00:00.100Z\","
          "\"cohort\":\"stable\",\"service\":\"search\"}",
          1);
    feeds("{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":\"2026-11-27T12:00:00.200Z\","
          "\"cohort\":\"canary\"}",
          2);
    cd_pipeline_advance(pl, T0 + 1000);
    cr_assert_gt(recs.n, 0);
    int first = recs.n;
    for (int i = 0; i < first; i++)
        cr_assert_str_eq(recs.service[i], "", "record %d before the service is known", i);
    feeds("{\"event_type\":\"ERROR_OCCURRED\",\"timestamp\":\"2026-11-27T12:00:01.500Z\","
          "\"cohort\":\"canary\",\"service\":\"checkout\",\"version\":\"2.5.0\"}",
          3);
    feeds("{\"event_type\":\"ERROR_OCCURRED\",\"timestamp\":\"2026-11-27T12:00:01.600Z\","
          "\"cohort\":\"canary\",\"service\":\"search\"}",
          4);
    cr_assert_str_eq(cd_pipeline_service(pl), "checkout", "the first canary event naming one");
    cd_pipeline_advance(pl, T0 + 3000);
    cr_assert_gt(recs.n, first, "the ALERT");
    for (int i = first; i < recs.n; i++)
        cr_assert_str_eq(recs.service[i], "checkout", "record %d", i);
    /* without events.service every event was judged, search's included */
    cd_pipeline_stats_t s;
    cd_pipeline_stats(pl, &s);
    cr_assert_eq(s.accepted, 4);
    cr_assert_eq(s.other_service + s.no_service, 0);
    cr_assert_not_null(strstr(log_text(), "service \"checkout\", learnt from the first canary "
                                          "event's service field"));
}

Test(pipeline, events_service_counts_other_services_apart, .fini = teardown)
{
    static const char conf[] =
        "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\"],"
        " \"service\": \"checkout\"},"
        " \"rules\": [{\"name\": \"errors\", \"kind\": \"threshold\","
        "  \"numerator\": [\"ERROR_OCCURRED\"], \"scope\": \"canary\", \"op\": \">\","
        "  \"threshold\": 0, \"window\": \"10s\", \"for\": \"0s\", \"action\": \"rollback\"}]}";
    cd_diag_t diag;
    cd_diag_init(&diag);
    cfg = cd_config_parse(conf, sizeof(conf) - 1, NULL, &diag);
    cr_assert_not_null(cfg, "config: %s", diag.text);
    memset(&recs, 0, sizeof(recs));
    pl = fx_pipeline(cfg, 5000, 1, on_record, &recs);
    log_fp = tmpfile();
    cd_log_set_stream(log_fp);
    cd_log_reset();
    cr_assert(cd_pipeline_service_configured(pl));
    cr_assert_str_eq(cd_pipeline_service(pl), "checkout", "known from the start");

    cd_pipeline_advance(pl, T0);
#define EV(svc, type, cohort, ms)                                                                  \
    "{\"event_type\":\"" type "\",\"timestamp\":\"2026-11-27T12:00:00." ms                         \
    "Z\",\"cohort\":\"" cohort "\"" svc "}"
    cr_assert_eq(feeds(EV(",\"service\":\"checkout\"", "REQUEST_COMPLETED", "canary", "100"), 1),
                 CD_BAD_NONE);
    cr_assert_eq(feeds(EV(",\"service\":\"checkout\"", "REQUEST_COMPLETED", "stable", "200"), 2),
                 CD_BAD_NONE);
    /* search's errors on the canary would fire the rule if judged */
    for (int i = 0; i < 3; i++)
        cr_assert_eq(feeds(EV(",\"service\":\"search\"", "ERROR_OCCURRED", "canary", "300"), 3),
                     CD_DECODE_OTHER_SERVICE);
    /* another service's schema is not bad input */
    cr_assert_eq(feeds("{\"service\":\"search\",\"kind\":\"x\"}", 4), CD_DECODE_OTHER_SERVICE);
    cr_assert_eq(feeds(EV("", "ERROR_OCCURRED", "canary", "400"), 5), CD_DECODE_OTHER_SERVICE);
    cr_assert_eq(feeds("{\"service\":", 6), CD_BAD_TRUNCATED_JSON);
#undef EV
    cd_pipeline_advance(pl, T0 + 3000);

    cd_pipeline_stats_t s;
    cd_pipeline_stats(pl, &s);
    cr_assert_eq(s.accepted, 2);
    cr_assert_eq(s.by_type[1][CD_COHORT_CANARY], 0, "no error of checkout's canary");
    cr_assert_eq(s.other_service, 4);
    cr_assert_eq(s.no_service, 1);
    cr_assert_eq(s.bad_total, 1);
    cr_assert_eq(s.bad[CD_BAD_TRUNCATED_JSON], 1);
    cr_assert_neq(cd_pipeline_verdict(pl), CD_VERDICT_ROLLBACK);
    cr_assert_gt(recs.n, 0);
    for (int i = 0; i < recs.n; i++) {
        cr_assert_str_eq(recs.service[i], "checkout", "record %d", i);
        cr_assert(
            !(recs.v[i].record == CD_RECORD_VERDICT && recs.v[i].verdict == CD_VERDICT_ROLLBACK));
    }
    /* the event naming no service is sampled to the log; search's are not */
    const char *log = log_text();
    cr_assert_not_null(strstr(log, "event without a service field (service), not judged: "
                                   "events.service is \"checkout\" at line 5: "),
                       "%s", log);
    cr_assert_null(strstr(log, "bad input (other_service)"), "%s", log);
    cr_assert_null(strstr(log, "at line 3"), "%s", log);
}

/* ---- log ---- */

static int64_t fake_now;
static int64_t fake_clock(void)
{
    return fake_now;
}

static int count_lines(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

Test(log, rate_limit_burst_then_interval, .init = setup, .fini = teardown)
{
    fake_now = 1000;
    cd_log_set_clock(fake_clock);
    for (int i = 0; i < 8; i++)
        cd_log_ratelimited("k", CD_LOG_WARN, "message %d", i);
    cd_log_ratelimited("other", CD_LOG_WARN, "other key");
    fake_now += 9999;
    cd_log_ratelimited("k", CD_LOG_WARN, "message 8"); /* still within 10 s of the 5th */
    fake_now += 1;
    cd_log_ratelimited("k", CD_LOG_WARN, "message 9");
    cd_log_ratelimited("k", CD_LOG_WARN, "message 10");

    char *log = log_text();
    cr_assert_eq(count_lines(log, "canaryd[warn]: message "), 6, "%s", log);
    cr_assert_not_null(strstr(log, "message 4\n"));
    cr_assert_null(strstr(log, "message 5"));
    cr_assert_null(strstr(log, "message 8"));
    cr_assert_not_null(strstr(log, "message 9 (4 similar suppressed)\n"), "%s", log);
    cr_assert_null(strstr(log, "message 10"));
    cr_assert_not_null(strstr(log, "other key\n"));
}

Test(log, escape)
{
    char out[CD_LOG_ESCAPED_MAX];
    cd_log_escape("a\\b\"c\x01\x7f\xc3\xa9", 9, out, sizeof(out));
    cr_assert_str_eq(out, "a\\\\b\"c\\x01\\x7f\\xc3\\xa9");
    char big[300];
    memset(big, 'x', sizeof(big));
    cd_log_escape(big, sizeof(big), out, sizeof(out));
    cr_assert_eq(strlen(out), 123);
    cr_assert_str_eq(out + 120, "...");
    /* worst case fits the documented size */
    memset(big, 0, sizeof(big));
    cd_log_escape(big, sizeof(big), out, sizeof(out));
    cr_assert_eq(strlen(out), 4 * 120 + 3);
}

Test(log, level_parse)
{
    cd_log_level_t l;
    cr_assert(cd_log_level_parse("debug", &l));
    cr_assert_eq(l, CD_LOG_DEBUG);
    cr_assert(cd_log_level_parse("WARN", &l));
    cr_assert_eq(l, CD_LOG_WARN);
    cr_assert_not(cd_log_level_parse("verbose", &l));
}
