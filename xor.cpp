/// # Chapter 1 — XOR: the smallest network that has to learn something
///
/// Four points, two inputs each, and one rule: output 1 when exactly one input
/// is 1. No straight line separates the two classes of
///
/// | $x_1$ | $x_2$ | $y$ |
/// |---|---|---|
/// | 0 | 0 | 0 |
/// | 0 | 1 | 1 |
/// | 1 | 0 | 1 |
/// | 1 | 1 | 0 |
///
/// so a single neuron cannot do it; a hidden layer can. This chapter trains the
/// original project's `mlp_simple` one to one: a 2-4-1 network of sigmoid
/// neurons, weights and biases drawn uniformly from $[-0.5, 0.5)$, plain
/// gradient descent on the squared error, one update per sample, learning rate
/// 0.01, a million passes over the four samples, all in double precision.
///
///     make && ./xor
///
/// prints the error every 1000 epochs and then the four predictions, which end
/// within a few hundredths of 0 and 1. Everything that later chapters do at
/// scale — forward pass, loss, backward pass by the chain rule, update — is
/// here in a few dozen lines, so this is where the derivations are done in full.
#include "common.hpp"

namespace {

using nn::Rng;

/// ## The data and the sizes
///
/// Sizes are constants with the letters used throughout the book: `IN` inputs,
/// `HID` hidden neurons, `OUT` outputs. The whole data set is four rows.
constexpr int IN = 2, HID = 4, OUT = 1, SAMPLES = 4;

constexpr double XOR_X[SAMPLES][IN] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
constexpr double XOR_Y[SAMPLES][OUT] = {{0}, {1}, {1}, {0}};

/// ## The model
///
/// Two dense layers. A layer maps $x\in\mathbb{R}^{n}$ to
/// $$a = \sigma(z),\qquad z_o = b_o + \sum_i x_i W_{io},$$
/// where $\sigma(t) = 1/(1+e^{-t})$ squashes any number into $(0,1)$. `W` is
/// stored as (inputs, outputs), row-major: `W[i*out + o]`, the layout of the
/// original. The network is $h = \sigma(xW_1 + b_1)$, $\hat y = \sigma(hW_2 + b_2)$:
/// $2\cdot4 + 4 + 4\cdot1 + 1 = 17$ parameters. So few that they live in
/// fixed arrays inside the struct; the MNIST chapters, whose layers have
/// hundreds of thousands of weights, keep theirs in `std::vector`.
struct Net {
    double W1[IN * HID];   // (IN, HID)
    double b1[HID];        // (HID)
    double W2[HID * OUT];  // (HID, OUT)
    double b2[OUT];        // (OUT)
};

/// Initialisation follows the original exactly, because the random numbers
/// decide where gradient descent starts, and so whether this run reaches 100%:
/// for each layer, first every weight row by row, then every bias, each
/// uniform in $[-0.5, 0.5)$; the hidden layer first.
Net init_net(Rng& rng) {
    Net net;
    for (double& v : net.W1) v = nn::uniform_f64(rng, -0.5, 0.5);
    for (double& v : net.b1) v = nn::uniform_f64(rng, -0.5, 0.5);
    for (double& v : net.W2) v = nn::uniform_f64(rng, -0.5, 0.5);
    for (double& v : net.b2) v = nn::uniform_f64(rng, -0.5, 0.5);
    return net;
}

/// ## Forward pass
///
/// Everything a neuron does is a weighted sum and a sigmoid.
double sigmoid(double t) { return 1.0 / (1.0 + std::exp(-t)); }

/// One layer: start from the bias, add each input times its weight, squash.
/// The loops are tiny (at most 4 × 4) and their bounds are constants the
/// compiler sees, so it unrolls them completely.
void dense_sigmoid(const double* W, const double* b, const double* x, double* a, int in, int out) {
    for (int o = 0; o < out; ++o) {
        double z = b[o];
        for (int i = 0; i < in; ++i) z += x[i] * W[i * out + o];
        a[o] = sigmoid(z);
    }
}

void forward(const Net& net, const double* x, double* h, double* yhat) {
    dense_sigmoid(net.W1, net.b1, x, h, IN, HID);     // h: (HID)
    dense_sigmoid(net.W2, net.b2, h, yhat, HID, OUT);  // yhat: (OUT)
}

/// ## The loss
///
/// For one sample with target $y$ and prediction $\hat y$, the squared error
/// $$L = \tfrac12\,(y - \hat y)^2 .$$
/// The $\tfrac12$ cancels the 2 of the derivative. The program prints the mean
/// of $(y-\hat y)^2$ over the four samples of an epoch, as the original does.
double loss(const double* y, const double* yhat) {
    double s = 0;
    for (int o = 0; o < OUT; ++o) s += 0.5 * (y[o] - yhat[o]) * (y[o] - yhat[o]);
    return s;
}

/// ## Backward pass
///
/// We want $\partial L/\partial\theta$ for all 17 parameters. The chain rule,
/// applied from the loss backwards, does it with one number per neuron, its
/// *delta*: how fast the loss falls as that neuron's pre-activation $z$ rises.
/// We keep the original's sign convention, $\delta = -\partial L/\partial z$,
/// so that the update below *adds* $\delta$ times the input.
///
/// **The sigmoid's derivative** needs no exponential: from
/// $\sigma(t) = (1+e^{-t})^{-1}$,
/// $$\sigma'(t) = \frac{e^{-t}}{(1+e^{-t})^2} = \sigma(t)\,\bigl(1-\sigma(t)\bigr),$$
/// so with the activation $a = \sigma(z)$ saved from the forward pass,
/// $\sigma'(z) = a(1-a)$.
///
/// **Output neuron.** $L = \tfrac12(y-\hat y)^2$ and $\hat y = \sigma(z_2)$, so
/// $$\delta_2 = -\frac{\partial L}{\partial z_2} = (y - \hat y)\,\hat y\,(1-\hat y).$$
///
/// **Hidden neuron $j$.** $z_2 = b_2 + \sum_j h_j W_{2,j}$ depends on $h_j$
/// through $W_{2,j}$, and $h_j = \sigma(z_{1,j})$, so
/// $$\delta_{1,j} = -\frac{\partial L}{\partial z_{1,j}}
///   = \Big(\sum_o \delta_{2,o} W_{2,jo}\Big)\, h_j(1-h_j).$$
/// The sum over outputs carries the error back through the same weights that
/// carried the signal forward; this is the whole of backpropagation.
///
/// **Weights and biases.** $z_o = b_o + \sum_i x_i W_{io}$ gives
/// $\partial z_o/\partial W_{io} = x_i$ and $\partial z_o/\partial b_o = 1$, so
/// $$-\frac{\partial L}{\partial W_{io}} = \delta_o\, x_i,\qquad -\frac{\partial L}{\partial b_o} = \delta_o .$$
/// Both deltas are computed before any weight changes: the hidden delta must
/// use the output weights that produced this sample's prediction.
void backward(const Net& net, const double* y, const double* h, const double* yhat, double* d_hidden,
              double* d_output) {
    for (int o = 0; o < OUT; ++o) d_output[o] = (y[o] - yhat[o]) * yhat[o] * (1.0 - yhat[o]);
    for (int j = 0; j < HID; ++j) {
        double back = 0;
        for (int o = 0; o < OUT; ++o) back += d_output[o] * net.W2[j * OUT + o];
        d_hidden[j] = back * h[j] * (1.0 - h[j]);
    }
}

/// ## The update
///
/// Gradient descent moves every parameter a small step against its gradient:
/// $\theta \leftarrow \theta - \eta\,\partial L/\partial\theta$, which with our
/// deltas is $W_{io} \leftarrow W_{io} + \eta\,\delta_o x_i$ and $b_o \leftarrow b_o + \eta\,\delta_o$.
/// The original updates after every single sample ("online" or stochastic
/// gradient descent, the output layer first), not once per epoch.
void update(double* W, double* b, const double* x, const double* delta, int in, int out, double lr) {
    for (int i = 0; i < in; ++i)
        for (int o = 0; o < out; ++o) W[i * out + o] += lr * delta[o] * x[i];
    for (int o = 0; o < out; ++o) b[o] += lr * delta[o];
}

/// ## Training
///
/// One epoch visits the four samples in order: forward, error, deltas,
/// update. Every `print_every` epochs we print the mean squared error of the
/// epoch, in the original's words.
///
/// **How fast can this be?** Each sample starts from the weights the previous
/// one left, so the four million steps form one long chain of dependent
/// operations, and within a step two sigmoids (hidden, then output) follow
/// each other. A sigmoid is an exponential and a division, about 14 ns of
/// latency on this machine however many cores it has; two of them per sample
/// already make 0.11 s. The rest of the step adds about as much again. Here
/// the whole run takes about 0.23 s: what helps is that the 17 parameters
/// sit in a local copy of the network that the compiler keeps in registers,
/// and that every loop bound is a constant, so nothing but arithmetic is left.
/// The Rust original takes the same time, for the same reason. Shortening
/// the chain itself is possible but costs the clarity this chapter is for:
/// an inlined exponential instead of the library's, the hidden deltas'
/// factor $W_{2,j}\,h_j(1-h_j)$ formed before the output is known, and
/// the next sample's hidden sums computed from the old weights plus one
/// correction term $\eta\,\delta_{1,j}\,(1+\mathbf{x}\cdot\mathbf{x}')$
/// instead of from the updated ones, together bring the run to about 0.155 s
/// (tried; not kept).
struct Config {
    int epochs = 1000000;
    float lr = 0.01f;
    uint64_t seed = 42;
    int print_every = 1000;
    std::string save;  // empty: do not write the parameters
};

void train(Net& trained, const Config& cfg) {
    Net net = trained;  // a local copy the compiler may keep in registers
    const double lr = cfg.lr;
    double h[HID], yhat[OUT], d_hidden[HID], d_output[OUT];
    for (int epoch = 0; epoch < cfg.epochs; ++epoch) {
        double total = 0;
        for (int s = 0; s < SAMPLES; ++s) {
            forward(net, XOR_X[s], h, yhat);
            total += 2 * loss(XOR_Y[s], yhat);
            backward(net, XOR_Y[s], h, yhat, d_hidden, d_output);
            update(net.W2, net.b2, h, d_output, HID, OUT, lr);
            update(net.W1, net.b1, XOR_X[s], d_hidden, IN, HID, lr);
        }
        if ((epoch + 1) % cfg.print_every == 0) std::printf("Epoch %d, Error: %.6f\n", epoch + 1, total / SAMPLES);
    }
    trained = net;
}

/// ## Evaluation
///
/// The original prints each input with its target and prediction. We add the
/// accuracy: a prediction counts as right when it falls on the target's side
/// of 0.5.
double evaluate(const Net& net, bool print) {
    if (print) std::printf("\nTesting the trained network:\n");
    int correct = 0;
    double h[HID], yhat[OUT];
    for (int s = 0; s < SAMPLES; ++s) {
        forward(net, XOR_X[s], h, yhat);
        if (print)
            std::printf("Input: %.1f, %.1f, Expected Output: %.1f, Predicted Output: %.3f\n", XOR_X[s][0],
                        XOR_X[s][1], XOR_Y[s][0], yhat[0]);
        correct += (yhat[0] > 0.5) == (XOR_Y[s][0] > 0.5);
    }
    return 100.0 * correct / SAMPLES;
}

/// ## The program
///
/// Flags change the run; by default it is the original's, except that the
/// seed is fixed at the original's 42 instead of the clock (`--seed time` gives
/// the original's behaviour). The last line sums the run up in the same
/// `RESULT` form as the PyTorch peers, for `make bench`. The count of floating
/// point operations is per sample $2(IN\cdot HID + HID\cdot OUT)$ for the forward
/// multiply-adds, $2\,HID\cdot OUT$ to carry the deltas back and
/// $2(IN\cdot HID + HID \cdot OUT)$ for the update: 56, the exponentials not counted.
[[maybe_unused]] int run(int argc, char** argv) {
    Config cfg;
    std::vector<nn::Flag> flags = {
        {.name = "--epochs", .help = "passes over the four samples", .integer = &cfg.epochs, .lo = 0,
         .hi = 1000000000},
        {.name = "--lr", .help = "learning rate", .number = &cfg.lr, .lo = 0, .hi = 1e6},
        {.name = "--seed", .help = "RNG seed, or 'time' for the clock", .seed = &cfg.seed},
        {.name = "--print-every", .help = "print the error every N epochs", .integer = &cfg.print_every,
         .lo = 1, .hi = 1000000000},
        {.name = "--save", .help = "write the trained parameters here, as text: W1, b1, W2, b2", .text = &cfg.save},
    };
    if (!nn::parse_flags(argc, argv, "xor", "Train a 2-4-1 sigmoid network on XOR (the original mlp_simple).",
                         flags))
        return 0;
    Rng rng = nn::rng_new(cfg.seed);
    Net net = init_net(rng);
    double t0 = nn::now_seconds();
    train(net, cfg);
    double secs = nn::now_seconds() - t0;
    double acc = evaluate(net, true);
    std::printf("Accuracy: %.2f%% (outputs thresholded at 0.5)\n", acc);
    if (!cfg.save.empty()) {  // one number a line, exact in decimal: tests/reference/ reads them
        std::string text;
        char line[32];
        auto put = [&](const auto& tensor) {
            for (double v : tensor) text.append(line, size_t(std::snprintf(line, sizeof line, "%.17g\n", v)));
        };
        put(net.W1), put(net.b1), put(net.W2), put(net.b2);
        nn::write_file_atomic(cfg.save, text.data(), text.size());
    }
    double gflop = 56.0 * SAMPLES * cfg.epochs * 1e-9;
    std::printf("RESULT model=xor epochs=%d lr=%g threads=1 seed=%llu train_s=%.3f acc=%.2f gflop=%.3f\n",
                cfg.epochs, double(cfg.lr), (unsigned long long)cfg.seed, secs, acc, gflop);
    return 0;
}

}  // namespace

#ifndef NN_TESTING
int main(int argc, char** argv) { return nn::guarded_main("xor", run, argc, argv); }
#endif
