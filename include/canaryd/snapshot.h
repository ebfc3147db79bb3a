/*
 * snapshot.h - what the HTTP API shows of the analysis, as plain data: the
 * release's verdict and since when, every rule's state and last evidence,
 * and the pipeline's counters.
 *
 * Why a copy: the engine and the pipeline's evaluation state belong to the
 * evaluating thread (engine.h), so that thread fills a snapshot after its
 * evaluations and hands it to the HTTP server (cd_http_publish copies it
 * under a mutex); request handlers only ever read the latest copy. About
 * 30 KB with 32 rules: copying it ten times a second costs nothing.
 */
#ifndef CANARYD_SNAPSHOT_H
#define CANARYD_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "canaryd/common.h"
#include "canaryd/pipeline.h"
#include "canaryd/verdict.h"

typedef struct cd_snapshot_rule {
    char name[CD_NAME_MAX];
    cd_rule_state_t state;
    cd_action_t action;
    bool dry_run;
    bool quantile;       /* a percentile rule: observed and threshold are in its field's unit */
    bool observed_valid; /* false: no canary data in the window */
    double observed;     /* the canary's value of the rule's signal */
    double threshold;    /* what it was compared with; NaN if none yet */
    uint64_t samples;    /* canary samples (denominator / observations) */
    char reason[640];
} cd_snapshot_rule_t;

typedef struct cd_snapshot {
    uint64_t seq; /* 0: nothing published yet; then 1, 2, ... */
    cd_verdict_kind_t verdict;
    char release[128]; /* "" when unknown */
    char service[CD_NAME_MAX]; /* cd_pipeline_service: "" when unknown */
    bool service_configured;   /* events.service restricts the agent to it */
    int64_t since_ms;  /* wall time the verdict (or release) last changed */
    int64_t time_ms;   /* wall time the snapshot was taken */
    int nrules;
    cd_snapshot_rule_t rules[CD_MAX_RULES];
    cd_pipeline_stats_t stats; /* pipeline counters at time_ms */
    /* The live clock's watermark (live.h, "Watermark"; filled by the agent,
     * not by cd_snapshot_fill): the instant judged last, the watermark lag,
     * and whether the verdict is held because a partition is behind. */
    int64_t judged_ms; /* 0 before any evaluation */
    bool lag_known;    /* false: no watermark source (or none yet) */
    int64_t lag_ms;    /* wall time minus the slowest partition's watermark, >= 0 */
    bool held;         /* judgement held back: the verdict is the last one judged */
    char held_reason[320];
    /* catch-up after the start (live.h, cd_live_set_catchup): held_reason
     * then says how far behind */
    bool catchup;       /* rebuilding the windows from Kafka, not yet current */
    int64_t catchup_ms; /* how long the rebuild took, once done (0 before) */
    int ntypes;
    const char *type_names[CD_MAX_TYPES]; /* borrowed from the config (immutable) */
} cd_snapshot_t;

/*
 * Refreshes s from p at wall time now_ms: since_ms moves to now_ms when the
 * verdict or the release differs from what s held (a zeroed s: the first
 * fill sets it). Returns true when the verdict, the release or a rule's
 * state changed (worth publishing at once). seq is left to the publisher.
 * Evaluating thread of p only.
 */
bool cd_snapshot_fill(cd_snapshot_t *s, const cd_pipeline_t *p, int64_t now_ms);

/* Cheap check (no copies) whether the verdict, the release or a rule's
 * state differs from what s holds: worth a cd_snapshot_fill at once.
 * Evaluating thread of p only. */
bool cd_snapshot_stale(const cd_snapshot_t *s, const cd_pipeline_t *p);

#endif
