/*
 * calibrate.c - `dqo calibrate` for one OpenCL device: micro-benchmarks
 * whose results (plan_calib) the planner costs device granules from.
 *
 * One context and one in-order, profiling queue on the device; the program
 * kernels/calibrate.cl is built once per calibration (PoCL compiles with
 * LLVM: seconds when its kernel cache is cold) and every object is
 * released on every path. Steps, in order:
 *
 *  - launch latency: an empty kernel, enqueue + clFinish, wall clock,
 *    median of plan.launch_reps (microseconds);
 *  - sequential read bandwidth: a kernel sums a buffer filled with 0, 1, 2...
 *    (16-byte loads) into per-work-group partial sums that the host checks
 *    against n(n-1)/2, so the reads cannot be optimised away; one point at
 *    bw_threads[0] = compute units;
 *  - random reads: independent reads at indices from a 32-bit LCG within a
 *    local-memory buffer ("local"), within half the global memory cache
 *    ("L2", when the device reports one) and within up to 256 MiB of
 *    global memory ("DRAM"): ns per read across the whole device;
 *  - atomic adds: 32-bit atomic_add, each work-item to its own word 64
 *    bytes apart (private) and all to one word (shared), in million updates
 *    per second; the host checks the final counters;
 *  - transfers: blocking clEnqueueWriteBuffer / ReadBuffer between the
 *    device buffer and host memory from mem_alloc (pageable) or a mapped
 *    CL_MEM_ALLOC_HOST_PTR buffer (pinned), GB/s (1e9 B/s).
 *
 * Kernel times come from event profiling (start to end), the median of
 * plan.reps runs after one warm-up.
 *
 * With opts->kernels, the grouping-kernel cost points (kern[]) follow,
 * after the calibration's own context is released (its buffers would take
 * device memory the grouping needs): SELECT k, COUNT(*), SUM(v) GROUP BY k
 * through the back-end's own `group` op (ocl_group, the granule of
 * plan_force_group) on u32 keys and i32 values made by the CPU back-end's
 * dqo_gen_grouping generator (cpu_backend.gen_grouping, through the ops
 * table, so both locations are timed on the same data) and uploaded
 * resident (ocl_col_upload) first: hg, sphg (dense keys only), radix on
 * unsorted keys, og and sog on sorted keys, each on dense and sparse keys,
 * at 16, 10^3, 10^5 and 10^6 groups. ns_per_row is the device time
 * (grp_output.device_ms: until the result is in device memory, without its
 * download), the median of kern_reps runs after one warm-up. A family that
 * fails at a point (a PoCL limit, a hash table that overflows, too little
 * device memory for the upload) leaves that point out; only a host
 * allocation failure fails the calibration. Sizes: GPUs 16 Mi rows
 * (quick 4 Mi); CPU devices (PoCL), whose kernels run some 50x slower and
 * compile each table shape once with LLVM, 1 Mi rows at all four group
 * counts, quick 64 Ki rows at 10^3 and 10^6 groups only, one timed run:
 * a second or two once PoCL's kernel cache is warm.
 *
 * Sizes (ocl_calib_plan_for): GPUs stream 512 MiB (256 MiB in quick mode)
 * and copy 256 MiB (64 MiB); CPU devices, whose memory the host shares and
 * whose kernels run far slower, stream 256 MiB (64 MiB) and copy 64 MiB
 * (16 MiB). The streamed buffer grows to four times the global memory cache
 * when that is larger, up to 1 GiB; all stays within max_alloc and a
 * quarter of global memory. On PoCL with 2 cores: quick about 0.7 s,
 * normal about 3-5 s, plus about 3 s of LLVM compiling when PoCL's kernel
 * cache is cold.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "opencl/ocl_group.h"
#include "planner/planner.h"

#define MIB ((uint64_t)1 << 20)
/* Elements of the read buffer stay below 2^30 so that read_sum can add the
 * four lanes of a load in 32 bits (kernels/calibrate.cl). */
#define CAL_BUF_MAX ((uint64_t)1 << 30)
/* Working sets of the DRAM level: 256 MiB is far beyond any device cache
 * today (H100: 50 MiB L2; MI300X: 256 MiB Infinity Cache is the one
 * exception, where this level measures that cache). */
#define CAL_DRAM_SET (256 * MIB)
/* Work-items per work-group: 256 is a multiple of every GPU's SIMD width
 * (32, 64) and small enough for every device's limit we know. */
#define CAL_MAX_WG 256
/* Local reads are cheap; 4x the reads keep the kernel long enough against
 * filling the local buffer first. */
#define CAL_LOCAL_READS_FACTOR 4

