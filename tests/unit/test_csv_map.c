/*
 * fs_csv_map and fs_txn_columns: header rows mapped onto wanted columns; every missing
 * column named in one message, duplicates found, optional columns, a message that does not
 * fit its buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fs_csv.h"
#include "fs_csv_map.h"
#include "fs_txn_columns.h"

/* A header row from a comma-separated list (no quoting needed here). */
typedef struct hdr {
    char buf[1024];
    const char *fields[64];
    size_t lens[64];
    fs_csv_row row;
} hdr;

static const fs_csv_row *make_header(hdr *h, const char *text)
{
    size_t n = 0;
    snprintf(h->buf, sizeof h->buf, "%s", text);
    char *p = h->buf;
    while (text[0] != '\0' && n < 64) {
        char *comma = strchr(p, ',');
        h->fields[n] = p;
        h->lens[n] = comma != NULL ? (size_t)(comma - p) : strlen(p);
        n++;
        if (comma == NULL)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    h->row = (fs_csv_row){n, h->fields, h->lens, 1, 0};
    return &h->row;
}

static const fs_csv_map_column wanted[] = {{"a", 1}, {"b", 1}, {"c", 1}, {"id", 0}};
#define NW (sizeof wanted / sizeof wanted[0])

static void test_map(void)
{
    hdr h;
    int idx[NW];
    fs_csv_map_result res;
    char why[256];

    /* Any order, extra columns ignored, optional absent. */
    CHECK_EQ_INT(fs_csv_map_header(make_header(&h, "x,c,a,b"), wanted, NW, idx, &res, why,
                                   sizeof why),
                 0);
    CHECK_EQ_INT(idx[0], 2);
    CHECK_EQ_INT(idx[1], 3);
    CHECK_EQ_INT(idx[2], 1);
    CHECK_EQ_INT(idx[3], -1);
    CHECK_EQ_INT(res.nmissing, 0);
    CHECK_EQ_INT(res.duplicate, 0);

    /* Every missing required column is named, in the wanted order; optional ones never. */
    CHECK_EQ_INT(fs_csv_map_header(make_header(&h, "b,zz"), wanted, NW, idx, &res, why,
                                   sizeof why),
                 -1);
    CHECK_EQ_STR(why, "missing column \"a\" and 1 more: \"c\"");
    CHECK_EQ_INT(res.nmissing, 2);
    CHECK_EQ_INT(idx[0], -1);
    CHECK_EQ_INT(idx[1], 0);
    CHECK_EQ_INT(idx[2], -1);

    CHECK_EQ_INT(fs_csv_map_header(make_header(&h, "a,b,id"), wanted, NW, idx, &res, why,
                                   sizeof why),
                 -1);
    CHECK_EQ_STR(why, "missing column \"c\"");
    CHECK_EQ_INT(idx[3], 2);

    /* An empty header: all three missing. */
    CHECK_EQ_INT(fs_csv_map_header(make_header(&h, ""), wanted, NW, idx, &res, why, sizeof why),
                 -1);
    CHECK_EQ_STR(why, "missing column \"a\" and 2 more: \"b\", \"c\"");

    /* A duplicate (also of an optional column) wins over missing columns and says where. */
    CHECK_EQ_INT(fs_csv_map_header(make_header(&h, "a,id,id"), wanted, NW, idx, &res, why,
                                   sizeof why),
                 -1);
    CHECK_EQ_STR(why, "column \"id\" appears twice");
    CHECK_EQ_INT(res.duplicate, 3);

    /* Names differing in case or spaces are other columns. */
    CHECK_EQ_INT(fs_csv_map_header(make_header(&h, "A,b ,c"), wanted, NW, idx, &res, why,
                                   sizeof why),
                 -1);
    CHECK_EQ_STR(why, "missing column \"a\" and 1 more: \"b\"");

    /* A buffer too small for every name: cut at a whole name, count still exact, and
     * never more than the buffer. */
    char small[40];
    CHECK_EQ_INT(fs_csv_map_header(make_header(&h, ""), wanted, NW, idx, &res, small,
                                   sizeof small),
                 -1);
    CHECK_EQ_STR(small, "missing column \"a\" and 2 more: \"b\", ...");
    char tiny[8];
    CHECK_EQ_INT(fs_csv_map_header(make_header(&h, ""), wanted, NW, idx, &res, tiny,
                                   sizeof tiny),
                 -1);
    CHECK(strlen(tiny) < sizeof tiny);
    CHECK_EQ_INT(res.nmissing, 3);
}

static void test_txn_columns(void)
{
    hdr h;
    fs_txn_columns cols;
    char err[1024];
    /* test.csv's header without amount, lat and merchant_lon: all three named, and the
     * columns struct says which. */
    CHECK_EQ_INT(fs_txn_columns_from_header(
                     &cols,
                     make_header(&h, "transaction_time,merch,cat_id,name_1,name_2,gender,"
                                     "street,one_city,us_state,post_code,lon,population_city,"
                                     "jobs,merchant_lat,target"),
                     err, sizeof err),
                 -1);
    CHECK_EQ_STR(err, "line 1: missing column \"amount\" and 2 more: \"lat\", \"merchant_lon\"");
    CHECK_EQ_INT(cols.nmissing, 3);
    CHECK_EQ_INT(cols.col[FS_F_AMOUNT], -1);
    CHECK_EQ_INT(cols.col[FS_F_LAT], -1);
    CHECK_EQ_INT(cols.col[FS_F_MERCHANT_LON], -1);
    CHECK_EQ_INT(cols.col[FS_F_LON], 10);
    CHECK_EQ_INT(cols.target_col, 14);
    CHECK_EQ_INT(cols.transaction_id_col, -1);

    /* Every field missing: one message naming all 17 fits the reader's buffer. */
    CHECK_EQ_INT(fs_txn_columns_from_header(&cols, make_header(&h, "foo"), err, sizeof err), -1);
    CHECK(strstr(err, "missing column \"transaction_time\" and 16 more: \"merch\"") != NULL);
    CHECK(strstr(err, "\"merchant_lon\"") != NULL);
    CHECK_EQ_INT(cols.nmissing, 17);
}

int main(void)
{
    test_map();
    test_txn_columns();
    return CHECK_DONE();
}
