/*
 * rdkafka_tsan.c - what librdkafka needs to run under ThreadSanitizer;
 * linked into every executable of the TSan build only (CMakeLists.txt:
 * CANARYD_TSAN_EXTRA): the agent, the tools and the test binaries.
 *
 * 1. glibc's C11 threads (thrd_create, mtx_*, cnd_*, call_once) routed
 *    through the pthread functions. librdkafka (Debian 12: 2.0.2) creates
 *    its threads with thrd_create and locks with mtx_lock / cnd_wait, the
 *    C11 API of glibc >= 2.34. GCC 12's libtsan intercepts pthread_create
 *    but not thrd_create, which calls glibc's internal pthread_create
 *    directly: the thread starts without TSan's per-thread state and its
 *    first intercepted call dies (SEGV at a small address such as 0xc38 or
 *    0x1c78, before any test code ran; reproduced with a 10-line program
 *    creating a mock cluster). Its mtx_lock / cnd_wait are not intercepted
 *    either, so TSan would not see the locks that order librdkafka's queues
 *    (a message a broker thread enqueues, a worker polls). Defined in the
 *    executable, these take precedence over glibc's for every library (the
 *    dynamic linker binds librdkafka's thrd_create@GLIBC_2.34 to the
 *    executable's unversioned definition), and the pthread calls they make
 *    are TSan's interceptors.
 *
 * 2. Suppressions (__tsan_default_suppressions, read at start-up).
 *    librdkafka is not instrumented and hands objects between its threads
 *    with its own atomics (reference counts), which TSan cannot see:
 *    - called_from_lib:librdkafka.so.1: TSan ignores the memory accesses
 *      of interceptors (free, memcpy, ...) called from inside librdkafka,
 *      not its locks. Without it, a broker thread's free() of a payload a
 *      worker had decoded (its last reference dropped there) is reported
 *      as a race with the worker's read in cd_decode.
 *    - race:^mtx_lock$ and the other C11 functions above: a lock that one
 *      librdkafka thread created (mtx_init) and another takes, the object
 *      holding it handed over by a reference count, is reported as a race
 *      on the mutex itself (seen in test_live's small-prefetch test, main
 *      thread locking a mutex a librdkafka thread had just initialised).
 *      canaryd calls none of these functions (it uses pthread_* directly),
 *      so such a stack is always an access to one of librdkafka's locks.
 *    canaryd's own accesses, and its callbacks running on librdkafka's
 *    threads, are still checked.
 *
 * Data structure: none; glibc's thrd_t is a pthread_t and mtx_t / cnd_t /
 * once_flag have the size of their pthread counterparts (checked below),
 * so each call casts and forwards. A thread's start function and argument
 * travel in a small heap block to a trampoline that adapts int to void *.
 * Threading: these are the thread primitives themselves. Trade-off: TSan
 * builds only; plain and ASan builds use glibc's own.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

_Static_assert(sizeof(thrd_t) == sizeof(pthread_t), "thrd_t is a pthread_t");
_Static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t), "mtx_t is a pthread_mutex_t");
_Static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t), "cnd_t is a pthread_cond_t");
_Static_assert(sizeof(once_flag) == sizeof(pthread_once_t), "once_flag is a pthread_once_t");

struct cd_tsan_start {
    thrd_start_t fn;
    void *arg;
};

static void *cd_tsan_trampoline(void *a)
{
    struct cd_tsan_start s = *(struct cd_tsan_start *)a;
    free(a);
    return (void *)(intptr_t)s.fn(s.arg);
}

static int cd_tsan_result(int e)
{
    return e == 0 ? thrd_success : e == ENOMEM ? thrd_nomem : e == ETIMEDOUT ? thrd_timedout
                                 : e == EBUSY ? thrd_busy : thrd_error;
}

int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg)
{
    struct cd_tsan_start *s = malloc(sizeof(*s));
    if (!s) return thrd_nomem;
    s->fn = fn;
    s->arg = arg;
    int e = pthread_create((pthread_t *)thr, NULL, cd_tsan_trampoline, s);
    if (e) free(s);
    return cd_tsan_result(e);
}

int thrd_join(thrd_t thr, int *res)
{
    void *r;
    int e = pthread_join((pthread_t)thr, &r);
    if (!e && res) *res = (int)(intptr_t)r;
    return cd_tsan_result(e);
}

int thrd_detach(thrd_t thr)
{
    return cd_tsan_result(pthread_detach((pthread_t)thr));
}

int mtx_init(mtx_t *m, int type)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    if (type & mtx_recursive) pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    int e = pthread_mutex_init((pthread_mutex_t *)m, &a);
    pthread_mutexattr_destroy(&a);
    return cd_tsan_result(e);
}

int mtx_lock(mtx_t *m)
{
    return cd_tsan_result(pthread_mutex_lock((pthread_mutex_t *)m));
}

int mtx_trylock(mtx_t *m)
{
    return cd_tsan_result(pthread_mutex_trylock((pthread_mutex_t *)m));
}

int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict t)
{
    return cd_tsan_result(pthread_mutex_timedlock((pthread_mutex_t *)m, t));
}

int mtx_unlock(mtx_t *m)
{
    return cd_tsan_result(pthread_mutex_unlock((pthread_mutex_t *)m));
}

void mtx_destroy(mtx_t *m)
{
    pthread_mutex_destroy((pthread_mutex_t *)m);
}

int cnd_init(cnd_t *c)
{
    return cd_tsan_result(pthread_cond_init((pthread_cond_t *)c, NULL));
}

int cnd_signal(cnd_t *c)
{
    return cd_tsan_result(pthread_cond_signal((pthread_cond_t *)c));
}

int cnd_broadcast(cnd_t *c)
{
    return cd_tsan_result(pthread_cond_broadcast((pthread_cond_t *)c));
}

int cnd_wait(cnd_t *c, mtx_t *m)
{
    return cd_tsan_result(pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m));
}

/* t is absolute CLOCK_REALTIME, as for a default pthread condition */
int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict t)
{
    return cd_tsan_result(pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, t));
}

void cnd_destroy(cnd_t *c)
{
    pthread_cond_destroy((pthread_cond_t *)c);
}

void call_once(once_flag *flag, void (*fn)(void))
{
    pthread_once((pthread_once_t *)flag, fn);
}

/* Read by the TSan runtime at start-up, before main (see 2. above). */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "called_from_lib:librdkafka.so.1\n"
           "race:^mtx_init$\nrace:^mtx_lock$\nrace:^mtx_trylock$\nrace:^mtx_timedlock$\n"
           "race:^mtx_unlock$\nrace:^mtx_destroy$\n"
           "race:^cnd_init$\nrace:^cnd_signal$\nrace:^cnd_broadcast$\nrace:^cnd_wait$\n"
           "race:^cnd_timedwait$\nrace:^cnd_destroy$\n";
}
