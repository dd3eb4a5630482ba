/*
 * group_radix.c - the host side of radix-partitioned grouping on an OpenCL
 * device, for very many groups: per chunk the (key - min, row) pairs are
 * sorted by partition number (the stable LSD passes of
 * kernels/group_sort.cl over the partition bits only), then one work-group
 * per partition aggregates its rows in a table in local memory
 * (kernels/group_radix.cl) and appends its groups to the chunk's result.
 *
 * Partitions, from the key statistics (T: the fewest partitions that keep
 * the device busy, 8 per compute unit, 4 on a CPU):
 *   dense keys (range + 1 <= 4 x distinct): the high bits of key - min;
 *     2^s consecutive key offsets per partition, a direct local array of 2^s
 *     entries, s as large as local memory allows (at most 4096 entries)
 *     while there are at least T partitions; it never overflows.
 *   sparse keys: the top b bits of the key's hash, 2^b >= T partitions and
 *     2^b x LS >= 2 x distinct, so a partition's expected groups fill at most
 *     half of its local hash table of LS entries. A table that overflows
 *     anyway (a low estimate) flags WRAP_TABLE and the driver runs again
 *     (q->attempt) with a group per row assumed, then 4x the partitions per
 *     further attempt.
 * Table words are 32 bits where the aggregates allow (NARROW in
 * group_common.cl: native local atomics on GPUs whose 64-bit local atomics
 * are compare-and-swap loops, and more entries per table), else 64.
 * Each partition's groups are appended at an atomically reserved offset:
 * the order of groups is unspecified; with several chunks a key may repeat
 * (out->partial).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "opencl/ocl_group.h"

/* Largest local table, in entries. */
#define RX_MAX_LS 4096
/* Most partition bits (2^24 partitions of up to RX_MAX_LS / 2 groups). */
#define RX_MAX_BITS 24

typedef struct radix_state {
    ocl_parts *parts;
    ocl_rs *rs;
    bool dense;
    int bits;         /* partition bits sorted (>= 1) */
    uint64_t parts_n; /* partitions */
    uint32_t ls;      /* local table entries */
    int64_t kmin;
    bool wide;
    bool narrow;    /* 32-bit table words */
    uint64_t entry; /* local bytes per table entry */
    size_t wg;
    cl_kernel kb, ka;
    cl_mem bounds;
} radix_state;

static int bits_of(uint64_t v)
{
    return v == 0 ? 0 : 64 - __builtin_clzll(v);
}

static bool radix_begin(ocl_gq *q)
{
    radix_state *s = mem_calloc(1, sizeof *s);
    if (s == NULL)
        return ocl_errf(q->e, DQO_ENOMEM, "out of memory");
    q->state = s;
    const dqo_column_stats *ks = q->in->key_stats;
    const uint64_t rows = q->in->rows;
    const uint64_t range =
        rows == 0 ? 0 : (uint64_t)ks->max - (uint64_t)ks->min;
    s->kmin = rows == 0 ? 0 : ks->min;
    uint64_t distinct = ks->distinct < rows ? ks->distinct : rows;
    if (distinct < 1)
        distinct = 1;
    s->dense = range / 4 < distinct;
    s->wide = range > UINT32_MAX;
    const uint64_t kb = s->wide ? 8 : 4;
    /* 32-bit table words where the aggregates allow (NARROW). */
    const int nw = ocl_gq_narrow_words(q);
    s->narrow = nw > 0;
    const uint64_t entry =
        (s->narrow ? (uint64_t)nw * 4 : (1 + (uint64_t)q->nagg) * 8) +
        (s->dense ? 0 : kb);
    s->entry = entry;
    const uint64_t room = ocl_gq_local_bytes(q) / 4 * 3;
    /* Sparse tables have one more entry (group_radix.cl). */
    uint64_t ls = RX_MAX_LS;
    while (ls > 1 && (ls + 1) * entry > room)
        ls /= 2;
    if (ls < 16)
        return ocl_errf(q->e, DQO_EUNSUPPORTED,
                        "OpenCL device cl:%d's local memory (%" PRIu64
                        " bytes) holds too small a table for radix grouping",
                        q->dev->index, ocl_gq_local_bytes(q));
    const uint64_t cu =
        q->dev->info.compute_units > 0 ? q->dev->info.compute_units : 1;
    const uint64_t busy = cu * (q->dev->info.is_cpu ? 4 : 8);
    int shift = 0;
    s->wg = ocl_gq_wg(q);
    if (s->dense) {
        shift = bits_of(ls) - 1;
        while (shift > 0 && (range >> shift) + 1 < busy)
            shift--;
        /* At least one entry per work-item (see group_radix.cl). */
        s->ls = 1u << shift;
        while (s->ls < s->wg && s->ls < ls)
            s->ls *= 2;
        s->bits = bits_of(range >> shift);
        s->parts_n = (range >> shift) + 1;
    } else {
        s->ls = (uint32_t)ls;
        /* A retry (a table overflowed: the estimate was low) sizes for
         * every row a group, then for skew. */
        uint64_t groups = distinct;
        if (q->attempt > 0)
            groups = range < rows ? range + 1 : rows;
        int b = bits_of((2 * groups - 1) / ls);
        if (b < bits_of(busy - 1))
            b = bits_of(busy - 1);
        if (q->attempt > 1)
            b += 2 * (q->attempt - 1);
        if (b < 1)
            b = 1;
        if (b > RX_MAX_BITS)
            b = RX_MAX_BITS;
        s->bits = b;
        s->parts_n = UINT64_C(1) << b;
    }
    const int sort_bits = s->bits > 0 ? s->bits : 1;
    const int passes = (sort_bits + 7) / 8;
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
    q->fixed_bytes += ocl_rs_fixed_bytes(q, s->wide) + s->parts_n * 8;
    q->row_bytes += ocl_rs_row_bytes(s->wide, passes);
    char rso[128], extra[256];
    ocl_rs_options(q, s->wide, rso, sizeof rso);
    if (s->dense)
        snprintf(extra, sizeof extra, "%s -DRX_SHIFT=%d -DRX_LS=%u%s", rso,
                 shift, s->ls, s->narrow ? " -DNARROW" : "");
    else
        snprintf(extra, sizeof extra, "%s -DRX_HASH_BITS=%d -DRX_LS=%u%s", rso,
                 s->bits, s->ls, s->narrow ? " -DNARROW" : "");
    cl_program p =
        ocl_gq_program(q,
                       (const char *const[]){"group_common", "group_sort",
                                             "group_radix", NULL},
                       extra);
    if (p == NULL || (s->rs = ocl_rs_new(q, p, s->wide)) == NULL ||
        (s->kb = ocl_gq_kernel(q, p, "rx_bounds")) == NULL ||
        (s->ka = ocl_gq_kernel(q, p, "rx_agg")) == NULL ||
        (s->bounds = ocl_gq_buffer(q, s->parts_n * 8)) == NULL)
        return false;
    snprintf(q->detail, sizeof q->detail,
             "%" PRIu64 " partitions by %s bits, local %s%s of %u", s->parts_n,
             s->dense ? "key" : "hash", s->narrow ? "32-bit " : "",
             s->dense ? "arrays" : "hash tables",
             s->dense ? 1u << shift : s->ls);
    return true;
}

