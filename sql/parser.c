/*
 * parser.c - recursive-descent parser for the SQL subset of sql/sql.h.
 *
 * Precedence, loosest first: OR < AND < NOT < comparison, BETWEEN, IN, IS
 * < + - < * / % < unary minus. Binary operators associate to the left; a
 * comparison takes one operator (a = b = c is a syntax error, as in
 * PostgreSQL). Expressions come out as unbound lexpr trees (sql_int.h);
 * nesting deeper than SQL_MAX_DEPTH is an error, so neither this parser nor
 * the recursive binder and free can exhaust the stack. Errors name what was
 * expected and the token found. Pure C.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/sql_int.h"

typedef struct parser {
    const char *text;
    const sql_tokens *tk;
    int i;      /* current token */
    int depth;  /* recursion depth */
    sql_error *err;
    dqo_status st;
} parser;

/* Words that end or structure a clause: never an implicit alias or a
 * column name. */
static const char *const reserved[] = {
    "SELECT", "FROM", "JOIN", "INNER", "ON", "WHERE", "GROUP", "BY",
    "ORDER", "LIMIT", "AS", "AND", "OR", "NOT", "BETWEEN", "IN", "IS",
    "NULL", "ASC", "DESC"};

static const sql_token *cur(const parser *p) { return &p->tk->t[p->i]; }
static const sql_token *peek(const parser *p, int k)
{
    int j = p->i + k;
    return &p->tk->t[j < p->tk->n ? j : p->tk->n - 1];
}
static void advance(parser *p)
{
    if (p->i < p->tk->n - 1)
        p->i++;
}

static bool is_kw(const sql_token *t, const char *kw)
{
    return t->kind == TK_IDENT && sql_ieq(t->text, kw);
}

static bool is_sym(const sql_token *t, const char *s)
{
    return t->kind == TK_SYM && strcmp(t->sym, s) == 0;
}

static bool is_reserved(const sql_token *t)
{
    for (size_t k = 0; k < sizeof reserved / sizeof *reserved; k++)
        if (is_kw(t, reserved[k]))
            return true;
    return false;
}

/* An identifier usable as a name: quoted, or unquoted and not reserved. */
static bool is_name(const sql_token *t)
{
    return t->kind == TK_QIDENT || (t->kind == TK_IDENT && !is_reserved(t));
}

static bool accept_kw(parser *p, const char *kw)
{
    if (!is_kw(cur(p), kw))
        return false;
    advance(p);
    return true;
}

static bool accept_sym(parser *p, const char *s)
{
    if (!is_sym(cur(p), s))
        return false;
    advance(p);
    return true;
}

/* Records "expected <what>, found <token>" at the current token. */
static void *expected(parser *p, const char *what)
{
    const sql_token *t = cur(p);
    if (p->st != DQO_OK)
        return NULL;
    if (t->kind == TK_EOF)
        p->st = sql_fail(p->err, DQO_EPARSE, t->pos, 1,
                         "expected %s, found end of input", what);
    else
        p->st = sql_fail(p->err, DQO_EPARSE, t->pos, t->len,
                         "expected %s, found '%.*s'", what,
                         t->len > 40 ? 40 : t->len, p->text + t->pos);
    return NULL;
}

static void *nomem(parser *p)
{
    if (p->st == DQO_OK)
        p->st = sql_fail(p->err, DQO_ENOMEM, -1, 0, "out of memory");
    return NULL;
}

static bool expect_kw(parser *p, const char *kw)
{
    if (accept_kw(p, kw))
        return true;
    expected(p, kw);
    return false;
}

static bool expect_sym(parser *p, const char *s)
{
    if (accept_sym(p, s))
        return true;
    char what[8];
    snprintf(what, sizeof what, "'%s'", s);
    expected(p, what);
    return false;
}

static int tree_depth(const lexpr *e)
{
    if (e == NULL)
        return 0;
    int d = tree_depth(e->a);
    int db = tree_depth(e->b);
    d = db > d ? db : d;
    for (int k = 0; k < e->nlist; k++) {
        int dl = tree_depth(e->list[k]);
        d = dl > d ? dl : d;
    }
    return d + 1;
}

