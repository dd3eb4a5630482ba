/*
 * plan_int.h - private declarations shared by the planner core files:
 * props.c (column properties, selectivity), cost.c (the paper's and the
 * calibrated cost models), dp.c (the enumerator, MAV), explain.c (EXPLAIN
 * and the DP table). Nothing here is part of the planner's contract, which
 * is planner/plan.h.
 */
#ifndef DQO_PLANNER_PLAN_INT_H
#define DQO_PLANNER_PLAN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "planner/plan.h"

/* ------------------------------------------------------------------ arena */

/* Every node, string and DP entry of one plan_query lives in one arena,
 * freed with the result. Each block is prefixed by the previous block. */
typedef struct pl_arena {
    void *head;
    bool failed; /* an allocation failed (reported once by plan_query) */
} pl_arena;

/* Zeroed memory of `bytes` owned by the arena; NULL (and failed) when out
 * of memory. */
void *pl_alloc(pl_arena *a, size_t bytes);
void pl_arena_free(pl_arena *a);

/* snprintf for names that may be cut on purpose (plan names, shapes). */
void pl_fmt(char *buf, size_t len, const char *fmt, ...);

/* -------------------------------------------------------------- properties */

/* The most columns whose properties a sub-plan tracks: the join and group
 * key columns of the query ("interesting" columns, as interesting orders).
 * 64 fits a bitmask of sorted columns, the DP's property class. */
#define PL_MAX_COLS 64

/* What is known of one interesting column in a sub-plan's output. */
typedef struct pl_col {
    uint64_t ndv;
    int64_t min, max;
    bool sorted; /* sorted or clustered on this column */
} pl_col;

/* Width in bytes of a column of dqo_type `type` (strings: their 4-byte
 * dictionary codes). */
uint64_t pl_type_bytes(int type);
/* Range max - min + 1 in 64 bits (saturating; never 0). */
uint64_t pl_range(int64_t min, int64_t max);
/* Whether a key of `ndv` values over [min, max] counts as dense. */
bool pl_dense(const plan_settings *s, uint64_t ndv, int64_t min, int64_t max);
/* A base column's props; `known` false: unsorted, sparse, ndv = rows. */
pl_col pl_col_from_stats(const plan_settings *s, const plan_col_props *c,
                         uint64_t rows, bool paper);
/* Selectivity of a predicate (textbook: = 1/ndv, range 1/3, BETWEEN 1/4,
 * IN k/ndv, AND multiplies, OR adds minus the product, NOT 1 - s). `ndv_of`
 * gives a column's distinct count (0 when unknown). */
double pl_selectivity(const lexpr *e,
                      uint64_t (*ndv_of)(const void *arg, int table, int col),
                      const void *arg);

/* --------------------------------------------------------------- costs */

/* Bytes of one grouping table entry: key, COUNT(*) and 8 bytes per lowered
 * aggregate (as planner/rule.c sizes them). */
uint64_t pl_entry_bytes(int naggs);

/* The inputs every cost function needs. */
typedef struct pl_costenv {
    const plan_env *env;
    plan_settings set;   /* env->settings or the defaults */
    plan_machine mach;   /* env->machine or a 1-thread default */
    int threads;         /* CPU threads (>= 1) */
    bool paper;
} pl_costenv;

void pl_costenv_init(pl_costenv *ce, const plan_env *env);

/* Cost of grouping kernel `kernel` at location `loc` over input `key`
 * (rows, ndv, range, sorted, dense; key->location is where the data is);
 * < 0 when infeasible. `*xfer` gets the share of the cost that is the
 * transfer (0 when none). `note` (may be NULL) receives a short text of
 * how it was estimated. */
double pl_group_cost(const pl_costenv *ce, int kernel, int loc,
                     const plan_props *key, int naggs, uint64_t row_bytes,
                     bool pinned, double *xfer, char *note, int notelen);
/* Cost of join `alg` on cpu; build/probe rows, their key props. < 0 when
 * infeasible. */
double pl_join_cost(const pl_costenv *ce, int alg, const plan_props *build,
                    const plan_props *probe);
/* Cost of a FILTER over `rows` with `npred` conjuncts, a PROJECT of
 * `ncols` columns, an ORDER BY of `rows`, a statistics pass of `bytes`. */
double pl_filter_cost(const pl_costenv *ce, uint64_t rows, int npred);
double pl_project_cost(const pl_costenv *ce, uint64_t rows, int ncols);
double pl_order_cost(const pl_costenv *ce, uint64_t rows);
double pl_stats_cost(const pl_costenv *ce, uint64_t bytes);

/* Whether a location index is an OpenCL device of env's model. */
bool pl_loc_is_device(const plan_env *env, int loc);
/* "cpu", "cl:0", ... of a location index. */
const char *pl_loc_name(const plan_env *env, int loc);
/* The locations a grouping may use (env->loc, or cpu alone; SQO and the
 * paper model: cpu alone). Returns the count. */
int pl_group_locations(const plan_env *env, bool paper,
                       int loc[PLAN_MAX_LOCATIONS]);

/* The reason of a grouping choice: "cheapest of n: best on loc cost <
 * runner-up on loc cost (key props)"; run_k < 0: no runner-up. */
void pl_group_why(const plan_env *env, int n, int best_k, int best_l,
                  double best, int run_k, int run_l, double run,
                  const plan_props *key, char *buf, int len);

/* "ms" under the calibrated model, "" (tuples) under the paper's. */
const char *pl_unit(const plan_env *env);

#endif /* DQO_PLANNER_PLAN_INT_H */
