/*
 * test_window_concurrency.c - the window under concurrent writers, a moving
 * clock and readers; also run under TSan (ctest -R concurrency).
 *
 * rotation_N: N writer threads add to the same (metric, cohort) counter and
 * observe into the same histogram, at times around the current clock, while
 * a clock thread advances event time one second per step (the 24-bucket ring
 * wraps several times) and a reader thread merges windows. Each writer
 * records, per second, how many of its calls returned CD_WIN_OK. At the end
 * every second the clock still admits must hold exactly the sum of those.
 *
 * claim_hammer: rounds in which writers of group A keep adding to second X
 * while the clock moves on so that X is evicted, and writers of group B all
 * start at once on second Y = X + n (the same slot, stale, not pre-claimed),
 * racing for the claim. Y must end with exactly group B's adds: none lost,
 * none of A's in-flight adds leaking in; neighbouring seconds stay empty.
 * (Checked once by hand: with the cell tags disabled - tag_of() returning 0,
 * which is the plain "CAS epoch, zero, store epoch" protocol - this test
 * fails: second Y holds 1501 adds where group B made 1500, one of A's leaked in.)
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "canaryd/window.h"

#define COH CD_COHORT_CANARY

/* ---- rotation ---------------------------------------------------------- */

#define BASE_S 1000000 /* first clock second */
#define STEPS 120      /* clock steps of 1 s */
#define SPAN_S 20
#define AHEAD_MS 2000
#define NIDX (STEPS + 40)
#define MAXW 8

static cd_window_t *win;
static atomic_bool done;
/* successful adds so far, all writers (relaxed: only a progress gauge) */
static atomic_ullong adds_ok;

typedef struct writer {
    pthread_t tid;
    uint64_t seed;
    uint64_t add_ok[NIDX]; /* index: second - (BASE_S - 10) */
    uint64_t obs_ok[NIDX];
    uint64_t late, future;
} writer_t;
static writer_t writers[MAXW];

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *writer_main(void *arg)
{
    writer_t *me = arg;
    int stripe = cd_window_stripe(win);
    while (!atomic_load_explicit(&done, memory_order_acquire)) {
        for (int k = 0; k < 64; k++) {
            int64_t c = cd_window_clock(win);
            /* [c - 5001, c + 1999]: admitted unless the clock runs 15 s ahead
             * of us meanwhile (then LATE, counted, not expected to appear). */
            int64_t t = c + 1999 - (int64_t)(xorshift(&me->seed) % 7001);
            int idx = (int)(t / 1000 - (BASE_S - 10));
            cr_assert(idx >= 0 && idx < NIDX);
            cd_window_result_t r = cd_window_add(win, stripe, 0, COH, t, 1);
            if (r == CD_WIN_OK) {
                me->add_ok[idx]++;
                atomic_fetch_add_explicit(&adds_ok, 1, memory_order_relaxed);
            } else if (r == CD_WIN_LATE) {
                me->late++;
            } else {
                me->future++;
            }
            r = cd_window_observe(win, 0, COH, t, 10.0 + (double)(xorshift(&me->seed) % 500));
            if (r == CD_WIN_OK) me->obs_ok[idx]++;
        }
    }
    return NULL;
}

/*
 * The reader checks what concurrent reads must agree on. It anchors a fixed
 * range R = [E - 5 s, E) a few seconds behind the clock (writers still add
 * there: they write up to 5 s back) and its first two seconds P, and reads
 * sum(P), sum(R), hist(R).count, sum(P) again while the writers add. No add
 * is ever undone and R stays admitted until the clock passes E + 15 s, so
 * for one anchor every value is non-decreasing from read to read, and a
 * later read of R holds at least an earlier read of P (P inside R). A reader
 * that saw a bucket mid-claim (zeroed, or another second's counts) breaks
 * one of these. Readings taken once the clock is near the end of R's life
 * are discarded (the range would be clipped), and the reader re-anchors.
 */
static atomic_ullong reader_checks; /* comparisons made with non-zero values */

