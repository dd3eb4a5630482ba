/*
 * exec.c - the plan executor: walks the planner's tree (planner/plan.h)
 * bottom up and runs each granule, timing it for EXPLAIN ANALYZE.
 *
 * Intermediates below the grouping are relations of row ids per base table
 * (query_int.h); a single unfiltered table stays an identity relation, so a
 * GROUP BY over a registered table hands the table's own columns to the
 * grouping query (zero-copy, device-resident copies included). Joins gather
 * their key columns, pack composite keys into one i64 over the combined
 * range of both sides, translate string keys into the probe side's
 * dictionary, and call the CPU back-end's join with the node's algorithm.
 * Groupings go through the dqo_group builder (engine/group.c) with the
 * node's kernel and location forced. PROJECT, ORDER and LIMIT then work on
 * the result table.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "engine/query_int.h"

/* Most distinct aggregates of one select list: what one kernel call
 * carries after lowering (each aggregate lowers to at least one). */
#define QX_MAX_AGGS GRP_MAX_AGGS

typedef struct qx {
    dqo_ctx *ctx;
    const lquery *q;
    const plan_model *m;
    const double *stats_ms;
    int naggs; /* distinct LX_AGG nodes of the select list */
    const lexpr *aggs[QX_MAX_AGGS];
} qx;

/* What a node hands to its parent: a relation, a grouped table (keys, then
 * one column per aggregate of qx.aggs), or the result table. */
typedef struct qstate {
    qrel rel;
    dqo_table *grp;
    int grp_keys; /* key columns of grp */
    dqo_table *res;
} qstate;

static void qstate_free(qstate *s)
{
    qrel_free(&s->rel);
    dqo_table_destroy(s->grp);
    dqo_table_destroy(s->res);
    memset(s, 0, sizeof *s);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Appends text to a node's reason, as far as it fits. */
static void why_append(plan_node *n, const char *fmt, ...)
    DQO_PRINTF(2, 3);
static void why_append(plan_node *n, const char *fmt, ...)
{
    size_t len = strlen(n->why);
    if (len + 1 >= sizeof n->why)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->why + len, sizeof n->why - len, fmt, ap);
    va_end(ap);
}

static dqo_status oom(dqo_ctx *ctx, const char *what)
{
    return ctx_error(ctx, DQO_ENOMEM, "out of memory %s", what);
}

/* ------------------------------------------------------ result columns */

/* Appends vector v (rows values; broadcast when constant) to table t as
 * column `name`: BOOL becomes I32 0/1, strings keep a copy of their
 * dictionary, data v owns is taken over, borrowed data is copied. */
static dqo_status add_vec(dqo_ctx *ctx, dqo_table *t, const char *name,
                          qvec *v, uint64_t rows)
{
    int type = v->type == LX_TYPE_BOOL ? DQO_TYPE_I32 : v->type;
    size_t w = type_width((dqo_type)type);
    void *data = NULL;
    uint8_t *valid = NULL;
    dqo_dict *dict = NULL;
    bool lit = type == DQO_TYPE_STR && v->konst && v->data == NULL;
    if (type == DQO_TYPE_STR) {
        uint32_t code;
        dict = lit ? dict_create() : qdict_copy(v->dict);
        if (dict == NULL || (lit && dict_intern(dict, v->str, strlen(v->str),
                                                &code) != DQO_OK))
            goto nomem;
    }
    if (v->own_data != NULL && !v->konst && v->type != LX_TYPE_BOOL &&
        v->n == rows) {
        data = v->own_data;
        v->own_data = NULL;
    } else {
        if ((data = mem_alloc(rows * w + 1)) == NULL)
            goto nomem;
        for (uint64_t i = 0; i < rows; i++) {
            uint64_t j = v->konst ? 0 : i;
            if (lit)
                ((uint32_t *)data)[i] = 0;
            else if (v->type == LX_TYPE_BOOL)
                ((int32_t *)data)[i] = ((const uint8_t *)v->data)[j];
            else
                memcpy((char *)data + i * w, (const char *)v->data + j * w, w);
        }
    }
    if (v->valid != NULL) {
        if (v->own_valid != NULL && !v->konst && v->n == rows) {
            valid = v->own_valid;
            v->own_valid = NULL;
        } else {
            if ((valid = mem_alloc(rows + 1)) == NULL)
                goto nomem;
            for (uint64_t i = 0; i < rows; i++)
                valid[i] = v->valid[v->konst ? 0 : i];
        }
    }
    return table_add_owned(ctx, t, name, (dqo_type)type, data, valid, rows,
                           dict);
nomem:
    mem_free(data);
    mem_free(valid);
    dict_destroy(dict);
    return oom(ctx, "building a result column");
}

/* A name for a new column of t: `base`, else base_2, base_3, ... */
static void unique_name(const dqo_table *t, const char *base, char *out,
                        size_t len)
{
    snprintf(out, len, "%s", base);
    for (int k = 2;; k++) {
        bool taken = false;
        for (int i = 0; i < t->ncols && !taken; i++)
            taken = strcmp(t->cols[i].name, out) == 0;
        if (!taken)
            return;
        snprintf(out, len, "%s_%d", base, k);
    }
}

/* A new table of rows perm[i] (i when perm is NULL), i < n, of t; string
 * dictionaries move from t to the new table. */
