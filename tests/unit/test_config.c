/*
 * test_config.c - the config loader and `canaryd check-config`.
 *
 * The point of the loader is its messages, so most tests pin the exact line
 * a mistake produces. Documents are written with single quotes (q() turns
 * them into double quotes) to keep them readable here.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "../../agent/cli/cli.h"
#include "canaryd/config.h"
#include "config_expect.h"

#include <jansson.h>

#define DATA CANARYD_SOURCE_DIR "/tests/data/config/"

static cd_diag_t diag;
static char doc[8192];

/* Single quotes to double quotes (the documents below have no apostrophes). */
static const char *q(const char *s)
{
    size_t n = strlen(s);
    cr_assert_lt(n, sizeof(doc));
    for (size_t i = 0; i <= n; i++)
        doc[i] = s[i] == '\'' ? '"' : s[i];
    return doc;
}

static cd_config_t *parse(const char *single_quoted)
{
    const char *t = q(single_quoted);
    return cd_config_parse(t, strlen(t), NULL, &diag);
}

/* The document must fail with exactly these lines. */
static void expect(const char *single_quoted, const char *lines)
{
    expect_refused(parse(single_quoted), &diag, lines);
}

static cd_config_t *expect_ok(const char *single_quoted)
{
    cd_config_t *c = parse(single_quoted);
    cr_assert_not_null(c, "problems:\n%s", diag.text);
    cr_assert_eq(diag.count, 0);
    return c;
}

/* A valid threshold rule named n with extra keys spliced in; THR0 and THRN
 * leave out the window. */
#define THRN(n, extra)                                                                             \
    "{'name': '" n "', 'kind': 'threshold', 'numerator': ['E'], 'op': '>', 'threshold': 0, "       \
    "'action': 'alert'" extra "}"
#define THR0(extra) THRN("r", extra)
#define THR(extra) THR0(", 'window': '1m'" extra)
/* RULES(a, b, ...): a document of up to four rules, joined with commas. */
#define JOIN1(a) a
#define JOIN2(a, b) a ", " b
#define JOIN3(a, b, c) a ", " b ", " c
#define JOIN4(a, b, c, d) a ", " b ", " c ", " d
#define PICK(_1, _2, _3, _4, name, ...) name
#define RULES(...) "{'rules': [" PICK(__VA_ARGS__, JOIN4, JOIN3, JOIN2, JOIN1, _)(__VA_ARGS__) "]}"

#define DURATION_ACC                                                                               \
    "accepted: a non-negative integer of milliseconds or a string such as \"250ms\", \"30s\", "    \
    "\"5m\", \"1h30m\""

/* ---- the SOP ----------------------------------------------------------- */

Test(config, sop_loads_every_field)
{
    cd_config_t *c = cd_config_load(CANARYD_SOURCE_DIR "/config/sop.json", &diag);
    cr_assert_not_null(c, "%s", diag.text);

    const char *cat[] = {"REQUEST_COMPLETED", "ERROR_OCCURRED",    "USER_LOGIN",
                         "USER_LOGIN_FAILED", "PAYMENT_COMPLETED", "PAYMENT_FAILED",
                         "AUDIT_LOG_FAILED"};
    cr_assert_eq(c->decode.ntypes, 7);
    for (int i = 0; i < 7; i++) {
        cr_assert_str_eq(c->decode.types[i], cat[i]);
        cr_assert_eq(cd_config_type_id(c, cat[i]), i);
    }
    cr_assert_eq(cd_config_type_id(c, "NOPE"), CD_TYPE_OTHER);
    cr_assert_str_eq(c->decode.type_path, "event_type");
    cr_assert_str_eq(c->decode.time_path, "timestamp");
    cr_assert_str_eq(c->decode.cohort_path, "cohort");
    cr_assert_str_eq(c->decode.canary_value, "canary");
    cr_assert_str_eq(c->decode.stable_value, "stable");
    cr_assert_str_eq(c->decode.version_path, "version");
    cr_assert_str_eq(c->decode.service_path, "service");
    cr_assert_null(c->decode.canary_version);
    cr_assert_eq(c->decode.nnumeric, 1);
    cr_assert_str_eq(c->numeric_names[0], "latency_ms");
    cr_assert_str_eq(c->decode.numeric_paths[0], "data.latency_ms");
    cr_assert_eq(c->resolution_ms, 1000);
    cr_assert_eq(c->allowed_lateness_ms, 5000);
    cr_assert_eq(c->max_future_skew_ms, 120000);
    cr_assert_eq(c->slack_ms, 30000);
    cr_assert_eq(c->promote_after_ms, 900000);
    cr_assert_eq(c->alert_repeat_ms, 300000);
    cr_assert_eq(c->eval_interval_ms, 1000);
    cr_assert_str_eq(c->baseline_file, "");
    cr_assert_eq(c->min_canary_events, 100);
    cr_assert_eq(c->nrules, 10);

    const cd_rule_conf_t *r = &c->rules[0];
    cr_assert_str_eq(r->name, "error-rate");
    cr_assert_eq(r->kind, CD_RULE_RELATIVE);
    cr_assert_eq(r->action, CD_ACTION_ROLLBACK);
    cr_assert_not(r->dry_run);
    cr_assert_eq(strncmp(r->description, "Roll back: error rate above 2x baseline", 39), 0);
    cr_assert_eq(r->signal.nnum, 1);
    cr_assert_eq(r->signal.num[0], 1);
    cr_assert_eq(r->signal.nden, 1);
    cr_assert_eq(r->signal.den[0], 0);
    cr_assert_eq(r->op, CD_OP_GT);
    cr_assert_float_eq(r->factor, 2.0, 1e-12);
    cr_assert_float_eq(r->floor, 0.002, 1e-12);
    cr_assert_eq(r->window_ms, 60000);
    cr_assert_eq(r->for_ms, 300000);
    cr_assert_eq(r->resolve_for_ms, 60000);
    cr_assert_float_eq(r->hysteresis, 0.1, 1e-12);
    cr_assert_eq(r->min_samples_canary, 500);
    cr_assert_eq(r->min_samples_stable, 2000);
    cr_assert_not(r->has_baseline);

    r = &c->rules[1];
    cr_assert_str_eq(r->name, "payment-success");
    cr_assert_eq(r->kind, CD_RULE_THRESHOLD);
    cr_assert_eq(r->action, CD_ACTION_ROLLBACK);
    cr_assert_eq(r->signal.nnum, 1);
    cr_assert_eq(r->signal.num[0], 4);
    cr_assert_eq(r->signal.nden, 2);
    cr_assert_eq(r->signal.den[0], 4);
    cr_assert_eq(r->signal.den[1], 5);
    cr_assert_eq(r->scope, CD_SCOPE_CANARY);
    cr_assert_eq(r->op, CD_OP_LT);
    cr_assert_float_eq(r->threshold, 0.95, 1e-12);
    cr_assert_float_eq(r->z, 0.0, 1e-12); /* the sequential test replaced the Wilson bound */
    cr_assert(r->sequential);
    cr_assert_float_eq(r->seq_h0, 0.7, 1e-12);
    cr_assert_float_eq(r->seq_h1, 2.0, 1e-12);
    cr_assert_float_eq(r->seq_llr, 9.0, 1e-12);
    cr_assert_float_eq(r->seq_onset_llr, 0.0, 1e-12);
    cr_assert_eq(r->window_ms, 300000);
    cr_assert_eq(r->for_ms, 60000);
    cr_assert_eq(r->resolve_for_ms, 60000);
    cr_assert_float_eq(r->hysteresis, 0.005, 1e-12);
    cr_assert_eq(r->min_samples_canary, 200);
    cr_assert_eq(r->min_samples_stable, 0);

    r = &c->rules[2];
    cr_assert_str_eq(r->name, "login-failure-spike");
    cr_assert_eq(r->kind, CD_RULE_SPIKE);
    cr_assert_eq(r->action, CD_ACTION_ROLLBACK);
    cr_assert_eq(r->signal.nnum, 1);
    cr_assert_eq(r->signal.num[0], 3);
    cr_assert_eq(r->signal.nden, 2);
    cr_assert_eq(r->signal.den[0], 2);
    cr_assert_eq(r->signal.den[1], 3);
    cr_assert_float_eq(r->factor, 2.0, 1e-12);
    cr_assert_float_eq(r->z, 3.0, 1e-12);
    cr_assert_eq(r->reference_ms, 600000);
    cr_assert_eq(r->window_ms, 300000);
    cr_assert_eq(r->for_ms, 60000);
    cr_assert_eq(r->resolve_for_ms, 120000);
    cr_assert_float_eq(r->hysteresis, 0.0, 1e-12);
    cr_assert_eq(r->min_samples_canary, 100);
    cr_assert_eq(r->min_samples_stable, 500);

    r = &c->rules[3];
    cr_assert_str_eq(r->name, "audit-log-failures");
    cr_assert_eq(r->kind, CD_RULE_THRESHOLD);
    cr_assert_eq(r->action, CD_ACTION_ALERT);
    cr_assert_eq(r->signal.nnum, 1);
    cr_assert_eq(r->signal.num[0], 6);
    cr_assert_eq(r->signal.nden, 0);
    cr_assert_eq(r->scope, CD_SCOPE_ANY);
    cr_assert_eq(r->op, CD_OP_GT);
    cr_assert_float_eq(r->threshold, 0.0, 1e-12);
    cr_assert_float_eq(r->z, 0.0, 1e-12);
    cr_assert_eq(r->window_ms, 60000);
    cr_assert_eq(r->for_ms, 0);
    cr_assert_eq(r->resolve_for_ms, 300000);
    cr_assert_eq(r->min_samples_canary, 0);
    cr_assert_eq(r->min_samples_stable, 0);

    r = &c->rules[4];
    cr_assert_str_eq(r->name, "latency-p99");
    cr_assert_eq(r->kind, CD_RULE_PERCENTILE);
    cr_assert_eq(r->action, CD_ACTION_ALERT);
    cr_assert_eq(r->hist, 0);
    cr_assert_float_eq(r->quantile, 0.99, 1e-12);
    cr_assert_eq(r->op, CD_OP_GT);
    cr_assert_float_eq(r->factor, 1.5, 1e-12);
    cr_assert_float_eq(r->floor, 0.0, 1e-12);
    cr_assert_eq(r->signal.nnum, 0);
    cr_assert_eq(r->signal.nden, 0);
    cr_assert_eq(r->window_ms, 300000);
    cr_assert_eq(r->for_ms, 120000);
    cr_assert_eq(r->resolve_for_ms, 120000);
    cr_assert_float_eq(r->hysteresis, 0.1, 1e-12);
    cr_assert_eq(r->min_samples_canary, 500);
    cr_assert_eq(r->min_samples_stable, 2000);

    r = &c->rules[5];
    cr_assert_str_eq(r->name, "handler-flatline");
    cr_assert_eq(r->kind, CD_RULE_FLATLINE);
    cr_assert_eq(r->action, CD_ACTION_ALERT);
    cr_assert_eq(r->nflat, 2);
    cr_assert_eq(r->flat_types[0], 2);
    cr_assert_eq(r->flat_types[1], 4);
    cr_assert_eq(r->signal.nnum, 0);
    cr_assert_eq(r->signal.nden, 1);
    cr_assert_eq(r->signal.den[0], 0);
    cr_assert_float_eq(r->max_ratio, 0.1, 1e-12);
    cr_assert_float_eq(r->min_expected, 30.0, 1e-12);
    cr_assert_eq(r->window_ms, 300000);
    cr_assert_eq(r->for_ms, 60000);
    cr_assert_eq(r->resolve_for_ms, 60000);
    cr_assert_eq(r->min_samples_canary, 500);
    cr_assert_eq(r->min_samples_stable, 2000);
    cd_config_free(c);
}

