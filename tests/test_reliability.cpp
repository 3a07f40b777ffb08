// Reliability: files we write survive SIGKILL at any moment, a full disk and
// a read-only directory; a diverging run stops with one line; flags at their
// edges are refused. The programs run on small synthetic MNIST-shaped data
// that the test writes, so nothing here needs the real data set.
#define NN_TESTING
#include "../cnn.cpp"  // for its model's shapes (Cnn, tensors)

#include "helpers.hpp"

#include <csignal>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

extern char** environ;

namespace {

// A directory holding n random training images and n/5 test images as IDX
// files: digit-like enough for the programs, small enough for quick epochs.
std::string synthetic_mnist(const std::string& name, uint32_t n) {
    std::string dir = th::path(name);
    if (nn::file_exists(dir)) return dir;
    REQUIRE(mkdir(dir.c_str(), 0755) == 0);
    nn::Rng r = nn::rng_new(n);
    auto write = [&](const std::string& prefix, uint32_t count) {
        std::vector<uint8_t> img, lab;
        th::put_be32(img, 0x803);
        th::put_be32(img, count);
        th::put_be32(img, 28);
        th::put_be32(img, 28);
        th::put_be32(lab, 0x801);
        th::put_be32(lab, count);
        for (uint32_t i = 0; i < count; ++i) {
            const uint8_t y = uint8_t(nn::next_u32(r) % 10);
            lab.push_back(y);
            for (int p = 0; p < 784; ++p)  // a bright band whose row depends on the label
                img.push_back(p / 28 >= 2 * y + 4 && p / 28 < 2 * y + 8 ? uint8_t(200 + nn::next_u32(r) % 56) : 0);
        }
        th::write_bytes(dir + "/" + prefix + "-images-idx3-ubyte", img);
        th::write_bytes(dir + "/" + prefix + "-labels-idx1-ubyte", lab);
    };
    write("train", n);
    write("t10k", n / 5);
    return dir;
}

// True when every line of a training log is a whole "epoch,loss,time" row and
// the epochs count up from 1.
bool log_is_whole(const std::string& text) {
    if (text.empty() || text.back() != '\n') return false;
    std::istringstream in(text);
    int expect = 1;
    for (std::string line; std::getline(in, line); ++expect) {
        size_t a = line.find(','), b = line.rfind(',');
        if (a == std::string::npos || a == b) return false;
        if (std::stoi(line.substr(0, a)) != expect) return false;
        for (size_t i = a + 1; i < line.size(); ++i)
            if (i != b && !std::isdigit(static_cast<unsigned char>(line[i])) && line[i] != '.') return false;
    }
    return true;
}

pid_t spawn(const std::string& cmd) {
    pid_t pid;
    const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
    REQUIRE(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ) == 0);
    return pid;
}

// A tiny tmpfs at `dir` (root only); false when this machine does not allow it.
bool mount_tmpfs(const std::string& dir, const char* opts) {
    mkdir(dir.c_str(), 0755);
    return mount("tmpfs", dir.c_str(), "tmpfs", 0, opts) == 0;
}

}  // namespace

TEST_CASE("reliability: SIGKILL at 25 random moments never leaves a torn model or log") {
    std::string data = synthetic_mnist("synth-kill", 1000);
    std::string model = th::path("kill.model"), log = th::path("kill-log.txt");
    // One epoch takes a few milliseconds, and every epoch rewrites both files,
    // so the kills land before, during and between writes.
    std::string cmd = "exec ./cnn --data " + data + " --epochs 100000 --threads 1 --save " + model + " --log " + log +
                      " >/dev/null 2>&1";
    // First learn how long this build (a sanitizer build is much slower)
    // takes to write its first model, then kill at random moments from half
    // that time to three times it: before, during and after writes.
    const double t0 = nn::now_seconds();
    pid_t first = spawn(cmd);
    while (!nn::file_exists(model) && nn::now_seconds() - t0 < 60) usleep(1000);
    const double t_first = nn::now_seconds() - t0;
    kill(first, SIGKILL);
    waitpid(first, nullptr, 0);
    REQUIRE(nn::file_exists(model));
    nn::Rng r = nn::rng_new(2024);
    int with_model = 0;
    for (int round = 0; round < 25; ++round) {
        pid_t pid = spawn(cmd);
        usleep(useconds_t(1e6 * t_first * (0.5 + 2.5 * nn::next_f64(r))));
        REQUIRE(kill(pid, SIGKILL) == 0);
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status));
        if (nn::file_exists(model)) {
            Cnn m;
            CHECK_NOTHROW(nn::load_model(model, "cnn", tensors(m)));
            ++with_model;
        }
        if (nn::file_exists(log)) CHECK(log_is_whole(th::read_text(log)));
    }
    CHECK(with_model == 25);  // the first run's model is there from the start
}

