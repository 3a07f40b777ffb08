// Tests of the tutorial that `make docs` renders (docs/lit.awk, docs/figures,
// pandoc): it builds without warnings; every program contributes prose and all
// of its code, in reading order; no math is left as raw TeX; every picture the
// page links exists; nothing points to the network. The first case runs
// `make -s docs` itself (incremental, so it costs a few seconds only when a
// source changed), so the suite also works from a clean clone; the others read
// what it made. Without pandoc every case skips, saying so.
#include "helpers.hpp"

#include <algorithm>
#include <cctype>
#include <set>
#include <sys/stat.h>

namespace {

bool have_pandoc() {
    if (std::system("command -v pandoc >/dev/null 2>&1") == 0) return true;
    MESSAGE("SKIP: pandoc not found (apt-get install pandoc), so make docs cannot render the tutorial");
    return false;
}

// make docs, once per test run; every case needs its result.
const th::Run& build() {
    static const th::Run r = th::run("make -s docs");
    return r;
}

// The other cases only need to know that it worked; the first shows why not.
bool built() {
    REQUIRE_MESSAGE(build().code == 0, "make docs failed: see 'docs: make docs builds the page without warnings'");
    return true;
}

bool exists(const std::string& p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0;
}

// The parts of the book in reading order: introduction, the four programs,
// the appendix, the results.
const std::vector<std::string> PARTS = {"docs/intro.md", "xor.cpp", "mlp.cpp", "cnn.cpp",
                                        "attention.cpp", "common.hpp", "docs/results.md"};

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> v;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
}

bool is_prose(const std::string& line) {
    const size_t i = line.find_first_not_of(" \t");
    return i != std::string::npos && line.compare(i, 3, "///") == 0 &&
           (line.size() == i + 3 || line[i + 3] == ' ');
}

// `text` with every <open ...>...</close> span removed.
std::string without(const std::string& text, const std::string& open, const std::string& close) {
    std::string out;
    size_t from = 0;
    for (size_t a; (a = text.find(open, from)) != std::string::npos;) {
        const size_t b = text.find(close, a);
        if (b == std::string::npos) FAIL("unclosed " << open << " in docs/tutorial.html");
        out.append(text, from, a - from);
        from = b + close.size();
    }
    return out.append(text, from);
}

// The values of every attr="..." in the page.
std::vector<std::string> attribute(const std::string& html, const std::string& attr) {
    std::vector<std::string> v;
    const std::string key = " " + attr + "=\"";
    for (size_t a = html.find(key); a != std::string::npos; a = html.find(key, a + 1)) {
        const size_t b = a + key.size(), e = html.find('"', b);
        v.push_back(html.substr(b, e - b));
    }
    return v;
}

}  // namespace

