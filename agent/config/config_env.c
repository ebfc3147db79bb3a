/*
 * config_env.c - environment overrides of the config file, so that a
 * container manifest needs no config file of its own: one ConfigMap with the
 * deployment procedure's rules, and the per-deployment settings (brokers,
 * topic, group, canary version, service, webhook, HTTP bind) in the
 * environment.
 *
 * Precedence: command line > environment > file. The loader parses the file
 * into a jansson tree, this module overlays the variables onto that tree
 * (replacing keys, creating sections), and only then is the tree validated,
 * by the same code that checks the file. So a bad value gets exactly the
 * check a file value gets, and cd_cfg_env_check rewrites the message's key
 * path to name the variable:
 *   CANARYD_BROKERS (kafka.brokers): "" is empty; accepted: ...
 * Command-line options (`canaryd run --brokers`) are applied after loading
 * and so win over both. A variable that is set but empty is an override
 * with an empty value (an error where the key must not be empty), never a
 * silent "unset".
 *
 * Sections parsed by their own modules when the agent starts (kafka, sinks)
 * are checked here too, but only for the keys a variable set: their
 * parsers run on the overlaid tree and only the lines about those keys are
 * kept; everything else is reported later by the module, as without
 * overrides.
 *
 * CANARYD_WEBHOOK_URL is a secret (chat webhook URLs carry their token): it
 * is never logged or echoed; the webhook sink itself shows URLs as
 * scheme://host:port/... only.
 *
 * Marker: every variable canaryd reads is written in this file as a string
 * literal that holds exactly its name (the VARS table below); agent/core/log.c
 * holds CANARYD_LOG_LEVEL the same way. tests/integration/test_deploy.c
 * extracts that list from the two files to check that the Docker and
 * Kubernetes manifests set no variable canaryd ignores. Keep the names in
 * no other standalone literal here.
 *
 * Start-up only, one thread.
 */
#include "config_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canaryd/dispatcher.h"
#include "canaryd/http_api.h"
#include "canaryd/kafka_source.h"
#include "canaryd/log.h"

enum {
    V_BROKERS,
    V_TOPIC,
    V_GROUP,
    V_GROUP_INSTANCE_ID,
    V_CANARY_VERSION,
    V_SERVICE,
    V_WEBHOOK_URL,
    V_WEBHOOK_FORMAT,
    V_HTTP_BIND,
    V__COUNT
};

static const char *const VARS[V__COUNT] = {
    [V_BROKERS] = "CANARYD_BROKERS",
    [V_TOPIC] = "CANARYD_TOPIC",
    [V_GROUP] = "CANARYD_GROUP",
    [V_GROUP_INSTANCE_ID] = "CANARYD_GROUP_INSTANCE_ID",
    [V_CANARY_VERSION] = "CANARYD_CANARY_VERSION",
    [V_SERVICE] = "CANARYD_SERVICE",
    [V_WEBHOOK_URL] = "CANARYD_WEBHOOK_URL",
    [V_WEBHOOK_FORMAT] = "CANARYD_WEBHOOK_FORMAT",
    [V_HTTP_BIND] = "CANARYD_HTTP_BIND",
};

/* Name of the sink entry CANARYD_WEBHOOK_URL adds (logs and counters). */
#define ENV_SINK_NAME "env-webhook"

static void record(cd_cfg_env_t *env, int var, const char *path, const char *created)
{
    if (env->n == CD_CFG_ENV_MAX) return; /* one per variable: cannot happen */
    env->set[env->n].var = VARS[var];
    snprintf(env->set[env->n].path, sizeof(env->set[0].path), "%s", path);
    snprintf(env->set[env->n].created, sizeof(env->set[0].created), "%s", created ? created : "");
    env->n++;
}

/* root[name] as an object to write into: created when absent (reported in
 * *created), NULL when the file has a non-object there (the loader reports
 * that under the section's own name). */
static json_t *section(json_t *root, const char *name, const char **created)
{
    json_t *s = json_object_get(root, name);
    *created = NULL;
    if (s) return json_is_object(s) ? s : NULL;
    s = json_object();
    if (!s || json_object_set_new(root, name, s) != 0) return NULL;
    *created = name;
    return s;
}

