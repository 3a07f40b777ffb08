/// # Common ground: data, randomness, flags and files
///
/// Every program in this book needs the same few things that are *not* neural
/// network mathematics: read the MNIST files, draw reproducible random numbers,
/// understand its command line, write a training log and a model file that a
/// crash cannot tear, and say clearly what went wrong when something did. They
/// live here, once, so that each chapter can stay about its model.
///
/// Nothing in this file is clever. Each piece is a handful of plain functions on
/// plain data, and each refuses bad input with one line that names the file or
/// flag and what was expected:
///
///     cnn: data/t10k-labels-idx1-ubyte.gz: label 11 at item 4711 (expected 0..9)
///
/// The model mathematics (linear layers, ReLU, softmax, SGD) is *not* here: it
/// is repeated, on purpose, in each program, so that a chapter reads alone.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace nn {

static_assert(std::endian::native == std::endian::little,
              "the model files are little-endian; this host is not");

/// ## Errors
///
/// All of this file reports trouble the same way: it throws `nn::Error`, whose
/// message is one line without the program's name, and whose `code` is the exit
/// status the program should end with: 1 for bad data or a failed write, 2 for a
/// bad command line (the convention of most Unix tools). Each program's `main`
/// catches it once, prints `program: message` on stderr and exits.
struct Error : std::runtime_error {
    int code;
    Error(const std::string& msg, int exit_code = 1) : std::runtime_error(msg), code(exit_code) {}
};

/// `str(a, b, c)` glues its arguments into one string, the way `cout << a << b
/// << c` would print them; messages are built with it.
template <typename... Parts>
std::string str(const Parts&... parts) {
    std::ostringstream out;
    (out << ... << parts);
    return out.str();
}

/// ## Time
///
/// Seconds on a monotonic clock: immune to the wall clock being changed while a
/// run is timed.
inline double now_seconds() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

/// ## The vector unit the build targets
///
/// The hot loops of the programs are plain C++ that the compiler turns into
/// vector instructions, and each keeps a small block of running sums (a
/// *tile*) in vector registers for a whole inner loop. How big that tile can
/// be is set by two numbers of the processor the build targets: how many
/// floats a vector register holds (`LANES`) and how many such registers there
/// are (`VREGS`). A tile that needs more registers than exist does not fail:
/// the compiler parks the surplus on the stack ("spills") and reloads it on
/// every step, which can halve the speed. So each program derives its tile
/// shapes from these two constants (each chapter has the table), and the
/// compiler tells us which processor it targets through predefined macros
/// (`-march=native` sets them for the building machine):
///
/// | target | macro | `LANES` | `VREGS` |
/// |---|---|---|---|
/// | x86 with AVX-512 | `__AVX512F__` | 16 | 32 |
/// | x86 with AVX2 and FMA | `__AVX2__`, `__FMA__` | 8 | 16 |
/// | 64-bit ARM (NEON, e.g. Apple silicon) | `__aarch64__` | 4 | 32 |
/// | anything else (SSE, 32-bit ARM) | | 4 | 16 |
///
/// The tile shape changes how the work is cut, never the order of any sum:
/// every program computes the same bits on every target, and its tests run
/// every target's tile shapes, not only the build's own.
#if defined(__AVX512F__)
constexpr int LANES = 16, VREGS = 32;
constexpr const char* VECTOR_UNIT = "AVX-512";
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int LANES = 8, VREGS = 16;
constexpr const char* VECTOR_UNIT = "AVX2";
#elif defined(__aarch64__)
constexpr int LANES = 4, VREGS = 32;
constexpr const char* VECTOR_UNIT = "NEON";
#else
constexpr int LANES = 4, VREGS = 16;
constexpr const char* VECTOR_UNIT = "generic";
#endif

/// ## Random numbers: the original's xorshift, bit for bit
///
/// The original project draws every random number (initial weights, shuffles)
/// from a tiny generator of its own, Marsaglia's *xorshift* on 64 bits of state.
/// One step scrambles the state with three shift-and-xor operations and hands out
/// its top 32 bits:
/// $$x \leftarrow x \oplus (x \ll 13),\quad x \leftarrow x \oplus (x \gg 7),\quad x \leftarrow x \oplus (x \ll 17),\qquad u = \lfloor x / 2^{32} \rfloor.$$
/// A state of zero would stay zero forever, so seed 0 is replaced by the
/// constant `0x9e3779b97f4a7c15` (the golden ratio in fixed point). We keep every
/// detail of the original, so a given seed produces the same weights and the same
/// shuffles as the Rust programs do:
///
/// - a float in $[0,1]$ is $u / (2^{32}-1)$, computed in the precision of the
///   caller (`float` for the MNIST programs, `double` for XOR), with the
///   conversion of $u$ rounded to nearest as Rust's `as` does;
/// - a uniform number in $[lo, hi)$ is $lo + (hi - lo)\,r$, in two separately
///   rounded steps (the build forbids fusing them, see the Makefile);
/// - an index below $n$ is $u \bmod n$ (slightly biased, as in the original);
/// - a shuffle is Fisher–Yates from the last element down.
struct Rng {
    uint64_t state;
};

inline Rng rng_new(uint64_t seed) { return Rng{seed == 0 ? 0x9e3779b97f4a7c15ULL : seed}; }

inline uint32_t next_u32(Rng& rng) {
    uint64_t x = rng.state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng.state = x;
    return uint32_t(x >> 32);
}

inline float next_f32(Rng& rng) { return float(next_u32(rng)) / float(UINT32_MAX); }
inline double next_f64(Rng& rng) { return double(next_u32(rng)) / double(UINT32_MAX); }

