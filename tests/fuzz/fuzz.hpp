// Shared by the fuzz targets: libFuzzer calls LLVMFuzzerTestOneInput with
// arbitrary bytes; a target feeds them to one reader. The only acceptable
// outcomes are a normal return and nn::Error (a bad file, refused with a
// message); a crash, a sanitizer report, an uncaught exception of another kind
// or a leak is a finding. Targets may also write valid seed files into the
// directory named by $NN_FUZZ_SEEDS before fuzzing starts (tests/fuzz/run.sh
// sets it), for formats whose valid files are too big to commit.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "../../common.hpp"

inline std::vector<uint8_t> bytes_of(const uint8_t* data, size_t size) { return std::vector<uint8_t>(data, data + size); }

inline void write_seed(const std::string& name, const std::vector<uint8_t>& b) {
    const char* dir = std::getenv("NN_FUZZ_SEEDS");
    if (dir && *dir) nn::write_file_atomic(std::string(dir) + "/" + name, b.data(), b.size());
}
