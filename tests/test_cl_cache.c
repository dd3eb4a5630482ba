/*
 * test_cl_cache.c - the binary cache of compiled OpenCL programs on disk
 * (opencl/progcache.c): where it lives, the key, a store then a load that
 * gives a program whose kernel runs and computes the right thing, files
 * that fail a check (a flipped byte, truncation, a wrong magic or version,
 * trailing bytes, a binary the driver rejects) loading as a miss and being
 * removed, the cache disabled by DQO_CL_CACHE="", a directory that cannot
 * be made, failed host allocations, and leak checks of host memory and
 * OpenCL objects after each. The cache must never make a checked call.
 *
 * The device is put together by hand (ocl_device_at, a context and a queue)
 * rather than opened with ocl_dev_get. Every test works in a temporary
 * directory under /tmp that DQO_CL_CACHE points at. With no OpenCL platform
 * at all, the device tests skip with a message.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "opencl/ocl_group.h"

static int ndev = -1;
static ocl_dev dev;    /* cl:0, by hand (index, id, info, platform, ctx, q) */
static char root[256]; /* the temporary directory of the whole run */

/* The test kernel and its build options. */
static const char kSrc[] =
    "__kernel void twice(__global const int *in, __global int *out)\n"
    "{\n"
    "    size_t i = get_global_id(0);\n"
    "    out[i] = in[i] * 2;\n"
    "}\n";
#define OPTS OCL_BUILD_OPTIONS

/* ------------------------------------------------------------- helpers */

/* rm -rf `path` (files and directories only; the tests make nothing
 * else). */
static void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        /* Removing a read-only directory's entries needs write access. */
        (void)chmod(path, 0700);
        DIR *dir = opendir(path);
        if (dir != NULL) {
            struct dirent *ent;
            while ((ent = readdir(dir)) != NULL) {
                if (strcmp(ent->d_name, ".") == 0 ||
                    strcmp(ent->d_name, "..") == 0)
                    continue;
                char sub[1024];
                snprintf(sub, sizeof sub, "%s/%s", path, ent->d_name);
                rm_rf(sub);
            }
            closedir(dir);
        }
        (void)rmdir(path);
    } else {
        (void)unlink(path);
    }
}

/* Entries of directory `path` other than . and .. (-1: none such). */
static int count_entries(const char *path)
{
    DIR *dir = opendir(path);
    if (dir == NULL)
        return -1;
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(dir)) != NULL)
        if (strcmp(ent->d_name, ".") != 0 && strcmp(ent->d_name, "..") != 0)
            n++;
    closedir(dir);
    return n;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A fresh (not yet existing) directory under root, named `name`, made the
 * cache directory. */
static void use_dir(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", root, name);
    rm_rf(out);
    assert_int_equal(setenv("DQO_CL_CACHE", out, 1), 0);
}

static void file_path(const char *dir, const char *key, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s.bin", dir, key);
}

/* The whole file at `path` (malloc; the caller frees) and its size. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    const long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    unsigned char *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* FNV-1a, the file format's checksum. */
static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* The test kernel compiled from source (counted; ocl_release_program). */
static cl_program build_twice(const char *options)
{
    char msg[4096];
    ocl_err e = ocl_err_init(msg, sizeof msg);
    cl_program p = ocl_build_source(dev.ctx, dev.id, "twice", kSrc,
                                    sizeof kSrc - 1, options, &e);
    if (p == NULL)
        print_error("build: %s\n", msg);
    assert_non_null(p);
    return p;
}

