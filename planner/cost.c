/*
 * cost.c - the two cost models of the DQO planner (DESIGN.md "Cost and
 * enumeration").
 *
 * PLAN_COST_PAPER is the paper's Table 4, in tuples touched: HG 4|R|,
 * OG |R|, SOG |R|log2|R| + |R| (sort only when unsorted), SPHG |R|,
 * BSG |R|log2(#groups); the joins the same over both inputs. With it the
 * DP reproduces the paper's Table 5 exactly (tests/test_dp.c).
 *
 * PLAN_COST_CALIBRATED estimates milliseconds from the machine profile
 * (planner/machine.h): groupings from the calibrated `kern` points
 * (ns/row of each kernel at a group count, interpolated in log(groups)),
 * else from an analytic model of the location (a streaming scan at the
 * calibrated bandwidth plus random accesses at the latency of the level
 * the working set fits); joins, filters, sorts analytically from the same
 * constants; device groupings add transfers overlapped with the kernel.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/backend.h"
#include "planner/plan_int.h"

/* Independent random accesses in flight per core: hash and array updates
 * of consecutive rows do not depend on each other, so an out-of-order core
 * overlaps several misses (10-12 line fill buffers on recent x86 cores);
 * read-modify-write chains keep it well below that: 4. */
#define PL_MLP 4.0
/* Fallback latencies (ns) of L1, L2, LLC and DRAM when a location has no
 * calibration: typical of current x86 servers (the calibrated Xeon of
 * bench/results/profile_device.txt measured 2 / 12 / 167 / 252 ns with
 * pointer chasing, which includes TLB misses). */
static const double pl_lat_default[4] = {1.0, 4.0, 15.0, 80.0};
/* Fallback bandwidth per thread (GB/s) and its cap when uncalibrated:
 * the Xeon above measured 9.4 GB/s on one thread and 89 GB/s at 12. */
#define PL_BW_THREAD_GBS 8.0
#define PL_BW_MAX_GBS 80.0
/* Starting an OpenMP team and joining it: ~20 us on the 16-core host. */
#define PL_THREAD_START_MS 0.020
/* Merge joins and order-based grouping compare neighbours: ~1.5 ns/row. */
#define PL_MERGE_NS 1.5
/* Comparison sort: n log2 n x 2 ns (one compare and move per level). */
#define PL_SORT_NS 2.0
/* Per-row work of each cpu kernel on one thread with its table in L1, in
 * ns: the calibrated points of bench/results/profile_device.txt at 1K
 * groups x 16 threads (ns/row x 16): og 0.68, sphg 1.9, hg 7.6, bsg 30
 * (3 per binary-search level), sog 19 (18 of them the sort). Radix pays
 * hg's table work plus ~2 ns to scatter each row into its partition. */
#define PL_OG_NS 0.7
#define PL_SPH_NS 1.9
#define PL_HASH_NS 7.6
#define PL_BS_LEVEL_NS 3.0
#define PL_RADIX_SCATTER_NS 2.0
#define PL_SORT_ROW_NS 18.0

/* Most lowered aggregates one OpenCL kernel call carries (opencl/: "the
 * OpenCL kernels carry at most 8"); beyond that a grouping stays on cpu. */
#define PL_DEV_MAX_AGGS 8
/* PCIe 3 x16 effective rate when a device has no transfer calibration. */
#define PL_PCIE_GBS 12.0
/* Kernel launches (passes) of each device kernel family: hg init, update,
 * compact; sphg update, compact; og boundaries, scan; sog about 8 radix
 * passes plus og; radix histogram, scatter, per-partition tables, compact. */
static const int pl_dev_passes[GRP_KERNEL_COUNT_] = {3, 2, 2, 10, 0, 4};

/* ------------------------------------------------------------ environment */

void pl_costenv_init(pl_costenv *ce, const plan_env *env)
{
    memset(ce, 0, sizeof *ce);
    ce->env = env;
    if (env->settings != NULL)
        ce->set = *env->settings;
    else
        plan_settings_default(&ce->set);
    if (env->machine != NULL)
        ce->mach = *env->machine;
    else {
        /* A modest default: 32 KiB L1d, 1 MiB L2, 32 MiB LLC. */
        ce->mach.threads = 1;
        ce->mach.l1d_bytes = 32 << 10;
        ce->mach.l2_bytes = 1 << 20;
        ce->mach.l3_bytes = 32 << 20;
    }
    ce->threads = env->threads > 0 ? env->threads
                  : ce->mach.threads > 0 ? ce->mach.threads
                                         : 1;
    ce->paper = env->cost_model == PLAN_COST_PAPER;
}

