/*
 * runtime.c - the OpenCL host runtime's base: checked cl* calls with error
 * names and a fail-the-N-th-call hook, device enumeration through the ICD
 * loader into dev_info (names, memory sizes, fp64, 64-bit atomics, PCI
 * position from cl_khr_pci_bus_info or the NVIDIA / AMD attribute queries),
 * and building the kernel sources embedded from the files in opencl/kernels/.
 *
 * Enumeration order is the loader's: platform by platform, then the devices
 * of each (CL_DEVICE_TYPE_ALL); "cl:N" of the machine model counts devices
 * in this order. No platform at all (CL_PLATFORM_NOT_FOUND_KHR from an ICD
 * loader without vendors) is zero devices, not an error.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "opencl/ocl_int.h"

/* Extension constants that older headers lack; the values are the Khronos
 * registry's (cl_khr_pci_bus_info, cl_nv_device_attribute_query,
 * cl_amd_device_attribute_query, cl_khr_icd). */
#ifndef CL_PLATFORM_NOT_FOUND_KHR
#define CL_PLATFORM_NOT_FOUND_KHR -1001
#endif
#ifndef CL_DEVICE_PCI_BUS_INFO_KHR
#define CL_DEVICE_PCI_BUS_INFO_KHR 0x410F
#endif
#ifndef CL_DEVICE_PCI_BUS_ID_NV
#define CL_DEVICE_PCI_BUS_ID_NV 0x4008
#endif
#ifndef CL_DEVICE_PCI_SLOT_ID_NV
#define CL_DEVICE_PCI_SLOT_ID_NV 0x4009
#endif
#ifndef CL_DEVICE_PCI_DOMAIN_ID_NV
#define CL_DEVICE_PCI_DOMAIN_ID_NV 0x400A
#endif
#ifndef CL_DEVICE_TOPOLOGY_AMD
#define CL_DEVICE_TOPOLOGY_AMD 0x4037
#endif
#define OCL_TOPOLOGY_TYPE_PCIE_AMD 1

/* The layouts of cl_device_pci_bus_info_khr and cl_device_topology_amd,
 * declared here so that a header without them still builds. */
typedef struct ocl_pci_bus_info {
    cl_uint domain, bus, device, function;
} ocl_pci_bus_info;

typedef union ocl_topology_amd {
    struct {
        cl_uint type;
        cl_uint data[5];
    } raw;
    struct {
        cl_uint type;
        cl_char unused[17];
        cl_char bus, device, function;
    } pcie;
} ocl_topology_amd;

/* ----------------------------------------------------------- error names */

