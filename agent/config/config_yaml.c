/*
 * config_yaml.c - YAML config files: libyaml's event stream turned into the
 * same jansson tree a JSON file gives, so one validator checks both, plus a
 * side table of where every value sits in the file, so every message about a
 * YAML file carries "line L, column C" as well as the key path.
 *
 * Data structure: the position table is a jansson object keyed by the key
 * paths the validator prints (built with the same cd_cfg_path_key /
 * cd_cfg_path_index, so "rules[2].window" in a message is a lookup), each
 * value [value line, value column, key line, key column] (1-based; the key
 * pair only for mapping members). cd_cfg_locate() then prefixes each message
 * line whose key path (the text before its first ": ") is in the table;
 * "unknown key" messages point at the key, all others at the value, and a
 * path that is not in the table (a value copied by an alias) falls back to
 * its nearest ancestor that is; a line that starts with no key path of the
 * file (an environment variable's) is left as it is.
 *
 * Scalars are resolved by YAML 1.2's core schema, not 1.1's: plain `yes`,
 * `no`, `on`, `off` stay strings (the "Norway problem"), plain true/false,
 * null/~/empty, integers (decimal, 0o, 0x) and floats become JSON values,
 * anything quoted or block-styled is a string. The standard tags !!str,
 * !!int, !!float, !!bool, !!null, !!map, !!seq are honoured; others are
 * errors, as are .inf and .nan (JSON cannot hold them), NUL characters
 * (jansson rejects them in JSON text too), integers beyond
 * int64, keys that are not scalars, duplicate keys (JSON_REJECT_DUPLICATES
 * gives JSON files the same rule) and a second document. Anchors and
 * aliases work (an alias is a deep copy); a budget of values and a depth
 * limit stop alias bombs and self-references.
 *
 * Trade-off: the event API (not libyaml's document API) is used because the
 * document API gives every untagged plain scalar the !!str tag, which makes
 * an explicit `!!str 10` indistinguishable from `10`.
 *
 * Start-up only, one thread; nothing is shared.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config_internal.h"

/* Most values one document may expand to (aliases included) and deepest
 * nesting: sop.yaml has ~250 values and depth 4. */
#define YAML_MAX_VALUES 65536
#define YAML_MAX_DEPTH 64

#define TAG_PREFIX "tag:yaml.org,2002:"

typedef struct anchor {
    char *name;
    json_t *v;
    size_t values; /* values under it, charged again at each alias */
} anchor_t;

typedef struct ycx {
    yaml_parser_t p;
    cd_diag_t *d;
    json_t *pos;
    anchor_t *anchors;
    size_t nanchors, cap;
    size_t values;
    bool failed; /* one problem stops the conversion: the tree is incomplete */
} ycx_t;

static void fail(ycx_t *y, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(ycx_t *y, yaml_mark_t m, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    if (y->failed) return;
    y->failed = true;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cd_diag_add(y->d, "line %zu, column %zu: %s", m.line + 1, m.column + 1, msg);
}

static bool next(ycx_t *y, yaml_event_t *ev)
{
    if (y->failed) return false;
    if (yaml_parser_parse(&y->p, ev)) return true;
    yaml_mark_t m = y->p.problem_mark;
    if (y->p.context)
        fail(y, m, "YAML syntax error: %s (%s at line %zu, column %zu)",
             y->p.problem ? y->p.problem : "invalid YAML", y->p.context, y->p.context_mark.line + 1,
             y->p.context_mark.column + 1);
    else
        fail(y, m, "YAML syntax error: %s", y->p.problem ? y->p.problem : "invalid YAML");
    return false;
}

static void note(ycx_t *y, const char *path, yaml_mark_t v, const yaml_mark_t *k)
{
    json_t *a = k ? json_pack("[IIII]", (json_int_t)v.line + 1, (json_int_t)v.column + 1,
                              (json_int_t)k->line + 1, (json_int_t)k->column + 1)
                  : json_pack("[II]", (json_int_t)v.line + 1, (json_int_t)v.column + 1);
    if (a) json_object_set_new(y->pos, path, a);
}

static bool is_one_of(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0) return true;
    return false;
}

