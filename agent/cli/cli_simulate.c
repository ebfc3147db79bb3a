/*
 * cli_simulate.c - `canaryd simulate`: produces a live canary event stream
 * to Kafka, with current timestamps (the demo's and the live tests' source).
 *
 *   canaryd simulate --brokers B --topic T --scenario NAME [--rate R]
 *       [--canary-share F] [--onset D] [--effect D] [--duration D] [--seed N]
 *       [--cohort-header NAME] [--property K=V]...
 *
 * Events come from simgen (include/canaryd/simgen.h), the same model as
 * `canaryd generate`, with start = the current wall-clock second: the
 * events of second S are a pure function of the settings and of S - start,
 * so a test that knows the start can regenerate exactly what was produced.
 * Onset and effect are relative to the start; duration 0 runs until
 * SIGINT/SIGTERM.
 *
 * Pacing: a second's events are drawn when the wall clock reaches it, kept
 * in one arena, and each is produced once its timestamp is due; between
 * batches the thread waits in rd_kafka_poll() (at most 10 ms, which also
 * serves delivery reports), so an event leaves within about 10 ms of its
 * timestamp and a signal is noticed within 10 ms. If the process falls
 * behind (a loaded machine), due events leave at once with their own
 * timestamps: nothing is skipped.
 *
 * Each payload is decoded with canaryd's own decoder before it is sent (its
 * type and cohort feed the summary, and a payload canaryd could not read is
 * counted and logged, never sent silently). The message key is the event's
 * request_id, so load spreads over the partitions; the decoder fetches it
 * through its "service" path slot, the one free string field it extracts.
 * With --cohort-header NAME the cohort travels in a message header NAME
 * ("canary" / "stable") and is cut out of the payload: the generator writes
 * it as `"cohort":"<value>",` right after the timestamp, and that exact
 * text is removed.
 *
 * The producer is idempotent (enable.idempotence=true: no duplicates or
 * reordering within a partition when librdkafka retries), and every
 * --property is passed to librdkafka after canaryd's defaults, so it can
 * override them; property values are never logged (they may be SASL
 * passwords). On exit the producer is flushed for up to 10 s; what is still
 * queued then is counted as not delivered.
 *
 * Single-threaded apart from librdkafka's own threads; delivery reports are
 * served by rd_kafka_poll() on this thread, so the counters need no atomics.
 *
 * Exit status: 0 every produced event was delivered, 1 some were not (or a
 * fatal producer error, out of memory), 2 usage or settings error.
 */
#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "canaryd/clock.h"
#include "canaryd/event.h"
#include "canaryd/log.h"
#include "canaryd/simgen.h"
#include "canaryd/timeutil.h"
#include "cli.h"

#define POLL_MAX_MS 10
#define FLUSH_TIMEOUT_MS 10000
#define MAX_PROPERTIES 64
#define MAX_ERR_KINDS 8

typedef struct sim_opts {
    cd_sim_conf_t sim;
    bool have_scenario;
    const char *brokers, *topic, *cohort_header;
    int64_t duration_ms;
    const char *props[MAX_PROPERTIES]; /* "K=V" from argv */
    int nprops;
} sim_opts_t;

/* One event of the current second: its line lives in the arena. */
typedef struct pending_ev {
    size_t off, len;
    int64_t ts;
} pending_ev_t;

typedef struct stats {
    /* Delivered events per (type, cohort); the type names are the ones seen
     * in the stream, in order of first appearance (the last slot is the
     * overflow "other"). */
    char types[CD_MAX_TYPES][CD_NAME_MAX];
    int ntypes;
    uint64_t delivered[CD_MAX_TYPES][CD_NCOHORTS];
    uint64_t produced; /* handed to librdkafka */
    uint64_t undecodable, failed_enqueue, failed_delivery;
    rd_kafka_resp_err_t err_kind[MAX_ERR_KINDS];
    uint64_t err_count[MAX_ERR_KINDS];
} stats_t;

