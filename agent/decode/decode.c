/*
 * decode.c - the hot-path event decoder: one JSON payload in, one cd_event_t
 * (or exactly one rejection reason) out.
 *
 * Pipeline per payload, each stage deciding one group of cd_bad_reason_t in
 * enum order:
 *   1. byte scan (16 bytes at a time with SSE2, else 8): notes whether any
 *      byte is < 0x20 or >= 0x80. Only then do we look for a NUL (memchr) or
 *      run the full UTF-8 validator, so an all-ASCII event costs one pass of
 *      vector loads, and later stages need not look at string bytes again.
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
 *        and non-matching subtrees are skipped for free. A key is compared
 *        only with the segments of its depth and length, as two words.
 *   4. the extracted tokens are interpreted: service (a decoder built with
 *      conf.service answers another service's event here, before anything
 *      else is read), type, timestamp (common shape through a per-thread
 *      cache of the minute, see parse_time), version, cohort and numeric
 *      fields.
 *
 * Where the time goes (bench_decode, 241-byte events, see the README): of
 * about 6,300 instructions per event (callgrind, decode + count), jsmn is
 * 4,100 and takes about 60 % of the time, mostly its byte-at-a-time string
 * loop (13 instructions and 5 branches per byte); the walk, interpretation,
 * the scan and the window add share the rest. The CPU retires close to its
 * dispatch width here, so instructions are time: the walk handles a key and
 * its value in one step of an object-only inner loop, with the key matching
 * inline (155 fewer instructions per event than a generic per-token loop
 * with a match_key helper, 6-10 ns). Parent links pay for themselves:
 * without them jsmn scans back over the tokens at every ',' after a value
 * (measured 11 % more instructions per event on the benchmark's events).
 *
 * Build: CMakeLists.txt compiles this file with -fno-jump-tables and (but
 * for Debug builds) -O3, both portable. Otherwise GCC turns jsmn's switch on
 * every byte outside strings into a jump table, an indirect branch that
 * mispredicts (the gain measured: docs/performance-history.md). Code
 * placement matters as much as any change here: where jsmn's
 * string loop falls relative to 64-byte lines moves bench_decode by up to
 * 15-20 ns with identical code (measured by shifting cd_decode in 16-byte
 * steps; best when the loop starts a line). Check `objdump -d` after editing
 * this file: the loop is the movzbl / cmp $0x22 / cmp $0x5c sequence. Tried
 * and dropped, for no measurable gain: jsmn without JSMN_STRICT (no faster
 * once the jump table is gone, and it changes reasons: a lone "f" would
 * become invalid_json instead of truncated_json), a 64-entry token array
 * (jsmn only touches the tokens it fills), a hashed or branch-free event type
 * lookup, loop-free and leaner number parsers, a min-based control byte scan
 * (fewer instructions, but it moved the string loop to a worse place),
 * __builtin_expect on the error paths, walk or jsmn out of line, and
 * -funroll-loops, -falign-loops=32/64, -fno-tree-pre, -O2.
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
 * every thread that decodes must have to spare. The only other state is the
 * timestamp cache, one thread-local slot per thread.
 */
#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "decode_internal.h"

#include <math.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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
 * string hold a raw control character, which the walk must reject). With
 * SSE2 (every x86-64) 16 bytes per step: a byte is < 0x20 iff
 * min_epu8(byte, 0x1F) == byte; the high bits are OR-ed and read once. */
static cd_bad_reason_t scan_bytes(const char *buf, size_t len, bool *has_ctl)
{
    const unsigned char *s = (const unsigned char *)buf;
    uint64_t ctl = 0, high = 0;
    size_t i = 0;
#ifdef __SSE2__
    if (len >= 16) {
        const __m128i lim = _mm_set1_epi8(0x1F);
        __m128i vctl = _mm_setzero_si128(), vor = _mm_setzero_si128();
        for (; i + 16 <= len; i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            vctl = _mm_or_si128(vctl, _mm_cmpeq_epi8(_mm_min_epu8(v, lim), v));
            vor = _mm_or_si128(vor, v);
        }
        /* The tail as one more (overlapping) block: bytes re-read are harmless. */
        if (i < len) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + len - 16));
            vctl = _mm_or_si128(vctl, _mm_cmpeq_epi8(_mm_min_epu8(v, lim), v));
            vor = _mm_or_si128(vor, v);
            i = len;
        }
        ctl = (uint64_t)_mm_movemask_epi8(vctl);
        high = (uint64_t)_mm_movemask_epi8(vor);
    }
#endif
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

