/*
 * bench_onset.c - how close to 5 minutes can a `for: 5m` rule roll back
 * without ever rolling back before it? A Monte Carlo of the change-point
 * decision of config/sop.json's error-rate rule (issue 10, item 7).
 *
 *   build/release/bench_onset [TRIALS] [SEED] [CONFIG]
 *                                  (default 2000, 1, config/sop.json)
 *   BENCH_ONSET_ENGINE=K           also replays the first K trials through
 *                                  the real engine (default 50, 0 = off)
 *
 * What. Each trial draws one synthetic canary stream per second: Poisson(30)
 * requests a second (600/s, canary 5 %), each failing with 1 % before the
 * onset at 4m and 3 % after (the `error-regression` scenario's numbers;
 * drawn as independent Poisson bad and good counts, which is the same
 * distribution as Poisson trials thinned by a Bernoulli), and the stable
 * fleet's Poisson(570) requests at 1 %. Every second `now` from `for` on
 * (no onset inside the data can be `for` old earlier), the error-rate
 * rule's evidence is rebuilt exactly as rules/evidence.c and evidence_seq.c
 * build it, from the rule as CONFIG loads it: the threshold B =
 * max(factor x stable over the window, floor), the detection CUSUM of
 * cd_stats_bernoulli_llr increments at h0 x B against h1 x B over the last
 * window + for (cd_stats_cusum), the breach (S >= llr, end statistic < llr,
 * enough samples), and the onset CUSUM at onset_h0 x B' against h1 x B'
 * (B' from stable over window + for). A rule fires at the first breaching
 * second with now - onset >= for (the engine's comparison, rules/engine.c
 * step_rule); the delay is now - 4m. The estimators compared, each given the
 * same breach so only the onset differs:
 *   margin M   the shipped estimator at onset_llr M (3 ... 6): the latest
 *              start within M nats of the best;
 *   MLE        the plain maximum-likelihood change point (onset_llr 0);
 *   Bayes a    the best-possible reference: the posterior of the change
 *              point under a uniform prior over the look-back's buckets
 *              plus "no change yet", with the true 1 % and 3 % known; the
 *              onset is the earliest bucket i with P(onset later than i) <
 *              a, so the rule fires once P(held less than `for`) < a.
 * Prints, per estimator, the delay's min, p1, p5, median (the upper median,
 * as bench_seq), p90, the share of trials early (< for) with its 95 %
 * Wilson interval (cd_stats_wilson_*), P(no early run in 20 / 40 seeds) =
 * (1 - p)^n, and P(a bench_seq run of 20 / 40 seeds meets both targets:
 * no seed early and the median within for + 10 s).
 *
 * The mirror is checked, not assumed: the first K trials' counts are also
 * written into a real cd_window_t and judged by cd_engine_eval with the
 * rule alone (its onset_llr set to each margin); the ROLLBACK's second must
 * equal the mirror's in every one, or the benchmark says so and exits 1.
 *
 * Data: each trial's per-second counts and prefix sums in one heap
 * struct, reused; the increments in static arrays of CD_SEQ_MAX_BUCKETS
 * (judge() is not reentrant: nothing here needs it). Single-threaded,
 * deterministic for a (TRIALS, SEED): xoshiro256** seeded through
 * splitmix64 from SEED and the trial index, so trial i is the same whatever
 * TRIALS is. About 12 s of CPU at the default on this machine (5-6 ms a
 * trial) plus 5 s for the engine check, both measured and printed; 10000
 * trials (early shares to +-0.1 %) take about a minute.
 *
 * Trade-off: synthetic counts instead of simgen's events: the decision
 * depends only on the per-second counts, and drawing them directly costs
 * 5 ms a trial against about 1 s a seed for bench_seq's generated,
 * decoded and windowed events, which is what makes thousands of trials
 * (early shares of a few tenths of a percent) affordable. bench_seq judges
 * the real event streams, at 20-40 seeds.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../rules/stats.h"
#include "canaryd/config.h"
#include "canaryd/engine.h"
#include "canaryd/rng.h"
#include "canaryd/window.h"

#define MAX_TRIALS 1000000
#define RATE 600.0
#define CANARY_SHARE 0.05
#define P_BEFORE 0.01
#define P_AFTER 0.03
#define ONSET_S 240              /* the scenario's onset: 4m */
#define DURATION_S 660           /* bench_seq's error case: 11m */
#define EPOCH_MS 1795780800000LL /* simgen's start, 2026-11-27T12:00:00Z */
#define Z95 1.959964

