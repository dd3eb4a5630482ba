/*
 * query.c - `dqo query`, `dqo explain` and `dqo mav`: SQL over tables named
 * on the command line, the plan the DQO planner makes for it, and the
 * cache of materialised algorithmic views (optimised sub-plans) that the
 * planner reuses across runs.
 *
 * The work is the library's (dqo_query, dqo_explain, dqo_mav_list,
 * dqo_mav_clear); this file registers the tables given with --table, maps
 * the options onto dqo_query_options and prints the result table as
 * aligned text, CSV (RFC 4180) or JSON. Results go to stdout; warnings and
 * errors go to stderr. A syntax or binding error arrives as a message that
 * quotes the query with a caret under the offending token; it is printed
 * with its lines intact so that the caret stays under the token.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli.h"

/* Large enough for any number formatted here (a %.17g double needs 24). */
#define QCELL_BUF 64

typedef enum qformat { QFMT_TABLE = 0, QFMT_CSV = 1, QFMT_JSON = 2 } qformat;

/* ================================================================ help text */

#define HELP_TABLE_OPTS                                                        \
    "  -T, --table NAME=PATH  register the table NAME for FROM; PATH is a\n"   \
    "                   CSV file (header row; a .tsv file is tab separated;\n" \
    "                   types inferred) or a directory of binary column\n"     \
    "                   files NAME.TYPE as written by dqo gen. Repeat for\n"   \
    "                   several tables. A FROM may also name a CSV file\n"     \
    "                   directly: FROM 'sales.csv'.\n"                         \
    "  -d, --device LOC where granules may run: auto (default: every\n"        \
    "                   location; the planner chooses CPU or device by\n"      \
    "                   cost), cpu, cl:N, or a list such as cpu,cl:0\n"        \
    "  -t, --threads N  CPU worker threads, 0 for every core (default: 0)\n"   \
    "  --cost-model M   calibrated (default: milliseconds from the\n"          \
    "                   machine's calibration profile, or topology\n"          \
    "                   defaults) or paper\n"                                  \
    "                   (the DQO paper's Table 4: tuples touched)\n"           \
    "  --sqo            plan as a classical optimiser would (sortedness\n"     \
    "                   only, CPU only), for comparison with DQO\n"            \
    "  --no-mav         neither use nor store cached plans (MAVs)\n"           \
    "  -q, --quiet      no warnings on stderr (errors are still printed)\n"

#define HELP_QUERY_ENV                                                         \
    "environment:\n"                                                           \
    "  DQO_MAV=PATH      the MAV cache file (default: next to the\n"           \
    "                    calibration profile)\n"                               \
    "  DQO_PROFILE=PATH  the calibration profile (see dqo calibrate --help)\n"

