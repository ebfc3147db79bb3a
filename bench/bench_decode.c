/*
 * bench_decode.c - throughput of the hot path (cd_decode + counting into a
 * cd_window) against a jansson DOM decode of the same events.
 *
 *   bash tools/build && build/release/bench_decode [N]      (N default 1000000)
 *
 * Generates N realistic events (200-250 bytes: the sop.json catalog, ~5 %
 * canary, data.latency_ms, RFC 3339 timestamps spread over five minutes) into
 * one buffer, then, single-threaded and in this process, times
 *   (a) cd_decode + cd_window_add(type) + cd_window_observe(latency_ms),
 *   (b) json_loadb + json_object_get of the same six fields + json_decref
 *       (no counting, so the ratio understates (a)'s advantage slightly),
 * and (a') = (a) with a decoder restricted to one service (events.service =
 * "checkout", which every event names: the cost of the service compare on
 * the accepted path), (a) and (a') alternating,
 * each the best of 3 runs by thread CPU time (per-core cost; wall time is
 * shown too), and prints a markdown table. Runs in seconds for
 * the default N; memory is about 300 MB for the events at N = 1e6.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canaryd/event.h"
#include "canaryd/timeutil.h"
#include "canaryd/window.h"

#define NTYPES 7
static const char *TYPES[NTYPES] = {"REQUEST_COMPLETED", "ERROR_OCCURRED",    "USER_LOGIN",
                                    "USER_LOGIN_FAILED", "PAYMENT_COMPLETED", "PAYMENT_FAILED",
                                    "AUDIT_LOG_FAILED"};
/* Cumulative weights (per mille) of the types above: mostly requests. */
static const int WEIGHT[NTYPES] = {700, 720, 820, 835, 960, 990, 1000};
static const char *PATHS[] = {"/api/v1/orders", "/api/v1/cart", "/api/v1/login", "/api/v1/pay",
                              "/api/v1/items"};
static const char *REGIONS[] = {"eu-west-1", "us-east-1", "ap-south-1"};

#define T_START INT64_C(1795780800000) /* 2026-11-27T12:00:00Z */
#define SPREAD_MS 300000

static uint64_t rng = 0x9E3779B97F4A7C15u;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

typedef struct events {
    char *buf;
    size_t *off; /* event i is buf[off[i] .. off[i+1]) */
    size_t n;
} events_t;

static void generate(events_t *ev, size_t n)
{
    ev->n = n;
    ev->buf = malloc(n * 256);
    ev->off = malloc((n + 1) * sizeof *ev->off);
    if (!ev->buf || !ev->off) {
        fprintf(stderr, "bench_decode: out of memory for %zu events\n", n);
        exit(1);
    }
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        int w = (int)(next_rand() % 1000), t = 0;
        while (WEIGHT[t] <= w)
            t++;
        bool canary = next_rand() % 100 < 5;
        /* time advances with i, with up to 2 s of jitter (late events) */
        int64_t ts = T_START + (int64_t)(i * SPREAD_MS / n) - (int64_t)(next_rand() % 2000);
        char tbuf[32];
        cd_time_format(ts, tbuf, sizeof tbuf);
        double lat = 5.0 + (double)(next_rand() % 40000) / 100.0;
        int len = snprintf(ev->buf + pos, 256,
                           "{\"event_id\":\"evt-%08" PRIu64 "\",\"event_type\":\"%s\","
                           "\"timestamp\":\"%s\",\"service\":\"checkout\","
                           "\"version\":\"%s\",\"cohort\":\"%s\",\"data\":{\"latency_ms\":%.2f,"
                           "\"status\":%d,\"path\":\"%s\",\"region\":\"%s\"}}",
                           (uint64_t)i, TYPES[t], tbuf, canary ? "2.5.0" : "2.4.1",
                           canary ? "canary" : "stable", lat, t == 1 ? 500 : 200,
                           PATHS[next_rand() % 5], REGIONS[next_rand() % 3]);
        if (len < 0 || len >= 256) {
            fprintf(stderr, "bench_decode: generated event %zu is %d bytes\n", i, len);
            exit(1);
        }
        ev->off[i] = pos;
        pos += (size_t)len;
    }
    ev->off[n] = pos;
}

/* Per-core cost is measured in this thread's CPU time, so a machine shared
 * with other work (CI, a build) does not halve the result; wall time is
 * reported beside it. */
typedef struct stamp {
    double cpu, wall;
} stamp_t;

static stamp_t now(void)
{
    struct timespec c, w;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c);
    clock_gettime(CLOCK_MONOTONIC, &w);
    return (stamp_t){(double)c.tv_sec + (double)c.tv_nsec * 1e-9,
                     (double)w.tv_sec + (double)w.tv_nsec * 1e-9};
}

static stamp_t since(stamp_t t0)
{
    stamp_t t = now();
    return (stamp_t){t.cpu - t0.cpu, t.wall - t0.wall};
}

