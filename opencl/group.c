/*
 * group.c - the OpenCL grouping driver: checks what the device can run,
 * describes the query's shape to the kernels (-D options), runs a kernel
 * family over the input in chunks, and hands the result back.
 *
 * Where the rows come from:
 *  - resident: the key and every aggregate column are dev_cols on this
 *    device; each piece of them is one chunk (one piece unless a column is
 *    larger than the device's max allocation).
 *  - host memory: the rows stream through two sets of pinned staging
 *    buffers (CL_MEM_ALLOC_HOST_PTR, mapped once) and two sets of device
 *    buffers. For chunk i the host copies rows into staging set i % 2 (with
 *    the engine's parallel copy), enqueues the writes on the transfer queue
 *    (after the kernels that last read that device set), and the family's
 *    kernels on the compute queue after the writes: the copy and transfer
 *    of chunk i + 1 overlap the kernels of chunk i. Chunks are sized so
 *    that the family's tables, its per-row scratch and both buffer sets fit
 *    the device's memory budget; a table that does not fit is an error the
 *    engine answers by running on the CPU.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "opencl/ocl_group.h"

/* Streaming: the most chunks we aim for (more overlap, more launches) and
 * the fewest rows a chunk should have. */
#define STREAM_CHUNKS 8
#define STREAM_MIN_ROWS (UINT64_C(1) << 20)
/* Hash tables that overflow are retried this many times (4x larger). */
#define GROUP_ATTEMPTS 4

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static size_t type_bytes(dqo_type t)
{
    return t == DQO_TYPE_I64 || t == DQO_TYPE_F64 ? 8 : 4;
}

static const char *cl_type(dqo_type t)
{
    switch (t) {
    case DQO_TYPE_U32: return "uint";
    case DQO_TYPE_I32: return "int";
    case DQO_TYPE_F64: return "double";
    default: return "long";
    }
}

static const ocl_family *family_of(int kernel)
{
    switch (kernel) {
    case GRP_KERNEL_DIRECT: return &ocl_family_direct;
    case GRP_KERNEL_HASH: return &ocl_family_hash;
    case GRP_KERNEL_RADIX: return &ocl_family_radix;
    case GRP_KERNEL_SORT: return &ocl_family_sort;
    case GRP_KERNEL_ORDER: return &ocl_family_order;
    default: return NULL;
    }
}

/* The -D options of the query's shape and the identity entry. */
static bool shape_options(ocl_gq *q)
{
    const grp_input *in = q->in;
    const ocl_dev *d = q->dev;
    int words = (q->tab_k ? 1 : 0) + 1 + (q->packed ? 0 : q->nagg);
    q->tab_e = 1;
    while (q->tab_e < words)
        q->tab_e *= 2;
    bool f64 = false;
    size_t at = 0;
    at += (size_t)snprintf(q->opts + at, sizeof q->opts - at,
                           "-DKEY_T=%s -DNAGG=%d -DTAB_E=%d -DTAB_K=%d%s",
                           cl_type(in->key_type), q->nagg, q->tab_e,
                           q->tab_k ? 1 : 0, d->i64_ext ? " -DHAS_I64_EXT" : "");
    memset(q->pattern, 0, sizeof q->pattern);
    const int a0 = (q->tab_k ? 1 : 0) + 1;
    for (int j = 0; j < q->nagg; j++) {
        const grp_agg *a = &in->aggs[j];
        const bool facc = grp_agg_is_f64(a);
        /* COUNT of an f64 column reads no value: declare it long, so the
         * kernel needs no doubles for it. */
        const char *t = a->op == AGG_OP_COUNT && a->type == DQO_TYPE_F64
                            ? "long"
                            : cl_type(a->type);
        f64 |= strcmp(t, "double") == 0;
        const bool check =
            a->op == AGG_OP_SUM && !facc &&
            (a->type == DQO_TYPE_I64 || in->rows >= (UINT64_C(1) << 32));
        q->checks |= check;
        at += (size_t)snprintf(q->opts + at, sizeof q->opts - at,
                               " -DA%d_OP=%d -DA%d_T=%s -DA%d_F=%d"
                               " -DA%d_NULL=%d -DA%d_CHECK=%d",
                               j, (int)a->op, j, t, j, facc ? 1 : 0, j,
                               a->valid != NULL ? 1 : 0, j, check ? 1 : 0);
        uint64_t id = 0;
        if (a->op == AGG_OP_MIN)
            id = facc ? UINT64_C(0x7ff0000000000000) : (uint64_t)INT64_MAX;
        else if (a->op == AGG_OP_MAX)
            id = facc ? UINT64_C(0xfff0000000000000) : (uint64_t)INT64_MIN;
        q->pattern[a0 + j] = id;
    }
    if (f64) {
        if (!d->info.fp64)
            return ocl_errf(q->e, DQO_EUNSUPPORTED,
                            "OpenCL device cl:%d (%s) has no double "
                            "precision (cl_khr_fp64) for the f64 aggregates",
                            d->index, d->info.name);
        at += (size_t)snprintf(q->opts + at, sizeof q->opts - at,
                               " -DNEED_F64");
    }
    if (q->packed) {
        at += (size_t)snprintf(q->opts + at, sizeof q->opts - at,
                               " -DPACKED -DPACK_SB=%d", q->pack_sb);
        q->pattern[a0] = 0;
    }
    if (at >= sizeof q->opts)
        return ocl_errf(q->e, DQO_EINTERNAL, "kernel options too long");
    return true;
}

