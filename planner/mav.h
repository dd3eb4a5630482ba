/*
 * mav.h - materialised algorithmic views: optimised sub-plans cached by
 * logical shape, property class and location set, persisted in a text file
 * next to the calibration profile, reused across queries and runs (pure C,
 * stdio only).
 *
 * The planner makes the key (plan.c: "shape | property class | locations
 * | cost model | mode") and the value (its granule choices, an opaque
 * string to this module). On a hit it rebuilds the plan from the value
 * without enumerating, and EXPLAIN says so.
 *
 * File format (version 1), one entry per line after a header:
 *   dqo-mav 1
 *   entry <hits> <created-unix-seconds> <key>\t<value>
 *   end <count> <checksum: 16 hex digits, FNV-1a 64 over the entry lines>
 * A file that does not parse, or whose count or checksum disagrees, is
 * ignored with a warning (the cache starts empty and the next store
 * rewrites it). Writes go to a temporary file renamed into place.
 */
#ifndef DQO_PLANNER_MAV_H
#define DQO_PLANNER_MAV_H

#include <stdbool.h>
#include <stdint.h>

#include "dqo.h"

#define MAV_KEY_MAX 256
#define MAV_VALUE_MAX 512

typedef struct mav_cache mav_cache;

typedef struct mav_entry {
    char key[MAV_KEY_MAX];
    char value[MAV_VALUE_MAX];
    uint64_t hits;
    int64_t created; /* unix seconds */
} mav_entry;

/* Opens the cache at `path` (NULL: in memory only, never persisted),
 * loading what the file holds. A missing file is an empty cache; a corrupt
 * one is an empty cache with a warning written to warn ("" otherwise).
 * NULL only when out of memory. */
mav_cache *mav_open(const char *path, char *warn, int warnlen);
void mav_close(mav_cache *m);

/* Looks `key` up; on a hit copies the value, counts the hit (persisted
 * with the next store or mav_flush) and returns true. */
bool mav_lookup(mav_cache *m, const char *key, char *value, int vlen);
/* Adds or replaces an entry and writes the file. DQO_EINVAL for a key or
 * value too long or holding a tab or newline; DQO_EIO when the file cannot
 * be written (the entry stays in memory). */
dqo_status mav_store(mav_cache *m, const char *key, const char *value);
/* Writes the file when hits changed since the last write. */
dqo_status mav_flush(mav_cache *m);
/* Number of entries and the i-th (in insertion order). */
int mav_count(const mav_cache *m);
const mav_entry *mav_get(const mav_cache *m, int i);
/* Empties the cache and removes the file. */
dqo_status mav_clear(mav_cache *m);
/* The path given to mav_open, or "" for an in-memory cache. */
const char *mav_path(const mav_cache *m);

#endif /* DQO_PLANNER_MAV_H */
