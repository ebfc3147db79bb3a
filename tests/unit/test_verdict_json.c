/*
 * test_verdict_json.c - the verdict log's JSON line and the human line made
 * from it, byte for byte.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "canaryd/verdict_fmt.h"

/* 2026-11-27T12:05:30.000Z */
#define T0 1795781130000LL

static cd_verdict_t rollback_record(void)
{
    cd_verdict_t v;
    memset(&v, 0, sizeof(v));
    v.record = CD_RECORD_VERDICT;
    v.time_ms = T0;
    v.verdict = CD_VERDICT_ROLLBACK;
    v.rule = "error-rate";
    v.rule_kind = "relative";
    v.action = CD_ACTION_ROLLBACK;
    v.release = "2.5.0";
    v.canary = (cd_obs_t){true, 0.0305, 61, 2000};
    v.stable = (cd_obs_t){true, 0.01, 80, 8000};
    v.stable_source = "stable";
    v.threshold = 0.02;
    v.window_ms = 60000;
    v.for_ms = 300000;
    snprintf(v.reason, sizeof(v.reason),
             "canary error rate 3.05%% (61/2000) > 2.0 x stable 1.00%% (80/8000) for 5m");
    snprintf(v.todo, sizeof(v.todo), "Roll back: error rate above 2x baseline.");
    return v;
}

static cd_verdict_t state_record(void)
{
    cd_verdict_t v;
    memset(&v, 0, sizeof(v));
    v.record = CD_RECORD_STATE;
    v.time_ms = T0 + 1500;
    v.from = CD_STATE_INACTIVE;
    v.to = CD_STATE_PENDING;
    v.rule = "payment-success";
    v.rule_kind = "threshold";
    v.action = CD_ACTION_ROLLBACK;
    v.dry_run = true;
    v.release = "";
    v.canary = (cd_obs_t){true, 0.9, 180, 200};
    v.stable = (cd_obs_t){false, 0, 0, 0};
    v.stable_source = NULL;
    v.threshold = 0.95;
    v.window_ms = 300000;
    v.for_ms = 60000;
    snprintf(v.reason, sizeof(v.reason), "canary payment success 90.00%% \"low\" < 95%%");
    return v;
}

Test(verdict_json, verdict_record_every_key)
{
    cd_verdict_t v = rollback_record();
    v.service = "checkout";
    char buf[4096];
    int n = cd_verdict_to_json(&v, buf, sizeof(buf));
    const char *want =
        "{\"time\":\"2026-11-27T12:05:30.000Z\",\"kind\":\"verdict\",\"verdict\":\"ROLLBACK\","
        "\"rule\":\"error-rate\",\"rule_kind\":\"relative\",\"action\":\"rollback\","
        "\"dry_run\":false,\"release\":\"2.5.0\",\"service\":\"checkout\",\"reason\":\"canary "
        "error rate 3.05% (61/2000) "
        "> 2.0 x stable 1.00% (80/8000) for 5m\",\"todo\":\"Roll back: error rate above 2x "
        "baseline.\",\"observed\":{\"canary\":{\"value\":0.0305,\"numerator\":61,\"samples\":2000},"
        "\"stable\":{\"value\":0.01,\"numerator\":80,\"samples\":8000},\"stable_source\":"
        "\"stable\"},"
        "\"threshold\":0.02,\"window\":\"1m\",\"for\":\"5m\"}";
    cr_assert_str_eq(buf, want);
    cr_assert_eq(n, (int)strlen(want));
}

Test(verdict_json, catchup_record_marked_last)
{
    cd_verdict_t v = state_record();
    char plain[4096], marked[4096];
    cd_verdict_to_json(&v, plain, sizeof(plain));
    cr_assert_null(strstr(plain, "catchup"));
    v.catchup = true;
    int n = cd_verdict_to_json(&v, marked, sizeof(marked));
    /* the same line with one key more before the closing brace */
    size_t len = strlen(plain);
    cr_assert_eq(n, (int)(len + strlen(",\"catchup\":true")));
    cr_assert_eq(memcmp(plain, marked, len - 1), 0);
    cr_assert_str_eq(marked + len - 1, ",\"catchup\":true}");
}

