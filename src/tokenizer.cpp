#include "tokenizer.hpp"

#include <algorithm>
#include <sstream>

#include "added_tokens.hpp"
#include "bpe.hpp"
#include "error.hpp"
#include "model.hpp"
#include "normalizer.hpp"
#include "pretokenizer.hpp"
#include "unicode.hpp"
#include "unigram.hpp"
#include "util.hpp"
#include "wordpiece.hpp"

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
        auto special = [&](const char *key) {   // ["[CLS]", 101]
            const json::Value &pair = need(proc, key, json::Type::Array, where);
            if (pair.array.size() != 2) bad(where, name + " field '" + key + "' is not [token, id]");
            return token_id(pair.array[1], where);
        };
        int64_t cls = special("cls"), sep = special("sep");
        bool bert = name == "BertProcessing";
        t.single = {{-1, {cls}, 0}, {0, {}, 0}, {-1, {sep}, 0}};
        t.pair = {{-1, {cls}, 0}, {0, {}, 0}, {-1, bert ? std::vector<int64_t>{sep} : std::vector<int64_t>{sep, sep}, 0},
                  {1, {}, bert ? 1 : 0}, {-1, {sep}, bert ? 1 : 0}};
        return true;
    }
    if (name == "Sequence") {   // ByteLevel (offsets only) beside at most one special-token processor
        int found = 0;
        for (const json::Value &p : need(proc, "processors", json::Type::Array, where).array)
            found += read_template(p, where, t);
        if (found > 1) bad(where, "post_processor Sequence holds " + std::to_string(found) + " special-token processors; expected 1");
        return found == 1;
    }
    if (name == "ByteLevel") return false;   // offsets only: no special tokens (GPT-2 concatenates)
    bad(where, "post_processor '" + name + "' is not supported by the C library");
}

SpecialTemplate plain_template() {
    SpecialTemplate t;
    t.single = {{0, {}, 0}};
    t.pair = {{0, {}, 0}, {1, {}, 1}};   // tokenizers encodes the second sequence with type id 1
    return t;
}

std::string utf8(const std::u32string &cps) {
    std::string out;
    out.reserve(cps.size());
    for (char32_t c : cps) unicode::append_utf8(out, uint32_t(c));
    return out;
}

std::u32string utf32(const char *s, size_t n) {
    std::u32string out;
    out.reserve(n);
    for (size_t i = 0; i < n && static_cast<unsigned char>(s[i]) < 0x80; ++i) out += char32_t(s[i]);
    if (out.size() == n) return out;   // ASCII
    std::vector<uint32_t> cps = unicode::decode_utf8(s, n);
    return std::u32string(cps.begin(), cps.end());
}

std::string type_of(const json::Value *v) {
    const json::Value *t = v ? v->find("type") : nullptr;
    return t && t->is(json::Type::String) ? t->string : "none";
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

Tokenizer::Tokenizer() : added_(std::make_unique<AddedTokens>()) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer &&) noexcept = default;
Tokenizer &Tokenizer::operator=(Tokenizer &&) noexcept = default;

Tokenizer Tokenizer::from_json(const std::string &text, const std::string &where) {
    json::Value root;
    try {
        root = json::parse(text, {"vocab", "merges"});   // the big tables are read once, by their model
    } catch (const std::exception &e) {
        bad(where, e.what());
    }
    if (!root.is(json::Type::Object)) bad(where, "not a JSON object");
    Tokenizer t;
    t.template_ = plain_template();
    if (const json::Value *proc = root.find("post_processor"); proc && proc->is(json::Type::Object))
        read_template(*proc, where, t.template_);
    const json::Value null;
    const json::Value *added = root.find("added_tokens");
    *t.added_ = AddedTokens::load(added ? *added : null, where);
    const json::Value *norm = root.find("normalizer"), *pre = root.find("pre_tokenizer");
    t.normalizer_ = load_normalizer(norm ? *norm : null, where);
    t.pre_ = load_pre_tokenizer(pre ? *pre : null, where);
    const json::Value &model = need(root, "model", json::Type::Object, where);
    std::string type = type_of(&model);
    bool byte_level = t.pre_ && t.pre_->byte_level();
    if (byte_level && type != "BPE") bad(where, "a ByteLevel pre-tokenizer before a " + type + " model is not supported");
    if (type == "BPE") t.model_ = load_bpe(model, where, byte_level);
    else if (type == "Unigram") t.model_ = load_unigram(model, where);
    else if (type == "WordPiece") t.model_ = load_wordpiece(model, where);
    else bad(where, "model '" + type + "' is not supported by the C library (BPE, Unigram and WordPiece are)");
    t.describe_ = type + (byte_level ? " (byte-level)" : "") + ", normalizer " + type_of(norm) + ", pre-tokenizer " +
                  type_of(pre) + ", post-processor " + type_of(root.find("post_processor"));
    return t;
}

