/*
 * libFuzzer harness for fs_multipart. The first input line is the Content-Type header
 * value (exercising fs_multipart_boundary); the rest is the body, fed in pieces whose sizes
 * come from the body's own bytes so chunk boundaries land everywhere. The data callback
 * checks that a whole delimiter never shows up inside part data.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fs_multipart.h"

struct ctx {
    const char *delim;
    size_t dlen;
    size_t bytes;
};

static int on_data(const void *data, size_t len, void *opaque)
{
    struct ctx *c = opaque;
    if (len == 0)
        abort(); /* the parser never emits empty pieces */
    const char *d = data;
    for (size_t i = 0; i + c->dlen <= len; i++)
        if (memcmp(d + i, c->delim, c->dlen) == 0)
            abort(); /* a whole delimiter inside part data is a missed boundary */
    c->bytes += len;
    return 0;
}

static int on_begin(const fs_multipart_part *part, void *opaque)
{
    (void)opaque;
    if (strlen(part->name) >= sizeof part->name || strlen(part->filename) >= sizeof part->filename)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    if (nl == NULL)
        return 0;
    size_t hlen = (size_t)(nl - data);
    char *header = malloc(hlen + 1);
    if (header == NULL)
        return 0;
    memcpy(header, data, hlen);
    header[hlen] = '\0';
    char boundary[FS_MULTIPART_BOUNDARY_MAX + 1], err[256];
    if (fs_multipart_boundary(header, boundary, sizeof boundary, err, sizeof err) != 0) {
        free(header);
        return 0;
    }
    free(header);
    char delim[FS_MULTIPART_BOUNDARY_MAX + 5] = "\r\n--";
    memcpy(delim + 4, boundary, strlen(boundary) + 1);
    struct ctx c = {delim, strlen(delim), 0};
    fs_multipart_callbacks cb = {on_begin, on_data, NULL};
    fs_multipart *mp = fs_multipart_new(boundary, &cb, &c, err, sizeof err);
    if (mp == NULL)
        abort(); /* a boundary accepted above must be accepted here */
    const uint8_t *body = nl + 1;
    size_t blen = size - hlen - 1, i = 0;
    int rc = 0;
    while (i < blen && rc == 0) {
        size_t step = 1 + (body[i] % 17u);
        if (step > blen - i)
            step = blen - i;
        rc = fs_multipart_feed(mp, body + i, step);
        i += step;
    }
    if (rc == 0)
        rc = fs_multipart_finish(mp);
    if (c.bytes > blen || fs_multipart_offset(mp) > blen)
        abort();
    fs_multipart_free(mp);
    return 0;
}
