/*
 * dqo.c - the `dqo` command: a thin front end to the public API in dqo.h.
 *
 * It offers five subcommands. `gen` writes the paper's grouping datasets,
 * `stats` prints what the statistics pass learns about each column (the
 * inputs of the planner's kernel choice), and `group` runs a GROUP BY
 * aggregation and prints its result together with the key statistics and
 * the planner's explanation; `devices` and `calibrate` (in machine.c) show
 * and measure the machine model the planner works from. The program uses
 * only dqo.h and the C and POSIX libraries, so it doubles as an example of
 * the API. Conventions: results go to stdout and diagnostics to stderr, so
 * CSV output stays clean; a failing library call prints "dqo: error:
 * <message>" and exits with status 1; a usage error prints a short message
 * and a pointer to the command's help and exits with status 2. The option
 * parser is written by hand (GNU getopt_long is not POSIX); it accepts
 * "--name value", "--name=value", a few short aliases and "--" to end the
 * options. cli.h declares what the other files of cli/ share.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

/* The table format shows this many groups unless --limit says otherwise;
 * twenty rows fit on one terminal screen together with the diagnostics. */
#define DEFAULT_TABLE_LIMIT 20

/* Large enough for any formatted number (a %.17g double needs 24 bytes). */
#define CELL_BUF 64

typedef enum out_format { FORMAT_TABLE = 0, FORMAT_CSV = 1 } out_format;

/* ================================================================ messages */

/* Prints "dqo: <message>" and the pointer to the right help page, and returns
 * the usage exit status so that callers can write `return usage_error(...)`.
 * `cmd` is NULL for errors outside any subcommand. */
int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("dqo: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd != NULL)
        fprintf(stderr, "\nsee dqo %s --help\n", cmd);
    else
        fputs("\nsee dqo --help\n", stderr);
    return EXIT_USAGE;
}

/* Reports a failed library call with the context's message; the status text
 * stands in when the library left no message (or there is no context). */
int api_error(const dqo_ctx *ctx, dqo_status st)
{
    const char *msg = ctx != NULL ? dqo_ctx_errmsg(ctx) : NULL;
    if (msg == NULL || msg[0] == '\0')
        msg = dqo_status_str(st);
    fprintf(stderr, "dqo: error: %s\n", msg);
    return EXIT_ERROR;
}

/* Reports an error found by the CLI itself (not a usage error). */
int cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("dqo: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_ERROR;
}

/* Seconds on a monotonic clock, for the progress notes and --time. */
double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ================================================================ help text */

static const char HELP_MAIN[] =
    "dqo - GROUP BY aggregation over columnar tables (Deep Query Optimisation)\n"
    "\n"
    "usage: dqo COMMAND [OPTIONS] [ARGS]\n"
    "       dqo help [COMMAND]\n"
    "       dqo --version\n"
    "\n"
    "commands:\n"
    "  gen        generate the paper's grouping dataset as CSV or binary\n"
    "             columns\n"
    "  stats      print per-column statistics of a table (rows, nulls, min,\n"
    "             max, distinct, runs, order, density)\n"
    "  group      run a GROUP BY aggregation and print the result\n"
    "  query      run an SQL query (GROUP BY, joins) planned by DQO\n"
    "  explain    print the plan of an SQL query without running it\n"
    "  mav        list or clear the cached plans (materialised\n"
    "             algorithmic views)\n"
    "  devices    print the machine model (CPU, NUMA nodes, OpenCL devices)\n"
    "             with the calibrated figures when a profile exists\n"
    "  calibrate  measure this machine (bandwidths, latencies, transfers,\n"
    "             kernel costs) and write its calibration profile\n"
    "  help       show the help of a command\n"
    "\n"
    "options:\n"
    "  -h, --help   show this help (after a command: that command's help)\n"
    "  --version    print the library version and exit\n"
    "\n"
    "A TABLE is a path: a file ending in .csv (header row, comma separated;\n"
    "column types inferred or given with --types), a file ending in .tsv\n"
    "(tab separated), or a directory of binary column files NAME.TYPE as\n"
    "written by 'dqo gen' (for example k.u32 and v.i32).\n"
    "\n"
    "examples:\n"
    "  dqo gen --rows 10M --groups 1K --out /tmp/g10m\n"
    "  dqo stats /tmp/g10m\n"
    "  dqo group /tmp/g10m --by k --agg 'count(*),sum(v),avg(v)=mean' --sort\n"
    "  dqo group sales.csv --by region --agg 'sum(amount) AS total' --format csv\n"
    "  dqo calibrate --quick && dqo devices\n"
    "  dqo query \"SELECT k, SUM(v) FROM g GROUP BY k\" --table g=/tmp/g10m\n"
    "\n"
    "exit status: 0 success; 1 an error reported by the library or the file\n"
    "system (message on stderr); 2 a usage error (unknown command or option,\n"
    "missing or malformed argument).\n";

static const char HELP_GEN[] =
    "usage: dqo gen --rows N --groups G [--sorted] [--sparse] [--seed S]\n"
    "               [--threads T] [--quiet] --out PATH\n"
    "\n"
    "Generates the grouping dataset of the paper (Section 5): column k holds\n"
    "u32 keys with G distinct values and column v holds i32 values in\n"
    "[-1000, 1000]. The data is deterministic for a given seed.\n"
    "\n"
    "options:\n"
    "  --rows N       number of rows (required)\n"
    "  --groups G     number of distinct keys (required)\n"
    "  --sorted       rows ascending by key (default: random order)\n"
    "  --sparse       keys spread over the whole u32 range (default: dense\n"
    "                 keys 0..G-1)\n"
    "  --seed S       random seed, a plain integer (default: 1)\n"
    "  -o, --out PATH where to write: a PATH ending in .csv is written as one\n"
    "                 CSV file, any other PATH as a directory (created if\n"
    "                 missing) of binary column files k.u32 and v.i32\n"
    "                 (required)\n"
    "  -t, --threads T  worker threads, 0 for every core (default: 0)\n"
    "  -q, --quiet    no progress note on stderr\n"
    "\n"
    "N and G accept a decimal suffix or exponent: 1000, 10K, 2.5M, 100M,\n"
    "1G, 1e6 (K = 10^3, M = 10^6, G or B = 10^9, T = 10^12).\n"
    "\n"
    "examples:\n"
    "  dqo gen --rows 100M --groups 1K --out /tmp/dense_100m\n"
    "  dqo gen --rows 1e6 --groups 10K --sparse --sorted --out sparse.csv\n";

static const char HELP_STATS[] =
    "usage: dqo stats TABLE [--columns C1,C2,...] [--types NAME:TYPE,...]\n"
    "                 [--format table|csv] [--threads T]\n"
    "\n"
    "Loads TABLE and prints one line per column: name, type, rows, nulls,\n"
    "min, max, distinct (a HyperLogLog estimate, about 1% error), runs\n"
    "(maximal runs of equal values; runs == distinct means the column is\n"
    "clustered), order (asc, desc, const or none) and density = distinct /\n"
    "(max - min + 1), the fraction of the key range in use (integer and\n"
    "string columns). NULLs count only in 'nulls'. String columns are\n"
    "described through their dictionary codes (0..n-1 in order of first\n"
    "appearance), so their min and max are codes. A column with no non-NULL\n"
    "values shows '-' for min, max and density.\n"
    "\n"
    "options:\n"
    "  -c, --columns LIST  only these columns, comma separated (may be\n"
    "                      repeated; default: all)\n"
    "  --types LIST        declared CSV column types, NAME:TYPE pairs comma\n"
    "                      separated, TYPE one of u32 i32 i64 f64 str;\n"
    "                      columns not named are inferred (i32, else i64,\n"
    "                      else f64, else str). CSV input only.\n"
    "  -f, --format FMT    'table' (aligned text, the default) or 'csv'\n"
    "  -t, --threads T     worker threads, 0 for every core (default: 0)\n"
    "\n"
    "examples:\n"
    "  dqo stats /tmp/dense_100m\n"
    "  dqo stats sales.csv --types id:u32,region:str --format csv\n";