/* Takes ownership of e; frees it and fails when it is nested too deeply. */
static lexpr *check_depth(parser *p, lexpr *e)
{
    if (e == NULL || tree_depth(e) <= SQL_MAX_DEPTH)
        return e;
    lexpr_free(e);
    p->st = sql_fail(p->err, DQO_EPARSE, cur(p)->pos,
                     cur(p)->len,
                     "expression nested too deeply (more than %d levels)",
                     SQL_MAX_DEPTH);
    return NULL;
}

static lexpr *node(parser *p, lx_kind kind, int pos)
{
    lexpr *e = calloc(1, sizeof *e);
    if (e == NULL)
        return nomem(p);
    e->kind = kind;
    e->pos = pos;
    e->table = e->col = -1;
    return e;
}

/* a op b, taking ownership of both (freed on failure). */
static lexpr *binary(parser *p, lx_op op, lexpr *a, lexpr *b, int op_pos)
{
    if (a == NULL || b == NULL) {
        lexpr_free(a);
        lexpr_free(b);
        return NULL;
    }
    lexpr *e = node(p, LX_BIN, a->pos);
    if (e == NULL) {
        lexpr_free(a);
        lexpr_free(b);
        return NULL;
    }
    e->op = op;
    e->a = a;
    e->b = b;
    e->ival = op_pos;
    return check_depth(p, e);
}

static lexpr *unary(parser *p, lx_kind kind, lexpr *a, int pos)
{
    if (a == NULL)
        return NULL;
    lexpr *e = node(p, kind, pos);
    if (e == NULL) {
        lexpr_free(a);
        return NULL;
    }
    e->a = a;
    return check_depth(p, e);
}

static lexpr *parse_or(parser *p);
static lexpr *parse_add(parser *p);

/* Guards one level of recursion. */
static bool enter(parser *p)
{
    if (++p->depth <= SQL_MAX_DEPTH)
        return true;
    p->st = sql_fail(p->err, DQO_EPARSE, cur(p)->pos, cur(p)->len,
                     "expression nested too deeply (more than %d levels)",
                     SQL_MAX_DEPTH);
    return false;
}

/* ident | ident . ident | "quoted" ... */
static lexpr *parse_colref(parser *p)
{
    const sql_token *t = cur(p);
    if (!is_name(t))
        return expected(p, "a column name");
    lexpr *e = node(p, LX_COL, t->pos);
    if (e == NULL)
        return NULL;
    e->sval = sql_strdup(t->text);
    e->negated = t->kind == TK_QIDENT;
    advance(p);
    if (e->sval == NULL || !accept_sym(p, ".")) {
        if (e->sval == NULL) {
            lexpr_free(e);
            return nomem(p);
        }
        return e;
    }
    t = cur(p);
    if (!is_name(t)) {
        lexpr_free(e);
        return expected(p, "a column name");
    }
    /* The first name was the qualifier: move it to a child. */
    lexpr *q = node(p, LX_STR, e->pos);
    char *col = sql_strdup(t->text);
    if (q == NULL || col == NULL) {
        free(q);
        free(col);
        lexpr_free(e);
        return nomem(p);
    }
    q->sval = e->sval;
    q->negated = e->negated;
    e->sval = col;
    e->negated = t->kind == TK_QIDENT;
    e->a = q;
    advance(p);
    return e;
}

static const struct {
    const char *name;
    dqo_agg agg;
} agg_names[] = {{"COUNT", DQO_AGG_COUNT}, {"SUM", DQO_AGG_SUM},
                 {"MIN", DQO_AGG_MIN},     {"MAX", DQO_AGG_MAX},
                 {"AVG", DQO_AGG_AVG}};

/* NAME ( * ) | NAME ( expr ) at the current token, or NULL (no error) when
 * the current token is not an aggregate call. */
