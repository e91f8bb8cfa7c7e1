// cuda_emu.h: a small emulation of the CUDA execution model on the CPU, so that the very same
// kernels/*.cu sources that NVRTC compiles for the GPU also compile as C++ (g++ -std=c++17) and run here.
// Used by the `cuda-emu` device (src/backend/cuda/emu.rs), which is how every kernel is verified on
// machines without a GPU.
//
// What is emulated:
//   * threadIdx / blockIdx / blockDim / gridDim. The blocks of a grid run one after another; the threads
//     of one block are real OS threads, so they interleave arbitrarily, as on a GPU.
//   * __syncthreads(): a barrier of the block's threads. Threads that have returned from the kernel leave
//     the barrier (as exited threads do on current GPUs). Two threads waiting at *different*
//     __syncthreads() calls is reported as an error (undefined behaviour in CUDA), and so is a barrier
//     nobody can complete (a deadlock), instead of hanging.
//   * __shared__: one instance per kernel function; correct because blocks never run concurrently.
//   * warp shuffles (__shfl_sync/_up/_down/_xor) and __syncwarp: the lanes of a warp exchange values
//     through a per-warp slot array between two warp barriers, so a lane that does not take part (divergent
//     shuffle, wrong mask) is detected instead of silently reading garbage.
//   * atomics on global and shared memory (atomicAdd/Max/Min/Exch/CAS) with real CPU atomics.
//   * math built-ins used by our kernels (expf, __expf, rsqrtf, fmaxf, __int_as_float, ...).
// Global memory bounds are checked by the host side (red zones around every buffer, see emu.rs).
//
// What it cannot show: speed, coalescing, bank conflicts, occupancy, and lockstep execution of a warp
// (lanes here run independently, so warp-synchronous code without __syncwarp fails here, which is
// the safe direction). Floating-point results may differ in the last bits from a GPU (FMA contraction,
// fast-math intrinsics such as __expf are exact here).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

// ------------------------------------------------------------------ keywords and vector types
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __shared__ static
#define __constant__ static

struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x = 1, y = 1, z = 1;
};
struct alignas(8) float2 {
    float x, y;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline dim3 blockDim;
inline dim3 gridDim;
constexpr int warpSize = 32;

// ------------------------------------------------------------------ math built-ins
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline unsigned int __float_as_uint(float f) { unsigned int i; std::memcpy(&i, &f, 4); return i; }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
template <typename T> inline T __ldg(const T *p) { return *p; }

namespace emu {

// ------------------------------------------------------------------ errors
// Thrown inside a kernel thread to stop the launch; the message goes back to Rust.
struct Abort {};

struct LaunchState {
    std::mutex m;
    bool failed = false;
    std::string message;
    std::vector<std::condition_variable *> waiters;  // every barrier's condvar, woken on failure

    void fail(const std::string &msg) {
        {
            std::lock_guard<std::mutex> g(m);
            if (!failed) {
                failed = true;
                message = msg;
            }
        }
        for (auto *cv : waiters) cv->notify_all();
    }
    bool has_failed() {
        std::lock_guard<std::mutex> g(m);
        return failed;
    }
};

inline LaunchState *g_launch = nullptr;

inline std::string where() {
    char buf[160];
    std::snprintf(buf, sizeof buf, "block (%u,%u,%u) thread (%u,%u,%u)", blockIdx.x, blockIdx.y, blockIdx.z,
                  threadIdx.x, threadIdx.y, threadIdx.z);
    return buf;
}

[[noreturn]] inline void fail(const std::string &msg) {
    g_launch->fail(msg + " at " + where());
    throw Abort{};
}

// How long a barrier may wait before the launch is declared deadlocked. Generous: 1024 OS threads on a
// busy 2-core machine are slow to all arrive, but a real deadlock waits forever.
constexpr auto DEADLOCK_AFTER = std::chrono::seconds(60);

// A barrier that threads can leave (when they return from the kernel) and that checks that every thread
// of a phase arrived from the same source line.
struct Barrier {
    std::mutex m;
    std::condition_variable cv;
    int expected = 0;
    int arrived = 0;
    int line = -1;  // source line of the first arrival in the current phase
    unsigned long phase = 0;
    const char *what = "__syncthreads";

