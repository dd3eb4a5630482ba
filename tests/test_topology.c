/*
 * test_topology.c - the machine model from synthetic and XML topologies
 * (no hardware needed), PCI matching of OpenCL devices, thread spreading,
 * and the calibration profile: round trip, missing, stale, corrupt.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/engine_int.h"
#include "topology/topology.h"

static char xml_path[1024];
static char tmp_dir[256];

static void load(const char *xml, const char *syn, plan_model *m)
{
    char err[256] = "";
    int r = topo_model_from(xml, syn, m, err, sizeof err);
    if (r != 0)
        fail_msg("topo_model_from: %s", err);
}

static void test_synthetic_2x2x8(void **state)
{
    (void)state;
    plan_model *m = malloc(sizeof *m);
    load(NULL, "pack:2 numa:2 core:8 pu:1", m);
    assert_int_equal(m->packages, 2);
    assert_int_equal(m->numa_nodes, 4);
    assert_int_equal(m->cores, 32);
    assert_int_equal(m->pus, 32);
    assert_false(m->this_system);
    assert_string_equal(m->source, "synthetic");
    assert_int_equal(m->nloc, 5);
    assert_string_equal(m->loc[0].id, "cpu");
    assert_int_equal(m->loc[0].kind, PLAN_LOC_CPU);
    assert_int_equal(m->loc[0].cores, 32);
    assert_int_equal(m->loc[0].numa, -1);
    for (int i = 0; i < 4; i++) {
        char id[24];
        snprintf(id, sizeof id, "cpu:numa%d", i);
        const plan_location *l = &m->loc[1 + i];
        assert_string_equal(l->id, id);
        assert_int_equal(l->kind, PLAN_LOC_NUMA);
        assert_int_equal(l->numa, i);
        assert_int_equal(l->cores, 8);
        assert_int_equal(l->first_core, 8 * i);
        assert_true(l->mem_bytes > 0);
        assert_int_equal(plan_model_find(m, id), 1 + i);
    }
    assert_int_equal(plan_model_find(m, "cl:0"), -1);
    free(m);
}

static void test_synthetic_single_core(void **state)
{
    (void)state;
    plan_model *m = malloc(sizeof *m);
    load(NULL, "core:1 pu:1", m);
    assert_int_equal(m->cores, 1);
    assert_int_equal(m->pus, 1);
    assert_int_equal(m->numa_nodes, 1);
    assert_int_equal(m->nloc, 2);
    assert_string_equal(m->loc[0].id, "cpu");
    assert_string_equal(m->loc[1].id, "cpu:numa0");
    assert_int_equal(m->loc[1].cores, 1);
    /* No cache in the description: defaults, never zero. */
    assert_true(m->loc[0].l1d > 0 && m->loc[0].l2 > 0 && m->loc[0].l3 > 0);
    free(m);
}

