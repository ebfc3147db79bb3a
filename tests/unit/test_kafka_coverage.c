/*
 * test_kafka_coverage.c - the coverage decision (kafka_source.c,
 * "Coverage"): an agent judges only while its assignment covers every
 * partition of its topics; otherwise the reason names the counts and group.
 * Pure function, no broker: the live hold it drives is test_live_static.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "canaryd/kafka_source.h"

Test(coverage, all_assigned_is_covered)
{
    char why[200] = "untouched";
    cr_assert(cd_kafka_coverage(8, 8, "g", why, sizeof(why)));
    cr_assert_str_eq(why, "untouched");
    /* a shrinking topic's stale count never holds a full assignment */
    cr_assert(cd_kafka_coverage(9, 8, "g", why, sizeof(why)));
}

Test(coverage, unknown_count_holds_nothing)
{
    cr_assert(cd_kafka_coverage(4, -1, "g", NULL, 0));
    cr_assert(cd_kafka_coverage(4, 0, "g", NULL, 0));
}

Test(coverage, partial_assignment_is_held_with_reason)
{
    char why[200];
    cr_assert_not(cd_kafka_coverage(4, 8, "canaryd-a", why, sizeof(why)));
    cr_assert_str_eq(why, "4 of 8 partitions assigned: another member of group canaryd-a holds "
                          "the rest (a previous process's session, until it expires?)");
    cr_assert_not(cd_kafka_coverage(7, 8, "g", NULL, 0)); /* no reason wanted */
}
