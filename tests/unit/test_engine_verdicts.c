/*
 * test_engine_verdicts.c - the engine's verdicts end to end over a real
 * window: ALERT repeats, spike (canary-only ROLLBACK, fleet-wide ALERT,
 * 0-vs-0), flatline, percentile, dry run, ROLLBACK once per release,
 * PROMOTE timing, and the order of records in one evaluation. Exact record
 * sequences; see engine_sim.h for the harness and the time axis.
 */
#include "engine_sim.h"

Test(engine, alert_repeat_interval, .fini = stop)
{
    cd_rule_conf_t r = audit();
    start(&r, 1, 0, 5 * S);
    rate(CAN, AUDIT, 1);
    run(12); /* k0-11 firing: ALERT at k0, k5, k10 */
    rate(CAN, AUDIT, 0);
    run(1); /* k12 resolved (resolve_for 0) */
    rate(CAN, AUDIT, 1);
    run(4); /* k13 fires again: no ALERT until k15, 5 s after k10 */
    state_at(0, "audit", CD_STATE_INACTIVE, CD_STATE_FIRING, 0);
    const cd_verdict_t *a = verdict_at(1, CD_VERDICT_ALERT, "audit", 0);
    cr_assert_str_eq(a->reason, "canary audit 1 (AUDIT_LOG_FAILED) > 0; stable audit 0 "
                                "(AUDIT_LOG_FAILED) <= 0 (window 1s; samples canary 1 >= 0, "
                                "stable 0 >= 0)");
    cr_assert_eq(a->action, CD_ACTION_ALERT);
    /* the first evaluation announces the release's verdict, whatever it is */
    const cd_verdict_t *rel = verdict_at(2, CD_VERDICT_ALERT, NULL, 0);
    cr_assert_str_eq(rel->reason, "alert rule firing: audit");
    a = verdict_at(3, CD_VERDICT_ALERT, "audit", 5);
    cr_assert(strncmp(a->reason, "still firing: canary audit 1 ", 29) == 0, "%s", a->reason);
    verdict_at(4, CD_VERDICT_ALERT, "audit", 10);
    state_at(5, "audit", CD_STATE_FIRING, CD_STATE_RESOLVED, 12);
    verdict_at(6, CD_VERDICT_HEALTHY, NULL, 12);
    state_at(7, "audit", CD_STATE_RESOLVED, CD_STATE_FIRING, 13);
    verdict_at(8, CD_VERDICT_ALERT, "audit", 15);
    no_more(9);
}

Test(engine, spike_canary_only_rolls_back, .fini = stop)
{
    cd_rule_conf_t r = spike();
    start(&r, 1, 0, 0);
    logins(STA, 95, 5);
    logins(CAN, 95, 5);
    run(15); /* k0-14: 5% everywhere */
    logins(CAN, 80, 20);
    run(6);
    /* k15: canary 40/500 = 8% < 2 x 5%; k16: 55/500 = 11% >= 10%, Fisher's
     * exact one-sided p 0.00032 <= 1 - Phi(3) = 0.00135: fires (for 0) */
    verdict_at(0, CD_VERDICT_HEALTHY, NULL, 0);
    const cd_verdict_t *f = state_at(1, "spike", CD_STATE_INACTIVE, CD_STATE_FIRING, 16);
    cr_assert_eq(f->action, CD_ACTION_ROLLBACK);
    const cd_verdict_t *v = verdict_at(2, CD_VERDICT_ROLLBACK, "spike", 16);
    cr_assert_eq(v->canary.numerator, 55);
    cr_assert_eq(v->canary.denominator, 500);
    cr_assert_eq(v->stable.numerator, 25);
    cr_assert_float_eq(v->threshold, 0.10, 1e-12);
    cr_assert_str_eq(
        v->reason,
        "canary spike 11.00% (USER_LOGIN_FAILED/(USER_LOGIN+USER_LOGIN_FAILED) "
        "55/500) >= 2 x stable 5.00% (25/500) = 10.00%, exact p 0.00032 <= 0.0013 (z 3): canary "
        "spike; stable 5.00% < 2 x its preceding 10s 5.00% (50/1000) = 10.00%, exact p 1 > 0.0013 "
        "(z 3)"
        ": no fleet-wide spike (factor and significance tests fail) "
        "(window 5s; samples canary 500 >= 100, stable 500 >= 100)");
    no_more(3);
    cr_assert_eq(cd_engine_verdict(sim.e), CD_VERDICT_ROLLBACK);
}

