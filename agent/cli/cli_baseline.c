/*
 * cli_baseline.c - `canaryd baseline`: captures the baseline file that
 * relative rules fall back to (config key baseline_file, loaded by
 * config_baseline.c) from a recorded stream, typically one taken before the
 * canary starts. For every relative rule it writes the stable cohort's value
 * of the rule's signal over the last window of the stream, with the sample
 * count behind it:
 *
 *   {"captured_at": "...", "values": {"error-rate": 0.0098},
 *    "samples": {"error-rate": 22964}, "window": {"error-rate": "1m"}}
 *
 * Decoding and bad-input accounting are the pipeline's (cd_pipeline_decode
 * counts and samples every rejected line exactly as replay does), and the
 * stream's clock is replay's own (agent/source/event_clock.c): the last
 * event time is the highest accepted event time, an event more than
 * max_future_skew ahead of it is dropped as "future" (until 64 in a row,
 * when the stream has moved on), and a first event is judged against the
 * median of the first 64 (the look-ahead), so one bogus timestamp, the
 * first one included, cannot move the capture window off the data.
 *
 * Counting is our own, not the window ring's: the capture window may be
 * longer than the ring (`--window 30m`, `--window all`), and it ends where
 * the stream ends, which is known only at the end. So the stable counts of
 * the types the relative rules use are kept per resolution bucket in a ring
 * as long as the longest capture window, each bucket tagged with its bucket
 * number and recycled when a later bucket needs its slot; an event older
 * than the ring cannot fall into any capture window (they all end after
 * the newest bucket). A capture window of D is the D/resolution buckets
 * ending with the bucket of the last event: the same buckets a rule of
 * window D evaluated right after the last event would read, counted without
 * the allowed-lateness cut (every accepted event counts, however late).
 * The value is numerator / denominator exactly as the engine computes it.
 *
 * A signal without a denominator is a count, which only compares over the
 * rule's own window: such rules are always captured over it.
 *
 * The output is written to a temporary file beside --output, fsync'ed and
 * renamed, so an interrupted or failed capture never leaves a half-written
 * baseline where the agent will read it. Single-threaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../config/config_env.h"
#include "../config/config_internal.h"
#include "../source/event_clock.h"
#include "../source/linereader.h"
#include "canaryd/config.h"
#include "canaryd/log.h"
#include "canaryd/pipeline.h"
#include "canaryd/timeutil.h"
#include "cli.h"

/* Exit statuses (also in `canaryd help` and the README). */
enum { EXIT_OK = 0, EXIT_IO = 1, EXIT_USAGE = 2, EXIT_NONE_CAPTURED = 3 };

/* Longest --window: the ring holds one bucket per resolution step. */
#define MAX_WINDOW_MS (24 * 3600 * 1000LL)

typedef struct args {
    const char *config_path, *input, *output;
    const char *window; /* NULL: each rule's own; "all"; or a duration */
    size_t max_line;
} args_t;

/* Stable counts of the types relative rules use, per bucket and in total. */
typedef struct counts {
    int nslots;
    int slot_of[CD_MAX_TYPES]; /* type id -> slot, -1 when no relative rule uses it */
    int64_t res;               /* bucket length (windows.resolution) */
    int64_t nb;                /* ring buckets: the longest capture window */
    int64_t *tag;              /* [nb] bucket number held by each slot, INT64_MIN = none */
    uint64_t *ring;            /* [nb][nslots] */
    uint64_t total[CD_MAX_TYPES];
    int64_t last_bucket; /* bucket of the newest accepted event */
} counts_t;

typedef struct run_stats {
    uint64_t lines, events, stable, canary, future, late, followed;
    int64_t first_ms, last_ms;
    bool have;
} run_stats_t;

static const char USAGE[] =
    "usage: canaryd baseline --config FILE [--window D|all] [--output FILE]\n"
    "                        [--max-line BYTES] EVENTS.jsonl|-\n"
    "  Captures the stable cohort's value of every relative rule's signal from a\n"
    "  recorded stream (canary events are not counted) and writes the baseline\n"
    "  file that baseline_file loads: over each rule's own window ending at the\n"
    "  last event (--window D: the last D instead, a multiple of\n"
    "  windows.resolution up to 24h; all: the whole stream). Rules with fewer\n"
    "  stable samples than their min_samples.stable are reported and left out.\n"
    "  Writes to stdout, or atomically to --output. A summary goes to stderr.\n"
    "  exit: 0 written, 1 I/O error, 2 usage or config error, 3 no rule had\n"
    "        enough stable samples (nothing written)\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "canaryd baseline: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", USAGE);
    return EXIT_USAGE;
}

