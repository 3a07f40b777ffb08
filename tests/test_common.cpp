// Tests of common.hpp: the RNG against the original's definition, the IDX
// reader on good and bad files (plain and gzip'd) that the tests write, MNIST
// discovery, flags, the CSV log and the model file format.
#include "helpers.hpp"

#include <bit>
#include <cstring>
#include <sys/stat.h>

using doctest::Contains;
using th::has;
using nn::Error;

// ---------------------------------------------------------------------------
// RNG. Reference values were computed independently from the original's
// definition (SimpleRng in mnist_cnn.rs) by a 20-line Rust program compiled
// with rustc 1.95: new(seed) with the seed-0 rule, five next_u32(), next_f32()
// bit patterns, gen_range_f32(-l, l) with l = sqrt(6/81) for seed 7, and
// Fisher-Yates over 0..10 for seed 3.
// ---------------------------------------------------------------------------
TEST_CASE("rng: u32 stream equals the original's for seeds 0, 1, 42") {
    const uint32_t want[3][5] = {{3692787630u, 1693511353u, 2064109201u, 811533580u, 753604320u},
                                 {0u, 268452102u, 2602468399u, 4115985667u, 2248941488u},
                                 {10u, 2685053693u, 2333292956u, 674990334u, 1318150115u}};
    const uint64_t seeds[3] = {0, 1, 42};
    for (int s = 0; s < 3; ++s) {
        nn::Rng r = nn::rng_new(seeds[s]);
        for (int i = 0; i < 5; ++i) CHECK(nn::next_u32(r) == want[s][i]);
    }
}

TEST_CASE("rng: float derivations match the original bit for bit") {
    nn::Rng r = nn::rng_new(1);
    const uint32_t f32_bits[4] = {0u, 1031799304u, 1058741892u, 1064654069u};
    for (uint32_t b : f32_bits) CHECK(std::bit_cast<uint32_t>(nn::next_f32(r)) == b);

    nn::Rng d = nn::rng_new(42);
    const uint64_t f64_bits[4] = {4477703929514426368ull, 4603806185268969813ull, 4603068489535677031ull,
                                  4594830249607568836ull};
    for (uint64_t b : f64_bits) CHECK(std::bit_cast<uint64_t>(nn::next_f64(d)) == b);

    float lim = std::sqrt(6.0f / (9.0f + 72.0f));
    CHECK(std::bit_cast<uint32_t>(lim) == 1049319752u);
    nn::Rng u = nn::rng_new(7);
    const uint32_t range_bits[4] = {3196803400u, 3171633612u, 1041122958u, 3162355520u};
    for (uint32_t b : range_bits) CHECK(std::bit_cast<uint32_t>(nn::uniform_f32(u, -lim, lim)) == b);
}

TEST_CASE("rng: Fisher-Yates shuffle order equals the original's") {
    nn::Rng r = nn::rng_new(3);
    std::vector<int> v = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    nn::shuffle(r, v);
    CHECK(v == std::vector<int>{3, 2, 7, 9, 8, 4, 6, 5, 1, 0});
}

// ---------------------------------------------------------------------------
// IDX reader
// ---------------------------------------------------------------------------
static std::vector<float> read_images(const std::string& p) {
    return nn::parse_idx_images(nn::read_maybe_gzip(p), p);
}
static std::vector<uint8_t> read_labels(const std::string& p) {
    return nn::parse_idx_labels(nn::read_maybe_gzip(p), p);
}

