/*
 * test_config_coord.c - the "coordination" section (agent/config/config_coord.c):
 * defaults, every key, the password from a file / the environment (never in
 * a message), and each mistake named by key path, value and what is
 * accepted.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "canaryd/config.h"
#include "canaryd/coord.h"

#define RULE                                                                                       \
    "\"rules\": [{\"name\": \"e\", \"kind\": \"threshold\", \"numerator\": [\"E\"], \"op\": "      \
    "\">\", \"threshold\": 5, \"window\": \"10s\", \"action\": \"rollback\"}]"

static cd_diag_t diag;

/* Parses {RULE, coordination: sec}; returns whether the section parsed. */
static bool parse(const char *sec, cd_coord_conf_t *cc)
{
    char text[2048];
    snprintf(text, sizeof(text), "{" RULE "%s%s}", sec ? ", \"coordination\": " : "",
             sec ? sec : "");
    cd_diag_init(&diag);
    cd_config_t *c = cd_config_parse(text, strlen(text), NULL, &diag);
    if (!c) return false;
    bool ok = cd_coord_conf_parse(c, cc, &diag);
    cd_config_free(c);
    return ok;
}

Test(config_coord, absent_means_uncoordinated)
{
    cd_coord_conf_t cc;
    cr_assert(parse(NULL, &cc));
    cr_assert(!cc.enabled);
}

Test(config_coord, defaults_and_every_key)
{
    cd_coord_conf_t cc;
    cr_assert(parse("{\"redis\": \"redis.ns:6380\"}", &cc), "%s", diag.text);
    cr_assert(cc.enabled);
    cr_assert_str_eq(cc.host, "redis.ns");
    cr_assert_eq(cc.port, 6380);
    cr_assert_str_eq(cc.prefix, "canaryd");
    cr_assert_eq(cc.lease_ms, 10000);
    cr_assert_eq(cc.fallback_ms, 20000);
    cr_assert_eq(cc.retention_ms, 3600000);
    cr_assert_str_eq(cc.password, "");
    cr_assert(strlen(cc.agent_id) > 0);
    cr_assert(parse("{\"redis\": \"127.0.0.1:1\", \"prefix\": \"canaryd:checkout\", \"lease\": "
                    "\"3s\", \"fallback_after\": \"5s\", \"claim_retention\": \"2h\", "
                    "\"agent_id\": \"pod-a\", \"password\": \"pw\"}",
                    &cc),
              "%s", diag.text);
    cr_assert_str_eq(cc.prefix, "canaryd:checkout");
    cr_assert_eq(cc.lease_ms, 3000);
    cr_assert_eq(cc.fallback_ms, 5000);
    cr_assert_eq(cc.retention_ms, 7200000);
    cr_assert_str_eq(cc.agent_id, "pod-a");
    cr_assert_str_eq(cc.password, "pw");
    /* fallback_after follows the lease when not given */
    cr_assert(parse("{\"redis\": \"h:1\", \"lease\": \"4s\"}", &cc));
    cr_assert_eq(cc.fallback_ms, 8000);
}

Test(config_coord, password_from_file_and_env_never_shown)
{
    char dir[] = "/tmp/cd_coord_XXXXXX", path[64], sec[256];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/pw", dir);
    FILE *f = fopen(path, "w");
    fputs("fileSecret9\n", f);
    fclose(f);
    cd_coord_conf_t cc;
    snprintf(sec, sizeof(sec), "{\"redis\": \"h:1\", \"password_file\": \"%s\"}", path);
    cr_assert(parse(sec, &cc), "%s", diag.text);
    cr_assert_str_eq(cc.password, "fileSecret9");
    setenv("CD_COORD_PW", "envSecret7", 1);
    cr_assert(parse("{\"redis\": \"h:1\", \"password_env\": \"CD_COORD_PW\"}", &cc));
    cr_assert_str_eq(cc.password, "envSecret7");
    cr_assert(!parse("{\"redis\": \"h:1\", \"password_env\": \"CD_COORD_PW\", \"password\": "
                     "\"inlineSecret5\"}",
                     &cc));
    cr_assert_not_null(strstr(diag.text, "coordination: the secret \"password\" is given 2 ways"),
                       "%s", diag.text);
    cr_assert(!parse("{\"redis\": \"h:1\", \"password\": \"\"}", &cc));
    cr_assert_not_null(strstr(diag.text, "coordination.password: (value not shown)"), "%s",
                       diag.text);
    cr_assert_null(strstr(diag.text, "envSecret7"));
    cr_assert_null(strstr(diag.text, "inlineSecret5"));
    unsetenv("CD_COORD_PW");
    unlink(path);
    rmdir(dir);
}

Test(config_coord, mistakes_named_by_key_path_value_and_accepted)
{
    cd_coord_conf_t cc;
    cr_assert(!parse("{\"prefix\": \"x\"}", &cc));
    cr_assert_not_null(strstr(diag.text, "coordination: missing required key \"redis\""), "%s",
                       diag.text);
    cr_assert(!parse("{\"redis\": \"nohost\"}", &cc));
    cr_assert_not_null(strstr(diag.text, "coordination.redis: \"nohost\" is not HOST:PORT; "
                                         "accepted: \"HOST:PORT\""),
                       "%s", diag.text);
    cr_assert(!parse("{\"redis\": \"h:70000\"}", &cc));
    cr_assert_not_null(strstr(diag.text, "coordination.redis: \"h:70000\""), "%s", diag.text);
    cr_assert(!parse("{\"redis\": \"h:1\", \"lease\": \"100ms\"}", &cc));
    cr_assert_not_null(strstr(diag.text, "coordination.lease: \"100ms\" is too short; accepted: "
                                         "a duration of at least 300 ms"),
                       "%s", diag.text);
    cr_assert(!parse("{\"redis\": \"h:1\", \"prefix\": \"a b\"}", &cc));
    cr_assert_not_null(strstr(diag.text, "coordination.prefix: \"a b\" is not a usable name; "
                                         "accepted: 1 to 127 visible ASCII characters"),
                       "%s", diag.text);
    cr_assert(!parse("{\"redis\": \"h:1\", \"leese\": \"1s\"}", &cc));
    cr_assert_not_null(strstr(diag.text, "leese"), "%s", diag.text);
    cr_assert(!parse("[1]", &cc));
    cr_assert_not_null(strstr(diag.text, "coordination"), "%s", diag.text);
}
