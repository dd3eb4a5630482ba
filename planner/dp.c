/*
 * dp.c - the DQO enumerator (paper, Sections 2 and 5; DESIGN.md "Cost and
 * enumeration"): dynamic programming over connected subsets of the query's
 * tables (left-deep: a subset grows by one base table, build = the smaller
 * input), keeping per subset the cheapest plan of each interesting
 * property class: the set of interesting columns (join and group keys) the
 * output is sorted on, and where the data is. Every join algorithm the
 * properties allow is costed for every class plan; groupings then take, per
 * (kernel, location), the cheapest input whose properties they can use
 * (order-based kernels per sortedness class, the others once). The DP table
 * of all candidates is kept for plan_dp_table_format (paper, Table 5).
 *
 * MAVs: the key is "shape | property class | locations | model | mode"; the
 * value "o=<join order>;j=<alg@loc,...>;g=<kernel@loc>". A hit reruns the DP
 * restricted to those choices, so the nodes are still costed.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend.h"
#include "planner/mav.h"
#include "planner/plan_int.h"

/* One DP entry: a sub-plan over `tables` with its output properties. */
typedef struct pl_plan {
    plan_node *node;
    uint32_t tables;
    uint64_t rows;
    pl_col *col;   /* ctx->ncols entries (only the plan's tables' matter) */
    bool psorted;  /* paper model: the relation is sorted (on its key) */
    bool pdense;   /* paper model: its key columns are dense */
    int dataloc;   /* -1 host memory, else the device holding it */
    double total;
    int rank;      /* enumeration order: breaks ties like the paper */
    char name[96]; /* "SPHJ(R,S)" */
    int nseq;      /* tables in join order, and the join algorithms */
    int8_t seq[LQ_MAX_TABLES], jalg[LQ_MAX_TABLES];
} pl_plan;

typedef struct pl_list {
    int n, cap;
    pl_plan **p;
} pl_list;

/* The choices a MAV value forces. */
typedef struct pl_force {
    bool on;
    int nseq;
    int seq[LQ_MAX_TABLES], jalg[LQ_MAX_TABLES];
    int gkernel, gloc;
} pl_force;

typedef struct pl_ctx {
    const plan_env *env;
    const lquery *q;
    const plan_table_props *tp;
    pl_costenv ce;
    pl_arena *arena;
    int ncols;
    int ctab[PL_MAX_COLS], ccol[PL_MAX_COLS];
    int nconj;
    const lexpr **conj;
    uint32_t *conj_tables;
    pl_list *dp; /* 1 << ntables lists */
    plan_dp_row *rows;
    const plan_node **rownode;
    int nrows, caprows;
    int rank;
    pl_force force;
    pl_plan *chosen_in;  /* the input of the chosen group (or the top plan) */
    int chosen_gk, chosen_gl;
    char *err;
    int errlen;
} pl_ctx;

/* Tie order of the paper's Table 5: HJ, OJ, SOJ, SPHJ, BSJ. */
static const int pl_join_order[PLAN_JOIN_COUNT_] = {
    PLAN_JOIN_HASH, PLAN_JOIN_ORDER, PLAN_JOIN_SORT, PLAN_JOIN_DIRECT,
    PLAN_JOIN_BSEARCH};
/* Grouping candidates in the order the paper lists them, radix last. */
static const int pl_group_order[GRP_KERNEL_COUNT_] = {
    GRP_KERNEL_HASH, GRP_KERNEL_ORDER, GRP_KERNEL_SORT, GRP_KERNEL_DIRECT,
    GRP_KERNEL_BSEARCH, GRP_KERNEL_RADIX};

static int pl_popcount(uint32_t m)
{
    int n = 0;
    for (; m != 0; m &= m - 1)
        n++;
    return n;
}

/* ---------------------------------------------------------------- columns */

static int pl_colidx(const pl_ctx *c, int table, int col)
{
    for (int i = 0; i < c->ncols; i++)
        if (c->ctab[i] == table && c->ccol[i] == col)
            return i;
    return -1;
}

static void pl_add_col(pl_ctx *c, const lexpr *e)
{
    if (e == NULL)
        return;
    if (e->kind == LX_COL) {
        if (pl_colidx(c, e->table, e->col) < 0 && c->ncols < PL_MAX_COLS) {
            c->ctab[c->ncols] = e->table;
            c->ccol[c->ncols++] = e->col;
        }
        return;
    }
    pl_add_col(c, e->a);
    pl_add_col(c, e->b);
    for (int i = 0; i < e->nlist; i++)
        pl_add_col(c, e->list[i]);
}

static const plan_col_props *pl_base_col(const pl_ctx *c, int table, int col)
{
    const plan_table_props *t = &c->tp[table];
    return t->cols != NULL && col >= 0 && col < t->ncols ? &t->cols[col]
                                                         : NULL;
}

static uint64_t pl_ndv_of(const void *arg, int table, int col)
{
    const pl_ctx *c = arg;
    if (table < 0 || table >= c->q->ntables)
        return 0;
    const plan_col_props *p = pl_base_col(c, table, col);
    return p != NULL && p->known ? p->stats.distinct : 0;
}

static uint32_t pl_expr_tables(const lexpr *e)
{
    if (e == NULL)
        return 0;
    uint32_t m = e->kind == LX_COL ? UINT32_C(1) << e->table : 0;
    m |= pl_expr_tables(e->a) | pl_expr_tables(e->b);
    for (int i = 0; i < e->nlist; i++)
        m |= pl_expr_tables(e->list[i]);
    return m;
}

/* Splits WHERE into AND-conjuncts. */
static int pl_split(pl_ctx *c, const lexpr *e, int n)
{
    if (e == NULL)
        return n;
    if (e->kind == LX_BIN && e->op == LX_AND && !e->negated) {
        n = pl_split(c, e->a, n);
        return pl_split(c, e->b, n);
    }
    if (c->conj != NULL) {
        c->conj[n] = e;
        c->conj_tables[n] = pl_expr_tables(e);
    }
    return n + 1;
}

/* The key props of columns `idx` (nk of them) of plan p. */
static plan_props pl_key_props(const pl_ctx *c, const pl_plan *p,
                               const int *idx, int nk)
{
    plan_props k = {.rows = p->rows, .location = p->dataloc};
    if (nk == 1 && idx[0] >= 0) {
        const pl_col *col = &p->col[idx[0]];
        k.ndv = col->ndv;
        k.min = col->min;
        k.max = col->max;
        k.sorted = col->sorted;
    } else {
        /* Several columns (or an expression): the engine packs them into
         * one key whose range is the product of the ranges. */
        double ndv = 1.0, range = 1.0;
        for (int i = 0; i < nk; i++) {
            if (idx[i] < 0) {
                range = INFINITY;
                ndv *= (double)p->rows;
                continue;
            }
            ndv *= (double)p->col[idx[i]].ndv;
            range *= (double)pl_range(p->col[idx[i]].min, p->col[idx[i]].max);
        }
        k.ndv = ndv < (double)p->rows ? (uint64_t)ndv : p->rows;
        k.min = 0;
        k.max = range <= (double)c->ce.set.direct_max_range
                    ? (int64_t)range - 1
                    : INT64_MAX;
        k.sorted = false;
    }
    if (k.ndv == 0)
        k.ndv = 1;
    k.dense = pl_dense(&c->ce.set, k.ndv, k.min, k.max);
    /* The paper's model treats sortedness and density as properties of the
     * relation (Table 5: the group key inherits the join output's order).
     * Only a single-column key takes that view: a packed key of several
     * columns is neither sorted nor dense by inheritance, and density must
     * also hold for the real column, since the executor runs the choice. */
    if (c->ce.paper && nk == 1 && idx[0] >= 0) {
        k.sorted = p->psorted;
        k.dense = k.dense && p->pdense;
    }
    return k;
}