static void *reader_main(void *arg)
{
    (void)arg;
    static cd_hist_t h; /* one reader thread: static keeps 17 KB off its stack */
    uint64_t merges = 0;
    int64_t anchor = 0;
    uint64_t last_p = 0, last_r = 0, last_n = 0;
    while (!atomic_load_explicit(&done, memory_order_acquire)) {
        int64_t c = cd_window_clock(win);
        if (anchor == 0 || c >= anchor + 10000) {
            anchor = (c / 1000 - 3) * 1000;
            last_p = last_r = last_n = 0;
        }
        uint64_t p1 = cd_window_sum(win, 0, COH, anchor - 3000, 2000);
        uint64_t r = cd_window_sum(win, 0, COH, anchor, 5000);
        cd_window_hist(win, 0, COH, anchor, 5000, &h);
        uint64_t p2 = cd_window_sum(win, 0, COH, anchor - 3000, 2000);
        merges++;
        if (cd_window_clock(win) >= anchor + 14000) { /* R may have been clipped */
            anchor = 0;
            continue;
        }
        cr_assert_geq(r, p1, "sum(R) %llu < earlier sum(P) %llu", (unsigned long long)r,
                      (unsigned long long)p1);
        cr_assert_geq(p2, p1, "sum(P) went down: %llu then %llu", (unsigned long long)p1,
                      (unsigned long long)p2);
        cr_assert_geq(p1, last_p, "sum(P) went down across reads: %llu then %llu",
                      (unsigned long long)last_p, (unsigned long long)p1);
        cr_assert_geq(r, last_r, "sum(R) went down across reads: %llu then %llu",
                      (unsigned long long)last_r, (unsigned long long)r);
        cr_assert_geq(h.count, last_n, "hist(R) count went down: %llu then %llu",
                      (unsigned long long)last_n, (unsigned long long)h.count);
        if (last_r > 0 && p1 > 0 && last_n > 0)
            atomic_fetch_add_explicit(&reader_checks, 1, memory_order_relaxed);
        last_p = p2;
        last_r = r;
        last_n = h.count;
        (void)cd_window_sum(win, 0, COH, c, SPAN_S * 1000);
    }
    cr_assert_gt(merges, 0);
    return NULL;
}