static const double MARGINS[] = {3, 3.5, 4, 4.5, 5, 6};
#define NMARGINS (int)(sizeof MARGINS / sizeof *MARGINS)
static const double ALPHAS[] = {0.02, 0.01, 0.005, 0.002};
#define NALPHAS (int)(sizeof ALPHAS / sizeof *ALPHAS)
#define NEST (NMARGINS + 1 + NALPHAS) /* margins, MLE, Bayes */
#define MLE NMARGINS

/* ---- PRNG (canaryd/rng.h, as simgen): one stream per trial ---- */

static void rng_seed(cd_rng_t *r, uint64_t seed, uint64_t trial)
{
    uint64_t x = seed;
    x = cd_splitmix64(&x) ^ (trial * 0xD1B54A32D192ED03ull);
    cd_rng_fill(r, x);
}

/* ---- one trial's counts ---- */

typedef struct trial {
    uint32_t cbad[DURATION_S], cn[DURATION_S]; /* canary errors, requests per second */
    uint32_t sbad[DURATION_S], sn[DURATION_S];
    uint64_t pcn[DURATION_S + 1], psbad[DURATION_S + 1], psn[DURATION_S + 1]; /* prefix sums */
} trial_t;

static void draw_trial(trial_t *t, uint64_t seed, uint64_t index)
{
    cd_rng_t r;
    rng_seed(&r, seed, index);
    double lc = RATE * CANARY_SHARE, ls = RATE * (1.0 - CANARY_SHARE);
    t->pcn[0] = t->psbad[0] = t->psn[0] = 0;
    for (int s = 0; s < DURATION_S; s++) {
        double q = s >= ONSET_S ? P_AFTER : P_BEFORE;
        long bad = cd_rng_poisson(&r, lc * q), good = cd_rng_poisson(&r, lc * (1.0 - q));
        t->cbad[s] = (uint32_t)bad;
        t->cn[s] = (uint32_t)(bad + good);
        bad = cd_rng_poisson(&r, ls * P_BEFORE);
        good = cd_rng_poisson(&r, ls * (1.0 - P_BEFORE));
        t->sbad[s] = (uint32_t)bad;
        t->sn[s] = (uint32_t)(bad + good);
        t->pcn[s + 1] = t->pcn[s] + t->cn[s];
        t->psbad[s + 1] = t->psbad[s] + t->sbad[s];
        t->psn[s + 1] = t->psn[s] + t->sn[s];
    }
}

/* Sum of a prefix-summed series over seconds [from, to), clipped to the data. */
static uint64_t range(const uint64_t *p, int from, int to)
{
    if (from < 0) from = 0;
    if (to > DURATION_S) to = DURATION_S;
    return to > from ? p[to] - p[from] : 0;
}

/* ---- the rule's evidence, mirrored (rules/evidence.c, evidence_seq.c) ---- */

#define Q_MIN 1e-9
#define Q_MAX (1.0 - 1e-9)

static double clampq(double q)
{
    return q < Q_MIN ? Q_MIN : q > Q_MAX ? Q_MAX : q;
}

typedef struct rule_p {
    double factor, floor, h0, h1, llr, oh0;
    int window_s, for_s, span_s;
    uint64_t min_c, min_s;
} rule_p_t;

/* factor x stable's error share over [from, to), or the floor above it. */
static double threshold(const rule_p_t *rp, const trial_t *t, int from, int to)
{
    uint64_t n = range(t->psn, from, to);
    double v = n ? (double)range(t->psbad, from, to) / (double)n : 0.0;
    double scaled = rp->factor * v;
    return scaled > rp->floor ? scaled : rp->floor;
}

