/*
 * kafka.c - the kafka sink: produces each record's JSON to a topic with an
 * idempotent librdkafka producer (enable.idempotence=true: librdkafka's own
 * retries neither duplicate nor reorder a partition's records), keyed by the
 * release so every record of one release lands in one partition, in order.
 *
 * Asynchronous: deliver hands the record to librdkafka (which copies it) and
 * returns PENDING; librdkafka's delivery report later says how it went. The
 * report callback runs inside rd_kafka_poll / rd_kafka_flush on the calling
 * thread (the dispatcher's) and only appends (id, result) to a list; poll()
 * hands that list to the dispatcher. Going through a list lets flush(),
 * which has no callback to report to, serve reports too: they are handed
 * over at the next poll. Nothing here is shared with another thread except
 * what librdkafka synchronises itself (its log and error callbacks go to
 * cd_log, which any thread may call), so there is no lock.
 *
 * Results: a report without error is OK; errors librdkafka gives up on but
 * that can pass (message timeout with the brokers down, not enough
 * replicas, leader changes, a full local queue) are RETRY; anything else,
 * and every error once the producer has hit a fatal error (the idempotence
 * guarantee could not be kept: librdkafka's rd_kafka_fatal_error), is DROP,
 * logged. A producer in that fatal state is unusable for good, so the next
 * deliver replaces it with a new one built from the same config.
 *
 * How long a record may stay PENDING is librdkafka's message.timeout.ms
 * (default 300000: 5 minutes of its own retries), settable in "properties".
 * flush() and destroy() wait at most flush_timeout for outstanding records;
 * destroy then purges what is left (abandoned, as sink.h says).
 *
 * Config: "properties" are handed to librdkafka as they are, one
 * rd_kafka_conf_set each, so its own validation applies and its message is
 * quoted with the key path. Values of properties that look secret
 * (passwords, secrets, PEM keys, OAUTHBEARER config) are never shown.
 */
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canaryd/log.h"
#include "canaryd/sink.h"
#include "sink_util.h"

#define KS_FLUSH_MAX_MS 60000

typedef struct report {
    uint64_t id;
    cd_sink_result_t r;
} report_t;

typedef struct kafka_sink {
    char where[320];            /* "sinks.outputs[1] (topic canaryd.verdicts)": names it in logs */
    rd_kafka_conf_t *conf_tmpl; /* the validated config, for a new producer after a fatal error */
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    char *brokers, *topic;
    int64_t flush_timeout_ms;
    int in_flight;     /* produced, not yet handed to the dispatcher */
    report_t *reports; /* finished, waiting for poll() */
    size_t nreports, cap;
    bool report_oom; /* a report could not be stored: see kafka_poll */
    bool closing;    /* destroy: reports of purged records are not handed over */
    int abandoned;   /* records purged by destroy */
} kafka_sink_t;

extern const struct cd_sink_ops cd_sink_kafka;

/* --- librdkafka callbacks ----------------------------------------------------- */

/* Errors after which a new attempt can succeed. */
static bool retriable(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC: /* may be being created */
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
    case RD_KAFKA_RESP_ERR_NOT_CONTROLLER:
        return true;
    default:
        return false;
    }
}

static cd_sink_result_t classify(kafka_sink_t *s, rd_kafka_t *rk, rd_kafka_resp_err_t err)
{
    if (!err) return CD_SINK_OK;
    bool fatal = err == RD_KAFKA_RESP_ERR__FATAL || rd_kafka_fatal_error(rk, NULL, 0);
    cd_sink_result_t r = !fatal && retriable(err) ? CD_SINK_RETRY : CD_SINK_DROP;
    char key[400];
    snprintf(key, sizeof(key), "kafka sink %s delivery", s->where);
    cd_log_ratelimited(key, r == CD_SINK_RETRY ? CD_LOG_WARN : CD_LOG_ERROR,
                       "kafka sink %s: delivery failed: %s (%s)%s", s->where, rd_kafka_err2str(err),
                       rd_kafka_err2name(err),
                       r == CD_SINK_RETRY ? "; retried"
                       : fatal            ? "; record dropped: the producer hit a fatal error"
                                          : "; record dropped");
    return r;
}

static void push_report(kafka_sink_t *s, uint64_t id, cd_sink_result_t r)
{
    if (s->nreports == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        report_t *n = realloc(s->reports, cap * sizeof(*n));
        if (!n) {
            s->report_oom = true;
            return;
        }
        s->reports = n;
        s->cap = cap;
    }
    s->reports[s->nreports++] = (report_t){id, r};
}

