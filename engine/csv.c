/*
 * csv.c - loading a table from a CSV file and writing one back
 * (dqo_table_load_csv, dqo_table_write_csv).
 *
 * Reading. The file is read with one read() into one buffer (plus a NUL
 * sentinel) and parsed in two sequential passes over it, which keeps the
 * memory at the file plus the finished columns (no per-field offset arrays):
 *
 *  1. Structure and types: tokenise every record, check the shape (header,
 *     field counts, quotes), count rows and NULLs per column, and infer the
 *     type of every undeclared column over ALL rows: i32 if every non-NULL
 *     value is an integer that fits int32, else i64 if all fit int64, else f64
 *     if all are decimal floating-point text (digits, optional fraction and
 *     exponent, or inf / infinity / nan, any case, optional sign), else str.
 *     u32 is never inferred; declare it. A column with no non-NULL values
 *     (or no rows) is i32.
 *  2. Values: allocate each column once at its final size and tokenise again,
 *     converting every field in place into its column (strings are interned
 *     into the column's dictionary, codes in order of first appearance).
 *
 * The dialect is RFC 4180 with these choices:
 *  - A header row is required; its names must be non-empty and unique.
 *  - Fields may be quoted with '"'; inside quotes "" is one quote, and the
 *    delimiter, CR and LF are ordinary bytes. After a closing quote only the
 *    delimiter or a line end may follow. A quote inside an unquoted field is
 *    an ordinary byte (lenient, as most writers expect).
 *  - Records end at LF or CRLF, or at the end of the file. A lone CR is data.
 *  - Empty lines at the end of the file are ignored (so a single-column
 *    table whose last values are NULL loses those rows on a round trip). An
 *    empty line elsewhere is a record with one empty field: a NULL in a
 *    single-column file and a field-count error otherwise.
 *  - An empty unquoted field is NULL. A quoted empty field "" is the empty
 *    string in a str column and NULL in a numeric column.
 *  - Numbers must fill the whole field: " 12" or "12 " is not a number (an
 *    inferred column holding it becomes str; a declared numeric column
 *    reports a parse error). A quoted field holding a number counts as that
 *    number.
 *  - A UTF-8 byte-order mark at the start of the file is skipped.
 *  - Numbers are read in the C locale's format (strtod), as the library
 *    never calls setlocale.
 *
 * Errors name the place as path:LINE:COL, both 1-based; COL is the byte
 * column of the field's first byte (its opening quote when quoted) within its
 * line. A field-count error points at the first extra field when a record has
 * too many, and at column 1 of the record's first line when it has too few.
 * On any error nothing is returned and nothing leaks.
 *
 * Writing. A header row, then one line (LF) per row, fields separated by ','.
 * A string is quoted when it is empty (so that it reads back as "" and not as
 * NULL) or contains the delimiter, a quote, CR or LF; quotes are doubled.
 * NULL is an empty field. f64 is printed with %.17g (exact round trip) and
 * given a ".0" when that text would read back as an integer. A string is
 * written up to its first NUL byte (the dictionary's C text). A string column
 * whose values all look like numbers reads back as a number column unless
 * its type is declared; a write fails with DQO_EIO and removes the partial
 * file when it is a regular file.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/engine_int.h"

/* The longest value quoted back in an error message; longer ones are cut. */
#define CSV_ERR_VALUE_MAX 64
/* The write buffer: large enough that write() costs vanish next to the
 * formatting. */
#define CSV_WRITE_BUF ((size_t)1 << 20)
/* Non-regular files (pipes) are read in blocks starting at this size. */
#define CSV_READ_BLOCK ((size_t)64 * 1024)

/* ------------------------------------------------------------ tokeniser */

typedef struct csv_reader {
    const char *path;
    const char *buf; /* the file; buf[end] is a NUL sentinel */
    size_t end;      /* parsing stops here: trailing line ends are cut */
    size_t pos;
    uint64_t line;     /* 1-based line of pos */
    size_t line_start; /* offset of that line's first byte */
    char delim;
    /* Bytes that stop the scan of an unquoted field. */
    unsigned char stop[256];
} csv_reader;

typedef struct csv_field {
    size_t start, len; /* the content; inside the quotes when quoted */
    uint64_t line;     /* where the field starts */
    size_t col;
    bool quoted;
    bool escaped; /* holds "" pairs, so the content needs unescaping */
} csv_field;