static const char *const NULLS[] = {"", "~", "null", "Null", "NULL", NULL};
static const char *const TRUES[] = {"true", "True", "TRUE", NULL};
static const char *const FALSES[] = {"false", "False", "FALSE", NULL};
static const char *const SPECIAL_FLOATS[] = {".inf",  ".Inf",  ".INF",  "+.inf", "+.Inf",
                                             "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
                                             ".NaN",  ".NAN",  NULL};

static bool all_of(const char *s, const char *set)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!strchr(set, *s)) return false;
    return true;
}

/* Core schema int: [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+ */
static int int_base(const char *s)
{
    if (s[0] == '0' && s[1] == 'o') return all_of(s + 2, "01234567") ? 8 : 0;
    if (s[0] == '0' && s[1] == 'x') return all_of(s + 2, "0123456789abcdefABCDEF") ? 16 : 0;
    if (*s == '-' || *s == '+') s++;
    return all_of(s, "0123456789") ? 10 : 0;
}

/* Core schema float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool is_float(const char *s)
{
    const char *p = s;
    size_t digits = 0;
    if (*p == '-' || *p == '+') p++;
    while (*p >= '0' && *p <= '9')
        p++, digits++;
    if (*p == '.') {
        p++;
        size_t frac = 0;
        while (*p >= '0' && *p <= '9')
            p++, frac++;
        if (digits == 0 && frac == 0) return false;
    } else if (digits == 0) {
        return false;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+') p++;
        if (!(*p >= '0' && *p <= '9')) return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0';
}

enum { R_ANY, R_NULL, R_BOOL, R_INT, R_FLOAT };

/* A plain (or !!-tagged) scalar by the core schema; want narrows it to one
 * type (an explicit tag). NULL with a problem reported when it cannot be. */
static json_t *resolve(ycx_t *y, const yaml_event_t *ev, const char *path, int want)
{
    const char *s = (const char *)ev->data.scalar.value;
    static const char *const WANT[] = {"", "null", "boolean", "integer", "float"};
    const char *where = cd_cfg_where(path);
    char shown[CD_CFG_VALUE_MAX + 8];

    if ((want == R_ANY || want == R_NULL) && is_one_of(s, NULLS)) return json_null();
    if ((want == R_ANY || want == R_BOOL) && is_one_of(s, TRUES)) return json_true();
    if ((want == R_ANY || want == R_BOOL) && is_one_of(s, FALSES)) return json_false();
    int base = int_base(s);
    if (base && (want == R_ANY || want == R_INT)) {
        const char *digits = base == 10 ? s : s + 2;
        errno = 0;
        char *end;
        long long v = strtoll(digits, &end, base);
        if (errno == 0 && *end == '\0') return json_integer((json_int_t)v);
        cd_cfg_render_str(s, shown, sizeof(shown));
        fail(y, ev->start_mark,
             "%s: %s is out of range; accepted: an integer from -9223372036854775808 to "
             "9223372036854775807",
             where, shown);
        return NULL;
    }
    if ((want == R_ANY || want == R_FLOAT) && (is_float(s) || (want == R_FLOAT && base == 10))) {
        double v = strtod(s, NULL);
        if (isfinite(v)) return json_real(v);
    }
    if ((want == R_ANY || want == R_FLOAT) && (is_one_of(s, SPECIAL_FLOATS) || is_float(s))) {
        cd_cfg_render_str(s, shown, sizeof(shown));
        fail(y, ev->start_mark,
             "%s: %s is not a finite number; accepted: a finite number (JSON, and so canaryd's "
             "config, has no infinity or NaN)",
             where, shown);
        return NULL;
    }
    if (want == R_ANY) return json_string(s);
    cd_cfg_render_str(s, shown, sizeof(shown));
    fail(y, ev->start_mark, "%s: %s is not a %s; accepted: a value of the type its tag !!%s names",
         where, shown, WANT[want],
         want == R_NULL   ? "null"
         : want == R_BOOL ? "bool"
                          : WANT[want]);
    return NULL;
}

