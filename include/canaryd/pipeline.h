/*
 * pipeline.h - one canary analysis: source bytes -> decoder -> windows ->
 * rule engine -> records. Sources (replay's line reader, later Kafka) feed
 * payloads in; the owner of the clock calls cd_pipeline_advance().
 *
 * Counting: every payload handed in ends up in exactly one counter: bad
 * input (by reason), late (older than the window ring), future (too far
 * ahead of the clock), or accepted (by event type and cohort; types outside
 * the catalog under "other"). Numeric fields that are present but not finite
 * numbers are counted separately (the event itself is still accepted).
 * Accepted events whose time lies before the last evaluation are also
 * counted as "after_eval": they count only in later evaluations. With
 * events.service set, a well-formed event of another service is counted as
 * other_service (no_service when it names none) and goes no further.
 *
 * The service: events.service, or else the service field of the first
 * canary event naming one (cd_pipeline_service). Every record handed to cb
 * carries it in cd_verdict_t.service ("" until known).
 *
 * Threading: cd_pipeline_decode / _add / _ingest / _count_* may be called
 * from any number of threads at once (the decoder is immutable, the windows
 * lock-free, the counters atomic). cd_pipeline_advance and the verdict
 * queries belong to one thread at a time (the evaluating thread); records
 * are delivered on that thread, synchronously.
 */
#ifndef CANARYD_PIPELINE_H
#define CANARYD_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "canaryd/config.h"
#include "canaryd/engine.h"
#include "canaryd/event.h"
#include "canaryd/rule_sample.h"
#include "canaryd/window.h"

typedef struct cd_pipeline cd_pipeline_t;

/* Row of cd_pipeline_stats_t.by_type for types outside the catalog. */
#define CD_PIPELINE_OTHER CD_MAX_TYPES

typedef struct cd_pipeline_stats {
    uint64_t accepted;                               /* sum of by_type */
    uint64_t by_type[CD_MAX_TYPES + 1][CD_NCOHORTS]; /* [type id or CD_PIPELINE_OTHER][cohort] */
    uint64_t bad[CD_BAD__COUNT];                     /* by reason; bad[CD_BAD_NONE] stays 0 */
    uint64_t bad_total;
    uint64_t bad_numeric;      /* numeric fields present but not a finite number */
    uint64_t late;             /* dropped: older than the window ring */
    uint64_t future;           /* dropped: too far ahead of the clock */
    uint64_t after_eval;       /* accepted, but after an evaluation that covered their time */
    uint64_t other_service;    /* events.service set: events of another service, not judged */
    uint64_t no_service;       /* events.service set: events without a service field, not judged */
    int64_t first_ms, last_ms; /* earliest / latest accepted event time; 0 when none */
    uint64_t evaluations;
    uint64_t records;
    int64_t clock_ms;     /* the clock of the last advance (0 before any) */
    int64_t last_eval_ms; /* the last evaluated boundary (0 before any) */
} cd_pipeline_stats_t;

/*
 * Builds decoder, window and engine from cfg. cfg is borrowed and must
 * outlive the pipeline. ahead_ms: how far after the clock an event may land
 * (replay: allowed_lateness, live: max_future_skew). nstripes: writer
 * stripes of the window (0 = one per CPU; replay uses 1). cb(v, opaque)
 * receives every record. Returns NULL with a message in errbuf.
 */
cd_pipeline_t *cd_pipeline_new(const cd_config_t *cfg, int64_t ahead_ms, int nstripes,
                               cd_record_cb cb, void *opaque, char *errbuf, size_t errsize);
/* Frees p. Every thread that writes into p (a Kafka source's workers, a
 * tail or replay reader) must be stopped and joined first
 * (cd_kafka_source_stop/_destroy): the pipeline keeps no count of its
 * writers, so destroying it under a running source frees the windows they
 * are writing into. Caller's thread. */
void cd_pipeline_destroy(cd_pipeline_t *p);

/*
 * Decodes a payload. On bad input counts it under its reason and logs a
 * rate-limited sample ("bad input (reason) at line N: <escaped first 120
 * bytes>"; lineno 0 = no line number). With events.service set, another
 * service's event is answered CD_DECODE_OTHER_SERVICE and counted as
 * other_service or no_service (not bad input): like a bad reason, anything
 * but CD_BAD_NONE means "do not add". Strings in *ev borrow buf.
 */
cd_bad_reason_t cd_pipeline_decode(cd_pipeline_t *p, const char *buf, size_t len, uint64_t lineno,
                                   cd_event_t *ev);

/*
 * Adds a decoded event to the windows (counter of its type, its numeric
 * fields) and counts it: accepted by (type, cohort), or late / future by the
 * window's answer. Learns the release from the first canary event's version
 * when the config names none (applied at the next advance). Use stripe
 * cd_window_stripe() of the pipeline's window, or 0 from a single thread.
 */
cd_window_result_t cd_pipeline_add(cd_pipeline_t *p, const cd_event_t *ev, int stripe);