/* ---- defaults, catalog, durations -------------------------------------- */

Test(config, defaults_apply_to_absent_keys)
{
    cd_config_t *c = cd_config_load(DATA "minimal.json", &diag);
    cr_assert_not_null(c, "%s", diag.text);
    cr_assert_str_eq(c->decode.type_path, "event_type");
    cr_assert_str_eq(c->decode.cohort_path, "cohort");
    cr_assert_eq(c->decode.nnumeric, 0);
    cr_assert_eq(c->resolution_ms, 1000);
    cr_assert_eq(c->allowed_lateness_ms, 5000);
    cr_assert_eq(c->max_future_skew_ms, 120000);
    cr_assert_eq(c->slack_ms, 30000);
    cr_assert_eq(c->promote_after_ms, 900000);
    cr_assert_eq(c->alert_repeat_ms, 300000);
    cr_assert_eq(c->eval_interval_ms, 1000);
    cr_assert_eq(c->nrules, 1);
    const cd_rule_conf_t *r = &c->rules[0];
    cr_assert_str_eq(r->description, "Any error at all.");
    cr_assert(r->dry_run);
    cr_assert_eq(r->window_ms, 60000);
    cr_assert_eq(r->for_ms, 0);
    cr_assert_eq(r->resolve_for_ms, 0);
    cr_assert_eq(r->scope, CD_SCOPE_CANARY);
    cr_assert_float_eq(r->z, 0.0, 1e-12);
    cr_assert_float_eq(r->hysteresis, 0.0, 1e-12);
    cr_assert_eq(r->min_samples_canary, 0);
    cr_assert_eq(r->min_samples_stable, 0);
    /* The rule's type alone makes the catalog. */
    cr_assert_eq(c->decode.ntypes, 1);
    cr_assert_str_eq(c->decode.types[0], "ERROR_OCCURRED");
    cd_config_free(c);

    c = expect_ok(RULES("{'name': 's', 'kind': 'spike', 'numerator': ['F'], 'denominator': ['A', "
                        "'F'], 'factor': 2, 'window': '1m', 'action': 'alert'}",
                        "{'name': 'f', 'kind': 'flatline', 'events': ['A'], 'traffic': ['R'], "
                        "'window': '1m', 'action': 'alert'}"));
    cr_assert_float_eq(c->rules[0].z, 3.0, 1e-12);
    cr_assert_eq(c->rules[0].reference_ms, 600000);
    cr_assert_float_eq(c->rules[1].max_ratio, 0.1, 1e-12);
    cr_assert_float_eq(c->rules[1].min_expected, 20.0, 1e-12);
    cd_config_free(c);
}

Test(config, catalog_is_types_then_rule_types_in_first_seen_order)
{
    cd_config_t *c = expect_ok(
        "{'events': {'types': ['B', 'A']}, 'rules': ["
        "{'name': 'x', 'kind': 'relative', 'numerator': ['C', 'A'], 'denominator': ['D'], "
        "'op': '>', 'factor': 2, 'window': '1m', 'action': 'alert'},"
        "{'name': 'y', 'kind': 'flatline', 'events': ['E', 'B'], 'traffic': ['D', 'F'], "
        "'window': '1m', 'action': 'alert'}]}");
    const char *want[] = {"B", "A", "C", "D", "E", "F"};
    cr_assert_eq(c->decode.ntypes, 6);
    for (int i = 0; i < 6; i++)
        cr_assert_str_eq(c->type_names[i], want[i]);
    cr_assert_eq(c->rules[0].signal.num[0], 2);
    cr_assert_eq(c->rules[0].signal.num[1], 1);
    cr_assert_eq(c->rules[0].signal.den[0], 3);
    cr_assert_eq(c->rules[1].flat_types[0], 4);
    cr_assert_eq(c->rules[1].flat_types[1], 0);
    cr_assert_eq(c->rules[1].signal.den[1], 5);
    cd_config_free(c);
}

