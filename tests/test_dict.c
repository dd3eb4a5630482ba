/*
 * test_dict.c - the string dictionary (engine/dict.c) against a naive
 * reference: codes must be dense and in order of first appearance, equal
 * byte strings must share a code and different ones must not. The inputs are
 * seeded random strings built to collide: long shared prefixes, the empty
 * string, embedded NUL bytes, strings that differ only in their last byte or
 * length, and 1e5 distinct values so the table and the arena grow many times.
 *
 * The reference assigns codes by sorting (index, bytes) pairs, so it shares
 * nothing with the hash table it checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/engine_int.h"

typedef struct ref_str {
    char *s;
    size_t len;
    size_t index; /* position in the input */
} ref_str;

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* splitmix64: a good enough stream for test inputs. */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int ref_cmp(const void *a, const void *b)
{
    const ref_str *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    if (c != 0)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* The expected code of every input: the rank of its first appearance among
 * the distinct strings' first appearances. */
static uint32_t *reference_codes(ref_str *in, size_t n, uint32_t *distinct)
{
    ref_str *sorted = malloc(n * sizeof *sorted);
    size_t *first = malloc(n * sizeof *first); /* input -> first index */
    uint32_t *code_of_first = malloc(n * sizeof *code_of_first);
    uint32_t *codes = malloc(n * sizeof *codes);
    assert_non_null(sorted);
    assert_non_null(first);
    assert_non_null(code_of_first);
    assert_non_null(codes);
    memcpy(sorted, in, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, ref_cmp);
    for (size_t i = 0; i < n; i++) {
        /* Sorted by bytes then index: a group's head is its first use. */
        if (i == 0 || sorted[i].len != sorted[i - 1].len ||
            memcmp(sorted[i].s, sorted[i - 1].s, sorted[i].len) != 0)
            first[sorted[i].index] = sorted[i].index;
        else
            first[sorted[i].index] = first[sorted[i - 1].index];
    }
    uint32_t next = 0;
    for (size_t i = 0; i < n; i++) {
        if (first[i] == i)
            code_of_first[i] = next++;
        codes[i] = code_of_first[first[i]];
    }
    *distinct = next;
    free(sorted);
    free(first);
    free(code_of_first);
    return codes;
}

/* Random strings of several families that stress hashing and comparison. */
static ref_str *make_inputs(size_t n, size_t distinct_target)
{
    ref_str *in = calloc(n, sizeof *in);
    assert_non_null(in);
    const char *prefix = "a_rather_long_shared_prefix_of_forty_bytes__";
    for (size_t i = 0; i < n; i++) {
        char buf[256];
        size_t len = 0;
        uint64_t v = rng() % distinct_target;
        switch (rng() % 6) {
        case 0: /* shared prefix, number suffix */
            len = (size_t)snprintf(buf, sizeof buf, "%s%llu", prefix,
                                   (unsigned long long)v);
            break;
        case 1: /* short numbers: many tiny strings */
            len = (size_t)snprintf(buf, sizeof buf, "%llu",
                                   (unsigned long long)(v % 1000));
            break;
        case 2: /* the empty string */ len = 0; break;
        case 3: /* embedded NUL bytes: "x\0<v>" differs from "x" */
            buf[0] = 'x';
            buf[1] = '\0';
            len = 2 + (size_t)snprintf(buf + 2, sizeof buf - 2, "%llu",
                                       (unsigned long long)(v % 50));
            if (v % 7 == 0)
                len = 1 + (v % 2); /* "x" and "x\0" */
            break;
        case 4: /* same bytes, different lengths: runs of 'z' */
            len = (size_t)(v % 200);
            memset(buf, 'z', len);
            break;
        default: /* binary noise of random length, few distinct seeds */
            len = (size_t)(v % 40);
            for (size_t k = 0; k < len; k++)
                buf[k] = (char)((v * 31 + k * 17) & 0xff);
            break;
        }
        in[i].s = malloc(len + 1);
        assert_non_null(in[i].s);
        memcpy(in[i].s, buf, len);
        in[i].s[len] = '\0';
        in[i].len = len;
        in[i].index = i;
    }
    return in;
}

static void check_against_reference(size_t n, size_t distinct_target,
                                    uint64_t seed)
{
    rng_state = seed;
    ref_str *in = make_inputs(n, distinct_target);
    uint32_t distinct;
    uint32_t *want = reference_codes(in, n, &distinct);

    long before = mem_outstanding();
    dqo_dict *d = dict_create();
    assert_non_null(d);
    for (size_t i = 0; i < n; i++) {
        uint32_t code = UINT32_MAX;
        assert_int_equal(dict_intern(d, in[i].s, in[i].len, &code), DQO_OK);
        if (code != want[i])
            fail_msg("input %zu: code %u, reference %u", i, code, want[i]);
    }
    assert_int_equal(dict_size(d), distinct);
    /* Interning again finds every string without adding any. */
    for (size_t i = 0; i < n; i++) {
        uint32_t code;
        assert_int_equal(dict_intern(d, in[i].s, in[i].len, &code), DQO_OK);
        assert_int_equal(code, want[i]);
        const char *text = dict_get(d, code);
        assert_non_null(text);
        /* Text up to the first NUL, then a terminator. */
        assert_memory_equal(text, in[i].s, in[i].len);
        assert_int_equal(text[in[i].len], '\0');
    }
    assert_int_equal(dict_size(d), distinct);
    assert_null(dict_get(d, distinct));
    /* A few dozen arena blocks and table rebuilds, never one per string. */
    assert_true(mem_outstanding() - before < 64);
    dict_destroy(d);
    assert_int_equal(mem_outstanding(), before);

    for (size_t i = 0; i < n; i++)
        free(in[i].s);
    free(in);
    free(want);
}

static void test_small_random(void **state)
{
    (void)state;
    check_against_reference(2000, 300, 1);
    check_against_reference(5000, 5000, 2);
}

static void test_large_random(void **state)
{
    (void)state;
    /* About 1e5 distinct strings among 2e5 inputs. */
    check_against_reference(200000, 150000, 42);
}

static void test_edge_cases(void **state)
{
    (void)state;
    dqo_dict *d = dict_create();
    assert_non_null(d);
    assert_int_equal(dict_size(d), 0);
    assert_null(dict_get(d, 0));
    uint32_t c;
    assert_int_equal(dict_intern(d, NULL, 0, &c), DQO_OK);
    assert_int_equal(c, 0);
    assert_string_equal(dict_get(d, 0), "");
    assert_int_equal(dict_intern(d, "", 0, &c), DQO_OK);
    assert_int_equal(c, 0);
    assert_int_equal(dict_intern(d, "\0", 1, &c), DQO_OK);
    assert_int_equal(c, 1);
    /* Embedded NUL: get() returns the text up to it. */
    assert_int_equal(dict_intern(d, "ab\0cd", 5, &c), DQO_OK);
    assert_int_equal(c, 2);
    assert_string_equal(dict_get(d, 2), "ab");
    assert_int_equal(dict_intern(d, "ab", 2, &c), DQO_OK);
    assert_int_equal(c, 3);
    /* Only the given bytes count, not what follows them. */
    assert_int_equal(dict_intern(d, "abXYZ", 2, &c), DQO_OK);
    assert_int_equal(c, 3);

    /* Strings longer than an arena block get blocks of their own and the
     * current block keeps filling. */
    size_t big = (size_t)5 << 20;
    char *s = malloc(big);
    assert_non_null(s);
    memset(s, 'q', big);
    assert_int_equal(dict_intern(d, s, big, &c), DQO_OK);
    assert_int_equal(c, 4);
    s[big - 1] = 'r';
    assert_int_equal(dict_intern(d, s, big, &c), DQO_OK);
    assert_int_equal(c, 5);
    assert_int_equal(dict_intern(d, "after", 5, &c), DQO_OK);
    assert_int_equal(c, 6);
    assert_int_equal(strlen(dict_get(d, 5)), big);
    assert_int_equal(dict_get(d, 5)[big - 1], 'r');
    assert_string_equal(dict_get(d, 6), "after");
    assert_string_equal(dict_get(d, 3), "ab");
    free(s);

    assert_int_equal(dict_intern(NULL, "a", 1, &c), DQO_EINVAL);
    assert_int_equal(dict_intern(d, NULL, 1, &c), DQO_EINVAL);
    assert_int_equal(dict_intern(d, "a", 1, NULL), DQO_EINVAL);
    assert_null(dict_get(NULL, 0));
    assert_int_equal(dict_size(NULL), 0);
    dict_destroy(d);
    dict_destroy(NULL);
}

/* Every allocation of a growing dictionary fails once; the failed call
 * reports DQO_ENOMEM and the dictionary stays as it was. */
static void test_alloc_failures(void **state)
{
    (void)state;
    long before = mem_outstanding();
    for (long n = 1; n < 200; n++) {
        mem_fail_after(n);
        dqo_dict *d = dict_create();
        if (d == NULL) {
            mem_fail_after(0);
            assert_int_equal(mem_outstanding(), before);
            continue;
        }
        uint32_t i = 0;
        bool fired = false;
        while (i < 3000) {
            char buf[32];
            int len = snprintf(buf, sizeof buf, "key%u", i);
            uint32_t code;
            dqo_status st = dict_intern(d, buf, (size_t)len, &code);
            if (st == DQO_ENOMEM) {
                fired = true;
                /* Nothing was added: the next attempt succeeds. */
                assert_int_equal(dict_size(d), i);
                continue;
            }
            assert_int_equal(st, DQO_OK);
            assert_int_equal(code, i);
            i++;
        }
        mem_fail_after(0);
        for (uint32_t k = 0; k < 3000; k++) {
            char buf[32];
            snprintf(buf, sizeof buf, "key%u", k);
            assert_string_equal(dict_get(d, k), buf);
        }
        dict_destroy(d);
        assert_int_equal(mem_outstanding(), before);
        if (!fired)
            break;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_small_random),
        cmocka_unit_test(test_large_random),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
