/*
 * backend.c - the CPU back-end's ops table: statistics, grouping dispatch to
 * the kernel families (one file each), joins (join.c, join_merge.c), dataset
 * generation, calibration, placed copies, and the cache sizes the kernels
 * size their tables from.
 *
 * Every op binds its team of worker threads to cores first and gives the
 * caller's thread its own binding back at the end (place.c).
 */
#include "cpu/cpu_int.h"

/* Until `cpu_set_caches` is called from the machine model: a common x86
 * server core (48 KiB L1d, 2 MiB L2, 32 MiB shared L3). */
static cpu_caches cpu_cache_sizes = {48u << 10, 2u << 20, 32u << 20};

void cpu_get_caches(cpu_caches *c) { *c = cpu_cache_sizes; }

void cpu_set_caches(const cpu_caches *c)
{
    if (c->l1d != 0)
        cpu_cache_sizes.l1d = c->l1d;
    if (c->l2 != 0)
        cpu_cache_sizes.l2 = c->l2;
    if (c->l3 != 0)
        cpu_cache_sizes.l3 = c->l3;
}

dqo_status cpu_group(const grp_input *in, const granule *g, grp_output *out)
{
    switch (g->kernel) {
    case GRP_KERNEL_HASH: return cpu_group_hash(in, g, out);
    case GRP_KERNEL_DIRECT: return cpu_group_direct(in, g, out);
    case GRP_KERNEL_ORDER: return cpu_group_order(in, g, out);
    case GRP_KERNEL_SORT: return cpu_group_sort(in, g, out);
    case GRP_KERNEL_BSEARCH: return cpu_group_bsearch(in, g, out);
    case GRP_KERNEL_RADIX: return cpu_group_radix(in, g, out);
    default: return DQO_EINVAL;
    }
}

/* ------------------------------------------------ ops, with bound teams */

static dqo_status cpu_stats_op(dqo_type type, const void *data,
                               const uint8_t *valid, uint64_t rows, int threads,
                               dqo_column_stats *out)
{
    void *saved = cpu_team_bind(threads);
    const dqo_status st = cpu_stats(type, data, valid, rows, threads, out);
    cpu_team_release(saved);
    return st;
}

static dqo_status cpu_group_op(const grp_input *in, const granule *g,
                               grp_output *out)
{
    void *saved = cpu_team_bind(in->threads);
    const dqo_status st = cpu_group(in, g, out);
    cpu_team_release(saved);
    return st;
}

static dqo_status cpu_join_op(const join_input *in, int alg, join_output *out)
{
    void *saved = cpu_team_bind(in != NULL && in->threads > 1 ? in->threads : 1);
    const dqo_status st = cpu_join(in, alg, out);
    cpu_team_release(saved);
    return st;
}

static dqo_status cpu_gen_grouping_op(uint32_t *keys, int32_t *vals,
                                      uint64_t rows, uint64_t groups,
                                      bool sorted, bool sparse, uint64_t seed,
                                      int threads)
{
    void *saved = cpu_team_bind(threads);
    const dqo_status st = cpu_gen_grouping(keys, vals, rows, groups, sorted,
                                           sparse, seed, threads);
    cpu_team_release(saved);
    return st;
}

static dqo_status cpu_calibrate_op(int dev, const calib_opts *o,
                                   plan_calib *out, char *err, size_t errlen)
{
    /* Calibration binds its teams over the location's cores itself. */
    void *saved = cpu_team_save();
    const dqo_status st = cpu_calibrate(dev, o, out, err, errlen);
    cpu_team_release(saved);
    return st;
}

static void cpu_place_copy_op(void *dst, const void *src, size_t bytes,
                              int threads)
{
    if (threads <= 1 || bytes < CPU_PLACE_COPY_PARALLEL_MIN) {
        cpu_place_copy(dst, src, bytes, 1);
        return;
    }
    void *saved = cpu_team_bind(threads);
    cpu_place_copy(dst, src, bytes, threads);
    cpu_team_release(saved);
}

static void cpu_configure(const plan_machine *m)
{
    cpu_caches c = {m->l1d_bytes, m->l2_bytes, m->l3_bytes};
    cpu_set_caches(&c);
}

const backend_ops cpu_backend = {
    .name = "cpu",
    .stats = cpu_stats_op,
    .group = cpu_group_op,
    .gather = cpu_gather,
    .join = cpu_join_op,
    .gen_grouping = cpu_gen_grouping_op,
    .configure = cpu_configure,
    .calibrate = cpu_calibrate_op,
    .place_copy = cpu_place_copy_op,
};
