/*
 * table.c - columnar tables: columns borrowed from the caller (zero-copy),
 * copied, taken over from the engine's own builders, or memory-mapped from
 * binary column files; typed accessors; the cached statistics of a column.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/engine_int.h"

dqo_status table_new(dqo_ctx *ctx, dqo_table **out)
{
    dqo_table *t = mem_calloc(1, sizeof *t);
    if (t == NULL)
        return ctx_error(ctx, DQO_ENOMEM, "out of memory creating a table");
    t->device = -1;
    *out = t;
    return DQO_OK;
}

dqo_status dqo_table_create(dqo_ctx *ctx, dqo_table **out)
{
    if (out != NULL)
        *out = NULL;
    if (ctx == NULL || out == NULL)
        return ctx_error(ctx, DQO_EINVAL, "dqo_table_create: NULL %s",
                         ctx == NULL ? "context" : "out-parameter");
    ctx_ok(ctx);
    return table_new(ctx, out);
}

static void column_release(dqo_column *c)
{
    opencl_backend.col_free(c->dev);
    if (c->pin != NULL) {
        /* data was moved to pinned memory (dqo_table_pin): the original
         * block was freed then; valid stays where it was. */
        opencl_backend.host_unpin(c->pin);
        if (c->map_base != NULL)
            munmap(c->map_base, c->map_len);
        else if (c->owns_data)
            mem_free(c->valid);
    } else if (c->map_base != NULL)
        munmap(c->map_base, c->map_len);
    else if (c->owns_data) {
        mem_free(c->data);
        mem_free(c->valid);
    }
    dict_destroy(c->dict);
    mem_free(c->name);
}

void dqo_table_destroy(dqo_table *t)
{
    if (t == NULL)
        return;
    for (int i = 0; i < t->ncols; i++)
        column_release(&t->cols[i]);
    mem_free(t->cols);
    mem_free(t);
}

/* Checks a new column's name and length against the table. */
static dqo_status table_check_new(dqo_ctx *ctx, const dqo_table *t,
                                  const char *name, uint64_t rows)
{
    if (name == NULL || name[0] == '\0')
        return ctx_error(ctx, DQO_EINVAL, "a column name must not be empty");
    for (int i = 0; i < t->ncols; i++)
        if (strcmp(t->cols[i].name, name) == 0)
            return ctx_error(ctx, DQO_EINVAL,
                             "the table already has a column named '%s'",
                             name);
    if (t->ncols > 0 && rows != t->rows)
        return ctx_error(ctx, DQO_ELENGTH,
                         "column '%s' has %" PRIu64
                         " rows but the table has %" PRIu64,
                         name, rows, t->rows);
    return DQO_OK;
}

/* Makes room for one more column and gives it a copy of its name. */
static dqo_status table_push(dqo_ctx *ctx, dqo_table *t, const char *name,
                             dqo_column **col)
{
    if (t->ncols == t->cap) {
        int cap = t->cap > 0 ? 2 * t->cap : 8;
        dqo_column *cols = mem_realloc(t->cols, (size_t)cap * sizeof *cols);
        if (cols == NULL)
            return ctx_error(ctx, DQO_ENOMEM, "out of memory adding column '%s'",
                             name);
        t->cols = cols;
        t->cap = cap;
    }
    dqo_column *c = &t->cols[t->ncols];
    memset(c, 0, sizeof *c);
    c->name = mem_strdup(name);
    if (c->name == NULL)
        return ctx_error(ctx, DQO_ENOMEM, "out of memory adding column '%s'",
                         name);
    *col = c;
    return DQO_OK;
}

static void table_commit(dqo_table *t, uint64_t rows)
{
    if (t->ncols == 0)
        t->rows = rows;
    t->ncols++;
}

dqo_status table_add_owned(dqo_ctx *ctx, dqo_table *t, const char *name,
                           dqo_type type, void *data, uint8_t *valid,
                           uint64_t rows, dqo_dict *dict)
{
    dqo_column *c;
    dqo_status s = table_check_new(ctx, t, name, rows);
    if (s != DQO_OK)
        goto fail;
    if ((s = table_push(ctx, t, name, &c)) != DQO_OK)
        goto fail;
    c->type = type;
    c->data = data;
    c->valid = valid;
    c->owns_data = true;
    c->dict = dict;
    table_commit(t, rows);
    return DQO_OK;
fail:
    mem_free(data);
    mem_free(valid);
    dict_destroy(dict);
    return s;
}

