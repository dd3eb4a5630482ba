/*
 * test_dp.c - the DQO enumerator under the paper's cost model (planner/
 * dp.c, cost.c): the query of the paper's Section 5,
 *   SELECT R.A, COUNT(*) FROM R JOIN S ON R.ID = S.R_ID GROUP BY R.A,
 * with |R| = 40,000, |S| = 90,000, 20,000 groups, must reproduce every
 * cell of Table 5 (Appendix A) as sets of (plan, cost, output size) per
 * sub-problem, and the DQO over SQO factors of Figure 7. Also: the DP
 * table text, SQO never picks density-based algorithms or a device, and
 * errors on malformed queries.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/backend.h"
#include "planner/plan.h"

/* ----------------------------------------------------- the paper's query */

typedef struct paper_q {
    lquery q;
    lexpr rid, sid, ra, cnt;
    lexpr *group[1];
    lq_item items[2];
    plan_col_props rcols[2], scols[1];
    plan_table_props tp[2];
} paper_q;

static char name_r[] = "R", name_s[] = "S", item_a[] = "A", item_c[] = "n";

static dqo_column_stats col_stats(uint64_t rows, uint64_t ndv, bool dense,
                                  bool sorted)
{
    dqo_column_stats s = {.rows = rows, .distinct = ndv, .min = 0,
                          .max = dense ? (int64_t)ndv - 1 : INT64_C(4294967295),
                          .runs = sorted ? ndv : rows,
                          .order = sorted ? DQO_ORDER_ASC : DQO_ORDER_NONE};
    return s;
}

static void paper_build(paper_q *p, bool dense, bool rs, bool ss)
{
    memset(p, 0, sizeof *p);
    lquery *q = &p->q;
    q->ntables = 2;
    q->tables[0].name = q->tables[0].alias = name_r;
    q->tables[1].name = q->tables[1].alias = name_s;
    p->rid = (lexpr){.kind = LX_COL, .type = DQO_TYPE_I64, .table = 0, .col = 0};
    p->ra = (lexpr){.kind = LX_COL, .type = DQO_TYPE_I64, .table = 0, .col = 1};
    p->sid = (lexpr){.kind = LX_COL, .type = DQO_TYPE_I64, .table = 1, .col = 0};
    p->cnt = (lexpr){.kind = LX_AGG, .type = DQO_TYPE_I64,
                     .agg = DQO_AGG_COUNT_STAR};
    q->joins[1].nkeys = 1;
    q->joins[1].left[0] = &p->rid;
    q->joins[1].right[0] = &p->sid;
    p->group[0] = &p->ra;
    q->ngroup = 1;
    q->group = p->group;
    q->aggregate = true;
    p->items[0] = (lq_item){.e = &p->ra, .name = item_a};
    p->items[1] = (lq_item){.e = &p->cnt, .name = item_c};
    q->nitems = 2;
    q->items = p->items;
    q->limit = -1;
    p->rcols[0] = (plan_col_props){.known = true, .cached = true, .type = DQO_TYPE_I64,
                                   .stats = col_stats(40000, 40000, dense, rs)};
    p->rcols[1] = (plan_col_props){.known = true, .cached = true, .type = DQO_TYPE_I64,
                                   .stats = col_stats(40000, 20000, dense, rs)};
    p->scols[0] = (plan_col_props){.known = true, .cached = true, .type = DQO_TYPE_I64,
                                   .stats = col_stats(90000, 40000, dense, ss)};
    p->tp[0] = (plan_table_props){.rows = 40000, .ncols = 2, .cols = p->rcols,
                                  .location = -1, .row_bytes = 16};
    p->tp[1] = (plan_table_props){.rows = 90000, .ncols = 1, .cols = p->scols,
                                  .location = -1, .row_bytes = 8};
}

static plan_result *paper_plan(bool dense, bool rs, bool ss, bool sqo)
{
    paper_q p;
    paper_build(&p, dense, rs, ss);
    plan_settings set;
    plan_settings_default(&set);
    plan_env env = {.settings = &set, .cost_model = PLAN_COST_PAPER,
                    .sqo = sqo, .threads = 1};
    plan_result *r = NULL;
    char err[256];
    assert_int_equal(plan_query(&env, &p.q, p.tp, &r, err, sizeof err),
                     DQO_OK);
    assert_non_null(r);
    return r;
}

