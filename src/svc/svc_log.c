#include "svc_log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define SVC_LOG_LINE_MAX 4096

svc_log_level svc_log_min_level = SVC_LOG_INFO;
static const char *svc_log_service = "svc";

void svc_log_init(const char *service, svc_log_level min_level)
{
    if (service != NULL)
        svc_log_service = service;
    svc_log_min_level = min_level;
}

int svc_log_level_parse(const char *name, svc_log_level *out)
{
    static const struct {
        const char *name;
        svc_log_level level;
    } names[] = {{"debug", SVC_LOG_DEBUG}, {"info", SVC_LOG_INFO}, {"warn", SVC_LOG_WARN},
                 {"warning", SVC_LOG_WARN}, {"error", SVC_LOG_ERROR}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return -1;
}

/* Appends with truncation; *len never passes cap - 1. */
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len >= cap - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    *len += (size_t)n;
    if (*len > cap - 1)
        *len = cap - 1;
}

/* Appends s as a logfmt quoted value: quotes and backslashes escaped, controls as \n or ?. */
static void append_quoted(char *buf, size_t cap, size_t *len, const char *s)
{
    append(buf, cap, len, "\"");
    for (; *s != '\0' && *len < cap - 3; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[(*len)++] = '\\';
            buf[(*len)++] = (char)c;
        } else if (c == '\n') {
            buf[(*len)++] = '\\';
            buf[(*len)++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            buf[(*len)++] = '?';
        } else {
            buf[(*len)++] = (char)c;
        }
    }
    buf[*len] = '\0';
    append(buf, cap, len, "\"");
}

void svc_log_write(svc_log_level level, const svc_log_ctx *ctx, const char *file, int line,
                   const char *fmt, ...)
{
    static const char *level_names[] = {"debug", "info", "warn", "error"};
    char line_buf[SVC_LOG_LINE_MAX];
    char msg[SVC_LOG_LINE_MAX / 2];
    size_t len = 0;
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    append(line_buf, sizeof line_buf, &len,
           "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s service=%s", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
           level_names[(level >= SVC_LOG_DEBUG && level <= SVC_LOG_ERROR) ? level : SVC_LOG_ERROR],
           svc_log_service);
    if (ctx != NULL) {
        if (ctx->topic != NULL)
            append(line_buf, sizeof line_buf, &len, " topic=%s", ctx->topic);
        if (ctx->partition >= 0)
            append(line_buf, sizeof line_buf, &len, " partition=%" PRId32, ctx->partition);
        if (ctx->offset >= 0)
            append(line_buf, sizeof line_buf, &len, " offset=%" PRId64, ctx->offset);
        if (ctx->transaction_id != NULL) {
            append(line_buf, sizeof line_buf, &len, " txn=");
            append_quoted(line_buf, sizeof line_buf, &len, ctx->transaction_id);
        }
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    append(line_buf, sizeof line_buf, &len, " msg=");
    append_quoted(line_buf, sizeof line_buf, &len, msg);
    const char *base = strrchr(file, '/');
    append(line_buf, sizeof line_buf, &len, " src=%s:%d\n", base != NULL ? base + 1 : file, line);
    if (line_buf[len - 1] != '\n')
        line_buf[len - 1] = '\n'; /* truncated: still end the line */
    flockfile(stderr);
    fwrite(line_buf, 1, len, stderr);
    fflush(stderr);
    funlockfile(stderr);
}
