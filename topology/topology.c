/*
 * topology.c - the machine model from hwloc, and thread placement.
 *
 * hwloc is loaded once per process with I/O devices kept (PCI devices and
 * the OS devices under them, among which hwloc's OpenCL plugin reports each
 * OpenCL GPU as "openclPdD"), so a device's PCI bus id and nearest NUMA node
 * are known. The model lists the CPU locations ("cpu", "cpu:numaN") and the
 * OpenCL OS devices; the engine adds "cl:N" from the ICD loader and matches
 * them by PCI bus id (engine/machine.c). A model read from an XML file or a
 * synthetic description (tests, HWLOC_XMLFILE) makes its "cl:N" from the
 * OS devices themselves, since the running machine's devices are not its.
 *
 * Placement binds the calling thread to one core's cpuset through hwloc;
 * the CPU back-end binds its OpenMP team with it (cpu/place.c).
 */
#include <hwloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topology/topology.h"

/* ------------------------------------------------------------ the model */

static void copy_str(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src != NULL ? src : "");
}

/* The size of the first cache of `type` (0 when hwloc has none). */
static uint64_t cache_size(hwloc_topology_t t, hwloc_obj_type_t type)
{
    hwloc_obj_t o = hwloc_get_next_obj_by_type(t, type, NULL);
    return o != NULL && o->attr != NULL ? o->attr->cache.size : 0;
}

/* The logical index of the NUMA node of the first bit of `nodeset`, -1
 * when none. */
static int nodeset_numa(hwloc_topology_t t, hwloc_const_nodeset_t ns)
{
    if (ns == NULL)
        return -1;
    int os = hwloc_bitmap_first(ns);
    if (os < 0)
        return -1;
    hwloc_obj_t n = hwloc_get_numanode_obj_by_os_index(t, (unsigned)os);
    return n != NULL ? (int)n->logical_index : -1;
}

static int info_int(hwloc_obj_t o, const char *name, int dflt)
{
    const char *v = hwloc_obj_get_info_by_name(o, name);
    return v != NULL ? atoi(v) : dflt;
}

/* Records the OpenCL OS devices (subtype "OpenCL") with their PCI parent. */
static void read_osdevs(hwloc_topology_t t, plan_model *m)
{
    hwloc_obj_t o = NULL;
    while ((o = hwloc_get_next_osdev(t, o)) != NULL &&
           m->nosdev < PLAN_MAX_OSDEVS) {
        if (o->subtype == NULL || strcmp(o->subtype, "OpenCL") != 0)
            continue;
        plan_osdev *d = &m->osdev[m->nosdev++];
        memset(d, 0, sizeof *d);
        copy_str(d->name, sizeof d->name, o->name);
        copy_str(d->model, sizeof d->model,
                 hwloc_obj_get_info_by_name(o, "GPUModel"));
        d->platform = info_int(o, "OpenCLPlatformIndex", -1);
        d->device = info_int(o, "OpenCLPlatformDeviceIndex", -1);
        d->compute_units = info_int(o, "OpenCLComputeUnits", 0);
        const char *mem = hwloc_obj_get_info_by_name(o, "OpenCLGlobalMemorySize");
        d->mem_bytes = mem != NULL ? strtoull(mem, NULL, 10) * 1024u : 0;
        hwloc_obj_t p = o->parent;
        while (p != NULL && p->type != HWLOC_OBJ_PCI_DEVICE &&
               hwloc_obj_type_is_io(p->type))
            p = p->parent;
        if (p != NULL && p->type == HWLOC_OBJ_PCI_DEVICE) {
            snprintf(d->pci, sizeof d->pci, "%04x:%02x:%02x.%01x",
                     p->attr->pcidev.domain, p->attr->pcidev.bus,
                     p->attr->pcidev.dev, p->attr->pcidev.func);
            d->link_gbs = p->attr->pcidev.linkspeed;
        }
        hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(t, o);
        d->numa = anc != NULL ? nodeset_numa(t, anc->nodeset) : -1;
        if (d->numa >= 0 && hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE) > 1 &&
            anc->type == HWLOC_OBJ_MACHINE)
            d->numa = -1; /* attached to the whole machine: no nearest node */
    }
}

