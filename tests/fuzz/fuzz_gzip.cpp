// Fuzz target: gzip'd IDX files, the way the programs read them: inflate (with
// a 256 KiB cap, so the fuzzer cannot spend its time on large outputs), then the
// image and label parsers on whatever came out.
#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<uint8_t> in = bytes_of(data, size);
    try {
        std::vector<uint8_t> out = nn::is_gzip(in) ? nn::gunzip(in, "fuzz.gz", size_t(256) << 10) : in;
        try {
            nn::parse_idx_pixels(out, "fuzz.gz");
        } catch (const nn::Error&) {
        }
        nn::parse_idx_labels(out, "fuzz.gz");
    } catch (const nn::Error&) {
    }
    return 0;
}
