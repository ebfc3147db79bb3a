/*
 * decode.c - the hot-path event decoder: one JSON payload in, one cd_event_t
 * (or exactly one rejection reason) out.
 *
 * Pipeline per payload, each stage deciding one group of cd_bad_reason_t in
 * enum order:
 *   1. byte scan (8 bytes at a time): notes whether any byte is < 0x20 or
 *      >= 0x80. Only then do we look for a NUL (memchr) or run the full UTF-8
 *      validator, so an all-ASCII event costs one pass of word loads.
 *   2. jsmn tokenizes into a token array on this thread's stack (strict mode,
 *      parent links so that closing brackets and commas cost O(depth) instead
 *      of a backwards scan over all tokens: bounded time on hostile input).
 *   3. one iterative walk over the tokens (explicit stack, no recursion) that
 *      does two jobs at once:
 *      - it finishes the grammar check jsmn leaves undone even in strict mode
 *        (missing or extra commas/colons, trailing commas, `tru` or `1.2.3`
 *        as literals, raw control characters inside strings, a second
 *        top-level value), by checking the bytes between tokens and the shape
 *        of the token tree;
 *      - it matches object keys against the configured dot paths. Each stack
 *        frame carries a bitmask of the paths whose leading segments match
 *        the keys above it, so every path is resolved in the same single pass
 *        and non-matching subtrees are skipped for free.
 *   4. the extracted tokens are interpreted: type, timestamp, cohort, then
 *      version/service and numeric fields.
 *
 * Strings are compared raw: JSON escapes are not decoded, so "canary" written
 * as "\u0063anary" does not match. The values we compare (type names, cohort
 * values, versions) are plain ASCII in every producer we know of; decoding
 * would cost a copy per field. When a key occurs twice in one object the last
 * occurrence wins (as in jansson and JavaScript).
 *
 * Threading: a decoder is immutable after cd_decoder_new(); cd_decode() only
 * reads it and writes the caller's stack and *ev, so any number of threads may
 * share one. No allocation per event; the cost is stack: up to 1024 jsmn
 * tokens (20 B) and 1024 walk frames (12 B), about 32 KB at the cap, which
 * every thread that decodes must have to spare.
 */
#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "decode_internal.h"

#include <math.h>
#include <string.h>

/* ---- stage 1: bytes ---------------------------------------------------- */

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Well-formed UTF-8 per Unicode Table 3-7: no overlongs (C0, C1, E0 80..9F,
 * F0 80..8F), no surrogates (ED A0..BF), nothing above U+10FFFF (F4 90..,
 * F5..FF), no truncated sequences. ASCII runs are skipped 8 bytes at a time. */
static bool utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & HIGHS)) {
                i += 8;
                continue;
            }
        }
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else {
            return false;
        }
        if (len - i <= n) return false;
        if (s[i + 1] < lo || s[i + 1] > hi) return false;
        for (size_t k = 2; k <= n; k++)
            if ((s[i + k] & 0xC0) != 0x80) return false;
        i += n + 1;
    }
    return true;
}

/* Stage 1. *has_ctl is set when some byte is below 0x20 (only then can a
 * string hold a raw control character, which the walk must reject). */
static cd_bad_reason_t scan_bytes(const char *buf, size_t len, bool *has_ctl)
{
    const unsigned char *s = (const unsigned char *)buf;
    uint64_t ctl = 0, high = 0;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        /* Non-zero iff some byte is < 0x20 (the "hasless" bit trick: a
         * borrow can only spill into a byte above one that already fired). */
        ctl |= (w - ONES * 0x20) & ~w & HIGHS;
        high |= w & HIGHS;
    }
    for (; i < len; i++) {
        ctl |= s[i] < 0x20;
        high |= s[i] & 0x80;
    }
    *has_ctl = ctl != 0;
    if (ctl && memchr(buf, 0, len)) return CD_BAD_NUL_BYTE;
    if (high && !utf8_valid(s, len)) return CD_BAD_INVALID_UTF8;
    return CD_BAD_NONE;
}

/* ---- stage 3: grammar check + path matching ---------------------------- */

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The bytes in [from, to) are whitespace, then sep (if non-zero), then
 * whitespace. */
static inline bool gap_ok(const char *buf, size_t from, size_t to, char sep)
{
    /* Compact JSON (the common case) has nothing or exactly the separator. */
    if (to - from == (sep != 0) && (!sep || buf[from] == sep)) return true;
    while (from < to && is_ws(buf[from]))
        from++;
    if (sep) {
        if (from >= to || buf[from] != sep) return false;
        from++;
        while (from < to && is_ws(buf[from]))
            from++;
    }
    return from == to;
}

