// A small JSON reader (RFC 8259) for manifest.json, tokenizer.json and the CLI's input lines.
// Strings are kept as UTF-8; \u escapes of lone surrogates become U+FFFD (as core.text does).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace routerm::json {

enum class Type { Null, Bool, Number, String, Array, Object };

struct Value {
    Type type = Type::Null;
    bool boolean = false;
    double number = 0.0;
    bool integral = false;      // the literal had no fraction or exponent
    int64_t integer = 0;        // its value when integral and in range
    std::string literal;        // a number as written (valid JSON): echoes it exactly, even beyond double's range
    std::string string;
    std::vector<Value> array;
    std::map<std::string, Value> object;
    std::vector<std::string> keys;   // object keys in document order

    bool is(Type t) const { return type == t; }
    const Value *find(const std::string &key) const;   // nullptr when absent or not an object
};

// Parse a whole document; throws std::runtime_error("... at byte N") on malformed input.
Value parse(const std::string &text);

// `"..."` with JSON escapes, for writing output.
std::string quote(const std::string &utf8);

}  // namespace routerm::json
