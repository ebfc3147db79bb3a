/*
 * test_exec.c - the exec sink with real commands: a script records its
 * argv, environment and stdin; no shell ever interprets record text or
 * arguments; a hanging command (and its children) is killed at the timeout;
 * exit statuses are logged and decide retry or drop; one run at a time.
 */
#include "sink_test.h"

#include <signal.h>
#include <stdarg.h>

TestSuite(exec, .init = st_setup, .fini = st_teardown, .timeout = 30);

static cd_dispatcher_t *exec_sink(const char *command_json, const char *extra)
{
    char json[4096];
    snprintf(json, sizeof(json),
             "{\"outputs\":[{\"type\":\"exec\",\"name\":\"hook\",\"command\":%s%s}]}", command_json,
             extra);
    return st_dispatcher(json, true);
}

static void expect_has(const char *text, const char *want)
{
    cr_expect(strstr(text, want) != NULL, "missing:\n  %s\nin:\n%s", want, text);
}

Test(exec, records_argv_environment_and_stdin)
{
    char script[1024], cmd[1024];
    snprintf(script, sizeof(script),
             "#!/bin/sh\nfor a in \"$@\"; do printf '[%%s]\\n' \"$a\"; done > %s\n"
             "env | grep '^CANARYD_' | grep -v '^CANARYD_BIN=\\|^CANARYD_TOOLS_DIR=' | sort > %s\n"
             "cat > %s\n",
             st_path("argv"), st_path("env"), st_path("stdin"));
    st_write("hook.sh", script, 0755);
    snprintf(cmd, sizeof(cmd), "[\"%s\", \"--release\", \"a b\", \"$(touch %s); `id`\"]",
             st_path("hook.sh"), st_path("pwned"));
    cd_dispatcher_t *d = exec_sink(cmd, "");
    cd_verdict_t v = st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 5);
    snprintf(v.reason, sizeof(v.reason), "fatal count 3 > 0 (window 1m); $(rm -rf /) 'quoted'");
    cr_assert(cd_dispatcher_submit(d, &v));
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    cr_expect_eq(st_stats(d, 0).delivered, 1);
    cd_dispatcher_destroy(d);

    char want[2048];
    char *got = st_read(st_path("argv"));
    snprintf(want, sizeof(want), "[--release]\n[a b]\n[$(touch %s); `id`]\n", st_path("pwned"));
    cr_expect_str_eq(got, want);
    free(got);
    cr_expect_neq(access(st_path("pwned"), F_OK), 0, "an argument was run by a shell");

    got = st_read(st_path("env"));
    cr_expect_str_eq(got, "CANARYD_ACTION=rollback\n"
                          "CANARYD_ATTEMPT=1\n"
                          "CANARYD_DRY_RUN=false\n"
                          "CANARYD_FROM=\n"
                          "CANARYD_KIND=verdict\n"
                          "CANARYD_REASON=fatal count 3 > 0 (window 1m); $(rm -rf /) 'quoted'\n"
                          "CANARYD_RELEASE=2.5.0\n"
                          "CANARYD_RULE=fatal\n"
                          "CANARYD_RULE_KIND=threshold\n"
                          "CANARYD_SERVICE=\n"
                          "CANARYD_TIME=2026-11-27T12:00:05.000Z\n"
                          "CANARYD_TO=\n"
                          "CANARYD_TODO=Roll back now.\n"
                          "CANARYD_VERDICT=ROLLBACK\n");
    free(got);
    got = st_read(st_path("stdin"));
    cr_expect_str_eq(got, st_json(&v));
    free(got);
    char *log = st_log_text();
    char line[1024];
    snprintf(line, sizeof(line),
             "canaryd[info]: exec hook (%s): ROLLBACK fatal: exit status 0 after",
             st_path("hook.sh"));
    expect_has(log, line);
    free(log);
}

/* A state record: kind, from and to are set, verdict is empty. */
Test(exec, state_record_environment)
{
    char script[512];
    snprintf(script, sizeof(script),
             "#!/bin/sh\necho "
             "\"$CANARYD_KIND|$CANARYD_VERDICT|$CANARYD_FROM|$CANARYD_TO|$CANARYD_RULE\" > %s\n",
             st_path("out"));
    st_write("hook.sh", script, 0755);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "[\"%s\"]", st_path("hook.sh"));
    cd_dispatcher_t *d = exec_sink(cmd, ",\"filter\":{\"kinds\":[\"state\"]}");
    cd_verdict_t v = st_state("errors", CD_ACTION_ALERT, CD_STATE_PENDING, CD_STATE_FIRING, 0);
    cr_assert(cd_dispatcher_submit(d, &v));
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    cd_dispatcher_destroy(d);
    char *got = st_read(st_path("out"));
    cr_expect_str_eq(got, "state||pending|firing|errors\n");
    free(got);
}

