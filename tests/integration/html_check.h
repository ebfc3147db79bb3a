/*
 * html_check.h - small helpers for structural checks on canaryd's generated
 * HTML (the report and the status page's DOM as Chromium dumps it): count
 * a string, cut out one rule's <section>, read an attribute's value. Plain
 * string scanning: the markup is canaryd's own (agent/report/chart.c), attribute
 * order and quoting are fixed there, so this is exact, not a parser.
 * Header-only, for the report and browser suites.
 */
#ifndef CANARYD_TESTS_HTML_CHECK_H
#define CANARYD_TESTS_HTML_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Occurrences of needle in [s, s + n) (n 0: to the end of s). */
static inline int html_count_n(const char *s, size_t n, const char *needle)
{
    int c = 0;
    size_t nl = strlen(needle);
    const char *end = n ? s + n : s + strlen(s);
    for (const char *p = s; (p = strstr(p, needle)) && p + nl <= end; p += nl)
        c++;
    return c;
}

static inline int html_count(const char *s, const char *needle)
{
    return html_count_n(s, 0, needle);
}

/* A malloc'd copy of rule's <section class="rule" data-rule="NAME" ...>
 * ... </section>, or NULL. */
static inline char *html_rule_section(const char *doc, const char *rule)
{
    char key[160];
    snprintf(key, sizeof key, "<section class=\"rule\" data-rule=\"%s\"", rule);
    const char *a = strstr(doc, key);
    if (!a) return NULL;
    const char *b = strstr(a, "</section>");
    if (!b) return NULL;
    size_t n = (size_t)(b - a) + 10;
    char *s = malloc(n + 1);
    memcpy(s, a, n);
    s[n] = '\0';
    return s;
}

/* The value of attr in the first element of s starting with prefix (e.g.
 * "<rect class=\"span pending\""), copied into out; NULL when absent. With
 * nth > 0, the nth such element (0-based). */
static inline const char *html_attr(const char *s, const char *prefix, int nth, const char *attr,
                                    char *out, size_t size)
{
    const char *p = s;
    for (int i = 0; p && i <= nth; i++) {
        p = strstr(p, prefix);
        if (p && i < nth) p += strlen(prefix);
    }
    if (!p) return NULL;
    const char *gt = strchr(p, '>');
    char key[64];
    snprintf(key, sizeof key, " %s=\"", attr);
    const char *v = strstr(p, key);
    if (!v || (gt && v > gt)) return NULL;
    v += strlen(key);
    const char *q = strchr(v, '"');
    if (!q) return NULL;
    snprintf(out, size, "%.*s", (int)(q - v), v);
    return out;
}

static inline long long html_attr_ll(const char *s, const char *prefix, int nth, const char *attr)
{
    char buf[64];
    return html_attr(s, prefix, nth, attr, buf, sizeof buf) ? atoll(buf) : -1;
}

#endif
