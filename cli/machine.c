/*
 * machine.c - `dqo devices` and `dqo calibrate`: the machine model the
 * planner works from, and the micro-benchmarks that fill its calibration
 * profile.
 *
 * Both are thin: the library describes the model (dqo_machine_describe) and
 * runs the benchmarks (dqo_calibrate); this file parses options, draws the
 * progress of a calibration on stderr and passes on the context's warnings
 * (a missing, stale or corrupt profile) as "dqo: warning: <line>". Results
 * go to stdout like every other command's.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* ================================================================ help text */

/* What both help pages say about the profile and the environment. */
#define HELP_PROFILE                                                           \
    "the calibration profile:\n"                                               \
    "  A versioned text file of measured figures per location (read\n"         \
    "  bandwidth by thread count, cache latencies, atomics, host-device\n"     \
    "  transfers, kernel launch latency, kernel costs) that the planner\n"     \
    "  uses in place of defaults derived from the topology. It lives in\n"     \
    "  $XDG_CACHE_HOME/dqo/ (~/.cache/dqo/ when XDG_CACHE_HOME is unset),\n"   \
    "  named by a fingerprint of the topology (CPU model, packages, NUMA\n"    \
    "  nodes, cores, caches, memory, OpenCL devices and drivers), so each\n"   \
    "  machine has its own; $DQO_PROFILE names another file. A missing\n"      \
    "  profile, a stale one (another machine or hardware, dqo version or\n"    \
    "  file format) or a corrupt one (edited, truncated, bad checksum) is\n"   \
    "  never an error: dqo prints a warning on stderr and plans from the\n"    \
    "  topology defaults until 'dqo calibrate' writes a new one.\n"

#define HELP_ENV                                                               \
    "environment:\n"                                                           \
    "  DQO_PROFILE=PATH      the profile to read and write (overrides the\n"   \
    "                        default path above)\n"                            \
    "  XDG_CACHE_HOME=DIR    where the default profile lives\n"                \
    "  OMP_NUM_THREADS=N     the thread count when --threads is not given\n"   \
    "  OMP_PLACES, OMP_PROC_BIND\n"                                            \
    "                        when either is set, the OpenMP runtime places\n"  \
    "                        the threads and dqo does not bind them itself\n"  \
    "  DQO_BIND=0            never bind worker threads to cores\n"             \
    "  HWLOC_XMLFILE=FILE    read the topology from an XML file (lstopo\n"     \
    "                        --of xml) instead of this machine\n"              \
    "  HWLOC_SYNTHETIC=DESC  use a synthetic topology, for example\n"          \
    "                        'pack:2 numa:2 core:4 pu:1'\n"                    \
    "  With HWLOC_XMLFILE or HWLOC_SYNTHETIC the model is not this machine:\n" \
    "  dqo devices describes it, dqo does not bind threads, and dqo\n"         \
    "  calibrate refuses to run (it measures this machine).\n"

const char HELP_DEVICES[] =
    "usage: dqo devices [--json] [--threads T]\n"
    "\n"
    "Prints the machine model that the planner works from: the locations\n"
    "where work can run and what is known about each of them.\n"
    "  cpu         every core of the machine\n"
    "  cpu:numaN   the cores and memory of NUMA node N\n"
    "  cl:N        the N-th OpenCL device in the ICD loader's order\n"
    "For each: the CPU model or device name, cores or compute units,\n"
    "hardware threads, memory, caches (devices: local memory and cache), the\n"
    "PCI bus id and nominal link speed of a device, whether it reads host\n"
    "memory directly, and, when a calibration profile exists, the measured\n"
    "figures (read bandwidth, pinned host-to-device transfer, kernel launch\n"
    "latency). The CPU comes from hwloc and the devices from the OpenCL\n"
    "platforms, matched by PCI bus id; a machine without an OpenCL platform\n"
    "lists its CPU locations and says so (exit status 0). Warnings about the\n"
    "profile go to stderr as 'dqo: warning: ...'.\n"
    "\n"
    "options:\n"
    "  --json            print the model as JSON (an object with a\n"
    "                    \"locations\" array) instead of a table\n"
    "  -t, --threads T   the worker thread count to show on the 'threads'\n"
    "                    line of the table, as a query given --threads T\n"
    "                    would use (default 0: OMP_NUM_THREADS when set,\n"
    "                    else one per core)\n"
    "\n" HELP_PROFILE "\n" HELP_ENV
    "\n"
    "examples:\n"
    "  dqo devices\n"
    "  dqo devices --json | python3 -m json.tool\n"
    "  HWLOC_SYNTHETIC='pack:2 numa:2 core:4 pu:1' dqo devices\n";

