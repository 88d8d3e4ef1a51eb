#include "svc_config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fs_version.h"
#include "svc_log.h"

static int parse_bool(const char *s, int *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* Stores text into opt's target. source names where it came from, for the error. */
static int set_value(const svc_option *opt, const char *text, const char *source, char *errstr,
                     size_t errstr_size)
{
    if (opt->type == SVC_OPT_STRING) {
        *(const char **)opt->target = text;
        return 0;
    }
    if (text == NULL) {
        if (opt->type == SVC_OPT_DOUBLE)
            *(double *)opt->target = NAN;
        return 0;
    }
    const int bounded = opt->min <= opt->max;
    char *end = NULL;
    errno = 0;
    switch (opt->type) {
    case SVC_OPT_INT: {
        long v = strtol(text, &end, 10);
        if (errno != 0 || end == text || *end != '\0') {
            snprintf(errstr, errstr_size, "%s %s: expected an integer, got \"%s\"", source,
                     opt->env, text);
            return -1;
        }
        if (bounded && ((double)v < opt->min || (double)v > opt->max)) {
            snprintf(errstr, errstr_size, "%s %s: %ld is outside [%.17g, %.17g]", source,
                     opt->env, v, opt->min, opt->max);
            return -1;
        }
        *(long *)opt->target = v;
        return 0;
    }
    case SVC_OPT_DOUBLE: {
        double v = strtod(text, &end);
        if (errno != 0 || end == text || *end != '\0' || !isfinite(v)) {
            snprintf(errstr, errstr_size, "%s %s: expected a number, got \"%s\"", source,
                     opt->env, text);
            return -1;
        }
        if (bounded && (v < opt->min || v > opt->max)) {
            snprintf(errstr, errstr_size, "%s %s: %.17g is outside [%.17g, %.17g]", source,
                     opt->env, v, opt->min, opt->max);
            return -1;
        }
        *(double *)opt->target = v;
        return 0;
    }
    case SVC_OPT_BOOL: {
        int v = 0;
        if (parse_bool(text, &v) != 0) {
            snprintf(errstr, errstr_size, "%s %s: expected true/false, got \"%s\"", source,
                     opt->env, text);
            return -1;
        }
        *(int *)opt->target = v;
        return 0;
    }
    case SVC_OPT_STRING:
        break;
    }
    return 0;
}

void svc_config_usage(FILE *out, const char *service, const char *summary,
                      const svc_option *opts, size_t n_opts)
{
    fprintf(out, "Usage: %s [--flag value]...\n", service);
    if (summary != NULL)
        fprintf(out, "%s\n", summary);
    fprintf(out, "\nOptions (environment variable, flag, default; a flag overrides its "
                 "variable):\n");
    for (size_t i = 0; i < n_opts; i++) {
        fprintf(out, "  %s  %s  (default: %s)  %s\n", opts[i].env, opts[i].flag,
                opts[i].def != NULL ? opts[i].def : "unset", opts[i].help);
    }
    fprintf(out, "  KAFKA_<NAME>  (any)  Passed to librdkafka as <name>, lowercased with '_' "
                 "-> '.', e.g. KAFKA_LINGER_MS=5 sets linger.ms\n");
    fprintf(out, "  --help  Print this help.  --version  Print the version.\n");
}

int svc_config_parse(const char *service, const char *summary, const svc_option *opts,
                     size_t n_opts, int argc, char **argv, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < n_opts; i++) {
        if (set_value(&opts[i], opts[i].def, "default of", errstr, errstr_size) != 0)
            return SVC_CONFIG_ERROR;
        const char *env = getenv(opts[i].env);
        if (env != NULL && set_value(&opts[i], env, "env", errstr, errstr_size) != 0)
            return SVC_CONFIG_ERROR;
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            svc_config_usage(stdout, service, summary, opts, n_opts);
            return SVC_CONFIG_EXIT;
        }
        if (strcmp(arg, "--version") == 0) {
            printf("%s %s\n", service, fs_version());
            return SVC_CONFIG_EXIT;
        }
        const char *eq = strchr(arg, '=');
        size_t name_len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        const svc_option *opt = NULL;
        for (size_t i = 0; i < n_opts; i++) {
            if (strlen(opts[i].flag) == name_len && strncmp(opts[i].flag, arg, name_len) == 0) {
                opt = &opts[i];
                break;
            }
        }
        if (opt == NULL) {
            snprintf(errstr, errstr_size, "argument %d: unknown option \"%s\" (see --help)", a,
                     arg);
            return SVC_CONFIG_ERROR;
        }
        const char *value = NULL;
        if (eq != NULL)
            value = eq + 1;
        else if (opt->type == SVC_OPT_BOOL)
            value = "true";
        else if (a + 1 < argc)
            value = argv[++a];
        else {
            snprintf(errstr, errstr_size, "argument %d: %s needs a value", a, opt->flag);
            return SVC_CONFIG_ERROR;
        }
        if (set_value(opt, value, "flag for", errstr, errstr_size) != 0)
            return SVC_CONFIG_ERROR;
    }
    return SVC_CONFIG_OK;
}

