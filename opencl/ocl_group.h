/*
 * ocl_group.h - private declarations of the OpenCL grouping: opened devices
 * (one context, a compute and a transfer queue, a program cache, a memory
 * budget), resident columns, the grouping driver with its chunked,
 * double-buffered streaming, and the kernel families it drives.
 *
 * Private to opencl/ and tests/ (it exposes CL types).
 *
 * The device table. Every family aggregates into the same layout: an array
 * of entries of TAB_E 64-bit words (a power of two, so that an entry never
 * straddles a 32-byte sector more than it must, and so that
 * clEnqueueFillBuffer can initialise it with one entry as the pattern):
 *
 *   [key]  when the family stores keys (hash, radix, sort, order; TAB_K = 1)
 *   count  COUNT(*) of the group
 *   acc_j  one per lowered aggregate: int64, or a double's bits when
 *          grp_agg_is_f64 (COUNT, SUM start at 0, MIN at the type's +inf,
 *          MAX at -inf)
 *
 * Integer SUMs of i64 inputs (the only ones that can leave int64 with fewer
 * than 2^32 rows) are checked on the device: any wrap of an intermediate sum
 * sets a flag, and the back-end then answers DQO_EUNSUPPORTED with a message
 * so the engine reruns the query exactly on the CPU (wraps are rare; the
 * CPU's answer is the exact one, with its overflow check on the final sum).
 */
#ifndef DQO_OCL_GROUP_H
#define DQO_OCL_GROUP_H

#include <pthread.h>

#include "opencl/ocl_int.h"

/* --------------------------------------------------------------- devices */

#define OCL_PROGRAM_CACHE 48
/* Pinned staging slots: two streaming sets of up to 17 columns, and the
 * result download. */
#define OCL_PINNED_SLOTS 35
#define OCL_PINNED_DOWNLOAD 34

/* Longest program key (source names and options); longer ones are built
 * but not cached. Kept inline so that the cache allocates nothing. */
#define OCL_PROGRAM_KEY 2048

typedef struct ocl_prog_entry {
    char key[OCL_PROGRAM_KEY]; /* source names + "\n" + options */
    cl_program prog;
} ocl_prog_entry;

/* One opened device. Opened on first use and kept for the process (so that
 * programs are built once); closed by ocl_dev_trim when nothing uses it. */
typedef struct ocl_dev {
    int index; /* cl:N */
    cl_device_id id;
    dev_info info;
    cl_platform_id platform;
    cl_context ctx;
    cl_command_queue q;    /* compute (in order) */
    cl_command_queue xfer; /* transfers (in order), overlaps with q */
    /* Bytes of device memory dqo plans with (DQO_CL_MEM_BUDGET or
     * ocl_set_mem_budget, else 3/4 of global memory) and the largest
     * single buffer (max_alloc, also capped by the budget / 4). */
    uint64_t budget, max_alloc;
    size_t max_wg; /* CL_DEVICE_MAX_WORK_GROUP_SIZE */
    bool i64_ext;  /* cl_khr_int64_extended_atomics (atom_min/max) */
    int refs;      /* open queries and resident columns */
    uint64_t resident; /* bytes held by resident columns (dev_col) */
    pthread_mutex_t run; /* one grouping at a time on a device */
    int nprog;
    ocl_prog_entry prog[OCL_PROGRAM_CACHE];
    /* Pinned host buffers kept between queries (allocating and locking
     * hundreds of MB costs more than moving them): one per slot, mapped. */
    cl_mem pinned[OCL_PINNED_SLOTS];
    void *pinned_ptr[OCL_PINNED_SLOTS];
    uint64_t pinned_bytes[OCL_PINNED_SLOTS];
} ocl_dev;

/* The opened device cl:index (opened now if needed, reference taken);
 * NULL with `e` filled: no such device, or opening it failed. */
ocl_dev *ocl_dev_get(int index, ocl_err *e);
/* Drops a reference from ocl_dev_get. NULL is fine. */
void ocl_dev_put(ocl_dev *d);
/* Closes every opened device that nobody references (the engine calls it
 * when its last context goes); leak checks in tests run after it. */
void ocl_dev_trim(void);

/* The mapped pinned buffer of `slot` with at least `bytes` (grown when
 * smaller; kept until the device closes); NULL with `e` filled. Only the
 * holder of d->run may use it. */
void *ocl_dev_pinned(ocl_dev *d, int slot, uint64_t bytes, cl_mem *buf,
                     ocl_err *e);

/* What the opened devices keep between queries, for leak checks: OpenCL
 * objects (contexts, queues, cached programs, pinned buffers and their
 * mappings) and host allocations (the device records). A query leaks
 * nothing when ocl_live_objects() - ocl_cached_objects() and
 * mem_outstanding() - ocl_cached_allocs() are the same before and after. */
