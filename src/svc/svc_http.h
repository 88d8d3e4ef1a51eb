/*
 * svc_http: the HTTP endpoint every service runs (libmicrohttpd):
 *   GET /healthz  200 "ok" while the process is alive
 *   GET /readyz   200 {"ready":true} or 503 {"ready":false,"reason":"..."} from the
 *                 service's readiness callback
 *   GET /metrics  the registry in Prometheus text format
 * A service with its own routes (the interface's page and API) mounts them as the route
 * fallback: every request for another path goes to it, with libmicrohttpd's access-handler
 * contract, so one server answers both and the three paths above are served once. Without
 * a fallback anything else is 404; methods other than GET/HEAD on the three paths are 405.
 *
 * Ownership: the server borrows the registry and every callback argument; they must outlive
 * svc_http_stop. The callbacks run on the HTTP threads (one internal thread, or one per
 * connection with thread_per_connection), so they must only touch thread-safe state.
 */
#ifndef SVC_HTTP_H
#define SVC_HTTP_H

#include <microhttpd.h>
#include <stddef.h>

#include "svc_metrics.h"

typedef struct svc_http svc_http;

/* Returns 1 if ready; else 0 with a short reason written into reason (NUL-terminated). */
typedef int (*svc_ready_fn)(void *arg, char *reason, size_t reason_size);

/* The route fallback: libmicrohttpd's MHD_AccessHandlerCallback with the server's route_arg
 * first (called once per request before its body, then per body chunk, then once more). */
typedef enum MHD_Result (*svc_http_route_fn)(void *arg, struct MHD_Connection *c,
                                             const char *url, const char *method,
                                             const char *upload_data,
                                             size_t *upload_data_size, void **con_cls);
/* Called when a request the fallback took ends (MHD_OPTION_NOTIFY_COMPLETED); *con_cls is
 * what the fallback left there. */
typedef void (*svc_http_done_fn)(void *arg, struct MHD_Connection *c, void **con_cls,
                                 enum MHD_RequestTerminationCode toe);
/* Called with each response svc_http itself makes (/healthz, /readyz, /metrics, 404, 405)
 * before it is queued: the place to add a service's own headers or count responses. */
typedef void (*svc_http_decorate_fn)(void *arg, struct MHD_Response *r, unsigned status);

typedef struct svc_http_config {
    const char *addr; /* IPv4 or IPv6 literal, or a host name (its first IPv4 address) */
    int port;         /* 0 picks a free port; see svc_http_port */
    svc_metrics *metrics;
    svc_ready_fn ready; /* NULL: always ready */
    void *ready_arg;
    svc_http_route_fn route;       /* NULL: no fallback (404) */
    svc_http_done_fn done;         /* NULL: nothing to clean up */
    svc_http_decorate_fn decorate; /* NULL: nothing added */
    void *route_arg;               /* passed to route, done and decorate */
    int thread_per_connection;     /* 1: a thread per connection (long requests), 0: one */
    unsigned connection_limit;     /* 0: 64 */
    unsigned connection_timeout;   /* seconds of inactivity; 0: 10 */
    size_t connection_memory_limit; /* bytes per connection; 0: libmicrohttpd's default */
} svc_http_config;

/* Starts listening. Returns NULL with errstr filled ("127.0.0.1:8002: cannot listen"). */
svc_http *svc_http_start_config(const svc_http_config *cfg, char *errstr, size_t errstr_size);

/* The health endpoint alone: svc_http_start_config with only these set. */
svc_http *svc_http_start(const char *addr, int port, svc_metrics *metrics, svc_ready_fn ready,
                         void *ready_arg, char *errstr, size_t errstr_size);

/* The port actually bound. */
int svc_http_port(const svc_http *h);

/* Stops accepting, waits for running requests, frees. NULL is fine. */
void svc_http_stop(svc_http *h);

#endif