/* The group key's column indices (-1 for an expression); returns count. */
static int pl_group_cols(const pl_ctx *c, int *idx)
{
    int n = 0;
    for (int i = 0; i < c->q->ngroup && n < LQ_MAX_JOIN_KEYS; i++) {
        const lexpr *g = c->q->group[i];
        idx[n++] = g != NULL && g->kind == LX_COL
                       ? pl_colidx(c, g->table, g->col)
                       : -1;
    }
    return n;
}

/* The props a node reports: the group key when the plan holds it, else
 * the first interesting column of its tables. */
static void pl_set_out(const pl_ctx *c, const pl_plan *p, plan_node *n)
{
    int idx[LQ_MAX_JOIN_KEYS];
    int ng = pl_group_cols(c, idx);
    bool has = ng > 0;
    for (int i = 0; i < ng; i++)
        if (idx[i] < 0 || !(p->tables >> c->ctab[idx[i]] & 1))
            has = false;
    if (!has) {
        ng = 0;
        for (int i = 0; i < c->ncols && ng == 0; i++)
            if (p->tables >> c->ctab[i] & 1)
                idx[ng++] = i;
    }
    n->out = pl_key_props(c, p, idx, ng);
    n->out.rows = p->rows;
}

/* ------------------------------------------------------------ allocation */

static plan_node *pl_node(pl_ctx *c, plan_op op)
{
    plan_node *n = pl_alloc(c->arena, sizeof *n);
    if (n == NULL)
        return NULL;
    n->op = op;
    n->alg = -1;
    n->table = -1;
    n->measured_ms = -1.0;
    return n;
}

static pl_plan *pl_plan_new(pl_ctx *c, const pl_plan *from)
{
    pl_plan *p = pl_alloc(c->arena, sizeof *p);
    pl_col *col = pl_alloc(c->arena, sizeof(pl_col) * (c->ncols + 1));
    if (p == NULL || col == NULL)
        return NULL;
    if (from != NULL) {
        *p = *from;
        memcpy(col, from->col, sizeof(pl_col) * c->ncols);
    }
    p->col = col;
    p->rank = c->rank++;
    return p;
}

static bool pl_list_push(pl_list *l, pl_plan *p)
{
    if (l->n == l->cap) {
        int cap = l->cap > 0 ? 2 * l->cap : 4;
        pl_plan **np = realloc(l->p, sizeof *np * cap);
        if (np == NULL)
            return false;
        l->p = np;
        l->cap = cap;
    }
    l->p[l->n++] = p;
    return true;
}

static bool pl_better(const pl_plan *a, const pl_plan *b)
{
    return a->total < b->total || (a->total == b->total && a->rank < b->rank);
}

static bool pl_same_class(const pl_ctx *c, const pl_plan *a, const pl_plan *b)
{
    if (a->dataloc != b->dataloc || a->psorted != b->psorted)
        return false;
    for (int i = 0; i < c->ncols; i++)
        if ((a->tables >> c->ctab[i] & 1) &&
            a->col[i].sorted != b->col[i].sorted)
            return false;
    return true;
}

/* Keeps p if it is the cheapest of its class in l. */
static bool pl_keep(pl_ctx *c, pl_list *l, pl_plan *p)
{
    for (int i = 0; i < l->n; i++)
        if (pl_same_class(c, l->p[i], p)) {
            if (pl_better(p, l->p[i]))
                l->p[i] = p;
            return true;
        }
    return pl_list_push(l, p);
}

static bool pl_row(pl_ctx *c, const char *sub, const char *plan, double cost,
                   uint64_t rows, bool dense, bool sorted, int loc,
                   const plan_node *node)
{
    if (c->nrows == c->caprows) {
        int cap = c->caprows > 0 ? 2 * c->caprows : 16;
        plan_dp_row *r = realloc(c->rows, sizeof *r * cap);
        if (r == NULL)
            return false;
        c->rows = r;
        const plan_node **rn = realloc(c->rownode, sizeof *rn * cap);
        if (rn == NULL)
            return false;
        c->rownode = rn;
        c->caprows = cap;
    }
    plan_dp_row *r = &c->rows[c->nrows];
    memset(r, 0, sizeof *r);
    snprintf(r->subproblem, sizeof r->subproblem, "%s", sub);
    snprintf(r->plan, sizeof r->plan, "%s", plan);
    r->cost = cost;
    r->rows = rows;
    r->dense = dense;
    r->sorted = sorted;
    r->location = loc;
    c->rownode[c->nrows++] = node;
    return true;
}

static const char *pl_alias(const pl_ctx *c, int t)
{
    const lq_table *lt = &c->q->tables[t];
    return lt->alias != NULL ? lt->alias : lt->name != NULL ? lt->name : "?";
}

/* "R ⋈ S ⋈ T" of a table set. */
static void pl_set_name(const pl_ctx *c, uint32_t m, char *buf, int len)
{
    int o = 0;
    buf[0] = '\0';
    for (int t = 0; t < c->q->ntables && o < len; t++)
        if (m >> t & 1)
            o += snprintf(buf + o, len - o, "%s%s", o > 0 ? " \u22c8 " : "",
                          pl_alias(c, t));
}

static dqo_status pl_oom(pl_ctx *c)
{
    snprintf(c->err, c->errlen, "planner: out of memory");
    return DQO_ENOMEM;
}

/* ------------------------------------------------------------ base tables */

/* FILTER node over p with conjuncts selected by `mask_of` == m (pushed) or
 * spanning several tables (residual, m == 0). */
