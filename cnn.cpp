/// # Chapter 3 — A convolutional network: from a 28×28 image to a digit
///
/// The MLP of the previous chapter looks at an image as 784 unrelated numbers:
/// move a digit one pixel to the right and, to the MLP, it is a different
/// input altogether. A *convolution* looks at small neighbourhoods instead,
/// and uses the same few weights at every position, so a stroke is detected
/// wherever it appears. This chapter trains the original project's
/// `mnist_cnn` one to one:
///
/// | layer | output shape | parameters |
/// |---|---|---|
/// | input image | 1 × 28 × 28 | |
/// | convolution 3×3, 8 filters, padding 1, + ReLU | 8 × 28 × 28 | 8·9 + 8 = 80 |
/// | max-pool 2×2, stride 2 | 8 × 14 × 14 = 1568 | |
/// | linear 1568 → 10, softmax | 10 | 15 680 + 10 |
///
/// trained with plain minibatch SGD on the cross-entropy loss: 3 epochs, batches
/// of 32, learning rate 0.01, Xavier-uniform initial weights. The original
/// publishes 91.93% test accuracy;
///
///     make && ./cnn
///
/// prints one line per epoch and then the test accuracy (about 92% with the
/// default seed), in about a second on a two-core laptop-class machine.
///
/// The chapter follows the data: the image, the model and its 15 770
/// parameters, the forward pass, the loss, then the backward pass layer by
/// layer in reverse, each gradient derived next to the loop that computes it,
/// and finally the training loop, evaluation and the program itself. Along the
/// way we explain why the loops are written in the order they are: the
/// network is small, so speed is almost entirely a matter of memory layout and
/// of letting the compiler use the vector units.
#include "common.hpp"

