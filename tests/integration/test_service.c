/*
 * test_service.c - the service name end to end (issue 10, item 5), through
 * the built binary ($CANARYD_BIN), as a user runs it.
 *
 *  - every_sink_names_the_service: `canaryd replay` of a generated
 *    error-regression stream whose events carry "service":"checkout", with
 *    no events.service (the service is learnt from the first canary event),
 *    into one sink of every type: the seven webhook formats (a local HTTP
 *    receiver, one path per format), Alertmanager's API (the same receiver,
 *    the rule's firing alert with its service label), an exec hook (a shell line appending
 *    $CANARYD_SERVICE to a file), Redis (a real redis-server on a free
 *    loopback port), Kafka (librdkafka's mock cluster, in this process) and
 *    the verdict log. Every payload of every record must name checkout:
 *    the verdict JSON's "service", the chat headline "... of checkout", the
 *    Alertmanager label, the exec variable, the Redis key
 *    canaryd:checkout:2.5.0:verdict (and never canaryd:unknown:...).
 *  - other_services_change_no_verdict: a healthy checkout stream merged in
 *    time order with another service's error regression ("search"). With
 *    CANARYD_SERVICE=checkout the records are exactly those of the checkout
 *    stream alone (projected to time, kind, verdict, rule, from, to), each
 *    naming checkout, the exit status is the same, and the summary counts
 *    the search events as other services, exactly; without it the same
 *    merged stream gives other records, so the filter is what kept them out.
 *    `canaryd baseline` captures the same values from both streams.
 *  - run_counts_other_services_in_metrics: `canaryd run` on the mock
 *    cluster with CANARYD_SERVICE=checkout: /metrics counts checkout's
 *    events as events, search's as other_service, those naming no service
 *    as no_service, names the service, and the exit summary says the same.
 *
 * Streams come from `canaryd generate` (deterministic), merged with
 * `sort -m` on the timestamp; processes run through /bin/sh -c with
 * posix_spawn, outputs in a scratch folder removed after.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http_receiver.c"
#include "kafka_mock.h"
#include "live_helpers.h"
#include "redis_server.h"

#define SOP CANARYD_SOURCE_DIR "/config/sop.json"
#define VERDICT_TOPIC "canaryd.verdicts"

static pid_t redis_pid = -1;
static int redis_port;
static rx_t *rx;
static pid_t agent; /* canaryd run, 0 when reaped */

/* Runs a shell command line; returns its exit status (-1 if killed). */
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    cr_assert(n > 0 && (size_t)n < sizeof(cmd));
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ);
    cr_assert_eq(rc, 0, "spawn sh: %s", strerror(rc));
    int st;
    while (waitpid(pid, &st, 0) < 0)
        cr_assert_eq(errno, EINTR);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The lines of a file, each a JSON object (NULL-terminated array of
 * owned references). */
static json_t *json_lines(const char *path)
{
    char *s = slurp(path);
    json_t *arr = json_array();
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t e;
        json_t *j = json_loads(line, 0, &e);
        cr_assert_not_null(j, "%s: not JSON (%s): %s", path, e.text, line);
        json_array_append_new(arr, j);
    }
    free(s);
    return arr;
}

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* redis-server on a free loopback port, no persistence, in the folder. */
static void redis_start(void)
{
    redis_port = free_port();
    redis_pid = redis_server_start(redis_port, scratch_dir(), NULL);
}

static void setup(void)
{
    scratch_make("canaryd-service-");
}

static void teardown(void)
{
    kill_children();
    agent = 0;
    redis_server_kill(&redis_pid);
    if (rx) rx_stop(rx);
    rx = NULL;
    mock_stop();
    scratch_remove();
}

TestSuite(service, .init = setup, .fini = teardown, .timeout = 300);

