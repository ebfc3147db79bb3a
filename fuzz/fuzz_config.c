/*
 * fuzz_config.c - libFuzzer target for the config loader.
 *
 * Each input is parsed three times: as a whole config document in JSON and
 * in YAML (config_yaml.c; with file access disabled, so a fuzzed
 * "baseline_file" is reported, never opened), and as a baseline file applied
 * to a fixed valid config. Neither may crash or leak,
 * and the loader's contract is checked on every result: NULL if and only if
 * at least one problem was reported, the diag text well-formed, every type id
 * in a parsed rule inside the catalog.
 */
#include <stdint.h>
#include <string.h>

#include "../agent/config/config_internal.h"

static const char BASE[] =
    "{\"rules\": [{\"name\": \"error-rate\", \"kind\": \"relative\", \"numerator\": [\"E\"], "
    "\"denominator\": [\"R\"], \"op\": \">\", \"factor\": 2, \"window\": \"1m\", "
    "\"action\": \"rollback\"}, {\"name\": \"audit\", \"kind\": \"threshold\", \"numerator\": "
    "[\"A\"], \"op\": \">\", \"threshold\": 0, \"window\": \"1m\", \"action\": \"alert\"}]}";

static void check_diag(const cd_diag_t *d)
{
    CD_ASSERT(d->len < sizeof(d->text));
    CD_ASSERT(strlen(d->text) == d->len);
    CD_ASSERT(d->len == 0 || d->text[d->len - 1] == '\n');
}

static void check_ids(const cd_config_t *c, const int *ids, int n)
{
    CD_ASSERT(n >= 0 && n <= CD_MAX_SIGNAL_TYPES);
    for (int i = 0; i < n; i++)
        CD_ASSERT(ids[i] >= 0 && ids[i] < c->decode.ntypes);
}

static void check_config(const cd_config_t *c)
{
    CD_ASSERT(c->decode.ntypes >= 0 && c->decode.ntypes <= CD_MAX_TYPES);
    CD_ASSERT(c->decode.nnumeric >= 0 && c->decode.nnumeric <= CD_MAX_NUMERIC);
    CD_ASSERT(c->nrules >= 1 && c->nrules <= CD_MAX_RULES);
    CD_ASSERT(c->resolution_ms >= 100);
    for (int i = 0; i < c->nrules; i++) {
        const cd_rule_conf_t *r = &c->rules[i];
        CD_ASSERT(r->name[0] != '\0');
        CD_ASSERT(r->window_ms > 0 && r->window_ms % c->resolution_ms == 0);
        check_ids(c, r->signal.num, r->signal.nnum);
        check_ids(c, r->signal.den, r->signal.nden);
        check_ids(c, r->flat_types, r->nflat);
        if (r->kind == CD_RULE_PERCENTILE) CD_ASSERT(r->hist >= 0 && r->hist < c->decode.nnumeric);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cd_diag_t d;
    static cd_config_t *base;

    cd_config_t *c = cd_config_parse_ex((const char *)data, size, NULL, CD_CFG_NO_FILES, &d);
    check_diag(&d);
    CD_ASSERT((c == NULL) == (d.count > 0));
    if (c) check_config(c);
    cd_config_free(c);

    c = cd_config_parse_ex((const char *)data, size, NULL, CD_CFG_NO_FILES | CD_CFG_YAML, &d);
    check_diag(&d);
    CD_ASSERT((c == NULL) == (d.count > 0));
    if (c) check_config(c);
    cd_config_free(c);

    if (!base) {
        base = cd_config_parse(BASE, sizeof(BASE) - 1, NULL, &d);
        CD_ASSERT(base != NULL);
    }
    cd_config_t copy = *base; /* decode's pointers still point into base: unused here */
    cd_cfgctx_t x = {.c = &copy, .d = &d, .flags = CD_CFG_NO_FILES, .resolution_ok = true};
    cd_diag_init(&d);
    cd_cfg_apply_baseline(&x, "fuzz.json", (const char *)data, size);
    check_diag(&d);
    for (int i = 0; i < copy.nrules; i++)
        if (copy.rules[i].has_baseline)
            CD_ASSERT(copy.rules[i].kind == CD_RULE_RELATIVE && copy.rules[i].baseline >= 0);
    return 0;
}