/*
 * Judges one trial: delay[e] = the second (after the onset) estimator e
 * fires at, -1 if never within the trial.
 */
static void judge(const rule_p_t *rp, const trial_t *t, int delay[NEST])
{
    static double inc[CD_SEQ_MAX_BUCKETS], oinc[CD_SEQ_MAX_BUCKETS], u[CD_SEQ_MAX_BUCKETS];
    static double oracle[DURATION_S];
    double la = log(P_AFTER / P_BEFORE), lb = log((1.0 - P_AFTER) / (1.0 - P_BEFORE));
    for (int s = 0; s < DURATION_S; s++)
        oracle[s] = t->cbad[s] * la + (t->cn[s] - t->cbad[s]) * lb;
    int left = NEST;
    for (int e = 0; e < NEST; e++)
        delay[e] = -1;
    for (int now = rp->for_s; now <= DURATION_S && left > 0; now++) {
        /* eval_relative: samples over the window (the canary's clamped to
         * its start, second 0: the same sum), B from stable's window. */
        if (range(t->pcn, now - rp->window_s, now) < rp->min_c) continue;
        if (range(t->psn, now - rp->window_s, now) < rp->min_s) continue;
        double b = threshold(rp, t, now - rp->window_s, now);
        double q0 = clampq(rp->h0 * b), q1 = clampq(rp->h1 * b);
        if (q1 <= q0) q1 = q0 < Q_MAX ? fmin(Q_MAX, q0 * 1.0001 + 1e-12) : Q_MAX;
        /* evidence_seq: buckets [now - window - for, now) from the canary's
         * start (second 0), at most CD_SEQ_MAX_BUCKETS. */
        int lo = now - rp->span_s > 0 ? now - rp->span_s : 0;
        if (now - lo > CD_SEQ_MAX_BUCKETS) lo = now - CD_SEQ_MAX_BUCKETS;
        int m = now - lo;
        for (int i = 0; i < m; i++)
            inc[i] = cd_stats_bernoulli_llr(t->cbad[lo + i], t->cn[lo + i], q0, q1);
        cd_cusum_t c;
        cd_stats_cusum(inc, m, 0.0, &c);
        if (!(c.stat >= rp->llr && c.end_stat < rp->llr)) continue; /* no breach */
        /* The onset CUSUM: in-control onset_h0 x B', B' from stable over
         * the whole look-back (not clamped to the canary's start). */
        double ob = threshold(rp, t, now - rp->span_s, now);
        double oq0 = clampq(rp->oh0 * ob), oq1 = clampq(rp->h1 * ob);
        bool reest = (rp->oh0 != rp->h0 || ob != b) && oq0 < oq1;
        if (reest)
            for (int i = 0; i < m; i++)
                oinc[i] = cd_stats_bernoulli_llr(t->cbad[lo + i], t->cn[lo + i], oq0, oq1);
        for (int e = 0; e <= MLE; e++) {
            if (delay[e] >= 0) continue;
            double margin = e < NMARGINS ? MARGINS[e] : 0.0;
            /* evidence_seq: the detection's onset, replaced by the onset
             * CUSUM's when it re-estimates and finds one (the detection's
             * is computed only when needed: same answer, less time). */
            cd_cusum_t d;
            int onset = -1;
            if (reest) {
                cd_stats_cusum(oinc, m, margin, &d);
                onset = d.onset;
            }
            if (onset < 0) {
                cd_stats_cusum(inc, m, margin, &d);
                onset = d.onset;
            }
            if (onset >= 0 && now - (lo + onset) >= rp->for_s) {
                delay[e] = now - ONSET_S;
                left--;
            }
        }
        /* Bayes: U_i = oracle increments summed from i to now; posterior
         * P(onset = i) ~ exp(U_i), "no change yet" ~ exp(0). */
        double mx = 0.0, acc = 0.0;
        for (int i = m - 1; i >= 0; i--) {
            acc += oracle[lo + i];
            u[i] = acc;
            if (acc > mx) mx = acc;
        }
        double tot = exp(-mx);
        for (int i = 0; i < m; i++)
            tot += exp(u[i] - mx);
        /* The rule fires once P(onset later than now - for) < a. */
        int cut = now - rp->for_s - lo; /* index of the bucket `for` ago */
        double later = exp(-mx);
        for (int i = m - 1; i > cut && i >= 0; i--)
            later += exp(u[i] - mx);
        for (int a = 0; a < NALPHAS; a++) {
            int e = MLE + 1 + a;
            if (delay[e] >= 0 || !(later / tot < ALPHAS[a])) continue;
            delay[e] = now - ONSET_S;
            left--;
        }
    }
}

