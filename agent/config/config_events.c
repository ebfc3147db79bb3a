/*
 * config_events.c - the "events" section: where the decoder finds each
 * field of an event, the cohort values, the numeric fields (histograms) and
 * the event type catalog, which rules extend through cd_cfg_type_intern().
 *
 * The decoder's strings (cd_decode_conf_t) point into cd_config_t's own
 * arrays, filled with event.h's defaults first so an absent key keeps its
 * default and a present one replaces it. Start-up only, single-threaded.
 */
#include <stddef.h>
#include <string.h>

#include "config_internal.h"

static const char *const EVENTS_KEYS[] = {"type_field",    "time_field",     "cohort_field",
                                          "canary_value",  "stable_value",   "version_field",
                                          "service_field", "canary_version", "service",
                                          "types",         "numeric_fields", NULL};

#define PATH_ACCEPTED "a dot path such as \"data.latency_ms\""

/* The seven strings of cd_decode_conf_t that live in cd_config_t.paths[]. */
static const struct {
    const char *key;
    size_t off; /* of the const char * in cd_decode_conf_t */
    bool is_path;
} FIELDS[7] = {
    {"type_field", offsetof(cd_decode_conf_t, type_path), true},
    {"time_field", offsetof(cd_decode_conf_t, time_path), true},
    {"cohort_field", offsetof(cd_decode_conf_t, cohort_path), true},
    {"canary_value", offsetof(cd_decode_conf_t, canary_value), false},
    {"stable_value", offsetof(cd_decode_conf_t, stable_value), false},
    {"version_field", offsetof(cd_decode_conf_t, version_path), true},
    {"service_field", offsetof(cd_decode_conf_t, service_path), true},
};

static const char **field_slot(cd_decode_conf_t *dc, int i)
{
    return (const char **)((char *)dc + FIELDS[i].off);
}

/* "a.b.c": non-empty segments separated by single dots. */
static bool is_dot_path(const char *s)
{
    if (!*s || *s == '.') return false;
    for (; *s; s++)
        if (*s == '.' && (s[1] == '.' || s[1] == '\0')) return false;
    return true;
}

int cd_cfg_type_intern(cd_cfgctx_t *x, const char *path, const json_t *v, const char *name)
{
    cd_config_t *c = x->c;
    for (int i = 0; i < c->decode.ntypes; i++)
        if (strcmp(c->type_names[i], name) == 0) return i;
    if (c->decode.ntypes == CD_MAX_TYPES) {
        if (!x->catalog_overflow) {
            char problem[64];
            snprintf(problem, sizeof(problem), "would be event type %d", CD_MAX_TYPES + 1);
            cd_cfg_bad(x, path, v, problem,
                       "at most 32 distinct event types, counting events.types and every "
                       "type a rule names");
            x->catalog_overflow = true;
        }
        return -1;
    }
    int id = c->decode.ntypes++;
    snprintf(c->type_names[id], CD_NAME_MAX, "%s", name);
    c->decode.types[id] = c->type_names[id];
    return id;
}

static void parse_types(cd_cfgctx_t *x, const json_t *arr)
{
    char path[CD_CFG_PATH_MAX], name[CD_NAME_MAX];
    size_t i;
    json_t *v;

    if (!json_is_array(arr)) {
        cd_cfg_bad(x, "events.types", arr, "is not an array",
                   "an array of unique event type names such as [\"ERROR_OCCURRED\"]");
        return;
    }
    json_array_foreach(arr, i, v)
    {
        cd_cfg_path_index(path, sizeof(path), "events.types", i);
        if (!cd_cfg_string(x, path, v, name, sizeof(name), false,
                           "an event type name such as \"ERROR_OCCURRED\""))
            continue;
        int before = x->c->decode.ntypes;
        int id = cd_cfg_type_intern(x, path, v, name);
        if (id >= 0 && id < before) {
            char problem[96];
            snprintf(problem, sizeof(problem), "is listed twice (also events.types[%d])", id);
            cd_cfg_bad(x, path, v, problem, "each type name once");
        }
    }
}

