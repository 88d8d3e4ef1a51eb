/*
 * The subcommands of fraudctl. Each takes the arguments after its name (argv[0] is the
 * subcommand name) and returns a process exit code (enum fs_exit).
 */
#ifndef FRAUDCTL_H
#define FRAUDCTL_H

enum fs_exit {
    FS_EXIT_OK = 0,
    FS_EXIT_FAILURE = 1, /* the work failed: bad input data, I/O error */
    FS_EXIT_USAGE = 2,   /* bad command line */
};

int cmd_predict(int argc, char **argv);
int cmd_fit(int argc, char **argv);
int cmd_features(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_generate(int argc, char **argv);

#endif
