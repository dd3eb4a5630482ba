/*
 * query_int.h - private declarations of the SQL side of the engine: the
 * catalog of registered tables (catalog.c), the vectorised expression
 * evaluator (expr.c) and the plan executor (exec.c).
 *
 * An intermediate result of the executor is a relation: for each base table
 * it covers, one uint32 row id per row. A single unfiltered table has no row
 * id array at all (identity), so expressions and groupings over it read the
 * table's columns in place (zero-copy, device-resident copies included).
 */
#ifndef DQO_ENGINE_QUERY_INT_H
#define DQO_ENGINE_QUERY_INT_H

#include "engine/engine_int.h"
#include "planner/logical.h"
#include "planner/plan.h"

/* Rows of the joined base tables, as row ids per table. */
typedef struct qrel {
    uint64_t rows;
    uint32_t present;             /* bit i: q->tables[i] is part of it */
    uint32_t *rid[LQ_MAX_TABLES]; /* owned (mem_alloc); NULL: identity */
} qrel;

void qrel_free(qrel *r);

/* An evaluated expression: `n` values, or one value broadcast to every row
 * when `konst`. Integer columns keep their own type (read in place); BOOL
 * is one byte per row (0/1) with `valid` for SQL's unknown. */
typedef struct qvec {
    int type;             /* dqo_type or LX_TYPE_BOOL */
    uint64_t n;
    bool konst;
    const void *data;     /* elements (STR: u32 codes; NULL for a literal) */
    const uint8_t *valid; /* NULL: no NULLs */
    const dqo_dict *dict; /* STR column: the dictionary of its codes */
    const char *str;      /* STR literal */
    void *own_data;       /* freed by qvec_free */
    uint8_t *own_valid;
} qvec;

void qvec_free(qvec *v);

typedef struct qeval qeval;
/* Resolves a leaf (LX_COL, LX_GROUPREF, LX_AGG) into a vector of x->rows
 * values; what it returns may borrow from the source. */
typedef dqo_status (*qeval_leaf_fn)(const qeval *x, const lexpr *e,
                                    qvec *out);

struct qeval {
    dqo_ctx *ctx;
    const lquery *q;
    uint64_t rows;
    qeval_leaf_fn leaf;
    const void *arg; /* the source the leaf function reads */
};

/* Evaluates e over x->rows rows. On failure *out holds nothing and the
 * context has the error (DQO_EOVERFLOW names the expression). */
dqo_status qexpr_eval(const qeval *x, const lexpr *e, qvec *out);
/* The leaf function of a relation: x->arg is a const qrel *; LX_COL reads
 * the base column through the row ids (in place when identity). */
dqo_status qrel_leaf(const qeval *x, const lexpr *e, qvec *out);
/* Structural equality of expressions (positions ignored). */
bool qexpr_same(const lexpr *a, const lexpr *b);
/* Element i of a numeric (or BOOL) vector widened to int64 / double. */
int64_t qvec_i64(const qvec *v, uint64_t i);
double qvec_f64(const qvec *v, uint64_t i);
/* v's values as int64: in place when v is I64, else widened into *own
 * (caller frees with mem_free); *own is NULL when nothing was allocated. */
dqo_status qvec_as_i64(const qeval *x, const qvec *v, const int64_t **p,
                       int64_t **own);
/* True when row i of v is NULL. */
bool qvec_null(const qvec *v, uint64_t i);

/* Copies a dictionary (codes stay the same); NULL when out of memory. */
dqo_dict *qdict_copy(const dqo_dict *d);

/* Runs a planned query: walks r's tree bottom up, filling each node's
 * measured_ms (STATS nodes get stats_ms[table], measured before
 * planning), and returns the result table (caller destroys it). */
dqo_status qexec_run(dqo_ctx *ctx, const lquery *q, plan_result *r,
                     const double *stats_ms, dqo_table **out);

/* ------------------------------------------------ catalog (catalog.c) */

/* One registered table: its name as registered (matched without regard to
 * case) and the borrowed table. */
typedef struct ctx_table_reg {
    char *name;
    const dqo_table *t;
} ctx_table_reg;

/* The table registered as `name` (any case), or NULL. */
const dqo_table *catalog_find(const dqo_ctx *ctx, const char *name);
/* The context's MAV cache, opened at first need: at $DQO_MAV, else next to
 * the calibration profile as "mav-" + the profile's file name, else in
 * memory only. Warnings of a corrupt file go to the context's warnings. */
dqo_status catalog_mav(dqo_ctx *ctx, struct mav_cache **out);

#endif /* DQO_ENGINE_QUERY_INT_H */
