/*
 * config_env.h - environment overrides of the config file (config_env.c):
 * CANARYD_BROKERS, CANARYD_TOPIC, CANARYD_GROUP, CANARYD_CANARY_VERSION,
 * CANARYD_WEBHOOK_URL (+ CANARYD_WEBHOOK_FORMAT) and CANARYD_HTTP_BIND.
 *
 * Not a public header: the loader (config.c) and its tests use it. The
 * loader applies the overrides only to files loaded with cd_config_load
 * (the agent's commands), never to cd_config_parse's in-memory documents
 * (the fuzz target, most tests), so a developer's shell cannot change what
 * those see.
 */
#ifndef CANARYD_AGENT_CONFIG_ENV_H
#define CANARYD_AGENT_CONFIG_ENV_H

#include <jansson.h>

#include "config_internal.h"

/* cd_config_parse_ex flag: overlay the environment before validation. */
#define CD_CFG_ENV 0x100

/* Most overrides one document can receive (one per variable). */
#define CD_CFG_ENV_MAX 9

/* What the overlay changed, for naming the variable in messages. */
typedef struct cd_cfg_env {
    int n;
    struct {
        const char *var;  /* "CANARYD_BROKERS" (static string) */
        char path[64];    /* key path it set: "kafka.brokers", "sinks.outputs[2]" */
        char created[16]; /* section the overlay created ("http"), or "" */
    } set[CD_CFG_ENV_MAX];
} cd_cfg_env_t;

/*
 * Overlays the CANARYD_* variables onto root (a parsed config document,
 * modified in place) before validation, recording what it set in *env.
 * Problems that belong to a variable itself (not valid UTF-8, a format
 * without a URL, a section of the file that cannot take the value) are
 * added to x->d naming the variable. Never logs a value of
 * CANARYD_WEBHOOK_URL. Start-up, one thread.
 */
void cd_cfg_env_overlay(cd_cfgctx_t *x, json_t *root, cd_cfg_env_t *env);

/*
 * After the document was validated (c filled in by the loader): checks the
 * overridden keys of sections that their own modules parse later (kafka,
 * sinks) with those modules' parsers, adds their problems, and rewrites
 * every problem line whose key path an override set as
 * "VAR (key.path): ...", so the message names the variable.
 */
void cd_cfg_env_check(cd_cfgctx_t *x, const cd_cfg_env_t *env);

#endif
