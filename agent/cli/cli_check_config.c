/*
 * cli_check_config.c - `canaryd check-config [--quiet] FILE`: loads a config
 * the way the agent would and either prints a summary a release engineer can
 * read against the deployment procedure (exit 0), or every problem, one per
 * line, under "FILE: N problem(s):" on stderr (exit 2). Usage errors exit 2.
 *
 * The summary restates each rule as a sentence ("fires when canary
 * ERROR_OCCURRED / REQUEST_COMPLETED > 2 x stable's, and above 0.002") so a
 * reviewer checks meaning, not JSON. It is derived only from the parsed
 * cd_config_t, so it shows what canaryd understood, defaults included.
 *
 * Warnings (stderr, exit status still 0, printed with --quiet too): a rule
 * set whose every rule can be judged with no canary data at all (counts with
 * no canary minimum, stable-scoped thresholds) passes a canary that sends
 * nothing; only verdicts.min_canary_events then stands between it and
 * HEALTHY / PROMOTE.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "canaryd/config.h"
#include "canaryd/coord.h"
#include "canaryd/dispatcher.h"
#include "canaryd/http_api.h"
#include "canaryd/kafka_source.h"
#include "canaryd/timeutil.h"
#include "cli.h"

static const char USAGE[] = "usage: canaryd check-config [--quiet] FILE\n"
                            "  Validates FILE; prints a summary (exit 0) or every problem "
                            "(exit 2).\n";

static const char *dur(int64_t ms, char *buf, size_t size)
{
    return cd_duration_format(ms, buf, size);
}

/* "A", or "(A + B)" when paren and there are several. */
static void type_sum(const cd_config_t *c, const int *ids, int n, const char *sep, bool paren,
                     char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    if (paren && n > 1) len += (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? sep : "",
                                ids[i] >= 0 ? c->type_names[ids[i]] : "?");
    if (paren && n > 1 && len < size) snprintf(buf + len, size - len, ")");
}

/* "A / (B + C)", or "A count" with no denominator. */
static void signal_text(const cd_config_t *c, const cd_signal_t *s, char *buf, size_t size)
{
    char num[600], den[600];
    type_sum(c, s->num, s->nnum, " + ", s->nden > 0, num, sizeof(num));
    if (s->nden == 0) {
        snprintf(buf, size, "%s count", num);
        return;
    }
    type_sum(c, s->den, s->nden, " + ", true, den, sizeof(den));
    snprintf(buf, size, "%s / %s", num, den);
}

static void condition_text(const cd_config_t *c, const cd_rule_conf_t *r, char *buf, size_t size)
{
    char sig[1300], types[600], d[32];
    static const char *const SCOPE[] = {"canary", "stable", "canary or stable"};
    const char *op = cd_op_name(r->op);

    switch (r->kind) {
    case CD_RULE_THRESHOLD: {
        signal_text(c, &r->signal, sig, sizeof(sig));
        int n =
            snprintf(buf, size, "fires when %s %s %s %g", SCOPE[r->scope], sig, op, r->threshold);
        if (r->z > 0 && n > 0 && (size_t)n < size)
            snprintf(buf + n, size - (size_t)n, ", judged on its Wilson score bound at z %g", r->z);
        break;
    }
    case CD_RULE_RELATIVE: {
        signal_text(c, &r->signal, sig, sizeof(sig));
        int n = r->floor > 0 ? snprintf(buf, size, "fires when canary %s %s max(%g x stable's, %g)",
                                        sig, op, r->factor, r->floor)
                             : snprintf(buf, size, "fires when canary %s %s %g x stable's", sig, op,
                                        r->factor);
        if (r->has_baseline && n > 0 && (size_t)n < size)
            snprintf(buf + n, size - (size_t)n,
                     "; stable = baseline %g while stable has fewer than %llu samples", r->baseline,
                     (unsigned long long)r->min_samples_stable);
        break;
    }
    case CD_RULE_SPIKE:
        signal_text(c, &r->signal, sig, sizeof(sig));
        snprintf(buf, size,
                 "fires when canary %s >= %g x stable's with Fisher's exact one-sided p <= %.2g "
                 "(z %g); alert instead when stable spikes too against its previous %s",
                 sig, r->factor, 0.5 * erfc(r->z / sqrt(2.0)), r->z,
                 dur(r->reference_ms, d, sizeof(d)));
        break;
    case CD_RULE_FLATLINE:
        type_sum(c, r->flat_types, r->nflat, " or ", false, types, sizeof(types));
        type_sum(c, r->signal.den, r->signal.nden, " + ", true, sig, sizeof(sig));
        snprintf(buf, size,
                 "fires when canary %s drops to <= %g x the count stable's rate per %s "
                 "predicts, once at least %g are expected",
                 types, r->max_ratio, sig, r->min_expected);
        break;
    case CD_RULE_SILENCE:
        type_sum(c, r->signal.num, r->signal.nnum, " + ", true, sig, sizeof(sig));
        snprintf(buf, size,
                 "fires when canary %s falls to <= %g x what its share of the previous %s "
                 "predicts from stable's traffic, once at least %g are expected",
                 sig, r->max_ratio, dur(r->reference_ms, d, sizeof(d)), r->min_expected);
        break;
    case CD_RULE_PERCENTILE: {
        const char *f = c->numeric_names[r->hist];
        double q = r->quantile * 100;
        if (r->floor > 0)
            snprintf(buf, size, "fires when canary p%g of %s %s max(%g x stable's p%g, %g)", q, f,
                     op, r->factor, q, r->floor);
        else
            snprintf(buf, size, "fires when canary p%g of %s %s %g x stable's p%g", q, f, op,
                     r->factor, q);
        break;
    }
    }
}