Test(engine, spike_fleet_wide_alerts_then_canary_only_rolls_back, .fini = stop)
{
    cd_rule_conf_t r = spike();
    start(&r, 1, 0, 0);
    logins(STA, 95, 5);
    logins(CAN, 95, 5);
    run(15);
    logins(STA, 80, 20); /* both cohorts: user behaviour */
    logins(CAN, 80, 20);
    run(6); /* k15-20. k16: stable 55/500 vs its reference (k2-11) 50/1000: p 2.3e-05 */
    verdict_at(0, CD_VERDICT_HEALTHY, NULL, 0);
    const cd_verdict_t *f = state_at(1, "spike", CD_STATE_INACTIVE, CD_STATE_FIRING, 16);
    cr_assert_eq(f->action, CD_ACTION_ALERT);
    const cd_verdict_t *a = verdict_at(2, CD_VERDICT_ALERT, "spike", 16);
    cr_assert_eq(a->action, CD_ACTION_ALERT);
    cr_assert(strstr(a->reason,
                     "exact p 2.3e-05 <= 0.0013 (z 3): fleet-wide spike, user behaviour, not the "
                     "deployment") != NULL,
              "%s", a->reason);
    no_more(3);
    cr_assert_eq(cd_engine_verdict(sim.e), CD_VERDICT_ALERT);

    /* Stable recovers, the canary does not. k21: stable 85/500 = 17% vs
     * 80/1000: still fleet-wide; k22, k23: neither test passes (clear, but
     * resolve_for is 60 s); k24: canary 20% vs stable 40/500 = 8%, p < 0.0013,
     * and stable is below its reference: canary-only -> ROLLBACK now. */
    logins(STA, 95, 5);
    run(4);
    const cd_verdict_t *v = verdict_at(3, CD_VERDICT_ROLLBACK, "spike", 24);
    cr_assert(strncmp(v->reason, "now canary-only: canary spike 20.00% ", 37) == 0, "%s",
              v->reason);
    cr_assert_eq(v->stable.numerator, 40);
    no_more(4);
    cr_assert_eq(cd_engine_verdict(sim.e), CD_VERDICT_ROLLBACK);
}

Test(engine, spike_zero_vs_zero_never_fires, .fini = stop)
{
    cd_rule_conf_t r = spike();
    r.z = 0; /* even with no significance required */
    start(&r, 1, 0, 0);
    logins(STA, 100, 0);
    logins(CAN, 100, 0);
    run(30);
    verdict_at(0, CD_VERDICT_HEALTHY, NULL, 0);
    no_more(1);
}

static cd_rule_conf_t flat(void)
{
    cd_rule_conf_t r = {.name = "flat",
                        .kind = CD_RULE_FLATLINE,
                        .action = CD_ACTION_ALERT,
                        .window_ms = 5 * S,
                        .max_ratio = 0.1,
                        .min_expected = 10,
                        .min_samples_canary = 100,
                        .min_samples_stable = 100,
                        .flat_types = {LOGIN, PAY_OK},
                        .nflat = 2,
                        .signal = {.den = {REQ}, .nden = 1}};
    return r;
}

static void flat_traffic(void)
{
    rate(STA, REQ, 100);
    rate(STA, LOGIN, 20);
    rate(STA, PAY_OK, 10);
    rate(CAN, REQ, 50);
    rate(CAN, LOGIN, 10);
    rate(CAN, PAY_OK, 5);
}

