/*
 * test_sql.c - the SQL subset (sql/): every grammar construct binds to the
 * expected lquery (kinds, types, table and column indices, joins, item
 * names, ORDER BY, LIMIT), operator precedence (checked through
 * lexpr_format's fully parenthesised text), every error class with its
 * exact position and message, string escapes, CSV sources through a fake
 * load_csv, the caret drawing of sql_error_format, and a seeded fuzz loop
 * (token soup, random bytes, mutations of valid queries) that must never
 * crash or leak and always report a position inside the text.
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
#include "sql/sql.h"

/* Catalog: r(a i64, b i32, v f64, s str), s(a i64, c u32, t str),
 * u(a i64, c u32, w i64); 'data/x.csv' loads as a copy of r. */
static dqo_ctx *ctx;
static dqo_table *tab_r, *tab_s, *tab_u;

static int ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if ((*a | 32) != (*b | 32))
            return 0;
    return *a == *b;
}

static const dqo_table *cat_find(void *arg, const char *name)
{
    (void)arg;
    if (ieq(name, "r"))
        return tab_r;
    if (ieq(name, "s"))
        return tab_s;
    if (ieq(name, "u"))
        return tab_u;
    return NULL;
}

static const dqo_table *cat_load(void *arg, const char *path, char *err,
                                 int errlen)
{
    (void)arg;
    if (strcmp(path, "data/x.csv") == 0)
        return tab_r;
    snprintf(err, (size_t)errlen, "no such file");
    return NULL;
}

static const sql_catalog cat = {NULL, cat_find, cat_load};

static void add_num(dqo_table *t, const char *name, dqo_type type)
{
    static const int64_t zeros[2];
    assert_int_equal(dqo_table_add_column(ctx, t, name, type, zeros, NULL, 2,
                                          DQO_COPY),
                     DQO_OK);
}

static void add_str(dqo_table *t, const char *name)
{
    const char *v[2] = {"x", "y"};
    assert_int_equal(dqo_table_add_strings(ctx, t, name, v, 2), DQO_OK);
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(dqo_ctx_create(&ctx), DQO_OK);
    assert_int_equal(dqo_table_create(ctx, &tab_r), DQO_OK);
    assert_int_equal(dqo_table_create(ctx, &tab_s), DQO_OK);
    assert_int_equal(dqo_table_create(ctx, &tab_u), DQO_OK);
    add_num(tab_r, "a", DQO_TYPE_I64);
    add_num(tab_r, "b", DQO_TYPE_I32);
    add_num(tab_r, "v", DQO_TYPE_F64);
    add_str(tab_r, "s");
    add_num(tab_s, "a", DQO_TYPE_I64);
    add_num(tab_s, "c", DQO_TYPE_U32);
    add_str(tab_s, "t");
    add_num(tab_u, "a", DQO_TYPE_I64);
    add_num(tab_u, "c", DQO_TYPE_U32);
    add_num(tab_u, "w", DQO_TYPE_I64);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    dqo_table_destroy(tab_r);
    dqo_table_destroy(tab_s);
    dqo_table_destroy(tab_u);
    dqo_ctx_destroy(ctx);
    return 0;
}

static lquery *ok(const char *sql)
{
    lquery *q = NULL;
    sql_error err;
    dqo_status st = sql_compile(sql, &cat, &q, &err);
    if (st != DQO_OK)
        fail_msg("%s: %s at %d", sql, err.msg, err.pos);
    assert_non_null(q);
    return q;
}

static void fmt_eq(const lquery *q, const lexpr *e, const char *want)
{
    char buf[512];
    lexpr_format(q, e, buf, sizeof buf);
    assert_string_equal(buf, want);
}

/* The WHERE clause of `SELECT a FROM r WHERE <cond>` as text. */
static void where_eq(const char *cond, const char *want)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT a FROM r WHERE %s", cond);
    lquery *q = ok(sql);
    fmt_eq(q, q->where, want);
    assert_int_equal(q->where->type, LX_TYPE_BOOL);
    lquery_free(q);
}

