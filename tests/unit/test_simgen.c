/*
 * test_simgen.c - the event generator: exact line shape, determinism,
 * independence of the cohorts' streams, the traffic model's rates and
 * distributions (within statistical bounds of 4-5 standard deviations on
 * fixed seeds, so the checks are deterministic and still catch a wrong rate)
 * and each scenario's effect.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "canaryd/simgen.h"
#include "canaryd/timeutil.h"

#define START 1795780800000LL /* 2026-11-27T12:00:00Z */

enum { T_REQ, T_ERR, T_LOGIN, T_LOGIN_FAILED, T_PAY, T_PAY_FAILED, T_AUDIT, T_N };
static const char *const tnames[T_N] = {"REQUEST_COMPLETED", "ERROR_OCCURRED",    "USER_LOGIN",
                                        "USER_LOGIN_FAILED", "PAYMENT_COMPLETED", "PAYMENT_FAILED",
                                        "AUDIT_LOG_FAILED"};

typedef struct tally {
    long n[T_N][2]; /* [type][0 stable, 1 canary] */
    double *lat[2];
    size_t nlat[2], cap[2];
    int64_t last_ts;
    int64_t sec;
    long first_audit_sec, last_audit_sec;
} tally_t;

static int type_of(const char *s)
{
    for (int i = 0; i < T_N; i++)
        if (strcmp(s, tnames[i]) == 0) return i;
    return -1;
}

/* Checks one line strictly against the documented shape (jansson). */
static void check_shape(const char *line, size_t len, int64_t ts)
{
    json_error_t err;
    cr_assert_eq(line[len], '\0');
    cr_assert(len < 400, "line too long: %zu", len);
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
    cr_assert_not_null(o, "not JSON: %s: %s", err.text, line);
    const char *keys[] = {"event_type", "timestamp",  "cohort", "service",
                          "version",    "request_id", "data"};
    const char *k;
    json_t *v;
    int i = 0;
    json_object_foreach(o, k, v)
    {
        cr_assert(i < 7);
        cr_assert_str_eq(k, keys[i]);
        i++;
    }
    cr_assert_eq(i, 7);
    cr_assert(type_of(json_string_value(json_object_get(o, "event_type"))) >= 0, "%s", line);
    const char *cohort = json_string_value(json_object_get(o, "cohort"));
    int c = strcmp(cohort, "canary") == 0;
    cr_assert(c || strcmp(cohort, "stable") == 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "version")), c ? "2.5.0" : "2.4.3");
    cr_assert_str_eq(json_string_value(json_object_get(o, "service")), "checkout");
    const char *rid = json_string_value(json_object_get(o, "request_id"));
    cr_assert_eq(strlen(rid), 12);
    cr_assert_eq(rid[0], c ? 'c' : 's');
    const char *tss = json_string_value(json_object_get(o, "timestamp"));
    int64_t parsed;
    cr_assert(cd_time_parse_rfc3339(tss, strlen(tss), &parsed));
    cr_assert_eq(parsed, ts);
    json_t *data = json_object_get(o, "data");
    cr_assert(json_is_object(data));
    if (strcmp(json_string_value(json_object_get(o, "event_type")), "REQUEST_COMPLETED") == 0) {
        cr_assert(json_is_real(json_object_get(data, "latency_ms")));
        cr_assert(json_is_string(json_object_get(data, "route")));
        cr_assert(json_is_integer(json_object_get(data, "status")));
    }
    json_decref(o);
}

