/*
 * plan.h - the DQO planner: properties, granules, cost models, dynamic
 * programming over the logical plan, EXPLAIN and the DP table (pure C).
 *
 * Input: a bound query (planner/logical.h), what is known of its base
 * tables (plan_table_props), and the environment (machine model with its
 * calibration, allowed locations, cost model, SQO mode, MAV cache).
 * Output: a physiological plan, a tree of plan_node whose join and group
 * nodes carry an algorithm (a composition of granules) and a location,
 * with estimated cost, output properties and the reason for each choice;
 * plus the DP table of every sub-problem (paper, Table 5).
 *
 * Plan shape (bottom up), one chain per table, then the joins:
 *   SCAN(t) [-> STATS] [-> FILTER(single-table conjuncts)]
 *   -> JOIN(alg, loc) ... (left-deep, order chosen by DP over connected
 *      sub-graphs; build = in[0], probe = in[1])
 *   [-> FILTER(remaining conjuncts)]
 *   [-> TRANSFER(host -> cl:N)] -> GROUP(alg, loc)   (when aggregate)
 *   -> PROJECT(select list) [-> ORDER] [-> LIMIT]
 *
 * Algorithms (paper Table 4, plus the radix kernel): groupings HG, SPHG, OG,
 * SOG, BSG, RADIX (their grp_kernel values); joins HJ, SPHJ, OJ, SOJ, BSJ.
 * As granules: HG = none+hash, SPHG = direct+array, OG = runs+none,
 * SOG = sort+runs+none, BSG = none+sorted_keys, RADIX = radix+array|hash;
 * joins the same with the build side as the index.
 */
#ifndef DQO_PLANNER_PLAN_H
#define DQO_PLANNER_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "dqo.h"
#include "planner/logical.h"
#include "planner/machine.h"
#include "planner/planner.h"

typedef enum plan_op {
    PLAN_OP_SCAN = 0,
    PLAN_OP_STATS = 1,    /* a statistics pass over columns of its input */
    PLAN_OP_FILTER = 2,
    PLAN_OP_JOIN = 3,
    PLAN_OP_TRANSFER = 4, /* host -> device (or back): in-> out location */
    PLAN_OP_GROUP = 5,
    PLAN_OP_PROJECT = 6,
    PLAN_OP_ORDER = 7,
    PLAN_OP_LIMIT = 8
} plan_op;

/* Join algorithms (the paper's names). */
typedef enum plan_join_alg {
    PLAN_JOIN_HASH = 0,   /* HJ: hash table on the build side */
    PLAN_JOIN_DIRECT = 1, /* SPHJ: build key - min indexes an array */
    PLAN_JOIN_ORDER = 2,  /* OJ: merge of two inputs sorted on the key */
    PLAN_JOIN_SORT = 3,   /* SOJ: sort what is unsorted, then merge */
    PLAN_JOIN_BSEARCH = 4, /* BSJ: binary search in the sorted build keys */
    PLAN_JOIN_COUNT_
} plan_join_alg;

/* "hj", "sphj", "oj", "soj", "bsj"; and the paper's upper-case names
 * ("HJ", ...; groupings "HG", "SPHG", "OG", "SOG", "BSG", "RADIX"). */
const char *plan_join_name(plan_join_alg a);
const char *plan_join_paper_name(plan_join_alg a);
const char *plan_group_paper_name(int grp_kernel);

typedef enum plan_cost_model {
    PLAN_COST_CALIBRATED = 0, /* milliseconds, from the profile + topology */
    PLAN_COST_PAPER = 1       /* the paper's Table 4, in tuples touched */
} plan_cost_model;

/* What is known about one column of a base table. */
typedef struct plan_col_props {
    bool known;   /* stats holds the statistics pass's result */
    bool cached;  /* they were cached before this query (no pass needed) */
    dqo_column_stats stats;
    int type;     /* dqo_type */
} plan_col_props;

typedef struct plan_table_props {
    uint64_t rows;
    int ncols;
    const plan_col_props *cols; /* ncols entries */
    /* Where the columns live: -1 host memory, else the model location
     * index of the OpenCL device that holds resident copies. */
    int location;
    bool pinned; /* host columns in page-locked memory */
    uint64_t row_bytes; /* bytes of one row over all columns */
} plan_table_props;

/* Properties of a plan's output, with respect to the key its consumer
 * uses (the next join key or the group key). */
typedef struct plan_props {
    uint64_t rows;
    uint64_t ndv;   /* distinct values of that key */
    int64_t min, max;
    bool sorted;    /* clustered or sorted by that key */
    bool dense;     /* ndv / (max - min + 1) >= settings.direct_min_density */
    uint8_t radix_bits; /* partitioned on that many key bits, 0 if not */
    int location;   /* -1 host memory, else the device's location index */
} plan_props;

