/*
 * test_config_env.c - environment overrides of the config file
 * (agent/config/config_env.c): each variable, precedence over the file, messages
 * that name the variable, and the webhook URL never appearing in one.
 *
 * Criterion runs every test in its own process, so setenv() here cannot
 * leak into another test. Configs are written to a temporary file and
 * loaded with cd_config_load, the path the agent takes (cd_config_parse on
 * a string never sees the environment, which one test checks too).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "canaryd/config.h"
#include "canaryd/http_api.h"
#include "canaryd/kafka_source.h"
#include "config_expect.h"

static char path[64];
static cd_diag_t diag;

static void setup(void)
{
    static const char *const vars[] = {
        "CANARYD_BROKERS",        "CANARYD_TOPIC",       "CANARYD_GROUP",
        "CANARYD_CANARY_VERSION", "CANARYD_WEBHOOK_URL", "CANARYD_WEBHOOK_FORMAT",
        "CANARYD_HTTP_BIND",      "CANARYD_SERVICE",     "CANARYD_GROUP_INSTANCE_ID", NULL};
    for (int i = 0; vars[i]; i++)
        unsetenv(vars[i]);
    setenv("CANARYD_LOG_LEVEL", "error", 1);
    snprintf(path, sizeof(path), "/tmp/cd_cfgenv_XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
}

static void teardown(void)
{
    unlink(path);
}

TestSuite(config_env, .init = setup, .fini = teardown);

/* A valid config: one threshold rule, plus `extra` top-level keys ("" or
 * starting with a comma). Single quotes become double quotes. */
static cd_config_t *load(const char *extra)
{
    char doc[4096];
    snprintf(doc, sizeof(doc),
             "{'rules': [{'name': 'e', 'kind': 'threshold', 'description': 'd', "
             "'numerator': ['ERROR_OCCURRED'], 'scope': 'canary', 'op': '>', 'threshold': 5, "
             "'window': '10s', 'for': '0s', 'action': 'rollback'}]%s}",
             extra);
    for (char *p = doc; *p; p++)
        if (*p == '\'') *p = '"';
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(doc, f);
    fclose(f);
    return cd_config_load(path, &diag);
}

static cd_config_t *load_ok(const char *extra)
{
    cd_config_t *c = load(extra);
    cr_assert_not_null(c, "problems:\n%s", diag.text);
    cr_assert_eq(diag.count, 0);
    return c;
}

static void load_fails(const char *extra, const char *lines)
{
    expect_refused(load(extra), &diag, lines);
}

static void kafka(const cd_config_t *c, cd_kafka_conf_t *kc)
{
    cd_diag_t d;
    cd_diag_init(&d);
    cr_assert(cd_kafka_conf_parse(c, kc, &d), "%s", d.text);
}

static const json_t *last_output(const cd_config_t *c)
{
    cr_assert_not_null(c->sinks_json);
    const json_t *outs = json_object_get(c->sinks_json, "outputs");
    cr_assert(json_is_array(outs));
    cr_assert_gt(json_array_size(outs), 0);
    return json_array_get(outs, json_array_size(outs) - 1);
}

Test(config_env, no_variables_keep_the_file)
{
    cd_kafka_conf_t kc;
    cd_config_t *c = load_ok(", 'kafka': {'brokers': 'file:9092', 'topics': ['t'], 'group': 'g'}");
    kafka(c, &kc);
    cr_assert_str_eq(kc.brokers, "file:9092");
    cr_assert_eq(kc.ntopics, 1);
    cr_assert_str_eq(kc.topics[0], "t");
    cr_assert_str_eq(kc.group, "g");
    cr_assert_null(c->sinks_json);
    cr_assert_str_eq(c->canary_version, "");
    cr_assert_null(c->http_json);
    cd_config_free(c);
}

Test(config_env, brokers_topic_group_override_the_file)
{
    cd_kafka_conf_t kc;
    setenv("CANARYD_BROKERS", "env-1:9092,env-2:9092", 1);
    setenv("CANARYD_TOPIC", " a.events , b ", 1);
    setenv("CANARYD_GROUP", "env-group", 1);
    cd_config_t *c =
        load_ok(", 'kafka': {'brokers': 'file:9092', 'topics': ['t'], 'group': 'g', 'threads': 2}");
    kafka(c, &kc);
    cr_assert_str_eq(kc.brokers, "env-1:9092,env-2:9092");
    cr_assert_eq(kc.ntopics, 2);
    cr_assert_str_eq(kc.topics[0], "a.events");
    cr_assert_str_eq(kc.topics[1], "b");
    cr_assert_str_eq(kc.group, "env-group");
    cr_assert_eq(kc.threads, 2, "keys no variable names stay the file's");
    cd_config_free(c);
}

