/*
 * config_internal.h - what the config loader's files share: config.c (the
 * top-level loader: top level, windows, verdicts), the section parsers it
 * calls (config_events.c, config_rules.c and config_kinds.c,
 * config_baseline.c, config_secrets.c, config_yaml.c) and the leaves every
 * file may call (config_json.c: typed getters and messages; config_file.c:
 * reading a file). Calls go one way, loader -> sections -> leaves (the
 * layers are listed atop config.c). Not a public header: nothing outside
 * the loader, its tests and its fuzz target includes it.
 *
 * Every check reports through one cd_cfgctx_t into the caller's diag and
 * carries on, so a document with five mistakes yields five lines. Most
 * messages read "<key path>: <value as JSON, shortened> <problem>; accepted:
 * <what is>"; unknown keys list the known ones. Values are rendered with JSON_ENSURE_ASCII so a hostile config
 * cannot put control bytes or broken UTF-8 on the terminal.
 */
#ifndef CANARYD_AGENT_CONFIG_INTERNAL_H
#define CANARYD_AGENT_CONFIG_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "canaryd/config.h"

/* Longest rendering of a value in a message (then "..."). */
#define CD_CFG_VALUE_MAX 60
/* Room for a key path such as rules[12].min_samples.canary. */
#define CD_CFG_PATH_MAX 256
/* Largest baseline file read (it holds one number per rule). */
#define CD_CFG_BASELINE_MAX (1 << 20)

/* cd_config_parse_ex flags. */
#define CD_CFG_NO_FILES 0x1 /* never open a file: a named baseline_file is a problem */
#define CD_CFG_NO_BASELINE 0x2 /* baseline_file resolved, not read (`canaryd baseline` writes it) */
#define CD_CFG_YAML 0x4 /* the text is YAML (config_yaml.c), not JSON */

typedef struct cd_cfgctx {
    cd_config_t *c;
    cd_diag_t *d;
    unsigned flags;
    bool resolution_ok;    /* resolution_ms is valid: multiples can be checked */
    bool catalog_overflow; /* "too many types" already reported once */
} cd_cfgctx_t;

/* Same as cd_config_parse, with CD_CFG_* flags (the fuzz target passes
 * CD_CFG_NO_FILES). */
cd_config_t *cd_config_parse_ex(const char *text, size_t len, const char *origin_dir,
                                unsigned flags, cd_diag_t *diag);

/* cd_config_load with CD_CFG_* flags: reads path, resolves relative paths
 * against its folder. cd_config_load is this with CD_CFG_ENV. */
cd_config_t *cd_config_load_ex(const char *path, unsigned flags, cd_diag_t *diag);

/* --- config_json.c: rendering and typed getters -------------------------- */

/* Renders v as compact ASCII JSON, cut to CD_CFG_VALUE_MAX with "...". */
void cd_cfg_render(const json_t *v, char *buf, size_t size);
/* Renders a C string as a JSON string literal, shortened the same way. */
void cd_cfg_render_str(const char *s, char *buf, size_t size);
/* out = base + ".key" (or base + "[\"key\"]" when key is not a plain word);
 * base "" gives just the key. */
void cd_cfg_path_key(char *out, size_t size, const char *base, const char *key);
/* out = base + "[i]". */
void cd_cfg_path_index(char *out, size_t size, const char *base, size_t i);
/* A path for messages: "" becomes "top level". */
const char *cd_cfg_where(const char *path);

/* "<path>: <v> <problem>; accepted: <accepted>" */
void cd_cfg_bad(cd_cfgctx_t *x, const char *path, const json_t *v, const char *problem,
                const char *accepted);

/* Reports every key of obj not in known (NULL-terminated) as
 * "<path>: unknown key "k"; known keys: a, b". Returns false if any. */
bool cd_cfg_check_keys(cd_cfgctx_t *x, const char *path, const json_t *obj,
                       const char *const *known);
/* Joins a NULL-terminated list with ", " into buf. */
void cd_cfg_join(char *buf, size_t size, const char *const *list);

/* Checks that v is an object; reports "is not an object" otherwise. */
bool cd_cfg_object(cd_cfgctx_t *x, const char *path, const json_t *v, const char *accepted);

/* A duration: a string for cd_duration_parse or a non-negative integer of ms. */
bool cd_cfg_duration(cd_cfgctx_t *x, const char *path, const json_t *v, int64_t *ms);

/* A number within bounds (NAN = unbounded; *_open = bound excluded). */
bool cd_cfg_number(cd_cfgctx_t *x, const char *path, const json_t *v, double lo, bool lo_open,
                   double hi, bool hi_open, double *out);

