/*
 * sop_run.h - one generated SOP stream judged in process, as `canaryd
 * generate ... | canaryd replay --config config/sop.json -` would judge it
 * (header-only; bench_seq.c and tests/unit/test_seq_seeds.c include it).
 *
 * What: simgen draws each second's events (JSON lines, the same bytes
 * `canaryd generate` writes), the pipeline decodes and counts them, and the
 * clock is advanced to the end of each second once all of its events are
 * in: every boundary is evaluated over exactly the events replay would have
 * counted there (the stream is sorted; replay's clock trails it by the
 * allowed lateness, which only delays when a boundary is judged, not what it
 * sees). The first ROLLBACK record (time, rule, reason) and the count of
 * ROLLBACK records are kept; nothing is printed.
 *
 * Why in process: a 20-seed run of five scenarios is about 70 M events,
 * and going through two processes and a pipe per run would double the time
 * without judging anything differently (test_scenarios covers that path).
 * Single-threaded; no allocation beyond the pipeline's own.
 */
#ifndef CANARYD_BENCH_SOP_RUN_H
#define CANARYD_BENCH_SOP_RUN_H

#include <stdio.h>
#include <string.h>

#include "canaryd/config.h"
#include "canaryd/pipeline.h"
#include "canaryd/simgen.h"

typedef struct sop_run {
    int rollbacks;
    int64_t rollback_ms; /* first ROLLBACK's time, 0 = none */
    char rule[64];
    char reason[640];
} sop_run_t;

static void sop_run_on_record(const cd_verdict_t *v, void *opaque)
{
    sop_run_t *r = opaque;
    if (v->record != CD_RECORD_VERDICT || v->verdict != CD_VERDICT_ROLLBACK || v->dry_run) return;
    if (r->rollbacks++ == 0) {
        r->rollback_ms = v->time_ms;
        snprintf(r->rule, sizeof r->rule, "%s", v->rule ? v->rule : "(release)");
        snprintf(r->reason, sizeof r->reason, "%s", v->reason);
    }
}

static void sop_run_line(const char *line, size_t len, int64_t ts, void *opaque)
{
    (void)ts;
    cd_pipeline_ingest(opaque, line, len, 0);
}

/*
 * Judges duration_ms of scenario sc with cfg; fills *out. Returns 0, or -1
 * with a message in err.
 */
static int sop_run(const cd_config_t *cfg, const cd_sim_conf_t *sc, int64_t duration_ms,
                   sop_run_t *out, char *err, size_t errsize)
{
    memset(out, 0, sizeof *out);
    cd_sim_t *sim = cd_sim_new(sc, err, errsize);
    if (!sim) return -1;
    cd_pipeline_t *p =
        cd_pipeline_new(cfg, cfg->allowed_lateness_ms, 1, sop_run_on_record, out, err, errsize);
    if (!p) {
        cd_sim_destroy(sim);
        return -1;
    }
    cd_pipeline_begin(p, sc->start_ms);
    cd_pipeline_advance(p, sc->start_ms);
    for (int64_t s = sc->start_ms; s < sc->start_ms + duration_ms; s += 1000) {
        if (cd_sim_second(sim, s, sop_run_line, p) < 0) {
            snprintf(err, errsize, "simgen failed at %lld", (long long)s);
            cd_pipeline_destroy(p);
            cd_sim_destroy(sim);
            return -1;
        }
        cd_pipeline_advance(p, s + 1000);
    }
    cd_pipeline_destroy(p);
    cd_sim_destroy(sim);
    return 0;
}

#endif
