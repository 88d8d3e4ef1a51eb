/*
 * dbw_migrations: the SQL migrations of sql/migrations, embedded at build time by
 * embed_migrations.cmake, in file-name order. A migration's version is the number its file
 * name starts with (001_transactions.sql -> 1). The strings are static; nothing to free.
 */
#ifndef DBW_MIGRATIONS_H
#define DBW_MIGRATIONS_H

#include <stddef.h>

typedef struct dbw_migration {
    const char *name; /* file name, e.g. "001_transactions.sql" */
    const char *sql;  /* its whole text */
} dbw_migration;

extern const dbw_migration dbw_migrations[];
extern const size_t dbw_migrations_count;

#endif
