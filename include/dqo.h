/*
 * dqo.h - the public C API of dqo, a batch analytics engine with a Deep Query
 * Optimisation planner (GROUP BY aggregation over columnar tables on multicore
 * CPUs; OpenCL devices and joins follow).
 *
 * Conventions (see ../shared/STYLE.md):
 *  - Handles are opaque. Constructors return the handle through an out-parameter
 *    and return a dqo_status; compare it against DQO_OK only.
 *  - On failure nothing is half-created: out-parameters are set to NULL and the
 *    error text is available from dqo_ctx_errmsg() on the context handle.
 *  - Every destroy function accepts NULL.
 *  - Every function returning a pointer says who owns it.
 *  - Functions are safe to call from several threads only on distinct contexts.
 */
#ifndef DQO_H
#define DQO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DQO_VERSION_MAJOR 0
#define DQO_VERSION_MINOR 1
#define DQO_VERSION_PATCH 0
#define DQO_VERSION_STRING "0.1.0"
/* One number for compile-time checks: major * 10000 + minor * 100 + patch. */
#define DQO_VERSION_NUMBER                                                     \
    (DQO_VERSION_MAJOR * 10000 + DQO_VERSION_MINOR * 100 + DQO_VERSION_PATCH)

/* The run-time version of the library; compare with DQO_VERSION_NUMBER. */
int dqo_version(void);
/* The run-time version as text; a static string, never freed. */
const char *dqo_version_string(void);

/* ---------------------------------------------------------------- status */

/* One list yields the enum and the name/message lookups (libuv style). */
#define DQO_STATUS_LIST(X)                                                     \
    X(OK, "success")                                                           \
    X(EINVAL, "invalid argument")                                              \
    X(ENOMEM, "out of memory")                                                 \
    X(EIO, "input/output error")                                               \
    X(EPARSE, "malformed input")                                               \
    X(ENOTFOUND, "not found")                                                  \
    X(ETYPE, "wrong column type")                                              \
    X(ELENGTH, "column lengths differ")                                        \
    X(EOVERFLOW, "integer overflow")                                           \
    X(EUNSUPPORTED, "not supported")                                           \
    X(EDEVICE, "device error")                                                 \
    X(EINTERNAL, "internal error")

typedef enum dqo_status {
#define DQO_STATUS_ENUM_(name, msg) DQO_##name,
    DQO_STATUS_LIST(DQO_STATUS_ENUM_)
#undef DQO_STATUS_ENUM_
        DQO_STATUS_COUNT_
} dqo_status;

/* "DQO_ENOMEM" for DQO_ENOMEM; "DQO_UNKNOWN" for values outside the list.
 * Static strings, never freed. */
const char *dqo_status_name(dqo_status s);
/* "out of memory" for DQO_ENOMEM; a static string, never freed. */
const char *dqo_status_str(dqo_status s);

/* Frees memory that a dqo call handed to the caller (strings from
 * dqo_machine_describe, dqo_calibrate, dqo_profile_path). NULL is fine. */
void dqo_free(void *p);

/* ---------------------------------------------------------------- context */

typedef struct dqo_ctx dqo_ctx;

/* Creates a context: the owner of settings and of the last error text.
 * On failure *out is NULL and the status says why (only DQO_ENOMEM/EINVAL). */
dqo_status dqo_ctx_create(dqo_ctx **out);
void dqo_ctx_destroy(dqo_ctx *ctx);

/* The text of the last error on this context, naming the problem; "" when the
 * last call succeeded. Owned by the context, valid until its next call. */
const char *dqo_ctx_errmsg(const dqo_ctx *ctx);

/* Worker threads for kernels; 0 (the default) means OMP_NUM_THREADS when
 * set, else one per core. */
dqo_status dqo_ctx_set_threads(dqo_ctx *ctx, int threads);
/* The thread count that a query will use now: the context's setting, else
 * OMP_NUM_THREADS when set, else one per core. */
int dqo_ctx_threads(const dqo_ctx *ctx);

/* Warnings about the machine profile ("no calibration profile for this
 * machine; using topology defaults (run `dqo calibrate`)", or why a
 * profile was stale or corrupt), one per line; "" when none. The profile is
 * read when the machine model is first needed (dqo_location_count,
 * dqo_machine_describe, planning). Owned by the context. */
const char *dqo_ctx_warnings(dqo_ctx *ctx);

/* ---------------------------------------------------- machine and locations */