const char HELP_QUERY[] =
    "usage: dqo query \"SQL\" [--table NAME=PATH ...] [--device LOC]\n"
    "                 [--threads N] [--format table|csv|json] [--explain]\n"
    "                 [--explain-analyze] [--dp-table] [--sqo]\n"
    "                 [--cost-model paper|calibrated] [--no-mav] [--quiet]\n"
    "\n"
    "Plans the query with the DQO planner, runs it and prints the result.\n"
    "The SQL subset: SELECT items FROM table [JOIN table ON a = b ...]\n"
    "[WHERE ...] [GROUP BY ...] [ORDER BY ... [ASC|DESC]] [LIMIT n], with\n"
    "COUNT(*), COUNT, SUM, MIN, MAX and AVG, arithmetic, comparisons,\n"
    "BETWEEN, IN and IS NULL. A syntax or binding error prints the query\n"
    "with a caret under the offending token and exits with status 1.\n"
    "\n"
    "options:\n" HELP_TABLE_OPTS
    "  -f, --format FMT table (default: aligned columns, a header and a\n"
    "                   '(N rows)' footer, NULL shown as NULL), csv (a\n"
    "                   header row, RFC 4180 quoting, NULL as an empty\n"
    "                   field) or json (an array of objects; numbers bare,\n"
    "                   NULL and non-finite numbers as null)\n"
    "  --explain        print the plan (granules, locations, estimated costs\n"
    "                   and the reason for each choice); do not run\n"
    "  --explain-analyze  run the query, print the result, then the plan\n"
    "                   with estimated and measured times per granule (on\n"
    "                   stdout after a blank line with --format table, on\n"
    "                   stderr with csv or json so that stdout stays clean)\n"
    "  --dp-table       with --explain, or alone: also print the dynamic\n"
    "                   programming table (the paper's Table 5 form); does\n"
    "                   not run the query\n"
    "\n" HELP_QUERY_ENV "\n"
    "examples:\n"
    "  dqo query \"SELECT k, COUNT(*), SUM(v) FROM g GROUP BY k ORDER BY k\"\n"
    "            --table g=/tmp/dense_100m\n"
    "  dqo query \"SELECT c.region, SUM(o.amount) AS total FROM orders o\n"
    "             JOIN customers c ON o.cid = c.id GROUP BY c.region\"\n"
    "            -T orders=o.csv -T customers=c.csv --format json\n"
    "  dqo query \"SELECT k, SUM(v) FROM g GROUP BY k\" -T g=/tmp/g\n"
    "            --explain --dp-table --cost-model paper\n";

const char HELP_EXPLAIN[] =
    "usage: dqo explain \"SQL\" [--table NAME=PATH ...] [--device LOC]\n"
    "                   [--threads N] [--dp-table] [--sqo]\n"
    "                   [--cost-model paper|calibrated] [--no-mav] [--quiet]\n"
    "\n"
    "Plans the query without running it and prints the plan: one line per\n"
    "granule with its location, estimated cost, output properties and the\n"
    "reason for the choice, and whether a cached plan (MAV) was used. The\n"
    "same as dqo query --explain.\n"
    "\n"
    "options:\n" HELP_TABLE_OPTS
    "  --dp-table       also print the dynamic programming table (the\n"
    "                   paper's Table 5 form)\n"
    "\n" HELP_QUERY_ENV "\n"
    "examples:\n"
    "  dqo explain \"SELECT k, SUM(v) FROM g GROUP BY k\" --table g=/tmp/g\n"
    "  dqo explain \"SELECT k, COUNT(*) FROM g GROUP BY k\" -T g=g.csv\n"
    "              --cost-model paper --dp-table\n";

const char HELP_MAV[] =
    "usage: dqo mav list\n"
    "       dqo mav clear\n"
    "\n"
    "Materialised algorithmic views (MAVs) are optimised sub-plans that the\n"
    "planner caches by logical shape, property class and location set, and\n"
    "reuses across queries and runs without enumerating again (EXPLAIN says\n"
    "when one was used). They are kept per machine in a text file next to\n"
    "the calibration profile.\n"
    "\n"
    "commands:\n"
    "  list   print the cached views: key, value (the granule choices) and\n"
    "         the number of hits\n"
    "  clear  forget every cached view, remove the file, and print what was\n"
    "         cleared\n"
    "\n" HELP_QUERY_ENV "\n"
    "examples:\n"
    "  dqo mav list\n"
    "  DQO_MAV=/tmp/mav.txt dqo mav clear\n";

/* ================================================================ options */

typedef struct query_opts {
    const char *cmd; /* "query" or "explain" */
    const char *sql;
    str_list tables; /* NAME=PATH specs, borrowed from argv */
    const char *device, *threads_s, *format_s, *cost_s;
    int explain, analyze, dp_table, sqo, no_mav, quiet, help;
    int threads;
    qformat fmt;
    dqo_cost_model cost;
    parsed_args args;
} query_opts;

static void query_opts_free(query_opts *o)
{
    free(o->tables.v);
    free(o->args.positional.v);
}