bool pl_loc_is_device(const plan_env *env, int loc)
{
    return env->model != NULL && loc > 0 && loc < env->model->nloc &&
           env->model->loc[loc].kind == PLAN_LOC_CL;
}

const char *pl_loc_name(const plan_env *env, int loc)
{
    if (loc <= 0 || env->model == NULL || loc >= env->model->nloc)
        return "cpu";
    return env->model->loc[loc].id;
}

int pl_group_locations(const plan_env *env, bool paper,
                       int loc[PLAN_MAX_LOCATIONS])
{
    /* env->loc is the allowed set exactly ("--device cl:0" excludes the
     * cpu); cpu and its NUMA nodes both mean the cpu (index 0); nothing
     * usable, the paper's model and SQO mean the cpu alone. */
    int n = 0;
    bool cpu = env->nloc == 0 || paper || env->sqo;
    for (int i = 0; !paper && !env->sqo && i < env->nloc &&
                    n < PLAN_MAX_LOCATIONS - 1;
         i++) {
        if (pl_loc_is_device(env, env->loc[i]))
            loc[n++] = env->loc[i];
        else
            cpu = true;
    }
    if (cpu || n == 0) { /* the cpu first: it wins ties */
        memmove(loc + 1, loc, sizeof *loc * (size_t)n);
        loc[0] = 0;
        n++;
    }
    return n;
}

const char *pl_unit(const plan_env *env)
{
    return env->cost_model == PLAN_COST_PAPER ? "" : " ms";
}

uint64_t pl_entry_bytes(int naggs) { return 16 + 8 * (uint64_t)(naggs > 0 ? naggs : 0); }

static const plan_location *pl_location(const pl_costenv *ce, int loc)
{
    const plan_model *m = ce->env->model;
    if (m == NULL || loc < 0 || loc >= m->nloc)
        return NULL;
    return &m->loc[loc];
}

static const plan_calib *pl_calib(const pl_costenv *ce, int loc)
{
    const plan_location *l = pl_location(ce, loc);
    return l != NULL && l->calib.valid ? &l->calib : NULL;
}

/* Host bandwidth (GB/s = bytes/ns) at the plan's thread count. */
static double pl_cpu_bw(const pl_costenv *ce)
{
    const plan_calib *c = pl_calib(ce, 0);
    double bw = c != NULL ? plan_calib_bw_at(c, ce->threads) : 0.0;
    if (bw <= 0.0) {
        bw = PL_BW_THREAD_GBS * ce->threads;
        if (bw > PL_BW_MAX_GBS)
            bw = PL_BW_MAX_GBS;
    }
    return bw;
}

/* ns of one random access to a working set of `ws` bytes at `loc`. */
static double pl_lat(const pl_costenv *ce, int loc, double ws)
{
    const plan_calib *c = pl_calib(ce, loc);
    if (c != NULL && c->nlat > 0) {
        for (int i = 0; i < c->nlat; i++)
            if (ws <= (double)c->lat_bytes[i])
                return c->lat_ns[i];
        return c->lat_ns[c->nlat - 1];
    }
    const plan_location *l = pl_location(ce, loc);
    double lv[3] = {(double)ce->mach.l1d_bytes, (double)ce->mach.l2_bytes,
                    (double)ce->mach.l3_bytes};
    if (l != NULL && l->l1d > 0) {
        lv[0] = (double)l->l1d;
        lv[1] = (double)l->l2;
        lv[2] = (double)l->l3;
    }
    for (int i = 0; i < 3; i++)
        if (lv[i] > 0 && ws <= lv[i])
            return pl_lat_default[i];
    return pl_lat_default[3];
}

/* ------------------------------------------------------ calibrated points */

/* ns/row of `kernel` at `groups` from the location's kern points of the
 * closest dataset kind (same sorted and sparse flags, else the same sparse
 * flag, else any), interpolated linearly in log(groups) and clamped; < 0
 * without points. *threads gets the points' thread count. */
