/*
 * test_exec.c - the executor side of SQL (engine/expr.c, engine/exec.c,
 * engine/query.c, engine/catalog.c): expression evaluation on hand-built
 * trees against hand-computed values (three-valued logic, overflow,
 * division by zero, string predicates, mixed-type comparisons); and through
 * dqo_query: the catalog, the global aggregate on empty input, joins on
 * string keys and on composite keys (against a naive nested loop on seeded
 * random data), a composite key too wide to pack, ORDER BY with NULLs, and
 * EXPLAIN ANALYZE's measured times.
 *
 * DQO_TEST_SEED overrides the random seed (printed on failure).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dqo.h"
#include "engine/alloc.h"
#include "engine/query_int.h"
#include "tests/test_util.h"

static uint64_t seed = 20261123;
static rng rng_g;

static uint64_t rnd(void) { return rng_next(&rng_g); }

/* ------------------------------------------------- hand-built expressions */

static lexpr *node(lx_kind k, int type)
{
    lexpr *e = calloc(1, sizeof *e);
    assert_non_null(e);
    e->kind = k;
    e->type = type;
    return e;
}

static lexpr *col(int c, int type)
{
    lexpr *e = node(LX_COL, type);
    e->table = 0;
    e->col = c;
    return e;
}

static lexpr *lit_i(int64_t v)
{
    lexpr *e = node(LX_INT, DQO_TYPE_I64);
    e->ival = v;
    return e;
}

static lexpr *lit_f(double v)
{
    lexpr *e = node(LX_FLOAT, DQO_TYPE_F64);
    e->fval = v;
    return e;
}

static lexpr *lit_s(const char *s)
{
    lexpr *e = node(LX_STR, DQO_TYPE_STR);
    e->sval = strdup(s);
    return e;
}

static lexpr *bin(lx_op op, lexpr *a, lexpr *b)
{
    bool f = a->type == DQO_TYPE_F64 || b->type == DQO_TYPE_F64;
    int type = op <= LX_MOD ? (f ? DQO_TYPE_F64 : DQO_TYPE_I64) : LX_TYPE_BOOL;
    lexpr *e = node(LX_BIN, type);
    e->op = op;
    e->a = a;
    e->b = b;
    return e;
}

static lexpr *unary(lx_kind k, lexpr *a, bool negated)
{
    lexpr *e = node(k, k == LX_NEG ? a->type : LX_TYPE_BOOL);
    e->a = a;
    e->negated = negated;
    return e;
}

static lexpr *listed(lx_kind k, lexpr *a, bool negated, int n, ...)
{
    lexpr *e = unary(k, a, negated);
    e->list = calloc((size_t)n, sizeof *e->list);
    e->nlist = n;
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        e->list[i] = va_arg(ap, lexpr *);
    va_end(ap);
    return e;
}

/* The table of the expression tests (hand-computed values below):
 *   a i64: 1, -5, INT64_MAX, 7, NULL, 0
 *   b i32: 2, 0, 1, -3, 4, NULL
 *   u u32: 1, 4e9, 3, 0, 5, 6
 *   f f64: 1.5, -2, 0, 3.25, 1, 2.5
 *   s str: apple, pear, NULL, fig, apple, zebra */
enum { CA, CB, CU, CF, CS };
#define NR 6

typedef struct fixture {
    dqo_ctx *ctx;
    dqo_table *t;
    lquery q;
    qrel rel;
    qeval ev;
} fixture;

static int fx_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_int_equal(dqo_ctx_create(&f->ctx), DQO_OK);
    assert_int_equal(dqo_table_create(f->ctx, &f->t), DQO_OK);
    static const int64_t a[NR] = {1, -5, INT64_MAX, 7, 123, 0};
    static const uint8_t av[NR] = {1, 1, 1, 1, 0, 1};
    static const int32_t b[NR] = {2, 0, 1, -3, 4, 99};
    static const uint8_t bv[NR] = {1, 1, 1, 1, 1, 0};
    static const uint32_t u[NR] = {1, 4000000000u, 3, 0, 5, 6};
    static const double fl[NR] = {1.5, -2, 0, 3.25, 1, 2.5};
    static const char *s[NR] = {"apple", "pear", NULL, "fig", "apple", "zebra"};
    CHECK_OK(f->ctx, dqo_table_add_column(f->ctx, f->t, "a", DQO_TYPE_I64, a,
                                          av, NR, DQO_BORROW));
    CHECK_OK(f->ctx, dqo_table_add_column(f->ctx, f->t, "b", DQO_TYPE_I32, b,
                                          bv, NR, DQO_BORROW));
    CHECK_OK(f->ctx, dqo_table_add_column(f->ctx, f->t, "u", DQO_TYPE_U32, u,
                                          NULL, NR, DQO_BORROW));
    CHECK_OK(f->ctx, dqo_table_add_column(f->ctx, f->t, "f", DQO_TYPE_F64, fl,
                                          NULL, NR, DQO_BORROW));
    CHECK_OK(f->ctx, dqo_table_add_strings(f->ctx, f->t, "s", s, NR));
    f->q.ntables = 1;
    f->q.tables[0].name = "t";
    f->q.tables[0].alias = "t";
    f->q.tables[0].table = f->t;
    f->rel.rows = NR;
    f->rel.present = 1;
    f->ev = (qeval){f->ctx, &f->q, NR, qrel_leaf, &f->rel};
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fixture *f = *state;
    qrel_free(&f->rel);
    dqo_table_destroy(f->t);
    dqo_ctx_destroy(f->ctx);
    free(f);
    return 0;
}

