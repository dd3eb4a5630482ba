/*
 * expr.c - vectorised evaluation of bound expressions (planner/logical.h)
 * over a relation or a grouped result: every operator is one tight loop over
 * whole columns, never a call per row.
 *
 * Integers of every width are compared and computed in int64 (u32 and i32
 * convert exactly), so mixed integer types compare exactly; a number against
 * an f64 compares as double. Integer + - * and unary minus check for
 * overflow (DQO_EOVERFLOW naming the expression); integer / and % by zero
 * give NULL. Comparisons of strings against a literal compare the text once
 * per dictionary entry and then map each row's code through that table.
 * AND, OR and NOT follow SQL's three-valued logic.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/query_int.h"

void qvec_free(qvec *v)
{
    if (v == NULL)
        return;
    mem_free(v->own_data);
    mem_free(v->own_valid);
    memset(v, 0, sizeof *v);
}

void qrel_free(qrel *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < LQ_MAX_TABLES; i++)
        mem_free(r->rid[i]);
    memset(r, 0, sizeof *r);
}

dqo_dict *qdict_copy(const dqo_dict *d)
{
    dqo_dict *c = dict_create();
    for (uint32_t i = 0; c != NULL && d != NULL && i < dict_size(d); i++) {
        const char *s = dict_get(d, i);
        uint32_t code;
        if (dict_intern(c, s, strlen(s), &code) != DQO_OK) {
            dict_destroy(c);
            return NULL;
        }
    }
    return c;
}

bool qexpr_same(const lexpr *a, const lexpr *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (a->kind != b->kind || a->type != b->type || a->negated != b->negated ||
        a->nlist != b->nlist)
        return false;
    switch (a->kind) {
    case LX_COL: if (a->table != b->table) return false; /* fall through */
    case LX_GROUPREF: if (a->col != b->col) return false; break;
    case LX_INT: if (a->ival != b->ival) return false; break;
    case LX_FLOAT: if (a->fval != b->fval) return false; break;
    case LX_STR: if (strcmp(a->sval, b->sval) != 0) return false; break;
    case LX_BIN: if (a->op != b->op) return false; break;
    case LX_AGG: if (a->agg != b->agg) return false; break;
    default: break;
    }
    for (int i = 0; i < a->nlist; i++)
        if (!qexpr_same(a->list[i], b->list[i]))
            return false;
    return qexpr_same(a->a, b->a) && qexpr_same(a->b, b->b);
}

bool qvec_null(const qvec *v, uint64_t i)
{
    return v->valid != NULL && v->valid[v->konst ? 0 : i] == 0;
}

int64_t qvec_i64(const qvec *v, uint64_t i)
{
    if (v->konst)
        i = 0;
    switch (v->type) {
    case DQO_TYPE_U32:
    case DQO_TYPE_STR: return ((const uint32_t *)v->data)[i];
    case DQO_TYPE_I32: return ((const int32_t *)v->data)[i];
    case DQO_TYPE_I64: return ((const int64_t *)v->data)[i];
    case DQO_TYPE_F64: return (int64_t)((const double *)v->data)[i];
    default: return ((const uint8_t *)v->data)[i];
    }
}

double qvec_f64(const qvec *v, uint64_t i)
{
    if (v->type == DQO_TYPE_F64)
        return ((const double *)v->data)[v->konst ? 0 : i];
    return (double)qvec_i64(v, i);
}

/* ----------------------------------------------------------- helpers */

static dqo_status oom(const qeval *x)
{
    return ctx_error(x->ctx, DQO_ENOMEM, "out of memory evaluating an "
                     "expression over %" PRIu64 " rows", x->rows);
}

/* Rows of a result over operands a and b: one when both are constants. */
static uint64_t out_rows(const qeval *x, const qvec *a, const qvec *b)
{
    return a->konst && (b == NULL || b->konst) ? 1 : x->rows;
}

/* Allocates out's data (n elements of `width` bytes) and sets its shape. */
static dqo_status vec_new(const qeval *x, qvec *out, int type, uint64_t n,
                          bool konst, size_t width)
{
    memset(out, 0, sizeof *out);
    out->type = type;
    out->n = n;
    out->konst = konst;
    out->own_data = mem_alloc(n * width + 1);
    if (out->own_data == NULL)
        return oom(x);
    out->data = out->own_data;
    return DQO_OK;
}

