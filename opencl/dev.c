/*
 * dev.c - opened OpenCL devices: one context per device with a compute and
 * a transfer queue (both in order; work on one overlaps copies on the
 * other), the memory budget dqo plans with, and the program cache (in
 * memory per device, and on disk through progcache.c).
 *
 * A device is opened on first use and kept, so that programs are built
 * once per process; ocl_dev_trim closes the ones nobody references (the
 * engine calls it when its last context is destroyed).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opencl/ocl_group.h"

#define OCL_MAX_DEVICES 16

static pthread_mutex_t devs_lock = PTHREAD_MUTEX_INITIALIZER;
static ocl_dev *devs[OCL_MAX_DEVICES];
static uint64_t budget_override[OCL_MAX_DEVICES];

/* DQO_CL_MEM_BUDGET: bytes, or a number with a K, M or G suffix; 0 when
 * unset or malformed. */
static uint64_t env_budget(void)
{
    const char *v = getenv("DQO_CL_MEM_BUDGET");
    if (v == NULL || *v == '\0')
        return 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || end == v)
        return 0;
    switch (*end) {
    case 'k': case 'K': n <<= 10; end++; break;
    case 'm': case 'M': n <<= 20; end++; break;
    case 'g': case 'G': n <<= 30; end++; break;
    default: break;
    }
    return *end == '\0' ? (uint64_t)n : 0;
}

static void set_budget(ocl_dev *d)
{
    uint64_t b = d->info.global_mem / 4 * 3;
    const uint64_t env = env_budget();
    if (env != 0 && env < b)
        b = env;
    const uint64_t o = budget_override[d->index];
    if (o != 0 && o < b)
        b = o;
    if (b < 4096)
        b = 4096;
    d->budget = b;
    d->max_alloc = d->info.max_alloc;
    if (d->max_alloc > b / 4)
        d->max_alloc = b / 4;
    if (d->max_alloc < 1024)
        d->max_alloc = 1024;
}

void ocl_set_mem_budget(int index, uint64_t bytes)
{
    if (index < 0 || index >= OCL_MAX_DEVICES)
        return;
    pthread_mutex_lock(&devs_lock);
    budget_override[index] = bytes;
    if (devs[index] != NULL)
        set_budget(devs[index]);
    pthread_mutex_unlock(&devs_lock);
}

static void pinned_drop(ocl_dev *d, int slot)
{
    ocl_unmap_quiet(d->q, d->pinned[slot], d->pinned_ptr[slot]);
    ocl_release_mem(d->pinned[slot]);
    d->pinned[slot] = NULL;
    d->pinned_ptr[slot] = NULL;
    d->pinned_bytes[slot] = 0;
}

void *ocl_dev_pinned(ocl_dev *d, int slot, uint64_t bytes, cl_mem *buf,
                     ocl_err *e)
{
    if (bytes == 0)
        bytes = 8;
    if (d->pinned[slot] != NULL && d->pinned_bytes[slot] >= bytes) {
        *buf = d->pinned[slot];
        return d->pinned_ptr[slot];
    }
    pinned_drop(d, slot);
    /* Grow by at least a quarter, so that slowly growing results do not
     * reallocate every time. */
    uint64_t want = bytes + bytes / 4;
    cl_mem m = OCL_MAKE(e, clCreateBuffer, d->ctx,
                        CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR,
                        (size_t)want, NULL);
    if (m == NULL)
        return NULL;
    void *p = ocl_map(e, d->q, m, (size_t)want);
    if (p == NULL) {
        ocl_release_mem(m);
        return NULL;
    }
    d->pinned[slot] = m;
    d->pinned_ptr[slot] = p;
    d->pinned_bytes[slot] = want;
    *buf = m;
    return p;
}

