#include "json.hpp"
#include "unicode.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>

namespace routerm::json {

const Value *Value::find(const std::string &key) const {
    if (type != Type::Object) return nullptr;
    auto it = object.find(key);
    return it == object.end() ? nullptr : &it->second;
}

namespace {

class Parser {
public:
    explicit Parser(const std::string &text, const std::vector<std::string> *deferred = nullptr)
        : s_(text), deferred_(deferred) {}

    Value document() {
        Value v = value(0);
        skip_space();
        if (pos_ != s_.size()) fail("trailing characters");
        return v;
    }

    // A deferred container's members (or items, key empty) one at a time, then the end of the text.
    void each(bool object, const std::function<void(const std::string &, const Value &)> &f) {
        skip_space();
        char open = object ? '{' : '[', close = object ? '}' : ']';
        if (pos_ >= s_.size() || s_[pos_] != open) fail(object ? "expected an object" : "expected an array");
        ++pos_;
        skip_space();
        if (pos_ < s_.size() && s_[pos_] == close) { ++pos_; return; }
        std::string key;
        for (;;) {
            if (object) {
                skip_space();
                if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a string key");
                key = string();
                skip_space();
                if (pos_ >= s_.size() || s_[pos_] != ':') fail("expected ':'");
                ++pos_;
            }
            f(key, value(1));
            skip_space();
            if (pos_ < s_.size() && s_[pos_] == ',') { ++pos_; continue; }
            if (pos_ < s_.size() && s_[pos_] == close) { ++pos_; break; }
            fail(object ? "expected ',' or '}'" : "expected ',' or ']'");
        }
        skip_space();
        if (pos_ != s_.size()) fail("trailing characters");
    }

private:
    static constexpr int kMaxDepth = 256;
    const std::string &s_;
    const std::vector<std::string> *deferred_;
    size_t pos_ = 0;

    // The JSON text of the object or array at pos_, skipped by bracket matching (strings skipped
    // whole); it is parsed when read (each_member / each_item).
    Value deferred_value() {
        size_t start = pos_;
        int depth = 0;
        while (pos_ < s_.size()) {
            char c = s_[pos_++];
            if (c == '"') {
                while (pos_ < s_.size() && s_[pos_] != '"') pos_ += s_[pos_] == '\\' ? 2 : 1;
                if (pos_ >= s_.size()) fail("unterminated string");
                ++pos_;
            } else if (c == '{' || c == '[') {
                ++depth;
            } else if ((c == '}' || c == ']') && --depth == 0) {
                Value v;
                v.type = Type::Deferred;
                v.string.assign(s_, start, pos_ - start);
                return v;
            }
        }
        fail("unterminated container");
    }

    [[noreturn]] void fail(const char *what) const {
        throw std::runtime_error(std::string("invalid JSON: ") + what + " at byte " + std::to_string(pos_));
    }
    void skip_space() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
    }
    bool literal(const char *word) {
        size_t n = std::char_traits<char>::length(word);
        if (s_.compare(pos_, n, word) != 0) return false;
        pos_ += n;
        return true;
    }

    Value value(int depth) {
        if (depth > kMaxDepth) fail("nesting too deep");
        skip_space();
        if (pos_ >= s_.size()) fail("unexpected end");
        Value v;
        char c = s_[pos_];
        if (c == '{') {
            v.type = Type::Object;
            ++pos_;
            skip_space();
            if (pos_ < s_.size() && s_[pos_] == '}') { ++pos_; return v; }
            for (;;) {
                skip_space();
                if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a string key");
                std::string key = string();
                skip_space();
                if (pos_ >= s_.size() || s_[pos_] != ':') fail("expected ':'");
                ++pos_;
                skip_space();
                bool defer = deferred_ && pos_ < s_.size() && (s_[pos_] == '{' || s_[pos_] == '[') &&
                             std::find(deferred_->begin(), deferred_->end(), key) != deferred_->end();
                Value item = defer ? deferred_value() : value(depth + 1);
                auto [it, fresh] = v.object.try_emplace(std::move(key));
                if (fresh) v.keys.push_back(it->first);
                it->second = std::move(item);   // duplicate keys: the last wins, as in Python
                skip_space();
                if (pos_ < s_.size() && s_[pos_] == ',') { ++pos_; continue; }
                if (pos_ < s_.size() && s_[pos_] == '}') { ++pos_; return v; }
                fail("expected ',' or '}'");
            }
        }
        if (c == '[') {
            v.type = Type::Array;
            ++pos_;
            skip_space();
            if (pos_ < s_.size() && s_[pos_] == ']') { ++pos_; return v; }
            for (;;) {
                v.array.push_back(value(depth + 1));
                skip_space();
                if (pos_ < s_.size() && s_[pos_] == ',') { ++pos_; continue; }
                if (pos_ < s_.size() && s_[pos_] == ']') { ++pos_; return v; }
                fail("expected ',' or ']'");
            }
        }
        if (c == '"') { v.type = Type::String; v.string = string(); return v; }
        if (literal("true")) { v.type = Type::Bool; v.boolean = true; return v; }
        if (literal("false")) { v.type = Type::Bool; return v; }
        if (literal("null")) return v;
        if (c == '-' || (c >= '0' && c <= '9')) return number();
        fail("unexpected character");
    }