static void test_select_items(void **state)
{
    (void)state;
    lquery *q = ok("SELECT a, R.B AS bb, v * 2, 'it''s', 1.5, -3 , s "
                   "FROM r LIMIT 7;");
    assert_int_equal(q->ntables, 1);
    assert_string_equal(q->tables[0].name, "r");
    assert_string_equal(q->tables[0].alias, "r");
    assert_ptr_equal(q->tables[0].table, tab_r);
    assert_false(q->aggregate);
    assert_int_equal(q->nitems, 7);
    const char *names[] = {"a", "bb", "v * 2", "'it''s'", "1.5", "-3", "s"};
    const int types[] = {DQO_TYPE_I64, DQO_TYPE_I32, DQO_TYPE_F64,
                         DQO_TYPE_STR, DQO_TYPE_F64, DQO_TYPE_I64,
                         DQO_TYPE_STR};
    for (int i = 0; i < 7; i++) {
        assert_string_equal(q->items[i].name, names[i]);
        assert_int_equal(q->items[i].e->type, types[i]);
    }
    assert_int_equal(q->items[1].e->kind, LX_COL);
    assert_int_equal(q->items[1].e->table, 0);
    assert_int_equal(q->items[1].e->col, 1);
    assert_int_equal(q->items[1].e->pos, 10);
    assert_null(q->items[1].e->sval);
    assert_string_equal(q->items[3].e->sval, "it's");
    assert_int_equal(q->items[5].e->kind, LX_INT);
    assert_int_equal(q->items[5].e->ival, -3);
    assert_int_equal(q->limit, 7);
    assert_int_equal(q->norder, 0);
    assert_null(q->where);
    lquery_free(q);

    q = ok("select   sum( v )  ,COUNT(*),r.a -- comment\n from R GROUP BY a");
    assert_string_equal(q->items[0].name, "sum( v )");
    assert_string_equal(q->items[1].name, "COUNT(*)");
    assert_string_equal(q->items[2].name, "a");
    assert_int_equal(q->limit, -1);
    lquery_free(q);

    q = ok("SELECT \"a\" AS \"Odd Name\", X.S x1 FROM r AS x");
    assert_string_equal(q->items[0].name, "Odd Name");
    assert_string_equal(q->items[1].name, "x1");
    assert_int_equal(q->items[1].e->col, 3);
    assert_string_equal(q->tables[0].alias, "x");
    lquery_free(q);
}

static void test_star(void **state)
{
    (void)state;
    lquery *q = ok("SELECT *, 1 FROM r JOIN s ON r.a = s.a");
    assert_int_equal(q->nitems, 8);
    const char *names[] = {"a", "b", "v", "s", "a", "c", "t", "1"};
    for (int i = 0; i < 8; i++)
        assert_string_equal(q->items[i].name, names[i]);
    assert_int_equal(q->items[5].e->table, 1);
    assert_int_equal(q->items[5].e->col, 1);
    assert_int_equal(q->items[5].e->type, DQO_TYPE_U32);
    lquery_free(q);
}

static void test_precedence(void **state)
{
    (void)state;
    where_eq("a = 1 OR b = 2 AND NOT v > 3",
             "((r.a = 1) OR ((r.b = 2) AND NOT (r.v > 3)))");
    where_eq("a + b * 2 - -a % 3 > 0",
             "(((r.a + (r.b * 2)) - (-r.a % 3)) > 0)");
    where_eq("(a + b) * 2 <> 1 - 2 - 3", "(((r.a + r.b) * 2) <> ((1 - 2) - 3))");
    where_eq("NOT NOT a != 1", "NOT NOT (r.a <> 1)");
    where_eq("a >= 1 AND b <= 2 OR a < 3 AND b > 4",
             "(((r.a >= 1) AND (r.b <= 2)) OR ((r.a < 3) AND (r.b > 4)))");
    where_eq("a BETWEEN 1 AND 2 + 3 AND b NOT BETWEEN -1 AND v",
             "(r.a BETWEEN 1 AND (2 + 3) AND r.b NOT BETWEEN -1 AND r.v)");
    where_eq("a IN (1, -2, 3.5) OR s NOT IN ('x', 'y''z')",
             "(r.a IN (1, -2, 3.5) OR r.s NOT IN ('x', 'y''z'))");
    where_eq("s IS NULL AND v IS NOT NULL OR s = 'q' AND s < s",
             "((r.s IS NULL AND r.v IS NOT NULL) OR ((r.s = 'q') AND "
             "(r.s < r.s)))");
    where_eq("a / 2 * 2 = a", "(((r.a / 2) * 2) = r.a)");
}