static double pl_kern_ns(const plan_calib *c, const char *kernel,
                         uint64_t groups, bool sorted, bool sparse,
                         int *threads)
{
    if (c == NULL)
        return -1.0;
    for (int pass = 0; pass < 3; pass++) {
        const plan_kcost *lo = NULL, *hi = NULL;
        for (int i = 0; i < c->nkern; i++) {
            const plan_kcost *k = &c->kern[i];
            if (strcmp(k->kernel, kernel) != 0 || k->groups == 0)
                continue;
            if (pass == 0 && ((bool)k->sorted != sorted ||
                              (bool)k->sparse != sparse))
                continue;
            if (pass == 1 && (bool)k->sparse != sparse)
                continue;
            if (k->groups <= groups && (lo == NULL || k->groups > lo->groups))
                lo = k;
            if (k->groups >= groups && (hi == NULL || k->groups < hi->groups))
                hi = k;
        }
        if (lo == NULL && hi == NULL)
            continue;
        if (hi == NULL && lo != NULL && lo->groups < groups) {
            /* Beyond the largest point: extend the slope of the last two
             * points in log(groups), never below the last point (tables
             * only grow out of the caches). */
            const plan_kcost *l2 = NULL;
            for (int i = 0; i < c->nkern; i++) {
                const plan_kcost *k = &c->kern[i];
                if (k != lo && strcmp(k->kernel, kernel) == 0 &&
                    k->groups < lo->groups && k->groups > 0 &&
                    k->sorted == lo->sorted && k->sparse == lo->sparse &&
                    (l2 == NULL || k->groups > l2->groups))
                    l2 = k;
            }
            *threads = lo->threads > 0 ? lo->threads : 1;
            if (l2 == NULL || lo->ns_per_row <= l2->ns_per_row)
                return lo->ns_per_row;
            double slope = (lo->ns_per_row - l2->ns_per_row) /
                           (log((double)lo->groups) - log((double)l2->groups));
            return lo->ns_per_row +
                   slope * (log((double)groups) - log((double)lo->groups));
        }
        if (lo == NULL || hi == NULL || lo->groups == hi->groups) {
            const plan_kcost *p = lo != NULL ? lo : hi;
            *threads = p->threads > 0 ? p->threads : 1;
            return p->ns_per_row;
        }
        double t = (log((double)groups) - log((double)lo->groups)) /
                   (log((double)hi->groups) - log((double)lo->groups));
        *threads = lo->threads > 0 ? lo->threads : 1;
        return lo->ns_per_row + t * (hi->ns_per_row - lo->ns_per_row);
    }
    return -1.0;
}

/* Sorting `rows` keys on the cpu, ms: the calibrated sog - og difference
 * when both are calibrated, else PL_SORT_ROW_NS per row / threads. */
static double pl_sort_ms(const pl_costenv *ce, uint64_t rows, uint64_t ndv)
{
    if (rows < 2)
        return 0.0;
    const plan_calib *c = pl_calib(ce, 0);
    int ts = 1, to = 1;
    double s = pl_kern_ns(c, "sog", ndv, false, false, &ts);
    double o = pl_kern_ns(c, "og", ndv, true, false, &to);
    if (s >= 0 && o >= 0 && s > o)
        return (s - o) * (double)rows * ts / ce->threads / 1e6;
    return (double)rows * PL_SORT_ROW_NS / ce->threads / 1e6;
}

/* --------------------------------------------------------------- groupings */

static double pl_paper_group(int kernel, const plan_props *k, bool sqo)
{
    double n = (double)k->rows;
    switch (kernel) {
    case GRP_KERNEL_HASH: return 4.0 * n;
    case GRP_KERNEL_ORDER: return k->sorted ? n : -1.0;
    case GRP_KERNEL_SORT:
        return (k->sorted || n < 2 ? 0.0 : n * log2(n)) + n;
    case GRP_KERNEL_DIRECT: return k->dense && !sqo ? n : -1.0;
    case GRP_KERNEL_BSEARCH:
        return !k->dense && !sqo
                   ? n * log2((double)(k->ndv > 1 ? k->ndv : 1))
                   : -1.0;
    default: return -1.0; /* radix is not in the paper's model */
    }
}