static json_t *scalar(ycx_t *y, const yaml_event_t *ev, const char *path)
{
    const char *tag = (const char *)ev->data.scalar.tag;
    const char *s = (const char *)ev->data.scalar.value;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    json_t *v;

    /* As jansson's parser does without JSON_ALLOW_NUL: no "\0" in text. */
    if (strlen(s) != ev->data.scalar.length) {
        fail(y, ev->start_mark, "%s: a string holds a NUL character; accepted: text without \\0",
             cd_cfg_where(path));
        return NULL;
    }
    if (!tag || strcmp(tag, "!") == 0) {
        /* jansson holds UTF-8 only, and libyaml has already checked it is. */
        v = plain && !tag ? resolve(y, ev, path, R_ANY) : json_stringn(s, ev->data.scalar.length);
    } else if (strcmp(tag, TAG_PREFIX "str") == 0) {
        v = json_stringn(s, ev->data.scalar.length);
    } else if (strcmp(tag, TAG_PREFIX "null") == 0) {
        v = resolve(y, ev, path, R_NULL);
    } else if (strcmp(tag, TAG_PREFIX "bool") == 0) {
        v = resolve(y, ev, path, R_BOOL);
    } else if (strcmp(tag, TAG_PREFIX "int") == 0) {
        v = resolve(y, ev, path, R_INT);
    } else if (strcmp(tag, TAG_PREFIX "float") == 0) {
        v = resolve(y, ev, path, R_FLOAT);
    } else {
        char shown[CD_CFG_VALUE_MAX + 8];
        cd_cfg_render_str(tag, shown, sizeof(shown));
        fail(y, ev->start_mark,
             "%s: tag %s is not supported; accepted: no tag, or !!str, !!int, !!float, !!bool, "
             "!!null",
             cd_cfg_where(path), shown);
        return NULL;
    }
    if (!v) fail(y, ev->start_mark, "%s: out of memory", cd_cfg_where(path));
    return v;
}

static json_t *node(ycx_t *y, yaml_event_t *ev, const char *path, int depth);

static json_t *mapping(ycx_t *y, const yaml_event_t *start, const char *path, int depth)
{
    json_t *obj = json_object();
    yaml_event_t k, v;
    char sub[CD_CFG_PATH_MAX];

    if (!obj) return NULL;
    for (;;) {
        if (!next(y, &k)) goto err;
        if (k.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&k);
            return obj;
        }
        if (k.type != YAML_SCALAR_EVENT) {
            fail(y, k.start_mark,
                 "%s: a key is a %s; accepted: keys that are plain strings, such as \"window\"",
                 cd_cfg_where(path), k.type == YAML_ALIAS_EVENT ? "alias" : "mapping or sequence");
            yaml_event_delete(&k);
            goto err;
        }
        const char *key = (const char *)k.data.scalar.value;
        if (strlen(key) != k.data.scalar.length) {
            fail(y, k.start_mark, "%s: a key holds a NUL character; accepted: text without \\0",
                 cd_cfg_where(path));
            yaml_event_delete(&k);
            goto err;
        }
        char shown[CD_CFG_VALUE_MAX + 8];
        if (json_object_get(obj, key)) {
            cd_cfg_render_str(key, shown, sizeof(shown));
            fail(y, k.start_mark, "%s: duplicate key %s; accepted: each key once per mapping",
                 cd_cfg_where(path), shown);
            yaml_event_delete(&k);
            goto err;
        }
        cd_cfg_path_key(sub, sizeof(sub), path, key);
        if (!next(y, &v)) {
            yaml_event_delete(&k);
            goto err;
        }
        json_t *val = node(y, &v, sub, depth + 1);
        if (val) note(y, sub, v.start_mark, &k.start_mark);
        yaml_event_delete(&v);
        int rc = val ? json_object_setn_new(obj, key, k.data.scalar.length, val) : -1;
        yaml_event_delete(&k);
        if (rc != 0) goto err;
    }
err:
    json_decref(obj);
    return NULL;
}

static json_t *sequence(ycx_t *y, const char *path, int depth)
{
    json_t *arr = json_array();
    yaml_event_t v;
    char sub[CD_CFG_PATH_MAX];

    if (!arr) return NULL;
    for (;;) {
        if (!next(y, &v)) goto err;
        if (v.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&v);
            return arr;
        }
        cd_cfg_path_index(sub, sizeof(sub), path, json_array_size(arr));
        json_t *val = node(y, &v, sub, depth + 1);
        if (val) note(y, sub, v.start_mark, NULL);
        yaml_event_delete(&v);
        if (!val || json_array_append_new(arr, val) != 0) goto err;
    }
err:
    json_decref(arr);
    return NULL;
}

