/*
 * logical.c - ownership and printing of the bound logical plan
 * (planner/logical.h): freeing expression trees and queries, and writing an
 * expression back as SQL-like text for EXPLAIN and error messages. Pure C.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner/logical.h"

void lexpr_free(lexpr *e)
{
    if (e == NULL)
        return;
    lexpr_free(e->a);
    lexpr_free(e->b);
    for (int k = 0; k < e->nlist; k++)
        lexpr_free(e->list[k]);
    free(e->list);
    free(e->sval);
    free(e);
}

void lquery_free(lquery *q)
{
    if (q == NULL)
        return;
    free(q->sql);
    for (int i = 0; i < q->ntables; i++) {
        free(q->tables[i].name);
        free(q->tables[i].alias);
        for (int k = 0; k < q->joins[i].nkeys; k++) {
            lexpr_free(q->joins[i].left[k]);
            lexpr_free(q->joins[i].right[k]);
        }
    }
    lexpr_free(q->where);
    for (int i = 0; i < q->ngroup; i++)
        lexpr_free(q->group[i]);
    free(q->group);
    for (int i = 0; i < q->nitems; i++) {
        lexpr_free(q->items[i].e);
        free(q->items[i].name);
    }
    free(q->items);
    free(q->order);
    free(q);
}

/* A bounded string builder: appends, truncating at the buffer's end. */
typedef struct sbuf {
    char *buf;
    int len, used;
} sbuf;

static void sb_put(sbuf *s, const char *text)
{
    for (; *text != '\0' && s->used < s->len - 1; text++)
        s->buf[s->used++] = *text;
    s->buf[s->used] = '\0';
}

static void sb_printf(sbuf *s, const char *fmt, long long v, double d)
{
    char tmp[64];
    if (fmt[1] == 'l')
        snprintf(tmp, sizeof tmp, fmt, v);
    else
        snprintf(tmp, sizeof tmp, fmt, d);
    sb_put(s, tmp);
}

static const char *const op_text[] = {" + ", " - ", " * ", " / ", " % ",
                                      " = ", " <> ", " < ", " <= ", " > ",
                                      " >= ", " AND ", " OR "};
static const char *const agg_text[] = {"COUNT", "COUNT", "SUM",
                                       "MIN",   "MAX",   "AVG"};

static void format(const lquery *q, const lexpr *e, sbuf *s);

static void format_str(sbuf *s, const char *v)
{
    sb_put(s, "'");
    for (; v != NULL && *v != '\0'; v++)
        sb_put(s, *v == '\'' ? "''" : (char[]){*v, '\0'});
    sb_put(s, "'");
}

static void format_col(const lquery *q, const lexpr *e, sbuf *s)
{
    if (q == NULL || e->table < 0 || e->table >= q->ntables) {
        sb_printf(s, "$%lld", e->col, 0);
        return;
    }
    const lq_table *t = &q->tables[e->table];
    sb_put(s, t->alias != NULL ? t->alias : "?");
    sb_put(s, ".");
    const char *name =
        t->table != NULL ? dqo_table_column_name(t->table, e->col) : NULL;
    sb_put(s, name != NULL ? name : "?");
}

static void format_list(const lquery *q, const lexpr *e, sbuf *s)
{
    format(q, e->a, s);
    if (e->kind == LX_BETWEEN) {
        sb_put(s, e->negated ? " NOT BETWEEN " : " BETWEEN ");
        format(q, e->nlist > 0 ? e->list[0] : NULL, s);
        sb_put(s, " AND ");
        format(q, e->nlist > 1 ? e->list[1] : NULL, s);
        return;
    }
    sb_put(s, e->negated ? " NOT IN (" : " IN (");
    for (int k = 0; k < e->nlist; k++) {
        if (k > 0)
            sb_put(s, ", ");
        format(q, e->list[k], s);
    }
    sb_put(s, ")");
}

static void format(const lquery *q, const lexpr *e, sbuf *s)
{
    if (e == NULL) {
        sb_put(s, "?");
        return;
    }
    switch (e->kind) {
    case LX_COL: format_col(q, e, s); break;
    case LX_INT: sb_printf(s, "%lld", e->ival, 0); break;
    case LX_FLOAT: sb_printf(s, "%.17g", 0, e->fval); break;
    case LX_STR: format_str(s, e->sval); break;
    case LX_BIN:
        sb_put(s, "(");
        format(q, e->a, s);
        sb_put(s, op_text[e->op <= LX_OR ? e->op : 0]);
        format(q, e->b, s);
        sb_put(s, ")");
        break;
    case LX_NOT: sb_put(s, "NOT "); format(q, e->a, s); break;
    case LX_NEG: sb_put(s, "-"); format(q, e->a, s); break;
    case LX_BETWEEN:
    case LX_IN: format_list(q, e, s); break;
    case LX_AGG:
        sb_put(s, e->agg < DQO_AGG_COUNT_ ? agg_text[e->agg] : "?");
        sb_put(s, "(");
        if (e->agg == DQO_AGG_COUNT_STAR)
            sb_put(s, "*");
        else
            format(q, e->a, s);
        sb_put(s, ")");
        break;
    case LX_ISNULL:
        format(q, e->a, s);
        sb_put(s, e->negated ? " IS NOT NULL" : " IS NULL");
        break;
    case LX_GROUPREF:
        if (q != NULL && e->col >= 0 && e->col < q->ngroup)
            format(q, q->group[e->col], s);
        else
            sb_printf(s, "#%lld", e->col, 0);
        break;
    default: sb_put(s, "?"); break;
    }
}

void lexpr_format(const lquery *q, const lexpr *e, char *buf, int len)
{
    if (buf == NULL || len <= 0)
        return;
    sbuf s = {buf, len, 0};
    buf[0] = '\0';
    format(q, e, &s);
}
