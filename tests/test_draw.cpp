// Tests of the drawing page, docs/draw.html, which `make draw` writes with
// docs/draw (docs/draw.cpp) from docs/draw.template.html and docs/draw.js.
// The generator is tested on its own (a model the test writes, a damaged one,
// a missing one); the page is loaded in headless Chromium through the test
// hook at the end of draw.js:
//   - `#test=digits.js` makes it load a script the test writes next to a copy
//     of the page; the script hands it MNIST test digits, and the page writes
//     its networks' answers into <pre> elements, which `--dump-dom` shows.
//     Every answer must equal the C++ program's (`--predictions`), on all
//     10 000 test digits, for the MLP, the CNN and the attention model; and
//     for a few digits the page's insides (the CNN's feature maps, the
//     attention matrix, the probabilities) must equal what the programs'
//     own code computes (test_cnn.cpp and test_attention.cpp run it: the
//     `probe` functions declared below);
//   - the same script has the page paint 100 of those digits onto its pad as
//     if drawn (magnified, off centre) and read them back through the
//     pre-processing, which must keep them readable;
//   - a second script draws strokes with pointer events, as a mouse does;
//   - `#draw=BASE64` paints one digit for a screenshot, whose size and
//     colours are checked, and in which the attention map and the feature
//     maps must be drawn where the page says its canvases are.
// Chromium runs as root here, hence --no-sandbox, with a fresh profile each
// time and every background service off (the machine has no network). Without
// chromium, MNIST or a trained model, the cases that need them skip, saying so.
#include "helpers.hpp"

#define NN_TESTING
#include "../docs/draw.cpp"  // draw::base64, the encoder the page is built with

#include <map>
#include <sys/stat.h>

// The programs' own forward passes, run by the test files that include them
// (a program's names are private to its file): see the end of test_cnn.cpp
// and test_attention.cpp.
namespace probe {
void cnn(const std::string& model, const uint8_t* image, std::vector<float>& relu, std::vector<float>& pooled,
         std::vector<float>& p);
void attention(const std::string& model, const uint8_t* image, std::vector<float>& A, std::vector<float>& p);
}  // namespace probe