TEST_CASE("idx: good image and label files, plain and gzip'd, read back exactly") {
    for (bool gz : {false, true}) {
        CAPTURE(gz);
        auto img = th::idx_images(3), lab = th::idx_labels(13);
        std::string ip = th::path(gz ? "good-img.gz" : "good-img"), lp = th::path(gz ? "good-lab.gz" : "good-lab");
        th::write_bytes(ip, gz ? th::gzip(img) : img);
        th::write_bytes(lp, gz ? th::gzip(lab) : lab);
        std::vector<float> x = read_images(ip);
        REQUIRE(x.size() == 3 * 784);
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 784; ++j) REQUIRE(x[i * 784 + j] == float((i + j) % 256) / 255.0f);
        std::vector<uint8_t> y = read_labels(lp);
        REQUIRE(y.size() == 13);
        for (int i = 0; i < 13; ++i) CHECK(y[i] == i % 10);
    }
}

TEST_CASE("idx: every damaged file gets its own one-line error naming the file") {
    struct Case {
        const char* name;
        std::vector<uint8_t> bytes;
        bool images;
        const char* expect;
    };
    auto img = th::idx_images(2);
    auto lab = th::idx_labels(20);
    auto bad_label = lab;
    bad_label[8 + 17] = 11;
    auto big_count = img;
    big_count[4] = 0x80;  // header claims 2^31 + 2 images
    std::vector<Case> cases = {
        {"empty", {}, true, "truncated header (16 bytes expected, file has 0)"},
        {"short-header", std::vector<uint8_t>(img.begin(), img.begin() + 7), true, "truncated header"},
        {"short-body", std::vector<uint8_t>(img.begin(), img.end() - 1), true, "truncated: header promises 2 images"},
        {"long-body", [&] { auto b = img; b.push_back(0); return b; }(), true, "1 unexpected bytes after 2 images"},
        {"labels-as-images", lab, true, "wrong magic number 0x00000801 (expected 0x00000803"},
        {"images-as-labels", img, false, "wrong magic number 0x00000803 (expected 0x00000801"},
        {"dims-27x28", th::idx_images(1, 27, 28), true, "images are 27x28 (expected 28x28)"},
        {"label-11", bad_label, false, "label 11 at item 17 (expected 0..9)"},
        {"label-short", std::vector<uint8_t>(lab.begin(), lab.end() - 3), false, "truncated: header promises 20 labels"},
        {"huge-count", big_count, true, "truncated: header promises 2147483650 images"},
    };
    for (const Case& c : cases)
        for (bool gz : {false, true}) {
            std::string p = th::path(std::string("bad-") + c.name + (gz ? ".gz" : ""));
            CAPTURE(p);
            th::write_bytes(p, gz ? th::gzip(c.bytes) : c.bytes);
            if (c.images)
                CHECK_THROWS_WITH_AS(read_images(p), has(p + ": " + c.expect), Error);
            else
                CHECK_THROWS_WITH_AS(read_labels(p), has(p + ": " + c.expect), Error);
        }
}

TEST_CASE("idx: missing file, corrupt and truncated gzip streams") {
    std::string missing = th::path("no-such-file");
    CHECK_THROWS_WITH_AS(read_images(missing), has(missing + ": cannot open (No such file"), Error);

    auto gz = th::gzip(th::idx_images(4));
    std::string t = th::path("trunc.gz");
    th::write_bytes(t, std::vector<uint8_t>(gz.begin(), gz.begin() + gz.size() / 2));
    CHECK_THROWS_WITH_AS(read_images(t), has(t + ": truncated gzip stream"), Error);

    auto bad = gz;
    for (size_t i = 20; i < 40 && i < bad.size(); ++i) bad[i] ^= 0x5a;
    std::string c = th::path("corrupt.gz");
    th::write_bytes(c, bad);
    CHECK_THROWS_WITH_AS(read_images(c), has(c + ": corrupt gzip stream"), Error);

    auto crc = gz;
    crc[crc.size() - 6] ^= 1;  // the CRC-32 in the gzip trailer
    std::string k = th::path("crc.gz");
    th::write_bytes(k, crc);
    CHECK_THROWS_WITH_AS(read_images(k), has(k + ": corrupt gzip stream (incorrect data check)"), Error);

    auto trail = gz;
    trail.push_back(0);
    std::string tr = th::path("trail.gz");
    th::write_bytes(tr, trail);
    CHECK_THROWS_WITH_AS(read_images(tr), has(tr + ": 1 unexpected bytes after the gzip stream"), Error);
}