static void test_synthetic_invalid(void **state)
{
    (void)state;
    plan_model *m = malloc(sizeof *m);
    char err[256] = "";
    assert_int_equal(topo_model_from(NULL, "pack:two", m, err, sizeof err), -1);
    assert_non_null(strstr(err, "pack:two"));
    assert_int_equal(topo_model_from("/nonexistent/x.xml", NULL, m, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/x.xml"));
    free(m);
}

static void test_xml_two_gpus(void **state)
{
    (void)state;
    plan_model *m = malloc(sizeof *m);
    load(xml_path, NULL, m);
    assert_string_equal(m->source, "xml");
    assert_string_equal(m->cpu_name, "Test CPU 9000");
    assert_int_equal(m->packages, 2);
    assert_int_equal(m->numa_nodes, 2);
    assert_int_equal(m->cores, 8);
    assert_int_equal(m->pus, 16);
    assert_int_equal(m->loc[0].l1d, 32u << 10);
    assert_int_equal(m->loc[0].l2, 4u << 20);
    assert_int_equal(m->loc[0].l3, 16u << 20);
    assert_int_equal(m->nosdev, 2);
    assert_int_equal(m->nloc, 5); /* cpu, 2 nodes, 2 GPUs */
    assert_string_equal(m->loc[3].id, "cl:0");
    assert_string_equal(m->loc[4].id, "cl:1");
    for (int i = 0; i < 2; i++) {
        const plan_location *l = &m->loc[3 + i];
        assert_int_equal(l->kind, PLAN_LOC_CL);
        assert_string_equal(l->name, "NVIDIA H100 80GB HBM3");
        assert_int_equal(l->numa, i);
        assert_int_equal(l->cores, 132);
        assert_int_equal(l->mem_bytes, 83468288ull * 1024);
        assert_int_equal(l->link, PLAN_LINK_PCIE);
        assert_true(l->link_gbs > 31 && l->link_gbs < 32);
        assert_int_equal(l->cl_device, i);
    }
    assert_string_equal(m->loc[3].pci, "0000:17:00.0");
    assert_string_equal(m->loc[4].pci, "0000:ca:00.0");
    assert_string_equal(m->loc[3].osdev, "opencl0d0");
    assert_int_equal(m->loc[1].cores, 4);
    assert_int_equal(m->loc[2].first_core, 4);
    free(m);
}

/* Devices from the ICD loader matched to hwloc's by PCI bus id: the loader
 * lists them in another order than hwloc, and a PoCL CPU device has no PCI
 * position. */
static void test_attach_by_pci(void **state)
{
    (void)state;
    plan_model *m = malloc(sizeof *m);
    load(xml_path, NULL, m);
    m->nloc = 3; /* keep cpu and the nodes; attach as the engine does */
    dev_info d[3];
    memset(d, 0, sizeof d);
    snprintf(d[0].name, sizeof d[0].name, "GPU on ca");
    d[0].has_pci = true;
    d[0].pci_bus = 0xca;
    d[0].is_gpu = true;
    d[0].compute_units = 132;
    snprintf(d[1].name, sizeof d[1].name, "GPU on 17");
    d[1].has_pci = true;
    d[1].pci_bus = 0x17;
    d[1].device = 1;
    d[1].is_gpu = true;
    snprintf(d[2].name, sizeof d[2].name, "pthread CPU");
    d[2].platform = 1;
    d[2].is_cpu = true;
    d[2].host_unified = true;
    engine_attach_cl(m, d, 3);
    assert_int_equal(m->nloc, 6);
    assert_string_equal(m->loc[3].id, "cl:0");
    assert_string_equal(m->loc[3].pci, "0000:ca:00.0");
    assert_int_equal(m->loc[3].numa, 1);
    assert_string_equal(m->loc[3].osdev, "opencl0d1");
    assert_int_equal(m->loc[3].link, PLAN_LINK_PCIE);
    assert_int_equal(m->loc[4].numa, 0);
    assert_string_equal(m->loc[4].osdev, "opencl0d0");
    assert_string_equal(m->loc[5].id, "cl:2");
    assert_int_equal(m->loc[5].link, PLAN_LINK_HOST);
    assert_int_equal(m->loc[5].numa, -1);
    assert_string_equal(m->loc[5].pci, "");
    free(m);
}

/* In a VM hwloc may hang the OpenCL OS device under the host bridge, with
 * no PCI parent: then hwloc's platform/device index (the ICD order)
 * matches. */
static void test_attach_by_index(void **state)
{
    (void)state;
    plan_model *m = malloc(sizeof *m);
    load(xml_path, NULL, m);
    m->nloc = 3;
    m->osdev[1].pci[0] = '\0'; /* opencl0d1: platform 0, device 1 */
    dev_info d[2];
    memset(d, 0, sizeof d);
    d[0].has_pci = true;
    d[0].pci_bus = 0x17; /* matches opencl0d0 by bus id */
    d[1].has_pci = true;
    d[1].pci_bus = 0x06; /* no hwloc PCI device at 06: by index */
    d[1].device = 1;
    engine_attach_cl(m, d, 2);
    assert_string_equal(m->loc[3].osdev, "opencl0d0");
    assert_int_equal(m->loc[3].numa, 0);
    assert_string_equal(m->loc[4].osdev, "opencl0d1");
    assert_int_equal(m->loc[4].numa, 1);
    assert_string_equal(m->loc[4].pci, "0000:06:00.0");
    free(m);
}

static void test_spread(void **state)
{
    (void)state;
    int cores = topo_model()->cores;
    /* Up to one thread per core: distinct cores, first at 0, ascending. */
    for (int n = 1; n <= cores; n++) {
        int prev = -1;
        for (int t = 0; t < n; t++) {
            int c = topo_core_of_thread(t, n);
            assert_true(c > prev && c < cores);
            prev = c;
        }
        assert_int_equal(topo_core_of_thread(0, n), 0);
    }
    /* More threads than cores: round-robin. */
    for (int t = 0; t < 3 * cores; t++)
        assert_int_equal(topo_core_of_thread(t, 3 * cores), t % cores);
    for (int c = 0; c < cores; c++)
        assert_true(topo_core_numa(c) >= 0);
}

static void fill_calib(plan_model *m)
{
    for (int i = 0; i < m->nloc; i++) {
        plan_calib *c = &m->loc[i].calib;
        if (i == 1)
            continue; /* leave one location uncalibrated */
        c->valid = true;
        c->seconds = 1.5 + i;
        c->nbw = 3;
        for (int j = 0; j < 3; j++) {
            c->bw_threads[j] = 1 << j;
            c->bw_gbs[j] = 8.25 * (j + 1) + i;
        }
        c->nlat = 2;
        snprintf(c->lat_level[0], sizeof c->lat_level[0], "L1");
        snprintf(c->lat_level[1], sizeof c->lat_level[1], "DRAM");
        c->lat_bytes[0] = 24576;
        c->lat_bytes[1] = 1ull << 30;
        c->lat_ns[0] = 1.25;
        c->lat_ns[1] = 95.5;
        c->atomic_private_mops = 812.5;
        c->atomic_shared_mops = 61;
        c->h2d_pinned_gbs = i * 10.5;
        c->launch_us = 7.25;
        c->nkern = 2;
        snprintf(c->kern[0].kernel, sizeof c->kern[0].kernel, "sphg");
        c->kern[0].rows = 4000000;
        c->kern[0].groups = 1000;
        c->kern[0].threads = 16;
        c->kern[0].ns_per_row = 0.4125;
        snprintf(c->kern[1].kernel, sizeof c->kern[1].kernel, "radix");
        c->kern[1].rows = 4000000;
        c->kern[1].groups = 1000000;
        c->kern[1].threads = 16;
        c->kern[1].ns_per_row = 2.5;
    }
}

static void profile_file(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmp_dir, name);
}

static void test_profile_round_trip(void **state)
{
    (void)state;
    plan_model *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    load(xml_path, NULL, a);
    fill_calib(a);
    char path[512], err[256] = "", why[1024] = "";
    profile_file(path, sizeof path, "sub/dir/profile.txt"); /* dirs created */
    assert_int_equal(topo_profile_write(path, a, err, sizeof err), 0);
    load(xml_path, NULL, b);
    assert_int_equal(topo_profile_read(path, b, why, sizeof why), TOPO_PROFILE_OK);
    assert_string_equal(why, "");
    for (int i = 0; i < a->nloc; i++) {
        const plan_calib *x = &a->loc[i].calib, *y = &b->loc[i].calib;
        assert_int_equal(x->valid, y->valid);
        if (!x->valid)
            continue;
        assert_int_equal(x->nbw, y->nbw);
        for (int j = 0; j < x->nbw; j++) {
            assert_int_equal(x->bw_threads[j], y->bw_threads[j]);
            assert_float_equal(x->bw_gbs[j], y->bw_gbs[j], 1e-3);
        }
        assert_int_equal(x->nlat, y->nlat);
        assert_string_equal(x->lat_level[1], y->lat_level[1]);
        assert_int_equal(x->lat_bytes[1], y->lat_bytes[1]);
        assert_float_equal(x->lat_ns[1], y->lat_ns[1], 1e-3);
        assert_float_equal(x->atomic_shared_mops, y->atomic_shared_mops, 1e-3);
        assert_float_equal(x->h2d_pinned_gbs, y->h2d_pinned_gbs, 1e-3);
        assert_float_equal(x->launch_us, y->launch_us, 1e-3);
        assert_int_equal(x->nkern, y->nkern);
        assert_string_equal(x->kern[1].kernel, y->kern[1].kernel);
        assert_int_equal(x->kern[1].groups, y->kern[1].groups);
        assert_float_equal(x->kern[0].ns_per_row, y->kern[0].ns_per_row, 1e-4);
    }
    assert_float_equal(plan_calib_peak_bw(&b->loc[0].calib), 24.75, 1e-3);
    assert_float_equal(plan_calib_bw_at(&b->loc[0].calib, 3), (16.5 + 24.75) / 2, 1e-3);
    free(a);
    free(b);
}

/* Reads the file into a malloc'd buffer. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void spit(const char *path, const char *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
}

static void expect_status(const char *path, topo_profile_status want,
                          const char *needle)
{
    plan_model *m = malloc(sizeof *m);
    load(xml_path, NULL, m);
    char why[1024] = "";
    topo_profile_status st = topo_profile_read(path, m, why, sizeof why);
    if (st != want || strstr(why, needle) == NULL)
        fail_msg("profile %s: status %d (want %d), why \"%s\" (want \"%s\")",
                 path, st, want, why, needle);
    for (int i = 0; i < m->nloc; i++)
        assert_false(m->loc[i].calib.valid); /* nothing half-applied */
    free(m);
}