inline float uniform_f32(Rng& rng, float lo, float hi) {
    float r = next_f32(rng);
    float span = (hi - lo) * r;
    return lo + span;
}

inline double uniform_f64(Rng& rng, double lo, double hi) {
    double r = next_f64(rng);
    double span = (hi - lo) * r;
    return lo + span;
}

inline size_t next_index(Rng& rng, size_t n) { return n == 0 ? 0 : size_t(next_u32(rng)) % n; }

inline void shuffle(Rng& rng, std::vector<int>& v) {
    for (size_t i = v.size(); i-- > 1;) std::swap(v[i], v[next_index(rng, i + 1)]);
}

/// The original seeds from the clock on every run; we do that only when asked
/// (`--seed time`), and otherwise start from a fixed seed so that every figure
/// in this book can be reproduced. The clock seed is the number of nanoseconds
/// since 1970, as in the original.
inline uint64_t seed_from_time() {
    using namespace std::chrono;
    return uint64_t(duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count());
}

/// ## Big buffers: map the pages before the first touch
///
/// A fresh buffer from `new` is address space, not memory: the kernel maps
/// each 4 KiB page the first time the program touches it, one *page fault* at
/// a time. On a bare machine a fault costs a few hundred nanoseconds; inside
/// a virtual machine (a cloud server, the machines this book was measured on)
/// it can cost ten microseconds, because each one leaves the guest. The 188 MB
/// of training images as floats are 46,000 pages: half a second of faults,
/// measured, before the first multiply-add, and as long as the whole CNN's
/// epoch. Linux (5.14 and later) maps a whole range in one call,
/// `madvise(MADV_POPULATE_WRITE)`: 20 ms for the same 188 MB.
///
/// `resize_mapped(v, n)` is `v.resize(n)` for a large, fresh vector: reserve
/// the memory (no page touched yet), have the kernel map the pages of the new
/// part, then resize (which writes the zeros into pages that now exist). Only
/// whole pages inside the buffer are asked for. On this project's machines
/// the first write to each mapped 4 KiB page still cost about 5 us (the
/// resize of the 55 MB that `make data`'s files take: 80 ms), so the range
/// is first marked `MADV_HUGEPAGE`: where the kernel has transparent huge
/// pages on (mode `always`, or `madvise` as here) it maps 2 MiB at a time, 512
/// times fewer, and the same resize took 4 ms. Where the call does not exist
/// (macOS, an older kernel) it fails or is left out, and the pages fault in
/// one at a time as before: slower, the same bits.
template <class T>
void resize_mapped(std::vector<T>& v, size_t n) {
    if (n > v.capacity()) v.reserve(n);
#ifdef MADV_POPULATE_WRITE
    const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
    const uintptr_t from = (uintptr_t(v.data() + v.size()) + page - 1) / page * page;
    const uintptr_t to = uintptr_t(v.data() + n) / page * page;
    if (to > from) {
#ifdef MADV_HUGEPAGE
        madvise(reinterpret_cast<void*>(from), to - from, MADV_HUGEPAGE);  // 2 MiB pages where it can
#endif
        madvise(reinterpret_cast<void*>(from), to - from, MADV_POPULATE_WRITE);
    }
#endif
    v.resize(n);
}

/// ## Reading a file, plain or gzip'd
///
/// MNIST is distributed gzip'd; some copies are unpacked. We accept both and
/// decide by content, not by name: a gzip stream starts with the bytes
/// `1f 8b`. The whole file is read first, so every size check below compares a
/// header's claim with bytes that really exist; nothing is ever allocated on a
/// header's word alone. A gzip stream is inflated with zlib into a buffer that
/// grows with the real output and is refused past `GZIP_CAP` bytes (the largest
/// MNIST file unpacks to 47 MB), so a "zip bomb" costs at most that.
constexpr size_t GZIP_CAP = size_t(256) << 20;  // 256 MiB

constexpr size_t FILE_CAP = size_t(256) << 20;  // no file we read is larger

inline std::vector<uint8_t> read_file(const std::string& path, size_t cap = FILE_CAP) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw Error(str(path, ": cannot open (", std::strerror(errno), ")"));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        std::fclose(f);
        throw Error(str(path, ": not a regular file"));
    }
    if (size_t(st.st_size) > cap) {
        std::fclose(f);
        throw Error(str(path, ": ", size_t(st.st_size), " bytes, more than the ", cap,
                        " this file can have (refused before reading)"));
    }
    std::vector<uint8_t> bytes;
    resize_mapped(bytes, size_t(st.st_size));
    size_t got = bytes.empty() ? 0 : std::fread(bytes.data(), 1, bytes.size(), f);
    bool failed = std::ferror(f);
    std::fclose(f);
    if (failed || got != bytes.size()) throw Error(str(path, ": read error"));
    return bytes;
}

