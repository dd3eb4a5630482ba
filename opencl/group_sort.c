/*
 * group_sort.c - the host side of sort and order-based grouping (SOG) on an
 * OpenCL device: per chunk a stable LSD radix sort of (key - min, row)
 * pairs, 8 bits a pass over only the bits in which keys can differ
 * (kernels/group_sort.cl), then the order-based reduction of
 * kernels/group_order.cl over the sorted keys, reading the aggregate
 * columns through the sorted row numbers.
 *
 * Each chunk's groups come out sorted by key; with several chunks a key
 * may come back in a later chunk's result (out->partial, the engine merges).
 * Constant keys need no sort: the plain order-based passes run.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "opencl/ocl_group.h"

/* The sort's blocks per compute unit (at most): each block is one
 * work-group of rs_hist and rs_scatter, and one digit's scan covers them. */
#define RS_BLOCKS_PER_CU_GPU 8
#define RS_BLOCKS_PER_CU_CPU 2
#define RS_COPIES 8 /* as in group_sort.cl */

struct ocl_rs {
    bool wide; /* SK_T is ulong */
    size_t wg;
    int ipt;
    cl_kernel kh, ks, kx;
    cl_mem hist, dtot;
    uint64_t hist_blocks; /* blocks hist holds */
    cl_mem sk[2], perm[2];
    uint64_t rows; /* rows the sk / perm buffers hold */
};

static uint64_t rs_max_blocks(const ocl_gq *q)
{
    uint64_t cu =
        q->dev->info.compute_units > 0 ? q->dev->info.compute_units : 1;
    return cu *
           (q->dev->info.is_cpu ? RS_BLOCKS_PER_CU_CPU : RS_BLOCKS_PER_CU_GPU);
}

/* Local bytes of rs_scatter for a tile of wg * ipt elements. */
static uint64_t rs_local(size_t wg, int ipt, bool wide)
{
    const uint64_t tile = (uint64_t)wg * (uint64_t)ipt;
    return 2 * tile * ((wide ? 8 : 4) + 4) + wg * 8 + 3 * 256 * 4;
}

/* Elements per work-item of a scatter tile: the most (up to 16) whose tile
 * takes at most 3/4 of local memory. */
static int rs_ipt(const ocl_gq *q, bool wide)
{
    const size_t wg = ocl_gq_wg(q);
    const uint64_t room = ocl_gq_local_bytes(q) / 4 * 3;
    int ipt = 16;
    while (ipt > 1 && rs_local(wg, ipt, wide) > room)
        ipt /= 2;
    return ipt;
}

const char *ocl_rs_options(const ocl_gq *q, bool wide, char *buf, size_t len)
{
    snprintf(buf, len, "-DSK_T=%s%s -DRS_IPT=%d -DOG_IPT=%d",
             wide ? "ulong" : "uint", wide ? " -DSK_WIDE" : "", rs_ipt(q, wide),
             ocl_og_ipt(q));
    return buf;
}

/* Blocks of a pass over `rows` elements in tiles of `tile`, and the
 * elements of each (*per). */
static uint64_t rs_blocks(const ocl_gq *q, uint64_t rows, uint64_t tile,
                          uint64_t *per)
{
    uint64_t nb = (rows + tile - 1) / tile;
    if (nb > rs_max_blocks(q))
        nb = rs_max_blocks(q);
    if (nb < 1)
        nb = 1;
    *per = (rows + nb - 1) / nb;
    return *per > 0 ? (rows + *per - 1) / *per : 1;
}

/* The histograms of the largest chunk (at most all rows) and the digit
 * totals. */
uint64_t ocl_rs_fixed_bytes(const ocl_gq *q, bool wide)
{
    uint64_t per;
    const uint64_t tile = (uint64_t)ocl_gq_wg(q) * (uint64_t)rs_ipt(q, wide);
    return (rs_blocks(q, q->in->rows, tile, &per) + 1) * 256 * 4;
}

