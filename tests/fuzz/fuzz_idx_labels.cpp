// Fuzz target: the IDX label parser (plain bytes).
#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        for (uint8_t y : nn::parse_idx_labels(bytes_of(data, size), "fuzz"))
            if (y > 9) std::abort();  // a parsed label is a digit
    } catch (const nn::Error&) {
    }
    return 0;
}
