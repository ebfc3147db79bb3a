/*
 * decode_conf.c - building and describing event decoders: conf defaults,
 * validation, the immutable cd_decoder_t, and the names of rejection reasons.
 *
 * Validation happens once here so that the hot path (decode.c) can trust its
 * decoder blindly: every path is non-empty with non-empty segments, type
 * names are unique, counts are in range. Every string the conf points to is
 * copied; the caller may free its conf right after cd_decoder_new(). Errors
 * name the conf field, the value given and what is accepted.
 */
#include <stdarg.h>
#include <string.h>

#include "decode_internal.h"

const char *cd_bad_reason_name(cd_bad_reason_t r)
{
    switch (r) {
    case CD_BAD_NONE:
        return "none";
    case CD_BAD_LINE_TOO_LONG:
        return "line_too_long";
    case CD_BAD_NUL_BYTE:
        return "nul_byte";
    case CD_BAD_INVALID_UTF8:
        return "invalid_utf8";
    case CD_BAD_TRUNCATED_JSON:
        return "truncated_json";
    case CD_BAD_INVALID_JSON:
        return "invalid_json";
    case CD_BAD_TOO_COMPLEX:
        return "too_complex";
    case CD_BAD_NOT_OBJECT:
        return "not_object";
    case CD_BAD_MISSING_TYPE:
        return "missing_type";
    case CD_BAD_WRONG_TYPE:
        return "wrong_type";
    case CD_BAD_MISSING_TIMESTAMP:
        return "missing_timestamp";
    case CD_BAD_BAD_TIMESTAMP:
        return "bad_timestamp";
    case CD_BAD_MISSING_COHORT:
        return "missing_cohort";
    case CD_BAD_UNKNOWN_COHORT:
        return "unknown_cohort";
    case CD_DECODE_OTHER_SERVICE:
        return "other_service";
    case CD_BAD__COUNT:
        break;
    }
    return "unknown";
}

void cd_decode_conf_init(cd_decode_conf_t *conf)
{
    memset(conf, 0, sizeof *conf);
    conf->type_path = "event_type";
    conf->time_path = "timestamp";
    conf->cohort_path = "cohort";
    conf->canary_value = "canary";
    conf->stable_value = "stable";
    conf->version_path = "version";
    conf->service_path = "service";
    conf->canary_version = NULL;
    conf->max_tokens = 0;
}

static void set_err(char *errbuf, size_t errsize, const char *fmt, ...)
{
    if (!errbuf || errsize == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errsize, fmt, ap);
    va_end(ap);
}

/* Splits a dot path into segments; false + message when it is empty, too
 * long, or has an empty segment ("a..b", ".a", "a."). */
static bool path_compile(cd_path_t *p, const char *field, const char *path, char *errbuf,
                         size_t errsize)
{
    if (!path || !*path) {
        set_err(errbuf, errsize, "decoder: %s is empty; expected a dot path such as \"data.x\"",
                field);
        return false;
    }
    size_t len = strlen(path);
    if (len >= sizeof p->buf) {
        set_err(errbuf, errsize, "decoder: %s \"%.40s...\" is %zu bytes; at most %zu accepted",
                field, path, len, sizeof p->buf - 1);
        return false;
    }
    memcpy(p->buf, path, len + 1);
    p->nseg = 0;
    const char *s = p->buf;
    for (;;) {
        const char *dot = strchr(s, '.');
        size_t n = dot ? (size_t)(dot - s) : strlen(s);
        if (n == 0) {
            set_err(errbuf, errsize, "decoder: %s \"%s\" has an empty segment", field, path);
            return false;
        }
        if (p->nseg == CD_PATH_MAX_SEGS) {
            set_err(errbuf, errsize, "decoder: %s \"%s\" has more than %d segments", field, path,
                    CD_PATH_MAX_SEGS);
            return false;
        }
        p->seg[p->nseg++] = (cd_seg_t){.s = s, .len = n};
        if (!dot) return true;
        s = dot + 1;
    }
}