static void test_profile_bad(void **state)
{
    (void)state;
    plan_model *a = malloc(sizeof *a);
    load(xml_path, NULL, a);
    fill_calib(a);
    char path[512], bad[512], err[256];
    profile_file(path, sizeof path, "good.txt");
    profile_file(bad, sizeof bad, "bad.txt");
    assert_int_equal(topo_profile_write(path, a, err, sizeof err), 0);
    size_t len;
    char *text = slurp(path, &len);

    expect_status("/nonexistent/dqo/profile.txt", TOPO_PROFILE_MISSING,
                  "no calibration profile");
    /* One changed byte in the body. */
    char *copy = malloc(len);
    memcpy(copy, text, len);
    char *p = strstr(copy, "bw 2 ");
    assert_non_null(p);
    p[5] = p[5] == '9' ? '8' : '9';
    spit(bad, copy, len);
    expect_status(bad, TOPO_PROFILE_CORRUPT, "corrupt");
    /* Truncated in the middle. */
    spit(bad, text, len / 2);
    expect_status(bad, TOPO_PROFILE_CORRUPT, "corrupt");
    /* Empty file and binary garbage. */
    spit(bad, "", 0);
    expect_status(bad, TOPO_PROFILE_CORRUPT, "corrupt");
    for (size_t i = 0; i < len; i++)
        copy[i] = (char)(i * 131 + 7);
    spit(bad, copy, len);
    expect_status(bad, TOPO_PROFILE_CORRUPT, "corrupt");
    free(copy);

    /* Another machine: a model with other cores reads a's profile. */
    plan_model *other = malloc(sizeof *other);
    load(NULL, "pack:2 numa:2 core:8 pu:1", other);
    char why[1024];
    assert_int_equal(topo_profile_read(path, other, why, sizeof why),
                     TOPO_PROFILE_STALE);
    assert_non_null(strstr(why, "another machine"));
    assert_false(other->loc[0].calib.valid);
    free(other);
    free(text);
    free(a);
}