enum cal_kernel {
    K_FILL,
    K_READ,
    K_GATHER,
    K_GATHER_LOCAL,
    K_ATOMIC_PRIVATE,
    K_ATOMIC_SHARED,
    K_NOOP,
    K_COUNT
};

static const char *const kernel_names[K_COUNT] = {
    "fill_iota",      "read_sum",      "gather_global", "gather_local",
    "atomic_private", "atomic_shared", "noop"};

typedef struct cal {
    const calib_opts *opts;
    ocl_calib_plan plan;
    dev_info info;
    cl_device_id dev;
    cl_context ctx;
    cl_command_queue q;
    cl_program prog;
    cl_kernel k[K_COUNT];
    size_t wg[K_COUNT]; /* local size per kernel (a power of two) */
    size_t groups;      /* work-groups per launch */
    cl_mem buf, out, ctr, pinned;
    void *mapped;        /* the pinned buffer's host side while mapped */
    size_t atomic_items; /* work-items of atomic_private (counter words) */
    ocl_err e;
    const char *step; /* what runs now, for progress and errors */
    char step_text[64];
    char msg[2048];
} cal;

static uint64_t pow2_floor(uint64_t x)
{
    uint64_t p = 1;
    if (x == 0)
        return 0;
    while (p <= x / 2)
        p *= 2;
    return p;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static unsigned log2_u64(uint64_t x)
{
    unsigned n = 0;
    while (x > 1) {
        x >>= 1;
        n++;
    }
    return n;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of t[0..n-1] (sorts t). */
static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 == 1 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static void progress(cal *c, double done, const char *step)
{
    c->step = step;
    if (c->opts != NULL && c->opts->progress != NULL)
        c->opts->progress(c->opts->progress_arg, done, step);
}

void ocl_calib_plan_for(const dev_info *d, bool quick, ocl_calib_plan *p)
{
    const bool cpu = d->is_cpu;
    memset(p, 0, sizeof *p);
    /* Stream at least four times the device's cache so that it measures
     * memory, not the cache. */
    uint64_t buf = (cpu ? (quick ? 64 : 256) : (quick ? 256 : 512)) * MIB;
    while (buf < 4 * d->global_cache && buf < CAL_BUF_MAX)
        buf *= 2;
    uint64_t cap =
        min_u64(min_u64(d->max_alloc, d->global_mem / 4), CAL_BUF_MAX);
    p->buf_bytes = min_u64(buf, pow2_floor(cap));
    p->lat_dram = min_u64(p->buf_bytes, CAL_DRAM_SET);
    p->lat_l2 = pow2_floor(d->global_cache / 2);
    /* Three quarters of local memory leaves room for what the compiler
     * reserves; at most 1 MiB (PoCL reports 1 MiB of local memory that it
     * keeps in host memory: its "local" point is a cache-resident set). */
    p->lat_local = min_u64(pow2_floor(d->local_mem * 3 / 4), MIB);
    /* Random reads and atomic adds per timed run: some milliseconds on a
     * GPU, some tens of milliseconds on a CPU device. */
    const unsigned reads_log2 = cpu ? (quick ? 22 : 23) : (quick ? 26 : 28);
    const unsigned atomics_log2 = cpu ? (quick ? 20 : 22) : (quick ? 24 : 26);
    p->lat_reads = (uint64_t)1 << reads_log2;
    p->atomic_updates = (uint64_t)1 << atomics_log2;
    p->xfer_bytes =
        min_u64(p->buf_bytes, (cpu ? 16 : 64) * MIB * (quick ? 1 : 4));
    p->groups_per_cu = cpu ? 4 : 8;
    p->reps = quick ? 3 : 7;
    p->launch_reps = 100;
}

/* Brings an explicit plan within what the device and the kernels allow. */
static bool plan_fix(cal *c)
{
    ocl_calib_plan *p = &c->plan;
    p->buf_bytes = pow2_floor(
        min_u64(min_u64(p->buf_bytes, CAL_BUF_MAX), c->info.max_alloc));
    if (p->buf_bytes < 4096)
        return ocl_errf(&c->e, DQO_EUNSUPPORTED,
                        "device allows only %llu-byte buffers",
                        (unsigned long long)c->info.max_alloc);
    /* Working sets hold at least two uints (the kernels shift by 31 at
     * most); the global ones lie in the read buffer. */
    p->lat_dram = pow2_floor(min_u64(p->lat_dram, p->buf_bytes));
    p->lat_l2 = pow2_floor(min_u64(p->lat_l2, p->buf_bytes));
    p->lat_local = pow2_floor(min_u64(p->lat_local, c->info.local_mem));
    if (p->lat_l2 >= p->lat_dram)
        p->lat_l2 = 0;
    if (p->lat_local < 8)
        p->lat_local = 0;
    if (p->lat_l2 < 8)
        p->lat_l2 = 0;
    if (p->lat_dram < 8)
        p->lat_dram = 0;
    p->xfer_bytes = min_u64(p->xfer_bytes, p->buf_bytes);
    if (p->xfer_bytes == 0)
        p->xfer_bytes = p->buf_bytes;
    if (p->lat_reads == 0)
        p->lat_reads = 1;
    if (p->groups_per_cu < 1)
        p->groups_per_cu = 1;
    if (p->reps < 1)
        p->reps = 1;
    if (p->reps > OCL_CALIB_MAX_REPS)
        p->reps = OCL_CALIB_MAX_REPS;
    if (p->launch_reps < 1)
        p->launch_reps = 1;
    if (p->launch_reps > OCL_CALIB_MAX_LAUNCHES)
        p->launch_reps = OCL_CALIB_MAX_LAUNCHES;
    /* The shared counter (32 bits) must not wrap over all runs. */
    const uint64_t runs = (uint64_t)p->reps + 1;
    p->atomic_updates = min_u64(p->atomic_updates, UINT32_MAX / runs / 2);
    if (p->atomic_updates == 0)
        p->atomic_updates = 1;
    return true;
}

static bool set_arg(cal *c, int k, cl_uint index, size_t size,
                    const void *value)
{
    return OCL_CALL(&c->e, clSetKernelArg, c->k[k], index, size, value);
}

/* Runs kernel k plan.reps times after one warm-up; *ns is the median of
 * the event-profiled times. */
static bool time_kernel(cal *c, int k, size_t global, size_t local, double *ns)
{
    double t[OCL_CALIB_MAX_REPS];
    for (int r = -1; r < c->plan.reps; r++) {
        cl_event ev = NULL;
        cl_ulong t0 = 0, t1 = 0;
        bool ok = OCL_CALL(&c->e, clEnqueueNDRangeKernel, c->q, c->k[k], 1,
                           NULL, &global, &local, 0, NULL, &ev);
        if (ok)
            ocl_count_object(ev);
        ok = ok && OCL_CALL(&c->e, clWaitForEvents, 1, &ev) &&
             OCL_CALL(&c->e, clGetEventProfilingInfo, ev,
                      CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL) &&
             OCL_CALL(&c->e, clGetEventProfilingInfo, ev,
                      CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
        ocl_release_event(ev);
        if (!ok)
            return false;
        if (r >= 0)
            t[r] = t1 > t0 ? (double)(t1 - t0) : 1.0;
    }
    *ns = median(t, c->plan.reps);
    return true;
}

/* Context, queue, program, kernels and the buffers every step shares. */
static bool cal_setup(cal *c)
{
    c->ctx = OCL_MAKE(&c->e, clCreateContext, NULL, 1, &c->dev, NULL, NULL);
    if (c->ctx == NULL)
        return false;
    c->q = OCL_MAKE(&c->e, clCreateCommandQueue, c->ctx, c->dev,
                    CL_QUEUE_PROFILING_ENABLE);
    if (c->q == NULL)
        return false;
    c->prog = ocl_build(c->ctx, c->dev, "calibrate", OCL_BUILD_OPTIONS, &c->e);
    if (c->prog == NULL)
        return false;
    for (int k = 0; k < K_COUNT; k++) {
        c->k[k] = OCL_MAKE(&c->e, clCreateKernel, c->prog, kernel_names[k]);
        if (c->k[k] == NULL)
            return false;
        size_t max = 1;
        if (k != K_NOOP &&
            !OCL_CALL(&c->e, clGetKernelWorkGroupInfo, c->k[k], c->dev,
                      CL_KERNEL_WORK_GROUP_SIZE, sizeof max, &max, NULL))
            return false;
        c->wg[k] = (size_t)pow2_floor(min_u64(max, CAL_MAX_WG));
        if (c->wg[k] == 0)
            c->wg[k] = 1;
    }
    const uint32_t units =
        c->info.compute_units > 0 ? c->info.compute_units : 1;
    c->groups = (size_t)units * (size_t)c->plan.groups_per_cu;
    /* out: read_sum's partial sums, or one uint per gather work-item. */
    size_t out_bytes = c->groups * sizeof(cl_ulong);
    for (int k = K_GATHER; k <= K_GATHER_LOCAL; k++)
        if (c->groups * c->wg[k] * sizeof(cl_uint) > out_bytes)
            out_bytes = c->groups * c->wg[k] * sizeof(cl_uint);
    c->atomic_items = c->groups * c->wg[K_ATOMIC_PRIVATE];
    c->buf = OCL_MAKE(&c->e, clCreateBuffer, c->ctx, CL_MEM_READ_WRITE,
                      (size_t)c->plan.buf_bytes, NULL);
    if (c->buf == NULL)
        return false;
    c->out = OCL_MAKE(&c->e, clCreateBuffer, c->ctx, CL_MEM_READ_WRITE,
                      out_bytes, NULL);
    if (c->out == NULL)
        return false;
    /* One 64-byte line per private counter, and one for the shared one. */
    c->ctr = OCL_MAKE(&c->e, clCreateBuffer, c->ctx, CL_MEM_READ_WRITE,
                      (c->atomic_items + 1) * 64, NULL);
    return c->ctr != NULL;
}

static bool cal_launch(cal *c, plan_calib *out)
{
    double t[OCL_CALIB_MAX_LAUNCHES];
    const size_t one = 1;
    /* The first launch may compile the kernel (PoCL): a warm-up. */
    for (int r = -1; r < c->plan.launch_reps; r++) {
        const double t0 = now_ns();
        if (!OCL_CALL(&c->e, clEnqueueNDRangeKernel, c->q, c->k[K_NOOP], 1,
                      NULL, &one, NULL, 0, NULL, NULL) ||
            !OCL_CALL(&c->e, clFinish, c->q))
            return false;
        if (r >= 0)
            t[r] = now_ns() - t0;
    }
    out->launch_us = median(t, c->plan.launch_reps) / 1e3;
    return true;
}

/* Fills the read buffer with 0, 1, 2, ... (uints). */
static bool cal_fill(cal *c)
{
    const cl_ulong n4 = c->plan.buf_bytes / 16;
    const cl_uint contiguous = c->info.is_cpu;
    const size_t local = c->wg[K_FILL], global = c->groups * local;
    return set_arg(c, K_FILL, 0, sizeof c->buf, &c->buf) &&
           set_arg(c, K_FILL, 1, sizeof n4, &n4) &&
           set_arg(c, K_FILL, 2, sizeof contiguous, &contiguous) &&
           OCL_CALL(&c->e, clEnqueueNDRangeKernel, c->q, c->k[K_FILL], 1, NULL,
                    &global, &local, 0, NULL, NULL) &&
           OCL_CALL(&c->e, clFinish, c->q);
}

static bool cal_read_bw(cal *c, plan_calib *out)
{
    bool ok = false;
    cl_ulong *partial = NULL;
    const cl_ulong n4 = c->plan.buf_bytes / 16;
    const cl_uint contiguous = c->info.is_cpu;
    const size_t local = c->wg[K_READ], global = c->groups * local;
    double ns = 0;
    if (!set_arg(c, K_READ, 0, sizeof c->buf, &c->buf) ||
        !set_arg(c, K_READ, 1, sizeof n4, &n4) ||
        !set_arg(c, K_READ, 2, sizeof contiguous, &contiguous) ||
        !set_arg(c, K_READ, 3, local * sizeof(cl_ulong), NULL) ||
        !set_arg(c, K_READ, 4, sizeof c->out, &c->out) ||
        !time_kernel(c, K_READ, global, local, &ns))
        goto fail;
    partial = mem_alloc(c->groups * sizeof *partial);
    if (partial == NULL) {
        ocl_errf(&c->e, DQO_ENOMEM, "out of memory for %zu partial sums",
                 c->groups);
        goto fail;
    }
    if (!OCL_CALL(&c->e, clEnqueueReadBuffer, c->q, c->out, CL_TRUE, 0,
                  c->groups * sizeof *partial, partial, 0, NULL, NULL))
        goto fail;
    uint64_t sum = 0;
    for (size_t g = 0; g < c->groups; g++)
        sum += partial[g];
    const uint64_t n = c->plan.buf_bytes / 4;
    const uint64_t expect = n / 2 * (n - 1); /* n is even */
    if (sum != expect) {
        ocl_errf(&c->e, DQO_EDEVICE,
                 "read_sum returned %llu, expected %llu: the device "
                 "computes wrong results",
                 (unsigned long long)sum, (unsigned long long)expect);
        goto fail;
    }
    out->nbw = 1;
    out->bw_threads[0] = (int)c->info.compute_units;
    out->bw_gbs[0] = (double)c->plan.buf_bytes / ns;
    ok = true;
fail:
    mem_free(partial);
    return ok;
}

/* One random-read level: `set` bytes, from local memory or from the start
 * of the read buffer. */
static bool cal_gather(cal *c, const char *level, uint64_t set, bool local_mem,
                       plan_calib *out)
{
    const int k = local_mem ? K_GATHER_LOCAL : K_GATHER;
    const size_t local = c->wg[k], global = c->groups * local;
    const uint64_t reads =
        c->plan.lat_reads * (local_mem ? CAL_LOCAL_READS_FACTOR : 1);
    uint64_t iters = reads / global;
    if (iters < 1)
        iters = 1;
    if (iters > UINT32_MAX / 2)
        iters = UINT32_MAX / 2;
    const cl_uint shift = 32 - log2_u64(set / sizeof(cl_uint));
    const cl_uint it = (cl_uint)iters;
    bool ok = local_mem ? set_arg(c, k, 0, (size_t)set, NULL)
                        : set_arg(c, k, 0, sizeof c->buf, &c->buf);
    double ns = 0;
    ok = ok && set_arg(c, k, 1, sizeof shift, &shift) &&
         set_arg(c, k, 2, sizeof it, &it) &&
         set_arg(c, k, 3, sizeof c->out, &c->out) &&
         time_kernel(c, k, global, local, &ns);
    if (!ok)
        return false;
    const int i = out->nlat++;
    out->lat_bytes[i] = set;
    snprintf(out->lat_level[i], sizeof out->lat_level[i], "%s", level);
    out->lat_ns[i] = ns / ((double)global * (double)iters);
    return true;
}

static bool cal_atomics(cal *c, plan_calib *out)
{
    bool ok = false;
    cl_uint *host = NULL;
    const size_t lp = c->wg[K_ATOMIC_PRIVATE], gp = c->atomic_items;
    const size_t ls = c->wg[K_ATOMIC_SHARED], gs = c->groups * ls;
    const uint64_t up = c->plan.atomic_updates / gp,
                   us = c->plan.atomic_updates / gs;
    const cl_uint ip = up > 0 ? (cl_uint)up : 1, is = us > 0 ? (cl_uint)us : 1;
    const cl_uint slot = (cl_uint)(gp * 16), zero = 0;
    const size_t bytes = (gp + 1) * 64;
    double ns_p = 0, ns_s = 0;
    if (!OCL_CALL(&c->e, clEnqueueFillBuffer, c->q, c->ctr, &zero, sizeof zero,
                  0, bytes, 0, NULL, NULL) ||
        !set_arg(c, K_ATOMIC_PRIVATE, 0, sizeof c->ctr, &c->ctr) ||
        !set_arg(c, K_ATOMIC_PRIVATE, 1, sizeof ip, &ip) ||
        !set_arg(c, K_ATOMIC_SHARED, 0, sizeof c->ctr, &c->ctr) ||
        !set_arg(c, K_ATOMIC_SHARED, 1, sizeof slot, &slot) ||
        !set_arg(c, K_ATOMIC_SHARED, 2, sizeof is, &is) ||
        !time_kernel(c, K_ATOMIC_PRIVATE, gp, lp, &ns_p) ||
        !time_kernel(c, K_ATOMIC_SHARED, gs, ls, &ns_s))
        goto fail;
    host = mem_alloc(bytes);
    if (host == NULL) {
        ocl_errf(&c->e, DQO_ENOMEM, "out of memory for %zu atomic counters",
                 gp + 1);
        goto fail;
    }
    if (!OCL_CALL(&c->e, clEnqueueReadBuffer, c->q, c->ctr, CL_TRUE, 0, bytes,
                  host, 0, NULL, NULL))
        goto fail;
    const uint64_t runs = (uint64_t)c->plan.reps + 1;
    for (size_t i = 0; i < gp; i++)
        if (host[i * 16] != (cl_uint)(ip * runs)) {
            ocl_errf(&c->e, DQO_EDEVICE,
                     "atomic_private counter %zu is %u, expected %llu", i,
                     host[i * 16], (unsigned long long)(ip * runs));
            goto fail;
        }
    const uint64_t shared = (uint64_t)gs * is * runs;
    if (host[slot] != (cl_uint)shared) {
        ocl_errf(&c->e, DQO_EDEVICE,
                 "atomic_shared counter is %u, expected %llu: atomics lost "
                 "updates",
                 host[slot], (unsigned long long)shared);
        goto fail;
    }
    out->atomic_private_mops = (double)gp * ip / ns_p * 1e3;
    out->atomic_shared_mops = (double)gs * is / ns_s * 1e3;
    ok = true;
fail:
    mem_free(host);
    return ok;
}

/* Median GB/s of blocking copies of `bytes` between `host` and the read
 * buffer. */
static bool time_copy(cal *c, bool to_device, void *host, size_t bytes,
                      double *gbs)
{
    double t[OCL_CALIB_MAX_REPS];
    for (int r = -1; r < c->plan.reps; r++) {
        const double t0 = now_ns();
        const bool ok =
            to_device ? OCL_CALL(&c->e, clEnqueueWriteBuffer, c->q, c->buf,
                                 CL_TRUE, 0, bytes, host, 0, NULL, NULL)
                      : OCL_CALL(&c->e, clEnqueueReadBuffer, c->q, c->buf,
                                 CL_TRUE, 0, bytes, host, 0, NULL, NULL);
        if (!ok)
            return false;
        if (r >= 0)
            t[r] = now_ns() - t0;
    }
    *gbs = (double)bytes / median(t, c->plan.reps);
    return true;
}

static bool cal_transfers(cal *c, plan_calib *out)
{
    bool ok = false;
    const size_t bytes = (size_t)c->plan.xfer_bytes;
    void *host = mem_alloc(bytes);
    if (host == NULL) {
        ocl_errf(&c->e, DQO_ENOMEM, "out of memory for a %zu-byte host buffer",
                 bytes);
        goto fail;
    }
    /* Touch the pages so that no copy pays for faulting them in. */
    memset(host, 1, bytes);
    if (!time_copy(c, true, host, bytes, &out->h2d_pageable_gbs) ||
        !time_copy(c, false, host, bytes, &out->d2h_pageable_gbs))
        goto fail;
    c->pinned =
        OCL_MAKE(&c->e, clCreateBuffer, c->ctx,
                 CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, bytes, NULL);
    if (c->pinned == NULL)
        goto fail;
    c->mapped = ocl_map(&c->e, c->q, c->pinned, bytes);
    if (c->mapped == NULL)
        goto fail;
    memset(c->mapped, 1, bytes);
    if (!time_copy(c, true, c->mapped, bytes, &out->h2d_pinned_gbs) ||
        !time_copy(c, false, c->mapped, bytes, &out->d2h_pinned_gbs))
        goto fail;
    void *mapped = c->mapped;
    c->mapped = NULL;
    ok = ocl_unmap(&c->e, c->q, c->pinned, mapped);
fail:
    mem_free(host);
    return ok;
}

/* Releases everything `c` holds (any subset may be NULL) and forgets it. */
static void cal_release(cal *c)
{
    /* Commands may still run after a failure; let them end first. */
    if (c->q != NULL)
        (void)clFinish(c->q);
    ocl_unmap_quiet(c->q, c->pinned, c->mapped);
    for (int k = 0; k < K_COUNT; k++)
        ocl_release_kernel(c->k[k]);
    ocl_release_program(c->prog);
    ocl_release_mem(c->pinned);
    ocl_release_mem(c->ctr);
    ocl_release_mem(c->out);
    ocl_release_mem(c->buf);
    ocl_release_queue(c->q);
    ocl_release_context(c->ctx);
    /* Released: a second call does nothing. */
    c->mapped = NULL;
    memset(c->k, 0, sizeof c->k);
    c->prog = NULL;
    c->pinned = c->ctr = c->out = c->buf = NULL;
    c->q = NULL;
    c->ctx = NULL;
}

/* The measurement steps after setup, in order. */
static bool cal_steps(cal *c, plan_calib *out)
{
    const ocl_calib_plan *p = &c->plan;
    progress(c, 0.05, "launch latency");
    if (!cal_launch(c, out))
        return false;
    snprintf(c->step_text, sizeof c->step_text,
             "read bandwidth, %u compute units", c->info.compute_units);
    progress(c, 0.1, c->step_text);
    if (!cal_fill(c) || !cal_read_bw(c, out))
        return false;
    progress(c, 0.3, "random reads, local");
    if (p->lat_local > 0 && !cal_gather(c, "local", p->lat_local, true, out))
        return false;
    progress(c, 0.4, "random reads, L2");
    if (p->lat_l2 > 0 && !cal_gather(c, "L2", p->lat_l2, false, out))
        return false;
    progress(c, 0.5, "random reads, DRAM");
    if (p->lat_dram > 0 && !cal_gather(c, "DRAM", p->lat_dram, false, out))
        return false;
    progress(c, 0.65, "atomic adds");
    if (!cal_atomics(c, out))
        return false;
    progress(c, 0.8, "host transfers");
    return cal_transfers(c, out);
}

/* ------------------------------------------------- grouping kernels */

/* Rows and group counts of the kernel points (see the top of the file).
 * 16 Mi rows keep a GPU busy for milliseconds even at 16 groups, well
 * above its launch overheads (15 us on the H100, profile_device.txt). */
#define KERN_ROWS_GPU ((uint64_t)16 << 20)
#define KERN_ROWS_GPU_QUICK ((uint64_t)4 << 20)
#define KERN_ROWS_CPU ((uint64_t)1 << 20)
#define KERN_ROWS_CPU_QUICK ((uint64_t)1 << 16)
#define KERN_SEED 20240601 /* as cpu/calibrate.c */
#define KERN_MAX_REPS 7

static const uint64_t kern_groups[] = {16, 1000, 100000, 1000000};
static const uint64_t kern_groups_cpu_quick[] = {1000, 1000000};

/* The device families, and the datasets (sorted, sparse) each runs on. */
static const int kern_families[] = {GRP_KERNEL_HASH, GRP_KERNEL_DIRECT,
                                    GRP_KERNEL_RADIX, GRP_KERNEL_SORT,
                                    GRP_KERNEL_ORDER};

static bool kern_applies(int k, bool sorted, bool sparse)
{
    const bool on_sorted = k == GRP_KERNEL_ORDER || k == GRP_KERNEL_SORT;
    return on_sorted == sorted && !(k == GRP_KERNEL_DIRECT && sparse);
}

/* One kernel stage in progress. */
typedef struct kcal {
    int dev;
    const calib_opts *opts;
    plan_calib *out;
    uint64_t rows;
    int reps, threads, units;
    int step, steps;
    uint32_t *keys;
    int32_t *vals;
    ocl_err *e;
} kcal;

/* Times family k on the resident input; appends a point, or nothing when
 * the family fails here. */
static void kern_point(kcal *kc, const grp_input *in, int k, uint64_t groups,
                       bool sorted, bool sparse)
{
    plan_choice pc;
    plan_force_group(k, &pc);
    double t[KERN_MAX_REPS];
    for (int r = -1; r < kc->reps; r++) {
        grp_output o;
        const dqo_status s = ocl_group(in, &pc.g, &o);
        uint64_t counted = 0;
        for (uint64_t g = 0; s == DQO_OK && g < o.groups; g++)
            counted += (uint64_t)o.count[g];
        const double ms = o.device_ms;
        grp_output_free(&o, in->naggs);
        /* A failure, or counts that do not add up to the rows: no point. */
        if (s != DQO_OK || counted != in->rows)
            return;
        if (r >= 0)
            t[r] = ms;
    }
    if (kc->out->nkern >= PLAN_CALIB_MAX_KERN)
        return;
    plan_kcost *p = &kc->out->kern[kc->out->nkern++];
    snprintf(p->kernel, sizeof p->kernel, "%s", grp_kernel_name((grp_kernel)k));
    p->rows = in->rows;
    p->groups = groups;
    p->threads = kc->units;
    p->ns_per_row = median(t, kc->reps) * 1e6 / (double)in->rows;
    p->sorted = sorted;
    p->sparse = sparse;
}

static void kern_progress(kcal *kc, const char *what, uint64_t groups)
{
    char step[64];
    snprintf(step, sizeof step, "grouping kernels, %s, %llu groups", what,
             (unsigned long long)groups);
    if (kc->opts->progress != NULL)
        kc->opts->progress(kc->opts->progress_arg,
                           0.9 + 0.1 * kc->step / (kc->steps > 0 ? kc->steps : 1),
                           step);
}

/* Generates one dataset, uploads it and times every family on it. Only a
 * host failure (generation, statistics) is an error. */
static bool kern_dataset(kcal *kc, uint64_t groups, bool sorted, bool sparse)
{
    char what[32];
    snprintf(what, sizeof what, "%s %s", sorted ? "sorted" : "unsorted",
             sparse ? "sparse" : "dense");
    kern_progress(kc, what, groups);
    dqo_column_stats ks;
    dqo_status s = cpu_backend.gen_grouping(kc->keys, kc->vals, kc->rows, groups,
                                            sorted, sparse, KERN_SEED, kc->threads);
    if (s == DQO_OK)
        s = cpu_backend.stats(DQO_TYPE_U32, kc->keys, NULL, kc->rows,
                              kc->threads, &ks);
    if (s != DQO_OK)
        return ocl_errf(kc->e, s, "generating %s keys for the grouping kernels",
                        what);
    dev_col *kd = NULL, *vd = NULL;
    char err[256];
    bool up = ocl_col_upload(kc->dev, kc->keys, sizeof *kc->keys, NULL, kc->rows,
                             &kd, err, sizeof err) == DQO_OK &&
              ocl_col_upload(kc->dev, kc->vals, sizeof *kc->vals, NULL, kc->rows,
                             &vd, err, sizeof err) == DQO_OK;
    const grp_agg agg = {.op = AGG_OP_SUM, .type = DQO_TYPE_I32,
                         .data = kc->vals, .dev = vd};
    const grp_input in = {.key_type = DQO_TYPE_U32, .keys = kc->keys,
                          .rows = kc->rows, .key_stats = &ks, .aggs = &agg,
                          .naggs = 1, .threads = kc->threads,
                          .device = kc->dev, .keys_dev = kd};
    const int nf = (int)(sizeof kern_families / sizeof kern_families[0]);
    for (int i = 0; i < nf; i++) {
        if (!kern_applies(kern_families[i], sorted, sparse))
            continue;
        kc->step++;
        /* Without the upload (too little device memory) no point. */
        if (up)
            kern_point(kc, &in, kern_families[i], groups, sorted, sparse);
    }
    ocl_col_free(vd);
    ocl_col_free(kd);
    return true;
}

/* The kern[] points of device `dev` (described by d). */
static bool cal_kernels(int dev, const dev_info *d, const calib_opts *o,
                        plan_calib *out, ocl_err *e)
{
    const bool quick = o->quick, cpu = d->is_cpu;
    kcal kc = {.dev = dev, .opts = o, .out = out, .e = e};
    kc.rows = cpu ? (quick ? KERN_ROWS_CPU_QUICK : KERN_ROWS_CPU)
                  : (quick ? KERN_ROWS_GPU_QUICK : KERN_ROWS_GPU);
    /* Keys and values, twice over for the families' own buffers, within a
     * quarter of the device's memory. */
    while (kc.rows > 1024 && kc.rows * 16 > d->global_mem / 4)
        kc.rows /= 2;
    kc.reps = cpu ? (quick ? 1 : 3) : (quick ? 3 : 5);
    const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    kc.threads = ncpu > 0 ? (int)ncpu : 1;
    kc.units = d->compute_units > 0 ? (int)d->compute_units : 1;
    const uint64_t *groups = cpu && quick ? kern_groups_cpu_quick : kern_groups;
    const int ng = cpu && quick
                       ? (int)(sizeof kern_groups_cpu_quick / sizeof *groups)
                       : (int)(sizeof kern_groups / sizeof *groups);
    const int nf = (int)(sizeof kern_families / sizeof kern_families[0]);
    for (int ds = 0; ds < 4; ds++)
        for (int i = 0; i < nf; i++)
            kc.steps += ng * kern_applies(kern_families[i], ds >= 2, ds % 2);
    kc.keys = mem_alloc(kc.rows * sizeof *kc.keys);
    kc.vals = mem_alloc(kc.rows * sizeof *kc.vals);
    bool ok = kc.keys != NULL && kc.vals != NULL;
    if (!ok)
        ocl_errf(e, DQO_ENOMEM, "out of memory for %llu rows of grouping data",
                 (unsigned long long)kc.rows);
    for (int g = 0; g < ng && ok; g++)
        for (int ds = 0; ds < 4 && ok; ds++)
            ok = kern_dataset(&kc, groups[g], ds >= 2, ds % 2 == 1);
    mem_free(kc.keys);
    mem_free(kc.vals);
    return ok;
}

dqo_status ocl_calibrate_plan(int dev, const calib_opts *o,
                              const ocl_calib_plan *plan, plan_calib *out,
                              char *err, size_t errlen)
{
    ocl_err fe = ocl_err_init(err, errlen);
    if (out == NULL) {
        ocl_errf(&fe, DQO_EINVAL, "ocl_calibrate: no output for cl:%d", dev);
        return fe.status;
    }
    memset(out, 0, sizeof *out);
    cal *c = mem_calloc(1, sizeof *c);
    if (c == NULL) {
        ocl_errf(&fe, DQO_ENOMEM, "out of memory calibrating cl:%d", dev);
        return fe.status;
    }
    const double t0 = now_ns();
    c->opts = o;
    c->e = ocl_err_init(c->msg, sizeof c->msg);
    progress(c, 0.0, "device lookup");
    if (ocl_device_at(dev, &c->dev, &c->info, &c->e) != DQO_OK)
        goto fail;
    if (plan != NULL)
        c->plan = *plan;
    else
        ocl_calib_plan_for(&c->info, o != NULL && o->quick, &c->plan);
    progress(c, 0.0, "OpenCL setup");
    if (!plan_fix(c) || !cal_setup(c) || !cal_steps(c, out))
        goto fail;
    if (o != NULL && o->kernels) {
        /* The grouping opens the device on its own: free this context's
         * buffers first. */
        cal_release(c);
        c->step = "grouping kernels";
        if (!cal_kernels(dev, &c->info, o, out, &c->e))
            goto fail;
    }
    out->seconds = (now_ns() - t0) / 1e9;
    out->valid = true;
    progress(c, 1.0, "done");
fail:;
    const dqo_status s = c->e.status;
    if (s != DQO_OK) {
        memset(out, 0, sizeof *out);
        ocl_errf(&fe, s, "cl:%d %s: %s", dev, c->step, c->msg);
    }
    cal_release(c);
    mem_free(c);
    return s;
}

dqo_status ocl_calibrate(int dev, const calib_opts *o, plan_calib *out,
                         char *err, size_t errlen)
{
    return ocl_calibrate_plan(dev, o, NULL, out, err, errlen);
}
