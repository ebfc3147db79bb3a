/*
 * canaryd-mock-kafka.c - a standalone Kafka-protocol broker for the demo,
 * the integration tests and the benchmarks, built on librdkafka's mock
 * cluster (rdkafka_mock.h).
 *
 *   canaryd-mock-kafka [--brokers N] [--topic NAME:PARTITIONS]...
 *                      [--port-file FILE]
 *
 * The mock cluster is a set of real listeners on 127.0.0.1 (random ports)
 * speaking the Kafka protocol, served by a thread inside librdkafka; any
 * client (canaryd, kcat, librdkafka) can produce to it and consume from it,
 * consumer groups included. It keeps everything in memory (librdkafka caps a
 * partition at about 5 MB / 100 000 message sets and drops the oldest).
 * rd_kafka_mock_cluster_new() needs an rd_kafka_t for its bookkeeping: a
 * producer with no bootstrap servers, which never connects anywhere.
 *
 * Output: the bootstrap address ("127.0.0.1:PORT[,127.0.0.1:PORT...]") as
 * the first line of stdout, flushed, and also written to --port-file
 * (atomically: written to FILE.tmp, then renamed, so a reader polling for
 * the file never sees half of it; removed again on a clean exit, so a stale
 * address never outlives the broker). Diagnostics go to stderr through
 * canaryd's log; librdkafka's own log lines are routed through it too.
 *
 * Threading: SIGTERM and SIGINT are blocked before librdkafka starts its
 * threads (they inherit the mask), and the main thread waits for them with
 * sigwait(): no async-signal handler, no flag polled in a loop, and an idle
 * broker costs no CPU. On either signal the cluster is destroyed (its
 * listeners closed) and the process exits 0.
 *
 * Fault injection (broker down, request errors, RTT) is deliberately not
 * exposed here: tests that need it run the mock cluster in-process and call
 * the mock API directly, where they can synchronise with it.
 *
 * Exit status: 0 after SIGTERM/SIGINT, 1 if the cluster cannot be started,
 * 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "canaryd/log.h"

#define MAX_TOPICS 64
#define MAX_BROKERS 16
#define MAX_PARTITIONS 1024

typedef struct topic_spec {
    char name[256]; /* a copy: argv stays intact, as ps shows it */
    int partitions;
} topic_spec_t;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: canaryd-mock-kafka [--brokers N] [--topic NAME:PARTITIONS]...\n"
            "                          [--port-file FILE]\n"
            "Runs an in-memory Kafka-protocol broker (librdkafka's mock cluster) on\n"
            "127.0.0.1 until SIGTERM or SIGINT. Prints the bootstrap address as the first\n"
            "line of stdout (and writes it to --port-file). --brokers 1..%d (default 1);\n"
            "--topic creates NAME with 1..%d partitions, replication min(brokers, 3)\n"
            "(repeatable; other topics are created on first use with 4 partitions).\n"
            "Exit: 0 after SIGTERM/SIGINT, 1 cannot start, 2 usage.\n",
            MAX_BROKERS, MAX_PARTITIONS);
}

/* Parses a decimal int in [lo, hi]; false otherwise. */
static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

/* librdkafka's log lines (syslog levels) into canaryd's log; one key per
 * facility so a flapping connection cannot flood stderr. */
static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    cd_log_level_t l = level <= 3   ? CD_LOG_ERROR
                       : level == 4 ? CD_LOG_WARN
                       : level <= 6 ? CD_LOG_INFO
                                    : CD_LOG_DEBUG;
    /* The bookkeeping handle has no bootstrap servers on purpose (see the
     * top of the file); librdkafka's warning about it would only mislead. */
    if (strcmp(fac, "CONFWARN") == 0 && strstr(buf, "bootstrap.servers")) return;
    char key[48];
    snprintf(key, sizeof key, "rdkafka:%s", fac);
    cd_log_ratelimited(key, l, "librdkafka %s: %s", fac, buf);
}

/* Writes the bootstrap list to path via path.tmp + rename. */
static int write_port_file(const char *path, const char *bootstraps)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        cd_log(CD_LOG_ERROR, "--port-file: path is too long");
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) goto err;
    int bad = fprintf(f, "%s\n", bootstraps) < 0;
    bad |= fclose(f) != 0;
    if (bad) goto err;
    if (rename(tmp, path) != 0) goto err;
    return 0;
