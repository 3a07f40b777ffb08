/// # Chapter 4 — Attention: patches that look at each other
///
/// PLACEHOLDER INTRO
#include "common.hpp"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <sys/resource.h>

namespace {

using nn::Rng;

/// ## The data and the sizes
///
constexpr int IMG = nn::IMG_SIZE;   // 784 pixels
constexpr int PATCH = 4;            // a patch is 4x4 pixels
constexpr int GRID = 28 / PATCH;    // 7x7 patches
constexpr int N = GRID * GRID;      // 49 tokens
constexpr int P = PATCH * PATCH;    // 16 pixels per token
constexpr int CLASSES = 10;

/// Cut a batch of images into tokens: row `b*N + t` of `x` holds patch $t$ of
/// image $b$, pixels in reading order. `blank[b*N + t]` records whether all 16
/// pixels are zero.
void patchify(const float* images, const int* index, int B, float* x, uint8_t* blank) {
    #pragma omp parallel for schedule(static)
    for (int b = 0; b < B; ++b) {
        const float* img = images + long(index[b]) * IMG;
        for (int t = 0; t < N; ++t) {
            const int py = t / GRID, px = t % GRID;
            float* xt = x + (long(b) * N + t) * P;   // (P)
            bool zero = true;
            for (int dy = 0; dy < PATCH; ++dy)
                for (int dx = 0; dx < PATCH; ++dx) {
                    const float v = img[(py * PATCH + dy) * nn::IMG_W + px * PATCH + dx];
                    xt[dy * PATCH + dx] = v;
                    zero = zero && v == 0.0f;
                }
            blank[long(b) * N + t] = zero;
        }
    }
}

/// ## The model
struct Model {
    int D = 0, F = 0;
    std::vector<float> We;    // (P, D)   patch embedding
    std::vector<float> be;    // (D)
    std::vector<float> pos;   // (N, D)   positions
    std::vector<float> Wqkv;  // (D, 3D)  [Wq | Wk | Wv]
    std::vector<float> bqkv;  // (3D)
    std::vector<float> W1;    // (D, F)
    std::vector<float> b1;    // (F)
    std::vector<float> W2;    // (F, D)
    std::vector<float> b2;    // (D)
    std::vector<float> Wc;    // (D, 10)
    std::vector<float> bc;    // (10)
};

Model zero_model(int D, int F) {
    Model m;
    m.D = D, m.F = F;
    m.We.assign(size_t(P) * D, 0.0f);
    m.be.assign(D, 0.0f);
    m.pos.assign(size_t(N) * D, 0.0f);
    m.Wqkv.assign(size_t(D) * 3 * D, 0.0f);
    m.bqkv.assign(size_t(3) * D, 0.0f);
    m.W1.assign(size_t(D) * F, 0.0f);
    m.b1.assign(F, 0.0f);
    m.W2.assign(size_t(F) * D, 0.0f);
    m.b2.assign(D, 0.0f);
    m.Wc.assign(size_t(D) * CLASSES, 0.0f);
    m.bc.assign(CLASSES, 0.0f);
    return m;
}

/// Every tensor of the model in one list, in the order of the model file.
std::vector<std::vector<float>*> tensors(Model& m) {
    return {&m.We, &m.be, &m.pos, &m.Wqkv, &m.bqkv, &m.W1, &m.b1, &m.W2, &m.b2, &m.Wc, &m.bc};
}

long param_count(const Model& m) {
    Model& mm = const_cast<Model&>(m);
    long n = 0;
    for (const std::vector<float>* t : tensors(mm)) n += long(t->size());
    return n;
}

/// Positional encodings.
enum class Pos { random, sinusoidal };

float next_f32_24(Rng& rng) { return float(nn::next_u32(rng) >> 8) / float(1u << 24); }

float uniform(Rng& rng, float lo, float hi, Pos version) {
    if (version == Pos::random) return nn::uniform_f32(rng, lo, hi);
    float r = next_f32_24(rng);
    float span = (hi - lo) * r;
    return lo + span;
}

void fill_xavier(Rng& rng, float* w, long count, int fan_in, int fan_out, Pos version) {
    const float limit = std::sqrt(6.0f / (float(fan_in) + float(fan_out)));
    for (long i = 0; i < count; ++i) w[i] = uniform(rng, -limit, limit, version);
}

Model init_model(Rng& rng, int D, int F, Pos pos) {
    Model m = zero_model(D, F);
    fill_xavier(rng, m.We.data(), long(P) * D, P, D, pos);
    if (pos == Pos::random) {
        for (float& v : m.pos) v = uniform(rng, -0.1f, 0.1f, pos);
    } else {
        for (int t = 0; t < N; ++t)
            for (int d = 0; d < D; ++d) {
                const float angle = float(t) / std::pow(10000.0f, float(2 * (d / 2)) / float(D));
                m.pos[long(t) * D + d] = d % 2 == 0 ? std::sin(angle) : std::cos(angle);
            }
    }
    for (int which = 0; which < 3; ++which)   // Wq, then Wk, then Wv
        for (int i = 0; i < D; ++i)
            for (int j = 0; j < D; ++j)
                m.Wqkv[long(i) * 3 * D + which * D + j] = uniform(rng, -std::sqrt(6.0f / (float(D) + float(D))),
                                                                  std::sqrt(6.0f / (float(D) + float(D))), pos);
    fill_xavier(rng, m.W1.data(), long(D) * F, D, F, pos);
    fill_xavier(rng, m.W2.data(), long(F) * D, F, D, pos);
    fill_xavier(rng, m.Wc.data(), long(D) * CLASSES, D, CLASSES, pos);
    return m;
}

/// ## Matrix products
constexpr int MR = 7, NR = 32;
constexpr int NPAD = (N + NR - 1) / NR * NR;   // 64: N rounded up to whole tiles

/// The reference.
void gemm_naive(int M, int Ncols, int K, const float* A, long rsa, long csa, const float* B, long ldb, float* C,
                long ldc, const float* bias, bool accumulate) {
    for (int i = 0; i < M; ++i)
        for (int j = 0; j < Ncols; ++j) {
            float acc = bias ? bias[j] : accumulate ? C[long(i) * ldc + j] : 0.0f;
            for (int k = 0; k < K; ++k) acc = std::fma(A[i * rsa + k * csa], B[k * ldb + j], acc);
            C[long(i) * ldc + j] = acc;
        }
}

void tile_full(int nr, int K, const float* A, long rsa, long csa, const float* B, long ldb, float* C, long ldc,
               const float* bias, bool accumulate) {
    float c[MR][NR];
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j) c[i][j] = j >= nr ? 0.0f : bias ? bias[j] : accumulate ? C[i * ldc + j] : 0.0f;
    for (int k = 0; k < K; ++k) {
        const float* b = B + k * ldb;
        for (int i = 0; i < MR; ++i) {
            const float a = A[i * rsa + k * csa];
            #pragma omp simd
            for (int j = 0; j < NR; ++j) c[i][j] = std::fma(a, b[j], c[i][j]);
        }
    }
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < nr; ++j) C[i * ldc + j] = c[i][j];
}

