/*
 * test_csv.c - the CSV loader and writer (engine/csv.c): type inference,
 * declared types, RFC 4180 quoting, NULLs, dictionary order, every error with
 * its status and file:line:col message, a write -> load round trip, and
 * out-of-memory at every allocation of a load.
 *
 * The fixtures live in tests/data (CTest passes the folder in
 * DQO_TEST_DATA); cases that are easier to read inline are written to
 * temporary files.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/engine_int.h"

static const char *data_path(const char *name)
{
    static char buf[4096];
    const char *dir = getenv("DQO_TEST_DATA");
    snprintf(buf, sizeof buf, "%s/%s", dir != NULL ? dir : "tests/data", name);
    return buf;
}

static int setup(void **state)
{
    dqo_ctx *ctx;
    if (dqo_ctx_create(&ctx) != DQO_OK)
        return -1;
    *state = ctx;
    return 0;
}

static int teardown(void **state)
{
    dqo_ctx_destroy(*state);
    return 0;
}

static dqo_table *load_ok(dqo_ctx *ctx, const char *path,
                          const dqo_csv_options *opts)
{
    dqo_table *t = NULL;
    dqo_status st = dqo_table_load_csv(ctx, path, opts, &t);
    if (st != DQO_OK)
        print_error("load %s: %s: %s\n", path, dqo_status_name(st),
                    dqo_ctx_errmsg(ctx));
    assert_int_equal(st, DQO_OK);
    assert_non_null(t);
    assert_string_equal(dqo_ctx_errmsg(ctx), "");
    return t;
}

static void load_err(dqo_ctx *ctx, const char *path,
                     const dqo_csv_options *opts, dqo_status want,
                     const char *substr)
{
    dqo_table *t = (dqo_table *)&t; /* must come back NULL */
    dqo_status st = dqo_table_load_csv(ctx, path, opts, &t);
    const char *msg = dqo_ctx_errmsg(ctx);
    if (st != want || strstr(msg, substr) == NULL)
        print_error("load %s: got %s '%s', want %s containing '%s'\n", path,
                    dqo_status_name(st), msg, dqo_status_name(want), substr);
    assert_int_equal(st, want);
    assert_null(t);
    assert_non_null(strstr(msg, substr));
}

