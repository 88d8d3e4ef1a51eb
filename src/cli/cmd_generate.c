/* Placeholder until the generate subcommand lands: says so and fails. */
#include <stdio.h>

#include "fraudctl.h"

int cmd_generate(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "fraudctl generate: not implemented yet\n");
    return FS_EXIT_FAILURE;
}
