/*
 * simgen.h - a deterministic, realistic generator of EventBus events for a
 * canary and a stable fleet (the input of demos, scenario tests and
 * benchmarks).
 *
 * Model, per cohort and per second of event time (fleet rate R requests/s,
 * canary share s; the canary sees R*s, stable R*(1-s)):
 *   REQUEST_COMPLETED  Poisson(R*share), latency lognormal (median 40 ms,
 *                      p99 200 ms); each request fails with p_err (1 %), and
 *                      a failed request also publishes an ERROR_OCCURRED;
 *   USER_LOGIN[_FAILED]   Poisson(0.05*R*share), failed with p_login_fail (5 %);
 *   PAYMENT_COMPLETED / PAYMENT_FAILED  Poisson(0.10*R*share), failed with
 *                      p_pay_fail (1 %);
 *   AUDIT_LOG_FAILED   only in the audit-failure scenario.
 * Timestamps are uniform (whole ms) within the second and emitted sorted.
 * A scenario changes parameters from onset (optionally for effect_ms only),
 * see cd_sim_scenario_t.
 *
 * Determinism: the events of a second are a pure function of the conf and
 * of the second's index since start_ms (the PRNG is reseeded per second
 * from seed and that index), so cd_sim_second() gives the same lines for the
 * same second whatever was generated before or after: a live simulator can
 * call it with wall-clock seconds, tests can regenerate any second.
 *
 * Pure: no I/O, no clock. A cd_sim_t is not thread-safe (it owns a scratch
 * buffer); use one per thread.
 */
#ifndef CANARYD_SIMGEN_H
#define CANARYD_SIMGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum cd_sim_scenario {
    CD_SIM_HEALTHY = 0,
    CD_SIM_ERROR_REGRESSION, /* canary p_err x3 from onset */
    CD_SIM_ERROR_BLIP,       /* canary p_err x3 for effect_ms (default 3m) */
    CD_SIM_PAYMENT_DROP,     /* canary payment success 99 % -> 85 % */
    CD_SIM_PAYMENT_96,       /* canary payment success 96 % throughout */
    CD_SIM_PAYMENT_SPARSE,   /* both cohorts pay at 0.05 % of R; canary success 50 % after onset */
    CD_SIM_LOGIN_SPIKE_CANARY, /* canary login failures 5 % -> 40 % */
    CD_SIM_LOGIN_SPIKE_FLEET,  /* both cohorts' login failures 5 % -> 40 % */
    CD_SIM_AUDIT_FAILURE, /* CD_SIM_AUDIT_BURST AUDIT_LOG_FAILED in the canary's onset second */
    CD_SIM_LATENCY_REGRESSION, /* canary latency x3 */
    CD_SIM_HANDLER_FLATLINE,   /* canary stops publishing USER_LOGIN */
    CD_SIM_CANARY_CRASH,       /* the canary publishes nothing from onset (its pods died) */
    CD_SIM_CANARY_OUTAGE,      /* every canary request, payment and login fails from onset */
    CD_SIM_PAYMENT_OUTAGE,     /* every canary payment fails from onset */
    CD_SIM_LOGIN_OUTAGE,       /* every canary login fails from onset */
    CD_SIM_FLEET_DROP,         /* both cohorts' traffic falls to 30 % from onset */
    CD_SIM_CANARY_ABSENT,      /* the canary never publishes anything: stable only */
    CD_SIM__COUNT
} cd_sim_scenario_t;

#define CD_SIM_AUDIT_BURST 5
#define CD_SIM_BLIP_DEFAULT_MS (3 * 60 * 1000)

/* "healthy", "error-regression", ... (the CLI's --scenario names). */
const char *cd_sim_scenario_name(cd_sim_scenario_t s);
/* Name -> scenario; false if unknown. */
bool cd_sim_scenario_parse(const char *name, cd_sim_scenario_t *out);
/* Every scenario name into buf, each after a space, or (per_line > 0) after
 * "\n  " every per_line names, as the commands' usage and errors list them;
 * returns what snprintf would (the length, whether or not it fit). */
int cd_sim_scenario_names(char *buf, size_t size, int per_line);

typedef struct cd_sim_conf {
    uint64_t seed;    /* default 1 */
    int64_t start_ms; /* epoch ms of the first second; default 2026-11-27T12:00:00Z */
    cd_sim_scenario_t scenario;
    int64_t onset_ms;    /* effect start, from start_ms; default 4m */
    int64_t effect_ms;   /* effect length; 0 = until the end (error-blip: 0 means 3m) */
    double rate;         /* fleet requests per second; default 400 */
    double canary_share; /* in (0, 1); default 0.05 */
    /* Canary payment success, [0, 1]; 0 = the scenario's own. payment-drop:
     * before the onset (0.99) and after it (0.85); payment-96: throughout
     * (pay_success, 0.96). Ignored by the other scenarios. */
    double pay_success, pay_success_after;
} cd_sim_conf_t;

/* Fills the defaults above (scenario healthy). */
void cd_sim_conf_init(cd_sim_conf_t *conf);

typedef struct cd_sim cd_sim_t;

/*
 * Validates and copies conf. Returns NULL with a message in errbuf on a bad
 * value (rate not in (0, 1e6], share not in (0, 1), negative times, start
 * not a whole second). Free with cd_sim_destroy(). Any thread.
 */
cd_sim_t *cd_sim_new(const cd_sim_conf_t *conf, char *errbuf, size_t errsize);
void cd_sim_destroy(cd_sim_t *sim);

/*
 * Receives one event line: JSON without newline, len bytes, NUL-terminated
 * (line[len] == 0). Borrowed: valid only during the call. ts_ms is the
 * event's timestamp.
 */
typedef void (*cd_sim_emit_cb)(const char *line, size_t len, int64_t ts_ms, void *opaque);

/*
 * Emits every event of the second starting at second_start_ms (a whole
 * second, >= start_ms) in timestamp order through cb, synchronously.
 * Returns the number of events emitted, or -1 if second_start_ms is not a
 * whole second at or after start_ms, or on allocation failure (nothing is
 * emitted then). Calls on one sim must not overlap.
 */
long cd_sim_second(cd_sim_t *sim, int64_t second_start_ms, cd_sim_emit_cb cb, void *opaque);

#endif
