/*
 * config_secrets.c - secrets kept out of the config file: every secret key
 * K may instead be given as K_file (a path; the file's content is the
 * secret, one trailing newline dropped, as `echo` or a Kubernetes Secret
 * volume leaves it) or K_env (the name of an environment variable holding
 * it). So a ConfigMap holds the rules and a Secret holds the secrets.
 *
 * The secret keys, by where they are:
 *   kafka.properties.*           properties cd_kafka_prop_is_secret names
 *                                (sasl.password, ssl.key.password, ...)
 *   http.token                   token_env here; token_file is the HTTP
 *                                module's own (agent/config/config_http.c)
 *   sinks.outputs[i].url         webhook and alertmanager URLs (chat
 *                                webhook URLs carry their token)
 *   sinks.outputs[i].secret      the webhook's HMAC key
 *   sinks.outputs[i].password    Redis's AUTH password
 *   coordination.password        the coordination Redis's AUTH password
 *   sinks.outputs[i].headers.*   webhook header values (Authorization)
 *   sinks.outputs[i].properties.* a kafka sink's secret properties
 *
 * Like the environment overlay (config_env.c), this rewrites the parsed
 * tree before validation: K_file / K_env is replaced by K holding the
 * secret, so each module checks the value exactly as if it were inline,
 * with its own secret-hiding messages. A YAML file's position for K_file is
 * copied to K, so a module's message about K points at the line that
 * named the file. Giving two of K, K_file, K_env is an error; so are an
 * unreadable file, an unset variable and content that is not UTF-8.
 *
 * Never logged or echoed: a secret's value, a file's content, a variable's
 * value. Paths and variable names are not secrets and are shown.
 *
 * Start-up only, one thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canaryd/kafka_source.h"
#include "config_internal.h"

/* Largest secret file read (a PEM chain fits). */
#define SECRET_FILE_MAX (64 << 10)

static const char *const OUTPUT_SECRETS[] = {"url", "secret", "password", NULL};

static bool in_list(const char *s, size_t n, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == n && strncmp(s, *list, n) == 0) return true;
    return false;
}

/* A secret key named by base (n bytes) in this object? */
typedef bool (*is_secret_fn)(const char *base, size_t n);

static bool output_secret(const char *base, size_t n)
{
    return in_list(base, n, OUTPUT_SECRETS);
}

static bool any_key(const char *base, size_t n)
{
    (void)base, (void)n;
    return true; /* every header value is a secret */
}

static bool kafka_secret(const char *base, size_t n)
{
    char name[256];
    snprintf(name, sizeof(name), "%.*s", (int)n, base);
    return cd_kafka_prop_is_secret(name);
}

static bool password_only(const char *base, size_t n)
{
    return n == 8 && strncmp(base, "password", 8) == 0;
}

static bool token_only(const char *base, size_t n)
{
    return n == 5 && strncmp(base, "token", 5) == 0;
}

/* The secret named by key/v (a _file or _env key) as a new JSON string, or
 * NULL with the problem reported under path. */
static json_t *fetch(cd_cfgctx_t *x, const char *path, const json_t *v, bool from_file)
{
    char shown[CD_CFG_VALUE_MAX + 8];
    const char *s = json_string_value(v);

    if (!s || !*s || strlen(s) != json_string_length(v)) {
        cd_cfg_bad(x, path, v, "is not accepted",
                   from_file ? "the path of a file holding the secret"
                             : "the name of an environment variable holding the secret");
        return NULL;
    }
    cd_cfg_render(v, shown, sizeof(shown));
    if (!from_file) {
        const char *val = getenv(s);
        if (!val) {
            cd_diag_add(x->d,
                        "%s: %s is not set; accepted: the name of a set environment "
                        "variable holding the secret",
                        path, shown);
            return NULL;
        }
        json_t *j = json_string(val);
        if (!j)
            cd_diag_add(x->d, "%s: the value of %s (hidden) is not UTF-8; accepted: UTF-8 text",
                        path, shown);
        return j;
    }
    if (x->flags & CD_CFG_NO_FILES) {
        cd_diag_add(x->d,
                    "%s: %s is not read here (file access is disabled); accepted: an "
                    "inline value",
                    path, shown);
        return NULL;
    }
    char *text, err[256];
    size_t len;
    if (cd_cfg_read_file(s, SECRET_FILE_MAX, &text, &len, err, sizeof(err)) != 0) {
        cd_diag_add(x->d, "%s: %s: %s; accepted: a readable file holding the secret", path, shown,
                    err);
        return NULL;
    }
    if (len > 0 && text[len - 1] == '\n') len--;
    if (len > 0 && text[len - 1] == '\r') len--;
    json_t *j = json_stringn(text, len);
    /* The content is the secret: wiped before the buffer goes back. */
    memset(text, 0, len);
    free(text);
    if (!j)
        cd_diag_add(x->d,
                    "%s: the content of %s (hidden) is not UTF-8 text, or holds a NUL; "
                    "accepted: a file holding the secret as text",
                    path, shown);
    return j;
}

