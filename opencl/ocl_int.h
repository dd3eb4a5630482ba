/*
 * ocl_int.h - private declarations of the OpenCL back-end: the checked-call
 * wrappers every cl* call goes through (error names, a fail-the-N-th-call
 * hook for tests, a count of live OpenCL objects for leak checks), device
 * enumeration through the ICD loader, building the embedded kernel sources,
 * and the calibration plan. Private to opencl/ and tests/: it exposes CL
 * types, so no other folder may include it.
 *
 * Error handling: functions that can fail take an ocl_err, which points at
 * the caller's message buffer; the first failure writes "clCreateBuffer:
 * CL_MEM_OBJECT_ALLOCATION_FAILURE (-4)" (or a host-side message) and the
 * dqo_status that the public call returns. The wrappers:
 *
 *   OCL_CALL(e, fn, args...)  a cl* call returning cl_int; true on success.
 *   OCL_MAKE(e, fn, args...)  a cl* call creating an object, with its
 *                             errcode_ret argument left off (the macro adds
 *                             it); the object, or NULL on failure. Counted
 *                             by ocl_live_objects until its ocl_release_*.
 *   OCL_RC(fn, args...)       the raw cl_int of a checked call, for callers
 *                             that accept some codes (CL_DEVICE_NOT_FOUND);
 *                             pass it to ocl_check_ for the others.
 *   OCL_TRY(fn, args...)      an optional query whose failure is no error
 *                             (vendor PCI attributes): true on success,
 *                             nothing recorded, never failed by the hook.
 *
 * The first three are the "checked calls": each consults the failure hook
 * and is counted by ocl_checked_calls. Releases (ocl_release_*) are neither
 * checked nor failed: cleanup must always run.
 */
#ifndef DQO_OCL_INT_H
#define DQO_OCL_INT_H

/* The host code uses the OpenCL 1.2 API; CMake sets this for opencl/, and
 * tests that include this header get the same. */
#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif

#include <CL/cl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dqo.h"
#include "engine/alloc.h"
#include "engine/backend.h"
#include "opencl/ocl_kernels.h"

#if defined(__GNUC__)
#define OCL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define OCL_PRINTF(a, b)
#endif

/* ---------------------------------------------------------------- errors */

typedef struct ocl_err {
    char *msg; /* the caller's buffer (may be NULL when len is 0) */
    size_t len;
    dqo_status status; /* DQO_OK until the first failure */
    cl_int code;       /* the failing call's code; CL_SUCCESS otherwise */
    cl_int ret;        /* scratch: the errcode_ret of an OCL_MAKE call */
} ocl_err;

/* An ocl_err writing into msg[len] (cleared). */
ocl_err ocl_err_init(char *msg, size_t len);
/* Records a failure that is not a cl* call's (status and text). The first
 * failure wins: later ones leave the text alone. Returns false. */
bool ocl_errf(ocl_err *e, dqo_status s, const char *fmt, ...) OCL_PRINTF(3, 4);

/* "CL_OUT_OF_RESOURCES" for -5; every error code of OpenCL 1.0 to 3.0 and
 * the common Khronos extensions; "CL_UNKNOWN_ERROR" for others. A static
 * string, never freed. */
const char *ocl_error_name(cl_int code);

/* Test hook (SQLite's fail-the-N-th-call): after n more checked calls, the
 * next checked call fails with CL_OUT_OF_RESOURCES without reaching the
 * driver, once; n = 0 fails the next one, -1 disarms. Thread-safe. */
void ocl_fail_after(long n);
/* Checked calls made since the process started (with injected failures). */
long ocl_checked_calls(void);
/* OpenCL objects created through OCL_MAKE, ocl_map or a counted event and
 * not yet released (mapped regions count until unmapped). */
long ocl_live_objects(void);

/* The wrappers' parts; call them through the macros above. */
bool ocl_hook_(void);
cl_int ocl_inject_rc_(void);
void *ocl_inject_obj_(cl_int *code);
bool ocl_check_(ocl_err *e, const char *call, cl_int rc);
void *ocl_made_(ocl_err *e, const char *call, void *obj);
bool ocl_try_(const char *call, cl_int rc);

#define OCL_RC(fn, ...) (ocl_hook_() ? fn(__VA_ARGS__) : ocl_inject_rc_())
#define OCL_CALL(e, fn, ...) ocl_check_((e), #fn, OCL_RC(fn, __VA_ARGS__))
#define OCL_MAKE(e, fn, ...)                                                   \
    ocl_made_((e), #fn,                                                        \
              ocl_hook_() ? (void *)fn(__VA_ARGS__, &(e)->ret)                 \
                          : ocl_inject_obj_(&(e)->ret))
#define OCL_TRY(fn, ...) ocl_try_(#fn, fn(__VA_ARGS__))

