/*
 * test_broker.c - the embedded broker ($CANARYD_TOOLS_DIR/canaryd-mock-kafka)
 * and `canaryd simulate` ($CANARYD_BIN), as separate processes, end to end
 * over the Kafka protocol with librdkafka clients in the test.
 *
 *  - the broker: prints its bootstrap address first, creates the topic with
 *    the asked partitions, carries a message from a producer to a consumer,
 *    exits 0 on SIGTERM with its port closed and its --port-file removed;
 *    bad options exit 2;
 *  - simulate: everything it produced is consumed back (the partitions'
 *    high watermarks give the total) and compared with what the generator
 *    yields for the same settings: the start is read back as the second of
 *    the earliest event, and cd_sim_second() regenerates those seconds, so
 *    payloads must match byte for byte (with --cohort-header: as JSON, with
 *    the cohort moved to the header). Keys are the request ids, spread over
 *    every partition, and the stderr summary counts what was delivered.
 *
 * Children get PR_SET_PDEATHSIG and the suite's fini kills any left, so a
 * failing assertion leaves nothing running. Waits poll with deadlines.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../wait_helpers.h"
#include "canaryd/event.h"
#include "canaryd/simgen.h"

#define TOPIC "events"
#define NPART 4
#define MAX_CHILDREN 4

static pid_t children[MAX_CHILDREN];

static void kill_children(void)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
            children[i] = 0;
        }
}

TestSuite(broker, .fini = kill_children, .timeout = 120);

/* fork + exec argv with stdout/stderr redirected (-1: inherited); the child
 * dies with the test process. */
static pid_t spawn(char *const argv[], int out_fd, int err_fd)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (out_fd >= 0) dup2(out_fd, STDOUT_FILENO);
        if (err_fd >= 0) dup2(err_fd, STDERR_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] == 0) {
            children[i] = pid;
            break;
        }
    return pid;
}

/* Exit status (0..255), 256 + signal if killed, or -1 if still running after
 * timeout_ms. */
static int wait_exit(pid_t pid, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        cr_assert(r >= 0, "waitpid: %s", strerror(errno));
        if (r == pid) {
            for (int i = 0; i < MAX_CHILDREN; i++)
                if (children[i] == pid) children[i] = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 256 + WTERMSIG(st);
        }
        if (mono_ms() > deadline) return -1;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static char *tool_path(const char *name)
{
    const char *dir = getenv("CANARYD_TOOLS_DIR");
    cr_assert_not_null(dir, "CANARYD_TOOLS_DIR is not set");
    char *p;
    cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

typedef struct broker {
    pid_t pid;
    char bootstrap[256];
    int out_fd;
} broker_t;

/* Starts canaryd-mock-kafka --topic events:4 [extra] and reads its first
 * stdout line within 10 s. */
static void broker_start(broker_t *b, const char *extra1, const char *extra2)
{
    char *bin = tool_path("canaryd-mock-kafka");
    char *argv[] = {bin, "--topic", TOPIC ":4", (char *)extra1, (char *)extra2, NULL};
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    b->pid = spawn(argv, fds[1], -1);
    close(fds[1]);
    b->out_fd = fds[0];
    size_t n = 0;
    int64_t deadline = mono_ms() + 10000;
    while (n == 0 || b->bootstrap[n - 1] != '\n') {
        struct pollfd p = {b->out_fd, POLLIN, 0};
        int left = (int)(deadline - mono_ms());
        cr_assert(left > 0 && poll(&p, 1, left) == 1, "no bootstrap line within 10 s");
        ssize_t r = read(b->out_fd, b->bootstrap + n, 1); /* byte by byte: only the line */
        cr_assert_eq(r, 1, "broker stdout closed before the bootstrap line");
        n++;
        cr_assert(n < sizeof b->bootstrap);
    }
    b->bootstrap[n - 1] = '\0';
    free(bin);
}

/* SIGTERM; must exit 0 within 5 s. */
static void broker_stop(broker_t *b)
{
    cr_assert_eq(kill(b->pid, SIGTERM), 0);
    int st = wait_exit(b->pid, 5000);
    cr_assert_eq(st, 0, "canaryd-mock-kafka: exit %d after SIGTERM (-1: still running)", st);
    close(b->out_fd);
}

/* Whether something accepts TCP connections on 127.0.0.1:port. */
static bool port_open(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    close(s);
    if (r != 0) cr_assert_eq(e, ECONNREFUSED, "connect: %s", strerror(e));
    return r == 0;
}

static rd_kafka_t *client_new(rd_kafka_type_t type, const char *bootstrap)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof err),
                 RD_KAFKA_CONF_OK, "%s", err);
    if (type == RD_KAFKA_CONSUMER) {
        cr_assert_eq(rd_kafka_conf_set(c, "group.id", "test-broker", err, sizeof err),
                     RD_KAFKA_CONF_OK);
        cr_assert_eq(rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof err),
                     RD_KAFKA_CONF_OK);
    }
    rd_kafka_t *rk = rd_kafka_new(type, c, err, sizeof err);
    cr_assert_not_null(rk, "rd_kafka_new: %s", err);
    return rk;
}

