// Helpers shared by the test files: a scratch directory, writing bytes (plain
// or gzip'd), running a program and capturing its exit status and output, and
// finding MNIST for the tests that need it.
#pragma once
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>
#include <zlib.h>

#include "../common.hpp"

namespace th {

// One scratch directory per test run, removed at exit.
inline const std::string& scratch() {
    static std::string dir = [] {
        char tmpl[] = "/tmp/nn-tests-XXXXXX";
        if (!mkdtemp(tmpl)) std::abort();
        std::string d = tmpl;
        static std::string cleanup = "rm -rf '" + d + "'";
        std::atexit([] { if (std::system(cleanup.c_str()) != 0) {} });
        return d;
    }();
    return dir;
}

inline std::string path(const std::string& name) { return scratch() + "/" + name; }

// doctest::Contains for a std::string built at run time.
inline doctest::Contains has(const std::string& s) { return doctest::Contains(s.c_str()); }

inline void write_bytes(const std::string& p, const std::vector<uint8_t>& b) {
    std::ofstream f(p, std::ios::binary);
    f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
    REQUIRE(f.good());
}

inline std::string read_text(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

inline std::vector<uint8_t> gzip(const std::vector<uint8_t>& in) {
    z_stream zs{};
    REQUIRE(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    std::vector<uint8_t> out(deflateBound(&zs, uLong(in.size())) + 64);
    zs.next_in = const_cast<Bytef*>(in.data());
    zs.avail_in = uInt(in.size());
    zs.next_out = out.data();
    zs.avail_out = uInt(out.size());
    REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

inline void put_be32(std::vector<uint8_t>& b, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(v >> s));
}

// An IDX image file of n images whose pixel j of image i is (i + j) % 256, so
// that any misplaced byte shows.
inline std::vector<uint8_t> idx_images(uint32_t n, uint32_t rows = 28, uint32_t cols = 28,
                                       uint32_t magic = 0x803) {
    std::vector<uint8_t> b;
    put_be32(b, magic);
    put_be32(b, n);
    put_be32(b, rows);
    put_be32(b, cols);
    for (uint32_t i = 0; i < n; ++i)
        for (uint32_t j = 0; j < rows * cols; ++j) b.push_back(uint8_t((i + j) % 256));
    return b;
}

// An IDX label file whose label i is i % 10.
inline std::vector<uint8_t> idx_labels(uint32_t n, uint32_t magic = 0x801) {
    std::vector<uint8_t> b;
    put_be32(b, magic);
    put_be32(b, n);
    for (uint32_t i = 0; i < n; ++i) b.push_back(uint8_t(i % 10));
    return b;
}

struct Run {
    int code;
    std::string out, err;
};

// Runs a shell command from the project root (where `make test` runs us).
inline Run run(const std::string& cmd) {
    std::string o = path("stdout.txt"), e = path("stderr.txt");
    int st = std::system((cmd + " >'" + o + "' 2>'" + e + "'").c_str());
    Run r{WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), read_text(o), read_text(e)};
    return r;
}

// The one line a program printed on stderr (without its newline).
inline std::string line(const std::string& s) { return s.substr(0, s.find('\n')); }

inline int count_lines(const std::string& s) {
    int n = 0;
    for (char c : s) n += c == '\n';
    return n;
}

// MNIST for the tests that need it: $MNIST_DIR, else data/. Empty if absent.
inline std::string mnist_dir() {
    const char* env = std::getenv("MNIST_DIR");
    std::string d = env && *env ? env : "data";
    try {
        nn::find_mnist_file(d, "t10k-images", "idx3-ubyte");
        nn::find_mnist_file(d, "train-labels", "idx1-ubyte");
        return d;
    } catch (const nn::Error&) {
        return "";
    }
}

inline bool need_mnist() {
    if (!mnist_dir().empty()) return true;
    MESSAGE("SKIP: MNIST not found in $MNIST_DIR or data/ (run `make data` or set MNIST_DIR)");
    return false;
}

}  // namespace th
