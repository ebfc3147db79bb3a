/*
 * webhook.c - the "webhook" sink: POSTs each record, in one of the formats
 * of webhook.h, to an HTTP(S) endpoint with libcurl's multi interface.
 *
 * Config (docs/sinks.md): url (secret: its path and query often are the
 * token), format, secret (HMAC key), headers {name: value} (values are
 * secrets), connect_timeout (5s), timeout (10s), username, receiver,
 * external_url.
 *
 * deliver() renders the body, adds the transfer to the multi handle and
 * returns PENDING; poll() drives it with curl_multi_poll (at most the
 * dispatcher's time slice) and reports the outcome: 2xx OK; 408, 429, 5xx and
 * transport errors (refused, timeout, DNS) RETRY, with the destination's
 * Retry-After (seconds or an HTTP date, parsed by libcurl's
 * CURLINFO_RETRY_AFTER); any other status DROP, logged with the status, a
 * sample of the answer and the destination as scheme://host/… only. One
 * transfer at a time (the dispatcher sends one record per sink at a time);
 * the easy handle is reused so the connection is kept alive.
 *
 * Signature (optional "secret"): X-Canaryd-Timestamp: <unix seconds> and
 * X-Canaryd-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>,
 * so a receiver can check origin and reject replays by the timestamp's age.
 *
 * Threading: dispatcher thread only (state is unshared).
 */
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canaryd/log.h"
#include "canaryd/sink.h"
#include "canaryd/webhook.h"
#include "sink_util.h"

#define ANSWER_SAMPLE 200

typedef struct webhook {
    char *url, *secret, *username, *receiver, *external_url, *name;
    char shown[300]; /* "webhook NAME (scheme://host/…)" for messages */
    cd_webhook_format_t format;
    int64_t connect_ms, timeout_ms;
    struct curl_slist *fixed; /* Content-Type, Expect:, configured headers */
    CURLM *multi;
    CURL *easy;
    /* the transfer in flight */
    bool busy;
    uint64_t id;
    char *body;
    struct curl_slist *hdrs;
    char answer[ANSWER_SAMPLE + 1];
    size_t answer_len;
} webhook_t;

static void webhook_destroy(void *state);

static size_t on_answer(char *data, size_t size, size_t n, void *opaque)
{
    webhook_t *w = opaque;
    size_t len = size * n, room = ANSWER_SAMPLE - w->answer_len;
    size_t take = len < room ? len : room;
    memcpy(w->answer + w->answer_len, data, take);
    w->answer_len += take;
    return len;
}