void tile_edge(int mr, int nr, int K, const float* A, long rsa, long csa, const float* B, long ldb, float* C,
               long ldc, const float* bias, bool accumulate) {
    float c[MR][NR];
    for (int i = 0; i < mr; ++i)
        for (int j = 0; j < nr; ++j) c[i][j] = bias ? bias[j] : accumulate ? C[i * ldc + j] : 0.0f;
    for (int k = 0; k < K; ++k) {
        const float* b = B + k * ldb;
        for (int i = 0; i < mr; ++i) {
            const float a = A[i * rsa + k * csa];
            #pragma omp simd
            for (int j = 0; j < nr; ++j) c[i][j] = std::fma(a, b[j], c[i][j]);
        }
    }
    for (int i = 0; i < mr; ++i)
        for (int j = 0; j < nr; ++j) C[i * ldc + j] = c[i][j];
}

void gemm_serial(int M, int Ncols, int K, const float* A, long rsa, long csa, const float* B, long ldb, float* C,
                 long ldc, const float* bias, bool accumulate, bool b_padded = false) {
    for (int j0 = 0; j0 < Ncols; j0 += NR) {
        const int nr = std::min(NR, Ncols - j0);
        const float* bj = bias ? bias + j0 : nullptr;
        for (int i0 = 0; i0 < M; i0 += MR) {
            const int mr = std::min(MR, M - i0);
            const float* a = A + i0 * rsa;
            float* c = C + long(i0) * ldc + j0;
            if (mr == MR && (nr == NR || b_padded)) tile_full(nr, K, a, rsa, csa, B + j0, ldb, c, ldc, bj, accumulate);
            else tile_edge(mr, nr, K, a, rsa, csa, B + j0, ldb, c, ldc, bj, accumulate);
        }
    }
}

void transpose(const float* X, long ldx, int rows, int cols, float* T, long ldt) {
    for (int c = 0; c < cols; ++c)
        for (int r = 0; r < rows; ++r) T[long(c) * ldt + r] = X[long(r) * ldx + c];
}

/// Column sums: out[c] = sum_r X[r][c].
void column_sums(const float* X, long rows, int cols, float* out) {
    for (int c = 0; c < cols; ++c) out[c] = 0.0f;
    for (long r = 0; r < rows; ++r) {
        const float* xr = X + r * cols;
        #pragma omp simd
        for (int c = 0; c < cols; ++c) out[c] += xr[c];
    }
}

