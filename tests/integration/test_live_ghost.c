/*
 * test_live_ghost.c - issue 11: an agent whose consumer group holds a
 * ghost. A process killed with SIGKILL stays a member of its group until
 * its session expires, keeping its share of the partitions; the live agent
 * meanwhile holds only part of the topic and must not judge it
 * (kafka_source.c, "Coverage").
 *
 * How the ghost is made on librdkafka 2.0.2's mock cluster (in this
 * process): a plain kill -9 and restart never yields a partial assignment
 * there, because the mock elects the FIRST listed member as the group's
 * leader -- the dead one, which never syncs -- so the restarted process is
 * assigned nothing until the dead session expires (seen: 0 partial looks in
 * 49 s; rdkafka_mock_cgrp.c elect_leader). A live member must come first:
 * the subject runs, a second process joins its group (both now hold half:
 * the two-agents-one-group mistake, also caught), and that second process
 * is killed with SIGKILL, a ghost holding half until SESSION_MS later.
 * Asserted: while the subject holds part of the partitions, /readyz is 503
 * with "N of 4 partitions assigned: another member of group gsub holds the
 * rest" and its judged_until does not move (no verdict but the held one);
 * once the ghost expires it is ready with all 4, and its windows at every
 * second from before the second process joined to the present equal, per
 * rule, type and cohort, exactly, those of a control agent never
 * interrupted (another group on the same topic).
 *
 * windows.slack 2m: kafka.max_lag_wait (its default) bounds every hold, and
 * the ghost is held 19-46 s (10 s session, then the mock's rebalance waits).
 * Data: `canaryd simulate` (healthy) at 400 events/s over 4 partitions. Every
 * wait is on a condition, bounded generously; the suite runs in about 40 s.
 */
#include "kafka_mock.h"
#include "live_helpers.h"

#include <criterion/logging.h>

#include "canaryd/timeutil.h"

#define TOPIC "events"
#define PARTS 4
#define SESSION_MS 10000