Test(config, durations_as_integers_and_strings)
{
    cd_config_t *c = expect_ok(
        "{'windows': {'resolution': 250, 'allowed_lateness': '1.5s', 'max_future_skew': 0, "
        "'slack': '1h30m'}, 'verdicts': {'promote_after': 600000, 'alert_repeat_interval': "
        "'90s', 'eval_interval': '500ms'}, 'rules': [" THR0(", 'window': 1750, 'for': 90000, "
                                                            "'resolve_for': '2m30s'") "]}");
    cr_assert_eq(c->resolution_ms, 250);
    cr_assert_eq(c->allowed_lateness_ms, 1500);
    cr_assert_eq(c->max_future_skew_ms, 0);
    cr_assert_eq(c->slack_ms, 5400000);
    cr_assert_eq(c->promote_after_ms, 600000);
    cr_assert_eq(c->alert_repeat_ms, 90000);
    cr_assert_eq(c->eval_interval_ms, 500);
    cr_assert_eq(c->rules[0].window_ms, 1750);
    cr_assert_eq(c->rules[0].for_ms, 90000);
    cr_assert_eq(c->rules[0].resolve_for_ms, 150000);
    cd_config_free(c);
}

/* ---- one test per class of mistake ------------------------------------- */

Test(config, syntax_error_reports_line_and_column)
{
    expect("{'rules': [\n  {'name': 'r',,}\n]}",
           "(line 2, column 16): syntax error: string or '}' expected near ','\n");
    expect("", "(line 1, column 0): syntax error: '[' or '{' expected near end of file\n");
}

Test(config, duplicate_json_keys_rejected)
{
    expect("{'rules': [{'name': 'a',\n 'name': 'b'}]}",
           "(line 2, column 7): syntax error: duplicate object key near '\"name\"'\n");
}

Test(config, top_level_must_be_an_object_with_rules)
{
    expect("[1, 2]", "top level: [1,2] is not an object; accepted: a JSON object with the keys "
                     "events, windows, verdicts, baseline_file, rules, kafka, sinks, http, log, coordination\n");
    expect("{}", "top level: missing required key \"rules\"; accepted: an array of 1 to 32 rule "
                 "objects\n");
    expect("{'rules': {}}",
           "rules: {} is not an array; accepted: an array of 1 to 32 rule objects\n");
    expect("{'rules': []}", "rules: [] is empty; accepted: an array of 1 to 32 rule objects\n");
}

Test(config, not_a_duration)
{
    expect(RULES(THR(""), THRN("b", ", 'window': '5x'"), THRN("c", ", 'window': -5")),
           "rules[1].window: \"5x\" is not a duration; " DURATION_ACC "\n"
           "rules[2].window: -5 is not a duration; " DURATION_ACC "\n");
    expect("{'windows': {'slack': 1.5}, 'rules': [" THR("") "]}",
           "windows.slack: 1.5 is not a duration; " DURATION_ACC "\n");
}

Test(config, unknown_rule_kind)
{
    expect(RULES("{'name': 'r', 'kind': 'treshold', 'window': '1m', 'action': 'alert'}"),
           "rules[0].kind: \"treshold\" is not a rule kind; accepted: threshold, relative, spike, "
           "flatline, percentile, silence\n");
}

Test(config, unknown_key_lists_the_keys_of_the_kind)
{
    expect(RULES("{'name': 'r', 'kind': 'relative', 'numerator': ['E'], 'op': '>', 'factor': 2, "
                 "'window': '1m', 'windw': '1m', 'action': 'alert'}"),
           "rules[0]: unknown key \"windw\"; known keys for kind relative: name, kind, "
           "description, window, for, resolve_for, hysteresis, min_samples, action, dry_run, guard, "
           "numerator, denominator, op, factor, floor, sequential\n");
}

Test(config, key_of_another_kind)
{
    expect(RULES(THR(", 'factor': 2")),
           "rules[0].factor: key applies to kinds relative, spike, percentile, not threshold\n");
    expect(RULES(THR(", 'field': 'x'")),
           "rules[0].field: key applies to kind percentile, not threshold\n");
}

Test(config, numeric_field_not_a_string)
{
    expect("{'events': {'numeric_fields': {'latency_ms': 42}}, 'rules': [" THR("") "]}",
           "events.numeric_fields.latency_ms: 42 is not a string; accepted: a dot path such as "
           "\"data.latency_ms\"\n");
    expect("{'events': {'numeric_fields': {'a': 'x..y'}}, 'rules': [" THR("") "]}",
           "events.numeric_fields.a: \"x..y\" is not a dot path; accepted: a dot path such as "
           "\"data.latency_ms\"\n");
}

Test(config, unknown_keys_at_every_level)
{
    expect("{'kafak': {}, 'events': {'colour': 1}, 'windows': {'resolutoin': '1s'}, "
           "'verdicts': {'promote': '1m'}, 'rules': [" THR(", 'min_samples': {'canry': 1}") "]}",
           "top level: unknown key \"kafak\"; known keys: events, windows, verdicts, "
           "baseline_file, rules, kafka, sinks, http, log, coordination\n"
           "events: unknown key \"colour\"; known keys: type_field, time_field, cohort_field, "
           "canary_value, stable_value, version_field, service_field, canary_version, service, "
           "types, numeric_fields\n"
           "windows: unknown key \"resolutoin\"; known keys: resolution, allowed_lateness, "
           "max_future_skew, slack\n"
           "verdicts: unknown key \"promote\"; known keys: promote_after, "
           "alert_repeat_interval, eval_interval, min_canary_events\n"
           "rules[0].min_samples: unknown key \"canry\"; known keys: canary, stable\n");
    /* A key that is not a plain word is shown escaped, never raw. */
    expect("{'\\u001b[31m': 1, 'rules': [" THR("") "]}",
           "top level: unknown key \"\\u001B[31m\"; known keys: events, windows, verdicts, "
           "baseline_file, rules, kafka, sinks, http, log, coordination\n");
}

/* Sections of later modules are kept as JSON for them, and must be objects. */
Test(config, module_sections_are_kept_for_their_owners)
{
    cd_diag_t d;
    const char *src = "{\"kafka\": {\"brokers\": \"b:9092\"}, \"sinks\": {}, \"rules\": [" THR("") "]}";
    char text[2048];
    snprintf(text, sizeof text, "%s", src);
    for (char *q = text; *q; q++)
        if (*q == '\'') *q = '"';
    cd_config_t *c = cd_config_parse(text, strlen(text), NULL, &d);
    cr_assert_not_null(c, "%s", d.text);
    cr_assert_not_null(c->kafka_json);
    cr_assert_not_null(c->sinks_json);
    cr_assert_null(c->http_json);
    cr_assert_null(c->log_json);
    cr_assert_str_eq(json_string_value(json_object_get(c->kafka_json, "brokers")), "b:9092");
    cd_config_free(c);
    expect("{'http': [], 'rules': [" THR("") "]}",
           "http: [] is not an object; accepted: a JSON object\n");
    expect("{'http': {'port': 8686}, 'log': {}, 'rules': [" THR("") "]}",
           "log: not supported by this version yet; accepted: leave the key out\n");
}

Test(config, duplicate_rule_names)
{
    expect(RULES(THR(""), THR(""), THRN("q", ", 'window': '2m'"), THR("")),
           "rules[1].name: \"r\" is already the name of rules[0]; accepted: a name unique among "
           "the rules\n"
           "rules[3].name: \"r\" is already the name of rules[0]; accepted: a name unique among "
           "the rules\n");
}

Test(config, rule_names_are_plain)
{
    expect(RULES(THRN("Error Rate", ", 'window': '1m'")),
           "rules[0].name: \"Error Rate\" is not a rule name; accepted: 1 to 63 characters from "
           "a-z, 0-9, \"_\" and \"-\"\n");
}

Test(config, missing_required_keys)
{
    expect(RULES("{'kind': 'threshold'}"),
           "rules[0]: missing required key \"name\"; accepted: 1 to 63 characters from a-z, 0-9, "
           "\"_\" and \"-\"\n"
           "rules[0]: missing required key \"window\"; accepted: a duration such as \"5m\"\n"
           "rules[0]: missing required key \"action\"; accepted: rollback, alert\n"
           "rules[0]: missing required key \"numerator\" (kind threshold); accepted: an array of "
           "1 to 8 event type names such as [\"ERROR_OCCURRED\"]\n"
           "rules[0]: missing required key \"op\" (kind threshold); accepted: >, >=, <, <=\n"
           "rules[0]: missing required key \"threshold\" (kind threshold); accepted: a number "
           ">= 0\n");
    expect(RULES("{'name': 'r', 'window': '1m', 'action': 'alert'}"),
           "rules[0]: missing required key \"kind\"; accepted: threshold, relative, spike, "
           "flatline, percentile, silence\n");
}