typedef struct simulate {
    const sim_opts_t *o;
    cd_sim_t *sim;
    cd_decoder_t *dec;
    rd_kafka_t *rk;
    pending_ev_t *evs;
    size_t nevs, cap_evs, i;
    char *arena;
    size_t arena_len, arena_cap;
    bool oom;
    stats_t st;
} simulate_t;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: canaryd simulate --brokers B --topic T --scenario NAME [--rate R]\n"
               "         [--canary-share F] [--onset D] [--effect D] [--duration D] [--seed N]\n"
               "         [--cohort-header NAME] [--property K=V]...\n"
               "Produces simulated events with current timestamps to a Kafka topic, each\n"
               "when its time comes. Defaults: --rate 400 --canary-share 0.05 --onset 4m\n"
               "(from the start) --effect 0s (until the end; error-blip: 3m) --duration 0s\n"
               "(until SIGINT/SIGTERM) --seed 1. --cohort-header puts the cohort in a\n"
               "message header instead of the payload; --property sets any librdkafka\n"
               "producer property (after canaryd's: enable.idempotence=true).\n"
               "Prints a summary on stderr. Exit: 0 all delivered, 1 some not delivered,\n"
               "2 usage or settings error.\n"
               "Scenarios:");
    char names[1024];
    cd_sim_scenario_names(names, sizeof(names), 6);
    fprintf(f, "%s\n", names);
}

/* ---- options ---- */

static int parse_duration(const char *opt, const char *val, int64_t *out)
{
    if (cd_duration_parse(val, out)) return 0;
    fprintf(stderr,
            "canaryd simulate: --%s: \"%s\" is not a duration; accepted: such as \"250ms\", "
            "\"30s\", \"5m\", \"1h30m\"\n",
            opt, val);
    return -1;
}

static int parse_number(const char *opt, const char *val, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end) {
        fprintf(stderr, "canaryd simulate: --%s: \"%s\" is not a number\n", opt, val);
        return -1;
    }
    *out = v;
    return 0;
}