static void test_expr_types(void **state)
{
    (void)state;
    lquery *q = ok("SELECT a + b, b * 2, b + v, -b, -v, a / 2, a % b, "
                   "b FROM r WHERE a IN (1) AND s IN ('x')");
    const int types[] = {DQO_TYPE_I64, DQO_TYPE_I64, DQO_TYPE_F64,
                         DQO_TYPE_I64, DQO_TYPE_F64, DQO_TYPE_I64,
                         DQO_TYPE_I64, DQO_TYPE_I32};
    for (int i = 0; i < 8; i++)
        assert_int_equal(q->items[i].e->type, types[i]);
    const lexpr *in = q->where->b;
    assert_int_equal(in->kind, LX_IN);
    assert_int_equal(in->nlist, 1);
    assert_string_equal(in->list[0]->sval, "x");
    assert_int_equal(in->ival, 0);
    assert_int_equal(q->where->ival, 0);
    lquery_free(q);
}

static void test_aggregate(void **state)
{
    (void)state;
    lquery *q = ok("SELECT s, COUNT(*), sum(v) AS sv, AVG(a), MIN(b), "
                   "max(v), SUM(b), count(s) FROM r GROUP BY s "
                   "ORDER BY 2 DESC, sv, s ASC, count(*) LIMIT 10");
    assert_true(q->aggregate);
    assert_int_equal(q->ngroup, 1);
    assert_int_equal(q->group[0]->kind, LX_COL);
    assert_int_equal(q->group[0]->col, 3);
    assert_int_equal(q->items[0].e->kind, LX_GROUPREF);
    assert_int_equal(q->items[0].e->col, 0);
    assert_int_equal(q->items[0].e->type, DQO_TYPE_STR);
    const dqo_agg aggs[] = {DQO_AGG_COUNT_STAR, DQO_AGG_SUM, DQO_AGG_AVG,
                            DQO_AGG_MIN, DQO_AGG_MAX, DQO_AGG_SUM,
                            DQO_AGG_COUNT};
    const int types[] = {DQO_TYPE_I64, DQO_TYPE_F64, DQO_TYPE_F64,
                         DQO_TYPE_I32, DQO_TYPE_F64, DQO_TYPE_I64,
                         DQO_TYPE_I64};
    const char *names[] = {"COUNT(*)", "sv", "AVG(a)", "MIN(b)", "max(v)",
                           "SUM(b)", "count(s)"};
    for (int i = 0; i < 7; i++) {
        assert_int_equal(q->items[i + 1].e->kind, LX_AGG);
        assert_int_equal(q->items[i + 1].e->agg, aggs[i]);
        assert_int_equal(q->items[i + 1].e->type, types[i]);
        assert_string_equal(q->items[i + 1].name, names[i]);
    }
    assert_null(q->items[1].e->a);
    assert_int_equal(q->norder, 4);
    const int oi[] = {1, 2, 0, 1};
    const bool od[] = {true, false, false, false};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(q->order[i].item, oi[i]);
        assert_int_equal(q->order[i].desc, od[i]);
    }
    assert_int_equal(q->limit, 10);
    lquery_free(q);

    /* GROUP BY an expression, reused inside a larger item. */
    q = ok("SELECT (a + 1) * 2, COUNT(*) + 1, 7 FROM r GROUP BY a + 1, b "
           "ORDER BY (a+1)*2");
    assert_int_equal(q->ngroup, 2);
    fmt_eq(q, q->items[0].e, "((r.a + 1) * 2)");
    assert_int_equal(q->items[0].e->a->kind, LX_GROUPREF);
    assert_int_equal(q->items[0].e->a->col, 0);
    assert_int_equal(q->items[0].e->a->type, DQO_TYPE_I64);
    assert_int_equal(q->order[0].item, 0);
    lquery_free(q);

    q = ok("SELECT COUNT(*) FROM r");
    assert_true(q->aggregate);
    assert_int_equal(q->ngroup, 0);
    lquery_free(q);
}