/* Counts a line (fast string scanning: the shape is checked by check_shape). */
static void count_cb(const char *line, size_t len, int64_t ts, void *opaque)
{
    tally_t *t = opaque;
    static const char head[] = "{\"event_type\":\"";
    cr_assert(strncmp(line, head, sizeof head - 1) == 0, "%s", line);
    char name[32];
    const char *p = line + sizeof head - 1, *q = strchr(p, '"');
    cr_assert(q && q - p < (long)sizeof name);
    memcpy(name, p, (size_t)(q - p));
    name[q - p] = '\0';
    int type = type_of(name);
    cr_assert(type >= 0, "%s", line);
    int c = strstr(line, "\"cohort\":\"canary\"") != NULL;
    cr_assert(c || strstr(line, "\"cohort\":\"stable\""));
    cr_assert(ts >= t->sec && ts < t->sec + 1000, "%lld outside its second", (long long)ts);
    cr_assert(ts >= t->last_ts, "timestamps not sorted");
    t->last_ts = ts;
    t->n[type][c]++;
    if (type == T_REQ) {
        const char *l = strstr(line, "\"latency_ms\":");
        cr_assert_not_null(l);
        if (t->nlat[c] == t->cap[c]) {
            t->cap[c] = t->cap[c] ? t->cap[c] * 2 : 4096;
            t->lat[c] = realloc(t->lat[c], t->cap[c] * sizeof(double));
        }
        t->lat[c][t->nlat[c]++] = strtod(l + 13, NULL);
    }
    if (type == T_AUDIT) {
        long s = (long)((t->sec - START) / 1000);
        if (t->first_audit_sec < 0) t->first_audit_sec = s;
        t->last_audit_sec = s;
    }
}

static void shape_cb(const char *line, size_t len, int64_t ts, void *opaque)
{
    check_shape(line, len, ts);
    count_cb(line, len, ts, opaque);
}

static void tally_free(tally_t *t)
{
    free(t->lat[0]);
    free(t->lat[1]);
}

