/* group_stub.c - placeholders until the radix, sort and order families
 * land (they answer DQO_EUNSUPPORTED). */
#include "opencl/ocl_group.h"

static bool stub_begin(ocl_gq *q)
{
    return ocl_errf(q->e, DQO_EUNSUPPORTED, "the OpenCL %s kernel is not built yet",
                    q->fam->name);
}
static bool stub_chunk(ocl_gq *q, const ocl_chunk *c) { (void)q; (void)c; return false; }
static bool stub_finish(ocl_gq *q, grp_output *o) { (void)q; (void)o; return false; }
static void stub_end(ocl_gq *q) { (void)q; }

const ocl_family ocl_family_radix = {"radix", true, stub_begin, stub_chunk, stub_finish, stub_end};
const ocl_family ocl_family_sort = {"sort", true, stub_begin, stub_chunk, stub_finish, stub_end};
const ocl_family ocl_family_order = {"order", true, stub_begin, stub_chunk, stub_finish, stub_end};
