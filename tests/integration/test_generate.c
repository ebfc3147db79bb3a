/*
 * test_generate.c - `canaryd generate` through the built binary
 * ($CANARYD_BIN): usage errors and their messages, determinism, and the two
 * transport faults: --disorder must be a permutation of the plain output
 * with every event less than D behind the newest one before it, --garbage
 * must keep every good line in order and cycle through all nine kinds of bad
 * line. (The generator's model is tested in tests/unit/test_simgen.c; what
 * replay makes of the output in tests/integration/test_scenarios.c.)
 */
#include <criterion/criterion.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "canaryd/timeutil.h"
#include "replay_pipe.h"

typedef struct cmd_out {
    int status;
    char *out, *err;
    size_t out_len;
} cmd_out_t;

/* Runs `canaryd generate ARGS...` (NULL-terminated) and captures its output. */
static void generate(cmd_out_t *r, ...)
{
    const char *bin = getenv("CANARYD_BIN");
    cr_assert_not_null(bin);
    char *argv[24] = {(char *)bin, "generate"};
    int n = 2;
    va_list ap;
    va_start(ap, r);
    for (const char *a; (a = va_arg(ap, const char *)) && n < 23;)
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    int ofd = tmpfile_fd(), efd = tmpfile_fd();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, ofd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, efd, STDERR_FILENO);
    pid_t pid;
    int st;
    cr_assert_eq(posix_spawn(&pid, bin, &fa, NULL, argv, environ), 0);
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    posix_spawn_file_actions_destroy(&fa);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r->out = slurp_fd(ofd, &r->out_len);
    r->err = slurp_fd(efd, NULL);
    close(ofd), close(efd);
}

static void cmd_free(cmd_out_t *r)
{
    free(r->out), free(r->err);
}

Test(generate_cli, usage_errors_exit_2_with_the_accepted_values)
{
    cmd_out_t r;
    generate(&r, "--scenario", "nope", NULL);
    cr_assert_eq(r.status, 2);
    cr_assert_str_eq(r.err, "canaryd generate: scenario: \"nope\" is not a scenario; accepted: "
                            "healthy error-regression error-blip payment-drop payment-96 "
                            "payment-sparse login-spike-canary login-spike-fleet audit-failure "
                            "latency-regression handler-flatline canary-crash canary-outage "
                            "payment-outage login-outage fleet-drop canary-absent\n");
    cr_assert_eq(r.out_len, 0);
    cmd_free(&r);

    generate(&r, "--scenario", "healthy", "--garbage", "2", NULL);
    cr_assert_eq(r.status, 2);
    cr_assert_str_eq(r.err, "canaryd generate: garbage: 2 is outside the accepted range [0, 1]\n");
    cmd_free(&r);

    generate(&r, "--scenario", "healthy", "--onset", "4x", NULL);
    cr_assert_eq(r.status, 2);
    cr_assert_str_eq(r.err, "canaryd generate: onset: \"4x\" is not a duration; accepted: such "
                            "as \"250ms\", \"30s\", \"5m\", \"1h30m\"\n");
    cmd_free(&r);

    generate(&r, "--seed", "3", NULL);
    cr_assert_eq(r.status, 2);
    cr_assert(
        strncmp(r.err, "canaryd generate: --scenario (or a scenario file) is required\n", 62) == 0,
        "%s", r.err);
    cmd_free(&r);

    char path[] = "/tmp/canaryd-gen-XXXXXX";
    int fd = mkstemp(path);
    const char doc[] = "{\"scenario\": \"healthy\", \"durration\": \"1m\"}";
    cr_assert_eq(write(fd, doc, sizeof doc - 1), (ssize_t)(sizeof doc - 1));
    close(fd);
    generate(&r, "--scenario-file", path, NULL);
    unlink(path);
    cr_assert_eq(r.status, 2);
    char want[512];
    snprintf(want, sizeof want,
             "canaryd generate: %s: unknown key \"durration\"; known keys: "
             "scenario, seed, start, duration, onset, effect, rate, "
             "canary_share, garbage, disorder, description, expect, config, pay_success, "
             "pay_success_after\n",
             path);
    cr_assert_str_eq(r.err, want);
    cmd_free(&r);

    generate(&r, "--scenario", "payment-drop", "--pay-success-after", "1.5", NULL);
    cr_assert_eq(r.status, 2);
    cr_assert_str_eq(r.err, "canaryd generate: pay_success_after: \"1.5\" is not accepted; "
                            "accepted: a number in (0, 1]\n");
    cmd_free(&r);
}

/* Splits text into lines (pointers into it; lengths kept: lines may hold NULs). */
static size_t split_lines(char *text, size_t len, char ***lines, size_t **lens)
{
    size_t n = 0, cap = 1024;
    *lines = malloc(cap * sizeof **lines);
    *lens = malloc(cap * sizeof **lens);
    for (size_t i = 0; i < len;) {
        char *nl = memchr(text + i, '\n', len - i);
        cr_assert_not_null(nl, "output does not end with a newline");
        if (n == cap) {
            cap *= 2;
            *lines = realloc(*lines, cap * sizeof **lines);
            *lens = realloc(*lens, cap * sizeof **lens);
        }
        (*lines)[n] = text + i;
        (*lens)[n++] = (size_t)(nl - (text + i));
        i = (size_t)(nl - text) + 1;
    }
    return n;
}

