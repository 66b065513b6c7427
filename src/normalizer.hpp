// tokenizer.json's "normalizer": text (code points) -> normalized text, as Hugging Face tokenizers'
// normalizers do it (offsets are not tracked: the library needs ids only).
//
// Implemented types (anything else is refused at load, naming the type):
//   BertNormalizer {clean_text, handle_chinese_chars, strip_accents (null: = lowercase), lowercase}
//   NFC, NFD, NFKC, NFKD       Unicode normalization forms, tables generated from tokenizers itself
//   Lowercase                  Rust char::to_lowercase per code point
//   StripAccents               drops combining marks (category M: Mn Mc Me, as tokenizers' is_combining_mark)
//   Strip {strip_left, strip_right}   Unicode White_Space at either end
//   Replace {pattern: {"String": s}, content}   every non-overlapping s, left to right
//   Prepend {prepend}          before a non-empty text
//   Sequence {normalizers}     in order
// Replace with a {"Regex": ...} pattern and Precompiled (SentencePiece's charsmap) are refused.
// Every Unicode table is read off tokenizers itself (its Unicode is older than Python's unicodedata:
// src/normalize_tables.inc lists the differences); the output matches tokenizers code point for code point.
#pragma once

#include <memory>
#include <string>

#include "json.hpp"

namespace routerm {

class Normalizer {
public:
    virtual ~Normalizer() = default;
    virtual void normalize(std::u32string &text) const = 0;
};

// The normalizer of tokenizer.json's "normalizer" value; nullptr for JSON null (no normalizer).
// Error(ROUTERM_ERR_TOKENIZER) naming `where` and the type when it is not implemented.
std::unique_ptr<Normalizer> load_normalizer(const json::Value &value, const std::string &where);

}  // namespace routerm
