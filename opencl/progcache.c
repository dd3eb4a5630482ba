/*
 * progcache.c - the binary cache of compiled OpenCL programs on disk, so
 * that a process compiles each kernel shape once per machine instead of
 * once per run (PoCL and some GPU drivers take seconds per program).
 *
 * Where: $DQO_CL_CACHE ("" disables the cache), else $XDG_CACHE_HOME/dqo/cl
 * (an absolute XDG_CACHE_HOME only, as the XDG spec says), else
 * $HOME/.cache/dqo/cl; neither set also disables it. Directories are made
 * (mkdir -p) when a program is stored.
 *
 * The key of a program is a 128-bit hash (two independent 64-bit lanes of
 * FNV-1a style hashing with different seeds and primes, each finished with
 * an avalanche mix) of the device name, vendor, driver version, device
 * version, platform version, the source text and the build options. Every
 * field is hashed as its length then its bytes, so that no two different
 * field lists hash the same bytes. The file is <dir>/<32 hex digits>.bin:
 *
 *   offset  0  "DQOCLBIN"          magic (8 bytes)
 *           8  format version      uint32, little-endian (1)
 *          12  header size         uint32, little-endian (32)
 *          16  binary length       uint64, little-endian (> 0)
 *          24  checksum            uint64, little-endian: FNV-1a of the
 *                                  binary bytes
 *          32  the binary          (exactly `length` bytes, then EOF)
 *
 * Stores write a temporary file (mkstemp) in the same directory and rename
 * it into place, so a reader sees a whole file or none, also with several
 * processes storing the same key. A load checks every header field and the
 * checksum, then creates and builds the program from the binary; a file
 * that fails any of these is removed and the load answers NULL (a miss).
 *
 * The cache is an optimisation that must never change a query's outcome:
 * it makes raw cl* calls (not the checked OCL_CALL / OCL_MAKE, so it
 * neither consumes the failures that ocl_fail_after injects nor reports
 * errors) and releases every object it made on every path. The program
 * that a load returns is counted with ocl_count_object, so the caller's
 * ocl_release_program balances ocl_live_objects. Host memory comes from
 * mem_alloc; a failed allocation is a miss (the file stays).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "opencl/ocl_group.h"

#define CACHE_MAGIC "DQOCLBIN"
#define CACHE_FORMAT 1u
#define CACHE_HEADER 32u
/* Larger "binaries" are taken for corrupt headers (no real program comes
 * near it; PoCL's are tens of KiB to a few MiB). */
#define CACHE_MAX_BINARY ((uint64_t)1 << 30)
/* Path buffers: the directory plus "/" + key + ".bin" or the temporary
 * name. */
#define CACHE_PATH 4096

/* ----------------------------------------------------------------- hash */

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull
/* The second lane: another seed and another odd multiplier (both from
 * SplitMix64), so the lanes are independent. */
#define LANE2_SEED 0x9e3779b97f4a7c15ull
#define LANE2_PRIME 0xbf58476d1ce4e5b9ull

typedef struct cache_hash {
    uint64_t a, b;
} cache_hash;

static void hash_bytes(cache_hash *h, const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t a = h->a, b = h->b;
    for (size_t i = 0; i < n; i++) {
        a = (a ^ s[i]) * FNV_PRIME;
        b = (b ^ s[i]) * LANE2_PRIME;
        b ^= b >> 29;
    }
    h->a = a;
    h->b = b;
}

/* One field: its length (8 bytes, little-endian), then its bytes. */
static void hash_field(cache_hash *h, const void *p, size_t n)
{
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)((uint64_t)n >> (8 * i));
    hash_bytes(h, len, sizeof len);
    hash_bytes(h, p, n);
}

