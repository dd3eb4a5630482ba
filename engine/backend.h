/*
 * backend.h - the one table of operations that every back-end (cpu/, later
 * opencl/) fills, and the value types that cross it. The engine and the
 * planner see a back-end only through this header; no back-end header is
 * included outside its own folder.
 *
 * A grouping reaches a back-end already normalised by the engine: exactly one
 * non-NULL integer key column (u32, i32 or i64; multi-column and NULL-able keys
 * are packed into one i64 key first, see engine/keys.c) and aggregates lowered
 * to COUNT / SUM / MIN / MAX (AVG becomes SUM and COUNT; COUNT(*) is always
 * computed as grp_output.count).
 */
#ifndef DQO_BACKEND_H
#define DQO_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "dqo.h"
#include "planner/planner.h"

/* The most aggregates one kernel call carries (after lowering). */
#define GRP_MAX_AGGS 32

typedef enum agg_op {
    AGG_OP_COUNT = 0, /* count of valid (non-NULL) values of the column */
    AGG_OP_SUM = 1,
    AGG_OP_MIN = 2,
    AGG_OP_MAX = 3
} agg_op;

/* One lowered aggregate. The accumulator is double when type is F64 and
 * op is not COUNT; int64_t otherwise (integer SUM checks for overflow). */
typedef struct grp_agg {
    agg_op op;
    dqo_type type;        /* input type: U32, I32, I64 or F64 */
    const void *data;     /* `rows` input elements */
    const uint8_t *valid; /* NULL: no NULLs; else 0 marks a NULL row */
} grp_agg;

static inline bool grp_agg_is_f64(const grp_agg *a)
{
    return a->type == DQO_TYPE_F64 && a->op != AGG_OP_COUNT;
}

/* Identity values that accumulators start from. */
#define GRP_MIN_INIT_I64 INT64_MAX
#define GRP_MAX_INIT_I64 INT64_MIN

typedef struct grp_input {
    dqo_type key_type; /* U32, I32 or I64 */
    const void *keys;  /* `rows` keys, never NULL-able */
    uint64_t rows;
    /* Statistics of the key column: min, max, order and runs are exact;
     * distinct is an estimate. Never NULL. */
    const dqo_column_stats *key_stats;
    const grp_agg *aggs;
    int naggs; /* 0..GRP_MAX_AGGS */
    int threads; /* >= 1: worker threads to use */
} grp_input;

/* A kernel's output; every array has `groups` entries and is allocated with
 * dqo_mem_alloc by the kernel; the caller frees it with grp_output_free. */
typedef struct grp_output {
    uint64_t groups;
    int64_t *keys;  /* the group key (u32 and i32 keys widened to int64) */
    int64_t *count; /* COUNT(*) per group */
    void *acc[GRP_MAX_AGGS]; /* int64_t[] or double[] per grp_agg_is_f64 */
    bool overflow;           /* an integer SUM left the int64 range */
    int overflow_agg;        /* which aggregate, when overflow */
    /* What the kernel did, for EXPLAIN and DQO_TRACE: mode, table sizes,
     * radix bits, partitions..., e.g. "private tables x16, merged". */
    char detail[192];
} grp_output;

void grp_output_free(grp_output *out, int naggs);

/* The kernel families; the order and names are part of the CLI. */
#define GRP_KERNEL_LIST(X)                                                     \
    X(HASH, "hg", "hash grouping (open addressing)")                           \
    X(DIRECT, "sphg", "static perfect hash grouping (key - min indexes an array)") \
    X(ORDER, "og", "order-based grouping over input clustered by key")         \
    X(SORT, "sog", "parallel radix sort, then order-based grouping")           \
    X(BSEARCH, "bsg", "binary search over the sorted distinct keys")           \
    X(RADIX, "radix", "radix partitioning, then an array or hash table per partition")

typedef enum grp_kernel {
#define GRP_KERNEL_ENUM_(e, name, what) GRP_KERNEL_##e,
    GRP_KERNEL_LIST(GRP_KERNEL_ENUM_)
#undef GRP_KERNEL_ENUM_
        GRP_KERNEL_COUNT_
} grp_kernel;

const char *grp_kernel_name(grp_kernel k);
/* -1 when `name` is not a kernel name. */
int grp_kernel_parse(const char *name);

/* The granule choice handed to a back-end (see planner/planner.h). */
typedef struct backend_ops {
    const char *name;
    /* One parallel pass over a column: min, max, NULLs, order, runs, HLL.
     * `type` is U32, I32, I64, F64 (or STR codes passed as U32). */
    dqo_status (*stats)(dqo_type type, const void *data, const uint8_t *valid,
                        uint64_t rows, int threads, dqo_column_stats *out);
    /* Runs one grouping as `g` says. On failure `out` holds nothing. */
    dqo_status (*group)(const grp_input *in, const granule *g,
                        grp_output *out);
    /* Fills the paper's dataset (see dqo_gen_grouping). */
    dqo_status (*gen_grouping)(uint32_t *keys, int32_t *vals, uint64_t rows,
                               uint64_t groups, bool sorted, bool sparse,
                               uint64_t seed, int threads);
    /* Tells the back-end the machine it runs on (cache sizes size its tables
     * and radix fan-out). Idempotent; called when a context is created. */
    void (*configure)(const plan_machine *m);
} backend_ops;

extern const backend_ops cpu_backend;

#endif /* DQO_BACKEND_H */