uint64_t ocl_rs_row_bytes(bool wide, int passes)
{
    return (uint64_t)(passes > 1 ? 2 : 1) * ((wide ? 8 : 4) + 4);
}

ocl_rs *ocl_rs_new(ocl_gq *q, cl_program prog, bool wide)
{
    ocl_rs *r = mem_calloc(1, sizeof *r);
    if (r == NULL) {
        ocl_errf(q->e, DQO_ENOMEM, "out of memory");
        return NULL;
    }
    r->wide = wide;
    r->wg = ocl_gq_wg(q);
    r->ipt = rs_ipt(q, wide);
    if (rs_local(r->wg, r->ipt, wide) > ocl_gq_local_bytes(q)) {
        ocl_errf(q->e, DQO_EUNSUPPORTED,
                 "OpenCL device cl:%d has too little local memory (%" PRIu64
                 " bytes) for the radix sort's tiles",
                 q->dev->index, ocl_gq_local_bytes(q));
        ocl_rs_free(r);
        return NULL;
    }
    if ((r->kh = ocl_gq_kernel(q, prog, "rs_hist")) == NULL ||
        (r->ks = ocl_gq_kernel(q, prog, "rs_scan")) == NULL ||
        (r->kx = ocl_gq_kernel(q, prog, "rs_scatter")) == NULL ||
        (r->dtot = ocl_gq_buffer(q, 256 * 4)) == NULL) {
        ocl_rs_free(r);
        return NULL;
    }
    return r;
}

void ocl_rs_free(ocl_rs *r)
{
    if (r == NULL)
        return;
    ocl_release_kernel(r->kh);
    ocl_release_kernel(r->ks);
    ocl_release_kernel(r->kx);
    ocl_release_mem(r->hist);
    ocl_release_mem(r->dtot);
    for (int i = 0; i < 2; i++) {
        ocl_release_mem(r->sk[i]);
        ocl_release_mem(r->perm[i]);
    }
    mem_free(r);
}

/* Sorts chunk c's (key - kmin, row) pairs by the low `bits` bits of RS_PID
 * (bits >= 1); *sk and *perm get the sorted pairs. */
