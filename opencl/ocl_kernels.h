/*
 * ocl_kernels.h - the OpenCL C sources (the .cl files in opencl/kernels), embedded at
 * build time by cmake/embed_cl.cmake (one entry per file, by base name).
 */
#ifndef DQO_OCL_KERNELS_H
#define DQO_OCL_KERNELS_H

#include <stddef.h>

typedef struct ocl_kernel_source {
    const char *name; /* file base name: "calibrate" for calibrate.cl */
    const char *text; /* NUL-terminated source */
    size_t len;       /* bytes, without the NUL */
} ocl_kernel_source;

/* Terminated by an entry whose name is NULL. */
extern const ocl_kernel_source ocl_kernel_sources[];
extern const int ocl_kernel_source_count;

#endif /* DQO_OCL_KERNELS_H */