/* Every error code of OpenCL 1.0-3.0, then the Khronos extensions'. */
#define OCL_ERROR_LIST(X)                                                      \
    X(CL_SUCCESS, 0)                                                           \
    X(CL_DEVICE_NOT_FOUND, -1)                                                 \
    X(CL_DEVICE_NOT_AVAILABLE, -2)                                             \
    X(CL_COMPILER_NOT_AVAILABLE, -3)                                           \
    X(CL_MEM_OBJECT_ALLOCATION_FAILURE, -4)                                    \
    X(CL_OUT_OF_RESOURCES, -5)                                                 \
    X(CL_OUT_OF_HOST_MEMORY, -6)                                               \
    X(CL_PROFILING_INFO_NOT_AVAILABLE, -7)                                     \
    X(CL_MEM_COPY_OVERLAP, -8)                                                 \
    X(CL_IMAGE_FORMAT_MISMATCH, -9)                                            \
    X(CL_IMAGE_FORMAT_NOT_SUPPORTED, -10)                                      \
    X(CL_BUILD_PROGRAM_FAILURE, -11)                                           \
    X(CL_MAP_FAILURE, -12)                                                     \
    X(CL_MISALIGNED_SUB_BUFFER_OFFSET, -13)                                    \
    X(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST, -14)                       \
    X(CL_COMPILE_PROGRAM_FAILURE, -15)                                         \
    X(CL_LINKER_NOT_AVAILABLE, -16)                                            \
    X(CL_LINK_PROGRAM_FAILURE, -17)                                            \
    X(CL_DEVICE_PARTITION_FAILED, -18)                                         \
    X(CL_KERNEL_ARG_INFO_NOT_AVAILABLE, -19)                                   \
    X(CL_INVALID_VALUE, -30)                                                   \
    X(CL_INVALID_DEVICE_TYPE, -31)                                             \
    X(CL_INVALID_PLATFORM, -32)                                                \
    X(CL_INVALID_DEVICE, -33)                                                  \
    X(CL_INVALID_CONTEXT, -34)                                                 \
    X(CL_INVALID_QUEUE_PROPERTIES, -35)                                        \
    X(CL_INVALID_COMMAND_QUEUE, -36)                                           \
    X(CL_INVALID_HOST_PTR, -37)                                                \
    X(CL_INVALID_MEM_OBJECT, -38)                                              \
    X(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR, -39)                                 \
    X(CL_INVALID_IMAGE_SIZE, -40)                                              \
    X(CL_INVALID_SAMPLER, -41)                                                 \
    X(CL_INVALID_BINARY, -42)                                                  \
    X(CL_INVALID_BUILD_OPTIONS, -43)                                           \
    X(CL_INVALID_PROGRAM, -44)                                                 \
    X(CL_INVALID_PROGRAM_EXECUTABLE, -45)                                      \
    X(CL_INVALID_KERNEL_NAME, -46)                                             \
    X(CL_INVALID_KERNEL_DEFINITION, -47)                                       \
    X(CL_INVALID_KERNEL, -48)                                                  \
    X(CL_INVALID_ARG_INDEX, -49)                                               \
    X(CL_INVALID_ARG_VALUE, -50)                                               \
    X(CL_INVALID_ARG_SIZE, -51)                                                \
    X(CL_INVALID_KERNEL_ARGS, -52)                                             \
    X(CL_INVALID_WORK_DIMENSION, -53)                                          \
    X(CL_INVALID_WORK_GROUP_SIZE, -54)                                         \
    X(CL_INVALID_WORK_ITEM_SIZE, -55)                                          \
    X(CL_INVALID_GLOBAL_OFFSET, -56)                                           \
    X(CL_INVALID_EVENT_WAIT_LIST, -57)                                         \
    X(CL_INVALID_EVENT, -58)                                                   \
    X(CL_INVALID_OPERATION, -59)                                               \
    X(CL_INVALID_GL_OBJECT, -60)                                               \
    X(CL_INVALID_BUFFER_SIZE, -61)                                             \
    X(CL_INVALID_MIP_LEVEL, -62)                                               \
    X(CL_INVALID_GLOBAL_WORK_SIZE, -63)                                        \
    X(CL_INVALID_PROPERTY, -64)                                                \
    X(CL_INVALID_IMAGE_DESCRIPTOR, -65)                                        \
    X(CL_INVALID_COMPILER_OPTIONS, -66)                                        \
    X(CL_INVALID_LINKER_OPTIONS, -67)                                          \
    X(CL_INVALID_DEVICE_PARTITION_COUNT, -68)                                  \
    X(CL_INVALID_PIPE_SIZE, -69)                                               \
    X(CL_INVALID_DEVICE_QUEUE, -70)                                            \
    X(CL_INVALID_SPEC_ID, -71)                                                 \
    X(CL_MAX_SIZE_RESTRICTION_EXCEEDED, -72)                                   \
    X(CL_INVALID_GL_SHAREGROUP_REFERENCE_KHR, -1000)                           \
    X(CL_PLATFORM_NOT_FOUND_KHR, -1001)                                        \
    X(CL_INVALID_D3D10_DEVICE_KHR, -1002)                                      \
    X(CL_INVALID_D3D10_RESOURCE_KHR, -1003)                                    \
    X(CL_D3D10_RESOURCE_ALREADY_ACQUIRED_KHR, -1004)                           \
    X(CL_D3D10_RESOURCE_NOT_ACQUIRED_KHR, -1005)                               \
    X(CL_INVALID_D3D11_DEVICE_KHR, -1006)                                      \
    X(CL_INVALID_D3D11_RESOURCE_KHR, -1007)                                    \
    X(CL_D3D11_RESOURCE_ALREADY_ACQUIRED_KHR, -1008)                           \
    X(CL_D3D11_RESOURCE_NOT_ACQUIRED_KHR, -1009)                               \
    X(CL_INVALID_DX9_MEDIA_ADAPTER_KHR, -1010)                                 \
    X(CL_INVALID_DX9_MEDIA_SURFACE_KHR, -1011)                                 \
    X(CL_DX9_MEDIA_SURFACE_ALREADY_ACQUIRED_KHR, -1012)                        \
    X(CL_DX9_MEDIA_SURFACE_NOT_ACQUIRED_KHR, -1013)                            \
    X(CL_DEVICE_PARTITION_FAILED_EXT, -1057)                                   \
    X(CL_INVALID_PARTITION_COUNT_EXT, -1058)                                   \
    X(CL_INVALID_PARTITION_NAME_EXT, -1059)                                    \
    X(CL_EGL_RESOURCE_NOT_ACQUIRED_KHR, -1092)                                 \
    X(CL_INVALID_EGL_OBJECT_KHR, -1093)                                        \
    X(CL_INVALID_ACCELERATOR_INTEL, -1094)                                     \
    X(CL_INVALID_ACCELERATOR_TYPE_INTEL, -1095)                                \
    X(CL_INVALID_ACCELERATOR_DESCRIPTOR_INTEL, -1096)                          \
    X(CL_ACCELERATOR_TYPE_NOT_SUPPORTED_INTEL, -1097)                          \
    X(CL_INVALID_VA_API_MEDIA_ADAPTER_INTEL, -1098)                            \
    X(CL_INVALID_VA_API_MEDIA_SURFACE_INTEL, -1099)                            \
    X(CL_VA_API_MEDIA_SURFACE_ALREADY_ACQUIRED_INTEL, -1100)                   \
    X(CL_VA_API_MEDIA_SURFACE_NOT_ACQUIRED_INTEL, -1101)                       \
    X(CL_COMMAND_TERMINATED_ITSELF_WITH_FAILURE_ARM, -1108)                    \
    X(CL_CONTEXT_TERMINATED_KHR, -1121)                                        \
    X(CL_INVALID_COMMAND_BUFFER_KHR, -1138)                                    \
    X(CL_INVALID_SYNC_POINT_WAIT_LIST_KHR, -1139)                              \
    X(CL_INCOMPATIBLE_COMMAND_QUEUE_KHR, -1140)                                \
    X(CL_INVALID_MUTABLE_COMMAND_KHR, -1141)                                   \
    X(CL_INVALID_SEMAPHORE_KHR, -1142)