namespace {

using nn::Rng;

/// ## Sizes
///
/// The letters are those of the whole book: `C` channels, `K` the kernel side,
/// `H`×`W` the image, `PH`×`PW` the pooled map, `B` the batch.
constexpr int H = 28, W = 28;            // input image
constexpr int C = 8, K = 3, PAD = 1;     // 8 filters of 3x3, zero padding 1
constexpr int PH = H / 2, PW = W / 2;    // 14 x 14 after 2x2 max-pooling
constexpr int FC_IN = C * PH * PW;       // 1568 features
constexpr int CLASSES = 10;

/// ## The data
///
/// `common.hpp` reads MNIST into a `Split`: `pixels` holds $n$ images of 784
/// bytes, row by row, and `y` their labels. The network sees a pixel as a
/// float in $[0,1]$ (the byte divided by 255, as in the original); we convert
/// each image when it enters a batch rather than keeping all 60 000 as floats,
/// which would take 188 MB and a good part of the run's start-up.
///
/// A convolution with padding 1 reads one pixel beyond each edge, where the
/// image is taken to be zero. The original tests every tap against the
/// border; we instead copy each image into a zero frame once, 30×30, so the
/// inner loops never branch. And we store each framed row in an unusual
/// order, its 15 *even* columns first and then its 15 *odd* columns, each half
/// in a slot of 16 floats:
///
///     frame column q:   0  1  2  3  4 ... 28 29
///     stored at:        0 16  1 17  2 ... 14 30      (slot of q = q/2 + 16*(q%2))
///
/// The reason is the 2×2 max-pooling that follows the convolution: it
/// compares each even output column with the odd one beside it. With the
/// input split this way, the convolution produces its even outputs and its
/// odd outputs as two separate rows of 16, already side by side for the
/// pooling, and every read stays a contiguous run of 16 floats, exactly one
/// 512-bit vector register (see the convolution below). A spare row at the end
/// lets the last row's reads run one float past its end harmlessly.
constexpr int XD_ROWS = H + 2 * PAD, XD_W = 32;  // 30 framed rows of 32 floats
constexpr int XD_SIZE = (XD_ROWS + 1) * XD_W;    // + one spare row
constexpr int HALF = 16;                         // slot of the even / odd half

void split_pad_image(const uint8_t* px, float* xd) {  // px: (28, 28) bytes -> xd: (31, 32)
    std::fill(xd, xd + XD_SIZE, 0.0f);
    for (int y = 0; y < H; ++y) {
        float* row = &xd[(y + PAD) * XD_W];
        const uint8_t* in = &px[y * W];
        for (int k = 0; k < W / 2; ++k) {
            row[HALF + k] = nn::pixel(in[2 * k]);  // image column 2k is frame column 2k+1 (odd)
            row[1 + k] = nn::pixel(in[2 * k + 1]);  // image column 2k+1 is frame column 2k+2 (even)
        }
    }
}

/// ## The model
///
/// Four tensors, in one struct; the gradients have the same shapes.
///
/// - `conv_w` (C, K, K): filter $c$ is a 3×3 stencil of weights $w_{c,u,v}$;
///   `conv_b` (C): one bias per filter.
/// - `fc_w` (CLASSES, FC_IN): row $j$ holds the 1568 weights of class $j$;
///   `fc_b` (CLASSES).
///
/// The original stores the linear layer the other way round, (FC_IN, CLASSES),
/// so that a class's weights lie 10 floats apart. We store it by class, as
/// PyTorch does, so that every loop over the 1568 features walks memory with
/// stride 1 and vectorises; the numbers are the same.
struct Cnn {
    std::vector<float> conv_w = std::vector<float>(C * K * K);  // (C, K, K)
    std::vector<float> conv_b = std::vector<float>(C);          // (C)
    std::vector<float> fc_w = std::vector<float>(CLASSES * FC_IN);  // (CLASSES, FC_IN)
    std::vector<float> fc_b = std::vector<float>(CLASSES);          // (CLASSES)
};

/// ### Initialisation
///
/// Xavier (Glorot) uniform: a weight is drawn from $U(-\ell, \ell)$ with
/// $\ell = \sqrt{6/(n_\text{in} + n_\text{out})}$, which keeps the variance of
/// the signal about the same going forward and of the gradient going back.
/// For the convolution the original takes $n_\text{in} = 3\cdot3 = 9$ (one input
/// channel) and $n_\text{out} = 3\cdot3\cdot8 = 72$, so $\ell = \sqrt{6/81}
/// \approx 0.27$; for the linear layer $\ell = \sqrt{6/1578} \approx 0.062$.
/// Biases start at zero. The order of the draws is the original's: the 72
/// filter weights, then the linear weights in *its* layout, feature by
/// feature, class by class, which in ours is `fc_w[j*FC_IN + i]`.
Cnn init_cnn(Rng& rng) {
    Cnn m;
    const float conv_limit = std::sqrt(6.0f / float(K * K + K * K * C));
    for (float& w : m.conv_w) w = nn::uniform_f32(rng, -conv_limit, conv_limit);
    const float fc_limit = std::sqrt(6.0f / float(FC_IN + CLASSES));
    for (int i = 0; i < FC_IN; ++i)
        for (int j = 0; j < CLASSES; ++j) m.fc_w[j * FC_IN + i] = nn::uniform_f32(rng, -fc_limit, fc_limit);
    return m;
}

/// ## Forward pass
///
/// ### Convolution, ReLU and max-pooling, in one pass over the image
///
/// **Convolution.** Output channel $c$ at pixel $(y, x)$ is the bias plus the
/// 3×3 neighbourhood of the (zero-padded) input weighted by filter $c$:
/// $$z_{c,y,x} = b_c + \sum_{u=0}^{2}\sum_{v=0}^{2} w_{c,u,v}\; \tilde x_{y+u,\,x+v},$$
/// where $\tilde x$ is the padded image (so $\tilde x_{y+u,x+v}$ is pixel
/// $(y+u-1, x+v-1)$ of the original). **ReLU** keeps the positive part,
/// $a = \max(z, 0)$. **Max-pooling** keeps the largest of each 2×2 block:
/// $$p_{c,i,j} = \max_{d_y, d_x \in \{0,1\}} a_{c,\,2i+d_y,\,2j+d_x},$$
/// and remembers *which* of the four won (its index $2d_y + d_x$, first one on
/// a tie, as the original), because the backward pass will need it.
///
/// **Why the loops run in this order.** The obvious loop puts the 3×3 sum
/// innermost: nine multiply-adds per output pixel. We turn it inside out. For
/// one output row we keep two rows of 16 running sums, $z^{e}_k$ for the even
/// pixels $x = 2k$ and $z^{o}_k$ for the odd ones $x = 2k+1$, and loop over the
/// nine taps $(u, v)$; innermost, over the 16 lanes $k$, we add one weight
/// times 16 consecutive inputs. In the split layout the input that tap $v$
/// needs for pixel $2k$ sits at slot $k$ + `EVEN_OFF[v]` of the framed row
/// $y+u$, and for pixel $2k+1$ at slot $k$ + `ODD_OFF[v]`:
///
/// | tap $v$ | frame column for $x=2k$ | slot | frame column for $x=2k+1$ | slot |
/// |---|---|---|---|---|
/// | 0 | $2k$ | $k$ | $2k+1$ | $k+16$ |
/// | 1 | $2k+1$ | $k+16$ | $2k+2$ | $k+1$ |
/// | 2 | $2k+2$ | $k+1$ | $2k+3$ | $k+17$ |
///
/// So the innermost loop is one weight times one contiguous run of 16 floats,
/// added to 16 sums: one vector fused multiply-add instruction, with the sums
/// kept in registers across the nine taps. (Lanes 14 and 15 compute pixels
/// that do not exist; they are never used.) Two output rows are computed
/// together, which gives the processor four independent chains of
/// multiply-adds to overlap, and is exactly what one row of 2×2 pooling needs:
/// right after, the four candidates of the 14 blocks of the row pair are four
/// aligned vectors, and the pooling is a handful of vector comparisons. The
/// 28×28 map of a channel is never written to memory, only its 14×14 pooled
/// version and the winners' positions.
///
/// **ReLU after the max.** ReLU never changes which of two numbers is larger,
/// so the max of the four ReLUs is the ReLU of the max: we take the max of
/// the four sums $z$ first and apply ReLU once, to the winner. The route only
/// matters where that max is positive, and there the first $z$ equal to it
/// is the first activation equal to it, so the route is the same too. (Where
/// all four are $\le 0$ the pooled value is a zero, which may now carry the
/// other sign: no sum can tell, as every sum it enters starts at $+0$.) GCC
/// turns each `std::max` into a compare and a blend (it keeps the rule of
/// `std::max` for NaN and for the sign of zero), so four ReLUs per block were
/// eight vector instructions per vector of blocks; now there are two, and
/// the whole function went from 1.83 to 1.40 µs per sample (AVX2, one thread,
/// in a loop over one batch's samples, not a whole run).
///
/// One sample at a time: `xd` (31, 32) in; out: `pooled` (C, 14, 14), and
/// `route` (C, 14, 16), what the backward pass needs to know about each
/// block: 0 if its ReLU was off (the max is 0, no gradient flows), else a
/// single bit set at the winner's index $2d_y + d_x$ (a bit rather than a
/// number, so that the backward pass can pick it out with plain arithmetic).
/// Its rows have 16 lanes like everything else, the last two always 0.
constexpr int ROUTE = C * PH * HALF;  // routing entries per sample
constexpr int EVEN_OFF[K] = {0, HALF, 1}, ODD_OFF[K] = {HALF, 1, HALF + 1};
// The table follows from the layout of split_pad_image: frame column f sits
// at slot f/2 when f is even, HALF + f/2 when odd, so column 2k+v (pixel 2k,
// tap v) is slot k + slot(v), and column 2k+1+v is slot k + slot(1+v). The
// kernels below write these offsets out as literals, lane by lane.
constexpr int frame_slot(int f) { return f % 2 == 0 ? f / 2 : HALF + f / 2; }
static_assert(EVEN_OFF[0] == frame_slot(0) && EVEN_OFF[1] == frame_slot(1) && EVEN_OFF[2] == frame_slot(2) &&
              ODD_OFF[0] == frame_slot(1) && ODD_OFF[1] == frame_slot(2) && ODD_OFF[2] == frame_slot(3));

void conv_relu_pool(const Cnn& m, const float* xd, float* pooled, int* route) {
    for (int c = 0; c < C; ++c) {
        const float* wc = &m.conv_w[c * K * K];
        for (int py = 0; py < PH; ++py) {
            float ze0[HALF], zo0[HALF], ze1[HALF], zo1[HALF];  // rows 2py, 2py+1: even, odd pixels
            for (int k = 0; k < HALF; ++k) ze0[k] = zo0[k] = ze1[k] = zo1[k] = m.conv_b[c];
            for (int u = 0; u < K; ++u) {
                const float w0 = wc[u * K], w1 = wc[u * K + 1], w2 = wc[u * K + 2];
                const float* r0 = &xd[(2 * py + u) * XD_W];  // framed row 2py+u, for output row 2py
                const float* r1 = r0 + XD_W;                 // framed row 2py+1+u, for output row 2py+1
                for (int k = 0; k < HALF; ++k) {  // taps v = 0, 1, 2 at the slots of the table
                    ze0[k] = std::fma(w2, r0[k + 1], std::fma(w1, r0[HALF + k], std::fma(w0, r0[k], ze0[k])));
                    zo0[k] = std::fma(w2, r0[HALF + 1 + k], std::fma(w1, r0[k + 1], std::fma(w0, r0[HALF + k], zo0[k])));
                    ze1[k] = std::fma(w2, r1[k + 1], std::fma(w1, r1[HALF + k], std::fma(w0, r1[k], ze1[k])));
                    zo1[k] = std::fma(w2, r1[HALF + 1 + k], std::fma(w1, r1[k + 1], std::fma(w0, r1[HALF + k], zo1[k])));
                }
            }
            // The max of each 2x2 block, then ReLU; the winner: the first of d = 2*dy + dx
            // (even/odd of row 2py, even/odd of row 2py+1) that equals the max.
            float best[HALF];
            int* r = &route[(c * PH + py) * HALF];
            for (int k = 0; k < HALF; ++k) {  // all 16 lanes: one vector; lanes 14, 15 are dropped
                const float z0 = ze0[k], z1 = zo0[k], z2 = ze1[k], z3 = zo1[k];
                const float mz = std::max(std::max(z0, z1), std::max(z2, z3));
                best[k] = std::max(mz, 0.0f);
                int bit = 8;  // the first candidate equal to the max: test them last to first
                if (z2 == mz) bit = 4;
                if (z1 == mz) bit = 2;
                if (z0 == mz) bit = 1;
                r[k] = bit & -int((k < PW) & (mz > 0.0f));
            }
            for (int k = 0; k < PW; ++k) pooled[c * PH * PW + py * PW + k] = best[k];
        }
    }
}

/// ### The linear layer
///
/// Ten scores (*logits*), one per class, each a weighted sum of the 1568
/// pooled features: $s_j = b_j + \sum_i p_i\, W_{j,i}$. Class $j$'s weights
/// are a contiguous row, so each score is a dot product of two contiguous
/// arrays. A dot product written as one running sum is a chain of dependent
/// additions, each waiting for the previous one; and the compiler may not
/// reorder it on its own (float addition is not associative). So we keep the
/// partial sums ourselves: 16 per class, for several classes at once, which
/// gives the processor independent chains and reads each feature once for
/// all the classes of a pass. The 16 partial sums of a class are added up at
/// the end, always in the same order.
///
/// How many classes a pass can take is set by the register file (`LANES`,
/// `VREGS` from `common.hpp`): a class's 16 sums are $v$ = 16/`LANES`
/// vectors, and the 16 features of a step another $v$, plus $v$ for a row
/// of weights: `CB` classes need $(\mathrm{CB} + 2)\,v \le$ `VREGS`. `CB`
/// divides 10, so that every pass has the same constant width:
///
/// | target | lanes × registers | classes per pass `CB` | registers |
/// |---|---|---|---|
/// | AVX-512 | 16 × 32 | 10 (one pass) | 10 + 2 = 12 |
/// | AVX2 + FMA | 8 × 16 | 5 (two passes) | 10 + 4 = 14 |
/// | NEON (ARM64) | 4 × 32 | 5 | 20 + 8 = 28 |
/// | other | 4 × 16 | 2 | 8 + 8 = 16 |
///
/// The single pass of 10 classes needs 20 vector registers with AVX2, which
/// has 16: the compiler kept most sums on the stack, and the AVX2 build spent
/// a third of its forward pass there. A second pass reads the 1568 features
/// twice, from the level-1 cache. The order of every sum is the same for any
/// `CB`, so are the bits (the test runs every target's `CB`).
///
/// The sums are one flat array, `acc[j*HALF + k]`, and the weights one
/// pointer with the class's offset in the index. Written as `acc[CB][HALF]`
/// with a pointer per class, GCC 12 kept one class's sums in memory even with
/// registers to spare, and every step of the loop waited for a store and a
/// load: a tenth of the AVX2 build's training time went there.
template <int CB>
void fc_forward_tiled(const Cnn& m, const float* p, float* logits) {  // p: (FC_IN) -> logits: (CLASSES)
    static_assert(CLASSES % CB == 0);
    for (int j0 = 0; j0 < CLASSES; j0 += CB) {
        float acc[CB * HALF] = {};  // class j's sums at [j*HALF, (j+1)*HALF)
        const float* w = &m.fc_w[j0 * FC_IN];
        for (int i0 = 0; i0 < FC_IN; i0 += HALF)  // 1568 = 98 x 16
            for (int j = 0; j < CB; ++j)
                for (int k = 0; k < HALF; ++k)
                    acc[j * HALF + k] = std::fma(p[i0 + k], w[j * FC_IN + i0 + k], acc[j * HALF + k]);
        for (int j = 0; j < CB; ++j) {
            float s = 0.0f;
            for (int k = 0; k < HALF; ++k) s += acc[j * HALF + k];
            logits[j0 + j] = m.fc_b[j0 + j] + s;
        }
    }
}

constexpr int fc_classes_per_pass() {  // the largest divisor of 10 that fits: see the table
    const int v = HALF / nn::LANES;
    for (int cb : {10, 5, 2}) if ((cb + 2) * v <= nn::VREGS) return cb;
    return 1;
}
constexpr int FC_CB = fc_classes_per_pass();

void fc_forward(const Cnn& m, const float* p, float* logits) { fc_forward_tiled<FC_CB>(m, p, logits); }

/// ### A whole sample, and a batch
///
/// The samples of a batch are independent in the forward pass, so the batch
/// is split between the threads, each sample start to finish on one core:
/// pad, convolve, pool, score. Every buffer is owned by one sample, so no two
/// threads ever write to the same place.
struct Batch {  // one batch's working memory, allocated once
    int capacity;
    std::vector<float> xd;       // (B, 31, 32) framed, split images
    std::vector<float> pooled;   // (B, FC_IN)
    std::vector<int> route;      // (B, C, 14, 16) per 2x2 block: 0 = ReLU off, else 1 << winner
    std::vector<float> logits;   // (B, CLASSES), then probabilities
    std::vector<float> delta;    // (B, CLASSES) dL/dlogits
    std::vector<float> conv_g;   // (B, C*K*K + C) each sample's conv weight and bias gradient
    std::vector<uint8_t> label;  // (B)
    std::vector<float> loss;     // (B) each sample's loss
};

Batch make_batch(int capacity) {
    return Batch{capacity,
                 std::vector<float>(size_t(capacity) * XD_SIZE),
                 std::vector<float>(size_t(capacity) * FC_IN),
                 std::vector<int>(size_t(capacity) * ROUTE),
                 std::vector<float>(size_t(capacity) * CLASSES),
                 std::vector<float>(size_t(capacity) * CLASSES),
                 std::vector<float>(size_t(capacity) * (C * K * K + C)),
                 std::vector<uint8_t>(size_t(capacity)),
                 std::vector<float>(size_t(capacity))};
}

/// `idx[b]` is the dataset row of the batch's sample $b$: the original first
/// copies the rows into a contiguous buffer (`gather_batch`); framing the image
/// does that copy for us.
void forward_sample(const Cnn& m, const nn::Split& data, int row, Batch& t, int b) {
    float* xd = &t.xd[size_t(b) * XD_SIZE];
    split_pad_image(&data.pixels[size_t(row) * H * W], xd);
    conv_relu_pool(m, xd, &t.pooled[size_t(b) * FC_IN], &t.route[size_t(b) * ROUTE]);
    fc_forward(m, &t.pooled[size_t(b) * FC_IN], &t.logits[size_t(b) * CLASSES]);
    t.label[b] = data.y[row];
}

/// ## The loss: softmax and cross-entropy
///
/// Softmax turns scores into probabilities, $q_j = e^{s_j} / \sum_k e^{s_k}$
/// (computed after subtracting the largest score, which changes nothing
/// mathematically and keeps $e^{s}$ from overflowing). The loss of a sample
/// with label $y$ is $L = -\log q_y$, and of a batch the mean over its $B$
/// samples. As derived in the MLP chapter, the gradient of $L$ with respect
/// to the scores is wonderfully simple:
/// $$\frac{\partial L}{\partial s_j} = \frac{1}{B}\,\bigl(q_j - [j = y]\bigr).$$
/// The original clamps $q_y$ at $10^{-9}$ before the logarithm; so do we.
/// One sample: `logits` (CLASSES) are turned into probabilities in place,
/// `delta` (CLASSES) receives $\partial L/\partial s$ with `scale` $= 1/B$, and
/// the sample's loss $-\log q_y$ is returned (the batch's loss is the sum of
/// these, added in sample order as the original does, in `float`).
float softmax_xent(float* q, uint8_t label, float scale, float* delta) {
    float mx = q[0];
    for (int j = 1; j < CLASSES; ++j) mx = std::max(mx, q[j]);
    float sum = 0.0f;
    for (int j = 0; j < CLASSES; ++j) q[j] = std::exp(q[j] - mx), sum += q[j];
    const float inv = 1.0f / sum;
    for (int j = 0; j < CLASSES; ++j) q[j] *= inv;
    for (int j = 0; j < CLASSES; ++j) delta[j] = (q[j] - (j == label ? 1.0f : 0.0f)) * scale;
    return -std::log(std::max(q[label], 1e-9f));
}

/// ## Backward pass
///
/// We now walk the network in reverse, turning $\delta = \partial L/\partial s$
/// into the gradient of every parameter. Write $g_t$ for $\partial L/\partial t$.
///
/// ### Linear layer: the gradient that reaches the features
///
/// Forward was $s_j = b_j + \sum_i p_i W_{j,i}$. A feature $p_i$ reaches the
/// loss through all ten scores, so
/// $$g_{p_i} = \sum_j \delta_j\, W_{j,i}.$$
///
/// ### Max-pool and ReLU: routing
///
/// A pooled value is a copy of one of four activations, the winner; the other
/// three did not influence the loss at all (move them a little and the max
/// does not change). So the gradient of the winner's activation is $g_p$, and
/// that of the other three is zero: pooling *routes* the gradient back to the
/// position recorded in `route`. ReLU then passes it on where the activation was
/// positive and stops it where $z \le 0$ (there $a = 0$ whatever $z$ does).
/// The winner's activation is the pooled value itself, so the test is simply
/// $p > 0$. The gradient at the convolution's output, $g_z$, is therefore zero
/// except at (at most) one position per 2×2 block:
/// $$g_{z_{c,2i+d_y,2j+d_x}} = \begin{cases} g_{p_{c,i,j}} & \text{if } (d_y,d_x) \text{ won and } p_{c,i,j} > 0,\\ 0 & \text{otherwise.}\end{cases}$$
///
/// ### Convolution: weight and bias gradients
///
/// Forward was $z_{c,y,x} = b_c + \sum_{u,v} w_{c,u,v}\,\tilde x_{y+u,x+v}$.
/// The same weight $w_{c,u,v}$ is used at every pixel, so its gradient sums
/// over every pixel of every sample, each weighted by the input it met there:
/// $$g_{w_{c,u,v}} = \sum_{b}\sum_{y,x} g_{z_{c,y,x}}\;\tilde x_{y+u,\,x+v},\qquad g_{b_c} = \sum_b\sum_{y,x} g_{z_{c,y,x}}.$$
/// (This is the first layer, so the gradient with respect to the image itself
/// is not needed.)
///
/// **Computing it.** $g_z$ is zero at three pixels in four at least, and a
/// zero adds nothing to a sum: $w \cdot 0 + s = s$ exactly. So only the winner
/// of each 2×2 block needs a multiply-add: for block $(i, j)$ with gradient
/// $g$ (0 where its ReLU was off) and winner $(d_y, d_x)$,
/// $$g_{w_{c,u,v}} \mathrel{+}= g\;\tilde x_{2i+d_y+u,\;2j+d_x+v}.$$
/// We keep the layout of the forward pass: lane $k$ of a pooled row is block
/// column $j = k$, and for tap row $u$ the block's two candidate rows are
/// framed rows $2i+u$ (top) and $2i+1+u$ (bottom). Frame columns $2k$ to
/// $2k+3$ sit at slots $k$, $16+k$, $k+1$, $17+k$ of a row (the table of the
/// forward pass), four contiguous runs of 16. Picking the winner's row is a
/// select between two loaded runs, lane by lane, and picking its column is a
/// select between neighbouring runs: tap $v$ of pixel $2k+d_x$ is column
/// $2k+d_x+v$. Then one multiply-add per tap and lane. The selects are
/// written as `if` over values already loaded, which the compiler turns into
/// blend instructions; a `?:` that chooses between two *loads* is a branch to
/// it, and kept the loop scalar.
///
/// Each lane keeps its own partial sum of each tap, over the pooled rows in
/// order, and the 16 lanes are added at the end, in order. This is the sum an
/// earlier version computed densely, over all 28×32 positions with the zeros
/// multiplied in (the test keeps that version and checks that the bits are
/// the same); it did four times as many multiply-adds. The lanes are walked
/// one vector at a time (`V` = `LANES` of them: 8 with AVX2, 16 with
/// AVX-512, 4 with NEON), so that a vector's three sums stay in registers
/// across the 14 rows: written over all 16 lanes at once, GCC 12 kept the AVX2
/// sums in memory. Every lane's sum is the same whatever `V` (the test runs
/// 4, 8 and 16). Two pieces of bookkeeping are done once rather than per tap
/// row: the winner's two bits become two masks, `bottom` and `right`, in the
/// pass that masks the gradients; and the lanes of all 80 sums (72 weights,
/// 8 biases) are added up at the very end, 80 independent chains that the
/// processor overlaps, instead of three at a time between the loops.
///
/// The functions below do the per-sample part. `fc_input_grad` computes
/// $g_p$ (ten stride-1 passes over the linear weights, with two spare zero
/// lanes at the end, see below). `conv_grad` turns it into the convolution's
/// gradient of one sample, written to that sample's own slot of `conv_g` (72
/// weight gradients, then 8 bias gradients); the slots are added up in sample
/// order afterwards, so the result does not depend on how the samples were
/// split between threads.
constexpr int GP_SIZE = FC_IN + 2;

void fc_input_grad(const Cnn& m, const float* delta, float* gp) {  // delta: (CLASSES) -> gp: (FC_IN + 2)
    const float* w = m.fc_w.data();
    for (int i = 0; i < FC_IN; ++i) {
        float s = 0.0f;
        for (int j = 0; j < CLASSES; ++j) s = std::fma(delta[j], w[j * FC_IN + i], s);
        gp[i] = s;
    }
    gp[FC_IN] = gp[FC_IN + 1] = 0.0f;
}

template <int V>
void conv_grad_tiled(const float* xd, const int* route, const float* gp, float* conv_g) {
    static_assert(HALF % V == 0);
    float acc[(C * K * K + C) * HALF];  // sum i's 16 lanes at [i*HALF, (i+1)*HALF): the 72 weights, then 8 biases
    for (int c = 0; c < C; ++c) {
        float g[PH][HALF];  // g_p of block (py, k) where its ReLU was on, else 0
        int bottom[PH][HALF], right[PH][HALF];
        float* gb = acc + (C * K * K + c) * HALF;
        for (int k = 0; k < HALF; ++k) gb[k] = 0.0f;
        for (int py = 0; py < PH; ++py) {
            // 16 lanes of gradients from a pooled row of 14: lanes 14, 15 read the next row (or
            // the spare zeros) but their route is 0, so they count for nothing.
            const float* gr = &gp[c * PH * PW + py * PW];
            const int* r = &route[(c * PH + py) * HALF];
            for (int k = 0; k < HALF; ++k) {
                g[py][k] = r[k] != 0 ? gr[k] : 0.0f;  // (a +0 where gr * 0 was -0: no sum can tell)
                gb[k] += g[py][k];
                bottom[py][k] = r[k] >= 4;         // winner 2 or 3 (r = 4 or 8)
                right[py][k] = (r[k] & 10) != 0;   // winner 1 or 3
            }
        }
        for (int u = 0; u < K; ++u) {
            for (int k0 = 0; k0 < HALF; k0 += V) {  // one vector of lanes at a time
                float a0[V] = {}, a1[V] = {}, a2[V] = {};
                for (int py = 0; py < PH; ++py) {
                    const float* r0 = &xd[(2 * py + u) * XD_W + k0];  // framed row 2py+u: the block's top row
                    const float* r1 = r0 + XD_W;                      // at tap row u, and its bottom row
                    const int* bot = &bottom[py][k0];
                    const int* rt = &right[py][k0];
                    const float* gk = &g[py][k0];
                    for (int k = 0; k < V; ++k) {
                        // frame columns 2k .. 2k+3 of the top row, of the bottom row, then of the winner's
                        float c0 = r0[k], c1 = r0[HALF + k], c2 = r0[k + 1], c3 = r0[HALF + 1 + k];
                        const float b0 = r1[k], b1 = r1[HALF + k], b2 = r1[k + 1], b3 = r1[HALF + 1 + k];
                        if (bot[k]) c0 = b0, c1 = b1, c2 = b2, c3 = b3;  // winner 2 or 3: bottom row
                        float x0 = c0, x1 = c1, x2 = c2;                 // its input at taps v = 0, 1, 2
                        if (rt[k]) x0 = c1, x1 = c2, x2 = c3;            // winner 1 or 3: one column right
                        a0[k] = std::fma(gk[k], x0, a0[k]);
                        a1[k] = std::fma(gk[k], x1, a1[k]);
                        a2[k] = std::fma(gk[k], x2, a2[k]);
                    }
                }
                float* w = acc + (c * K * K + u * K) * HALF;  // taps v = 0, 1, 2 of row u
                for (int k = 0; k < V; ++k)
                    w[k0 + k] = a0[k], w[HALF + k0 + k] = a1[k], w[2 * HALF + k0 + k] = a2[k];
            }
        }
    }
    for (int i = 0; i < C * K * K + C; ++i) {
        float s = 0.0f;
        for (int k = 0; k < HALF; ++k) s += acc[i * HALF + k];
        conv_g[i] = s;
    }
}

void conv_grad(const float* xd, const int* route, const float* gp, float* conv_g) {
    conv_grad_tiled<nn::LANES>(xd, route, gp, conv_g);
}

/// ### Linear layer: weight and bias gradients, and the update
///
/// From $s_j = b_j + \sum_i p_i W_{j,i}$ for every sample $b$ of the batch:
/// $$g_{W_{j,i}} = \sum_b \delta_{b,j}\, p_{b,i}, \qquad g_{b_j} = \sum_b \delta_{b,j}.$$
/// (The $1/B$ of the mean is already inside $\delta$.) Plain SGD then moves
/// each weight against its gradient, $W \leftarrow W - \eta\, g_W$.
///
/// This is the biggest gradient (15 680 numbers), and we never store it: each
/// thread takes chunks of 16 features $i$, sums their gradients over the batch
/// and subtracts them from the weights at once. A chunk's sums are those of
/// the forward pass's `CB` classes at a time (see its table): `CB` × 16 sums,
/// the chunk's 16 features of a sample and one $\delta_{b,j}$ fit in the
/// vector registers, so that over the 32 samples of a batch nothing but the
/// pooled features and the $\delta$ is loaded, and nothing is stored until
/// the chunk's update. (Kept in an array of 196 features per class, as an
/// earlier version did, every multiply-add loaded and stored its sum: twice
/// the time.) The inner loop runs along $i$ with stride 1; `omp simd` tells
/// GCC that this is the loop to vectorise: left to itself, GCC 12 vectorised
/// across the classes instead, four lanes wide, and the update took ten times
/// as long. Each sum still runs over the samples in order, so the bits do
/// not depend on the chunk, on `CB` or on the threads (the test runs every
/// target's `CB` against the plain sums). The update must run
/// after `fc_input_grad`, which needs the weights before this update.
///
/// It is called from inside the training step's parallel region: `omp for`
/// without `parallel` shares the work among the threads already there (and
/// outside a parallel region it runs it all on one thread; `nowait`: a thread
/// done with its share does not wait here, the end of the region does). The
/// work is the 98 chunks and a last item: the bias gradients (ten sums over
/// the batch) and the convolution's update (80 sums over the batch, in sample
/// order), small enough to go with a chunk.
template <int CB>
void fc_backward_update_tiled(Cnn& m, const Batch& t, int B, float lr) {
    static_assert(CLASSES % CB == 0);
    constexpr int CHUNKS = FC_IN / HALF;  // 98 chunks of 16 features
#pragma omp for schedule(static) nowait
    for (int ch = 0; ch <= CHUNKS; ++ch) {
        if (ch == CHUNKS) {  // the last item
            for (int j = 0; j < CLASSES; ++j) {
                float gb = 0.0f;
                for (int b = 0; b < B; ++b) gb += t.delta[b * CLASSES + j];
                m.fc_b[j] -= lr * gb;
            }
            for (int k = 0; k < C * K * K + C; ++k) {  // sum the samples' conv gradients in order, then step
                float g = 0.0f;
                for (int b = 0; b < B; ++b) g += t.conv_g[size_t(b) * (C * K * K + C) + k];
                float& w = k < C * K * K ? m.conv_w[k] : m.conv_b[k - C * K * K];
                w -= lr * g;
            }
            continue;
        }
        const int i0 = ch * HALF;
        for (int j0 = 0; j0 < CLASSES; j0 += CB) {
            float g[CB * HALF] = {};  // class j0+j's gradients of features i0.. at [j*HALF, (j+1)*HALF)
            for (int b = 0; b < B; ++b) {
                const float* p = &t.pooled[size_t(b) * FC_IN + i0];
                const float* d = &t.delta[b * CLASSES + j0];
                for (int j = 0; j < CB; ++j) {
                    const float dj = d[j];
#pragma omp simd
                    for (int i = 0; i < HALF; ++i) g[j * HALF + i] = std::fma(dj, p[i], g[j * HALF + i]);
                }
            }
            for (int j = 0; j < CB; ++j) {
                float* w = &m.fc_w[(j0 + j) * FC_IN + i0];
                for (int i = 0; i < HALF; ++i) w[i] -= lr * g[j * HALF + i];
            }
        }
    }
}

void fc_backward_update(Cnn& m, const Batch& t, int B, float lr) { fc_backward_update_tiled<FC_CB>(m, t, B, lr); }

/// ### One training step
///
/// Forward, loss, backward, update, for one batch of `B` samples whose
/// dataset rows are `idx[0..B)`. Everything up to the convolution's gradient
/// concerns one sample at a time (the softmax too: $\delta$ of a sample
/// depends on its own scores only), so it all happens in one parallel loop,
/// each sample start to finish on one core while its data is still in that
/// core's cache. Then the linear layer's update, which needs the whole batch;
/// then the sums, in sample order, of the per-sample losses and convolution
/// gradients. All of it in one parallel region: the threads meet once in the
/// middle (the end of the `omp for` over samples waits for all of them, since
/// the update needs every sample's $\delta$) and once at the end. Returns the
/// batch's summed loss.
///
/// The images of a batch are drawn at random from 47 MB of pixels, far more
/// than any cache holds: each one comes from main memory, 13 cache lines of
/// 64 bytes, and the first loads of `split_pad_image` used to wait for them
/// (a third of its time). So while one sample is being worked on, the
/// processor is asked to fetch the next one's image: `__builtin_prefetch`
/// (GCC and Clang, every target) is a hint that loads a line into the cache
/// without waiting for it, and changes no value.
void prefetch_image(const nn::Split& data, int row) {
    const uint8_t* px = &data.pixels[size_t(row) * H * W];
    for (int i = 0; i < H * W; i += 64) __builtin_prefetch(px + i);
    __builtin_prefetch(px + H * W - 1);
}

float train_step(Cnn& m, const nn::Split& data, const int* idx, int B, Batch& t, float lr) {
    const float scale = 1.0f / float(B);
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int b = 0; b < B; ++b) {
            if (b + 1 < B) prefetch_image(data, idx[b + 1]);
            forward_sample(m, data, idx[b], t, b);
            t.loss[b] = softmax_xent(&t.logits[b * CLASSES], t.label[b], scale, &t.delta[b * CLASSES]);
            float gp[GP_SIZE];
            fc_input_grad(m, &t.delta[b * CLASSES], gp);
            conv_grad(&t.xd[size_t(b) * XD_SIZE], &t.route[size_t(b) * ROUTE], gp,
                      &t.conv_g[size_t(b) * (C * K * K + C)]);
        }
        fc_backward_update(m, t, B, lr);
    }
    float loss = 0.0f;
    for (int b = 0; b < B; ++b) loss += t.loss[b];
    return loss;
}

