/*
 * group_hash.c - hash grouping (HG): an open-addressing hash table with
 * linear probing and columnar accumulators beside it.
 *
 * The planner selects it when the keys are neither dense (no direct array)
 * nor clustered (no order-based grouping) and the estimated groups are few
 * enough that one table is cheaper than radix partitioning. It costs one
 * pass over the input with a hash and a probe per row.
 *
 * Two tables. When every key offset (key - min) fits in 32 bits (u32 and
 * i32 keys always, i64 keys of a narrow range), the private tables are
 * "small tables" (hsmall below): 8-byte slots holding the 32-bit offset and
 * a dense group id, at a load of 1/8 to 1/4, hashed with the 32-bit Murmur3
 * finaliser (vectorised, one chunk at a time); the probe compares the home
 * slot and the next one with a select, so only keys displaced by two or
 * more slots (about 1% of rows) take a branch. Accumulators are indexed by
 * group id; COUNT(*) with one SUM (or COUNT) of a 32-bit column without
 * NULLs runs a fused loop, with 8 interleaved lanes for few groups. Memory:
 * 4 to 8 slots of 8 bytes per group, plus 8 + 8 * (1 + naggs) bytes per
 * group (and 16 * 8 for the lanes). Otherwise (wide i64 keys, and the
 * shared table) slots hold 64-bit offsets, hashed with the Murmur3 64-bit
 * finaliser (the paper's HG hash function), at a load <= 0.5 at the
 * estimate: 2 * groups * (8 + 8 + 8 * naggs) bytes per table. A private
 * table grows (doubling) when its load passes its limit.
 *
 * Parallel modes. When a table for the estimated groups fits in half of a
 * core's L2, every thread fills a private table over its block of rows; the
 * tables are then merged in parallel by hash: each merger owns the keys whose
 * hash has its low bits, so mergers never share a key. Above that size one
 * table is shared: a key slot is claimed with compare-and-swap and the
 * accumulators use atomic updates. The shared table cannot grow, so it is
 * sized from the estimate (2x, and never beyond 2x the rows); should the
 * estimate be wrong and the table fill past 3/4, the threads stop and the
 * query reruns through radix partitioning, whose per-partition tables grow.
 * Correctness never depends on the estimate.
 *
 * Output groups come in hash-table order (one thread, small table: in order
 * of first appearance). Reference: the DQO paper, Section 5.1 (HG); the
 * table is the one that paper's footnote 2 compares against
 * std::unordered_map, with open addressing instead of chaining.
 */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cpu/cpu_int.h"

/* Grow a private table when its load passes 7/10: linear probing's expected
 * probe length rises quickly beyond that. */
#define HASH_MAX_LOAD_NUM 7
#define HASH_MAX_LOAD_DEN 10

/* Private tables while one of them takes at most 1 / HASH_PRIVATE_L2_SHARE
 * of L2: the input streams through the other half. */
#define HASH_PRIVATE_L2_SHARE 2

/* The largest capacity: slot ids (and slot `cap`) are 32-bit. */
#define HASH_MAX_CAP (UINT64_C(1) << 31)

#define HASH_KEY_TYPES(X)                                                      \
    X(u32, uint32_t)                                                           \
    X(i32, int32_t)                                                            \
    X(i64, int64_t)

static inline uint64_t hash_pow2_at_least(uint64_t x)
{
    uint64_t c = 1;
    while (c < x && c < (UINT64_C(1) << 62))
        c <<= 1;
    return c;
}

static inline uint64_t hash_home(uint64_t off, int shift, uint64_t mask)
{
    return (cpu_hash64(off) >> shift) & mask;
}

/* --------------------------------------------------- the private table */

/* Allocates a table of `cap` slots; with `init` its slots are emptied too,
 * else the first cpu_htab_clear does that (in the thread that will use the
 * table, so that its pages are placed by first touch on that thread's NUMA
 * node). */
static dqo_status htab_alloc(cpu_htab *h, const grp_input *in, int64_t base,
                             int shift, uint64_t cap, bool init)
{
    memset(h, 0, sizeof *h);
    if (cap > HASH_MAX_CAP)
        return DQO_ENOMEM;
    h->cap = cap;
    h->limit = cap / HASH_MAX_LOAD_DEN * HASH_MAX_LOAD_NUM +
               cap % HASH_MAX_LOAD_DEN * HASH_MAX_LOAD_NUM / HASH_MAX_LOAD_DEN;
    h->shift = shift;
    h->base = base;
    h->offs = mem_alloc(cap * sizeof *h->offs);
    if (h->offs == NULL)
        return DQO_ENOMEM;
    dqo_status st = agg_table_alloc(&h->acc, in, cap + 1);
    if (st != DQO_OK) {
        mem_free(h->offs);
        h->offs = NULL;
        return st;
    }
    if (init)
        cpu_htab_clear(h, in, base);
    return DQO_OK;
}

static uint64_t htab_cap_for(uint64_t groups)
{
    const uint64_t want = groups > HASH_MAX_CAP / 2 ? HASH_MAX_CAP : 2 * groups;
    return hash_pow2_at_least(want < 16 ? 16 : want);
}

dqo_status cpu_htab_init(cpu_htab *h, const grp_input *in, int64_t base,
                         int shift, uint64_t groups)
{
    return htab_alloc(h, in, base, shift, htab_cap_for(groups), true);
}

dqo_status cpu_htab_alloc(cpu_htab *h, const grp_input *in, int64_t base,
                          int shift, uint64_t groups)
{
    return htab_alloc(h, in, base, shift, htab_cap_for(groups), false);
}

void cpu_htab_clear(cpu_htab *h, const grp_input *in, int64_t base)
{
    memset(h->offs, 0xff, h->cap * sizeof *h->offs);
    agg_table_reset(&h->acc, in, 0, h->cap + 1);
    h->used = 0;
    h->top_used = false;
    h->base = base;
}

void cpu_htab_free(cpu_htab *h, const grp_input *in)
{
    mem_free(h->offs);
    agg_table_free(&h->acc, in);
    memset(h, 0, sizeof *h);
}

/* The slot of offset `off`, inserting it; the caller made sure that
 * used < limit, so an empty slot exists. */
