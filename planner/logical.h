/*
 * logical.h - the bound logical plan of one SQL query block (pure C).
 *
 * sql/ parses and binds text into an lquery; planner/ derives properties and
 * chooses granules for it (planner/plan.h); engine/ executes the physical
 * plan. The shape is fixed, as the SQL subset allows:
 *
 *   scan(tables[0]) JOIN tables[1] ON ... JOIN tables[2] ON ...
 *     -> WHERE -> GROUP BY / aggregates -> SELECT list -> ORDER BY -> LIMIT
 *
 * Every expression is bound: column references name (table, column) by
 * index, every node has its result type, and positions point back into the
 * SQL text for error messages.
 */
#ifndef DQO_PLANNER_LOGICAL_H
#define DQO_PLANNER_LOGICAL_H

#include <stdbool.h>
#include <stdint.h>

#include "dqo.h"

#define LQ_MAX_TABLES 16
#define LQ_MAX_JOIN_KEYS 8

typedef enum lx_kind {
    LX_COL = 0,   /* column `col` of table `table` */
    LX_INT = 1,   /* integer literal (ival) */
    LX_FLOAT = 2, /* floating-point literal (fval) */
    LX_STR = 3,   /* string literal (sval) */
    LX_BIN = 4,   /* a op b */
    LX_NOT = 5,   /* NOT a */
    LX_NEG = 6,   /* -a */
    LX_BETWEEN = 7, /* a BETWEEN list[0] AND list[1] (negated: NOT BETWEEN) */
    LX_IN = 8,      /* a IN (list...) (negated: NOT IN); literals only */
    LX_AGG = 9,     /* aggregate `agg` over a (a is NULL for COUNT(*)) */
    LX_ISNULL = 10, /* a IS NULL (negated: IS NOT NULL) */
    LX_GROUPREF = 11 /* after grouping: the group key `col` (index into
                        lquery.group) -- made by the binder for select items
                        that repeat a GROUP BY expression */
} lx_kind;

typedef enum lx_op {
    LX_ADD = 0, LX_SUB, LX_MUL, LX_DIV, LX_MOD,
    LX_EQ, LX_NE, LX_LT, LX_LE, LX_GT, LX_GE,
    LX_AND, LX_OR
} lx_op;

/* Result types of expressions: the column types, plus BOOL for predicates
 * (evaluated as one byte per row, with SQL's three-valued logic: a NULL
 * operand makes a comparison NULL, and WHERE keeps only true rows).
 * Arithmetic: integer op integer -> I64 (overflow is an error), anything
 * with F64 -> F64; `/` and `%` on integers truncate, and a zero divisor
 * yields NULL. Comparisons between a string column and a string literal
 * compare text. */
#define LX_TYPE_BOOL DQO_TYPE_COUNT_

typedef struct lexpr {
    lx_kind kind;
    lx_op op;       /* LX_BIN */
    int type;       /* a dqo_type or LX_TYPE_BOOL */
    bool negated;   /* NOT BETWEEN, NOT IN, IS NOT NULL */
    int table, col; /* LX_COL: indices into lquery.tables and its table;
                       LX_GROUPREF: col = the group key's index */
    int64_t ival;
    double fval;
    char *sval;     /* LX_STR, owned */
    dqo_agg agg;    /* LX_AGG */
    struct lexpr *a, *b;
    int nlist;
    struct lexpr **list; /* LX_IN, LX_BETWEEN operands; owned */
    int pos;        /* byte offset of the expression in the SQL text */
} lexpr;

/* One table of the FROM clause. */
typedef struct lq_table {
    char *name;   /* registered name, or the CSV path as written */
    char *alias;  /* the name used in the query (alias or name) */
    const dqo_table *table; /* borrowed from the catalog */
} lq_table;

/* tables[i] (i >= 1) joins what comes before it on
 * left[k] = right[k] for k < nkeys; right columns belong to tables[i],
 * left columns to tables[0..i-1]. The planner may reorder the joins. */
typedef struct lq_join {
    int nkeys;
    lexpr *left[LQ_MAX_JOIN_KEYS]; /* LX_COL */
    lexpr *right[LQ_MAX_JOIN_KEYS]; /* LX_COL */
    int pos;
} lq_join;

typedef struct lq_item {
    lexpr *e;
    char *name; /* output column name: the alias, else the SQL text of e */
} lq_item;

typedef struct lq_order {
    int item;   /* index into the select list */
    bool desc;
} lq_order;

typedef struct lquery {
    char *sql;  /* the text, owned */
    int ntables;
    lq_table tables[LQ_MAX_TABLES];
    lq_join joins[LQ_MAX_TABLES]; /* joins[i] for tables[i], i >= 1 */
    lexpr *where;   /* NULL: none */
    /* GROUP BY expressions (columns or expressions over columns); when
     * ngroup == 0 and the select list has aggregates, one group of all
     * rows (a global aggregate). */
    int ngroup;
    lexpr **group;
    bool aggregate; /* GROUP BY present or aggregates in SELECT */
    /* The select list. With `aggregate`, items are built from LX_AGG and
     * LX_GROUPREF nodes, literals and arithmetic over them (never a bare
     * column outside GROUP BY: the binder rejects that). */
    int nitems;
    lq_item *items;
    int norder;
    lq_order *order;
    int64_t limit;  /* -1: none */
} lquery;

/* Frees an expression tree / a query; NULL is fine. */
void lexpr_free(lexpr *e);
void lquery_free(lquery *q);

/* Writes e as SQL-like text into buf (column names as alias.column). */
void lexpr_format(const lquery *q, const lexpr *e, char *buf, int len);

#endif /* DQO_PLANNER_LOGICAL_H */