/* Writes `text` to a fresh temporary file; the caller unlinks `path`. */
static void temp_csv(char path[64], const char *text, size_t len)
{
    strcpy(path, "/tmp/dqo_test_csv_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

static int col_of(dqo_ctx *ctx, const dqo_table *t, const char *name)
{
    int col = -1;
    assert_int_equal(dqo_table_column_index(ctx, t, name, &col), DQO_OK);
    return col;
}

static const int32_t *i32_of(dqo_ctx *ctx, const dqo_table *t, const char *n)
{
    const int32_t *d = NULL;
    int c = col_of(ctx, t, n);
    assert_int_equal(dqo_table_column_type(t, c), DQO_TYPE_I32);
    assert_int_equal(dqo_table_column_i32(ctx, t, c, &d), DQO_OK);
    return d;
}

static const int64_t *i64_of(dqo_ctx *ctx, const dqo_table *t, const char *n)
{
    const int64_t *d = NULL;
    int c = col_of(ctx, t, n);
    assert_int_equal(dqo_table_column_type(t, c), DQO_TYPE_I64);
    assert_int_equal(dqo_table_column_i64(ctx, t, c, &d), DQO_OK);
    return d;
}

static const double *f64_of(dqo_ctx *ctx, const dqo_table *t, const char *n)
{
    const double *d = NULL;
    int c = col_of(ctx, t, n);
    assert_int_equal(dqo_table_column_type(t, c), DQO_TYPE_F64);
    assert_int_equal(dqo_table_column_f64(ctx, t, c, &d), DQO_OK);
    return d;
}

/* The text of row `row` of a string column, or NULL for a NULL value. */
static const char *str_at(dqo_ctx *ctx, const dqo_table *t, const char *n,
                          uint64_t row)
{
    int c = col_of(ctx, t, n);
    assert_int_equal(dqo_table_column_type(t, c), DQO_TYPE_STR);
    if (dqo_table_is_null(t, c, row))
        return NULL;
    const uint32_t *codes = NULL;
    assert_int_equal(dqo_table_column_codes(ctx, t, c, &codes), DQO_OK);
    const char *s = dqo_table_dict_string(t, c, codes[row]);
    assert_non_null(s);
    return s;
}

static int null_at(dqo_ctx *ctx, const dqo_table *t, const char *n,
                   uint64_t row)
{
    return dqo_table_is_null(t, col_of(ctx, t, n), row);
}

/* ------------------------------------------------------------ inference */

static void test_infer_types(void **state)
{
    dqo_ctx *ctx = *state;
    dqo_table *t = load_ok(ctx, data_path("types.csv"), NULL);
    assert_int_equal(dqo_table_rows(t), 4);
    assert_int_equal(dqo_table_ncols(t), 9);

    const int32_t *small = i32_of(ctx, t, "small");
    assert_int_equal(small[0], 1);
    assert_int_equal(small[1], INT32_MIN);
    assert_int_equal(small[2], INT32_MAX);
    assert_null(dqo_table_column_valid(t, col_of(ctx, t, "small")));

    const int64_t *big = i64_of(ctx, t, "big");
    assert_true(big[0] == INT64_C(3000000000));
    assert_true(big[1] == INT64_MIN);
    assert_true(big[2] == INT64_MAX);

    const double *real = f64_of(ctx, t, "real");
    assert_true(real[0] == 1.5 && real[1] == -2.0 && real[2] == 1e300);
    assert_true(isinf(real[3]) && real[3] > 0);

    assert_string_equal(str_at(ctx, t, "text", 0), "abc");
    assert_string_equal(str_at(ctx, t, "text", 2), "3");
    assert_null(str_at(ctx, t, "text", 3));

    /* Integers and floats mixed: f64. */
    const double *mixed = f64_of(ctx, t, "mixed");
    assert_true(mixed[0] == 1.0 && mixed[1] == 2.5 && mixed[2] == -7.0);
    assert_true(mixed[3] == 1e-5);
    /* An integer beyond int64 is a double. */
    const double *huge = f64_of(ctx, t, "huge");
    assert_true(huge[0] == 1e20 && huge[3] == 3.0);
    /* Spaces around a number make it text. */
    assert_string_equal(str_at(ctx, t, "spaced", 2), "14 ");
    assert_string_equal(str_at(ctx, t, "spaced", 3), " 15");
    /* A column of NULLs only is i32. */
    i32_of(ctx, t, "allnull");
    for (uint64_t r = 0; r < 4; r++)
        assert_true(null_at(ctx, t, "allnull", r));
    /* Quoted numbers are numbers. */
    const int32_t *qnum = i32_of(ctx, t, "qnum");
    assert_int_equal(qnum[0], 7);
    assert_int_equal(qnum[2], -9);
    assert_false(null_at(ctx, t, "qnum", 2));
    assert_true(null_at(ctx, t, "qnum", 3));
    dqo_table_destroy(t);
}

static void test_declared_types(void **state)
{
    dqo_ctx *ctx = *state;
    dqo_csv_options o = {.column_types = " k : u32 , v:I64,s:str, "};
    dqo_table *t = load_ok(ctx, data_path("declared.csv"), &o);
    int k = col_of(ctx, t, "k");
    assert_int_equal(dqo_table_column_type(t, k), DQO_TYPE_U32);
    const uint32_t *ku = NULL;
    assert_int_equal(dqo_table_column_u32(ctx, t, k, &ku), DQO_OK);
    assert_int_equal(ku[0], 0);
    assert_int_equal(ku[1], UINT32_MAX);
    const int64_t *v = i64_of(ctx, t, "v");
    assert_true(v[0] == -5 && v[1] == INT64_MAX);
    assert_true(null_at(ctx, t, "v", 2));
    /* Declared str keeps numbers as text. */
    assert_string_equal(str_at(ctx, t, "s", 0), "10");
    assert_string_equal(str_at(ctx, t, "s", 1), "abc");
    assert_null(str_at(ctx, t, "s", 2));
    /* Undeclared columns are still inferred. */
    assert_int_equal(i32_of(ctx, t, "w")[2], 3);
    dqo_table_destroy(t);

    /* The same file with k declared f64. */
    dqo_csv_options f = {.column_types = "k:f64"};
    t = load_ok(ctx, data_path("declared.csv"), &f);
    assert_true(f64_of(ctx, t, "k")[1] == 4294967295.0);
    dqo_table_destroy(t);
}

/* -------------------------------------------------------------- quoting */

static void test_quoting_crlf(void **state)
{
    dqo_ctx *ctx = *state;
    dqo_table *t = load_ok(ctx, data_path("quoting.csv"), NULL);
    assert_int_equal(dqo_table_rows(t), 6);
    assert_string_equal(str_at(ctx, t, "text", 0), "a,b");
    assert_string_equal(str_at(ctx, t, "text", 1), "say \"hi\"");
    assert_string_equal(str_at(ctx, t, "text", 2), "line1\r\nline2");
    assert_string_equal(str_at(ctx, t, "text", 3), "plain");
    /* A quoted empty field is the empty string, an unquoted one NULL. */
    assert_string_equal(str_at(ctx, t, "text", 4), "");
    assert_null(str_at(ctx, t, "text", 5));
    const int32_t *n = i32_of(ctx, t, "n");
    assert_int_equal(n[0], 10);
    assert_int_equal(n[2], 30);
    assert_true(null_at(ctx, t, "n", 4));
    /* The last line has no line end. */
    assert_int_equal(n[5], 60);
    assert_int_equal(i32_of(ctx, t, "id")[5], 6);
    dqo_table_destroy(t);
}

static void test_trailing_blank_lines(void **state)
{
    dqo_ctx *ctx = *state;
    dqo_table *t = load_ok(ctx, data_path("trailing.csv"), NULL);
    assert_int_equal(dqo_table_rows(t), 2);
    assert_string_equal(str_at(ctx, t, "text", 0), "multi\nline\nvalue");
    assert_string_equal(str_at(ctx, t, "text", 1), "x");
    dqo_table_destroy(t);
}

static void test_delimiter_bom_header_only(void **state)
{
    dqo_ctx *ctx = *state;
    dqo_csv_options o = {.delimiter = ';'};
    dqo_table *t = load_ok(ctx, data_path("semicolon.csv"), &o);
    assert_string_equal(str_at(ctx, t, "name", 0), "a,b");
    assert_string_equal(str_at(ctx, t, "name", 1), "x;y");
    assert_true(f64_of(ctx, t, "v")[0] == 2.5);
    dqo_table_destroy(t);

    char path[64];
    const char tsv[] = "a\tb\n1\t\"x\ty\"\n";
    temp_csv(path, tsv, sizeof tsv - 1);
    dqo_csv_options tab = {.delimiter = '\t'};
    t = load_ok(ctx, path, &tab);
    assert_string_equal(str_at(ctx, t, "b", 0), "x\ty");
    dqo_table_destroy(t);
    unlink(path);

    t = load_ok(ctx, data_path("bom.csv"), NULL);
    assert_int_equal(i32_of(ctx, t, "k")[0], 1);
    dqo_table_destroy(t);

    t = load_ok(ctx, data_path("header_only.csv"), NULL);
    assert_int_equal(dqo_table_rows(t), 0);
    assert_int_equal(dqo_table_ncols(t), 2);
    dqo_table_destroy(t);

    /* A single column: an empty line in the middle is a NULL. */
    const char one[] = "x\n1\n\n3\n";
    temp_csv(path, one, sizeof one - 1);
    t = load_ok(ctx, path, NULL);
    assert_int_equal(dqo_table_rows(t), 3);
    assert_true(null_at(ctx, t, "x", 1));
    assert_int_equal(i32_of(ctx, t, "x")[2], 3);
    dqo_table_destroy(t);
    unlink(path);
}

/* ---------------------------------------------------- NULLs, dictionary */

static void test_dictionary_order(void **state)
{
    dqo_ctx *ctx = *state;
    dqo_table *t = load_ok(ctx, data_path("dict.csv"), NULL);
    int c = col_of(ctx, t, "city");
    const uint32_t *codes = NULL;
    assert_int_equal(dqo_table_column_codes(ctx, t, c, &codes), DQO_OK);
    const uint32_t want[] = {0, 1, 0, 2, 1, 0 /* NULL */, 3, 2};
    for (int r = 0; r < 8; r++)
        if (r != 5)
            assert_int_equal(codes[r], want[r]);
    assert_int_equal(dqo_table_dict_size(t, c), 4);
    assert_string_equal(dqo_table_dict_string(t, c, 0), "Paris");
    assert_string_equal(dqo_table_dict_string(t, c, 1), "Lyon");
    assert_string_equal(dqo_table_dict_string(t, c, 2), "Nice");
    assert_string_equal(dqo_table_dict_string(t, c, 3), "");
    assert_null(dqo_table_dict_string(t, c, 4));
    const uint8_t *valid = dqo_table_column_valid(t, c);
    assert_non_null(valid);
    for (int r = 0; r < 8; r++)
        assert_int_equal(valid[r], r != 5);
    assert_null(dqo_table_column_valid(t, col_of(ctx, t, "n")));
    dqo_table_destroy(t);
}

/* --------------------------------------------------------------- errors */

static void test_errors_shape(void **state)
{
    dqo_ctx *ctx = *state;
    load_err(ctx, data_path("ragged_few.csv"), NULL, DQO_EPARSE,
             "ragged_few.csv:3:1: expected 3 fields, found 2");
    load_err(ctx, data_path("ragged_many.csv"), NULL, DQO_EPARSE,
             "ragged_many.csv:4:11: expected 3 fields, found 5");
    load_err(ctx, data_path("unterminated.csv"), NULL, DQO_EPARSE,
             "unterminated.csv:3:3: unterminated quoted field");
    load_err(ctx, data_path("dup_header.csv"), NULL, DQO_EPARSE,
             "dup_header.csv:1:5: duplicate column name 'a'");
    load_err(ctx, data_path("empty_header.csv"), NULL, DQO_EPARSE,
             "empty_header.csv:1:3: empty name for column 2");
    load_err(ctx, data_path("empty.csv"), NULL, DQO_EPARSE,
             "empty.csv:1:1: empty file");
    load_err(ctx, data_path("after_quote.csv"), NULL, DQO_EPARSE,
             "after_quote.csv:2:7: unexpected character 'c'");

    /* Line numbers count the lines inside quoted fields. */
    char path[64];
    const char multi[] = "a,b\r\n\"x\r\ny\",1\r\n2,3,4\r\n";
    temp_csv(path, multi, sizeof multi - 1);
    load_err(ctx, path, NULL, DQO_EPARSE, ":4:5: expected 2 fields, found 3");
    unlink(path);

    /* An empty line in a multi-column file is a short record. */
    const char blank[] = "a,b\n1,2\n\n3,4\n";
    temp_csv(path, blank, sizeof blank - 1);
    load_err(ctx, path, NULL, DQO_EPARSE, ":3:1: expected 2 fields, found 1");
    unlink(path);

    const char crlf_ws[] = "\n\r\n\n";
    temp_csv(path, crlf_ws, sizeof crlf_ws - 1);
    /* Only line ends: no header row. */
    load_err(ctx, path, NULL, DQO_EPARSE, ":1:1: empty file");
    unlink(path);
}

static void test_errors_values(void **state)
{
    dqo_ctx *ctx = *state;
    dqo_csv_options i32 = {.column_types = "v:i32"};
    load_err(ctx, data_path("badnum.csv"), &i32, DQO_EPARSE,
             "badnum.csv:3:3: cannot parse 'abc' as i32 for column 'v'");
    load_err(ctx, data_path("range.csv"), &i32, DQO_EPARSE,
             "range.csv:3:3: value '3000000000' out of range for i32 column "
             "'v'");
    /* Inferred columns never fail: they widen. */
    dqo_table *t = load_ok(ctx, data_path("badnum.csv"), NULL);
    assert_string_equal(str_at(ctx, t, "v", 1), "abc");
    dqo_table_destroy(t);
    t = load_ok(ctx, data_path("range.csv"), NULL);
    assert_true(i64_of(ctx, t, "v")[1] == INT64_C(3000000000));
    dqo_table_destroy(t);

    char path[64];
    /* A quoted empty field is NULL in a numeric column, inferred or not. */
    const char qempty[] = "k,v\n1,\"\"\n\"\",3\n";
    temp_csv(path, qempty, sizeof qempty - 1);
    t = load_ok(ctx, path, &i32);
    assert_true(null_at(ctx, t, "v", 0));
    assert_int_equal(i32_of(ctx, t, "v")[1], 3);
    assert_true(null_at(ctx, t, "k", 1));
    assert_int_equal(i32_of(ctx, t, "k")[0], 1);
    dqo_table_destroy(t);
    unlink(path);

    dqo_csv_options u32 = {.column_types = "v:u32"};
    const char neg[] = "k,v\n1,-1\n";
    temp_csv(path, neg, sizeof neg - 1);
    load_err(ctx, path, &u32, DQO_EPARSE,
             ":2:3: value '-1' out of range for "
             "u32 column 'v'");
    unlink(path);
    const char spaced[] = "k,v\n1, 5\n";
    temp_csv(path, spaced, sizeof spaced - 1);
    load_err(ctx, path, &i32, DQO_EPARSE, ":2:3: cannot parse ' 5' as i32");
    unlink(path);
    dqo_csv_options f64 = {.column_types = "v:f64"};
    const char hexf[] = "k,v\n1,1.5\n2,0x1p3\n";
    temp_csv(path, hexf, sizeof hexf - 1);
    load_err(ctx, path, &f64, DQO_EPARSE, ":3:3: cannot parse '0x1p3' as f64");
    unlink(path);
    dqo_csv_options i64 = {.column_types = "v:i64"};
    const char big[] = "k,v\n1,9223372036854775808\n";
    temp_csv(path, big, sizeof big - 1);
    load_err(ctx, path, &i64, DQO_EPARSE,
             ":2:3: value '9223372036854775808' "
             "out of range for i64");
    unlink(path);
}

static void test_errors_arguments(void **state)
{
    dqo_ctx *ctx = *state;
    load_err(ctx, "/nonexistent/dir/x.csv", NULL, DQO_EIO,
             "/nonexistent/dir/x.csv: cannot open: No such file or directory");
    load_err(ctx, data_path(""), NULL, DQO_EIO, "Is a directory");

    dqo_csv_options o = {.column_types = "nope:i32"};
    load_err(ctx, data_path("declared.csv"), &o, DQO_EINVAL,
             "column_types: no column 'nope'");
    o.column_types = "k:int128";
    load_err(ctx, data_path("declared.csv"), &o, DQO_EINVAL,
             "unknown type 'int128' for column 'k'");
    o.column_types = "k";
    load_err(ctx, data_path("declared.csv"), &o, DQO_EINVAL,
             "expected name:type, got 'k'");
    o.column_types = "k:i32,k:i64";
    load_err(ctx, data_path("declared.csv"), &o, DQO_EINVAL,
             "column 'k' declared twice");
    dqo_csv_options q = {.delimiter = '"'};
    load_err(ctx, data_path("declared.csv"), &q, DQO_EINVAL, "delimiter 0x22");

    dqo_table *t = NULL;
    assert_int_equal(dqo_table_load_csv(ctx, NULL, NULL, &t), DQO_EINVAL);
    assert_int_equal(dqo_table_load_csv(ctx, "x", NULL, NULL), DQO_EINVAL);
    assert_int_equal(dqo_table_load_csv(NULL, "x", NULL, &t), DQO_EINVAL);
    assert_null(t);
}

/* ----------------------------------------------------------- round trip */

static void test_round_trip(void **state)
{
    dqo_ctx *ctx = *state;
    dqo_table *t = NULL;
    assert_int_equal(dqo_table_create(ctx, &t), DQO_OK);
    const int32_t a[] = {INT32_MIN, 0, 7, INT32_MAX};
    const int64_t b[] = {INT64_MIN, -1, 0, INT64_MAX};
    const double c[] = {1.0, 0.1, -2.5e-300, 1e22};
    const uint32_t d[] = {0, 1, UINT32_MAX, 5};
    const uint8_t valid[] = {1, 0, 1, 1};
    const char *s[] = {"plain", "with,comma", NULL, "q\"uote\nnl"};
    const char *e[] = {"", "x\r\ny", "  spaced  ", "last"};
    assert_int_equal(
        dqo_table_add_column(ctx, t, "a", DQO_TYPE_I32, a, NULL, 4, DQO_BORROW),
        DQO_OK);
    assert_int_equal(dqo_table_add_column(ctx, t, "b,with comma", DQO_TYPE_I64,
                                          b, valid, 4, DQO_BORROW),
                     DQO_OK);
    assert_int_equal(
        dqo_table_add_column(ctx, t, "c", DQO_TYPE_F64, c, NULL, 4, DQO_BORROW),
        DQO_OK);
    assert_int_equal(
        dqo_table_add_column(ctx, t, "d", DQO_TYPE_U32, d, NULL, 4, DQO_BORROW),
        DQO_OK);
    assert_int_equal(dqo_table_add_strings(ctx, t, "s", s, 4), DQO_OK);
    assert_int_equal(dqo_table_add_strings(ctx, t, "e", e, 4), DQO_OK);

    char path[64];
    temp_csv(path, "", 0);
    assert_int_equal(dqo_table_write_csv(ctx, t, path), DQO_OK);
    dqo_csv_options o = {.column_types = "d:u32"};
    dqo_table *u = load_ok(ctx, path, &o);
    unlink(path);

    assert_int_equal(dqo_table_rows(u), 4);
    assert_int_equal(dqo_table_ncols(u), 6);
    assert_memory_equal(i32_of(ctx, u, "a"), a, sizeof a);
    const int64_t *ub = i64_of(ctx, u, "b,with comma");
    assert_true(null_at(ctx, u, "b,with comma", 1));
    for (int r = 0; r < 4; r++)
        if (r != 1)
            assert_true(ub[r] == b[r]);
    /* %.17g reads back bit for bit, and 1.0 stays f64. */
    assert_memory_equal(f64_of(ctx, u, "c"), c, sizeof c);
    const uint32_t *ud = NULL;
    assert_int_equal(dqo_table_column_u32(ctx, u, col_of(ctx, u, "d"), &ud),
                     DQO_OK);
    assert_memory_equal(ud, d, sizeof d);
    for (int r = 0; r < 4; r++) {
        const char *got = str_at(ctx, u, "s", (uint64_t)r);
        if (s[r] == NULL)
            assert_null(got);
        else
            assert_string_equal(got, s[r]);
        assert_string_equal(str_at(ctx, u, "e", (uint64_t)r), e[r]);
    }
    dqo_table_destroy(u);
    dqo_table_destroy(t);

    /* A write into a missing directory fails with the path. */
    dqo_table *v = load_ok(ctx, data_path("dict.csv"), NULL);
    assert_int_equal(dqo_table_write_csv(ctx, v, "/nonexistent/dir/o.csv"),
                     DQO_EIO);
    assert_non_null(strstr(dqo_ctx_errmsg(ctx), "/nonexistent/dir/o.csv"));
    /* A failed write (a full device) is DQO_EIO naming the cause. */
    if (access("/dev/full", W_OK) == 0) {
        assert_int_equal(dqo_table_write_csv(ctx, v, "/dev/full"), DQO_EIO);
        assert_non_null(strstr(dqo_ctx_errmsg(ctx), "/dev/full: cannot write"));
    }
    dqo_table_destroy(v);
}

/* Seeded random grids of strings made of the bytes that matter (delimiter,
 * quote, CR, LF, spaces, digits), written with RFC 4180 quoting where needed
 * and at random elsewhere, with random LF / CRLF line ends and an optional
 * final line end, must load back cell for cell. */
static uint64_t fuzz_state = 7;

static uint32_t fuzz_next(uint32_t bound)
{
    fuzz_state = fuzz_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)((fuzz_state >> 33) % bound);
}

static void test_random_grids(void **state)
{
    dqo_ctx *ctx = *state;
    const char alphabet[] = "ab1,\"\r\n -.";
    for (int round = 0; round < 300; round++) {
        int ncols = 2 + (int)fuzz_next(4);
        int nrows = (int)fuzz_next(20);
        /* cells[r][c]: NULL for a NULL value. */
        char *cells[20][5];
        size_t cap = 4096, len = 0;
        char *text = malloc(cap);
        char spec[128] = "";
        assert_non_null(text);
        for (int c = 0; c < ncols; c++) {
            len += (size_t)sprintf(text + len, "%sc%d", c ? "," : "", c);
            sprintf(spec + strlen(spec), "%sc%d:str", c ? "," : "", c);
        }
        len += (size_t)sprintf(text + len, "\n");
        for (int r = 0; r < nrows; r++) {
            for (int c = 0; c < ncols; c++) {
                if (c > 0)
                    text[len++] = ',';
                if (fuzz_next(10) == 0) {
                    cells[r][c] = NULL;
                    continue;
                }
                size_t n = fuzz_next(9);
                char *v = malloc(n + 1);
                assert_non_null(v);
                for (size_t k = 0; k < n; k++)
                    v[k] = alphabet[fuzz_next(sizeof alphabet - 1)];
                v[n] = '\0';
                cells[r][c] = v;
                int quote = n == 0 || strpbrk(v, ",\"\r\n") != NULL ||
                            fuzz_next(3) == 0;
                if (quote)
                    text[len++] = '"';
                for (size_t k = 0; k < n; k++) {
                    if (v[k] == '"')
                        text[len++] = '"';
                    text[len++] = v[k];
                }
                if (quote)
                    text[len++] = '"';
            }
            if (r + 1 < nrows || fuzz_next(2) == 0) {
                if (fuzz_next(2) == 0)
                    text[len++] = '\r';
                text[len++] = '\n';
            }
        }
        char path[64];
        temp_csv(path, text, len);
        dqo_csv_options o = {.column_types = spec};
        dqo_table *t = load_ok(ctx, path, &o);
        unlink(path);
        assert_int_equal(dqo_table_rows(t), nrows);
        for (int r = 0; r < nrows; r++)
            for (int c = 0; c < ncols; c++) {
                char name[16];
                sprintf(name, "c%d", c);
                const char *got = str_at(ctx, t, name, (uint64_t)r);
                if (cells[r][c] == NULL) {
                    assert_null(got);
                } else {
                    assert_non_null(got);
                    assert_string_equal(got, cells[r][c]);
                }
                free(cells[r][c]);
            }
        dqo_table_destroy(t);
        free(text);
    }
}

/* -------------------------------------------------------- out of memory */

static void test_alloc_failures(void **state)
{
    dqo_ctx *ctx = *state;
    char path[4096];
    strcpy(path, data_path("alloc.csv"));
    int failed = 0;
    for (long n = 1; n < 10000; n++) {
        long before = mem_outstanding();
        dqo_table *t = NULL;
        mem_fail_after(n);
        dqo_status st = dqo_table_load_csv(ctx, path, NULL, &t);
        mem_fail_after(0);
        if (st != DQO_OK) {
            assert_int_equal(st, DQO_ENOMEM);
            assert_null(t);
            assert_non_null(strstr(dqo_ctx_errmsg(ctx), "out of memory"));
            assert_int_equal(mem_outstanding(), before);
            failed++;
            continue;
        }
        /* The loader recovers from no failed allocation, so a success means
         * the load made fewer than n allocations: the hook never fired and
         * every later n would succeed the same way. */
        assert_non_null(t);
        assert_int_equal(dqo_table_rows(t), 5);
        assert_string_equal(str_at(ctx, t, "s", 4), "a");
        assert_string_equal(str_at(ctx, t, "s", 2), "");
        assert_true(null_at(ctx, t, "s", 1));
        assert_true(null_at(ctx, t, "v", 0));
        assert_true(null_at(ctx, t, "k", 2));
        dqo_table_destroy(t);
        assert_int_equal(mem_outstanding(), before);
        break;
    }
    /* The file buffer, names, columns, validity, a dictionary, the table:
     * well over eight allocations, each of which failed once above. */
    assert_true(failed >= 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_infer_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_declared_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quoting_crlf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trailing_blank_lines, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_delimiter_bom_header_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dictionary_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_grids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