/// ## Training
///
/// Every epoch shuffles the order of the 60 000 training images with the
/// original's Fisher–Yates shuffle, then walks through them in batches of
/// `batch` (the last batch may be smaller). The epoch's time includes the
/// shuffle, as in the original, and its loss is the mean over all samples.
/// The loss is checked after every batch: a `nan` stops the run with a clear
/// line (see `common.hpp`).
struct Config {
    int epochs = 3;
    int batch = 32;
    float lr = 0.01f;
    nn::Schedule schedule;  // constant: the original's
    int val = 0;            // images held out for validation
    nn::EarlyStop stop;     // off (patience 0)
    uint64_t seed = 1;
    int threads = nn::default_threads();
    std::string data;
    std::string log = "logs/training_loss_cnn.txt";
    std::string save;
    std::string load;
    bool eval = false;
    std::string predictions;  // empty: do not write them
    int steps = -1;           // stop after this many SGD steps (-1: no limit)
};

/// The batch's loss without the original's clamp, for the divergence check
/// (see `common.hpp`): infinite as soon as one sample's right class has
/// probability 0. `t.logits` holds the probabilities after the step.
double true_loss(const Batch& t, int B) {
    double loss = 0;
    for (int b = 0; b < B; ++b) loss -= std::log(double(t.logits[b * CLASSES + t.label[b]]));
    return loss;
}