static int parse_args(args_t *a, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            fputs(USAGE, stdout);
            return EXIT_OK;
        } else if (strcmp(s, "--config") == 0 && v) {
            a->config_path = argv[++i];
        } else if (strcmp(s, "--output") == 0 && v) {
            a->output = argv[++i];
        } else if (strcmp(s, "--window") == 0 && v) {
            a->window = argv[++i];
        } else if (strcmp(s, "--max-line") == 0 && v) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-' || n == 0 || n > (1ull << 30))
                return usage_error("--max-line: \"%s\" is not accepted; accepted: bytes, "
                                   "1..1073741824",
                                   v);
            a->max_line = (size_t)n;
            i++;
        } else if (s[0] == '-' && s[1] != '\0') {
            return usage_error("unknown option or missing value: \"%s\"", s);
        } else if (!a->input) {
            a->input = s;
        } else {
            return usage_error("more than one input given (\"%s\")", s);
        }
    }
    if (!a->config_path) return usage_error("%s", "--config FILE is required");
    if (!a->input) return usage_error("%s", "no input given (a file or -)");
    return -1; /* go on */
}

/* Loads the config like cd_config_load, except that baseline_file is not
 * read: it may not exist yet, or be the stale file about to be replaced. */
static cd_config_t *load_config(const char *path, cd_diag_t *diag)
{
    /* the environment overrides the file, as for every command that loads one */
    return cd_config_load_ex(path, CD_CFG_ENV | CD_CFG_NO_BASELINE, diag);
}

/* A ratio's capture window honours --window; a count's is the rule's own. */
static int64_t capture_window(const cd_rule_conf_t *rc, int64_t window_ms)
{
    return rc->signal.nden > 0 && window_ms >= 0 ? window_ms : rc->window_ms;
}

/* Largest bucket number <= t / res (t may be negative). */
static int64_t bucket_of(int64_t t, int64_t res)
{
    int64_t q = t / res;
    return t % res != 0 && t < 0 ? q - 1 : q;
}

/* window_ms: -1 = each rule's own, 0 = all, else --window. */
static int counts_init(counts_t *k, const cd_config_t *cfg, int64_t window_ms, char *err,
                       size_t errsize)
{
    int64_t longest = 0;
    memset(k, 0, sizeof(*k));
    for (int t = 0; t < CD_MAX_TYPES; t++)
        k->slot_of[t] = -1;
    k->res = cfg->resolution_ms;
    for (int i = 0; i < cfg->nrules; i++) {
        const cd_rule_conf_t *rc = &cfg->rules[i];
        if (rc->kind != CD_RULE_RELATIVE) continue;
        const int *ids[2] = {rc->signal.num, rc->signal.den};
        int n[2] = {rc->signal.nnum, rc->signal.nden};
        for (int j = 0; j < 2; j++)
            for (int m = 0; m < n[j]; m++)
                if (k->slot_of[ids[j][m]] < 0) k->slot_of[ids[j][m]] = k->nslots++;
        int64_t d = capture_window(rc, window_ms);
        if (d > longest) longest = d;
    }
    k->nb = longest / k->res;
    if (k->nb > 0) {
        k->tag = malloc((size_t)k->nb * sizeof(*k->tag));
        k->ring = calloc((size_t)k->nb * (size_t)k->nslots, sizeof(*k->ring));
        if (!k->tag || !k->ring) {
            snprintf(err, errsize, "out of memory for %" PRId64 " buckets", k->nb);
            return -1;
        }
        for (int64_t b = 0; b < k->nb; b++)
            k->tag[b] = INT64_MIN;
    }
    k->last_bucket = INT64_MIN;
    return 0;
}

static void counts_free(counts_t *k)
{
    free(k->tag);
    free(k->ring);
}

/* Moves the newest bucket forward (any event's time). */
static void counts_clock(counts_t *k, int64_t ts)
{
    int64_t b = bucket_of(ts, k->res);
    if (b > k->last_bucket) k->last_bucket = b;
}

