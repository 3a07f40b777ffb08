// Fuzz target: the MLP's model file reader (the original's mnist_model.bin
// layout: three int32 sizes, then float64 weights). The reader is the same
// for every hidden size; we fuzz it with H = 2, whose files are 12.8 KB
// instead of 3.2 MB, so that the fuzzer runs thousands of times faster. A
// valid model is written as a seed at start-up.
#define NN_TESTING
#include "../../mlp.cpp"

#include "fuzz.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    write_seed("valid.bin", model_bytes(zero_net(2)));
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        Net net = parse_model(bytes_of(data, size), "fuzz.bin", 2);
        if (net.W1.size() != size_t(784) * 2) std::abort();  // accepted means the right shape
    } catch (const nn::Error&) {
    }
    return 0;
}
