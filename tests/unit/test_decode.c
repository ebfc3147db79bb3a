/*
 * test_decode.c - the event decoder: one test per rejection reason with a
 * minimal input, field extraction, and hostile inputs (deep nesting, huge
 * events, every truncation of a good line, bad UTF-8, NULs).
 *
 * Every payload is copied into a heap block of exactly its length, so under
 * ASan any read past len is a crash, not a silent pass.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "canaryd/event.h"
#include "canaryd/timeutil.h"

static const char *SOP_TYPES[] = {"REQUEST_COMPLETED", "ERROR_OCCURRED",    "USER_LOGIN",
                                  "USER_LOGIN_FAILED", "PAYMENT_COMPLETED", "PAYMENT_FAILED",
                                  "AUDIT_LOG_FAILED"};

#define GOOD                                                                                       \
    "{\"event_type\":\"ERROR_OCCURRED\",\"timestamp\":\"2026-11-27T12:00:03.250Z\","               \
    "\"cohort\":\"canary\",\"version\":\"2.4.1\",\"service\":\"checkout\","                        \
    "\"data\":{\"latency_ms\":12.5,\"path\":\"/pay\"}}"
#define T0 INT64_C(1795780803250)

static cd_decoder_t *dec;

static cd_decoder_t *make(void (*tweak)(cd_decode_conf_t *))
{
    cd_decode_conf_t c;
    cd_decode_conf_init(&c);
    for (int i = 0; i < 7; i++)
        c.types[i] = SOP_TYPES[i];
    c.ntypes = 7;
    c.numeric_paths[0] = "data.latency_ms";
    c.nnumeric = 1;
    if (tweak) tweak(&c);
    char err[256] = "";
    cd_decoder_t *d = cd_decoder_new(&c, err, sizeof err);
    cr_assert_not_null(d, "cd_decoder_new: %s", err);
    return d;
}

static void setup(void)
{
    dec = make(NULL);
}

static void teardown(void)
{
    cd_decoder_destroy(dec);
}

/* Decodes len bytes from an exact-size heap copy. */
static cd_bad_reason_t decode_n(const cd_decoder_t *d, const char *s, size_t len, cd_event_t *ev)
{
    char *copy = malloc(len ? len : 1);
    cr_assert_not_null(copy);
    memcpy(copy, s, len);
    cd_bad_reason_t r = cd_decode(d, copy, len, ev);
    /* Borrowed pointers must point into the input: rebase them onto s. */
    if (r == CD_BAD_NONE) {
        if (ev->type_str) ev->type_str = s + (ev->type_str - copy);
        if (ev->version) ev->version = s + (ev->version - copy);
        if (ev->service) ev->service = s + (ev->service - copy);
    } else if (r == CD_DECODE_OTHER_SERVICE && ev->service) {
        ev->service = s + (ev->service - copy);
    }
    free(copy);
    return r;
}

static cd_bad_reason_t decode_on(const cd_decoder_t *d, const char *s, cd_event_t *ev)
{
    return decode_n(d, s, strlen(s), ev);
}

static cd_bad_reason_t decode(const char *s)
{
    cd_event_t ev;
    return decode_on(dec, s, &ev);
}

#define assert_reason(s, want)                                                                     \
    do {                                                                                           \
        cd_bad_reason_t got_ = decode(s);                                                          \
        cr_assert_eq(got_, want, "%s: got %s, want %s", s, cd_bad_reason_name(got_),               \
                     cd_bad_reason_name(want));                                                    \
    } while (0)

static bool span_eq(const char *p, size_t n, const char *want)
{
    return p && n == strlen(want) && !memcmp(p, want, n);
}

TestSuite(decode, .init = setup, .fini = teardown);

Test(decode, good_event_all_fields)
{
    cd_event_t ev;
    cr_assert_eq(decode_on(dec, GOOD, &ev), CD_BAD_NONE);
    cr_assert_eq(ev.type, 1);
    cr_assert(span_eq(ev.type_str, ev.type_len, "ERROR_OCCURRED"));
    cr_assert_eq(ev.ts_ms, T0);
    cr_assert_eq(ev.cohort, CD_COHORT_CANARY);
    cr_assert(span_eq(ev.version, ev.version_len, "2.4.1"));
    cr_assert(span_eq(ev.service, ev.service_len, "checkout"));
    cr_assert_eq(ev.num_mask, 1u);
    cr_assert_eq(ev.bad_num_mask, 0u);
    cr_assert_eq(ev.num[0], 12.5);
}

static void tweak_service(cd_decode_conf_t *c)
{
    c->service = "checkout";
}

/* events.service: only the named service's events are decoded; another
 * service's (or one naming none) is answered before its type, time and
 * cohort are read, so its own schema is never bad input. */
Test(decode, service_filter)
{
    cd_decoder_t *d = make(tweak_service);
    cd_event_t ev;
    cr_assert_eq(decode_on(d, GOOD, &ev), CD_BAD_NONE);
    cr_assert_eq(ev.ts_ms, T0);
    cr_assert_eq(ev.service_len, 8);
    cr_assert_eq(memcmp(ev.service, "checkout", 8), 0);
    cr_assert_eq(ev.type, 1);

#define SVC(name, rest) "{\"event_type\":\"ERROR_OCCURRED\",\"service\":" name rest "}"
    /* another name: same length, a prefix, longer, case */
    static const char *const others[] = {"\"checkouT\"", "\"check\"", "\"checkout2\"",
                                         "\"CHECKOUT\"", "\"\""};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        char line[256];
        snprintf(line, sizeof line, SVC("%s", ",\"timestamp\":1,\"cohort\":\"canary\""), others[i]);
        cr_assert_eq(decode_on(d, line, &ev), CD_DECODE_OTHER_SERVICE, "%s", line);
        size_t n = strlen(others[i]) - 2;
        cr_assert_eq(ev.service_len, n, "%s", line);
        cr_assert_eq(memcmp(ev.service, others[i] + 1, n), 0);
    }
    /* another service's own schema is not ours to judge: no type, a bad
     * time, a cohort we do not know are all just "another service" */
    cr_assert_eq(decode_on(d, "{\"service\":\"search\",\"ts\":5}", &ev), CD_DECODE_OTHER_SERVICE);
    cr_assert_eq(
        decode_on(d, SVC("\"search\"", ",\"timestamp\":\"soon\",\"cohort\":\"blue\""), &ev),
        CD_DECODE_OTHER_SERVICE);
    /* no service field, or not a string: another service too (len 0) */
    cr_assert_eq(decode_on(d, "{\"event_type\":\"X\",\"timestamp\":1,\"cohort\":\"canary\"}", &ev),
                 CD_DECODE_OTHER_SERVICE);
    cr_assert_eq(ev.service_len, 0);
    cr_assert_eq(decode_on(d, SVC("7", ",\"timestamp\":1,\"cohort\":\"canary\""), &ev),
                 CD_DECODE_OTHER_SERVICE);
    cr_assert_eq(ev.service_len, 0);
    /* our service keeps every check: bad input is bad input */
    cr_assert_eq(
        decode_on(d, SVC("\"checkout\"", ",\"timestamp\":\"soon\",\"cohort\":\"canary\""), &ev),
        CD_BAD_BAD_TIMESTAMP);
    cr_assert_eq(decode_on(d, SVC("\"checkout\"", ",\"timestamp\":1,\"cohort\":\"blue\""), &ev),
                 CD_BAD_UNKNOWN_COHORT);
    /* JSON that does not parse has no service to read: bad input */
    cr_assert_eq(decode_on(d, "{\"service\":\"search\",", &ev), CD_BAD_TRUNCATED_JSON);
    /* nested service path */
    cd_decoder_destroy(d);