/* Counts one stable event of a type some relative rule uses. */
static void counts_add(counts_t *k, int type, int64_t ts)
{
    int slot = type >= 0 && type < CD_MAX_TYPES ? k->slot_of[type] : -1;
    if (slot < 0) return;
    k->total[slot]++;
    int64_t b = bucket_of(ts, k->res);
    /* Older than the ring: outside every capture window (they end after
     * last_bucket). Unsigned difference: no overflow at the extremes. */
    if (k->nb == 0 ||
        (b <= k->last_bucket && (uint64_t)k->last_bucket - (uint64_t)b >= (uint64_t)k->nb))
        return;
    int64_t i = b % k->nb;
    if (i < 0) i += k->nb;
    if (k->tag[i] != b) { /* holds a bucket at least nb older: recycle it */
        memset(&k->ring[i * k->nslots], 0, (size_t)k->nslots * sizeof(*k->ring));
        k->tag[i] = b;
    }
    k->ring[i * k->nslots + slot]++;
}

/* Sum of type's stable count over the last len_ms (0: the whole stream). */
static uint64_t counts_sum(const counts_t *k, int type, int64_t len_ms)
{
    int slot = k->slot_of[type];
    if (len_ms == 0) return k->total[slot];
    int64_t n = len_ms / k->res, from = k->last_bucket - n + 1;
    uint64_t sum = 0;
    for (int64_t i = 0; i < k->nb; i++)
        if (k->tag[i] != INT64_MIN && k->tag[i] >= from && k->tag[i] <= k->last_bucket)
            sum += k->ring[i * k->nslots + slot];
    return sum;
}

/* One line: decode (the pipeline's), clock (event_clock.c: replay's rules,
 * look-ahead included), count. */
static void take_line(cd_pipeline_t *p, cd_event_clock_t *ec, counts_t *k, run_stats_t *st,
                      cd_lr_status_t s, const char *line, size_t len, uint64_t lineno)
{
    cd_event_t ev;
    switch (cd_event_clock_take_line(ec, p, s, line, len, lineno, &ev)) {
    case CD_EC_BAD:
        return;
    case CD_EC_FUTURE:
        st->future++;
        return;
    case CD_EC_LATE:
        st->late++;
        return;
    case CD_EC_TAKE:
        break;
    }
    st->last_ms = ec->max_ts;
    if (!st->have || ev.ts_ms < st->first_ms) st->first_ms = ev.ts_ms;
    st->have = true;
    st->events++;
    counts_clock(k, ev.ts_ms);
    if (ev.cohort != CD_COHORT_STABLE) {
        st->canary++; /* a baseline is the stable fleet's */
        return;
    }
    st->stable++;
    counts_add(k, ev.type, ev.ts_ms);
}

/* Reads the stream: the look-ahead's lines, then the rest, each through
 * take_line. */
static int read_stream(const args_t *a, const cd_config_t *cfg, cd_pipeline_t *p,
                       cd_linereader_t *lr, counts_t *k, run_stats_t *st)
{
    cd_event_clock_t ec;
    cd_event_clock_init(&ec, cfg->max_future_skew_ms, cd_config_span_ms(cfg));
    cd_held_line_t *held = NULL;
    long nheld = cd_event_clock_look_ahead(&ec, lr, &cfg->decode, NULL, &held);
    if (nheld < 0) {
        cd_log(CD_LOG_ERROR, "reading %s: %s", a->input, strerror(errno));
        return EXIT_IO;
    }
    for (long i = 0; i < nheld; i++) {
        take_line(p, &ec, k, st, held[i].st, held[i].text, held[i].len, held[i].lineno);
        free(held[i].text);
    }
    free(held);
    cd_event_clock_unanchor(&ec); /* only the look-ahead's events are held to it */
    for (;;) {
        const char *line;
        size_t len;
        cd_lr_status_t s = cd_linereader_next(lr, &line, &len);
        if (s == CD_LR_EOF) break;
        if (s == CD_LR_ERROR) {
            cd_log(CD_LOG_ERROR, "reading %s: %s", a->input, strerror(errno));
            return EXIT_IO;
        }
        take_line(p, &ec, k, st, s, line, len, cd_linereader_lineno(lr));
    }
    st->followed = ec.followed;
    st->lines = cd_linereader_lineno(lr);
    return -1;
}

