/*
 * test_config_yaml.c - YAML config files (agent/config/config_yaml.c): the same
 * tree and the same validation as JSON, and every message with the line and
 * column in the YAML file as well as the key path.
 *
 * Equivalence is checked on the trees (json_equal, which tells 2 from 2.0)
 * and on the parsed configs; errors pin the exact line a mistake produces,
 * positions included.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../agent/config/config_internal.h"
#include "canaryd/config.h"
#include "canaryd/kafka_source.h"
#include "config_expect.h"

static cd_diag_t diag;

static json_t *yaml_tree(const char *text, json_t **pos)
{
    cd_diag_init(&diag);
    return cd_cfg_yaml_load(text, strlen(text), pos, &diag);
}

static cd_config_t *parse_yaml(const char *text)
{
    return cd_config_parse_ex(text, strlen(text), NULL, CD_CFG_YAML, &diag);
}

/* The YAML document must fail with exactly these lines. */
static void expect(const char *yaml, const char *lines)
{
    expect_refused(parse_yaml(yaml), &diag, lines);
}

static char *slurp(const char *path)
{
    char *text, err[128];
    size_t len;
    cr_assert_eq(cd_cfg_read_file(path, 1 << 20, &text, &len, err, sizeof(err)), 0, "%s: %s", path,
                 err);
    return text;
}

#define RULE                                                                                       \
    "rules:\n"                                                                                     \
    "  - name: r\n"                                                                                \
    "    kind: threshold\n"                                                                        \
    "    numerator: [E]\n"                                                                         \
    "    op: \">\"\n"                                                                              \
    "    threshold: 0\n"                                                                           \
    "    window: 1m\n"                                                                             \
    "    action: alert\n"

/* ---- equivalence --------------------------------------------------------- */

Test(config_yaml, sop_yaml_is_sop_json)
{
    json_error_t jerr;
    json_t *j = json_load_file(CANARYD_SOURCE_DIR "/config/sop.json", 0, &jerr);
    cr_assert_not_null(j, "%s", jerr.text);
    char *text = slurp(CANARYD_SOURCE_DIR "/config/sop.yaml");
    json_t *pos;
    json_t *y = yaml_tree(text, &pos);
    cr_assert_not_null(y, "%s", diag.text);
    if (!json_equal(j, y)) {
        char *a = json_dumps(j, JSON_SORT_KEYS), *b = json_dumps(y, JSON_SORT_KEYS);
        cr_assert_fail("sop.json and sop.yaml differ:\n%s\n%s", a, b);
    }
    /* Ten rules, each with its position: rules[5].action is on line 134. */
    json_t *at = json_object_get(pos, "rules[5].action");
    cr_assert_not_null(at);
    cr_assert_eq(json_integer_value(json_array_get(at, 0)), 134);
    cr_assert_eq(json_integer_value(json_array_get(at, 1)), 13);
    json_decref(j);
    json_decref(y);
    json_decref(pos);
    free(text);
}

Test(config_yaml, loaded_configs_are_identical)
{
    cd_diag_t d2;
    cd_config_t *a = cd_config_load(CANARYD_SOURCE_DIR "/config/sop.json", &diag);
    cd_config_t *b = cd_config_load(CANARYD_SOURCE_DIR "/config/sop.yaml", &d2);
    cr_assert_not_null(a, "%s", diag.text);
    cr_assert_not_null(b, "%s", d2.text);
    cr_assert_null(a->src_pos);
    cr_assert_not_null(b->src_pos);
    cr_assert_eq(a->nrules, 10);
    cr_assert_eq(b->nrules, 10);
    cr_assert_eq(a->min_canary_events, 100);
    cr_assert_eq(b->min_canary_events, 100);
    /* Plain data, calloc'd: byte-equal when every field is. */
    cr_assert_eq(memcmp(a->rules, b->rules, sizeof(a->rules)), 0);
    cr_assert_eq(memcmp(a->type_names, b->type_names, sizeof(a->type_names)), 0);
    cr_assert_eq(memcmp(a->numeric_names, b->numeric_names, sizeof(a->numeric_names)), 0);
    cr_assert_eq(memcmp(a->paths, b->paths, sizeof(a->paths)), 0);
    cr_assert_eq(a->decode.ntypes, b->decode.ntypes);
    cr_assert_eq(a->resolution_ms, b->resolution_ms);
    cr_assert_eq(a->promote_after_ms, b->promote_after_ms);
    cr_assert_eq(a->alert_repeat_ms, b->alert_repeat_ms);
    cr_assert_str_eq(b->rules[0].name, "error-rate");
    cr_assert_float_eq(b->rules[0].factor, 2.0, 0);
    cd_config_free(a);
    cd_config_free(b);
}

