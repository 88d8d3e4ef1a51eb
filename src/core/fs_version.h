/* fs_version: the version of the project, one place for every binary to report it. */
#ifndef FS_VERSION_H
#define FS_VERSION_H

#define FS_VERSION "0.1.0"

const char *fs_version(void);

#endif
