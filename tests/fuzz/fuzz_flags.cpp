// Fuzz target: the flag parser. The input is split at NUL bytes into argv
// words, and parsed against a table with every kind of flag.
#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<std::string> words = {"fuzz"};
    std::string cur;
    for (size_t i = 0; i < size; ++i)
        if (data[i] == 0) words.push_back(cur), cur.clear();
        else cur += char(data[i]);
    words.push_back(cur);
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());
    int epochs = 3;
    float lr = 0.01f;
    std::string text;
    bool on = false;
    uint64_t seed = 1;
    std::vector<nn::Flag> flags = {
        {.name = "--epochs", .help = "", .integer = &epochs, .lo = 1, .hi = 100000},
        {.name = "--lr", .help = "", .number = &lr, .lo = 0, .hi = 1e6},
        {.name = "--data", .help = "", .text = &text},
        {.name = "--eval", .help = "", .on = &on},
        {.name = "--seed", .help = "", .seed = &seed},
    };
    try {
        if (words.size() > 1 && words[1] == "--help") return 0;  // prints the help; nothing to check
        nn::parse_flags(int(argv.size()), argv.data(), "fuzz", "", flags);
        if (epochs < 1 || epochs > 100000 || !(lr > 0) || lr > 1e6f) std::abort();  // accepted means in range
    } catch (const nn::Error& e) {
        if (e.code != 2) std::abort();  // a command-line error always exits 2
    }
    return 0;
}