Test(config_yaml, yml_extension_is_yaml)
{
    char path[] = "/tmp/canaryd-yaml-XXXXXX.yml";
    int fd = mkstemps(path, 4);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, RULE, strlen(RULE)), (ssize_t)strlen(RULE));
    close(fd);
    cd_config_t *c = cd_config_load(path, &diag);
    unlink(path);
    cr_assert_not_null(c, "%s", diag.text);
    cr_assert_eq(c->nrules, 1);
    cr_assert_str_eq(c->rules[0].name, "r");
    cd_config_free(c);
}

/* ---- scalars: YAML 1.2 core schema --------------------------------------- */

Test(config_yaml, scalars_resolve_by_the_core_schema)
{
    json_t *pos;
    json_t *t = yaml_tree("a: 10\n"
                          "b: -3\n"
                          "c: 0x1F\n"
                          "d: 0o17\n"
                          "e: 2.0\n"
                          "f: .5\n"
                          "g: 1e3\n"
                          "h: true\n"
                          "i: False\n"
                          "j: ~\n"
                          "k:\n"
                          "l: yes\n"
                          "m: \"10\"\n"
                          "n: '1.10'\n"
                          "o: !!str 10\n"
                          "p: !!float 3\n"
                          "q: 30s\n"
                          "r: |\n  two\n  lines\n"
                          "s: 1.2.3\n",
                          &pos);
    cr_assert_not_null(t, "%s", diag.text);
    char *s = json_dumps(t, JSON_COMPACT | JSON_REAL_PRECISION(6));
    cr_assert_str_eq(s,
                     "{\"a\":10,\"b\":-3,\"c\":31,\"d\":15,\"e\":2.0,\"f\":0.5,\"g\":1000.0,"
                     "\"h\":true,\"i\":false,\"j\":null,\"k\":null,\"l\":\"yes\",\"m\":\"10\","
                     "\"n\":\"1.10\",\"o\":\"10\",\"p\":3.0,\"q\":\"30s\",\"r\":\"two\\nlines\\n\","
                     "\"s\":\"1.2.3\"}");
    free(s);
    json_decref(t);
    json_decref(pos);
}

Test(config_yaml, anchors_and_aliases_copy)
{
    json_t *pos;
    json_t *t = yaml_tree("base: &ms {canary: 500, stable: 2000}\n"
                          "a: *ms\n"
                          "b: [*ms, *ms]\n",
                          &pos);
    cr_assert_not_null(t, "%s", diag.text);
    char *s = json_dumps(t, JSON_COMPACT);
    cr_assert_str_eq(s,
                     "{\"base\":{\"canary\":500,\"stable\":2000},\"a\":{\"canary\":500,\"stable\":"
                     "2000},\"b\":[{\"canary\":500,\"stable\":2000},{\"canary\":500,\"stable\":"
                     "2000}]}");
    free(s);
    /* Copies, not shared: changing one leaves the others. */
    json_object_set_new(json_object_get(t, "a"), "canary", json_integer(1));
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(t, "base"), "canary")), 500);
    json_decref(t);
    json_decref(pos);
}

/* ---- errors: line and column as well as the key path --------------------- */

Test(config_yaml, validator_messages_carry_positions)
{
    expect("windows:\n"
           "  resolution: 1s\n"
           "  bogus: 1\n" RULE "    for: 5x\n"
           "    min_samples: {canary: -1}\n",
           "line 3, column 3: windows: unknown key \"bogus\"; known keys: resolution, "
           "allowed_lateness, max_future_skew, slack\n"
           "line 12, column 10: rules[0].for: \"5x\" is not a duration; accepted: a non-negative "
           "integer of milliseconds or a string such as \"250ms\", \"30s\", \"5m\", \"1h30m\"\n"
           "line 13, column 27: rules[0].min_samples.canary: -1 is negative; accepted: an "
           "integer >= 0\n");
}

Test(config_yaml, missing_keys_point_at_their_mapping)
{
    expect("events:\n  types: [A]\nrules:\n  - name: r\n    kind: threshold\n",
           "line 4, column 5: rules[0]: missing required key \"window\"; accepted: a duration "
           "such as \"5m\"\n"
           "line 4, column 5: rules[0]: missing required key \"action\"; accepted: rollback, "
           "alert\n"
           "line 4, column 5: rules[0]: missing required key \"numerator\" (kind threshold); "
           "accepted: an array of 1 to 8 event type names such as [\"ERROR_OCCURRED\"]\n"
           "line 4, column 5: rules[0]: missing required key \"op\" (kind threshold); accepted: "
           ">, >=, <, <=\n"
           "line 4, column 5: rules[0]: missing required key \"threshold\" (kind threshold); "
           "accepted: a number >= 0\n");
}

Test(config_yaml, top_level_problems)
{
    expect("", "line 1, column 1: top level: null is not an object; accepted: a JSON object with "
               "the keys events, windows, verdicts, baseline_file, rules, kafka, sinks, http, "
               "log, coordination\n");
    expect("windows: {}\n", "line 1, column 1: top level: missing required key \"rules\"; "
                            "accepted: an array of 1 to 32 rule objects\n");
}