/* Copies a name into a CD_NAME_MAX buffer; false + message when empty or too long. */
static bool name_copy(char *dst, size_t *dlen, const char *field, const char *name, char *errbuf,
                      size_t errsize)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0) {
        set_err(errbuf, errsize, "decoder: %s is empty; expected a non-empty string", field);
        return false;
    }
    if (n >= CD_NAME_MAX) {
        set_err(errbuf, errsize, "decoder: %s \"%.40s...\" is %zu bytes; at most %d accepted",
                field, name, n, CD_NAME_MAX - 1);
        return false;
    }
    memcpy(dst, name, n + 1);
    *dlen = n;
    return true;
}

static int len_bucket(size_t len)
{
    return len < CD_SEG_LEN_BUCKETS ? (int)len : CD_SEG_LEN_BUCKETS - 1;
}

/* Fills seg_len_mask and the segment keys (see decode_internal.h): for each
 * depth and length bucket in order, one entry per distinct segment string,
 * with the masks of every configured path that ends or continues there. */
static void build_segkeys(cd_decoder_t *d)
{
    int nk = 0;
    for (int depth = 0; depth < CD_PATH_MAX_SEGS; depth++) {
        for (int b = 0; b < CD_SEG_LEN_BUCKETS; b++) {
            int first = nk;
            for (int p = 0; p < CD_PATH_MAX; p++) {
                const cd_path_t *path = &d->paths[p];
                if (!(d->all_paths & (1u << p)) || depth >= path->nseg) continue;
                const cd_seg_t *seg = &path->seg[depth];
                if (len_bucket(seg->len) != b) continue;
                d->seg_len_mask[depth][b] |= (uint16_t)(1u << p);
                int k = first;
                while (k < nk && !(d->segkeys[k].len == seg->len &&
                                   !memcmp(d->segkeys[k].s, seg->s, seg->len)))
                    k++;
                if (k == nk) {
                    CD_ASSERT(nk < CD_SEGKEYS_MAX);
                    cd_segkey_t *e = &d->segkeys[nk++];
                    *e = (cd_segkey_t){.s = seg->s, .len = seg->len};
                    cd_key_image_safe(seg->s, seg->len, &e->head, &e->tail);
                }
                if (depth == path->nseg - 1)
                    d->segkeys[k].final |= (uint16_t)(1u << p);
                else
                    d->segkeys[k].cont |= (uint16_t)(1u << p);
            }
            d->seg_len_mask[depth][b] |= (uint32_t)first << 16 | (uint32_t)(nk - first) << 24;
        }
    }
}