/* JSON literal: true, false, null or a number
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool literal_ok(const char *s, size_t n)
{
    if ((n == 4 && !memcmp(s, "true", 4)) || (n == 5 && !memcmp(s, "false", 5)) ||
        (n == 4 && !memcmp(s, "null", 4)))
        return true;
    size_t i = 0;
    if (i < n && s[i] == '-') i++;
    if (i >= n) return false;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return false;
    }
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d) return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d) return false;
    }
    return i == n;
}

static bool has_ctl_char(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20) return true;
    return false;
}

typedef struct frame {
    int tok;       /* container token */
    int left;      /* children (keys for objects) still to come */
    uint16_t mask; /* paths whose segments matched the keys down to here */
    bool is_obj;
    bool first;
} frame_t;

/* First byte of a token in the input (strings: the opening quote). */
static size_t tok_begin(const jsmntok_t *t)
{
    return (size_t)t->start - (t->type == JSMN_STRING);
}

/* Byte after a token (strings: after the closing quote; containers: after
 * the opening bracket, their content follows). */
static size_t tok_after(const jsmntok_t *t)
{
    if (t->type == JSMN_OBJECT || t->type == JSMN_ARRAY) return (size_t)t->start + 1;
    return (size_t)t->end + (t->type == JSMN_STRING);
}

/* Checks a scalar's shape; containers are checked as their frames close. */
static bool scalar_ok(const char *buf, const jsmntok_t *t, bool has_ctl)
{
    if (t->size != 0) return false;
    if (t->type == JSMN_PRIMITIVE) return literal_ok(buf + t->start, (size_t)(t->end - t->start));
    return !has_ctl || !has_ctl_char(buf + t->start, (size_t)(t->end - t->start));
}

/* Key token k at depth `depth` against the paths in mask: *final gets the
 * paths it completes, the return value the paths that continue below it. */
static uint16_t match_key(const cd_decoder_t *d, const char *buf, const jsmntok_t *k, int depth,
                          uint16_t mask, uint16_t *final)
{
    uint16_t cont = 0;
    size_t klen = (size_t)(k->end - k->start);
    *final = 0;
    /* Only paths whose segment here has this key's length can match: most
     * keys are settled by this one table lookup. */
    mask &= d->seg_len_mask[depth][klen < CD_SEG_LEN_BUCKETS ? klen : CD_SEG_LEN_BUCKETS - 1];
    while (mask) {
        int p = __builtin_ctz(mask);
        mask &= (uint16_t)(mask - 1);
        const cd_path_t *path = &d->paths[p];
        const cd_seg_t *seg = &path->seg[depth];
        if (seg->len == klen && seg->s[0] == buf[k->start] &&
            !memcmp(seg->s, buf + k->start, klen)) {
            if (depth == path->nseg - 1)
                *final |= (uint16_t)(1u << p);
            else
                cont |= (uint16_t)(1u << p);
        }
    }
    return cont;
}

/*
 * Stage 3 over n >= 1 tokens: grammar check and path resolution. found[p] is
 * set to the value token of path p (last occurrence), -1 when absent.
 */
static cd_bad_reason_t walk(const cd_decoder_t *d, const char *buf, size_t len,
                            const jsmntok_t *tok, int n, bool has_ctl, int *found)
{
    frame_t st[CD_DECODE_MAX_TOKENS];
    int sp = 0;
    size_t p = 0; /* bytes before p are accounted for */
    bool not_object = false;

    for (int i = 0; i < n; i++) {
        /* Close finished containers: only whitespace before their bracket. */
        while (sp > 0 && st[sp - 1].left == 0) {
            size_t close = (size_t)tok[st[sp - 1].tok].end - 1;
            if (!gap_ok(buf, p, close, 0)) return CD_BAD_INVALID_JSON;
            p = close + 1;
            sp--;
        }
        const jsmntok_t *t = &tok[i];
        uint16_t final = 0, cont = 0;
        if (sp == 0) {
            if (i != 0) return CD_BAD_INVALID_JSON; /* a second top-level value */
            if (!gap_ok(buf, p, tok_begin(t), 0)) return CD_BAD_INVALID_JSON;
            /* Not an object: keep checking the grammar so that the reason
             * is invalid_json when both apply (it comes first). */
            not_object = t->type != JSMN_OBJECT;
            cont = not_object ? 0 : d->all_paths;
        } else {
            frame_t *f = &st[sp - 1];
            char sep = f->first ? 0 : ',';
            f->first = false;
            f->left--;
            if (!gap_ok(buf, p, tok_begin(t), sep)) return CD_BAD_INVALID_JSON;
            if (f->is_obj) {
                /* A key: a string whose only child is its value. */
                if (t->type != JSMN_STRING || t->size != 1 || i + 1 >= n)
                    return CD_BAD_INVALID_JSON;
                if (has_ctl && has_ctl_char(buf + t->start, (size_t)(t->end - t->start)))
                    return CD_BAD_INVALID_JSON;
                if (f->mask) cont = match_key(d, buf, t, sp - 1, f->mask, &final);
                p = tok_after(t);
                t = &tok[++i];
                if (!gap_ok(buf, p, tok_begin(t), ':')) return CD_BAD_INVALID_JSON;
                while (final) {
                    found[__builtin_ctz(final)] = i;
                    final &= (uint16_t)(final - 1);
                }
            }
        }
        if (t->type == JSMN_OBJECT || t->type == JSMN_ARRAY) {
            /* sp < n <= CD_DECODE_MAX_TOKENS: each frame holds a token. */
            CD_ASSERT(sp < CD_DECODE_MAX_TOKENS);
            st[sp++] = (frame_t){.tok = i,
                                 .left = t->size,
                                 .mask = t->type == JSMN_OBJECT ? cont : 0,
                                 .is_obj = t->type == JSMN_OBJECT,
                                 .first = true};
        } else if (!scalar_ok(buf, t, has_ctl)) {
            return CD_BAD_INVALID_JSON;
        }
        p = tok_after(t);
    }
    while (sp > 0) {
        if (st[sp - 1].left != 0) return CD_BAD_INVALID_JSON;
        size_t close = (size_t)tok[st[sp - 1].tok].end - 1;
        if (!gap_ok(buf, p, close, 0)) return CD_BAD_INVALID_JSON;
        p = close + 1;
        sp--;
    }
    if (!gap_ok(buf, p, len, 0)) return CD_BAD_INVALID_JSON;
    return not_object ? CD_BAD_NOT_OBJECT : CD_BAD_NONE;
}

