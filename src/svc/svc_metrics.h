/*
 * svc_metrics: a small thread-safe Prometheus registry. Counters, gauges and histograms are
 * registered once by name, help text and an optional fixed label set (the text between the
 * braces, e.g. `topic="scoring"`), updated from any thread, and rendered in the Prometheus
 * text exposition format (version 0.0.4) for GET /metrics.
 *
 * Ownership: the registry owns every metric it hands out; handles stay valid until
 * svc_metrics_free. Registering the same name and labels twice returns the same handle, so
 * per-partition series can be looked up lazily. svc_metrics_render returns a malloc'd string
 * the caller frees. Names and label texts are copied.
 */
#ifndef SVC_METRICS_H
#define SVC_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct svc_metrics svc_metrics;
typedef struct svc_metric svc_counter;
typedef struct svc_metric svc_gauge;
typedef struct svc_metric svc_histogram;

/* Limits: a render larger than this fails (returns NULL). */
#define SVC_METRICS_RENDER_MAX (4u << 20)
#define SVC_METRICS_BUCKETS_MAX 32

/* Returns a new empty registry, or NULL if out of memory. */
svc_metrics *svc_metrics_new(void);
/* Frees the registry and every metric in it. NULL is fine. */
void svc_metrics_free(svc_metrics *m);

/* Register (or look up) a series. labels may be NULL or "". Returns NULL if out of memory,
 * if the name is already registered with another type, or (histograms) if bounds are not
 * strictly increasing or more than SVC_METRICS_BUCKETS_MAX. Bounds are copied. */
svc_counter *svc_metrics_counter(svc_metrics *m, const char *name, const char *help,
                                 const char *labels);
svc_gauge *svc_metrics_gauge(svc_metrics *m, const char *name, const char *help,
                             const char *labels);
svc_histogram *svc_metrics_histogram(svc_metrics *m, const char *name, const char *help,
                                     const char *labels, const double *bounds,
                                     size_t n_bounds);

/* Updates. A NULL handle is ignored, so a failed registration never crashes a hot path. */
void svc_counter_add(svc_counter *c, uint64_t n);
void svc_gauge_set(svc_gauge *g, double v);
void svc_gauge_add(svc_gauge *g, double delta);
void svc_histogram_observe(svc_histogram *h, double v);

/* Reads (for tests and readiness logic). */
uint64_t svc_counter_value(const svc_counter *c);
double svc_gauge_value(const svc_gauge *g);
uint64_t svc_histogram_count(const svc_histogram *h);

/* Renders every series, grouped by name in registration order. Returns a malloc'd
 * NUL-terminated string (length in *len if len is not NULL), or NULL on failure. */
char *svc_metrics_render(svc_metrics *m, size_t *len);

#endif
