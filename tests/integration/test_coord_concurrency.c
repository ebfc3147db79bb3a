/*
 * test_coord_concurrency.c - several agents' sink sides in one process
 * (one dispatcher + one coordinator each, sinks/coord.c) sharing a real
 * redis-server on a free loopback port and one webhook receiver: the
 * lease, the claims, the fencing token, the take-over of a claim whose
 * claimer died before sending, and the fallback when Redis is gone. Each
 * agent has its dispatcher thread and its coordinator thread, so the suite
 * also runs under TSan (tests/tsan shim: no suite fixtures, so every test
 * calls setup / teardown itself).
 */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "canaryd/config.h"
#include "canaryd/coord.h"
#include "canaryd/dispatcher.h"
#include "canaryd/log.h"
#include "http_receiver.c"
#include "live_helpers.h"
#include "redis_server.h"

static pid_t redis_pid = -1;
static int redis_port;
static rx_t *rx;

static redisContext *client(void)
{
    return redis_server_client(redis_port);
}

static void redis_start(void)
{
    redis_pid = redis_server_start(redis_port, NULL, NULL);
}

static void redis_kill(void)
{
    redis_server_kill(&redis_pid);
}

static void setup(void)
{
    redis_port = free_port();
    rx = rx_start(0);
    cr_assert_not_null(rx);
}

static void teardown(void)
{
    redis_kill();
    rx_stop(rx);
    rx = NULL;
}

typedef struct agent {
    cd_dispatcher_t *d;
    cd_coord_t *c;
} agent_t;

static void agent_start(agent_t *a, const char *id, int64_t lease_ms, int64_t fallback_ms)
{
    cd_diag_t diag;
    cd_diag_init(&diag);
    a->d = cd_dispatcher_new(NULL, &diag);
    cr_assert_not_null(a->d);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/hook", (unsigned)rx_port(rx));
    json_t *e = json_pack("{s:s, s:s, s:{s:s, s:s}}", "type", "webhook", "url", url, "retry",
                          "base", "10ms", "cap", "50ms");
    cr_assert_eq(cd_dispatcher_add(a->d, e, "hook", &diag), 0);
    json_decref(e);
    cd_coord_conf_t cc = {.enabled = true, .port = redis_port, .lease_ms = lease_ms,
                          .fallback_ms = fallback_ms, .retention_ms = 60000};
    snprintf(cc.host, sizeof(cc.host), "127.0.0.1");
    snprintf(cc.prefix, sizeof(cc.prefix), "t");
    snprintf(cc.agent_id, sizeof(cc.agent_id), "%s", id);
    char err[256];
    a->c = cd_coord_new(&cc, err, sizeof(err));
    cr_assert_not_null(a->c);
    cd_dispatcher_set_coord(a->d, a->c);
    cr_assert_eq(cd_dispatcher_start(a->d, err, sizeof(err)), 0);
}

static void agent_stop(agent_t *a)
{
    if (!a->d) return;
    cd_dispatcher_drain(a->d, 5000);
    cd_coord_destroy(a->c);
    cd_dispatcher_destroy(a->d);
    a->d = NULL;
    a->c = NULL;
}

static cd_coord_stats_t stats(agent_t *a)
{
    cd_coord_stats_t st;
    cd_coord_stats(a->c, &st);
    return st;
}

static cd_verdict_t verdict(cd_verdict_kind_t k, const char *rule)
{
    cd_verdict_t v;
    memset(&v, 0, sizeof(v));
    v.record = CD_RECORD_VERDICT;
    v.time_ms = 1795780800000;
    v.verdict = k;
    v.rule = rule;
    v.rule_kind = rule ? "threshold" : NULL;
    v.action = k == CD_VERDICT_ALERT ? CD_ACTION_ALERT : CD_ACTION_ROLLBACK;
    v.release = "2.5.0";
    v.threshold = rule ? 0 : __builtin_nan("");
    snprintf(v.reason, sizeof(v.reason), "%s", cd_verdict_kind_name(k));
    return v;
}

/* Waits until one of n agents holds the lease; returns its index. */
static int wait_leader(agent_t *a, int n, int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    while (mono_ms() < end) {
        for (int i = 0; i < n; i++)
            if (a[i].d && stats(&a[i]).leader) return i;
        sleep_ms(5);
    }
    return -1;
}

/* Waits until no agent has decisive records pending. */
static bool wait_settled(agent_t *a, int n, int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    while (mono_ms() < end) {
        bool all = true;
        for (int i = 0; i < n; i++)
            if (a[i].d && stats(&a[i]).pending) all = false;
        if (all) return true;
        sleep_ms(5);
    }
    return false;
}