bool ocl_gq_pack(ocl_gq *q)
{
    const grp_input *in = q->in;
    if (q->no_pack || q->nagg != 1 || in->aggs[0].op != AGG_OP_SUM ||
        in->aggs[0].valid != NULL ||
        (in->aggs[0].type != DQO_TYPE_U32 && in->aggs[0].type != DQO_TYPE_I32))
        return false;
    /* The count needs the bits of `rows` plus a clear sign bit; the sum
     * keeps the rest, and must keep at least 33 bits to be worth it. */
    int cb = 1;
    while (cb < 63 && (in->rows >> cb) != 0)
        cb++;
    const int sb = 64 - (cb + 1);
    if (sb < 33)
        return false;
    q->packed = true;
    q->pack_sb = sb;
    return shape_options(q);
}

/* ------------------------------------------------------- family helpers */

cl_program ocl_gq_program(ocl_gq *q, const char *const *names,
                          const char *extra)
{
    char opts[2048];
    snprintf(opts, sizeof opts, "%s%s%s", q->opts, extra != NULL ? " " : "",
             extra != NULL ? extra : "");
    return ocl_dev_program(q->dev, names, opts, q->e);
}

cl_kernel ocl_gq_kernel(ocl_gq *q, cl_program p, const char *name)
{
    return OCL_MAKE(q->e, clCreateKernel, p, name);
}

bool ocl_gq_arg_mem(ocl_gq *q, cl_kernel k, int i, cl_mem m)
{
    return OCL_CALL(q->e, clSetKernelArg, k, (cl_uint)i, sizeof m, &m);
}

bool ocl_gq_arg_u64(ocl_gq *q, cl_kernel k, int i, uint64_t v)
{
    cl_ulong x = v;
    return OCL_CALL(q->e, clSetKernelArg, k, (cl_uint)i, sizeof x, &x);
}

bool ocl_gq_arg_i64(ocl_gq *q, cl_kernel k, int i, int64_t v)
{
    cl_long x = v;
    return OCL_CALL(q->e, clSetKernelArg, k, (cl_uint)i, sizeof x, &x);
}

bool ocl_gq_arg_int(ocl_gq *q, cl_kernel k, int i, int v)
{
    cl_int x = v;
    return OCL_CALL(q->e, clSetKernelArg, k, (cl_uint)i, sizeof x, &x);
}

bool ocl_gq_arg_local(ocl_gq *q, cl_kernel k, int i, size_t bytes)
{
    return OCL_CALL(q->e, clSetKernelArg, k, (cl_uint)i, bytes, NULL);
}

int ocl_gq_set_input(ocl_gq *q, cl_kernel k, const ocl_chunk *c)
{
    if (!ocl_gq_arg_mem(q, k, 0, c->keys))
        return -1;
    for (int j = 0; j < OCL_MAX_AGGS; j++) {
        cl_mem data = j < q->nagg ? c->data[j] : q->dummy;
        cl_mem valid = j < q->nagg && c->valid[j] != NULL ? c->valid[j]
                                                           : q->dummy;
        if (!ocl_gq_arg_mem(q, k, 1 + 2 * j, data) ||
            !ocl_gq_arg_mem(q, k, 2 + 2 * j, valid))
            return -1;
    }
    if (!ocl_gq_arg_u64(q, k, 17, c->off) ||
        !ocl_gq_arg_u64(q, k, 18, c->rows) ||
        !ocl_gq_arg_mem(q, k, 19, q->wrapped))
        return -1;
    return 20;
}