/* Copies a URL with the password of its user info replaced by ***
 * (postgresql://u:secret@h/db -> postgresql://u:***@h/db). */
static const char *mask_url(const char *v, char *buf, size_t size)
{
    const char *scheme = strstr(v, "://");
    if (scheme == NULL)
        return v;
    const char *user = scheme + 3;
    const char *at = strchr(user, '@');
    const char *colon = strchr(user, ':');
    if (at == NULL || colon == NULL || colon > at)
        return v;
    snprintf(buf, size, "%.*s:***%s", (int)(colon - v), v, at);
    return buf;
}

void svc_config_log(const svc_option *opts, size_t n_opts)
{
    char masked[1024];
    for (size_t i = 0; i < n_opts; i++) {
        const svc_option *o = &opts[i];
        int secret = strstr(o->env, "PASSWORD") != NULL || strstr(o->env, "SECRET") != NULL;
        switch (o->type) {
        case SVC_OPT_STRING: {
            const char *v = *(const char **)o->target;
            if (v != NULL && secret && v[0] != '\0')
                v = "***";
            else if (v != NULL)
                v = mask_url(v, masked, sizeof masked);
            SVC_LOG(SVC_LOG_INFO, NULL, "config %s=%s", o->env, v == NULL ? "(unset)" : v);
            break;
        }
        case SVC_OPT_INT:
            SVC_LOG(SVC_LOG_INFO, NULL, "config %s=%ld", o->env, *(long *)o->target);
            break;
        case SVC_OPT_DOUBLE:
            SVC_LOG(SVC_LOG_INFO, NULL, "config %s=%.17g", o->env, *(double *)o->target);
            break;
        case SVC_OPT_BOOL:
            SVC_LOG(SVC_LOG_INFO, NULL, "config %s=%s", o->env,
                    *(int *)o->target ? "true" : "false");
            break;
        }
    }
}

int svc_config_read_secret(const char *name, const char *path, char *buf, size_t size,
                           char *errstr, size_t errstr_size)
{
    int rc = -1;
    FILE *f = NULL;
    if (size < 2) {
        snprintf(errstr, errstr_size, "%s: no room for the secret", name);
        goto out;
    }
    buf[0] = '\0';
    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(errstr, errstr_size, "%s %s: %s", name, path, strerror(errno));
        goto out;
    }
    size_t n = fread(buf, 1, size - 1, f);
    if (ferror(f)) {
        snprintf(errstr, errstr_size, "%s %s: read error", name, path);
        goto out;
    }
    if (n == size - 1 && fgetc(f) != EOF) {
        snprintf(errstr, errstr_size, "%s %s: longer than %zu bytes", name, path, size - 1);
        goto out;
    }
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (memchr(buf, '\0', n) != NULL) {
        snprintf(errstr, errstr_size, "%s %s: contains a NUL byte", name, path);
        goto out;
    }
    rc = 0;
out:
    if (f != NULL)
        fclose(f);
    if (rc != 0 && size > 0)
        memset(buf, 0, size);
    return rc;
}

int svc_config_start(const char *service, const char *summary, const svc_option *opts,
                     size_t n_opts, int argc, char **argv, const char *const *log_level)
{
    char err[1024];
    int rc = svc_config_parse(service, summary, opts, n_opts, argc, argv, err, sizeof err);
    if (rc != SVC_CONFIG_OK) {
        if (rc != SVC_CONFIG_EXIT)
            fprintf(stderr, "%s: %s\n", service, err);
        return rc;
    }
    svc_log_level level;
    if (svc_log_level_parse(*log_level, &level) != 0) {
        fprintf(stderr, "%s: LOG_LEVEL %s: expected debug, info, warn or error\n", service,
                *log_level);
        return SVC_CONFIG_ERROR;
    }
    svc_log_init(service, level);
    return SVC_CONFIG_OK;
}

const char *svc_instance_name(const char *configured, char *buf, size_t size)
{
    if (configured != NULL && configured[0] != '\0')
        return configured;
    if (size == 0)
        return "localhost";
    if (gethostname(buf, size) != 0)
        snprintf(buf, size, "localhost");
    buf[size - 1] = '\0';
    return buf;
}
