// Tests of cnn.cpp: every backward step and the whole model against central
// differences, save/load, bad model files, determinism across runs and thread
// counts, and an end-to-end run on a subset of MNIST.
#define NN_TESTING
#include "../cnn.cpp"

#include "helpers.hpp"

#include <cstring>
#include <sys/stat.h>

namespace {

// A data set of `n` random images (bytes 0..255, a third of them 0 like the
// black background of MNIST) with random labels.
nn::Split random_split(int n, uint64_t seed) {
    nn::Rng r = nn::rng_new(seed);
    nn::Split s;
    s.n = n;
    s.pixels.resize(size_t(n) * H * W);
    for (uint8_t& p : s.pixels) p = nn::next_u32(r) % 3 == 0 ? 0 : uint8_t(nn::next_u32(r) % 256);
    s.y.resize(n);
    for (uint8_t& y : s.y) y = uint8_t(nn::next_u32(r) % 10);
    return s;
}

// Relative error with a floor, the usual metric for gradient checks: sane when
// both values are near zero.
double rel_err(double a, double b, double floor) { return std::fabs(a - b) / std::max({std::fabs(a), std::fabs(b), floor}); }

// A plain double-precision reference of the forward pass, written from the
// formulas of the chapter with none of the program's tricks (no split layout,
// no fused pooling): the branch-free definition of each layer. Gradient checks
// difference *this*, in double, so a step of 1e-6 is far below any kink of
// ReLU or max (a crossing needs two candidates within 1e-6 of each other) and
// rounding (1e-16 / 1e-6) is negligible.
struct RefParams {
    std::vector<double> conv_w, conv_b, fc_w, fc_b;
};

RefParams to_ref(const Cnn& m) {
    return {std::vector<double>(m.conv_w.begin(), m.conv_w.end()), std::vector<double>(m.conv_b.begin(), m.conv_b.end()),
            std::vector<double>(m.fc_w.begin(), m.fc_w.end()), std::vector<double>(m.fc_b.begin(), m.fc_b.end())};
}

std::vector<double> ref_pooled(const RefParams& p, const uint8_t* px) {
    auto in = [&](int y, int x) {  // padded input: (y, x) of the frame is pixel (y-1, x-1)
        return y < 1 || y > H || x < 1 || x > W ? 0.0 : double(nn::pixel(px[(y - 1) * W + x - 1]));
    };
    std::vector<double> pooled(FC_IN);
    for (int c = 0; c < C; ++c)
        for (int py = 0; py < PH; ++py)
            for (int pxx = 0; pxx < PW; ++pxx) {
                double best = -INFINITY;
                for (int d = 0; d < 4; ++d) {
                    const int y = 2 * py + d / 2, x = 2 * pxx + d % 2;
                    double z = p.conv_b[c];
                    for (int u = 0; u < K; ++u)
                        for (int v = 0; v < K; ++v) z += p.conv_w[c * K * K + u * K + v] * in(y + u, x + v);
                    best = std::max(best, std::max(z, 0.0));
                }
                pooled[c * PH * PW + py * PW + pxx] = best;
            }
    return pooled;
}

double ref_loss(const RefParams& p, const nn::Split& d, const std::vector<int>& idx) {
    double total = 0;
    for (int s : idx) {
        std::vector<double> pooled = ref_pooled(p, &d.pixels[size_t(s) * H * W]);
        double logit[CLASSES], mx = -INFINITY, sum = 0;
        for (int j = 0; j < CLASSES; ++j) {
            logit[j] = p.fc_b[j];
            for (int i = 0; i < FC_IN; ++i) logit[j] += pooled[i] * p.fc_w[j * FC_IN + i];
            mx = std::max(mx, logit[j]);
        }
        for (int j = 0; j < CLASSES; ++j) sum += std::exp(logit[j] - mx);
        total += std::log(sum) + mx - logit[d.y[s]];
    }
    return total / double(idx.size());
}

}  // namespace

