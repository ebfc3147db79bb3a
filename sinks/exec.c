/*
 * exec.c - the "exec" sink: runs a configured command for each record.
 *
 * Config: {"type": "exec", "command": ["/path/to/hook", "arg", ...],
 * "timeout": "30s"}. The command is an argv array started with
 * posix_spawnp (searched in PATH, never through a shell, so no record text
 * is ever interpreted), in its own process group, with:
 *   - the record in environment variables (CANARYD_KIND, CANARYD_VERDICT,
 *     CANARYD_RULE, CANARYD_RULE_KIND, CANARYD_ACTION, CANARYD_RELEASE,
 *     CANARYD_SERVICE, CANARYD_REASON, CANARYD_TODO, CANARYD_TIME,
 *     CANARYD_FROM, CANARYD_TO, CANARYD_DRY_RUN, CANARYD_ATTEMPT; empty when
 *     not applicable), added to canaryd's own environment;
 *   - the verdict JSON line (with a newline) on stdin, then end of file;
 *   - stdout and stderr going to canaryd's stderr (stdout may carry
 *     `canaryd replay`'s records, which a hook must not interleave with).
 * Stdin is one end of a socketpair rather than a pipe, so a hook that exits
 * without reading makes send() fail with EPIPE (MSG_NOSIGNAL) instead of
 * raising SIGPIPE in canaryd.
 *
 * deliver() starts the command and returns PENDING; poll() waits on a pidfd
 * (Linux 5.3+; plain short sleeps otherwise) and reaps with waitpid(WNOHANG).
 * After `timeout` the whole process group gets SIGKILL. Outcome: exit 0 OK;
 * exit 75 (EX_TEMPFAIL) or killed at the timeout RETRY; any other status
 * DROP. Every exit status is logged. The dispatcher delivers one record per
 * sink at a time, so a sink never runs its command twice at once (at most
 * one run per rule, and records are handled in order).
 *
 * Threading: dispatcher thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "canaryd/log.h"
#include "canaryd/sink.h"
#include "canaryd/timeutil.h"
#include "sink_util.h"

extern char **environ;

#define NVARS 14
#define EX_TEMPFAIL_CODE 75

typedef struct exec_sink {
    char **argv;
    int argc;
    int64_t timeout_ms;
    char shown[300];
    /* the run in flight */
    pid_t pid;
    int pidfd;
    uint64_t id;
    int64_t started, deadline;
    bool killed;
    char what[160];
} exec_sink_t;

static void exec_destroy(void *state);

static void *exec_init(const void *conf, const char *path, cd_diag_t *diag)
{
    static const char *const KEYS[] = {"command", "timeout", NULL};
    const json_t *e = conf;
    int before = diag->count;
    char p[256];
    exec_sink_t *x = calloc(1, sizeof(*x));
    if (!x) {
        cd_diag_add(diag, "%s: out of memory", path);
        return NULL;
    }
    x->pid = -1;
    x->pidfd = -1;
    x->timeout_ms = 30000;
    cd_sconf_keys(diag, path, e, KEYS, true);
    cd_sconf_duration(diag, path, e, "timeout", 1, 3600000, &x->timeout_ms);
    json_t *cmd = json_object_get(e, "command");
    cd_sconf_path(p, sizeof(p), path, "command");
    if (!cmd) {
        cd_diag_add(diag, "%s: missing; accepted: a non-empty list of strings (program, args...)",
                    p);
    } else if (!json_is_array(cmd) || json_array_size(cmd) == 0) {
        cd_sconf_bad(diag, p, cmd, false, "is not a non-empty list",
                     "a list of strings: the program and its arguments (no shell)");
    } else {
        x->argv = calloc(json_array_size(cmd) + 1, sizeof(char *));
        size_t i;
        json_t *a;
        json_array_foreach(cmd, i, a)
        {
            if (!json_is_string(a) || strlen(json_string_value(a)) != json_string_length(a) ||
                (i == 0 && json_string_length(a) == 0)) {
                char q[300];
                snprintf(q, sizeof(q), "%s[%zu]", p, i);
                cd_sconf_bad(diag, q, a, false, "is not accepted",
                             "a string without NUL bytes (the first one non-empty)");
                continue;
            }
            if (x->argv && !(x->argv[x->argc++] = strdup(json_string_value(a))))
                cd_diag_add(diag, "%s: out of memory", p);
        }
        if (!x->argv) cd_diag_add(diag, "%s: out of memory", p);
    }
    if (diag->count > before) goto err;
    json_t *n = json_object_get(e, "name");
    snprintf(x->shown, sizeof(x->shown), "exec %s (%s)",
             json_is_string(n) ? json_string_value(n) : "-", x->argv[0]);
    return x;
err:
    exec_destroy(x);
    return NULL;
}

