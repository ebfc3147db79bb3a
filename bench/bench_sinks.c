/*
 * bench_sinks.c - does a dead webhook slow ingestion down?
 *
 *   bash tools/build && build/release/bench_sinks [EVENTS] [CONFIG]
 *   (or bash bench/run, which runs every benchmark)
 *
 * Generates EVENTS (default 400,000: ~17 minutes of event time, past the
 * rollback at ~9.5 min) events of the error-regression scenario (simgen)
 * into memory, then in the same run, alternating, 3 rounds of:
 *   A. no sinks: decode + count + evaluate, every record submitted to a
 *      dispatcher that has no sink;
 *   B. webhook down: the same with one webhook sink (slack format, no rate
 *      limit) pointing at a closed loopback port, retrying connection-
 *      refused every 1..10 ms (full jitter, base 1ms, cap 10ms), so its
 *      thread competes for the CPU the whole time.
 * The ingest loop is replay's (event-time clock trailing the highest event
 * time by allowed_lateness). Reported: the best events/s of each and B/A;
 * target B >= 95 % of A. Timing stops before the dispatcher is destroyed
 * (drain_timeout 0: pending deliveries are abandoned, not waited for).
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_clock.h"
#include "canaryd/config.h"
#include "canaryd/dispatcher.h"
#include "canaryd/log.h"
#include "canaryd/pipeline.h"
#include "canaryd/simgen.h"

#define ROUNDS 3
#define TARGET 0.95

typedef struct events {
    char *buf;
    size_t len, cap;
    size_t *off; /* start of each line; off[n] = end */
    long n, want;
} events_t;

static void collect(const char *line, size_t len, int64_t ts, void *opaque)
{
    events_t *e = opaque;
    (void)ts;
    if (e->n >= e->want) return;
    if (e->len + len + 1 > e->cap) {
        e->cap = (e->cap + len + 1) * 2;
        e->buf = realloc(e->buf, e->cap);
        if (!e->buf) abort();
    }
    e->off[e->n++] = e->len;
    memcpy(e->buf + e->len, line, len);
    e->len += len;
    e->buf[e->len++] = '\n';
    e->off[e->n] = e->len;
}

static void on_record(const cd_verdict_t *v, void *opaque)
{
    cd_dispatcher_submit(opaque, v);
}

/* A loopback port nothing listens on (bound, then closed). */
static unsigned closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(s, (struct sockaddr *)&sa, &sl) != 0)
        abort();
    close(s);
    return ntohs(sa.sin_port);
}