/* Reads the next field and its terminator; *last says the record ended. */
static inline dqo_status csv_next(dqo_ctx *ctx, csv_reader *r, csv_field *f,
                                  bool *last)
{
    const char *b = r->buf;
    size_t i = r->pos;
    f->line = r->line;
    f->col = i - r->line_start + 1;
    f->escaped = false;
    f->len = 0;
    if (b[i] == '"' && i < r->end) {
        f->quoted = true;
        f->start = ++i;
        for (;;) {
            if (i >= r->end)
                return ctx_error(ctx, DQO_EPARSE,
                                 "%s:%" PRIu64
                                 ":%zu: unterminated quoted field",
                                 r->path, f->line, f->col);
            char c = b[i];
            if (c == '"') {
                if (i + 1 < r->end && b[i + 1] == '"') {
                    f->escaped = true;
                    i += 2;
                    continue;
                }
                break;
            }
            if (c == '\n') {
                r->line++;
                r->line_start = i + 1;
            }
            i++;
        }
        f->len = i - f->start;
        i++; /* the closing quote */
    } else {
        f->quoted = false;
        f->start = i;
        for (;;) {
            while (!r->stop[(unsigned char)b[i]])
                i++;
            char c = b[i];
            if (c == r->delim || c == '\n')
                break;
            if (c == '\0') {
                if (i >= r->end)
                    break;
            } else if (b[i + 1] == '\n') { /* c is '\r': CRLF ends it */
                break;
            }
            i++;
        }
        f->len = i - f->start;
    }

    if (i >= r->end) {
        *last = true;
        r->pos = i;
        return DQO_OK;
    }
    char c = b[i];
    if (c == r->delim) {
        *last = false;
        r->pos = i + 1;
        return DQO_OK;
    }
    if (c == '\r' && b[i + 1] == '\n')
        i++;
    if (b[i] == '\n') {
        *last = true;
        r->pos = i + 1;
        r->line++;
        r->line_start = i + 1;
        return DQO_OK;
    }
    /* Only a closing quote can be followed by anything else. */
    return ctx_error(ctx, DQO_EPARSE,
                     "%s:%" PRIu64 ":%zu: unexpected character '%c' after the "
                     "closing quote of the field at column %zu",
                     r->path, r->line, i - r->line_start + 1, c, f->col);
}

/* The field's text: in place when it needs no unescaping, else unescaped
 * into `scratch` (which holds at least f->len bytes). */
static inline const char *csv_text(const csv_reader *r, const csv_field *f,
                                   char *scratch, size_t *len)
{
    const char *s = r->buf + f->start;
    if (!f->escaped) {
        *len = f->len;
        return s;
    }
    size_t n = 0;
    for (size_t i = 0; i < f->len; i++) {
        scratch[n++] = s[i];
        if (s[i] == '"')
            i++; /* the second quote of a "" pair */
    }
    *len = n;
    return scratch;
}

/* -------------------------------------------------------- number parsing */

typedef enum csv_int {
    CSV_INT_NONE = 0, /* not integer text */
    CSV_INT_OK = 1,
    CSV_INT_BIG = 2 /* integer text outside int64 */
} csv_int;

static inline csv_int csv_parse_int(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (len != 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == len)
        return CSV_INT_NONE;
    uint64_t acc = 0;
    bool big = false;
    for (; i < len; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9)
            return CSV_INT_NONE;
        if (acc > (UINT64_MAX - d) / 10)
            big = true;
        else
            acc = acc * 10 + d;
    }
    if (big || acc > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
        return CSV_INT_BIG;
    *out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    return CSV_INT_OK;
}

/* Whether the whole text is a decimal floating-point number as strtod reads
 * it (hexadecimal floats and "nan(...)" are left out on purpose). */