inline bool is_gzip(const std::vector<uint8_t>& bytes) {
    return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

/// Inflate one gzip member. zlib reports three kinds of trouble, and each gets
/// its own message: damaged data (`Z_DATA_ERROR`, which includes a wrong CRC at
/// the end), a stream that stops before its end marker (a truncated download),
/// and bytes left over after the end marker.
inline std::vector<uint8_t> gunzip(const std::vector<uint8_t>& in, const std::string& path,
                                   size_t cap = GZIP_CAP) {
    z_stream zs{};
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw Error(str(path, ": zlib failed to start"));
    // First guess at the size: the gzip trailer's ISIZE (the unpacked length
    // mod 2^32), within the cap. Only a guess: the loop grows or refuses.
    size_t guess = in.size() >= 4 ? size_t(in[in.size() - 4]) | size_t(in[in.size() - 3]) << 8 |
                                         size_t(in[in.size() - 2]) << 16 | size_t(in[in.size() - 1]) << 24
                                  : 0;
    std::vector<uint8_t> out;
    resize_mapped(out, std::min(cap, std::max<size_t>(guess + 1, 1 << 16)));
    zs.next_in = const_cast<Bytef*>(in.data());
    zs.avail_in = uInt(in.size());
    size_t produced = 0;
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        if (produced == out.size()) {
            if (out.size() >= cap) {
                inflateEnd(&zs);
                throw Error(str(path, ": gzip stream unpacks to more than ", cap >> 20,
                                " MiB (the cap for an MNIST file)"));
            }
            out.resize(std::min(cap, out.size() * 2));
        }
        zs.next_out = out.data() + produced;
        zs.avail_out = uInt(out.size() - produced);
        rc = inflate(&zs, Z_NO_FLUSH);
        produced = out.size() - zs.avail_out;
        if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT || rc == Z_MEM_ERROR || rc == Z_STREAM_ERROR) {
            std::string why = zs.msg ? zs.msg : "invalid data";
            inflateEnd(&zs);
            throw Error(str(path, ": corrupt gzip stream (", why, ")"));
        }
        if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
            inflateEnd(&zs);
            throw Error(str(path, ": truncated gzip stream (ends after ", in.size(), " bytes)"));
        }
    }
    size_t left = zs.avail_in;
    inflateEnd(&zs);
    if (left != 0) throw Error(str(path, ": ", left, " unexpected bytes after the gzip stream"));
    out.resize(produced);
    return out;
}

inline std::vector<uint8_t> read_maybe_gzip(const std::string& path) {
    std::vector<uint8_t> bytes = read_file(path);
    if (is_gzip(bytes)) return gunzip(bytes, path);
    return bytes;  // moved out, not copied (a `?:` here would copy all 47 MB)
}

/// ## The IDX format
///
/// MNIST comes as four IDX files: a big-endian header of 32-bit words, then raw
/// bytes. Images (magic $2051 = \mathtt{0x803}$) have the header *magic, count,
/// rows, columns* and then `count × 28 × 28` pixels row by row; labels (magic
/// $2049 = \mathtt{0x801}$) have *magic, count* and then one byte per image. The
/// magic's third byte `08` says "unsigned bytes", its fourth the number of
/// dimensions.
///
/// We check everything a damaged or wrong file could get wrong, and say which:
/// a header cut short, a wrong magic, dimensions other than 28×28, a body shorter
/// or longer than the header promises, a label outside 0..9. Pixels become floats
/// in $[0,1]$ by dividing by 255, as in the original.
constexpr int IMG_H = 28, IMG_W = 28, IMG_SIZE = IMG_H * IMG_W;
constexpr uint32_t IDX_IMAGES_MAGIC = 0x00000803, IDX_LABELS_MAGIC = 0x00000801;