TEST_CASE("idx: a gzip stream that unpacks past the cap is refused") {
    std::vector<uint8_t> zeros(1 << 20);
    auto gz = th::gzip(zeros);
    CHECK(gz.size() < 5000);
    CHECK_THROWS_WITH_AS(nn::gunzip(gz, "bomb.gz", 1 << 16), Contains("bomb.gz: gzip stream unpacks to more than"),
                         Error);
    CHECK(nn::gunzip(gz, "ok.gz", 1 << 21).size() == zeros.size());
}

TEST_CASE("resize_mapped: grows like resize, keeping what was there and adding zeros") {
    // Sizes around a page and around a huge page, from empty and from a
    // partly filled vector whose end is not page-aligned: the pages asked for
    // must lie inside the new part, and the contents must be resize's.
    for (size_t first : {size_t(0), size_t(1), size_t(1000), size_t(4097)})
        for (size_t n : {size_t(4096), size_t(5000), size_t(1) << 21, (size_t(3) << 20) + 123}) {
            std::vector<float> v(first);
            for (size_t i = 0; i < first; ++i) v[i] = float(i) + 0.5f;
            nn::resize_mapped(v, first + n);
            REQUIRE(v.size() == first + n);
            bool kept = true, zeros = true;
            for (size_t i = 0; i < first; ++i) kept = kept && v[i] == float(i) + 0.5f;
            for (size_t i = first; i < first + n; ++i) zeros = zeros && v[i] == 0.0f;
            CHECK_MESSAGE(kept, "first ", first, ", n ", n);
            CHECK_MESSAGE(zeros, "first ", first, ", n ", n);
            v[first + n - 1] = 7.0f;  // the last element is writable
            CHECK(v.back() == 7.0f);
        }
    std::vector<uint8_t> b;
    nn::resize_mapped(b, 0);
    CHECK(b.empty());
}

TEST_CASE("mnist: both naming conventions, counts must agree, directory must exist") {
    std::string d = th::path("mnist-a");
    REQUIRE(mkdir(d.c_str(), 0755) == 0);
    th::write_bytes(d + "/train-images-idx3-ubyte.gz", th::gzip(th::idx_images(5)));
    th::write_bytes(d + "/train-labels.idx1-ubyte", th::idx_labels(5));
    th::write_bytes(d + "/t10k-images.idx3-ubyte.gz", th::gzip(th::idx_images(3)));
    th::write_bytes(d + "/t10k-labels-idx1-ubyte", th::idx_labels(4));
    nn::Split train, test;
    CHECK_THROWS_WITH_AS(nn::load_mnist(d, train, test),
                         has("t10k-images.idx3-ubyte.gz: 3 images but " + d + "/t10k-labels-idx1-ubyte has 4 labels"),
                         Error);
    th::write_bytes(d + "/t10k-labels-idx1-ubyte", th::idx_labels(3));
    nn::load_mnist(d, train, test);
    CHECK(train.n == 5);
    CHECK(test.n == 3);
    CHECK(test.y[2] == 2);
    CHECK(train.x[4 * 784 + 10] == 14.0f / 255.0f);

    CHECK_THROWS_WITH_AS(nn::load_mnist(th::path("nope"), train, test), Contains("nope: no such data directory"), Error);
    std::string e = th::path("mnist-empty");
    REQUIRE(mkdir(e.c_str(), 0755) == 0);
    CHECK_THROWS_WITH_AS(nn::load_mnist(e, train, test), Contains("no train-images file (looked for"), Error);
}

