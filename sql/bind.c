/*
 * bind.c - the binder: turns the parsed query (sql_int.h) into a bound
 * lquery (planner/logical.h). It resolves FROM sources through the catalog,
 * column references through aliases (ambiguity and unknown names are
 * errors that list the candidates), checks types by the rules of
 * planner/logical.h, validates the aggregate shape (every select item built
 * from aggregates, GROUP BY expressions and literals) and resolves ORDER BY
 * to select-list items. Pure C.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/sql_int.h"

typedef struct binder {
    const char *text;
    const sql_tokens *tk;
    sql_error *err;
    const sql_catalog *cat;
    lquery *q;
    int nvis;           /* tables visible to column references */
    bool allow_agg;     /* aggregates allowed in the current clause */
    bool in_agg;        /* inside an aggregate's argument */
    const char *clause; /* for "not allowed in <clause>" */
    bool *aliased;      /* per select item: named by an explicit alias */
    int aliased_cap;
} binder;

/* Fails at pos, the caret spanning the token that starts there. */
static dqo_status bfail(binder *b, dqo_status st, int pos, const char *fmt,
                        ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static dqo_status bfail(binder *b, dqo_status st, int pos, const char *fmt,
                        ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err->msg, sizeof b->err->msg, fmt, ap);
    va_end(ap);
    b->err->pos = pos;
    b->err->len = pos >= 0 ? sql_token_len_at(b->tk, pos) : 0;
    return st;
}

static dqo_status nomem(binder *b)
{
    return sql_fail(b->err, DQO_ENOMEM, -1, 0, "out of memory");
}

static bool is_int_type(int t)
{
    return t == DQO_TYPE_U32 || t == DQO_TYPE_I32 || t == DQO_TYPE_I64;
}

static bool is_num(int t) { return is_int_type(t) || t == DQO_TYPE_F64; }

/* Comparable: numbers with numbers, strings with strings. */
static bool compatible(int a, int b)
{
    return (is_num(a) && is_num(b)) || (a == DQO_TYPE_STR && b == DQO_TYPE_STR);
}

static const char *tname(int t)
{
    return t == LX_TYPE_BOOL ? "boolean" : dqo_type_name((dqo_type)t);
}

/* Appends to buf (size n) with ", " separators, ending in "..." when full. */
static void append_name(char *buf, size_t n, const char *a, const char *c)
{
    size_t used = strlen(buf);
    if (used + 4 >= n)
        return;
    int w = snprintf(buf + used, n - used, "%s%s%s%s", used ? ", " : "",
                     a ? a : "", a ? "." : "", c);
    if (w < 0 || (size_t)w >= n - used)
        strcpy(buf + (n > 4 ? n - 4 : 0), "...");
}

static bool name_eq(const char *name, bool quoted, const char *target)
{
    return target != NULL &&
           (quoted ? strcmp(name, target) == 0 : sql_ieq(name, target));
}

static int find_alias(const binder *b, const char *name, bool quoted)
{
    for (int t = 0; t < b->nvis; t++)
        if (name_eq(name, quoted, b->q->tables[t].alias))
            return t;
    return -1;
}

static dqo_status unknown_column(binder *b, const lexpr *e, int first,
                                 int last)
{
    char cands[160] = "";
    for (int t = first; t < last; t++) {
        const dqo_table *tab = b->q->tables[t].table;
        for (int c = 0; c < dqo_table_ncols(tab); c++)
            append_name(cands, sizeof cands, b->q->tables[t].alias,
                        dqo_table_column_name(tab, c));
    }
    return bfail(b, DQO_ENOTFOUND, e->pos, "no column '%.60s' (columns: %s)",
                 e->sval, cands);
}

