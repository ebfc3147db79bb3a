/*
 * test_engine.c - the rule state machine end to end over a real window:
 * `for`, insufficient data, relative rules (stable, baseline, floor),
 * hysteresis, resolve_for, and the engine's validation of its rules. Exact
 * record sequences; see engine_sim.h for the harness and the time axis.
 * Verdict-level behaviour (spike, flatline, percentile, dry run, ROLLBACK
 * once, ALERT repeat, PROMOTE, record order) is in test_engine_verdicts.c.
 */
#include "engine_sim.h"

Test(engine, threshold_fires_after_for_and_not_earlier, .fini = stop)
{
    cd_rule_conf_t r = errors("errors", 5 * S, 0);
    r.window_ms = 10 * S;
    start(&r, 1, 0, 0);
    rate(CAN, REQ, 100);
    rate(CAN, ERR, 1);
    run(10); /* k 0..9: 1% */
    rate(CAN, ERR, 20);
    run(11); /* k 10..20: window errors 29, 48, 67 (6.7% > 5%: pending at k12), ... */
    verdict_at(0, CD_VERDICT_HEALTHY, NULL, 0);
    const cd_verdict_t *p = state_at(1, "errors", CD_STATE_INACTIVE, CD_STATE_PENDING, 12);
    cr_assert_str_eq(p->reason, "canary errors 6.70% (ERROR_OCCURRED/REQUEST_COMPLETED 67/1000) > "
                                "5.00% (window 10s; samples canary 1000 >= 50); pending: fires if "
                                "it holds for 5s");
    /* held from k12: fires at k17 = 5 s later, not at k16 */
    const cd_verdict_t *f = state_at(2, "errors", CD_STATE_PENDING, CD_STATE_FIRING, 17);
    cr_assert_str_eq(f->reason, "canary errors 16.20% (ERROR_OCCURRED/REQUEST_COMPLETED "
                                "162/1000) > 5.00% for 5s (window 10s; samples canary 1000 >= 50)");
    const cd_verdict_t *v = verdict_at(3, CD_VERDICT_ROLLBACK, "errors", 17);
    cr_assert_str_eq(v->reason, f->reason);
    cr_assert_str_eq(v->rule_kind, "threshold");
    cr_assert_eq(v->action, CD_ACTION_ROLLBACK);
    cr_assert_not(v->dry_run);
    cr_assert_eq(v->canary.numerator, 162);
    cr_assert_eq(v->canary.denominator, 1000);
    cr_assert_float_eq(v->threshold, 0.05, 1e-12);
    cr_assert_eq(v->window_ms, 10 * S);
    cr_assert_eq(v->for_ms, 5 * S);
    cr_assert_str_eq(v->todo, "Roll back.");
    no_more(4);
    cr_assert_eq(cd_engine_verdict(sim.e), CD_VERDICT_ROLLBACK);
    cd_verdict_t last;
    cr_assert_eq(cd_engine_rule_state(sim.e, 0, &last), CD_STATE_FIRING);
    cr_assert_eq(last.time_ms, AT(20));
    cr_assert_eq(last.canary.numerator, 200);
    cr_assert_eq(cd_engine_rule_state(sim.e, 1, &last), CD_STATE_INACTIVE);
    cr_assert_null(last.rule);
}

Test(engine, insufficient_data_never_fires, .fini = stop)
{
    cd_rule_conf_t r = errors("errors", 0, 0);
    start(&r, 1, 10 * S, 0);
    rate(CAN, REQ, 10);
    rate(CAN, ERR, 5); /* 50% errors, on 10 requests a second: not enough */
    run(20);
    const cd_verdict_t *a = verdict_at(0, CD_VERDICT_ANALYZING, NULL, 0);
    cr_assert_str_eq(a->reason, "waiting for enough data: errors: canary has 10 samples in 1s, "
                                "needs 50");
    cr_assert_str_eq(a->release, "v2");
    no_more(1);
    cr_assert_eq(cd_engine_verdict(sim.e), CD_VERDICT_ANALYZING);
    cr_assert_eq(cd_engine_rule_state(sim.e, 0, NULL), CD_STATE_INACTIVE);
}

