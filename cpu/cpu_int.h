/*
 * cpu_int.h - private declarations of the CPU back-end (OpenMP kernels).
 *
 * Every grouping kernel works the same way, vectorised: it walks its rows in
 * chunks of AGG_CHUNK, computes for the chunk the table slot of each row into
 * a small array that stays in L1, then hands the chunk to agg_update(), which
 * runs one tight, type-specialised loop per aggregate. No function call per
 * tuple. Accumulators are columnar: one array per aggregate, indexed by slot.
 */
#ifndef DQO_CPU_INT_H
#define DQO_CPU_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/alloc.h"
#include "engine/backend.h"

/* Rows per vectorised chunk: 1024 slots (4 KiB) stay in L1 with room for
 * the chunk's keys and values. */
#define AGG_CHUNK 1024

/* Accumulators for `cap` slots: COUNT(*) plus one array per aggregate. */
typedef struct agg_table {
    uint64_t cap;
    int64_t *count;
    void *acc[GRP_MAX_AGGS]; /* int64_t[cap] or double[cap], see grp_agg_is_f64 */
} agg_table;

/* Allocates and initialises to identities (count 0, sum 0, MIN at the type's
 * top, MAX at its bottom; +/-inf for doubles). On failure nothing is left
 * allocated and DQO_ENOMEM is returned. Free with agg_table_free. */
dqo_status agg_table_init(agg_table *t, const grp_input *in, uint64_t cap);
/* Allocates like agg_table_init but leaves the slots uninitialised, so that
 * the thread that will use a table can initialise it (agg_table_reset) and
 * so place its pages (first touch) in parallel. */
dqo_status agg_table_alloc(agg_table *t, const grp_input *in, uint64_t cap);
/* Resets slots [from, from + n) to identities. */
void agg_table_reset(agg_table *t, const grp_input *in, uint64_t from,
                     uint64_t n);
void agg_table_free(agg_table *t, const grp_input *in);

/* Overflow state of integer SUMs: overflow_agg is -1 until some SUM leaves
 * the int64 range, then the index of that aggregate. */
typedef struct agg_flags {
    int overflow_agg;
} agg_flags;

/* t[slots[j]] += row (row0 + j) of every aggregate, and COUNT(*), j < n.
 * Not atomic: the table belongs to one thread. */
void agg_update(agg_table *t, const grp_input *in, const uint32_t *slots,
                uint64_t row0, uint32_t n, agg_flags *f);
/* The same with explicit row ids rows[j] (a gather; for sorted inputs). */
void agg_update_gather(agg_table *t, const grp_input *in,
                       const uint32_t *slots, const uint32_t *rows, uint32_t n,
                       agg_flags *f);
/* The same as agg_update with atomic updates, for a table shared by threads
 * (doubles' SUM/MIN/MAX through compare-and-swap loops). */
void agg_update_atomic(agg_table *t, const grp_input *in,
                       const uint32_t *slots, uint64_t row0, uint32_t n,
                       agg_flags *f);

/* dst[dslot + i] combined with src[sslot + i] for i < n: merges private
 * tables and partial results (counts and sums add, MIN/MAX compare). */
void agg_merge_range(agg_table *dst, uint64_t dslot, const agg_table *src,
                     uint64_t sslot, uint64_t n, const grp_input *in,
                     agg_flags *f);

/* Allocates out's keys, count and acc arrays for `groups` groups (with
 * dqo's allocator). On failure nothing is left allocated. */
dqo_status grp_output_alloc(grp_output *out, const grp_input *in,
                            uint64_t groups);
/* Copies slots [slot, slot + n) of t to output positions [pos, pos + n)
 * (counts and accumulators; keys are the caller's). */
void agg_emit_range(grp_output *out, uint64_t pos, const agg_table *t,
                    uint64_t slot, uint64_t n, const grp_input *in);

/* True when COUNT(*) plus the lowered aggregates is what the kernels' fused
 * loops compute: nothing else, COUNT of a column without NULLs (which is
 * COUNT(*)), or one SUM of a 32-bit column without NULLs over fewer than
 * 2^31 rows (so int64 sums cannot overflow and need no checks). This is
 * the shape of the paper's query, SELECT k, COUNT(*), SUM(v) GROUP BY k. */
