/*
 * topology.c - reads cores and cache sizes through hwloc, once per process.
 */
#include <hwloc.h>
#include <pthread.h>

#include "topology/topology.h"

static plan_machine topo_cached;
static pthread_once_t topo_once = PTHREAD_ONCE_INIT;

/* The size of the first cache of `type` above a core (0 when hwloc has none). */
static uint64_t topo_cache(hwloc_topology_t t, hwloc_obj_type_t type)
{
    hwloc_obj_t o = hwloc_get_next_obj_by_type(t, type, NULL);
    return o != NULL && o->attr != NULL ? o->attr->cache.size : 0;
}

static void topo_load(void)
{
    plan_machine m = {1, 48u << 10, 2u << 20, 32u << 20};
    hwloc_topology_t t;
    if (hwloc_topology_init(&t) != 0)
        goto done;
    if (hwloc_topology_load(t) != 0) {
        hwloc_topology_destroy(t);
        goto done;
    }
    int cores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
    if (cores <= 0)
        cores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
    if (cores > 0)
        m.threads = cores;
    uint64_t c;
    if ((c = topo_cache(t, HWLOC_OBJ_L1CACHE)) != 0)
        m.l1d_bytes = c;
    if ((c = topo_cache(t, HWLOC_OBJ_L2CACHE)) != 0)
        m.l2_bytes = c;
    if ((c = topo_cache(t, HWLOC_OBJ_L3CACHE)) != 0)
        m.l3_bytes = c;
    hwloc_topology_destroy(t);
done:
    topo_cached = m;
}

void topo_machine(plan_machine *m)
{
    pthread_once(&topo_once, topo_load);
    *m = topo_cached;
}