/* A consumer assigned every partition of TOPIC from the beginning. */
static rd_kafka_t *consumer_new(const char *bootstrap)
{
    rd_kafka_t *rk = client_new(RD_KAFKA_CONSUMER, bootstrap);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(NPART);
    for (int p = 0; p < NPART; p++)
        rd_kafka_topic_partition_list_add(l, TOPIC, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    cr_assert_eq(rd_kafka_assign(rk, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    return rk;
}

/* ---- the broker ---- */

static int dr_ok, dr_err;
static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    if (m->err)
        dr_err++;
    else
        dr_ok++;
}

Test(broker, produce_consume_and_sigterm)
{
    char port_file[] = "/tmp/canaryd-test-port-XXXXXX";
    int pf = mkstemp(port_file);
    cr_assert(pf >= 0);
    close(pf);
    unlink(port_file); /* the tool creates it */

    broker_t b;
    broker_start(&b, "--port-file", port_file);
    int port = 0;
    cr_assert_eq(sscanf(b.bootstrap, "127.0.0.1:%d", &port), 1, "bootstrap \"%s\"", b.bootstrap);
    cr_assert_null(strchr(b.bootstrap, ','), "one broker by default: \"%s\"", b.bootstrap);
    FILE *f = fopen(port_file, "r");
    cr_assert_not_null(f, "--port-file %s not written", port_file);
    char line[256] = "";
    cr_assert_not_null(fgets(line, sizeof line, f));
    fclose(f);
    line[strcspn(line, "\n")] = '\0';
    cr_assert_str_eq(line, b.bootstrap);

    /* The topic has the 4 partitions asked for. */
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(c, "bootstrap.servers", b.bootstrap, err, sizeof err),
                 RD_KAFKA_CONF_OK);
    rd_kafka_conf_set_dr_msg_cb(c, on_dr);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    cr_assert_not_null(p);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(p, TOPIC, NULL);
    const struct rd_kafka_metadata *md = NULL;
    cr_assert_eq(rd_kafka_metadata(p, 0, rkt, &md, 5000), RD_KAFKA_RESP_ERR_NO_ERROR);
    cr_assert_eq(md->topic_cnt, 1);
    cr_assert_eq(md->topics[0].err, RD_KAFKA_RESP_ERR_NO_ERROR);
    cr_assert_eq(md->topics[0].partition_cnt, NPART);
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);

    cr_assert_eq(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(2),
                                   RD_KAFKA_V_KEY("k1", 2), RD_KAFKA_V_VALUE("hello canary", 12),
                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                 RD_KAFKA_RESP_ERR_NO_ERROR);
    cr_assert_eq(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    cr_assert_eq(dr_ok, 1);
    cr_assert_eq(dr_err, 0);
    rd_kafka_destroy(p);

    rd_kafka_t *cons = consumer_new(b.bootstrap);
    rd_kafka_message_t *got = NULL;
    for (int64_t deadline = mono_ms() + 10000; !got && mono_ms() < deadline;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 100);
        if (m && !m->err)
            got = m;
        else if (m)
            rd_kafka_message_destroy(m); /* e.g. partition EOF events */
    }
    cr_assert_not_null(got, "nothing consumed within 10 s");
    cr_assert_eq(got->partition, 2);
    cr_assert_eq(got->offset, 0);
    cr_assert_eq(got->len, 12);
    cr_assert_eq(memcmp(got->payload, "hello canary", 12), 0);
    cr_assert_eq(got->key_len, 2);
    cr_assert_eq(memcmp(got->key, "k1", 2), 0);
    rd_kafka_message_destroy(got);
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);

    cr_assert(port_open(port));
    broker_stop(&b);
    cr_assert_not(port_open(port), "port %d still open after exit", port);
    cr_assert_eq(access(port_file, F_OK), -1, "--port-file left behind");
}