/* Evaluates e (then frees it) and checks BOOL results: 1, 0, or -1 NULL. */
static void expect_bool(fixture *f, lexpr *e, const int *want)
{
    qvec v;
    CHECK_OK(f->ctx, qexpr_eval(&f->ev, e, &v));
    assert_int_equal(v.type, LX_TYPE_BOOL);
    for (uint64_t i = 0; i < f->ev.rows; i++) {
        int got = qvec_null(&v, i) ? -1 : (int)qvec_i64(&v, i);
        if (got != want[i])
            fail_msg("row %llu: got %d, want %d", (unsigned long long)i, got,
                     want[i]);
    }
    qvec_free(&v);
    lexpr_free(e);
}

/* Integer results; NULL rows are given as INT64_MIN in want. */
static void expect_i64(fixture *f, lexpr *e, const int64_t *want)
{
    qvec v;
    CHECK_OK(f->ctx, qexpr_eval(&f->ev, e, &v));
    for (uint64_t i = 0; i < f->ev.rows; i++) {
        int64_t got = qvec_null(&v, i) ? INT64_MIN : qvec_i64(&v, i);
        if (got != want[i])
            fail_msg("row %llu: got %lld, want %lld", (unsigned long long)i,
                     (long long)got, (long long)want[i]);
    }
    qvec_free(&v);
    lexpr_free(e);
}

#define NUL INT64_MIN

static void test_arith(void **state)
{
    fixture *f = *state;
    expect_i64(f, bin(LX_SUB, col(CA, DQO_TYPE_I64), col(CB, DQO_TYPE_I32)),
               (int64_t[]){-1, -5, INT64_MAX - 1, 10, NUL, NUL});
    /* Division and modulo by zero are NULL; C's truncation otherwise. */
    expect_i64(f, bin(LX_DIV, col(CA, DQO_TYPE_I64), col(CB, DQO_TYPE_I32)),
               (int64_t[]){0, NUL, INT64_MAX, -2, NUL, NUL});
    expect_i64(f, bin(LX_MOD, col(CA, DQO_TYPE_I64), col(CB, DQO_TYPE_I32)),
               (int64_t[]){1, NUL, 0, 1, NUL, NUL});
    expect_i64(f, bin(LX_MUL, col(CU, DQO_TYPE_U32), lit_i(3)),
               (int64_t[]){3, 12000000000LL, 9, 0, 15, 18});
    expect_i64(f, unary(LX_NEG, col(CB, DQO_TYPE_I32), false),
               (int64_t[]){-2, 0, -1, 3, -4, NUL});
    /* F64 arithmetic: f * 2 + a over rows where a is not NULL. */
    qvec v;
    lexpr *e = bin(LX_ADD, bin(LX_MUL, col(CF, DQO_TYPE_F64), lit_f(2)),
                   col(CA, DQO_TYPE_I64));
    CHECK_OK(f->ctx, qexpr_eval(&f->ev, e, &v));
    assert_int_equal(v.type, DQO_TYPE_F64);
    assert_true(qvec_f64(&v, 0) == 4.0);
    assert_true(qvec_f64(&v, 1) == -9.0);
    assert_true(qvec_f64(&v, 3) == 13.5);
    assert_true(qvec_null(&v, 4));
    qvec_free(&v);
    lexpr_free(e);
}

static void test_overflow(void **state)
{
    fixture *f = *state;
    qvec v;
    const char *cases[] = {"+", "*", "-"};
    for (int k = 0; k < 3; k++) {
        lexpr *e = k == 0   ? bin(LX_ADD, col(CA, DQO_TYPE_I64), lit_i(1))
                   : k == 1 ? bin(LX_MUL, col(CA, DQO_TYPE_I64), lit_i(2))
                            : unary(LX_NEG, bin(LX_SUB, lit_i(-2),
                                                col(CA, DQO_TYPE_I64)), false);
        assert_int_equal(qexpr_eval(&f->ev, e, &v), DQO_EOVERFLOW);
        const char *msg = dqo_ctx_errmsg(f->ctx);
        if (strstr(msg, "t.a") == NULL || strstr(msg, "overflow") == NULL)
            fail_msg("case %s: message does not name the expression: %s",
                     cases[k], msg);
        lexpr_free(e);
    }
    /* INT64_MIN / -1 overflows too. */
    f->ev.rows = 1;
    lexpr *e = bin(LX_DIV, bin(LX_SUB, lit_i(-INT64_MAX), lit_i(1)), lit_i(-1));
    assert_int_equal(qexpr_eval(&f->ev, e, &v), DQO_EOVERFLOW);
    lexpr_free(e);
    f->ev.rows = NR;
    /* a * b: row 2 is INT64_MAX * 1, which fits. */
    expect_i64(f, bin(LX_MUL, col(CA, DQO_TYPE_I64), col(CB, DQO_TYPE_I32)),
               (int64_t[]){2, 0, INT64_MAX, -21, NUL, NUL});
}

