/*
 * test_calibrate_cpu.c - the CPU calibration (cpu/calibrate.c) through
 * cpu_backend.calibrate.
 *
 * A quick calibration with small cache sizes (so that it takes about a
 * few seconds on two cores) must give positive, plausible numbers: bandwidth
 * at the thread counts 1, 2, 4, 8, 12, 16... up to and including the asked
 * count, random-access cost rising from L1 to DRAM, both atomic rates, one
 * kernel point per kernel, group count and dataset of the quick grid (with
 * the dataset's sorted and sparse flags) when kernels are asked for, and
 * progress reports that rise to 1. The points survive the profile file
 * (topology/profile.c) unchanged, and profiles of the first format, whose
 * kern lines have no dataset flags, still load. Bad options give DQO_EINVAL with a
 * message; a failed allocation anywhere gives DQO_ENOMEM with nothing
 * leaked and `out` left invalid; the caller's CPU affinity is the same
 * after as before.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cpu/cpu_int.h"
#include "dqo.h"
#include "engine/alloc.h"
#include "topology/topology.h"

typedef struct progress_log {
    int calls;
    double last;
    bool decreased, out_of_range, empty_step;
} progress_log;

static void on_progress(void *arg, double done, const char *step)
{
    progress_log *p = arg;
    if (p->calls > 0 && done < p->last - 1e-12)
        p->decreased = true;
    if (done < 0.0 || done > 1.0)
        p->out_of_range = true;
    if (step == NULL || step[0] == '\0')
        p->empty_step = true;
    p->last = done;
    p->calls++;
}

static int model_cores(void)
{
    const int c = topo_model()->cores;
    return c < 1 ? 1 : c;
}

/* Quick options with small caches over all of the machine's cores. */
static calib_opts small_opts(int threads, bool kernels, progress_log *log)
{
    calib_opts o;
    memset(&o, 0, sizeof o);
    o.quick = true;
    o.threads = threads;
    o.first_core = 0;
    o.ncores = model_cores();
    o.l1d = 32u << 10;
    o.l2 = 256u << 10;
    o.l3 = 1u << 20;
    o.kernels = kernels;
    o.progress = log != NULL ? on_progress : NULL;
    o.progress_arg = log;
    return o;
}

/* The quick calibration, kept for the profile tests. */
static plan_calib quick_calib;
static bool have_quick;

/* The quick grid, computed here independently of cpu/calibrate.c: for each
 * group count, the kernels each of the four datasets gets. */
static const uint64_t quick_groups[] = {16, 10000, 1000000};

static bool expect_point(int k, bool sorted, bool sparse, uint64_t groups)
{
    switch (k) {
    case GRP_KERNEL_ORDER:
    case GRP_KERNEL_SORT:
        return sorted;
    case GRP_KERNEL_DIRECT:
        return !sorted && !sparse;
    case GRP_KERNEL_BSEARCH:
        return !sorted && groups <= 1000;
    default: /* hg, radix */
        return !sorted;
    }
}

static void check_kernel_grid(const plan_calib *c)
{
    int want = 0;
    for (size_t g = 0; g < sizeof quick_groups / sizeof quick_groups[0]; g++)
        for (int d = 0; d < 4; d++)
            for (int k = 0; k < GRP_KERNEL_COUNT_; k++) {
                const bool sorted = d >= 2, sparse = d % 2 == 1;
                if (!expect_point(k, sorted, sparse, quick_groups[g]))
                    continue;
                want++;
                int found = 0;
                for (int i = 0; i < c->nkern; i++) {
                    const plan_kcost *p = &c->kern[i];
                    found += strcmp(p->kernel, grp_kernel_name((grp_kernel)k)) == 0 &&
                             p->groups == quick_groups[g] &&
                             p->sorted == sorted && p->sparse == sparse;
                }
                if (found != 1)
                    fail_msg("kernel %s, %llu groups, sorted %d, sparse %d: "
                             "%d points, want 1",
                             grp_kernel_name((grp_kernel)k),
                             (unsigned long long)quick_groups[g], sorted,
                             sparse, found);
            }
    assert_int_equal(want, 29);
    assert_int_equal(c->nkern, want);
    for (int i = 0; i < c->nkern; i++) {
        const plan_kcost *k = &c->kern[i];
        print_message("  %-5s %8llu groups %s %s: %.2f ns/row\n", k->kernel,
                      (unsigned long long)k->groups,
                      k->sorted ? "sorted  " : "unsorted",
                      k->sparse ? "sparse" : "dense ", k->ns_per_row);
        assert_true(grp_kernel_parse(k->kernel) >= 0);
        assert_int_equal(k->rows, 1u << 20);
        assert_int_equal(k->threads, 2);
        assert_true(k->ns_per_row > 0.0 && k->ns_per_row < 100000.0);
    }
}