/* ------------------------------------------------------- Table 5 itself */

typedef struct exp_row {
    const char *sub, *plan;
    double cost;
    uint64_t rows;
} exp_row;

#define J "R \u22c8 S"
#define G "\u0393(R \u22c8 S)"
#define BASE {"R", "scan(R)", 0, 40000}, {"S", "scan(S)", 0, 90000}

/* The eight cells: [dense][R sorted][S sorted], rows as in Appendix A. */
static const exp_row t5_dense_ss[] = {
    BASE,
    {J, "HJ(R,S)", 520000, 90000}, {J, "OJ(R,S)", 130000, 90000},
    {J, "SOJ(R,S)", 130000, 90000}, {J, "SPHJ(R,S)", 130000, 90000},
    {G, "HG(OJ(R,S))", 490000, 20000}, {G, "OG(OJ(R,S))", 220000, 20000},
    {G, "SOG(OJ(R,S))", 220000, 20000}, {G, "SPHG(OJ(R,S))", 220000, 20000},
    {NULL, NULL, 0, 0}};
static const exp_row t5_dense_su[] = {
    BASE,
    {J, "HJ(R,S)", 520000, 90000}, {J, "SOJ(R,S)", 1611187, 90000},
    {J, "SPHJ(R,S)", 130000, 90000},
    {G, "HG(SPHJ(R,S))", 490000, 20000}, {G, "SPHG(SPHJ(R,S))", 220000, 20000},
    {G, "SOG(SPHJ(R,S))", 1701187, 20000}, {G, "OG(SOJ(R,S))", 1701187, 20000},
    {G, "SOG(SOJ(R,S))", 1701187, 20000},
    {NULL, NULL, 0, 0}};
static const exp_row t5_dense_us[] = {
    BASE,
    {J, "HJ(R,S)", 520000, 90000}, {J, "SOJ(R,S)", 741508, 90000},
    {J, "SPHJ(R,S)", 130000, 90000},
    {G, "HG(SPHJ(R,S))", 490000, 20000}, {G, "OG(SPHJ(R,S))", 220000, 20000},
    {G, "SOG(SPHJ(R,S))", 220000, 20000}, {G, "SPHG(SPHJ(R,S))", 220000, 20000},
    {NULL, NULL, 0, 0}};
static const exp_row t5_dense_uu[] = {
    BASE,
    {J, "HJ(R,S)", 520000, 90000}, {J, "SOJ(R,S)", 2222696, 90000},
    {J, "SPHJ(R,S)", 130000, 90000},
    {G, "HG(SPHJ(R,S))", 490000, 20000}, {G, "OG(SOJ(R,S))", 2312696, 20000},
    {G, "SOG(SPHJ(R,S))", 1701187, 20000}, {G, "SOG(SOJ(R,S))", 2312696, 20000},
    {G, "SPHG(SPHJ(R,S))", 220000, 20000},
    {NULL, NULL, 0, 0}};
static const exp_row t5_sparse_ss[] = {
    BASE,
    {J, "HJ(R,S)", 520000, 90000}, {J, "OJ(R,S)", 130000, 90000},
    {J, "SOJ(R,S)", 130000, 90000}, {J, "BSJ(R,S)", 1987403, 90000},
    {G, "HG(OJ(R,S))", 490000, 20000}, {G, "OG(OJ(R,S))", 220000, 20000},
    {G, "SOG(OJ(R,S))", 220000, 20000}, {G, "BSG(OJ(R,S))", 1415894, 20000},
    {NULL, NULL, 0, 0}};
static const exp_row t5_sparse_su[] = {
    BASE,
    {J, "HJ(R,S)", 520000, 90000}, {J, "SOJ(R,S)", 1611187, 90000},
    {J, "BSJ(R,S)", 1987403, 90000},
    {G, "HG(HJ(R,S))", 880000, 20000}, {G, "OG(SOJ(R,S))", 1701187, 20000},
    {G, "SOG(HJ(R,S))", 2091187, 20000}, {G, "SOG(SOJ(R,S))", 1701187, 20000},
    {G, "BSG(HJ(R,S))", 1805894, 20000},
    {NULL, NULL, 0, 0}};