/* config/sop.json with a "sinks" section (a JSON text), written to cfg.json. */
static const char *config_with_sinks(const char *sinks)
{
    json_error_t e;
    json_t *cfg = json_load_file(SOP, 0, &e);
    cr_assert_not_null(cfg, "%s: %s", SOP, e.text);
    json_t *s = json_loads(sinks, 0, &e);
    cr_assert_not_null(s, "test sinks: %s: %s", e.text, sinks);
    json_object_set_new(cfg, "sinks", s);
    const char *p = path_of("cfg.json");
    cr_assert_eq(json_dump_file(cfg, p, JSON_INDENT(1)), 0);
    json_decref(cfg);
    return p;
}

static const char *const FORMATS[] = {"generic",    "slack",      "msteams",      "discord",
                                      "mattermost", "googlechat", "alertmanager", NULL};

/* Every message of the verdict topic (partition 0), from the beginning,
 * until n arrived or 20 s passed; payloads appended to out (JSON). */
static int consume_all(const char *brokers, int n, json_t *out)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)), 0);
    cr_assert_eq(rd_kafka_conf_set(conf, "group.id", "test-service", err, sizeof(err)), 0);
    cr_assert_eq(rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)), 0);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, VERDICT_TOPIC, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    cr_assert_eq(rd_kafka_assign(c, parts), 0);
    rd_kafka_topic_partition_list_destroy(parts);
    int got = 0;
    int64_t end = mono_ms() + 20000;
    while (got < n && mono_ms() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (!m) continue;
        if (!m->err) {
            json_error_t e;
            json_t *j = json_loadb(m->payload, m->len, 0, &e);
            cr_assert_not_null(j, "kafka payload is not JSON: %.*s", (int)m->len,
                               (const char *)m->payload);
            json_array_append_new(out, j);
            got++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return got;
}

Test(service, every_sink_names_the_service)
{
    /* the destinations */
    rx = rx_start(0);
    cr_assert_not_null(rx);
    redis_start();
    mock_start(VERDICT_TOPIC, 1);

    /* one sink of every type, each taking every record (verdicts and
     * states), no rate limit (the receiver is local) */
    char sinks[8192];
    int n = snprintf(sinks, sizeof(sinks), "{\"outputs\":[");
    const char *every = "\"filter\":{\"kinds\":[\"verdict\",\"state\"]},\"rate_limit\":0";
    for (int i = 0; FORMATS[i]; i++)
        n += snprintf(sinks + n, sizeof(sinks) - (size_t)n,
                      "{\"type\":\"webhook\",\"name\":\"%s\",\"format\":\"%s\","
                      "\"url\":\"http://127.0.0.1:%u/%s\",%s},",
                      FORMATS[i], FORMATS[i], rx_port(rx), FORMATS[i], every);
    n += snprintf(
        sinks + n, sizeof(sinks) - (size_t)n,
        "{\"type\":\"exec\",\"name\":\"hook\",\"command\":[\"/bin/sh\",\"-c\","
        "\"printf '%%s %%s\\\\n' \\\"$CANARYD_KIND\\\" \\\"$CANARYD_SERVICE\\\" >> %s\"],%s},",
        path_of("exec.out"), every);
    n += snprintf(sinks + n, sizeof(sinks) - (size_t)n,
                  "{\"type\":\"alertmanager\",\"name\":\"am\",\"url\":\"http://127.0.0.1:%u/am\","
                  "%s},",
                  rx_port(rx), every);
    n += snprintf(sinks + n, sizeof(sinks) - (size_t)n,
                  "{\"type\":\"redis\",\"address\":\"127.0.0.1:%d\",%s},", redis_port, every);
    n += snprintf(sinks + n, sizeof(sinks) - (size_t)n,
                  "{\"type\":\"kafka\",\"brokers\":\"%s\",\"topic\":\"%s\",%s}]}", bootstraps,
                  VERDICT_TOPIC, every);
    cr_assert_lt((size_t)n, sizeof(sinks));
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "%s", config_with_sinks(sinks)); /* path_of's buffers rotate */

    /* the stream: checkout's error regression, ROLLBACK at 12:09:24 */
    cr_assert_eq(sh("'%s' generate --scenario error-regression --duration 11m > '%s'",
                    canaryd_bin(), path_of("events.jsonl")),
                 0);
    int rc =
        sh("env -u CANARYD_SERVICE '%s' replay --config '%s' --verdict-log '%s' '%s' "
           "> /dev/null 2> '%s'",
           canaryd_bin(), cfg, path_of("verdicts.log"), path_of("events.jsonl"), path_of("err"));
    char *errtext = slurp(path_of("err"));
    cr_assert_eq(rc, 20, "replay exit %d, stderr:\n%s", rc, errtext);
    cr_assert_not_null(strstr(errtext, "service \"checkout\", learnt from the first canary "
                                       "event's service field"),
                       "%s", errtext);
    cr_assert_not_null(strstr(errtext, "  service: checkout (learnt from the first canary event; "
                                       "events.service not set: every event judged)\n"),
                       "%s", errtext);
    /* every sink delivered every record, none failed */
    cr_assert_null(strstr(errtext, "failed 1"), "%s", errtext);

    /* the verdict log: every record names checkout */
    json_t *log = json_lines(path_of("verdicts.log"));
    size_t nrec = json_array_size(log);
    cr_assert_eq(nrec, 5, "ANALYZING, HEALTHY, pending, firing, ROLLBACK; got %zu", nrec);
    size_t i;
    json_t *r;
    json_array_foreach(log, i, r)
    {
        cr_assert_str_eq(jstr(r, "service"), "checkout", "verdict log record %zu", i);
        cr_assert_str_eq(jstr(r, "release"), "2.5.0");
    }
    cr_assert_str_eq(jstr(json_array_get(log, 4), "verdict"), "ROLLBACK");

    /* webhooks: each format got every record, each naming checkout; the
     * alertmanager sink posted the rule's alert (its firing state record)
     * to Alertmanager's API with the service label */
    cr_assert(rx_wait(rx, (int)(7 * nrec) + 1, 10000), "%d requests", rx_count(rx));
    int per_format[7] = {0}, am_posts = 0;
    for (int q = 0; q < rx_count(rx); q++) {
        rx_request_t req = rx_get(rx, q);
        if (strcmp(req.path, "/am/api/v2/alerts") == 0) {
            json_error_t e;
            json_t *alerts = json_loads(req.body, 0, &e);
            cr_assert(json_is_array(alerts) && json_array_size(alerts) == 1, "%s", req.body);
            json_t *alert = json_array_get(alerts, 0);
            cr_assert_str_eq(jstr(json_object_get(alert, "labels"), "alertname"), "error-rate");
            cr_assert_str_eq(jstr(json_object_get(alert, "labels"), "service"), "checkout", "%s",
                             req.body);
            cr_assert_not_null(strstr(jstr(json_object_get(alert, "annotations"), "summary"),
                                      "canary 2.5.0 of checkout"),
                               "%s", req.body);
            am_posts++;
            json_decref(alerts);
            rx_request_free(&req);
            continue;
        }
        int f = -1;
        for (int k = 0; FORMATS[k]; k++)
            if (strcmp(req.path + 1, FORMATS[k]) == 0) f = k;
        cr_assert_geq(f, 0, "unexpected path %s", req.path);
        json_error_t e;
        json_t *b = json_loads(req.body, 0, &e);
        cr_assert_not_null(b, "%s body: %s", req.path, req.body);
        const char *fmt = FORMATS[f];
        if (strcmp(fmt, "generic") == 0) {
            cr_assert_str_eq(jstr(b, "service"), "checkout", "%s", req.body);
        } else if (strcmp(fmt, "alertmanager") == 0) {
            json_t *alert = json_array_get(json_object_get(b, "alerts"), 0);
            json_t *labels = json_object_get(alert, "labels");
            cr_assert_str_eq(jstr(labels, "service"), "checkout", "%s", req.body);
            cr_assert_str_eq(jstr(json_object_get(b, "commonLabels"), "service"), "checkout", "%s",
                             req.body);
        } else {
            /* every chat headline: "<WHAT> canary 2.5.0 of checkout..." */
            cr_assert_not_null(strstr(req.body, "canary 2.5.0 of checkout"), "%s: %s", fmt,
                               req.body);
        }
        if (strcmp(fmt, "slack") == 0 && strstr(req.body, "\"ROLLBACK ")) {
            cr_assert_str_eq(jstr(b, "text"), "ROLLBACK canary 2.5.0 of checkout, rule error-rate");
            cr_assert_not_null(strstr(req.body, "service checkout"), "%s", req.body);
        }
        per_format[f]++;
        json_decref(b);
        rx_request_free(&req);
    }
    for (int k = 0; k < 7; k++)
        cr_assert_eq(per_format[k], (int)nrec, "%s got %d", FORMATS[k], per_format[k]);
    cr_assert_geq(am_posts, 1, "the alertmanager sink posted nothing");

    /* exec: CANARYD_SERVICE in the hook's environment, once per record */
    char *ex = slurp(path_of("exec.out"));
    cr_assert_str_eq(ex, "verdict checkout\nverdict checkout\nstate checkout\nstate checkout\n"
                         "verdict checkout\n");
    free(ex);

    /* redis: the key the docs promise, not the unknown one; every stream
     * entry's JSON names checkout */
    redisContext *c = redis_server_client(redis_port);
    cr_assert(c && !c->err);
    redisReply *g = redisCommand(c, "GET canaryd:checkout:2.5.0:verdict");
    cr_assert(g && g->type == REDIS_REPLY_STRING, "no canaryd:checkout:2.5.0:verdict");
    json_error_t e;
    json_t *latest = json_loads(g->str, 0, &e);
    cr_assert_not_null(latest);
    cr_assert_str_eq(jstr(latest, "verdict"), "ROLLBACK");
    cr_assert_str_eq(jstr(latest, "service"), "checkout");
    json_decref(latest);
    freeReplyObject(g);
    redisReply *keys = redisCommand(c, "KEYS canaryd:unknown:*");
    cr_assert(keys && keys->type == REDIS_REPLY_ARRAY);
    cr_assert_eq(keys->elements, 0, "a record reached Redis without its service");
    freeReplyObject(keys);
    redisReply *xr = redisCommand(c, "XRANGE canaryd:verdicts:stream - +");
    cr_assert(xr && xr->type == REDIS_REPLY_ARRAY);
    cr_assert_eq(xr->elements, nrec);
    for (size_t k = 0; k < xr->elements; k++) {
        redisReply *fields = xr->element[k]->element[1];
        const char *json = NULL;
        for (size_t f = 0; f + 1 < fields->elements; f += 2)
            if (strcmp(fields->element[f]->str, "json") == 0) json = fields->element[f + 1]->str;
        cr_assert_not_null(json);
        json_t *j = json_loads(json, 0, &e);
        cr_assert_str_eq(jstr(j, "service"), "checkout", "%s", json);
        json_decref(j);
    }
    freeReplyObject(xr);
    redisFree(c);

    /* kafka: every message names checkout */
    json_t *msgs = json_array();
    cr_assert_eq(consume_all(bootstraps, (int)nrec, msgs), (int)nrec);
    json_array_foreach(msgs, i, r) cr_assert_str_eq(jstr(r, "service"), "checkout");
    json_decref(msgs);

    json_decref(log);
    free(errtext);
}

