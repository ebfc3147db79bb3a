/*
 * test_kafka_sink.c - the kafka sink against librdkafka's mock cluster, run
 * in-process on loopback (rdkafka_mock.h): a verdict produced through the
 * sink is read back with a consumer (exact key and value), delivery reports
 * arrive through poll() as OK / RETRY / DROP, flush makes every report
 * available, destroy is bounded with the brokers down, and config problems
 * (librdkafka's own messages included) name their key path.
 *
 * The sink is driven through its ops directly, as the dispatcher would.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka_mock.h"
#include "sink_test.h"
#include "canaryd/config.h"
#include "canaryd/dispatcher.h"
#include "canaryd/log.h"
#include "canaryd/sink.h"
#include "canaryd/verdict_fmt.h"

extern const struct cd_sink_ops cd_sink_kafka;

#define TOPIC "canaryd.verdicts"
/* The Kafka protocol's ApiKey of Produce requests (internal to librdkafka). */
#define KAFKA_API_PRODUCE 0


static void setup(void)
{
    mock_start(TOPIC, 1);
}

static void teardown(void)
{
    mock_stop();
}

TestSuite(kafka_sink, .init = setup, .fini = teardown, .timeout = 60);

typedef st_rec_t rec_t;

static void make_rec(rec_t *r, uint64_t id, cd_verdict_kind_t verdict, const char *release)
{
    st_rec_fill(r, release);
    r->v.verdict = verdict;
    st_rec_seal(r, id, "checkout");
}

#define sink_new(...) st_sink_new(&cd_sink_kafka, "sinks.outputs[1]", __VA_ARGS__)

/* What poll() reported. */
typedef struct reports {
    int n;
    uint64_t id[64];
    cd_sink_result_t r[64];
    int64_t retry_after[64];
} reports_t;

static void on_done(void *opaque, uint64_t id, cd_sink_result_t r, int64_t retry_after_ms)
{
    reports_t *rs = opaque;
    cr_assert_lt(rs->n, 64);
    rs->id[rs->n] = id;
    rs->r[rs->n] = r;
    rs->retry_after[rs->n++] = retry_after_ms;
}

/* Polls until `want` reports arrived or the deadline passed; returns what
 * poll() said is still in flight. */
static int poll_until(void *s, reports_t *rs, int want, int64_t deadline_ms)
{
    int left = 0;
    int64_t end = mono_ms() + deadline_ms;
    while (rs->n < want && mono_ms() < end)
        left = cd_sink_kafka.poll(s, 100, on_done, rs);
    return left;
}

/* Reads the next message of partition 0 from `offset`. */
static rd_kafka_message_t *consume_one(int64_t offset)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, err, sizeof(err)), 0);
    cr_assert_eq(rd_kafka_conf_set(conf, "group.id", "test", err, sizeof(err)), 0);
    cr_assert_eq(rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)), 0);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, TOPIC, 0)->offset = offset;
    cr_assert_eq(rd_kafka_assign(c, parts), 0);
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_message_t *m = NULL;
    int64_t end = mono_ms() + 10000;
    while (mono_ms() < end) {
        m = rd_kafka_consumer_poll(c, 100);
        if (m && !m->err) break;
        if (m) rd_kafka_message_destroy(m);
        m = NULL;
    }
    cr_assert_not_null(m, "no message at offset %lld within 10 s", (long long)offset);
    /* The message outlives the consumer only as a copy. */
    rd_kafka_message_t *copy = calloc(1, sizeof(*copy));
    copy->key = m->key ? strndup(m->key, m->key_len) : NULL;
    copy->key_len = m->key_len;
    copy->payload = strndup(m->payload, m->len);
    copy->len = m->len;
    copy->offset = m->offset;
    rd_kafka_message_destroy(m);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return copy;
}

static void free_copy(rd_kafka_message_t *m)
{
    free(m->key);
    free(m->payload);
    free(m);
}