/* The validity of a result over a and b: NULL when neither has NULLs, else
 * a new array, 1 where both are valid. */
static dqo_status valid_and(const qeval *x, const qvec *a, const qvec *b,
                            qvec *out)
{
    if (a->valid == NULL && (b == NULL || b->valid == NULL))
        return DQO_OK;
    uint8_t *v = mem_alloc(out->n + 1);
    if (v == NULL)
        return oom(x);
    const uint64_t sa = a->konst ? 0 : 1, sb = b != NULL && b->konst ? 0 : 1;
    for (uint64_t i = 0; i < out->n; i++)
        v[i] = (a->valid == NULL || a->valid[i * sa]) &&
               (b == NULL || b->valid == NULL || b->valid[i * sb]);
    out->own_valid = v;
    out->valid = v;
    return DQO_OK;
}

/* Makes sure out has its own validity array (all valid), to clear bits. */
static dqo_status valid_own(const qeval *x, qvec *out)
{
    if (out->own_valid != NULL)
        return DQO_OK;
    if ((out->own_valid = mem_alloc(out->n + 1)) == NULL)
        return oom(x);
    memset(out->own_valid, 1, out->n);
    out->valid = out->own_valid;
    return DQO_OK;
}

/* v's values as an int64 (or double) array: in place when v already is one,
 * else converted into *own (caller frees). */
dqo_status qvec_as_i64(const qeval *x, const qvec *v, const int64_t **p,
                       int64_t **own)
{
    *own = NULL;
    if (v->type == DQO_TYPE_I64) {
        *p = v->data;
        return DQO_OK;
    }
    if ((*own = mem_alloc(v->n * sizeof(int64_t) + 1)) == NULL)
        return oom(x);
    int64_t *o = *own;
    switch (v->type) {
    case DQO_TYPE_U32:
        for (uint64_t i = 0; i < v->n; i++)
            o[i] = ((const uint32_t *)v->data)[i];
        break;
    case DQO_TYPE_I32:
        for (uint64_t i = 0; i < v->n; i++)
            o[i] = ((const int32_t *)v->data)[i];
        break;
    default:
        for (uint64_t i = 0; i < v->n; i++)
            o[i] = qvec_i64(v, i);
    }
    *p = o;
    return DQO_OK;
}

static dqo_status overflow(const qeval *x, const lexpr *e)
{
    char text[200];
    lexpr_format(x->q, e, text, sizeof text);
    return ctx_error(x->ctx, DQO_EOVERFLOW,
                     "integer overflow evaluating %s: the result leaves the "
                     "int64 range",
                     text);
}

/* ------------------------------------------------------- arithmetic */

/* Rows are widened to int64 or double in chunks of this many, into stack
 * buffers (2 x 16 KiB, well inside L1+L2), instead of whole-column copies. */
#define QCHUNK 2048

/* Rows [off, off + m) of v as int64 (a constant: its one value): in place
 * when v is I64, else widened into buf. */
static const int64_t *chunk_i64(const qvec *v, uint64_t off, uint64_t m,
                                int64_t *buf)
{
    if (v->konst) {
        off = 0;
        m = 1;
    }
    switch (v->type) {
    case DQO_TYPE_I64: return (const int64_t *)v->data + off;
    case DQO_TYPE_U32:
    case DQO_TYPE_STR:
        for (uint64_t i = 0; i < m; i++)
            buf[i] = ((const uint32_t *)v->data)[off + i];
        return buf;
    case DQO_TYPE_I32:
        for (uint64_t i = 0; i < m; i++)
            buf[i] = ((const int32_t *)v->data)[off + i];
        return buf;
    default:
        for (uint64_t i = 0; i < m; i++)
            buf[i] = qvec_i64(v, off + i);
        return buf;
    }
}

static const double *chunk_f64(const qvec *v, uint64_t off, uint64_t m,
                               double *buf)
{
    if (v->konst) {
        off = 0;
        m = 1;
    }
    if (v->type == DQO_TYPE_F64)
        return (const double *)v->data + off;
    int64_t ib[QCHUNK];
    const int64_t *p = chunk_i64(v, off, m, ib);
    for (uint64_t i = 0; i < m; i++)
        buf[i] = (double)p[i];
    return buf;
}