static dqo_status table_take(dqo_ctx *ctx, dqo_table *t, const uint64_t *perm,
                             uint64_t n, dqo_table **out)
{
    dqo_table *r = NULL;
    dqo_status s = table_new(ctx, &r);
    for (int c = 0; s == DQO_OK && c < t->ncols; c++) {
        dqo_column *col = &t->cols[c];
        size_t w = type_width(col->type);
        void *data = mem_alloc(n * w + 1);
        uint8_t *valid = col->valid != NULL ? mem_alloc(n + 1) : NULL;
        if (data == NULL || (col->valid != NULL && valid == NULL)) {
            mem_free(data);
            mem_free(valid);
            s = oom(ctx, "reordering the result");
            break;
        }
        for (uint64_t i = 0; i < n; i++) {
            uint64_t j = perm != NULL ? perm[i] : i;
            memcpy((char *)data + i * w, (const char *)col->data + j * w, w);
            if (valid != NULL)
                valid[i] = col->valid[j];
        }
        s = table_add_owned(ctx, r, col->name, col->type, data, valid, n,
                            col->dict);
        col->dict = NULL;
    }
    if (s != DQO_OK) {
        dqo_table_destroy(r);
        return s;
    }
    *out = r;
    return DQO_OK;
}

/* ------------------------------------------------------------- filter */

/* Keeps the rows of rel where every predicate is true. */
static dqo_status exec_filter(qx *x, const plan_node *n, qrel *rel)
{
    uint8_t *keep = mem_alloc(rel->rows + 1);
    if (keep == NULL)
        return oom(x->ctx, "filtering");
    memset(keep, 1, rel->rows);
    qeval ev = {x->ctx, x->q, rel->rows, qrel_leaf, rel};
    dqo_status s = DQO_OK;
    for (int p = 0; p < n->npred && s == DQO_OK; p++) {
        qvec v;
        if ((s = qexpr_eval(&ev, n->pred[p], &v)) != DQO_OK)
            break;
        const uint8_t *d = v.data;
        const uint64_t st = v.konst ? 0 : 1;
        for (uint64_t i = 0; i < rel->rows; i++)
            keep[i] &= d[i * st] & (v.valid == NULL || v.valid[i * st]);
        qvec_free(&v);
    }
    uint64_t kept = 0;
    for (uint64_t i = 0; s == DQO_OK && i < rel->rows; i++)
        kept += keep[i];
    if (s == DQO_OK && kept == rel->rows) { /* all kept: rel stays as is */
        mem_free(keep);
        return DQO_OK;
    }
    qrel nr = {.rows = kept, .present = rel->present};
    for (int t = 0; s == DQO_OK && t < LQ_MAX_TABLES; t++) {
        if (!(rel->present >> t & 1))
            continue;
        if ((nr.rid[t] = mem_alloc(kept * sizeof(uint32_t) + 1)) == NULL) {
            s = oom(x->ctx, "filtering");
            break;
        }
        const uint32_t *old = rel->rid[t];
        for (uint64_t i = 0, j = 0; i < rel->rows; i++)
            if (keep[i])
                nr.rid[t][j++] = old != NULL ? old[i] : (uint32_t)i;
    }
    mem_free(keep);
    if (s != DQO_OK) {
        qrel_free(&nr);
        return s;
    }
    qrel_free(rel);
    *rel = nr;
    return DQO_OK;
}

/* --------------------------------------------------------------- join */

/* One side's join key, ready for the back-end. */
typedef struct jkey {
    dqo_type type;
    const void *data;
    const uint8_t *valid;
    void *own;
    uint8_t *own_valid;
    dqo_column_stats st;
} jkey;

static void jkey_free(jkey *k)
{
    mem_free(k->own);
    mem_free(k->own_valid);
}

/* Translates the codes of string vector b (build) into the dictionary of p
 * (probe): into *codes, with *valid marking rows whose text p lacks (and
 * b's NULLs) as no match. */
static dqo_status str_translate(dqo_ctx *ctx, const qvec *b, const qvec *p,
                                uint32_t **codes, uint8_t **valid)
{
    uint32_t np = dict_size(p->dict), nb = dict_size(b->dict);
    dqo_dict *probe = qdict_copy(p->dict);
    uint32_t *tab = mem_alloc(((size_t)nb + 1) * sizeof *tab);
    *codes = mem_alloc(b->n * sizeof(uint32_t) + 1);
    *valid = mem_alloc(b->n + 1);
    dqo_status s = DQO_OK;
    if (probe == NULL || tab == NULL || *codes == NULL || *valid == NULL) {
        s = oom(ctx, "translating string join keys");
        goto done;
    }
    /* Interning into a copy of the probe dictionary gives the probe's code
     * for a text it holds, and a new code (>= np) for one it lacks. */
    for (uint32_t c = 0; c < nb; c++) {
        const char *txt = dict_get(b->dict, c);
        uint32_t code;
        if (dict_intern(probe, txt, strlen(txt), &code) != DQO_OK) {
            s = oom(ctx, "translating string join keys");
            goto done;
        }
        tab[c] = code < np ? code : UINT32_MAX;
    }
    const uint32_t *bc = b->data;
    for (uint64_t i = 0; i < b->n; i++) {
        uint32_t t = bc[i] < nb ? tab[bc[i]] : UINT32_MAX;
        (*valid)[i] = t != UINT32_MAX && (b->valid == NULL || b->valid[i]);
        (*codes)[i] = t != UINT32_MAX ? t : 0;
    }
done:
    dict_destroy(probe);
    mem_free(tab);
    if (s != DQO_OK) {
        mem_free(*codes);
        mem_free(*valid);
        *codes = NULL;
        *valid = NULL;
    }
    return s;
}

/* Evaluates key k of both sides into vb (build) and vp (probe), with a
 * build-side string key already translated into the probe's dictionary. */
