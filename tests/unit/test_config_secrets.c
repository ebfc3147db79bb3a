/*
 * test_config_secrets.c - secrets from files (K_file) and the environment
 * (K_env) instead of inline (agent/config/config_secrets.c): each secret reaches
 * the module that uses it exactly as an inline value would, the mistakes
 * are reported with the key path, and no message ever holds a secret.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../agent/config/config_internal.h"
#include "canaryd/config.h"
#include "canaryd/dispatcher.h"
#include "canaryd/http_api.h"
#include "canaryd/kafka_source.h"

#define SECRET "s3cr3t-Value"
#define RULE                                                                                       \
    "\"rules\": [{\"name\": \"e\", \"kind\": \"threshold\", \"numerator\": [\"E\"], \"op\": "      \
    "\">\", \"threshold\": 5, \"window\": \"10s\", \"action\": \"rollback\"}]"

static cd_diag_t diag;
static char dir[64], file[96], crlf[96], bad[96];

static void write_file(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, n, f), n);
    fclose(f);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/cd_secrets_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(file, sizeof(file), "%s/secret", dir);
    snprintf(crlf, sizeof(crlf), "%s/crlf", dir);
    snprintf(bad, sizeof(bad), "%s/bad", dir);
    write_file(file, SECRET "\n", strlen(SECRET) + 1);
    write_file(crlf, SECRET "\r\n", strlen(SECRET) + 2);
    write_file(bad, "\xff\xfe", 2);
    setenv("CD_TEST_SECRET", SECRET, 1);
    unsetenv("CD_TEST_UNSET");
}

static void teardown(void)
{
    unlink(file);
    unlink(crlf);
    unlink(bad);
    rmdir(dir);
    unsetenv("CD_TEST_SECRET");
}

TestSuite(config_secrets, .init = setup, .fini = teardown);

/* Parses {RULE, extra}; %s in extra are replaced by the file's path. */
static cd_config_t *parse(const char *extra, const char *path)
{
    char ext[2048], doc[4096];
    snprintf(ext, sizeof(ext), extra, path, path, path);
    snprintf(doc, sizeof(doc), "{" RULE ", %s}", ext);
    cd_diag_init(&diag);
    return cd_config_parse(doc, strlen(doc), NULL, &diag);
}

static const char *out_str(const cd_config_t *c, const char *key)
{
    json_t *e = json_array_get(json_object_get(c->sinks_json, "outputs"), 0);
    return json_string_value(json_object_get(e, key));
}

Test(config_secrets, redis_password_from_a_file_without_its_newline)
{
    cd_config_t *c = parse("\"sinks\": {\"outputs\": [{\"type\": \"redis\", \"address\": "
                           "\"127.0.0.1:6379\", \"password_file\": \"%s\"}]}",
                           file);
    cr_assert_not_null(c, "%s", diag.text);
    cr_assert_str_eq(out_str(c, "password"), SECRET);
    cr_assert_null(out_str(c, "password_file"));
    cr_assert_eq(cd_dispatcher_check(c, &diag), 0, "%s", diag.text);
    cd_config_free(c);
    /* CRLF, as a file written on Windows leaves it, is dropped too. */
    c = parse("\"sinks\": {\"outputs\": [{\"type\": \"redis\", \"address\": \"127.0.0.1:6379\", "
              "\"password_file\": \"%s\"}]}",
              crlf);
    cr_assert_not_null(c, "%s", diag.text);
    cr_assert_str_eq(out_str(c, "password"), SECRET);
    cd_config_free(c);
}

Test(config_secrets, webhook_url_hmac_and_header_from_the_environment_and_files)
{
    setenv("CD_TEST_URL", "https://hooks.example.com/services/T0/B0/XYZ", 1);
    cd_config_t *c =
        parse("\"sinks\": {\"outputs\": [{\"type\": \"webhook\", \"url_env\": \"CD_TEST_URL\", "
              "\"secret_file\": \"%s\", \"headers\": {\"Authorization_env\": "
              "\"CD_TEST_SECRET\"}}]}",
              file);
    unsetenv("CD_TEST_URL");
    cr_assert_not_null(c, "%s", diag.text);
    cr_assert_str_eq(out_str(c, "url"), "https://hooks.example.com/services/T0/B0/XYZ");
    cr_assert_str_eq(out_str(c, "secret"), SECRET);
    json_t *e = json_array_get(json_object_get(c->sinks_json, "outputs"), 0);
    json_t *h = json_object_get(e, "headers");
    cr_assert_str_eq(json_string_value(json_object_get(h, "Authorization")), SECRET);
    cr_assert_eq(json_object_size(h), 1);
    cr_assert_eq(json_object_size(e), 4); /* type, url, secret, headers */
    cr_assert_eq(cd_dispatcher_check(c, &diag), 0, "%s", diag.text);
    cd_config_free(c);
}

Test(config_secrets, sasl_password_and_api_token)
{
    cd_config_t *c = parse("\"kafka\": {\"brokers\": \"k:9092\", \"topics\": [\"t\"], "
                           "\"properties\": {\"security.protocol\": \"SASL_SSL\", "
                           "\"sasl.mechanisms\": \"PLAIN\", \"sasl.username\": \"u\", "
                           "\"sasl.password_file\": \"%s\"}}, "
                           "\"http\": {\"bind\": \"127.0.0.1:0\", \"token_env\": "
                           "\"CD_TEST_SECRET\"}",
                           file);
    cr_assert_not_null(c, "%s", diag.text);
    cd_kafka_conf_t *kc = malloc(sizeof(*kc));
    cr_assert(cd_kafka_conf_parse(c, kc, &diag), "%s", diag.text);
    int found = 0;
    for (int i = 0; i < kc->nprops; i++)
        if (strcmp(kc->prop_names[i], "sasl.password") == 0) {
            cr_assert_str_eq(kc->prop_values[i], SECRET);
            found++;
        }
    cr_assert_eq(found, 1);
    cd_http_conf_t hc;
    cr_assert(cd_http_conf_parse(c, &hc, &diag), "%s", diag.text);
    cr_assert_str_eq(hc.token, SECRET);
    free(kc);
    cd_config_free(c);
}

