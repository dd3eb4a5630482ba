/*
 * place.c - where the CPU back-end's worker threads run, and where the pages
 * of the data they scan live.
 *
 * Every back-end op binds its OpenMP team before it starts: worker t of n to
 * the core topo_core_of_thread(t, n) (one thread per core, spread over the
 * packages and NUMA nodes), through the topology API, which alone talks to
 * hwloc. The binding is made in one parallel region of the op's team size;
 * libgomp keeps the same OS thread for a thread number across later regions
 * (of that size or smaller), so the op's kernels run on the bound threads.
 * Each thread remembers the core it is bound to in a thread-local variable,
 * so that from the second op on a worker makes no system call at all. The
 * calling (master) thread is thread 0 of every team: it is bound for the op
 * too, and its own binding is saved first and put back afterwards, so that
 * the library never leaves the caller's thread pinned to a core.
 *
 * Nothing is bound when topo_can_bind() says no (a model that is not this
 * system, one PU, OMP_PLACES or OMP_PROC_BIND set, DQO_BIND=0): then the
 * OpenMP runtime places the threads as the user asked.
 *
 * place_copy copies a column with the static split the kernels use over
 * rows (thread t of n takes rows [rows * t / n, rows * (t + 1) / n)), so
 * each destination page is first touched, and therefore placed, on the NUMA
 * node of the thread that will later scan it. The split points are moved to
 * 4 KiB page boundaries of the destination, so that no page is written by
 * two threads.
 */
#include <omp.h>
#include <string.h>

#include "cpu/cpu_int.h"
#include "topology/topology.h"

/* The page size first touch places by (x86-64 and AArch64 base pages). */
#define PLACE_PAGE ((uintptr_t)4096)

/* The core this thread is bound to by place_self, -1 when none (never bound,
 * or the binding was given back to the caller). */
static _Thread_local int place_core = -1;

/* Set between cpu_team_save and cpu_team_release when the master's binding
 * could not be saved: then cpu_team_place leaves the master alone, as it
 * could not be given back. */
static _Thread_local bool place_keep_master = false;

/* Binds the calling thread to `core` unless it is bound there already. */
static void place_self(int core)
{
    if (place_core == core)
        return;
    place_core = topo_bind_self(core) == 0 ? core : -1;
}

/* The core of thread t of a team of n: spread over the machine
 * (topo_core_of_thread) when ncores <= 0, else over the cores
 * [first_core, first_core + ncores). */
static int place_core_of(int t, int n, int first_core, int ncores)
{
    if (ncores <= 0)
        return topo_core_of_thread(t, n);
    return first_core + (int)((int64_t)t * ncores / n);
}

/* Binds each thread of a team of `threads` to its core; the master (thread
 * 0) only when `master`. A smaller team than asked (the runtime may grant
 * fewer threads) binds each of its threads to the core of its number in the
 * team that was asked for, as the kernels split their rows by that number. */
static void place_team(int threads, int first_core, int ncores, bool master)
{
    if (threads < 1)
        threads = 1;
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num();
        if (t != 0 || master)
            place_self(place_core_of(t, threads, first_core, ncores));
    }
}

void cpu_team_place(int threads, int first_core, int ncores)
{
    if (topo_can_bind())
        place_team(threads, first_core, ncores, !place_keep_master);
}

void *cpu_team_save(void)
{
    if (!topo_can_bind())
        return NULL;
    void *saved = topo_binding_save();
    place_keep_master = saved == NULL;
    return saved;
}

void *cpu_team_bind(int threads)
{
    if (!topo_can_bind())
        return NULL;
    void *saved = topo_binding_save();
    /* Without a saved binding the master could not be given back its own:
     * then only the workers are bound. */
    place_team(threads, 0, 0, saved != NULL);
    return saved;
}

void cpu_team_release(void *saved)
{
    place_keep_master = false;
    if (saved == NULL)
        return;
    topo_binding_restore(saved);
    /* The master runs where the caller had it again: the next op must bind
     * it anew. */
    place_core = -1;
}

int cpu_team_where(int threads, int *pu_out)
{
    if (threads < 1)
        threads = 1;
    void *saved = cpu_team_bind(threads);
    int got = 0;
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num();
        if (t < threads)
            pu_out[t] = topo_current_pu();
#pragma omp single
        got = omp_get_num_threads();
    }
    cpu_team_release(saved);
    return got;
}

/* Byte offset of thread t's share of `bytes` among n, moved down to a page
 * boundary of dst (0 for t = 0 and `bytes` for t = n, so the shares cover
 * the buffer exactly and never overlap). */
static size_t place_split(const void *dst, size_t bytes, int t, int n)
{
    if (t <= 0)
        return 0;
    if (t >= n)
        return bytes;
    const size_t at =
        (size_t)((unsigned __int128)bytes * (unsigned)t / (unsigned)n);
    const uintptr_t base = (uintptr_t)dst;
    const uintptr_t page = (base + at) & ~(PLACE_PAGE - 1);
    return page <= base ? 0 : (size_t)(page - base);
}

void cpu_place_copy(void *dst, const void *src, size_t bytes, int threads)
{
    if (bytes == 0)
        return;
    if (threads < 1)
        threads = 1;
    if (threads == 1 || bytes < CPU_PLACE_COPY_PARALLEL_MIN) {
        memcpy(dst, src, bytes);
        return;
    }
#pragma omp parallel num_threads(threads)
    for (int t = omp_get_thread_num(); t < threads;
         t += omp_get_num_threads()) {
        const size_t lo = place_split(dst, bytes, t, threads);
        const size_t hi = place_split(dst, bytes, t + 1, threads);
        if (hi > lo)
            memcpy((char *)dst + lo, (const char *)src + lo, hi - lo);
    }
}