bool ocl_gq_run(ocl_gq *q, cl_kernel k, size_t global, size_t local)
{
    if (global == 0)
        return true;
    return OCL_CALL(q->e, clEnqueueNDRangeKernel, q->dev->q, k, 1, NULL,
                    &global, local != 0 ? &local : NULL, 0, NULL, NULL);
}

cl_mem ocl_gq_buffer(ocl_gq *q, uint64_t bytes)
{
    if (bytes == 0)
        bytes = 16;
    const ocl_dev *d = q->dev;
    const uint64_t most =
        d->info.max_alloc < d->budget ? d->info.max_alloc : d->budget;
    if (bytes > most) {
        ocl_errf(q->e, DQO_ENOMEM,
                 "a %" PRIu64 "-byte buffer exceeds what dqo allocates at "
                 "once on OpenCL device cl:%d (%" PRIu64 " bytes: the "
                 "device's largest allocation or dqo's memory budget there)",
                 bytes, d->index, most);
        return NULL;
    }
    return OCL_MAKE(q->e, clCreateBuffer, q->dev->ctx, CL_MEM_READ_WRITE,
                    (size_t)bytes, NULL);
}

bool ocl_gq_init_table(ocl_gq *q, cl_mem tab, uint64_t entries,
                       int64_t empty_key)
{
    uint64_t pat[16];
    memcpy(pat, q->pattern, sizeof pat);
    if (q->tab_k)
        pat[0] = (uint64_t)empty_key;
    return OCL_CALL(q->e, clEnqueueFillBuffer, q->dev->q, tab, pat,
                    (size_t)q->tab_e * 8, 0, (size_t)(entries * q->tab_e * 8),
                    0, NULL, NULL);
}

int ocl_gq_narrow_words(const ocl_gq *q)
{
    int words = 1;
    for (int j = 0; j < q->nagg; j++) {
        const grp_agg *a = &q->in->aggs[j];
        if (a->op == AGG_OP_COUNT)
            words += 1;
        else if (a->type == DQO_TYPE_U32 || a->type == DQO_TYPE_I32)
            words += a->op == AGG_OP_SUM ? 2 : 1;
        else
            return 0;
    }
    return words;
}

uint64_t ocl_gq_local_bytes(const ocl_gq *q)
{
    const uint64_t l = q->dev->info.local_mem;
    return l > 2048 ? l - 1024 : l;
}

size_t ocl_gq_wg(const ocl_gq *q)
{
    size_t wg = q->dev->info.is_cpu ? 64 : 256;
    while (wg > q->dev->max_wg)
        wg /= 2;
    return wg < 1 ? 1 : wg;
}

size_t ocl_gq_groups(const ocl_gq *q, uint64_t rows, size_t wg)
{
    uint64_t want = (uint64_t)q->dev->info.compute_units *
                    (q->dev->info.is_cpu ? 2 : 4);
    uint64_t most = (rows + wg - 1) / wg;
    if (want > most)
        want = most;
    return want < 1 ? 1 : (size_t)want;
}

/* A pinned host buffer of `bytes` mapped for reading: the device's DMA
 * writes it at full link speed (a pageable destination goes through the
 * driver's own staging at a fraction of it). */
static void *pinned_map(ocl_gq *q, uint64_t bytes, cl_mem *buf)
{
    return ocl_dev_pinned(q->dev, OCL_PINNED_DOWNLOAD, bytes, buf, q->e);
}

/* Allocates out's arrays for n groups. */
static bool out_alloc(ocl_gq *q, uint64_t n, grp_output *out)
{
    const uint64_t cap = n > 0 ? n : 1;
    out->keys = mem_alloc(cap * sizeof(int64_t));
    out->count = mem_alloc(cap * sizeof(int64_t));
    bool ok = out->keys != NULL && out->count != NULL;
    for (int j = 0; j < q->nagg && ok; j++)
        ok = (out->acc[j] = mem_alloc(cap * 8)) != NULL;
    if (!ok)
        return ocl_errf(q->e, DQO_ENOMEM,
                        "out of memory for %" PRIu64 " result groups", n);
    out->groups = n;
    return true;
}

static void host_copy(const grp_input *in, void *dst, const void *src,
                      size_t bytes);

