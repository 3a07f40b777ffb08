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
#include <map>
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

// ---- The page's layout: pairs, links, the table of contents, the PDF ----

namespace {

int count(const std::string& text, const std::string& what) {
    int n = 0;
    for (size_t a = text.find(what); a != std::string::npos; a = text.find(what, a + 1)) ++n;
    return n;
}

bool have(const char* tool, const char* package) {
    if (std::system((std::string("command -v ") + tool + " >/dev/null 2>&1").c_str()) == 0) return true;
    MESSAGE("SKIP: " << tool << " not found (apt-get install " << package << ")");
    return false;
}

// The Chromium and PDF checks test the page, not the C++: they run in the plain
// build only, so CI's sanitizer and assertion passes do not pay for them twice.
bool plain_build() {
#if defined(__SANITIZE_ADDRESS__) || defined(_GLIBCXX_ASSERTIONS)
    MESSAGE("SKIP: the page's layout and PDF are checked in the plain build only (this one has sanitizers or assertions)");
    return false;
#else
    return true;
#endif
}

const std::string CHROMIUM = "chromium --headless --no-sandbox --disable-gpu --disable-background-networking "
                             "--disable-component-update --disable-sync --no-first-run --hide-scrollbars ";

}  // namespace

TEST_CASE("docs: each piece of prose and the code after it form a pair") {
    if (!have_pandoc() || !built()) return;
    const std::string html = th::read_text("docs/tutorial.html");
    const int pairs = count(html, "<div class=\"pair\">");
    CHECK(pairs >= 100);  // 132 when this was written: every code block of the four programs and common.hpp
    // Every pair holds its prose, then its code: one C++ block.
    for (size_t a = html.find("<div class=\"pair\">"); a != std::string::npos; a = html.find("<div class=\"pair\">", a + 1)) {
        const size_t end = html.find("<div class=\"pair\">", a + 1);
        const std::string pair = html.substr(a, end == std::string::npos ? std::string::npos : end - a);
        CAPTURE(pair.substr(0, 200));
        REQUIRE(pair.starts_with("<div class=\"pair\">\n<div class=\"prose\">"));
        const size_t code = pair.find("<div class=\"code");
        REQUIRE(code != std::string::npos);
        CHECK(count(pair.substr(code), "class=\"sourceCode cpp\"") == 2);  // the <pre> and its <code>
    }
    // All the programs' code is in pairs: as many C++ blocks as pairs (prose has none).
    CHECK(count(html, "<pre class=\"sourceCode cpp\">") == pairs);
    // Headings stand alone (full width, and the PDF breaks pages before chapters).
    for (const char* h : {"<h1 ", "<h2 ", "<h3 "}) {
        for (size_t a = html.find(h); a != std::string::npos; a = html.find(h, a + 1)) {
            const size_t open = html.rfind("<div class=\"", a), close = html.rfind("</div>", a);
            if (open != std::string::npos && (close == std::string::npos || close < open))
                CHECK_MESSAGE(html.compare(open, 18, "<div class=\"pair\">") != 0, "a heading inside a pair: " << html.substr(a, 80));
        }
    }
}

