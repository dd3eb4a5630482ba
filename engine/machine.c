/*
 * machine.c - the machine model as the engine sees it: hwloc's topology
 * (topology/), the OpenCL devices the ICD loader enumerates (opencl/'s
 * probe), matched to hwloc's OS devices by PCI bus id, and the calibration
 * profile. Also `dqo calibrate` (running each location's micro-benchmarks
 * through its back-end and writing the profile) and the description that
 * `dqo devices` prints.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"
#include "topology/topology.h"

void dqo_free(void *p) { mem_free(p); }

void ctx_warn(dqo_ctx *ctx, const char *fmt, ...)
{
    size_t len = strlen(ctx->warnings);
    if (len + 2 >= sizeof ctx->warnings)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(ctx->warnings + len, sizeof ctx->warnings - len - 1, fmt, ap);
    va_end(ap);
    if (w < 0)
        return;
    len = strlen(ctx->warnings);
    ctx->warnings[len] = '\n';
    ctx->warnings[len + 1] = '\0';
}

/* --------------------------------------------------- OpenCL devices */

/* The ICD enumeration is slow (a GPU driver initialises), so it runs once
 * per process. */
#define MAX_DEVS PLAN_MAX_OSDEVS
static dev_info eng_devs[MAX_DEVS];
static int eng_ndevs;
static char eng_dev_err[256];
static pthread_once_t eng_dev_once = PTHREAD_ONCE_INIT;

static void probe_devices(void)
{
    if (opencl_backend.probe == NULL)
        return;
    int n = opencl_backend.probe(eng_devs, MAX_DEVS, eng_dev_err, sizeof eng_dev_err);
    if (n < 0) {
        eng_ndevs = 0;
        if (eng_dev_err[0] == '\0')
            snprintf(eng_dev_err, sizeof eng_dev_err, "OpenCL enumeration failed");
        return;
    }
    eng_ndevs = n < MAX_DEVS ? n : MAX_DEVS;
}

/* Attaches "cl:N" for each probed device, matched to hwloc's OS device by
 * PCI bus id, else by hwloc's platform/device index (the same ICD order)
 * when one side lacks the bus id: in a VM hwloc may hang the OS device
 * under the host bridge instead of its PCI device. */
void engine_attach_cl(plan_model *m, const dev_info *devs, int n)
{
    for (int i = 0; i < n && m->nloc < PLAN_MAX_LOCATIONS; i++) {
        const dev_info *d = &devs[i];
        plan_location *l = &m->loc[m->nloc++];
        memset(l, 0, sizeof *l);
        snprintf(l->id, sizeof l->id, "cl:%d", i);
        l->kind = PLAN_LOC_CL;
        snprintf(l->name, sizeof l->name, "%s", d->name);
        snprintf(l->platform, sizeof l->platform, "%s", d->platform_name);
        snprintf(l->driver, sizeof l->driver, "%s", d->driver);
        l->cores = (int)d->compute_units;
        l->mem_bytes = d->global_mem;
        l->max_alloc = d->max_alloc;
        l->l1d = d->local_mem;
        l->l2 = d->global_cache;
        l->numa = -1;
        l->cl_platform = d->platform;
        l->cl_device = d->device;
        if (d->has_pci)
            snprintf(l->pci, sizeof l->pci, "%04x:%02x:%02x.%01x", d->pci_domain,
                     d->pci_bus, d->pci_dev, d->pci_func);
        const plan_osdev *os = NULL;
        for (int k = 0; k < m->nosdev && os == NULL; k++)
            if (l->pci[0] && strcmp(m->osdev[k].pci, l->pci) == 0)
                os = &m->osdev[k];
        for (int k = 0; k < m->nosdev && os == NULL; k++)
            if ((!l->pci[0] || !m->osdev[k].pci[0]) &&
                m->osdev[k].platform == d->platform &&
                m->osdev[k].device == d->device)
                os = &m->osdev[k];
        if (os != NULL) {
            l->numa = os->numa;
            l->link_gbs = os->link_gbs;
            snprintf(l->osdev, sizeof l->osdev, "%s", os->name);
            if (!l->pci[0])
                snprintf(l->pci, sizeof l->pci, "%s", os->pci);
        }
        /* hwloc saw no OS device for it (no PCI or OpenCL plugin, or a
         * VM hiding the bus): on a one-node machine the node is known. */
        if (l->numa < 0 && m->numa_nodes == 1 && !d->is_cpu)
            l->numa = 0;
        if (d->is_cpu || (d->host_unified && !l->pci[0]))
            l->link = PLAN_LINK_HOST;
        else
            l->link = l->pci[0] ? PLAN_LINK_PCIE : PLAN_LINK_UNKNOWN;
    }
}

