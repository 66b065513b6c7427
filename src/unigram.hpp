// The Unigram model (SentencePiece's, as Hugging Face tokenizers' models::unigram implements it):
// the most likely segmentation of a word under the vocabulary's log-probabilities (Viterbi).
//
// tokenizer.json: {"type": "Unigram", "unk_id": int | null, "vocab": [[piece, score], ...],
// "byte_fallback": bool}. For a word w (UTF-8):
//   * a lattice of every vocabulary piece that matches w at each character position (longest
//     common-prefix search in a trie of the pieces), scored by the piece's score;
//   * where no piece of one character starts, an unknown node of that one character, scored
//     min(score) - 10 (tokenizers' K_UNK_PENALTY);
//   * the best path (highest sum of scores; ties resolved exactly as tokenizers' encode_optimized);
//   * consecutive unknown pieces fused into one unk id (tokenizers always fuses them for Unigram);
//   * with byte_fallback, an unknown piece becomes the ids of "<0xXX>" for each of its UTF-8 bytes
//     instead, when the vocabulary has all of them;
//   * with unk_id null, a word that needs an unknown piece makes encode throw
//     Error(ROUTERM_ERR_TOKENIZER) (tokenizers fails such an encode too).
#pragma once

#include <memory>
#include <string>

#include "json.hpp"
#include "model.hpp"

namespace routerm {

// The Unigram model of tokenizer.json's "model" object; Error(ROUTERM_ERR_TOKENIZER) naming
// `where` and the field when the object is malformed (empty vocab, unk_id out of range, ...).
std::unique_ptr<Model> load_unigram(const json::Value &model, const std::string &where);

}  // namespace routerm