Test(engine, pending_drops_when_data_becomes_insufficient, .fini = stop)
{
    cd_rule_conf_t r = errors("errors", 5 * S, 0);
    start(&r, 1, 0, 0);
    rate(CAN, REQ, 10);
    run(2); /* k0-1: too few */
    rate(CAN, REQ, 100);
    rate(CAN, ERR, 50);
    run(2); /* k2-3: breach */
    rate(CAN, REQ, 10);
    rate(CAN, ERR, 0);
    run(1); /* k4: too few again */
    verdict_at(0, CD_VERDICT_ANALYZING, NULL, 0);
    state_at(1, "errors", CD_STATE_INACTIVE, CD_STATE_PENDING, 2);
    verdict_at(2, CD_VERDICT_HEALTHY, NULL, 2); /* state records first, then the release */
    const cd_verdict_t *i = state_at(3, "errors", CD_STATE_PENDING, CD_STATE_INACTIVE, 4);
    cr_assert_str_eq(i->reason, "insufficient data: canary has 10 samples in 1s, needs 50");
    verdict_at(4, CD_VERDICT_ANALYZING, NULL, 4);
    no_more(5);
}

Test(engine, relative_against_stable, .fini = stop)
{
    cd_rule_conf_t r = relative(0.01, 0, 0);
    start(&r, 1, 0, 0);
    rate(STA, REQ, 50); /* k0: stable below its minimum and no baseline */
    rate(CAN, REQ, 100);
    rate(CAN, ERR, 4);
    run(1);
    rate(STA, REQ, 1000);
    rate(STA, ERR, 20); /* stable 2%: threshold 4% */
    run(1);             /* k1: 4% is not > 4% */
    rate(CAN, ERR, 5);
    run(1); /* k2: 5% > 4% */
    rate(STA, REQ, 50);
    rate(STA, ERR, 0);
    run(1); /* k3: insufficient while firing: stays firing, verdict stays ALERT */
    const cd_verdict_t *an = verdict_at(0, CD_VERDICT_ANALYZING, NULL, 0);
    cr_assert_str_eq(an->reason, "waiting for enough data: rel: stable has 50 samples in 1s, "
                                 "needs 100, and the rule has no baseline");
    verdict_at(1, CD_VERDICT_HEALTHY, NULL, 1);
    state_at(2, "rel", CD_STATE_INACTIVE, CD_STATE_FIRING, 2);
    const cd_verdict_t *a = verdict_at(3, CD_VERDICT_ALERT, "rel", 2);
    cr_assert_str_eq(a->stable_source, "stable");
    cr_assert_float_eq(a->threshold, 0.04, 1e-12);
    cr_assert_eq(a->stable.numerator, 20);
    cr_assert_eq(a->stable.denominator, 1000);
    cr_assert_str_eq(a->reason, "canary rel 5.00% (ERROR_OCCURRED/REQUEST_COMPLETED 5/100) > "
                                "max(2 x stable 2.00% (20/1000), floor 1.00%) = 4.00% (window 1s; "
                                "samples canary 100 >= 50, stable 1000 >= 100)");
    no_more(4);
    cr_assert_eq(cd_engine_rule_state(sim.e, 0, NULL), CD_STATE_FIRING);
    cr_assert_eq(cd_engine_verdict(sim.e), CD_VERDICT_ALERT);
}

Test(engine, relative_baseline_fallback, .fini = stop)
{
    cd_rule_conf_t r = relative(0.005, 0, 0);
    r.has_baseline = true;
    r.baseline = 0.01;
    start(&r, 1, 0, 0);
    rate(STA, REQ, 50); /* below min_samples_stable 100 */
    rate(CAN, REQ, 100);
    rate(CAN, ERR, 2);
    run(1); /* k0: 2% vs 2 x baseline 1% */
    rate(CAN, ERR, 3);
    run(1);
    verdict_at(0, CD_VERDICT_HEALTHY, NULL, 0);
    state_at(1, "rel", CD_STATE_INACTIVE, CD_STATE_FIRING, 1);
    const cd_verdict_t *a = verdict_at(2, CD_VERDICT_ALERT, "rel", 1);
    cr_assert_str_eq(a->stable_source, "baseline");
    cr_assert_float_eq(a->stable.value, 0.01, 1e-12);
    cr_assert_eq(a->stable.denominator, 50);
    cr_assert_float_eq(a->threshold, 0.02, 1e-12);
    no_more(3);
}

