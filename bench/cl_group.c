/*
 * cl_group.c - the OpenCL grouping back-end against its own targets and
 * against PyTorch on the same GPU (bench/torch_group.py is the peer; both
 * generate identical data with dqo_gen_grouping and seed 42).
 *
 * For every dataset (u32 key k, i32 value v, unsorted by default; dense keys
 * 0..G-1 or sparse keys over the whole u32 range) and group count G:
 *
 *   1. dqo_gen_grouping makes the data (all cores, not timed), the key
 *      statistics are computed once (dqo_table_column_stats), and the CPU
 *      back-end answers  SELECT k, COUNT(*), SUM(v) GROUP BY k  once
 *      (cpu_backend.group, radix; hg when radix refuses). Its checksum is
 *      the reference:
 *          groups : sum of COUNT(*) : sum of SUM(v) : sum of key*COUNT (mod 2^64)
 *      and its last three parts are checked against one naive pass over the
 *      rows (rows, SUM(v), sum of keys mod 2^64).
 *   2. Resident runs: k and v are uploaded to device --device with
 *      opencl_backend.col_upload (not timed); then for each kernel family in
 *      --kernels, opencl_backend.group with keys_dev / aggs[0].dev set and
 *      the granule of plan_force_group(kernel): one warm-up (program builds,
 *      first touch), then the median of --reps runs of wall ms (the whole
 *      call, clock_gettime around it), out.device_ms (until the result is in
 *      device memory) and out.download_ms. DQO_EUNSUPPORTED (sphg over a
 *      sparse key range) is recorded as skipped.
 *   3. Host-memory runs: the same call with keys_dev / dev NULL, so the
 *      back-end streams k and v from host memory through its pinned staging
 *      (in.copy = cpu_backend.place_copy), for --host-kernels (default: sphg
 *      on dense data, hg on sparse data). Beside them, the time of a plain
 *      pinned transfer of the same bytes (k + v): blocking
 *      clEnqueueWriteBuffer from a mapped CL_MEM_ALLOC_HOST_PTR buffer into a
 *      device buffer, median of --reps after a warm-up, on a context of this
 *      program's own; ratio_to_pinned = host wall ms / pinned ms (target
 *      <= 1.2).
 *   4. Pinned-table runs (location "pinned"): the table is moved into
 *      page-locked memory of the device's context (dqo_table_pin, not
 *      timed) and the host-memory runs are repeated: the back-end then
 *      transfers straight from the columns, without its staging copy.
 *
 * Every result (warm-up included) is checked against the CPU checksum; a
 * result that the back-end marks partial (keys may repeat) is merged here
 * for the group count, outside the clock. Output: CSV on stdout (and
 * --csv FILE), one '#' line first naming the device; progress on stderr.
 * Exit status: 1 on any wrong answer or error, 2 on bad usage, 0 otherwise
 * (also, with a message and no rows, when there is no OpenCL device).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "dqo.h"
#include "engine/backend.h"
#include "opencl/ocl_int.h"
#include "planner/planner.h"

/* The dataset seed; bench/torch_group.py uses the same constant. */
#define BENCH_SEED 42

#define MAX_LIST 64
#define DETAIL_LEN 768

static const char *const default_groups =
    "10,100,1000,10000,65536,100000,1000000,10000000";
static const char *const default_datasets = "unsorted-dense,unsorted-sparse";
static const char *const default_kernels = "sphg,hg,radix,sog";
static const char *const csv_header =
    "rows,dataset,groups,kernel,location,wall_ms,device_ms,download_ms,"
    "pinned_ms,ratio_to_pinned,checksum,check,detail\n";

typedef struct options {
    uint64_t rows;
    uint64_t groups[MAX_LIST];
    int ngroups;
    char *datasets[MAX_LIST];
    int ndatasets;
    int kernels[MAX_LIST];
    int nkernels;
    /* host kernels: "auto" (sphg dense, hg sparse) when host_auto */
    bool host_auto;
    int host_kernels[MAX_LIST];
    int nhost;
    const char *device; /* "N", "gpu" or "auto" */
    int reps;
    double max_seconds;    /* per point: stop taking reps beyond this */
    double budget_seconds; /* 0: off */
    uint64_t seed;
    const char *csv;
} options;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: bench_cl_group [options]\n"
        "OpenCL grouping (SELECT k, COUNT(*), SUM(v) GROUP BY k) on one device:\n"
        "device-resident and host-memory runs, checked against the CPU.\n"
        "  --rows N            rows per dataset (100M; forms 1M, 1e6, 1000000)\n"
        "  --groups LIST       group counts (%s)\n"
        "  --datasets LIST     unsorted-dense,unsorted-sparse,sorted-dense,\n"
        "                      sorted-sparse (%s)\n"
        "  --kernels LIST      resident kernel families (%s);\n"
        "                      'none' skips the resident runs\n"
        "  --host-kernels LIST host-memory kernel families; 'auto' = sphg on\n"
        "                      dense data, hg on sparse data; 'none' skips\n"
        "                      the host-memory runs and the pinned copy (auto)\n"
        "  --device D          OpenCL device index cl:D (as `dqo devices`\n"
        "                      lists them), 'gpu' (the first GPU; no rows when\n"
        "                      there is none) or 'auto' (first GPU, else 0) (0)\n"
        "  --reps R            timed runs per point after one warm-up (5)\n"
        "  --max-seconds S     stop taking reps at a point once they took S s\n"
        "                      (0 = never) (5)\n"
        "  --budget-seconds S  after S s of wall time, record the remaining\n"
        "                      points as skipped (0 = no budget) (0)\n"
        "  --seed N            dataset seed (%d, as bench/torch_group.py)\n"
        "  --csv FILE          also write the CSV to FILE\n"
        "  -h, --help          this text\n"
        "CSV (stdout): %s"
        "  wall_ms: the whole opencl_backend.group call; device_ms: until the\n"
        "  result is in device memory; download_ms: its download (medians).\n"
        "  pinned_ms: pinned transfer of the input (k+v) bytes, host rows only;\n"
        "  ratio_to_pinned = wall_ms / pinned_ms. checksum = groups:sum of\n"
        "  counts:sum of sums:sum of key*count mod 2^64. check: ok, FAIL,\n"
        "  ERROR, skipped. Exit 1 on any FAIL or ERROR.\n",
        default_groups, default_datasets, default_kernels, BENCH_SEED,
        csv_header);
}