#undef SVC
    cr_assert_str_eq(cd_bad_reason_name(CD_DECODE_OTHER_SERVICE), "other_service");

    /* without a filter (the default decoder) every service is decoded */
    cr_assert_eq(decode_on(dec,
                           "{\"event_type\":\"X\",\"timestamp\":1,\"cohort\":\"canary\","
                           "\"service\":\"search\"}",
                           &ev),
                 CD_BAD_NONE);
}

static void tweak_nested_service(cd_decode_conf_t *c)
{
    c->service_path = "meta.svc";
    c->service = "pay";
}

Test(decode, service_filter_on_a_nested_path)
{
    cd_decoder_t *d = make(tweak_nested_service);
    cd_event_t ev;
    const char *ok = "{\"event_type\":\"X\",\"timestamp\":1,\"cohort\":\"stable\","
                     "\"service\":\"search\",\"meta\":{\"svc\":\"pay\"}}";
    cr_assert_eq(decode_on(d, ok, &ev), CD_BAD_NONE);
    cr_assert_eq(ev.cohort, CD_COHORT_STABLE);
    const char *other = "{\"event_type\":\"X\",\"timestamp\":1,\"cohort\":\"stable\","
                        "\"service\":\"pay\",\"meta\":{\"svc\":\"pax\"}}";
    cr_assert_eq(decode_on(d, other, &ev), CD_DECODE_OTHER_SERVICE);
    cd_decoder_destroy(d);
}

Test(decode, reason_names)
{
    const char *want[] = {"none",           "line_too_long", "nul_byte",          "invalid_utf8",
                          "truncated_json", "invalid_json",  "too_complex",       "not_object",
                          "missing_type",   "wrong_type",    "missing_timestamp", "bad_timestamp",
                          "missing_cohort", "unknown_cohort"};
    cr_assert_eq(sizeof want / sizeof want[0], (size_t)CD_BAD__COUNT);
    for (int i = 0; i < CD_BAD__COUNT; i++)
        cr_assert_str_eq(cd_bad_reason_name((cd_bad_reason_t)i), want[i]);
}

/* ---- one minimal input per reason ---- */

Test(decode, reason_nul_byte)
{
    cd_event_t ev;
    cr_assert_eq(decode_n(dec, "{\"a\":\0}", 7, &ev), CD_BAD_NUL_BYTE);
}

Test(decode, reason_invalid_utf8)
{
    assert_reason("{\"a\":\"\xff\"}", CD_BAD_INVALID_UTF8);
}

Test(decode, reason_truncated_json)
{
    assert_reason("{\"a\":", CD_BAD_TRUNCATED_JSON);
    assert_reason("", CD_BAD_TRUNCATED_JSON);
    assert_reason("  ", CD_BAD_TRUNCATED_JSON);
}

Test(decode, reason_invalid_json)
{
    assert_reason("{a}", CD_BAD_INVALID_JSON);
}

Test(decode, reason_too_complex)
{
    assert_reason("[0,0,0,0,0,0,0,0,0,0]", CD_BAD_NOT_OBJECT);
    char big[4096] = "[";
    for (int i = 0; i < 300; i++)
        strcat(big, "0,");
    strcat(big, "0]");
    assert_reason(big, CD_BAD_TOO_COMPLEX); /* 302 tokens > default 256 */
}

Test(decode, reason_not_object)
{
    assert_reason("[]", CD_BAD_NOT_OBJECT);
    assert_reason("\"x\"", CD_BAD_NOT_OBJECT);
    assert_reason("12", CD_BAD_NOT_OBJECT);
    assert_reason(" true ", CD_BAD_NOT_OBJECT);
    assert_reason("null", CD_BAD_NOT_OBJECT);
}

Test(decode, reason_missing_type)
{
    assert_reason("{\"timestamp\":1,\"cohort\":\"canary\"}", CD_BAD_MISSING_TYPE);
}

Test(decode, reason_wrong_type)
{
    assert_reason("{\"event_type\":7,\"timestamp\":1,\"cohort\":\"canary\"}", CD_BAD_WRONG_TYPE);
    assert_reason("{\"event_type\":\"X\",\"timestamp\":1,\"cohort\":1}", CD_BAD_WRONG_TYPE);
}

Test(decode, reason_missing_timestamp)
{
    assert_reason("{\"event_type\":\"X\",\"cohort\":\"canary\"}", CD_BAD_MISSING_TIMESTAMP);
}

Test(decode, reason_bad_timestamp)
{
    assert_reason("{\"event_type\":\"X\",\"timestamp\":\"yesterday\",\"cohort\":\"canary\"}",
                  CD_BAD_BAD_TIMESTAMP);
}

Test(decode, reason_missing_cohort)
{
    assert_reason("{\"event_type\":\"X\",\"timestamp\":1}", CD_BAD_MISSING_COHORT);
}

Test(decode, reason_unknown_cohort)
{
    assert_reason("{\"event_type\":\"X\",\"timestamp\":1,\"cohort\":\"blue\"}",
                  CD_BAD_UNKNOWN_COHORT);
    /* escapes are not decoded: "\u0063anary" is not "canary" */
    assert_reason("{\"event_type\":\"X\",\"timestamp\":1,\"cohort\":\"\\u0063anary\"}",
                  CD_BAD_UNKNOWN_COHORT);
}

