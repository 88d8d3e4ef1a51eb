/* Placeholder until the features subcommand lands: says so and fails. */
#include <stdio.h>

#include "fraudctl.h"

int cmd_features(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "fraudctl features: not implemented yet\n");
    return FS_EXIT_FAILURE;
}
