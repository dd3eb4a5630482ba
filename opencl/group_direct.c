/*
 * group_direct.c - the host side of direct (static perfect hash) grouping
 * on an OpenCL device (kernels/group_direct.cl): the key minus the smallest
 * key indexes a table of S = max - min + 1 entries.
 *
 * The mode follows from S and the work-group's local memory L (F = 1 +
 * aggregates words per entry):
 *   lanes   S <= DIRECT_LANES_MAX and F * S * wg * 8 <= L for a work-group
 *           of at least 64 items: private per-lane tables, no atomics;
 *   local   F * S * 8 <= L: R = min(wg / 32, L / (F * S * 8)) copies per
 *           work-group, local atomics;
 *   global  otherwise: global atomics on the table.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "opencl/ocl_group.h"

/* The largest domain for per-lane tables: beyond it the table of one lane
 * leaves too few lanes per work-group. */
#define DIRECT_LANES_MAX 32
/* The largest direct table, in entries (2^28 entries of 16 bytes: 4 GiB). */
#define DIRECT_MAX_ENTRIES (UINT64_C(1) << 28)

typedef enum direct_mode {
    MODE_LANES,
    MODE_LOCAL,
    MODE_NARROW,
    MODE_GLOBAL
} direct_mode;

typedef struct direct_state {
    direct_mode mode;
    uint64_t entries;
    int64_t base;
    size_t wg;
    uint32_t copies;
    size_t local_bytes;
    cl_mem tab;
    cl_kernel k;
} direct_state;

static bool direct_begin(ocl_gq *q)
{
    const dqo_column_stats *ks = q->in->key_stats;
    direct_state *s = mem_calloc(1, sizeof *s);
    if (s == NULL)
        return ocl_errf(q->e, DQO_ENOMEM, "out of memory");
    q->state = s;
    const uint64_t range =
        q->in->rows == 0 ? 1 : (uint64_t)ks->max - (uint64_t)ks->min + 1;
    if (q->in->rows > 0 && (range == 0 || range > DIRECT_MAX_ENTRIES))
        return ocl_errf(q->e, DQO_EUNSUPPORTED,
                        "key range %" PRId64 "..%" PRId64
                        " is too wide for a direct table on the device",
                        ks->min, ks->max);
    s->entries = range;
    s->base = q->in->rows == 0 ? 0 : ks->min;
    q->fixed_bytes = s->entries * (uint64_t)q->tab_e * 8;
    const uint64_t local = ocl_gq_local_bytes(q);
    const uint64_t F = 1 + (uint64_t)q->nagg;
    size_t wg = ocl_gq_wg(q);
    s->mode = MODE_GLOBAL;
    if (s->entries <= DIRECT_LANES_MAX) {
        size_t w = wg;
        while (w > 64 && F * s->entries * w * 8 > local)
            w /= 2;
        if (F * s->entries * w * 8 <= local && (w >= 64 || w == wg)) {
            s->mode = MODE_LANES;
            wg = w;
            s->local_bytes = (size_t)(F * s->entries * w * 8);
        }
    }
    const uint64_t nw = (uint64_t)ocl_gq_narrow_words(q);
    if (s->mode == MODE_GLOBAL && nw > 0 && nw * s->entries * 4 <= local) {
        uint64_t r = local / (nw * s->entries * 4);
        uint64_t most = wg / 32 > 0 ? wg / 32 : 1;
        s->copies = (uint32_t)(r < most ? r : most);
        s->mode = MODE_NARROW;
        s->local_bytes = (size_t)(nw * s->entries * s->copies * 4);
    }
    if (s->mode == MODE_GLOBAL && F * s->entries * 8 <= local) {
        uint64_t r = local / (F * s->entries * 8);
        uint64_t most = wg / 32 > 0 ? wg / 32 : 1;
        s->copies = (uint32_t)(r < most ? r : most);
        s->mode = MODE_LOCAL;
        s->local_bytes = (size_t)(F * s->entries * s->copies * 8);
    }
    s->wg = wg;
    /* Global atomics: COUNT(*) + SUM in one word where the shape allows. */
    if (s->mode == MODE_GLOBAL && ocl_gq_pack(q))
        q->fixed_bytes = s->entries * (uint64_t)q->tab_e * 8;
    if (q->e->status != DQO_OK)
        return false;
    static const char *const names[] = {"group_common", "group_direct", NULL};
    cl_program p =
        ocl_gq_program(q, names, s->mode == MODE_NARROW ? "-DNARROW" : NULL);
    if (p == NULL)
        return false;
    const char *kn = s->mode == MODE_LANES    ? "direct_lanes"
                     : s->mode == MODE_LOCAL  ? "direct_local"
                     : s->mode == MODE_NARROW ? "direct_local_n"
                     : q->packed              ? "direct_packed"
                                              : "direct_global";
    if ((s->k = ocl_gq_kernel(q, p, kn)) == NULL)
        return false;
    if ((s->tab = ocl_gq_buffer(q, q->fixed_bytes)) == NULL)
        return false;
    if (!ocl_gq_init_table(q, s->tab, s->entries, 0))
        return false;
    if (s->mode == MODE_LANES)
        snprintf(q->detail, sizeof q->detail,
                 "per-lane local tables (%" PRIu64 " entries x %zu lanes)",
                 s->entries, s->wg);
    else if (s->mode == MODE_LOCAL || s->mode == MODE_NARROW)
        snprintf(q->detail, sizeof q->detail,
                 "%slocal tables x%u per work-group (%" PRIu64 " entries)",
                 s->mode == MODE_NARROW ? "32-bit " : "", s->copies,
                 s->entries);
    else
        snprintf(q->detail, sizeof q->detail,
                 "global atomics%s (%" PRIu64 " entries)",
                 q->packed ? ", COUNT and SUM packed in one word" : "",
                 s->entries);
    return true;
}

static bool direct_chunk(ocl_gq *q, const ocl_chunk *c)
{
    direct_state *s = q->state;
    int a = ocl_gq_set_input(q, s->k, c);
    if (a < 0 || !ocl_gq_arg_mem(q, s->k, a, s->tab) ||
        !ocl_gq_arg_i64(q, s->k, a + 1, s->base))
        return false;
    a += 2;
    if ((s->mode == MODE_LOCAL || s->mode == MODE_NARROW) &&
        (!ocl_gq_arg_int(q, s->k, a, (int)s->entries) ||
         !ocl_gq_arg_int(q, s->k, a + 1, (int)s->copies) ||
         !ocl_gq_arg_local(q, s->k, a + 2, s->local_bytes)))
        return false;
    if (s->mode == MODE_LANES &&
        (!ocl_gq_arg_int(q, s->k, a, (int)s->entries) ||
         !ocl_gq_arg_local(q, s->k, a + 1, s->local_bytes)))
        return false;
    const size_t groups = ocl_gq_groups(q, c->rows, s->wg);
    return ocl_gq_run(q, s->k, groups * s->wg, s->wg);
}

static bool direct_finish(ocl_gq *q, grp_output *out)
{
    direct_state *s = q->state;
    return ocl_gq_table_out(q, s->tab, s->entries, s->base, out);
}

static void direct_end(ocl_gq *q)
{
    direct_state *s = q->state;
    if (s == NULL)
        return;
    ocl_release_kernel(s->k);
    ocl_release_mem(s->tab);
    mem_free(s);
    q->state = NULL;
}

const ocl_family ocl_family_direct = {
    .name = "direct",
    .keyed = false,
    .begin = direct_begin,
    .chunk = direct_chunk,
    .finish = direct_finish,
    .end = direct_end,
};