/* cd_pipeline_decode + cd_pipeline_add. Returns the decode result. */
cd_bad_reason_t cd_pipeline_ingest(cd_pipeline_t *p, const char *buf, size_t len, int stripe);

/* Counts input rejected by the source itself (e.g. CD_BAD_LINE_TOO_LONG),
 * logging a sample of its first bytes as cd_pipeline_decode does. */
void cd_pipeline_count_bad(cd_pipeline_t *p, cd_bad_reason_t r, const char *sample, size_t len,
                           uint64_t lineno);

/* Counts an event the source dropped as too far in the future (replay's
 * event-time clock), logging it rate-limited with ref_ms, the time it was
 * compared with. */
void cd_pipeline_count_future(cd_pipeline_t *p, const cd_event_t *ev, int64_t ref_ms,
                              uint64_t lineno);

/* Counts an event the source dropped as too old (replay: a first event
 * further before the stream's start than the window ring reaches), logging
 * it rate-limited with ref_ms, the time it was compared with (> its time). */
void cd_pipeline_count_late(cd_pipeline_t *p, const cd_event_t *ev, int64_t ref_ms,
                            uint64_t lineno);

/*
 * Moves the clock to now_ms and evaluates the rules at every multiple of
 * eval_interval in (last evaluated boundary, now_ms], in order, moving the
 * window clock to each boundary before evaluating it (so a jump of the
 * clock never recycles buckets an earlier boundary still reads). The first
 * call evaluates nothing: it starts the grid at the boundary at or before
 * now_ms. A now_ms earlier than the clock is ignored. Evaluating thread only.
 */
void cd_pipeline_advance(cd_pipeline_t *p, int64_t now_ms);

/*
 * As cd_pipeline_advance(p, now_ms), but evaluates only the boundaries up to
 * until_ms (<= now_ms; larger is taken as now_ms): the window clock, which
 * admits events (late / future), moves to now_ms while judgement is held
 * back at until_ms -- the live clock's watermark (live.c), so that a second
 * is judged only once every partition has been read past it. until_ms may
 * stay behind by at most windows.slack (the ring keeps no more history
 * beyond the longest look-back); boundaries before the last evaluated one
 * are never evaluated. Evaluating thread only.
 */
void cd_pipeline_advance_until(cd_pipeline_t *p, int64_t now_ms, int64_t until_ms);

/* The last boundary passed (evaluated or skipped as unchanged): judgement
 * is complete up to here. 0 before the first advance. Evaluating thread. */
int64_t cd_pipeline_judged(const cd_pipeline_t *p);

/*
 * Lazy evaluation, off by default (the live clock turns it on: it advances
 * every 10 ms, and evaluating 100 times a second over idle windows is most
 * of an idle agent's CPU). A boundary is then evaluated only when the
 * evaluation could differ from the last one: events were accepted since
 * then (the first boundary after an event is evaluated, as before), the
 * windows' bucket set moved (the first boundary after a multiple of the
 * resolution: a bucket enters, the oldest leaves), a release change is to
 * be applied, or cd_engine_next_deadline() is due. Any other boundary would
 * read the same window contents and change no state, so it is passed
 * without evaluating; verdict and state times are the same as without lazy
 * mode. Evaluating thread only.
 */
void cd_pipeline_set_lazy(cd_pipeline_t *p, bool lazy);

/* Boundaries passed without evaluating in lazy mode (evaluating thread). */
uint64_t cd_pipeline_skipped(const cd_pipeline_t *p);

/*
 * Optional, before the first cd_pipeline_advance(): the time of the first
 * event, so that the evaluation grid starts at the boundary at or before it
 * and the first evaluation is the boundary after it (instead of a boundary
 * before the stream began, when the clock trails the events by the allowed
 * lateness). Evaluating thread only.
 */
void cd_pipeline_begin(cd_pipeline_t *p, int64_t first_event_ms);

/* Snapshot of the counters (each read relaxed: the snapshot is not atomic
 * as a whole while other threads ingest). */
void cd_pipeline_stats(const cd_pipeline_t *p, cd_pipeline_stats_t *out);

/* Catalog name of type id i (0 <= i < cd_pipeline_ntypes). */
int cd_pipeline_ntypes(const cd_pipeline_t *p);
const char *cd_pipeline_type_name(const cd_pipeline_t *p, int i);

/* The release's verdict (engine); the non-dry-run rules firing now (count
 * returned, up to max names stored, borrowed from cfg); the release as known
 * now ("" if unknown; borrowed). Evaluating thread. */
cd_verdict_kind_t cd_pipeline_verdict(const cd_pipeline_t *p);
int cd_pipeline_firing_rules(const cd_pipeline_t *p, const char **names, int max);
const char *cd_pipeline_release(const cd_pipeline_t *p);

/* The service judged: events.service, or the one learnt from the first
 * canary event naming one; "" while unknown. Borrowed; once non-empty it
 * never changes. Any thread. */
const char *cd_pipeline_service(const cd_pipeline_t *p);

/* Whether events.service restricts the pipeline to one service. */
bool cd_pipeline_service_configured(const cd_pipeline_t *p);

