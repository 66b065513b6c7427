// One input line of routerm-score: {"prompt": str, "response": str, "id": any (optional)}.
//
// parse_pair_line throws std::runtime_error with a message naming what is wrong (not JSON, a
// missing or non-string field, a U+0000 inside a text). Texts with U+0000 are refused: the C API
// takes NUL-terminated strings, so such a text would be scored cut at the NUL, a silent wrong reward.
#pragma once

#include <string>

#include "json.hpp"

namespace routerm::cli {

struct Row {
    std::string id_json;   // the "id" value re-encoded as JSON (string, number or null), or empty
    std::string prompt, response;
};

std::string encode_id(const json::Value &v);
Row parse_pair_line(const std::string &line);

}  // namespace routerm::cli
