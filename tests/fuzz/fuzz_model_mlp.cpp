// Fuzz target: the MLP's model file reader (the original's mnist_model.bin
// layout: three int32 sizes, then float64 weights), with the default hidden
// size. A valid model (3.2 MB) is written as a seed at start-up.
#define NN_TESTING
#include "../../mlp.cpp"

#include "fuzz.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    write_seed("valid.bin", model_bytes(zero_net(512)));
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        Net net = parse_model(bytes_of(data, size), "fuzz.bin", 512);
        if (net.W1.size() != size_t(784) * 512) std::abort();  // accepted means the right shape
    } catch (const nn::Error&) {
    }
    return 0;
}