Test(broker, several_brokers_and_bad_options)
{
    broker_t b;
    broker_start(&b, "--brokers", "3");
    int ports[3], n = sscanf(b.bootstrap, "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", &ports[0],
                             &ports[1], &ports[2]);
    cr_assert_eq(n, 3, "bootstrap \"%s\"", b.bootstrap);
    for (int i = 0; i < 3; i++)
        cr_assert(port_open(ports[i]));
    broker_stop(&b);
    for (int i = 0; i < 3; i++)
        cr_assert_not(port_open(ports[i]));

    static const char *const bad[][2] = {
        {"--topic", "events"}, {"--topic", "events:0"}, {"--brokers", "0"}, {"--bogus", "1"}};
    char *bin = tool_path("canaryd-mock-kafka");
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int devnull = open("/dev/null", O_WRONLY);
        char *argv[] = {bin, (char *)bad[i][0], (char *)bad[i][1], NULL};
        pid_t pid = spawn(argv, devnull, devnull);
        close(devnull);
        cr_assert_eq(wait_exit(pid, 5000), 2, "%s %s", bad[i][0], bad[i][1]);
    }
    free(bin);
}

/* ---- simulate ---- */

typedef struct consumed {
    char *payload, *key, *header; /* NUL-terminated copies; header NULL if absent */
    int partition;
} consumed_t;