TEST_CASE("mnist: the real files load with the published counts") {
    if (!th::need_mnist()) return;
    nn::Split train, test;
    nn::load_mnist(th::mnist_dir(), train, test);
    CHECK(train.n == 60000);
    CHECK(test.n == 10000);
    CHECK(train.y[0] == 5);  // the famous first training digit
    CHECK(test.y[0] == 7);
    int hist[10] = {};
    for (uint8_t y : train.y) hist[y]++;
    CHECK(hist[1] == 6742);  // the published class counts of the training set
    CHECK(hist[5] == 5421);
}

// ---------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------
struct FlagFixture {
    int epochs = 3;
    float lr = 0.01f;
    std::string data;
    bool eval = false;
    uint64_t seed = 1;
    std::vector<nn::Flag> flags = {
        {.name = "--epochs", .help = "epochs", .integer = &epochs, .lo = 1, .hi = 1000},
        {.name = "--lr", .help = "learning rate", .number = &lr, .lo = 0, .hi = 100},
        {.name = "--data", .help = "data dir", .text = &data},
        {.name = "--eval", .help = "evaluate only", .on = &eval},
        {.name = "--seed", .help = "seed", .seed = &seed},
    };
    bool parse(std::vector<std::string> args) {
        std::vector<char*> argv = {const_cast<char*>("prog")};
        for (auto& a : args) argv.push_back(a.data());
        return nn::parse_flags(int(argv.size()), argv.data(), "prog", "about", flags);
    }
};

TEST_CASE("flags: values in both forms, switches and seeds") {
    FlagFixture f;
    CHECK(f.parse({"--epochs", "7", "--lr=0.5", "--data", "d", "--eval", "--seed", "18446744073709551615"}));
    CHECK(f.epochs == 7);
    CHECK(f.lr == 0.5f);
    CHECK(f.data == "d");
    CHECK(f.eval);
    CHECK(f.seed == 18446744073709551615ull);
    FlagFixture g;
    CHECK(g.parse({"--seed", "time"}));
    CHECK(g.seed > 1000000000000000000ull);  // nanoseconds since 1970
}

TEST_CASE("flags: every bad command line is one line with exit code 2") {
    struct Bad {
        std::vector<std::string> args;
        const char* expect;
    };
    std::vector<Bad> bad = {
        {{"--epochs", "abc"}, "--epochs: expected an integer in 1..1000, got 'abc'"},
        {{"--epochs", "0"}, "--epochs: expected an integer in 1..1000, got '0'"},
        {{"--epochs", "-3"}, "--epochs: expected an integer in 1..1000, got '-3'"},
        {{"--epochs", "1001"}, "--epochs: expected an integer in 1..1000, got '1001'"},
        {{"--epochs", "99999999999999999999"}, "--epochs: expected an integer in 1..1000"},
        {{"--epochs", "2x"}, "--epochs: expected an integer in 1..1000, got '2x'"},
        {{"--epochs="}, "--epochs: expected an integer in 1..1000, got ''"},
        {{"--lr", "fast"}, "--lr: expected a number > 0 and <= 100, got 'fast'"},
        {{"--lr", "0"}, "--lr: expected a number > 0 and <= 100, got '0'"},
        {{"--lr", "nan"}, "--lr: expected a number > 0 and <= 100, got 'nan'"},
        {{"--lr", "inf"}, "--lr: expected a number > 0 and <= 100, got 'inf'"},
        {{"--lr=9e-99"}, "--lr: expected a number > 0 and <= 100, got '9e-99'"},  // 0 as a float (found by fuzz_flags)
        {{"--data", ""}, "--data: expected a non-empty value, got ''"},
        {{"--seed", "-1"}, "--seed: expected a non-negative integer or 'time', got '-1'"},
        {{"--eval=yes"}, "--eval: takes no value, got 'yes'"},
        {{"--epochs"}, "--epochs: missing value (expected an integer in 1..1000)"},
        {{"--epoch", "3"}, "unknown flag '--epoch' (accepted: --epochs --lr --data --eval --seed --help)"},
        {{"extra"}, "unknown flag 'extra'"},
    };
    for (const Bad& b : bad) {
        FlagFixture f;
        CAPTURE(b.expect);
        try {
            f.parse(b.args);
            FAIL("accepted a bad command line");
        } catch (const Error& e) {
            CHECK(std::string(e.what()) == std::string(e.what()).substr(0, std::string(e.what()).find('\n')));
            CHECK(std::string(e.what()).find(b.expect) == 0);
            CHECK(e.code == 2);
        }
    }
}

