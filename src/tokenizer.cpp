#include "tokenizer.hpp"

#include <algorithm>
#include <sstream>

#include "error.hpp"
#include "unicode.hpp"
#include "util.hpp"

namespace routerm {

namespace {

[[noreturn]] void bad(const std::string &where, const std::string &what) {
    throw Error(ROUTERM_ERR_TOKENIZER, where + ": " + what);
}

const json::Value &need(const json::Value &obj, const std::string &key, json::Type type, const std::string &where) {
    const json::Value *v = obj.find(key);
    if (!v || !v->is(type)) bad(where, "missing or mistyped field '" + key + "'");
    return *v;
}

int64_t token_id(const json::Value &v, const std::string &where) {
    if (!v.is(json::Type::Number) || !v.integral) bad(where, "token id is not an integer");
    return v.integer;
}

// One of tokenizers' post-processors -> the template; nullptr-equivalent (plain concat) otherwise.
bool read_template(const json::Value &proc, const std::string &where, SpecialTemplate &t) {
    const json::Value *type = proc.find("type");
    if (!type) return false;
    const std::string &name = type->string;
    using Piece = SpecialTemplate::Piece;
    if (name == "TemplateProcessing") {
        const json::Value &specials = need(proc, "special_tokens", json::Type::Object, where);
        auto pieces = [&](const char *key, std::vector<Piece> &out) {
            for (const json::Value &item : need(proc, key, json::Type::Array, where).array) {
                if (const json::Value *seq = item.find("Sequence")) {
                    const std::string &id = need(*seq, "id", json::Type::String, where).string;
                    out.push_back({id == "A" ? 0 : 1, {}, token_id(need(*seq, "type_id", json::Type::Number, where), where)});
                } else if (const json::Value *sp = item.find("SpecialToken")) {
                    const std::string &id = need(*sp, "id", json::Type::String, where).string;
                    const json::Value *tok = specials.find(id);
                    if (!tok) bad(where, "template names special token '" + id + "' it does not define");
                    Piece p{-1, {}, token_id(need(*sp, "type_id", json::Type::Number, where), where)};
                    for (const json::Value &i : need(*tok, "ids", json::Type::Array, where).array) p.ids.push_back(token_id(i, where));
                    out.push_back(std::move(p));
                } else {
                    bad(where, "template piece is neither Sequence nor SpecialToken");
                }
            }
        };
        t.single.clear();
        t.pair.clear();
        pieces("single", t.single);
        pieces("pair", t.pair);
        return true;
    }
    if (name == "BertProcessing" || name == "RobertaProcessing") {
        int64_t cls = token_id(need(proc, "cls", json::Type::Array, where).array.at(1), where);
        int64_t sep = token_id(need(proc, "sep", json::Type::Array, where).array.at(1), where);
        bool bert = name == "BertProcessing";
        t.single = {{-1, {cls}, 0}, {0, {}, 0}, {-1, {sep}, 0}};
        t.pair = {{-1, {cls}, 0}, {0, {}, 0}, {-1, bert ? std::vector<int64_t>{sep} : std::vector<int64_t>{sep, sep}, 0},
                  {1, {}, bert ? 1 : 0}, {-1, {sep}, bert ? 1 : 0}};
        return true;
    }
    if (name == "Sequence") {
        for (const json::Value &p : need(proc, "processors", json::Type::Array, where).array)
            if (read_template(p, where, t)) return true;
    }
    return false;   // ByteLevel & co: no special tokens (GPT-2's build_inputs_with_special_tokens concatenates)
}

SpecialTemplate plain_template() {
    SpecialTemplate t;
    t.single = {{0, {}, 0}};
    t.pair = {{0, {}, 0}, {1, {}, 0}};
    return t;
}

}  // namespace

void SpecialTemplate::build(const std::vector<int64_t> &a, const std::vector<int64_t> *b, std::vector<int64_t> &ids,
                            std::vector<int64_t> &types) const {
    ids.clear();
    types.clear();
    for (const Piece &p : b ? pair : single) {
        const std::vector<int64_t> &src = p.sequence < 0 ? p.ids : p.sequence == 0 ? a : *b;
        ids.insert(ids.end(), src.begin(), src.end());
        types.insert(types.end(), src.size(), p.type_id);
    }
}

size_t SpecialTemplate::num_special(bool is_pair) const {
    size_t n = 0;
    for (const Piece &p : is_pair ? pair : single) n += p.ids.size();
    return n;
}

Tokenizer Tokenizer::load(const std::string &dir, const json::Value &manifest_tokenizer) {
    Tokenizer t;
    const json::Value *kind = manifest_tokenizer.find("kind");
    t.kind_ = kind && kind->is(json::Type::String) ? kind->string : "wordpiece";
    if (const json::Value *pad = manifest_tokenizer.find("pad_token_id"); pad && pad->integral) t.pad_id_ = pad->integer;
    const json::Value *lower = manifest_tokenizer.find("do_lower_case");
    bool do_lower = lower && lower->is(json::Type::Bool) ? lower->boolean : true;

    std::string tj = join_path(dir, "tokenizer.json");
    if (is_file(tj)) {
        json::Value root;
        try {
            root = json::parse(read_file(tj, ROUTERM_ERR_TOKENIZER));
        } catch (const Error &) {
            throw;
        } catch (const std::exception &e) {
            bad(tj, e.what());
        }
        t.template_ = plain_template();
        if (const json::Value *proc = root.find("post_processor"); proc && proc->is(json::Type::Object))
            read_template(*proc, tj, t.template_);
        const json::Value *model = root.find("model");
        const json::Value *norm = root.find("normalizer");
        const json::Value *pre = root.find("pre_tokenizer");
        auto type_is = [](const json::Value *v, const char *name) {
            const json::Value *ty = v ? v->find("type") : nullptr;
            return ty && ty->string == name;
        };
        if (t.kind_ == "wordpiece" && type_is(model, "WordPiece") && type_is(norm, "BertNormalizer") &&
            type_is(pre, "BertPreTokenizer")) {
            for (const std::string &tok : need(*model, "vocab", json::Type::Object, tj).keys)
                t.vocab_[tok] = token_id(model->object.at("vocab").object.at(tok), tj);
            t.prefix_ = need(*model, "continuing_subword_prefix", json::Type::String, tj).string;
            t.max_word_chars_ = size_t(token_id(need(*model, "max_input_chars_per_word", json::Type::Number, tj), tj));
            const std::string &unk = need(*model, "unk_token", json::Type::String, tj).string;
            auto it = t.vocab_.find(unk);
            if (it == t.vocab_.end()) bad(tj, "unk_token '" + unk + "' is not in the vocabulary");
            t.unk_id_ = it->second;
            auto flag = [&](const char *key, bool dflt) {
                const json::Value *v = norm->find(key);
                return v && v->is(json::Type::Bool) ? v->boolean : dflt;
            };
            t.clean_text_ = flag("clean_text", true);
            t.handle_chinese_ = flag("handle_chinese_chars", true);
            t.lowercase_ = flag("lowercase", true);
            t.strip_accents_ = flag("strip_accents", t.lowercase_);   // null: follows lowercase, as in HF
            if (const json::Value *added = root.find("added_tokens"); added && added->is(json::Type::Array)) {
                for (const json::Value &a : added->array) {
                    auto on = [&](const char *key) { const json::Value *v = a.find(key); return v && v->boolean; };
                    if (on("normalized") || on("lstrip") || on("rstrip") || on("single_word"))
                        bad(tj, "added token '" + need(a, "content", json::Type::String, tj).string +
                                    "' is normalized/stripped/single-word, which the native tokenizer does not match");
                    t.added_.emplace_back(need(a, "content", json::Type::String, tj).string,
                                          token_id(need(a, "id", json::Type::Number, tj), tj));
                }
            }
            t.wordpiece_ = true;
        }
    } else if (t.kind_ == "wordpiece" && is_file(join_path(dir, "vocab.txt"))) {
        // A slow-tokenizer folder: BertTokenizerFast would build the same pipeline from vocab.txt.
        std::istringstream lines(read_file(join_path(dir, "vocab.txt"), ROUTERM_ERR_TOKENIZER));
        std::string line;
        for (int64_t id = 0; std::getline(lines, line); ++id) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            t.vocab_.emplace(line, id);
        }
        for (const char *special : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"})
            if (auto it = t.vocab_.find(special); it != t.vocab_.end()) t.added_.emplace_back(special, it->second);
        auto id_of = [&](const char *tok) {
            auto it = t.vocab_.find(tok);
            if (it == t.vocab_.end()) bad(join_path(dir, "vocab.txt"), std::string("no ") + tok + " token");
            return it->second;
        };
        t.unk_id_ = id_of("[UNK]");
        int64_t cls = id_of("[CLS]"), sep = id_of("[SEP]");
        t.template_.single = {{-1, {cls}, 0}, {0, {}, 0}, {-1, {sep}, 0}};
        t.template_.pair = {{-1, {cls}, 0}, {0, {}, 0}, {-1, {sep}, 0}, {1, {}, 1}, {-1, {sep}, 1}};
        t.lowercase_ = t.strip_accents_ = do_lower;
        t.wordpiece_ = true;
    } else if (t.kind_ == "wordpiece") {
        bad(dir, "WordPiece tokenizer without tokenizer.json or vocab.txt");
    } else {
        t.template_ = plain_template();
    }
    // Leftmost-longest matching: at one position the longest added token wins.
    std::stable_sort(t.added_.begin(), t.added_.end(),
                     [](const auto &x, const auto &y) { return x.first.size() > y.first.size(); });
    t.added_.erase(std::remove_if(t.added_.begin(), t.added_.end(), [](const auto &x) { return x.first.empty(); }),
                   t.added_.end());
    return t;
}

std::vector<int64_t> Tokenizer::encode(const std::string &text) const {
    if (!wordpiece_)
        throw Error(ROUTERM_ERR_TOKENIZER,
                    "this bundle's tokenizer (kind '" + kind_ + "') is not the WordPiece tokenizer the C library "
                    "implements: tokenize with the bundle's own tokenizer and call routerm_score_ids");
    std::vector<int64_t> out;
    size_t seg = 0, pos = 0;
    while (pos < text.size()) {
        const std::pair<std::string, int64_t> *hit = nullptr;
        for (const auto &a : added_)
            if (text.compare(pos, a.first.size(), a.first) == 0) { hit = &a; break; }
        if (!hit) { ++pos; continue; }
        encode_segment(unicode::decode_utf8(text.data() + seg, pos - seg), out);
        out.push_back(hit->second);
        pos += hit->first.size();
        seg = pos;
    }
    encode_segment(unicode::decode_utf8(text.data() + seg, text.size() - seg), out);
    return out;
}

void Tokenizer::encode_segment(const std::vector<uint32_t> &cps, std::vector<int64_t> &out) const {
    // BertNormalizer, one code point at a time (every step of it is per code point).
    std::vector<uint32_t> norm, parts;
    norm.reserve(cps.size() + 8);
    auto emit = [&](uint32_t cp) {
        parts.clear();
        if (strip_accents_) unicode::decompose(cp, parts);
        else parts.push_back(cp);
        for (uint32_t c : parts) {
            if (strip_accents_ && (unicode::flags(c) & unicode::kMark)) continue;
            if (lowercase_) unicode::lower(c, norm);
            else norm.push_back(c);
        }
    };
    for (uint32_t cp : cps) {
        uint8_t f = unicode::flags(cp);
        if (clean_text_) {
            if (f & unicode::kControl) continue;
            if (f & unicode::kSpace) cp = ' ';
        }
        if (handle_chinese_ && (f & unicode::kCjk)) {
            norm.push_back(' ');
            emit(cp);
            norm.push_back(' ');
        } else {
            emit(cp);
        }
    }
    // BertPreTokenizer: white space splits and is dropped; punctuation is a word of its own.
    std::vector<uint32_t> word;
    for (uint32_t cp : norm) {
        uint8_t f = unicode::flags(cp);
        if (f & (unicode::kSpace | unicode::kPunct)) {
            if (!word.empty()) encode_word(word, out);
            word.clear();
            if (!(f & unicode::kSpace)) encode_word({cp}, out);
        } else {
            word.push_back(cp);
        }
    }
    if (!word.empty()) encode_word(word, out);
}

void Tokenizer::encode_word(const std::vector<uint32_t> &word, std::vector<int64_t> &out) const {
    if (word.size() > max_word_chars_) { out.push_back(unk_id_); return; }
    std::string utf8;
    std::vector<size_t> offset;   // byte offset of each code point, plus the end
    for (uint32_t cp : word) { offset.push_back(utf8.size()); unicode::append_utf8(utf8, cp); }
    offset.push_back(utf8.size());
    size_t mark = out.size(), start = 0, n = word.size();
    std::string piece;
    while (start < n) {
        size_t end = n;
        int64_t id = -1;
        for (; end > start; --end) {
            piece.assign(start ? prefix_ : std::string());
            piece.append(utf8, offset[start], offset[end] - offset[start]);
            auto it = vocab_.find(piece);
            if (it != vocab_.end()) { id = it->second; break; }
        }
        if (id < 0) { out.resize(mark); out.push_back(unk_id_); return; }
        out.push_back(id);
        start = end;
    }
}

}  // namespace routerm