static inline uint64_t chunk_len(uint64_t off, uint64_t n)
{
    return n - off < QCHUNK ? n - off : QCHUNK;
}

static dqo_status arith_f64(const qeval *x, const lexpr *e, const qvec *a,
                            const qvec *b, qvec *out)
{
    uint64_t n = out_rows(x, a, b);
    dqo_status s = vec_new(x, out, DQO_TYPE_F64, n, a->konst && b->konst,
                           sizeof(double));
    if (s == DQO_OK)
        s = valid_and(x, a, b, out);
    if (s != DQO_OK) {
        qvec_free(out);
        return s;
    }
    const uint64_t sa = a->konst ? 0 : 1, sb = b->konst ? 0 : 1;
    double ba[QCHUNK], bb[QCHUNK];
    for (uint64_t off = 0; off < n; off += QCHUNK) {
        const uint64_t m = chunk_len(off, n);
        const double *pa = chunk_f64(a, off, m, ba), *pb = chunk_f64(b, off, m, bb);
        double *o = (double *)out->own_data + off;
        switch (e->op) {
        case LX_ADD: for (uint64_t i = 0; i < m; i++) o[i] = pa[i * sa] + pb[i * sb]; break;
        case LX_SUB: for (uint64_t i = 0; i < m; i++) o[i] = pa[i * sa] - pb[i * sb]; break;
        case LX_MUL: for (uint64_t i = 0; i < m; i++) o[i] = pa[i * sa] * pb[i * sb]; break;
        case LX_DIV: for (uint64_t i = 0; i < m; i++) o[i] = pa[i * sa] / pb[i * sb]; break;
        default: /* truncated remainder, as C's % */
            for (uint64_t i = 0; i < m; i++) o[i] = fmod(pa[i * sa], pb[i * sb]);
        }
    }
    return DQO_OK;
}

/* One chunk of integer / or %: a zero divisor gives NULL; INT64_MIN / -1
 * overflows (the caller reports it). Returns true on overflow. */
static bool div_chunk(lx_op op, const int64_t *pa, uint64_t sa,
                      const int64_t *pb, uint64_t sb, uint64_t m, int64_t *o,
                      uint8_t *ov)
{
    bool ovf = false;
    for (uint64_t i = 0; i < m; i++) {
        int64_t p = pa[i * sa], d = pb[i * sb];
        if (d == 0) {
            ov[i] = 0;
            o[i] = 0;
        } else if (d == -1) { /* INT64_MIN / -1 overflows; % is 0 */
            ovf |= op == LX_DIV && p == INT64_MIN && ov[i];
            o[i] = op == LX_DIV ? (p == INT64_MIN ? p : -p) : 0;
        } else {
            o[i] = op == LX_DIV ? p / d : p % d;
        }
    }
    return ovf;
}

/* Integer + - * / %; overflow is an error, a zero divisor gives NULL. NULL
 * rows compute on whatever bytes they hold, so only valid rows may raise an
 * overflow. */
static dqo_status arith_i64(const qeval *x, const lexpr *e, const qvec *a,
                            const qvec *b, qvec *out)
{
    uint64_t n = out_rows(x, a, b);
    dqo_status s = vec_new(x, out, DQO_TYPE_I64, n, a->konst && b->konst,
                           sizeof(int64_t));
    if (s == DQO_OK)
        s = valid_and(x, a, b, out);
    if (s == DQO_OK && (e->op == LX_DIV || e->op == LX_MOD))
        s = valid_own(x, out);
    if (s != DQO_OK) {
        qvec_free(out);
        return s;
    }
    const uint64_t sa = a->konst ? 0 : 1, sb = b->konst ? 0 : 1;
    int64_t ba[QCHUNK], bb[QCHUNK];
    bool ovf = false;
    for (uint64_t off = 0; off < n && !ovf; off += QCHUNK) {
        const uint64_t m = chunk_len(off, n);
        const int64_t *pa = chunk_i64(a, off, m, ba), *pb = chunk_i64(b, off, m, bb);
        int64_t *o = (int64_t *)out->own_data + off;
        uint8_t *ov = out->own_valid != NULL ? out->own_valid + off : NULL;
        switch (e->op) {
        case LX_ADD:
            for (uint64_t i = 0; i < m; i++)
                ovf |= __builtin_add_overflow(pa[i * sa], pb[i * sb], &o[i]) &&
                       (ov == NULL || ov[i]);
            break;
        case LX_SUB:
            for (uint64_t i = 0; i < m; i++)
                ovf |= __builtin_sub_overflow(pa[i * sa], pb[i * sb], &o[i]) &&
                       (ov == NULL || ov[i]);
            break;
        case LX_MUL:
            for (uint64_t i = 0; i < m; i++)
                ovf |= __builtin_mul_overflow(pa[i * sa], pb[i * sb], &o[i]) &&
                       (ov == NULL || ov[i]);
            break;
        default:
            ovf = div_chunk(e->op, pa, sa, pb, sb, m, o, ov);
        }
    }
    if (ovf) {
        qvec_free(out);
        return overflow(x, e);
    }
    return DQO_OK;
}