inline uint32_t be32(const uint8_t* p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

inline std::string hex32(uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", v);
    return buf;
}

/// Checks shared by both kinds of IDX file: header length, magic, and that the
/// body is exactly `count × item` bytes. Returns the count.
inline size_t idx_check(const std::vector<uint8_t>& b, const std::string& path, uint32_t magic,
                        size_t header, size_t item, const char* what) {
    if (b.size() < header)
        throw Error(str(path, ": truncated header (", header, " bytes expected, file has ", b.size(), ")"));
    uint32_t m = be32(b.data());
    if (m != magic)
        throw Error(str(path, ": wrong magic number ", hex32(m), " (expected ", hex32(magic), " for IDX ",
                        what, ")"));
    size_t count = be32(b.data() + 4);
    size_t want = header + count * item;  // count < 2^32 and item = 784: no overflow in 64 bits
    if (b.size() < want)
        throw Error(str(path, ": truncated: header promises ", count, " ", what, " (", want,
                        " bytes), file has ", b.size(), " bytes"));
    if (b.size() > want)
        throw Error(str(path, ": ", b.size() - want, " unexpected bytes after ", count, " ", what));
    return count;
}

/// Images: returns the `count × 784` pixel bytes, row-major, one image after
/// another: the file's own bytes with the header removed in place (the
/// training set is 47 MB; no second copy).
inline std::vector<uint8_t> parse_idx_pixels(std::vector<uint8_t> b, const std::string& path) {
    if (b.size() >= 16 && be32(b.data()) == IDX_IMAGES_MAGIC &&
        (be32(b.data() + 8) != IMG_H || be32(b.data() + 12) != IMG_W))
        throw Error(str(path, ": images are ", be32(b.data() + 8), "x", be32(b.data() + 12),
                        " (expected 28x28)"));
    idx_check(b, path, IDX_IMAGES_MAGIC, 16, IMG_SIZE, "images");
    b.erase(b.begin(), b.begin() + 16);
    return b;
}

/// A pixel byte as the networks see it: a float in $[0,1]$, divided by 255 as
/// in the original.
inline float pixel(uint8_t v) { return float(v) / 255.0f; }

/// Images as floats: `count × 784` values in $[0,1]$.
inline std::vector<float> parse_idx_images(const std::vector<uint8_t>& b, const std::string& path) {
    std::vector<uint8_t> px = parse_idx_pixels(b, path);
    std::vector<float> x(px.size());
    for (size_t i = 0; i < x.size(); ++i) x[i] = pixel(px[i]);
    return x;
}

/// Labels: returns one byte 0..9 per image.
inline std::vector<uint8_t> parse_idx_labels(const std::vector<uint8_t>& b, const std::string& path) {
    size_t n = idx_check(b, path, IDX_LABELS_MAGIC, 8, 1, "labels");
    for (size_t i = 0; i < n; ++i)
        if (b[8 + i] > 9) throw Error(str(path, ": label ", int(b[8 + i]), " at item ", i, " (expected 0..9)"));
    return std::vector<uint8_t>(b.begin() + 8, b.end());
}

/// ## Finding MNIST
///
/// The directory is the `--data` flag, else the environment variable
/// `MNIST_DIR`, else `./data` (where `make` puts the files). Inside it each file
/// may carry the canonical name (`train-images-idx3-ubyte`) or the original
/// project's (`train-images.idx3-ubyte`), with or without `.gz`.
inline std::string data_dir(const std::string& flag) {
    if (!flag.empty()) return flag;
    const char* env = std::getenv("MNIST_DIR");
    return env && *env ? env : "data";
}

inline bool file_exists(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0;
}

inline std::string find_mnist_file(const std::string& dir, const std::string& stem, const std::string& kind) {
    const std::string names[] = {stem + "-" + kind, stem + "-" + kind + ".gz", stem + "." + kind,
                                 stem + "." + kind + ".gz"};
    for (const std::string& name : names)
        if (file_exists(dir + "/" + name)) return dir + "/" + name;
    throw Error(str(dir, ": no ", stem, " file (looked for ", names[0], "[.gz] and ", names[2],
                    "[.gz]; run `make data` or set MNIST_DIR)"));
}

/// A split (train or test): labels `y` (n), the images as bytes `pixels`
/// (n, 784), and, unless the program asks not to, the same images as floats
/// `x` (n, 784) in $[0,1]$. The floats take four times the memory (188 MB for
/// the training set) and a noticeable part of a second to fill, so a program
/// that converts pixels itself, a batch at a time, can skip them.
struct Split {
    std::vector<float> x;         // (n, 784), pixels in [0, 1]; empty if not asked for
    std::vector<uint8_t> pixels;  // (n, 784), pixels 0..255
    std::vector<uint8_t> y;       // (n), digits 0..9
    int n = 0;
};

inline Split load_split(const std::string& dir, const std::string& prefix, bool floats = true) {
    std::string ipath = find_mnist_file(dir, prefix + "-images", "idx3-ubyte");
    std::string lpath = find_mnist_file(dir, prefix + "-labels", "idx1-ubyte");
    Split s;
    s.y = parse_idx_labels(read_maybe_gzip(lpath), lpath);
    s.pixels = parse_idx_pixels(read_maybe_gzip(ipath), ipath);
    if (s.pixels.size() / IMG_SIZE != s.y.size())
        throw Error(str(ipath, ": ", s.pixels.size() / IMG_SIZE, " images but ", lpath, " has ", s.y.size(),
                        " labels"));
    if (s.y.empty()) throw Error(str(ipath, ": holds no images"));
    s.n = int(s.y.size());
    if (floats) {
        resize_mapped(s.x, s.pixels.size());
        for (size_t i = 0; i < s.x.size(); ++i) s.x[i] = pixel(s.pixels[i]);
    }
    return s;
}

/// Loads both splits. If `dir` does not exist at all, say so first: that is
/// the common mistake, and "no train-images file" would hide it.
inline void load_mnist(const std::string& dir, Split& train, Split& test, bool floats = true) {
    struct stat st;
    if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        throw Error(str(dir, ": no such data directory (use --data DIR or MNIST_DIR, or run `make data`)"));
    train = load_split(dir, "train", floats);
    test = load_split(dir, "t10k", floats);
}

/// ## Flags
///
/// Every program takes `--name value` (or `--name=value`) flags and nothing
/// else. A program describes its flags as a table of `Flag` rows, each pointing
/// at the variable it sets; the variable's value before parsing is the default
/// that `--help` shows. An unknown flag, a missing value or a value out of range
/// stops the program with one line naming the flag and what it accepts, and exit
/// status 2. Nothing is clamped or guessed.
///
/// Kinds of flag, by which pointer is set: an integer in `[lo, hi]`, a number in
/// `(lo, hi]` (learning rates must be positive), a non-empty text, a switch that
/// takes no value, and a seed (an integer, or `time` for the clock).
struct Flag {
    const char* name;  // "--epochs"
    const char* help;  // one line for --help
    int* integer = nullptr;
    float* number = nullptr;
    std::string* text = nullptr;
    bool* on = nullptr;
    uint64_t* seed = nullptr;
    double lo = 0, hi = 0;  // accepted range for integer and number
};

inline std::string flag_accepts(const Flag& f) {
    if (f.integer) return str("an integer in ", (long long)f.lo, "..", (long long)f.hi);
    if (f.number) return str("a number > ", f.lo, " and <= ", f.hi);
    if (f.seed) return "a non-negative integer or 'time'";
    if (f.text) return "a non-empty value";
    return "no value";
}

inline std::string flag_default(const Flag& f) {
    if (f.integer) return std::to_string(*f.integer);
    if (f.number) return str(*f.number);
    if (f.seed) return std::to_string(*f.seed);
    if (f.text) return f.text->empty() ? "none" : *f.text;
    return "off";
}

inline void print_help(const char* prog, const char* about, const std::vector<Flag>& flags) {
    std::printf("usage: %s [flags]\n%s\n\nflags:\n", prog, about);
    for (const Flag& f : flags)
        std::printf("  %-18s %s (default: %s)\n", f.name, f.help, flag_default(f).c_str());
    std::printf("  %-18s print this help and exit\n", "--help");
}

/// Parses one value into the flag's variable, or throws with exit code 2.
inline void set_flag(const Flag& f, const std::string& v) {
    auto bad = [&] { return Error(str(f.name, ": expected ", flag_accepts(f), ", got '", v, "'"), 2); };
    const char* b = v.data();
    const char* e = v.data() + v.size();
    if (f.integer) {
        long long x = 0;
        auto r = std::from_chars(b, e, x);
        if (v.empty() || r.ec != std::errc() || r.ptr != e || x < f.lo || x > f.hi) throw bad();
        *f.integer = int(x);
    } else if (f.number) {
        char* end = nullptr;
        errno = 0;
        const double x = std::strtod(v.c_str(), &end);
        const float xf = float(x);  // the range applies to the float the program gets: 9e-99 is 0
        if (v.empty() || end != v.c_str() + v.size() || errno == ERANGE || !std::isfinite(x) || !(xf > f.lo) ||
            !(xf <= f.hi))
            throw bad();
        *f.number = xf;
    } else if (f.seed) {
        unsigned long long x = 0;
        auto r = std::from_chars(b, e, x);
        if (v == "time") *f.seed = seed_from_time();
        else if (v.empty() || r.ec != std::errc() || r.ptr != e) throw bad();
        else *f.seed = x;
    } else if (f.text) {
        if (v.empty()) throw bad();
        *f.text = v;
    }
}

/// Returns false when `--help` was asked for (the program then exits 0).
inline bool parse_flags(int argc, char** argv, const char* prog, const char* about,
                        const std::vector<Flag>& flags) {
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            print_help(prog, about, flags);
            return false;
        }
        std::string value;
        bool has_value = false;
        size_t eq = arg.find('=');
        if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
            has_value = true;
        }
        const Flag* f = nullptr;
        for (const Flag& g : flags)
            if (arg == g.name) f = &g;
        if (!f) {
            std::string names;
            for (const Flag& g : flags) names += str(" ", g.name);
            throw Error(str("unknown flag '", arg, "' (accepted:", names, " --help)"), 2);
        }
        if (f->on) {
            if (has_value) throw Error(str(f->name, ": takes no value, got '", value, "'"), 2);
            *f->on = true;
            continue;
        }
        if (!has_value) {
            if (i + 1 >= argc) throw Error(str(f->name, ": missing value (expected ", flag_accepts(*f), ")"), 2);
            value = argv[++i];
        }
        set_flag(*f, value);
    }
    return true;
}