/* Consumes every message of TOPIC (the high watermarks say how many). */
static consumed_t *consume_all(const char *bootstrap, const char *header, size_t *count)
{
    rd_kafka_t *rk = consumer_new(bootstrap);
    int64_t total = 0;
    for (int p = 0; p < NPART; p++) {
        int64_t lo, hi;
        cr_assert_eq(rd_kafka_query_watermark_offsets(rk, TOPIC, p, &lo, &hi, 5000),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
        total += hi - lo;
    }
    cr_assert_gt(total, 0);
    consumed_t *v = calloc((size_t)total, sizeof *v);
    size_t n = 0;
    for (int64_t deadline = mono_ms() + 20000; n < (size_t)total && mono_ms() < deadline;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (!m->err) {
            v[n].payload = strndup(m->payload, m->len);
            v[n].key = strndup(m->key ? m->key : "", m->key_len);
            v[n].partition = m->partition;
            rd_kafka_headers_t *h;
            const void *hv;
            size_t hl;
            if (header && rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                rd_kafka_header_get_last(h, header, &hv, &hl) == RD_KAFKA_RESP_ERR_NO_ERROR)
                v[n].header = strndup(hv, hl);
            n++;
        }
        rd_kafka_message_destroy(m);
    }
    cr_assert_eq(n, (size_t)total, "consumed %zu of %lld within 20 s", n, (long long)total);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    *count = n;
    return v;
}

/* Runs canaryd simulate against bootstrap with the common settings plus
 * extra (NULL-terminated); returns its stderr. Must exit 0 within 30 s. */
static char *run_simulate(const char *bootstrap, const char *scenario, const char *duration,
                          const char *extra[])
{
    const char *bin = getenv("CANARYD_BIN");
    cr_assert_not_null(bin, "CANARYD_BIN is not set");
    char *argv[32] = {(char *)bin,      "simulate",
                      "--brokers",      (char *)bootstrap,
                      "--topic",        TOPIC,
                      "--scenario",     (char *)scenario,
                      "--duration",     (char *)duration,
                      "--rate",         "400",
                      "--canary-share", "0.1",
                      "--onset",        "1s",
                      "--seed",         "42"};
    int n = 18;
    for (int i = 0; extra && extra[i]; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    char path[] = "/tmp/canaryd-test-sim-XXXXXX";
    int efd = mkstemp(path);
    cr_assert(efd >= 0);
    unlink(path);
    pid_t pid = spawn(argv, -1, efd);
    int st = wait_exit(pid, 30000);
    struct stat sb;
    cr_assert_eq(fstat(efd, &sb), 0);
    char *err = calloc(1, (size_t)sb.st_size + 1);
    cr_assert_eq(pread(efd, err, (size_t)sb.st_size, 0), sb.st_size);
    close(efd);
    cr_assert_eq(st, 0, "canaryd simulate exited %d; stderr:\n%s", st, err);
    return err;
}

typedef struct expected {
    char **lines;
    size_t n, cap;
} expected_t;

static void on_expected(const char *line, size_t len, int64_t ts, void *opaque)
{
    expected_t *e = opaque;
    if (e->n == e->cap) {
        e->cap = e->cap ? 2 * e->cap : 1024;
        e->lines = realloc(e->lines, e->cap * sizeof *e->lines);
    }
    e->lines[e->n++] = strndup(line, len);
}

/* What the generator yields for seconds [start, start + seconds) with the
 * settings run_simulate passes. */
static void expected_lines(expected_t *e, const char *scenario, int64_t start, int seconds)
{
    cd_sim_conf_t c;
    cd_sim_conf_init(&c);
    cr_assert(cd_sim_scenario_parse(scenario, &c.scenario));
    c.start_ms = start;
    c.rate = 400;
    c.canary_share = 0.1;
    c.onset_ms = 1000;
    c.seed = 42;
    char err[256];
    cd_sim_t *sim = cd_sim_new(&c, err, sizeof err);
    cr_assert_not_null(sim, "%s", err);
    for (int i = 0; i < seconds; i++)
        cr_assert_geq(cd_sim_second(sim, start + i * 1000, on_expected, e), 0);
    cd_sim_destroy(sim);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Counts per (event type, cohort): index by a small table of names. */
typedef struct type_counts {
    char names[16][32];
    int ntypes;
    long n[16][CD_NCOHORTS];
} type_counts_t;

static void count_type(type_counts_t *tc, const char *type, size_t len, cd_cohort_t cohort)
{
    int i;
    for (i = 0; i < tc->ntypes; i++)
        if (strlen(tc->names[i]) == len && memcmp(tc->names[i], type, len) == 0) break;
    if (i == tc->ntypes) {
        cr_assert_lt(tc->ntypes, 16);
        snprintf(tc->names[tc->ntypes++], sizeof tc->names[0], "%.*s", (int)len, type);
    }
    tc->n[i][cohort]++;
}

static long count_of(const type_counts_t *tc, const char *type, cd_cohort_t cohort)
{
    for (int i = 0; i < tc->ntypes; i++)
        if (strcmp(tc->names[i], type) == 0) return tc->n[i][cohort];
    return 0;
}

static void assert_same_counts(const type_counts_t *got, const type_counts_t *want)
{
    cr_assert_eq(got->ntypes, want->ntypes);
    for (int i = 0; i < want->ntypes; i++)
        for (int c = 0; c < CD_NCOHORTS; c++)
            cr_assert_eq(count_of(got, want->names[i], (cd_cohort_t)c), want->n[i][c],
                         "%s %s: produced %ld, generator %ld", want->names[i],
                         cd_cohort_name((cd_cohort_t)c),
                         count_of(got, want->names[i], (cd_cohort_t)c), want->n[i][c]);
}

/* The start second: the second of the earliest event's timestamp. Checks
 * every event lies within [start, start + seconds). */
static int64_t start_of(const cd_decoder_t *d, consumed_t *v, size_t n, int seconds)
{
    int64_t min = INT64_MAX, max = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        cd_event_t ev;
        cr_assert_eq(cd_decode(d, v[i].payload, strlen(v[i].payload), &ev), CD_BAD_NONE, "%s",
                     v[i].payload);
        if (ev.ts_ms < min) min = ev.ts_ms;
        if (ev.ts_ms > max) max = ev.ts_ms;
    }
    int64_t start = min / 1000 * 1000;
    cr_assert_lt(max, start + seconds * 1000, "events span more than %d s", seconds);
    return start;
}

static long summary_delivered(const char *err)
{
    const char *s = strstr(err, "canaryd simulate: delivered ");
    cr_assert_not_null(s, "no summary in stderr:\n%s", err);
    long n = -1;
    cr_assert_eq(sscanf(s, "canaryd simulate: delivered %ld events", &n), 1);
    cr_assert_not_null(strstr(s, "; not delivered 0; undecodable 0\n"), "%s", s);
    return n;
}

Test(broker, simulate_produces_exactly_the_generator_stream)
{
    broker_t b;
    broker_start(&b, NULL, NULL);
    char *err = run_simulate(b.bootstrap, "error-regression", "3s", NULL);
    size_t n;
    consumed_t *v = consume_all(b.bootstrap, NULL, &n);
    broker_stop(&b);
    cr_assert_eq(summary_delivered(err), (long)n);

    cd_decode_conf_t dc;
    cd_decode_conf_init(&dc);
    dc.service_path = "request_id"; /* to compare with the message key */
    char e[256];
    cd_decoder_t *d = cd_decoder_new(&dc, e, sizeof e);
    cr_assert_not_null(d, "%s", e);
    int64_t start = start_of(d, v, n, 3);

    expected_t want = {0};
    expected_lines(&want, "error-regression", start, 3);
    cr_assert_eq(n, want.n, "consumed %zu events, the generator yields %zu", n, want.n);

    type_counts_t got_tc = {0}, want_tc = {0};
    char **got_lines = calloc(n, sizeof *got_lines);
    int per_part[NPART] = {0};
    for (size_t i = 0; i < n; i++) {
        cd_event_t ev;
        cr_assert_eq(cd_decode(d, v[i].payload, strlen(v[i].payload), &ev), CD_BAD_NONE);
        cr_assert_eq(strlen(v[i].key), ev.service_len);
        cr_assert_eq(memcmp(v[i].key, ev.service, ev.service_len), 0, "key %s for %s", v[i].key,
                     v[i].payload);
        count_type(&got_tc, ev.type_str, ev.type_len, ev.cohort);
        got_lines[i] = v[i].payload;
        per_part[v[i].partition]++;
    }
    for (size_t i = 0; i < want.n; i++) {
        cd_event_t ev;
        cr_assert_eq(cd_decode(d, want.lines[i], strlen(want.lines[i]), &ev), CD_BAD_NONE);
        count_type(&want_tc, ev.type_str, ev.type_len, ev.cohort);
    }
    assert_same_counts(&got_tc, &want_tc);
    /* The scenario's effect is in the stream: errors in both cohorts. */
    cr_assert_gt(count_of(&got_tc, "ERROR_OCCURRED", CD_COHORT_STABLE), 0);
    cr_assert_gt(count_of(&got_tc, "REQUEST_COMPLETED", CD_COHORT_CANARY), 50);
    for (int p = 0; p < NPART; p++)
        cr_assert_gt(per_part[p], 0, "partition %d got no event: keys do not spread load", p);

    qsort(got_lines, n, sizeof *got_lines, cmp_str);
    qsort(want.lines, want.n, sizeof *want.lines, cmp_str);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(got_lines[i], want.lines[i]);

    cd_decoder_destroy(d);
    for (size_t i = 0; i < n; i++)
        free(v[i].payload), free(v[i].key), free(v[i].header);
    for (size_t i = 0; i < want.n; i++)
        free(want.lines[i]);
    free(want.lines), free(got_lines), free(v), free(err);
}

/* Pairs by request id (unique per event). */
static int cmp_rid(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "request_id"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "request_id"));
    return strcmp(x, y);
}