/// ## Buffers
struct Acts {
    int cap = 0, D = 0, F = 0;
    std::vector<float> x;       // (B*N, P)
    std::vector<uint8_t> blank; // (B*N)
    std::vector<float> e;       // (B*N, D)
    std::vector<float> qkv;     // (B*N, 3D)
    std::vector<float> a;       // (B, N, N)
    std::vector<float> o;       // (B*N, D)
    std::vector<float> h;       // (B*N, F)
    std::vector<float> y;       // (B*N, D)
    std::vector<float> m;       // (B, D)
    std::vector<float> p;       // (B, 10)
    // backward
    std::vector<float> dz;      // (B, 10)
    std::vector<float> dm;      // (B, D)
    std::vector<float> dy;      // (B*N, D)
    std::vector<float> dh;      // (B*N, F)
    std::vector<float> dout;    // (B*N, D)
    std::vector<float> da;      // (B, N, N)
    std::vector<float> dqkv;    // (B*N, 3D)
    std::vector<float> de;      // (B*N, D)
    std::vector<float> kt;      // (B, D, N)
};

Acts make_acts(int cap, int D, int F) {
    Acts s;
    s.cap = cap, s.D = D, s.F = F;
    const size_t BN = size_t(cap) * N;
    s.x.resize(BN * P);
    s.blank.resize(BN);
    s.e.resize(BN * D);
    s.qkv.resize(BN * 3 * D);
    s.a.resize(BN * N);
    s.o.resize(BN * D);
    s.h.resize(BN * F);
    s.y.resize(BN * D);
    s.m.resize(size_t(cap) * D);
    s.p.resize(size_t(cap) * CLASSES);
    s.dz.resize(size_t(cap) * CLASSES);
    s.dm.resize(size_t(cap) * D);
    s.dy.resize(BN * D);
    s.dh.resize(BN * F);
    s.dout.resize(BN * D);
    s.da.resize(BN * N);
    s.dqkv.resize(BN * 3 * D);
    s.de.resize(BN * D);
    s.kt.assign(size_t(cap) * D * NPAD, 0.0f);
    return s;
}

/// Per-thread: gradient partial, transposed weights.
struct Work {
    Model g;
    std::vector<float> W1t, W2t, Wqkvt;
    std::vector<const float*> grads;   // the tensors of g, in file order
    double loss = 0;
};

std::vector<Work> make_work(int threads, int D, int F) {
    std::vector<Work> w(threads);
    for (Work& t : w) {
        t.g = zero_model(D, F);
        t.W1t.resize(size_t(D) * F);
        t.W2t.resize(size_t(D) * F);
        t.Wqkvt.resize(size_t(3) * D * D);
        for (std::vector<float>* v : tensors(t.g)) t.grads.push_back(v->data());
    }
    return w;
}

/// ## Forward pass
void embed_forward(const float* x, const uint8_t* blank, const float* We, const float* be, const float* pos,
                   float* e, int B, int D) {
    for (long r = 0; r < long(B) * N; ++r) {
        const int t = int(r % N);
        float* er = e + r * D;
        for (int d = 0; d < D; ++d) er[d] = be[d] + pos[long(t) * D + d];
        if (!blank[r])
            for (int j = 0; j < P; ++j) {
                const float xj = x[r * P + j];
                const float* w = We + long(j) * D;
                #pragma omp simd
                for (int d = 0; d < D; ++d) er[d] = std::fma(xj, w[d], er[d]);
            }
        for (int d = 0; d < D; ++d) er[d] = er[d] > 0.0f ? er[d] : 0.0f;
    }
}

/// exp(x) for x <= 0.
inline float exp_neg(float x) {
    x = x > -87.0f ? x : -87.0f;
    const float shifter = 12582912.0f;                     // 1.5 * 2^23
    const float n = (x * 1.44269504f + shifter) - shifter;  // round(x / ln 2)
    float r = std::fma(n, -0.693359375f, x);
    r = std::fma(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = std::fma(p, r, 1.3981999507e-3f);
    p = std::fma(p, r, 8.3334519073e-3f);
    p = std::fma(p, r, 4.1665795894e-2f);
    p = std::fma(p, r, 1.6666665459e-1f);
    p = std::fma(p, r, 5.0000001201e-1f);
    p = std::fma(p, r * r, r) + 1.0f;
    const int bits = (int(n) + 127) << 23;
    return p * std::bit_cast<float>(bits);
}

void softmax_row(float* s, int n, float scale) {
    float mx = -INFINITY;
    #pragma omp simd reduction(max : mx)
    for (int j = 0; j < n; ++j) {
        s[j] = s[j] * scale;
        mx = s[j] > mx ? s[j] : mx;
    }
    float sum = 0.0f;
    #pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; ++j) {
        s[j] = exp_neg(s[j] - mx);
        sum += s[j];
    }
    const float inv = 1.0f / sum;
    for (int j = 0; j < n; ++j) s[j] *= inv;
}