/// `--threads N` sets the OpenMP thread count; the default is every core.
///
/// OpenMP is optional: built without it (`make OPENMP=0`, or a compiler that
/// refuses `-fopenmp`), every `#pragma omp` line is ignored and each loop runs
/// on one thread, in the same order as thread 0 of a one-thread team, so the
/// results are the same bits as `--threads 1`. The programs call the OpenMP
/// runtime only through these five functions, which then answer for a team of
/// one: thread number 0, team size 1. A region that splits its work into `T`
/// parts by thread number must therefore not assume it got `T` threads (no
/// OpenMP program may: the runtime can give fewer); it loops
/// `for (u = thread_num(); u < T; u += num_threads())`.
inline int default_threads() {
#ifdef _OPENMP
    return omp_get_num_procs();
#else
    return 1;
#endif
}

inline void set_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

inline int max_threads() {  // the team size a parallel region will ask for
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

inline int thread_num() {  // this thread's number in its team, 0 .. num_threads() - 1
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

inline int num_threads() {  // the size of the team running this region
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/// ## Writing files whole or not at all
///
/// A model or a log that a user cares about must never be left half-written by
/// a crash, a kill, or a full disk. The classic recipe: write everything to a
/// temporary file beside the target, flush it to the disk (`fsync`), and only
/// then `rename` it over the target. On POSIX file systems `rename` replaces the
/// directory entry in one step, so a reader sees either the old file or the new
/// one, whole. If anything fails, the temporary file is removed, the old file is
/// untouched, and the error names the file.
inline void write_file_atomic(const std::string& path, const void* data, size_t size) {
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))  // never rename over a device or a directory
        throw Error(str(path, ": not a regular file; refusing to replace it"));
    std::string tmp = str(path, ".tmp.", getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) throw Error(str(path, ": cannot write (", std::strerror(errno), ")"));
    const char* p = static_cast<const char*>(data);
    size_t left = size;
    int err = 0;
    while (left > 0 && !err) {
        ssize_t w = ::write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) err = w < 0 ? errno : ENOSPC;
        else p += w, left -= size_t(w);
    }
    if (!err && ::fsync(fd) != 0 && errno != EINVAL) err = errno;  // EINVAL: e.g. /dev/full
    if (::close(fd) != 0 && !err) err = errno;
    if (!err && std::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
    if (err) {
        std::remove(tmp.c_str());
        throw Error(str(path, ": cannot write (", std::strerror(err), ")"));
    }
}

/// Makes the directory that will hold `path` (one level, like `logs/`).
inline void make_parent_dir(const std::string& path) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0) return;
    std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
        throw Error(str(dir, ": cannot create directory (", std::strerror(errno), ")"));
}

/// ## The training log
///
/// The original writes one CSV row `epoch,loss,time` per epoch, without a
/// header, to `logs/training_loss_<model>.txt`; plotting scripts read these
/// files. Numbers are printed the way Rust prints an `f32` (the shortest
/// decimal that reads back to the same float, never in exponent form). We keep
/// the rows in memory and rewrite the whole file atomically after every epoch,
/// so a killed run leaves the log of its finished epochs, never half a row.
struct CsvLog {
    std::string path;  // empty: no log
    std::string text;
};

inline std::string shortest(float v) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
    return std::string(buf, r.ptr);
}

