// The model step of a tokenizer.json pipeline: one pre-tokenized word -> token ids.
//
// Each model (WordPiece, BPE, Unigram) is read from tokenizer.json's "model" object by its own
// load function and encodes one word at a time, as Hugging Face tokenizers' Model::tokenize does
// for each pre-tokenized split. The word is UTF-8 (normalized and pre-tokenized already); for a
// byte-level BPE it is the word's raw bytes (the ByteLevel byte-to-char mapping is folded into the
// BPE vocabulary at load, src/bpe.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace routerm {

class Model {
public:
    virtual ~Model() = default;
    // Append the ids of one word to `out`. Throws Error(ROUTERM_ERR_TOKENIZER) only where tokenizers
    // fails the encode too (a Unigram word that needs an unknown piece when the model has no unk_id).
    virtual void encode(std::string_view word, std::vector<int64_t> &out) const = 0;
};

}  // namespace routerm