/* Resolves an unbound column reference against the visible tables. */
static dqo_status bind_col(binder *b, lexpr *e)
{
    int first = 0, last = b->nvis;
    if (e->a != NULL) {
        int t = find_alias(b, e->a->sval, e->a->negated);
        if (t < 0) {
            char tabs[160] = "";
            for (int k = 0; k < b->nvis; k++)
                append_name(tabs, sizeof tabs, NULL, b->q->tables[k].alias);
            return bfail(b, DQO_ENOTFOUND, e->pos,
                         "no table '%.60s' in FROM (tables: %s)", e->a->sval,
                         tabs);
        }
        first = t;
        last = t + 1;
    }
    int ft = -1, fc = -1, other = -1;
    for (int t = first; t < last; t++) {
        const dqo_table *tab = b->q->tables[t].table;
        for (int c = 0; c < dqo_table_ncols(tab); c++) {
            if (!name_eq(e->sval, e->negated, dqo_table_column_name(tab, c)))
                continue;
            if (ft < 0) {
                ft = t;
                fc = c;
            } else if (t != ft) {
                other = t;
            }
        }
    }
    if (ft < 0)
        return unknown_column(b, e, first, last);
    if (other >= 0)
        return bfail(b, DQO_EINVAL, e->pos,
                     "column '%.60s' is ambiguous: it is in %.60s and %.60s",
                     e->sval, b->q->tables[ft].alias,
                     b->q->tables[other].alias);
    lexpr_free(e->a);
    e->a = NULL;
    free(e->sval);
    e->sval = NULL;
    e->negated = false;
    e->table = ft;
    e->col = fc;
    e->type = dqo_table_column_type(b->q->tables[ft].table, fc);
    return DQO_OK;
}

static dqo_status bind_expr(binder *b, lexpr *e);

static const char *const op_text[] = {"+", "-", "*", "/", "%", "=", "<>",
                                      "<", "<=", ">", ">=", "AND", "OR"};

static dqo_status bind_bin(binder *b, lexpr *e, int op_pos)
{
    int ta = e->a->type, tb = e->b->type;
    const char *op = op_text[e->op];
    if (e->op <= LX_MOD) {
        if (!is_num(ta) || !is_num(tb))
            return bfail(b, DQO_ETYPE, op_pos,
                         "operator '%s' needs numbers, found %s and %s", op,
                         tname(ta), tname(tb));
        e->type = is_int_type(ta) && is_int_type(tb) ? DQO_TYPE_I64
                                                     : DQO_TYPE_F64;
    } else if (e->op <= LX_GE) {
        if (!compatible(ta, tb))
            return bfail(b, DQO_ETYPE, op_pos, "cannot compare %s with %s",
                         tname(ta), tname(tb));
        e->type = LX_TYPE_BOOL;
    } else {
        if (ta != LX_TYPE_BOOL || tb != LX_TYPE_BOOL)
            return bfail(b, DQO_ETYPE, op_pos,
                         "%s needs boolean operands, found %s and %s", op,
                         tname(ta), tname(tb));
        e->type = LX_TYPE_BOOL;
    }
    return DQO_OK;
}

/* BETWEEN and IN: every list element comparable with the operand. */
static dqo_status bind_list(binder *b, lexpr *e)
{
    const char *what = e->kind == LX_IN ? "IN" : "BETWEEN";
    for (int k = 0; k < e->nlist; k++) {
        lexpr *x = e->list[k];
        if (e->kind == LX_IN && x->kind != LX_INT && x->kind != LX_FLOAT &&
            x->kind != LX_STR)
            return bfail(b, DQO_EINVAL, x->pos,
                         "IN lists take literals only");
        dqo_status st = bind_expr(b, x);
        if (st != DQO_OK)
            return st;
        if (!compatible(e->a->type, x->type))
            return bfail(b, DQO_ETYPE, x->pos,
                         "%s compares %s with %s", what, tname(e->a->type),
                         tname(x->type));
    }
    e->type = LX_TYPE_BOOL;
    return DQO_OK;
}

static dqo_status bind_agg(binder *b, lexpr *e)
{
    const char *name = dqo_agg_name(e->agg);
    if (!b->allow_agg)
        return bfail(b, DQO_EINVAL, e->pos,
                     "aggregate functions are not allowed in %s", b->clause);
    if (b->in_agg)
        return bfail(b, DQO_EINVAL, e->pos,
                     "aggregate functions cannot be nested");
    if (e->agg == DQO_AGG_COUNT_STAR) {
        e->type = DQO_TYPE_I64;
        return DQO_OK;
    }
    b->in_agg = true;
    dqo_status st = bind_expr(b, e->a);
    b->in_agg = false;
    if (st != DQO_OK)
        return st;
    int ta = e->a->type;
    switch (e->agg) {
    case DQO_AGG_COUNT:
        e->type = DQO_TYPE_I64;
        return DQO_OK;
    case DQO_AGG_SUM:
        e->type = is_int_type(ta) ? DQO_TYPE_I64 : DQO_TYPE_F64;
        break;
    case DQO_AGG_AVG:
        e->type = DQO_TYPE_F64;
        break;
    default: /* MIN, MAX keep the input type */
        e->type = ta;
        break;
    }
    if (!is_num(ta))
        return bfail(b, DQO_ETYPE, e->a->pos, "%s needs numbers, found %s",
                     name, tname(ta));
    return DQO_OK;
}