static plan_location *add_location(plan_model *m)
{
    if (m->nloc >= PLAN_MAX_LOCATIONS)
        return NULL;
    plan_location *l = &m->loc[m->nloc++];
    memset(l, 0, sizeof *l);
    l->numa = -1;
    l->cl_platform = l->cl_device = -1;
    return l;
}

/* Adds "cl:N" locations from the OS devices (models not of this system). */
static void osdev_locations(plan_model *m)
{
    int n = 0;
    for (int i = 0; i < m->nosdev; i++) {
        const plan_osdev *d = &m->osdev[i];
        plan_location *l = add_location(m);
        if (l == NULL)
            return;
        snprintf(l->id, sizeof l->id, "cl:%d", n++);
        l->kind = PLAN_LOC_CL;
        copy_str(l->name, sizeof l->name, d->model[0] ? d->model : d->name);
        l->numa = d->numa;
        l->cores = d->compute_units;
        l->mem_bytes = l->max_alloc = d->mem_bytes;
        l->link = d->pci[0] ? PLAN_LINK_PCIE : PLAN_LINK_UNKNOWN;
        l->link_gbs = d->link_gbs;
        copy_str(l->pci, sizeof l->pci, d->pci);
        copy_str(l->osdev, sizeof l->osdev, d->name);
        l->cl_platform = d->platform;
        l->cl_device = d->device;
    }
}

static void fill_model(hwloc_topology_t t, plan_model *m)
{
    m->packages = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PACKAGE);
    m->numa_nodes = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
    m->cores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
    m->pus = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
    if (m->pus <= 0)
        m->pus = 1;
    if (m->cores <= 0)
        m->cores = m->pus;
    if (m->packages <= 0)
        m->packages = 1;
    if (m->numa_nodes <= 0)
        m->numa_nodes = 1;
    hwloc_obj_t root = hwloc_get_root_obj(t);
    m->mem_bytes = root->total_memory;
    hwloc_obj_t pkg = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_PACKAGE, NULL);
    const char *model = pkg != NULL ? hwloc_obj_get_info_by_name(pkg, "CPUModel") : NULL;
    if (model == NULL)
        model = hwloc_obj_get_info_by_name(root, "CPUModel");
    copy_str(m->cpu_name, sizeof m->cpu_name, model != NULL ? model : "unknown CPU");

    uint64_t l1 = cache_size(t, HWLOC_OBJ_L1CACHE);
    uint64_t l2 = cache_size(t, HWLOC_OBJ_L2CACHE);
    uint64_t l3 = cache_size(t, HWLOC_OBJ_L3CACHE);
    if (l1 == 0)
        l1 = 48u << 10;
    if (l2 == 0)
        l2 = 2u << 20;
    if (l3 == 0)
        l3 = l2; /* no shared level: the last level is L2 */

    plan_location *cpu = add_location(m);
    if (cpu == NULL)
        return;
    copy_str(cpu->id, sizeof cpu->id, "cpu");
    cpu->kind = PLAN_LOC_CPU;
    copy_str(cpu->name, sizeof cpu->name, m->cpu_name);
    cpu->cores = m->cores;
    cpu->pus = m->pus;
    cpu->mem_bytes = cpu->max_alloc = m->mem_bytes;
    cpu->l1d = l1;
    cpu->l2 = l2;
    cpu->l3 = l3;
    cpu->link = PLAN_LINK_HOST;

    for (int i = 0; i < m->numa_nodes; i++) {
        hwloc_obj_t node = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, (unsigned)i);
        plan_location *l = add_location(m);
        if (l == NULL || node == NULL)
            break;
        snprintf(l->id, sizeof l->id, "cpu:numa%d", i);
        l->kind = PLAN_LOC_NUMA;
        copy_str(l->name, sizeof l->name, m->cpu_name);
        l->numa = i;
        l->cores = hwloc_get_nbobjs_inside_cpuset_by_type(t, node->cpuset,
                                                          HWLOC_OBJ_CORE);
        l->pus = hwloc_get_nbobjs_inside_cpuset_by_type(t, node->cpuset,
                                                        HWLOC_OBJ_PU);
        hwloc_obj_t c = hwloc_get_next_obj_inside_cpuset_by_type(
            t, node->cpuset, HWLOC_OBJ_CORE, NULL);
        l->first_core = c != NULL ? (int)c->logical_index : 0;
        l->mem_bytes = l->max_alloc = node->attr->numanode.local_memory;
        l->l1d = l1;
        l->l2 = l2;
        l->l3 = l3;
        l->link = PLAN_LINK_HOST;
    }
    read_osdevs(t, m);
}