Test(engine, flatline_fires_when_canary_alone_stops, .fini = stop)
{
    cd_rule_conf_t r = flat();
    start(&r, 1, 0, 0);
    flat_traffic();
    run(10); /* k0: canary traffic 50 < 100: ANALYZING; k1: 100, HEALTHY */
    rate(CAN, LOGIN, 0);
    run(6); /* expected 100/500 x 250 = 50; flat at <= 5: only once all 5 s are 0 (k14) */
    verdict_at(0, CD_VERDICT_ANALYZING, NULL, 0);
    verdict_at(1, CD_VERDICT_HEALTHY, NULL, 1);
    state_at(2, "flat", CD_STATE_INACTIVE, CD_STATE_FIRING, 14);
    const cd_verdict_t *a = verdict_at(3, CD_VERDICT_ALERT, "flat", 14);
    cr_assert_eq(a->canary.numerator, 0);
    cr_assert_float_eq(a->threshold, 50.0, 1e-9);
    cr_assert_str_eq(a->reason, "canary USER_LOGIN 0 <= 0.1 x expected 50.0 = 5.0 (stable 100 per "
                                "500 REQUEST_COMPLETED, canary 250 REQUEST_COMPLETED): flat in the "
                                "canary (window 5s; samples canary 250 >= 100, stable 500 >= 100)");
    no_more(4);
}

Test(engine, flatline_quiet_when_both_stop, .fini = stop)
{
    cd_rule_conf_t r = flat();
    start(&r, 1, 0, 0);
    flat_traffic();
    run(10);
    rate(CAN, LOGIN, 0);
    rate(STA, LOGIN, 0);
    run(15);
    verdict_at(0, CD_VERDICT_ANALYZING, NULL, 0);
    verdict_at(1, CD_VERDICT_HEALTHY, NULL, 1);
    no_more(2);
    cr_assert_eq(cd_engine_verdict(sim.e), CD_VERDICT_HEALTHY);
}

Test(engine, percentile, .fini = stop)
{
    cd_rule_conf_t r = {.name = "p99",
                        .kind = CD_RULE_PERCENTILE,
                        .action = CD_ACTION_ALERT,
                        .op = CD_OP_GT,
                        .hist = 0,
                        .quantile = 0.99,
                        .factor = 1.5,
                        .window_ms = S,
                        .min_samples_canary = 50,
                        .min_samples_stable = 50};
    start(&r, 1, 0, 0);
    rate(STA, REQ, 100);
    rate(CAN, REQ, 100);
    sim.lat[STA] = 100.0;
    sim.lat[CAN] = 140.0;
    run(2); /* 140 <= 1.5 x 100 */
    sim.lat[CAN] = 300.0;
    run(1);
    sim.lat[CAN] = 100.0;
    run(1); /* resolve_for 0: resolved at once */
    verdict_at(0, CD_VERDICT_HEALTHY, NULL, 0);
    state_at(1, "p99", CD_STATE_INACTIVE, CD_STATE_FIRING, 2);
    const cd_verdict_t *a = verdict_at(2, CD_VERDICT_ALERT, "p99", 2);
    cr_assert_float_eq(a->canary.value, 300.0, 300.0 * 0.008);
    cr_assert_float_eq(a->stable.value, 100.0, 100.0 * 0.008);
    cr_assert_eq(a->canary.denominator, 100);
    cr_assert_float_eq(a->threshold, 1.5 * a->stable.value, 1e-9);
    cr_assert(strncmp(a->reason, "canary p99 latency_ms 30", 24) == 0, "%s", a->reason);
    state_at(3, "p99", CD_STATE_FIRING, CD_STATE_RESOLVED, 3);
    verdict_at(4, CD_VERDICT_HEALTHY, NULL, 3);
    no_more(5);
}