/* Random-access cost beyond L1 of a working set of `ws` bytes, ns/row on
 * one thread (misses overlap PL_MLP deep). */
static double pl_miss_ns(const pl_costenv *ce, int loc, double ws)
{
    double extra = pl_lat(ce, loc, ws) - pl_lat(ce, loc, 0.0);
    return extra > 0 ? extra / PL_MLP : 0.0;
}

/* The analytic per-row estimate (ns, all threads together) of a cpu
 * grouping when the kernel has no calibration points: the larger of the
 * streaming time and the per-thread work divided by the threads. */
static double pl_cpu_group_ns(const pl_costenv *ce, int kernel,
                              const plan_props *k, uint64_t entry)
{
    double t = ce->threads;
    double scan = 8.0 / pl_cpu_bw(ce); /* key and one value per row */
    double ndv = (double)(k->ndv > 0 ? k->ndv : 1);
    double work;
    switch (kernel) {
    case GRP_KERNEL_HASH:
        work = PL_HASH_NS + pl_miss_ns(ce, 0, 2.0 * ndv * entry);
        break;
    case GRP_KERNEL_DIRECT:
        work = PL_SPH_NS +
               pl_miss_ns(ce, 0, (double)pl_range(k->min, k->max) * entry);
        break;
    case GRP_KERNEL_RADIX:
        /* Partitions sized to half an L2 each. */
        work = PL_HASH_NS + PL_RADIX_SCATTER_NS +
               pl_miss_ns(ce, 0, ce->mach.l2_bytes / 2.0);
        scan *= 3.0; /* read, scatter, read the partitions back */
        break;
    case GRP_KERNEL_ORDER: work = PL_OG_NS; break;
    case GRP_KERNEL_SORT:
        work = PL_OG_NS + (k->sorted ? 0.0 : PL_SORT_ROW_NS);
        break;
    case GRP_KERNEL_BSEARCH:
        work = log2(ndv + 1.0) * (PL_BS_LEVEL_NS + pl_miss_ns(ce, 0, ndv * 8.0));
        break;
    default: return -1.0;
    }
    return fmax(scan, work / t);
}

#define PL_BSG_MAX_GROUPS 4096

static bool pl_group_feasible(const pl_costenv *ce, int kernel, bool device,
                              const plan_props *k)
{
    bool sqo = ce->env->sqo;
    uint64_t range = pl_range(k->min, k->max);
    switch (kernel) {
    case GRP_KERNEL_DIRECT:
        return !sqo && k->dense &&
               range <= (device ? ce->set.device_direct_max_range
                                : ce->set.direct_max_range);
    case GRP_KERNEL_ORDER: return k->sorted;
    /* BSG pays a binary search per row over the sorted distinct keys:
     * the paper finds it best only up to ~14 groups, the calibration
     * measures it up to 1K groups, and beyond a few thousand its
     * array leaves L1/L2 (measured on the H100 host: 1M rows over ~1M
     * groups took bsg 13 ms against 2.4 ms for the best plan). */
    case GRP_KERNEL_BSEARCH:
        return !sqo && !device && k->ndv <= PL_BSG_MAX_GROUPS;
    case GRP_KERNEL_HASH:
    case GRP_KERNEL_SORT:
    case GRP_KERNEL_RADIX: return true;
    default: return false;
    }
}

static double pl_cpu_group_ms(const pl_costenv *ce, int kernel,
                              const plan_props *k, uint64_t entry,
                              char *note, int notelen)
{
    int kt = 1;
    const char *name = grp_kernel_name((grp_kernel)kernel);
    /* Sorted input: sog skips nothing measurable beyond og's work. */
    int as = kernel == GRP_KERNEL_SORT && k->sorted ? GRP_KERNEL_ORDER
                                                     : kernel;
    double ns = pl_kern_ns(pl_calib(ce, 0), grp_kernel_name((grp_kernel)as),
                           k->ndv, k->sorted, !k->dense, &kt);
    double ms;
    if (ns >= 0) {
        ms = ns * (double)k->rows * kt / ce->threads / 1e6;
        snprintf(note, notelen, "calibrated %s %.3g ns/row at %d threads",
                 name, ns, kt);
    } else {
        ms = pl_cpu_group_ns(ce, kernel, k, entry) * (double)k->rows / 1e6;
        snprintf(note, notelen, "analytic %s", name);
    }
    ms += PL_THREAD_START_MS;
    if (kernel == GRP_KERNEL_DIRECT) /* zeroing the array */
        ms += (double)pl_range(k->min, k->max) * entry / pl_cpu_bw(ce) / 1e6;
    return ms;
}

