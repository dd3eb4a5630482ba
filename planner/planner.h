/*
 * planner.h - granules and the kernel choice (pure C: no OpenMP, OpenCL or
 * hwloc here).
 *
 * Until the DQO planner issue lands, a grouping is chosen by one property
 * rule (plan_choose_group): dense -> direct array, clustered -> order-based,
 * else hash or radix by the estimated groups against the cache size. Every
 * threshold is a named setting below, with where its number comes from.
 */
#ifndef DQO_PLANNER_H
#define DQO_PLANNER_H

#include <stdbool.h>
#include <stdint.h>

#include "dqo.h"

/* Partition granule (DESIGN.md "Granules"). */
typedef enum plan_part {
    PLAN_PART_NONE = 0,
    PLAN_PART_DIRECT = 1, /* key - min is the slot: static perfect hash */
    PLAN_PART_RADIX = 2,
    PLAN_PART_SORT = 3,
    PLAN_PART_RUNS = 4 /* input already clustered by key */
} plan_part;

typedef enum plan_index {
    PLAN_INDEX_NONE = 0, /* order-based: compare with the previous key */
    PLAN_INDEX_ARRAY = 1,
    PLAN_INDEX_HASH = 2,
    PLAN_INDEX_SORTED_KEYS = 3
} plan_index;

typedef enum plan_mode {
    PLAN_MODE_AUTO = 0,    /* the kernel decides from sizes */
    PLAN_MODE_PRIVATE = 1, /* thread-private tables, then merge */
    PLAN_MODE_SHARED = 2,  /* one table, atomic updates */
    PLAN_MODE_PARTITION = 3 /* one partition per worker */
} plan_mode;

/* One granule choice; the paper's algorithms are particular values. */
typedef struct granule {
    int kernel;         /* a grp_kernel (engine/backend.h) */
    uint8_t part;       /* plan_part */
    uint8_t index;      /* plan_index */
    uint8_t mode;       /* plan_mode */
    uint8_t radix_bits; /* 0: the kernel sizes them from the cache */
    int location;       /* 0: cpu (all locations come with topology) */
} granule;

/* What the rule knows of the machine (filled from topology/). */
typedef struct plan_machine {
    int threads;
    uint64_t l1d_bytes, l2_bytes, l3_bytes; /* per core, per core, shared */
} plan_machine;

/* Settings (DuckDB-style named thresholds). */
typedef struct plan_settings {
    /* Largest key range (max - min + 1) the direct array covers. 2^24 slots
     * of a COUNT and one SUM (16 B) are 256 MiB: beyond that the array is
     * mostly cold memory for any group count we can reach. */
    uint64_t direct_max_range;
    /* Smallest density (distinct / range) for the direct array: below one
     * group per four slots a hash table of 2x the groups is smaller. */
    double direct_min_density;
    /* Largest direct array, in multiples of one core's L2: each thread
     * updates its own copy, so the array must live near the core. Measured
     * on the 16-core Xeon host (bench/results): 100K dense groups (2.4 MB
     * of entries) sphg 32-47 ms vs radix 81 ms; 1M groups (24 MB) sphg 116
     * ms vs radix 101 ms; 10M groups sphg 619 ms vs radix 230 ms. The
     * crossover lies between 1x and 10x L2; 4x sits inside it. */
    double direct_max_l2;
    /* Clustered when runs <= distinct * (1 + this): the HLL estimate is
     * within ~1%, so 5% leaves room for its error (OG stays exact anyway,
     * it merges repeated runs). */
    double clustered_slack;
    /* Largest key range a device's direct table covers. Device memory is
     * large and its atomics resolve in L2 or HBM, so the bound is memory,
     * not a cache: 2^26 entries of 16 B are 1 GiB. */
    uint64_t device_direct_max_range;
} plan_settings;

void plan_settings_default(plan_settings *s);

/* A grouping's choice with its reason, for EXPLAIN. */
typedef struct plan_choice {
    granule g;
    char why[256];
} plan_choice;

/* True when the column is sorted, or clustered: runs <= distinct x (1 +
 * clustered_slack) with runs at most half the rows. The HLL distinct count
 * is ~1% off, so with nearly unique keys runs ~ distinct says nothing:
 * measured on the H100 host (bench/results/regret.md), 1M unsorted rows
 * over a 10M range (runs ~ distinct ~ 0.95M) took og 13x longer than the
 * best plan; a clustered input worth og has runs of two rows or more. */
bool plan_stats_clustered(const plan_settings *s, const dqo_column_stats *st);

/* The simple property rule. `ks` are the key column's statistics, `naggs`
 * the lowered aggregates (they size the table entries). */
void plan_choose_group(const plan_settings *s, const plan_machine *m,
                       const dqo_column_stats *ks, int naggs,
                       plan_choice *out);

/* The rule on an OpenCL device: direct when the keys are dense enough
 * (density as on the CPU, range up to device_direct_max_range), else hash.
 * Sorted or clustered keys gain nothing there: a device reads at the same
 * speed in any order, and the direct and hash kernels do not depend on it. */
void plan_choose_group_device(const plan_settings *s,
                              const dqo_column_stats *ks, int naggs,
                              plan_choice *out);

/* The granule values of a forced kernel (grp_kernel), with why = "forced". */
void plan_force_group(int kernel, plan_choice *out);

#endif /* DQO_PLANNER_H */