/* Runs seconds [from, to) of a scenario into *t. */
static void run(cd_sim_scenario_t sc, uint64_t seed, int from, int to, tally_t *t)
{
    cd_sim_conf_t conf;
    char err[256];
    cd_sim_conf_init(&conf);
    conf.scenario = sc;
    conf.seed = seed;
    cd_sim_t *sim = cd_sim_new(&conf, err, sizeof err);
    cr_assert_not_null(sim, "%s", err);
    memset(t, 0, sizeof *t);
    t->first_audit_sec = -1;
    for (int s = from; s < to; s++) {
        t->sec = START + s * 1000LL;
        long n = cd_sim_second(sim, t->sec, count_cb, t);
        cr_assert(n >= 0);
    }
    cd_sim_destroy(sim);
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* |observed - p n| within k binomial standard deviations. */
static void assert_prop(long hits, long n, double p, const char *what)
{
    double sd = sqrt(n * p * (1 - p));
    cr_assert(fabs(hits - n * p) <= 4.5 * sd + 1, "%s: %ld of %ld, expected p=%g", what, hits, n,
              p);
}

Test(simgen, defaults_and_names)
{
    cd_sim_conf_t c;
    cd_sim_conf_init(&c);
    cr_assert_eq(c.seed, 1);
    cr_assert_eq(c.start_ms, START);
    cr_assert_eq(c.onset_ms, 240000);
    cr_assert_eq(c.effect_ms, 0);
    cr_assert_eq(c.rate, 400.0);
    cr_assert_eq(c.canary_share, 0.05);
    const char *names[] = {
        "healthy",       "error-regression",   "error-blip",         "payment-drop",
        "payment-96",    "payment-sparse",     "login-spike-canary", "login-spike-fleet",
        "audit-failure", "latency-regression", "handler-flatline",   "canary-crash",
        "canary-outage", "payment-outage",     "login-outage",       "fleet-drop",
        "canary-absent"};
    cr_assert_eq(sizeof names / sizeof *names, CD_SIM__COUNT);
    for (int i = 0; i < CD_SIM__COUNT; i++) {
        cd_sim_scenario_t s;
        cr_assert_str_eq(cd_sim_scenario_name((cd_sim_scenario_t)i), names[i]);
        cr_assert(cd_sim_scenario_parse(names[i], &s));
        cr_assert_eq(s, (cd_sim_scenario_t)i);
    }
    cd_sim_scenario_t s = CD_SIM_HEALTHY;
    cr_assert_not(cd_sim_scenario_parse("Healthy", &s));
    cr_assert_not(cd_sim_scenario_parse("", &s));
}

Test(simgen, rejects_bad_conf)
{
    cd_sim_conf_t c;
    char err[256];
    cd_sim_conf_init(&c);
    c.rate = 0;
    cr_assert_null(cd_sim_new(&c, err, sizeof err));
    cr_assert_str_eq(err, "rate 0 is outside the accepted range (0, 1000000]");
    cd_sim_conf_init(&c);
    c.canary_share = 1.0;
    cr_assert_null(cd_sim_new(&c, err, sizeof err));
    cr_assert_str_eq(err, "canary share 1 is outside the accepted range (0, 1)");
    cd_sim_conf_init(&c);
    c.start_ms += 500;
    cr_assert_null(cd_sim_new(&c, err, sizeof err));
    cr_assert_str_eq(err, "start 1795780800500 ms is not a whole second at or after 1970");
    cd_sim_conf_init(&c);
    c.onset_ms = -1;
    cr_assert_null(cd_sim_new(&c, err, sizeof err));
    cr_assert_str_eq(err, "onset and effect must not be negative");
    cd_sim_conf_init(&c);
    c.scenario = CD_SIM__COUNT;
    cr_assert_null(cd_sim_new(&c, err, sizeof err));
    cr_assert_str_eq(err, "scenario 17 is not a scenario");
}

static void noop_cb(const char *line, size_t len, int64_t ts, void *opaque)
{
    (*(long *)opaque)++;
}

Test(simgen, second_must_be_whole_and_not_before_start)
{
    cd_sim_conf_t c;
    char err[256];
    long calls = 0;
    cd_sim_conf_init(&c);
    cd_sim_t *sim = cd_sim_new(&c, err, sizeof err);
    cr_assert_not_null(sim);
    cr_assert_eq(cd_sim_second(sim, START - 1000, noop_cb, &calls), -1);
    cr_assert_eq(cd_sim_second(sim, START + 1, noop_cb, &calls), -1);
    cr_assert_eq(calls, 0);
    long n = cd_sim_second(sim, START, noop_cb, &calls);
    cr_assert(n > 300 && n < 700, "%ld events in a second", n);
    cr_assert_eq(calls, n);
    cd_sim_destroy(sim);
}

/* Concatenated output of one second. */
typedef struct buf {
    char *s;
    size_t len, cap;
} buf_t;

static void buf_cb(const char *line, size_t len, int64_t ts, void *opaque)
{
    buf_t *b = opaque;
    if (b->len + len + 2 > b->cap) {
        b->cap = (b->len + len + 2) * 2;
        b->s = realloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, line, len);
    b->len += len;
    b->s[b->len++] = '\n';
    b->s[b->len] = '\0';
}

/* Only lines of one cohort. */
static void stable_only_cb(const char *line, size_t len, int64_t ts, void *opaque)
{
    if (strstr(line, "\"cohort\":\"stable\"")) buf_cb(line, len, ts, opaque);
}

static buf_t second_of(cd_sim_scenario_t sc, uint64_t seed, int sec, cd_sim_emit_cb cb)
{
    cd_sim_conf_t c;
    char err[256];
    buf_t b = {0};
    cd_sim_conf_init(&c);
    c.scenario = sc;
    c.seed = seed;
    cd_sim_t *sim = cd_sim_new(&c, err, sizeof err);
    cr_assert_not_null(sim);
    /* Generate other seconds first: a second must not depend on them. */
    for (int s = 0; s < sec % 7; s++)
        cd_sim_second(sim, START + s * 1000LL, noop_cb, &(long){0});
    cd_sim_second(sim, START + sec * 1000LL, cb, &b);
    cd_sim_destroy(sim);
    return b;
}

Test(simgen, deterministic_per_second_and_seed)
{
    buf_t a = second_of(CD_SIM_HEALTHY, 1, 300, buf_cb);
    buf_t b = second_of(CD_SIM_HEALTHY, 1, 300, buf_cb);
    buf_t c = second_of(CD_SIM_HEALTHY, 2, 300, buf_cb);
    buf_t d = second_of(CD_SIM_HEALTHY, 1, 301, buf_cb);
    cr_assert(a.len > 0);
    cr_assert_eq(a.len, b.len);
    cr_assert_str_eq(a.s, b.s);
    cr_assert_str_neq(a.s, c.s);
    cr_assert_str_neq(a.s, d.s);
    free(a.s), free(b.s), free(c.s), free(d.s);
}

Test(simgen, canary_effects_leave_stable_stream_untouched)
{
    /* Second 400 is after onset: the canary differs, stable must be byte-identical. */
    buf_t h = second_of(CD_SIM_HEALTHY, 1, 400, stable_only_cb);
    buf_t e = second_of(CD_SIM_ERROR_REGRESSION, 1, 400, stable_only_cb);
    buf_t f = second_of(CD_SIM_HANDLER_FLATLINE, 1, 400, stable_only_cb);
    cr_assert(h.len > 10000);
    cr_assert_str_eq(h.s, e.s);
    cr_assert_str_eq(h.s, f.s);
    free(h.s), free(e.s), free(f.s);
}

Test(simgen, healthy_rates_and_latency)
{
    tally_t t;
    run(CD_SIM_HEALTHY, 7, 0, 600, &t);
    /* Poisson counts over 600 s: canary 20/s, stable 380/s. */
    cr_assert(fabs(t.n[T_REQ][1] - 12000.0) < 5 * sqrt(12000.0), "%ld", t.n[T_REQ][1]);
    cr_assert(fabs(t.n[T_REQ][0] - 228000.0) < 5 * sqrt(228000.0), "%ld", t.n[T_REQ][0]);
    for (int c = 0; c < 2; c++) {
        double share = c ? 0.05 : 0.95;
        long logins = t.n[T_LOGIN][c] + t.n[T_LOGIN_FAILED][c];
        long pays = t.n[T_PAY][c] + t.n[T_PAY_FAILED][c];
        double el = 0.05 * 400 * share * 600, ep = 0.10 * 400 * share * 600;
        cr_assert(fabs(logins - el) < 5 * sqrt(el), "logins %ld vs %g", logins, el);
        cr_assert(fabs(pays - ep) < 5 * sqrt(ep), "payments %ld vs %g", pays, ep);
        assert_prop(t.n[T_ERR][c], t.n[T_REQ][c], 0.01, "error rate");
        assert_prop(t.n[T_LOGIN_FAILED][c], logins, 0.05, "login failures");
        assert_prop(t.n[T_PAY_FAILED][c], pays, 0.01, "payment failures");
        cr_assert_eq(t.n[T_AUDIT][c], 0);
    }
    /* Lognormal latency: median ~40 ms, p99 ~200 ms (stable has 228k samples). */
    qsort(t.lat[0], t.nlat[0], sizeof(double), dcmp);
    double med = t.lat[0][t.nlat[0] / 2], p99 = t.lat[0][(size_t)(t.nlat[0] * 0.99)];
    cr_assert(med > 39.0 && med < 41.0, "median %g", med);
    cr_assert(p99 > 190.0 && p99 < 210.0, "p99 %g", p99);
    tally_free(&t);
}

Test(simgen, poisson_variance_matches_mean)
{
    /* Per-second canary request counts: Poisson(20) has variance 20. */
    cd_sim_conf_t c;
    char err[256];
    cd_sim_conf_init(&c);
    c.rate = 400;
    cd_sim_t *sim = cd_sim_new(&c, err, sizeof err);
    double sum = 0, sum2 = 0;
    const int n = 2000;
    for (int s = 0; s < n; s++) {
        tally_t t = {.sec = START + s * 1000LL, .first_audit_sec = -1};
        cd_sim_second(sim, t.sec, count_cb, &t);
        double x = (double)t.n[T_REQ][0]; /* stable: lambda 380, the PTRS path */
        sum += x, sum2 += x * x;
        tally_free(&t);
    }
    double mean = sum / n, var = sum2 / n - mean * mean;
    cr_assert(fabs(mean - 380.0) < 2.0, "mean %g", mean);
    cr_assert(var > 380.0 * 0.85 && var < 380.0 * 1.15, "variance %g", var);
    cd_sim_destroy(sim);
}

Test(simgen, error_regression_and_blip)
{
    tally_t before, reg, blip_on, blip_after;
    run(CD_SIM_ERROR_REGRESSION, 3, 0, 240, &before);
    run(CD_SIM_ERROR_REGRESSION, 3, 240, 600, &reg);
    run(CD_SIM_ERROR_BLIP, 3, 240, 420, &blip_on);    /* 3m effect */
    run(CD_SIM_ERROR_BLIP, 3, 420, 780, &blip_after); /* back to normal */
    assert_prop(before.n[T_ERR][1], before.n[T_REQ][1], 0.01, "canary before onset");
    assert_prop(reg.n[T_ERR][1], reg.n[T_REQ][1], 0.03, "canary after onset");
    assert_prop(reg.n[T_ERR][0], reg.n[T_REQ][0], 0.01, "stable after onset");
    assert_prop(blip_on.n[T_ERR][1], blip_on.n[T_REQ][1], 0.03, "blip on");
    assert_prop(blip_after.n[T_ERR][1], blip_after.n[T_REQ][1], 0.01, "blip over");
    tally_free(&before), tally_free(&reg), tally_free(&blip_on), tally_free(&blip_after);
}

Test(simgen, payment_scenarios)
{
    tally_t drop, p96, sparse_before, sparse_after;
    run(CD_SIM_PAYMENT_DROP, 5, 240, 840, &drop);
    run(CD_SIM_PAYMENT_96, 5, 0, 600, &p96);
    run(CD_SIM_PAYMENT_SPARSE, 5, 0, 240, &sparse_before);
    run(CD_SIM_PAYMENT_SPARSE, 5, 240, 1080, &sparse_after);
    long n = drop.n[T_PAY][1] + drop.n[T_PAY_FAILED][1];
    assert_prop(drop.n[T_PAY_FAILED][1], n, 0.15, "payment-drop canary");
    n = drop.n[T_PAY][0] + drop.n[T_PAY_FAILED][0];
    assert_prop(drop.n[T_PAY_FAILED][0], n, 0.01, "payment-drop stable");
    n = p96.n[T_PAY][1] + p96.n[T_PAY_FAILED][1];
    assert_prop(p96.n[T_PAY_FAILED][1], n, 0.04, "payment-96 canary");
    /* Sparse: 0.05 % of 400/s = 0.2 payments/s fleet-wide, 0.01/s canary. */
    long fleet = sparse_after.n[T_PAY][0] + sparse_after.n[T_PAY_FAILED][0] +
                 sparse_after.n[T_PAY][1] + sparse_after.n[T_PAY_FAILED][1];
    cr_assert(fabs(fleet - 168.0) < 5 * sqrt(168.0), "fleet payments %ld", fleet);
    long canary = sparse_after.n[T_PAY][1] + sparse_after.n[T_PAY_FAILED][1];
    cr_assert(canary < 30, "canary payments %ld", canary);
    cr_assert(sparse_before.n[T_PAY][1] + sparse_before.n[T_PAY_FAILED][1] < 12);
    tally_free(&drop), tally_free(&p96), tally_free(&sparse_before), tally_free(&sparse_after);
}

Test(simgen, login_spikes)
{
    tally_t can, fleet;
    run(CD_SIM_LOGIN_SPIKE_CANARY, 9, 240, 840, &can);
    run(CD_SIM_LOGIN_SPIKE_FLEET, 9, 240, 840, &fleet);
    for (int c = 0; c < 2; c++) {
        long n = can.n[T_LOGIN][c] + can.n[T_LOGIN_FAILED][c];
        assert_prop(can.n[T_LOGIN_FAILED][c], n, c ? 0.40 : 0.05, "canary-only spike");
        n = fleet.n[T_LOGIN][c] + fleet.n[T_LOGIN_FAILED][c];
        assert_prop(fleet.n[T_LOGIN_FAILED][c], n, 0.40, "fleet spike");
    }
    tally_free(&can), tally_free(&fleet);
}

Test(simgen, audit_failure_burst_at_onset_only)
{
    tally_t t;
    run(CD_SIM_AUDIT_FAILURE, 1, 0, 600, &t);
    cr_assert_eq(t.n[T_AUDIT][1], CD_SIM_AUDIT_BURST);
    cr_assert_eq(t.n[T_AUDIT][0], 0);
    cr_assert_eq(t.first_audit_sec, 240);
    cr_assert_eq(t.last_audit_sec, 240);
    tally_free(&t);
}

Test(simgen, latency_regression_triples_canary)
{
    tally_t t;
    run(CD_SIM_LATENCY_REGRESSION, 4, 240, 840, &t);
    qsort(t.lat[1], t.nlat[1], sizeof(double), dcmp);
    qsort(t.lat[0], t.nlat[0], sizeof(double), dcmp);
    double cmed = t.lat[1][t.nlat[1] / 2], smed = t.lat[0][t.nlat[0] / 2];
    cr_assert(cmed > 112.0 && cmed < 128.0, "canary median %g", cmed);
    cr_assert(smed > 39.0 && smed < 41.0, "stable median %g", smed);
    tally_free(&t);
}

Test(simgen, handler_flatline_stops_canary_logins)
{
    tally_t before, after;
    run(CD_SIM_HANDLER_FLATLINE, 2, 0, 240, &before);
    run(CD_SIM_HANDLER_FLATLINE, 2, 240, 600, &after);
    cr_assert(before.n[T_LOGIN][1] > 150, "%ld", before.n[T_LOGIN][1]);
    cr_assert_eq(after.n[T_LOGIN][1], 0);
    cr_assert(after.n[T_LOGIN_FAILED][1] > 0);
    cr_assert(after.n[T_LOGIN][0] > 5000);
    tally_free(&before), tally_free(&after);
}

Test(simgen, canary_crash_and_absent_silence_only_the_canary)
{
    tally_t before, after, absent;
    run(CD_SIM_CANARY_CRASH, 3, 0, 240, &before);
    run(CD_SIM_CANARY_CRASH, 3, 240, 600, &after);
    run(CD_SIM_CANARY_ABSENT, 3, 0, 600, &absent);
    cr_assert(before.n[T_REQ][1] > 4000, "%ld", before.n[T_REQ][1]);
    for (int t = 0; t < T_N; t++) {
        cr_assert_eq(after.n[t][1], 0, "type %d after the crash", t);
        cr_assert_eq(absent.n[t][1], 0, "type %d of an absent canary", t);
    }
    /* stable unchanged: Poisson(380 requests/s), within 5 sd */
    cr_assert(fabs(after.n[T_REQ][0] - 360 * 380.0) < 5 * sqrt(360 * 380.0), "%ld",
              after.n[T_REQ][0]);
    cr_assert(fabs(absent.n[T_REQ][0] - 600 * 380.0) < 5 * sqrt(600 * 380.0), "%ld",
              absent.n[T_REQ][0]);
    tally_free(&before), tally_free(&after), tally_free(&absent);
}

Test(simgen, outages_fail_every_canary_attempt)
{
    tally_t all, pay, login;
    run(CD_SIM_CANARY_OUTAGE, 5, 240, 600, &all);
    run(CD_SIM_PAYMENT_OUTAGE, 5, 240, 600, &pay);
    run(CD_SIM_LOGIN_OUTAGE, 5, 240, 600, &login);
    cr_assert_eq(all.n[T_ERR][1], all.n[T_REQ][1]); /* every request failed */
    cr_assert_eq(all.n[T_PAY][1], 0);
    cr_assert_eq(all.n[T_LOGIN][1], 0);
    cr_assert(all.n[T_PAY_FAILED][1] > 500 && all.n[T_LOGIN_FAILED][1] > 250);
    cr_assert_eq(pay.n[T_PAY][1], 0);
    cr_assert(pay.n[T_PAY_FAILED][1] > 500);
    assert_prop(pay.n[T_ERR][1], pay.n[T_REQ][1], 0.01, "payment-outage canary errors");
    cr_assert_eq(login.n[T_LOGIN][1], 0);
    cr_assert(login.n[T_LOGIN_FAILED][1] > 250);
    assert_prop(login.n[T_PAY_FAILED][1], login.n[T_PAY][1] + login.n[T_PAY_FAILED][1], 0.01,
                "login-outage canary payments");
    for (int t = 0; t < T_N; t++) /* stable untouched: its failures stay rare */
        if (t == T_ERR || t == T_PAY_FAILED)
            cr_assert(all.n[t][0] < all.n[T_REQ][0] / 20, "stable type %d", t);
    tally_free(&all), tally_free(&pay), tally_free(&login);
}

Test(simgen, fleet_drop_lowers_both_cohorts_alike)
{
    tally_t before, after;
    run(CD_SIM_FLEET_DROP, 6, 0, 240, &before);
    run(CD_SIM_FLEET_DROP, 6, 240, 480, &after);
    for (int c = 0; c < 2; c++) {
        double ratio = (double)after.n[T_REQ][c] / (double)before.n[T_REQ][c];
        cr_assert(ratio > 0.27 && ratio < 0.33, "cohort %d: %g", c, ratio);
    }
    tally_free(&before), tally_free(&after);
}

Test(simgen, every_scenario_emits_the_documented_shape)
{
    /* 20 s around onset of every scenario, every line parsed with jansson. */
    for (int sc = 0; sc < CD_SIM__COUNT; sc++) {
        cd_sim_conf_t c;
        char err[256];
        cd_sim_conf_init(&c);
        c.scenario = (cd_sim_scenario_t)sc;
        cd_sim_t *sim = cd_sim_new(&c, err, sizeof err);
        cr_assert_not_null(sim);
        tally_t t = {.first_audit_sec = -1};
        for (int s = 230; s < 250; s++) {
            t.sec = START + s * 1000LL;
            cr_assert(cd_sim_second(sim, t.sec, shape_cb, &t) > 0);
        }
        /* The canary of canary-absent never talks; every other one does
         * before onset (canary-crash stops at 240 s). */
        cr_assert(t.n[T_REQ][0] > 0);
        cr_assert((t.n[T_REQ][1] > 0) == (sc != CD_SIM_CANARY_ABSENT), "%s",
                  cd_sim_scenario_name((cd_sim_scenario_t)sc));
        tally_free(&t);
        cd_sim_destroy(sim);
    }
}

Test(simgen, exact_first_line)
{
    /* Pins the format: a change here changes every scenario's input. */
    buf_t b = second_of(CD_SIM_HEALTHY, 1, 0, buf_cb);
    char *nl = strchr(b.s, '\n');
    *nl = '\0';
    cr_assert_str_eq(
        b.s, "{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":\"2026-11-27T12:00:00.000Z\","
             "\"cohort\":\"stable\",\"service\":\"checkout\",\"version\":\"2.4.3\","
             "\"request_id\":\"s-0000000020\",\"data\":{\"latency_ms\":24.1,\"route\":"
             "\"/api/products\",\"status\":200}}");
    free(b.s);
}

/* --pay-success / --pay-success-after (issue 10's 98 -> 90 % and 96.5 %
 * streams): the canary's failed share follows them exactly at the edges
 * (1.0 publishes no failure at all) and within 4.5 sd in between; out of
 * range is refused. */
Test(simgen, payment_success_overrides)
{
    cd_sim_conf_t conf;
    char err[256];
    cd_sim_conf_init(&conf);
    conf.scenario = CD_SIM_PAYMENT_DROP;
    conf.pay_success = 1.0;        /* before the onset (4m): no canary failure */
    conf.pay_success_after = 0.90; /* after it: 10 % */
    cd_sim_t *sim = cd_sim_new(&conf, err, sizeof err);
    cr_assert_not_null(sim, "%s", err);
    tally_t before, after;
    memset(&before, 0, sizeof before);
    memset(&after, 0, sizeof after);
    for (int s = 0; s < 840; s++) {
        tally_t *t = s < 240 ? &before : &after;
        t->sec = START + s * 1000LL;
        cr_assert(cd_sim_second(sim, t->sec, count_cb, t) >= 0);
    }
    cd_sim_destroy(sim);
    cr_assert_eq(before.n[T_PAY_FAILED][1], 0);
    cr_assert_gt(before.n[T_PAY][1], 100);
    long n = after.n[T_PAY][1] + after.n[T_PAY_FAILED][1];
    assert_prop(after.n[T_PAY_FAILED][1], n, 0.10, "payment-drop canary after 0.90");
    n = after.n[T_PAY][0] + after.n[T_PAY_FAILED][0];
    assert_prop(after.n[T_PAY_FAILED][0], n, 0.01, "stable untouched");
    tally_free(&before), tally_free(&after);

    conf.scenario = CD_SIM_PAYMENT_96;
    conf.pay_success = 0.965;
    conf.pay_success_after = 0;
    sim = cd_sim_new(&conf, err, sizeof err);
    cr_assert_not_null(sim, "%s", err);
    tally_t p;
    memset(&p, 0, sizeof p);
    for (int s = 0; s < 1200; s++) {
        p.sec = START + s * 1000LL;
        cr_assert(cd_sim_second(sim, p.sec, count_cb, &p) >= 0);
    }
    cd_sim_destroy(sim);
    n = p.n[T_PAY][1] + p.n[T_PAY_FAILED][1];
    assert_prop(p.n[T_PAY_FAILED][1], n, 0.035, "payment-96 canary at 0.965");
    tally_free(&p);

    conf.pay_success = 1.5;
    cr_assert_null(cd_sim_new(&conf, err, sizeof err));
    cr_assert_str_eq(err, "payment success 1.5 / 0 is outside the accepted range [0, 1]");
}

/* The bytes of a stream, pinned: FNV-1a 64 of every line and its '\n', as
 * `canaryd generate` writes them, computed from the output of the
 * snprintf-based formatter this file's lines were written with before the
 * hand-written one (agent/source/simgen.c, "formatting"). A change to any
 * digit, rounding of latency_ms ("%.1f"), padding or order fails here. */
typedef struct fnv {
    uint64_t h;
    size_t bytes, lines;
} fnv_t;

static void fnv_add(fnv_t *f, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        f->h ^= (unsigned char)s[i];
        f->h *= 0x100000001b3ull;
    }
    f->bytes += n;
}