/* Runs kernel `twice` of `p` over 1000 ints and checks out = 2 * in. */
static void run_twice(cl_program p)
{
    enum { N = 1000 };
    int in[N], out[N];
    for (int i = 0; i < N; i++) {
        in[i] = i * 7 - 3000;
        out[i] = 0;
    }
    char msg[512];
    ocl_err e = ocl_err_init(msg, sizeof msg);
    cl_kernel k = OCL_MAKE(&e, clCreateKernel, p, "twice");
    cl_mem a = OCL_MAKE(&e, clCreateBuffer, dev.ctx,
                        CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof in, in);
    cl_mem b = OCL_MAKE(&e, clCreateBuffer, dev.ctx, CL_MEM_WRITE_ONLY,
                        sizeof out, NULL);
    const size_t global = N;
    const bool ok = k != NULL && a != NULL && b != NULL &&
                    OCL_CALL(&e, clSetKernelArg, k, 0, sizeof a, &a) &&
                    OCL_CALL(&e, clSetKernelArg, k, 1, sizeof b, &b) &&
                    OCL_CALL(&e, clEnqueueNDRangeKernel, dev.q, k, 1, NULL,
                             &global, NULL, 0, NULL, NULL) &&
                    OCL_CALL(&e, clEnqueueReadBuffer, dev.q, b, CL_TRUE, 0,
                             sizeof out, out, 0, NULL, NULL);
    if (!ok)
        print_error("running twice: %s\n", msg);
    ocl_release_mem(b);
    ocl_release_mem(a);
    ocl_release_kernel(k);
    assert_true(ok);
    for (int i = 0; i < N; i++)
        assert_int_equal(out[i], 2 * in[i]);
}

#define NEED_DEVICE()                                                          \
    do {                                                                       \
        if (ndev <= 0) {                                                       \
            print_message("[  SKIP    ] no OpenCL device\n");                  \
            skip();                                                            \
        }                                                                      \
    } while (0)

/* --------------------------------------------------------------- setup */

static int group_setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/dqo-cl-cache-XXXXXX");
    if (mkdtemp(root) == NULL) {
        print_error("mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    char err[512];
    ndev = ocl_probe(NULL, 0, err, sizeof err);
    if (ndev < 0) {
        print_error("ocl_probe failed: %s\n", err);
        return -1;
    }
    if (ndev == 0) {
        print_message("[  SKIP    ] no OpenCL platform or device found "
                      "(install an ICD such as PoCL: pocl-opencl-icd); the "
                      "device tests skip\n");
        return 0;
    }
    ocl_err e = ocl_err_init(err, sizeof err);
    memset(&dev, 0, sizeof dev);
    dev.index = 0;
    if (ocl_device_at(0, &dev.id, &dev.info, &e) != DQO_OK ||
        !OCL_CALL(&e, clGetDeviceInfo, dev.id, CL_DEVICE_PLATFORM,
                  sizeof dev.platform, &dev.platform, NULL) ||
        (dev.ctx = OCL_MAKE(&e, clCreateContext, NULL, 1, &dev.id, NULL,
                            NULL)) == NULL ||
        (dev.q = OCL_MAKE(&e, clCreateCommandQueue, dev.ctx, dev.id, 0)) ==
            NULL) {
        print_error("opening cl:0: %s\n", err);
        return -1;
    }
    print_message("device cl:0: %s (%s), %s\n", dev.info.name, dev.info.driver,
                  dev.info.version);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    ocl_release_queue(dev.q);
    ocl_release_context(dev.ctx);
    rm_rf(root);
    return 0;
}

/* ----------------------------------------------------------------- tests */

/* Saves and restores the variables that pick the directory. */
typedef struct saved_env {
    char *v[3];
} saved_env;

static const char *const env_names[3] = {"DQO_CL_CACHE", "XDG_CACHE_HOME",
                                         "HOME"};

static saved_env save_env(void)
{
    saved_env s;
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(env_names[i]);
        s.v[i] = v != NULL ? strdup(v) : NULL;
    }
    return s;
}

static void restore_env(saved_env *s)
{
    for (int i = 0; i < 3; i++) {
        if (s->v[i] != NULL)
            setenv(env_names[i], s->v[i], 1);
        else
            unsetenv(env_names[i]);
        free(s->v[i]);
    }
}