/* A location is where granules run: "cpu" (every core), "cpu:numaN" (the
 * cores and memory of NUMA node N) or "cl:N" (the N-th OpenCL device in the
 * ICD loader's order). The model comes from hwloc (HWLOC_XMLFILE and
 * HWLOC_SYNTHETIC are honoured) and the OpenCL platforms, matched by PCI
 * bus id, plus the calibration profile when one exists. */
typedef enum dqo_location_kind {
    DQO_LOCATION_CPU = 0,
    DQO_LOCATION_NUMA = 1,
    DQO_LOCATION_OPENCL = 2
} dqo_location_kind;

typedef struct dqo_location_info {
    const char *id;   /* "cpu", "cpu:numa0", "cl:0" */
    const char *name; /* CPU model or device name */
    const char *pci;  /* PCI bus id ("0000:17:00.0"), "" when none */
    dqo_location_kind kind;
    int numa;          /* NUMA node (the nearest one for a device), -1: all */
    int compute_units; /* cores, or the device's compute units */
    int pus;           /* hardware threads (cpu locations) */
    uint64_t mem_bytes;
    uint64_t l1d_bytes, l2_bytes, l3_bytes; /* devices: local mem, cache, 0 */
    int host_memory;   /* 1: reads host memory directly (cpu, PoCL) */
    double link_gbs;   /* nominal PCIe GB/s, 0 unknown */
    /* From the calibration profile; 0 when not calibrated. */
    int calibrated;
    double read_gbs;       /* best sequential read bandwidth */
    double h2d_pinned_gbs; /* host to device, pinned memory */
    double launch_us;      /* kernel launch latency */
} dqo_location_info;

/* Strings in *out are owned by the context and valid until it is destroyed.
 * dqo_location_count returns 0 when ctx is NULL or the model failed (see
 * dqo_ctx_errmsg). */
int dqo_location_count(dqo_ctx *ctx);
dqo_status dqo_location_get(dqo_ctx *ctx, int index, dqo_location_info *out);
/* The index of location `id`; DQO_ENOTFOUND naming the known ids when none. */
dqo_status dqo_location_find(dqo_ctx *ctx, const char *id, int *index);

/* The machine model as a readable table (json = 0) or as JSON, with the
 * calibrated figures when a profile exists. Caller frees *out with
 * dqo_free. */
dqo_status dqo_machine_describe(dqo_ctx *ctx, int json, char **out);

/* Progress of long work: `done` in [0, 1], `step` says what runs now. */
typedef void (*dqo_progress_fn)(void *arg, double done, const char *step);

typedef struct dqo_calibrate_options {
    int quick;              /* fewer sizes and repetitions (about 10 s) */
    const char *output;     /* profile path; NULL: the default path */
    const char *locations;  /* comma-separated ids; NULL: every location */
    dqo_progress_fn progress; /* NULL: silent */
    void *progress_arg;
} dqo_calibrate_options;

/* Runs the micro-benchmarks of every (or the listed) location, writes the
 * versioned profile, and loads it into the context. *path_out (may be
 * NULL) receives the file written; caller frees it with dqo_free. */
dqo_status dqo_calibrate(dqo_ctx *ctx, const dqo_calibrate_options *opts,
                         char **path_out);

/* The profile path this machine uses ($DQO_PROFILE, else
 * $XDG_CACHE_HOME/dqo/ or ~/.cache/dqo/ with the topology fingerprint).
 * Caller frees *out with dqo_free. */
dqo_status dqo_profile_path(dqo_ctx *ctx, char **out);

/* ---------------------------------------------------------------- tables */

typedef enum dqo_type {
    DQO_TYPE_U32 = 0,
    DQO_TYPE_I32 = 1,
    DQO_TYPE_I64 = 2,
    DQO_TYPE_F64 = 3,
    /* Strings, stored dictionary-encoded as dense uint32 codes 0..n-1 in
     * order of first appearance; the dictionary maps codes back to text. */
    DQO_TYPE_STR = 4,
    DQO_TYPE_COUNT_
} dqo_type;

/* "u32", "i32", "i64", "f64", "str"; a static string. */
const char *dqo_type_name(dqo_type t);
/* Parses a type name as printed by dqo_type_name (case-insensitive). */
dqo_status dqo_type_parse(const char *name, dqo_type *out);

typedef enum dqo_ownership {
    DQO_BORROW = 0, /* zero-copy: the caller keeps the arrays alive and
                       unchanged until the table is destroyed */
    DQO_COPY = 1    /* the table copies the arrays */
} dqo_ownership;

