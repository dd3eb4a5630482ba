/*
 * test_cl_group.c - the OpenCL grouping kernels (opencl/group*.c and
 * kernels/group_*.cl), called through opencl_backend.group with the granule
 * of plan_force_group, against the naive reference of kernel_ref.h; run on
 * whatever device cl:0 is (PoCL's CPU device in CI).
 *
 * The case matrix mirrors test_group_kernels.c: seeded random keys (few
 * groups, many groups, a large range, the whole type domain), sorted,
 * reverse-sorted, clustered, clustered with keys repeated in later runs, all
 * keys equal, one row, no rows, keys at the type's minimum and maximum, one
 * group per row, a distinct estimate 100x too small and 20x too large; each
 * for u32, i32 and i64 keys, and each with every device family: sphg
 * (direct), hg (hash), radix, sog (sort) and og (order).
 *
 * A device kernel carries at most OCL_MAX_AGGS (8) lowered aggregates, and
 * PoCL takes seconds to compile each query shape (key type, aggregate ops,
 * types and NULL flags) for each family, so the 32 aggregates (COUNT, SUM,
 * MIN, MAX over u32, i32, i64 and f64 columns, with and without NULLs) are
 * split into four sets of 8 ("all0".."all3": each (op, type, NULLs)
 * combination in exactly one set, every set mixing the ops), and the whole
 * file uses five shapes (see key_sets): u32 keys with all0 and with keys
 * only ("none"), i32 keys with all1, i64 keys with all2 and all3.
 *
 * Results are compared as a set of groups: the output is sorted by key
 * before ref_compare (f64 SUMs within its 1e-9 of the sum of magnitudes);
 * an output marked partial (per-chunk results) has its equal keys merged
 * first; direct must also emit keys strictly ascending. A status other than
 * DQO_OK is accepted only where the back-end may refuse, always with a
 * message:
 *   - a family that is still a stub ("not built yet"): skipped, said once;
 *   - sphg when the key range exceeds 2^28 entries;
 *   - hg when i64 keys span the whole int64 range (no free-entry marker);
 *   - an i64 SUM that could wrap on the device (some group's sum of
 *     magnitudes exceeds INT64_MAX): DQO_EUNSUPPORTED naming "wrapped".
 * When the final sum leaves int64, DQO_OK is right only with partial
 * entries whose exact sums add up (the engine's checked merge then reports
 * the overflow) or with out.overflow naming the SUM.
 * Direct and hash must have run on most cases (a back-end refusing
 * everything fails the test).
 *
 * Further tests: resident columns (col_upload) against streaming from host
 * memory; a small memory budget (ocl_set_mem_budget) forcing many streamed
 * chunks and resident columns in pieces, and a table larger than the budget
 * failing cleanly; the hash table's overflow retries with a distinct
 * estimate far too low; i64 SUMs that wrap; every checked cl* call and
 * every host allocation of a small query failed in turn (no leaks of host
 * memory or OpenCL objects); bad arguments.
 *
 * Compiled programs go to a temporary DQO_CL_CACHE directory (removed at
 * the end), so programs dropped by trim load back quickly.
 *
 * Environment:
 *   DQO_TEST_SEED=N             the seed of the random data (printed)
 *   DQO_TEST_KERNELS=hg,sphg    run only these families (CLI names)
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/alloc.h"
#include "kernel_ref.h"
#include "opencl/ocl_group.h"
#include "planner/planner.h"
#include "tests/test_util.h"

/* Host-side work (reference, copies) is several times slower under
 * AddressSanitizer; the device's is not. Rows scale with this. */
#if defined(__SANITIZE_ADDRESS__)
#define ROW_SCALE 2
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ROW_SCALE 2
#endif
#endif
#ifndef ROW_SCALE
#define ROW_SCALE 1
#endif

static uint64_t test_seed = 20240601;
static int ndev = -1;
static dev_info dev0;
static char cache_dir[256];

/* ------------------------------------------------------------- families */

#define NFAM 5
static const int fam_kernel[NFAM] = {GRP_KERNEL_DIRECT, GRP_KERNEL_HASH,
                                     GRP_KERNEL_RADIX, GRP_KERNEL_SORT,
                                     GRP_KERNEL_ORDER};
static const char *const fam_name[NFAM] = {"sphg", "hg", "radix", "sog",
                                           "og"};
enum { F_DIRECT = 0, F_HASH = 1 };
static bool fam_on[NFAM];
static bool fam_stub[NFAM]; /* answered "not built yet" */
static long fam_runs[NFAM], fam_ok[NFAM]; /* in the case matrix */

#define NEED_DEVICE()                                                          \
    do {                                                                       \
        if (ndev <= 0) {                                                       \
            print_message("[  SKIP    ] no OpenCL device\n");                  \
            skip();                                                            \
        }                                                                      \
    } while (0)

static const char *type_name(dqo_type t)
{
    switch (t) {
    case DQO_TYPE_U32: return "u32";
    case DQO_TYPE_I32: return "i32";
    case DQO_TYPE_I64: return "i64";
    case DQO_TYPE_F64: return "f64";
    default: return "?";
    }
}