TEST_CASE("docs: make docs builds the page without warnings") {
    if (!have_pandoc()) return;
    const th::Run& r = build();
    INFO("make docs: exit " << r.code << "\n" << r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK(r.err.find("[WARNING]") == std::string::npos);  // --fail-if-warnings makes them fatal anyway
    CHECK(exists("docs/tutorial.md"));
    CHECK(exists("docs/tutorial.html"));
}

TEST_CASE("docs: every program contributes prose and all its code, in reading order") {
    if (!have_pandoc() || !built()) return;
    const std::string md = "\n" + th::read_text("docs/tutorial.md");  // every line starts after a '\n'
    const std::string html = th::read_text("docs/tutorial.html");
    size_t at = 0;
    for (const std::string& part : PARTS) {
        CAPTURE(part);
        const std::vector<std::string> src = lines_of(th::read_text(part));
        const bool markdown = part.ends_with(".md");
        int prose = 0;
        std::string title;
        for (const std::string& l : src)
            if (markdown || is_prose(l)) {
                ++prose;
                const std::string text = markdown ? l : l.substr(std::min(l.find("///") + 4, l.size()));
                if (title.empty() && text.starts_with("# ")) title = text;
            }
        CHECK(prose >= 20);
        REQUIRE_MESSAGE(!title.empty(), part << " has no `# ` title line");
        at = md.find("\n" + title + "\n", at);
        REQUIRE_MESSAGE(at != std::string::npos, "'" << title << "' is missing or out of order in docs/tutorial.md");
        if (markdown) continue;
        // Every line of code, in order, as a line of the page (in a ```cpp block).
        for (const std::string& l : src) {
            if (is_prose(l) || l.find_first_not_of(" \t") == std::string::npos || l == "#pragma once") continue;
            const size_t next = md.find("\n" + l + "\n", at);
            if (next == std::string::npos) FAIL("code line missing or out of order: " << l);
            at = next;
        }
    }
    // One top-level heading per part (the page's title is an <h1 class="title">), a table of
    // contents, highlighted C++.
    size_t h1 = 0;
    for (size_t a = html.find("<h1 id="); a != std::string::npos; a = html.find("<h1 id=", a + 1)) ++h1;
    CHECK(h1 == PARTS.size());
    CHECK(html.find("<nav id=\"TOC\"") != std::string::npos);
    CHECK(html.find("class=\"sourceCode cpp\"") != std::string::npos);
}

TEST_CASE("docs: no math is left unrendered") {
    if (!have_pandoc() || !built()) return;
    const std::string html = th::read_text("docs/tutorial.html");
    CHECK(html.find("<math") != std::string::npos);
    // pandoc leaves math that texmath cannot convert as TeX in a span of this class.
    CHECK(html.find("class=\"math") == std::string::npos);
    // Outside code, styles and rendered math, no '$' and no TeX command may remain.
    std::string text = html.substr(html.find("<body"));
    for (const char* tag : {"pre", "code", "math", "style", "script"})
        text = without(text, std::string("<") + tag, std::string("</") + tag + ">");
    text = without(text, "<", ">");
    for (size_t a = text.find('$'); a != std::string::npos; a = text.find('$', a + 1))
        CHECK_MESSAGE(false, "a '$' in the prose: ..." << text.substr(a < 60 ? 0 : a - 60, 120));
    for (size_t a = text.find('\\'); a != std::string::npos; a = text.find('\\', a + 1))
        if (std::isalpha(static_cast<unsigned char>(text[a + 1])))
            CHECK_MESSAGE(false, "raw TeX in the prose: ..." << text.substr(a, 60));
}

TEST_CASE("docs: every image the page links exists") {
    if (!have_pandoc() || !built()) return;
    // In the Markdown: each ![caption](file) outside code names a file in docs/.
    bool code = false;
    int images = 0;
    for (const std::string& l : lines_of(th::read_text("docs/tutorial.md"))) {
        if (l.starts_with("```")) code = !code;
        if (code) continue;
        for (size_t a = l.find("]("); a != std::string::npos; a = l.find("](", a + 1)) {
            const size_t open = l.rfind("![", a);
            if (open == std::string::npos || (open > 0 && l[open - 1] == '`')) continue;
            const std::string file = l.substr(a + 2, l.find(')', a) - a - 2);
            ++images;
            CHECK_MESSAGE(exists("docs/" + file), "docs/tutorial.md shows docs/" << file << ", which does not exist");
        }
    }
    CHECK(images >= 1);
    // In the page: every picture is embedded.
    std::string outside;
    for (const std::string& src : attribute(th::read_text("docs/tutorial.html"), "src"))
        if (!src.starts_with("data:")) outside += " " + src;
    CHECK_MESSAGE(outside.empty(), "pictures not embedded:" << outside);
    // A figure whose committed input exists was drawn, not replaced by a note.
    if (exists("docs/data/cnn.model")) CHECK(exists("docs/cnn_filters.svg"));
    if (exists("docs/data/training_loss_cnn.txt")) CHECK(exists("docs/loss_cnn.svg"));
    if (exists("docs/data/bench.txt")) CHECK(exists("docs/bench.md"));
}

TEST_CASE("docs: the page links to nothing on the network") {
    if (!have_pandoc() || !built()) return;
    const std::string html = th::read_text("docs/tutorial.html");
    std::string remote;
    for (const char* attr : {"src", "href", "data", "srcset", "action", "poster"})
        for (const std::string& v : attribute(html, attr))
            if (v.starts_with("//") || v.starts_with("http:") || v.starts_with("https:") || v.starts_with("ftp:"))
                remote += nn::str(" ", attr, "=", v);
    CHECK_MESSAGE(remote.empty(), "links to the network:" << remote);
    CHECK(html.find("url(http") == std::string::npos);
    CHECK(html.find("@import") == std::string::npos);
    CHECK(html.find("<link") == std::string::npos);  // styles are inline, not fetched
    // In-page links (the contents, the chapters' cross-references) land somewhere.
    const std::vector<std::string> id_list = attribute(html, "id");
    const std::set<std::string> ids(id_list.begin(), id_list.end());
    std::string dangling;
    for (const std::string& v : attribute(html, "href"))
        if (v.starts_with("#") && !ids.count(v.substr(1))) dangling += " " + v;
    CHECK_MESSAGE(dangling.empty(), "in-page links without a target:" << dangling);
}

TEST_CASE("docs: the attention figure is drawn from ./attention's CSV, and a damaged CSV is refused") {
    if (!have_pandoc() || !built() || !th::need_mnist()) return;
    // make docs wrote the matrix of the committed model and drew it.
    const std::string csv = th::read_text("docs/attention_map.csv");
    REQUIRE(th::count_lines(csv) == 1 + 49 * 49);
    const std::string svg = th::read_text("docs/attention_map.svg");
    CHECK(svg.find("<svg") == 0);
    CHECK(svg.find("MNIST test image 0: label 7, predicted 7") != std::string::npos);
    CHECK(svg.find("attention received (mean over queries)") != std::string::npos);
    // figures reads it again into a file of its own: the same picture.
    const std::string again = th::path("map.svg");
    th::Run r = th::run("./docs/figures attention docs/attention_map.csv " + again);
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(th::read_text(again) == svg);
    // Damaged copies: one line naming the file and the line, exit 1, nothing written.
    const size_t row2 = csv.find('\n') + 1, row3 = csv.find('\n', row2) + 1;
    const std::string first_row = csv.substr(row2, row3 - row2);  // 0,7,7,P,0,0,W
    const std::string heavy = first_row.substr(0, first_row.rfind(',') + 1) + "1.5\n";
    std::string relabelled = csv;  // every row says label 3: not MNIST's test image 0
    for (size_t at = relabelled.find("\n0,7,"); at != std::string::npos; at = relabelled.find("\n0,7,", at + 1))
        relabelled[at + 3] = '3';
    struct Bad {
        std::string name, text, says;
    } bad[] = {
        {"header", "image,label,weight\n" + csv.substr(row2), ":1: expected the header"},
        {"cut", csv.substr(0, csv.size() / 2), "end of file"},
        {"heavy", csv.substr(0, row2) + heavy + csv.substr(row3), ":2: expected 0,0,WEIGHT (0..1)"},
        {"order", csv.substr(0, row2) + csv.substr(row3), ":2: expected 0,0,"},
        {"extra", csv + csv.substr(row2, row3 - row2), ":2403: expected the end of the file"},
        {"mixed", csv.substr(0, row3) + relabelled.substr(row3), ":3: expected 0,7,7,"},
        {"label", relabelled, ": image 0 has label 3, but MNIST's test image 0 is a 7"},
    };
    for (const Bad& b : bad) {
        CAPTURE(b.name);
        const std::string in = th::path(b.name + ".csv"), out = th::path(b.name + ".svg");
        th::write_bytes(in, std::vector<uint8_t>(b.text.begin(), b.text.end()));
        r = th::run("./docs/figures attention " + in + " " + out);
        CHECK(r.code == 1);
        CHECK(th::count_lines(r.err) == 1);
        CHECK(r.err.find(in) != std::string::npos);
        CHECK_MESSAGE(r.err.find(b.says) != std::string::npos, r.err);
        CHECK(!exists(out));
    }
}
