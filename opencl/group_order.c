/*
 * group_order.c - the host side of order-based grouping on an OpenCL device
 * (kernels/group_order.cl): a segmented reduction over rows clustered by
 * key, one output entry per run of equal keys.
 *
 * Also here, shared with the sort and radix families (their files declare
 * these functions; see the note at ocl_parts below):
 *
 *   ocl_parts  the per-chunk results. The families whose result is one
 *              chunk's groups (order, sort, radix) write each chunk's
 *              entries as columns (a buffer per field: keys, counts,
 *              accumulators) into one of two sets of buffers, with the entry
 *              count in a device word; while the kernels of chunk i run, the
 *              host downloads chunk i - 1's entries (blocking reads on the
 *              transfer queue after a marker of that chunk's kernels)
 *              straight into the host result's arrays, so results of any
 *              size stream back with the input. Equal keys at the end of one
 *              chunk's result and the start of the next are merged on the
 *              host (a run that a chunk boundary splits).
 *   ocl_og     the passes of kernels/group_order.cl over one chunk, plain
 *              (the order family) or through a sort's permutation (sort).
 *
 * The result of the order family holds a key more than once only when the
 * input is not sorted (a key in several runs): out->partial then. Sorted
 * input (ascending, descending or constant, from the key statistics) gives
 * one entry per key whatever the number of chunks.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "opencl/ocl_group.h"

/* ------------------------------------------------------------------ parts */

/* Most blocks (work-groups) an order pass cuts a chunk into: one
 * work-group scans their counts. */
#define OG_MAX_BLOCKS 4096
/* Rows per work-item of og_emit (OG_IPT in the kernel). */
#define OG_IPT_GPU 8
#define OG_IPT_CPU 16

struct ocl_parts {
    uint64_t bound; /* the most entries one chunk can have */
    int nf;         /* fields per entry: key, count, accumulators */
    /* The entries of the chunk of that parity: a buffer per field. */
    cl_mem ob[2][OCL_PARTS_FIELDS];
    uint64_t cap[2];
    cl_mem cnt[2];     /* one ulong: entries of that chunk */
    cl_event ready[2]; /* after the chunk's kernels */
    int pending;       /* parity of a chunk not downloaded yet, or -1 */
    uint64_t chunks;
    bool overflow; /* a chunk had more entries than its buffer */
    bool repeats;  /* equal adjacent keys could not be merged */
    /* The result so far (host memory). */
    uint64_t n, hcap;
    int64_t *keys, *count;
    void *acc[OCL_MAX_AGGS];
};

static double ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Adds the output buffers to the query's memory plan: both buffers hold
 * `bound` entries when that is small against the budget, else one entry per
 * row of a chunk (allocated at the first chunk, min(bound, rows)). */
ocl_parts *ocl_parts_new(ocl_gq *q, uint64_t bound)
{
    ocl_parts *p = mem_calloc(1, sizeof *p);
    if (p == NULL) {
        ocl_errf(q->e, DQO_ENOMEM, "out of memory");
        return NULL;
    }
    p->pending = -1;
    p->nf = 2 + q->nagg;
    p->bound = bound > 0 ? bound : 1;
    const uint64_t entry = (uint64_t)p->nf * 8;
    if (p->bound <= q->dev->budget / 4 / (2 * entry))
        q->fixed_bytes += 2 * p->bound * entry;
    else
        q->row_bytes += 2 * entry;
    return p;
}

uint64_t ocl_parts_chunks(const ocl_parts *p)
{
    return p->chunks;
}

bool ocl_parts_repeats(const ocl_parts *p)
{
    return p->repeats;
}

/* The output columns of the next chunk (out: OCL_PARTS_FIELDS buffers,
 * q->dummy for the unused ones), the word for their count and their
 * capacity. A column of a chunk's rows fits the device's largest allocation
 * as the chunk's input columns do. */