    void reset(int n) {
        std::lock_guard<std::mutex> g(m);
        expected = n;
        arrived = 0;
        line = -1;
    }
    void release_locked() {
        arrived = 0;
        line = -1;
        ++phase;
        cv.notify_all();
    }
    void wait(int at_line) {
        std::unique_lock<std::mutex> lk(m);
        if (g_launch->has_failed()) throw Abort{};
        if (line < 0) {
            line = at_line;
        } else if (line != at_line) {
            char buf[200];
            std::snprintf(buf, sizeof buf, "threads of one block wait at different %s calls (lines %d and %d)",
                          what, line, at_line);
            lk.unlock();
            fail(buf);
        }
        if (++arrived == expected) {
            release_locked();
            return;
        }
        const unsigned long my_phase = phase;
        while (phase == my_phase) {
            if (cv.wait_for(lk, DEADLOCK_AFTER) == std::cv_status::timeout && phase == my_phase) {
                char buf[200];
                std::snprintf(buf, sizeof buf, "deadlock: %d of %d threads waited at %s (line %d) for %lld s",
                              arrived, expected, what, line, (long long)DEADLOCK_AFTER.count());
                lk.unlock();
                fail(buf);
            }
            if (phase == my_phase && g_launch->has_failed()) throw Abort{};
        }
    }
    // A thread that returned from the kernel: it no longer counts.
    void leave() {
        std::lock_guard<std::mutex> g(m);
        --expected;
        if (arrived > 0 && arrived == expected) release_locked();
    }
};

// One warp's shuffle exchange: each lane publishes its value, the warp meets, each reads its source.
struct Warp {
    Barrier bar;
    unsigned long long slots[32];
    unsigned int live_mask = 0;  // lanes that have not returned from the kernel
    std::mutex m;
};

struct Block {
    Barrier sync;
    std::vector<Warp> warps;
};

inline thread_local Block *t_block = nullptr;
inline thread_local int t_linear = 0;  // linear thread index within the block

inline int lane_id() { return t_linear & 31; }

inline void syncthreads(int line) { t_block->sync.wait(line); }

template <typename T>
inline unsigned long long to_bits(T v) {
    static_assert(sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
    unsigned long long b = 0;
    std::memcpy(&b, &v, sizeof(T));
    return b;
}
template <typename T>
inline T from_bits(unsigned long long b) {
    T v;
    std::memcpy(&v, &b, sizeof(T));
    return v;
}

inline void check_mask(unsigned int mask, const char *fn) {
    Warp &w = t_block->warps[t_linear >> 5];
    unsigned int live;
    {
        std::lock_guard<std::mutex> g(w.m);
        live = w.live_mask;
    }
    // Our kernels only shuffle with every live lane taking part; anything else is a bug here (and on a
    // GPU a lane named in the mask but not arriving is undefined behaviour).
    if ((mask & live) != live || !(mask & (1u << lane_id()))) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "%s with mask 0x%08x but live lanes 0x%08x", fn, mask, live);
        fail(buf);
    }
}

template <typename T>
inline T shuffle(unsigned int mask, T v, int src_lane, int line, const char *fn) {
    check_mask(mask, fn);
    Warp &w = t_block->warps[t_linear >> 5];
    w.slots[lane_id()] = to_bits(v);
    w.bar.wait(line);
    const T r = from_bits<T>(w.slots[src_lane & 31]);
    w.bar.wait(line);  // nobody overwrites a slot before every lane has read it
    return r;
}

inline void syncwarp(unsigned int mask, int line) {
    check_mask(mask, "__syncwarp");
    t_block->warps[t_linear >> 5].bar.wait(line);
}

// Runs `body` for every thread of every block of the grid. Returns 0, or 1 with `err` filled.
inline int run_grid(dim3 grid, dim3 block, const std::function<void()> &body, char *err, size_t errlen) {
    const long long nthreads = (long long)block.x * block.y * block.z;
    const long long nblocks = (long long)grid.x * grid.y * grid.z;
    auto report = [&](const std::string &m) {
        std::snprintf(err, errlen, "%s", m.c_str());
        return 1;
    };
    if (nthreads < 1 || nthreads > 1024) return report("block of " + std::to_string(nthreads) + " threads (1..=1024 allowed)");
    if (block.z > 64) return report("blockDim.z above 64");
    if (nblocks < 1) return report("empty grid");
    if (grid.y > 65535 || grid.z > 65535) return report("gridDim.y or gridDim.z above 65535");

    LaunchState launch;
    g_launch = &launch;
    gridDim = grid;
    blockDim = block;

    Block blk;
    const int nwarps = (int)((nthreads + 31) / 32);
    blk.warps = std::vector<Warp>(nwarps);
    blk.sync.what = "__syncthreads";
    launch.waiters.push_back(&blk.sync.cv);
    for (auto &w : blk.warps) {
        w.bar.what = "__syncwarp/__shfl";
        launch.waiters.push_back(&w.bar.cv);
    }
    // Between blocks every thread meets here, and the last one re-arms the barriers of the block.
    Barrier block_end;
    block_end.what = "block end";
    launch.waiters.push_back(&block_end.cv);

    auto arm = [&]() {
        blk.sync.reset((int)nthreads);
        for (int wi = 0; wi < nwarps; ++wi) {
            const int lanes = (int)std::min<long long>(32, nthreads - 32LL * wi);
            blk.warps[wi].bar.reset(lanes);
            blk.warps[wi].live_mask = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1);
        }
    };
    arm();
    block_end.reset((int)nthreads);

