#include "added_tokens.hpp"

#include <algorithm>

#include "error.hpp"
#include "unicode.hpp"

namespace routerm {

namespace {

[[noreturn]] void bad(const std::string &where, const std::string &what) {
    throw Error(ROUTERM_ERR_TOKENIZER, where + ": " + what);
}

bool on(const json::Value &v, const char *key) {
    const json::Value *f = v.find(key);
    return f && f->is(json::Type::Bool) && f->boolean;
}

// The code point ending at byte `end` of valid UTF-8 `s`, and where it begins.
uint32_t before(const std::string &s, size_t end, size_t &begin) {
    begin = end - 1;
    while (begin > 0 && (static_cast<unsigned char>(s[begin]) & 0xC0) == 0x80) --begin;
    return unicode::decode_utf8(s.data() + begin, end - begin)[0];
}

uint32_t at(const std::string &s, size_t pos, size_t &end) {
    unsigned char c = s[pos];
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    end = std::min(s.size(), pos + len);
    return unicode::decode_utf8(s.data() + pos, end - pos)[0];
}

bool white(uint32_t cp) { return unicode::flags(cp) & unicode::kSpace; }

}  // namespace

AddedTokens AddedTokens::load(const json::Value &list, const std::string &where) {
    AddedTokens out;
    if (list.is(json::Type::Null)) return out;
    if (!list.is(json::Type::Array)) bad(where, "field 'added_tokens' is not a list");
    for (const json::Value &a : list.array) {
        const json::Value *content = a.find("content"), *id = a.find("id");
        if (!content || !content->is(json::Type::String) || !id || !id->integral)
            bad(where, "an added token has no 'content' string or integer 'id'");
        if (on(a, "single_word"))
            bad(where, "added token '" + content->string + "' is single_word, which the C library does not implement");
        if (content->string.empty()) continue;
        Token t{content->string, id->integer, on(a, "lstrip"), on(a, "rstrip")};
        (on(a, "normalized") ? out.normalized : out.raw).push_back(std::move(t));
    }
    // Longest first: at one position the longest token wins.
    for (auto *set : {&out.raw, &out.normalized})
        std::stable_sort(set->begin(), set->end(), [](const Token &x, const Token &y) { return x.content.size() > y.content.size(); });
    return out;
}

std::vector<AddedTokens::Segment> AddedTokens::split(const std::vector<Token> &tokens, const std::string &text) {
    std::vector<Segment> out;
    if (tokens.empty()) {
        if (!text.empty()) out.push_back({-1, 0, text.size()});
        return out;
    }
    bool first[256] = {};
    for (const Token &t : tokens) first[static_cast<unsigned char>(t.content[0])] = true;
    size_t seg = 0, pos = 0;
    while (pos < text.size()) {
        const Token *hit = nullptr;
        if (first[static_cast<unsigned char>(text[pos])])
            for (const Token &t : tokens)
                if (text.compare(pos, t.content.size(), t.content) == 0) { hit = &t; break; }
        if (!hit) { ++pos; continue; }
        size_t begin = pos, end = pos + hit->content.size(), b, e;
        if (hit->lstrip)
            while (begin > seg && white(before(text, begin, b))) begin = b;
        if (hit->rstrip)
            while (end < text.size() && white(at(text, end, e))) end = e;
        if (begin > seg) out.push_back({-1, seg, begin});
        out.push_back({hit->id, begin, end});
        pos = seg = end;
    }
    if (seg < text.size()) out.push_back({-1, seg, text.size()});
    return out;
}

}  // namespace routerm