/* A device kernel's time (ms) with the input already in its memory. */
static double pl_dev_group_ms(const pl_costenv *ce, int kernel, int loc,
                              const plan_props *k, uint64_t entry,
                              uint64_t row_bytes, char *note, int notelen)
{
    const plan_calib *c = pl_calib(ce, loc);
    const plan_location *l = pl_location(ce, loc);
    const char *name = grp_kernel_name((grp_kernel)kernel);
    int kt = 1;
    double ns = pl_kern_ns(c, name, k->ndv, k->sorted, !k->dense, &kt);
    if (ns >= 0) {
        snprintf(note, notelen, "calibrated %s %.3g ns/row", name, ns);
        return ns * (double)k->rows / 1e6;
    }
    /* Analytic: stream the rows at the device bandwidth, one atomic update
     * per row at the calibrated rate (4x slower once the table leaves the
     * device's L2 for its DRAM: the L2/DRAM latency ratio of the H100's
     * profile), plus launches. Defaults (1 TB/s, 10^4 Mops/s) are a
     * mid-range GPU's. */
    double bw = c != NULL ? plan_calib_peak_bw(c) : 0.0;
    double mops = c != NULL ? c->atomic_private_mops : 0.0;
    if (bw <= 0)
        bw = 1000.0;
    if (mops <= 0)
        mops = 1e4;
    double rows = (double)k->rows, ms = 0.0;
    double ws = (double)(kernel == GRP_KERNEL_DIRECT
                             ? pl_range(k->min, k->max)
                             : 2 * (k->ndv > 0 ? k->ndv : 1)) *
                entry;
    double scan = rows * (double)(row_bytes > 0 ? row_bytes : 8) / bw / 1e6;
    double upd = rows / (mops * 1e3);
    if (l != NULL && l->l1d > 0 && ws <= (double)l->l1d)
        upd *= 0.25; /* local-memory tables: no global atomics */
    else if (l != NULL && l->l2 > 0 && ws > (double)l->l2)
        upd *= 4.0;
    switch (kernel) {
    case GRP_KERNEL_DIRECT: ms = scan + upd; break;
    case GRP_KERNEL_HASH: ms = scan + 2.0 * upd; break;
    case GRP_KERNEL_RADIX: ms = 3.0 * scan + rows / (mops * 1e3); break;
    case GRP_KERNEL_ORDER: ms = 2.0 * scan; break;
    case GRP_KERNEL_SORT: ms = (k->sorted ? 2.0 : 16.0) * scan; break;
    default: return -1.0;
    }
    double launch = c != NULL ? c->launch_us : 10.0;
    ms += pl_dev_passes[kernel] * launch / 1e3;
    snprintf(note, notelen, "analytic %s on device", name);
    return ms;
}

#define PL_DEV_QUERY_LAUNCHES 12.0

/* Host <-> device GB/s of a device location: calibrated, else the PCIe
 * link's nominal rate, else PL_PCIE_GBS. */
static double pl_xfer_gbs(const pl_costenv *ce, int loc, bool h2d,
                          bool pinned)
{
    const plan_calib *c = pl_calib(ce, loc);
    const plan_location *l = pl_location(ce, loc);
    double g = 0.0;
    if (c != NULL)
        g = h2d ? (pinned ? c->h2d_pinned_gbs : c->h2d_pageable_gbs)
                : (pinned ? c->d2h_pinned_gbs : c->d2h_pageable_gbs);
    if (g <= 0 && l != NULL)
        g = l->link_gbs;
    if (g <= 0)
        g = PL_PCIE_GBS;
    /* Pageable host data does not cross at the driver's pageable rate:
     * the back-end copies it with every thread into pinned staging
     * buffers and DMAs those, overlapped, so the rate is the lesser of
     * the pinned DMA and the host copy (a copy reads and writes: half the
     * calibrated read bandwidth). On the H100 host: pageable 8 GB/s, pinned
     * 53 GB/s, CPU read 88 GB/s; 800 MB streamed in 19.7-26.6 ms, i.e.
     * 30-40 GB/s (bench/results/gpu.md). */
    if (h2d && !pinned && c != NULL && c->h2d_pinned_gbs > g) {
        const plan_calib *cpu = pl_calib(ce, 0);
        double copy = cpu != NULL ? plan_calib_peak_bw(cpu) / 2.0 : 0.0;
        if (copy > 0)
            g = copy < c->h2d_pinned_gbs ? copy : c->h2d_pinned_gbs;
    }
    return g;
}