static bool parse_headers(webhook_t *w, const json_t *h, const char *path, cd_diag_t *diag)
{
    char p[256];
    const char *k;
    json_t *v;
    cd_sconf_path(p, sizeof(p), path, "headers");
    if (!json_is_object(h)) {
        cd_sconf_bad(diag, p, h, false, "is not an object",
                     "an object of header names to string values");
        return false;
    }
    json_object_foreach((json_t *)h, k, v)
    {
        char q[300];
        cd_sconf_path(q, sizeof(q), p, k);
        bool name_ok = *k != '\0';
        for (const char *c = k; *c; c++)
            name_ok &= (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                       (*c >= '0' && *c <= '9') || *c == '-' || *c == '_';
        if (!name_ok) {
            cd_diag_add(diag, "%s: not a header name; accepted: letters, digits, '-' and '_'", q);
            return false;
        }
        if (!json_is_string(v) || strpbrk(json_string_value(v), "\r\n") ||
            strlen(json_string_value(v)) != json_string_length(v)) {
            cd_sconf_bad(diag, q, v, true, "is not a header value", "a string without line breaks");
            return false;
        }
        char line[4096];
        snprintf(line, sizeof(line), "%s: %s", k, json_string_value(v));
        struct curl_slist *n = curl_slist_append(w->fixed, line);
        if (!n) return false;
        w->fixed = n;
    }
    return true;
}

static void *webhook_init(const void *conf, const char *path, cd_diag_t *diag)
{
    static const char *const KEYS[] = {
        "url",     "format",   "secret",   "headers",      "connect_timeout",
        "timeout", "username", "receiver", "external_url", NULL};
    const json_t *e = conf;
    int before = diag->count;
    char p[256];
    webhook_t *w = calloc(1, sizeof(*w));
    if (!w) {
        cd_diag_add(diag, "%s: out of memory", path);
        return NULL;
    }
    w->connect_ms = 5000;
    w->timeout_ms = 10000;
    cd_sconf_keys(diag, path, e, KEYS, true);
    cd_sconf_string(diag, path, e, "url", true, true, &w->url);
    int f = cd_sconf_enum(diag, path, e, "format", cd_webhook_format_names, CD_WEBHOOK_GENERIC);
    w->format = f < 0 ? CD_WEBHOOK_GENERIC : (cd_webhook_format_t)f;
    cd_sconf_string(diag, path, e, "secret", false, true, &w->secret);
    cd_sconf_string(diag, path, e, "username", false, false, &w->username);
    cd_sconf_string(diag, path, e, "receiver", false, false, &w->receiver);
    cd_sconf_string(diag, path, e, "external_url", false, false, &w->external_url);
    cd_sconf_string(diag, path, e, "name", false, false, &w->name);
    cd_sconf_duration(diag, path, e, "connect_timeout", 1, 600000, &w->connect_ms);
    cd_sconf_duration(diag, path, e, "timeout", 1, 600000, &w->timeout_ms);
    w->fixed = curl_slist_append(NULL, "Content-Type: application/json");
    /* no "Expect: 100-continue" round trip for bodies over 1 KiB */
    if (w->fixed) w->fixed = curl_slist_append(w->fixed, "Expect:");
    if (!w->fixed) cd_diag_add(diag, "%s: out of memory", path);
    json_t *h = json_object_get(e, "headers");
    if (h && w->fixed) parse_headers(w, h, path, diag);
    if (w->url) {
        char red[256];
        cd_sink_redact_url(w->url, red, sizeof(red));
        snprintf(w->shown, sizeof(w->shown), "webhook %s (%s)", w->name ? w->name : "-", red);
        CURLU *u = curl_url();
        char *scheme = NULL;
        if (!u || curl_url_set(u, CURLUPART_URL, w->url, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
            cd_sconf_path(p, sizeof(p), path, "url");
            cd_diag_add(diag,
                        "%s: %s is not an http or https URL; accepted: "
                        "\"https://host/path\"",
                        p, red);
        }
        curl_free(scheme);
        curl_url_cleanup(u);
    }
    if (diag->count > before) goto err;
    w->multi = curl_multi_init();
    w->easy = curl_easy_init();
    if (!w->multi || !w->easy) {
        cd_diag_add(diag, "%s: libcurl failed to initialise", path);
        goto err;
    }
    return w;
err:
    webhook_destroy(w);
    return NULL;
}

/* hex HMAC-SHA256(secret, "<ts>.<body>") */
static bool sign(const webhook_t *w, const char *ts, const char *body, size_t len, char *hex)
{
    size_t tl = strlen(ts);
    unsigned char *msg = malloc(tl + 1 + len), mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (!msg) return false;
    memcpy(msg, ts, tl);
    msg[tl] = '.';
    memcpy(msg + tl + 1, body, len);
    bool ok = HMAC(EVP_sha256(), w->secret, (int)strlen(w->secret), msg, tl + 1 + len, mac,
                   &maclen) != NULL;
    free(msg);
    for (unsigned i = 0; ok && i < maclen; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    return ok;
}

static void end_transfer(webhook_t *w)
{
    if (!w->busy) return;
    curl_multi_remove_handle(w->multi, w->easy);
    curl_slist_free_all(w->hdrs);
    w->hdrs = NULL;
    free(w->body);
    w->body = NULL;
    w->busy = false;
}

static cd_sink_result_t webhook_deliver(void *state, const cd_sink_msg_t *m,
                                        int64_t *retry_after_ms)
{
    webhook_t *w = state;
    cd_webhook_opts_t o = {w->username, w->receiver, w->external_url};
    size_t len = 0;
    (void)retry_after_ms;
    CD_ASSERT(!w->busy);
    w->body = cd_webhook_render(w->format, m, &o, &len);
    if (!w->body) {
        cd_log_ratelimited(w->shown, CD_LOG_ERROR, "%s: out of memory rendering a record",
                           w->shown);
        return CD_SINK_RETRY;
    }
    struct curl_slist *h = NULL;
    for (struct curl_slist *s = w->fixed; s; s = s->next)
        if (!(h = curl_slist_append(h, s->data))) goto oom;
    if (w->secret) {
        char ts[32], line[256], hex[2 * EVP_MAX_MD_SIZE + 1];
        snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
        if (!sign(w, ts, w->body, len, hex)) goto oom;
        snprintf(line, sizeof(line), "X-Canaryd-Timestamp: %s", ts);
        if (!(h = curl_slist_append(h, line))) goto oom;
        snprintf(line, sizeof(line), "X-Canaryd-Signature: sha256=%s", hex);
        if (!(h = curl_slist_append(h, line))) goto oom;
    }
    if (m->fencing_token) { /* coordination: a receiver can discard a deposed notifier's */
        char line[64];
        snprintf(line, sizeof(line), "X-Canaryd-Fencing-Token: %llu",
                 (unsigned long long)m->fencing_token);
        if (!(h = curl_slist_append(h, line))) goto oom;
    }
    w->hdrs = h;
    w->answer_len = 0;
    CURL *c = w->easy;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, w->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, w->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, w->hdrs);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "canaryd/" CANARYD_VERSION);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)w->connect_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)w->timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_answer);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, w);
    if (curl_multi_add_handle(w->multi, c) != CURLM_OK) {
        curl_slist_free_all(w->hdrs);
        w->hdrs = NULL;
        free(w->body);
        w->body = NULL;
        return CD_SINK_RETRY;
    }
    w->busy = true;
    w->id = m->id;
    return CD_SINK_PENDING;