long ocl_cached_objects(void);
long ocl_cached_allocs(void);

/* Caps the memory budget of device `index` at `bytes` (0: back to the
 * default) for devices opened from now on and the one open now. Tests use
 * it to force chunked runs on PoCL; DQO_CL_MEM_BUDGET (bytes, or with a
 * K/M/G suffix) does the same from the environment. */
void ocl_set_mem_budget(int index, uint64_t bytes);

/* The program built from the embedded sources `names` (concatenated in
 * order, e.g. {"group_common", "group_direct", NULL}) with `options`
 * (OCL_BUILD_OPTIONS is prepended): from the device's cache, else from the
 * binary cache on disk, else compiled (and then stored in both). Owned by
 * the device. NULL with `e` filled (a build log on compile errors). */
cl_program ocl_dev_program(ocl_dev *d, const char *const *names,
                           const char *options, ocl_err *e);

/* --------------------------------------------------- binary cache on disk */

/* Where compiled programs are kept: $DQO_CL_CACHE, else
 * $XDG_CACHE_HOME/dqo/cl, else ~/.cache/dqo/cl; "" disables the cache.
 * Writes into buf (cap bytes); returns buf. */
const char *ocl_cache_dir(char *buf, size_t cap);
/* The cache key of a program: a hex hash of the device name, vendor,
 * driver version, device version, platform version, the source text and
 * the options. Writes 32 hex digits and a NUL into out[33]. */
void ocl_cache_key(const ocl_dev *d, const char *src, size_t len,
                   const char *options, char out[33]);
/* The program for `key` from the cache directory, built for d (binaries
 * that fail to load or build are removed and NULL is returned, never an
 * error). NULL when absent or disabled. Never fails the query. */
cl_program ocl_cache_load(ocl_dev *d, const char *key, const char *options);
/* Stores the binary of built program `p` under `key` (atomically: a
 * temporary file renamed into place). Failures are ignored. */
void ocl_cache_store(ocl_dev *d, const char *key, cl_program p);

/* ------------------------------------------------------ resident columns */

/* A column on a device: `npieces` buffers of at most piece_rows rows each
 * (several when the column is larger than the device's max allocation), and
 * its valid flags (uchar, same pieces) when it has NULLs. */
#define OCL_MAX_PIECES 64
struct dev_col {
    ocl_dev *dev;
    size_t width;
    uint64_t rows, piece_rows;
    int npieces;
    cl_mem data[OCL_MAX_PIECES];
    cl_mem valid[OCL_MAX_PIECES]; /* NULL when no NULLs */
};

/* Rows per piece for a device: the same for every column of a table (sized
 * for 8-byte elements), so that pieces of keys and aggregates line up. */
uint64_t ocl_piece_rows(const ocl_dev *d);

dqo_status ocl_col_upload(int dev, const void *data, size_t width,
                          const uint8_t *valid, uint64_t rows, dev_col **out,
                          char *err, size_t errlen);
void ocl_col_free(dev_col *c);

/* Page-locked host memory in device `dev`'s context for a column (see
 * column.c); *ptr stays valid until ocl_host_unpin(*handle). */
dqo_status ocl_host_pin(int dev, size_t bytes, void **ptr, void **handle,
                        char *err, size_t errlen);
void ocl_host_unpin(void *handle);
/* True when [ptr, ptr + bytes) lies in pinned memory of device d. */
bool ocl_pinned_range(const ocl_dev *d, const void *ptr, size_t bytes);

/* ------------------------------------------------------------- grouping */

/* The most lowered aggregates a device kernel carries (more: the engine runs
 * the query on the CPU). */
#define OCL_MAX_AGGS 8

/* One chunk of input rows as the kernels see it: element `off` of each
 * buffer is the chunk's first row. valid[j] is NULL when aggregate j has no
 * NULLs. Buffers are owned by the driver (streaming) or a dev_col. */
typedef struct ocl_chunk {
    cl_mem keys;
    cl_mem data[OCL_MAX_AGGS];
    cl_mem valid[OCL_MAX_AGGS];
    uint64_t off;       /* element offset in the buffers */
    uint64_t rows;      /* rows in this chunk (> 0) */
    uint64_t first_row; /* the chunk's first row in the whole input */
} ocl_chunk;

typedef struct ocl_family ocl_family;

