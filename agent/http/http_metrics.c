/*
 * http_metrics.c - GET /metrics: the Prometheus text exposition format
 * 0.0.4, every series with its HELP and TYPE lines, names prefixed
 * canaryd_. Rendered per scrape into an open_memstream buffer from a
 * snapshot copy (pipeline counters, verdict, rules), the Kafka source's and
 * the dispatcher's thread-safe stats, and /proc/self/statm. Every series is
 * listed in docs/http-api.md.
 *
 * One unit per series: rule_value / rule_threshold hold ratios and counts
 * (unit 1); a percentile rule's quantile is in its numeric field's unit
 * (milliseconds for sop.yaml's latency_ms) and goes to rule_quantile /
 * rule_quantile_threshold instead, never mixed with ratios. The standard
 * process_* series (Prometheus client conventions, from /proc/self) and
 * canaryd_build_info let the usual dashboards and alerts work unchanged.
 *
 * Counters that are zero are still written (a series that appears only
 * after its first event breaks rate() over the gap); label sets with
 * unbounded values (topics, sinks) come from the config or the assignment,
 * never from event payloads. Label values are escaped as the format asks
 * (backslash, double quote, newline).
 */
#include <dirent.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "canaryd/coord.h"
#include "canaryd/event.h"
#include "canaryd/verdict.h"
#include "http_internal.h"

#define MAX_SINKS 64
#define MAX_PARTS 1024

static void esc(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fprintf(f, "\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP canaryd_%s %s\n# TYPE canaryd_%s %s\n", name, help, name, type);
}