double pl_group_cost(const pl_costenv *ce, int kernel, int loc,
                     const plan_props *key, int naggs, uint64_t row_bytes,
                     bool pinned, double *xfer, char *note, int notelen)
{
    char dummy[8];
    if (note == NULL) {
        note = dummy;
        notelen = sizeof dummy;
    }
    note[0] = '\0';
    *xfer = 0.0;
    if (kernel < 0 || kernel >= GRP_KERNEL_COUNT_)
        return -1.0;
    bool device = pl_loc_is_device(ce->env, loc);
    if (loc != 0 && !device)
        return -1.0; /* NUMA locations are not placed separately yet */
    if (ce->paper) {
        /* The direct array must still fit the executor's bound. */
        if (device || (kernel == GRP_KERNEL_DIRECT &&
                       pl_range(key->min, key->max) > ce->set.direct_max_range))
            return -1.0;
        return pl_paper_group(kernel, key, ce->env->sqo);
    }
    if (device && (ce->env->sqo || naggs > PL_DEV_MAX_AGGS))
        return -1.0;
    if (!pl_group_feasible(ce, kernel, device, key))
        return -1.0;
    uint64_t entry = pl_entry_bytes(naggs);
    if (!device)
        return pl_cpu_group_ms(ce, kernel, key, entry, note, notelen);
    double k = pl_dev_group_ms(ce, kernel, loc, key, entry, row_bytes, note,
                               notelen);
    if (k < 0)
        return -1.0;
    const plan_calib *c = pl_calib(ce, loc);
    /* A device query costs more than its kernels' launches: program
     * lookup, argument setup, the result's allocation and a blocking read.
     * Measured on the H100: 1M-row groupings whose kernels take ~10 us
     * ran in 0.21-0.27 ms against 0.04 ms for the CPU's og
     * (bench/results/regret.md), i.e. about 12 launch latencies. */
    double launch = PL_DEV_QUERY_LAUNCHES * (c != NULL ? c->launch_us : 10.0) / 1e3;
    double groups = (double)(key->ndv < key->rows ? key->ndv : key->rows);
    double down = groups * entry / pl_xfer_gbs(ce, loc, false, pinned) / 1e6;
    double in = 0.0;
    if (key->location != loc)
        in = (double)key->rows * (double)(row_bytes > 0 ? row_bytes : 8) /
             pl_xfer_gbs(ce, loc, true, pinned) / 1e6;
    *xfer = in;
    /* The device kernel streams its input: transfers overlap kernels. */
    return (in > k ? in : k) + launch + down;
}

double plan_group_cost(const plan_env *env, int kernel, int location,
                       const plan_props *key, int naggs, uint64_t row_bytes,
                       bool pinned)
{
    if (env == NULL || key == NULL)
        return -1.0;
    pl_costenv ce;
    pl_costenv_init(&ce, env);
    double x;
    return pl_group_cost(&ce, kernel, location, key, naggs, row_bytes, pinned,
                         &x, NULL, 0);
}

static void pl_fmt_count(char *buf, int len, double v)
{
    if (v >= 1e9)
        snprintf(buf, len, "%.3gG", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, len, "%.3gM", v / 1e6);
    else if (v >= 1e4)
        snprintf(buf, len, "%.3gK", v / 1e3);
    else
        snprintf(buf, len, "%.0f", v);
}