bool ocl_gq_download_entries(ocl_gq *q, cl_mem tab, uint64_t n,
                             int64_t key_base, grp_output *out)
{
    (void)key_base;
    const double t = now_ms();
    const int oe = 2 + q->nagg;
    const uint64_t bytes = n * (uint64_t)oe * 8;
    cl_mem buf = NULL;
    const int64_t *w = pinned_map(q, bytes, &buf);
    bool ok = w != NULL &&
              (n == 0 || OCL_CALL(q->e, clEnqueueReadBuffer, q->dev->q, tab,
                                  CL_TRUE, 0, (size_t)bytes, (void *)w, 0,
                                  NULL, NULL)) &&
              out_alloc(q, n, out);
    for (uint64_t i = 0; ok && i < n; i++) {
        const int64_t *e = w + i * (uint64_t)oe;
        out->keys[i] = e[0];
        out->count[i] = e[1];
        for (int j = 0; j < q->nagg; j++)
            memcpy((char *)out->acc[j] + i * 8, &e[2 + j], 8);
    }
    q->download_ms += now_ms() - t;
    return ok;
}

/* Results up to this size are read straight into the result arrays: a
 * small pageable read costs less than the trip through staging. */
#define DOWNLOAD_DIRECT_MAX (UINT64_C(4) << 20)

/* Downloads n groups stored field-major in `src` (tab_compact's output)
 * through a pinned buffer, each array copied out in one piece. */
static bool download_fields(ocl_gq *q, cl_mem src, uint64_t n,
                            grp_output *out)
{
    const double t = now_ms();
    const int nf = 2 + q->nagg;
    const uint64_t bytes = n * (uint64_t)nf * 8;
    cl_mem buf = NULL;
    if (bytes <= DOWNLOAD_DIRECT_MAX) {
        bool ok = out_alloc(q, n, out);
        for (int f = 0; ok && f < nf && n > 0; f++) {
            void *dst = f == 0   ? (void *)out->keys
                        : f == 1 ? (void *)out->count
                                 : out->acc[f - 2];
            ok = OCL_CALL(q->e, clEnqueueReadBuffer, q->dev->q, src,
                          f == nf - 1 ? CL_TRUE : CL_FALSE,
                          (size_t)((uint64_t)f * n * 8), (size_t)(n * 8), dst,
                          0, NULL, NULL);
        }
        if (!ok)
            clFinish(q->dev->q); /* no read may still target out's arrays */
        q->download_ms += now_ms() - t;
        return ok;
    }
    const char *w = pinned_map(q, bytes, &buf);
    bool ok = w != NULL &&
              (n == 0 || OCL_CALL(q->e, clEnqueueReadBuffer, q->dev->q, src,
                                  CL_TRUE, 0, (size_t)bytes, (void *)w, 0,
                                  NULL, NULL)) &&
              out_alloc(q, n, out);
    for (int f = 0; ok && f < nf && n > 0; f++) {
        void *dst = f == 0   ? (void *)out->keys
                    : f == 1 ? (void *)out->count
                             : out->acc[f - 2];
        host_copy(q->in, dst, w + (uint64_t)f * n * 8, (size_t)(n * 8));
    }
    q->download_ms += now_ms() - t;
    return ok;
}

/* Tables up to this size are read whole and compacted on the host: three
 * compaction launches and a round trip cost more than the bytes. */
#define TABLE_HOST_COMPACT_MAX (UINT64_C(256) << 10)

/* The sum field of a packed word (as packed_sum in group_common.cl). */
static int64_t packed_sum(int64_t w, int sb)
{
    return (int64_t)((uint64_t)w << (64 - sb)) >> (64 - sb);
}

static bool table_out_host(ocl_gq *q, cl_mem tab, uint64_t entries,
                           int64_t key_base, grp_output *out)
{
    const uint64_t words = entries * (uint64_t)q->tab_e;
    int64_t *w = mem_alloc(words * 8);
    if (w == NULL)
        return ocl_errf(q->e, DQO_ENOMEM, "out of memory reading a table");
    bool ok = OCL_CALL(q->e, clEnqueueReadBuffer, q->dev->q, tab, CL_TRUE, 0,
                       (size_t)(words * 8), w, 0, NULL, NULL);
    q->ready_ms = now_ms() - q->t0;
    const double t = now_ms();
    const int kc = q->tab_k ? 1 : 0;
    uint64_t n = 0;
    for (uint64_t i = 0; ok && i < entries; i++)
        n += w[i * q->tab_e + kc] != 0;
    ok = ok && out_alloc(q, n, out);
    uint64_t g = 0;
    for (uint64_t i = 0; ok && i < entries; i++) {
        const int64_t *e = w + i * q->tab_e;
        if (e[kc] == 0)
            continue;
        out->keys[g] = q->tab_k ? e[0] : key_base + (int64_t)i;
        if (q->packed) {
            const int64_t sum = packed_sum(e[kc], q->pack_sb);
            out->count[g] = (e[kc] - sum) >> q->pack_sb;
            ((int64_t *)out->acc[0])[g] = sum;
        } else {
            out->count[g] = e[kc];
            for (int j = 0; j < q->nagg; j++)
                ((int64_t *)out->acc[j])[g] = e[kc + 1 + j];
        }
        g++;
    }
    mem_free(w);
    q->download_ms += now_ms() - t;
    return ok;
}

