/*
 * backend.c - the CPU back-end's ops table: statistics, grouping dispatch to
 * the kernel families (one file each), dataset generation, and the cache
 * sizes the kernels size their tables from.
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

static dqo_status cpu_group(const grp_input *in, const granule *g,
                            grp_output *out)
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

static void cpu_configure(const plan_machine *m)
{
    cpu_caches c = {m->l1d_bytes, m->l2_bytes, m->l3_bytes};
    cpu_set_caches(&c);
}

const backend_ops cpu_backend = {
    .name = "cpu",
    .stats = cpu_stats,
    .group = cpu_group,
    .gen_grouping = cpu_gen_grouping,
    .configure = cpu_configure,
};