static const exp_row t5_sparse_us[] = {
    BASE,
    {J, "HJ(R,S)", 520000, 90000}, {J, "SOJ(R,S)", 741508, 90000},
    {J, "BSJ(R,S)", 1987403, 90000},
    {G, "HG(HJ(R,S))", 880000, 20000}, {G, "OG(HJ(R,S))", 610000, 20000},
    {G, "SOG(HJ(R,S))", 610000, 20000}, {G, "BSG(HJ(R,S))", 1805894, 20000},
    {NULL, NULL, 0, 0}};
static const exp_row t5_sparse_uu[] = {
    BASE,
    {J, "HJ(R,S)", 520000, 90000}, {J, "SOJ(R,S)", 2222696, 90000},
    {J, "BSJ(R,S)", 1987403, 90000},
    {G, "HG(HJ(R,S))", 880000, 20000}, {G, "OG(SOJ(R,S))", 2312696, 20000},
    {G, "SOG(HJ(R,S))", 2091187, 20000}, {G, "SOG(SOJ(R,S))", 2312696, 20000},
    {G, "BSG(HJ(R,S))", 1805894, 20000},
    {NULL, NULL, 0, 0}};

/* Asserts that the DP rows are exactly the expected set. */
static void check_cell(bool dense, bool rs, bool ss, const exp_row *exp)
{
    plan_result *r = paper_plan(dense, rs, ss, false);
    int n = 0;
    for (; exp[n].sub != NULL; n++) {
        int found = 0;
        for (int i = 0; i < r->ndp; i++) {
            const plan_dp_row *d = &r->dp[i];
            if (strcmp(d->subproblem, exp[n].sub) == 0 &&
                strcmp(d->plan, exp[n].plan) == 0) {
                found++;
                if (llround(d->cost) != (long long)exp[n].cost ||
                    d->rows != exp[n].rows)
                    fail_msg("%s %s %s %s: cost %.1f rows %llu, paper %.0f "
                             "%llu",
                             dense ? "dense" : "sparse", rs ? "Rs" : "Ru",
                             ss ? "Ss" : "Su", d->plan, d->cost,
                             (unsigned long long)d->rows, exp[n].cost,
                             (unsigned long long)exp[n].rows);
            }
        }
        if (found != 1)
            fail_msg("%s R%c S%c: %s in %s found %d times",
                     dense ? "dense" : "sparse", rs ? 's' : 'u',
                     ss ? 's' : 'u', exp[n].plan, exp[n].sub, found);
    }
    if (r->ndp != n) {
        char *t = plan_dp_table_format(r);
        fail_msg("%d DP rows, paper %d:\n%s", r->ndp, n, t);
    }
    plan_result_free(r);
}

static void test_table5(void **state)
{
    (void)state;
    check_cell(true, true, true, t5_dense_ss);
    check_cell(true, true, false, t5_dense_su);
    check_cell(true, false, true, t5_dense_us);
    check_cell(true, false, false, t5_dense_uu);
    check_cell(false, true, true, t5_sparse_ss);
    check_cell(false, true, false, t5_sparse_su);
    check_cell(false, false, true, t5_sparse_us);
    check_cell(false, false, false, t5_sparse_uu);
}

/* Figure 7: the best DQO plan against the best SQO plan. */
static void test_figure7(void **state)
{
    (void)state;
    static const struct {
        bool dense, rs, ss;
        double factor;
    } fig[] = {
        {false, true, true, 1}, {false, true, false, 1},
        {false, false, true, 1}, {false, false, false, 1},
        {true, true, true, 1}, {true, true, false, 4},
        {true, false, true, 610000.0 / 220000.0}, {true, false, false, 4},
    };
    for (size_t i = 0; i < sizeof fig / sizeof fig[0]; i++) {
        plan_result *d = paper_plan(fig[i].dense, fig[i].rs, fig[i].ss, false);
        plan_result *s = paper_plan(fig[i].dense, fig[i].rs, fig[i].ss, true);
        double f = s->cost / d->cost;
        if (fabs(f - fig[i].factor) > 1e-9)
            fail_msg("cell %zu: factor %.4f, paper %.4f", i, f, fig[i].factor);
        plan_result_free(d);
        plan_result_free(s);
    }
}