Test(kafka_sink, produces_verdict_and_reads_it_back)
{
    void *s = sink_new("{\"type\": \"kafka\", \"brokers\": \"%s\", \"topic\": \"" TOPIC "\"}",
                       bootstraps);
    rec_t r;
    make_rec(&r, 41, CD_VERDICT_ROLLBACK, "2.5.0");
    int64_t ra = -1;
    cr_assert_eq(cd_sink_kafka.deliver(s, &r.m, &ra), CD_SINK_PENDING);
    reports_t rs = {0};
    int left = poll_until(s, &rs, 1, 10000);
    cr_assert_eq(rs.n, 1);
    cr_assert_eq(rs.id[0], 41);
    cr_assert_eq(rs.r[0], CD_SINK_OK);
    cr_assert_eq(rs.retry_after[0], -1);
    cr_assert_eq(left, 0);

    rd_kafka_message_t *m = consume_one(RD_KAFKA_OFFSET_BEGINNING);
    cr_assert_eq(m->offset, 0);
    cr_assert_eq(m->key_len, 5);
    cr_assert_str_eq(m->key, "2.5.0");
    cr_assert_eq(m->len, r.m.json_len);
    cr_assert_str_eq(m->payload, r.json);
    free_copy(m);

    /* A second one, same release: the next offset, same partition. */
    rec_t r2;
    make_rec(&r2, 42, CD_VERDICT_ALERT, "2.5.0");
    cr_assert_eq(cd_sink_kafka.deliver(s, &r2.m, &ra), CD_SINK_PENDING);
    cr_assert_eq(poll_until(s, &rs, 2, 10000), 0);
    cr_assert_eq(rs.id[1], 42);
    cr_assert_eq(rs.r[1], CD_SINK_OK);
    m = consume_one(1);
    cr_assert_str_eq(m->key, "2.5.0");
    cr_assert_str_eq(m->payload, r2.json);
    free_copy(m);
    cd_sink_kafka.destroy(s);
}

Test(kafka_sink, flush_makes_every_report_available)
{
    void *s = sink_new("{\"type\": \"kafka\", \"brokers\": \"%s\", \"topic\": \"" TOPIC
                       "\", \"properties\": {\"linger.ms\": 50}}",
                       bootstraps);
    rec_t r[5];
    int64_t ra = -1;
    for (int i = 0; i < 5; i++) {
        make_rec(&r[i], 100 + (uint64_t)i, CD_VERDICT_HEALTHY, "2.5.0");
        cr_assert_eq(cd_sink_kafka.deliver(s, &r[i].m, &ra), CD_SINK_PENDING);
    }
    cd_sink_kafka.flush(s);
    reports_t rs = {0};
    /* Timeout 0: the reports were served by flush, nothing is waited for. */
    cr_assert_eq(cd_sink_kafka.poll(s, 0, on_done, &rs), 0);
    cr_assert_eq(rs.n, 5);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(rs.id[i], 100 + (uint64_t)i, "in order");
        cr_assert_eq(rs.r[i], CD_SINK_OK);
    }
    cd_sink_kafka.destroy(s);
}

