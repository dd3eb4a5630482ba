/*
 * test_opencl.c - the OpenCL host runtime: error names and the checked-call
 * wrappers, device enumeration (against a raw walk of the ICD loader),
 * program builds and their logs, a quick and a normal calibration, and
 * every failure path of probe and calibrate, driven by the
 * fail-the-N-th-call hooks of cl* calls (ocl_fail_after) and of host
 * allocations (mem_fail_after), with leak checks of host memory and OpenCL
 * objects after each.
 *
 * Runs on whatever the ICD loader offers (PoCL's CPU device in CI); with no
 * OpenCL platform at all, every device test skips with a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "opencl/ocl_int.h"

static int ndev = -1;
static dev_info dev0;

/* The devices once, for every test. */
static int group_setup(void **state)
{
    (void)state;
    char err[512];
    ndev = ocl_probe(&dev0, 1, err, sizeof err);
    if (ndev < 0) {
        print_error("ocl_probe failed: %s\n", err);
        return -1;
    }
    if (ndev == 0)
        print_message("[  SKIP    ] no OpenCL platform or device found "
                      "(install an ICD such as PoCL: pocl-opencl-icd); the "
                      "device tests skip\n");
    return 0;
}

#define NEED_DEVICE()                                                          \
    do {                                                                       \
        if (ndev <= 0) {                                                       \
            print_message("[  SKIP    ] no OpenCL device\n");                  \
            skip();                                                            \
        }                                                                      \
    } while (0)

/* True when `msg` names a cl* call ("clFoo: ..." or "...: clFoo: ..."). */
static bool names_call(const char *msg)
{
    for (const char *p = msg; (p = strstr(p, "cl")) != NULL; p++)
        if ((p == msg || p[-1] == ' ') && p[2] >= 'A' && p[2] <= 'Z') {
            const char *colon = strchr(p, ':');
            const char *space = strchr(p, ' ');
            if (colon != NULL && (space == NULL || colon < space))
                return true;
        }
    return false;
}

static void test_error_names(void **state)
{
    (void)state;
    assert_string_equal(ocl_error_name(CL_SUCCESS), "CL_SUCCESS");
    assert_string_equal(ocl_error_name(-1), "CL_DEVICE_NOT_FOUND");
    assert_string_equal(ocl_error_name(-4), "CL_MEM_OBJECT_ALLOCATION_FAILURE");
    assert_string_equal(ocl_error_name(-5), "CL_OUT_OF_RESOURCES");
    assert_string_equal(ocl_error_name(-11), "CL_BUILD_PROGRAM_FAILURE");
    assert_string_equal(ocl_error_name(-19),
                        "CL_KERNEL_ARG_INFO_NOT_AVAILABLE");
    assert_string_equal(ocl_error_name(-30), "CL_INVALID_VALUE");
    assert_string_equal(ocl_error_name(-54), "CL_INVALID_WORK_GROUP_SIZE");
    assert_string_equal(ocl_error_name(-70), "CL_INVALID_DEVICE_QUEUE");
    assert_string_equal(ocl_error_name(-72),
                        "CL_MAX_SIZE_RESTRICTION_EXCEEDED");
    assert_string_equal(ocl_error_name(-1001), "CL_PLATFORM_NOT_FOUND_KHR");
    /* Unknown codes: the gaps of the list, positive values, far values. */
    assert_string_equal(ocl_error_name(-20), "CL_UNKNOWN_ERROR");
    assert_string_equal(ocl_error_name(-29), "CL_UNKNOWN_ERROR");
    assert_string_equal(ocl_error_name(-73), "CL_UNKNOWN_ERROR");
    assert_string_equal(ocl_error_name(1), "CL_UNKNOWN_ERROR");
    assert_string_equal(ocl_error_name(-9999), "CL_UNKNOWN_ERROR");

    /* The checked-call message, and the first failure wins. */
    char msg[128];
    ocl_err e = ocl_err_init(msg, sizeof msg);
    assert_true(ocl_check_(&e, "clFinish", CL_SUCCESS));
    assert_string_equal(msg, "");
    assert_false(ocl_check_(&e, "clCreateBuffer", -4));
    assert_string_equal(
        msg, "clCreateBuffer: CL_MEM_OBJECT_ALLOCATION_FAILURE (-4)");
    assert_int_equal(e.status, DQO_EDEVICE);
    assert_int_equal(e.code, -4);
    assert_false(ocl_check_(&e, "clFinish", -36));
    assert_int_equal(e.code, -4);
    assert_string_equal(
        msg, "clCreateBuffer: CL_MEM_OBJECT_ALLOCATION_FAILURE (-4)");
    e = ocl_err_init(msg, sizeof msg);
    assert_false(ocl_check_(&e, "clFoo", -12345));
    assert_string_equal(msg, "clFoo: CL_UNKNOWN_ERROR (-12345)");
    /* A buffer of one byte, and none, take a message safely. */
    char tiny[1];
    e = ocl_err_init(tiny, sizeof tiny);
    assert_false(ocl_check_(&e, "clFinish", -5));
    assert_string_equal(tiny, "");
    e = ocl_err_init(NULL, 0);
    assert_false(ocl_check_(&e, "clFinish", -5));
    assert_int_equal(e.status, DQO_EDEVICE);
}