Test(config_env, variables_create_a_missing_section)
{
    cd_kafka_conf_t kc;
    setenv("CANARYD_BROKERS", "b:9092", 1);
    setenv("CANARYD_TOPIC", "events", 1);
    cd_config_t *c = load_ok("");
    kafka(c, &kc);
    cr_assert_str_eq(kc.brokers, "b:9092");
    cr_assert_eq(kc.ntopics, 1);
    cr_assert_str_eq(kc.topics[0], "events");
    cr_assert_str_eq(kc.group, "canaryd");
    cd_diag_t d;
    cd_diag_init(&d);
    cr_assert(cd_kafka_conf_runnable(&kc, &d), "%s", d.text);
    cd_config_free(c);
}

Test(config_env, empty_brokers_named)
{
    setenv("CANARYD_BROKERS", "", 1);
    load_fails(", 'kafka': {'brokers': 'file:9092'}",
               "CANARYD_BROKERS (kafka.brokers): \"\" is empty; accepted: a comma-separated list "
               "of host:port, e.g. \"kafka-1:9092,kafka-2:9092\"\n");
}

Test(config_env, empty_topic_in_the_list_named_with_its_index)
{
    setenv("CANARYD_TOPIC", "a,,b", 1);
    load_fails("", "CANARYD_TOPIC (kafka.topics[1]): \"\" is empty; accepted: a topic name\n");
}

Test(config_env, empty_group_named)
{
    setenv("CANARYD_GROUP", "", 1);
    load_fails("", "CANARYD_GROUP (kafka.group): \"\" is empty; accepted: a consumer group id\n");
}

Test(config_env, invalid_utf8_named)
{
    setenv("CANARYD_GROUP", "g\xff", 1);
    load_fails("", "CANARYD_GROUP (kafka.group): not valid UTF-8; accepted: a UTF-8 string\n");
}

Test(config_env, file_problems_in_kafka_are_left_to_its_module)
{
    /* kafka.threads is wrong in the file: reported by the kafka module when
     * the agent starts, not by the loader, with or without a variable. */
    setenv("CANARYD_BROKERS", "b:9092", 1);
    cd_config_t *c = load_ok(", 'kafka': {'threads': 'x'}");
    cd_kafka_conf_t kc;
    cd_diag_t d;
    cd_diag_init(&d);
    cr_assert_not(cd_kafka_conf_parse(c, &kc, &d));
    cr_assert_str_eq(d.text, "kafka.threads: \"x\" is not an integer; accepted: an integer 1..64, "
                             "or 0 for the number of cores\n");
    cd_config_free(c);
}

Test(config_env, section_of_the_wrong_type_named)
{
    setenv("CANARYD_BROKERS", "b:9092", 1);
    load_fails(", 'kafka': 7",
               "CANARYD_BROKERS (kafka.brokers): cannot be set: the file's \"kafka\" is not an "
               "object; accepted: an object, or leave the key out\n"
               "kafka: 7 is not an object; accepted: a JSON object\n");
}

Test(config_env, canary_version)
{
    setenv("CANARYD_CANARY_VERSION", "2.5.0", 1);
    cd_config_t *c = load_ok(", 'events': {'canary_version': '1.0.0'}");
    cr_assert_str_eq(c->canary_version, "2.5.0");
    cr_assert_str_eq(c->decode.canary_version, "2.5.0");
    cd_config_free(c);
}

Test(config_env, service)
{
    setenv("CANARYD_SERVICE", "checkout", 1);
    cd_config_t *c = load_ok(", 'events': {'service': 'search'}");
    cr_assert_str_eq(c->service, "checkout");
    cr_assert_str_eq(c->decode.service, "checkout");
    cd_config_free(c);
    /* set but empty is an override with an empty value: the file's check */
    setenv("CANARYD_SERVICE", "", 1);
    cr_assert_null(load(""));
    const char *want = "CANARYD_SERVICE (events.service): \"\" is empty; accepted: the name of";
    cr_assert_eq(strncmp(diag.text, want, strlen(want)), 0, "%s", diag.text);
}

