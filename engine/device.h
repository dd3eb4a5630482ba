/*
 * device.h - the engine's device side (engine/device.c): location ids of
 * queries, resident tables, and merging a device's partial results.
 */
#ifndef DQO_ENGINE_DEVICE_H
#define DQO_ENGINE_DEVICE_H

#include "engine/engine_int.h"

#define ENGINE_LOC_AUTO (-2)
#define ENGINE_LOC_CPU (-1)

/* "auto" -> ENGINE_LOC_AUTO, "cpu" -> ENGINE_LOC_CPU, "cl:N" -> N (checked
 * against the machine model: an unknown device is DQO_ENOTFOUND with a
 * message naming the known locations, or saying that no OpenCL platform
 * exists). */
dqo_status engine_parse_location(dqo_ctx *ctx, const char *loc, int *device);

/* Folds the equal keys of a device's partial output `go` (nlow lowered
 * aggregates `low`) on the CPU; `go` is replaced by the merged output. */
dqo_status engine_merge_partial(dqo_ctx *ctx, const grp_agg *low, int nlow,
                                int threads, grp_output *go);

#endif /* DQO_ENGINE_DEVICE_H */
