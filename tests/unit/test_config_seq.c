/*
 * test_config_seq.c - the rules' "sequential" key: its defaults, and every
 * mistake it can carry reported with the key path, the value and what is
 * accepted (exact messages). Documents are written with single quotes.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "canaryd/config.h"

static cd_diag_t diag;
static char doc[4096];

static cd_config_t *parse(const char *single_quoted)
{
    size_t n = strlen(single_quoted);
    cr_assert_lt(n, sizeof doc);
    for (size_t i = 0; i <= n; i++)
        doc[i] = single_quoted[i] == '\'' ? '"' : single_quoted[i];
    cd_diag_init(&diag);
    return cd_config_parse(doc, n, NULL, &diag);
}

static void expect(const char *single_quoted, const char *lines)
{
    cd_config_t *c = parse(single_quoted);
    cr_assert_null(c, "parsed, expected:\n%s", lines);
    cr_assert_str_eq(diag.text, lines);
}

#define REL(extra)                                                                                 \
    "{'rules': [{'name': 'e', 'kind': 'relative', 'numerator': ['ERR'], 'denominator': ['REQ'], " \
    "'op': '>', 'factor': 2, 'window': '1m', 'for': '5m', 'action': 'rollback'" extra "}]}"
#define THR(extra)                                                                                 \
    "{'rules': [{'name': 'p', 'kind': 'threshold', 'numerator': ['OK'], 'denominator': ['OK', "   \
    "'FAIL'], 'op': '<', 'threshold': 0.95, 'window': '5m', 'for': '1m', 'action': "             \
    "'rollback'" extra "}]}"

Test(config_seq, true_means_the_defaults)
{
    cd_config_t *c = parse(REL(", 'sequential': true"));
    cr_assert_not_null(c, "%s", diag.text);
    const cd_rule_conf_t *r = &c->rules[0];
    cr_assert(r->sequential);
    cr_assert_float_eq(r->seq_h0, 0.7, 1e-12);
    cr_assert_float_eq(r->seq_h1, 2.0, 1e-12);
    cr_assert_float_eq(r->seq_llr, 9.0, 1e-12);
    cr_assert_float_eq(r->seq_onset_llr, 2.0, 1e-12);
    cd_config_free(c);

    c = parse(THR(", 'sequential': {'h1': 3, 'onset_llr': 0}"));
    cr_assert_not_null(c, "%s", diag.text);
    r = &c->rules[0];
    cr_assert(r->sequential);
    cr_assert_float_eq(r->seq_h0, 0.7, 1e-12);
    cr_assert_float_eq(r->seq_h1, 3.0, 1e-12);
    cr_assert_float_eq(r->seq_onset_llr, 0.0, 1e-12);
    /* onset_h0: the onset's in-control share, h0's unless given */
    cr_assert_float_eq(r->seq_onset_h0, 0.7, 1e-12);
    cd_config_free(c);
    c = parse(REL(", 'sequential': {'h0': 0.7, 'h1': 1.5, 'onset_h0': 0.5, 'onset_llr': 4.2}"));
    cr_assert_not_null(c, "%s", diag.text);
    r = &c->rules[0];
    cr_assert_float_eq(r->seq_onset_h0, 0.5, 1e-12);
    cr_assert_float_eq(r->seq_onset_llr, 4.2, 1e-12);
    cd_config_free(c);

    c = parse(REL(", 'sequential': false"));
    cr_assert_not_null(c, "%s", diag.text);
    cr_assert_not(c->rules[0].sequential);
    cd_config_free(c);
}

Test(config_seq, bad_values_name_the_key)
{
    expect(REL(", 'sequential': 'yes'"),
           "rules[0].sequential: \"yes\" is not a boolean or an object; accepted: true, false, or "
           "an object with any of h0 (in (0, 1], default 0.7), h1 (> h0, default 2), llr (> 0, "
           "default 9), onset_llr (>= 0, default 2), onset_h0 (in (0, h1), default h0)\n");
    expect(REL(", 'sequential': {'h0': 0.5, 'h1': 0.4}"),
           "rules[0].sequential.h1: 0.4 is not above h0; accepted: h1 > h0 (here h0 0.5, h1 0.4): "
           "the tested bad share above the in-control one\n");
    expect(REL(", 'sequential': {'llr': 0}"),
           "rules[0].sequential.llr: 0 is out of range; accepted: a number > 0\n");
    expect(REL(", 'sequential': {'lrr': 3}"),
           "rules[0].sequential: unknown key \"lrr\"; known keys: h0, h1, llr, onset_llr, "
           "onset_h0\n");
    expect(REL(", 'sequential': {'h1': 1.5, 'onset_h0': 1.5}"),
           "rules[0].sequential.onset_h0: 1.5 is not below h1; accepted: onset_h0 < h1 (here h1 "
           "1.5): the share before the onset below the tested one\n");
    expect(REL(", 'sequential': {'onset_h0': 0}"),
           "rules[0].sequential.onset_h0: 0 is out of range; accepted: a number > 0\n");
}

Test(config_seq, what_the_test_needs)
{
    expect("{'rules': [{'name': 'a', 'kind': 'threshold', 'numerator': ['AUDIT'], 'op': '>', "
           "'threshold': 0, 'window': '1m', 'action': 'alert', 'sequential': true}]}",
           "rules[0].sequential: true needs a denominator; accepted: sequential only on a ratio "
           "signal (with \"denominator\"): it tests the share of bad events per trial\n");
    expect(THR(", 'z': 1.645, 'sequential': true"),
           "rules[0].sequential: true and z together; accepted: one of them: the sequential test "
           "replaces the Wilson bound (remove z)\n");
    expect(THR(", 'scope': 'any', 'sequential': true"),
           "rules[0].sequential: true needs scope canary; accepted: scope \"canary\" (the "
           "default): the test is on the canary's counts\n");
    expect("{'rules': [{'name': 'e', 'kind': 'relative', 'numerator': ['ERR'], 'denominator': "
           "['REQ'], 'op': '<', 'factor': 2, 'window': '1m', 'action': 'rollback', "
           "'sequential': true}]}",
           "rules[0].sequential: true needs a proportion with op < / <=; accepted: every "
           "numerator type also in the denominator, so that 1 - signal is the share of bad "
           "events\n");
    expect("{'rules': [{'name': 'e', 'kind': 'relative', 'numerator': ['ERR'], 'denominator': "
           "['REQ'], 'op': '>', 'factor': 2, 'window': '1h', 'for': '1h', 'action': 'rollback', "
           "'sequential': true}]}",
           "rules[0].sequential: true looks back too far; accepted: window + for at most 4096 "
           "buckets of windows.resolution (1000ms); this rule looks back 7200\n");
    expect("{'rules': [{'name': 's', 'kind': 'spike', 'numerator': ['F'], 'denominator': ['L', "
           "'F'], 'factor': 2, 'window': '5m', 'action': 'rollback', 'sequential': true}]}",
           "rules[0].sequential: key applies to kinds threshold, relative, not spike\n");
}
