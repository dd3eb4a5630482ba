/*
 * calibrate.c - the CPU location's micro-benchmarks behind `dqo calibrate`:
 * what the planner's cost model needs to know of a set of cores that cache
 * sizes alone do not tell.
 *
 *  - Sequential read bandwidth at 1, 2, 4, 8, 12, 16, 24, 32... threads and
 *    at the location's thread count: a buffer several times the LLC
 *    (clamp(4 x L3, 256 MiB, 2 GiB); quick: clamp(2 x L3, 64 MiB, 512 MiB))
 *    is filled once by the bound team of all threads (first touch puts each
 *    share on its thread's node; the shares of a smaller spread-out team
 *    start on the same cores), then each thread sums its static share with
 *    a vectorisable uint64 loop. The total must equal the known sum of the
 *    fill pattern, so the reads cannot be optimised away.
 *  - Random-access cost: one thread chases pointers around a random cyclic
 *    permutation (Sattolo's algorithm) of 64-byte nodes, each load
 *    depending on the last, in working sets of half of L1d, of L2 and of
 *    the LLC, and max(256 MiB, 4 x L3) capped at 1 GiB for DRAM (quick:
 *    a 64 MiB floor, as the 4 x L3 that keeps the set out of the LLC is
 *    what matters).
 *  - Atomic adds by every thread, each to its own cache line and all to one
 *    word (the private and shared table modes of the kernels).
 *  - With opts->kernels: the per-row cost of each grouping kernel, forced
 *    through plan_force_group, on the paper's datasets (dqo_gen_grouping:
 *    4 Mi rows, quick 1 Mi; 16, 1000, 10^5 and 10^6 groups, quick 16,
 *    10^4 and 10^6; dense and sparse keys; og and sog on sorted keys, the
 *    others on unsorted ones, sphg on dense keys only, bsg up to 1000
 *    groups) running SELECT k, COUNT(*), SUM(v): 40 points, quick 29.
 *
 * Every number is the median of several runs after a warm-up run. Threads
 * are bound to the location's cores [first_core, first_core + ncores),
 * thread t of n to core first_core + t * ncores / n, when topo_can_bind().
 * Time on the 16-core reference host (300 MiB L3) with the 12-point kernel
 * grid: about 10 s, quick about 3-8 s. The 40-point grid (3 timed runs per
 * point instead of 5) is estimated at 15-20 s, quick under 10 s, from the
 * 12-point grid's per-row costs (not yet measured there); on 2 cores the
 * quick grid takes about 3 s. The budget of `dqo calibrate` leaves the CPU
 * 35 s and 10 s.
 */
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_int.h"
#include "planner/planner.h"

/* Buffer sizes (see above). The LLC multiple keeps the buffer out of the
 * cache; the floors matter on machines with a small LLC, the caps bound the
 * time and memory taken. */
#define CALIB_MIB ((uint64_t)1 << 20)
#define CALIB_BW_MIN (256 * CALIB_MIB)
#define CALIB_BW_MAX (2048 * CALIB_MIB)
#define CALIB_BW_QUICK_MIN (64 * CALIB_MIB)
#define CALIB_BW_QUICK_MAX (512 * CALIB_MIB)
#define CALIB_DRAM_MIN (256 * CALIB_MIB)
#define CALIB_DRAM_QUICK_MIN (64 * CALIB_MIB)
#define CALIB_DRAM_MAX (1024 * CALIB_MIB)

/* Timed runs after the warm-up run. */
#define CALIB_RUNS 5
#define CALIB_RUNS_QUICK 3

/* Dependent loads per timed chase: cache levels, then the DRAM set, whose
 * loads take ~100 ns each. */
#define CALIB_CHASE_STEPS ((uint64_t)1 << 21)
#define CALIB_CHASE_STEPS_QUICK ((uint64_t)1 << 19)
#define CALIB_CHASE_DRAM_STEPS ((uint64_t)1 << 20)
#define CALIB_CHASE_DRAM_STEPS_QUICK ((uint64_t)1 << 18)

/* Atomic adds per thread to a private line, and in all to the shared word
 * (contended adds serialise at ~50-100 ns each). */