static inline bool agg_fusable_count_sum(const grp_input *in)
{
    if (in->naggs == 0)
        return true;
    if (in->naggs != 1 || in->aggs[0].valid != NULL)
        return false;
    const grp_agg *a = &in->aggs[0];
    if (a->op == AGG_OP_COUNT)
        return true;
    return a->op == AGG_OP_SUM && in->rows < (UINT64_C(1) << 31) &&
           (a->type == DQO_TYPE_I32 || a->type == DQO_TYPE_U32);
}

/* Reads key i of the input as int64 (for the few places that need one key
 * outside a type-specialised loop). */
static inline int64_t grp_key_at(const grp_input *in, uint64_t i)
{
    switch (in->key_type) {
    case DQO_TYPE_U32: return ((const uint32_t *)in->keys)[i];
    case DQO_TYPE_I32: return ((const int32_t *)in->keys)[i];
    default: return ((const int64_t *)in->keys)[i];
    }
}

/* The Murmur3 64-bit finaliser (the paper's HG hash function). */
static inline uint64_t cpu_hash64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

/* Cache sizes the kernels size their tables and radix fan-out from; filled
 * once by cpu_backend from the machine model (topology/). */
typedef struct cpu_caches {
    uint64_t l1d, l2, l3;
} cpu_caches;
void cpu_get_caches(cpu_caches *c);
void cpu_set_caches(const cpu_caches *c);

/* backend.c: runs one grouping with the kernel family g->kernel (no thread
 * binding: the caller's op binds the team). */
dqo_status cpu_group(const grp_input *in, const granule *g, grp_output *out);

/* ------------------------------------------------------------------------
 * place.c: thread placement and parallel first-touch copies.
 *
 * Every op binds its team first (cpu_team_bind) and gives the caller's
 * thread its own binding back at the end (cpu_team_release). All of these
 * do nothing when topo_can_bind() is false.
 * ------------------------------------------------------------------------ */

/* Saves the calling (master) thread's binding, then binds worker t of a
 * team of `threads` (the master is t = 0) to core
 * topo_core_of_thread(t, threads). Later parallel regions of the op with at
 * most `threads` threads run on these bound threads. Returns the master's
 * saved binding (NULL when nothing was saved); pass it to cpu_team_release,
 * which frees it. */
void *cpu_team_bind(int threads);
/* Only saves the master's binding, for ops that bind their teams themselves
 * with cpu_team_place (calibration). Release with cpu_team_release. */
void *cpu_team_save(void);
/* Binds thread t of a team of `threads` to core
 * first_core + t * ncores / threads (ncores <= 0: topo_core_of_thread), the
 * master included unless cpu_team_save could not save its binding; nothing
 * is saved. A thread already bound to its core makes no system call. */
void cpu_team_place(int threads, int first_core, int ncores);
/* Restores the binding saved by cpu_team_bind or cpu_team_save on the
 * calling thread and frees it (NULL: does nothing). */
void cpu_team_release(void *saved);
/* For tests: binds a team as an op of `threads` threads would, records the
 * PU each thread runs on (topo_current_pu, -1 unknown) in pu_out[t]
 * (`threads` entries), restores the master and returns the team size the
 * runtime granted. */
int cpu_team_where(int threads, int *pu_out);

/* Copies below this size run on the calling thread (and the op binds
 * nothing): waking the team would cost more than the copy saves, and so
 * small a column's placement does not matter. */
#define CPU_PLACE_COPY_PARALLEL_MIN ((size_t)1 << 20)

/* Copies `bytes` from src to dst, thread t of `threads` copying the bytes
 * of rows [rows * t / threads, rows * (t + 1) / threads) of any element
 * size, with the split points moved down to 4 KiB pages of dst: a fresh
 * dst's pages land by first touch on the NUMA node of the thread whose
 * kernels scan them. dst and src must not overlap. */
void cpu_place_copy(void *dst, const void *src, size_t bytes, int threads);

