/*
 * common.h - small types shared by every layer of canaryd: cohorts, limits,
 * assertions that stay on in release builds.
 *
 * Nothing here allocates or does I/O.
 */
#ifndef CANARYD_COMMON_H
#define CANARYD_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* A cohort is the side of the release an event came from. */
typedef enum cd_cohort {
    CD_COHORT_STABLE = 0,
    CD_COHORT_CANARY = 1,
} cd_cohort_t;
#define CD_NCOHORTS 2

/* Returns "stable" or "canary". */
const char *cd_cohort_name(cd_cohort_t c);

/* Limits of the event model (sized for a catalog of EventBus types; raising
 * them costs memory in every window bucket). */
#define CD_MAX_TYPES 32   /* distinct event types counted per cohort */
#define CD_MAX_NUMERIC 4  /* numeric fields (histograms) per event */
#define CD_NAME_MAX 64    /* longest rule / type / field name, NUL included */

/*
 * Invariant checks that would otherwise corrupt a verdict. Unlike assert()
 * they are never compiled out (Varnish AN()/AZ()).
 */
#define CD_ASSERT(cond)                                                                  \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "canaryd: assertion failed: %s (%s:%d)\n", #cond, __FILE__, \
                    __LINE__);                                                           \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#endif