Test(kafka_sink, broker_down_reports_retry_then_recovers)
{
    void *s = sink_new("{\"type\": \"kafka\", \"brokers\": \"%s\", \"topic\": \"" TOPIC
                       "\", \"properties\": {\"message.timeout.ms\": 1000, "
                       "\"reconnect.backoff.max.ms\": 200}}",
                       bootstraps);
    rec_t r;
    make_rec(&r, 7, CD_VERDICT_ROLLBACK, "2.5.0");
    int64_t ra = -1;
    /* Warm up: metadata known, producer id acquired. */
    cr_assert_eq(cd_sink_kafka.deliver(s, &r.m, &ra), CD_SINK_PENDING);
    reports_t rs = {0};
    poll_until(s, &rs, 1, 10000);
    cr_assert_eq(rs.r[0], CD_SINK_OK);

    cr_assert_eq(rd_kafka_mock_broker_set_down(mock, 1), 0);
    r.m.id = 8;
    cr_assert_eq(cd_sink_kafka.deliver(s, &r.m, &ra), CD_SINK_PENDING);
    int64_t t0 = mono_ms();
    poll_until(s, &rs, 2, 10000);
    cr_assert_eq(rs.n, 2);
    cr_assert_eq(rs.id[1], 8);
    cr_assert_eq(rs.r[1], CD_SINK_RETRY, "a message timeout is retriable");
    cr_assert_lt(mono_ms() - t0, 5000);

    /* Back up: redelivered as the dispatcher would on RETRY, until OK. */
    cr_assert_eq(rd_kafka_mock_broker_set_up(mock, 1), 0);
    int64_t end = mono_ms() + 20000;
    cd_sink_result_t res = CD_SINK_RETRY;
    for (int attempt = 2; res == CD_SINK_RETRY && mono_ms() < end; attempt++) {
        r.m.id = 100 + (uint64_t)attempt;
        r.m.attempt = attempt;
        cr_assert_eq(cd_sink_kafka.deliver(s, &r.m, &ra), CD_SINK_PENDING);
        int want = rs.n + 1;
        cr_assert_eq(poll_until(s, &rs, want, 10000), 0);
        cr_assert_eq(rs.n, want);
        cr_assert_eq(rs.id[want - 1], r.m.id);
        res = rs.r[want - 1];
    }
    cr_assert_eq(res, CD_SINK_OK);
    rd_kafka_message_t *m = consume_one(1);
    cr_assert_str_eq(m->payload, r.json);
    free_copy(m);
    cd_sink_kafka.destroy(s);
}