/* One ingest run; events/s, records in *records, sink attempts in *tries. */
static double run(cd_config_t *cfg, const events_t *ev, const char *sinks, uint64_t *records,
                  uint64_t *tries)
{
    cd_diag_t *d = malloc(sizeof(*d));
    char err[256];
    cd_diag_init(d);
    json_decref(cfg->sinks_json);
    cfg->sinks_json = json_loads(sinks, 0, NULL);
    cd_dispatcher_t *disp = cd_dispatcher_new(cfg, d);
    if (!disp || cd_dispatcher_start(disp, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_sinks: %s%s\n", d->text, err);
        exit(1);
    }
    cd_pipeline_t *p =
        cd_pipeline_new(cfg, cfg->allowed_lateness_ms, 1, on_record, disp, err, sizeof(err));
    if (!p) {
        fprintf(stderr, "bench_sinks: %s\n", err);
        exit(1);
    }
    double t0 = now_s();
    int64_t max_ts = 0;
    bool have = false;
    for (long i = 0; i < ev->n; i++) {
        cd_event_t e;
        const char *line = ev->buf + ev->off[i];
        size_t len = ev->off[i + 1] - ev->off[i] - 1;
        if (cd_pipeline_decode(p, line, len, (uint64_t)i + 1, &e) != CD_BAD_NONE) continue;
        if (!have) cd_pipeline_begin(p, e.ts_ms);
        if (!have || e.ts_ms > max_ts) max_ts = e.ts_ms;
        have = true;
        cd_pipeline_advance(p, max_ts - cfg->allowed_lateness_ms);
        cd_pipeline_add(p, &e, 0);
    }
    cd_pipeline_advance(p, max_ts);
    double dt = now_s() - t0;
    cd_pipeline_stats_t st;
    cd_pipeline_stats(p, &st);
    *records = st.records;
    cd_sink_stats_t ss[1];
    *tries = 0;
    if (cd_dispatcher_stats(disp, ss, 1) == 1) *tries = ss[0].retries + ss[0].failed;
    cd_pipeline_destroy(p);
    cd_dispatcher_destroy(disp);
    free(d);
    return (double)ev->n / dt;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 400000;
    const char *config = argc > 2 ? argv[2] : "config/sop.json";
    cd_diag_t *d = malloc(sizeof(*d));
    cd_config_t *cfg = cd_config_load(config, d);
    if (!cfg || n <= 0) {
        fprintf(stderr, "bench_sinks: %s: %s\n", config, cfg ? "EVENTS must be > 0" : d->text);
        return 1;
    }
    /* the dead webhook's warnings are rate-limited; keep them off the table */
    cd_log_set_level(CD_LOG_ERROR);

    cd_sim_conf_t sc;
    char err[256];
    cd_sim_conf_init(&sc);
    sc.scenario = CD_SIM_ERROR_REGRESSION;
    cd_sim_t *sim = cd_sim_new(&sc, err, sizeof(err));
    events_t ev = {.want = n, .off = malloc(sizeof(size_t) * ((size_t)n + 1))};
    if (!sim || !ev.off) {
        fprintf(stderr, "bench_sinks: %s\n", sim ? "out of memory" : err);
        return 1;
    }
    for (int64_t s = sc.start_ms; ev.n < n; s += 1000)
        cd_sim_second(sim, s, collect, &ev);
    cd_sim_destroy(sim);

    char none[] = "{\"drain_timeout\":0,\"outputs\":[]}", dead[512];
    snprintf(dead, sizeof(dead),
             "{\"drain_timeout\":0,\"outputs\":[{\"type\":\"webhook\",\"format\":\"slack\","
             "\"url\":\"http://127.0.0.1:%u/hook\",\"rate_limit\":0,\"connect_timeout\":\"1s\","
             "\"retry\":{\"base\":\"1ms\",\"cap\":\"10ms\",\"max_attempts\":1000}}]}",
             closed_port());
    double best_a = 0, best_b = 0;
    uint64_t rec_a = 0, rec_b = 0, tries = 0, t;
    for (int r = 0; r < ROUNDS; r++) {
        double a = run(cfg, &ev, none, &rec_a, &t);
        double b = run(cfg, &ev, dead, &rec_b, &t);
        tries += t;
        if (a > best_a) best_a = a;
        if (b > best_b) best_b = b;
    }
    double ratio = best_b / best_a;
    printf("## bench_sinks: ingestion with a dead webhook vs no sinks\n\n");
    printf("%ld events (error-regression, %.1f MB), %llu records per run, best of %d\n\n", ev.n,
           ev.len / 1e6, (unsigned long long)rec_a, ROUNDS);
    printf("| sinks | events/s |\n|---|---|\n");
    printf("| none | %.2f M |\n", best_a / 1e6);
    printf("| webhook to a closed port (%llu failed attempts in all) | %.2f M |\n",
           (unsigned long long)tries, best_b / 1e6);
    printf("\nratio %.1f %% (target >= %.0f %%): %s\n", 100 * ratio, 100 * TARGET,
           ratio >= TARGET ? "met" : "NOT MET");
    if (rec_a != rec_b)
        fprintf(stderr, "bench_sinks: record counts differ (%llu vs %llu)\n",
                (unsigned long long)rec_a, (unsigned long long)rec_b);
    free(ev.buf);
    free(ev.off);
    cd_config_free(cfg);
    free(d);
    return 0;
}