static void print_summary(FILE *out, const char *file, const cd_config_t *c)
{
    char a[32], b[32], e[32], f[32], cond[2048];

    fprintf(out, "%s: OK, %d rule%s\n", file, c->nrules, c->nrules == 1 ? "" : "s");
    fprintf(out, "catalog (%d type%s):", c->decode.ntypes, c->decode.ntypes == 1 ? "" : "s");
    for (int i = 0; i < c->decode.ntypes; i++)
        fprintf(out, "%s %s", i ? "," : "", c->type_names[i]);
    fprintf(out, "\nnumeric fields:");
    for (int i = 0; i < c->decode.nnumeric; i++)
        fprintf(out, "%s %s = %s", i ? "," : "", c->numeric_names[i], c->numeric_paths[i]);
    fprintf(out, "%s\n", c->decode.nnumeric ? "" : " none");
    /* only when set: without it nothing changed from before (every event) */
    if (c->service[0])
        fprintf(out,
                "service: %s (events.service: events of other services, or naming none in %s, "
                "are counted and not judged)\n",
                c->service, c->decode.service_path);
    fprintf(out, "windows: resolution %s, allowed lateness %s, max future skew %s, slack %s\n",
            dur(c->resolution_ms, a, sizeof(a)), dur(c->allowed_lateness_ms, b, sizeof(b)),
            dur(c->max_future_skew_ms, e, sizeof(e)), dur(c->slack_ms, f, sizeof(f)));
    fprintf(out, "verdicts: promote after %s, alert repeat %s, eval every %s\n",
            dur(c->promote_after_ms, a, sizeof(a)), dur(c->alert_repeat_ms, b, sizeof(b)),
            dur(c->eval_interval_ms, e, sizeof(e)));
    if (c->min_canary_events > 0)
        fprintf(out, "canary evidence: HEALTHY and PROMOTE need %llu canary events in %s\n",
                (unsigned long long)c->min_canary_events, dur(c->promote_after_ms, a, sizeof(a)));
    else
        fprintf(out, "canary evidence: not checked (verdicts.min_canary_events 0)\n");
    fprintf(out, "baseline: %s\n", c->baseline_file[0] ? c->baseline_file : "none");
    fprintf(out, "rules:\n");
    for (int i = 0; i < c->nrules; i++) {
        const cd_rule_conf_t *r = &c->rules[i];
        fprintf(out,
                "  %s: %s, %s%s, window %s, for %s, resolve for %s, min samples canary %llu "
                "stable %llu",
                r->name, cd_rule_kind_name(r->kind), cd_action_name(r->action),
                r->dry_run ? " (dry run)" : r->guard ? " (guard)" : "", dur(r->window_ms, a, sizeof(a)),
                dur(r->for_ms, b, sizeof(b)), dur(r->resolve_for_ms, e, sizeof(e)),
                (unsigned long long)r->min_samples_canary,
                (unsigned long long)r->min_samples_stable);
        if (r->hysteresis > 0) fprintf(out, ", hysteresis %g", r->hysteresis);
        fputc('\n', out);
        condition_text(c, r, cond, sizeof(cond));
        fprintf(out, "    %s\n", cond);
        if (r->sequential)
            fprintf(out,
                    "    sequential: CUSUM of the canary's bad share, in control %g x and tested "
                    "%g x the threshold's, llr %g (on average at least %.0f buckets between false "
                    "crossings at the in-control share); for counted from the estimated onset "
                    "(margin %g, in control %g x there)\n",
                    r->seq_h0, r->seq_h1, r->seq_llr, exp(r->seq_llr), r->seq_onset_llr,
                    r->seq_onset_h0 > 0 ? r->seq_onset_h0 : r->seq_h0);
    }
}

