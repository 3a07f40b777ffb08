// Fuzz target: the model file reader, with the CNN's tensors. A valid model
// (63 KB) is written as a seed at start-up.
#define NN_TESTING
#include "../../cnn.cpp"

#include "fuzz.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    Cnn m;
    write_seed("valid.model", nn::model_bytes("cnn", tensors(m)));
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static Cnn m;  // made once: a run reads into it, whatever the last one left there
    try {
        nn::parse_model(bytes_of(data, size), "fuzz.model", "cnn", tensors(m));
    } catch (const nn::Error&) {
    }
    return 0;
}