static int parse_qformat(const char *cmd, const char *s, qformat *fmt)
{
    static const char *const names[] = {"table", "csv", "json"};
    for (int i = 0; i < 3; i++)
        if (s == NULL || strcmp(s, names[i]) == 0) {
            *fmt = s == NULL ? QFMT_TABLE : (qformat)i;
            return 0;
        }
    return usage_error(cmd,
                       "invalid value '%s' for --format (expected "
                       "'table', 'csv' or 'json')",
                       s);
}

static int parse_cost(const char *cmd, const char *s, dqo_cost_model *cost)
{
    *cost = DQO_COST_CALIBRATED;
    if (s == NULL || strcmp(s, "calibrated") == 0)
        return 0;
    if (strcmp(s, "paper") == 0) {
        *cost = DQO_COST_PAPER;
        return 0;
    }
    return usage_error(cmd,
                       "invalid value '%s' for --cost-model (expected "
                       "'paper' or 'calibrated')",
                       s);
}

/* A table name is an SQL identifier, so that FROM can name it unquoted. */
static int is_identifier(const char *s, size_t len)
{
    if (len == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < len; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return 0;
    return 1;
}

/* Checks every NAME=PATH spec before anything is loaded. */
static int check_table_specs(const query_opts *o)
{
    for (size_t i = 0; i < o->tables.n; i++) {
        const char *spec = o->tables.v[i], *eq = strchr(spec, '=');
        if (eq == NULL || eq[1] == '\0')
            return usage_error(o->cmd,
                               "invalid --table '%s' (expected "
                               "NAME=PATH)",
                               spec);
        size_t len = (size_t)(eq - spec);
        if (!is_identifier(spec, len))
            return usage_error(o->cmd,
                               "invalid table name '%.*s' in --table "
                               "(expected letters, digits and _, not "
                               "starting with a digit)",
                               (int)len, spec);
        for (size_t j = 0; j < i; j++)
            if (strncasecmp(o->tables.v[j], spec, len + 1) == 0)
                return usage_error(o->cmd, "table '%.*s' is given twice",
                                   (int)len, spec);
    }
    return 0;
}

/* Parses and checks the options of `dqo query` (is_query) or `dqo explain`.
 * Returns 0, or the exit status after printing a message. */
static int parse_query_options(int is_query, int argc, char **argv,
                               query_opts *o)
{
    o->cmd = is_query ? "query" : "explain";
    o->explain = !is_query;
    const opt_spec common[] = {
        {"table", 'T', OPT_LIST, NULL, NULL, &o->tables},
        {"device", 'd', OPT_VALUE, NULL, &o->device, NULL},
        {"threads", 't', OPT_VALUE, NULL, &o->threads_s, NULL},
        {"cost-model", 0, OPT_VALUE, NULL, &o->cost_s, NULL},
        {"dp-table", 0, OPT_FLAG, &o->dp_table, NULL, NULL},
        {"sqo", 0, OPT_FLAG, &o->sqo, NULL, NULL},
        {"no-mav", 0, OPT_FLAG, &o->no_mav, NULL, NULL},
        {"quiet", 'q', OPT_FLAG, &o->quiet, NULL, NULL},
        /* `dqo query` only; the NULL name ends `dqo explain`'s list. */
        {is_query ? "format" : NULL, 'f', OPT_VALUE, NULL, &o->format_s, NULL},
        {"explain", 0, OPT_FLAG, &o->explain, NULL, NULL},
        {"explain-analyze", 0, OPT_FLAG, &o->analyze, NULL, NULL},
        {NULL, 0, OPT_FLAG, NULL, NULL, NULL},
    };
    int rc = parse_args(o->cmd, argc, argv, common, &o->args);
    if (rc != 0 || (o->help = o->args.help) != 0)
        return rc;
    if (o->args.positional.n == 0)
        return usage_error(o->cmd, "missing the SQL query (one argument, "
                                   "quoted)");
    if (o->args.positional.n > 1)
        return usage_error(o->cmd,
                           "unexpected argument '%s' (quote the "
                           "whole query as one argument)",
                           o->args.positional.v[1]);
    o->sql = o->args.positional.v[0];
    if (o->analyze && (o->explain || o->dp_table))
        return usage_error(o->cmd, "--explain-analyze runs the query; it "
                                   "does not go with --explain or --dp-table, "
                                   "which only plan it");
    if (o->dp_table)
        o->explain = 1;
    if ((rc = parse_qformat(o->cmd, o->format_s, &o->fmt)) != 0 ||
        (rc = parse_cost(o->cmd, o->cost_s, &o->cost)) != 0 ||
        (rc = parse_threads(o->cmd, o->threads_s, &o->threads)) != 0)
        return rc;
    return check_table_specs(o);
}

/* ================================================================= tables */

/* A table loaded from --table, kept until the end of the command. */
typedef struct loaded {
    dqo_table **t;
    size_t n;
} loaded;

static int load_path(dqo_ctx *ctx, const char *path, dqo_table **out)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return cli_error("cannot open '%s': %s", path, strerror(errno));
    dqo_status st;
    if (S_ISDIR(sb.st_mode)) {
        st = dqo_table_load_dir(ctx, path, out);
    } else {
        size_t n = strlen(path);
        dqo_csv_options opts = {0};
        opts.delimiter =
            n >= 4 && strcasecmp(path + n - 4, ".tsv") == 0 ? '\t' : ',';
        st = dqo_table_load_csv(ctx, path, &opts, out);
    }
    if (st != DQO_OK) {
        *out = NULL;
        return api_error(ctx, st);
    }
    return 0;
}