#define CALIB_ATOMIC_PRIVATE ((uint64_t)4 << 20)
#define CALIB_ATOMIC_PRIVATE_QUICK ((uint64_t)1 << 20)
#define CALIB_ATOMIC_SHARED ((uint64_t)1 << 20)
#define CALIB_ATOMIC_SHARED_QUICK ((uint64_t)1 << 19)

/* The kernels' datasets. */
#define CALIB_KERN_ROWS ((uint64_t)4 << 20)
#define CALIB_KERN_ROWS_QUICK ((uint64_t)1 << 20)
#define CALIB_KERN_SEED 20240601

/* Group counts of the kernel points: from a table in L1 (16) through L2
 * (1000) and the LLC (10^5) to DRAM (10^6 dense groups: 8 MiB of keys and
 * more of accumulators); the planner interpolates in log(groups) between
 * them. Quick mode keeps the ends and one point in between. */
#define CALIB_NGROUPS 4
#define CALIB_NGROUPS_QUICK 3
static const uint64_t calib_kern_groups[CALIB_NGROUPS] = {16, 1000, 100000,
                                                          1000000};
static const uint64_t calib_kern_groups_quick[CALIB_NGROUPS_QUICK] = {
    16, 10000, 1000000};
/* bsg binary-searches the sorted distinct keys for every row: log2(groups)
 * dependent, cache-missing probes make it the slowest kernel beyond a few
 * thousand groups (profile_device.txt: 8.8 ns/row at 10^6 groups against
 * 1.6 for radix), so the planner never picks it there and it is not timed
 * there. */
#define CALIB_BSG_MAX_GROUPS 1000
/* Timed kernel runs after the warm-up: the 40-point grid at 4 Mi rows is
 * where a full calibration spends its time, and three runs already give a
 * stable median for runs of milliseconds. */
#define CALIB_KERN_RUNS 3

/* One calibration in progress. */
typedef struct calib_ctx {
    const calib_opts *o;
    plan_calib *out;
    char *err;
    size_t errlen;
    int threads, first_core, ncores;
    uint64_t l1d, l2, l3;
    int runs;
    /* The share of the whole run the current stage covers. */
    double stage_lo, stage_hi;
} calib_ctx;