static void dev_close(ocl_dev *d)
{
    if (d == NULL)
        return;
    for (int i = 0; i < OCL_PINNED_SLOTS; i++)
        pinned_drop(d, i);
    for (int i = 0; i < d->nprog; i++)
        ocl_release_program(d->prog[i].prog);
    ocl_release_queue(d->xfer);
    ocl_release_queue(d->q);
    ocl_release_context(d->ctx);
    pthread_mutex_destroy(&d->run);
    mem_free(d);
}

static ocl_dev *dev_open(int index, ocl_err *e)
{
    ocl_dev *d = mem_calloc(1, sizeof *d);
    if (d == NULL) {
        ocl_errf(e, DQO_ENOMEM, "out of memory opening OpenCL device cl:%d",
                 index);
        return NULL;
    }
    d->index = index;
    pthread_mutex_init(&d->run, NULL);
    if (ocl_device_at(index, &d->id, &d->info, e) != DQO_OK)
        goto fail;
    if (!OCL_CALL(e, clGetDeviceInfo, d->id, CL_DEVICE_PLATFORM,
                  sizeof d->platform, &d->platform, NULL))
        goto fail;
    if (!OCL_CALL(e, clGetDeviceInfo, d->id, CL_DEVICE_MAX_WORK_GROUP_SIZE,
                  sizeof d->max_wg, &d->max_wg, NULL))
        goto fail;
    char exts[4096];
    size_t got = 0;
    if (OCL_TRY(clGetDeviceInfo, d->id, CL_DEVICE_EXTENSIONS, sizeof exts - 1,
                exts, &got)) {
        exts[got < sizeof exts ? got : sizeof exts - 1] = '\0';
        d->i64_ext = ocl_has_ext(exts, "cl_khr_int64_extended_atomics");
    }
    if (!d->info.int64_atomics) {
        ocl_errf(e, DQO_EUNSUPPORTED,
                 "OpenCL device cl:%d (%s) has no 64-bit atomics "
                 "(cl_khr_int64_base_atomics), which dqo's grouping kernels "
                 "need",
                 index, d->info.name);
        goto fail;
    }
    d->ctx = OCL_MAKE(e, clCreateContext, NULL, 1, &d->id, NULL, NULL);
    if (d->ctx == NULL)
        goto fail;
    d->q = OCL_MAKE(e, clCreateCommandQueue, d->ctx, d->id, 0);
    if (d->q == NULL)
        goto fail;
    d->xfer = OCL_MAKE(e, clCreateCommandQueue, d->ctx, d->id, 0);
    if (d->xfer == NULL)
        goto fail;
    set_budget(d);
    return d;
fail:
    dev_close(d);
    return NULL;
}

ocl_dev *ocl_dev_get(int index, ocl_err *e)
{
    if (index < 0 || index >= OCL_MAX_DEVICES) {
        ocl_errf(e, DQO_ENOTFOUND, "no OpenCL device cl:%d", index);
        return NULL;
    }
    pthread_mutex_lock(&devs_lock);
    ocl_dev *d = devs[index];
    if (d == NULL && (d = dev_open(index, e)) != NULL)
        devs[index] = d;
    if (d != NULL)
        d->refs++;
    pthread_mutex_unlock(&devs_lock);
    return d;
}

void ocl_dev_put(ocl_dev *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&devs_lock);
    d->refs--;
    pthread_mutex_unlock(&devs_lock);
}

long ocl_cached_objects(void)
{
    long n = 0;
    pthread_mutex_lock(&devs_lock);
    for (int i = 0; i < OCL_MAX_DEVICES; i++) {
        const ocl_dev *d = devs[i];
        if (d == NULL)
            continue;
        n += 3 + d->nprog; /* context, two queues, programs */
        for (int k = 0; k < OCL_PINNED_SLOTS; k++)
            n += d->pinned[k] != NULL ? 2 : 0; /* buffer and mapping */
    }
    pthread_mutex_unlock(&devs_lock);
    return n;
}

long ocl_cached_allocs(void)
{
    long n = 0;
    pthread_mutex_lock(&devs_lock);
    for (int i = 0; i < OCL_MAX_DEVICES; i++)
        n += devs[i] != NULL;
    pthread_mutex_unlock(&devs_lock);
    return n;
}

