/*
 * dispatcher.h - takes verdict records from the evaluating thread to the
 * sinks without ever making it wait for one.
 *
 * cd_dispatcher_submit() renders a record to JSON once, copies it into a
 * bounded queue and returns: it never waits for a sink. A full queue makes
 * room by dropping a less important record (a state record first, then an
 * ANALYZING / HEALTHY verdict), or drops the new one when nothing ranks
 * below it, counting and logging (rate-limited) either way; a ROLLBACK, a
 * PROMOTE or an ALERT is never dropped to make room (the queue grows past
 * queue_size for decisions only). Each sink's FIFO follows the same rule. One dispatcher
 * thread moves records from that queue into a FIFO per sink (after the
 * sink's filter), delivers them in order, one at a time per sink, retries
 * RETRY results with full-jitter exponential backoff (honouring a
 * destination's Retry-After), applies each sink's rate limit, and counts
 * deliveries, failures, retries and drops per sink. A slow or dead sink
 * delays only its own FIFO.
 *
 * The "sinks" config section (docs/sinks.md):
 *   "sinks": {
 *     "queue_size": 1024,          records the submit queue holds (and each sink's FIFO)
 *     "drain_timeout": "10s",      how long destroy / a replay's end waits for delivery
 *     "ledger": "/var/lib/canaryd/ledger",  the decision ledger of `canaryd run` (ledger.h)
 *     "outputs": [ { "type": "webhook", "name": "...", "filter": {...},
 *                    "retry": {"base", "cap", "max_attempts"}, "rate_limit": 1,
 *                    "send_resolved": true, ...keys of the sink type... }, ... ]
 *   }
 *
 * The service name sinks use (Redis keys, chat headlines, the exec hook's
 * CANARYD_SERVICE, Alertmanager's service label) is each record's own
 * cd_verdict_t.service, which the pipeline stamps: events.service, or the
 * service learnt from the first canary event. It travels with the record,
 * so a service learnt after the first records needs no setter shared with
 * the dispatcher thread.
 *
 * Lifecycle: new (parses and builds every sink, main thread) -> add (more
 * sinks, optional) -> start (spawns the thread) -> submit* -> drain ->
 * destroy. Every function may be called from any thread unless it says
 * otherwise; submit may be called from several threads at once.
 */
#ifndef CANARYD_DISPATCHER_H
#define CANARYD_DISPATCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canaryd/config.h"
#include "canaryd/verdict.h"

typedef struct cd_dispatcher cd_dispatcher_t;

/* Counters of one sink (for /metrics and the replay summary). */
typedef struct cd_sink_stats {
    char name[64];      /* the entry's "name" (default "<type>[<index>]") */
    char type[16];      /* "webhook", ... */
    uint64_t delivered; /* OK */
    uint64_t failed;    /* records given up: DROP, or RETRY after max_attempts */
    uint64_t retries;   /* RETRY results that were retried */
    uint64_t dropped;   /* records never attempted: sink FIFO full, or abandoned at shutdown */
    uint64_t filtered;  /* records the sink's filter did not take */
    uint64_t pending;   /* records queued for or in delivery to the sink now */
} cd_sink_stats_t;

/*
 * Parses cfg->sinks_json (NULL: no sinks) and builds each sink. cfg is
 * borrowed for this call only. Returns a dispatcher (not started yet) or
 * NULL with every problem in *diag, each naming its key path
 * ("sinks.outputs[1].retry.base: ..."). Main thread.
 */
cd_dispatcher_t *cd_dispatcher_new(const cd_config_t *cfg, cd_diag_t *diag);

/*
 * Validates cfg->sinks_json the way cd_dispatcher_new would, building and
 * freeing each sink (opening files, parsing URLs; nothing is sent). Returns
 * the number of problems added to *diag. For check-config.
 */
int cd_dispatcher_check(const cd_config_t *cfg, cd_diag_t *diag);

