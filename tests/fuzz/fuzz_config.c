/*
 * fuzz_config: the services' configuration parser (svc_config_parse) on arbitrary
 * environment values and command lines. Input: newline-separated; the first three lines are
 * the values of the environment variables FZ_INT, FZ_DOUBLE, FZ_BOOL ("-" = unset), the
 * rest are argv[1..] (at most 16). On success every target must hold a value its option
 * allows (bounds, 0/1, a string from the input or the default); on failure the error must
 * say something. Nothing may crash or read out of bounds.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 16

static const char *const env_names[3] = {"FZ_INT", "FZ_DOUBLE", "FZ_BOOL"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    char *lines[3 + MAX_ARGS];
    int nlines = 0;
    for (char *p = text; nlines < 3 + MAX_ARGS;) {
        lines[nlines++] = p;
        char *nl = strchr(p, '\n');
        if (nl == NULL)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    for (int i = 0; i < 3; i++) {
        if (i < nlines && strcmp(lines[i], "-") != 0)
            setenv(env_names[i], lines[i], 1);
        else
            unsetenv(env_names[i]);
    }
    char *argv[1 + MAX_ARGS + 1];
    int argc = 0;
    argv[argc++] = "fuzz_config";
    for (int i = 3; i < nlines; i++)
        argv[argc++] = lines[i];
    argv[argc] = NULL;

    const char *str = NULL;
    long num = 0;
    double real = 0;
    int flag = -1;
    const svc_option opts[] = {
        {"FZ_STRING", "--string", SVC_OPT_STRING, "dflt", 0, -1, "a string", &str},
        {"FZ_INT", "--int", SVC_OPT_INT, "5", 1, 1000, "an int in [1, 1000]", &num},
        {"FZ_DOUBLE", "--double", SVC_OPT_DOUBLE, NULL, 0, 1, "a number in [0, 1]", &real},
        {"FZ_BOOL", "--bool", SVC_OPT_BOOL, "false", 0, -1, "a switch", &flag},
    };
    char err[256] = "";
    static int quiet;
    if (!quiet) /* --help and --version write to stdout */
        quiet = freopen("/dev/null", "w", stdout) != NULL;
    int rc = svc_config_parse("fuzz_config", NULL, opts, sizeof opts / sizeof opts[0], argc,
                              argv, err, sizeof err);
    if (rc == SVC_CONFIG_OK) {
        if (num < 1 || num > 1000)
            abort();
        if (!isnan(real) && !(real >= 0 && real <= 1))
            abort();
        if (flag != 0 && flag != 1)
            abort();
        if (str == NULL)
            abort();
    } else if (rc == SVC_CONFIG_ERROR) {
        if (err[0] == '\0')
            abort();
    } else if (rc != SVC_CONFIG_EXIT) {
        abort();
    }
    for (int i = 0; i < 3; i++)
        unsetenv(env_names[i]);
    free(text);
    return 0;
}