/* "NAME=value" strings for the record; returns how many. */
static int record_env(const cd_sink_msg_t *m, char **out)
{
    const cd_verdict_t *v = m->v;
    char t[40], attempt[16];
    bool st = v->record == CD_RECORD_STATE;
    snprintf(attempt, sizeof(attempt), "%d", m->attempt);
    const char *vals[NVARS][2] = {
        {"CANARYD_KIND", st ? "state" : "verdict"},
        {"CANARYD_VERDICT", st ? "" : cd_verdict_kind_name(v->verdict)},
        {"CANARYD_RULE", v->rule ? v->rule : ""},
        {"CANARYD_RULE_KIND", v->rule_kind ? v->rule_kind : ""},
        {"CANARYD_ACTION", !v->rule                          ? ""
                           : v->action == CD_ACTION_ROLLBACK ? "rollback"
                                                             : "alert"},
        {"CANARYD_RELEASE", v->release ? v->release : ""},
        {"CANARYD_SERVICE", m->service ? m->service : ""},
        {"CANARYD_REASON", v->reason},
        {"CANARYD_TODO", v->todo},
        {"CANARYD_TIME", cd_time_format(v->time_ms, t, sizeof(t))},
        {"CANARYD_FROM", st ? cd_rule_state_name(v->from) : ""},
        {"CANARYD_TO", st ? cd_rule_state_name(v->to) : ""},
        {"CANARYD_DRY_RUN", v->dry_run ? "true" : "false"},
        {"CANARYD_ATTEMPT", attempt},
    };
    for (int i = 0; i < NVARS; i++)
        if (asprintf(&out[i], "%s=%s", vals[i][0], vals[i][1]) < 0) {
            while (i-- > 0)
                free(out[i]);
            return -1;
        }
    return NVARS;
}

/* canaryd's environment minus the variables the record sets, plus those. */
static char **build_env(char **mine, int nmine)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = calloc(n + (size_t)nmine + 1, sizeof(char *));
    if (!env) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool shadowed = false;
        for (int j = 0; j < nmine && !shadowed; j++) {
            size_t nl = (size_t)(strchr(mine[j], '=') - mine[j]);
            shadowed = strncmp(environ[i], mine[j], nl + 1) == 0;
        }
        if (!shadowed) env[k++] = environ[i];
    }
    for (int j = 0; j < nmine; j++)
        env[k++] = mine[j];
    return env;
}

static cd_sink_result_t exec_deliver(void *state, const cd_sink_msg_t *m, int64_t *retry_after_ms)
{
    exec_sink_t *x = state;
    char *mine[NVARS];
    int sv[2] = {-1, -1};
    (void)retry_after_ms;
    CD_ASSERT(x->pid < 0);
    int nmine = record_env(m, mine);
    if (nmine < 0) return CD_SINK_RETRY;
    char **env = build_env(mine, nmine);
    cd_sink_result_t r = CD_SINK_RETRY;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    if (!env || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        cd_log_ratelimited(x->shown, CD_LOG_ERROR, "%s: cannot prepare a run: %s", x->shown,
                           strerror(errno));
        goto out;
    }
    posix_spawn_file_actions_adddup2(&fa, sv[1], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
    sigset_t none, dfl;
    sigemptyset(&none);
    sigfillset(&dfl);
    /* the child starts with no signals blocked (the dispatcher thread blocks
     * them all) and default dispositions, in a process group of its own */
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dfl);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP);
    pid_t pid;
    int rc = posix_spawnp(&pid, x->argv[0], &fa, &at, x->argv, env);
    if (rc != 0) {
        cd_log(CD_LOG_ERROR, "%s: cannot run it: %s; record dropped", x->shown, strerror(rc));
        r = CD_SINK_DROP;
        goto out;
    }
    close(sv[1]);
    sv[1] = -1;
    /* the record fits the socket buffer: one send, then EOF for the hook */
    char line[4200];
    size_t n = m->json_len < sizeof(line) - 1 ? m->json_len : sizeof(line) - 1;
    memcpy(line, m->json, n);
    line[n++] = '\n';
    if (send(sv[0], line, n, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)n)
        cd_log(CD_LOG_DEBUG, "%s: the command did not take the record on stdin: %s", x->shown,
               strerror(errno));
    x->pid = pid;
    x->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    x->id = m->id;
    x->started = cd_sink_now_ms();
    x->deadline = x->started + x->timeout_ms;
    x->killed = false;
    if (m->v->record == CD_RECORD_STATE)
        snprintf(x->what, sizeof(x->what), "state %s -> %s of %s", cd_rule_state_name(m->v->from),
                 cd_rule_state_name(m->v->to), m->v->rule ? m->v->rule : "-");
    else
        snprintf(x->what, sizeof(x->what), "%s%s%s", cd_verdict_kind_name(m->v->verdict),
                 m->v->rule ? " " : "", m->v->rule ? m->v->rule : "");
    r = CD_SINK_PENDING;
