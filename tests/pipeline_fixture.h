/*
 * pipeline_fixture.h - the tests tree's one copy of "this config text, which
 * must be valid" and "a pipeline on it, which must build": the two steps
 * every suite that drives a cd_pipeline_t (unit and integration: pipeline,
 * history, interleave, lazy, concurrency, log, window counts, Kafka start,
 * HTTP page, the live clock fixture) begins with. A failure names the
 * config's problems or the pipeline's message. And the clock thread of the
 * concurrency suites (fx_clock_run), which advances a pipeline while their
 * writers ingest, as the live clock does.
 *
 * Header-only (static inline): only tests/.../test_*.c files become
 * binaries. No state; fx_config and fx_pipeline on the test's thread,
 * fx_clock_run on a thread of its own.
 */
#ifndef CANARYD_TEST_PIPELINE_FIXTURE_H
#define CANARYD_TEST_PIPELINE_FIXTURE_H

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "canaryd/config.h"
#include "canaryd/pipeline.h"

/* The parsed config (cd_config_free it); fails the test with the problems
 * when text is not a valid config. */
static inline cd_config_t *fx_config(const char *text)
{
    cd_diag_t diag;
    cd_diag_init(&diag);
    cd_config_t *c = cd_config_parse(text, strlen(text), NULL, &diag);
    cr_assert_not_null(c, "config: %s", diag.text);
    return c;
}

/* cd_pipeline_new with the same arguments, which must succeed (the failure
 * says why not). */
static inline cd_pipeline_t *fx_pipeline(const cd_config_t *cfg, int64_t ahead_ms, int nstripes,
                                         cd_record_cb cb, void *opaque)
{
    char err[512] = "";
    cd_pipeline_t *p = cd_pipeline_new(cfg, ahead_ms, nstripes, cb, opaque, err, sizeof(err));
    cr_assert_not_null(p, "pipeline: %s", err);
    return p;
}

/* The one advancing thread of a concurrency suite, as the live clock: from
 * `from` in 10 ms steps, never past `to` (the writers' events lie in
 * [from, to], so the clock is ahead of all of them only when the suite
 * advances it after the writers), until *stop. */
typedef struct fx_clock {
    cd_pipeline_t *p;
    int64_t from, to;
    atomic_bool *stop;
} fx_clock_t;

static inline void *fx_clock_run(void *arg)
{
    const fx_clock_t *c = arg;
    int64_t now = c->from;
    while (!atomic_load(c->stop)) {
        now += 10;
        if (now > c->to) now = c->to;
        cd_pipeline_advance(c->p, now);
    }
    return NULL;
}

#endif
