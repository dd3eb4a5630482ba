/*
 * agg.c - columnar accumulators shared by every grouping kernel.
 *
 * A kernel maps a chunk of rows (at most AGG_CHUNK) to table slots, then
 * calls agg_update() once per chunk. The switch on the aggregate's operation,
 * input type and NULL-ability happens once per aggregate per chunk; the loop
 * under it is a tight, type-specialised loop generated from one X-macro list
 * of input types, so there is no function call and no type dispatch per
 * tuple. The same holds for the gather variant (explicit row ids, used after
 * a sort), the atomic variant (one table shared by threads) and the merge of
 * private tables.
 *
 * Integer SUMs accumulate in int64. A sum of 32-bit values cannot leave the
 * int64 range while a column has fewer than 2^31 rows (2^31 * 2^32 < 2^63),
 * so those loops use plain adds; i64 inputs (and 32-bit inputs of huge
 * columns) use __builtin_add_overflow and record the first aggregate that
 * overflowed in agg_flags. Merges always check, since they add two sums.
 */
#include <math.h>
#include <string.h>

#include "cpu/cpu_int.h"

/* The input types an aggregate can read, with their C types. */
#define AGG_TYPES(X)                                                           \
    X(u32, uint32_t)                                                           \
    X(i32, int32_t)                                                            \
    X(i64, int64_t)                                                            \
    X(f64, double)

/* Lower-case aliases so that the X-macro names paste into type tags. */
#define DQO_TYPE_u32 DQO_TYPE_U32
#define DQO_TYPE_i32 DQO_TYPE_I32
#define DQO_TYPE_i64 DQO_TYPE_I64
#define DQO_TYPE_f64 DQO_TYPE_F64

/* The number of rows below which a 32-bit SUM cannot overflow int64. */
#define AGG_PLAIN_SUM_ROWS (UINT64_C(1) << 31)

/* Runs BODY for j < n with r the row of element j: row j of the (already
 * offset) input when rows is NULL, else rows[j]. Both loops are generated so
 * that the contiguous one stays free of the indirection. */
#define AGG_LOOP(n, rows, BODY)                                                \
    do {                                                                       \
        if ((rows) == NULL) {                                                  \
            for (uint32_t j = 0; j < (n); j++) {                               \
                const uint64_t r = j;                                          \
                BODY                                                           \
            }                                                                  \
        } else {                                                               \
            for (uint32_t j = 0; j < (n); j++) {                               \
                const uint64_t r = (rows)[j];                                  \
                BODY                                                           \
            }                                                                  \
        }                                                                      \
    } while (0)

/* The same with NULL rows (v[r] == 0) skipped when v is not NULL. */
#define AGG_LOOP_V(n, rows, v, BODY)                                           \
    do {                                                                       \
        if ((v) == NULL)                                                       \
            AGG_LOOP(n, rows, BODY);                                           \
        else                                                                   \
            AGG_LOOP(n, rows, if ((v)[r] == 0) continue; BODY);                \
    } while (0)

/* ---------------------------------------------------- non-atomic loops */

static inline void agg_count_star(int64_t *restrict cnt,
                                  const uint32_t *restrict s, uint32_t n)
{
    for (uint32_t j = 0; j < n; j++)
        cnt[s[j]]++;
}

static inline void agg_count_valid(int64_t *restrict acc,
                                   const uint8_t *restrict v,
                                   const uint32_t *restrict s,
                                   const uint32_t *restrict rows, uint32_t n)
{
    if (v == NULL) {
        agg_count_star(acc, s, n);
        return;
    }
    AGG_LOOP(n, rows, acc[s[j]] += v[r] != 0;);
}

/* Per input type: plain SUM, checked SUM, MIN and MAX. The accumulator type
 * ACC is int64_t for integers and double for f64. */
