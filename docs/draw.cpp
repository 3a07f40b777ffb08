// draw: writes docs/draw.html, the tutorial's page where a reader draws a digit
// and the MLP (chapter 2), the CNN (chapter 3) and the attention model
// (chapter 4) read it while it is drawn, in JavaScript. `make draw` (and so
// `make docs`) runs it:
//
//   docs/draw TEMPLATE.html SCRIPT.js MLP_MODEL CNN_MODEL ATTENTION_MODEL OUT.html OUT.md [WHY]
//
// MLP_MODEL is the MLP's model in the original's mnist_model.bin layout
// (mlp.cpp, "Saving and loading"); CNN_MODEL a model file of ./cnn and
// ATTENTION_MODEL one of ./attention with its default widths, D = 64 and
// F = 128 (common.hpp's format); either may be a file that does not exist:
// the page then goes without that network. The page is TEMPLATE.html with its six markers filled in (the
// template's first comment names them): SCRIPT.js pasted in whole, and the
// weights as base64 text of their float32 bytes. The programs train and
// compute in float32, so these are their weights exactly; mnist_model.bin
// stores each as a float64, which converts back to the same float32.
//
// OUT.md is the paragraph of the tutorial that links to the page (results.md
// includes it) and gives its size. When MLP_MODEL does not exist, the page is
// not built: OUT.html is removed, so that no stale page stays behind, OUT.md
// says so in one line, and so does this program on stdout (with WHY, the
// Makefile's reason, when given); it still exits 0, so `make docs` finishes.
// Every other problem (a damaged model, a template without its markers) stops
// it with one line naming the file, exit 1, as in the programs.
//
// It includes mlp.cpp (main fenced off by NN_TESTING) to read mnist_model.bin
// with the chapter's own load_model and its checks. The CNN's file is read by
// common.hpp's nn::load_model against the CNN's four tensors, listed below as
// cnn.cpp's `tensors` lists them, and the attention model's against its eleven
// (attention.cpp's `file_tensors`): a file of other shapes is refused with a
// line that names the tensor. tests/test_draw.cpp includes this file, with
// NN_TESTING already defined, for its base64 encoder; then there is no main.
#ifndef NN_TESTING
#define NN_TESTING
#define DRAW_MAIN
#endif
#include "../mlp.cpp"

#include <array>
#include <cstdio>