static void test_joins(void **state)
{
    (void)state;
    lquery *q = ok("SELECT r.a, s.c, w FROM r JOIN s ON s.a = r.a "
                   "INNER JOIN u AS uu ON uu.a = s.a AND r.b = uu.c "
                   "WHERE t = 'x'");
    assert_int_equal(q->ntables, 3);
    assert_string_equal(q->tables[2].alias, "uu");
    assert_string_equal(q->tables[2].name, "u");
    const lq_join *j = &q->joins[1];
    assert_int_equal(j->nkeys, 1);
    assert_int_equal(j->left[0]->table, 0);
    assert_int_equal(j->right[0]->table, 1);
    assert_int_equal(j->right[0]->col, 0);
    j = &q->joins[2];
    assert_int_equal(j->nkeys, 2);
    assert_int_equal(j->left[0]->table, 1);
    assert_int_equal(j->right[0]->table, 2);
    assert_int_equal(j->left[1]->table, 0);
    assert_int_equal(j->left[1]->col, 1);
    assert_int_equal(j->right[1]->table, 2);
    assert_int_equal(j->right[1]->col, 1);
    /* c is in s and u, but u is only visible as uu: still ambiguous. */
    lquery_free(q);
}

static void test_csv_source(void **state)
{
    (void)state;
    lquery *q = ok("SELECT x.a, y.t FROM 'data/x.csv' JOIN s y ON y.a = x.a");
    assert_string_equal(q->tables[0].name, "data/x.csv");
    assert_string_equal(q->tables[0].alias, "x");
    assert_ptr_equal(q->tables[0].table, tab_r);
    assert_string_equal(q->tables[1].alias, "y");
    lquery_free(q);

    sql_catalog nocsv = {NULL, cat_find, NULL};
    sql_error err;
    assert_int_equal(sql_compile("SELECT a FROM 'data/x.csv'", &nocsv, &q,
                                 &err),
                     DQO_EINVAL);
    assert_null(q);
    assert_int_equal(err.pos, 14);
}

typedef struct bad {
    const char *sql;
    dqo_status st;
    int pos, len;
    const char *msg;
} bad;