Test(kafka_sink, permanent_error_reports_drop)
{
    FILE *log = tmpfile();
    cd_log_set_stream(log);
    void *s = sink_new("{\"type\": \"kafka\", \"brokers\": \"%s\", \"topic\": \"" TOPIC "\"}",
                       bootstraps);
    rd_kafka_mock_push_request_errors(mock, KAFKA_API_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    rec_t r;
    make_rec(&r, 5, CD_VERDICT_ROLLBACK, "2.5.0");
    int64_t ra = -1;
    cr_assert_eq(cd_sink_kafka.deliver(s, &r.m, &ra), CD_SINK_PENDING);
    reports_t rs = {0};
    poll_until(s, &rs, 1, 10000);
    cr_assert_eq(rs.n, 1);
    cr_assert_eq(rs.r[0], CD_SINK_DROP);
    cd_sink_kafka.destroy(s);
    cd_log_set_stream(NULL);
    fflush(log);
    long n = ftell(log);
    char *text = calloc(1, (size_t)n + 1);
    rewind(log);
    cr_assert_eq(fread(text, 1, (size_t)n, log), (size_t)n);
    fclose(log);
    cr_assert_not_null(strstr(text, "[error]: kafka sink sinks.outputs[1] (topic " TOPIC
                                    "): delivery failed: Broker: Topic authorization failed "
                                    "(TOPIC_AUTHORIZATION_FAILED); record dropped"),
                       "%s", text);
    free(text);
}

Test(kafka_sink, destroy_is_bounded_with_brokers_down)
{
    void *s = sink_new("{\"type\": \"kafka\", \"brokers\": \"%s\", \"topic\": \"" TOPIC
                       "\", \"flush_timeout\": \"300ms\"}",
                       bootstraps);
    cr_assert_eq(rd_kafka_mock_broker_set_down(mock, 1), 0);
    rec_t r;
    make_rec(&r, 1, CD_VERDICT_ROLLBACK, "2.5.0");
    int64_t ra = -1;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(cd_sink_kafka.deliver(s, &r.m, &ra), CD_SINK_PENDING);
    reports_t rs = {0};
    cr_assert_eq(cd_sink_kafka.poll(s, 0, on_done, &rs), 3);
    int64_t t0 = mono_ms();
    cd_sink_kafka.destroy(s);
    int64_t took = mono_ms() - t0;
    /* bounded by flush_timeout (300 ms), not the 300 s message timeout
     * librdkafka would wait for; 10 s leaves room for a loaded CI */
    cr_assert_lt(took, 10000, "destroy took %lld ms", (long long)took);
}

/* --- config -------------------------------------------------------------------- */

#define init_error(...) st_sink_refused(&cd_sink_kafka, "sinks.outputs[1]", __VA_ARGS__)

Test(kafka_sink, invalid_property_fails_init_with_key_path)
{
    cr_assert_str_eq(
        init_error("{\"type\": \"kafka\", \"brokers\": \"%s\", \"topic\": \"t\", \"properties\": "
                   "{\"linger.ms\": \"soon\"}}",
                   bootstraps),
        "sinks.outputs[1].properties[\"linger.ms\"]: \"soon\" is rejected by librdkafka: Invalid "
        "value for configuration property \"queue.buffering.max.ms\"; accepted: a librdkafka "
        "producer property "
        "(see librdkafka's CONFIGURATION.md) with a string, integer or boolean value\n");
    cr_assert_str_eq(
        init_error("{\"type\": \"kafka\", \"brokers\": \"%s\", \"topic\": \"t\", \"properties\": "
                   "{\"no.such.thing\": 1}}",
                   bootstraps),
        "sinks.outputs[1].properties[\"no.such.thing\"]: 1 is rejected by librdkafka: No such "
        "configuration property: \"no.such.thing\"; accepted: a librdkafka producer property "
        "(see librdkafka's CONFIGURATION.md) with a string, integer or boolean value\n");
    /* Valid alone, not with the idempotent producer: rd_kafka_new's message. */
    const char *t = init_error("{\"type\": \"kafka\", \"brokers\": \"%s\", \"topic\": \"t\", "
                               "\"properties\": {\"acks\": 1}}",
                               bootstraps);
    cr_assert(strncmp(t,
                      "sinks.outputs[1].properties: librdkafka cannot make a producer from them: ",
                      73) == 0,
              "%s", t);
    cr_assert_not_null(strstr(t, "acks"), "%s", t);
    cr_assert_str_eq(
        init_error("{\"type\": \"kafka\", \"brokers\": \"b:9092\", \"topic\": \"t\", "
                   "\"properties\": {\"enable.idempotence\": false}}"),
        "sinks.outputs[1].properties[\"enable.idempotence\"]: false would turn off the "
        "idempotent producer; accepted: true (the default here: verdicts must not be duplicated "
        "or reordered by librdkafka's retries)\n");
    /* A secret's value is never shown, even when librdkafka rejects it. */
    t = init_error("{\"type\": \"kafka\", \"brokers\": \"b:9092\", \"topic\": \"t\", "
                   "\"properties\": {\"sasl.password\": {\"x\": \"hunter2\"}}}");
    cr_assert_str_eq(t, "sinks.outputs[1].properties[\"sasl.password\"]: (secret) is not a "
                        "string, number or boolean; accepted: a librdkafka producer property "
                        "(see librdkafka's CONFIGURATION.md) with a string, integer or boolean "
                        "value\n");
}

Test(kafka_sink, config_errors_name_the_key_path)
{
    cr_assert_str_eq(init_error("{\"type\": \"kafka\", \"topic\": \"t\"}"),
                     "sinks.outputs[1].brokers: missing; accepted: a non-empty string\n");
    cr_assert_str_eq(init_error("{\"type\": \"kafka\", \"brokers\": \"b:9092\", \"topic\": "
                                "\"no spaces\"}"),
                     "sinks.outputs[1].topic: \"no spaces\" is not a topic name; accepted: 1 to "
                     "249 characters of a-z A-Z 0-9 . _ -\n");
    cr_assert_str_eq(init_error("{\"type\": \"kafka\", \"brokers\": \"b:9092\", \"topic\": \"t\", "
                                "\"partition\": 3}"),
                     "sinks.outputs[1].partition: unknown key; accepted: brokers, topic, "
                     "properties, flush_timeout, type, name, filter, retry, rate_limit, "
                     "send_resolved\n");
    cr_assert_str_eq(init_error("{\"type\": \"kafka\", \"brokers\": \"b:9092\", \"topic\": \"t\", "
                                "\"properties\": {\"bootstrap.servers\": \"x:1\"}}"),
                     "sinks.outputs[1].properties[\"bootstrap.servers\"]: \"x:1\" is set by the "
                     "sink's \"brokers\"; accepted: \"brokers\" instead of this property\n");
    cr_assert_str_eq(init_error("{\"type\": \"kafka\", \"brokers\": \"b:9092\", \"topic\": \"t\", "
                                "\"flush_timeout\": \"2h\"}"),
                     "sinks.outputs[1].flush_timeout: \"2h\" is out of range; accepted: a "
                     "duration from 0s to 1m, such as \"500ms\", \"10s\" or \"2m\"\n");
}

/* An out-of-order sequence breaks the idempotence guarantee: librdkafka
 * raises a fatal error and the producer is unusable for good. */
Test(kafka_sink, fatal_error_drops_then_new_producer)
{
    void *s = sink_new("{\"type\": \"kafka\", \"brokers\": \"%s\", \"topic\": \"" TOPIC "\"}",
                       bootstraps);
    rec_t r;
    make_rec(&r, 1, CD_VERDICT_ROLLBACK, "2.5.0");
    int64_t ra = -1;
    cr_assert_eq(cd_sink_kafka.deliver(s, &r.m, &ra), CD_SINK_PENDING);
    reports_t rs = {0};
    poll_until(s, &rs, 1, 10000);
    cr_assert_eq(rs.r[0], CD_SINK_OK);
    rd_kafka_mock_push_request_errors(mock, KAFKA_API_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    r.m.id = 2;
    cr_assert_eq(cd_sink_kafka.deliver(s, &r.m, &ra), CD_SINK_PENDING);
    poll_until(s, &rs, 2, 10000);
    cr_assert_eq(rs.n, 2);
    cr_assert_eq(rs.id[1], 2);
    cr_assert_eq(rs.r[1], CD_SINK_DROP, "a fatal error drops");
    r.m.id = 3;
    cr_assert_eq(cd_sink_kafka.deliver(s, &r.m, &ra), CD_SINK_PENDING);
    poll_until(s, &rs, 3, 10000);
    cr_assert_eq(rs.n, 3);
    cr_assert_eq(rs.id[2], 3);
    cr_assert_eq(rs.r[2], CD_SINK_OK, "the next record goes through a new producer");
    rd_kafka_message_t *m = consume_one(1);
    cr_assert_str_eq(m->key, "2.5.0");
    cr_assert_str_eq(m->payload, r.json);
    free_copy(m);
    cd_sink_kafka.destroy(s);
}

/* --- end to end through the dispatcher -------------------------------------------- */

Test(kafka_sink, through_the_dispatcher)
{
    char sinks[1024];
    snprintf(sinks, sizeof(sinks),
             "{\"outputs\":[{\"type\":\"kafka\",\"brokers\":\"%s\",\"topic\":\"" TOPIC "\"}]}",
             bootstraps);
    cd_dispatcher_t *x = st_dispatcher(sinks, true);

    rec_t r;
    make_rec(&r, 1, CD_VERDICT_ROLLBACK, "2.6.1");
    r.v.rule = "fatal";
    r.m.json_len = (size_t)cd_verdict_to_json(&r.v, r.json, sizeof(r.json));
    cr_assert(cd_dispatcher_submit(x, &r.v));
    cr_assert_eq(cd_dispatcher_drain(x, 10000), 0);
    cd_sink_stats_t st;
    cr_assert_eq(cd_dispatcher_stats(x, &st, 1), 1);
    cr_assert_eq(st.delivered, 1);
    cd_dispatcher_destroy(x);

    rd_kafka_message_t *m = consume_one(RD_KAFKA_OFFSET_BEGINNING);
    cr_assert_str_eq(m->key, "2.6.1");
    cr_assert_str_eq(m->payload, r.json);
    free_copy(m);
}