/* Significant digits %.Ng needs for v to read back as the same double. */
static int round_trip_digits(double v)
{
    char buf[64];
    for (int d = 1; d < 17; d++) {
        snprintf(buf, sizeof(buf), "%.*g", d, v);
        if (strtod(buf, NULL) == v) return d;
    }
    return 17;
}

/* "A" or "(A+B)" appended at *len. */
static void type_list(const cd_config_t *c, const int *ids, int n, char *buf, size_t size,
                      size_t *len)
{
    for (int i = 0; i < n && *len < size; i++) {
        int w = snprintf(buf + *len, size - *len, "%s%s%s%s", n > 1 && i == 0 ? "(" : "",
                         i ? "+" : "", c->type_names[ids[i]], n > 1 && i == n - 1 ? ")" : "");
        if (w < 0) return;
        *len += (size_t)w;
    }
}

/* "ERROR_OCCURRED/REQUEST_COMPLETED", "A/(A+B)" for the summary (as the
 * verdict reasons write signals). */
static void signal_name(const cd_config_t *c, const cd_signal_t *s, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    type_list(c, s->num, s->nnum, buf, size, &len);
    if (s->nden > 0 && len + 1 < size) {
        buf[len++] = '/';
        buf[len] = '\0';
        type_list(c, s->den, s->nden, buf, size, &len);
    }
}

/*
 * Captures every relative rule into root's objects and reports each on
 * stderr. Returns the number captured.
 */
static int capture(const cd_config_t *cfg, const counts_t *k, int64_t window_ms,
                   const run_stats_t *st, json_t *values, json_t *samples, json_t *windows,
                   int *digits)
{
    int captured = 0;
    char end[40] = "-", wtext[32], sig[512];
    if (st->have) cd_time_format((k->last_bucket + 1) * k->res, end, sizeof(end));

    for (int i = 0; i < cfg->nrules; i++) {
        const cd_rule_conf_t *rc = &cfg->rules[i];
        if (rc->kind != CD_RULE_RELATIVE) continue;
        int64_t d = capture_window(rc, window_ms);
        uint64_t num = 0, den = 0;
        for (int j = 0; j < rc->signal.nnum; j++)
            num += st->have ? counts_sum(k, rc->signal.num[j], d) : 0;
        for (int j = 0; j < rc->signal.nden; j++)
            den += st->have ? counts_sum(k, rc->signal.den[j], d) : 0;
        bool ratio = rc->signal.nden > 0;
        uint64_t n = ratio ? den : num; /* a signal's samples (rule.h) */
        /* A ratio of nothing is undefined, whatever the configured minimum. */
        uint64_t need = ratio && rc->min_samples_stable == 0 ? 1 : rc->min_samples_stable;
        if (d == 0)
            snprintf(wtext, sizeof(wtext), "all");
        else
            cd_duration_format(d, wtext, sizeof(wtext));
        signal_name(cfg, &rc->signal, sig, sizeof(sig));
        if (!ratio && window_ms >= 0 && window_ms != rc->window_ms)
            fprintf(stderr,
                    "  %s: a count (%s) compares only over the rule's own window: captured "
                    "over %s, not --window\n",
                    rc->name, sig, wtext);
        if (n < need) {
            fprintf(stderr,
                    "  %s: not captured: stable has %" PRIu64 " samples (%s) in %s%s, "
                    "needs %" PRIu64 " (min_samples.stable)\n",
                    rc->name, n, sig, d == 0 ? "the whole stream" : wtext,
                    d == 0 || !st->have ? "" : " ending at the last event", need);
            continue;
        }
        double v = ratio ? (double)num / (double)den : (double)num;
        if (json_object_set_new(values, rc->name, json_real(v)) ||
            json_object_set_new(samples, rc->name, json_integer((json_int_t)n)) ||
            json_object_set_new(windows, rc->name, json_string(wtext)))
            return -1;
        int dg = round_trip_digits(v);
        if (dg > *digits) *digits = dg;
        char frac[48];
        if (ratio)
            snprintf(frac, sizeof(frac), "%" PRIu64 "/%" PRIu64, num, den);
        else
            snprintf(frac, sizeof(frac), "%" PRIu64, num);
        fprintf(stderr, "  %s: %.6g = stable %s %s over %s%s%s (min samples %" PRIu64 ")\n",
                rc->name, v, sig, frac, d == 0 ? "the whole stream" : wtext,
                d == 0 ? "" : " ending ", d == 0 ? "" : end, rc->min_samples_stable);
        captured++;
    }
    return captured;
}