static void test_compare_mixed(void **state)
{
    fixture *f = *state;
    /* u32 4e9 against i64: exact, no wrap to a negative i32. */
    expect_bool(f, bin(LX_GT, col(CU, DQO_TYPE_U32), col(CA, DQO_TYPE_I64)),
                (int[]){0, 1, 0, 0, -1, 1});
    expect_bool(f, bin(LX_EQ, col(CU, DQO_TYPE_U32), lit_i(4000000000LL)),
                (int[]){0, 1, 0, 0, 0, 0});
    /* f64 against i32 as double; i32 against a float literal. */
    expect_bool(f, bin(LX_LT, col(CF, DQO_TYPE_F64), col(CB, DQO_TYPE_I32)),
                (int[]){1, 1, 1, 0, 1, -1});
    expect_bool(f, bin(LX_GE, col(CB, DQO_TYPE_I32), lit_f(1.5)),
                (int[]){1, 0, 0, 0, 1, -1});
    expect_bool(f, bin(LX_NE, lit_i(3), col(CU, DQO_TYPE_U32)),
                (int[]){1, 1, 0, 1, 1, 1});
    expect_bool(f, listed(LX_BETWEEN, col(CA, DQO_TYPE_I64), false, 2, lit_i(0),
                          lit_i(7)),
                (int[]){1, 0, 0, 1, -1, 1});
    expect_bool(f, listed(LX_BETWEEN, col(CA, DQO_TYPE_I64), true, 2, lit_i(0),
                          lit_i(7)),
                (int[]){0, 1, 1, 0, -1, 0});
    expect_bool(f, listed(LX_IN, col(CB, DQO_TYPE_I32), false, 3, lit_i(0),
                          lit_i(4), lit_i(-3)),
                (int[]){0, 1, 0, 1, 1, -1});
    expect_bool(f, listed(LX_IN, col(CB, DQO_TYPE_I32), true, 2, lit_i(0),
                          lit_i(4)),
                (int[]){1, 0, 1, 1, 0, -1});
}

static void test_three_valued(void **state)
{
    fixture *f = *state;
    /* a > 0 is 1 0 1 1 N 0; b > 0 is 1 0 1 0 1 N. */
#define A_POS bin(LX_GT, col(CA, DQO_TYPE_I64), lit_i(0))
#define B_POS bin(LX_GT, col(CB, DQO_TYPE_I32), lit_i(0))
    expect_bool(f, bin(LX_AND, A_POS, B_POS), (int[]){1, 0, 1, 0, -1, 0});
    expect_bool(f, bin(LX_OR, A_POS, B_POS), (int[]){1, 0, 1, 1, 1, -1});
    expect_bool(f, unary(LX_NOT, bin(LX_OR, A_POS, B_POS), false),
                (int[]){0, 1, 0, 0, 0, -1});
    expect_bool(f, bin(LX_AND, unary(LX_NOT, A_POS, false), B_POS),
                (int[]){0, 0, 0, 0, -1, -1});
    expect_bool(f, unary(LX_ISNULL, col(CA, DQO_TYPE_I64), false),
                (int[]){0, 0, 0, 0, 1, 0});
    expect_bool(f, unary(LX_ISNULL, bin(LX_SUB, col(CA, DQO_TYPE_I64),
                                        col(CB, DQO_TYPE_I32)), true),
                (int[]){1, 1, 1, 1, 0, 0});
#undef A_POS
#undef B_POS
}

static void test_strings(void **state)
{
    fixture *f = *state;
    expect_bool(f, bin(LX_EQ, col(CS, DQO_TYPE_STR), lit_s("apple")),
                (int[]){1, 0, -1, 0, 1, 0});
    expect_bool(f, bin(LX_NE, lit_s("apple"), col(CS, DQO_TYPE_STR)),
                (int[]){0, 1, -1, 1, 0, 1});
    /* No dictionary entry: = is false everywhere, not an error. */
    expect_bool(f, bin(LX_EQ, col(CS, DQO_TYPE_STR), lit_s("kiwi")),
                (int[]){0, 0, -1, 0, 0, 0});
    expect_bool(f, bin(LX_LT, col(CS, DQO_TYPE_STR), lit_s("g")),
                (int[]){1, 0, -1, 1, 1, 0});
    /* 'g' > s is s < 'g' (operands swapped). */
    expect_bool(f, bin(LX_GT, lit_s("g"), col(CS, DQO_TYPE_STR)),
                (int[]){1, 0, -1, 1, 1, 0});
    expect_bool(f, bin(LX_GE, col(CS, DQO_TYPE_STR), lit_s("pear")),
                (int[]){0, 1, -1, 0, 0, 1});
    expect_bool(f, listed(LX_IN, col(CS, DQO_TYPE_STR), false, 2, lit_s("fig"),
                          lit_s("zebra")),
                (int[]){0, 0, -1, 1, 0, 1});
    expect_bool(f, listed(LX_IN, col(CS, DQO_TYPE_STR), true, 2, lit_s("fig"),
                          lit_s("zebra")),
                (int[]){1, 1, -1, 0, 1, 0});
    expect_bool(f, listed(LX_BETWEEN, col(CS, DQO_TYPE_STR), false, 2,
                          lit_s("b"), lit_s("q")),
                (int[]){0, 1, -1, 1, 0, 0});
    expect_bool(f, unary(LX_ISNULL, col(CS, DQO_TYPE_STR), true),
                (int[]){1, 1, 0, 1, 1, 1});
    expect_bool(f, bin(LX_EQ, lit_s("x"), lit_s("x")), (int[]){1, 1, 1, 1, 1, 1});
    /* A string against a number is a type error, not a crash. */
    qvec v;
    lexpr *e = bin(LX_EQ, col(CS, DQO_TYPE_STR), lit_i(1));
    assert_int_equal(qexpr_eval(&f->ev, e, &v), DQO_ETYPE);
    lexpr_free(e);
}

