/*
 * http_receiver.h - a test HTTP server (libmicrohttpd) on a free loopback
 * port that records every request (method, path, headers, body, arrival
 * time) and answers from a script of statuses, headers and delays, then
 * 200 "ok" once the script is used up.
 *
 * Compiled into the test binaries that need it with #include
 * "http_receiver.c" (only tests/.../test_*.c files become binaries).
 *
 * Threading: MHD answers on its own threads; every function here may be
 * called from the test's thread at any time (one mutex guards the record).
 */
#ifndef CANARYD_TEST_HTTP_RECEIVER_H
#define CANARYD_TEST_HTTP_RECEIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RX_MAX_REQUESTS 256
#define RX_MAX_SCRIPT 32

typedef struct rx_request {
    char method[16];
    char path[512]; /* path and query as sent */
    char *headers;  /* "Name: value\n" lines, as received (malloc'ed) */
    char *body;     /* NUL-terminated (malloc'ed) */
    size_t body_len;
    int64_t at_ms; /* CLOCK_MONOTONIC ms of arrival */
    int status;    /* what was answered */
} rx_request_t;

typedef struct rx_answer {
    int status;
    const char *header; /* one "Name: value" or NULL (e.g. "Retry-After: 2") */
    const char *body;   /* NULL: "" */
    int delay_ms;       /* before answering */
} rx_answer_t;

typedef struct rx rx_t;

/* Starts on 127.0.0.1:port (0: a free port). NULL on failure. */
rx_t *rx_start(uint16_t port);
uint16_t rx_port(const rx_t *r);
/* Stops listening (the port is closed: connections are refused) / listens
 * again on the same port; the record is kept. */
void rx_pause(rx_t *r);
bool rx_resume(rx_t *r);
/* Appends answers to the script (used in order, one per request). */
void rx_script(rx_t *r, const rx_answer_t *a, int n);
/* Waits until at least n requests were answered or timeout_ms passed. */
bool rx_wait(rx_t *r, int n, int timeout_ms);
int rx_count(rx_t *r);
/* A copy of request i (free with rx_request_free). */
rx_request_t rx_get(rx_t *r, int i);
void rx_request_free(rx_request_t *q);
/* Value of a header of request q (case-insensitive name) into out; false if absent. */
bool rx_header(const rx_request_t *q, const char *name, char *out, size_t size);
void rx_stop(rx_t *r);

#endif