static void summary(const cd_pipeline_t *p, const run_stats_t *st)
{
    cd_pipeline_stats_t s;
    char t1[40], t2[40];
    cd_pipeline_stats(p, &s);
    fprintf(stderr,
            "canaryd baseline: %" PRIu64 " lines, %" PRIu64 " events (%" PRIu64 " stable, %" PRIu64
            " canary: not counted), %" PRIu64 " bad, %" PRIu64 " future",
            st->lines, st->events, st->stable, st->canary, s.bad_total, st->future);
    /* late: a first event far before the stream's start (event_clock.c) */
    if (st->late) fprintf(stderr, ", %" PRIu64 " late", st->late);
    /* events.service: the baseline is that service's stable fleet only */
    if (cd_pipeline_service_configured(p))
        fprintf(stderr, ", %" PRIu64 " of other services (events.service \"%s\": not counted)",
                (uint64_t)(s.other_service + s.no_service), cd_pipeline_service(p));
    fputc('\n', stderr);
    for (int r = 1; r < CD_BAD__COUNT; r++)
        if (s.bad[r])
            fprintf(stderr, "    %-22s %10" PRIu64 "\n", cd_bad_reason_name((cd_bad_reason_t)r),
                    (uint64_t)s.bad[r]);
    if (st->have)
        fprintf(stderr, "  event time: %s .. %s\n", cd_time_format(st->first_ms, t1, sizeof(t1)),
                cd_time_format(st->last_ms, t2, sizeof(t2)));
    else
        fprintf(stderr, "  event time: none\n");
}

/* Writes text to path through a temporary file in the same folder, fsync'ed
 * and renamed over path. */
static int write_atomic(const char *path, const char *text, char *err, size_t errsize)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    int fd = -1;
    if (!tmp) {
        snprintf(err, errsize, "%s: out of memory", path);
        return -1;
    }
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errsize, "%s: cannot create a temporary file beside it: %s", path,
                 strerror(errno));
        goto err;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(err, errsize, "%s: write: %s", tmp, strerror(errno));
            goto err;
        }
        off += (size_t)n;
    }
    if (fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
        snprintf(err, errsize, "%s: %s", tmp, strerror(errno));
        goto err;
    }
    if (close(fd) != 0) {
        fd = -1;
        snprintf(err, errsize, "%s: close: %s", tmp, strerror(errno));
        goto err;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        snprintf(err, errsize, "%s: rename to %s: %s", tmp, path, strerror(errno));
        goto err;
    }
    free(tmp);
    return 0;
err:
    if (fd >= 0) close(fd);
    unlink(tmp);
    free(tmp);
    return -1;
}

/* Parses --window against the config: -1 none, 0 all, else ms; -2 bad. */
static int64_t parse_window(const char *w, const cd_config_t *cfg)
{
    int64_t ms;
    if (!w) return -1;
    if (strcmp(w, "all") == 0) return 0;
    if (!cd_duration_parse(w, &ms) || ms <= 0 || ms > MAX_WINDOW_MS ||
        ms % cfg->resolution_ms != 0) {
        char res[32];
        fprintf(stderr,
                "canaryd baseline: --window: \"%s\" is not accepted; accepted: \"all\" or a "
                "duration > 0 up to 24h that is a multiple of windows.resolution (%s), such "
                "as \"1m\" or \"30m\"\n",
                w, cd_duration_format(cfg->resolution_ms, res, sizeof(res)));
        return -2;
    }
    return ms;
}

static bool has_relative_rule(const cd_config_t *cfg)
{
    for (int i = 0; i < cfg->nrules; i++)
        if (cfg->rules[i].kind == CD_RULE_RELATIVE) return true;
    return false;
}