void attention_forward(const float* qkv, float* kt, float* a, float* o, int B, int D) {
    const float scale = 1.0f / std::sqrt(float(D));
    const long ld = 3L * D;
    for (int b = 0; b < B; ++b) {
        const float* q = qkv + long(b) * N * ld;
        const float* k = q + D;
        const float* v = q + 2 * D;
        float* ktb = kt + long(b) * D * NPAD;   // (D, NPAD)
        float* ab = a + long(b) * N * N;        // (N, N)
        transpose(k, ld, N, D, ktb, NPAD);
        gemm_serial(N, N, D, q, ld, 1, ktb, NPAD, ab, N, nullptr, false, true);
        for (int i = 0; i < N; ++i) softmax_row(ab + i * N, N, scale);
        gemm_serial(N, D, N, ab, N, 1, v, ld, o + long(b) * N * D, D, nullptr, false);
    }
}

void relu_inplace(float* h, long n) {
    for (long i = 0; i < n; ++i) h[i] = h[i] > 0.0f ? h[i] : 0.0f;
}

/// Mean-pool and classifier.
void head_forward(const float* y, const float* Wc, const float* bc, float* m, float* p, int B, int D) {
    const float invN = 1.0f / float(N);
    for (int b = 0; b < B; ++b) {
        float* mb = m + long(b) * D;
        for (int d = 0; d < D; ++d) mb[d] = 0.0f;
        for (int t = 0; t < N; ++t) {
            const float* yt = y + (long(b) * N + t) * D;
            for (int d = 0; d < D; ++d) mb[d] += yt[d] * invN;
        }
        float* pb = p + b * CLASSES;
        for (int c = 0; c < CLASSES; ++c) pb[c] = bc[c];
        for (int d = 0; d < D; ++d)
            for (int c = 0; c < CLASSES; ++c) pb[c] = std::fma(mb[d], Wc[d * CLASSES + c], pb[c]);
        softmax_row(pb, CLASSES, 1.0f);
    }
}

/// Pointers to the rows of images [b0, b0+B) in every buffer.
struct View {
    float *x, *e, *qkv, *a, *o, *h, *y, *m, *p, *dz, *dm, *dy, *dh, *dout, *da, *dqkv, *de, *kt;
    uint8_t* blank;
};

View view(Acts& s, int b0) {
    const long r = long(b0) * N, D = s.D, F = s.F;
    return View{s.x.data() + r * P,     s.e.data() + r * D,      s.qkv.data() + r * 3 * D, s.a.data() + r * N,
                s.o.data() + r * D,     s.h.data() + r * F,      s.y.data() + r * D,       s.m.data() + b0 * D,
                s.p.data() + b0 * CLASSES, s.dz.data() + b0 * CLASSES, s.dm.data() + b0 * D, s.dy.data() + r * D,
                s.dh.data() + r * F,    s.dout.data() + r * D,   s.da.data() + r * N,      s.dqkv.data() + r * 3 * D,
                s.de.data() + r * D,    s.kt.data() + long(b0) * D * NPAD,     s.blank.data() + r};
}

/// The whole forward pass of B images.
void forward(const Model& m, const View& v, int B) {
    const int D = m.D, F = m.F;
    const int BN = B * N;
    embed_forward(v.x, v.blank, m.We.data(), m.be.data(), m.pos.data(), v.e, B, D);
    gemm_serial(BN, 3 * D, D, v.e, D, 1, m.Wqkv.data(), 3 * D, v.qkv, 3 * D, m.bqkv.data(), false);
    attention_forward(v.qkv, v.kt, v.a, v.o, B, D);
    gemm_serial(BN, F, D, v.o, D, 1, m.W1.data(), F, v.h, F, m.b1.data(), false);
    relu_inplace(v.h, long(BN) * F);
    gemm_serial(BN, D, F, v.h, F, 1, m.W2.data(), D, v.y, D, m.b2.data(), false);
    head_forward(v.y, m.Wc.data(), m.bc.data(), v.m, v.p, B, D);
}

/// ## The loss
double xent(const float* p, const uint8_t* y, float* dz, int B, int batch) {
    double total = 0;
    const float scale = 1.0f / float(batch);
    for (int b = 0; b < B; ++b) {
        total += -std::log(std::max(p[b * CLASSES + y[b]], 1e-9f));
        for (int c = 0; c < CLASSES; ++c)
            dz[b * CLASSES + c] = (p[b * CLASSES + c] - (c == y[b] ? 1.0f : 0.0f)) * scale;
    }
    return total;
}

/// ## Backward pass
void head_backward(const float* m, const float* dz, const float* Wc, float* dWc, float* dbc, float* dm, float* dy,
                   int B, int D) {
    for (int c = 0; c < CLASSES; ++c) dbc[c] = 0.0f;
    for (int i = 0; i < D * CLASSES; ++i) dWc[i] = 0.0f;
    for (int b = 0; b < B; ++b)
        for (int c = 0; c < CLASSES; ++c) dbc[c] += dz[b * CLASSES + c];
    for (int d = 0; d < D; ++d)
        for (int b = 0; b < B; ++b)
            for (int c = 0; c < CLASSES; ++c)
                dWc[d * CLASSES + c] = std::fma(m[long(b) * D + d], dz[b * CLASSES + c], dWc[d * CLASSES + c]);
    const float invN = 1.0f / float(N);
    for (int b = 0; b < B; ++b) {
        float* dmb = dm + long(b) * D;
        for (int d = 0; d < D; ++d) {
            float acc = 0.0f;
            for (int c = 0; c < CLASSES; ++c) acc = std::fma(dz[b * CLASSES + c], Wc[d * CLASSES + c], acc);
            dmb[d] = acc;
        }
        for (int t = 0; t < N; ++t) {
            float* dyt = dy + (long(b) * N + t) * D;
            for (int d = 0; d < D; ++d) dyt[d] = dmb[d] * invN;
        }
    }
}

