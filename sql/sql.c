/*
 * sql.c - the entry points of sql/sql.h: sql_compile runs the tokenizer,
 * the parser and the binder; sql_error_format draws the caret under the
 * offending token. Pure C.
 */
#include <stdio.h>
#include <string.h>

#include "sql/sql_int.h"

dqo_status sql_compile(const char *text, const sql_catalog *cat,
                       lquery **out, sql_error *err)
{
    sql_error dummy;
    if (err == NULL)
        err = &dummy;
    memset(err, 0, sizeof *err);
    err->pos = -1;
    if (out != NULL)
        *out = NULL;
    if (text == NULL || cat == NULL || out == NULL)
        return sql_fail(err, DQO_EINVAL, -1, 0,
                        "sql_compile: text, catalog and out are required");
    sql_tokens tk;
    sql_ast ast;
    memset(&ast, 0, sizeof ast);
    dqo_status st = sql_lex(text, &tk, err);
    if (st == DQO_OK)
        st = sql_parse(text, &tk, &ast, err);
    if (st == DQO_OK)
        st = sql_bind(text, &tk, &ast, cat, out, err);
    sql_ast_free(&ast);
    sql_tokens_free(&tk);
    return st;
}

/* Appends printf output to buf at *used, clipped at len. */
static void put(char *buf, int len, int *used, const char *s, int n)
{
    int room = len - 1 - *used;
    if (room <= 0)
        return;
    if (n > room)
        n = room;
    memcpy(buf + *used, s, (size_t)n);
    *used += n;
    buf[*used] = '\0';
}

void sql_error_format(const char *text, const sql_error *err, char *buf,
                      int len)
{
    if (buf == NULL || len <= 0)
        return;
    buf[0] = '\0';
    if (err == NULL)
        return;
    int used = 0;
    put(buf, len, &used, "error: ", 7);
    const char *z = memchr(err->msg, '\0', sizeof err->msg);
    put(buf, len, &used, err->msg,
        z != NULL ? (int)(z - err->msg) : (int)sizeof err->msg);
    put(buf, len, &used, "\n", 1);
    if (text == NULL || err->pos < 0)
        return;
    int n = (int)strlen(text);
    int pos = err->pos > n ? n : err->pos;
    int start = pos, end = pos;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    while (text[end] != '\0' && text[end] != '\n')
        end++;
    put(buf, len, &used, "  ", 2);
    put(buf, len, &used, text + start, end - start);
    put(buf, len, &used, "\n  ", 3);
    for (int i = start; i < pos; i++) /* tabs kept so the caret aligns */
        put(buf, len, &used, text[i] == '\t' ? "\t" : " ", 1);
    put(buf, len, &used, "^", 1);
    /* The tildes stop at the end of the line (at least the caret shows). */
    int tildes = err->len - 1;
    if (tildes > end - pos - 1)
        tildes = end - pos - 1;
    for (int i = 0; i < tildes; i++)
        put(buf, len, &used, "~", 1);
    put(buf, len, &used, "\n", 1);
}