bool ocl_gq_table_out(ocl_gq *q, cl_mem tab, uint64_t entries,
                      int64_t key_base, grp_output *out)
{
    if (entries * (uint64_t)q->tab_e * 8 <= TABLE_HOST_COMPACT_MAX)
        return table_out_host(q, tab, entries, key_base, out);
    cl_program p = ocl_gq_program(q, (const char *const[]){"group_common",
                                                           NULL},
                                  NULL);
    cl_kernel kc = NULL, ks = NULL, kx = NULL;
    cl_mem counts = NULL, total = NULL, dst = NULL;
    bool ok = false;
    if (p == NULL)
        return false;
    const size_t wg = ocl_gq_wg(q);
    /* Blocks of entries: enough work-groups to fill the device, at most
     * 4096 so that one work-group scans the counts quickly. */
    uint64_t nblocks = ocl_gq_groups(q, entries, wg) * 4;
    if (nblocks > 4096)
        nblocks = 4096;
    uint64_t per = (entries + nblocks - 1) / nblocks;
    if (per < wg)
        per = wg;
    nblocks = entries > 0 ? (entries + per - 1) / per : 1;
    cl_ulong n = 0;
    if ((kc = ocl_gq_kernel(q, p, "tab_count")) == NULL ||
        (ks = ocl_gq_kernel(q, p, "scan_counts")) == NULL ||
        (kx = ocl_gq_kernel(q, p, "tab_compact")) == NULL ||
        (counts = ocl_gq_buffer(q, nblocks * 8)) == NULL ||
        (total = ocl_gq_buffer(q, 8)) == NULL)
        goto out;
    if (!ocl_gq_arg_mem(q, kc, 0, tab) || !ocl_gq_arg_u64(q, kc, 1, entries) ||
        !ocl_gq_arg_u64(q, kc, 2, per) || !ocl_gq_arg_mem(q, kc, 3, counts) ||
        !ocl_gq_arg_local(q, kc, 4, wg * sizeof(cl_uint)) ||
        !ocl_gq_run(q, kc, (size_t)nblocks * wg, wg))
        goto out;
    if (!ocl_gq_arg_mem(q, ks, 0, counts) ||
        !ocl_gq_arg_int(q, ks, 1, (int)nblocks) ||
        !ocl_gq_arg_mem(q, ks, 2, total) ||
        !ocl_gq_arg_local(q, ks, 3, wg * sizeof(cl_ulong)) ||
        !ocl_gq_run(q, ks, wg, wg))
        goto out;
    if (!OCL_CALL(q->e, clEnqueueReadBuffer, q->dev->q, total, CL_TRUE, 0,
                  sizeof n, &n, 0, NULL, NULL))
        goto out;
    if ((dst = ocl_gq_buffer(q, (n > 0 ? n : 1) * (uint64_t)(2 + q->nagg) *
                                    8)) == NULL)
        goto out;
    if (!ocl_gq_arg_mem(q, kx, 0, tab) || !ocl_gq_arg_u64(q, kx, 1, entries) ||
        !ocl_gq_arg_u64(q, kx, 2, per) || !ocl_gq_arg_mem(q, kx, 3, counts) ||
        !ocl_gq_arg_mem(q, kx, 4, dst) || !ocl_gq_arg_i64(q, kx, 5, key_base) ||
        !ocl_gq_arg_u64(q, kx, 6, n) ||
        !ocl_gq_arg_local(q, kx, 7, wg * sizeof(cl_uint)) ||
        !ocl_gq_run(q, kx, (size_t)nblocks * wg, wg) ||
        !OCL_CALL(q->e, clFinish, q->dev->q))
        goto out;
    q->ready_ms = now_ms() - q->t0;
    ok = download_fields(q, dst, n, out);
out:
    ocl_release_kernel(kc);
    ocl_release_kernel(ks);
    ocl_release_kernel(kx);
    ocl_release_mem(counts);
    ocl_release_mem(total);
    ocl_release_mem(dst);
    return ok;
}

/* ------------------------------------------------------------ streaming */

/* The columns a chunk carries: keys, then per aggregate data and valid. */
typedef struct stream_col {
    const void *src; /* host rows */
    size_t width;
    bool pinned; /* src is page-locked memory of this device: no staging */
} stream_col;