static void test_extensions(void **state)
{
    (void)state;
    const char *exts = "cl_khr_fp64 cl_khr_int64_base_atomics  "
                       "cl_nv_device_attribute_query_x cl_khr_fp16";
    assert_true(ocl_has_ext(exts, "cl_khr_fp64"));
    assert_true(ocl_has_ext(exts, "cl_khr_int64_base_atomics"));
    assert_true(ocl_has_ext(exts, "cl_khr_fp16"));
    assert_false(ocl_has_ext(exts, "cl_khr_fp"));
    assert_false(ocl_has_ext(exts, "cl_nv_device_attribute_query"));
    assert_false(ocl_has_ext(exts, "int64_base_atomics"));
    assert_false(ocl_has_ext("", "cl_khr_fp64"));
    assert_false(ocl_has_ext(NULL, "cl_khr_fp64"));
    assert_non_null(ocl_source("calibrate"));
    assert_true(ocl_source("calibrate")->len > 0);
    assert_null(ocl_source("no_such_kernel"));
}

/* Counts devices with the raw API, as the loader reports them. */
static int raw_device_count(void)
{
    cl_uint np = 0;
    if (clGetPlatformIDs(0, NULL, &np) != CL_SUCCESS || np == 0)
        return 0;
    cl_platform_id plats[16];
    if (np > 16)
        np = 16;
    assert_int_equal(clGetPlatformIDs(np, plats, NULL), CL_SUCCESS);
    int total = 0;
    for (cl_uint p = 0; p < np; p++) {
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) ==
            CL_SUCCESS)
            total += (int)nd;
    }
    return total;
}

