// Fuzz target: the model file reader, with the attention program's eleven
// tensors at its default sizes (D = 64, F = 128). A valid model is written as
// a seed at start-up.
#define NN_TESTING
#include "../../attention.cpp"

#include "fuzz.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    Rng rng = nn::rng_new(1);
    Model m = init_model(rng, 64, 128, Pos::sinusoidal);
    write_seed("valid.model", nn::model_bytes("attention", file_tensors(m)));
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static Model m = [] {
        Rng rng = nn::rng_new(1);
        return init_model(rng, 64, 128, Pos::sinusoidal);
    }();
    try {
        nn::parse_model(bytes_of(data, size), "fuzz.model", "attention", file_tensors(m));
    } catch (const nn::Error&) {
    }
    return 0;
}
