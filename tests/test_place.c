/*
 * test_place.c - thread placement and the placed copy (cpu/place.c).
 *
 * When dqo may bind threads on this machine (topo_can_bind()):
 *  - every thread of a team of 1, 2 and `cores` threads runs on a PU of the
 *    core topo_core_of_thread assigns it;
 *  - the calling thread gets its own binding back after every op (its
 *    affinity mask is the same before and after), also when the caller had
 *    pinned it somewhere else, and it is bound again by the next op (the
 *    thread-local record of its core is forgotten on release).
 * When it may not, the test says so and checks only the copy and that the
 * caller's affinity is left alone.
 *
 * place_copy copies exactly: sizes 0, 1, around a page, several MiB and
 * unaligned, at unaligned source and destination addresses, for several
 * thread counts, without touching a byte outside the destination.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cpu/cpu_int.h"
#include "engine/alloc.h"
#include "topology/topology.h"

static int model_cores(void)
{
    const int c = topo_model()->cores;
    return c < 1 ? 1 : c;
}

static void get_affinity(cpu_set_t *s)
{
    CPU_ZERO(s);
    assert_int_equal(sched_getaffinity(0, sizeof *s, s), 0);
}

static void set_affinity(const cpu_set_t *s)
{
    assert_int_equal(sched_setaffinity(0, sizeof *s, s), 0);
}

/* The highest CPU the calling thread may run on now. */
static int last_allowed_cpu(const cpu_set_t *s)
{
    int last = -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, s))
            last = c;
    return last;
}

static void check_team(int threads)
{
    int *pu = calloc((size_t)threads, sizeof *pu);
    assert_non_null(pu);
    const int got = cpu_team_where(threads, pu);
    assert_int_equal(got, threads);
    for (int t = 0; t < got; t++) {
        const int core = topo_core_of_thread(t, threads);
        if (!topo_pu_in_core(pu[t], core))
            fail_msg("team of %d: thread %d runs on PU %d, not in core %d",
                     threads, t, pu[t], core);
    }
    free(pu);
}

static void test_team_placement(void **state)
{
    (void)state;
    if (!topo_can_bind()) {
        print_message("binding not possible here (one PU, not this system, "
                      "OMP_PLACES/OMP_PROC_BIND or DQO_BIND=0): skipped\n");
        skip();
    }
    const int cores = model_cores();
    check_team(1);
    check_team(2);
    check_team(cores);
    /* Again, now that the workers remember their cores. */
    check_team(cores);
    check_team(2);
}

static void test_master_restored(void **state)
{
    (void)state;
    /* Without binding the masks must not change either. */
    const bool bind = topo_can_bind();
    if (!bind)
        print_message("binding not possible here: checking only that the "
                      "caller's affinity is left alone\n");
    const int cores = model_cores();
    cpu_set_t before, after;
    get_affinity(&before);

    /* A stats op and a grouping op leave the mask as it was. */
    const uint64_t rows = 200000;
    uint32_t *keys = mem_alloc(rows * sizeof *keys);
    assert_non_null(keys);
    assert_int_equal(
        cpu_backend.gen_grouping(keys, NULL, rows, 100, false, false, 1, cores),
        DQO_OK);
    get_affinity(&after);
    assert_true(CPU_EQUAL(&before, &after));
    dqo_column_stats ks;
    assert_int_equal(
        cpu_backend.stats(DQO_TYPE_U32, keys, NULL, rows, cores, &ks), DQO_OK);
    get_affinity(&after);
    assert_true(CPU_EQUAL(&before, &after));
    grp_input in = {.key_type = DQO_TYPE_U32,
                    .keys = keys,
                    .rows = rows,
                    .key_stats = &ks,
                    .naggs = 0,
                    .threads = cores};
    plan_choice pc;
    plan_force_group(GRP_KERNEL_HASH, &pc);
    grp_output out;
    assert_int_equal(cpu_backend.group(&in, &pc.g, &out), DQO_OK);
    grp_output_free(&out, 0);
    get_affinity(&after);
    assert_true(CPU_EQUAL(&before, &after));

    /* A caller that pinned itself to its last CPU stays there, and the
     * next op still binds it to core 0 while it runs. */
    const int last = last_allowed_cpu(&before);
    assert_true(last >= 0);
    cpu_set_t pinned;
    CPU_ZERO(&pinned);
    CPU_SET(last, &pinned);
    set_affinity(&pinned);
    for (int round = 0; round < 3; round++) {
        int pu[2] = {-1, -1};
        const int got = cpu_team_where(2, pu);
        assert_int_equal(got, 2);
        if (bind && !topo_pu_in_core(pu[0], topo_core_of_thread(0, 2)))
            fail_msg("round %d: master on PU %d, not in core %d", round, pu[0],
                     topo_core_of_thread(0, 2));
        get_affinity(&after);
        assert_true(CPU_EQUAL(&pinned, &after));
    }
    char *dst = mem_alloc(4u << 20), *src = mem_alloc(4u << 20);
    assert_non_null(dst);
    assert_non_null(src);
    memset(src, 7, 4u << 20);
    cpu_backend.place_copy(dst, src, 4u << 20, cores);
    get_affinity(&after);
    assert_true(CPU_EQUAL(&pinned, &after));
    mem_free(dst);
    mem_free(src);

    set_affinity(&before);
    mem_free(keys);
}

