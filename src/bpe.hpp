// The BPE model, as Hugging Face tokenizers' models::bpe applies it (no dropout).
//
// tokenizer.json: {"type": "BPE", "vocab": {token: id}, "merges": ["a b", ...] or [["a", "b"], ...],
// "unk_token", "fuse_unk", "byte_fallback", "ignore_merges", "continuing_subword_prefix",
// "end_of_word_suffix", "dropout": null}. For one word:
//   * ignore_merges and the whole word is a token: that token;
//   * else one symbol a character (a byte for byte-level BPE), the prefix on all but the first,
//     the suffix on the last; a character not in the vocabulary becomes, with byte_fallback, the
//     "<0xXX>" tokens of its UTF-8 bytes when all exist, else the unk token (runs fused when
//     fuse_unk), or nothing when there is no unk token;
//   * then, repeatedly, the adjacent pair of lowest merge rank is merged (the leftmost of equal
//     ranks), until no adjacent pair has a merge.
// Byte-level BPE (a ByteLevel pre-tokenizer): the vocabulary is written in GPT-2's byte-to-character
// alphabet; it is read back into bytes at load, so a word's UTF-8 bytes are its symbols directly.
#pragma once

#include <memory>
#include <string>

#include "json.hpp"
#include "model.hpp"

namespace routerm {

// The BPE model of tokenizer.json's "model" object; `byte_level` when the pre-tokenizer ends with
// ByteLevel. Error(ROUTERM_ERR_TOKENIZER) naming `where` and the field when it is malformed (a merge
// of tokens not in the vocabulary, dropout set, ...).
std::unique_ptr<Model> load_bpe(const json::Value &model, const std::string &where, bool byte_level);

}  // namespace routerm