static void test_quick_plausible(void **state)
{
    (void)state;
    const long live = mem_outstanding();
    cpu_set_t before, after;
    CPU_ZERO(&before);
    assert_int_equal(sched_getaffinity(0, sizeof before, &before), 0);

    progress_log log;
    memset(&log, 0, sizeof log);
    const calib_opts o = small_opts(2, true, &log);
    plan_calib c;
    char err[256] = "";
    const dqo_status st = cpu_backend.calibrate(0, &o, &c, err, sizeof err);
    if (st != DQO_OK)
        fail_msg("calibrate: %s (%s)", dqo_status_name(st), err);
    assert_true(c.valid);
    print_message("quick calibration took %.2f s\n", c.seconds);
    assert_true(c.seconds > 0.0);

    /* Bandwidth at 1 and 2 threads. */
    assert_int_equal(c.nbw, 2);
    assert_int_equal(c.bw_threads[0], 1);
    assert_int_equal(c.bw_threads[1], 2);
    for (int i = 0; i < c.nbw; i++) {
        print_message("  bw %d threads: %.2f GB/s\n", c.bw_threads[i],
                      c.bw_gbs[i]);
        assert_true(c.bw_gbs[i] > 0.1 && c.bw_gbs[i] < 10000.0);
    }

    /* Random access: four levels, growing sets, L1 cheaper than DRAM. */
    static const char *const levels[] = {"L1", "L2", "LLC", "DRAM"};
    assert_int_equal(c.nlat, 4);
    for (int i = 0; i < c.nlat; i++) {
        print_message("  %-4s %8llu KiB: %.2f ns\n", c.lat_level[i],
                      (unsigned long long)(c.lat_bytes[i] >> 10), c.lat_ns[i]);
        assert_string_equal(c.lat_level[i], levels[i]);
        assert_true(c.lat_ns[i] > 0.0 && c.lat_ns[i] < 10000.0);
        if (i > 0)
            assert_true(c.lat_bytes[i] > c.lat_bytes[i - 1]);
    }
    assert_true(c.lat_bytes[0] <= o.l1d);
    assert_true(c.lat_bytes[3] >= 4 * o.l3);
    assert_true(c.lat_ns[0] < c.lat_ns[3]);

    print_message("  atomics: private %.1f, shared %.1f Mupdates/s\n",
                  c.atomic_private_mops, c.atomic_shared_mops);
    assert_true(c.atomic_private_mops > 0.0);
    assert_true(c.atomic_shared_mops > 0.0);

    /* Kernels: the quick grid at 1 Mi rows and 2 threads. */
    check_kernel_grid(&c);
    quick_calib = c;
    have_quick = true;

    /* No transfers or launches on the CPU. */
    assert_true(c.h2d_pinned_gbs == 0.0 && c.launch_us == 0.0);

    assert_true(log.calls >= 10);
    assert_false(log.decreased);
    assert_false(log.out_of_range);
    assert_false(log.empty_step);
    assert_true(log.last == 1.0);

    CPU_ZERO(&after);
    assert_int_equal(sched_getaffinity(0, sizeof after, &after), 0);
    assert_true(CPU_EQUAL(&before, &after));
    assert_int_equal(mem_outstanding(), live);
}

/* The thread counts of the bandwidth points. */
static void test_bw_thread_list(void **state)
{
    (void)state;
    const calib_opts o = small_opts(6, false, NULL);
    plan_calib c;
    char err[256] = "";
    assert_int_equal(cpu_backend.calibrate(0, &o, &c, err, sizeof err), DQO_OK);
    static const int want[] = {1, 2, 4, 6};
    assert_int_equal(c.nbw, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(c.bw_threads[i], want[i]);
        assert_true(c.bw_gbs[i] > 0.0);
    }
    assert_int_equal(c.nkern, 0);
    assert_true(c.valid);
}

