/*
 * http_receiver.c - the test HTTP receiver (see http_receiver.h).
 *
 * One MHD daemon with a thread per connection (so a scripted delay holds
 * only its own request). A request's body arrives over several calls of the
 * access handler; it is accumulated in the connection's context and the
 * request is recorded and answered on the last call. Answers are counted
 * after they are queued, so rx_wait(n) returning means the sink has (or is
 * about to have) its answer.
 */
#include "http_receiver.h"

#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct rx {
    struct MHD_Daemon *mhd;
    uint16_t port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rx_request_t req[RX_MAX_REQUESTS];
    int n;
    rx_answer_t script[RX_MAX_SCRIPT];
    int nscript, next;
};

typedef struct rx_conn {
    char *body;
    size_t len;
    char *headers;
    size_t hlen;
} rx_conn_t;

static int64_t rx_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum MHD_Result rx_add_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    rx_conn_t *c = cls;
    (void)kind;
    size_t add = strlen(key) + strlen(value ? value : "") + 3;
    char *h = realloc(c->headers, c->hlen + add + 1);
    if (!h) return MHD_NO;
    c->headers = h;
    c->hlen += (size_t)snprintf(h + c->hlen, add + 1, "%s: %s\n", key, value ? value : "");
    return MHD_YES;
}

static enum MHD_Result rx_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    rx_t *r = cls;
    rx_conn_t *c = *con_cls;
    (void)version;
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c) return MHD_NO;
        *con_cls = c;
        return MHD_YES;
    }
    if (*upload_size) {
        char *b = realloc(c->body, c->len + *upload_size + 1);
        if (!b) return MHD_NO;
        memcpy(b + c->len, upload, *upload_size);
        c->body = b;
        c->len += *upload_size;
        c->body[c->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    MHD_get_connection_values(conn, MHD_HEADER_KIND, rx_add_header, c);
    rx_answer_t a = {200, NULL, "ok", 0};
    pthread_mutex_lock(&r->mu);
    if (r->next < r->nscript) a = r->script[r->next++];
    pthread_mutex_unlock(&r->mu);
    if (a.delay_ms > 0) {
        struct timespec ts = {a.delay_ms / 1000, (a.delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    rx_request_t q = {0};
    snprintf(q.method, sizeof(q.method), "%s", method);
    const char *query = NULL;
    (void)query;
    snprintf(q.path, sizeof(q.path), "%s", url);
    q.headers = c->headers ? c->headers : strdup("");
    c->headers = NULL;
    q.body = c->body ? c->body : strdup("");
    q.body_len = c->len;
    c->body = NULL;
    q.at_ms = rx_now();
    q.status = a.status;

    const char *body = a.body ? a.body : "";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (a.header) {
        char name[128];
        const char *colon = strchr(a.header, ':');
        snprintf(name, sizeof(name), "%.*s", (int)(colon - a.header), a.header);
        MHD_add_response_header(resp, name, colon + 2);
    }
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)a.status, resp);
    MHD_destroy_response(resp);

    pthread_mutex_lock(&r->mu);
    if (r->n < RX_MAX_REQUESTS) {
        r->req[r->n++] = q;
    } else {
        free(q.headers);
        free(q.body);
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return ret;
}

static void rx_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    rx_conn_t *c = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (!c) return;
    free(c->body);
    free(c->headers);
    free(c);
    *con_cls = NULL;
}

static bool rx_listen(rx_t *r, uint16_t port)
{
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, port,
                              NULL, NULL, rx_handler, r, MHD_OPTION_SOCK_ADDR, &sa,
                              MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U, MHD_OPTION_NOTIFY_COMPLETED,
                              rx_completed, r, MHD_OPTION_END);
    if (!r->mhd) return false;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(r->mhd, MHD_DAEMON_INFO_BIND_PORT);
    r->port = info ? info->port : port;
    return true;
}

/* The first port of the kernel's ephemeral range (outgoing connections and
 * bind(0) take their ports from it). */
static unsigned ephemeral_low(void)
{
    unsigned lo = 32768, hi;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%u %u", &lo, &hi) != 2) lo = 32768;
        fclose(f);
    }
    return lo;
}

/* Port 0 means "any free one", taken BELOW the ephemeral range: rx_pause
 * frees the port for seconds and rx_resume binds it again, and a port from
 * the ephemeral range can meanwhile become another process's outgoing
 * connection or bind(0) listener (a mock Kafka broker of a suite running
 * beside this one: the webhook then talked to it; failed once in CI). */
static bool rx_listen_any(rx_t *r)
{
    unsigned lo = ephemeral_low();
    if (lo > 20000) {
        unsigned span = lo - 20000;
        unsigned seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
        for (int i = 0; i < 200; i++) {
            seed = seed * 1103515245u + 12345u;
            if (rx_listen(r, (uint16_t)(20000 + (seed >> 8) % span))) return true;
        }
    }
    return rx_listen(r, 0);
}

rx_t *rx_start(uint16_t port)
{
    rx_t *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (!(port == 0 ? rx_listen_any(r) : rx_listen(r, port))) {
        free(r);
        return NULL;
    }
    return r;
}

uint16_t rx_port(const rx_t *r)
{
    return r->port;
}

void rx_pause(rx_t *r)
{
    if (r->mhd) MHD_stop_daemon(r->mhd);
    r->mhd = NULL;
}

bool rx_resume(rx_t *r)
{
    return rx_listen(r, r->port);
}

void rx_script(rx_t *r, const rx_answer_t *a, int n)
{
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < n && r->nscript < RX_MAX_SCRIPT; i++)
        r->script[r->nscript++] = a[i];
    pthread_mutex_unlock(&r->mu);
}

bool rx_wait(rx_t *r, int n, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->mu);
    while (r->n < n)
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) != 0) break;
    bool ok = r->n >= n;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

int rx_count(rx_t *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

rx_request_t rx_get(rx_t *r, int i)
{
    rx_request_t q = {0};
    pthread_mutex_lock(&r->mu);
    if (i < r->n) {
        q = r->req[i];
        q.headers = strdup(q.headers);
        q.body = malloc(q.body_len + 1);
        memcpy(q.body, r->req[i].body, q.body_len + 1);
    }
    pthread_mutex_unlock(&r->mu);
    return q;
}

void rx_request_free(rx_request_t *q)
{
    free(q->headers);
    free(q->body);
    q->headers = q->body = NULL;
}

bool rx_header(const rx_request_t *q, const char *name, char *out, size_t size)
{
    size_t nl = strlen(name);
    for (const char *l = q->headers; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        if (len > nl + 1 && strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            snprintf(out, size, "%.*s", (int)(len - nl - 2), l + nl + 2);
            return true;
        }
        l += len + (e ? 1 : 0);
    }
    return false;
}

void rx_stop(rx_t *r)
{
    if (!r) return;
    rx_pause(r);
    for (int i = 0; i < r->n; i++)
        rx_request_free(&r->req[i]);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}