Test(decode, checks_follow_enum_order)
{
    /* NUL wins over bad UTF-8 even when the bad byte comes first. */
    cd_event_t ev;
    cr_assert_eq(decode_n(dec, "{\"\xff\":1,\"a\":\0}", 13, &ev), CD_BAD_NUL_BYTE);
    /* bad UTF-8 wins over bad JSON */
    assert_reason("{\xc3\x28", CD_BAD_INVALID_UTF8);
    /* a bad array is invalid_json rather than not_object */
    assert_reason("[1,,2]", CD_BAD_INVALID_JSON);
    /* type is checked before the timestamp, the timestamp before the cohort */
    assert_reason("{\"timestamp\":\"bad\",\"cohort\":\"blue\"}", CD_BAD_MISSING_TYPE);
    assert_reason("{\"event_type\":\"X\",\"timestamp\":\"bad\",\"cohort\":\"blue\"}",
                  CD_BAD_BAD_TIMESTAMP);
}

/* ---- hostile input ---- */

Test(decode, nesting_5000_deep_is_too_complex)
{
    size_t n = 5000;
    char *s = malloc(2 * n + 1);
    memset(s, '[', n);
    memset(s + n, ']', n);
    s[2 * n] = '\0';
    assert_reason(s, CD_BAD_TOO_COMPLEX);
    /* objects nested under a real event, same answer */
    char *o = malloc(6 * n + 64);
    size_t k = (size_t)sprintf(o, "{\"event_type\":\"X\",\"d\":");
    for (size_t i = 0; i < n; i++)
        k += (size_t)sprintf(o + k, "{\"a\":");
    k += (size_t)sprintf(o + k, "1");
    memset(o + k, '}', n + 1);
    o[k + n + 1] = '\0';
    assert_reason(o, CD_BAD_TOO_COMPLEX);
    free(s);
    free(o);
}

Test(decode, event_of_100kb_decodes)
{
    size_t pad = 100 * 1024;
    char *s = malloc(pad + 256);
    int k = sprintf(s, "{\"event_type\":\"USER_LOGIN\",\"note\":\"");
    memset(s + k, 'x', pad);
    sprintf(s + k + pad, "\",\"timestamp\":1700000000000,\"cohort\":\"stable\"}");
    cd_event_t ev;
    cr_assert_eq(decode_on(dec, s, &ev), CD_BAD_NONE);
    cr_assert_eq(ev.type, 2);
    cr_assert_eq(ev.ts_ms, INT64_C(1700000000000));
    cr_assert_eq(ev.cohort, CD_COHORT_STABLE);
    free(s);
}

Test(decode, every_truncation_is_rejected)
{
    const char *good = GOOD;
    size_t len = strlen(good);
    int truncated = 0, invalid = 0;
    for (size_t n = 0; n < len; n++) {
        cd_event_t ev;
        cd_bad_reason_t r = decode_n(dec, good, n, &ev);
        cr_assert(r == CD_BAD_TRUNCATED_JSON || r == CD_BAD_INVALID_JSON, "len %zu: %s", n,
                  cd_bad_reason_name(r));
        truncated += r == CD_BAD_TRUNCATED_JSON;
        invalid += r == CD_BAD_INVALID_JSON;
    }
    /* Cutting inside an unfinished object always reads as "ends early". */
    cr_assert_eq(truncated, (int)len);
    cr_assert_eq(invalid, 0);
    cd_event_t ev;
    cr_assert_eq(decode_n(dec, good, len, &ev), CD_BAD_NONE);
}

Test(decode, nul_in_the_middle)
{
    char s[] = GOOD;
    size_t len = strlen(s);
    s[len / 2] = '\0';
    cd_event_t ev;
    cr_assert_eq(decode_n(dec, s, len, &ev), CD_BAD_NUL_BYTE);
    s[len / 2] = 'x';
    s[len - 1] = '\0';
    cr_assert_eq(decode_n(dec, s, len, &ev), CD_BAD_NUL_BYTE); /* last byte, off the fast path */
}

Test(decode, utf8_variants)
{
    const char *bad[] = {
        "\xc0\x80",         /* overlong NUL */
        "\xc1\xbf",         /* overlong */
        "\xe0\x80\x80",     /* overlong 3-byte */
        "\xe0\x9f\xbf",     /* overlong 3-byte, top */
        "\xf0\x80\x80\x80", /* overlong 4-byte */
        "\xf0\x8f\xbf\xbf", /* overlong 4-byte, top */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xed\xbf\xbf",     /* surrogate U+DFFF */
        "\xf4\x90\x80\x80", /* U+110000 */
        "\xf5\x80\x80\x80", /* lead byte F5 */
        "\xff",
        "\x80",         /* lone continuation */
        "\xe2\x82",     /* truncated euro sign */
        "\xe2\x28\xa1", /* bad continuation */
        "\xf0\x9d\x84", /* truncated 4-byte */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char s[128];
        /* In a string value after 16 ASCII bytes (fast path first) ... */
        snprintf(s, sizeof s, "{\"event_type\":\"%s\"}", bad[i]);
        assert_reason(s, CD_BAD_INVALID_UTF8);
        /* ... and as the very last bytes of the input (truncated sequence). */
        snprintf(s, sizeof s, "{\"a\":1}%s", bad[i]);
        assert_reason(s, CD_BAD_INVALID_UTF8);
    }
    const char *good[] = {"\xc3\xa9",     "\xe2\x82\xac",     "\xf0\x9d\x84\x9e",
                          "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char s[160];
        snprintf(s, sizeof s,
                 "{\"event_type\":\"X\",\"note\":\"%s\",\"timestamp\":1,\"cohort\":\"canary\"}",
                 good[i]);
        assert_reason(s, CD_BAD_NONE);
    }
}

