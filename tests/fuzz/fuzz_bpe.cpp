// Fuzz target: the BPE pipelines of src/tokenizer.cpp (added tokens, normalizers, pre-tokenizers,
// src/bpe.cpp) on any bytes, with the invariants of tokenizer_checks.hpp; and tokenizer.json loading.
// Input: [selector][pick] text. selector % 8 picks a tokenizer of kSpecs (make_tokenizers.py's
// folders in ROUTERM_FUZZ_TOKENIZERS), or, for 7, the rest of the input is a tokenizer.json to
// load (bad input must be refused with Error(ROUTERM_ERR_TOKENIZER)). BPE never throws on text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tokenizer_checks.hpp"

static const fuzz::Spec kSpecs[] = {
    {"bpe-gpt2", fuzz::Decode::Bytes, false},      // GPT-2 regex inside ByteLevel, a normalized added token
    {"bpe-llama3", fuzz::Decode::Bytes, false},    // Split(Llama-3 regex) + ByteLevel, ignore_merges
    {"bpe-qwen2", fuzz::Decode::None, false},      // NFC, Split(Qwen2 regex), lstrip/rstrip tokens, "café" after NFC
    {"bpe-gemma", fuzz::Decode::Spaces, false},    // Replace(" ", "▁"), Split("▁"), byte fallback, fuse_unk
    {"bpe-llama2", fuzz::Decode::Spaces, false},   // Prepend("▁") + Replace, no pre-tokenizer, byte fallback
    {"bpe-mistral", fuzz::Decode::Spaces, false},  // Metaspace(first, split=false), byte fallback
    {"bpe-suffix", fuzz::Decode::None, false},     // "</w>" word ends, Whitespace, NFD + StripAccents + Lowercase
};

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fuzz::run_input(kSpecs, data, size); }