static json_t *alias(ycx_t *y, const yaml_event_t *ev, const char *path)
{
    const char *name = (const char *)ev->data.alias.anchor;
    for (size_t i = y->nanchors; i-- > 0;) {
        if (strcmp(y->anchors[i].name, name) != 0) continue;
        if (!y->anchors[i].v) break; /* still being built: refers to itself */
        y->values += y->anchors[i].values;
        if (y->values > YAML_MAX_VALUES) {
            fail(y, ev->start_mark,
                 "%s: aliases expand the document past %d values; accepted: a config of at most "
                 "%d values",
                 cd_cfg_where(path), YAML_MAX_VALUES, YAML_MAX_VALUES);
            return NULL;
        }
        json_t *v = json_deep_copy(y->anchors[i].v);
        if (!v) fail(y, ev->start_mark, "%s: out of memory", cd_cfg_where(path));
        return v;
    }
    fail(y, ev->start_mark,
         "%s: alias *%s names no complete anchor before it; accepted: an "
         "alias after the value its &anchor marks",
         cd_cfg_where(path), name);
    return NULL;
}

/* The value ev starts, with every event up to its end consumed. */
static json_t *node(ycx_t *y, yaml_event_t *ev, const char *path, int depth)
{
    const yaml_char_t *anchor = NULL, *tag = NULL;
    const char *std = NULL;
    json_t *v = NULL;
    size_t before = y->values, slot = 0;

    if (ev->type == YAML_ALIAS_EVENT) return alias(y, ev, path);
    if (++y->values > YAML_MAX_VALUES || depth > YAML_MAX_DEPTH) {
        fail(y, ev->start_mark, "%s: the document is too %s; accepted: at most %d values, %d deep",
             cd_cfg_where(path), depth > YAML_MAX_DEPTH ? "deep" : "large", YAML_MAX_VALUES,
             YAML_MAX_DEPTH);
        return NULL;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
        std = TAG_PREFIX "map";
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
        std = TAG_PREFIX "seq";
        break;
    default:
        fail(y, ev->start_mark, "%s: unexpected YAML event", cd_cfg_where(path));
        return NULL;
    }
    if (tag && strcmp((const char *)tag, "!") != 0 && strcmp((const char *)tag, std) != 0) {
        char shown[CD_CFG_VALUE_MAX + 8];
        cd_cfg_render_str((const char *)tag, shown, sizeof(shown));
        fail(y, ev->start_mark, "%s: tag %s is not supported; accepted: no tag, or %s",
             cd_cfg_where(path), shown, ev->type == YAML_MAPPING_START_EVENT ? "!!map" : "!!seq");
        return NULL;
    }
    if (anchor) {
        /* Registered before the children, unfinished (v NULL): an alias to
         * it from inside is reported rather than followed. */
        if (y->nanchors == y->cap) {
            size_t cap = y->cap ? y->cap * 2 : 8;
            anchor_t *a = realloc(y->anchors, cap * sizeof(*a));
            if (!a) goto oom;
            y->anchors = a;
            y->cap = cap;
        }
        slot = y->nanchors;
        y->anchors[slot] = (anchor_t){.name = strdup((const char *)anchor)};
        if (!y->anchors[slot].name) goto oom;
        y->nanchors++;
    }
    if (ev->type == YAML_SCALAR_EVENT)
        v = scalar(y, ev, path);
    else if (ev->type == YAML_MAPPING_START_EVENT)
        v = mapping(y, ev, path, depth);
    else
        v = sequence(y, path, depth);
    if (!v) {
        if (!y->failed) goto oom;
        return NULL;
    }
    if (anchor) {
        y->anchors[slot].v = json_incref(v);
        y->anchors[slot].values = y->values - before;
    }
    return v;
oom:
    fail(y, ev->start_mark, "%s: out of memory", cd_cfg_where(path));
    return NULL;
}