Test(decode, strict_grammar)
{
    const char *bad[] = {
        "{\"a\":1 \"b\":2}",   /* missing comma */
        "{\"a\":1,}",          /* trailing comma */
        "{,\"a\":1}",          /* leading comma */
        "{\"a\" 1}",           /* missing colon */
        "{\"a\":1:2}",         /* extra colon */
        "{\"a\":\"b\":\"c\"}", /* string as key of a string */
        "{\"a\"}",             /* key without value */
        "{\"a\":tru}",         /* bad literal */
        "{\"a\":nulls}",       /* bad literal */
        "{\"a\":1.2.3}",       /* bad number */
        "{\"a\":01}",          /* leading zero */
        "{\"a\":-}",           /* lone minus */
        "{\"a\":1.}",          /* no fraction digits */
        "{\"a\":1e}",          /* no exponent digits */
        "{\"a\":[1,,2]}",      /* empty array element */
        "{\"a\":[1,]}",        /* trailing comma in array */
        "{\"a\":\"x\ty\"}",    /* raw tab in a string */
        "{\"a\\x\":1}",        /* bad escape */
        "{\"a\":1}}",          /* unmatched close */
        "{\"a\":1}x",          /* trailing garbage */
        "{\"a\":1} {\"b\":2}", /* two top-level values */
        "{\"a\":1}5",          /* trailing number */
        "{\"a\":[}",           /* mismatched brackets */
        "{1:2}",               /* non-string key */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_reason(bad[i], CD_BAD_INVALID_JSON);
    /* whitespace of all four kinds is fine between tokens and around the value */
    assert_reason(" \t\r\n{ \"event_type\" :\t\"X\" ,\n\"timestamp\":1 , \"cohort\" : \"canary\" ,"
                  "\"n\":[ 1 , -0.5e+3 , true , null , { } , [ ] ] }\r\n",
                  CD_BAD_NONE);
}

/* ---- fields ---- */

static void tweak_nested(cd_decode_conf_t *c)
{
    c->type_path = "meta.track";
    c->numeric_paths[1] = "data.timing.total_ms";
    c->nnumeric = 2;
}

Test(decode, nested_paths_skip_decoys)
{
    cd_decoder_t *d = make(tweak_nested);
    const char *s =
        "{\"x\":{\"meta\":{\"track\":\"USER_LOGIN\"}},"
        "\"meta\":{\"a\":[1,{\"track\":\"PAYMENT_FAILED\"},[[\"track\"]]],\"b\":{\"track\":2},"
        "\"track\":\"ERROR_OCCURRED\",\"z\":{}},"
        "\"timestamp\":1,\"cohort\":\"stable\","
        "\"data\":{\"timing\":{\"dns\":{\"total_ms\":9},\"total_ms\":42},\"latency_ms\":3},"
        "\"latency_ms\":99}";
    cd_event_t ev;
    cr_assert_eq(decode_on(d, s, &ev), CD_BAD_NONE);
    cr_assert_eq(ev.type, 1);
    cr_assert_eq(ev.num_mask, 3u);
    cr_assert_eq(ev.num[0], 3.0);
    cr_assert_eq(ev.num[1], 42.0);
    /* a path through a non-object is simply absent */
    cr_assert_eq(
        decode_on(d, "{\"meta\":\"ERROR_OCCURRED\",\"timestamp\":1,\"cohort\":\"stable\"}", &ev),
        CD_BAD_MISSING_TYPE);
    cr_assert_eq(decode_on(d,
                           "{\"meta\":{\"track\":\"USER_LOGIN\"},\"timestamp\":1,"
                           "\"cohort\":\"stable\",\"data\":[{\"latency_ms\":5}]}",
                           &ev),
                 CD_BAD_NONE);
    cr_assert_eq(ev.num_mask, 0u);
    cr_assert_eq(ev.bad_num_mask, 0u);
    cd_decoder_destroy(d);
}

Test(decode, duplicate_key_last_wins)
{
    cd_event_t ev;
    cr_assert_eq(decode_on(dec,
                           "{\"event_type\":\"USER_LOGIN\",\"timestamp\":1,\"cohort\":\"canary\","
                           "\"event_type\":\"PAYMENT_FAILED\"}",
                           &ev),
                 CD_BAD_NONE);
    cr_assert_eq(ev.type, 5);
}

static void tweak_version(cd_decode_conf_t *c)
{
    c->cohort_path = NULL;
    c->canary_version = "2.5.0";
}

static void tweak_version_with_cohort(cd_decode_conf_t *c)
{
    c->canary_version = "2.5.0";
}

Test(decode, cohort_from_version)
{
    cd_decoder_t *d = make(tweak_version);
    cd_event_t ev;
    cr_assert_eq(decode_on(d, "{\"event_type\":\"X\",\"timestamp\":1,\"version\":\"2.5.0\"}", &ev),
                 CD_BAD_NONE);
    cr_assert_eq(ev.cohort, CD_COHORT_CANARY);
    cr_assert_eq(decode_on(d, "{\"event_type\":\"X\",\"timestamp\":1,\"version\":\"2.4.9\"}", &ev),
                 CD_BAD_NONE);
    cr_assert_eq(ev.cohort, CD_COHORT_STABLE);
    /* prefix is not equality */
    cr_assert_eq(decode_on(d, "{\"event_type\":\"X\",\"timestamp\":1,\"version\":\"2.5.01\"}", &ev),
                 CD_BAD_NONE);
    cr_assert_eq(ev.cohort, CD_COHORT_STABLE);
    /* with no cohort path, a cohort field is ignored */
    cr_assert_eq(decode_on(d,
                           "{\"event_type\":\"X\",\"timestamp\":1,\"cohort\":\"canary\","
                           "\"version\":\"1.0\"}",
                           &ev),
                 CD_BAD_NONE);
    cr_assert_eq(ev.cohort, CD_COHORT_STABLE);
    cr_assert_eq(decode_on(d, "{\"event_type\":\"X\",\"timestamp\":1}", &ev),
                 CD_BAD_MISSING_COHORT);
    cr_assert_eq(decode_on(d, "{\"event_type\":\"X\",\"timestamp\":1,\"version\":25}", &ev),
                 CD_BAD_MISSING_COHORT);
    cd_decoder_destroy(d);

    /* cohort path set: the field wins when present, the version otherwise */
    d = make(tweak_version_with_cohort);
    cr_assert_eq(decode_on(d,
                           "{\"event_type\":\"X\",\"timestamp\":1,\"cohort\":\"stable\","
                           "\"version\":\"2.5.0\"}",
                           &ev),
                 CD_BAD_NONE);
    cr_assert_eq(ev.cohort, CD_COHORT_STABLE);
    cr_assert_eq(decode_on(d, "{\"event_type\":\"X\",\"timestamp\":1,\"version\":\"2.5.0\"}", &ev),
                 CD_BAD_NONE);
    cr_assert_eq(ev.cohort, CD_COHORT_CANARY);
    cd_decoder_destroy(d);
}

Test(decode, unknown_type_is_other_with_name)
{
    cd_event_t ev;
    cr_assert_eq(decode_on(dec,
                           "{\"event_type\":\"CART_ABANDONED\",\"timestamp\":1,"
                           "\"cohort\":\"stable\"}",
                           &ev),
                 CD_BAD_NONE);
    cr_assert_eq(ev.type, CD_TYPE_OTHER);
    cr_assert(span_eq(ev.type_str, ev.type_len, "CART_ABANDONED"));
    /* exact match only: case and prefixes differ */
    cr_assert_eq(decode_on(dec,
                           "{\"event_type\":\"user_login\",\"timestamp\":1,\"cohort\":\"stable\"}",
                           &ev),
                 CD_BAD_NONE);
    cr_assert_eq(ev.type, CD_TYPE_OTHER);
    cr_assert_eq(decode_on(dec,
                           "{\"event_type\":\"USER_LOGIN_\",\"timestamp\":1,\"cohort\":\"stable\"}",
                           &ev),
                 CD_BAD_NONE);
    cr_assert_eq(ev.type, CD_TYPE_OTHER);
    cr_assert_eq(cd_decoder_type_id(dec, "USER_LOGIN_FAILED"), 3);
    cr_assert_eq(cd_decoder_type_id(dec, "USER_LOGIN_"), CD_TYPE_OTHER);
}

Test(decode, numeric_field_variants)
{
    struct {
        const char *v;
        uint32_t mask, bad;
        double num;
    } c[] = {
        {"12.5", 1, 0, 12.5}, {"0", 1, 0, 0.0},    {"-3e2", 1, 0, -300.0}, {"\"12.5\"", 0, 1, 0},
        {"null", 0, 1, 0},    {"true", 0, 1, 0},   {"{\"v\":1}", 0, 1, 0}, {"[1]", 0, 1, 0},
        {"1e999", 0, 1, 0},   {"-1e999", 0, 1, 0},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char s[160];
        snprintf(s, sizeof s,
                 "{\"event_type\":\"X\",\"timestamp\":1,\"cohort\":\"canary\","
                 "\"data\":{\"latency_ms\":%s}}",
                 c[i].v);
        cd_event_t ev;
        cr_assert_eq(decode_on(dec, s, &ev), CD_BAD_NONE, "%s", s);
        cr_assert_eq(ev.num_mask, c[i].mask, "%s", s);
        cr_assert_eq(ev.bad_num_mask, c[i].bad, "%s", s);
        if (c[i].mask) cr_assert_eq(ev.num[0], c[i].num, "%s", s);
    }
    cd_event_t ev;
    cr_assert_eq(
        decode_on(dec, "{\"event_type\":\"X\",\"timestamp\":1,\"cohort\":\"canary\"}", &ev),
        CD_BAD_NONE);
    cr_assert_eq(ev.num_mask, 0u);
    cr_assert_eq(ev.bad_num_mask, 0u);
}

Test(decode, numbers_match_strtod_bit_for_bit)
{
    /* The decoder parses short decimals itself (Clinger's fast path) and
     * falls back to strtod otherwise: both must give strtod's double. */
    uint64_t x = 0x243F6A8885A308D3u;
    for (int i = 0; i < 5000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        char num[40];
        int ndig = 1 + (int)(x % 18), point = (int)((x >> 8) % (uint64_t)(ndig + 1));
        int k = 0;
        if (x >> 63) num[k++] = '-';
        for (int j = 0; j < ndig; j++) {
            if (j == point && j > 0) num[k++] = '.';
            /* no leading zeros before the point (JSON grammar) */
            int dgt = (int)((x >> (j * 3 % 60)) % 10);
            if (j == 0 && point != 1 && dgt == 0) dgt = 7;
            num[k++] = (char)('0' + dgt);
        }
        if (i % 7 == 0) k += sprintf(num + k, "e%d", (int)(x % 40) - 20);
        num[k] = '\0';
        char s[160];
        snprintf(s, sizeof s,
                 "{\"event_type\":\"X\",\"timestamp\":1,\"cohort\":\"canary\","
                 "\"data\":{\"latency_ms\":%s}}",
                 num);
        cd_event_t ev;
        cr_assert_eq(decode_on(dec, s, &ev), CD_BAD_NONE, "%s", num);
        cr_assert_eq(ev.num_mask, 1u, "%s", num);
        double want = strtod(num, NULL);
        cr_assert(memcmp(&ev.num[0], &want, sizeof want) == 0, "%s: got %.17g want %.17g", num,
                  ev.num[0], want);
    }
}

Test(decode, epoch_ms_timestamps)
{
    struct {
        const char *v;
        cd_bad_reason_t r;
        int64_t ms;
    } c[] = {
        {"1795780803250", CD_BAD_NONE, T0},
        {"0", CD_BAD_NONE, 0},
        /* the last instant RFC 3339 can write back (9999-12-31T23:59:59.999Z) */
        {"253402300799999", CD_BAD_NONE, INT64_C(253402300799999)},
        {"253402300800000", CD_BAD_BAD_TIMESTAMP, 0},
        {"9223372036854775807", CD_BAD_BAD_TIMESTAMP, 0},
        {"9223372036854775808", CD_BAD_BAD_TIMESTAMP, 0},
        {"-5", CD_BAD_BAD_TIMESTAMP, 0},
        {"1795780803250.0", CD_BAD_BAD_TIMESTAMP, 0},
        {"1.7e12", CD_BAD_BAD_TIMESTAMP, 0},
        {"true", CD_BAD_BAD_TIMESTAMP, 0},
        {"null", CD_BAD_BAD_TIMESTAMP, 0},
        {"{}", CD_BAD_BAD_TIMESTAMP, 0},
        {"\"1795780803250\"", CD_BAD_BAD_TIMESTAMP, 0},
        {"\"2026-11-27T13:00:03.250+01:00\"", CD_BAD_NONE, T0},
        {"\"2026-11-27T06:30:03.250-05:30\"", CD_BAD_NONE, T0},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char s[160];
        snprintf(s, sizeof s, "{\"event_type\":\"X\",\"timestamp\":%s,\"cohort\":\"canary\"}",
                 c[i].v);
        cd_event_t ev;
        cr_assert_eq(decode_on(dec, s, &ev), c[i].r, "%s", s);
        if (c[i].r == CD_BAD_NONE) cr_assert_eq(ev.ts_ms, c[i].ms, "%s", s);
    }
}

Test(decode, version_and_service_not_strings_are_left_empty)
{
    cd_event_t ev;
    cr_assert_eq(decode_on(dec,
                           "{\"event_type\":\"X\",\"timestamp\":1,\"cohort\":\"canary\","
                           "\"version\":2,\"service\":{\"n\":\"a\"}}",
                           &ev),
                 CD_BAD_NONE);
    cr_assert_null(ev.version);
    cr_assert_eq(ev.version_len, 0);
    cr_assert_null(ev.service);
    cr_assert_eq(ev.service_len, 0);
}

static void tweak_tokens(cd_decode_conf_t *c)
{
    c->max_tokens = 8;
}

Test(decode, max_tokens_is_honoured)
{
    cd_decoder_t *d = make(tweak_tokens);
    cd_event_t ev;
    /* 7 tokens: fits */
    cr_assert_eq(decode_on(d, "{\"event_type\":\"X\",\"timestamp\":1,\"cohort\":\"canary\"}", &ev),
                 CD_BAD_NONE);
    /* 9 tokens: does not */
    cr_assert_eq(
        decode_on(d, "{\"event_type\":\"X\",\"timestamp\":1,\"cohort\":\"canary\",\"a\":1}", &ev),
        CD_BAD_TOO_COMPLEX);
    cd_decoder_destroy(d);
}

/* ---- cd_decoder_new validation ---- */

static void expect_conf_error(cd_decode_conf_t *c, const char *want)
{
    char err[256] = "";
    cd_decoder_t *d = cd_decoder_new(c, err, sizeof err);
    cr_assert_null(d);
    cr_assert_str_eq(err, want);
}

Test(decoder_new, rejects_bad_conf)
{
    cd_decode_conf_t c;
    cd_decode_conf_init(&c);
    c.service = "a-service-name-of-sixty-four-bytes-is-one-byte-too-long-for-it-x";
    expect_conf_error(&c, "decoder: service \"a-service-name-of-sixty-four-bytes-is-on...\" is 64 "
                          "bytes; at most 63 accepted");

    cd_decode_conf_init(&c);
    c.type_path = "";
    expect_conf_error(&c, "decoder: type_path is empty; expected a dot path such as \"data.x\"");

    cd_decode_conf_init(&c);
    c.time_path = "data..ts";
    expect_conf_error(&c, "decoder: time_path \"data..ts\" has an empty segment");

    cd_decode_conf_init(&c);
    c.numeric_paths[0] = "data.";
    c.nnumeric = 1;
    expect_conf_error(&c, "decoder: numeric_paths[0] \"data.\" has an empty segment");

    cd_decode_conf_init(&c);
    c.types[0] = "A";
    c.types[1] = "B";
    c.types[2] = "A";
    c.ntypes = 3;
    expect_conf_error(&c, "decoder: types[2] \"A\" duplicates types[0]");

    cd_decode_conf_init(&c);
    c.types[0] = "";
    c.ntypes = 1;
    expect_conf_error(&c, "decoder: types[0] is empty; expected a non-empty string");

    cd_decode_conf_init(&c);
    c.ntypes = 33;
    expect_conf_error(&c, "decoder: ntypes 33 is outside the allowed range 0..32");

    cd_decode_conf_init(&c);
    c.nnumeric = 5;
    expect_conf_error(&c, "decoder: nnumeric 5 is outside the allowed range 0..4");

    cd_decode_conf_init(&c);
    c.max_tokens = 2048;
    expect_conf_error(
        &c, "decoder: max_tokens 2048 is outside the allowed range 1..1024 (0 = default 256)");

    cd_decode_conf_init(&c);
    c.stable_value = "canary";
    expect_conf_error(
        &c, "decoder: canary_value and stable_value are both \"canary\"; they must differ");

    cd_decode_conf_init(&c);
    c.numeric_paths[0] = "a.b";
    c.numeric_paths[1] = "a.b";
    c.nnumeric = 2;
    expect_conf_error(&c, "decoder: numeric_paths[1] \"a.b\" duplicates numeric_paths[0]");
}

Test(decoder_new, copies_its_strings)
{
    char type[] = "USER_LOGIN", path[] = "data.latency_ms", canary[] = "canary";
    cd_decode_conf_t c;
    cd_decode_conf_init(&c);
    c.types[0] = type;
    c.ntypes = 1;
    c.numeric_paths[0] = path;
    c.nnumeric = 1;
    c.canary_value = canary;
    char err[256];
    cd_decoder_t *d = cd_decoder_new(&c, err, sizeof err);
    cr_assert_not_null(d, "%s", err);
    memset(type, 'Z', sizeof type - 1);
    memset(path, 'Z', sizeof path - 1);
    memset(canary, 'Z', sizeof canary - 1);
    cd_event_t ev;
    cr_assert_eq(decode_on(d,
                           "{\"event_type\":\"USER_LOGIN\",\"timestamp\":1,\"cohort\":\"canary\","
                           "\"data\":{\"latency_ms\":7}}",
                           &ev),
                 CD_BAD_NONE);
    cr_assert_eq(ev.type, 0);
    cr_assert_eq(ev.cohort, CD_COHORT_CANARY);
    cr_assert_eq(ev.num[0], 7.0);
    cd_decoder_destroy(d);
}

Test(decoder_new, defaults)
{
    cd_decode_conf_t c;
    cd_decode_conf_init(&c);
    cr_assert_str_eq(c.type_path, "event_type");
    cr_assert_str_eq(c.time_path, "timestamp");
    cr_assert_str_eq(c.cohort_path, "cohort");
    cr_assert_str_eq(c.canary_value, "canary");
    cr_assert_str_eq(c.stable_value, "stable");
    cr_assert_str_eq(c.version_path, "version");
    cr_assert_str_eq(c.service_path, "service");
    cr_assert_null(c.canary_version);
    cr_assert_eq(c.ntypes, 0);
    cr_assert_eq(c.nnumeric, 0);
    cr_assert_eq(c.max_tokens, 0);
}

/* ---- fast paths agree with the general ones ---- */

Test(decode, timestamps_agree_with_the_parser_through_the_minute_cache)
{
    /* Order matters: the decoder caches the last minute per thread, so the
     * list moves between minutes, repeats prefixes with valid and invalid
     * tails, and puts a rejected minute between two accepted ones. */
    static const char *ts[] = {
        "2026-11-27T12:00:03.250Z",
        "2026-11-27T12:00:59.999Z",
        "2026-11-27T12:00:00Z",
        "2026-11-27T12:00:60Z",
        "2026-11-27T12:00:60.500Z",
        "2026-11-27T12:00:61Z",
        "2026-11-27T12:00:6aZ",
        "2026-11-27T12:00:03.25Z",
        "2026-11-27T12:00:03.2500Z",
        "2026-11-27T12:00:03.123456789Z",
        "2026-11-27T12:00:03.1234567890Z",
        "2026-11-27T12:00:03.Z",
        "2026-11-27T12:00:03.250z",
        "2026-11-27T12:00:03.250",
        "2026-11-27T12:00:03.250+01:00",
        "2026-11-27T12:01:03.250Z",
        "2026-11-27t12:01:03.250Z",
        "2026-11-27 12:01:03.250Z",
        "2026-11-27T12:01:03,250Z",
        "2026-11-27T12:01:03.2a0Z",
        "2026-02-30T00:00:01.000Z",
        "2026-02-30T00:00:02Z",
        "2024-02-29T23:59:59.999Z",
        "2025-02-29T23:59:59.999Z",
        "2026-11-27T24:00:00.000Z",
        "2026-11-27T23:60:00.000Z",
        "2026-13-01T00:00:00.000Z",
        "9999-12-31T23:59:59.999Z",
        "0000-01-01T00:00:00.000Z",
        "1969-12-31T23:59:59.999Z",
        "2026-11-27T12:00:03.250Z",
        "2026-11-27T12:00:03.250ZZ",
        "2026-11-27T12:00:03.250 ",
        "2026-11-27T12:0:03.250Z",
        "",
    };
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
            char s[200];
            snprintf(s, sizeof s,
                     "{\"event_type\":\"USER_LOGIN\",\"timestamp\":\"%s\",\"cohort\":\"canary\"}",
                     ts[i]);
            int64_t want = 0;
            bool ok = cd_time_parse_rfc3339(ts[i], strlen(ts[i]), &want);
            cd_event_t ev;
            cd_bad_reason_t r = decode_on(dec, s, &ev);
            cr_assert_eq(r, ok ? CD_BAD_NONE : CD_BAD_BAD_TIMESTAMP, "%s: %s", ts[i],
                         cd_bad_reason_name(r));
            if (ok) cr_assert_eq(ev.ts_ms, want, "%s", ts[i]);
        }
    }
    /* and the expected values themselves, for the common shape */
    cd_event_t ev;
    cr_assert_eq(decode_on(dec,
                           "{\"event_type\":\"X\",\"timestamp\":\"2026-11-27T12:00:03.250Z\","
                           "\"cohort\":\"canary\"}",
                           &ev),
                 CD_BAD_NONE);
    cr_assert_eq(ev.ts_ms, T0);
    cr_assert_eq(decode_on(dec,
                           "{\"event_type\":\"X\",\"timestamp\":\"2026-11-27T12:00:04Z\","
                           "\"cohort\":\"canary\"}",
                           &ev),
                 CD_BAD_NONE);
    cr_assert_eq(ev.ts_ms, T0 + 750);
}

