/*
 * test_mav.c - the MAV cache (planner/mav.c): store, lookup and hit counts,
 * persistence across open and close, replacement of a key, rejection of
 * keys and values the line format cannot hold, corrupt files (bad header,
 * count or checksum, every truncation, random bytes) that must give an
 * empty cache with a warning and then a clean rewrite, clear, the in-memory
 * cache, an unwritable path, a hand-written file checked against an
 * independent FNV-1a, and a seeded random sequence of operations compared
 * with a naive reference.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "planner/mav.h"

/* Each test gets its own directory, removed with what it holds. */
typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/dqo_test_mav.XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/mav.txt", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", f->path);
    remove(f->path);
    remove(tmp);
    rmdir(f->dir);
    free(f);
    return 0;
}

static mav_cache *open_ok(const char *path)
{
    char warn[512];
    mav_cache *m = mav_open(path, warn, sizeof warn);
    assert_non_null(m);
    if (warn[0] != '\0')
        fail_msg("unexpected warning: %s", warn);
    return m;
}

/* Reads a whole file; NULL when it does not exist. Caller frees. */
static char *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    char *buf = malloc(1 << 16);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 16) - 1, fp);
    buf[*len] = '\0';
    fclose(fp);
    return buf;
}

static void write_all(const char *path, const char *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static void test_store_lookup_hits(void **state)
{
    fixture *f = *state;
    mav_cache *m = open_ok(f->path);
    assert_int_equal(mav_count(m), 0);
    assert_string_equal(mav_path(m), f->path);
    char v[MAV_VALUE_MAX];
    assert_false(mav_lookup(m, "a", v, sizeof v));
    assert_int_equal(mav_store(m, "a", "plan-a"), DQO_OK);
    assert_int_equal(mav_store(m, "b", "plan-b"), DQO_OK);
    assert_true(mav_lookup(m, "a", v, sizeof v));
    assert_string_equal(v, "plan-a");
    assert_true(mav_lookup(m, "a", v, sizeof v));
    assert_true(mav_lookup(m, "b", v, sizeof v));
    assert_string_equal(v, "plan-b");
    assert_false(mav_lookup(m, "c", v, sizeof v));
    /* A short buffer gets a truncated, terminated copy. */
    char small[4];
    assert_true(mav_lookup(m, "a", small, sizeof small));
    assert_string_equal(small, "pla");
    assert_int_equal(mav_count(m), 2);
    assert_string_equal(mav_get(m, 0)->key, "a");
    assert_int_equal(mav_get(m, 0)->hits, 3);
    assert_string_equal(mav_get(m, 1)->key, "b");
    assert_int_equal(mav_get(m, 1)->hits, 1);
    assert_null(mav_get(m, 2));
    assert_null(mav_get(m, -1));
    int64_t now = (int64_t)time(NULL);
    assert_true(mav_get(m, 0)->created <= now &&
                mav_get(m, 0)->created >= now - 60);
    mav_close(m);
}

static void test_persistence(void **state)
{
    fixture *f = *state;
    mav_cache *m = open_ok(f->path);
    assert_int_equal(mav_store(m, "shape|dense|cpu|paper|dqo", "sphg@cpu"),
                     DQO_OK);
    assert_int_equal(mav_store(m, "k2", ""), DQO_OK); /* empty value ok */
    char v[64];
    assert_true(mav_lookup(m, "k2", v, sizeof v));
    assert_string_equal(v, "");
    int64_t created = mav_get(m, 0)->created;
    mav_close(m); /* the hit was never flushed: it is lost */
    m = open_ok(f->path);
    assert_int_equal(mav_count(m), 2);
    assert_string_equal(mav_get(m, 0)->key, "shape|dense|cpu|paper|dqo");
    assert_string_equal(mav_get(m, 0)->value, "sphg@cpu");
    assert_int_equal(mav_get(m, 0)->created, created);
    assert_int_equal(mav_get(m, 1)->hits, 0);
    assert_true(mav_lookup(m, "k2", v, sizeof v));
    assert_true(mav_lookup(m, "k2", v, sizeof v));
    assert_int_equal(mav_flush(m), DQO_OK);
    mav_close(m);
    m = open_ok(f->path);
    assert_int_equal(mav_get(m, 1)->hits, 2);
    assert_int_equal(mav_flush(m), DQO_OK); /* nothing changed: no write */
    mav_close(m);
}

static void test_replace(void **state)
{
    fixture *f = *state;
    mav_cache *m = open_ok(f->path);
    assert_int_equal(mav_store(m, "a", "v1"), DQO_OK);
    assert_int_equal(mav_store(m, "b", "w"), DQO_OK);
    char v[64];
    assert_true(mav_lookup(m, "a", v, sizeof v));
    assert_int_equal(mav_store(m, "a", "v2"), DQO_OK);
    assert_int_equal(mav_count(m), 2);
    assert_string_equal(mav_get(m, 0)->key, "a"); /* keeps its place */
    assert_string_equal(mav_get(m, 0)->value, "v2");
    assert_int_equal(mav_get(m, 0)->hits, 0);
    mav_close(m);
    m = open_ok(f->path);
    assert_int_equal(mav_count(m), 2);
    assert_true(mav_lookup(m, "a", v, sizeof v));
    assert_string_equal(v, "v2");
    mav_close(m);
}

static void test_reject(void **state)
{
    fixture *f = *state;
    mav_cache *m = open_ok(f->path);
    char key[MAV_KEY_MAX + 1], val[MAV_VALUE_MAX + 1];
    memset(key, 'k', MAV_KEY_MAX);
    key[MAV_KEY_MAX] = '\0';
    memset(val, 'v', MAV_VALUE_MAX);
    val[MAV_VALUE_MAX] = '\0';
    assert_int_equal(mav_store(m, key, "x"), DQO_EINVAL); /* 256 */
    assert_int_equal(mav_store(m, "x", val), DQO_EINVAL); /* 512 */
    assert_int_equal(mav_store(m, "a\tb", "x"), DQO_EINVAL);
    assert_int_equal(mav_store(m, "a\nb", "x"), DQO_EINVAL);
    assert_int_equal(mav_store(m, "a\rb", "x"), DQO_EINVAL);
    assert_int_equal(mav_store(m, "a", "x\ty"), DQO_EINVAL);
    assert_int_equal(mav_store(m, "a", "x\ny"), DQO_EINVAL);
    assert_int_equal(mav_store(m, "", "x"), DQO_EINVAL);
    assert_int_equal(mav_store(m, NULL, "x"), DQO_EINVAL);
    assert_int_equal(mav_store(m, "a", NULL), DQO_EINVAL);
    assert_int_equal(mav_store(NULL, "a", "x"), DQO_EINVAL);
    assert_int_equal(mav_count(m), 0);
    FILE *fp = fopen(f->path, "rb");
    assert_null(fp); /* nothing was written */
    /* One byte less fits, and survives a reopen. */
    key[MAV_KEY_MAX - 1] = '\0';
    val[MAV_VALUE_MAX - 1] = '\0';
    assert_int_equal(mav_store(m, key, val), DQO_OK);
    mav_close(m);
    m = open_ok(f->path);
    assert_int_equal(mav_count(m), 1);
    assert_string_equal(mav_get(m, 0)->key, key);
    assert_string_equal(mav_get(m, 0)->value, val);
    mav_close(m);
}

/* FNV-1a 64, written again here so that the test does not trust mav.c's. */
static uint64_t ref_fnv(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static void test_hand_written(void **state)
{
    fixture *f = *state;
    const char *e1 = "entry 5 1700000000 k1\tv1\n";
    const char *e2 = "entry 0 -3 key two\tvalue two | x\n";
    char both[128], file[512];
    snprintf(both, sizeof both, "%s%s", e1, e2);
    snprintf(file, sizeof file, "dqo-mav 1\n%send 2 %016llx\n", both,
             (unsigned long long)ref_fnv(both));
    write_all(f->path, file, strlen(file));
    mav_cache *m = open_ok(f->path);
    assert_int_equal(mav_count(m), 2);
    assert_int_equal(mav_get(m, 0)->hits, 5);
    assert_int_equal(mav_get(m, 0)->created, 1700000000);
    assert_int_equal(mav_get(m, 1)->created, -3);
    assert_string_equal(mav_get(m, 1)->key, "key two");
    assert_string_equal(mav_get(m, 1)->value, "value two | x");
    /* A flush of an unchanged cache leaves the file byte for byte. */
    assert_int_equal(mav_flush(m), DQO_OK);
    char v[64];
    assert_true(mav_lookup(m, "k1", v, sizeof v));
    assert_int_equal(mav_flush(m), DQO_OK);
    mav_close(m);
    size_t len;
    char *text = read_all(f->path, &len);
    assert_non_null(text);
    snprintf(both, sizeof both, "entry 6 1700000000 k1\tv1\n%s", e2);
    snprintf(file, sizeof file, "dqo-mav 1\n%send 2 %016llx\n", both,
             (unsigned long long)ref_fnv(both));
    assert_string_equal(text, file);
    free(text);
}

/* Writes `bad`, expects an empty cache with a warning, then a store that
 * rewrites a clean file holding just the new entry. */
static void expect_corrupt(const char *path, const char *bad, size_t len,
                           const char *what)
{
    write_all(path, bad, len);
    char warn[512];
    mav_cache *m = mav_open(path, warn, sizeof warn);
    assert_non_null(m);
    if (mav_count(m) != 0 || strstr(warn, "corrupt") == NULL)
        fail_msg("%s: count %d, warning '%s'", what, mav_count(m), warn);
    assert_non_null(strstr(warn, path));
    char v[16];
    assert_false(mav_lookup(m, "a", v, sizeof v));
    assert_int_equal(mav_store(m, "fresh", "plan"), DQO_OK);
    mav_close(m);
    m = open_ok(path);
    assert_int_equal(mav_count(m), 1);
    assert_string_equal(mav_get(m, 0)->key, "fresh");
    mav_close(m);
}

static void test_corrupt(void **state)
{
    fixture *f = *state;
    mav_cache *m = open_ok(f->path);
    assert_int_equal(mav_store(m, "a", "plan-a"), DQO_OK);
    assert_int_equal(mav_store(m, "b", "plan-b"), DQO_OK);
    assert_int_equal(mav_store(m, "c", "plan-c"), DQO_OK);
    mav_close(m);
    size_t len = 0;
    char *good = read_all(f->path, &len);
    assert_non_null(good);
    char *bad = malloc(len + 64);
    assert_non_null(bad);

    memcpy(bad, good, len);
    bad[8] = '2'; /* "dqo-mav 2": another format version */
    expect_corrupt(f->path, bad, len, "version 2");
    memcpy(bad, good, len);
    bad[0] = 'D';
    expect_corrupt(f->path, bad, len, "bad header");

    /* The count: find "end 3 " and say 2, then 4. */
    char *end = strstr(good, "end 3 ");
    assert_non_null(end);
    size_t at = (size_t)(end - good) + 4;
    memcpy(bad, good, len);
    bad[at] = '2';
    expect_corrupt(f->path, bad, len, "count 2");
    bad[at] = '4';
    expect_corrupt(f->path, bad, len, "count 4");

    /* The checksum: change its last digit; then change an entry byte. */
    memcpy(bad, good, len);
    bad[len - 2] = bad[len - 2] == '0' ? '1' : '0';
    expect_corrupt(f->path, bad, len, "checksum");
    memcpy(bad, good, len);
    char *val = strstr(bad, "plan-b");
    val[5] = 'x';
    expect_corrupt(f->path, bad, len, "edited value");
    memcpy(bad, good, len);
    memcpy(bad + len - 1, "\nentry 0 0 z\tz\n", 15);
    expect_corrupt(f->path, bad, len + 14, "a line after end");
    memcpy(bad, good, len);
    bad[len - 1] = 'x'; /* the end line has no newline */
    expect_corrupt(f->path, bad, len, "end without newline");
    memcpy(bad, good, len);
    bad[12] = '\0';
    expect_corrupt(f->path, bad, len, "a NUL byte");

    /* Every truncation, the empty file included. */
    for (size_t cut = 0; cut < len; cut++) {
        char what[48];
        snprintf(what, sizeof what, "truncated at %zu", cut);
        expect_corrupt(f->path, good, cut, what);
    }
    free(bad);
    free(good);

    /* Random bytes, seeded; and random bytes after a valid header. */
    srand(12345);
    for (int t = 0; t < 50; t++) {
        char junk[300];
        size_t n = 1 + (size_t)rand() % sizeof junk;
        for (size_t i = 0; i < n; i++)
            junk[i] = (char)(rand() & 0xFF);
        if (t % 2 == 1 && n > 10)
            memcpy(junk, "dqo-mav 1\n", 10);
        expect_corrupt(f->path, junk, n, "random bytes");
    }
}

static void test_clear(void **state)
{
    fixture *f = *state;
    mav_cache *m = open_ok(f->path);
    assert_int_equal(mav_clear(m), DQO_OK); /* no file yet: fine */
    assert_int_equal(mav_store(m, "a", "x"), DQO_OK);
    assert_int_equal(mav_store(m, "b", "y"), DQO_OK);
    FILE *fp = fopen(f->path, "rb");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(mav_clear(m), DQO_OK);
    assert_int_equal(mav_count(m), 0);
    fp = fopen(f->path, "rb");
    assert_null(fp);
    char v[8];
    assert_false(mav_lookup(m, "a", v, sizeof v));
    assert_int_equal(mav_flush(m), DQO_OK);
    mav_close(m);
    m = open_ok(f->path);
    assert_int_equal(mav_count(m), 0);
    mav_close(m);
    assert_int_equal(mav_clear(NULL), DQO_EINVAL);
}

static void test_in_memory(void **state)
{
    (void)state;
    char warn[64] = "junk";
    mav_cache *m = mav_open(NULL, warn, sizeof warn);
    assert_non_null(m);
    assert_string_equal(warn, "");
    assert_string_equal(mav_path(m), "");
    assert_int_equal(mav_store(m, "a", "x"), DQO_OK);
    char v[8];
    assert_true(mav_lookup(m, "a", v, sizeof v));
    assert_string_equal(v, "x");
    assert_int_equal(mav_flush(m), DQO_OK);
    assert_int_equal(mav_get(m, 0)->hits, 1);
    assert_int_equal(mav_clear(m), DQO_OK);
    assert_int_equal(mav_count(m), 0);
    mav_close(m);
    mav_close(NULL);
    assert_int_equal(mav_count(NULL), 0);
    assert_string_equal(mav_path(NULL), "");
    assert_false(mav_lookup(NULL, "a", v, sizeof v));
}

static void test_unwritable(void **state)
{
    fixture *f = *state;
    /* A path under a regular file: no one, root included, can write it. */
    char path[200];
    write_all(f->path, "x", 1);
    snprintf(path, sizeof path, "%s/sub/mav.txt", f->path);
    char warn[256];
    mav_cache *m = mav_open(path, warn, sizeof warn);
    assert_non_null(m);
    assert_int_equal(mav_count(m), 0);
    assert_int_equal(mav_store(m, "a", "x"), DQO_EIO);
    char v[8];
    assert_true(mav_lookup(m, "a", v, sizeof v));
    assert_string_equal(v, "x");
    assert_int_equal(mav_count(m), 1);
    assert_int_equal(mav_flush(m), DQO_EIO);
    mav_close(m);
}

/* A seeded random walk of stores, lookups, flushes, reopens and clears,
 * checked after every step against arrays that model the contract. */
static void test_random_vs_reference(void **state)
{
    fixture *f = *state;
    enum { NKEYS = 12, STEPS = 600 };
    char ref_val[NKEYS][32];
    uint64_t ref_hits[NKEYS], disk_hits[NKEYS];
    int present[NKEYS], on_disk[NKEYS];
    memset(present, 0, sizeof present);
    memset(on_disk, 0, sizeof on_disk);
    mav_cache *m = open_ok(f->path);
    srand(777);
    for (int step = 0; step < STEPS; step++) {
        int k = rand() % NKEYS, op = rand() % 20;
        char key[16], v[32];
        snprintf(key, sizeof key, "key%d", k);
        if (op < 6) {
            snprintf(ref_val[k], sizeof ref_val[k], "v%d", rand() % 1000);
            assert_int_equal(mav_store(m, key, ref_val[k]), DQO_OK);
            present[k] = 1;
            ref_hits[k] = 0;
            /* A store writes everything, pending hits included. */
            memcpy(on_disk, present, sizeof on_disk);
            memcpy(disk_hits, ref_hits, sizeof disk_hits);
        } else if (op < 16) {
            bool hit = mav_lookup(m, key, v, sizeof v);
            assert_int_equal(hit, present[k]);
            if (hit) {
                assert_string_equal(v, ref_val[k]);
                ref_hits[k]++;
            }
        } else if (op < 18) {
            assert_int_equal(mav_flush(m), DQO_OK);
            memcpy(disk_hits, ref_hits, sizeof disk_hits);
        } else if (op < 19) {
            mav_close(m); /* unflushed hits are lost */
            m = open_ok(f->path);
            memcpy(present, on_disk, sizeof present);
            memcpy(ref_hits, disk_hits, sizeof ref_hits);
        } else {
            assert_int_equal(mav_clear(m), DQO_OK);
            memset(present, 0, sizeof present);
            memset(on_disk, 0, sizeof on_disk);
        }
        int n = 0;
        for (int i = 0; i < NKEYS; i++)
            n += present[i];
        assert_int_equal(mav_count(m), n);
        for (int i = 0; i < mav_count(m); i++) {
            const mav_entry *e = mav_get(m, i);
            int ki = atoi(e->key + 3);
            assert_true(present[ki]);
            assert_string_equal(e->value, ref_val[ki]);
            assert_int_equal(e->hits, ref_hits[ki]);
        }
    }
    mav_close(m);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_store_lookup_hits),
        T(test_persistence),
        T(test_replace),
        T(test_reject),
        T(test_hand_written),
        T(test_corrupt),
        T(test_clear),
        T(test_in_memory),
        T(test_unwritable),
        T(test_random_vs_reference),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