/* One grouping on one device. */
typedef struct ocl_gq {
    ocl_dev *dev;
    ocl_err *e;
    const grp_input *in;
    const granule *g;
    const ocl_family *fam;
    int nagg;
    int tab_e;         /* words per table entry */
    bool tab_k;        /* entries carry the key */
    cl_mem dummy;      /* a small buffer for unused kernel arguments */
    cl_mem wrapped;    /* one int: an i64 SUM wrapped (see above) */
    bool checks;       /* some aggregate is an i64 SUM */
    char opts[1536];   /* the shape's -D options (ocl_group_options) */
    uint64_t pattern[16]; /* the identity entry (tab_e words) */
    /* Device bytes the family keeps for the whole query (tables) and per
     * input row of a chunk (scratch), set by begin; the driver sizes
     * chunks from them and the budget. */
    uint64_t fixed_bytes, row_bytes;
    void *state; /* the family's */
    /* The detail line for EXPLAIN ("local tables x4, 1024 slots"). */
    char detail[192];
    /* PACKED (see kernels/group_common.cl): set by ocl_gq_pack; the sum
     * field's bits; no_pack after a packed sum left its field. */
    bool packed, no_pack;
    int pack_sb;
    /* Attempt number (0 first): a hash family whose table overflowed
     * (flag bit 1) is run again with a table 4x larger per attempt. */
    int attempt;
    /* Milliseconds since the query started when the result was ready in
     * device memory, and spent downloading it (ocl_gq_table_out). */
    double t0, ready_ms, download_ms;
} ocl_gq;

struct ocl_family {
    const char *name;
    bool keyed; /* table entries carry the key (TAB_K = 1) */
    /* Sizes tables from in->key_stats, builds programs, allocates and
     * initialises device tables. */
    bool (*begin)(ocl_gq *q);
    /* Enqueues the work of one chunk on dev->q. Must not wait for the
     * device unless it has to (the driver overlaps the next transfer). */
    bool (*chunk)(ocl_gq *q, const ocl_chunk *c);
    /* After the last chunk: the result into `out` (the family downloads;
     * the driver has waited for nothing). A family whose result holds a
     * key more than once (per-chunk results, repeated runs) sets
     * out->partial and the engine merges. */
    bool (*finish)(ocl_gq *q, grp_output *out);
    /* Frees the family's state; always called once after begin, even when
     * begin failed half-way. */
    void (*end)(ocl_gq *q);
};

extern const ocl_family ocl_family_direct; /* group_direct.c */
extern const ocl_family ocl_family_hash;   /* group_hash.c */
extern const ocl_family ocl_family_radix;  /* group_radix.c */
extern const ocl_family ocl_family_sort;   /* group_sort.c */
extern const ocl_family ocl_family_order;  /* group_order.c */

/* backend_ops.group of the OpenCL back-end (group.c). */
dqo_status ocl_group(const grp_input *in, const granule *g, grp_output *out);

/* Helpers the families share (group.c). */

/* Switches the query to packed COUNT(*) + SUM entries (one atomic per row)
 * when its shape allows it (exactly one SUM of u32/i32 values without
 * NULLs) and no earlier attempt overflowed a packed sum: recomputes the
 * options, tab_e and the identity pattern. Call from begin before building
 * programs and allocating the table; only for kernels whose every update
 * goes through packed_add. True when packed. */
bool ocl_gq_pack(ocl_gq *q);

/* The program of `names` for this query's shape (q->opts plus `extra`). */
cl_program ocl_gq_program(ocl_gq *q, const char *const *names,
                          const char *extra);
/* A kernel of `p` (released by the caller with ocl_release_kernel). */
cl_kernel ocl_gq_kernel(ocl_gq *q, cl_program p, const char *name);
/* Sets the argument block every grouping kernel starts with (GRP_INPUT in
 * kernels/group_common.cl):
 *   keys, a0, v0, ..., a7, v7, off, rows, wrapped
 * (20 arguments from index 0; unused aggregates get q->dummy). Returns the
 * next argument index, or -1 with q->e filled. */
int ocl_gq_set_input(ocl_gq *q, cl_kernel k, const ocl_chunk *c);
/* Sets argument `i` of k: a buffer, a ulong/long, an int; false + error. */
bool ocl_gq_arg_mem(ocl_gq *q, cl_kernel k, int i, cl_mem m);
bool ocl_gq_arg_u64(ocl_gq *q, cl_kernel k, int i, uint64_t v);
bool ocl_gq_arg_i64(ocl_gq *q, cl_kernel k, int i, int64_t v);
bool ocl_gq_arg_int(ocl_gq *q, cl_kernel k, int i, int v);
bool ocl_gq_arg_local(ocl_gq *q, cl_kernel k, int i, size_t bytes);
/* Enqueues k over `global` work-items in groups of `local` on dev->q. */
bool ocl_gq_run(ocl_gq *q, cl_kernel k, size_t global, size_t local);
/* A device buffer of `bytes` (read-write); NULL + error. */
cl_mem ocl_gq_buffer(ocl_gq *q, uint64_t bytes);
/* Fills `entries` table entries of `tab` with q->pattern (identities; the
 * key word, when tab_k, gets `empty_key`). */
