// Fuzz target: UTF-8 decoding + BERT normalisation + WordPiece (src/unicode.cpp, src/tokenizer.cpp)
// on arbitrary bytes, with the real tokenizer of the bundle or checkpoint in ROUTERM_FUZZ_TOKENIZER_DIR
// (a folder holding tokenizer.json). Every produced id must be inside the vocabulary.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "error.hpp"
#include "json.hpp"
#include "tokenizer.hpp"

static const routerm::Tokenizer &tokenizer() {
    static const routerm::Tokenizer tok = [] {
        const char *dir = std::getenv("ROUTERM_FUZZ_TOKENIZER_DIR");
        if (!dir) {
            std::fprintf(stderr, "set ROUTERM_FUZZ_TOKENIZER_DIR to a folder with tokenizer.json\n");
            std::abort();
        }
        routerm::json::Value spec = routerm::json::parse(
            R"({"kind": "wordpiece", "pad_token_id": 0, "do_lower_case": true})");
        return routerm::Tokenizer::load(dir, spec);
    }();
    return tok;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const routerm::Tokenizer &tok = tokenizer();
    try {
        std::vector<int64_t> ids = tok.encode(std::string(reinterpret_cast<const char *>(data), size));
        for (int64_t id : ids)
            if (id < 0 || id > 1000000) std::abort();   // an id no vocabulary holds: a finding
    } catch (const routerm::Error &) {   // a clear error naming the input is an acceptable answer
    }
    return 0;
}