Test(engine, dry_run_changes_nothing_in_the_verdict, .fini = stop)
{
    cd_rule_conf_t rules[3] = {audit(), errors("dry", 0, 0), errors("starved", 0, 0)};
    rules[1].dry_run = true;
    rules[2].dry_run = true;
    rules[2].min_samples_canary = 1000; /* never enough: must not hold ANALYZING */
    start(rules, 3, 10 * S, 0);
    rate(CAN, REQ, 100);
    rate(CAN, ERR, 1);
    run(1); /* k0 */
    rate(CAN, ERR, 10);
    run(2); /* k1-2: dry fires; would-be ROLLBACK */
    rate(CAN, ERR, 1);
    run(1); /* k3 resolved */
    rate(CAN, ERR, 10);
    run(7); /* k4 fires again: a new episode, a new would-be ROLLBACK; PROMOTE at k10 */
    verdict_at(0, CD_VERDICT_HEALTHY, NULL, 0);
    const cd_verdict_t *s = state_at(1, "dry", CD_STATE_INACTIVE, CD_STATE_FIRING, 1);
    cr_assert(s->dry_run);
    const cd_verdict_t *v = verdict_at(2, CD_VERDICT_ROLLBACK, "dry", 1);
    cr_assert(v->dry_run);
    cr_assert(state_at(3, "dry", CD_STATE_FIRING, CD_STATE_RESOLVED, 3)->dry_run);
    state_at(4, "dry", CD_STATE_RESOLVED, CD_STATE_FIRING, 4);
    cr_assert(verdict_at(5, CD_VERDICT_ROLLBACK, "dry", 4)->dry_run);
    const cd_verdict_t *p = verdict_at(6, CD_VERDICT_PROMOTE, NULL, 10);
    cr_assert_str_eq(p->reason, "healthy with enough data for 10s: audit 0 vs 0");
    no_more(7);
    cr_assert_eq(cd_engine_verdict(sim.e), CD_VERDICT_PROMOTE);
}

Test(engine, rollback_emitted_once, .fini = stop)
{
    cd_rule_conf_t rules[3] = {errors("a", 0, 0), errors("b", 0, 0), errors("c", 2 * S, 0)};
    start(rules, 3, 0, 0);
    rate(CAN, REQ, 100);
    rate(CAN, ERR, 1);
    run(1); /* k0 */
    rate(CAN, ERR, 10);
    run(4); /* k1: a and b fire, c pending; k3: c fires */
    rate(CAN, ERR, 1);
    run(1); /* k5: all resolve; no release-wide record after ROLLBACK */
    rate(CAN, ERR, 10);
    run(1); /* k6: a and b fire again: still no second ROLLBACK */
    verdict_at(0, CD_VERDICT_HEALTHY, NULL, 0);
    state_at(1, "a", CD_STATE_INACTIVE, CD_STATE_FIRING, 1);
    state_at(2, "b", CD_STATE_INACTIVE, CD_STATE_FIRING, 1);
    state_at(3, "c", CD_STATE_INACTIVE, CD_STATE_PENDING, 1);
    verdict_at(4, CD_VERDICT_ROLLBACK, "a", 1);
    state_at(5, "c", CD_STATE_PENDING, CD_STATE_FIRING, 3);
    state_at(6, "a", CD_STATE_FIRING, CD_STATE_RESOLVED, 5);
    state_at(7, "b", CD_STATE_FIRING, CD_STATE_RESOLVED, 5);
    state_at(8, "c", CD_STATE_FIRING, CD_STATE_RESOLVED, 5);
    state_at(9, "a", CD_STATE_RESOLVED, CD_STATE_FIRING, 6);
    state_at(10, "b", CD_STATE_RESOLVED, CD_STATE_FIRING, 6);
    state_at(11, "c", CD_STATE_RESOLVED, CD_STATE_PENDING, 6);
    no_more(12);
    cr_assert_eq(cd_engine_verdict(sim.e), CD_VERDICT_ROLLBACK);
}