typedef struct dqo_table dqo_table;

/* Creates an empty table (no columns, 0 rows). */
dqo_status dqo_table_create(dqo_ctx *ctx, dqo_table **out);
void dqo_table_destroy(dqo_table *t);

/* Adds a numeric column of `rows` elements of `type` (not DQO_TYPE_STR).
 * `valid`, when not NULL, holds one byte per row: 0 marks a NULL.
 * The first column fixes the table's row count; later ones must match it
 * (DQO_ELENGTH otherwise). Names must be unique and non-empty. */
dqo_status dqo_table_add_column(dqo_ctx *ctx, dqo_table *t, const char *name,
                                dqo_type type, const void *data,
                                const uint8_t *valid, uint64_t rows,
                                dqo_ownership mode);

/* Adds a string column, dictionary-encoding `strs` (always copied); a NULL
 * entry is a NULL value. */
dqo_status dqo_table_add_strings(dqo_ctx *ctx, dqo_table *t, const char *name,
                                 const char *const *strs, uint64_t rows);

typedef struct dqo_csv_options {
    char delimiter; /* ',' when 0 */
    /* Declared types, "name:type,name:type" (types as dqo_type_name); columns
     * not named are inferred: i32 if every value fits, else i64, else f64,
     * else str. NULL: infer all. */
    const char *column_types;
} dqo_csv_options;

/* Loads a CSV file with a header row (RFC 4180 quoting; LF or CRLF line ends).
 * An empty unquoted field is NULL. Errors name file:line:column. `opts` may be
 * NULL. On success the caller owns *out (dqo_table_destroy). */
dqo_status dqo_table_load_csv(dqo_ctx *ctx, const char *path,
                              const dqo_csv_options *opts, dqo_table **out);

/* Writes the table as CSV with a header row (NULL as an empty field). */
dqo_status dqo_table_write_csv(dqo_ctx *ctx, const dqo_table *t,
                               const char *path);

/* Loads a directory of binary column files, one per column, named
 * NAME.TYPE (for example k.u32, v.i32) holding little-endian values with no
 * header; the files are memory-mapped (zero-copy). Strings are not supported
 * in this format. On success the caller owns *out. */
dqo_status dqo_table_load_dir(dqo_ctx *ctx, const char *dir, dqo_table **out);
/* Writes numeric columns as NAME.TYPE files into `dir` (created if missing). */
dqo_status dqo_table_write_dir(dqo_ctx *ctx, const dqo_table *t,
                               const char *dir);

/* Copies every column of t into the memory of OpenCL device `location`
 * ("cl:N"), where the copies stay for later queries until
 * dqo_table_drop_device or dqo_table_destroy (the host columns stay too).
 * A table is resident on one device at a time: moving it drops the old
 * copies. DQO_ENOMEM when the columns exceed dqo's memory budget on the
 * device (3/4 of its memory, or DQO_CL_MEM_BUDGET). */
dqo_status dqo_table_to_device(dqo_ctx *ctx, dqo_table *t,
                               const char *location);
void dqo_table_drop_device(dqo_table *t);
/* Moves the table's column data into page-locked host memory of OpenCL
 * device `location`'s context ("cl:N"): queries that stream the columns to
 * that device then transfer them by DMA straight from the table, without
 * the staging copy that pageable memory needs. The column pointers change
 * (ask dqo_table_column_* again); validity flags stay where they are. */
dqo_status dqo_table_pin(dqo_ctx *ctx, dqo_table *t, const char *location);
/* "cl:N" when the table's columns are resident there, else "host"; owned
 * by the table. */
const char *dqo_table_location(const dqo_table *t);

uint64_t dqo_table_rows(const dqo_table *t);
int dqo_table_ncols(const dqo_table *t);
/* Column name; owned by the table. NULL when col is out of range. */
const char *dqo_table_column_name(const dqo_table *t, int col);
/* Finds a column by name; DQO_ENOTFOUND (with a message) when absent. */
dqo_status dqo_table_column_index(dqo_ctx *ctx, const dqo_table *t,
                                  const char *name, int *col);
dqo_type dqo_table_column_type(const dqo_table *t, int col);

/* Typed accessors: the column's element array, owned by the table (or by the
 * caller who lent it). DQO_ETYPE when the column has another type.
 * String columns are read through dqo_table_column_codes (u32 codes). */
dqo_status dqo_table_column_u32(dqo_ctx *ctx, const dqo_table *t, int col,
                                const uint32_t **data);