const char *ocl_error_name(cl_int code)
{
    switch (code) {
#define OCL_ERROR_CASE_(name, value)                                           \
    case value: return #name;
        OCL_ERROR_LIST(OCL_ERROR_CASE_)
#undef OCL_ERROR_CASE_
    default: return "CL_UNKNOWN_ERROR";
    }
}

ocl_err ocl_err_init(char *msg, size_t len)
{
    ocl_err e = {msg, len, DQO_OK, CL_SUCCESS, CL_SUCCESS};
    if (msg != NULL && len > 0)
        msg[0] = '\0';
    return e;
}

static void ocl_verrf(ocl_err *e, dqo_status s, const char *fmt, va_list ap)
{
    if (e->status != DQO_OK)
        return;
    e->status = s;
    if (e->msg != NULL && e->len > 0)
        vsnprintf(e->msg, e->len, fmt, ap);
}

bool ocl_errf(ocl_err *e, dqo_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ocl_verrf(e, s, fmt, ap);
    va_end(ap);
    return false;
}

/* ---------------------------------------------------- checked-call hook */

static atomic_long ocl_countdown = -1; /* -1: disarmed */
static atomic_long ocl_calls;
static atomic_long ocl_live;
/* Set by an injected failure, read by the check that reports it. */
static _Thread_local bool ocl_injected;

