// Tests of the drawing page, docs/draw.html, which `make draw` writes with
// docs/draw (docs/draw.cpp) from docs/draw.template.html and docs/draw.js.
// The generator is tested on its own (a model the test writes, a damaged one,
// a missing one); the page is loaded in headless Chromium through the test
// hook at the end of draw.js:
//   - `#test=digits.js` makes it load a script the test writes next to a copy
//     of the page; the script hands it MNIST test digits, and the page writes
//     its networks' answers into <pre> elements, which `--dump-dom` shows.
//     Every answer must equal the C++ program's (`--predictions`), on all
//     10 000 test digits, for the MLP and the CNN.
//   - the same script has the page paint 500 of those digits onto its pad as
//     if drawn (magnified, off centre) and read them back through the
//     pre-processing, which must keep them readable;
//   - a second script draws strokes with pointer events, as a mouse does;
//   - `#draw=BASE64` paints one digit for a screenshot, whose size and
//     colours are checked.
// Chromium runs as root here, hence --no-sandbox, with a fresh profile each
// time and every background service off (the machine has no network). Without
// chromium, MNIST or a trained model, the cases that need them skip, saying so.
#include "helpers.hpp"

#define NN_TESTING
#include "../docs/draw.cpp"  // draw::base64, the encoder the page is built with

#include <sys/stat.h>

namespace {

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
th::Run chromium(const std::string& args, const std::string& url) {
    static int runs = 0;
    const std::string profile = th::path(nn::str("chromium-profile-", ++runs));
    return th::run(nn::str("timeout 300 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
                           "--disable-background-networking --disable-component-update --disable-sync "
                           "--user-data-dir='", profile, "' ", args, " 'file://", url, "'"));
}

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
    th::Run g = th::run(gen + small + " " + th::path("no.model") + " " + out + " " + md);
    INFO(g.out << g.err);
    REQUIRE(g.code == 0);
    const std::string html = th::read_text(out);
    CHECK(html.find("mlp: {H: 3,") != std::string::npos);
    CHECK(html.find("cnn: null,") != std::string::npos);
    CHECK(html.find("784-3-10, 2,395 weights") != std::string::npos);
    CHECK(html.find('@') == std::string::npos);  // every marker filled
    CHECK(th::read_text(md).find("and the CNN") == std::string::npos);
    // A model cut short: one line naming the file, exit 1, no page written.
    th::write_bytes(th::path("cut.bin"), std::vector<uint8_t>(model.begin(), model.begin() + 1000));
    g = th::run(gen + th::path("cut.bin") + " none " + th::path("cut.html") + " " + th::path("cut.md"));
    CHECK(g.code == 1);
    CHECK(th::count_lines(g.err) == 1);
    CHECK(g.err.find("cut.bin") != std::string::npos);
    CHECK(!exists(th::path("cut.html")));
    // No model at all: no page (a stale one is removed), a note for the
    // tutorial, one line on stdout, exit 0 so that make docs goes on.
    g = th::run(gen + th::path("none.bin") + " none " + out + " " + md + " 'mlp: no MNIST'");
    CHECK(g.code == 0);
    CHECK(g.out == "draw: " + out + " not built: " + th::path("none.bin") + " not found (mlp: no MNIST)\n");
    CHECK(!exists(out));
    CHECK(th::read_text(md).find("was not built") != std::string::npos);
}