static dqo_status eval_neg(const qeval *x, const lexpr *e, const qvec *a,
                           qvec *out)
{
    /* -a is 0 - a, with the same overflow check (-INT64_MIN). */
    qvec zero;
    bool f = a->type == DQO_TYPE_F64;
    dqo_status s = vec_new(x, &zero, f ? DQO_TYPE_F64 : DQO_TYPE_I64, 1, true, 8);
    if (s != DQO_OK)
        return s;
    memset(zero.own_data, 0, 8);
    lexpr sub = *e;
    sub.kind = LX_BIN;
    sub.op = LX_SUB;
    /* Errors name the original expression, so format e, not sub. */
    s = f ? arith_f64(x, &sub, &zero, a, out) : arith_i64(x, &sub, &zero, a, out);
    if (s == DQO_EOVERFLOW)
        s = overflow(x, e);
    qvec_free(&zero);
    return s;
}

/* ------------------------------------------------------ comparisons */

static inline bool cmp_holds(lx_op op, int c)
{
    switch (op) {
    case LX_EQ: return c == 0;
    case LX_NE: return c != 0;
    case LX_LT: return c < 0;
    case LX_LE: return c <= 0;
    case LX_GT: return c > 0;
    default: return c >= 0;
    }
}

/* The operator with its operands swapped: a < b is b > a. */
static lx_op cmp_mirror(lx_op op)
{
    switch (op) {
    case LX_LT: return LX_GT;
    case LX_LE: return LX_GE;
    case LX_GT: return LX_LT;
    case LX_GE: return LX_LE;
    default: return op;
    }
}

#define CMP_LOOPS(pa, pb)                                                      \
    switch (op) {                                                              \
    case LX_EQ: for (uint64_t i = 0; i < m; i++) o[i] = pa[i * sa] == pb[i * sb]; break; \
    case LX_NE: for (uint64_t i = 0; i < m; i++) o[i] = pa[i * sa] != pb[i * sb]; break; \
    case LX_LT: for (uint64_t i = 0; i < m; i++) o[i] = pa[i * sa] < pb[i * sb]; break;  \
    case LX_LE: for (uint64_t i = 0; i < m; i++) o[i] = pa[i * sa] <= pb[i * sb]; break; \
    case LX_GT: for (uint64_t i = 0; i < m; i++) o[i] = pa[i * sa] > pb[i * sb]; break;  \
    default: for (uint64_t i = 0; i < m; i++) o[i] = pa[i * sa] >= pb[i * sb]; break;    \
    }

/* Numbers: integers of any width compare exactly in int64; with an f64 on
 * either side both compare as double. */
static dqo_status cmp_num(const qeval *x, lx_op op, const qvec *a,
                          const qvec *b, qvec *out)
{
    uint64_t n = out_rows(x, a, b);
    dqo_status s = vec_new(x, out, LX_TYPE_BOOL, n, a->konst && b->konst, 1);
    if (s == DQO_OK)
        s = valid_and(x, a, b, out);
    if (s != DQO_OK) {
        qvec_free(out);
        return s;
    }
    const uint64_t sa = a->konst ? 0 : 1, sb = b->konst ? 0 : 1;
    const bool f = a->type == DQO_TYPE_F64 || b->type == DQO_TYPE_F64;
    for (uint64_t off = 0; off < n; off += QCHUNK) {
        const uint64_t m = chunk_len(off, n);
        uint8_t *o = (uint8_t *)out->own_data + off;
        if (f) {
            double ba[QCHUNK], bb[QCHUNK];
            const double *pa = chunk_f64(a, off, m, ba), *pb = chunk_f64(b, off, m, bb);
            CMP_LOOPS(pa, pb)
        } else {
            int64_t ba[QCHUNK], bb[QCHUNK];
            const int64_t *pa = chunk_i64(a, off, m, ba), *pb = chunk_i64(b, off, m, bb);
            CMP_LOOPS(pa, pb)
        }
    }
    return DQO_OK;
}

