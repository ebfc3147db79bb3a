/*
 * webhook.h - the bodies the webhook sink POSTs, one per destination format,
 * renderable without sending anything (the test seam; docs/sinks.md shows an
 * example of each).
 *
 * Every chat format says the same four things: what happened (the verdict
 * or state change, the release, the service), why (the record's reason:
 * values against the threshold, window and sample counts), which release,
 * and what to do (the record's todo, the procedure's action). Formats:
 *   slack        {text, attachments:[{color, blocks}]}: colour by verdict,
 *                section text <= 3000 characters (Slack's limit)
 *   msteams      a message with an adaptive card (Workflows webhooks)
 *   discord      {content, username?, embeds:[...]} within Discord's limits
 *                (content 2000, title 256, description 4096, field value 1024)
 *   mattermost   {text, username?, attachments:[{color, ...}]}
 *   googlechat   {text}
 *   generic      canaryd's verdict JSON line, unchanged
 *   alertmanager Alertmanager's webhook payload, version "4": one alert,
 *                "resolved" for a resolved alert rule, else "firing"
 *
 * Thread-safety: pure functions of their arguments.
 */
#ifndef CANARYD_WEBHOOK_H
#define CANARYD_WEBHOOK_H

#include <stddef.h>

#include "canaryd/sink.h"

typedef enum cd_webhook_format {
    CD_WEBHOOK_SLACK = 0,
    CD_WEBHOOK_MSTEAMS,
    CD_WEBHOOK_DISCORD,
    CD_WEBHOOK_MATTERMOST,
    CD_WEBHOOK_GOOGLECHAT,
    CD_WEBHOOK_GENERIC,
    CD_WEBHOOK_ALERTMANAGER,
} cd_webhook_format_t;

/* "slack", "msteams", ..., NULL-terminated, indexed by cd_webhook_format_t. */
extern const char *const cd_webhook_format_names[];

typedef struct cd_webhook_opts {
    const char *username;     /* discord, mattermost: shown as the poster; NULL = default */
    const char *receiver;     /* alertmanager "receiver"; NULL = "canaryd" */
    const char *external_url; /* alertmanager "externalURL"; NULL = "" */
} cd_webhook_opts_t;

/*
 * Renders the body for m in format f. Returns a malloc'ed NUL-terminated
 * string (its length in *len) that the caller frees, or NULL when out of
 * memory. m is borrowed.
 */
char *cd_webhook_render(cd_webhook_format_t f, const cd_sink_msg_t *m, const cd_webhook_opts_t *o,
                        size_t *len);

#endif