/* Delivery report: on the thread calling rd_kafka_poll / rd_kafka_flush. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    kafka_sink_t *s = opaque;
    uint64_t *id = m->_private;
    if (!id) return;
    if (s->closing)
        s->abandoned += m->err != RD_KAFKA_RESP_ERR_NO_ERROR;
    else
        push_report(s, *id, classify(s, rk, m->err));
    free(id);
}

/* Client-level errors (brokers unreachable, authentication): logged. The
 * records concerned are reported through their delivery reports. */
static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kafka_sink_t *s = opaque;
    char key[400];
    (void)rk;
    if (s->closing) return; /* shutdown, or check-config's build-and-free */
    snprintf(key, sizeof(key), "kafka sink %s error", s->where);
    cd_log_ratelimited(key, err == RD_KAFKA_RESP_ERR__FATAL ? CD_LOG_ERROR : CD_LOG_WARN,
                       "kafka sink %s: %s: %s", s->where,
                       rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* librdkafka's own log lines (any librdkafka thread), at their syslog level. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    char key[96];
    (void)rk;
    cd_log_level_t l = level <= 3   ? CD_LOG_ERROR
                       : level == 4 ? CD_LOG_WARN
                       : level <= 6 ? CD_LOG_INFO
                                    : CD_LOG_DEBUG;
    /* FAIL lines repeat what on_error reports: kept for debugging only. */
    if (strcmp(fac, "FAIL") == 0) l = CD_LOG_DEBUG;
    if (!cd_log_enabled(l)) return;
    snprintf(key, sizeof(key), "librdkafka %s", fac);
    cd_log_ratelimited(key, l, "kafka sink: librdkafka %s: %s", fac, buf);
}

/* --- config ------------------------------------------------------------------- */

static const char *const known_keys[] = {"brokers", "topic", "properties", "flush_timeout", NULL};

/* Properties whose values are never shown. */
static bool secret_property(const char *name)
{
    return strstr(name, "password") || strstr(name, "secret") || strstr(name, ".pem") ||
           strstr(name, "oauthbearer.config") || strstr(name, "sasl.jaas");
}

/* A property value as librdkafka's string, or false if v is not a scalar. */
static bool property_text(const json_t *v, char *buf, size_t size)
{
    if (json_is_string(v)) {
        if (strlen(json_string_value(v)) != json_string_length(v)) return false; /* NUL */
        return (size_t)snprintf(buf, size, "%s", json_string_value(v)) < size;
    }
    if (json_is_integer(v))
        return (size_t)snprintf(buf, size, "%lld", (long long)json_integer_value(v)) < size;
    if (json_is_boolean(v))
        return (size_t)snprintf(buf, size, "%s", json_is_true(v) ? "true" : "false") < size;
    if (json_is_real(v)) return (size_t)snprintf(buf, size, "%.17g", json_real_value(v)) < size;
    return false;
}

/* `<path>.properties["linger.ms"]`: the names hold dots, so they are quoted. */
static void property_path(char *out, size_t size, const char *path, const char *name)
{
    json_t *j = json_string(name);
    char *q = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
    snprintf(out, size, "%s.properties[%s]", path, q ? q : "\"?\"");
    free(q);
    json_decref(j);
}

static bool set_property(rd_kafka_conf_t *conf, cd_diag_t *d, const char *path, const char *name,
                         const json_t *v)
{
    static const char accepted[] =
        "a librdkafka producer property (see librdkafka's CONFIGURATION.md) with a string, "
        "integer or boolean value";
    char p[320], val[4096], err[512];
    bool secret = secret_property(name);
    property_path(p, sizeof(p), path, name);
    if (!property_text(v, val, sizeof(val))) {
        cd_sconf_bad(d, p, v, secret, "is not a string, number or boolean", accepted);
        return false;
    }
    if (strcmp(name, "bootstrap.servers") == 0 || strcmp(name, "metadata.broker.list") == 0) {
        cd_sconf_bad(d, p, v, false, "is set by the sink's \"brokers\"",
                     "\"brokers\" instead of this property");
        return false;
    }
    if (strcmp(name, "enable.idempotence") == 0 && strcmp(val, "true") != 0) {
        cd_sconf_bad(d, p, v, false, "would turn off the idempotent producer",
                     "true (the default here: verdicts must not be duplicated or reordered by "
                     "librdkafka's retries)");
        return false;
    }
    if (rd_kafka_conf_set(conf, name, val, err, sizeof(err)) == RD_KAFKA_CONF_OK) return true;
    char problem[700];
    if (secret && strstr(err, val))
        snprintf(problem, sizeof(problem),
                 "is rejected by librdkafka (its message would show the value)");
    else
        snprintf(problem, sizeof(problem), "is rejected by librdkafka: %s", err);
    cd_sconf_bad(d, p, v, secret, problem, accepted);
    return false;
}