static void setup(void)
{
    scratch_make("cd_ghost_");
    mock_start(TOPIC, PARTS);
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void teardown(void)
{
    kill_children();
    mock_stop();
    curl_global_cleanup();
    scratch_remove();
}

TestSuite(live_ghost, .init = setup, .fini = teardown, .timeout = 300);

static void write_config(const char *name, int session_ms)
{
    char text[2048];
    snprintf(text, sizeof text,
             "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\"]},\n"
             " \"windows\": {\"resolution\": \"1s\", \"allowed_lateness\": \"2s\",\n"
             "   \"max_future_skew\": \"30s\", \"slack\": \"2m\"},\n"
             " \"verdicts\": {\"promote_after\": \"10m\", \"min_canary_events\": 0},\n"
             " \"rules\": [{\"name\": \"error-rate\", \"kind\": \"relative\",\n"
             "   \"numerator\": [\"ERROR_OCCURRED\"], \"denominator\": [\"REQUEST_COMPLETED\"],\n"
             "   \"op\": \">\", \"factor\": 2, \"floor\": 0.002, \"window\": \"10s\",\n"
             "   \"for\": \"5s\", \"min_samples\": {\"canary\": 50, \"stable\": 200},\n"
             "   \"action\": \"rollback\"}],\n"
             " \"kafka\": {\"topics\": [\"" TOPIC "\"],\n"
             "   \"properties\": {\"session.timeout.ms\": %d, \"heartbeat.interval.ms\": 500}},\n"
             " \"http\": {\"bind\": \"127.0.0.1:0\"}}\n",
             session_ms);
    write_text(name, text);
}

typedef struct agent {
    const char *name, *group, *config;
    pid_t pid;
    int port, incarnation;
    char out[32], err[32];
    int64_t started_ms;
} agent_t;

static void agent_start(agent_t *a)
{
    a->incarnation++;
    snprintf(a->out, sizeof a->out, "%s%d.out", a->name, a->incarnation);
    snprintf(a->err, sizeof a->err, "%s%d.err", a->name, a->incarnation);
    a->started_ms = now_ms();
    a->pid = start(a->out, a->err,
                   ARGS("--config", path_of(a->config), "--group", a->group, "--threads", "2"));
    a->port = http_port(a->err, 30000);
}

/* A gauge of /metrics; -1 without it. */
static int metric(const agent_t *a, const char *name)
{
    char url[128], needle[128];
    long st = 0;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", a->port);
    snprintf(needle, sizeof needle, "\n%s ", name);
    char *m = http_get(url, &st);
    const char *p = m ? strstr(m, needle) : NULL;
    int n = p ? atoi(p + strlen(needle)) : -1;
    free(m);
    return n;
}

/* /readyz: status, and the reason copied into why. */
static long readyz(const agent_t *a, char *why, size_t size)
{
    long st = 0;
    json_t *j = http_json_at(a->port, "/readyz", &st);
    const char *r = j ? json_string_value(json_object_get(j, "reason")) : NULL;
    snprintf(why, size, "%s", r ? r : "");
    json_decref(j);
    return st;
}

typedef struct cur {
    const agent_t *a;
    int64_t since_ms;
} cur_t;

/* ready with every partition, and judged past since_ms */
static bool is_current(void *arg)
{
    cur_t *c = arg;
    char why[512];
    return readyz(c->a, why, sizeof why) == 200 &&
           metric(c->a, "canaryd_kafka_assigned_partitions") == PARTS &&
           judged_until_ms(c->a->port) > c->since_ms;
}

/* live_helpers.h's windows_rules_at for agent a. */
static json_t *windows_at(const agent_t *a, int64_t s)
{
    char who[48];
    snprintf(who, sizeof who, "%s%d", a->name, a->incarnation);
    return windows_rules_at(a->port, s, who);
}

/* The subject's partial looks: 503 with the reason, judged_until still. */
typedef struct partial {
    int looks, last;
    int64_t judged; /* judged_until at the first look */
} partial_t;

static void look_partial(const agent_t *a, int n, partial_t *p)
{
    char why[512], expect[200];
    long st = readyz(a, why, sizeof why);
    /* the count again after the reason: a rebalance may have moved it */
    if (metric(a, "canaryd_kafka_assigned_partitions") != n) return;
    snprintf(expect, sizeof expect,
             "%d of %d partitions assigned: another member of group gsub holds the rest", n, PARTS);
    cr_assert(st == 503 && strstr(why, expect), "%s with %d of %d partitions: /readyz %ld %s",
              a->name, n, PARTS, st, why);
    int64_t j = judged_until_ms(a->port);
    if (!p->looks++) p->judged = j;
    cr_assert_eq(j, p->judged, "%s judged on with %d of %d partitions: %lld, then %lld", a->name, n,
                 PARTS, (long long)p->judged, (long long)j);
    p->last = n;
}

Test(live_ghost, a_ghost_member_holding_partitions_holds_the_verdict_until_it_expires)
{
    write_config("agent.json", SESSION_MS);
    agent_t ctl = {.name = "ctl", .group = "gctl", .config = "agent.json"};
    agent_t sub = {.name = "sub", .group = "gsub", .config = "agent.json"};
    agent_t two = {.name = "two", .group = "gsub", .config = "agent.json"};
    agent_start(&ctl);
    agent_start(&sub);
    pid_t sim =
        spawn_canaryd(NULL, "sim.out", "sim.err",
                      ARGS("simulate", "--brokers", bootstraps, "--topic", TOPIC, "--scenario",
                           "healthy", "--rate", "400", "--canary-share", "0.125", "--seed", "3"));
    cur_t c = {&sub, now_ms() + 3000};
    cr_assert(wait_until(is_current, &c, 60000), "subject not current:\n%s", read_file(sub.err));
    cr_assert_eq(metric(&sub, "canaryd_kafka_topic_partitions"), PARTS);
    int64_t before = judged_until_ms(sub.port);

    /* a second process in the group: the subject is left with part */
    agent_start(&two);
    partial_t p = {0};
    for (int64_t end = mono_ms() + 60000; mono_ms() < end && p.looks < 5; sleep_ms(100)) {
        int n = metric(&sub, "canaryd_kafka_assigned_partitions");
        if (n > 0 && n < PARTS) look_partial(&sub, n, &p);
    }
    cr_assert_geq(p.looks, 5, "the subject never held part of the partitions:\n%s",
                  read_file(sub.err));

    /* killed: a ghost holding its share until its session expires */
    cr_assert_eq(kill(two.pid, SIGKILL), 0);
    int ks = finish(two.pid, false, 10000, NULL);
    cr_assert(WIFSIGNALED(ks) && WTERMSIG(ks) == SIGKILL);
    int64_t killed = now_ms();
    int ghost = p.looks;
    for (int64_t end = mono_ms() + SESSION_MS + 60000; mono_ms() < end; sleep_ms(100)) {
        int n = metric(&sub, "canaryd_kafka_assigned_partitions");
        if (n == PARTS) break;
        if (n > 0) look_partial(&sub, n, &p);
    }
    cr_log_info("ghost: %d looks with %d of %d partitions (%d after the kill), judged held at "
                "%lld; all %d assigned %lld ms after the kill",
                p.looks, p.last, PARTS, p.looks - ghost, (long long)p.judged, PARTS,
                (long long)(now_ms() - killed));
    cr_assert_gt(p.looks - ghost, 0, "no partial look after the kill");

    /* the ghost expired: ready with every partition, the control's windows */
    cur_t c2 = {&sub, killed};
    cr_assert(wait_until(is_current, &c2, 60000), "subject not current after the ghost:\n%s",
              read_file(sub.err));
    int64_t from = before / 1000 - 2, to = judged_until_ms(sub.port) / 1000;
    cr_assert_geq(to, from + 5);
    for (int64_t s = from; s <= to; s++) {
        json_t *a = windows_at(&ctl, s), *b = windows_at(&sub, s);
        char *da = json_dumps(a, JSON_COMPACT), *db = json_dumps(b, JSON_COMPACT);
        cr_assert(json_equal(a, b), "windows at %lld differ:\ncontrol %s\nsubject %s", (long long)s,
                  da, db);
        free(da);
        free(db);
        json_decref(a);
        json_decref(b);
    }
    cr_log_info("windows equal at %lld seconds, from %lld to %lld", (long long)(to - from + 1),
                (long long)from, (long long)to);

    finish(sim, true, 10000, NULL);
    cr_assert_eq(exit_code(finish(sub.pid, true, 15000, NULL)), 0);
    cr_assert_eq(exit_code(finish(ctl.pid, true, 15000, NULL)), 0);
}
