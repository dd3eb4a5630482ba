/*
 * sql.h - the SQL subset: tokenizer, parser and binder to a logical plan
 * (planner/logical.h). Pure C: no OpenMP, OpenCL or hwloc.
 *
 * Grammar (keywords case-insensitive; identifiers [A-Za-z_][A-Za-z0-9_]* or
 * "double quoted"; strings 'single quoted' with '' for a quote; numbers
 * 123, 1.5, 1e3; comments -- to end of line):
 *
 *   query   := SELECT item (, item)* FROM source (JOIN source ON cond)*
 *              [WHERE expr] [GROUP BY expr (, expr)*]
 *              [ORDER BY oitem (, oitem)*] [LIMIT integer] [;]
 *   item    := * | expr [[AS] ident]
 *   source  := ident [[AS] ident] | 'path.csv' [[AS] ident]
 *              (INNER JOIN is JOIN)
 *   cond    := colref = colref (AND colref = colref)*
 *   oitem   := (integer | ident | expr) [ASC | DESC]
 *              (an integer is a select-list position from 1; an identifier
 *               may name a select-list alias)
 *   expr    := OR / AND / NOT / comparison (= <> != < <= > >=),
 *              [NOT] BETWEEN x AND y, [NOT] IN (literal, ...),
 *              IS [NOT] NULL, + -, * / %, unary -, ( expr ), literals,
 *              colref, COUNT(*), COUNT(e), SUM(e), MIN(e), MAX(e), AVG(e)
 *   colref  := ident | ident . ident
 */
#ifndef DQO_SQL_H
#define DQO_SQL_H

#include "dqo.h"
#include "planner/logical.h"

/* A parse or bind error: what went wrong and where. */
typedef struct sql_error {
    int pos;          /* byte offset into the SQL text; -1: no position */
    int len;          /* length of the offending token (>= 1 when pos >= 0) */
    char msg[256];    /* "expected FROM, found 'FORM'" */
} sql_error;

/* How the binder reaches tables. `find` returns the table registered under
 * `name` or NULL; `load_csv` loads a CSV path written in FROM ('r.csv'),
 * returning the table (owned by the catalog, which keeps it alive for the
 * query) or NULL with the reason in err (NULL load_csv: paths are an
 * error). */
typedef struct sql_catalog {
    void *arg;
    const dqo_table *(*find)(void *arg, const char *name);
    const dqo_table *(*load_csv)(void *arg, const char *path, char *err,
                                 int errlen);
} sql_catalog;

/* Parses and binds `text`. On success *out is the query (caller frees with
 * lquery_free). On failure *out is NULL, `err` says what and where, and
 * the status is DQO_EPARSE (syntax), DQO_ENOTFOUND (unknown table or
 * column), DQO_ETYPE (type mismatch), DQO_EINVAL (other binding errors:
 * ambiguous column, bare column outside GROUP BY, ...), DQO_EIO (a CSV that
 * cannot be loaded) or DQO_ENOMEM. Never crashes, whatever the input
 * (tested with random and mutated inputs). */
dqo_status sql_compile(const char *text, const sql_catalog *cat,
                       lquery **out, sql_error *err);

/* Formats an error as
 *     error: expected FROM, found 'FORM'
 *       SELECT a FORM t
 *                ^~~~
 * (the line of the text holding pos, with a caret under the token) into
 * buf. */
void sql_error_format(const char *text, const sql_error *err, char *buf,
                      int len);

#endif /* DQO_SQL_H */
