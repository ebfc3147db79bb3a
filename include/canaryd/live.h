/*
 * live.h - the live clock: wall time drives the pipeline's windows and rule
 * evaluation from a thread of its own, so that a canary that goes silent is
 * still judged, and an event that completes a rule's condition is judged
 * within one grid step (CD_LIVE_GRID_MS) of being counted.
 *
 * Events keep their own timestamps (the sources count them into the bucket
 * of their event time); the clock only decides which buckets are current and
 * when rules are evaluated. An event more than max_future_skew ahead of the
 * wall clock is "future", one older than the window ring is "late", as in
 * the core.
 */
#ifndef CANARYD_LIVE_H
#define CANARYD_LIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canaryd/config.h"
#include "canaryd/pipeline.h"

/* The live evaluation grid: rules may be evaluated at every multiple of this
 * many ms of wall time; lazily, only where the outcome can change (live.c). */
#define CD_LIVE_GRID_MS 10
/* When nothing can change, the clock looks every CD_LIVE_IDLE_MS instead and
 * the first event counted wakes it (live.c, "Idle steps"). */
#define CD_LIVE_IDLE_MS 100
/* ...once no event has come for this long (cd_pipeline_arm_wake's quiet_ms:
 * above the Kafka workers' 100 ms poll, so each has gone quiet and pokes). */
#define CD_LIVE_QUIET_MS 250

/* Watermark (live.c, "Watermark"): judgement runs at most this far ahead
 * of the slowest partition's watermark. It covers how stale the watermark
 * of a partition that is read to its end can be (the source confirms that
 * with the broker every ~500 ms) and a fetch's round trip, so that a
 * consumer keeping up is never held back. */
#define CD_LIVE_WATERMARK_LEEWAY_MS 2000

/*
 * The config a live pipeline is built from: a shallow copy of cfg with the
 * evaluation interval set to the live grid (verdicts.eval_interval is the
 * event-time grid of replay). out borrows cfg's JSON sections: never pass it
 * to cd_config_free(), and keep cfg alive as long as out.
 */
void cd_live_config(const cd_config_t *cfg, cd_config_t *out);

/* Wall-clock time, epoch ms (CLOCK_REALTIME). */
int64_t cd_live_now_ms(void);

typedef struct cd_live cd_live_t;

/* Called on the evaluating thread before every evaluation step (e.g. to
 * reopen a verdict log after SIGHUP: the log belongs to that thread). */
typedef void (*cd_live_tick_cb)(void *opaque);

/*
 * Prepares a clock for p (borrowed; its evaluating thread becomes the
 * live thread between cd_live_start and cd_live_stop). Records are
 * delivered on that thread. tick may be NULL. NULL + message on failure.
 */
cd_live_t *cd_live_new(cd_pipeline_t *p, cd_live_tick_cb tick, void *opaque, char *errbuf,
                       size_t errsize);

/* Advances the pipeline to now (starting its grid) and starts the thread.
 * 0, or -1 with a message. Caller's thread. */
int cd_live_start(cd_live_t *l, char *errbuf, size_t errsize);

/* Stops and joins the thread, then evaluates once more at the wall clock on
 * the caller's thread (which owns the pipeline again afterwards).
 * Idempotent. */
void cd_live_stop(cd_live_t *l);

/*
 * Watermark gating (live.c, "Watermark"). cb returns the source's watermark
 * (epoch ms: every assigned partition has been read up to it;
 * INT64_MIN while some partition's is unknown or nothing is assigned;
 * INT64_MAX when nothing constrains) and writes which partition is the
 * slowest into who (a short text, e.g. "events[2]"). It is called on the
 * evaluating thread before every step and must be thread-safe with the
 * source. The clock then judges only up to min(now, watermark + leeway),
 * and never further back than now - max_wait_ms (0: no gating). Set before
 * cd_live_start.
 */
typedef int64_t (*cd_live_watermark_cb)(void *opaque, char *who, size_t size);
void cd_live_set_watermark(cd_live_t *l, cd_live_watermark_cb cb, void *opaque,
                           int64_t max_wait_ms);

/*
 * Catch-up (live.c, "Catch-up"; issue 11): the history the rules need, in
 * ms -- the longest look-back of the windows (cd_config_span_ms without its
 * slack: the rules' windows, or promote_after when the canary-evidence
 * check counts over it), plus the longest `for` (a rule pending at a
 * restart then replays its pending span), plus allowed_lateness. The Kafka
 * source starts each partition that far back (cd_kafka_source_set_history).
 */
int64_t cd_live_history_ms(const cd_config_t *cfg);

/* The live config for a rebuild: cd_live_config's, with the window ring
 * reaching back the extra history (cfg's slack + the longest `for` + twice
 * allowed_lateness), so that the seconds replayed are read from the ring
 * while its clock follows the wall clock. */
void cd_live_config_rebuild(const cd_config_t *cfg, cd_config_t *out);

/*
 * Rebuild at the start (before cd_live_start; needs a watermark source):
 * the evaluation grid starts at start_ms - history_ms + look-back
 * (cd_pipeline_begin), where every window first reads whole history, and
 * until the watermark reaches the present the clock judges each second
 * only once every partition is read past it -- the watermark itself, no
 * leeway -- in event time, as fast as the partitions are read, with every
 * record marked catchup (cd_pipeline_set_catchup). A partition behind for
 * longer than max_wait_ms is judged without, as in the ordinary hold.
 * cfg: the agent's own config (not the live copy).
 */
void cd_live_set_catchup(cd_live_t *l, const cd_config_t *cfg, int64_t start_ms,
                         int64_t max_wait_ms);

/* What the last step saw (evaluating thread, e.g. from the tick callback;
 * all zero without a watermark source). */
typedef struct cd_live_wm {
    int64_t judged_ms; /* judgement is complete up to here (0 before any) */
    bool known;        /* a watermark source is set and every partition's is known */
    int64_t lag_ms;    /* wall time minus the watermark (>= 0) when known */
    bool held;         /* judgement is held back: judged_ms < wall time */
    char reason[320];  /* why, when held */
    bool catchup;      /* rebuilding after the start (cd_live_set_catchup), not yet current */
    int64_t catchup_ms; /* how long the rebuild took (0 while catching up or without one) */
} cd_live_wm_t;
void cd_live_watermark_state(const cd_live_t *l, cd_live_wm_t *out);

/* cd_live_stop, then one more evaluation up to the wall clock ignoring the
 * watermark: for a caller that knows its input is complete (canaryd run
 * --exit-after-events: the N events are the input, whether or not every
 * partition's end was confirmed). A stop on a signal keeps the watermark:
 * seconds a lagging partition has not been read past stay unjudged rather
 * than judged without its events. Caller's thread. */
void cd_live_finish(cd_live_t *l);

/* Evaluation steps run (advance calls that moved the clock). Any thread. */
uint64_t cd_live_steps(const cd_live_t *l);

/* Idle waits ("Idle steps" in live.c) so far, and how many of them an
 * event's cd_pipeline_poke ended. Any thread. */
void cd_live_idle_stats(const cd_live_t *l, uint64_t *waits, uint64_t *woken);

void cd_live_destroy(cd_live_t *l);

#endif
