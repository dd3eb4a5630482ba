/*
 * describe.c - the machine model as text for people (`dqo devices`) and as
 * JSON for scripts (`dqo devices --json`): locations with cores, caches,
 * memory, NUMA locality and link, plus the calibrated figures when a
 * profile was loaded.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/engine_int.h"
#include "topology/topology.h"

/* A growing string; `failed` is set when an allocation fails. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool failed;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) DQO_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)w < b->cap - b->len) {
            b->len += (size_t)w;
            return;
        }
        size_t cap = 2 * b->cap + (size_t)w;
        char *p = mem_realloc(b->p, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

/* "48 KiB", "2 MiB", "125.8 GiB"; "-" for 0. */
static const char *human(uint64_t v, char *buf, size_t n)
{
    if (v == 0)
        snprintf(buf, n, "-");
    else if (v >= (1ull << 30))
        snprintf(buf, n, "%.1f GiB", (double)v / (double)(1ull << 30));
    else if (v >= (1u << 20))
        snprintf(buf, n, "%.0f MiB", (double)v / (double)(1u << 20));
    else
        snprintf(buf, n, "%.0f KiB", (double)v / 1024.0);
    return buf;
}

static const char *kind_name(plan_loc_kind k)
{
    return k == PLAN_LOC_CPU ? "cpu" : k == PLAN_LOC_NUMA ? "numa" : "opencl";
}

static const char *link_name(const plan_location *l, char *buf, size_t n)
{
    if (l->link == PLAN_LINK_HOST)
        snprintf(buf, n, "host memory");
    else if (l->link == PLAN_LINK_PCIE && l->link_gbs > 0)
        snprintf(buf, n, "PCIe %.0f GB/s", l->link_gbs);
    else if (l->link == PLAN_LINK_PCIE)
        snprintf(buf, n, "PCIe");
    else
        snprintf(buf, n, "unknown");
    return buf;
}

static const char *num_or_dash(double v, const char *fmt, char *buf, size_t n)
{
    if (v <= 0)
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, fmt, v);
    return buf;
}

static const char *status_word(int st)
{
    switch (st) {
    case TOPO_PROFILE_OK: return "loaded";
    case TOPO_PROFILE_MISSING: return "missing";
    case TOPO_PROFILE_STALE: return "stale (ignored)";
    default: return "corrupt (ignored)";
    }
}