dqo_status dqo_table_add_column(dqo_ctx *ctx, dqo_table *t, const char *name,
                                dqo_type type, const void *data,
                                const uint8_t *valid, uint64_t rows,
                                dqo_ownership mode)
{
    if (ctx == NULL)
        return DQO_EINVAL;
    ctx_ok(ctx);
    if (t == NULL)
        return ctx_error(ctx, DQO_EINVAL, "dqo_table_add_column: NULL table");
    if ((unsigned)type >= DQO_TYPE_COUNT_ || type == DQO_TYPE_STR)
        return ctx_error(ctx, DQO_EINVAL,
                         "column '%s': type %d is not a numeric type (string "
                         "columns are added with dqo_table_add_strings)",
                         name != NULL ? name : "", (int)type);
    if (data == NULL && rows > 0)
        return ctx_error(ctx, DQO_EINVAL, "column '%s': NULL data for %" PRIu64
                         " rows", name != NULL ? name : "", rows);
    if (mode != DQO_BORROW && mode != DQO_COPY)
        return ctx_error(ctx, DQO_EINVAL, "column '%s': unknown ownership mode %d",
                         name != NULL ? name : "", (int)mode);
    dqo_status s = table_check_new(ctx, t, name, rows);
    if (s != DQO_OK)
        return s;
    if (mode == DQO_BORROW) {
        dqo_column *c;
        if ((s = table_push(ctx, t, name, &c)) != DQO_OK)
            return s;
        c->type = type;
        c->data = (void *)data;
        c->valid = (uint8_t *)valid;
        table_commit(t, rows);
        return DQO_OK;
    }
    size_t w = type_width(type);
    if (rows > SIZE_MAX / w)
        return ctx_error(ctx, DQO_ENOMEM, "column '%s' is too large", name);
    void *copy = mem_alloc(rows * w);
    uint8_t *vcopy = valid != NULL ? mem_alloc(rows) : NULL;
    if (copy == NULL || (valid != NULL && vcopy == NULL)) {
        mem_free(copy);
        mem_free(vcopy);
        return ctx_error(ctx, DQO_ENOMEM,
                         "out of memory copying column '%s' (%" PRIu64 " rows)",
                         name, rows);
    }
    /* The copy is made by the threads that will scan it, each its share
     * of the rows, so its pages land on their NUMA nodes (first touch). */
    if (rows > 0)
        ctx->cpu->place_copy(copy, data, rows * w, ctx_threads(ctx));
    if (vcopy != NULL && rows > 0)
        ctx->cpu->place_copy(vcopy, valid, rows, ctx_threads(ctx));
    return table_add_owned(ctx, t, name, type, copy, vcopy, rows, NULL);
}

dqo_status dqo_table_add_strings(dqo_ctx *ctx, dqo_table *t, const char *name,
                                 const char *const *strs, uint64_t rows)
{
    if (ctx == NULL)
        return DQO_EINVAL;
    ctx_ok(ctx);
    if (t == NULL)
        return ctx_error(ctx, DQO_EINVAL, "dqo_table_add_strings: NULL table");
    if (strs == NULL && rows > 0)
        return ctx_error(ctx, DQO_EINVAL, "column '%s': NULL string array",
                         name != NULL ? name : "");
    dqo_status s = table_check_new(ctx, t, name, rows);
    if (s != DQO_OK)
        return s;
    uint32_t *codes = mem_alloc(rows * sizeof *codes);
    uint8_t *valid = NULL;
    dqo_dict *d = dict_create();
    if (codes == NULL || d == NULL) {
        s = ctx_error(ctx, DQO_ENOMEM, "out of memory encoding column '%s'",
                      name);
        goto fail;
    }
    for (uint64_t i = 0; i < rows; i++) {
        if (strs[i] == NULL) {
            if (valid == NULL) {
                valid = mem_alloc(rows);
                if (valid == NULL) {
                    s = ctx_error(ctx, DQO_ENOMEM,
                                  "out of memory encoding column '%s'", name);
                    goto fail;
                }
                memset(valid, 1, rows);
            }
            valid[i] = 0;
            codes[i] = 0;
            continue;
        }
        s = dict_intern(d, strs[i], strlen(strs[i]), &codes[i]);
        if (s != DQO_OK) {
            s = ctx_error(ctx, s, "out of memory encoding column '%s'", name);
            goto fail;
        }
    }
    return table_add_owned(ctx, t, name, DQO_TYPE_STR, codes, valid, rows, d);
fail:
    mem_free(codes);
    mem_free(valid);
    dict_destroy(d);
    return s;
}

uint64_t dqo_table_rows(const dqo_table *t) { return t != NULL ? t->rows : 0; }

int dqo_table_ncols(const dqo_table *t) { return t != NULL ? t->ncols : 0; }