static void test_dir(void **state)
{
    (void)state;
    saved_env saved = save_env();
    char buf[256];

    setenv("DQO_CL_CACHE", "/some/where", 1);
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    setenv("HOME", "/home/u", 1);
    assert_ptr_equal(ocl_cache_dir(buf, sizeof buf), buf);
    assert_string_equal(buf, "/some/where");
    /* Set but empty: disabled, whatever else is set. */
    setenv("DQO_CL_CACHE", "", 1);
    assert_string_equal(ocl_cache_dir(buf, sizeof buf), "");

    unsetenv("DQO_CL_CACHE");
    assert_string_equal(ocl_cache_dir(buf, sizeof buf), "/xdg/dqo/cl");
    /* A relative XDG_CACHE_HOME is ignored (the XDG spec). */
    setenv("XDG_CACHE_HOME", "relative/cache", 1);
    assert_string_equal(ocl_cache_dir(buf, sizeof buf),
                        "/home/u/.cache/dqo/cl");
    setenv("XDG_CACHE_HOME", "", 1);
    assert_string_equal(ocl_cache_dir(buf, sizeof buf),
                        "/home/u/.cache/dqo/cl");
    unsetenv("XDG_CACHE_HOME");
    assert_string_equal(ocl_cache_dir(buf, sizeof buf),
                        "/home/u/.cache/dqo/cl");
    /* Nowhere to go: disabled. */
    setenv("HOME", "", 1);
    assert_string_equal(ocl_cache_dir(buf, sizeof buf), "");
    unsetenv("HOME");
    assert_string_equal(ocl_cache_dir(buf, sizeof buf), "");

    /* A path that does not fit is no cache, not a truncated one. */
    setenv("DQO_CL_CACHE", "/a/rather/long/cache/directory", 1);
    char small[8];
    memset(small, 'x', sizeof small);
    assert_string_equal(ocl_cache_dir(small, sizeof small), "");
    char exact[31]; /* 30 characters and the NUL fit */
    assert_string_equal(ocl_cache_dir(exact, sizeof exact),
                        "/a/rather/long/cache/directory");
    restore_env(&saved);
}

static bool is_hex_key(const char *k)
{
    if (strlen(k) != 32)
        return false;
    for (int i = 0; i < 32; i++)
        if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f')))
            return false;
    return true;
}

