/* Placeholder until the score subcommand lands: says so and fails. */
#include <stdio.h>

#include "fraudctl.h"

int cmd_score(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "fraudctl score: not implemented yet\n");
    return FS_EXIT_FAILURE;
}