static dqo_status key_pair(qx *x, const plan_node *n, int k, const qrel *b,
                           const qrel *p, qvec *vb, qvec *vp)
{
    qeval eb = {x->ctx, x->q, b->rows, qrel_leaf, b};
    qeval ep = {x->ctx, x->q, p->rows, qrel_leaf, p};
    dqo_status s = qexpr_eval(&eb, n->build_key[k], vb);
    if (s != DQO_OK)
        return s;
    if ((s = qexpr_eval(&ep, n->probe_key[k], vp)) != DQO_OK) {
        qvec_free(vb);
        return s;
    }
    bool sb = vb->type == DQO_TYPE_STR, sp = vp->type == DQO_TYPE_STR;
    if (sb != sp || vb->type == DQO_TYPE_F64 || vp->type == DQO_TYPE_F64 ||
        vb->konst || vp->konst) {
        char t1[128], t2[128];
        lexpr_format(x->q, n->build_key[k], t1, sizeof t1);
        lexpr_format(x->q, n->probe_key[k], t2, sizeof t2);
        s = ctx_error(x->ctx, DQO_ETYPE,
                      "cannot join %s (%s) with %s (%s): join keys must be "
                      "integer or string columns of matching kind",
                      t1, vb->type < DQO_TYPE_COUNT_ ? dqo_type_name(vb->type) : "bool",
                      t2, vp->type < DQO_TYPE_COUNT_ ? dqo_type_name(vp->type) : "bool");
    } else if (sb && vb->dict != vp->dict) {
        uint32_t *codes;
        uint8_t *valid;
        if ((s = str_translate(x->ctx, vb, vp, &codes, &valid)) == DQO_OK) {
            qvec_free(vb);
            vb->type = DQO_TYPE_STR;
            vb->n = b->rows;
            vb->data = vb->own_data = codes;
            vb->valid = vb->own_valid = valid;
            vb->dict = vp->dict;
        }
    }
    if (s != DQO_OK) {
        qvec_free(vb);
        qvec_free(vp);
    }
    return s;
}

/* Bits to hold values 0..range. */
static unsigned bits_for(uint64_t range)
{
    unsigned b = 0;
    while (b < 64 && (range >> b) != 0)
        b++;
    return b;
}

/* Packs nkeys components (int64 values with validity, per side) into one
 * i64 key per side over the combined min/max of both sides. */
static dqo_status pack_keys(qx *x, int nk, qvec *vb, qvec *vp, jkey *kb,
                            jkey *kp)
{
    qvec *side[2] = {vb, vp};
    jkey *out[2] = {kb, kp};
    const int64_t *p[2][LQ_MAX_JOIN_KEYS];
    int64_t *own[2][LQ_MAX_JOIN_KEYS];
    memset(own, 0, sizeof own);
    int64_t mn[LQ_MAX_JOIN_KEYS], mx[LQ_MAX_JOIN_KEYS];
    unsigned shift[LQ_MAX_JOIN_KEYS], total = 0;
    dqo_status s = DQO_OK;
    for (int k = 0; k < nk; k++) {
        mn[k] = INT64_MAX;
        mx[k] = INT64_MIN;
        for (int sd = 0; sd < 2 && s == DQO_OK; sd++) {
            qvec *v = &side[sd][k];
            qeval ev = {x->ctx, x->q, v->n, NULL, NULL};
            if ((s = qvec_as_i64(&ev, v, &p[sd][k], &own[sd][k])) != DQO_OK)
                break;
            for (uint64_t i = 0; i < v->n; i++) {
                if (v->valid != NULL && !v->valid[i])
                    continue;
                int64_t e = p[sd][k][i];
                mn[k] = e < mn[k] ? e : mn[k];
                mx[k] = e > mx[k] ? e : mx[k];
            }
        }
        if (s != DQO_OK)
            goto done;
        unsigned b = mn[k] <= mx[k] ? bits_for((uint64_t)mx[k] - (uint64_t)mn[k]) : 0;
        shift[k] = total;
        total += b;
    }
    if (total > 64) {
        s = ctx_error(x->ctx, DQO_EUNSUPPORTED,
                      "composite join key needs %u bits (> 64): the combined "
                      "value ranges of its %d columns are too wide to pack",
                      total, nk);
        goto done;
    }
    for (int sd = 0; sd < 2; sd++) {
        uint64_t rows = side[sd][0].n;
        jkey *o = out[sd];
        o->type = DQO_TYPE_I64;
        o->own = mem_alloc(rows * sizeof(int64_t) + 1);
        o->own_valid = mem_alloc(rows + 1);
        if (o->own == NULL || o->own_valid == NULL) {
            s = oom(x->ctx, "packing a composite join key");
            goto done;
        }
        uint64_t *key = o->own;
        memset(key, 0, rows * sizeof *key);
        memset(o->own_valid, 1, rows);
        for (int k = 0; k < nk; k++) {
            const qvec *v = &side[sd][k];
            for (uint64_t i = 0; i < rows; i++) {
                key[i] |= ((uint64_t)p[sd][k][i] - (uint64_t)mn[k]) << shift[k] % 64;
                if (v->valid != NULL && !v->valid[i])
                    o->own_valid[i] = 0;
            }
        }
        o->data = o->own;
        o->valid = o->own_valid;
    }
done:
    for (int sd = 0; sd < 2; sd++)
        for (int k = 0; k < nk; k++)
            mem_free(own[sd][k]);
    return s;
}

/* Makes the back-end's key of one side from a single vector: integer keys
 * of different types on the two sides are widened to i64. */
static dqo_status single_key(qx *x, qvec *v, dqo_type type, jkey *o)
{
    memset(o, 0, sizeof *o);
    dqo_type vt = v->type == DQO_TYPE_STR ? DQO_TYPE_U32 : (dqo_type)v->type;
    o->valid = v->valid;
    if (vt == type) {
        o->type = type;
        o->data = v->data;
        return DQO_OK;
    }
    const int64_t *p;
    int64_t *own;
    qeval ev = {x->ctx, x->q, v->n, NULL, NULL};
    dqo_status s = qvec_as_i64(&ev, v, &p, &own);
    o->type = DQO_TYPE_I64;
    o->data = p;
    o->own = own;
    return s;
}

/* The statistics of a join key: a base column read in place (same data,
 * same validity) reuses the column's cached statistics, which planning
 * already measured; a gathered, converted or packed key gets one pass. */