static inline uint64_t htab_find_or_insert(cpu_htab *h, uint64_t off)
{
    const uint64_t mask = h->cap - 1;
    uint64_t i = hash_home(off, h->shift, mask);
    for (;;) {
        const uint64_t o = h->offs[i];
        if (o == off)
            return i;
        if (o == CPU_HTAB_EMPTY) {
            h->offs[i] = off;
            h->used++;
            return i;
        }
        i = (i + 1) & mask;
    }
}

/* Doubles the capacity, moving every group (a rare path: one call per group
 * is fine here). */
static dqo_status htab_grow(cpu_htab *h, const grp_input *in)
{
    cpu_htab n;
    dqo_status st = htab_alloc(&n, in, h->base, h->shift, h->cap * 2, true);
    if (st != DQO_OK)
        return st;
    for (uint64_t i = 0; i < h->cap; i++) {
        const uint64_t off = h->offs[i];
        if (off == CPU_HTAB_EMPTY)
            continue;
        const uint64_t j = htab_find_or_insert(&n, off);
        agg_merge_range(&n.acc, j, &h->acc, i, 1, in, NULL);
    }
    agg_merge_range(&n.acc, n.cap, &h->acc, h->cap, 1, in, NULL);
    n.top_used = h->top_used;
    cpu_htab_free(h, in);
    *h = n;
    return DQO_OK;
}

/* Slots for rows [row0, row0 + n); stops before the first row that would
 * insert past the load limit and returns how many rows got a slot. */
#define HASH_DEFINE_PROBE(kt, K)                                               \
    static uint32_t htab_probe_##kt(cpu_htab *h, const K *restrict k,          \
                                    uint64_t row0, uint32_t n,                 \
                                    uint32_t *restrict slots)                  \
    {                                                                          \
        uint64_t *restrict offs = h->offs;                                     \
        const uint64_t mask = h->cap - 1, base = (uint64_t)h->base;            \
        const uint64_t limit = h->limit;                                       \
        const int shift = h->shift;                                            \
        uint64_t used = h->used;                                               \
        uint32_t j;                                                            \
        for (j = 0; j < n; j++) {                                              \
            const uint64_t off = (uint64_t)(int64_t)k[row0 + j] - base;        \
            if (off == CPU_HTAB_EMPTY) {                                       \
                h->top_used = true;                                            \
                slots[j] = (uint32_t)h->cap;                                   \
                continue;                                                      \
            }                                                                  \
            uint64_t i = hash_home(off, shift, mask);                          \
            for (;;) {                                                         \
                const uint64_t o = offs[i];                                    \
                if (o == off)                                                  \
                    break;                                                     \
                if (o == CPU_HTAB_EMPTY) {                                     \
                    if (used >= limit)                                         \
                        goto full;                                             \
                    offs[i] = off;                                             \
                    used++;                                                    \
                    break;                                                     \
                }                                                              \
                i = (i + 1) & mask;                                            \
            }                                                                  \
            slots[j] = (uint32_t)i;                                            \
        }                                                                      \
    full:                                                                      \
        h->used = used;                                                        \
        return j;                                                              \
    }
HASH_KEY_TYPES(HASH_DEFINE_PROBE)

static uint32_t htab_probe(cpu_htab *h, const grp_input *in, uint64_t row0,
                           uint32_t n, uint32_t *slots)
{
    switch (in->key_type) {
    case DQO_TYPE_U32: return htab_probe_u32(h, in->keys, row0, n, slots);
    case DQO_TYPE_I32: return htab_probe_i32(h, in->keys, row0, n, slots);
    default: return htab_probe_i64(h, in->keys, row0, n, slots);
    }
}

dqo_status cpu_htab_add(cpu_htab *h, const grp_input *in, uint64_t lo,
                        uint64_t hi, agg_flags *f)
{
    uint32_t slots[AGG_CHUNK];
    uint64_t r = lo;
    while (r < hi) {
        const uint32_t n = (uint32_t)(hi - r < AGG_CHUNK ? hi - r : AGG_CHUNK);
        const uint32_t done = htab_probe(h, in, r, n, slots);
        if (done > 0)
            agg_update(&h->acc, in, slots, r, done, f);
        r += done;
        if (done < n) {
            dqo_status st = htab_grow(h, in);
            if (st != DQO_OK)
                return st;
        }
    }
    return DQO_OK;
}

/* Emits the occupied slots of [lo, hi) at pos; returns how many. */
static uint64_t htab_emit_range(const uint64_t *restrict offs,
                                const agg_table *acc, int64_t base,
                                const grp_input *in, grp_output *out,
                                uint64_t pos, uint64_t lo, uint64_t hi)
{
    uint64_t p = pos;
    for (uint64_t i = lo; i < hi; i++)
        if (offs[i] != CPU_HTAB_EMPTY)
            out->keys[p++] = (int64_t)((uint64_t)base + offs[i]);
    p = pos;
    for (uint64_t i = lo; i < hi; i++)
        if (offs[i] != CPU_HTAB_EMPTY)
            out->count[p++] = acc->count[i];
    for (int a = 0; a < in->naggs; a++) {
        const int64_t *restrict src = acc->acc[a];
        int64_t *restrict dst = out->acc[a];
        p = pos;
        for (uint64_t i = lo; i < hi; i++)
            if (offs[i] != CPU_HTAB_EMPTY)
                dst[p++] = src[i];
    }
    return p - pos;
}

static void htab_emit_top(const agg_table *acc, uint64_t slot, int64_t base,
                          const grp_input *in, grp_output *out, uint64_t pos)
{
    out->keys[pos] = (int64_t)((uint64_t)base + CPU_HTAB_EMPTY);
    agg_emit_range(out, pos, acc, slot, 1, in);
}

void cpu_htab_emit(const cpu_htab *h, const grp_input *in, grp_output *out,
                   uint64_t pos)
{
    pos += htab_emit_range(h->offs, &h->acc, h->base, in, out, pos, 0, h->cap);
    if (h->top_used)
        htab_emit_top(&h->acc, h->cap, h->base, in, out, pos);
}