Test(engine, promote_after_exactly_promote_after, .fini = stop)
{
    cd_rule_conf_t r = errors("errors", 5 * S, 0);
    start(&r, 1, 10 * S, 0);
    rate(CAN, REQ, 100);
    rate(CAN, ERR, 1);
    run(4); /* k0-3 healthy */
    rate(CAN, ERR, 10);
    run(1); /* k4 pending: the healthy run is broken */
    rate(CAN, ERR, 1);
    run(11); /* k5 inactive: a new run from k5; PROMOTE at k15, not k14 */
    rate(CAN, ERR, 10);
    run(6); /* k16 pending, k21 firing: ROLLBACK supersedes PROMOTE */
    verdict_at(0, CD_VERDICT_HEALTHY, NULL, 0);
    state_at(1, "errors", CD_STATE_INACTIVE, CD_STATE_PENDING, 4);
    state_at(2, "errors", CD_STATE_PENDING, CD_STATE_INACTIVE, 5);
    const cd_verdict_t *p = verdict_at(3, CD_VERDICT_PROMOTE, NULL, 15);
    cr_assert_str_eq(p->reason, "healthy with enough data for 10s: errors 1.00% vs 5.00%");
    cr_assert_null(p->rule);
    cr_assert(isnan(p->threshold));
    state_at(4, "errors", CD_STATE_INACTIVE, CD_STATE_PENDING, 16);
    state_at(5, "errors", CD_STATE_PENDING, CD_STATE_FIRING, 21);
    verdict_at(6, CD_VERDICT_ROLLBACK, "errors", 21);
    no_more(7);
    cr_assert_eq(cd_engine_verdict(sim.e), CD_VERDICT_ROLLBACK);
}

Test(engine, record_order_in_one_evaluation, .fini = stop)
{
    cd_rule_conf_t rules[3] = {audit(), errors("pend", 5 * S, 0), errors("roll", 0, 0)};
    start(rules, 3, 0, 0);
    rate(CAN, REQ, 100);
    rate(CAN, ERR, 10);
    rate(STA, AUDIT, 2);
    run(1);
    /* state changes in rule order, then rule verdicts in rule order; the
     * release-wide record is left to the rule's ROLLBACK (emitted once) */
    state_at(0, "audit", CD_STATE_INACTIVE, CD_STATE_FIRING, 0);
    state_at(1, "pend", CD_STATE_INACTIVE, CD_STATE_PENDING, 0);
    state_at(2, "roll", CD_STATE_INACTIVE, CD_STATE_FIRING, 0);
    verdict_at(3, CD_VERDICT_ALERT, "audit", 0);
    verdict_at(4, CD_VERDICT_ROLLBACK, "roll", 0);
    no_more(5);
}

Test(engine, alert_not_repeated_while_recovering, .fini = stop)
{
    cd_rule_conf_t r = audit();
    r.resolve_for_ms = 20 * S;
    start(&r, 1, 0, 5 * S);
    rate(CAN, AUDIT, 1);
    run(3); /* k0-2: fires at k0 */
    rate(CAN, AUDIT, 0);
    run(10); /* k3-12: clear but not yet resolved: no "still firing" at k5, k10 */
    rate(CAN, AUDIT, 1);
    run(1); /* k13: breach again, 13 s after the last ALERT */
    state_at(0, "audit", CD_STATE_INACTIVE, CD_STATE_FIRING, 0);
    verdict_at(1, CD_VERDICT_ALERT, "audit", 0);
    verdict_at(2, CD_VERDICT_ALERT, NULL, 0);
    const cd_verdict_t *a = verdict_at(3, CD_VERDICT_ALERT, "audit", 13);
    cr_assert(strncmp(a->reason, "still firing: ", 14) == 0, "%s", a->reason);
    no_more(4);
    cr_assert_eq(cd_engine_rule_state(sim.e, 0, NULL), CD_STATE_FIRING);
}

/* A ROLLBACK restored after a restart (cd_engine_restore_decision) is the
 * verdict at once, is announced by no record (it was before the restart),
 * and the rebuild's firing rule does not emit it again; a new judgement
 * ends it like any decision. */