/* Through a filtered relation (row ids): columns are gathered. */
static void test_gathered(void **state)
{
    fixture *f = *state;
    uint32_t *rid = mem_alloc(3 * sizeof *rid);
    rid[0] = 5;
    rid[1] = 0;
    rid[2] = 4;
    f->rel.rid[0] = rid;
    f->rel.rows = 3;
    f->ev.rows = 3;
    expect_bool(f, bin(LX_EQ, col(CS, DQO_TYPE_STR), lit_s("apple")),
                (int[]){0, 1, 1});
    expect_i64(f, bin(LX_ADD, col(CA, DQO_TYPE_I64), col(CU, DQO_TYPE_U32)),
               (int64_t[]){6, 2, NUL});
    f->rel.rows = NR;
    f->ev.rows = NR;
    mem_free(rid);
    f->rel.rid[0] = NULL;
}

/* ------------------------------------------------------------ dqo_query */

static dqo_ctx *qctx;

static int q_setup(void **state)
{
    (void)state;
    /* An in-memory MAV cache file under /tmp keeps tests away from ~. */
    setenv("DQO_MAV", "/tmp/dqo-test-exec-mav.txt", 1);
    remove("/tmp/dqo-test-exec-mav.txt");
    return dqo_ctx_create(&qctx) == DQO_OK ? 0 : -1;
}

static int q_teardown(void **state)
{
    (void)state;
    dqo_ctx_destroy(qctx);
    remove("/tmp/dqo-test-exec-mav.txt");
    return 0;
}

static dqo_table *mk_table(int ncols, const char *const *names,
                           const dqo_type *types, const void *const *data,
                           uint64_t rows)
{
    dqo_table *t;
    CHECK_OK(qctx, dqo_table_create(qctx, &t));
    for (int c = 0; c < ncols; c++) {
        if (types[c] == DQO_TYPE_STR)
            CHECK_OK(qctx, dqo_table_add_strings(qctx, t, names[c], data[c], rows));
        else
            CHECK_OK(qctx, dqo_table_add_column(qctx, t, names[c], types[c],
                                                data[c], NULL, rows, DQO_COPY));
    }
    return t;
}

static dqo_table *run(const char *sql)
{
    dqo_table *r = NULL;
    dqo_status s = dqo_query(qctx, sql, NULL, &r, NULL);
    if (s != DQO_OK)
        fail_msg("%s: %s (%s)", sql, dqo_status_name(s), dqo_ctx_errmsg(qctx));
    return r;
}

static int64_t cell_i64(const dqo_table *r, int c, uint64_t row)
{
    char buf[64];
    assert_int_equal(dqo_table_format_cell(r, c, row, buf, sizeof buf), DQO_OK);
    return strtoll(buf, NULL, 10);
}

static void test_catalog(void **state)
{
    (void)state;
    int32_t k[3] = {1, 2, 3};
    dqo_table *t = mk_table(1, (const char *[]){"k"}, (dqo_type[]){DQO_TYPE_I32},
                            (const void *[]){k}, 3);
    assert_int_equal(dqo_register_table(qctx, "1bad", t), DQO_EINVAL);
    assert_int_equal(dqo_register_table(qctx, NULL, t), DQO_EINVAL);
    CHECK_OK(qctx, dqo_register_table(qctx, "Tab", t));
    dqo_table *r = run("SELECT COUNT(*) AS n FROM tab");
    assert_int_equal(dqo_table_rows(r), 1);
    assert_int_equal(cell_i64(r, 0, 0), 3);
    dqo_table_destroy(r);
    /* Unregistered: the binder's error quotes the query with a caret. */
    CHECK_OK(qctx, dqo_register_table(qctx, "TAB", NULL));
    assert_int_equal(dqo_query(qctx, "SELECT k FROM tab", NULL, &r, NULL),
                     DQO_ENOTFOUND);
    assert_null(r);
    assert_non_null(strstr(dqo_ctx_errmsg(qctx), "^"));
    /* A syntax error keeps the parser's status and caret. */
    CHECK_OK(qctx, dqo_register_table(qctx, "tab", t));
    assert_int_equal(dqo_query(qctx, "SELECT k FORM tab", NULL, &r, NULL),
                     DQO_EPARSE);
    assert_non_null(strstr(dqo_ctx_errmsg(qctx), "^"));
    /* Unknown locations are named with the known ones. */
    dqo_query_options o = {.device = "cl:99"};
    assert_int_not_equal(dqo_query(qctx, "SELECT k FROM tab", &o, &r, NULL),
                         DQO_OK);
    o.device = "gpu";
    assert_int_not_equal(dqo_query(qctx, "SELECT k FROM tab", &o, &r, NULL),
                         DQO_OK);
    assert_non_null(strstr(dqo_ctx_errmsg(qctx), "cpu"));
    o.device = "cpu";
    CHECK_OK(qctx, dqo_query(qctx, "SELECT k FROM tab", &o, &r, NULL));
    assert_int_equal(dqo_table_rows(r), 3);
    dqo_table_destroy(r);
    CHECK_OK(qctx, dqo_register_table(qctx, "tab", NULL));
    dqo_table_destroy(t);
}

/* A CSV named in FROM is loaded for the query and destroyed after it: the
 * result keeps its own copies (strings included; ASan checks the reads). */