/// With a validation set (`--val`) the row is the newest original's
/// `epoch,loss,val_accuracy,time`; the accuracy is a fraction in $[0, 1]$
/// with four decimals (the original writes a percentage with two: the same
/// digits, so a plot's axis label is all that differs). Without one, the row
/// stays the three-column one, byte for byte.
inline void log_epoch(CsvLog& log, int epoch, float loss, float seconds, double val_accuracy = -1) {
    if (log.path.empty()) return;
    char val[32] = "";
    if (val_accuracy >= 0) std::snprintf(val, sizeof val, "%.4f,", val_accuracy);
    log.text += str(epoch, ",", shortest(loss), ",", val, shortest(seconds), "\n");
    make_parent_dir(log.path);
    write_file_atomic(log.path, log.text.data(), log.text.size());
}

/// ## Validation, schedules and early stopping
///
/// Every choice made by looking at a score is fitted to the data that gave
/// the score. Choose a learning rate by its test accuracy, and the test
/// accuracy stops measuring how the model does on digits it has never seen:
/// it now also measures how lucky the choice was on those 10000 digits. So
/// we choose on a *validation set*: `--val N` holds out the last N training
/// images (the newest original holds out 10%, `--val 6000`), never trains on
/// them, and reports their accuracy after every epoch. The test set is used
/// once, at the end, for the number we publish.
///
/// Rejected: `--val` as large as the training set (nothing would be left to
/// train on); zero is the default and means no validation.
inline void check_val(int val, int train_images) {
    if (val >= train_images)
        throw Error(str("--val: expected fewer than the ", train_images, " training images, got ", val), 2);
}

/// The original's `Vec::split_off`: the last `n` images of `s` move to the
/// returned split, and `s` keeps the others, in their order.
inline Split split_off(Split& s, int n) {
    Split v;
    const int keep = s.n - n;
    v.n = n;
    v.y.assign(s.y.begin() + keep, s.y.end());
    s.y.resize(keep);
    if (!s.pixels.empty()) {
        v.pixels.assign(s.pixels.begin() + size_t(keep) * IMG_SIZE, s.pixels.end());
        s.pixels.resize(size_t(keep) * IMG_SIZE);
    }
    if (!s.x.empty()) {
        v.x.assign(s.x.begin() + size_t(keep) * IMG_SIZE, s.x.end());
        s.x.resize(size_t(keep) * IMG_SIZE);
    }
    s.n = keep;
    return v;
}

/// ### Learning-rate schedules
///
/// `--lr` gives $\eta_0$, the rate of the first step; `--schedule` how it
/// changes. With $e$ the epoch (from 0), $s$ the SGD step (from 0) and $S$
/// the number of steps in the whole run:
///
/// | `--schedule` | $\eta$ | |
/// |---|---|---|
/// | `constant` | $\eta_0$ | the originals |
/// | `cosine` | $\frac{\eta_0}{2}\left(1 + \cos\frac{\pi s}{S}\right)$ | half a cosine from $\eta_0$ down to 0, every step |
/// | `step` | $\eta_0\,\gamma^{\lfloor e/k \rfloor}$ | times $\gamma$ every $k$ epochs (`--lr-step k`, `--lr-gamma`) |
/// | `exponential` | $\eta_0\,\gamma^{e}$ | times $\gamma$ every epoch (`--lr-gamma`) |
///
/// The original's schedulers change the rate between epochs only. Our cosine
/// moves at every step, so the rate glides down within each epoch instead of
/// jumping between them (the attention chapter's default has always done
/// so); `step` and `exponential` change it between epochs, as the original
/// does. They decay when $\gamma < 1$; a growing rate would end in
/// divergence, so `--lr-gamma` accepts $(0, 1]$ ($\gamma = 1$ is the
/// constant rate), and `--lr-step` at least 1.
struct Schedule {
    std::string kind = "constant";  // constant, cosine, step, exponential
    int step = 1;                   // k: epochs between two decays of `step`
    float gamma = 0.5f;             // the decay factor of `step` and `exponential`
};

inline void check_schedule(const Schedule& s) {
    if (s.kind != "constant" && s.kind != "cosine" && s.kind != "step" && s.kind != "exponential")
        throw Error(str("--schedule: expected 'constant', 'cosine', 'step' or 'exponential', got '", s.kind, "'"), 2);
}

inline float lr_at(const Schedule& s, float lr, int epoch, long step, long steps) {
    if (s.kind == "cosine")
        return float(0.5 * double(lr) * (1.0 + std::cos(3.14159265358979323846 * double(step) / double(steps))));
    if (s.kind == "step") return float(double(lr) * std::pow(double(s.gamma), double(epoch / s.step)));
    if (s.kind == "exponential") return float(double(lr) * std::pow(double(s.gamma), double(epoch)));
    return lr;
}

/// ### Early stopping
///
/// With `--patience P` (it needs `--val`), an epoch *improves* when its
/// validation accuracy beats the best so far by more than `--min-delta`
/// (a fraction, like the accuracy: 0.001 is a tenth of a point, six images
/// of 6000). After P epochs in a row without improvement, training stops.
/// Either way, the parameters of the best epoch, kept aside when it ended,
/// are the ones tested and saved: the last epoch's are merely the latest.
/// (The original compares percentages with 0.001, less than one image of its
/// 6000, so any improvement counts; `--min-delta 0.0001` does the same here.)
struct EarlyStop {
    int patience = 0;         // 0: train every epoch, keep the last parameters
    float min_delta = 0.001f;
    double best = -1;         // best validation accuracy so far
    int best_epoch = 0;       // its epoch, from 1
    int waited = 0;           // epochs since it
};