err:
    cd_log(CD_LOG_ERROR, "--port-file %s: %s", path, strerror(errno));
    unlink(tmp);
    return -1;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"brokers", required_argument, NULL, 'b'},
                                             {"topic", required_argument, NULL, 't'},
                                             {"port-file", required_argument, NULL, 'p'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    topic_spec_t topics[MAX_TOPICS];
    int ntopics = 0, nbrokers = 1, opt, rc = 1;
    const char *port_file = NULL;
    bool wrote_port_file = false;
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mc = NULL;
    char errstr[512];

    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
            usage(stdout);
            return 0;
        case 'b':
            if (!parse_int(optarg, 1, MAX_BROKERS, &nbrokers)) {
                fprintf(stderr,
                        "canaryd-mock-kafka: --brokers: \"%s\" is not accepted; accepted: an "
                        "integer from 1 to %d\n",
                        optarg, MAX_BROKERS);
                return 2;
            }
            break;
        case 't': {
            char *colon = strrchr(optarg, ':');
            int parts;
            if (!colon || colon == optarg || !parse_int(colon + 1, 1, MAX_PARTITIONS, &parts)) {
                fprintf(stderr,
                        "canaryd-mock-kafka: --topic: \"%s\" is not accepted; accepted: "
                        "NAME:PARTITIONS with 1 to %d partitions, such as events:4\n",
                        optarg, MAX_PARTITIONS);
                return 2;
            }
            if (ntopics == MAX_TOPICS) {
                fprintf(stderr, "canaryd-mock-kafka: --topic: at most %d topics\n", MAX_TOPICS);
                return 2;
            }
            if ((size_t)(colon - optarg) >= sizeof topics[0].name) {
                fprintf(stderr, "canaryd-mock-kafka: --topic: the name is longer than 255 bytes\n");
                return 2;
            }
            snprintf(topics[ntopics].name, sizeof topics[0].name, "%.*s", (int)(colon - optarg),
                     optarg);
            topics[ntopics++].partitions = parts;
            break;
        }
        case 'p':
            port_file = optarg;
            break;
        default:
            fprintf(stderr, "canaryd-mock-kafka: unknown option or missing value: %s\n",
                    argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "canaryd-mock-kafka: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    /* Blocked before any librdkafka thread exists, so only sigwait() below
     * ever sees these signals. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, on_rdkafka_log);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf); /* only owned by rk on success */
        cd_log(CD_LOG_ERROR, "cannot create the librdkafka handle: %s", errstr);
        goto out;
    }
    mc = rd_kafka_mock_cluster_new(rk, nbrokers);
    if (!mc) {
        cd_log(CD_LOG_ERROR, "cannot start the mock cluster (%d brokers)", nbrokers);
        goto out;
    }
    int replication = nbrokers < 3 ? nbrokers : 3;
    for (int i = 0; i < ntopics; i++) {
        rd_kafka_resp_err_t e =
            rd_kafka_mock_topic_create(mc, topics[i].name, topics[i].partitions, replication);
        if (e) {
            cd_log(CD_LOG_ERROR, "cannot create topic \"%s\" (%d partitions): %s", topics[i].name,
                   topics[i].partitions, rd_kafka_err2str(e));
            goto out;
        }
    }
    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    if (port_file && write_port_file(port_file, bootstraps) < 0) goto out;
    wrote_port_file = port_file != NULL;
    printf("%s\n", bootstraps);
    if (fflush(stdout) != 0) {
        cd_log(CD_LOG_ERROR, "writing the bootstrap address to stdout: %s", strerror(errno));
        goto out;
    }
    cd_log(CD_LOG_INFO, "mock Kafka cluster up: %d broker(s) at %s, %d topic(s) created", nbrokers,
           bootstraps, ntopics);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ; /* sigwait only fails on an invalid set, which ours is not */
    cd_log(CD_LOG_INFO, "%s: shutting down the mock cluster", strsignal(sig));
    rc = 0;
out:
    /* A stale address would send the next reader to a closed port. */
    if (wrote_port_file) unlink(port_file);
    if (mc) rd_kafka_mock_cluster_destroy(mc);
    if (rk) rd_kafka_destroy(rk);
    return rc;
}