int cd_cli_baseline(int argc, char **argv)
{
    args_t a = {.max_line = 65536};
    cd_config_t *cfg = NULL;
    cd_pipeline_t *p = NULL;
    cd_linereader_t *lr = NULL;
    cd_diag_t *diag = NULL;
    json_t *root = NULL, *values = NULL, *samples = NULL, *windows = NULL;
    char *text = NULL;
    counts_t k = {0};
    run_stats_t st = {0};
    char err[512], t[40];
    int fd = -1, rc;

    rc = parse_args(&a, argc, argv);
    if (rc >= 0) return rc;
    rc = EXIT_USAGE;
    diag = malloc(sizeof(*diag));
    if (!diag) goto oom;
    cfg = load_config(a.config_path, diag);
    if (!cfg) {
        fprintf(stderr, "canaryd baseline: config %s:\n%s", a.config_path, diag->text);
        goto out;
    }
    if (!has_relative_rule(cfg)) {
        fprintf(stderr,
                "canaryd baseline: config %s has no relative rule; a baseline holds values "
                "only for relative rules (kind \"relative\")\n",
                a.config_path);
        goto out;
    }
    int64_t window_ms = parse_window(a.window, cfg);
    if (window_ms == -2) goto out;
    if (counts_init(&k, cfg, window_ms, err, sizeof(err)) != 0) {
        fprintf(stderr, "canaryd baseline: %s\n", err);
        rc = EXIT_IO;
        goto out;
    }
    p = cd_pipeline_new(cfg, cfg->allowed_lateness_ms, 1, NULL, NULL, err, sizeof(err));
    if (!p) {
        fprintf(stderr, "canaryd baseline: %s\n", err);
        goto out; /* a config the pipeline refuses is a config error */
    }

    rc = EXIT_IO;
    fd = strcmp(a.input, "-") == 0 ? STDIN_FILENO : open(a.input, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "canaryd baseline: %s: %s\n", a.input, strerror(errno));
        goto out;
    }
    lr = cd_linereader_new(fd, a.max_line, err, sizeof(err));
    if (!lr) {
        fprintf(stderr, "canaryd baseline: %s\n", err);
        goto out;
    }
    rc = read_stream(&a, cfg, p, lr, &k, &st);
    summary(p, &st);
    if (rc >= 0) goto out;

    root = json_object();
    values = json_object();
    samples = json_object();
    windows = json_object();
    if (!root || !values || !samples || !windows) goto oom;
    int digits = 1;
    int n = capture(cfg, &k, window_ms, &st, values, samples, windows, &digits);
    if (n < 0) goto oom;
    if (n == 0) {
        fprintf(stderr, "canaryd baseline: no relative rule had enough stable samples; "
                        "nothing written, exit 3\n");
        rc = EXIT_NONE_CAPTURED;
        goto out;
    }
    if (json_object_set_new(root, "captured_at",
                            json_string(cd_time_format(st.last_ms, t, sizeof(t)))) ||
        json_object_set(root, "values", values) || json_object_set(root, "samples", samples) ||
        json_object_set(root, "window", windows))
        goto oom;
    /* Every value reads back as the same double; no more digits than the
     * most demanding one needs, so 3/200 prints as 0.015. */
    char *doc = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(digits));
    if (!doc) goto oom;
    size_t dlen = strlen(doc);
    text = realloc(doc, dlen + 2); /* a text file: ends with a newline */
    if (!text) {
        free(doc);
        goto oom;
    }
    memcpy(text + dlen, "\n", 2);
    if (a.output) {
        if (write_atomic(a.output, text, err, sizeof(err)) != 0) {
            fprintf(stderr, "canaryd baseline: %s\n", err);
            goto out;
        }
    } else if (fputs(text, stdout) == EOF || fflush(stdout) != 0) {
        fprintf(stderr, "canaryd baseline: writing to stdout: %s\n", strerror(errno));
        goto out;
    }
    int nrel = 0;
    for (int i = 0; i < cfg->nrules; i++)
        nrel += cfg->rules[i].kind == CD_RULE_RELATIVE;
    fprintf(stderr, "canaryd baseline: %d of %d relative rules captured%s%s\n", n, nrel,
            a.output ? ", written to " : "", a.output ? a.output : "");
    rc = EXIT_OK;
    goto out;
oom:
    fprintf(stderr, "canaryd baseline: out of memory\n");
    rc = EXIT_IO;
out:
    free(text);
    json_decref(root);
    json_decref(values);
    json_decref(samples);
    json_decref(windows);
    cd_linereader_destroy(lr);
    if (fd > STDIN_FILENO) close(fd);
    cd_pipeline_destroy(p);
    counts_free(&k);
    cd_config_free(cfg);
    free(diag);
    return rc;
}
