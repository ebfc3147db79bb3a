/*
 * test_evidence_seq.c - the sequential test of threshold and relative rules
 * (rules/evidence_seq.c) over a real window filled second by second: the
 * exact CUSUM, estimated onset, segment counts, breach / clear / in band,
 * and the reason sentence. Increments were worked by hand (see each test).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../../rules/evidence.h"
#include "canaryd/window.h"

enum { REQ, ERR, PAY_OK, PAY_FAIL, NTYPES };
static const char *const type_names[NTYPES] = {"REQUEST_COMPLETED", "ERROR_OCCURRED",
                                               "PAYMENT_COMPLETED", "PAYMENT_FAILED"};
static const cd_evidence_names_t names = {type_names, NTYPES, NULL, 0};

#define NOW 1800000000000LL /* 2027-01-15T08:00:00Z */
#define SEC 1000LL
#define CAN CD_COHORT_CANARY
#define STA CD_COHORT_STABLE

static cd_window_t *w;
static cd_hist_t scratch[2];
static cd_evidence_t ev;

static void setup(void)
{
    char err[256];
    cd_window_conf_t wc = {.nmetrics = NTYPES,
                           .resolution_ms = 1000,
                           .span_ms = 10 * 60 * SEC,
                           .ahead_ms = 5000,
                           .nstripes = 1};
    w = cd_window_new(&wc, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cd_window_set_clock(w, NOW);
}

static void teardown(void)
{
    cd_window_destroy(w);
}

TestSuite(evidence_seq, .init = setup, .fini = teardown);

/* Seconds [NOW - from, NOW - to) get `ok` completed and `fail` failed
 * payments each. */
static void pay(int from, int to, uint64_t ok, uint64_t fail)
{
    for (int s = from; s > to; s--) {
        int64_t ts = NOW - s * SEC + 500;
        cr_assert_eq(cd_window_add(w, 0, PAY_OK, CAN, ts, ok), CD_WIN_OK);
        cr_assert_eq(cd_window_add(w, 0, PAY_FAIL, CAN, ts, fail), CD_WIN_OK);
    }
}

/* payment success < 95 %, window 60 s, for 30 s: look-back 90 s; bad share
 * B = 5 %, q0 = 0.7 B = 3.5 %, q1 = 2 B = 10 %. */
static cd_rule_conf_t payment(void)
{
    cd_rule_conf_t r = {.name = "payment-success",
                        .kind = CD_RULE_THRESHOLD,
                        .op = CD_OP_LT,
                        .scope = CD_SCOPE_CANARY,
                        .threshold = 0.95,
                        .window_ms = 60 * SEC,
                        .for_ms = 30 * SEC,
                        .min_samples_canary = 200,
                        .sequential = true,
                        .seq_h0 = 0.7,
                        .seq_h1 = 2.0,
                        .seq_llr = 9.0,
                        .seq_onset_llr = 1.0,
                        .signal = {.num = {PAY_OK},
                                   .nnum = 1,
                                   .den = {PAY_OK, PAY_FAIL},
                                   .nden = 2}};
    return r;
}

/* Per-second increments: 2 failed of 100: 2 ln(10/3.5) + 98 ln(.9/.965) =
 * -4.734223; 12 of 100: 12 ln(10/3.5) + 88 ln(.9/.965) = 6.461332. */
#define INC_2 (2 * log(0.10 / 0.035) + 98 * log(0.90 / 0.965))
#define INC_12 (12 * log(0.10 / 0.035) + 88 * log(0.90 / 0.965))

Test(evidence_seq, drop_breaches_with_onset_at_the_change)
{
    cd_rule_conf_t r = payment();
    pay(90, 30, 98, 2);  /* 60 s at 98 % */
    pay(30, 0, 88, 12); /* the last 30 s at 88 % */
    cd_evidence_eval(&r, &names, w, NOW, scratch, &ev);
    cr_assert(!ev.insufficient);
    cr_assert(ev.seq);
    /* Every 88 % second adds INC_12, every earlier one subtracts: the best
     * start is the first 88 % second, S = 30 x INC_12 = 193.84; one second
     * later is already 6.46 below S, over the margin of 1. */
    cr_assert_float_eq(ev.seq_stat, 30 * INC_12, 1e-9);
    cr_assert_float_eq(ev.seq_stat, 193.839952, 1e-6);
    cr_assert_eq(ev.onset_ms, NOW - 30 * SEC);
    cr_assert_eq(ev.seg_bad, 360);
    cr_assert_eq(ev.seg_trials, 3000);
    cr_assert_eq(ev.seq_end, 0.0);
    cr_assert(ev.breach);
    cr_assert(!ev.clear);
    /* The window (60 s: 30 at 98 %, 30 at 88 %) is 93.00 % */
    cr_assert_eq(ev.canary.numerator, 5580);
    cr_assert_eq(ev.canary.denominator, 6000);
    cr_assert_str_eq(ev.what,
                     "canary payment-success 93.00% (PAYMENT_COMPLETED/"
                     "(PAYMENT_COMPLETED+PAYMENT_FAILED) 5580/6000) < 95.00%; CUSUM 193.84 >= 9: "
                     "1 - PAYMENT_COMPLETED/(PAYMENT_COMPLETED+PAYMENT_FAILED) 12.00% (360/3000) "
                     "since 07:59:30Z vs in-control 3.50%, tested 10.00%");
    cr_assert_str_eq(ev.ctx, "(window 1m; samples canary 6000 >= 200)");
}

Test(evidence_seq, ended_exceedance_is_clear)
{
    cd_rule_conf_t r = payment();
    pay(90, 40, 98, 2);
    pay(40, 20, 88, 12); /* 20 s at 88 % ... */
    pay(20, 0, 98, 2);   /* ... then back to 98 % for the last 20 s */
    cd_evidence_eval(&r, &names, w, NOW, scratch, &ev);
    /* S = 20 INC_12 + 20 INC_2 = 34.54 from the first 88 % second; the last
     * 20 s alone are D = -20 INC_2 = 94.68 of evidence that it ended. */
    cr_assert_float_eq(ev.seq_stat, 20 * INC_12 + 20 * INC_2, 1e-9);
    cr_assert_float_eq(ev.seq_end, -20 * INC_2, 1e-9);
    cr_assert_float_eq(ev.seq_end, 94.684458, 1e-6);
    cr_assert_eq(ev.onset_ms, NOW - 40 * SEC);
    cr_assert(!ev.breach);
    cr_assert(ev.clear);
    cr_assert(strstr(ev.what, "; CUSUM 34.54 >= 9: ") != NULL, "%s", ev.what);
    cr_assert(strstr(ev.what, "; ended: reverse CUSUM 94.68 >= 9") != NULL, "%s", ev.what);
}

Test(evidence_seq, weak_evidence_is_in_band)
{
    cd_rule_conf_t r = payment();
    pay(90, 1, 98, 2);
    pay(1, 0, 88, 12); /* one bad second: S = 6.46 < 9 */
    cd_evidence_eval(&r, &names, w, NOW, scratch, &ev);
    cr_assert_float_eq(ev.seq_stat, INC_12, 1e-9);
    cr_assert_eq(ev.onset_ms, NOW - SEC);
    cr_assert(!ev.breach);
    cr_assert(!ev.clear);
    cr_assert(strstr(ev.what, "; CUSUM 6.46 < 9: ") != NULL, "%s", ev.what);
}

Test(evidence_seq, healthy_is_clear)
{
    cd_rule_conf_t r = payment();
    pay(90, 0, 98, 2);
    cd_evidence_eval(&r, &names, w, NOW, scratch, &ev);
    cr_assert_eq(ev.seq_stat, 0.0);
    cr_assert_eq(ev.onset_ms, 0);
    cr_assert(!ev.breach);
    cr_assert(ev.clear);
    cr_assert(strstr(ev.what, "; CUSUM 0.00 < 9 vs in-control 3.50%, tested 10.00%") != NULL,
              "%s", ev.what);
}

Test(evidence_seq, look_back_is_window_plus_for)
{
    cd_rule_conf_t r = payment();
    pay(200, 90, 88, 12); /* older than window + for (90 s): not read */
    pay(90, 0, 98, 2);
    cd_evidence_eval(&r, &names, w, NOW, scratch, &ev);
    cr_assert_eq(ev.seq_stat, 0.0);
}

Test(evidence_seq, new_release_limits_the_look_back)
{
    cd_rule_conf_t r = payment();
    pay(90, 10, 88, 12); /* the previous canary release's bad seconds */
    pay(10, 0, 98, 2);
    cd_evidence_eval(&r, &names, w, NOW, scratch, &ev);
    cr_assert(ev.breach == false && ev.clear, "ended: %s", ev.what);
    /* A release declared 10 s ago: only its own seconds count. */
    cd_evidence_eval_since(&r, &names, w, NOW, NOW - 10 * SEC, scratch, &ev);
    cr_assert_eq(ev.seq_stat, 0.0);
}

Test(evidence_seq, insufficient_window_is_not_judged)
{
    cd_rule_conf_t r = payment();
    r.min_samples_canary = 10000; /* the window holds 6000 */
    pay(90, 0, 88, 12);
    cd_evidence_eval(&r, &names, w, NOW, scratch, &ev);
    cr_assert(ev.insufficient);
    cr_assert(!ev.breach && !ev.clear);
    cr_assert(!ev.seq);
}

/* Relative: canary errors > 2 x stable's. Stable 1000 errors of 100000 in
 * the 60 s window: 1 %, threshold t = 2 %, q0 = 0.7 t = 1.4 %, q1 = 1.5 t =
 * 3 %. Canary 1000 requests/s, 10 errors (1 %) then 30 (3 %) for 10 s:
 * 30 ln(3/1.4) + 970 ln(.97/.986) = 6.994727 per second. */
Test(evidence_seq, relative_against_stable)
{
    cd_rule_conf_t r = {.name = "error-rate",
                        .kind = CD_RULE_RELATIVE,
                        .op = CD_OP_GT,
                        .factor = 2.0,
                        .window_ms = 60 * SEC,
                        .for_ms = 60 * SEC,
                        .min_samples_canary = 500,
                        .min_samples_stable = 2000,
                        .sequential = true,
                        .seq_h0 = 0.7,
                        .seq_h1 = 1.5,
                        .seq_llr = 9.0,
                        .seq_onset_llr = 2.0,
                        .signal = {.num = {ERR}, .nnum = 1, .den = {REQ}, .nden = 1}};
    cr_assert_eq(cd_window_add(w, 0, ERR, STA, NOW - 30 * SEC, 1000), CD_WIN_OK);
    cr_assert_eq(cd_window_add(w, 0, REQ, STA, NOW - 30 * SEC, 100000), CD_WIN_OK);
    for (int s = 120; s > 0; s--) {
        int64_t ts = NOW - s * SEC + 500;
        cr_assert_eq(cd_window_add(w, 0, REQ, CAN, ts, 1000), CD_WIN_OK);
        cr_assert_eq(cd_window_add(w, 0, ERR, CAN, ts, s > 10 ? 10 : 30), CD_WIN_OK);
    }
    cd_evidence_eval(&r, &names, w, NOW, scratch, &ev);
    double inc3 = 30 * log(0.03 / 0.014) + 970 * log(0.97 / 0.986);
    cr_assert_float_eq(inc3, 6.994727, 1e-6);
    cr_assert_float_eq(ev.threshold, 0.02, 1e-12);
    cr_assert_float_eq(ev.seq_stat, 10 * inc3, 1e-9);
    cr_assert_eq(ev.onset_ms, NOW - 10 * SEC);
    cr_assert_eq(ev.seg_bad, 300);
    cr_assert_eq(ev.seg_trials, 10000);
    cr_assert(ev.breach);
    cr_assert(strstr(ev.what, "; CUSUM 69.95 >= 9: ERROR_OCCURRED/REQUEST_COMPLETED 3.00% "
                              "(300/10000) since 07:59:50Z vs in-control 1.40%, tested 3.00%") !=
                  NULL,
              "%s", ev.what);
}

/* onset_h0: the onset is estimated against the share before the change
 * (here 0.4 B = 2 %), not the detection's in-control 3.5 %. 60 s at 2 %,
 * 10 s at 6 %, 20 s at 12 %. Detection (3.5 % vs 10 %): a 6 % second adds
 * 6 ln(10/3.5) + 94 ln(.9/.965) = -0.258 (in control), so the change is at
 * the first 12 % second. Against 2 % (2 % vs 10 %) it adds 6 ln 5 + 94
 * ln(.9/.98) = +1.651: the 6 % seconds are already the exceedance, and the
 * onset is 10 s earlier. The detection's statistic is the same. */
Test(evidence_seq, onset_h0_locates_the_change_against_the_share_before_it)
{
    cd_rule_conf_t r = payment();
    pay(90, 30, 98, 2);
    pay(30, 20, 94, 6);
    pay(20, 0, 88, 12);
    cd_evidence_eval(&r, &names, w, NOW, scratch, &ev);
    double s = 20 * INC_12;
    cr_assert_float_eq(ev.seq_stat, s, 1e-9);
    cr_assert_eq(ev.onset_ms, NOW - 20 * SEC);
    cr_assert_eq(ev.seg_bad, 240);
    cr_assert_eq(ev.seg_trials, 2000);

    memset(&ev, 0, sizeof ev);
    r.seq_onset_h0 = 0.4;
    cd_evidence_eval(&r, &names, w, NOW, scratch, &ev);
    cr_assert_float_eq(ev.seq_stat, s, 1e-9); /* detection unchanged */
    cr_assert_float_eq(6 * log(5.0) + 94 * log(0.90 / 0.98), 1.651, 1e-3);
    cr_assert_eq(ev.onset_ms, NOW - 30 * SEC);
    cr_assert_eq(ev.seg_bad, 300);
    cr_assert_eq(ev.seg_trials, 3000);
    cr_assert(ev.breach);
    cr_assert(strstr(ev.what, "10.00% (300/3000) since 07:59:30Z") != NULL, "%s", ev.what);
}