TEST_CASE("draw: the page answers as ./mlp and ./cnn do on all 10 000 test digits, and reads them redrawn") {
    if (!have_chromium() || !th::need_mnist() || !page_built()) return;
    const nn::Split test = nn::load_split(th::mnist_dir(), "t10k", false);
    REQUIRE(test.n == 10000);
    // The C++ answers, from the programs themselves, on the page's models.
    const std::string head = th::read_text("mnist_model.bin").substr(0, 12);
    REQUIRE(head.size() == 12);
    int32_t sizes[3];
    std::memcpy(sizes, head.data(), 12);
    const std::string data = " --data '" + th::mnist_dir() + "'";
    th::Run r = th::run(nn::str("OMP_WAIT_POLICY=passive ./mlp --load mnist_model.bin --hidden ", sizes[1],
                                " --eval --predictions ", th::path("mlp.csv"), data));
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const std::string mlp = predictions(th::path("mlp.csv"), test);
    const bool with_cnn = exists("docs/data/cnn.model");
    std::string cnn;
    if (with_cnn) {
        r = th::run("OMP_WAIT_POLICY=passive ./cnn --load docs/data/cnn.model --eval --log none --predictions " +
                    th::path("cnn.csv") + data);
        REQUIRE_MESSAGE(r.code == 0, r.err);
        cnn = predictions(th::path("cnn.csv"), test);
    }
    REQUIRE(mlp.size() == 10000);

    // The page's answers: every digit as it is, the first 500 also redrawn.
    const int REDRAW = 500;
    write_text(th::path("digits.js"), "drawTest(\"" + draw::base64(test.pixels.data(), test.pixels.size()) + "\", " +
                                          std::to_string(REDRAW) + ");\n");
    r = chromium("--dump-dom", page_copy() + "#test=digits.js");
    REQUIRE_MESSAGE(r.code == 0, "chromium: exit " << r.code << "\n" << r.err);
    int n = 0;
    const std::string page_mlp = pre(r.out, "test-mlp");
    CHECK_MESSAGE(page_mlp.size() == 10000, "the page gave " << page_mlp.size() << " MLP answers");
    const std::string where = differences(page_mlp, mlp, &n);
    CHECK_MESSAGE(n == 0, n << " MLP answers differ (index: page vs ./mlp):" << where);
    if (with_cnn) {
        const std::string page_cnn = pre(r.out, "test-cnn");
        CHECK_MESSAGE(page_cnn.size() == 10000, "the page gave " << page_cnn.size() << " CNN answers");
        const std::string where_cnn = differences(page_cnn, cnn, &n);
        CHECK_MESSAGE(n == 0, n << " CNN answers differ (index: page vs ./cnn):" << where_cnn);
    } else {
        MESSAGE("SKIP: no docs/data/cnn.model, so the page has no CNN to compare");
    }

    // Redrawn: each digit painted 8 times larger, off centre and blurred by
    // the browser's smoothing, then pre-processed as a drawing. Scaling a
    // digit back to 20 pixels and centring it again cannot give MNIST's image
    // exactly (its grey edges widen the box a little), so a few answers change;
    // a broken step (no scaling, no centring, inverted ink) costs dozens of
    // points (merely shrinking the pad to 28 x 28 got about 60% in a trial).
    for (const char* net : {"mlp", "cnn"}) {
        if (std::string(net) == "cnn" && !with_cnn) continue;
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
  return ["mlp", "cnn"].map(n => document.getElementById("answer-" + n).dataset.digit || "").join(",");
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
    const std::string said = pre(r.out, "strokes");
    if (r.out.find("cnn: null") != std::string::npos) CHECK(said == "1,|,|7,");
    else CHECK(said == "1,1|,|7,7");
}

TEST_CASE("draw: a screenshot of the page after a digit is drawn") {
    if (!have_chromium() || !th::need_mnist() || !page_built()) return;
    const nn::Split test = nn::load_split(th::mnist_dir(), "t10k", false);
    const std::string url = page_copy() + "#draw=" + draw::base64(test.pixels.data(), 784);  // test digit 0, a 7
    // The page as it opens, then with the digit drawn: same size, and what
    // changed is the drawing (ink on the pad, its answers in large type) and
    // one green bar per network (#3a9d4f, the answer's colour).
    long dark[2] = {}, green[2] = {};
    std::string seen;
    for (int drawn = 0; drawn < 2; ++drawn) {
        CAPTURE(drawn);
        const std::string png = th::path(nn::str("draw-", drawn, ".png"));
        const th::Run shot = chromium("--screenshot='" + png + "' --window-size=1000,760", drawn ? url : page_copy());
        REQUIRE_MESSAGE(exists(png), "no screenshot: chromium exit " << shot.code << "\n" << shot.err);
        const std::string bytes = th::read_text(png);
        CHECK(bytes.size() > 30000);  // a page of text is tens of kilobytes as PNG, a blank one a few
        CHECK(bytes.size() < 2000000);
        int w = 0, h = 0;
        const std::vector<uint8_t> rgb = png_rgb(png, &w, &h);
        CHECK(w == 1000);
        CHECK(h == 760);
        for (size_t i = 0; i + 2 < rgb.size(); i += 3) {
            dark[drawn] += rgb[i] < 40 && rgb[i + 1] < 40 && rgb[i + 2] < 40;
            green[drawn] += rgb[i] == 0x3a && rgb[i + 1] == 0x9d && rgb[i + 2] == 0x4f;
        }
        seen += nn::str(drawn ? "\nwith test digit 0 drawn: " : "\nas the page opens: ", w, " x ", h, ", ", bytes.size(),
                        " bytes, ", dark[drawn], " near-black pixels, ", green[drawn], " green ones");
    }
    INFO("the screenshots:" << seen);
    CHECK(dark[1] > dark[0] + 2000);  // the 7 on the pad is about 3000
    CHECK(green[0] == 0);
    CHECK(green[1] > 1000);  // a full bar is 128 x 14 pixels; two nearly full ones here
    // And the page's answers for that drawing: the test digit's label.
    const th::Run dom = chromium("--dump-dom", url);
    CHECK(answer(dom.out, "mlp") == std::to_string(test.y[0]));
    if (exists("docs/data/cnn.model")) CHECK(answer(dom.out, "cnn") == std::to_string(test.y[0]));
}