TEST_CASE("cnn: the fused forward pass equals the plain reference") {
    nn::Split d = random_split(3, 31);
    nn::Rng r = nn::rng_new(32);
    Cnn m = init_cnn(r);
    for (float& b : m.conv_b) b = nn::uniform_f32(r, -0.2f, 0.2f);
    RefParams p = to_ref(m);
    for (int s = 0; s < d.n; ++s) {
        std::vector<float> xd(XD_SIZE), pooled(FC_IN);
        std::vector<int> route(ROUTE);
        split_pad_image(&d.pixels[size_t(s) * H * W], xd.data());
        conv_relu_pool(m, xd.data(), pooled.data(), route.data());
        std::vector<double> want = ref_pooled(p, &d.pixels[size_t(s) * H * W]);
        for (int i = 0; i < FC_IN; ++i) REQUIRE(rel_err(pooled[i], want[i], 1.0) < 1e-5);
        for (int c = 0; c < C; ++c)  // the two spare lanes of every route row stay empty
            for (int py = 0; py < PH; ++py) CHECK(route[(c * PH + py) * HALF + 14] + route[(c * PH + py) * HALF + 15] == 0);
    }
}

TEST_CASE("cnn: the fused forward pass gives the bits of a plain float convolution, ReLU, then pooling") {
    // The definition in float, in the order the chapter gives: each z the bias,
    // then the taps in order (u, v), one fma each; every activation through
    // ReLU; the largest of a block's four; the winner the first equal to it.
    // The fused kernel takes the max before the ReLU: the pooled values must be
    // equal (==, a zero of either sign) and the routes identical. Biases of
    // both signs give blocks with the ReLU off and winners at all four places.
    nn::Split d = random_split(4, 61);
    nn::Rng r = nn::rng_new(62);
    Cnn m = init_cnn(r);
    int winners[16] = {}, wrong_pooled = 0, wrong_route = 0;
    for (int s = 0; s < d.n; ++s) {
        for (float& b : m.conv_b) b = nn::uniform_f32(r, -0.3f, 0.3f);
        const uint8_t* px = &d.pixels[size_t(s) * H * W];
        auto in = [&](int y, int x) {  // the framed image: (y, x) of the frame is pixel (y-1, x-1)
            return y < 1 || y > H || x < 1 || x > W ? 0.0f : nn::pixel(px[(y - 1) * W + x - 1]);
        };
        std::vector<float> xd(XD_SIZE), pooled(FC_IN);
        std::vector<int> route(ROUTE);
        split_pad_image(px, xd.data());
        conv_relu_pool(m, xd.data(), pooled.data(), route.data());
        for (int c = 0; c < C; ++c)
            for (int py = 0; py < PH; ++py)
                for (int j = 0; j < PW; ++j) {
                    float a[4];
                    for (int dd = 0; dd < 4; ++dd) {
                        const int y = 2 * py + dd / 2, x = 2 * j + dd % 2;
                        float z = m.conv_b[c];
                        for (int u = 0; u < K; ++u)
                            for (int v = 0; v < K; ++v) z = std::fma(m.conv_w[c * K * K + u * K + v], in(y + u, x + v), z);
                        a[dd] = std::max(z, 0.0f);
                    }
                    const float best = std::max(std::max(a[0], a[1]), std::max(a[2], a[3]));
                    int which = 0;
                    while (a[which] != best) ++which;
                    const int want = best > 0.0f ? 1 << which : 0;
                    ++winners[want];
                    wrong_pooled += pooled[c * PH * PW + py * PW + j] != best;
                    wrong_route += route[(c * PH + py) * HALF + j] != want;
                }
    }
    CHECK(wrong_pooled == 0);
    CHECK(wrong_route == 0);
    for (int v : {0, 1, 2, 4, 8}) CHECK(winners[v] > 0);
}

