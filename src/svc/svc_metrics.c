#include "svc_metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { M_COUNTER, M_GAUGE, M_HISTOGRAM } metric_type;

struct svc_metric {
    struct svc_metric *next;
    svc_metrics *owner;
    metric_type type;
    char *name;
    char *help;
    char *labels;
    _Atomic uint64_t counter;
    double gauge;                                  /* under owner->lock */
    size_t n_bounds;
    double bounds[SVC_METRICS_BUCKETS_MAX];
    uint64_t buckets[SVC_METRICS_BUCKETS_MAX + 1]; /* last one is +Inf; under owner->lock */
    double sum;
    uint64_t count;
};

struct svc_metrics {
    pthread_mutex_t lock;
    struct svc_metric *head;
    struct svc_metric *tail;
};

svc_metrics *svc_metrics_new(void)
{
    svc_metrics *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

void svc_metrics_free(svc_metrics *m)
{
    if (m == NULL)
        return;
    struct svc_metric *it = m->head;
    while (it != NULL) {
        struct svc_metric *next = it->next;
        free(it->name);
        free(it->help);
        free(it->labels);
        free(it);
        it = next;
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static struct svc_metric *reg(svc_metrics *m, metric_type type, const char *name,
                              const char *help, const char *labels, const double *bounds,
                              size_t n_bounds)
{
    struct svc_metric *found = NULL;
    struct svc_metric *x = NULL;
    if (m == NULL || name == NULL)
        return NULL;
    if (labels == NULL)
        labels = "";
    if (type == M_HISTOGRAM) {
        if (n_bounds > SVC_METRICS_BUCKETS_MAX)
            return NULL;
        for (size_t i = 1; i < n_bounds; i++)
            if (!(bounds[i] > bounds[i - 1]))
                return NULL;
    }
    pthread_mutex_lock(&m->lock);
    for (struct svc_metric *it = m->head; it != NULL; it = it->next) {
        if (strcmp(it->name, name) != 0)
            continue;
        if (it->type != type)
            goto out; /* same name, other type: refuse */
        if (strcmp(it->labels, labels) == 0) {
            found = it;
            goto out;
        }
    }
    x = calloc(1, sizeof *x);
    if (x == NULL)
        goto out;
    x->owner = m;
    x->type = type;
    x->name = strdup(name);
    x->help = strdup(help != NULL ? help : "");
    x->labels = strdup(labels);
    if (x->name == NULL || x->help == NULL || x->labels == NULL) {
        free(x->name);
        free(x->help);
        free(x->labels);
        free(x);
        x = NULL;
        goto out;
    }
    atomic_init(&x->counter, 0);
    if (type == M_HISTOGRAM) {
        x->n_bounds = n_bounds;
        if (n_bounds > 0)
            memcpy(x->bounds, bounds, n_bounds * sizeof bounds[0]);
    }
    if (m->tail != NULL)
        m->tail->next = x;
    else
        m->head = x;
    m->tail = x;
    found = x;
out:
    pthread_mutex_unlock(&m->lock);
    return found;
}

svc_counter *svc_metrics_counter(svc_metrics *m, const char *name, const char *help,
                                 const char *labels)
{
    return reg(m, M_COUNTER, name, help, labels, NULL, 0);
}

svc_gauge *svc_metrics_gauge(svc_metrics *m, const char *name, const char *help,
                             const char *labels)
{
    return reg(m, M_GAUGE, name, help, labels, NULL, 0);
}

svc_histogram *svc_metrics_histogram(svc_metrics *m, const char *name, const char *help,
                                     const char *labels, const double *bounds, size_t n_bounds)
{
    return reg(m, M_HISTOGRAM, name, help, labels, bounds, n_bounds);
}

void svc_counter_add(svc_counter *c, uint64_t n)
{
    if (c != NULL)
        atomic_fetch_add_explicit(&c->counter, n, memory_order_relaxed);
}

void svc_gauge_set(svc_gauge *g, double v)
{
    if (g == NULL)
        return;
    pthread_mutex_lock(&g->owner->lock);
    g->gauge = v;
    pthread_mutex_unlock(&g->owner->lock);
}

void svc_gauge_add(svc_gauge *g, double delta)
{
    if (g == NULL)
        return;
    pthread_mutex_lock(&g->owner->lock);
    g->gauge += delta;
    pthread_mutex_unlock(&g->owner->lock);
}

void svc_histogram_observe(svc_histogram *h, double v)
{
    if (h == NULL)
        return;
    size_t i = 0;
    while (i < h->n_bounds && v > h->bounds[i])
        i++;
    pthread_mutex_lock(&h->owner->lock);
    h->buckets[i]++;
    h->sum += v;
    h->count++;
    pthread_mutex_unlock(&h->owner->lock);
}

uint64_t svc_counter_value(const svc_counter *c)
{
    return c == NULL ? 0 : atomic_load_explicit(&((svc_counter *)c)->counter,
                                                 memory_order_relaxed);
}

double svc_gauge_value(const svc_gauge *g)
{
    if (g == NULL)
        return 0.0;
    pthread_mutex_lock(&g->owner->lock);
    double v = g->gauge;
    pthread_mutex_unlock(&g->owner->lock);
    return v;
}

uint64_t svc_histogram_count(const svc_histogram *h)
{
    if (h == NULL)
        return 0;
    pthread_mutex_lock(&h->owner->lock);
    uint64_t v = h->count;
    pthread_mutex_unlock(&h->owner->lock);
    return v;
}

/* A growable output buffer with a hard cap. */
typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} outbuf;

static void out_printf(outbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(outbuf *o, const char *fmt, ...)
{
    if (o->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = 1;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t want = o->cap * 2;
        if (want > SVC_METRICS_RENDER_MAX || o->len + (size_t)n + 1 > want) {
            if (o->len + (size_t)n + 1 > SVC_METRICS_RENDER_MAX) {
                o->failed = 1;
                return;
            }
            want = SVC_METRICS_RENDER_MAX;
        }
        char *np = realloc(o->p, want);
        if (np == NULL) {
            o->failed = 1;
            return;
        }
        o->p = np;
        o->cap = want;
    }
}

/* Prometheus numbers: +Inf/-Inf/NaN spelled its way, otherwise shortest round-trip. */
static void fmt_num(char *buf, size_t size, double v)
{
    if (isnan(v))
        snprintf(buf, size, "NaN");
    else if (isinf(v))
        snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
    else {
        /* Shortest of %.15g / %.17g that reads back as v ("0.005", not "0.0050000000000000001"). */
        snprintf(buf, size, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, size, "%.17g", v);
    }
}

static void render_one(outbuf *o, const struct svc_metric *x)
{
    char num[64];
    const char *lb = x->labels[0] != '\0' ? "{" : "";
    const char *rb = x->labels[0] != '\0' ? "}" : "";
    switch (x->type) {
    case M_COUNTER:
        out_printf(o, "%s%s%s%s %llu\n", x->name, lb, x->labels, rb,
                   (unsigned long long)atomic_load(&((struct svc_metric *)x)->counter));
        break;
    case M_GAUGE:
        fmt_num(num, sizeof num, x->gauge);
        out_printf(o, "%s%s%s%s %s\n", x->name, lb, x->labels, rb, num);
        break;
    case M_HISTOGRAM: {
        const char *sep = x->labels[0] != '\0' ? "," : "";
        uint64_t cum = 0;
        for (size_t i = 0; i <= x->n_bounds; i++) {
            cum += x->buckets[i];
            if (i < x->n_bounds)
                fmt_num(num, sizeof num, x->bounds[i]);
            else
                snprintf(num, sizeof num, "+Inf");
            out_printf(o, "%s_bucket{%s%sle=\"%s\"} %llu\n", x->name, x->labels, sep, num,
                       (unsigned long long)cum);
        }
        fmt_num(num, sizeof num, x->sum);
        out_printf(o, "%s_sum%s%s%s %s\n", x->name, lb, x->labels, rb, num);
        out_printf(o, "%s_count%s%s%s %llu\n", x->name, lb, x->labels, rb,
                   (unsigned long long)x->count);
        break;
    }
    }
}

char *svc_metrics_render(svc_metrics *m, size_t *len)
{
    static const char *type_names[] = {"counter", "gauge", "histogram"};
    outbuf o = {malloc(4096), 0, 4096, 0};
    if (o.p == NULL)
        return NULL;
    o.p[0] = '\0';
    pthread_mutex_lock(&m->lock);
    for (struct svc_metric *it = m->head; it != NULL; it = it->next) {
        /* Skip names already rendered with an earlier series. */
        int seen = 0;
        for (struct svc_metric *p = m->head; p != it; p = p->next) {
            if (strcmp(p->name, it->name) == 0) {
                seen = 1;
                break;
            }
        }
        if (seen)
            continue;
        out_printf(&o, "# HELP %s %s\n# TYPE %s %s\n", it->name, it->help, it->name,
                   type_names[it->type]);
        for (struct svc_metric *p = it; p != NULL; p = p->next)
            if (strcmp(p->name, it->name) == 0)
                render_one(&o, p);
    }
    pthread_mutex_unlock(&m->lock);
    if (o.failed) {
        free(o.p);
        return NULL;
    }
    if (len != NULL)
        *len = o.len;
    return o.p;
}