/* Returns -1 on a bad option (message printed), 1 for --help, 0 otherwise. */
static int parse_args(sim_opts_t *o, int argc, char **argv)
{
    static const struct option longopts[] = {{"brokers", required_argument, NULL, 'b'},
                                             {"topic", required_argument, NULL, 't'},
                                             {"scenario", required_argument, NULL, 'S'},
                                             {"rate", required_argument, NULL, 'r'},
                                             {"canary-share", required_argument, NULL, 'c'},
                                             {"onset", required_argument, NULL, 'o'},
                                             {"effect", required_argument, NULL, 'e'},
                                             {"duration", required_argument, NULL, 'd'},
                                             {"seed", required_argument, NULL, 's'},
                                             {"cohort-header", required_argument, NULL, 'H'},
                                             {"property", required_argument, NULL, 'X'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int opt, idx = -1;
    optind = 1;
    opterr = 0;
    /* idx is only set for a long option: reset it before each call. */
    while ((opt = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
        const char *name = idx >= 0 ? longopts[idx].name : "";
        idx = -1;
        switch (opt) {
        case 'h':
            return 1;
        case 'b':
            o->brokers = optarg;
            break;
        case 't':
            o->topic = optarg;
            break;
        case 'S':
            if (!cd_sim_scenario_parse(optarg, &o->sim.scenario)) {
                char names[1024];
                cd_sim_scenario_names(names, sizeof(names), 0);
                fprintf(stderr,
                        "canaryd simulate: --scenario: \"%s\" is not a scenario; accepted:%s\n",
                        optarg, names);
                return -1;
            }
            o->have_scenario = true;
            break;
        case 'r':
            if (parse_number(name, optarg, &o->sim.rate) < 0) return -1;
            break;
        case 'c':
            if (parse_number(name, optarg, &o->sim.canary_share) < 0) return -1;
            break;
        case 'o':
            if (parse_duration(name, optarg, &o->sim.onset_ms) < 0) return -1;
            break;
        case 'e':
            if (parse_duration(name, optarg, &o->sim.effect_ms) < 0) return -1;
            break;
        case 'd':
            if (parse_duration(name, optarg, &o->duration_ms) < 0) return -1;
            break;
        case 's': {
            char *end = NULL;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-') {
                fprintf(stderr, "canaryd simulate: --seed: \"%s\" is not a non-negative integer\n",
                        optarg);
                return -1;
            }
            o->sim.seed = v;
            break;
        }
        case 'H':
            if (!*optarg) {
                fprintf(stderr, "canaryd simulate: --cohort-header: the header name is empty\n");
                return -1;
            }
            o->cohort_header = optarg;
            break;
        case 'X': {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) {
                /* Not echoed: the argument may be a secret without its '='. */
                fprintf(stderr, "canaryd simulate: --property: expected KEY=VALUE, such as "
                                "security.protocol=SASL_SSL\n");
                return -1;
            }
            if (o->nprops == MAX_PROPERTIES) {
                fprintf(stderr, "canaryd simulate: --property: at most %d properties\n",
                        MAX_PROPERTIES);
                return -1;
            }
            o->props[o->nprops++] = optarg;
            break;
        }
        default:
            fprintf(stderr, "canaryd simulate: unknown option or missing value: %s\n",
                    argv[optind - 1]);
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "canaryd simulate: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    const char *missing = !o->brokers         ? "--brokers"
                          : !o->topic         ? "--topic"
                          : !o->have_scenario ? "--scenario"
                                              : NULL;
    if (missing) {
        fprintf(stderr, "canaryd simulate: %s is required\n", missing);
        usage(stderr);
        return -1;
    }
    return 0;
}

/* ---- the producer ---- */

static void count_error(stats_t *st, rd_kafka_resp_err_t err)
{
    int k;
    for (k = 0; k < MAX_ERR_KINDS && st->err_count[k] && st->err_kind[k] != err; k++)
        ;
    if (k == MAX_ERR_KINDS) k = MAX_ERR_KINDS - 1; /* rare: lumped with the last kind */
    st->err_kind[k] = err;
    st->err_count[k]++;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    simulate_t *s = opaque;
    if (m->err) {
        s->st.failed_delivery++;
        count_error(&s->st, m->err);
        cd_log_ratelimited("simulate:delivery", CD_LOG_WARN, "simulate: event not delivered: %s",
                           rd_kafka_err2str(m->err));
        return;
    }
    uintptr_t slot = (uintptr_t)m->_private;
    s->st.delivered[slot / CD_NCOHORTS][slot % CD_NCOHORTS]++;
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    char key[48];
    snprintf(key, sizeof key, "simulate:rdkafka:%d", err);
    cd_log_ratelimited(key, CD_LOG_WARN, "simulate: Kafka: %s", reason);
}

static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    cd_log_level_t l = level <= 3   ? CD_LOG_ERROR
                       : level == 4 ? CD_LOG_WARN
                       : level <= 6 ? CD_LOG_INFO
                                    : CD_LOG_DEBUG;
    /* Connection failures also reach on_error(), which says it once. */
    if (strcmp(fac, "FAIL") == 0) l = CD_LOG_DEBUG;
    char key[48];
    snprintf(key, sizeof key, "rdkafka:%s", fac);
    cd_log_ratelimited(key, l, "librdkafka %s: %s", fac, buf);
}

/* Keys whose values must never reach a message (passwords, keys, tokens). */
static bool secret_key(const char *key, size_t len)
{
    static const char *const words[] = {"password", "secret", "key",
                                        "jaas",     "token",  "oauthbearer.config"};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (memmem(key, len, words[i], strlen(words[i]))) return true;
    return false;
}

static rd_kafka_t *producer_new(const sim_opts_t *o, simulate_t *s)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *defaults[][2] = {{"bootstrap.servers", o->brokers},
                                 {"enable.idempotence", "true"},
                                 {"client.id", "canaryd-simulate"}};
    for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++)
        if (rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], errstr, sizeof errstr) !=
            RD_KAFKA_CONF_OK) {
            fprintf(stderr, "canaryd simulate: %s: %s\n", defaults[i][0], errstr);
            goto err;
        }
    for (int i = 0; i < o->nprops; i++) {
        const char *eq = strchr(o->props[i], '=');
        char key[256];
        size_t klen = (size_t)(eq - o->props[i]);
        snprintf(key, sizeof key, "%.*s", (int)klen, o->props[i]);
        if (rd_kafka_conf_set(conf, key, eq + 1, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
            /* librdkafka's message quotes the value: withheld for secrets. */
            if (secret_key(key, klen))
                fprintf(stderr,
                        "canaryd simulate: --property %s: librdkafka rejects the value "
                        "(not shown: it may be a secret)\n",
                        key);
            else
                fprintf(stderr, "canaryd simulate: --property %s: %s\n", key, errstr);
            goto err;
        }
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_rdkafka_log);
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "canaryd simulate: cannot create the Kafka producer: %s\n", errstr);
        goto err;
    }
    return rk; /* owns conf now */
err:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* ---- one second of events ---- */

static void on_sim_event(const char *line, size_t len, int64_t ts, void *opaque)
{
    simulate_t *s = opaque;
    if (s->oom) return;
    if (s->nevs == s->cap_evs) {
        size_t cap = s->cap_evs ? 2 * s->cap_evs : 1024;
        pending_ev_t *e = realloc(s->evs, cap * sizeof *e);
        if (!e) goto oom;
        s->evs = e;
        s->cap_evs = cap;
    }
    if (s->arena_len + len > s->arena_cap) {
        size_t cap = s->arena_cap ? 2 * s->arena_cap : 256 * 1024;
        while (cap < s->arena_len + len)
            cap *= 2;
        char *a = realloc(s->arena, cap);
        if (!a) goto oom;
        s->arena = a;
        s->arena_cap = cap;
    }
    memcpy(s->arena + s->arena_len, line, len);
    s->evs[s->nevs++] = (pending_ev_t){s->arena_len, len, ts};
    s->arena_len += len;
    return;
oom:
    s->oom = true;
}

static int draw_second(simulate_t *s, int64_t sec)
{
    s->nevs = s->i = s->arena_len = 0;
    if (cd_sim_second(s->sim, sec, on_sim_event, s) < 0 || s->oom) {
        fprintf(stderr, "canaryd simulate: out of memory\n");
        return -1;
    }
    return 0;
}

/* Summary slot of a type name (first appearance order; overflow = last). */
static int type_slot(stats_t *st, const char *name, size_t len)
{
    for (int i = 0; i < st->ntypes; i++)
        if (strlen(st->types[i]) == len && memcmp(st->types[i], name, len) == 0) return i;
    if (st->ntypes == CD_MAX_TYPES - 1) {
        snprintf(st->types[CD_MAX_TYPES - 1], CD_NAME_MAX, "other");
        return CD_MAX_TYPES - 1;
    }
    snprintf(st->types[st->ntypes], CD_NAME_MAX, "%.*s", (int)len, name);
    return st->ntypes++;
}

/*
 * Hands one event to librdkafka. Returns 1 if sent or dropped (counted),
 * 0 if librdkafka's queue is full (retry after a poll), -1 on a fatal error.
 */
