/*
 * config_http.c - the "http" section of the config (see http_api.h and
 * docs/http-api.md):
 *   {"bind": "HOST:PORT", "token": "...", "token_file": "...", "max_lag": N}
 * Present = the API runs. HOST is a numeric IPv4 address (a name would need
 * a resolver at start and hides what is exposed); PORT 0 picks a free one.
 * The token is a secret: messages about it never show its value, and a
 * token_file is read once here, its trailing newline dropped.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canaryd/http_api.h"
#include "config_internal.h"

static const char *const KNOWN[] = {"bind", "token", "token_file", "max_lag", NULL};

static void parse_bind(cd_cfgctx_t *x, const json_t *v, cd_http_conf_t *hc)
{
    static const char *const ACC =
        "\"HOST:PORT\" with a numeric IPv4 HOST and PORT 0..65535 (0 = any free port), "
        "e.g. \"127.0.0.1:8686\" or \"0.0.0.0:8686\"";
    char buf[256];
    if (!cd_cfg_string(x, "http.bind", v, buf, sizeof(buf), false, ACC)) return;
    char *colon = strrchr(buf, ':');
    struct in_addr a;
    char *end = NULL;
    long port = -1;
    if (colon) {
        *colon = '\0';
        if (isdigit((unsigned char)colon[1])) port = strtol(colon + 1, &end, 10);
    }
    if (!colon || !end || *end || port < 0 || port > 65535 || inet_pton(AF_INET, buf, &a) != 1) {
        cd_cfg_bad(x, "http.bind", v, "is not HOST:PORT", ACC);
        return;
    }
    snprintf(hc->host, sizeof(hc->host), "%s", buf);
    hc->port = (int)port;
    hc->loopback = (ntohl(a.s_addr) >> 24) == 127;
}

/* A usable bearer token: 1..255 visible ASCII characters. */
static bool token_ok(const char *t, size_t n)
{
    if (n == 0 || n > 255) return false;
    for (size_t i = 0; i < n; i++)
        if (t[i] <= ' ' || t[i] > '~') return false;
    return true;
}

static const char *TOKEN_ACC = "1 to 255 visible ASCII characters (no spaces)";

static void parse_token(cd_cfgctx_t *x, const json_t *v, cd_http_conf_t *hc)
{
    const char *t = json_string_value(v);
    if (!t || !token_ok(t, json_string_length(v))) {
        /* Never render the value: it is (meant to be) a secret. */
        cd_diag_add(x->d, "http.token: (value hidden) is not accepted; accepted: %s", TOKEN_ACC);
        return;
    }
    snprintf(hc->token, sizeof(hc->token), "%s", t);
}

static void parse_token_file(cd_cfgctx_t *x, const json_t *v, cd_http_conf_t *hc)
{
    char path[1024], err[256];
    char *text = NULL;
    size_t len = 0;
    if (!cd_cfg_string(x, "http.token_file", v, path, sizeof(path), false,
                       "the path of a file holding the token"))
        return;
    if (cd_cfg_read_file(path, 4096, &text, &len, err, sizeof(err)) != 0) {
        char r[CD_CFG_VALUE_MAX + 8];
        cd_cfg_render_str(path, r, sizeof(r));
        cd_diag_add(x->d, "http.token_file: %s: %s; accepted: a readable file holding the token", r,
                    err);
        return;
    }
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    if (!token_ok(text, len))
        cd_diag_add(x->d,
                    "http.token_file: the file's content (hidden) is not a token; accepted: %s "
                    "and a trailing newline",
                    TOKEN_ACC);
    else
        snprintf(hc->token, sizeof(hc->token), "%s", text);
    free(text);
}

bool cd_http_conf_parse(const cd_config_t *cfg, cd_http_conf_t *hc, cd_diag_t *diag)
{
    cd_cfgctx_t x = {.c = (cd_config_t *)cfg, .d = diag};
    const json_t *h = cfg->http_json;
    int before = diag->count;
    json_t *v;

    memset(hc, 0, sizeof(*hc));
    snprintf(hc->host, sizeof(hc->host), "127.0.0.1");
    hc->port = CD_HTTP_DEFAULT_PORT;
    hc->loopback = true;
    hc->max_lag = CD_HTTP_DEFAULT_MAX_LAG;
    if (!h) return true;
    hc->enabled = true;
    cd_cfg_check_keys(&x, "http", h, KNOWN);
    if ((v = json_object_get(h, "bind"))) parse_bind(&x, v, hc);
    json_t *tok = json_object_get(h, "token"), *tf = json_object_get(h, "token_file");
    if (tok && tf)
        cd_diag_add(diag, "http: both \"token\" and \"token_file\" are given; accepted: one of "
                          "them");
    else if (tok)
        parse_token(&x, tok, hc);
    else if (tf)
        parse_token_file(&x, tf, hc);
    if ((v = json_object_get(h, "max_lag"))) {
        double d = 0;
        if (!json_is_integer(v))
            cd_cfg_bad(&x, "http.max_lag", v, "is not an integer",
                       "an integer >= 0 (messages behind per partition)");
        else if (cd_cfg_number(&x, "http.max_lag", v, 0, false, NAN, false, &d))
            hc->max_lag = (int64_t)d;
    }
    return diag->count == before;
}