/* ------------------------------------- small tables with dense group ids
 *
 * The private tables of HG when every key offset (key - min) fits in 32
 * bits (u32 and i32 keys always; i64 keys of a narrow range). A slot is one
 * 64-bit word, the key offset in its low half and the group id in its high
 * half; group ids are dense (0, 1, 2... in order of first appearance), so
 * the accumulators are compact arrays indexed by group id and the table
 * itself holds only 8 bytes per slot, at a load of at most 1/2 (1/8 to 1/4
 * at the estimate).
 *
 * A chunk is done in three tight loops: the hash of every key (32-bit
 * Murmur3 finaliser, vectorised by the compiler), then the probe, then the
 * aggregates. The probe reads the home slot and compares its key half:
 * a free slot holds, as its key half, a marker whose own home is another
 * slot, so that one compare and one well-predicted branch settle every row
 * whose key sits in its home slot (almost all of them at this load); only
 * displaced keys and new keys take the probing loop.
 *
 * COUNT(*) with at most one COUNT or one SUM of a 32-bit column without
 * NULLs (the paper's experiment) runs a fused loop over (count, sum) pairs;
 * for few groups the pairs come in HSM_LANES interleaved copies (row j
 * updates copy j % HSM_LANES), folded at the end, so that runs of one key
 * do not serialise on store-to-load forwarding (see group_direct.c). Other
 * aggregates go through agg_update with the group ids as slots.
 */

#define HSM_EMPTY_GID UINT32_MAX
#define HSM_LANES 8 /* the fused loop is unrolled for 8 */
/* Lanes while HSM_LANES copies of the estimated groups' pairs take at most
 * 1 / HSM_LANES_L1_SHARE of L1d. */
#define HSM_LANES_L1_SHARE 2
/* Slots per estimated group (a power of two): a low load keeps nearly
 * every key in its home slot. */
#define HSM_SLOTS_PER_GROUP 4

typedef struct hsmall {
    uint64_t cap;     /* slots, a power of two */
    uint32_t gcap;    /* groups before the table grows: cap / 2 */
    uint32_t groups;  /* groups so far */
    uint32_t lanes;   /* copies of the pairs: 1 or HSM_LANES */
    bool fused;       /* pairs instead of agg_update */
    uint64_t base;    /* offset = key - base */
    uint64_t *slot;   /* cap + 1 slots: offset | gid << 32 */
    uint64_t *gkey;   /* gcap: the offset of each group */
    agg_table acc;    /* gcap slots, indexed by group id */
    int64_t *pair;    /* fused: gcap * lanes (count, sum) pairs */
} hsmall;

static inline uint32_t hsm_hash(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x85ebca6bU;
    x ^= x >> 13;
    x *= 0xc2b2ae35U;
    x ^= x >> 16;
    return x;
}

/* True when hsmall can group `in`: key offsets fit in 32 bits. */
static bool hsm_applies(const grp_input *in)
{
    const dqo_column_stats *s = in->key_stats;
    return s->max >= s->min &&
           (uint64_t)s->max - (uint64_t)s->min <= UINT32_MAX;
}

/* Fills slots [0, cap] as free: gid HSM_EMPTY_GID and, as key half, a
 * marker that no key probed there can equal. The probe compares a key
 * whose home is h with the key halves of slots h and h + 1, so the marker
 * of slot i must have its home neither at i nor at i - 1: of three
 * candidates with three different homes one always fits. Slot cap mirrors
 * slot 0 (the probe reads slot h + 1 without a mask). */
static void hsm_fill_free(uint64_t *slot, uint64_t cap)
{
    const uint32_t mask = (uint32_t)(cap - 1);
    uint32_t m[3], h[3];
    uint32_t x = 0;
    for (int c = 0; c < 3; c++) {
        for (;; x++) {
            const uint32_t hx = hsm_hash(x) & mask;
            bool fresh = true;
            for (int d = 0; d < c; d++)
                fresh = fresh && h[d] != hx;
            if (fresh)
                break;
        }
        m[c] = x;
        h[c] = hsm_hash(x) & mask;
        x++;
    }
    for (uint64_t i = 0; i < cap; i++) {
        const uint32_t prev = (uint32_t)((i - 1) & mask);
        int c = 0;
        while (h[c] == (uint32_t)i || h[c] == prev)
            c++;
        slot[i] = (uint64_t)HSM_EMPTY_GID << 32 | m[c];
    }
    slot[cap] = slot[0];
}

static inline bool hsm_free(uint64_t e)
{
    return (uint32_t)(e >> 32) == HSM_EMPTY_GID;
}

/* Puts group g (offset off) into its slot; the key is not in the table. */
static inline void hsm_place(uint64_t *slot, uint64_t cap, uint32_t off,
                             uint32_t g)
{
    const uint32_t mask = (uint32_t)(cap - 1);
    uint32_t i = hsm_hash(off) & mask;
    while (!hsm_free(slot[i]))
        i = (i + 1) & mask;
    slot[i] = (uint64_t)g << 32 | off;
    if (i == 0)
        slot[cap] = slot[0];
}

static void hsm_free_all(hsmall *t, const grp_input *in)
{
    mem_free(t->slot);
    mem_free(t->gkey);
    mem_free(t->pair);
    agg_table_free(&t->acc, in);
    memset(t, 0, sizeof *t);
}

/* Allocates a table for about `est` groups, leaving its memory untouched:
 * hsm_reset, in the thread that will fill the table, initialises it, so
 * that its pages land by first touch on that thread's NUMA node. */
static dqo_status hsm_alloc(hsmall *t, const grp_input *in, uint64_t est,
                            const cpu_caches *cc)
{
    memset(t, 0, sizeof *t);
    const uint64_t want = est > HASH_MAX_CAP / HSM_SLOTS_PER_GROUP
                              ? HASH_MAX_CAP
                              : HSM_SLOTS_PER_GROUP * est;
    const uint64_t cap = hash_pow2_at_least(want < 64 ? 64 : want);
    if (cap > HASH_MAX_CAP)
        return DQO_ENOMEM;
    t->cap = cap;
    t->gcap = (uint32_t)(cap / 2);
    t->base = (uint64_t)in->key_stats->min;
    t->fused = agg_fusable_count_sum(in);
    t->lanes = t->fused && est * HSM_LANES * 16 <=
                               cc->l1d / HSM_LANES_L1_SHARE
                   ? HSM_LANES
                   : 1;
    t->slot = mem_alloc((cap + 1) * sizeof *t->slot);
    t->gkey = mem_alloc((uint64_t)t->gcap * sizeof *t->gkey);
    if (t->fused)
        t->pair = mem_alloc((size_t)t->gcap * t->lanes * 2 * sizeof(int64_t));
    dqo_status st = DQO_ENOMEM;
    if (t->slot != NULL && t->gkey != NULL && (!t->fused || t->pair != NULL))
        st = agg_table_alloc(&t->acc, in, t->gcap);
    if (st != DQO_OK) {
        hsm_free_all(t, in);
        return st;
    }
    return DQO_OK;
}