Test(engine, restored_rollback_is_sticky_and_silent, .fini = stop)
{
    cd_rule_conf_t r = errors("errors", 0, 0);
    start(&r, 1, 0, 0);
    cd_engine_restore_decision(sim.e, "v2", CD_VERDICT_ROLLBACK);
    cr_assert_eq(cd_engine_verdict(sim.e), CD_VERDICT_ROLLBACK);
    rate(CAN, REQ, 100);
    rate(CAN, ERR, 10);
    run(2); /* k0: fires: a state record, no ROLLBACK, no release-wide record */
    state_at(0, "errors", CD_STATE_INACTIVE, CD_STATE_FIRING, 0);
    no_more(1);
    cr_assert_eq(cd_engine_verdict(sim.e), CD_VERDICT_ROLLBACK);
    cd_engine_new_release(sim.e, "v2", AT(1)); /* judged again (a new Flagger run) */
    run(1); /* k2: the new judgement's first evaluation: it fires, a ROLLBACK again */
    state_at(1, "errors", CD_STATE_INACTIVE, CD_STATE_FIRING, 2);
    verdict_at(2, CD_VERDICT_ROLLBACK, "errors", 2);
    no_more(3);
}

/* A release declared at the pipeline's clock while its boundaries trail it
 * (live.c's watermark holds judgement back during a rebuild): the
 * boundaries before the declaration judge nothing and emit nothing, the
 * first one at or after it judges the new release. Before the fix the first
 * of them aborted the agent (CD_ASSERT now_ms >= last_now): seen as
 * http_api::hostile_requests_and_tokens losing its agent under load. */
Test(engine, boundaries_before_a_declared_release_judge_nothing, .fini = stop)
{
    cd_rule_conf_t r = errors("errors", 0, 0);
    start(&r, 1, 0, 0);
    rate(CAN, REQ, 100);
    rate(CAN, ERR, 10);
    run(2); /* k0: fires, ROLLBACK */
    int before = sim.n;
    cr_assert_eq(cd_engine_verdict(sim.e), CD_VERDICT_ROLLBACK);
    cd_engine_new_release(sim.e, "v3", AT(5)); /* the clock is 4 s past the boundaries */
    cr_assert_eq(cd_engine_verdict(sim.e), CD_VERDICT_ANALYZING);
    run(3); /* k2-4: before the release's start */
    no_more(before);
    cr_assert_eq(cd_engine_verdict(sim.e), CD_VERDICT_ANALYZING);
    cr_assert_eq(cd_engine_rule_state(sim.e, 0, NULL), CD_STATE_INACTIVE);
    run(3); /* k5-7: the new release's canary errors fire it */
    cr_assert_gt(sim.n, before, "no record after the release's start");
    cr_assert_eq(cd_engine_verdict(sim.e), CD_VERDICT_ROLLBACK);
    cr_assert_str_eq(sim.rec[sim.n - 1].release, "v3");
}

/* A restored PROMOTE is not announced again; a later ROLLBACK supersedes
 * it as it would have before the restart. */
Test(engine, restored_promote_then_rollback, .fini = stop)
{
    cd_rule_conf_t r = errors("errors", 0, 0);
    start(&r, 1, 0, 0);
    cd_engine_restore_decision(sim.e, "v2", CD_VERDICT_PROMOTE);
    rate(CAN, REQ, 100);
    rate(CAN, ERR, 1);
    run(2); /* healthy data: still PROMOTE, nothing to say */
    no_more(0);
    cr_assert_eq(cd_engine_verdict(sim.e), CD_VERDICT_PROMOTE);
    rate(CAN, ERR, 10);
    run(1);
    state_at(0, "errors", CD_STATE_INACTIVE, CD_STATE_FIRING, 2);
    verdict_at(1, CD_VERDICT_ROLLBACK, "errors", 2);
    no_more(2);
}
