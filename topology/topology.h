/*
 * topology.h - the machine model read from hwloc, thread placement, and the
 * calibration profile file. topology/ is the only folder that includes
 * hwloc.h; nothing here exposes an hwloc type.
 */
#ifndef DQO_TOPOLOGY_H
#define DQO_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "planner/machine.h"
#include "planner/planner.h"

/* ------------------------------------------------------------ the model */

/* This system's model, loaded once per process with I/O devices kept
 * (hwloc itself honours HWLOC_XMLFILE and HWLOC_SYNTHETIC, and then the
 * model is not "this system"). Holds the "cpu" and "cpu:numaN" locations
 * and the OpenCL OS devices hwloc saw; "cl:N" locations are attached by the
 * engine (plan_model_attach_cl in engine/machine.c). Never NULL: when hwloc
 * fails the model is one core with default caches. Owned by topology/. */
const plan_model *topo_model(void);

/* Loads a model from an hwloc XML file (xml != NULL) or a synthetic
 * description such as "pack:2 numa:2 core:8 pu:1" (for tests). When the
 * XML holds OpenCL OS devices, "cl:N" locations are made from them (in
 * hwloc's platform/device order). Returns 0, or -1 with `err` filled. */
int topo_model_from(const char *xml, const char *synthetic, plan_model *out,
                    char *err, size_t errlen);

/* The rule's summary of this system (cores, cache sizes). */
void topo_machine(plan_machine *m);

/* ------------------------------------------------------------ placement */

/* Whether dqo binds its worker threads: the model is this system, it has
 * more than one PU, the user set neither OMP_PLACES nor OMP_PROC_BIND
 * (then the OpenMP runtime places threads as asked), and DQO_BIND is not
 * "0". */
bool topo_can_bind(void);

/* The core (0..cores-1 in hwloc's order) worker `t` of `nthreads` runs on:
 * spread evenly, so fewer threads than cores span every package and NUMA
 * node; with more threads than cores, round-robin. */
int topo_core_of_thread(int t, int nthreads);

/* Binds the calling thread to `core` of this system. Returns 0, -1 when
 * binding is not possible (then nothing changed). */
int topo_bind_self(int core);

/* The NUMA node index of `core` (0 when unknown). */
int topo_core_numa(int core);

/* Saves the calling thread's binding; topo_binding_restore puts it back and
 * frees the saved state (NULL: nothing saved, does nothing). Caller owns the
 * returned pointer until restore. */
void *topo_binding_save(void);
void topo_binding_restore(void *saved);

/* The PU the calling thread runs on now (-1 unknown), and whether that PU
 * belongs to `core`: what the placement tests check. */
int topo_current_pu(void);
bool topo_pu_in_core(int pu, int core);

/* ----------------------------------------------------- calibration file */

#define TOPO_PROFILE_FORMAT 1

typedef enum topo_profile_status {
    TOPO_PROFILE_OK = 0,
    TOPO_PROFILE_MISSING = 1, /* no file */
    TOPO_PROFILE_STALE = 2,   /* another format, dqo version or machine */
    TOPO_PROFILE_CORRUPT = 3  /* unreadable, truncated, bad checksum */
} topo_profile_status;

/* A 64-bit fingerprint of what calibration depends on: CPU model,
 * packages, NUMA nodes, cores, PUs, caches, and each OpenCL location's
 * name, driver and PCI id (not the memory size, which moves in VMs). */
uint64_t topo_fingerprint(const plan_model *m);

/* The profile path: $DQO_PROFILE when set, else
 * $XDG_CACHE_HOME/dqo/profile-<fingerprint>.txt (fallback
 * ~/.cache/dqo/). Returns 0, -1 when no directory can be named. */
int topo_profile_path(const plan_model *m, char *buf, size_t n);

/* Writes every location's calibration to `path` (text, versioned, with a
 * checksum line), creating the directory. Returns 0 or -1 with err. */
int topo_profile_write(const char *path, const plan_model *m, char *err,
                       size_t errlen);

/* Reads `path` into the calib of the locations of `m` with matching ids.
 * On anything but OK, `m`'s calibration is left untouched and `why` says
 * what is wrong, ready for a warning. */
topo_profile_status topo_profile_read(const char *path, plan_model *m,
                                      char *why, size_t whylen);

#endif /* DQO_TOPOLOGY_H */