static void test_key(void **state)
{
    (void)state;
    /* A made-up device; the real platform when there is one. */
    ocl_dev d;
    memset(&d, 0, sizeof d);
    snprintf(d.info.name, sizeof d.info.name, "Some GPU");
    snprintf(d.info.vendor, sizeof d.info.vendor, "Some Vendor");
    snprintf(d.info.driver, sizeof d.info.driver, "535.104.05");
    snprintf(d.info.version, sizeof d.info.version, "OpenCL 3.0 CUDA");
    d.platform = ndev > 0 ? dev.platform : NULL;
    const long calls0 = ocl_checked_calls();

    char k0[33], k[33];
    memset(k0, 'X', sizeof k0);
    ocl_cache_key(&d, kSrc, sizeof kSrc - 1, OPTS, k0);
    print_message("key: %s\n", k0);
    assert_true(is_hex_key(k0));
    /* Stable. */
    ocl_cache_key(&d, kSrc, sizeof kSrc - 1, OPTS, k);
    assert_string_equal(k, k0);

    /* The source: one byte changed, one byte fewer. */
    char src2[sizeof kSrc];
    memcpy(src2, kSrc, sizeof kSrc);
    src2[sizeof kSrc - 3] ^= 1;
    ocl_cache_key(&d, src2, sizeof kSrc - 1, OPTS, k);
    assert_string_not_equal(k, k0);
    ocl_cache_key(&d, kSrc, sizeof kSrc - 2, OPTS, k);
    assert_string_not_equal(k, k0);
    /* The options. */
    ocl_cache_key(&d, kSrc, sizeof kSrc - 1, OPTS " -DX=1", k);
    assert_string_not_equal(k, k0);
    ocl_cache_key(&d, kSrc, sizeof kSrc - 1, "", k);
    assert_string_not_equal(k, k0);
    /* No options and empty options build the same program. */
    char kn[33];
    ocl_cache_key(&d, kSrc, sizeof kSrc - 1, NULL, kn);
    assert_string_equal(kn, k);

    /* Every device field. */
    ocl_dev d2 = d;
    snprintf(d2.info.driver, sizeof d2.info.driver, "535.104.06");
    ocl_cache_key(&d2, kSrc, sizeof kSrc - 1, OPTS, k);
    assert_string_not_equal(k, k0);
    d2 = d;
    snprintf(d2.info.name, sizeof d2.info.name, "Some GPU 2");
    ocl_cache_key(&d2, kSrc, sizeof kSrc - 1, OPTS, k);
    assert_string_not_equal(k, k0);
    d2 = d;
    snprintf(d2.info.vendor, sizeof d2.info.vendor, "Other Vendor");
    ocl_cache_key(&d2, kSrc, sizeof kSrc - 1, OPTS, k);
    assert_string_not_equal(k, k0);
    d2 = d;
    snprintf(d2.info.version, sizeof d2.info.version, "OpenCL 1.2 CUDA");
    ocl_cache_key(&d2, kSrc, sizeof kSrc - 1, OPTS, k);
    assert_string_not_equal(k, k0);
    /* Fields that move bytes between them differ: "ab" + "c" is not
     * "a" + "bc", in the device strings and between source and options. */
    d2 = d;
    snprintf(d2.info.name, sizeof d2.info.name, "Some GPUS");
    snprintf(d2.info.vendor, sizeof d2.info.vendor, "ome Vendor");
    ocl_cache_key(&d2, kSrc, sizeof kSrc - 1, OPTS, k);
    assert_string_not_equal(k, k0);
    char ka[33], kb[33];
    ocl_cache_key(&d, "ab", 2, "c", ka);
    ocl_cache_key(&d, "a", 1, "bc", kb);
    assert_string_not_equal(ka, kb);
    /* Bytes after `len` do not count. */
    ocl_cache_key(&d, "abXYZ", 2, "c", kb);
    assert_string_equal(ka, kb);
    /* The key queries nothing through the checked calls. */
    assert_int_equal(ocl_checked_calls(), calls0);
}

static void test_store_load_run(void **state)
{
    (void)state;
    NEED_DEVICE();
    const long mem0 = mem_outstanding(), obj0 = ocl_live_objects();
    char dir[512], path[1024], key[33];
    use_dir("a/b/c", dir, sizeof dir); /* made with mkdir -p */
    ocl_cache_key(&dev, kSrc, sizeof kSrc - 1, OPTS, key);
    file_path(dir, key, path, sizeof path);

    /* Nothing yet: a miss, and no directory made by a load. */
    long calls = ocl_checked_calls();
    assert_null(ocl_cache_load(&dev, key, OPTS));
    assert_false(exists(dir));
    assert_int_equal(ocl_checked_calls(), calls);

    cl_program p = build_twice(OPTS);
    calls = ocl_checked_calls();
    ocl_cache_store(&dev, key, p);
    assert_int_equal(ocl_checked_calls(), calls);
    ocl_release_program(p);
    assert_true(exists(path));
    assert_int_equal(count_entries(dir), 1); /* no temporary left */
    size_t len;
    unsigned char *file = slurp(path, &len);
    assert_memory_equal(file, "DQOCLBIN", 8);
    assert_true(len > 32);
    print_message("cached binary: %zu bytes\n", len - 32);
    free(file);

    /* Load twice: each a program of its own whose kernel runs, the file
     * kept. */
    for (int i = 0; i < 2; i++) {
        calls = ocl_checked_calls();
        cl_program q = ocl_cache_load(&dev, key, OPTS);
        assert_int_equal(ocl_checked_calls(), calls);
        assert_non_null(q);
        assert_true(exists(path));
        run_twice(q);
        ocl_release_program(q);
    }

    /* Storing again replaces the file atomically. */
    p = build_twice(OPTS);
    ocl_cache_store(&dev, key, p);
    ocl_release_program(p);
    assert_int_equal(count_entries(dir), 1);

    /* A malformed key is never a path. */
    assert_null(ocl_cache_load(&dev, "../../etc/passwd", OPTS));
    assert_null(ocl_cache_load(&dev, "0123456789ABCDEF0123456789abcdef", OPTS));
    assert_null(ocl_cache_load(&dev, NULL, OPTS));
    p = build_twice(OPTS);
    ocl_cache_store(&dev, "0123", p);
    ocl_cache_store(&dev, "0123456789abcdef0123456789abcdef0", p);
    ocl_release_program(p);
    assert_int_equal(count_entries(dir), 1);

    rm_rf(dir);
    assert_int_equal(mem_outstanding(), mem0);
    assert_int_equal(ocl_live_objects(), obj0);
}

