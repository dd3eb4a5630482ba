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
#include <stddef.h>
#include <stdint.h>

#include "dqo.h"
#include "planner/machine.h"
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
/* A column kept resident in a device's memory (opaque; owned by the
 * back-end that made it, see backend_ops.col_upload). */
typedef struct dev_col dev_col;

typedef struct grp_agg {
    agg_op op;
    dqo_type type;        /* input type: U32, I32, I64 or F64 */
    const void *data;     /* `rows` input elements */
    const uint8_t *valid; /* NULL: no NULLs; else 0 marks a NULL row */
    /* The same column (data and valid) resident on the device the query
     * runs on, or NULL: the device back-end then streams `data` from host
     * memory. Ignored by the CPU back-end. */
    const dev_col *dev;
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
    /* Device back-ends: the device (an index from probe) and the key column
     * resident there (NULL: stream `keys` from host memory). */
    int device;
    const dev_col *keys_dev;
    /* Device back-ends: how to copy host memory into staging buffers (the
     * CPU back-end's parallel place_copy, with `threads`); NULL: memcpy. */
    void (*copy)(void *dst, const void *src, size_t bytes, int threads);
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
    /* Device back-ends: what failed ("clEnqueueNDRangeKernel:
     * CL_OUT_OF_RESOURCES (-5)", a build log...), "" on success; and where
     * the time went: device work (kernels and the transfers they wait for,
     * until the result is ready in device memory) and the download of the
     * result, in milliseconds. */
    char error[512];
    double device_ms, download_ms;
    /* Device back-ends that ran in chunks with per-chunk results: keys may
     * repeat (each a partial aggregate); the engine merges equal keys. */
    bool partial;
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

/* ------------------------------------------------------------------ joins */

/* An inner equi-join on one integer key per side, as the engine hands it
 * to a back-end: composite keys are packed into one i64 key and string
 * keys translated into one dictionary first (engine/query.c). Both sides
 * have the same key type. NULL keys (valid[i] == 0) never match. Row ids
 * are 32-bit: a join side has fewer than 2^32 rows. */
typedef struct join_input {
    dqo_type key_type; /* U32, I32 or I64 */
    const void *build_keys;
    const uint8_t *build_valid; /* NULL: no NULLs */
    uint64_t build_rows;
    const dqo_column_stats *build_stats; /* exact min/max/order/runs */
    const void *probe_keys;
    const uint8_t *probe_valid;
    uint64_t probe_rows;
    const dqo_column_stats *probe_stats;
    int threads;
} join_input;

/* The matching pairs: build_row[i] and probe_row[i] for i < pairs, arrays
 * from dqo_mem_alloc freed with join_output_free. Order: hj, sphj and bsj
 * emit pairs in probe row order (so the probe side's order is kept);
 * oj and soj in key order (ties: build row, then probe row ascending). */
typedef struct join_output {
    uint64_t pairs;
    uint32_t *build_row, *probe_row;
    char detail[192]; /* what the kernel did, for EXPLAIN */
} join_output;

void join_output_free(join_output *out);

/* A device a back-end drives, as its probe reports it (OpenCL: one per
 * device of every platform, in the ICD loader's order). */
typedef struct dev_info {
    int platform, device; /* indices in the ICD loader's enumeration */
    char platform_name[64];
    char name[96], vendor[64];
    char version[64]; /* CL_DEVICE_VERSION */
    char driver[64];  /* CL_DRIVER_VERSION */
    bool is_gpu, is_cpu;
    uint32_t compute_units, clock_mhz;
    uint64_t global_mem, max_alloc, local_mem, global_cache;
    bool host_unified; /* CL_DEVICE_HOST_UNIFIED_MEMORY */
    /* PCI position, from cl_khr_pci_bus_info or the vendor's extension
     * (NVIDIA CL_DEVICE_PCI_BUS_ID_NV / SLOT_ID_NV, AMD topology). */
    bool has_pci;
    uint32_t pci_domain, pci_bus, pci_dev, pci_func;
    bool fp64, int64_atomics;
} dev_info;

/* Progress of a calibration step: `done` in [0, 1] of this location's
 * work, `step` names what runs now ("read bandwidth, 8 threads"). */
typedef void (*calib_progress_fn)(void *arg, double done, const char *step);

typedef struct calib_opts {
    bool quick;   /* --quick: fewer sizes and repetitions (whole run < 10 s) */
    int threads;  /* cpu: the most threads to measure with (>= 1) */
    /* cpu: the cores to run on, [first_core, first_core + ncores) of the
     * machine's cores (a NUMA location's cores); threads are spread over
     * them with topo_bind_self when topo_can_bind(). */
    int first_core, ncores;
    /* cpu: cache sizes that pick the random-access working sets. */
    uint64_t l1d, l2, l3;
    bool kernels; /* also measure the grouping kernels' per-row cost */
    calib_progress_fn progress;
    void *progress_arg;
} calib_opts;

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
    /* Runs one inner equi-join with algorithm `alg` (a plan_join_alg:
     * hj, sphj, oj, soj, bsj). DQO_EUNSUPPORTED when the algorithm cannot
     * take this input (sphj on a key range over the direct limit, oj on
     * unsorted input). NULL when the back-end has no joins. */
    dqo_status (*join)(const join_input *in, int alg, join_output *out);
    /* dst[i] = src[rows[i]] for i < n, elements of `width` bytes (1, 2, 4
     * or 8 fast; any other width works), with `threads` threads. NULL for
     * devices. */
    void (*gather)(void *dst, const void *src, size_t width,
                   const uint32_t *rows, uint64_t n, int threads);
    /* Fills the paper's dataset (see dqo_gen_grouping). */
    dqo_status (*gen_grouping)(uint32_t *keys, int32_t *vals, uint64_t rows,
                               uint64_t groups, bool sorted, bool sparse,
                               uint64_t seed, int threads);
    /* Tells the back-end the machine it runs on (cache sizes size its tables
     * and radix fan-out). Idempotent; called when a context is created. */
    void (*configure)(const plan_machine *m);
    /* The devices this back-end drives: fills up to `max` entries and
     * returns how many exist (0: none, e.g. no OpenCL platform), or -1 with
     * `err` filled when enumeration itself failed. NULL for the CPU. */
    int (*probe)(dev_info *out, int max, char *err, size_t errlen);
    /* Runs the location's micro-benchmarks and fills what it measures in
     * `out` (zeroed first; valid set on success). `dev` is an index from
     * probe (ignored by the CPU back-end). */
    dqo_status (*calibrate)(int dev, const calib_opts *o, plan_calib *out,
                            char *err, size_t errlen);
    /* Copies `bytes` from src to dst (CPU: in parallel, each thread copying
     * the share of the rows it will later scan, so that pages land by first
     * touch on the NUMA node of the thread that scans them). NULL for
     * devices. */
    void (*place_copy)(void *dst, const void *src, size_t bytes, int threads);
    /* Device back-ends: copies `rows` elements of `width` bytes (and the
     * valid flags when not NULL) into buffers resident on device `dev`.
     * *out is freed with col_free. NULL for the CPU. */
    dqo_status (*col_upload)(int dev, const void *data, size_t width,
                             const uint8_t *valid, uint64_t rows,
                             dev_col **out, char *err, size_t errlen);
    void (*col_free)(dev_col *c);
    /* Device back-ends: page-locked host memory of `bytes` in device
     * `dev`'s context (*ptr, freed with host_unpin(*handle)); a column kept
     * there streams to that device without a staging copy. */
    dqo_status (*host_pin)(int dev, size_t bytes, void **ptr, void **handle,
                           char *err, size_t errlen);
    void (*host_unpin)(void *handle);
    /* The device a resident column lives on. */
    int (*col_device)(const dev_col *c);
    /* Releases what the back-end keeps between queries (opened devices and
     * their programs) when nothing uses it; the engine calls it when its
     * last context is destroyed. */
    void (*trim)(void);
} backend_ops;

extern const backend_ops cpu_backend;
/* OpenCL devices: probe, calibrate, resident columns and grouping (the
 * direct, hash, radix, sort and order kernel families; bsg has no device
 * kernel and returns DQO_EUNSUPPORTED). */
extern const backend_ops opencl_backend;

#endif /* DQO_BACKEND_H */