static const bad bads[] = {
    {"SELECT a FORM r", DQO_EPARSE, 9, 4, "expected FROM, found 'FORM'"},
    {"SELECT a FROM", DQO_EPARSE, 13, 1,
     "expected a table name or 'file.csv', found end of input"},
    {"SELECT a FROM r WHERE", DQO_EPARSE, 21, 1,
     "expected an expression, found end of input"},
    {"SELECT FROM r", DQO_EPARSE, 7, 4, "expected an expression, found 'FROM'"},
    {"SELEC a FROM r", DQO_EPARSE, 0, 5, "expected SELECT, found 'SELEC'"},
    {"SELECT a FROM r WHERE a = 1 = 2", DQO_EPARSE, 28, 1,
     "expected end of input, found '='"},
    {"SELECT (a FROM r", DQO_EPARSE, 10, 4, "expected ')', found 'FROM'"},
    {"SELECT a FROM r GROUP a", DQO_EPARSE, 22, 1, "expected BY"},
    {"SELECT a FROM r LIMIT -1", DQO_EPARSE, 22, 1,
     "expected a non-negative integer, found '-'"},
    {"SELECT a FROM r LIMIT 1.5", DQO_EPARSE, 22, 3, "non-negative integer"},
    {"SELECT a AS FROM r", DQO_EPARSE, 12, 4, "expected an alias"},
    {"SELECT a FROM r JOIN s", DQO_EPARSE, 22, 1, "expected ON"},
    {"SELECT a FROM r JOIN s ON r.a + 1 = s.a", DQO_EPARSE, 30, 1,
     "expected '='"},
    {"SELECT a FROM r WHERE a IS 1", DQO_EPARSE, 27, 1, "expected NULL"},
    {"SELECT 'abc FROM r", DQO_EPARSE, 7, 1, "unterminated string"},
    {"SELECT \"abc FROM r", DQO_EPARSE, 7, 1,
     "unterminated quoted identifier"},
    {"SELECT 99999999999999999999 FROM r", DQO_EPARSE, 7, 20, "out of range"},
    {"SELECT 9223372036854775808 FROM r", DQO_EPARSE, 7, 19, "out of range"},
    {"SELECT a # FROM r", DQO_EPARSE, 9, 1, "unexpected character '#'"},
    {"SELECT a FROM r WHERE a = 12abc", DQO_EPARSE, 26, 3, "malformed number"},
    {"SELECT a FROM x", DQO_ENOTFOUND, 14, 1, "no table 'x'"},
    {"SELECT zz FROM r", DQO_ENOTFOUND, 7, 2,
     "no column 'zz' (columns: r.a, r.b, r.v, r.s)"},
    {"SELECT q.a FROM r", DQO_ENOTFOUND, 7, 1, "no table 'q' in FROM (tables: r)"},
    {"SELECT \"A\" FROM r", DQO_ENOTFOUND, 7, 3, "no column 'A'"},
    {"SELECT a FROM r JOIN s ON r.a = s.a", DQO_EINVAL, 7, 1,
     "column 'a' is ambiguous: it is in r and s"},
    {"SELECT a FROM r JOIN s ON a = s.a", DQO_EINVAL, 26, 1, "ambiguous"},
    {"SELECT s + 1 FROM r", DQO_ETYPE, 9, 1,
     "operator '+' needs numbers, found str and i64"},
    {"SELECT a FROM r WHERE s = 1", DQO_ETYPE, 24, 1, "cannot compare str with i64"},
    {"SELECT a FROM r WHERE a", DQO_ETYPE, 22, 1, "WHERE needs a boolean"},
    {"SELECT a FROM r WHERE a AND b > 1", DQO_ETYPE, 24, 3, "AND needs boolean"},
    {"SELECT a FROM r WHERE NOT a", DQO_ETYPE, 22, 3, "NOT needs a boolean"},
    {"SELECT -s FROM r", DQO_ETYPE, 7, 1, "unary '-' needs a number"},
    {"SELECT a > 1 FROM r", DQO_ETYPE, 7, 1, "boolean"},
    {"SELECT SUM(s) FROM r", DQO_ETYPE, 11, 1, "sum needs numbers, found str"},
    {"SELECT AVG(s) FROM r", DQO_ETYPE, 11, 1, "avg needs numbers"},
    {"SELECT a, COUNT(*) FROM r", DQO_EINVAL, 7, 1,
     "column 'a' must appear in GROUP BY or be used in an aggregate function"},
    {"SELECT b, a FROM r GROUP BY b", DQO_EINVAL, 10, 1,
     "column 'a' must appear in GROUP BY"},
    {"SELECT a + 1 FROM r GROUP BY a + 2", DQO_EINVAL, 7, 1,
     "column 'a' must appear"},
    {"SELECT a FROM r WHERE SUM(a) > 1", DQO_EINVAL, 22, 3,
     "aggregate functions are not allowed in WHERE"},
    {"SELECT SUM(MAX(a)) FROM r", DQO_EINVAL, 11, 3,
     "aggregate functions cannot be nested"},
    {"SELECT a FROM r GROUP BY COUNT(*)", DQO_EINVAL, 25, 5,
     "not allowed in GROUP BY"},
    {"SELECT *, COUNT(*) FROM r", DQO_EINVAL, 7, 1, "SELECT * cannot be used"},
    {"SELECT a FROM r ORDER BY 3", DQO_EINVAL, 25, 1,
     "ORDER BY position 3 is out of range (the select list has 1 items)"},
    {"SELECT a FROM r ORDER BY 0", DQO_EINVAL, 25, 1, "out of range"},
    {"SELECT a FROM r ORDER BY b", DQO_EINVAL, 25, 1,
     "ORDER BY expression is not in the select list"},
    {"SELECT a FROM r ORDER BY zz", DQO_ENOTFOUND, 25, 2, "no column 'zz'"},
    {"SELECT b FROM r GROUP BY b ORDER BY a", DQO_EINVAL, 36, 1,
     "must appear in GROUP BY"},
    {"SELECT a FROM r WHERE a IN (1, b)", DQO_EINVAL, 31, 1,
     "IN lists take literals only"},
    {"SELECT a FROM r WHERE a IN (1, 'x')", DQO_ETYPE, 31, 3,
     "IN compares i64 with str"},
    {"SELECT a FROM r WHERE s BETWEEN 1 AND 2", DQO_ETYPE, 32, 1,
     "BETWEEN compares str with i64"},
    {"SELECT a FROM r WHERE (a > 1) IN (1)", DQO_ETYPE, 30, 2, "IN needs"},
    {"SELECT 1 FROM r JOIN s ON r.v = s.a", DQO_ETYPE, 26, 1, "f64"},
    {"SELECT 1 FROM r JOIN s ON r.s = s.a", DQO_ETYPE, 26, 1,
     "cannot join str with i64"},
    {"SELECT 1 FROM r JOIN s ON r.a = r.b", DQO_EINVAL, 26, 1,
     "must compare a column of 's' with a column of an earlier table"},
    {"SELECT 1 FROM r JOIN s ON s.a = s.c", DQO_EINVAL, 26, 1, "earlier table"},
    {"SELECT 1 FROM r JOIN s ON r.a = u.a", DQO_ENOTFOUND, 32, 1,
     "no table 'u' in FROM (tables: r, s)"},
    {"SELECT 1 FROM r JOIN r ON r.a = r.a", DQO_EINVAL, 21, 1,
     "table name 'r' is used twice"},
    {"SELECT a FROM 'nope.csv'", DQO_EIO, 14, 10,
     "cannot load 'nope.csv': no such file"},
};

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bads / sizeof *bads; i++) {
        const bad *b = &bads[i];
        lquery *q = (lquery *)1;
        sql_error err;
        dqo_status st = sql_compile(b->sql, &cat, &q, &err);
        if (st != b->st || err.pos != b->pos || err.len != b->len ||
            strstr(err.msg, b->msg) == NULL)
            fail_msg("%s\n  got %s pos %d len %d: %s\n  want %s pos %d len "
                     "%d: %s",
                     b->sql, dqo_status_name(st), err.pos, err.len, err.msg,
                     dqo_status_name(b->st), b->pos, b->len, b->msg);
        assert_null(q);
    }
}