/* ---- the engine itself, on the same counts ---- */

typedef struct fired {
    int64_t ms;
} fired_t;

static void on_record(const cd_verdict_t *v, void *opaque)
{
    fired_t *f = opaque;
    if (v->record == CD_RECORD_VERDICT && v->verdict == CD_VERDICT_ROLLBACK && f->ms == 0)
        f->ms = v->time_ms;
}

/* The second after the onset cd_engine_eval rolls back at with rule r (its
 * onset_llr = margin), -1 if never; -2 on a setup error (printed). */
static int engine_delay(const cd_config_t *cfg, const cd_rule_conf_t *r, double margin,
                        const trial_t *t)
{
    char err[256];
    cd_rule_conf_t rule = *r;
    rule.seq_onset_llr = margin;
    cd_engine_conf_t ec = {.rules = &rule, .nrules = 1, .release = ""};
    ec.ntypes = cfg->decode.ntypes;
    for (int i = 0; i < ec.ntypes; i++)
        ec.type_names[i] = cfg->type_names[i];
    cd_window_conf_t wc = {.nmetrics = cfg->decode.ntypes,
                           .resolution_ms = 1000,
                           .span_ms = (DURATION_S + 60) * 1000LL,
                           .ahead_ms = 1000,
                           .nstripes = 1};
    cd_window_t *w = cd_window_new(&wc, err, sizeof err);
    cd_engine_t *e = w ? cd_engine_new(&ec, err, sizeof err) : NULL;
    if (!e) {
        fprintf(stderr, "bench_onset: engine check: %s\n", err);
        cd_window_destroy(w);
        return -2;
    }
    int num = r->signal.num[0], den = r->signal.den[0];
    fired_t f = {0};
    for (int s = 0; s < DURATION_S && f.ms == 0; s++) {
        int64_t ts = EPOCH_MS + s * 1000LL;
        cd_window_set_clock(w, ts + 1000);
        cd_window_add(w, 0, num, CD_COHORT_CANARY, ts, t->cbad[s]);
        cd_window_add(w, 0, den, CD_COHORT_CANARY, ts, t->cn[s]);
        cd_window_add(w, 0, num, CD_COHORT_STABLE, ts, t->sbad[s]);
        cd_window_add(w, 0, den, CD_COHORT_STABLE, ts, t->sn[s]);
        cd_engine_eval(e, w, ts + 1000, on_record, &f);
    }
    cd_engine_destroy(e);
    cd_window_destroy(w);
    return f.ms ? (int)((f.ms - EPOCH_MS) / 1000) - ONSET_S : -1;
}

/* ---- report ---- */

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void fmt_s(int s, char *buf, size_t size)
{
    if (s < 0)
        snprintf(buf, size, "none");
    else
        snprintf(buf, size, "%dm%02ds", s / 60, s % 60);
}

/* P(a run of n seeds meets both targets): no seed early or missed, and the
 * upper median (sorted[n/2], bench_seq's) within limit, i.e. at least
 * n/2 + 1 of the n seeds in [for, limit]: a binomial tail over the seeds
 * in time (share g) and late (share l). */
static double p_targets(int n, double g, double l)
{
    double p = 0.0;
    for (int k = n / 2 + 1; k <= n; k++) {
        double c = exp(lgamma(n + 1.0) - lgamma(k + 1.0) - lgamma(n - k + 1.0));
        p += c * pow(g, k) * pow(l, n - k);
    }
    return p;
}

