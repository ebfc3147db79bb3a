/*
 * bench_seq.c - how soon config/sop.json rolls back, and how often it does
 * so wrongly, over many seeds of generated SOP streams (issue 10, item 7).
 *
 *   build/release/bench_seq [SEEDS] [CONFIG]      (default 20, config/sop.json)
 *
 * Streams: `canaryd generate` traffic (simgen) at 600 requests/s, canary 5 %,
 * onset at 4m, seeds 1..SEEDS, each judged in process exactly as replay
 * would (bench/sop_run.h):
 *   payment 98 -> 90 %   payment-drop --pay-success 0.98 --pay-success-after 0.90, 10m
 *   error 1 -> 3 %       error-regression (canary error rate x3 at 4m), 11m
 *   payment 96.5 %       payment-96 --pay-success 0.965, 18m        (must never roll back)
 *   healthy              healthy, 18m                               (must never roll back)
 *   error blip 3m        error-blip (x3 for 3 minutes), 18m         (must never roll back)
 * Each case runs twice: with the config as it is ("sequential") and with the
 * sequential test turned off on every rule, payment-success getting back the
 * Wilson bound z = 1.645 it had before ("fixed window"), so the two are
 * compared on the same streams in the same run.
 *
 * Prints, per case and mode, the detection delays after the onset (min,
 * median, p90, max, and each seed's), the ROLLBACKs of the streams that
 * must not roll back, and checks the targets: payment median <= 90 s,
 * error-rate never before 5m and within 5m10s (the median; how many seeds
 * are later is printed), no false ROLLBACK. Exit 0 when the sequential mode meets every
 * target, 1 otherwise.
 * BENCH_SEQ_CASES=TEXT runs only the cases whose name contains TEXT, and
 * BENCH_SEQ_FIXED=0 skips the fixed-window runs (both for tuning).
 * BENCH_SEQ_ONSET_LLR=3,4,5 runs the sequential mode once per margin, with
 * the error-rate rule's sequential.onset_llr set to it in the loaded config
 * (no temporary config files): the onset sweep of docs/config.md is
 *   BENCH_SEQ_CASES=error BENCH_SEQ_FIXED=0 BENCH_SEQ_ONSET_LLR=3,3.5,4,4.5,5,6 \
 *     build/release/bench_seq 40
 * (bench_onset gives the same trade-off over thousands of synthetic trials).
 * Single-threaded; about 1 s of CPU per seed, case and mode on this machine.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sop_run.h"

#define MAX_SEEDS 1000
#define MIN_MS (60 * 1000LL)

typedef struct bcase {
    const char *name;
    cd_sim_scenario_t scen;
    double pay, pay_after;
    int64_t duration_ms;
    const char *want_rule; /* NULL: must not roll back */
} bcase_t;

static const bcase_t CASES[] = {
    {"payment 98 -> 90 %", CD_SIM_PAYMENT_DROP, 0.98, 0.90, 10 * MIN_MS, "payment-success"},
    {"error rate 1 -> 3 %", CD_SIM_ERROR_REGRESSION, 0, 0, 11 * MIN_MS, "error-rate"},
    {"payment 96.5 %", CD_SIM_PAYMENT_96, 0.965, 0, 18 * MIN_MS, NULL},
    {"healthy", CD_SIM_HEALTHY, 0, 0, 18 * MIN_MS, NULL},
    {"error blip 3m", CD_SIM_ERROR_BLIP, 0, 0, 18 * MIN_MS, NULL},
};
#define NCASES (int)(sizeof CASES / sizeof *CASES)

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void fmt_delay(int64_t ms, char *buf, size_t size)
{
    if (ms < 0)
        snprintf(buf, size, "none");
    else
        snprintf(buf, size, "%lldm%02llds", (long long)(ms / 60000), (long long)(ms / 1000 % 60));
}

/* Turns the sequential test off on every rule: the fixed-window baseline. */
static void fixed_window(cd_config_t *c)
{
    for (int i = 0; i < c->nrules; i++) {
        cd_rule_conf_t *r = &c->rules[i];
        if (!r->sequential) continue;
        r->sequential = false;
        if (r->kind == CD_RULE_THRESHOLD) r->z = 1.645;
    }
}

/* Sets the error-rate rule's onset margin; false when there is no such
 * sequential rule (the sweep would measure nothing). */
static bool set_onset_llr(cd_config_t *c, double margin)
{
    for (int i = 0; i < c->nrules; i++) {
        cd_rule_conf_t *r = &c->rules[i];
        if (strcmp(r->name, "error-rate") != 0 || !r->sequential) continue;
        r->seq_onset_llr = margin;
        return true;
    }
    return false;
}

#define MAX_MARGINS 16

/* BENCH_SEQ_ONSET_LLR: comma-separated margins >= 0, at most MAX_MARGINS.
 * Returns how many, 0 when unset, -1 (printed) when malformed. */
