/*
 * cli_io: how every fraudctl subcommand opens its input and output and finishes writing,
 * so that each says the same thing on failure and none loses a write error (a full disk
 * is an error, not a short file that looks complete).
 */
#ifndef CLI_IO_H
#define CLI_IO_H

#include <stdio.h>

/* Opens path for reading; NULL or "-" is stdin. On failure prints
 * "fraudctl CMD: PATH: cannot open: why" and returns NULL. */
FILE *cli_open_input(const char *cmd, const char *path);

/* Opens path for writing (created or truncated); NULL or "-" is stdout. On failure prints
 * "fraudctl CMD: PATH: cannot create: why" and returns NULL. */
FILE *cli_open_output(const char *cmd, const char *path);

/* Closes an input from cli_open_input (stdin is left open); NULL is fine. */
void cli_close_input(FILE *in);

/* Flushes and closes an output from cli_open_output (stdout is only flushed); NULL is fine.
 * Returns 0, or -1 after printing "fraudctl CMD: PATH: write error: why" when anything
 * written to it was lost. */
int cli_close_output(const char *cmd, const char *path, FILE *out);

/* Closes an output after a failure that was already reported: no second message. */
void cli_discard_output(FILE *out);

/* The name of a path in messages: "stdin"/"stdout" for NULL or "-". */
const char *cli_name(const char *path, const char *std_name);

#endif
