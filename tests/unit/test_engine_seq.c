/*
 * test_engine_seq.c - the rule state machine of sequential rules: `for`
 * counted from the estimated onset (not from the crossing), an exceedance
 * that ends before `for` returning to inactive, a rule firing at its
 * crossing when the onset is already `for` ago, the deadline the live clock
 * waits for, and the reasons giving both times. Harness and time axis:
 * engine_sim.h (second k is judged at AT(k) = T0 + (k + 1) s; T0 is
 * 08:00:00Z, so second k's bucket starts at 08:00:kk).
 */
#include "engine_sim.h"

/* canary ERR/REQ > 5 % over 10 s, sequential: q0 = 0.5 x 5 % = 2.5 %,
 * q1 = 2 x 5 % = 10 %, llr 9, onset margin 1. At 100 requests a second, a
 * second with 10 errors adds 10 ln 4 + 90 ln(.9/.975) = 6.659 and one with
 * 1 error 1 ln 4 + 99 ln(.9/.975) = -6.538: two bad seconds cross 9. */
static cd_rule_conf_t seq_errors(int64_t for_ms)
{
    cd_rule_conf_t r = errors("errors", for_ms, 0);
    r.window_ms = 10 * S;
    r.sequential = true;
    r.seq_h0 = 0.5;
    r.seq_h1 = 2.0;
    r.seq_llr = 9.0;
    r.seq_onset_llr = 1.0;
    return r;
}

Test(engine_seq, for_counts_from_the_estimated_onset, .fini = stop)
{
    cd_rule_conf_t r = seq_errors(20 * S);
    start(&r, 1, 0, 0);
    rate(CAN, REQ, 100);
    rate(CAN, ERR, 1);
    run(30); /* k 0..29: 1 % */
    rate(CAN, ERR, 10);
    run(2); /* k 30, 31: 10 % */
    cr_assert_eq(cd_engine_next_deadline(sim.e), AT(49), "deadline: onset + for");
    run(18); /* k 32..49 */
    verdict_at(0, CD_VERDICT_HEALTHY, NULL, 0);
    /* k30: S = 6.66, in band; k31: S = 13.32 >= 9, crossed. The onset is the
     * first 10 % second (k30, 08:00:30Z), while the window's 2.80 % is still
     * under the threshold. */
    const cd_verdict_t *p = state_at(1, "errors", CD_STATE_INACTIVE, CD_STATE_PENDING, 31);
    cr_assert_str_eq(p->reason,
                     "canary errors 2.80% (ERROR_OCCURRED/REQUEST_COMPLETED 28/1000) <= 5.00%; "
                     "CUSUM 13.32 >= 9: ERROR_OCCURRED/REQUEST_COMPLETED 10.00% (20/200) since "
                     "08:00:30Z vs in-control 2.50%, tested 10.00% (window 10s; samples canary "
                     "1000 >= 50); pending: fires if it holds until 20s after the estimated onset");
    /* 20 s after 08:00:30 is AT(49) = 08:00:50, two seconds before the
     * crossing + 20 s a window-crossing rule would wait for (AT(51)). */
    const cd_verdict_t *f = state_at(2, "errors", CD_STATE_PENDING, CD_STATE_FIRING, 49);
    cr_assert(strstr(f->reason, "; CUSUM 133.18 >= 9: ERROR_OCCURRED/REQUEST_COMPLETED 10.00% "
                                "(200/2000) since 08:00:30Z vs in-control 2.50%, tested 10.00% "
                                "for 20s since the estimated onset 08:00:30Z (threshold crossed "
                                "08:00:32Z) (window 10s; samples canary 1000 >= 50)") != NULL,
              "%s", f->reason);
    cr_assert(strncmp(f->reason, "canary errors 10.00% (ERROR_OCCURRED/REQUEST_COMPLETED 100/1000) > "
                                 "5.00%",
                      strlen("canary errors 10.00% (ERROR_OCCURRED/REQUEST_COMPLETED 100/1000) > "
                             "5.00%")) == 0,
              "%s", f->reason);
    const cd_verdict_t *v = verdict_at(3, CD_VERDICT_ROLLBACK, "errors", 49);
    cr_assert_str_eq(v->reason, f->reason);
    no_more(4);
}

Test(engine_seq, exceedance_that_ends_before_for_does_not_fire, .fini = stop)
{
    cd_rule_conf_t r = seq_errors(20 * S);
    start(&r, 1, 0, 0);
    rate(CAN, REQ, 100);
    rate(CAN, ERR, 1);
    run(30);
    rate(CAN, ERR, 10);
    run(5); /* k 30..34: 10 %, S = 33.29 */
    rate(CAN, ERR, 1);
    run(30); /* k 35..: back at 1 %; D = 6.54 at k35, 13.08 at k36 >= 9: ended */
    verdict_at(0, CD_VERDICT_HEALTHY, NULL, 0);
    state_at(1, "errors", CD_STATE_INACTIVE, CD_STATE_PENDING, 31);
    const cd_verdict_t *c = state_at(2, "errors", CD_STATE_PENDING, CD_STATE_INACTIVE, 36);
    cr_assert(strstr(c->reason, "cleared before firing: ") == c->reason, "%s", c->reason);
    cr_assert(strstr(c->reason, "; ended: reverse CUSUM 13.08 >= 9") != NULL, "%s", c->reason);
    no_more(3);
    cr_assert_eq(cd_engine_verdict(sim.e), CD_VERDICT_HEALTHY);
}

Test(engine_seq, fires_at_the_crossing_when_the_onset_is_for_ago, .fini = stop)
{
    cd_rule_conf_t r = seq_errors(2 * S);
    start(&r, 1, 0, 0);
    rate(CAN, REQ, 100);
    rate(CAN, ERR, 1);
    run(30);
    rate(CAN, ERR, 10);
    run(5);
    /* Crossed at k31 (AT(31) = 08:00:32), onset 08:00:30: held 2 s already. */
    verdict_at(0, CD_VERDICT_HEALTHY, NULL, 0);
    const cd_verdict_t *f = state_at(1, "errors", CD_STATE_INACTIVE, CD_STATE_FIRING, 31);
    cr_assert(strstr(f->reason, " for 2s since the estimated onset 08:00:30Z (threshold crossed "
                                "08:00:32Z) (window 10s;") != NULL,
              "%s", f->reason);
    verdict_at(2, CD_VERDICT_ROLLBACK, "errors", 31);
    no_more(3);
}