// ---------------------------------------------------------------------------
// Log and files
// ---------------------------------------------------------------------------
TEST_CASE("log: rows as the original writes them, whole file after every epoch") {
    nn::CsvLog log{th::path("logs-a/training_loss_test.txt"), ""};
    nn::log_epoch(log, 1, 0.2345678f, 3.5f);
    CHECK(th::read_text(log.path) == "1,0.2345678,3.5\n");
    nn::log_epoch(log, 2, 0.1f, 0.0000001f);
    CHECK(th::read_text(log.path) == "1,0.2345678,3.5\n2,0.1,0.0000001\n");
    CHECK(nn::shortest(1.0f / 3.0f) == "0.33333334");  // what Rust's {} prints for 1f32/3f32
    CHECK(!nn::file_exists(log.path + ".tmp." + std::to_string(getpid())));
    nn::CsvLog none{"", ""};
    nn::log_epoch(none, 1, 1.0f, 1.0f);
    CHECK(none.text.empty());
}

TEST_CASE("log: with a validation set, the newest original's epoch,loss,val_accuracy,time") {
    nn::CsvLog log{th::path("logs-v/val.txt"), ""};
    nn::log_epoch(log, 1, 0.25f, 3.5f, 5871.0 / 6000);
    nn::log_epoch(log, 2, 0.125f, 2.0f, 1.0);
    CHECK(th::read_text(log.path) == "1,0.25,0.9785,3.5\n2,0.125,1.0000,2\n");
    nn::log_epoch(log, 3, 0.1f, 1.0f, -1);  // no validation: the three columns
    CHECK(th::read_text(log.path).find("\n3,0.1,1\n") != std::string::npos);
}

// ---------------------------------------------------------------------------
// Validation split, learning-rate schedules, early stopping
// ---------------------------------------------------------------------------
TEST_CASE("validation: split_off moves the last n images, in order, and keeps the rest") {
    nn::Split s;
    s.n = 5;
    for (int i = 0; i < 5; ++i) {
        s.y.push_back(uint8_t(i));
        for (int j = 0; j < nn::IMG_SIZE; ++j) s.pixels.push_back(uint8_t(10 * i + j % 7));
        for (int j = 0; j < nn::IMG_SIZE; ++j) s.x.push_back(float(i) + float(j) / 1000);
    }
    const nn::Split v = nn::split_off(s, 2);
    CHECK(s.n == 3);
    CHECK(v.n == 2);
    CHECK(s.y == std::vector<uint8_t>{0, 1, 2});
    CHECK(v.y == std::vector<uint8_t>{3, 4});
    REQUIRE(s.pixels.size() == size_t(3 * nn::IMG_SIZE));
    REQUIRE(v.pixels.size() == size_t(2 * nn::IMG_SIZE));
    REQUIRE(v.x.size() == size_t(2 * nn::IMG_SIZE));
    CHECK(s.x.size() == size_t(3 * nn::IMG_SIZE));
    CHECK(v.pixels[5] == 30 + 5);  // image 3, pixel 5
    CHECK(v.pixels[nn::IMG_SIZE + 8] == 40 + 1);  // image 4, pixel 8
    CHECK(v.x[nn::IMG_SIZE + 2] == 4.002f);
    CHECK(s.pixels.back() == 20 + (nn::IMG_SIZE - 1) % 7);
    const nn::Split none = nn::split_off(s, 0);  // --val 0: nothing moves
    CHECK(none.n == 0);
    CHECK(s.n == 3);
    CHECK(s.pixels.size() == size_t(3 * nn::IMG_SIZE));
}