static dqo_status bind_expr(binder *b, lexpr *e)
{
    dqo_status st = DQO_OK;
    int op_pos = (int)e->ival;
    switch (e->kind) {
    case LX_COL:
        return bind_col(b, e);
    case LX_INT:
        e->type = DQO_TYPE_I64;
        return DQO_OK;
    case LX_FLOAT:
        e->type = DQO_TYPE_F64;
        return DQO_OK;
    case LX_STR:
        e->type = DQO_TYPE_STR;
        return DQO_OK;
    case LX_AGG:
        return bind_agg(b, e);
    default:
        break;
    }
    /* Operators: bind the operands first. */
    if (e->a != NULL && (st = bind_expr(b, e->a)) != DQO_OK)
        return st;
    if (e->b != NULL && (st = bind_expr(b, e->b)) != DQO_OK)
        return st;
    if (e->kind == LX_BIN || e->kind == LX_BETWEEN || e->kind == LX_IN ||
        e->kind == LX_ISNULL)
        e->ival = 0; /* was the operator's position */
    switch (e->kind) {
    case LX_BIN:
        return bind_bin(b, e, op_pos);
    case LX_NOT:
        if (e->a->type != LX_TYPE_BOOL)
            return bfail(b, DQO_ETYPE, e->pos,
                         "NOT needs a boolean operand, found %s",
                         tname(e->a->type));
        e->type = LX_TYPE_BOOL;
        return DQO_OK;
    case LX_NEG:
        if (!is_num(e->a->type))
            return bfail(b, DQO_ETYPE, e->pos,
                         "unary '-' needs a number, found %s",
                         tname(e->a->type));
        e->type = is_int_type(e->a->type) ? DQO_TYPE_I64 : DQO_TYPE_F64;
        return DQO_OK;
    case LX_BETWEEN:
    case LX_IN:
        if (e->a->type == LX_TYPE_BOOL)
            return bfail(b, DQO_ETYPE, op_pos,
                         "%s needs a number or a string, found boolean",
                         e->kind == LX_IN ? "IN" : "BETWEEN");
        return bind_list(b, e);
    case LX_ISNULL:
        e->type = LX_TYPE_BOOL;
        return DQO_OK;
    default:
        return bfail(b, DQO_EINTERNAL, e->pos, "unexpected expression");
    }
}

/* Binds e in a clause; `agg`: aggregates allowed. */
static dqo_status bind_in(binder *b, lexpr *e, const char *clause, bool agg)
{
    b->clause = clause;
    b->allow_agg = agg;
    b->in_agg = false;
    b->nvis = b->q->ntables;
    return bind_expr(b, e);
}

static bool contains_agg(const lexpr *e)
{
    if (e == NULL)
        return false;
    if (e->kind == LX_AGG)
        return true;
    for (int k = 0; k < e->nlist; k++)
        if (contains_agg(e->list[k]))
            return true;
    return contains_agg(e->a) || contains_agg(e->b);
}

bool sql_lexpr_equal(const lexpr *a, const lexpr *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (a->kind != b->kind || a->type != b->type || a->op != b->op ||
        a->negated != b->negated || a->table != b->table ||
        a->col != b->col || a->ival != b->ival || a->agg != b->agg ||
        a->nlist != b->nlist)
        return false;
    if (a->kind == LX_FLOAT && !(a->fval == b->fval))
        return false;
    if ((a->sval == NULL) != (b->sval == NULL) ||
        (a->sval != NULL && strcmp(a->sval, b->sval) != 0))
        return false;
    for (int k = 0; k < a->nlist; k++)
        if (!sql_lexpr_equal(a->list[k], b->list[k]))
            return false;
    return sql_lexpr_equal(a->a, b->a) && sql_lexpr_equal(a->b, b->b);
}