static lexpr *parse_agg(parser *p, bool *is_agg)
{
    const sql_token *t = cur(p);
    *is_agg = false;
    if (t->kind != TK_IDENT || !is_sym(peek(p, 1), "("))
        return NULL;
    for (size_t k = 0; k < sizeof agg_names / sizeof *agg_names; k++) {
        if (!sql_ieq(t->text, agg_names[k].name))
            continue;
        *is_agg = true;
        lexpr *e = node(p, LX_AGG, t->pos);
        if (e == NULL)
            return NULL;
        e->agg = agg_names[k].agg;
        advance(p);
        advance(p);
        if (e->agg == DQO_AGG_COUNT && accept_sym(p, "*"))
            e->agg = DQO_AGG_COUNT_STAR;
        else if ((e->a = parse_or(p)) == NULL) {
            lexpr_free(e);
            return NULL;
        }
        if (!expect_sym(p, ")")) {
            lexpr_free(e);
            return NULL;
        }
        return check_depth(p, e);
    }
    return NULL;
}

static lexpr *parse_primary(parser *p)
{
    const sql_token *t = cur(p);
    lexpr *e;
    switch (t->kind) {
    case TK_INT:
    case TK_FLOAT:
        e = node(p, t->kind == TK_INT ? LX_INT : LX_FLOAT, t->pos);
        if (e != NULL) {
            e->ival = t->ival;
            e->fval = t->fval;
            advance(p);
        }
        return e;
    case TK_STR:
        e = node(p, LX_STR, t->pos);
        if (e != NULL && (e->sval = sql_strdup(t->text)) == NULL) {
            lexpr_free(e);
            return nomem(p);
        }
        advance(p);
        return e;
    case TK_SYM:
        if (!is_sym(t, "("))
            break;
        advance(p);
        e = parse_or(p);
        if (e != NULL && !expect_sym(p, ")")) {
            lexpr_free(e);
            return NULL;
        }
        return e;
    case TK_IDENT: {
        bool is_agg;
        e = parse_agg(p, &is_agg);
        if (is_agg || p->st != DQO_OK)
            return e;
        break;
    }
    default:
        break;
    }
    if (is_name(t))
        return parse_colref(p);
    return expected(p, "an expression");
}

static lexpr *parse_unary(parser *p)
{
    const sql_token *t = cur(p);
    if (!is_sym(t, "-"))
        return parse_primary(p);
    int pos = t->pos;
    advance(p);
    if (!enter(p))
        return NULL;
    lexpr *a = parse_unary(p);
    p->depth--;
    if (a != NULL && (a->kind == LX_INT || a->kind == LX_FLOAT) &&
        a->ival != INT64_MIN) {
        /* Fold negative literals so that IN lists and ORDER BY see them
         * as literals. */
        a->ival = -a->ival;
        a->fval = -a->fval;
        a->pos = pos;
        return a;
    }
    return unary(p, LX_NEG, a, pos);
}

typedef struct op_entry {
    const char *sym;
    lx_op op;
} op_entry;

static const op_entry mul_ops[] = {
    {"*", LX_MUL}, {"/", LX_DIV}, {"%", LX_MOD}, {NULL, 0}};
static const op_entry add_ops[] = {{"+", LX_ADD}, {"-", LX_SUB}, {NULL, 0}};
static const op_entry cmp_ops[] = {
    {"=", LX_EQ}, {"<>", LX_NE}, {"!=", LX_NE}, {"<", LX_LT},
    {"<=", LX_LE}, {">", LX_GT}, {">=", LX_GE}, {NULL, 0}};

static const op_entry *match_op(const parser *p, const op_entry *ops)
{
    for (; ops->sym != NULL; ops++)
        if (is_sym(cur(p), ops->sym))
            return ops;
    return NULL;
}

/* One left-associative level: next (op next)*. */
static lexpr *parse_level(parser *p, const op_entry *ops,
                          lexpr *(*next)(parser *))
{
    lexpr *e = next(p);
    const op_entry *o;
    while (e != NULL && (o = match_op(p, ops)) != NULL) {
        int op_pos = cur(p)->pos;
        advance(p);
        e = binary(p, o->op, e, next(p), op_pos);
    }
    return e;
}

