/*
 * test_scenario_property.c - a property of config/sop.json on generated
 * streams: no false rollback. Over 30 seeds (101-130) each of the healthy
 * stream, the fleet-wide login spike, the fleet-wide traffic drop, payment
 * success at 96.5 % throughout and a 3-minute error blip (x3 from 4m), each
 * with 2 % garbage and 3 s of disorder at once, `canaryd generate | canaryd
 * replay --config config/sop.json -` never rolls back: not the silence
 * guard (the fleet drops together), not the outage fast paths, not the slow
 * rules. (test_seq_seeds holds the same property for seeds 1-20 of the
 * healthy, 96.5 % and blip streams at 600 requests/s, without garbage.)
 * Each run must also be judged (HEALTHY at some point), count every kind of
 * garbage, and drop no event as late. A suite of its own (not beside the
 * scenario suite): ctest runs the two side by side.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "replay_pipe.h"

#define SOP CANARYD_SOURCE_DIR "/config/sop.json"

/* 10 minutes of each stream cover the first judgement (~1m37s), the onset
 * at 4m, the fleet-wide effects' first 6 minutes and the blip (4m-7m) plus
 * the 3 minutes in which a blip held "for 5m" from its onset would fire.
 *
 * No exception is listed: fleet-drop seed 105 was rolled back by
 * login-failure-spike at 12:06:17 (canary 19/195 = 9.74 % vs stable
 * 185/3869 = 4.78 %, z 3.10 >= 3) while the spike rule decided on the
 * two-proportion z statistic, whose normal approximation is not calibrated
 * at ~200 samples; Fisher's exact test gives p 0.0037 > 0.00135 there
 * (tests/unit/test_stats.c, fisher_greater_fleet_drop_seed_105). */

/* The name is held inline: Criterion's workers may not share the runner's
 * address space, so a pointer to a literal would not survive the copy. */
typedef struct prop_param {
    char scenario[32];
    int seed;
} prop_param_t;

#define PROP_SEEDS 30
#define PROP_SCENARIOS 5

static void free_prop_params(struct criterion_test_params *crp)
{
    cr_free(crp->params);
}

ParameterizedTestParameters(property, never_rolls_back)
{
    static const char *const names[PROP_SCENARIOS] = {"healthy", "login-spike-fleet", "fleet-drop",
                                                      "payment-96", "error-blip"};
    prop_param_t *params = cr_malloc(sizeof(prop_param_t) * PROP_SCENARIOS * PROP_SEEDS);
    for (int i = 0; i < PROP_SCENARIOS; i++)
        for (int s = 0; s < PROP_SEEDS; s++) {
            prop_param_t *q = &params[i * PROP_SEEDS + s];
            snprintf(q->scenario, sizeof q->scenario, "%s", names[i]);
            q->seed = 101 + s;
        }
    return cr_make_param_array(prop_param_t, params, PROP_SCENARIOS * PROP_SEEDS, free_prop_params);
}

ParameterizedTest(prop_param_t *p, property, never_rolls_back, .timeout = 300)
{
    char seed[16];
    snprintf(seed, sizeof seed, "%d", p->seed);
    /* payment-96 at 96.5 %: the stream (the scenario's default is 96 %). */
    const char *args[] = {"--scenario",    p->scenario, "--seed", seed,         "--duration",
                          "10m",           "--garbage", "0.02",   "--disorder", "3s",
                          "--pay-success", "0.965",     NULL};
    if (strcmp(p->scenario, "payment-96") != 0) args[10] = NULL;
    run_out_t r;
    run_pipe(args, SOP, &r);
    cr_assert_eq(r.gen_status, 0, "%s seed %d: generate: %s", p->scenario, p->seed, r.gen_err);
    const char *rb = strstr(r.out, "\"verdict\":\"ROLLBACK\"");
    if (rb) {
        const char *line = rb;
        while (line > r.out && line[-1] != '\n')
            line--;
        const char *end = strchr(rb, '\n');
        cr_assert_fail("%s seed %d rolled back: %.*s", p->scenario, p->seed,
                       (int)(end ? end - line : 400), line);
    }
    cr_assert_neq(r.replay_status, 20, "%s seed %d: exit 20", p->scenario, p->seed);
    cr_assert(r.replay_status >= 10, "%s seed %d: exit %d\n%s", p->scenario, p->seed,
              r.replay_status, r.err);
    /* The run judged something: every one of these streams is HEALTHY at
     * some point, and the garbage was read and rejected, not lost. */
    cr_assert(strstr(r.out, "\"verdict\":\"HEALTHY\"") != NULL, "%s seed %d: never HEALTHY:\n%s",
              p->scenario, p->seed, r.err);
    check_bad_counts(p->scenario, r.err);
    cr_assert_eq(summary_count(r.err, "\n  late "), 0, "%s seed %d:\n%s", p->scenario, p->seed,
                 r.err);
    run_free(&r);
}