static void expect(const char *extra, const char *path, const char *lines)
{
    cd_config_t *c = parse(extra, path);
    cr_assert_null(c, "parsed; expected:\n%s", lines);
    cr_assert_str_eq(diag.text, lines);
    cr_assert_null(strstr(diag.text, SECRET), "a secret in a message");
}

Test(config_secrets, mistakes_named_never_the_secret)
{
    char lines[1024];
    snprintf(lines, sizeof(lines),
             "sinks.outputs[0].password_file: \"%s/none\": cannot open: No such file or "
             "directory; accepted: a readable file holding the secret\n",
             dir);
    char missing[96];
    snprintf(missing, sizeof(missing), "%s/none", dir);
    expect("\"sinks\": {\"outputs\": [{\"type\": \"redis\", \"password_file\": \"%s\"}]}", missing,
           lines);
    expect("\"sinks\": {\"outputs\": [{\"type\": \"webhook\", \"url_env\": \"CD_TEST_UNSET\"}]}",
           "",
           "sinks.outputs[0].url_env: \"CD_TEST_UNSET\" is not set; accepted: the name of a "
           "set environment variable holding the secret\n");
    expect("\"sinks\": {\"outputs\": [{\"type\": \"webhook\", \"url\": \"https://a/b\", "
           "\"url_env\": \"CD_TEST_SECRET\", \"url_file\": \"%s\"}]}",
           file,
           "sinks.outputs[0]: the secret \"url\" is given 3 ways; accepted: one of \"url\", "
           "\"url_file\", \"url_env\"\n");
    expect("\"http\": {\"token\": \"x\", \"token_env\": \"CD_TEST_SECRET\"}", "",
           "http: the secret \"token\" is given 2 ways; accepted: one of \"token\", "
           "\"token_file\", \"token_env\"\n");
    snprintf(lines, sizeof(lines),
             "kafka.properties[\"sasl.password_file\"]: the content of \"%s\" (hidden) is not "
             "UTF-8 text, or holds a NUL; accepted: a file holding the secret as text\n",
             bad);
    expect("\"kafka\": {\"properties\": {\"sasl.password_file\": \"%s\"}}", bad, lines);
    expect("\"sinks\": {\"outputs\": [{\"type\": \"redis\", \"password_file\": 5}]}", "",
           "sinks.outputs[0].password_file: 5 is not accepted; accepted: the path of a file "
           "holding the secret\n");
}

Test(config_secrets, no_files_flag_refuses_to_read)
{
    char doc[512];
    snprintf(doc, sizeof(doc),
             "{" RULE ", \"sinks\": {\"outputs\": [{\"type\": \"redis\", \"password_file\": "
             "\"%s\"}]}}",
             file);
    cr_assert_null(cd_config_parse_ex(doc, strlen(doc), NULL, CD_CFG_NO_FILES, &diag));
    char lines[512];
    snprintf(lines, sizeof(lines),
             "sinks.outputs[0].password_file: \"%s\" is not read here (file access is "
             "disabled); accepted: an inline value\n",
             file);
    cr_assert_str_eq(diag.text, lines);
}

/* Only secret keys take _file / _env: other keys keep their names, and
 * the module rejects them as unknown. */
Test(config_secrets, only_secret_keys)
{
    cd_config_t *c = parse("\"sinks\": {\"outputs\": [{\"type\": \"webhook\", \"url\": "
                           "\"https://a/b\", \"format_file\": \"%s\"}]}",
                           file);
    cr_assert_not_null(c, "%s", diag.text);
    cr_assert_str_eq(out_str(c, "format_file"), file);
    cr_assert_gt(cd_dispatcher_check(c, &diag), 0);
    cr_assert(strstr(diag.text, "sinks.outputs[0].format_file: unknown key; accepted: "), "%s",
              diag.text);
    cd_config_free(c);
}

/* YAML: a module's message about a secret from a file points at the line
 * that named the file, and holds no secret. */
Test(config_secrets, yaml_position_of_the_file_key)
{
    char doc[1024];
    write_file(file, "ftp://hooks.example.com/" SECRET "\n", strlen(SECRET) + 25);
    snprintf(doc, sizeof(doc),
             "rules:\n"
             "  - {name: e, kind: threshold, numerator: [E], op: \">\", threshold: 5, window: 10s, "
             "action: rollback}\n"
             "sinks:\n"
             "  outputs:\n"
             "    - type: webhook\n"
             "      url_file: %s\n",
             file);
    cd_config_t *c = cd_config_parse_ex(doc, strlen(doc), NULL, CD_CFG_YAML, &diag);
    cr_assert_not_null(c, "%s", diag.text);
    cd_diag_init(&diag);
    cr_assert_eq(cd_dispatcher_check(c, &diag), 1);
    cd_config_locate(c, &diag, 0);
    cr_assert_null(strstr(diag.text, SECRET), "%s", diag.text);
    cr_assert_eq(strncmp(diag.text, "line 6, column 17: sinks.outputs[0].url: ", 41), 0, "%s",
                 diag.text);
    cd_config_free(c);
}