static bool uses_density(const plan_node *n)
{
    if (n == NULL)
        return false;
    if (n->op == PLAN_OP_JOIN &&
        (n->alg == PLAN_JOIN_DIRECT || n->alg == PLAN_JOIN_BSEARCH))
        return true;
    if (n->op == PLAN_OP_GROUP &&
        (n->alg == GRP_KERNEL_DIRECT || n->alg == GRP_KERNEL_BSEARCH))
        return true;
    if (n->location != 0)
        return true;
    for (int i = 0; i < n->nin; i++)
        if (uses_density(n->in[i]))
            return true;
    return false;
}

static void test_sqo_rows(void **state)
{
    (void)state;
    for (int c = 0; c < 8; c++) {
        plan_result *s = paper_plan(c & 1, c & 2, c & 4, true);
        assert_false(uses_density(s->root));
        for (int i = 0; i < s->ndp; i++) {
            assert_null(strstr(s->dp[i].plan, "SPH"));
            assert_null(strstr(s->dp[i].plan, "BS"));
        }
        plan_result_free(s);
    }
    /* DQO picks SPHG over SPHJ on dense unsorted inputs (Figure 7's 4x). */
    plan_result *d = paper_plan(true, false, false, false);
    const plan_node *n = d->root;
    while (n != NULL && n->op != PLAN_OP_GROUP)
        n = n->in[0];
    assert_non_null(n);
    assert_int_equal(n->alg, GRP_KERNEL_DIRECT);
    assert_int_equal(n->in[0]->op, PLAN_OP_JOIN);
    assert_int_equal(n->in[0]->alg, PLAN_JOIN_DIRECT);
    assert_true(fabs(d->cost - 220000) < 0.5);
    plan_result_free(d);
}

static void test_dp_table_text(void **state)
{
    (void)state;
    plan_result *r = paper_plan(false, true, true, false);
    char *t = plan_dp_table_format(r);
    assert_non_null(t);
    static const char *const want[] = {
        "Sub-problem", "Possible plans", "Output-size", "scan(R)",
        "1,987,403", "1,415,894", "BSG(OJ(R,S))", "90,000", "20,000"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strstr(t, want[i]) == NULL)
            fail_msg("missing %s in\n%s", want[i], t);
    /* The chosen rows: both scans, OJ and one grouping at 220,000. */
    int chosen = 0;
    for (int i = 0; i < r->ndp; i++)
        chosen += r->dp[i].chosen;
    assert_int_equal(chosen, 4);
    assert_non_null(strstr(t, "* "));
    free(t);
    paper_q p;
    paper_build(&p, false, true, true);
    char *e = plan_explain(r, &p.q, false);
    assert_non_null(e);
    assert_non_null(strstr(e, "paper cost model"));
    assert_non_null(strstr(e, "GROUP"));
    assert_non_null(strstr(e, "JOIN oj"));
    assert_non_null(strstr(e, "why:"));
    free(e);
    plan_result_free(r);
}

static void test_bad_input(void **state)
{
    (void)state;
    paper_q p;
    paper_build(&p, true, true, true);
    plan_env env = {.cost_model = PLAN_COST_PAPER};
    plan_result *r = (plan_result *)&env; /* must be reset to NULL */
    char err[256];
    p.q.ntables = 0;
    assert_int_equal(plan_query(&env, &p.q, p.tp, &r, err, sizeof err),
                     DQO_EINVAL);
    assert_null(r);
    assert_non_null(strstr(err, "tables"));
    paper_build(&p, true, true, true);
    p.sid.table = 7;
    assert_int_equal(plan_query(&env, &p.q, p.tp, &r, err, sizeof err),
                     DQO_EINVAL);
    assert_non_null(strstr(err, "table 7"));
    paper_build(&p, true, true, true);
    p.q.joins[1].nkeys = 0; /* no key: a cross product */
    assert_int_equal(plan_query(&env, &p.q, p.tp, &r, err, sizeof err),
                     DQO_EINVAL);
    assert_non_null(strstr(err, "not connected"));
    assert_int_equal(plan_query(NULL, &p.q, p.tp, &r, err, sizeof err),
                     DQO_EINVAL);
    plan_result_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table5),
        cmocka_unit_test(test_figure7),
        cmocka_unit_test(test_sqo_rows),
        cmocka_unit_test(test_dp_table_text),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