/* Opens a topology: from `xml` or `synthetic` when given, else this system
 * (hwloc applies HWLOC_XMLFILE / HWLOC_SYNTHETIC itself). */
static int open_topology(hwloc_topology_t *out, const char *xml,
                         const char *synthetic, char *err, size_t errlen)
{
    hwloc_topology_t t;
    if (hwloc_topology_init(&t) != 0) {
        snprintf(err, errlen, "hwloc_topology_init failed");
        return -1;
    }
    hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    if (xml != NULL && hwloc_topology_set_xml(t, xml) != 0) {
        snprintf(err, errlen, "cannot read hwloc XML topology %s", xml);
        hwloc_topology_destroy(t);
        return -1;
    }
    if (synthetic != NULL && hwloc_topology_set_synthetic(t, synthetic) != 0) {
        snprintf(err, errlen, "invalid synthetic topology \"%s\"", synthetic);
        hwloc_topology_destroy(t);
        return -1;
    }
    if (hwloc_topology_load(t) != 0) {
        snprintf(err, errlen, "hwloc_topology_load failed");
        hwloc_topology_destroy(t);
        return -1;
    }
    *out = t;
    return 0;
}

int topo_model_from(const char *xml, const char *synthetic, plan_model *out,
                    char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    hwloc_topology_t t;
    if (open_topology(&t, xml, synthetic, err, errlen) != 0)
        return -1;
    fill_model(t, out);
    copy_str(out->source, sizeof out->source, xml != NULL ? "xml" : "synthetic");
    out->this_system = false;
    osdev_locations(out);
    hwloc_topology_destroy(t);
    return 0;
}

/* The process's topology: kept loaded for binding. */
static hwloc_topology_t topo_sys;
static plan_model topo_sys_model;
static pthread_once_t topo_once = PTHREAD_ONCE_INIT;

static void default_model(plan_model *m)
{
    memset(m, 0, sizeof *m);
    m->packages = m->numa_nodes = m->cores = m->pus = 1;
    copy_str(m->cpu_name, sizeof m->cpu_name, "unknown CPU");
    copy_str(m->source, sizeof m->source, "defaults");
    plan_location *l = add_location(m);
    plan_location *n = add_location(m);
    if (l == NULL || n == NULL)
        return;
    copy_str(l->id, sizeof l->id, "cpu");
    copy_str(l->name, sizeof l->name, m->cpu_name);
    l->cores = l->pus = 1;
    l->l1d = 48u << 10;
    l->l2 = 2u << 20;
    l->l3 = 32u << 20;
    *n = *l;
    copy_str(n->id, sizeof n->id, "cpu:numa0");
    n->kind = PLAN_LOC_NUMA;
    n->numa = 0;
}