/* Initialises a table from hsm_alloc: every slot free, no groups, pairs
 * and accumulators at their identities. */
static void hsm_reset(hsmall *t, const grp_input *in)
{
    hsm_fill_free(t->slot, t->cap);
    if (t->fused)
        memset(t->pair, 0, (size_t)t->gcap * t->lanes * 2 * sizeof(int64_t));
    agg_table_reset(&t->acc, in, 0, t->gcap);
    t->groups = 0;
}

/* Doubles the table (a rare path). */
static dqo_status hsm_grow(hsmall *t, const grp_input *in)
{
    const uint64_t cap = t->cap * 2;
    if (cap > HASH_MAX_CAP)
        return DQO_ENOMEM;
    const uint32_t gcap = (uint32_t)(cap / 2);
    uint64_t *slot = mem_alloc((cap + 1) * sizeof *slot);
    uint64_t *gkey = mem_alloc((uint64_t)gcap * sizeof *gkey);
    int64_t *pair = NULL;
    agg_table acc;
    memset(&acc, 0, sizeof acc);
    if (t->fused)
        pair = mem_calloc((size_t)gcap * t->lanes * 2, sizeof(int64_t));
    dqo_status st = DQO_ENOMEM;
    if (slot != NULL && gkey != NULL && (!t->fused || pair != NULL))
        st = agg_table_init(&acc, in, gcap);
    if (st != DQO_OK) {
        mem_free(slot);
        mem_free(gkey);
        mem_free(pair);
        return st;
    }
    hsm_fill_free(slot, cap);
    for (uint32_t g = 0; g < t->groups; g++) {
        gkey[g] = t->gkey[g];
        hsm_place(slot, cap, (uint32_t)t->gkey[g], g);
    }
    agg_merge_range(&acc, 0, &t->acc, 0, t->groups, in, NULL);
    if (t->fused)
        memcpy(pair, t->pair,
               (size_t)t->groups * t->lanes * 2 * sizeof(int64_t));
    mem_free(t->slot);
    mem_free(t->gkey);
    mem_free(t->pair);
    agg_table_free(&t->acc, in);
    t->cap = cap;
    t->gcap = gcap;
    t->slot = slot;
    t->gkey = gkey;
    t->pair = pair;
    t->acc = acc;
    return DQO_OK;
}

/* Group ids of rows [row0, row0 + n) into gid[]; stops before the first
 * row whose new group would pass gcap and returns how many rows got one.
 * hh is scratch for the chunk's home slots. */
#define HSM_DEFINE_PROBE(kt, K)                                                \
    static uint32_t hsm_probe_##kt(hsmall *t, const K *restrict k,             \
                                   uint64_t row0, uint32_t n,                  \
                                   uint32_t *restrict hh,                      \
                                   uint32_t *restrict gid)                     \
    {                                                                          \
        const uint64_t base = t->base;                                         \
        const uint32_t mask = (uint32_t)(t->cap - 1);                          \
        k += row0;                                                             \
        for (uint32_t j = 0; j < n; j++)                                       \
            hh[j] = hsm_hash((uint32_t)((uint64_t)(int64_t)k[j] - base)) &     \
                    mask;                                                      \
        uint64_t *slot = t->slot;                                              \
        uint64_t *gkey = t->gkey;                                              \
        uint32_t groups = t->groups;                                           \
        const uint32_t gcap = t->gcap;                                         \
        uint32_t j;                                                            \
        for (j = 0; j < n; j++) {                                              \
            const uint32_t off = (uint32_t)((uint64_t)(int64_t)k[j] - base);   \
            uint32_t i = hh[j];                                                \
            uint64_t e = slot[i];                                              \
            const uint64_t e1 = slot[i + 1];                                   \
            /* A select, not a branch: keys one slot off their home are    \
             * common enough to mispredict. */                               \
            const uint64_t m0 = (uint64_t)0 - ((uint32_t)e == off);            \
            const uint64_t sel = (e & m0) | (e1 & ~m0);                        \
            if (__builtin_expect((uint32_t)sel == off, 1)) {                   \
                gid[j] = (uint32_t)(sel >> 32);                                \
                continue;                                                      \
            }                                                                  \
            for (;;) {                                                         \
                if (hsm_free(e)) {                                             \
                    if (groups >= gcap)                                        \
                        goto full;                                             \
                    slot[i] = (uint64_t)groups << 32 | off;                    \
                    if (i == 0)                                                \
                        slot[mask + 1] = slot[0];                              \
                    gkey[groups] = off;                                        \
                    gid[j] = groups++;                                         \
                    break;                                                     \
                }                                                              \
                if ((uint32_t)e == off) {                                      \
                    gid[j] = (uint32_t)(e >> 32);                              \
                    break;                                                     \
                }                                                              \
                i = (i + 1) & mask;                                            \
                e = slot[i];                                                   \
            }                                                                  \
        }                                                                      \
    full:                                                                      \
        t->groups = groups;                                                    \
        return j;                                                              \
    }
HASH_KEY_TYPES(HSM_DEFINE_PROBE)

static uint32_t hsm_probe(hsmall *t, const grp_input *in, uint64_t row0,
                          uint32_t n, uint32_t *hh, uint32_t *gid)
{
    switch (in->key_type) {
    case DQO_TYPE_U32: return hsm_probe_u32(t, in->keys, row0, n, hh, gid);
    case DQO_TYPE_I32: return hsm_probe_i32(t, in->keys, row0, n, hh, gid);
    default: return hsm_probe_i64(t, in->keys, row0, n, hh, gid);
    }
}

