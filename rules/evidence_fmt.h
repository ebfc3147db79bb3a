/*
 * evidence_fmt.h - sentence pieces shared by the evidence kinds (implemented
 * in evidence_fmt.c; internal to evidence*.c). All append to a bounded
 * cd_sb_t and never overflow.
 */
#ifndef CANARYD_RULES_EVIDENCE_FMT_H
#define CANARYD_RULES_EVIDENCE_FMT_H

#include "evidence.h"

/* The op's spelling when it holds, else the comparison that holds instead
 * (">" not holding prints "<="). */
const char *cd_evfmt_op(cd_op_t op, bool holds);
void cd_evfmt_type(cd_sb_t *sb, const cd_evidence_names_t *n, int id);
/* "ERROR_OCCURRED/REQUEST_COMPLETED", "PAYMENT_COMPLETED/(PAYMENT_COMPLETED+PAYMENT_FAILED)" */
void cd_evfmt_signal(cd_sb_t *sb, const cd_evidence_names_t *n, const cd_signal_t *s);
/* ratio: "3.05%"; count: "37" */
void cd_evfmt_value(cd_sb_t *sb, bool ratio, double v);
/* ratio: "3.05% (ERROR_OCCURRED/REQUEST_COMPLETED 37/1213)" or without the
 * names "1.00% (229/22871)"; count: "3 (AUDIT_LOG_FAILED)" or "3". */
void cd_evfmt_obs(cd_sb_t *sb, const cd_evidence_names_t *n, const cd_signal_t *s,
                  const cd_obs_t *o, bool with_names);
/* "insufficient data: canary has 120 samples in 1m, needs 500" ("; stable
 * has ..." after the first). */
void cd_evfmt_need(cd_sb_t *sb, bool *first, const char *cohort, uint64_t have, uint64_t need,
                   int64_t window_ms);
/* "samples canary 1213 >= 500" (", stable ..." after the first) */
void cd_evfmt_samples(cd_sb_t *sb, bool *first, const char *cohort, uint64_t have, uint64_t need);
/* "(window 1m; " */
void cd_evfmt_window(cd_sb_t *sb, int64_t window_ms);
/* Minimum samples actually required: a ratio needs at least 1. */
uint64_t cd_evfmt_min(uint64_t configured, bool ratio);

/* Kinds implemented in evidence_spike.c (ev is zeroed by the caller,
 * threshold and compared preset to NaN). clen: the canary side's window
 * length (cd_evidence_canary_len). */
void cd_evidence_spike(const cd_rule_conf_t *r, const cd_evidence_names_t *n, const cd_window_t *w,
                       int64_t now_ms, int64_t clen, cd_evidence_t *ev);
/* olen: how far back the flatline's onset is looked for (window + `for`,
 * clipped like clen): a drop that started before the window must still
 * date itself, or a `for` longer than the window could never be met. */
void cd_evidence_flatline(const cd_rule_conf_t *r, const cd_evidence_names_t *n,
                          const cd_window_t *w, int64_t now_ms, int64_t clen, int64_t olen,
                          cd_evidence_t *ev);

/* Sequential test of a threshold / relative rule whose window evidence is
 * sufficient (evidence_seq.c): sets ev's seq fields, breach and clear from
 * the CUSUM against threshold t, and appends its sentence to ev->what.
 * canary_start_ms: as cd_evidence_eval_since. */
void cd_evidence_seq(const cd_rule_conf_t *r, const cd_evidence_names_t *n, const cd_window_t *w,
                     int64_t now_ms, int64_t canary_start_ms, double t, cd_evidence_t *ev);
/* The fall of a canary count (silence, flatline; evidence_onset.c): canary
 * `types` per bucket against expected = scale x `base` (in base_cohort)
 * of the same bucket, fallen to at most ratio x expected. */
typedef struct cd_onset_drop {
    const int *types;
    int ntypes;
    const int *base;
    int nbase;
    cd_cohort_t base_cohort;
    double scale, ratio;
    double margin; /* nats: the onset is early with probability <= e^-margin */
} cd_onset_drop_t;

/* The estimated onset (start of a bucket) of the fall within [now - len,
 * now), or 0 when the counts show none. */
int64_t cd_evidence_drop_onset(const cd_window_t *w, int64_t now_ms, int64_t len_ms,
                               const cd_onset_drop_t *d);

/* Onset margin of the silence and flatline kinds: early with probability
 * at most e^-4.6 = 1 % (docs/config.md). */
#define CD_DROP_ONSET_MARGIN 4.6

/* Time of day of an epoch-ms instant: "12:04:03Z", "12:04:03.250Z". */
void cd_evfmt_clock(cd_sb_t *sb, int64_t ms);

#endif
