/*
 * engine.h - the rule engine: evaluates every rule over the windows at a given
 * time, runs each rule's state machine and the release's verdict.
 *
 * Pure: no I/O, no clock of its own (time is passed in), no allocation after
 * cd_engine_new(). Records are handed to a callback synchronously. One thread
 * at a time may call cd_engine_eval(); windows may be written concurrently.
 *
 * Rule states: inactive -> pending (condition true) -> firing (held `for`)
 * -> resolved (clear for resolve_for) -> pending ...; pending -> inactive when
 * clear or when data becomes insufficient.
 * Verdicts: ANALYZING until every non-dry-run rule has enough samples and
 * the canary has sent min_canary_events over promote_after; HEALTHY then; PROMOTE once every rule has been healthy with enough samples
 * for promote_after (emitted once; still superseded by a later ROLLBACK);
 * ROLLBACK when a rollback rule fires (final: emitted once per release);
 * ALERT when an alert rule fires, repeated at most every alert_repeat_ms
 * while it keeps firing.
 */
#ifndef CANARYD_ENGINE_H
#define CANARYD_ENGINE_H

#include "canaryd/rule.h"
#include "canaryd/verdict.h"
#include "canaryd/window.h"

typedef struct cd_engine_conf {
    const cd_rule_conf_t *rules; /* copied */
    int nrules;
    int64_t promote_after_ms; /* default 15 min */
    int64_t alert_repeat_ms;  /* default 5 min */
    /* Canary evidence: HEALTHY and PROMOTE need at least this many canary
     * events (every catalog type) over the last promote_after, whatever the
     * rules are, so a rule set that can pass on no data (counts with no
     * minimum) cannot pass a canary that sends nothing. The windows must
     * reach back promote_after for the count to be whole (a shorter ring
     * counts what it holds). 0: no such check. */
    uint64_t min_canary_events;
    const char *release;      /* canary version, "" if unknown; copied */
    /* Names for reason sentences; copied. */
    const char *type_names[CD_MAX_TYPES];
    int ntypes;
    const char *hist_names[CD_MAX_NUMERIC];
    int nhists;
} cd_engine_conf_t;

typedef struct cd_engine cd_engine_t;

typedef void (*cd_record_cb)(const cd_verdict_t *v, void *opaque);

cd_engine_t *cd_engine_new(const cd_engine_conf_t *conf, char *errbuf, size_t errsize);
void cd_engine_destroy(cd_engine_t *e);

/* Sets the release named in records (e.g. learnt from the first canary event). */
void cd_engine_set_release(cd_engine_t *e, const char *release);

/*
 * Evaluates all rules at now_ms over w (each rule's window ends at now_ms) and
 * emits state and verdict records through cb, in this order: state changes in
 * rule order, then rule verdicts (ROLLBACK / ALERT), then a release-wide
 * verdict change. Times must not decrease between calls.
 */
void cd_engine_eval(cd_engine_t *e, const cd_window_t *w, int64_t now_ms, cd_record_cb cb,
                    void *opaque);

/*
 * Declares a new canary release at now_ms (e.g. POST /api/v1/release): sets
 * the release name (copied), clears the sticky ROLLBACK / PROMOTE, every
 * rule's state, alert and `for` clocks and the promotion clock, and makes
 * the canary side of every window start at now_ms (so the previous
 * release's canary events never judge the new one; no window memory is
 * wiped, the stable side keeps its history). The next evaluation at or
 * after now_ms announces the new release's verdict as a first evaluation
 * does; evaluations before now_ms (boundaries trailing the clock that
 * declared it) judge nothing and emit nothing. Evaluating thread
 * only (between cd_engine_eval calls).
 */
void cd_engine_new_release(cd_engine_t *e, const char *release, int64_t now_ms);

/*
 * Restores a sticky decision made before a restart (recovered from the
 * decision ledger, ledger.h): the release is named (copied) and its verdict
 * is v, ROLLBACK or PROMOTE, sticky as if decided here, and it is not
 * announced again (no record: it was emitted before the restart). Rule
 * states, `for` clocks and windows are untouched: the rebuild from the
 * events replays them. Before the first cd_engine_eval only; a later
 * cd_engine_new_release clears it like any decision.
 */
void cd_engine_restore_decision(cd_engine_t *e, const char *release, cd_verdict_kind_t v);

/*
 * The earliest evaluation time at which the engine could change state, or
 * speak, with the windows unchanged: a pending rule's `for` running out, a
 * firing rule's resolve_for or ALERT repeat, the promotion clock. INT64_MAX
 * when nothing is due; INT64_MIN when every evaluation counts (before the
 * first one, and while a new release's canary windows are still growing:
 * their length then depends on the time itself). Evaluations between the
 * deadlines over unchanged windows change nothing, so a caller may skip
 * them (the live clock's lazy mode, cd_pipeline_set_lazy). Evaluating
 * thread only.
 */
int64_t cd_engine_next_deadline(const cd_engine_t *e);

/* The release's current verdict (ANALYZING, HEALTHY, PROMOTE or ROLLBACK). */
cd_verdict_kind_t cd_engine_verdict(const cd_engine_t *e);

/* Current state of rule i and its last evidence (for the HTTP API). */
cd_rule_state_t cd_engine_rule_state(const cd_engine_t *e, int i, cd_verdict_t *last);

/* Longest look-back any rule needs (window + reference), for sizing the ring. */
int64_t cd_engine_span_ms(const cd_rule_conf_t *rules, int nrules);

/* Longest look-back any rule needs into the histograms (the longest
 * percentile window; 0 without percentile rules), for sizing their ring
 * (cd_window_conf_t.hist_span_ms). */
int64_t cd_engine_hist_span_ms(const cd_rule_conf_t *rules, int nrules);

#endif
