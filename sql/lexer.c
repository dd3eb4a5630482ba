/*
 * lexer.c - the SQL tokenizer: splits the text into identifiers, quoted
 * identifiers, numbers, strings and operators, each with its byte span so
 * that every later error can point at the offending token. Comments (-- to
 * end of line) and whitespace are skipped. Pure C.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/sql_int.h"

dqo_status sql_fail(sql_error *err, dqo_status st, int pos, int len,
                    const char *fmt, ...)
{
    err->pos = pos;
    err->len = pos >= 0 && len < 1 ? 1 : len;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return st;
}

char *sql_strndup(const char *s, size_t n)
{
    char *t = malloc(n + 1);
    if (t != NULL) {
        memcpy(t, s, n);
        t[n] = '\0';
    }
    return t;
}

char *sql_strdup(const char *s) { return sql_strndup(s, strlen(s)); }

bool sql_ieq(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return false;
    return *a == *b;
}

int sql_grow(void **arr, int n, int *cap, size_t sz)
{
    if (n < *cap)
        return 0;
    int nc = *cap < 8 ? 8 : *cap * 2;
    void *p = realloc(*arr, (size_t)nc * sz);
    if (p == NULL)
        return -1;
    *arr = p;
    *cap = nc;
    return 0;
}

void sql_tokens_free(sql_tokens *tk)
{
    for (int i = 0; i < tk->n; i++)
        free(tk->t[i].text);
    free(tk->t);
    tk->t = NULL;
    tk->n = 0;
}

int sql_token_len_at(const sql_tokens *tk, int pos)
{
    int lo = 0, hi = tk->n - 1;
    while (lo <= hi) { /* tokens are sorted by position */
        int mid = (lo + hi) / 2;
        if (tk->t[mid].pos == pos)
            return tk->t[mid].len;
        if (tk->t[mid].pos < pos)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return 1;
}

static int is_ident_start(int c) { return isalpha(c) || c == '_'; }
static int is_ident_char(int c) { return isalnum(c) || c == '_'; }

/* A quoted run ('...' or "..."), with the quote doubled for itself. Returns
 * the length consumed, or -1 when unterminated. *out is the unescaped text
 * (malloc'ed; NULL on out of memory with the length still returned). */
static int lex_quoted(const char *s, char q, char **out)
{
    size_t n = 0, i = 1;
    for (;; i++) {
        if (s[i] == '\0')
            return -1;
        if (s[i] == q) {
            if (s[i + 1] != q)
                break;
            i++;
        }
        n++;
    }
    char *t = malloc(n + 1);
    if (t != NULL) {
        size_t k = 0;
        for (size_t j = 1; j < i; j++) {
            t[k++] = s[j];
            if (s[j] == q)
                j++;
        }
        t[k] = '\0';
    }
    *out = t;
    return (int)i + 1;
}

/* A number: digits [. digits] [e [+-] digits]. */
static dqo_status lex_number(const char *text, int pos, sql_token *t,
                             sql_error *err)
{
    const char *s = text + pos;
    int i = 0;
    bool is_float = false;
    while (isdigit((unsigned char)s[i]))
        i++;
    if (s[i] == '.' && isdigit((unsigned char)s[i + 1])) {
        is_float = true;
        for (i++; isdigit((unsigned char)s[i]); i++) {
        }
    }
    if ((s[i] == 'e' || s[i] == 'E')) {
        int j = i + 1;
        if (s[j] == '+' || s[j] == '-')
            j++;
        if (isdigit((unsigned char)s[j])) {
            is_float = true;
            for (i = j; isdigit((unsigned char)s[i]); i++) {
            }
        }
    }
    if (is_ident_char((unsigned char)s[i]))
        return sql_fail(err, DQO_EPARSE, pos, i + 1,
                        "malformed number '%.*s'", i + 1, s);
    t->pos = pos;
    t->len = i;
    if (is_float) {
        char buf[64];
        if (i >= (int)sizeof buf)
            return sql_fail(err, DQO_EPARSE, pos, i, "number too long");
        memcpy(buf, s, (size_t)i);
        buf[i] = '\0';
        t->kind = TK_FLOAT;
        t->fval = strtod(buf, NULL);
        return DQO_OK;
    }
    uint64_t v = 0;
    for (int k = 0; k < i; k++) {
        unsigned d = (unsigned)(s[k] - '0');
        if (v > ((uint64_t)INT64_MAX - d) / 10)
            return sql_fail(err, DQO_EPARSE, pos, i,
                            "integer '%.*s' is out of range (largest is "
                            "9223372036854775807)",
                            i > 40 ? 40 : i, s);
        v = v * 10 + d;
    }
    t->kind = TK_INT;
    t->ival = (int64_t)v;
    return DQO_OK;
}