#define AGG_DEFINE_LOOPS(t, T, ACC)                                            \
    static inline void agg_sum_##t(ACC *restrict acc, const T *restrict x,    \
                                   const uint8_t *restrict v,                  \
                                   const uint32_t *restrict s,                 \
                                   const uint32_t *restrict rows, uint32_t n)  \
    {                                                                          \
        AGG_LOOP_V(n, rows, v, acc[s[j]] += (ACC)x[r];);                       \
    }                                                                          \
    static inline bool agg_sumc_##t(int64_t *restrict acc,                     \
                                    const T *restrict x,                       \
                                    const uint8_t *restrict v,                 \
                                    const uint32_t *restrict s,                \
                                    const uint32_t *restrict rows, uint32_t n) \
    {                                                                          \
        bool ovf = false;                                                      \
        AGG_LOOP_V(n, rows, v,                                                 \
                   ovf |= __builtin_add_overflow(acc[s[j]], (int64_t)x[r],     \
                                                 &acc[s[j]]););                \
        return ovf;                                                            \
    }                                                                          \
    static inline void agg_min_##t(ACC *restrict acc, const T *restrict x,    \
                                   const uint8_t *restrict v,                  \
                                   const uint32_t *restrict s,                 \
                                   const uint32_t *restrict rows, uint32_t n)  \
    {                                                                          \
        AGG_LOOP_V(n, rows, v, {                                               \
            const ACC a = (ACC)x[r];                                           \
            if (a < acc[s[j]])                                                 \
                acc[s[j]] = a;                                                 \
        });                                                                    \
    }                                                                          \
    static inline void agg_max_##t(ACC *restrict acc, const T *restrict x,    \
                                   const uint8_t *restrict v,                  \
                                   const uint32_t *restrict s,                 \
                                   const uint32_t *restrict rows, uint32_t n)  \
    {                                                                          \
        AGG_LOOP_V(n, rows, v, {                                               \
            const ACC a = (ACC)x[r];                                           \
            if (a > acc[s[j]])                                                 \
                acc[s[j]] = a;                                                 \
        });                                                                    \
    }

AGG_DEFINE_LOOPS(u32, uint32_t, int64_t)
AGG_DEFINE_LOOPS(i32, int32_t, int64_t)
AGG_DEFINE_LOOPS(i64, int64_t, int64_t)
AGG_DEFINE_LOOPS(f64, double, double)

/* One aggregate over one chunk: the only dispatch, once per chunk. `rows`
 * NULL means the rows row0 .. row0 + n - 1. Returns true on SUM overflow. */
static bool agg_update_one(void *acc, const grp_agg *a, bool checked,
                           const uint32_t *restrict s, uint64_t row0,
                           const uint32_t *restrict rows, uint32_t n)
{
    const uint8_t *v = a->valid == NULL ? NULL : a->valid + row0;
    if (a->op == AGG_OP_COUNT) {
        agg_count_valid(acc, v, s, rows, n);
        return false;
    }
    switch (a->type) {
#define AGG_CASE_(t, T)                                                        \
    case DQO_TYPE_##t: {                                                       \
        const T *x = (const T *)a->data + row0;                                \
        switch (a->op) {                                                       \
        case AGG_OP_SUM:                                                       \
            if (DQO_TYPE_##t == DQO_TYPE_F64) {                                \
                agg_sum_##t(acc, (const void *)x, v, s, rows, n);              \
                return false;                                                  \
            }                                                                  \
            if (checked || DQO_TYPE_##t == DQO_TYPE_I64)                       \
                return agg_sumc_##t(acc, (const void *)x, v, s, rows, n);      \
            agg_sum_##t(acc, (const void *)x, v, s, rows, n);                  \
            return false;                                                      \
        case AGG_OP_MIN: agg_min_##t(acc, x, v, s, rows, n); return false;     \
        case AGG_OP_MAX: agg_max_##t(acc, x, v, s, rows, n); return false;     \
        default: return false;                                                 \
        }                                                                      \
    }
        AGG_TYPES(AGG_CASE_)
#undef AGG_CASE_
    default: return false;
    }
}

static inline void agg_note_overflow(agg_flags *f, int i)
{
    if (f != NULL && f->overflow_agg < 0)
        f->overflow_agg = i;
}

/* The f64 sum loop is instantiated with ACC = double, the integer loops
 * with int64_t; agg_sumc_f64 is never called (a double SUM cannot overflow
 * in the integer sense) but is generated by the same macro. */
static void agg_update_rows(agg_table *t, const grp_input *in,
                            const uint32_t *slots, uint64_t row0,
                            const uint32_t *rows, uint32_t n, agg_flags *f)
{
    const bool checked = in->rows >= AGG_PLAIN_SUM_ROWS;
    agg_count_star(t->count, slots, n);
    for (int i = 0; i < in->naggs; i++) {
        if (agg_update_one(t->acc[i], &in->aggs[i], checked, slots, row0, rows,
                           n))
            agg_note_overflow(f, i);
    }
}