/* (a): returns the time taken; *counted gets the events added to the window. */
static stamp_t run_canaryd(const events_t *ev, const cd_decoder_t *d, cd_window_t *w,
                           uint64_t *counted)
{
    int stripe = cd_window_stripe(w);
    uint64_t ok = 0;
    stamp_t t0 = now();
    for (size_t i = 0; i < ev->n; i++) {
        cd_event_t e;
        if (cd_decode(d, ev->buf + ev->off[i], ev->off[i + 1] - ev->off[i], &e) != CD_BAD_NONE)
            continue;
        if (e.type >= 0 && cd_window_add(w, stripe, e.type, e.cohort, e.ts_ms, 1) == CD_WIN_OK)
            ok++;
        if (e.num_mask & 1u) cd_window_observe(w, 0, e.cohort, e.ts_ms, e.num[0]);
    }
    stamp_t t = since(t0);
    *counted = ok;
    return t;
}

/* (b): returns the time taken; *found counts the fields seen (a checksum, so
 * nothing is optimised away). */
static stamp_t run_jansson(const events_t *ev, uint64_t *found)
{
    static const char *top[] = {"event_type", "timestamp", "cohort", "version", "service"};
    uint64_t n = 0;
    stamp_t t0 = now();
    for (size_t i = 0; i < ev->n; i++) {
        json_error_t err;
        json_t *root = json_loadb(ev->buf + ev->off[i], ev->off[i + 1] - ev->off[i], 0, &err);
        if (!root) continue;
        for (int k = 0; k < 5; k++)
            n += json_string_length(json_object_get(root, top[k])) > 0;
        json_t *lat = json_object_get(json_object_get(root, "data"), "latency_ms");
        n += json_is_number(lat) && json_number_value(lat) > 0;
        json_decref(root);
    }
    stamp_t t = since(t0);
    *found = n;
    return t;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    if (n == 0) {
        fprintf(stderr, "usage: bench_decode [N > 0]\n");
        return 2;
    }
    events_t ev;
    generate(&ev, n);

    cd_decode_conf_t c;
    cd_decode_conf_init(&c);
    for (int i = 0; i < NTYPES; i++)
        c.types[i] = TYPES[i];
    c.ntypes = NTYPES;
    c.numeric_paths[0] = "data.latency_ms";
    c.nnumeric = 1;
    char err[256];
    cd_decoder_t *d = cd_decoder_new(&c, err, sizeof err);
    if (!d) {
        fprintf(stderr, "bench_decode: %s\n", err);
        return 1;
    }
    c.service = "checkout";
    cd_decoder_t *ds = cd_decoder_new(&c, err, sizeof err);
    if (!ds) {
        fprintf(stderr, "bench_decode: %s\n", err);
        return 1;
    }
    cd_window_conf_t wc = {.nmetrics = NTYPES,
                           .nhists = 1,
                           .resolution_ms = 1000,
                           .span_ms = 2 * SPREAD_MS,
                           .ahead_ms = 120000,
                           .nstripes = 1};
    cd_window_t *w = cd_window_new(&wc, err, sizeof err);
    if (!w) {
        fprintf(stderr, "bench_decode: %s\n", err);
        return 1;
    }
    /* Clock at the end of the spread: every event lands in the ring. */
    cd_window_set_clock(w, T_START + SPREAD_MS);

    stamp_t best_a = {1e30, 1e30}, best_s = {1e30, 1e30}, best_b = {1e30, 1e30};
    uint64_t counted = 0, counted_s = 0, found = 0;
    for (int r = 0; r < 3; r++) {
        stamp_t t = run_canaryd(&ev, d, w, &counted);
        best_a = t.cpu < best_a.cpu ? t : best_a;
        t = run_canaryd(&ev, ds, w, &counted_s);
        best_s = t.cpu < best_s.cpu ? t : best_s;
    }
    for (int r = 0; r < 3; r++) {
        stamp_t t = run_jansson(&ev, &found);
        best_b = t.cpu < best_b.cpu ? t : best_b;
    }
    if (counted != n || counted_s != n || found != 6 * n) {
        fprintf(stderr,
                "bench_decode: sanity check failed: counted %" PRIu64 " of %zu events, "
                "jansson found %" PRIu64 " of %zu fields\n",
                counted, n, found, 6 * n);
        return 1;
    }
    double mb = (double)ev.off[n] / 1e6;
    printf("%zu events, %.1f bytes/event average, best of 3 runs, single thread\n\n", n,
           (double)ev.off[n] / (double)n);
    printf("| path | events/s | ns/event | MB/s | wall ns/event |\n"
           "|---|---:|---:|---:|---:|\n");
    printf("| cd_decode + cd_window_add/observe | %.0f | %.1f | %.1f | %.1f |\n",
           (double)n / best_a.cpu, best_a.cpu * 1e9 / (double)n, mb / best_a.cpu,
           best_a.wall * 1e9 / (double)n);
    printf("| the same, events.service = checkout | %.0f | %.1f | %.1f | %.1f |\n",
           (double)n / best_s.cpu, best_s.cpu * 1e9 / (double)n, mb / best_s.cpu,
           best_s.wall * 1e9 / (double)n);
    printf("| jansson json_loadb + get + decref | %.0f | %.1f | %.1f | %.1f |\n",
           (double)n / best_b.cpu, best_b.cpu * 1e9 / (double)n, mb / best_b.cpu,
           best_b.wall * 1e9 / (double)n);
    printf("\nratio (canaryd / jansson, CPU time): %.1fx\n", best_b.cpu / best_a.cpu);

    cd_window_destroy(w);
    cd_decoder_destroy(d);
    cd_decoder_destroy(ds);
    free(ev.buf);
    free(ev.off);
    return 0;
}
