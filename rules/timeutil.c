/*
 * timeutil.c - event-time parsing and formatting.
 *
 * Everything here is pure arithmetic on the caller's bytes: no locale, no TZ,
 * no libc time functions (timegm/strptime depend on the environment and
 * accept more than RFC 3339). Calendar dates are turned into day numbers
 * with Howard Hinnant's days-from-civil algorithm (proleptic Gregorian, exact
 * for any year) and back with its inverse, so parse and format agree on every
 * date. All functions are reentrant and thread-safe.
 *
 * Durations use a strict Go-like grammar: components "<digits>[.<digits>]<unit>"
 * with units h, m, s, ms in strictly decreasing order, each at most once
 * ("1h30m", "2m30s", "1.5s", "250ms"). The result must be a whole number of
 * milliseconds ("1.5ms" is rejected rather than rounded) and fit in int64.
 */
#include "canaryd/timeutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define MS_PER_DAY INT64_C(86400000)

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12, d 1..31). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Reads exactly n decimal digits at s[*i]; false if any is not a digit. */
static bool digits(const char *s, size_t len, size_t *i, int n, int *out)
{
    if (*i + (size_t)n > len) return false;
    int v = 0;
    for (int k = 0; k < n; k++) {
        char c = s[*i + (size_t)k];
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    *i += (size_t)n;
    *out = v;
    return true;
}

static bool expect(const char *s, size_t len, size_t *i, char c)
{
    if (*i >= len || s[*i] != c) return false;
    (*i)++;
    return true;
}

bool cd_time_parse_rfc3339(const char *s, size_t len, int64_t *ms)
{
    size_t i = 0;
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, frac_ms = 0; /* gcc -O3 warns otherwise */
    if (!s || !ms) return false;
    if (!digits(s, len, &i, 4, &y) || !expect(s, len, &i, '-') || !digits(s, len, &i, 2, &mo) ||
        !expect(s, len, &i, '-') || !digits(s, len, &i, 2, &d))
        return false;
    if (i >= len || (s[i] != 'T' && s[i] != 't' && s[i] != ' ')) return false;
    i++;
    if (!digits(s, len, &i, 2, &h) || !expect(s, len, &i, ':') || !digits(s, len, &i, 2, &mi) ||
        !expect(s, len, &i, ':') || !digits(s, len, &i, 2, &sec))
        return false;
    if (i < len && s[i] == '.') {
        /* 1..9 digits; the first three make the milliseconds, the rest are
         * truncated (not rounded: an event never moves into the next ms). */
        i++;
        int n = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (n < 3) frac_ms = frac_ms * 10 + (s[i] - '0');
            n++;
            i++;
        }
        if (n < 1 || n > 9) return false;
        for (int k = n; k < 3; k++)
            frac_ms *= 10;
    }
    int off_min = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i] == '-' ? -1 : 1, oh, om;
        i++;
        if (!digits(s, len, &i, 2, &oh) || !expect(s, len, &i, ':') || !digits(s, len, &i, 2, &om))
            return false;
        if (oh > 23 || om > 59) return false;
        off_min = sign * (oh * 60 + om);
    } else {
        return false;
    }
    if (i != len) return false;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return false;
    if (sec == 60) {
        /* A leap second has no place in epoch time: pin it to the last
         * millisecond of the minute so ordering is preserved. */
        sec = 59;
        frac_ms = 999;
    }
    int64_t t = days_from_civil(y, mo, d) * MS_PER_DAY;
    t += ((int64_t)h * 3600 + (int64_t)mi * 60 + sec) * 1000 + frac_ms;
    t -= (int64_t)off_min * 60000; /* local = UTC + offset */
    *ms = t;
    return true;
}

char *cd_time_format(int64_t ms, char *buf, size_t size)
{
    if (!buf || size == 0) return buf;
    /* Floor division so that pre-1970 times format correctly too. */
    int64_t days = ms / MS_PER_DAY, rem = ms % MS_PER_DAY;
    if (rem < 0) {
        rem += MS_PER_DAY;
        days--;
    }
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    int h = (int)(rem / 3600000), mi = (int)(rem / 60000 % 60), s = (int)(rem / 1000 % 60);
    int frac = (int)(rem % 1000);
    snprintf(buf, size, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d, h, mi, s, frac);
    return buf;
}

char *cd_duration_format(int64_t ms, char *buf, size_t size)
{
    if (!buf || size == 0) return buf;
    /* Negative durations never come from cd_duration_parse; they are shown
     * with a sign (magnitude taken as uint64 so INT64_MIN is safe). */
    const char *sign = ms < 0 ? "-" : "";
    uint64_t u = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    if (u == 0) {
        snprintf(buf, size, "0s");
    } else if (u % 1000 != 0) {
        /* Not a whole second: plain milliseconds ("1500ms", not "1.5s"). */
        snprintf(buf, size, "%s%" PRIu64 "ms", sign, u);
    } else {
        uint64_t s = u / 1000, h = s / 3600, m = s / 60 % 60, sec = s % 60;
        size_t n = (size_t)snprintf(buf, size, "%s", sign);
        if (h && n < size) n += (size_t)snprintf(buf + n, size - n, "%" PRIu64 "h", h);
        if (m && n < size) n += (size_t)snprintf(buf + n, size - n, "%" PRIu64 "m", m);
        if (sec && n < size) snprintf(buf + n, size - n, "%" PRIu64 "s", sec);
    }
    return buf;
}

bool cd_duration_parse(const char *s, int64_t *ms)
{
    static const struct {
        size_t len;
        int64_t ms;
    } units[] = {{1, 3600000}, {1, 60000}, {1, 1000}, {2, 1}}; /* h m s ms */
    if (!s || !ms || !*s) return false;
    int64_t total = 0;
    int next_unit = 0; /* units must appear in decreasing order, once each */
    const char *p = s;
    while (*p) {
        if (*p < '0' || *p > '9') return false;
        int64_t ip = 0;
        while (*p >= '0' && *p <= '9') {
            int dig = *p++ - '0';
            if (ip > (INT64_MAX - dig) / 10) return false;
            ip = ip * 10 + dig;
        }
        int64_t fp = 0, den = 1;
        if (*p == '.') {
            p++;
            int n = 0;
            while (*p >= '0' && *p <= '9') {
                if (++n > 9) return false;
                fp = fp * 10 + (*p++ - '0');
                den *= 10;
            }
            if (n == 0) return false;
        }
        int u = -1;
        /* "ms" before "m": the longer spelling wins. */
        if (p[0] == 'm' && p[1] == 's')
            u = 3;
        else if (p[0] == 'h')
            u = 0;
        else if (p[0] == 'm')
            u = 1;
        else if (p[0] == 's')
            u = 2;
        if (u < next_unit) return false;
        p += units[u].len;
        next_unit = u + 1;
        int64_t unit = units[u].ms;
        if (ip > INT64_MAX / unit) return false;
        int64_t v = ip * unit;
        /* fp < 1e9 and unit <= 3.6e6: the product fits in int64. */
        if (fp * unit % den != 0) return false;
        int64_t f = fp * unit / den;
        if (v > INT64_MAX - f || total > INT64_MAX - v - f) return false;
        total += v + f;
    }
    *ms = total;
    return true;
}