void mask_relu(const float* act, float* grad, long n) {
    for (long i = 0; i < n; ++i) grad[i] = act[i] > 0.0f ? grad[i] : 0.0f;
}

void attention_backward(const float* qkv, const float* a, const float* dout, float* vt, float* da, float* dqkv,
                        int B, int D) {
    const float scale = 1.0f / std::sqrt(float(D));
    const long ld = 3L * D;
    for (int b = 0; b < B; ++b) {
        const float* q = qkv + long(b) * N * ld;
        const float* k = q + D;
        const float* v = q + 2 * D;
        const float* ab = a + long(b) * N * N;
        const float* dob = dout + long(b) * N * D;
        float* dab = da + long(b) * N * N;
        float* dq = dqkv + long(b) * N * ld;
        float* dk = dq + D;
        float* dv = dq + 2 * D;
        float* vtb = vt + long(b) * D * NPAD;
        transpose(v, ld, N, D, vtb, NPAD);
        gemm_serial(N, N, D, dob, D, 1, vtb, NPAD, dab, N, nullptr, false, true);   // dA = dO V^T
        gemm_serial(N, D, N, ab, 1, N, dob, D, dv, ld, nullptr, false);        // dV = A^T dO
        for (int i = 0; i < N; ++i) {
            const float* ai = ab + i * N;
            float* di = dab + i * N;
            float r = 0.0f;
            #pragma omp simd reduction(+ : r)
            for (int j = 0; j < N; ++j) r += di[j] * ai[j];
            for (int j = 0; j < N; ++j) di[j] = ai[j] * (di[j] - r) * scale;
        }
        gemm_serial(N, D, N, dab, N, 1, k, ld, dq, ld, nullptr, false);        // dQ = dS K
        gemm_serial(N, D, N, dab, 1, N, q, ld, dk, ld, nullptr, false);        // dK = dS^T Q
    }
}

void embed_backward(const float* x, const uint8_t* blank, const float* de, float* dWe, float* dbe, float* dpos, int B,
                    int D) {
    for (int i = 0; i < P * D; ++i) dWe[i] = 0.0f;
    for (long r = 0; r < long(B) * N; ++r) {
        if (blank[r]) continue;
        const float* g = de + r * D;
        for (int j = 0; j < P; ++j) {
            const float xj = x[r * P + j];
            float* w = dWe + long(j) * D;
            #pragma omp simd
            for (int d = 0; d < D; ++d) w[d] = std::fma(xj, g[d], w[d]);
        }
    }
    for (int i = 0; i < N * D; ++i) dpos[i] = 0.0f;
    for (int b = 0; b < B; ++b)
        for (int t = 0; t < N; ++t) {
            const float* g = de + (long(b) * N + t) * D;
            float* pt = dpos + long(t) * D;
            for (int d = 0; d < D; ++d) pt[d] += g[d];
        }
    for (int d = 0; d < D; ++d) dbe[d] = 0.0f;
    for (int t = 0; t < N; ++t)
        for (int d = 0; d < D; ++d) dbe[d] += dpos[long(t) * D + d];
}

void backward(const Model& m, const View& v, int B, Work& w) {
    const int D = m.D, F = m.F;
    const int BN = B * N;
    Model& g = w.g;
    head_backward(v.m, v.dz, m.Wc.data(), g.Wc.data(), g.bc.data(), v.dm, v.dy, B, D);
    // feed-forward, second layer
    gemm_serial(F, D, BN, v.h, 1, F, v.dy, D, g.W2.data(), D, nullptr, false);
    column_sums(v.dy, BN, D, g.b2.data());
    transpose(m.W2.data(), D, F, D, w.W2t.data(), F);   // (D, F)
    gemm_serial(BN, F, D, v.dy, D, 1, w.W2t.data(), F, v.dh, F, nullptr, false);
    mask_relu(v.h, v.dh, long(BN) * F);
    // first layer
    gemm_serial(D, F, BN, v.o, 1, D, v.dh, F, g.W1.data(), F, nullptr, false);
    column_sums(v.dh, BN, F, g.b1.data());
    transpose(m.W1.data(), F, D, F, w.W1t.data(), D);   // (F, D)
    gemm_serial(BN, D, F, v.dh, F, 1, w.W1t.data(), D, v.dout, D, nullptr, false);
    // attention
    attention_backward(v.qkv, v.a, v.dout, v.kt, v.da, v.dqkv, B, D);
    // projections
    gemm_serial(D, 3 * D, BN, v.e, 1, D, v.dqkv, 3 * D, g.Wqkv.data(), 3 * D, nullptr, false);
    column_sums(v.dqkv, BN, 3 * D, g.bqkv.data());
    transpose(m.Wqkv.data(), 3 * D, D, 3 * D, w.Wqkvt.data(), D);   // (3D, D)
    gemm_serial(BN, D, 3 * D, v.dqkv, 3 * D, 1, w.Wqkvt.data(), D, v.de, D, nullptr, false);
    mask_relu(v.e, v.de, long(BN) * D);
    embed_backward(v.x, v.blank, v.de, g.We.data(), g.be.data(), g.pos.data(), B, D);
}

