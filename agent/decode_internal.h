/*
 * decode_internal.h - the decoder's private layout, shared by decode_conf.c
 * (which builds it from a cd_decode_conf_t) and decode.c (the hot path that
 * reads it). Not a public header: nothing outside agent/decode*.c includes it.
 *
 * Every configured field is a "path": a dot path split into segments once at
 * construction, so the hot path compares key tokens against (pointer, length)
 * pairs without scanning for dots. Path ids index a 16-bit mask (9 used).
 */
#ifndef CANARYD_DECODE_INTERNAL_H
#define CANARYD_DECODE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canaryd/event.h"
#include "canaryd/timeutil.h"

#define CD_DECODE_DEFAULT_TOKENS 256
#define CD_DECODE_MAX_TOKENS 1024 /* hard cap: the token array lives on the stack */
#define CD_PATH_MAX_SEGS 16       /* "a.b.c..." segments per path */
#define CD_PATH_MAX_LEN 256       /* bytes per path, NUL included */

enum {
    CD_PATH_TYPE = 0,
    CD_PATH_TIME,
    CD_PATH_COHORT,
    CD_PATH_VERSION,
    CD_PATH_SERVICE,
    CD_PATH_NUM0, /* numeric field k is CD_PATH_NUM0 + k */
    CD_PATH_MAX = CD_PATH_NUM0 + CD_MAX_NUMERIC
};

typedef struct cd_seg {
    const char *s; /* into cd_path_t.buf */
    size_t len;
} cd_seg_t;

typedef struct cd_path {
    char buf[CD_PATH_MAX_LEN];
    cd_seg_t seg[CD_PATH_MAX_SEGS];
    int nseg;
} cd_path_t;

#define CD_SEG_LEN_BUCKETS 64 /* the last bucket holds every longer segment */

struct cd_decoder {
    cd_path_t paths[CD_PATH_MAX];
    /* [depth][min(len, 63)]: mask of the paths whose segment at that depth has
     * that length; lets the hot path skip most keys without comparing. */
    uint16_t seg_len_mask[CD_PATH_MAX_SEGS][CD_SEG_LEN_BUCKETS];
    uint16_t all_paths; /* mask of the configured paths */
    bool has_cohort_path;
    char canary_value[CD_NAME_MAX], stable_value[CD_NAME_MAX];
    size_t canary_len, stable_len;
    char *canary_version; /* NULL when cohorts are not derived from versions */
    size_t canary_version_len;
    char types[CD_MAX_TYPES][CD_NAME_MAX];
    size_t type_len[CD_MAX_TYPES];
    int ntypes;
    int nnumeric;
    int max_tokens;
};

#endif