/* n bytes at a and b are equal. Keys and type names are short: two
 * overlapping word loads settle most of them without a libc call. */
static inline bool bytes_eq(const char *a, const char *b, size_t n)
{
    if (n >= 8) {
        uint64_t x, y, acc = 0;
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&x, a + i, 8);
            memcpy(&y, b + i, 8);
            acc |= x ^ y;
        }
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, b + n - 8, 8);
        return !(acc | (x ^ y));
    }
    if (n >= 4) {
        uint32_t x0, y0, x1, y1;
        memcpy(&x0, a, 4);
        memcpy(&y0, b, 4);
        memcpy(&x1, a + n - 4, 4);
        memcpy(&y1, b + n - 4, 4);
        return !((x0 ^ y0) | (x1 ^ y1));
    }
    return n == 0 || (a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1]);
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The bytes in [from, to) are whitespace, then sep (if non-zero), then
 * whitespace. Callers try the compact-JSON case inline first. */
static bool gap_ok(const char *buf, size_t from, size_t to, char sep)
{
    if (from > to) return false;
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

/* gap_ok, with compact JSON (nothing, or exactly the separator) decided
 * inline. */
static inline bool gap(const char *buf, size_t from, size_t to, char sep)
{
    if (to - from == (sep != 0) && (!sep || buf[from] == sep)) return true;
    return gap_ok(buf, from, to, sep);
}

static inline bool is_digit(char c)
{
    return (unsigned char)(c - '0') < 10;
}

/* JSON literal: true, false, null or a number
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool literal_ok(const char *s, size_t n)
{
    size_t i = 0;
    if (s[0] == 't') return n == 4 && !memcmp(s, "true", 4);
    if (s[0] == 'f') return n == 5 && !memcmp(s, "false", 5);
    if (s[0] == 'n') return n == 4 && !memcmp(s, "null", 4);
    if (s[0] == '-') i++;
    if (i >= n) return false;
    if (s[i] == '0') {
        i++;
    } else if (is_digit(s[i])) {
        while (i < n && is_digit(s[i]))
            i++;
    } else {
        return false;
    }
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && is_digit(s[i]))
            i++;
        if (i == d) return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t d = i;
        while (i < n && is_digit(s[i]))
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

/* A container being walked. The innermost one lives in walk()'s locals;
 * this is what is saved of the ones around it. */
typedef struct frame {
    int tok;       /* container token */
    int left;      /* children (keys for objects) still to come */
    uint16_t mask; /* paths whose segments matched the keys down to here */
    bool is_obj;
} frame_t;

/* First byte of a token in the input (strings: the opening quote). */
static inline size_t tok_begin(const jsmntok_t *t)
{
    return (size_t)t->start - (t->type == JSMN_STRING);
}

/* After a value with more to come in its container: whitespace, then the
 * ',' that *p must reach past. A closing bracket always follows a value
 * inside a container, so the scan stays below len. */
static bool skip_comma(const char *buf, size_t len, size_t *p)
{
    size_t i = *p;
    while (i < len && is_ws(buf[i]))
        i++;
    if (i >= len || buf[i] != ',') return false;
    *p = i + 1;
    return true;
}

/* After an element that is not its container's last: the ',' that must
 * follow, in the next byte (compact JSON: one compare) or after whitespace
 * (skip_comma); *p moves past it. */
static inline bool next_comma(const char *buf, size_t len, size_t *p)
{
    if (buf[*p] == ',') {
        (*p)++;
        return true;
    }
    return skip_comma(buf, len, p);
}

/* A scalar value t (a string or a literal) inside a container: no children,
 * no control character in a string, a literal that is JSON's; *p moves past
 * it (a string's closing quote). False: invalid JSON. */
static inline bool scalar_ok(const char *buf, const jsmntok_t *t, bool has_ctl, size_t *p)
{
    size_t n = (size_t)(t->end - t->start);
    if (t->size != 0) return false;
    if (t->type == JSMN_STRING) {
        if (has_ctl && has_ctl_char(buf + t->start, n)) return false;
        *p = (size_t)t->end + 1;
    } else {
        if (!literal_ok(buf + t->start, n)) return false;
        *p = (size_t)t->end;
    }
    return true;
}

/*
 * Stage 3 over n >= 1 tokens: grammar check and path resolution. found[p] is
 * set to the value token of path p (last occurrence), -1 when absent.
 *
 * Every grammar error gives the same reason (invalid_json), so the checks
 * may run in any order; what matters is that the set of accepted documents
 * is exactly JSON. The loop visits each token once, in document order, with
 * p the first byte not yet accounted for:
 *   - before an element (key or array value) only whitespace may precede it;
 *   - between a key and its value, whitespace and one ':';
 *   - after an element that is not its container's last, whitespace and one
 *     ',' are consumed at once (for a container: when it closes);
 *   - before a closing bracket, only whitespace.
 * Compact JSON passes each check with one compare; whitespace takes the
 * out-of-line path. The innermost container lives in locals (registers); the
 * stack holds only the ones around it, and its depth is the path depth.
 */
static cd_bad_reason_t walk(const cd_decoder_t *d, const char *buf, size_t len,
                            const jsmntok_t *tok, int n, bool has_ctl, int *found)
{
    frame_t st[CD_DECODE_MAX_TOKENS];
    const jsmntok_t *t = &tok[0];

    if (!gap(buf, 0, tok_begin(t), 0)) return CD_BAD_INVALID_JSON;
    if (t->type != JSMN_OBJECT && t->type != JSMN_ARRAY) {
        /* A lone scalar: a valid document that is not an object, unless
         * something follows it. */
        if (n != 1 || t->size != 0) return CD_BAD_INVALID_JSON;
        if (t->type == JSMN_PRIMITIVE
                ? !literal_ok(buf + t->start, (size_t)(t->end - t->start))
                : has_ctl && has_ctl_char(buf + t->start, (size_t)(t->end - t->start)))
            return CD_BAD_INVALID_JSON;
        size_t after = (size_t)t->end + (t->type == JSMN_STRING);
        return gap(buf, after, len, 0) ? CD_BAD_NOT_OBJECT : CD_BAD_INVALID_JSON;
    }
    /* Not an object: keep checking the grammar so that the reason is
     * invalid_json when both apply (it comes first). */
    bool not_object = t->type != JSMN_OBJECT;
    /* The innermost container. */
    int ctok = 0, left = t->size;
    uint16_t mask = not_object ? 0 : d->all_paths;
    bool is_obj = !not_object;
    int sp = 0, i = 1;
    size_t p = (size_t)t->start + 1;

    for (;;) {
        if (is_obj) {
            /* Key/value pairs: a key is a string whose only child is its value. */
            while (left) {
                left--;
                if (i + 1 >= n) return CD_BAD_INVALID_JSON;
                const jsmntok_t *k = &tok[i];
                t = k + 1;
                if (k->type != JSMN_STRING || k->size != 1) return CD_BAD_INVALID_JSON;
                size_t ks = (size_t)k->start, ke = (size_t)k->end, vb = tok_begin(t);
                /* The value follows the key's closing quote, so ke + 1 < vb <= len. */
                if (!(ks - 1 == p && vb == ke + 2 && buf[ke + 1] == ':') &&
                    !(gap_ok(buf, p, ks - 1, 0) && gap_ok(buf, ke + 1, vb, ':')))
                    return CD_BAD_INVALID_JSON;
                if (has_ctl && has_ctl_char(buf + ks, ke - ks)) return CD_BAD_INVALID_JSON;
                i += 2;
                uint16_t cont = 0;
                if (mask) {
                    size_t klen = ke - ks;
                    uint32_t sl =
                        d->seg_len_mask[sp][klen < CD_SEG_LEN_BUCKETS ? klen : CD_SEG_LEN_BUCKETS - 1];
                    if (sl & mask) {
                        uint64_t h, tw;
                        if (ke >= 8)
                            cd_key_image(buf + ks, klen, &h, &tw);
                        else
                            cd_key_image_safe(buf + ks, klen, &h, &tw);
                        const cd_segkey_t *e = &d->segkeys[sl >> 16 & 0xFF];
                        const cd_segkey_t *end = e + (sl >> 24);
                        uint16_t fin = 0;
                        do {
                            if (e->len == klen &&
                                cd_words_eq(buf + ks, h, tw, e->s, e->head, e->tail, klen)) {
                                fin |= e->final;
                                cont |= e->cont;
                            }
                        } while (++e < end);
                        fin &= mask;
                        cont &= mask;
                        while (fin) {
                            found[__builtin_ctz(fin)] = i - 1;
                            fin &= (uint16_t)(fin - 1);
                        }
                    }
                }
                if (t->type == JSMN_STRING || t->type == JSMN_PRIMITIVE) {
                    if (!scalar_ok(buf, t, has_ctl, &p)) return CD_BAD_INVALID_JSON;
                } else {
                    /* Descend. sp < n <= CD_DECODE_MAX_TOKENS: each frame
                     * holds a token. */
                    CD_ASSERT(sp + 1 < CD_DECODE_MAX_TOKENS);
                    st[sp++] = (frame_t){.tok = ctok, .left = left, .mask = mask, .is_obj = true};
                    is_obj = t->type == JSMN_OBJECT;
                    ctok = i - 1;
                    left = t->size;
                    mask = is_obj ? cont : 0;
                    p = (size_t)t->start + 1;
                    goto next_container;
                }
                /* A finished value: a ',' must follow unless it was the last. */
                if (left && !next_comma(buf, len, &p)) return CD_BAD_INVALID_JSON;
            }
        } else {
            while (left) {
                left--;
                if (i >= n) return CD_BAD_INVALID_JSON;
                t = &tok[i++];
                size_t vb = tok_begin(t);
                if (vb != p && !gap_ok(buf, p, vb, 0)) return CD_BAD_INVALID_JSON;
                if (t->type == JSMN_STRING || t->type == JSMN_PRIMITIVE) {
                    if (!scalar_ok(buf, t, has_ctl, &p)) return CD_BAD_INVALID_JSON;
                } else {
                    CD_ASSERT(sp + 1 < CD_DECODE_MAX_TOKENS);
                    st[sp++] = (frame_t){.tok = ctok, .left = left, .mask = 0, .is_obj = false};
                    is_obj = t->type == JSMN_OBJECT;
                    ctok = i - 1;
                    left = t->size;
                    mask = 0;
                    p = (size_t)t->start + 1;
                    goto next_container;
                }
                if (left && !next_comma(buf, len, &p)) return CD_BAD_INVALID_JSON;
            }
        }
        /* Close the container: only whitespace before its bracket. Then the
         * one around it resumes after its finished element. */
        for (;;) {
            size_t close = (size_t)tok[ctok].end - 1;
            if (!gap(buf, p, close, 0)) return CD_BAD_INVALID_JSON;
            p = close + 1;
            if (sp == 0) goto done;
            sp--;
            ctok = st[sp].tok;
            left = st[sp].left;
            mask = st[sp].mask;
            is_obj = st[sp].is_obj;
            if (left) {
                if (!next_comma(buf, len, &p)) return CD_BAD_INVALID_JSON;
                break;
            }
        }
    next_container:;
    }
done:
    /* Every token belongs to the first value, and only whitespace follows. */
    if (i != n || !gap(buf, p, len, 0)) return CD_BAD_INVALID_JSON;
    return not_object ? CD_BAD_NOT_OBJECT : CD_BAD_NONE;
}

/* ---- stage 4: interpretation ------------------------------------------- */

static inline bool str_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && bytes_eq(a, b, alen);
}