Test(verdict_json, state_record_every_key)
{
    cd_verdict_t v = state_record();
    char buf[4096];
    cr_assert_gt(cd_verdict_to_json(&v, buf, sizeof(buf)), 0);
    cr_assert_str_eq(
        buf,
        "{\"time\":\"2026-11-27T12:05:31.500Z\",\"kind\":\"state\",\"from\":\"inactive\","
        "\"to\":\"pending\",\"rule\":\"payment-success\",\"rule_kind\":\"threshold\","
        "\"action\":\"rollback\",\"dry_run\":true,\"release\":\"\",\"service\":\"\",\"reason\":"
        "\"canary payment "
        "success 90.00% \\\"low\\\" < 95%\",\"todo\":\"\",\"observed\":{\"canary\":{\"value\":0.9,"
        "\"numerator\":180,\"samples\":200},\"stable\":null,\"stable_source\":null},"
        "\"threshold\":0.95,\"window\":\"5m\",\"for\":\"1m\"}");
}

Test(verdict_json, release_wide_nan_and_inf_become_null)
{
    cd_verdict_t v;
    memset(&v, 0, sizeof(v));
    v.record = CD_RECORD_VERDICT;
    v.time_ms = T0;
    v.verdict = CD_VERDICT_HEALTHY;
    v.release = "2.5.0";
    v.canary = (cd_obs_t){true, NAN, 0, 0};
    v.stable = (cd_obs_t){true, INFINITY, 3, 0};
    v.threshold = NAN;
    snprintf(v.reason, sizeof(v.reason), "every rule has enough data and none is firing");
    char buf[4096];
    cr_assert_gt(cd_verdict_to_json(&v, buf, sizeof(buf)), 0);
    cr_assert_str_eq(
        buf,
        "{\"time\":\"2026-11-27T12:05:30.000Z\",\"kind\":\"verdict\",\"verdict\":\"HEALTHY\","
        "\"rule\":null,\"rule_kind\":null,\"action\":null,\"dry_run\":false,"
        "\"release\":\"2.5.0\",\"service\":\"\",\"reason\":\"every rule has enough data and none "
        "is firing\","
        "\"todo\":\"\",\"observed\":{\"canary\":{\"value\":null,\"numerator\":0,\"samples\":0},"
        "\"stable\":{\"value\":null,\"numerator\":3,\"samples\":0},\"stable_source\":null},"
        "\"threshold\":null,\"window\":null,\"for\":null}");
}

/* A line parsed back renders as the same line (the ledger re-offers a
 * decision after a restart from its JSON); what is not a record is refused
 * with a reason. */
Test(verdict_json, parsed_back_renders_the_same_line)
{
    cd_verdict_t recs[3] = {rollback_record(), state_record(), rollback_record()};
    recs[2].verdict = CD_VERDICT_HEALTHY;
    recs[2].rule = recs[2].rule_kind = NULL;
    recs[2].stable_source = NULL;
    recs[2].window_ms = recs[2].for_ms = 0;
    recs[2].threshold = NAN;
    recs[2].canary = (cd_obs_t){true, NAN, 0, 0};
    recs[2].service = "checkout";
    recs[1].catchup = true;
    for (int i = 0; i < 3; i++) {
        char a[4096], b[4096], err[128];
        int n = cd_verdict_to_json(&recs[i], a, sizeof(a));
        cr_assert_gt(n, 0);
        cd_verdict_parsed_t p;
        cr_assert(cd_verdict_from_json(a, (size_t)n, &p, err, sizeof(err)), "%s", err);
        cr_assert_gt(cd_verdict_to_json(&p.v, b, sizeof(b)), 0);
        cr_expect_str_eq(b, a);
    }
    char err[128];
    cd_verdict_parsed_t p;
    cr_expect_not(cd_verdict_from_json("{\"time\":\"x\"}", 12, &p, err, sizeof(err)));
    cr_expect_str_eq(err, "not a verdict record: no RFC 3339 \"time\"");
    const char *k = "{\"time\":\"2026-11-27T12:05:30.000Z\",\"kind\":\"verdict\",\"verdict\":\"MAYBE\"}";
    cr_expect_not(cd_verdict_from_json(k, strlen(k), &p, err, sizeof(err)));
    cr_expect_str_eq(err, "not a verdict record: unknown \"verdict\"");
}