Test(config_env, long_canary_version_gets_the_files_check)
{
    char v[200], extra[300];
    memset(v, '9', sizeof(v) - 1);
    v[sizeof(v) - 1] = '\0';
    snprintf(extra, sizeof(extra), ", 'events': {'canary_version': '%s'}", v);
    cd_config_t *c = load(extra);
    cr_assert_null(c);
    cd_diag_t file_diag = diag;
    cr_assert_eq(strncmp(file_diag.text, "events.canary_version: ", 23), 0, "%s", file_diag.text);

    setenv("CANARYD_CANARY_VERSION", v, 1);
    c = load("");
    cr_assert_null(c);
    const char *prefix = "CANARYD_CANARY_VERSION (events.canary_version)";
    cr_assert_eq(strncmp(diag.text, prefix, strlen(prefix)), 0, "%s", diag.text);
    cr_assert_str_eq(diag.text + strlen(prefix), file_diag.text + strlen("events.canary_version"));
}

Test(config_env, webhook_url_adds_a_generic_webhook_sink)
{
    setenv("CANARYD_WEBHOOK_URL", "https://hooks.example.com/services/T0/B0/s3cr3t", 1);
    cd_config_t *c = load_ok(", 'sinks': {'outputs': [{'type': 'log', 'path': '/dev/null'}]}");
    const json_t *o = last_output(c);
    cr_assert_eq(json_array_size(json_object_get(c->sinks_json, "outputs")), 2);
    cr_assert_str_eq(json_string_value(json_object_get(o, "type")), "webhook");
    cr_assert_str_eq(json_string_value(json_object_get(o, "format")), "generic");
    cr_assert_str_eq(json_string_value(json_object_get(o, "name")), "env-webhook");
    cr_assert_str_eq(json_string_value(json_object_get(o, "url")),
                     "https://hooks.example.com/services/T0/B0/s3cr3t");
    cd_config_free(c);
}

Test(config_env, webhook_format)
{
    setenv("CANARYD_WEBHOOK_URL", "https://hooks.example.com/x", 1);
    setenv("CANARYD_WEBHOOK_FORMAT", "slack", 1);
    cd_config_t *c = load_ok("");
    cr_assert_str_eq(json_string_value(json_object_get(last_output(c), "format")), "slack");
    cd_config_free(c);
}

Test(config_env, bad_webhook_format_named)
{
    setenv("CANARYD_WEBHOOK_URL", "https://hooks.example.com/x", 1);
    setenv("CANARYD_WEBHOOK_FORMAT", "telex", 1);
    cd_config_t *c = load(", 'sinks': {'outputs': [{'type': 'log', 'path': '/dev/null'}]}");
    cr_assert_null(c);
    cr_assert_eq(diag.count, 1, "%s", diag.text);
    const char *head = "CANARYD_WEBHOOK_FORMAT (sinks.outputs[1].format): \"telex\" ";
    cr_assert_eq(strncmp(diag.text, head, strlen(head)), 0, "%s", diag.text);
    cr_assert_not_null(strstr(diag.text, "slack"), "lists what is accepted: %s", diag.text);
}

Test(config_env, bad_webhook_url_named_and_never_shown)
{
    setenv("CANARYD_WEBHOOK_URL", "ftp://hooks.example.com/services/T0/B0/s3cr3t", 1);
    cd_config_t *c = load("");
    cr_assert_null(c);
    cr_assert_eq(diag.count, 1, "%s", diag.text);
    const char *head = "CANARYD_WEBHOOK_URL (sinks.outputs[0].url): ";
    cr_assert_eq(strncmp(diag.text, head, strlen(head)), 0, "%s", diag.text);
    cr_assert_null(strstr(diag.text, "s3cr3t"), "secret in: %s", diag.text);
    cr_assert_null(strstr(diag.text, "services"), "URL path in: %s", diag.text);
}

Test(config_env, webhook_format_without_url)
{
    setenv("CANARYD_WEBHOOK_FORMAT", "slack", 1);
    load_fails("", "CANARYD_WEBHOOK_FORMAT: set without CANARYD_WEBHOOK_URL; accepted: set both, "
                   "or neither\n");
}