static bool radix_chunk(ocl_gq *q, const ocl_chunk *c)
{
    radix_state *s = q->state;
    cl_mem out[OCL_PARTS_FIELDS], count, sk, perm;
    uint64_t cap;
    if (!ocl_parts_next(q, s->parts, c, out, &count, &cap) ||
        !ocl_rs_sort(q, s->rs, c, s->kmin, s->bits > 0 ? s->bits : 1, &sk,
                     &perm))
        return false;
    const cl_uint zero = 0;
    if (!OCL_CALL(q->e, clEnqueueFillBuffer, q->dev->q, s->bounds, &zero,
                  sizeof zero, 0, (size_t)(s->parts_n * 8), 0, NULL, NULL))
        return false;
    const size_t wg = s->wg;
    if (!ocl_gq_arg_mem(q, s->kb, 0, sk) ||
        !ocl_gq_arg_u64(q, s->kb, 1, c->rows) ||
        !ocl_gq_arg_mem(q, s->kb, 2, s->bounds) ||
        !ocl_gq_run(q, s->kb, ocl_gq_groups(q, c->rows, wg) * wg, wg))
        return false;
    const uint64_t kb = s->wide ? 8 : 4;
    int a = ocl_gq_set_input(q, s->ka, c);
    if (a < 0 || !ocl_gq_arg_mem(q, s->ka, a, sk) ||
        !ocl_gq_arg_mem(q, s->ka, a + 1, perm) ||
        !ocl_gq_arg_i64(q, s->ka, a + 2, s->kmin) ||
        !ocl_gq_arg_mem(q, s->ka, a + 3, s->bounds) ||
        (a = ocl_parts_args(q, s->ka, a + 4, out)) < 0 ||
        !ocl_gq_arg_u64(q, s->ka, a, cap) ||
        !ocl_gq_arg_mem(q, s->ka, a + 1, count) ||
        !ocl_gq_arg_local(q, s->ka, a + 2, s->dense ? 8 : (s->ls + 1) * kb) ||
        !ocl_gq_arg_local(q, s->ka, a + 3,
                          (size_t)(s->ls + (s->dense ? 0 : 1)) *
                              (s->entry - (s->dense ? 0 : kb))) ||
        !ocl_gq_arg_local(q, s->ka, a + 4, 2 * sizeof(cl_ulong)) ||
        !ocl_gq_run(q, s->ka, (size_t)s->parts_n * wg, wg))
        return false;
    return ocl_parts_done(q, s->parts);
}

static bool radix_finish(ocl_gq *q, grp_output *out)
{
    radix_state *s = q->state;
    if (!ocl_parts_finish(q, s->parts, out))
        return false;
    out->partial =
        ocl_parts_chunks(s->parts) > 1 || ocl_parts_repeats(s->parts);
    return true;
}

static void radix_end(ocl_gq *q)
{
    radix_state *s = q->state;
    if (s == NULL)
        return;
    ocl_rs_free(s->rs);
    ocl_release_kernel(s->kb);
    ocl_release_kernel(s->ka);
    ocl_release_mem(s->bounds);
    ocl_parts_free(s->parts);
    mem_free(s);
    q->state = NULL;
}

const ocl_family ocl_family_radix = {
    .name = "radix",
    .keyed = true,
    .begin = radix_begin,
    .chunk = radix_chunk,
    .finish = radix_finish,
    .end = radix_end,
};