TEST_CASE("cnn: the linear layer gives the same bits with every target's classes per pass") {
    // The definition the chapter gives: 16 partial sums per class, feature i
    // into sum i % 16 in increasing i, then the 16 added in order, then the
    // bias. Every target's pass width (10, 5, 2 classes; the build's is one
    // of them) must give exactly that.
    nn::Rng r = nn::rng_new(33);
    Cnn m = init_cnn(r);
    for (float& b : m.fc_b) b = nn::uniform_f32(r, -0.5f, 0.5f);
    std::vector<float> p(FC_IN);
    for (float& v : p) v = nn::uniform_f32(r, 0.0f, 2.0f);
    float want[CLASSES];
    for (int j = 0; j < CLASSES; ++j) {
        float part[HALF] = {};
        for (int i = 0; i < FC_IN; ++i) part[i % HALF] = std::fma(p[i], m.fc_w[j * FC_IN + i], part[i % HALF]);
        float s = 0.0f;
        for (int k = 0; k < HALF; ++k) s += part[k];
        want[j] = m.fc_b[j] + s;
    }
    float got10[CLASSES], got5[CLASSES], got2[CLASSES], got[CLASSES];
    fc_forward_tiled<10>(m, p.data(), got10);
    fc_forward_tiled<5>(m, p.data(), got5);
    fc_forward_tiled<2>(m, p.data(), got2);
    fc_forward(m, p.data(), got);
    CHECK(std::memcmp(got10, want, sizeof want) == 0);
    CHECK(std::memcmp(got5, want, sizeof want) == 0);
    CHECK(std::memcmp(got2, want, sizeof want) == 0);
    CHECK(std::memcmp(got, want, sizeof want) == 0);
    CHECK((FC_CB == 10 || FC_CB == 5 || FC_CB == 2));
}

TEST_CASE("cnn: the linear layer's update gives the same bits with every target's classes per pass") {
    // The definition: each weight's gradient a sum over the batch in sample
    // order, one fma per sample from 0, then W -= lr * g; the biases and the
    // convolution's parameters: sums over the batch in sample order, then the
    // same step. Every target's classes per pass (10, 5, 2) must give exactly
    // that, for a batch that is not a multiple of anything.
    nn::Rng r = nn::rng_new(51);
    Cnn m = init_cnn(r);
    for (float& b : m.fc_b) b = nn::uniform_f32(r, -0.5f, 0.5f);
    const int B = 7;
    const float lr = 0.3f;
    Batch t = make_batch(B);
    for (float& v : t.pooled) v = nn::uniform_f32(r, 0.0f, 2.0f);
    for (float& v : t.delta) v = nn::uniform_f32(r, -0.1f, 0.1f);
    for (float& v : t.conv_g) v = nn::uniform_f32(r, -1.0f, 1.0f);
    Cnn want = m;
    for (int j = 0; j < CLASSES; ++j) {
        for (int i = 0; i < FC_IN; ++i) {
            float g = 0.0f;
            for (int b = 0; b < B; ++b) g = std::fma(t.delta[b * CLASSES + j], t.pooled[size_t(b) * FC_IN + i], g);
            want.fc_w[j * FC_IN + i] -= lr * g;
        }
        float gb = 0.0f;
        for (int b = 0; b < B; ++b) gb += t.delta[b * CLASSES + j];
        want.fc_b[j] -= lr * gb;
    }
    for (int k = 0; k < C * K * K + C; ++k) {
        float g = 0.0f;
        for (int b = 0; b < B; ++b) g += t.conv_g[size_t(b) * (C * K * K + C) + k];
        (k < C * K * K ? want.conv_w[k] : want.conv_b[k - C * K * K]) -= lr * g;
    }
    auto same = [](const Cnn& a, const Cnn& b) {
        return a.fc_w == b.fc_w && a.fc_b == b.fc_b && a.conv_w == b.conv_w && a.conv_b == b.conv_b &&
               std::memcmp(a.fc_w.data(), b.fc_w.data(), a.fc_w.size() * sizeof(float)) == 0;
    };
    Cnn got10 = m, got5 = m, got2 = m, got = m;
    fc_backward_update_tiled<10>(got10, t, B, lr);  // outside a parallel region: all on this thread
    fc_backward_update_tiled<5>(got5, t, B, lr);
    fc_backward_update_tiled<2>(got2, t, B, lr);
    fc_backward_update(got, t, B, lr);  // the build's
    CHECK(same(got10, want));
    CHECK(same(got5, want));
    CHECK(same(got2, want));
    CHECK(same(got, want));
    CHECK(!same(m, want));
}