/*
 * Adds one sink from a config entry (a jansson json_t * object, borrowed),
 * the same shape as an element of "outputs"; path names it in messages.
 * Before start only. Returns 0, or -1 with the problems in *diag.
 */
int cd_dispatcher_add(cd_dispatcher_t *d, const void *entry, const char *path, cd_diag_t *diag);

/*
 * Coordination (coord.h): decisive records reach the shared sinks (all but
 * type "log") only once claimed by c's lease holder, other records only
 * from the holder. c is borrowed; start starts its thread; destroy c after
 * draining d and before destroying it. Before start only.
 */
struct cd_coord;
void cd_dispatcher_set_coord(cd_dispatcher_t *d, struct cd_coord *c);
/* The coordinator set (NULL: none), for /metrics. */
struct cd_coord *cd_dispatcher_coord(const cd_dispatcher_t *d);

/*
 * The decision ledger (ledger.h; borrowed, outlives d): a sink is handed a
 * decision (ROLLBACK, PROMOTE, ALERT) only if the ledger does not say it
 * already has it (delivered before a restart, or queued for it now: counted
 * as filtered), every decision is recorded before any sink gets it, and
 * every acknowledgement after. At start the current judgement's decisions
 * are offered again, so one decided but not delivered before a crash is
 * delivered now, once. Before start only.
 */
struct cd_ledger;
void cd_dispatcher_set_ledger(cd_dispatcher_t *d, struct cd_ledger *l);
/* The section's "ledger" path (borrowed; NULL when absent): `canaryd run`
 * opens the ledger there, else next to --verdict-log. */
const char *cd_dispatcher_ledger_path(const cd_dispatcher_t *d);

/*
 * Batch mode (replay): submit waits for room in the queue instead of
 * dropping. The wait is for the dispatcher thread to move records into the
 * sinks' FIFOs, not for any sink. Before start only.
 */
void cd_dispatcher_set_blocking(cd_dispatcher_t *d, bool blocking);

/* Starts the dispatcher thread. Returns 0, or -1 with a message. */
int cd_dispatcher_start(cd_dispatcher_t *d, char *errbuf, size_t errsize);

/*
 * Queues a copy of v (strings included) for every sink whose filter takes
 * it. Never waits for a sink. Returns true if queued (a less important
 * record may have been evicted for it: counted in cd_dispatcher_overflows),
 * false if the queue was full of records at least as important (counted,
 * logged rate-limited; never for a decision unless memory ran out) or the
 * record could not be rendered. Any thread; v is borrowed for the call.
 */
bool cd_dispatcher_submit(cd_dispatcher_t *d, const cd_verdict_t *v);

/*
 * Asks every sink to reopen its files (log rotation). Only sets a flag and
 * wakes the thread: safe to call from a signal handler's flag-checking
 * loop, not from the handler itself.
 */
void cd_dispatcher_reopen(cd_dispatcher_t *d);

/*
 * Waits until every queued record has been delivered, failed or dropped,
 * at most timeout_ms. Returns the number of records still pending (0 =
 * drained).
 */
uint64_t cd_dispatcher_drain(cd_dispatcher_t *d, int64_t timeout_ms);

/* The config's drain_timeout (default 10 s). */
int64_t cd_dispatcher_drain_timeout(const cd_dispatcher_t *d);

/* Records refused because the submit queue was full. */
uint64_t cd_dispatcher_overflows(const cd_dispatcher_t *d);

/* Copies up to max sinks' counters into out; returns the number of sinks. */
int cd_dispatcher_stats(cd_dispatcher_t *d, cd_sink_stats_t *out, int max);

/*
 * Drains (up to drain_timeout; not again when a cd_dispatcher_drain already
 * timed out: its caller chose the wait), stops the thread, flushes and destroys
 * every sink; what is still pending is abandoned, counted and logged. NULL
 * is a no-op. Not concurrently with submit.
 */
void cd_dispatcher_destroy(cd_dispatcher_t *d);

#endif
