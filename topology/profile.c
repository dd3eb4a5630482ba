/*
 * profile.c - the calibration profile: a versioned text file per machine.
 *
 * Named by a fingerprint of the topology (CPU model, cores, caches, memory,
 * OpenCL devices and drivers) under $XDG_CACHE_HOME/dqo/ (or ~/.cache/dqo/),
 * or wherever $DQO_PROFILE points. One block per location id; the last line
 * is an FNV-1a checksum of everything before it, so a truncated or edited
 * file is caught. A file of another format, another dqo version or another
 * machine's fingerprint is stale. A bad profile is never fatal: the caller
 * warns and plans from topology-derived defaults.
 *
 * A kern line is NAME ROWS GROUPS THREADS NS_PER_ROW SORTED SPARSE (the
 * dataset's flags, 0 or 1). Profiles written before the flags existed have
 * the first five fields only; they still load, with the datasets those
 * calibrations used (og and sog sorted, all dense).
 *
 *   dqo-profile 1
 *   dqo-version 0.1.0
 *   fingerprint 1f2e3d4c5b6a7988
 *   created 2026-11-23T10:00:00Z
 *   location cpu
 *   seconds 21.4
 *   bw 1 8.7
 *   lat L1 24576 1.3
 *   atomic 812.5 61.0
 *   xfer 0 0 0 0
 *   launch 0
 *   kern sphg 4000000 1000 16 0.41 0 0
 *   end
 *   checksum 0123456789abcdef
 */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dqo.h"
#include "engine/alloc.h"
#include "topology/topology.h"

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= FNV_PRIME;
    }
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
    return fnv(h, s, strlen(s) + 1);
}

uint64_t topo_fingerprint(const plan_model *m)
{
    char buf[256];
    uint64_t h = fnv_str(FNV_OFFSET, m->cpu_name);
    /* Not the memory size: in a VM it moves (ballooning, cgroup limits)
     * between two runs on the same machine. */
    snprintf(buf, sizeof buf, "%d %d %d %d", m->packages, m->numa_nodes,
             m->cores, m->pus);
    h = fnv_str(h, buf);
    for (int i = 0; i < m->nloc; i++) {
        const plan_location *l = &m->loc[i];
        if (l->kind == PLAN_LOC_CL) {
            snprintf(buf, sizeof buf, "%s|%s|%s|%s", l->id, l->name,
                     l->driver, l->pci);
        } else {
            snprintf(buf, sizeof buf, "%s|%d|%" PRIu64 "|%" PRIu64 "|%" PRIu64,
                     l->id, l->cores, l->l1d, l->l2, l->l3);
        }
        h = fnv_str(h, buf);
    }
    return h;
}

int topo_profile_path(const plan_model *m, char *buf, size_t n)
{
    const char *env = getenv("DQO_PROFILE");
    if (env != NULL && *env != '\0') {
        snprintf(buf, n, "%s", env);
        return 0;
    }
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    uint64_t fp = topo_fingerprint(m);
    int w;
    if (xdg != NULL && xdg[0] == '/')
        w = snprintf(buf, n, "%s/dqo/profile-%016" PRIx64 ".txt", xdg, fp);
    else if (home != NULL && *home != '\0')
        w = snprintf(buf, n, "%s/.cache/dqo/profile-%016" PRIx64 ".txt", home, fp);
    else
        return -1;
    return w > 0 && (size_t)w < n ? 0 : -1;
}