/* The text of row i of a string vector. */
static const char *str_at(const qvec *v, uint64_t i)
{
    if (v->konst && v->data == NULL)
        return v->str;
    const char *s = dict_get(v->dict, ((const uint32_t *)v->data)[v->konst ? 0 : i]);
    return s != NULL ? s : "";
}

/* String comparison. Column against literal: the text is compared once per
 * dictionary entry, then each row maps its code through that table. */
static dqo_status cmp_str(const qeval *x, lx_op op, const qvec *a,
                          const qvec *b, qvec *out)
{
    if (a->konst && !b->konst)
        return cmp_str(x, cmp_mirror(op), b, a, out);
    uint64_t n = out_rows(x, a, b);
    dqo_status s = vec_new(x, out, LX_TYPE_BOOL, n, a->konst && b->konst, 1);
    if (s == DQO_OK)
        s = valid_and(x, a, b, out);
    if (s != DQO_OK) {
        qvec_free(out);
        return s;
    }
    uint8_t *o = out->own_data;
    if (!a->konst && b->konst && a->dict != NULL) {
        uint32_t nd = dict_size(a->dict);
        uint8_t *tab = mem_alloc((size_t)nd + 1);
        if (tab == NULL) {
            qvec_free(out);
            return oom(x);
        }
        const char *lit = str_at(b, 0);
        for (uint32_t c = 0; c < nd; c++)
            tab[c] = cmp_holds(op, strcmp(dict_get(a->dict, c), lit));
        const uint32_t *codes = a->data;
        for (uint64_t i = 0; i < n; i++)
            o[i] = codes[i] < nd ? tab[codes[i]] : 0;
        mem_free(tab);
        return DQO_OK;
    }
    for (uint64_t i = 0; i < n; i++)
        o[i] = cmp_holds(op, strcmp(str_at(a, i), str_at(b, i)));
    return DQO_OK;
}

static bool is_str(const qvec *v) { return v->type == DQO_TYPE_STR; }

static dqo_status cmp_any(const qeval *x, const lexpr *e, lx_op op,
                          const qvec *a, const qvec *b, qvec *out)
{
    if (is_str(a) && is_str(b))
        return cmp_str(x, op, a, b, out);
    if (is_str(a) || is_str(b)) {
        char text[200];
        lexpr_format(x->q, e, text, sizeof text);
        return ctx_error(x->ctx, DQO_ETYPE,
                         "%s compares a string with a number", text);
    }
    return cmp_num(x, op, a, b, out);
}

/* ---------------------------------------------------------- logic */

/* Three-valued AND / OR of BOOL vectors a and b. */
static dqo_status logic(const qeval *x, bool is_and, const qvec *a,
                        const qvec *b, qvec *out)
{
    uint64_t n = out_rows(x, a, b);
    dqo_status s = vec_new(x, out, LX_TYPE_BOOL, n, a->konst && b->konst, 1);
    if (s == DQO_OK && (a->valid != NULL || b->valid != NULL))
        s = valid_own(x, out);
    if (s != DQO_OK) {
        qvec_free(out);
        return s;
    }
    uint8_t *o = out->own_data, *ov = out->own_valid;
    const uint8_t *pa = a->data, *pb = b->data;
    const uint64_t sa = a->konst ? 0 : 1, sb = b->konst ? 0 : 1;
    if (ov == NULL) {
        if (is_and)
            for (uint64_t i = 0; i < n; i++) o[i] = pa[i * sa] & pb[i * sb];
        else
            for (uint64_t i = 0; i < n; i++) o[i] = pa[i * sa] | pb[i * sb];
        return DQO_OK;
    }
    /* The deciding value (false for AND, true for OR) wins over unknown. */
    const uint8_t win = is_and ? 0 : 1;
    for (uint64_t i = 0; i < n; i++) {
        bool va = a->valid == NULL || a->valid[i * sa];
        bool vb = b->valid == NULL || b->valid[i * sb];
        uint8_t xa = pa[i * sa], xb = pb[i * sb];
        if ((va && xa == win) || (vb && xb == win)) {
            o[i] = win;
            ov[i] = 1;
        } else {
            o[i] = !win;
            ov[i] = va && vb;
        }
    }
    return DQO_OK;
}