/* The cache's own calls are never checked calls: they neither count nor
 * consume an injected failure. */
static void test_no_checked_calls(void **state)
{
    (void)state;
    NEED_DEVICE();
    const long mem0 = mem_outstanding(), obj0 = ocl_live_objects();
    char dir[512], key[33];
    use_dir("unchecked", dir, sizeof dir);
    ocl_cache_key(&dev, kSrc, sizeof kSrc - 1, OPTS, key);
    cl_program p = build_twice(OPTS);

    const long calls0 = ocl_checked_calls();
    ocl_fail_after(0); /* the next checked call would fail */
    ocl_cache_store(&dev, key, p);
    cl_program q = ocl_cache_load(&dev, key, OPTS);
    assert_int_equal(ocl_checked_calls(), calls0);
    ocl_fail_after(-1);
    assert_non_null(q);
    run_twice(q);
    ocl_release_program(q);
    ocl_release_program(p);

    rm_rf(dir);
    assert_int_equal(mem_outstanding(), mem0);
    assert_int_equal(ocl_live_objects(), obj0);
}

/* The ways a file can be damaged. */
typedef enum {
    BAD_FLIP_BINARY,   /* one byte of the binary */
    BAD_FLIP_CHECKSUM, /* one byte of the stored checksum */
    BAD_MAGIC,
    BAD_VERSION,
    BAD_HEADER_SIZE,
    BAD_LENGTH, /* the length field one more than the bytes */
    BAD_TRUNCATE_ONE,
    BAD_TRUNCATE_HEADER, /* 10 bytes left */
    BAD_EMPTY,
    BAD_TRAILING, /* a byte after the binary */
    BAD_GARBAGE,  /* a well-formed file whose "binary" the driver rejects */
    BAD_COUNT
} damage;

static const char *const damage_names[BAD_COUNT] = {
    "flipped binary byte", "flipped checksum byte", "wrong magic",
    "wrong version",       "wrong header size",     "wrong length",
    "truncated by a byte", "truncated header",      "empty file",
    "trailing byte",       "garbage binary"};

static void damage_file(const char *path, damage how)
{
    size_t len;
    unsigned char *f = slurp(path, &len);
    assert_true(len > 40);
    switch (how) {
    case BAD_FLIP_BINARY: f[32 + (len - 32) / 2] ^= 0x10; break;
    case BAD_FLIP_CHECKSUM: f[27] ^= 0x01; break;
    case BAD_MAGIC: f[3] = 'X'; break;
    case BAD_VERSION: put_le(f + 8, 2, 4); break;
    case BAD_HEADER_SIZE: put_le(f + 12, 40, 4); break;
    case BAD_LENGTH: put_le(f + 16, len - 32 + 1, 8); break;
    case BAD_TRUNCATE_ONE: len--; break;
    case BAD_TRUNCATE_HEADER: len = 10; break;
    case BAD_EMPTY: len = 0; break;
    case BAD_TRAILING: {
        unsigned char *g = realloc(f, len + 1);
        assert_non_null(g);
        f = g;
        f[len++] = 0;
        break;
    }
    case BAD_GARBAGE: {
        /* A valid header over bytes no driver takes for a program. */
        for (size_t i = 32; i < len; i++)
            f[i] = (unsigned char)(i * 131 + 7);
        put_le(f + 24, fnv1a(f + 32, len - 32), 8);
        break;
    }
    case BAD_COUNT: break;
    }
    spit(path, f, len);
    free(f);
}