Test(config, enums)
{
    expect(RULES("{'name': 'r', 'kind': 'threshold', 'numerator': ['E'], 'op': '!=', "
                 "'threshold': 0, 'scope': 'both', 'window': '1m', 'action': 'rolback'}"),
           "rules[0].action: \"rolback\" is not an action; accepted: rollback, alert\n"
           "rules[0].op: \"!=\" is not an operator; accepted: >, >=, <, <=\n"
           "rules[0].scope: \"both\" is not a scope; accepted: canary, stable, any\n");
}

Test(config, numbers_out_of_range)
{
    expect(RULES(THR(", 'hysteresis': 1"),
                 "{'name': 'p', 'kind': 'percentile', 'field': 'x', 'quantile': 1, 'op': '>', "
                 "'factor': 0, 'floor': -1, 'window': '1m', 'action': 'alert'}",
                 "{'name': 's', 'kind': 'spike', 'numerator': ['F'], 'denominator': ['F', 'A'], "
                 "'factor': '2', 'z': 0, 'window': '1m', 'action': 'alert'}",
                 "{'name': 'f', 'kind': 'flatline', 'events': ['A'], 'traffic': ['R'], "
                 "'max_ratio': 1, 'min_expected': 0, 'window': '1m', 'action': 'alert'}"),
           "rules[0].hysteresis: 1 is out of range; accepted: a number in [0, 1)\n"
           "rules[1].field: \"x\" is not a numeric field; accepted: a name from "
           "events.numeric_fields (none defined)\n"
           "rules[1].quantile: 1 is out of range; accepted: a number in (0, 1)\n"
           "rules[1].factor: 0 is out of range; accepted: a number > 0\n"
           "rules[1].floor: -1 is out of range; accepted: a number >= 0\n"
           "rules[2].factor: \"2\" is not a number; accepted: a number > 0\n"
           "rules[2].z: 0 is out of range; accepted: a number > 0\n"
           "rules[3].max_ratio: 1 is out of range; accepted: a number in [0, 1)\n"
           "rules[3].min_expected: 0 is out of range; accepted: a number > 0\n");
}

Test(config, min_samples_are_non_negative_integers)
{
    expect(RULES(THR(", 'min_samples': {'canary': -1, 'stable': 1.5}")),
           "rules[0].min_samples.canary: -1 is negative; accepted: an integer >= 0\n"
           "rules[0].min_samples.stable: 1.5 is not an integer; accepted: an integer >= 0\n");
    expect(RULES(THR(", 'min_samples': 5")),
           "rules[0].min_samples: 5 is not an object; accepted: an object such as {\"canary\": "
           "500, \"stable\": 2000}\n");
}

#define ACC1H "accepted: a duration > 0 and up to 1h, a multiple of windows.resolution\n"

Test(config, window_limits)
{
    expect(RULES(THR0(", 'window': '2h'"), THRN("b", ", 'window': 0"),
                 THRN("c", ", 'window': '1500ms'"),
                 "{'name': 's', 'kind': 'spike', 'numerator': ['F'], 'denominator': ['F', 'A'], "
                 "'factor': 2, 'reference_window': '7h', 'window': '1m', 'action': 'alert'}"),
           "rules[0].window: \"2h\" is longer than 1h; " ACC1H "rules[1].window: 0 is zero; " ACC1H
           "rules[2].window: \"1500ms\" is not a multiple of windows.resolution (1000ms); " ACC1H
           "rules[3].reference_window: \"7h\" is longer than 6h; accepted: a duration > 0 and "
           "up to 6h, a multiple of windows.resolution\n");
    /* 1h is the limit itself, and a week is the limit of any duration. */
    cd_config_free(expect_ok(RULES(THR0(", 'window': '1h', 'for': '168h'"))));
    expect(RULES(THR(", 'for': '169h'")),
           "rules[0].for: \"169h\" is longer than a week; accepted: a duration up to \"168h\"\n");
}

Test(config, resolution_and_eval_interval)
{
    const char *acc = "accepted: 100ms, 125ms, 200ms, 250ms, 500ms or a whole number of seconds\n";
    char want[512];
    snprintf(want, sizeof(want), "windows.resolution: \"300ms\" is not a valid resolution; %s",
             acc);
    expect("{'windows': {'resolution': '300ms'}, 'rules': [" THR("") "]}", want);
    snprintf(want, sizeof(want), "windows.resolution: 50 is not a valid resolution; %s", acc);
    expect("{'windows': {'resolution': 50}, 'rules': [" THR("") "]}", want);
    snprintf(want, sizeof(want), "windows.resolution: \"1500ms\" is not a valid resolution; %s",
             acc);
    expect("{'windows': {'resolution': '1500ms'}, 'rules': [" THR("") "]}", want);
    expect("{'windows': {'resolution': '500ms'}, 'verdicts': {'eval_interval': '750ms'}, "
           "'rules': [" THR("") "]}",
           "verdicts.eval_interval: \"750ms\" is not a multiple of the resolution; accepted: a "
           "positive multiple of windows.resolution (500ms)\n");
    cd_config_t *c = expect_ok("{'windows': {'resolution': '2s'}, 'verdicts': {'eval_interval': "
                               "'4s'}, 'rules': [" THR0(", 'window': '2m'") "]}");
    cr_assert_eq(c->resolution_ms, 2000);
    cr_assert_eq(c->eval_interval_ms, 4000);
    cd_config_free(c);
}

Test(config, proportion_threshold_must_be_at_most_one)
{
    expect(RULES("{'name': 'p', 'kind': 'threshold', 'numerator': ['OK'], 'denominator': ['OK', "
                 "'FAIL'], 'op': '<', 'threshold': 95, 'window': '1m', 'action': 'alert'}"),
           "rules[0].threshold: 95 is above 1; accepted: a number in [0, 1]: every numerator "
           "type is also in the denominator, so the signal is a proportion\n");
    expect(RULES("{'name': 'n', 'kind': 'threshold', 'numerator': ['E'], 'op': '<', "
                 "'threshold': -1, 'window': '1m', 'action': 'alert'}"),
           "rules[0].threshold: -1 is out of range; accepted: a number >= 0\n");
    /* Not a proportion: errors per request may exceed 1; counts too. */
    cd_config_t *c = expect_ok(RULES(
        "{'name': 'e', 'kind': 'threshold', 'numerator': ['ERR'], 'denominator': ['REQ'], "
        "'op': '>', 'threshold': 1.5, 'window': '1m', 'action': 'alert'}",
        "{'name': 'n', 'kind': 'threshold', 'numerator': ['ERR'], 'op': '>', 'threshold': 10, "
        "'window': '1m', 'action': 'alert'}"));
    cr_assert_float_eq(c->rules[0].threshold, 1.5, 1e-12);
    cr_assert_float_eq(c->rules[1].threshold, 10.0, 1e-12);
    cd_config_free(c);
}

Test(config, z_needs_a_denominator)
{
    expect(RULES(THR(", 'z': 1.645")),
           "rules[0].z: 1.645 needs a denominator; accepted: z only on a ratio signal (with "
           "\"denominator\"); leave it out on counts\n");
    expect(RULES("{'name': 'p', 'kind': 'threshold', 'numerator': ['OK'], 'denominator': ['OK', "
                 "'F'], 'op': '<', 'threshold': 0.9, 'z': -1, 'window': '1m', 'action': 'alert'}"),
           "rules[0].z: -1 is out of range; accepted: a number >= 0\n");
}