static dqo_status key_stats(qx *x, jkey *k, uint64_t rows, const lexpr *col)
{
    if (col != NULL && col->kind == LX_COL && col->table >= 0 &&
        col->table < x->q->ntables) {
        dqo_table *t = (dqo_table *)x->q->tables[col->table].table;
        if (t != NULL && col->col >= 0 && col->col < t->ncols) {
            dqo_column *c = &t->cols[col->col];
            const dqo_column_stats *st;
            if (c->data == k->data && c->valid == k->valid &&
                t->rows == rows &&
                column_stats(x->ctx, c, rows, &st) == DQO_OK) {
                k->st = *st;
                return DQO_OK;
            }
        }
    }
    dqo_status s = x->ctx->cpu->stats(k->type, k->data, k->valid, rows,
                                      ctx_threads(x->ctx), &k->st);
    if (s != DQO_OK)
        return ctx_error(x->ctx, s, "statistics of a join key failed: %s",
                         dqo_status_str(s));
    return DQO_OK;
}

/* The relation of the matching pairs: row ids of both sides composed. */
static dqo_status join_compose(qx *x, const qrel *b, const qrel *p,
                               const join_output *jo, qrel *out)
{
    memset(out, 0, sizeof *out);
    out->rows = jo->pairs;
    out->present = b->present | p->present;
    for (int t = 0; t < LQ_MAX_TABLES; t++) {
        const qrel *side = b->present >> t & 1 ? b : p->present >> t & 1 ? p : NULL;
        if (side == NULL)
            continue;
        const uint32_t *pair = side == b ? jo->build_row : jo->probe_row;
        const uint32_t *old = side->rid[t];
        if ((out->rid[t] = mem_alloc(jo->pairs * sizeof(uint32_t) + 1)) == NULL) {
            qrel_free(out);
            return oom(x->ctx, "composing join results");
        }
        if (jo->pairs == 0)
            continue;
        if (old != NULL)
            x->ctx->cpu->gather(out->rid[t], old, sizeof *old, pair,
                                jo->pairs, ctx_threads(x->ctx));
        else
            memcpy(out->rid[t], pair, jo->pairs * sizeof *pair);
    }
    return DQO_OK;
}

static dqo_status exec_join(qx *x, plan_node *n, qrel *b, qrel *p, qrel *out)
{
    dqo_ctx *ctx = x->ctx;
    if (ctx->cpu->join == NULL)
        return ctx_error(ctx, DQO_EUNSUPPORTED, "the CPU back-end has no join");
    if (n->nkeys < 1 || n->nkeys > LQ_MAX_JOIN_KEYS)
        return ctx_error(ctx, DQO_EINTERNAL, "join with %d keys", n->nkeys);
    if (b->rows >= UINT32_MAX || p->rows >= UINT32_MAX)
        return ctx_error(ctx, DQO_EUNSUPPORTED, "a join side has %" PRIu64
                         " rows; joins take fewer than 2^32",
                         b->rows > p->rows ? b->rows : p->rows);
    qvec vb[LQ_MAX_JOIN_KEYS], vp[LQ_MAX_JOIN_KEYS];
    memset(vb, 0, sizeof vb);
    memset(vp, 0, sizeof vp);
    jkey kb, kp;
    memset(&kb, 0, sizeof kb);
    memset(&kp, 0, sizeof kp);
    join_output jo;
    memset(&jo, 0, sizeof jo);
    dqo_status s = DQO_OK;
    for (int k = 0; k < n->nkeys && s == DQO_OK; k++)
        s = key_pair(x, n, k, b, p, &vb[k], &vp[k]);
    if (s != DQO_OK)
        goto done;
    if (n->nkeys > 1) {
        s = pack_keys(x, n->nkeys, vb, vp, &kb, &kp);
    } else {
        dqo_type tb = vb[0].type == DQO_TYPE_STR ? DQO_TYPE_U32 : (dqo_type)vb[0].type;
        dqo_type tp = vp[0].type == DQO_TYPE_STR ? DQO_TYPE_U32 : (dqo_type)vp[0].type;
        dqo_type t = tb == tp ? tb : DQO_TYPE_I64;
        if ((s = single_key(x, &vb[0], t, &kb)) == DQO_OK)
            s = single_key(x, &vp[0], t, &kp);
    }
    const bool one = n->nkeys == 1;
    if (s == DQO_OK && (s = key_stats(x, &kb, b->rows,
                                      one ? n->build_key[0] : NULL)) == DQO_OK)
        s = key_stats(x, &kp, p->rows, one ? n->probe_key[0] : NULL);
    if (s != DQO_OK)
        goto done;
    join_input in = {.key_type = kb.type, .build_keys = kb.data,
                     .build_valid = kb.valid, .build_rows = b->rows,
                     .build_stats = &kb.st, .probe_keys = kp.data,
                     .probe_valid = kp.valid, .probe_rows = p->rows,
                     .probe_stats = &kp.st, .threads = ctx_threads(ctx)};
    s = ctx->cpu->join(&in, n->alg, &jo);
    if (s == DQO_EUNSUPPORTED && n->alg != PLAN_JOIN_HASH) {
        why_append(n, "; %s could not take this input (%s), so hj ran",
                   plan_join_name((plan_join_alg)n->alg),
                   jo.detail[0] ? jo.detail : "unsupported");
        join_output_free(&jo);
        memset(&jo, 0, sizeof jo);
        s = ctx->cpu->join(&in, PLAN_JOIN_HASH, &jo);
    }
    if (s != DQO_OK) {
        s = ctx_error(ctx, s, "join %s failed: %s",
                      plan_join_name((plan_join_alg)n->alg), dqo_status_str(s));
        goto done;
    }
    s = join_compose(x, b, p, &jo, out);
done:
    join_output_free(&jo);
    jkey_free(&kb);
    jkey_free(&kp);
    for (int k = 0; k < n->nkeys && k < LQ_MAX_JOIN_KEYS; k++) {
        qvec_free(&vb[k]);
        qvec_free(&vp[k]);
    }
    return s;
}