std::vector<nn::Tensor> tensors(Cnn& m) {
    return {{"conv_w", &m.conv_w, {C, K, K, 1}},
            {"conv_b", &m.conv_b, {C, 1, 1, 1}},
            {"fc_w", &m.fc_w, {CLASSES, FC_IN, 1, 1}},
            {"fc_b", &m.fc_b, {CLASSES, 1, 1, 1}}};
}

double accuracy(const Cnn& m, const nn::Split& test, int batch, std::vector<uint8_t>* predictions = nullptr);

/// The loop: each step's learning rate from `--schedule`; with `--val`, the
/// held-out images' accuracy on the epoch's line and in its log row, and with
/// `--patience` an early end and the best epoch's parameters kept (the rules
/// are in `common.hpp`). `--save` then writes only an epoch that improved.
double train(Cnn& m, const nn::Split& train_set, const nn::Split& val, Config cfg, Rng& rng, nn::CsvLog& log) {
    Batch t = make_batch(cfg.batch);
    std::vector<int> order(train_set.n);
    for (int i = 0; i < train_set.n; ++i) order[i] = i;
    double total_secs = 0;
    Cnn best;
    const long batches = (train_set.n + cfg.batch - 1) / cfg.batch;
    long step = 0;  // SGD steps so far, for --steps
    for (int epoch = 1; epoch <= cfg.epochs; ++epoch) {
        const double t0 = nn::now_seconds();
        nn::shuffle(rng, order);
        nn::Progress progress = nn::progress_start();
        float total_loss = 0.0f;
        long batch_no = 0;
        for (int start = 0; start < train_set.n && step != cfg.steps; start += cfg.batch, ++batch_no) {
            const int B = std::min(cfg.batch, train_set.n - start);
            const float lr = nn::lr_at(cfg.schedule, cfg.lr, epoch - 1, (epoch - 1) * batches + batch_no,
                                       cfg.epochs * batches);
            const float loss = train_step(m, train_set, &order[start], B, t, lr);
            nn::check_loss(true_loss(t, B), epoch, batch_no + 1, lr);
            ++step;
            if (cfg.steps >= 0) std::printf("Step %ld | loss=%.9g\n", step, double(loss) / B);
            total_loss += loss;
            nn::progress_update(progress, epoch, start + B, train_set.n, total_loss);
        }
        nn::progress_end(progress);
        const float secs = float(nn::now_seconds() - t0);
        total_secs += secs;
        const float avg = total_loss / float(train_set.n);
        const double val_acc = val.n > 0 ? accuracy(m, val, cfg.batch) / 100.0 : -1.0;
        char val_text[32] = "";
        if (val.n > 0) std::snprintf(val_text, sizeof val_text, " | val_acc=%.2f%%", 100 * val_acc);
        std::printf("Epoch %d | loss=%.6f | time=%.3fs%s\n", epoch, double(avg), double(secs), val_text);
        std::fflush(stdout);
        nn::log_epoch(log, epoch, avg, secs, val_acc);
        const bool better = cfg.stop.patience > 0 && nn::improved(cfg.stop, epoch, val_acc);
        if (better) best = m;
        if (!cfg.save.empty() && (cfg.stop.patience == 0 || better)) nn::save_model(cfg.save, "cnn", tensors(m));
        if (step == cfg.steps) break;  // --steps N: saved after N steps (N = 0: the initial model)
        if (nn::stop_now(cfg.stop)) break;
    }
    if (cfg.stop.patience > 0) {
        m = best;
        nn::say_best(cfg.stop, "val_acc=");
    }
    return total_secs;
}