Test(verdict_json, invalid_utf8_release_kept_as_question_marks)
{
    cd_verdict_t v = rollback_record();
    v.release = "2.5.0-\xc3"; /* cut inside a two-byte character */
    char buf[4096];
    cr_assert_gt(cd_verdict_to_json(&v, buf, sizeof(buf)), 0);
    cr_assert_not_null(strstr(buf, ",\"release\":\"2.5.0-?\",\"service\":\"\",\"reason\":"), "%s",
                       buf);
}

Test(verdict_json, too_small_buffer)
{
    cd_verdict_t v = rollback_record();
    char buf[64];
    cr_assert_eq(cd_verdict_to_json(&v, buf, sizeof(buf)), -1);
    cr_assert_str_eq(buf, "");
}

static void pretty_of(const cd_verdict_t *v, bool colour, char *out, size_t size)
{
    char json[4096];
    int n = cd_verdict_to_json(v, json, sizeof(json));
    cr_assert_gt(n, 0);
    cr_assert_gt(cd_verdict_pretty_from_json(json, (size_t)n, out, size, colour), 0);
}

Test(verdict_pretty, verdict_plain_and_colour)
{
    cd_verdict_t v = rollback_record();
    char out[1024];
    pretty_of(&v, false, out, sizeof(out));
    cr_assert_str_eq(out, "2026-11-27 12:05:30Z  ROLLBACK  error-rate      canary error rate 3.05% "
                          "(61/2000) > 2.0 x stable 1.00% (80/8000) for 5m (release 2.5.0)");
    pretty_of(&v, true, out, sizeof(out));
    cr_assert_str_eq(out, "2026-11-27 12:05:30Z  \033[31mROLLBACK \033[0m error-rate      canary "
                          "error rate 3.05% (61/2000) > 2.0 x stable 1.00% (80/8000) for 5m "
                          "(release 2.5.0)");
    /* the service, when the record names one */
    v.service = "checkout";
    pretty_of(&v, false, out, sizeof(out));
    cr_assert_str_eq(out, "2026-11-27 12:05:30Z  ROLLBACK  error-rate      canary error rate 3.05% "
                          "(61/2000) > 2.0 x stable 1.00% (80/8000) for 5m (release 2.5.0 of "
                          "checkout)");
}