/* ---- stage 4: interpretation ------------------------------------------- */

static bool str_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && !memcmp(a, b, alen);
}

/* 9999-12-31T23:59:59.999Z: the last instant RFC 3339 can write, so every
 * accepted time can be rendered back into the verdict log. */
#define CD_EPOCH_MS_MAX INT64_C(253402300799999)

/* Integer epoch ms: digits only (the grammar check already refused leading
 * zeros), no sign, no fraction, no exponent, at most year 9999. */
static bool epoch_ms(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
        if (v > CD_EPOCH_MS_MAX) return false;
    }
    *out = v;
    return true;
}

/* Clinger's fast path: "-?digits[.digits]" with at most 15 significant
 * digits is mantissa / 10^k with both exactly representable, so one IEEE
 * division is correctly rounded, the same double strtod returns. Latencies
 * ("12.5", "231.07") nearly always take it. */
static bool number_fast(const char *s, size_t n, double *out)
{
    static const double pow10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    size_t i = s[0] == '-';
    uint64_t m = 0;
    int ndig = 0, frac = -1;
    for (; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            m = m * 10 + (uint64_t)(c - '0');
            if (++ndig > 15) return false;
            if (frac >= 0) frac++;
        } else if (c == '.' && frac < 0) {
            frac = 0;
        } else {
            return false; /* exponent: leave it to strtod */
        }
    }
    double v = (double)m;
    if (frac > 0) v /= pow10[frac];
    *out = s[0] == '-' ? -v : v;
    return true;
}

/* A JSON number token (already grammar-checked) as a finite double. strtod
 * needs a NUL-terminated copy; numbers longer than the copy buffer are
 * refused (no real metric has 64 significant characters). */
static bool number_value(const char *s, size_t n, double *out)
{
    char tmp[64];
    if (n > 0 && n < 17 && number_fast(s, n, out)) return true;
    if (n == 0 || n >= sizeof tmp || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))) return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    double v = strtod(tmp, &end);
    if (end != tmp + n || !isfinite(v)) return false;
    *out = v;
    return true;
}

