/*
 * registry.c - every sink implementation in the tree, by config "type".
 *
 * A new sink is a new file in sinks/ exporting one `const struct
 * cd_sink_ops` and a line in the table below. The table is constant data:
 * any thread may read it.
 */
#include <string.h>

#include "canaryd/sink.h"

extern const struct cd_sink_ops cd_sink_log;
extern const struct cd_sink_ops cd_sink_webhook;
extern const struct cd_sink_ops cd_sink_exec;
extern const struct cd_sink_ops cd_sink_redis;
extern const struct cd_sink_ops cd_sink_kafka;
extern const struct cd_sink_ops cd_sink_alertmanager;

static const struct cd_sink_ops *const SINKS[] = {
    &cd_sink_log,   &cd_sink_webhook, &cd_sink_exec,
    &cd_sink_redis, &cd_sink_kafka,   &cd_sink_alertmanager,
};

const struct cd_sink_ops *cd_sink_ops_find(const char *type)
{
    for (size_t i = 0; i < sizeof(SINKS) / sizeof(SINKS[0]); i++)
        if (strcmp(SINKS[i]->name, type) == 0) return SINKS[i];
    return NULL;
}

const char *cd_sink_types(void)
{
    return "log, webhook, exec, redis, kafka, alertmanager";
}