inline void check_early_stop(const EarlyStop& e, int val) {
    if (e.patience > 0 && val == 0)
        throw Error("--patience: needs a validation set to watch (add --val N, e.g. --val 6000)", 2);
}

/// Records epoch `epoch`'s validation accuracy; true when it is the new best
/// (the caller then keeps a copy of the parameters). The first epoch always
/// is, so there is always a best epoch to keep.
inline bool improved(EarlyStop& e, int epoch, double val_accuracy) {
    if (e.best_epoch == 0 || val_accuracy > e.best + e.min_delta) {
        e.best = val_accuracy, e.best_epoch = epoch, e.waited = 0;
        return true;
    }
    ++e.waited;
    return false;
}

inline bool should_stop(const EarlyStop& e) { return e.patience > 0 && e.waited >= e.patience; }

/// The end of an epoch in every MNIST program: true when training ends here,
/// after saying why.
inline bool stop_now(const EarlyStop& e) {
    if (!should_stop(e)) return false;
    std::printf("Early stop: no validation gain in %d epochs\n", e.patience);
    return true;
}

/// After training with `--patience`: which epoch's parameters were kept.
/// `val` names the validation accuracy as the program's epoch lines do.
inline void say_best(const EarlyStop& e, const char* val) {
    std::printf("Best epoch: %d (%s%.2f%%), its parameters kept\n", e.best_epoch, val, 100 * e.best);
}

/// The flags of this section, the same in every MNIST program.
inline void add_validation_flags(std::vector<Flag>& flags, Schedule& s, int& val, EarlyStop& e) {
    flags.push_back({.name = "--schedule", .help = "learning rate: constant, cosine, step or exponential",
                     .text = &s.kind});
    flags.push_back({.name = "--lr-step", .help = "epochs between decays (--schedule step)", .integer = &s.step,
                     .lo = 1, .hi = 100000});
    flags.push_back({.name = "--lr-gamma", .help = "decay factor (--schedule step, exponential)", .number = &s.gamma,
                     .lo = 0, .hi = 1});
    flags.push_back({.name = "--val", .help = "hold out the last N training images for validation", .integer = &val,
                     .lo = 0, .hi = 60000});
    flags.push_back({.name = "--patience", .help = "stop after N epochs without validation gain (needs --val)",
                     .integer = &e.patience, .lo = 0, .hi = 100000});
    flags.push_back({.name = "--min-delta", .help = "smallest validation gain (a fraction) that counts",
                     .number = &e.min_delta, .lo = 0, .hi = 1});
}

/// ## Model files for the CNN and attention programs
///
/// (The MLP writes the original's own `mnist_model.bin` layout instead; its
/// chapter describes it.) A model file is a list of named float tensors behind
/// a header that says which model they belong to and what shape each has, so
/// that loading the wrong file, or a file saved with other sizes, is refused
/// with a clear line rather than read as garbage. Little-endian throughout:
///
/// | bytes | content |
/// |---|---|
/// | 8 | magic `NNCPPMDL` |
/// | 4 | format version, 1 |
/// | 16 | model name, NUL-padded (`cnn`, `attention`) |
/// | 4 | number of tensors $T$ |
/// | $T \times 36$ | per tensor: 16-byte name, 4 dims (unused dims are 1) as u32 |
/// | … | the tensors' floats, in the same order |
/// | 4 | CRC-32 (zlib's) of every byte before it |
///
/// The expected size is computed from the *program's* shapes, so a file of the
/// wrong length is refused before anything is allocated from its header.
struct Tensor {
    const char* name;
    std::vector<float>* data;
    uint32_t dims[4];
};

constexpr char MODEL_MAGIC[8] = {'N', 'N', 'C', 'P', 'P', 'M', 'D', 'L'};
constexpr size_t MODEL_HEADER = 8 + 4 + 16 + 4, MODEL_ENTRY = 16 + 16;

inline std::string shape_str(const uint32_t* d) {
    std::string s = std::to_string(d[0]);
    for (int i = 1; i < 4; ++i)
        if (d[i] != 1 || i == 1) s += "x" + std::to_string(d[i]);
    return s;
}

inline size_t tensor_count(const uint32_t* d) { return size_t(d[0]) * d[1] * d[2] * d[3]; }

inline void put32(std::vector<uint8_t>& out, uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
}