static int produce_one(simulate_t *s, const pending_ev_t *pe)
{
    char *line = s->arena + pe->off;
    size_t len = pe->len;
    cd_event_t ev;
    cd_bad_reason_t bad = cd_decode(s->dec, line, len, &ev);
    if (bad != CD_BAD_NONE || ev.service_len == 0) {
        char esc[CD_LOG_ESCAPED_MAX];
        s->st.undecodable++;
        cd_log_ratelimited("simulate:undecodable", CD_LOG_ERROR,
                           "simulate: generated event not sent: %s: %s",
                           bad ? cd_bad_reason_name(bad) : "no request_id",
                           cd_log_escape(line, len, esc, sizeof esc));
        return 1;
    }
    const char *cohort = cd_cohort_name(ev.cohort);
    int slot = type_slot(&s->st, ev.type_str, ev.type_len);
    /* Borrowed from the line, which is never edited (the header variant
     * edits a copy); librdkafka copies key and value (MSG_F_COPY). */
    const char *key = ev.service;
    size_t key_len = ev.service_len;
    char payload[1024];
    const char *value = line;
    size_t value_len = len;
    if (s->o->cohort_header) {
        char needle[48];
        int nl = snprintf(needle, sizeof needle, "\"cohort\":\"%s\",", cohort);
        const char *at = memmem(line, len, needle, (size_t)nl);
        if (!at || len - (size_t)nl >= sizeof payload) {
            s->st.undecodable++;
            cd_log_ratelimited("simulate:nocohort", CD_LOG_ERROR,
                               "simulate: generated event not sent: cannot cut the cohort "
                               "field out of it for --cohort-header");
            return 1;
        }
        size_t head = (size_t)(at - line);
        memcpy(payload, line, head);
        memcpy(payload + head, at + nl, len - head - (size_t)nl);
        value = payload;
        value_len = len - (size_t)nl;
    }
    uintptr_t opaque = (uintptr_t)(slot * CD_NCOHORTS + (int)ev.cohort);
    rd_kafka_resp_err_t err;
    if (s->o->cohort_header)
        err = rd_kafka_producev(
            s->rk, RD_KAFKA_V_TOPIC(s->o->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)value, value_len),
            RD_KAFKA_V_HEADER(s->o->cohort_header, cohort, -1), RD_KAFKA_V_OPAQUE((void *)opaque),
            RD_KAFKA_V_END);
    else
        err = rd_kafka_producev(
            s->rk, RD_KAFKA_V_TOPIC(s->o->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)value, value_len),
            RD_KAFKA_V_OPAQUE((void *)opaque), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) return 0;
    if (err) {
        s->st.failed_enqueue++;
        count_error(&s->st, err);
        cd_log_ratelimited("simulate:enqueue", CD_LOG_WARN, "simulate: event not sent: %s",
                           rd_kafka_err2str(err));
        if (err == RD_KAFKA_RESP_ERR__FATAL) return -1;
        return 1;
    }
    s->st.produced++;
    return 1;
}

/* ---- summary ---- */

static uint64_t delivered_total(const stats_t *st, int cohort)
{
    uint64_t n = 0;
    for (int t = 0; t < CD_MAX_TYPES; t++)
        for (int c = 0; c < CD_NCOHORTS; c++)
            if (cohort < 0 || c == cohort) n += st->delivered[t][c];
    return n;
}

/* One line: "delivered N events (canary C, stable S): TYPE n, ...; not
 * delivered M (reason n, ...); undecodable U". */
static void print_summary(FILE *f, const simulate_t *s, const char *prefix, const char *end)
{
    const stats_t *st = &s->st;
    uint64_t lost = st->failed_enqueue + st->failed_delivery;
    fprintf(f, "%sdelivered %llu events (canary %llu, stable %llu)", prefix,
            (unsigned long long)delivered_total(st, -1),
            (unsigned long long)delivered_total(st, CD_COHORT_CANARY),
            (unsigned long long)delivered_total(st, CD_COHORT_STABLE));
    for (int t = 0, first = 1; t < CD_MAX_TYPES; t++) {
        uint64_t n = st->delivered[t][0] + st->delivered[t][1];
        if (n) fprintf(f, "%s%s %llu", first ? ": " : ", ", st->types[t], (unsigned long long)n);
        if (n) first = 0;
    }
    fprintf(f, "; not delivered %llu", (unsigned long long)lost);
    for (int k = 0; k < MAX_ERR_KINDS && st->err_count[k]; k++)
        fprintf(f, "%s%s %llu", k ? ", " : " (", rd_kafka_err2str(st->err_kind[k]),
                (unsigned long long)st->err_count[k]);
    fprintf(f, "%s; undecodable %llu%s", st->err_count[0] ? ")" : "",
            (unsigned long long)st->undecodable, end);
}

/* ---- the loop ---- */