static pl_plan *pl_filter(pl_ctx *c, pl_plan *in, uint32_t m)
{
    int np = 0;
    for (int i = 0; i < c->nconj; i++)
        if (m != 0 ? c->conj_tables[i] == m
                   : pl_popcount(c->conj_tables[i]) != 1)
            np++;
    if (np == 0)
        return in;
    pl_plan *p = pl_plan_new(c, in);
    plan_node *n = pl_node(c, PLAN_OP_FILTER);
    const lexpr **pred = pl_alloc(c->arena, sizeof *pred * np);
    if (p == NULL || n == NULL || pred == NULL)
        return NULL;
    double sel = 1.0;
    np = 0;
    for (int i = 0; i < c->nconj; i++)
        if (m != 0 ? c->conj_tables[i] == m
                   : pl_popcount(c->conj_tables[i]) != 1) {
            pred[np++] = c->conj[i];
            sel *= pl_selectivity(c->conj[i], pl_ndv_of, c);
        }
    n->npred = np;
    n->pred = pred;
    n->nin = 1;
    n->in[0] = in->node;
    n->cost = pl_filter_cost(&c->ce, in->rows, np);
    n->total = in->total + n->cost;
    double rows = ceil((double)in->rows * sel);
    p->rows = (uint64_t)rows;
    for (int i = 0; i < c->ncols; i++) {
        double ndv = ceil((double)p->col[i].ndv * sel);
        p->col[i].ndv = ndv < 1 ? 1 : (uint64_t)ndv;
        if (p->col[i].ndv > p->rows && p->rows > 0)
            p->col[i].ndv = p->rows;
    }
    p->dataloc = -1; /* filters run on the cpu */
    p->node = n;
    p->total = n->total;
    n->location = 0;
    snprintf(n->why, sizeof n->why,
             "%s %d conjunct%s (selectivity %.3g: = 1/ndv, range 1/3, "
             "BETWEEN 1/4, IN k/ndv), order kept",
             m != 0 ? "pushed down:" : "after the joins:", np,
             np > 1 ? "s" : "", sel);
    pl_set_out(c, p, n);
    return p;
}

/* SCAN(t) [-> STATS] [-> FILTER]. */
static pl_plan *pl_base(pl_ctx *c, int t)
{
    const plan_table_props *tp = &c->tp[t];
    pl_plan *p = pl_plan_new(c, NULL);
    plan_node *n = pl_node(c, PLAN_OP_SCAN);
    if (p == NULL || n == NULL)
        return NULL;
    p->tables = UINT32_C(1) << t;
    p->rows = tp->rows;
    p->dataloc = tp->location;
    p->nseq = 1;
    p->seq[0] = (int8_t)t;
    n->table = t;
    n->location = 0;
    snprintf(n->why, sizeof n->why, "%s in %s memory%s", pl_alias(c, t),
             tp->location >= 0 ? pl_loc_name(c->env, tp->location) : "host",
             tp->pinned ? " (pinned)" : "");
    uint64_t unknown_bytes = 0;
    bool measured = false;
    int key = -1;
    for (int i = 0; i < c->ncols; i++) {
        if (c->ctab[i] != t)
            continue;
        const plan_col_props *cp = pl_base_col(c, t, c->ccol[i]);
        p->col[i] = pl_col_from_stats(&c->ce.set, cp, tp->rows, c->ce.paper);
        /* Unknown, or measured for this query (not cached before): the
         * statistics pass is part of this plan's cost. */
        if (cp == NULL || !cp->known || !cp->cached) {
            unknown_bytes += tp->rows * pl_type_bytes(cp != NULL ? cp->type
                                                                 : DQO_TYPE_I64);
            measured |= cp != NULL && cp->known;
        }
        if (key < 0)
            key = i;
    }
    /* The paper's model: a relation is sorted (dense) when its key column,
     * the first interesting one (join keys come first), is. */
    p->psorted = key >= 0 && p->col[key].sorted;
    p->pdense = key >= 0 &&
                pl_dense(&c->ce.set, p->col[key].ndv, p->col[key].min,
                         p->col[key].max);
    if (c->ce.paper)
        for (int i = 0; i < c->ncols; i++)
            p->col[i].sorted = p->psorted;
    p->node = n;
    pl_set_out(c, p, n);
    if (unknown_bytes > 0) {
        plan_node *s = pl_node(c, PLAN_OP_STATS);
        if (s == NULL)
            return NULL;
        s->table = t;
        s->nin = 1;
        s->in[0] = n;
        s->cost = pl_stats_cost(&c->ce, unknown_bytes);
        s->total = s->cost;
        s->out = n->out;
        if (measured)
            snprintf(s->why, sizeof s->why,
                     "key statistics of %s were not cached: one pass over "
                     "%" PRIu64 " bytes measures them before planning",
                     pl_alias(c, t), unknown_bytes);
        else
            snprintf(s->why, sizeof s->why,
                     "key statistics of %s unknown: one pass over %" PRIu64
                     " bytes (estimated until then: unsorted, sparse, ndv = "
                     "rows)",
                     pl_alias(c, t), unknown_bytes);
        p->node = s;
        p->total = s->total;
    }
    snprintf(p->name, sizeof p->name, "%s", pl_alias(c, t));
    pl_plan *f = pl_filter(c, p, p->tables);
    if (f != NULL && f != p)
        snprintf(f->name, sizeof f->name, "\u03c3(%s)", pl_alias(c, t));
    return f;
}

/* ------------------------------------------------------------------ joins */

typedef struct pl_keys {
    int n;
    int l[LQ_MAX_JOIN_KEYS], r[LQ_MAX_JOIN_KEYS]; /* column indices */
    const lexpr *le[LQ_MAX_JOIN_KEYS], *re[LQ_MAX_JOIN_KEYS];
} pl_keys;

/* Key pairs between the tables of `m` (l) and table t (r). */
static void pl_edges(const pl_ctx *c, uint32_t m, int t, pl_keys *k)
{
    k->n = 0;
    for (int i = 1; i < c->q->ntables; i++) {
        const lq_join *j = &c->q->joins[i];
        for (int e = 0; e < j->nkeys && k->n < LQ_MAX_JOIN_KEYS; e++) {
            const lexpr *a = j->left[e], *b = j->right[e];
            if (a == NULL || b == NULL)
                continue;
            if (b->table == t && (m >> a->table & 1)) {
                k->le[k->n] = a;
                k->re[k->n] = b;
            } else if (a->table == t && (m >> b->table & 1)) {
                k->le[k->n] = b;
                k->re[k->n] = a;
            } else
                continue;
            k->l[k->n] = pl_colidx(c, k->le[k->n]->table, k->le[k->n]->col);
            k->r[k->n] = pl_colidx(c, k->re[k->n]->table, k->re[k->n]->col);
            k->n++;
        }
    }
}

/* Output column props of a join (DESIGN.md: merge joins are sorted on the
 * key; probe-order joins keep the probe's sorted columns; a build column is
 * sorted only when the probe is sorted on its key and the build side on
 * both its key and that column). */
