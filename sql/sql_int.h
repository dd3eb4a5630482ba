/*
 * sql_int.h - private declarations shared by the tokenizer (lexer.c), the
 * parser (parser.c) and the binder (bind.c). Pure C.
 *
 * The parser produces an sql_ast whose expressions are already lexpr nodes
 * (planner/logical.h) but unbound: a column reference is LX_COL with
 * table = col = -1, sval = the column name, `negated` = "was quoted", and
 * for a qualified reference a = an LX_STR node holding the qualifier. For
 * LX_BIN, LX_BETWEEN, LX_IN and LX_ISNULL nodes ival holds the operator's byte
 * offset (for error carets) until
 * the binder clears it. The binder resolves names, checks types and moves the
 * trees into the lquery.
 */
#ifndef DQO_SQL_INT_H
#define DQO_SQL_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "sql/sql.h"

/* Nesting limit for expressions (parentheses, NOT, unary minus, operator
 * chains): deep enough for any real query, shallow enough that the
 * recursive parser, binder and free never come near the stack limit even
 * with ASan's large frames. */
#define SQL_MAX_DEPTH 200

typedef enum sql_tk {
    TK_EOF = 0,
    TK_IDENT,  /* unquoted identifier or keyword; text = as written */
    TK_QIDENT, /* "quoted" identifier; text = unquoted */
    TK_INT,
    TK_FLOAT,
    TK_STR,    /* 'string'; text = unescaped */
    TK_SYM     /* punctuation or operator; sym */
} sql_tk;

typedef struct sql_token {
    sql_tk kind;
    int pos, len;  /* byte span in the text; EOF: pos = strlen, len = 1 */
    int64_t ival;
    double fval;
    char *text;    /* owned; NULL for numbers, symbols and EOF */
    char sym[3];
} sql_token;

typedef struct sql_tokens {
    sql_token *t;
    int n; /* the last one is TK_EOF */
} sql_tokens;

/* Sets err (pos, len, printf-style message) and returns st. */
dqo_status sql_fail(sql_error *err, dqo_status st, int pos, int len,
                    const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* Splits text into tokens; the caller frees with sql_tokens_free (also
 * after a failure). */
dqo_status sql_lex(const char *text, sql_tokens *out, sql_error *err);
void sql_tokens_free(sql_tokens *tk);
/* The length of the token starting at byte pos (1 when none starts there). */
int sql_token_len_at(const sql_tokens *tk, int pos);

typedef struct ast_item {
    lexpr *e;     /* NULL: `*` */
    char *alias;  /* NULL: none */
    int pos, end; /* the item's text span */
} ast_item;

typedef struct ast_source {
    char *name;   /* table name or CSV path */
    bool is_path, quoted;
    char *alias;  /* NULL: none */
    int pos, len; /* the name's token */
    int nkeys;
    lexpr *l[LQ_MAX_JOIN_KEYS], *r[LQ_MAX_JOIN_KEYS];
    int on_pos;
} ast_source;

typedef struct ast_order {
    lexpr *e;
    bool desc;
} ast_order;

typedef struct sql_ast {
    int nitems, nsrc, ngroup, norder;
    ast_item *items;
    ast_source src[LQ_MAX_TABLES];
    lexpr *where;
    lexpr **group;
    ast_order *order;
    int64_t limit; /* -1: none */
} sql_ast;

/* Parses the tokens of text into ast (zeroed by the caller); the caller
 * frees with sql_ast_free (also after a failure). */
dqo_status sql_parse(const char *text, const sql_tokens *tk, sql_ast *ast,
                     sql_error *err);
void sql_ast_free(sql_ast *ast);

/* Binds ast into a new query; moves the expressions out of ast. */
dqo_status sql_bind(const char *text, const sql_tokens *tk, sql_ast *ast,
                    const sql_catalog *cat, lquery **out, sql_error *err);

/* Structural equality of bound expressions (positions ignored). */
bool sql_lexpr_equal(const lexpr *a, const lexpr *b);
/* Grows *arr (elements of sz bytes) to hold at least n + 1; 0 or -1. */
int sql_grow(void **arr, int n, int *cap, size_t sz);
/* A malloc'ed copy of s[0..n); NULL on out of memory. */
char *sql_strndup(const char *s, size_t n);
char *sql_strdup(const char *s);
/* ASCII case-insensitive equality (strcasecmp without POSIX headers). */
bool sql_ieq(const char *a, const char *b);

#endif /* DQO_SQL_INT_H */
