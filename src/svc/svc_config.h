/*
 * svc_config: one configuration table per binary, read from the environment (12-factor, what
 * docker compose sets) and overridable by command-line flags. Each row names the env
 * variable, the flag, the type, the default (as text), the bounds and one line of help, and
 * points at the variable it fills. Precedence: flag > env > default.
 *
 * `--help` prints one line per option, each "  ENV_NAME  --flag  (default: X)  help", plus a
 * line about the KAFKA_* pass-through (see svc_kafka.h); `--version` prints the version.
 *
 * Ownership: strings are never copied. A SVC_OPT_STRING target receives a pointer into
 * environ, argv or the table's default literal, all of which outlive main's use of them;
 * do not call setenv/unsetenv on a configured name afterwards.
 */
#ifndef SVC_CONFIG_H
#define SVC_CONFIG_H

#include <stddef.h>
#include <stdio.h>

typedef enum svc_opt_type {
    SVC_OPT_STRING, /* target: const char ** (NULL if no default and not given) */
    SVC_OPT_INT,    /* target: long *, bounds checked */
    SVC_OPT_DOUBLE, /* target: double *, bounds checked; NAN if no default and not given */
    SVC_OPT_BOOL    /* target: int *, accepts 1/0 true/false yes/no on/off */
} svc_opt_type;

typedef struct svc_option {
    const char *env;  /* e.g. "KAFKA_BOOTSTRAP_SERVERS" */
    const char *flag; /* e.g. "--bootstrap-servers"; a bool flag alone means true */
    svc_opt_type type;
    const char *def;  /* default as text, or NULL for "unset" */
    double min, max;  /* bounds for INT and DOUBLE (ignored when min > max) */
    const char *help; /* one line */
    void *target;
} svc_option;

/* The rows every service shares, defined once so their names, flags and help stay the same
 * in every --help (docs/operations.md lists them once). Each takes the variable it fills;
 * those whose default differs per service take the default too. */
#define SVC_OPT_BOOTSTRAP(target)                                                             \
    {"KAFKA_BOOTSTRAP_SERVERS", "--bootstrap-servers", SVC_OPT_STRING, "localhost:9092", 0,   \
     -1, "Kafka brokers (host:port,...)", (target)}
#define SVC_OPT_TRANSACTIONS_TOPIC(target)                                                    \
    {"TRANSACTIONS_TOPIC", "--transactions-topic", SVC_OPT_STRING, "transactions", 0, -1,    \
     "topic of the incoming transactions", (target)}
#define SVC_OPT_SCORING_TOPIC(target)                                                         \
    {"SCORING_TOPIC", "--scoring-topic", SVC_OPT_STRING, "scoring", 0, -1,                   \
     "topic of the scores", (target)}
#define SVC_OPT_DLQ_TOPIC(def, target)                                                        \
    {"DLQ_TOPIC", "--dlq-topic", SVC_OPT_STRING, (def), 0, -1,                                \
     "dead-letter topic: each message that cannot be processed, with its headers and "      \
     "x-error-reason",                                                                       \
     (target)}
#define SVC_OPT_GROUP_ID(def, target)                                                         \
    {"GROUP_ID", "--group-id", SVC_OPT_STRING, (def), 0, -1,                                  \
     "consumer group shared by all instances", (target)}
#define SVC_OPT_INSTANCE_ID(target)                                                           \
    {"INSTANCE_ID", "--instance-id", SVC_OPT_STRING, NULL, 0, -1,                             \
     "name of this instance, unique in the group, stable across restarts (unset: the "    \
     "host name)",                                                                           \
     (target)}
#define SVC_OPT_STATIC_MEMBERSHIP(target)                                                     \
    {"STATIC_MEMBERSHIP", "--static-membership", SVC_OPT_BOOL, "true", 0, -1,                 \
     "join the group as static member INSTANCE_ID (group.instance.id) so a restart "        \
     "resumes at once",                                                                      \
     (target)}