static const char *const two_char_syms[] = {"<>", "!=", "<=", ">="};
static const char one_char_syms[] = ",.()*+-/%=<>;";

/* One token at text[pos] (no whitespace there). */
static dqo_status lex_one(const char *text, int pos, sql_token *t,
                          sql_error *err)
{
    const char *s = text + pos;
    unsigned char c = (unsigned char)*s;
    t->pos = pos;
    if (is_ident_start(c)) {
        int i = 1;
        while (is_ident_char((unsigned char)s[i]))
            i++;
        t->kind = TK_IDENT;
        t->len = i;
        t->text = sql_strndup(s, (size_t)i);
        return t->text == NULL ? sql_fail(err, DQO_ENOMEM, -1, 0,
                                          "out of memory")
                               : DQO_OK;
    }
    if (c == '\'' || c == '"') {
        int n = lex_quoted(s, (char)c, &t->text);
        if (n < 0)
            return sql_fail(err, DQO_EPARSE, pos, 1, "unterminated %s",
                            c == '\'' ? "string" : "quoted identifier");
        if (t->text == NULL)
            return sql_fail(err, DQO_ENOMEM, -1, 0, "out of memory");
        t->kind = c == '\'' ? TK_STR : TK_QIDENT;
        t->len = n;
        return DQO_OK;
    }
    if (isdigit(c))
        return lex_number(text, pos, t, err);
    t->kind = TK_SYM;
    for (size_t k = 0; k < sizeof two_char_syms / sizeof *two_char_syms;
         k++) {
        if (strncmp(s, two_char_syms[k], 2) == 0) {
            memcpy(t->sym, s, 2);
            t->len = 2;
            return DQO_OK;
        }
    }
    if (c != '\0' && strchr(one_char_syms, c) != NULL) {
        t->sym[0] = (char)c;
        t->len = 1;
        return DQO_OK;
    }
    if (isprint(c))
        return sql_fail(err, DQO_EPARSE, pos, 1, "unexpected character '%c'",
                        c);
    return sql_fail(err, DQO_EPARSE, pos, 1,
                    "unexpected character (byte 0x%02x)", c);
}

/* Skips whitespace and comments from pos. */
static int skip_space(const char *text, int pos)
{
    for (;;) {
        while (isspace((unsigned char)text[pos]))
            pos++;
        if (text[pos] != '-' || text[pos + 1] != '-')
            return pos;
        while (text[pos] != '\0' && text[pos] != '\n')
            pos++;
    }
}

dqo_status sql_lex(const char *text, sql_tokens *out, sql_error *err)
{
    out->t = NULL;
    out->n = 0;
    size_t total = strlen(text);
    /* Positions are int; half of INT_MAX leaves room for pos + len. */
    if (total > (size_t)(INT32_MAX / 2))
        return sql_fail(err, DQO_EINVAL, -1, 0, "SQL text too long");
    int cap = 0, pos = 0;
    for (;;) {
        if (sql_grow((void **)&out->t, out->n, &cap, sizeof *out->t) != 0)
            return sql_fail(err, DQO_ENOMEM, -1, 0, "out of memory");
        sql_token *t = &out->t[out->n];
        memset(t, 0, sizeof *t);
        pos = skip_space(text, pos);
        if (text[pos] == '\0') {
            t->kind = TK_EOF;
            t->pos = pos;
            t->len = 1;
            out->n++;
            return DQO_OK;
        }
        dqo_status st = lex_one(text, pos, t, err);
        out->n++; /* counted even on failure so that text is freed */
        if (st != DQO_OK)
            return st;
        pos += t->len;
    }
}