cd_decoder_t *cd_decoder_new(const cd_decode_conf_t *conf, char *errbuf, size_t errsize)
{
    cd_decoder_t *d = NULL;
    char field[48];
    if (!conf) {
        set_err(errbuf, errsize, "decoder: no configuration given");
        goto err;
    }
    if (conf->ntypes < 0 || conf->ntypes > CD_MAX_TYPES) {
        set_err(errbuf, errsize, "decoder: ntypes %d is outside the allowed range 0..%d",
                conf->ntypes, CD_MAX_TYPES);
        goto err;
    }
    if (conf->nnumeric < 0 || conf->nnumeric > CD_MAX_NUMERIC) {
        set_err(errbuf, errsize, "decoder: nnumeric %d is outside the allowed range 0..%d",
                conf->nnumeric, CD_MAX_NUMERIC);
        goto err;
    }
    if (conf->max_tokens < 0 || conf->max_tokens > CD_DECODE_MAX_TOKENS) {
        set_err(errbuf, errsize,
                "decoder: max_tokens %d is outside the allowed range 1..%d (0 = default %d)",
                conf->max_tokens, CD_DECODE_MAX_TOKENS, CD_DECODE_DEFAULT_TOKENS);
        goto err;
    }
    d = calloc(1, sizeof *d);
    if (!d) {
        set_err(errbuf, errsize, "decoder: out of memory");
        goto err;
    }
    d->max_tokens = conf->max_tokens ? conf->max_tokens : CD_DECODE_DEFAULT_TOKENS;

    if (!path_compile(&d->paths[CD_PATH_TYPE], "type_path", conf->type_path, errbuf, errsize) ||
        !path_compile(&d->paths[CD_PATH_TIME], "time_path", conf->time_path, errbuf, errsize) ||
        !path_compile(&d->paths[CD_PATH_VERSION], "version_path", conf->version_path, errbuf,
                      errsize) ||
        !path_compile(&d->paths[CD_PATH_SERVICE], "service_path", conf->service_path, errbuf,
                      errsize))
        goto err;
    d->all_paths =
        1u << CD_PATH_TYPE | 1u << CD_PATH_TIME | 1u << CD_PATH_VERSION | 1u << CD_PATH_SERVICE;

    d->has_cohort_path = conf->cohort_path && *conf->cohort_path;
    if (d->has_cohort_path) {
        if (!path_compile(&d->paths[CD_PATH_COHORT], "cohort_path", conf->cohort_path, errbuf,
                          errsize) ||
            !name_copy(d->canary_value, &d->canary_len, "canary_value", conf->canary_value, errbuf,
                       errsize) ||
            !name_copy(d->stable_value, &d->stable_len, "stable_value", conf->stable_value, errbuf,
                       errsize))
            goto err;
        if (!strcmp(d->canary_value, d->stable_value)) {
            set_err(errbuf, errsize,
                    "decoder: canary_value and stable_value are both \"%s\"; they must differ",
                    d->canary_value);
            goto err;
        }
        d->all_paths |= 1u << CD_PATH_COHORT;
    }
    if (conf->service && *conf->service &&
        !name_copy(d->service, &d->service_len, "service", conf->service, errbuf, errsize))
        goto err;
    if (conf->canary_version && *conf->canary_version) {
        d->canary_version = strdup(conf->canary_version);
        if (!d->canary_version) {
            set_err(errbuf, errsize, "decoder: out of memory");
            goto err;
        }
        d->canary_version_len = strlen(d->canary_version);
    }

    for (int i = 0; i < conf->ntypes; i++) {
        snprintf(field, sizeof field, "types[%d]", i);
        if (!name_copy(d->types[i], &d->type_len[i], field, conf->types[i], errbuf, errsize))
            goto err;
        for (int j = 0; j < i; j++) {
            if (!strcmp(d->types[i], d->types[j])) {
                set_err(errbuf, errsize, "decoder: types[%d] \"%s\" duplicates types[%d]", i,
                        d->types[i], j);
                goto err;
            }
        }
    }
    d->ntypes = conf->ntypes;

    for (int k = 0; k < conf->nnumeric; k++) {
        snprintf(field, sizeof field, "numeric_paths[%d]", k);
        if (!path_compile(&d->paths[CD_PATH_NUM0 + k], field, conf->numeric_paths[k], errbuf,
                          errsize))
            goto err;
        for (int j = 0; j < k; j++) {
            if (!strcmp(d->paths[CD_PATH_NUM0 + k].buf, d->paths[CD_PATH_NUM0 + j].buf)) {
                set_err(errbuf, errsize,
                        "decoder: numeric_paths[%d] \"%s\" duplicates numeric_paths[%d]", k,
                        conf->numeric_paths[k], j);
                goto err;
            }
        }
        d->all_paths |= (uint16_t)(1u << (CD_PATH_NUM0 + k));
    }
    d->nnumeric = conf->nnumeric;

    for (int i = 0; i < d->ntypes; i++)
        cd_key_image_safe(d->types[i], d->type_len[i], &d->type_head[i], &d->type_tail[i]);
    build_segkeys(d);
    return d;

err:
    cd_decoder_destroy(d);
    return NULL;
}

void cd_decoder_destroy(cd_decoder_t *d)
{
    if (!d) return;
    free(d->canary_version);
    free(d);
}

int cd_decoder_type_id(const cd_decoder_t *d, const char *name)
{
    if (!d || !name) return CD_TYPE_OTHER;
    for (int i = 0; i < d->ntypes; i++)
        if (!strcmp(d->types[i], name)) return i;
    return CD_TYPE_OTHER;
}