/* In an aggregate query: replaces GROUP BY expressions in *pe by
 * LX_GROUPREF nodes, and rejects columns outside aggregates. */
static dqo_status group_refs(binder *b, lexpr **pe)
{
    lexpr *e = *pe;
    const lquery *q = b->q;
    for (int k = 0; k < q->ngroup; k++) {
        if (!sql_lexpr_equal(e, q->group[k]))
            continue;
        lexpr *g = calloc(1, sizeof *g);
        if (g == NULL)
            return nomem(b);
        g->kind = LX_GROUPREF;
        g->table = -1;
        g->col = k;
        g->type = e->type;
        g->pos = e->pos;
        lexpr_free(e);
        *pe = g;
        return DQO_OK;
    }
    if (e->kind == LX_AGG)
        return DQO_OK;
    if (e->kind == LX_COL)
        return bfail(b, DQO_EINVAL, e->pos,
                     "column '%s' must appear in GROUP BY or be used in an "
                     "aggregate function",
                     dqo_table_column_name(q->tables[e->table].table, e->col));
    dqo_status st = DQO_OK;
    for (int k = 0; k < e->nlist && st == DQO_OK; k++)
        st = group_refs(b, &e->list[k]);
    if (st == DQO_OK && e->a != NULL)
        st = group_refs(b, &e->a);
    if (st == DQO_OK && e->b != NULL)
        st = group_refs(b, &e->b);
    return st;
}

/* ---------------------------------------------------------------- FROM */

/* The file name without directories and extension: the default alias of a
 * CSV source, so that FROM 'data/r.csv' can be qualified as r. */
static char *path_stem(const char *path)
{
    const char *s = strrchr(path, '/');
    s = s != NULL ? s + 1 : path;
    const char *dot = strrchr(s, '.');
    size_t n = dot != NULL && dot > s ? (size_t)(dot - s) : strlen(s);
    return sql_strndup(s, n);
}

static dqo_status bind_source(binder *b, ast_source *s, int i)
{
    lquery *q = b->q;
    lq_table *t = &q->tables[i];
    q->ntables = i + 1;
    t->name = s->name;
    s->name = NULL;
    t->alias = s->alias != NULL ? s->alias
                                : s->is_path ? path_stem(t->name)
                                             : sql_strdup(t->name);
    s->alias = NULL;
    if (t->alias == NULL)
        return nomem(b);
    if (s->is_path) {
        if (b->cat->load_csv == NULL)
            return bfail(b, DQO_EINVAL, s->pos,
                         "CSV paths are not allowed here ('%.100s')", t->name);
        char why[160] = "";
        t->table = b->cat->load_csv(b->cat->arg, t->name, why, sizeof why);
        if (t->table == NULL)
            return bfail(b, DQO_EIO, s->pos, "cannot load '%.60s': %s",
                         t->name, why[0] ? why : "unknown error");
    } else {
        t->table = b->cat->find != NULL ? b->cat->find(b->cat->arg, t->name)
                                        : NULL;
        if (t->table == NULL)
            return bfail(b, DQO_ENOTFOUND, s->pos, "no table '%.100s'",
                         t->name);
    }
    for (int j = 0; j < i; j++)
        if (sql_ieq(q->tables[j].alias, t->alias))
            return bfail(b, DQO_EINVAL, s->pos,
                         "table name '%.60s' is used twice in FROM; give one "
                         "an alias",
                         t->alias);
    return DQO_OK;
}

static dqo_status check_join_key(binder *b, const lexpr *l, const lexpr *r,
                                 int i)
{
    if (l->table == i || r->table != i)
        return bfail(b, DQO_EINVAL, l->pos,
                     "a join condition must compare a column of '%.60s' with "
                     "a column of an earlier table",
                     b->q->tables[i].alias);
    if (l->type == DQO_TYPE_F64 || r->type == DQO_TYPE_F64)
        return bfail(b, DQO_ETYPE, l->type == DQO_TYPE_F64 ? l->pos : r->pos,
                     "cannot join on a f64 column (join keys are integers "
                     "or strings)");
    if (is_int_type(l->type) != is_int_type(r->type))
        return bfail(b, DQO_ETYPE, l->pos, "cannot join %s with %s",
                     tname(l->type), tname(r->type));
    return DQO_OK;
}