/* The variable's value as a JSON string, or NULL with a problem reported
 * (jansson holds UTF-8 only). The value is never echoed: it may be a secret. */
static json_t *env_string(cd_cfgctx_t *x, int var, const char *path, const char *val)
{
    json_t *s = json_string(val);
    if (!s)
        cd_diag_add(x->d, "%s (%s): not valid UTF-8; accepted: %s", VARS[var], path,
                    var == V_WEBHOOK_URL ? "an http or https URL" : "a UTF-8 string");
    return s;
}

/* Sets sec_name.key = val (a string) on root. */
static void set_string(cd_cfgctx_t *x, json_t *root, cd_cfg_env_t *env, int var,
                       const char *sec_name, const char *key, const char *val)
{
    char path[64];
    const char *created;
    snprintf(path, sizeof(path), "%s.%s", sec_name, key);
    json_t *s = env_string(x, var, path, val);
    if (!s) return;
    json_t *sec = section(root, sec_name, &created);
    if (!sec) {
        json_decref(s);
        cd_diag_add(x->d,
                    "%s (%s): cannot be set: the file's \"%s\" is not an object; accepted: "
                    "an object, or leave the key out",
                    VARS[var], path, sec_name);
        return;
    }
    json_object_set_new(sec, key, s);
    record(env, var, path, created);
    cd_log(CD_LOG_INFO, "config: %s overrides %s", VARS[var], path);
}

/* CANARYD_TOPIC: "a,b" -> kafka.topics ["a", "b"]; blanks around names are
 * dropped, an empty name stays (and is reported as one, with its index). */
static void set_topics(cd_cfgctx_t *x, json_t *root, cd_cfg_env_t *env, const char *val)
{
    const char *created;
    json_t *arr = json_array();
    if (!arr) return;
    for (const char *p = val;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        const char *b = p, *e = p + n;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        char name[512];
        snprintf(name, sizeof(name), "%.*s", (int)(e - b), b);
        json_t *s = env_string(x, V_TOPIC, "kafka.topics", name);
        if (!s) {
            json_decref(arr);
            return;
        }
        json_array_append_new(arr, s);
        if (!comma) break;
        p = comma + 1;
    }
    json_t *sec = section(root, "kafka", &created);
    if (!sec) {
        json_decref(arr);
        cd_diag_add(x->d,
                    "CANARYD_TOPIC (kafka.topics): cannot be set: the file's \"kafka\" is not "
                    "an object; accepted: an object, or leave the key out");
        return;
    }
    json_object_set_new(sec, "topics", arr);
    record(env, V_TOPIC, "kafka.topics", created);
    cd_log(CD_LOG_INFO, "config: CANARYD_TOPIC overrides kafka.topics (%zu topic%s)",
           json_array_size(arr), json_array_size(arr) == 1 ? "" : "s");
}

/* CANARYD_WEBHOOK_URL (+ _FORMAT): appends a webhook sink to sinks.outputs. */
static void add_webhook(cd_cfgctx_t *x, json_t *root, cd_cfg_env_t *env, const char *url,
                        const char *format)
{
    const char *created;
    char path[64];
    json_t *u = env_string(x, V_WEBHOOK_URL, "sinks.outputs", url);
    json_t *f =
        format ? env_string(x, V_WEBHOOK_FORMAT, "sinks.outputs", format) : json_string("generic");
    json_t *entry = NULL;
    if (!u || !f) goto err;
    json_t *sinks = section(root, "sinks", &created);
    json_t *outs = sinks ? json_object_get(sinks, "outputs") : NULL;
    if (!sinks || (outs && !json_is_array(outs))) {
        cd_diag_add(x->d,
                    "CANARYD_WEBHOOK_URL (sinks.outputs): cannot add a webhook sink: the "
                    "file's \"%s\" is not %s; accepted: %s, or leave the key out",
                    sinks ? "sinks.outputs" : "sinks", sinks ? "an array" : "an object",
                    sinks ? "an array" : "an object");
        goto err;
    }
    if (!outs) {
        outs = json_array();
        if (!outs || json_object_set_new(sinks, "outputs", outs) != 0) goto err;
    }
    entry = json_pack("{s:s,s:s,s:o,s:o}", "type", "webhook", "name", ENV_SINK_NAME, "url", u,
                      "format", f);
    u = f = NULL; /* stolen by json_pack, also on failure */
    if (!entry) goto err;
    snprintf(path, sizeof(path), "sinks.outputs[%zu]", json_array_size(outs));
    if (json_array_append_new(outs, entry) != 0) goto err;
    record(env, V_WEBHOOK_URL, path, created);
    cd_log(CD_LOG_INFO, "config: CANARYD_WEBHOOK_URL adds %s (webhook \"%s\", format %s)", path,
           ENV_SINK_NAME, format ? format : "generic");
    return;
err:
    json_decref(u);
    json_decref(f);
}