static lexpr *parse_mul(parser *p) { return parse_level(p, mul_ops, parse_unary); }
static lexpr *parse_add(parser *p) { return parse_level(p, add_ops, parse_mul); }

/* ( literal-or-expr , ... ) for IN, into e->list. */
static bool parse_in_list(parser *p, lexpr *e)
{
    if (!expect_sym(p, "("))
        return false;
    int cap = 0;
    do {
        if (sql_grow((void **)&e->list, e->nlist, &cap, sizeof *e->list)) {
            nomem(p);
            return false;
        }
        lexpr *x = parse_add(p);
        if (x == NULL)
            return false;
        e->list[e->nlist++] = x;
    } while (accept_sym(p, ","));
    return expect_sym(p, ")");
}

/* [NOT] BETWEEN / [NOT] IN / IS [NOT] NULL after operand a. */
static lexpr *parse_postfix(parser *p, lexpr *a, bool negated, int pos)
{
    lexpr *e = node(p, LX_ISNULL, a->pos);
    if (e == NULL) {
        lexpr_free(a);
        return NULL;
    }
    e->a = a;
    e->negated = negated;
    e->ival = pos;
    if (accept_kw(p, "BETWEEN")) {
        e->kind = LX_BETWEEN;
        e->list = calloc(2, sizeof *e->list);
        if (e->list == NULL) {
            lexpr_free(e);
            return nomem(p);
        }
        if ((e->list[0] = parse_add(p)) == NULL ||
            (e->nlist = 1, !expect_kw(p, "AND")) ||
            (e->list[1] = parse_add(p)) == NULL) {
            lexpr_free(e);
            return NULL;
        }
        e->nlist = 2;
    } else if (accept_kw(p, "IN")) {
        e->kind = LX_IN;
        if (!parse_in_list(p, e)) {
            lexpr_free(e);
            return NULL;
        }
    } else {
        /* IS [NOT] NULL, checked by the caller to start with IS. */
        advance(p);
        e->negated = accept_kw(p, "NOT");
        if (!expect_kw(p, "NULL")) {
            lexpr_free(e);
            return NULL;
        }
    }
    return check_depth(p, e);
}

static lexpr *parse_cmp(parser *p)
{
    lexpr *a = parse_add(p);
    if (a == NULL)
        return NULL;
    const op_entry *o = match_op(p, cmp_ops);
    if (o != NULL) {
        int op_pos = cur(p)->pos;
        advance(p);
        return binary(p, o->op, a, parse_add(p), op_pos);
    }
    const sql_token *t = cur(p);
    int pos = t->pos;
    if (is_kw(t, "NOT") &&
        (is_kw(peek(p, 1), "BETWEEN") || is_kw(peek(p, 1), "IN"))) {
        advance(p);
        return parse_postfix(p, a, true, pos);
    }
    if (is_kw(t, "BETWEEN") || is_kw(t, "IN") || is_kw(t, "IS"))
        return parse_postfix(p, a, false, pos);
    return a;
}

static lexpr *parse_not(parser *p)
{
    const sql_token *t = cur(p);
    if (!is_kw(t, "NOT"))
        return parse_cmp(p);
    int pos = t->pos;
    advance(p);
    if (!enter(p))
        return NULL;
    lexpr *a = parse_not(p);
    p->depth--;
    return unary(p, LX_NOT, a, pos);
}

static const op_entry and_ops[] = {{"AND", LX_AND}, {NULL, 0}};
static const op_entry or_ops[] = {{"OR", LX_OR}, {NULL, 0}};

static lexpr *parse_kw_level(parser *p, const op_entry *o,
                             lexpr *(*next)(parser *))
{
    lexpr *e = next(p);
    while (e != NULL && is_kw(cur(p), o->sym)) {
        int op_pos = cur(p)->pos;
        advance(p);
        e = binary(p, o->op, e, next(p), op_pos);
    }
    return e;
}