/* -------------------------------------------------------------- group */

/* Collects the distinct LX_AGG nodes of e into x->aggs. */
static dqo_status collect_aggs(qx *x, const lexpr *e)
{
    if (e == NULL)
        return DQO_OK;
    if (e->kind == LX_AGG) {
        for (int i = 0; i < x->naggs; i++)
            if (qexpr_same(x->aggs[i], e))
                return DQO_OK;
        if (x->naggs == QX_MAX_AGGS)
            return ctx_error(x->ctx, DQO_EUNSUPPORTED,
                             "too many aggregates (at most %d distinct ones)",
                             QX_MAX_AGGS);
        x->aggs[x->naggs++] = e;
        return DQO_OK;
    }
    dqo_status s = collect_aggs(x, e->a);
    if (s == DQO_OK)
        s = collect_aggs(x, e->b);
    for (int i = 0; s == DQO_OK && i < e->nlist; i++)
        s = collect_aggs(x, e->list[i]);
    return s;
}

/* True when the grouping can read the base table in place: an identity
 * relation of one table, and every key and aggregate argument a column. */
static int group_in_place(const qx *x, const qrel *rel)
{
    int t = -1;
    for (int i = 0; i < x->q->ntables; i++)
        if (rel->present >> i & 1) {
            if (t >= 0 || rel->rid[i] != NULL)
                return -1;
            t = i;
        }
    if (t < 0 || x->q->ngroup == 0)
        return -1;
    for (int i = 0; i < x->q->ngroup; i++) {
        if (x->q->group[i]->kind != LX_COL)
            return -1;
        for (int j = 0; j < i; j++) /* a column twice: keys k0, k1 apart */
            if (x->q->group[j]->col == x->q->group[i]->col)
                return -1;
    }
    for (int i = 0; i < x->naggs; i++)
        if (x->aggs[i]->a != NULL && x->aggs[i]->a->kind != LX_COL)
            return -1;
    return t;
}

/* Builds the grouping's input table from rel: key columns k0.., a constant
 * key k0 for a global aggregate, and aggregate arguments a0... */
static dqo_status group_input(qx *x, const qrel *rel, dqo_table **out)
{
    dqo_table *t = NULL;
    dqo_status s = table_new(x->ctx, &t);
    qeval ev = {x->ctx, x->q, rel->rows, qrel_leaf, rel};
    char name[16];
    if (s == DQO_OK && x->q->ngroup == 0) {
        uint32_t *zero = mem_calloc(rel->rows + 1, sizeof *zero);
        s = zero != NULL ? table_add_owned(x->ctx, t, "k0", DQO_TYPE_U32, zero,
                                           NULL, rel->rows, NULL)
                         : oom(x->ctx, "building a constant key");
    }
    for (int i = 0; s == DQO_OK && i < x->q->ngroup; i++) {
        qvec v;
        snprintf(name, sizeof name, "k%d", i);
        if ((s = qexpr_eval(&ev, x->q->group[i], &v)) == DQO_OK)
            s = add_vec(x->ctx, t, name, &v, rel->rows);
        qvec_free(&v);
    }
    for (int i = 0; s == DQO_OK && i < x->naggs; i++) {
        if (x->aggs[i]->a == NULL)
            continue;
        qvec v;
        snprintf(name, sizeof name, "a%d", i);
        if ((s = qexpr_eval(&ev, x->aggs[i]->a, &v)) == DQO_OK)
            s = add_vec(x->ctx, t, name, &v, rel->rows);
        qvec_free(&v);
    }
    if (s != DQO_OK) {
        dqo_table_destroy(t);
        return s;
    }
    *out = t;
    return DQO_OK;
}

/* The result type of an aggregate over an argument of type `at`. */
static dqo_type agg_type(dqo_agg a, int at)
{
    switch (a) {
    case DQO_AGG_COUNT_STAR:
    case DQO_AGG_COUNT: return DQO_TYPE_I64;
    case DQO_AGG_AVG: return DQO_TYPE_F64;
    case DQO_AGG_SUM: return at == DQO_TYPE_F64 ? DQO_TYPE_F64 : DQO_TYPE_I64;
    default: return at == LX_TYPE_BOOL ? DQO_TYPE_I32 : (dqo_type)at;
    }
}

/* A global aggregate over no rows: one row, COUNTs 0, the others NULL. */
static dqo_status global_empty(qx *x, dqo_table **out)
{
    dqo_table *t = NULL;
    dqo_status s = table_new(x->ctx, &t);
    uint32_t *k = mem_calloc(1, 8);
    s = s != DQO_OK ? s
        : k != NULL ? table_add_owned(x->ctx, t, "k0", DQO_TYPE_U32, k, NULL, 1, NULL)
                    : oom(x->ctx, "building an empty aggregate");
    for (int i = 0; s == DQO_OK && i < x->naggs; i++) {
        const lexpr *a = x->aggs[i];
        dqo_type ty = agg_type(a->agg, a->a != NULL ? a->a->type : DQO_TYPE_I64);
        bool count = a->agg == DQO_AGG_COUNT || a->agg == DQO_AGG_COUNT_STAR;
        void *d = mem_calloc(1, 8);
        uint8_t *v = count ? NULL : mem_calloc(1, 1);
        char name[16];
        snprintf(name, sizeof name, "a%d", i);
        s = d != NULL && (count || v != NULL)
                ? table_add_owned(x->ctx, t, name, ty, d, v, 1, NULL)
                : (mem_free(d), mem_free(v), oom(x->ctx, "building an empty aggregate"));
    }
    if (s != DQO_OK) {
        dqo_table_destroy(t);
        return s;
    }
    *out = t;
    return DQO_OK;
}

/* Declares keys and aggregates of a grouping over `in` (in place: the base
 * table's own column names; else group_input's names). */