/* ------------------------------------------------------------- checksums */

typedef struct checksum {
    uint64_t groups; /* distinct keys of the result */
    uint64_t count;  /* sum of COUNT(*) */
    int64_t sum;     /* sum of SUM(v) */
    uint64_t keysum; /* sum of key * COUNT(*), mod 2^64 */
} checksum;

static void checksum_str(const checksum *c, char *buf, size_t len)
{
    snprintf(buf, len, "%" PRIu64 ":%" PRIu64 ":%" PRId64 ":%" PRIu64,
             c->groups, c->count, c->sum, c->keysum);
}

static bool checksum_eq(const checksum *a, const checksum *b)
{
    return a->groups == b->groups && a->count == b->count &&
           a->sum == b->sum && a->keysum == b->keysum;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The checksum of a kernel's output. Partial outputs (a key may repeat)
 * count distinct keys on a sorted copy. -1 when that copy cannot be had. */
static int output_checksum(const grp_output *o, checksum *c)
{
    memset(c, 0, sizeof *c);
    const int64_t *acc = (const int64_t *)o->acc[0];
    for (uint64_t i = 0; i < o->groups; i++) {
        c->count += (uint64_t)o->count[i];
        c->sum += acc ? acc[i] : 0;
        c->keysum += (uint64_t)o->keys[i] * (uint64_t)o->count[i];
    }
    if (!o->partial || o->groups == 0) {
        c->groups = o->groups;
        return 0;
    }
    int64_t *k = malloc(o->groups * sizeof *k);
    if (!k)
        return -1;
    memcpy(k, o->keys, o->groups * sizeof *k);
    qsort(k, o->groups, sizeof *k, cmp_i64);
    uint64_t d = 1;
    for (uint64_t i = 1; i < o->groups; i++)
        d += k[i] != k[i - 1];
    free(k);
    c->groups = d;
    return 0;
}

/* ------------------------------------------------------------ CSV rows */

static FILE *csv;
static int failures;

/* A value or an empty field when negative. */
static void fmt_ms(char *buf, size_t len, double x)
{
    if (x >= 0)
        snprintf(buf, len, "%.4f", x);
    else
        buf[0] = '\0';
}

static void emit(uint64_t rows, const char *dataset, uint64_t groups,
                 const char *kernel, const char *location, double wall,
                 double device, double download, double pinned,
                 const char *checksum_s, const char *check,
                 const char *detail_in)
{
    char detail[DETAIL_LEN];
    snprintf(detail, sizeof detail, "%s", detail_in ? detail_in : "");
    csv_clean(detail);
    char w[32], d[32], dl[32], p[32], r[32] = "";
    fmt_ms(w, sizeof w, wall);
    fmt_ms(d, sizeof d, device);
    fmt_ms(dl, sizeof dl, download);
    fmt_ms(p, sizeof p, pinned);
    if (pinned > 0 && wall >= 0)
        snprintf(r, sizeof r, "%.3f", wall / pinned);
    char line[2048];
    snprintf(line, sizeof line,
             "%" PRIu64 ",%s,%" PRIu64 ",%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n",
             rows, dataset, groups, kernel, location, w, d, dl, p, r,
             checksum_s ? checksum_s : "", check, detail);
    fputs(line, stdout);
    fflush(stdout);
    if (csv) {
        fputs(line, csv);
        fflush(csv);
    }
}

static void emit_comment(const char *text)
{
    printf("# %s\n", text);
    fflush(stdout);
    if (csv) {
        fprintf(csv, "# %s\n", text);
        fflush(csv);
    }
}

/* ------------------------------------------------- the pinned transfer */

/* A context of our own on the device: a mapped CL_MEM_ALLOC_HOST_PTR
 * buffer and a device buffer of `piece` bytes (the largest allocation the
 * device allows, at most the input); a transfer of more bytes goes in
 * pieces. */
typedef struct pinned_xfer {
    cl_context ctx;
    cl_command_queue q;
    cl_mem host_buf, dev_buf;
    void *mapped;
    size_t piece;
} pinned_xfer;

static void pinned_close(pinned_xfer *p)
{
    if (p->q)
        (void)clFinish(p->q);
    ocl_unmap_quiet(p->q, p->host_buf, p->mapped);
    ocl_release_mem(p->dev_buf);
    ocl_release_mem(p->host_buf);
    ocl_release_queue(p->q);
    ocl_release_context(p->ctx);
    memset(p, 0, sizeof *p);
}

static bool pinned_open(int device, size_t bytes, pinned_xfer *p, char *err,
                        size_t errlen)
{
    memset(p, 0, sizeof *p);
    ocl_err e = ocl_err_init(err, errlen);
    cl_device_id dev;
    dev_info info;
    if (ocl_device_at(device, &dev, &info, &e) != DQO_OK)
        return false;
    p->piece = bytes;
    if (info.max_alloc > 0 && p->piece > info.max_alloc)
        p->piece = (size_t)info.max_alloc;
    p->ctx = OCL_MAKE(&e, clCreateContext, NULL, 1, &dev, NULL, NULL);
    if (!p->ctx)
        goto fail;
    p->q = OCL_MAKE(&e, clCreateCommandQueue, p->ctx, dev, 0);
    if (!p->q)
        goto fail;
    p->host_buf = OCL_MAKE(&e, clCreateBuffer, p->ctx,
                           CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, p->piece,
                           NULL);
    if (!p->host_buf)
        goto fail;
    p->dev_buf = OCL_MAKE(&e, clCreateBuffer, p->ctx, CL_MEM_READ_WRITE,
                          p->piece, NULL);
    if (!p->dev_buf)
        goto fail;
    p->mapped = ocl_map(&e, p->q, p->host_buf, p->piece);
    if (!p->mapped)
        goto fail;
    return true;
fail:
    pinned_close(p);
    return false;
}

/* Median ms of blocking writes of `bytes` (k then v, as much as fits in
 * the staging buffer; the rest repeats it) from the pinned buffer. */
static double pinned_time(pinned_xfer *p, const void *k, const void *v,
                          size_t kbytes, size_t vbytes, int reps, char *err,
                          size_t errlen)
{
    size_t bytes = kbytes + vbytes;
    /* The real bytes in the staging buffer (pages touched, so no fault is
     * timed); with pieces, the first piece's worth. */
    size_t kpart = kbytes < p->piece ? kbytes : p->piece;
    memcpy(p->mapped, k, kpart);
    if (kpart < p->piece) {
        size_t vpart = p->piece - kpart < vbytes ? p->piece - kpart : vbytes;
        memcpy((char *)p->mapped + kpart, v, vpart);
    }
    ocl_err e = ocl_err_init(err, errlen);
    double *t = malloc((size_t)(reps + 1) * sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int r = -1; r < reps; r++) {
        double t0 = now_ms();
        for (size_t done = 0; done < bytes;) {
            size_t n = bytes - done < p->piece ? bytes - done : p->piece;
            if (!OCL_CALL(&e, clEnqueueWriteBuffer, p->q, p->dev_buf, CL_TRUE,
                          0, n, p->mapped, 0, NULL, NULL)) {
                free(t);
                return -1;
            }
            done += n;
        }
        if (r >= 0)
            t[r] = now_ms() - t0;
    }
    double m = median_of(t, reps);
    free(t);
    return m;
}

/* ---------------------------------------------------------- one point */

typedef struct run_result {
    double wall, device, download; /* medians, ms; -1 when none */
    int reps;
    char checksum[96];
    char check[16];
    char detail[DETAIL_LEN];
} run_result;

/* Warm-up + timed runs of opencl_backend.group with `in` and kernel `k`;
 * every output checked against `ref`. */
static void run_gpu(const grp_input *in, int kernel, const checksum *ref,
                    const options *o, run_result *rr)
{
    memset(rr, 0, sizeof *rr);
    rr->wall = rr->device = rr->download = -1;
    plan_choice pc;
    plan_force_group(kernel, &pc);
    int reps = o->reps;
    double *tw = calloc((size_t)reps, sizeof *tw);
    double *td = calloc((size_t)reps, sizeof *td);
    double *tl = calloc((size_t)reps, sizeof *tl);
    if (!tw || !td || !tl) {
        snprintf(rr->check, sizeof rr->check, "ERROR");
        snprintf(rr->detail, sizeof rr->detail, "out of memory");
        failures++;
        goto done;
    }
    double spent = 0;
    int n = 0;
    for (int r = -1; r < reps; r++) {
        grp_output out;
        memset(&out, 0, sizeof out);
        double t0 = now_ms();
        dqo_status s = opencl_backend.group(in, &pc.g, &out);
        double dt = now_ms() - t0;
        if (s != DQO_OK) {
            bool unsup = s == DQO_EUNSUPPORTED;
            snprintf(rr->check, sizeof rr->check, unsup ? "skipped" : "ERROR");
            snprintf(rr->detail, sizeof rr->detail, "%s%s%s%s%s",
                     unsup ? "unsupported: " : "", dqo_status_name(s),
                     out.error[0] || out.detail[0] ? ": " : "", out.error,
                     out.error[0] ? "" : out.detail);
            if (!unsup)
                failures++;
            grp_output_free(&out, in->naggs);
            goto done;
        }
        checksum c;
        if (out.overflow) {
            snprintf(rr->check, sizeof rr->check, "FAIL");
            snprintf(rr->detail, sizeof rr->detail,
                     "SUM overflow reported (impossible for i32 values): %s",
                     out.detail);
            failures++;
            grp_output_free(&out, in->naggs);
            goto done;
        }
        if (output_checksum(&out, &c) != 0) {
            snprintf(rr->check, sizeof rr->check, "ERROR");
            snprintf(rr->detail, sizeof rr->detail,
                     "out of memory merging a partial result");
            failures++;
            grp_output_free(&out, in->naggs);
            goto done;
        }
        checksum_str(&c, rr->checksum, sizeof rr->checksum);
        if (!checksum_eq(&c, ref)) {
            char want[96];
            checksum_str(ref, want, sizeof want);
            snprintf(rr->check, sizeof rr->check, "FAIL");
            snprintf(rr->detail, sizeof rr->detail,
                     "%s run: checksum %s != CPU %s%s; %s",
                     r < 0 ? "warm-up" : "timed", rr->checksum, want,
                     out.partial ? " (partial output)" : "", out.detail);
            failures++;
            grp_output_free(&out, in->naggs);
            goto done;
        }
        snprintf(rr->detail, sizeof rr->detail, "%s%s", out.detail,
                 out.partial ? " [partial output: merged by the engine]" : "");
        if (r >= 0) {
            tw[n] = dt;
            td[n] = out.device_ms;
            tl[n] = out.download_ms;
            n++;
            spent += dt;
        }
        grp_output_free(&out, in->naggs);
        if (r >= 0 && o->max_seconds > 0 && r + 1 < reps &&
            spent > o->max_seconds * 1e3) {
            size_t used = strlen(rr->detail);
            snprintf(rr->detail + used, sizeof rr->detail - used,
                     " [%d of %d reps: --max-seconds %g]", n, reps,
                     o->max_seconds);
            break;
        }
    }
    rr->reps = n;
    rr->wall = median_of(tw, n);
    rr->device = median_of(td, n);
    rr->download = median_of(tl, n);
    snprintf(rr->check, sizeof rr->check, "ok");
done:
    free(tw);
    free(td);
    free(tl);
}

/* A point that did not run cleanly, on stderr: skipped quietly, failures
 * set apart with "***" as the other benches do. */
static void report_bad(const char *where, const char *kernel,
                       const run_result *rr)
{
    if (!strcmp(rr->check, "skipped"))
        fprintf(stderr, "           %-8s %-5s skipped: %s\n", where, kernel,
                rr->detail);
    else
        fprintf(stderr, "\n*** %s: %s %s: %s\n\n", rr->check, where, kernel,
                rr->detail);
}

/* ------------------------------------------------------------- the CPU */

/* The CPU back-end's answer, checked against one naive pass. */
static int cpu_reference(const uint32_t *k, const int32_t *v, uint64_t rows,
                         const dqo_column_stats *st, int threads,
                         checksum *ref, char *err, size_t errlen)
{
    grp_agg agg = {.op = AGG_OP_SUM, .type = DQO_TYPE_I32, .data = v};
    grp_input in = {.key_type = DQO_TYPE_U32, .keys = k, .rows = rows,
                    .key_stats = st, .aggs = &agg, .naggs = 1,
                    .threads = threads};
    static const int order[] = {GRP_KERNEL_RADIX, GRP_KERNEL_HASH};
    dqo_status s = DQO_EINTERNAL;
    grp_output out;
    for (int i = 0; i < 2; i++) {
        plan_choice pc;
        plan_force_group(order[i], &pc);
        memset(&out, 0, sizeof out);
        s = cpu_backend.group(&in, &pc.g, &out);
        if (s == DQO_OK)
            break;
        grp_output_free(&out, 1);
    }
    if (s != DQO_OK) {
        snprintf(err, errlen, "cpu_backend.group: %s", dqo_status_name(s));
        return -1;
    }
    int rc = output_checksum(&out, ref);
    grp_output_free(&out, 1);
    if (rc != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* The additive parts, naively. */
    int64_t sum = 0;
    uint64_t keysum = 0;
    for (uint64_t i = 0; i < rows; i++) {
        sum += v[i];
        keysum += k[i];
    }
    if (ref->count != rows || ref->sum != sum || ref->keysum != keysum) {
        snprintf(err, errlen,
                 "CPU answer disagrees with a naive pass: count %" PRIu64
                 " vs rows %" PRIu64 ", sum %" PRId64 " vs %" PRId64
                 ", keysum %" PRIu64 " vs %" PRIu64,
                 ref->count, rows, ref->sum, sum, ref->keysum, keysum);
        return -1;
    }
    return 0;
}

/* ----------------------------------------------------------------- main */

static int parse_kernels(char *s, int *out, int *n, const char *what)
{
    char *items[MAX_LIST];
    int m = split_list(s, items, MAX_LIST);
    if (m < 0) {
        fprintf(stderr, "too many %s\n", what);
        return -1;
    }
    *n = 0;
    for (int i = 0; i < m; i++) {
        if (!strcmp(items[i], "none"))
            continue;
        int k = grp_kernel_parse(items[i]);
        if (k < 0) {
            fprintf(stderr, "unknown kernel '%s' in %s (want", items[i], what);
            for (int j = 0; j < GRP_KERNEL_COUNT_; j++)
                fprintf(stderr, " %s", grp_kernel_name((grp_kernel)j));
            fprintf(stderr, ", or none)\n");
            return -1;
        }
        out[(*n)++] = k;
    }
    return 0;
}

static int parse_args(int argc, char **argv, options *o)
{
    static char gs[1024], ds[1024], ks[1024], hs[1024];
    snprintf(gs, sizeof gs, "%s", default_groups);
    snprintf(ds, sizeof ds, "%s", default_datasets);
    snprintf(ks, sizeof ks, "%s", default_kernels);
    snprintf(hs, sizeof hs, "auto");
    o->rows = 100000000;
    o->device = "0";
    o->reps = 5;
    o->max_seconds = 5;
    o->budget_seconds = 0;
    o->seed = BENCH_SEED;
    o->csv = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "option %s needs a value (or unknown option)\n",
                    a);
            return -1;
        }
        const char *val = argv[++i];
        if (!strcmp(a, "--rows")) {
            o->rows = parse_count(val);
            if (o->rows == 0) {
                fprintf(stderr, "bad --rows '%s'\n", val);
                return -1;
            }
        } else if (!strcmp(a, "--groups")) {
            snprintf(gs, sizeof gs, "%s", val);
        } else if (!strcmp(a, "--datasets")) {
            snprintf(ds, sizeof ds, "%s", val);
        } else if (!strcmp(a, "--kernels")) {
            snprintf(ks, sizeof ks, "%s", val);
        } else if (!strcmp(a, "--host-kernels")) {
            snprintf(hs, sizeof hs, "%s", val);
        } else if (!strcmp(a, "--device")) {
            o->device = val;
        } else if (!strcmp(a, "--reps")) {
            o->reps = atoi(val);
            if (o->reps < 1) {
                fprintf(stderr, "bad --reps '%s'\n", val);
                return -1;
            }
        } else if (!strcmp(a, "--max-seconds")) {
            o->max_seconds = atof(val);
        } else if (!strcmp(a, "--budget-seconds")) {
            o->budget_seconds = atof(val);
        } else if (!strcmp(a, "--seed")) {
            o->seed = strtoull(val, NULL, 0);
        } else if (!strcmp(a, "--csv")) {
            o->csv = val;
        } else {
            fprintf(stderr, "unknown option %s\n", a);
            return -1;
        }
    }
    char *items[MAX_LIST];
    int n = split_list(gs, items, MAX_LIST);
    if (n <= 0) {
        fprintf(stderr, "bad --groups\n");
        return -1;
    }
    o->ngroups = n;
    for (int i = 0; i < n; i++) {
        o->groups[i] = parse_count(items[i]);
        if (o->groups[i] == 0 || o->groups[i] > (UINT64_C(1) << 32)) {
            fprintf(stderr, "bad group count '%s'\n", items[i]);
            return -1;
        }
    }
    o->ndatasets = split_list(ds, o->datasets, MAX_LIST);
    if (o->ndatasets <= 0) {
        fprintf(stderr, "bad --datasets\n");
        return -1;
    }
    for (int i = 0; i < o->ndatasets; i++) {
        const char *d = o->datasets[i];
        if (strcmp(d, "sorted-dense") && strcmp(d, "sorted-sparse") &&
            strcmp(d, "unsorted-dense") && strcmp(d, "unsorted-sparse")) {
            fprintf(stderr,
                    "unknown dataset '%s' (want unsorted-dense, "
                    "unsorted-sparse, sorted-dense, sorted-sparse)\n",
                    d);
            return -1;
        }
    }
    if (parse_kernels(ks, o->kernels, &o->nkernels, "--kernels") != 0)
        return -1;
    o->host_auto = !strcmp(hs, "auto");
    o->nhost = 0;
    if (!o->host_auto &&
        parse_kernels(hs, o->host_kernels, &o->nhost, "--host-kernels") != 0)
        return -1;
    return 0;
}