int thread_count() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int thread_id() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/// One SGD step on a batch of B images already cut into patches in `s`.
double train_step(Model& m, const std::vector<std::vector<float>*>& params, Acts& s, std::vector<Work>& work,
                  const uint8_t* labels, int B, float lr) {
    const int T = int(work.size());
    #pragma omp parallel num_threads(T)
    {
        const int t = thread_id();
        const int b0 = int(long(B) * t / T), b1 = int(long(B) * (t + 1) / T);
        Work& w = work[t];
        const View v = view(s, b0);
        forward(m, v, b1 - b0);
        w.loss = xent(v.p, labels + b0, v.dz, b1 - b0, B);
        backward(m, v, b1 - b0, w);
    }
    double loss = 0;
    for (const Work& w : work) loss += w.loss;
    if (!std::isfinite(loss)) return loss;
    #pragma omp parallel num_threads(T)
    for (size_t k = 0; k < params.size(); ++k) {
        float* p = params[k]->data();
        const long n = long(params[k]->size());
        #pragma omp for schedule(static) nowait
        for (long i = 0; i < n; ++i) {
            float grad = work[0].grads[k][i];
            for (int u = 1; u < T; ++u) grad += work[u].grads[k][i];
            p[i] -= lr * grad;
        }
    }
    return loss;
}

/// FLOPs of one training batch.
double batch_flops(int B, int D, int F, long nonblank) {
    const double BN = double(B) * N;
    double f = 0;
    f += 2.0 * nonblank * P * D;          // embedding
    f += 2.0 * BN * D * 3 * D;            // Q, K, V
    f += 2.0 * 2 * B * N * N * D;         // scores, A V
    f += 2.0 * 2 * BN * D * F;            // feed-forward
    f += 2.0 * B * D * CLASSES;           // classifier
    double bwd = 0;
    bwd += 2.0 * B * D * CLASSES * 2;     // dWc, dm
    bwd += 2.0 * 2 * 2 * BN * D * F;      // dW2 dH dW1 dO
    bwd += 2.0 * 4 * B * N * N * D;       // dA dV dQ dK
    bwd += 2.0 * 2 * BN * D * 3 * D;      // dWqkv dE
    bwd += 2.0 * nonblank * P * D;        // dWe
    return f + bwd;
}

/// Forward only, for evaluation.
void forward_parallel(const Model& m, Acts& s, int B) {
    const int T = thread_count();
    #pragma omp parallel num_threads(T)
    {
        const int t = thread_id();
        const int b0 = int(long(B) * t / T), b1 = int(long(B) * (t + 1) / T);
        forward(m, view(s, b0), b1 - b0);
    }
}

/// ## Training
struct Config {
    int epochs = 8;
    int batch = 32;
    float lr = 0.01f;
    int d_model = 64;
    int ff = 128;
    std::string pos = "sinusoidal";
    std::string schedule = "constant";
    int val = 0;
    uint64_t seed = 1;
    int threads = nn::default_threads();
    std::string data;
    std::string log = "logs/training_loss_attention_mnist.txt";
    std::string save, load;
    bool eval = false;
    std::string map_file;
    int map_index = 0;
};

float lr_at(const Config& cfg, long step, long total) {
    if (cfg.schedule == "cosine") return float(0.5 * cfg.lr * (1.0 + std::cos(M_PI * double(step) / double(total))));
    return cfg.lr;
}

double evaluate(const Model& m, const nn::Split& data, int first, int count, Acts& s) {
    std::vector<int> index(s.cap);
    long correct = 0;
    for (int start = 0; start < count; start += s.cap) {
        const int B = std::min(s.cap, count - start);
        for (int b = 0; b < B; ++b) index[b] = first + start + b;
        patchify(data.x.data(), index.data(), B, s.x.data(), s.blank.data());
        forward_parallel(m, s, B);
        for (int b = 0; b < B; ++b) {
            const float* pb = s.p.data() + b * CLASSES;
            int arg = 0;
            for (int c = 1; c < CLASSES; ++c)
                if (pb[c] > pb[arg]) arg = c;
            correct += arg == data.y[first + start + b];
        }
    }
    return 100.0 * double(correct) / double(count);
}