static dqo_status group_setup(qx *x, dqo_group *g, const dqo_table *in,
                              bool in_place)
{
    dqo_status s = DQO_OK;
    int nk = x->q->ngroup > 0 ? x->q->ngroup : 1;
    char name[16];
    for (int i = 0; s == DQO_OK && i < nk; i++) {
        snprintf(name, sizeof name, "k%d", i);
        s = dqo_group_add_key(g, in_place ? in->cols[x->q->group[i]->col].name
                                          : name);
    }
    /* Aggregates are named by their SQL text, so that the grouping's
     * errors (an overflowing SUM) name them as the query wrote them. */
    char alias[QX_MAX_AGGS][128];
    for (int i = 0; s == DQO_OK && i < x->naggs; i++) {
        const lexpr *a = x->aggs[i];
        const char *col = NULL;
        snprintf(name, sizeof name, "a%d", i);
        lexpr_format(x->q, a, alias[i], sizeof alias[i]);
        for (int j = 0; j < i; j++)
            if (strcmp(alias[i], alias[j]) == 0)
                snprintf(alias[i], sizeof alias[i], "agg%d", i);
        if (a->a != NULL)
            col = in_place ? in->cols[a->a->col].name : name;
        s = dqo_group_add_agg(g, a->agg, col, alias[i]);
    }
    return s;
}

/* Runs the grouping on `in` with the node's kernel and location; when that
 * kernel cannot take the key, with the automatic choice. */
static dqo_status group_run(qx *x, plan_node *n, const dqo_table *in,
                            bool in_place, dqo_table **out)
{
    dqo_ctx *ctx = x->ctx;
    dqo_group *g = NULL;
    dqo_status s = dqo_group_create(ctx, in, &g);
    if (s == DQO_OK)
        s = group_setup(x, g, in, in_place);
    const char *loc = "cpu";
    if (x->m != NULL && n->location >= 0 && n->location < x->m->nloc &&
        x->m->loc[n->location].kind == PLAN_LOC_CL)
        loc = x->m->loc[n->location].id;
    const char *kname = n->alg >= 0 && n->alg < GRP_KERNEL_COUNT_
                            ? grp_kernel_name((grp_kernel)n->alg)
                            : "auto";
    if (s == DQO_OK)
        s = dqo_group_set_device(g, loc);
    if (s == DQO_OK)
        s = dqo_group_set_kernel(g, kname);
    if (s == DQO_OK)
        s = dqo_group_run(g, out);
    /* Setup succeeded, so an EINVAL from the run is the forced kernel
     * rejecting the key too (cpu/group_direct.c answers a span over its
     * slot limit with EINVAL): both fall back to the automatic choice. */
    if ((s == DQO_EUNSUPPORTED || s == DQO_EINVAL) &&
        strcmp(kname, "auto") != 0) {
        why_append(n, "; %s could not take the key (%.120s), so the "
                   "automatic choice ran", kname, dqo_ctx_errmsg(ctx));
        if ((s = dqo_group_set_kernel(g, "auto")) == DQO_OK)
            s = dqo_group_run(g, out);
    }
    /* A device that cannot take the grouping at all (more aggregates than
     * its kernels carry): the CPU runs it, as dqo_group's auto does. */
    if ((s == DQO_EUNSUPPORTED || s == DQO_EINVAL) && strcmp(loc, "cpu") != 0) {
        why_append(n, "; %s could not run it (%.120s), so it ran on the CPU",
                   loc, dqo_ctx_errmsg(ctx));
        if ((s = dqo_group_set_device(g, "cpu")) == DQO_OK &&
            (s = dqo_group_set_kernel(g, "auto")) == DQO_OK)
            s = dqo_group_run(g, out);
    }
    if (s == DQO_OK && ctx->trace)
        fprintf(stderr, "dqo trace: query group %s\n", dqo_group_explain(g));
    dqo_group_destroy(g);
    return s;
}

static dqo_status exec_group(qx *x, plan_node *n, qrel *rel, qstate *out)
{
    const lquery *q = x->q;
    out->grp_keys = q->ngroup > 0 ? q->ngroup : 1;
    if (q->ngroup == 0 && rel->rows == 0)
        return global_empty(x, &out->grp);
    int t = group_in_place(x, rel);
    if (t >= 0)
        return group_run(x, n, q->tables[t].table, true, &out->grp);
    dqo_table *in = NULL;
    dqo_status s = group_input(x, rel, &in);
    if (s == DQO_OK)
        s = group_run(x, n, in, false, &out->grp);
    dqo_table_destroy(in);
    return s;
}

/* ------------------------------------------------------------ project */

/* What the leaves of a select list over a grouping read. */
typedef struct grp_view {
    const qx *x;
    const dqo_table *grp; /* keys, then one column per x->aggs */
    int keys;
} grp_view;

/* Leaves over a grouped table: a group key or one of the aggregates. */
static dqo_status grp_leaf(const qeval *ev, const lexpr *e, qvec *out)
{
    const grp_view *gv = ev->arg;
    int col = -1;
    if (e->kind == LX_GROUPREF && e->col >= 0 && e->col < gv->keys)
        col = e->col;
    for (int i = 0; e->kind == LX_AGG && i < gv->x->naggs; i++)
        if (qexpr_same(gv->x->aggs[i], e))
            col = gv->keys + i;
    memset(out, 0, sizeof *out);
    if (col < 0 || col >= gv->grp->ncols) {
        char text[128];
        lexpr_format(ev->q, e, text, sizeof text);
        return ctx_error(ev->ctx, DQO_EINTERNAL, "%s is neither a group key "
                         "nor an aggregate of the grouping", text);
    }
    const dqo_column *c = &gv->grp->cols[col];
    out->type = c->type;
    out->n = gv->grp->rows;
    out->data = c->data;
    out->valid = c->valid;
    out->dict = c->dict;
    return DQO_OK;
}

