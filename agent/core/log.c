/*
 * log.c - levelled, rate-limited diagnostics on stderr.
 *
 * The level is read from CANARYD_LOG_LEVEL once (pthread_once). The rate
 * limit by string key is a small table of keys under one mutex: for
 * messages that are rare next to events (I/O retries, Kafka errors).
 * Messages that can come once per input event (bad input) go through a
 * cd_log_gate_t instead: the same burst-then-interval rule decided with
 * atomics before any lock or formatting, so 100 % garbage does not
 * serialize the workers (bench/bench_bad_input.c measures it). Lines are formatted into a stack
 * buffer and written with a single fputs so concurrent lines don't mix.
 */
#include "canaryd/log.h"
#include "canaryd/clock.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define NKEYS 64
#define KEY_MAX 64

typedef struct slot {
    char key[KEY_MAX];
    uint64_t printed;
    uint64_t suppressed;
    int64_t last_ms;
} slot_t;

static pthread_once_t once = PTHREAD_ONCE_INIT;
/* Relaxed: the level is a setting read on every call; a thread seeing an
 * older value for a moment only logs one line more or less. */
static atomic_int level = CD_LOG_INFO;
static FILE *stream;
static int64_t (*clock_fn)(void);
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static slot_t slots[NKEYS + 1]; /* the last one: overflow */
static int nslots;
/* Bumped by cd_log_reset(): a gate of an older generation starts afresh. */
static atomic_uint gate_epoch;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

bool cd_log_level_parse(const char *s, cd_log_level_t *out)
{
    for (int i = 0; i <= CD_LOG_DEBUG; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (cd_log_level_t)i;
            return true;
        }
    }
    return false;
}

static void init_level(void)
{
    const char *env = getenv("CANARYD_LOG_LEVEL");
    cd_log_level_t l;
    if (!env || !*env) return;
    if (cd_log_level_parse(env, &l)) {
        atomic_store_explicit(&level, (int)l, memory_order_relaxed);
        return;
    }
    fprintf(stream ? stream : stderr,
            "canaryd[warn]: CANARYD_LOG_LEVEL: \"%.32s\" is not a level; accepted: error, warn, "
            "info, debug; using info\n",
            env);
}

bool cd_log_enabled(cd_log_level_t l)
{
    pthread_once(&once, init_level);
    return (int)l <= atomic_load_explicit(&level, memory_order_relaxed);
}

void cd_log_set_level(cd_log_level_t l)
{
    pthread_once(&once, init_level);
    atomic_store_explicit(&level, (int)l, memory_order_relaxed);
}

void cd_log_set_stream(FILE *f)
{
    stream = f;
}

void cd_log_set_clock(int64_t (*now_ms)(void))
{
    clock_fn = now_ms;
}

void cd_log_reset(void)
{
    pthread_mutex_lock(&mu);
    memset(slots, 0, sizeof(slots));
    nslots = 0;
    atomic_fetch_add(&gate_epoch, 1);
    pthread_mutex_unlock(&mu);
}

static int64_t mono_ms(void)
{
    return clock_fn ? clock_fn() : cd_mono_ms();
}

/* Formats and writes one line; suffix (may be "") goes after the message. */
static void emit(cd_log_level_t l, const char *suffix, const char *fmt, va_list ap)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ canaryd[%s]: ", ts.tv_nsec / 1000000,
                          level_names[l]);
    int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    if (m > 0) n += (size_t)m;
    if (n > sizeof(line) - 64)
        n = sizeof(line) - 64; /* message was truncated: keep room for the suffix */
    snprintf(line + n, sizeof(line) - n, "%s\n", suffix);
    fputs(line, stream ? stream : stderr);
}

void cd_log(cd_log_level_t l, const char *fmt, ...)
{
    va_list ap;
    if (!cd_log_enabled(l)) return;
    va_start(ap, fmt);
    emit(l, "", fmt, ap);
    va_end(ap);
}

static slot_t *find_slot(const char *key)
{
    for (int i = 0; i < nslots; i++)
        if (strncmp(slots[i].key, key, KEY_MAX - 1) == 0) return &slots[i];
    if (nslots == NKEYS) return &slots[NKEYS];
    slot_t *s = &slots[nslots++];
    snprintf(s->key, sizeof(s->key), "%s", key);
    return s;
}