struct TrainResult {
    double seconds = 0, flops = 0;
};

TrainResult train(Model& m, const Config& cfg, const nn::Split& train_set, int train_n, const nn::Split& test_set,
                  Rng& rng) {
    Acts s = make_acts(cfg.batch, m.D, m.F);
    std::vector<Work> work = make_work(std::min(cfg.threads, cfg.batch), m.D, m.F);
    const std::vector<std::vector<float>*> params = tensors(m);
    Acts eval_acts = make_acts(1000, m.D, m.F);
    std::vector<int> index(train_n);
    for (int i = 0; i < train_n; ++i) index[i] = i;
    std::vector<uint8_t> labels(cfg.batch);
    nn::CsvLog log{cfg.log == "none" ? "" : cfg.log, ""};
    const long batches = (train_n + cfg.batch - 1) / cfg.batch;
    TrainResult res;
    for (int epoch = 0; epoch < cfg.epochs; ++epoch) {
        const double t0 = nn::now_seconds();
        nn::shuffle(rng, index);
        nn::Progress progress = nn::progress_start();
        double total = 0;
        for (long bi = 0; bi < batches; ++bi) {
            const int start = int(bi * cfg.batch);
            const int B = std::min(cfg.batch, train_n - start);
            patchify(train_set.x.data(), index.data() + start, B, s.x.data(), s.blank.data());
            long nonblank = 0;
            for (long r = 0; r < long(B) * N; ++r) nonblank += !s.blank[r];
            for (int b = 0; b < B; ++b) labels[b] = train_set.y[index[start + b]];
            const float lr = lr_at(cfg, long(epoch) * batches + bi, long(cfg.epochs) * batches);
            const double loss = train_step(m, params, s, work, labels.data(), B, lr);
            nn::check_loss(loss, epoch + 1, bi, lr);
            total += loss;
            res.flops += batch_flops(B, m.D, m.F, nonblank);
            nn::progress_update(progress, epoch + 1, long(start + B), train_n, total);
        }
        nn::progress_end(progress);
        const double secs = nn::now_seconds() - t0;
        res.seconds += secs;
        const double avg = total / train_n;
        char vbuf[64] = "";
        if (cfg.val > 0) std::snprintf(vbuf, sizeof vbuf, " | val_acc=%.2f%%", evaluate(m, train_set, train_n, cfg.val, eval_acts));
        const double acc = evaluate(m, test_set, 0, test_set.n, eval_acts);
        std::printf("Epoch %d | loss=%.6f | time=%.3fs%s | test_acc=%.2f%%\n", epoch + 1, avg, secs, vbuf, acc);
        std::fflush(stdout);
        nn::log_epoch(log, epoch + 1, float(avg), float(secs));
    }
    return res;
}

/// ## Save and load
std::vector<nn::Tensor> file_tensors(Model& m) {
    const uint32_t D = uint32_t(m.D), F = uint32_t(m.F);
    return {
        {"w_patch", &m.We, {P, D, 1, 1}},       {"b_patch", &m.be, {D, 1, 1, 1}},
        {"pos", &m.pos, {N, D, 1, 1}},          {"w_qkv", &m.Wqkv, {D, 3 * D, 1, 1}},
        {"b_qkv", &m.bqkv, {3 * D, 1, 1, 1}},   {"w_ff1", &m.W1, {D, F, 1, 1}},
        {"b_ff1", &m.b1, {F, 1, 1, 1}},         {"w_ff2", &m.W2, {F, D, 1, 1}},
        {"b_ff2", &m.b2, {D, 1, 1, 1}},         {"w_cls", &m.Wc, {D, CLASSES, 1, 1}},
        {"b_cls", &m.bc, {CLASSES, 1, 1, 1}},
    };
}

void save(const std::string& path, Model& m) { nn::save_model(path, "attention", file_tensors(m)); }

void load(const std::string& path, Model& m) {
    try {
        nn::load_model(path, "attention", file_tensors(m));
    } catch (const nn::Error& e) {
        std::string msg = e.what();
        if (msg.find(": tensor ") != std::string::npos)
            msg += nn::str(" (saved with other --d-model/--ff? this run has --d-model ", m.D, " --ff ", m.F, ")");
        throw nn::Error(msg, e.code);
    }
}

/// ## The attention map
std::string attention_svg(const Model& m, const nn::Split& test_set, int index) {
    Acts s = make_acts(1, m.D, m.F);
    patchify(test_set.x.data(), &index, 1, s.x.data(), s.blank.data());
    forward(m, view(s, 0), 1);
    return "";
}

