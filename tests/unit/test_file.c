/* fs_read_file: the size cap is exact, and every failure says why. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fs_file.h"

static void write_bytes(const char *path, size_t n)
{
    FILE *f = fopen(path, "wb");
    for (size_t i = 0; i < n; i++)
        fputc('a' + (int)(i % 26), f);
    fclose(f);
}

int main(void)
{
    char dir[] = "/tmp/fs_file_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], err[256];
    size_t len = 99;
    snprintf(path, sizeof path, "%s/f", dir);

    /* Exactly at the cap: read whole; one byte over: refused. */
    write_bytes(path, 100);
    char *buf = fs_read_file(path, 100, &len, err, sizeof err);
    CHECK(buf != NULL);
    CHECK_EQ_INT(len, 100);
    CHECK(buf != NULL && buf[0] == 'a' && buf[99] == 'a' + 99 % 26);
    free(buf);
    buf = fs_read_file(path, 99, &len, err, sizeof err);
    CHECK(buf == NULL);
    CHECK_EQ_STR(err, "larger than 99 bytes");

    /* Larger than the first chunk, below the cap: grows. */
    write_bytes(path, 200000);
    buf = fs_read_file(path, 1 << 20, &len, err, sizeof err);
    CHECK(buf != NULL);
    CHECK_EQ_INT(len, 200000);
    free(buf);

    /* Empty file: a buffer of length 0. */
    write_bytes(path, 0);
    buf = fs_read_file(path, 100, &len, err, sizeof err);
    CHECK(buf != NULL);
    CHECK_EQ_INT(len, 0);
    free(buf);

    /* Missing file and a directory: errors with the reason. */
    buf = fs_read_file("/nonexistent/x", 100, &len, err, sizeof err);
    CHECK(buf == NULL);
    CHECK_EQ_STR(err, "cannot open: No such file or directory");
    buf = fs_read_file(dir, 100, &len, err, sizeof err);
    CHECK(buf == NULL);
    CHECK(strstr(err, "Is a directory") != NULL);

    unlink(path);
    rmdir(dir);
    return CHECK_DONE();
}