/* Kafka's rule for topic names. */
static bool topic_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 249 || strcmp(t, ".") == 0 || strcmp(t, "..") == 0) return false;
    for (; *t; t++)
        if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') || (*t >= '0' && *t <= '9') ||
              *t == '.' || *t == '_' || *t == '-'))
            return false;
    return true;
}

/* Builds the producer and topic handle from conf_tmpl (kept for later). */
static bool start_producer(kafka_sink_t *s, char *err, size_t errsize)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_dup(s->conf_tmpl);
    if (!conf) {
        snprintf(err, errsize, "out of memory");
        return false;
    }
    s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errsize);
    if (!s->rk) {
        rd_kafka_conf_destroy(conf); /* not taken on failure */
        return false;
    }
    s->rkt = rd_kafka_topic_new(s->rk, s->topic, NULL);
    if (!s->rkt) {
        snprintf(err, errsize, "topic: %s", rd_kafka_err2str(rd_kafka_last_error()));
        rd_kafka_destroy(s->rk);
        s->rk = NULL;
        return false;
    }
    return true;
}

/* Purges what is outstanding, serves the reports (freeing their ids) and
 * destroys the producer. */
static void stop_producer(kafka_sink_t *s)
{
    if (!s->rk) return;
    rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    /* Purged records are reported at once; flush serves those reports
     * (the bound is for safety, not expected to be reached). */
    rd_kafka_flush(s->rk, 1000);
    if (s->rkt) rd_kafka_topic_destroy(s->rkt);
    rd_kafka_destroy(s->rk);
    s->rkt = NULL;
    s->rk = NULL;
}

static void kafka_destroy(void *state);

static void *kafka_init(const void *conf_, const char *path, cd_diag_t *diag)
{
    const json_t *conf = conf_;
    char err[512], p[320];
    kafka_sink_t *s = calloc(1, sizeof(*s));
    if (!s) {
        cd_diag_add(diag, "%s: out of memory", path);
        return NULL;
    }
    s->flush_timeout_ms = 5000;
    if (!json_is_object(conf)) {
        cd_sconf_bad(diag, path, conf, false, "is not an object", "{\"type\": \"kafka\", ...}");
        goto err;
    }
    bool ok = cd_sconf_keys(diag, path, conf, known_keys, true);
    ok &= cd_sconf_string(diag, path, conf, "brokers", true, false, &s->brokers);
    if (cd_sconf_string(diag, path, conf, "topic", true, false, &s->topic)) {
        if (!topic_ok(s->topic)) {
            cd_sconf_path(p, sizeof(p), path, "topic");
            cd_sconf_bad(diag, p, json_object_get(conf, "topic"), false, "is not a topic name",
                         "1 to 249 characters of a-z A-Z 0-9 . _ -");
            ok = false;
        }
    } else {
        ok = false;
    }
    ok &= cd_sconf_duration(diag, path, conf, "flush_timeout", 0, KS_FLUSH_MAX_MS,
                            &s->flush_timeout_ms);
    snprintf(s->where, sizeof(s->where), "%s (topic %s)", path, s->topic ? s->topic : "?");

    if (!(s->conf_tmpl = rd_kafka_conf_new())) {
        cd_diag_add(diag, "%s: out of memory", path);
        goto err;
    }
    /* Ours first, so the user's properties can override the defaults but
     * not the guarantees (set_property refuses those). */
    static const char *const defaults[][2] = {{"enable.idempotence", "true"},
                                              {"client.id", "canaryd"}};
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        if (rd_kafka_conf_set(s->conf_tmpl, defaults[i][0], defaults[i][1], err, sizeof(err)) !=
            RD_KAFKA_CONF_OK) {
            cd_diag_add(diag, "%s: librdkafka refused %s=%s: %s", path, defaults[i][0],
                        defaults[i][1], err);
            ok = false;
        }
    if (s->brokers && rd_kafka_conf_set(s->conf_tmpl, "bootstrap.servers", s->brokers, err,
                                        sizeof(err)) != RD_KAFKA_CONF_OK) {
        cd_sconf_path(p, sizeof(p), path, "brokers");
        cd_sconf_bad(diag, p, json_object_get(conf, "brokers"), false, err,
                     "\"host:port[,host:port...]\"");
        ok = false;
    }
    const json_t *props = json_object_get(conf, "properties");
    if (props && !json_is_object(props)) {
        cd_sconf_path(p, sizeof(p), path, "properties");
        cd_sconf_bad(diag, p, props, false, "is not an object",
                     "an object of librdkafka producer properties, such as {\"linger.ms\": 5}");
        ok = false;
    } else if (props) {
        const char *name;
        json_t *v;
        json_object_foreach((json_t *)props, name, v) ok &=
            set_property(s->conf_tmpl, diag, path, name, v);
    }
    if (!ok) goto err;

    rd_kafka_conf_set_opaque(s->conf_tmpl, s);
    rd_kafka_conf_set_dr_msg_cb(s->conf_tmpl, on_delivery);
    rd_kafka_conf_set_error_cb(s->conf_tmpl, on_error);
    rd_kafka_conf_set_log_cb(s->conf_tmpl, on_log);
    if (!start_producer(s, err, sizeof(err))) {
        /* Properties that are valid one by one but not together, such as
         * acks=1 with the idempotent producer. */
        cd_sconf_path(p, sizeof(p), path, "properties");
        cd_diag_add(diag,
                    "%s: librdkafka cannot make a producer from them: %s; accepted: "
                    "properties that work with enable.idempotence=true",
                    p, err);
        goto err;
    }
    return s;
err:
    kafka_destroy(s);
    return NULL;
}

