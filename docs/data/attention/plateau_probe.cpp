// plateau_probe: what the attention network does in its first 500 SGD steps,
// at three learning rates. Prints, every 100 steps, the mean loss of those
// steps, the fraction of zero outputs of the embedding ReLU (E) and of the
// feed-forward ReLU (H) in the last batch, and the mean over the batch's
// attention rows of their largest weight (uniform attention: 1/49 = 0.020).
// Same initialisation, data order and arithmetic as ./attention --threads 1
// --val 6000 --seed 1. Build and run from the project root:
//
//   g++ -O3 -march=native -std=c++20 -fopenmp -ffp-contract=off -I. docs/data/attention/plateau_probe.cpp -o /tmp/plateau_probe -lz
//   /tmp/plateau_probe > docs/data/attention/plateau_probe.out
#define NN_TESTING
#include "attention.cpp"

int main() {
    nn::Split train, test;
    nn::load_mnist(nn::data_dir(""), train, test);
    for (float lr : {0.01f, 0.1f, 0.5f}) {
        Rng rng = nn::rng_new(1);
        Model m = init_model(rng, 64, 128, Pos::sinusoidal);
        Acts s = make_acts(32, 64, 128);  // one whole batch's activations, for the statistics
        std::vector<Acts> scratch = make_scratch(64, 128);
        std::vector<Work> work = make_work(groups_of(32), 64, 128);
        Transposed wt = make_transposed(64, 128);
        std::vector<int> index(54000);
        for (int i = 0; i < 54000; ++i) index[i] = i;
        nn::shuffle(rng, index);
        const std::vector<std::vector<float>*> params = tensors(m);
        double loss = 0;
        for (int step = 0; step < 500; ++step) {
            const int* batch = index.data() + step * 32;
            const bool report = (step + 1) % 100 == 0;
            if (report) {  // this step's forward pass, before its update, whole batch at once
                const View v = view(s, 0);
                patchify(train.pixels.data(), batch, 32, v.x, v.blank);
                forward(m, v, 32);
            }
            loss += train_step(m, params, wt, scratch, work, train, batch, 32, lr).loss;
            if (!report) continue;
            long zero_e = 0, zero_h = 0;
            for (float v : s.e) zero_e += v == 0.0f;
            for (float v : s.h) zero_h += v == 0.0f;
            double top = 0;
            for (int b = 0; b < 32; ++b)  // A is kept transposed: query i is column i of image b's block
                for (int i = 0; i < N; ++i) {
                    float most = 0.0f;
                    for (int j = 0; j < N; ++j) most = std::max(most, s.at[(long(b) * N + j) * NPAD + i]);
                    top += most;
                }
            std::printf("lr %.2f  step %3d  loss %.4f  E zero %.3f  H zero %.3f  mean max attention %.3f\n", lr,
                        step + 1, loss / (32 * 100), double(zero_e) / double(s.e.size()),
                        double(zero_h) / double(s.h.size()), top / (32 * N));
            loss = 0;
        }
    }
    return 0;
}