/* For series outside canaryd_ (process_*). */
static void head_raw(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A series without labels: its HELP and TYPE, then "canaryd_NAME V". The
 * name is written once, so the head and the sample cannot disagree. */
static void series_u64(FILE *f, const char *name, const char *type, const char *help,
                       unsigned long long v)
{
    head(f, name, type, help);
    fprintf(f, "canaryd_%s %llu\n", name, v);
}

/* The same for a 0/1 gauge. */
static void series_flag(FILE *f, const char *name, const char *type, const char *help, bool on)
{
    series_u64(f, name, type, help, on ? 1 : 0);
}

static void num(FILE *f, double v)
{
    if (isnan(v))
        fputs("NaN", f);
    else if (isinf(v))
        fputs(v > 0 ? "+Inf" : "-Inf", f);
    else
        fprintf(f, "%.15g", v);
}

static void events(FILE *f, const cd_snapshot_t *s)
{
    const cd_pipeline_stats_t *st = &s->stats;
    head(f, "events_total", "counter", "Events accepted, by event type and cohort.");
    for (int t = 0; t <= s->ntypes; t++) {
        int row = t < s->ntypes ? t : CD_MAX_TYPES;
        const char *name = t < s->ntypes ? s->type_names[t] : "other";
        for (int c = 0; c < CD_NCOHORTS; c++) {
            fputs("canaryd_events_total{type=\"", f);
            esc(f, name ? name : "");
            fprintf(f, "\",cohort=\"%s\"} %llu\n", c == CD_COHORT_CANARY ? "canary" : "stable",
                    (unsigned long long)st->by_type[row][c]);
        }
    }
    head(f, "bad_input_total", "counter", "Input rejected, by reason.");
    for (int r = 1; r < CD_BAD__COUNT; r++)
        fprintf(f, "canaryd_bad_input_total{reason=\"%s\"} %llu\n",
                cd_bad_reason_name((cd_bad_reason_t)r), (unsigned long long)st->bad[r]);
    head(f, "other_service_events_total", "counter",
         "Events not judged because events.service names another service: other_service "
         "(their service field differs), no_service (they have none).");
    fprintf(f, "canaryd_other_service_events_total{reason=\"other_service\"} %llu\n",
            (unsigned long long)st->other_service);
    fprintf(f, "canaryd_other_service_events_total{reason=\"no_service\"} %llu\n",
            (unsigned long long)st->no_service);
    head(f, "service_info", "gauge",
         "1, labelled with the service judged (\"\" until learnt) and where it comes from: "
         "config (events.service, other services not judged) or events (the first canary "
         "event's, every event judged).");
    fputs("canaryd_service_info{service=\"", f);
    esc(f, s->service);
    fprintf(f, "\",source=\"%s\"} 1\n", s->service_configured ? "config" : "events");
    series_u64(f, "bad_numeric_fields_total", "counter",
               "Numeric fields present but not a finite number (the event still counts).",
               st->bad_numeric);
    series_u64(f, "late_events_total", "counter", "Events dropped: older than the window ring.",
               st->late);
    series_u64(f, "future_events_total", "counter",
               "Events dropped: more than max_future_skew ahead of the clock.", st->future);
    series_u64(f, "evaluations_total", "counter",
               "Rule evaluations (10 ms grid, lazily: after events, bucket edges, deadlines).",
               st->evaluations);
    series_u64(f, "records_total", "counter", "Verdict and state records emitted.", st->records);
}

static void kafka(FILE *f, const cd_kafka_source_t *k)
{
    if (!k) return;
    cd_kafka_stats_t ks;
    cd_kafka_source_stats(k, &ks);
    series_u64(f, "kafka_messages_total", "counter", "Kafka messages handed to the pipeline.",
               ks.messages);
    series_u64(f, "kafka_errors_total", "counter",
               "Consumer errors reported by librdkafka (retried).", ks.kafka_errors);
    series_u64(f, "kafka_rebalances_total", "counter", "Partition assignments and revocations.",
               ks.rebalances);
    head(f, "kafka_assigned_partitions", "gauge", "Partitions assigned to this agent now.");
    fprintf(f, "canaryd_kafka_assigned_partitions %d\n", ks.assigned);
    head(f, "kafka_topic_partitions", "gauge",
         "Partitions of the consumed topic(s), from the broker's metadata (-1 unknown); "
         "judged only while all are assigned.");
    fprintf(f, "canaryd_kafka_topic_partitions %d\n", ks.topic_partitions);
    cd_kafka_lag_t *lag = malloc(MAX_PARTS * sizeof(*lag));
    if (!lag) return;
    int n = cd_kafka_source_lag(k, lag, MAX_PARTS);
    head(f, "consumer_lag", "gauge",
         "Messages between the consumer position and the high watermark, per assigned "
         "partition (absent while unknown).");
    for (int i = 0; i < n && i < MAX_PARTS; i++) {
        if (lag[i].lag < 0) continue;
        fputs("canaryd_consumer_lag{topic=\"", f);
        esc(f, lag[i].topic);
        fprintf(f, "\",partition=\"%d\"} %lld\n", (int)lag[i].partition, (long long)lag[i].lag);
    }
    free(lag);
}

/* The live clock's watermark (live.c, "Watermark"), from the snapshot. */
static void watermark(FILE *f, const cd_snapshot_t *s, const cd_kafka_source_t *k)
{
    head(f, "watermark_lag_seconds", "gauge",
         "Wall time minus the watermark: the time up to which every assigned partition is known "
         "to be read (NaN while unknown).");
    fputs("canaryd_watermark_lag_seconds ", f);
    num(f, s->lag_known ? (double)s->lag_ms / 1000.0 : NAN);
    fputc('\n', f);
    series_flag(
        f, "verdict_held", "gauge",
        "1 while judgement is held back because a partition is behind (the verdict is the last "
        "one judged), else 0.",
        s->held);
    series_flag(
        f, "catchup", "gauge",
        "1 while the agent rebuilds its windows from Kafka after its start, judging history in "
        "event time (its records carry \"catchup\":true), else 0.",
        s->catchup);
    head(f, "catchup_duration_seconds", "gauge",
         "How long the rebuild after the start took (0 until it is done).");
    fputs("canaryd_catchup_duration_seconds ", f);
    num(f, (double)s->catchup_ms / 1000.0);
    fputc('\n', f);
    if (!k) return;
    cd_kafka_stats_t ks;
    cd_kafka_source_stats(k, &ks);
    series_u64(f, "kafka_start_searches_total", "counter",
               "Partitions whose start offset was looked for by time (start by time).",
               ks.start_searches);
    series_u64(f, "kafka_start_probes_total", "counter",
               "Messages read (not counted) to find the partitions' start offsets by time.",
               ks.start_probes);
    series_u64(f, "kafka_start_failed_total", "counter",
               "Partitions whose start by time was not found in time (started at the committed "
               "offset).",
               ks.start_failed);
    series_u64(
        f, "watermark_probes_failed_total", "counter",
        "End-offset probes of the watermark prober that failed (broker unreachable or slow).",
        cd_kafka_source_probes_failed(k));
}

static void rules(FILE *f, const cd_snapshot_t *s)
{
    static const cd_rule_state_t states[] = {CD_STATE_INACTIVE, CD_STATE_PENDING, CD_STATE_FIRING,
                                             CD_STATE_RESOLVED};
    head(f, "rule_state", "gauge", "1 for each rule's current state, 0 for the others.");
    for (int i = 0; i < s->nrules; i++)
        for (size_t k = 0; k < sizeof(states) / sizeof(states[0]); k++) {
            fputs("canaryd_rule_state{rule=\"", f);
            esc(f, s->rules[i].name);
            fprintf(f, "\",state=\"%s\"} %d\n", cd_rule_state_name(states[k]),
                    s->rules[i].state == states[k]);
        }
    /* Ratios and counts here; percentile rules' quantiles below, in their
     * field's unit. */
    static const struct {
        const char *name, *help;
        bool quantile, threshold;
    } VALUES[] = {
        {"rule_value",
         "The canary's current value of each ratio or count rule's signal (NaN without data).",
         false, false},
        {"rule_threshold",
         "The value each ratio or count rule compared the canary with at its last evaluation (NaN "
         "if none).",
         false, true},
        {"rule_quantile",
         "The canary's current quantile of each percentile rule, in the unit of the rule's numeric "
         "field (NaN without data).",
         true, false},
        {"rule_quantile_threshold",
         "The quantile each percentile rule compared the canary's with at its last evaluation, in "
         "the field's unit (NaN if none).",
         true, true},
    };
    for (size_t k = 0; k < sizeof(VALUES) / sizeof(VALUES[0]); k++) {
        head(f, VALUES[k].name, "gauge", VALUES[k].help);
        for (int i = 0; i < s->nrules; i++) {
            const cd_snapshot_rule_t *r = &s->rules[i];
            if (r->quantile != VALUES[k].quantile) continue;
            fprintf(f, "canaryd_%s{rule=\"", VALUES[k].name);
            esc(f, r->name);
            fputs("\"} ", f);
            num(f, VALUES[k].threshold ? r->threshold : r->observed_valid ? r->observed : NAN);
            fputc('\n', f);
        }
    }
    head(f, "rule_samples", "gauge", "Canary samples in each rule's window.");
    for (int i = 0; i < s->nrules; i++) {
        fputs("canaryd_rule_samples{rule=\"", f);
        esc(f, s->rules[i].name);
        fprintf(f, "\"} %llu\n", (unsigned long long)s->rules[i].samples);
    }
    static const cd_verdict_kind_t verdicts[] = {CD_VERDICT_ANALYZING, CD_VERDICT_HEALTHY,
                                                 CD_VERDICT_PROMOTE, CD_VERDICT_ROLLBACK,
                                                 CD_VERDICT_ALERT};
    head(f, "verdict", "gauge", "1 for the release's current verdict, 0 for the others.");
    for (size_t k = 0; k < sizeof(verdicts) / sizeof(verdicts[0]); k++) {
        fprintf(f, "canaryd_verdict{verdict=\"%s\",release=\"", cd_verdict_kind_name(verdicts[k]));
        esc(f, s->release);
        fprintf(f, "\"} %d\n", s->verdict == verdicts[k]);
    }
}

static void sinks(FILE *f, cd_dispatcher_t *d)
{
    if (!d) return;
    cd_sink_stats_t *st = malloc(MAX_SINKS * sizeof(*st));
    if (!st) return;
    int n = cd_dispatcher_stats(d, st, MAX_SINKS);
    if (n > MAX_SINKS) n = MAX_SINKS;
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } SERIES[] = {
        {"sink_deliveries_total", "counter", "Records delivered, per sink.",
         offsetof(cd_sink_stats_t, delivered)},
        {"sink_failures_total", "counter",
         "Records given up after a DROP or the last retry, per sink.",
         offsetof(cd_sink_stats_t, failed)},
        {"sink_retries_total", "counter", "Deliveries retried, per sink.",
         offsetof(cd_sink_stats_t, retries)},
        {"sink_dropped_total", "counter",
         "Records never attempted (sink queue full, or abandoned at shutdown), per sink.",
         offsetof(cd_sink_stats_t, dropped)},
        {"sink_queue_depth", "gauge", "Records queued for or in delivery, per sink.",
         offsetof(cd_sink_stats_t, pending)},
    };
    for (size_t k = 0; k < sizeof(SERIES) / sizeof(SERIES[0]); k++) {
        head(f, SERIES[k].name, SERIES[k].type, SERIES[k].help);
        for (int i = 0; i < n; i++) {
            uint64_t v;
            memcpy(&v, (const char *)&st[i] + SERIES[k].off, sizeof(v));
            fprintf(f, "canaryd_%s{sink=\"", SERIES[k].name);
            esc(f, st[i].name);
            fputs("\",type=\"", f);
            esc(f, st[i].type);
            fprintf(f, "\"} %llu\n", (unsigned long long)v);
        }
    }
    free(st);
    series_u64(f, "dispatcher_overflows_total", "counter",
               "Records refused because the dispatcher's submit queue was full.",
               cd_dispatcher_overflows(d));
}