/// ## Evaluation
///
/// The test set goes through the forward pass only, in batches, and a sample
/// counts as right when its largest score is the label's (the first largest,
/// on a tie, as the original). The samples are in their file order; the
/// per-sample verdicts are added up after the parallel loop, so the count does
/// not depend on the threads.
///
/// The whole pass is one parallel region: the threads take batches of
/// `batch` samples in turn (`schedule(static, batch)`), each thread one
/// sample at a time in its own working memory, and the verdicts go to one
/// array by sample, read in order afterwards. (A parallel region per batch,
/// as in training, made the threads meet 313 times for 10 000 images; here
/// there is nothing to wait for between batches.)
double accuracy(const Cnn& m, const nn::Split& test, [[maybe_unused]] int batch,  // read by the pragma only
                std::vector<uint8_t>* predictions) {
    std::vector<uint8_t> guess(test.n);  // (n) the predicted class of each sample
#pragma omp parallel
    {
        Batch t = make_batch(1);
#pragma omp for schedule(static, batch)
        for (int i = 0; i < test.n; ++i) {
            forward_sample(m, test, i, t, 0);
            const float* s = t.logits.data();
            guess[i] = uint8_t(std::max_element(s, s + CLASSES) - s);
        }
    }
    long correct = 0;
    for (int i = 0; i < test.n; ++i) correct += guess[i] == test.y[i];
    if (predictions) predictions->insert(predictions->end(), guess.begin(), guess.end());
    return 100.0 * double(correct) / double(test.n);
}

