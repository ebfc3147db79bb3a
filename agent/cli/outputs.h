/*
 * outputs.h - where replay and run send their records: the config's sinks
 * plus the built-in log sinks for --verdict-log (JSON, fsync'ed) and stdout
 * (JSON, or the human line with --pretty), all behind one dispatcher.
 */
#ifndef CANARYD_AGENT_OUTPUTS_H
#define CANARYD_AGENT_OUTPUTS_H

#include <stdbool.h>
#include <stdio.h>

#include "canaryd/config.h"
#include "canaryd/dispatcher.h"

typedef struct cd_outputs {
    cd_dispatcher_t *disp;
    int nconf;    /* the config's sinks come first in the dispatcher's stats */
    int nbuiltin; /* then --verdict-log and/or stdout */
} cd_outputs_t;

enum { CD_OUTPUTS_OK = 0, CD_OUTPUTS_CONFIG = -1, CD_OUTPUTS_IO = -2 };

/*
 * Builds the dispatcher (not started): the config's sinks, then a log sink
 * for log_path (NULL: none) and one for stdout when to_stdout. The built-in
 * ones try once: a failed write is the caller's I/O error, not a retry.
 * Returns CD_OUTPUTS_OK, CD_OUTPUTS_CONFIG (a problem in the config's
 * sinks) or CD_OUTPUTS_IO (the verdict log cannot be opened), with the
 * problems in *diag. Main thread.
 */
int cd_outputs_open(cd_outputs_t *o, const cd_config_t *cfg, const char *log_path, bool to_stdout,
                    bool pretty, bool colour, cd_diag_t *diag);

/* Whether --verdict-log or stdout gave up on a record. Any thread. */
bool cd_outputs_builtin_failed(cd_outputs_t *o);

/* One line per configured sink with its counters (nothing without any). */
void cd_outputs_summary(cd_outputs_t *o, FILE *f);

/* Drains (up to the config's drain_timeout) and destroys. NULL-safe. */
void cd_outputs_close(cd_outputs_t *o);

#endif