static void pl_join_cols(const pl_ctx *c, pl_plan *o, const pl_plan *b,
                         const pl_plan *p, const int *bk, const int *pk,
                         int nk, const plan_props *bp, const plan_props *pp,
                         bool merge)
{
    for (int i = 0; i < c->ncols; i++) {
        bool inb = b->tables >> c->ctab[i] & 1, inp = p->tables >> c->ctab[i] & 1;
        if (!inb && !inp)
            continue;
        o->col[i] = inb ? b->col[i] : p->col[i];
        if (inb)
            o->col[i].sorted = b->col[i].sorted && bp->sorted &&
                               (merge || pp->sorted);
        else
            o->col[i].sorted = p->col[i].sorted && (!merge || pp->sorted);
        if (o->col[i].ndv > o->rows)
            o->col[i].ndv = o->rows > 0 ? o->rows : 1;
    }
    /* Both key columns carry the same values: sorted when the output is in
     * key order (a merge, or a probe sorted on its key). */
    uint64_t kndv = bp->ndv < pp->ndv ? bp->ndv : pp->ndv;
    for (int k = 0; k < nk; k++) {
        int ix[2] = {bk[k], pk[k]};
        for (int s = 0; s < 2; s++)
            if (ix[s] >= 0) {
                if (nk == 1 && o->col[ix[s]].ndv > kndv)
                    o->col[ix[s]].ndv = kndv;
                if (k == 0 && (merge || (nk == 1 && pp->sorted)))
                    o->col[ix[s]].sorted = true;
            }
    }
    o->psorted = merge || p->psorted;
    o->pdense = b->pdense && p->pdense;
    if (c->ce.paper)
        for (int i = 0; i < c->ncols; i++)
            o->col[i].sorted = o->psorted;
}

static dqo_status pl_join(pl_ctx *c, pl_plan *l, pl_plan *r, const pl_keys *k)
{
    /* Build on the smaller input (ties: the left, earlier tables). */
    bool lbuild = l->rows <= r->rows;
    pl_plan *b = lbuild ? l : r, *p = lbuild ? r : l;
    const int *bk = lbuild ? k->l : k->r, *pk = lbuild ? k->r : k->l;
    plan_props bp = pl_key_props(c, b, bk, k->n);
    plan_props pp = pl_key_props(c, p, pk, k->n);
    uint64_t mx = bp.ndv > pp.ndv ? bp.ndv : pp.ndv;
    double rows = mx > 0 ? floor((double)b->rows * (double)p->rows / (double)mx + 0.5)
                         : 0.0;
    uint32_t m = l->tables | r->tables;
    int step = l->nseq; /* this join's index in the left-deep order */
    char sub[64];
    pl_set_name(c, m, sub, sizeof sub);
    for (int ai = 0; ai < PLAN_JOIN_COUNT_; ai++) {
        int alg = pl_join_order[ai];
        if (c->force.on && c->force.jalg[step - 1] != alg)
            continue;
        double cost = pl_join_cost(&c->ce, alg, &bp, &pp);
        if (cost < 0)
            continue;
        pl_plan *o = pl_plan_new(c, l);
        plan_node *n = pl_node(c, PLAN_OP_JOIN);
        if (o == NULL || n == NULL)
            return pl_oom(c);
        o->tables = m;
        o->rows = (uint64_t)rows;
        o->dataloc = -1;
        o->seq[o->nseq] = (int8_t)(r->seq[0]);
        o->jalg[o->nseq - 1] = (int8_t)alg;
        o->nseq++;
        bool merge = alg == PLAN_JOIN_ORDER || alg == PLAN_JOIN_SORT;
        pl_join_cols(c, o, b, p, bk, pk, k->n, &bp, &pp, merge);
        n->alg = alg;
        n->g.kernel = -1;
        n->g.part = alg == PLAN_JOIN_DIRECT   ? PLAN_PART_DIRECT
                    : alg == PLAN_JOIN_ORDER  ? PLAN_PART_RUNS
                    : alg == PLAN_JOIN_SORT   ? PLAN_PART_SORT
                                              : PLAN_PART_NONE;
        n->g.index = alg == PLAN_JOIN_HASH     ? PLAN_INDEX_HASH
                     : alg == PLAN_JOIN_DIRECT ? PLAN_INDEX_ARRAY
                     : alg == PLAN_JOIN_BSEARCH ? PLAN_INDEX_SORTED_KEYS
                                                : PLAN_INDEX_NONE;
        n->table = r->seq[0];
        n->nkeys = k->n;
        for (int i = 0; i < k->n; i++) {
            n->build_key[i] = lbuild ? k->le[i] : k->re[i];
            n->probe_key[i] = lbuild ? k->re[i] : k->le[i];
        }
        n->nin = 2;
        n->in[0] = b->node;
        n->in[1] = p->node;
        n->cost = cost;
        n->total = b->total + p->total + cost;
        o->total = n->total;
        o->node = n;
        pl_set_out(c, o, n);
        pl_fmt(o->name, sizeof o->name, "%s(%s,%s)",
                 plan_join_paper_name(alg), b->name, p->name);
        snprintf(n->why, sizeof n->why,
                 "build %s (%" PRIu64 " rows, %s%s key, ndv %" PRIu64
                 "), probe %s (%" PRIu64 " rows, %s key); %" PRIu64
                 " rows out; cost %.6g%s",
                 b->name, b->rows, bp.sorted ? "sorted " : "",
                 bp.dense ? "dense" : "sparse", bp.ndv, p->name, p->rows,
                 pp.sorted ? "sorted" : "unsorted", o->rows, cost,
                 pl_unit(c->env));
        plan_props ok = pl_key_props(c, o, bk, k->n);
        if (!pl_row(c, sub, o->name, o->total, o->rows,
                    c->ce.paper ? o->pdense : bp.dense && pp.dense, ok.sorted,
                    0, n) ||
            !pl_keep(c, &c->dp[m], o))
            return pl_oom(c);
    }
    return DQO_OK;
}

static dqo_status pl_enumerate(pl_ctx *c)
{
    int nt = c->q->ntables;
    uint32_t full = (UINT32_C(1) << nt) - 1;
    for (int t = 0; t < nt; t++) {
        if (c->force.on && t != c->force.seq[0] && nt > 1)
            continue;
        pl_plan *p = pl_base(c, t);
        if (p == NULL || !pl_list_push(&c->dp[UINT32_C(1) << t], p))
            return pl_oom(c);
    }
    /* Base chains of every table for the joins (without force filtering). */
    pl_plan *base[LQ_MAX_TABLES] = {0};
    for (int t = 0; t < nt; t++) {
        pl_list *l = &c->dp[UINT32_C(1) << t];
        base[t] = l->n > 0 ? l->p[0] : pl_base(c, t);
        if (base[t] == NULL)
            return pl_oom(c);
        if (!c->force.on || t == c->force.seq[0] || nt == 1) {
            char sub[64];
            pl_set_name(c, UINT32_C(1) << t, sub, sizeof sub);
            char name[96];
            snprintf(name, sizeof name, "scan(%s)", pl_alias(c, t));
            int k0 = -1;
            for (int i = 0; i < c->ncols && k0 < 0; i++)
                if (c->ctab[i] == t)
                    k0 = i;
            if (!pl_row(c, sub, name, base[t]->total, base[t]->rows,
                        base[t]->pdense, k0 >= 0 && base[t]->col[k0].sorted,
                        0, base[t]->node))
                return pl_oom(c);
        }
    }
    for (int size = 1; size < nt; size++)
        for (uint32_t m = 1; m <= full; m++) {
            if (pl_popcount(m) != size || c->dp[m].n == 0)
                continue;
            for (int t = 0; t < nt; t++) {
                if (m >> t & 1)
                    continue;
                if (c->force.on && c->force.seq[size] != t)
                    continue;
                /* Two base tables give the same join either way round
                 * (build = the smaller): enumerate the pair once. */
                if (!c->force.on && size == 1 && (m >> t) != 0)
                    continue;
                pl_keys k;
                pl_edges(c, m, t, &k);
                if (k.n == 0)
                    continue; /* no cross products */
                int n = c->dp[m].n;
                for (int i = 0; i < n; i++) {
                    dqo_status st = pl_join(c, c->dp[m].p[i], base[t], &k);
                    if (st != DQO_OK)
                        return st;
                }
            }
        }
    if (c->dp[full].n == 0) {
        snprintf(c->err, c->errlen,
                 "planner: the tables are not connected by join keys "
                 "(cross products are not planned)");
        return DQO_EINVAL;
    }
    return DQO_OK;
}

