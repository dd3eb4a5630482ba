/*
 * keys.h - group keys as kernels see them (see keys.c).
 */
#ifndef DQO_KEYS_H
#define DQO_KEYS_H

#include "engine/engine_int.h"

/* Most components: every key column plus the merged pairs. */
#define KEY_MAX_COMP 64
/* Most key columns of one grouping. */
#define KEY_MAX_COLS 32

typedef struct key_comp {
    int col;                /* key column index in the input, -1 for a pair */
    dqo_type type;
    const uint8_t *valid;   /* the column's validity, NULL if none */
    bool has_null;          /* code 0 is NULL */
    int64_t base;           /* integer codes are value - base (+1 if NULLs) */
    unsigned bits, shift;   /* width in, and position in, the packed key */
    uint64_t *codes;        /* per-row codes while packing */
    bool densified;         /* codes are ranks into `distinct` (+1 when the
                               component has NULLs, which keep code 0) */
    int64_t *distinct;      /* sorted distinct pre-rank codes */
    bool merged_away;       /* part of a pair below */
    int child_hi, child_lo; /* a pair: code = hi << lo_bits | lo */
    unsigned lo_bits;
} key_comp;

typedef struct key_plan {
    int ncols;
    bool direct;             /* one non-NULL integer/string column as is */
    dqo_type key_type;       /* what the kernel sees: U32, I32 or I64 */
    const void *keys;
    dqo_column_stats stats;  /* of the kernel's key column */
    int64_t *packed;         /* owned: the packed key when not direct */
    int ncomp;
    key_comp comp[KEY_MAX_COMP];
} key_plan;

/* One output key column being decoded into. */
typedef struct key_out {
    int col;        /* the input column it decodes */
    void *data;     /* groups elements of the column's type */
    uint8_t *valid; /* groups bytes, preset to 1 */
} key_out;

/* Prepares the kernel's key column for key columns cols[0..ncols). On
 * failure kp holds nothing and the context has the error. */
dqo_status keys_plan(dqo_ctx *ctx, const dqo_table *t, const int *cols,
                     int ncols, key_plan *kp);
/* Decodes the kernel's group keys into one key_out per key column (outs in
 * key order, outs[i].col = cols[i]). */
void keys_decode(const key_plan *kp, const int64_t *gkeys, uint64_t groups,
                 key_out *outs);
void keys_free(key_plan *kp);

#endif /* DQO_KEYS_H */
