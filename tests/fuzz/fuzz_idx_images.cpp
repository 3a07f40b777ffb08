// Fuzz target: the IDX image parser (plain bytes).
#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        std::vector<uint8_t> px = nn::parse_idx_pixels(bytes_of(data, size), "fuzz");
        if (px.size() % nn::IMG_SIZE != 0) std::abort();  // a parsed file is whole images
    } catch (const nn::Error&) {
    }
    return 0;
}