TEST_CASE("docs: links.awk anchors definitions and links the names that use them") {
    if (!have("awk", "mawk")) return;
    // A page as pandoc writes it: a part that defines nn::load_data, a part that defines and uses
    // its own names, in headings, prose, code, comments and after other scopes.
    const std::string L = "<a href=\"#x\" aria-hidden=\"true\" tabindex=\"-1\"></a>";
    const std::string page =
        "<nav id=\"TOC\"><ul><li><a href=\"#x\"><code>step</code></a></li></ul></nav>\n"
        "<!-- part common -->\n"
        "<div class=\"sourceCode\" id=\"cb1\"><pre class=\"sourceCode cpp\"><code class=\"sourceCode cpp\"><span id=\"cb1-1\">" + L +
        "<span class=\"kw\">inline</span> <span class=\"dt\">void</span> load_data<span class=\"op\">(</span><span class=\"dt\">int</span> "
        "n<span class=\"op\">)</span> <span class=\"op\">{}</span></span></code></pre></div>\n"
        "<!-- part demo -->\n"
        "<h2 id=\"x\">About <code>step</code></h2>\n"
        "<p>Call <code>step</code> with a <code>Batch</code>; <code>nn::load_data</code> reads; <code>t.step</code> is a member.</p>\n"
        "<div class=\"sourceCode\" id=\"cb2\"><pre class=\"sourceCode cpp\"><code class=\"sourceCode cpp\"><span id=\"cb2-1\">" + L +
        "<span class=\"kw\">struct</span> Batch <span class=\"op\">{</span> <span class=\"dt\">int</span> step<span class=\"op\">;</span> "
        "<span class=\"op\">};</span></span>\n"
        "<span id=\"cb2-2\">" + L + "<span class=\"kw\">constexpr</span> <span class=\"dt\">int</span> ROWS <span class=\"op\">=</span> "
        "<span class=\"dv\">2</span><span class=\"op\">,</span> LANES<span class=\"op\">[</span>ROWS<span class=\"op\">]</span> "
        "<span class=\"op\">=</span> <span class=\"op\">{</span><span class=\"dv\">0</span><span class=\"op\">};</span></span>\n"
        "<span id=\"cb2-3\">" + L + "<span class=\"dt\">void</span> step<span class=\"op\">(</span>Batch<span class=\"op\">&amp;</span> "
        "b<span class=\"op\">)</span> <span class=\"op\">{</span> <span class=\"co\">// step Batch</span></span>\n"
        "<span id=\"cb2-4\">" + L + "    nn<span class=\"op\">::</span>load_data<span class=\"op\">(</span>b<span class=\"op\">.</span>step "
        "<span class=\"op\">+</span> LANES<span class=\"op\">[</span><span class=\"dv\">0</span><span class=\"op\">]);</span> "
        "std<span class=\"op\">::</span>step<span class=\"op\">(</span>b<span class=\"op\">);</span> <span class=\"dt\">int</span> "
        "s <span class=\"op\">=</span> step<span class=\"op\">;</span></span>\n"
        "<span id=\"cb2-5\">" + L + "<span class=\"op\">}</span></span></code></pre></div>\n";
    const std::string in = th::path("links.html");
    th::write_bytes(in, std::vector<uint8_t>(page.begin(), page.end()));
    const th::Run r = th::run("awk -f docs/links.awk '" + in + "' '" + in + "'");
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const std::string& out = r.out;
    auto def = [](const std::string& id, const std::string& name) {
        return "<a class=\"def\" id=\"" + id + "\" href=\"#" + id + "\">" + name + "</a>";
    };
    auto ref = [](const std::string& id, const std::string& name) {
        return "<a class=\"ref\" href=\"#" + id + "\">" + name + "</a>";
    };
    // Each definition is an anchor, once.
    CHECK(count(out, def("def-nn-load_data", "load_data")) == 1);
    CHECK(count(out, def("def-demo-Batch", "Batch")) == 1);
    CHECK(count(out, def("def-demo-ROWS", "ROWS")) == 1);
    CHECK(count(out, def("def-demo-LANES", "LANES")) == 1);
    CHECK(count(out, def("def-demo-step", "step")) == 1);
    CHECK(count(out, "class=\"def\"") == 5);
    // Prose: a name alone in inline code, qualified or not; not a member, not in a heading or the contents.
    CHECK(out.find("<p>Call <code>" + ref("def-demo-step", "step") + "</code> with a <code>" + ref("def-demo-Batch", "Batch") +
                   "</code>; <code>nn::" + ref("def-nn-load_data", "load_data") + "</code> reads; <code>t.step</code>") !=
          std::string::npos);
    CHECK(out.find("<h2 id=\"x\">About <code>step</code></h2>") != std::string::npos);
    CHECK(out.find("<a href=\"#x\"><code>step</code></a>") != std::string::npos);
    // Code: a call and a type and a constant link; a member, another namespace's name, a function
    // name not called, a comment do not.
    CHECK(out.find(def("def-demo-LANES", "LANES") + "<span class=\"op\">[</span>" + ref("def-demo-ROWS", "ROWS")) !=
          std::string::npos);
    CHECK(out.find("<span class=\"op\">(</span>" + ref("def-demo-Batch", "Batch")) != std::string::npos);
    CHECK(out.find("nn<span class=\"op\">::</span>" + ref("def-nn-load_data", "load_data")) != std::string::npos);
    CHECK(out.find(ref("def-demo-LANES", "LANES") + "<span class=\"op\">[</span><span class=\"dv\">0") != std::string::npos);
    CHECK(out.find("<span class=\"op\">.</span>step ") != std::string::npos);
    CHECK(out.find("std<span class=\"op\">::</span>step<span") != std::string::npos);
    CHECK(out.find("<span class=\"op\">=</span> step<span class=\"op\">;</span></span>") != std::string::npos);
    CHECK(out.find("<span class=\"co\">// step Batch</span>") != std::string::npos);
    CHECK(count(out, "class=\"ref\"") == 7);
    // Nothing else changed: without the links the page is the same.
    std::string plain = out;
    for (size_t a; (a = plain.find("<a class=\"")) != std::string::npos;) {
        const size_t b = plain.find('>', a);
        plain.erase(a, b + 1 - a);
        plain.erase(plain.find("</a>", a), 4);
    }
    CHECK(plain == page);
}