Test(engine, relative_floor, .fini = stop)
{
    cd_rule_conf_t r = relative(0.02, 0, 0);
    start(&r, 1, 0, 0);
    rate(STA, REQ, 1000); /* stable: no errors at all, 2 x 0 = 0 */
    rate(CAN, REQ, 100);
    rate(CAN, ERR, 2);
    run(3); /* 2% is not above the 2% floor */
    rate(CAN, ERR, 3);
    run(1);
    verdict_at(0, CD_VERDICT_HEALTHY, NULL, 0);
    state_at(1, "rel", CD_STATE_INACTIVE, CD_STATE_FIRING, 3);
    const cd_verdict_t *a = verdict_at(2, CD_VERDICT_ALERT, "rel", 3);
    cr_assert_float_eq(a->threshold, 0.02, 1e-12);
    no_more(3);
}

Test(engine, hysteresis_keeps_pending_through_a_dip, .fini = stop)
{
    cd_rule_conf_t r = relative(0, 0.1, 5 * S); /* > 2%, clear below 1.8% */
    start(&r, 1, 0, 0);
    rate(STA, REQ, 1000);
    rate(STA, ERR, 10);
    rate(CAN, REQ, 1000);
    rate(CAN, ERR, 10);
    run(1); /* k0 1% */
    rate(CAN, ERR, 30);
    run(2); /* k1-2 3%: pending at k1 */
    rate(CAN, ERR, 19);
    run(2); /* k3-4 1.9%: in the band, still pending */
    rate(CAN, ERR, 30);
    run(2); /* k5-6: held since k1, fires at k6 */
    verdict_at(0, CD_VERDICT_HEALTHY, NULL, 0);
    state_at(1, "rel", CD_STATE_INACTIVE, CD_STATE_PENDING, 1);
    state_at(2, "rel", CD_STATE_PENDING, CD_STATE_FIRING, 6);
    verdict_at(3, CD_VERDICT_ALERT, "rel", 6);
    no_more(4);
}

Test(engine, hysteresis_clear_resets_pending, .fini = stop)
{
    cd_rule_conf_t r = relative(0, 0.1, 5 * S);
    start(&r, 1, 0, 0);
    rate(STA, REQ, 1000);
    rate(STA, ERR, 10);
    rate(CAN, REQ, 1000);
    rate(CAN, ERR, 30);
    run(2); /* k0-1: pending at k0 */
    rate(CAN, ERR, 17);
    run(1); /* k2 1.7% < 1.8%: clear */
    rate(CAN, ERR, 30);
    run(6); /* k3-8: pending again at k3, fires at k8 */
    state_at(0, "rel", CD_STATE_INACTIVE, CD_STATE_PENDING, 0);
    verdict_at(1, CD_VERDICT_HEALTHY, NULL, 0);
    const cd_verdict_t *c = state_at(2, "rel", CD_STATE_PENDING, CD_STATE_INACTIVE, 2);
    cr_assert_str_eq(c->reason, "cleared before firing: canary rel 1.70% "
                                "(ERROR_OCCURRED/REQUEST_COMPLETED 17/1000) <= 2 x stable 1.00% "
                                "(10/1000) = 2.00% (window 1s; samples canary 1000 >= 50, stable "
                                "1000 >= 100)");
    state_at(3, "rel", CD_STATE_INACTIVE, CD_STATE_PENDING, 3);
    state_at(4, "rel", CD_STATE_PENDING, CD_STATE_FIRING, 8);
    verdict_at(5, CD_VERDICT_ALERT, "rel", 8);
    no_more(6);
}