static void test_bad_options(void **state)
{
    (void)state;
    plan_calib c;
    char err[256];
    calib_opts o = small_opts(0, false, NULL);
    err[0] = '\0';
    assert_int_equal(cpu_backend.calibrate(0, &o, &c, err, sizeof err),
                     DQO_EINVAL);
    assert_non_null(strstr(err, "threads"));
    assert_false(c.valid);
    o = small_opts(1, false, NULL);
    o.ncores = 0;
    err[0] = '\0';
    assert_int_equal(cpu_backend.calibrate(0, &o, &c, err, sizeof err),
                     DQO_EINVAL);
    assert_true(err[0] != '\0');
    o.ncores = 1;
    o.first_core = -1;
    assert_int_equal(cpu_backend.calibrate(0, &o, &c, NULL, 0), DQO_EINVAL);
    assert_int_equal(cpu_backend.calibrate(0, NULL, &c, err, sizeof err),
                     DQO_EINVAL);
}

/* Runs a calibration with the n-th allocation failing; returns its status
 * after checking that a failure leaked nothing and left `out` invalid. */
static dqo_status run_failing(const calib_opts *o, long n)
{
    plan_calib c;
    char err[256] = "";
    const long live = mem_outstanding();
    mem_fail_after(n);
    const dqo_status st = cpu_backend.calibrate(0, o, &c, err, sizeof err);
    mem_fail_after(0);
    if (st == DQO_OK) {
        assert_true(c.valid);
        return st;
    }
    if (st != DQO_ENOMEM)
        fail_msg("allocation %ld failed: %s (%s)", n, dqo_status_name(st), err);
    if (mem_outstanding() != live)
        fail_msg("allocation %ld failed: %ld leaked", n,
                 mem_outstanding() - live);
    assert_false(c.valid);
    assert_true(err[0] != '\0');
    return st;
}

static void test_alloc_failures(void **state)
{
    (void)state;
    /* Without kernels: fail every allocation in turn until none is left. */
    const calib_opts o = small_opts(2, false, NULL);
    long allocs = -1;
    for (long n = 1; n < 64; n++) {
        if (run_failing(&o, n) == DQO_OK) {
            allocs = n - 1;
            break;
        }
    }
    assert_true(allocs >= 5);
    /* With kernels: the first allocations after those are the dataset's,
     * then the statistics' and the kernels' own (some kernels fall back
     * to a smaller table when one allocation fails, so later ones may
     * succeed). */
    const calib_opts k = small_opts(2, true, NULL);
    static const long after[] = {1, 2, 3, 4, 6, 9, 16, 30};
    int nomem = 0;
    for (size_t i = 0; i < sizeof after / sizeof after[0]; i++)
        nomem += run_failing(&k, allocs + after[i]) == DQO_ENOMEM;
    assert_true(nomem >= 4);
}

/* ------------------------------------------- OpenCL kernel points */

/* The device grid (opencl/calibrate.c): hg, sphg and radix on unsorted
 * keys (sphg on dense keys only), og and sog on sorted keys; every point
 * is optional (a family may fail on a device), but those present carry
 * the right flags, no point repeats, and each family has some point. On
 * a CPU device (PoCL) quick mode runs 64 Ki rows at 10^3 and 10^6 groups.
 * Without `kernels` there are none. */