/* The record projection the scenario suite compares, one line per record. */
static char *projection(json_t *records)
{
    static const char *const KEYS[] = {"time", "kind", "verdict", "rule", "from", "to", NULL};
    size_t size = 1 << 16, len = 0;
    char *out = calloc(1, size);
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r)
    {
        for (int k = 0; KEYS[k]; k++)
            len += (size_t)snprintf(out + len, size - len, "%s=%s ", KEYS[k], jstr(r, KEYS[k]));
        len += (size_t)snprintf(out + len, size - len, "\n");
        cr_assert_lt(len, size);
    }
    return out;
}

static size_t count_lines(const char *path)
{
    char *s = slurp(path);
    size_t n = 0;
    for (char *p = s; *p; p++)
        n += *p == '\n';
    free(s);
    return n;
}

Test(service, other_services_change_no_verdict)
{
    /* checkout: healthy, PROMOTE at the end; search, on the same topic: an
     * error regression that would disturb the verdict if it were judged */
    cr_assert_eq(
        sh("'%s' generate --scenario healthy > '%s'", canaryd_bin(), path_of("checkout.jsonl")), 0);
    cr_assert_eq(sh("'%s' generate --scenario error-regression --seed 2 | sed "
                    "'s/\"service\":\"checkout\"/\"service\":\"search\"/' > '%s'",
                    canaryd_bin(), path_of("search.jsonl")),
                 0);
    /* both are in time order: merge them on the timestamp (8th '"' field) */
    cr_assert_eq(sh("sort -m -s -t'\"' -k8,8 '%s' '%s' > '%s'", path_of("checkout.jsonl"),
                    path_of("search.jsonl"), path_of("shared.jsonl")),
                 0);
    size_t ncheckout = count_lines(path_of("checkout.jsonl"));
    size_t nsearch = count_lines(path_of("search.jsonl"));
    cr_assert_eq(count_lines(path_of("shared.jsonl")), ncheckout + nsearch);
    cr_assert_gt(nsearch, 100000);

    int alone = sh("env -u CANARYD_SERVICE '%s' replay --config '%s' --verdict-log '%s' '%s' "
                   "> /dev/null 2> '%s'",
                   canaryd_bin(), SOP, path_of("alone.log"), path_of("checkout.jsonl"),
                   path_of("alone.err"));
    cr_assert_eq(alone, 0, "checkout alone: PROMOTE");
    int shared = sh("CANARYD_SERVICE=checkout '%s' replay --config '%s' --verdict-log '%s' '%s' "
                    "> /dev/null 2> '%s'",
                    canaryd_bin(), SOP, path_of("shared.log"), path_of("shared.jsonl"),
                    path_of("shared.err"));
    char *err = slurp(path_of("shared.err"));
    cr_assert_eq(shared, alone, "exit %d:\n%s", shared, err);

    json_t *a = json_lines(path_of("alone.log")), *b = json_lines(path_of("shared.log"));
    char *pa = projection(a), *pb = projection(b);
    cr_assert_str_eq(pb, pa);
    size_t i;
    json_t *r;
    json_array_foreach(b, i, r) cr_assert_str_eq(jstr(r, "service"), "checkout", "record %zu", i);

    /* counted apart, exactly: the summary and the start line */
    char want[256];
    snprintf(want, sizeof(want),
             "canaryd replay: %zu lines, %zu events accepted, 0 bad, 0 late, 0 future, %zu "
             "other services\n",
             ncheckout + nsearch, ncheckout, nsearch);
    cr_assert_not_null(strstr(err, want), "want %s in:\n%s", want, err);
    snprintf(want, sizeof(want),
             "  service: checkout (events.service); other services, not judged: %zu; without a "
             "service field, not judged: 0\n",
             nsearch);
    cr_assert_not_null(strstr(err, want), "want %s in:\n%s", want, err);
    cr_assert_not_null(strstr(err, "config: CANARYD_SERVICE overrides events.service"), "%s", err);
    cr_assert_not_null(strstr(err, "judging only service \"checkout\" (events.service)"), "%s",
                       err);

    /* canaryd baseline: the same capture from the shared stream as from
     * checkout's alone, search's stable fleet left out */
    cr_assert_eq(sh("env -u CANARYD_SERVICE '%s' baseline --config '%s' --output '%s' '%s' "
                    "2> /dev/null",
                    canaryd_bin(), SOP, path_of("base-alone.json"), path_of("checkout.jsonl")),
                 0);
    cr_assert_eq(sh("CANARYD_SERVICE=checkout '%s' baseline --config '%s' --output '%s' '%s' "
                    "2> '%s'",
                    canaryd_bin(), SOP, path_of("base-shared.json"), path_of("shared.jsonl"),
                    path_of("base.err")),
                 0);
    char *ba = slurp(path_of("base-alone.json")), *bs = slurp(path_of("base-shared.json"));
    cr_assert_str_eq(bs, ba);
    free(ba);
    free(bs);
    char *berr = slurp(path_of("base.err"));
    snprintf(want, sizeof(want),
             ", %zu of other services (events.service \"checkout\": not counted)\n", nsearch);
    cr_assert_not_null(strstr(berr, want), "want %s in:\n%s", want, berr);
    free(berr);

    /* without events.service the same stream is judged as one: other
     * records (search's canary is judged with checkout's) */
    int mixed =
        sh("env -u CANARYD_SERVICE '%s' replay --config '%s' --verdict-log '%s' '%s' "
           "> /dev/null 2> '%s'",
           canaryd_bin(), SOP, path_of("mixed.log"), path_of("shared.jsonl"), path_of("mixed.err"));
    json_t *m = json_lines(path_of("mixed.log"));
    char *pm = projection(m);
    cr_assert(mixed != alone || strcmp(pm, pa) != 0, "the other service changed nothing:\n%s", pm);
    char *merr = slurp(path_of("mixed.err"));
    cr_assert_not_null(strstr(merr, "events.service is not set: every event is judged"), "%s",
                       merr);

    free(merr);
    free(pm);
    json_decref(m);
    free(pa);
    free(pb);
    json_decref(a);
    json_decref(b);
    free(err);
}