/* ------------------------------------------------------------- grouping */

typedef struct pl_gcand {
    int kernel, loc;
    pl_plan *in;
    plan_props key;
    double cost, xfer, total;
    char note[64];
} pl_gcand;

static int pl_count_aggs(const lexpr *e)
{
    if (e == NULL)
        return 0;
    if (e->kind == LX_AGG)
        /* The engine lowers a column aggregate to up to two (the value
         * and a count of non-NULL rows; AVG = SUM and COUNT): count two,
         * so device feasibility (at most 8 per kernel) errs to the cpu. */
        return e->agg == DQO_AGG_COUNT_STAR ? 0 : 2;
    int n = pl_count_aggs(e->a) + pl_count_aggs(e->b);
    for (int i = 0; i < e->nlist; i++)
        n += pl_count_aggs(e->list[i]);
    return n;
}

static plan_props pl_group_key(const pl_ctx *c, const pl_plan *p)
{
    int idx[LQ_MAX_JOIN_KEYS];
    int ng = pl_group_cols(c, idx);
    if (ng == 0) { /* one global group: a single run of one key */
        plan_props k = {.rows = p->rows, .ndv = 1, .sorted = true,
                        .dense = true, .location = p->dataloc};
        return k;
    }
    return pl_key_props(c, p, idx, ng);
}

static bool pl_all_pinned(const pl_ctx *c, uint32_t m)
{
    for (int t = 0; t < c->q->ntables; t++)
        if ((m >> t & 1) && !c->tp[t].pinned)
            return false;
    return true;
}

static int pl_group_cands_at(pl_ctx *c, const pl_list *in, pl_gcand *cand,
                             int maxc, int naggs, const int *locs, int nl);

/* Collects the candidates: per (kernel, location, and for the order-based
 * kernels the input's sortedness) the cheapest input plan. */
static int pl_group_cands(pl_ctx *c, const pl_list *in, pl_gcand *cand,
                          int maxc, int naggs)
{
    int locs[PLAN_MAX_LOCATIONS];
    int nl = pl_group_locations(c->env, c->ce.paper, locs);
    int n = pl_group_cands_at(c, in, cand, maxc, naggs, locs, nl);
    if (n == 0 && locs[0] != 0) {
        /* No allowed device can run it: the cpu always can. */
        locs[0] = 0;
        n = pl_group_cands_at(c, in, cand, maxc, naggs, locs, 1);
    }
    return n;
}

static int pl_group_cands_at(pl_ctx *c, const pl_list *in, pl_gcand *cand,
                             int maxc, int naggs, const int *locs, int nl)
{
    int n = 0;
    uint64_t row_bytes = 8 * (uint64_t)(1 + naggs);
    for (int i = 0; i < in->n; i++) {
        pl_plan *p = in->p[i];
        plan_props key = pl_group_key(c, p);
        bool pinned = pl_all_pinned(c, p->tables) && p->dataloc < 0 &&
                      p->nseq == 1;
        for (int li = 0; li < nl; li++)
            for (int ki = 0; ki < GRP_KERNEL_COUNT_; ki++) {
                int k = pl_group_order[ki];
                if (c->force.on && (k != c->force.gkernel ||
                                    locs[li] != c->force.gloc))
                    continue;
                pl_gcand g = {.kernel = k, .loc = locs[li], .in = p,
                              .key = key};
                g.cost = pl_group_cost(&c->ce, k, locs[li], &key, naggs,
                                       row_bytes, pinned, &g.xfer, g.note,
                                       sizeof g.note);
                if (g.cost < 0)
                    continue;
                g.total = p->total + g.cost;
                bool ordered = k == GRP_KERNEL_ORDER || k == GRP_KERNEL_SORT;
                int j = 0;
                for (; j < n; j++)
                    if (cand[j].kernel == k && cand[j].loc == g.loc &&
                        (!ordered || cand[j].key.sorted == key.sorted))
                        break;
                if (j < n) {
                    if (g.total < cand[j].total ||
                        (g.total == cand[j].total && p->rank < cand[j].in->rank))
                        cand[j] = g;
                } else if (n < maxc)
                    cand[n++] = g;
            }
    }
    return n;
}

static plan_node *pl_group_node(pl_ctx *c, const pl_gcand *g, pl_plan *o)
{
    plan_node *in = g->in->node;
    double below = g->in->total;
    if (g->xfer > 0) {
        plan_node *x = pl_node(c, PLAN_OP_TRANSFER);
        if (x == NULL)
            return NULL;
        x->nin = 1;
        x->in[0] = in;
        x->location = g->loc;
        x->cost = g->xfer;
        x->total = below + x->cost;
        x->out = g->key;
        x->out.location = g->loc;
        snprintf(x->why, sizeof x->why,
                 "%s has the data in host memory: %" PRIu64
                 " rows stream to %s, overlapped with the kernel",
                 pl_loc_name(c->env, g->loc), g->key.rows,
                 pl_loc_name(c->env, g->loc));
        in = x;
        below = x->total;
    }
    plan_node *n = pl_node(c, PLAN_OP_GROUP);
    if (n == NULL)
        return NULL;
    plan_choice ch;
    plan_force_group(g->kernel, &ch);
    n->alg = g->kernel;
    n->g = ch.g;
    n->g.location = g->loc;
    n->location = g->loc;
    n->nin = 1;
    n->in[0] = in;
    n->cost = g->cost - g->xfer;
    n->total = below + n->cost;
    n->out = g->key;
    n->out.rows = o->rows;
    n->out.ndv = o->rows;
    n->out.sorted = g->kernel == GRP_KERNEL_ORDER ||
                    g->kernel == GRP_KERNEL_SORT ||
                    g->kernel == GRP_KERNEL_DIRECT || o->rows <= 1;
    n->out.location = -1;
    return n;
}