/* NOT in place: flips the values, unknown stays unknown. */
static dqo_status negate(const qeval *x, qvec *v)
{
    if (v->own_data == NULL) {
        qvec c;
        dqo_status s = vec_new(x, &c, LX_TYPE_BOOL, v->n, v->konst, 1);
        if (s != DQO_OK)
            return s;
        memcpy(c.own_data, v->data, v->n);
        c.valid = v->valid;
        c.own_valid = v->own_valid;
        v->own_valid = NULL;
        qvec_free(v);
        *v = c;
    }
    uint8_t *o = v->own_data;
    for (uint64_t i = 0; i < v->n; i++)
        o[i] = !o[i];
    return DQO_OK;
}

static dqo_status eval_isnull(const qeval *x, const lexpr *e, const qvec *a,
                              qvec *out)
{
    dqo_status s = vec_new(x, out, LX_TYPE_BOOL, a->n, a->konst, 1);
    if (s != DQO_OK)
        return s;
    uint8_t *o = out->own_data;
    for (uint64_t i = 0; i < a->n; i++)
        o[i] = (a->valid != NULL && a->valid[i] == 0) != e->negated;
    return DQO_OK;
}

/* a BETWEEN lo AND hi is a >= lo AND a <= hi; a IN (l...) is a = l0 OR
 * a = l1 ...; negated forms are NOT of these. */
static dqo_status eval_set(const qeval *x, const lexpr *e, const qvec *a,
                           qvec *out)
{
    bool between = e->kind == LX_BETWEEN;
    if (between && e->nlist != 2)
        return ctx_error(x->ctx, DQO_EINTERNAL, "BETWEEN needs two bounds");
    memset(out, 0, sizeof *out);
    dqo_status s = DQO_OK;
    bool have = false;
    for (int i = 0; i < e->nlist && s == DQO_OK; i++) {
        qvec lit, c, acc;
        if ((s = qexpr_eval(x, e->list[i], &lit)) != DQO_OK)
            break;
        lx_op op = between ? (i == 0 ? LX_GE : LX_LE) : LX_EQ;
        s = cmp_any(x, e, op, a, &lit, &c);
        qvec_free(&lit);
        if (s != DQO_OK)
            break;
        if (!have) {
            *out = c;
            have = true;
            continue;
        }
        s = logic(x, between, out, &c, &acc);
        qvec_free(&c);
        qvec_free(out);
        if (s == DQO_OK)
            *out = acc;
        else
            have = false;
    }
    if (s == DQO_OK && !have) { /* IN () holds for no row */
        if ((s = vec_new(x, out, LX_TYPE_BOOL, 1, true, 1)) == DQO_OK)
            ((uint8_t *)out->own_data)[0] = 0;
    }
    if (s == DQO_OK && e->negated)
        s = negate(x, out);
    if (s != DQO_OK)
        qvec_free(out);
    return s;
}

/* ------------------------------------------------------------ leaves */

static dqo_status eval_literal(const qeval *x, const lexpr *e, qvec *out)
{
    if (e->kind == LX_STR) {
        memset(out, 0, sizeof *out);
        out->type = DQO_TYPE_STR;
        out->n = 1;
        out->konst = true;
        out->str = e->sval != NULL ? e->sval : "";
        return DQO_OK;
    }
    bool f = e->kind == LX_FLOAT;
    dqo_status s = vec_new(x, out, f ? DQO_TYPE_F64 : DQO_TYPE_I64, 1, true, 8);
    if (s != DQO_OK)
        return s;
    if (f)
        *(double *)out->own_data = e->fval;
    else
        *(int64_t *)out->own_data = e->ival;
    return DQO_OK;
}

