/*
 * fs_multipart: a streaming multipart/form-data parser (RFC 7578 over RFC 2046) for HTTP
 * uploads. Push model, like fs_csv: feed the request body in chunks of any size as they
 * arrive; callbacks receive each part's headers and then its body in pieces, so a part of
 * hundreds of megabytes is never held in memory. Pure parsing: no I/O, no allocation after
 * fs_multipart_new, every buffer capped (header lines, headers per part, parts per body).
 *
 * Ownership: the parser copies the boundary; the part description and the data passed to
 * the callbacks live only for the duration of the call.
 */
#ifndef FS_MULTIPART_H
#define FS_MULTIPART_H

#include <stddef.h>

#define FS_MULTIPART_BOUNDARY_MAX 70 /* RFC 2046 */
#define FS_MULTIPART_LINE_MAX 1024   /* longest part header line */
#define FS_MULTIPART_HEADERS_MAX 16  /* most header lines in one part */
#define FS_MULTIPART_PARTS_MAX 64    /* most parts in one body */
#define FS_MULTIPART_VALUE_MAX 256   /* longest name, filename or content type kept */

/* What a part's headers said. Empty strings when absent. */
typedef struct fs_multipart_part {
    char name[FS_MULTIPART_VALUE_MAX];         /* Content-Disposition name= */
    char filename[FS_MULTIPART_VALUE_MAX];     /* Content-Disposition filename= */
    char content_type[FS_MULTIPART_VALUE_MAX]; /* Content-Type, lower-cased, no params */
    int has_filename;                          /* 1 if filename= was present */
    size_t index;                              /* 0-based part number */
} fs_multipart_part;

/* Each callback returns 0 to go on, non-zero to stop: fs_multipart_feed then returns that
 * value. Any callback may be NULL. */
typedef struct fs_multipart_callbacks {
    int (*part_begin)(const fs_multipart_part *part, void *opaque);
    int (*part_data)(const void *data, size_t len, void *opaque);
    int (*part_end)(void *opaque);
} fs_multipart_callbacks;

typedef struct fs_multipart fs_multipart;

/* Extracts the boundary parameter of a Content-Type header value, which must be
 * multipart/form-data. Returns 0 and writes the NUL-terminated boundary to out (at least
 * FS_MULTIPART_BOUNDARY_MAX + 1 bytes), or -1 with the reason in errstr. */
int fs_multipart_boundary(const char *content_type, char *out, size_t out_size, char *errstr,
                          size_t errstr_size);

/* A parser for one body. Returns NULL with the reason in errstr if the boundary is not
 * 1..70 valid characters or memory ran out. The callbacks struct is copied. */
fs_multipart *fs_multipart_new(const char *boundary, const fs_multipart_callbacks *cb,
                               void *opaque, char *errstr, size_t errstr_size);
void fs_multipart_free(fs_multipart *mp);

/* Feeds a chunk. Returns 0, a callback's non-zero stop value, or -1 on malformed input
 * (fs_multipart_error says what and at which body offset). After a non-zero return the
 * parser refuses further input. */
int fs_multipart_feed(fs_multipart *mp, const void *data, size_t len);
/* Ends the body: -1 unless the closing boundary was seen. */
int fs_multipart_finish(fs_multipart *mp);
const char *fs_multipart_error(const fs_multipart *mp);
/* Body bytes consumed so far. */
size_t fs_multipart_offset(const fs_multipart *mp);

#endif