Test(config, percentile_field_names_a_numeric_field)
{
    const char *ev = "{'events': {'numeric_fields': {'latency_ms': 'data.latency_ms', 'bytes': "
                     "'data.size'}}, 'rules': [";
    char text[1024];
    snprintf(text, sizeof(text), "%s%s]}", ev,
             "{'name': 'p', 'kind': 'percentile', 'field': 'bytes', 'quantile': 0.5, 'op': "
             "'>=', 'factor': 1.2, 'floor': 100, 'window': '1m', 'action': 'alert'}");
    cd_config_t *c = expect_ok(text);
    cr_assert_eq(c->decode.nnumeric, 2);
    cr_assert_str_eq(c->numeric_names[1], "bytes");
    cr_assert_str_eq(c->decode.numeric_paths[1], "data.size");
    cr_assert_eq(c->rules[0].hist, 1);
    cr_assert_eq(c->rules[0].op, CD_OP_GE);
    cr_assert_float_eq(c->rules[0].quantile, 0.5, 1e-12);
    cr_assert_float_eq(c->rules[0].factor, 1.2, 1e-12);
    cr_assert_float_eq(c->rules[0].floor, 100.0, 1e-12);
    cd_config_free(c);
    snprintf(text, sizeof(text), "%s%s]}", ev,
             "{'name': 'p', 'kind': 'percentile', 'field': 'latency', 'quantile': 0.5, 'op': "
             "'>=', 'factor': 1.2, 'window': '1m', 'action': 'alert'}");
    expect(text, "rules[0].field: \"latency\" is not a numeric field; accepted: a name from "
                 "events.numeric_fields (latency_ms, bytes)\n");
    expect("{'events': {'numeric_fields': {'a': 'a', 'b': 'b', 'c': 'c', 'd': 'd', 'e': 'e'}}, "
           "'rules': [" THR("") "]}",
           "events.numeric_fields: {\"a\":\"a\",\"b\":\"b\",\"c\":\"c\",\"d\":\"d\",\"e\":\"e\"} "
           "has 5 fields; accepted: at most 4 numeric fields\n");
}

Test(config, events_service)
{
    cd_config_t *c = expect_ok("{'rules': [" THR("") "]}");
    cr_assert_str_eq(c->service, "");
    cr_assert_null(c->decode.service, "no events.service: every event is judged");
    cd_config_free(c);
    c = expect_ok("{'events': {'service': 'checkout'}, 'rules': [" THR("") "]}");
    cr_assert_str_eq(c->service, "checkout");
    cr_assert_str_eq(c->decode.service, "checkout");
    cd_config_free(c);

#define SVC_ACC                                                                                    \
    "accepted: the name of the one service to judge, as its events write it (1 to 63 bytes, no "   \
    "quote, backslash or control character), such as \"checkout\"; leave the key out to judge "    \
    "every event\n"
    expect("{'events': {'service': ''}, 'rules': [" THR("") "]}",
           "events.service: \"\" is empty; " SVC_ACC);
    expect("{'events': {'service': 7}, 'rules': [" THR("") "]}",
           "events.service: 7 is not a string; " SVC_ACC);
    expect("{'events': {'service': 'a\\\\b'}, 'rules': [" THR("") "]}",
           "events.service: \"a\\\\b\" holds a character JSON must escape; " SVC_ACC);
    expect("{'events': {'service': 'a\\u0001'}, 'rules': [" THR("") "]}",
           "events.service: \"a\\u0001\" holds a character JSON must escape; " SVC_ACC);
    expect("{'events': {'service': "
           "'a-service-name-of-sixty-four-bytes-is-one-byte-too-long-for-it-x'}, 'rules': [" THR(
               "") "]}",
           "events.service: \"a-service-name-of-sixty-four-bytes-is-one-byte-too-long-... is "
           "longer than 63 bytes; " SVC_ACC);
#undef SVC_ACC
}

Test(config, event_fields)
{
    cd_config_t *c = expect_ok("{'events': {'type_field': 'meta.kind', 'time_field': 'ts', "
                               "'cohort_field': '', 'canary_version': 'v2.1.0', 'version_field': "
                               "'meta.version', 'service_field': 'svc', 'canary_value': 'c', "
                               "'stable_value': 's'}, 'rules': [" THR("") "]}");
    cr_assert_str_eq(c->decode.type_path, "meta.kind");
    cr_assert_str_eq(c->decode.time_path, "ts");
    cr_assert_str_eq(c->decode.cohort_path, "");
    cr_assert_str_eq(c->decode.canary_version, "v2.1.0");
    cr_assert_str_eq(c->decode.version_path, "meta.version");
    cr_assert_str_eq(c->decode.service_path, "svc");
    cr_assert_str_eq(c->decode.canary_value, "c");
    cr_assert_str_eq(c->decode.stable_value, "s");
    cd_config_free(c);

    expect("{'events': {'cohort_field': '', 'type_field': '.x', 'time_field': 7, "
           "'canary_value': 'stable', 'types': ['A', 'A', '']}, 'rules': [" THR("") "]}",
           "events.type_field: \".x\" is not a dot path; accepted: a dot path such as "
           "\"data.latency_ms\"\n"
           "events.time_field: 7 is not a string; accepted: a dot path such as "
           "\"data.latency_ms\"\n"
           "events.stable_value: \"stable\" equals events.canary_value; accepted: a value that "
           "tells stable events from canary ones\n"
           "events.cohort_field: \"\" derives the cohort from the version, but "
           "events.canary_version is not set; accepted: a cohort field, or "
           "events.canary_version too\n"
           "events.types[1]: \"A\" is listed twice (also events.types[0]); accepted: each type "
           "name once\n"
           "events.types[2]: \"\" is empty; accepted: an event type name such as "
           "\"ERROR_OCCURRED\"\n");
}

Test(config, catalog_limit)
{
    char text[4096];
    size_t n = (size_t)snprintf(text, sizeof(text), "{'events': {'types': [");
    for (int i = 0; i < CD_MAX_TYPES; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s'T%d'", i ? ", " : "", i);
    snprintf(text + n, sizeof(text) - n, "]}, 'rules': [%s]}",
             "{'name': 'r', 'kind': 'relative', 'numerator': ['T5'], 'denominator': ['T31'], "
             "'op': '>', 'factor': 2, 'window': '1m', 'action': 'alert'}");
    cd_config_t *c = expect_ok(text); /* exactly 32: fine */
    cr_assert_eq(c->decode.ntypes, 32);
    cr_assert_eq(c->rules[0].signal.den[0], 31);
    cd_config_free(c);

    snprintf(text + n, sizeof(text) - n, "]}, 'rules': [%s]}",
             "{'name': 'r', 'kind': 'relative', 'numerator': ['NEW'], 'denominator': ['T0', "
             "'NEW2'], 'op': '>', 'factor': 2, 'window': '1m', 'action': 'alert'}");
    expect(text, "rules[0].numerator[0]: \"NEW\" would be event type 33; accepted: at most 32 "
                 "distinct event types, counting events.types and every type a rule names\n");
}

Test(config, rule_count_and_type_lists)
{
    char text[8192];
    size_t n = (size_t)snprintf(text, sizeof(text), "{'rules': [");
    for (int i = 0; i <= CD_MAX_RULES; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n,
                              "%s{'name': 'r%d', 'kind': 'threshold', 'numerator': ['E'], 'op': "
                              "'>', 'threshold': 0, 'window': '1m', 'action': 'alert'}",
                              i ? ", " : "", i);
    snprintf(text + n, sizeof(text) - n, "]}");
    cd_config_t *c = parse(text);
    cr_assert_null(c);
    cr_assert_eq(diag.count, 1);
    /* The value is shortened to 60 characters: 57 of JSON and "...". */
    const char *want =
        "rules: [{\"name\":\"r0\",\"kind\":\"threshold\",\"numerator\":[\"E\"],\"op\":\""
        "... has 33 rules; accepted: an array of 1 to 32 rule objects\n";
    cr_assert_str_eq(diag.text, want);

    expect(RULES("{'name': 'r', 'kind': 'relative', 'numerator': ['A', 'B', 'A'], "
                 "'denominator': ['1', '2', '3', '4', '5', '6', '7', '8', '9'], 'op': '>', "
                 "'factor': 2, 'window': '1m', 'action': 'alert'}"),
           "rules[0].numerator[2]: \"A\" is listed twice; accepted: each type once per list\n"
           "rules[0].denominator: [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"] has more "
           "than 8 types; accepted: an array of 1 to 8 event type names such as "
           "[\"ERROR_OCCURRED\"]\n");
}