static int64_t line_ts(const char *line)
{
    const char *t = strstr(line, "\"timestamp\":\"");
    int64_t ms;
    cr_assert_not_null(t);
    cr_assert(cd_time_parse_rfc3339(t + 13, 24, &ms));
    return ms;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

Test(generate_cli, deterministic_and_disorder_is_a_bounded_permutation)
{
    cmd_out_t a, b, d;
    generate(&a, "--scenario", "healthy", "--duration", "30s", "--seed", "5", NULL);
    generate(&b, "--scenario", "healthy", "--duration", "30s", "--seed", "5", NULL);
    generate(&d, "--scenario", "healthy", "--duration", "30s", "--seed", "5", "--disorder", "3s",
             NULL);
    cr_assert_eq(a.status, 0);
    cr_assert_eq(d.status, 0);
    cr_assert_eq(a.out_len, b.out_len);
    cr_assert_eq(memcmp(a.out, b.out, a.out_len), 0, "same settings, different output");
    cr_assert_eq(a.out_len, d.out_len);
    cr_assert_neq(memcmp(a.out, d.out, a.out_len), 0, "--disorder changed nothing");

    char **la, **ld;
    size_t *lna, *lnd;
    size_t na = split_lines(a.out, a.out_len, &la, &lna);
    size_t nd = split_lines(d.out, d.out_len, &ld, &lnd);
    cr_assert_eq(na, nd);
    cr_assert(na > 30 * 400, "%zu lines", na);
    int64_t max_seen = 0, worst = 0, prev = 0;
    for (size_t i = 0; i < na; i++) {
        la[i][lna[i]] = '\0';
        ld[i][lnd[i]] = '\0';
        int64_t ta = line_ts(la[i]), td = line_ts(ld[i]);
        cr_assert(ta >= prev, "plain output not in time order");
        prev = ta;
        if (max_seen - td > worst) worst = max_seen - td;
        if (td > max_seen) max_seen = td;
    }
    cr_assert(worst > 1000 && worst < 3000, "worst lateness %lld ms", (long long)worst);
    qsort(la, na, sizeof *la, str_cmp);
    qsort(ld, nd, sizeof *ld, str_cmp);
    for (size_t i = 0; i < na; i++)
        cr_assert_str_eq(la[i], ld[i], "--disorder is not a permutation of the plain output");
    free(la), free(ld), free(lna), free(lnd);
    cmd_free(&a), cmd_free(&b), cmd_free(&d);
}

Test(generate_cli, garbage_interleaves_every_kind_and_keeps_the_good_lines)
{
    cmd_out_t a, g;
    generate(&a, "--scenario", "healthy", "--duration", "10s", NULL);
    generate(&g, "--scenario", "healthy", "--duration", "10s", "--garbage", "0.5", NULL);
    cr_assert_eq(g.status, 0);
    char **la, **lg;
    size_t *lna, *lng;
    size_t na = split_lines(a.out, a.out_len, &la, &lna);
    size_t ng = split_lines(g.out, g.out_len, &lg, &lng);
    /* The good lines come through in order; what is between them is bad. */
    size_t j = 0, bad = 0, kinds[9] = {0};
    for (size_t i = 0; i < ng; i++) {
        if (j < na && lng[i] == lna[j] && memcmp(lg[i], la[j], lna[j]) == 0) {
            j++;
            continue;
        }
        bad++;
        cr_assert(i > 0, "a bad line before any good one");
        const char *s = lg[i];
        size_t n = lng[i];
        if (n == 10000 && s[0] == '[')
            kinds[8]++;
        else if (n > 100 * 1024)
            kinds[7]++;
        else if (memchr(s, '\0', n))
            kinds[6]++;
        else if (memmem(s, n, "\xff", 1))
            kinds[5]++;
        else if (memmem(s, n, "\"cohort\":\"blue\"", 15))
            kinds[4]++;
        else if (memmem(s, n, "27/11/2026", 10))
            kinds[3]++;
        else if (!memmem(s, n, "\"timestamp\"", 11))
            kinds[2]++;
        else if (memmem(s, n, "\"event_type\":42", 15))
            kinds[1]++;
        else if (n == lng[i - 1] / 2 && memcmp(s, lg[i - 1], n) == 0)
            kinds[0]++;
        else
            cr_assert_fail("unexpected line %zu: %.*s", i, (int)(n < 200 ? n : 200), s);
    }
    cr_assert_eq(j, na, "good lines lost: %zu of %zu", j, na);
    cr_assert(bad > na / 4 && bad < na * 3 / 4, "%zu bad lines for %zu good", bad, na);
    for (int k = 0; k < 9; k++)
        cr_assert(kinds[k] >= bad / 9 && kinds[k] <= bad / 9 + 1, "kind %d: %zu of %zu", k,
                  kinds[k], bad);
    free(la), free(lg), free(lna), free(lng);
    cmd_free(&a), cmd_free(&g);
}
