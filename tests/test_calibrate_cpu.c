/*
 * test_calibrate_cpu.c - the CPU calibration (cpu/calibrate.c) through
 * cpu_backend.calibrate.
 *
 * A quick calibration with small cache sizes (so that it takes about a
 * second on two cores) must give positive, plausible numbers: bandwidth at
 * the thread counts 1, 2, 4, 8, 12, 16... up to and including the asked
 * count, random-access cost rising from L1 to DRAM, both atomic rates, one
 * kernel point per kernel and group count when kernels are asked for, and
 * progress reports that rise to 1. Bad options give DQO_EINVAL with a
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
#include <string.h>

#include <cmocka.h>

#include "cpu/cpu_int.h"
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

    /* Kernels: 6 kernels x 2 group counts, 1 Mi rows, 2 threads. */
    assert_int_equal(c.nkern, 12);
    bool seen[GRP_KERNEL_COUNT_] = {false};
    for (int i = 0; i < c.nkern; i++) {
        const plan_kcost *k = &c.kern[i];
        print_message("  %-5s %8llu groups: %.2f ns/row\n", k->kernel,
                      (unsigned long long)k->groups, k->ns_per_row);
        const int id = grp_kernel_parse(k->kernel);
        assert_true(id >= 0);
        seen[id] = true;
        assert_int_equal(k->rows, 1u << 20);
        assert_true(k->groups == 1000 || k->groups == 1000000);
        assert_int_equal(k->threads, 2);
        assert_true(k->ns_per_row > 0.0 && k->ns_per_row < 100000.0);
    }
    for (int k = 0; k < GRP_KERNEL_COUNT_; k++)
        assert_true(seen[k]);

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quick_plausible),
        cmocka_unit_test(test_bw_thread_list),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