bool ocl_parts_next(ocl_gq *q, ocl_parts *p, const ocl_chunk *c, cl_mem *out,
                    cl_mem *count, uint64_t *cap)
{
    const int b = (int)(p->chunks & 1);
    uint64_t want = p->bound < c->rows ? p->bound : c->rows;
    if (p->cap[b] < want) {
        /* Commands already enqueued keep a released buffer alive. */
        for (int f = 0; f < p->nf; f++) {
            ocl_release_mem(p->ob[b][f]);
            p->ob[b][f] = NULL;
        }
        p->cap[b] = 0;
        for (int f = 0; f < p->nf; f++)
            if ((p->ob[b][f] = ocl_gq_buffer(q, want * 8)) == NULL)
                return false;
        p->cap[b] = want;
    }
    if (p->cnt[b] == NULL && (p->cnt[b] = ocl_gq_buffer(q, 8)) == NULL)
        return false;
    const cl_ulong zero = 0;
    if (!OCL_CALL(q->e, clEnqueueFillBuffer, q->dev->q, p->cnt[b], &zero,
                  sizeof zero, 0, sizeof zero, 0, NULL, NULL))
        return false;
    for (int f = 0; f < OCL_PARTS_FIELDS; f++)
        out[f] = f < p->nf ? p->ob[b][f] : q->dummy;
    *count = p->cnt[b];
    *cap = p->cap[b];
    return true;
}

/* Grows the host result to hold `need` entries. */
static bool parts_reserve(ocl_gq *q, ocl_parts *p, uint64_t need)
{
    if (need <= p->hcap)
        return true;
    uint64_t cap = p->hcap > 0 ? p->hcap * 2 : 1024;
    if (cap < need)
        cap = need;
    int64_t *k = mem_realloc(p->keys, cap * 8);
    if (k != NULL)
        p->keys = k;
    int64_t *n = k != NULL ? mem_realloc(p->count, cap * 8) : NULL;
    if (n != NULL)
        p->count = n;
    bool ok = k != NULL && n != NULL;
    for (int j = 0; j < q->nagg && ok; j++) {
        void *a = mem_realloc(p->acc[j], cap * 8);
        if (a != NULL)
            p->acc[j] = a;
        ok = a != NULL;
    }
    if (!ok)
        return ocl_errf(q->e, DQO_ENOMEM,
                        "out of memory for %" PRIu64 " result groups", need);
    p->hcap = cap;
    return true;
}

/* Folds entry s of the host result into entry d (same key); false when an
 * integer sum would leave int64 (both entries then stay). */
static bool parts_merge(const ocl_gq *q, ocl_parts *p, uint64_t d, uint64_t s)
{
    int64_t c;
    if (__builtin_add_overflow(p->count[d], p->count[s], &c))
        return false;
    int64_t v[OCL_MAX_AGGS];
    for (int j = 0; j < q->nagg; j++) {
        const grp_agg *a = &q->in->aggs[j];
        if (grp_agg_is_f64(a)) {
            double x = ((double *)p->acc[j])[d], y = ((double *)p->acc[j])[s];
            if (a->op == AGG_OP_SUM)
                x += y;
            else if (a->op == AGG_OP_MIN ? y < x : y > x)
                x = y;
            memcpy(&v[j], &x, 8);
            continue;
        }
        int64_t x = ((int64_t *)p->acc[j])[d], y = ((int64_t *)p->acc[j])[s];
        if (a->op == AGG_OP_COUNT || a->op == AGG_OP_SUM) {
            if (__builtin_add_overflow(x, y, &x))
                return false;
        } else if (a->op == AGG_OP_MIN ? y < x : y > x) {
            x = y;
        }
        v[j] = x;
    }
    p->count[d] = c;
    for (int j = 0; j < q->nagg; j++)
        memcpy((char *)p->acc[j] + d * 8, &v[j], 8);
    return true;
}

/* Downloads the entries of the chunk of parity b and appends them. */
static bool parts_collect(ocl_gq *q, ocl_parts *p, int b, bool last)
{
    cl_ulong n = 0;
    cl_event ev = p->ready[b];
    if (!OCL_CALL(q->e, clEnqueueReadBuffer, q->dev->xfer, p->cnt[b], CL_TRUE,
                  0, sizeof n, &n, 1, &ev, NULL))
        return false;
    ocl_release_event(p->ready[b]);
    p->ready[b] = NULL;
    p->pending = -1;
    const double t = ms_now();
    if (last)
        q->ready_ms = t - q->t0;
    if (n > p->cap[b] || p->overflow) {
        /* The kernels flagged WRAP_TABLE: the driver runs again. */
        p->overflow = true;
        return true;
    }
    if (n == 0)
        return true;
    if (!parts_reserve(q, p, p->n + n))
        return false;
    void *dst[2 + OCL_MAX_AGGS];
    dst[0] = p->keys;
    dst[1] = p->count;
    for (int j = 0; j < q->nagg; j++)
        dst[2 + j] = p->acc[j];
    for (int f = 0; f < p->nf; f++)
        if (!OCL_CALL(q->e, clEnqueueReadBuffer, q->dev->xfer, p->ob[b][f],
                      CL_TRUE, 0, (size_t)(n * 8), (char *)dst[f] + p->n * 8, 0,
                      NULL, NULL))
            return false;
    /* A run split by the chunk boundary (or a key that ends one chunk's
     * sorted groups and starts the next's): one entry. */
    uint64_t at = p->n;
    if (at > 0 && p->keys[at - 1] == p->keys[at]) {
        if (parts_merge(q, p, at - 1, at)) {
            for (int f = 0; f < p->nf; f++)
                memmove((char *)dst[f] + at * 8, (char *)dst[f] + (at + 1) * 8,
                        (size_t)((n - 1) * 8));
            n--;
        } else {
            p->repeats = true;
        }
    }
    p->n += n;
    q->download_ms += ms_now() - t;
    return true;
}

