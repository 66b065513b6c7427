// A small JSON reader (RFC 8259) for manifest.json, tokenizer.json and the CLI's input lines.
// Strings are kept as UTF-8; \u escapes of lone surrogates become U+FFFD (as core.text does).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace routerm::json {

// Deferred: an object or array kept as its JSON text (in `string`), parsed when read through
// each_member / each_item (tokenizer.json's vocabularies and merges: no tree of 150k values).
enum class Type { Null, Bool, Number, String, Array, Object, Deferred };

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
// The same, keeping every object or array that is the value of a member named in `deferred` (at
// any depth) as Type::Deferred; its syntax is checked when it is read.
Value parse(const std::string &text, const std::vector<std::string> &deferred);

// Each member of an object (Object or Deferred), in document order; each item of an array. A
// Deferred value is parsed as it is read: malformed text throws std::runtime_error there.
void each_member(const Value &v, const std::function<void(const std::string &, const Value &)> &f);
void each_item(const Value &v, const std::function<void(const Value &)> &f);

// `"..."` with JSON escapes, for writing output.
std::string quote(const std::string &utf8);

}  // namespace routerm::json
