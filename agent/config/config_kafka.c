/*
 * config_kafka.c - the config's "kafka" section: brokers, topics, group,
 * worker threads, the cohort header and librdkafka properties passed through.
 *
 * The loader keeps the section as JSON (cd_config_t.kafka_json); this module
 * parses it when `canaryd run` starts and in `canaryd check-config`, with the
 * loader's conventions: every problem is one line naming the key path, the
 * value and what is accepted, unknown keys list the known ones, and parsing
 * carries on so that five mistakes give five lines.
 *
 * Properties are validated by librdkafka itself: each one is set on a
 * throw-away rd_kafka_conf_t and a refusal is reported with librdkafka's own
 * message, so canaryd never keeps a second, stale list of what librdkafka
 * accepts. Values of secret properties (passwords, keys, OAuth configs) are
 * never echoed: librdkafka's message is shown with the value cut out.
 * Properties that canaryd itself relies on (group.id, bootstrap.servers,
 * offset storing and committing) are refused with the key that replaces them.
 */
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "canaryd/kafka_source.h"
#include "canaryd/timeutil.h"
#include "config_internal.h"

static const char *const KNOWN[] = {"brokers",    "topics",       "group", "group_instance_id",
                                    "cohort_header", "threads",    "max_lag_wait", "properties",
                                    "start",      NULL};

/* Set by canaryd: the key to use instead, or why it cannot be changed. */
static const struct {
    const char *name, *why;
} RESERVED[] = {
    {"bootstrap.servers", "set it with kafka.brokers (or --brokers)"},
    {"metadata.broker.list", "set it with kafka.brokers (or --brokers)"},
    {"group.id", "set it with kafka.group (or --group)"},
    {"group.instance.id", "set it with kafka.group_instance_id (one id per worker thread)"},
    {"enable.auto.offset.store",
     "canaryd stores an offset only after its event was counted (always false)"},
    {"enable.auto.commit", "canaryd commits stored offsets periodically (always true)"},
    {"rebalance_cb", "canaryd commits revoked partitions first"},
};

void cd_kafka_conf_init(cd_kafka_conf_t *kc)
{
    memset(kc, 0, sizeof(*kc));
    snprintf(kc->group, sizeof(kc->group), "%s", "canaryd");
    kc->max_lag_wait_ms = -1; /* windows.slack */
}

bool cd_kafka_prop_is_secret(const char *name)
{
    static const char *const WORDS[] = {"password", "secret", "key.pem", "keystore",
                                        "oauthbearer.config", "sasl.jaas", "token", NULL};
    for (int i = 0; WORDS[i]; i++)
        if (strstr(name, WORDS[i])) return true;
    return false;
}

/* Copies msg into out with every occurrence of secret replaced by "***". */
static void redact(char *out, size_t size, const char *msg, const char *secret)
{
    size_t n = 0, sl = strlen(secret);
    out[0] = '\0';
    for (const char *s = msg; *s && n + 1 < size;) {
        if (sl && strncmp(s, secret, sl) == 0) {
            n += (size_t)snprintf(out + n, size - n, "***");
            s += sl;
        } else {
            out[n++] = *s++;
            out[n] = '\0';
        }
    }
    if (n >= size) out[size - 1] = '\0';
}

/* A property value as librdkafka wants it: strings as they are, integers and
 * booleans spelled out. */