static void test_csv_source(void **state)
{
    (void)state;
    const char *path = "/tmp/dqo-test-exec.csv";
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("city,n\nOslo,3\nLima,4\nOslo,5\n,6\n", f);
    fclose(f);
    dqo_table *r = run("SELECT city, SUM(n) AS s FROM '/tmp/dqo-test-exec.csv' "
                       "GROUP BY city ORDER BY city");
    remove(path);
    assert_int_equal(dqo_table_rows(r), 3);
    char buf[32];
    CHECK_OK(qctx, dqo_table_format_cell(r, 0, 0, buf, sizeof buf));
    assert_string_equal(buf, "Lima");
    CHECK_OK(qctx, dqo_table_format_cell(r, 0, 1, buf, sizeof buf));
    assert_string_equal(buf, "Oslo");
    assert_int_equal(cell_i64(r, 1, 1), 8);
    assert_true(dqo_table_is_null(r, 0, 2));
    assert_int_equal(cell_i64(r, 1, 2), 6);
    dqo_table_destroy(r);
    /* A missing file is an error naming it. */
    assert_int_not_equal(dqo_query(qctx, "SELECT * FROM '/tmp/dqo-none.csv'",
                                   NULL, &r, NULL), DQO_OK);
    assert_non_null(strstr(dqo_ctx_errmsg(qctx), "dqo-none.csv"));
}

/* An overflowing SUM names the aggregate as the query wrote it. */
static void test_sum_overflow(void **state)
{
    (void)state;
    int64_t a[3] = {INT64_MAX, 1, 2};
    int32_t k[3] = {1, 1, 2};
    dqo_table *t = mk_table(2, (const char *[]){"a", "k"},
                            (dqo_type[]){DQO_TYPE_I64, DQO_TYPE_I32},
                            (const void *[]){a, k}, 3);
    CHECK_OK(qctx, dqo_register_table(qctx, "ov", t));
    dqo_table *r = NULL;
    assert_int_equal(dqo_query(qctx, "SELECT k, SUM(a) FROM ov GROUP BY k",
                               NULL, &r, NULL), DQO_EOVERFLOW);
    assert_null(r);
    assert_non_null(strstr(dqo_ctx_errmsg(qctx), "SUM(ov.a)"));
    /* Over the second group only, it fits. */
    r = run("SELECT k, SUM(a) AS s FROM ov WHERE k = 2 GROUP BY k");
    assert_int_equal(cell_i64(r, 1, 0), 2);
    dqo_table_destroy(r);
    CHECK_OK(qctx, dqo_register_table(qctx, "ov", NULL));
    dqo_table_destroy(t);
}

static void test_global_empty(void **state)
{
    (void)state;
    int32_t k[1] = {0};
    double v[1] = {0};
    dqo_table *t = mk_table(2, (const char *[]){"k", "v"},
                            (dqo_type[]){DQO_TYPE_I32, DQO_TYPE_F64},
                            (const void *[]){k, v}, 0);
    CHECK_OK(qctx, dqo_register_table(qctx, "e", t));
    dqo_table *r = run("SELECT COUNT(*), COUNT(v), SUM(k), MIN(v), AVG(k), "
                       "COUNT(*) + 1 AS c1 FROM e");
    assert_int_equal(dqo_table_rows(r), 1);
    assert_int_equal(dqo_table_ncols(r), 6);
    assert_int_equal(cell_i64(r, 0, 0), 0);
    assert_int_equal(cell_i64(r, 1, 0), 0);
    for (int c = 2; c < 5; c++)
        assert_true(dqo_table_is_null(r, c, 0));
    assert_int_equal(cell_i64(r, 5, 0), 1);
    dqo_table_destroy(r);
    /* With a WHERE that rejects every row of a non-empty table too. */
    int32_t k2[4] = {1, 2, 3, 4};
    double v2[4] = {1, 2, 3, 4};
    dqo_table *t2 = mk_table(2, (const char *[]){"k", "v"},
                             (dqo_type[]){DQO_TYPE_I32, DQO_TYPE_F64},
                             (const void *[]){k2, v2}, 4);
    CHECK_OK(qctx, dqo_register_table(qctx, "e", t2));
    r = run("SELECT COUNT(*), SUM(v) FROM e WHERE k > 10");
    assert_int_equal(dqo_table_rows(r), 1);
    assert_int_equal(cell_i64(r, 0, 0), 0);
    assert_true(dqo_table_is_null(r, 1, 0));
    dqo_table_destroy(r);
    /* GROUP BY over no rows is no rows. */
    r = run("SELECT k, COUNT(*) FROM e WHERE k > 10 GROUP BY k");
    assert_int_equal(dqo_table_rows(r), 0);
    dqo_table_destroy(r);
    r = run("SELECT COUNT(*) AS n, SUM(v) AS s, MAX(k) AS m FROM e");
    assert_int_equal(cell_i64(r, 0, 0), 4);
    assert_int_equal(cell_i64(r, 1, 0), 10);
    assert_int_equal(cell_i64(r, 2, 0), 4);
    dqo_table_destroy(r);
    CHECK_OK(qctx, dqo_register_table(qctx, "e", NULL));
    dqo_table_destroy(t);
    dqo_table_destroy(t2);
}

/* A join on string keys whose dictionaries differ (other order, texts one
 * side lacks, NULLs), against a nested loop. */
