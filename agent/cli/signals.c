/*
 * signals.c - the commands' signal handlers installed one way
 * (cd_cli_on_signals, cli.h): replay, tail, run and simulate each stop on
 * SIGINT / SIGTERM and some reopen their files on SIGHUP. The handlers
 * only set a flag; no SA_RESTART, so a blocking read or sleep returns
 * early and the command's loop sees the flag at once.
 *
 * In the core library (not main.c) because replay.c and tail.c, which the
 * tests link, call it. Main thread, at start-up.
 */
#include <signal.h>
#include <string.h>

#include "cli.h"

void cd_cli_on_signals(void (*stop)(int), void (*hup)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (hup) {
        sa.sa_handler = hup;
        sigaction(SIGHUP, &sa, NULL);
    }
}