/* The fused update: pair[2 * (gid * L + j % L)] counts and the next word
 * sums (v == NULL: counts only), L = HSM_LANES or 1. */
#define HSM_PAIR_(l, sh, lane)                                                 \
    do {                                                                       \
        int64_t *p_ = pair + ((uint64_t)gid[j + (l)] << (sh)) + 2 * (lane);    \
        p_[0]++;                                                               \
        if (v != NULL)                                                         \
            p_[1] += v[j + (l)];                                               \
    } while (0)
#define HSM_DEFINE_FUSED(vt, V)                                                \
    static void hsm_fused_##vt(int64_t *restrict pair, uint32_t lanes,         \
                               const uint32_t *restrict gid,                   \
                               const V *restrict v, uint32_t n)                \
    {                                                                          \
        uint32_t j = 0;                                                        \
        if (lanes == HSM_LANES) {                                              \
            for (; j + 8 <= n; j += 8) {                                       \
                HSM_PAIR_(0, 4, 0);                                            \
                HSM_PAIR_(1, 4, 1);                                            \
                HSM_PAIR_(2, 4, 2);                                            \
                HSM_PAIR_(3, 4, 3);                                            \
                HSM_PAIR_(4, 4, 4);                                            \
                HSM_PAIR_(5, 4, 5);                                            \
                HSM_PAIR_(6, 4, 6);                                            \
                HSM_PAIR_(7, 4, 7);                                            \
            }                                                                  \
            for (; j < n; j++)                                                 \
                HSM_PAIR_(0, 4, 0);                                            \
            return;                                                            \
        }                                                                      \
        for (; j < n; j++)                                                     \
            HSM_PAIR_(0, 1, 0);                                                \
    }
HSM_DEFINE_FUSED(i32, int32_t)
HSM_DEFINE_FUSED(u32, uint32_t)

static void hsm_update(hsmall *t, const grp_input *in, const uint32_t *gid,
                       uint64_t row0, uint32_t n, agg_flags *f)
{
    if (!t->fused) {
        agg_update(&t->acc, in, gid, row0, n, f);
        return;
    }
    const grp_agg *a = in->naggs == 1 ? &in->aggs[0] : NULL;
    if (a == NULL || a->op != AGG_OP_SUM)
        hsm_fused_i32(t->pair, t->lanes, gid, NULL, n);
    else if (a->type == DQO_TYPE_U32)
        hsm_fused_u32(t->pair, t->lanes, gid, (const uint32_t *)a->data + row0,
                      n);
    else
        hsm_fused_i32(t->pair, t->lanes, gid, (const int32_t *)a->data + row0,
                      n);
}

/* Folds the fused pairs (and their lanes) into t->acc. */
static void hsm_fold(hsmall *t, const grp_input *in)
{
    if (!t->fused)
        return;
    const grp_agg *a = in->naggs == 1 ? &in->aggs[0] : NULL;
    int64_t *restrict acc = a != NULL ? t->acc.acc[0] : NULL;
    const bool sum = a != NULL && a->op == AGG_OP_SUM;
    const uint32_t L = t->lanes;
    for (uint32_t g = 0; g < t->groups; g++) {
        int64_t c = 0, s = 0;
        for (uint32_t l = 0; l < L; l++) {
            c += t->pair[2 * ((uint64_t)g * L + l)];
            s += t->pair[2 * ((uint64_t)g * L + l) + 1];
        }
        t->acc.count[g] = c;
        if (acc != NULL)
            acc[g] = sum ? s : c;
    }
}

/* Groups rows [lo, hi) into t, growing it as needed, then folds. */
static dqo_status hsm_add(hsmall *t, const grp_input *in, uint64_t lo,
                          uint64_t hi, agg_flags *f)
{
    uint32_t hh[AGG_CHUNK], gid[AGG_CHUNK];
    uint64_t r = lo;
    while (r < hi) {
        const uint32_t n = (uint32_t)(hi - r < AGG_CHUNK ? hi - r : AGG_CHUNK);
        const uint32_t done = hsm_probe(t, in, r, n, hh, gid);
        if (done > 0)
            hsm_update(t, in, gid, r, done, f);
        r += done;
        if (done < n) {
            dqo_status st = hsm_grow(t, in);
            if (st != DQO_OK)
                return st;
        }
    }
    hsm_fold(t, in);
    return DQO_OK;
}

/* ------------------------------------------------ thread-private tables */

static void hash_note_flags(grp_output *out, const agg_flags *f)
{
    if (f->overflow_agg >= 0 &&
        (!out->overflow || f->overflow_agg < out->overflow_agg)) {
        out->overflow = true;
        out->overflow_agg = f->overflow_agg;
    }
}

/* One thread's table as the merge sees it: keys[i] (offsets from the key
 * minimum; CPU_HTAB_EMPTY entries are skipped) has its accumulators in slot
 * i of acc; top: slot top_slot holds the key whose offset is the marker. */
typedef struct hash_src {
    const uint64_t *keys;
    uint64_t n;
    uint64_t groups;
    const agg_table *acc;
    bool top;
    uint64_t top_slot;
} hash_src;

