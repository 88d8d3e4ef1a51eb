#include "cli_io.h"

#include <errno.h>
#include <string.h>

static int is_std(const char *path)
{
    return path == NULL || strcmp(path, "-") == 0;
}

const char *cli_name(const char *path, const char *std_name)
{
    return is_std(path) ? std_name : path;
}

FILE *cli_open_input(const char *cmd, const char *path)
{
    if (is_std(path))
        return stdin;
    FILE *in = fopen(path, "rb");
    if (in == NULL)
        fprintf(stderr, "fraudctl %s: %s: cannot open: %s\n", cmd, path, strerror(errno));
    return in;
}

FILE *cli_open_output(const char *cmd, const char *path)
{
    if (is_std(path))
        return stdout;
    FILE *out = fopen(path, "wb");
    if (out == NULL)
        fprintf(stderr, "fraudctl %s: %s: cannot create: %s\n", cmd, path, strerror(errno));
    return out;
}

void cli_close_input(FILE *in)
{
    if (in != NULL && in != stdin)
        fclose(in);
}

void cli_discard_output(FILE *out)
{
    if (out == NULL)
        return;
    if (out == stdout)
        fflush(stdout);
    else
        fclose(out);
}

int cli_close_output(const char *cmd, const char *path, FILE *out)
{
    if (out == NULL)
        return 0;
    int failed = fflush(out) != 0 || ferror(out);
    int err = errno;
    if (out != stdout && fclose(out) != 0 && !failed) {
        failed = 1;
        err = errno;
    }
    if (failed)
        fprintf(stderr, "fraudctl %s: %s: write error: %s\n", cmd, cli_name(path, "stdout"),
                strerror(err));
    return failed ? -1 : 0;
}