static char long_seg[80], seg16[17], seg17[18];

static void tweak_key_lengths(cd_decode_conf_t *c)
{
    /* segments of 1, 16, 17 and 70 bytes (the last length bucket), and a
     * type path that is the first key of the document */
    memset(long_seg, 'k', 70);
    long_seg[69] = 'z';
    memcpy(seg16, "abcdefghijklmnop", 17);
    memcpy(seg17, "abcdefghijklmnopq", 18);
    static char p1[120], p2[64];
    snprintf(p1, sizeof p1, "%s.%s", seg17, long_seg);
    snprintf(p2, sizeof p2, "q.%s", seg16);
    c->type_path = "t";
    c->numeric_paths[0] = p1;
    c->numeric_paths[1] = p2;
    c->nnumeric = 2;
}

Test(decode, keys_of_every_length_match_exactly)
{
    cd_decoder_t *d = make(tweak_key_lengths);
    char s[512];
    cd_event_t ev;
    snprintf(s, sizeof s,
             "{\"t\":\"USER_LOGIN\",\"timestamp\":1,\"cohort\":\"stable\",\"%s\":{\"%s\":4.5},"
             "\"q\":{\"%s\":6}}",
             seg17, long_seg, seg16);
    cr_assert_eq(decode_on(d, s, &ev), CD_BAD_NONE);
    cr_assert_eq(ev.type, 2);
    cr_assert_eq(ev.num_mask, 3u);
    cr_assert_eq(ev.num[0], 4.5);
    cr_assert_eq(ev.num[1], 6.0);
    /* one byte different anywhere in a key: no match */
    for (size_t pos = 0; pos < 70; pos++) {
        char key[80];
        memcpy(key, long_seg, 71);
        key[pos] ^= 1;
        snprintf(s, sizeof s,
                 "{\"t\":\"USER_LOGIN\",\"timestamp\":1,\"cohort\":\"stable\",\"%s\":{\"%s\":4.5}}",
                 seg17, key);
        cr_assert_eq(decode_on(d, s, &ev), CD_BAD_NONE);
        cr_assert_eq(ev.num_mask, 0u, "byte %zu", pos);
    }
    for (size_t pos = 0; pos < 16; pos++) {
        char key[20];
        memcpy(key, seg16, 17);
        key[pos] ^= 1;
        snprintf(s, sizeof s,
                 "{\"t\":\"USER_LOGIN\",\"timestamp\":1,\"cohort\":\"stable\","
                 "\"q\":{\"%s\":6}}",
                 key);
        cr_assert_eq(decode_on(d, s, &ev), CD_BAD_NONE);
        cr_assert_eq(ev.num_mask, 0u, "byte %zu", pos);
    }
    /* a prefix or an extension of a key is another key */
    cr_assert_eq(decode_on(d, "{\"tt\":\"USER_LOGIN\",\"timestamp\":1,\"cohort\":\"stable\"}", &ev),
                 CD_BAD_MISSING_TYPE);
    cr_assert_eq(decode_on(d, "{\"\":\"USER_LOGIN\",\"timestamp\":1,\"cohort\":\"stable\"}", &ev),
                 CD_BAD_MISSING_TYPE);
    cr_assert_eq(decode_on(d, "{\"t\":\"USER_LOGIN\",\"timestamp\":1,\"cohort\":\"stable\"}", &ev),
                 CD_BAD_NONE);
    cd_decoder_destroy(d);
}