static bool csv_is_float(const char *s, size_t len)
{
    size_t i = 0;
    if (len != 0 && (s[0] == '-' || s[0] == '+'))
        i = 1;
    size_t rest = len - i;
    if ((rest == 3 && (strncasecmp(s + i, "inf", 3) == 0 ||
                       strncasecmp(s + i, "nan", 3) == 0)) ||
        (rest == 8 && strncasecmp(s + i, "infinity", 8) == 0))
        return true;
    size_t digits = 0;
    while (i < len && (unsigned)(unsigned char)s[i] - '0' <= 9) {
        i++;
        digits++;
    }
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && (unsigned)(unsigned char)s[i] - '0' <= 9) {
            i++;
            digits++;
        }
    }
    if (digits == 0)
        return false;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t exp_digits = 0;
        while (i < len && (unsigned)(unsigned char)s[i] - '0' <= 9) {
            i++;
            exp_digits++;
        }
        if (exp_digits == 0)
            return false;
    }
    return i == len;
}

/* Converts float text (already checked by csv_is_float). Integers up to 2^53
 * convert exactly without strtod; the rest are copied into `scratch` (at
 * least len + 1 bytes) to give strtod its terminator. Overflow gives +-inf,
 * as strtod does. */
static inline double csv_to_double(const char *s, size_t len, char *scratch)
{
    int64_t v;
    if (csv_parse_int(s, len, &v) == CSV_INT_OK && v <= (INT64_C(1) << 53) &&
        v >= -(INT64_C(1) << 53))
        return (double)v;
    memmove(scratch, s, len);
    scratch[len] = '\0';
    return strtod(scratch, NULL);
}

/* ------------------------------------------------------------- the load */

typedef struct csv_col {
    char *name;    /* mem_alloc'd */
    dqo_type type; /* declared, or inferred so far */
    bool declared;
    size_t name_col; /* header column, for messages */
    uint64_t empty;  /* empty unquoted fields */
    uint64_t qempty; /* quoted empty fields ("") */
    void *data;      /* pass 2: the values */
    uint8_t *valid;  /* pass 2: NULL when the column has no NULLs */
    dqo_dict *dict;  /* pass 2: STR columns */
} csv_col;

typedef struct csv_load {
    dqo_ctx *ctx;
    const char *path;
    char *buf; /* the file, with room for the NUL sentinel */
    size_t len;
    size_t body; /* offset of the first data record */
    uint64_t body_line;
    csv_col *cols;
    int ncols;
    uint64_t rows;
    size_t max_len; /* the longest field content */
    char *scratch;  /* max_len + 1 bytes, for unescaping and strtod */
} csv_load;

static void csv_load_free(csv_load *L)
{
    for (int j = 0; j < L->ncols; j++) {
        mem_free(L->cols[j].name);
        mem_free(L->cols[j].data);
        mem_free(L->cols[j].valid);
        dict_destroy(L->cols[j].dict);
    }
    mem_free(L->cols);
    mem_free(L->buf);
    mem_free(L->scratch);
}

static dqo_status csv_nomem(csv_load *L)
{
    return ctx_error(L->ctx, DQO_ENOMEM, "%s: out of memory loading CSV",
                     L->path);
}

static dqo_status csv_io_error(dqo_ctx *ctx, const char *path, const char *what,
                               int err)
{
    char msg[256];
    if (strerror_r(err, msg, sizeof msg) != 0)
        snprintf(msg, sizeof msg, "error %d", err);
    return ctx_error(ctx, DQO_EIO, "%s: cannot %s: %s", path, what, msg);
}

/* Reads the whole file into L->buf (one read() for a regular file), leaving
 * a spare byte after the contents for the sentinel. */
static dqo_status csv_read_file(csv_load *L)
{
    dqo_status st = DQO_OK;
    int fd = open(L->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return csv_io_error(L->ctx, L->path, "open", errno);
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = csv_io_error(L->ctx, L->path, "stat", errno);
        goto done;
    }
    size_t cap = S_ISREG(sb.st_mode) ? (size_t)sb.st_size + 1 : CSV_READ_BLOCK;
    L->buf = mem_alloc(cap);
    if (L->buf == NULL) {
        st = csv_nomem(L);
        goto done;
    }
    L->len = 0;
    for (;;) {
        if (L->len == cap - 1) {
            /* Full: check for the end of the file before growing, so a
             * regular file whose size we know is never copied. */
            char probe;
            ssize_t got = read(fd, &probe, 1);
            if (got == 0)
                break;
            if (got < 0) {
                if (errno == EINTR)
                    continue;
                st = csv_io_error(L->ctx, L->path, "read", errno);
                goto done;
            }
            if (cap > SIZE_MAX / 2) {
                st = csv_nomem(L);
                goto done;
            }
            char *grown = mem_realloc(L->buf, cap * 2);
            if (grown == NULL) {
                st = csv_nomem(L);
                goto done;
            }
            L->buf = grown;
            cap *= 2;
            L->buf[L->len++] = probe;
            continue;
        }
        ssize_t got = read(fd, L->buf + L->len, cap - 1 - L->len);
        if (got == 0)
            break;
        if (got < 0) {
            if (errno == EINTR)
                continue;
            st = csv_io_error(L->ctx, L->path, "read", errno);
            goto done;
        }
        L->len += (size_t)got;
    }
done:
    close(fd);
    return st;
}