TEST_CASE("schedules: each formula at a few epochs and steps, computed by hand") {
    using nn::lr_at;
    const float lr = 0.1f;
    // constant: the rate itself, whatever the epoch or step, bit for bit
    const nn::Schedule constant;
    CHECK(lr_at(constant, lr, 0, 0, 100) == lr);
    CHECK(lr_at(constant, lr, 7, 99, 100) == lr);
    // cosine over S = 8 steps: (lr/2)(1 + cos(pi s/8)) = lr, lr(2+sqrt 2)/4, lr/2, lr(2-sqrt 2)/4 at s = 0, 2, 4, 6
    const nn::Schedule cosine{.kind = "cosine"};
    CHECK(lr_at(cosine, lr, 0, 0, 8) == lr);
    CHECK(lr_at(cosine, lr, 0, 2, 8) == doctest::Approx(0.1 * (2 + std::sqrt(2.0)) / 4).epsilon(1e-6));
    CHECK(lr_at(cosine, lr, 1, 4, 8) == doctest::Approx(0.05).epsilon(1e-6));
    CHECK(lr_at(cosine, lr, 1, 6, 8) == doctest::Approx(0.1 * (2 - std::sqrt(2.0)) / 4).epsilon(1e-6));
    CHECK(std::fabs(lr_at(cosine, lr, 1, 8, 8)) < 1e-9f);
    // step, k = 2, gamma = 0.5: 0.1 for epochs 0 and 1, 0.05 for 2 and 3, 0.025 for 4
    const nn::Schedule step{.kind = "step", .step = 2, .gamma = 0.5f};
    for (int e : {0, 1}) CHECK(lr_at(step, lr, e, 0, 1) == lr);
    for (int e : {2, 3}) CHECK(lr_at(step, lr, e, 0, 1) == doctest::Approx(0.05).epsilon(1e-6));
    CHECK(lr_at(step, lr, 4, 0, 1) == doctest::Approx(0.025).epsilon(1e-6));
    // exponential, gamma = 0.8: 0.1, 0.08, 0.064, 0.0512 for epochs 0..3, constant within an epoch
    const nn::Schedule expo{.kind = "exponential", .gamma = 0.8f};
    CHECK(lr_at(expo, lr, 0, 5, 100) == lr);
    CHECK(lr_at(expo, lr, 1, 10, 100) == doctest::Approx(0.08).epsilon(1e-6));
    CHECK(lr_at(expo, lr, 1, 19, 100) == doctest::Approx(0.08).epsilon(1e-6));
    CHECK(lr_at(expo, lr, 2, 20, 100) == doctest::Approx(0.064).epsilon(1e-6));
    CHECK(lr_at(expo, lr, 3, 30, 100) == doctest::Approx(0.0512).epsilon(1e-6));
    // gamma = 1 makes step and exponential the constant rate, bit for bit
    CHECK(lr_at(nn::Schedule{.kind = "step", .gamma = 1}, lr, 9, 0, 1) == lr);
    CHECK(lr_at(nn::Schedule{.kind = "exponential", .gamma = 1}, lr, 9, 0, 1) == lr);
}

