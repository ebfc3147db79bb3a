/*
 * evidence_silence.h - the silence rule kind's evidence (internal to rules/;
 * see evidence_silence.c for what it compares and why).
 */
#ifndef CANARYD_RULES_EVIDENCE_SILENCE_H
#define CANARYD_RULES_EVIDENCE_SILENCE_H

#include "evidence.h"

/*
 * Fills ev (zeroed by the caller, threshold and compared preset to NaN) for
 * silence rule r at now_ms. canary_start_ms: a new release declared then (0:
 * none); neither the canary's window nor the reference reach before it.
 * Values in the record are rates per second over the window.
 */
void cd_evidence_silence(const cd_rule_conf_t *r, const cd_evidence_names_t *n,
                         const cd_window_t *w, int64_t now_ms, int64_t canary_start_ms,
                         cd_evidence_t *ev);

/*
 * Fills ev for a silence rule that is no longer judged because the release
 * is decided (`decision` = "PROMOTE" or "ROLLBACK"): clear, with a sentence
 * saying why. After PROMOTE the canary's traffic moves to the new stable
 * fleet, after ROLLBACK the canary is being removed: its silence then is
 * the plan, not a failure.
 */
void cd_evidence_silence_retired(const char *decision, cd_evidence_t *ev);

#endif