bool ocl_rs_sort(ocl_gq *q, ocl_rs *r, const ocl_chunk *c, int64_t kmin,
                 int bits, cl_mem *sk, cl_mem *perm)
{
    if (c->rows > UINT32_MAX)
        return ocl_errf(q->e, DQO_EUNSUPPORTED,
                        "a chunk of %" PRIu64 " rows: the device sort numbers "
                        "rows with 32 bits",
                        c->rows);
    const int passes = (bits + 7) / 8;
    const int sets = passes > 1 ? 2 : 1;
    const uint64_t kb = r->wide ? 8 : 4;
    if (r->rows < c->rows) {
        for (int i = 0; i < 2; i++) {
            ocl_release_mem(r->sk[i]);
            ocl_release_mem(r->perm[i]);
            r->sk[i] = r->perm[i] = NULL;
        }
        r->rows = 0;
        for (int i = 0; i < sets; i++)
            if ((r->sk[i] = ocl_gq_buffer(q, c->rows * kb)) == NULL ||
                (r->perm[i] = ocl_gq_buffer(q, c->rows * 4)) == NULL)
                return false;
        r->rows = c->rows;
    }
    const size_t wg = r->wg;
    const uint64_t tile = (uint64_t)wg * (uint64_t)r->ipt;
    uint64_t per;
    const uint64_t nb = rs_blocks(q, c->rows, tile, &per);
    if (r->hist_blocks < nb) {
        ocl_release_mem(r->hist);
        r->hist_blocks = 0;
        if ((r->hist = ocl_gq_buffer(q, nb * 256 * 4)) == NULL)
            return false;
        r->hist_blocks = nb;
    }
    for (int p = 0; p < passes; p++) {
        const int dst = p & 1, src = (p - 1) & 1;
        const int first = p == 0;
        cl_mem sk_in = first ? q->dummy : r->sk[src];
        cl_mem perm_in = first ? q->dummy : r->perm[src];
        const int shift = 8 * p;
        const int dbits = bits - shift < 8 ? bits - shift : 8;
        int a;
        if ((a = ocl_gq_set_input(q, r->kh, c)) < 0 ||
            !ocl_gq_arg_mem(q, r->kh, a, sk_in) ||
            !ocl_gq_arg_int(q, r->kh, a + 1, first) ||
            !ocl_gq_arg_i64(q, r->kh, a + 2, kmin) ||
            !ocl_gq_arg_int(q, r->kh, a + 3, shift) ||
            !ocl_gq_arg_u64(q, r->kh, a + 4, per) ||
            !ocl_gq_arg_mem(q, r->kh, a + 5, r->hist) ||
            !ocl_gq_arg_local(q, r->kh, a + 6, 256 * RS_COPIES * 4) ||
            !ocl_gq_run(q, r->kh, (size_t)nb * wg, wg))
            return false;
        if (!ocl_gq_arg_mem(q, r->ks, 0, r->hist) ||
            !ocl_gq_arg_int(q, r->ks, 1, (int)nb) ||
            !ocl_gq_arg_mem(q, r->ks, 2, r->dtot) ||
            !ocl_gq_arg_local(q, r->ks, 3, wg * 4) ||
            !ocl_gq_run(q, r->ks, 256 * wg, wg))
            return false;
        if ((a = ocl_gq_set_input(q, r->kx, c)) < 0 ||
            !ocl_gq_arg_mem(q, r->kx, a, sk_in) ||
            !ocl_gq_arg_mem(q, r->kx, a + 1, perm_in) ||
            !ocl_gq_arg_int(q, r->kx, a + 2, first) ||
            !ocl_gq_arg_i64(q, r->kx, a + 3, kmin) ||
            !ocl_gq_arg_int(q, r->kx, a + 4, shift) ||
            !ocl_gq_arg_int(q, r->kx, a + 5, dbits) ||
            !ocl_gq_arg_u64(q, r->kx, a + 6, per) ||
            !ocl_gq_arg_mem(q, r->kx, a + 7, r->hist) ||
            !ocl_gq_arg_mem(q, r->kx, a + 8, r->dtot) ||
            !ocl_gq_arg_mem(q, r->kx, a + 9, r->sk[dst]) ||
            !ocl_gq_arg_mem(q, r->kx, a + 10, r->perm[dst]) ||
            !ocl_gq_arg_local(q, r->kx, a + 11, 2 * tile * kb) ||
            !ocl_gq_arg_local(q, r->kx, a + 12, 2 * tile * 4) ||
            !ocl_gq_arg_local(q, r->kx, a + 13, wg * 8) ||
            !ocl_gq_arg_local(q, r->kx, a + 14, 256 * 4) ||
            !ocl_gq_arg_local(q, r->kx, a + 15, 256 * 4) ||
            !ocl_gq_arg_local(q, r->kx, a + 16, 256 * 4) ||
            !ocl_gq_run(q, r->kx, (size_t)nb * wg, wg))
            return false;
    }
    *sk = r->sk[(passes - 1) & 1];
    *perm = r->perm[(passes - 1) & 1];
    return true;
}

/* ----------------------------------------------------------- the family */

typedef struct sort_state {
    ocl_parts *parts;
    ocl_og *og;
    ocl_rs *rs; /* NULL: constant keys, no sort */
    int bits;
    int64_t kmin;
} sort_state;

static int bits_of(uint64_t v)
{
    return v == 0 ? 0 : 64 - __builtin_clzll(v);
}