/* ---- live: canaryd run, /metrics ------------------------------------------ */

static char *get_metrics(int port)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    long status = 0;
    char *body = http_get(url, &status);
    cr_assert(body && status == 200, "GET /metrics: %ld %s", status, body ? body : "no answer");
    return body;
}

/* The value of the sample line "series value" (labels as written), or -1. */
static double metric(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
    return -1;
}

Test(service, run_counts_other_services_in_metrics)
{
    mock_start("events", 2);

    FILE *f = fopen(path_of("c.json"), "w");
    cr_assert_not_null(f);
    fputs("{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\"]},\n"
          " \"windows\": {\"max_future_skew\": \"1m\", \"slack\": \"10s\"},\n"
          " \"rules\": [{\"name\": \"error-rate\", \"kind\": \"threshold\",\n"
          "   \"numerator\": [\"ERROR_OCCURRED\"], \"denominator\": [\"REQUEST_COMPLETED\"],\n"
          "   \"scope\": \"canary\", \"op\": \">\", \"threshold\": 0.2, \"window\": \"10s\",\n"
          "   \"for\": \"0s\", \"min_samples\": {\"canary\": 10}, \"action\": \"rollback\"}],\n"
          " \"kafka\": {\"topics\": [\"events\"], \"group\": \"g\",\n"
          "   \"properties\": {\"session.timeout.ms\": 6000, \"heartbeat.interval.ms\": 500}},\n"
          " \"http\": {\"bind\": \"127.0.0.1:0\"}}\n",
          f);
    fclose(f);

    /* the agent, with CANARYD_SERVICE in its environment only: set here
     * just while it is forked (this process reads no CANARYD_SERVICE) */
    setenv("CANARYD_SERVICE", "checkout", 1);
    agent = start("run.out", "run.err", ARGS("--config", path_of("c.json")));
    unsetenv("CANARYD_SERVICE");
    int port = http_port("run.err", 15000);

    /* 40 checkout events, 30 of search (errors on its canary: a ROLLBACK
     * if they were judged), 5 naming no service, 2 bad */
    rd_kafka_t *pr = producer();
    int seq = 0;
    long long ts = (long long)now_ms();
    for (int i = 0; i < 77; i++) {
        char payload[256];
        if (i < 40)
            snprintf(payload, sizeof(payload),
                     "{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":%lld,\"cohort\":\"%s\","
                     "\"service\":\"checkout\"}",
                     ts, i % 2 ? "canary" : "stable");
        else if (i < 70)
            snprintf(payload, sizeof(payload),
                     "{\"event_type\":\"ERROR_OCCURRED\",\"timestamp\":%lld,\"cohort\":\"canary\","
                     "\"service\":\"search\"}",
                     ts);
        else if (i < 75)
            snprintf(payload, sizeof(payload),
                     "{\"event_type\":\"ERROR_OCCURRED\",\"timestamp\":%lld,\"cohort\":\"canary\"}",
                     ts);
        else
            snprintf(payload, sizeof(payload), "not json %d", i);
        produce_raw(pr, payload, &seq);
    }
    cr_assert_eq(rd_kafka_flush(pr, 20000), 0);
    rd_kafka_destroy(pr);

    char *m = NULL;
    for (int64_t end = mono_ms() + 20000;;) {
        free(m);
        m = get_metrics(port);
        if (metric(m, "canaryd_kafka_messages_total") == 77) break;
        cr_assert_lt(mono_ms(), end, "not every message consumed:\n%s", m);
        sleep_ms(20);
    }
    /* the counters are from the last snapshot: wait for the one after the
     * 77th message was counted */
    for (int64_t end = mono_ms() + 10000;
         metric(m, "canaryd_other_service_events_total{reason=\"other_service\"}") != 30 &&
         mono_ms() < end;) {
        free(m);
        m = get_metrics(port);
    }
    cr_assert_eq(metric(m, "canaryd_other_service_events_total{reason=\"other_service\"}"), 30,
                 "%s", m);
    cr_assert_eq(metric(m, "canaryd_other_service_events_total{reason=\"no_service\"}"), 5, "%s",
                 m);
    cr_assert_eq(metric(m, "canaryd_events_total{type=\"REQUEST_COMPLETED\",cohort=\"canary\"}"),
                 20);
    cr_assert_eq(metric(m, "canaryd_events_total{type=\"REQUEST_COMPLETED\",cohort=\"stable\"}"),
                 20);
    cr_assert_eq(metric(m, "canaryd_events_total{type=\"ERROR_OCCURRED\",cohort=\"canary\"}"), 0);
    cr_assert_eq(metric(m, "canaryd_bad_input_total{reason=\"invalid_json\"}"), 2, "%s", m);
    cr_assert_eq(metric(m, "canaryd_service_info{service=\"checkout\",source=\"config\"}"), 1, "%s",
                 m);
    cr_assert_eq(metric(m, "canaryd_verdict{verdict=\"ROLLBACK\",release=\"\"}"), 0, "%s", m);
    free(m);

    bool late = false;
    int st = finish(agent, true, 15000, &late);
    agent = 0;
    cr_assert(!late, "canaryd did not stop");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit 0x%x", st);
    char *e = read_file("run.err");
    cr_assert_not_null(strstr(e, "canaryd run: 77 messages, 40 events accepted, 2 bad, 0 late, 0 "
                                 "future, 35 other services; "),
                       "%s", e);
    cr_assert_not_null(strstr(e, "  service: checkout (events.service); other services, not "
                                 "judged: 30; without a service field, not judged: 5\n"),
                       "%s", e);
    cr_assert_not_null(strstr(e, "\"other_service\":30,\"no_service\":5,\"service\":\"checkout\""),
                       "%s", e);
    free(e);
}
