/*
 * group_hash.c - the host side of hash grouping on an OpenCL device
 * (kernels/group_hash.cl): open addressing with CAS-claimed keys, sized at
 * twice the estimated groups (a power of two, at least 1024 entries), four
 * times larger on each retry after an overflow (the estimate is HyperLogLog
 * and may be low). With few groups the work-groups pre-aggregate in local
 * hash tables first (hash_local).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "opencl/ocl_group.h"

typedef struct hash_state {
    uint64_t entries;
    int64_t empty;
    bool local, narrow;
    uint32_t local_entries;
    size_t local_bytes;
    size_t wg;
    cl_mem tab;
    cl_kernel k;
} hash_state;

/* A key value no input key equals: INT64_MIN unless the keys reach it. */
static bool pick_empty(const ocl_gq *q, int64_t *empty)
{
    const dqo_column_stats *ks = q->in->key_stats;
    if (q->in->key_type != DQO_TYPE_I64 || q->in->rows == 0 ||
        ks->min > INT64_MIN) {
        *empty = INT64_MIN;
        return true;
    }
    if (ks->max < INT64_MAX) {
        *empty = INT64_MAX;
        return true;
    }
    return false;
}

static bool hash_begin(ocl_gq *q)
{
    hash_state *s = mem_calloc(1, sizeof *s);
    if (s == NULL)
        return ocl_errf(q->e, DQO_ENOMEM, "out of memory");
    q->state = s;
    if (!pick_empty(q, &s->empty))
        return ocl_errf(q->e, DQO_EUNSUPPORTED,
                        "the keys span the whole int64 range: no value is "
                        "left to mark free hash entries");
    uint64_t est = q->in->key_stats->distinct;
    if (est > q->in->rows)
        est = q->in->rows;
    const uint64_t want = 2 * (est > 0 ? est : 1);
    s->entries = 1024;
    while (s->entries < want && s->entries < (UINT64_C(1) << 40))
        s->entries *= 2;
    /* Each retry: four times the table that overflowed (never more than
     * one entry per row, which always suffices). */
    for (int a = 0; a < q->attempt && s->entries < 2 * q->in->rows; a++)
        s->entries *= 4;
    q->fixed_bytes = s->entries * (uint64_t)q->tab_e * 8;
    s->wg = ocl_gq_wg(q);
    /* Local tables: LS entries of key + count + aggregates, in 32-bit
     * words where the aggregates allow (group_common.cl, NARROW). */
    const int nw = ocl_gq_narrow_words(q);
    s->narrow = nw > 0;
    const uint64_t per =
        s->narrow ? 8 + (uint64_t)nw * 4 : (uint64_t)(2 + q->nagg) * 8;
    uint64_t ls = 1;
    while (ls * 2 * per <= ocl_gq_local_bytes(q) && ls * 2 <= 4096)
        ls *= 2;
    if (ls >= 64 && 2 * est <= ls && q->attempt == 0) {
        s->local = true;
        s->local_entries = (uint32_t)ls;
        s->local_bytes = (size_t)(ls * per);
    }
    static const char *const names[] = {"group_common", "group_hash", NULL};
    const bool narrow = s->local && s->narrow;
    if (!s->local && ocl_gq_pack(q))
        q->fixed_bytes = s->entries * (uint64_t)q->tab_e * 8;
    if (q->e->status != DQO_OK)
        return false;
    cl_program p = ocl_gq_program(q, names, narrow ? "-DNARROW" : NULL);
    if (p == NULL ||
        (s->k = ocl_gq_kernel(q, p,
                              !s->local  ? (q->packed ? "hash_packed"
                                                      : "hash_global")
                              : narrow ? "hash_local_n"
                                       : "hash_local")) == NULL ||
        (s->tab = ocl_gq_buffer(q, q->fixed_bytes)) == NULL ||
        !ocl_gq_init_table(q, s->tab, s->entries, s->empty))
        return false;
    if (s->local)
        snprintf(q->detail, sizeof q->detail,
                 "%slocal hash tables of %u entries, then a global table of "
                 "%" PRIu64,
                 narrow ? "32-bit " : "", s->local_entries, s->entries);
    else
        snprintf(q->detail, sizeof q->detail,
                 "global table of %" PRIu64 " entries%s%s", s->entries,
                 q->packed ? ", COUNT and SUM packed in one word" : "",
                 q->attempt > 0 ? " (retried)" : "");
    return true;
}

static bool hash_chunk(ocl_gq *q, const ocl_chunk *c)
{
    hash_state *s = q->state;
    int a = ocl_gq_set_input(q, s->k, c);
    if (a < 0 || !ocl_gq_arg_mem(q, s->k, a, s->tab) ||
        !ocl_gq_arg_u64(q, s->k, a + 1, s->entries - 1) ||
        !ocl_gq_arg_i64(q, s->k, a + 2, s->empty))
        return false;
    if (s->local &&
        (!ocl_gq_arg_int(q, s->k, a + 3, (int)s->local_entries) ||
         !ocl_gq_arg_local(q, s->k, a + 4, s->local_bytes)))
        return false;
    const size_t groups = ocl_gq_groups(q, c->rows, s->wg);
    return ocl_gq_run(q, s->k, groups * s->wg, s->wg);
}

static bool hash_finish(ocl_gq *q, grp_output *out)
{
    hash_state *s = q->state;
    return ocl_gq_table_out(q, s->tab, s->entries, 0, out);
}

static void hash_end(ocl_gq *q)
{
    hash_state *s = q->state;
    if (s == NULL)
        return;
    ocl_release_kernel(s->k);
    ocl_release_mem(s->tab);
    mem_free(s);
    q->state = NULL;
}

const ocl_family ocl_family_hash = {
    .name = "hash",
    .keyed = true,
    .begin = hash_begin,
    .chunk = hash_chunk,
    .finish = hash_finish,
    .end = hash_end,
};