static const char HELP_GROUP[] =
    "usage: dqo group TABLE --by COL[,COL...] [--agg SPEC[,SPEC...]]\n"
    "                 [--kernel K] [--device auto|cpu|cl:N] [--resident]\n"
    "                 [--threads T] [--format table|csv]\n"
    "                 [--limit N] [--sort] [--types LIST] [--time] [--quiet]\n"
    "\n"
    "Groups TABLE by the key column(s) and computes the aggregates. The\n"
    "result (key columns first, then one column per aggregate) goes to\n"
    "stdout. Statistics of the key columns, the planner's explanation (which\n"
    "kernel ran and why) and, with --time, timings go to stderr, so that\n"
    "stdout stays clean for CSV.\n"
    "\n"
    "options:\n"
    "  -b, --by LIST     group key columns, comma separated (required; the\n"
    "                    option may be repeated)\n"
    "  -a, --agg LIST    aggregates, comma separated (may be repeated;\n"
    "                    default: count(*)). Each SPEC is one of\n"
    "                      count(*)  count(COL)  sum(COL)  min(COL)\n"
    "                      max(COL)  avg(COL)\n"
    "                    optionally followed by '=ALIAS' or ' AS ALIAS' to\n"
    "                    name the result column (default names: count_star,\n"
    "                    count_COL, sum_COL, ...). count(COL) counts non-NULL\n"
    "                    values; sum of integers is i64 (overflow is an\n"
    "                    error); avg is f64; min and max keep the type.\n"
    "  -k, --kernel K    auto (default: chosen from column statistics), hg\n"
    "                    (hash), sphg (static perfect hash: direct array),\n"
    "                    og (order-based), sog (sort, then order-based), bsg\n"
    "                    (binary search over sorted keys) or radix; on an\n"
    "                    OpenCL device every one but bsg exists\n"
    "  -d, --device LOC  where the query runs: auto (default: the device\n"
    "                    holding the table, else the CPU; a device that\n"
    "                    fails falls back to the CPU and the plan says so),\n"
    "                    cpu, or cl:N (an OpenCL device, see dqo devices;\n"
    "                    the columns stream from host memory)\n"
    "  --resident        copy the table to the device first and keep it\n"
    "                    there for the query (--device cl:N, or under auto\n"
    "                    the first OpenCL device); --time shows the copy\n"
    "  -t, --threads T   worker threads, 0 for every core (default: 0)\n"
    "  -f, --format FMT  'table' (aligned text, the default) or 'csv'\n"
    "                    (RFC 4180; NULL is an empty field)\n"
    "  -n, --limit N     print at most N groups, 0 for all (default: 20 for\n"
    "                    table, all for csv); when rows are left out a line\n"
    "                    'N groups (showing M)' follows the table (on stderr\n"
    "                    for csv)\n"
    "  -s, --sort        sort the output by the key columns (ascending;\n"
    "                    strings by text; NULLs last); otherwise groups come\n"
    "                    in the kernel's order\n"
    "  --types LIST      declared CSV column types (see dqo stats --help)\n"
    "  --time            print load and query times in ms on stderr\n"
    "  -q, --quiet       print only the result (no statistics or plan)\n"
    "\n"
    "examples:\n"
    "  dqo group /tmp/dense_100m --by k --agg 'count(*),sum(v),max(v)' --time\n"
    "  dqo group /tmp/dense_100m --by k --kernel radix --threads 8 --sort\n"
    "  dqo group /tmp/dense_100m --by k --agg 'sum(v)' --device cl:0 --resident\n"
    "  dqo group sales.csv --by region,year --agg 'sum(amount)=total,avg(amount)'\n"
    "  dqo group sales.csv --by region --agg 'count(*) AS n' --format csv\n";

/* Returns the help text of `cmd`, or NULL when there is no such command. */
static const char *help_text(const char *cmd)
{
    if (cmd == NULL)
        return HELP_MAIN;
    if (strcmp(cmd, "gen") == 0)
        return HELP_GEN;
    if (strcmp(cmd, "stats") == 0)
        return HELP_STATS;
    if (strcmp(cmd, "group") == 0)
        return HELP_GROUP;
    if (strcmp(cmd, "devices") == 0)
        return HELP_DEVICES;
    if (strcmp(cmd, "calibrate") == 0)
        return HELP_CALIBRATE;
    if (strcmp(cmd, "query") == 0)
        return HELP_QUERY;
    if (strcmp(cmd, "explain") == 0)
        return HELP_EXPLAIN;
    if (strcmp(cmd, "mav") == 0)
        return HELP_MAV;
    if (strcmp(cmd, "help") == 0)
        return HELP_MAIN;
    return NULL;
}

/* ========================================================= option parsing */

/* opt_kind, str_list, opt_spec and parsed_args are declared in cli.h. */