static void rotation(int nwriters)
{
    cd_window_conf_t conf = {.nmetrics = 1,
                             .nhists = 1,
                             .resolution_ms = 1000,
                             .span_ms = SPAN_S * 1000,
                             .ahead_ms = AHEAD_MS,
                             .nstripes = 4};
    char err[256] = "";
    win = cd_window_new(&conf, err, sizeof(err));
    cr_assert_not_null(win, "%s", err);
    cd_window_set_clock(win, (int64_t)BASE_S * 1000);
    atomic_store(&done, false);
    atomic_store(&adds_ok, 0);
    atomic_store(&reader_checks, 0);
    memset(writers, 0, sizeof(writers));
    for (int i = 0; i < nwriters; i++) {
        writers[i].seed = 0x9E3779B97F4A7C15u * (uint64_t)(i + 1);
        cr_assert_eq(pthread_create(&writers[i].tid, NULL, writer_main, &writers[i]), 0);
    }
    pthread_t reader;
    cr_assert_eq(pthread_create(&reader, NULL, reader_main, NULL), 0);

    /* the clock thread (this one): one second per step, ~1 ms apart */
    for (int step = 1; step <= STEPS; step++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        cd_window_set_clock(win, ((int64_t)BASE_S + step) * 1000);
    }
    /* With the clock at its last step every add lands in the seconds checked
     * below; on a loaded machine the writers may have had little CPU while
     * the clock ran, so let them make at least 5000 more adds and the reader compare one
     * pair of readings (bounded). */
    unsigned long long mark = atomic_load_explicit(&adds_ok, memory_order_relaxed);
    for (int ms = 0; ms < 20000; ms++) {
        if (atomic_load_explicit(&adds_ok, memory_order_relaxed) >= mark + 5000 &&
            atomic_load_explicit(&reader_checks, memory_order_relaxed) > 0)
            break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    atomic_store_explicit(&done, true, memory_order_release);
    for (int i = 0; i < nwriters; i++)
        pthread_join(writers[i].tid, NULL);
    pthread_join(reader, NULL);

    /* every second still admitted: exact */
    int64_t end_s = BASE_S + STEPS;
    uint64_t checked = 0, ok_total = 0, late = 0, future = 0;
    for (int i = 0; i < nwriters; i++) {
        late += writers[i].late;
        future += writers[i].future;
        for (int j = 0; j < NIDX; j++)
            ok_total += writers[i].add_ok[j];
    }
    static cd_hist_t h;
    for (int64_t s = end_s - SPAN_S; s <= end_s + AHEAD_MS / 1000; s++) {
        int idx = (int)(s - (BASE_S - 10));
        uint64_t want = 0, want_obs = 0;
        for (int i = 0; i < nwriters; i++) {
            want += writers[i].add_ok[idx];
            want_obs += writers[i].obs_ok[idx];
        }
        cr_assert_eq(cd_window_sum(win, 0, COH, (s + 1) * 1000, 1000), want,
                     "second %lld: window %llu, writers %llu", (long long)s,
                     (unsigned long long)cd_window_sum(win, 0, COH, (s + 1) * 1000, 1000),
                     (unsigned long long)want);
        cd_window_hist(win, 0, COH, (s + 1) * 1000, 1000, &h);
        cr_assert_eq(h.count, want_obs, "second %lld hist", (long long)s);
        checked += want;
    }
    cr_assert_eq(future, 0);
    /* the reader compared non-empty readings of one range at least once */
    cr_assert_gt(atomic_load(&reader_checks), 0);
    cr_assert_gt(checked, 1000, "too few adds in the checked seconds (%llu of %llu)",
                 (unsigned long long)checked, (unsigned long long)ok_total);
    cr_log_info("rotation %d writers: %llu adds OK, %llu late, %llu checked exactly", nwriters,
                (unsigned long long)ok_total, (unsigned long long)late,
                (unsigned long long)checked);
    cd_window_destroy(win);
}

Test(concurrency, rotation_2_writers, .timeout = 60)
{
    rotation(2);
}
Test(concurrency, rotation_4_writers, .timeout = 60)
{
    rotation(4);
}
Test(concurrency, rotation_8_writers, .timeout = 60)
{
    rotation(8);
}

/* ---- claim hammer ------------------------------------------------------ */

#define HAMMER_A 3
#define HAMMER_B 5
#define ROUNDS 60
#define B_ADDS 300

static pthread_barrier_t round_start, round_end;
static _Atomic int64_t x_second, y_second; /* this round's seconds */
static atomic_int a_started;
static atomic_bool b_go;

static void *hammer_a(void *arg)
{
    int stripe = cd_window_stripe(win);
    (void)arg;
    for (int r = 0; r < ROUNDS; r++) {
        pthread_barrier_wait(&round_start);
        int64_t t = atomic_load(&x_second) * 1000 + 500;
        bool first = true;
        /* add to X until the clock has moved past it */
        for (int k = 0; k < 1000000; k++) {
            if (cd_window_add(win, stripe, 0, COH, t, 1) != CD_WIN_OK) break;
            if (first) {
                atomic_fetch_add(&a_started, 1);
                first = false;
            }
        }
        cr_assert_not(first, "round %d: writer A never got an add in", r);
        pthread_barrier_wait(&round_end);
    }
    return NULL;
}

static void *hammer_b(void *arg)
{
    int stripe = cd_window_stripe(win);
    (void)arg;
    for (int r = 0; r < ROUNDS; r++) {
        pthread_barrier_wait(&round_start);
        while (!atomic_load(&b_go))
            sched_yield();
        int64_t t = atomic_load(&y_second) * 1000 + 250;
        for (int k = 0; k < B_ADDS; k++)
            cr_assert_eq(cd_window_add(win, stripe, 0, COH, t, 1), CD_WIN_OK, "round %d", r);
        pthread_barrier_wait(&round_end);
    }
    return NULL;
}

Test(concurrency, claim_hammer, .timeout = 60)
{
    /* span 2 s, nothing ahead: a ring of 4 buckets */
    cd_window_conf_t conf = {.nmetrics = 1,
                             .nhists = 0,
                             .resolution_ms = 1000,
                             .span_ms = 2000,
                             .ahead_ms = 0,
                             .nstripes = 4};
    char err[256] = "";
    win = cd_window_new(&conf, err, sizeof(err));
    cr_assert_not_null(win, "%s", err);
    cr_assert_eq(pthread_barrier_init(&round_start, NULL, HAMMER_A + HAMMER_B + 1), 0);
    cr_assert_eq(pthread_barrier_init(&round_end, NULL, HAMMER_A + HAMMER_B + 1), 0);
    pthread_t th[HAMMER_A + HAMMER_B];
    for (int i = 0; i < HAMMER_A + HAMMER_B; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, i < HAMMER_A ? hammer_a : hammer_b, NULL), 0);

    for (int r = 0; r < ROUNDS; r++) {
        int64_t c = 100 + 8 * r;
        /* X = c - 2 is the oldest admitted second; Y = X + 4 shares its slot.
         * The clock then moves to c + 3: X is no longer admitted, Y = c + 2
         * is, and set_clock pre-claims only c + 3, so B claims Y itself. */
        atomic_store(&x_second, c - 2);
        atomic_store(&y_second, c + 2);
        atomic_store(&a_started, 0);
        atomic_store(&b_go, false);
        cd_window_set_clock(win, c * 1000);
        pthread_barrier_wait(&round_start);
        while (atomic_load(&a_started) < HAMMER_A)
            sched_yield();
        cd_window_set_clock(win, (c + 3) * 1000);
        atomic_store(&b_go, true);
        pthread_barrier_wait(&round_end);

        cr_assert_eq(cd_window_sum(win, 0, COH, (c + 3) * 1000, 1000), HAMMER_B * B_ADDS,
                     "round %d: second Y holds %llu, B added %d", r,
                     (unsigned long long)cd_window_sum(win, 0, COH, (c + 3) * 1000, 1000),
                     HAMMER_B * B_ADDS);
        cr_assert_eq(cd_window_sum(win, 0, COH, (c + 2) * 1000, 1000), 0, "round %d", r);
        cr_assert_eq(cd_window_sum(win, 0, COH, (c + 4) * 1000, 1000), 0, "round %d", r);
        /* X is gone for readers */
        cr_assert_eq(cd_window_sum(win, 0, COH, (c - 1) * 1000, 1000), 0, "round %d", r);
    }
    for (int i = 0; i < HAMMER_A + HAMMER_B; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&round_start);
    pthread_barrier_destroy(&round_end);
    cd_window_destroy(win);
}
