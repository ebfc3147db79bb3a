/*
 * main.c - canaryd's entry point: dispatches on the subcommand. Each
 * subcommand parses its own options and returns the process exit status
 * (see cli.h); `canaryd help` lists them all with their exit statuses.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "canaryd %s - watches a canary release through its event stream\n"
            "\n"
            "usage: canaryd COMMAND [options]\n"
            "\n"
            "  replay --config FILE [--verdict-log FILE] [--pretty] [--speed N]\n"
            "         [--max-line BYTES] EVENTS.jsonl|-\n"
            "      Replays recorded events in event time; one verdict record per line on\n"
            "      stdout (JSON, or human with --pretty) or appended to --verdict-log.\n"
            "      Summary on stderr. Exit: 0 PROMOTE, 10 HEALTHY, 11 ANALYZING,\n"
            "      12 ALERT (a rule firing at the end, not promoted), 20 ROLLBACK,\n"
            "      1 I/O error, 2 usage or config error, 130 interrupted.\n"
            "\n"
            "  run --config FILE [--brokers B] [--topic T] [--group G] [--threads N]\n"
            "      [--verdict-log FILE] [--pretty] [--exit-after-events N] [--exit-when-idle D]\n"
            "      The live agent: consumes events from Kafka in a consumer group, evaluates\n"
            "      the rules on the wall clock, writes verdict records like replay. SIGHUP\n"
            "      reopens the verdict log. Exit: 0 stopped (SIGINT/SIGTERM or an --exit-*\n"
            "      condition), 1 I/O or fatal Kafka error, 2 usage or config error.\n"
            "\n"
            "  report --config FILE [--output FILE] EVENTS.jsonl|- | --from-log VERDICTS\n"
            "      Writes one self-contained HTML file: the verdict timeline, the input's\n"
            "      summary and a chart per rule (canary, stable, threshold, pending and\n"
            "      firing spans, verdicts with reasons). Exit: 0 written, 1 I/O, 2 usage.\n"
            "\n"
            "  tail [-n N|all] [--no-follow] FILE\n"
            "      Prints the last N records of a verdict log (default 10, 0 = none) in the\n"
            "      human format and follows it through rotation and truncation.\n"
            "      Exit: 0 done or interrupted (SIGINT/SIGTERM), 1 unreadable file, 2 usage.\n"
            "\n"
            "  baseline --config FILE [--window D|all] [--output FILE] EVENTS.jsonl|-\n"
            "      Captures the stable cohort's value of every relative rule's signal from\n"
            "      a recorded stream (each rule's window ending at the last event, or the\n"
            "      last D, or all of it) as the file baseline_file loads; to stdout or\n"
            "      atomically to --output. Exit: 0 written, 1 I/O error, 2 usage or config\n"
            "      error, 3 no rule had enough stable samples (nothing written).\n"
            "\n"
            "  check-config [--quiet] FILE\n"
            "      Validates a configuration; prints a summary (exit 0) or every problem\n"
            "      (exit 2, also for usage errors).\n"
            "\n"
            "  generate --scenario NAME [options]\n"
            "      Writes a synthetic event stream (JSONL) to stdout. Exit: 0 done,\n"
            "      1 write error, 2 usage (see `canaryd generate --help`).\n"
            "\n"
            "  simulate --brokers B --topic T --scenario NAME [options]\n"
            "      Produces simulated events with current timestamps to Kafka, live, each\n"
            "      when its time comes; summary on stderr. Exit: 0 all delivered, 1 some\n"
            "      not delivered, 2 usage (see `canaryd simulate --help`).\n"
            "\n"
            "  version      prints the version (exit 0)\n"
            "  help         prints this text (exit 0)\n"
            "\n"
            "Environment: CANARYD_LOG_LEVEL=error|warn|info|debug (default info) for the\n"
            "diagnostics on stderr; NO_COLOR disables colour in the human format.\n"
            "Unknown commands exit 2.\n",
            CANARYD_VERSION);
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;

    if (!cmd) {
        usage(stderr);
        return 2;
    }
    if (strcmp(cmd, "replay") == 0) return cd_cli_replay(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0) return cd_cli_run(argc - 1, argv + 1);
    if (strcmp(cmd, "tail") == 0) return cd_cli_tail(argc - 1, argv + 1);
    if (strcmp(cmd, "check-config") == 0) return cd_cli_check_config(argc - 1, argv + 1);
    if (strcmp(cmd, "generate") == 0) return cd_cli_generate(argc - 1, argv + 1);
    if (strcmp(cmd, "baseline") == 0) return cd_cli_baseline(argc - 1, argv + 1);
    if (strcmp(cmd, "simulate") == 0) return cd_cli_simulate(argc - 1, argv + 1);
    if (strcmp(cmd, "report") == 0) return cd_cli_report(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("canaryd %s\n", CANARYD_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr,
            "canaryd: unknown command \"%s\"; accepted: replay, run, tail, check-config, "
            "generate, simulate, baseline, report, version, help\n\n",
            cmd);
    usage(stderr);
    return 2;
}