static int str_list_push(str_list *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap != 0 ? l->cap * 2 : 8;
        const char **v = realloc(l->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    return 0;
}

static const opt_spec *find_long(const opt_spec *specs, const char *name,
                                 size_t len)
{
    for (const opt_spec *s = specs; s->name != NULL; s++)
        if (strlen(s->name) == len && strncmp(s->name, name, len) == 0)
            return s;
    return NULL;
}

static const opt_spec *find_short(const opt_spec *specs, char c)
{
    for (const opt_spec *s = specs; s->name != NULL; s++)
        if (s->short_name != 0 && s->short_name == c)
            return s;
    return NULL;
}

/* Stores one option occurrence; `value` is NULL for flags. */
static int apply_option(const char *cmd, const opt_spec *s, const char *value)
{
    switch (s->kind) {
    case OPT_FLAG:
        *s->flag = 1;
        return 0;
    case OPT_VALUE:
        *s->value = value;
        return 0;
    case OPT_LIST:
        if (str_list_push(s->list, value) != 0)
            return cli_error("out of memory");
        return 0;
    }
    return usage_error(cmd, "internal error: bad option kind");
}

/* Parses argv[0..argc) of subcommand `cmd` against `specs` (terminated by an
 * entry with a NULL name). Arguments that are not options are collected in
 * out->positional. Returns 0, or the exit status after printing a message.
 * A value that itself starts with "--" is refused, so that a forgotten value
 * ("--out --sorted") is reported rather than silently taken as the value. */
int parse_args(const char *cmd, int argc, char **argv, const opt_spec *specs,
               parsed_args *out)
{
    int only_positional = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (a == NULL)
            break;
        if (only_positional || a[0] != '-' || a[1] == '\0') {
            if (str_list_push(&out->positional, a) != 0)
                return cli_error("out of memory");
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            out->help = 1;
            continue;
        }
        const opt_spec *s;
        const char *value = NULL;
        int has_inline = 0;
        if (a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
            s = find_long(specs, name, len);
            if (s == NULL)
                return usage_error(cmd, "unknown option '%.*s'",
                                   (int)(len + 2), a);
            if (eq != NULL) {
                value = eq + 1;
                has_inline = 1;
            }
        } else {
            /* Short options stand alone: "-t 4" or "-t4", no bundling. */
            s = find_short(specs, a[1]);
            if (s == NULL)
                return usage_error(cmd, "unknown option '%s'", a);
            if (a[2] != '\0') {
                if (s->kind == OPT_FLAG)
                    return usage_error(cmd, "unknown option '%s'", a);
                value = a + 2;
                has_inline = 1;
            }
        }
        if (s->kind == OPT_FLAG) {
            if (has_inline)
                return usage_error(cmd, "option --%s takes no value",
                                   s->name);
        } else if (!has_inline) {
            if (i + 1 >= argc || argv[i + 1] == NULL ||
                strncmp(argv[i + 1], "--", 2) == 0)
                return usage_error(cmd, "option --%s needs a value", s->name);
            value = argv[++i];
        }
        int rc = apply_option(cmd, s, value);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ========================================================= number parsing */

/* Parses a non-negative count with an optional decimal suffix or exponent:
 * "1000", "10K", "2.5M", "100M", "1G", "1e6". The value must be a whole
 * number that fits in 64 bits. Returns 0 on success, -1 otherwise. */
static int parse_count(const char *s, uint64_t *out)
{
    if (s == NULL || !((s[0] >= '0' && s[0] <= '9') || s[0] == '.'))
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long whole = strtoull(s, &end, 10);
    int integral = errno == 0 && end != s && *end != '.' && *end != 'e' &&
                   *end != 'E';
    double real = 0.0;
    if (!integral) {
        errno = 0;
        real = strtod(s, &end);
        if (errno != 0 || end == s || !isfinite(real) || real < 0.0)
            return -1;
    }
    uint64_t mult = 1;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': mult = 1000ull; end++; break;
    case 'm': case 'M': mult = 1000000ull; end++; break;
    case 'g': case 'G': case 'b': case 'B': mult = 1000000000ull; end++; break;
    case 't': case 'T': mult = 1000000000000ull; end++; break;
    default: return -1;
    }
    if (*end != '\0')
        return -1;
    if (integral) {
        if (mult != 0 && whole > UINT64_MAX / mult)
            return -1;
        *out = (uint64_t)whole * mult;
        return 0;
    }
    double v = real * (double)mult;
    /* 2^64 is the first double that no longer fits. */
    if (!(v < 18446744073709551616.0) || v != floor(v))
        return -1;
    *out = (uint64_t)v;
    return 0;
}

/* Parses a plain non-negative decimal integer no larger than `max`. */
static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    if (s == NULL || s[0] < '0' || s[0] > '9')
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

/* Parses --threads; NULL (not given) leaves *threads at 0 (every core). */
int parse_threads(const char *cmd, const char *s, int *threads)
{
    uint64_t v = 0;
    *threads = 0;
    if (s == NULL)
        return 0;
    if (parse_uint(s, 1u << 16, &v) != 0)
        return usage_error(cmd,
                           "invalid value '%s' for --threads (expected a "
                           "whole number, 0 for every core)",
                           s);
    *threads = (int)v;
    return 0;
}

static int parse_format(const char *cmd, const char *s, out_format *fmt)
{
    *fmt = FORMAT_TABLE;
    if (s == NULL || strcmp(s, "table") == 0)
        return 0;
    if (strcmp(s, "csv") == 0) {
        *fmt = FORMAT_CSV;
        return 0;
    }
    return usage_error(cmd, "invalid value '%s' for --format (expected "
                            "'table' or 'csv')",
                       s);
}

/* =================================================================== text */

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* Returns a trimmed copy of s[0..len) (caller frees), or NULL on allocation
 * failure. */
static char *dup_trimmed(const char *s, size_t len)
{
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    char *r = malloc(len + 1);
    if (r != NULL) {
        memcpy(r, s, len);
        r[len] = '\0';
    }
    return r;
}

/* An owned list of owned strings. */
typedef struct owned_list {
    char **v;
    size_t n, cap;
} owned_list;

static void owned_list_free(owned_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int owned_list_push(owned_list *l, char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap != 0 ? l->cap * 2 : 8;
        char **v = realloc(l->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    return 0;
}

/* Splits every string of `in` at commas outside parentheses, trimming the
 * pieces, and appends them to `out`. Returns 0, or -1 when out of memory. */
static int split_items(const str_list *in, owned_list *out)
{
    for (size_t i = 0; i < in->n; i++) {
        const char *s = in->v[i];
        const char *start = s;
        int depth = 0;
        for (const char *p = s;; p++) {
            if (*p == '(')
                depth++;
            else if (*p == ')' && depth > 0)
                depth--;
            if (*p == '\0' || (*p == ',' && depth == 0)) {
                char *item = dup_trimmed(start, (size_t)(p - start));
                if (item == NULL || owned_list_push(out, item) != 0) {
                    free(item);
                    return -1;
                }
                if (*p == '\0')
                    break;
                start = p + 1;
            }
        }
    }
    return 0;
}

/* Display width of UTF-8 text: code points, not bytes, so that names with
 * accents still line up. */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

/* Formats a double with the fewest digits that read back to the same value,
 * so that 0.1 prints as 0.1 and nothing is lost. */
static void format_double(double v, char *buf, size_t len)
{
    /* Never true; it tells GCC (which warns under -fsanitize=undefined,
     * seeing a NULL path that it made itself) that buf is valid. */
    if (buf == NULL || len == 0)
        return;
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (prec == 17 || strtod(buf, NULL) == v)
            return;
    }
}

/* =================================================================== grid */

/* A table of text produced cell by cell by a callback. The callback returns
 * the text of a cell (either `buf`, which holds CELL_BUF bytes, or a string
 * that lives at least until the next call), or NULL for a NULL value. */
typedef const char *(*cell_fn)(const void *arg, uint64_t row, int col,
                               char *buf);

typedef struct grid {
    int ncols;
    const char *const *header;
    const unsigned char *right; /* per column: 1 to right-align */
    uint64_t nrows;
    cell_fn cell;
    const void *arg;
} grid;

/* Writes one CSV field, quoting it when it holds a delimiter, a quote, a
 * line break or edge spaces (RFC 4180). */
void csv_field(FILE *out, const char *s)
{
    size_t n = strlen(s);
    int quote = n > 0 && (s[0] == ' ' || s[n - 1] == ' ');
    if (!quote && strpbrk(s, ",\"\r\n") != NULL)
        quote = 1;
    if (!quote) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s != '\0'; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void pad(FILE *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fputc(' ', out);
}

/* Prints the grid as CSV (streamed) or as an aligned text table (two passes:
 * widths, then text; nothing is kept in memory). Returns 0, or -1 when out of
 * memory. */
static int print_grid(FILE *out, const grid *g, out_format fmt)
{
    char buf[CELL_BUF];
    if (fmt == FORMAT_CSV) {
        for (int c = 0; c < g->ncols; c++) {
            if (c > 0)
                fputc(',', out);
            csv_field(out, g->header[c]);
        }
        fputc('\n', out);
        for (uint64_t r = 0; r < g->nrows; r++) {
            for (int c = 0; c < g->ncols; c++) {
                if (c > 0)
                    fputc(',', out);
                const char *s = g->cell(g->arg, r, c, buf);
                csv_field(out, s != NULL ? s : "");
            }
            fputc('\n', out);
        }
        return 0;
    }
    size_t *width = calloc((size_t)g->ncols + 1, sizeof *width);
    if (width == NULL)
        return -1;
    for (int c = 0; c < g->ncols; c++)
        width[c] = text_width(g->header[c]);
    for (uint64_t r = 0; r < g->nrows; r++)
        for (int c = 0; c < g->ncols; c++) {
            const char *s = g->cell(g->arg, r, c, buf);
            size_t w = text_width(s != NULL ? s : "NULL");
            if (w > width[c])
                width[c] = w;
        }
    for (int c = 0; c < g->ncols; c++) {
        size_t w = text_width(g->header[c]);
        if (c > 0)
            fputs("  ", out);
        if (g->right[c])
            pad(out, width[c] - w);
        fputs(g->header[c], out);
        if (!g->right[c] && c + 1 < g->ncols)
            pad(out, width[c] - w);
    }
    fputc('\n', out);
    for (int c = 0; c < g->ncols; c++) {
        if (c > 0)
            fputs("  ", out);
        for (size_t i = 0; i < width[c]; i++)
            fputc('-', out);
    }
    fputc('\n', out);
    for (uint64_t r = 0; r < g->nrows; r++) {
        for (int c = 0; c < g->ncols; c++) {
            const char *s = g->cell(g->arg, r, c, buf);
            if (s == NULL)
                s = "NULL";
            size_t w = text_width(s);
            if (c > 0)
                fputs("  ", out);
            if (g->right[c])
                pad(out, width[c] - w);
            fputs(s, out);
            if (!g->right[c] && c + 1 < g->ncols)
                pad(out, width[c] - w);
        }
        fputc('\n', out);
    }
    free(width);
    return 0;
}

/* ============================================================ table access */

/* Loads a table from a path: a directory of binary column files, or a CSV
 * file (tab separated when the name ends in .tsv). The file system is asked
 * first so that a missing path gets a message naming it whatever the library
 * says. Returns 0 with *out owned by the caller, or the exit status. */
static int load_table(dqo_ctx *ctx, const char *path, const char *types,
                      int quiet, dqo_table **out)
{
    struct stat sb;
    *out = NULL;
    if (stat(path, &sb) != 0)
        return cli_error("cannot open '%s': %s", path, strerror(errno));
    dqo_status st;
    if (S_ISDIR(sb.st_mode)) {
        if (types != NULL && !quiet)
            fprintf(stderr, "dqo: note: --types applies to CSV input only; "
                            "'%s' is a directory of typed column files\n",
                    path);
        st = dqo_table_load_dir(ctx, path, out);
    } else {
        dqo_csv_options opts = {0};
        opts.delimiter = ends_with_ci(path, ".tsv") ? '\t' : ',';
        opts.column_types = types;
        st = dqo_table_load_csv(ctx, path, &opts, out);
    }
    if (st != DQO_OK) {
        *out = NULL;
        return api_error(ctx, st);
    }
    return 0;
}

/* A column's arrays, fetched once through the typed accessors. */
typedef struct col_view {
    const dqo_table *table;
    int col;
    dqo_type type;
    const void *data; /* element array; u32 codes for strings */
    const uint8_t *valid;
} col_view;

static int col_view_init(dqo_ctx *ctx, const dqo_table *t, int col,
                         col_view *v)
{
    dqo_status st = DQO_EINVAL;
    v->table = t;
    v->col = col;
    v->type = dqo_table_column_type(t, col);
    v->valid = dqo_table_column_valid(t, col);
    v->data = NULL;
    switch (v->type) {
    case DQO_TYPE_U32: {
        const uint32_t *p = NULL;
        st = dqo_table_column_u32(ctx, t, col, &p);
        v->data = p;
        break;
    }
    case DQO_TYPE_I32: {
        const int32_t *p = NULL;
        st = dqo_table_column_i32(ctx, t, col, &p);
        v->data = p;
        break;
    }
    case DQO_TYPE_I64: {
        const int64_t *p = NULL;
        st = dqo_table_column_i64(ctx, t, col, &p);
        v->data = p;
        break;
    }
    case DQO_TYPE_F64: {
        const double *p = NULL;
        st = dqo_table_column_f64(ctx, t, col, &p);
        v->data = p;
        break;
    }
    case DQO_TYPE_STR: {
        const uint32_t *p = NULL;
        st = dqo_table_column_codes(ctx, t, col, &p);
        v->data = p;
        break;
    }
    default:
        return cli_error("column %d has an unknown type %d", col,
                         (int)v->type);
    }
    if (st != DQO_OK)
        return api_error(ctx, st);
    return 0;
}

static int col_is_null(const col_view *v, uint64_t row)
{
    return v->valid != NULL && v->valid[row] == 0;
}

/* The text of one cell (NULL for a NULL value); see cell_fn. */
static const char *col_cell(const col_view *v, uint64_t row, char *buf)
{
    if (col_is_null(v, row))
        return NULL;
    switch (v->type) {
    case DQO_TYPE_U32:
        snprintf(buf, CELL_BUF, "%" PRIu32, ((const uint32_t *)v->data)[row]);
        return buf;
    case DQO_TYPE_I32:
        snprintf(buf, CELL_BUF, "%" PRId32, ((const int32_t *)v->data)[row]);
        return buf;
    case DQO_TYPE_I64:
        snprintf(buf, CELL_BUF, "%" PRId64, ((const int64_t *)v->data)[row]);
        return buf;
    case DQO_TYPE_F64:
        format_double(((const double *)v->data)[row], buf, CELL_BUF);
        return buf;
    case DQO_TYPE_STR: {
        const char *s = dqo_table_dict_string(
            v->table, v->col, ((const uint32_t *)v->data)[row]);
        return s != NULL ? s : "?";
    }
    default:
        return "?";
    }
}

/* ============================================================== statistics */

static const char *order_name(dqo_order o)
{
    switch (o) {
    case DQO_ORDER_ASC: return "asc";
    case DQO_ORDER_DESC: return "desc";
    case DQO_ORDER_CONST: return "const";
    default: return "none";
    }
}

typedef struct stats_rows {
    const dqo_table *table;
    const int *cols;
    const dqo_column_stats *st;
} stats_rows;

static const char *const STATS_HEADER[] = {
    "column", "type", "rows", "nulls", "min", "max",
    "distinct", "runs", "order", "density"};
static const unsigned char STATS_RIGHT[] = {0, 0, 1, 1, 1, 1, 1, 1, 0, 1};
enum { STATS_NCOLS = 10 };

static const char *stats_cell(const void *arg, uint64_t row, int col,
                              char *buf)
{
    const stats_rows *sr = arg;
    int c = sr->cols[row];
    const dqo_column_stats *st = &sr->st[row];
    dqo_type type = dqo_table_column_type(sr->table, c);
    int empty = st->nulls >= st->rows;
    switch (col) {
    case 0: {
        const char *name = dqo_table_column_name(sr->table, c);
        return name != NULL ? name : "?";
    }
    case 1: return dqo_type_name(type);
    case 2: snprintf(buf, CELL_BUF, "%" PRIu64, st->rows); return buf;
    case 3: snprintf(buf, CELL_BUF, "%" PRIu64, st->nulls); return buf;
    case 4:
    case 5:
        if (empty)
            return "-";
        if (type == DQO_TYPE_F64)
            format_double(col == 4 ? st->fmin : st->fmax, buf, CELL_BUF);
        else
            snprintf(buf, CELL_BUF, "%" PRId64, col == 4 ? st->min : st->max);
        return buf;
    case 6: snprintf(buf, CELL_BUF, "%" PRIu64, st->distinct); return buf;
    case 7: snprintf(buf, CELL_BUF, "%" PRIu64, st->runs); return buf;
    case 8: return order_name(st->order);
    case 9: {
        if (empty || type == DQO_TYPE_F64)
            return "-";
        double range = (double)st->max - (double)st->min + 1.0;
        double d = range > 0.0 ? (double)st->distinct / range : 0.0;
        /* The distinct count is an estimate and may overshoot a full
         * range; a range cannot be more than fully used. */
        if (d > 1.0)
            d = 1.0;
        snprintf(buf, CELL_BUF, "%.3g", d);
        return buf;
    }
    default: return "?";
    }
}

/* Computes and prints the statistics of columns cols[0..n) of `t`. Returns 0
 * or the exit status. */
static int print_stats(FILE *out, dqo_ctx *ctx, const dqo_table *t,
                       const int *cols, size_t n, out_format fmt)
{
    dqo_column_stats *st = calloc(n + 1, sizeof *st);
    if (st == NULL)
        return cli_error("out of memory");
    for (size_t i = 0; i < n; i++) {
        dqo_status s = dqo_table_column_stats(ctx, t, cols[i], &st[i]);
        if (s != DQO_OK) {
            free(st);
            return api_error(ctx, s);
        }
    }
    stats_rows sr = {t, cols, st};
    grid g = {STATS_NCOLS, STATS_HEADER, STATS_RIGHT, n, stats_cell, &sr};
    int rc = print_grid(out, &g, fmt) == 0 ? 0 : cli_error("out of memory");
    free(st);
    return rc;
}

/* ================================================================ sorting */

/* A comparison of two indices under some context (C11 qsort has none). */
typedef int (*index_cmp)(const void *ctx, size_t a, size_t b);

/* Stable top-down merge sort of a[0..n) using tmp[0..n): O(n log n). */
static void merge_sort(size_t *a, size_t *tmp, size_t n, index_cmp cmp,
                       const void *ctx)
{
    if (n < 2)
        return;
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            size_t x = a[i], j = i;
            while (j > 0 && cmp(ctx, a[j - 1], x) > 0) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = x;
        }
        return;
    }
    size_t h = n / 2;
    merge_sort(a, tmp, h, cmp, ctx);
    merge_sort(a + h, tmp, n - h, cmp, ctx);
    if (cmp(ctx, a[h - 1], a[h]) <= 0)
        return;
    memcpy(tmp, a, h * sizeof *a);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        a[k++] = cmp(ctx, a[j], tmp[i]) < 0 ? a[j++] : tmp[i++];
    while (i < h)
        a[k++] = tmp[i++];
}

/* Sort keys: the result's key columns, with strings ranked by their text. */
typedef struct sort_key {
    col_view view;
    uint32_t *rank; /* string columns: rank of each dictionary code */
} sort_key;

typedef struct sort_ctx {
    const sort_key *keys;
    int nkeys;
} sort_ctx;

static int cmp_dict(const void *ctx, size_t a, size_t b)
{
    const col_view *v = ctx;
    const char *x = dqo_table_dict_string(v->table, v->col, (uint32_t)a);
    const char *y = dqo_table_dict_string(v->table, v->col, (uint32_t)b);
    return strcmp(x != NULL ? x : "", y != NULL ? y : "");
}

#define CMP3(x, y) ((x) < (y) ? -1 : (x) > (y) ? 1 : 0)

static int cmp_rows(const void *ctx, size_t a, size_t b)
{
    const sort_ctx *sc = ctx;
    for (int k = 0; k < sc->nkeys; k++) {
        const sort_key *key = &sc->keys[k];
        const col_view *v = &key->view;
        int na = col_is_null(v, a), nb = col_is_null(v, b);
        if (na || nb) {
            if (na != nb)
                return na ? 1 : -1;
            continue;
        }
        int c = 0;
        switch (v->type) {
        case DQO_TYPE_U32: {
            const uint32_t *d = v->data;
            c = CMP3(d[a], d[b]);
            break;
        }
        case DQO_TYPE_I32: {
            const int32_t *d = v->data;
            c = CMP3(d[a], d[b]);
            break;
        }
        case DQO_TYPE_I64: {
            const int64_t *d = v->data;
            c = CMP3(d[a], d[b]);
            break;
        }
        case DQO_TYPE_F64: {
            /* NaN sorts after every number, like NULL. */
            const double *d = v->data;
            int xa = isnan(d[a]), xb = isnan(d[b]);
            c = xa || xb ? xa - xb : CMP3(d[a], d[b]);
            break;
        }
        case DQO_TYPE_STR: {
            const uint32_t *d = v->data;
            uint32_t n = dqo_table_dict_size(v->table, v->col);
            uint32_t ra = d[a] < n ? key->rank[d[a]] : UINT32_MAX;
            uint32_t rb = d[b] < n ? key->rank[d[b]] : UINT32_MAX;
            c = CMP3(ra, rb);
            break;
        }
        default:
            break;
        }
        if (c != 0)
            return c;
    }
    return 0;
}

/* Ranks the dictionary of a string column by text: rank[code] is the code's
 * position in sorted order. Returns 0 or -1 when out of memory. */
static int rank_dictionary(sort_key *key)
{
    uint32_t n = dqo_table_dict_size(key->view.table, key->view.col);
    size_t *order = malloc(((size_t)n + 1) * sizeof *order);
    size_t *tmp = malloc(((size_t)n + 1) * sizeof *tmp);
    key->rank = malloc(((size_t)n + 1) * sizeof *key->rank);
    if (order == NULL || tmp == NULL || key->rank == NULL) {
        free(order);
        free(tmp);
        return -1;
    }
    for (uint32_t i = 0; i < n; i++)
        order[i] = i;
    merge_sort(order, tmp, n, cmp_dict, &key->view);
    for (uint32_t i = 0; i < n; i++)
        key->rank[order[i]] = i;
    free(order);
    free(tmp);
    return 0;
}

/* Builds the row order of `result` sorted by its first nkeys columns.
 * Returns 0 with *perm owned by the caller, or the exit status. */
static int sort_result(dqo_ctx *ctx, const dqo_table *result, int nkeys,
                       size_t **perm)
{
    uint64_t rows = dqo_table_rows(result);
    int rc = 0;
    *perm = NULL;
    if (rows > SIZE_MAX / sizeof(size_t) - 1)
        return cli_error("too many groups to sort: %" PRIu64, rows);
    sort_key *keys = calloc((size_t)nkeys + 1, sizeof *keys);
    size_t *p = malloc(((size_t)rows + 1) * sizeof *p);
    size_t *tmp = malloc(((size_t)rows + 1) * sizeof *tmp);
    if (keys == NULL || p == NULL || tmp == NULL) {
        rc = cli_error("out of memory sorting %" PRIu64 " groups", rows);
        goto fail;
    }
    for (int k = 0; k < nkeys; k++) {
        rc = col_view_init(ctx, result, k, &keys[k].view);
        if (rc != 0)
            goto fail;
        if (keys[k].view.type == DQO_TYPE_STR &&
            rank_dictionary(&keys[k]) != 0) {
            rc = cli_error("out of memory sorting a string dictionary");
            goto fail;
        }
    }
    for (size_t i = 0; i < rows; i++)
        p[i] = i;
    sort_ctx sc = {keys, nkeys};
    merge_sort(p, tmp, (size_t)rows, cmp_rows, &sc);
    *perm = p;
    p = NULL;
fail:
    if (keys != NULL)
        for (int k = 0; k < nkeys; k++)
            free(keys[k].rank);
    free(keys);
    free(p);
    free(tmp);
    return rc;
}

/* ============================================================ subcommands */

static int cmd_help(int argc, char **argv)
{
    const char *topic = argc > 0 ? argv[0] : NULL;
    const char *text = help_text(topic);
    if (text == NULL)
        return usage_error(NULL, "no help for unknown command '%s'", topic);
    fputs(text, stdout);
    return EXIT_OK;
}

/* Creates a context with the thread count applied. */
int open_ctx(int threads, dqo_ctx **ctx)
{
    dqo_status st = dqo_ctx_create(ctx);
    if (st != DQO_OK) {
        *ctx = NULL;
        return api_error(NULL, st);
    }
    st = dqo_ctx_set_threads(*ctx, threads);
    if (st != DQO_OK)
        return api_error(*ctx, st);
    return 0;
}

static int cmd_gen(int argc, char **argv)
{
    const char *rows_s = NULL, *groups_s = NULL, *seed_s = NULL,
               *out_path = NULL, *threads_s = NULL;
    int sorted = 0, sparse = 0, quiet = 0;
    const opt_spec specs[] = {
        {"rows", 0, OPT_VALUE, NULL, &rows_s, NULL},
        {"groups", 0, OPT_VALUE, NULL, &groups_s, NULL},
        {"sorted", 0, OPT_FLAG, &sorted, NULL, NULL},
        {"sparse", 0, OPT_FLAG, &sparse, NULL, NULL},
        {"seed", 0, OPT_VALUE, NULL, &seed_s, NULL},
        {"out", 'o', OPT_VALUE, NULL, &out_path, NULL},
        {"threads", 't', OPT_VALUE, NULL, &threads_s, NULL},
        {"quiet", 'q', OPT_FLAG, &quiet, NULL, NULL},
        {NULL, 0, OPT_FLAG, NULL, NULL, NULL}};
    parsed_args pa = {{NULL, 0, 0}, 0};
    dqo_ctx *ctx = NULL;
    dqo_table *t = NULL;
    int rc = parse_args("gen", argc, argv, specs, &pa);
    if (rc != 0)
        goto done;
    if (pa.help) {
        fputs(HELP_GEN, stdout);
        goto done;
    }
    if (pa.positional.n > 0) {
        rc = usage_error("gen", "unexpected argument '%s'",
                         pa.positional.v[0]);
        goto done;
    }
    uint64_t rows = 0, groups = 0, seed = 1;
    int threads = 0;
    if (rows_s == NULL || groups_s == NULL || out_path == NULL) {
        rc = usage_error("gen", "missing %s",
                         rows_s == NULL     ? "--rows"
                         : groups_s == NULL ? "--groups"
                                            : "--out");
        goto done;
    }
    if (parse_count(rows_s, &rows) != 0) {
        rc = usage_error("gen", "invalid value '%s' for --rows (expected a "
                                "count like 1000, 10K, 100M or 1e6)",
                         rows_s);
        goto done;
    }
    if (parse_count(groups_s, &groups) != 0) {
        rc = usage_error("gen", "invalid value '%s' for --groups (expected "
                                "a count like 1000, 10K, 100M or 1e6)",
                         groups_s);
        goto done;
    }
    if (seed_s != NULL && parse_uint(seed_s, UINT64_MAX, &seed) != 0) {
        rc = usage_error("gen", "invalid value '%s' for --seed (expected a "
                                "whole number)",
                         seed_s);
        goto done;
    }
    if (out_path[0] == '\0') {
        rc = usage_error("gen", "--out needs a non-empty path");
        goto done;
    }
    rc = parse_threads("gen", threads_s, &threads);
    if (rc != 0)
        goto done;
    rc = open_ctx(threads, &ctx);
    if (rc != 0)
        goto done;

    if (!quiet)
        fprintf(stderr, "generating %" PRIu64 " rows, %" PRIu64
                        " groups (%s, %s) ... ",
                rows, groups, sparse ? "sparse" : "dense",
                sorted ? "sorted" : "random order");
    double t0 = now_seconds();
    dqo_status st =
        dqo_gen_grouping(ctx, rows, groups, sorted, sparse, seed, &t);
    if (st != DQO_OK) {
        if (!quiet)
            fputs("failed\n", stderr);
        t = NULL;
        rc = api_error(ctx, st);
        goto done;
    }
    double t1 = now_seconds();
    int csv = ends_with_ci(out_path, ".csv");
    if (!quiet)
        fprintf(stderr, "done in %.2f s\nwriting %s %s ... ", t1 - t0,
                csv ? "CSV file" : "column directory", out_path);
    st = csv ? dqo_table_write_csv(ctx, t, out_path)
             : dqo_table_write_dir(ctx, t, out_path);
    if (st != DQO_OK) {
        if (!quiet)
            fputs("failed\n", stderr);
        rc = api_error(ctx, st);
        goto done;
    }
    if (!quiet)
        fprintf(stderr, "done in %.2f s\n", now_seconds() - t1);
done:
    dqo_table_destroy(t);
    dqo_ctx_destroy(ctx);
    free(pa.positional.v);
    return rc;
}

/* Resolves column names to indices; an empty list means every column.
 * Returns 0 with *cols (caller frees) and *n, or the exit status. */
static int resolve_columns(dqo_ctx *ctx, const dqo_table *t,
                           const owned_list *names, int **cols, size_t *n)
{
    size_t count = names->n != 0 ? names->n : (size_t)dqo_table_ncols(t);
    *cols = calloc(count + 1, sizeof **cols);
    *n = count;
    if (*cols == NULL)
        return cli_error("out of memory");
    for (size_t i = 0; i < count; i++) {
        if (names->n == 0) {
            (*cols)[i] = (int)i;
            continue;
        }
        dqo_status st = dqo_table_column_index(ctx, t, names->v[i], &(*cols)[i]);
        if (st != DQO_OK) {
            free(*cols);
            *cols = NULL;
            return api_error(ctx, st);
        }
    }
    return 0;
}

static int cmd_stats(int argc, char **argv)
{
    const char *types = NULL, *format_s = NULL, *threads_s = NULL;
    str_list columns_opt = {NULL, 0, 0};
    const opt_spec specs[] = {
        {"columns", 'c', OPT_LIST, NULL, NULL, &columns_opt},
        {"types", 0, OPT_VALUE, NULL, &types, NULL},
        {"format", 'f', OPT_VALUE, NULL, &format_s, NULL},
        {"threads", 't', OPT_VALUE, NULL, &threads_s, NULL},
        {NULL, 0, OPT_FLAG, NULL, NULL, NULL}};
    parsed_args pa = {{NULL, 0, 0}, 0};
    owned_list columns = {NULL, 0, 0};
    dqo_ctx *ctx = NULL;
    dqo_table *t = NULL;
    int *cols = NULL;
    out_format fmt = FORMAT_TABLE;
    int threads = 0;
    int rc = parse_args("stats", argc, argv, specs, &pa);
    if (rc != 0)
        goto done;
    if (pa.help) {
        fputs(HELP_STATS, stdout);
        goto done;
    }
    if (pa.positional.n != 1) {
        rc = pa.positional.n == 0
                 ? usage_error("stats", "missing TABLE")
                 : usage_error("stats", "unexpected argument '%s'",
                               pa.positional.v[1]);
        goto done;
    }
    if ((rc = parse_format("stats", format_s, &fmt)) != 0 ||
        (rc = parse_threads("stats", threads_s, &threads)) != 0)
        goto done;
    if (split_items(&columns_opt, &columns) != 0) {
        rc = cli_error("out of memory");
        goto done;
    }
    for (size_t i = 0; i < columns.n; i++)
        if (columns.v[i][0] == '\0') {
            rc = usage_error("stats", "empty column name in --columns");
            goto done;
        }
    if ((rc = open_ctx(threads, &ctx)) != 0 ||
        (rc = load_table(ctx, pa.positional.v[0], types, 0, &t)) != 0)
        goto done;
    size_t n = 0;
    if ((rc = resolve_columns(ctx, t, &columns, &cols, &n)) != 0)
        goto done;
    rc = print_stats(stdout, ctx, t, cols, n, fmt);
done:
    free(cols);
    dqo_table_destroy(t);
    dqo_ctx_destroy(ctx);
    owned_list_free(&columns);
    free(columns_opt.v);
    free(pa.positional.v);
    return rc;
}

/* One parsed aggregate: FUNC(COL) with an optional alias. */
typedef struct agg_spec {
    dqo_agg agg;
    char *column; /* NULL for count(*) */
    char *alias;  /* NULL for the library's default name */
} agg_spec;

/* Parses "func(col)", "func(col)=alias" or "func(col) AS alias" (function
 * names and AS in any case). Returns 0, or the usage exit status. */
static int parse_agg(const char *spec, agg_spec *out)
{
    static const struct {
        const char *name;
        dqo_agg agg;
    } funcs[] = {{"count", DQO_AGG_COUNT}, {"sum", DQO_AGG_SUM},
                 {"min", DQO_AGG_MIN},     {"max", DQO_AGG_MAX},
                 {"avg", DQO_AGG_AVG},     {"mean", DQO_AGG_AVG}};
    out->column = out->alias = NULL;
    const char *open = strchr(spec, '(');
    const char *close = open != NULL ? strchr(open, ')') : NULL;
    if (open == NULL || close == NULL)
        return usage_error("group",
                           "invalid aggregate '%s' (expected FUNC(COL), for "
                           "example sum(v) or count(*))",
                           spec);
    char *func = dup_trimmed(spec, (size_t)(open - spec));
    char *arg = dup_trimmed(open + 1, (size_t)(close - open - 1));
    char *rest = dup_trimmed(close + 1, strlen(close + 1));
    int rc = 0;
    if (func == NULL || arg == NULL || rest == NULL) {
        rc = cli_error("out of memory");
        goto done;
    }
    if (func[0] == '\0') {
        rc = usage_error("group", "missing function name in '%s' (expected "
                                  "FUNC(COL), for example sum(v))",
                         spec);
        goto done;
    }
    size_t f = 0, nfuncs = sizeof funcs / sizeof funcs[0];
    while (f < nfuncs && strcasecmp(func, funcs[f].name) != 0)
        f++;
    if (f == nfuncs) {
        rc = usage_error("group",
                         "unknown aggregate function '%s' in '%s' (expected "
                         "count, sum, min, max or avg)",
                         func, spec);
        goto done;
    }
    out->agg = funcs[f].agg;
    if (strcmp(arg, "*") == 0 || arg[0] == '\0') {
        if (out->agg != DQO_AGG_COUNT) {
            rc = usage_error("group", "%s needs a column in '%s'", func, spec);
            goto done;
        }
        out->agg = DQO_AGG_COUNT_STAR;
    } else {
        out->column = arg;
        arg = NULL;
    }
    const char *alias = NULL;
    if (rest[0] == '=')
        alias = rest + 1;
    else if (strncasecmp(rest, "as", 2) == 0 &&
             (rest[2] == ' ' || rest[2] == '\t'))
        alias = rest + 2;
    else if (rest[0] != '\0') {
        rc = usage_error("group",
                         "unexpected '%s' after the aggregate in '%s' "
                         "(expected '=ALIAS' or ' AS ALIAS')",
                         rest, spec);
        goto done;
    }
    if (alias != NULL) {
        out->alias = dup_trimmed(alias, strlen(alias));
        if (out->alias == NULL) {
            rc = cli_error("out of memory");
            goto done;
        }
        if (out->alias[0] == '\0') {
            rc = usage_error("group", "empty alias in '%s'", spec);
            goto done;
        }
    }
done:
    if (rc != 0) {
        free(out->column);
        free(out->alias);
        out->column = out->alias = NULL;
    }
    free(func);
    free(arg);
    free(rest);
    return rc;
}

/* The result rows handed to the grid printer, in `perm` order when sorted. */
typedef struct result_rows {
    const col_view *cols;
    const size_t *perm;
} result_rows;

static const char *result_cell(const void *arg, uint64_t row, int col,
                               char *buf)
{
    const result_rows *rr = arg;
    uint64_t r = rr->perm != NULL ? rr->perm[row] : row;
    return col_cell(&rr->cols[col], r, buf);
}

/* Prints the result table limited to `limit` rows (0: all). Returns 0 or
 * the exit status. */
static int print_result(dqo_ctx *ctx, const dqo_table *result, int nkeys,
                        int sort, out_format fmt, uint64_t limit, int quiet)
{
    int ncols = dqo_table_ncols(result);
    uint64_t rows = dqo_table_rows(result);
    col_view *cols = calloc((size_t)ncols + 1, sizeof *cols);
    const char **header = calloc((size_t)ncols + 1, sizeof *header);
    unsigned char *right = calloc((size_t)ncols + 1, 1);
    size_t *perm = NULL;
    int rc = 0;
    if (cols == NULL || header == NULL || right == NULL) {
        rc = cli_error("out of memory");
        goto done;
    }
    for (int c = 0; c < ncols; c++) {
        if ((rc = col_view_init(ctx, result, c, &cols[c])) != 0)
            goto done;
        header[c] = dqo_table_column_name(result, c);
        if (header[c] == NULL)
            header[c] = "?";
        right[c] = cols[c].type != DQO_TYPE_STR;
    }
    if (sort && (rc = sort_result(ctx, result, nkeys, &perm)) != 0)
        goto done;
    uint64_t shown = limit != 0 && limit < rows ? limit : rows;
    result_rows rr = {cols, perm};
    grid g = {ncols, header, right, shown, result_cell, &rr};
    if (print_grid(stdout, &g, fmt) != 0) {
        rc = cli_error("out of memory");
        goto done;
    }
    if (fmt == FORMAT_TABLE) {
        if (shown < rows)
            printf("%" PRIu64 " groups (showing %" PRIu64 ")\n", rows, shown);
        else
            printf("%" PRIu64 " group%s\n", rows, rows == 1 ? "" : "s");
    } else if (shown < rows && !quiet) {
        fprintf(stderr, "%" PRIu64 " groups (showing %" PRIu64 ")\n", rows,
                shown);
    }
done:
    free(perm);
    free(right);
    free(header);
    free(cols);
    return rc;
}

/* Checks a --kernel name against the library's list. */
static int kernel_known(const char *name)
{
    if (strcmp(name, "auto") == 0)
        return 1;
    const char *const *k = dqo_group_kernels();
    for (; k != NULL && *k != NULL; k++)
        if (strcmp(*k, name) == 0)
            return 1;
    return 0;
}

/* Writes "auto, hg, ..." from the library's list of kernels into buf. */
static void kernel_list(char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "auto");
    const char *const *k = dqo_group_kernels();
    for (; k != NULL && *k != NULL && used < len; k++)
        used += (size_t)snprintf(buf + used, len - used, ", %s", *k);
}

