/*
 * http_internal.h - what http_api.c (server, routes) and http_metrics.c
 * (the Prometheus page) share. Internal to agent/.
 */
#ifndef CANARYD_AGENT_HTTP_INTERNAL_H
#define CANARYD_AGENT_HTTP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "canaryd/http_api.h"
#include "canaryd/window.h"

/* Status codes counted in canaryd_http_requests_total. */
#define CD_HTTP_NCODES 11
extern const int cd_http_codes[CD_HTTP_NCODES];

/*
 * Renders the Prometheus text exposition (format 0.0.4) of snapshot s, the
 * Kafka source's counters and lag (k may be NULL), the dispatcher's sinks
 * (d may be NULL) and the API's own request counts (by cd_http_codes
 * index). Returns a malloc'd NUL-terminated text (caller frees) and its
 * length, or NULL when out of memory. Any thread (the sources' stats calls
 * are thread-safe).
 */
char *cd_http_metrics_render(const cd_snapshot_t *s, const cd_kafka_source_t *k, cd_dispatcher_t *d,
                             const uint64_t codes[CD_HTTP_NCODES], size_t *len);

/* agent/http/http_page.c: the status page (static), its dashboard JSON (the
 * charts rendered by agent/report/chart.c over the last 15 minutes of h, which may
 * be NULL), and /api/v1/history's JSON (points and marks after since_ms).
 * Each returns a malloc'd NUL-terminated text (caller frees) and its
 * length, or NULL when out of memory. HTTP threads. */
char *cd_http_page_render(size_t *len);
char *cd_http_dashboard_render(const cd_snapshot_t *s, cd_history_t *h, const cd_config_t *cfg,
                               const cd_kafka_source_t *k, cd_dispatcher_t *d, int64_t now_ms,
                               size_t *len);
char *cd_http_history_render(cd_history_t *h, int64_t since_ms, size_t *len);

/* agent/http/http_windows.c: GET /api/v1/windows's reply for ?at= (NULL:
 * the last complete bucket boundary), judged_ms from the latest snapshot;
 * *status gets the HTTP status (200, 400, 404 no longer retained, 409 not
 * complete yet, 500). A new reference (caller decrefs). HTTP threads. */
json_t *cd_http_windows_json(const cd_config_t *cfg, const cd_window_t *w, int64_t judged_ms,
                             const char *at, int *status);

#endif
