/*
 * coord.h - several agents judging the same release behave as one notifier
 * (docs/operations.md, "Running several agents").
 *
 * The "coordination" config section:
 *   "coordination": {
 *     "redis": "127.0.0.1:6379",      HOST:PORT of the shared Redis (required)
 *     "prefix": "canaryd:checkout",   key prefix; agents sharing it share one notifier
 *     "lease": "10s",                 lease time (renewed every lease/3)
 *     "fallback_after": "20s",        Redis unreachable this long: every agent delivers
 *     "claim_retention": "1h",        how long a claim is kept in Redis
 *     "agent_id": "...",              default HOSTNAME (the pod's name), else host:pid
 *     "password" | "password_file" | "password_env": AUTH password (a secret)
 *   }
 *
 * Lease: one Redis key <prefix>:lease holding "<agent_id> <token>", set if
 * absent with an expiry (PX lease) by a Lua script that also takes the next
 * fencing token from INCR <prefix>:fence; renewed by compare-and-PEXPIRE,
 * released by compare-and-DEL. Claims: one hash <prefix>:claim:<service>:
 * <release>:<verdict>:<rule> per decisive record, state "claimed" then
 * "done", with the fencing token of its claimer (sinks/coord.c).
 *
 * Threading: cd_coord_* may be called from any thread; the coordinator has
 * one thread of its own doing all the Redis I/O.
 */
#ifndef CANARYD_COORD_H
#define CANARYD_COORD_H

#include <stdbool.h>
#include <stdint.h>

#include "canaryd/config.h"

#define CD_COORD_DEFAULT_LEASE_MS 10000
#define CD_COORD_DEFAULT_RETENTION_MS 3600000

typedef struct cd_coord_conf {
    bool enabled; /* the section is present */
    char host[256];
    int port;
    char prefix[128];
    char password[256]; /* "" = no AUTH; a secret, never logged */
    char agent_id[128];
    int64_t lease_ms;       /* default 10 s */
    int64_t fallback_ms;    /* default 2 x lease */
    int64_t retention_ms;   /* default 1 h */
} cd_coord_conf_t;

/* Parses cfg's "coordination" section into *cc (defaults when absent:
 * enabled false). Problems go into diag with their key paths; returns
 * false if there were any. agent/config/config_coord.c. */
bool cd_coord_conf_parse(const cd_config_t *cfg, cd_coord_conf_t *cc, cd_diag_t *diag);

typedef struct cd_coord cd_coord_t;

typedef struct cd_coord_stats {
    bool leader;          /* this agent holds the lease (as far as it knows) */
    bool redis_up;        /* the last Redis command succeeded */
    bool fallback;        /* Redis unreachable past fallback_after: delivering alone */
    char holder[128];     /* the lease holder's agent_id as last read; "" none/unknown */
    uint64_t token;       /* this agent's fencing token while leader, else 0 */
    uint64_t lease_changes;        /* holder changes seen */
    uint64_t claims_won, claims_lost;
    uint64_t fallback_deliveries;  /* decisive records delivered without a claim */
    uint64_t pending;              /* decisive records not yet known delivered */
} cd_coord_stats_t;

/* Copies conf; connects nothing yet. NULL + message on failure. */
cd_coord_t *cd_coord_new(const cd_coord_conf_t *conf, char *errbuf, size_t errsize);

/* Copies the counters (any thread). */
void cd_coord_stats(cd_coord_t *c, cd_coord_stats_t *out);

/* Stops the thread: writes what is known delivered, releases the lease if
 * held, frees. Call after the dispatcher is drained, before it is
 * destroyed. NULL: no-op. */
void cd_coord_destroy(cd_coord_t *c);

#endif
