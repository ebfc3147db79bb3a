/*
 * cli_generate.c - `canaryd generate`: writes simulated EventBus events as
 * JSONL on stdout (demo input, scenario suite, benchmarks).
 *
 *   canaryd generate --scenario NAME [--seed N] [--start RFC3339]
 *       [--duration D] [--onset D] [--effect D] [--rate R] [--canary-share F]
 *       [--garbage F] [--disorder D] [--scenario-file FILE]
 *       [--pay-success F] [--pay-success-after F]
 *
 * Options apply in command-line order, so flags after --scenario-file
 * override the file. The events come from simgen (pure); this file adds the
 * two transport faults a real stream has:
 *  - garbage: after each good line, with probability F, one bad line, the
 *    kinds taken in turn (truncated JSON, event_type a number, no timestamp,
 *    unparsable timestamp, unknown cohort, invalid UTF-8, a NUL byte, a 100 KB
 *    line, 5000-deep nesting). Every bad line is rejected whatever the
 *    reader's line limit, so it never changes a verdict;
 *  - disorder D: each event gets a seeded delay in [0, D) and events leave in
 *    (timestamp + delay) order, timestamps unchanged, so an event arrives at
 *    most D late relative to any later-stamped one. Events are buffered for a
 *    second at a time: everything drawn so far whose key is before the next
 *    second's start can no longer be overtaken.
 * Both faults draw from their own PRNG streams, so the good events are the
 * same with and without them: a scenario's verdicts must not change.
 *
 * Exit status: 0 done, 1 write error, 2 usage or settings error.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canaryd/simgen.h"
#include "canaryd/timeutil.h"
#include "cli.h"

#define GARBAGE_KINDS 9
#define LONG_LINE_BYTES (100 * 1024)
#define DEEP_NESTING 5000

typedef struct gen_opts {
    cd_sim_conf_t sim;
    bool have_scenario;
    int64_t duration_ms;
    double garbage;
    int64_t disorder_ms;
} gen_opts_t;

typedef struct pending {
    int64_t key; /* timestamp + delay */
    uint64_t seq;
    int64_t ts;
    size_t len;
    char *line;
} pending_t;

typedef struct gen_ctx {
    const gen_opts_t *o;
    uint64_t garbage_rng, disorder_rng;
    unsigned garbage_next; /* which kind comes next */
    pending_t *pend;
    size_t npend, cap;
    uint64_t seq;
    char *scratch; /* LONG_LINE_BYTES + slack, for the long and deep lines */
    int failed;    /* allocation failure */
} gen_ctx_t;

static void usage(FILE *f)
{
    fprintf(f, "usage: canaryd generate --scenario NAME [--seed N] [--start RFC3339]\n"
               "         [--duration D] [--onset D] [--effect D] [--rate R] [--canary-share F]\n"
               "         [--garbage F] [--disorder D] [--scenario-file FILE]\n"
               "         [--pay-success F] [--pay-success-after F]\n"
               "Writes simulated events (JSONL) to stdout. Defaults: --seed 1 --start\n"
               "2026-11-27T12:00:00Z --duration 18m --onset 4m --effect 0s (until the end;\n"
               "error-blip: 3m) --rate 400 --canary-share 0.05 --garbage 0 --disorder 0s.\n"
               "--scenario-file reads the same settings from a JSON object (keys scenario,\n"
               "seed, start, duration, onset, effect, rate, canary_share, garbage, disorder,\n"
               "pay_success, pay_success_after; description, expect and config are ignored).\n"
               "Later options override earlier ones. --pay-success: the canary's payment\n"
               "success (payment-drop: before the onset, default 0.99; payment-96: throughout,\n"
               "default 0.96); --pay-success-after: payment-drop's after the onset (default\n"
               "0.85).\n"
               "Exit: 0 done, 1 write error or out of memory, 2 usage or settings error.\n"
               "Scenarios:");
    char names[1024];
    cd_sim_scenario_names(names, sizeof(names), 6);
    fprintf(f, "%s\n", names);
}

/* splitmix64 as a small PRNG for the fault streams. */
static uint64_t sm64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double sm64_uniform(uint64_t *x)
{
    return (double)(sm64(x) >> 11) * 0x1.0p-53;
}

/* ---- settings: one setter per key, shared by flags and the file ---- */

