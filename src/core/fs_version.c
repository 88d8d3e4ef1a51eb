#include "fs_version.h"

const char *fs_version(void)
{
    return FS_VERSION;
}
