// Fuzz target: the Unigram pipelines of src/tokenizer.cpp (added tokens, normalizers, pre-tokenizers,
// src/unigram.cpp) on any bytes, with the invariants of tokenizer_checks.hpp; and tokenizer.json loading.
// Input: [selector][pick] text. selector % 5 picks a tokenizer of kSpecs (make_tokenizers.py's
// folders in ROUTERM_FUZZ_TOKENIZERS), or, for 4, the rest of the input is a tokenizer.json to
// load (bad input must be refused with Error(ROUTERM_ERR_TOKENIZER)). Only unigram-no-unk (unk_id
// null) may throw on text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tokenizer_checks.hpp"

static const fuzz::Spec kSpecs[] = {
    {"unigram-deberta", fuzz::Decode::None, false},             // Strip, NFKC, Replace, Metaspace; "[ITEM]" after NFKC
    {"unigram-byte-fallback", fuzz::Decode::SpacesNoLt, false}, // no normalizer, Metaspace, <0xXX> fallback
    {"unigram-no-unk", fuzz::Decode::None, true},               // unk_id null; NFKD, StripAccents, Lowercase, Digits
    {"unigram-prepend", fuzz::Decode::None, false},             // Prepend("▁") + Replace, a segment is one word
};
static constexpr size_t kModes = sizeof kSpecs / sizeof kSpecs[0] + 1;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const auto &cases = fuzz::cases(kSpecs);
    if (size < 2) return 0;
    const std::string text(reinterpret_cast<const char *>(data) + 2, size - 2);
    size_t mode = data[0] % kModes;
    if (mode == cases.size()) fuzz::check_load(std::string(reinterpret_cast<const char *>(data) + 1, size - 1));
    else fuzz::check_text(cases[mode], text, data[1]);
    return 0;
}
