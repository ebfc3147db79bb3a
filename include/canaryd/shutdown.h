/*
 * shutdown.h - canaryd run's shutdown budget, every share of it named in one
 * place: from SIGTERM (or --exit-after-events / --exit-when-idle) to exit
 * within CD_SHUTDOWN_BUDGET_MS (docs/operations.md promises 5 s; a pod's
 * grace period is longer, so the agent is never SIGKILLed mid-commit).
 *
 *   CD_STOP_KAFKA_MS          the Kafka source's stop (cd_kafka_source_stop):
 *                             commit what was counted, leave the group
 *     CD_STOP_COMMIT_END_MS     its final commits are retried until this long
 *                               before its end (the rest is for leaving)
 *     CD_STOP_CLOSE_MS          workers wait for each other's commits until
 *                               this long before its end (the rest is for
 *                               rd_kafka_consumer_close)
 *   CD_STOP_SINKS_MS          the dispatcher's drain of queued deliveries
 *   CD_KAFKA_DESTROY_WAIT_MS  librdkafka's handles destroyed, else abandoned
 *   CD_SHUTDOWN_SLACK_MS      everything else: the HTTP server's stop, the
 *                             last evaluation, the summary, --report, freeing
 *
 * Each share is an upper bound reached only when something is down (the
 * broker, a sink): normally the stop takes tens of ms. The slack is what
 * the unbounded steps get in that worst case; the static assertion below
 * keeps the shares from outgrowing the budget again (they once added up to
 * exactly 5000 ms, leaving the rest nothing).
 */
#ifndef CANARYD_SHUTDOWN_H
#define CANARYD_SHUTDOWN_H

#define CD_SHUTDOWN_BUDGET_MS 5000
#define CD_STOP_KAFKA_MS 3000
#define CD_STOP_COMMIT_END_MS 1500
#define CD_STOP_CLOSE_MS 1000
#define CD_STOP_SINKS_MS 1000
#define CD_KAFKA_DESTROY_WAIT_MS 500
#define CD_SHUTDOWN_SLACK_MS 500

_Static_assert(CD_STOP_KAFKA_MS + CD_STOP_SINKS_MS + CD_KAFKA_DESTROY_WAIT_MS +
                       CD_SHUTDOWN_SLACK_MS ==
                   CD_SHUTDOWN_BUDGET_MS,
               "the shutdown shares must add up to the budget");
_Static_assert(CD_STOP_CLOSE_MS < CD_STOP_COMMIT_END_MS && CD_STOP_COMMIT_END_MS < CD_STOP_KAFKA_MS,
               "commit, then wait for the other workers, then close");

#endif