static dqo_status calib_fail(calib_ctx *c, dqo_status st, const char *fmt, ...)
{
    if (c->err != NULL && c->errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

static dqo_status calib_nomem(calib_ctx *c, uint64_t bytes, const char *what)
{
    return calib_fail(c, DQO_ENOMEM,
                      "calibrate: cannot allocate %llu bytes for %s",
                      (unsigned long long)bytes, what);
}

/* Reports step i of n of the current stage. */
static void calib_progress(calib_ctx *c, int i, int n, const char *fmt, ...)
{
    if (c->o->progress == NULL)
        return;
    char step[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(step, sizeof step, fmt, ap);
    va_end(ap);
    const double f = n > 0 ? (double)i / n : 0.0;
    c->o->progress(c->o->progress_arg,
                   c->stage_lo + (c->stage_hi - c->stage_lo) * f, step);
}

static void calib_stage(calib_ctx *c, double lo, double hi)
{
    c->stage_lo = lo;
    c->stage_hi = hi;
}

static int calib_cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of v[0..n) (sorts v). */
static double calib_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, calib_cmp_double);
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint64_t calib_clamp(uint64_t x, uint64_t lo, uint64_t hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* Binds a team of n threads over the location's cores. */
static void calib_place(const calib_ctx *c, int n)
{
    cpu_team_place(n, c->first_core, c->ncores);
}

/* ------------------------------------------------------------ bandwidth */

/* The thread counts measured: 1, 2, 4, 8, then 1.5x and 2x steps (12, 16,
 * 24, 32, 48...) below `max`, and `max` itself. Returns how many. */
static int calib_bw_counts(int max, int *list)
{
    int n = 0;
    for (int k = 1; k < max && n < PLAN_CALIB_MAX_BW - 1;) {
        list[n++] = k;
        k = k < 8 ? 2 * k : (k & (k - 1)) == 0 ? k + k / 2 : k / 3 * 4;
    }
    list[n++] = max;
    return n;
}

/* The sum of p[0..n): a loop the compiler vectorises. */
static uint64_t calib_sum(const uint64_t *restrict p, uint64_t n)
{
    uint64_t s = 0;
    for (uint64_t i = 0; i < n; i++)
        s += p[i];
    return s;
}

/* Reads the whole buffer with k threads, each its static share; returns
 * the seconds taken and the sum in *sum. */
static double calib_read(const uint64_t *buf, uint64_t n, int k, uint64_t *sum)
{
    uint64_t total = 0;
    const double t0 = omp_get_wtime();
#pragma omp parallel num_threads(k) reduction(+ : total)
    for (int b = omp_get_thread_num(); b < k; b += omp_get_num_threads()) {
        const uint64_t lo = n * (uint64_t)b / (uint64_t)k;
        const uint64_t hi = n * (uint64_t)(b + 1) / (uint64_t)k;
        total += calib_sum(buf + lo, hi - lo);
    }
    const double t1 = omp_get_wtime();
    *sum = total;
    return t1 - t0;
}

static dqo_status calib_bandwidth(calib_ctx *c)
{
    const bool quick = c->o->quick;
    const uint64_t n =
        (quick ? calib_clamp(2 * c->l3, CALIB_BW_QUICK_MIN, CALIB_BW_QUICK_MAX)
               : calib_clamp(4 * c->l3, CALIB_BW_MIN, CALIB_BW_MAX)) /
        sizeof(uint64_t);
    const uint64_t bytes = n * sizeof(uint64_t);
    int counts[PLAN_CALIB_MAX_BW];
    const int npts = calib_bw_counts(c->threads, counts);

    calib_progress(c, 0, npts + 1, "read bandwidth, filling %llu MiB",
                   (unsigned long long)(bytes >> 20));
    uint64_t *buf = mem_alloc(n * sizeof *buf);
    if (buf == NULL)
        return calib_nomem(c, bytes, "the bandwidth buffer");
    /* First touch by the team of all threads, share by share. */
    const int T = c->threads;
    calib_place(c, T);
#pragma omp parallel num_threads(T)
    for (int b = omp_get_thread_num(); b < T; b += omp_get_num_threads()) {
        const uint64_t lo = n * (uint64_t)b / (uint64_t)T;
        const uint64_t hi = n * (uint64_t)(b + 1) / (uint64_t)T;
        for (uint64_t i = lo; i < hi; i++)
            buf[i] = i;
    }
    /* The pattern's sum, modulo 2^64 as the reads compute it. */
    const uint64_t want = n % 2 == 0 ? n / 2 * (n - 1) : (n - 1) / 2 * n;

    dqo_status st = DQO_OK;
    for (int p = 0; p < npts; p++) {
        const int k = counts[p];
        calib_progress(c, p + 1, npts + 1, "read bandwidth, %d thread%s", k,
                       k == 1 ? "" : "s");
        calib_place(c, k);
        double t[CALIB_RUNS];
        for (int r = -1; r < c->runs; r++) {
            uint64_t sum = 0;
            const double s = calib_read(buf, n, k, &sum);
            if (sum != want) {
                st = calib_fail(c, DQO_EINTERNAL,
                                "calibrate: read bandwidth at %d threads "
                                "summed %llu, expected %llu",
                                k, (unsigned long long)sum,
                                (unsigned long long)want);
                goto done;
            }
            if (r >= 0)
                t[r] = s;
        }
        const double med = calib_median(t, c->runs);
        c->out->bw_threads[p] = k;
        c->out->bw_gbs[p] = med > 0 ? (double)bytes / med / 1e9 : 0.0;
    }
    c->out->nbw = npts;
done:
    mem_free(buf);
    return st;
}

/* ------------------------------------------------------ random access */

/* A node of the chase: one cache line. */
typedef struct calib_node {
    struct calib_node *next;
    char pad[64 - sizeof(struct calib_node *)];
} calib_node;

/* Read by nobody: keeps the chase's final pointer alive. */
static volatile uintptr_t calib_sink;

static inline uint64_t calib_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Follows `steps` next pointers from p, each load depending on the last. */
static const calib_node *calib_chase(const calib_node *p, uint64_t steps)
{
    for (uint64_t i = 0; i < steps; i += 8) {
        p = p->next;
        p = p->next;
        p = p->next;
        p = p->next;
        p = p->next;
        p = p->next;
        p = p->next;
        p = p->next;
    }
    return p;
}

/* ns per dependent load over `bytes` of nodes linked into one random cycle
 * (Sattolo's algorithm on a compact index array, then one sequential pass
 * that turns it into pointers). */
static dqo_status calib_latency_one(calib_ctx *c, uint64_t bytes,
                                    uint64_t steps, int runs, bool warm_all,
                                    double *ns, uint64_t *used)
{
    uint64_t n = bytes / sizeof(calib_node);
    n = n < 16 ? 16 : n;
    *used = n * sizeof(calib_node);
    uint32_t *perm = mem_alloc(n * sizeof *perm);
    calib_node *nodes = mem_alloc(n * sizeof *nodes);
    if (perm == NULL || nodes == NULL) {
        mem_free(perm);
        mem_free(nodes);
        return calib_nomem(c, n * (sizeof *perm + sizeof *nodes),
                           "the pointer chase");
    }
    for (uint64_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    /* Sattolo: i -> perm[i] is a uniformly random single n-cycle. */
    uint64_t seed = 0x5eed0c0ffeeULL ^ n;
    for (uint64_t i = n - 1; i > 0; i--) {
        const uint64_t j = ((calib_rand(&seed) >> 32) * i) >> 32; /* < i */
        const uint32_t x = perm[i];
        perm[i] = perm[j];
        perm[j] = x;
    }
    for (uint64_t i = 0; i < n; i++)
        nodes[i].next = &nodes[perm[i]];
    mem_free(perm);

    const calib_node *p = &nodes[0];
    /* Warm-up: once around a set that fits in a cache, or one run's worth;
     * a set far larger than the caches needs only its first misses. */
    const uint64_t warm = n < steps ? n : steps;
    p = calib_chase(p, warm_all ? warm : warm / 8);
    double t[CALIB_RUNS];
    for (int r = 0; r < runs; r++) {
        const double t0 = omp_get_wtime();
        p = calib_chase(p, steps);
        t[r] = omp_get_wtime() - t0;
    }
    calib_sink = (uintptr_t)p;
    *ns = calib_median(t, runs) * 1e9 / (double)steps;
    mem_free(nodes);
    return DQO_OK;
}

static dqo_status calib_latency(calib_ctx *c)
{
    const bool quick = c->o->quick;
    const uint64_t dram =
        calib_clamp(4 * c->l3, quick ? CALIB_DRAM_QUICK_MIN : CALIB_DRAM_MIN,
                    CALIB_DRAM_MAX);
    const struct {
        const char *name;
        uint64_t bytes;
        bool dram;
    } lv[] = {{"L1", c->l1d / 2, false},
              {"L2", c->l2 / 2, false},
              {"LLC", c->l3 / 2, false},
              {"DRAM", dram, true}};
    const int nlv = (int)(sizeof lv / sizeof lv[0]);
    /* One thread, on the location's first core. */
    calib_place(c, 1);
    for (int i = 0; i < nlv; i++) {
        calib_progress(c, i, nlv, "random access, %s (%llu KiB)", lv[i].name,
                       (unsigned long long)(lv[i].bytes >> 10));
        const uint64_t steps =
            lv[i].dram ? (quick ? CALIB_CHASE_DRAM_STEPS_QUICK
                                : CALIB_CHASE_DRAM_STEPS)
                       : (quick ? CALIB_CHASE_STEPS_QUICK : CALIB_CHASE_STEPS);
        /* The DRAM set's chase is long: three runs are enough there. */
        const int runs = lv[i].dram && c->runs > 3 ? 3 : c->runs;
        double ns = 0;
        uint64_t used = 0;
        dqo_status st = calib_latency_one(c, lv[i].bytes, steps, runs,
                                          !lv[i].dram, &ns, &used);
        if (st != DQO_OK)
            return st;
        const int k = c->out->nlat++;
        c->out->lat_bytes[k] = used;
        snprintf(c->out->lat_level[k], sizeof c->out->lat_level[k], "%s",
                 lv[i].name);
        c->out->lat_ns[k] = ns;
    }
    return DQO_OK;
}

/* ------------------------------------------------------------- atomics */

typedef struct calib_counter {
    uint64_t v;
    char pad[64 - sizeof(uint64_t)];
} calib_counter;

/* One timed run: every thread adds 1 `per` times to its own counter
 * (shared: to ctr[T]). Returns seconds; *got is the team size. */
static double calib_atomic_run(calib_counter *ctr, int T, uint64_t per,
                               bool shared, int *got)
{
    for (int t = 0; t <= T; t++)
        ctr[t].v = 0;
    double t0 = 0, t1 = 0;
    int nt = 1;
#pragma omp parallel num_threads(T)
    {
        const int t = omp_get_thread_num();
        uint64_t *w = shared ? &ctr[T].v : &ctr[t].v;
#pragma omp barrier
#pragma omp master
        {
            nt = omp_get_num_threads();
            t0 = omp_get_wtime();
        }
        for (uint64_t i = 0; i < per; i++)
            __atomic_fetch_add(w, 1, __ATOMIC_RELAXED);
#pragma omp barrier
#pragma omp master
        t1 = omp_get_wtime();
    }
    *got = nt;
    return t1 - t0;
}

static dqo_status calib_atomics(calib_ctx *c)
{
    const bool quick = c->o->quick;
    const int T = c->threads;
    calib_counter *ctr = mem_alloc(((size_t)T + 1) * sizeof *ctr);
    if (ctr == NULL)
        return calib_nomem(c, ((uint64_t)T + 1) * sizeof *ctr,
                           "the atomic counters");
    calib_place(c, T);
    dqo_status st = DQO_OK;
    for (int mode = 0; mode < 2; mode++) {
        const bool shared = mode == 1;
        calib_progress(c, mode, 2, "atomic adds, %s, %d thread%s",
                       shared ? "one shared word" : "private lines", T,
                       T == 1 ? "" : "s");
        uint64_t per =
            shared
                ? (quick ? CALIB_ATOMIC_SHARED_QUICK : CALIB_ATOMIC_SHARED) /
                      (uint64_t)T
                : (quick ? CALIB_ATOMIC_PRIVATE_QUICK : CALIB_ATOMIC_PRIVATE);
        per = per < 1024 ? 1024 : per;
        double rate[CALIB_RUNS];
        for (int r = -1; r < c->runs; r++) {
            int nt = 1;
            /* The warm-up run is an eighth as long. */
            const uint64_t each = r < 0 ? per / 8 : per;
            const double s = calib_atomic_run(ctr, T, each, shared, &nt);
            /* Every add must have landed. */
            bool ok = true;
            if (shared)
                ok = ctr[T].v == each * (uint64_t)nt;
            else
                for (int t = 0; t < nt; t++)
                    ok = ok && ctr[t].v == each;
            if (!ok) {
                st = calib_fail(c, DQO_EINTERNAL,
                                "calibrate: atomic counters (%s) lost adds",
                                shared ? "shared" : "private");
                goto done;
            }
            if (r >= 0)
                rate[r] = s > 0 ? (double)each * nt / s / 1e6 : 0.0;
        }
        const double m = calib_median(rate, c->runs);
        if (shared)
            c->out->atomic_shared_mops = m;
        else
            c->out->atomic_private_mops = m;
    }
done:
    mem_free(ctr);
    return st;
}

/* ------------------------------------------------------------- kernels */

/* Times kernel `kernel` on the input: the median of c->runs runs after a
 * warm-up, in ns per row, appended to out->kern. */
static dqo_status calib_kernel(calib_ctx *c, const grp_input *in, int kernel,
                               uint64_t groups, bool sorted, bool sparse)
{
    const int runs = c->runs < CALIB_KERN_RUNS ? c->runs : CALIB_KERN_RUNS;
    plan_choice pc;
    plan_force_group(kernel, &pc);
    const char *name = grp_kernel_name((grp_kernel)kernel);
    double t[CALIB_RUNS];
    for (int r = -1; r < runs; r++) {
        grp_output out;
        memset(&out, 0, sizeof out);
        const double t0 = omp_get_wtime();
        const dqo_status st = cpu_group(in, &pc.g, &out);
        const double t1 = omp_get_wtime();
        if (st == DQO_ENOMEM)
            return calib_fail(c, st, "calibrate: out of memory in kernel %s",
                              name);
        if (st != DQO_OK)
            return calib_fail(c, st, "calibrate: kernel %s failed (%s)", name,
                              dqo_status_name(st));
        if (r < 0) {
            /* The groups' counts must add up to the rows. */
            uint64_t rows = 0;
            for (uint64_t g = 0; g < out.groups; g++)
                rows += (uint64_t)out.count[g];
            if (rows != in->rows) {
                grp_output_free(&out, in->naggs);
                return calib_fail(c, DQO_EINTERNAL,
                                  "calibrate: kernel %s counted %llu of %llu "
                                  "rows",
                                  name, (unsigned long long)rows,
                                  (unsigned long long)in->rows);
            }
        } else {
            t[r] = t1 - t0;
        }
        grp_output_free(&out, in->naggs);
    }
    if (c->out->nkern >= PLAN_CALIB_MAX_KERN)
        return DQO_OK;
    plan_kcost *k = &c->out->kern[c->out->nkern++];
    snprintf(k->kernel, sizeof k->kernel, "%s", name);
    k->rows = in->rows;
    k->groups = groups;
    k->threads = in->threads;
    k->ns_per_row = calib_median(t, runs) * 1e9 / (double)in->rows;
    k->sorted = sorted;
    k->sparse = sparse;
    return DQO_OK;
}

/* The four datasets of dqo_gen_grouping. */
static const struct calib_dataset {
    bool sorted, sparse;
    const char *name;
} calib_datasets[] = {{false, false, "unsorted dense"},
                      {false, true, "unsorted sparse"},
                      {true, false, "sorted dense"},
                      {true, true, "sorted sparse"}};

/* Whether kernel k is measured on a dataset: og and sog on sorted keys
 * (where the planner picks them), the others on unsorted keys; sphg only
 * on dense keys (a sparse range over the 32-bit domain is beyond its array
 * limit); bsg only up to CALIB_BSG_MAX_GROUPS groups. */
static bool calib_kernel_applies(int k, const struct calib_dataset *d,
                                 uint64_t groups)
{
    const bool on_sorted = k == GRP_KERNEL_ORDER || k == GRP_KERNEL_SORT;
    if (on_sorted != d->sorted)
        return false;
    if (k == GRP_KERNEL_DIRECT && d->sparse)
        return false;
    return k != GRP_KERNEL_BSEARCH || groups <= CALIB_BSG_MAX_GROUPS;
}

/* Generates one dataset and times every kernel that applies to it. */
static dqo_status calib_kernels_on(calib_ctx *c, uint32_t *keys, int32_t *vals,
                                   uint64_t rows, uint64_t groups,
                                   const struct calib_dataset *d, int *step,
                                   int steps)
{
    const int T = c->threads;
    dqo_status st = cpu_gen_grouping(keys, vals, rows, groups, d->sorted,
                                     d->sparse, CALIB_KERN_SEED, T);
    if (st != DQO_OK)
        return calib_fail(c, st, "calibrate: generating %s keys failed (%s)",
                          d->name, dqo_status_name(st));
    dqo_column_stats ks;
    st = cpu_stats(DQO_TYPE_U32, keys, NULL, rows, T, &ks);
    if (st != DQO_OK)
        return calib_fail(c, st, "calibrate: key statistics failed (%s)",
                          dqo_status_name(st));
    const grp_agg agg = {AGG_OP_SUM, DQO_TYPE_I32, vals, NULL, NULL};
    const grp_input in = {.key_type = DQO_TYPE_U32,
                          .keys = keys,
                          .rows = rows,
                          .key_stats = &ks,
                          .aggs = &agg,
                          .naggs = 1,
                          .threads = T};
    for (int k = 0; k < GRP_KERNEL_COUNT_; k++) {
        if (!calib_kernel_applies(k, d, groups))
            continue;
        calib_progress(c, (*step)++, steps, "kernel %s, %llu groups, %s",
                       grp_kernel_name((grp_kernel)k),
                       (unsigned long long)groups, d->name);
        st = calib_kernel(c, &in, k, groups, d->sorted, d->sparse);
        if (st != DQO_OK)
            return st;
    }
    return DQO_OK;
}

static dqo_status calib_kernels(calib_ctx *c)
{
    const bool quick = c->o->quick;
    const uint64_t rows = quick ? CALIB_KERN_ROWS_QUICK : CALIB_KERN_ROWS;
    const uint64_t *groups = quick ? calib_kern_groups_quick : calib_kern_groups;
    const int ng = quick ? CALIB_NGROUPS_QUICK : CALIB_NGROUPS;
    const int nd = (int)(sizeof calib_datasets / sizeof calib_datasets[0]);
    int steps = 0;
    for (int gi = 0; gi < ng; gi++)
        for (int d = 0; d < nd; d++)
            for (int k = 0; k < GRP_KERNEL_COUNT_; k++)
                steps += calib_kernel_applies(k, &calib_datasets[d], groups[gi]);

    uint32_t *keys = mem_alloc(rows * sizeof *keys);
    int32_t *vals = mem_alloc(rows * sizeof *vals);
    if (keys == NULL || vals == NULL) {
        mem_free(keys);
        mem_free(vals);
        return calib_nomem(c, rows * (sizeof *keys + sizeof *vals),
                           "the kernels' dataset");
    }
    calib_place(c, c->threads);
    dqo_status st = DQO_OK;
    int step = 0;
    for (int gi = 0; gi < ng && st == DQO_OK; gi++)
        for (int d = 0; d < nd && st == DQO_OK; d++)
            st = calib_kernels_on(c, keys, vals, rows, groups[gi],
                                  &calib_datasets[d], &step, steps);
    mem_free(keys);
    mem_free(vals);
    return st;
}

/* -------------------------------------------------------------- driver */

dqo_status cpu_calibrate(int dev, const calib_opts *o, plan_calib *out,
                         char *err, size_t errlen)
{
    (void)dev;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL || o == NULL)
        return DQO_EINVAL;
    memset(out, 0, sizeof *out);
    calib_ctx c = {.o = o, .out = out, .err = err, .errlen = errlen};
    if (o->threads < 1)
        return calib_fail(&c, DQO_EINVAL, "calibrate: threads %d < 1",
                          o->threads);
    if (o->first_core < 0 || o->ncores < 1)
        return calib_fail(&c, DQO_EINVAL,
                          "calibrate: bad core range first %d, count %d",
                          o->first_core, o->ncores);
    cpu_caches cc;
    cpu_get_caches(&cc);
    c.threads = o->threads;
    c.first_core = o->first_core;
    c.ncores = o->ncores;
    c.l1d = o->l1d != 0 ? o->l1d : cc.l1d;
    c.l2 = o->l2 != 0 ? o->l2 : cc.l2;
    c.l3 = o->l3 != 0 ? o->l3 : cc.l3;
    c.runs = o->quick ? CALIB_RUNS_QUICK : CALIB_RUNS;

    const double start = omp_get_wtime();
    /* Shares of the run per stage, roughly their times. */
    const double kshare = o->kernels ? 0.35 : 0.0;
    const double rest = 1.0 - kshare;
    dqo_status st;
    calib_stage(&c, 0.0, 0.45 * rest);
    if ((st = calib_bandwidth(&c)) != DQO_OK)
        goto fail;
    calib_stage(&c, 0.45 * rest, 0.85 * rest);
    if ((st = calib_latency(&c)) != DQO_OK)
        goto fail;
    calib_stage(&c, 0.85 * rest, rest);
    if ((st = calib_atomics(&c)) != DQO_OK)
        goto fail;
    if (o->kernels) {
        calib_stage(&c, rest, 1.0);
        if ((st = calib_kernels(&c)) != DQO_OK)
            goto fail;
    }
    calib_stage(&c, 1.0, 1.0);
    calib_progress(&c, 1, 1, "done");
    out->seconds = omp_get_wtime() - start;
    out->valid = true;
    return DQO_OK;
fail:
    memset(out, 0, sizeof *out);
    return st;
}
