// --val, --schedule, --patience and --min-delta, end to end, the same checks
// for the three MNIST programs: without the new flags the log keeps its three
// columns and an explicit default schedule changes no bit; with --val the log
// gains a validation column; a decaying schedule leaves the first epoch alone
// and changes the second; early stopping stops, and the model it tests and
// saves is the best epoch's, bit for bit the model of a run that ended there.
// The formulas and the bookkeeping themselves are tested in test_common.cpp.
#include "helpers.hpp"

#include <cctype>
#include <sys/stat.h>

namespace {

// The first n images of a split, written as plain IDX files into dir.
void write_idx(const nn::Split& s, int n, const std::string& dir, const std::string& prefix) {
    std::vector<uint8_t> img, lab;
    th::put_be32(img, 0x803);
    th::put_be32(img, uint32_t(n));
    th::put_be32(img, 28);
    th::put_be32(img, 28);
    img.insert(img.end(), s.pixels.begin(), s.pixels.begin() + long(n) * nn::IMG_SIZE);
    th::put_be32(lab, 0x801);
    th::put_be32(lab, uint32_t(n));
    lab.insert(lab.end(), s.y.begin(), s.y.begin() + n);
    th::write_bytes(dir + "/" + prefix + "-images-idx3-ubyte", img);
    th::write_bytes(dir + "/" + prefix + "-labels-idx1-ubyte", lab);
}

// 600 training and 200 test images of MNIST, written once (the sanitizer
// build runs this whole file in about ten CPU seconds).
const std::string& small_mnist() {
    static std::string dir = [] {
        nn::Split train, test;
        nn::load_mnist(th::mnist_dir(), train, test, false);
        std::string d = th::path("mnist-600-200");
        REQUIRE(::mkdir(d.c_str(), 0755) == 0);
        write_idx(train, 600, d, "train");
        write_idx(test, 200, d, "t10k");
        return d;
    }();
    return dir;
}

// Each program at a size that trains in a fraction of a second, sleeping
// rather than spinning threads (results do not depend on it).
struct Program {
    std::string name, args, default_schedule, accuracy_line;
};

const Program programs[] = {
    {"mlp", "--hidden 32 --batch 32 --lr 0.1", "constant", "Test Accuracy: "},
    {"cnn", "--lr 0.05", "constant", "Test Accuracy: "},
    {"attention", "--d-model 8 --ff 16 --batch 8", "cosine", "Final test accuracy: "},
};

th::Run run(const Program& p, const std::string& flags) {
    return th::run("OMP_WAIT_POLICY=passive ./" + p.name + " --data " + small_mnist() +
                   " --threads 2 --seed 3 " + p.args + " " + flags);
}

// A line without its "time=1.234s" or "Time: 1.234": the one part that changes from run to run.
// (Written out: GCC 12 warns falsely inside <regex> under the sanitizers at -O3.)
std::string without_times(const std::string& line) {
    std::string out;
    for (size_t i = 0; i < line.size();) {
        size_t j = i + 5;
        const bool word = (line.compare(i, 4, "time") == 0 || line.compare(i, 4, "Time") == 0) && j <= line.size() &&
                          (line[i + 4] == ':' || line[i + 4] == '=');
        if (word && j < line.size() && line[j] == ' ') ++j;
        const size_t digits = j;
        while (word && j < line.size() && (std::isdigit(static_cast<unsigned char>(line[j])) || line[j] == '.')) ++j;
        if (!word || j == digits) {
            out += line[i++];
            continue;
        }
        if (j < line.size() && line[j] == 's') ++j;
        i = j;
    }
    return out;
}

// The epoch lines (times removed) and the accuracy line: what must repeat.
std::string results(const std::string& out) {
    std::string keep;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);)
        if (line.rfind("Epoch ", 0) == 0 || line.find("est accuracy: ") != std::string::npos ||
            line.find("est Accuracy: ") != std::string::npos)
            keep += without_times(line) + "\n";
    return keep;
}

std::string epoch_line(const std::string& out, int epoch) {
    std::istringstream in(results(out));
    for (std::string line; std::getline(in, line);)
        if (line.rfind(nn::str("Epoch ", epoch, ","), 0) == 0 || line.rfind(nn::str("Epoch ", epoch, " "), 0) == 0)
            return line;
    return "";
}

std::string accuracy(const Program& p, const std::string& out) {
    const size_t at = out.find(p.accuracy_line);
    return at == std::string::npos ? "" : out.substr(at, out.find('\n', at) - at);
}