    auto worker = [&](int linear) {
        t_block = &blk;
        t_linear = linear;
        threadIdx.x = linear % block.x;
        threadIdx.y = (linear / block.x) % block.y;
        threadIdx.z = linear / (block.x * block.y);
        for (long long b = 0; b < nblocks; ++b) {
            blockIdx.x = (unsigned)(b % grid.x);
            blockIdx.y = (unsigned)((b / grid.x) % grid.y);
            blockIdx.z = (unsigned)(b / ((long long)grid.x * grid.y));
            try {
                body();
            } catch (const Abort &) {
            } catch (const std::exception &e) {
                launch.fail(std::string("C++ exception in kernel: ") + e.what());
            }
            // Returned: leave the block's barriers so the remaining threads can still meet.
            Warp &w = blk.warps[linear >> 5];
            {
                std::lock_guard<std::mutex> g(w.m);
                w.live_mask &= ~(1u << (linear & 31));
            }
            w.bar.leave();
            blk.sync.leave();
            if (launch.has_failed()) return;
            // The block is over when everyone got here; one thread re-arms for the next block.
            try {
                block_end.wait(0);
            } catch (const Abort &) {
                return;
            }
            if (linear == 0) {
                arm();
            }
            try {
                block_end.wait(1);
            } catch (const Abort &) {
                return;
            }
        }
    };
    std::vector<std::thread> threads;
    threads.reserve((size_t)nthreads);
    for (int t = 0; t < (int)nthreads; ++t) threads.emplace_back(worker, t);
    for (auto &t : threads) t.join();
    g_launch = nullptr;
    if (launch.failed) return report(launch.message);
    return 0;
}

// ------------------------------------------------------------------ kernel entry points
// Arguments arrive as cuLaunchKernel takes them: an array of pointers, one per parameter, each pointing
// at the parameter's value. The same array the Rust launch code builds for the driver.
template <typename T>
struct Sig;
template <typename... A>
struct Sig<void (*)(A...)> {
    static constexpr size_t arity = sizeof...(A);
    template <void (*F)(A...), size_t... I>
    static void call(void **args, std::index_sequence<I...>) {
        F(*static_cast<std::decay_t<A> *>(args[I])...);
    }
};

typedef int (*EntryFn)(const unsigned int *grid, const unsigned int *block, void **args, char *err, size_t errlen);