/* The options of `dqo group`, gathered by parse_group_options. */
typedef struct group_opts {
    const char *table;
    owned_list by;
    agg_spec *aggs;
    size_t naggs;
    const char *kernel;
    const char *types;
    const char *device;
    int threads;
    out_format fmt;
    uint64_t limit;
    int sort, time, quiet, help, resident;
} group_opts;

static void group_opts_free(group_opts *o)
{
    owned_list_free(&o->by);
    for (size_t i = 0; i < o->naggs; i++) {
        free(o->aggs[i].column);
        free(o->aggs[i].alias);
    }
    free(o->aggs);
}

/* True for "cl:N" with N a whole number. */
static int is_cl_id(const char *s)
{
    if (strncmp(s, "cl:", 3) != 0 || s[3] == '\0')
        return 0;
    for (const char *p = s + 3; *p != '\0'; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}

/* Parses and validates every option of `dqo group` before the library is
 * touched, so that usage errors never cost a table load. */
static int parse_group_options(int argc, char **argv, group_opts *o)
{
    const char *format_s = NULL, *threads_s = NULL, *limit_s = NULL;
    str_list by_opt = {NULL, 0, 0}, agg_opt = {NULL, 0, 0};
    owned_list agg_items = {NULL, 0, 0};
    const opt_spec specs[] = {
        {"by", 'b', OPT_LIST, NULL, NULL, &by_opt},
        {"agg", 'a', OPT_LIST, NULL, NULL, &agg_opt},
        {"kernel", 'k', OPT_VALUE, NULL, &o->kernel, NULL},
        {"device", 'd', OPT_VALUE, NULL, &o->device, NULL},
        {"resident", 0, OPT_FLAG, &o->resident, NULL, NULL},
        {"threads", 't', OPT_VALUE, NULL, &threads_s, NULL},
        {"format", 'f', OPT_VALUE, NULL, &format_s, NULL},
        {"limit", 'n', OPT_VALUE, NULL, &limit_s, NULL},
        {"types", 0, OPT_VALUE, NULL, &o->types, NULL},
        {"sort", 's', OPT_FLAG, &o->sort, NULL, NULL},
        {"time", 0, OPT_FLAG, &o->time, NULL, NULL},
        {"quiet", 'q', OPT_FLAG, &o->quiet, NULL, NULL},
        {NULL, 0, OPT_FLAG, NULL, NULL, NULL}};
    parsed_args pa = {{NULL, 0, 0}, 0};
    int rc = parse_args("group", argc, argv, specs, &pa);
    if (rc != 0 || (o->help = pa.help) != 0)
        goto done;
    if (pa.positional.n != 1) {
        rc = pa.positional.n == 0
                 ? usage_error("group", "missing TABLE")
                 : usage_error("group", "unexpected argument '%s'",
                               pa.positional.v[1]);
        goto done;
    }
    o->table = pa.positional.v[0];
    if ((rc = parse_format("group", format_s, &o->fmt)) != 0 ||
        (rc = parse_threads("group", threads_s, &o->threads)) != 0)
        goto done;
    o->limit = o->fmt == FORMAT_TABLE ? DEFAULT_TABLE_LIMIT : 0;
    if (limit_s != NULL && parse_count(limit_s, &o->limit) != 0) {
        rc = usage_error("group", "invalid value '%s' for --limit (expected "
                                  "a whole number, 0 for all)",
                         limit_s);
        goto done;
    }
    if (o->kernel != NULL && !kernel_known(o->kernel)) {
        char names[256];
        kernel_list(names, sizeof names);
        rc = usage_error("group", "unknown kernel '%s' (expected %s)",
                         o->kernel, names);
        goto done;
    }
    if (o->device != NULL && strcmp(o->device, "auto") != 0 &&
        strcmp(o->device, "cpu") != 0 && !is_cl_id(o->device)) {
        rc = usage_error("group", "invalid value '%s' for --device (expected "
                                  "auto, cpu or cl:N)",
                         o->device);
        goto done;
    }
    if (o->resident && o->device != NULL && strcmp(o->device, "cpu") == 0) {
        rc = usage_error("group", "--resident needs an OpenCL device "
                                  "(--device cl:N or auto), not cpu");
        goto done;
    }
    if (split_items(&by_opt, &o->by) != 0 ||
        split_items(&agg_opt, &agg_items) != 0) {
        rc = cli_error("out of memory");
        goto done;
    }
    if (o->by.n == 0) {
        rc = usage_error("group", "missing --by (the group key columns)");
        goto done;
    }
    for (size_t i = 0; i < o->by.n; i++)
        if (o->by.v[i][0] == '\0') {
            rc = usage_error("group", "empty column name in --by");
            goto done;
        }
    /* Without --agg the query counts the rows of each group. */
    size_t n = agg_items.n != 0 ? agg_items.n : 1;
    o->aggs = calloc(n, sizeof *o->aggs);
    if (o->aggs == NULL) {
        rc = cli_error("out of memory");
        goto done;
    }
    if (agg_items.n == 0) {
        o->aggs[0].agg = DQO_AGG_COUNT_STAR;
        o->naggs = 1;
    }
    for (size_t i = 0; i < agg_items.n; i++) {
        if ((rc = parse_agg(agg_items.v[i], &o->aggs[i])) != 0)
            goto done;
        o->naggs = i + 1;
    }
done:
    owned_list_free(&agg_items);
    free(by_opt.v);
    free(agg_opt.v);
    free(pa.positional.v);
    return rc;
}

/* Prints the statistics of the key columns, the plan and the times to
 * stderr. The statistics were cached by the run, so this costs little. */
static int print_diagnostics(dqo_ctx *ctx, const dqo_table *input,
                             const dqo_group *g, const group_opts *o,
                             double load_ms, double query_ms)
{
    int *cols = NULL;
    size_t n = 0;
    int rc = resolve_columns(ctx, input, &o->by, &cols, &n);
    if (rc != 0)
        return rc;
    fputs("key statistics:\n", stderr);
    rc = print_stats(stderr, ctx, input, cols, n, FORMAT_TABLE);
    free(cols);
    if (rc != 0)
        return rc;
    fprintf(stderr, "plan: %s\n", dqo_group_explain(g));
    if (o->time)
        fprintf(stderr, "time: query %.3f ms (load %.3f ms)\n", query_ms,
                load_ms);
    return 0;
}

/* --resident: copies the table to `device` (cl:N), or under auto (NULL)
 * to the first OpenCL device; under auto a device that cannot take it is a
 * note, not an error: the query then runs on the CPU. Writes the device
 * used into dev ("" when none). */
static int make_resident(dqo_ctx *ctx, dqo_table *t, const char *device,
                         char *dev, size_t cap)
{
    const int automatic = device == NULL || strcmp(device, "auto") == 0;
    if (automatic) {
        int n = dqo_location_count(ctx);
        for (int i = 0; i < n && dev[0] == '\0'; i++) {
            dqo_location_info li;
            if (dqo_location_get(ctx, i, &li) == DQO_OK &&
                li.kind == DQO_LOCATION_OPENCL)
                snprintf(dev, cap, "%s", li.id);
        }
        if (dev[0] == '\0') {
            fputs("dqo: note: --resident: no OpenCL device, so the table "
                  "stays in host memory and the query runs on the CPU\n",
                  stderr);
            return 0;
        }
    } else {
        snprintf(dev, cap, "%s", device);
    }
    dqo_status st = dqo_table_to_device(ctx, t, dev);
    if (st == DQO_OK)
        return 0;
    if (!automatic)
        return api_error(ctx, st);
    fprintf(stderr, "dqo: note: --resident: %s; the query runs on the CPU\n",
            dqo_ctx_errmsg(ctx));
    dev[0] = '\0';
    return 0;
}

static int cmd_group(int argc, char **argv)
{
    group_opts o;
    memset(&o, 0, sizeof o);
    dqo_ctx *ctx = NULL;
    dqo_table *input = NULL, *result = NULL;
    dqo_group *g = NULL;
    dqo_status st = DQO_OK;
    int rc = parse_group_options(argc, argv, &o);
    if (rc != 0)
        goto done;
    if (o.help) {
        fputs(HELP_GROUP, stdout);
        goto done;
    }
    if ((rc = open_ctx(o.threads, &ctx)) != 0)
        goto done;
    double t0 = now_seconds();
    if ((rc = load_table(ctx, o.table, o.types, o.quiet, &input)) != 0)
        goto done;
    double t1 = now_seconds();
    if ((st = dqo_group_create(ctx, input, &g)) != DQO_OK) {
        g = NULL;
        goto api_fail;
    }
    for (size_t i = 0; i < o.by.n; i++)
        if ((st = dqo_group_add_key(g, o.by.v[i])) != DQO_OK)
            goto api_fail;
    for (size_t i = 0; i < o.naggs; i++)
        if ((st = dqo_group_add_agg(g, o.aggs[i].agg, o.aggs[i].column,
                                    o.aggs[i].alias)) != DQO_OK)
            goto api_fail;
    if (o.kernel != NULL && (st = dqo_group_set_kernel(g, o.kernel)) != DQO_OK)
        goto api_fail;
    if (o.device != NULL && (st = dqo_group_set_device(g, o.device)) != DQO_OK)
        goto api_fail;
    double tu = now_seconds();
    char dev[32] = "";
    if (o.resident && (rc = make_resident(ctx, input, o.device, dev,
                                          sizeof dev)) != 0)
        goto done;
    double t2 = now_seconds();
    if (dev[0] != '\0' && o.time)
        fprintf(stderr, "time: copy to %s %.3f ms\n", dev, (t2 - tu) * 1e3);
    if ((st = dqo_group_run(g, &result)) != DQO_OK) {
        result = NULL;
        goto api_fail;
    }
    double t3 = now_seconds();
    /* A device that failed under --device auto: say so even with --quiet. */
    const char *fell = strstr(dqo_group_explain(g), "could not run it");
    if (fell != NULL && o.quiet)
        fprintf(stderr, "dqo: note: %s\n", dqo_group_explain(g));
    rc = print_result(ctx, result, (int)o.by.n, o.sort, o.fmt, o.limit,
                      o.quiet);
    if (rc == 0 && !o.quiet)
        rc = print_diagnostics(ctx, input, g, &o, (t1 - t0) * 1e3,
                               (t3 - t2) * 1e3);
    else if (rc == 0 && o.time)
        fprintf(stderr, "time: query %.3f ms (load %.3f ms)\n",
                (t3 - t2) * 1e3, (t1 - t0) * 1e3);
    goto done;
api_fail:
    rc = api_error(ctx, st);
done:
    dqo_table_destroy(result);
    dqo_group_destroy(g);
    dqo_table_destroy(input);
    dqo_ctx_destroy(ctx);
    group_opts_free(&o);
    return rc;
}

/* ================================================================== main */

/* Flushes stdout and reports a failed write (a full disk, a closed pipe),
 * which would otherwise go unnoticed. */
static int finish(int rc)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "dqo: error: writing the output: %s\n",
                strerror(errno));
        return rc != 0 ? rc : EXIT_ERROR;
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argv[1] == NULL) {
        fputs(HELP_MAIN, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    int sub_argc = argc - 2;
    char **sub_argv = argv + 2;
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return finish(cmd_help(sub_argc, sub_argv));
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("dqo %s\n", dqo_version_string());
        return finish(EXIT_OK);
    }
    if (strcmp(cmd, "help") == 0)
        return finish(cmd_help(sub_argc, sub_argv));
    if (strcmp(cmd, "gen") == 0)
        return finish(cmd_gen(sub_argc, sub_argv));
    if (strcmp(cmd, "stats") == 0)
        return finish(cmd_stats(sub_argc, sub_argv));
    if (strcmp(cmd, "group") == 0)
        return finish(cmd_group(sub_argc, sub_argv));
    if (strcmp(cmd, "devices") == 0)
        return finish(cmd_devices(sub_argc, sub_argv));
    if (strcmp(cmd, "calibrate") == 0)
        return finish(cmd_calibrate(sub_argc, sub_argv));
    if (strcmp(cmd, "query") == 0)
        return finish(cmd_query(sub_argc, sub_argv));
    if (strcmp(cmd, "explain") == 0)
        return finish(cmd_explain(sub_argc, sub_argv));
    if (strcmp(cmd, "mav") == 0)
        return finish(cmd_mav(sub_argc, sub_argv));
    if (cmd[0] == '-')
        return usage_error(NULL, "unknown option '%s'", cmd);
    return usage_error(NULL, "unknown command '%s'", cmd);
}
