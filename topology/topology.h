/*
 * topology.h - the machine model, read from hwloc (the only folder that
 * includes hwloc.h). This first version answers what the kernel rule needs:
 * cores and cache sizes. NUMA nodes, OpenCL devices and location ids come
 * with the topology issue.
 */
#ifndef DQO_TOPOLOGY_H
#define DQO_TOPOLOGY_H

#include "planner/planner.h"

/* Fills m from the hwloc topology (loaded once per process; honours
 * HWLOC_XMLFILE and HWLOC_SYNTHETIC). Fields hwloc cannot tell are left at
 * conservative defaults (48 KiB L1d, 2 MiB L2, 32 MiB L3, 1 core). */
void topo_machine(plan_machine *m);

#endif /* DQO_TOPOLOGY_H */
