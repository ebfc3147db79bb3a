/*
 * coord_internal.h - what the dispatcher (sinks/dispatcher.c) and the
 * coordinator (sinks/coord.c) call of each other. Private to sinks/.
 */
#ifndef CANARYD_COORD_INTERNAL_H
#define CANARYD_COORD_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "canaryd/coord.h"
#include "dispatcher_internal.h"

/* A record that is claimed before any shared sink sends it: a ROLLBACK, a
 * PROMOTE, an ALERT verdict, or an alert rule's resolution. */
bool cd_coord_decisive(const cd_verdict_t *v);

/* Starts the coordinator's thread, which hands claimed records to d
 * (cd_dsp_submit_claimed). 0, or -1 with a message. */
int cd_coord_start(cd_coord_t *c, cd_dispatcher_t *d, char *errbuf, size_t errsize);

/* Takes ownership of it (a copy of a decisive record, refs unused): it is
 * delivered to the shared sinks once claimed (or in fallback), forgotten
 * once Redis says it is done. Dispatcher thread. */
void cd_coord_offer(cd_coord_t *c, item_t *it);

/* Whether this agent delivers non-decisive records to shared sinks now
 * (leader, or fallback), and with which fencing token (0 in fallback). */
bool cd_coord_sharing(cd_coord_t *c, uint64_t *token);

/* Every shared sink has finished with the claimed record `key` (delivered,
 * or given up after its retries). Dispatcher thread. */
void cd_coord_done(cd_coord_t *c, const char *key);

/* Queues it (claim_key and fencing token set) for the shared sinks only;
 * takes ownership. Coordinator thread. */
void cd_dsp_submit_claimed(cd_dispatcher_t *d, item_t *it);

/* A copy of it with `"fencing_token":token` as the JSON's last member
 * (token 0: a plain copy); NULL when out of memory. */
item_t *cd_dsp_item_copy(const item_t *it, uint64_t token);

#endif