/// ## The program
[[maybe_unused]] int run(int argc, char** argv) {
    Config cfg;
    std::vector<nn::Flag> flags = {
        {.name = "--epochs", .help = "passes over the training set", .integer = &cfg.epochs, .lo = 1, .hi = 100000},
        {.name = "--batch", .help = "images per SGD step", .integer = &cfg.batch, .lo = 1, .hi = 60000},
        {.name = "--lr", .help = "learning rate", .number = &cfg.lr, .lo = 0, .hi = 1e6},
        {.name = "--schedule", .help = "learning rate schedule: constant or cosine", .text = &cfg.schedule},
        {.name = "--d-model", .help = "token width D", .integer = &cfg.d_model, .lo = 1, .hi = 1024},
        {.name = "--ff", .help = "feed-forward width F", .integer = &cfg.ff, .lo = 1, .hi = 4096},
        {.name = "--pos", .help = "positions: sinusoidal or random", .text = &cfg.pos},
        {.name = "--val", .help = "hold out the last N training images for validation", .integer = &cfg.val,
         .lo = 0, .hi = 59999},
        {.name = "--seed", .help = "RNG seed, or 'time' for the clock", .seed = &cfg.seed},
        {.name = "--threads", .help = "OpenMP threads", .integer = &cfg.threads, .lo = 1, .hi = 1024},
        {.name = "--data", .help = "MNIST directory (else $MNIST_DIR, else data)", .text = &cfg.data},
        {.name = "--log", .help = "CSV log of epoch,loss,time ('none': no log)", .text = &cfg.log},
        {.name = "--save", .help = "write the trained model to FILE", .text = &cfg.save},
        {.name = "--load", .help = "start from the model in FILE", .text = &cfg.load},
        {.name = "--eval", .help = "only evaluate the --load model on the test set", .on = &cfg.eval},
        {.name = "--attention-map", .help = "write an SVG attention map of one test image to FILE",
         .text = &cfg.map_file},
        {.name = "--map-index", .help = "which test image --attention-map draws", .integer = &cfg.map_index,
         .lo = 0, .hi = 9999},
    };
    if (!nn::parse_flags(argc, argv, "attention",
                         "Train one self-attention head over 4x4 patches on MNIST (the original "
                         "mnist_attention_pool).",
                         flags))
        return 0;
    if (cfg.pos != "sinusoidal" && cfg.pos != "random")
        throw nn::Error(nn::str("--pos: expected 'sinusoidal' or 'random', got '", cfg.pos, "'"), 2);
    if (cfg.schedule != "constant" && cfg.schedule != "cosine")
        throw nn::Error(nn::str("--schedule: expected 'constant' or 'cosine', got '", cfg.schedule, "'"), 2);
    if (cfg.eval && cfg.load.empty()) throw nn::Error("--eval needs --load FILE", 2);
    nn::set_threads(cfg.threads);
    const Pos pos = cfg.pos == "random" ? Pos::random : Pos::sinusoidal;

    std::printf("Loading MNIST...\n");
    nn::Split train_set, test_set;
    nn::load_mnist(nn::data_dir(cfg.data), train_set, test_set);
    if (cfg.val >= train_set.n)
        throw nn::Error(nn::str("--val: expected fewer than the ", train_set.n, " training images, got ", cfg.val), 2);
    const int train_n = train_set.n - cfg.val;
    if (cfg.val > 0) std::printf("Train: %d | Val: %d | Test: %d\n", train_n, cfg.val, test_set.n);
    else std::printf("Train: %d | Test: %d\n", train_n, test_set.n);

    Rng rng = nn::rng_new(cfg.seed);
    Model m = init_model(rng, cfg.d_model, cfg.ff, pos);
    if (!cfg.load.empty()) load(cfg.load, m);
    TrainResult res;
    if (!cfg.eval) {
        std::printf("Training self-attention: D=%d ff=%d patch=%d seq=%d epochs=%d batch=%d lr=%s\n", cfg.d_model,
                    cfg.ff, PATCH, N, cfg.epochs, cfg.batch, nn::shortest(cfg.lr).c_str());
        std::fflush(stdout);
        res = train(m, cfg, train_set, train_n, test_set, rng);
    }
    Acts s = make_acts(1000, m.D, m.F);
    const double acc = evaluate(m, test_set, 0, test_set.n, s);
    std::printf("Final test accuracy: %.2f%%\n", acc);
    if (!cfg.save.empty()) save(cfg.save, m);
    if (!cfg.map_file.empty()) {
        std::string svg = attention_svg(m, test_set, cfg.map_index);
        nn::write_file_atomic(cfg.map_file, svg.data(), svg.size());
    }
    std::printf("RESULT model=attention epochs=%d batch=%d lr=%s schedule=%s d_model=%d ff=%d pos=%s threads=%d "
                "seed=%llu train_s=%.3f acc=%.2f gflop=%.1f\n",
                cfg.eval ? 0 : cfg.epochs, cfg.batch, nn::shortest(cfg.lr).c_str(), cfg.schedule.c_str(),
                cfg.d_model, cfg.ff, cfg.pos.c_str(), cfg.threads, (unsigned long long)cfg.seed, res.seconds, acc,
                res.flops * 1e-9);
    return 0;
}

}  // namespace

#ifndef NN_TESTING
int main(int argc, char** argv) { return nn::guarded_main("attention", run, argc, argv); }
#endif