    Value number() {
        size_t start = pos_;
        bool integral = true;
        if (s_[pos_] == '-') ++pos_;
        auto digits = [&] {
            size_t d = pos_;
            while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
            if (pos_ == d) fail("expected a digit");
        };
        if (s_.compare(pos_, 1, "0") == 0 && pos_ + 1 < s_.size() && s_[pos_ + 1] >= '0' && s_[pos_ + 1] <= '9')
            fail("leading zero");
        digits();
        if (pos_ < s_.size() && s_[pos_] == '.') { ++pos_; integral = false; digits(); }
        if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
            ++pos_; integral = false;
            if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
            digits();
        }
        std::string text = s_.substr(start, pos_ - start);
        Value v;
        v.type = Type::Number;
        if (integral && text.size() <= 18) {   // exact in int64 and, below 2^53, in double: no strtod
            long long i = 0;
            for (char d : text) if (d != '-') i = i * 10 + (d - '0');
            v.integer = text[0] == '-' ? -i : i;
            v.number = double(v.integer);
            v.integral = true;
            v.literal = std::move(text);
            return v;
        }
        v.number = std::strtod(text.c_str(), nullptr);
        v.literal = text;
        if (integral) {
            errno = 0;
            long long i = std::strtoll(text.c_str(), nullptr, 10);
            v.integral = errno == 0;
            v.integer = i;
        }
        return v;
    }

    uint32_t hex4() {
        if (pos_ + 4 > s_.size()) fail("short \\u escape");
        uint32_t x = 0;
        for (int i = 0; i < 4; ++i) {
            char h = s_[pos_++];
            x <<= 4;
            if (h >= '0' && h <= '9') x |= h - '0';
            else if (h >= 'a' && h <= 'f') x |= h - 'a' + 10;
            else if (h >= 'A' && h <= 'F') x |= h - 'A' + 10;
            else fail("bad \\u escape");
        }
        return x;
    }

    std::string string() {
        ++pos_;   // opening quote
        std::string out;
        for (;;) {
            if (pos_ >= s_.size()) fail("unterminated string");
            size_t run = pos_;   // the plain characters up to a quote, escape or control, in one append
            while (run < s_.size() && s_[run] != '"' && s_[run] != '\\' && static_cast<unsigned char>(s_[run]) >= 0x20) ++run;
            out.append(s_, pos_, run - pos_);
            pos_ = run;
            if (pos_ >= s_.size()) fail("unterminated string");
            char c = s_[pos_++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
            if (pos_ >= s_.size()) fail("unterminated escape");
            char e = s_[pos_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    uint32_t cp = hex4();
                    if (cp >= 0xD800 && cp <= 0xDBFF && s_.compare(pos_, 2, "\\u") == 0) {
                        size_t save = pos_;
                        pos_ += 2;
                        uint32_t lo = hex4();
                        if (lo >= 0xDC00 && lo <= 0xDFFF) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        else pos_ = save;   // lone high surrogate; the next escape stands alone
                    }
                    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
                    unicode::append_utf8(out, cp);
                    break;
                }
                default: fail("unknown escape");
            }
        }
    }
};

}  // namespace

Value parse(const std::string &text) { return Parser(text).document(); }

Value parse(const std::string &text, const std::vector<std::string> &deferred) { return Parser(text, &deferred).document(); }

void each_member(const Value &v, const std::function<void(const std::string &, const Value &)> &f) {
    if (v.is(Type::Object)) {
        for (const std::string &k : v.keys) f(k, v.object.at(k));
    } else if (v.is(Type::Deferred)) {
        Parser(v.string).each(true, f);
    } else {
        throw std::runtime_error("invalid JSON: expected an object");
    }
}

void each_item(const Value &v, const std::function<void(const Value &)> &f) {
    if (v.is(Type::Array)) {
        for (const Value &x : v.array) f(x);
    } else if (v.is(Type::Deferred)) {
        Parser(v.string).each(false, [&](const std::string &, const Value &x) { f(x); });
    } else {
        throw std::runtime_error("invalid JSON: expected an array");
    }
}

std::string quote(const std::string &utf8) {
    static const char *hex = "0123456789abcdef";
    std::string out = "\"";
    for (unsigned char c : utf8) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) { out += "\\u00"; out += hex[c >> 4]; out += hex[c & 15]; }
                else out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

}  // namespace routerm::json