void ocl_dev_trim(void)
{
    pthread_mutex_lock(&devs_lock);
    for (int i = 0; i < OCL_MAX_DEVICES; i++) {
        if (devs[i] != NULL && devs[i]->refs == 0) {
            dev_close(devs[i]);
            devs[i] = NULL;
        }
    }
    pthread_mutex_unlock(&devs_lock);
}

/* The embedded sources of `names`, joined (mem_alloc; *len set). */
static char *join_sources(const char *const *names, size_t *len, ocl_err *e)
{
    size_t total = 0;
    for (int i = 0; names[i] != NULL; i++) {
        const ocl_kernel_source *s = ocl_source(names[i]);
        if (s == NULL) {
            ocl_errf(e, DQO_EINTERNAL, "no embedded OpenCL source '%s'",
                     names[i]);
            return NULL;
        }
        total += s->len + 1;
    }
    char *text = mem_alloc(total + 1);
    if (text == NULL) {
        ocl_errf(e, DQO_ENOMEM, "out of memory joining OpenCL sources");
        return NULL;
    }
    size_t at = 0;
    for (int i = 0; names[i] != NULL; i++) {
        const ocl_kernel_source *s = ocl_source(names[i]);
        memcpy(text + at, s->text, s->len);
        at += s->len;
        text[at++] = '\n';
    }
    text[at] = '\0';
    *len = at;
    return text;
}

cl_program ocl_dev_program(ocl_dev *d, const char *const *names,
                           const char *options, ocl_err *e)
{
    /* The cache key: the source names and the options. */
    char label[128] = "";
    size_t ll = 0;
    for (int i = 0; names[i] != NULL && ll + 1 < sizeof label; i++)
        ll += (size_t)snprintf(label + ll, sizeof label - ll, "%s%s",
                               i ? "+" : "", names[i]);
    const size_t olen = strlen(OCL_BUILD_OPTIONS) + 1 +
                        (options != NULL ? strlen(options) : 0) + 1;
    char *opts = mem_alloc(olen);
    char *key = mem_alloc(strlen(label) + 1 + olen);
    char *text = NULL;
    cl_program p = NULL;
    if (opts == NULL || key == NULL) {
        ocl_errf(e, DQO_ENOMEM, "out of memory building %s", label);
        goto out;
    }
    snprintf(opts, olen, "%s %s", OCL_BUILD_OPTIONS,
             options != NULL ? options : "");
    sprintf(key, "%s\n%s", label, opts);
    for (int i = 0; i < d->nprog; i++)
        if (strcmp(d->prog[i].key, key) == 0) {
            p = d->prog[i].prog;
            goto out;
        }
    size_t len = 0;
    if ((text = join_sources(names, &len, e)) == NULL)
        goto out;
    char hash[33];
    ocl_cache_key(d, text, len, opts, hash);
    cl_program built = ocl_cache_load(d, hash, opts);
    if (built == NULL) {
        built = ocl_build_source(d->ctx, d->id, label, text, len, opts, e);
        if (built == NULL)
            goto out;
        ocl_cache_store(d, hash, built);
    }
    if (strlen(key) >= OCL_PROGRAM_KEY) {
        /* Not cached: the caller's query owns nothing either, so keep it
         * in the oldest slot's place below like any other program. */
        key[OCL_PROGRAM_KEY - 1] = '\0';
    }
    if (d->nprog == OCL_PROGRAM_CACHE) {
        /* Full: drop the oldest (no query holds programs across calls). */
        ocl_release_program(d->prog[0].prog);
        memmove(d->prog, d->prog + 1, (size_t)(d->nprog - 1) * sizeof *d->prog);
        d->nprog--;
    }
    memcpy(d->prog[d->nprog].key, key, strlen(key) + 1);
    d->prog[d->nprog].prog = built;
    d->nprog++;
    p = built;
out:
    mem_free(text);
    mem_free(key);
    mem_free(opts);
    return p;
}