static void test_join_strings(void **state)
{
    (void)state;
    static const char *words[] = {"ant", "bee", "cat", "dog", "eel", "fox",
                                  "gnu", "hen"};
    enum { NB = 40, NP = 300 };
    const char *bs[NB], *ps[NP];
    int32_t bv[NB], pv[NP];
    rng_g.s = seed;
    for (int i = 0; i < NB; i++) {
        bs[i] = rnd() % 9 == 0 ? NULL : words[rnd() % 6];      /* ant..fox */
        bv[i] = i;
    }
    for (int i = 0; i < NP; i++) {
        ps[i] = rnd() % 11 == 0 ? NULL : words[2 + rnd() % 6]; /* cat..hen */
        pv[i] = 1000 + i;
    }
    dqo_table *b = mk_table(2, (const char *[]){"s", "v"},
                            (dqo_type[]){DQO_TYPE_STR, DQO_TYPE_I32},
                            (const void *[]){bs, bv}, NB);
    dqo_table *p = mk_table(2, (const char *[]){"s", "w"},
                            (dqo_type[]){DQO_TYPE_STR, DQO_TYPE_I32},
                            (const void *[]){ps, pv}, NP);
    CHECK_OK(qctx, dqo_register_table(qctx, "b", b));
    CHECK_OK(qctx, dqo_register_table(qctx, "p", p));
    /* Count and a checksum of (v, w) pairs per key text. */
    dqo_table *r = run("SELECT b.s AS s, COUNT(*) AS n, SUM(b.v * 100000 + "
                       "p.w) AS x FROM b JOIN p ON b.s = p.s GROUP BY b.s "
                       "ORDER BY s");
    int64_t n[8] = {0}, x[8] = {0};
    for (int i = 0; i < NB; i++)
        for (int j = 0; j < NP; j++)
            if (bs[i] != NULL && ps[j] != NULL && strcmp(bs[i], ps[j]) == 0) {
                int w = 0;
                while (strcmp(words[w], bs[i]) != 0)
                    w++;
                n[w]++;
                x[w] += (int64_t)bv[i] * 100000 + pv[j];
            }
    uint64_t row = 0;
    for (int w = 0; w < 8; w++) {
        if (n[w] == 0)
            continue;
        assert_true(row < dqo_table_rows(r));
        char buf[32];
        CHECK_OK(qctx, dqo_table_format_cell(r, 0, row, buf, sizeof buf));
        assert_string_equal(buf, words[w]);
        assert_int_equal(cell_i64(r, 1, row), n[w]);
        assert_int_equal(cell_i64(r, 2, row), x[w]);
        row++;
    }
    assert_int_equal(row, dqo_table_rows(r));
    dqo_table_destroy(r);
    CHECK_OK(qctx, dqo_register_table(qctx, "b", NULL));
    CHECK_OK(qctx, dqo_register_table(qctx, "p", NULL));
    dqo_table_destroy(b);
    dqo_table_destroy(p);
}

/* Composite keys of mixed types (i32, u32, string) against a nested loop;
 * then keys whose combined range needs more than 64 bits. */
static void test_join_composite(void **state)
{
    (void)state;
    enum { NB = 60, NP = 400 };
    static const char *tags[] = {"x", "y", "z"};
    int32_t b1[NB], p1[NP];
    uint32_t b2[NB], p2[NP];
    const char *b3[NB], *p3[NP];
    int64_t bw[NB], pw[NP];
    rng_g.s = seed + 1;
    for (int i = 0; i < NB; i++) {
        b1[i] = (int32_t)(rnd() % 5) - 2;
        b2[i] = (uint32_t)(rnd() % 4) + 4000000000u;
        b3[i] = tags[rnd() % 3];
        bw[i] = i;
    }
    for (int i = 0; i < NP; i++) {
        p1[i] = (int32_t)(rnd() % 5) - 2;
        p2[i] = (uint32_t)(rnd() % 4) + 4000000000u;
        p3[i] = tags[rnd() % 2];
        pw[i] = i;
    }
    dqo_table *b = mk_table(4, (const char *[]){"k1", "k2", "k3", "w"},
                            (dqo_type[]){DQO_TYPE_I32, DQO_TYPE_U32, DQO_TYPE_STR,
                                         DQO_TYPE_I64},
                            (const void *[]){b1, b2, b3, bw}, NB);
    dqo_table *p = mk_table(4, (const char *[]){"k1", "k2", "k3", "w"},
                            (dqo_type[]){DQO_TYPE_I32, DQO_TYPE_U32, DQO_TYPE_STR,
                                         DQO_TYPE_I64},
                            (const void *[]){p1, p2, p3, pw}, NP);
    CHECK_OK(qctx, dqo_register_table(qctx, "cb", b));
    CHECK_OK(qctx, dqo_register_table(qctx, "cp", p));
    dqo_table *r = run("SELECT COUNT(*) AS n, SUM(cb.w * 1000 + cp.w) AS x "
                       "FROM cb JOIN cp ON cb.k1 = cp.k1 AND cb.k2 = cp.k2 "
                       "AND cb.k3 = cp.k3");
    int64_t n = 0, x = 0;
    for (int i = 0; i < NB; i++)
        for (int j = 0; j < NP; j++)
            if (b1[i] == p1[j] && b2[i] == p2[j] && strcmp(b3[i], p3[j]) == 0) {
                n++;
                x += bw[i] * 1000 + pw[j];
            }
    assert_int_equal(cell_i64(r, 0, 0), n);
    assert_int_equal(cell_i64(r, 1, 0), x);
    dqo_table_destroy(r);
    /* Too wide: two i64 keys spanning the whole range need 128 bits. */
    int64_t wide[2] = {INT64_MIN, INT64_MAX};
    dqo_table *w = mk_table(2, (const char *[]){"a", "b"},
                            (dqo_type[]){DQO_TYPE_I64, DQO_TYPE_I64},
                            (const void *[]){wide, wide}, 2);
    CHECK_OK(qctx, dqo_register_table(qctx, "w1", w));
    CHECK_OK(qctx, dqo_register_table(qctx, "w2", w));
    assert_int_equal(dqo_query(qctx, "SELECT COUNT(*) FROM w1 JOIN w2 ON "
                               "w1.a = w2.a AND w1.b = w2.b", NULL, &r, NULL),
                     DQO_EUNSUPPORTED);
    assert_non_null(strstr(dqo_ctx_errmsg(qctx), "composite join key needs 128 bits"));
    CHECK_OK(qctx, dqo_register_table(qctx, "cb", NULL));
    CHECK_OK(qctx, dqo_register_table(qctx, "cp", NULL));
    CHECK_OK(qctx, dqo_register_table(qctx, "w1", NULL));
    CHECK_OK(qctx, dqo_register_table(qctx, "w2", NULL));
    dqo_table_destroy(b);
    dqo_table_destroy(p);
    dqo_table_destroy(w);
}

