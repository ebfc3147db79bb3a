/*
 * tests/tsan/criterion/logging.h - the TSan stand-in's <criterion/logging.h>:
 * cr_log_info and cr_log_warn are in criterion.h beside this file (see it for
 * why Criterion is replaced under TSan); this header only lets the suites
 * that include Criterion's logging header build unchanged.
 */
#ifndef CANARYD_TSAN_CRITERION_LOGGING_H
#define CANARYD_TSAN_CRITERION_LOGGING_H
#include "criterion.h"
#endif