/* Parses opts->column_types ("name:type,name:type") against the header. */
static dqo_status csv_declare_types(csv_load *L, const char *spec)
{
    const char *p = spec;
    while (*p != '\0') {
        const char *item = p;
        const char *stop = strchr(p, ',');
        if (stop == NULL)
            stop = p + strlen(p);
        p = *stop == ',' ? stop + 1 : stop;
        /* Trim blanks around the item; empty items are skipped. */
        while (item < stop && (*item == ' ' || *item == '\t'))
            item++;
        const char *item_end = stop;
        while (item_end > item && (item_end[-1] == ' ' || item_end[-1] == '\t'))
            item_end--;
        if (item == item_end)
            continue;
        const char *colon = NULL;
        for (const char *q = item; q < item_end; q++)
            if (*q == ':')
                colon = q; /* the last colon: names may hold colons */
        int item_len = (int)(item_end - item);
        if (colon == NULL)
            return ctx_error(L->ctx, DQO_EINVAL,
                             "column_types: expected name:type, got '%.*s'",
                             item_len, item);
        const char *name_end = colon;
        while (name_end > item && (name_end[-1] == ' ' || name_end[-1] == '\t'))
            name_end--;
        const char *tname = colon + 1;
        while (tname < item_end && (*tname == ' ' || *tname == '\t'))
            tname++;
        size_t name_len = (size_t)(name_end - item);
        size_t tname_len = (size_t)(item_end - tname);

        int col = -1;
        for (int j = 0; j < L->ncols; j++)
            if (strlen(L->cols[j].name) == name_len &&
                memcmp(L->cols[j].name, item, name_len) == 0) {
                col = j;
                break;
            }
        if (col < 0)
            return ctx_error(L->ctx, DQO_EINVAL,
                             "column_types: no column '%.*s' in %s",
                             (int)name_len, item, L->path);
        char tbuf[16];
        dqo_type type;
        if (tname_len >= sizeof tbuf) {
            tbuf[0] = '\0'; /* too long to be a type name */
        } else {
            memcpy(tbuf, tname, tname_len);
            tbuf[tname_len] = '\0';
        }
        if (tbuf[0] == '\0' || dqo_type_parse(tbuf, &type) != DQO_OK)
            return ctx_error(L->ctx, DQO_EINVAL,
                             "column_types: unknown type '%.*s' for column "
                             "'%.*s' (expected u32, i32, i64, f64 or str)",
                             (int)tname_len, tname, (int)name_len, item);
        if (L->cols[col].declared)
            return ctx_error(L->ctx, DQO_EINVAL,
                             "column_types: column '%.*s' declared twice",
                             (int)name_len, item);
        L->cols[col].declared = true;
        L->cols[col].type = type;
    }
    return DQO_OK;
}

/* Reads the header record into L->cols (names checked, types i32 to start
 * inference from). */