static dqo_status pl_group(pl_ctx *c, const pl_list *in, pl_plan **out)
{
    int naggs = 0;
    for (int i = 0; i < c->q->nitems; i++)
        naggs += pl_count_aggs(c->q->items[i].e);
    enum { MAXC = GRP_KERNEL_COUNT_ * PLAN_MAX_LOCATIONS * 2 };
    pl_gcand *cand = calloc(MAXC, sizeof *cand);
    if (cand == NULL)
        return pl_oom(c);
    int n = pl_group_cands(c, in, cand, MAXC, naggs);
    if (n == 0) {
        free(cand);
        snprintf(c->err, c->errlen, "planner: no feasible grouping");
        return DQO_EINVAL;
    }
    int best = 0, run = -1;
    for (int i = 1; i < n; i++)
        if (cand[i].total < cand[best].total) {
            run = best;
            best = i;
        } else if (run < 0 || cand[i].total < cand[run].total)
            run = i;
    char sub[80], base[64];
    pl_set_name(c, in->p[0]->tables, base, sizeof base);
    snprintf(sub, sizeof sub, "\u0393(%s)", base);
    dqo_status st = DQO_OK;
    *out = NULL;
    for (int i = 0; i < n; i++) {
        pl_gcand *g = &cand[i];
        pl_plan *o = pl_plan_new(c, g->in);
        if (o == NULL) {
            st = pl_oom(c);
            break;
        }
        o->rows = c->q->ngroup == 0 ? 1
                  : g->key.ndv < g->in->rows ? g->key.ndv
                                             : g->in->rows;
        plan_node *node = pl_group_node(c, g, o);
        if (node == NULL) {
            st = pl_oom(c);
            break;
        }
        o->node = node;
        o->total = node->total;
        o->dataloc = -1;
        if (g->loc != 0)
            pl_fmt(o->name, sizeof o->name, "%s@%s(%s)",
                     plan_group_paper_name(g->kernel),
                     pl_loc_name(c->env, g->loc), g->in->name);
        else
            pl_fmt(o->name, sizeof o->name, "%s(%s)",
                     plan_group_paper_name(g->kernel), g->in->name);
        if (i == best) {
            pl_group_why(c->env, n, g->kernel, g->loc, g->total,
                         run >= 0 ? cand[run].kernel : -1,
                         run >= 0 ? cand[run].loc : 0,
                         run >= 0 ? cand[run].total : 0, &g->key, node->why,
                         sizeof node->why);
            *out = o;
            c->chosen_in = g->in;
            c->chosen_gk = g->kernel;
            c->chosen_gl = g->loc;
        } else
            snprintf(node->why, sizeof node->why, "candidate: %s",
                     g->note);
        if (!pl_row(c, sub, o->name, o->total, o->rows, g->key.dense,
                    g->key.sorted, g->loc, node)) {
            st = pl_oom(c);
            break;
        }
    }
    free(cand);
    return st;
}

/* ------------------------------------------------------- top operators */

static plan_node *pl_unary(pl_ctx *c, plan_op op, plan_node *in, double cost,
                           uint64_t rows)
{
    plan_node *n = pl_node(c, op);
    if (n == NULL)
        return NULL;
    n->nin = 1;
    n->in[0] = in;
    n->cost = cost;
    n->total = in->total + cost;
    n->out = in->out;
    n->out.rows = rows;
    return n;
}

static plan_node *pl_top(pl_ctx *c, pl_plan *p)
{
    const lquery *q = c->q;
    uint64_t rows = p->rows;
    plan_node *n = pl_unary(c, PLAN_OP_PROJECT, p->node,
                            pl_project_cost(&c->ce, rows, q->nitems), rows);
    if (n == NULL)
        return NULL;
    snprintf(n->why, sizeof n->why, "select list: %d column%s", q->nitems,
             q->nitems == 1 ? "" : "s");
    if (q->norder > 0) {
        n = pl_unary(c, PLAN_OP_ORDER, n, pl_order_cost(&c->ce, rows), rows);
        if (n == NULL)
            return NULL;
        n->out.sorted = true;
        snprintf(n->why, sizeof n->why,
                 "ORDER BY %d key%s: n log2 n comparisons over %" PRIu64
                 " rows", q->norder, q->norder == 1 ? "" : "s", rows);
    }
    if (q->limit >= 0) {
        uint64_t lim = (uint64_t)q->limit < rows ? (uint64_t)q->limit : rows;
        n = pl_unary(c, PLAN_OP_LIMIT, n, 0.0, lim);
        if (n == NULL)
            return NULL;
        snprintf(n->why, sizeof n->why, "LIMIT %" PRId64, q->limit);
    }
    return n;
}

static void pl_mark(pl_ctx *c, const plan_node *n)
{
    if (n == NULL)
        return;
    for (int i = 0; i < c->nrows; i++)
        if (c->rownode[i] == n)
            c->rows[i].chosen = true;
    for (int i = 0; i < n->nin; i++)
        pl_mark(c, n->in[i]);
}

/* One full planning pass (all of the DP, or what c->force allows). */
static dqo_status pl_run(pl_ctx *c, plan_node **root)
{
    dqo_status st = pl_enumerate(c);
    if (st != DQO_OK)
        return st;
    uint32_t full = (UINT32_C(1) << c->q->ntables) - 1;
    pl_list top = {0};
    const pl_list *in = &c->dp[full];
    bool residual = false;
    for (int i = 0; i < c->nconj; i++)
        residual |= pl_popcount(c->conj_tables[i]) != 1;
    if (residual) {
        char base[64], sub[80];
        pl_set_name(c, full, base, sizeof base);
        snprintf(sub, sizeof sub, "\u03c3(%s)", base);
        for (int i = 0; i < in->n; i++) {
            pl_plan *f = pl_filter(c, in->p[i], 0);
            if (f == NULL || !pl_keep(c, &top, f)) {
                free(top.p);
                return pl_oom(c);
            }
            pl_fmt(f->name, sizeof f->name, "\u03c3(%s)", in->p[i]->name);
            if (!pl_row(c, sub, f->name, f->total, f->rows, false, false, 0,
                        f->node)) {
                free(top.p);
                return pl_oom(c);
            }
        }
        in = &top;
    }
    pl_plan *p = NULL;
    c->chosen_gk = -1;
    if (c->q->aggregate) {
        st = pl_group(c, in, &p);
    } else {
        for (int i = 0; i < in->n; i++)
            if (p == NULL || pl_better(in->p[i], p))
                p = in->p[i];
        c->chosen_in = p;
    }
    free(top.p);
    if (st != DQO_OK)
        return st;
    *root = pl_top(c, p);
    if (*root == NULL)
        return pl_oom(c);
    pl_mark(c, *root);
    return DQO_OK;
}

/* -------------------------------------------------------------------- MAV */

static int pl_bucket(uint64_t v) { return (int)floor(log10((double)v + 1.0)); }