/* ---- many problems at once --------------------------------------------- */

Test(config, every_problem_is_reported)
{
    expect("{'windows': {'slack': '30'}, 'rules': ["
           "{'name': 'a', 'kind': 'treshold', 'window': '5x', 'action': 'alert'},"
           "{'name': 'b', 'kind': 'relative', 'numerator': ['E'], 'op': '>', 'factor': 2, "
           "'windw': '1m', 'action': 'alert'},"
           "{'name': 'a', 'kind': 'threshold', 'numerator': ['E'], 'op': '>', 'threshold': 0, "
           "'factor': 2, 'window': '1m', 'action': 'alert', 'dry_run': 'no'}]}",
           "windows.slack: \"30\" is not a duration; " DURATION_ACC "\n"
           "rules[0].kind: \"treshold\" is not a rule kind; accepted: threshold, relative, spike, "
           "flatline, percentile, silence\n"
           "rules[0].window: \"5x\" is not a duration; " DURATION_ACC "\n"
           "rules[1]: unknown key \"windw\"; known keys for kind relative: name, kind, "
           "description, window, for, resolve_for, hysteresis, min_samples, action, dry_run, guard, "
           "numerator, denominator, op, factor, floor, sequential\n"
           "rules[1]: missing required key \"window\"; accepted: a duration such as \"5m\"\n"
           "rules[2].factor: key applies to kinds relative, spike, percentile, not threshold\n"
           "rules[2].name: \"a\" is already the name of rules[0]; accepted: a name unique among "
           "the rules\n"
           "rules[2].dry_run: \"no\" is not a boolean; accepted: true, false\n");
}

/* ---- baseline file and files ------------------------------------------ */

Test(config, baseline_file_is_loaded)
{
    cd_config_t *c = cd_config_load(DATA "with_baseline.json", &diag);
    cr_assert_not_null(c, "%s", diag.text);
    cr_assert_str_eq(c->baseline_file, DATA "baseline.json");
    cr_assert(c->rules[0].has_baseline);
    cr_assert_float_eq(c->rules[0].baseline, 0.0031, 1e-12);
    cd_config_free(c);
}

Test(config, baseline_with_unknown_rule_is_rejected)
{
    cd_config_t *c = cd_config_load(DATA "baseline_unknown_rule.json", &diag);
    cr_assert_null(c);
    cr_assert_str_eq(diag.text,
                     DATA "baseline_unknown.json: values.eror-rate: no rule of this config has "
                          "that name; accepted: names of relative rules: error-rate\n" DATA
                          "baseline_unknown.json: values.audit: rule is of kind threshold, and "
                          "only relative rules take a baseline; accepted: names of relative "
                          "rules: error-rate\n");
    cr_assert_eq(diag.count, 2);
}

Test(config, baseline_problems)
{
    /* Relative to origin_dir; unreadable; not JSON; wrong shapes. */
    const char *rel = "{'baseline_file': 'missing.json', 'rules': [" THR("") "]}";
    const char *t = q(rel);
    cr_assert_null(cd_config_parse(t, strlen(t), "/nonexistent", &diag));
    cr_assert_str_eq(diag.text, "baseline_file: /nonexistent/missing.json: cannot open: No such "
                                "file or directory\n");

    t = q("{'baseline_file': '/', 'rules': [" THR("") "]}");
    cr_assert_null(cd_config_parse(t, strlen(t), NULL, &diag));
    cr_assert_str_eq(diag.text, "baseline_file: /: not a regular file\n");

    t = q("{'baseline_file': 'minimal.json', 'rules': [" THR("") "]}");
    cr_assert_null(cd_config_parse(t, strlen(t), DATA, &diag));
    cr_assert_str_eq(diag.text, DATA "minimal.json: unknown key \"rules\"; known keys: "
                                     "captured_at, values, samples, window\n" DATA
                                     "minimal.json: missing required key \"values\"; accepted: "
                                     "an object such as {\"captured_at\": "
                                     "\"2026-11-20T10:00:00Z\", \"values\": {\"error-rate\": "
                                     "0.003}}\n");
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

Test(config, baseline_values_and_captured_at)
{
    char dir[] = "/tmp/canaryd-test-config-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    write_file(dir, "bad.json",
               "{\"captured_at\": \"yesterday\", \"values\": "
               "{\"r\": \"0.1\", \"x\": -1}}");
    write_file(dir, "broken.json", "{\"values\": {\"r\": 0.1,}}");
    write_file(dir, "ok.json", "{\"values\": {\"r\": 0}}");
    const char *rule = "{'name': 'r', 'kind': 'relative', 'numerator': ['E'], 'op': '>', "
                       "'factor': 2, 'window': '1m', 'action': 'alert'}";
    char text[1024], want[2048];

    snprintf(text, sizeof(text), "{'baseline_file': 'bad.json', 'rules': [%s]}", rule);
    const char *t = q(text);
    cr_assert_null(cd_config_parse(t, strlen(t), dir, &diag));
    snprintf(want, sizeof(want),
             "%s/bad.json: captured_at: \"yesterday\" is not an RFC 3339 time; accepted: a time "
             "such as \"2026-11-20T10:00:00Z\"\n"
             "%s/bad.json: values.r: \"0.1\" is not a number; accepted: a number >= 0\n"
             "%s/bad.json: values.x: no rule of this config has that name; accepted: names of "
             "relative rules: r\n",
             dir, dir, dir);
    cr_assert_str_eq(diag.text, want);

    snprintf(text, sizeof(text), "{'baseline_file': 'broken.json', 'rules': [%s]}", rule);
    t = q(text);
    cr_assert_null(cd_config_parse(t, strlen(t), dir, &diag));
    snprintf(want, sizeof(want),
             "%s/broken.json (line 1, column 22): syntax error: string or '}' expected near "
             "'}'\n",
             dir);
    cr_assert_str_eq(diag.text, want);

    snprintf(text, sizeof(text), "{'baseline_file': 'ok.json', 'rules': [%s]}", rule);
    t = q(text);
    cd_config_t *c = cd_config_parse(t, strlen(t), dir, &diag);
    cr_assert_not_null(c, "%s", diag.text);
    cr_assert(c->rules[0].has_baseline);
    cr_assert_float_eq(c->rules[0].baseline, 0.0, 1e-12);
    cd_config_free(c);

    const char *names[] = {"bad.json", "broken.json", "ok.json"};
    for (int i = 0; i < 3; i++) {
        snprintf(want, sizeof(want), "%s/%s", dir, names[i]);
        unlink(want);
    }
    rmdir(dir);
}

Test(config, load_reports_unreadable_files)
{
    cr_assert_null(cd_config_load("/nonexistent/canaryd.json", &diag));
    cr_assert_str_eq(diag.text, "/nonexistent/canaryd.json: cannot open: No such file or "
                                "directory\n");
    cr_assert_eq(diag.count, 1);
    cr_assert_null(cd_config_load(DATA, &diag));
    cr_assert_str_eq(diag.text, DATA ": not a regular file\n");
}

/* ---- diag --------------------------------------------------------------- */

Test(diag, truncates_whole_lines_and_keeps_counting)
{
    cd_diag_t d;
    char line[1000];
    cd_diag_init(&d);
    cr_assert_eq(d.count, 0);
    cr_assert_str_eq(d.text, "");
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    for (int i = 0; i < 20; i++)
        cd_diag_add(&d, "%02d %s", i, line);
    cr_assert_eq(d.count, 20);
    /* 16 lines of 1003 bytes fit in 16384 with the NUL; the 17th does not. */
    cr_assert_eq(d.len, 16 * 1003);
    cr_assert_eq(strlen(d.text), d.len);
    cr_assert_eq(d.text[d.len - 1], '\n');
    cr_assert_eq(strncmp(d.text + 15 * 1003, "15 xxx", 6), 0);

    /* A single absurd line is cut at 1023 bytes with "...". */
    char big[3000];
    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cd_diag_init(&d);
    cd_diag_add(&d, "%s", big);
    cr_assert_eq(d.count, 1);
    cr_assert_eq(d.len, 1024);
    cr_assert_eq(strncmp(d.text + 1020, "...\n", 4), 0);
}