const char HELP_CALIBRATE[] =
    "usage: dqo calibrate [--quick] [--output PATH] [--locations ID,...]\n"
    "                     [--threads T] [--no-progress]\n"
    "\n"
    "Runs micro-benchmarks on every location of the machine (see dqo devices\n"
    "--help) or on the ones listed: sequential read bandwidth at several\n"
    "thread counts, cache and memory latencies, atomics, host-device\n"
    "transfers (pageable and pinned) and kernel launch latency of OpenCL\n"
    "devices, and the cost per row of the grouping kernels. The figures are\n"
    "written to the calibration profile, which later runs of dqo read to\n"
    "plan. A full run takes up to a minute; --quick takes about 10 s with\n"
    "fewer sizes and repetitions. Run it on an idle machine: whatever else\n"
    "runs meanwhile lowers the figures.\n"
    "\n"
    "While it runs, a progress bar on stderr shows the share done, the\n"
    "current step and the time taken (one line per step when stderr is not\n"
    "a terminal). At the end, stdout gets 'profile written to PATH (took\n"
    "X.X s)' and the table of dqo devices with the new figures.\n"
    "\n"
    "options:\n"
    "  --quick              fewer sizes and repetitions (about 10 s)\n"
    "  -o, --output PATH    write the profile to PATH (default: $DQO_PROFILE,\n"
    "                       else this machine's file in the cache directory;\n"
    "                       see below). Later runs read a profile at PATH\n"
    "                       only when $DQO_PROFILE names it.\n"
    "  -l, --locations IDS  only these locations: ids as listed by dqo\n"
    "                       devices, comma separated, for example cpu,cl:0\n"
    "                       (may be repeated; default: every location). The\n"
    "                       locations left out keep the figures of the\n"
    "                       profile in use, if any. An unknown id is an\n"
    "                       error (status 1) before anything is measured.\n"
    "  -t, --threads T      the most worker threads to measure with, 0 for\n"
    "                       every core (default: 0)\n"
    "  --no-progress        no progress on stderr\n"
    "\n" HELP_PROFILE "\n" HELP_ENV
    "\n"
    "examples:\n"
    "  dqo calibrate --quick\n"
    "  dqo calibrate --locations cpu --output /tmp/profile.txt\n"
    "  DQO_PROFILE=/tmp/profile.txt dqo devices\n";

/* ================================================================ warnings */

/* Prints every line of the context's warnings as "dqo: warning: <line>". */
void print_warnings(dqo_ctx *ctx)
{
    const char *w = dqo_ctx_warnings(ctx);
    while (w != NULL && *w != '\0') {
        const char *nl = strchr(w, '\n');
        size_t len = nl != NULL ? (size_t)(nl - w) : strlen(w);
        if (len > 0)
            fprintf(stderr, "dqo: warning: %.*s\n", (int)len, w);
        w = nl != NULL ? nl + 1 : w + len;
    }
}

/* ================================================================= devices */