void agg_update(agg_table *t, const grp_input *in, const uint32_t *slots,
                uint64_t row0, uint32_t n, agg_flags *f)
{
    agg_update_rows(t, in, slots, row0, NULL, n, f);
}

void agg_update_gather(agg_table *t, const grp_input *in,
                       const uint32_t *slots, const uint32_t *rows, uint32_t n,
                       agg_flags *f)
{
    agg_update_rows(t, in, slots, 0, rows, n, f);
}

/* ---------------------------------------------------------- atomic loops */

static inline bool agg_atomic_add_i64(int64_t *p, int64_t x)
{
    const int64_t old = __atomic_fetch_add(p, x, __ATOMIC_RELAXED);
    int64_t sum;
    return __builtin_add_overflow(old, x, &sum);
}

static inline void agg_atomic_add_f64(double *p, double x)
{
    uint64_t *bits = (uint64_t *)p;
    uint64_t old = __atomic_load_n(bits, __ATOMIC_RELAXED), upd;
    do {
        double d;
        memcpy(&d, &old, sizeof d);
        d += x;
        memcpy(&upd, &d, sizeof upd);
    } while (!__atomic_compare_exchange_n(bits, &old, upd, true,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

/* MIN (sign = +1) or MAX (sign = -1) of an int64: the CAS is only tried when
 * the value improves on what is there, so hot slots are mostly plain reads. */
static inline void agg_atomic_min_i64(int64_t *p, int64_t x)
{
    int64_t old = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (x < old && !__atomic_compare_exchange_n(p, &old, x, true,
                                                   __ATOMIC_RELAXED,
                                                   __ATOMIC_RELAXED)) {
    }
}

static inline void agg_atomic_max_i64(int64_t *p, int64_t x)
{
    int64_t old = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (x > old && !__atomic_compare_exchange_n(p, &old, x, true,
                                                   __ATOMIC_RELAXED,
                                                   __ATOMIC_RELAXED)) {
    }
}

static inline void agg_atomic_minmax_f64(double *p, double x, bool is_min)
{
    uint64_t *bits = (uint64_t *)p;
    uint64_t old = __atomic_load_n(bits, __ATOMIC_RELAXED), upd;
    memcpy(&upd, &x, sizeof upd);
    for (;;) {
        double d;
        memcpy(&d, &old, sizeof d);
        if (is_min ? !(x < d) : !(x > d))
            return;
        if (__atomic_compare_exchange_n(bits, &old, upd, true,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return;
    }
}

#define AGG_DEFINE_ATOMIC(t, T)                                                \
    static bool agg_atomic_##t(void *accp, agg_op op,                          \
                               const T *restrict x,                            \
                               const uint8_t *restrict v,                      \
                               const uint32_t *restrict s, uint32_t n)         \
    {                                                                          \
        bool ovf = false;                                                      \
        const uint32_t *rows = NULL;                                           \
        if (DQO_TYPE_##t == DQO_TYPE_F64) {                                    \
            double *acc = accp;                                                \
            switch (op) {                                                      \
            case AGG_OP_SUM:                                                   \
                AGG_LOOP_V(n, rows, v,                                         \
                           agg_atomic_add_f64(&acc[s[j]], (double)x[r]););     \
                break;                                                         \
            case AGG_OP_MIN:                                                   \
                AGG_LOOP_V(n, rows, v,                                         \
                           agg_atomic_minmax_f64(&acc[s[j]], (double)x[r],     \
                                                 true););                      \
                break;                                                         \
            case AGG_OP_MAX:                                                   \
                AGG_LOOP_V(n, rows, v,                                         \
                           agg_atomic_minmax_f64(&acc[s[j]], (double)x[r],     \
                                                 false););                     \
                break;                                                         \
            default: break;                                                    \
            }                                                                  \
            return false;                                                      \
        }                                                                      \
        int64_t *acc = accp;                                                   \
        switch (op) {                                                          \
        case AGG_OP_SUM:                                                       \
            AGG_LOOP_V(n, rows, v,                                             \
                       ovf |= agg_atomic_add_i64(&acc[s[j]], (int64_t)x[r]);); \
            break;                                                             \
        case AGG_OP_MIN:                                                       \
            AGG_LOOP_V(n, rows, v,                                             \
                       agg_atomic_min_i64(&acc[s[j]], (int64_t)x[r]););        \
            break;                                                             \
        case AGG_OP_MAX:                                                       \
            AGG_LOOP_V(n, rows, v,                                             \
                       agg_atomic_max_i64(&acc[s[j]], (int64_t)x[r]););        \
            break;                                                             \
        default: break;                                                        \
        }                                                                      \
        return ovf;                                                            \
    }
AGG_TYPES(AGG_DEFINE_ATOMIC)

void agg_update_atomic(agg_table *t, const grp_input *in,
                       const uint32_t *slots, uint64_t row0, uint32_t n,
                       agg_flags *f)
{
    const uint32_t *rows = NULL;
    int64_t *cnt = t->count;
    AGG_LOOP(n, rows, __atomic_fetch_add(&cnt[slots[j]], 1, __ATOMIC_RELAXED);
             (void)r;);
    for (int i = 0; i < in->naggs; i++) {
        const grp_agg *a = &in->aggs[i];
        const uint8_t *v = a->valid == NULL ? NULL : a->valid + row0;
        bool ovf = false;
        if (a->op == AGG_OP_COUNT) {
            int64_t *acc = t->acc[i];
            AGG_LOOP_V(n, rows, v,
                       __atomic_fetch_add(&acc[slots[j]], 1, __ATOMIC_RELAXED);
                       (void)r;);
            continue;
        }
        switch (a->type) {
#define AGG_ACASE_(tn, T)                                                      \
    case DQO_TYPE_##tn:                                                        \
        ovf = agg_atomic_##tn(t->acc[i], a->op, (const T *)a->data + row0, v,   \
                             slots, n);                                        \
        break;
            AGG_TYPES(AGG_ACASE_)
#undef AGG_ACASE_
        default: break;
        }
        if (ovf)
            agg_note_overflow(f, i);
    }
}

/* ------------------------------------------------------------- tables */

/* The identity of aggregate a's accumulator, as the bits of its element. */
static void agg_fill_identity(void *acc, const grp_agg *a, uint64_t from,
                              uint64_t n)
{
    if (grp_agg_is_f64(a)) {
        double *d = (double *)acc + from;
        const double id = a->op == AGG_OP_MIN   ? INFINITY
                          : a->op == AGG_OP_MAX ? -INFINITY
                                                : 0.0;
        for (uint64_t i = 0; i < n; i++)
            d[i] = id;
        return;
    }
    int64_t *x = (int64_t *)acc + from;
    const int64_t id = a->op == AGG_OP_MIN   ? GRP_MIN_INIT_I64
                       : a->op == AGG_OP_MAX ? GRP_MAX_INIT_I64
                                             : 0;
    if (id == 0) {
        memset(x, 0, n * sizeof *x);
        return;
    }
    for (uint64_t i = 0; i < n; i++)
        x[i] = id;
}

void agg_table_reset(agg_table *t, const grp_input *in, uint64_t from,
                     uint64_t n)
{
    memset(t->count + from, 0, n * sizeof *t->count);
    for (int i = 0; i < in->naggs; i++)
        agg_fill_identity(t->acc[i], &in->aggs[i], from, n);
}

void agg_table_free(agg_table *t, const grp_input *in)
{
    (void)in;
    mem_free(t->count);
    for (int i = 0; i < GRP_MAX_AGGS; i++)
        mem_free(t->acc[i]);
    memset(t, 0, sizeof *t);
}

dqo_status agg_table_init(agg_table *t, const grp_input *in, uint64_t cap)
{
    dqo_status st = agg_table_alloc(t, in, cap);
    if (st == DQO_OK)
        agg_table_reset(t, in, 0, cap);
    return st;
}

dqo_status agg_table_alloc(agg_table *t, const grp_input *in, uint64_t cap)
{
    memset(t, 0, sizeof *t);
    if (in->naggs < 0 || in->naggs > GRP_MAX_AGGS)
        return DQO_EINVAL;
    if (cap > SIZE_MAX / sizeof(int64_t))
        return DQO_ENOMEM;
    t->cap = cap;
    t->count = mem_alloc(cap * sizeof(int64_t));
    if (t->count == NULL)
        goto fail;
    for (int i = 0; i < in->naggs; i++) {
        /* int64_t and double have the same size. */
        t->acc[i] = mem_alloc(cap * sizeof(int64_t));
        if (t->acc[i] == NULL)
            goto fail;
    }
    return DQO_OK;
fail:
    agg_table_free(t, in);
    return DQO_ENOMEM;
}

/* ------------------------------------------------------------- merging */

void agg_merge_range(agg_table *dst, uint64_t dslot, const agg_table *src,
                     uint64_t sslot, uint64_t n, const grp_input *in,
                     agg_flags *f)
{
    {
        int64_t *restrict d = dst->count + dslot;
        const int64_t *restrict s = src->count + sslot;
        for (uint64_t i = 0; i < n; i++)
            d[i] += s[i];
    }
    for (int a = 0; a < in->naggs; a++) {
        const grp_agg *g = &in->aggs[a];
        if (grp_agg_is_f64(g)) {
            double *restrict d = (double *)dst->acc[a] + dslot;
            const double *restrict s = (const double *)src->acc[a] + sslot;
            switch (g->op) {
            case AGG_OP_SUM:
                for (uint64_t i = 0; i < n; i++)
                    d[i] += s[i];
                break;
            case AGG_OP_MIN:
                for (uint64_t i = 0; i < n; i++)
                    d[i] = s[i] < d[i] ? s[i] : d[i];
                break;
            case AGG_OP_MAX:
                for (uint64_t i = 0; i < n; i++)
                    d[i] = s[i] > d[i] ? s[i] : d[i];
                break;
            default: break;
            }
            continue;
        }
        int64_t *restrict d = (int64_t *)dst->acc[a] + dslot;
        const int64_t *restrict s = (const int64_t *)src->acc[a] + sslot;
        switch (g->op) {
        case AGG_OP_COUNT:
            for (uint64_t i = 0; i < n; i++)
                d[i] += s[i];
            break;
        case AGG_OP_SUM: {
            bool ovf = false;
            for (uint64_t i = 0; i < n; i++)
                ovf |= __builtin_add_overflow(d[i], s[i], &d[i]);
            if (ovf)
                agg_note_overflow(f, a);
            break;
        }
        case AGG_OP_MIN:
            for (uint64_t i = 0; i < n; i++)
                d[i] = s[i] < d[i] ? s[i] : d[i];
            break;
        case AGG_OP_MAX:
            for (uint64_t i = 0; i < n; i++)
                d[i] = s[i] > d[i] ? s[i] : d[i];
            break;
        }
    }
}

/* ------------------------------------------------------------- output */

void grp_output_free(grp_output *out, int naggs)
{
    (void)naggs;
    if (out == NULL)
        return;
    mem_free(out->keys);
    mem_free(out->count);
    /* Every slot is freed, not only the first naggs: a zeroed slot is
     * NULL, and a caller passing a smaller naggs must not leak. */
    for (int i = 0; i < GRP_MAX_AGGS; i++)
        mem_free(out->acc[i]);
    memset(out, 0, sizeof *out);
}

dqo_status grp_output_alloc(grp_output *out, const grp_input *in,
                            uint64_t groups)
{
    if (groups > SIZE_MAX / sizeof(int64_t))
        return DQO_ENOMEM;
    const size_t bytes = groups * sizeof(int64_t);
    out->groups = groups;
    out->overflow = false;
    out->overflow_agg = -1;
    out->keys = mem_alloc(bytes);
    out->count = mem_alloc(bytes);
    for (int i = 0; i < GRP_MAX_AGGS; i++)
        out->acc[i] = NULL;
    if (out->keys == NULL || out->count == NULL)
        goto fail;
    for (int i = 0; i < in->naggs; i++) {
        out->acc[i] = mem_alloc(bytes);
        if (out->acc[i] == NULL)
            goto fail;
    }
    return DQO_OK;
fail:
    mem_free(out->keys);
    mem_free(out->count);
    for (int i = 0; i < GRP_MAX_AGGS; i++)
        mem_free(out->acc[i]);
    out->keys = NULL;
    out->count = NULL;
    for (int i = 0; i < GRP_MAX_AGGS; i++)
        out->acc[i] = NULL;
    out->groups = 0;
    return DQO_ENOMEM;
}

void agg_emit_range(grp_output *out, uint64_t pos, const agg_table *t,
                    uint64_t slot, uint64_t n, const grp_input *in)
{
    memcpy(out->count + pos, t->count + slot, n * sizeof(int64_t));
    for (int i = 0; i < in->naggs; i++)
        memcpy((int64_t *)out->acc[i] + pos, (const int64_t *)t->acc[i] + slot,
               n * sizeof(int64_t));
}