Test(engine, resolve_for_needs_an_unbroken_clear_run, .fini = stop)
{
    cd_rule_conf_t r = errors("errors", 0, 3 * S);
    r.action = CD_ACTION_ALERT;
    start(&r, 1, 0, 60 * S);
    rate(CAN, REQ, 100);
    rate(CAN, ERR, 1);
    run(1); /* k0 */
    rate(CAN, ERR, 10);
    run(1); /* k1 fires at once (for 0) */
    rate(CAN, ERR, 1);
    run(2); /* k2-3 clear */
    rate(CAN, ERR, 10);
    run(1); /* k4 breach: the clear run starts over */
    rate(CAN, ERR, 1);
    run(4); /* k5-8 clear: resolved at k8, 3 s after k5 */
    rate(CAN, ERR, 10);
    run(1); /* k9 fires again, but the last ALERT (k1) is < 60 s old */
    verdict_at(0, CD_VERDICT_HEALTHY, NULL, 0);
    state_at(1, "errors", CD_STATE_INACTIVE, CD_STATE_FIRING, 1);
    verdict_at(2, CD_VERDICT_ALERT, "errors", 1);
    const cd_verdict_t *res = state_at(3, "errors", CD_STATE_FIRING, CD_STATE_RESOLVED, 8);
    cr_assert_str_eq(res->reason, "clear for 3s: canary errors 1.00% "
                                  "(ERROR_OCCURRED/REQUEST_COMPLETED 1/100) <= 5.00% (window 1s; "
                                  "samples canary 100 >= 50)");
    verdict_at(4, CD_VERDICT_HEALTHY, NULL, 8);
    state_at(5, "errors", CD_STATE_RESOLVED, CD_STATE_FIRING, 9);
    no_more(6);
    cr_assert_eq(cd_engine_verdict(sim.e), CD_VERDICT_ALERT);
}

Test(engine, rejects_bad_rules)
{
    char err[256];
    cd_rule_conf_t r = errors("errors", 0, 0);
    cd_engine_conf_t ec = {.rules = &r, .nrules = 1, .ntypes = NTYPES};
    for (int i = 0; i < NTYPES; i++)
        ec.type_names[i] = type_names[i];
    cd_engine_t *e = cd_engine_new(&ec, err, sizeof err);
    cr_assert_not_null(e, "%s", err);
    cd_engine_destroy(e);

    r.signal.den[0] = 9;
    cr_assert_null(cd_engine_new(&ec, err, sizeof err));
    cr_assert_str_eq(err, "rules[0] (\"errors\"): signal names a type id outside the catalog 0..6");
    r = errors("errors", 0, 0);
    r.hysteresis = 1.5;
    cr_assert_null(cd_engine_new(&ec, err, sizeof err));
    cr_assert_str_eq(err, "rules[0] (\"errors\"): hysteresis 1.5 is outside [0, 1)");
    cd_rule_conf_t two[2] = {errors("x", 0, 0), errors("x", 0, 0)};
    ec.rules = two;
    ec.nrules = 2;
    cr_assert_null(cd_engine_new(&ec, err, sizeof err));
    cr_assert_str_eq(err, "rules[1] (\"x\"): name is used by rules[0] too; rule names must be "
                          "unique");
    cd_rule_conf_t p = {
        .name = "p", .kind = CD_RULE_PERCENTILE, .hist = 1, .window_ms = S, .quantile = 0.5};
    ec.rules = &p;
    ec.nrules = 1;
    ec.nhists = 1;
    cr_assert_null(cd_engine_new(&ec, err, sizeof err));
    cr_assert_str_eq(err, "rules[0] (\"p\"): histogram id 1 is outside the numeric fields 0..0");
}

Test(engine, span_covers_the_longest_look_back)
{
    cd_rule_conf_t rules[2] = {errors("a", 0, 0), spike()};
    rules[0].window_ms = 60 * S;
    cr_assert_eq(cd_engine_span_ms(rules, 2), 60 * S);
    rules[1].window_ms = 5 * 60 * S;
    rules[1].reference_ms = 10 * 60 * S;
    cr_assert_eq(cd_engine_span_ms(rules, 2), 15 * 60 * S);
    cr_assert_eq(cd_engine_span_ms(rules, 0), 0);
    /* no percentile rule: the histograms are read by nobody */
    cr_assert_eq(cd_engine_hist_span_ms(rules, 2), 0);
}

Test(engine, hist_span_is_the_longest_percentile_window)
{
    cd_rule_conf_t rules[3] = {errors("a", 0, 0), spike(), errors("b", 0, 0)};
    rules[0].window_ms = 20 * 60 * S;
    rules[1].window_ms = 5 * 60 * S;
    rules[1].reference_ms = 10 * 60 * S;
    rules[2].kind = CD_RULE_PERCENTILE;
    rules[2].hist = 0;
    rules[2].quantile = 0.99;
    rules[2].window_ms = 4 * 60 * S;
    cr_assert_eq(cd_engine_hist_span_ms(rules, 3), 4 * 60 * S);
    cr_assert_eq(cd_engine_span_ms(rules, 3), 20 * 60 * S);
    cr_assert_eq(cd_engine_hist_span_ms(rules, 2), 0);
}