int cmd_devices(int argc, char **argv)
{
    const char *threads_s = NULL;
    int json = 0, threads = 0;
    const opt_spec specs[] = {
        {"json", 0, OPT_FLAG, &json, NULL, NULL},
        {"threads", 't', OPT_VALUE, NULL, &threads_s, NULL},
        {NULL, 0, OPT_FLAG, NULL, NULL, NULL}};
    parsed_args pa = {{NULL, 0, 0}, 0};
    dqo_ctx *ctx = NULL;
    char *text = NULL;
    int rc = parse_args("devices", argc, argv, specs, &pa);
    if (rc != 0)
        goto done;
    if (pa.help) {
        fputs(HELP_DEVICES, stdout);
        goto done;
    }
    if (pa.positional.n > 0) {
        rc = usage_error("devices", "unexpected argument '%s'",
                         pa.positional.v[0]);
        goto done;
    }
    if ((rc = parse_threads("devices", threads_s, &threads)) != 0 ||
        (rc = open_ctx(threads, &ctx)) != 0)
        goto done;
    dqo_status st = dqo_machine_describe(ctx, json, &text);
    if (st != DQO_OK) {
        text = NULL;
        rc = api_error(ctx, st);
        goto done;
    }
    fputs(text, stdout);
    if (text[0] != '\0' && text[strlen(text) - 1] != '\n')
        fputc('\n', stdout);
    if (!json)
        printf("\nthreads   %d worker thread%s per query\n",
               dqo_ctx_threads(ctx), dqo_ctx_threads(ctx) == 1 ? "" : "s");
    /* After the output: the warnings are what a reader should see last. */
    fflush(stdout);
    print_warnings(ctx);
done:
    dqo_free(text);
    dqo_ctx_destroy(ctx);
    free(pa.positional.v);
    return rc;
}

/* =============================================================== calibrate */

/* The width of the bar between the brackets, in characters. */
#define BAR_WIDTH 20
/* Redraw the bar at most this often (seconds) while nothing else changes. */
#define BAR_REDRAW_S 0.1
/* A step may run for seconds without a report; the ticker redraws the bar
 * this often meanwhile, so that the clock on it keeps going. */
#define BAR_TICK_S 0.25

/* The state of the progress report on stderr. The library reports from
 * the calibrating thread and, on a terminal, the ticker thread redraws in
 * between; `lock` keeps their lines whole. */
typedef struct progress {
    int tty;          /* stderr is a terminal: redraw one line in place */
    int columns;      /* the terminal's width */
    double t0;        /* when the calibration started */
    double last_draw; /* when the bar was last drawn */
    double done;      /* the share done last reported */
    int last_pct;     /* the percentage last shown, -1 none */
    size_t shown_len; /* characters of the line now on the terminal */
    int active;       /* a bar is on the terminal without its newline */
    char step[256];   /* the step last shown */
    pthread_mutex_t lock;
    pthread_t ticker;
    int ticking; /* the ticker thread runs */
    int stop;    /* asks the ticker to end */
} progress;

static int terminal_columns(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col;
    const char *c = getenv("COLUMNS");
    int n = c != NULL ? atoi(c) : 0;
    return n >= 20 ? n : 80;
}

/* Copies at most `max` bytes of `s` into buf (of `len` bytes), cutting at
 * a UTF-8 character boundary, and returns the length copied. */
static size_t copy_cut(char *buf, size_t len, const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        n = max;
    if (n >= len)
        n = len - 1;
    if (n < strlen(s))
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return n;
}

/* Draws "\r[#####.....]  45%  step   12.3 s" over the previous line. */
static void progress_draw(progress *p, double done, int pct, const char *step,
                          double elapsed)
{
    char bar[BAR_WIDTH + 1];
    int filled = (int)(done * BAR_WIDTH);
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    char head[BAR_WIDTH + 16], tail[32];
    snprintf(head, sizeof head, "[%s] %3d%%  ", bar, pct);
    snprintf(tail, sizeof tail, "   %.1f s", elapsed);
    /* One column is left free so that the cursor never wraps the line. */
    size_t fixed = strlen(head) + strlen(tail);
    size_t room = (size_t)p->columns > fixed + 1
                      ? (size_t)p->columns - fixed - 1
                      : 0;
    char text[256];
    copy_cut(text, sizeof text, step, room);
    char line[512];
    int n = snprintf(line, sizeof line, "%s%s%s", head, text, tail);
    size_t len = n > 0 ? (size_t)n : 0;
    if (len >= sizeof line)
        len = sizeof line - 1;
    fputc('\r', stderr);
    fputs(line, stderr);
    /* Blank out what is left of a longer previous line. */
    for (size_t i = len; i < p->shown_len; i++)
        fputc(' ', stderr);
    p->shown_len = len;
    p->active = 1;
    fflush(stderr);
}

