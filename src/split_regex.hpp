// The pre-tokenizer regexes of the byte-level BPE families, as hand-written scanners that match
// exactly what tokenizers' Oniguruma matches (tables from src/unicode_tables.inc, read off tokenizers
// itself: \p{L}, \p{N}, \s and the case folds of (?i:...)). Why scanners and not a regex library:
// they need no system dependency, they are an order of magnitude faster than a backtracking engine
// for these fixed patterns, and parity with tokenizers is measured over millions of strings
// (scripts/tokenizer_parity.py), which a different engine's Unicode tables would not guarantee.
//
// Each pattern below is recognised by its exact text in tokenizer.json; every other regex is refused.
//   GPT-2:    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   Llama-3:  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//             \s*[\r\n]+|\s+(?!\S)|\s+
//   Qwen2:    as Llama-3 with \p{N} for \p{N}{1,3}
// Every code point starts a match of each of them, so a scan is a sequence of back-to-back matches.
#pragma once

#include <cstddef>
#include <string>

namespace routerm {

enum class SplitPattern { Gpt2, Llama3, Qwen2 };

// The scanner of a regex as tokenizer.json writes it; false when the library has none.
bool split_pattern_from_regex(const std::string &regex, SplitPattern &pattern);

// The end of the match that starts at s[i] (i < n): always > i.
size_t match_end(SplitPattern pattern, const char32_t *s, size_t i, size_t n);

}  // namespace routerm
