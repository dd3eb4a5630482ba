/*
 * status.c - names and messages of statuses, types, aggregates and kernels,
 * all generated from their X-macro lists, and the version calls.
 */
#include <strings.h>

#include "engine/engine_int.h"

int dqo_version(void) { return DQO_VERSION_NUMBER; }

const char *dqo_version_string(void) { return DQO_VERSION_STRING; }

const char *dqo_status_name(dqo_status s)
{
    switch (s) {
#define DQO_STATUS_NAME_(name, msg)                                            \
    case DQO_##name: return "DQO_" #name;
        DQO_STATUS_LIST(DQO_STATUS_NAME_)
#undef DQO_STATUS_NAME_
    default: return "DQO_UNKNOWN";
    }
}

const char *dqo_status_str(dqo_status s)
{
    switch (s) {
#define DQO_STATUS_STR_(name, msg)                                             \
    case DQO_##name: return msg;
        DQO_STATUS_LIST(DQO_STATUS_STR_)
#undef DQO_STATUS_STR_
    default: return "unknown status";
    }
}

static const char *const type_names[DQO_TYPE_COUNT_] = {"u32", "i32", "i64",
                                                        "f64", "str"};

const char *dqo_type_name(dqo_type t)
{
    return (unsigned)t < DQO_TYPE_COUNT_ ? type_names[t] : "unknown";
}

dqo_status dqo_type_parse(const char *name, dqo_type *out)
{
    if (name == NULL || out == NULL)
        return DQO_EINVAL;
    for (int t = 0; t < DQO_TYPE_COUNT_; t++) {
        if (strcasecmp(name, type_names[t]) == 0) {
            *out = (dqo_type)t;
            return DQO_OK;
        }
    }
    return DQO_EINVAL;
}

size_t type_width(dqo_type t)
{
    switch (t) {
    case DQO_TYPE_I64:
    case DQO_TYPE_F64: return 8;
    default: return 4;
    }
}

static const char *const agg_names[DQO_AGG_COUNT_] = {
    "count_star", "count", "sum", "min", "max", "avg"};

const char *dqo_agg_name(dqo_agg a)
{
    return (unsigned)a < DQO_AGG_COUNT_ ? agg_names[a] : "unknown";
}

static const char *const kernel_names[GRP_KERNEL_COUNT_ + 1] = {
#define GRP_KERNEL_NAME_(e, name, what) name,
    GRP_KERNEL_LIST(GRP_KERNEL_NAME_)
#undef GRP_KERNEL_NAME_
        NULL};

const char *grp_kernel_name(grp_kernel k)
{
    return (unsigned)k < GRP_KERNEL_COUNT_ ? kernel_names[k] : "unknown";
}

int grp_kernel_parse(const char *name)
{
    for (int k = 0; name != NULL && k < GRP_KERNEL_COUNT_; k++)
        if (strcasecmp(name, kernel_names[k]) == 0)
            return k;
    return -1;
}

const char *const *dqo_group_kernels(void) { return kernel_names; }