/* calibrate.c: the CPU location's micro-benchmarks (see backend_ops
 * calibrate). Binds its teams over [o->first_core, + o->ncores) itself;
 * the caller saves and restores the master's binding (cpu_team_save). */
dqo_status cpu_calibrate(int dev, const calib_opts *o, plan_calib *out,
                         char *err, size_t errlen);

/* The kernels, one file each (group_*.c). Each returns DQO_OK with `out`
 * filled, or an error with nothing allocated in `out`. */
dqo_status cpu_group_hash(const grp_input *in, const granule *g,
                          grp_output *out);
dqo_status cpu_group_direct(const grp_input *in, const granule *g,
                            grp_output *out);
dqo_status cpu_group_order(const grp_input *in, const granule *g,
                           grp_output *out);
dqo_status cpu_group_sort(const grp_input *in, const granule *g,
                          grp_output *out);
dqo_status cpu_group_bsearch(const grp_input *in, const granule *g,
                             grp_output *out);
dqo_status cpu_group_radix(const grp_input *in, const granule *g,
                           grp_output *out);

/* stats.c: the statistics pass (min, max, NULLs, order, runs, HyperLogLog). */
dqo_status cpu_stats(dqo_type type, const void *data, const uint8_t *valid,
                     uint64_t rows, int threads, dqo_column_stats *out);

/* gen.c: the paper's datasets. */
dqo_status cpu_gen_grouping(uint32_t *keys, int32_t *vals, uint64_t rows,
                            uint64_t groups, bool sorted, bool sparse,
                            uint64_t seed, int threads);

/* ------------------------------------------------------------------------
 * Shared by the sorting kernels (added with group_sort.c / group_bsearch.c).
 *
 * group_sort.c: the parallel LSD radix sort behind SOG, also used by BSG to
 * find the distinct keys. Sorts the n elements of `a` by their bits
 * [lo, lo + bits), stably (elements equal in those bits keep their order),
 * in passes of at most 11 bits, using `tmp` (n elements, not overlapping a)
 * as the second buffer. *sorted is set to a or tmp, whichever holds the
 * result; the other holds garbage. Buffers aligned to 64 bytes (mem_alloc)
 * get full-line streaming stores; others work, slower. Allocates only
 * per-thread histograms and write-combining buffers, before its parallel
 * regions: DQO_ENOMEM when that fails (a is then unchanged), DQO_EINVAL
 * when lo + bits > 64.
 * ------------------------------------------------------------------------ */
dqo_status cpu_radix_sort_u64(uint64_t *a, uint64_t *tmp, uint64_t n,
                              unsigned lo, unsigned bits, int threads,
                              uint64_t **sorted);


/* ------------------------------------------------------------------------
 * group_hash.c: a single-threaded open-addressing hash table that groups any
 * slice of rows of a grp_input, growing as needed (so a wrong distinct
 * estimate costs time, never correctness). HG uses it for thread-private
 * tables and group_radix.c for the partitions that are not dense.
 * Keys are stored as the offset (uint64_t)(key - base); the offset
 * CPU_HTAB_EMPTY marks a free slot, and the one key whose offset equals it
 * lives in the extra slot `cap` of the accumulators.
 * ------------------------------------------------------------------------ */
#define CPU_HTAB_EMPTY UINT64_MAX

typedef struct cpu_htab {
    uint64_t cap;   /* a power of two */
    uint64_t used;  /* occupied slots, not counting slot `cap` */
    uint64_t limit; /* the table grows before `used` passes this */
    int shift;      /* home slot = (cpu_hash64(offset) >> shift) & (cap - 1) */
    bool top_used;  /* slot `cap` holds a group */
    int64_t base;
    uint64_t *offs; /* cap entries */
    agg_table acc;  /* cap + 1 slots */
} cpu_htab;

/* A table for about `groups` groups (capacity >= 2 * groups, at least 16).
 * On failure nothing is left allocated. Free with cpu_htab_free. */
dqo_status cpu_htab_init(cpu_htab *h, const grp_input *in, int64_t base,
                         int shift, uint64_t groups);