static int parse_margins(const char *text, double *out)
{
    if (!text || !*text) return 0;
    int n = 0;
    const char *p = text;
    for (;;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !(v >= 0.0) || !isfinite(v) || n == MAX_MARGINS ||
            (*end != ',' && *end != 0)) {
            fprintf(stderr,
                    "bench_seq: BENCH_SEQ_ONSET_LLR \"%s\": expected up to %d comma-separated "
                    "margins in nats, each >= 0 (e.g. 3,4,5)\n",
                    text, MAX_MARGINS);
            return -1;
        }
        out[n++] = v;
        if (*end == 0) return n;
        p = end + 1;
    }
}

/* The sequential mode's error-rate case, for the margin sweep's summary. */
typedef struct err_sum {
    bool run;
    int64_t min, med, p90, max; /* delays after the onset, ms */
    int early, late, missed, n; /* seeds before 5m, after 5m10s, not rolled back; of n */
} err_sum_t;

/* Runs every selected case over seeds 1..seeds with cfg[0] (sequential)
 * and, when modes is 2, cfg[1] (fixed window); prints the results and
 * fills *sum. Returns 1 when the sequential mode meets every target, 0 when
 * not, -1 on an error (printed). */
static int run_cases(cd_config_t *const cfg[2], int seeds, int modes, const char *only,
                     err_sum_t *sum)
{
    static const char *const MODE[2] = {"sequential", "fixed window"};
    bool ok = true;
    char err[256], a[48], b[48], c2[48], e[48];

    for (int ci = 0; ci < NCASES; ci++) {
        const bcase_t *bc = &CASES[ci];
        if (only && !strstr(bc->name, only)) continue;
        for (int m = 0; m < modes; m++) {
            int64_t delays[MAX_SEEDS];
            int nd = 0, rollbacks = 0, wrong_rule = 0;
            char worst[800] = "";
            for (int s = 1; s <= seeds; s++) {
                cd_sim_conf_t sc;
                cd_sim_conf_init(&sc);
                sc.seed = (uint64_t)s;
                sc.scenario = bc->scen;
                sc.rate = 600;
                sc.pay_success = bc->pay;
                sc.pay_success_after = bc->pay_after;
                sop_run_t r;
                if (sop_run(cfg[m], &sc, bc->duration_ms, &r, err, sizeof err) < 0) {
                    fprintf(stderr, "bench_seq: %s\n", err);
                    return -1;
                }
                rollbacks += r.rollbacks > 0;
                if (r.rollbacks && bc->want_rule && strcmp(r.rule, bc->want_rule) != 0)
                    wrong_rule++;
                if (r.rollbacks && !worst[0])
                    snprintf(worst, sizeof worst, "seed %d, %s: %s", s, r.rule, r.reason);
                delays[nd++] = r.rollbacks ? r.rollback_ms - sc.start_ms - sc.onset_ms : -1;
            }
            printf("\n%-20s %-12s ", bc->name, MODE[m]);
            if (!bc->want_rule) {
                printf("ROLLBACK in %d of %d seeds\n", rollbacks, seeds);
                if (rollbacks) printf("  first: %s\n", worst);
                if (m == 0 && rollbacks) ok = false;
                continue;
            }
            int64_t sorted[MAX_SEEDS];
            memcpy(sorted, delays, sizeof(int64_t) * (size_t)nd);
            qsort(sorted, (size_t)nd, sizeof *sorted, cmp64);
            int missed = 0;
            while (missed < nd && sorted[missed] < 0)
                missed++;
            int n = nd - missed;
            if (n > 0) {
                fmt_delay(sorted[missed], a, sizeof a);
                fmt_delay(sorted[missed + n / 2], b, sizeof b); /* upper median */
                fmt_delay(sorted[missed + (n * 9) / 10 < nd ? missed + (n * 9) / 10 : nd - 1], c2,
                          sizeof c2);
                fmt_delay(sorted[nd - 1], e, sizeof e);
                printf("delay after onset: min %s, median %s, p90 %s, max %s", a, b, c2, e);
            }
            printf("; not rolled back in %d, by another rule in %d\n  by seed:", missed,
                   wrong_rule);
            for (int i = 0; i < nd; i++) {
                fmt_delay(delays[i], a, sizeof a);
                printf(" %s", a);
            }
            printf("\n");
            if (m == 0 && n > 0) printf("  seed 1's reason: %s\n", worst);
            if (m != 0) continue;
            if (missed || wrong_rule) ok = false;
            int64_t med = n ? sorted[missed + n / 2] : -1;
            if (bc->scen == CD_SIM_PAYMENT_DROP) {
                bool met = n > 0 && med <= 90000;
                printf("  target median <= 90 s: %s\n", met ? "met" : "NOT met");
                ok &= met;
            }
            if (bc->scen == CD_SIM_ERROR_REGRESSION) {
                int late = 0, before = 0;
                for (int i = missed; i < nd; i++) {
                    late += sorted[i] > 5 * MIN_MS + 10000;
                    before += sorted[i] < 5 * MIN_MS;
                }
                if (n > 0)
                    *sum = (err_sum_t){
                        true,
                        sorted[missed],
                        med,
                        sorted[missed + (n * 9) / 10 < nd ? missed + (n * 9) / 10 : nd - 1],
                        sorted[nd - 1],
                        before,
                        late,
                        missed,
                        nd};
                bool early = n == 0 || sorted[missed] < 5 * MIN_MS;
                bool med_ok = n > 0 && med <= 5 * MIN_MS + 10000;
                printf("  target never before 5m: %s; within 5m10s: median %s, %d of %d seeds "
                       "later\n",
                       early ? "NOT met" : "met", med_ok ? "met" : "NOT met", late, nd);
                /* The target is the median (issue 10: "within 5m10s" of a
                 * distribution whose tail is the change point's own
                 * uncertainty); the seeds later than 5m10s are printed. */
                ok &= !early && med_ok;
            }
        }
    }
    return ok;
}