/* Resolves --device; -1 with a message when there is nothing to run on
 * (*none set: no device at all, which is not an error). */
static int pick_device(const char *want, dev_info *info, bool *none)
{
    *none = false;
    if (opencl_backend.probe == NULL) {
        fprintf(stderr, "bench_cl_group: this dqo has no OpenCL probe\n");
        *none = true;
        return -1;
    }
    enum { MAXD = 64 };
    static dev_info devs[MAXD];
    char err[512] = "";
    int n = opencl_backend.probe(devs, MAXD, err, sizeof err);
    if (n < 0) {
        fprintf(stderr, "bench_cl_group: OpenCL enumeration failed: %s\n",
                err);
        return -1;
    }
    if (n > MAXD)
        n = MAXD;
    for (int i = 0; i < n; i++)
        fprintf(stderr, "  cl:%d  %s (%s, %s, driver %s)%s\n", i,
                devs[i].name, devs[i].platform_name, devs[i].version,
                devs[i].driver,
                devs[i].is_gpu ? " GPU" : devs[i].is_cpu ? " CPU" : "");
    if (n == 0) {
        fprintf(stderr,
                "bench_cl_group: no OpenCL device found (no platform or no "
                "device); nothing to measure, no rows written\n");
        *none = true;
        return -1;
    }
    int idx = -1;
    if (!strcmp(want, "gpu") || !strcmp(want, "auto")) {
        for (int i = 0; i < n && idx < 0; i++)
            if (devs[i].is_gpu)
                idx = i;
        if (idx < 0 && !strcmp(want, "gpu")) {
            fprintf(stderr,
                    "bench_cl_group: --device gpu: no OpenCL GPU among the "
                    "%d device(s); nothing to measure, no rows written\n",
                    n);
            *none = true;
            return -1;
        }
        if (idx < 0)
            idx = 0;
    } else {
        char *end;
        long d = strtol(want, &end, 10);
        if (*want == '\0' || *end != '\0' || d < 0) {
            fprintf(stderr, "bad --device '%s' (want N, gpu or auto)\n", want);
            return -1;
        }
        if (d >= n) {
            fprintf(stderr, "bench_cl_group: --device %ld: only %d device(s)\n",
                    d, n);
            return -1;
        }
        idx = (int)d;
    }
    *info = devs[idx];
    return idx;
}