static int set_setting(gen_opts_t *o, const char *key, const char *val, char *err, size_t esz)
{
    char *end = NULL;
    errno = 0;
    if (strcmp(key, "scenario") == 0) {
        if (!cd_sim_scenario_parse(val, &o->sim.scenario)) {
            int n = snprintf(err, esz, "scenario: \"%s\" is not a scenario; accepted:", val);
            if (n > 0 && (size_t)n < esz) cd_sim_scenario_names(err + n, esz - (size_t)n, 0);
            return -1;
        }
        o->have_scenario = true;
    } else if (strcmp(key, "seed") == 0) {
        unsigned long long v = strtoull(val, &end, 10);
        if (errno || end == val || *end || val[0] == '-') goto bad_int;
        o->sim.seed = v;
    } else if (strcmp(key, "start") == 0) {
        int64_t ms;
        if (!cd_time_parse_rfc3339(val, strlen(val), &ms) || ms % 1000 != 0 || ms < 0) {
            snprintf(err, esz,
                     "start: \"%s\" is not accepted; accepted: an RFC 3339 time on a "
                     "whole second, such as 2026-11-27T12:00:00Z",
                     val);
            return -1;
        }
        o->sim.start_ms = ms;
    } else if (strcmp(key, "duration") == 0 || strcmp(key, "onset") == 0 ||
               strcmp(key, "effect") == 0 || strcmp(key, "disorder") == 0) {
        int64_t ms;
        if (!cd_duration_parse(val, &ms)) {
            snprintf(err, esz,
                     "%s: \"%s\" is not a duration; accepted: such as \"250ms\", "
                     "\"30s\", \"5m\", \"1h30m\"",
                     key, val);
            return -1;
        }
        if (strcmp(key, "duration") == 0)
            o->duration_ms = ms;
        else if (strcmp(key, "onset") == 0)
            o->sim.onset_ms = ms;
        else if (strcmp(key, "effect") == 0)
            o->sim.effect_ms = ms;
        else
            o->disorder_ms = ms;
    } else if (strcmp(key, "pay_success") == 0 || strcmp(key, "pay_success_after") == 0) {
        double v = strtod(val, &end);
        if (errno || end == val || *end || !(v > 0.0 && v <= 1.0)) {
            snprintf(err, esz, "%s: \"%s\" is not accepted; accepted: a number in (0, 1]", key,
                     val);
            return -1;
        }
        if (strcmp(key, "pay_success") == 0)
            o->sim.pay_success = v;
        else
            o->sim.pay_success_after = v;
    } else if (strcmp(key, "rate") == 0 || strcmp(key, "canary_share") == 0 ||
               strcmp(key, "garbage") == 0) {
        double v = strtod(val, &end);
        if (errno || end == val || *end) {
            snprintf(err, esz, "%s: \"%s\" is not a number", key, val);
            return -1;
        }
        if (strcmp(key, "rate") == 0)
            o->sim.rate = v;
        else if (strcmp(key, "canary_share") == 0)
            o->sim.canary_share = v;
        else if (!(v >= 0.0 && v <= 1.0)) {
            snprintf(err, esz, "garbage: %s is outside the accepted range [0, 1]", val);
            return -1;
        } else
            o->garbage = v;
    } else {
        snprintf(err, esz, "unknown setting \"%s\"", key);
        return -1;
    }
    return 0;
bad_int:
    snprintf(err, esz, "%s: \"%s\" is not a non-negative integer", key, val);
    return -1;
}