/* Sets the output columns as arguments a .. a + OCL_PARTS_FIELDS - 1 of
 * k (GRP_OUT in the kernels); the next index or -1. */
int ocl_parts_args(ocl_gq *q, cl_kernel k, int a, const cl_mem *out)
{
    for (int f = 0; f < OCL_PARTS_FIELDS; f++)
        if (!ocl_gq_arg_mem(q, k, a + f, out[f]))
            return -1;
    return a + OCL_PARTS_FIELDS;
}

bool ocl_parts_done(ocl_gq *q, ocl_parts *p)
{
    const int b = (int)(p->chunks & 1);
    cl_event ev = NULL;
    if (!OCL_CALL(q->e, clEnqueueMarkerWithWaitList, q->dev->q, 0, NULL, &ev))
        return false;
    ocl_count_object(ev);
    p->ready[b] = ev;
    p->chunks++;
    /* The marker's queue must be flushed before another queue waits on
     * it. */
    if (!OCL_CALL(q->e, clFlush, q->dev->q))
        return false;
    if (p->pending >= 0 && !parts_collect(q, p, p->pending, false))
        return false;
    p->pending = b;
    return true;
}

bool ocl_parts_finish(ocl_gq *q, ocl_parts *p, grp_output *out)
{
    if (p->pending >= 0 && !parts_collect(q, p, p->pending, true))
        return false;
    if (p->chunks == 0)
        q->ready_ms = ms_now() - q->t0;
    if (!parts_reserve(q, p, 1))
        return false;
    out->keys = p->keys;
    out->count = p->count;
    for (int j = 0; j < q->nagg; j++)
        out->acc[j] = p->acc[j];
    out->groups = p->overflow ? 0 : p->n;
    p->keys = p->count = NULL;
    memset(p->acc, 0, sizeof p->acc);
    p->n = p->hcap = 0;
    return true;
}

void ocl_parts_free(ocl_parts *p)
{
    if (p == NULL)
        return;
    for (int b = 0; b < 2; b++) {
        for (int f = 0; f < OCL_PARTS_FIELDS; f++)
            ocl_release_mem(p->ob[b][f]);
        ocl_release_mem(p->cnt[b]);
        ocl_release_event(p->ready[b]);
    }
    mem_free(p->keys);
    mem_free(p->count);
    for (int j = 0; j < OCL_MAX_AGGS; j++)
        mem_free(p->acc[j]);
    mem_free(p);
}

/* ------------------------------------------------- order-based passes */

struct ocl_og {
    bool sorted;
    size_t wg;
    int ipt;
    cl_kernel kc, ks, ke, kf;
    cl_mem counts, bnd; /* per block: a count, two partials */
    uint64_t blocks;    /* blocks they hold */
};

int ocl_og_ipt(const ocl_gq *q)
{
    return q->dev->info.is_cpu ? OG_IPT_CPU : OG_IPT_GPU;
}

/* The blocks of a pass over `rows` rows and the rows of each (*per): tiles
 * of wg x ipt rows, at most OG_MAX_BLOCKS (a few per compute unit on a
 * CPU). */
static uint64_t og_blocks(const ocl_gq *q, uint64_t rows, uint64_t *per)
{
    const uint64_t tile = (uint64_t)ocl_gq_wg(q) * (uint64_t)ocl_og_ipt(q);
    uint64_t want = q->dev->info.is_cpu
                        ? (uint64_t)q->dev->info.compute_units * 4
                        : OG_MAX_BLOCKS;
    if (want > OG_MAX_BLOCKS)
        want = OG_MAX_BLOCKS;
    if (want < 1)
        want = 1;
    uint64_t p = (rows + want - 1) / want;
    if (p < tile)
        p = tile;
    *per = p;
    return rows == 0 ? 0 : (rows + p - 1) / p;
}