static void test_damaged(void **state)
{
    (void)state;
    NEED_DEVICE();
    const long mem0 = mem_outstanding(), obj0 = ocl_live_objects();
    char dir[512], path[1024], key[33];
    use_dir("damaged", dir, sizeof dir);
    ocl_cache_key(&dev, kSrc, sizeof kSrc - 1, OPTS, key);
    file_path(dir, key, path, sizeof path);
    cl_program p = build_twice(OPTS);
    const long calls0 = ocl_checked_calls();
    for (int how = 0; how < BAD_COUNT; how++) {
        ocl_cache_store(&dev, key, p);
        assert_true(exists(path));
        damage_file(path, (damage)how);
        cl_program q = ocl_cache_load(&dev, key, OPTS);
        if (q != NULL)
            print_error("%s loaded\n", damage_names[how]);
        assert_null(q);
        if (exists(path))
            print_error("%s not removed\n", damage_names[how]);
        assert_false(exists(path));
        /* Still a miss afterwards. */
        assert_null(ocl_cache_load(&dev, key, OPTS));
        assert_int_equal(mem_outstanding(), mem0);
        assert_int_equal(ocl_live_objects(), obj0 + 1);
    }
    assert_int_equal(ocl_checked_calls(), calls0);
    /* And a good file still loads after all that. */
    ocl_cache_store(&dev, key, p);
    ocl_release_program(p);
    cl_program q = ocl_cache_load(&dev, key, OPTS);
    assert_non_null(q);
    run_twice(q);
    ocl_release_program(q);
    /* A directory where the file should be: a miss, nothing breaks. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_null(ocl_cache_load(&dev, key, OPTS));

    rm_rf(dir);
    assert_int_equal(mem_outstanding(), mem0);
    assert_int_equal(ocl_live_objects(), obj0);
}

static void test_disabled(void **state)
{
    (void)state;
    NEED_DEVICE();
    const long mem0 = mem_outstanding(), obj0 = ocl_live_objects();
    saved_env saved = save_env();
    /* Where the cache would go if DQO_CL_CACHE were unset. */
    char home[512];
    snprintf(home, sizeof home, "%s/home", root);
    rm_rf(home);
    assert_int_equal(mkdir(home, 0755), 0);
    setenv("HOME", home, 1);
    setenv("XDG_CACHE_HOME", home, 1);
    setenv("DQO_CL_CACHE", "", 1);
    char key[33];
    ocl_cache_key(&dev, kSrc, sizeof kSrc - 1, OPTS, key);
    cl_program p = build_twice(OPTS);
    ocl_cache_store(&dev, key, p);
    assert_int_equal(count_entries(home), 0);
    assert_null(ocl_cache_load(&dev, key, OPTS));

    /* With DQO_CL_CACHE unset, the same store lands in XDG_CACHE_HOME. */
    unsetenv("DQO_CL_CACHE");
    ocl_cache_store(&dev, key, p);
    char path[1024];
    snprintf(path, sizeof path, "%s/dqo/cl/%s.bin", home, key);
    assert_true(exists(path));
    cl_program q = ocl_cache_load(&dev, key, OPTS);
    assert_non_null(q);
    ocl_release_program(q);
    ocl_release_program(p);

    restore_env(&saved);
    rm_rf(home);
    assert_int_equal(mem_outstanding(), mem0);
    assert_int_equal(ocl_live_objects(), obj0);
}