std::vector<std::vector<std::string>> csv(const std::string& path) {
    std::vector<std::vector<std::string>> rows;
    std::istringstream in(th::read_text(path));
    for (std::string line; std::getline(in, line);) {
        rows.emplace_back();
        std::istringstream cells(line);
        for (std::string c; std::getline(cells, c, ',');) rows.back().push_back(c);
    }
    return rows;
}

}  // namespace

TEST_CASE("validation: logs, schedules and early stopping in mlp, cnn and attention") {
    if (!th::need_mnist()) return;
    for (const Program& p : programs) {
        CAPTURE(p.name);
        const std::string log = th::path(p.name + "-plain.csv"), vlog = th::path(p.name + "-val.csv");
        const std::string none = " --save " + th::path(p.name + "-unused.model");

        // no new flag: three columns; the default schedule named explicitly: the same bits
        th::Run plain = run(p, "--epochs 2 --log " + log + none);
        REQUIRE(plain.code == 0);
        const auto rows = csv(log);
        REQUIRE(rows.size() == 2);
        for (const auto& r : rows) CHECK(r.size() == 3);
        CHECK(plain.out.find("val") == std::string::npos);
        CHECK(plain.out.find("Val") == std::string::npos);
        th::Run named = run(p, "--epochs 2 --log none --schedule " + p.default_schedule + none);
        REQUIRE(named.code == 0);
        CHECK(results(named.out) == results(plain.out));

        // exponential decay: the first epoch at the full rate, the second not
        th::Run decay = run(p, "--epochs 2 --log none --schedule exponential --lr-gamma 0.5" + none);
        REQUIRE(decay.code == 0);
        if (p.default_schedule == "constant") CHECK(epoch_line(decay.out, 1) == epoch_line(plain.out, 1));
        CHECK(!epoch_line(decay.out, 2).empty());
        CHECK(epoch_line(decay.out, 2) != epoch_line(plain.out, 2));

        // --val: the split is announced, every epoch line and log row has its accuracy in [0, 1]
        th::Run val = run(p, "--epochs 2 --val 100 --log " + vlog + none);
        REQUIRE(val.code == 0);
        CHECK(val.out.find("Train: 500 | Val: 100 | Test: 200\n") != std::string::npos);
        const auto vrows = csv(vlog);
        REQUIRE(vrows.size() == 2);
        for (const auto& r : vrows) {
            REQUIRE(r.size() == 4);
            const double a = std::atof(r[2].c_str());
            CHECK(a >= 0.0);
            CHECK(a <= 1.0);
            CHECK(r[2].size() == 6);  // 0.dddd
        }
        CHECK(epoch_line(val.out, 2).find("al") != std::string::npos);

        // --patience 1 with a gain nobody can make (--min-delta 1): stops after
        // epoch 2, keeps epoch 1, and tests and saves exactly what a one-epoch
        // run tests and saves (a constant rate, so epoch 1 is the same in both)
        const std::string best = th::path(p.name + "-best.model"), one = th::path(p.name + "-one.model");
        th::Run stop = run(p, "--epochs 5 --schedule constant --val 100 --patience 1 --min-delta 1 --log " + vlog +
                                  " --save " + best);
        REQUIRE(stop.code == 0);
        CHECK(stop.out.find("Early stop: no validation gain in 1 epochs\n") != std::string::npos);
        CHECK(stop.out.find("Best epoch: 1 (val") != std::string::npos);
        CHECK(csv(vlog).size() == 2);
        th::Run first = run(p, "--epochs 1 --schedule constant --val 100 --log none --save " + one);
        REQUIRE(first.code == 0);
        CHECK(!accuracy(p, stop.out).empty());
        CHECK(accuracy(p, stop.out) == accuracy(p, first.out));
        CHECK(nn::read_file(best) == nn::read_file(one));

        // without early stopping the last epoch's parameters are kept: another model
        th::Run last = run(p, "--epochs 2 --schedule constant --val 100 --log none --save " + best);
        REQUIRE(last.code == 0);
        CHECK(nn::read_file(best) != nn::read_file(one));

        // bad combinations: one line, exit 2
        for (const std::string& bad : {std::string("--val 600"), std::string("--patience 2"),
                                       std::string("--lr-step 0"), std::string("--lr-gamma 0"),
                                       std::string("--schedule linear")}) {
            CAPTURE(bad);
            th::Run r = run(p, bad + " --log none" + none);
            CHECK(r.code == 2);
            CHECK(th::count_lines(r.err) == 1);
            CHECK(r.err.rfind(p.name + ": --", 0) == 0);
        }
    }
}