TEST_CASE("early stopping: improvement beyond min-delta, patience counted from the best epoch") {
    nn::EarlyStop e{.patience = 2, .min_delta = 0.001f};
    CHECK(nn::improved(e, 1, 0.90));   // the first epoch is always the best so far
    CHECK(nn::improved(e, 2, 0.95));
    CHECK(!nn::improved(e, 3, 0.9505));  // better, but by less than min-delta
    CHECK(!nn::should_stop(e));
    CHECK(!nn::improved(e, 4, 0.94));
    CHECK(nn::should_stop(e));  // two epochs without a gain
    CHECK(e.best_epoch == 2);
    CHECK(e.best == 0.95);
    nn::EarlyStop again{.patience = 2, .min_delta = 0.001f};
    nn::improved(again, 1, 0.90);
    CHECK(!nn::improved(again, 2, 0.85));
    CHECK(nn::improved(again, 3, 0.92));  // a gain resets the count
    CHECK(!nn::improved(again, 4, 0.92));
    CHECK(!nn::should_stop(again));
    nn::EarlyStop strict{.patience = 1, .min_delta = 1};  // even an accuracy of 0 makes a first best epoch
    CHECK(nn::improved(strict, 1, 0.0));
    CHECK(strict.best_epoch == 1);
    CHECK(!nn::improved(strict, 2, 1.0));
    nn::EarlyStop off;  // patience 0: never stops
    for (int i = 1; i <= 5; ++i) nn::improved(off, i, 0.5);
    CHECK(!nn::should_stop(off));
}

TEST_CASE("validation flags: bad values and bad combinations are one line with exit code 2") {
    auto code_of = [](auto f) {
        try {
            f();
        } catch (const Error& e) {
            CHECK(std::string(e.what()).find('\n') == std::string::npos);
            return e.code;
        }
        return 0;
    };
    CHECK_THROWS_WITH_AS(nn::check_val(60000, 60000), "--val: expected fewer than the 60000 training images, got 60000",
                         Error);
    CHECK(code_of([] { nn::check_val(60000, 60000); }) == 2);
    CHECK(code_of([] { nn::check_val(59999, 60000); }) == 0);
    CHECK_THROWS_WITH_AS(nn::check_early_stop(nn::EarlyStop{.patience = 3}, 0),
                         Contains("--patience: needs a validation set"), Error);
    CHECK(code_of([] { nn::check_early_stop(nn::EarlyStop{.patience = 3}, 0); }) == 2);
    CHECK(code_of([] { nn::check_early_stop(nn::EarlyStop{.patience = 3}, 6000); }) == 0);
    CHECK(code_of([] { nn::check_early_stop(nn::EarlyStop{}, 0); }) == 0);
    CHECK_THROWS_WITH_AS(nn::check_schedule(nn::Schedule{.kind = "linear"}),
                         "--schedule: expected 'constant', 'cosine', 'step' or 'exponential', got 'linear'", Error);
    CHECK(code_of([] { nn::check_schedule(nn::Schedule{.kind = "linear"}); }) == 2);
    for (const char* k : {"constant", "cosine", "step", "exponential"})
        CHECK(code_of([k] { nn::check_schedule(nn::Schedule{.kind = k}); }) == 0);
    // the ranges of the flags themselves
    nn::Schedule s;
    nn::EarlyStop e;
    int val = 0;
    std::vector<nn::Flag> flags;
    nn::add_validation_flags(flags, s, val, e);
    struct Bad {
        std::vector<std::string> args;
        const char* expect;
    };
    const std::vector<Bad> bad = {
        {{"--lr-step", "0"}, "--lr-step: expected an integer in 1..100000, got '0'"},
        {{"--lr-gamma", "0"}, "--lr-gamma: expected a number > 0 and <= 1, got '0'"},
        {{"--lr-gamma", "-0.5"}, "--lr-gamma: expected a number > 0 and <= 1, got '-0.5'"},
        {{"--lr-gamma", "1.5"}, "--lr-gamma: expected a number > 0 and <= 1, got '1.5'"},
        {{"--val", "-1"}, "--val: expected an integer in 0..60000, got '-1'"},
        {{"--patience", "-1"}, "--patience: expected an integer in 0..100000, got '-1'"},
        {{"--min-delta", "2"}, "--min-delta: expected a number > 0 and <= 1, got '2'"},
    };
    for (const Bad& b : bad) {
        CAPTURE(b.expect);
        std::vector<std::string> args = {"prog"};
        args.insert(args.end(), b.args.begin(), b.args.end());
        std::vector<char*> argv;
        for (std::string& a : args) argv.push_back(a.data());
        CHECK_THROWS_WITH_AS(nn::parse_flags(int(argv.size()), argv.data(), "prog", "", flags), b.expect, Error);
        CHECK(code_of([&] { nn::parse_flags(int(argv.size()), argv.data(), "prog", "", flags); }) == 2);
    }
}

