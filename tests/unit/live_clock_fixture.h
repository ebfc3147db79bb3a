/*
 * live_clock_fixture.h - what test_live_clock.c and
 * test_live_wake_concurrency.c share: a small config (one threshold rule
 * that never fires), a pipeline and a started live clock on it, and two
 * time helpers. Header-only (static functions): each test file is its own
 * executable, and under TSan it is built against tests/tsan's stand-in.
 */
#ifndef CANARYD_TEST_LIVE_CLOCK_FIXTURE_H
#define CANARYD_TEST_LIVE_CLOCK_FIXTURE_H

#include <stdint.h>
#include <time.h>

#include "../pipeline_fixture.h"
#include "../wait_helpers.h"
#include "canaryd/config.h"
#include "canaryd/live.h"
#include "canaryd/pipeline.h"

static const char LIVE_FIXTURE_CONFIG[] =
    "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\"]},"
    " \"windows\": {\"resolution\": \"1s\", \"allowed_lateness\": \"5s\","
    "  \"max_future_skew\": \"2m\", \"slack\": \"30s\"},"
    " \"verdicts\": {\"promote_after\": \"10m\"},"
    " \"rules\": [{\"name\": \"errors\", \"kind\": \"threshold\","
    "  \"description\": \"Alert: canary errors.\", \"numerator\": [\"ERROR_OCCURRED\"],"
    "  \"scope\": \"canary\", \"op\": \">\", \"threshold\": 1000, \"window\": \"5s\","
    "  \"for\": \"2s\", \"resolve_for\": \"3s\", \"action\": \"alert\"}]}";

typedef struct live_fixture {
    cd_config_t *parsed;
    cd_config_t cfg; /* the live config; the pipeline borrows it */
    cd_pipeline_t *p;
    cd_live_t *l;
} live_fixture_t;

/* Parses the config, builds the pipeline (nstripes) and starts its clock. */
static void live_fixture_start(live_fixture_t *f, int nstripes)
{
    f->parsed = fx_config(LIVE_FIXTURE_CONFIG);
    cd_live_config(f->parsed, &f->cfg);
    f->p = fx_pipeline(&f->cfg, f->cfg.max_future_skew_ms, nstripes, NULL, NULL);
    char err[512] = "";
    f->l = cd_live_new(f->p, NULL, NULL, err, sizeof err);
    cr_assert_not_null(f->l, "%s", err);
    cr_assert_eq(cd_live_start(f->l, err, sizeof err), 0, "%s", err);
}

static void live_fixture_free(live_fixture_t *f)
{
    cd_live_destroy(f->l);
    cd_pipeline_destroy(f->p);
    cd_config_free(f->parsed);
}

#endif
