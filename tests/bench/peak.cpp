// peak: this machine's fp32 fused-multiply-add peak, measured, for `make bench`.
//
// A core retires a few FMA instructions per cycle, each on a whole vector, but
// an FMA takes several cycles to finish; a single chain of dependent FMAs
// therefore runs at a fraction of the peak. CHAINS independent accumulators
// (more than latency x pipes, 4 x 2 on current x86 cores) keep every pipe busy.
// Vectors are the widest the compiler targets (512-bit with AVX-512), every
// core runs the loop at once, and the best of several runs is kept. Built with
// -ffp-contract=fast so that `acc * m + c` becomes one FMA instruction.
#include <chrono>
#include <cstdio>
#include <omp.h>

#if defined(__AVX512F__)
constexpr int VBYTES = 64;
#elif defined(__AVX__)
constexpr int VBYTES = 32;
#else
constexpr int VBYTES = 16;
#endif
typedef float vec __attribute__((vector_size(VBYTES)));
constexpr int LANES = VBYTES / 4, CHAINS = 12;
constexpr long ITERS = 20000000;

static float kernel(float seed) {
    vec acc[CHAINS], m, c;
    for (int l = 0; l < LANES; ++l) m[l] = 0.999999f, c[l] = 1e-7f * seed;
    for (int k = 0; k < CHAINS; ++k)
        for (int l = 0; l < LANES; ++l) acc[k][l] = seed + k + l;
    for (long i = 0; i < ITERS; ++i) {
#pragma GCC unroll 12
        for (int k = 0; k < CHAINS; ++k) acc[k] = acc[k] * m + c;
    }
    float s = 0;
    for (int k = 0; k < CHAINS; ++k)
        for (int l = 0; l < LANES; ++l) s += acc[k][l];
    return s;
}

int main() {
    int threads = omp_get_max_threads();
    double best = 0, sink = 0;
    for (int rep = 0; rep < 3; ++rep) {
        double t0 = omp_get_wtime();
#pragma omp parallel reduction(+ : sink)
        sink += kernel(float(omp_get_thread_num() + 1));
        double secs = omp_get_wtime() - t0;
        double gflops = 2.0 * LANES * CHAINS * ITERS * threads / secs * 1e-9;
        if (gflops > best) best = gflops;
    }
    std::printf("peak %.1f GFLOP/s fp32 FMA (%d threads, %d-bit vectors, %d chains)%s\n", best, threads,
                VBYTES * 8, CHAINS, sink == 0.1234 ? " " : "");
    return 0;
}