void ocl_fail_after(long n)
{
    atomic_store(&ocl_countdown, n < 0 ? -1 : n);
}

long ocl_checked_calls(void)
{
    return atomic_load(&ocl_calls);
}

long ocl_live_objects(void)
{
    return atomic_load(&ocl_live);
}

bool ocl_hook_(void)
{
    atomic_fetch_add(&ocl_calls, 1);
    long c = atomic_load(&ocl_countdown);
    while (c >= 0) {
        if (atomic_compare_exchange_weak(&ocl_countdown, &c, c - 1))
            return c != 0;
    }
    return true;
}

cl_int ocl_inject_rc_(void)
{
    ocl_injected = true;
    return CL_OUT_OF_RESOURCES;
}

void *ocl_inject_obj_(cl_int *code)
{
    ocl_injected = true;
    *code = CL_OUT_OF_RESOURCES;
    return NULL;
}

bool ocl_check_(ocl_err *e, const char *call, cl_int rc)
{
    const bool injected = ocl_injected;
    ocl_injected = false;
    if (rc == CL_SUCCESS)
        return true;
    if (e->status == DQO_OK)
        e->code = rc;
    return ocl_errf(e, DQO_EDEVICE, "%s: %s (%d)%s", call, ocl_error_name(rc),
                    (int)rc, injected ? " [injected by ocl_fail_after]" : "");
}

void *ocl_made_(ocl_err *e, const char *call, void *obj)
{
    const cl_int rc = e->ret;
    e->ret = CL_SUCCESS;
    if (rc == CL_SUCCESS && obj != NULL) {
        atomic_fetch_add(&ocl_live, 1);
        return obj;
    }
    /* A driver that returns NULL with CL_SUCCESS is broken; say so. */
    ocl_check_(e, call, rc != CL_SUCCESS ? rc : CL_INVALID_VALUE);
    return NULL;
}

bool ocl_try_(const char *call, cl_int rc)
{
    (void)call;
    return rc == CL_SUCCESS;
}

void ocl_count_object(const void *obj)
{
    if (obj != NULL)
        atomic_fetch_add(&ocl_live, 1);
}

/* Releases drop the live count whatever the driver answers: the object is
 * gone from our side either way. */
#define OCL_RELEASE_FN_(name, type, fn)                                        \
    void name(type obj)                                                        \
    {                                                                          \
        if (obj == NULL)                                                       \
            return;                                                            \
        atomic_fetch_sub(&ocl_live, 1);                                        \
        (void)fn(obj);                                                         \
    }
OCL_RELEASE_FN_(ocl_release_event, cl_event, clReleaseEvent)
OCL_RELEASE_FN_(ocl_release_mem, cl_mem, clReleaseMemObject)
OCL_RELEASE_FN_(ocl_release_kernel, cl_kernel, clReleaseKernel)
OCL_RELEASE_FN_(ocl_release_program, cl_program, clReleaseProgram)
OCL_RELEASE_FN_(ocl_release_queue, cl_command_queue, clReleaseCommandQueue)
OCL_RELEASE_FN_(ocl_release_context, cl_context, clReleaseContext)
#undef OCL_RELEASE_FN_

void *ocl_map(ocl_err *e, cl_command_queue q, cl_mem m, size_t bytes)
{
    return OCL_MAKE(e, clEnqueueMapBuffer, q, m, CL_TRUE,
                    CL_MAP_READ | CL_MAP_WRITE, 0, bytes, 0, NULL, NULL);
}