TEST_CASE("docs: names in the book link to their definitions") {
    if (!have_pandoc() || !built()) return;
    const std::string html = th::read_text("docs/tutorial.html");
    const std::vector<std::string> id_list = attribute(html, "id");
    const std::set<std::string> ids(id_list.begin(), id_list.end());
    CHECK_MESSAGE(ids.size() == id_list.size(), "an id is used twice");
    // Every struct the sources define at the top level is an anchor (the converter found it).
    const std::vector<std::pair<std::string, std::string>> sources = {
        {"xor.cpp", "xor"}, {"mlp.cpp", "mlp"}, {"cnn.cpp", "cnn"}, {"attention.cpp", "attention"}, {"common.hpp", "nn"}};
    for (const auto& source : sources) {
        const std::string& file = source.first;  // (not a structured binding: clang 14 cannot capture one in CHECK)
        const std::string& part = source.second;
        for (const std::string& l : lines_of(th::read_text(file)))
            if (l.starts_with("struct ")) {
                std::string name = l.substr(7);
                name = name.substr(0, name.find_first_of(" {:"));
                CHECK_MESSAGE(ids.count("def-" + part + "-" + name), file << ": struct " << name << " has no anchor");
            }
    }
    // The commonest names are linked, from code and from prose, to their own chapter's definition.
    for (const char* id : {"def-cnn-conv_grad", "def-cnn-Batch", "def-cnn-EVEN_OFF", "def-nn-load_mnist", "def-nn-Rng",
                           "def-mlp-matmul", "def-attention-attention_backward", "def-xor-backward"}) {
        const std::string name = id;
        CAPTURE(name);
        CHECK(ids.count(name));
        CHECK(count(html, "<a class=\"ref\" href=\"#" + name + "\">") >= 1);
    }
    CHECK(html.find("<code>nn::<a class=\"ref\" href=\"#def-nn-load_mnist\">load_mnist</a></code>") != std::string::npos);
    // Each link's text is the name its target defines.
    int links = 0;
    for (size_t a = html.find("<a class=\"ref\" href=\"#def-"); a != std::string::npos;
         a = html.find("<a class=\"ref\" href=\"#def-", a + 1), ++links) {
        const size_t q = html.find('"', a + 22), gt = html.find("</a>", q);
        const std::string id = html.substr(a + 22, q - a - 22), text = html.substr(q + 2, gt - q - 2);
        if (!id.ends_with("-" + text)) FAIL("link text " << text << " points to " << id);
    }
    CHECK(links >= 500);  // 1176 when this was written
    MESSAGE(links << " links to " << count(html, "<a class=\"def\"") << " definitions");
}