TEST_CASE("files: a failed write names the file and leaves the old one intact") {
    std::string p = th::path("keep.txt");
    nn::write_file_atomic(p, "old", 3);
    CHECK_THROWS_WITH_AS(nn::write_file_atomic(th::path("no-dir/x.txt"), "new", 3),
                         Contains("no-dir/x.txt: cannot write (No such file or directory)"), Error);
    CHECK(th::read_text(p) == "old");
    nn::write_file_atomic(p, "new!", 4);
    CHECK(th::read_text(p) == "new!");
}

TEST_CASE("model file: round trip, then every kind of wrong file is refused") {
    std::vector<float> a(6), b(4);
    for (int i = 0; i < 6; ++i) a[i] = 0.5f * i - 1;
    for (int i = 0; i < 4; ++i) b[i] = float(i * i);
    std::vector<nn::Tensor> ts = {{"w", &a, {2, 3, 1, 1}}, {"b", &b, {4, 1, 1, 1}}};
    std::string p = th::path("m.bin");
    nn::save_model(p, "toy", ts);
    std::vector<float> a2(6), b2(4);
    std::vector<nn::Tensor> ts2 = {{"w", &a2, {2, 3, 1, 1}}, {"b", &b2, {4, 1, 1, 1}}};
    nn::load_model(p, "toy", ts2);
    CHECK(a2 == a);
    CHECK(b2 == b);

    std::vector<uint8_t> good = nn::read_file(p);
    CHECK(good.size() == 8 + 4 + 16 + 4 + 2 * 32 + 10 * 4 + 4);
    CHECK(std::memcmp(good.data(), "NNCPPMDL", 8) == 0);

    CHECK_THROWS_WITH_AS(nn::load_model(p, "cnn", ts2), Contains("holds a 'toy' model (expected 'cnn')"), Error);
    std::vector<nn::Tensor> other = {{"w", &a2, {3, 2, 1, 1}}, {"b", &b2, {4, 1, 1, 1}}};
    CHECK_THROWS_WITH_AS(nn::load_model(p, "toy", other), Contains("tensor 0 is w 2x3 (expected w 3x2)"), Error);
    std::vector<nn::Tensor> three = {ts2[0], ts2[1], ts2[1]};
    CHECK_THROWS_WITH_AS(nn::load_model(p, "toy", three), Contains("holds 2 tensors (expected 3)"), Error);

    auto write_variant = [&](const std::vector<uint8_t>& bytes) {
        std::string q = th::path("m-bad.bin");
        th::write_bytes(q, bytes);
        return q;
    };
    auto trunc = std::vector<uint8_t>(good.begin(), good.end() - 5);
    CHECK_THROWS_WITH_AS(nn::load_model(write_variant(trunc), "toy", ts2), Contains("truncated or padded"), Error);
    auto flip = good;
    flip[good.size() - 10] ^= 0x40;
    CHECK_THROWS_WITH_AS(nn::load_model(write_variant(flip), "toy", ts2), Contains("checksum mismatch"), Error);
    auto magic = good;
    magic[0] = 'X';
    CHECK_THROWS_WITH_AS(nn::load_model(write_variant(magic), "toy", ts2), Contains("not a model file"), Error);
    CHECK_THROWS_WITH_AS(nn::load_model(write_variant({1, 2, 3}), "toy", ts2), Contains("not a model file"), Error);
    auto ver = good;
    ver[8] = 2;
    CHECK_THROWS_WITH_AS(nn::load_model(write_variant(ver), "toy", ts2), Contains("model format version 2"), Error);
}