int main(int argc, char **argv)
{
    int seeds = argc > 1 ? atoi(argv[1]) : 20;
    const char *path = argc > 2 ? argv[2] : CANARYD_SOURCE_DIR "/config/sop.json";
    if (seeds < 1 || seeds > MAX_SEEDS) {
        fprintf(stderr, "usage: bench_seq [SEEDS 1..%d] [CONFIG]\n", MAX_SEEDS);
        return 2;
    }
    cd_diag_t d;
    cd_diag_init(&d);
    cd_config_t *cfg[2] = {cd_config_load(path, &d), NULL};
    if (cfg[0]) cfg[1] = cd_config_load(path, &d);
    if (!cfg[0] || !cfg[1]) {
        fprintf(stderr, "bench_seq: %s: %s", path, d.text);
        return 2;
    }
    fixed_window(cfg[1]);
    double margins[MAX_MARGINS];
    int nmargins = parse_margins(getenv("BENCH_SEQ_ONSET_LLR"), margins);
    if (nmargins < 0) return 2;
    if (nmargins > 0 && !set_onset_llr(cfg[0], margins[0])) {
        fprintf(stderr,
                "bench_seq: BENCH_SEQ_ONSET_LLR: %s has no sequential rule "
                "\"error-rate\"\n",
                path);
        return 2;
    }
    /* BENCH_SEQ_CASES=substring: only the cases whose name contains it;
     * BENCH_SEQ_FIXED=0: skip the fixed-window runs (for tuning). */
    const char *only = getenv("BENCH_SEQ_CASES");
    const char *fx = getenv("BENCH_SEQ_FIXED");
    int modes = fx && strcmp(fx, "0") == 0 ? 1 : 2;
    printf("bench_seq: %d seeds, %s, 600 requests/s, canary 5 %%, onset 4m\n", seeds, path);
    bool ok = true;
    err_sum_t sums[MAX_MARGINS] = {{0}};
    for (int mi = 0; mi < (nmargins ? nmargins : 1); mi++) {
        if (nmargins) {
            set_onset_llr(cfg[0], margins[mi]);
            printf("\n=== error-rate onset_llr %g\n", margins[mi]);
        }
        /* The fixed window has no onset: once is enough. */
        int rc = run_cases(cfg, seeds, mi == 0 ? modes : 1, only, &sums[mi]);
        if (rc < 0) return 2;
        if (nmargins)
            printf("\ntargets at onset_llr %g: %s\n", margins[mi], rc ? "all met" : "NOT met");
        ok &= rc == 1;
    }
    if (nmargins) {
        /* The sweep in one table (docs/config.md's onset_llr section). */
        printf("\nerror rate 1 -> 3 %%, %d seeds, by error-rate onset_llr:\n\n", seeds);
        printf("| onset_llr | min | median | p90 | max | seeds before 5m | seeds after 5m10s |\n");
        printf("|---|---|---|---|---|---|---|\n");
        for (int mi = 0; mi < nmargins; mi++) {
            const err_sum_t *u = &sums[mi];
            if (!u->run) continue;
            char a[48], b[48], c[48], e[48];
            fmt_delay(u->min, a, sizeof a);
            fmt_delay(u->med, b, sizeof b);
            fmt_delay(u->p90, c, sizeof c);
            fmt_delay(u->max, e, sizeof e);
            printf("| %g | %s | %s | %s | %s | %d of %d | %d of %d |%s\n", margins[mi], a, b, c, e,
                   u->early, u->n, u->late, u->n, u->missed ? " (some not rolled back)" : "");
        }
    }
    printf("\ntargets (sequential): %s\n", ok ? "all met" : "NOT met");
    cd_config_free(cfg[0]);
    cd_config_free(cfg[1]);
    return ok ? 0 : 1;
}
