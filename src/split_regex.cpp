#include "split_regex.hpp"

#include "unicode.hpp"

namespace routerm {

namespace {

constexpr const char *kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr const char *kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char *kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Character classes (ASCII answered without a table search).
inline uint16_t cls(char32_t c) { return unicode::flags(uint32_t(c)); }
inline bool is_letter(char32_t c) {
    if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    return cls(c) & unicode::kLetter;
}
inline bool is_number(char32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    return cls(c) & unicode::kNumber;
}
inline bool is_space(char32_t c) {
    if (c < 0x80) return c == ' ' || (c >= '\t' && c <= '\r');
    return cls(c) & unicode::kRegexSpace;
}
// [^\s\p{L}\p{N}]
inline bool is_other(char32_t c) { return !is_space(c) && !is_letter(c) && !is_number(c); }
inline bool is_newline(char32_t c) { return c == '\r' || c == '\n'; }

template <class Pred>
size_t run(const char32_t *s, size_t i, size_t n, Pred pred) {
    while (i < n && pred(s[i])) ++i;
    return i;
}

// 's 't 're 've 'm 'll 'd after the apostrophe at s[i]; 0 when none. `fold`: case-insensitively.
size_t contraction(const char32_t *s, size_t i, size_t n, bool fold) {
    auto is = [&](size_t k, char letter) {
        if (k >= n) return false;
        return fold ? unicode::folds_to(letter, uint32_t(s[k])) : s[k] == char32_t(letter);
    };
    if (s[i] != '\'') return 0;
    if (is(i + 1, 's') || is(i + 1, 't')) return i + 2;
    if ((is(i + 1, 'r') || is(i + 1, 'v')) && is(i + 2, 'e')) return i + 3;
    if (is(i + 1, 'm')) return i + 2;
    if (is(i + 1, 'l') && is(i + 2, 'l')) return i + 3;
    if (is(i + 1, 'd')) return i + 2;
    return 0;
}

// \s+(?!\S)|\s+ at a white space character: a run followed by a non-space keeps its last
// character for the next match (it then joins " ?\p{L}+" and the like), unless it is alone.
size_t space_run(const char32_t *s, size_t i, size_t n) {
    size_t j = run(s, i, n, is_space);
    if (j < n && j - i >= 2) return j - 1;
    return j;
}

size_t gpt2(const char32_t *s, size_t i, size_t n) {
    if (size_t e = contraction(s, i, n, false)) return e;
    char32_t c = s[i];
    size_t k = (c == ' ' && i + 1 < n) ? i + 1 : i;   // the optional leading space
    if (is_letter(s[k])) return run(s, k, n, is_letter);
    if (is_number(s[k])) return run(s, k, n, is_number);
    if (is_other(s[k])) return run(s, k, n, is_other);
    return space_run(s, i, n);
}

size_t llama3(const char32_t *s, size_t i, size_t n, size_t max_digits) {
    if (size_t e = contraction(s, i, n, true)) return e;
    char32_t c = s[i];
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!is_newline(c) && !is_letter(c) && !is_number(c) && i + 1 < n && is_letter(s[i + 1]))
        return run(s, i + 1, n, is_letter);
    if (is_letter(c)) return run(s, i, n, is_letter);
    // \p{N}{1,max}
    if (is_number(c)) {
        size_t j = i;
        while (j < n && j - i < max_digits && is_number(s[j])) ++j;
        return j;
    }
    //  ?[^\s\p{L}\p{N}]+[\r\n]*
    size_t k = (c == ' ' && i + 1 < n && is_other(s[i + 1])) ? i + 1 : i;
    if (is_other(s[k])) return run(s, run(s, k, n, is_other), n, is_newline);
    // \s*[\r\n]+ : up to the last line break of the white space run
    size_t j = run(s, i, n, is_space), last = n;
    for (size_t p = i; p < j; ++p)
        if (is_newline(s[p])) last = p;
    if (last != n) return last + 1;
    return space_run(s, i, n);
}

}  // namespace

bool split_pattern_from_regex(const std::string &regex, SplitPattern &pattern) {
    if (regex == kGpt2) pattern = SplitPattern::Gpt2;
    else if (regex == kLlama3) pattern = SplitPattern::Llama3;
    else if (regex == kQwen2) pattern = SplitPattern::Qwen2;
    else return false;
    return true;
}

size_t match_end(SplitPattern pattern, const char32_t *s, size_t i, size_t n) {
    switch (pattern) {
    case SplitPattern::Gpt2: return gpt2(s, i, n);
    case SplitPattern::Llama3: return llama3(s, i, n, 3);
    case SplitPattern::Qwen2: return llama3(s, i, n, 1);
    }
    return n;
}

}  // namespace routerm