/* Resolves every K_file / K_env of obj (at path) whose K is a secret. */
static void resolve_object(cd_cfgctx_t *x, json_t *obj, const char *path, is_secret_fn secret,
                           bool files, json_t *pos)
{
    const char *key;
    json_t *v;
    void *tmp;
    char kp[CD_CFG_PATH_MAX], bp[CD_CFG_PATH_MAX], base[256];

    if (!json_is_object(obj)) return; /* the module reports that */
    json_object_foreach_safe(obj, tmp, key, v)
    {
        size_t n = strlen(key);
        bool file = n > 5 && strcmp(key + n - 5, "_file") == 0;
        bool env = n > 4 && strcmp(key + n - 4, "_env") == 0;
        if (!(file && files) && !env) continue;
        size_t bn = n - (file ? 5 : 4);
        if (bn >= sizeof(base) || !secret(key, bn)) continue;
        snprintf(base, sizeof(base), "%.*s", (int)bn, key);
        cd_cfg_path_key(kp, sizeof(kp), path, key);
        cd_cfg_path_key(bp, sizeof(bp), path, base);

        /* Two ways of giving one secret: which one wins would be a guess.
         * Reported once, at the _file key when there is one. */
        char fk[sizeof(base) + 8], ek[sizeof(base) + 8];
        snprintf(fk, sizeof(fk), "%s_file", base);
        snprintf(ek, sizeof(ek), "%s_env", base);
        int given = (json_object_get(obj, base) != NULL) + (json_object_get(obj, fk) != NULL) +
                    (json_object_get(obj, ek) != NULL);
        if (given > 1) {
            if (file || !json_object_get(obj, fk))
                cd_diag_add(x->d,
                            "%s: the secret \"%s\" is given %d ways; accepted: one of \"%s\", "
                            "\"%s\", \"%s\"",
                            cd_cfg_where(path), base, given, base, fk, ek);
            continue;
        }
        json_t *s = fetch(x, kp, v, file);
        if (!s) continue;
        json_t *at = pos ? json_object_get(pos, kp) : NULL;
        if (at) json_object_set(pos, bp, at);
        json_object_set_new(obj, base, s);
        json_object_del(obj, key);
    }
}

void cd_cfg_secrets_resolve(cd_cfgctx_t *x, json_t *root, json_t *pos)
{
    char p[CD_CFG_PATH_MAX], q[CD_CFG_PATH_MAX];
    json_t *kafka = json_object_get(root, "kafka");
    if (json_is_object(kafka))
        resolve_object(x, json_object_get(kafka, "properties"), "kafka.properties", kafka_secret,
                       true, pos);
    /* http.token_file is the HTTP module's (it reads the file itself). */
    resolve_object(x, json_object_get(root, "http"), "http", token_only, false, pos);
    resolve_object(x, json_object_get(root, "coordination"), "coordination", password_only, true,
                   pos);
    json_t *sinks = json_object_get(root, "sinks");
    json_t *outs = json_is_object(sinks) ? json_object_get(sinks, "outputs") : NULL;
    size_t i;
    json_t *e;
    json_array_foreach(outs, i, e)
    {
        if (!json_is_object(e)) continue;
        cd_cfg_path_index(p, sizeof(p), "sinks.outputs", i);
        resolve_object(x, e, p, output_secret, true, pos);
        cd_cfg_path_key(q, sizeof(q), p, "headers");
        resolve_object(x, json_object_get(e, "headers"), q, any_key, true, pos);
        cd_cfg_path_key(q, sizeof(q), p, "properties");
        resolve_object(x, json_object_get(e, "properties"), q, kafka_secret, true, pos);
    }
}
