/*
 * engine_sim.h - the harness shared by test_engine.c and
 * test_engine_verdicts.c (header-only; each test binary includes it once).
 *
 * A real window (7 event types, 1 latency histogram, 1 s buckets) and a real
 * engine; counts are added per second by hand and cd_engine_eval() runs once
 * per second, collecting every record. Second k of a scenario holds events
 * stamped T0 + k s + 500 ms and is followed by the evaluation at
 * AT(k) = T0 + (k + 1) s, so a rule window of n seconds at AT(k) covers
 * seconds k-n+1 .. k. State-machine tests use 1 s windows: the value judged
 * is exactly that second's counts. state_at() / verdict_at() / no_more()
 * check the exact record sequence and log all records on a mismatch.
 */
#ifndef CANARYD_TESTS_ENGINE_SIM_H
#define CANARYD_TESTS_ENGINE_SIM_H

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "canaryd/engine.h"
#include "canaryd/window.h"

enum { REQ, ERR, LOGIN, LOGIN_FAILED, PAY_OK, PAY_FAIL, AUDIT, NTYPES };
static const char *const type_names[NTYPES] = {
    "REQUEST_COMPLETED", "ERROR_OCCURRED", "USER_LOGIN",      "USER_LOGIN_FAILED",
    "PAYMENT_COMPLETED", "PAYMENT_FAILED", "AUDIT_LOG_FAILED"};

#define T0 1800000000000LL
#define AT(k) (T0 + ((int64_t)(k) + 1) * 1000)
#define S 1000LL
#define CAN CD_COHORT_CANARY
#define STA CD_COHORT_STABLE

#define MAXREC 256
typedef struct sim {
    cd_window_t *w;
    cd_engine_t *e;
    int k;                              /* next second to simulate */
    uint64_t rate[CD_NCOHORTS][NTYPES]; /* events per second */
    double lat[CD_NCOHORTS];            /* latency of every REQ, 0 = none */
    cd_verdict_t rec[MAXREC];
    int n;
} sim_t;

static sim_t sim;

static inline void on_record(const cd_verdict_t *v, void *opaque)
{
    sim_t *s = opaque;
    cr_assert_lt(s->n, MAXREC, "too many records");
    s->rec[s->n++] = *v;
}

/* min_canary: cd_engine_conf_t.min_canary_events (start(): 0, no check) */
static inline void start_ex(const cd_rule_conf_t *rules, int nrules, int64_t promote_after,
                            int64_t alert_repeat, uint64_t min_canary)
{
    memset(&sim, 0, sizeof sim);
    char err[256];
    cd_window_conf_t wc = {.nmetrics = NTYPES,
                           .nhists = 1,
                           .resolution_ms = 1000,
                           .span_ms = 120 * S,
                           .ahead_ms = 5 * S,
                           .nstripes = 1};
    sim.w = cd_window_new(&wc, err, sizeof err);
    cr_assert_not_null(sim.w, "%s", err);
    cd_engine_conf_t ec = {.rules = rules,
                           .nrules = nrules,
                           .promote_after_ms = promote_after,
                           .alert_repeat_ms = alert_repeat,
                           .min_canary_events = min_canary,
                           .release = "v2",
                           .ntypes = NTYPES,
                           .hist_names = {"latency_ms"},
                           .nhists = 1};
    for (int i = 0; i < NTYPES; i++)
        ec.type_names[i] = type_names[i];
    sim.e = cd_engine_new(&ec, err, sizeof err);
    cr_assert_not_null(sim.e, "%s", err);
}

static inline void start(const cd_rule_conf_t *rules, int nrules, int64_t promote_after,
                         int64_t alert_repeat)
{
    start_ex(rules, nrules, promote_after, alert_repeat, 0);
}

static inline void stop(void)
{
    cd_engine_destroy(sim.e);
    cd_window_destroy(sim.w);
}

static inline void rate(cd_cohort_t c, int type, uint64_t per_second)
{
    sim.rate[c][type] = per_second;
}

/* Simulates `seconds` seconds at the current rates, evaluating after each. */
static inline void run(int seconds)
{
    for (int i = 0; i < seconds; i++, sim.k++) {
        int64_t ts = T0 + (int64_t)sim.k * 1000 + 500;
        cd_window_set_clock(sim.w, AT(sim.k));
        for (int c = 0; c < CD_NCOHORTS; c++) {
            for (int t = 0; t < NTYPES; t++)
                if (sim.rate[c][t])
                    cr_assert_eq(cd_window_add(sim.w, 0, t, (cd_cohort_t)c, ts, sim.rate[c][t]),
                                 CD_WIN_OK);
            if (sim.lat[c] > 0)
                for (uint64_t j = 0; j < sim.rate[c][REQ]; j++)
                    cd_window_observe(sim.w, 0, (cd_cohort_t)c, ts, sim.lat[c]);
        }
        cd_engine_eval(sim.e, sim.w, AT(sim.k), on_record, &sim);
    }
}

/* ---- expectations ---- */

static inline const char *rname(const cd_verdict_t *v)
{
    return v->rule ? v->rule : "(release)";
}

static inline void dump(void)
{
    for (int i = 0; i < sim.n; i++) {
        const cd_verdict_t *v = &sim.rec[i];
        if (v->record == CD_RECORD_STATE)
            cr_log_info("[%d] k=%lld STATE %s %s->%s: %s", i,
                        (long long)((v->time_ms - T0) / S - 1), rname(v),
                        cd_rule_state_name(v->from), cd_rule_state_name(v->to), v->reason);
        else
            cr_log_info("[%d] k=%lld VERDICT %s %s: %s", i, (long long)((v->time_ms - T0) / S - 1),
                        cd_verdict_kind_name(v->verdict), rname(v), v->reason);
    }
}