Test(decode, type_names_of_17_to_24_bytes_match_exactly)
{
    /* 17..24-byte names are compared as three words (cd_words_eq): a flip
     * of any one byte, the middle word included, is another type. */
    cd_event_t ev;
    char s[200], name[32];
    for (int t = 0; t < 7; t++) {
        size_t n = strlen(SOP_TYPES[t]);
        if (n < 17) continue;
        snprintf(s, sizeof s, "{\"event_type\":\"%s\",\"timestamp\":1,\"cohort\":\"stable\"}",
                 SOP_TYPES[t]);
        cr_assert_eq(decode_on(dec, s, &ev), CD_BAD_NONE);
        cr_assert_eq(ev.type, t, "%s", SOP_TYPES[t]);
        for (size_t pos = 0; pos < n; pos++) {
            memcpy(name, SOP_TYPES[t], n + 1);
            name[pos] ^= 1;
            snprintf(s, sizeof s,
                     "{\"event_type\":\"%s\",\"timestamp\":1,\"cohort\":\"stable\"}", name);
            cr_assert_eq(decode_on(dec, s, &ev), CD_BAD_NONE, "%s", name);
            cr_assert_eq(ev.type, CD_TYPE_OTHER, "%s", name);
        }
    }
}

Test(decode, minute_cache_compares_every_prefix_byte)
{
    /* With "2026-11-27T12:00:" cached, a timestamp that differs from it in
     * one byte of those 17 must be parsed afresh (or rejected), never read
     * as a hit. */
    static const char base[] = "2026-11-27T12:00:03.250Z";
    static const char subst[] = "01239:-TZ x";
    cd_event_t ev;
    char s[200], ts[32];
    for (size_t pos = 0; pos < 17; pos++) {
        for (const char *c = subst; *c; c++) {
            if (*c == base[pos]) continue;
            snprintf(s, sizeof s,
                     "{\"event_type\":\"USER_LOGIN\",\"timestamp\":\"%s\",\"cohort\":\"canary\"}",
                     base);
            cr_assert_eq(decode_on(dec, s, &ev), CD_BAD_NONE); /* primes the cache */
            cr_assert_eq(ev.ts_ms, T0);
            memcpy(ts, base, sizeof base);
            ts[pos] = *c;
            snprintf(s, sizeof s,
                     "{\"event_type\":\"USER_LOGIN\",\"timestamp\":\"%s\",\"cohort\":\"canary\"}",
                     ts);
            int64_t want = 0;
            bool ok = cd_time_parse_rfc3339(ts, strlen(ts), &want);
            cd_bad_reason_t r = decode_on(dec, s, &ev);
            cr_assert_eq(r, ok ? CD_BAD_NONE : CD_BAD_BAD_TIMESTAMP, "%s: %s", ts,
                         cd_bad_reason_name(r));
            if (ok) cr_assert_eq(ev.ts_ms, want, "%s", ts);
        }
    }
}