static void fnv_line(const char *line, size_t len, int64_t ts, void *opaque)
{
    (void)ts;
    fnv_t *f = opaque;
    fnv_add(f, line, len);
    fnv_add(f, "\n", 1);
    f->lines++;
}

static fnv_t stream_hash(cd_sim_scenario_t scen, uint64_t seed, double rate, int64_t onset_ms,
                         int seconds)
{
    cd_sim_conf_t c;
    cd_sim_conf_init(&c);
    c.scenario = scen;
    c.seed = seed;
    if (rate > 0) c.rate = rate;
    if (onset_ms >= 0) c.onset_ms = onset_ms;
    char err[256];
    cd_sim_t *sim = cd_sim_new(&c, err, sizeof err);
    cr_assert_not_null(sim, "%s", err);
    fnv_t f = {.h = 0xcbf29ce484222325ull};
    for (int s = 0; s < seconds; s++)
        cr_assert_geq(cd_sim_second(sim, c.start_ms + s * 1000LL, fnv_line, &f), 0);
    cd_sim_destroy(sim);
    return f;
}

Test(simgen, stream_bytes_pinned)
{
    /* canaryd generate --scenario healthy --seed 1 --duration 2m --rate 600 */
    fnv_t a = stream_hash(CD_SIM_HEALTHY, 1, 600, -1, 120);
    cr_assert_eq(a.lines, 83658);
    cr_assert_eq(a.bytes, 18504042);
    cr_assert_eq(a.h, 0x186033bd212b9cbdull, "hash %#llx", (unsigned long long)a.h);
    /* canaryd generate --scenario latency-regression --seed 7 --duration 6m --onset 1m */
    fnv_t b = stream_hash(CD_SIM_LATENCY_REGRESSION, 7, 0, 60000, 360);
    cr_assert_eq(b.lines, 166967);
    cr_assert_eq(b.bytes, 36922221);
    cr_assert_eq(b.h, 0x5dc945445bc48e7bull, "hash %#llx", (unsigned long long)b.h);
}