/* Record i is a state change of rule from -> to at second k. */
static inline const cd_verdict_t *state_at(int i, const char *rule, cd_rule_state_t from,
                                           cd_rule_state_t to, int k)
{
    if (i >= sim.n) dump();
    cr_assert_lt(i, sim.n, "record %d missing (have %d)", i, sim.n);
    const cd_verdict_t *v = &sim.rec[i];
    if (v->record != CD_RECORD_STATE || !v->rule || strcmp(v->rule, rule) || v->from != from ||
        v->to != to || v->time_ms != AT(k))
        dump();
    cr_assert_eq(v->record, CD_RECORD_STATE, "record %d kind", i);
    cr_assert_str_eq(rname(v), rule, "record %d rule", i);
    cr_assert_eq(v->from, from, "record %d from %s", i, cd_rule_state_name(v->from));
    cr_assert_eq(v->to, to, "record %d to %s", i, cd_rule_state_name(v->to));
    cr_assert_eq(v->time_ms, AT(k), "record %d at k=%lld, want %d", i,
                 (long long)((v->time_ms - T0) / S - 1), k);
    cr_assert_str_eq(v->release, "v2");
    return v;
}

/* Record i is verdict `verdict` for rule (NULL: release-wide) at second k. */
static inline const cd_verdict_t *verdict_at(int i, cd_verdict_kind_t verdict, const char *rule,
                                             int k)
{
    if (i >= sim.n) dump();
    cr_assert_lt(i, sim.n, "record %d missing (have %d)", i, sim.n);
    const cd_verdict_t *v = &sim.rec[i];
    const char *want = rule ? rule : "(release)";
    if (v->record != CD_RECORD_VERDICT || v->verdict != verdict || strcmp(rname(v), want) ||
        v->time_ms != AT(k))
        dump();
    cr_assert_eq(v->record, CD_RECORD_VERDICT, "record %d kind", i);
    cr_assert_eq(v->verdict, verdict, "record %d verdict %s", i, cd_verdict_kind_name(v->verdict));
    cr_assert_str_eq(rname(v), want, "record %d rule", i);
    cr_assert_eq(v->time_ms, AT(k), "record %d at k=%lld, want %d", i,
                 (long long)((v->time_ms - T0) / S - 1), k);
    return v;
}

static inline void no_more(int n)
{
    if (sim.n != n) dump();
    cr_assert_eq(sim.n, n, "%d records, want %d", sim.n, n);
}

/* ---- rules ---- */

/* canary ERR/REQ > 5% over 1 s */
static inline cd_rule_conf_t errors(const char *name, int64_t for_ms, int64_t resolve_ms)
{
    cd_rule_conf_t r = {.kind = CD_RULE_THRESHOLD,
                        .action = CD_ACTION_ROLLBACK,
                        .op = CD_OP_GT,
                        .scope = CD_SCOPE_CANARY,
                        .threshold = 0.05,
                        .window_ms = S,
                        .for_ms = for_ms,
                        .resolve_for_ms = resolve_ms,
                        .min_samples_canary = 50,
                        .description = "Roll back.",
                        .signal = {.num = {ERR}, .nnum = 1, .den = {REQ}, .nden = 1}};
    snprintf(r.name, sizeof r.name, "%s", name);
    return r;
}

static inline cd_rule_conf_t audit(void)
{
    cd_rule_conf_t r = {.name = "audit",
                        .kind = CD_RULE_THRESHOLD,
                        .action = CD_ACTION_ALERT,
                        .op = CD_OP_GT,
                        .scope = CD_SCOPE_ANY,
                        .threshold = 0,
                        .window_ms = S,
                        .signal = {.num = {AUDIT}, .nnum = 1}};
    return r;
}

/* canary ERR/REQ > max(2 x stable, floor) over 1 s, alert */
static inline cd_rule_conf_t relative(double floor, double hysteresis, int64_t for_ms)
{
    cd_rule_conf_t r = {.name = "rel",
                        .kind = CD_RULE_RELATIVE,
                        .action = CD_ACTION_ALERT,
                        .op = CD_OP_GT,
                        .factor = 2.0,
                        .floor = floor,
                        .hysteresis = hysteresis,
                        .window_ms = S,
                        .for_ms = for_ms,
                        .min_samples_canary = 50,
                        .min_samples_stable = 100,
                        .signal = {.num = {ERR}, .nnum = 1, .den = {REQ}, .nden = 1}};
    return r;
}

/* login failure proportion: canary vs stable over 5 s, stable vs its 10 s before */
static inline cd_rule_conf_t spike(void)
{
    cd_rule_conf_t r = {
        .name = "spike",
        .kind = CD_RULE_SPIKE,
        .action = CD_ACTION_ROLLBACK,
        .factor = 2.0,
        .z = 3.0,
        .window_ms = 5 * S,
        .reference_ms = 10 * S,
        .resolve_for_ms = 60 * S,
        .min_samples_canary = 100,
        .min_samples_stable = 100,
        .signal = {.num = {LOGIN_FAILED}, .nnum = 1, .den = {LOGIN, LOGIN_FAILED}, .nden = 2}};
    return r;
}

static inline void logins(cd_cohort_t c, uint64_t ok, uint64_t failed)
{
    rate(c, LOGIN, ok);
    rate(c, LOGIN_FAILED, failed);
}

#endif
