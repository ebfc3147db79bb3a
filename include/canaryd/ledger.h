/*
 * ledger.h - the decision ledger: what the agent decided and which sink has
 * delivered it, kept in a file so that a restarted agent (crash, OOM kill,
 * SIGKILL, upgrade) neither forgets a sticky ROLLBACK / PROMOTE nor delivers
 * a decision twice, and still delivers one it had decided but not delivered
 * (docs/operations.md, "What survives a restart"; docs/sinks.md, "The
 * decision ledger").
 *
 * The identity of a decision (cd_decision_id) is what it decides, never when:
 *   <service>:<release>:<VERDICT>:<rule>      ("-" for an empty part)
 * with ":dry" appended for a dry-run record. A non-dry-run ROLLBACK or
 * PROMOTE happens once per judgement of a release (a "judgement" line, below,
 * starts a new one): its identity alone says whether a sink
 * has it. An ALERT (and a dry-run ROLLBACK) repeats while its rule keeps
 * firing; each repeat is a notification of its own, so for those a sink has
 * the record when it delivered that identity at the same or a later event
 * time; the dispatcher also treats a repeating one flagged catchup (the
 * past decided again on the rebuild's grid) as had by a sink with any copy.
 *
 * The file: JSON lines, appended with one write(2) and fsync(2) each (the
 * verdict log's discipline, verdict_log.h), read whole at open:
 *   {"t":"decided","id":ID,"at":WALL_MS,"record":{...the record's JSON...}}
 *   {"t":"delivered","id":ID,"sink":NAME,"time":EVENT_MS}
 *   {"t":"judgement","release":REL,"at":WALL_MS}     a new release / judgement
 *   {"t":"flagger","key":"NS/NAME","checksum":SUM}    Flagger's last canary run
 * "decided" is written by the dispatcher thread before any sink is handed
 * the record, "delivered" once a sink acknowledged it (OK). A line cut short
 * by a crash is skipped at open (counted, logged); a file of more than 1,000
 * lines is rewritten at open as the current judgement alone. Decisions of the current
 * judgement are those after the last "judgement" line, of the release of
 * the latest decision.
 *
 * Threading: every function may be called from any thread (one mutex; the
 * appends are a few per release, so the fsync under it costs nothing that
 * matters). The ledger is created before the dispatcher and the HTTP API
 * and destroyed after both.
 */
#ifndef CANARYD_LEDGER_H
#define CANARYD_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canaryd/verdict.h"

typedef struct cd_ledger cd_ledger_t;

/* The sticky decision of the current judgement, as recovered. */
typedef struct cd_ledger_decision {
    cd_verdict_kind_t verdict; /* CD_VERDICT_ROLLBACK or CD_VERDICT_PROMOTE */
    char release[128];
    char service[CD_NAME_MAX];
    char rule[CD_NAME_MAX]; /* "" for a release-wide PROMOTE */
    int64_t time_ms;        /* event time of the decision */
    int64_t at_ms;          /* wall time it was decided (the API's "since") */
} cd_ledger_decision_t;

/* Length of a decision identity, NUL included. */
#define CD_DECISION_ID_MAX 400

/*
 * The identity of v if it is a decision (a verdict record ROLLBACK,
 * PROMOTE or ALERT), into buf; *once tells whether it happens once per
 * release (non-dry-run ROLLBACK / PROMOTE). false for any other record.
 */
bool cd_decision_id(const cd_verdict_t *v, char *buf, size_t size, bool *once);

/*
 * Opens path (created, mode 0644, if missing), reads what it holds and
 * keeps it open for appending. NULL with "ledger PATH: ..." in errbuf when
 * it cannot be read or opened (a line it cannot parse is not an error:
 * skipped and logged). path NULL: no file, the ledger lives in memory and
 * in the Redis mirror (cd_ledger_attach_redis). Main thread, at start.
 */
cd_ledger_t *cd_ledger_open(const char *path, char *errbuf, size_t errsize);

/*
 * Coordinated agents (coord.h): mirrors every line but the deliveries into
 * the Redis list <prefix>:ledger (RPUSH, the newest 10,000 kept), and, when
 * the file held nothing (a new pod), recovers the decisions, judgements and
 * Flagger runs from that list. Deliveries are not mirrored: the claims in
 * Redis are the shared record of what the notifier delivered. Redis I/O is
 * bounded by 1 s timeouts and paused 10 s after a failure (logged; the file
 * goes on alone). cc is copied. Right after open, before any other use.
 * Returns the lines recovered from Redis, 0 when the file was used, -1 when
 * Redis could not be read.
 */
struct cd_coord_conf;
int cd_ledger_attach_redis(cd_ledger_t *l, const struct cd_coord_conf *cc);

/* Closes the file and frees. NULL: no-op. */
void cd_ledger_close(cd_ledger_t *l);

const char *cd_ledger_path(const cd_ledger_t *l);

/* Lines read at open that were skipped (torn by a crash, not ledger lines). */
uint64_t cd_ledger_skipped(const cd_ledger_t *l);

/* The current judgement's sticky decision (ROLLBACK over PROMOTE), if any. */
bool cd_ledger_decision(cd_ledger_t *l, cd_ledger_decision_t *out);

/*
 * Calls cb with the JSON of each decision of the current judgement (for a
 * repeating one, its latest), oldest first: what the dispatcher offers its
 * sinks again at start, each sink taking only what it has not delivered.
 * Returns how many.
 */
int cd_ledger_each_decided(cd_ledger_t *l, void (*cb)(const char *json, void *opaque),
                           void *opaque);

/* Calls cb(key, checksum) for each Flagger canary run recorded. */
void cd_ledger_each_flagger(cd_ledger_t *l,
                            void (*cb)(const char *key, const char *checksum, void *opaque),
                            void *opaque);

typedef enum cd_ledger_state {
    CD_LEDGER_NEW = 0,   /* the sink has not got it */
    CD_LEDGER_QUEUED,    /* queued for the sink in this process */
    CD_LEDGER_DELIVERED, /* the sink acknowledged it (this process or before) */
} cd_ledger_state_t;

/* Where the decision v (identity id) stands for sink `sink`. */
cd_ledger_state_t cd_ledger_sink_state(cd_ledger_t *l, const char *id, bool once, int64_t time_ms,
                                       const char *sink);

/* In memory: v (id, time_ms) is queued for sink / its delivery failed for
 * good (the sink may take a later copy, e.g. the rebuild's). */
void cd_ledger_sink_queued(cd_ledger_t *l, const char *id, bool once, int64_t time_ms,
                           const char *sink);
void cd_ledger_sink_failed(cd_ledger_t *l, const char *id, bool once, const char *sink);

/*
 * Appends a "decided" line for v (its JSON json) unless that decision is
 * already recorded (same identity; for a repeating one, at the same or a
 * later time). 0, or -1 (write failed: logged rate-limited; the record is
 * still delivered, only its memory across a restart is lost).
 */
int cd_ledger_decided(cd_ledger_t *l, const cd_verdict_t *v, const char *json, int64_t at_ms);

/* Appends a "delivered" line: sink acknowledged the decision id at time_ms. */
int cd_ledger_delivered(cd_ledger_t *l, const char *id, bool once, int64_t time_ms,
                        const char *sink);

/* Appends a "judgement" line: a new release or judgement starts (the
 * previous decisions are no longer current). Evaluating thread. */
int cd_ledger_judgement(cd_ledger_t *l, const char *release, int64_t at_ms);

/* Appends a "flagger" line when key's checksum is new or changed. */
int cd_ledger_flagger(cd_ledger_t *l, const char *key, const char *checksum);

#endif