void cd_log_ratelimited(const char *key, cd_log_level_t l, const char *fmt, ...)
{
    char suffix[64] = "";
    bool print;
    if (!cd_log_enabled(l)) return;

    int64_t now = mono_ms();
    pthread_mutex_lock(&mu);
    slot_t *s = find_slot(key);
    print = s->printed < CD_LOG_BURST || now - s->last_ms >= CD_LOG_INTERVAL_MS;
    if (print) {
        if (s->suppressed > 0)
            snprintf(suffix, sizeof(suffix), " (%llu similar suppressed)",
                     (unsigned long long)s->suppressed);
        s->printed++;
        s->suppressed = 0;
        s->last_ms = now;
    } else {
        s->suppressed++;
    }
    pthread_mutex_unlock(&mu);

    if (print) {
        va_list ap;
        va_start(ap, fmt);
        emit(l, suffix, fmt, ap);
        va_end(ap);
    }
}

/*
 * The gate. seen orders the calls: the first CD_LOG_BURST pass and each
 * pushes next_ms to now + interval (a max, burst lines may land out of
 * order). After that, a call passes only if the clock reached next_ms and it
 * wins the CAS moving next_ms one interval on: one line per interval however
 * many threads arrive at once. A suppressed call adds to suppressed; the
 * passing one takes the count with an exchange, so every suppressed call is
 * reported by exactly one later line (or is still pending).
 */
bool cd_log_gate_pass(cd_log_gate_t *g, cd_log_level_t l, uint64_t *suppressed)
{
    *suppressed = 0;
    if (!cd_log_enabled(l)) return false;
    unsigned ep = atomic_load_explicit(&gate_epoch, memory_order_relaxed);
    if (atomic_load_explicit(&g->epoch, memory_order_relaxed) != ep) {
        /* reset by cd_log_reset(), which is not called while others log */
        atomic_store_explicit(&g->seen, 0, memory_order_relaxed);
        atomic_store_explicit(&g->suppressed, 0, memory_order_relaxed);
        atomic_store_explicit(&g->next_ms, 0, memory_order_relaxed);
        atomic_store_explicit(&g->epoch, ep, memory_order_relaxed);
    }
    uint64_t n = atomic_fetch_add_explicit(&g->seen, 1, memory_order_relaxed);
    int64_t now = mono_ms();
    if (n < CD_LOG_BURST) {
        int64_t due = atomic_load_explicit(&g->next_ms, memory_order_relaxed);
        while (due < now + CD_LOG_INTERVAL_MS &&
               !atomic_compare_exchange_weak_explicit(&g->next_ms, &due, now + CD_LOG_INTERVAL_MS,
                                                      memory_order_relaxed, memory_order_relaxed)) {
        }
        return true;
    }
    int64_t due = atomic_load_explicit(&g->next_ms, memory_order_relaxed);
    if (now >= due && atomic_compare_exchange_strong_explicit(&g->next_ms, &due,
                                                              now + CD_LOG_INTERVAL_MS,
                                                              memory_order_relaxed,
                                                              memory_order_relaxed)) {
        *suppressed = atomic_exchange_explicit(&g->suppressed, 0, memory_order_relaxed);
        return true;
    }
    atomic_fetch_add_explicit(&g->suppressed, 1, memory_order_relaxed);
    return false;
}

void cd_log_suppressed(cd_log_level_t l, uint64_t suppressed, const char *fmt, ...)
{
    char suffix[64] = "";
    va_list ap;
    if (!cd_log_enabled(l)) return;
    if (suppressed > 0)
        snprintf(suffix, sizeof(suffix), " (%llu similar suppressed)",
                 (unsigned long long)suppressed);
    va_start(ap, fmt);
    emit(l, suffix, fmt, ap);
    va_end(ap);
}

char *cd_log_escape(const void *buf, size_t len, char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = buf;
    size_t n = len < CD_LOG_PAYLOAD_MAX ? len : CD_LOG_PAYLOAD_MAX;
    size_t o = 0;

    if (size == 0) return out;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        char tmp[4];
        size_t k;
        if (c == '\\') {
            tmp[0] = tmp[1] = '\\';
            k = 2;
        } else if (c >= 0x20 && c < 0x7f) {
            tmp[0] = (char)c;
            k = 1;
        } else {
            tmp[0] = '\\';
            tmp[1] = 'x';
            tmp[2] = hex[c >> 4];
            tmp[3] = hex[c & 15];
            k = 4;
        }
        if (o + k >= size) break;
        memcpy(out + o, tmp, k);
        o += k;
    }
    if (len > n && o + 3 < size) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}
