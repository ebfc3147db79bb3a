/*
 * engine_internal.h - the engine's data, shared by engine*.c (internal to
 * rules/). engine.c: lifecycle, rule state machines, rule verdicts;
 * engine_release.c: the release verdict; engine_check.c: conf validation.
 */
#ifndef CANARYD_RULES_ENGINE_INTERNAL_H
#define CANARYD_RULES_ENGINE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "canaryd/engine.h"
#include "evidence.h"

#define DEFAULT_PROMOTE_AFTER_MS (15 * 60 * 1000)
#define DEFAULT_ALERT_REPEAT_MS (5 * 60 * 1000)

typedef struct rule_rt {
    cd_rule_conf_t conf;
    cd_rule_state_t state;
    int64_t pending_since;
    int64_t clear_since; /* FIRING: start of the current clear run; -1 = none */
    /* What firing means now: the rule's action, or ALERT while a spike is
     * fleet-wide. Only updated on breaching evaluations, so a clear or
     * insufficient evaluation never turns an ALERT into a ROLLBACK. */
    cd_action_t outcome;
    bool alerted;
    int64_t last_alert_ms;
    bool dry_rollback_sent; /* dry run: would-be ROLLBACK sent this firing episode */
    cd_evidence_t ev;
    cd_verdict_t last; /* last evaluation, for cd_engine_rule_state() */
} rule_rt_t;

struct cd_engine {
    rule_rt_t *rules;
    int nrules;
    int64_t promote_after_ms, alert_repeat_ms;
    uint64_t min_canary_events; /* 0: no canary-evidence check */
    uint64_t canary_events;     /* this evaluation's count, capped at the minimum */
    bool canary_short;          /* this evaluation: fewer than min_canary_events */
    bool canary_seen;           /* some evaluation of this release counted a canary event */
    char release[128];
    char type_store[CD_MAX_TYPES][CD_NAME_MAX];
    const char *type_ptrs[CD_MAX_TYPES];
    char hist_store[CD_MAX_NUMERIC][CD_NAME_MAX];
    const char *hist_ptrs[CD_MAX_NUMERIC];
    cd_evidence_names_t names;
    cd_hist_t scratch[2];

    cd_verdict_t *queue; /* this evaluation's rule verdicts (at most one per rule) */
    int nqueued;
    cd_verdict_t out; /* state / release-wide record being emitted */

    bool evaluated;
    int64_t last_now;
    cd_verdict_kind_t verdict;
    bool rollback, promote; /* sticky */
    bool restored;          /* cd_engine_restore_decision: announced before a restart */
    bool healthy_run;
    int64_t healthy_since;
    int64_t canary_start_ms; /* cd_engine_new_release(); 0 = none */
};

/* Validates conf (counts, every rule's fields, type / histogram ids against
 * the catalog, unique names). false + a message naming the rule and field. */
bool cd_engine_check_conf(const cd_engine_conf_t *conf, char *err, size_t errsize);

/* Recomputes the release verdict after every rule was stepped at now, and
 * emits the release-wide record if due (engine_release.c). */
void cd_engine_release_step(cd_engine_t *e, const cd_window_t *w, int64_t now, cd_record_cb cb,
                            void *opaque);

#endif
