/*
 * test_engine_guard.c - issue 10's guards in the engine over a real window:
 * the silence rule (a canary that stops talking while stable goes on; not
 * when the whole fleet drops, not a canary that never started, not after
 * PROMOTE or ROLLBACK), guard rules (their lack of data never holds
 * ANALYZING) and the canary-evidence check (no HEALTHY / PROMOTE without
 * min_canary_events canary events over promote_after, whatever the rules).
 * Exact record sequences and reasons; see engine_sim.h for the time axis.
 */
#include "engine_sim.h"

/* canary REQ over 5 s against its share of the 10 s before x stable now */
static cd_rule_conf_t silence(void)
{
    cd_rule_conf_t r = {.name = "silence",
                        .kind = CD_RULE_SILENCE,
                        .action = CD_ACTION_ROLLBACK,
                        .window_ms = 5 * S,
                        .reference_ms = 10 * S,
                        .for_ms = 2 * S,
                        .resolve_for_ms = 5 * S,
                        .max_ratio = 0.1,
                        .min_expected = 20,
                        .min_samples_canary = 10,
                        .min_samples_stable = 50,
                        .signal = {.num = {REQ}, .nnum = 1}};
    return r;
}

/* canary AUDIT > 0, a count with no minimum: judged on zero canary events */
static cd_rule_conf_t count_only(void)
{
    cd_rule_conf_t r = {.name = "canary-audit",
                        .kind = CD_RULE_THRESHOLD,
                        .action = CD_ACTION_ROLLBACK,
                        .op = CD_OP_GT,
                        .scope = CD_SCOPE_CANARY,
                        .threshold = 0,
                        .window_ms = 5 * S,
                        .signal = {.num = {AUDIT}, .nnum = 1}};
    return r;
}

Test(guard, silent_canary_rolls_back_with_both_rates, .fini = stop)
{
    cd_rule_conf_t r = silence();
    start(&r, 1, 0, 0);
    rate(STA, REQ, 100);
    rate(CAN, REQ, 10);
    run(20); /* k0-19 talking */
    rate(CAN, REQ, 0);
    run(15); /* k20-34: silent */
    /* k0-4: no reference yet (insufficient); k5 on: share 10/100 */
    verdict_at(0, CD_VERDICT_ANALYZING, NULL, 0);
    verdict_at(1, CD_VERDICT_HEALTHY, NULL, 5);
    /* k24: the 5 s window (k20-24) holds 0 <= 0.1 x expected; the canary
     * fell silent at k20 (estimated onset: every bucket from k20 adds 0.9
     * x 8 = 7.2 nats), 5 s >= for 2 s ago: fires at the crossing (it fired
     * at k26, 2 s after the crossing, before `for` counted from the onset) */
    state_at(2, "silence", CD_STATE_INACTIVE, CD_STATE_FIRING, 24);
    const cd_verdict_t *v = verdict_at(3, CD_VERDICT_ROLLBACK, "silence", 24);
    /* reference k10-19: canary 100, stable 1000: share 0.1, expected 0.1 x
     * 500 = 50 in 5 s = 10/s, limit 1/s */
    cr_assert_str_eq(v->reason,
                     "canary REQUEST_COMPLETED 0.00/s (0 in 5s) <= 0.1 x expected 10.00/s = "
                     "1.00/s; stable 100.00/s (500 in 5s) still flowing; expected = the canary's "
                     "9.09% share of the traffic in the 10s before (canary 100, stable 1000) x "
                     "stable now: the canary went silent while stable did not for 2s since the "
                     "estimated onset 08:00:20Z (threshold crossed 08:00:25Z) (window 5s, "
                     "reference 10s before it; samples canary 100 >= 10 in the reference, stable "
                     "500 >= 50)");
    cr_assert_float_eq(v->canary.value, 0.0, 1e-12);
    cr_assert_float_eq(v->stable.value, 100.0, 1e-12);
    cr_assert_float_eq(v->threshold, 1.0, 1e-12);
    /* after ROLLBACK the rule is no longer judged: clear, resolves */
    state_at(4, "silence", CD_STATE_FIRING, CD_STATE_RESOLVED, 25 + 5);
    cr_assert(strstr(sim.rec[4].reason, "not judged after the release's ROLLBACK") != NULL, "%s",
              sim.rec[4].reason);
    no_more(5);
}