/* The walk handles objects (key + value per step) and arrays in separate
 * inner loops and closes containers in a loop of its own: every transition
 * between them (a container closing into an object or an array, several
 * closing at once, a comma or its absence right after a close) must keep
 * the grammar exact and the path bookkeeping of the container around. */
Test(decode, walk_container_transitions)
{
    const char *good[] = {
        "{\"a\":{\"b\":[{\"c\":[1,[2,{}],[]]}]},\"event_type\":\"USER_LOGIN\","
        "\"timestamp\":1,\"cohort\":\"canary\"}",
        "{\"a\":[[[]],[{}],{\"x\":[{\"y\":{}}]}],\"event_type\":\"USER_LOGIN\","
        "\"timestamp\":1,\"cohort\":\"canary\",\"z\":[]}",
        "{ \"a\" : [ [ 1 ] , { \"b\" : { } } ] , \"event_type\" : \"USER_LOGIN\" ,"
        " \"timestamp\" : 1 , \"cohort\" : \"canary\" , \"e\" : { } }",
        "{\"event_type\":\"USER_LOGIN\",\"timestamp\":1,\"cohort\":\"canary\",\"d\":{\"e\":{}}}",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_reason(good[i], CD_BAD_NONE);
    const char *bad[] = {
        "{\"a\":[[1]] \"b\":2}",        /* no comma after two closes */
        "{\"a\":{\"b\":{}}\"c\":1}",     /* no comma after nested objects */
        "{\"a\":[{}{}]}",               /* no comma between array elements */
        "{\"a\":[[],],\"b\":1}",        /* trailing comma after a nested close */
        "{\"a\":{\"b\":[1]},}",         /* trailing comma in the outer object */
        "{\"a\":[{\"b\":1},]}",         /* trailing comma after an object in an array */
        "{\"a\":[1]:2}",                /* colon after an array value */
        "{\"a\":{\"b\":1},,\"c\":2}",   /* two commas after a close */
        "[{\"a\":1},{\"b\":2} {}]",     /* top-level array, missing comma */
        "{\"a\":[{\"b\":[]]}]}",        /* mismatched brackets deep inside */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_reason(bad[i], CD_BAD_INVALID_JSON);
    assert_reason("[{\"a\":[1,{}]},[[]],{}]", CD_BAD_NOT_OBJECT);

    /* Paths resume after any number of closes, and a key inside an array
     * element never matches a top-level path. */
    cd_decoder_t *d = make(tweak_nested);
    cd_event_t ev;
    cr_assert_eq(decode_on(d,
                           "{\"data\":{\"timing\":{\"x\":[[{\"total_ms\":7}]],\"y\":{\"z\":{}}},"
                           "\"q\":[{\"timing\":{\"total_ms\":8}}]},"
                           "\"arr\":[{\"meta\":{\"track\":\"USER_LOGIN\"}}],"
                           "\"meta\":{\"deep\":[{}],\"track\":\"PAYMENT_FAILED\"},"
                           "\"timestamp\":1,\"cohort\":\"stable\","
                           "\"data\":{\"timing\":{\"y\":[],\"total_ms\":42},\"latency_ms\":3}}",
                           &ev),
                 CD_BAD_NONE);
    cr_assert_eq(ev.type, 5);
    cr_assert_eq(ev.num_mask, 3u);
    cr_assert_eq(ev.num[0], 3.0);
    cr_assert_eq(ev.num[1], 42.0);
    cd_decoder_destroy(d);
}
