// A small mutation-fuzzing driver for LLVMFuzzerTestOneInput targets, for builds without libFuzzer
// (g++): `target SECONDS SEED...`, each SEED a file or a folder of files (a corpus). Runs the empty
// input and every seed once, in order (with SECONDS 0 only that: a corpus replay, as the campaign's
// line coverage does), then applies random byte flips, inserts, deletes, duplications, splices and
// "interesting" bytes to them until SECONDS pass; deterministic (fixed seed). Built with
// -fsanitize=address,undefined, any memory or UB error aborts with a report and a non-zero exit;
// the input that did it is written to ./crash-input first. With clang, build the same targets with
// -fsanitize=fuzzer instead (no driver) for coverage-guided fuzzing (tests/fuzz/run.sh does both).
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static std::vector<uint8_t> current;

static void save_crash(int) {
    std::ofstream("crash-input", std::ios::binary).write(reinterpret_cast<const char *>(current.data()),
                                                          std::streamsize(current.size()));
}

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s SECONDS [SEED_FILE_OR_FOLDER...]\n", argv[0]);
        return 2;
    }
    double seconds = std::atof(argv[1]);
    std::vector<std::vector<uint8_t>> corpus{{}};
    std::vector<std::string> files;
    for (int i = 2; i < argc; ++i) {
        if (!std::filesystem::is_directory(argv[i])) { files.emplace_back(argv[i]); continue; }
        std::vector<std::string> inside;
        for (const auto &entry : std::filesystem::directory_iterator(argv[i]))
            if (entry.is_regular_file()) inside.push_back(entry.path().string());
        std::sort(inside.begin(), inside.end());
        files.insert(files.end(), inside.begin(), inside.end());
    }
    for (const std::string &file : files) {
        std::ifstream in(file, std::ios::binary);
        if (!in) {
            std::fprintf(stderr, "cannot read seed %s\n", file.c_str());
            return 2;
        }
        corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    std::signal(SIGABRT, save_crash);
    std::mt19937_64 rng(12345);
    const uint8_t interesting[] = {0x00, 0xff, 0x7f, 0x80, 0xc0, 0xe0, 0xf0, 0xf8, '"', '\\', '{', '}', '[', ']',
                                   ':', ',', '-', '0', '9', 'e', 'u', '#', ' ', '\n'};
    auto pick = [&](size_t n) { return n ? size_t(rng() % n) : size_t(0); };
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    long runs = 0;
    for (const auto &seed : corpus) {
        current = seed;
        LLVMFuzzerTestOneInput(current.data(), current.size());
        ++runs;
    }
    while (std::chrono::steady_clock::now() < deadline) {
        current = corpus[pick(corpus.size())];
        int edits = 1 + int(rng() % 8);
        for (int e = 0; e < edits; ++e) {
            size_t at = pick(current.size() + 1);
            switch (rng() % 6) {
                case 0: if (!current.empty()) current[pick(current.size())] ^= uint8_t(1u << (rng() % 8)); break;
                case 1: current.insert(current.begin() + long(at), uint8_t(rng())); break;
                case 2: if (!current.empty()) current.erase(current.begin() + long(pick(current.size()))); break;
                case 3: current.insert(current.begin() + long(at), interesting[pick(sizeof interesting)]); break;
                case 4: {   // duplicate a slice (deep nesting, long runs)
                    if (current.empty()) break;
                    size_t from = pick(current.size()), len = 1 + pick(std::min<size_t>(64, current.size() - from));
                    std::vector<uint8_t> slice(current.begin() + long(from), current.begin() + long(from + len));
                    for (int k = 0, n = 1 + int(rng() % 16); k < n; ++k)
                        current.insert(current.begin() + long(std::min(at, current.size())), slice.begin(), slice.end());
                    break;
                }
                default: {  // splice with another corpus entry
                    const auto &other = corpus[pick(corpus.size())];
                    if (other.empty()) break;
                    size_t from = pick(other.size());
                    current.insert(current.begin() + long(at), other.begin() + long(from), other.end());
                }
            }
            if (current.size() > (1u << 20)) current.resize(1u << 20);
        }
        LLVMFuzzerTestOneInput(current.data(), current.size());
        ++runs;
    }
    std::printf("%ld runs in %.0f s, no crash\n", runs, seconds);
    return 0;
}
