/*
 * decode_internal.h - the decoder's private layout, shared by decode_conf.c
 * (which builds it from a cd_decode_conf_t) and decode.c (the hot path that
 * reads it). Not a public header: nothing outside agent/decode*.c includes it.
 *
 * Every configured field is a "path": a dot path split into segments once at
 * construction, so the hot path compares key tokens against (pointer, length)
 * pairs without scanning for dots. Path ids index a 16-bit mask (9 used).
 *
 * Key matching. The distinct segments of all paths are also kept as "segment
 * keys", one per (depth, string), sorted by depth and length and each holding
 * the masks of the paths it ends and continues, so a key is matched against
 * the few segments of its own depth and length only, all paths at once. Keys,
 * segments and type names are compared through their word images
 * (cd_key_image): two integer compares for anything up to 16 bytes.
 */
#ifndef CANARYD_DECODE_INTERNAL_H
#define CANARYD_DECODE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/* One distinct segment string at one depth. */
typedef struct cd_segkey {
    uint64_t head, tail; /* word image (cd_key_image) */
    const char *s;       /* into a cd_path_t.buf */
    size_t len;
    uint16_t final; /* paths whose last segment this is */
    uint16_t cont;  /* paths that continue below it */
} cd_segkey_t;

#define CD_SEGKEYS_MAX (CD_PATH_MAX * CD_PATH_MAX_SEGS)

/* The word image of the n bytes at s: tail holds the last min(n, 8) of them
 * (packed low), head the first 8 when n > 8, else 0. Equal strings of equal
 * length have equal images; for n <= 16 equal images mean equal strings
 * (longer ones also compare bytes 8..n-9, see cd_words_eq). Two loads and
 * no branch on n: the caller guarantees that the 8 bytes before s + n are
 * readable, even where they begin before s (inside the same buffer). */
static inline void cd_key_image(const char *s, size_t n, uint64_t *head, uint64_t *tail)
{
    uint64_t x, h;
    memcpy(&x, s + n - 8, 8);
    memcpy(&h, n > 8 ? s : s + n - 8, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* the string's bytes are the top n of x; shifting by 8 (8 - n) in two
     * steps keeps n == 0 defined (and 0) */
    *tail = n >= 8 ? x : x >> 1 >> (8 * (8 - n) - 1);
#else
    *tail = n >= 8 ? x : x & ((UINT64_C(1) << 1 << (8 * n - 1)) - 1);
#endif
    *head = n > 8 ? h : 0;
}

/* cd_key_image of a string that may sit at the very start of its buffer:
 * copied behind 8 bytes of padding first when it is short. */
static inline void cd_key_image_safe(const char *s, size_t n, uint64_t *head, uint64_t *tail)
{
    if (n >= 8) {
        cd_key_image(s, n, head, tail);
        return;
    }
    char pad[16] = {0};
    memcpy(pad + 8, s, n);
    cd_key_image(pad + 8, n, head, tail);
}

/* a and b, both n bytes with images (ah, at) and (bh, bt), are equal. Up to
 * 24 bytes the middle is one more word (bytes 8..15, inside both strings);
 * event type names such as "REQUEST_COMPLETED" are 17. */
static inline bool cd_words_eq(const char *a, uint64_t ah, uint64_t at, const char *b, uint64_t bh,
                               uint64_t bt, size_t n)
{
    if (ah != bh || at != bt) return false;
    if (n <= 16) return true;
    if (n <= 24) {
        uint64_t x, y;
        memcpy(&x, a + 8, 8);
        memcpy(&y, b + 8, 8);
        return x == y;
    }
    return !memcmp(a + 8, b + 8, n - 16);
}

struct cd_decoder {
    cd_path_t paths[CD_PATH_MAX];
    /* [depth][min(len, 63)]: the paths whose segment at that depth has that
     * length, which lets the hot path skip most keys with one load. */
    /* The distinct segments at that depth in length bucket b are
     * segkeys[first .. first + count), where seg_len_mask[depth][b] is
     * mask | first << 16 | count << 24 and mask has the paths among them. */
    uint32_t seg_len_mask[CD_PATH_MAX_SEGS][CD_SEG_LEN_BUCKETS];
    cd_segkey_t segkeys[CD_SEGKEYS_MAX];
    uint16_t all_paths; /* mask of the configured paths */
    bool has_cohort_path;
    char canary_value[CD_NAME_MAX], stable_value[CD_NAME_MAX];
    size_t canary_len, stable_len;
    char service[CD_NAME_MAX]; /* conf.service; service_len 0 = no filter */
    size_t service_len;
    char *canary_version; /* NULL when cohorts are not derived from versions */
    size_t canary_version_len;
    char types[CD_MAX_TYPES][CD_NAME_MAX];
    size_t type_len[CD_MAX_TYPES];
    uint64_t type_head[CD_MAX_TYPES], type_tail[CD_MAX_TYPES]; /* word images */
    int ntypes;
    int nnumeric;
    int max_tokens;
};

#endif