#define SVC_OPT_DATABASE_URL(def, target)                                                     \
    {"DATABASE_URL", "--database-url", SVC_OPT_STRING, (def), 0, -1,                          \
     "libpq connection string or URI (PGHOST, PGPORT, PGUSER, PGPASSWORD also apply)",     \
     (target)}
#define SVC_OPT_PASSWORD_FILE(target)                                                         \
    {"PGPASSWORD_FILE", "--password-file", SVC_OPT_STRING, NULL, 0, -1,                       \
     "file holding the database password (overrides PGPASSWORD)", (target)}
#define SVC_OPT_LOG_LEVEL(target)                                                             \
    {"LOG_LEVEL", "--log-level", SVC_OPT_STRING, "info", 0, -1, "debug, info, warn or error",  \
     (target)}
#define SVC_OPT_METRICS_ADDR(target)                                                          \
    {"METRICS_ADDR", "--metrics-addr", SVC_OPT_STRING, "127.0.0.1", 0, -1,                    \
     "address of the /healthz /readyz /metrics endpoint", (target)}
#define SVC_OPT_METRICS_PORT(def, target)                                                     \
    {"METRICS_PORT", "--metrics-port", SVC_OPT_INT, (def), 0, 65535,                          \
     "port of the /healthz /readyz /metrics endpoint (0: any free port)", (target)}

/* Result of svc_config_parse. */
enum {
    SVC_CONFIG_OK = 0,
    SVC_CONFIG_EXIT = 1,   /* --help or --version printed: exit 0 */
    SVC_CONFIG_ERROR = -1  /* errstr says which option and why: exit with usage error (2) */
};

/* Fills every target from defaults, then env, then argv[1..]. Flags take "--flag value" or
 * "--flag=value". `--help`/`-h` prints usage to stdout, `--version` prints
 * "<service> <version>"; both return SVC_CONFIG_EXIT. Errors name the env variable or flag
 * and the bad value. */
int svc_config_parse(const char *service, const char *summary, const svc_option *opts,
                     size_t n_opts, int argc, char **argv, char *errstr, size_t errstr_size);

/* What every service does first: svc_config_parse, then logging started at the level the
 * option table put in *log_level ("debug", "info", "warn", "error"). Returns SVC_CONFIG_OK;
 * SVC_CONFIG_EXIT after --help/--version (exit 0); or SVC_CONFIG_ERROR after printing
 * "<service>: why" to stderr (exit 2). `service` must live as long as the process. */
int svc_config_start(const char *service, const char *summary, const svc_option *opts,
                     size_t n_opts, int argc, char **argv, const char *const *log_level);

/* The instance name: `configured` if set and not empty, else the host name (unique per
 * container when scaled with compose, and unchanged when the container restarts) written
 * into buf, else "localhost". */
const char *svc_instance_name(const char *configured, char *buf, size_t size);

/* Prints the --help text to out. */
void svc_config_usage(FILE *out, const char *service, const char *summary,
                      const svc_option *opts, size_t n_opts);

/* Logs every option's effective value at info level (values of env names containing
 * PASSWORD or SECRET are masked). */
void svc_config_log(const svc_option *opts, size_t n_opts);

/* Reads a secret (e.g. a database password) from the file at path into buf, with trailing
 * newlines (LF, CRLF) removed, as docker/kubernetes secret files usually end with one.
 * `name` is the option that gave the path (e.g. "PGPASSWORD_FILE"), used in errors, which
 * never contain the secret. Returns 0, or -1 with errstr ("PGPASSWORD_FILE /x: No such
 * file or directory"; a file of size or more bytes is refused, never truncated). The caller
 * should clear buf once the secret was handed on. */
int svc_config_read_secret(const char *name, const char *path, char *buf, size_t size,
                           char *errstr, size_t errstr_size);

#endif