plan_model *ctx_model(dqo_ctx *ctx)
{
    if (ctx->model != NULL)
        return ctx->model;
    plan_model *m = mem_alloc(sizeof *m);
    if (m == NULL) {
        ctx_error(ctx, DQO_ENOMEM, "out of memory building the machine model");
        return NULL;
    }
    *m = *topo_model();
    if (m->this_system) {
        pthread_once(&eng_dev_once, probe_devices);
        engine_attach_cl(m, eng_devs, eng_ndevs);
        if (eng_dev_err[0] != '\0')
            ctx_warn(ctx, "OpenCL devices unavailable: %s", eng_dev_err);
    }
    ctx->model = m;
    char why[1024];
    if (topo_profile_path(m, ctx->profile_path, sizeof ctx->profile_path) != 0) {
        ctx->profile_path[0] = '\0';
        ctx->profile_status = TOPO_PROFILE_MISSING;
        ctx_warn(ctx, "no calibration profile: neither XDG_CACHE_HOME nor HOME "
                      "is set; using topology defaults");
        return m;
    }
    ctx->profile_status = topo_profile_read(ctx->profile_path, m, why, sizeof why);
    if (ctx->profile_status == TOPO_PROFILE_MISSING)
        ctx_warn(ctx, "no calibration profile for this machine; using "
                      "topology defaults (run `dqo calibrate`)");
    else if (ctx->profile_status != TOPO_PROFILE_OK)
        ctx_warn(ctx, "%s; using topology defaults", why);
    return m;
}

const char *dqo_ctx_warnings(dqo_ctx *ctx)
{
    if (ctx == NULL)
        return "";
    ctx_model(ctx);
    return ctx->warnings;
}

/* --------------------------------------------------------- locations */

int dqo_location_count(dqo_ctx *ctx)
{
    if (ctx == NULL)
        return 0;
    plan_model *m = ctx_model(ctx);
    return m != NULL ? m->nloc : 0;
}

dqo_status dqo_location_get(dqo_ctx *ctx, int index, dqo_location_info *out)
{
    if (ctx == NULL || out == NULL)
        return ctx_error(ctx, DQO_EINVAL, "dqo_location_get: NULL argument");
    ctx_ok(ctx);
    plan_model *m = ctx_model(ctx);
    if (m == NULL)
        return DQO_ENOMEM;
    if (index < 0 || index >= m->nloc)
        return ctx_error(ctx, DQO_EINVAL,
                         "location index %d is out of range (0..%d)", index,
                         m->nloc - 1);
    const plan_location *l = &m->loc[index];
    memset(out, 0, sizeof *out);
    out->id = l->id;
    out->name = l->name;
    out->pci = l->pci;
    out->kind = l->kind == PLAN_LOC_CPU    ? DQO_LOCATION_CPU
                : l->kind == PLAN_LOC_NUMA ? DQO_LOCATION_NUMA
                                           : DQO_LOCATION_OPENCL;
    out->numa = l->numa;
    out->compute_units = l->cores;
    out->pus = l->pus;
    out->mem_bytes = l->mem_bytes;
    out->l1d_bytes = l->l1d;
    out->l2_bytes = l->l2;
    out->l3_bytes = l->l3;
    out->host_memory = l->link == PLAN_LINK_HOST;
    out->link_gbs = l->link_gbs;
    out->calibrated = l->calib.valid;
    out->read_gbs = plan_calib_peak_bw(&l->calib);
    out->h2d_pinned_gbs = l->calib.h2d_pinned_gbs;
    out->launch_us = l->calib.launch_us;
    return DQO_OK;
}

/* Writes "cpu, cpu:numa0, cl:0" into buf. */
static void list_ids(const plan_model *m, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < m->nloc && len + 2 < n; i++) {
        int w = snprintf(buf + len, n - len, "%s%s", i ? ", " : "", m->loc[i].id);
        if (w < 0)
            break;
        len += (size_t)w;
    }
}

dqo_status dqo_location_find(dqo_ctx *ctx, const char *id, int *index)
{
    if (ctx == NULL || id == NULL || index == NULL)
        return ctx_error(ctx, DQO_EINVAL, "dqo_location_find: NULL argument");
    ctx_ok(ctx);
    plan_model *m = ctx_model(ctx);
    if (m == NULL)
        return DQO_ENOMEM;
    *index = plan_model_find(m, id);
    if (*index >= 0)
        return DQO_OK;
    char ids[512];
    list_ids(m, ids, sizeof ids);
    return ctx_error(ctx, DQO_ENOTFOUND,
                     "unknown location \"%s\" (this machine has: %s)", id, ids);
}