static void describe_text(sbuf *b, const dqo_ctx *ctx, const plan_model *m)
{
    char a[32], c[32], d[32], e[32], f[32], g[32], h[32];
    sb_printf(b, "machine   %s\n", m->cpu_name);
    sb_printf(b, "          %d package%s, %d NUMA node%s, %d cores, %d PUs, %s "
                 "memory (topology: %s)\n",
              m->packages, m->packages == 1 ? "" : "s", m->numa_nodes,
              m->numa_nodes == 1 ? "" : "s", m->cores, m->pus,
              human(m->mem_bytes, a, sizeof a), m->source);
    sb_printf(b, "profile   %s%s%s\n", status_word(ctx->profile_status),
              ctx->profile_path[0] ? ": " : "", ctx->profile_path);
    if (ctx->profile_status != TOPO_PROFILE_OK)
        sb_printf(b, "          (run `dqo calibrate` to measure bandwidths, "
                     "latencies and kernel costs)\n");
    sb_printf(b, "\n%-10s %-6s %6s %4s %10s %7s %8s %8s %5s %-16s %9s %9s %9s\n",
              "location", "kind", "cores", "PUs", "memory", "L1d", "L2", "L3",
              "numa", "link", "read GB/s", "h2d GB/s", "launch us");
    for (int i = 0; i < m->nloc; i++) {
        const plan_location *l = &m->loc[i];
        char numa[16];
        if (l->numa >= 0)
            snprintf(numa, sizeof numa, "%d", l->numa);
        else
            snprintf(numa, sizeof numa, "all");
        if (l->kind == PLAN_LOC_CL && l->numa < 0)
            snprintf(numa, sizeof numa, "-");
        char pus[16];
        if (l->pus > 0)
            snprintf(pus, sizeof pus, "%d", l->pus);
        else
            snprintf(pus, sizeof pus, "-");
        char lnk[32];
        sb_printf(b, "%-10s %-6s %6d %4s %10s %7s %8s %8s %5s %-16s %9s %9s %9s\n",
                  l->id, kind_name(l->kind), l->cores, pus,
                  human(l->mem_bytes, a, sizeof a), human(l->l1d, c, sizeof c),
                  human(l->l2, d, sizeof d), human(l->l3, e, sizeof e), numa,
                  link_name(l, lnk, sizeof lnk),
                  num_or_dash(plan_calib_peak_bw(&l->calib), "%.1f", f, sizeof f),
                  num_or_dash(l->calib.h2d_pinned_gbs, "%.1f", g, sizeof g),
                  num_or_dash(l->calib.launch_us, "%.1f", h, sizeof h));
    }
    bool any_cl = false;
    for (int i = 0; i < m->nloc; i++) {
        const plan_location *l = &m->loc[i];
        if (l->kind != PLAN_LOC_CL)
            continue;
        if (!any_cl)
            sb_printf(b, "\nOpenCL devices\n");
        any_cl = true;
        sb_printf(b, "  %-6s %s (%s, driver %s)%s%s%s%s\n", l->id, l->name,
                  l->platform[0] ? l->platform : "?",
                  l->driver[0] ? l->driver : "?", l->pci[0] ? ", PCI " : "",
                  l->pci, l->osdev[0] ? ", hwloc " : "", l->osdev);
    }
    if (!any_cl && m->this_system)
        sb_printf(b, "\nOpenCL devices: none (no OpenCL platform found)\n");
    if (m->nosdev > 0) {
        sb_printf(b, "hwloc OpenCL OS devices:");
        for (int i = 0; i < m->nosdev; i++)
            sb_printf(b, " %s (PCI %s, NUMA %d)", m->osdev[i].name,
                      m->osdev[i].pci[0] ? m->osdev[i].pci : "?", m->osdev[i].numa);
        sb_printf(b, "\n");
    } else if (any_cl) {
        sb_printf(b, "hwloc reports no OpenCL OS device (its PCI/OpenCL "
                     "plugins are missing or see no PCI bus): device NUMA "
                     "locality and link speed are unknown\n");
    }

    /* Calibrated details per location. */
    for (int i = 0; i < m->nloc; i++) {
        const plan_location *l = &m->loc[i];
        const plan_calib *k = &l->calib;
        if (!k->valid)
            continue;
        sb_printf(b, "\n%s calibration (%.1f s)\n", l->id, k->seconds);
        if (k->nbw > 0) {
            sb_printf(b, "  read GB/s by threads:");
            for (int j = 0; j < k->nbw; j++)
                sb_printf(b, " %d:%.1f", k->bw_threads[j], k->bw_gbs[j]);
            sb_printf(b, "\n");
        }
        if (k->nlat > 0) {
            sb_printf(b, "  random access ns:");
            for (int j = 0; j < k->nlat; j++)
                sb_printf(b, " %s(%s):%.3g", k->lat_level[j],
                          human(k->lat_bytes[j], a, sizeof a), k->lat_ns[j]);
            sb_printf(b, "\n");
        }
        if (k->atomic_private_mops > 0 || k->atomic_shared_mops > 0)
            sb_printf(b, "  atomic adds M/s: private %.1f, shared %.1f\n",
                      k->atomic_private_mops, k->atomic_shared_mops);
        if (l->kind == PLAN_LOC_CL)
            sb_printf(b, "  transfers GB/s: h2d pageable %.2f pinned %.2f, "
                         "d2h pageable %.2f pinned %.2f; launch %.1f us\n",
                      k->h2d_pageable_gbs, k->h2d_pinned_gbs,
                      k->d2h_pageable_gbs, k->d2h_pinned_gbs, k->launch_us);
        for (int j = 0; j < k->nkern; j++)
            sb_printf(b, "  kernel %-5s %9" PRIu64 " rows %8" PRIu64
                         " groups %3d threads: %.3f ns/row\n",
                      k->kern[j].kernel, k->kern[j].rows, k->kern[j].groups,
                      k->kern[j].threads, k->kern[j].ns_per_row);
    }
}

static void json_str(sbuf *b, const char *s)
{
    sb_printf(b, "\"");
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            sb_printf(b, "\\%c", ch);
        else if (ch < 0x20)
            sb_printf(b, "\\u%04x", ch);
        else
            sb_printf(b, "%c", ch);
    }
    sb_printf(b, "\"");
}

static void json_calib(sbuf *b, const plan_calib *k)
{
    sb_printf(b, "{\"seconds\": %.3f, \"read_gbs\": [", k->seconds);
    for (int j = 0; j < k->nbw; j++)
        sb_printf(b, "%s{\"threads\": %d, \"gbs\": %.4f}", j ? ", " : "",
                  k->bw_threads[j], k->bw_gbs[j]);
    sb_printf(b, "], \"random_access\": [");
    for (int j = 0; j < k->nlat; j++) {
        sb_printf(b, "%s{\"level\": ", j ? ", " : "");
        json_str(b, k->lat_level[j]);
        sb_printf(b, ", \"bytes\": %" PRIu64 ", \"ns\": %.4f}", k->lat_bytes[j],
                  k->lat_ns[j]);
    }
    sb_printf(b, "], \"atomic_private_mops\": %.3f, \"atomic_shared_mops\": %.3f, "
                 "\"h2d_pageable_gbs\": %.4f, \"h2d_pinned_gbs\": %.4f, "
                 "\"d2h_pageable_gbs\": %.4f, \"d2h_pinned_gbs\": %.4f, "
                 "\"launch_us\": %.3f, \"kernels\": [",
              k->atomic_private_mops, k->atomic_shared_mops, k->h2d_pageable_gbs,
              k->h2d_pinned_gbs, k->d2h_pageable_gbs, k->d2h_pinned_gbs,
              k->launch_us);
    for (int j = 0; j < k->nkern; j++) {
        sb_printf(b, "%s{\"kernel\": ", j ? ", " : "");
        json_str(b, k->kern[j].kernel);
        sb_printf(b, ", \"rows\": %" PRIu64 ", \"groups\": %" PRIu64
                     ", \"threads\": %d, \"ns_per_row\": %.5f}",
                  k->kern[j].rows, k->kern[j].groups, k->kern[j].threads,
                  k->kern[j].ns_per_row);
    }
    sb_printf(b, "]}");
}