namespace draw {

// Base64 (RFC 4648, with '=' padding), what the browser's atob() decodes.
std::string base64(const uint8_t* p, size_t n) {
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((n + 2) / 3 * 4);
    for (size_t i = 0; i < n; i += 3) {
        const uint32_t v = uint32_t(p[i]) << 16 | (i + 1 < n ? uint32_t(p[i + 1]) << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        out += digits[v >> 18 & 63];
        out += digits[v >> 12 & 63];
        out += i + 1 < n ? digits[v >> 6 & 63] : '=';
        out += i + 2 < n ? digits[v & 63] : '=';
    }
    return out;
}

// A tensor as a quoted JavaScript string: its float32 bytes, little-endian
// (common.hpp refuses to build on a big-endian machine), in base64.
std::string js_floats(const std::vector<float>& v) {
    return "\"" + base64(reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)) + "\"";
}

// 2274560 -> "2,274,560".
std::string grouped(size_t n) {
    std::string s = std::to_string(n);
    for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(size_t(i), ",");
    return s;
}

std::string size_text(size_t bytes) {
    char mb[32];
    std::snprintf(mb, sizeof mb, "%.2f MB", double(bytes) / 1e6);
    return nn::str(mb, " (", grouped(bytes), " bytes)");
}

bool exists(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0;
}

// `text` with its one `marker` replaced by `value`; a marker missing or
// repeated means the template is not the one this program was written for.
std::string fill(std::string text, const std::string& marker, const std::string& value, const std::string& path) {
    const size_t at = text.find(marker);
    if (at == std::string::npos || text.find(marker, at + 1) != std::string::npos)
        throw nn::Error(nn::str(path, ": expected the marker ", marker, " exactly once"));
    return text.replace(at, marker.size(), value);
}

void write_text(const std::string& path, const std::string& text) {
    nn::write_file_atomic(path, text.data(), text.size());
}

// The note that the page was not built is written only when its text
// changes: make runs this program on every `make docs` while the page is
// missing, and an unchanged note must not make it render the tutorial again.
void write_note(const std::string& path, const std::string& text) {
    if (exists(path)) {
        const std::vector<uint8_t> old = nn::read_file(path);
        if (std::string(old.begin(), old.end()) == text) return;
    }
    write_text(path, text);
}

int run(int argc, char** argv) {
    if (argc != 8 && argc != 9)
        throw nn::Error("usage: draw TEMPLATE.html SCRIPT.js MLP_MODEL CNN_MODEL ATTENTION_MODEL OUT.html OUT.md [WHY]",
                        2);
    const std::string tmpl = argv[1], script = argv[2], mlp_path = argv[3], cnn_path = argv[4],
                      att_path = argv[5], out = argv[6], md = argv[7], why = argc == 9 ? argv[8] : "";

    if (!exists(mlp_path)) {
        const std::string reason = nn::str(mlp_path, " not found", why.empty() ? "" : " (" + why + ")");
        std::remove(out.c_str());
        write_note(md, nn::str("*(The drawing page, `", out, "`, was not built: ", reason,
                               ". `make draw` trains the MLP with `./mlp` when MNIST is in `data/`.)*\n"));
        std::printf("draw: %s not built: %s\n", out.c_str(), reason.c_str());
        return 0;
    }

    // The MLP: its hidden width H from the file's header, then the chapter's
    // loader, which checks the whole file against 784-H-10.
    const std::vector<uint8_t> head = nn::read_file(mlp_path);
    int32_t sizes[3] = {IN, 0, OUT};
    if (head.size() >= sizeof sizes) std::memcpy(sizes, head.data(), sizeof sizes);
    const Net net = load_model(mlp_path, sizes[1] > 0 ? sizes[1] : 1);
    std::string models = nn::str("{\n  mlp: {H: ", net.H, ",\n    W1: ", js_floats(net.W1), ",\n    b1: ",
                                 js_floats(net.b1), ",\n    W2: ", js_floats(net.W2), ",\n    b2: ",
                                 js_floats(net.b2), "},\n");
    const std::string mlp_text =
        nn::str("784-", net.H, "-10, ", grouped(param_count(net.H)), " weights, from <code>", mlp_path, "</code>");

    // The CNN, when there is one: cnn.cpp's four tensors, by name and shape.
    std::string cnn_text = nn::str("none (<code>", cnn_path, "</code> did not exist when the page was built)");
    if (exists(cnn_path)) {
        std::vector<float> conv_w, conv_b, fc_w, fc_b;
        nn::load_model(cnn_path, "cnn",
                       {{"conv_w", &conv_w, {8, 3, 3, 1}},
                        {"conv_b", &conv_b, {8, 1, 1, 1}},
                        {"fc_w", &fc_w, {10, 1568, 1, 1}},
                        {"fc_b", &fc_b, {10, 1, 1, 1}}});
        models += nn::str("  cnn: {conv_w: ", js_floats(conv_w), ",\n    conv_b: ", js_floats(conv_b),
                          ",\n    fc_w: ", js_floats(fc_w), ",\n    fc_b: ", js_floats(fc_b), "},\n");
        cnn_text = nn::str("convolution 3×3×8, max-pool, linear 1568 → 10, ",
                           grouped(conv_w.size() + conv_b.size() + fc_w.size() + fc_b.size()),
                           " weights, from <code>", cnn_path, "</code>");
    } else {
        models += "  cnn: null,\n";
    }

    // The attention model, when there is one: attention.cpp's eleven tensors
    // at the default widths, D = 64, F = 128.
    std::string att_text = nn::str("none (<code>", att_path, "</code> did not exist when the page was built)");
    if (exists(att_path)) {
        constexpr uint32_t D = 64, F = 128, N = 49, P = 16;
        std::vector<float> t[11];
        const char* names[11] = {"w_patch", "b_patch", "pos",   "w_qkv", "b_qkv", "w_ff1",
                                 "b_ff1",   "w_ff2",   "b_ff2", "w_cls", "b_cls"};
        const std::array<uint32_t, 4> shapes[11] = {{P, D, 1, 1}, {D, 1, 1, 1},     {N, D, 1, 1},  {D, 3 * D, 1, 1},
                                                    {3 * D, 1, 1, 1}, {D, F, 1, 1}, {F, 1, 1, 1},  {F, D, 1, 1},
                                                    {D, 1, 1, 1}, {D, 10, 1, 1},    {10, 1, 1, 1}};
        std::vector<nn::Tensor> list;
        for (int i = 0; i < 11; ++i)
            list.push_back({names[i], &t[i], {shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3]}});
        nn::load_model(att_path, "attention", list);
        models += nn::str("  attention: {D: ", D, ", F: ", F);
        size_t count = 0;
        for (int i = 0; i < 11; ++i) {
            models += nn::str(",\n    ", names[i], ": ", js_floats(t[i]));
            count += t[i].size();
        }
        models += "},\n";
        att_text = nn::str("patches 4×4, one attention head, D = 64, F = 128, ", grouped(count),
                           " weights, from <code>", att_path, "</code>");
    } else {
        models += "  attention: null,\n";
    }
    models += "}";