TEST_CASE("docs: the layout in headless Chromium, 1440 and 420 pixels wide") {
    if (!have_pandoc() || !built() || !plain_build() || !have("chromium", "chromium")) return;
    // The page, with a probe at its end: it measures every pair, then leaves the CNN's backward
    // pass at the top of the window for the screenshot (docs/tutorial-WIDTH.png, to look at).
    const std::string probe = R"(<script>
(function () {
  var pairs = document.querySelectorAll("div.pair"), side = 0, stacked = 0, broken = 0, scrolling = 0;
  pairs.forEach(function (p) {
    var pr = p.querySelector(":scope > .prose"), co = p.querySelector(":scope > .code");
    if (!pr || !co) { broken++; return; }
    var a = pr.getBoundingClientRect(), b = co.getBoundingClientRect();
    if (b.left >= a.right - 1 && Math.abs(b.top - a.top) < 2) side++;
    else if (b.top >= a.bottom - 1) stacked++;
  });
  document.querySelectorAll("div.pair pre").forEach(function (e) { if (e.scrollWidth > e.clientWidth + 1) scrolling++; });
  var nav = document.getElementById("TOC"), out = document.createElement("p");
  out.textContent = "LAY" + "OUT pairs=" + pairs.length + " side=" + side + " stacked=" + stacked + " broken=" + broken +
    " scrolling=" + scrolling + " sidebar=" + (getComputedStyle(nav).position == "fixed" ? 1 : 0) +
    " overflow=" + (document.documentElement.scrollWidth > innerWidth ? 1 : 0) + " END";
  var h = document.querySelector("#backward-pass-2");
  for (var e = h && h.previousElementSibling, before; e; e = before) {
    before = e.previousElementSibling;
    if (!(e === nav && innerWidth >= 1400)) e.remove();
  }
  document.body.appendChild(out);
})();
</script>)";
    std::string html = th::read_text("docs/tutorial.html");
    REQUIRE(html.find("id=\"backward-pass-2\"") != std::string::npos);  // the CNN's (the third "Backward pass")
    html.insert(html.rfind("</body>"), probe);
    const std::string page = th::path("probe.html");
    th::write_bytes(page, std::vector<uint8_t>(html.begin(), html.end()));
    std::map<int, std::string> seen;
    for (int width : {1440, 420}) {
        CAPTURE(width);
        const std::string shot = "docs/tutorial-" + std::to_string(width) + ".png";
        std::remove(shot.c_str());
        const th::Run r = th::run(CHROMIUM + "--user-data-dir='" + th::path("chromium") + "' --window-size=" +
                                  std::to_string(width) + ",1600 --screenshot=" + shot + " --dump-dom 'file://" + page + "'");
        const size_t a = r.out.find("LAYOUT "), b = r.out.find(" END", a);
        REQUIRE_MESSAGE(a != std::string::npos, "chromium: exit " << r.code << "\n" << r.err.substr(0, 2000));
        seen[width] = r.out.substr(a, b - a);
        MESSAGE(seen[width]);
        // The screenshot is a picture of the page, not an empty window (blank: about 6 kB).
        const std::string png = th::read_text(shot);
        CHECK(png.starts_with("\x89PNG"));
        CHECK(png.size() > 40000);
    }
    const std::string pairs = "pairs=" + std::to_string(count(html, "<div class=\"pair\">"));
    // Wide: every pair side by side, no code block scrolls sideways, the contents in a sidebar, no
    // horizontal scrolling of the page.
    CHECK(seen[1440] == "LAYOUT " + pairs + " side=" + pairs.substr(6) + " stacked=0 broken=0 scrolling=0 sidebar=1 overflow=0");
    // Narrow: one column, prose above its code, the contents on top; code may scroll in its box.
    CHECK(seen[420].starts_with("LAYOUT " + pairs + " side=0 stacked=" + pairs.substr(6) + " broken=0 scrolling="));
    CHECK(seen[420].ends_with(" sidebar=0 overflow=0"));
}

TEST_CASE("docs: make pdf prints the book") {
    if (!have_pandoc() || !built() || !plain_build() || !have("chromium", "chromium") || !have("pdftotext", "poppler-utils"))
        return;
    const th::Run r = th::run("make -s pdf");
    REQUIRE_MESSAGE(r.code == 0, r.out << r.err);
    const th::Run info = th::run("pdfinfo docs/tutorial.pdf");
    REQUIRE(info.code == 0);
    const size_t p = info.out.find("Pages:");
    REQUIRE(p != std::string::npos);
    const int pages = std::atoi(info.out.c_str() + p + 6);
    MESSAGE("docs/tutorial.pdf: " << pages << " pages");
    CHECK(pages >= 40);  // 87 when this was written
    CHECK(info.out.find("(A4)") != std::string::npos);
    CHECK(th::read_text("docs/tutorial.pdf").find("/Outlines") != std::string::npos);  // the bookmarks
    // The pages as text, split at the form feeds pdftotext puts between them.
    const th::Run text = th::run("pdftotext -enc UTF-8 docs/tutorial.pdf -");
    REQUIRE(text.code == 0);
    std::vector<std::string> page_text;
    std::istringstream in(text.out);
    for (std::string pg; std::getline(in, pg, '\f');) page_text.push_back(pg);
    REQUIRE(page_text.size() >= 2);
    // The first pages: the title, then the contents, which name every part of the book.
    const std::string first = page_text[0] + page_text[1];
    CHECK(first.find("Neural networks from scratch") < 200);
    // Each part starts a page: its title (the first words of its `# ` line) opens one.
    for (const std::string& part : PARTS) {
        std::string title;
        for (const std::string& l : lines_of(th::read_text(part))) {
            const size_t i = l.find_first_not_of(" \t/");
            if (i != std::string::npos && l.compare(i, 2, "# ") == 0) { title = l.substr(i + 2); break; }
        }
        title = title.substr(0, title.find(' ', title.find(' ') + 1));  // two words: a title may wrap
        CAPTURE(title);
        CHECK(first.find(title) != std::string::npos);
        bool opens = false;
        for (size_t i = 1; i < page_text.size(); ++i) opens = opens || page_text[i].starts_with(title);
        CHECK_MESSAGE(opens, "no page starts with the part's title");
    }
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