dqo_status dqo_profile_path(dqo_ctx *ctx, char **out)
{
    if (ctx == NULL || out == NULL)
        return ctx_error(ctx, DQO_EINVAL, "dqo_profile_path: NULL argument");
    ctx_ok(ctx);
    *out = NULL;
    if (ctx_model(ctx) == NULL)
        return DQO_ENOMEM;
    if (ctx->profile_path[0] == '\0')
        return ctx_error(ctx, DQO_ENOTFOUND,
                         "no profile path: set XDG_CACHE_HOME, HOME or DQO_PROFILE");
    *out = mem_strdup(ctx->profile_path);
    return *out != NULL ? DQO_OK : ctx_error(ctx, DQO_ENOMEM, "out of memory");
}

/* ---------------------------------------------------------- calibrate */

typedef struct calib_step {
    dqo_progress_fn fn;
    void *arg;
    double base, weight;
    char label[48];
} calib_step;

static void step_progress(void *arg, double done, const char *step)
{
    calib_step *s = arg;
    if (s->fn == NULL)
        return;
    char text[160];
    snprintf(text, sizeof text, "%s: %s", s->label, step != NULL ? step : "");
    if (done < 0)
        done = 0;
    if (done > 1)
        done = 1;
    s->fn(s->arg, s->base + s->weight * done, text);
}

/* The next id of a comma-separated list, trimmed of blanks, into id (cut
 * to its size); *p moves past it. False at the end of the list. */
static bool next_id(const char **p, char *id, size_t n)
{
    const char *s = *p;
    while (*s == ' ' || *s == ',')
        s++;
    if (*s == '\0')
        return false;
    const char *e = s;
    while (*e != '\0' && *e != ',')
        e++;
    const char *t = e;
    while (t > s && t[-1] == ' ')
        t--;
    snprintf(id, n, "%.*s", (int)(t - s), s);
    *p = e;
    return true;
}

/* Whether `id` is in the comma-separated `list` (NULL: every id). */
static bool id_listed(const char *list, const char *id)
{
    if (list == NULL)
        return true;
    char item[32];
    for (const char *p = list; next_id(&p, item, sizeof item);)
        if (strcmp(item, id) == 0)
            return true;
    return false;
}