/* A string of at most size-1 bytes copied into dst; empty allowed if
 * allow_empty. accepted describes the value for messages. */
bool cd_cfg_string(cd_cfgctx_t *x, const char *path, const json_t *v, char *dst, size_t size,
                   bool allow_empty, const char *accepted);

/* Index of v (a string) in names (NULL-terminated), or reports "is not a
 * <what>; accepted: names" and returns -1. */
int cd_cfg_enum(cd_cfgctx_t *x, const char *path, const json_t *v, const char *what,
                const char *const *names);

/* "<path>: missing required key "key" (kind k)" unless r has key; kind -1:
 * a key every kind needs. Returns the value or NULL. */
json_t *cd_cfg_need(cd_cfgctx_t *x, const char *path, const json_t *r, const char *key, int kind,
                    const char *accepted);
/* out = path + "." + key. */
void cd_cfg_subpath(char *out, size_t size, const char *path, const char *key);
/* Optional number in range: absent leaves *out (the default) as is. */
void cd_cfg_opt_number(cd_cfgctx_t *x, const char *path, const json_t *r, const char *key,
                       double lo, bool lo_open, double hi, bool hi_open, double *out);
/* Required number >= lo (> lo if lo_open). */
void cd_cfg_req_number(cd_cfgctx_t *x, const char *path, const json_t *r, const char *key, int kind,
                       double lo, bool lo_open, const char *accepted, double *out);
/* A look-back window: > 0, <= max_ms, a multiple of the resolution. */
bool cd_cfg_lookback(cd_cfgctx_t *x, const char *p, const json_t *v, int64_t max_ms,
                     const char *max_text, int64_t *out);

/* --- config_events.c ----------------------------------------------------- */

/* Fills c->decode with event.h's defaults, its strings in c's storage. */
void cd_cfg_events_defaults(cd_config_t *c);
void cd_cfg_parse_events(cd_cfgctx_t *x, const json_t *ev);
/* Catalog id of name, appending it when new (first-seen order). Reports and
 * returns -1 when the catalog is full. */
int cd_cfg_type_intern(cd_cfgctx_t *x, const char *path, const json_t *v, const char *name);

/* --- config_file.c ------------------------------------------------------- */

/* Reads a whole regular file of at most max bytes into a malloc'd buffer
 * (NUL-terminated; caller frees). Returns 0, or -1 with a reason such as
 * "cannot open: No such file or directory" in err. */
int cd_cfg_read_file(const char *path, size_t max, char **out, size_t *outlen, char *err,
                     size_t errsize);

/* --- config_yaml.c ------------------------------------------------------- */

/* Parses YAML text into the jansson tree the same document in JSON gives.
 * *pos receives a new object mapping each value's key path ("" for the
 * root) to [line, column] (1-based), plus [key line, key column] for
 * mapping members; the caller owns both. NULL (and *pos NULL) with the
 * problem in d, as "line L, column C: <path>: ..." */
json_t *cd_cfg_yaml_load(const char *text, size_t len, json_t **pos, cd_diag_t *d);
/* Prefixes every line of d from byte offset `from` on whose key path (the
 * text before its first ": ") pos knows with "line L, column C: ". Keeps
 * d->count. pos NULL: nothing to do. */
void cd_cfg_locate(cd_diag_t *d, size_t from, const json_t *pos);

/* --- config_secrets.c ---------------------------------------------------- */

/* Replaces each secret key's K_file / K_env in root with K holding the
 * secret (read from the file, or the variable), before validation; copies
 * pos's entry for K_file / K_env to K when pos is not NULL. Problems go to
 * x->d; no secret value is ever put in a message. */
void cd_cfg_secrets_resolve(cd_cfgctx_t *x, json_t *root, json_t *pos);

/* --- config_rules.c ------------------------------------------------------- */

void cd_cfg_parse_rules(cd_cfgctx_t *x, const json_t *rules);

/* --- config_kinds.c ------------------------------------------------------- */

/* Parses the keys of rule kind `kind` (a valid cd_rule_kind_t) into rc. */
void cd_cfg_parse_kind(cd_cfgctx_t *x, const char *path, const json_t *r, int kind,
                       cd_rule_conf_t *rc);

/* --- config_baseline.c ---------------------------------------------------- */

/* Resolves baseline_file against origin_dir, reads it and stores its values
 * in the relative rules. */
void cd_cfg_parse_baseline(cd_cfgctx_t *x, const json_t *v, const char *origin_dir);
/* Applies a baseline document already in memory; name is used in messages. */
void cd_cfg_apply_baseline(cd_cfgctx_t *x, const char *name, const char *text, size_t len);

#endif
