/*
 * svc_signal: graceful shutdown on SIGTERM/SIGINT. The handler only sets a flag; the
 * service's main loop polls svc_stop_requested() and shuts down in order (stop consuming,
 * finish or abort the open batch, flush, commit, close). A second signal exits at once with
 * status 128+signal. SIGPIPE is ignored so a closed socket is an error, not a death.
 */
#ifndef SVC_SIGNAL_H
#define SVC_SIGNAL_H

#include <signal.h>

/* Installs the handlers. Returns 0, or -1 if sigaction failed. */
int svc_signal_install(void);

/* 1 once SIGTERM or SIGINT has arrived. */
int svc_stop_requested(void);

/* The flag itself (for code that wants to poll it without a call). */
extern volatile sig_atomic_t svc_stop_flag;

/* Sleeps ms milliseconds in steps of at most 50 ms, returning early once *stop is set (pass
 * &svc_stop_flag). Returns 1 if *stop is set, else 0. */
int svc_sleep_ms(long ms, volatile sig_atomic_t *stop);

/* The monotonic clock every service measures waits and durations with, in seconds. */
double svc_now_s(void);

#endif
