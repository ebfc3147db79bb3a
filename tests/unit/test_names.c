/* Names are part of the verdict log's contract: pin every spelling. */
#include <criterion/criterion.h>

#include "canaryd/rule.h"
#include "canaryd/verdict.h"

Test(names, cohorts)
{
    cr_assert_str_eq(cd_cohort_name(CD_COHORT_CANARY), "canary");
    cr_assert_str_eq(cd_cohort_name(CD_COHORT_STABLE), "stable");
}

Test(names, verdicts_and_states)
{
    const char *v[] = {"ANALYZING", "HEALTHY", "PROMOTE", "ROLLBACK", "ALERT"};
    for (int i = 0; i <= CD_VERDICT_ALERT; i++)
        cr_assert_str_eq(cd_verdict_kind_name((cd_verdict_kind_t)i), v[i]);
    const char *s[] = {"inactive", "pending", "firing", "resolved"};
    for (int i = 0; i <= CD_STATE_RESOLVED; i++)
        cr_assert_str_eq(cd_rule_state_name((cd_rule_state_t)i), s[i]);
}

Test(names, ops)
{
    cr_assert(cd_op_holds(CD_OP_GT, 2.0, 1.0));
    cr_assert_not(cd_op_holds(CD_OP_GT, 1.0, 1.0));
    cr_assert(cd_op_holds(CD_OP_GE, 1.0, 1.0));
    cr_assert(cd_op_holds(CD_OP_LT, 0.94, 0.95));
    cr_assert_not(cd_op_holds(CD_OP_LT, 0.95, 0.95));
    cr_assert(cd_op_holds(CD_OP_LE, 0.95, 0.95));
    cr_assert_str_eq(cd_op_name(CD_OP_LE), "<=");
    cr_assert_str_eq(cd_rule_kind_name(CD_RULE_FLATLINE), "flatline");
    cr_assert_str_eq(cd_action_name(CD_ACTION_ROLLBACK), "rollback");
}
