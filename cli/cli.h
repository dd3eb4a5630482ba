/*
 * cli.h - what the files of the `dqo` command share: the exit statuses, the
 * message helpers, the option parser and the subcommands that live outside
 * dqo.c. Like the rest of cli/, it relies on dqo.h and the C and POSIX
 * libraries only.
 */
#ifndef DQO_CLI_H
#define DQO_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "dqo.h"

/* Exit statuses, documented in the top-level help. */
enum { EXIT_OK = 0, EXIT_ERROR = 1, EXIT_USAGE = 2 };

/* ================================================================ messages */

/* Prints "dqo: <message>" and the pointer to the right help page ("see dqo
 * CMD --help"), and returns EXIT_USAGE. `cmd` is NULL outside any
 * subcommand. */
int usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Prints "dqo: error: <the context's message>" (the status text when there
 * is none) and returns EXIT_ERROR. */
int api_error(const dqo_ctx *ctx, dqo_status st);

/* Prints "dqo: error: <message>" for an error found by the CLI itself and
 * returns EXIT_ERROR. */
int cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Seconds on a monotonic clock. */
double now_seconds(void);

/* ========================================================= option parsing */

typedef enum opt_kind {
    OPT_FLAG = 0,  /* sets *flag to 1 */
    OPT_VALUE = 1, /* stores the value; the last one given wins */
    OPT_LIST = 2   /* appends the value to a list */
} opt_kind;

/* A growing array of borrowed strings (they point into argv). */
typedef struct str_list {
    const char **v;
    size_t n, cap;
} str_list;

typedef struct opt_spec {
    const char *name; /* the long name without dashes */
    char short_name;  /* 0 when none */
    opt_kind kind;
    int *flag;          /* OPT_FLAG */
    const char **value; /* OPT_VALUE */
    str_list *list;     /* OPT_LIST */
} opt_spec;

typedef struct parsed_args {
    str_list positional; /* caller frees positional.v */
    int help;            /* -h or --help was given */
} parsed_args;

/* Parses argv[0..argc) of subcommand `cmd` against `specs` (terminated by
 * an entry with a NULL name): "--name value", "--name=value", short aliases
 * "-x value" or "-xvalue", "--" ends the options. Returns 0, or the exit
 * status after printing a message. */
int parse_args(const char *cmd, int argc, char **argv, const opt_spec *specs,
               parsed_args *out);

/* Parses --threads (NULL: not given, 0 = every core). Returns 0, or the
 * usage exit status after printing a message. */
int parse_threads(const char *cmd, const char *s, int *threads);

/* Creates a context with the thread count applied. Returns 0 with *ctx
 * owned by the caller (dqo_ctx_destroy), or the exit status. */
int open_ctx(int threads, dqo_ctx **ctx);

/* ===================================================== machine commands */

/* cli/machine.c: `dqo devices` and `dqo calibrate`. */
extern const char HELP_DEVICES[];
extern const char HELP_CALIBRATE[];
int cmd_devices(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);

/* ======================================================== SQL commands */

/* cli/query.c: `dqo query`, `dqo explain` and `dqo mav`. */
extern const char HELP_QUERY[];
extern const char HELP_EXPLAIN[];
extern const char HELP_MAV[];
int cmd_query(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_mav(int argc, char **argv);

/* One CSV field, quoted when it holds a comma, a quote, a line break or
 * edge spaces (RFC 4180); cli/dqo.c. */
void csv_field(FILE *out, const char *s);
/* Prints every line of the context's warnings as "dqo: warning: <line>";
 * cli/machine.c. */
void print_warnings(dqo_ctx *ctx);

#endif /* DQO_CLI_H */
