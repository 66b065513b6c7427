#include "wordpiece.hpp"

#include <vector>

#include "error.hpp"
#include "string_ids.hpp"

namespace routerm {

namespace {

[[noreturn]] void bad(const std::string &where, const std::string &what) {
    throw Error(ROUTERM_ERR_TOKENIZER, where + ": " + what);
}

class WordPiece : public Model {
public:
    WordPiece(StringIds vocab, const std::string &unk, std::string prefix, size_t max_chars, const std::string &where)
        : vocab_(std::move(vocab)), prefix_(std::move(prefix)), max_chars_(max_chars) {
        unk_id_ = vocab_.get(unk);
        if (unk_id_ < 0) bad(where, "unk_token '" + unk + "' is not in the vocabulary");
    }


    void encode(std::string_view word, std::vector<int64_t> &out) const override {
        std::vector<size_t> offset;   // byte offset of each character, plus the end
        for (size_t i = 0; i < word.size(); ++i)
            if ((static_cast<unsigned char>(word[i]) & 0xC0) != 0x80) offset.push_back(i);
        offset.push_back(word.size());
        size_t n = offset.size() - 1;
        if (n > max_chars_) { out.push_back(unk_id_); return; }
        size_t mark = out.size(), start = 0;
        std::string piece;
        while (start < n) {
            size_t end = n;
            int64_t id = -1;
            for (; end > start; --end) {
                piece.assign(start ? prefix_ : std::string());
                piece.append(word.data() + offset[start], offset[end] - offset[start]);
                id = vocab_.get(piece);
                if (id >= 0) break;
            }
            if (id < 0) { out.resize(mark); out.push_back(unk_id_); return; }
            out.push_back(id);
            start = end;
        }
    }

private:
    StringIds vocab_;
    std::string prefix_;
    size_t max_chars_;
    int64_t unk_id_ = -1;
};

}  // namespace

std::unique_ptr<Model> load_wordpiece(const json::Value &model, const std::string &where) {
    const json::Value *vocab = model.find("vocab");
    if (!vocab) bad(where, "WordPiece model has no 'vocab' object");
    StringIds ids;
    try {
        json::each_member(*vocab, [&](const std::string &tok, const json::Value &id) {
            if (!id.is(json::Type::Number) || !id.integral) bad(where, "vocabulary id of '" + tok + "' is not an integer");
            ids.put(tok, id.integer);
        });
    } catch (const Error &) {
        throw;
    } catch (const std::exception &e) {
        bad(where, std::string("model.vocab: ") + e.what());
    }
    auto text = [&](const char *key, const char *dflt) {
        const json::Value *v = model.find(key);
        return v && v->is(json::Type::String) ? v->string : std::string(dflt);
    };
    const json::Value *max = model.find("max_input_chars_per_word");
    size_t max_chars = max && max->integral && max->integer > 0 ? size_t(max->integer) : 100;
    return std::make_unique<WordPiece>(std::move(ids), text("unk_token", "[UNK]"), text("continuing_subword_prefix", "##"),
                                       max_chars, where);
}

std::unique_ptr<Model> wordpiece_from_vocab(const std::unordered_map<std::string, int64_t> &vocab, const std::string &where) {
    StringIds ids;
    for (const auto &[tok, id] : vocab) ids.put(tok, id);
    return std::make_unique<WordPiece>(std::move(ids), "[UNK]", "##", 100, where);
}

}  // namespace routerm