int main(int argc, char **argv)
{
    options o;
    if (parse_args(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    if (o.csv) {
        csv = fopen(o.csv, "w");
        if (!csv) {
            fprintf(stderr, "cannot write %s: %s\n", o.csv, strerror(errno));
            return 2;
        }
    }
    dev_info dinfo;
    bool none;
    int device = pick_device(o.device, &dinfo, &none);
    if (device < 0) {
        /* The header only: an empty table for whoever joins the CSVs. */
        fputs(csv_header, stdout);
        if (csv) {
            fputs(csv_header, csv);
            fclose(csv);
        }
        return none ? 0 : 1;
    }
    if (opencl_backend.group == NULL || opencl_backend.col_upload == NULL ||
        opencl_backend.col_free == NULL) {
        fprintf(stderr,
                "bench_cl_group: this dqo's OpenCL back-end has no grouping "
                "(opencl_backend.%s is NULL)\n",
                opencl_backend.group == NULL        ? "group"
                : opencl_backend.col_upload == NULL ? "col_upload"
                                                    : "col_free");
        fputs(csv_header, stdout);
        if (csv) {
            fputs(csv_header, csv);
            fclose(csv);
        }
        return 1;
    }

    dqo_ctx *ctx = NULL;
    if (dqo_ctx_create(&ctx) != DQO_OK) {
        fprintf(stderr, "dqo_ctx_create failed\n");
        return 1;
    }
    dqo_ctx_set_threads(ctx, 0);
    int threads = dqo_ctx_threads(ctx);
    if (threads <= 0)
        threads = (int)sysconf(_SC_NPROCESSORS_ONLN);

    char line[1024];
    snprintf(line, sizeof line,
             "bench_cl_group; dqo %s; device cl:%d %s (%s; %s; driver %s); "
             "%u compute units; %.1f GiB; host threads %d; seed %" PRIu64
             "; reps %d",
             dqo_version_string(), device, dinfo.name, dinfo.platform_name,
             dinfo.version, dinfo.driver, dinfo.compute_units,
             (double)dinfo.global_mem / (1 << 30), threads, o.seed, o.reps);
    emit_comment(line);
    fputs(csv_header, stdout);
    fflush(stdout);
    if (csv) {
        fputs(csv_header, csv);
        fflush(csv);
    }
    fprintf(stderr, "%s\n", line);

    pinned_xfer px;
    memset(&px, 0, sizeof px);
    bool px_tried = false;
    char px_err[512] = "";
    double start = now_ms();

    for (int d = 0; d < o.ndatasets; d++) {
        const char *dataset = o.datasets[d];
        bool sorted = !strncmp(dataset, "sorted", 6);
        bool sparse = strstr(dataset, "sparse") != NULL;
        int hk[MAX_LIST], nhk = o.nhost;
        if (o.host_auto) {
            hk[0] = sparse ? GRP_KERNEL_HASH : GRP_KERNEL_DIRECT;
            nhk = 1;
        } else {
            memcpy(hk, o.host_kernels, sizeof hk);
        }
        for (int gi = 0; gi < o.ngroups; gi++) {
            uint64_t groups = o.groups[gi];
            if (o.budget_seconds > 0 &&
                now_ms() - start > o.budget_seconds * 1e3) {
                for (int ki = 0; ki < o.nkernels; ki++)
                    emit(o.rows, dataset, groups,
                         grp_kernel_name((grp_kernel)o.kernels[ki]),
                         "resident", -1, -1, -1, -1, NULL, "skipped",
                         "--budget-seconds exhausted");
                for (int ki = 0; ki < nhk; ki++)
                    emit(o.rows, dataset, groups,
                         grp_kernel_name((grp_kernel)hk[ki]), "host", -1, -1,
                         -1, -1, NULL, "skipped", "--budget-seconds exhausted");
                continue;
            }
            double t0 = now_ms();
            dqo_table *t = NULL;
            dqo_status s = dqo_gen_grouping(ctx, o.rows, groups, sorted,
                                            sparse, o.seed, &t);
            int ck = -1, cv = -1;
            const uint32_t *k = NULL;
            const int32_t *v = NULL;
            dqo_column_stats st;
            if (s == DQO_OK &&
                (dqo_table_column_index(ctx, t, "k", &ck) != DQO_OK ||
                 dqo_table_column_index(ctx, t, "v", &cv) != DQO_OK ||
                 dqo_table_column_u32(ctx, t, ck, &k) != DQO_OK ||
                 dqo_table_column_i32(ctx, t, cv, &v) != DQO_OK ||
                 dqo_table_column_stats(ctx, t, ck, &st) != DQO_OK))
                s = DQO_EINTERNAL;
            if (s != DQO_OK) {
                snprintf(line, sizeof line, "generating the dataset: %s: %s",
                         dqo_status_name(s), dqo_ctx_errmsg(ctx));
                fprintf(stderr, "\n*** ERROR %s %" PRIu64 ": %s\n\n", dataset,
                        groups, line);
                emit(o.rows, dataset, groups, "gen", "-", -1, -1, -1, -1, NULL,
                     "ERROR", line);
                failures++;
                dqo_table_destroy(t);
                continue;
            }
            double t1 = now_ms();
            checksum ref;
            char err[512];
            if (cpu_reference(k, v, o.rows, &st, threads, &ref, err,
                              sizeof err) != 0) {
                fprintf(stderr, "\n*** ERROR %s %" PRIu64 ": %s\n\n", dataset,
                        groups, err);
                emit(o.rows, dataset, groups, "cpu", "-", -1, -1, -1, -1, NULL,
                     "ERROR", err);
                failures++;
                dqo_table_destroy(t);
                continue;
            }
            char ref_s[96];
            checksum_str(&ref, ref_s, sizeof ref_s);
            double t2 = now_ms();
            fprintf(stderr,
                    "[%7.1f s] %s groups=%" PRIu64 ": generated in %.0f ms, "
                    "CPU answer in %.0f ms: %s (key range %" PRId64
                    "..%" PRId64 ")\n",
                    (t2 - start) / 1e3, dataset, groups, t1 - t0, t2 - t1,
                    ref_s, st.min, st.max);

            /* Resident runs. */
            if (o.nkernels > 0) {
                dev_col *kd = NULL, *vd = NULL;
                double u0 = now_ms();
                s = opencl_backend.col_upload(device, k, sizeof *k, NULL,
                                              o.rows, &kd, err, sizeof err);
                if (s == DQO_OK)
                    s = opencl_backend.col_upload(device, v, sizeof *v, NULL,
                                                  o.rows, &vd, err,
                                                  sizeof err);
                double u1 = now_ms();
                if (s != DQO_OK) {
                    char msg[768];
                    snprintf(msg, sizeof msg, "col_upload: %s: %s",
                             dqo_status_name(s), err);
                    fprintf(stderr, "\n*** ERROR %s %" PRIu64 ": %s\n\n",
                            dataset, groups, msg);
                    for (int ki = 0; ki < o.nkernels; ki++)
                        emit(o.rows, dataset, groups,
                             grp_kernel_name((grp_kernel)o.kernels[ki]),
                             "resident", -1, -1, -1, -1, NULL, "ERROR", msg);
                    failures++;
                } else {
                    fprintf(stderr, "           uploaded k and v (%.0f MB) in "
                                    "%.0f ms\n",
                            (double)o.rows * 8 / 1e6, u1 - u0);
                    grp_agg agg = {.op = AGG_OP_SUM, .type = DQO_TYPE_I32,
                                   .data = v, .dev = vd};
                    grp_input in = {.key_type = DQO_TYPE_U32, .keys = k,
                                    .rows = o.rows, .key_stats = &st,
                                    .aggs = &agg, .naggs = 1,
                                    .threads = threads, .device = device,
                                    .keys_dev = kd,
                                    .copy = cpu_backend.place_copy};
                    for (int ki = 0; ki < o.nkernels; ki++) {
                        const char *kn =
                            grp_kernel_name((grp_kernel)o.kernels[ki]);
                        run_result rr;
                        run_gpu(&in, o.kernels[ki], &ref, &o, &rr);
                        emit(o.rows, dataset, groups, kn, "resident", rr.wall,
                             rr.device, rr.download, -1, rr.checksum,
                             rr.check, rr.detail);
                        if (!strcmp(rr.check, "ok"))
                            fprintf(stderr,
                                    "           resident %-5s wall %9.3f ms  "
                                    "device %9.3f ms  download %8.3f ms  (%s)\n",
                                    kn, rr.wall, rr.device, rr.download,
                                    rr.detail);
                        else
                            report_bad("resident", kn, &rr);
                    }
                }
                if (vd)
                    opencl_backend.col_free(vd);
                if (kd)
                    opencl_backend.col_free(kd);
            }

            /* Host-memory runs and the pinned transfer beside them. */
            if (nhk > 0) {
                double pinned = -1;
                size_t kb = (size_t)o.rows * sizeof *k;
                size_t vb = (size_t)o.rows * sizeof *v;
                if (!px_tried) {
                    px_tried = true;
                    if (!pinned_open(device, kb + vb, &px, px_err,
                                     sizeof px_err))
                        fprintf(stderr,
                                "\n*** pinned transfer buffers: %s (host "
                                "rows get no pinned_ms)\n\n",
                                px_err);
                }
                if (px.ctx) {
                    pinned = pinned_time(&px, k, v, kb, vb, o.reps, px_err,
                                         sizeof px_err);
                    if (pinned < 0)
                        fprintf(stderr, "\n*** pinned transfer: %s\n\n",
                                px_err);
                    else
                        fprintf(stderr,
                                "           pinned transfer of %.0f MB: "
                                "%.3f ms (%.1f GB/s)\n",
                                (double)(kb + vb) / 1e6, pinned,
                                (double)(kb + vb) / pinned / 1e6);
                }
                grp_agg agg = {.op = AGG_OP_SUM, .type = DQO_TYPE_I32,
                               .data = v, .dev = NULL};
                grp_input in = {.key_type = DQO_TYPE_U32, .keys = k,
                                .rows = o.rows, .key_stats = &st,
                                .aggs = &agg, .naggs = 1, .threads = threads,
                                .device = device, .keys_dev = NULL,
                                .copy = cpu_backend.place_copy};
                for (int ki = 0; ki < nhk; ki++) {
                    const char *kn = grp_kernel_name((grp_kernel)hk[ki]);
                    run_result rr;
                    run_gpu(&in, hk[ki], &ref, &o, &rr);
                    char detail[DETAIL_LEN + sizeof px_err + 64];
                    snprintf(detail, sizeof detail, "%s%s%s%s", rr.detail,
                             pinned < 0 ? " [pinned transfer failed: " : "",
                             pinned < 0 ? px_err : "", pinned < 0 ? "]" : "");
                    emit(o.rows, dataset, groups, kn, "host", rr.wall,
                         rr.device, rr.download, pinned, rr.checksum, rr.check,
                         detail);
                    if (!strcmp(rr.check, "ok"))
                        fprintf(stderr,
                                "           host     %-5s wall %9.3f ms  "
                                "device %9.3f ms  download %8.3f ms  "
                                "x%.2f of pinned  (%s)\n",
                                kn, rr.wall, rr.device, rr.download,
                                pinned > 0 ? rr.wall / pinned : 0.0,
                                rr.detail);
                    else
                        report_bad("host", kn, &rr);
                }
                /* The same from a table in page-locked memory of the
                 * device's context (dqo_table_pin, not timed): DMA straight
                 * from the columns, no staging copy. */
                char loc[16];
                snprintf(loc, sizeof loc, "cl:%d", device);
                const uint32_t *pk = NULL;
                const int32_t *pv = NULL;
                if (dqo_table_pin(ctx, t, loc) != DQO_OK ||
                    dqo_table_column_u32(ctx, t, ck, &pk) != DQO_OK ||
                    dqo_table_column_i32(ctx, t, cv, &pv) != DQO_OK) {
                    fprintf(stderr, "\n*** pinning the table: %s\n\n",
                            dqo_ctx_errmsg(ctx));
                    failures++;
                } else {
                    in.keys = pk;
                    agg.data = pv;
                    for (int ki = 0; ki < nhk; ki++) {
                        const char *kn = grp_kernel_name((grp_kernel)hk[ki]);
                        run_result rr;
                        run_gpu(&in, hk[ki], &ref, &o, &rr);
                        emit(o.rows, dataset, groups, kn, "pinned", rr.wall,
                             rr.device, rr.download, pinned, rr.checksum,
                             rr.check, rr.detail);
                        if (!strcmp(rr.check, "ok"))
                            fprintf(stderr,
                                    "           pinned   %-5s wall %9.3f ms  "
                                    "x%.2f of pinned  (%s)\n",
                                    kn, rr.wall,
                                    pinned > 0 ? rr.wall / pinned : 0.0,
                                    rr.detail);
                        else
                            report_bad("pinned", kn, &rr);
                    }
                }
            }
            dqo_table_destroy(t);
        }
    }
    pinned_close(&px);
    dqo_ctx_destroy(ctx);
    if (csv)
        fclose(csv);
    fprintf(stderr, "done in %.1f s, %d failure(s)\n",
            (now_ms() - start) / 1e3, failures);
    if (failures) {
        fprintf(stderr, "*** %d check failure(s) or error(s)\n", failures);
        return 1;
    }
    return 0;
}