/* ---- canaryd check-config ---------------------------------------------- */

static void redirect(void)
{
    cr_redirect_stdout();
    cr_redirect_stderr();
}

static int run_cli(const char *a1, const char *a2, const char *a3)
{
    char *argv[] = {"check-config", (char *)a1, (char *)a2, (char *)a3, NULL};
    int argc = 1 + (a1 != NULL) + (a2 != NULL) + (a3 != NULL);
    return cd_cli_check_config(argc, argv);
}

Test(cli, summary_on_success, .init = redirect)
{
    cr_assert_eq(run_cli(DATA "minimal.json", NULL, NULL), 0);
    /* its only rule is a dry run: nothing but the canary-evidence check
     * stands between a silent canary and PROMOTE */
    cr_assert_stderr_eq_str(
        DATA "minimal.json: warning: the rules can pass with no canary data (each is a count "
             "with min_samples.canary 0, a threshold scoped to stable / any, a guard or a dry "
             "run); only verdicts.min_canary_events (100 in 15m) keeps a canary that sends "
             "nothing from HEALTHY and PROMOTE. Add a rule that needs canary samples (a ratio, "
             "or min_samples.canary)\n");
    cr_assert_stdout_eq_str(
        DATA "minimal.json: OK, 1 rule\n"
             "catalog (1 type): ERROR_OCCURRED\n"
             "numeric fields: none\n"
             "windows: resolution 1s, allowed lateness 5s, max future skew 2m, slack 30s\n"
             "verdicts: promote after 15m, alert repeat 5m, eval every 1s\n"
             "canary evidence: HEALTHY and PROMOTE need 100 canary events in 15m\n"
             "baseline: none\n"
             "rules:\n"
             "  errors: threshold, alert (dry run), window 1m, for 0s, resolve for 0s, min "
             "samples canary 0 stable 0\n"
             "    fires when canary ERROR_OCCURRED count > 0\n");
}

Test(cli, sop_summary_states_each_rule, .init = redirect)
{
    cr_assert_eq(run_cli("--", CANARYD_SOURCE_DIR "/config/sop.json", NULL), 0);
    cr_assert_stdout_eq_str(
        CANARYD_SOURCE_DIR
        "/config/sop.json: OK, 10 rules\n"
        "catalog (7 types): REQUEST_COMPLETED, ERROR_OCCURRED, USER_LOGIN, USER_LOGIN_FAILED, "
        "PAYMENT_COMPLETED, PAYMENT_FAILED, AUDIT_LOG_FAILED\n"
        "numeric fields: latency_ms = data.latency_ms\n"
        "windows: resolution 1s, allowed lateness 5s, max future skew 2m, slack 30s\n"
        "verdicts: promote after 15m, alert repeat 5m, eval every 1s\n"
        "canary evidence: HEALTHY and PROMOTE need 100 canary events in 15m\n"
        "baseline: none\n"
        "rules:\n"
        "  error-rate: relative, rollback, window 1m, for 5m, resolve for 1m, min samples "
        "canary 500 stable 2000, hysteresis 0.1\n"
        "    fires when canary ERROR_OCCURRED / REQUEST_COMPLETED > max(2 x stable's, 0.002)\n"
        "    sequential: CUSUM of the canary's bad share, in control 0.7 x and tested 1.5 x the "
        "threshold's, llr 9 (on average at least 8103 buckets between false crossings at the "
        "in-control share); for counted from the estimated onset (margin 5, in control 0.5 x "
        "there)\n"
        "  payment-success: threshold, rollback, window 5m, for 1m, resolve for 1m, min samples "
        "canary 200 stable 0, hysteresis 0.005\n"
        "    fires when canary PAYMENT_COMPLETED / (PAYMENT_COMPLETED + PAYMENT_FAILED) < 0.95\n"
        "    sequential: CUSUM of the canary's bad share, in control 0.7 x and tested 2 x the "
        "threshold's, llr 9 (on average at least 8103 buckets between false crossings at the "
        "in-control share); for counted from the estimated onset (margin 0, in control 0.7 x "
        "there)\n"
        "  login-failure-spike: spike, rollback, window 5m, for 1m, resolve for 2m, min samples "
        "canary 100 stable 500\n"
        "    fires when canary USER_LOGIN_FAILED / (USER_LOGIN + USER_LOGIN_FAILED) >= 2 x "
        "stable's with Fisher's exact one-sided p <= 0.0013 (z 3); alert instead when stable "
        "spikes too against its previous 10m\n"
        "  audit-log-failures: threshold, alert, window 1m, for 0s, resolve for 5m, min samples "
        "canary 0 stable 0\n"
        "    fires when canary or stable AUDIT_LOG_FAILED count > 0\n"
        "  latency-p99: percentile, alert, window 5m, for 2m, resolve for 2m, min samples canary "
        "500 stable 2000, hysteresis 0.1\n"
        "    fires when canary p99 of latency_ms > 1.5 x stable's p99\n"
        "  handler-flatline: flatline, alert, window 5m, for 1m, resolve for 1m, min samples "
        "canary 500 stable 2000\n"
        "    fires when canary USER_LOGIN or PAYMENT_COMPLETED drops to <= 0.1 x the count "
        "stable's rate per REQUEST_COMPLETED predicts, once at least 30 are expected\n"
        "  canary-silence: silence, rollback (guard), window 1m, for 30s, resolve for 1m, min "
        "samples canary 100 stable 1000\n"
        "    fires when canary REQUEST_COMPLETED falls to <= 0.1 x what its share of the "
        "previous 5m predicts from stable's traffic, once at least 30 are expected\n"
        "  outage-errors: relative, rollback (guard), window 30s, for 0s, resolve for 1m, min "
        "samples canary 50 stable 200\n"
        "    fires when canary ERROR_OCCURRED / REQUEST_COMPLETED > max(2 x stable's, 0.9)\n"
        "  outage-payments: relative, rollback (guard), window 45s, for 0s, resolve for 1m, min "
        "samples canary 20 stable 100\n"
        "    fires when canary PAYMENT_FAILED / (PAYMENT_COMPLETED + PAYMENT_FAILED) > max(2 x "
        "stable's, 0.9)\n"
        "  outage-logins: relative, rollback (guard), window 45s, for 0s, resolve for 1m, min "
        "samples canary 20 stable 100\n"
        "    fires when canary USER_LOGIN_FAILED / (USER_LOGIN + USER_LOGIN_FAILED) > max(2 x "
        "stable's, 0.9)\n");
}

Test(cli, service_in_summary, .init = redirect)
{
    setenv("CANARYD_SERVICE", "checkout", 1);
    int rc = run_cli(DATA "minimal.json", NULL, NULL);
    unsetenv("CANARYD_SERVICE");
    cr_assert_eq(rc, 0);
    cr_assert_stdout_eq_str(
        DATA "minimal.json: OK, 1 rule\n"
             "catalog (1 type): ERROR_OCCURRED\n"
             "numeric fields: none\n"
             "service: checkout (events.service: events of other services, or naming none in "
             "service, are counted and not judged)\n"
             "windows: resolution 1s, allowed lateness 5s, max future skew 2m, slack 30s\n"
             "verdicts: promote after 15m, alert repeat 5m, eval every 1s\n"
             "canary evidence: HEALTHY and PROMOTE need 100 canary events in 15m\n"
             "baseline: none\n"
             "rules:\n"
             "  errors: threshold, alert (dry run), window 1m, for 0s, resolve for 0s, min "
             "samples canary 0 stable 0\n"
             "    fires when canary ERROR_OCCURRED count > 0\n");
}