static long long token_of(const rx_request_t *q)
{
    char h[64];
    if (!rx_header(q, "X-Canaryd-Fencing-Token", h, sizeof(h))) return -1;
    json_t *j = json_loads(q->body, 0, NULL);
    cr_assert_not_null(j);
    long long body = json_integer_value(json_object_get(j, "fencing_token"));
    json_decref(j);
    cr_assert_eq(body, atoll(h));
    return body;
}

static void hget(const char *key, const char *field, char *out, size_t size)
{
    redisContext *c = client();
    redisReply *r = redisCommand(c, "HGET %s %s", key, field);
    snprintf(out, size, "%s", r && r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    redisFree(c);
}

Test(coord_concurrency, three_agents_one_rollback_one_alert_with_a_fencing_token)
{
    setup();
    redis_start();
    agent_t a[3] = {{0}};
    const char *ids[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++)
        agent_start(&a[i], ids[i], 1500, 3000);
    int lead = wait_leader(a, 3, 5000);
    cr_assert_geq(lead, 0);
    /* every agent decides the same: one ROLLBACK, one ALERT, and a HEALTHY
     * verdict that only the leader sends */
    for (int i = 0; i < 3; i++) {
        cd_verdict_t v = verdict(CD_VERDICT_ROLLBACK, "errors");
        cr_assert(cd_dispatcher_submit(a[i].d, &v));
        v = verdict(CD_VERDICT_ALERT, "latency");
        cr_assert(cd_dispatcher_submit(a[i].d, &v));
    }
    cr_assert(rx_wait(rx, 2, 10000));
    cr_assert(wait_settled(a, 3, 10000));
    for (int i = 0; i < 3; i++)
        cr_assert_eq(cd_dispatcher_drain(a[i].d, 5000), 0);
    cr_assert_eq(rx_count(rx), 2);
    int rollbacks = 0, alerts = 0;
    for (int i = 0; i < 2; i++) {
        rx_request_t q = rx_get(rx, i);
        rollbacks += strstr(q.body, "\"verdict\":\"ROLLBACK\"") != NULL;
        alerts += strstr(q.body, "\"verdict\":\"ALERT\"") != NULL;
        cr_assert_eq(token_of(&q), (long long)stats(&a[lead]).token);
        rx_request_free(&q);
    }
    cr_assert_eq(rollbacks, 1);
    cr_assert_eq(alerts, 1);
    uint64_t won = 0, lost = 0;
    for (int i = 0; i < 3; i++) {
        won += stats(&a[i]).claims_won;
        lost += stats(&a[i]).claims_lost;
    }
    cr_assert_eq(won, 2);
    cr_assert_eq(lost, 0);
    char state[32];
    hget("t:claim:-:2.5.0:ROLLBACK:errors", "state", state, sizeof(state));
    cr_assert(strcmp(state, "done") == 0);
    for (int i = 0; i < 3; i++)
        agent_stop(&a[i]);
    teardown();
}

/* The claimer (token 5) died after its claim and before sending: the next
 * lease holder (token 6) takes the claim over and delivers, once. */
Test(coord_concurrency, claim_of_a_dead_leader_is_taken_over_and_delivered_once)
{
    setup();
    redis_start();
    redisContext *c = client();
    freeReplyObject(redisCommand(c, "SET t:fence 5"));
    freeReplyObject(redisCommand(c, "SET t:lease %s PX 800", "dead 5"));
    freeReplyObject(
        redisCommand(c, "HSET t:claim:-:2.5.0:ROLLBACK:errors state claimed token 5"));
    redisFree(c);
    agent_t a[2] = {{0}};
    agent_start(&a[0], "a", 1500, 3000);
    agent_start(&a[1], "b", 1500, 3000);
    for (int i = 0; i < 2; i++) {
        cd_verdict_t v = verdict(CD_VERDICT_ROLLBACK, "errors");
        cr_assert(cd_dispatcher_submit(a[i].d, &v));
    }
    cr_assert(rx_wait(rx, 1, 10000));
    cr_assert(wait_settled(a, 2, 10000));
    cr_assert_eq(rx_count(rx), 1);
    rx_request_t q = rx_get(rx, 0);
    cr_assert_eq(token_of(&q), 6);
    rx_request_free(&q);
    char state[32], tok[32];
    hget("t:claim:-:2.5.0:ROLLBACK:errors", "state", state, sizeof(state));
    hget("t:claim:-:2.5.0:ROLLBACK:errors", "token", tok, sizeof(tok));
    cr_assert(strcmp(state, "done") == 0);
    cr_assert(strcmp(tok, "6") == 0);
    for (int i = 0; i < 2; i++)
        agent_stop(&a[i]);
    teardown();
}

/* Already done (delivered by an earlier leader): nobody sends it again. */
Test(coord_concurrency, done_claim_is_not_sent_again)
{
    setup();
    redis_start();
    redisContext *c = client();
    freeReplyObject(redisCommand(c, "HSET t:claim:-:2.5.0:ROLLBACK:errors state done token 3"));
    redisFree(c);
    agent_t a[2] = {{0}};
    agent_start(&a[0], "a", 1500, 3000);
    agent_start(&a[1], "b", 1500, 3000);
    cr_assert_geq(wait_leader(a, 2, 5000), 0);
    for (int i = 0; i < 2; i++) {
        cd_verdict_t v = verdict(CD_VERDICT_ROLLBACK, "errors");
        cr_assert(cd_dispatcher_submit(a[i].d, &v));
    }
    cr_assert(wait_settled(a, 2, 10000));
    cr_assert_eq(rx_count(rx), 0);
    for (int i = 0; i < 2; i++)
        agent_stop(&a[i]);
    teardown();
}

/* The leader leaves (releases its lease): the standby takes over at once
 * and a later decision is delivered by it with a newer token. */
Test(coord_concurrency, leader_leaves_standby_takes_over)
{
    setup();
    redis_start();
    agent_t a[2] = {{0}};
    agent_start(&a[0], "a", 1500, 3000);
    agent_start(&a[1], "b", 1500, 3000);
    int lead = wait_leader(a, 2, 5000);
    cr_assert_geq(lead, 0);
    uint64_t t1 = stats(&a[lead]).token;
    /* the standby has read who leads (so it sees the lease change hands) */
    for (int64_t end = mono_ms() + 5000; !stats(&a[1 - lead]).holder[0] && mono_ms() < end;)
        sleep_ms(5);
    cr_assert(stats(&a[1 - lead]).holder[0] != '\0');
    agent_stop(&a[lead]);
    int next = wait_leader(a, 2, 5000);
    cr_assert_eq(next, 1 - lead);
    cr_assert_gt(stats(&a[next]).token, t1);
    cd_verdict_t v = verdict(CD_VERDICT_PROMOTE, NULL);
    cr_assert(cd_dispatcher_submit(a[next].d, &v));
    cr_assert(rx_wait(rx, 1, 10000));
    rx_request_t q = rx_get(rx, 0);
    cr_assert_eq(token_of(&q), (long long)stats(&a[next]).token);
    rx_request_free(&q);
    cr_assert_geq(stats(&a[next]).lease_changes, 1);
    agent_stop(&a[next]);
    teardown();
}

/* Redis gone: after fallback_after each agent delivers on its own (no
 * token), and counts it; Redis back: one notifier again. */
Test(coord_concurrency, redis_down_falls_back_to_each_agent_then_back)
{
    setup();
    agent_t a[2] = {{0}};
    agent_start(&a[0], "a", 900, 1000);
    agent_start(&a[1], "b", 900, 1000);
    for (int i = 0; i < 2; i++) {
        cd_verdict_t v = verdict(CD_VERDICT_ROLLBACK, "errors");
        cr_assert(cd_dispatcher_submit(a[i].d, &v));
    }
    cr_assert(rx_wait(rx, 2, 10000));
    for (int i = 0; i < 2; i++) {
        cd_coord_stats_t st = stats(&a[i]);
        cr_assert(st.fallback);
        cr_assert_eq(st.fallback_deliveries, 1);
        cr_assert(!st.redis_up);
    }
    for (int i = 0; i < 2; i++) {
        rx_request_t q = rx_get(rx, i);
        cr_assert_eq(token_of(&q), -1);
        cr_assert_not_null(strstr(q.body, "\"verdict\":\"ROLLBACK\""));
        rx_request_free(&q);
    }
    redis_start();
    int lead = wait_leader(a, 2, 10000);
    cr_assert_geq(lead, 0);
    cr_assert(wait_settled(a, 2, 10000));
    for (int i = 0; i < 2; i++)
        cr_assert(!stats(&a[i]).fallback);
    char state[32];
    hget("t:claim:-:2.5.0:ROLLBACK:errors", "state", state, sizeof(state));
    cr_assert(strcmp(state, "done") == 0);
    cr_assert_eq(rx_count(rx), 2);
    for (int i = 0; i < 2; i++)
        agent_stop(&a[i]);
    teardown();
}