/* Warns when every rule that counts can be judged on zero canary events;
 * returns the number of warning lines. */
static int warn_no_canary_data(FILE *err, const char *file, const cd_config_t *c)
{
    /* Dry-run and guard rules never hold a release in ANALYZING, so they
     * cannot stop a silent canary from passing. */
    for (int i = 0; i < c->nrules; i++) {
        const cd_rule_conf_t *r = &c->rules[i];
        if (!r->dry_run && !r->guard && !cd_rule_judged_without_canary(r)) return 0;
    }
    char d[32];
    fprintf(err,
            "%s: warning: the rules can pass with no canary data (each is a count with "
            "min_samples.canary 0, a threshold scoped to stable / any, a guard or a dry run)",
            file);
    if (c->min_canary_events > 0)
        fprintf(err,
                "; only verdicts.min_canary_events (%llu in %s) keeps a canary that sends "
                "nothing from HEALTHY and PROMOTE. Add a rule that needs canary samples (a "
                "ratio, or min_samples.canary)\n",
                (unsigned long long)c->min_canary_events,
                dur(c->promote_after_ms, d, sizeof(d)));
    else
        fprintf(err,
                "; with verdicts.min_canary_events 0 a canary that sends nothing is HEALTHY at "
                "the first evaluation and PROMOTE after %s. Set verdicts.min_canary_events above "
                "0, or add a rule that needs canary samples\n",
                dur(c->promote_after_ms, d, sizeof(d)));
    return 1;
}

static void print_problems(FILE *err, const char *file, const cd_diag_t *d)
{
    int shown = 0;
    fprintf(err, "%s: %d problem%s:\n", file, d->count, d->count == 1 ? "" : "s");
    for (const char *s = d->text; *s;) {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        fprintf(err, "  %.*s\n", (int)n, s);
        shown++;
        s += n + (nl ? 1 : 0);
    }
    if (shown < d->count) fprintf(err, "  ... and %d more not shown\n", d->count - shown);
}

int cd_cli_check_config(int argc, char **argv)
{
    const char *file = NULL;
    bool quiet = false, opts = true;
    int i = 1;

    /* argv[0] is the subcommand; accept main's argv unchanged too. */
    if (argc > 1 && strcmp(argv[1], "check-config") == 0) i = 2;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (opts && strcmp(a, "--") == 0) {
            opts = false;
        } else if (opts && (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0)) {
            quiet = true;
        } else if (opts && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            fputs(USAGE, stdout);
            fflush(stdout);
            return 0;
        } else if (opts && a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "canaryd check-config: unknown option %s\n%s", a, USAGE);
            return 2;
        } else if (file) {
            fprintf(stderr, "canaryd check-config: one FILE only (got %s and %s)\n%s", file, a,
                    USAGE);
            return 2;
        } else {
            file = a;
        }
    }
    if (!file) {
        fprintf(stderr, "canaryd check-config: FILE missing\n%s", USAGE);
        return 2;
    }

    cd_diag_t *d = malloc(sizeof(*d));
    if (!d) {
        fprintf(stderr, "canaryd check-config: out of memory\n");
        return 2;
    }
    cd_config_t *c = cd_config_load(file, d);
    int rc = 0;
    size_t mod_from = d->len; /* modules' lines start here (positioned below) */
    /* The sinks section is checked by the dispatcher (sinks/dispatcher.c),
     * which builds each sink and frees it without sending anything. */
    int sink_problems = c ? cd_dispatcher_check(c, d) : 0;
    /* The http section is parsed by the HTTP API (agent/config/config_http.c). */
    cd_http_conf_t hc;
    if (c && !cd_http_conf_parse(c, &hc, d)) sink_problems++;
    /* The coordination section (agent/config/config_coord.c). */
    cd_coord_conf_t cc;
    if (c && !cd_coord_conf_parse(c, &cc, d)) sink_problems++;
    /* The kafka section is parsed by its module (agent/config/config_kafka.c). */
    cd_kafka_conf_t *kc = c ? malloc(sizeof(*kc)) : NULL;
    if (c && (!kc || !cd_kafka_conf_parse(c, kc, d))) {
        if (!kc) cd_diag_add(d, "out of memory");
        sink_problems++;
    }
    free(kc);
    /* A YAML file's modules' lines get their line and column too. */
    cd_config_locate(c, d, mod_from);
    if (c && sink_problems > 0) {
        cd_config_free(c);
        c = NULL;
    }
    if (!c) {
        print_problems(stderr, file, d);
        rc = 2;
    } else {
        if (!quiet) print_summary(stdout, file, c);
        warn_no_canary_data(stderr, file, c);
    }
    fflush(stdout);
    fflush(stderr);
    cd_config_free(c);
    free(d);
    return rc;
}