static cd_bad_reason_t interpret(const cd_decoder_t *d, const char *buf, const jsmntok_t *tok,
                                 const int *found, cd_event_t *ev)
{
    const jsmntok_t *t;
    memset(ev, 0, sizeof *ev);

    if (found[CD_PATH_TYPE] < 0) return CD_BAD_MISSING_TYPE;
    t = &tok[found[CD_PATH_TYPE]];
    if (t->type != JSMN_STRING) return CD_BAD_WRONG_TYPE;
    ev->type_str = buf + t->start;
    ev->type_len = (size_t)(t->end - t->start);
    ev->type = CD_TYPE_OTHER;
    for (int i = 0; i < d->ntypes; i++) {
        if (str_eq(ev->type_str, ev->type_len, d->types[i], d->type_len[i])) {
            ev->type = i;
            break;
        }
    }

    if (found[CD_PATH_TIME] < 0) return CD_BAD_MISSING_TIMESTAMP;
    t = &tok[found[CD_PATH_TIME]];
    if (t->type == JSMN_STRING) {
        if (!cd_time_parse_rfc3339(buf + t->start, (size_t)(t->end - t->start), &ev->ts_ms))
            return CD_BAD_BAD_TIMESTAMP;
    } else if (t->type != JSMN_PRIMITIVE ||
               !epoch_ms(buf + t->start, (size_t)(t->end - t->start), &ev->ts_ms)) {
        return CD_BAD_BAD_TIMESTAMP;
    }

    /* version and service are informational: a non-string leaves them empty. */
    if (found[CD_PATH_VERSION] >= 0 && tok[found[CD_PATH_VERSION]].type == JSMN_STRING) {
        t = &tok[found[CD_PATH_VERSION]];
        ev->version = buf + t->start;
        ev->version_len = (size_t)(t->end - t->start);
    }
    if (found[CD_PATH_SERVICE] >= 0 && tok[found[CD_PATH_SERVICE]].type == JSMN_STRING) {
        t = &tok[found[CD_PATH_SERVICE]];
        ev->service = buf + t->start;
        ev->service_len = (size_t)(t->end - t->start);
    }

    if (d->has_cohort_path && found[CD_PATH_COHORT] >= 0) {
        t = &tok[found[CD_PATH_COHORT]];
        if (t->type != JSMN_STRING) return CD_BAD_WRONG_TYPE;
        const char *c = buf + t->start;
        size_t clen = (size_t)(t->end - t->start);
        if (str_eq(c, clen, d->canary_value, d->canary_len))
            ev->cohort = CD_COHORT_CANARY;
        else if (str_eq(c, clen, d->stable_value, d->stable_len))
            ev->cohort = CD_COHORT_STABLE;
        else
            return CD_BAD_UNKNOWN_COHORT;
    } else if (d->canary_version && ev->version) {
        ev->cohort = str_eq(ev->version, ev->version_len, d->canary_version, d->canary_version_len)
                         ? CD_COHORT_CANARY
                         : CD_COHORT_STABLE;
    } else {
        return CD_BAD_MISSING_COHORT;
    }

    for (int k = 0; k < d->nnumeric; k++) {
        int ti = found[CD_PATH_NUM0 + k];
        if (ti < 0) continue;
        t = &tok[ti];
        if (t->type == JSMN_PRIMITIVE &&
            number_value(buf + t->start, (size_t)(t->end - t->start), &ev->num[k]))
            ev->num_mask |= 1u << k;
        else
            ev->bad_num_mask |= 1u << k;
    }
    return CD_BAD_NONE;
}

/* ---- entry point -------------------------------------------------------- */

/* jsmn in strict mode reports a lone top-level number that reaches the end
 * of the input as PART (it wants a delimiter after it); a complete literal
 * there is a valid JSON document that is simply not an object. */
static cd_bad_reason_t lone_primitive(const char *buf, size_t len)
{
    size_t a = 0, b = len;
    while (a < b && is_ws(buf[a]))
        a++;
    while (b > a && is_ws(buf[b - 1]))
        b--;
    return literal_ok(buf + a, b - a) ? CD_BAD_NOT_OBJECT : CD_BAD_TRUNCATED_JSON;
}

cd_bad_reason_t cd_decode(const cd_decoder_t *d, const char *buf, size_t len, cd_event_t *ev)
{
    bool has_ctl;
    cd_bad_reason_t r;
    CD_ASSERT(d && ev && (buf || len == 0));
    /* jsmn keeps offsets in int. */
    if (len > (size_t)INT32_MAX) return CD_BAD_TOO_COMPLEX;
    if ((r = scan_bytes(buf, len, &has_ctl)) != CD_BAD_NONE) return r;

    jsmntok_t tok[CD_DECODE_MAX_TOKENS];
    jsmn_parser parser;
    jsmn_init(&parser);
    int n = jsmn_parse(&parser, buf, len, tok, (unsigned)d->max_tokens);
    if (n == JSMN_ERROR_NOMEM) return CD_BAD_TOO_COMPLEX;
    if (n == JSMN_ERROR_INVAL) return CD_BAD_INVALID_JSON;
    if (n == JSMN_ERROR_PART) {
        /* Something follows a complete first value: trailing garbage, not an
         * early end. */
        if (parser.toknext > 0 && tok[0].end != -1) return CD_BAD_INVALID_JSON;
        if (parser.toknext == 0) return lone_primitive(buf, len);
        return CD_BAD_TRUNCATED_JSON;
    }
    if (n <= 0) return CD_BAD_TRUNCATED_JSON; /* empty or whitespace only */

    int found[CD_PATH_MAX];
    for (int i = 0; i < CD_PATH_MAX; i++)
        found[i] = -1;
    if ((r = walk(d, buf, len, tok, n, has_ctl, found)) != CD_BAD_NONE) return r;
    return interpret(d, buf, tok, found, ev);
}