void cd_cfg_env_overlay(cd_cfgctx_t *x, json_t *root, cd_cfg_env_t *env)
{
    const char *v[V__COUNT];

    memset(env, 0, sizeof(*env));
    for (int i = 0; i < V__COUNT; i++)
        v[i] = getenv(VARS[i]);
    if (v[V_BROKERS]) set_string(x, root, env, V_BROKERS, "kafka", "brokers", v[V_BROKERS]);
    if (v[V_TOPIC]) set_topics(x, root, env, v[V_TOPIC]);
    if (v[V_GROUP]) set_string(x, root, env, V_GROUP, "kafka", "group", v[V_GROUP]);
    if (v[V_GROUP_INSTANCE_ID])
        set_string(x, root, env, V_GROUP_INSTANCE_ID, "kafka", "group_instance_id",
                   v[V_GROUP_INSTANCE_ID]);
    if (v[V_CANARY_VERSION])
        set_string(x, root, env, V_CANARY_VERSION, "events", "canary_version", v[V_CANARY_VERSION]);
    if (v[V_SERVICE]) set_string(x, root, env, V_SERVICE, "events", "service", v[V_SERVICE]);
    if (v[V_HTTP_BIND]) set_string(x, root, env, V_HTTP_BIND, "http", "bind", v[V_HTTP_BIND]);
    if (v[V_WEBHOOK_URL])
        add_webhook(x, root, env, v[V_WEBHOOK_URL], v[V_WEBHOOK_FORMAT]);
    else if (v[V_WEBHOOK_FORMAT])
        cd_diag_add(x->d, "CANARYD_WEBHOOK_FORMAT: set without CANARYD_WEBHOOK_URL; accepted: "
                          "set both, or neither");
}

/* The override whose key path a message about `path` (the text before the
 * first ": ") belongs to, or -1. A message is about an override when its
 * path is the key set or below it, or is a section the overlay created. */
static int owner(const cd_cfg_env_t *env, const char *path, size_t len)
{
    for (int i = 0; i < env->n; i++) {
        const char *k = env->set[i].path;
        size_t kl = strlen(k);
        if (len >= kl && strncmp(path, k, kl) == 0 &&
            (len == kl || path[kl] == '.' || path[kl] == '['))
            return i;
        const char *c = env->set[i].created;
        if (*c && len == strlen(c) && strncmp(path, c, len) == 0) return i;
    }
    return -1;
}

/* The variable to name for a message about path: the webhook entry's
 * ".format" is CANARYD_WEBHOOK_FORMAT's. */
static const char *var_for(const cd_cfg_env_t *env, int i, const char *path, size_t len)
{
    if (env->set[i].var == VARS[V_WEBHOOK_URL]) {
        size_t kl = strlen(env->set[i].path);
        if (len == kl + 7 && strncmp(path + kl, ".format", 7) == 0) return VARS[V_WEBHOOK_FORMAT];
    }
    return env->set[i].var;
}

/* Appends src's lines to dst, rewriting those about an override. When
 * only_env, lines about nothing the overlay set are left out. rebase: the
 * key path src's webhook entry has (a check of the entry alone), rewritten
 * to the entry's real path. */