static dqo_status hash_private(const grp_input *in, uint64_t est, int T,
                               grp_output *out)
{
    dqo_status st = DQO_OK;
    const int64_t base = in->key_stats->min;
    const bool small = hsm_applies(in);
    cpu_caches cc;
    cpu_get_caches(&cc);
    /* Mergers: a power of two >= T, each owning hash & (M - 1). */
    int mbits = 0;
    while ((1 << mbits) < T)
        mbits++;
    const int M = T == 1 ? 1 : 1 << mbits;
    cpu_htab *tabs = small ? NULL : mem_calloc((size_t)T, sizeof *tabs);
    hsmall *sm = small ? mem_calloc((size_t)T, sizeof *sm) : NULL;
    hash_src *src = mem_calloc((size_t)T, sizeof *src);
    cpu_htab *mer = mem_calloc((size_t)M, sizeof *mer);
    /* Status and flags per thread, then per merger (M >= T entries). */
    agg_flags *flags = mem_calloc((size_t)M, sizeof *flags);
    dqo_status *tst = mem_calloc((size_t)M, sizeof *tst);
    uint32_t **idx = mem_calloc((size_t)T, sizeof *idx);
    uint64_t *bucket = mem_calloc((size_t)T * (size_t)(M + 1), sizeof *bucket);
    uint64_t *mpos = mem_calloc((size_t)M + 1, sizeof *mpos);
    if ((tabs == NULL && sm == NULL) || src == NULL || mer == NULL ||
        flags == NULL || tst == NULL || idx == NULL || bucket == NULL ||
        mpos == NULL) {
        st = DQO_ENOMEM;
        goto fail;
    }
    for (int m = 0; m < M; m++)
        flags[m].overflow_agg = -1;
    /* The tables are allocated here and initialised by the threads that
     * fill them (first touch on their NUMA nodes). */
    for (int b = 0; b < T; b++) {
        st = small ? hsm_alloc(&sm[b], in, est, &cc)
                   : cpu_htab_alloc(&tabs[b], in, base, 0, est);
        if (st != DQO_OK)
            goto fail;
    }

#pragma omp parallel num_threads(T)
    for (int b = omp_get_thread_num(); b < T; b += omp_get_num_threads()) {
        const uint64_t lo = in->rows * (uint64_t)b / (uint64_t)T;
        const uint64_t hi = in->rows * (uint64_t)(b + 1) / (uint64_t)T;
        if (small) {
            hsm_reset(&sm[b], in);
            tst[b] = hsm_add(&sm[b], in, lo, hi, &flags[b]);
        } else {
            cpu_htab_clear(&tabs[b], in, base);
            tst[b] = cpu_htab_add(&tabs[b], in, lo, hi, &flags[b]);
        }
    }
    for (int b = 0; b < T; b++) {
        if (tst[b] != DQO_OK) {
            st = tst[b];
            goto fail;
        }
        hash_note_flags(out, &flags[b]);
        flags[b].overflow_agg = -1;
        if (small) {
            src[b] = (hash_src){sm[b].gkey, sm[b].groups, sm[b].groups,
                                &sm[b].acc, false, 0};
        } else {
            src[b] = (hash_src){tabs[b].offs, tabs[b].cap, tabs[b].used,
                                &tabs[b].acc, tabs[b].top_used, tabs[b].cap};
        }
    }
    char what[64];
    if (small)
        snprintf(what, sizeof what, "32-bit slots x%u, dense ids%s",
                 (unsigned)sm[0].cap,
                 !sm[0].fused       ? ""
                 : sm[0].lanes > 1 ? ", fused count+sum, 8 lanes"
                                   : ", fused count+sum");
    else
        snprintf(what, sizeof what, "capacity %u", (unsigned)tabs[0].cap);

    if (T == 1) {
        const bool ovf = out->overflow;
        const int ovf_agg = out->overflow_agg;
        st = grp_output_alloc(out, in,
                              small ? sm[0].groups : cpu_htab_groups(&tabs[0]));
        if (st != DQO_OK)
            goto fail;
        out->overflow = ovf;
        out->overflow_agg = ovf ? ovf_agg : -1;
        if (small) {
            for (uint32_t g = 0; g < sm[0].groups; g++)
                out->keys[g] = (int64_t)((uint64_t)base + sm[0].gkey[g]);
            agg_emit_range(out, 0, &sm[0].acc, 0, sm[0].groups, in);
        } else {
            cpu_htab_emit(&tabs[0], in, out, 0);
        }
        snprintf(out->detail, sizeof out->detail,
                 "hg: private table (%s), %llu groups (estimate %llu)", what,
                 (unsigned long long)out->groups, (unsigned long long)est);
        goto done;
    }

    /* Each table's groups, ordered by merger (a counting sort on the low
     * hash bits), so that a merger reads only its own groups. */
    for (int b = 0; b < T; b++) {
        idx[b] = mem_alloc((src[b].groups + 1) * sizeof(uint32_t));
        if (idx[b] == NULL) {
            st = DQO_ENOMEM;
            goto fail;
        }
    }
    for (int m = 0; m < M; m++) {
        const uint64_t per = est / (uint64_t)M + est / (uint64_t)M / 4 + 16;
        st = cpu_htab_alloc(&mer[m], in, base, mbits, per);
        if (st != DQO_OK)
            goto fail;
    }

#pragma omp parallel num_threads(T)
    {
        for (int b = omp_get_thread_num(); b < T; b += omp_get_num_threads()) {
            const hash_src *h = &src[b];
            uint64_t *bk = bucket + (size_t)b * (size_t)(M + 1);
            const uint64_t mmask = (uint64_t)M - 1;
            for (uint64_t i = 0; i < h->n; i++)
                if (h->keys[i] != CPU_HTAB_EMPTY)
                    bk[(cpu_hash64(h->keys[i]) & mmask) + 1]++;
            for (int m = 0; m < M; m++)
                bk[m + 1] += bk[m];
            /* bk[m] now is the start of bucket m; fill, then shift back. */
            for (uint64_t i = 0; i < h->n; i++)
                if (h->keys[i] != CPU_HTAB_EMPTY)
                    idx[b][bk[cpu_hash64(h->keys[i]) & mmask]++] = (uint32_t)i;
            for (int m = M; m > 0; m--)
                bk[m] = bk[m - 1];
            bk[0] = 0;
        }
#pragma omp barrier
#pragma omp for schedule(dynamic, 1)
        for (int m = 0; m < M; m++) {
            cpu_htab *d = &mer[m];
            /* The merger that takes m initialises its table: first touch. */
            cpu_htab_clear(d, in, base);
            agg_flags f = {-1};
            dqo_status ms = DQO_OK;
            for (int b = 0; b < T && ms == DQO_OK; b++) {
                const hash_src *s = &src[b];
                const uint64_t *bk = bucket + (size_t)b * (size_t)(M + 1);
                for (uint64_t e = bk[m]; e < bk[m + 1]; e++) {
                    if (d->used >= d->limit) {
                        ms = htab_grow(d, in);
                        if (ms != DQO_OK)
                            break;
                    }
                    const uint32_t i = idx[b][e];
                    const uint64_t j = htab_find_or_insert(d, s->keys[i]);
                    agg_merge_range(&d->acc, j, s->acc, i, 1, in, &f);
                }
                /* The key whose offset is the empty marker: merger 0. */
                if (m == 0 && s->top) {
                    agg_merge_range(&d->acc, d->cap, s->acc, s->top_slot, 1,
                                    in, &f);
                    d->top_used = true;
                }
            }
            tst[m] = ms;
            flags[m] = f;
        }
    }
    for (int m = 0; m < M; m++) {
        if (tst[m] != DQO_OK) {
            st = tst[m];
            goto fail;
        }
        hash_note_flags(out, &flags[m]);
    }

    for (int m = 0; m < M; m++)
        mpos[m + 1] = mpos[m] + cpu_htab_groups(&mer[m]);
    {
        const bool ovf = out->overflow;
        const int ovf_agg = out->overflow_agg;
        st = grp_output_alloc(out, in, mpos[M]);
        if (st != DQO_OK)
            goto fail;
        out->overflow = ovf;
        out->overflow_agg = ovf ? ovf_agg : -1;
    }
#pragma omp parallel for num_threads(T) schedule(dynamic, 1)
    for (int m = 0; m < M; m++)
        cpu_htab_emit(&mer[m], in, out, mpos[m]);
    snprintf(out->detail, sizeof out->detail,
             "hg: private tables x%d (%s), merged by hash x%d, "
             "%llu groups (estimate %llu)",
             T, what, M, (unsigned long long)out->groups,
             (unsigned long long)est);
    goto done;
fail:
    grp_output_free(out, in->naggs);
    out->overflow_agg = -1;
done:
    if (tabs != NULL)
        for (int b = 0; b < T; b++)
            cpu_htab_free(&tabs[b], in);
    if (sm != NULL)
        for (int b = 0; b < T; b++)
            hsm_free_all(&sm[b], in);
    if (mer != NULL)
        for (int m = 0; m < M; m++)
            cpu_htab_free(&mer[m], in);
    if (idx != NULL)
        for (int b = 0; b < T; b++)
            mem_free(idx[b]);
    mem_free(tabs);
    mem_free(sm);
    mem_free(src);
    mem_free(mer);
    mem_free(flags);
    mem_free(tst);
    mem_free(idx);
    mem_free(bucket);
    mem_free(mpos);
    return st;
}

