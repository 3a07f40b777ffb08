// Tests of xor.cpp: the backward pass against finite differences, and the
// program end to end (the original's run reaches 100%, bad flags exit 2).
#define NN_TESTING
#include "../xor.cpp"

#include "helpers.hpp"

// The loss of one sample as a function of the parameters, for differencing.
static double xor_loss(const Net& net, int s) {
    double h[HID], yhat[OUT];
    forward(net, XOR_X[s], h, yhat);
    return loss(XOR_Y[s], yhat);
}

TEST_CASE("xor: every gradient equals its central difference") {
    // Central differences have truncation error O(eps^2) ~ 1e-12 and rounding
    // error ~ 1e-16 |L| / eps ~ 1e-11 at eps = 1e-6 in double precision; the
    // analytic and numeric gradients must agree to 1e-6 relative (floor 1e-9).
    for (uint64_t seed : {1ull, 42ull, 7777ull}) {
        nn::Rng rng = nn::rng_new(seed);
        Net net = init_net(rng);
        for (double& w : net.W2) w *= 4;  // larger weights: gradients far from zero
        for (int s = 0; s < SAMPLES; ++s) {
            double h[HID], yhat[OUT], dh[HID], dout[OUT];
            forward(net, XOR_X[s], h, yhat);
            backward(net, XOR_Y[s], h, yhat, dh, dout);
            // analytic dL/dtheta = -delta * input
            std::vector<std::pair<double*, double>> params;
            for (int i = 0; i < IN; ++i)
                for (int j = 0; j < HID; ++j) params.push_back({&net.W1[i * HID + j], -dh[j] * XOR_X[s][i]});
            for (int j = 0; j < HID; ++j) params.push_back({&net.b1[j], -dh[j]});
            for (int j = 0; j < HID; ++j) params.push_back({&net.W2[j], -dout[0] * h[j]});
            params.push_back({&net.b2[0], -dout[0]});
            REQUIRE(params.size() == 17);
            for (auto& [p, analytic] : params) {
                const double eps = 1e-6, keep = *p;
                *p = keep + eps;
                double up = xor_loss(net, s);
                *p = keep - eps;
                double down = xor_loss(net, s);
                *p = keep;
                double numeric = (up - down) / (2 * eps);
                CAPTURE(seed);
                CAPTURE(s);
                CHECK(std::fabs(numeric - analytic) <= 1e-6 * std::max(std::fabs(numeric), 1e-3));
            }
        }
    }
}

TEST_CASE("xor: the update moves the loss down for a small step") {
    nn::Rng rng = nn::rng_new(5);
    Net net = init_net(rng);
    double h[HID], yhat[OUT], dh[HID], dout[OUT];
    double before = xor_loss(net, 1);
    forward(net, XOR_X[1], h, yhat);
    backward(net, XOR_Y[1], h, yhat, dh, dout);
    update(net.W2, net.b2, h, dout, HID, OUT, 0.1);
    update(net.W1, net.b1, XOR_X[1], dh, IN, HID, 0.1);
    CHECK(xor_loss(net, 1) < before);
}

TEST_CASE("xor: end to end, the original's run reaches 100%") {
    th::Run r = th::run("./xor");
    REQUIRE(r.code == 0);
    CHECK(r.out.find("Epoch 1000000, Error: ") != std::string::npos);
    CHECK(th::count_lines(r.out) == 1000 + 1 + 1 + 4 + 2);
    CHECK(r.out.find("Input: 1.0, 0.0, Expected Output: 1.0, Predicted Output: 0.9") != std::string::npos);
    CHECK(r.out.find("Accuracy: 100.00%") != std::string::npos);
    CHECK(r.err.empty());
}

TEST_CASE("xor: a fixed seed gives identical output, bad flags exit 2 with one line") {
    th::Run a = th::run("./xor --epochs 3000 --seed 9");
    th::Run b = th::run("./xor --epochs 3000 --seed 9");
    REQUIRE(a.code == 0);
    std::string ta = a.out.substr(0, a.out.find("RESULT")), tb = b.out.substr(0, b.out.find("RESULT"));
    CHECK(ta == tb);

    th::Run bad = th::run("./xor --epochs abc");
    CHECK(bad.code == 2);
    CHECK(bad.err == "xor: --epochs: expected an integer in 0..1000000000, got 'abc'\n");
    th::Run unknown = th::run("./xor --bogus");
    CHECK(unknown.code == 2);
    CHECK(th::count_lines(unknown.err) == 1);
    CHECK(unknown.err.find("xor: unknown flag '--bogus'") == 0);
    th::Run help = th::run("./xor --help");
    CHECK(help.code == 0);
    CHECK(help.out.find("--epochs") != std::string::npos);
    CHECK(help.out.find("(default: 1000000)") != std::string::npos);
}

TEST_CASE("xor: --save writes the parameters, exactly, in the order W1, b1, W2, b2") {
    // --epochs 0: the initial network, which init_net draws from seed 42
    const std::string file = th::path("xor-params.txt");
    th::Run r = th::run("./xor --epochs 0 --save " + file);
    REQUIRE(r.code == 0);
    Rng rng = nn::rng_new(42);
    const Net net = init_net(rng);
    std::vector<double> want(net.W1, net.W1 + IN * HID);
    want.insert(want.end(), net.b1, net.b1 + HID);
    want.insert(want.end(), net.W2, net.W2 + HID * OUT);
    want.insert(want.end(), net.b2, net.b2 + OUT);
    std::istringstream in(th::read_text(file));
    std::vector<double> got;
    for (std::string line; std::getline(in, line);) got.push_back(std::strtod(line.c_str(), nullptr));
    CHECK(got == want);  // %.17g reads back to the same double
}