void pl_group_why(const plan_env *env, int n, int best_k, int best_l,
                  double best, int run_k, int run_l, double run,
                  const plan_props *key, char *buf, int len)
{
    char rows[16], groups[16];
    pl_fmt_count(rows, sizeof rows, (double)key->rows);
    pl_fmt_count(groups, sizeof groups, (double)key->ndv);
    const char *unit = pl_unit(env);
    char tail[96];
    snprintf(tail, sizeof tail, "(%s%s keys, %s groups, %s rows)",
             key->sorted ? "sorted " : "", key->dense ? "dense" : "sparse",
             groups, rows);
    if (run_k >= 0)
        snprintf(buf, len, "cheapest of %d: %s on %s %.3g%s < %s on %s %.3g%s %s",
                 n, grp_kernel_name(best_k), pl_loc_name(env, best_l), best,
                 unit, grp_kernel_name(run_k), pl_loc_name(env, run_l), run,
                 unit, tail);
    else
        snprintf(buf, len, "only candidate: %s on %s %.3g%s %s",
                 grp_kernel_name(best_k), pl_loc_name(env, best_l), best,
                 unit, tail);
}

/* Fills a plan_choice's granules for `kernel` through the rule's table. */
static void pl_granules(int kernel, int loc, granule *g)
{
    plan_choice c;
    plan_force_group(kernel, &c);
    *g = c.g;
    g->location = loc;
}

dqo_status plan_group_choose(const plan_env *env, const plan_props *key,
                             int naggs, uint64_t row_bytes, bool pinned,
                             plan_group_pick *out)
{
    if (env == NULL || key == NULL || out == NULL)
        return DQO_EINVAL;
    pl_costenv ce;
    pl_costenv_init(&ce, env);
    int locs[PLAN_MAX_LOCATIONS];
    int nl = pl_group_locations(env, ce.paper, locs);
    int best_k = -1, best_l = 0, run_k = -1, run_l = 0, n = 0;
    double best = 0, run = 0;
    /* Nothing feasible on the allowed devices: the cpu always is (the host
     * copy of the data always exists). */
    for (int li = 0; li < nl || (best_k < 0 && li == nl); li++)
        for (int k = 0; k < GRP_KERNEL_COUNT_; k++) {
            int l = li < nl ? locs[li] : 0;
            double x, c = pl_group_cost(&ce, k, l, key, naggs,
                                        row_bytes, pinned, &x, NULL, 0);
            if (c < 0)
                continue;
            n++;
            if (best_k < 0 || c < best) {
                run_k = best_k, run_l = best_l, run = best;
                best_k = k, best_l = l, best = c;
            } else if (run_k < 0 || c < run) {
                run_k = k, run_l = l, run = c;
            }
        }
    if (best_k < 0) /* hg on cpu is always feasible; defensive only */
        return DQO_EINVAL;
    memset(out, 0, sizeof *out);
    pl_granules(best_k, best_l, &out->choice.g);
    out->location = best_l;
    out->cost = best;
    pl_group_why(env, n, best_k, best_l, best, run_k, run_l, run, key,
                 out->choice.why, sizeof out->choice.why);
    return DQO_OK;
}

/* ------------------------------------------------------------------- joins */

static double pl_paper_join(int alg, const plan_props *b, const plan_props *p,
                            bool sqo)
{
    double nb = (double)b->rows, np = (double)p->rows;
    bool dense = b->dense && p->dense;
    switch (alg) {
    case PLAN_JOIN_HASH: return 4.0 * (nb + np);
    case PLAN_JOIN_ORDER: return b->sorted && p->sorted ? nb + np : -1.0;
    case PLAN_JOIN_SORT:
        return (b->sorted || nb < 2 ? 0 : nb * log2(nb)) +
               (p->sorted || np < 2 ? 0 : np * log2(np)) + nb + np;
    case PLAN_JOIN_DIRECT: return dense && !sqo ? nb + np : -1.0;
    case PLAN_JOIN_BSEARCH:
        return !dense && !sqo
                   ? (nb + np) * log2((double)(b->ndv > 1 ? b->ndv : 1))
                   : -1.0;
    default: return -1.0;
    }
}

/* The direct join's offsets array: one u64 per build key slot, up to the
 * 2^26 slots cpu/join.c accepts (512 MiB): unlike a grouping's per-thread
 * tables it exists once, so it is bounded by memory, not by a cache. */
#define PL_JOIN_DIRECT_MAX_RANGE (UINT64_C(1) << 26)

