/*
 * config_coord.c - the "coordination" section of the config (see coord.h and
 * docs/operations.md, "Running several agents"):
 *   {"redis": "HOST:PORT", "prefix": "...", "lease": "10s",
 *    "fallback_after": "20s", "claim_retention": "1h", "agent_id": "...",
 *    "password" | "password_file" | "password_env": "..."}
 * Present = the agents sharing redis + prefix elect one notifier. The
 * password is a secret: its _file / _env forms are resolved by
 * config_secrets.c, and messages about it never show its value.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "canaryd/coord.h"
#include "config_internal.h"

static const char *const KNOWN[] = {"redis",    "prefix",   "lease",           "fallback_after",
                                    "claim_retention", "agent_id", "password", NULL};

static void parse_redis(cd_cfgctx_t *x, const json_t *v, cd_coord_conf_t *cc)
{
    static const char *const ACC = "\"HOST:PORT\" with PORT 1..65535, e.g. \"redis:6379\"";
    char buf[300];
    if (!cd_cfg_string(x, "coordination.redis", v, buf, sizeof(buf), false, ACC)) return;
    char *colon = strrchr(buf, ':'), *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == buf || !end || end == colon + 1 || *end || port < 1 || port > 65535 ||
        (size_t)(colon - buf) >= sizeof(cc->host)) {
        cd_cfg_bad(x, "coordination.redis", v, "is not HOST:PORT", ACC);
        return;
    }
    memcpy(cc->host, buf, (size_t)(colon - buf));
    cc->host[colon - buf] = '\0';
    cc->port = (int)port;
}

/* A key prefix / agent id: 1..n-1 visible ASCII characters, no spaces
 * (the lease value is "<agent_id> <token>"). */
static void parse_word(cd_cfgctx_t *x, const char *path, const json_t *v, char *dst, size_t n)
{
    char acc[96];
    snprintf(acc, sizeof(acc), "1 to %zu visible ASCII characters (no spaces)", n - 1);
    const char *s = json_string_value(v);
    size_t len = s ? strlen(s) : 0;
    bool ok = s && len > 0 && len < n;
    for (size_t i = 0; ok && i < len; i++)
        ok = s[i] > ' ' && s[i] <= '~';
    if (!ok) {
        cd_cfg_bad(x, path, v, s ? "is not a usable name" : "is not a string", acc);
        return;
    }
    snprintf(dst, n, "%s", s);
}

static void parse_ms(cd_cfgctx_t *x, const json_t *sec, const char *key, int64_t lo, int64_t *ms)
{
    char path[64];
    json_t *v = json_object_get(sec, key);
    int64_t got = 0;
    snprintf(path, sizeof(path), "coordination.%s", key);
    if (!v || !cd_cfg_duration(x, path, v, &got)) return;
    if (got < lo) {
        char acc[96];
        snprintf(acc, sizeof(acc), "a duration of at least %lld ms", (long long)lo);
        cd_cfg_bad(x, path, v, "is too short", acc);
        return;
    }
    *ms = got;
}

bool cd_coord_conf_parse(const cd_config_t *cfg, cd_coord_conf_t *cc, cd_diag_t *diag)
{
    cd_cfgctx_t x = {.c = (cd_config_t *)cfg, .d = diag};
    const json_t *sec = cfg->coord_json;
    int before = diag->count;
    json_t *v;

    memset(cc, 0, sizeof(*cc));
    snprintf(cc->prefix, sizeof(cc->prefix), "canaryd");
    cc->lease_ms = CD_COORD_DEFAULT_LEASE_MS;
    cc->retention_ms = CD_COORD_DEFAULT_RETENTION_MS;
    if (!sec) return true;
    cc->enabled = true;
    cd_cfg_check_keys(&x, "coordination", sec, KNOWN);
    if ((v = json_object_get(sec, "redis")))
        parse_redis(&x, v, cc);
    else
        cd_diag_add(diag, "coordination: missing required key \"redis\"; accepted: \"HOST:PORT\" "
                          "of the Redis the agents share");
    if ((v = json_object_get(sec, "prefix")))
        parse_word(&x, "coordination.prefix", v, cc->prefix, sizeof(cc->prefix));
    parse_ms(&x, sec, "lease", 300, &cc->lease_ms);
    cc->fallback_ms = 2 * cc->lease_ms;
    parse_ms(&x, sec, "fallback_after", 0, &cc->fallback_ms);
    parse_ms(&x, sec, "claim_retention", 60000, &cc->retention_ms);
    if ((v = json_object_get(sec, "agent_id"))) {
        parse_word(&x, "coordination.agent_id", v, cc->agent_id, sizeof(cc->agent_id));
    } else {
        /* the pod's name in Kubernetes; a random suffix keeps two agents of
         * one host (or a restarted one, pid 1 again) apart */
        char host[64] = "";
        const char *h = getenv("HOSTNAME");
        if (h && *h)
            snprintf(host, sizeof(host), "%s", h);
        else if (gethostname(host, sizeof(host) - 1) != 0 || !*host)
            snprintf(host, sizeof(host), "agent");
        for (char *p = host; *p; p++)
            if (*p <= ' ' || *p > '~') *p = '_';
        snprintf(cc->agent_id, sizeof(cc->agent_id), "%s-%ld-%04x", host, (long)getpid(),
                 (unsigned)(arc4random() & 0xffff));
    }
    if ((v = json_object_get(sec, "password"))) {
        const char *s = json_string_value(v);
        if (!s || !*s || strlen(s) >= sizeof(cc->password))
            cd_diag_add(diag, "coordination.password: (value not shown) is not a usable "
                              "password; accepted: a string of 1 to 255 bytes");
        else
            snprintf(cc->password, sizeof(cc->password), "%s", s);
    }
    return diag->count == before;
}
