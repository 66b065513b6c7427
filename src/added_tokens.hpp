// Added tokens (tokenizer.json's "added_tokens"): found in the text before the model sees it, each
// one its id, as tokenizers' AddedVocabulary splits text: leftmost-longest; a token marked
// "normalized" is found in the normalized text, the others in the raw text; "lstrip"/"rstrip"
// take the White_Space beside a match into it. "single_word" tokens are refused at load.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "json.hpp"

namespace routerm {

struct AddedTokens {
    struct Token {
        std::string content;
        int64_t id;
        bool lstrip, rstrip;
    };
    // One piece of a split text: a token's id, or text (id < 0).
    struct Segment {
        int64_t id;
        size_t begin, end;   // byte range of the text (without stripped white space)
    };

    std::vector<Token> raw, normalized;   // by content, each set matched on its own text

    static AddedTokens load(const json::Value &list, const std::string &where);
    bool empty() const { return raw.empty() && normalized.empty(); }
    // `text` (valid UTF-8) cut at the matches of `tokens` (raw or normalized).
    static std::vector<Segment> split(const std::vector<Token> &tokens, const std::string &text);
};

}  // namespace routerm
