/*
 * dispatcher_internal.h - the dispatcher's data structures, shared by
 * dispatcher.c (queue, thread, delivery) and dispatcher_conf.c (the
 * "sinks" config section). Private to sinks/.
 */
#ifndef CANARYD_DISPATCHER_INTERNAL_H
#define CANARYD_DISPATCHER_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "canaryd/config.h"
#include "canaryd/dispatcher.h"
#include "canaryd/ledger.h"
#include "canaryd/sink.h"

#define DEFAULT_QUEUE 1024
#define DEFAULT_DRAIN_MS 10000
#define POLL_SLICE_MS 20
#define MAX_SINKS 64
/* Hard limit of the submit ring, which grows past queue_size for decisions only. */
#define RING_MAX ((size_t)1 << 21)

typedef struct item {
    atomic_int refs; /* sinks still holding it; the dispatcher thread only, atomic for clarity */
    uint64_t id;
    bool heartbeat; /* made for one sink's ops->heartbeat, not a record: v unused */
    cd_verdict_t v; /* its strings point into the arrays below */
    char rule[CD_NAME_MAX], rule_kind[32], release[128], service[CD_NAME_MAX], stable_source[16];
    uint64_t token;       /* fencing token carried to the sinks; 0 = none */
    bool claimed;         /* coordination: for the shared sinks only (coord.c) */
    char claim_key[512];  /* its claim, marked done when the last sink is finished */
    bool decision;        /* a decision (ledger.h): decision_id / decision_once are set */
    bool decision_once;
    char decision_id[CD_DECISION_ID_MAX];
    size_t json_len;
    char json[]; /* NUL-terminated */
} item_t;

typedef struct entry {
    item_t *it;
    int attempt;        /* attempts made so far */
    int64_t not_before; /* monotonic ms */
    struct entry *next;
} entry_t;

typedef struct filter {
    unsigned verdicts; /* bit per cd_verdict_kind_t; 0 = all */
    unsigned actions;  /* bit per cd_action_t; 0 = all */
    bool kind_verdict, kind_state;
    char (*rules)[CD_NAME_MAX];
    int nrules; /* 0 = all */
} filter_t;

typedef struct sink {
    cd_dispatcher_t *d;
    const struct cd_sink_ops *ops;
    void *state;
    char name[64], type[16];
    filter_t f;
    bool send_resolved;
    bool local; /* type "log": every agent writes it, coordinated or not */
    int64_t base_ms, cap_ms;
    int max_attempts;
    double rate, tokens; /* rate_limit (messages/s, 0 = none); bucket of capacity max(1, rate) */
    int64_t tokens_at;
    entry_t *head, *tail;
    size_t len;
    bool inflight; /* head is being delivered asynchronously */
    int64_t beat_at; /* next ops->heartbeat message due (monotonic ms); INT64_MAX: none */
    char rollback_release[128];
    bool rollback_sent;
    _Atomic uint64_t delivered, failed, retries, dropped, filtered, pending;
} sink_t;

struct cd_dispatcher {
    pthread_mutex_t mu;
    pthread_cond_t wake;  /* thread: ring not empty, reopen, stop */
    pthread_cond_t space; /* blocking submitters: ring has room */
    pthread_cond_t idle;  /* drain: outstanding reached 0 */
    item_t **ring;
    size_t cap;      /* queue_size: the bound for records that may give way */
    size_t ring_cap; /* slots allocated: grows past cap only for decisions (cd_dsp_rank) */
    size_t head, count;
    uint64_t outstanding; /* guarded by mu */
    bool stop, reopen, started, blocking;
    bool drain_expired; /* a drain of at least drain_ms timed out: destroy does not wait again */
    pthread_t thread;
    _Atomic uint64_t next_id, overflows;
    int64_t drain_ms;
    struct cd_coord *coord; /* NULL: not coordinated */
    cd_ledger_t *ledger;    /* NULL: decisions are not remembered across restarts */
    char *ledger_path;      /* "ledger" of the section (malloc'ed), NULL: none */
    bool abandoning;        /* destroy is dropping what is left: no claim is done */
    sink_t *sinks[MAX_SINKS];
    int nsinks;
};

/* How much a record may give way to make room in a full queue (the submit
 * ring or a sink's FIFO): a state record first, then a release-wide
 * ANALYZING / HEALTHY verdict; a decision (ROLLBACK, PROMOTE, ALERT) never. */
enum { CD_RANK_STATE = 0, CD_RANK_VERDICT = 1, CD_RANK_DECISION = 2 };
int cd_dsp_rank(const item_t *it);

/* Builds one sink from an entry of "outputs" (or one added by the program;
 * cfg NULL: rule names in filters are not checked). NULL with problems in
 * diag. Main thread. */
sink_t *cd_dsp_parse_entry(cd_dispatcher_t *d, const cd_config_t *cfg, const json_t *e,
                           const char *path, cd_diag_t *diag);
/* Destroys the sink's state and frees it (NULL: no-op). */
void cd_dsp_sink_free(sink_t *s);

#endif
