// figures: the tutorial's pictures, drawn as SVG from real data. `make docs`
// builds it with the programs' flags and runs it once per figure:
//
//   docs/figures digits OUT.svg                  the first 16 MNIST test digits and their labels
//   docs/figures filters MODEL OUT.svg           the CNN's 8 learned 3x3 filters and their biases
//   docs/figures confusion MODEL OUT.svg OUT.md  the CNN's confusion matrix on the 10 000 test
//                                                images, and a Markdown sentence quoting its accuracy
//   docs/figures loss OUT.svg TITLE LOG...       training loss per epoch, one curve per CSV log
//                                                (rows epoch,loss,seconds, as every program writes)
//   docs/figures attention MAP.csv OUT.svg       one test image's attention matrix, as written by
//                                                ./attention --attention-map MAP.csv (chapter 4)
//   docs/figures val OUT.svg TITLE LOG...        validation accuracy per epoch, one curve per log
//                                                written with --val (epoch,loss,val_accuracy,seconds)
//
// It includes cnn.cpp (whose main is fenced off by NN_TESTING) to reuse the
// model, its file format and its evaluation, so the confusion matrix counts
// exactly what the chapter's `accuracy` counts. MNIST is found as the programs
// find it: $MNIST_DIR, else data/. When it is missing, `digits`, `confusion`
// and `attention` (which draws the image under the map) say so in one line
// and write nothing; the page then shows a one-line note in place of the
// picture (see docs/lit.awk). Every other problem (an unreadable model, log
// or map) stops the build with one line naming the file, as in the
// programs. SVG is plain text: rectangles, paths and text, no scripts, no fonts
// or images from elsewhere, so pandoc can embed it in the self-contained page.
#define NN_TESTING
#include "../cnn.cpp"

#include <cstdarg>
#include <fstream>
#include <map>