static dqo_status exec_project(qx *x, qstate *in, dqo_table **out)
{
    const lquery *q = x->q;
    qeval ev = {x->ctx, q, in->rel.rows, qrel_leaf, &in->rel};
    grp_view gv = {x, in->grp, in->grp_keys};
    if (in->grp != NULL) {
        ev.rows = in->grp->rows;
        ev.leaf = grp_leaf;
        ev.arg = &gv;
    }
    dqo_table *r = NULL;
    dqo_status s = table_new(x->ctx, &r);
    for (int i = 0; s == DQO_OK && i < q->nitems; i++) {
        qvec v;
        char name[300];
        if ((s = qexpr_eval(&ev, q->items[i].e, &v)) != DQO_OK)
            break;
        unique_name(r, q->items[i].name != NULL && q->items[i].name[0]
                           ? q->items[i].name : "col", name, sizeof name);
        s = add_vec(x->ctx, r, name, &v, ev.rows);
        qvec_free(&v);
    }
    if (s != DQO_OK) {
        dqo_table_destroy(r);
        return s;
    }
    *out = r;
    return DQO_OK;
}

/* -------------------------------------------------------------- order */

typedef struct okey {
    const dqo_column *c;
    uint32_t *rank; /* strings: rank of each code by text */
    bool desc;
} okey;

/* Compares row a and b on one key: NULL sorts above every value. */
static int okey_cmp(const okey *k, uint64_t a, uint64_t b)
{
    const dqo_column *c = k->c;
    bool na = c->valid != NULL && !c->valid[a], nb = c->valid != NULL && !c->valid[b];
    int r;
    if (na || nb) {
        r = na && nb ? 0 : na ? 1 : -1;
        return k->desc ? -r : r;
    }
    switch (c->type) {
    case DQO_TYPE_U32: {
        uint32_t x = ((const uint32_t *)c->data)[a], y = ((const uint32_t *)c->data)[b];
        r = (x > y) - (x < y);
        break;
    }
    case DQO_TYPE_I32: {
        int32_t x = ((const int32_t *)c->data)[a], y = ((const int32_t *)c->data)[b];
        r = (x > y) - (x < y);
        break;
    }
    case DQO_TYPE_I64: {
        int64_t x = ((const int64_t *)c->data)[a], y = ((const int64_t *)c->data)[b];
        r = (x > y) - (x < y);
        break;
    }
    case DQO_TYPE_F64: {
        double x = ((const double *)c->data)[a], y = ((const double *)c->data)[b];
        r = (x > y) - (x < y);
        break;
    }
    default: {
        uint32_t x = k->rank[((const uint32_t *)c->data)[a]];
        uint32_t y = k->rank[((const uint32_t *)c->data)[b]];
        r = (x > y) - (x < y);
    }
    }
    return k->desc ? -r : r;
}

/* The sort keys of ORDER BY. */
typedef struct okeys {
    const okey *k;
    int n;
} okeys;

static int rows_cmp(const void *arg, uint64_t a, uint64_t b)
{
    const okeys *ks = arg;
    const okey *keys = ks->k;
    for (int k = 0; k < ks->n; k++) {
        int r = okey_cmp(&keys[k], a, b);
        if (r != 0)
            return r;
    }
    return 0;
}

/* Stable bottom-up merge sort of the n row numbers in p by cmp. */
static void merge_sort(int (*cmp)(const void *, uint64_t, uint64_t),
                       const void *arg, uint64_t *p, uint64_t *tmp, uint64_t n)
{
    for (uint64_t w = 1; w < n; w *= 2) {
        for (uint64_t lo = 0; lo < n; lo += 2 * w) {
            uint64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            uint64_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi)
                tmp[o++] = cmp(arg, p[j], p[i]) < 0 ? p[j++] : p[i++];
            while (i < mid)
                tmp[o++] = p[i++];
            while (j < hi)
                tmp[o++] = p[j++];
        }
        memcpy(p, tmp, n * sizeof *p);
    }
}

static int code_text_cmp(const void *d, uint64_t a, uint64_t b)
{
    return strcmp(dict_get(d, (uint32_t)a), dict_get(d, (uint32_t)b));
}

/* The rank by text of every code of a string column's dictionary. */
static uint32_t *text_ranks(const dqo_dict *d)
{
    uint32_t n = dict_size(d);
    uint64_t *order = mem_alloc(((size_t)n + 1) * sizeof *order);
    uint64_t *tmp = mem_alloc(((size_t)n + 1) * sizeof *tmp);
    uint32_t *rank = mem_alloc(((size_t)n + 1) * sizeof *rank);
    if (order != NULL && tmp != NULL && rank != NULL) {
        for (uint32_t i = 0; i < n; i++)
            order[i] = i;
        merge_sort(code_text_cmp, d, order, tmp, n);
        for (uint32_t i = 0; i < n; i++)
            rank[order[i]] = i;
    } else {
        mem_free(rank);
        rank = NULL;
    }
    mem_free(order);
    mem_free(tmp);
    return rank;
}

static dqo_status exec_order(qx *x, dqo_table **res)
{
    const lquery *q = x->q;
    dqo_table *t = *res;
    uint64_t n = t->rows;
    okey keys[64];
    int nk = q->norder < 64 ? q->norder : 64;
    memset(keys, 0, sizeof keys);
    uint64_t *p = mem_alloc(n * sizeof *p + 1), *tmp = mem_alloc(n * sizeof *tmp + 1);
    dqo_status s = p != NULL && tmp != NULL ? DQO_OK : oom(x->ctx, "sorting");
    for (int k = 0; s == DQO_OK && k < nk; k++) {
        int item = q->order[k].item;
        if (item < 0 || item >= t->ncols) {
            s = ctx_error(x->ctx, DQO_EINTERNAL, "ORDER BY item %d", item);
            break;
        }
        keys[k].c = &t->cols[item];
        keys[k].desc = q->order[k].desc;
        if (keys[k].c->type == DQO_TYPE_STR &&
            (keys[k].rank = text_ranks(keys[k].c->dict)) == NULL)
            s = oom(x->ctx, "sorting strings");
    }
    if (s == DQO_OK) {
        for (uint64_t i = 0; i < n; i++)
            p[i] = i;
        okeys ks = {keys, nk};
        merge_sort(rows_cmp, &ks, p, tmp, n);
        dqo_table *r;
        if ((s = table_take(x->ctx, t, p, n, &r)) == DQO_OK) {
            dqo_table_destroy(t);
            *res = r;
        }
    }
    for (int k = 0; k < nk; k++)
        mem_free(keys[k].rank);
    mem_free(p);
    mem_free(tmp);
    return s;
}