static void test_probe(void **state)
{
    (void)state;
    assert_int_equal(ndev, raw_device_count());
    NEED_DEVICE();
    dev_info devs[8];
    char err[256];
    const int max = ndev < 8 ? ndev : 8;
    assert_int_equal(ocl_probe(devs, max, err, sizeof err), ndev);
    int last_platform = -1, last_device = -1;
    for (int i = 0; i < max; i++) {
        const dev_info *d = &devs[i];
        print_message("cl:%d: platform %d \"%s\", device %d \"%s\" (%s), %s, "
                      "%s, %u CUs at %u MHz, %llu MiB global, %llu MiB "
                      "max alloc, %llu KiB local, %llu KiB cache, %s%s%s%s, "
                      "PCI %s %04x:%02x:%02x.%x\n",
                      i, d->platform, d->platform_name, d->device, d->name,
                      d->vendor, d->version, d->driver, d->compute_units,
                      d->clock_mhz, (unsigned long long)(d->global_mem >> 20),
                      (unsigned long long)(d->max_alloc >> 20),
                      (unsigned long long)(d->local_mem >> 10),
                      (unsigned long long)(d->global_cache >> 10),
                      d->is_gpu ? "gpu" : (d->is_cpu ? "cpu" : "other"),
                      d->host_unified ? ", unified" : "",
                      d->fp64 ? ", fp64" : "",
                      d->int64_atomics ? ", int64 atomics" : "",
                      d->has_pci ? "yes" : "no", d->pci_domain, d->pci_bus,
                      d->pci_dev, d->pci_func);
        /* Platform order, then device order. */
        if (d->platform == last_platform) {
            assert_int_equal(d->device, last_device + 1);
        } else {
            assert_true(d->platform > last_platform);
            assert_int_equal(d->device, 0);
        }
        last_platform = d->platform;
        last_device = d->device;
        assert_true(strlen(d->platform_name) > 0);
        assert_true(strlen(d->name) > 0);
        assert_true(strlen(d->vendor) > 0);
        assert_memory_equal(d->version, "OpenCL ", 7);
        assert_true(strlen(d->driver) > 0);
        assert_false(d->is_gpu && d->is_cpu);
        assert_true(d->compute_units >= 1);
        assert_true(d->global_mem > 0);
        assert_true(d->max_alloc > 0 && d->max_alloc <= d->global_mem);
        /* OpenCL 1.2 guarantees 32 KiB of local memory (full profile). */
        assert_true(d->local_mem >= 32 << 10);
        if (!d->has_pci)
            assert_int_equal(d->pci_bus + d->pci_dev + d->pci_func, 0);
        else
            assert_true(d->pci_dev < 32 && d->pci_func < 8);
        /* PoCL's CPU device: a host CPU, no PCI position, unified memory. */
        if (strcmp(d->platform_name, "Portable Computing Language") == 0 &&
            d->is_cpu) {
            assert_false(d->has_pci);
            assert_true(d->host_unified);
        }
        /* Probing twice gives the same first device. */
        if (i == 0) {
            assert_string_equal(d->name, dev0.name);
            assert_int_equal(d->global_mem, dev0.global_mem);
            assert_int_equal(d->compute_units, dev0.compute_units);
        }
    }
}

static void test_probe_max(void **state)
{
    (void)state;
    NEED_DEVICE();
    char err[256];
    dev_info devs[9];
    /* max below the count: the count still comes back, nothing past max is
     * written. */
    for (int max = 0; max < ndev && max < 8; max++) {
        memset(devs, 0xA5, sizeof devs);
        assert_int_equal(ocl_probe(devs, max, err, sizeof err), ndev);
        for (int i = 0; i < max; i++)
            assert_true(strlen(devs[i].name) > 0);
        const unsigned char *rest = (const unsigned char *)&devs[max];
        for (size_t b = 0; b < sizeof devs[max]; b++)
            assert_int_equal(rest[b], 0xA5);
    }
    assert_int_equal(ocl_probe(NULL, 0, err, sizeof err), ndev);
    /* Room for more than there are: only the count is filled. */
    if (ndev < 8) {
        memset(devs, 0xA5, sizeof devs);
        assert_int_equal(ocl_probe(devs, ndev + 1, err, sizeof err), ndev);
        assert_int_equal(((const unsigned char *)&devs[ndev])[0], 0xA5);
    }
    assert_int_equal(ocl_probe(NULL, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "max 1"));
    assert_int_equal(ocl_probe(devs, -1, err, sizeof err), -1);
}

/* Progress reports: non-decreasing fractions in [0, 1], named steps. */
typedef struct progress_log {
    int calls;
    double last;
    bool ok;
} progress_log;

static void on_progress(void *arg, double done, const char *step)
{
    progress_log *p = arg;
    if (done < p->last || done < 0 || done > 1 || step == NULL ||
        step[0] == '\0')
        p->ok = false;
    p->last = done;
    p->calls++;
}

static void print_calib(const char *what, const plan_calib *c)
{
    print_message("%s calibrate: %.2f s; read %.2f GB/s at %d CUs; launch "
                  "%.1f us; atomics private %.1f, shared %.1f Mupd/s; h2d "
                  "%.2f / %.2f, d2h %.2f / %.2f GB/s (pageable / pinned)\n",
                  what, c->seconds, c->bw_gbs[0], c->bw_threads[0],
                  c->launch_us, c->atomic_private_mops, c->atomic_shared_mops,
                  c->h2d_pageable_gbs, c->h2d_pinned_gbs, c->d2h_pageable_gbs,
                  c->d2h_pinned_gbs);
    for (int i = 0; i < c->nlat; i++)
        print_message(
            "  random reads, %-5s %8llu KiB: %.3f ns\n", c->lat_level[i],
            (unsigned long long)(c->lat_bytes[i] >> 10), c->lat_ns[i]);
}