inline uint32_t get32(const uint8_t* p) {
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

inline std::vector<uint8_t> model_bytes(const std::string& model, const std::vector<Tensor>& ts) {
    std::vector<uint8_t> out(MODEL_MAGIC, MODEL_MAGIC + 8);
    put32(out, 1);
    char name[16] = {};
    std::strncpy(name, model.c_str(), 15);
    out.insert(out.end(), name, name + 16);
    put32(out, uint32_t(ts.size()));
    for (const Tensor& t : ts) {
        char tn[16] = {};
        std::strncpy(tn, t.name, 15);
        out.insert(out.end(), tn, tn + 16);
        for (uint32_t d : t.dims) put32(out, d);
    }
    for (const Tensor& t : ts) {
        const uint8_t* p = reinterpret_cast<const uint8_t*>(t.data->data());
        out.insert(out.end(), p, p + t.data->size() * sizeof(float));
    }
    put32(out, uint32_t(crc32(0L, out.data(), uInt(out.size()))));
    return out;
}

inline void save_model(const std::string& path, const std::string& model, const std::vector<Tensor>& ts) {
    std::vector<uint8_t> bytes = model_bytes(model, ts);
    write_file_atomic(path, bytes.data(), bytes.size());
}

/// Checks a model file's bytes against the program's tensors (names and
/// shapes) and copies the floats in: magic, version, model name, every
/// tensor's name and shape, the length and the checksum, each with its own
/// message. The expected length comes from the program's shapes, never from
/// the file's header.
inline void parse_model(const std::vector<uint8_t>& b, const std::string& path, const std::string& model,
                        const std::vector<Tensor>& ts) {
    if (b.size() < MODEL_HEADER || std::memcmp(b.data(), MODEL_MAGIC, 8) != 0)
        throw Error(str(path, ": not a model file of this project (magic NNCPPMDL expected)"));
    if (get32(&b[8]) != 1) throw Error(str(path, ": model format version ", get32(&b[8]), " (expected 1)"));
    std::string name(reinterpret_cast<const char*>(&b[12]), strnlen(reinterpret_cast<const char*>(&b[12]), 16));
    if (name != model) throw Error(str(path, ": holds a '", name, "' model (expected '", model, "')"));
    if (get32(&b[28]) != ts.size())
        throw Error(str(path, ": holds ", get32(&b[28]), " tensors (expected ", ts.size(), ")"));
    size_t want = MODEL_HEADER + ts.size() * MODEL_ENTRY + 4;
    for (const Tensor& t : ts) want += tensor_count(t.dims) * sizeof(float);
    if (b.size() < MODEL_HEADER + ts.size() * MODEL_ENTRY)
        throw Error(str(path, ": truncated model header"));
    for (size_t i = 0; i < ts.size(); ++i) {
        const uint8_t* e = &b[MODEL_HEADER + i * MODEL_ENTRY];
        std::string tn(reinterpret_cast<const char*>(e), strnlen(reinterpret_cast<const char*>(e), 16));
        uint32_t dims[4] = {get32(e + 16), get32(e + 20), get32(e + 24), get32(e + 28)};
        if (tn != ts[i].name || !std::equal(dims, dims + 4, ts[i].dims))
            throw Error(str(path, ": tensor ", i, " is ", tn, " ", shape_str(dims), " (expected ", ts[i].name, " ",
                            shape_str(ts[i].dims), ")"));
    }
    if (b.size() != want)
        throw Error(str(path, ": ", b.size(), " bytes (expected ", want, ": truncated or padded)"));
    if (crc32(0L, b.data(), uInt(b.size() - 4)) != get32(&b[b.size() - 4]))
        throw Error(str(path, ": checksum mismatch (the file is corrupt)"));
    size_t off = MODEL_HEADER + ts.size() * MODEL_ENTRY;
    for (const Tensor& t : ts) {
        t.data->resize(tensor_count(t.dims));
        std::memcpy(t.data->data(), &b[off], t.data->size() * sizeof(float));
        off += t.data->size() * sizeof(float);
    }
}

/// Loads a model file into the program's tensors. A file much larger than
/// the model it should hold (past 1 MiB more) is refused before it is read.
inline void load_model(const std::string& path, const std::string& model, const std::vector<Tensor>& ts) {
    size_t want = MODEL_HEADER + ts.size() * MODEL_ENTRY + 4;
    for (const Tensor& t : ts) want += tensor_count(t.dims) * sizeof(float);
    parse_model(read_file(path, want + (size_t(1) << 20)), path, model, ts);
}

/// ## Divergence
///
/// With too large a learning rate, weights grow until the scores are so far
/// apart that the right class gets probability exactly 0 (its loss
/// $-\log 0 = \infty$), or overflow to infinity and turn into NaN, which
/// poisons every number after it. The programs check the loss after every
/// batch and stop at the first non-finite one, naming where it happened,
/// rather than train on and print `nan` as an accuracy. Note that the loss to
/// check is the true one: the original clamps each probability at $10^{-9}$
/// before the logarithm, which keeps the *printed* loss finite (at most 20.7
/// per sample) even when the model has long diverged.
inline void check_loss(double loss, int epoch, long batch, float lr) {
    if (!std::isfinite(loss))
        throw Error(str("epoch ", epoch, ", batch ", batch, ": the loss is ", loss,
                        ": training diverged; try a smaller --lr (now ", lr, ")"));
}

/// ## Progress line
///
/// A long epoch shows where it is: batches done, mean loss so far, samples per
/// second and time left, redrawn in place on stderr a few times a second, but
/// only when stderr is a terminal, so that logs and pipes stay clean.
struct Progress {
    bool on = false;
    double start = 0, last = 0;
};

inline Progress progress_start() { return Progress{isatty(2) == 1, now_seconds(), 0}; }

inline void progress_update(Progress& p, int epoch, long done, long total, double loss_sum) {
    if (!p.on) return;
    double t = now_seconds();
    if (t - p.last < 0.2 && done < total) return;
    p.last = t;
    double rate = done / std::max(t - p.start, 1e-9);
    std::fprintf(stderr, "\r  epoch %d: %ld/%ld  loss %.4f  %.0f samples/s  ETA %.1fs   ", epoch, done, total,
                 loss_sum / std::max(done, 1L), rate, (total - done) / std::max(rate, 1e-9));
}

inline void progress_end(Progress& p) {
    if (p.on) std::fprintf(stderr, "\r%*s\r", 78, "");
}

/// ## The main wrapper
///
/// Each program's real work is a function `run(argc, argv)`; `main` calls it
/// through `guarded_main`, which turns an `nn::Error` (and running out of
/// memory) into one line on stderr and the right exit status.
inline int guarded_main(const char* prog, int (*run)(int, char**), int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const Error& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "%s: %s\n", prog, e.what());
        return e.code;
    } catch (const std::bad_alloc&) {
        std::fflush(stdout);
        std::fprintf(stderr, "%s: out of memory\n", prog);
        return 1;
    }
}

}  // namespace nn