dqo_status dqo_table_column_i32(dqo_ctx *ctx, const dqo_table *t, int col,
                                const int32_t **data);
dqo_status dqo_table_column_i64(dqo_ctx *ctx, const dqo_table *t, int col,
                                const int64_t **data);
dqo_status dqo_table_column_f64(dqo_ctx *ctx, const dqo_table *t, int col,
                                const double **data);
dqo_status dqo_table_column_codes(dqo_ctx *ctx, const dqo_table *t, int col,
                                  const uint32_t **codes);
/* The validity bytes of a column (0 = NULL), or NULL when it has no NULLs;
 * owned by the table. */
const uint8_t *dqo_table_column_valid(const dqo_table *t, int col);
/* True (1) when row `row` of column `col` is NULL. */
int dqo_table_is_null(const dqo_table *t, int col, uint64_t row);
/* The text of dictionary code `code` of a string column; owned by the table.
 * NULL when the column is not a string column or the code is out of range. */
const char *dqo_table_dict_string(const dqo_table *t, int col, uint32_t code);
uint32_t dqo_table_dict_size(const dqo_table *t, int col);

/* Formats one cell as text into buf (NULL prints as "NULL"). */
dqo_status dqo_table_format_cell(const dqo_table *t, int col, uint64_t row,
                                 char *buf, size_t len);

/* -------------------------------------------------------- column statistics */

typedef enum dqo_order {
    DQO_ORDER_NONE = 0,
    DQO_ORDER_ASC = 1,  /* non-decreasing */
    DQO_ORDER_DESC = 2, /* non-increasing */
    DQO_ORDER_CONST = 3 /* all values equal: both of the above */
} dqo_order;

/* What one parallel statistics pass learns about a column (NULLs skipped for
 * everything but `nulls`). String columns are described through their codes. */
typedef struct dqo_column_stats {
    uint64_t rows;
    uint64_t nulls;
    uint64_t runs;     /* maximal runs of equal values; runs == distinct
                          means the column is clustered by value */
    uint64_t distinct; /* HyperLogLog estimate (about 1% error) */
    int64_t min, max;  /* integer and string columns (codes) */
    double fmin, fmax; /* f64 columns */
    dqo_order order;
} dqo_column_stats;

/* Computes (once; then cached on the column) and returns the statistics. */
dqo_status dqo_table_column_stats(dqo_ctx *ctx, const dqo_table *t, int col,
                                  dqo_column_stats *out);

/* ---------------------------------------------------------------- grouping */

typedef enum dqo_agg {
    DQO_AGG_COUNT_STAR = 0, /* COUNT(*), no column */
    DQO_AGG_COUNT = 1,      /* non-NULL values */
    DQO_AGG_SUM = 2,        /* integers sum in int64: overflow is an error */
    DQO_AGG_MIN = 3,
    DQO_AGG_MAX = 4,
    DQO_AGG_AVG = 5, /* result f64 */
    DQO_AGG_COUNT_
} dqo_agg;

/* "count_star", "count", "sum", "min", "max", "avg"; a static string. */
const char *dqo_agg_name(dqo_agg a);

typedef struct dqo_group dqo_group;

/* Starts a grouping query over `input`; the table must outlive the query. */
dqo_status dqo_group_create(dqo_ctx *ctx, const dqo_table *input,
                            dqo_group **out);
void dqo_group_destroy(dqo_group *g);

/* Adds a group key column (one or more, any type). */
dqo_status dqo_group_add_key(dqo_group *g, const char *column);
/* Adds an aggregate. `column` is NULL for COUNT(*); `alias` names the result
 * column (NULL: "count_star", "sum_v", ...). */
dqo_status dqo_group_add_agg(dqo_group *g, dqo_agg agg, const char *column,
                             const char *alias);
/* Forces a kernel: "auto" (the default: chosen from column statistics), "hg",
 * "sphg", "og", "sog", "bsg" or "radix". */
dqo_status dqo_group_set_kernel(dqo_group *g, const char *kernel);

/* Where the query runs: "auto" (the default), "cpu" or "cl:N" (an OpenCL
 * device, see dqo_location_get). auto runs on the device that holds the
 * table's columns (dqo_table_to_device), else on the CPU (the cost-based
 * choice between CPU and devices comes with the planner); when that device
 * fails, auto runs the query on the CPU instead and dqo_group_explain says
 * so. With "cl:N" a device failure is the query's error. On a device the
 * columns stream from host memory through pinned buffers unless they are
 * resident there. An i64 SUM that wraps on a device is rerun on the CPU,
 * whose answer (and overflow check) is exact. */