static bool prop_value(cd_cfgctx_t *x, const char *path, const json_t *v, char *dst, size_t size,
                       bool secret)
{
    if (json_is_string(v)) {
        if (json_string_length(v) >= size) {
            char sh[CD_CFG_VALUE_MAX + 8];
            if (secret)
                snprintf(sh, sizeof(sh), "(secret)");
            else
                cd_cfg_render(v, sh, sizeof(sh));
            cd_diag_add(x->d, "%s: %s is too long; accepted: at most %zu bytes", path, sh,
                        size - 1);
            return false;
        }
        snprintf(dst, size, "%s", json_string_value(v));
        return true;
    }
    if (json_is_integer(v)) {
        snprintf(dst, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return true;
    }
    if (json_is_boolean(v)) {
        snprintf(dst, size, "%s", json_is_true(v) ? "true" : "false");
        return true;
    }
    if (secret)
        cd_diag_add(x->d, "%s: (secret) is not a string; accepted: a string, an integer or a "
                          "boolean, as librdkafka documents the property",
                    path);
    else
        cd_cfg_bad(x, path, v, "is not accepted",
                   "a string, an integer or a boolean, as librdkafka documents the property");
    return false;
}

static void parse_props(cd_cfgctx_t *x, const json_t *props, cd_kafka_conf_t *kc)
{
    char errstr[512], path[CD_CFG_PATH_MAX], msg[600];
    const char *name;
    json_t *v;
    rd_kafka_conf_t *rc;

    if (!cd_cfg_object(x, "kafka.properties", props,
                       "an object of librdkafka properties, e.g. {\"security.protocol\": "
                       "\"SASL_SSL\"}"))
        return;
    rc = rd_kafka_conf_new();
    json_object_foreach((json_t *)props, name, v)
    {
        bool secret = cd_kafka_prop_is_secret(name), reserved = false;
        /* librdkafka names are dotted: kafka.properties.<name> reads as the docs write it */
        snprintf(path, sizeof(path), "kafka.properties.%s", name);
        for (size_t i = 0; i < sizeof(RESERVED) / sizeof(RESERVED[0]); i++) {
            if (strcmp(name, RESERVED[i].name) == 0) {
                cd_diag_add(x->d, "%s: set by canaryd; %s", path, RESERVED[i].why);
                reserved = true;
            }
        }
        if (reserved) continue;
        if (kc->nprops == CD_KAFKA_MAX_PROPS) {
            cd_diag_add(x->d, "%s: too many properties; accepted: at most %d", path,
                        CD_KAFKA_MAX_PROPS);
            break;
        }
        if (strlen(name) >= sizeof(kc->prop_names[0])) {
            cd_diag_add(x->d, "%s: property name too long; accepted: at most %zu bytes", path,
                        sizeof(kc->prop_names[0]) - 1);
            continue;
        }
        char *val = kc->prop_values[kc->nprops];
        if (!prop_value(x, path, v, val, sizeof(kc->prop_values[0]), secret)) continue;
        errstr[0] = '\0';
        if (rd_kafka_conf_set(rc, name, val, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
            if (secret && *val)
                redact(msg, sizeof(msg), errstr, val);
            else
                snprintf(msg, sizeof(msg), "%s", errstr);
            cd_diag_add(x->d, "%s: librdkafka refused it: %s", path, msg);
            continue;
        }
        snprintf(kc->prop_names[kc->nprops], sizeof(kc->prop_names[0]), "%s", name);
        kc->nprops++;
    }
    rd_kafka_conf_destroy(rc);
}

static void parse_topics(cd_cfgctx_t *x, const json_t *t, cd_kafka_conf_t *kc)
{
    char path[CD_CFG_PATH_MAX];
    size_t i;
    json_t *v;
    const char *acc = "a non-empty array of topic names, e.g. [\"events\"]";

    if (!json_is_array(t) || json_array_size(t) == 0) {
        cd_cfg_bad(x, "kafka.topics", t, "is not accepted", acc);
        return;
    }
    if (json_array_size(t) > CD_KAFKA_MAX_TOPICS) {
        cd_cfg_bad(x, "kafka.topics", t, "has too many topics", "at most 16 topics");
        return;
    }
    json_array_foreach(t, i, v)
    {
        cd_cfg_path_index(path, sizeof(path), "kafka.topics", i);
        if (cd_cfg_string(x, path, v, kc->topics[kc->ntopics], sizeof(kc->topics[0]), false,
                          "a topic name"))
            kc->ntopics++;
    }
}

bool cd_kafka_conf_parse(const cd_config_t *cfg, cd_kafka_conf_t *kc, cd_diag_t *diag)
{
    cd_cfgctx_t x = {.c = (cd_config_t *)cfg, .d = diag};
    const json_t *k = cfg->kafka_json;
    int before = diag->count;
    json_t *v;

    cd_kafka_conf_init(kc);
    if (!k) return true;
    cd_cfg_check_keys(&x, "kafka", k, KNOWN);
    if ((v = json_object_get(k, "brokers")))
        cd_cfg_string(&x, "kafka.brokers", v, kc->brokers, sizeof(kc->brokers), false,
                      "a comma-separated list of host:port, e.g. \"kafka-1:9092,kafka-2:9092\"");
    if ((v = json_object_get(k, "topics"))) parse_topics(&x, v, kc);
    if ((v = json_object_get(k, "group")))
        cd_cfg_string(&x, "kafka.group", v, kc->group, sizeof(kc->group), false,
                      "a consumer group id");
    if ((v = json_object_get(k, "group_instance_id")))
        cd_cfg_string(&x, "kafka.group_instance_id", v, kc->group_instance_id,
                      sizeof(kc->group_instance_id), true,
                      "a stable identity of this agent, e.g. the StatefulSet pod's name");
    if ((v = json_object_get(k, "cohort_header"))) {
        if (cd_cfg_string(&x, "kafka.cohort_header", v, kc->cohort_header,
                          sizeof(kc->cohort_header), false, "a message header name") &&
            (!cfg->decode.cohort_path || !cfg->decode.cohort_path[0] ||
             strchr(cfg->decode.cohort_path, '.'))) {
            char r[CD_CFG_VALUE_MAX + 8];
            cd_cfg_render_str(cfg->decode.cohort_path ? cfg->decode.cohort_path : "", r,
                              sizeof(r));
            cd_diag_add(diag,
                        "kafka.cohort_header: needs events.cohort_field to be a top-level key "
                        "(it is %s); accepted: a field name without dots, such as \"cohort\"",
                        r);
        }
    }
    if ((v = json_object_get(k, "threads"))) {
        double t = 0;
        if (!json_is_integer(v))
            cd_cfg_bad(&x, "kafka.threads", v, "is not an integer",
                       "an integer 1..64, or 0 for the number of cores");
        else if (cd_cfg_number(&x, "kafka.threads", v, 0, false, CD_KAFKA_MAX_THREADS, false, &t))
            kc->threads = (int)t;
    }
    if ((v = json_object_get(k, "max_lag_wait"))) {
        /* The live clock judges a second at most this long after its time
         * (live.c, "Watermark"); the window ring keeps windows.slack of
         * history beyond the longest look-back, so no longer than that. */
        int64_t ms = 0;
        if (cd_cfg_duration(&x, "kafka.max_lag_wait", v, &ms)) {
            if (ms > cfg->slack_ms) {
                char sl[32], acc[128];
                snprintf(acc, sizeof(acc),
                         "a duration from \"0s\" (judge on the wall clock) to windows.slack "
                         "(\"%s\"); raise windows.slack to wait longer",
                         cd_duration_format(cfg->slack_ms, sl, sizeof(sl)));
                cd_cfg_bad(&x, "kafka.max_lag_wait", v, "is longer than windows.slack", acc);
            } else {
                kc->max_lag_wait_ms = ms;
            }
        }
    }
    if ((v = json_object_get(k, "start"))) {
        /* where a partition starts (issue 11, kafka_source.h:
         * cd_kafka_source_set_history) */
        if (json_is_string(v) && strcmp(json_string_value(v), "by_time") == 0)
            kc->start_committed = false;
        else if (json_is_string(v) && strcmp(json_string_value(v), "committed") == 0)
            kc->start_committed = true;
        else
            cd_cfg_bad(&x, "kafka.start", v, "is not a start position",
                       "\"by_time\" (the history the rules need, rebuilt) or \"committed\" "
                       "(the group's committed offset)");
    }
    if ((v = json_object_get(k, "properties"))) parse_props(&x, v, kc);
    return diag->count == before;
}

bool cd_kafka_conf_runnable(const cd_kafka_conf_t *kc, cd_diag_t *diag)
{
    int before = diag->count;
    if (!kc->brokers[0])
        cd_diag_add(diag, "kafka.brokers: missing; accepted: host:port list in the config or "
                          "--brokers");
    if (kc->ntopics == 0)
        cd_diag_add(diag, "kafka.topics: missing; accepted: an array of topic names in the "
                          "config or --topic");
    return diag->count == before;
}
