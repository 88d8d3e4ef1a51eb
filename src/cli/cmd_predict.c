/* Placeholder until the predict subcommand lands: says so and fails. */
#include <stdio.h>

#include "fraudctl.h"

int cmd_predict(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "fraudctl predict: not implemented yet\n");
    return FS_EXIT_FAILURE;
}
