/*
 * test_timeutil.c - RFC 3339 parsing/formatting and durations, pinned to
 * exact epoch values (cross-checked with `date -u -d ... +%s`).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "canaryd/timeutil.h"

#define T0 INT64_C(1795780803250) /* 2026-11-27T12:00:03.250Z */

static bool parse(const char *s, int64_t *ms)
{
    return cd_time_parse_rfc3339(s, strlen(s), ms);
}

static int64_t parse_ok(const char *s)
{
    int64_t ms = INT64_MIN;
    cr_assert(parse(s, &ms), "rejected: %s", s);
    return ms;
}

Test(time, utc_and_epoch_zero)
{
    cr_assert_eq(parse_ok("2026-11-27T12:00:03.250Z"), T0);
    cr_assert_eq(parse_ok("1970-01-01T00:00:00Z"), 0);
    cr_assert_eq(parse_ok("2000-01-01T00:00:00Z"), INT64_C(946684800000));
    cr_assert_eq(parse_ok("1969-12-31T23:59:59.999Z"), -1);
}

Test(time, separators_and_case)
{
    cr_assert_eq(parse_ok("2026-11-27t12:00:03.250z"), T0);
    cr_assert_eq(parse_ok("2026-11-27 12:00:03.250Z"), T0);
    int64_t ms;
    cr_assert_not(parse("2026-11-27X12:00:03.250Z", &ms));
    cr_assert_not(parse("2026-11-27T12:00:03.250", &ms)); /* zone required */
    cr_assert_not(parse("2026-11-27T12:00:03.250ZZ", &ms));
    cr_assert_not(parse("2026/11/27T12:00:03Z", &ms));
    cr_assert_not(parse("26-11-27T12:00:03Z", &ms));
    cr_assert_not(parse("2026-11-27T12:00Z", &ms));
    cr_assert_not(parse("", &ms));
    cr_assert_not(parse(" 2026-11-27T12:00:03Z", &ms));
}

Test(time, offsets_give_same_instant)
{
    cr_assert_eq(parse_ok("2026-11-27T13:00:03.250+01:00"), T0);
    cr_assert_eq(parse_ok("2026-11-27T06:30:03.250-05:30"), T0);
    cr_assert_eq(parse_ok("2026-11-27T12:00:03.250+00:00"), T0);
    cr_assert_eq(parse_ok("2026-11-27T12:00:03.250-00:00"), T0);
    /* crossing a day boundary backwards */
    cr_assert_eq(parse_ok("2026-11-28T01:00:03.250+13:00"), T0);
    int64_t ms;
    cr_assert_not(parse("2026-11-27T13:00:03+0100", &ms));
    cr_assert_not(parse("2026-11-27T13:00:03+24:00", &ms));
    cr_assert_not(parse("2026-11-27T13:00:03+01:60", &ms));
    cr_assert_not(parse("2026-11-27T13:00:03+01", &ms));
}

Test(time, feb29_leap_and_non_leap)
{
    cr_assert_eq(parse_ok("2024-02-29T00:00:00Z"), INT64_C(1709164800000));
    cr_assert_eq(parse_ok("2000-02-29T23:59:59Z"), INT64_C(951868799000));
    int64_t ms;
    cr_assert_not(parse("2023-02-29T00:00:00Z", &ms));
    cr_assert_not(parse("1900-02-29T00:00:00Z", &ms)); /* century, not leap */
    cr_assert_not(parse("2100-02-29T00:00:00Z", &ms));
    cr_assert_not(parse("2024-02-30T00:00:00Z", &ms));
}

