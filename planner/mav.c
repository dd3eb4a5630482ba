/*
 * mav.c - the cache of materialised algorithmic views (see mav.h for the
 * contract and the file format): a small array of entries in insertion
 * order, loaded whole at open and written whole at every store.
 *
 * Why whole-file writes: the cache holds a few hundred entries at most (one
 * per query shape, property class and location set seen on this machine),
 * so rewriting it costs microseconds, and writing a temporary file that is
 * renamed over the old one means a reader never sees half a file, even when
 * the writer dies. A file that does not parse exactly is never repaired
 * line by line: the cache starts empty, says why, and the next store
 * replaces the file with a clean one. Losing cached plans costs only
 * planning time; trusting a damaged one could cost a wrong plan. Two
 * processes storing at the same moment share the name "<path>.tmp" and may
 * interleave their writes; the checksum turns that rare race into the same
 * warning and rewrite, never into a wrong plan.
 *
 * The checksum is FNV-1a 64 (Fowler, Noll, Vo; offset basis
 * 14695981039346656037, prime 1099511628211) over the bytes of every entry
 * line including its newline, in file order. Pure C: stdio and stdlib only.
 */
#include "planner/mav.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAV_HEADER "dqo-mav 1\n"
#define FNV_OFFSET UINT64_C(14695981039346656037)
#define FNV_PRIME UINT64_C(1099511628211)
/* The longest entry line: "entry ", two 20-digit numbers and their spaces,
 * the key, the tab, the value and the newline, rounded up. */
#define MAV_LINE_MAX (6 + 2 * 21 + MAV_KEY_MAX + MAV_VALUE_MAX + 16)

struct mav_cache {
    char *path; /* NULL: in memory only */
    mav_entry *e;
    int n, cap;
    bool dirty; /* hits changed since the file was last written */
};

static uint64_t fnv1a(uint64_t h, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= FNV_PRIME;
    }
    return h;
}

static void set_warn(char *warn, int warnlen, const char *fmt, ...)
{
    if (warn == NULL || warnlen <= 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(warn, (size_t)warnlen, fmt, ap);
    va_end(ap);
}

/* A key must be non-empty; keys and values fit their arrays and hold no
 * tab (the separator) and no line break (the record end). */
static bool text_ok(const char *s, size_t max, bool empty_ok)
{
    if (s == NULL)
        return false;
    size_t len = strlen(s);
    if (len >= max || (len == 0 && !empty_ok))
        return false;
    return strpbrk(s, "\t\r\n") == NULL;
}

static int find(const mav_cache *m, const char *key)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->e[i].key, key) == 0)
            return i;
    return -1;
}

/* Appends an entry; false when out of memory. */
static bool push(mav_cache *m, const mav_entry *e)
{
    if (m->n == m->cap) {
        int cap = m->cap != 0 ? m->cap * 2 : 16;
        mav_entry *v = realloc(m->e, (size_t)cap * sizeof *v);
        if (v == NULL)
            return false;
        m->e = v;
        m->cap = cap;
    }
    m->e[m->n++] = *e;
    return true;
}

/* ----------------------------------------------------------------- loading */

/* Reads the whole file into a NUL-terminated buffer (caller frees). NULL
 * with *missing set when there is no file; NULL otherwise on a read error
 * (message in warn). *len receives the byte count. */
static char *slurp(const char *path, size_t *len, bool *missing, char *warn,
                   int warnlen)
{
    *missing = false;
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (errno == ENOENT)
            *missing = true;
        else
            set_warn(warn, warnlen,
                     "cannot read MAV cache %s: %s; "
                     "starting empty",
                     path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1)
            break;
        char *b = realloc(buf, cap * 2);
        if (b == NULL) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = b;
        cap *= 2;
    }
    if (buf != NULL && ferror(f)) {
        set_warn(warn, warnlen, "cannot read MAV cache %s; starting empty",
                 path);
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf != NULL)
        buf[n] = '\0';
    *len = n;
    return buf;
}

/* Parses "<hits> <created> <key>\t<value>" (the text after "entry "). */
static bool parse_entry(char *s, mav_entry *e)
{
    char *end;
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    unsigned long long hits = strtoull(s, &end, 10);
    if (errno != 0 || *end != ' ')
        return false;
    s = end + 1;
    if (!((*s >= '0' && *s <= '9') || *s == '-'))
        return false;
    long long created = strtoll(s, &end, 10);
    if (errno != 0 || *end != ' ')
        return false;
    char *key = end + 1, *tab = strchr(key, '\t');
    if (tab == NULL)
        return false;
    *tab = '\0';
    const char *value = tab + 1;
    if (!text_ok(key, MAV_KEY_MAX, false) ||
        !text_ok(value, MAV_VALUE_MAX, true))
        return false;
    memset(e, 0, sizeof *e);
    strcpy(e->key, key);
    strcpy(e->value, value);
    e->hits = hits;
    e->created = created;
    return true;
}

/* Parses "end <count> <16 hex digits>" and checks both against the entries
 * read; the end line must be the last thing in the file. */
static bool parse_end(const char *s, int count, uint64_t sum, bool last)
{
    char *end;
    if (*s < '0' || *s > '9' || !last)
        return false;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno != 0 || *end != ' ' || n != (unsigned long long)count)
        return false;
    const char *hex = end + 1;
    if (strlen(hex) != 16 || strspn(hex, "0123456789abcdef") != 16)
        return false;
    return strtoull(hex, NULL, 16) == sum;
}