dqo_status qrel_leaf(const qeval *x, const lexpr *e, qvec *out)
{
    const qrel *r = x->arg;
    memset(out, 0, sizeof *out);
    if (e->kind != LX_COL || e->table < 0 || e->table >= x->q->ntables ||
        !(r->present >> e->table & 1))
        return ctx_error(x->ctx, DQO_EINTERNAL,
                         "expression leaf of kind %d is not a column of this "
                         "relation", (int)e->kind);
    const dqo_table *t = x->q->tables[e->table].table;
    if (e->col < 0 || e->col >= t->ncols)
        return ctx_error(x->ctx, DQO_EINTERNAL, "column %d out of range",
                         e->col);
    const dqo_column *c = &t->cols[e->col];
    out->type = c->type;
    out->n = r->rows;
    out->dict = c->dict;
    const uint32_t *rid = r->rid[e->table];
    if (rid == NULL) { /* identity: the column in place */
        out->data = c->data;
        out->valid = c->valid;
        return DQO_OK;
    }
    size_t w = type_width(c->type);
    uint64_t n = r->rows;
    out->own_data = mem_alloc(n * w + 1);
    out->own_valid = c->valid != NULL ? mem_alloc(n + 1) : NULL;
    if (out->own_data == NULL || (c->valid != NULL && out->own_valid == NULL)) {
        qvec_free(out);
        return oom(x);
    }
    const int threads = ctx_threads(x->ctx);
    x->ctx->cpu->gather(out->own_data, c->data, w, rid, n, threads);
    if (out->own_valid != NULL)
        x->ctx->cpu->gather(out->own_valid, c->valid, 1, rid, n, threads);
    out->data = out->own_data;
    out->valid = out->own_valid;
    out->type = c->type;
    out->dict = c->dict;
    out->n = n;
    return DQO_OK;
}

/* ------------------------------------------------------------- eval */

static dqo_status eval_bin(const qeval *x, const lexpr *e, qvec *out)
{
    qvec a, b;
    dqo_status s = qexpr_eval(x, e->a, &a);
    if (s != DQO_OK)
        return s;
    if ((s = qexpr_eval(x, e->b, &b)) != DQO_OK) {
        qvec_free(&a);
        return s;
    }
    switch (e->op) {
    case LX_ADD: case LX_SUB: case LX_MUL: case LX_DIV: case LX_MOD:
        if (is_str(&a) || is_str(&b))
            s = ctx_error(x->ctx, DQO_ETYPE, "arithmetic on a string");
        else if (a.type == DQO_TYPE_F64 || b.type == DQO_TYPE_F64)
            s = arith_f64(x, e, &a, &b, out);
        else
            s = arith_i64(x, e, &a, &b, out);
        break;
    case LX_AND: case LX_OR:
        s = logic(x, e->op == LX_AND, &a, &b, out);
        break;
    default:
        s = cmp_any(x, e, e->op, &a, &b, out);
    }
    qvec_free(&a);
    qvec_free(&b);
    return s;
}

dqo_status qexpr_eval(const qeval *x, const lexpr *e, qvec *out)
{
    memset(out, 0, sizeof *out);
    if (e == NULL)
        return ctx_error(x->ctx, DQO_EINTERNAL, "NULL expression");
    qvec a;
    dqo_status s;
    switch (e->kind) {
    case LX_COL:
    case LX_GROUPREF:
    case LX_AGG:
        return x->leaf(x, e, out);
    case LX_INT:
    case LX_FLOAT:
    case LX_STR:
        return eval_literal(x, e, out);
    case LX_BIN:
        return eval_bin(x, e, out);
    default:
        break;
    }
    if ((s = qexpr_eval(x, e->a, &a)) != DQO_OK)
        return s;
    switch (e->kind) {
    case LX_NOT:
        *out = a;
        memset(&a, 0, sizeof a);
        s = negate(x, out);
        break;
    case LX_NEG:
        if (is_str(&a))
            s = ctx_error(x->ctx, DQO_ETYPE, "unary minus on a string");
        else
            s = eval_neg(x, e, &a, out);
        break;
    case LX_ISNULL:
        s = eval_isnull(x, e, &a, out);
        break;
    case LX_BETWEEN:
    case LX_IN:
        s = eval_set(x, e, &a, out);
        break;
    default:
        s = ctx_error(x->ctx, DQO_EINTERNAL, "unknown expression kind %d",
                      (int)e->kind);
    }
    qvec_free(&a);
    if (s != DQO_OK)
        qvec_free(out);
    return s;
}