static int run(simulate_t *s, int64_t start, int64_t end)
{
    bool tty = isatty(STDERR_FILENO);
    int64_t sec = start, last_progress = 0;
    if (draw_second(s, sec) < 0) return -1;
    while (!stop) {
        int64_t now = cd_wall_ms();
        while (s->i < s->nevs && s->evs[s->i].ts <= now) {
            int r = produce_one(s, &s->evs[s->i]);
            if (r < 0) return -1;
            if (r == 0) break; /* queue full: let librdkafka drain it */
            s->i++;
        }
        if (s->i == s->nevs && now >= sec + 1000) {
            sec += 1000;
            if (end && sec >= end) break;
            if (draw_second(s, sec) < 0) return -1;
            continue;
        }
        int64_t next = s->i < s->nevs ? s->evs[s->i].ts : sec + 1000;
        int64_t wait = next - now;
        rd_kafka_poll(s->rk, wait < 1 ? 1 : wait > POLL_MAX_MS ? POLL_MAX_MS : (int)wait);
        if (rd_kafka_fatal_error(s->rk, NULL, 0)) return -1;
        if (tty && now - last_progress >= 1000) {
            char prefix[64];
            snprintf(prefix, sizeof prefix, "\r\033[Ksimulate: %llds, ",
                     (long long)((now - start) / 1000));
            print_summary(stderr, s, prefix, "");
            last_progress = now;
        }
    }
    if (tty && last_progress) fputs("\r\033[K", stderr);
    return 0;
}

int cd_cli_simulate(int argc, char **argv)
{
    sim_opts_t o = {0};
    simulate_t s = {.o = &o};
    char err[512];
    int rc = 2;

    cd_sim_conf_init(&o.sim);
    int pr = parse_args(&o, argc, argv);
    if (pr != 0) {
        if (pr > 0) usage(stdout);
        return pr > 0 ? 0 : 2;
    }
    int64_t start = cd_wall_ms() / 1000 * 1000;
    o.sim.start_ms = start;
    s.sim = cd_sim_new(&o.sim, err, sizeof err);
    if (!s.sim) {
        fprintf(stderr, "canaryd simulate: %s\n", err);
        goto out;
    }
    cd_decode_conf_t dc;
    cd_decode_conf_init(&dc);
    dc.service_path = "request_id"; /* the message key; see the top of the file */
    s.dec = cd_decoder_new(&dc, err, sizeof err);
    if (!s.dec) {
        fprintf(stderr, "canaryd simulate: %s\n", err);
        goto out;
    }
    s.rk = producer_new(&o, &s);
    if (!s.rk) goto out;

    cd_cli_on_signals(on_signal, NULL);

    char tbuf[40], dbuf[32], obuf[32];
    cd_time_format(start, tbuf, sizeof tbuf);
    cd_duration_format(o.sim.onset_ms, obuf, sizeof obuf);
    if (o.duration_ms)
        cd_duration_format(o.duration_ms, dbuf, sizeof dbuf);
    else
        snprintf(dbuf, sizeof dbuf, "until stopped");
    cd_log(CD_LOG_INFO,
           "simulate: scenario %s from %s (onset %s, duration %s), seed %llu, %g requests/s, "
           "canary share %g, to topic %s%s%s",
           cd_sim_scenario_name(o.sim.scenario), tbuf, obuf, dbuf, (unsigned long long)o.sim.seed,
           o.sim.rate, o.sim.canary_share, o.topic, o.cohort_header ? ", cohort in header " : "",
           o.cohort_header ? o.cohort_header : "");

    rc = 1;
    int r = run(&s, start, o.duration_ms ? start + o.duration_ms : 0);
    rd_kafka_resp_err_t ferr = rd_kafka_flush(s.rk, FLUSH_TIMEOUT_MS);
    if (ferr) {
        /* Purged messages get a delivery report with __PURGE_QUEUE /
         * __PURGE_INFLIGHT, served by the poll, so they are counted. */
        rd_kafka_purge(s.rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(s.rk, 0);
    }
    char fatal[256];
    if (rd_kafka_fatal_error(s.rk, fatal, sizeof fatal))
        fprintf(stderr, "canaryd simulate: fatal producer error: %s\n", fatal);
    print_summary(stderr, &s, "canaryd simulate: ", "\n");
    if (r == 0 && !ferr && s.st.failed_enqueue + s.st.failed_delivery + s.st.undecodable == 0 &&
        delivered_total(&s.st, -1) == s.st.produced)
        rc = 0;
out:
    if (s.rk) rd_kafka_destroy(s.rk);
    cd_decoder_destroy(s.dec);
    cd_sim_destroy(s.sim);
    free(s.evs);
    free(s.arena);
    return rc;
}
