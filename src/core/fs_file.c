#include "fs_file.h"
#include "fs_err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *fs_read_file(const char *path, size_t max, size_t *len, char *errstr,
                   size_t errstr_size)
{
    char *buf = NULL;
    size_t cap = 0;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fs_errf(errstr, errstr_size, "cannot open: %s", strerror(errno));
        return NULL;
    }
    for (;;) {
        if (*len == cap) {
            if (cap >= max) {
                /* Full at the cap: fine only if the file ends exactly here. */
                if (fgetc(f) == EOF && !ferror(f))
                    break;
                fs_errf(errstr, errstr_size, "larger than %zu bytes", max);
                goto fail;
            }
            size_t ncap = cap ? cap * 2 : 65536;
            if (ncap > max)
                ncap = max;
            char *nb = realloc(buf, ncap);
            if (nb == NULL) {
                fs_errf(errstr, errstr_size, "out of memory");
                goto fail;
            }
            buf = nb;
            cap = ncap;
        }
        size_t n = fread(buf + *len, 1, cap - *len, f);
        *len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        fs_errf(errstr, errstr_size, "read error: %s", strerror(errno));
        goto fail;
    }
    fclose(f);
    return buf;
fail:
    fclose(f);
    free(buf);
    *len = 0;
    return NULL;
}