static const dqo_column *table_col(const dqo_table *t, int col)
{
    return t != NULL && col >= 0 && col < t->ncols ? &t->cols[col] : NULL;
}

const char *dqo_table_column_name(const dqo_table *t, int col)
{
    const dqo_column *c = table_col(t, col);
    return c != NULL ? c->name : NULL;
}

dqo_type dqo_table_column_type(const dqo_table *t, int col)
{
    const dqo_column *c = table_col(t, col);
    return c != NULL ? c->type : DQO_TYPE_COUNT_;
}

dqo_status table_find(dqo_ctx *ctx, const dqo_table *t, const char *name,
                      int *col)
{
    for (int i = 0; name != NULL && i < t->ncols; i++) {
        if (strcmp(t->cols[i].name, name) == 0) {
            *col = i;
            return DQO_OK;
        }
    }
    /* Name the columns there are, so a typo is quick to see. */
    char have[512] = "";
    size_t used = 0;
    for (int i = 0; i < t->ncols && used < sizeof have - 1; i++) {
        int n = snprintf(have + used, sizeof have - used, "%s'%s'",
                         i > 0 ? ", " : "", t->cols[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    if (used >= sizeof have)
        memcpy(have + sizeof have - 4, "...", 4);
    return ctx_error(ctx, DQO_ENOTFOUND, "no column named '%s' (columns: %s)",
                     name != NULL ? name : "(null)",
                     t->ncols > 0 ? have : "none");
}

dqo_status dqo_table_column_index(dqo_ctx *ctx, const dqo_table *t,
                                  const char *name, int *col)
{
    if (ctx == NULL)
        return DQO_EINVAL;
    ctx_ok(ctx);
    if (t == NULL || col == NULL)
        return ctx_error(ctx, DQO_EINVAL, "dqo_table_column_index: NULL %s",
                         t == NULL ? "table" : "out-parameter");
    return table_find(ctx, t, name, col);
}

static dqo_status column_typed(dqo_ctx *ctx, const dqo_table *t, int col,
                               dqo_type want, const void **data)
{
    if (ctx == NULL)
        return DQO_EINVAL;
    ctx_ok(ctx);
    const dqo_column *c = table_col(t, col);
    if (data == NULL)
        return ctx_error(ctx, DQO_EINVAL, "NULL out-parameter");
    *data = NULL;
    if (c == NULL)
        return ctx_error(ctx, DQO_EINVAL, "column index %d is out of range "
                         "(the table has %d columns)", col, dqo_table_ncols(t));
    if (c->type != want)
        return ctx_error(ctx, DQO_ETYPE, "column '%s' has type %s, not %s",
                         c->name, dqo_type_name(c->type), dqo_type_name(want));
    *data = c->data;
    return DQO_OK;
}

dqo_status dqo_table_column_u32(dqo_ctx *ctx, const dqo_table *t, int col,
                                const uint32_t **data)
{
    return column_typed(ctx, t, col, DQO_TYPE_U32, (const void **)data);
}

dqo_status dqo_table_column_i32(dqo_ctx *ctx, const dqo_table *t, int col,
                                const int32_t **data)
{
    return column_typed(ctx, t, col, DQO_TYPE_I32, (const void **)data);
}

dqo_status dqo_table_column_i64(dqo_ctx *ctx, const dqo_table *t, int col,
                                const int64_t **data)
{
    return column_typed(ctx, t, col, DQO_TYPE_I64, (const void **)data);
}

dqo_status dqo_table_column_f64(dqo_ctx *ctx, const dqo_table *t, int col,
                                const double **data)
{
    return column_typed(ctx, t, col, DQO_TYPE_F64, (const void **)data);
}

dqo_status dqo_table_column_codes(dqo_ctx *ctx, const dqo_table *t, int col,
                                  const uint32_t **codes)
{
    return column_typed(ctx, t, col, DQO_TYPE_STR, (const void **)codes);
}

const uint8_t *dqo_table_column_valid(const dqo_table *t, int col)
{
    const dqo_column *c = table_col(t, col);
    return c != NULL ? c->valid : NULL;
}

int dqo_table_is_null(const dqo_table *t, int col, uint64_t row)
{
    const dqo_column *c = table_col(t, col);
    return c != NULL && c->valid != NULL && row < t->rows && c->valid[row] == 0;
}

const char *dqo_table_dict_string(const dqo_table *t, int col, uint32_t code)
{
    const dqo_column *c = table_col(t, col);
    return c != NULL && c->dict != NULL ? dict_get(c->dict, code) : NULL;
}

uint32_t dqo_table_dict_size(const dqo_table *t, int col)
{
    const dqo_column *c = table_col(t, col);
    return c != NULL && c->dict != NULL ? dict_size(c->dict) : 0;
}

dqo_status dqo_table_format_cell(const dqo_table *t, int col, uint64_t row,
                                 char *buf, size_t len)
{
    const dqo_column *c = table_col(t, col);
    if (c == NULL || buf == NULL || len == 0 || row >= t->rows)
        return DQO_EINVAL;
    int n;
    if (c->valid != NULL && c->valid[row] == 0) {
        n = snprintf(buf, len, "NULL");
    } else {
        switch (c->type) {
        case DQO_TYPE_U32:
            n = snprintf(buf, len, "%" PRIu32, ((const uint32_t *)c->data)[row]);
            break;
        case DQO_TYPE_I32:
            n = snprintf(buf, len, "%" PRId32, ((const int32_t *)c->data)[row]);
            break;
        case DQO_TYPE_I64:
            n = snprintf(buf, len, "%" PRId64, ((const int64_t *)c->data)[row]);
            break;
        case DQO_TYPE_F64:
            n = snprintf(buf, len, "%.17g", ((const double *)c->data)[row]);
            break;
        default: {
            const char *s = dict_get(c->dict, ((const uint32_t *)c->data)[row]);
            n = snprintf(buf, len, "%s", s != NULL ? s : "");
        }
        }
    }
    return n >= 0 && (size_t)n < len ? DQO_OK : DQO_EINVAL;
}

dqo_status column_stats(dqo_ctx *ctx, dqo_column *c, uint64_t rows,
                        const dqo_column_stats **out)
{
    if (!c->has_stats) {
        dqo_type ty = c->type == DQO_TYPE_STR ? DQO_TYPE_U32 : c->type;
        dqo_status s = ctx->cpu->stats(ty, c->data, c->valid, rows,
                                       ctx_threads(ctx), &c->stats);
        if (s != DQO_OK)
            return ctx_error(ctx, s, "statistics of column '%s' failed: %s",
                             c->name, dqo_status_str(s));
        c->has_stats = true;
    }
    *out = &c->stats;
    return DQO_OK;
}

dqo_status dqo_table_column_stats(dqo_ctx *ctx, const dqo_table *t, int col,
                                  dqo_column_stats *out)
{
    if (ctx == NULL)
        return DQO_EINVAL;
    ctx_ok(ctx);
    if (t == NULL || out == NULL)
        return ctx_error(ctx, DQO_EINVAL, "dqo_table_column_stats: NULL %s",
                         t == NULL ? "table" : "out-parameter");
    if (col < 0 || col >= t->ncols)
        return ctx_error(ctx, DQO_EINVAL, "column index %d is out of range "
                         "(the table has %d columns)", col, t->ncols);
    /* Statistics are a cache on the column: computing them does not change
     * the table's contents, so a const table may fill it. */
    const dqo_column_stats *st;
    dqo_status s = column_stats(ctx, (dqo_column *)&t->cols[col], t->rows, &st);
    if (s == DQO_OK)
        *out = *st;
    return s;
}

/* ------------------------------------------------ binary column directories */

/* Splits "name.type" into the name and a type; false when not a column file. */
static bool column_file(const char *fname, char *name, size_t len,
                        dqo_type *type)
{
    const char *dot = strrchr(fname, '.');
    if (dot == NULL || dot == fname || (size_t)(dot - fname) >= len)
        return false;
    if (dqo_type_parse(dot + 1, type) != DQO_OK || *type == DQO_TYPE_STR)
        return false;
    memcpy(name, fname, (size_t)(dot - fname));
    name[dot - fname] = '\0';
    return true;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Maps one column file and adds it to t (a read-only private mapping). */
static dqo_status table_map_file(dqo_ctx *ctx, dqo_table *t, const char *dir,
                                 const char *fname)
{
    char name[256], path[4096];
    dqo_type type;
    if (!column_file(fname, name, sizeof name, &type))
        return DQO_OK;
    snprintf(path, sizeof path, "%s/%s", dir, fname);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return ctx_error(ctx, DQO_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    dqo_status s = DQO_OK;
    void *base = NULL;
    if (fstat(fd, &st) != 0) {
        s = ctx_error(ctx, DQO_EIO, "%s: %s", path, strerror(errno));
        goto done;
    }
    size_t w = type_width(type), bytes = (size_t)st.st_size;
    if (bytes % w != 0) {
        s = ctx_error(ctx, DQO_EPARSE,
                      "%s: size %zu is not a multiple of the %s width %zu",
                      path, bytes, dqo_type_name(type), w);
        goto done;
    }
    uint64_t rows = bytes / w;
    if ((s = table_check_new(ctx, t, name, rows)) != DQO_OK)
        goto done;
    if (bytes > 0) {
        base = mmap(NULL, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
        if (base == MAP_FAILED) {
            base = NULL;
            s = ctx_error(ctx, DQO_EIO, "%s: mmap: %s", path, strerror(errno));
            goto done;
        }
    }
    dqo_column *c;
    if ((s = table_push(ctx, t, name, &c)) != DQO_OK)
        goto done;
    c->type = type;
    c->data = base != NULL ? base : (void *)"";
    c->map_base = base;
    c->map_len = bytes;
    base = NULL;
    table_commit(t, rows);
done:
    if (base != NULL)
        munmap(base, (size_t)st.st_size);
    close(fd);
    return s;
}

dqo_status dqo_table_load_dir(dqo_ctx *ctx, const char *dir, dqo_table **out)
{
    if (out != NULL)
        *out = NULL;
    if (ctx == NULL)
        return DQO_EINVAL;
    ctx_ok(ctx);
    if (dir == NULL || out == NULL)
        return ctx_error(ctx, DQO_EINVAL, "dqo_table_load_dir: NULL %s",
                         dir == NULL ? "path" : "out-parameter");
    DIR *d = opendir(dir);
    if (d == NULL)
        return ctx_error(ctx, DQO_EIO, "%s: %s", dir, strerror(errno));
    dqo_table *t = NULL;
    char **names = NULL;
    size_t n = 0, cap = 0;
    dqo_status s = table_new(ctx, &t);
    if (s != DQO_OK)
        goto fail;
    /* Sorted file names give a stable column order. */
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap > 0 ? 2 * cap : 16;
            char **nn = mem_realloc(names, cap * sizeof *names);
            if (nn == NULL) {
                s = ctx_error(ctx, DQO_ENOMEM, "out of memory listing %s", dir);
                goto fail;
            }
            names = nn;
        }
        if ((names[n] = mem_strdup(e->d_name)) == NULL) {
            s = ctx_error(ctx, DQO_ENOMEM, "out of memory listing %s", dir);
            goto fail;
        }
        n++;
    }
    qsort(names, n, sizeof *names, name_cmp);
    for (size_t i = 0; i < n; i++)
        if ((s = table_map_file(ctx, t, dir, names[i])) != DQO_OK)
            goto fail;
    if (t->ncols == 0) {
        s = ctx_error(ctx, DQO_ENOTFOUND,
                      "%s holds no column files (NAME.u32, NAME.i32, "
                      "NAME.i64 or NAME.f64)",
                      dir);
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        mem_free(names[i]);
    mem_free(names);
    closedir(d);
    *out = t;
    return DQO_OK;
fail:
    for (size_t i = 0; i < n; i++)
        mem_free(names[i]);
    mem_free(names);
    closedir(d);
    dqo_table_destroy(t);
    return s;
}

dqo_status dqo_table_write_dir(dqo_ctx *ctx, const dqo_table *t,
                               const char *dir)
{
    if (ctx == NULL)
        return DQO_EINVAL;
    ctx_ok(ctx);
    if (t == NULL || dir == NULL)
        return ctx_error(ctx, DQO_EINVAL, "dqo_table_write_dir: NULL %s",
                         t == NULL ? "table" : "path");
    for (int i = 0; i < t->ncols; i++) {
        const dqo_column *c = &t->cols[i];
        if (c->type == DQO_TYPE_STR || c->valid != NULL)
            return ctx_error(ctx, DQO_EUNSUPPORTED,
                             "column '%s': binary column files hold numeric "
                             "columns without NULLs only; write CSV instead",
                             c->name);
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return ctx_error(ctx, DQO_EIO, "%s: %s", dir, strerror(errno));
    for (int i = 0; i < t->ncols; i++) {
        const dqo_column *c = &t->cols[i];
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.%s", dir, c->name,
                 dqo_type_name(c->type));
        FILE *f = fopen(path, "wb");
        if (f == NULL)
            return ctx_error(ctx, DQO_EIO, "%s: %s", path, strerror(errno));
        size_t w = type_width(c->type);
        size_t done = t->rows > 0 ? fwrite(c->data, w, t->rows, f) : 0;
        int err = ferror(f);
        if (fclose(f) != 0 || err || done != t->rows)
            return ctx_error(ctx, DQO_EIO, "%s: write failed: %s", path,
                             strerror(errno));
    }
    return DQO_OK;
}