static dqo_status csv_header(csv_load *L, csv_reader *r)
{
    int cap = 0;
    bool last = false;
    while (!last) {
        csv_field f;
        dqo_status st = csv_next(L->ctx, r, &f, &last);
        if (st != DQO_OK)
            return st;
        if (L->ncols == cap) {
            if (cap > INT_MAX / 2)
                return ctx_error(L->ctx, DQO_EPARSE,
                                 "%s:1:%zu: too many columns", L->path, f.col);
            int ncap = cap == 0 ? 16 : cap * 2;
            csv_col *grown = mem_realloc(L->cols, (size_t)ncap * sizeof *grown);
            if (grown == NULL)
                return csv_nomem(L);
            L->cols = grown;
            cap = ncap;
        }
        char *name = mem_alloc(f.len + 1);
        if (name == NULL)
            return csv_nomem(L);
        size_t len;
        const char *text = csv_text(r, &f, name, &len);
        memmove(name, text, len);
        name[len] = '\0';
        csv_col *c = &L->cols[L->ncols++];
        memset(c, 0, sizeof *c);
        c->name = name;
        c->type = DQO_TYPE_I32;
        c->name_col = f.col;
        if (f.len > L->max_len)
            L->max_len = f.len;
        if (len == 0)
            return ctx_error(L->ctx, DQO_EPARSE,
                             "%s:%" PRIu64 ":%zu: empty name for column %d",
                             L->path, f.line, f.col, L->ncols);
        for (int j = 0; j + 1 < L->ncols; j++)
            if (strcmp(L->cols[j].name, name) == 0)
                return ctx_error(L->ctx, DQO_EPARSE,
                                 "%s:%" PRIu64 ":%zu: duplicate column name "
                                 "'%s' (also column %d)",
                                 L->path, f.line, f.col, name, j + 1);
    }
    return DQO_OK;
}

/* Pass 1 for one field: NULL counts and type inference. */
static inline void csv_observe(csv_col *c, const csv_reader *r,
                               const csv_field *f)
{
    if (f->len == 0) {
        if (f->quoted)
            c->qempty++;
        else
            c->empty++;
        return;
    }
    if (c->declared || c->type == DQO_TYPE_STR)
        return;
    if (f->escaped) {
        c->type = DQO_TYPE_STR; /* holds a quote: never a number */
        return;
    }
    const char *s = r->buf + f->start;
    if (c->type != DQO_TYPE_F64) {
        int64_t v;
        csv_int k = csv_parse_int(s, f->len, &v);
        if (k == CSV_INT_OK) {
            if (c->type == DQO_TYPE_I32 && (v < INT32_MIN || v > INT32_MAX))
                c->type = DQO_TYPE_I64;
            return;
        }
        if (k == CSV_INT_BIG) {
            c->type = DQO_TYPE_F64;
            return;
        }
    }
    c->type = csv_is_float(s, f->len) ? DQO_TYPE_F64 : DQO_TYPE_STR;
}

/* Pass 1: checks every data record and infers the column types. */
static dqo_status csv_pass1(csv_load *L, csv_reader *r)
{
    uint64_t rows = 0;
    while (r->pos < r->end) {
        uint64_t rec_line = r->line;
        int n = 0;
        bool last = false;
        while (!last) {
            csv_field f;
            dqo_status st = csv_next(L->ctx, r, &f, &last);
            if (st != DQO_OK)
                return st;
            if (f.len > L->max_len)
                L->max_len = f.len;
            if (n < L->ncols) {
                csv_observe(&L->cols[n], r, &f);
            } else if (n == L->ncols) {
                /* Count the rest, then report the first extra field. */
                int found = n + 1;
                while (!last) {
                    csv_field g;
                    st = csv_next(L->ctx, r, &g, &last);
                    if (st != DQO_OK)
                        return st;
                    found++;
                }
                return ctx_error(L->ctx, DQO_EPARSE,
                                 "%s:%" PRIu64 ":%zu: expected %d fields, "
                                 "found %d",
                                 L->path, f.line, f.col, L->ncols, found);
            }
            n++;
        }
        if (n != L->ncols)
            return ctx_error(L->ctx, DQO_EPARSE,
                             "%s:%" PRIu64 ":1: expected %d fields, found %d",
                             L->path, rec_line, L->ncols, n);
        rows++;
    }
    L->rows = rows;
    return DQO_OK;
}

/* Quotes the field's text (cut to CSV_ERR_VALUE_MAX bytes) for a message. */
static int csv_err_len(size_t len)
{
    return (int)(len > CSV_ERR_VALUE_MAX ? CSV_ERR_VALUE_MAX : len);
}