static void report(const char *name, int *d, int n, int for_s)
{
    qsort(d, (size_t)n, sizeof *d, cmp_int);
    int none = 0;
    while (none < n && d[none] < 0)
        none++;
    int *f = d + none, nf = n - none; /* fired, ascending */
    int early = 0, in_time = 0;
    for (int i = 0; i < nf; i++) {
        early += f[i] < for_s;
        in_time += f[i] >= for_s && f[i] <= for_s + 10;
    }
    char mn[16] = "-", p1[16] = "-", p5[16] = "-", med[16] = "-", p90[16] = "-";
    if (nf > 0) {
        /* nearest rank over all trials, a missed one counted as latest */
        int r1 = (n + 99) / 100 - 1, r5 = (n * 5 + 99) / 100 - 1, r90 = (n * 90 + 99) / 100 - 1;
        fmt_s(f[0], mn, sizeof mn);
        fmt_s(r1 < nf ? f[r1] : -1, p1, sizeof p1);
        fmt_s(r5 < nf ? f[r5] : -1, p5, sizeof p5);
        fmt_s(n / 2 < nf ? f[n / 2] : -1, med, sizeof med);
        fmt_s(r90 < nf ? f[r90] : -1, p90, sizeof p90);
    }
    double p = (double)early / n;
    double lo = cd_stats_wilson_lower((uint64_t)early, (uint64_t)n, Z95);
    double hi = cd_stats_wilson_upper((uint64_t)early, (uint64_t)n, Z95);
    double g = (double)in_time / n, l = (double)(nf - early - in_time) / n;
    char note[48];
    snprintf(note, sizeof note, " %d not rolled back in %ds", none, DURATION_S - ONSET_S);
    printf("| %-11s | %s | %s | %s | %s | %s | %5.2f %% [%.2f, %.2f] | %.3f | %.3f | %.3f | %.3f |"
           "%s\n",
           name, mn, p1, p5, med, p90, 100.0 * p, 100.0 * lo, 100.0 * hi, pow(1.0 - p, 20),
           pow(1.0 - p, 40), p_targets(20, g, l), p_targets(40, g, l), none ? note : "");
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int trials = argc > 1 ? atoi(argv[1]) : 2000;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    const char *path = argc > 3 ? argv[3] : CANARYD_SOURCE_DIR "/config/sop.json";
    const char *ek = getenv("BENCH_ONSET_ENGINE");
    int check = ek ? atoi(ek) : 50;
    if (trials < 1 || trials > MAX_TRIALS || check < 0) {
        fprintf(stderr, "usage: bench_onset [TRIALS 1..%d] [SEED] [CONFIG]\n", MAX_TRIALS);
        return 2;
    }
    if (check > trials) check = trials;
    cd_diag_t diag;
    cd_diag_init(&diag);
    cd_config_t *cfg = cd_config_load(path, &diag);
    if (!cfg) {
        fprintf(stderr, "bench_onset: %s: %s", path, diag.text);
        return 2;
    }
    const cd_rule_conf_t *r = NULL;
    for (int i = 0; i < cfg->nrules; i++)
        if (strcmp(cfg->rules[i].name, "error-rate") == 0) r = &cfg->rules[i];
    if (!r || r->kind != CD_RULE_RELATIVE || !r->sequential || r->signal.nnum != 1 ||
        r->signal.nden != 1 || !(r->op == CD_OP_GT || r->op == CD_OP_GE) ||
        cfg->resolution_ms != 1000 || r->window_ms % 1000 || r->for_ms % 1000) {
        fprintf(stderr,
                "bench_onset: %s: no sequential relative rule \"error-rate\" with one "
                "numerator and one denominator type, op > or >=, whole-second window "
                "and for, 1s resolution\n",
                path);
        cd_config_free(cfg);
        return 2;
    }
    rule_p_t rp = {.factor = r->factor,
                   .floor = r->floor,
                   .h0 = r->seq_h0,
                   .h1 = r->seq_h1,
                   .llr = r->seq_llr,
                   .oh0 = r->seq_onset_h0 > 0.0 ? r->seq_onset_h0 : r->seq_h0,
                   .window_s = (int)(r->window_ms / 1000),
                   .for_s = (int)(r->for_ms / 1000),
                   .min_c = r->min_samples_canary ? r->min_samples_canary : 1,
                   .min_s = r->min_samples_stable ? r->min_samples_stable : 1};
    rp.span_s = rp.window_s + rp.for_s;

    char la[64] = "?";
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (!fgets(la, sizeof la, lf)) snprintf(la, sizeof la, "?");
        la[strcspn(la, "\n")] = 0;
        fclose(lf);
    }
    printf("bench_onset: %d trials, seed %llu, %s rule error-rate: for %ds, window %ds, "
           "h0 %g h1 %g llr %g onset_h0 %g onset_llr %g (shipped); canary Poisson(%.0f)/s, "
           "%.0f %% -> %.0f %% at %dm; load average %s\n\n",
           trials, (unsigned long long)seed, path, rp.for_s, rp.window_s, rp.h0, rp.h1, rp.llr,
           rp.oh0, r->seq_onset_llr, RATE * CANARY_SHARE, 100 * P_BEFORE, 100 * P_AFTER,
           ONSET_S / 60, la);

    int *delay = malloc(sizeof(int) * (size_t)NEST * (size_t)trials);
    trial_t *t = malloc(sizeof *t);
    if (!delay || !t) {
        fprintf(stderr, "bench_onset: out of memory\n");
        return 2;
    }
    double c0 = cpu_s();
    int mismatches = 0, compared = 0;
    double ecpu = 0.0;
    for (int i = 0; i < trials; i++) {
        int d[NEST];
        draw_trial(t, seed, (uint64_t)i);
        judge(&rp, t, d);
        for (int e = 0; e < NEST; e++)
            delay[(size_t)e * (size_t)trials + (size_t)i] = d[e];
        if (i >= check) continue;
        double e0 = cpu_s();
        for (int k = 0; k < NMARGINS; k++) {
            int got = engine_delay(cfg, r, MARGINS[k], t);
            if (got == -2) return 2;
            compared++;
            if (got != d[k]) {
                mismatches++;
                fprintf(stderr,
                        "bench_onset: trial %d, margin %g: the engine rolls back at +%ds, the "
                        "mirror at +%ds\n",
                        i, MARGINS[k], got, d[k]);
            }
        }
        ecpu += cpu_s() - e0;
    }
    double mirror_cpu = cpu_s() - c0 - ecpu;

    printf("| estimator   | min | p1 | p5 | median | p90 | early (< %ds) [95 %%] | "
           "P(no early, 20) | P(no early, 40) | P(targets, 20) | P(targets, 40) |\n",
           rp.for_s);
    printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int e = 0; e < NEST; e++) {
        char name[32];
        if (e < NMARGINS)
            snprintf(name, sizeof name, "margin %g%s", MARGINS[e],
                     MARGINS[e] == r->seq_onset_llr ? "*" : "");
        else if (e == MLE)
            snprintf(name, sizeof name, "MLE");
        else
            snprintf(name, sizeof name, "Bayes %g", ALPHAS[e - MLE - 1]);
        report(name, delay + (size_t)e * (size_t)trials, trials, rp.for_s);
    }
    printf("\n* the shipped onset_llr. Delays after the onset; median = the upper median, as "
           "bench_seq; P(targets, n) = P(an n-seed run has no seed before %ds and a median "
           "<= %ds).\n",
           rp.for_s, rp.for_s + 10);
    printf("mirror vs cd_engine_eval: %d of %d (trial, margin) rollback seconds equal "
           "(first %d trials)\n",
           compared - mismatches, compared, check);
    printf("cpu: %.1f s mirror (%.1f ms a trial), %.1f s engine check\n", mirror_cpu,
           1000.0 * mirror_cpu / trials, ecpu);
    free(delay);
    free(t);
    cd_config_free(cfg);
    return mismatches ? 1 : 0;
}