typedef struct stream {
    int ncols;
    stream_col col[1 + 2 * OCL_MAX_AGGS];
    uint64_t chunk_rows;
    cl_mem pinned[2][1 + 2 * OCL_MAX_AGGS]; /* the device's pool's */
    void *host[2][1 + 2 * OCL_MAX_AGGS];
    cl_mem dbuf[2][1 + 2 * OCL_MAX_AGGS];
    cl_event written[2], done[2];
    double copy_ms, wait_ms; /* host copies into staging; waits for it */
} stream;

static void stream_free(stream *s)
{
    for (int b = 0; b < 2; b++) {
        for (int c = 0; c < s->ncols; c++)
            ocl_release_mem(s->dbuf[b][c]);
        ocl_release_event(s->written[b]);
        ocl_release_event(s->done[b]);
    }
}

/* Plans the columns and the chunk size and allocates both buffer sets. */
static bool stream_begin(ocl_gq *q, stream *s)
{
    const grp_input *in = q->in;
    memset(s, 0, sizeof *s);
    s->col[s->ncols++] = (stream_col){in->keys, type_bytes(in->key_type), false};
    uint64_t row_in = type_bytes(in->key_type);
    for (int j = 0; j < q->nagg; j++) {
        s->col[s->ncols++] =
            (stream_col){in->aggs[j].data, type_bytes(in->aggs[j].type), false};
        row_in += type_bytes(in->aggs[j].type);
        if (in->aggs[j].valid != NULL) {
            s->col[s->ncols++] = (stream_col){in->aggs[j].valid, 1, false};
            row_in += 1;
        }
    }
    const ocl_dev *d = q->dev;
    for (int c = 0; c < s->ncols; c++)
        s->col[c].pinned = ocl_pinned_range(
            d, s->col[c].src, (size_t)(in->rows * s->col[c].width));
    if (q->fixed_bytes + 4096 >= d->budget)
        return ocl_errf(q->e, DQO_ENOMEM,
                        "the %s grouping's tables need %" PRIu64
                        " bytes; OpenCL device cl:%d's budget is %" PRIu64,
                        q->fam->name, q->fixed_bytes, d->index, d->budget);
    /* Two device sets of input plus the family's scratch per row. */
    uint64_t fit = (d->budget - q->fixed_bytes - 4096) /
                   (2 * row_in + q->row_bytes);
    uint64_t by_alloc = d->max_alloc / 8;
    uint64_t rows = (in->rows + STREAM_CHUNKS - 1) / STREAM_CHUNKS;
    if (rows < STREAM_MIN_ROWS)
        rows = STREAM_MIN_ROWS;
    if (rows > fit)
        rows = fit;
    if (rows > by_alloc)
        rows = by_alloc;
    if (rows > in->rows)
        rows = in->rows;
    if (rows == 0)
        return ocl_errf(q->e, DQO_ENOMEM,
                        "OpenCL device cl:%d's memory budget (%" PRIu64
                        " bytes) leaves no room for input rows",
                        d->index, d->budget);
    s->chunk_rows = rows;
    const int sets = in->rows > rows ? 2 : 1;
    for (int b = 0; b < sets; b++)
        for (int c = 0; c < s->ncols; c++) {
            const size_t bytes = (size_t)(rows * s->col[c].width);
            if (!s->col[c].pinned) {
                s->host[b][c] = ocl_dev_pinned(q->dev, b * 17 + c, bytes,
                                               &s->pinned[b][c], q->e);
                if (s->host[b][c] == NULL)
                    return false;
            }
            s->dbuf[b][c] = OCL_MAKE(q->e, clCreateBuffer, d->ctx,
                                     CL_MEM_READ_ONLY, bytes, NULL);
            if (s->dbuf[b][c] == NULL)
                return false;
        }
    return true;
}

static void host_copy(const grp_input *in, void *dst, const void *src,
                      size_t bytes)
{
    if (in->copy != NULL)
        in->copy(dst, src, bytes, in->threads);
    else
        memcpy(dst, src, bytes);
}