static void test_opencl_kernel_points(void **state)
{
    (void)state;
    dev_info d;
    char err[512] = "";
    if (opencl_backend.probe(&d, 1, err, sizeof err) < 1) {
        print_message("[  SKIP    ] no OpenCL device\n");
        skip();
    }
    const long live = mem_outstanding();
    calib_opts o;
    memset(&o, 0, sizeof o);
    o.quick = true;
    o.kernels = true;
    plan_calib c;
    const dqo_status st = opencl_backend.calibrate(0, &o, &c, err, sizeof err);
    if (st != DQO_OK)
        fail_msg("cl:0 calibrate: %s (%s)", dqo_status_name(st), err);
    print_message("cl:0 (%s) quick calibration with kernels: %.2f s, %d points\n",
                  d.name, c.seconds, c.nkern);
    bool family[GRP_KERNEL_COUNT_] = {false};
    for (int i = 0; i < c.nkern; i++) {
        const plan_kcost *p = &c.kern[i];
        print_message("  %-5s %8llu rows %8llu groups %s %s: %.3f ns/row\n",
                      p->kernel, (unsigned long long)p->rows,
                      (unsigned long long)p->groups,
                      p->sorted ? "sorted  " : "unsorted",
                      p->sparse ? "sparse" : "dense ", p->ns_per_row);
        const int k = grp_kernel_parse(p->kernel);
        assert_true(k >= 0 && k != GRP_KERNEL_BSEARCH);
        family[k] = true;
        assert_int_equal(p->sorted, k == GRP_KERNEL_ORDER || k == GRP_KERNEL_SORT);
        assert_false(k == GRP_KERNEL_DIRECT && p->sparse);
        assert_int_equal(p->threads, (int)d.compute_units);
        assert_true(p->ns_per_row > 0.0 && p->ns_per_row < 1e6);
        if (d.is_cpu) {
            assert_int_equal(p->rows, 1u << 16);
            assert_true(p->groups == 1000 || p->groups == 1000000);
        }
        for (int j = 0; j < i; j++)
            assert_false(strcmp(c.kern[j].kernel, p->kernel) == 0 &&
                         c.kern[j].groups == p->groups &&
                         c.kern[j].sorted == p->sorted &&
                         c.kern[j].sparse == p->sparse);
    }
    assert_true(family[GRP_KERNEL_HASH] && family[GRP_KERNEL_DIRECT] &&
                family[GRP_KERNEL_RADIX] && family[GRP_KERNEL_ORDER] &&
                family[GRP_KERNEL_SORT]);
    o.kernels = false;
    assert_int_equal(opencl_backend.calibrate(0, &o, &c, err, sizeof err), DQO_OK);
    assert_int_equal(c.nkern, 0);
    opencl_backend.trim();
    assert_int_equal(mem_outstanding(), live);
}

/* ------------------------------------------------- the profile file */

/* A copy of this machine's model whose "cpu" location carries `c`. */
static plan_model *model_with(const plan_calib *c)
{
    plan_model *m = malloc(sizeof *m);
    assert_non_null(m);
    *m = *topo_model();
    for (int i = 0; i < m->nloc; i++)
        memset(&m->loc[i].calib, 0, sizeof m->loc[i].calib);
    const int cpu = plan_model_find(m, "cpu");
    assert_true(cpu >= 0);
    if (c != NULL)
        m->loc[cpu].calib = *c;
    return m;
}

static void profile_path(char *buf, size_t n, const char *name)
{
    const char *dir = getenv("TMPDIR");
    snprintf(buf, n, "%s/dqo-test-calib-%ld-%s", dir && *dir ? dir : "/tmp",
             (long)getpid(), name);
}

static const plan_calib *read_cpu(const char *path, plan_model **m,
                                  topo_profile_status want)
{
    *m = model_with(NULL);
    char why[1024] = "";
    const topo_profile_status st = topo_profile_read(path, *m, why, sizeof why);
    if (st != want)
        fail_msg("reading %s: status %d, want %d (%s)", path, st, want, why);
    return &(*m)->loc[plan_model_find(*m, "cpu")].calib;
}

/* The quick calibration's kernel points survive a write and a read. */
static void test_profile_round_trip(void **state)
{
    (void)state;
    assert_true(have_quick);
    plan_model *a = model_with(&quick_calib), *b = NULL;
    char path[512], err[256] = "";
    profile_path(path, sizeof path, "round.txt");
    assert_int_equal(topo_profile_write(path, a, err, sizeof err), 0);
    const plan_calib *x = &quick_calib, *y = read_cpu(path, &b, TOPO_PROFILE_OK);
    assert_true(y->valid);
    assert_int_equal(x->nkern, y->nkern);
    for (int i = 0; i < x->nkern; i++) {
        const plan_kcost *p = &x->kern[i], *q = &y->kern[i];
        assert_string_equal(p->kernel, q->kernel);
        assert_int_equal(p->rows, q->rows);
        assert_int_equal(p->groups, q->groups);
        assert_int_equal(p->threads, q->threads);
        assert_int_equal(p->sorted, q->sorted);
        assert_int_equal(p->sparse, q->sparse);
        /* Written with six significant digits. */
        assert_true(fabs(p->ns_per_row - q->ns_per_row) <= 1e-5 * p->ns_per_row);
    }
    assert_int_equal(x->nbw, y->nbw);
    assert_int_equal(x->nlat, y->nlat);
    remove(path);
    free(a);
    free(b);
}