/* Input nested past the depth limit fails cleanly at every kind of nesting. */
static void test_depth(void **state)
{
    (void)state;
    const char *units[][3] = {{"(", "1", ")"}, {"NOT ", "a > 1", ""},
                              {"- ", "1", ""}, {"", "1", " + 1"},
                              {"SUM(", "1", ")"}};
    for (size_t u = 0; u < sizeof units / sizeof *units; u++) {
        for (int n = 10; n <= 5000; n *= 500) {
            size_t cap = (size_t)n * 8 + 64;
            char *sql = malloc(cap);
            strcpy(sql, "SELECT a FROM r WHERE ");
            for (int i = 0; i < n; i++)
                strcat(sql, units[u][0]);
            strcat(sql, units[u][1]);
            for (int i = 0; i < n; i++)
                strcat(sql, units[u][2]);
            lquery *q = NULL;
            sql_error err;
            dqo_status st = sql_compile(sql, &cat, &q, &err);
            if (n > 200) {
                if (st != DQO_EPARSE || !strstr(err.msg, "nested too deeply"))
                    fail_msg("%.80s: %s", sql, err.msg);
                assert_true(err.pos >= 0 && err.pos <= (int)strlen(sql));
            } else {
                /* Valid syntax; binding decides (e.g. WHERE 1 is a type
                 * error), but never "too deep". */
                if (strstr(err.msg, "nested too deeply") != NULL)
                    fail_msg("%.80s: %s", sql, err.msg);
            }
            lquery_free(q);
            free(sql);
        }
    }
    /* A long flat IN list is not nesting. */
    char *sql = malloc(40000);
    strcpy(sql, "SELECT a FROM r WHERE a IN (0");
    for (int i = 1; i < 3000; i++)
        sprintf(sql + strlen(sql), ", %d", i);
    strcat(sql, ")");
    lquery *q = ok(sql);
    assert_int_equal(q->where->nlist, 3000);
    assert_int_equal(q->where->list[2999]->ival, 2999);
    lquery_free(q);
    free(sql);
}