Test(guard, fleet_wide_drop_is_not_silence, .fini = stop)
{
    cd_rule_conf_t r = silence();
    start(&r, 1, 0, 0);
    rate(STA, REQ, 100);
    rate(CAN, REQ, 10);
    run(20);
    rate(STA, REQ, 10); /* the whole fleet at 10 %: expected follows stable */
    rate(CAN, REQ, 1);
    run(20);
    verdict_at(0, CD_VERDICT_ANALYZING, NULL, 0);
    verdict_at(1, CD_VERDICT_HEALTHY, NULL, 5);
    /* k20-22: the window still holds enough of the old traffic; k23: stable
     * 140 in 5 s x share 0.1 = 14 < 20, too few to tell silence from chance
     * (the canary's 1/s is 10 % of its share: never judged silent) */
    verdict_at(2, CD_VERDICT_ANALYZING, NULL, 23);
    cr_assert_str_eq(sim.rec[2].reason,
                     "waiting for enough data: silence: the canary is expected to send only 14.0 "
                     "in 5s (its 9.09% share of the 10s before x stable's 140), needs 20 to tell "
                     "silence from chance");
    no_more(3);
    cd_verdict_t last;
    cr_assert_eq(cd_engine_rule_state(sim.e, 0, &last), CD_STATE_INACTIVE);
}

Test(guard, canary_that_never_started_is_analyzing, .fini = stop)
{
    cd_rule_conf_t r = silence();
    start(&r, 1, 0, 0);
    rate(STA, REQ, 100);
    run(30);
    verdict_at(0, CD_VERDICT_ANALYZING, NULL, 0);
    cr_assert_str_eq(sim.rec[0].reason,
                     "waiting for enough data: silence: no canary event has arrived "
                     "(REQUEST_COMPLETED, last 15s): a canary that never talked is not judged "
                     "silent");
    no_more(1);
}

Test(guard, silence_not_judged_after_promote, .fini = stop)
{
    cd_rule_conf_t r = silence();
    start(&r, 1, 10 * S, 0);
    rate(STA, REQ, 100);
    rate(CAN, REQ, 10);
    run(20); /* HEALTHY at k5, PROMOTE at k15 */
    rate(CAN, REQ, 0); /* traffic moved to the promoted fleet */
    run(20);
    verdict_at(0, CD_VERDICT_ANALYZING, NULL, 0);
    verdict_at(1, CD_VERDICT_HEALTHY, NULL, 5);
    const cd_verdict_t *p = verdict_at(2, CD_VERDICT_PROMOTE, NULL, 15);
    cr_assert(strstr(p->reason, "silence 10.00/s vs at most 1.00/s") != NULL, "%s", p->reason);
    no_more(3);
    cd_verdict_t last;
    cr_assert_eq(cd_engine_rule_state(sim.e, 0, &last), CD_STATE_INACTIVE);
    cr_assert_str_eq(last.reason, "not judged after the release's PROMOTE: a promoted canary's "
                                  "traffic moves to the stable fleet (release decided)");
    cr_assert_eq(cd_engine_verdict(sim.e), CD_VERDICT_PROMOTE);
}

Test(guard, guard_without_data_does_not_hold_analyzing, .fini = stop)
{
    cd_rule_conf_t r[2] = {errors("errors", 0, 0), silence()};
    r[1].guard = true;
    start(r, 2, 0, 0);
    rate(STA, REQ, 100);
    rate(CAN, REQ, 60);
    run(3); /* errors has its 50 canary samples; silence has no reference yet */
    verdict_at(0, CD_VERDICT_HEALTHY, NULL, 0);
    no_more(1);
    cd_verdict_t last;
    cd_engine_rule_state(sim.e, 1, &last);
    cr_assert(strncmp(last.reason, "insufficient data: canary has 0 samples in the 10s before", 57) ==
                  0,
              "%s", last.reason);
}