template <auto F>
int entry(const unsigned int *grid, const unsigned int *block, void **args, char *err, size_t errlen) {
    using S = Sig<decltype(F)>;
    dim3 g{grid[0], grid[1], grid[2]};
    dim3 b{block[0], block[1], block[2]};
    return run_grid(g, b, [args] { S::template call<F>(args, std::make_index_sequence<S::arity>{}); }, err, errlen);
}

struct Kernel {
    const char *name;
    EntryFn fn;
};

// ------------------------------------------------------------------ atomics
template <typename T, typename Op>
inline T atomic_rmw(T *addr, Op op) {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8, "atomic of unsupported width");
    using U = std::conditional_t<sizeof(T) == 4, unsigned int, unsigned long long>;
    U *p = reinterpret_cast<U *>(addr);
    U old = __atomic_load_n(p, __ATOMIC_RELAXED);
    for (;;) {
        const T cur = from_bits<T>(old);
        const T next = op(cur);
        U next_bits = (U)to_bits(next);
        if (__atomic_compare_exchange_n(p, &old, next_bits, true, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) return cur;
    }
}

}  // namespace emu

#define __syncthreads() emu::syncthreads(__LINE__)
#define __syncwarp(...) emu_syncwarp(__LINE__, ##__VA_ARGS__)
#define __threadfence() std::atomic_thread_fence(std::memory_order_seq_cst)
#define __threadfence_block() std::atomic_thread_fence(std::memory_order_seq_cst)

inline void emu_syncwarp(int line, unsigned mask = 0xffffffffu) { emu::syncwarp(mask, line); }

// Shuffles take the source lane within segments of `width` lanes, as on the GPU; a source outside the
// segment returns the caller's own value.
template <typename T>
inline T emu_shfl(int line, unsigned m, T v, int src, int width = 32) {
    const int lane = emu::lane_id();
    const int base = lane & ~(width - 1);
    return emu::shuffle(m, v, base + (src & (width - 1)), line, "__shfl_sync");
}
template <typename T>
inline T emu_shfl_down(int line, unsigned m, T v, unsigned d, int width = 32) {
    const int lane = emu::lane_id();
    const int base = lane & ~(width - 1);
    const int src = (lane - base) + (int)d < width ? lane + (int)d : lane;
    return emu::shuffle(m, v, src, line, "__shfl_down_sync");
}
template <typename T>
inline T emu_shfl_up(int line, unsigned m, T v, unsigned d, int width = 32) {
    const int lane = emu::lane_id();
    const int base = lane & ~(width - 1);
    const int src = (lane - base) - (int)d >= 0 ? lane - (int)d : lane;
    return emu::shuffle(m, v, src, line, "__shfl_up_sync");
}
template <typename T>
inline T emu_shfl_xor(int line, unsigned m, T v, int x, int width = 32) {
    const int lane = emu::lane_id();
    const int base = lane & ~(width - 1);
    const int src = base + (((lane - base) ^ x) & (width - 1));
    return emu::shuffle(m, v, src, line, "__shfl_xor_sync");
}
#define __shfl_sync(...) emu_shfl(__LINE__, __VA_ARGS__)
#define __shfl_down_sync(...) emu_shfl_down(__LINE__, __VA_ARGS__)
#define __shfl_up_sync(...) emu_shfl_up(__LINE__, __VA_ARGS__)
#define __shfl_xor_sync(...) emu_shfl_xor(__LINE__, __VA_ARGS__)

template <typename T>
inline T atomicAdd(T *p, T v) { return emu::atomic_rmw(p, [v](T c) { return c + v; }); }
template <typename T>
inline T atomicMax(T *p, T v) { return emu::atomic_rmw(p, [v](T c) { return c > v ? c : v; }); }
template <typename T>
inline T atomicMin(T *p, T v) { return emu::atomic_rmw(p, [v](T c) { return c < v ? c : v; }); }
template <typename T>
inline T atomicExch(T *p, T v) { return emu::atomic_rmw(p, [v](T) { return v; }); }
inline int atomicCAS(int *p, int cmp, int v) {
    __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
    return cmp;
}
inline unsigned int atomicCAS(unsigned int *p, unsigned int cmp, unsigned int v) {
    __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
    return cmp;
}