/* The dqo_progress_fn of dqo_calibrate. */
static void progress_report(void *arg, double done, const char *step)
{
    progress *p = arg;
    if (!(done >= 0.0)) /* also NaN */
        done = 0.0;
    if (done > 1.0)
        done = 1.0;
    if (step == NULL)
        step = "";
    int pct = (int)(done * 100.0);
    pthread_mutex_lock(&p->lock);
    double now = now_seconds();
    int new_step = strcmp(step, p->step) != 0;
    if (p->tty) {
        if (new_step || pct != p->last_pct ||
            now - p->last_draw >= BAR_REDRAW_S) {
            progress_draw(p, done, pct, step, now - p->t0);
            p->last_draw = now;
        }
    } else if (new_step) {
        fprintf(stderr, "calibrate %3d%%  %s  (%.1f s)\n", pct, step,
                now - p->t0);
        fflush(stderr);
    }
    p->last_pct = pct;
    p->done = done;
    if (new_step)
        snprintf(p->step, sizeof p->step, "%s", step);
    pthread_mutex_unlock(&p->lock);
}

/* The ticker thread: redraws the last report with the time running on. */
static void *progress_tick(void *arg)
{
    progress *p = arg;
    const struct timespec nap = {0, 50 * 1000 * 1000};
    for (;;) {
        nanosleep(&nap, NULL);
        pthread_mutex_lock(&p->lock);
        if (p->stop) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        double now = now_seconds();
        if (p->active && now - p->last_draw >= BAR_TICK_S) {
            progress_draw(p, p->done, p->last_pct, p->step, now - p->t0);
            p->last_draw = now;
        }
        pthread_mutex_unlock(&p->lock);
    }
}

/* Starts the report; on a terminal also the ticker (without it, when no
 * thread can be made, the clock moves only with the reports). */
static void progress_start(progress *p)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    p->tty = isatty(STDERR_FILENO);
    p->columns = p->tty ? terminal_columns() : 80;
    p->last_pct = -1;
    p->t0 = now_seconds();
    if (p->tty)
        p->ticking = pthread_create(&p->ticker, NULL, progress_tick, p) == 0;
}

/* Ends the report: the full bar and its newline after a success, just the
 * newline after a failure (the last step shown says where it stopped). */
static void progress_end(progress *p, int ok)
{
    if (p->ticking) {
        pthread_mutex_lock(&p->lock);
        p->stop = 1;
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->ticker, NULL);
        p->ticking = 0;
    }
    double elapsed = now_seconds() - p->t0;
    if (p->tty) {
        if (ok)
            progress_draw(p, 1.0, 100, "done", elapsed);
        if (p->active)
            fputc('\n', stderr);
    } else if (ok && strcmp(p->step, "done") != 0) {
        /* The library usually reports "done" itself. */
        fprintf(stderr, "calibrate 100%%  done  (%.1f s)\n", elapsed);
    }
    p->active = 0;
    fflush(stderr);
    pthread_mutex_destroy(&p->lock);
}

/* Joins the --locations values into one comma-separated list of trimmed
 * ids. Returns 0 with *out (caller frees; NULL when none was given), or the
 * exit status. */
