#include "dbw_db.h"

int dbw_db_migrate(dbw_db *db, int *applied, char *errstr, size_t errstr_size)
{
    return db->ops->migrate(db, applied, errstr, errstr_size);
}

int dbw_db_insert_send(dbw_db *db, const dbw_row *rows, size_t n, char *errstr,
                       size_t errstr_size)
{
    return db->ops->send(db, rows, n, errstr, errstr_size);
}

int dbw_db_insert_ready(dbw_db *db)
{
    return db->ops->ready(db);
}

int dbw_db_insert_finish(dbw_db *db, long *inserted, char *errstr, size_t errstr_size)
{
    return db->ops->finish(db, inserted, errstr, errstr_size);
}

int dbw_db_insert(dbw_db *db, const dbw_row *rows, size_t n, long *inserted, char *errstr,
                  size_t errstr_size)
{
    *inserted = 0;
    if (n == 0)
        return 0;
    if (dbw_db_insert_send(db, rows, n, errstr, errstr_size) != 0)
        return -1;
    return dbw_db_insert_finish(db, inserted, errstr, errstr_size);
}

void dbw_db_disconnect(dbw_db *db)
{
    db->ops->disconnect(db);
}

void dbw_db_free(dbw_db *db)
{
    if (db != NULL)
        db->ops->free(db);
}
