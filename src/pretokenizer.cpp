#include "pretokenizer.hpp"

#include <algorithm>

#include "error.hpp"
#include "split_regex.hpp"
#include "unicode.hpp"

namespace routerm {

namespace {

[[noreturn]] void bad(const std::string &where, const std::string &what) {
    throw Error(ROUTERM_ERR_TOKENIZER, where + ": " + what);
}

// tokenizers' SplitDelimiterBehavior: what becomes of the matches of a split.
enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

struct Span {
    size_t begin, end;
    bool match;
};

// The pieces `spans` (covering `in`, in order) make under `behavior`, appended to `out`.
void emit(const Piece &in, const std::vector<Span> &spans, Behavior behavior, std::vector<Piece> &out) {
    std::vector<std::pair<size_t, size_t>> kept;
    bool previous = false;
    if (behavior == Behavior::MergedWithNext) {   // a match joins the piece after it
        for (auto s = spans.rbegin(); s != spans.rend(); ++s) {
            if (s->match && !previous && !kept.empty()) kept.back().first = s->begin;
            else kept.emplace_back(s->begin, s->end);
            previous = s->match;
        }
        std::reverse(kept.begin(), kept.end());
    } else {
        for (const Span &s : spans) {
            if (behavior == Behavior::Removed && s.match) continue;
            bool joins = !kept.empty() && ((behavior == Behavior::MergedWithPrevious && s.match && !previous) ||
                                           (behavior == Behavior::Contiguous && s.match == previous));
            if (joins) kept.back().second = s.end;
            else kept.emplace_back(s.begin, s.end);
            previous = s.match;
        }
    }
    for (const auto &[b, e] : kept)
        if (e > b) out.push_back(Piece{in.text.substr(b, e - b), in.at_start && b == 0});
}

// Spans of the characters for which `is_match` holds, each a match of its own, and the gaps.
template <class Pred>
std::vector<Span> char_spans(const std::u32string &t, Pred is_match) {
    std::vector<Span> spans;
    size_t gap = 0;
    for (size_t i = 0; i < t.size(); ++i) {
        if (!is_match(t[i])) continue;
        if (i > gap) spans.push_back({gap, i, false});
        spans.push_back({i, i + 1, true});
        gap = i + 1;
    }
    if (gap < t.size()) spans.push_back({gap, t.size(), false});
    return spans;
}

bool white_space(char32_t c) { return unicode::flags(uint32_t(c)) & unicode::kSpace; }   // char::is_whitespace

template <class Pred>
void split_chars(std::vector<Piece> &pieces, Pred is_match, Behavior behavior) {
    std::vector<Piece> out;
    for (const Piece &p : pieces) emit(p, char_spans(p.text, is_match), behavior, out);
    pieces.swap(out);
}

class Split : public PreTokenizer {
public:
    Split(std::u32string literal, bool regex, SplitPattern pattern, Behavior behavior)
        : literal_(std::move(literal)), regex_(regex), pattern_(pattern), behavior_(behavior) {}
    void split(std::vector<Piece> &pieces) const override {
        std::vector<Piece> out;
        std::vector<Span> spans;
        for (const Piece &p : pieces) {
            spans.clear();
            const std::u32string &t = p.text;
            if (regex_) {
                for (size_t i = 0; i < t.size();) {
                    size_t e = match_end(pattern_, t.data(), i, t.size());
                    spans.push_back({i, e, true});
                    i = e;
                }
            } else {
                size_t gap = 0;
                for (size_t i = literal_.empty() ? std::u32string::npos : t.find(literal_); i != std::u32string::npos;
                     i = t.find(literal_, gap)) {
                    if (i > gap) spans.push_back({gap, i, false});
                    spans.push_back({i, i + literal_.size(), true});
                    gap = i + literal_.size();
                }
                if (gap < t.size()) spans.push_back({gap, t.size(), false});
            }
            emit(p, spans, behavior_, out);
        }
        pieces.swap(out);
    }

private:
    std::u32string literal_;
    bool regex_;
    SplitPattern pattern_;
    Behavior behavior_;
};

class ByteLevel : public PreTokenizer {
public:
    ByteLevel(bool prefix_space, bool use_regex) : prefix_space_(prefix_space), use_regex_(use_regex) {}
    void split(std::vector<Piece> &pieces) const override {
        if (prefix_space_)
            for (Piece &p : pieces)
                if (p.text[0] != U' ') p.text.insert(p.text.begin(), U' ');
        if (use_regex_) Split(U"", true, SplitPattern::Gpt2, Behavior::Isolated).split(pieces);
    }
    bool byte_level() const override { return true; }

private:
    bool prefix_space_, use_regex_;
};

class Metaspace : public PreTokenizer {
public:
    enum class Prepend { Always, First, Never };
    Metaspace(char32_t replacement, Prepend prepend, bool split) : rep_(replacement), prepend_(prepend), split_(split) {}
    void split(std::vector<Piece> &pieces) const override {
        for (Piece &p : pieces) {
            std::replace(p.text.begin(), p.text.end(), U' ', rep_);
            bool prepend = prepend_ == Prepend::Always || (prepend_ == Prepend::First && p.at_start);
            if (prepend && p.text[0] != rep_) p.text.insert(p.text.begin(), rep_);
        }
        if (split_) split_chars(pieces, [this](char32_t c) { return c == rep_; }, Behavior::MergedWithNext);
    }

private:
    char32_t rep_;
    Prepend prepend_;
    bool split_;
};

class CharSplit : public PreTokenizer {
public:
    enum class Kind { Digits, Runs, WhitespaceSplit, Bert, Whitespace };
    explicit CharSplit(Kind kind) : kind_(kind) {}
    void split(std::vector<Piece> &pieces) const override {
        auto number = [](char32_t c) { return bool(unicode::flags(uint32_t(c)) & unicode::kNumber); };
        switch (kind_) {
        case Kind::Digits: split_chars(pieces, number, Behavior::Isolated); break;
        case Kind::Runs: split_chars(pieces, number, Behavior::Contiguous); break;
        case Kind::WhitespaceSplit: split_chars(pieces, white_space, Behavior::Removed); break;
        case Kind::Bert:
            split_chars(pieces, white_space, Behavior::Removed);
            split_chars(pieces, [](char32_t c) { return bool(unicode::flags(uint32_t(c)) & unicode::kPunct); },
                        Behavior::Isolated);
            break;
        case Kind::Whitespace: words(pieces); break;
        }
    }

private:
    // \w+|[^\w\s]+ kept, one piece a match; the white space between them dropped.
    static void words(std::vector<Piece> &pieces) {
        std::vector<Piece> out;
        auto word = [](char32_t c) { return bool(unicode::flags(uint32_t(c)) & unicode::kWord); };
        auto space = [](char32_t c) { return bool(unicode::flags(uint32_t(c)) & unicode::kRegexSpace); };
        for (const Piece &p : pieces) {
            const std::u32string &t = p.text;
            for (size_t i = 0; i < t.size();) {
                size_t j = i;
                if (word(t[i])) while (j < t.size() && word(t[j])) ++j;
                else if (!space(t[i])) while (j < t.size() && !word(t[j]) && !space(t[j])) ++j;
                else { ++i; continue; }
                out.push_back(Piece{t.substr(i, j - i), p.at_start && i == 0});
                i = j;
            }
        }
        pieces.swap(out);
    }
    Kind kind_;
};

class Sequence : public PreTokenizer {
public:
    explicit Sequence(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
    void split(std::vector<Piece> &pieces) const override {
        for (const auto &s : steps_) s->split(pieces);
    }
    bool byte_level() const override { return !steps_.empty() && steps_.back()->byte_level(); }

private:
    std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

bool flag(const json::Value &v, const char *key, bool dflt) {
    const json::Value *f = v.find(key);
    return f && f->is(json::Type::Bool) ? f->boolean : dflt;
}

std::string text(const json::Value &v, const char *key, const std::string &where) {
    const json::Value *f = v.find(key);
    if (!f || !f->is(json::Type::String)) bad(where, std::string("missing or mistyped field '") + key + "'");
    return f->string;
}

std::u32string utf32(const std::string &s) {
    std::vector<uint32_t> cps = unicode::decode_utf8(s.data(), s.size());
    return std::u32string(cps.begin(), cps.end());
}

Behavior behavior_of(const std::string &name, const std::string &where) {
    static const std::pair<const char *, Behavior> kNames[] = {
        {"Removed", Behavior::Removed}, {"Isolated", Behavior::Isolated},
        {"MergedWithPrevious", Behavior::MergedWithPrevious}, {"MergedWithNext", Behavior::MergedWithNext},
        {"Contiguous", Behavior::Contiguous}};
    for (const auto &[n, b] : kNames)
        if (name == n) return b;
    bad(where, "Split behavior '" + name + "' is not one of tokenizers' behaviors");
}

std::unique_ptr<PreTokenizer> load_split(const json::Value &v, const std::string &where) {
    if (flag(v, "invert", false)) bad(where, "pre-tokenizer Split with invert: true is not supported");
    Behavior behavior = behavior_of(text(v, "behavior", where), where);
    const json::Value *pattern = v.find("pattern");
    if (pattern && pattern->find("String") && pattern->find("String")->is(json::Type::String))
        return std::make_unique<Split>(utf32(pattern->find("String")->string), false, SplitPattern::Gpt2, behavior);
    if (pattern && pattern->find("Regex") && pattern->find("Regex")->is(json::Type::String)) {
        SplitPattern p;
        const std::string &regex = pattern->find("Regex")->string;
        if (!split_pattern_from_regex(regex, p))
            bad(where, "pre-tokenizer Split with regex '" + regex + "' is not supported (the library implements the "
                       "GPT-2, Llama-3 and Qwen2 regexes)");
        return std::make_unique<Split>(U"", true, p, behavior);
    }
    bad(where, "pre-tokenizer Split needs a pattern {\"String\": ...} or {\"Regex\": ...}");
}

std::unique_ptr<PreTokenizer> load_metaspace(const json::Value &v, const std::string &where) {
    std::u32string rep = utf32(text(v, "replacement", where));
    if (rep.size() != 1) bad(where, "Metaspace replacement must be one character");
    Metaspace::Prepend prepend = flag(v, "add_prefix_space", true) ? Metaspace::Prepend::Always : Metaspace::Prepend::Never;
    if (const json::Value *scheme = v.find("prepend_scheme"); scheme && scheme->is(json::Type::String)) {
        if (scheme->string == "always") prepend = Metaspace::Prepend::Always;
        else if (scheme->string == "first") prepend = Metaspace::Prepend::First;
        else if (scheme->string == "never") prepend = Metaspace::Prepend::Never;
        else bad(where, "Metaspace prepend_scheme '" + scheme->string + "' is not always, first or never");
    }
    return std::make_unique<Metaspace>(rep[0], prepend, flag(v, "split", true));
}

}  // namespace

std::unique_ptr<PreTokenizer> load_pre_tokenizer(const json::Value &v, const std::string &where) {
    if (v.is(json::Type::Null)) return nullptr;
    const json::Value *type = v.find("type");
    if (!type || !type->is(json::Type::String)) bad(where, "pre_tokenizer has no 'type'");
    const std::string &name = type->string;
    if (name == "ByteLevel") return std::make_unique<ByteLevel>(flag(v, "add_prefix_space", true), flag(v, "use_regex", true));
    if (name == "Split") return load_split(v, where);
    if (name == "Metaspace") return load_metaspace(v, where);
    if (name == "Digits")
        return std::make_unique<CharSplit>(flag(v, "individual_digits", false) ? CharSplit::Kind::Digits : CharSplit::Kind::Runs);
    if (name == "Whitespace") return std::make_unique<CharSplit>(CharSplit::Kind::Whitespace);
    if (name == "WhitespaceSplit") return std::make_unique<CharSplit>(CharSplit::Kind::WhitespaceSplit);
    if (name == "BertPreTokenizer") return std::make_unique<CharSplit>(CharSplit::Kind::Bert);
    if (name == "Sequence") {
        const json::Value *list = v.find("pretokenizers");
        if (!list || !list->is(json::Type::Array)) bad(where, "pre-tokenizer Sequence has no 'pretokenizers' list");
        std::vector<std::unique_ptr<PreTokenizer>> steps;
        for (const json::Value &item : list->array) {
            if (!steps.empty() && steps.back() && steps.back()->byte_level())
                bad(where, "a pre-tokenizer after ByteLevel is not supported (ByteLevel must be the last step)");
            if (auto step = load_pre_tokenizer(item, where)) steps.push_back(std::move(step));
        }
        return std::make_unique<Sequence>(std::move(steps));
    }
    bad(where, "pre-tokenizer '" + name + "' is not supported by the C library");
}

}  // namespace routerm