TEST_CASE("cnn: softmax cross-entropy gradient equals its central difference") {
    // One sample, logits of order 1: the loss is smooth and evaluated in double
    // below, so a step of 1e-3 leaves truncation error O(1e-6) and the float
    // rounding of delta (~1e-7) dominates; 1e-4 relative is a safe bound.
    nn::Rng r = nn::rng_new(3);
    float logits[CLASSES], delta[CLASSES];
    for (float& l : logits) l = nn::uniform_f32(r, -2, 2);
    uint8_t label = 4;
    auto loss_at = [&](const float* s) {
        double mx = *std::max_element(s, s + CLASSES), sum = 0;
        for (int j = 0; j < CLASSES; ++j) sum += std::exp(double(s[j]) - mx);
        return std::log(sum) + mx - s[label];
    };
    float q[CLASSES];
    std::copy(logits, logits + CLASSES, q);
    float loss = softmax_xent(q, label, 1.0f, delta);
    CHECK(loss == doctest::Approx(loss_at(logits)).epsilon(1e-6));
    for (int j = 0; j < CLASSES; ++j) {
        float up[CLASSES], down[CLASSES];
        std::copy(logits, logits + CLASSES, up);
        std::copy(logits, logits + CLASSES, down);
        up[j] += 1e-3f;
        down[j] -= 1e-3f;
        double numeric = (loss_at(up) - loss_at(down)) / (double(up[j]) - double(down[j]));
        CHECK(rel_err(numeric, delta[j], 1e-3) < 1e-4);
    }
}

TEST_CASE("cnn: linear layer input gradient g_p = W^T delta") {
    // g_p is linear in delta: check it against the definition in double.
    nn::Rng r = nn::rng_new(5);
    Cnn m = init_cnn(r);
    float delta[CLASSES], gp[GP_SIZE];
    for (float& d : delta) d = nn::uniform_f32(r, -1, 1);
    fc_input_grad(m, delta, gp);
    for (int i = 0; i < FC_IN; i += 7) {
        double want = 0;
        for (int j = 0; j < CLASSES; ++j) want += double(delta[j]) * m.fc_w[j * FC_IN + i];
        CHECK(rel_err(gp[i], want, 1e-3) < 1e-5);
    }
    CHECK(gp[FC_IN] == 0.0f);
    CHECK(gp[FC_IN + 1] == 0.0f);
}

TEST_CASE("cnn: convolution + ReLU + max-pool backward equals central differences") {
    // f(w) = <r, pooled(w)> for a random r: its gradient with respect to the
    // conv weights and biases is what conv_grad computes from g_p = r. f is
    // differenced on the double reference with a step of 1e-6; conv_grad sums
    // ~400 float products per weight, good to ~1e-6 relative, so 1e-4 relative
    // (floor 1e-2, gradients here are O(1..10)) is a bound that still catches
    // any wrong offset, lane or route.
    nn::Split d = random_split(4, 11);
    nn::Rng r = nn::rng_new(12);
    Cnn m = init_cnn(r);
    for (float& b : m.conv_b) b = nn::uniform_f32(r, -0.1f, 0.1f);
    for (int s = 0; s < d.n; ++s) {
        const uint8_t* px = &d.pixels[size_t(s) * H * W];
        std::vector<float> xd(XD_SIZE), pooled(FC_IN);
        std::vector<int> route(ROUTE);
        split_pad_image(px, xd.data());
        std::vector<float> rr(GP_SIZE, 0.0f);
        for (int i = 0; i < FC_IN; ++i) rr[i] = nn::uniform_f32(r, -1, 1);
        conv_relu_pool(m, xd.data(), pooled.data(), route.data());
        std::vector<float> g(C * K * K + C);
        conv_grad(xd.data(), route.data(), rr.data(), g.data());
        RefParams p = to_ref(m);
        auto f = [&] {
            std::vector<double> pd = ref_pooled(p, px);
            double v = 0;
            for (int i = 0; i < FC_IN; ++i) v += double(rr[i]) * pd[i];
            return v;
        };
        for (int k = 0; k < C * K * K + C; ++k) {
            double& q = k < C * K * K ? p.conv_w[k] : p.conv_b[k - C * K * K];
            const double keep = q, h = 1e-6;
            q = keep + h;
            double up = f();
            q = keep - h;
            double down = f();
            q = keep;
            CAPTURE(k);
            CHECK(rel_err((up - down) / (2 * h), g[k], 1e-2) < 1e-4);
        }
    }
}