/* ORDER BY: NULLs last ascending, first descending; strings by text;
 * stable; LIMIT; repeated item names made unique. */
static void test_order_limit(void **state)
{
    (void)state;
    int32_t k[6] = {3, 1, 2, 1, 0, 2};
    uint8_t kv[6] = {1, 1, 0, 1, 1, 1};
    const char *s[6] = {"b", "c", "a", "a", "b", "c"};
    int32_t id[6] = {0, 1, 2, 3, 4, 5};
    dqo_table *t;
    CHECK_OK(qctx, dqo_table_create(qctx, &t));
    CHECK_OK(qctx, dqo_table_add_column(qctx, t, "k", DQO_TYPE_I32, k, kv, 6,
                                        DQO_COPY));
    CHECK_OK(qctx, dqo_table_add_strings(qctx, t, "s", s, 6));
    CHECK_OK(qctx, dqo_table_add_column(qctx, t, "id", DQO_TYPE_I32, id, NULL,
                                        6, DQO_COPY));
    CHECK_OK(qctx, dqo_register_table(qctx, "o", t));
    dqo_table *r = run("SELECT id, k AS x, k AS x FROM o ORDER BY k, id");
    static const int asc[6] = {4, 1, 3, 5, 0, 2};
    for (int i = 0; i < 6; i++)
        assert_int_equal(cell_i64(r, 0, (uint64_t)i), asc[i]);
    assert_string_equal(dqo_table_column_name(r, 1), "x");
    assert_string_equal(dqo_table_column_name(r, 2), "x_2");
    dqo_table_destroy(r);
    r = run("SELECT id, k FROM o ORDER BY 2 DESC LIMIT 3");
    assert_int_equal(dqo_table_rows(r), 3);
    static const int desc[3] = {2, 0, 5};
    for (int i = 0; i < 3; i++)
        assert_int_equal(cell_i64(r, 0, (uint64_t)i), desc[i]);
    dqo_table_destroy(r);
    /* Strings by text, not by code (codes are in order of appearance). */
    r = run("SELECT id, s FROM o ORDER BY s DESC, id");
    static const int bys[6] = {1, 5, 0, 4, 2, 3};
    for (int i = 0; i < 6; i++)
        assert_int_equal(cell_i64(r, 0, (uint64_t)i), bys[i]);
    dqo_table_destroy(r);
    CHECK_OK(qctx, dqo_register_table(qctx, "o", NULL));
    dqo_table_destroy(t);
}

static void test_explain_analyze(void **state)
{
    (void)state;
    dqo_table *t;
    CHECK_OK(qctx, dqo_gen_grouping(qctx, 100000, 1000, 0, 0, seed, &t));
    CHECK_OK(qctx, dqo_register_table(qctx, "g", t));
    char *text = NULL;
    CHECK_OK(qctx, dqo_explain(qctx, "SELECT k, SUM(v) FROM g GROUP BY k",
                               NULL, 1, &text));
    /* The first plan measured k: EXPLAIN says a statistics pass ran. */
    if (strstr(text, "statistics") == NULL)
        fail_msg("no statistics note:\n%s", text);
    dqo_free(text);
    dqo_table *r = NULL;
    CHECK_OK(qctx, dqo_query(qctx, "SELECT k, SUM(v) AS s FROM g WHERE v > 0 "
                             "GROUP BY k ORDER BY k LIMIT 5", NULL, &r, &text));
    assert_int_equal(dqo_table_rows(r), 5);
    if (strstr(text, "actual") == NULL || strstr(text, " ms") == NULL)
        fail_msg("EXPLAIN ANALYZE has no measured times:\n%s", text);
    dqo_free(text);
    dqo_table_destroy(r);
    char *mav = NULL;
    CHECK_OK(qctx, dqo_mav_list(qctx, &mav));
    dqo_free(mav);
    CHECK_OK(qctx, dqo_mav_clear(qctx));
    CHECK_OK(qctx, dqo_mav_list(qctx, &mav));
    assert_string_equal(mav, "");
    dqo_free(mav);
    CHECK_OK(qctx, dqo_register_table(qctx, "g", NULL));
    dqo_table_destroy(t);
}

