/*
 * event.h - one decoded application event, and the decoder that makes it from
 * a JSON payload on the hot path.
 *
 * The decoder tokenizes with jsmn into a token array on the caller's stack and
 * allocates nothing per event; string fields of the event point into the
 * input buffer (borrowed: valid only as long as that buffer). A decoder is
 * immutable after cd_decoder_new(), so any number of threads may call
 * cd_decode() on the same decoder at once.
 */
#ifndef CANARYD_EVENT_H
#define CANARYD_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canaryd/common.h"

/* Type id of an event whose type is not in the catalog: counted per name by
 * the caller if it wants, ignored by the rules. */
#define CD_TYPE_OTHER (-1)

typedef struct cd_event {
    int type;        /* index in cd_decode_conf_t.types, or CD_TYPE_OTHER */
    int64_t ts_ms;   /* event time, epoch ms UTC */
    cd_cohort_t cohort;
    uint32_t num_mask;     /* bit i set: num[i] holds numeric field i */
    uint32_t bad_num_mask; /* bit i set: numeric field i present but not a finite number */
    double num[CD_MAX_NUMERIC];
    /* Borrowed from the input buffer, not NUL-terminated; len 0 when absent.
     * JSON escapes are not decoded (the values we compare are plain ASCII). */
    const char *type_str;
    size_t type_len;
    const char *version;
    size_t version_len;
    const char *service;
    size_t service_len;
} cd_event_t;

/*
 * Why an input was rejected. Every rejected input is counted under exactly
 * one reason; the order below is the order of the checks.
 */
typedef enum cd_bad_reason {
    CD_BAD_NONE = 0,
    CD_BAD_LINE_TOO_LONG,     /* longer than the reader's limit (set by the source) */
    CD_BAD_NUL_BYTE,          /* a NUL byte inside the payload */
    CD_BAD_INVALID_UTF8,      /* not well-formed UTF-8 */
    CD_BAD_TRUNCATED_JSON,    /* JSON ends early (jsmn: PART) */
    CD_BAD_INVALID_JSON,      /* JSON syntax error (jsmn: INVAL) */
    CD_BAD_TOO_COMPLEX,       /* more tokens than the decoder allows (deep nesting, huge arrays) */
    CD_BAD_NOT_OBJECT,        /* top level is not an object */
    CD_BAD_MISSING_TYPE,      /* no event type field */
    CD_BAD_WRONG_TYPE,        /* event type / cohort / version field is not a string */
    CD_BAD_MISSING_TIMESTAMP, /* no timestamp field */
    CD_BAD_BAD_TIMESTAMP,     /* timestamp neither RFC 3339 nor integer epoch ms */
    CD_BAD_MISSING_COHORT,    /* no cohort field and no version to derive it from */
    CD_BAD_UNKNOWN_COHORT,    /* cohort value is neither the canary nor the stable value */
    CD_BAD__COUNT,
    /* Not bad input, and never counted as such: a well-formed event whose
     * service field is absent or names another service than the decoder's
     * conf.service (a shared topic). Only a decoder built with a service
     * returns it; ev->service is then filled and the rest of *ev is not. */
    CD_DECODE_OTHER_SERVICE
} cd_bad_reason_t;

/* Stable snake_case name of a reason ("truncated_json"), used in logs,
 * summaries and metrics. */
const char *cd_bad_reason_name(cd_bad_reason_t r);

/*
 * Where the decoder finds each field. Paths are dot-separated object keys
 * ("data.latency_ms", "meta.track"). Strings are copied by cd_decoder_new().
 */
typedef struct cd_decode_conf {
    const char *type_path;    /* default "event_type" */
    const char *time_path;    /* default "timestamp" */
    const char *cohort_path;  /* default "cohort"; NULL or "" = always derive from version */
    const char *canary_value; /* default "canary" */
    const char *stable_value; /* default "stable" */
    const char *version_path; /* default "version" */
    const char *service_path; /* default "service" */
    /* When set (non-empty), the decoder keeps only events whose service field
     * equals it, byte for byte; every other well-formed event is answered
     * CD_DECODE_OTHER_SERVICE before its type, time and cohort are read
     * (another service's schema is not ours to judge). NULL or "" = every
     * event, whatever its service. */
    const char *service;
    /* When set, an event without a cohort field is canary if its version equals
     * this, stable otherwise. */
    const char *canary_version;
    const char *types[CD_MAX_TYPES]; /* the event type catalog; index = type id */
    int ntypes;
    const char *numeric_paths[CD_MAX_NUMERIC]; /* index = numeric field id = histogram id */
    int nnumeric;
    int max_tokens; /* jsmn tokens per event; 0 = default 256 */
} cd_decode_conf_t;

/* Fills conf with the defaults above (no types, no numeric fields). */
void cd_decode_conf_init(cd_decode_conf_t *conf);

typedef struct cd_decoder cd_decoder_t;

/*
 * Builds a decoder; copies everything it needs from conf. Returns NULL with a
 * message in errbuf on an invalid conf (empty path, duplicate type, ...).
 * Free with cd_decoder_destroy().
 */
cd_decoder_t *cd_decoder_new(const cd_decode_conf_t *conf, char *errbuf, size_t errsize);
void cd_decoder_destroy(cd_decoder_t *d);

/* Type id for a name, or CD_TYPE_OTHER. */
int cd_decoder_type_id(const cd_decoder_t *d, const char *name);

/*
 * Decodes one payload of len bytes (need not be NUL-terminated; may contain
 * NULs, which are rejected). On CD_BAD_NONE *ev is filled; on
 * CD_DECODE_OTHER_SERVICE (a decoder with conf.service only) ev->service and
 * ev->service_len are; otherwise *ev is unspecified. Thread-safe; no
 * allocation.
 */
cd_bad_reason_t cd_decode(const cd_decoder_t *d, const char *buf, size_t len, cd_event_t *ev);

#endif