json_t *cd_cfg_yaml_load(const char *text, size_t len, json_t **pos, cd_diag_t *d)
{
    ycx_t y = {.d = d};
    yaml_event_t ev;
    json_t *root = NULL;
    bool have_doc = false;

    *pos = NULL;
    y.pos = json_object();
    if (!y.pos || !yaml_parser_initialize(&y.p)) {
        cd_diag_add(d, "out of memory");
        json_decref(y.pos);
        return NULL;
    }
    yaml_parser_set_input_string(&y.p, (const unsigned char *)text, len);
    while (next(&y, &ev)) {
        yaml_event_type_t t = ev.type;
        if (t == YAML_DOCUMENT_START_EVENT && have_doc) {
            fail(&y, ev.start_mark,
                 "a second YAML document; accepted: one document (no second \"---\") per file");
        } else if (t == YAML_DOCUMENT_START_EVENT) {
            have_doc = true;
            yaml_event_t v;
            if (next(&y, &v)) {
                root = node(&y, &v, "", 0);
                if (root) note(&y, "", v.start_mark, NULL);
                yaml_event_delete(&v);
            }
        }
        yaml_event_delete(&ev);
        if (t == YAML_STREAM_END_EVENT || y.failed) break;
    }
    if (!have_doc && !y.failed) {
        /* An empty file: null, which the validator reports as not an object. */
        root = json_null();
        note(&y, "", (yaml_mark_t){0}, NULL);
    }
    for (size_t i = 0; i < y.nanchors; i++) {
        free(y.anchors[i].name);
        json_decref(y.anchors[i].v);
    }
    free(y.anchors);
    yaml_parser_delete(&y.p);
    if (y.failed || !root) {
        if (!y.failed) cd_diag_add(d, "out of memory");
        json_decref(root);
        json_decref(y.pos);
        return NULL;
    }
    *pos = y.pos;
    return root;
}

/* The position entry for a message's key path, or its nearest ancestor's. */
static const json_t *lookup(const json_t *pos, char *path)
{
    for (;;) {
        const json_t *a = json_object_get(pos, path);
        if (a) return a;
        char *dot = strrchr(path, '.'), *br = strrchr(path, '[');
        char *cut = dot > br ? dot : br;
        if (!cut) return NULL; /* not a key path of this file (e.g. a variable's) */
        *cut = '\0';
    }
}

void cd_cfg_locate(cd_diag_t *d, size_t from, const json_t *pos)
{
    if (!pos || from >= d->len) return;
    size_t n = d->len - from;
    char *tail = malloc(n + 1);
    if (!tail) return; /* the messages stay, without positions */
    memcpy(tail, d->text + from, n + 1);
    int count = d->count;
    d->len = from;
    d->text[from] = '\0';
    for (char *s = tail; *s;) {
        char *nl = strchr(s, '\n');
        if (nl) *nl = '\0';
        char path[CD_CFG_PATH_MAX + 64];
        const char *colon = strstr(s, ": ");
        const json_t *a = NULL;
        if (colon && (size_t)(colon - s) < CD_CFG_PATH_MAX) {
            snprintf(path, sizeof(path), "%.*s", (int)(colon - s), s);
            if (strcmp(path, "top level") == 0) path[0] = '\0';
            /* "<obj>: unknown key "k"": the key's own entry, at the key. */
            bool at_key = false;
            if (strncmp(colon + 2, "unknown key \"", 13) == 0) {
                const char *k = colon + 15, *e = strchr(k, '"');
                if (e && e > k) {
                    char key[CD_CFG_VALUE_MAX + 1];
                    char base[CD_CFG_PATH_MAX];
                    snprintf(key, sizeof(key), "%.*s", (int)(e - k), k);
                    snprintf(base, sizeof(base), "%s", path);
                    cd_cfg_path_key(path, CD_CFG_PATH_MAX, base, key);
                    at_key = json_object_get(pos, path) != NULL;
                    if (!at_key) snprintf(path, sizeof(path), "%s", base);
                }
            }
            a = lookup(pos, path);
            if (a && at_key && json_array_size(a) == 4) {
                cd_diag_add(d, "line %lld, column %lld: %s",
                            (long long)json_integer_value(json_array_get(a, 2)),
                            (long long)json_integer_value(json_array_get(a, 3)), s);
                goto next;
            }
        }
        if (a)
            cd_diag_add(d, "line %lld, column %lld: %s",
                        (long long)json_integer_value(json_array_get(a, 0)),
                        (long long)json_integer_value(json_array_get(a, 1)), s);
        else
            cd_diag_add(d, "%s", s);
    next:
        if (!nl) break;
        s = nl + 1;
    }
    d->count = count;
    free(tail);
}