/* One summary line (replay, run) about the service: configured with the
 * other_service / no_service counts of *s, learnt, or unknown. */
void cd_pipeline_summary_service(const cd_pipeline_t *p, const cd_pipeline_stats_t *s, FILE *f);

/* Logs (info) which events will be judged: one service, or every event
 * whatever its service. replay and run call it at start. */
void cd_pipeline_log_service(const cd_pipeline_t *p);

/* Declares a new canary release now (the clock of the last advance): the
 * engine's cd_engine_new_release; cd_pipeline_release() then answers it and
 * a version learnt from events no longer replaces it. Evaluating thread. */
void cd_pipeline_new_release(cd_pipeline_t *p, const char *release);

/* Restores a decision made before a restart (ledger.h): release (copied)
 * becomes the release judged, as a configured one is (not learnt from
 * events), and its verdict v (ROLLBACK or PROMOTE) is sticky and not
 * announced again (cd_engine_restore_decision). Main thread, before the
 * first advance and before any worker adds an event. */
void cd_pipeline_restore_decision(cd_pipeline_t *p, const char *release, cd_verdict_kind_t v);

/* A new judgement of the canary (a new run: Flagger's checksum changed),
 * now: as cd_pipeline_new_release, keeping a release that was configured
 * or declared; one learnt from events is forgotten and learnt again from
 * the first canary event stamped at or after now (cd_pipeline_release()
 * answers "" until then). Evaluating thread. */
void cd_pipeline_new_judgement(cd_pipeline_t *p);

/* Number of rules, and rule i's state with its last evaluation (last may
 * be NULL; the engine's cd_engine_rule_state). Evaluating thread. */
int cd_pipeline_nrules(const cd_pipeline_t *p);
cd_rule_state_t cd_pipeline_rule_state(const cd_pipeline_t *p, int i, cd_verdict_t *last);

/*
 * Waking an idle live clock (agent/core/live.c, "Idle steps").
 * cd_pipeline_set_waker: cb is called, on an ingesting thread, by the first
 * cd_pipeline_poke after cd_pipeline_arm_wake armed it; set before the
 * clock thread starts, cb must stay callable while ingesters run.
 * cd_pipeline_poke (ingesting thread): a source calls it after counting the
 * first event that follows a quiet spell of its own (a poll that returned
 * nothing), not per event; it costs one load when nothing is armed, and
 * returns true when it took the armed flag and called cb.
 * cd_pipeline_arm_wake (evaluating thread, lazy mode): arms the waker and
 * returns true when no boundary before until_ms can change anything unless
 * an event arrives (no event accepted since the last advance nor for
 * quiet_ms before it, no engine deadline before until_ms, no release change
 * pending); otherwise returns false, unarmed. quiet_ms must exceed the time
 * a source can take between counting an event and its next quiet poll, so
 * that every ingester has gone quiet (and will poke) once it is armed.
 * cd_pipeline_disarm_wake: after the sleep, on the evaluating thread.
 */
typedef void (*cd_pipeline_wake_cb)(void *opaque);
void cd_pipeline_set_waker(cd_pipeline_t *p, cd_pipeline_wake_cb cb, void *opaque);
bool cd_pipeline_poke(cd_pipeline_t *p); /* true if it woke the clock */
/* The last evaluated boundary (INT64_MIN before any); any thread. */
int64_t cd_pipeline_last_eval(const cd_pipeline_t *p);
bool cd_pipeline_arm_wake(cd_pipeline_t *p, int64_t until_ms, int64_t quiet_ms);
void cd_pipeline_disarm_wake(cd_pipeline_t *p);

/*
 * Evaluation hook: cb(p, b, opaque) runs on the evaluating thread after
 * every boundary b that was evaluated (after its records), so a chart can
 * sample each rule's evidence with cd_pipeline_rule_sample (agent/report/history.c).
 * Boundaries lazy mode skips changed nothing and are not reported. NULL
 * removes it. Set before the first advance; evaluating thread.
 */
typedef void (*cd_pipeline_eval_cb)(cd_pipeline_t *p, int64_t b, void *opaque);
void cd_pipeline_set_eval_hook(cd_pipeline_t *p, cd_pipeline_eval_cb cb, void *opaque);
/* Rule i's evidence at the last evaluation (cd_engine_rule_sample). */
bool cd_pipeline_rule_sample(const cd_pipeline_t *p, int i, cd_rule_sample_t *out);

/*
 * Catch-up (live.c, "Catch-up"): while set, every record handed to cb has
 * cd_verdict_t.catchup set -- it was judged on history read back from
 * Kafka after a start, and may repeat a decision delivered before it.
 * Set on the evaluating thread; cd_pipeline_catchup from any thread (the
 * Kafka source asks it at an assignment).
 */
void cd_pipeline_set_catchup(cd_pipeline_t *p, bool catchup);
bool cd_pipeline_catchup(const cd_pipeline_t *p);

/* The window (for cd_window_stripe()); borrowed. */
cd_window_t *cd_pipeline_window(cd_pipeline_t *p);

#endif
