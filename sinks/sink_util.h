/*
 * sink_util.h - small helpers shared by the sinks in sinks/ (private to that
 * folder): reading a sink's config entry with errors that name the key path,
 * the value and what is accepted; redacting secrets out of URLs; cutting
 * UTF-8 text at a character boundary; the monotonic clock.
 *
 * Config values that are secrets (webhook URLs, HMAC secrets, header values,
 * passwords) are never rendered in messages: the helpers take a `secret`
 * flag and print "(secret)" instead of the value.
 *
 * Thread-safety: pure functions of their arguments (diag is the caller's).
 */
#ifndef CANARYD_SINK_UTIL_H
#define CANARYD_SINK_UTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canaryd/config.h"

/* Keys every sink entry may carry; they belong to the dispatcher. */
extern const char *const cd_sink_common_keys[];

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t cd_sink_now_ms(void);

/* "<path>.<key>" into out. */
void cd_sconf_path(char *out, size_t size, const char *path, const char *key);

/* One line "<path>: <value> <problem>; accepted: <accepted>" (value shown as
 * "(secret)" when secret; v may be NULL: no value shown). */
void cd_sconf_bad(cd_diag_t *d, const char *path, const json_t *v, bool secret, const char *problem,
                  const char *accepted);

/* Rejects keys of obj that are neither in known (NULL-terminated) nor, when
 * common, in cd_sink_common_keys; lists the known ones. False if any. */
bool cd_sconf_keys(cd_diag_t *d, const char *path, const json_t *obj, const char *const *known,
                   bool common);

/* obj[key] as a string, strdup'ed into *out (NULL when absent and not
 * required; *out is left alone then). Empty strings are rejected. */
bool cd_sconf_string(cd_diag_t *d, const char *path, const json_t *obj, const char *key,
                     bool required, bool secret, char **out);

/* obj[key] as a duration (integer ms or "30s"), within [lo, hi] ms; *ms is
 * left alone when absent. */
bool cd_sconf_duration(cd_diag_t *d, const char *path, const json_t *obj, const char *key,
                       int64_t lo, int64_t hi, int64_t *ms);

/* obj[key] as a number within [lo, hi]; left alone when absent. */
bool cd_sconf_number(cd_diag_t *d, const char *path, const json_t *obj, const char *key, double lo,
                     double hi, double *out);

/* obj[key] as a boolean; left alone when absent. */
bool cd_sconf_bool(cd_diag_t *d, const char *path, const json_t *obj, const char *key, bool *out);

/* obj[key] as one of names (NULL-terminated): its index, dflt when absent,
 * -1 (reported) when something else. */
int cd_sconf_enum(cd_diag_t *d, const char *path, const json_t *obj, const char *key,
                  const char *const *names, int dflt);

/* "scheme://host[:port]/…": what of a URL may be shown (no userinfo, path,
 * query or fragment, which may carry tokens). "(unparseable URL)" if it is
 * not one. Always NUL-terminated. */
char *cd_sink_redact_url(const char *url, char *out, size_t size);

/* Byte length of the longest prefix of s (len bytes, valid UTF-8) that holds
 * at most max_chars code points and at most max_bytes bytes, ending on a
 * character boundary. */
size_t cd_utf8_prefix(const char *s, size_t len, size_t max_chars, size_t max_bytes);

#endif
