// One input line of routerm-score: {"prompt": side, "response": side, "id": any (optional)}, where
// a side is a string or a list of {"role": str, "content": str} messages (TRL's conversational form).
//
// parse_pair_line throws std::runtime_error with a message naming what is wrong (not JSON, a
// missing or mistyped field or message, a U+0000 inside a text). Texts with U+0000 are refused: the
// C API takes NUL-terminated strings, so such a text would be scored cut at the NUL, a silent wrong reward.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "json.hpp"

namespace routerm::cli {

struct Side {
    bool is_messages = false;
    std::string text;                                             // when not messages
    std::vector<std::pair<std::string, std::string>> messages;    // (role, content), at least one
    bool holds_nul() const;
};

struct Row {
    std::string id_json;   // the "id" value re-encoded as JSON (string, number or null), or empty
    Side prompt, response;
};

std::string encode_id(const json::Value &v);
Row parse_pair_line(const std::string &line);

}  // namespace routerm::cli