static size_t type_width(dqo_type t)
{
    return t == DQO_TYPE_I64 || t == DQO_TYPE_F64 ? 8 : 4;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* True when `msg` names a cl* call ("clFoo: ..." or "...: clFoo: ..."). */
static bool names_call(const char *msg)
{
    for (const char *p = msg; (p = strstr(p, "cl")) != NULL; p++)
        if ((p == msg || p[-1] == ' ') && p[2] >= 'A' && p[2] <= 'Z') {
            const char *colon = strchr(p, ':');
            const char *space = strchr(p, ' ');
            if (colon != NULL && (space == NULL || colon < space))
                return true;
        }
    return false;
}

/* Host allocations and OpenCL objects live, less what opened devices keep
 * between queries (contexts, queues, cached programs, pinned staging
 * buffers): a query leaks nothing when this is the same before and after. */
typedef struct live_mark {
    long mem, obj;
} live_mark;

static live_mark live_now(void)
{
    live_mark m;
    m.mem = mem_outstanding() - ocl_cached_allocs();
    m.obj = ocl_live_objects() - ocl_cached_objects();
    return m;
}

/* True when something leaked since `since`; describes it in msg. */
static bool live_leaked(live_mark since, char *msg, size_t len)
{
    const live_mark now = live_now();
    snprintf(msg, len, "%ld host allocations, %ld OpenCL objects",
             now.mem - since.mem, now.obj - since.obj);
    return now.mem != since.mem || now.obj != since.obj;
}

/* ------------------------------------------------------------ random data */

/* A base key per type: u32 keys above INT32_MAX, signed ones negative. */
static int64_t type_base(dqo_type t)
{
    switch (t) {
    case DQO_TYPE_U32: return INT64_C(3000000000);
    case DQO_TYPE_I32: return -500;
    default: return -(INT64_C(1) << 40);
    }
}

static void *typed_keys(const int64_t *k, uint64_t n, dqo_type t)
{
    const size_t m = n + 1;
    switch (t) {
    case DQO_TYPE_U32: {
        uint32_t *d = malloc(m * sizeof *d);
        for (uint64_t i = 0; i < n; i++)
            d[i] = (uint32_t)k[i];
        return d;
    }
    case DQO_TYPE_I32: {
        int32_t *d = malloc(m * sizeof *d);
        for (uint64_t i = 0; i < n; i++)
            d[i] = (int32_t)k[i];
        return d;
    }
    default: {
        int64_t *d = malloc(m * sizeof *d);
        memcpy(d, k, n * sizeof *d);
        return d;
    }
    }
}

/* The value columns. */
typedef struct values {
    uint32_t *u32;
    int32_t *i32;
    int64_t *i64;
    double *f64;
    uint8_t *valid;
} values;

static void values_make(values *v, uint64_t n, rng *r)
{
    const size_t m = n + 1;
    v->u32 = malloc(m * sizeof *v->u32);
    v->i32 = malloc(m * sizeof *v->i32);
    v->i64 = malloc(m * sizeof *v->i64);
    v->f64 = malloc(m * sizeof *v->f64);
    v->valid = malloc(m);
    for (uint64_t i = 0; i < n; i++) {
        v->u32[i] = (uint32_t)rng_next(r);
        v->i32[i] = (int32_t)rng_next(r);
        v->i64[i] = rng_in(r, -(INT64_C(1) << 40), INT64_C(1) << 40);
        v->f64[i] = (double)rng_in(r, -1000000, 1000000) / 1000.0;
        v->valid[i] = rng_next(r) % 5 != 0;
    }
}

static void values_free(values *v)
{
    free(v->u32);
    free(v->i32);
    free(v->i64);
    free(v->f64);
    free(v->valid);
}

/* ----------------------------------------------------- aggregate shapes */

typedef enum agg_set {
    SET_NONE, /* keys only: COUNT(*) */
    SET_ALL0, /* all0..all3: 8 aggregates each, 32 in all */
    SET_ALL1,
    SET_ALL2,
    SET_ALL3
} agg_set;

static const char *const set_name[] = {"none", "all0", "all1", "all2",
                                       "all3"};

/* The shapes each key type runs (program compiles dominate the time). */
static const agg_set key_sets_u32[] = {SET_ALL0, SET_NONE};
static const agg_set key_sets_i32[] = {SET_ALL1};
static const agg_set key_sets_i64[] = {SET_ALL2, SET_ALL3};

static const void *type_data(const values *v, dqo_type t)
{
    switch (t) {
    case DQO_TYPE_U32: return v->u32;
    case DQO_TYPE_I32: return v->i32;
    case DQO_TYPE_I64: return v->i64;
    default: return v->f64;
    }
}

/* Set allg: aggregate (type t, NULLs nul) has op (g + t + nul) % 4, so each
 * (op, type, NULLs) lies in exactly one of the four sets. */
static int aggs_make(agg_set s, const values *v, grp_agg *aggs)
{
    static const dqo_type types[4] = {DQO_TYPE_U32, DQO_TYPE_I32,
                                      DQO_TYPE_I64, DQO_TYPE_F64};
    switch (s) {
    case SET_NONE: return 0;
    default: {
        const int g = (int)s - (int)SET_ALL0;
        int n = 0;
        for (int t = 0; t < 4; t++)
            for (int nul = 0; nul < 2; nul++)
                aggs[n++] = (grp_agg){(agg_op)((g + t + nul) % 4), types[t],
                                      type_data(v, types[t]),
                                      nul ? v->valid : NULL, NULL};
        return n;
    }
    }
}

/* ---------------------------------------------------- checks of a result */

static int failures;

typedef struct ctx {
    const char *name;  /* the case */
    const char *shape; /* the aggregate set */
} ctx;

static void report(const ctx *c, const grp_input *in, int f, const char *fmt,
                   ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (failures < 30)
        print_error("FAIL case %s, key %s, aggs %s, family %s (seed %llu, "
                    "DQO_TEST_SEED to repeat): %s\n",
                    c->name, type_name(in->key_type), c->shape,
                    f >= 0 ? fam_name[f] : "-",
                    (unsigned long long)test_seed, msg);
    failures++;
}

static uint64_t ref_find(const ref_output *r, int64_t key)
{
    uint64_t lo = 0, hi = r->groups;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (r->keys[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* True when an i64 SUM of `in` could wrap on the device in some order of
 * additions: some group's sum of |x| over its valid rows exceeds
 * INT64_MAX. */
static bool wrap_possible(const grp_input *in, const ref_output *r)
{
    bool any = false;
    for (int a = 0; a < in->naggs && !any; a++) {
        const grp_agg *g = &in->aggs[a];
        if (g->op != AGG_OP_SUM || g->type != DQO_TYPE_I64)
            continue;
        unsigned __int128 *mag = calloc(r->groups + 1, sizeof *mag);
        for (uint64_t i = 0; i < in->rows; i++) {
            if (g->valid != NULL && g->valid[i] == 0)
                continue;
            const int64_t x = ((const int64_t *)g->data)[i];
            const uint64_t ax = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
            mag[ref_find(r, ref_key(in, i))] += ax;
        }
        for (uint64_t i = 0; i < r->groups && !any; i++)
            any = mag[i] > (unsigned __int128)INT64_MAX;
        free(mag);
    }
    return any;
}

/* A merged copy (malloc) of an output whose keys may repeat: equal keys
 * folded (COUNT(*), COUNT and SUM added, MIN / MAX kept, f64 as double). */
static const grp_output *merge_out_;
static int merge_cmp(const void *a, const void *b)
{
    int64_t x = merge_out_->keys[*(const uint64_t *)a];
    int64_t y = merge_out_->keys[*(const uint64_t *)b];
    return x < y ? -1 : x > y;
}

static void merge_partial(const grp_input *in, const grp_output *out,
                          grp_output *m)
{
    memset(m, 0, sizeof *m);
    const uint64_t n = out->groups;
    uint64_t *ord = malloc((n + 1) * sizeof *ord);
    for (uint64_t i = 0; i < n; i++)
        ord[i] = i;
    merge_out_ = out;
    qsort(ord, n, sizeof *ord, merge_cmp);
    m->keys = malloc((n + 1) * sizeof *m->keys);
    m->count = malloc((n + 1) * sizeof *m->count);
    for (int a = 0; a < in->naggs; a++)
        m->acc[a] = malloc((n + 1) * 8);
    uint64_t g = 0;
    for (uint64_t i = 0; i < n; i++) {
        const uint64_t o = ord[i];
        const bool fresh = g == 0 || m->keys[g - 1] != out->keys[o];
        if (fresh) {
            m->keys[g] = out->keys[o];
            m->count[g] = out->count[o];
            for (int a = 0; a < in->naggs; a++)
                memcpy((char *)m->acc[a] + g * 8, (const char *)out->acc[a] + o * 8,
                       8);
            g++;
            continue;
        }
        const uint64_t d = g - 1;
        m->count[d] += out->count[o];
        for (int a = 0; a < in->naggs; a++) {
            const grp_agg *ag = &in->aggs[a];
            if (grp_agg_is_f64(ag)) {
                double *acc = m->acc[a];
                const double x = ((const double *)out->acc[a])[o];
                if (ag->op == AGG_OP_SUM)
                    acc[d] += x;
                else if (ag->op == AGG_OP_MIN)
                    acc[d] = x < acc[d] ? x : acc[d];
                else
                    acc[d] = x > acc[d] ? x : acc[d];
            } else {
                int64_t *acc = m->acc[a];
                const int64_t x = ((const int64_t *)out->acc[a])[o];
                if (ag->op == AGG_OP_SUM || ag->op == AGG_OP_COUNT)
                    acc[d] = (int64_t)((uint64_t)acc[d] + (uint64_t)x);
                else if (ag->op == AGG_OP_MIN)
                    acc[d] = x < acc[d] ? x : acc[d];
                else
                    acc[d] = x > acc[d] ? x : acc[d];
            }
        }
    }
    m->groups = g;
    free(ord);
}

static void merged_free(grp_output *m, int naggs)
{
    free(m->keys);
    free(m->count);
    for (int a = 0; a < naggs; a++)
        free(m->acc[a]);
    memset(m, 0, sizeof *m);
}

/* For integer SUM `a`, whose final sum leaves int64 in some group: true
 * when the output's entries of each group add up (exactly, in 128 bits) to
 * the group's exact sum, i.e. every entry is an exact partial and the
 * engine's checked merge of partial results reports the overflow. */
static bool exact_partial_sums(const grp_input *in, const ref_output *r,
                               const grp_output *out, int a, char *msg,
                               size_t len)
{
    const grp_agg *g = &in->aggs[a];
    __int128 *want = calloc(r->groups + 1, sizeof *want);
    __int128 *got = calloc(r->groups + 1, sizeof *got);
    for (uint64_t i = 0; i < in->rows; i++)
        if (g->valid == NULL || g->valid[i] != 0)
            want[ref_find(r, ref_key(in, i))] += ref_ival(g, i);
    bool ok = true;
    for (uint64_t i = 0; i < out->groups && ok; i++) {
        const uint64_t k = ref_find(r, out->keys[i]);
        if (k >= r->groups || r->keys[k] != out->keys[i]) {
            snprintf(msg, len, "output key %lld is no group",
                     (long long)out->keys[i]);
            ok = false;
        } else {
            got[k] += ((const int64_t *)out->acc[a])[i];
        }
    }
    for (uint64_t k = 0; k < r->groups && ok; k++)
        if (got[k] != want[k]) {
            snprintf(msg, len, "key %lld: agg %d (i64 SUM out of int64 "
                     "range): the output's entries add up to %.17g, the "
                     "exact sum is %.17g",
                     (long long)r->keys[k], a, (double)got[k],
                     (double)want[k]);
            ok = false;
        }
    free(want);
    free(got);
    return ok;
}

/* Set by run_family: whether its last DQO_OK output was partial. */
static bool last_partial;

/* Checks a successful output against the reference (merging partial
 * results first); false after reporting. An integer SUM whose final value
 * leaves int64 may come back only as partial entries that are exact (the
 * engine's merge then reports the overflow), or with out->overflow naming
 * it; otherwise the device must have refused ("wrapped"). */
static bool check_output(const ctx *c, const grp_input *in,
                         const ref_output *r, int f, const grp_output *out)
{
    for (int a = 0; a < in->naggs; a++) {
        if (!r->overflow[a])
            continue;
        if (out->overflow && out->overflow_agg >= 0 &&
            out->overflow_agg < in->naggs && r->overflow[out->overflow_agg])
            break;
        char msg[256];
        if (!exact_partial_sums(in, r, out, a, msg, sizeof msg)) {
            report(c, in, f, "DQO_OK although an i64 SUM leaves int64 "
                             "(expected DQO_EUNSUPPORTED \"wrapped\", or "
                             "exact partial entries): %s",
                   msg);
            return false;
        }
    }
    if (fam_kernel[f] == GRP_KERNEL_DIRECT) {
        if (out->partial) {
            report(c, in, f, "direct output marked partial");
            return false;
        }
        for (uint64_t i = 1; i < out->groups; i++)
            if (out->keys[i - 1] >= out->keys[i]) {
                report(c, in, f, "direct keys not ascending at group %llu",
                       (unsigned long long)i);
                return false;
            }
    }
    grp_output merged;
    const grp_output *cmp = out;
    if (out->partial) {
        merge_partial(in, out, &merged);
        cmp = &merged;
    }
    char msg[256];
    const bool ok = ref_compare(in, r, cmp, msg, sizeof msg);
    if (!ok)
        report(c, in, f, "%s%s", msg, out->partial ? " (partial, merged)" : "");
    if (out->partial)
        merged_free(&merged, in->naggs);
    return ok;
}

/* Runs family f on `in`: the status, the output checked or the refusal
 * judged. `wrap_ok`: an i64 SUM may wrap (see wrap_possible). */
static dqo_status run_family(const ctx *c, const grp_input *in,
                             const ref_output *r, int f, bool wrap_ok)
{
    plan_choice pc;
    plan_force_group(fam_kernel[f], &pc);
    grp_output out;
    memset(&out, 0x5A, sizeof out);
    const live_mark live = live_now();
    char lmsg[128];
    const dqo_status st = opencl_backend.group(in, &pc.g, &out);
    if (st != DQO_OK) {
        if (out.error[0] == '\0')
            report(c, in, f, "status %s with an empty error",
                   dqo_status_name(st));
        if (out.groups != 0 || out.keys != NULL || out.count != NULL)
            report(c, in, f, "failed call left output arrays");
        if (st == DQO_EUNSUPPORTED && strstr(out.error, "not built yet")) {
            if (!fam_stub[f])
                print_message("[  SKIP    ] OpenCL family %s is a stub (%s): "
                              "its checks are skipped\n",
                              fam_name[f], out.error);
            fam_stub[f] = true;
            return st;
        }
        const dqo_column_stats *ks = in->key_stats;
        const uint64_t range =
            in->rows == 0 ? 1 : (uint64_t)ks->max - (uint64_t)ks->min + 1;
        bool ovf = false;
        for (int a = 0; a < in->naggs; a++)
            ovf = ovf || r->overflow[a];
        bool allowed = false;
        if (st == DQO_EUNSUPPORTED) {
            if (fam_kernel[f] == GRP_KERNEL_DIRECT &&
                (range == 0 || range > (UINT64_C(1) << 28)))
                allowed = true;
            if (fam_kernel[f] == GRP_KERNEL_HASH &&
                in->key_type == DQO_TYPE_I64 && in->rows > 0 &&
                ks->min == INT64_MIN && ks->max == INT64_MAX)
                allowed = true;
            if ((wrap_ok || ovf) && strstr(out.error, "wrapped") != NULL)
                allowed = true;
        }
        if (!allowed)
            report(c, in, f, "status %s: %s", dqo_status_name(st), out.error);
        if (live_leaked(live, lmsg, sizeof lmsg))
            report(c, in, f, "failed call leaked %s", lmsg);
        return st;
    }
    if (out.error[0] != '\0')
        report(c, in, f, "DQO_OK with error text \"%s\"", out.error);
    last_partial = out.partial;
    check_output(c, in, r, f, &out);
    grp_output_free(&out, in->naggs);
    if (live_leaked(live, lmsg, sizeof lmsg))
        report(c, in, f, "leaked %s", lmsg);
    return st;
}

/* A grp_input over host columns on device 0. */
static grp_input make_input(dqo_type kt, const void *keys, uint64_t n,
                            const dqo_column_stats *ks, const grp_agg *aggs,
                            int naggs)
{
    grp_input in;
    memset(&in, 0, sizeof in);
    in.key_type = kt;
    in.keys = keys;
    in.rows = n;
    in.key_stats = ks;
    in.aggs = aggs;
    in.naggs = naggs;
    in.threads = 2;
    in.device = 0;
    return in;
}

/* ---------------------------------------------------------- the matrix */

typedef uint64_t (*keygen)(int64_t *k, dqo_type t, rng *r);

static void run_matrix(const char *name, keygen gen, uint64_t cap,
                       double distinct_scale)
{
    if (ndev <= 0) {
        print_message("[  SKIP    ] no OpenCL device\n");
        skip();
    }
    const double t0 = now_s();
    rng r = {test_seed ^ (uint64_t)(uintptr_t)name[0] * 0x100000001b3ULL ^
             (uint64_t)strlen(name)};
    int64_t *k = malloc((cap + 1) * sizeof *k);
    static const dqo_type key_types[] = {DQO_TYPE_U32, DQO_TYPE_I32,
                                         DQO_TYPE_I64};
    failures = 0;
    for (size_t t = 0; t < 3; t++) {
        const dqo_type kt = key_types[t];
        const uint64_t n = gen(k, kt, &r);
        void *keys = typed_keys(k, n, kt);
        dqo_column_stats ks;
        ref_key_stats(kt, keys, n, &ks);
        if (distinct_scale > 0) {
            ks.distinct = (uint64_t)((double)ks.distinct * distinct_scale);
            if (ks.distinct == 0 && n > 0)
                ks.distinct = 1;
        }
        values v;
        values_make(&v, n, &r);
        const agg_set *sets = kt == DQO_TYPE_U32   ? key_sets_u32
                              : kt == DQO_TYPE_I32 ? key_sets_i32
                                                   : key_sets_i64;
        const size_t nsets = kt == DQO_TYPE_U32   ? 2
                             : kt == DQO_TYPE_I32 ? 1
                                                  : 2;
        for (size_t s = 0; s < nsets; s++) {
            grp_agg aggs[OCL_MAX_AGGS];
            const int na = aggs_make(sets[s], &v, aggs);
            grp_input in = make_input(kt, keys, n, &ks, aggs, na);
            ref_output ref;
            ref_compute(&in, &ref);
            const bool wrap = wrap_possible(&in, &ref);
            const ctx c = {name, set_name[sets[s]]};
            for (int f = 0; f < NFAM; f++) {
                if (!fam_on[f] || fam_stub[f])
                    continue;
                const dqo_status st = run_family(&c, &in, &ref, f, wrap);
                if (fam_stub[f])
                    continue;
                fam_runs[f]++;
                fam_ok[f] += st == DQO_OK;
            }
            ref_free(&ref);
        }
        values_free(&v);
        free(keys);
    }
    free(k);
    print_message("case %s: %.2f s\n", name, now_s() - t0);
    if (failures > 0)
        fail_msg("%d failures in case %s (seed %llu)", failures, name,
                 (unsigned long long)test_seed);
}

/* ---------------------------------------------------------------- the keys */

#define N_FEW (80000 / ROW_SCALE)
#define N_MANY (40000 / ROW_SCALE)

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t gen_random_few(int64_t *k, dqo_type t, rng *r)
{
    const int64_t b = type_base(t);
    for (uint64_t i = 0; i < N_FEW; i++)
        k[i] = b + rng_in(r, 0, 999);
    return N_FEW;
}

static uint64_t gen_random_many(int64_t *k, dqo_type t, rng *r)
{
    const int64_t b = type_base(t);
    for (uint64_t i = 0; i < N_MANY; i++)
        k[i] = b + rng_in(r, 0, 24999);
    return N_MANY;
}

static uint64_t gen_random_large_range(int64_t *k, dqo_type t, rng *r)
{
    const int64_t b = type_base(t);
    for (uint64_t i = 0; i < N_MANY; i++)
        k[i] = b + rng_in(r, 0, 399999);
    return N_MANY;
}

static uint64_t gen_random_wide(int64_t *k, dqo_type t, rng *r)
{
    int64_t lo, hi;
    type_domain(t, &lo, &hi);
    for (uint64_t i = 0; i < 30000 / ROW_SCALE; i++)
        k[i] = rng_in(r, lo, hi);
    return 30000 / ROW_SCALE;
}

static uint64_t gen_sorted_few(int64_t *k, dqo_type t, rng *r)
{
    uint64_t n = gen_random_few(k, t, r);
    qsort(k, n, sizeof *k, cmp_i64);
    return n;
}

static uint64_t gen_sorted_many(int64_t *k, dqo_type t, rng *r)
{
    uint64_t n = gen_random_many(k, t, r);
    qsort(k, n, sizeof *k, cmp_i64);
    return n;
}

static uint64_t gen_reverse(int64_t *k, dqo_type t, rng *r)
{
    uint64_t n = gen_sorted_many(k, t, r);
    for (uint64_t i = 0; i < n / 2; i++) {
        int64_t x = k[i];
        k[i] = k[n - 1 - i];
        k[n - 1 - i] = x;
    }
    return n;
}

/* 300 groups with distinct sparse keys, each one run of 1..300 rows, the
 * groups in random order: clustered, unsorted. */
static uint64_t gen_clustered(int64_t *k, dqo_type t, rng *r)
{
    int64_t lo, hi;
    type_domain(t, &lo, &hi);
    uint64_t n = 0;
    for (int g = 0; g < 300; g++) {
        int64_t key = (int64_t)(((uint64_t)rng_in(r, lo, hi) & ~UINT64_C(511)) |
                                (uint64_t)g);
        if (t == DQO_TYPE_I32)
            key = (int32_t)key;
        else if (t == DQO_TYPE_U32)
            key = (uint32_t)key;
        int64_t len = rng_in(r, 1, 300 / ROW_SCALE);
        for (int64_t j = 0; j < len; j++)
            k[n++] = key;
    }
    return n;
}

/* Runs of 1..40 rows whose keys come from 300 values: keys come back in
 * later runs. */
static uint64_t gen_repeated_runs(int64_t *k, dqo_type t, rng *r)
{
    const int64_t b = type_base(t);
    uint64_t n = 0;
    while (n < N_MANY) {
        int64_t key = b + rng_in(r, 0, 299) * 7;
        int64_t len = rng_in(r, 1, 40);
        for (int64_t j = 0; j < len && n < N_MANY; j++)
            k[n++] = key;
    }
    return n;
}

static uint64_t gen_const(int64_t *k, dqo_type t, rng *r)
{
    (void)r;
    for (uint64_t i = 0; i < 12000; i++)
        k[i] = type_base(t) + 5;
    return 12000;
}

static uint64_t gen_one_row(int64_t *k, dqo_type t, rng *r)
{
    (void)r;
    k[0] = type_base(t);
    return 1;
}

static uint64_t gen_empty(int64_t *k, dqo_type t, rng *r)
{
    (void)k;
    (void)t;
    (void)r;
    return 0;
}

static uint64_t gen_minmax(int64_t *k, dqo_type t, rng *r)
{
    int64_t lo, hi;
    type_domain(t, &lo, &hi);
    const int64_t pick[] = {lo, lo + 1, lo / 2 + hi / 2, hi - 1, hi};
    for (uint64_t i = 0; i < 20000; i++)
        k[i] = pick[rng_in(r, 0, 4)];
    k[0] = lo;
    k[1] = hi;
    return 20000;
}

/* One group per row: a shuffled arithmetic sequence. */
static uint64_t gen_distinct(int64_t *k, dqo_type t, rng *r)
{
    const uint64_t n = 20000 / ROW_SCALE;
    for (uint64_t i = 0; i < n; i++)
        k[i] = type_base(t) + (int64_t)i * 3;
    for (uint64_t i = n - 1; i > 0; i--) {
        uint64_t j = (uint64_t)rng_in(r, 0, (int64_t)i);
        int64_t x = k[i];
        k[i] = k[j];
        k[j] = x;
    }
    return n;
}

static void test_empty(void **s) { (void)s; run_matrix("empty", gen_empty, 0, 0); }
static void test_one_row(void **s) { (void)s; run_matrix("one_row", gen_one_row, 1, 0); }
static void test_const(void **s) { (void)s; run_matrix("all_equal", gen_const, 12000, 0); }
static void test_minmax(void **s) { (void)s; run_matrix("type_min_max", gen_minmax, 20000, 0); }
static void test_distinct(void **s) { (void)s; run_matrix("one_group_per_row", gen_distinct, 20000, 0); }
static void test_sorted_few(void **s) { (void)s; run_matrix("sorted_few", gen_sorted_few, N_FEW, 0); }
static void test_sorted_many(void **s) { (void)s; run_matrix("sorted_many", gen_sorted_many, N_MANY, 0); }
static void test_reverse(void **s) { (void)s; run_matrix("reverse_sorted", gen_reverse, N_MANY, 0); }
static void test_clustered(void **s) { (void)s; run_matrix("clustered", gen_clustered, 300 * 300, 0); }
static void test_repeated_runs(void **s) { (void)s; run_matrix("repeated_runs", gen_repeated_runs, N_MANY, 0); }
static void test_random_few(void **s) { (void)s; run_matrix("random_few", gen_random_few, N_FEW, 0); }
static void test_random_many(void **s) { (void)s; run_matrix("random_many", gen_random_many, N_MANY, 0); }
static void test_random_large_range(void **s) { (void)s; run_matrix("random_large_range", gen_random_large_range, N_MANY, 0); }
static void test_random_wide(void **s) { (void)s; run_matrix("random_wide", gen_random_wide, 30000, 0); }
/* A distinct estimate 100 times too small, then 20 times too large. */
static void test_underestimate(void **s) { (void)s; run_matrix("distinct_underestimated", gen_random_many, N_MANY, 0.01); }
static void test_overestimate(void **s) { (void)s; run_matrix("distinct_overestimated", gen_random_few, N_FEW, 20.0); }

/* Direct and hash must have run on most of the matrix, and every family
 * that is not a stub too: a back-end that refuses everything is no pass. */
static void test_families_ran(void **s)
{
    (void)s;
    NEED_DEVICE();
    for (int f = 0; f < NFAM; f++) {
        if (!fam_on[f])
            continue;
        print_message("%-5s %s: %ld of %ld case runs DQO_OK\n", fam_name[f],
                      fam_stub[f] ? "(stub)" : "", fam_ok[f], fam_runs[f]);
        if (fam_stub[f])
            continue;
        if (fam_runs[f] > 0 && fam_ok[f] * 2 <= fam_runs[f])
            fail_msg("family %s ran (DQO_OK) on only %ld of %ld case runs",
                     fam_name[f], fam_ok[f], fam_runs[f]);
    }
    if (fam_on[F_DIRECT])
        assert_true(fam_runs[F_DIRECT] > 0 && !fam_stub[F_DIRECT]);
    if (fam_on[F_HASH])
        assert_true(fam_runs[F_HASH] > 0 && !fam_stub[F_HASH]);
}

/* ------------------------------------------------------ resident columns */

/* Uploads every column of `in` to device 0 (keys; data and valid flags of
 * each aggregate); false after reporting. */
static bool upload_all(const ctx *c, grp_input *in, grp_agg *aggs,
                       dev_col **kd, dev_col **ad)
{
    char err[512];
    dqo_status st = opencl_backend.col_upload(
        0, in->keys, type_width(in->key_type), NULL, in->rows, kd, err,
        sizeof err);
    if (st != DQO_OK) {
        report(c, in, -1, "col_upload(keys): %s: %s", dqo_status_name(st),
               err);
        return false;
    }
    for (int a = 0; a < in->naggs; a++) {
        st = opencl_backend.col_upload(0, aggs[a].data,
                                       type_width(aggs[a].type),
                                       aggs[a].valid, in->rows, &ad[a], err,
                                       sizeof err);
        if (st != DQO_OK) {
            report(c, in, -1, "col_upload(agg %d): %s: %s", a,
                   dqo_status_name(st), err);
            return false;
        }
    }
    return true;
}

static void free_cols(dev_col *kd, dev_col **ad, int n)
{
    opencl_backend.col_free(kd);
    for (int a = 0; a < n; a++)
        opencl_backend.col_free(ad[a]);
}

/* Runs family f once and returns its checked calls (-1: failed). */
static long counted_run(const ctx *c, const grp_input *in,
                        const ref_output *r, int f)
{
    const long b = ocl_checked_calls();
    const dqo_status st = run_family(c, in, r, f, false);
    return st == DQO_OK ? ocl_checked_calls() - b : -1;
}

static void test_resident(void **s)
{
    (void)s;
    NEED_DEVICE();
    failures = 0;
    rng r = {test_seed ^ 0x7e51de47};
    const uint64_t n = 30000 / ROW_SCALE;
    int64_t *keys = malloc(n * sizeof *keys);
    for (uint64_t i = 0; i < n; i++)
        keys[i] = type_base(DQO_TYPE_I64) + rng_in(&r, 0, 1999) * 5;
    dqo_column_stats ks;
    ref_key_stats(DQO_TYPE_I64, keys, n, &ks);
    values v;
    values_make(&v, n, &r);
    grp_agg aggs[OCL_MAX_AGGS];
    const int na = aggs_make(SET_ALL2, &v, aggs);
    grp_input in = make_input(DQO_TYPE_I64, keys, n, &ks, aggs, na);
    ref_output ref;
    ref_compute(&in, &ref);
    const ctx c = {"resident", "all2"};
    dev_col *kd = NULL, *ad[OCL_MAX_AGGS] = {NULL}, *half = NULL,
            *novalid = NULL;
    for (int f = 0; f < NFAM; f++) {
        if (!fam_on[f] || fam_stub[f])
            continue;
        /* Streamed first (also builds the programs). */
        in.keys_dev = NULL;
        for (int a = 0; a < na; a++)
            aggs[a].dev = NULL;
        if (counted_run(&c, &in, &ref, f) < 0)
            continue;
        const long streamed = counted_run(&c, &in, &ref, f);
        const live_mark lm0 = live_now();
        if (!upload_all(&c, &in, aggs, &kd, ad))
            break;
        assert_int_equal(opencl_backend.col_device(kd), 0);
        assert_int_equal(opencl_backend.col_device(NULL), -1);
        in.keys_dev = kd;
        for (int a = 0; a < na; a++)
            aggs[a].dev = ad[a];
        const long resident = counted_run(&c, &in, &ref, f);
        /* Resident input needs no staging buffers, maps and writes. */
        if (resident >= 0 && streamed >= 0 && resident >= streamed)
            report(&c, &in, f, "resident run made %ld checked calls, the "
                               "streamed one %ld: did it stream?",
                   resident, streamed);
        /* Only some columns resident: the query streams, still right. */
        aggs[3].dev = NULL;
        long x = counted_run(&c, &in, &ref, f);
        if (x >= 0 && x < streamed)
            report(&c, &in, f, "partly resident input did not stream");
        /* A resident column without the valid flags the query has, and one
         * of another length: streamed as well. */
        char err[256];
        int nul = -1;
        for (int a = 0; a < na && nul < 0; a++)
            if (aggs[a].valid != NULL)
                nul = a;
        assert_true(nul >= 0);
        aggs[3].dev = ad[3];
        assert_int_equal(opencl_backend.col_upload(0, aggs[nul].data,
                                                   type_width(aggs[nul].type),
                                                   NULL, n, &novalid, err,
                                                   sizeof err),
                         DQO_OK);
        aggs[nul].dev = novalid;
        x = counted_run(&c, &in, &ref, f);
        if (x >= 0 && x < streamed)
            report(&c, &in, f, "a resident column without valid flags was "
                               "used for a column with NULLs");
        aggs[nul].dev = ad[nul];
        assert_int_equal(opencl_backend.col_upload(0, keys, 8, NULL, n / 2,
                                                   &half, err, sizeof err),
                         DQO_OK);
        in.keys_dev = half;
        x = counted_run(&c, &in, &ref, f);
        if (x >= 0 && x < streamed)
            report(&c, &in, f, "a resident key column of another length "
                               "was used");
        in.keys_dev = kd;
        /* Resident again, and a second time (nothing consumed). */
        counted_run(&c, &in, &ref, f);
        free_cols(kd, ad, na);
        opencl_backend.col_free(half);
        opencl_backend.col_free(novalid);
        kd = half = novalid = NULL;
        memset(ad, 0, sizeof ad);
        char lmsg[128];
        if (live_leaked(lm0, lmsg, sizeof lmsg))
            report(&c, &in, f, "resident columns leaked %s", lmsg);
    }
    free_cols(kd, ad, na);
    in.keys_dev = NULL;
    ref_free(&ref);
    values_free(&v);
    free(keys);
    if (failures > 0)
        fail_msg("%d failures in test_resident", failures);
}

/* ------------------------------------------------------- memory budgets */

/* Under a 64 KiB budget a family may refuse cleanly (a message naming the
 * budget or the allocation limit) instead of running. */
static bool clean_refusal(const grp_output *out)
{
    return strstr(out->error, "budget") != NULL ||
           strstr(out->error, "largest allocation") != NULL;
}

/* Runs family f and either checks the result or, when `may_refuse`,
 * accepts a clean refusal. Returns the checked calls (-1: refused or
 * failed). */
static long budget_run(const ctx *c, const grp_input *in,
                       const ref_output *r, int f, bool may_refuse)
{
    if (!may_refuse)
        return counted_run(c, in, r, f);
    plan_choice pc;
    plan_force_group(fam_kernel[f], &pc);
    grp_output out;
    const live_mark lm = live_now();
    const long b = ocl_checked_calls();
    const dqo_status st = opencl_backend.group(in, &pc.g, &out);
    const long calls = ocl_checked_calls() - b;
    char lmsg[128];
    if (st == DQO_OK) {
        check_output(c, in, r, f, &out);
        grp_output_free(&out, in->naggs);
    } else if (!clean_refusal(&out)) {
        report(c, in, f, "status %s: %s", dqo_status_name(st), out.error);
    } else {
        print_message("%-5s %s, aggs %s: refused: %s\n", fam_name[f], c->name,
                      c->shape, out.error);
    }
    if (live_leaked(lm, lmsg, sizeof lmsg))
        report(c, in, f, "leaked %s", lmsg);
    return st == DQO_OK ? calls : -1;
}

/* Rows per resident piece on device 0 under its current budget. */
static uint64_t piece_rows_now(void)
{
    char msg[256];
    ocl_err e = ocl_err_init(msg, sizeof msg);
    ocl_dev *d = ocl_dev_get(0, &e);
    assert_non_null(d);
    const uint64_t rows = ocl_piece_rows(d);
    ocl_dev_put(d);
    return rows;
}

static void test_budget(void **s)
{
    (void)s;
    NEED_DEVICE();
    failures = 0;
    rng r = {test_seed ^ 0xb0d6e7};
    const uint64_t n = 200000 / ROW_SCALE;
    uint32_t *keys = malloc(n * sizeof *keys);
    for (uint64_t i = 0; i < n; i++)
        keys[i] = 1000000 + (uint32_t)rng_in(&r, 0, 99);
    dqo_column_stats ks;
    ref_key_stats(DQO_TYPE_U32, keys, n, &ks);
    values v;
    values_make(&v, n, &r);
    grp_agg aggs[OCL_MAX_AGGS];
    const int na = aggs_make(SET_ALL0, &v, aggs);
    ref_output ref_all, ref_none;
    grp_input in = make_input(DQO_TYPE_U32, keys, n, &ks, aggs, na);
    ref_compute(&in, &ref_all);
    in.naggs = 0;
    ref_compute(&in, &ref_none);
    ctx c = {"budget default", "all0"};

    /* The checked calls of each family under the default budget (one
     * chunk), once the device keeps its staging buffers. */
    long calls_default[NFAM] = {0};
    in.naggs = na;
    for (int f = 0; f < NFAM; f++) {
        if (!fam_on[f] || fam_stub[f])
            continue;
        counted_run(&c, &in, &ref_all, f);
        calls_default[f] = counted_run(&c, &in, &ref_all, f);
    }

    /* 64 KiB: direct's table of 100 entries (12.8 KB) leaves room for
     * chunks of a few hundred rows; hash's smallest table (1024 entries)
     * fits only without aggregates; the other families may refuse. 1 MiB:
     * every family runs, in chunks of a few thousand rows. */
    static const uint64_t budgets[] = {64 << 10, 1 << 20};
    for (int b = 0; b < 2; b++) {
        ocl_set_mem_budget(0, budgets[b]);
        for (int f = 0; f < NFAM; f++) {
            if (!fam_on[f] || fam_stub[f])
                continue;
            for (int shape = 0; shape < 2; shape++) {
                const bool all = shape == 0;
                in.naggs = all ? na : 0;
                c.name = b == 0 ? "budget 64 KiB, streamed"
                                : "budget 1 MiB, streamed";
                c.shape = all ? "all0" : "none";
                const bool may_refuse =
                    b == 0 && f != F_DIRECT && (all || f != F_HASH);
                const long calls = budget_run(
                    &c, &in, all ? &ref_all : &ref_none, f, may_refuse);
                /* Many chunks: many more calls than one chunk. */
                if (all && calls >= 0 && calls_default[f] > 0 &&
                    calls < calls_default[f] + 50)
                    report(&c, &in, f, "%ld checked calls, %ld with the "
                                       "default budget: no chunks?",
                           calls, calls_default[f]);
            }
        }
    }

    /* Resident columns in pieces of ocl_piece_rows (max_alloc / 8 rows,
     * rounded down to 1024): every column must fit the budget and a piece
     * holds fewer rows than a column. Keys only under 1 MiB: n u32 keys in
     * pieces of 32768 rows. With set all0: one column per value type,
     * uploaded with its valid flags and shared by that type's aggregate
     * with NULLs and the one without (the driver ignores the flags there):
     * 32 bytes a row with the keys, so the budget is picked where rounding
     * leaves rows to spare: 1 MiB + 31 KiB gives pieces of 32768 rows and
     * room for 33760. */
    for (int shape = 0; shape < 2; shape++) {
        const bool all = shape == 1;
        const uint64_t budget = all ? (1 << 20) + (31 << 10) : 1 << 20;
        ocl_set_mem_budget(0, budget);
        const uint64_t piece = piece_rows_now();
        uint64_t rows = all ? budget / 32 : n;
        if (rows > n)
            rows = n;
        grp_input sub = make_input(DQO_TYPE_U32, keys, rows, &ks, aggs,
                                   all ? na : 0);
        dqo_column_stats sks;
        ref_key_stats(DQO_TYPE_U32, keys, rows, &sks);
        sub.key_stats = &sks;
        ref_output ref;
        ref_compute(&sub, &ref);
        c.name = all ? "budget 1 MiB + 31 KiB, resident pieces"
                     : "budget 1 MiB, resident pieces";
        c.shape = all ? "all0" : "none";
        if (rows <= piece) {
            print_message("[  SKIP    ] %s: %llu rows fit one piece of "
                          "%llu\n",
                          c.name, (unsigned long long)rows,
                          (unsigned long long)piece);
            ref_free(&ref);
            continue;
        }
        char err[256];
        dev_col *kd = NULL, *tc[4] = {NULL};
        bool ok = opencl_backend.col_upload(0, keys, 4, NULL, rows, &kd, err,
                                            sizeof err) == DQO_OK;
        for (int t = 0; t < 4 && ok && all; t++) {
            const dqo_type ty = t == 0   ? DQO_TYPE_U32
                                : t == 1 ? DQO_TYPE_I32
                                : t == 2 ? DQO_TYPE_I64
                                         : DQO_TYPE_F64;
            ok = opencl_backend.col_upload(0, type_data(&v, ty),
                                           type_width(ty), v.valid, rows,
                                           &tc[t], err, sizeof err) == DQO_OK;
            for (int a = 0; a < na; a++)
                if (aggs[a].type == ty)
                    aggs[a].dev = tc[t];
        }
        if (!ok) {
            report(&c, &sub, -1, "col_upload: %s", err);
        } else {
            print_message("%s, aggs %s: %llu rows in %d pieces of %llu\n",
                          c.name, c.shape, (unsigned long long)rows,
                          kd->npieces, (unsigned long long)kd->piece_rows);
            if (kd->npieces < 2)
                report(&c, &sub, -1, "one piece only");
            sub.keys_dev = kd;
            for (int f = 0; f < NFAM; f++)
                if (fam_on[f] && !fam_stub[f]) {
                    /* Resident: no staging, so fewer calls than streamed
                     * (which would also have chunked under this budget). */
                    const long calls = counted_run(&c, &sub, &ref, f);
                    sub.keys_dev = NULL;
                    const long streamed = counted_run(&c, &sub, &ref, f);
                    sub.keys_dev = kd;
                    if (calls >= 0 && streamed >= 0 && calls >= streamed)
                        report(&c, &sub, f, "resident run made %ld checked "
                                            "calls, streamed %ld: did it "
                                            "stream?",
                               calls, streamed);
                }
        }
        for (int a = 0; a < na; a++)
            aggs[a].dev = NULL;
        opencl_backend.col_free(kd);
        for (int t = 0; t < 4; t++)
            opencl_backend.col_free(tc[t]);
        ref_free(&ref);
    }
    /* A column that does not fit the budget: refused with a message. */
    ocl_set_mem_budget(0, 1 << 20);
    {
        dev_col *big = NULL;
        char err[256] = "";
        const uint64_t rows = 262144; /* 2 MiB of 8-byte values */
        double *zeros = calloc(rows, 8);
        const live_mark lm0 = live_now();
        const dqo_status st = opencl_backend.col_upload(
            0, zeros, 8, NULL, rows, &big, err, sizeof err);
        c.name = "a 2 MiB column under a 1 MiB budget";
        if (st == DQO_OK || big != NULL || strstr(err, "budget") == NULL)
            report(&c, &in, -1, "%s: %s", dqo_status_name(st), err);
        opencl_backend.col_free(big);
        char lmsg[128];
        if (live_leaked(lm0, lmsg, sizeof lmsg))
            report(&c, &in, -1, "refused upload leaked %s", lmsg);
        free(zeros);
    }

    /* Tables larger than a 64 KiB budget: a clean error when streamed. */
    ocl_set_mem_budget(0, 64 << 10);
    {
        const uint64_t m = 5000;
        uint32_t *wide = malloc(m * sizeof *wide);
        for (uint64_t i = 0; i < m; i++)
            wide[i] = (uint32_t)rng_in(&r, 0, (1 << 20) - 1);
        wide[0] = 0;
        wide[1] = (1 << 20) - 1;
        dqo_column_stats wks;
        ref_key_stats(DQO_TYPE_U32, wide, m, &wks);
        /* Streamed (set all0: direct's 2^20 entries, hash's 16384), then
         * resident keys only (20 KB of keys fit the budget). */
        dev_col *wd = NULL;
        char err[256];
        grp_input wn = make_input(DQO_TYPE_U32, wide, m, &wks, aggs, 0);
        grp_input wa = make_input(DQO_TYPE_U32, wide, m, &wks, aggs, na);
        ref_output wref, wref_all;
        ref_compute(&wn, &wref);
        ref_compute(&wa, &wref_all);
        if (opencl_backend.col_upload(0, wide, 4, NULL, m, &wd, err,
                                      sizeof err) != DQO_OK)
            report(&c, &in, -1, "col_upload of 20 KB: %s", err);
        for (int res = 0; res < 2; res++)
            for (int f = 0; f < NFAM; f++) {
                if (!fam_on[f] || fam_stub[f] || (res && wd == NULL))
                    continue;
                grp_input w = make_input(DQO_TYPE_U32, wide, m, &wks, aggs,
                                         res ? 0 : na);
                w.keys_dev = res ? wd : NULL;
                plan_choice pc;
                plan_force_group(fam_kernel[f], &pc);
                grp_output out;
                const live_mark lm = live_now();
                const dqo_status st = opencl_backend.group(&w, &pc.g, &out);
                c.name = res ? "table over a 64 KiB budget, resident"
                             : "table over a 64 KiB budget, streamed";
                c.shape = res ? "none" : "all0";
                print_message("%-5s %s: %s: %s\n", fam_name[f], c.name,
                              dqo_status_name(st), out.error);
                const bool whole_table =
                    fam_kernel[f] == GRP_KERNEL_DIRECT ||
                    fam_kernel[f] == GRP_KERNEL_HASH;
                if (st == DQO_OK && (res || !whole_table)) {
                    /* Resident input is not chunked, and the budget does
                     * not limit a family's tables there (only the device's
                     * own allocation limit does); radix, sort and order
                     * keep only per-chunk scratch and may fit it in small
                     * chunks (partial results, merged): running is
                     * allowed, if right. */
                    check_output(&c, &w, res ? &wref : &wref_all, f, &out);
                    grp_output_free(&out, w.naggs);
                } else if (st == DQO_OK) {
                    report(&c, &w, f, "ran although its table exceeds the "
                                      "budget");
                    grp_output_free(&out, w.naggs);
                } else if (out.error[0] == '\0' || !clean_refusal(&out)) {
                    report(&c, &w, f, "status %s, message \"%s\" names no "
                                      "budget",
                           dqo_status_name(st), out.error);
                }
                char lmsg[128];
                if (live_leaked(lm, lmsg, sizeof lmsg))
                    report(&c, &w, f, "refusal leaked %s", lmsg);
            }
        opencl_backend.col_free(wd);
        ref_free(&wref);
        ref_free(&wref_all);
        free(wide);
    }
    ocl_set_mem_budget(0, 0);

    /* Back to the default budget: one chunk again. */
    c.name = "budget restored";
    c.shape = "all0";
    in.naggs = na;
    for (int f = 0; f < NFAM; f++)
        if (fam_on[f] && !fam_stub[f] && calls_default[f] > 0) {
            const long calls = counted_run(&c, &in, &ref_all, f);
            if (calls > calls_default[f] + 20)
                report(&c, &in, f, "%ld checked calls after restoring the "
                                   "budget, %ld before: still chunked?",
                       calls, calls_default[f]);
        }
    ref_free(&ref_all);
    ref_free(&ref_none);
    values_free(&v);
    free(keys);
    if (failures > 0)
        fail_msg("%d failures in test_budget", failures);
}

/* ------------------------------------------- hash table overflow retries */

static void test_hash_retry(void **s)
{
    (void)s;
    NEED_DEVICE();
    failures = 0;
    rng r = {test_seed ^ 0x4a54};
    const uint64_t groups = 50000, n = 2 * groups;
    uint32_t *keys = malloc(n * sizeof *keys);
    for (uint64_t i = 0; i < n; i++)
        keys[i] = 7 + (uint32_t)(i % groups) * 11;
    for (uint64_t i = n - 1; i > 0; i--) {
        uint64_t j = (uint64_t)rng_in(&r, 0, (int64_t)i);
        uint32_t x = keys[i];
        keys[i] = keys[j];
        keys[j] = x;
    }
    values v;
    values_make(&v, n, &r);
    grp_agg aggs[OCL_MAX_AGGS];
    dqo_column_stats ks;
    ref_key_stats(DQO_TYPE_U32, keys, n, &ks);
    assert_int_equal(ks.distinct, groups);
    static const uint64_t est[] = {1, 500, 12000};
    for (int shape = 0; shape < 2; shape++) {
        grp_input in = make_input(DQO_TYPE_U32, keys, n, &ks, aggs,
                                  aggs_make(shape ? SET_ALL0 : SET_NONE, &v,
                                            aggs));
        ref_output ref;
        ref_compute(&in, &ref);
        for (size_t e = 0; e < sizeof est / sizeof *est; e++) {
            char name[64];
            snprintf(name, sizeof name, "%llu groups, distinct estimate %llu",
                     (unsigned long long)groups, (unsigned long long)est[e]);
            const ctx c = {name, shape ? "all0" : "none"};
            ks.distinct = est[e];
            for (int f = 0; f < NFAM; f++)
                if (fam_on[f] && !fam_stub[f] &&
                    fam_kernel[f] != GRP_KERNEL_DIRECT)
                    run_family(&c, &in, &ref, f, false);
        }
        ks.distinct = groups;
        ref_free(&ref);
    }
    values_free(&v);
    free(keys);
    if (failures > 0)
        fail_msg("%d failures in test_hash_retry", failures);
}

/* --------------------------------------------------- i64 SUMs that wrap */

/* Runs every family on `in` (aggregates set all2: SUM(i64) with NULLs at
 * index 5) and says what came back. `must_refuse`: the final sum leaves
 * int64, so only DQO_EUNSUPPORTED "wrapped" is right. */
static void wrap_case(const char *name, grp_input *in, bool must_refuse,
                      bool must_run)
{
    ref_output ref;
    ref_compute(in, &ref);
    const bool wrap = wrap_possible(in, &ref);
    bool ovf = false;
    for (int a = 0; a < in->naggs; a++)
        ovf = ovf || ref.overflow[a];
    assert_true(ovf == must_refuse);
    const ctx c = {name, "all2"};
    for (int f = 0; f < NFAM; f++) {
        if (!fam_on[f] || fam_stub[f])
            continue;
        /* run_family judges the status; then the case's expectation. */
        const dqo_status st = run_family(&c, in, &ref, f, wrap);
        if (fam_stub[f])
            continue;
        print_message("%-5s %s: %s%s\n", fam_name[f], name,
                      dqo_status_name(st),
                      st == DQO_OK && last_partial
                          ? " (partial output, merged)"
                          : "");
        /* DQO_OK on an overflowing sum was judged by check_output (exact
         * partial entries only). */
        if (must_refuse && st == DQO_OK && !last_partial)
            report(&c, in, f, "final sum leaves int64, yet DQO_OK");
        if (must_run && st != DQO_OK)
            report(&c, in, f, "no wrap is possible, yet %s",
                   dqo_status_name(st));
    }
    ref_free(&ref);
}

static void test_wrapped_sum(void **s)
{
    (void)s;
    NEED_DEVICE();
    failures = 0;
    rng r = {test_seed ^ 0x3a9};
    const uint64_t n = 8000;
    int64_t *keys = malloc(n * sizeof *keys);
    for (uint64_t i = 0; i < n; i++)
        keys[i] = i % 10 == 9 ? -3 : 7 + (int64_t)(i % 3);
    dqo_column_stats ks;
    ref_key_stats(DQO_TYPE_I64, keys, n, &ks);
    values v;
    values_make(&v, n, &r);
    grp_agg aggs[OCL_MAX_AGGS];
    const int na = aggs_make(SET_ALL2, &v, aggs);
    int sum = -1;
    for (int a = 0; a < na; a++)
        if (aggs[a].op == AGG_OP_SUM && aggs[a].type == DQO_TYPE_I64)
            sum = a;
    assert_true(sum >= 0 && aggs[sum].valid != NULL);
    grp_input in = make_input(DQO_TYPE_I64, keys, n, &ks, aggs, na);
    /* Every valid value is 1 << 62 in groups 7..9: each group's sum is
     * ~1800 * 2^62 (final out of range), positive and then negative. */
    for (int sign = 0; sign < 2; sign++) {
        for (uint64_t i = 0; i < n; i++)
            v.i64[i] = i % 10 == 9 ? 1
                                   : (sign ? -(INT64_C(1) << 62)
                                           : INT64_C(1) << 62);
        wrap_case(sign ? "sum overflows (negative)" : "sum overflows", &in,
                  true, false);
    }
    /* Intermediate sums that may wrap, a final sum that fits: +2^62 and
     * -2^62 alternate, so the sum of magnitudes is far out of range; the
     * answer is either exact or DQO_EUNSUPPORTED "wrapped". */
    /* Every row valid here: each group gets as many +2^62 as -2^62 (blocks
     * of 10 rows alternate, and 60 rows hold every key equally often in
     * both kinds of block), so every final sum is 0. */
    for (uint64_t i = 0; i < n; i++) {
        v.i64[i] = (i / 10) % 2 ? -(INT64_C(1) << 62) : INT64_C(1) << 62;
        v.valid[i] = 1;
    }
    wrap_case("intermediate sums may wrap", &in, false, false);
    /* Wrapping only through NULL rows: the valid values are small, the NULL
     * ones huge; NULLs are skipped, so nothing wraps: DQO_OK. */
    for (uint64_t i = 0; i < n; i++) {
        v.valid[i] = rng_next(&r) % 3 != 0;
        v.i64[i] = v.valid[i] ? rng_in(&r, -1000, 1000) : INT64_MAX;
    }
    wrap_case("huge values only in NULL rows", &in, false, true);
    /* Values at the type's ends, sums in range whatever the order (a lone
     * INT64_MIN added to 0 does not wrap): DQO_OK. */
    const uint64_t m = 4;
    int64_t k4[4] = {1, 2, 3, 3};
    int64_t x4[4] = {INT64_MAX, INT64_MIN, INT64_MAX - 5, 5};
    uint8_t val4[4] = {1, 1, 1, 1};
    values w;
    w.u32 = v.u32;
    w.i32 = v.i32;
    w.f64 = v.f64;
    w.i64 = x4;
    w.valid = val4;
    grp_agg aggs4[OCL_MAX_AGGS];
    aggs_make(SET_ALL2, &w, aggs4);
    dqo_column_stats ks4;
    ref_key_stats(DQO_TYPE_I64, k4, m, &ks4);
    grp_input in4 = make_input(DQO_TYPE_I64, k4, m, &ks4, aggs4, na);
    wrap_case("INT64_MIN and INT64_MAX values", &in4, false, true);
    values_free(&v);
    free(keys);
    if (failures > 0)
        fail_msg("%d failures in test_wrapped_sum", failures);
}

/* ---------------------------------------------------- failure injection */

/* The small query of the failure sweeps: u32 keys in 40 groups, set all0. */
typedef struct small_query {
    uint32_t *keys;
    values v;
    grp_agg aggs[OCL_MAX_AGGS];
    dqo_column_stats ks;
    grp_input in;
    ref_output ref;
} small_query;

static void small_make(small_query *q, uint64_t n)
{
    rng r = {test_seed ^ 0xfa11};
    q->keys = malloc(n * sizeof *q->keys);
    for (uint64_t i = 0; i < n; i++)
        q->keys[i] = 100 + (uint32_t)rng_in(&r, 0, 39) * 2;
    values_make(&q->v, n, &r);
    ref_key_stats(DQO_TYPE_U32, q->keys, n, &q->ks);
    q->in = make_input(DQO_TYPE_U32, q->keys, n, &q->ks, q->aggs,
                       aggs_make(SET_ALL0, &q->v, q->aggs));
    ref_compute(&q->in, &q->ref);
}

static void small_free(small_query *q)
{
    ref_free(&q->ref);
    values_free(&q->v);
    free(q->keys);
}

/* Sweeps ocl_fail_after(0..) over family f on q->in (host or resident
 * columns as q->in says), then mem_fail_after(1..). The device stays open
 * (programs cached), and the leak baseline is taken after a warm run. */
static void sweep_family(const ctx *c, small_query *q, int f, int *nfail_cl,
                         int *nfail_mem)
{
    plan_choice pc;
    plan_force_group(fam_kernel[f], &pc);
    const grp_input *in = &q->in;
    grp_output out;
    if (run_family(c, in, &q->ref, f, false) != DQO_OK)
        return;
    const live_mark lm0 = live_now();
    char lmsg[128];
    const long b = ocl_checked_calls();
    assert_int_equal(opencl_backend.group(in, &pc.g, &out), DQO_OK);
    const long calls = ocl_checked_calls() - b;
    grp_output_free(&out, in->naggs);
    for (long n = 0; n <= calls + 2; n++) {
        const long b2 = ocl_checked_calls();
        ocl_fail_after(n);
        memset(&out, 0x5A, sizeof out);
        const dqo_status st = opencl_backend.group(in, &pc.g, &out);
        ocl_fail_after(-1);
        const long made = ocl_checked_calls() - b2;
        if (st == DQO_OK) {
            if (made > n)
                report(c, in, f, "checked call %ld failed (injected), yet "
                                 "DQO_OK",
                       n + 1);
            else
                check_output(c, in, &q->ref, f, &out);
            grp_output_free(&out, in->naggs);
            if (n < calls)
                report(c, in, f, "DQO_OK with call %ld of %ld failed", n + 1,
                       calls);
        } else {
            (*nfail_cl)++;
            if (!names_call(out.error) ||
                strstr(out.error, "CL_OUT_OF_RESOURCES") == NULL)
                report(c, in, f, "checked call %ld failed: %s: \"%s\" names "
                                 "no cl call and CL_OUT_OF_RESOURCES",
                       n + 1, dqo_status_name(st), out.error);
            if (st != DQO_EDEVICE)
                report(c, in, f, "checked call %ld failed: status %s (%s)",
                       n + 1, dqo_status_name(st), out.error);
            if (out.groups != 0 || out.keys != NULL || out.count != NULL)
                report(c, in, f, "failed call left output arrays");
            if (n >= calls)
                report(c, in, f, "failed with the hook past its %ld calls: "
                                 "%s",
                       calls, out.error);
        }
        if (live_leaked(lm0, lmsg, sizeof lmsg)) {
            report(c, in, f, "checked call %ld failed: leaked %s", n + 1,
                   lmsg);
            return;
        }
        if (failures > 10)
            return;
    }
    for (long n = 1; n < 2000; n++) {
        mem_fail_after(n);
        memset(&out, 0x5A, sizeof out);
        const dqo_status st = opencl_backend.group(in, &pc.g, &out);
        mem_fail_after(0);
        if (st == DQO_OK) {
            check_output(c, in, &q->ref, f, &out);
            grp_output_free(&out, in->naggs);
            if (n == 1)
                report(c, in, f, "no host allocation at all?");
            break;
        }
        (*nfail_mem)++;
        if (st != DQO_ENOMEM || strstr(out.error, "out of memory") == NULL)
            report(c, in, f, "allocation %ld failed: %s: \"%s\"", n,
                   dqo_status_name(st), out.error);
        if (out.groups != 0 || out.keys != NULL || out.count != NULL)
            report(c, in, f, "failed call left output arrays");
        if (live_leaked(lm0, lmsg, sizeof lmsg)) {
            report(c, in, f, "allocation %ld failed: leaked %s", n, lmsg);
            return;
        }
        if (failures > 10)
            return;
    }
}

static void test_fail_injection(void **s)
{
    (void)s;
    NEED_DEVICE();
    failures = 0;
    const double t0 = now_s();
    /* Start from a closed device: the baseline of the whole test. */
    opencl_backend.trim();
    const long mem_start = mem_outstanding(), obj_start = ocl_live_objects();
    small_query q;
    small_make(&q, 5000);
    for (int f = 0; f < NFAM; f++) {
        if (!fam_on[f] || fam_stub[f])
            continue;
        int ncl = 0, nmem = 0;
        ctx c = {"fail injection, streamed", "all0"};
        q.in.keys_dev = NULL;
        sweep_family(&c, &q, f, &ncl, &nmem);
        print_message("%-5s streamed: %d checked calls and %d host "
                      "allocations failed in turn\n",
                      fam_name[f], ncl, nmem);
        if (fam_stub[f])
            continue;
        if (ncl < 5 || nmem < 1)
            report(&c, &q.in, f, "only %d checked calls / %d allocations "
                                 "failed",
                   ncl, nmem);
        /* Resident columns. */
        dev_col *kd = NULL, *ad[OCL_MAX_AGGS] = {NULL};
        c.name = "fail injection, resident";
        if (upload_all(&c, &q.in, q.aggs, &kd, ad)) {
            q.in.keys_dev = kd;
            for (int a = 0; a < q.in.naggs; a++)
                q.aggs[a].dev = ad[a];
            ncl = nmem = 0;
            sweep_family(&c, &q, f, &ncl, &nmem);
            print_message("%-5s resident: %d checked calls and %d host "
                          "allocations failed in turn\n",
                          fam_name[f], ncl, nmem);
        }
        q.in.keys_dev = NULL;
        for (int a = 0; a < q.in.naggs; a++)
            q.aggs[a].dev = NULL;
        free_cols(kd, ad, q.in.naggs);
    }
    /* The device opens inside the query: every checked call of a cold
     * run (programs load from the binary cache, which makes no checked
     * calls) failed in turn, for direct; trim closes the device each
     * time. */
    if (fam_on[F_DIRECT]) {
        plan_choice pc;
        plan_force_group(GRP_KERNEL_DIRECT, &pc);
        grp_output out;
        ctx c = {"fail injection, cold device", "all0"};
        opencl_backend.trim();
        const long b = ocl_checked_calls();
        assert_int_equal(opencl_backend.group(&q.in, &pc.g, &out), DQO_OK);
        const long calls = ocl_checked_calls() - b;
        grp_output_free(&out, q.in.naggs);
        int ncold = 0;
        for (long n = 0; n < calls; n++) {
            opencl_backend.trim();
            ocl_fail_after(n);
            const dqo_status st = opencl_backend.group(&q.in, &pc.g, &out);
            ocl_fail_after(-1);
            if (st == DQO_OK) {
                report(&c, &q.in, F_DIRECT, "DQO_OK with checked call %ld "
                                            "failed",
                       n + 1);
                grp_output_free(&out, q.in.naggs);
            } else {
                ncold++;
                if (!names_call(out.error) ||
                    strstr(out.error, "CL_OUT_OF_RESOURCES") == NULL)
                    report(&c, &q.in, F_DIRECT, "checked call %ld: %s: %s",
                           n + 1, dqo_status_name(st), out.error);
            }
            opencl_backend.trim();
            if (mem_outstanding() != mem_start ||
                ocl_live_objects() != obj_start) {
                report(&c, &q.in, F_DIRECT, "checked call %ld failed: "
                                            "leaked %ld allocations, %ld "
                                            "OpenCL objects",
                       n + 1, mem_outstanding() - mem_start,
                       ocl_live_objects() - obj_start);
                break;
            }
        }
        print_message("sphg cold: %d of %ld checked calls failed in turn\n",
                      ncold, calls);
    }
    /* trim closes the idle device: everything back to the start. */
    opencl_backend.trim();
    if (mem_outstanding() != mem_start || ocl_live_objects() != obj_start)
        report(&(ctx){"fail injection, after trim", "all0"}, &q.in, -1,
               "leaked %ld allocations, %ld OpenCL objects",
               mem_outstanding() - mem_start, ocl_live_objects() - obj_start);
    small_free(&q);
    print_message("failure injection: %.2f s\n", now_s() - t0);
    if (failures > 0)
        fail_msg("%d failures in test_fail_injection", failures);
}

/* ------------------------------------------------------------ bad input */

static void test_bad_input(void **s)
{
    (void)s;
    NEED_DEVICE();
    small_query q;
    small_make(&q, 100);
    const live_mark lm0 = live_now();
    plan_choice pc;
    grp_output out;
    plan_force_group(GRP_KERNEL_HASH, &pc);
    static const int bad_dev[] = {99, -1, 16};
    for (size_t i = 0; i < sizeof bad_dev / sizeof *bad_dev; i++) {
        q.in.device = bad_dev[i];
        const dqo_status st = opencl_backend.group(&q.in, &pc.g, &out);
        print_message("device %d: %s: %s\n", bad_dev[i], dqo_status_name(st),
                      out.error);
        assert_int_equal(st, DQO_ENOTFOUND);
        assert_non_null(strstr(out.error, "cl:"));
        assert_int_equal(out.groups, 0);
        assert_null(out.keys);
    }
    /* One past the last device. */
    q.in.device = ndev;
    dqo_status st = opencl_backend.group(&q.in, &pc.g, &out);
    print_message("device %d: %s: %s\n", ndev, dqo_status_name(st),
                  out.error);
    assert_int_not_equal(st, DQO_OK);
    assert_true(out.error[0] != '\0');
    q.in.device = 0;
    /* No device kernel for bsg. */
    plan_force_group(GRP_KERNEL_BSEARCH, &pc);
    st = opencl_backend.group(&q.in, &pc.g, &out);
    print_message("bsg: %s: %s\n", dqo_status_name(st), out.error);
    assert_int_equal(st, DQO_EUNSUPPORTED);
    assert_non_null(strstr(out.error, "bsg"));
    /* Nine lowered aggregates. */
    grp_agg nine[9];
    for (int a = 0; a < 9; a++)
        nine[a] = (grp_agg){(agg_op)(a % 4), DQO_TYPE_I32, q.v.i32, NULL,
                            NULL};
    grp_input in9 = q.in;
    in9.aggs = nine;
    in9.naggs = 9;
    for (int f = 0; f < NFAM; f++) {
        plan_force_group(fam_kernel[f], &pc);
        st = opencl_backend.group(&in9, &pc.g, &out);
        if (f == 0)
            print_message("9 aggregates: %s: %s\n", dqo_status_name(st),
                          out.error);
        assert_int_equal(st, DQO_EUNSUPPORTED);
        assert_non_null(strstr(out.error, "8"));
    }
    char lmsg[128];
    if (live_leaked(lm0, lmsg, sizeof lmsg))
        fail_msg("refusals leaked %s", lmsg);
    small_free(&q);
}

/* ------------------------------------------------------------- set-up */

static void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *dir = opendir(path);
        if (dir != NULL) {
            struct dirent *ent;
            while ((ent = readdir(dir)) != NULL) {
                if (strcmp(ent->d_name, ".") == 0 ||
                    strcmp(ent->d_name, "..") == 0)
                    continue;
                char sub[1024];
                snprintf(sub, sizeof sub, "%s/%s", path, ent->d_name);
                rm_rf(sub);
            }
            closedir(dir);
        }
        (void)rmdir(path);
    } else {
        (void)unlink(path);
    }
}

static int group_setup(void **state)
{
    (void)state;
    const char *env = getenv("DQO_TEST_SEED");
    if (env != NULL && *env != '\0')
        test_seed = strtoull(env, NULL, 10);
    print_message("seed %llu (DQO_TEST_SEED=N to repeat)\n",
                  (unsigned long long)test_seed);
    const char *ks = getenv("DQO_TEST_KERNELS");
    for (int f = 0; f < NFAM; f++)
        fam_on[f] = ks == NULL || *ks == '\0';
    while (ks != NULL && *ks != '\0') {
        size_t len = strcspn(ks, ",");
        for (int f = 0; f < NFAM; f++)
            if (strlen(fam_name[f]) == len &&
                strncmp(ks, fam_name[f], len) == 0)
                fam_on[f] = true;
        ks += len;
        if (*ks == ',')
            ks++;
    }
    snprintf(cache_dir, sizeof cache_dir, "/tmp/dqo_test_cl_group_XXXXXX");
    if (mkdtemp(cache_dir) == NULL) {
        print_error("mkdtemp failed\n");
        return -1;
    }
    setenv("DQO_CL_CACHE", cache_dir, 1);
    char err[512];
    ndev = opencl_backend.probe(&dev0, 1, err, sizeof err);
    if (ndev < 0) {
        print_error("OpenCL probe failed: %s\n", err);
        return -1;
    }
    if (ndev == 0)
        print_message("[  SKIP    ] no OpenCL platform or device found "
                      "(install an ICD such as PoCL: pocl-opencl-icd); the "
                      "OpenCL grouping tests skip\n");
    else
        print_message("device cl:0: %s (%s), %u CUs, %llu MiB max alloc, "
                      "%llu KiB local%s\n",
                      dev0.name, dev0.platform_name, dev0.compute_units,
                      (unsigned long long)(dev0.max_alloc >> 20),
                      (unsigned long long)(dev0.local_mem >> 10),
                      dev0.fp64 ? ", fp64" : "");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    ocl_set_mem_budget(0, 0);
    if (ndev > 0)
        opencl_backend.trim();
    rm_rf(cache_dir);
    unsetenv("DQO_CL_CACHE");
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_one_row),
        cmocka_unit_test(test_const),
        cmocka_unit_test(test_minmax),
        cmocka_unit_test(test_distinct),
        cmocka_unit_test(test_sorted_few),
        cmocka_unit_test(test_sorted_many),
        cmocka_unit_test(test_reverse),
        cmocka_unit_test(test_clustered),
        cmocka_unit_test(test_repeated_runs),
        cmocka_unit_test(test_random_few),
        cmocka_unit_test(test_random_many),
        cmocka_unit_test(test_random_large_range),
        cmocka_unit_test(test_random_wide),
        cmocka_unit_test(test_underestimate),
        cmocka_unit_test(test_overestimate),
        cmocka_unit_test(test_families_ran),
        cmocka_unit_test(test_resident),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_hash_retry),
        cmocka_unit_test(test_wrapped_sum),
        cmocka_unit_test(test_fail_injection),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