dqo_status dqo_calibrate(dqo_ctx *ctx, const dqo_calibrate_options *opts,
                         char **path_out)
{
    if (ctx == NULL)
        return DQO_EINVAL;
    ctx_ok(ctx);
    if (path_out != NULL)
        *path_out = NULL;
    dqo_calibrate_options dflt = {0};
    if (opts == NULL)
        opts = &dflt;
    plan_model *m = ctx_model(ctx);
    if (m == NULL)
        return DQO_ENOMEM;
    if (!m->this_system)
        return ctx_error(ctx, DQO_EUNSUPPORTED,
                         "cannot calibrate a %s topology (HWLOC_XMLFILE or "
                         "HWLOC_SYNTHETIC is set): calibration measures this "
                         "machine",
                         m->source);
    /* Every listed id must exist. */
    if (opts->locations != NULL) {
        char id[32];
        for (const char *p = opts->locations; next_id(&p, id, sizeof id);) {
            if (plan_model_find(m, id) < 0) {
                char ids[512];
                list_ids(m, ids, sizeof ids);
                return ctx_error(ctx, DQO_ENOTFOUND,
                                 "unknown location \"%s\" (this machine has: %s)",
                                 id, ids);
            }
        }
    }
    /* Weights of each location in the progress bar: the CPU with its
     * kernel costs dominates; other NUMA nodes and devices get less. */
    double weight[PLAN_MAX_LOCATIONS] = {0}, total = 0;
    for (int i = 0; i < m->nloc; i++) {
        const plan_location *l = &m->loc[i];
        if (!id_listed(opts->locations, l->id))
            continue;
        if (l->kind == PLAN_LOC_NUMA && m->numa_nodes == 1)
            weight[i] = 0.001; /* the node is the whole machine: copied */
        else
            weight[i] = l->kind == PLAN_LOC_CPU ? 6 : l->kind == PLAN_LOC_NUMA ? 1 : 2;
        total += weight[i];
    }
    double base = 0;
    int done = 0, failed = 0;
    char errs[512] = "";
    const plan_calib *cpu_calib = NULL;
    for (int i = 0; i < m->nloc; i++) {
        plan_location *l = &m->loc[i];
        if (weight[i] == 0)
            continue;
        calib_step st = {opts->progress, opts->progress_arg, base / total,
                         weight[i] / total, ""};
        snprintf(st.label, sizeof st.label, "%s", l->id);
        base += weight[i];
        plan_calib *c = mem_alloc(sizeof *c);
        if (c == NULL)
            return ctx_error(ctx, DQO_ENOMEM, "out of memory calibrating");
        memset(c, 0, sizeof *c);
        calib_opts co = {0};
        co.quick = opts->quick != 0;
        co.progress = step_progress;
        co.progress_arg = &st;
        char err[512] = "";
        dqo_status s;
        if (l->kind == PLAN_LOC_NUMA && m->numa_nodes == 1 && cpu_calib != NULL) {
            *c = *cpu_calib; /* one node: its cores are the machine's */
            s = DQO_OK;
        } else if (l->kind != PLAN_LOC_CL) {
            co.threads = l->kind == PLAN_LOC_CPU ? ctx_threads(ctx) : l->cores;
            if (co.threads < 1)
                co.threads = 1;
            co.first_core = l->kind == PLAN_LOC_CPU ? 0 : l->first_core;
            co.ncores = l->kind == PLAN_LOC_CPU ? m->cores : l->cores;
            if (co.ncores < 1)
                co.ncores = 1;
            co.l1d = l->l1d;
            co.l2 = l->l2;
            co.l3 = l->l3;
            co.kernels = l->kind == PLAN_LOC_CPU;
            s = ctx->cpu->calibrate(0, &co, c, err, sizeof err);
        } else if (opencl_backend.calibrate != NULL) {
            int dev = -1;
            sscanf(l->id, "cl:%d", &dev);
            /* Kernel cost points for devices with their own memory; an
             * OpenCL CPU device (PoCL) shares the host's cores, is never
             * the planner's pick for host data, and would spend its LLVM
             * compile time here. */
            co.kernels = l->link != PLAN_LINK_HOST;
            s = opencl_backend.calibrate(dev, &co, c, err, sizeof err);
        } else {
            s = DQO_EUNSUPPORTED;
            snprintf(err, sizeof err, "no OpenCL back-end");
        }
        if (s == DQO_OK) {
            c->valid = true;
            l->calib = *c;
            if (l->kind == PLAN_LOC_CPU)
                cpu_calib = &l->calib;
            done++;
        } else {
            failed++;
            size_t len = strlen(errs);
            snprintf(errs + len, sizeof errs - len, "%s%s: %s", len ? "; " : "",
                     l->id, err[0] ? err : dqo_status_str(s));
            ctx_warn(ctx, "calibrating %s failed: %s", l->id,
                     err[0] ? err : dqo_status_str(s));
            if (s == DQO_ENOMEM) {
                mem_free(c);
                return ctx_error(ctx, s, "calibrating %s: %s", l->id,
                                 err[0] ? err : "out of memory");
            }
        }
        mem_free(c);
    }
    if (done == 0)
        return ctx_error(ctx, DQO_EDEVICE, "calibration failed: %s",
                         failed ? errs : "no location to calibrate");
    char path[4096];
    if (opts->output != NULL)
        snprintf(path, sizeof path, "%s", opts->output);
    else if (ctx->profile_path[0] != '\0')
        snprintf(path, sizeof path, "%s", ctx->profile_path);
    else
        return ctx_error(ctx, DQO_EIO,
                         "no profile path: set XDG_CACHE_HOME, HOME or DQO_PROFILE");
    char err[512];
    if (topo_profile_write(path, m, err, sizeof err) != 0)
        return ctx_error(ctx, DQO_EIO, "%s", err);
    /* The new profile replaces the warnings about the old one; the
     * device warning stays. */
    ctx->warnings[0] = '\0';
    if (m->this_system && eng_dev_err[0] != '\0')
        ctx_warn(ctx, "OpenCL devices unavailable: %s", eng_dev_err);
    if (failed)
        ctx_warn(ctx, "not calibrated: %s", errs);
    ctx->profile_status = TOPO_PROFILE_OK;
    if (strlen(path) < sizeof ctx->profile_path)
        memcpy(ctx->profile_path, path, strlen(path) + 1);
    if (opts->progress != NULL)
        opts->progress(opts->progress_arg, 1.0, "done");
    if (path_out != NULL && (*path_out = mem_strdup(path)) == NULL)
        return ctx_error(ctx, DQO_ENOMEM, "out of memory");
    return DQO_OK;
}