static dqo_status bind_join(binder *b, ast_source *s, int i)
{
    lq_join *j = &b->q->joins[i];
    j->pos = s->on_pos;
    b->nvis = i + 1;
    for (int k = 0; k < s->nkeys; k++) {
        lexpr *l = s->l[k], *r = s->r[k];
        s->l[k] = s->r[k] = NULL;
        j->left[k] = l;
        j->right[k] = r;
        j->nkeys = k + 1;
        dqo_status st = bind_col(b, l);
        if (st == DQO_OK)
            st = bind_col(b, r);
        if (st != DQO_OK)
            return st;
        if (l->table == i && r->table != i) {
            j->left[k] = r;
            j->right[k] = l;
        }
        if ((st = check_join_key(b, j->left[k], j->right[k], i)) != DQO_OK)
            return st;
    }
    return DQO_OK;
}

/* ---------------------------------------------------------------- rest */

static dqo_status bind_where_group(binder *b, sql_ast *ast)
{
    lquery *q = b->q;
    dqo_status st;
    if (ast->where != NULL) {
        q->where = ast->where;
        ast->where = NULL;
        if ((st = bind_in(b, q->where, "WHERE", false)) != DQO_OK)
            return st;
        if (q->where->type != LX_TYPE_BOOL)
            return bfail(b, DQO_ETYPE, q->where->pos,
                         "WHERE needs a boolean condition, found %s",
                         tname(q->where->type));
    }
    q->group = ast->group;
    q->ngroup = ast->ngroup;
    ast->group = NULL;
    ast->ngroup = 0;
    for (int k = 0; k < q->ngroup; k++) {
        if ((st = bind_in(b, q->group[k], "GROUP BY", false)) != DQO_OK)
            return st;
        if (q->group[k]->type == LX_TYPE_BOOL)
            return bfail(b, DQO_ETYPE, q->group[k]->pos,
                         "cannot group by a boolean expression");
    }
    return DQO_OK;
}

/* The item's name: the alias, a plain column's name, else its text. */
static char *item_name(binder *b, ast_item *it)
{
    if (it->alias != NULL) {
        char *n = it->alias;
        it->alias = NULL;
        return n;
    }
    if (it->e->kind == LX_COL)
        return sql_strdup(it->e->sval);
    int s = it->pos, e = it->end;
    while (s < e && (b->text[s] == ' ' || b->text[s] == '\t' ||
                     b->text[s] == '\n' || b->text[s] == '\r'))
        s++;
    while (e > s && (b->text[e - 1] == ' ' || b->text[e - 1] == '\t' ||
                     b->text[e - 1] == '\n' || b->text[e - 1] == '\r'))
        e--;
    return sql_strndup(b->text + s, (size_t)(e - s));
}

static lq_item *new_item(binder *b, int *cap)
{
    lquery *q = b->q;
    if (sql_grow((void **)&q->items, q->nitems, cap, sizeof *q->items) ||
        sql_grow((void **)&b->aliased, q->nitems, &b->aliased_cap,
                 sizeof *b->aliased))
        return NULL;
    lq_item *it = &q->items[q->nitems++];
    memset(it, 0, sizeof *it);
    b->aliased[q->nitems - 1] = false;
    return it;
}

static dqo_status expand_star(binder *b, const ast_item *src, int *cap)
{
    for (int t = 0; t < b->q->ntables; t++) {
        const dqo_table *tab = b->q->tables[t].table;
        for (int c = 0; c < dqo_table_ncols(tab); c++) {
            lq_item *it = new_item(b, cap);
            if (it == NULL || (it->e = calloc(1, sizeof *it->e)) == NULL ||
                (it->name = sql_strdup(dqo_table_column_name(tab, c))) ==
                    NULL)
                return nomem(b);
            it->e->kind = LX_COL;
            it->e->table = t;
            it->e->col = c;
            it->e->type = dqo_table_column_type(tab, c);
            it->e->pos = src->pos;
        }
    }
    return DQO_OK;
}

