/*
 * engine_int.h - private declarations of the engine: context, tables,
 * columns, string dictionaries, errors. Only include/dqo.h is public.
 */
#ifndef DQO_ENGINE_INT_H
#define DQO_ENGINE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dqo.h"
#include "engine/alloc.h"
#include "engine/backend.h"
#include "planner/machine.h"
#include "planner/planner.h"

#if defined(__GNUC__)
#define DQO_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DQO_PRINTF(a, b)
#endif

struct dqo_ctx {
    int threads;         /* 0: every core */
    char errmsg[1024];   /* the last error, "" after success */
    plan_settings settings;
    plan_machine machine;
    const backend_ops *cpu;
    bool trace;          /* DQO_TRACE set: log kernels and times to stderr */
    /* The machine model with its calibration, built at first need by
     * ctx_model (engine/machine.c); NULL before. */
    plan_model *model;
    int profile_status;  /* a topo_profile_status, once the model is built */
    char profile_path[512];
    char warnings[1024]; /* profile and device warnings, one per line */
    /* SQL (engine/query.c): tables registered by name, borrowed; and the
     * MAV cache, opened at its first use (NULL before). */
    int nreg, cap_reg;
    struct ctx_table_reg *reg;
    struct mav_cache *mav;
};

/* Releases the SQL state of a context (registry, MAV cache). */
void query_ctx_free(dqo_ctx *ctx);

/* The context's machine model: this system's topology, the OpenCL devices
 * matched to it, and the calibration profile (warnings recorded). NULL on
 * allocation failure (error set). Owned by the context. */
plan_model *ctx_model(dqo_ctx *ctx);
/* Adds a "cl:N" location per device in `devs`, matched to the model's hwloc
 * OS devices by PCI bus id (else by hwloc's platform/device index) for NUMA
 * locality and link speed. */
void engine_attach_cl(plan_model *m, const dev_info *devs, int n);
/* Appends one warning line to the context's warnings. */
void ctx_warn(dqo_ctx *ctx, const char *fmt, ...) DQO_PRINTF(2, 3);

/* Sets the context's error text and returns `s` (so callers can write
 * `return ctx_error(ctx, DQO_EINVAL, "...", ...)`). ctx may be NULL. */
dqo_status ctx_error(dqo_ctx *ctx, dqo_status s, const char *fmt, ...)
    DQO_PRINTF(3, 4);
/* Clears the error text (start of every public call). */
void ctx_ok(dqo_ctx *ctx);
/* Threads resolved: the context's setting, or every core. */
int ctx_threads(const dqo_ctx *ctx);

/* ------------------------------------------------------ string dictionary */

/* Interns strings, giving dense uint32 codes in order of first appearance. */
typedef struct dqo_dict dqo_dict;

/* Caller frees with dict_destroy. NULL on allocation failure. */
dqo_dict *dict_create(void);
void dict_destroy(dqo_dict *d);
/* The code of the len bytes at s (not NUL-terminated), adding it if new. */
dqo_status dict_intern(dqo_dict *d, const char *s, size_t len, uint32_t *code);
/* The NUL-terminated text of `code`, owned by the dictionary; NULL when out
 * of range. */
const char *dict_get(const dqo_dict *d, uint32_t code);
uint32_t dict_size(const dqo_dict *d);

/* ------------------------------------------------------------------ tables */

typedef struct dqo_column {
    char *name;
    dqo_type type;
    void *data;      /* rows elements (u32 codes for STR) */
    uint8_t *valid;  /* NULL when no NULLs */
    bool owns_data;  /* data and valid are freed with the table */
    void *map_base;  /* a memory-mapped file backing data, or NULL */
    size_t map_len;
    dqo_dict *dict;  /* STR columns: owned by the column */
    bool has_stats;
    dqo_column_stats stats;
    dev_col *dev;    /* resident copy on the table's device, or NULL */
    void *pin;       /* data lives in page-locked memory (host_pin), or NULL */
} dqo_column;

struct dqo_table {
    uint64_t rows;
    int ncols, cap;
    dqo_column *cols;
    int device;       /* the OpenCL device holding column copies, -1: none */
    char location[16]; /* "cl:N" or "host" */
};

/* Size in bytes of one element of `t` (STR: the u32 code). */
size_t type_width(dqo_type t);

/* Creates an empty table; caller frees with dqo_table_destroy. */
dqo_status table_new(dqo_ctx *ctx, dqo_table **out);
/* Appends a column whose arrays the table takes over: data and valid must
 * come from mem_alloc (or be NULL for valid), dict (STR only) from
 * dict_create. Ownership passes to the table even when the call fails (the
 * arrays are then freed), so callers never clean up after it. */
dqo_status table_add_owned(dqo_ctx *ctx, dqo_table *t, const char *name,
                           dqo_type type, void *data, uint8_t *valid,
                           uint64_t rows, dqo_dict *dict);
/* Finds a column, or sets an error naming the column and the table's columns. */
dqo_status table_find(dqo_ctx *ctx, const dqo_table *t, const char *name,
                      int *col);
/* Statistics of a column, computed once through the CPU back-end. */
dqo_status column_stats(dqo_ctx *ctx, dqo_column *c, uint64_t rows,
                        const dqo_column_stats **out);

#endif /* DQO_ENGINE_INT_H */