dqo_status dqo_group_set_device(dqo_group *g, const char *location);

/* Runs the query. The result table has the key columns first (same names and
 * types), then one column per aggregate. COUNT results are i64; SUM is i64
 * for integer inputs and f64 for f64; MIN/MAX keep the input type; AVG is f64.
 * A group whose inputs are all NULL gets NULL for SUM/MIN/MAX/AVG.
 * Groups come in the kernel's order. The caller owns *result. */
dqo_status dqo_group_run(dqo_group *g, dqo_table **result);

/* After a run: the kernel that ran, its parameters and the rule that chose it,
 * for example "sphg: dense keys, range 1000 <= 16777216 ...". Owned by the
 * query, valid until the next run or destroy; "" before the first run. */
const char *dqo_group_explain(const dqo_group *g);
/* Names of every grouping kernel, NULL-terminated; static. */
const char *const *dqo_group_kernels(void);

/* --------------------------------------------------------------------- SQL */

/* Registers `t` under `name` for SQL queries (FROM name); the table is
 * borrowed and must outlive its registration. A NULL table removes the
 * name. Names are case-insensitive identifiers; registering a name again
 * replaces the table. */
dqo_status dqo_register_table(dqo_ctx *ctx, const char *name,
                              const dqo_table *t);

typedef enum dqo_cost_model {
    DQO_COST_CALIBRATED = 0, /* milliseconds from the calibration profile and
                                the topology (defaults when uncalibrated) */
    DQO_COST_PAPER = 1       /* the DQO paper's Table 4 (tuples touched) */
} dqo_cost_model;

typedef struct dqo_query_options {
    /* Where granules may run: "auto" (every location: the planner chooses
     * CPU or device by cost), "cpu", "cl:N", or a list "cpu,cl:0". NULL:
     * auto. */
    const char *device;
    int threads;     /* CPU threads; 0: the context's setting */
    int sqo;         /* 1: a classical optimiser's view (sortedness only,
                        CPU only) instead of DQO */
    dqo_cost_model cost_model;
    int no_mav;      /* 1: neither use nor store materialised algorithmic
                        views */
} dqo_query_options;

/* Plans and runs one SQL query (see sql/sql.h for the subset). `opts` may
 * be NULL. On success *result is the result table (caller destroys it)
 * and, when `explain` is not NULL, *explain is the EXPLAIN ANALYZE text of
 * the plan that ran (estimated and measured time per granule; caller frees
 * with dqo_free). Syntax and binding errors are DQO_EPARSE, DQO_ENOTFOUND,
 * DQO_ETYPE or DQO_EINVAL with a message that quotes the query with a
 * caret under the offending token (dqo_ctx_errmsg). */
dqo_status dqo_query(dqo_ctx *ctx, const char *sql,
                     const dqo_query_options *opts, dqo_table **result,
                     char **explain);

/* Plans a query without running it: the plan tree with estimated costs,
 * output properties and the reason for each choice; with dp_table = 1
 * also the dynamic programming table in the paper's Table 5 form. Caller
 * frees *out with dqo_free. */
dqo_status dqo_explain(dqo_ctx *ctx, const char *sql,
                       const dqo_query_options *opts, int dp_table,
                       char **out);

/* The materialised algorithmic views (cached optimised sub-plans) kept for
 * this machine, one per line (key, value, hits), as text; caller frees
 * *out with dqo_free. dqo_mav_clear forgets them all and removes the file.
 * The cache lives next to the calibration profile ($DQO_MAV overrides the
 * path). */
dqo_status dqo_mav_list(dqo_ctx *ctx, char **out);
dqo_status dqo_mav_clear(dqo_ctx *ctx);

/* ------------------------------------------------------- generated datasets */

/* The paper's (Section 5) grouping datasets: column k (u32 keys with `groups`
 * distinct values) and column v (i32 values in [-1000, 1000]), `rows` rows.
 * dense: keys are 0..groups-1; sparse: keys spread over the whole u32 range.
 * sorted: rows ascending by key. Deterministic for a seed; generated in
 * parallel. The caller owns *out. */
dqo_status dqo_gen_grouping(dqo_ctx *ctx, uint64_t rows, uint64_t groups,
                            int sorted, int sparse, uint64_t seed,
                            dqo_table **out);

#ifdef __cplusplus
}
#endif

#endif /* DQO_H */