namespace {

// The convolution's gradient computed densely, as an earlier version of
// cnn.cpp did: g_z spread over a 28 x 32 map (zeros everywhere but at the
// winners), then every tap a dot product of that map with the input, 16 lanes
// of partial sums over the 28 rows (even pixel, then odd), added in lane order.
void conv_grad_dense(const float* xd, const int* route, const float* gp, float* conv_g) {
    for (int c = 0; c < C; ++c) {
        float G[H][XD_W];
        float gb[HALF] = {};
        for (int py = 0; py < PH; ++py) {
            const float* g = &gp[c * PH * PW + py * PW];
            const int* r = &route[(c * PH + py) * HALF];
            for (int k = 0; k < HALF; ++k) {
                G[2 * py][k] = g[k] * float(r[k] & 1);
                G[2 * py][HALF + k] = g[k] * float((r[k] >> 1) & 1);
                G[2 * py + 1][k] = g[k] * float((r[k] >> 2) & 1);
                G[2 * py + 1][HALF + k] = g[k] * float((r[k] >> 3) & 1);
                gb[k] += g[k] * float(r[k] != 0);
            }
        }
        for (int u = 0; u < K; ++u) {
            float acc0[HALF] = {}, acc1[HALF] = {}, acc2[HALF] = {};
            for (int y = 0; y < H; ++y) {
                const float* r = &xd[(y + u) * XD_W];
                const float* ge = G[y];
                const float* go = G[y] + HALF;
                for (int k = 0; k < HALF; ++k) {
                    acc0[k] = std::fma(go[k], r[HALF + k], std::fma(ge[k], r[k], acc0[k]));
                    acc1[k] = std::fma(go[k], r[k + 1], std::fma(ge[k], r[HALF + k], acc1[k]));
                    acc2[k] = std::fma(go[k], r[HALF + 1 + k], std::fma(ge[k], r[k + 1], acc2[k]));
                }
            }
            float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f;
            for (int k = 0; k < HALF; ++k) s0 += acc0[k], s1 += acc1[k], s2 += acc2[k];
            conv_g[c * K * K + u * K + 0] = s0;
            conv_g[c * K * K + u * K + 1] = s1;
            conv_g[c * K * K + u * K + 2] = s2;
        }
        float sb = 0.0f;
        for (int k = 0; k < HALF; ++k) sb += gb[k];
        conv_g[C * K * K + c] = sb;
    }
}

}  // namespace

TEST_CASE("cnn: the convolution's gradient, winners only, gives the bits of the dense sum") {
    // Skipping a product whose gradient is 0 leaves every partial sum as it
    // was (s + 0*x = s for finite x, and no sum here is -0), so the two must
    // agree exactly, not just closely. Random images and weights with biases
    // of both signs give blocks with the ReLU off, and winners at all four
    // positions (checked); the gradients have both signs.
    nn::Split d = random_split(6, 41);
    nn::Rng r = nn::rng_new(42);
    Cnn m = init_cnn(r);
    int winners[16] = {};
    for (int s = 0; s < d.n; ++s) {
        for (float& b : m.conv_b) b = nn::uniform_f32(r, -0.3f, 0.3f);
        std::vector<float> xd(XD_SIZE), pooled(FC_IN);
        std::vector<int> route(ROUTE);
        split_pad_image(&d.pixels[size_t(s) * H * W], xd.data());
        conv_relu_pool(m, xd.data(), pooled.data(), route.data());
        for (int v : route) ++winners[v];
        std::vector<float> gp(GP_SIZE, 0.0f);
        for (int i = 0; i < FC_IN; ++i) gp[i] = nn::uniform_f32(r, -1, 1);
        std::vector<float> want(C * K * K + C), got(want.size()), got4(want.size()), got8(want.size()),
            got16(want.size());
        conv_grad_dense(xd.data(), route.data(), gp.data(), want.data());
        conv_grad(xd.data(), route.data(), gp.data(), got.data());  // the build's vector width
        conv_grad_tiled<4>(xd.data(), route.data(), gp.data(), got4.data());  // and every target's
        conv_grad_tiled<8>(xd.data(), route.data(), gp.data(), got8.data());
        conv_grad_tiled<16>(xd.data(), route.data(), gp.data(), got16.data());
        const size_t bytes = want.size() * sizeof(float);
        CHECK(std::memcmp(got.data(), want.data(), bytes) == 0);
        CHECK(std::memcmp(got4.data(), want.data(), bytes) == 0);
        CHECK(std::memcmp(got8.data(), want.data(), bytes) == 0);
        CHECK(std::memcmp(got16.data(), want.data(), bytes) == 0);
    }
    for (int v : {1, 2, 4, 8}) CHECK(winners[v] > 0);
    CHECK(winners[0] > 0);
}