/* --- delivery ----------------------------------------------------------------- */

static cd_sink_result_t kafka_deliver(void *state, const cd_sink_msg_t *m, int64_t *retry_after_ms)
{
    kafka_sink_t *s = state;
    char err[512];
    (void)retry_after_ms;

    if (s->rk && rd_kafka_fatal_error(s->rk, err, sizeof(err))) {
        cd_log(CD_LOG_ERROR, "kafka sink %s: producer failed for good (%s); starting a new one",
               s->where, err);
        stop_producer(s); /* its outstanding records are reported as dropped */
    }
    if (!s->rk && !start_producer(s, err, sizeof(err))) {
        char key[400];
        snprintf(key, sizeof(key), "kafka sink %s start", s->where);
        cd_log_ratelimited(key, CD_LOG_ERROR, "kafka sink %s: cannot start a producer: %s",
                           s->where, err);
        return CD_SINK_RETRY;
    }

    uint64_t *id = malloc(sizeof(*id));
    if (!id) return CD_SINK_RETRY;
    *id = m->id;
    const char *release = m->v->release;
    size_t klen = release ? strlen(release) : 0;
    rd_kafka_resp_err_t e = rd_kafka_producev(
        s->rk, RD_KAFKA_V_RKT(s->rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        /* no release known: no key, so the partitioner spreads such records */
        RD_KAFKA_V_KEY(klen ? release : NULL, klen), RD_KAFKA_V_VALUE((void *)m->json, m->json_len),
        RD_KAFKA_V_OPAQUE(id), RD_KAFKA_V_END);
    if (e) {
        free(id);
        return classify(s, s->rk, e);
    }
    s->in_flight++;
    return CD_SINK_PENDING;
}

static int kafka_poll(void *state, int timeout_ms, cd_sink_done_cb done, void *opaque)
{
    kafka_sink_t *s = state;
    if (s->rk) rd_kafka_poll(s->rk, s->nreports || !s->in_flight ? 0 : timeout_ms);
    for (size_t i = 0; i < s->nreports; i++) {
        s->in_flight--;
        done(opaque, s->reports[i].id, s->reports[i].r, -1);
    }
    s->nreports = 0;
    if (s->report_oom && s->rk && rd_kafka_outq_len(s->rk) == 0) {
        /* Reports were lost to an allocation failure: once librdkafka holds
         * nothing, whatever the dispatcher still waits for is gone. */
        s->in_flight = 0;
        s->report_oom = false;
    }
    return s->in_flight;
}

static void kafka_flush(void *state)
{
    kafka_sink_t *s = state;
    if (!s->rk || s->in_flight == 0) return; /* nothing of ours outstanding */
    if (rd_kafka_flush(s->rk, (int)s->flush_timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        cd_log(CD_LOG_WARN, "kafka sink %s: %d record(s) still outstanding after flush_timeout",
               s->where, rd_kafka_outq_len(s->rk));
}

static void kafka_destroy(void *state)
{
    kafka_sink_t *s = state;
    if (!s) return;
    if (s->rk) {
        s->closing = true;
        kafka_flush(s);
        stop_producer(s);
        if (s->abandoned)
            cd_log(CD_LOG_WARN, "kafka sink %s: %d record(s) abandoned at shutdown", s->where,
                   s->abandoned);
    }
    if (s->conf_tmpl) rd_kafka_conf_destroy(s->conf_tmpl);
    free(s->reports);
    free(s->brokers);
    free(s->topic);
    free(s);
}

const struct cd_sink_ops cd_sink_kafka = {
    .name = "kafka",
    .init = kafka_init,
    .deliver = kafka_deliver,
    .poll = kafka_poll,
    .flush = kafka_flush,
    .reopen = NULL,
    .destroy = kafka_destroy,
};
