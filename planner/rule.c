/*
 * rule.c - the simple property rule that picks a grouping kernel until the
 * DQO planner (dynamic programming over granules) replaces it. It reads only
 * the key column's statistics and the machine's cache sizes:
 *
 *   sorted or clustered by key       -> og     (no table at all)
 *   dense range, array <= 4 x L2     -> sphg   (key - min indexes an array)
 *   estimated groups fit L2          -> hg     (private hash tables, merged)
 *   otherwise                        -> radix  (partitions sized to L2)
 *
 * Order comes first because order-based grouping streams with no random
 * access at all (paper, Section 5.2: OG and SPHG tie on sorted dense data,
 * OG alone is best on sorted sparse data).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "engine/backend.h"
#include "planner/planner.h"

void plan_settings_default(plan_settings *s)
{
    s->direct_max_range = UINT64_C(1) << 24;
    s->direct_min_density = 0.25;
    s->clustered_slack = 0.05;
    s->device_direct_max_range = UINT64_C(1) << 26;
    s->direct_max_l2 = 4.0;
}

/* Bytes of one table entry: the key, COUNT(*) and one 8-byte accumulator per
 * lowered aggregate. */
static uint64_t plan_entry_bytes(int naggs) { return 16 + 8 * (uint64_t)naggs; }

static const char *plan_order_name(dqo_order o)
{
    static const char *const names[] = {"none", "ascending", "descending",
                                        "constant"};
    return (unsigned)o < 4 ? names[o] : "unknown";
}

static void plan_set(plan_choice *out, int kernel)
{
    memset(&out->g, 0, sizeof out->g);
    out->g.kernel = kernel;
    switch (kernel) {
    case GRP_KERNEL_HASH:
        out->g.part = PLAN_PART_NONE;
        out->g.index = PLAN_INDEX_HASH;
        break;
    case GRP_KERNEL_DIRECT:
        out->g.part = PLAN_PART_DIRECT;
        out->g.index = PLAN_INDEX_ARRAY;
        break;
    case GRP_KERNEL_ORDER:
        out->g.part = PLAN_PART_RUNS;
        out->g.index = PLAN_INDEX_NONE;
        break;
    case GRP_KERNEL_SORT:
        out->g.part = PLAN_PART_SORT;
        out->g.index = PLAN_INDEX_NONE;
        break;
    case GRP_KERNEL_BSEARCH:
        out->g.part = PLAN_PART_NONE;
        out->g.index = PLAN_INDEX_SORTED_KEYS;
        break;
    case GRP_KERNEL_RADIX:
        out->g.part = PLAN_PART_RADIX;
        out->g.index = PLAN_INDEX_ARRAY; /* or hash, chosen per partition */
        out->g.mode = PLAN_MODE_PARTITION;
        break;
    default: break;
    }
}

bool plan_stats_clustered(const plan_settings *s, const dqo_column_stats *st)
{
    if (st->order != DQO_ORDER_NONE)
        return true;
    uint64_t n = st->rows - st->nulls;
    return st->runs > 0 && 2 * st->runs <= n &&
           (double)st->runs <= (double)st->distinct * (1.0 + s->clustered_slack);
}

void plan_force_group(int kernel, plan_choice *out)
{
    plan_set(out, kernel);
    snprintf(out->why, sizeof out->why, "forced with --kernel");
}

void plan_choose_group(const plan_settings *s, const plan_machine *m,
                       const dqo_column_stats *ks, int naggs,
                       plan_choice *out)
{
    uint64_t n = ks->rows - ks->nulls, ndv = ks->distinct;
    /* The range in 64 bits: max - min + 1 overflows only for the full i64
     * range, which is never dense. */
    uint64_t range = (uint64_t)ks->max - (uint64_t)ks->min + 1;
    if (range == 0)
        range = UINT64_MAX;
    double density = n > 0 ? (double)ndv / (double)range : 0.0;
    uint64_t entry = plan_entry_bytes(naggs);

    if (n == 0) {
        plan_set(out, GRP_KERNEL_HASH);
        snprintf(out->why, sizeof out->why, "empty input");
    } else if (ks->order != DQO_ORDER_NONE) {
        plan_set(out, GRP_KERNEL_ORDER);
        snprintf(out->why, sizeof out->why,
                 "keys are sorted (%s): runs %" PRIu64 " = groups",
                 plan_order_name(ks->order), ks->runs);
    } else if (plan_stats_clustered(s, ks)) {
        plan_set(out, GRP_KERNEL_ORDER);
        snprintf(out->why, sizeof out->why,
                 "keys are clustered: runs %" PRIu64 " <= distinct %" PRIu64
                 " x %.2f",
                 ks->runs, ndv, 1.0 + s->clustered_slack);
    } else if (range <= s->direct_max_range &&
               density >= s->direct_min_density &&
               (double)(range * entry) <=
                   s->direct_max_l2 * (double)m->l2_bytes) {
        plan_set(out, GRP_KERNEL_DIRECT);
        snprintf(out->why, sizeof out->why,
                 "dense keys: distinct %" PRIu64 " / range %" PRIu64
                 " = %.2f >= %.2f, array of %" PRIu64 " KiB <= %.0f x L2",
                 ndv, range, density, s->direct_min_density,
                 range * entry >> 10, s->direct_max_l2);
    } else if (2 * ndv * entry <= m->l2_bytes) {
        plan_set(out, GRP_KERNEL_HASH);
        snprintf(out->why, sizeof out->why,
                 "%s keys, about %" PRIu64 " groups: a hash table of %" PRIu64
                 " KiB fits L2 (%" PRIu64 " KiB)",
                 density >= s->direct_min_density ? "dense" : "sparse", ndv,
                 2 * ndv * entry >> 10, m->l2_bytes >> 10);
    } else {
        plan_set(out, GRP_KERNEL_RADIX);
        snprintf(out->why, sizeof out->why,
                 "about %" PRIu64 " groups (density %.2g): a table of %" PRIu64
                 " KiB exceeds L2 (%" PRIu64 " KiB); partition to fit",
                 ndv, density, 2 * ndv * entry >> 10, m->l2_bytes >> 10);
    }
}

void plan_choose_group_device(const plan_settings *s,
                              const dqo_column_stats *ks, int naggs,
                              plan_choice *out)
{
    (void)naggs;
    uint64_t n = ks->rows - ks->nulls, ndv = ks->distinct;
    uint64_t range = (uint64_t)ks->max - (uint64_t)ks->min + 1;
    if (range == 0)
        range = UINT64_MAX;
    double density = n > 0 ? (double)ndv / (double)range : 0.0;
    if (n > 0 && range <= s->device_direct_max_range &&
        density >= s->direct_min_density) {
        plan_set(out, GRP_KERNEL_DIRECT);
        snprintf(out->why, sizeof out->why,
                 "device: dense keys, range %" PRIu64 " <= %" PRIu64
                 ", density %.2f >= %.2f",
                 range, s->device_direct_max_range, density,
                 s->direct_min_density);
    } else {
        plan_set(out, GRP_KERNEL_HASH);
        snprintf(out->why, sizeof out->why,
                 "device: %s keys (range %" PRIu64 ", about %" PRIu64
                 " groups): hash table",
                 n == 0 ? "no" : "sparse", range, ndv);
    }
}
