// The WordPiece model, as Hugging Face tokenizers' models::wordpiece applies it (BERT, MiniLM).
//
// tokenizer.json: {"type": "WordPiece", "vocab": {token: id}, "unk_token",
// "continuing_subword_prefix", "max_input_chars_per_word"}. For one word: greedy longest match
// from its start, every later piece prefixed ("##"); a word with no full cover, or longer than
// max_input_chars_per_word characters, is the unk token alone.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "json.hpp"
#include "model.hpp"

namespace routerm {

std::unique_ptr<Model> load_wordpiece(const json::Value &model, const std::string &where);

// A slow-tokenizer folder's vocab.txt (one token a line, id = line number) with "[UNK]", "##" and
// 100 characters a word, as BertTokenizerFast builds it.
std::unique_ptr<Model> wordpiece_from_vocab(const std::unordered_map<std::string, int64_t> &vocab, const std::string &where);

}  // namespace routerm
