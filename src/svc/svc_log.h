/*
 * svc_log: the one logging macro of the services. Each line is logfmt on stderr:
 *   ts=2026-01-02T03:04:05.678Z level=info service=db_writer topic=scoring partition=1
 *   offset=42 txn=abc msg="wrote batch" src=db_writer.c:120
 * The level is checked before any formatting, so a disabled SVC_LOG costs one compare.
 * Lines are written with one call under the stdio lock, so threads never interleave.
 * Context (svc_log_ctx) is optional: pass NULL, or a struct whose unset fields are NULL / -1.
 * Nothing here allocates; the service name and context strings are borrowed for the call
 * (svc_log_init keeps the service pointer: pass a string that lives as long as the process).
 */
#ifndef SVC_LOG_H
#define SVC_LOG_H

#include <stdint.h>

typedef enum svc_log_level {
    SVC_LOG_DEBUG = 0,
    SVC_LOG_INFO = 1,
    SVC_LOG_WARN = 2,
    SVC_LOG_ERROR = 3
} svc_log_level;

/* Context attached to a line; fields that are NULL (strings) or -1 (numbers) are left out. */
typedef struct svc_log_ctx {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const char *transaction_id;
} svc_log_ctx;

/* The minimum level written; set by svc_log_init, read by SVC_LOG. */
extern svc_log_level svc_log_min_level;

/* Sets the service name (borrowed for the life of the process) and the minimum level. */
void svc_log_init(const char *service, svc_log_level min_level);

/* Parses "debug", "info", "warn" (or "warning"), "error". Returns 0, or -1 if unknown. */
int svc_log_level_parse(const char *name, svc_log_level *out);

/* Formats and writes one line; use SVC_LOG instead so the level is checked first. */
void svc_log_write(svc_log_level level, const svc_log_ctx *ctx, const char *file, int line,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* SVC_LOG(level, ctx_or_NULL, "format", args...) */
#define SVC_LOG(level, ctx, ...)                                                          \
    do {                                                                                  \
        if ((level) >= svc_log_min_level)                                                 \
            svc_log_write((level), (ctx), __FILE__, __LINE__, __VA_ARGS__);               \
    } while (0)

#endif