static bool sort_begin(ocl_gq *q)
{
    sort_state *s = mem_calloc(1, sizeof *s);
    if (s == NULL)
        return ocl_errf(q->e, DQO_ENOMEM, "out of memory");
    q->state = s;
    const dqo_column_stats *ks = q->in->key_stats;
    const uint64_t rows = q->in->rows;
    const uint64_t range =
        rows == 0 ? 0 : (uint64_t)ks->max - (uint64_t)ks->min;
    s->kmin = rows == 0 ? 0 : ks->min;
    s->bits = bits_of(range);
    const bool wide = range > UINT32_MAX;
    /* Groups per chunk: at most the key range and the rows; the estimate
     * (with room for its error) unless retrying. */
    uint64_t bound = rows;
    if (range < bound)
        bound = range + 1;
    uint64_t est = ks->distinct + ks->distinct / 8 + 1024;
    if (q->attempt == 0 && est < bound)
        bound = est;
    if ((s->parts = ocl_parts_new(q, bound)) == NULL)
        return false;
    q->fixed_bytes += ocl_og_fixed_bytes(q);
    char extra[160];
    cl_program p;
    if (s->bits == 0) {
        snprintf(extra, sizeof extra, "-DOG_IPT=%d", ocl_og_ipt(q));
        p = ocl_gq_program(
            q, (const char *const[]){"group_common", "group_order", NULL},
            extra);
        if (p == NULL || (s->og = ocl_og_new(q, p, false)) == NULL)
            return false;
        snprintf(q->detail, sizeof q->detail,
                 "constant key: no sort, segmented reduction");
        return true;
    }
    const int passes = (s->bits + 7) / 8;
    q->fixed_bytes += ocl_rs_fixed_bytes(q, wide);
    q->row_bytes += ocl_rs_row_bytes(wide, passes);
    char rso[128];
    snprintf(extra, sizeof extra, "-DOG_SORTED %s",
             ocl_rs_options(q, wide, rso, sizeof rso));
    p = ocl_gq_program(q,
                       (const char *const[]){"group_common", "group_order",
                                             "group_sort", NULL},
                       extra);
    if (p == NULL || (s->og = ocl_og_new(q, p, true)) == NULL ||
        (s->rs = ocl_rs_new(q, p, wide)) == NULL)
        return false;
    snprintf(q->detail, sizeof q->detail,
             "radix sort of %d key bits (%d pass%s, %s), then runs reduced",
             s->bits, passes, passes > 1 ? "es" : "", wide ? "u64" : "u32");
    return true;
}

static bool sort_chunk(ocl_gq *q, const ocl_chunk *c)
{
    sort_state *s = q->state;
    cl_mem out[OCL_PARTS_FIELDS], count, sk = NULL, perm = NULL;
    uint64_t cap;
    if (!ocl_parts_next(q, s->parts, c, out, &count, &cap))
        return false;
    if (s->rs != NULL &&
        !ocl_rs_sort(q, s->rs, c, s->kmin, s->bits, &sk, &perm))
        return false;
    return ocl_og_run(q, s->og, c, sk, perm, s->kmin, out, count, cap) &&
           ocl_parts_done(q, s->parts);
}

static bool sort_finish(ocl_gq *q, grp_output *out)
{
    sort_state *s = q->state;
    if (!ocl_parts_finish(q, s->parts, out))
        return false;
    out->partial =
        ocl_parts_chunks(s->parts) > 1 || ocl_parts_repeats(s->parts);
    return true;
}

static void sort_end(ocl_gq *q)
{
    sort_state *s = q->state;
    if (s == NULL)
        return;
    ocl_og_free(s->og);
    ocl_rs_free(s->rs);
    ocl_parts_free(s->parts);
    mem_free(s);
    q->state = NULL;
}

const ocl_family ocl_family_sort = {
    .name = "sort",
    .keyed = true,
    .begin = sort_begin,
    .chunk = sort_chunk,
    .finish = sort_finish,
    .end = sort_end,
};
