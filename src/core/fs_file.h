/*
 * fs_file: reading a whole small file (a model, fitted statistics, metadata) into memory,
 * with a hard size cap so a wrong path to a huge file is an error, not an allocation.
 */
#ifndef FS_FILE_H
#define FS_FILE_H

#include <stddef.h>

/* Reads path into a new buffer of *len bytes (not NUL-terminated; the caller frees it).
 * Returns NULL on error with the reason, without the path, in errstr ("cannot open: No
 * such file or directory", "larger than N bytes", "read error", "out of memory"); the
 * caller names the file as its messages do. */
char *fs_read_file(const char *path, size_t max, size_t *len, char *errstr,
                   size_t errstr_size);

#endif
