/* libFuzzer harness of db_writer's upload header parsers (dbw_upload.h): any bytes as
 * either header value; a parsed value must print back to the same text. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbw_upload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256], back[40];
    unsigned char id[16];
    int32_t row;
    if (dbw_upload_parse_id(data, size, id, err, sizeof err) == 0) {
        snprintf(back, sizeof back,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", id[0],
                 id[1], id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11],
                 id[12], id[13], id[14], id[15]);
        if (size != 36 || memcmp(back, data, 36) != 0)
            abort();
    }
    if (dbw_upload_parse_row(data, size, &row, err, sizeof err) == 0) {
        snprintf(back, sizeof back, "%ld", (long)row);
        if (row < 1 || strlen(back) != size || memcmp(back, data, size) != 0)
            abort();
    }
    return 0;
}