Test(broker, simulate_cohort_in_header)
{
    broker_t b;
    broker_start(&b, NULL, NULL);
    const char *extra[] = {"--cohort-header", "x-cohort", NULL};
    char *err = run_simulate(b.bootstrap, "healthy", "2s", extra);
    size_t n;
    consumed_t *v = consume_all(b.bootstrap, "x-cohort", &n);
    broker_stop(&b);
    cr_assert_eq(summary_delivered(err), (long)n);

    /* Without a cohort field the decoder derives it from the version. */
    cd_decode_conf_t dc;
    cd_decode_conf_init(&dc);
    dc.cohort_path = NULL;
    dc.canary_version = "2.5.0";
    char e[256];
    cd_decoder_t *d = cd_decoder_new(&dc, e, sizeof e);
    cr_assert_not_null(d, "%s", e);
    int64_t start = start_of(d, v, n, 2);
    expected_t want = {0};
    expected_lines(&want, "healthy", start, 2);
    cr_assert_eq(n, want.n, "consumed %zu events, the generator yields %zu", n, want.n);

    type_counts_t got_tc = {0}, want_tc = {0};
    json_t **got = calloc(n, sizeof *got), **wantj = calloc(n, sizeof *wantj);
    for (size_t i = 0; i < n; i++) {
        cd_event_t ev;
        cr_assert_not_null(v[i].header, "no x-cohort header on %s", v[i].payload);
        cr_assert_eq(cd_decode(d, v[i].payload, strlen(v[i].payload), &ev), CD_BAD_NONE);
        cr_assert_str_eq(v[i].header, cd_cohort_name(ev.cohort), "%s", v[i].payload);
        count_type(&got_tc, ev.type_str, ev.type_len, ev.cohort);
        got[i] = json_loads(v[i].payload, 0, NULL);
        cr_assert_not_null(got[i]);
        cr_assert_null(json_object_get(got[i], "cohort"), "cohort left in %s", v[i].payload);
        /* With the cohort put back, the payload is the generator's event. */
        json_object_set_new(got[i], "cohort", json_string(v[i].header));

        wantj[i] = json_loads(want.lines[i], 0, NULL);
        cr_assert_not_null(wantj[i]);
        cr_assert_eq(cd_decode(d, want.lines[i], strlen(want.lines[i]), &ev), CD_BAD_NONE);
        count_type(&want_tc, ev.type_str, ev.type_len, ev.cohort);
    }
    assert_same_counts(&got_tc, &want_tc);
    cr_assert_gt(count_of(&got_tc, "REQUEST_COMPLETED", CD_COHORT_CANARY), 30);
    qsort(got, n, sizeof *got, cmp_rid);
    qsort(wantj, n, sizeof *wantj, cmp_rid);
    for (size_t i = 0; i < n; i++) {
        char *g = json_dumps(got[i], JSON_SORT_KEYS), *w = json_dumps(wantj[i], JSON_SORT_KEYS);
        cr_assert(json_equal(got[i], wantj[i]), "produced %s\ngenerator %s", g, w);
        free(g), free(w);
        json_decref(got[i]), json_decref(wantj[i]);
    }

    cd_decoder_destroy(d);
    for (size_t i = 0; i < n; i++)
        free(v[i].payload), free(v[i].key), free(v[i].header);
    for (size_t i = 0; i < want.n; i++)
        free(want.lines[i]);
    free(want.lines), free(got), free(wantj), free(v), free(err);
}