/* Issue 10 item 2, reproduced: a count rule with no minimum and a canary
 * that sends nothing. Without the check (0) the release is HEALTHY at the
 * first evaluation and PROMOTE after promote_after; with it, ANALYZING
 * saying no canary event has arrived, until the canary has sent enough. */
Test(guard, count_rule_and_silent_canary_without_the_check, .fini = stop)
{
    cd_rule_conf_t r = count_only();
    start_ex(&r, 1, 10 * S, 0, 0);
    rate(STA, REQ, 100);
    run(12);
    verdict_at(0, CD_VERDICT_HEALTHY, NULL, 0);
    verdict_at(1, CD_VERDICT_PROMOTE, NULL, 10);
    no_more(2);
}

Test(guard, canary_evidence_gates_healthy_and_promote, .fini = stop)
{
    cd_rule_conf_t r = count_only();
    start_ex(&r, 1, 10 * S, 0, 30);
    rate(STA, REQ, 100);
    run(12);
    verdict_at(0, CD_VERDICT_ANALYZING, NULL, 0);
    cr_assert_str_eq(sim.rec[0].reason,
                     "waiting for enough data: canary evidence: no canary event has arrived "
                     "(HEALTHY and PROMOTE need 30 in 10s)");
    no_more(1);
    rate(CAN, REQ, 10); /* k12 on: 10 canary events a second */
    run(16);
    /* k14: 30 canary events in the last 10 s */
    verdict_at(1, CD_VERDICT_HEALTHY, NULL, 14);
    verdict_at(2, CD_VERDICT_PROMOTE, NULL, 24);
    no_more(3);
}

Test(guard, canary_evidence_lost_breaks_the_promotion_clock, .fini = stop)
{
    cd_rule_conf_t r = count_only();
    start_ex(&r, 1, 20 * S, 0, 30);
    rate(STA, REQ, 100);
    rate(CAN, REQ, 10);
    run(3); /* k0-2: 30 canary events, HEALTHY at k2 */
    rate(CAN, REQ, 0);
    run(25); /* k3-27 silent: PROMOTE would be due at k22 */
    verdict_at(0, CD_VERDICT_ANALYZING, NULL, 0);
    cr_assert_str_eq(sim.rec[0].reason,
                     "waiting for enough data: canary evidence: only 10 canary events in the last "
                     "20s (HEALTHY and PROMOTE need 30 in 20s)");
    verdict_at(1, CD_VERDICT_HEALTHY, NULL, 2);
    /* k20: the 20 s window is k1-20, 20 events < 30 */
    verdict_at(2, CD_VERDICT_ANALYZING, NULL, 20);
    cr_assert_str_eq(sim.rec[2].reason,
                     "waiting for enough data: canary evidence: only 20 canary events in the last "
                     "20s (HEALTHY and PROMOTE need 30 in 20s)");
    no_more(3);
    run(3); /* k28-30: none left in the window */
    cr_assert_eq(cd_engine_verdict(sim.e), CD_VERDICT_ANALYZING);
    cr_assert_eq(sim.n, 3);
}

Test(guard, rules_judged_without_canary)
{
    cd_rule_conf_t r = count_only();
    cr_assert(cd_rule_judged_without_canary(&r));
    r.min_samples_canary = 1;
    cr_assert_not(cd_rule_judged_without_canary(&r));
    r = errors("e", 0, 0);
    cr_assert_not(cd_rule_judged_without_canary(&r));
    r.scope = CD_SCOPE_ANY;
    cr_assert(cd_rule_judged_without_canary(&r));
    r = relative(0, 0, 0);
    cr_assert_not(cd_rule_judged_without_canary(&r));
    r = silence();
    cr_assert_not(cd_rule_judged_without_canary(&r));
    r = spike();
    cr_assert_not(cd_rule_judged_without_canary(&r));
}