/* The logical shape: tables joined left-deep in query order, F() around
 * filtered inputs, G (with the number of group keys), O and L on top. */
static void pl_shape(const pl_ctx *c, char *buf, int len)
{
    char a[160], b[160];
    const lquery *q = c->q;
    for (int t = 0; t < q->ntables; t++) {
        bool f = false;
        for (int i = 0; i < c->nconj; i++)
            f |= c->conj_tables[i] == UINT32_C(1) << t;
        if (t == 0)
            snprintf(a, sizeof a, "%s", f ? "F(T)" : "T");
        else {
            pl_fmt(b, sizeof b, "J(%s,%s)", a, f ? "F(T)" : "T");
            memcpy(a, b, sizeof a);
        }
    }
    bool residual = false;
    for (int i = 0; i < c->nconj; i++)
        residual |= pl_popcount(c->conj_tables[i]) != 1;
    if (residual) {
        pl_fmt(b, sizeof b, "F(%s)", a);
        memcpy(a, b, sizeof a);
    }
    if (q->aggregate) {
        pl_fmt(b, sizeof b, "G%d(%s)", q->ngroup, a);
        memcpy(a, b, sizeof a);
    }
    snprintf(buf, len, "%s%s%s%s%s", q->limit >= 0 ? "L(" : "",
             q->norder > 0 ? "O(" : "", a, q->norder > 0 ? ")" : "",
             q->limit >= 0 ? ")" : "");
}

/* Returns false when the key does not fit (no MAV for this query). */
static bool pl_mav_key(const pl_ctx *c, char *key, int len)
{
    char shape[128], cls[160] = "", locs[96];
    pl_shape(c, shape, sizeof shape);
    int o = 0;
    for (int t = 0; t < c->q->ntables && o < (int)sizeof cls; t++) {
        o += snprintf(cls + o, sizeof cls - o, "%s%d", t > 0 ? "," : "",
                      pl_bucket(c->tp[t].rows));
        for (int i = 0; i < c->ncols && o < (int)sizeof cls; i++) {
            if (c->ctab[i] != t)
                continue;
            pl_col col = pl_col_from_stats(&c->ce.set,
                                           pl_base_col(c, t, c->ccol[i]),
                                           c->tp[t].rows, c->ce.paper);
            o += snprintf(cls + o, sizeof cls - o, "%c%c",
                          col.sorted ? 's' : 'u',
                          pl_dense(&c->ce.set, col.ndv, col.min, col.max)
                              ? 'd'
                              : 'p');
        }
    }
    int gi[LQ_MAX_JOIN_KEYS];
    int ng = pl_group_cols(c, gi);
    if (ng == 1 && gi[0] >= 0) {
        pl_col col = pl_col_from_stats(
            &c->ce.set, pl_base_col(c, c->ctab[gi[0]], c->ccol[gi[0]]),
            c->tp[c->ctab[gi[0]]].rows, c->ce.paper);
        o += snprintf(cls + o, sizeof cls - o, ";g%d", pl_bucket(col.ndv));
    }
    int l[PLAN_MAX_LOCATIONS];
    int nl = pl_group_locations(c->env, c->ce.paper, l);
    int lo = snprintf(locs, sizeof locs, "t%d", c->ce.threads);
    for (int i = 0; i < nl && lo < (int)sizeof locs; i++)
        lo += snprintf(locs + lo, sizeof locs - lo, ",%s",
                       pl_loc_name(c->env, l[i]));
    int n = snprintf(key, len, "%s | %s | %s | %s | %s", shape, cls, locs,
                     c->ce.paper ? "paper" : "calibrated",
                     c->env->sqo ? "sqo" : "dqo");
    return o < (int)sizeof cls && lo < (int)sizeof locs && n < len;
}

static bool pl_mav_value(const pl_ctx *c, char *v, int len)
{
    const pl_plan *p = c->chosen_in;
    int o = snprintf(v, len, "o=");
    for (int i = 0; i < p->nseq && o < len; i++)
        o += snprintf(v + o, len - o, "%s%d", i > 0 ? "," : "", p->seq[i]);
    o += snprintf(v + o, len > o ? len - o : 0, ";j=");
    for (int i = 0; i + 1 < p->nseq && o < len; i++)
        o += snprintf(v + o, len - o, "%s%s", i > 0 ? "," : "",
                      plan_join_name((plan_join_alg)p->jalg[i]));
    if (c->chosen_gk >= 0 && o < len)
        o += snprintf(v + o, len - o, ";g=%s@%d",
                      grp_kernel_name((grp_kernel)c->chosen_gk), c->chosen_gl);
    return o < len;
}

static int pl_join_parse(const char *s, int n)
{
    for (int a = 0; a < PLAN_JOIN_COUNT_; a++)
        if ((int)strlen(plan_join_name((plan_join_alg)a)) == n &&
            strncmp(s, plan_join_name((plan_join_alg)a), n) == 0)
            return a;
    return -1;
}

/* Parses a MAV value into c->force; false when it does not fit the query. */
static bool pl_mav_parse(pl_ctx *c, const char *v)
{
    pl_force *f = &c->force;
    memset(f, 0, sizeof *f);
    f->gkernel = -1;
    if (strncmp(v, "o=", 2) != 0)
        return false;
    const char *s = v + 2;
    while (*s >= '0' && *s <= '9' && f->nseq < LQ_MAX_TABLES) {
        f->seq[f->nseq++] = (int)strtol(s, (char **)&s, 10);
        if (*s == ',')
            s++;
    }
    if (f->nseq != c->q->ntables || strncmp(s, ";j=", 3) != 0)
        return false;
    s += 3;
    for (int i = 0; i + 1 < f->nseq; i++) {
        int n = (int)strcspn(s, ",;");
        if ((f->jalg[i] = pl_join_parse(s, n)) < 0)
            return false;
        s += n;
        if (*s == ',')
            s++;
    }
    if (c->q->aggregate) {
        char name[16];
        if (sscanf(s, ";g=%15[^@]@%d", name, &f->gloc) != 2)
            return false;
        f->gkernel = grp_kernel_parse(name);
        if (f->gkernel < 0)
            return false;
    }
    for (int i = 0; i < f->nseq; i++)
        if (f->seq[i] < 0 || f->seq[i] >= c->q->ntables)
            return false;
    f->on = true;
    return true;
}

/* --------------------------------------------------------------- driver */

static dqo_status pl_check_expr(const pl_ctx *c, const lexpr *e,
                                const char *what)
{
    if (e == NULL)
        return DQO_OK;
    if (e->kind == LX_COL && (e->table < 0 || e->table >= c->q->ntables)) {
        snprintf(c->err, c->errlen,
                 "planner: %s refers to table %d of a query with %d tables",
                 what, e->table, c->q->ntables);
        return DQO_EINVAL;
    }
    dqo_status st = pl_check_expr(c, e->a, what);
    if (st == DQO_OK)
        st = pl_check_expr(c, e->b, what);
    for (int i = 0; st == DQO_OK && i < e->nlist; i++)
        st = pl_check_expr(c, e->list[i], what);
    return st;
}