static void test_uncreatable(void **state)
{
    (void)state;
    NEED_DEVICE();
    const long mem0 = mem_outstanding(), obj0 = ocl_live_objects();
    /* A regular file in the middle of the path: mkdir fails (ENOTDIR) even
     * for root, who could write anywhere else. */
    char file[512], dir[768], key[33];
    snprintf(file, sizeof file, "%s/plain-file", root);
    spit(file, "x", 1);
    snprintf(dir, sizeof dir, "%s/sub/cl", file);
    assert_int_equal(setenv("DQO_CL_CACHE", dir, 1), 0);
    ocl_cache_key(&dev, kSrc, sizeof kSrc - 1, OPTS, key);
    cl_program p = build_twice(OPTS);
    ocl_cache_store(&dev, key, p);
    assert_null(ocl_cache_load(&dev, key, OPTS));
    /* The cache directory itself a regular file. */
    assert_int_equal(setenv("DQO_CL_CACHE", file, 1), 0);
    ocl_cache_store(&dev, key, p);
    assert_null(ocl_cache_load(&dev, key, OPTS));
    size_t len;
    unsigned char *f = slurp(file, &len);
    assert_int_equal(len, 1);
    free(f);
    /* A read-only directory (root writes there anyway: then it stores). */
    char ro[512];
    snprintf(ro, sizeof ro, "%s/read-only", root);
    rm_rf(ro);
    assert_int_equal(mkdir(ro, 0500), 0);
    assert_int_equal(setenv("DQO_CL_CACHE", ro, 1), 0);
    ocl_cache_store(&dev, key, p);
    if (geteuid() != 0)
        assert_int_equal(count_entries(ro), 0);
    /* A directory name too long for any path. */
    char huge[5000];
    memset(huge, 'd', sizeof huge - 1);
    huge[0] = '/';
    huge[sizeof huge - 1] = '\0';
    assert_int_equal(setenv("DQO_CL_CACHE", huge, 1), 0);
    ocl_cache_store(&dev, key, p);
    assert_null(ocl_cache_load(&dev, key, OPTS));
    ocl_release_program(p);

    rm_rf(ro);
    unlink(file);
    assert_int_equal(mem_outstanding(), mem0);
    assert_int_equal(ocl_live_objects(), obj0);
}

/* Each host allocation of a store, then of a load, failing in turn: a
 * store writes nothing (and leaves no temporary), a load misses and keeps
 * the file; nothing leaks. */
static void test_alloc_failures(void **state)
{
    (void)state;
    NEED_DEVICE();
    const long mem0 = mem_outstanding(), obj0 = ocl_live_objects();
    char dir[512], path[1024], key[33];
    use_dir("alloc", dir, sizeof dir);
    ocl_cache_key(&dev, kSrc, sizeof kSrc - 1, OPTS, key);
    file_path(dir, key, path, sizeof path);
    cl_program p = build_twice(OPTS);
    int failures = 0;
    for (long n = 1; n < 100; n++) {
        mem_fail_after(n);
        ocl_cache_store(&dev, key, p);
        mem_fail_after(0);
        assert_int_equal(mem_outstanding(), mem0);
        if (exists(path))
            break;
        assert_true(count_entries(dir) <= 0);
        failures++;
    }
    print_message("store: %d host allocations failed in turn\n", failures);
    assert_true(failures >= 1);
    assert_int_equal(count_entries(dir), 1);
    failures = 0;
    for (long n = 1; n < 100; n++) {
        mem_fail_after(n);
        cl_program q = ocl_cache_load(&dev, key, OPTS);
        mem_fail_after(0);
        assert_true(exists(path));
        if (q != NULL) {
            run_twice(q);
            ocl_release_program(q);
            break;
        }
        assert_int_equal(mem_outstanding(), mem0);
        assert_int_equal(ocl_live_objects(), obj0 + 1);
        failures++;
    }
    print_message("load: %d host allocations failed in turn\n", failures);
    assert_true(failures >= 1);
    ocl_release_program(p);

    rm_rf(dir);
    assert_int_equal(mem_outstanding(), mem0);
    assert_int_equal(ocl_live_objects(), obj0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dir),
        cmocka_unit_test(test_key),
        cmocka_unit_test(test_store_load_run),
        cmocka_unit_test(test_no_checked_calls),
        cmocka_unit_test(test_damaged),
        cmocka_unit_test(test_disabled),
        cmocka_unit_test(test_uncreatable),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