static bool stream_run(ocl_gq *q, stream *s)
{
    const grp_input *in = q->in;
    ocl_dev *d = q->dev;
    uint64_t i = 0;
    for (uint64_t first = 0; first < in->rows; first += s->chunk_rows, i++) {
        const int b = (int)(i & 1);
        const uint64_t rows = in->rows - first < s->chunk_rows
                                  ? in->rows - first
                                  : s->chunk_rows;
        /* Staging set b is free once its last write has completed. */
        double tw = now_ms();
        if (s->written[b] != NULL &&
            !OCL_CALL(q->e, clWaitForEvents, 1, &s->written[b]))
            return false;
        s->wait_ms += now_ms() - tw;
        ocl_release_event(s->written[b]);
        s->written[b] = NULL;
        ocl_chunk c;
        memset(&c, 0, sizeof c);
        c.rows = rows;
        c.first_row = first;
        int col = 0;
        for (; col < s->ncols; col++) {
            const size_t w = s->col[col].width;
            const char *from = (const char *)s->col[col].src + first * w;
            if (!s->col[col].pinned) {
                const double tc = now_ms();
                host_copy(in, s->host[b][col], from, (size_t)(rows * w));
                s->copy_ms += now_ms() - tc;
                from = s->host[b][col];
            }
            cl_event ev = NULL;
            const bool last = col == s->ncols - 1;
            if (!OCL_CALL(q->e, clEnqueueWriteBuffer, d->xfer,
                          s->dbuf[b][col], CL_FALSE, 0, (size_t)(rows * w),
                          from, s->done[b] != NULL ? 1 : 0,
                          s->done[b] != NULL ? &s->done[b] : NULL,
                          last ? &ev : NULL))
                return false;
            if (last) {
                ocl_count_object(ev);
                s->written[b] = ev;
            }
        }
        if (!OCL_CALL(q->e, clFlush, d->xfer))
            return false;
        col = 0;
        c.keys = s->dbuf[b][col++];
        for (int j = 0; j < q->nagg; j++) {
            c.data[j] = s->dbuf[b][col++];
            if (in->aggs[j].valid != NULL)
                c.valid[j] = s->dbuf[b][col++];
        }
        if (!OCL_CALL(q->e, clEnqueueBarrierWithWaitList, d->q, 1,
                      &s->written[b], NULL))
            return false;
        if (!q->fam->chunk(q, &c))
            return false;
        ocl_release_event(s->done[b]);
        s->done[b] = NULL;
        cl_event ev = NULL;
        if (!OCL_CALL(q->e, clEnqueueMarkerWithWaitList, d->q, 0, NULL, &ev))
            return false;
        ocl_count_object(ev);
        s->done[b] = ev;
        if (!OCL_CALL(q->e, clFlush, d->q))
            return false;
    }
    return true;
}

/* Resident input: one chunk per piece of the dev_cols. */
static bool resident_run(ocl_gq *q)
{
    const grp_input *in = q->in;
    const dev_col *k = in->keys_dev;
    for (int p = 0; p < k->npieces; p++) {
        ocl_chunk c;
        memset(&c, 0, sizeof c);
        c.first_row = (uint64_t)p * k->piece_rows;
        c.rows = in->rows - c.first_row < k->piece_rows
                     ? in->rows - c.first_row
                     : k->piece_rows;
        c.keys = k->data[p];
        for (int j = 0; j < q->nagg; j++) {
            c.data[j] = in->aggs[j].dev->data[p];
            c.valid[j] = in->aggs[j].valid != NULL ? in->aggs[j].dev->valid[p]
                                                   : NULL;
        }
        if (c.rows > 0 && !q->fam->chunk(q, &c))
            return false;
    }
    return true;
}

/* True when the key and every aggregate column live on this device with the
 * same pieces. */
static bool all_resident(const ocl_gq *q)
{
    const grp_input *in = q->in;
    const dev_col *k = in->keys_dev;
    if (k == NULL || k->dev != q->dev || k->rows != in->rows)
        return false;
    for (int j = 0; j < q->nagg; j++) {
        const dev_col *c = in->aggs[j].dev;
        if (c == NULL || c->dev != q->dev || c->rows != in->rows ||
            c->piece_rows != k->piece_rows || c->npieces != k->npieces ||
            (in->aggs[j].valid != NULL && c->valid[0] == NULL))
            return false;
    }
    return true;
}