/* Pass 2 for one field: converts it into row `row` of its column. */
static inline dqo_status csv_store(csv_load *L, const csv_reader *r, csv_col *c,
                                   uint64_t row, const csv_field *f)
{
    bool null = f->len == 0 && (!f->quoted || c->type != DQO_TYPE_STR);
    if (c->valid != NULL)
        c->valid[row] = !null;
    if (null) {
        memset((char *)c->data + row * type_width(c->type), 0,
               type_width(c->type));
        return DQO_OK;
    }
    size_t len;
    const char *s = csv_text(r, f, L->scratch, &len);
    if (c->type == DQO_TYPE_STR) {
        uint32_t code;
        dqo_status st = dict_intern(c->dict, s, len, &code);
        if (st == DQO_ENOMEM)
            return csv_nomem(L);
        if (st != DQO_OK)
            return ctx_error(L->ctx, st,
                             "%s:%" PRIu64 ":%zu: cannot add '%.*s' to the "
                             "dictionary of column '%s': %s",
                             L->path, f->line, f->col, csv_err_len(len), s,
                             c->name, dqo_status_str(st));
        ((uint32_t *)c->data)[row] = code;
        return DQO_OK;
    }
    if (c->type == DQO_TYPE_F64) {
        if (!csv_is_float(s, len))
            goto bad;
        ((double *)c->data)[row] = csv_to_double(s, len, L->scratch);
        return DQO_OK;
    }
    int64_t v;
    csv_int k = csv_parse_int(s, len, &v);
    if (k == CSV_INT_NONE)
        goto bad;
    switch (c->type) {
    case DQO_TYPE_I32:
        if (k != CSV_INT_OK || v < INT32_MIN || v > INT32_MAX)
            goto range;
        ((int32_t *)c->data)[row] = (int32_t)v;
        break;
    case DQO_TYPE_U32:
        if (k != CSV_INT_OK || v < 0 || v > UINT32_MAX)
            goto range;
        ((uint32_t *)c->data)[row] = (uint32_t)v;
        break;
    default:
        if (k != CSV_INT_OK)
            goto range;
        ((int64_t *)c->data)[row] = v;
        break;
    }
    return DQO_OK;
bad:
    return ctx_error(L->ctx, DQO_EPARSE,
                     "%s:%" PRIu64 ":%zu: cannot parse '%.*s' as %s for "
                     "column '%s'",
                     L->path, f->line, f->col, csv_err_len(len), s,
                     dqo_type_name(c->type), c->name);
range:
    return ctx_error(L->ctx, DQO_EPARSE,
                     "%s:%" PRIu64 ":%zu: value '%.*s' out of range for %s "
                     "column '%s'",
                     L->path, f->line, f->col, csv_err_len(len), s,
                     dqo_type_name(c->type), c->name);
}

/* Pass 2: allocates the columns and fills them. */
static dqo_status csv_pass2(csv_load *L, csv_reader *r)
{
    L->scratch = mem_alloc(L->max_len + 1);
    if (L->scratch == NULL)
        return csv_nomem(L);
    for (int j = 0; j < L->ncols; j++) {
        csv_col *c = &L->cols[j];
        uint64_t nulls = c->empty + (c->type != DQO_TYPE_STR ? c->qempty : 0);
        size_t width = type_width(c->type);
        if (L->rows > SIZE_MAX / width)
            return csv_nomem(L);
        c->data = mem_alloc((size_t)L->rows * width);
        if (c->data == NULL)
            return csv_nomem(L);
        if (nulls != 0) {
            c->valid = mem_alloc((size_t)L->rows);
            if (c->valid == NULL)
                return csv_nomem(L);
        }
        if (c->type == DQO_TYPE_STR) {
            c->dict = dict_create();
            if (c->dict == NULL)
                return csv_nomem(L);
        }
    }
    r->pos = L->body;
    r->line = L->body_line;
    r->line_start = L->body;
    for (uint64_t row = 0; row < L->rows; row++) {
        /* Pass 1 checked the shape: every record has ncols fields. */
        for (int j = 0; j < L->ncols; j++) {
            csv_field f;
            bool last;
            dqo_status st = csv_next(L->ctx, r, &f, &last);
            if (st != DQO_OK)
                return st;
            st = csv_store(L, r, &L->cols[j], row, &f);
            if (st != DQO_OK)
                return st;
        }
    }
    return DQO_OK;
}