/* Loads and registers every --table; *l receives the tables to destroy. */
static int register_tables(dqo_ctx *ctx, const query_opts *o, loaded *l)
{
    l->t = calloc(o->tables.n + 1, sizeof *l->t);
    if (l->t == NULL)
        return cli_error("out of memory");
    for (size_t i = 0; i < o->tables.n; i++) {
        const char *spec = o->tables.v[i], *eq = strchr(spec, '=');
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(eq - spec), spec);
        int rc = load_path(ctx, eq + 1, &l->t[l->n]);
        if (rc != 0)
            return rc;
        l->n++;
        dqo_status st = dqo_register_table(ctx, name, l->t[l->n - 1]);
        if (st != DQO_OK)
            return api_error(ctx, st);
    }
    return 0;
}

/* The context borrows the tables: unregister them before they go. */
static void unload_tables(dqo_ctx *ctx, const query_opts *o, loaded *l)
{
    for (size_t i = 0; ctx != NULL && i < l->n; i++) {
        const char *spec = o->tables.v[i], *eq = strchr(spec, '=');
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(eq - spec), spec);
        dqo_register_table(ctx, name, NULL);
    }
    for (size_t i = 0; i < l->n; i++)
        dqo_table_destroy(l->t[i]);
    free(l->t);
}

/* ================================================================ output */

/* Formats a double with the fewest digits that read back to the same value
 * (0.1 prints as 0.1, not 0.10000000000000001). */
static void shortest_double(double v, char *buf, size_t len)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* The text of one cell, NULL for a NULL value: either buf (QCELL_BUF
 * bytes) or a string owned by the table. */
static const char *cell_text(dqo_ctx *ctx, const dqo_table *t, int col,
                             uint64_t row, char *buf)
{
    if (dqo_table_is_null(t, col, row))
        return NULL;
    switch (dqo_table_column_type(t, col)) {
    case DQO_TYPE_STR: {
        const uint32_t *codes = NULL;
        if (dqo_table_column_codes(ctx, t, col, &codes) != DQO_OK)
            return "";
        const char *s = dqo_table_dict_string(t, col, codes[row]);
        return s != NULL ? s : "";
    }
    case DQO_TYPE_F64: {
        const double *d = NULL;
        if (dqo_table_column_f64(ctx, t, col, &d) != DQO_OK)
            return "";
        shortest_double(d[row], buf, QCELL_BUF);
        return buf;
    }
    default:
        if (dqo_table_format_cell(t, col, row, buf, QCELL_BUF) != DQO_OK)
            buf[0] = '\0';
        return buf;
    }
}

