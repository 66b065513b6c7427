// Fuzz target: UTF-8 decoding + BERT normalisation + WordPiece (src/unicode.cpp, src/tokenizer.cpp),
// then both truncation policies and the special-token template (src/encode.cpp), on arbitrary bytes
// as prompt and response, with the real tokenizer of the bundle or checkpoint in
// ROUTERM_FUZZ_TOKENIZER_DIR (a folder holding tokenizer.json).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "error.hpp"
#include "json.hpp"
#include "encode.hpp"
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

// Input: [max_length byte][policy byte] prompt 0xFF response (0xFF never occurs in UTF-8; without it
// the whole input is the prompt and the response is empty). Invariants: ids in the vocabulary range,
// a pair and a router prompt never longer than their max_length, the same result twice.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const routerm::Tokenizer &tok = tokenizer();
    const std::string bytes(reinterpret_cast<const char *>(data), size);
    const long max_length = size > 0 ? 1 + data[0] : 128;   // 1..256: below the special tokens too
    const auto policy = size > 1 && (data[1] & 1) ? routerm::Truncation::KeepHead : routerm::Truncation::HeadTail;
    const std::string text = size > 2 ? bytes.substr(2) : std::string();
    const size_t cut = text.find('\xff');
    const std::string prompt = text.substr(0, cut), response = cut == std::string::npos ? "" : text.substr(cut + 1);
    try {
        std::vector<int64_t> p = tok.encode(prompt), r = tok.encode(response);
        for (const auto *ids : {&p, &r})
            for (int64_t id : *ids)
                if (id < 0 || id > 1000000) std::abort();   // an id no vocabulary holds: a finding
        if (tok.encode(prompt) != p) std::abort();          // not deterministic
        routerm::Encoded pair = routerm::encode_pair(tok.special(), p, r, max_length, policy);
        if (long(pair.ids.size()) > max_length || pair.ids.size() != pair.types.size()) std::abort();
        routerm::Encoded alone = routerm::encode_prompt(tok.special(), p, max_length);
        if (long(alone.ids.size()) > max_length) std::abort();
    } catch (const routerm::Error &) {   // a clear error (e.g. max_length below the special tokens) is an answer
    }
    return 0;
}