/* mkdir -p of the directory part of `path`. */
static int make_parent(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(dir, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* Appends printf output to a growing buffer; returns -1 when full. */
typedef struct outbuf {
    char *p;
    size_t len, cap;
} outbuf;

static int put(outbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int put(outbuf *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= o->cap - o->len)
        return -1;
    o->len += (size_t)w;
    return 0;
}

static int put_calib(outbuf *o, const plan_location *l)
{
    const plan_calib *c = &l->calib;
    int r = put(o, "location %s\nseconds %.3f\n", l->id, c->seconds);
    for (int i = 0; i < c->nbw && r == 0; i++)
        r = put(o, "bw %d %.4f\n", c->bw_threads[i], c->bw_gbs[i]);
    for (int i = 0; i < c->nlat && r == 0; i++)
        r = put(o, "lat %s %" PRIu64 " %.6g\n", c->lat_level[i], c->lat_bytes[i],
                c->lat_ns[i]);
    if (r == 0)
        r = put(o, "atomic %.3f %.3f\nxfer %.4f %.4f %.4f %.4f\nlaunch %.3f\n",
                c->atomic_private_mops, c->atomic_shared_mops,
                c->h2d_pageable_gbs, c->h2d_pinned_gbs, c->d2h_pageable_gbs,
                c->d2h_pinned_gbs, c->launch_us);
    for (int i = 0; i < c->nkern && r == 0; i++)
        r = put(o, "kern %s %" PRIu64 " %" PRIu64 " %d %.6g %d %d\n",
                c->kern[i].kernel, c->kern[i].rows, c->kern[i].groups,
                c->kern[i].threads, c->kern[i].ns_per_row, c->kern[i].sorted,
                c->kern[i].sparse);
    return r == 0 ? put(o, "end\n") : r;
}

int topo_profile_write(const char *path, const plan_model *m, char *err,
                       size_t errlen)
{
    /* A location block: about 1 KiB plus up to PLAN_CALIB_MAX_KERN kern
     * lines of at most ~80 bytes. */
    size_t cap = 4096 + (size_t)m->nloc * (2048 + PLAN_CALIB_MAX_KERN * 96);
    outbuf o = {mem_alloc(cap), 0, cap};
    if (o.p == NULL) {
        snprintf(err, errlen, "out of memory writing the profile");
        return -1;
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int r = put(&o, "dqo-profile %d\ndqo-version %s\nfingerprint %016" PRIx64
                    "\ncreated %s\n",
                TOPO_PROFILE_FORMAT, DQO_VERSION_STRING, topo_fingerprint(m), when);
    for (int i = 0; i < m->nloc && r == 0; i++)
        if (m->loc[i].calib.valid)
            r = put_calib(&o, &m->loc[i]);
    if (r == 0)
        r = put(&o, "checksum %016" PRIx64 "\n", fnv(FNV_OFFSET, o.p, o.len));
    if (r != 0) {
        snprintf(err, errlen, "profile too large");
        mem_free(o.p);
        return -1;
    }
    if (make_parent(path) != 0) {
        snprintf(err, errlen, "cannot create the directory of %s: %s", path,
                 strerror(errno));
        mem_free(o.p);
        return -1;
    }
    /* Write a temporary file, then rename: a reader never sees half. */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fwrite(o.p, 1, o.len, f) != o.len || fclose(f) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        if (f != NULL)
            remove(tmp);
        mem_free(o.p);
        return -1;
    }
    mem_free(o.p);
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path,
                 strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

/* Parses one location block's line into c; returns 0, -1 when malformed. */
static int parse_line(const char *line, plan_calib *c)
{
    char w[16], s[8];
    if (sscanf(line, "%15s", w) != 1)
        return -1;
    if (strcmp(w, "seconds") == 0)
        return sscanf(line, "seconds %lf", &c->seconds) == 1 ? 0 : -1;
    if (strcmp(w, "bw") == 0) {
        if (c->nbw >= PLAN_CALIB_MAX_BW ||
            sscanf(line, "bw %d %lf", &c->bw_threads[c->nbw], &c->bw_gbs[c->nbw]) != 2)
            return -1;
        c->nbw++;
        return 0;
    }
    if (strcmp(w, "lat") == 0) {
        if (c->nlat >= PLAN_CALIB_MAX_LAT ||
            sscanf(line, "lat %7s %" SCNu64 " %lf", s, &c->lat_bytes[c->nlat],
                   &c->lat_ns[c->nlat]) != 3)
            return -1;
        memcpy(c->lat_level[c->nlat], s, sizeof s);
        c->nlat++;
        return 0;
    }
    if (strcmp(w, "atomic") == 0)
        return sscanf(line, "atomic %lf %lf", &c->atomic_private_mops,
                      &c->atomic_shared_mops) == 2 ? 0 : -1;
    if (strcmp(w, "xfer") == 0)
        return sscanf(line, "xfer %lf %lf %lf %lf", &c->h2d_pageable_gbs,
                      &c->h2d_pinned_gbs, &c->d2h_pageable_gbs,
                      &c->d2h_pinned_gbs) == 4 ? 0 : -1;
    if (strcmp(w, "launch") == 0)
        return sscanf(line, "launch %lf", &c->launch_us) == 1 ? 0 : -1;
    if (strcmp(w, "kern") == 0) {
        if (c->nkern >= PLAN_CALIB_MAX_KERN)
            return -1;
        plan_kcost *k = &c->kern[c->nkern];
        int sorted = 0, sparse = 0, n = 0;
        const int got = sscanf(line, "kern %7s %" SCNu64 " %" SCNu64 " %d %lf %d %d %n",
                               k->kernel, &k->rows, &k->groups, &k->threads,
                               &k->ns_per_row, &sorted, &sparse, &n);
        if (got == 5) {
            /* The first format's points: og and sog ran on sorted dense
             * keys, the others on unsorted dense keys. */
            sorted = strcmp(k->kernel, "og") == 0 || strcmp(k->kernel, "sog") == 0;
            sparse = 0;
        } else if (got != 7 || line[n] != '\0' || sorted < 0 || sorted > 1 ||
                   sparse < 0 || sparse > 1) {
            return -1;
        }
        k->sorted = (uint8_t)sorted;
        k->sparse = (uint8_t)sparse;
        c->nkern++;
        return 0;
    }
    return -1;
}

topo_profile_status topo_profile_read(const char *path, plan_model *m,
                                      char *why, size_t whylen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(why, whylen, "no calibration profile for this machine (%s)", path);
        return TOPO_PROFILE_MISSING;
    }
    /* Profiles are small; more than 1 MiB is not one of ours. */
    size_t cap = 1u << 20;
    char *text = mem_alloc(cap + 1);
    size_t len = text != NULL ? fread(text, 1, cap + 1, f) : 0;
    int rd_err = ferror(f);
    fclose(f);
    if (text == NULL || rd_err || len > cap) {
        mem_free(text);
        snprintf(why, whylen, "calibration profile %s is unreadable or too large",
                 path);
        return TOPO_PROFILE_CORRUPT;
    }
    text[len] = '\0';
    topo_profile_status st = TOPO_PROFILE_CORRUPT;
    plan_calib *tmp = mem_calloc((size_t)PLAN_MAX_LOCATIONS, sizeof *tmp);
    if (tmp == NULL) {
        mem_free(text);
        snprintf(why, whylen, "out of memory reading %s", path);
        return TOPO_PROFILE_CORRUPT;
    }

    /* The checksum line covers every byte before it. */
    char *ck = strstr(text, "checksum ");
    while (ck != NULL && ck != text && ck[-1] != '\n')
        ck = strstr(ck + 1, "checksum ");
    uint64_t want;
    if (ck == NULL || sscanf(ck, "checksum %" SCNx64, &want) != 1 ||
        fnv(FNV_OFFSET, text, (size_t)(ck - text)) != want) {
        snprintf(why, whylen,
                 "calibration profile %s is corrupt (checksum missing or wrong)",
                 path);
        goto done;
    }
    *ck = '\0';

    int format = 0;
    char version[32] = "";
    uint64_t fp = 0;
    int cur = -1;         /* location index of the open block */
    bool in_block = false;
    int lineno = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        lineno++;
        char id[32];
        if (lineno == 1) {
            if (sscanf(line, "dqo-profile %d", &format) != 1) {
                snprintf(why, whylen, "%s is not a dqo calibration profile", path);
                goto done;
            }
            if (format != TOPO_PROFILE_FORMAT) {
                snprintf(why, whylen,
                         "calibration profile %s has format %d, this dqo reads "
                         "%d: stale, run `dqo calibrate`",
                         path, format, TOPO_PROFILE_FORMAT);
                st = TOPO_PROFILE_STALE;
                goto done;
            }
        } else if (!in_block && sscanf(line, "dqo-version %31s", version) == 1) {
        } else if (!in_block && sscanf(line, "fingerprint %" SCNx64, &fp) == 1) {
        } else if (!in_block && strncmp(line, "created ", 8) == 0) {
        } else if (!in_block && sscanf(line, "location %31s", id) == 1) {
            in_block = true;
            cur = plan_model_find(m, id); /* -1: a location not here, skipped */
        } else if (in_block && strcmp(line, "end") == 0) {
            if (cur >= 0)
                tmp[cur].valid = true;
            in_block = false;
        } else if (in_block) {
            plan_calib scratch;
            memset(&scratch, 0, sizeof scratch);
            if (parse_line(line, cur >= 0 ? &tmp[cur] : &scratch) != 0) {
                snprintf(why, whylen,
                         "calibration profile %s is corrupt (line %d: \"%.40s\")",
                         path, lineno, line);
                goto done;
            }
        } else {
            snprintf(why, whylen,
                     "calibration profile %s is corrupt (line %d: \"%.40s\")",
                     path, lineno, line);
            goto done;
        }
    }
    if (in_block || format == 0) {
        snprintf(why, whylen, "calibration profile %s is truncated", path);
        goto done;
    }
    if (fp != topo_fingerprint(m)) {
        snprintf(why, whylen,
                 "calibration profile %s was made on another machine or "
                 "hardware (fingerprint %016" PRIx64 ", this one %016" PRIx64
                 "): stale, run `dqo calibrate`",
                 path, fp, topo_fingerprint(m));
        st = TOPO_PROFILE_STALE;
        goto done;
    }
    /* Kernels change between minor versions: their costs go stale. */
    int vmaj = -1, vmin = -1;
    if (sscanf(version, "%d.%d", &vmaj, &vmin) != 2 ||
        vmaj != DQO_VERSION_MAJOR || vmin != DQO_VERSION_MINOR) {
        snprintf(why, whylen,
                 "calibration profile %s was made by dqo %s, this is %s: "
                 "stale, run `dqo calibrate`",
                 path, version[0] ? version : "?", DQO_VERSION_STRING);
        st = TOPO_PROFILE_STALE;
        goto done;
    }
    for (int i = 0; i < m->nloc; i++)
        if (tmp[i].valid)
            m->loc[i].calib = tmp[i];
    why[0] = '\0';
    st = TOPO_PROFILE_OK;
done:
    mem_free(tmp);
    mem_free(text);
    return st;
}