/* Parses the file's text into m; on failure says which line is wrong. */
static bool parse_file(mav_cache *m, char *text, size_t len, int *bad_line)
{
    *bad_line = 1;
    if (strlen(text) != len ||
        strncmp(text, MAV_HEADER, strlen(MAV_HEADER)) != 0)
        return false;
    char *p = text + strlen(MAV_HEADER);
    uint64_t sum = FNV_OFFSET;
    for (int line = 2;; line++) {
        *bad_line = line;
        char *nl = strchr(p, '\n');
        if (nl == NULL || nl - p >= MAV_LINE_MAX)
            return false; /* truncated, or a line no writer makes */
        *nl = '\0';
        if (strncmp(p, "end ", 4) == 0)
            return parse_end(p + 4, m->n, sum, nl[1] == '\0');
        mav_entry e;
        if (strncmp(p, "entry ", 6) != 0)
            return false;
        size_t n = (size_t)(nl - p);
        *nl = '\n';
        sum = fnv1a(sum, p, n + 1);
        *nl = '\0';
        if (!parse_entry(p + 6, &e) || find(m, e.key) >= 0 || !push(m, &e))
            return false;
        p = nl + 1;
    }
}

mav_cache *mav_open(const char *path, char *warn, int warnlen)
{
    set_warn(warn, warnlen, "%s", "");
    mav_cache *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    if (path == NULL)
        return m;
    m->path = malloc(strlen(path) + 1);
    if (m->path == NULL) {
        free(m);
        return NULL;
    }
    strcpy(m->path, path);
    size_t len = 0;
    bool missing;
    char *text = slurp(path, &len, &missing, warn, warnlen);
    if (text == NULL)
        return m;
    int bad_line;
    if (!parse_file(m, text, len, &bad_line)) {
        m->n = 0;
        set_warn(warn, warnlen,
                 "MAV cache %s is corrupt (line %d); "
                 "ignoring it, it is rewritten at the next store",
                 path, bad_line);
    }
    free(text);
    return m;
}

void mav_close(mav_cache *m)
{
    if (m == NULL)
        return;
    free(m->e);
    free(m->path);
    free(m);
}

/* ----------------------------------------------------------------- writing */

static bool write_entries(const mav_cache *m, FILE *f)
{
    uint64_t sum = FNV_OFFSET;
    char line[MAV_LINE_MAX + 1];
    if (fputs(MAV_HEADER, f) == EOF)
        return false;
    for (int i = 0; i < m->n; i++) {
        const mav_entry *e = &m->e[i];
        int n = snprintf(line, sizeof line,
                         "entry %" PRIu64 " %" PRId64 " %s\t%s\n", e->hits,
                         e->created, e->key, e->value);
        if (n < 0 || (size_t)n >= sizeof line)
            return false;
        sum = fnv1a(sum, line, (size_t)n);
        if (fputs(line, f) == EOF)
            return false;
    }
    return fprintf(f, "end %d %016" PRIx64 "\n", m->n, sum) > 0;
}

/* Writes the whole cache to "<path>.tmp" and renames it into place. */
static dqo_status write_file(mav_cache *m)
{
    if (m->path == NULL) {
        m->dirty = false;
        return DQO_OK;
    }
    size_t len = strlen(m->path);
    char *tmp = malloc(len + 5);
    if (tmp == NULL)
        return DQO_ENOMEM;
    memcpy(tmp, m->path, len);
    memcpy(tmp + len, ".tmp", 5);
    dqo_status st = DQO_EIO;
    FILE *f = fopen(tmp, "wb");
    if (f != NULL) {
        bool ok = write_entries(m, f);
        ok = fclose(f) == 0 && ok;
        if (ok && rename(tmp, m->path) == 0)
            st = DQO_OK;
        else
            remove(tmp);
    }
    free(tmp);
    if (st == DQO_OK)
        m->dirty = false;
    return st;
}

bool mav_lookup(mav_cache *m, const char *key, char *value, int vlen)
{
    if (m == NULL || key == NULL)
        return false;
    int i = find(m, key);
    if (i < 0)
        return false;
    if (value != NULL && vlen > 0)
        snprintf(value, (size_t)vlen, "%s", m->e[i].value);
    m->e[i].hits++;
    m->dirty = true;
    return true;
}

/* A replaced entry keeps its place but starts afresh (hits 0, created now):
 * it is a new plan for the same shape. */
dqo_status mav_store(mav_cache *m, const char *key, const char *value)
{
    if (m == NULL || !text_ok(key, MAV_KEY_MAX, false) ||
        !text_ok(value, MAV_VALUE_MAX, true))
        return DQO_EINVAL;
    mav_entry e;
    memset(&e, 0, sizeof e);
    strcpy(e.key, key);
    strcpy(e.value, value);
    e.created = (int64_t)time(NULL);
    int i = find(m, key);
    if (i >= 0)
        m->e[i] = e;
    else if (!push(m, &e))
        return DQO_ENOMEM;
    return write_file(m);
}

dqo_status mav_flush(mav_cache *m)
{
    if (m == NULL)
        return DQO_EINVAL;
    return m->dirty ? write_file(m) : DQO_OK;
}

int mav_count(const mav_cache *m)
{
    return m != NULL ? m->n : 0;
}

const mav_entry *mav_get(const mav_cache *m, int i)
{
    if (m == NULL || i < 0 || i >= m->n)
        return NULL;
    return &m->e[i];
}

dqo_status mav_clear(mav_cache *m)
{
    if (m == NULL)
        return DQO_EINVAL;
    m->n = 0;
    m->dirty = false;
    if (m->path == NULL)
        return DQO_OK;
    errno = 0;
    if (remove(m->path) != 0 && errno != ENOENT)
        return DQO_EIO;
    return DQO_OK;
}

const char *mav_path(const mav_cache *m)
{
    return m != NULL && m->path != NULL ? m->path : "";
}