static lexpr *parse_and(parser *p) { return parse_kw_level(p, and_ops, parse_not); }

static lexpr *parse_or(parser *p)
{
    if (!enter(p))
        return NULL;
    lexpr *e = parse_kw_level(p, or_ops, parse_and);
    p->depth--;
    return e;
}

/* [AS] name, where an implicit alias must be followed by one of `follow`
 * (so that "SELECT a FORM t" reports FORM rather than taking it as an
 * alias). Returns false on error; *alias NULL when none. */
static bool parse_alias(parser *p, char **alias, bool (*follow)(const sql_token *))
{
    *alias = NULL;
    bool as = accept_kw(p, "AS");
    const sql_token *t = cur(p);
    if (!is_name(t) || (!as && !follow(peek(p, 1)))) {
        if (as)
            expected(p, "an alias");
        return !as;
    }
    if ((*alias = sql_strdup(t->text)) == NULL) {
        nomem(p);
        return false;
    }
    advance(p);
    return true;
}

static bool item_follow(const sql_token *t)
{
    return is_sym(t, ",") || is_kw(t, "FROM") || is_sym(t, ";") ||
           t->kind == TK_EOF;
}

static bool source_follow(const sql_token *t)
{
    static const char *const kws[] = {"JOIN", "INNER", "ON", "WHERE",
                                      "GROUP", "ORDER", "LIMIT"};
    for (size_t k = 0; k < sizeof kws / sizeof *kws; k++)
        if (is_kw(t, kws[k]))
            return true;
    return is_sym(t, ";") || is_sym(t, ",") || t->kind == TK_EOF;
}

static bool parse_items(parser *p, sql_ast *ast)
{
    int cap = 0;
    do {
        if (sql_grow((void **)&ast->items, ast->nitems, &cap,
                     sizeof *ast->items)) {
            nomem(p);
            return false;
        }
        ast_item *it = &ast->items[ast->nitems];
        memset(it, 0, sizeof *it);
        it->pos = cur(p)->pos;
        if (accept_sym(p, "*")) {
            it->end = it->pos + 1;
            ast->nitems++;
            continue;
        }
        it->e = parse_or(p);
        if (it->e == NULL)
            return false;
        ast->nitems++;
        const sql_token *last = &p->tk->t[p->i - 1];
        it->end = last->pos + last->len;
        if (!parse_alias(p, &it->alias, item_follow))
            return false;
    } while (accept_sym(p, ","));
    return true;
}

static bool parse_source(parser *p, sql_ast *ast)
{
    if (ast->nsrc == LQ_MAX_TABLES) {
        p->st = sql_fail(p->err, DQO_EINVAL, cur(p)->pos, cur(p)->len,
                         "too many tables (at most %d)", LQ_MAX_TABLES);
        return false;
    }
    const sql_token *t = cur(p);
    if (t->kind != TK_STR && !is_name(t)) {
        expected(p, "a table name or 'file.csv'");
        return false;
    }
    ast_source *s = &ast->src[ast->nsrc++];
    s->is_path = t->kind == TK_STR;
    s->quoted = t->kind == TK_QIDENT;
    s->pos = t->pos;
    s->len = t->len;
    if ((s->name = sql_strdup(t->text)) == NULL) {
        nomem(p);
        return false;
    }
    advance(p);
    return parse_alias(p, &s->alias, source_follow);
}

/* ON colref = colref (AND colref = colref)* */
static bool parse_on(parser *p, ast_source *s)
{
    s->on_pos = cur(p)->pos;
    if (!expect_kw(p, "ON"))
        return false;
    do {
        if (s->nkeys == LQ_MAX_JOIN_KEYS) {
            p->st = sql_fail(p->err, DQO_EINVAL, cur(p)->pos, cur(p)->len,
                             "too many join keys (at most %d)",
                             LQ_MAX_JOIN_KEYS);
            return false;
        }
        lexpr *l = parse_colref(p);
        if (l == NULL)
            return false;
        s->l[s->nkeys] = l;
        s->nkeys++; /* owned by s from here on */
        if (!expect_sym(p, "=") ||
            (s->r[s->nkeys - 1] = parse_colref(p)) == NULL)
            return false;
    } while (accept_kw(p, "AND"));
    return true;
}