Test(broker, simulate_usage_errors)
{
    const char *bin = getenv("CANARYD_BIN");
    cr_assert_not_null(bin);
    static const char *const cases[][8] = {
        {"simulate", "--topic", "t", "--scenario", "healthy", NULL}, /* no --brokers */
        {"simulate", "--brokers", "127.0.0.1:1", "--topic", "t", "--scenario", "nope", NULL},
        {"simulate", "--brokers", "127.0.0.1:1", "--topic", "t", "--scenario", "healthy",
         "--property"},
    };
    static const char *const want[] = {"--brokers is required", "\"nope\" is not a scenario",
                                       "missing value"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *argv[12] = {(char *)bin};
        int n = 1;
        for (int k = 0; k < 8 && cases[i][k]; k++)
            argv[n++] = (char *)cases[i][k];
        argv[n] = NULL;
        char path[] = "/tmp/canaryd-test-sim-XXXXXX";
        int efd = mkstemp(path);
        unlink(path);
        pid_t pid = spawn(argv, efd, efd);
        cr_assert_eq(wait_exit(pid, 5000), 2, "case %zu", i);
        char buf[4096] = "";
        cr_assert_geq(pread(efd, buf, sizeof buf - 1, 0), 0);
        close(efd);
        cr_assert_not_null(strstr(buf, want[i]), "case %zu: stderr:\n%s", i, buf);
    }
}

/* librdkafka's own message for a rejected property; an argument without '='
 * (which may be a secret) is never echoed. */
Test(broker, simulate_bad_property)
{
    const char *bin = getenv("CANARYD_BIN");
    cr_assert_not_null(bin);
    static const char *const props[] = {"acks=banana", "hunter2-secret"};
    static const char *const want[] = {
        "canaryd simulate: --property acks: Invalid value for configuration property",
        "canaryd simulate: --property: expected KEY=VALUE"};
    for (int i = 0; i < 2; i++) {
        char *argv[] = {(char *)bin,  "simulate", "--brokers",  "127.0.0.1:1",    "--topic", "t",
                        "--scenario", "healthy",  "--property", (char *)props[i], NULL};
        char path[] = "/tmp/canaryd-test-sim-XXXXXX";
        int efd = mkstemp(path);
        unlink(path);
        pid_t pid = spawn(argv, efd, efd);
        cr_assert_eq(wait_exit(pid, 5000), 2);
        char buf[4096] = "";
        cr_assert_geq(pread(efd, buf, sizeof buf - 1, 0), 0);
        close(efd);
        cr_assert_not_null(strstr(buf, want[i]), "stderr:\n%s", buf);
        cr_assert_null(strstr(buf, "hunter2"), "argument echoed:\n%s", buf);
    }
}