static dqo_status bind_items(binder *b, sql_ast *ast)
{
    lquery *q = b->q;
    q->aggregate = q->ngroup > 0;
    for (int i = 0; i < ast->nitems; i++)
        q->aggregate = q->aggregate || contains_agg(ast->items[i].e);
    int cap = 0;
    for (int i = 0; i < ast->nitems; i++) {
        ast_item *src = &ast->items[i];
        dqo_status st;
        if (src->e == NULL) {
            if (q->aggregate)
                return bfail(b, DQO_EINVAL, src->pos,
                             "SELECT * cannot be used with GROUP BY or "
                             "aggregate functions");
            if ((st = expand_star(b, src, &cap)) != DQO_OK)
                return st;
            continue;
        }
        bool aliased = src->alias != NULL;
        char *name = item_name(b, src);
        lq_item *it = name != NULL ? new_item(b, &cap) : NULL;
        if (it == NULL) {
            free(name);
            return nomem(b);
        }
        it->name = name;
        it->e = src->e;
        src->e = NULL;
        b->aliased[q->nitems - 1] = aliased;
        if ((st = bind_in(b, it->e, "the select list", true)) != DQO_OK)
            return st;
        if (it->e->type == LX_TYPE_BOOL)
            return bfail(b, DQO_ETYPE, it->e->pos,
                         "a select item cannot be a boolean condition");
        if (q->aggregate && (st = group_refs(b, &it->e)) != DQO_OK)
            return st;
    }
    return DQO_OK;
}

/* The select item an ORDER BY entry names, into *item. */
static dqo_status order_item(binder *b, lexpr **pe, int *item)
{
    lquery *q = b->q;
    lexpr *e = *pe;
    if (e->kind == LX_INT) {
        if (e->ival < 1 || e->ival > q->nitems)
            return bfail(b, DQO_EINVAL, e->pos,
                         "ORDER BY position %lld is out of range (the select "
                         "list has %d items)",
                         (long long)e->ival, q->nitems);
        *item = (int)e->ival - 1;
        return DQO_OK;
    }
    for (int i = 0; e->kind == LX_COL && e->a == NULL && i < q->nitems; i++) {
        if (b->aliased[i] && name_eq(e->sval, e->negated, q->items[i].name)) {
            *item = i;
            return DQO_OK;
        }
    }
    dqo_status st = bind_in(b, e, "ORDER BY", q->aggregate);
    if (st == DQO_OK && q->aggregate)
        st = group_refs(b, pe);
    if (st != DQO_OK)
        return st;
    for (int i = 0; i < q->nitems; i++) {
        if (sql_lexpr_equal(*pe, q->items[i].e)) {
            *item = i;
            return DQO_OK;
        }
    }
    return bfail(b, DQO_EINVAL, (*pe)->pos,
                 "ORDER BY expression is not in the select list (use a "
                 "position, an alias or a select item)");
}

static dqo_status bind_order(binder *b, sql_ast *ast)
{
    lquery *q = b->q;
    if (ast->norder == 0)
        return DQO_OK;
    q->order = calloc((size_t)ast->norder, sizeof *q->order);
    if (q->order == NULL)
        return nomem(b);
    for (int k = 0; k < ast->norder; k++) {
        int item = 0;
        dqo_status st = order_item(b, &ast->order[k].e, &item);
        if (st != DQO_OK)
            return st;
        q->order[q->norder].item = item;
        q->order[q->norder++].desc = ast->order[k].desc;
    }
    return DQO_OK;
}

dqo_status sql_bind(const char *text, const sql_tokens *tk, sql_ast *ast,
                    const sql_catalog *cat, lquery **out, sql_error *err)
{
    lquery *q = calloc(1, sizeof *q);
    binder b = {.text = text, .tk = tk, .err = err, .cat = cat, .q = q};
    if (q == NULL || (q->sql = sql_strdup(text)) == NULL) {
        lquery_free(q);
        return nomem(&b);
    }
    q->limit = ast->limit;
    dqo_status st = DQO_OK;
    for (int i = 0; i < ast->nsrc && st == DQO_OK; i++) {
        st = bind_source(&b, &ast->src[i], i);
        if (st == DQO_OK && i > 0)
            st = bind_join(&b, &ast->src[i], i);
    }
    if (st == DQO_OK)
        st = bind_where_group(&b, ast);
    if (st == DQO_OK)
        st = bind_items(&b, ast);
    if (st == DQO_OK)
        st = bind_order(&b, ast);
    free(b.aliased);
    if (st != DQO_OK) {
        lquery_free(q);
        return st;
    }
    *out = q;
    return DQO_OK;
}