TEST_CASE("cnn: the whole model's gradient equals central differences of the batch loss") {
    // The training step applies W -= lr * g; with lr = 1 on a copy, g = W - W'
    // up to one rounding of W (~3e-8 here). The batch loss is differenced on
    // the double reference with a step of 1e-6, exact to ~1e-9; the program's
    // float gradients are good to ~1e-5 relative, so we ask for 1e-3 relative
    // with a floor of 1e-4 (tiny gradients are compared absolutely).
    nn::Split d = random_split(8, 21);
    nn::Rng r = nn::rng_new(22);
    Cnn m = init_cnn(r);
    for (float& w : m.fc_w) w *= 4;  // larger scores: gradients well away from zero
    for (float& b : m.conv_b) b = nn::uniform_f32(r, -0.1f, 0.1f);
    std::vector<int> idx = {0, 1, 2, 3, 4, 5, 6, 7};
    Batch t = make_batch(8);
    Cnn stepped = m;
    train_step(stepped, d, idx.data(), 8, t, 1.0f);
    RefParams p = to_ref(m);
    struct P {
        double* p;
        double g;
    };
    std::vector<P> params;
    for (int k = 0; k < C * K * K; ++k) params.push_back({&p.conv_w[k], double(m.conv_w[k]) - stepped.conv_w[k]});
    for (int c = 0; c < C; ++c) params.push_back({&p.conv_b[c], double(m.conv_b[c]) - stepped.conv_b[c]});
    for (int i = 0; i < CLASSES * FC_IN; i += 97) params.push_back({&p.fc_w[i], double(m.fc_w[i]) - stepped.fc_w[i]});
    for (int j = 0; j < CLASSES; ++j) params.push_back({&p.fc_b[j], double(m.fc_b[j]) - stepped.fc_b[j]});
    REQUIRE(params.size() > 240);
    for (P& q : params) {
        const double keep = *q.p, h = 1e-6;
        *q.p = keep + h;
        double up = ref_loss(p, d, idx);
        *q.p = keep - h;
        double down = ref_loss(p, d, idx);
        *q.p = keep;
        CHECK(rel_err((up - down) / (2 * h), q.g, 1e-4) < 1e-3);
    }
}

TEST_CASE("cnn: initialisation follows the original's order and limits") {
    nn::Rng a = nn::rng_new(1), b = nn::rng_new(1);
    Cnn m = init_cnn(a);
    const float conv_limit = std::sqrt(6.0f / 81.0f), fc_limit = std::sqrt(6.0f / 1578.0f);
    for (int k = 0; k < C * K * K; ++k) CHECK(m.conv_w[k] == nn::uniform_f32(b, -conv_limit, conv_limit));
    // the original's fc layout is (FC_IN, CLASSES): element i*10+j is drawn i-major
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < CLASSES; ++j) CHECK(m.fc_w[j * FC_IN + i] == nn::uniform_f32(b, -fc_limit, fc_limit));
    for (float v : m.conv_b) CHECK(v == 0.0f);
    for (float v : m.fc_b) CHECK(v == 0.0f);
}