bool ocl_unmap(ocl_err *e, cl_command_queue q, cl_mem m, void *ptr)
{
    atomic_fetch_sub(&ocl_live, 1);
    if (!OCL_CALL(e, clEnqueueUnmapMemObject, q, m, ptr, 0, NULL, NULL)) {
        /* Try once more, unchecked: a buffer released while mapped is never
         * freed by some drivers (PoCL 3.1 keeps its host copy). */
        if (clEnqueueUnmapMemObject(q, m, ptr, 0, NULL, NULL) == CL_SUCCESS)
            (void)clFinish(q);
        return false;
    }
    return OCL_CALL(e, clFinish, q);
}

void ocl_unmap_quiet(cl_command_queue q, cl_mem m, void *ptr)
{
    if (ptr == NULL)
        return;
    atomic_fetch_sub(&ocl_live, 1);
    if (clEnqueueUnmapMemObject(q, m, ptr, 0, NULL, NULL) == CL_SUCCESS)
        (void)clFinish(q);
}

/* ---------------------------------------------------------- device info */

bool ocl_has_ext(const char *exts, const char *ext)
{
    const size_t n = strlen(ext);
    if (exts == NULL || n == 0)
        return false;
    for (const char *p = exts; (p = strstr(p, ext)) != NULL; p += n) {
        const bool starts = p == exts || isspace((unsigned char)p[-1]);
        const bool ends = p[n] == '\0' || isspace((unsigned char)p[n]);
        if (starts && ends)
            return true;
    }
    return false;
}

/* Copies `src` into dst[cap] without leading or trailing blanks (some
 * drivers pad device names), truncating. */