Test(time, field_ranges)
{
    int64_t ms;
    const char *bad[] = {"2026-00-10T00:00:00Z", "2026-13-10T00:00:00Z", "2026-04-31T00:00:00Z",
                         "2026-01-32T00:00:00Z", "2026-01-00T00:00:00Z", "2026-01-01T24:00:00Z",
                         "2026-01-01T23:60:00Z", "2026-01-01T23:59:61Z", "2026-01-01T2a:00:00Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(parse(bad[i], &ms), "accepted: %s", bad[i]);
    cr_assert_eq(parse_ok("2026-12-31T23:59:59Z"), INT64_C(1798761599000));
}

Test(time, leap_second_pins_to_last_ms)
{
    cr_assert_eq(parse_ok("2016-12-31T23:59:60Z"), parse_ok("2016-12-31T23:59:59.999Z"));
    cr_assert_eq(parse_ok("2016-12-31T23:59:60.5Z"), parse_ok("2016-12-31T23:59:59.999Z"));
}

Test(time, fraction_digits_0_to_9)
{
    const char *digits = "123456789";
    /* expected ms part for n digits of "123456789": truncated, never rounded */
    const int want[10] = {0, 100, 120, 123, 123, 123, 123, 123, 123, 123};
    for (int n = 0; n <= 9; n++) {
        char s[64];
        if (n == 0)
            snprintf(s, sizeof s, "2026-11-27T12:00:03Z");
        else
            snprintf(s, sizeof s, "2026-11-27T12:00:03.%.*sZ", n, digits);
        cr_assert_eq(parse_ok(s), T0 - 250 + want[n], "%s", s);
    }
    cr_assert_eq(parse_ok("2026-11-27T12:00:03.999999999Z"), T0 - 250 + 999);
    int64_t ms;
    cr_assert_not(parse("2026-11-27T12:00:03.1234567890Z", &ms)); /* 10 digits */
    cr_assert_not(parse("2026-11-27T12:00:03.Z", &ms));
}

Test(time, length_is_honoured)
{
    /* The parser must stop at len: the tail here is not part of the value. */
    const char *s = "2026-11-27T12:00:03.250Z\",\"x\":1";
    int64_t ms;
    cr_assert(cd_time_parse_rfc3339(s, 24, &ms));
    cr_assert_eq(ms, T0);
    cr_assert_not(cd_time_parse_rfc3339(s, 23, &ms));
    cr_assert_not(cd_time_parse_rfc3339(s, 25, &ms));
}

Test(time, format_exact)
{
    char buf[32];
    cr_assert_str_eq(cd_time_format(T0, buf, sizeof buf), "2026-11-27T12:00:03.250Z");
    cr_assert_str_eq(cd_time_format(0, buf, sizeof buf), "1970-01-01T00:00:00.000Z");
    cr_assert_str_eq(cd_time_format(-1, buf, sizeof buf), "1969-12-31T23:59:59.999Z");
    cr_assert_str_eq(cd_time_format(INT64_C(1709164800000), buf, sizeof buf),
                     "2024-02-29T00:00:00.000Z");
}

Test(time, format_parse_round_trip)
{
    char buf[32];
    uint64_t x = 88172645463325252u; /* xorshift: deterministic spread over 0..9999 years */
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t ms = (int64_t)(x % UINT64_C(253402300800000)) - INT64_C(62167219200000);
        cd_time_format(ms, buf, sizeof buf);
        int64_t back;
        cr_assert(parse(buf, &back), "%s", buf);
        cr_assert_eq(back, ms, "%s", buf);
    }
}

static int64_t dur_ok(const char *s)
{
    int64_t ms = -1;
    cr_assert(cd_duration_parse(s, &ms), "rejected: %s", s);
    return ms;
}

Test(duration, parse_accepted)
{
    cr_assert_eq(dur_ok("250ms"), 250);
    cr_assert_eq(dur_ok("30s"), 30000);
    cr_assert_eq(dur_ok("5m"), 300000);
    cr_assert_eq(dur_ok("1h"), 3600000);
    cr_assert_eq(dur_ok("1h30m"), 5400000);
    cr_assert_eq(dur_ok("2m30s"), 150000);
    cr_assert_eq(dur_ok("1.5s"), 1500);
    cr_assert_eq(dur_ok("0s"), 0);
    cr_assert_eq(dur_ok("1h5s"), 3605000);
    cr_assert_eq(dur_ok("1h2m3s4ms"), 3723004);
    cr_assert_eq(dur_ok("0.25h"), 900000);
    cr_assert_eq(dur_ok("9223372036854775807ms"), INT64_MAX);
}

Test(duration, parse_rejected)
{
    const char *bad[] = {"",
                         "5",
                         "-5s",
                         "+5s",
                         "5x",
                         "1.5ms",
                         "30m1h",
                         "1h1h",
                         "1m5m",
                         " 5s",
                         "5s ",
                         "1.s",
                         ".5s",
                         "s",
                         "5 s",
                         "1.0000000001s",
                         "9223372036854775808ms",
                         "9223372036854775807s",
                         "2562047788015216h",
                         "1e3ms",
                         "5S"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 42;
        cr_assert_not(cd_duration_parse(bad[i], &ms), "accepted: \"%s\"", bad[i]);
        cr_assert_eq(ms, 42, "wrote output for \"%s\"", bad[i]);
    }
}

Test(duration, format_exact)
{
    struct {
        int64_t ms;
        const char *s;
    } c[] = {{0, "0s"},         {250, "250ms"},    {1500, "1500ms"}, {30000, "30s"},
             {300000, "5m"},    {150000, "2m30s"}, {3600000, "1h"},  {5400000, "1h30m"},
             {3605000, "1h5s"}, {86400000, "24h"}, {-5000, "-5s"}};
    char buf[48];
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        cr_assert_str_eq(cd_duration_format(c[i].ms, buf, sizeof buf), c[i].s);
}

Test(duration, round_trip)
{
    const int64_t v[] = {
        0,        1,      250,     999,     1000,    1500,    30000,    61000,
        150000,   300000, 3599999, 3600000, 3661001, 5400000, 86400000, INT64_C(604800000),
        INT64_MAX};
    char buf[48];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        cd_duration_format(v[i], buf, sizeof buf);
        cr_assert_eq(dur_ok(buf), v[i], "%s", buf);
    }
}