static int join_locations(const str_list *in, char **out)
{
    *out = NULL;
    if (in->n == 0)
        return 0;
    size_t cap = 1;
    for (size_t i = 0; i < in->n; i++)
        cap += strlen(in->v[i]) + 1;
    char *buf = malloc(cap);
    if (buf == NULL)
        return cli_error("out of memory");
    size_t used = 0;
    for (size_t i = 0; i < in->n; i++) {
        const char *s = in->v[i];
        for (;;) {
            const char *end = strchr(s, ',');
            size_t len = end != NULL ? (size_t)(end - s) : strlen(s);
            const char *a = s, *b = s + len;
            while (a < b && (*a == ' ' || *a == '\t'))
                a++;
            while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
                b--;
            if (a == b) {
                free(buf);
                return usage_error("calibrate",
                                   "empty location id in --locations '%s' "
                                   "(expected ids like cpu,cl:0)",
                                   in->v[i]);
            }
            if (used > 0)
                buf[used++] = ',';
            memcpy(buf + used, a, (size_t)(b - a));
            used += (size_t)(b - a);
            if (end == NULL)
                break;
            s = end + 1;
        }
    }
    buf[used] = '\0';
    *out = buf;
    return 0;
}

int cmd_calibrate(int argc, char **argv)
{
    const char *output = NULL, *threads_s = NULL;
    int quick = 0, no_progress = 0, threads = 0;
    str_list locations_opt = {NULL, 0, 0};
    const opt_spec specs[] = {
        {"quick", 0, OPT_FLAG, &quick, NULL, NULL},
        {"output", 'o', OPT_VALUE, NULL, &output, NULL},
        {"locations", 'l', OPT_LIST, NULL, NULL, &locations_opt},
        {"threads", 't', OPT_VALUE, NULL, &threads_s, NULL},
        {"no-progress", 0, OPT_FLAG, &no_progress, NULL, NULL},
        {NULL, 0, OPT_FLAG, NULL, NULL, NULL}};
    parsed_args pa = {{NULL, 0, 0}, 0};
    dqo_ctx *ctx = NULL;
    char *locations = NULL, *path = NULL, *text = NULL;
    int rc = parse_args("calibrate", argc, argv, specs, &pa);
    if (rc != 0)
        goto done;
    if (pa.help) {
        fputs(HELP_CALIBRATE, stdout);
        goto done;
    }
    if (pa.positional.n > 0) {
        rc = usage_error("calibrate", "unexpected argument '%s'",
                         pa.positional.v[0]);
        goto done;
    }
    if (output != NULL && output[0] == '\0') {
        rc = usage_error("calibrate", "--output needs a non-empty path");
        goto done;
    }
    if ((rc = parse_threads("calibrate", threads_s, &threads)) != 0 ||
        (rc = join_locations(&locations_opt, &locations)) != 0)
        goto done;
    struct stat sb;
    if (output != NULL && stat(output, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        rc = cli_error("cannot write the profile to '%s': it is a directory",
                       output);
        goto done;
    }
    if ((rc = open_ctx(threads, &ctx)) != 0)
        goto done;

    progress p;
    double t0 = now_seconds();
    if (!no_progress)
        progress_start(&p);
    dqo_calibrate_options opts;
    memset(&opts, 0, sizeof opts);
    opts.quick = quick;
    opts.output = output;
    opts.locations = locations;
    opts.progress = no_progress ? NULL : progress_report;
    opts.progress_arg = no_progress ? NULL : &p;
    dqo_status st = dqo_calibrate(ctx, &opts, &path);
    double took = now_seconds() - t0;
    if (!no_progress)
        progress_end(&p, st == DQO_OK);
    if (st != DQO_OK) {
        path = NULL;
        rc = api_error(ctx, st);
        goto done;
    }
    if (path == NULL && output == NULL &&
        dqo_profile_path(ctx, &path) != DQO_OK)
        path = NULL;
    printf("profile written to %s (took %.1f s)\n\n",
           path != NULL ? path : output != NULL ? output : "?", took);
    if ((st = dqo_machine_describe(ctx, 0, &text)) != DQO_OK) {
        text = NULL;
        rc = api_error(ctx, st);
        goto done;
    }
    fputs(text, stdout);
    if (text[0] != '\0' && text[strlen(text) - 1] != '\n')
        fputc('\n', stdout);
    fflush(stdout);
    print_warnings(ctx);
done:
    dqo_free(text);
    dqo_free(path);
    free(locations);
    dqo_ctx_destroy(ctx);
    free(locations_opt.v);
    free(pa.positional.v);
    return rc;
}