namespace fig {

// printf into a growing string: an SVG is a few thousand short lines (each
// under 512 characters; longer text is appended directly).
void put(std::string& out, const char* fmt, ...) {
    char buf[512];
    va_list args;
    va_start(args, fmt);
    const int n = std::vsnprintf(buf, sizeof buf, fmt, args);
    va_end(args);
    out.append(buf, size_t(std::min<int>(n, int(sizeof buf) - 1)));
}

std::string svg_open(int width, int height) {
    std::string s;
    put(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
           "font-family=\"sans-serif\" font-size=\"12\">\n", width, height, width, height);
    put(s, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", width, height);
    return s;
}

void save(const std::string& path, std::string s, const char* close = "</svg>\n") {
    s += close;
    nn::write_file_atomic(path, s.data(), s.size());
}

// A diverging colour for v in [-1, 1]: blue for negative, white at 0, red for positive.
std::string diverging(double v) {
    v = std::max(-1.0, std::min(1.0, v));
    const int a = int(255 * (1 - std::fabs(v)));
    char buf[16];
    std::snprintf(buf, sizeof buf, v >= 0 ? "#ff%02x%02x" : "#%02x%02xff", a, a);
    return buf;
}

// v rounded to two decimals, so that printf shows 0.00 and never -0.00.
double two_places(double v) {
    v = std::round(v * 100) / 100;
    return v == 0 ? 0.0 : v;
}

// The test split, or nothing (and one line saying why) when MNIST is absent.
bool load_test(nn::Split& test) {
    const std::string dir = nn::data_dir("");
    try {
        nn::find_mnist_file(dir, "t10k-images", "idx3-ubyte");
        nn::find_mnist_file(dir, "t10k-labels", "idx1-ubyte");
    } catch (const nn::Error& e) {
        std::printf("figures: skipped, MNIST not found (%s)\n", e.what());
        return false;
    }
    test = nn::load_split(dir, "t10k", /*floats=*/false);
    return true;
}

// ## A row of digits
//
// One image is 28x28 bytes; we draw dark ink on white, each pixel a 2x2
// square. 784 rectangles per digit would make a heavy file, so the pixels are
// grouped by grey level (16 levels) and each level is one <path> of unit
// squares, scaled up by the enclosing transform.
void digits(const std::string& out) {
    nn::Split test;
    if (!load_test(test)) return;
    constexpr int COUNT = 16, SCALE = 2, SIDE = 28 * SCALE, GAP = 8;
    std::string s = svg_open(COUNT * (SIDE + GAP) + GAP, SIDE + 2 * GAP + 16);
    for (int i = 0; i < COUNT; ++i) {
        const uint8_t* px = &test.pixels[size_t(i) * 784];
        put(s, "<g transform=\"translate(%d,%d) scale(%d)\" shape-rendering=\"crispEdges\">\n", GAP + i * (SIDE + GAP),
            GAP, SCALE);
        put(s, "<rect width=\"28\" height=\"28\" fill=\"none\" stroke=\"#ccc\" stroke-width=\"0.5\"/>\n");
        for (int level = 1; level < 16; ++level) {
            std::string d;
            for (int p = 0; p < 784; ++p)
                if ((px[p] + 8) / 17 == level) put(d, "M%d %dh1v1h-1z", p % 28, p / 28);
            if (!d.empty()) put(s, "<path fill-opacity=\"%.3f\" d=\"", level / 15.0), s += d + "\"/>\n";
        }
        put(s, "</g>\n<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", GAP + i * (SIDE + GAP) + SIDE / 2,
            SIDE + 2 * GAP + 8, int(test.y[i]));
    }
    save(out, s);
}

Cnn load_cnn(const std::string& path) {
    Cnn m;
    nn::load_model(path, "cnn", tensors(m));
    return m;
}

// ## The CNN's filters
//
// Each of the 8 filters is a 3x3 stencil; we draw its weights as coloured
// cells (red positive, blue negative, one scale for all filters, so they can be
// compared) with the value written in, and the filter's bias below.
void filters(const std::string& model, const std::string& out) {
    const Cnn m = load_cnn(model);
    float most = 0;
    for (float w : m.conv_w) most = std::max(most, std::fabs(w));
    constexpr int CELL = 34, SIDE = K * CELL, GAP = 22;
    std::string s = svg_open(C * (SIDE + GAP) + GAP, SIDE + 70);
    put(s, "<text x=\"%d\" y=\"16\">weights of the 8 filters, red &gt; 0 &gt; blue (full colour at |w| = %.2f)</text>\n",
        GAP, double(most));
    for (int c = 0; c < C; ++c) {
        const int x0 = GAP + c * (SIDE + GAP), y0 = 28;
        for (int u = 0; u < K; ++u)
            for (int v = 0; v < K; ++v) {
                const double w = m.conv_w[c * K * K + u * K + v];
                put(s, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" stroke=\"#888\" "
                       "stroke-width=\"0.5\"/>\n", x0 + v * CELL, y0 + u * CELL, CELL, CELL,
                    diverging(w / most).c_str());
                put(s, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"10\">%.2f</text>\n",
                    x0 + v * CELL + CELL / 2, y0 + u * CELL + CELL / 2 + 4, two_places(w));
            }
        put(s, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">filter %d</text>\n", x0 + SIDE / 2, y0 + SIDE + 16, c);
        put(s, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"10\">bias %.2f</text>\n", x0 + SIDE / 2,
            y0 + SIDE + 30, two_places(m.conv_b[c]));
    }
    save(out, s);
}

// ## The confusion matrix
//
// Row = the true digit, column = the network's answer, each cell a count of
// test images. The diagonal (right answers) is shaded green by the row's
// share, the rest red relative to the largest mistake, so the few common
// confusions stand out against the many rare ones. The Markdown sentence
// carries the accuracy into the page's prose.
void confusion(const std::string& model, const std::string& out, const std::string& md) {
    nn::Split test;
    if (!load_test(test)) return;
    const Cnn m = load_cnn(model);
    std::vector<uint8_t> guess;
    const double acc = accuracy(m, test, 32, &guess);
    int count[10][10] = {}, row[10] = {}, worst = 0, wi = 0, wj = 1, right = 0;
    for (int i = 0; i < test.n; ++i) ++count[test.y[i]][guess[i]], ++row[test.y[i]];
    for (int i = 0; i < 10; ++i)
        for (int j = 0; j < 10; ++j) {
            if (i == j) right += count[i][j];
            else if (count[i][j] > worst) worst = count[i][j], wi = i, wj = j;
        }
    constexpr int CELL = 38, X0 = 70, Y0 = 60;
    std::string s = svg_open(X0 + 10 * CELL + 20, Y0 + 10 * CELL + 20);
    put(s, "<text x=\"%d\" y=\"18\">CNN on the 10 000 test images: %d right (%.2f%%)</text>\n", X0, right, acc);
    put(s, "<text x=\"%d\" y=\"40\" text-anchor=\"middle\">predicted digit</text>\n", X0 + 5 * CELL);
    put(s, "<text transform=\"translate(18,%d) rotate(-90)\" text-anchor=\"middle\">true digit</text>\n",
        Y0 + 5 * CELL);
    for (int d = 0; d < 10; ++d) {
        put(s, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", X0 + d * CELL + CELL / 2, Y0 - 6, d);
        put(s, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%d</text>\n", X0 - 8, Y0 + d * CELL + CELL / 2 + 4, d);
    }
    for (int i = 0; i < 10; ++i)
        for (int j = 0; j < 10; ++j) {
            const double share = i == j ? double(count[i][j]) / std::max(row[i], 1) : double(count[i][j]) / std::max(worst, 1);
            put(s, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" fill-opacity=\"%.3f\" "
                   "stroke=\"#ddd\"/>\n", X0 + j * CELL, Y0 + i * CELL, CELL, CELL, i == j ? "#2e8b57" : "#c0392b",
                i == j ? 0.2 + 0.6 * share : 0.8 * share);
            if (count[i][j])
                put(s, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\">%d</text>\n",
                    X0 + j * CELL + CELL / 2, Y0 + i * CELL + CELL / 2 + 4, count[i][j]);
        }
    save(out, s);
    char pct[16];
    std::snprintf(pct, sizeof pct, "%.2f%%", acc);
    const std::string text = nn::str("The committed model `", model, "` answers ", right, " of the ", test.n,
                                     " test images correctly, **", pct, "**; its most frequent mistake is to read a ",
                                     wi, " as a ", wj, " (", worst, " times).\n");
    nn::write_file_atomic(md, text.data(), text.size());
}

// ## Loss curves
//
// One CSV log per curve, rows epoch,loss,seconds (extra columns ignored), or
// epoch,loss,val_accuracy,seconds for the validation curves (`column` 2). The
// loss axis starts at 0 so that curves are compared honestly; the accuracy
// axis ends at 1 and starts at a round number below the lowest point. Ticks
// fall on round numbers (1, 2 or 5 times a power of ten). After six curves
// the colours repeat, dashed.
struct Curve {
    std::string name;
    std::vector<double> epoch, loss;  // loss: the plotted value
};

Curve read_log(const std::string& path, int column = 1) {
    std::ifstream f(path);
    if (!f) throw nn::Error(nn::str(path, ": cannot read"));
    Curve c;
    c.name = path.substr(path.find_last_of('/') + 1);
    c.name = c.name.substr(0, c.name.rfind('.'));
    if (c.name.rfind("training_loss_", 0) == 0) c.name = c.name.substr(14);
    std::string line;
    for (int no = 1; std::getline(f, line); ++no) {
        double e = 0, l = 0;
        char comma = 0;
        std::istringstream row(line);
        bool ok = bool(row >> e >> comma >> l) && comma == ',';
        for (int k = 1; ok && k < column; ++k) ok = bool(row >> comma >> l) && comma == ',';
        if (!ok || !std::isfinite(l))
            throw nn::Error(nn::str(path, ":", no, ": expected ",
                                    column == 1 ? "epoch,loss,seconds" : "epoch,loss,val_accuracy,seconds", ", got '",
                                    line, "'"));
        c.epoch.push_back(e);
        c.loss.push_back(l);
    }
    if (c.epoch.empty()) throw nn::Error(nn::str(path, ": no rows"));
    return c;
}

double nice_step(double range, int ticks) {
    const double raw = range / ticks, p = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0})
        if (m * p >= raw) return m * p;
    return 10 * p;
}

void loss(const std::string& out, const std::string& title, const std::vector<std::string>& logs, int column = 1) {
    std::vector<Curve> curves;
    double max_epoch = 1, max_loss = 0, min_loss = 1;
    for (const std::string& p : logs) {
        curves.push_back(read_log(p, column));
        for (double e : curves.back().epoch) max_epoch = std::max(max_epoch, e);
        for (double l : curves.back().loss) max_loss = std::max(max_loss, l), min_loss = std::min(min_loss, l);
    }
    double ystep = nice_step(max_loss, 5), ytop = ystep * std::ceil(max_loss / ystep), ybottom = 0;
    if (column == 2) {  // accuracy: from a round number below the lowest point to 1
        ystep = nice_step(1 - min_loss, 5), ytop = 1, ybottom = ystep * std::floor(min_loss / ystep);
    }
    const double xstep = std::max(1.0, nice_step(max_epoch, 10));
    size_t longest = 0;  // the legend's width follows its longest name, at about 7 px a character
    for (const Curve& c : curves) longest = std::max(longest, c.name.size());
    constexpr int X0 = 60, Y0 = 34, PW = 400, PH = 160;
    auto X = [&](double e) { return X0 + PW * (e - 1) / std::max(max_epoch - 1, 1.0); };
    auto Y = [&](double l) { return Y0 + PH * (1 - (l - ybottom) / (ytop - ybottom)); };
    std::string s = svg_open(X0 + PW + 52 + 7 * int(longest), std::max(Y0 + PH + 50, Y0 + 20 * int(curves.size())));
    put(s, "<text x=\"%d\" y=\"20\">%s</text>\n", X0, title.c_str());
    put(s, "<path d=\"M%d %dV%dH%d\" fill=\"none\" stroke=\"#333\"/>\n", X0, Y0, Y0 + PH, X0 + PW);
    for (double l = ybottom; l <= ytop + 1e-9; l += ystep) {
        put(s, "<path d=\"M%d %.1fH%d\" stroke=\"#eee\"/>\n", X0 + 1, Y(l), X0 + PW);
        put(s, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", X0 - 6, Y(l) + 4, l);
    }
    for (double e = 1; e <= max_epoch + 1e-9; e += xstep)
        put(s, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n", X(e), Y0 + PH + 16, e);
    put(s, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">epoch</text>\n", X0 + PW / 2, Y0 + PH + 36);
    put(s, "<text transform=\"translate(16,%d) rotate(-90)\" text-anchor=\"middle\">%s</text>\n", Y0 + PH / 2,
        column == 2 ? "validation accuracy" : "mean training loss");
    const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
    for (size_t k = 0; k < curves.size(); ++k) {
        const Curve& c = curves[k];
        const char* col = colours[k % 6];
        std::string pts;
        for (size_t i = 0; i < c.epoch.size(); ++i) put(pts, "%.1f,%.1f ", X(c.epoch[i]), Y(c.loss[i]));
        const char* dash = k >= 6 ? " stroke-dasharray=\"6 3\"" : "";
        put(s, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"%s\"/>\n", col, dash,
            pts.c_str());
        for (size_t i = 0; i < c.epoch.size(); ++i)
            put(s, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", X(c.epoch[i]), Y(c.loss[i]), col);
        const int ky = Y0 + 10 + 20 * int(k);  // the legend, right of the plot
        put(s, "<path d=\"M%d %dh20\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", X0 + PW + 16, ky, col, dash);
        put(s, "<text x=\"%d\" y=\"%d\">%s</text>\n", X0 + PW + 42, ky + 4, c.name.c_str());
    }
    save(out, s);
}

// ## The attention map
//
// The CSV of ./attention --attention-map: a header, then 2401 rows
// image,label,predicted,probability,query,key,weight, queries then keys in
// order, the first four columns the same on every row. The matrix A has
// query i in row i; nine significant digits give back the program's float32
// exactly, so the sums below are the ones the program would make.
struct AttentionMap {
    int image = -1, label = -1, predicted = -1;
    double probability = 0;
    std::vector<float> A = std::vector<float>(49 * 49);  // (query, key)
};

AttentionMap read_attention_map(const std::string& path) {
    std::ifstream f(path);
    if (!f) throw nn::Error(nn::str(path, ": cannot read"));
    std::string line;
    const std::string header = "image,label,predicted,probability,query,key,weight";
    if (!std::getline(f, line) || line != header)
        throw nn::Error(nn::str(path, ":1: expected the header '", header, "'"));
    AttentionMap m;
    for (int r = 0; r < 49 * 49; ++r) {
        int image, label, predicted, query, key;
        double probability;
        float w;
        char c[7] = {};
        std::istringstream row;
        const bool got = bool(std::getline(f, line));
        row.str(line);
        if (!got || !(row >> image >> c[0] >> label >> c[1] >> predicted >> c[2] >> probability >> c[3] >> query >>
                      c[4] >> key >> c[5] >> w) ||
            std::string(c) != ",,,,,," || !row.eof() || query != r / 49 || key != r % 49 ||
            (r > 0 && (image != m.image || label != m.label || predicted != m.predicted ||
                       probability != m.probability)) ||
            label < 0 || label > 9 || predicted < 0 || predicted > 9 || !(w >= 0 && w <= 1))
            throw nn::Error(nn::str(path, ":", r + 2, ": expected ", r == 0 ? "" : nn::str(m.image, ",", m.label, ",",
                                    m.predicted, ",", m.probability, ","), r / 49, ",", r % 49,
                                    ",WEIGHT (0..1), got '", got ? line : "end of file", "'"));
        m.image = image, m.label = label, m.predicted = predicted, m.probability = probability;
        m.A[r] = w;
    }
    if (std::getline(f, line)) throw nn::Error(nn::str(path, ":", 49 * 49 + 2, ": expected the end of the file"));
    return m;
}

// Colours are mixed, not made transparent, so that every SVG viewer draws
// them alike: weight 0 is white, weight 1 the red #c0392b.
void red(std::string& out, double w) {
    auto mix = [w](int c) { return int(std::lround(255.0 + (c - 255.0) * std::clamp(w, 0.0, 1.0))); };
    put(out, "#%02x%02x%02x", mix(0xc0), mix(0x39), mix(0x2b));
}

// Three panels of 7x7 patches (chapter 4 describes them): the image; the
// attention each patch receives, averaged over the 49 queries, with the pen
// stroke dotted on top; and each query's own row of A, a small 7x7 map at the
// query's position. The image comes from MNIST, and its label must be the
// CSV's: a map of another data set's image 0 would be drawn on the wrong digit.
void attention(const std::string& csv, const std::string& out) {
    const AttentionMap map = read_attention_map(csv);
    nn::Split test;
    if (!load_test(test)) return;
    if (map.image >= test.n || test.y[map.image] != map.label)
        throw nn::Error(nn::str(csv, ": image ", map.image, " has label ", map.label, ", but MNIST's test image ",
                                map.image, map.image < test.n ? nn::str(" is a ", int(test.y[map.image])) :
                                nn::str(" does not exist (", test.n, " images)")));
    constexpr int N = 49, GRID = 7;
    const float* A = map.A.data();
    std::vector<float> img(784);
    for (int i = 0; i < 784; ++i) img[i] = nn::pixel(test.pixels[size_t(map.image) * 784 + i]);
    float received[N] = {}, most = 0.0f;
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) received[j] += A[i * N + j] / float(N);
    for (int j = 0; j < N; ++j) most = std::max(most, received[j]);

    const int cell = 32, side = GRID * cell, gap = 24, top = 44;  // a patch is 32 px, a panel 224
    const int left[3] = {10, 10 + side + gap, 10 + 2 * (side + gap)};
    std::string s;
    put(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
           "font-family=\"sans-serif\" font-size=\"13\">\n", left[2] + side + 10, top + side + 30);
    put(s, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    put(s, "<text x=\"10\" y=\"20\">MNIST test image %d: label %d, predicted %d (p = %.2f)</text>\n", map.image,
        map.label, map.predicted, map.probability);
    put(s, "<defs><g id=\"digit\">\n");  // every inked pixel, in its grey
    for (int py = 0; py < 28; ++py)
        for (int px = 0; px < 28; ++px)
            if (const int g = int(std::lround(255.0 * (1.0 - img[py * 28 + px]))); g < 255)
                put(s, "<rect x=\"%d\" y=\"%d\" width=\"8\" height=\"8\" fill=\"#%02x%02x%02x\"/>\n", px * 8, py * 8, g,
                    g, g);
    put(s, "</g><g id=\"stroke\">\n");  // the pen stroke only, as small dots over the heat
    for (int py = 0; py < 28; ++py)
        for (int px = 0; px < 28; ++px)
            if (img[py * 28 + px] >= 0.5f)
                put(s, "<rect x=\"%d\" y=\"%d\" width=\"4\" height=\"4\" fill=\"#333\"/>\n", px * 8 + 2, py * 8 + 2);
    put(s, "</g></defs>\n");
    for (int panel = 0; panel < 3; ++panel) {
        put(s, "<g transform=\"translate(%d,%d)\">\n", left[panel], top);
        if (panel == 0) {
            put(s, "<use href=\"#digit\"/>\n");
        } else if (panel == 1) {
            for (int j = 0; j < N; ++j) {
                put(s, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"", (j % GRID) * cell,
                    (j / GRID) * cell, cell, cell);
                red(s, received[j] / most);
                put(s, "\"/>\n");
            }
            put(s, "<use href=\"#stroke\"/>\n");
        } else {
            const int mini = 4, inset = (cell - GRID * mini) / 2;  // a query's map: 7 cells of 4 px
            for (int i = 0; i < N; ++i) {
                const int ox = (i % GRID) * cell + inset, oy = (i / GRID) * cell + inset;
                float row_max = 0.0f;
                for (int j = 0; j < N; ++j) row_max = std::max(row_max, A[i * N + j]);
                put(s, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#ddd\" "
                       "stroke-width=\"0.5\"/>\n", ox, oy, GRID * mini, GRID * mini);
                for (int j = 0; j < N; ++j) {
                    const double w = A[i * N + j] / row_max;
                    if (w < 0.03) continue;  // white anyway
                    put(s, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"", ox + (j % GRID) * mini,
                        oy + (j / GRID) * mini, mini, mini);
                    red(s, w);
                    put(s, "\"/>\n");
                }
                put(s, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#2c7fb8\" "
                       "stroke-width=\"0.8\"/>\n", ox + (i % GRID) * mini, oy + (i / GRID) * mini, mini, mini);
            }
        }
        for (int g = 1; g < GRID && panel < 2; ++g)
            put(s, "<path d=\"M%d 0V%dM0 %dH%d\" stroke=\"#bbb\" stroke-width=\"0.5\"/>\n", g * cell, side, g * cell,
                side);
        put(s, "<rect width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n", side, side);
        put(s, "</g>\n");
    }
    const char* captions[3] = {"the image, 7x7 patches", "attention received (mean over queries)",
                               "where each patch looks (blue: itself)"};
    for (int panel = 0; panel < 3; ++panel)
        put(s, "<text x=\"%d\" y=\"%d\">%s</text>\n", left[panel], top + side + 20, captions[panel]);
    save(out, s);
}

int run(int argc, char** argv) {
    const std::string what = argc > 1 ? argv[1] : "";
    if (what == "digits" && argc == 3) digits(argv[2]);
    else if (what == "filters" && argc == 4) filters(argv[2], argv[3]);
    else if (what == "confusion" && argc == 5) confusion(argv[2], argv[3], argv[4]);
    else if (what == "loss" && argc >= 5) loss(argv[2], argv[3], std::vector<std::string>(argv + 4, argv + argc));
    else if (what == "val" && argc >= 5) loss(argv[2], argv[3], std::vector<std::string>(argv + 4, argv + argc), 2);
    else if (what == "attention" && argc == 4) attention(argv[2], argv[3]);
    else
        throw nn::Error("usage: figures digits OUT.svg | filters MODEL OUT.svg | confusion MODEL OUT.svg OUT.md | "
                        "loss OUT.svg TITLE LOG... | val OUT.svg TITLE LOG... | attention MAP.csv OUT.svg", 2);
    return 0;
}

}  // namespace fig

int main(int argc, char** argv) { return nn::guarded_main("figures", fig::run, argc, argv); }