/* The same allocation with the slots left untouched: the thread that will
 * use the table empties it with cpu_htab_clear first, so that the table's
 * pages are placed on that thread's NUMA node (first touch). Free with
 * cpu_htab_free (also when it was never cleared). */
dqo_status cpu_htab_alloc(cpu_htab *h, const grp_input *in, int64_t base,
                          int shift, uint64_t groups);
/* Empties the table for reuse with a new base (keeps its capacity). */
void cpu_htab_clear(cpu_htab *h, const grp_input *in, int64_t base);
void cpu_htab_free(cpu_htab *h, const grp_input *in);
/* Groups rows [lo, hi) of `in` into h; DQO_ENOMEM only when growing fails
 * (the rows before the failure are then in the table). */
dqo_status cpu_htab_add(cpu_htab *h, const grp_input *in, uint64_t lo,
                        uint64_t hi, agg_flags *f);
static inline uint64_t cpu_htab_groups(const cpu_htab *h)
{
    return h->used + (h->top_used ? 1 : 0);
}
/* Writes the table's groups (keys, counts, accumulators) to output positions
 * [pos, pos + cpu_htab_groups(h)), in slot order. */
void cpu_htab_emit(const cpu_htab *h, const grp_input *in, grp_output *out,
                   uint64_t pos);


/* ------------------------------------------------------------------------
 * Joins (join.c, join_merge.c): the inner equi-join kernels hj, sphj, oj,
 * soj and bsj behind backend_ops.join; see engine/backend.h for the
 * contract (NULL keys never match, output order per algorithm).
 * ------------------------------------------------------------------------ */

/* join.c: validates `in` and runs algorithm `alg` (a plan_join_alg); no
 * thread binding (the caller's op binds the team). On failure `out` holds
 * no arrays and out->detail says what went wrong. */
dqo_status cpu_join(const join_input *in, int alg, join_output *out);

/* One join side as a merge reads it: `n` valid keys in ascending order
 * with their row ids. Either the input column itself, read in place
 * (sorted, no NULLs; keys of the join's key type, rows NULL: row i is i),
 * or pairs (`offsets`: keys[i] is a uint64_t offset from the join's base,
 * rows[i] its row id). Owned buffers are freed with cpu_join_side_free. */
typedef struct cpu_join_side {
    uint64_t n;
    const void *keys;
    const uint32_t *rows; /* NULL: identity */
    bool offsets;         /* keys are uint64_t offsets from the base */
    uint64_t *own_keys;   /* owned buffers (mem_alloc / mem_scratch_alloc) */
    uint32_t *own_rows;
    bool sorted_here; /* the side was sorted (for detail) */
    bool wide;        /* sorted with separate row ids (key bits + row bits > 64) */
} cpu_join_side;

/* join_merge.c: the side of a join as sorted (key offset, row) pairs:
 * NULL rows dropped, keys as offsets from `base` (the smallest key of the
 * join's sides), sorted with a stable parallel radix sort unless `sorted`
 * (the column is already ascending), so that rows of one key stay
 * ascending. DQO_ENOMEM when a buffer cannot be allocated. */
dqo_status cpu_join_side_pairs(dqo_type type, const void *keys,
                               const uint8_t *valid, uint64_t rows,
                               const dqo_column_stats *stats, int64_t base,
                               bool sorted, int threads, cpu_join_side *out);
void cpu_join_side_free(cpu_join_side *s);

/* join_merge.c: oj (sort == false: both sides must be ascending, else
 * DQO_EUNSUPPORTED) and soj (sort == true). `in` is validated. */
dqo_status cpu_join_merge(const join_input *in, bool sort, join_output *out);

/* join.c: allocates out's two arrays for `pairs` pairs (none for 0), or
 * returns DQO_ENOMEM with a message in out->detail naming `alg`. */
dqo_status cpu_join_output_alloc(join_output *out, uint64_t pairs,
                                 const char *alg);

/* The back-end's gather op (cpu/gather.c). */
void cpu_gather(void *dst, const void *src, size_t width,
                const uint32_t *rows, uint64_t n, int threads);

#endif /* DQO_CPU_INT_H */