static bool parse_from(parser *p, sql_ast *ast)
{
    if (!expect_kw(p, "FROM") || !parse_source(p, ast))
        return false;
    for (;;) {
        if (is_kw(cur(p), "INNER")) {
            advance(p);
            if (!expect_kw(p, "JOIN"))
                return false;
        } else if (!accept_kw(p, "JOIN")) {
            return true;
        }
        if (!parse_source(p, ast) || !parse_on(p, &ast->src[ast->nsrc - 1]))
            return false;
    }
}

static bool parse_group(parser *p, sql_ast *ast)
{
    int cap = 0;
    do {
        if (sql_grow((void **)&ast->group, ast->ngroup, &cap,
                     sizeof *ast->group)) {
            nomem(p);
            return false;
        }
        if ((ast->group[ast->ngroup] = parse_or(p)) == NULL)
            return false;
        ast->ngroup++;
    } while (accept_sym(p, ","));
    return true;
}

static bool parse_order(parser *p, sql_ast *ast)
{
    int cap = 0;
    do {
        if (sql_grow((void **)&ast->order, ast->norder, &cap,
                     sizeof *ast->order)) {
            nomem(p);
            return false;
        }
        ast_order *o = &ast->order[ast->norder];
        o->desc = false;
        if ((o->e = parse_or(p)) == NULL)
            return false;
        ast->norder++;
        if (accept_kw(p, "DESC"))
            o->desc = true;
        else
            accept_kw(p, "ASC");
    } while (accept_sym(p, ","));
    return true;
}

static bool parse_tail(parser *p, sql_ast *ast)
{
    if (accept_kw(p, "WHERE") && (ast->where = parse_or(p)) == NULL)
        return false;
    if (accept_kw(p, "GROUP") && (!expect_kw(p, "BY") || !parse_group(p, ast)))
        return false;
    if (accept_kw(p, "ORDER") && (!expect_kw(p, "BY") || !parse_order(p, ast)))
        return false;
    if (accept_kw(p, "LIMIT")) {
        if (cur(p)->kind != TK_INT) {
            expected(p, "a non-negative integer");
            return false;
        }
        ast->limit = cur(p)->ival;
        advance(p);
    }
    accept_sym(p, ";");
    if (cur(p)->kind != TK_EOF) {
        expected(p, "end of input");
        return false;
    }
    return true;
}

dqo_status sql_parse(const char *text, const sql_tokens *tk, sql_ast *ast,
                     sql_error *err)
{
    parser p = {.text = text, .tk = tk, .err = err, .st = DQO_OK};
    ast->limit = -1;
    if (expect_kw(&p, "SELECT") && parse_items(&p, ast) &&
        parse_from(&p, ast) && parse_tail(&p, ast))
        return DQO_OK;
    return p.st != DQO_OK ? p.st
                          : sql_fail(err, DQO_EINTERNAL, 0, 1,
                                     "parser failed without a message");
}

void sql_ast_free(sql_ast *ast)
{
    for (int i = 0; i < ast->nitems; i++) {
        lexpr_free(ast->items[i].e);
        free(ast->items[i].alias);
    }
    free(ast->items);
    for (int i = 0; i < ast->nsrc; i++) {
        ast_source *s = &ast->src[i];
        free(s->name);
        free(s->alias);
        for (int k = 0; k < s->nkeys; k++) {
            lexpr_free(s->l[k]);
            lexpr_free(s->r[k]);
        }
    }
    lexpr_free(ast->where);
    for (int i = 0; i < ast->ngroup; i++)
        lexpr_free(ast->group[i]);
    free(ast->group);
    for (int i = 0; i < ast->norder; i++)
        lexpr_free(ast->order[i].e);
    free(ast->order);
    memset(ast, 0, sizeof *ast);
}