/* 9999-12-31T23:59:59.999Z: the last instant RFC 3339 can write, so every
 * accepted time can be rendered back into the verdict log. */
#define CD_EPOCH_MS_MAX INT64_C(253402300799999)

/*
 * RFC 3339 timestamps through a one-entry, per-thread cache of the minute.
 * Producers write "YYYY-MM-DDTHH:MM:SS.mmmZ" and consecutive events share
 * the minute, so the 17-byte prefix "YYYY-MM-DDTHH:MM:" is looked up in a
 * thread-local slot holding cd_time_parse_rfc3339(prefix + "00Z"); a hit
 * leaves only "SS.mmmZ" or "SSZ" to read (SS <= 59). That is exact: for
 * those tails the parser's result is the minute's plus SS * 1000 + mmm.
 * Anything else (offsets, other fraction lengths, leap seconds, a prefix the
 * parser rejects) goes to cd_time_parse_rfc3339 itself. The slot is this
 * thread's own, so the decoder stays shareable; it caches a pure function,
 * so it can never change an answer, only its cost.
 */
#define TS_PREFIX 17

static _Thread_local struct {
    char prefix[TS_PREFIX];
    int64_t minute_ms;
    bool valid;
} ts_cache;

static inline bool two_digits(const char *s, int *out)
{
    if (!is_digit(s[0]) || !is_digit(s[1])) return false;
    *out = (s[0] - '0') * 10 + (s[1] - '0');
    return true;
}

