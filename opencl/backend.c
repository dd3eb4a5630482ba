/*
 * backend.c - the OpenCL back-end's ops table. Until the OpenCL grouping
 * kernels land it only enumerates devices (runtime.c) and calibrates them
 * (calibrate.c); the engine runs every granule on the CPU meanwhile.
 */
#include "opencl/ocl_int.h"

const backend_ops opencl_backend = {
    .name = "opencl",
    .probe = ocl_probe,
    .calibrate = ocl_calibrate,
};
