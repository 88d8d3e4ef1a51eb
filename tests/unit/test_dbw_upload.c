/*
 * db_writer's upload headers (dbw_upload.h): upload_id is the canonical lowercase UUID text,
 * upload_row a decimal row number 1..2147483647; every other value is refused with an
 * error naming the header.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "dbw_upload.h"

static void test_ids(void)
{
    char err[256];
    unsigned char id[16];
    static const unsigned char want[16] = {0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3,
                                           0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00};
    const char *good = "123e4567-e89b-12d3-a456-426614174000";
    CHECK_EQ_INT(dbw_upload_parse_id(good, strlen(good), id, err, sizeof err), 0);
    CHECK(memcmp(id, want, 16) == 0);
    const char *ff = "ffffffff-ffff-ffff-ffff-ffffffffffff";
    CHECK_EQ_INT(dbw_upload_parse_id(ff, strlen(ff), id, err, sizeof err), 0);
    CHECK(id[0] == 0xff && id[15] == 0xff);
    static const char *const bad[] = {
        "",
        "123e4567-e89b-12d3-a456-42661417400",   /* 35 */
        "123e4567-e89b-12d3-a456-4266141740000", /* 37 */
        "123E4567-E89B-12D3-A456-426614174000",  /* upper case */
        "123e4567e89b-12d3-a456-4266141740000",  /* dash moved */
        "123e4567-e89b-12d3-a456_426614174000",
        "123e4567-e89b-12d3-a456-42661417400g",
        "{23e4567-e89b-12d3-a456-426614174000",
        " 23e4567-e89b-12d3-a456-426614174000",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK_EQ_INT(dbw_upload_parse_id(bad[i], strlen(bad[i]), id, err, sizeof err), -1);
        CHECK(strncmp(err, "header upload_id: expected a 36-character lowercase UUID", 56) ==
              0);
    }
    /* A NUL inside and no value at all. */
    char nul[37];
    memcpy(nul, good, 37);
    nul[3] = '\0';
    CHECK_EQ_INT(dbw_upload_parse_id(nul, 36, id, err, sizeof err), -1);
    CHECK_EQ_INT(dbw_upload_parse_id(NULL, 0, id, err, sizeof err), -1);
    CHECK(strstr(err, "no value") != NULL);
}

static void test_rows(void)
{
    char err[256];
    int32_t row = -1;
    static const struct {
        const char *text;
        int32_t want; /* 0: refused */
    } cases[] = {
        {"1", 1},          {"262144", 262144}, {"2147483647", INT32_MAX},
        {"2147483648", 0}, {"0", 0},           {"01", 0},
        {"-1", 0},         {"+1", 0},          {"", 0},
        {" 1", 0},         {"1 ", 0},          {"1.0", 0},
        {"99999999999", 0}, {"1e3", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *t = cases[i].text;
        int rc = dbw_upload_parse_row(t, strlen(t), &row, err, sizeof err);
        if (cases[i].want > 0) {
            CHECK_EQ_INT(rc, 0);
            CHECK_EQ_INT(row, cases[i].want);
        } else {
            CHECK_EQ_INT(rc, -1);
            CHECK(strncmp(err, "header upload_row: expected a row number", 40) == 0);
        }
    }
    CHECK_EQ_INT(dbw_upload_parse_row(NULL, 0, &row, err, sizeof err), -1);
    /* The value in the error is bounded and printable. */
    char longv[200];
    memset(longv, 'x', sizeof longv);
    longv[5] = '\n';
    CHECK_EQ_INT(dbw_upload_parse_row(longv, sizeof longv, &row, err, sizeof err), -1);
    CHECK(strchr(err, '\n') == NULL && strlen(err) < 140);
}

int main(void)
{
    test_ids();
    test_rows();
    return CHECK_DONE();
}