static void hash_str(cache_hash *h, const char *s)
{
    hash_field(h, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

/* MurmurHash3's 64-bit finaliser: every input bit reaches every output
 * bit. */
static uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

/* FNV-1a of the stored binary (the file's checksum). */
static uint64_t checksum(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * FNV_PRIME;
    return h;
}

/* ------------------------------------------------------------ the paths */

const char *ocl_cache_dir(char *buf, size_t cap)
{
    if (buf == NULL || cap == 0)
        return buf;
    const char *env = getenv("DQO_CL_CACHE");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int w;
    if (env != NULL)
        w = snprintf(buf, cap, "%s", env);
    else if (xdg != NULL && xdg[0] == '/')
        w = snprintf(buf, cap, "%s/dqo/cl", xdg);
    else if (home != NULL && home[0] != '\0')
        w = snprintf(buf, cap, "%s/.cache/dqo/cl", home);
    else
        w = 0;
    /* A path that does not fit is no cache, not a truncated one. */
    if (w <= 0 || (size_t)w >= cap)
        buf[0] = '\0';
    return buf;
}

void ocl_cache_key(const ocl_dev *d, const char *src, size_t len,
                   const char *options, char out[33])
{
    static const char tag[] = "dqo-cl-cache 1";
    char pver[512] = "";
    if (d->platform == NULL ||
        !OCL_TRY(clGetPlatformInfo, d->platform, CL_PLATFORM_VERSION,
                 sizeof pver - 1, pver, NULL))
        pver[0] = '\0';
    pver[sizeof pver - 1] = '\0';

    cache_hash h = {FNV_OFFSET, LANE2_SEED};
    hash_field(&h, tag, sizeof tag - 1);
    hash_str(&h, d->info.name);
    hash_str(&h, d->info.vendor);
    hash_str(&h, d->info.driver);
    hash_str(&h, d->info.version);
    hash_str(&h, pver);
    hash_field(&h, src != NULL ? src : "", src != NULL ? len : 0);
    hash_str(&h, options);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)fmix64(h.a),
             (unsigned long long)fmix64(h.b ^ h.a));
}

/* True for exactly 32 lowercase hex digits (what ocl_cache_key makes): a
 * key never names a path outside the directory. */
static bool valid_key(const char *key)
{
    if (key == NULL)
        return false;
    for (int i = 0; i < 32; i++)
        if (!((key[i] >= '0' && key[i] <= '9') ||
              (key[i] >= 'a' && key[i] <= 'f')))
            return false;
    return key[32] == '\0';
}

/* <dir>/<key>.bin into path; false when the cache is disabled, the key is
 * malformed or the path does not fit. The directory goes into dir. */
static bool cache_path(const char *key, char dir[CACHE_PATH],
                       char path[CACHE_PATH])
{
    if (!valid_key(key) || ocl_cache_dir(dir, CACHE_PATH)[0] == '\0')
        return false;
    const int w = snprintf(path, CACHE_PATH, "%s/%s.bin", dir, key);
    return w > 0 && w < CACHE_PATH;
}

