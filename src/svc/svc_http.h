/*
 * svc_http: the health and metrics HTTP endpoint every service runs (libmicrohttpd, one
 * internal thread):
 *   GET /healthz  200 "ok" while the process is alive
 *   GET /readyz   200 {"ready":true} or 503 {"ready":false,"reason":"..."} from the
 *                 service's readiness callback
 *   GET /metrics  the registry in Prometheus text format
 * Anything else is 404; methods other than GET/HEAD are 405.
 *
 * Ownership: the server borrows the registry and the callback argument; both must outlive
 * svc_http_stop. The readiness callback runs on the HTTP thread, so it must only read
 * thread-safe state (atomics, metrics).
 */
#ifndef SVC_HTTP_H
#define SVC_HTTP_H

#include <stddef.h>

#include "svc_metrics.h"

typedef struct svc_http svc_http;

/* Returns 1 if ready; else 0 with a short reason written into reason (NUL-terminated). */
typedef int (*svc_ready_fn)(void *arg, char *reason, size_t reason_size);

/* Starts listening on addr:port (an IPv4 literal such as 127.0.0.1 or 0.0.0.0, or a host
 * name, which resolves to its first IPv4 address). ready may be NULL (always ready).
 * Returns NULL with errstr filled ("127.0.0.1:8002: cannot listen").
 * Port 0 picks a free port; see svc_http_port. */
svc_http *svc_http_start(const char *addr, int port, svc_metrics *metrics, svc_ready_fn ready,
                         void *ready_arg, char *errstr, size_t errstr_size);

/* The port actually bound. */
int svc_http_port(const svc_http *h);

/* Stops the server and frees it. NULL is fine. */
void svc_http_stop(svc_http *h);

#endif