static void topo_load(void)
{
    char err[128];
    if (open_topology(&topo_sys, NULL, NULL, err, sizeof err) != 0) {
        topo_sys = NULL;
        default_model(&topo_sys_model);
        return;
    }
    fill_model(topo_sys, &topo_sys_model);
    topo_sys_model.this_system = hwloc_topology_is_thissystem(topo_sys) != 0;
    copy_str(topo_sys_model.source, sizeof topo_sys_model.source,
             topo_sys_model.this_system ? "this system"
             : getenv("HWLOC_SYNTHETIC") != NULL ? "synthetic" : "xml");
    if (!topo_sys_model.this_system)
        osdev_locations(&topo_sys_model);
}

const plan_model *topo_model(void)
{
    pthread_once(&topo_once, topo_load);
    return &topo_sys_model;
}

void topo_machine(plan_machine *m)
{
    const plan_model *pm = topo_model();
    m->threads = pm->cores;
    m->l1d_bytes = pm->loc[0].l1d;
    m->l2_bytes = pm->loc[0].l2;
    m->l3_bytes = pm->loc[0].l3;
}

/* ------------------------------------------------------------ placement */

static bool env_set(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0';
}

bool topo_can_bind(void)
{
    const plan_model *m = topo_model();
    if (topo_sys == NULL || !m->this_system || m->pus <= 1)
        return false;
    if (env_set("OMP_PLACES") || env_set("OMP_PROC_BIND"))
        return false;
    const char *b = getenv("DQO_BIND");
    return b == NULL || strcmp(b, "0") != 0;
}

int topo_core_of_thread(int t, int nthreads)
{
    int cores = topo_model()->cores;
    if (cores <= 1 || nthreads <= 0 || t < 0)
        return 0;
    if (nthreads <= cores)
        return (int)(((int64_t)t * cores) / nthreads);
    return t % cores;
}

static hwloc_obj_t core_obj(int core)
{
    if (topo_sys == NULL || core < 0)
        return NULL;
    hwloc_obj_t c = hwloc_get_obj_by_type(topo_sys, HWLOC_OBJ_CORE, (unsigned)core);
    if (c == NULL) /* no cores reported: PUs stand for them */
        c = hwloc_get_obj_by_type(topo_sys, HWLOC_OBJ_PU, (unsigned)core);
    return c;
}

int topo_bind_self(int core)
{
    topo_model();
    hwloc_obj_t c = core_obj(core);
    if (c == NULL || c->cpuset == NULL)
        return -1;
    return hwloc_set_cpubind(topo_sys, c->cpuset, HWLOC_CPUBIND_THREAD) == 0 ? 0 : -1;
}

int topo_core_numa(int core)
{
    topo_model();
    hwloc_obj_t c = core_obj(core);
    int n = c != NULL ? nodeset_numa(topo_sys, c->nodeset) : -1;
    return n >= 0 ? n : 0;
}

void *topo_binding_save(void)
{
    topo_model();
    if (topo_sys == NULL)
        return NULL;
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (set == NULL)
        return NULL;
    if (hwloc_get_cpubind(topo_sys, set, HWLOC_CPUBIND_THREAD) != 0) {
        hwloc_bitmap_free(set);
        return NULL;
    }
    return set;
}

void topo_binding_restore(void *saved)
{
    if (saved == NULL)
        return;
    hwloc_bitmap_t set = saved;
    hwloc_set_cpubind(topo_sys, set, HWLOC_CPUBIND_THREAD);
    hwloc_bitmap_free(set);
}

int topo_current_pu(void)
{
    topo_model();
    if (topo_sys == NULL)
        return -1;
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (set == NULL)
        return -1;
    int pu = -1;
    if (hwloc_get_last_cpu_location(topo_sys, set, HWLOC_CPUBIND_THREAD) == 0)
        pu = hwloc_bitmap_first(set);
    hwloc_bitmap_free(set);
    return pu;
}

bool topo_pu_in_core(int pu, int core)
{
    hwloc_obj_t c = core_obj(core);
    return c != NULL && pu >= 0 && hwloc_bitmap_isset(c->cpuset, (unsigned)pu);
}
