/*
 * replay.h - replay's event-time run, reused by `canaryd report` (agent/
 * cli_report.c) so that a report shows exactly what `canaryd replay` decides
 * on the same stream. Internal to agent/.
 */
#ifndef CANARYD_AGENT_REPLAY_H
#define CANARYD_AGENT_REPLAY_H

#include <stdint.h>

#include "canaryd/config.h"
#include "canaryd/pipeline.h"

/* With hooks, no sink is opened (no stdout, no verdict log, none of the
 * config's sinks): every record goes to record(); start() runs once the
 * pipeline exists (to set an eval hook), done() after the whole stream was
 * evaluated (not when interrupted or on a read error); a non-zero return
 * from done() is an I/O error (exit 1). All on the calling thread. */
typedef struct cd_replay_hooks {
    void (*start)(cd_pipeline_t *p, const cd_config_t *cfg, void *opaque);
    void (*record)(const cd_verdict_t *v, void *opaque);
    int (*done)(cd_pipeline_t *p, const cd_config_t *cfg, uint64_t lines, void *opaque);
    void *opaque;
} cd_replay_hooks_t;

/* `canaryd replay`'s main (argv as replay's); hooks NULL = replay itself.
 * Returns replay's exit status. */
int cd_replay_main(int argc, char **argv, const cd_replay_hooks_t *hooks);

#endif