/* FNV-1a, as topology/profile.c checksums the text before its last line. */
static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Writes `body` (every line before the checksum) and its checksum line. */
static void write_profile(const char *path, const char *body)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%schecksum %016llx\n", body,
            (unsigned long long)fnv1a(body, strlen(body)));
    assert_int_equal(fclose(f), 0);
}

/* A profile header for this machine and dqo, then one cpu block holding
 * `kern` lines. */
static void profile_body(char *buf, size_t n, const char *kern)
{
    snprintf(buf, n,
             "dqo-profile %d\ndqo-version %s\nfingerprint %016llx\n"
             "created 2026-01-01T00:00:00Z\nlocation cpu\nseconds 1.0\n"
             "bw 1 8.5\n%send\n",
             TOPO_PROFILE_FORMAT, DQO_VERSION_STRING,
             (unsigned long long)topo_fingerprint(topo_model()), kern);
}

/* Profiles written before the dataset flags existed still load: og and sog
 * were timed on sorted keys, all on dense keys. New and old lines may
 * mix; a line with six fields or a flag other than 0 and 1 is corrupt. */
static void test_profile_old_format(void **state)
{
    (void)state;
    char path[512], body[2048];
    profile_path(path, sizeof path, "old.txt");
    profile_body(body, sizeof body,
                 "kern hg 4194304 1000 16 0.47488\n"
                 "kern og 4194304 1000 16 0.04268\n"
                 "kern sog 4194304 1000000 16 2.08204\n"
                 "kern radix 4194304 1000000 16 1.5 0 1\n");
    write_profile(path, body);
    plan_model *m = NULL;
    const plan_calib *c = read_cpu(path, &m, TOPO_PROFILE_OK);
    assert_int_equal(c->nkern, 4);
    static const struct {
        const char *name;
        uint64_t groups;
        int sorted, sparse;
        double ns;
    } want[] = {{"hg", 1000, 0, 0, 0.47488},
                {"og", 1000, 1, 0, 0.04268},
                {"sog", 1000000, 1, 0, 2.08204},
                {"radix", 1000000, 0, 1, 1.5}};
    for (int i = 0; i < 4; i++) {
        assert_string_equal(c->kern[i].kernel, want[i].name);
        assert_int_equal(c->kern[i].rows, 4194304);
        assert_int_equal(c->kern[i].groups, want[i].groups);
        assert_int_equal(c->kern[i].threads, 16);
        assert_int_equal(c->kern[i].sorted, want[i].sorted);
        assert_int_equal(c->kern[i].sparse, want[i].sparse);
        assert_float_equal(c->kern[i].ns_per_row, want[i].ns, 1e-9);
    }
    free(m);

    static const char *const bad[] = {"kern hg 4194304 1000 16 0.4 1\n",
                                      "kern hg 4194304 1000 16 0.4 2 0\n",
                                      "kern hg 4194304 1000 16 0.4 0 0 7\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        profile_body(body, sizeof body, bad[i]);
        write_profile(path, body);
        read_cpu(path, &m, TOPO_PROFILE_CORRUPT);
        assert_false(m->loc[plan_model_find(m, "cpu")].calib.valid);
        free(m);
    }
    /* Another format number is stale, not an error. */
    profile_body(body, sizeof body, "");
    body[strlen("dqo-profile ")] = '0';
    write_profile(path, body);
    read_cpu(path, &m, TOPO_PROFILE_STALE);
    free(m);
    remove(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quick_plausible),
        cmocka_unit_test(test_bw_thread_list),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_opencl_kernel_points),
        cmocka_unit_test(test_profile_round_trip),
        cmocka_unit_test(test_profile_old_format),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
