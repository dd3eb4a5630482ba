/*
 * test_alloc.c - the allocation wrapper: alignment, sizes kept across
 * realloc, the fail-the-N-th-call hook, and the scratch-block cache (reuse,
 * size fit, accounting and release with the last context).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dqo.h"
#include "engine/alloc.h"

static void test_basic(void **state)
{
    (void)state;
    long base = mem_outstanding();
    char *p = mem_alloc(100);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 64, 0);
    memset(p, 'x', 100);
    p = mem_realloc(p, 1000);
    assert_non_null(p);
    assert_int_equal(p[99], 'x');
    assert_null(mem_calloc(SIZE_MAX / 2, 4));
    mem_free(p);
    mem_free(NULL);
    assert_int_equal(mem_outstanding(), base);
    mem_fail_after(2);
    void *a = mem_alloc(8), *b = mem_alloc(8), *c = mem_alloc(8);
    assert_non_null(a);
    assert_null(b);
    assert_non_null(c);
    mem_free(a);
    mem_free(c);
    assert_int_equal(mem_outstanding(), base);
}

static void test_scratch(void **state)
{
    (void)state;
    dqo_ctx *ctx;
    assert_int_equal(dqo_ctx_create(&ctx), DQO_OK);
    long base = mem_outstanding();
    void *p = mem_scratch_alloc(MEM_SCRATCH_MIN);
    assert_non_null(p);
    assert_int_equal(mem_outstanding(), base + 1);
    mem_scratch_free(p);
    /* Kept, not live: a leak check after a query sees nothing. */
    assert_int_equal(mem_outstanding(), base);
    /* A request that fits (not less than half the block) gets it back. */
    void *q = mem_scratch_alloc(MEM_SCRATCH_MIN - 4096);
    assert_ptr_equal(q, p);
    mem_scratch_free(q);
    /* One far smaller gets a new block. */
    void *small = mem_scratch_alloc(MEM_SCRATCH_MIN / 4);
    assert_ptr_not_equal(small, p);
    mem_scratch_free(small);
    /* A larger one cannot use it. */
    void *big = mem_scratch_alloc(2 * MEM_SCRATCH_MIN);
    assert_ptr_not_equal(big, p);
    /* The failure hook applies to kept blocks too. */
    mem_fail_after(1);
    assert_null(mem_scratch_alloc(MEM_SCRATCH_MIN));
    mem_scratch_free(big);
    assert_int_equal(mem_outstanding(), base);
    /* Destroying the last context releases what is kept. */
    dqo_ctx_destroy(ctx);
    assert_int_equal(dqo_ctx_create(&ctx), DQO_OK);
    void *r = mem_scratch_alloc(MEM_SCRATCH_MIN);
    assert_non_null(r);
    mem_scratch_free(r);
    dqo_ctx_destroy(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_scratch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