static void test_error_format(void **state)
{
    (void)state;
    const char *sql = "SELECT a FORM r";
    sql_error err;
    lquery *q;
    assert_int_equal(sql_compile(sql, &cat, &q, &err), DQO_EPARSE);
    char buf[256];
    sql_error_format(sql, &err, buf, sizeof buf);
    assert_string_equal(buf, "error: expected FROM, found 'FORM'\n"
                             "  SELECT a FORM r\n"
                             "           ^~~~\n");
    sql = "SELECT a\n\tFROM r\n\tWHERE zz = 1";
    assert_int_equal(sql_compile(sql, &cat, &q, &err), DQO_ENOTFOUND);
    sql_error_format(sql, &err, buf, sizeof buf);
    assert_string_equal(buf, "error: no column 'zz' (columns: r.a, r.b, "
                             "r.v, r.s)\n"
                             "  \tWHERE zz = 1\n"
                             "  \t      ^~\n");
    sql = "SELECT a FROM";
    assert_int_equal(sql_compile(sql, &cat, &q, &err), DQO_EPARSE);
    sql_error_format(sql, &err, buf, sizeof buf);
    assert_string_equal(buf, "error: expected a table name or 'file.csv', "
                             "found end of input\n"
                             "  SELECT a FROM\n"
                             "               ^\n");
    /* Truncation never overruns. */
    char small[12];
    sql_error_format(sql, &err, small, sizeof small);
    assert_string_equal(small, "error: expe");
    err.pos = -1;
    sql_error_format(sql, &err, buf, sizeof buf);
    assert_null(strchr(buf, '^'));
}

static void test_bad_args(void **state)
{
    (void)state;
    lquery *q = (lquery *)1;
    sql_error err;
    assert_int_equal(sql_compile(NULL, &cat, &q, &err), DQO_EINVAL);
    assert_null(q);
    assert_int_equal(sql_compile("SELECT 1 FROM r", NULL, &q, &err),
                     DQO_EINVAL);
    assert_int_equal(sql_compile("", &cat, &q, &err), DQO_EPARSE);
    assert_int_equal(err.pos, 0);
    lquery_free(NULL);
    lexpr_free(NULL);
}

/* ---------------------------------------------------------------- fuzz */

static uint64_t rng = 0x9e3779b97f4a7c15ull; /* fixed seed: reproducible */

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static const char *const vocab[] = {
    "SELECT", "FROM", "WHERE", "GROUP", "BY", "ORDER", "LIMIT", "JOIN",
    "INNER", "ON", "AS", "AND", "OR", "NOT", "BETWEEN", "IN", "IS", "NULL",
    "ASC", "DESC", "COUNT", "SUM", "MIN", "MAX", "AVG", "(", ")", ",", ".",
    "*", "+", "-", "/", "%", "=", "<>", "!=", "<", "<=", ">", ">=", ";", "a",
    "b", "c", "v", "s", "t", "w", "r", "u", "x", "'x'", "'it''s'", "\"a\"",
    "1", "0", "2.5", "1e3", "'data/x.csv'", "--c\n", "\t", "\n"};