/* ------------------------------------------------------- shared table */

#define HASH_DEFINE_PROBE_SHARED(kt, K)                                        \
    static uint32_t shared_probe_##kt(uint64_t *restrict offs, uint64_t cap,   \
                                      int64_t kbase, bool *top,                \
                                      const K *restrict k, uint64_t row0,      \
                                      uint32_t n, uint32_t *restrict slots)    \
    {                                                                          \
        const uint64_t mask = cap - 1, base = (uint64_t)kbase;                 \
        uint32_t inserted = 0;                                                 \
        for (uint32_t j = 0; j < n; j++) {                                     \
            const uint64_t off = (uint64_t)(int64_t)k[row0 + j] - base;        \
            if (off == CPU_HTAB_EMPTY) {                                       \
                __atomic_store_n(top, true, __ATOMIC_RELAXED);                 \
                slots[j] = (uint32_t)cap;                                      \
                continue;                                                      \
            }                                                                  \
            uint64_t i = hash_home(off, 0, mask);                              \
            for (;;) {                                                         \
                uint64_t o = __atomic_load_n(&offs[i], __ATOMIC_RELAXED);      \
                if (o == off)                                                  \
                    break;                                                     \
                if (o == CPU_HTAB_EMPTY) {                                     \
                    if (__atomic_compare_exchange_n(&offs[i], &o, off, false,  \
                                                    __ATOMIC_RELAXED,          \
                                                    __ATOMIC_RELAXED)) {       \
                        inserted++;                                            \
                        break;                                                 \
                    }                                                          \
                    if (o == off)                                              \
                        break;                                                 \
                }                                                              \
                i = (i + 1) & mask;                                            \
            }                                                                  \
            slots[j] = (uint32_t)i;                                            \
        }                                                                      \
        return inserted;                                                       \
    }
HASH_KEY_TYPES(HASH_DEFINE_PROBE_SHARED)