/* Device bytes of the block counts and boundary partials of the largest
 * chunk (at most all rows). */
uint64_t ocl_og_fixed_bytes(const ocl_gq *q)
{
    uint64_t per;
    const uint64_t nb = og_blocks(q, q->in->rows, &per);
    return (nb > 0 ? nb : 1) * (8 + 2 * (uint64_t)(1 + q->nagg) * 8);
}

ocl_og *ocl_og_new(ocl_gq *q, cl_program prog, bool sorted)
{
    ocl_og *g = mem_calloc(1, sizeof *g);
    if (g == NULL) {
        ocl_errf(q->e, DQO_ENOMEM, "out of memory");
        return NULL;
    }
    g->sorted = sorted;
    g->wg = ocl_gq_wg(q);
    g->ipt = ocl_og_ipt(q);
    if ((g->kc = ocl_gq_kernel(q, prog, "og_count")) == NULL ||
        (g->ks = ocl_gq_kernel(q, prog, "scan_counts")) == NULL ||
        (g->ke = ocl_gq_kernel(q, prog, "og_emit")) == NULL ||
        (g->kf = ocl_gq_kernel(q, prog, "og_fix")) == NULL) {
        ocl_og_free(g);
        return NULL;
    }
    return g;
}

void ocl_og_free(ocl_og *g)
{
    if (g == NULL)
        return;
    ocl_release_kernel(g->kc);
    ocl_release_kernel(g->ks);
    ocl_release_kernel(g->ke);
    ocl_release_kernel(g->kf);
    ocl_release_mem(g->counts);
    ocl_release_mem(g->bnd);
    mem_free(g);
}

/* The input block and, sorted, the permutation arguments; the next index
 * or -1. */
static int og_args(ocl_gq *q, ocl_og *g, cl_kernel k, const ocl_chunk *c,
                   cl_mem sk, cl_mem perm, int64_t kmin)
{
    int a = ocl_gq_set_input(q, k, c);
    if (a < 0 || !g->sorted)
        return a;
    if (!ocl_gq_arg_mem(q, k, a, sk) || !ocl_gq_arg_mem(q, k, a + 1, perm) ||
        !ocl_gq_arg_i64(q, k, a + 2, kmin))
        return -1;
    return a + 3;
}

/* Enqueues the order-based grouping of chunk c: entries into `out` (cap
 * entries as columns), their number into `count`. */
bool ocl_og_run(ocl_gq *q, ocl_og *g, const ocl_chunk *c, cl_mem sk,
                cl_mem perm, int64_t kmin, const cl_mem *out, cl_mem count,
                uint64_t cap)
{
    const size_t wg = g->wg;
    uint64_t per;
    const uint64_t nb = og_blocks(q, c->rows, &per);
    const uint64_t nw = 1 + (uint64_t)q->nagg;
    if (g->blocks < nb) {
        /* Commands already enqueued keep released buffers alive. */
        ocl_release_mem(g->counts);
        ocl_release_mem(g->bnd);
        g->counts = g->bnd = NULL;
        g->blocks = 0;
        if ((g->counts = ocl_gq_buffer(q, nb * 8)) == NULL ||
            (g->bnd = ocl_gq_buffer(q, nb * 2 * nw * 8)) == NULL)
            return false;
        g->blocks = nb;
    }
    int a;
    /* Heads per block. */
    if ((a = og_args(q, g, g->kc, c, sk, perm, kmin)) < 0 ||
        !ocl_gq_arg_u64(q, g->kc, a, per) ||
        !ocl_gq_arg_mem(q, g->kc, a + 1, g->counts) ||
        !ocl_gq_arg_local(q, g->kc, a + 2, wg * sizeof(cl_uint)) ||
        !ocl_gq_run(q, g->kc, (size_t)nb * wg, wg))
        return false;
    /* Output index of each block's first head; the total is the count. */
    if (!ocl_gq_arg_mem(q, g->ks, 0, g->counts) ||
        !ocl_gq_arg_int(q, g->ks, 1, (int)nb) ||
        !ocl_gq_arg_mem(q, g->ks, 2, count) ||
        !ocl_gq_arg_local(q, g->ks, 3, wg * sizeof(cl_ulong)) ||
        !ocl_gq_run(q, g->ks, wg, wg))
        return false;
    if ((a = og_args(q, g, g->ke, c, sk, perm, kmin)) < 0 ||
        !ocl_gq_arg_u64(q, g->ke, a, per) ||
        !ocl_gq_arg_mem(q, g->ke, a + 1, g->counts) ||
        (a = ocl_parts_args(q, g->ke, a + 2, out)) < 0 ||
        !ocl_gq_arg_u64(q, g->ke, a, cap) ||
        !ocl_gq_arg_mem(q, g->ke, a + 1, g->bnd) ||
        !ocl_gq_arg_local(q, g->ke, a + 2, wg * sizeof(cl_uint)) ||
        !ocl_gq_arg_local(q, g->ke, a + 3, wg * sizeof(cl_uint)) ||
        !ocl_gq_arg_local(q, g->ke, a + 4, wg * nw * sizeof(cl_long)) ||
        !ocl_gq_arg_local(q, g->ke, a + 5, nw * sizeof(cl_long)) ||
        !ocl_gq_run(q, g->ke, (size_t)nb * wg, wg))
        return false;
    if (nb < 2)
        return true;
    if ((a = og_args(q, g, g->kf, c, sk, perm, kmin)) < 0 ||
        !ocl_gq_arg_u64(q, g->kf, a, per) ||
        !ocl_gq_arg_u64(q, g->kf, a + 1, nb) ||
        !ocl_gq_arg_mem(q, g->kf, a + 2, g->counts) ||
        !ocl_gq_arg_mem(q, g->kf, a + 3, count) ||
        (a = ocl_parts_args(q, g->kf, a + 4, out)) < 0 ||
        !ocl_gq_arg_u64(q, g->kf, a, cap) ||
        !ocl_gq_arg_mem(q, g->kf, a + 1, g->bnd))
        return false;
    const size_t fw = wg < 64 ? wg : 64;
    return ocl_gq_run(q, g->kf, (size_t)((nb + fw - 1) / fw) * fw, fw);
}