bool ocl_gq_init_table(ocl_gq *q, cl_mem tab, uint64_t entries,
                       int64_t empty_key);
/* Compacts the used entries (count > 0) of `tab` (`entries` entries) on the
 * device and downloads them into out (keys, count, acc[]): key = the stored
 * key when q->tab_k, else key_base + entry index. Entry order is kept.
 * Sets out->groups; allocates out's arrays with mem_alloc. */
bool ocl_gq_table_out(ocl_gq *q, cl_mem tab, uint64_t entries,
                      int64_t key_base, grp_output *out);
/* Downloads `n` groups already compacted in `tab` (no device pass), as
 * consecutive entries of 2 + nagg words: key, count, acc_0, ... */
bool ocl_gq_download_entries(ocl_gq *q, cl_mem tab, uint64_t n,
                             int64_t key_base, grp_output *out);

/* Local memory a kernel may use per work-group: the device's, less 1 KiB
 * that drivers keep for themselves (NVIDIA refuses a launch that asks for
 * all 48 KiB). */
uint64_t ocl_gq_local_bytes(const ocl_gq *q);
/* Words (uint) per entry of a narrow local table (NARROW in
 * kernels/group_common.cl), or 0 when some aggregate needs 64-bit local
 * words (i64 or f64 SUM/MIN/MAX). */
int ocl_gq_narrow_words(const ocl_gq *q);

/* Preferred work-group size and number of groups for a pass over `rows`
 * rows: a few work-groups per compute unit, capped by the rows. */
size_t ocl_gq_wg(const ocl_gq *q);
size_t ocl_gq_groups(const ocl_gq *q, uint64_t rows, size_t wg);

/* Shared by the radix, sort and order families. */

/* Per-chunk results (group_order.c): each chunk's groups land in one of two
 * sets of device column buffers (OCL_PARTS_FIELDS: key, count, up to
 * OCL_MAX_AGGS accumulators) and are downloaded on the transfer queue while
 * the next chunk runs; finish concatenates them (partial when a key may
 * repeat). */
#define OCL_PARTS_FIELDS (2 + OCL_MAX_AGGS)
typedef struct ocl_parts ocl_parts;
ocl_parts *ocl_parts_new(ocl_gq *q, uint64_t bound);
bool ocl_parts_next(ocl_gq *q, ocl_parts *p, const ocl_chunk *c, cl_mem *out,
                    cl_mem *count, uint64_t *cap);
int ocl_parts_args(ocl_gq *q, cl_kernel k, int a, const cl_mem *out);
bool ocl_parts_done(ocl_gq *q, ocl_parts *p);
bool ocl_parts_finish(ocl_gq *q, ocl_parts *p, grp_output *out);
uint64_t ocl_parts_chunks(const ocl_parts *p);
bool ocl_parts_repeats(const ocl_parts *p);
void ocl_parts_free(ocl_parts *p);

/* The order-based segmented reduction (group_order.c), also run by the sort
 * family over sorted keys and a row permutation. */
typedef struct ocl_og ocl_og;
ocl_og *ocl_og_new(ocl_gq *q, cl_program prog, bool sorted);
bool ocl_og_run(ocl_gq *q, ocl_og *g, const ocl_chunk *c, cl_mem sk,
                cl_mem perm, int64_t kmin, const cl_mem *out, cl_mem count,
                uint64_t cap);
void ocl_og_free(ocl_og *g);
int ocl_og_ipt(const ocl_gq *q);
uint64_t ocl_og_fixed_bytes(const ocl_gq *q);

/* The passes of the LSD radix sort (group_sort.c), also the radix family's
 * partitioning. */
typedef struct ocl_rs ocl_rs;
ocl_rs *ocl_rs_new(ocl_gq *q, cl_program prog, bool wide);
const char *ocl_rs_options(const ocl_gq *q, bool wide, char *buf, size_t len);
uint64_t ocl_rs_fixed_bytes(const ocl_gq *q, bool wide);
uint64_t ocl_rs_row_bytes(bool wide, int passes);
bool ocl_rs_sort(ocl_gq *q, ocl_rs *r, const ocl_chunk *c, int64_t kmin,
                 int bits, cl_mem *sk, cl_mem *perm);
void ocl_rs_free(ocl_rs *r);

#endif /* DQO_OCL_GROUP_H */