static void annotate(cd_diag_t *dst, const cd_diag_t *src, const cd_cfg_env_t *env, bool only_env,
                     const char *rebase, const char *real)
{
    int lines = 0;
    for (const char *s = src->text; *s;) {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        char line[1024], path[128];
        snprintf(line, sizeof(line), "%.*s", (int)n, s);
        s += n + (nl ? 1 : 0);
        lines++;
        const char *rest = line;
        if (rebase && strncmp(line, rebase, strlen(rebase)) == 0) {
            snprintf(path, sizeof(path), "%s", real);
            rest = line + strlen(rebase);
            char *colon = strstr(rest, ": ");
            size_t pl = strlen(path);
            if (colon) {
                snprintf(path + pl, sizeof(path) - pl, "%.*s", (int)(colon - rest), rest);
                rest = colon;
            }
        } else {
            char *colon = strstr(line, ": ");
            snprintf(path, sizeof(path), "%.*s", colon ? (int)(colon - line) : 0, line);
            rest = colon ? colon : line;
        }
        int i = path[0] ? owner(env, path, strlen(path)) : -1;
        if (i >= 0)
            cd_diag_add(dst, "%s (%s)%s", var_for(env, i, path, strlen(path)), path, rest);
        else if (!only_env)
            cd_diag_add(dst, "%s", line);
    }
    /* Lines cut by the source's truncation still count. */
    for (; lines < src->count && !only_env; lines++)
        dst->count++;
}

/* A section its own module parses when the agent starts (kafka, http): the
 * module's parser over the overlaid section; only the lines about keys a
 * variable set are kept (the module reports the rest itself, later). */
static void check_section(cd_cfgctx_t *x, const cd_cfg_env_t *env, cd_diag_t *tmp,
                          const char *prefix, const void *sec,
                          bool (*parse)(const cd_config_t *, void *, cd_diag_t *), size_t size)
{
    bool any = false;
    for (int i = 0; i < env->n; i++)
        any |= strncmp(env->set[i].path, prefix, strlen(prefix)) == 0;
    if (!any || !sec) return;
    void *conf = malloc(size);
    if (!conf) {
        cd_diag_add(x->d, "out of memory");
        return;
    }
    cd_diag_init(tmp);
    parse(x->c, conf, tmp);
    free(conf);
    annotate(x->d, tmp, env, true, NULL, NULL);
}

static bool parse_kafka(const cd_config_t *c, void *conf, cd_diag_t *d)
{
    return cd_kafka_conf_parse(c, conf, d);
}

static bool parse_http(const cd_config_t *c, void *conf, cd_diag_t *d)
{
    return cd_http_conf_parse(c, conf, d);
}

/* Sinks: the added webhook entry alone, checked by the dispatcher (built and
 * freed, nothing sent); its messages rebased onto the entry's real path. */
static void check_webhook(cd_cfgctx_t *x, const cd_cfg_env_t *env, cd_diag_t *tmp)
{
    const char *real = NULL;
    for (int i = 0; i < env->n; i++)
        if (env->set[i].var == VARS[V_WEBHOOK_URL]) real = env->set[i].path;
    if (!real || !x->c->sinks_json) return;
    json_t *outs = json_object_get(x->c->sinks_json, "outputs");
    json_t *entry = json_array_get(outs, json_array_size(outs) - 1);
    json_t *alone = json_pack("{s:[O]}", "outputs", entry);
    if (!alone) {
        cd_diag_add(x->d, "out of memory");
        return;
    }
    void *saved = x->c->sinks_json;
    x->c->sinks_json = alone;
    cd_diag_init(tmp);
    cd_dispatcher_check(x->c, tmp);
    x->c->sinks_json = saved;
    json_decref(alone);
    annotate(x->d, tmp, env, true, "sinks.outputs[0]", real);
}

void cd_cfg_env_check(cd_cfgctx_t *x, const cd_cfg_env_t *env)
{
    if (env->n == 0) return;
    cd_diag_t *tmp = malloc(sizeof(*tmp)), *orig = malloc(sizeof(*orig));
    if (!tmp || !orig) {
        cd_diag_add(x->d, "out of memory");
        goto out;
    }
    /* The loader's own lines first, rewritten in place (order kept). */
    *orig = *x->d;
    cd_diag_init(x->d);
    annotate(x->d, orig, env, false, NULL, NULL);
    if (x->c) {
        check_section(x, env, tmp, "kafka.", x->c->kafka_json, parse_kafka,
                      sizeof(cd_kafka_conf_t));
        check_section(x, env, tmp, "http.", x->c->http_json, parse_http, sizeof(cd_http_conf_t));
        check_webhook(x, env, tmp);
    }
out:
    free(tmp);
    free(orig);
}
