/*
 * fuzz_decode.c - libFuzzer target for the event decoder and the time and
 * duration parsers.
 *
 * Build and run (clang):
 *   CC=clang bash tools/build build/fuzz -DCANARYD_FUZZ=ON
 *   cp -r fuzz/corpus/fuzz_decode /tmp/corpus && build/fuzz/fuzz_decode -max_total_time=60
 * /tmp/corpus
 *
 * The input is decoded from an exact-size heap copy so that ASan sees any read
 * past len. Besides "no crash", each accepted event must satisfy the contract
 * of event.h: a type id in range or CD_TYPE_OTHER, a valid cohort, masks only
 * over configured numeric fields, finite numbers, and borrowed pointers that
 * lie inside the input. A formatted timestamp must parse back to itself.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "canaryd/event.h"
#include "canaryd/timeutil.h"

static cd_decoder_t *dec;

static void build_decoder(void)
{
    static const char *types[] = {"REQUEST_COMPLETED", "ERROR_OCCURRED",    "USER_LOGIN",
                                  "USER_LOGIN_FAILED", "PAYMENT_COMPLETED", "PAYMENT_FAILED",
                                  "AUDIT_LOG_FAILED"};
    cd_decode_conf_t c;
    cd_decode_conf_init(&c);
    for (int i = 0; i < 7; i++)
        c.types[i] = types[i];
    c.ntypes = 7;
    c.numeric_paths[0] = "data.latency_ms";
    c.numeric_paths[1] = "meta.a.b";
    c.nnumeric = 2;
    c.canary_version = "2.0.0";
    char err[256];
    dec = cd_decoder_new(&c, err, sizeof err);
    CD_ASSERT(dec != NULL);
}

static void check_span(const char *p, size_t n, const char *buf, size_t len)
{
    if (n == 0) return;
    CD_ASSERT(p != NULL && p >= buf && p + n <= buf + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dec) build_decoder();
    char *buf = malloc(size ? size : 1);
    CD_ASSERT(buf != NULL);
    memcpy(buf, data, size);

    cd_event_t ev;
    cd_bad_reason_t r = cd_decode(dec, buf, size, &ev);
    CD_ASSERT(r >= CD_BAD_NONE && r < CD_BAD__COUNT && r != CD_BAD_LINE_TOO_LONG);
    if (r == CD_BAD_NONE) {
        CD_ASSERT(ev.type == CD_TYPE_OTHER || (ev.type >= 0 && ev.type < 7));
        CD_ASSERT(ev.cohort == CD_COHORT_CANARY || ev.cohort == CD_COHORT_STABLE);
        CD_ASSERT((ev.num_mask & ~3u) == 0 && (ev.bad_num_mask & ~3u) == 0);
        CD_ASSERT((ev.num_mask & ev.bad_num_mask) == 0);
        for (int k = 0; k < 2; k++)
            if (ev.num_mask & (1u << k)) CD_ASSERT(isfinite(ev.num[k]));
        CD_ASSERT(ev.type_len > 0 || ev.type_str != NULL);
        check_span(ev.type_str, ev.type_len, buf, size);
        check_span(ev.version, ev.version_len, buf, size);
        check_span(ev.service, ev.service_len, buf, size);
    }

    int64_t ms;
    /* Offsets can push year 0000 / 9999 inputs outside 4-digit years, which
     * format but (rightly) do not parse back: round trip only inside them. */
    if (cd_time_parse_rfc3339(buf, size, &ms) && ms >= INT64_C(-62167219200000) &&
        ms <= INT64_C(253402300799999)) {
        char out[64];
        int64_t back;
        cd_time_format(ms, out, sizeof out);
        CD_ASSERT(cd_time_parse_rfc3339(out, strlen(out), &back) && back == ms);
    }

    char *z = malloc(size + 1);
    CD_ASSERT(z != NULL);
    memcpy(z, data, size);
    z[size] = '\0';
    if (cd_duration_parse(z, &ms)) {
        char out[64];
        int64_t back;
        CD_ASSERT(ms >= 0);
        cd_duration_format(ms, out, sizeof out);
        CD_ASSERT(cd_duration_parse(out, &back) && back == ms);
    }
    free(z);
    free(buf);
    return 0;
}