static dqo_status exec_limit(qx *x, dqo_table **res)
{
    int64_t lim = x->q->limit;
    if (lim < 0 || (uint64_t)lim >= (*res)->rows)
        return DQO_OK;
    dqo_table *r;
    dqo_status s = table_take(x->ctx, *res, NULL, (uint64_t)lim, &r);
    if (s == DQO_OK) {
        dqo_table_destroy(*res);
        *res = r;
    }
    return s;
}

/* --------------------------------------------------------------- walk */

static dqo_status exec_node(qx *x, plan_node *n, qstate *out);

static dqo_status exec_scan(qx *x, const plan_node *n, qstate *out)
{
    if (n->table < 0 || n->table >= x->q->ntables || n->table >= 32)
        return ctx_error(x->ctx, DQO_EINTERNAL, "scan of table %d", n->table);
    const dqo_table *t = x->q->tables[n->table].table;
    if (t->rows >= UINT32_MAX)
        return ctx_error(x->ctx, DQO_EUNSUPPORTED,
                         "table '%s' has %" PRIu64 " rows; SQL queries take "
                         "fewer than 2^32 rows per table",
                         x->q->tables[n->table].name, t->rows);
    out->rel.rows = t->rows;
    out->rel.present = 1u << n->table;
    return DQO_OK;
}

/* Runs node n on its (already run) inputs in[]; times exclude inputs. */
static dqo_status exec_op(qx *x, plan_node *n, qstate *in, qstate *out)
{
    switch (n->op) {
    case PLAN_OP_SCAN:
        return exec_scan(x, n, out);
    case PLAN_OP_STATS:
    case PLAN_OP_TRANSFER:
        *out = in[0];
        memset(&in[0], 0, sizeof in[0]);
        return DQO_OK;
    case PLAN_OP_FILTER:
        *out = in[0];
        memset(&in[0], 0, sizeof in[0]);
        return exec_filter(x, n, &out->rel);
    case PLAN_OP_JOIN:
        return exec_join(x, n, &in[0].rel, &in[1].rel, &out->rel);
    case PLAN_OP_GROUP:
        return exec_group(x, n, &in[0].rel, out);
    case PLAN_OP_PROJECT:
        return exec_project(x, &in[0], &out->res);
    case PLAN_OP_ORDER:
    case PLAN_OP_LIMIT:
        *out = in[0];
        memset(&in[0], 0, sizeof in[0]);
        if (out->res == NULL)
            return ctx_error(x->ctx, DQO_EINTERNAL, "%s below PROJECT",
                             n->op == PLAN_OP_ORDER ? "ORDER" : "LIMIT");
        return n->op == PLAN_OP_ORDER ? exec_order(x, &out->res)
                                      : exec_limit(x, &out->res);
    }
    return ctx_error(x->ctx, DQO_EINTERNAL, "unknown plan node %d", (int)n->op);
}

static dqo_status exec_node(qx *x, plan_node *n, qstate *out)
{
    memset(out, 0, sizeof *out);
    qstate in[2];
    memset(in, 0, sizeof in);
    dqo_status s = DQO_OK;
    int nin = n->nin < 0 ? 0 : n->nin > 2 ? 2 : n->nin;
    for (int i = 0; i < nin && s == DQO_OK; i++)
        s = n->in[i] != NULL ? exec_node(x, n->in[i], &in[i])
                             : ctx_error(x->ctx, DQO_EINTERNAL, "missing input");
    double t0 = now_ms();
    if (s == DQO_OK)
        s = exec_op(x, n, in, out);
    n->measured_ms = now_ms() - t0;
    if (n->op == PLAN_OP_STATS)
        n->measured_ms = x->stats_ms != NULL && n->table >= 0 &&
                                 n->table < x->q->ntables
                             ? x->stats_ms[n->table]
                             : 0;
    if (n->op == PLAN_OP_TRANSFER && s == DQO_OK) {
        n->measured_ms = 0;
        why_append(n, "; ran as a no-op: the device kernel streams host "
                      "data itself (its time is in the GROUP)");
    }
    for (int i = 0; i < 2; i++)
        qstate_free(&in[i]);
    if (s != DQO_OK)
        qstate_free(out);
    return s;
}

static void clear_measured(plan_node *n)
{
    if (n == NULL)
        return;
    n->measured_ms = -1;
    for (int i = 0; i < n->nin && i < 2; i++)
        clear_measured(n->in[i]);
}

dqo_status qexec_run(dqo_ctx *ctx, const lquery *q, plan_result *r,
                     const double *stats_ms, dqo_table **out)
{
    qx x = {.ctx = ctx, .q = q, .m = ctx->model, .stats_ms = stats_ms};
    dqo_status s = DQO_OK;
    for (int i = 0; q->aggregate && i < q->nitems && s == DQO_OK; i++)
        s = collect_aggs(&x, q->items[i].e);
    if (s != DQO_OK)
        return s;
    clear_measured(r->root);
    qstate st;
    if ((s = exec_node(&x, r->root, &st)) != DQO_OK)
        return s;
    if (st.res == NULL) {
        qstate_free(&st);
        return ctx_error(ctx, DQO_EINTERNAL, "the plan has no PROJECT");
    }
    *out = st.res;
    st.res = NULL;
    qstate_free(&st);
    return DQO_OK;
}