/* Display width of UTF-8 text: code points, so accented names line up. */
static size_t width_of(const char *s)
{
    size_t w = 0;
    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

static void put_padded(FILE *out, const char *s, size_t width, int right,
                       int last)
{
    size_t pad = width - width_of(s);
    if (right)
        fprintf(out, "%*s", (int)pad, "");
    fputs(s, out);
    if (!right && !last)
        fprintf(out, "%*s", (int)pad, "");
}

/* Aligned text: header, a rule, the rows (numbers right-aligned), and a
 * "(N rows)" footer. Two passes over the cells: widths, then text. */
static int print_table(FILE *out, dqo_ctx *ctx, const dqo_table *t)
{
    int nc = dqo_table_ncols(t);
    uint64_t nr = dqo_table_rows(t);
    size_t *w = calloc((size_t)nc + 1, sizeof *w);
    if (w == NULL)
        return cli_error("out of memory");
    char buf[QCELL_BUF];
    for (int c = 0; c < nc; c++) {
        w[c] = width_of(dqo_table_column_name(t, c));
        for (uint64_t r = 0; r < nr; r++) {
            const char *s = cell_text(ctx, t, c, r, buf);
            size_t cw = width_of(s != NULL ? s : "NULL");
            w[c] = cw > w[c] ? cw : w[c];
        }
    }
    for (int c = 0; c < nc; c++) {
        int right = dqo_table_column_type(t, c) != DQO_TYPE_STR;
        fputs(c > 0 ? "  " : "", out);
        put_padded(out, dqo_table_column_name(t, c), w[c], right, c + 1 == nc);
    }
    fputc('\n', out);
    for (int c = 0; c < nc; c++) {
        fputs(c > 0 ? "  " : "", out);
        for (size_t i = 0; i < w[c]; i++)
            fputc('-', out);
    }
    fputc('\n', out);
    for (uint64_t r = 0; r < nr; r++) {
        for (int c = 0; c < nc; c++) {
            const char *s = cell_text(ctx, t, c, r, buf);
            int right = dqo_table_column_type(t, c) != DQO_TYPE_STR;
            fputs(c > 0 ? "  " : "", out);
            put_padded(out, s != NULL ? s : "NULL", w[c], right, c + 1 == nc);
        }
        fputc('\n', out);
    }
    fprintf(out, "(%llu row%s)\n", (unsigned long long)nr, nr == 1 ? "" : "s");
    free(w);
    return 0;
}

static void print_csv(FILE *out, dqo_ctx *ctx, const dqo_table *t)
{
    int nc = dqo_table_ncols(t);
    char buf[QCELL_BUF];
    for (int c = 0; c < nc; c++) {
        fputs(c > 0 ? "," : "", out);
        csv_field(out, dqo_table_column_name(t, c));
    }
    fputc('\n', out);
    for (uint64_t r = 0; r < dqo_table_rows(t); r++) {
        for (int c = 0; c < nc; c++) {
            const char *s = cell_text(ctx, t, c, r, buf);
            fputs(c > 0 ? "," : "", out);
            csv_field(out, s != NULL ? s : "");
        }
        fputc('\n', out);
    }
}

/* A JSON string (RFC 8259): quotes, backslashes and control characters
 * escaped; other bytes, UTF-8 included, pass through. */
static void put_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        const char *esc = ch == '"'    ? "\\\""
                          : ch == '\\' ? "\\\\"
                          : ch == '\n' ? "\\n"
                          : ch == '\r' ? "\\r"
                          : ch == '\t' ? "\\t"
                          : ch == '\b' ? "\\b"
                          : ch == '\f' ? "\\f"
                                       : NULL;
        if (esc != NULL)
            fputs(esc, out);
        else if (ch < 0x20)
            fprintf(out, "\\u%04x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

static void put_json_value(FILE *out, dqo_ctx *ctx, const dqo_table *t, int col,
                           uint64_t row)
{
    char buf[QCELL_BUF];
    const char *s = cell_text(ctx, t, col, row, buf);
    dqo_type ty = dqo_table_column_type(t, col);
    if (s == NULL) {
        fputs("null", out);
    } else if (ty == DQO_TYPE_STR) {
        put_json_string(out, s);
    } else if (ty == DQO_TYPE_F64 && !isfinite(strtod(s, NULL))) {
        fputs("null", out); /* JSON has no NaN or infinity */
    } else {
        fputs(s, out);
    }
}

/* An array of objects, one per row, one row per line. */
static void print_json(FILE *out, dqo_ctx *ctx, const dqo_table *t)
{
    int nc = dqo_table_ncols(t);
    uint64_t nr = dqo_table_rows(t);
    fputs(nr == 0 ? "[" : "[\n", out);
    for (uint64_t r = 0; r < nr; r++) {
        fputs("  {", out);
        for (int c = 0; c < nc; c++) {
            fputs(c > 0 ? ", " : "", out);
            put_json_string(out, dqo_table_column_name(t, c));
            fputs(": ", out);
            put_json_value(out, ctx, t, c, r);
        }
        fputs(r + 1 < nr ? "},\n" : "}\n", out);
    }
    fputs("]\n", out);
}

static int print_result(dqo_ctx *ctx, const dqo_table *t, qformat fmt)
{
    if (fmt == QFMT_TABLE)
        return print_table(stdout, ctx, t);
    if (fmt == QFMT_CSV)
        print_csv(stdout, ctx, t);
    else
        print_json(stdout, ctx, t);
    return 0;
}

/* Prints text, adding the final newline when it lacks one. */
static void put_text(FILE *out, const char *s)
{
    size_t n = strlen(s);
    fputs(s, out);
    if (n > 0 && s[n - 1] != '\n')
        fputc('\n', out);
}

/* A query error: the library's message may span lines (the query and a
 * caret under the token); they are printed as they are after the prefix,
 * so the caret stays aligned. A leading "error: " is not repeated. */
static int query_error(const dqo_ctx *ctx, dqo_status st)
{
    const char *msg = dqo_ctx_errmsg(ctx);
    if (msg == NULL || msg[0] == '\0')
        msg = dqo_status_str(st);
    if (strncmp(msg, "error: ", 7) == 0)
        msg += 7;
    fputs("dqo: error: ", stderr);
    put_text(stderr, msg);
    return EXIT_ERROR;
}

/* ============================================================= commands */

static int run_query(dqo_ctx *ctx, const query_opts *o,
                     const dqo_query_options *qo)
{
    char *text = NULL;
    dqo_table *result = NULL;
    dqo_status st;
    if (o->explain) {
        st = dqo_explain(ctx, o->sql, qo, o->dp_table, &text);
        if (st == DQO_OK)
            put_text(stdout, text);
    } else {
        st = dqo_query(ctx, o->sql, qo, &result, o->analyze ? &text : NULL);
        if (st == DQO_OK && print_result(ctx, result, o->fmt) != 0)
            st = DQO_ENOMEM;
        if (st == DQO_OK && o->analyze && text != NULL) {
            FILE *out = o->fmt == QFMT_TABLE ? stdout : stderr;
            fputs(o->fmt == QFMT_TABLE ? "\n" : "", out);
            put_text(out, text);
        }
    }
    int rc = st == DQO_OK ? 0 : query_error(ctx, st);
    dqo_free(text);
    dqo_table_destroy(result);
    return rc;
}

static int query_main(int is_query, int argc, char **argv)
{
    query_opts o;
    memset(&o, 0, sizeof o);
    dqo_ctx *ctx = NULL;
    loaded tables = {NULL, 0};
    int rc = parse_query_options(is_query, argc, argv, &o);
    if (rc != 0 || o.help) {
        if (rc == 0)
            fputs(is_query ? HELP_QUERY : HELP_EXPLAIN, stdout);
        query_opts_free(&o);
        return rc;
    }
    if ((rc = open_ctx(o.threads, &ctx)) != 0 ||
        (rc = register_tables(ctx, &o, &tables)) != 0)
        goto done;
    dqo_query_options qo = {o.device, o.threads, o.sqo, o.cost, o.no_mav};
    rc = run_query(ctx, &o, &qo);
    if (rc == 0)
        if (!o.quiet)
            print_warnings(ctx);
done:
    unload_tables(ctx, &o, &tables);
    dqo_ctx_destroy(ctx);
    query_opts_free(&o);
    return rc;
}

int cmd_query(int argc, char **argv)
{
    return query_main(1, argc, argv);
}

int cmd_explain(int argc, char **argv)
{
    return query_main(0, argc, argv);
}

/* `dqo mav clear` prints the views it forgot, then how many. */
static int mav_clear(dqo_ctx *ctx)
{
    char *list = NULL;
    dqo_status st = dqo_mav_list(ctx, &list);
    if (st != DQO_OK)
        return api_error(ctx, st);
    st = dqo_mav_clear(ctx);
    if (st != DQO_OK) {
        dqo_free(list);
        return api_error(ctx, st);
    }
    int n = 0;
    for (const char *p = list; *p != '\0'; p++)
        n += *p == '\n';
    if (list[0] != '\0' && list[strlen(list) - 1] != '\n')
        n++;
    if (n > 0) {
        fputs("cleared:\n", stdout);
        put_text(stdout, list);
    }
    printf("cleared %d cached plan%s\n", n, n == 1 ? "" : "s");
    dqo_free(list);
    return 0;
}

int cmd_mav(int argc, char **argv)
{
    const opt_spec specs[] = {{NULL, 0, OPT_FLAG, NULL, NULL, NULL}};
    parsed_args a;
    memset(&a, 0, sizeof a);
    int rc = parse_args("mav", argc, argv, specs, &a);
    const char *sub = a.positional.n > 0 ? a.positional.v[0] : NULL;
    if (rc != 0 || a.help) {
        if (rc == 0)
            fputs(HELP_MAV, stdout);
    } else if (sub == NULL) {
        rc = usage_error("mav", "missing the command: list or clear");
    } else if (a.positional.n > 1) {
        rc = usage_error("mav", "unexpected argument '%s'", a.positional.v[1]);
    } else if (strcmp(sub, "list") != 0 && strcmp(sub, "clear") != 0) {
        rc = usage_error("mav",
                         "unknown command '%s' (expected list or "
                         "clear)",
                         sub);
    } else {
        dqo_ctx *ctx = NULL;
        if ((rc = open_ctx(0, &ctx)) == 0 && strcmp(sub, "clear") == 0) {
            rc = mav_clear(ctx);
        } else if (rc == 0) {
            char *list = NULL;
            dqo_status st = dqo_mav_list(ctx, &list);
            if (st != DQO_OK)
                rc = api_error(ctx, st);
            else if (list[0] == '\0')
                fputs("dqo: the MAV cache is empty\n", stderr);
            else
                put_text(stdout, list);
            dqo_free(list);
        }
        if (rc == 0) /* a corrupt cache file, say */
            print_warnings(ctx);
        dqo_ctx_destroy(ctx);
    }
    free(a.positional.v);
    return rc;
}
