/*
 * fraudctl: model evaluation, feature fitting, offline scoring and data generation.
 */
#include <stdio.h>
#include <string.h>

#include "fraudctl.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"predict", cmd_predict, "evaluate a LightGBM model.txt on a CSV of features"},
    {"fit", cmd_fit, "learn feature statistics from a training CSV"},
    {"features", cmd_features, "write the feature matrix of a transactions CSV"},
    {"score", cmd_score, "score a transactions CSV with a model bundle"},
    {"generate", cmd_generate, "write synthetic labelled transactions"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: fraudctl <command> [options]   (fraudctl <command> --help)\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return FS_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return FS_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "fraudctl: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return FS_EXIT_USAGE;
}