Test(config_yaml, conversion_errors)
{
    expect("a: 1\nb: 2\na: 3\n",
           "line 3, column 1: top level: duplicate key \"a\"; accepted: each key once per "
           "mapping\n");
    expect("rules:\n  - [1\n",
           "line 3, column 1: YAML syntax error: did not find expected ',' or ']' (while parsing "
           "a flow sequence at line 2, column 5)\n");
    expect(RULE "---\n" RULE,
           "line 9, column 1: a second YAML document; accepted: one document (no second "
           "\"---\") per file\n");
    expect("rules:\n  - threshold: .inf\n",
           "line 2, column 16: rules[0].threshold: \".inf\" is not a finite number; accepted: a "
           "finite number (JSON, and so canaryd's config, has no infinity or NaN)\n");
    expect("windows:\n  slack: 99999999999999999999\n",
           "line 2, column 10: windows.slack: \"99999999999999999999\" is out of range; "
           "accepted: an integer from -9223372036854775808 to 9223372036854775807\n");
    expect("windows: !!set {a}\n",
           "line 1, column 10: windows: tag \"tag:yaml.org,2002:set\" is not supported; "
           "accepted: no tag, or !!map\n");
    expect("windows:\n  slack: !!int 5s\n",
           "line 2, column 10: windows.slack: \"5s\" is not a integer; accepted: a value of the "
           "type its tag !!integer names\n");
    expect("? [a]\n: 1\n", "line 1, column 3: top level: a key is a mapping or sequence; "
                           "accepted: keys that are plain strings, such as \"window\"\n");
    expect("rules: \"a\\0b\"\n", "line 1, column 8: rules: a string holds a NUL character; "
                                 "accepted: text without \\0\n");
    expect("\"k\\0\": 1\n", "line 1, column 1: top level: a key holds a NUL character; "
                             "accepted: text without \\0\n");
    expect("a: &x [1, *x]\n",
           "line 1, column 11: a[1]: alias *x names no complete anchor before it; accepted: an "
           "alias after the value its &anchor marks\n");
}

Test(config_yaml, alias_bomb_is_bounded)
{
    /* 9 levels of 10 aliases each: 10^9 values if expanded. */
    char doc[2048];
    size_t n = (size_t)snprintf(doc, sizeof(doc), "l0: &l0 [x,x,x,x,x,x,x,x,x,x]\n");
    for (int i = 1; i < 9; i++)
        n += (size_t)snprintf(doc + n, sizeof(doc) - n,
                              "l%d: &l%d [*l%d,*l%d,*l%d,*l%d,*l%d,*l%d,*l%d,*l%d,*l%d,*l%d]\n", i,
                              i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1,
                              i - 1);
    json_t *pos;
    cr_assert_null(yaml_tree(doc, &pos));
    cr_assert_null(pos);
    cr_assert_eq(diag.count, 1);
    cr_assert(strstr(diag.text, "aliases expand the document past 65536 values"), "%s", diag.text);
}

/* Modules' sections (kafka, http, sinks) are checked after loading; their
 * lines get positions through cd_config_locate. */
Test(config_yaml, module_messages_located)
{
    cd_config_t *c = parse_yaml(RULE "kafka:\n  brokers: 12\n");
    cr_assert_not_null(c, "%s", diag.text);
    cd_kafka_conf_t *kc = malloc(sizeof(*kc));
    cd_diag_init(&diag);
    cd_diag_add(&diag, "earlier line: kept as it is");
    size_t from = diag.len;
    cr_assert_not(cd_kafka_conf_parse(c, kc, &diag));
    cd_config_locate(c, &diag, from);
    cr_assert_str_eq(diag.text,
                     "earlier line: kept as it is\n"
                     "line 10, column 12: kafka.brokers: 12 is not a string; accepted: a "
                     "comma-separated list of host:port, e.g. \"kafka-1:9092,kafka-2:9092\"\n");
    cr_assert_eq(diag.count, 2);
    free(kc);
    cd_config_free(c);
}

/* A value from the environment is not in the file: no position. */
Test(config_yaml, environment_lines_have_no_position)
{
    char path[] = "/tmp/canaryd-yaml-XXXXXX.yaml";
    const char *doc = RULE "kafka:\n  brokers: k:9092\n";
    int fd = mkstemps(path, 5);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
    close(fd);
    setenv("CANARYD_BROKERS", "", 1);
    cd_config_t *c = cd_config_load(path, &diag);
    unsetenv("CANARYD_BROKERS");
    unlink(path);
    cr_assert_null(c);
    cr_assert_str_eq(diag.text, "CANARYD_BROKERS (kafka.brokers): \"\" is empty; accepted: a "
                                "comma-separated list of host:port, e.g. "
                                "\"kafka-1:9092,kafka-2:9092\"\n");
}