static const char *profile_word(int st)
{
    switch (st) {
    case TOPO_PROFILE_OK: return "ok";
    case TOPO_PROFILE_MISSING: return "missing";
    case TOPO_PROFILE_STALE: return "stale";
    default: return "corrupt";
    }
}

static void describe_json(sbuf *b, const dqo_ctx *ctx, const plan_model *m)
{
    sb_printf(b, "{\n  \"machine\": {\"cpu\": ");
    json_str(b, m->cpu_name);
    sb_printf(b, ", \"packages\": %d, \"numa_nodes\": %d, \"cores\": %d, "
                 "\"pus\": %d, \"mem_bytes\": %" PRIu64 ", \"topology\": ",
              m->packages, m->numa_nodes, m->cores, m->pus, m->mem_bytes);
    json_str(b, m->source);
    sb_printf(b, ", \"fingerprint\": \"%016" PRIx64 "\"},\n", topo_fingerprint(m));
    sb_printf(b, "  \"profile\": {\"status\": \"%s\", \"path\": ",
              profile_word(ctx->profile_status));
    json_str(b, ctx->profile_path);
    sb_printf(b, "},\n  \"hwloc_osdevs\": [");
    for (int i = 0; i < m->nosdev; i++) {
        sb_printf(b, "%s{\"name\": ", i ? ", " : "");
        json_str(b, m->osdev[i].name);
        sb_printf(b, ", \"pci\": ");
        json_str(b, m->osdev[i].pci);
        sb_printf(b, ", \"numa\": %d, \"link_gbs\": %.2f}", m->osdev[i].numa,
                  m->osdev[i].link_gbs);
    }
    sb_printf(b, "],\n  \"locations\": [");
    for (int i = 0; i < m->nloc; i++) {
        const plan_location *l = &m->loc[i];
        sb_printf(b, "%s\n    {\"id\": ", i ? "," : "");
        json_str(b, l->id);
        sb_printf(b, ", \"kind\": \"%s\", \"name\": ", kind_name(l->kind));
        json_str(b, l->name);
        sb_printf(b, ", \"numa\": %d, \"cores\": %d, \"pus\": %d, "
                     "\"mem_bytes\": %" PRIu64 ", \"max_alloc\": %" PRIu64
                     ", \"l1d_bytes\": %" PRIu64 ", \"l2_bytes\": %" PRIu64
                     ", \"l3_bytes\": %" PRIu64 ", \"link\": \"%s\", "
                     "\"link_gbs\": %.2f, \"pci\": ",
                  l->numa, l->cores, l->pus, l->mem_bytes, l->max_alloc, l->l1d,
                  l->l2, l->l3,
                  l->link == PLAN_LINK_HOST   ? "host"
                  : l->link == PLAN_LINK_PCIE ? "pcie"
                                              : "unknown",
                  l->link_gbs);
        json_str(b, l->pci);
        if (l->kind == PLAN_LOC_NUMA)
            sb_printf(b, ", \"first_core\": %d", l->first_core);
        if (l->kind == PLAN_LOC_CL) {
            sb_printf(b, ", \"platform\": ");
            json_str(b, l->platform);
            sb_printf(b, ", \"driver\": ");
            json_str(b, l->driver);
            sb_printf(b, ", \"hwloc_osdev\": ");
            json_str(b, l->osdev);
        }
        sb_printf(b, ", \"calibration\": ");
        if (l->calib.valid)
            json_calib(b, &l->calib);
        else
            sb_printf(b, "null");
        sb_printf(b, "}");
    }
    sb_printf(b, "\n  ]\n}\n");
}

dqo_status dqo_machine_describe(dqo_ctx *ctx, int json, char **out)
{
    if (ctx == NULL || out == NULL)
        return ctx_error(ctx, DQO_EINVAL, "dqo_machine_describe: NULL argument");
    ctx_ok(ctx);
    *out = NULL;
    plan_model *m = ctx_model(ctx);
    if (m == NULL)
        return DQO_ENOMEM;
    sbuf b = {mem_alloc(4096), 0, 4096, false};
    if (b.p == NULL)
        return ctx_error(ctx, DQO_ENOMEM, "out of memory");
    b.p[0] = '\0';
    if (json)
        describe_json(&b, ctx, m);
    else
        describe_text(&b, ctx, m);
    if (b.failed) {
        mem_free(b.p);
        return ctx_error(ctx, DQO_ENOMEM, "out of memory describing the machine");
    }
    *out = b.p;
    return DQO_OK;
}
