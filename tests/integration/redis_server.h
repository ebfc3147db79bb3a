/*
 * redis_server.h - a redis-server of the test's own on a loopback port, no
 * persistence, answering PING before redis_server_start returns. One copy
 * for test_live_coord, test_service, test_coord_concurrency and
 * test_redis_sink.
 *
 * Header-only (static inline) like live_helpers.h, whose clocks it uses.
 * Spawned with posix_spawnp rather than live_helpers.h's fork: two of its
 * users are TSan suites that restart the server while their own threads
 * run, and posix_spawn leaves no forked copy of those threads around.
 * Threading: call from the test's thread.
 */
#ifndef CANARYD_TEST_REDIS_SERVER_H
#define CANARYD_TEST_REDIS_SERVER_H

#include <hiredis/hiredis.h>
#include <spawn.h>

#include "live_helpers.h"

extern char **environ;

/* Whether a redis-server answers PING on port (NOAUTH counts: it is up,
 * with a password set). */
static inline bool redis_server_up(int port)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    bool up = false;
    if (c && !c->err) {
        redisReply *r = redisCommand(c, "PING");
        up = r && (r->type == REDIS_REPLY_STATUS ||
                   (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOAUTH", 6) == 0));
        if (r) freeReplyObject(r);
    }
    if (c) redisFree(c);
    return up;
}

/* Starts redis-server on 127.0.0.1:port, working folder dir (NULL: /tmp),
 * extra arguments appended (NULL-terminated; NULL: none); waits up to 10 s
 * for it to answer. Returns its pid: the caller kills it
 * (redis_server_kill). */
static inline pid_t redis_server_start(int port, const char *dir, const char *const *extra)
{
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    const char *argv[40] = {"redis-server",
                            "--port",
                            p,
                            "--bind",
                            "127.0.0.1",
                            "--save",
                            "",
                            "--appendonly",
                            "no",
                            "--loglevel",
                            "warning",
                            "--dir",
                            dir ? dir : "/tmp"};
    int n = 13;
    for (int i = 0; extra && extra[i] && n < 39; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, "redis-server", &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "redis-server: %s", strerror(rc));
    for (int64_t end = mono_ms() + 10000; !redis_server_up(port); sleep_ms(10))
        cr_assert(mono_ms() < end, "redis-server did not come up on port %d", port);
    return pid;
}

/* A client of the server on port, 2 s connect and command timeouts; fails
 * the test when it cannot connect. The caller redisFree()s it. */
static inline redisContext *redis_server_client(int port)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    cr_assert(c && !c->err, "connect to redis on %d: %s", port, c ? c->errstr : "oom");
    redisSetTimeout(c, tv);
    return c;
}

/* SIGKILLs and reaps *pid when it runs; sets it to -1. */
static inline void redis_server_kill(pid_t *pid)
{
    if (*pid <= 0) return;
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = -1;
}

#endif