/* A well-formed profile (correct checksum) of another format version or dqo
 * version is stale. */
static void rewrite_with_checksum(const char *path, const char *body)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *c = body; *c != '\0'; c++) {
        h ^= (unsigned char)*c;
        h *= 0x100000001b3ull;
    }
    FILE *f = fopen(path, "wb");
    fprintf(f, "%schecksum %016llx\n", body, (unsigned long long)h);
    fclose(f);
}

static void test_profile_stale_versions(void **state)
{
    (void)state;
    plan_model *a = malloc(sizeof *a);
    load(xml_path, NULL, a);
    char path[512], body[512];
    profile_file(path, sizeof path, "stale.txt");
    snprintf(body, sizeof body, "dqo-profile 999\ndqo-version 0.1.0\n");
    rewrite_with_checksum(path, body);
    expect_status(path, TOPO_PROFILE_STALE, "format 999");
    snprintf(body, sizeof body,
             "dqo-profile 1\ndqo-version 9.9.0\nfingerprint %016llx\n",
             (unsigned long long)topo_fingerprint(a));
    rewrite_with_checksum(path, body);
    expect_status(path, TOPO_PROFILE_STALE, "dqo 9.9.0");
    /* A well-formed file with an unknown line is corrupt, not half read. */
    snprintf(body, sizeof body,
             "dqo-profile 1\ndqo-version %s\nfingerprint %016llx\n"
             "location cpu\nbw 1 5.0\nfrobnicate 3\nend\n",
             DQO_VERSION_STRING, (unsigned long long)topo_fingerprint(a));
    rewrite_with_checksum(path, body);
    expect_status(path, TOPO_PROFILE_CORRUPT, "frobnicate");
    free(a);
}

/* Through the public API: a corrupt profile named by DQO_PROFILE gives a
 * warning and the context still works. */