static bool process_gone(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return true;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'Z'; /* a zombie waiting for init */
}

/* A command that hangs is killed at its timeout, with its children. */
Test(exec, hanging_command_killed_at_timeout)
{
    char script[512];
    snprintf(script, sizeof(script), "#!/bin/sh\nsleep 30 &\necho $! > %s\nwait\n",
             st_path("child"));
    st_write("hang.sh", script, 0755);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "[\"%s\"]", st_path("hang.sh"));
    cd_dispatcher_t *d = exec_sink(cmd, ",\"timeout\":\"300ms\",\"retry\":{\"max_attempts\":1}");
    cd_verdict_t v = st_verdict(CD_VERDICT_ALERT, "errors", CD_ACTION_ALERT, 0);
    int64_t t0 = st_now_ms();
    cr_assert(cd_dispatcher_submit(d, &v));
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    int64_t took = st_now_ms() - t0;
    cr_expect_geq(took, 300);
    cr_expect_lt(took, 2000, "took %lld ms", (long long)took);
    cd_sink_stats_t s = st_stats(d, 0);
    cr_expect_eq(s.delivered, 0);
    cr_expect_eq(s.failed, 1);
    cd_dispatcher_destroy(d);
    char *pid = st_read(st_path("child"));
    cr_assert_gt(atoi(pid), 0);
    int64_t until = st_now_ms() + 2000;
    while (!process_gone(atoi(pid)) && st_now_ms() < until)
        usleep(10000);
    cr_expect(process_gone(atoi(pid)), "the hook's child %s survived", pid);
    if (!process_gone(atoi(pid))) kill(atoi(pid), SIGKILL);
    free(pid);
    char *log = st_log_text();
    char line[1024];
    snprintf(line, sizeof(line),
             "canaryd[warn]: exec hook (%s): ALERT errors still running after 300 ms; killed",
             st_path("hang.sh"));
    expect_has(log, line);
    expect_has(log, "ALERT errors killed at its timeout");
    expect_has(log, "sink hook: record 1 (ALERT errors) dropped after 1 attempts");
    free(log);
}

/* Exit status: non-zero is logged and dropped (not retried); a program
 * that does not exist is dropped with the reason. */
Test(exec, exit_status_logged)
{
    cd_dispatcher_t *d = exec_sink("[\"sh\", \"-c\", \"exit 3\"]",
                                   ",\"retry\":{\"base\":\"10ms\",\"max_attempts\":5}");
    cd_verdict_t v = st_verdict(CD_VERDICT_PROMOTE, NULL, CD_ACTION_ROLLBACK, 0);
    cr_assert(cd_dispatcher_submit(d, &v));
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    cd_sink_stats_t s = st_stats(d, 0);
    cr_expect_eq(s.failed, 1);
    cr_expect_eq(s.retries, 0);
    cd_dispatcher_destroy(d);

    d = exec_sink("[\"/nonexistent/hook\"]", "");
    cr_assert(cd_dispatcher_submit(d, &v));
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    cr_expect_eq(st_stats(d, 0).failed, 1);
    cd_dispatcher_destroy(d);
    char *log = st_log_text();
    expect_has(log, "canaryd[warn]: exec hook (sh): PROMOTE: exit status 3 after ");
    expect_has(log, " ms (failed: not retried)");
    expect_has(log, "canaryd[error]: exec hook (/nonexistent/hook): cannot run it: No such file or "
                    "directory; record dropped");
    free(log);
}

/* One run at a time: the second record's command starts after the first
 * one ended. */
Test(exec, one_run_at_a_time)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd),
             "[\"sh\", \"-c\", \"echo start $CANARYD_RULE >> %s; sleep 0.2; echo end $CANARYD_RULE "
             ">> %s\"]",
             st_path("runs"), st_path("runs"));
    cd_dispatcher_t *d = exec_sink(cmd, "");
    cd_verdict_t a = st_verdict(CD_VERDICT_ALERT, "errors", CD_ACTION_ALERT, 0);
    cd_verdict_t b = st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 1);
    cr_assert(cd_dispatcher_submit(d, &a));
    cr_assert(cd_dispatcher_submit(d, &b));
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    cd_dispatcher_destroy(d);
    char *got = st_read(st_path("runs"));
    cr_expect_str_eq(got, "start errors\nend errors\nstart fatal\nend fatal\n");
    free(got);
}