static const char *const seeds[] = {
    "SELECT s, COUNT(*), sum(v) AS sv FROM r GROUP BY s ORDER BY 2 DESC "
    "LIMIT 3",
    "SELECT r.a, s.c FROM r JOIN s ON s.a = r.a JOIN u ON u.a = s.a AND "
    "r.b = u.c WHERE t = 'x' AND r.a BETWEEN 1 AND 3",
    "SELECT (a + 1) * 2, -v FROM r WHERE s IN ('x', 'y') OR v IS NOT NULL",
    "SELECT * FROM 'data/x.csv' x WHERE NOT x.a <> 1 ORDER BY a"};

static int fuzz_ok; /* how many fuzz inputs compiled */

static void check(const char *sql)
{
    lquery *q = (lquery *)1;
    sql_error err;
    dqo_status st = sql_compile(sql, &cat, &q, &err);
    if (st == DQO_OK) {
        assert_non_null(q);
        char buf[128];
        for (int i = 0; i < q->nitems; i++)
            lexpr_format(q, q->items[i].e, buf, sizeof buf);
        lquery_free(q);
        fuzz_ok++;
        return;
    }
    assert_null(q);
    int n = (int)strlen(sql);
    if (err.pos < 0 || err.pos > n || err.len < 1 || err.msg[0] == '\0')
        fail_msg("bad error for [%s]: %s pos %d len %d", sql, err.msg,
                 err.pos, err.len);
    char buf[512];
    sql_error_format(sql, &err, buf, sizeof buf);
}

static void test_fuzz(void **state)
{
    (void)state;
    char sql[1024];
    for (int it = 0; it < 3000; it++) { /* token soup */
        int n = 1 + (int)rnd(30);
        strcpy(sql, rnd(4) ? "SELECT " : "");
        for (int k = 0; k < n; k++) {
            strcat(sql, vocab[rnd(sizeof vocab / sizeof *vocab)]);
            strcat(sql, rnd(3) ? " " : "");
        }
        check(sql);
    }
    for (int it = 0; it < 1000; it++) { /* random bytes */
        int n = (int)rnd(60);
        for (int k = 0; k < n; k++)
            sql[k] = (char)(1 + rnd(255));
        sql[n] = '\0';
        check(sql);
    }
    for (int it = 0; it < 5000; it++) { /* mutations and truncations */
        strcpy(sql, seeds[rnd(sizeof seeds / sizeof *seeds)]);
        int muts = 1 + (int)rnd(3);
        for (int m = 0; m < muts; m++) {
            int n = (int)strlen(sql);
            int at = n ? (int)rnd((uint32_t)n) : 0;
            switch (rnd(4)) {
            case 0: sql[at] = (char)(1 + rnd(127)); break;
            case 1: sql[at] = '\0'; break;
            case 2: memmove(sql + at, sql + at + 1, (size_t)(n - at)); break;
            default:
                if (n < 900) {
                    const char *w = vocab[rnd(sizeof vocab / sizeof *vocab)];
                    size_t wl = strlen(w);
                    memmove(sql + at + wl, sql + at, (size_t)(n - at + 1));
                    memcpy(sql + at, w, wl);
                }
            }
        }
        check(sql);
    }
    for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++) {
        lquery *q = ok(seeds[i]); /* the seeds themselves are valid */
        lquery_free(q);
    }
    /* Some mutations (e.g. a changed literal) stay valid, so the binder's
     * success path is fuzzed as well as the error paths. */
    assert_true(fuzz_ok > 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select_items), cmocka_unit_test(test_star),
        cmocka_unit_test(test_precedence),   cmocka_unit_test(test_expr_types),
        cmocka_unit_test(test_aggregate),    cmocka_unit_test(test_joins),
        cmocka_unit_test(test_csv_source),   cmocka_unit_test(test_errors),
        cmocka_unit_test(test_depth),        cmocka_unit_test(test_error_format),
        cmocka_unit_test(test_bad_args),     cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