static dqo_status hash_shared(const grp_input *in, uint64_t est, int T,
                              grp_output *out, bool *overflowed)
{
    dqo_status st = DQO_OK;
    const int64_t base = in->key_stats->min;
    uint64_t *offs = NULL, *cnt = NULL;
    agg_table acc;
    agg_flags *flags = NULL;
    memset(&acc, 0, sizeof acc);
    *overflowed = false;

    /* 2x the estimate, and room for every thread's chunk in flight above
     * the 3/4 stop line, so the table can never be full while probing. */
    uint64_t want = 2 * (est < in->rows ? est : in->rows);
    const uint64_t margin = 4 * ((uint64_t)T + 1) * AGG_CHUNK;
    if (want < margin)
        want = margin;
    const uint64_t cap = hash_pow2_at_least(want);
    if (cap > HASH_MAX_CAP)
        return DQO_ENOMEM;
    const uint64_t stop = cap / 4 * 3;
    offs = mem_alloc(cap * sizeof *offs);
    cnt = mem_calloc((size_t)T + 1, sizeof *cnt);
    flags = mem_calloc((size_t)T, sizeof *flags);
    acc.cap = cap + 1;
    acc.count = mem_alloc((cap + 1) * sizeof(int64_t));
    bool ok = offs != NULL && cnt != NULL && flags != NULL && acc.count != NULL;
    for (int a = 0; a < in->naggs && ok; a++) {
        acc.acc[a] = mem_alloc((cap + 1) * sizeof(int64_t));
        ok = acc.acc[a] != NULL;
    }
    if (!ok) {
        st = DQO_ENOMEM;
        goto fail;
    }
    for (int b = 0; b < T; b++)
        flags[b].overflow_agg = -1;

    uint64_t inserted = 0;
    int abort_flag = 0;
    bool top = false;
#pragma omp parallel num_threads(T)
    {
        /* First touch in parallel: the table is as large as the data. */
#pragma omp for schedule(static)
        for (int s = 0; s < T; s++) {
            const uint64_t lo = (cap + 1) * (uint64_t)s / (uint64_t)T;
            const uint64_t hi = (cap + 1) * (uint64_t)(s + 1) / (uint64_t)T;
            const uint64_t ohi = hi < cap ? hi : cap;
            if (ohi > lo)
                memset(offs + lo, 0xff, (ohi - lo) * sizeof *offs);
            agg_table_reset(&acc, in, lo, hi - lo);
        }
        uint32_t slots[AGG_CHUNK];
        for (int b = omp_get_thread_num(); b < T; b += omp_get_num_threads()) {
            const uint64_t lo = in->rows * (uint64_t)b / (uint64_t)T;
            const uint64_t hi = in->rows * (uint64_t)(b + 1) / (uint64_t)T;
            for (uint64_t r = lo; r < hi; r += AGG_CHUNK) {
                if (__atomic_load_n(&abort_flag, __ATOMIC_RELAXED) != 0)
                    break;
                if (__atomic_load_n(&inserted, __ATOMIC_RELAXED) > stop) {
                    __atomic_store_n(&abort_flag, 1, __ATOMIC_RELAXED);
                    break;
                }
                const uint32_t n =
                    (uint32_t)(hi - r < AGG_CHUNK ? hi - r : AGG_CHUNK);
                uint32_t ins = 0;
                switch (in->key_type) {
                case DQO_TYPE_U32:
                    ins = shared_probe_u32(offs, cap, base, &top, in->keys, r,
                                           n, slots);
                    break;
                case DQO_TYPE_I32:
                    ins = shared_probe_i32(offs, cap, base, &top, in->keys, r,
                                           n, slots);
                    break;
                default:
                    ins = shared_probe_i64(offs, cap, base, &top, in->keys, r,
                                           n, slots);
                    break;
                }
                agg_update_atomic(&acc, in, slots, r, n, &flags[b]);
                if (ins > 0)
                    __atomic_add_fetch(&inserted, ins, __ATOMIC_RELAXED);
            }
        }
#pragma omp barrier
        if (abort_flag == 0) {
#pragma omp for schedule(static)
            for (int s = 0; s < T; s++) {
                const uint64_t lo = cap * (uint64_t)s / (uint64_t)T;
                const uint64_t hi = cap * (uint64_t)(s + 1) / (uint64_t)T;
                uint64_t n = 0;
                for (uint64_t i = lo; i < hi; i++)
                    n += offs[i] != CPU_HTAB_EMPTY;
                cnt[s + 1] = n;
            }
        }
    }
    if (abort_flag != 0) {
        *overflowed = true;
        goto fail;
    }
    for (int b = 0; b < T; b++)
        hash_note_flags(out, &flags[b]);
    for (int s = 0; s < T; s++)
        cnt[s + 1] += cnt[s];
    {
        const bool ovf = out->overflow;
        const int ovf_agg = out->overflow_agg;
        st = grp_output_alloc(out, in, cnt[T] + (top ? 1 : 0));
        if (st != DQO_OK)
            goto fail;
        out->overflow = ovf;
        out->overflow_agg = ovf ? ovf_agg : -1;
    }
#pragma omp parallel for num_threads(T) schedule(static)
    for (int s = 0; s < T; s++) {
        const uint64_t lo = cap * (uint64_t)s / (uint64_t)T;
        const uint64_t hi = cap * (uint64_t)(s + 1) / (uint64_t)T;
        htab_emit_range(offs, &acc, base, in, out, cnt[s], lo, hi);
    }
    if (top)
        htab_emit_top(&acc, cap, base, in, out, cnt[T]);
    snprintf(out->detail, sizeof out->detail,
             "hg: shared table, capacity %llu, CAS inserts and atomic "
             "updates, %d threads, %llu groups (estimate %llu)",
             (unsigned long long)cap, T, (unsigned long long)out->groups,
             (unsigned long long)est);
    goto done;
fail:
    grp_output_free(out, in->naggs);
    out->overflow_agg = -1;
done:
    mem_free(offs);
    mem_free(cnt);
    mem_free(flags);
    agg_table_free(&acc, in);
    return st;
}

dqo_status cpu_group_hash(const grp_input *in, const granule *g,
                          grp_output *out)
{
    memset(out, 0, sizeof *out);
    out->overflow_agg = -1;
    if (in->key_type != DQO_TYPE_U32 && in->key_type != DQO_TYPE_I32 &&
        in->key_type != DQO_TYPE_I64)
        return DQO_ETYPE;
    const int T = in->threads < 1 ? 1 : in->threads;
    uint64_t est = in->key_stats->distinct;
    if (est < 1)
        est = 1;
    if (est > in->rows)
        est = in->rows > 0 ? in->rows : 1;
    cpu_caches cc;
    cpu_get_caches(&cc);
    const uint64_t table_bytes = 2 * est * (16 + 8 * (uint64_t)in->naggs);
    bool shared;
    if (T == 1 || in->rows < 2 * (uint64_t)AGG_CHUNK)
        shared = false;
    else if (g != NULL && g->mode == PLAN_MODE_SHARED)
        shared = true;
    else if (g != NULL && g->mode == PLAN_MODE_PRIVATE)
        shared = false;
    else
        shared = table_bytes > cc.l2 / HASH_PRIVATE_L2_SHARE;
    if (!shared)
        return hash_private(in, est, T, out);

    bool overflowed = false;
    dqo_status st = hash_shared(in, est, T, out, &overflowed);
    if (!overflowed)
        return st;
    /* The estimate was far too low: radix partitioning's tables grow. */
    granule rg = {0};
    rg.kernel = GRP_KERNEL_RADIX;
    rg.part = PLAN_PART_RADIX;
    rg.index = PLAN_INDEX_HASH;
    rg.mode = PLAN_MODE_PARTITION;
    st = cpu_group_radix(in, &rg, out);
    if (st == DQO_OK) {
        char d[sizeof out->detail];
        snprintf(d, sizeof d, "hg: shared table overflowed (estimate %llu), "
                              "reran as %.120s",
                 (unsigned long long)est, out->detail);
        memcpy(out->detail, d, sizeof d);
    }
    return st;
}