static void check_calib(const plan_calib *c)
{
    assert_true(c->valid);
    assert_true(c->seconds > 0);
    assert_int_equal(c->nbw, 1);
    assert_int_equal(c->bw_threads[0], (int)dev0.compute_units);
    assert_true(c->bw_gbs[0] > 0);
    assert_true(c->nlat >= 1 && c->nlat <= 3);
    static const char *const levels[] = {"local", "L2", "DRAM"};
    int level = 0;
    for (int i = 0; i < c->nlat; i++) {
        while (level < 3 && strcmp(c->lat_level[i], levels[level]) != 0)
            level++;
        assert_true(level < 3); /* a known name, in order */
        assert_true(c->lat_bytes[i] > 0);
        assert_true(c->lat_ns[i] > 0);
        if (i > 0)
            assert_true(c->lat_bytes[i] > c->lat_bytes[i - 1] ||
                        strcmp(c->lat_level[i], "L2") == 0);
    }
    assert_true(c->atomic_private_mops > 0);
    assert_true(c->atomic_shared_mops > 0);
    assert_true(c->h2d_pageable_gbs > 0 && c->h2d_pinned_gbs > 0);
    assert_true(c->d2h_pageable_gbs > 0 && c->d2h_pinned_gbs > 0);
    assert_true(c->launch_us > 0);
    assert_int_equal(c->nkern, 0);
}

static void test_calibrate_quick(void **state)
{
    (void)state;
    NEED_DEVICE();
    const long mem0 = mem_outstanding(), obj0 = ocl_live_objects();
    progress_log log = {0, 0, true};
    calib_opts o = {
        .quick = true, .progress = on_progress, .progress_arg = &log};
    plan_calib c;
    char err[512];
    const dqo_status s = opencl_backend.calibrate(0, &o, &c, err, sizeof err);
    if (s != DQO_OK)
        print_error("calibrate: %s\n", err);
    assert_int_equal(s, DQO_OK);
    print_calib("quick", &c);
    check_calib(&c);
    assert_true(log.ok);
    assert_true(log.calls >= 8);
    assert_true(log.last == 1.0);
    assert_int_equal(mem_outstanding(), mem0);
    assert_int_equal(ocl_live_objects(), obj0);
    /* The shape of the ops table: devices, calibration, resident columns
     * and grouping; statistics stay on the CPU. */
    assert_string_equal(opencl_backend.name, "opencl");
    assert_non_null(opencl_backend.probe);
    assert_non_null(opencl_backend.group);
    assert_non_null(opencl_backend.col_upload);
    assert_null(opencl_backend.stats);
    /* The planner sees the same device through the table. */
    dev_info d;
    assert_int_equal(opencl_backend.probe(&d, 1, err, sizeof err), ndev);
    assert_string_equal(d.name, dev0.name);
}

static void test_calibrate_args(void **state)
{
    (void)state;
    char err[256];
    plan_calib c;
    memset(&c, 0x5A, sizeof c);
    assert_int_equal(ocl_calibrate(-1, NULL, &c, err, sizeof err), DQO_EINVAL);
    assert_non_null(strstr(err, "cl:-1"));
    assert_false(c.valid);
    assert_int_equal(
        ocl_calibrate(ndev > 0 ? ndev : 0, NULL, &c, err, sizeof err),
        DQO_ENOTFOUND);
    assert_non_null(strstr(err, "no OpenCL device"));
    assert_false(c.valid);
    assert_int_equal(ocl_calibrate(0, NULL, NULL, err, sizeof err), DQO_EINVAL);
    /* No error buffer at all is fine. */
    assert_int_equal(ocl_calibrate(-1, NULL, &c, NULL, 0), DQO_EINVAL);
}

/* A context on device 0 for the build tests; release with
 * ocl_release_context. */
