/*
 * column.c - columns resident in a device's memory (dev_col): uploaded
 * once, used by every query on that device until freed. A column larger
 * than the device's largest allocation (or than a quarter of dqo's memory
 * budget there) is split into pieces of ocl_piece_rows rows; every column
 * of a device uses the same piece size, so the pieces of a table's columns
 * line up and a query runs piece by piece.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "opencl/ocl_group.h"

uint64_t ocl_piece_rows(const ocl_dev *d)
{
    uint64_t rows = d->max_alloc / 8;
    rows -= rows % 1024;
    return rows > 0 ? rows : 1024;
}

void ocl_col_free(dev_col *c)
{
    if (c == NULL)
        return;
    for (int p = 0; p < c->npieces; p++) {
        ocl_release_mem(c->data[p]);
        ocl_release_mem(c->valid[p]);
    }
    if (c->dev != NULL) {
        const uint64_t bytes =
            c->rows * (uint64_t)(c->width + (c->valid[0] != NULL ? 1 : 0));
        c->dev->resident -= bytes < c->dev->resident ? bytes : c->dev->resident;
        ocl_dev_put(c->dev);
    }
    mem_free(c);
}

static cl_mem upload_piece(ocl_dev *d, const void *src, size_t bytes,
                           ocl_err *e)
{
    cl_mem m = OCL_MAKE(e, clCreateBuffer, d->ctx, CL_MEM_READ_ONLY,
                        bytes > 0 ? bytes : 16, NULL);
    if (m != NULL && bytes > 0 &&
        !OCL_CALL(e, clEnqueueWriteBuffer, d->xfer, m, CL_TRUE, 0, bytes, src,
                  0, NULL, NULL)) {
        ocl_release_mem(m);
        return NULL;
    }
    return m;
}

dqo_status ocl_col_upload(int dev, const void *data, size_t width,
                          const uint8_t *valid, uint64_t rows, dev_col **out,
                          char *err, size_t errlen)
{
    ocl_err e = ocl_err_init(err, errlen);
    *out = NULL;
    if (width == 0 || width > 8 || (rows > 0 && data == NULL)) {
        ocl_errf(&e, DQO_EINVAL, "ocl_col_upload: bad column");
        return e.status;
    }
    dev_col *c = mem_calloc(1, sizeof *c);
    if (c == NULL) {
        ocl_errf(&e, DQO_ENOMEM, "out of memory");
        return e.status;
    }
    ocl_dev *d = ocl_dev_get(dev, &e);
    if (d == NULL) {
        mem_free(c);
        return e.status;
    }
    c->dev = d;
    c->width = width;
    c->rows = rows;
    c->piece_rows = ocl_piece_rows(d);
    const uint64_t bytes = rows * (uint64_t)(width + (valid != NULL ? 1 : 0));
    uint64_t pieces = rows == 0 ? 1 : (rows + c->piece_rows - 1) / c->piece_rows;
    if (d->resident + bytes > d->budget) {
        ocl_errf(&e, DQO_ENOMEM,
                 "a %" PRIu64 "-byte column does not fit OpenCL device "
                 "cl:%d's memory budget (%" PRIu64 " bytes, %" PRIu64
                 " already resident)",
                 bytes, dev, d->budget, d->resident);
        goto fail;
    }
    if (pieces > OCL_MAX_PIECES) {
        ocl_errf(&e, DQO_EUNSUPPORTED,
                 "a column of %" PRIu64 " rows needs %" PRIu64
                 " pieces on OpenCL device cl:%d (at most %d)",
                 rows, pieces, dev, OCL_MAX_PIECES);
        goto fail;
    }
    for (uint64_t p = 0; p < pieces; p++) {
        const uint64_t first = p * c->piece_rows;
        const uint64_t n = rows - first < c->piece_rows ? rows - first
                                                         : c->piece_rows;
        c->npieces = (int)p + 1;
        c->data[p] = upload_piece(d, (const char *)data + first * width,
                                  (size_t)(n * width), &e);
        if (c->data[p] == NULL)
            goto fail;
        if (valid != NULL &&
            (c->valid[p] = upload_piece(d, valid + first, (size_t)n, &e)) ==
                NULL)
            goto fail;
    }
    d->resident += bytes;
    *out = c;
    return DQO_OK;
fail:
    c->rows = 0; /* nothing was added to d->resident */
    ocl_col_free(c);
    return e.status;
}

/* ------------------------------------------------- pinned host columns */

/* Page-locked host memory of a device's context (CL_MEM_ALLOC_HOST_PTR,
 * mapped for the buffer's life). A column kept there streams to the device
 * by DMA straight from its own pages: no staging copy. Registered per
 * device so that the streaming code can recognise such a column by its
 * address (ocl_pinned_range). */
typedef struct ocl_pin {
    ocl_dev *dev;
    cl_mem buf;
    char *ptr;
    size_t bytes;
    struct ocl_pin *next;
} ocl_pin;

static pthread_mutex_t pins_lock = PTHREAD_MUTEX_INITIALIZER;
static ocl_pin *pins;

dqo_status ocl_host_pin(int dev, size_t bytes, void **ptr, void **handle,
                        char *err, size_t errlen)
{
    ocl_err e = ocl_err_init(err, errlen);
    *ptr = *handle = NULL;
    ocl_pin *p = mem_calloc(1, sizeof *p);
    if (p == NULL) {
        ocl_errf(&e, DQO_ENOMEM, "out of memory");
        return e.status;
    }
    if ((p->dev = ocl_dev_get(dev, &e)) == NULL) {
        mem_free(p);
        return e.status;
    }
    p->bytes = bytes > 0 ? bytes : 8;
    p->buf = OCL_MAKE(&e, clCreateBuffer, p->dev->ctx,
                      CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, p->bytes,
                      NULL);
    if (p->buf != NULL)
        p->ptr = ocl_map(&e, p->dev->q, p->buf, p->bytes);
    if (p->ptr == NULL) {
        ocl_release_mem(p->buf);
        ocl_dev_put(p->dev);
        mem_free(p);
        return e.status;
    }
    pthread_mutex_lock(&pins_lock);
    p->next = pins;
    pins = p;
    pthread_mutex_unlock(&pins_lock);
    *ptr = p->ptr;
    *handle = p;
    return DQO_OK;
}

void ocl_host_unpin(void *handle)
{
    ocl_pin *p = handle;
    if (p == NULL)
        return;
    pthread_mutex_lock(&pins_lock);
    for (ocl_pin **at = &pins; *at != NULL; at = &(*at)->next)
        if (*at == p) {
            *at = p->next;
            break;
        }
    pthread_mutex_unlock(&pins_lock);
    ocl_unmap_quiet(p->dev->q, p->buf, p->ptr);
    ocl_release_mem(p->buf);
    ocl_dev_put(p->dev);
    mem_free(p);
}

bool ocl_pinned_range(const ocl_dev *d, const void *ptr, size_t bytes)
{
    const char *c = ptr;
    bool found = false;
    pthread_mutex_lock(&pins_lock);
    for (const ocl_pin *p = pins; p != NULL && !found; p = p->next)
        found = p->dev == d && c >= p->ptr && c + bytes <= p->ptr + p->bytes;
    pthread_mutex_unlock(&pins_lock);
    return found;
}