static dqo_status pl_check(pl_ctx *c)
{
    const lquery *q = c->q;
    if (q->ntables < 1 || q->ntables > LQ_MAX_TABLES) {
        snprintf(c->err, c->errlen, "planner: %d tables (1 to %d planned)",
                 q->ntables, LQ_MAX_TABLES);
        return DQO_EINVAL;
    }
    for (int i = 1; i < q->ntables; i++) {
        const lq_join *j = &q->joins[i];
        if (j->nkeys < 0 || j->nkeys > LQ_MAX_JOIN_KEYS) {
            snprintf(c->err, c->errlen, "planner: join %d has %d keys", i,
                     j->nkeys);
            return DQO_EINVAL;
        }
        for (int k = 0; k < j->nkeys; k++) {
            if (j->left[k] == NULL || j->right[k] == NULL ||
                j->left[k]->kind != LX_COL || j->right[k]->kind != LX_COL) {
                snprintf(c->err, c->errlen,
                         "planner: join %d key %d is not a column pair", i, k);
                return DQO_EINVAL;
            }
            dqo_status st = pl_check_expr(c, j->left[k], "a join key");
            if (st == DQO_OK)
                st = pl_check_expr(c, j->right[k], "a join key");
            if (st != DQO_OK)
                return st;
        }
    }
    dqo_status st = pl_check_expr(c, q->where, "WHERE");
    for (int i = 0; st == DQO_OK && i < q->ngroup; i++)
        st = pl_check_expr(c, q->group[i], "GROUP BY");
    if (st == DQO_OK && q->ngroup > 0 && q->group == NULL) {
        snprintf(c->err, c->errlen, "planner: GROUP BY list missing");
        return DQO_EINVAL;
    }
    return st;
}

static void pl_reset(pl_ctx *c)
{
    for (uint32_t m = 0; m < UINT32_C(1) << c->q->ntables; m++) {
        free(c->dp[m].p);
        memset(&c->dp[m], 0, sizeof c->dp[m]);
    }
    c->nrows = 0;
    c->chosen_in = NULL;
}

static dqo_status pl_init(pl_ctx *c)
{
    const lquery *q = c->q;
    for (int i = 1; i < q->ntables; i++)
        for (int k = 0; k < q->joins[i].nkeys; k++) {
            pl_add_col(c, q->joins[i].left[k]);
            pl_add_col(c, q->joins[i].right[k]);
        }
    for (int i = 0; i < q->ngroup; i++)
        pl_add_col(c, q->group[i]);
    c->nconj = pl_split(c, q->where, 0);
    c->conj = pl_alloc(c->arena, sizeof *c->conj * (c->nconj + 1));
    c->conj_tables = pl_alloc(c->arena, sizeof *c->conj_tables * (c->nconj + 1));
    c->dp = calloc((size_t)1 << q->ntables, sizeof *c->dp);
    if (c->conj == NULL || c->conj_tables == NULL || c->dp == NULL)
        return pl_oom(c);
    pl_split(c, q->where, 0);
    return DQO_OK;
}

static dqo_status pl_plan_all(pl_ctx *c, plan_result *r)
{
    dqo_status st = pl_init(c);
    if (st != DQO_OK)
        return st;
    mav_cache *mav = c->env->mav;
    char key[MAV_KEY_MAX], val[MAV_VALUE_MAX];
    bool keyed = mav != NULL && pl_mav_key(c, key, sizeof key);
    if (keyed && mav_lookup(mav, key, val, sizeof val) &&
        pl_mav_parse(c, val)) {
        st = pl_run(c, &r->root);
        if (st == DQO_OK) {
            r->mav_hit = true;
            snprintf(r->mav_key, sizeof r->mav_key, "%s", key);
            return DQO_OK;
        }
        /* The cached choices no longer fit: plan from scratch. */
        if (st == DQO_ENOMEM)
            return st;
        pl_reset(c);
        memset(&c->force, 0, sizeof c->force);
        c->err[0] = '\0';
    }
    st = pl_run(c, &r->root);
    if (st == DQO_OK && keyed && pl_mav_value(c, val, sizeof val)) {
        (void)mav_store(mav, key, val); /* a cache that cannot write is fine */
        snprintf(r->mav_key, sizeof r->mav_key, "%s", key);
    }
    return st;
}

dqo_status plan_query(const plan_env *env, const lquery *q,
                      const plan_table_props *tables, plan_result **out,
                      char *err, int errlen)
{
    char dummy[8];
    if (err == NULL || errlen <= 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (out == NULL)
        return DQO_EINVAL;
    *out = NULL;
    if (env == NULL || q == NULL || tables == NULL) {
        snprintf(err, errlen, "plan_query: NULL %s",
                 env == NULL ? "environment" : q == NULL ? "query" : "tables");
        return DQO_EINVAL;
    }
    plan_result *r = calloc(1, sizeof *r);
    pl_arena *arena = calloc(1, sizeof *arena);
    if (r == NULL || arena == NULL) {
        free(r);
        free(arena);
        snprintf(err, errlen, "planner: out of memory");
        return DQO_ENOMEM;
    }
    r->arena_ = arena;
    r->cost_model = env->cost_model;
    r->sqo = env->sqo;
    snprintf(r->loc_id[0], sizeof r->loc_id[0], "cpu");
    for (int i = 1; env->model != NULL && i < env->model->nloc &&
                    i < PLAN_MAX_LOCATIONS;
         i++)
        snprintf(r->loc_id[i], sizeof r->loc_id[i], "%s",
                 env->model->loc[i].id);
    pl_ctx c = {.env = env, .q = q, .tp = tables, .arena = arena, .err = err,
                .errlen = errlen};
    pl_costenv_init(&c.ce, env);
    dqo_status st = pl_check(&c);
    if (st == DQO_OK)
        st = pl_plan_all(&c, r);
    if (st == DQO_OK && arena->failed)
        st = pl_oom(&c);
    if (st == DQO_OK && c.nrows > 0) {
        r->dp = pl_alloc(arena, sizeof *r->dp * c.nrows);
        if (r->dp == NULL)
            st = pl_oom(&c);
        else {
            memcpy(r->dp, c.rows, sizeof *r->dp * c.nrows);
            r->ndp = c.nrows;
        }
    }
    if (c.dp != NULL)
        pl_reset(&c);
    free(c.dp);
    free(c.rows);
    free(c.rownode);
    if (st != DQO_OK) {
        plan_result_free(r);
        return st;
    }
    r->cost = r->root->total;
    *out = r;
    return DQO_OK;
}

void plan_result_free(plan_result *r)
{
    if (r == NULL)
        return;
    pl_arena *a = r->arena_;
    if (a != NULL) {
        pl_arena_free(a);
        free(a);
    }
    free(r);
}