/* Counts an object that a checked call handed back through an out-argument
 * (an event of clEnqueueNDRangeKernel); release it with ocl_release_event. */
void ocl_count_object(const void *obj);

/* Releases that accept NULL and never fail (their codes are ignored). */
void ocl_release_event(cl_event ev);
void ocl_release_mem(cl_mem m);
void ocl_release_kernel(cl_kernel k);
void ocl_release_program(cl_program p);
void ocl_release_queue(cl_command_queue q);
void ocl_release_context(cl_context c);

/* Maps `bytes` of `m` for reading and writing (blocking). The pointer, owned
 * by the buffer until ocl_unmap, or NULL with `e` filled. */
void *ocl_map(ocl_err *e, cl_command_queue q, cl_mem m, size_t bytes);
/* Unmaps and waits for it (a checked call; the region is released from the
 * live count even when the call fails). */
bool ocl_unmap(ocl_err *e, cl_command_queue q, cl_mem m, void *ptr);
/* The same for cleanup paths: not checked, codes ignored; NULL is fine. */
void ocl_unmap_quiet(cl_command_queue q, cl_mem m, void *ptr);

/* -------------------------------------------------------------- devices */

/* Every device of every platform in the ICD loader's order (platform by
 * platform, device by device): fills out[0 .. min(max, count) - 1] and
 * returns the count (0 when there is no platform), or -1 with err filled.
 * The backend_ops.probe of opencl_backend. */
int ocl_probe(dev_info *out, int max, char *err, size_t errlen);

/* The device with index `index` of that enumeration and its dev_info.
 * DQO_ENOTFOUND when there are fewer devices. Root devices need no
 * release. */
dqo_status ocl_device_at(int index, cl_device_id *dev, dev_info *info,
                         ocl_err *e);

/* True when the space-separated extension list `exts` names `ext`. */
bool ocl_has_ext(const char *exts, const char *ext);

/* -------------------------------------------------------------- programs */

/* The embedded source of opencl/kernels/<name>.cl, or NULL; static. */
const ocl_kernel_source *ocl_source(const char *name);

/* Build options of every dqo program: OpenCL C 1.2. */
#define OCL_BUILD_OPTIONS "-cl-std=CL1.2"

/* Builds the embedded source `name` for `dev` in `ctx` with `options` (NULL:
 * none). The program (the caller releases it with ocl_release_program), or
 * NULL with `e` filled; a failed compile puts the build log in the text. */
cl_program ocl_build(cl_context ctx, cl_device_id dev, const char *name,
                     const char *options, ocl_err *e);
/* The same for `len` bytes of source `text`, named `label` in messages. */
cl_program ocl_build_source(cl_context ctx, cl_device_id dev, const char *label,
                            const char *text, size_t len, const char *options,
                            ocl_err *e);

/* ----------------------------------------------------------- calibration */

/* What one calibration measures, and how long: sizes in bytes. Sizes are
 * rounded down to what the device allows when the plan runs. */
typedef struct ocl_calib_plan {
    uint64_t buf_bytes; /* the read-bandwidth buffer, which also holds
                           the L2 and DRAM working sets and is the
                           device side of the transfers */
    uint64_t lat_local; /* random-read working sets (powers of two; */
    uint64_t lat_l2;    /* 0 skips that level) */
    uint64_t lat_dram;
    uint64_t lat_reads;      /* random reads per timed run */
    uint64_t atomic_updates; /* atomic adds per timed run, each kind */
    uint64_t xfer_bytes;     /* bytes per transfer */
    int groups_per_cu;       /* work-groups per compute unit */
    int reps;                /* timed runs after one warm-up (median) */
    int launch_reps;         /* empty-kernel launches (median) */
} ocl_calib_plan;

/* Timed runs and launches are capped at these. */
#define OCL_CALIB_MAX_REPS 64
#define OCL_CALIB_MAX_LAUNCHES 1000

/* The plan `calibrate` uses for device `d`: --quick or not, smaller on CPU
 * devices, within max_alloc and a quarter of global memory. */
void ocl_calib_plan_for(const dev_info *d, bool quick, ocl_calib_plan *p);

/* backend_ops.calibrate of opencl_backend: ocl_calibrate_plan with the plan
 * of ocl_calib_plan_for(device, o->quick). `o` may be NULL (defaults). */
dqo_status ocl_calibrate(int dev, const calib_opts *o, plan_calib *out,
                         char *err, size_t errlen);
/* The same with an explicit plan (tests shrink the sizes). */
dqo_status ocl_calibrate_plan(int dev, const calib_opts *o,
                              const ocl_calib_plan *plan, plan_calib *out,
                              char *err, size_t errlen);

#endif /* DQO_OCL_INT_H */