namespace {

const std::string CNN_MODEL = "docs/data/cnn.model", ATT_MODEL = "docs/data/attention/attention.model";

// How many test digits the page and the programs compare. Under the address
// sanitizer (make SANITIZE=1, one of CI's three runs of the suite) the
// programs run about 30 times slower: ./attention --eval alone takes 31 s of
// CPU on the 10 000 test digits there, against 1 s in the plain build. That
// run is about the C++ code's memory safety, which the first 1000 digits
// exercise as well as all of them, and the page's JavaScript is the same in
// every build; so it compares the first 1000, and the other runs all 10 000.
#if defined(__SANITIZE_ADDRESS__)
constexpr int DIGITS = 1000;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr int DIGITS = 1000;
#else
constexpr int DIGITS = 10000;
#endif
#else
constexpr int DIGITS = 10000;
#endif

// The first n images of a split as uncompressed IDX files in dir, named
// PREFIX-images-idx3-ubyte and PREFIX-labels-idx1-ubyte, as MNIST's.
void write_idx(const nn::Split& s, int n, const std::string& dir, const std::string& prefix) {
    std::vector<uint8_t> img, lab;
    th::put_be32(img, 0x803), th::put_be32(img, uint32_t(n)), th::put_be32(img, 28), th::put_be32(img, 28);
    img.insert(img.end(), s.pixels.begin(), s.pixels.begin() + long(n) * 784);
    th::put_be32(lab, 0x801), th::put_be32(lab, uint32_t(n));
    lab.insert(lab.end(), s.y.begin(), s.y.begin() + n);
    th::write_bytes(dir + "/" + prefix + "-images-idx3-ubyte", img);
    th::write_bytes(dir + "/" + prefix + "-labels-idx1-ubyte", lab);
}

bool exists(const std::string& p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0;
}

bool have_chromium() {
    if (std::system("command -v chromium >/dev/null 2>&1") == 0) return true;
    MESSAGE("SKIP: chromium not found (apt-get install chromium), so the drawing page cannot be tested in a browser");
    return false;
}

// make draw, once per test run (the docs tests' `make docs` has usually done
// it already).
const th::Run& build() {
    static const th::Run r = th::run("make -s draw");
    return r;
}

// Modification time, 0 if the file is missing.
long mtime(const std::string& p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0 ? long(st.st_mtime) : 0;
}

// True when docs/draw.html was built; else says why (no model and no MNIST
// to train one: make draw's own one-line reason) and the case skips.
bool page_built() {
    const th::Run& r = build();
    REQUIRE_MESSAGE(r.code == 0, "make draw: exit " << r.code << "\n" << r.out << r.err);
    if (exists("docs/draw.html")) return true;
    MESSAGE("SKIP: " << th::line(r.out));
    return false;
}

void write_text(const std::string& path, const std::string& text) {
    th::write_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
}

// A copy of the page in the scratch directory, where the test's scripts go
// beside it (the hook loads only a file name from the page's own folder).
std::string page_copy() {
    const std::string p = th::path("draw.html");
    write_text(p, th::read_text("docs/draw.html"));
    return p;
}

// Headless Chromium on `url` with `args` (--dump-dom, --screenshot=...): its
// stdout. A fresh profile per run; `timeout` so that a hung browser fails the
// test instead of stalling the suite.
std::string chromium_command(const std::string& args, const std::string& url) {
    static int runs = 0;
    const std::string profile = th::path(nn::str("chromium-profile-", ++runs));
    return nn::str("timeout 300 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
                   "--disable-background-networking --disable-component-update --disable-sync "
                   "--user-data-dir='", profile, "' ", args, " 'file://", url, "'");
}
th::Run chromium(const std::string& args, const std::string& url) { return th::run(chromium_command(args, url)); }

// The text of <pre id="ID" hidden="">...</pre> in a dumped DOM, or "(missing)".
std::string pre(const std::string& dom, const std::string& id) {
    const std::string open = "<pre id=\"" + id + "\" hidden=\"\">";
    const size_t a = dom.find(open);
    if (a == std::string::npos) return "(missing)";
    const size_t b = a + open.size();
    return dom.substr(b, dom.find('<', b) - b);
}

// The digit an answer element shows (its data-digit), "" for none.
std::string answer(const std::string& dom, const std::string& net) {
    const std::string key = "id=\"answer-" + net + "\" data-digit=\"";
    const size_t a = dom.find(key);
    if (a == std::string::npos) return "(missing)";
    const size_t b = a + key.size();
    return dom.substr(b, dom.find('"', b) - b);
}

// A program's --predictions file, checked line by line against the test set:
// "index,label,predicted", index in order, label MNIST's. The answers, as one
// digit per image (the page's format).
std::string predictions(const std::string& path, const nn::Split& test) {
    std::istringstream in(th::read_text(path));
    std::string answers, l;
    for (int i = 0; std::getline(in, l); ++i) {
        const std::string want = nn::str(i, ",", int(test.y[i]), ",");
        if (i >= test.n || l.size() != want.size() + 1 || l.compare(0, want.size(), want) != 0)
            FAIL(path << " line " << i + 1 << " is '" << l << "', expected " << want << "<digit>");
        answers += l.back();
    }
    return answers;
}

// Where two strings of answers differ: the count and the first few indices.
std::string differences(const std::string& a, const std::string& b, int* count) {
    std::string first;
    *count = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
        if (a[i] != b[i] && ++*count <= 10) first += nn::str(" ", i, " (", a[i], " vs ", b[i], ")");
    return first;
}

double accuracy(const std::string& answers, const nn::Split& test) {
    int right = 0;
    for (size_t i = 0; i < answers.size(); ++i) right += answers[i] - '0' == test.y[i];
    return answers.empty() ? 0.0 : 100.0 * right / double(answers.size());
}

// A PNG's pixels as RGB, for the 8-bit, non-interlaced RGB or RGBA images
// Chromium writes: the chunks' IDAT data inflated, each row unfiltered.
std::vector<uint8_t> png_rgb(const std::string& path, int* width, int* height) {
    const std::string f = th::read_text(path);
    REQUIRE_MESSAGE(f.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0, path << " is not a PNG file");
    auto be32 = [&](size_t at) {
        return uint32_t(uint8_t(f[at])) << 24 | uint32_t(uint8_t(f[at + 1])) << 16 | uint32_t(uint8_t(f[at + 2])) << 8 |
               uint8_t(f[at + 3]);
    };
    *width = int(be32(16));
    *height = int(be32(20));
    const int depth = uint8_t(f[24]), type = uint8_t(f[25]), interlace = uint8_t(f[28]);
    REQUIRE_MESSAGE((depth == 8 && (type == 2 || type == 6) && interlace == 0),
                    path << ": depth " << depth << ", colour type " << type << ", interlace " << interlace);
    std::string idat;
    for (size_t at = 8; at + 8 <= f.size();) {
        const uint32_t len = be32(at);
        if (f.compare(at + 4, 4, "IDAT") == 0) idat += f.substr(at + 8, len);
        at += 12 + len;
    }
    const int bpp = type == 6 ? 4 : 3, stride = *width * bpp;
    std::vector<uint8_t> raw(size_t(stride + 1) * *height);
    uLongf n = uLongf(raw.size());
    REQUIRE(uncompress(raw.data(), &n, reinterpret_cast<const Bytef*>(idat.data()), uLong(idat.size())) == Z_OK);
    std::vector<uint8_t> rgb;
    std::vector<uint8_t> prev(stride, 0), row(stride);
    for (int y = 0; y < *height; ++y) {
        const uint8_t filter = raw[size_t(y) * (stride + 1)];
        const uint8_t* in = &raw[size_t(y) * (stride + 1) + 1];
        for (int i = 0; i < stride; ++i) {
            const int a = i >= bpp ? row[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
            const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
            const int pred = filter == 0 ? 0 : filter == 1 ? a : filter == 2 ? b : filter == 3 ? (a + b) / 2
                           : pa <= pb && pa <= pc ? a : pb <= pc ? b : c;  // 4: Paeth
            row[i] = uint8_t(in[i] + pred);
        }
        for (int x = 0; x < *width; ++x) rgb.insert(rgb.end(), &row[size_t(x) * bpp], &row[size_t(x) * bpp] + 3);
        prev = row;
    }
    return rgb;
}

}  // namespace

TEST_CASE("draw: make draw writes one page that loads nothing and states its own size") {
    if (!page_built()) return;
    const std::string html = th::read_text("docs/draw.html");
    // The MLP's weights at 4 bytes each, as base64 (4/3): about 2.2 MB for H = 512.
    CHECK(html.size() > 1000000);
    CHECK(html.size() < 8000000);
    std::string size = std::to_string(html.size());  // 2275954 -> "2,275,954 bytes)"
    for (int i = int(size.size()) - 3; i > 0; i -= 3) size.insert(size_t(i), ",");
    size += " bytes)";
    CHECK_MESSAGE(html.find(size) != std::string::npos, "the page does not say it is " << size);
    // Nothing from elsewhere: every src and href is a file beside the page or
    // a place in it (base64 may contain any letters, so only attributes count).
    for (const char* attr : {" src=\"", " href=\""})
        for (size_t a = html.find(attr); a != std::string::npos; a = html.find(attr, a + 1)) {
            const std::string v = html.substr(a + std::strlen(attr), 12);
            CHECK_MESSAGE(v.find("//") == std::string::npos, "a link to the network: " << v);
            CHECK_MESSAGE(v.find(':') == std::string::npos, "a link with a scheme: " << v);
        }
    CHECK(html.find("<link") == std::string::npos);
    // The tutorial links to it, with the same size.
    const std::string md = th::read_text("docs/draw.md");
    CHECK(md.find("](draw.html)") != std::string::npos);
    CHECK(md.find(size) != std::string::npos);
    CHECK(th::read_text("docs/results.md").find("\n<!-- include draw.md -->\n") != std::string::npos);
    if (mtime("docs/tutorial.md") >= mtime("docs/draw.md"))  // made since, by make docs
        CHECK(th::read_text("docs/tutorial.md").find("](draw.html)") != std::string::npos);
}

TEST_CASE("draw: the generator embeds any MLP, refuses a damaged one, and notes a missing one") {
    const th::Run& r = build();
    REQUIRE_MESSAGE(exists("docs/draw"), "make draw did not build docs/draw:\n" << r.out << r.err);
    const std::string gen = "./docs/draw docs/draw.template.html docs/draw.js ";
    const std::string no_models = th::path("no.model") + " " + th::path("no.model") + " ";
    // A 784-3-10 model in the original's layout, no CNN: an MLP-only page.
    std::vector<uint8_t> model(12 + 8 * (784 * 3 + 3 + 3 * 10 + 10));
    const int32_t sizes[3] = {784, 3, 10};
    std::memcpy(model.data(), sizes, 12);
    for (size_t off = 12; off < model.size(); off += 8) {
        const double v = double(off % 1000) / 1000.0;
        std::memcpy(&model[off], &v, 8);
    }
    const std::string small = th::path("small.bin"), out = th::path("small.html"), md = th::path("small.md");
    th::write_bytes(small, model);
    th::Run g = th::run(gen + small + " " + no_models + out + " " + md);
    INFO(g.out << g.err);
    REQUIRE(g.code == 0);
    const std::string html = th::read_text(out);
    CHECK(html.find("mlp: {H: 3,") != std::string::npos);
    CHECK(html.find("cnn: null,") != std::string::npos);
    CHECK(html.find("attention: null,") != std::string::npos);
    CHECK(html.find("784-3-10, 2,395 weights") != std::string::npos);
    for (const char* marker : {"@MLP@", "@CNN@", "@ATTENTION@", "@SIZE@", "@MODELS@", "@SCRIPT@"})
        CHECK_MESSAGE(html.find(marker) == std::string::npos, marker << " left in the page");
    CHECK(th::read_text(md).find("CNN") == std::string::npos);
    CHECK(th::read_text(md).find("attention") == std::string::npos);
    // An attention model of another width (D = F = 8, zeros): one line naming
    // the file and the first tensor whose shape differs.
    {
        std::vector<float> We(16 * 8), be(8), pos(49 * 8), Wqkv(8 * 24), bqkv(24), W1(64), b1(8), W2(64), b2(8),
            Wc(80), bc(10);
        nn::save_model(th::path("narrow.model"), "attention",
                       {{"w_patch", &We, {16, 8, 1, 1}}, {"b_patch", &be, {8, 1, 1, 1}}, {"pos", &pos, {49, 8, 1, 1}},
                        {"w_qkv", &Wqkv, {8, 24, 1, 1}}, {"b_qkv", &bqkv, {24, 1, 1, 1}}, {"w_ff1", &W1, {8, 8, 1, 1}},
                        {"b_ff1", &b1, {8, 1, 1, 1}}, {"w_ff2", &W2, {8, 8, 1, 1}}, {"b_ff2", &b2, {8, 1, 1, 1}},
                        {"w_cls", &Wc, {8, 10, 1, 1}}, {"b_cls", &bc, {10, 1, 1, 1}}});
        g = th::run(gen + small + " " + th::path("no.model") + " " + th::path("narrow.model") + " " +
                    th::path("narrow.html") + " " + th::path("narrow.md"));
        CHECK(g.code == 1);
        CHECK(th::count_lines(g.err) == 1);
        CHECK(g.err.find("narrow.model") != std::string::npos);
        CHECK(g.err.find("w_patch") != std::string::npos);
        CHECK(!exists(th::path("narrow.html")));
    }
    // A model cut short: one line naming the file, exit 1, no page written.
    th::write_bytes(th::path("cut.bin"), std::vector<uint8_t>(model.begin(), model.begin() + 1000));
    g = th::run(gen + th::path("cut.bin") + " none none " + th::path("cut.html") + " " + th::path("cut.md"));
    CHECK(g.code == 1);
    CHECK(th::count_lines(g.err) == 1);
    CHECK(g.err.find("cut.bin") != std::string::npos);
    CHECK(!exists(th::path("cut.html")));
    // No model at all: no page (a stale one is removed), a note for the
    // tutorial, one line on stdout, exit 0 so that make docs goes on.
    g = th::run(gen + th::path("none.bin") + " none none " + out + " " + md + " 'mlp: no MNIST'");
    CHECK(g.code == 0);
    CHECK(g.out == "draw: " + out + " not built: " + th::path("none.bin") + " not found (mlp: no MNIST)\n");
    CHECK(!exists(out));
    CHECK(th::read_text(md).find("was not built") != std::string::npos);
}

TEST_CASE("draw: the page answers as the three programs do on all 10 000 test digits, sees inside as they do, "
          "and reads them redrawn") {
    if (!have_chromium() || !th::need_mnist() || !page_built()) return;
    const nn::Split test = nn::load_split(th::mnist_dir(), "t10k", false);
    REQUIRE(test.n == 10000);
    std::string dir = th::mnist_dir();
    if (DIGITS < test.n) {  // the sanitizer build: MNIST's first DIGITS test digits (and 10 training ones)
        MESSAGE("sanitizer build: the page and the programs compare the first " << DIGITS << " test digits");
        dir = th::path("mnist-first");
        REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
        write_idx(test, DIGITS, dir, "t10k");
        write_idx(test, 10, dir, "train");
    }
    // The C++ answers, from the programs themselves, on the page's models.
    const std::string head = th::read_text("mnist_model.bin").substr(0, 12);
    REQUIRE(head.size() == 12);
    int32_t sizes[3];
    std::memcpy(sizes, head.data(), 12);
    const std::string data = " --data '" + dir + "'";
    th::Run r = th::run(nn::str("OMP_WAIT_POLICY=passive ./mlp --load mnist_model.bin --hidden ", sizes[1],
                                " --eval --predictions ", th::path("mlp.csv"), data));
    REQUIRE_MESSAGE(r.code == 0, r.err);
    std::map<std::string, std::string> cpp = {{"mlp", predictions(th::path("mlp.csv"), test)}};
    const bool with_cnn = exists(CNN_MODEL), with_att = exists(ATT_MODEL);
    if (with_cnn) {
        r = th::run("OMP_WAIT_POLICY=passive ./cnn --load " + CNN_MODEL + " --eval --log none --predictions " +
                    th::path("cnn.csv") + data);
        REQUIRE_MESSAGE(r.code == 0, r.err);
        cpp["cnn"] = predictions(th::path("cnn.csv"), test);
    }
    if (with_att) {
        r = th::run("OMP_WAIT_POLICY=passive ./attention --load " + ATT_MODEL + " --eval --log none --predictions " +
                    th::path("att.csv") + data);
        REQUIRE_MESSAGE(r.code == 0, r.err);
        cpp["att"] = predictions(th::path("att.csv"), test);
    }
    REQUIRE(cpp["mlp"].size() == size_t(DIGITS));

    // The page's answers: every digit as it is, the first 100 also redrawn,
    // and the insides of six digits (a 7, a 2, a 1, a 0, a 4 and a 1). The
    // page's JavaScript runs on one core, so two browsers share the work at
    // once, the first and the second half of the digits (the answers are joined).
    const int REDRAW = 100;
    const std::vector<int> PROBE = {0, 1, 2, 3, 4, 5};
    const size_t half = size_t(DIGITS) * 784 / 2;
    write_text(th::path("digits-1.js"), "drawTest(\"" + draw::base64(test.pixels.data(), half) + "\", " +
                                            std::to_string(REDRAW) + ", [0, 1, 2, 3, 4, 5]);\n");
    write_text(th::path("digits-2.js"), "drawTest(\"" + draw::base64(test.pixels.data() + half, half) + "\", 0);\n");
    const std::string page_file = page_copy();
    r = th::run(nn::str("{ ", chromium_command("--dump-dom", page_file + "#test=digits-1.js"), " > '",
                        th::path("dom-1.html"), "' & p=$!; ", chromium_command("--dump-dom", page_file + "#test=digits-2.js"),
                        " > '", th::path("dom-2.html"), "'; b=$?; wait $p && [ $b = 0 ]; }"));
    REQUIRE_MESSAGE(r.code == 0, "chromium: exit " << r.code << "\n" << r.err);
    r.out = th::read_text(th::path("dom-1.html"));
    const std::string second = th::read_text(th::path("dom-2.html"));
    for (const std::string net : {"mlp", "cnn", "att"}) {
        CAPTURE(net);
        if (!cpp.count(net)) {
            MESSAGE("SKIP: no model committed for " << net << ", so the page has none to compare");
            continue;
        }
        int n = 0;
        const std::string page = pre(r.out, "test-" + net) + pre(second, "test-" + net);
        CHECK_MESSAGE(page.size() == size_t(DIGITS), "the page gave " << page.size() << " answers");
        const std::string where = differences(page, cpp[net], &n);
        CHECK_MESSAGE(n == 0, n << " answers differ (index: page vs program):" << where);
        MESSAGE(net << ": " << page.size() << " answers of the page compared with the program's, " << n << " differ");
    }

    // The insides. The page computes in float64 from the same float32
    // weights and inputs; the programs in float32. Each of these numbers is a
    // short chain of sums: a feature map 10 terms (bias and 3 x 3), a score of
    // the attention matrix 16 + 64 + 64 terms deep, a probability over a
    // thousand or so. float32 rounds each step by at most 2^-24 = 6e-8 of the
    // magnitudes involved, which stay below about 50 here, so errors of a few
    // 1e-6 are rounding; a wrong index or formula moves these numbers by 1e-2
    // or more. We compare |page - program| <= 1e-4 (1e-5 for the feature
    // maps, whose chains are short), and report the largest difference seen.
    std::map<std::string, std::vector<std::vector<double>>> page;  // "relu" -> one vector per probed digit
    {
        std::istringstream lines(pre(r.out, "probe"));
        for (std::string l; std::getline(lines, l);) {
            std::istringstream in(l);
            int digit = -1;
            std::string name;
            in >> digit >> name;
            std::vector<double> v;
            for (double x; in >> x;) v.push_back(x);
            page[name].push_back(v);
        }
    }
    auto compare = [&](const std::string& name, int k, const std::vector<float>& want, double tol, double* worst) {
        REQUIRE_MESSAGE(page[name].size() == PROBE.size(), "the page gave " << page[name].size() << " " << name);
        const std::vector<double>& got = page[name][k];
        REQUIRE_MESSAGE(got.size() == want.size(), name << ": " << got.size() << " numbers, expected " << want.size());
        int bad = 0;
        for (size_t i = 0; i < want.size(); ++i) {
            const double d = std::fabs(got[i] - double(want[i]));
            *worst = std::max(*worst, d);
            if (!(d <= tol) && ++bad <= 3)
                FAIL_CHECK(name << " of test digit " << PROBE[k] << ", entry " << i << ": page " << got[i]
                                << ", program " << want[i]);
        }
        return int(want.size());
    };
    std::map<std::string, double> worst;
    std::map<std::string, int> compared;
    for (size_t k = 0; k < PROBE.size(); ++k) {
        const uint8_t* image = &test.pixels[size_t(PROBE[k]) * 784];
        std::vector<float> relu, pooled, A, p;
        if (with_cnn) {
            probe::cnn(CNN_MODEL, image, relu, pooled, p);
            compared["relu"] += compare("relu", int(k), relu, 1e-5, &worst["relu"]);
            compared["pooled"] += compare("pooled", int(k), pooled, 1e-5, &worst["pooled"]);
            compared["cnn"] += compare("cnn", int(k), p, 1e-4, &worst["cnn"]);
        }
        if (with_att) {
            probe::attention(ATT_MODEL, image, A, p);
            compared["A"] += compare("A", int(k), A, 1e-4, &worst["A"]);
            compared["att"] += compare("att", int(k), p, 1e-4, &worst["att"]);
        }
    }
    for (const auto& [name, n] : compared)
        MESSAGE(name << ": " << n << " numbers compared on " << PROBE.size() << " digits, largest |page - program| "
                     << worst[name]);

    // Redrawn: each digit painted 8 times larger, off centre and blurred by
    // the browser's smoothing, then pre-processed as a drawing. Scaling a
    // digit back to 20 pixels and centring it again cannot give MNIST's image
    // exactly (its grey edges widen the box a little), so a few answers change;
    // a broken step (no scaling, no centring, inverted ink) costs dozens of
    // points (merely shrinking the pad to 28 x 28 got about 60% in a trial).
    for (const char* net : {"mlp", "cnn", "att"}) {
        if (!cpp.count(net)) continue;
        const std::string redrawn = pre(r.out, std::string("redraw-") + net);
        REQUIRE(redrawn.size() == size_t(REDRAW));
        const double as_is = accuracy(pre(r.out, std::string("test-") + net).substr(0, REDRAW), test);
        const double again = accuracy(redrawn, test);
        INFO(net << " on the first " << REDRAW << " test digits: " << as_is << "% as they are, " << again
                 << "% redrawn and pre-processed by the page");
        CHECK(again >= as_is - 10);
    }
}

TEST_CASE("draw: strokes drawn with pointer events are read while drawing, and Clear clears") {
    if (!have_chromium() || !page_built()) return;
    // A "1" (one slanted stroke), Clear, then a "7" (a bar and a diagonal),
    // as mouse events on the pad in its 280 x 280 coordinates. After each
    // drawing the script reads the answers in a timeout of 0, which runs after
    // the one in which the page computes them (timeouts run in the order they
    // were set); --virtual-time-budget makes --dump-dom wait for both.
    write_text(th::path("strokes.js"), R"(
const box = pad.getBoundingClientRect(), k = box.width / 280, said = [];
function pen(type, x, y) {
  pad.dispatchEvent(new PointerEvent(type, { clientX: box.left + x * k, clientY: box.top + y * k,
    pointerId: 1, pointerType: "mouse", isPrimary: true, bubbles: true }));
}
function draw(path) {
  pen("pointerdown", ...path[0]);
  for (const p of path.slice(1)) pen("pointermove", ...p);
  pen("pointerup", ...path[path.length - 1]);
}
function answers() {
  return ["mlp", "cnn", "att"].map(n => document.getElementById("answer-" + n).dataset.digit || "").join(",");
}
function line(x0, y0, x1, y1) {
  return Array.from({ length: 21 }, (_, i) => [x0 + (x1 - x0) * i / 20, y0 + (y1 - y0) * i / 20]);
}
function then(next) {
  setTimeout(() => { said.push(answers()); next(); }, 0);
}
draw(line(150, 40, 130, 240));
then(() => {
  document.getElementById("clear").click();
  said.push(answers());
  draw([...line(80, 60, 200, 60), ...line(200, 60, 120, 230)]);
  then(() => document.body.insertAdjacentHTML("beforeend", `<pre id="strokes" hidden>${said.join("|")}</pre>`));
});
)");
    const th::Run r = chromium("--virtual-time-budget=20000 --dump-dom", page_copy() + "#test=strokes.js");
    REQUIRE_MESSAGE(r.code == 0, "chromium: exit " << r.code << "\n" << r.err);
    // Each network present reads the 1 and then the 7; one absent answers nothing.
    auto all = [&](const char* d) {
        return nn::str(d, ",", exists(CNN_MODEL) ? d : "", ",", exists(ATT_MODEL) ? d : "");
    };
    CHECK(pre(r.out, "strokes") == all("1") + "|,,|" + all("7"));
}

TEST_CASE("draw: a screenshot of the page after a digit is drawn shows the answers, the attention map and the maps") {
    if (!have_chromium() || !th::need_mnist() || !page_built()) return;
    const nn::Split test = nn::load_split(th::mnist_dir(), "t10k", false);
    const std::vector<uint8_t> blank(784, 0);
    const std::string url[2] = {page_copy() + "#draw=" + draw::base64(blank.data(), 784),  // nothing drawn
                                page_copy() + "#draw=" + draw::base64(test.pixels.data(), 784)};  // test digit 0, a 7
    // The page with nothing drawn, then with the digit drawn: same size, and
    // what changed is the drawing (ink on the pad, its answers in large type),
    // one green bar per network (#3a9d4f, the answer's colour), and the
    // pictures of the insides, which were blank: the attention map's patches
    // and the CNN's maps turn red (--hot, #c0392b, mixed with the paper in
    // proportion to the value), and the MLP's neurons appear. The page says
    // where each canvas is (#draw writes <pre id="layout">); the window is
    // tall enough to hold them all.
    const int W = 1100, H = 2400;
    const bool with_cnn = exists(CNN_MODEL), with_att = exists(ATT_MODEL);
    long dark[2] = {}, green[2] = {};
    std::map<std::string, long> hot[2], inked[2];  // per canvas row: reddish pixels, pixels not paper
    std::string seen;
    for (int drawn = 0; drawn < 2; ++drawn) {
        CAPTURE(drawn);
        const std::string png = th::path(nn::str("draw-", drawn, ".png"));
        const th::Run shot = chromium(nn::str("--screenshot='", png, "' --window-size=", W, ",", H), url[drawn]);
        REQUIRE_MESSAGE(exists(png), "no screenshot: chromium exit " << shot.code << "\n" << shot.err);
        const std::string bytes = th::read_text(png);
        CHECK(bytes.size() > 30000);  // a page of text is tens of kilobytes as PNG, a blank one a few
        CHECK(bytes.size() < 4000000);
        int w = 0, h = 0;
        const std::vector<uint8_t> rgb = png_rgb(png, &w, &h);
        REQUIRE(w == W);
        REQUIRE(h == H);
        for (size_t i = 0; i + 2 < rgb.size(); i += 3)
            green[drawn] += rgb[i] == 0x3a && rgb[i + 1] == 0x9d && rgb[i + 2] == 0x4f;
        const th::Run dom = chromium(nn::str("--dump-dom --window-size=", W, ",", H), url[drawn]);
        std::istringstream layout(pre(dom.out, "layout"));
        int canvases = 0;
        for (std::string name; layout >> name;) {
            int x = 0, y = 0, cw = 0, ch = 0;
            layout >> x >> y >> cw >> ch;
            ++canvases;
            CHECK_MESSAGE((x >= 0 && y >= 0 && x + cw <= W && y + ch <= H), name << " is outside the screenshot");
            const std::string row = name.substr(0, name.find('-', 4));  // "relu-3" -> "relu"; "att-rows" stays
            for (int yy = y + 2; yy < std::min(y + ch - 2, H); ++yy)      // inside its 1-pixel border
                for (int xx = x + 2; xx < std::min(x + cw - 2, W); ++xx) {
                    const uint8_t* px = &rgb[(size_t(yy) * W + xx) * 3];
                    hot[drawn][row] += px[0] > px[1] + 40 && px[0] > px[2] + 40;
                    inked[drawn][row] += px[0] < 0xf0 || px[1] < 0xf0 || px[2] < 0xf0;
                    dark[drawn] += row == "pad" && px[0] < 40 && px[1] < 40 && px[2] < 40;
                }
        }
        CHECK(canvases == 2 + 8 + 8 + (with_cnn ? 24 : 0) + (with_att ? 2 : 0));  // pad, seen, neurons, maps
        seen += nn::str(drawn ? "\nwith test digit 0 drawn: " : "\nwith nothing drawn: ", w, " x ", h, ", ",
                        bytes.size(), " bytes, ", dark[drawn], " near-black pixels on the pad, ", green[drawn],
                        " green ones;");
        for (const auto& [row, n] : hot[drawn]) seen += nn::str(" ", row, ": ", n, " red, ", inked[drawn][row], " not paper;");
    }
    INFO("the screenshots:" << seen);
    CHECK(dark[0] == 0);
    CHECK(inked[0]["pad"] < 100);     // its border's corners
    CHECK(dark[1] > 1000);            // the 7's core, in full ink (#1a1a1a)
    CHECK(inked[1]["pad"] > 8000);    // and its grey edges: about 12 000 pixels
    CHECK(green[0] == 0);
    CHECK(green[1] > 1000);  // a full bar is 102 x 14 pixels; three nearly full ones here
    // Nothing drawn: the maps are paper (the attention map only its grid).
    for (const char* row : {"att-received", "att-rows", "relu", "pooled", "units", "terms"}) {
        CAPTURE(row);
        CHECK(hot[0][row] == 0);
    }
    CHECK(inked[0]["units"] == 0);
    CHECK(inked[0]["relu"] == 0);
    // Drawn: a patch is 36 x 36 pixels here, so a few red patches are
    // thousands of pixels; a small map is 80 x 80 inside its border.
    if (with_att) {
        CHECK(hot[1]["att-received"] > 3000);
        CHECK(hot[1]["att-rows"] > 2000);
    }
    if (with_cnn) {  // light reds mostly: weak responses, on one scale with the strongest
        CHECK(inked[1]["relu"] > 4000);
        CHECK(inked[1]["pooled"] > 4000);
        CHECK(hot[1]["relu"] > 300);
        CHECK(hot[1]["pooled"] > 300);
    }
    CHECK(inked[1]["units"] > 8 * 3000);  // the weights of 8 neurons: nearly every pixel coloured
    CHECK(hot[1]["terms"] > 0);
    // And the page's answers for that drawing: the test digit's label.
    const th::Run dom = chromium("--dump-dom", url[1]);
    CHECK(answer(dom.out, "mlp") == std::to_string(test.y[0]));
    if (with_cnn) CHECK(answer(dom.out, "cnn") == std::to_string(test.y[0]));
    if (with_att) CHECK(answer(dom.out, "att") == std::to_string(test.y[0]));
}