TEST_CASE("cnn: end to end on a subset of MNIST, save, load, determinism") {
    if (!th::need_mnist()) return;
    // 6000 training and 1000 test images written as IDX files: one epoch on a
    // tenth of MNIST must already clear 80% (it reaches about 87%).
    nn::Split train, test;
    nn::load_mnist(th::mnist_dir(), train, test, false);
    std::string dir = th::path("mnist-sub-cnn");
    REQUIRE(mkdir(dir.c_str(), 0755) == 0);
    auto write_subset = [&](const nn::Split& s, int n, const std::string& prefix) {
        std::vector<uint8_t> img, lab;
        th::put_be32(img, 0x803);
        th::put_be32(img, n);
        th::put_be32(img, 28);
        th::put_be32(img, 28);
        img.insert(img.end(), s.pixels.begin(), s.pixels.begin() + size_t(n) * 784);
        th::put_be32(lab, 0x801);
        th::put_be32(lab, n);
        lab.insert(lab.end(), s.y.begin(), s.y.begin() + n);
        th::write_bytes(dir + "/" + prefix + "-images-idx3-ubyte", img);
        th::write_bytes(dir + "/" + prefix + "-labels-idx1-ubyte", lab);
    };
    write_subset(train, 6000, "train");
    write_subset(test, 1000, "t10k");

    std::string model = th::path("cnn.model"), log = th::path("cnn-log.txt");
    th::Run a = th::run("./cnn --data " + dir + " --epochs 2 --threads 2 --save " + model + " --log " + log);
    REQUIRE(a.code == 0);
    CHECK(a.out.find("Loading MNIST...\nTrain: 6000 | Test: 1000\nTraining CNN: epochs=2 batch=32 lr=0.01\n") == 0);
    size_t at = a.out.find("Test Accuracy: ");
    REQUIRE(at != std::string::npos);
    double acc = std::stod(a.out.substr(at + 15));
    CHECK(acc >= 80.0);
    CHECK(th::count_lines(th::read_text(log)) == 2);
    CHECK(th::read_text(log).rfind("2,", 0) == std::string::npos);  // first row is epoch 1
    CHECK(th::read_text(log).find("\n2,") != std::string::npos);

    // the same seed and threads, and even another thread count: the same bytes
    th::Run b = th::run("./cnn --data " + dir + " --epochs 2 --threads 2 --log none");
    th::Run c = th::run("./cnn --data " + dir + " --epochs 2 --threads 1 --log none");
    auto strip = [](const std::string& s) {  // drop times: everything else must match
        std::string out;
        std::istringstream in(s);
        for (std::string line; std::getline(in, line);)
            if (line.rfind("Epoch", 0) == 0) out += line.substr(0, line.find("| time")) + "\n";
            else if (line.rfind("Test", 0) == 0) out += line + "\n";
        return out;
    };
    CHECK(strip(a.out) == strip(b.out));
    CHECK(strip(a.out) == strip(c.out));

    th::Run e = th::run("./cnn --data " + dir + " --load " + model + " --eval");
    REQUIRE(e.code == 0);
    CHECK(e.out.find("Training CNN") == std::string::npos);
    CHECK(e.out.find(a.out.substr(at, a.out.find('\n', at) - at)) != std::string::npos);
}

TEST_CASE("cnn: --steps N stops after N steps, printing each loss; --steps 0 saves the initial model") {
    if (!th::need_mnist()) return;
    const std::string model = th::path("cnn-steps.model");
    th::Run zero = th::run("./cnn --steps 0 --log none --save " + model);
    REQUIRE(zero.code == 0);
    CHECK(zero.out.find("Step ") == std::string::npos);
    Cnn saved, init;
    nn::load_model(model, "cnn", tensors(saved));
    Rng rng = nn::rng_new(1);
    init = init_cnn(rng);
    CHECK(saved.conv_w == init.conv_w);
    CHECK(saved.fc_w == init.fc_w);

    th::Run three = th::run("./cnn --steps 3 --log none --save " + model);
    REQUIRE(three.code == 0);
    CHECK(three.out.find("Step 1 | loss=") != std::string::npos);
    CHECK(three.out.find("Step 3 | loss=") != std::string::npos);
    CHECK(three.out.find("Step 4 ") == std::string::npos);
    CHECK(three.out.find("Epoch 2") == std::string::npos);
    Cnn after;
    nn::load_model(model, "cnn", tensors(after));
    CHECK(after.fc_w != init.fc_w);
}