Test(cli, baseline_in_summary, .init = redirect)
{
    cr_assert_eq(run_cli("-q", DATA "with_baseline.json", NULL), 0);
    cr_assert_eq(run_cli(DATA "with_baseline.json", NULL, NULL), 0);
    cr_assert_stdout_eq_str(
        DATA "with_baseline.json: OK, 1 rule\n"
             "catalog (2 types): REQUEST_COMPLETED, ERROR_OCCURRED\n"
             "numeric fields: none\n"
             "windows: resolution 1s, allowed lateness 5s, max future skew 2m, slack 30s\n"
             "verdicts: promote after 15m, alert repeat 5m, eval every 1s\n"
             "canary evidence: HEALTHY and PROMOTE need 100 canary events in 15m\n"
             "baseline: " DATA "baseline.json\n"
             "rules:\n"
             "  error-rate: relative, rollback, window 1m, for 0s, resolve for 0s, min samples "
             "canary 500 stable 2000\n"
             "    fires when canary ERROR_OCCURRED / REQUEST_COMPLETED > max(2 x stable's, "
             "0.002); stable = baseline 0.0031 while stable has fewer than 2000 samples\n");
}

Test(cli, quiet_prints_nothing, .init = redirect)
{
    cr_assert_eq(run_cli("--quiet", DATA "minimal.json", NULL), 0);
    cr_assert_stdout_eq_str("");
}

Test(cli, problems_go_to_stderr_with_exit_2, .init = redirect)
{
    cr_assert_eq(run_cli(DATA "two_problems.json", "--quiet", NULL), 2);
    cr_assert_stdout_eq_str("");
    cr_assert_stderr_eq_str(
        DATA "two_problems.json: 2 problems:\n"
             "  rules[0].kind: \"treshold\" is not a rule kind; accepted: threshold, relative, "
             "spike, flatline, percentile, silence\n"
             "  rules[0].window: \"5x\" is not a duration; " DURATION_ACC "\n");
}

Test(cli, unreadable_file, .init = redirect)
{
    cr_assert_eq(run_cli("/nonexistent/x.json", NULL, NULL), 2);
    cr_assert_stderr_eq_str("/nonexistent/x.json: 1 problem:\n"
                            "  /nonexistent/x.json: cannot open: No such file or directory\n");
}

#define USAGE_TEXT                                                                                 \
    "usage: canaryd check-config [--quiet] FILE\n"                                                 \
    "  Validates FILE; prints a summary (exit 0) or every problem (exit 2).\n"

Test(cli, usage_errors_exit_2, .init = redirect)
{
    cr_assert_eq(run_cli(NULL, NULL, NULL), 2);
    cr_assert_eq(run_cli("--verbose", "x.json", NULL), 2);
    cr_assert_eq(run_cli("a.json", "b.json", NULL), 2);
    cr_assert_stdout_eq_str("");
    cr_assert_stderr_eq_str(
        "canaryd check-config: FILE missing\n" USAGE_TEXT
        "canaryd check-config: unknown option --verbose\n" USAGE_TEXT
        "canaryd check-config: one FILE only (got a.json and b.json)\n" USAGE_TEXT);
}

Test(cli, help_exits_0, .init = redirect)
{
    cr_assert_eq(run_cli("--help", NULL, NULL), 0);
    cr_assert_stdout_eq_str(USAGE_TEXT);
}

Test(config, silence_rule_guard_and_canary_evidence)
{
    cd_config_t *c = expect_ok(
        "{'verdicts': {'min_canary_events': 250}, 'rules': [{'name': 's', 'kind': 'silence', "
        "'traffic': ['REQUEST_COMPLETED', 'USER_LOGIN'], 'window': '1m', 'guard': true, "
        "'action': 'rollback'}]}");
    cr_assert_eq(c->min_canary_events, 250);
    const cd_rule_conf_t *r = &c->rules[0];
    cr_assert_eq(r->kind, CD_RULE_SILENCE);
    cr_assert(r->guard);
    cr_assert_eq(r->signal.nnum, 2);
    cr_assert_eq(r->signal.nden, 0);
    cr_assert_eq(r->reference_ms, 5 * 60000); /* defaults */
    cr_assert_float_eq(r->max_ratio, 0.1, 1e-12);
    cr_assert_float_eq(r->min_expected, 30, 1e-12);
    /* the window reaches back promote_after (15m) for the evidence count */
    cr_assert_eq(cd_config_span_ms(c), 15 * 60000 + 30000);
    cd_config_free(c);

    c = expect_ok("{'verdicts': {'min_canary_events': 0}, 'rules': [{'name': 's', 'kind': "
                  "'silence', 'traffic': ['R'], 'window': '1m', 'reference_window': '2m', "
                  "'max_ratio': 0.2, 'min_expected': 10, 'action': 'rollback'}]}");
    cr_assert_eq(c->min_canary_events, 0);
    cr_assert_eq(c->rules[0].reference_ms, 120000);
    cr_assert_eq(cd_config_span_ms(c), 3 * 60000 + 30000); /* no evidence count: rules only */
    cd_config_free(c);

    expect("{'verdicts': {'min_canary_events': -1}, 'rules': [{'name': 's', 'kind': 'silence', "
           "'traffic': ['R'], 'window': '1m', 'guard': 'yes', 'max_ratio': 1, "
           "'action': 'rollback'}]}",
           "verdicts.min_canary_events: -1 is negative; accepted: an integer >= 0 (0 turns the "
           "canary-evidence check off)\n"
           "rules[0].guard: \"yes\" is not a boolean; accepted: true, false\n"
           "rules[0].max_ratio: 1 is out of range; accepted: a number in [0, 1)\n");
    expect("{'rules': [{'name': 's', 'kind': 'silence', 'window': '1m', 'action': 'rollback'}]}",
           "rules[0]: missing required key \"traffic\" (kind silence); accepted: an array of 1 "
           "to 8 event type names such as [\"ERROR_OCCURRED\"]\n");
}

/* Issue 10 item 2: a rule set that passes on no canary data is warned
 * about, with or without the canary-evidence check; sop.json is not. */
Test(cli, warns_about_rules_that_pass_without_canary_data, .init = redirect)
{
    cr_assert_eq(run_cli("--quiet", DATA "count_only.json", NULL), 0);
    cr_assert_stdout_eq_str("");
    cr_assert_stderr_eq_str(
        DATA "count_only.json: warning: the rules can pass with no canary data (each is a count "
             "with min_samples.canary 0, a threshold scoped to stable / any, a guard or a dry "
             "run); only verdicts.min_canary_events (100 in 2m) keeps a canary that sends "
             "nothing from HEALTHY and PROMOTE. Add a rule that needs canary samples (a ratio, "
             "or min_samples.canary)\n");
}

Test(cli, warns_louder_without_the_canary_evidence_check, .init = redirect)
{
    char path[] = "/tmp/canaryd-count-only-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    static const char cfg_text[] =
        "{\"verdicts\": {\"promote_after\": \"2m\", \"min_canary_events\": 0},\n"
        " \"rules\": [{\"name\": \"a\", \"kind\": \"threshold\", \"numerator\": "
        "[\"AUDIT_LOG_FAILED\"], \"op\": \">\", \"threshold\": 0, \"window\": \"1m\", "
        "\"action\": \"rollback\"}]}\n";
    cr_assert_eq(write(fd, cfg_text, sizeof cfg_text - 1), (ssize_t)(sizeof cfg_text - 1));
    close(fd);
    int rc = run_cli("-q", path, NULL);
    char want[1024];
    snprintf(want, sizeof want,
             "%s: warning: the rules can pass with no canary data (each is a count with "
             "min_samples.canary 0, a threshold scoped to stable / any, a guard or a dry run); "
             "with verdicts.min_canary_events 0 a canary that sends nothing is HEALTHY at the "
             "first evaluation and PROMOTE after 2m. Set verdicts.min_canary_events above 0, or "
             "add a rule that needs canary samples\n",
             path);
    unlink(path);
    cr_assert_eq(rc, 0);
    cr_assert_stderr_eq_str(want);
}

Test(cli, sop_has_no_warning, .init = redirect)
{
    cr_assert_eq(run_cli("-q", CANARYD_SOURCE_DIR "/config/sop.json", NULL), 0);
    cr_assert_stderr_eq_str("");
}