static cl_context context0(cl_device_id *dev)
{
    char msg[256];
    ocl_err e = ocl_err_init(msg, sizeof msg);
    dev_info info;
    assert_int_equal(ocl_device_at(0, dev, &info, &e), DQO_OK);
    assert_string_equal(info.name, dev0.name);
    cl_context ctx = OCL_MAKE(&e, clCreateContext, NULL, 1, dev, NULL, NULL);
    assert_non_null(ctx);
    return ctx;
}

static void test_build(void **state)
{
    (void)state;
    NEED_DEVICE();
    const long obj0 = ocl_live_objects();
    cl_device_id dev;
    cl_context ctx = context0(&dev);
    char msg[4096];
    ocl_err e = ocl_err_init(msg, sizeof msg);
    cl_program p = ocl_build(ctx, dev, "calibrate", OCL_BUILD_OPTIONS, &e);
    assert_non_null(p);
    assert_int_equal(e.status, DQO_OK);
    ocl_release_program(p);

    /* A compile error: the call, the code, the file and the log. */
    const char *bad = "__kernel void broken(__global int *x) { x[0] = y; }\n";
    p = ocl_build_source(ctx, dev, "broken", bad, strlen(bad), NULL, &e);
    assert_null(p);
    assert_int_equal(e.status, DQO_EDEVICE);
    assert_int_equal(e.code, CL_BUILD_PROGRAM_FAILURE);
    print_message("build failure message: %s\n", msg);
    assert_non_null(strstr(msg, "clBuildProgram: CL_BUILD_PROGRAM_FAILURE"));
    assert_non_null(strstr(msg, "broken.cl"));
    assert_non_null(strstr(msg, "build log"));
    assert_non_null(strstr(msg, "y"));

    /* No such embedded source. */
    e = ocl_err_init(msg, sizeof msg);
    assert_null(ocl_build(ctx, dev, "no_such_kernel", NULL, &e));
    assert_int_equal(e.status, DQO_EINTERNAL);
    assert_non_null(strstr(msg, "no_such_kernel"));

    /* An injected failure of the build itself. */
    e = ocl_err_init(msg, sizeof msg);
    ocl_fail_after(1); /* clCreateProgramWithSource passes, the build fails */
    assert_null(ocl_build(ctx, dev, "calibrate", NULL, &e));
    ocl_fail_after(-1);
    assert_non_null(strstr(msg, "clBuildProgram: CL_OUT_OF_RESOURCES (-5)"));
    ocl_release_context(ctx);
    assert_int_equal(ocl_live_objects(), obj0);
}

/* The hook fails exactly the n-th checked call, once. */
static void test_hook_counting(void **state)
{
    (void)state;
    NEED_DEVICE();
    char err[512];
    const long before = ocl_checked_calls();
    assert_int_equal(ocl_probe(NULL, 0, err, sizeof err), ndev);
    const long per_probe = ocl_checked_calls() - before;
    assert_true(per_probe >= 2);
    /* Every checked call of a full probe, failed in turn. */
    dev_info devs[4];
    const long b2 = ocl_checked_calls();
    assert_int_equal(ocl_probe(devs, 4, err, sizeof err), ndev);
    const long full = ocl_checked_calls() - b2;
    const long mem0 = mem_outstanding();
    for (long n = 0; n < full; n++) {
        ocl_fail_after(n);
        const int r = ocl_probe(devs, 4, err, sizeof err);
        ocl_fail_after(-1);
        assert_int_equal(r, -1);
        assert_true(names_call(err));
        assert_non_null(strstr(err, "CL_OUT_OF_RESOURCES (-5) [injected"));
        assert_int_equal(mem_outstanding(), mem0);
    }
    /* Disarmed: probes work again; a hook past the last call never fires. */
    ocl_fail_after(full);
    assert_int_equal(ocl_probe(devs, 4, err, sizeof err), ndev);
    ocl_fail_after(-1);
}

/* A quick plan for device 0 with tiny sizes: the same checked calls as a
 * quick calibration (the same steps and repetitions), in a fraction of the
 * time. */
