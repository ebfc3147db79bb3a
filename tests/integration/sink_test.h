/*
 * sink_test.h - helpers shared by the sink integration suites: a scratch
 * folder per test, a config with a "sinks" section, verdict records, a
 * captured diagnostics log, reading files, waiting with a deadline; for the
 * suites that drive one sink's ops directly (test_kafka_sink,
 * test_redis_sink), the sink made from a JSON entry and the record and
 * message handed to it.
 *
 * Header-only (static inline) because only test_*.c files become binaries.
 */
#ifndef CANARYD_TEST_SINK_TEST_H
#define CANARYD_TEST_SINK_TEST_H

#include <criterion/criterion.h>
#include <ftw.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../wait_helpers.h"
#include "canaryd/config.h"
#include "canaryd/dispatcher.h"
#include "canaryd/log.h"
#include "canaryd/sink.h"
#include "canaryd/verdict_fmt.h"

static char st_dir[256];
static FILE *st_log;

static inline int64_t st_now_ms(void)
{
    return mono_ms();
}

static inline const char *st_path(const char *name)
{
    static char buf[4][512];
    static int k;
    char *p = buf[k++ & 3];
    snprintf(p, 512, "%s/%s", st_dir, name);
    return p;
}

/* Scratch folder; diagnostics go to <dir>/log (read with st_log_text). */
static inline void st_setup(void)
{
    snprintf(st_dir, sizeof(st_dir), "/tmp/canaryd-sinks-XXXXXX");
    cr_assert_not_null(mkdtemp(st_dir));
    st_log = fopen(st_path("log"), "w+");
    cr_assert_not_null(st_log);
    setvbuf(st_log, NULL, _IONBF, 0);
    cd_log_reset();
    cd_log_set_level(CD_LOG_INFO);
    cd_log_set_stream(st_log);
}

