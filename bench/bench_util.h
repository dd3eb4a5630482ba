/*
 * bench_util.h - small helpers shared by the benchmark drivers (each .c
 * file in bench/ is its own program, so these are static inline).
 */
#ifndef DQO_BENCH_UTIL_H
#define DQO_BENCH_UTIL_H

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v (so v[0] is then the minimum) and returns its median. */
static inline double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Parses "100000000", "100M", "1m", "1e6", "2.5K", "1G"; 0 on error. */
static inline uint64_t parse_count(const char *s)
{
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || errno != 0 || x < 0)
        return 0;
    switch (tolower((unsigned char)*end)) {
    case 'k': x *= 1e3; end++; break;
    case 'm': x *= 1e6; end++; break;
    case 'g':
    case 'b': x *= 1e9; end++; break;
    default: break;
    }
    if (*end != '\0' || x > 1.8e19)
        return 0;
    return (uint64_t)(x + 0.5);
}

/* Splits a comma-separated list in place (s is modified and kept): up to
 * `max` non-empty items with leading blanks skipped; -1 when more. */
static inline int split_list(char *s, char **items, int max)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        while (isspace((unsigned char)*tok))
            tok++;
        if (*tok == '\0')
            continue;
        if (n == max)
            return -1;
        items[n++] = tok;
    }
    return n;
}

/* Makes text safe inside one unquoted CSV field: no commas, quotes or line
 * breaks (gnuplot and simple readers split on every comma). */
static inline void csv_clean(char *s)
{
    for (; *s; s++) {
        if (*s == ',' || *s == ';')
            *s = ';';
        else if (*s == '"')
            *s = '\'';
        else if (*s == '\n' || *s == '\r' || *s == '\t')
            *s = ' ';
    }
}

#endif /* DQO_BENCH_UTIL_H */