dqo_status dqo_table_load_csv(dqo_ctx *ctx, const char *path,
                              const dqo_csv_options *opts, dqo_table **out)
{
    if (out != NULL)
        *out = NULL;
    if (ctx == NULL)
        return DQO_EINVAL;
    ctx_ok(ctx);
    if (out == NULL)
        return ctx_error(ctx, DQO_EINVAL, "dqo_table_load_csv: out is NULL");
    if (path == NULL)
        return ctx_error(ctx, DQO_EINVAL, "dqo_table_load_csv: path is NULL");
    char delim = opts != NULL && opts->delimiter != 0 ? opts->delimiter : ',';
    if (delim == '"' || delim == '\n' || delim == '\r')
        return ctx_error(ctx, DQO_EINVAL,
                         "dqo_table_load_csv: delimiter 0x%02x cannot be a "
                         "quote or a line end",
                         (unsigned)(unsigned char)delim);

    csv_load L = {.ctx = ctx, .path = path};
    dqo_table *t = NULL;
    dqo_status st = csv_read_file(&L);
    if (st != DQO_OK)
        goto fail;

    csv_reader r = {.path = path, .buf = L.buf, .delim = delim, .line = 1};
    r.stop[(unsigned char)delim] = 1;
    r.stop['\n'] = 1;
    r.stop['\r'] = 1;
    r.stop['\0'] = 1;
    if (L.len >= 3 && memcmp(L.buf, "\xEF\xBB\xBF", 3) == 0)
        r.pos = r.line_start = 3;
    r.end = L.len;
    while (r.end > r.pos &&
           (L.buf[r.end - 1] == '\n' || L.buf[r.end - 1] == '\r'))
        r.end--;
    L.buf[r.end] = '\0';
    if (r.end == r.pos) {
        st = ctx_error(ctx, DQO_EPARSE,
                       "%s:1:1: empty file, expected a header row", path);
        goto fail;
    }

    st = csv_header(&L, &r);
    if (st != DQO_OK)
        goto fail;
    L.body = r.pos;
    L.body_line = r.line;
    if (opts != NULL && opts->column_types != NULL) {
        st = csv_declare_types(&L, opts->column_types);
        if (st != DQO_OK)
            goto fail;
    }
    st = csv_pass1(&L, &r);
    if (st != DQO_OK)
        goto fail;
    st = csv_pass2(&L, &r);
    if (st != DQO_OK)
        goto fail;

    st = table_new(ctx, &t);
    if (st != DQO_OK)
        goto fail;
    for (int j = 0; j < L.ncols; j++) {
        csv_col *c = &L.cols[j];
        /* The table takes the arrays even when this fails. */
        st = table_add_owned(ctx, t, c->name, c->type, c->data, c->valid,
                             L.rows, c->dict);
        c->data = NULL;
        c->valid = NULL;
        c->dict = NULL;
        if (st != DQO_OK)
            goto fail;
    }
    csv_load_free(&L);
    *out = t;
    return DQO_OK;
fail:
    dqo_table_destroy(t);
    csv_load_free(&L);
    return st;
}

/* --------------------------------------------------------------- writing */

typedef struct csv_writer {
    int fd;
    char *buf;
    size_t n;
    int err; /* errno of the first failed write, 0 while all is well */
} csv_writer;

static void csv_flush(csv_writer *w)
{
    size_t off = 0;
    while (w->err == 0 && off < w->n) {
        ssize_t put = write(w->fd, w->buf + off, w->n - off);
        if (put < 0) {
            if (errno != EINTR)
                w->err = errno;
            continue;
        }
        off += (size_t)put;
    }
    w->n = 0;
}

static inline void csv_put(csv_writer *w, const char *s, size_t len)
{
    while (len > 0) {
        if (w->n == CSV_WRITE_BUF)
            csv_flush(w);
        size_t room = CSV_WRITE_BUF - w->n;
        size_t k = len < room ? len : room;
        memcpy(w->buf + w->n, s, k);
        w->n += k;
        s += k;
        len -= k;
    }
}

static inline void csv_putc(csv_writer *w, char c)
{
    if (w->n == CSV_WRITE_BUF)
        csv_flush(w);
    w->buf[w->n++] = c;
}

