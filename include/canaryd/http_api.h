/*
 * http_api.h - the agent's HTTP API for probes, Prometheus and rollout
 * controllers (Argo Rollouts' web metric provider, Flagger's webhooks):
 *
 *   GET  /healthz                         200 while the process serves
 *   GET  /readyz                          200 once partitions are assigned and
 *                                         every known lag <= http.max_lag, else 503
 *   GET  /metrics                         Prometheus text format 0.0.4
 *   GET  /api/v1/verdict                  always 200: {verdict, release, since, reason,
 *                                         judged_until, lag_seconds, rules}; with
 *                                         ?release=X, ANALYZING unless X is judged
 *   POST /api/v1/flagger/rollback         200 when ROLLBACK, else 409 (a new
 *                                         checksum starts a new judgement first)
 *   POST /api/v1/flagger/confirm-promotion 200 when PROMOTE, else 409 (likewise)
 *   POST /api/v1/release                  declare a new canary release (token)
 *   GET  /                                the live status page (agent/http/http_page.c)
 *   GET  /api/v1/dashboard                what the page draws (JSON with chart fragments)
 *   GET  /api/v1/history[?since=T]        the per-rule series (JSON)
 *   GET  /api/v1/windows[?at=S]           each rule's window counts per type and
 *                                         cohort closed at the whole second S
 *
 * libmicrohttpd serves on threads of its own. Handlers never touch the
 * engine: the evaluating thread publishes snapshots (snapshot.h) and takes
 * release requests from cd_http_take_release(); counters of the Kafka source
 * and the dispatcher are read through their thread-safe stats calls.
 * docs/http-api.md describes every endpoint and metric.
 */
#ifndef CANARYD_HTTP_API_H
#define CANARYD_HTTP_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canaryd/config.h"
#include "canaryd/dispatcher.h"
#include "canaryd/history.h"
#include "canaryd/kafka_source.h"
#include "canaryd/snapshot.h"
#include "canaryd/window.h"

#define CD_HTTP_DEFAULT_PORT 8686
#define CD_HTTP_DEFAULT_MAX_LAG 10000
#define CD_HTTP_MAX_BODY (64 * 1024)

/* The parsed "http" section. Plain data. token is a secret: never log it. */
typedef struct cd_http_conf {
    bool enabled;    /* the section is present: the server runs */
    char host[256];  /* numeric IPv4 address; default "127.0.0.1" */
    int port;        /* 0..65535, 0 = any free port; default 8686 */
    bool loopback;   /* host is in 127.0.0.0/8 */
    char token[256]; /* bearer token for write endpoints; "" = none */
    int64_t max_lag; /* readiness bound, messages per partition */
} cd_http_conf_t;

/*
 * Parses cfg->http_json (NULL = absent: enabled false, defaults) into *hc.
 * Problems go to diag with key paths ("http.bind: \"x\" is not HOST:PORT;
 * accepted: ..."); the token's value is never shown. token_file is read
 * here (relative paths against the current directory). Returns true when
 * there was no problem. Any thread.
 */
bool cd_http_conf_parse(const cd_config_t *cfg, cd_http_conf_t *hc, cd_diag_t *diag);

typedef struct cd_http cd_http_t;

/* What the handlers read besides snapshots; all borrowed, may be NULL, and
 * must stay valid until cd_http_stop() returned. */
typedef struct cd_http_sources {
    const cd_kafka_source_t *kafka;
    cd_dispatcher_t *disp;
    cd_history_t *history;   /* the status page's and /api/v1/history's series */
    const cd_config_t *cfg;  /* names in the charts' captions */
    /* GET /api/v1/windows reads the rules' window counts from it (lock-free
     * readers); NULL: that endpoint answers 404. Needs cfg. */
    const cd_window_t *window;
} cd_http_sources_t;

/* Creates a server (not listening yet). conf and src are copied. NULL +
 * message on failure. */
cd_http_t *cd_http_new(const cd_http_conf_t *conf, const cd_http_sources_t *src, char *errbuf,
                       size_t errsize);

/* Binds and starts serving; logs and prints "http: listening on HOST:PORT"
 * on stderr (the actual port when 0 was asked). 0, or -1 with a message.
 * Caller's thread. */
int cd_http_start(cd_http_t *h, char *errbuf, size_t errsize);

/*
 * Flagger's canary runs across restarts (ledger.h): restore_run records
 * key's ("namespace/name") last checksum as recovered at start, so that the
 * first hook after a restart compares with it (a changed checksum still
 * starts a new judgement; the same one answers the restored verdict). The
 * hook is called, from an HTTP thread, with the checksum of every Flagger
 * hook that carries one. Both before cd_http_start.
 */
void cd_http_restore_run(cd_http_t *h, const char *key, const char *checksum);
void cd_http_set_run_hook(cd_http_t *h,
                          void (*cb)(const char *key, const char *checksum, void *opaque),
                          void *opaque);

/* The bound port (0 before start). Any thread. */
int cd_http_port(const cd_http_t *h);

/* Publishes a copy of s (seq is assigned here). Any thread; in the agent,
 * the evaluating thread. */
void cd_http_publish(cd_http_t *h, const cd_snapshot_t *s);

/* A pending new judgement: copies the release into buf and returns true.
 * buf holds the release of a POST /api/v1/release, or "" when a Flagger
 * hook brought a new checksum (a new run of the same canary: judge again,
 * cd_pipeline_new_judgement). The caller applies it (cd_pipeline_new_release
 * or cd_pipeline_new_judgement), publishes a fresh snapshot and then calls
 * cd_http_release_done(), which answers the waiting requests. Evaluating
 * thread. */
bool cd_http_take_release(cd_http_t *h, char *buf, size_t size);
void cd_http_release_done(cd_http_t *h);

/* Stops serving (waits for handlers in progress). Idempotent. */
void cd_http_stop(cd_http_t *h);
void cd_http_destroy(cd_http_t *h);

#endif