/* On an OpenCL device (PoCL in CI) the GROUP runs there behind a TRANSFER
 * that executes as a no-op; the result equals the CPU's. Skipped without a
 * device. */
static void test_device_group(void **state)
{
    (void)state;
    int idx;
    if (dqo_location_find(qctx, "cl:0", &idx) != DQO_OK) {
        printf("  (skipped: no OpenCL device cl:0)\n");
        return;
    }
    dqo_table *t;
    CHECK_OK(qctx, dqo_gen_grouping(qctx, 50000, 300, 0, 0, seed, &t));
    CHECK_OK(qctx, dqo_register_table(qctx, "dg", t));
    const char *sql = "SELECT k, COUNT(*) AS n, SUM(v) AS s, MIN(v) AS lo FROM "
                      "dg WHERE v > -500 GROUP BY k ORDER BY k";
    dqo_query_options cpu = {.device = "cpu", .no_mav = 1};
    dqo_query_options dev = {.device = "cl:0", .no_mav = 1};
    dqo_table *a = NULL, *b = NULL;
    char *ex = NULL;
    CHECK_OK(qctx, dqo_query(qctx, sql, &cpu, &a, NULL));
    CHECK_OK(qctx, dqo_query(qctx, sql, &dev, &b, &ex));
    assert_int_equal(dqo_table_rows(a), dqo_table_rows(b));
    for (uint64_t r = 0; r < dqo_table_rows(a); r++)
        for (int c = 0; c < 4; c++)
            assert_int_equal(cell_i64(a, c, r), cell_i64(b, c, r));
    if (strstr(ex, "on cl:0") != NULL && strstr(ex, "TRANSFER") != NULL &&
        strstr(ex, "no-op") == NULL)
        fail_msg("the TRANSFER does not say it ran as a no-op:\n%s", ex);
    dqo_free(ex);
    dqo_table_destroy(a);
    dqo_table_destroy(b);
    CHECK_OK(qctx, dqo_register_table(qctx, "dg", NULL));
    dqo_table_destroy(t);
}

/* Failing each allocation of a join + group query in turn: every failure
 * is an error, never a crash or a leak. */
static void test_alloc_failures(void **state)
{
    (void)state;
    int32_t k[8] = {1, 2, 3, 4, 1, 2, 3, 4};
    const char *s[8] = {"a", "b", "a", "c", NULL, "b", "a", "d"};
    dqo_table *t = mk_table(2, (const char *[]){"k", "s"},
                            (dqo_type[]){DQO_TYPE_I32, DQO_TYPE_STR},
                            (const void *[]){k, s}, 8);
    CHECK_OK(qctx, dqo_register_table(qctx, "f1", t));
    CHECK_OK(qctx, dqo_register_table(qctx, "f2", t));
    const char *sql = "SELECT f1.s AS s, COUNT(*) AS n FROM f1 JOIN f2 ON "
                      "f1.k = f2.k AND f1.s = f2.s WHERE f2.k < 4 GROUP BY "
                      "f1.s ORDER BY s";
    dqo_query_options o = {.no_mav = 1};
    dqo_table *r = NULL;
    CHECK_OK(qctx, dqo_query(qctx, sql, &o, &r, NULL));
    dqo_table_destroy(r);
    long before = mem_outstanding();
    int ok = 0;
    for (long n = 1; n < 2000 && ok < 3; n++) {
        mem_fail_after(n);
        char *ex = NULL;
        dqo_status st = dqo_query(qctx, sql, &o, &r, &ex);
        mem_fail_after(0);
        if (st == DQO_OK) {
            ok++;
            dqo_table_destroy(r);
            dqo_free(ex);
        } else {
            assert_null(r);
            assert_null(ex);
        }
        assert_int_equal(mem_outstanding(), before);
    }
    assert_int_equal(ok, 3); /* the loop got past every allocation */
    CHECK_OK(qctx, dqo_register_table(qctx, "f1", NULL));
    CHECK_OK(qctx, dqo_register_table(qctx, "f2", NULL));
    dqo_table_destroy(t);
}

int main(void)
{
    const char *env = getenv("DQO_TEST_SEED");
    if (env != NULL)
        seed = strtoull(env, NULL, 10);
    const struct CMUnitTest expr_tests[] = {
        cmocka_unit_test_setup_teardown(test_arith, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_overflow, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_compare_mixed, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_three_valued, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_strings, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_gathered, fx_setup, fx_teardown),
    };
    const struct CMUnitTest query_tests[] = {
        cmocka_unit_test(test_catalog),
        cmocka_unit_test(test_csv_source),
        cmocka_unit_test(test_sum_overflow),
        cmocka_unit_test(test_global_empty),
        cmocka_unit_test(test_join_strings),
        cmocka_unit_test(test_join_composite),
        cmocka_unit_test(test_order_limit),
        cmocka_unit_test(test_explain_analyze),
        cmocka_unit_test(test_device_group),
        cmocka_unit_test(test_alloc_failures),
    };
    int fails = cmocka_run_group_tests_name("expr", expr_tests, NULL, NULL);
    fails += cmocka_run_group_tests_name("query", query_tests, q_setup, q_teardown);
    return fails;
}