static int load_file(gen_opts_t *o, const char *path, char *err, size_t esz)
{
    static const char *const known[] = {"scenario", "seed",     "start",       "duration",
                                        "onset",    "effect",   "rate",        "canary_share",
                                        "garbage",  "disorder", "description", "expect",
                                        "config", "pay_success", "pay_success_after"};
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    const char *key;
    json_t *val;
    int rc = -1;
    if (!root) {
        if (jerr.line > 0)
            snprintf(err, esz, "%s: line %d, column %d: %s", path, jerr.line, jerr.column,
                     jerr.text);
        else
            snprintf(err, esz, "%s", jerr.text); /* jansson names the file and errno */
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(err, esz, "%s: the top level is not a JSON object", path);
        goto out;
    }
    json_object_foreach(root, key, val)
    {
        size_t k;
        for (k = 0; k < sizeof known / sizeof *known; k++)
            if (strcmp(key, known[k]) == 0) break;
        if (k == sizeof known / sizeof *known) {
            snprintf(err, esz,
                     "%s: unknown key \"%s\"; known keys: scenario, seed, start, "
                     "duration, onset, effect, rate, canary_share, garbage, disorder, "
                     "description, expect, config, pay_success, pay_success_after",
                     path, key);
            goto out;
        }
        /* the scenario suite's own keys: what to expect, which config judges */
        if (strcmp(key, "description") == 0 || strcmp(key, "expect") == 0 ||
            strcmp(key, "config") == 0)
            continue;
        char buf[64], sub[400];
        if (json_is_string(val))
            snprintf(buf, sizeof buf, "%s", json_string_value(val));
        else if (json_is_integer(val) &&
                 (strcmp(key, "duration") == 0 || strcmp(key, "onset") == 0 ||
                  strcmp(key, "effect") == 0 || strcmp(key, "disorder") == 0))
            snprintf(buf, sizeof buf, "%lldms", (long long)json_integer_value(val));
        else if (json_is_integer(val))
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(val));
        else if (json_is_real(val))
            snprintf(buf, sizeof buf, "%.17g", json_real_value(val));
        else {
            snprintf(err, esz, "%s: %s: not a string or a number", path, key);
            goto out;
        }
        if (set_setting(o, key, buf, sub, sizeof sub) < 0) {
            snprintf(err, esz, "%s: %s", path, sub);
            goto out;
        }
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* ---- output ---- */

static void put_line(const char *line, size_t len)
{
    fwrite(line, 1, len, stdout);
    putc('\n', stdout);
}

/* Writes one bad line of the next kind; good/len/ts: the line it follows. */
static void put_garbage(gen_ctx_t *g, const char *good, size_t len, int64_t ts)
{
    char tbuf[40], b[512];
    int n = 0;
    cd_time_format(ts, tbuf, sizeof tbuf);
    switch (g->garbage_next++ % GARBAGE_KINDS) {
    case 0: /* truncated JSON: the first half of a good line */
        put_line(good, len / 2);
        return;
    case 1:
        n = snprintf(b, sizeof b,
                     "{\"event_type\":42,\"timestamp\":\"%s\",\"cohort\":\"canary\","
                     "\"version\":\"2.5.0\"}",
                     tbuf);
        break;
    case 2:
        n = snprintf(b, sizeof b,
                     "{\"event_type\":\"REQUEST_COMPLETED\",\"cohort\":\"canary\","
                     "\"version\":\"2.5.0\",\"data\":{\"latency_ms\":40.0}}");
        break;
    case 3:
        n = snprintf(b, sizeof b,
                     "{\"event_type\":\"ERROR_OCCURRED\",\"timestamp\":\"27/11/2026 "
                     "12:00:03\",\"cohort\":\"canary\",\"version\":\"2.5.0\"}");
        break;
    case 4:
        n = snprintf(b, sizeof b,
                     "{\"event_type\":\"ERROR_OCCURRED\",\"timestamp\":\"%s\","
                     "\"cohort\":\"blue\",\"version\":\"2.5.0\"}",
                     tbuf);
        break;
    case 5: /* \xff is never valid in UTF-8 */
        n = snprintf(b, sizeof b,
                     "{\"event_type\":\"ERROR_OCCURRED\",\"timestamp\":\"%s\","
                     "\"cohort\":\"canary\",\"service\":\"check\xff\xfeout\"}",
                     tbuf);
        break;
    case 6: /* a NUL inside the payload */
        n = snprintf(b, sizeof b,
                     "{\"event_type\":\"ERROR_OCCURRED\",\"timestamp\":\"%s\","
                     "\"cohort\":\"canary\",\"service\":\"check@out\"}",
                     tbuf);
        *strchr(b, '@') = '\0';
        break;
    case 7: { /* 100 KB, and no event type: bad even under a larger line limit */
        char *s = g->scratch;
        size_t head = (size_t)sprintf(s, "{\"padding\":\"");
        memset(s + head, 'x', LONG_LINE_BYTES);
        memcpy(s + head + LONG_LINE_BYTES, "\"}", 2);
        put_line(s, head + LONG_LINE_BYTES + 2);
        return;
    }
    case 8:
        memset(g->scratch, '[', DEEP_NESTING);
        memset(g->scratch + DEEP_NESTING, ']', DEEP_NESTING);
        put_line(g->scratch, 2 * DEEP_NESTING);
        return;
    }
    put_line(b, (size_t)n);
}

static void put_event(gen_ctx_t *g, const char *line, size_t len, int64_t ts)
{
    put_line(line, len);
    if (g->o->garbage > 0.0 && sm64_uniform(&g->garbage_rng) < g->o->garbage)
        put_garbage(g, line, len, ts);
}

static void on_event(const char *line, size_t len, int64_t ts, void *opaque)
{
    gen_ctx_t *g = opaque;
    if (g->o->disorder_ms <= 0) {
        put_event(g, line, len, ts);
        return;
    }
    if (g->npend == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 4096;
        pending_t *p = realloc(g->pend, cap * sizeof *p);
        if (!p) {
            g->failed = 1;
            return;
        }
        g->pend = p;
        g->cap = cap;
    }
    pending_t *p = &g->pend[g->npend];
    p->line = malloc(len + 1);
    if (!p->line) {
        g->failed = 1;
        return;
    }
    memcpy(p->line, line, len + 1);
    p->len = len;
    p->ts = ts;
    p->seq = g->seq++;
    p->key = ts + (int64_t)(sm64(&g->disorder_rng) % (uint64_t)g->o->disorder_ms);
    g->npend++;
}

static int pend_cmp(const void *a, const void *b)
{
    const pending_t *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Emits, in key order, the buffered events whose key is before `before`. */
static void flush_pending(gen_ctx_t *g, int64_t before)
{
    qsort(g->pend, g->npend, sizeof *g->pend, pend_cmp);
    size_t i = 0;
    for (; i < g->npend && g->pend[i].key < before; i++) {
        put_event(g, g->pend[i].line, g->pend[i].len, g->pend[i].ts);
        free(g->pend[i].line);
    }
    memmove(g->pend, g->pend + i, (g->npend - i) * sizeof *g->pend);
    g->npend -= i;
}

int cd_cli_generate(int argc, char **argv)
{
    static const struct option longopts[] = {{"scenario", required_argument, NULL, 'S'},
                                             {"seed", required_argument, NULL, 's'},
                                             {"start", required_argument, NULL, 'b'},
                                             {"duration", required_argument, NULL, 'd'},
                                             {"onset", required_argument, NULL, 'o'},
                                             {"effect", required_argument, NULL, 'e'},
                                             {"rate", required_argument, NULL, 'r'},
                                             {"canary-share", required_argument, NULL, 'c'},
                                             {"garbage", required_argument, NULL, 'g'},
                                             {"disorder", required_argument, NULL, 'D'},
                                             {"scenario-file", required_argument, NULL, 'f'},
                                             {"pay-success", required_argument, NULL, 'P'},
                                             {"pay-success-after", required_argument, NULL, 'A'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    static const char *const keys[128] = {
        ['S'] = "scenario", ['s'] = "seed",    ['b'] = "start", ['d'] = "duration",
        ['o'] = "onset",    ['e'] = "effect",  ['r'] = "rate",  ['c'] = "canary_share",
        ['g'] = "garbage",  ['D'] = "disorder", ['P'] = "pay_success",
        ['A'] = "pay_success_after"};
    gen_opts_t o = {.duration_ms = 18 * 60 * 1000};
    gen_ctx_t g = {.o = &o};
    cd_sim_t *sim = NULL;
    char err[1024];
    int opt, rc = 2;
    static char outbuf[1 << 20];

    cd_sim_conf_init(&o.sim);
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (opt == 'h') {
            usage(stdout);
            return 0;
        }
        if (opt == '?') {
            fprintf(stderr, "canaryd generate: unknown option or missing value: %s\n",
                    argv[optind - 1]);
            usage(stderr);
            return 2;
        }
        int r = opt == 'f' ? load_file(&o, optarg, err, sizeof err)
                           : set_setting(&o, keys[opt], optarg, err, sizeof err);
        if (r < 0) {
            fprintf(stderr, "canaryd generate: %s\n", err);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "canaryd generate: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!o.have_scenario) {
        fprintf(stderr, "canaryd generate: --scenario (or a scenario file) is required\n");
        usage(stderr);
        return 2;
    }
    sim = cd_sim_new(&o.sim, err, sizeof err);
    if (!sim) {
        fprintf(stderr, "canaryd generate: %s\n", err);
        return 2;
    }
    g.garbage_rng = o.sim.seed ^ 0x6A09E667F3BCC909ull;
    g.disorder_rng = o.sim.seed ^ 0xBB67AE8584CAA73Bull;
    g.scratch = malloc(LONG_LINE_BYTES + 64);
    if (!g.scratch) goto oom;
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);

    rc = 1;
    int64_t end = o.sim.start_ms + o.duration_ms;
    for (int64_t sec = o.sim.start_ms; sec < end; sec += 1000) {
        if (cd_sim_second(sim, sec, on_event, &g) < 0 || g.failed) goto oom;
        if (o.disorder_ms > 0) flush_pending(&g, sec + 1000);
        if (ferror(stdout)) break;
    }
    if (o.disorder_ms > 0) flush_pending(&g, INT64_MAX);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "canaryd generate: writing stdout: %s\n", strerror(errno));
        goto out;
    }
    rc = 0;
    goto out;
oom:
    fprintf(stderr, "canaryd generate: out of memory\n");
    rc = 1;
out:
    for (size_t i = 0; i < g.npend; i++)
        free(g.pend[i].line);
    free(g.pend);
    free(g.scratch);
    cd_sim_destroy(sim);
    return rc;
}
