/*
 * test_pipeline_interleave.c - the pipeline's statistics against its
 * windows when the live clock moves between the writes of one event (its
 * type counter, then each numeric field's histogram), the interleaving a
 * Kafka worker and the live clock thread produce now and then, forced here
 * deterministically: this binary is linked with -Wl,--wrap=cd_window_observe
 * (CMakeLists.txt), and the wrapper below, when a test arms it, reads the
 * window and then moves its clock just before the observation it forwards.
 * An event is counted exactly once: accepted when any of its cells reached
 * the windows, late only when none did.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "../pipeline_fixture.h"
#include "canaryd/config.h"
#include "canaryd/pipeline.h"
#include "canaryd/window.h"

#define T0 1795780800000LL /* 2026-11-27T12:00:00.000Z */

/* ring span: the 10 s rule window + 30 s slack */
static const char CONFIG[] =
    "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\"],"
    "  \"numeric_fields\": {\"latency_ms\": \"data.latency_ms\", \"bytes\": \"data.bytes\"}},"
    " \"windows\": {\"resolution\": \"1s\", \"allowed_lateness\": \"5s\","
    "  \"max_future_skew\": \"2m\", \"slack\": \"30s\"},"
    " \"verdicts\": {\"eval_interval\": \"1s\", \"min_canary_events\": 0},"
    " \"rules\": [{\"name\": \"errors\", \"kind\": \"threshold\","
    "  \"description\": \"Alert: any canary error.\", \"numerator\": [\"ERROR_OCCURRED\"],"
    "  \"scope\": \"canary\", \"op\": \">\", \"threshold\": 0, \"window\": \"10s\", \"for\": "
    "\"0s\", \"resolve_for\": \"10s\", \"action\": \"alert\"}]}";

cd_window_result_t __real_cd_window_observe(cd_window_t *w, int hist, cd_cohort_t c, int64_t ts_ms,
                                            double v);
cd_window_result_t __wrap_cd_window_observe(cd_window_t *w, int hist, cd_cohort_t c, int64_t ts_ms,
                                            double v);

/* Armed by a test: before the observation number move_at (0-based) of the
 * next event, the window's REQUEST_COMPLETED count of the event's second is
 * read into seen_before and the clock is set to move_to. */
static int move_at = -1, calls;
static int64_t move_to;
static uint64_t seen_before;

cd_window_result_t __wrap_cd_window_observe(cd_window_t *w, int hist, cd_cohort_t c, int64_t ts_ms,
                                            double v)
{
    if (calls++ == move_at) {
        seen_before = cd_window_sum(w, 0, c, ts_ms + 1, 1000);
        cd_window_set_clock(w, move_to);
    }
    return __real_cd_window_observe(w, hist, c, ts_ms, v);
}

static cd_config_t *cfg;
static cd_pipeline_t *pl;

static void setup(void)
{
    cfg = fx_config(CONFIG);
    pl = fx_pipeline(cfg, 5000, 1, NULL, NULL);
    cd_pipeline_advance(pl, T0);
    cd_pipeline_advance(pl, T0 + 10000); /* oldest second kept: T0 - 30 s */
    move_at = -1;
    calls = 0;
    seen_before = 0;
}

static void teardown(void)
{
    cd_pipeline_destroy(pl);
    cd_config_free(cfg);
}

/* An event of the oldest second the ring keeps, with both numeric fields;
 * the clock moves one second (the event is then older than the ring)
 * before observation number at (-1: never). */
static cd_window_result_t add_oldest(int type, int at)
{
    cd_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.cohort = CD_COHORT_CANARY;
    ev.ts_ms = T0 - 30000;
    ev.num_mask = 3;
    ev.num[0] = 12.5;
    ev.num[1] = 2048;
    move_at = at;
    move_to = T0 + 11000;
    calls = 0;
    return cd_pipeline_add(pl, &ev, 0);
}

/* Failed before: the type counter was in the window (seen_before 1) and
 * the event was counted late (late 1, accepted 0), as cd_pipeline_add
 * answered CD_WIN_LATE. */
Test(pipeline_interleave, clock_moves_after_the_type_counter, .init = setup, .fini = teardown)
{
    cr_assert_eq(add_oldest(0, 0), CD_WIN_OK);
    cr_assert_eq(seen_before, 1, "the type counter reached the window before the clock moved");
    cd_pipeline_stats_t s;
    cd_pipeline_stats(pl, &s);
    cr_assert_eq(s.late, 0);
    cr_assert_eq(s.accepted, 1);
    cr_assert_eq(s.by_type[0][CD_COHORT_CANARY], 1);
}

/* A type-less event: its first histogram written, the clock moves before
 * the second. Failed before the same way (late 1, accepted 0). */
Test(pipeline_interleave, clock_moves_between_two_histograms, .init = setup, .fini = teardown)
{
    cr_assert_eq(add_oldest(CD_TYPE_OTHER, 1), CD_WIN_OK);
    cd_pipeline_stats_t s;
    cd_pipeline_stats(pl, &s);
    cr_assert_eq(s.late, 0);
    cr_assert_eq(s.accepted, 1);
    cr_assert_eq(s.by_type[CD_PIPELINE_OTHER][CD_COHORT_CANARY], 1);
}

/* A type-less event whose first write finds it late: nothing of it is in
 * the windows, so it is late and only late. */
Test(pipeline_interleave, clock_moves_before_the_first_write, .init = setup, .fini = teardown)
{
    cr_assert_eq(add_oldest(CD_TYPE_OTHER, 0), CD_WIN_LATE);
    cd_pipeline_stats_t s;
    cd_pipeline_stats(pl, &s);
    cr_assert_eq(s.late, 1);
    cr_assert_eq(s.accepted, 0);
}

/* Without the clock moving, the same event is accepted and its second is
 * the oldest one the ring reads (so the tests above sit on the edge). */
Test(pipeline_interleave, the_event_is_on_the_edge, .init = setup, .fini = teardown)
{
    cr_assert_eq(add_oldest(0, -1), CD_WIN_OK);
    cr_assert_eq(cd_window_sum(cd_pipeline_window(pl), 0, CD_COHORT_CANARY, T0 - 29000, 1000), 1);
    cd_window_set_clock(cd_pipeline_window(pl), T0 + 11000);
    cr_assert_eq(cd_window_sum(cd_pipeline_window(pl), 0, CD_COHORT_CANARY, T0 - 29000, 1000), 0,
                 "one second later it is older than the ring");
    cd_event_t ev = {.type = 0, .cohort = CD_COHORT_CANARY, .ts_ms = T0 - 30000};
    cr_assert_eq(cd_pipeline_add(pl, &ev, 0), CD_WIN_LATE);
}