static void copy_trimmed(char *dst, size_t cap, const char *src)
{
    while (isspace((unsigned char)*src))
        src++;
    size_t n = strlen(src);
    while (n > 0 && isspace((unsigned char)src[n - 1]))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* A string property of a device (platform == NULL) or of a platform, in
 * memory from mem_alloc (the caller frees it), or NULL with `e` filled. */
static char *info_str(cl_platform_id platform, cl_device_id dev, cl_uint param,
                      ocl_err *e)
{
    char *s = NULL;
    size_t size = 0;
    bool ok =
        platform != NULL
            ? OCL_CALL(e, clGetPlatformInfo, platform, param, 0, NULL, &size)
            : OCL_CALL(e, clGetDeviceInfo, dev, param, 0, NULL, &size);
    if (!ok)
        goto fail;
    s = mem_alloc(size + 1);
    if (s == NULL) {
        ocl_errf(e, DQO_ENOMEM, "out of memory for an OpenCL info string");
        goto fail;
    }
    ok = platform != NULL
             ? OCL_CALL(e, clGetPlatformInfo, platform, param, size, s, NULL)
             : OCL_CALL(e, clGetDeviceInfo, dev, param, size, s, NULL);
    if (!ok)
        goto fail;
    s[size] = '\0';
    return s;
fail:
    mem_free(s);
    return NULL;
}

/* A string property copied (trimmed) into dst[cap]. */
static bool info_copy(cl_platform_id platform, cl_device_id dev, cl_uint param,
                      char *dst, size_t cap, ocl_err *e)
{
    char *s = info_str(platform, dev, param, e);
    if (s == NULL)
        return false;
    copy_trimmed(dst, cap, s);
    mem_free(s);
    return true;
}

/* The PCI position from whichever query the device offers; has_pci stays
 * false when none answers (a CPU device, an FPGA emulator). */
static void pci_position(cl_device_id d, const char *exts, dev_info *o)
{
    if (ocl_has_ext(exts, "cl_khr_pci_bus_info")) {
        ocl_pci_bus_info b;
        if (OCL_TRY(clGetDeviceInfo, d, CL_DEVICE_PCI_BUS_INFO_KHR, sizeof b,
                    &b, NULL)) {
            o->has_pci = true;
            o->pci_domain = b.domain;
            o->pci_bus = b.bus;
            o->pci_dev = b.device;
            o->pci_func = b.function;
            return;
        }
    }
    if (ocl_has_ext(exts, "cl_nv_device_attribute_query")) {
        cl_uint bus = 0, slot = 0, domain = 0;
        if (OCL_TRY(clGetDeviceInfo, d, CL_DEVICE_PCI_BUS_ID_NV, sizeof bus,
                    &bus, NULL) &&
            OCL_TRY(clGetDeviceInfo, d, CL_DEVICE_PCI_SLOT_ID_NV, sizeof slot,
                    &slot, NULL)) {
            /* Older drivers lack the domain query: domain 0. */
            if (!OCL_TRY(clGetDeviceInfo, d, CL_DEVICE_PCI_DOMAIN_ID_NV,
                         sizeof domain, &domain, NULL))
                domain = 0;
            o->has_pci = true;
            o->pci_domain = domain;
            o->pci_bus = bus;
            o->pci_dev = slot >> 3;
            o->pci_func = slot & 7;
            return;
        }
    }
    if (ocl_has_ext(exts, "cl_amd_device_attribute_query")) {
        ocl_topology_amd t;
        memset(&t, 0, sizeof t);
        if (OCL_TRY(clGetDeviceInfo, d, CL_DEVICE_TOPOLOGY_AMD, sizeof t, &t,
                    NULL) &&
            t.raw.type == OCL_TOPOLOGY_TYPE_PCIE_AMD) {
            o->has_pci = true;
            o->pci_domain = 0;
            o->pci_bus = (unsigned char)t.pcie.bus;
            o->pci_dev = (unsigned char)t.pcie.device;
            o->pci_func = (unsigned char)t.pcie.function;
        }
    }
}

/* Fills `o` for device `d`, the device-th of platform `platform`. */
static bool device_info(cl_device_id d, int platform, int device,
                        const char *platform_name, dev_info *o, ocl_err *e)
{
    char *exts = NULL;
    bool ok = false;
    memset(o, 0, sizeof *o);
    o->platform = platform;
    o->device = device;
    copy_trimmed(o->platform_name, sizeof o->platform_name, platform_name);
    if (!info_copy(NULL, d, CL_DEVICE_NAME, o->name, sizeof o->name, e) ||
        !info_copy(NULL, d, CL_DEVICE_VENDOR, o->vendor, sizeof o->vendor, e) ||
        !info_copy(NULL, d, CL_DEVICE_VERSION, o->version, sizeof o->version,
                   e) ||
        !info_copy(NULL, d, CL_DRIVER_VERSION, o->driver, sizeof o->driver, e))
        goto fail;
    cl_device_type type = 0;
    cl_uint units = 0, clock = 0;
    cl_ulong global = 0, max_alloc = 0, local = 0, cache = 0;
    if (!OCL_CALL(e, clGetDeviceInfo, d, CL_DEVICE_TYPE, sizeof type, &type,
                  NULL) ||
        !OCL_CALL(e, clGetDeviceInfo, d, CL_DEVICE_MAX_COMPUTE_UNITS,
                  sizeof units, &units, NULL) ||
        !OCL_CALL(e, clGetDeviceInfo, d, CL_DEVICE_MAX_CLOCK_FREQUENCY,
                  sizeof clock, &clock, NULL) ||
        !OCL_CALL(e, clGetDeviceInfo, d, CL_DEVICE_GLOBAL_MEM_SIZE,
                  sizeof global, &global, NULL) ||
        !OCL_CALL(e, clGetDeviceInfo, d, CL_DEVICE_MAX_MEM_ALLOC_SIZE,
                  sizeof max_alloc, &max_alloc, NULL) ||
        !OCL_CALL(e, clGetDeviceInfo, d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local,
                  &local, NULL) ||
        !OCL_CALL(e, clGetDeviceInfo, d, CL_DEVICE_GLOBAL_MEM_CACHE_SIZE,
                  sizeof cache, &cache, NULL))
        goto fail;
    o->is_gpu = (type & CL_DEVICE_TYPE_GPU) != 0;
    o->is_cpu = (type & CL_DEVICE_TYPE_CPU) != 0;
    o->compute_units = units;
    o->clock_mhz = clock;
    o->global_mem = global;
    o->max_alloc = max_alloc;
    o->local_mem = local;
    o->global_cache = cache;
    /* Deprecated since OpenCL 2.0 (still answered by the drivers we know):
     * optional. */
    cl_bool unified = CL_FALSE;
    if (OCL_TRY(clGetDeviceInfo, d, CL_DEVICE_HOST_UNIFIED_MEMORY,
                sizeof unified, &unified, NULL))
        o->host_unified = unified == CL_TRUE;
    exts = info_str(NULL, d, CL_DEVICE_EXTENSIONS, e);
    if (exts == NULL)
        goto fail;
    /* 1.1 devices may reject CL_DEVICE_DOUBLE_FP_CONFIG; then the extension
     * alone says it. */
    cl_device_fp_config fp = 0;
    if (!OCL_TRY(clGetDeviceInfo, d, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp, &fp,
                 NULL))
        fp = 0;
    o->fp64 = fp != 0 || ocl_has_ext(exts, "cl_khr_fp64");
    o->int64_atomics = ocl_has_ext(exts, "cl_khr_int64_base_atomics");
    pci_position(d, exts, o);
    ok = true;
fail:
    mem_free(exts);
    return ok;
}

/* Walks the enumeration: fills out[i] for i < max, and *want_dev with
 * *want_info for index `want` (-1: none). The device count, or -1. */
static int enumerate(dev_info *out, int max, int want, cl_device_id *want_dev,
                     dev_info *want_info, ocl_err *e)
{
    cl_platform_id *plats = NULL;
    cl_device_id *devs = NULL;
    char *pname = NULL;
    int count = -1, total = 0;
    cl_uint np = 0;
    cl_int rc = OCL_RC(clGetPlatformIDs, 0, NULL, &np);
    if (rc == CL_PLATFORM_NOT_FOUND_KHR || (rc == CL_SUCCESS && np == 0)) {
        count = 0;
        goto fail;
    }
    if (!ocl_check_(e, "clGetPlatformIDs", rc))
        goto fail;
    plats = mem_calloc(np, sizeof *plats);
    if (plats == NULL) {
        ocl_errf(e, DQO_ENOMEM, "out of memory for %u OpenCL platforms", np);
        goto fail;
    }
    if (!OCL_CALL(e, clGetPlatformIDs, np, plats, NULL))
        goto fail;
    for (cl_uint p = 0; p < np; p++) {
        cl_uint nd = 0;
        rc = OCL_RC(clGetDeviceIDs, plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd);
        if (rc == CL_DEVICE_NOT_FOUND || (rc == CL_SUCCESS && nd == 0))
            continue;
        if (!ocl_check_(e, "clGetDeviceIDs", rc))
            goto fail;
        const bool needed =
            total < max || (want >= total && want < total + (int)nd);
        if (!needed) {
            total += (int)nd;
            continue;
        }
        devs = mem_calloc(nd, sizeof *devs);
        if (devs == NULL) {
            ocl_errf(e, DQO_ENOMEM, "out of memory for %u OpenCL devices", nd);
            goto fail;
        }
        pname = info_str(plats[p], NULL, CL_PLATFORM_NAME, e);
        if (pname == NULL || !OCL_CALL(e, clGetDeviceIDs, plats[p],
                                       CL_DEVICE_TYPE_ALL, nd, devs, NULL))
            goto fail;
        for (cl_uint d = 0; d < nd; d++, total++) {
            if (total < max &&
                !device_info(devs[d], (int)p, (int)d, pname, &out[total], e))
                goto fail;
            if (total == want) {
                *want_dev = devs[d];
                if (!device_info(devs[d], (int)p, (int)d, pname, want_info, e))
                    goto fail;
            }
        }
        mem_free(devs);
        devs = NULL;
        mem_free(pname);
        pname = NULL;
    }
    count = total;
fail:
    mem_free(pname);
    mem_free(devs);
    mem_free(plats);
    return count;
}

int ocl_probe(dev_info *out, int max, char *err, size_t errlen)
{
    ocl_err e = ocl_err_init(err, errlen);
    if (max < 0 || (max > 0 && out == NULL)) {
        ocl_errf(&e, DQO_EINVAL, "ocl_probe: bad output array (max %d)", max);
        return -1;
    }
    return enumerate(out, max, -1, NULL, NULL, &e);
}

dqo_status ocl_device_at(int index, cl_device_id *dev, dev_info *info,
                         ocl_err *e)
{
    if (index < 0) {
        ocl_errf(e, DQO_EINVAL, "no OpenCL device cl:%d (negative index)",
                 index);
        return e->status;
    }
    const int n = enumerate(NULL, 0, index, dev, info, e);
    if (n < 0)
        return e->status;
    if (index >= n)
        ocl_errf(e, DQO_ENOTFOUND, "no OpenCL device cl:%d (%d device%s found)",
                 index, n, n == 1 ? "" : "s");
    return e->status;
}

/* -------------------------------------------------------------- programs */

const ocl_kernel_source *ocl_source(const char *name)
{
    for (int i = 0; name != NULL && ocl_kernel_sources[i].name != NULL; i++)
        if (strcmp(ocl_kernel_sources[i].name, name) == 0)
            return &ocl_kernel_sources[i];
    return NULL;
}

/* Appends the build log of `prog` for `dev` to e's text, after the failing
 * call's message. Unchecked: this already is a failure path. */
static void append_build_log(cl_program prog, cl_device_id dev, ocl_err *e)
{
    size_t used = e->msg != NULL ? strlen(e->msg) : 0;
    size_t size = 0;
    char *log = NULL;
    if (e->msg == NULL || used + 1 >= e->len)
        goto fail;
    if (!OCL_TRY(clGetProgramBuildInfo, prog, dev, CL_PROGRAM_BUILD_LOG, 0,
                 NULL, &size) ||
        size == 0)
        goto fail;
    log = mem_alloc(size + 1);
    if (log == NULL || !OCL_TRY(clGetProgramBuildInfo, prog, dev,
                                CL_PROGRAM_BUILD_LOG, size, log, NULL))
        goto fail;
    log[size] = '\0';
    snprintf(e->msg + used, e->len - used, "; build log:\n%s", log);
fail:
    mem_free(log);
}

cl_program ocl_build_source(cl_context ctx, cl_device_id dev, const char *label,
                            const char *text, size_t len, const char *options,
                            ocl_err *e)
{
    cl_program prog =
        OCL_MAKE(e, clCreateProgramWithSource, ctx, 1, &text, &len);
    if (prog == NULL)
        goto fail;
    cl_int rc = OCL_RC(clBuildProgram, prog, 1, &dev,
                       options != NULL ? options : "", NULL, NULL);
    if (!ocl_check_(e, "clBuildProgram", rc)) {
        if (rc == CL_BUILD_PROGRAM_FAILURE && e->msg != NULL) {
            size_t used = strlen(e->msg);
            if (used < e->len)
                snprintf(e->msg + used, e->len - used, " building %s.cl",
                         label);
            append_build_log(prog, dev, e);
        }
        goto fail;
    }
    return prog;
fail:
    ocl_release_program(prog);
    return NULL;
}

cl_program ocl_build(cl_context ctx, cl_device_id dev, const char *name,
                     const char *options, ocl_err *e)
{
    const ocl_kernel_source *src = ocl_source(name);
    if (src == NULL) {
        ocl_errf(e, DQO_EINTERNAL, "no embedded OpenCL source '%s'",
                 name != NULL ? name : "(null)");
        return NULL;
    }
    return ocl_build_source(ctx, dev, src->name, src->text, src->len, options,
                            e);
}