    // The script goes inside <script>...</script>, which its text must not end.
    const std::vector<uint8_t> js = nn::read_file(script);
    const std::string js_text(js.begin(), js.end());
    if (js_text.find("</script") != std::string::npos)
        throw nn::Error(nn::str(script, ": contains '</script', which would end the page's script early"));
    const std::vector<uint8_t> t = nn::read_file(tmpl);
    std::string page = fill(std::string(t.begin(), t.end()), "@MLP@", mlp_text, tmpl);
    page = fill(page, "@CNN@", cnn_text, tmpl);
    page = fill(page, "@ATTENTION@", att_text, tmpl);
    page = fill(page, "@MODELS@", models, tmpl);
    page = fill(page, "@SCRIPT@", js_text, tmpl);

    // The page states its own size: fill in a guess, measure, repeat until
    // the text no longer changes the size it states (twice, in practice).
    size_t size = page.size();
    std::string sized;
    for (int i = 0; i < 10 && sized.size() != size; ++i) {
        if (!sized.empty()) size = sized.size();
        sized = fill(page, "@SIZE@", size_text(size), tmpl);
    }
    if (sized.size() != size) throw nn::Error("draw: the page's size does not settle");  // cannot happen
    write_text(out, sized);

    const bool with_cnn = exists(cnn_path), with_att = exists(att_path);
    write_text(md, nn::str("[**Draw a digit**](draw.html) and watch the MLP of chapter 2",
                           with_cnn && with_att ? ", the CNN of chapter 3 and the attention model of chapter 4"
                           : with_cnn           ? " and the CNN of chapter 3"
                           : with_att           ? " and the attention model of chapter 4"
                                                : "",
                           " read it while you draw, and what each sees inside",
                           with_cnn ? ": the CNN's feature maps" : "", with_cnn && with_att ? ", " : "",
                           with_att ? (with_cnn ? "the attention map" : ": the attention map") : "",
                           with_cnn || with_att ? " and " : ": ", "the MLP's most active hidden units. ",
                           "The page, `docs/draw.html`, is one file of ", size_text(size),
                           " that holds the trained weights (from `", mlp_path, "`",
                           with_cnn ? nn::str(", `", cnn_path, "`") : "", with_att ? nn::str(", `", att_path, "`") : "",
                           ", as float32) and runs the forward passes in plain JavaScript; it loads nothing. "
                           "`make draw` (part of `make docs`) writes it, training the MLP first with `./mlp` "
                           "when there is no `mnist_model.bin`. It explains why a drawing must be made to look like "
                           "an MNIST digit before a network can read it; the MLP's file format is the one in "
                           "chapter 2, [*Saving and loading*](#saving-and-loading).\n"));
    return 0;
}

}  // namespace draw

#ifdef DRAW_MAIN
int main(int argc, char** argv) { return nn::guarded_main("draw", draw::run, argc, argv); }
#endif