double pl_join_cost(const pl_costenv *ce, int alg, const plan_props *b,
                    const plan_props *p)
{
    if (ce->paper)
        return alg == PLAN_JOIN_DIRECT &&
                       pl_range(b->min, b->max) > PL_JOIN_DIRECT_MAX_RANGE
                   ? -1.0
                   : pl_paper_join(alg, b, p, ce->env->sqo);
    double nb = (double)b->rows, np = (double)p->rows, t = ce->threads;
    double scan = 8.0 / pl_cpu_bw(ce); /* ns per key streamed */
    double ndv = (double)(b->ndv > 0 ? b->ndv : 1);
    double ns;
    switch (alg) {
    case PLAN_JOIN_HASH: {
        double w = (PL_HASH_NS + pl_miss_ns(ce, 0, 2.0 * ndv * 16.0)) / t;
        ns = (nb + np) * fmax(scan, w);
        break;
    }
    case PLAN_JOIN_DIRECT: {
        if (ce->env->sqo || !b->dense ||
            pl_range(b->min, b->max) > PL_JOIN_DIRECT_MAX_RANGE)
            return -1.0;
        double ws = (double)pl_range(b->min, b->max) * 8.0;
        ns = (nb + np) * fmax(scan, (PL_SPH_NS + pl_miss_ns(ce, 0, ws)) / t) +
             ws / pl_cpu_bw(ce);
        break;
    }
    case PLAN_JOIN_ORDER:
        if (!b->sorted || !p->sorted)
            return -1.0;
        ns = (nb + np) * (scan + PL_MERGE_NS / t);
        break;
    case PLAN_JOIN_SORT:
        ns = (nb + np) * (scan + PL_MERGE_NS / t) +
             1e6 * ((b->sorted ? 0 : pl_sort_ms(ce, b->rows, b->ndv)) +
                    (p->sorted ? 0 : pl_sort_ms(ce, p->rows, p->ndv)));
        break;
    case PLAN_JOIN_BSEARCH:
        if (ce->env->sqo)
            return -1.0;
        ns = nb * scan +
             np * fmax(scan, log2(ndv + 1.0) *
                                 (PL_BS_LEVEL_NS + pl_miss_ns(ce, 0, ndv * 8.0)) /
                                 t) +
             1e6 * (b->sorted ? 0 : pl_sort_ms(ce, b->rows, b->ndv));
        break;
    default: return -1.0;
    }
    return ns / 1e6 + PL_THREAD_START_MS;
}

/* ------------------------------------------------------- other operators */

double pl_filter_cost(const pl_costenv *ce, uint64_t rows, int npred)
{
    if (ce->paper)
        return (double)rows; /* one touch per tuple, like OG */
    return (double)rows * 8.0 * (npred > 0 ? npred : 1) / pl_cpu_bw(ce) / 1e6;
}

double pl_project_cost(const pl_costenv *ce, uint64_t rows, int ncols)
{
    if (ce->paper)
        return 0.0;
    return (double)rows * 8.0 * (ncols > 0 ? ncols : 1) / pl_cpu_bw(ce) / 1e6;
}

double pl_order_cost(const pl_costenv *ce, uint64_t rows)
{
    double n = (double)rows;
    if (n < 2)
        return 0.0;
    if (ce->paper)
        return n * log2(n);
    return n * log2(n) * PL_SORT_NS / ce->threads / 1e6;
}

double pl_stats_cost(const pl_costenv *ce, uint64_t bytes)
{
    if (ce->paper)
        return 0.0;
    return (double)bytes / pl_cpu_bw(ce) / 1e6;
}

/* ------------------------------------------------------------------ names */

const char *plan_join_name(plan_join_alg a)
{
    static const char *const n[] = {"hj", "sphj", "oj", "soj", "bsj"};
    return (unsigned)a < PLAN_JOIN_COUNT_ ? n[a] : "?";
}

const char *plan_join_paper_name(plan_join_alg a)
{
    static const char *const n[] = {"HJ", "SPHJ", "OJ", "SOJ", "BSJ"};
    return (unsigned)a < PLAN_JOIN_COUNT_ ? n[a] : "?";
}

const char *plan_group_paper_name(int k)
{
    static const char *const n[] = {"HG", "SPHG", "OG", "SOG", "BSG", "RADIX"};
    return k >= 0 && k < GRP_KERNEL_COUNT_ ? n[k] : "?";
}
