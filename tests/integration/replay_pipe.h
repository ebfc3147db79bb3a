/*
 * replay_pipe.h - `canaryd generate ... | canaryd replay --config C -` for
 * the replay suites (test_scenarios, test_scenario_property): spawns both
 * through the built binary ($CANARYD_BIN) joined by a pipe, collects exit
 * codes, stdout and both stderrs in unlinked temp files, and reads the
 * replay summary's counts; its temp-file helpers (tmpfile_fd, slurp_fd)
 * serve test_generate too. Header-only, static inline: each test binary
 * includes it once, and one that uses part of it compiles without
 * warnings. Processes: posix_spawn; nothing is left running (both are
 * waited for).
 */
#ifndef CANARYD_TESTS_REPLAY_PIPE_H
#define CANARYD_TESTS_REPLAY_PIPE_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef struct run_out {
    int gen_status, replay_status; /* exit codes, or -1 if killed */
    char *out, *err, *gen_err;
} run_out_t;

/* An anonymous temp file (unlinked at once, so nothing is left behind when
 * an assertion ends the test early). */
static inline int tmpfile_fd(void)
{
    char path[] = "/tmp/canaryd-test-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    unlink(path);
    return fd;
}

/* The whole content of fd, NUL-terminated; *len counts NULs inside too. */
static inline char *slurp_fd(int fd, size_t *len)
{
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    char *s = malloc((size_t)st.st_size + 1);
    cr_assert_eq(pread(fd, s, (size_t)st.st_size, 0), st.st_size);
    s[st.st_size] = '\0';
    if (len) *len = (size_t)st.st_size;
    return s;
}

static inline int exit_of(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* canaryd generate ARGS... | canaryd replay --config config -; collects the
 * outputs. gen_args: NULL-terminated, after "generate". */
static inline void run_pipe(const char *const *gen_args, const char *config, run_out_t *r)
{
    const char *bin = getenv("CANARYD_BIN");
    cr_assert_not_null(bin, "CANARYD_BIN is not set (ctest sets it)");
    int out_fd = tmpfile_fd(), err_fd = tmpfile_fd(), gerr_fd = tmpfile_fd();
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);

    char *gen_argv[24] = {(char *)bin, "generate"};
    int n = 2;
    for (; *gen_args && n < 23; gen_args++)
        gen_argv[n++] = (char *)*gen_args;
    gen_argv[n] = NULL;
    char *rep_argv[] = {(char *)bin, "replay", "--config", (char *)config, "-", NULL};
    posix_spawn_file_actions_t ga, ra;
    posix_spawn_file_actions_init(&ga);
    posix_spawn_file_actions_adddup2(&ga, pfd[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&ga, gerr_fd, STDERR_FILENO);
    posix_spawn_file_actions_addclose(&ga, pfd[0]);
    posix_spawn_file_actions_init(&ra);
    posix_spawn_file_actions_adddup2(&ra, pfd[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&ra, out_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&ra, err_fd, STDERR_FILENO);
    posix_spawn_file_actions_addclose(&ra, pfd[1]);
    pid_t gpid, rpid;
    cr_assert_eq(posix_spawn(&gpid, bin, &ga, NULL, gen_argv, environ), 0);
    cr_assert_eq(posix_spawn(&rpid, bin, &ra, NULL, rep_argv, environ), 0);
    close(pfd[0]);
    close(pfd[1]);
    int gs, rs;
    cr_assert_eq(waitpid(gpid, &gs, 0), gpid);
    cr_assert_eq(waitpid(rpid, &rs, 0), rpid);
    posix_spawn_file_actions_destroy(&ga);
    posix_spawn_file_actions_destroy(&ra);
    r->gen_status = exit_of(gs);
    r->replay_status = exit_of(rs);
    r->out = slurp_fd(out_fd, NULL);
    r->err = slurp_fd(err_fd, NULL);
    r->gen_err = slurp_fd(gerr_fd, NULL);
    close(out_fd), close(err_fd), close(gerr_fd);
}

static inline void run_free(run_out_t *r)
{
    free(r->out), free(r->err), free(r->gen_err);
}

/* The summary must count each kind of bad line the generator inserts. */
static inline void check_bad_counts(const char *name, const char *summary)
{
    static const char *const reasons[] = {"truncated_json", "wrong_type",     "missing_timestamp",
                                          "bad_timestamp",  "unknown_cohort", "invalid_utf8",
                                          "nul_byte",       "line_too_long",  "too_complex"};
    for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++) {
        char pat[64];
        snprintf(pat, sizeof pat, "\n    %s ", reasons[i]);
        const char *p = strstr(summary, pat);
        cr_assert_not_null(p, "%s (garbage run): summary has no count for %s:\n%s", name,
                           reasons[i], summary);
        unsigned long long n = strtoull(p + strlen(pat), NULL, 10);
        cr_assert(n > 0, "%s (garbage run): %s counted %llu", name, reasons[i], n);
    }
}

/* The number at the end of the summary line that starts with prefix, or -1. */
static inline long long summary_count(const char *summary, const char *prefix)
{
    const char *p = strstr(summary, prefix);
    if (!p) return -1;
    const char *nl = strchr(p + 1, '\n');
    const char *c = p + 1;
    const char *colon = NULL;
    for (; *c && c != nl; c++)
        if (*c == ':') colon = c;
    return colon ? strtoll(colon + 1, NULL, 10) : -1;
}

#endif