Test(config_env, webhook_with_outputs_not_an_array)
{
    setenv("CANARYD_WEBHOOK_URL", "https://hooks.example.com/x", 1);
    cd_config_t *c = load(", 'sinks': {'outputs': {}}");
    cr_assert_null(c);
    cr_assert_str_eq(diag.text,
                     "CANARYD_WEBHOOK_URL (sinks.outputs): cannot add a webhook sink: the file's "
                     "\"sinks.outputs\" is not an array; accepted: an array, or leave the key "
                     "out\n");
}

/* CANARYD_HTTP_BIND gets exactly the check the file's "http": {"bind": ...}
 * gets from the HTTP API's parser (when the agent starts), at load and with
 * the key path naming the variable. */
static void same_as_file(const char *bind, bool valid)
{
    char extra[256];
    cd_http_conf_t hc;
    cd_diag_t file_diag;
    snprintf(extra, sizeof(extra), ", 'http': {'bind': '%s'}", bind);
    cd_config_t *cf = load_ok(extra);
    cd_diag_init(&file_diag);
    cr_assert_eq(cd_http_conf_parse(cf, &hc, &file_diag), valid, "%s", file_diag.text);
    cd_config_free(cf);

    setenv("CANARYD_HTTP_BIND", bind, 1);
    cd_config_t *ce = load("");
    if (valid) {
        cr_assert_not_null(ce, "%s", diag.text);
        cd_diag_t d;
        cd_diag_init(&d);
        cr_assert(cd_http_conf_parse(ce, &hc, &d), "%s", d.text);
        cr_assert(hc.enabled, "the variable turns the API on, as the section does");
        cd_config_free(ce);
        return;
    }
    cr_assert_null(ce);
    cr_assert_eq(diag.count, file_diag.count);
    /* Each line "http...: rest" becomes "CANARYD_HTTP_BIND (http...): rest". */
    char want[4096] = "";
    size_t n = 0;
    for (const char *s = file_diag.text; *s;) {
        const char *nl = strchr(s, '\n'), *colon = strstr(s, ": ");
        cr_assert(colon && colon < nl, "%s", s);
        n += (size_t)snprintf(want + n, sizeof(want) - n, "CANARYD_HTTP_BIND (%.*s)%.*s\n",
                              (int)(colon - s), s, (int)(nl - colon), colon);
        s = nl + 1;
    }
    cr_assert_str_eq(diag.text, want);
    const char *head = "CANARYD_HTTP_BIND (http.bind): \"nowhere\" is not HOST:PORT; ";
    cr_assert_eq(strncmp(diag.text, head, strlen(head)), 0, "%s", diag.text);
}

Test(config_env, http_bind_valid)
{
    same_as_file("0.0.0.0:8686", true);
}

Test(config_env, http_bind_invalid)
{
    same_as_file("nowhere", false);
}

Test(config_env, parse_from_memory_ignores_the_environment)
{
    setenv("CANARYD_BROKERS", "", 1);
    setenv("CANARYD_WEBHOOK_FORMAT", "slack", 1);
    const char *doc = "{\"rules\": [{\"name\": \"e\", \"kind\": \"threshold\", \"description\": "
                      "\"d\", \"numerator\": [\"ERROR_OCCURRED\"], \"scope\": \"canary\", \"op\": "
                      "\">\", \"threshold\": 5, \"window\": \"10s\", \"for\": \"0s\", \"action\": "
                      "\"rollback\"}]}";
    cd_config_t *c = cd_config_parse(doc, strlen(doc), NULL, &diag);
    cr_assert_not_null(c, "%s", diag.text);
    cr_assert_null(c->kafka_json);
    cd_config_free(c);
}

Test(config_env, unrelated_file_problems_keep_their_path)
{
    setenv("CANARYD_BROKERS", "", 1);
    load_fails(", 'windows': {'slack': 'x'}",
               "windows.slack: \"x\" is not a duration; accepted: a non-negative integer of "
               "milliseconds or a string such as \"250ms\", \"30s\", \"5m\", \"1h30m\"\n"
               "CANARYD_BROKERS (kafka.brokers): \"\" is empty; accepted: a comma-separated list "
               "of host:port, e.g. \"kafka-1:9092,kafka-2:9092\"\n");
}

