/* Placeholder until the fit subcommand lands: says so and fails. */
#include <stdio.h>

#include "fraudctl.h"

int cmd_fit(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "fraudctl fit: not implemented yet\n");
    return FS_EXIT_FAILURE;
}