TEST_CASE("cnn: bad model files and bad flags get one line and the right exit code") {
    std::string dir = th::mnist_dir().empty() ? "data" : th::mnist_dir();
    std::string good = th::path("cnn-good.model");
    Cnn m;
    nn::save_model(good, "cnn", tensors(m));
    std::vector<uint8_t> bytes = nn::read_file(good);

    std::string trunc = th::path("cnn-trunc.model");
    th::write_bytes(trunc, std::vector<uint8_t>(bytes.begin(), bytes.begin() + 100));
    std::vector<float> other(5);
    std::string wrong = th::path("cnn-wrong.model");
    nn::save_model(wrong, "attention", {{"w", &other, {5, 1, 1, 1}}});

    struct Bad {
        std::string args;
        int code;
        std::string expect;
    };
    std::vector<Bad> cases = {
        {"--eval", 2, "cnn: --eval needs --load FILE\n"},
        {"--batch 0", 2, "cnn: --batch: expected an integer in 1..60000, got '0'\n"},
        {"--threads 0", 2, "cnn: --threads: expected an integer in 1..1024, got '0'\n"},
        {"--lr -1", 2, "cnn: --lr: expected a number > 0 and <= 1e+06, got '-1'\n"},
        {"--epochs x", 2, "cnn: --epochs: expected an integer in 1..100000, got 'x'\n"},
        {"--data " + th::path("nowhere"), 1, "cnn: " + th::path("nowhere") + ": no such data directory"},
    };
    if (!th::mnist_dir().empty()) {
        cases.push_back({"--data " + dir + " --load " + trunc + " --eval", 1, "cnn: " + trunc + ": truncated model header"});
        cases.push_back({"--data " + dir + " --load " + wrong + " --eval", 1,
                         "cnn: " + wrong + ": holds a 'attention' model (expected 'cnn')"});
        cases.push_back({"--data " + dir + " --load " + th::path("none.model"), 1,
                         "cnn: " + th::path("none.model") + ": cannot open"});
    }
    for (const Bad& c : cases) {
        CAPTURE(c.args);
        th::Run r = th::run("./cnn " + c.args);
        CHECK(r.code == c.code);
        CHECK(th::count_lines(r.err) == 1);
        CHECK(r.err.rfind(c.expect, 0) == 0);
    }
}

// For tests/test_draw.cpp, which checks the drawing page's CNN against this
// program: cnn.cpp's own forward pass on one image of 784 bytes (the pooled
// maps (C, 14, 14) of conv_relu_pool and the softmax of fc_forward's logits),
// and the 28 x 28 maps after ReLU (C, 28, 28), which the fused pass never
// stores, from the chapter's formula in double as ref_pooled computes them.
namespace probe {
void cnn(const std::string& model, const uint8_t* image, std::vector<float>& relu, std::vector<float>& pooled,
         std::vector<float>& p) {
    Cnn m;
    nn::load_model(model, "cnn", tensors(m));
    std::vector<float> xd(XD_SIZE), logits(CLASSES);
    std::vector<int> route(ROUTE);
    pooled.assign(FC_IN, 0.0f);
    split_pad_image(image, xd.data());
    conv_relu_pool(m, xd.data(), pooled.data(), route.data());
    fc_forward(m, pooled.data(), logits.data());
    const float top = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (float z : logits) sum += std::exp(double(z) - top);
    p.clear();
    for (float z : logits) p.push_back(float(std::exp(double(z) - top) / sum));
    relu.assign(size_t(C) * H * W, 0.0f);
    for (int c = 0; c < C; ++c)
        for (int y = 0; y < H; ++y)
            for (int x = 0; x < W; ++x) {
                double z = m.conv_b[c];
                for (int u = 0; u < K; ++u)
                    for (int v = 0; v < K; ++v)
                        if (y + u - 1 >= 0 && y + u - 1 < H && x + v - 1 >= 0 && x + v - 1 < W)
                            z += double(m.conv_w[c * K * K + u * K + v]) * nn::pixel(image[(y + u - 1) * W + x + v - 1]);
                relu[(c * H + y) * W + x] = float(std::max(z, 0.0));
            }
}
}  // namespace probe