/* Writes text, quoted when it must be (see the top of the file). */
static void csv_put_text(csv_writer *w, const char *s)
{
    size_t len = strlen(s);
    bool quote = len == 0 || strpbrk(s, ",\"\r\n") != NULL;
    if (!quote) {
        csv_put(w, s, len);
        return;
    }
    csv_putc(w, '"');
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            csv_putc(w, '"');
        csv_putc(w, s[i]);
    }
    csv_putc(w, '"');
}

static void csv_put_u64(csv_writer *w, uint64_t v, bool neg)
{
    char tmp[24];
    int i = (int)sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    if (neg)
        tmp[--i] = '-';
    csv_put(w, tmp + i, sizeof tmp - (size_t)i);
}

static void csv_put_i64(csv_writer *w, int64_t v)
{
    if (v < 0)
        csv_put_u64(w, 0 - (uint64_t)v, true);
    else
        csv_put_u64(w, (uint64_t)v, false);
}

static void csv_put_f64(csv_writer *w, double v)
{
    char tmp[40];
    int n = snprintf(tmp, sizeof tmp - 2, "%.17g", v);
    /* "1" would read back as an integer column; inf and nan are fine. */
    if (strpbrk(tmp, ".eEin") == NULL) {
        tmp[n++] = '.';
        tmp[n++] = '0';
    }
    csv_put(w, tmp, (size_t)n);
}

static void csv_put_cell(csv_writer *w, const dqo_column *c, uint64_t row)
{
    if (c->valid != NULL && c->valid[row] == 0)
        return;
    switch (c->type) {
    case DQO_TYPE_U32:
        csv_put_u64(w, ((const uint32_t *)c->data)[row], false);
        break;
    case DQO_TYPE_I32: csv_put_i64(w, ((const int32_t *)c->data)[row]); break;
    case DQO_TYPE_I64: csv_put_i64(w, ((const int64_t *)c->data)[row]); break;
    case DQO_TYPE_F64: csv_put_f64(w, ((const double *)c->data)[row]); break;
    default: {
        const char *s = dict_get(c->dict, ((const uint32_t *)c->data)[row]);
        csv_put_text(w, s != NULL ? s : "");
        break;
    }
    }
}

dqo_status dqo_table_write_csv(dqo_ctx *ctx, const dqo_table *t,
                               const char *path)
{
    if (ctx == NULL)
        return DQO_EINVAL;
    ctx_ok(ctx);
    if (t == NULL)
        return ctx_error(ctx, DQO_EINVAL, "dqo_table_write_csv: table is NULL");
    if (path == NULL)
        return ctx_error(ctx, DQO_EINVAL, "dqo_table_write_csv: path is NULL");

    dqo_status st = DQO_OK;
    csv_writer w = {.fd = -1};
    bool regular = false;
    w.buf = mem_alloc(CSV_WRITE_BUF);
    if (w.buf == NULL) {
        st = ctx_error(ctx, DQO_ENOMEM, "%s: out of memory writing CSV", path);
        goto fail;
    }
    w.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (w.fd < 0) {
        st = csv_io_error(ctx, path, "create", errno);
        goto fail;
    }
    struct stat sb;
    regular = fstat(w.fd, &sb) == 0 && S_ISREG(sb.st_mode);

    for (int j = 0; j < t->ncols; j++) {
        if (j > 0)
            csv_putc(&w, ',');
        csv_put_text(&w, t->cols[j].name);
    }
    if (t->ncols > 0)
        csv_putc(&w, '\n');
    for (uint64_t row = 0; row < t->rows && w.err == 0; row++) {
        for (int j = 0; j < t->ncols; j++) {
            if (j > 0)
                csv_putc(&w, ',');
            csv_put_cell(&w, &t->cols[j], row);
        }
        csv_putc(&w, '\n');
    }
    csv_flush(&w);
    if (w.err != 0) {
        st = csv_io_error(ctx, path, "write", w.err);
        goto fail;
    }
    int fd = w.fd;
    w.fd = -1;
    if (close(fd) != 0) {
        st = csv_io_error(ctx, path, "close", errno);
        goto fail;
    }
    mem_free(w.buf);
    return DQO_OK;
fail:
    if (w.fd >= 0)
        close(w.fd);
    /* A partial regular file is removed; nothing is half-written. */
    if (regular)
        unlink(path);
    mem_free(w.buf);
    return st;
}