out:
    if (sv[0] >= 0) close(sv[0]);
    if (sv[1] >= 0) close(sv[1]);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    free(env);
    for (int i = 0; i < nmine; i++)
        free(mine[i]);
    return r;
}

static void end_run(exec_sink_t *x)
{
    if (x->pidfd >= 0) close(x->pidfd);
    x->pidfd = -1;
    x->pid = -1;
}

static int exec_poll(void *state, int timeout_ms, cd_sink_done_cb done, void *opaque)
{
    exec_sink_t *x = state;
    int status;
    if (x->pid < 0) return 0;
    int64_t now = cd_sink_now_ms();
    int64_t wait = x->killed ? timeout_ms : x->deadline - now;
    if (wait > timeout_ms) wait = timeout_ms;
    if (wait < 0) wait = 0;
    if (x->pidfd >= 0) {
        struct pollfd pf = {.fd = x->pidfd, .events = POLLIN};
        poll(&pf, 1, (int)wait);
    } else if (wait > 0) {
        poll(NULL, 0, (int)(wait < 10 ? wait : 10));
    }
    /* WNOWAIT: the exited leader stays a zombie, so its pid (the group id)
     * cannot be reused before the rest of the group is killed below */
    siginfo_t si = {0};
    pid_t got = waitid(P_PID, (id_t)x->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 ? si.si_pid : -1;
    now = cd_sink_now_ms();
    if (got == 0) {
        if (!x->killed && now >= x->deadline) {
            kill(-x->pid, SIGKILL); /* the whole group: a script's children too */
            x->killed = true;
            cd_log(CD_LOG_WARN, "%s: %s still running after %lld ms; killed", x->shown, x->what,
                   (long long)x->timeout_ms);
        }
        return 1;
    }
    /* the rest of the group (a script's background children) goes too */
    if (got > 0) kill(-x->pid, SIGKILL);
    if (got > 0) got = waitpid(x->pid, &status, 0);
    cd_sink_result_t r;
    long long took = (long long)(now - x->started);
    if (got < 0) {
        cd_log(CD_LOG_ERROR, "%s: waiting for it: %s", x->shown, strerror(errno));
        r = CD_SINK_RETRY;
    } else if (x->killed) {
        r = CD_SINK_RETRY;
        cd_log(CD_LOG_WARN, "%s: %s killed at its timeout (%lld ms)", x->shown, x->what, took);
    } else if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        r = code == 0 ? CD_SINK_OK : code == EX_TEMPFAIL_CODE ? CD_SINK_RETRY : CD_SINK_DROP;
        cd_log(code ? CD_LOG_WARN : CD_LOG_INFO, "%s: %s: exit status %d after %lld ms%s", x->shown,
               x->what, code, took,
               code == 0                  ? ""
               : code == EX_TEMPFAIL_CODE ? " (temporary failure: retried)"
                                          : " (failed: not retried)");
    } else {
        r = CD_SINK_DROP;
        cd_log(CD_LOG_WARN, "%s: %s: killed by signal %d after %lld ms (not retried)", x->shown,
               x->what, WTERMSIG(status), took);
    }
    uint64_t id = x->id;
    end_run(x);
    done(opaque, id, r, -1);
    return 0;
}

static void exec_destroy(void *state)
{
    exec_sink_t *x = state;
    if (!x) return;
    if (x->pid > 0) {
        kill(-x->pid, SIGKILL);
        waitpid(x->pid, NULL, 0);
        cd_log(CD_LOG_WARN, "%s: %s abandoned at shutdown (killed)", x->shown, x->what);
        end_run(x);
    }
    for (int i = 0; x->argv && i < x->argc; i++)
        free(x->argv[i]);
    free(x->argv);
    free(x);
}

const struct cd_sink_ops cd_sink_exec = {
    .name = "exec",
    .init = exec_init,
    .deliver = exec_deliver,
    .poll = exec_poll,
    .destroy = exec_destroy,
};