Tokenizer Tokenizer::load(const std::string &dir, const json::Value &manifest_tokenizer) {
    const json::Value *lower = manifest_tokenizer.find("do_lower_case");
    bool do_lower = lower && lower->is(json::Type::Bool) ? lower->boolean : true;
    Tokenizer t;
    std::string tj = join_path(dir, "tokenizer.json");
    if (is_file(tj)) {
        t = from_json(read_file(tj, ROUTERM_ERR_TOKENIZER), tj);
    } else if (is_file(join_path(dir, "vocab.txt"))) {
        // A slow-tokenizer folder: BertTokenizerFast would build the same pipeline from vocab.txt.
        std::string where = join_path(dir, "vocab.txt");
        std::istringstream lines(read_file(where, ROUTERM_ERR_TOKENIZER));
        std::unordered_map<std::string, int64_t> vocab;
        std::string line;
        for (int64_t id = 0; std::getline(lines, line); ++id) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            vocab.emplace(line, id);
        }
        auto id_of = [&](const char *tok) {
            auto it = vocab.find(tok);
            if (it == vocab.end()) bad(where, std::string("no ") + tok + " token");
            return it->second;
        };
        for (const char *special : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"})
            if (auto it = vocab.find(special); it != vocab.end()) t.added_->raw.push_back({special, it->second, false, false});
        int64_t cls = id_of("[CLS]"), sep = id_of("[SEP]");
        id_of("[UNK]");
        t.template_.single = {{-1, {cls}, 0}, {0, {}, 0}, {-1, {sep}, 0}};
        t.template_.pair = {{-1, {cls}, 0}, {0, {}, 0}, {-1, {sep}, 0}, {1, {}, 1}, {-1, {sep}, 1}};
        json::Value bert = json::parse(std::string(R"({"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
            "strip_accents": null, "lowercase": )") + (do_lower ? "true" : "false") + "}");
        t.normalizer_ = load_normalizer(bert, where);
        t.pre_ = load_pre_tokenizer(json::parse(R"({"type": "BertPreTokenizer"})"), where);
        t.model_ = wordpiece_from_vocab(vocab, where);
        t.describe_ = "WordPiece (vocab.txt), normalizer BertNormalizer, pre-tokenizer BertPreTokenizer";
    } else {
        bad(dir, "no tokenizer.json (or a WordPiece vocab.txt)");
    }
    if (const json::Value *pad = manifest_tokenizer.find("pad_token_id"); pad && pad->integral) t.pad_id_ = pad->integer;
    return t;
}

std::vector<int64_t> Tokenizer::encode(const std::string &text) const {
    if (!model_) throw Error(ROUTERM_ERR_TOKENIZER, "this tokenizer has no model to encode text with");
    // Invalid UTF-8 reads as U+FFFD per maximal subpart first, as Python's "replace" decoding.
    const std::string valid = unicode::valid_utf8(text);
    std::vector<int64_t> out;
    for (const AddedTokens::Segment &s : AddedTokens::split(added_->raw, valid)) {
        if (s.id >= 0) out.push_back(s.id);
        else encode_segment(utf32(valid.data() + s.begin, s.end - s.begin), s.begin == 0, out);
    }
    return out;
}

void Tokenizer::encode_segment(std::u32string cps, bool first, std::vector<int64_t> &out) const {
    if (normalizer_) normalizer_->normalize(cps);
    std::vector<Piece> pieces;
    auto words = [&] {   // the pieces gathered so far: pre-tokenized, then each word's ids
        if (pre_) pre_->split(pieces);
        for (const Piece &p : pieces) model_->encode(utf8(p.text), out);
        pieces.clear();
    };
    if (added_->normalized.empty()) {
        if (!cps.empty()) pieces.push_back(Piece{std::move(cps), first});
    } else {
        std::string normalized = utf8(cps);
        for (const AddedTokens::Segment &s : AddedTokens::split(added_->normalized, normalized)) {
            if (s.id < 0) {
                pieces.push_back(Piece{utf32(normalized.data() + s.begin, s.end - s.begin), first && s.begin == 0});
                continue;
            }
            words();   // the words before the token first
            out.push_back(s.id);
        }
    }
    words();
}

}  // namespace routerm