/* The TS_PREFIX (17) bytes at a and b are equal: three word loads, where
 * memcmp would be a library call. */
static inline bool prefix_eq(const char *a, const char *b)
{
    uint64_t a0, a1, a2, b0, b1, b2;
    memcpy(&a0, a, 8);
    memcpy(&b0, b, 8);
    memcpy(&a1, a + 8, 8);
    memcpy(&b1, b + 8, 8);
    memcpy(&a2, a + TS_PREFIX - 8, 8);
    memcpy(&b2, b + TS_PREFIX - 8, 8);
    return !((a0 ^ b0) | (a1 ^ b1) | (a2 ^ b2));
}

static bool parse_time(const char *s, size_t n, int64_t *ms)
{
    int sec, frac = 0;
    if ((n != TS_PREFIX + 3 && n != TS_PREFIX + 7) || (s[n - 1] != 'Z' && s[n - 1] != 'z') ||
        !two_digits(s + TS_PREFIX, &sec) || sec > 59)
        return cd_time_parse_rfc3339(s, n, ms);
    if (n == TS_PREFIX + 7) {
        const char *f = s + TS_PREFIX + 2;
        if (f[0] != '.' || !is_digit(f[1]) || !is_digit(f[2]) || !is_digit(f[3]))
            return cd_time_parse_rfc3339(s, n, ms);
        frac = (f[1] - '0') * 100 + (f[2] - '0') * 10 + (f[3] - '0');
    }
    if (!ts_cache.valid || !prefix_eq(ts_cache.prefix, s)) {
        char minute[TS_PREFIX + 3];
        memcpy(minute, s, TS_PREFIX);
        memcpy(minute + TS_PREFIX, "00Z", 3);
        int64_t m;
        if (!cd_time_parse_rfc3339(minute, sizeof minute, &m)) return false;
        memcpy(ts_cache.prefix, s, TS_PREFIX);
        ts_cache.minute_ms = m;
        ts_cache.valid = true;
    }
    *ms = ts_cache.minute_ms + sec * 1000 + frac;
    return true;
}

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

    /* The service first: on a shared topic (conf.service set) another
     * service's event is answered before its type, time or cohort is read,
     * so a schema of its own is never counted as bad input, and it costs
     * the least. A length compare settles nearly every other service; equal
     * lengths cost one or two word compares. Informational otherwise: a
     * non-string leaves it empty. */
    if (found[CD_PATH_SERVICE] >= 0 && tok[found[CD_PATH_SERVICE]].type == JSMN_STRING) {
        t = &tok[found[CD_PATH_SERVICE]];
        ev->service = buf + t->start;
        ev->service_len = (size_t)(t->end - t->start);
    }
    if (d->service_len && !str_eq(ev->service, ev->service_len, d->service, d->service_len))
        return CD_DECODE_OTHER_SERVICE;

    if (found[CD_PATH_TYPE] < 0) return CD_BAD_MISSING_TYPE;
    t = &tok[found[CD_PATH_TYPE]];
    if (t->type != JSMN_STRING) return CD_BAD_WRONG_TYPE;
    ev->type_str = buf + t->start;
    ev->type_len = (size_t)(t->end - t->start);
    ev->type = CD_TYPE_OTHER;
    uint64_t h, tl;
    if (t->end >= 8)
        cd_key_image(ev->type_str, ev->type_len, &h, &tl);
    else
        cd_key_image_safe(ev->type_str, ev->type_len, &h, &tl);
    for (int i = 0; i < d->ntypes; i++) {
        if (d->type_len[i] == ev->type_len &&
            cd_words_eq(ev->type_str, h, tl, d->types[i], d->type_head[i], d->type_tail[i],
                        ev->type_len)) {
            ev->type = i;
            break;
        }
    }

    if (found[CD_PATH_TIME] < 0) return CD_BAD_MISSING_TIMESTAMP;
    t = &tok[found[CD_PATH_TIME]];
    if (t->type == JSMN_STRING) {
        if (!parse_time(buf + t->start, (size_t)(t->end - t->start), &ev->ts_ms))
            return CD_BAD_BAD_TIMESTAMP;
    } else if (t->type != JSMN_PRIMITIVE ||
               !epoch_ms(buf + t->start, (size_t)(t->end - t->start), &ev->ts_ms)) {
        return CD_BAD_BAD_TIMESTAMP;
    }

    /* the version is informational: a non-string leaves it empty. */
    if (found[CD_PATH_VERSION] >= 0 && tok[found[CD_PATH_VERSION]].type == JSMN_STRING) {
        t = &tok[found[CD_PATH_VERSION]];
        ev->version = buf + t->start;
        ev->version_len = (size_t)(t->end - t->start);
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
    memset(found, 0xff, sizeof found); /* every entry -1: absent */
    if ((r = walk(d, buf, len, tok, n, has_ctl, found)) != CD_BAD_NONE) return r;
    return interpret(d, buf, tok, found, ev);
}