/// **Every answer, for other programs.** `--predictions FILE` writes one line
/// per test image, `index,label,predicted` (index from 0, in file order), whole
/// or not at all. The tutorial's drawing page (`make draw`) runs this network
/// in JavaScript, and its test checks that the page gives the answer this file
/// gives on every test digit.
void write_predictions(const std::string& path, const nn::Split& data, const std::vector<uint8_t>& predictions) {
    std::string text;
    for (int i = 0; i < data.n; ++i) text += nn::str(i, ",", int(data.y[i]), ",", int(predictions[i]), "\n");
    nn::write_file_atomic(path, text.data(), text.size());
}

/// ## Choosing the learning rate on validation data
///
/// The original trains at 0.01 and reaches 93.11% here. Whether another rate
/// does better is a question for data the model has not trained on, and not
/// for the test set: a rate chosen by its test accuracy is partly chosen for
/// its luck on those 10,000 images, and the test accuracy stops being a
/// measurement (the MLP chapter says more). So: `--val 6000` holds out the
/// last 6000 training images, and the choice is made on their accuracy; the
/// test set is used once, at the end.
///
/// The sweep: the original's three epochs, batch 32, seed 1, a constant
/// rate and a cosine decay (formulas in `common.hpp`) at peaks 0.01 to 1,
/// about threefold apart, and step and exponential decay at 0.1. The rule,
/// fixed before: the highest validation accuracy after the last epoch wins.
///
/// | `--schedule` | `--lr` (peak) | validation accuracy after epoch 3 |
/// |---|---|---|
/// | constant | 0.01 | 93.30% (the original) |
/// | constant | 0.03 | 96.77% |
/// | constant | 0.1 | 98.12% (seeds 2, 3: 97.88%, 97.60%) |
/// | constant | 0.3 | 98.00% |
/// | constant | 1 | 9.92% (never learns) |
/// | cosine | 0.01 | 92.93% |
/// | cosine | 0.03 | 95.27% |
/// | cosine | 0.1 | 98.02% |
/// | **cosine** | **0.3** | **98.30%** (seeds 2, 3: 98.45%, 98.28%) |
/// | cosine | 1 | 10.50% (never learns) |
/// | step, ×0.5 every epoch | 0.1 | 98.08% |
/// | exponential, ×0.8 per epoch | 0.1 | 98.12% |
///
/// ![Validation accuracy per epoch of the CNN's candidates (the two runs at 1 left out)](sweep_cnn.svg)
///
/// The lesson is the MLP's, sharper. The original's rate is ten to thirty
/// times too small: at 0.01 the network is still learning fast when its three
/// epochs end (the loss falls from 0.63 to 0.28), and each threefold step up
/// to 0.1 gains 1.3 to 3.5 points. Above 0.1 the schedule starts to matter:
/// a constant 0.3 is slightly worse than 0.1, while a cosine decay from 0.3,
/// which takes large steps early and small ones at the end, beats the
/// constant 0.1 on each of three seeds, by 0.2 to 0.7 points.
/// At 1 the first steps kill the network: the loss sits at $\ln 10$, the
/// accuracy at chance. The winner is one threefold step below that cliff,
/// which is closer than the attention chapter was willing to go; here the
/// two other seeds train just as well, so we keep the rule's choice.
///
/// The chosen configuration, trained on all 60,000 images and tested once:
///
///     ./cnn --schedule cosine --lr 0.3      # 98.05% on the test set (seed 1)
///
/// against 93.11% for the default, at the same cost (three epochs, 15,770
/// parameters: the original's model was never the limit, its learning rate
/// was). The default stays the original's configuration. The logs are under
/// `docs/data/cnn/`, one per row of the table, each written by a command like
///
///     ./cnn --val 6000 --schedule cosine --lr 0.3 --log docs/data/cnn/cosine-lr0.3.csv
///
/// (all of them are in `docs/data/README.md`); the twelve runs
/// took under a minute on this project's two-core machine, busy with other
/// work at the time.
///
/// ## The program
///
/// Flags, then the original's run: load, train, test, with the original's
/// printed lines. A model can be saved (`--save`, after every epoch, or with
/// `--patience` after every epoch that improves, written whole or not at
/// all, in the format described in `common.hpp`) and loaded
/// again to continue training or, with `--eval`, only to be tested.
///
/// The last line sums the run up for `make bench`. Its floating-point
/// operation count is what this program executes per training sample: the
/// convolution $2\cdot784\cdot8\cdot9$, the linear layer forward, its input
/// gradient and its weight gradient $3\cdot2\cdot1568\cdot10$, and the
/// convolution's weight gradient at most $2\cdot1568\cdot9$ (fewer, since
/// inactive cells are skipped; we count them all): 235 200 per sample.
[[maybe_unused]] int run(int argc, char** argv) {
    Config cfg;
    std::vector<nn::Flag> flags = {
        {.name = "--epochs", .help = "passes over the training set", .integer = &cfg.epochs, .lo = 1, .hi = 100000},
        {.name = "--batch", .help = "samples per SGD step", .integer = &cfg.batch, .lo = 1, .hi = 60000},
        {.name = "--lr", .help = "learning rate", .number = &cfg.lr, .lo = 0, .hi = 1e6},
        {.name = "--seed", .help = "RNG seed, or 'time' for the clock", .seed = &cfg.seed},
        {.name = "--threads", .help = "OpenMP threads", .integer = &cfg.threads, .lo = 1, .hi = 1024},
        {.name = "--data", .help = "MNIST directory (else $MNIST_DIR, else data)", .text = &cfg.data},
        {.name = "--log", .help = "CSV log of epoch,loss,time ('none': no log)", .text = &cfg.log},
        {.name = "--save", .help = "save the model here after every epoch", .text = &cfg.save},
        {.name = "--load", .help = "start from this saved model", .text = &cfg.load},
        {.name = "--eval", .help = "only evaluate the --load model", .on = &cfg.eval},
        {.name = "--predictions", .help = "write index,label,predicted per test image here", .text = &cfg.predictions},
        {.name = "--steps", .help = "stop after N SGD steps, printing each one's loss (-1: no limit)",
         .integer = &cfg.steps, .lo = -1, .hi = 1000000000},
    };
    nn::add_validation_flags(flags, cfg.schedule, cfg.val, cfg.stop);
    if (!nn::parse_flags(argc, argv, "cnn",
                         "Train the original mnist_cnn: conv 3x3x8 + ReLU + maxpool 2x2 + linear.\n"
                         "Chosen on validation (see the chapter): --schedule cosine --lr 0.3",
                         flags))
        return 0;
    if (cfg.eval && cfg.load.empty()) throw nn::Error("--eval needs --load FILE", 2);
    nn::check_schedule(cfg.schedule);
    nn::check_early_stop(cfg.stop, cfg.val);
    nn::set_threads(cfg.threads);

    std::printf("Loading MNIST...\n");
    nn::Split train_set, test_set;
    nn::load_mnist(nn::data_dir(cfg.data), train_set, test_set, /*floats=*/false);
    nn::check_val(cfg.val, train_set.n);
    const nn::Split val_set = nn::split_off(train_set, cfg.val);
    if (cfg.val > 0) std::printf("Train: %d | Val: %d | Test: %d\n", train_set.n, val_set.n, test_set.n);
    else std::printf("Train: %d | Test: %d\n", train_set.n, test_set.n);

    Rng rng = nn::rng_new(cfg.seed);
    Cnn m = init_cnn(rng);
    if (!cfg.load.empty()) nn::load_model(cfg.load, "cnn", tensors(m));
    nn::CsvLog log{cfg.log == "none" || cfg.eval ? "" : cfg.log, ""};

    double train_secs = 0;
    if (!cfg.eval) {
        std::printf("Training CNN: epochs=%d batch=%d lr=%g\n", cfg.epochs, cfg.batch, double(cfg.lr));
        std::fflush(stdout);
        train_secs = train(m, train_set, val_set, cfg, rng, log);
    }
    std::printf("Testing...\n");
    std::vector<uint8_t> predictions;
    const double acc = accuracy(m, test_set, cfg.batch, &predictions);
    std::printf("Test Accuracy: %.2f%%\n", acc);
    if (!cfg.predictions.empty()) write_predictions(cfg.predictions, test_set, predictions);
    const double gflop = cfg.eval ? 0.0 : 235200.0 * train_set.n * cfg.epochs * 1e-9;
    std::printf("RESULT model=cnn epochs=%d batch=%d lr=%g threads=%d seed=%llu train_s=%.3f acc=%.2f gflop=%.2f\n",
                cfg.eval ? 0 : cfg.epochs, cfg.batch, double(cfg.lr), cfg.threads, (unsigned long long)cfg.seed,
                train_secs, acc, gflop);
    return 0;
}

}  // namespace

#ifndef NN_TESTING
int main(int argc, char** argv) { return nn::guarded_main("cnn", run, argc, argv); }
#endif