static uint64_t rng_state = 12345;
static uint64_t rng(void)
{
    uint64_t x = rng_state += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

#define GUARD 256

/* Copies `bytes` from src + soff to dst + doff with `threads` threads, both
 * through the op and the internal function, and checks every byte. */
static void check_copy(size_t bytes, size_t soff, size_t doff, int threads)
{
    const size_t cap = bytes + 2 * GUARD + 64;
    unsigned char *src = mem_alloc(cap), *dst = mem_alloc(cap);
    assert_non_null(src);
    assert_non_null(dst);
    for (size_t i = 0; i < cap; i++)
        src[i] = (unsigned char)rng();
    for (int way = 0; way < 2; way++) {
        memset(dst, 0xa5, cap);
        unsigned char *d = dst + GUARD + doff;
        const unsigned char *s = src + GUARD + soff;
        if (way == 0)
            cpu_backend.place_copy(d, s, bytes, threads);
        else
            cpu_place_copy(d, s, bytes, threads);
        if (memcmp(d, s, bytes) != 0)
            fail_msg("copy of %zu bytes (src +%zu, dst +%zu, %d threads) "
                     "differs",
                     bytes, soff, doff, threads);
        for (size_t i = 0; i < GUARD + doff; i++)
            assert_int_equal(dst[i], 0xa5);
        for (size_t i = GUARD + doff + bytes; i < cap; i++)
            assert_int_equal(dst[i], 0xa5);
    }
    mem_free(src);
    mem_free(dst);
}

static void test_place_copy(void **state)
{
    (void)state;
    if (!topo_can_bind())
        print_message("binding not possible here: checking the copy only\n");
    const long live = mem_outstanding();
    const size_t fixed[] = {0,
                            1,
                            63,
                            4095,
                            4096,
                            4097,
                            (1u << 20) - 1,
                            1u << 20,
                            (1u << 20) + 4097,
                            (3u << 20) + 13,
                            (8u << 20) + 4096 * 3 + 5};
    const int threads[] = {1, 2, 3, model_cores(), 8};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++)
            check_copy(fixed[i], i % 7, (i * 5) % 64, threads[t]);
    /* Random sizes up to 6 MiB, random offsets and thread counts. */
    for (int r = 0; r < 24; r++) {
        const size_t bytes = (size_t)(rng() % (6u << 20));
        check_copy(bytes, (size_t)(rng() % 64), (size_t)(rng() % 64),
                   1 + (int)(rng() % 9));
    }
    assert_int_equal(mem_outstanding(), live);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_team_placement),
        cmocka_unit_test(test_master_restored),
        cmocka_unit_test(test_place_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
