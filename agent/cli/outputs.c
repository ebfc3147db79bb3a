/*
 * outputs.c - the records' way out for replay and run (see outputs.h): one
 * dispatcher holding the config's sinks and the built-in log sinks, so a
 * verdict reaches stdout, the verdict log, webhooks, Redis, ... the same way
 * in both commands.
 */
#include "outputs.h"

#include <jansson.h>
#include <string.h>

/* Adds a log sink for --verdict-log (path) or stdout (path "-"). */
static int add_log_sink(cd_outputs_t *o, const char *name, const char *path, bool pretty,
                        bool colour, cd_diag_t *diag)
{
    /* one attempt: a failed write is reported as an I/O error */
    json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:b, s:{s:i}, s:{s:[s, s]}}", "type", "log",
                          "name", name, "path", path, "format",
                          pretty && strcmp(path, "-") == 0 ? "pretty" : "json", "colour", colour,
                          "retry", "max_attempts", 1, "filter", "kinds", "verdict", "state");
    if (!e) {
        cd_diag_add(diag, "%s: out of memory", name);
        return -1;
    }
    int rc = cd_dispatcher_add(o->disp, e, name, diag);
    json_decref(e);
    if (rc == 0) o->nbuiltin++;
    return rc;
}

int cd_outputs_open(cd_outputs_t *o, const cd_config_t *cfg, const char *log_path, bool to_stdout,
                    bool pretty, bool colour, cd_diag_t *diag)
{
    memset(o, 0, sizeof(*o));
    o->disp = cd_dispatcher_new(cfg, diag);
    if (!o->disp) return CD_OUTPUTS_CONFIG;
    cd_sink_stats_t none[1];
    o->nconf = cd_dispatcher_stats(o->disp, none, 0);
    if ((log_path && add_log_sink(o, "--verdict-log", log_path, pretty, colour, diag) != 0) ||
        (to_stdout && add_log_sink(o, "stdout", "-", pretty, colour, diag) != 0))
        return CD_OUTPUTS_IO;
    return CD_OUTPUTS_OK;
}

bool cd_outputs_builtin_failed(cd_outputs_t *o)
{
    enum { MAX = 66 };
    cd_sink_stats_t st[MAX];
    int n = cd_dispatcher_stats(o->disp, st, MAX);
    for (int i = o->nconf; i < n && i < o->nconf + o->nbuiltin && i < MAX; i++)
        if (st[i].failed) return true;
    return false;
}

void cd_outputs_summary(cd_outputs_t *o, FILE *f)
{
    cd_sink_stats_t st[64];
    cd_dispatcher_stats(o->disp, st, 64);
    if (o->nconf == 0) return;
    fprintf(f, "  sinks (queue overflows: %llu):\n",
            (unsigned long long)cd_dispatcher_overflows(o->disp));
    for (int i = 0; i < o->nconf && i < 64; i++)
        fprintf(f,
                "    %-20s %-8s delivered %llu, failed %llu, retries %llu, dropped %llu, "
                "pending %llu\n",
                st[i].name, st[i].type, (unsigned long long)st[i].delivered,
                (unsigned long long)st[i].failed, (unsigned long long)st[i].retries,
                (unsigned long long)st[i].dropped, (unsigned long long)st[i].pending);
}

void cd_outputs_close(cd_outputs_t *o)
{
    if (!o) return;
    cd_dispatcher_destroy(o->disp);
    o->disp = NULL;
}