Test(verdict_pretty, colours_by_verdict)
{
    static const struct {
        cd_verdict_kind_t k;
        const char *want;
    } cases[] = {
        {CD_VERDICT_ALERT,
         "2026-11-27 12:05:30Z  \033[33mALERT    \033[0m -               x (release 2.5.0)"},
        {CD_VERDICT_PROMOTE,
         "2026-11-27 12:05:30Z  \033[32mPROMOTE  \033[0m -               x (release 2.5.0)"},
        {CD_VERDICT_HEALTHY,
         "2026-11-27 12:05:30Z  \033[32mHEALTHY  \033[0m -               x (release 2.5.0)"},
        {CD_VERDICT_ANALYZING,
         "2026-11-27 12:05:30Z  \033[2mANALYZING\033[0m -               x (release 2.5.0)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cd_verdict_t v;
        char out[1024];
        memset(&v, 0, sizeof(v));
        v.time_ms = T0;
        v.verdict = cases[i].k;
        v.release = "2.5.0";
        v.threshold = NAN;
        snprintf(v.reason, sizeof(v.reason), "x");
        pretty_of(&v, true, out, sizeof(out));
        cr_assert_str_eq(out, cases[i].want, "verdict %d", (int)cases[i].k);
    }
}

Test(verdict_pretty, state_record)
{
    cd_verdict_t v = state_record();
    char out[1024];
    pretty_of(&v, false, out, sizeof(out));
    cr_assert_str_eq(out, "2026-11-27 12:05:31Z  state     payment-success inactive -> pending  "
                          "[dry run] canary payment success 90.00% \"low\" < 95%");
    /* state records are not coloured */
    pretty_of(&v, true, out, sizeof(out));
    cr_assert_null(strchr(out, '\033'));
}

Test(verdict_pretty, other_lines_as_they_are)
{
    char out[256];
    const char *cases[] = {"not json at all", "{\"time\":\"x\"}", "[1,2]",
                           "{\"time\":\"t\",\"kind\":\"other\"}"};
    for (size_t i = 0; i < 4; i++) {
        int n = cd_verdict_pretty_from_json(cases[i], strlen(cases[i]), out, sizeof(out), true);
        cr_assert_eq(n, (int)strlen(cases[i]));
        cr_assert_str_eq(out, cases[i]);
    }
    /* a NUL inside is not JSON either; copied with its length */
    int n = cd_verdict_pretty_from_json("a\0b", 3, out, sizeof(out), false);
    cr_assert_eq(n, 3);
    cr_assert_eq(memcmp(out, "a\0b", 4), 0);
}

Test(verdict_pretty, truncation_reported)
{
    char out[8];
    cr_assert_eq(cd_verdict_pretty_from_json("0123456789", 10, out, sizeof(out), false), -1);
    cr_assert_str_eq(out, "0123456");
}

/* ---- verdict log ---- */

#include <stdlib.h>
#include <unistd.h>

#include "canaryd/verdict_log.h"

static char *slurp(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

Test(verdict_log, appends_lines_and_reopens_after_rotation)
{
    char dir[] = "/tmp/cd_vlog_XXXXXX", path[64], rotated[64], err[256];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/v.log", dir);
    snprintf(rotated, sizeof(rotated), "%s/v.log.1", dir);

    FILE *f = fopen(path, "w");
    fputs("existing\n", f);
    fclose(f);
    cd_verdict_log_t *l = cd_verdict_log_open(path, err, sizeof(err));
    cr_assert_not_null(l, "%s", err);
    cr_assert_str_eq(cd_verdict_log_path(l), path);
    cr_assert_eq(cd_verdict_log_write(l, "{\"a\":1}", 7, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cd_verdict_log_write(l, "{\"b\":2}xyz", 7, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(slurp(path), "existing\n{\"a\":1}\n{\"b\":2}\n");

    cr_assert_eq(rename(path, rotated), 0);
    cr_assert_eq(cd_verdict_log_write(l, "{\"c\":3}", 7, err, sizeof(err)), 0);
    cr_assert_eq(cd_verdict_log_reopen(l, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cd_verdict_log_write(l, "{\"d\":4}", 7, err, sizeof(err)), 0);
    cr_assert_str_eq(slurp(rotated), "existing\n{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
    cr_assert_str_eq(slurp(path), "{\"d\":4}\n");

    /* a line longer than the internal buffer's first size */
    char big[10000];
    memset(big, 'x', sizeof(big));
    cr_assert_eq(cd_verdict_log_write(l, big, sizeof(big), err, sizeof(err)), 0);
    cd_verdict_log_close(l);
    FILE *g = fopen(path, "rb");
    fseek(g, 0, SEEK_END);
    cr_assert_eq(ftell(g), 8 + 10001);
    fclose(g);

    unlink(path);
    unlink(rotated);
    rmdir(dir);
}

Test(verdict_log, open_error_names_path_and_reason)
{
    char err[256];
    cr_assert_null(cd_verdict_log_open("/nonexistent-dir/v.log", err, sizeof(err)));
    cr_assert_str_eq(err, "verdict log /nonexistent-dir/v.log: No such file or directory");
}