oom:
    curl_slist_free_all(h);
    free(w->body);
    w->body = NULL;
    cd_log_ratelimited(w->shown, CD_LOG_ERROR, "%s: out of memory preparing a request", w->shown);
    return CD_SINK_RETRY;
}

static cd_sink_result_t classify(webhook_t *w, CURLcode code, int64_t *retry_after_ms)
{
    long status = 0;
    curl_off_t ra = 0;
    char sample[CD_LOG_ESCAPED_MAX];
    if (code != CURLE_OK) {
        /* curl_easy_strerror: a fixed text that never carries the URL */
        cd_log_ratelimited(w->shown, CD_LOG_WARN, "%s: %s", w->shown, curl_easy_strerror(code));
        return CD_SINK_RETRY;
    }
    curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) return CD_SINK_OK;
    cd_log_escape(w->answer, w->answer_len, sample, sizeof(sample));
    if (status == 408 || status == 429 || status >= 500) {
        if (curl_easy_getinfo(w->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
            *retry_after_ms = (int64_t)ra * 1000;
        cd_log_ratelimited(w->shown, CD_LOG_WARN, "%s: HTTP %ld%s%s: %s", w->shown, status,
                           ra > 0 ? ", Retry-After " : "", ra > 0 ? "given" : "", sample);
        return CD_SINK_RETRY;
    }
    cd_log(CD_LOG_ERROR, "%s: HTTP %ld, record dropped (not retried): %s", w->shown, status,
           sample);
    return CD_SINK_DROP;
}

static int webhook_poll(void *state, int timeout_ms, cd_sink_done_cb done, void *opaque)
{
    webhook_t *w = state;
    int running = 0, left = 0;
    if (!w->busy) return 0;
    curl_multi_perform(w->multi, &running);
    if (running && timeout_ms > 0) {
        curl_multi_poll(w->multi, NULL, 0, timeout_ms, NULL);
        curl_multi_perform(w->multi, &running);
    }
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(w->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        int64_t ra = -1;
        cd_sink_result_t r = classify(w, msg->data.result, &ra);
        uint64_t id = w->id;
        end_transfer(w);
        done(opaque, id, r, ra);
        return 0;
    }
    return w->busy ? 1 : 0;
}

static void webhook_destroy(void *state)
{
    webhook_t *w = state;
    if (!w) return;
    end_transfer(w);
    if (w->easy) curl_easy_cleanup(w->easy);
    if (w->multi) curl_multi_cleanup(w->multi);
    curl_slist_free_all(w->fixed);
    free(w->url);
    free(w->secret);
    free(w->username);
    free(w->receiver);
    free(w->external_url);
    free(w->name);
    free(w);
}

const struct cd_sink_ops cd_sink_webhook = {
    .name = "webhook",
    .init = webhook_init,
    .deliver = webhook_deliver,
    .poll = webhook_poll,
    .destroy = webhook_destroy,
};