/* kafka.max_lag_wait (issue 10, item 4): defaults to windows.slack (-1),
 * "0s" turns the watermark off, and more than windows.slack is refused with
 * both keys named (the ring keeps no more history). */
Test(config_env, kafka_max_lag_wait)
{
    cd_kafka_conf_t kc;
    cd_config_t *c = load_ok("");
    kafka(c, &kc);
    cr_assert_eq(kc.max_lag_wait_ms, -1);
    cd_config_free(c);
    c = load_ok(", 'kafka': {'max_lag_wait': '0s'}");
    kafka(c, &kc);
    cr_assert_eq(kc.max_lag_wait_ms, 0);
    cd_config_free(c);
    c = load_ok(", 'windows': {'slack': '2m'}, 'kafka': {'max_lag_wait': '90s'}");
    kafka(c, &kc);
    cr_assert_eq(kc.max_lag_wait_ms, 90000);
    cd_config_free(c);
    c = load_ok(", 'kafka': {'max_lag_wait': '5m'}");
    cd_diag_t d;
    cd_diag_init(&d);
    cr_assert_not(cd_kafka_conf_parse(c, &kc, &d));
    cr_assert_str_eq(d.text, "kafka.max_lag_wait: \"5m\" is longer than windows.slack; accepted: a "
                             "duration from \"0s\" (judge on the wall clock) to windows.slack "
                             "(\"30s\"); raise windows.slack to wait longer\n");
    cd_config_free(c);
}

/* kafka.start (issue 11): "by_time" by default (rebuild the history the
 * rules need), "committed" keeps the group's committed offset; anything
 * else is refused with the key path and what is accepted. */
Test(config_env, kafka_start)
{
    cd_kafka_conf_t kc;
    cd_config_t *c = load_ok("");
    kafka(c, &kc);
    cr_assert_not(kc.start_committed);
    cd_config_free(c);
    c = load_ok(", 'kafka': {'start': 'committed'}");
    kafka(c, &kc);
    cr_assert(kc.start_committed);
    cd_config_free(c);
    c = load_ok(", 'kafka': {'start': 'by_time'}");
    kafka(c, &kc);
    cr_assert_not(kc.start_committed);
    cd_config_free(c);
    c = load_ok(", 'kafka': {'start': 'earliest'}");
    cd_diag_t d;
    cd_diag_init(&d);
    cr_assert_not(cd_kafka_conf_parse(c, &kc, &d));
    cr_assert_str_eq(d.text, "kafka.start: \"earliest\" is not a start position; accepted: "
                             "\"by_time\" (the history the rules need, rebuilt) or \"committed\" "
                             "(the group's committed offset)\n");
    cd_config_free(c);
}

/* kafka.group_instance_id (issue 11, static membership): unset by default,
 * set by the file or by CANARYD_GROUP_INSTANCE_ID (which wins); librdkafka's
 * group.instance.id in kafka.properties is refused with the key to use. */
Test(config_env, kafka_group_instance_id)
{
    cd_kafka_conf_t kc;
    cd_config_t *c = load_ok("");
    kafka(c, &kc);
    cr_assert_str_eq(kc.group_instance_id, "");
    cd_config_free(c);
    c = load_ok(", 'kafka': {'group_instance_id': 'checkout-0'}");
    kafka(c, &kc);
    cr_assert_str_eq(kc.group_instance_id, "checkout-0");
    cd_config_free(c);
    setenv("CANARYD_GROUP_INSTANCE_ID", "checkout-1", 1);
    c = load_ok(", 'kafka': {'group_instance_id': 'checkout-0'}");
    kafka(c, &kc);
    cr_assert_str_eq(kc.group_instance_id, "checkout-1");
    cd_config_free(c);
    unsetenv("CANARYD_GROUP_INSTANCE_ID");
    c = load_ok(", 'kafka': {'properties': {'group.instance.id': 'x'}}");
    cd_diag_t d;
    cd_diag_init(&d);
    cr_assert_not(cd_kafka_conf_parse(c, &kc, &d));
    cr_assert(strstr(d.text, "kafka.properties.group.instance.id") &&
                  strstr(d.text, "set it with kafka.group_instance_id"),
              "%s", d.text);
    cd_config_free(c);
}
