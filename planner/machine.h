/*
 * machine.h - the machine model and its calibration profile as plain values
 * (pure C: no hwloc, OpenCL or OpenMP here).
 *
 * topology/ fills a plan_model from hwloc (packages, NUMA nodes, cores,
 * caches, the OpenCL devices hwloc sees as OS devices with their PCI bus id
 * and NUMA locality); the engine attaches the OpenCL devices the ICD loader
 * enumerates, matched by PCI bus id; `dqo calibrate` fills each location's
 * plan_calib and topology/profile.c persists it. The planner costs granules
 * from these numbers (DESIGN.md "Cost and enumeration").
 *
 * Location ids, in this order: "cpu" (every core), "cpu:numaN" (the cores
 * and memory of NUMA node N, one per node, also on a one-node machine), then
 * "cl:N" (OpenCL devices in the ICD loader's order: platform by platform,
 * device by device).
 */
#ifndef DQO_PLANNER_MACHINE_H
#define DQO_PLANNER_MACHINE_H

#include <stdbool.h>
#include <stdint.h>

#define PLAN_MAX_LOCATIONS 32
#define PLAN_MAX_OSDEVS 16
#define PLAN_CALIB_MAX_BW 16   /* bandwidth points (thread counts) */
#define PLAN_CALIB_MAX_LAT 8   /* random-access working sets */
/* Kernel cost points: the CPU grid of cpu/calibrate.c is 6 kernels x 4
 * group counts x their datasets (about 60 points), the OpenCL grid 5
 * families x 4 group counts x 4 datasets at most (80): 128 fits both. */
#define PLAN_CALIB_MAX_KERN 128

typedef enum plan_loc_kind {
    PLAN_LOC_CPU = 0,  /* "cpu" */
    PLAN_LOC_NUMA = 1, /* "cpu:numaN" */
    PLAN_LOC_CL = 2    /* "cl:N" */
} plan_loc_kind;

/* How a location reaches host memory. */
typedef enum plan_link {
    PLAN_LINK_HOST = 0,   /* it is the host, or shares its memory (PoCL) */
    PLAN_LINK_PCIE = 1,   /* a PCI device with its own memory */
    PLAN_LINK_UNKNOWN = 2 /* a device whose PCI position is unknown */
} plan_link;

/* One kernel cost point: `ns_per_row` of `kernel` (a grp_kernel name) at
 * `rows` rows, `groups` groups and `threads` threads (OpenCL: compute
 * units), on a dataset that was `sorted` (keys clustered, ascending) or
 * not, and `sparse` (keys spread over the 32-bit range) or dense (keys
 * 0..groups-1). The planner interpolates in log(groups) between points of
 * the same kernel and dataset kind. */
typedef struct plan_kcost {
    char kernel[8];
    uint64_t rows, groups;
    int threads;
    double ns_per_row;
    uint8_t sorted, sparse;
} plan_kcost;

/* What `dqo calibrate` measured at one location; all zero when not. */
typedef struct plan_calib {
    bool valid;
    /* Sequential read bandwidth, GB/s (1e9 B/s), at bw_threads[i] threads
     * (OpenCL: one point, threads = compute units). */
    int nbw;
    int bw_threads[PLAN_CALIB_MAX_BW];
    double bw_gbs[PLAN_CALIB_MAX_BW];
    /* Random-access cost, ns per dependent access (CPU: pointer chasing on
     * one thread; OpenCL: ns per random read across the device), for a
     * working set of lat_bytes[i] named lat_level[i] ("L1", "L2", "LLC",
     * "DRAM"; OpenCL "local", "L2", "DRAM"). */
    int nlat;
    uint64_t lat_bytes[PLAN_CALIB_MAX_LAT];
    char lat_level[PLAN_CALIB_MAX_LAT][8];
    double lat_ns[PLAN_CALIB_MAX_LAT];
    /* Atomic add rate, million updates per second summed over all threads
     * (work-items): each to its own cache line, and all to one word. */
    double atomic_private_mops, atomic_shared_mops;
    /* Transfers between host memory and the device, GB/s (OpenCL only). */
    double h2d_pageable_gbs, h2d_pinned_gbs;
    double d2h_pageable_gbs, d2h_pinned_gbs;
    /* Enqueue-to-completion time of an empty kernel, microseconds. */
    double launch_us;
    int nkern;
    plan_kcost kern[PLAN_CALIB_MAX_KERN];
    double seconds; /* how long calibrating this location took */
} plan_calib;

typedef struct plan_location {
    char id[24];   /* "cpu", "cpu:numa0", "cl:0" */
    plan_loc_kind kind;
    char name[96]; /* CPU model, or the OpenCL device name */
    int numa;      /* NUMA node index; for a device the node nearest to it;
                      -1: the whole machine or unknown */
    int cores;     /* cpu: cores; cl: compute units */
    int pus;       /* cpu: hardware threads; cl: 0 */
    int first_core;    /* cpu:numaN: index of its first core (cores of a
                          node are consecutive in hwloc's order); else 0 */
    uint64_t mem_bytes; /* cpu: memory of the node(s); cl: global memory */
    uint64_t max_alloc; /* cl: largest single buffer; cpu: mem_bytes */
    /* cpu: L1d and L2 of one core, the last-level cache of one package.
     * cl: l1d = local memory per work-group, l2 = global memory cache,
     * l3 = 0. */
    uint64_t l1d, l2, l3;
    plan_link link;
    double link_gbs; /* PCIe nominal GB/s from hwloc; 0: unknown or host */
    char pci[16];    /* "0000:17:00.0", "" when none */
    int cl_platform, cl_device; /* cl: indices in the ICD enumeration */
    char osdev[16];  /* hwloc's OS device name ("opencl0d0"), "" if none */
    char driver[64]; /* cl: driver version; "" for cpu */
    char platform[64]; /* cl: the OpenCL platform's name */
    plan_calib calib;
} plan_location;

/* An OpenCL device as hwloc reports it (an OS device under a PCI device). */
typedef struct plan_osdev {
    char name[16];  /* "opencl0d0" */
    char model[96]; /* GPUModel info, "" when none */
    char pci[16];   /* its PCI parent's bus id, "" when none */
    int numa;       /* nearest NUMA node index, -1 unknown */
    double link_gbs;
    int platform, device; /* OpenCLPlatformIndex / OpenCLPlatformDeviceIndex */
    int compute_units;    /* OpenCLComputeUnits, 0 unknown */
    uint64_t mem_bytes;   /* OpenCLGlobalMemorySize, 0 unknown */
} plan_osdev;

typedef struct plan_model {
    int packages, numa_nodes, cores, pus;
    uint64_t mem_bytes;
    char cpu_name[96];
    /* "this system", "xml", "synthetic": only a model of this system
     * binds threads. */
    char source[16];
    bool this_system;
    int nosdev;
    plan_osdev osdev[PLAN_MAX_OSDEVS];
    int nloc;
    plan_location loc[PLAN_MAX_LOCATIONS];
} plan_model;

/* Index of the location with `id`, or -1. */
int plan_model_find(const plan_model *m, const char *id);

/* The best sequential read bandwidth calibrated at location `l` (GB/s, 0
 * when not calibrated), and the bandwidth at `threads` threads
 * (interpolated between calibrated points, 0 when not calibrated). */
double plan_calib_peak_bw(const plan_calib *c);
double plan_calib_bw_at(const plan_calib *c, int threads);

#endif /* DQO_PLANNER_MACHINE_H */