static void test_ctx_warns(void **state)
{
    (void)state;
    char path[512];
    profile_file(path, sizeof path, "ctx-corrupt.txt");
    spit(path, "dqo-profile 1\ngarbage", 21);
    setenv("DQO_PROFILE", path, 1);
    dqo_ctx *ctx;
    assert_int_equal(dqo_ctx_create(&ctx), DQO_OK);
    assert_true(dqo_location_count(ctx) >= 2);
    assert_non_null(strstr(dqo_ctx_warnings(ctx), "corrupt"));
    int idx = -1;
    assert_int_equal(dqo_location_find(ctx, "cpu:numa0", &idx), DQO_OK);
    assert_int_equal(idx, 1);
    assert_int_equal(dqo_location_find(ctx, "cl:99", &idx), DQO_ENOTFOUND);
    assert_non_null(strstr(dqo_ctx_errmsg(ctx), "cpu:numa0"));
    dqo_location_info info;
    assert_int_equal(dqo_location_get(ctx, 0, &info), DQO_OK);
    assert_string_equal(info.id, "cpu");
    assert_false(info.calibrated);
    assert_int_equal(dqo_location_get(ctx, 999, &info), DQO_EINVAL);
    char *text = NULL;
    assert_int_equal(dqo_machine_describe(ctx, 0, &text), DQO_OK);
    assert_non_null(strstr(text, "cpu:numa0"));
    assert_non_null(strstr(text, "corrupt"));
    dqo_free(text);
    assert_int_equal(dqo_machine_describe(ctx, 1, &text), DQO_OK);
    assert_non_null(strstr(text, "\"locations\""));
    assert_non_null(strstr(text, "\"status\": \"corrupt\""));
    dqo_free(text);
    dqo_ctx_destroy(ctx);

    unsetenv("DQO_PROFILE");
    char home[512];
    snprintf(home, sizeof home, "%s/xdg", tmp_dir);
    setenv("XDG_CACHE_HOME", home, 1);
    assert_int_equal(dqo_ctx_create(&ctx), DQO_OK);
    assert_non_null(strstr(dqo_ctx_warnings(ctx), "no calibration profile"));
    assert_int_equal(dqo_profile_path(ctx, &text), DQO_OK);
    assert_true(strncmp(text, home, strlen(home)) == 0);
    assert_non_null(strstr(text, "/dqo/profile-"));
    dqo_free(text);
    dqo_ctx_destroy(ctx);
}

/* OMP_NUM_THREADS sets the default thread count; the context overrides. */
static void test_omp_num_threads(void **state)
{
    (void)state;
    setenv("OMP_NUM_THREADS", "3,2", 1);
    dqo_ctx *ctx;
    assert_int_equal(dqo_ctx_create(&ctx), DQO_OK);
    assert_int_equal(dqo_ctx_threads(ctx), 3);
    assert_int_equal(dqo_ctx_set_threads(ctx, 5), DQO_OK);
    assert_int_equal(dqo_ctx_threads(ctx), 5);
    dqo_ctx_destroy(ctx);
    setenv("OMP_NUM_THREADS", "junk", 1);
    assert_int_equal(dqo_ctx_create(&ctx), DQO_OK);
    assert_int_equal(dqo_ctx_threads(ctx), topo_model()->cores);
    dqo_ctx_destroy(ctx);
    unsetenv("OMP_NUM_THREADS");
}

/* Failing each allocation of model building and describing leaks nothing
 * and returns DQO_ENOMEM. */
static void test_alloc_failures(void **state)
{
    (void)state;
    unsetenv("DQO_PROFILE");
    for (long n = 0; n < 8; n++) {
        dqo_ctx *ctx;
        if (dqo_ctx_create(&ctx) != DQO_OK)
            continue;
        mem_fail_after(n);
        char *text = NULL;
        dqo_status s = dqo_machine_describe(ctx, n % 2, &text);
        mem_fail_after(-1);
        assert_true(s == DQO_OK || s == DQO_ENOMEM);
        if (s == DQO_OK)
            dqo_free(text);
        else
            assert_null(text);
        dqo_ctx_destroy(ctx);
    }
}

int main(void)
{
    const char *data = getenv("DQO_TEST_DATA");
    snprintf(xml_path, sizeof xml_path, "%s/two-gpus.xml",
             data != NULL ? data : "tests/data");
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/dqo-test-topology-XXXXXX");
    if (mkdtemp(tmp_dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthetic_2x2x8),
        cmocka_unit_test(test_synthetic_single_core),
        cmocka_unit_test(test_synthetic_invalid),
        cmocka_unit_test(test_xml_two_gpus),
        cmocka_unit_test(test_attach_by_pci),
        cmocka_unit_test(test_attach_by_index),
        cmocka_unit_test(test_spread),
        cmocka_unit_test(test_profile_round_trip),
        cmocka_unit_test(test_profile_bad),
        cmocka_unit_test(test_profile_stale_versions),
        cmocka_unit_test(test_ctx_warns),
        cmocka_unit_test(test_omp_num_threads),
        cmocka_unit_test(test_alloc_failures),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp_dir);
    return rc;
}