static void parse_numeric(cd_cfgctx_t *x, const json_t *obj)
{
    cd_config_t *c = x->c;
    char path[CD_CFG_PATH_MAX];
    const char *key;
    json_t *v;

    if (!cd_cfg_object(x, "events.numeric_fields", obj,
                       "an object of name -> dot path, such as {\"latency_ms\": "
                       "\"data.latency_ms\"}"))
        return;
    if (json_object_size(obj) > CD_MAX_NUMERIC) {
        char problem[64];
        snprintf(problem, sizeof(problem), "has %zu fields", json_object_size(obj));
        cd_cfg_bad(x, "events.numeric_fields", obj, problem, "at most 4 numeric fields");
    }
    json_object_foreach((json_t *)obj, key, v)
    {
        cd_cfg_path_key(path, sizeof(path), "events.numeric_fields", key);
        if (c->decode.nnumeric == CD_MAX_NUMERIC) break;
        if (!*key || strlen(key) >= CD_NAME_MAX) {
            cd_diag_add(x->d, "%s: field name is %s; accepted: a name of 1 to %d bytes", path,
                        *key ? "too long" : "empty", CD_NAME_MAX - 1);
            continue;
        }
        int n = c->decode.nnumeric;
        if (!cd_cfg_string(x, path, v, c->numeric_paths[n], sizeof(c->numeric_paths[n]), false,
                           PATH_ACCEPTED))
            continue;
        if (!is_dot_path(c->numeric_paths[n])) {
            cd_cfg_bad(x, path, v, "is not a dot path", PATH_ACCEPTED);
            continue;
        }
        snprintf(c->numeric_names[n], CD_NAME_MAX, "%s", key);
        c->decode.numeric_paths[n] = c->numeric_paths[n];
        c->decode.nnumeric++;
    }
}

#define SERVICE_ACCEPTED                                                                           \
    "the name of the one service to judge, as its events write it (1 to 63 bytes, no quote, "      \
    "backslash or control character), such as \"checkout\"; leave the key out to judge every "     \
    "event"

/* events.service: compared raw with the event's service string (JSON
 * escapes are not decoded, see agent/decode/decode.c), so a name that would need
 * one could never match and is refused here instead. */
static void parse_service(cd_cfgctx_t *x, const json_t *v)
{
    cd_config_t *c = x->c;
    if (!cd_cfg_string(x, "events.service", v, c->service, sizeof(c->service), false,
                       SERVICE_ACCEPTED))
        return;
    for (const char *s = c->service; *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20) {
            cd_cfg_bad(x, "events.service", v, "holds a character JSON must escape",
                       SERVICE_ACCEPTED);
            c->service[0] = '\0';
            return;
        }
}

void cd_cfg_parse_events(cd_cfgctx_t *x, const json_t *ev)
{
    cd_config_t *c = x->c;
    char path[CD_CFG_PATH_MAX];
    json_t *v;

    if (ev && cd_cfg_object(x, "events", ev, "an object with the keys of docs/config.md"))
        cd_cfg_check_keys(x, "events", ev, EVENTS_KEYS);
    else
        ev = NULL;

    for (int i = 0; i < 7; i++) {
        v = ev ? json_object_get(ev, FIELDS[i].key) : NULL;
        if (!v) continue;
        snprintf(path, sizeof(path), "events.%s", FIELDS[i].key);
        /* cohort_field "" means: derive the cohort from the version. */
        bool allow_empty = i == 2;
        const char *acc = FIELDS[i].is_path ? PATH_ACCEPTED : "a non-empty string";
        if (!cd_cfg_string(x, path, v, c->paths[i], sizeof(c->paths[i]), allow_empty, acc))
            continue;
        if (FIELDS[i].is_path && c->paths[i][0] && !is_dot_path(c->paths[i]))
            cd_cfg_bad(x, path, v, "is not a dot path", PATH_ACCEPTED);
    }
    if ((v = ev ? json_object_get(ev, "canary_version") : NULL))
        cd_cfg_string(x, "events.canary_version", v, c->canary_version, sizeof(c->canary_version),
                      true, "the canary's version string");
    c->decode.canary_version = c->canary_version[0] ? c->canary_version : NULL;
    if ((v = ev ? json_object_get(ev, "service") : NULL)) parse_service(x, v);
    c->decode.service = c->service[0] ? c->service : NULL;

    if (strcmp(c->paths[3], c->paths[4]) == 0) {
        char r[CD_CFG_VALUE_MAX + 8];
        cd_cfg_render_str(c->paths[4], r, sizeof(r));
        cd_diag_add(x->d,
                    "events.stable_value: %s equals events.canary_value; accepted: a value "
                    "that tells stable events from canary ones",
                    r);
    }
    if (!c->paths[2][0] && !c->canary_version[0])
        cd_diag_add(x->d, "events.cohort_field: \"\" derives the cohort from the version, but "
                          "events.canary_version is not set; accepted: a cohort field, or "
                          "events.canary_version too");

    if ((v = ev ? json_object_get(ev, "types") : NULL)) parse_types(x, v);
    if ((v = ev ? json_object_get(ev, "numeric_fields") : NULL)) parse_numeric(x, v);
}

void cd_cfg_events_defaults(cd_config_t *c)
{
    cd_decode_conf_init(&c->decode);
    for (int i = 0; i < 7; i++) {
        const char **slot = field_slot(&c->decode, i);
        snprintf(c->paths[i], sizeof(c->paths[i]), "%s", *slot ? *slot : "");
        *slot = c->paths[i];
    }
    c->decode.canary_version = NULL;
    c->decode.ntypes = 0;
    c->decode.nnumeric = 0;
}
