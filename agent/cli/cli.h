/*
 * cli.h - canaryd's subcommands. main.c only dispatches on argv[1]; each
 * subcommand parses its own options and returns the process exit status.
 */
#ifndef CANARYD_AGENT_CLI_H
#define CANARYD_AGENT_CLI_H

int cd_cli_replay(int argc, char **argv);       /* agent/source/replay.c */
int cd_cli_tail(int argc, char **argv);         /* agent/source/tail.c */
int cd_cli_check_config(int argc, char **argv); /* agent/cli/cli_check_config.c */
int cd_cli_generate(int argc, char **argv);     /* agent/cli/cli_generate.c */
int cd_cli_baseline(int argc, char **argv);     /* agent/cli/cli_baseline.c */
int cd_cli_run(int argc, char **argv);          /* agent/cli/cli_run.c */
int cd_cli_simulate(int argc, char **argv);     /* agent/cli/cli_simulate.c */
int cd_cli_report(int argc, char **argv);       /* agent/cli/cli_report.c */

/* Installs stop on SIGINT and SIGTERM and hup on SIGHUP (hup NULL: SIGHUP
 * keeps its disposition), no SA_RESTART, so a blocking read returns EINTR
 * and the loop sees the flag the handler set. agent/cli/signals.c; the
 * commands' main thread, before it starts any other. */
void cd_cli_on_signals(void (*stop)(int), void (*hup)(int));

#endif
