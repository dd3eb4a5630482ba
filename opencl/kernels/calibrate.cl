/*
 * calibrate.cl - the micro-benchmark kernels of `dqo calibrate` on an OpenCL
 * device (OpenCL C 1.2; see opencl/calibrate.c for sizes and timing).
 *
 * Every kernel writes a result the host checks or at least keeps, so that
 * the compiler cannot drop the memory traffic being measured.
 *
 * Access layout: GPUs want neighbouring work-items on neighbouring addresses
 * (coalescing), so the streaming kernels walk the buffer grid-stride. CPU
 * devices (PoCL) run a work-group's items one after another on one thread,
 * where a grid stride would jump by the whole grid on every access; for them
 * the host passes `contiguous` = 1 and each work-item reads one block.
 */

/* The range of uint4 elements [*lo, *hi) work-item `gid` of `gsz` walks
 * with `step` between accesses. */
void item_range(ulong n4, uint contiguous, ulong *lo, ulong *hi,
                ulong *step)
{
    const ulong gid = get_global_id(0), gsz = get_global_size(0);
    if (contiguous) {
        const ulong per = (n4 + gsz - 1) / gsz;
        *lo = min(gid * per, n4);
        *hi = min(*lo + per, n4);
        *step = 1;
    } else {
        *lo = gid;
        *hi = n4;
        *step = gsz;
    }
}

/* data[i] = i, so that the sum of the first n elements is n(n-1)/2. */
__kernel void fill_iota(__global uint4 *data, ulong n4, uint contiguous)
{
    ulong lo, hi, step;
    item_range(n4, contiguous, &lo, &hi, &step);
    for (ulong i = lo; i < hi; i += step) {
        const uint b = (uint)(i * 4);
        data[i] = (uint4)(b, b + 1, b + 2, b + 3);
    }
}

/* Sequential read bandwidth: sums n4 uint4 (16-byte loads) into one partial
 * sum per work-group. Elements stay below 2^30 (the host caps the buffer at
 * 4 GiB), so the four lanes of one load add without overflow in 32 bits.
 * The local size must be a power of two; `scratch` holds one ulong per
 * work-item. */
__kernel void read_sum(__global const uint4 *restrict data, ulong n4,
                       uint contiguous, __local ulong *scratch,
                       __global ulong *partial)
{
    ulong lo, hi, step;
    item_range(n4, contiguous, &lo, &hi, &step);
    ulong s = 0;
    for (ulong i = lo; i < hi; i += step) {
        const uint4 v = data[i];
        s += (ulong)(v.x + v.y + v.z + v.w);
    }
    const uint lid = get_local_id(0);
    scratch[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint h = get_local_size(0) / 2; h > 0; h /= 2) {
        if (lid < h)
            scratch[lid] += scratch[lid + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0)
        partial[get_group_id(0)] = scratch[0];
}

/* The index stream of the gather kernels: a 32-bit linear congruential
 * generator (Numerical Recipes' constants), whose top bits are well mixed;
 * `x >> shift` picks one of 2^(32 - shift) elements. Reads of one work-item
 * are independent, so the device overlaps as many as it can: the result is
 * the cost of a random read across the device, not one thread's latency. */
#define LCG_NEXT(x) ((x) * 1664525u + 1013904223u)
#define SEED(gid) ((uint)(gid) * 0x9E3779B9u + 0x7F4A7C15u)

/* `iters` random reads per work-item within the first 2^(32 - shift)
 * elements of `data` (1 <= shift <= 31). */
__kernel void gather_global(__global const uint *restrict data, uint shift,
                            uint iters, __global uint *out)
{
    uint x = SEED(get_global_id(0));
    uint acc = 0;
    for (uint i = 0; i < iters; i++) {
        x = LCG_NEXT(x);
        acc += data[x >> shift];
    }
    out[get_global_id(0)] = acc;
}

/* The same within a local-memory buffer of 2^(32 - shift) uints, which the
 * work-group fills first. */
__kernel void gather_local(__local uint *buf, uint shift, uint iters,
                           __global uint *out)
{
    const uint n = 1u << (32 - shift);
    for (uint i = get_local_id(0); i < n; i += get_local_size(0))
        buf[i] = i;
    barrier(CLK_LOCAL_MEM_FENCE);
    uint x = SEED(get_global_id(0));
    uint acc = 0;
    for (uint i = 0; i < iters; i++) {
        x = LCG_NEXT(x);
        acc += buf[x >> shift];
    }
    out[get_global_id(0)] = acc;
}

/* Atomic adds, each work-item to its own word 64 bytes from the next
 * (no two items share a cache line). */
__kernel void atomic_private(__global uint *ctr, uint iters)
{
    __global uint *p = ctr + get_global_id(0) * 16;
    for (uint i = 0; i < iters; i++)
        atomic_add(p, 1u);
}

/* Atomic adds of every work-item to one word, ctr[slot]. */
__kernel void atomic_shared(__global uint *ctr, uint slot, uint iters)
{
    __global uint *p = ctr + slot;
    for (uint i = 0; i < iters; i++)
        atomic_add(p, 1u);
}

/* Launch latency: nothing to do. */
__kernel void noop(void) {}