/* mkdir -p `dir`; 0, or -1 (errno set). */
static int make_dirs(const char *dir)
{
    char p[CACHE_PATH];
    const int w = snprintf(p, sizeof p, "%s", dir);
    if (w <= 0 || w >= (int)sizeof p)
        return -1;
    for (char *c = p + 1; *c != '\0'; c++) {
        if (*c != '/')
            continue;
        *c = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return -1;
        *c = '/';
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

/* ------------------------------------------------------------- file I/O */

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Reads exactly n bytes; false on an error or early end of file. */
static bool read_all(int fd, void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        const ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

/* Writes all n bytes; false on an error. */
static bool write_all(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n > 0) {
        const ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

/* Why read_binary gave nothing: no file (or no memory: a miss that keeps
 * the file), or a file that fails a check (to be removed). */
typedef enum { READ_OK, READ_MISS, READ_BAD } read_result;

/* The checked binary of the file at `path` into *bin (mem_alloc) and *len. */
static read_result read_binary(const char *path, unsigned char **bin,
                               size_t *len)
{
    read_result res = READ_BAD;
    unsigned char *buf = NULL;
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return READ_MISS;
    struct stat st;
    unsigned char h[CACHE_HEADER], extra;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        !read_all(fd, h, sizeof h) || memcmp(h, CACHE_MAGIC, 8) != 0 ||
        get_u32(h + 8) != CACHE_FORMAT || get_u32(h + 12) != CACHE_HEADER)
        goto done;
    const uint64_t n = get_u64(h + 16);
    if (n == 0 || n > CACHE_MAX_BINARY ||
        (uint64_t)st.st_size != CACHE_HEADER + n)
        goto done;
    buf = mem_alloc((size_t)n);
    if (buf == NULL) {
        res = READ_MISS;
        goto done;
    }
    /* Exactly n bytes, then the end of the file. */
    if (!read_all(fd, buf, (size_t)n) || read(fd, &extra, 1) != 0 ||
        checksum(buf, (size_t)n) != get_u64(h + 24))
        goto done;
    *bin = buf;
    *len = (size_t)n;
    buf = NULL;
    res = READ_OK;
done:
    mem_free(buf);
    close(fd);
    return res;
}

/* -------------------------------------------------------- load and store */

cl_program ocl_cache_load(ocl_dev *d, const char *key, const char *options)
{
    char dir[CACHE_PATH], path[CACHE_PATH];
    if (d == NULL || !cache_path(key, dir, path))
        return NULL;
    unsigned char *bin = NULL;
    size_t len = 0;
    const read_result r = read_binary(path, &bin, &len);
    if (r != READ_OK) {
        if (r == READ_BAD)
            (void)unlink(path);
        return NULL;
    }
    /* Raw calls: see the top of the file. */
    const unsigned char *bins[1] = {bin};
    cl_int status = CL_SUCCESS, rc = CL_SUCCESS;
    cl_program prog =
        clCreateProgramWithBinary(d->ctx, 1, &d->id, &len, bins, &status, &rc);
    mem_free(bin);
    if (prog != NULL && (rc != CL_SUCCESS || status != CL_SUCCESS)) {
        (void)clReleaseProgram(prog);
        prog = NULL;
    }
    if (prog != NULL &&
        clBuildProgram(prog, 1, &d->id, options != NULL ? options : "", NULL,
                       NULL) != CL_SUCCESS) {
        (void)clReleaseProgram(prog);
        prog = NULL;
    }
    if (prog == NULL) {
        /* Another driver, a damaged binary: compile anew next time. */
        (void)unlink(path);
        return NULL;
    }
    /* The caller releases it with ocl_release_program. */
    ocl_count_object(prog);
    return prog;
}

/* The binary of `p` for device `dev` (mem_alloc) and its length; NULL when
 * the driver has none or a query fails. Raw calls. */
static unsigned char *program_binary(cl_program p, cl_device_id dev,
                                     size_t *len)
{
    cl_uint n = 0;
    cl_device_id *devs = NULL;
    size_t *sizes = NULL;
    unsigned char **ptrs = NULL, *bin = NULL;
    if (clGetProgramInfo(p, CL_PROGRAM_NUM_DEVICES, sizeof n, &n, NULL) !=
            CL_SUCCESS ||
        n == 0)
        goto fail;
    devs = mem_calloc(n, sizeof *devs);
    sizes = mem_calloc(n, sizeof *sizes);
    ptrs = mem_calloc(n, sizeof *ptrs);
    if (devs == NULL || sizes == NULL || ptrs == NULL ||
        clGetProgramInfo(p, CL_PROGRAM_DEVICES, n * sizeof *devs, devs, NULL) !=
            CL_SUCCESS ||
        clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, n * sizeof *sizes, sizes,
                         NULL) != CL_SUCCESS)
        goto fail;
    cl_uint i = 0;
    while (i < n && devs[i] != dev)
        i++;
    if (i == n || sizes[i] == 0 || sizes[i] > CACHE_MAX_BINARY)
        goto fail;
    /* Only this device's entry is non-NULL: the driver skips the others. */
    bin = mem_alloc(sizes[i]);
    if (bin == NULL)
        goto fail;
    ptrs[i] = bin;
    if (clGetProgramInfo(p, CL_PROGRAM_BINARIES, n * sizeof *ptrs, ptrs,
                         NULL) != CL_SUCCESS)
        goto fail;
    *len = sizes[i];
    mem_free(ptrs);
    mem_free(sizes);
    mem_free(devs);
    return bin;
fail:
    mem_free(bin);
    mem_free(ptrs);
    mem_free(sizes);
    mem_free(devs);
    return NULL;
}

void ocl_cache_store(ocl_dev *d, const char *key, cl_program p)
{
    char dir[CACHE_PATH], path[CACHE_PATH], tmp[CACHE_PATH];
    if (d == NULL || p == NULL || !cache_path(key, dir, path))
        return;
    size_t len = 0;
    unsigned char *bin = program_binary(p, d->id, &len);
    if (bin == NULL)
        return;
    unsigned char h[CACHE_HEADER];
    memcpy(h, CACHE_MAGIC, 8);
    put_u32(h + 8, CACHE_FORMAT);
    put_u32(h + 12, CACHE_HEADER);
    put_u64(h + 16, len);
    put_u64(h + 24, checksum(bin, len));

    int fd = -1;
    const int w = snprintf(tmp, sizeof tmp, "%s/.%s.tmpXXXXXX", dir, key);
    if (w <= 0 || w >= (int)sizeof tmp || make_dirs(dir) != 0)
        goto done;
    fd = mkstemp(tmp);
    if (fd < 0)
        goto done;
    bool ok =
        write_all(fd, h, sizeof h) && write_all(fd, bin, len) && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0)
        (void)unlink(tmp);
done:
    mem_free(bin);
}