/* ----------------------------------------------------------- the family */

typedef struct order_state {
    ocl_parts *parts;
    ocl_og *og;
} order_state;

static bool order_sorted(const ocl_gq *q)
{
    const dqo_order o = q->in->key_stats->order;
    return o == DQO_ORDER_ASC || o == DQO_ORDER_DESC || o == DQO_ORDER_CONST;
}

static bool order_begin(ocl_gq *q)
{
    order_state *s = mem_calloc(1, sizeof *s);
    if (s == NULL)
        return ocl_errf(q->e, DQO_ENOMEM, "out of memory");
    q->state = s;
    /* A chunk holds at most as many runs as the whole input (exact in the
     * statistics); on a retry, one per row. */
    const uint64_t runs = q->in->key_stats->runs;
    uint64_t bound = q->in->rows;
    if (q->attempt == 0 && runs > 0 && runs < bound)
        bound = runs;
    if ((s->parts = ocl_parts_new(q, bound)) == NULL)
        return false;
    q->fixed_bytes += ocl_og_fixed_bytes(q);
    char extra[32];
    snprintf(extra, sizeof extra, "-DOG_IPT=%d", ocl_og_ipt(q));
    static const char *const names[] = {"group_common", "group_order", NULL};
    cl_program p = ocl_gq_program(q, names, extra);
    if (p == NULL || (s->og = ocl_og_new(q, p, false)) == NULL)
        return false;
    snprintf(q->detail, sizeof q->detail, "runs reduced in tiles of %zu x %d%s",
             ocl_gq_wg(q), ocl_og_ipt(q),
             order_sorted(q) ? "" : ", unsorted: partial");
    return true;
}

static bool order_chunk(ocl_gq *q, const ocl_chunk *c)
{
    order_state *s = q->state;
    cl_mem out[OCL_PARTS_FIELDS], count;
    uint64_t cap;
    return ocl_parts_next(q, s->parts, c, out, &count, &cap) &&
           ocl_og_run(q, s->og, c, NULL, NULL, 0, out, count, cap) &&
           ocl_parts_done(q, s->parts);
}

static bool order_finish(ocl_gq *q, grp_output *out)
{
    order_state *s = q->state;
    if (!ocl_parts_finish(q, s->parts, out))
        return false;
    out->partial = !order_sorted(q) || ocl_parts_repeats(s->parts);
    return true;
}

static void order_end(ocl_gq *q)
{
    order_state *s = q->state;
    if (s == NULL)
        return;
    ocl_og_free(s->og);
    ocl_parts_free(s->parts);
    mem_free(s);
    q->state = NULL;
}

const ocl_family ocl_family_order = {
    .name = "order",
    .keyed = true,
    .begin = order_begin,
    .chunk = order_chunk,
    .finish = order_finish,
    .end = order_end,
};