/* One attempt of the whole query. */
static bool attempt(ocl_gq *q, grp_output *out, cl_int *flags)
{
    bool ok = false;
    stream s;
    memset(&s, 0, sizeof s);
    q->checks = false;
    q->packed = false;
    q->detail[0] = '\0';
    q->fixed_bytes = q->row_bytes = 0;
    q->state = NULL;
    if (!shape_options(q))
        return false;
    const cl_int zero = 0;
    if (!OCL_CALL(q->e, clEnqueueFillBuffer, q->dev->q, q->wrapped, &zero,
                  sizeof zero, 0, sizeof zero, 0, NULL, NULL))
        return false;
    const bool began = q->fam->begin(q);
    if (began) {
        if (q->in->rows == 0)
            ok = true; /* no chunk: the family's tables stay empty */
        else if (all_resident(q))
            ok = resident_run(q);
        else {
            ok = stream_begin(q, &s) && stream_run(q, &s);
            const size_t dl = strlen(q->detail);
            snprintf(q->detail + dl, sizeof q->detail - dl,
                     "%sstreamed in chunks of %" PRIu64 " rows (host copy "
                     "%.1f ms, waits %.1f ms)",
                     dl ? "; " : "", s.chunk_rows, s.copy_ms, s.wait_ms);
        }
        ok = ok && q->fam->finish(q, out);
    }
    /* The flag word, after everything the family ran (its finish may merge
     * partial sums too). */
    ok = ok && OCL_CALL(q->e, clEnqueueReadBuffer, q->dev->q, q->wrapped,
                        CL_TRUE, 0, sizeof *flags, flags, 0, NULL, NULL);
    q->fam->end(q);
    /* Nothing may still read the staging buffers when they go. */
    if (!ok) {
        clFinish(q->dev->xfer);
        clFinish(q->dev->q);
    }
    stream_free(&s);
    return ok;
}

dqo_status ocl_group(const grp_input *in, const granule *g, grp_output *out)
{
    memset(out, 0, sizeof *out);
    /* Not out->error itself: grp_output_free clears the whole output. */
    char msg[sizeof out->error];
    ocl_err e = ocl_err_init(msg, sizeof msg);
    const ocl_family *fam = family_of(g->kernel);
    if (fam == NULL) {
        ocl_errf(&e, DQO_EUNSUPPORTED,
                 "kernel %s has no OpenCL version (use hg, sphg, og, sog or "
                 "radix)",
                 grp_kernel_name((grp_kernel)g->kernel));
        goto fail;
    }
    if (in->naggs > OCL_MAX_AGGS) {
        ocl_errf(&e, DQO_EUNSUPPORTED,
                 "%d aggregates after lowering; the OpenCL kernels carry at "
                 "most %d",
                 in->naggs, OCL_MAX_AGGS);
        goto fail;
    }
    ocl_dev *d = ocl_dev_get(in->device, &e);
    if (d == NULL)
        goto fail;
    pthread_mutex_lock(&d->run);
    ocl_gq q;
    memset(&q, 0, sizeof q);
    q.dev = d;
    q.e = &e;
    q.in = in;
    q.g = g;
    q.fam = fam;
    q.nagg = in->naggs;
    q.tab_k = fam->keyed;
    q.t0 = now_ms();
    cl_int flags = 0;
    if ((q.dummy = ocl_gq_buffer(&q, 64)) == NULL ||
        (q.wrapped = ocl_gq_buffer(&q, sizeof(cl_int))) == NULL)
        goto done;
    for (q.attempt = 0; q.attempt < GROUP_ATTEMPTS; q.attempt++) {
        grp_output_free(out, in->naggs);
        out->groups = 0;
        flags = 0;
        if (!attempt(&q, out, &flags))
            break;
        if (flags & 4)
            q.no_pack = true; /* a packed sum overflowed: retry unpacked */
        else if (!(flags & 2))
            break;
    }
    if (e.status == DQO_OK && (flags & 6))
        ocl_errf(&e, DQO_EUNSUPPORTED,
                 "the hash table overflowed %d times (about %" PRIu64
                 " groups estimated)",
                 GROUP_ATTEMPTS, in->key_stats->distinct);
    if (e.status == DQO_OK && (flags & 1))
        ocl_errf(&e, DQO_EUNSUPPORTED,
                 "an i64 SUM wrapped past the int64 range on the device; "
                 "the exact answer (with its overflow check) needs the CPU");
done:
    ocl_release_mem(q.dummy);
    ocl_release_mem(q.wrapped);
    const dqo_status st = e.status;
    if (st != DQO_OK) {
        grp_output_free(out, in->naggs);
        snprintf(out->error, sizeof out->error, "%s", msg);
    } else {
        out->device_ms = q.ready_ms;
        out->download_ms = q.download_ms;
        snprintf(out->detail, sizeof out->detail, "cl:%d %s%s%.160s", d->index,
                 fam->name, q.detail[0] ? ", " : "", q.detail);
    }
    pthread_mutex_unlock(&d->run);
    ocl_dev_put(d);
    return st;
fail:
    snprintf(out->error, sizeof out->error, "%s", msg);
    return e.status;
}
