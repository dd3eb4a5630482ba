/*
 * explain.c - EXPLAIN (the chosen plan as an indented tree of granules, each
 * with its estimate, output properties and reason) and the DP table in the
 * form of the paper's Table 5.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend.h"
#include "planner/plan_int.h"

/* A growing string; on allocation failure it stays as it was and `failed`
 * is set (the caller then returns NULL). */
typedef struct pl_buf {
    char *s;
    size_t n, cap;
    bool failed;
} pl_buf;

static void pl_printf(pl_buf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0)
        return;
    if (b->n + (size_t)need + 1 > b->cap) {
        size_t cap = b->cap * 2 + (size_t)need + 256;
        char *s = realloc(b->s, cap);
        if (s == NULL) {
            b->failed = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    b->n += (size_t)need;
}

static char *pl_buf_done(pl_buf *b)
{
    if (b->failed) {
        free(b->s);
        return NULL;
    }
    if (b->s == NULL)
        pl_printf(b, "%s", "");
    return b->s;
}

static const char *pl_op_name(plan_op op)
{
    static const char *const n[] = {"SCAN", "STATS", "FILTER", "JOIN",
                                    "TRANSFER", "GROUP", "PROJECT", "ORDER",
                                    "LIMIT"};
    return (unsigned)op <= PLAN_OP_LIMIT ? n[op] : "?";
}

static const char *pl_table_alias(const lquery *q, int t)
{
    if (q == NULL || t < 0 || t >= q->ntables)
        return "?";
    const lq_table *lt = &q->tables[t];
    return lt->alias != NULL ? lt->alias : lt->name != NULL ? lt->name : "?";
}

/* The id of a node's location ("cpu", "cl:0"). */
static const char *pl_node_loc(const plan_result *r, int loc)
{
    if (loc <= 0 || loc >= PLAN_MAX_LOCATIONS || r->loc_id[loc][0] == '\0')
        return "cpu";
    return r->loc_id[loc];
}

static void pl_explain_node(pl_buf *b, const plan_result *r,
                            const plan_node *n, const lquery *q, bool analyze,
                            int depth, bool paper)
{
    pl_printf(b, "%*s%s", 2 * depth, "", pl_op_name(n->op));
    switch (n->op) {
    case PLAN_OP_SCAN:
    case PLAN_OP_STATS: pl_printf(b, " %s", pl_table_alias(q, n->table)); break;
    case PLAN_OP_JOIN:
        pl_printf(b, " %s (%s) on cpu", plan_join_name((plan_join_alg)n->alg),
                  plan_join_paper_name((plan_join_alg)n->alg));
        break;
    case PLAN_OP_GROUP:
        pl_printf(b, " %s (%s) on %s", grp_kernel_name((grp_kernel)n->alg),
                  plan_group_paper_name(n->alg), pl_node_loc(r, n->location));
        break;
    case PLAN_OP_TRANSFER:
        pl_printf(b, " host -> %s", pl_node_loc(r, n->location));
        break;
    default: break;
    }
    if (n->op == PLAN_OP_FILTER && q != NULL) {
        char e[160];
        for (int i = 0; i < n->npred && i < 4; i++) {
            lexpr_format(q, n->pred[i], e, sizeof e);
            pl_printf(b, "%s%s", i > 0 ? " AND " : " ", e);
        }
    }
    if (n->op == PLAN_OP_JOIN && q != NULL) {
        char e1[96], e2[96];
        for (int i = 0; i < n->nkeys; i++) {
            lexpr_format(q, n->build_key[i], e1, sizeof e1);
            lexpr_format(q, n->probe_key[i], e2, sizeof e2);
            pl_printf(b, "%s%s = %s", i > 0 ? " AND " : " ON ", e1, e2);
        }
    }
    if (paper)
        pl_printf(b, "  (est %.0f, total %.0f", n->cost, n->total);
    else
        pl_printf(b, "  (est %.3g ms, total %.3g ms", n->cost, n->total);
    if (analyze && n->measured_ms >= 0)
        pl_printf(b, ", actual %.3g ms", n->measured_ms);
    pl_printf(b, "; out %" PRIu64 " rows", n->out.rows);
    if (n->op != PLAN_OP_SCAN || n->out.ndv > 0)
        pl_printf(b, ", ndv %" PRIu64 "%s%s", n->out.ndv,
                  n->out.dense ? " dense" : "", n->out.sorted ? " sorted" : "");
    pl_printf(b, ")\n");
    if (n->why[0] != '\0')
        pl_printf(b, "%*s  why: %s\n", 2 * depth, "", n->why);
    for (int i = 0; i < n->nin; i++)
        if (n->in[i] != NULL)
            pl_explain_node(b, r, n->in[i], q, analyze, depth + 1, paper);
}

static bool pl_is_paper(const plan_result *r)
{
    return r->cost_model == PLAN_COST_PAPER;
}

char *plan_explain(const plan_result *r, const lquery *q, bool analyze)
{
    pl_buf b = {0};
    if (r == NULL || r->root == NULL) {
        pl_printf(&b, "(no plan)\n");
        return pl_buf_done(&b);
    }
    bool paper = pl_is_paper(r);
    if (r->mav_hit)
        pl_printf(&b, "MAV hit: %s\n", r->mav_key);
    pl_printf(&b, "plan (%s cost model, %s), estimated total %s%.6g%s\n",
              paper ? "paper" : "calibrated", r->sqo ? "SQO" : "DQO",
              "", r->cost, paper ? " tuples" : " ms");
    pl_explain_node(&b, r, r->root, q, analyze, 0, paper);
    return pl_buf_done(&b);
}

static void pl_thousands(char *buf, int len, double v)
{
    char t[32];
    snprintf(t, sizeof t, "%.0f", v);
    int n = (int)strlen(t), o = 0, lead = n % 3 == 0 ? 3 : n % 3;
    for (int i = 0; i < n && o < len - 1; i++) {
        if (i > 0 && (i - lead) % 3 == 0 && t[i - 1] != '-')
            buf[o++] = ',';
        if (o < len - 1)
            buf[o++] = t[i];
    }
    buf[o] = '\0';
}

char *plan_dp_table_format(const plan_result *r)
{
    pl_buf b = {0};
    if (r == NULL) {
        pl_printf(&b, "(no plan)\n");
        return pl_buf_done(&b);
    }
    bool paper = pl_is_paper(r);
    pl_printf(&b, "  %-24s %-36s %14s %12s %-5s %-6s\n", "Sub-problem",
              "Possible plans", paper ? "Costs" : "Costs (ms)", "Output-size",
              "Dense", "Sorted");
    const char *prev = "";
    for (int i = 0; i < r->ndp; i++) {
        const plan_dp_row *d = &r->dp[i];
        char cost[32], rows[32];
        if (paper)
            pl_thousands(cost, sizeof cost, d->cost);
        else
            snprintf(cost, sizeof cost, "%.4g", d->cost);
        pl_thousands(rows, sizeof rows, (double)d->rows);
        bool same = strcmp(prev, d->subproblem) == 0;
        pl_printf(&b, "%c %-24s %-36s %14s %12s %-5s %-6s\n",
                  d->chosen ? '*' : ' ', same ? "" : d->subproblem, d->plan,
                  cost, rows, d->dense ? "yes" : "-", d->sorted ? "yes" : "-");
        prev = d->subproblem;
    }
    pl_printf(&b, "(* = in the chosen plan)\n");
    return pl_buf_done(&b);
}
