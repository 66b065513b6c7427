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

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fuzz::run_input(kSpecs, data, size); }