static ocl_calib_plan tiny_plan(void)
{
    ocl_calib_plan p;
    ocl_calib_plan_for(&dev0, true, &p);
    p.buf_bytes = 1 << 20;
    p.lat_local = p.lat_local > 0 ? 4096 : 0;
    p.lat_l2 = p.lat_l2 > 0 ? 64 << 10 : 0;
    p.lat_dram = 1 << 20;
    p.lat_reads = 1 << 14;
    p.atomic_updates = 1 << 12;
    p.xfer_bytes = 64 << 10;
    return p;
}

static void test_calibrate_fail_hook(void **state)
{
    (void)state;
    NEED_DEVICE();
    char err[1024];
    plan_calib c;
    const ocl_calib_plan tiny = tiny_plan();
    /* Count the checked calls of a quick calibration and of the tiny one. */
    calib_opts o = {.quick = true};
    long b = ocl_checked_calls();
    assert_int_equal(ocl_calibrate(0, &o, &c, err, sizeof err), DQO_OK);
    const long quick_calls = ocl_checked_calls() - b;
    b = ocl_checked_calls();
    assert_int_equal(ocl_calibrate_plan(0, &o, &tiny, &c, err, sizeof err),
                     DQO_OK);
    check_calib(&c);
    const long calls = ocl_checked_calls() - b;
    print_message("a quick calibrate makes %ld checked calls\n", quick_calls);
    assert_int_equal(calls, quick_calls);

    const long mem0 = mem_outstanding(), obj0 = ocl_live_objects();
    for (long n = 0; n < calls; n++) {
        ocl_fail_after(n);
        memset(&c, 0x5A, sizeof c);
        const dqo_status s =
            ocl_calibrate_plan(0, &o, &tiny, &c, err, sizeof err);
        ocl_fail_after(-1);
        if (s != DQO_EDEVICE || !names_call(err))
            print_error("failing checked call %ld: %s: %s\n", n,
                        dqo_status_name(s), err);
        assert_int_equal(s, DQO_EDEVICE);
        assert_true(names_call(err));
        assert_non_null(strstr(err, "CL_OUT_OF_RESOURCES (-5) [injected"));
        assert_memory_equal(err, "cl:0 ", 5);
        assert_false(c.valid);
        assert_int_equal(c.nlat, 0);
        assert_int_equal(mem_outstanding(), mem0);
        assert_int_equal(ocl_live_objects(), obj0);
    }
    /* The hook is spent: the next calibration succeeds. */
    assert_int_equal(ocl_calibrate_plan(0, &o, &tiny, &c, err, sizeof err),
                     DQO_OK);
}

/* Every host allocation of a calibration, failed in turn. */
static void test_calibrate_alloc_failures(void **state)
{
    (void)state;
    NEED_DEVICE();
    char err[1024];
    plan_calib c;
    const ocl_calib_plan tiny = tiny_plan();
    const long mem0 = mem_outstanding(), obj0 = ocl_live_objects();
    int failures = 0;
    for (long n = 1; n < 1000; n++) {
        mem_fail_after(n);
        const dqo_status s =
            ocl_calibrate_plan(0, NULL, &tiny, &c, err, sizeof err);
        mem_fail_after(0);
        assert_int_equal(mem_outstanding(), mem0);
        assert_int_equal(ocl_live_objects(), obj0);
        if (s == DQO_OK)
            break;
        assert_int_equal(s, DQO_ENOMEM);
        assert_non_null(strstr(err, "out of memory"));
        assert_false(c.valid);
        failures++;
    }
    print_message("%d host allocations failed in turn\n", failures);
    assert_true(failures >= 5);
}

static void test_calibrate_normal(void **state)
{
    (void)state;
    NEED_DEVICE();
    /* Normal mode: a few seconds on PoCL, at most ~15 s on a GPU. */
    plan_calib c;
    char err[512];
    assert_int_equal(ocl_calibrate(0, NULL, &c, err, sizeof err), DQO_OK);
    print_calib("normal", &c);
    check_calib(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_names),
        cmocka_unit_test(test_extensions),
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_probe_max),
        cmocka_unit_test(test_calibrate_args),
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_hook_counting),
        cmocka_unit_test(test_calibrate_quick),
        cmocka_unit_test(test_calibrate_fail_hook),
        cmocka_unit_test(test_calibrate_alloc_failures),
        cmocka_unit_test(test_calibrate_normal),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
