/*
 * config.h - canaryd's configuration: loading, validation and the parsed form.
 *
 * The file is JSON, or YAML when its name ends in .yaml or .yml (parsed at
 * start-up, never on the hot path, into the same tree and checked by the
 * same code; messages about a YAML file start with "line L, column C: ").
 * Every problem is reported with the key path, the value given and what is
 * accepted, e.g.
 *   rules[2].window: "5x" is not a duration; accepted: a number with a unit
 *   ms, s, m or h, such as "30s" or "5m"
 * Unknown keys are errors that list the known keys. Nothing falls back to a
 * default silently: defaults apply only to keys that are absent.
 * See docs/config.md for every key.
 */
#ifndef CANARYD_CONFIG_H
#define CANARYD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canaryd/event.h"
#include "canaryd/rule.h"

/* Accumulated diagnostics: one line per problem. */
typedef struct cd_diag {
    int count;
    size_t len;
    char text[16384];
} cd_diag_t;

void cd_diag_init(cd_diag_t *d);
/* Appends one formatted line (a trailing newline is added). Truncates, never
 * overflows; count still increments. */
void cd_diag_add(cd_diag_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef struct cd_config {
    /* events: where fields are; types = catalog (configured "types" plus every
     * type a rule names, in first-seen order); the strings point into this
     * struct's own storage. */
    cd_decode_conf_t decode;
    char type_names[CD_MAX_TYPES][CD_NAME_MAX];
    char numeric_names[CD_MAX_NUMERIC][CD_NAME_MAX]; /* "latency_ms" */
    char numeric_paths[CD_MAX_NUMERIC][256];
    char paths[7][256]; /* storage behind decode's path / value strings */
    char canary_version[128];
    char service[CD_NAME_MAX]; /* events.service; "" = judge every event (decode.service) */

    /* windows */
    int64_t resolution_ms;       /* default 1s */
    int64_t allowed_lateness_ms; /* default 5s */
    int64_t max_future_skew_ms;  /* default 2m */
    int64_t slack_ms;            /* ring span = longest rule look-back + slack; default 30s */

    /* verdicts */
    int64_t promote_after_ms;  /* default 15m */
    int64_t alert_repeat_ms;   /* default 5m */
    int64_t eval_interval_ms;  /* default 1s */
    uint64_t min_canary_events; /* over promote_after, for HEALTHY / PROMOTE; default 100, 0 = off */

    char baseline_file[1024]; /* resolved against the config file's folder; "" if none */

    cd_rule_conf_t rules[CD_MAX_RULES];
    int nrules;

    /* Sections parsed by the modules that own them (the Kafka source, the
     * sinks, the HTTP API, logging), which report their own problems with
     * key paths when they start and in check-config. Each is a jansson
     * json_t * object holding a reference owned by this config (released by
     * cd_config_free), or NULL when the key is absent. */
    void *kafka_json;
    void *sinks_json;
    void *http_json;
    void *log_json;
    void *coord_json; /* "coordination" (coord.h) */

    /* YAML files only (else NULL): where each key path sits in the file, for
     * cd_config_locate; owned by this config. */
    void *src_pos;
} cd_config_t;

/*
 * Parses a config document. origin_dir: folder that relative paths in the
 * document (baseline_file) are resolved against; NULL = current directory.
 * The baseline file, if named, is read and its values stored in the rules.
 * Returns a config to free with cd_config_free(), or NULL with every problem
 * found in *diag (diag->count > 0).
 */
cd_config_t *cd_config_parse(const char *text, size_t len, const char *origin_dir, cd_diag_t *diag);

/* Reads and parses a file (errors reading it are reported in *diag too). */
cd_config_t *cd_config_load(const char *path, cd_diag_t *diag);

void cd_config_free(cd_config_t *c);

/*
 * For messages that modules add about their own sections after loading
 * (cd_kafka_conf_parse, cd_http_conf_parse, cd_dispatcher_check): prefixes
 * the lines of d from byte offset `from` (d->len before those calls) with
 * "line L, column C: " when c came from a YAML file and the line's key path
 * is in it. Does nothing for JSON files.
 */
void cd_config_locate(const cd_config_t *c, cd_diag_t *d, size_t from);

/* How far back the windows must reach: the longest rule look-back, or
 * promote_after when the canary-evidence check counts over it, plus slack. */
int64_t cd_config_span_ms(const cd_config_t *c);

/* Type id of a catalog name, or CD_TYPE_OTHER. */
int cd_config_type_id(const cd_config_t *c, const char *name);

#endif