static inline int st_rm(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static inline void st_teardown(void)
{
    cd_log_set_stream(NULL);
    if (st_log) fclose(st_log);
    st_log = NULL;
    nftw(st_dir, st_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* Whole file as a malloc'ed string ("" if missing). */
static inline char *st_read(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = '\0';
    fclose(f);
    return s;
}

/* The diagnostics so far (only once no other thread logs: after destroy). */
static inline char *st_log_text(void)
{
    return st_read(st_path("log"));
}

static inline void st_write(const char *name, const char *text, int mode)
{
    FILE *f = fopen(st_path(name), "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    chmod(st_path(name), (mode_t)mode);
}

/* A one-rule config (rule "errors", an alert; "error-rate" would need more
 * keys) with the given "sinks" section (JSON text, or NULL). */
static inline cd_config_t *st_config(const char *sinks, cd_diag_t *d)
{
    char text[16384];
    snprintf(text, sizeof(text),
             "{\"rules\":[{\"name\":\"errors\",\"kind\":\"threshold\",\"numerator\":"
             "[\"ERROR_OCCURRED\"],\"op\":\">\",\"threshold\":0,\"window\":60000,"
             "\"action\":\"alert\"},{\"name\":\"fatal\",\"kind\":\"threshold\",\"numerator\":"
             "[\"FATAL\"],\"op\":\">\",\"threshold\":0,\"window\":60000,\"action\":\"rollback\"}]"
             "%s%s}",
             sinks ? ",\"sinks\":" : "", sinks ? sinks : "");
    cd_diag_init(d);
    return cd_config_parse(text, strlen(text), NULL, d);
}

/* Builds (and starts) a dispatcher from a sinks section; asserts it is valid. */
static inline cd_dispatcher_t *st_dispatcher(const char *sinks, bool start)
{
    static cd_diag_t d;
    cd_config_t *c = st_config(sinks, &d);
    cr_assert_not_null(c, "config: %s", d.text);
    cd_dispatcher_t *x = cd_dispatcher_new(c, &d);
    cr_assert_not_null(x, "sinks: %s", d.text);
    cd_config_free(c);
    char err[256];
    if (start) cr_assert_eq(cd_dispatcher_start(x, err, sizeof(err)), 0, "%s", err);
    return x;
}

static inline cd_verdict_t st_verdict(cd_verdict_kind_t k, const char *rule, cd_action_t a,
                                      int64_t t_s)
{
    cd_verdict_t v;
    memset(&v, 0, sizeof(v));
    v.record = CD_RECORD_VERDICT;
    v.time_ms = 1795780800000 + t_s * 1000; /* 2026-11-27T12:00:00Z + t_s */
    v.verdict = k;
    v.rule = rule;
    v.rule_kind = rule ? "threshold" : NULL;
    v.action = a;
    v.release = "2.5.0";
    v.threshold = rule ? 0 : __builtin_nan("");
    v.window_ms = rule ? 60000 : 0;
    snprintf(v.reason, sizeof(v.reason), "%s at +%llds", cd_verdict_kind_name(k), (long long)t_s);
    snprintf(v.todo, sizeof(v.todo), "%s", k == CD_VERDICT_ROLLBACK ? "Roll back now." : "");
    return v;
}

static inline cd_verdict_t st_state(const char *rule, cd_action_t a, cd_rule_state_t from,
                                    cd_rule_state_t to, int64_t t_s)
{
    cd_verdict_t v = st_verdict(CD_VERDICT_HEALTHY, rule, a, t_s);
    v.record = CD_RECORD_STATE;
    v.from = from;
    v.to = to;
    snprintf(v.reason, sizeof(v.reason), "%s %s -> %s at +%llds", rule, cd_rule_state_name(from),
             cd_rule_state_name(to), (long long)t_s);
    return v;
}

/* The JSON line of v with a newline (static buffer). */
static inline const char *st_json(const cd_verdict_t *v)
{
    static char buf[8][4200];
    static int k;
    char *b = buf[k++ & 7];
    int n = cd_verdict_to_json(v, b, 4096);
    cr_assert_gt(n, 0);
    b[n] = '\n';
    b[n + 1] = '\0';
    return b;
}

static inline cd_sink_stats_t st_stats(cd_dispatcher_t *d, int i)
{
    cd_sink_stats_t s[16];
    int n = cd_dispatcher_stats(d, s, 16);
    cr_assert_lt(i, n);
    return s[i];
}

/* ---- one sink's ops, driven directly ------------------------------------ */

/* ops->init on the JSON entry printf'ed from fmt, as if at key path (e.g.
 * "sinks.outputs[0]"): the sink, or NULL with the problems in *d. */
static inline void *st_sink_vinit(const struct cd_sink_ops *ops, const char *path, cd_diag_t *d,
                                  const char *fmt, va_list ap)
{
    char text[2048];
    vsnprintf(text, sizeof(text), fmt, ap);
    json_error_t je;
    json_t *conf = json_loads(text, 0, &je);
    cr_assert_not_null(conf, "test config: %s", je.text);
    cd_diag_init(d);
    void *s = ops->init(conf, path, d);
    json_decref(conf);
    return s;
}

/* The sink made from the entry (see st_sink_vinit); it must be accepted
 * without a problem. */
static inline void *st_sink_new(const struct cd_sink_ops *ops, const char *path, const char *fmt,
                                ...)
{
    cd_diag_t d;
    va_list ap;
    va_start(ap, fmt);
    void *s = st_sink_vinit(ops, path, &d, fmt, ap);
    va_end(ap);
    cr_assert_not_null(s, "init: %s", d.text);
    cr_assert_eq(d.count, 0);
    return s;
}

/* The problems (static text) for which the entry is refused; it must be. */
static inline const char *st_sink_refused(const struct cd_sink_ops *ops, const char *path,
                                          const char *fmt, ...)
{
    static cd_diag_t d;
    va_list ap;
    va_start(ap, fmt);
    void *s = st_sink_vinit(ops, path, &d, fmt, ap);
    va_end(ap);
    cr_assert_null(s);
    cr_assert_gt(d.count, 0);
    return d.text;
}

/* A record, its JSON line and the message a sink is handed. */
typedef struct st_rec {
    cd_verdict_t v;
    char json[4096];
    cd_sink_msg_t m;
} st_rec_t;

/* The error-rate ROLLBACK verdict of release the direct sink tests deliver
 * (a relative rule: canary 2.39 % of 1214, stable 0.98 %, threshold
 * 1.96 %); the caller may change r->v, then st_rec_seal. */
static inline void st_rec_fill(st_rec_t *r, const char *release)
{
    memset(r, 0, sizeof(*r));
    r->v.record = CD_RECORD_VERDICT;
    r->v.time_ms = 1795780164000LL; /* 2026-11-27T12:09:24Z */
    r->v.verdict = CD_VERDICT_ROLLBACK;
    r->v.rule = "error-rate";
    r->v.rule_kind = "relative";
    r->v.action = CD_ACTION_ROLLBACK;
    r->v.release = release;
    r->v.canary = (cd_obs_t){true, 0.0239, 29, 1214};
    r->v.stable = (cd_obs_t){true, 0.0098, 225, 22964};
    r->v.stable_source = "stable";
    r->v.threshold = 0.0196;
    r->v.window_ms = 60000;
    r->v.for_ms = 300000;
    snprintf(r->v.reason, sizeof(r->v.reason), "canary error-rate 2.39%% > 1.96%%");
    snprintf(r->v.todo, sizeof(r->v.todo), "Roll back.");
}

/* Renders r->v into r->json and makes the message: id, the service named
 * to the sink, first attempt. */
static inline void st_rec_seal(st_rec_t *r, uint64_t id, const char *service)
{
    int n = cd_verdict_to_json(&r->v, r->json, sizeof(r->json));
    cr_assert_gt(n, 0);
    r->m = (cd_sink_msg_t){.id = id,
                           .v = &r->v,
                           .json = r->json,
                           .json_len = (size_t)n,
                           .service = service,
                           .attempt = 1};
}

static inline int st_count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

#endif