TEST_CASE("reliability: a full disk or a read-only directory: one line, exit 1, old file intact") {
    std::string data = synthetic_mnist("synth-small", 300);
    // /dev/full is a device: never replaced by a rename, refused up front
    th::Run dev = th::run("./cnn --data " + data + " --epochs 1 --log none --save /dev/full");
    CHECK(dev.code == 1);
    CHECK(dev.err == "cnn: /dev/full: not a regular file; refusing to replace it\n");
    struct stat st;
    REQUIRE(stat("/dev/full", &st) == 0);
    CHECK(S_ISCHR(st.st_mode));

    std::string full = th::path("tiny-fs"), ro = th::path("ro-fs");
    if (!mount_tmpfs(full, "size=96k")) {
        MESSAGE("SKIP: cannot mount a tmpfs here (needs root); full-disk and read-only cases not run");
        return;
    }
    Cnn old;
    old.fc_b[3] = 42.0f;
    nn::save_model(full + "/model.bin", "cnn", tensors(old));  // 63 KB of 96 KB: no room for a second copy
    std::string before = th::read_text(full + "/model.bin");
    th::Run r = th::run("./cnn --data " + data + " --epochs 1 --log none --save " + full + "/model.bin");
    CHECK(r.code == 1);
    CHECK(r.err == "cnn: " + full + "/model.bin: cannot write (No space left on device)\n");
    CHECK(th::read_text(full + "/model.bin") == before);
    CHECK(!nn::file_exists(full + "/model.bin.tmp." + std::to_string(getpid())));
    {  // now fill the disk to the last byte: even a 30-byte log cannot be written
        std::FILE* f = std::fopen((full + "/filler").c_str(), "wb");
        REQUIRE(f);
        std::vector<char> block(4096, 'x');
        while (std::fwrite(block.data(), 1, block.size(), f) == block.size()) {}
        while (std::fputc('x', f) != EOF && std::fflush(f) == 0) {}
        std::fclose(f);
    }
    nn::write_file_atomic(th::path("keep-log.txt"), "1,0.5,0.1\n", 10);
    th::Run lg = th::run("./cnn --data " + data + " --epochs 1 --log " + full + "/log.txt");
    CHECK(lg.code == 1);
    CHECK(lg.err == "cnn: " + full + "/log.txt: cannot write (No space left on device)\n");
    CHECK(!nn::file_exists(full + "/log.txt"));
    umount(full.c_str());

    REQUIRE(mount_tmpfs(ro, "size=64k,ro"));
    th::Run w = th::run("./cnn --data " + data + " --epochs 1 --log none --save " + ro + "/model.bin");
    CHECK(w.code == 1);
    CHECK(w.err == "cnn: " + ro + "/model.bin: cannot write (Read-only file system)\n");
    umount(ro.c_str());
}

TEST_CASE("reliability: a diverging run stops with one line naming epoch and batch") {
    std::string data = synthetic_mnist("synth-small", 300);
    th::Run r = th::run("./cnn --data " + data + " --epochs 3 --lr 1e6 --log none");
    CHECK(r.code == 1);
    CHECK(th::count_lines(r.err) == 1);
    CHECK(r.err.rfind("cnn: epoch 1, batch ", 0) == 0);
    CHECK(r.err.find("training diverged; try a smaller --lr (now 1e+06)") != std::string::npos);
    CHECK(r.out.find("nan") == std::string::npos);
    CHECK(r.out.find("Test Accuracy") == std::string::npos);
}

TEST_CASE("reliability: flags at their edges are refused with exit 2") {
    const char* programs[] = {"./xor", "./cnn"};
    struct Edge {
        const char* args;
        const char* expect;
    };
    const Edge cnn_edges[] = {
        {"--threads 0", "--threads: expected an integer in 1..1024, got '0'"},
        {"--threads 100000", "--threads: expected an integer in 1..1024, got '100000'"},
        {"--batch -5", "--batch: expected an integer in 1..60000, got '-5'"},
        {"--batch 99999999999", "--batch: expected an integer in 1..60000, got '99999999999'"},
        {"--epochs 0", "--epochs: expected an integer in 1..100000, got '0'"},
        {"--epochs 1e3", "--epochs: expected an integer in 1..100000, got '1e3'"},
        {"--lr abc", "--lr: expected a number > 0 and <= 1e+06, got 'abc'"},
        {"--lr 1e7", "--lr: expected a number > 0 and <= 1e+06, got '1e7'"},
        {"--data ''", "--data: expected a non-empty value, got ''"},
        {"--save", "--save: missing value"},
        {"--seed 1.5", "--seed: expected a non-negative integer or 'time', got '1.5'"},
        {"--steps -2", "--steps: expected an integer in -1..1000000000, got '-2'"},
    };
    for (const Edge& e : cnn_edges) {
        CAPTURE(e.args);
        th::Run r = th::run(std::string(programs[1]) + " " + e.args);
        CHECK(r.code == 2);
        CHECK(th::count_lines(r.err) == 1);
        CHECK(r.err.rfind(std::string("cnn: ") + e.expect, 0) == 0);
    }
    th::Run x = th::run(std::string(programs[0]) + " --epochs -1");
    CHECK(x.code == 2);
    CHECK(x.err == "xor: --epochs: expected an integer in 0..1000000000, got '-1'\n");
}

TEST_CASE("reliability: an absurd header is refused before anything large is allocated") {
    // An IDX header claiming 2^31 images in a 100-byte file: refused from the
    // file's real size, not trusted. A model file padded far past its size:
    // refused before it is read.
    std::vector<uint8_t> b;
    th::put_be32(b, 0x803);
    th::put_be32(b, 0x80000000u);
    th::put_be32(b, 28);
    th::put_be32(b, 28);
    b.resize(100);
    std::string p = th::path("absurd-idx");
    th::write_bytes(p, b);
    CHECK_THROWS_WITH_AS(nn::parse_idx_pixels(nn::read_file(p), p), th::has(p + ": truncated: header promises 2147483648 images"),
                         nn::Error);
    std::string big = th::path("huge.model");
    {
        std::FILE* f = std::fopen(big.c_str(), "wb");
        REQUIRE(f);
        std::fseek(f, 300L << 20, SEEK_SET);  // a sparse 300 MiB file
        std::fputc(0, f);
        std::fclose(f);
    }
    Cnn m;
    CHECK_THROWS_WITH_AS(nn::load_model(big, "cnn", tensors(m)), th::has(big + ": 314572801 bytes, more than the"),
                         nn::Error);
    CHECK_THROWS_WITH_AS(nn::read_file(big), th::has("refused before reading"), nn::Error);
}
