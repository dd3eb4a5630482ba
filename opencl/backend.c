/*
 * backend.c - the OpenCL back-end's ops table: device enumeration
 * (runtime.c), calibration (calibrate.c), resident columns (column.c) and
 * grouping (group.c with the kernel families in group_*.c).
 */
#include "opencl/ocl_group.h"

static int ocl_col_device(const dev_col *c)
{
    return c != NULL && c->dev != NULL ? c->dev->index : -1;
}

const backend_ops opencl_backend = {
    .name = "opencl",
    .probe = ocl_probe,
    .calibrate = ocl_calibrate,
    .group = ocl_group,
    .col_upload = ocl_col_upload,
    .col_free = ocl_col_free,
    .col_device = ocl_col_device,
    .host_pin = ocl_host_pin,
    .host_unpin = ocl_host_unpin,
    .trim = ocl_dev_trim,
};