/* Seconds since the epoch at which the machine booted (/proc/stat btime). */
static long long boot_time(void)
{
    char line[256];
    long long bt = -1;
    FILE *st = fopen("/proc/stat", "r");
    if (!st) return -1;
    while (fgets(line, sizeof(line), st))
        if (sscanf(line, "btime %lld", &bt) == 1) break;
    fclose(st);
    return bt;
}

/* The process_* series every Prometheus client library exposes, from
 * /proc/self/stat (proc(5): utime 14, stime 15, starttime 22, vsize 23,
 * rss 24, counted from 1), /proc/self/fd and RLIMIT_NOFILE. A series whose
 * source cannot be read is left out, never written as 0. */
static void process_std(FILE *f)
{
    char buf[1024];
    FILE *st = fopen("/proc/self/stat", "r");
    size_t n = st ? fread(buf, 1, sizeof(buf) - 1, st) : 0;
    if (st) fclose(st);
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: fields
     * are counted from the last ')'. */
    const char *p = strrchr(buf, ')');
    unsigned long long ut, stm, start, vsize;
    long long rss;
    if (p && sscanf(p + 2,
                    "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d "
                    "%*d %*d %*d %llu %llu %lld",
                    &ut, &stm, &start, &vsize, &rss) == 5) {
        double hz = (double)sysconf(_SC_CLK_TCK);
        head_raw(f, "process_cpu_seconds_total", "counter",
                 "Total user and system CPU time spent in seconds.");
        fprintf(f, "process_cpu_seconds_total %.2f\n", (double)(ut + stm) / hz);
        head_raw(f, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        fprintf(f, "process_virtual_memory_bytes %llu\n", vsize);
        head_raw(f, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        fprintf(f, "process_resident_memory_bytes %lld\n", rss * (long long)sysconf(_SC_PAGESIZE));
        long long bt = boot_time();
        if (bt >= 0) {
            head_raw(f, "process_start_time_seconds", "gauge",
                     "Start time of the process since unix epoch in seconds.");
            fprintf(f, "process_start_time_seconds %.2f\n", (double)bt + (double)start / hz);
        }
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long fds = 0;
        for (struct dirent *e; (e = readdir(d));)
            fds += e->d_name[0] != '.';
        closedir(d);
        head_raw(f, "process_open_fds", "gauge", "Number of open file descriptors.");
        fprintf(f, "process_open_fds %ld\n", fds - 1); /* not the one reading the folder */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        head_raw(f, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        fprintf(f, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
}

static void process(FILE *f, const uint64_t codes[CD_HTTP_NCODES])
{
    head(f, "build_info", "gauge", "Always 1; the labels say which canaryd this is.");
    fputs("canaryd_build_info{version=\"" CANARYD_VERSION "\"} 1\n", f);
    long pages = 0, rss = 0;
    FILE *m = fopen("/proc/self/statm", "r");
    if (m) {
        if (fscanf(m, "%ld %ld", &pages, &rss) != 2) rss = -1;
        fclose(m);
    }
    if (rss >= 0) {
        head(f, "resident_memory_bytes", "gauge", "Resident set size (/proc/self/statm).");
        fprintf(f, "canaryd_resident_memory_bytes %lld\n",
                (long long)rss * (long long)sysconf(_SC_PAGESIZE));
    }
    head(f, "http_requests_total", "counter",
         "HTTP API replies by status code (this scrape not included).");
    for (int i = 0; i < CD_HTTP_NCODES; i++) {
        if (cd_http_codes[i])
            fprintf(f, "canaryd_http_requests_total{code=\"%d\"} %llu\n", cd_http_codes[i],
                    (unsigned long long)codes[i]);
        else
            fprintf(f, "canaryd_http_requests_total{code=\"other\"} %llu\n",
                    (unsigned long long)codes[i]);
    }
}

/* Coordination (coord.h): only when configured. The holder is one series
 * (its label changes with the holder), the agent ids come from the config. */
static void coordination(FILE *f, cd_dispatcher_t *d)
{
    cd_coord_t *c = d ? cd_dispatcher_coord(d) : NULL;
    if (!c) return;
    cd_coord_stats_t st;
    cd_coord_stats(c, &st);
    series_flag(f, "coordination_leader", "gauge", "1 if this agent holds the notifier lease.",
                st.leader);
    head(f, "coordination_lease_holder", "gauge",
         "The notifier lease's holder (agent_id) as last read from Redis.");
    fprintf(f, "canaryd_coordination_lease_holder{holder=\"");
    for (const char *p = st.holder; *p; p++) /* label escaping: \\ and \" */
        fprintf(f, (*p == '"' || *p == '\\') ? "\\%c" : "%c", *p);
    fprintf(f, "\"} 1\n");
    series_u64(f, "coordination_fencing_token", "gauge",
               "This agent's fencing token while it holds the lease, else 0.", st.token);
    series_u64(f, "coordination_lease_changes_total", "counter", "Lease holder changes seen.",
               st.lease_changes);
    series_u64(f, "coordination_claims_won_total", "counter",
               "Decisive records this agent claimed (and so delivered).", st.claims_won);
    series_u64(f, "coordination_claims_lost_total", "counter",
               "Decisive records this agent tried to claim and found claimed by a newer leader.",
               st.claims_lost);
    series_flag(f, "coordination_redis_up", "gauge",
                "1 if the last coordination Redis command succeeded.", st.redis_up);
    series_flag(
        f, "coordination_fallback", "gauge",
        "1 while Redis has been unreachable past fallback_after: this agent delivers alone.",
        st.fallback);
    series_u64(f, "coordination_fallback_deliveries_total", "counter",
               "Decisive records delivered without a claim (Redis unreachable).",
               st.fallback_deliveries);
    series_u64(f, "coordination_pending", "gauge", "Decisive records not yet known delivered.",
               st.pending);
}

char *cd_http_metrics_render(const cd_snapshot_t *s, const cd_kafka_source_t *k, cd_dispatcher_t *d,
                             const uint64_t codes[CD_HTTP_NCODES], size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) return NULL;
    events(f, s);
    kafka(f, k);
    watermark(f, s, k);
    rules(f, s);
    sinks(f, d);
    coordination(f, d);
    process(f, codes);
    process_std(f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}