typedef struct plan_node {
    plan_op op;
    int alg;        /* JOIN: plan_join_alg; GROUP: grp_kernel; else -1 */
    granule g;      /* JOIN/GROUP: the granules (g.location = where it runs:
                       a model location index, 0 = cpu) */
    int location;   /* where the node runs: model location index (0: cpu) */
    plan_props out;
    double cost;    /* estimated cost of this node alone (model units) */
    double total;   /* estimated cost of the subtree */
    double measured_ms; /* EXPLAIN ANALYZE: filled by the executor; < 0
                           when not run */
    char why[320];  /* the rule and the inputs that decided this node */
    /* SCAN: the query table index; STATS: the table whose key columns are
     * measured; JOIN: the joined table (the lq_join index) */
    int table;
    /* JOIN: key columns (as lexpr LX_COL, borrowed from the query) of
     * in[0] (build) and in[1] (probe), nkeys pairs */
    int nkeys;
    const lexpr *build_key[LQ_MAX_JOIN_KEYS];
    const lexpr *probe_key[LQ_MAX_JOIN_KEYS];
    /* FILTER: the conjuncts it applies (borrowed from the query) */
    int npred;
    const lexpr **pred;
    int nin;
    struct plan_node *in[2];
} plan_node;

/* One row of the DP table: a possible plan of a sub-problem. */
typedef struct plan_dp_row {
    char subproblem[64];  /* "R", "S", "R ⋈ S", "Γ(R ⋈ S)" */
    char plan[96];        /* "scan(R)", "HJ(R,S)", "SPHG(SPHJ(R,S))" */
    double cost;          /* total cost of that plan */
    uint64_t rows;        /* output size */
    bool dense, sorted;   /* output properties */
    int location;         /* model location index, 0 cpu */
    bool chosen;          /* part of the final plan */
} plan_dp_row;

typedef struct mav_cache mav_cache; /* planner/mav.h */

typedef struct plan_env {
    const plan_model *model; /* NULL: a CPU-only machine from `machine` */
    const plan_machine *machine;
    const plan_settings *settings;
    plan_cost_model cost_model;
    bool sqo;     /* a classical optimiser's view: sortedness only, CPU only
                     (no density: no SPHG/SPHJ/BSJ/BSG; no device) */
    int threads;  /* CPU threads the plan may use */
    /* Locations granules may run on (model location indices: 0 = cpu,
     * cl:N's index). nloc == 0: cpu only. */
    int nloc;
    int loc[PLAN_MAX_LOCATIONS];
    mav_cache *mav; /* NULL: no MAV lookup or store */
} plan_env;

typedef struct plan_result {
    plan_node *root;
    double cost;        /* root->total */
    int ndp;
    plan_dp_row *dp;    /* the DP table, sub-problems bottom up */
    bool mav_hit;       /* the granule choices came from a MAV */
    char mav_key[256];  /* the MAV's key (logical shape, property class,
                           locations) */
    void *arena_;       /* owns every node and string */
    /* What EXPLAIN needs of the environment, copied (the env need not
     * outlive the result): the cost model, the mode and the ids of the
     * model's locations by index ("cpu", "cl:0", ...). */
    plan_cost_model cost_model;
    bool sqo;
    char loc_id[PLAN_MAX_LOCATIONS][24];
} plan_result;

/* Plans `q`. `tables[i]` describes q->tables[i]; the columns the plan
 * reads as keys (join keys, group keys) should be known: an unknown one
 * gets a STATS node whose cost is part of the plan (properties then
 * estimated as unsorted, sparse, ndv = rows). On failure *out is NULL and
 * err says why. */
dqo_status plan_query(const plan_env *env, const lquery *q,
                      const plan_table_props *tables, plan_result **out,
                      char *err, int errlen);
void plan_result_free(plan_result *r);

/* The chosen plan as an indented tree of granules, one node per line:
 *   GROUP sphg on cpu  (est 1.23 ms, out 1000 rows dense sorted)
 *     why: dense keys ...
 * `analyze` adds measured times (node->measured_ms) next to estimates.
 * Caller frees with free(). */
char *plan_explain(const plan_result *r, const lquery *q, bool analyze);
/* The DP table in the paper's Table 5 form (Sub-problem, Possible plans,
 * Costs, Output-size, Properties dense/sorted), chosen rows marked.
 * Caller frees with free(). */
char *plan_dp_table_format(const plan_result *r);

/* The cost-based choice for one grouping (the dqo_group API's "auto"):
 * the algorithm and location of least estimated cost among env's
 * locations, with its estimate and reason. `key` describes the key column
 * (its location is where the data lives), `naggs` the lowered aggregates,
 * `row_bytes` what one row moves to a device. */
typedef struct plan_group_pick {
    plan_choice choice; /* kernel, granules (g.location), why */
    int location;       /* model location index: 0 cpu, else cl:N's */
    double cost;        /* estimated ms (or tuples under the paper model) */
} plan_group_pick;

dqo_status plan_group_choose(const plan_env *env, const plan_props *key,
                             int naggs, uint64_t row_bytes, bool pinned,
                             plan_group_pick *out);

/* Estimated cost of grouping algorithm `kernel` (grp_kernel) at `location`
 * (model index) for `key`; < 0 when infeasible there (bsg on a device,
 * sphg on sparse keys, og on keys that are not sorted or clustered). */
double plan_group_cost(const plan_env *env, int kernel, int location,
                       const plan_props *key, int naggs, uint64_t row_bytes,
                       bool pinned);

#endif /* DQO_PLANNER_PLAN_H */
