#include "bpe.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <queue>
#include <unordered_map>
#include <vector>

#include "error.hpp"
#include "string_ids.hpp"
#include "unicode.hpp"

namespace routerm {

namespace {

[[noreturn]] void bad(const std::string &where, const std::string &what) {
    throw Error(ROUTERM_ERR_TOKENIZER, where + ": " + what);
}

// GPT-2's bytes_to_unicode: printable Latin-1 bytes are their own character, the other 68 bytes
// take U+0100.. in byte order.
std::array<uint32_t, 256> byte_chars() {
    std::array<uint32_t, 256> out{};
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
        bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
        out[b] = printable ? b : next++;
    }
    return out;
}

// Characters of the byte alphabet (all below U+0144) -> their byte; -1 for the others.
std::array<int16_t, 0x144> char_bytes() {
    std::array<int16_t, 0x144> back;
    back.fill(-1);
    std::array<uint32_t, 256> chars = byte_chars();
    for (int b = 0; b < 256; ++b) back[chars[size_t(b)]] = int16_t(b);
    return back;
}

// A token written in the byte alphabet -> its bytes; false when a character is outside the alphabet.
bool to_bytes(const std::string &token, std::string &out) {
    static const std::array<int16_t, 0x144> back = char_bytes();
    out.clear();
    for (size_t i = 0; i < token.size();) {
        unsigned char c = token[i];
        uint32_t cp;
        if (c < 0x80) { cp = c; i += 1; }
        else if ((c & 0xE0) == 0xC0 && i + 1 < token.size()) { cp = (uint32_t(c & 0x1F) << 6) | (token[i + 1] & 0x3F); i += 2; }
        else return false;   // three bytes and more: above U+07FF, outside the alphabet
        if (cp >= back.size() || back[cp] < 0) return false;
        out += char(back[cp]);
    }
    return true;
}

// (left id, right id) -> (rank, merged id): open addressing over 64-bit keys.
class PairMap {
public:
    void reserve(size_t n) {
        size_t cap = 16;
        while (cap < 2 * n) cap <<= 1;
        slots_.assign(cap, Slot{kEmpty, 0, 0});
    }
    void put(uint32_t a, uint32_t b, uint32_t rank, uint32_t merged) {
        Slot &s = probe(key(a, b));
        s = Slot{key(a, b), rank, merged};   // a later duplicate wins, as a hash map collect does
    }
    const std::pair<uint32_t, uint32_t> *get(uint32_t a, uint32_t b, std::pair<uint32_t, uint32_t> &buf) const {
        const Slot &s = const_cast<PairMap *>(this)->probe(key(a, b));
        if (s.key == kEmpty) return nullptr;
        buf = {s.rank, s.merged};
        return &buf;
    }

private:
    static constexpr uint64_t kEmpty = ~uint64_t(0);
    struct Slot { uint64_t key; uint32_t rank, merged; };
    static uint64_t key(uint32_t a, uint32_t b) { return (uint64_t(a) << 32) | b; }
    Slot &probe(uint64_t k) {
        size_t mask = slots_.size() - 1, i = size_t((k * 0x9E3779B97F4A7C15ull) >> 17) & mask;
        while (slots_[i].key != kEmpty && slots_[i].key != k) i = (i + 1) & mask;
        return slots_[i];
    }
    std::vector<Slot> slots_;
};

class Bpe : public Model {
public:
    void encode(std::string_view word, std::vector<int64_t> &out) const override;
    // The id of a token as tokenizer.json writes it (byte-level: in the byte alphabet), or -1.
    int64_t written(const std::string &token, std::string &buf) const {
        if (!byte_level_) return ids_.get(token);
        return to_bytes(token, buf) ? ids_.get(buf) : -1;
    }

    // Token -> id, keyed as words are looked up: the token's text, or for byte-level BPE its bytes
    // (a token with a character outside the byte alphabet can match no word and is left out).
    StringIds ids_;
    PairMap merges_;
    bool byte_level_ = false, byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
    int64_t unk_id_ = -1;
    std::string prefix_, suffix_;
    std::array<int64_t, 256> byte_ids_{};              // byte-level: each byte's symbol, or -1
    std::array<std::vector<int64_t>, 256> byte_fallback_ids_;   // byte-level: "<0xXX>" of its character
    std::array<int64_t, 256> fallback_{};              // "<0xXX>" ids, -1 when absent

private:
    void symbols(std::string_view word, std::vector<int64_t> &ids) const;
    void merge(std::vector<int64_t> &ids) const;
};

void Bpe::symbols(std::string_view word, std::vector<int64_t> &ids) const {
    int64_t unk = -1;   // a pending unknown run (fused) not yet written
    auto flush = [&] { if (unk >= 0) { ids.push_back(unk); unk = -1; } };
    auto unknown = [&] {
        if (unk_id_ < 0) return;
        if (unk >= 0 && !fuse_unk_) ids.push_back(unk);
        unk = unk_id_;
    };
    if (byte_level_) {
        for (unsigned char b : word) {
            if (byte_ids_[b] >= 0) { flush(); ids.push_back(byte_ids_[b]); continue; }
            if (byte_fallback_ && !byte_fallback_ids_[b].empty()) {
                ids.insert(ids.end(), byte_fallback_ids_[b].begin(), byte_fallback_ids_[b].end());
                continue;
            }
            unknown();
        }
        flush();
        return;
    }
    std::string piece;
    size_t i = 0;
    while (i < word.size()) {
        size_t len = 1;
        unsigned char c = word[i];
        if (c >= 0xF0) len = 4; else if (c >= 0xE0) len = 3; else if (c >= 0xC0) len = 2;
        len = std::min(len, word.size() - i);
        piece.assign(i ? prefix_ : std::string());
        piece.append(word.data() + i, len);
        if (i + len == word.size()) piece += suffix_;
        i += len;
        if (int64_t id = ids_.get(piece); id >= 0) { flush(); ids.push_back(id); continue; }
        if (byte_fallback_) {
            bool all = true;
            for (unsigned char b : piece) all = all && fallback_[b] >= 0;
            if (all) {
                for (unsigned char b : piece) ids.push_back(fallback_[b]);
                continue;
            }
        }
        unknown();
    }
    flush();
}

void Bpe::merge(std::vector<int64_t> &ids) const {
    size_t n = ids.size();
    if (n < 2) return;
    struct Sym { int64_t id; long prev, next; bool alive; };
    std::vector<Sym> sym(n);
    for (size_t i = 0; i < n; ++i) sym[i] = Sym{ids[i], long(i) - 1, i + 1 < n ? long(i + 1) : -1, true};
    struct Entry { uint32_t rank; size_t pos; uint32_t merged; };
    auto later = [](const Entry &a, const Entry &b) { return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos; };
    std::priority_queue<Entry, std::vector<Entry>, decltype(later)> queue(later);
    std::pair<uint32_t, uint32_t> buf;
    auto push = [&](size_t pos) {
        long next = sym[pos].next;
        if (next < 0) return;
        if (auto m = merges_.get(uint32_t(sym[pos].id), uint32_t(sym[size_t(next)].id), buf)) queue.push({m->first, pos, m->second});
    };
    for (size_t i = 0; i + 1 < n; ++i) push(i);
    while (!queue.empty()) {
        Entry top = queue.top();
        queue.pop();
        Sym &left = sym[top.pos];
        if (!left.alive || left.next < 0) continue;
        Sym &right = sym[size_t(left.next)];
        auto m = merges_.get(uint32_t(left.id), uint32_t(right.id), buf);
        if (!m || m->second != top.merged) continue;   // an entry the merges since made stale
        left.id = top.merged;
        right.alive = false;
        left.next = right.next;
        if (right.next >= 0) sym[size_t(right.next)].prev = long(top.pos);
        if (left.prev >= 0) push(size_t(left.prev));
        push(top.pos);
    }
    ids.clear();
    for (long i = 0; i >= 0; i = sym[size_t(i)].next) ids.push_back(sym[size_t(i)].id);
}

void Bpe::encode(std::string_view word, std::vector<int64_t> &out) const {
    if (word.empty()) return;
    if (ignore_merges_) {
        if (int64_t id = ids_.get(word); id >= 0) { out.push_back(id); return; }
    }
    std::vector<int64_t> ids;
    ids.reserve(word.size());
    symbols(word, ids);
    merge(ids);
    out.insert(out.end(), ids.begin(), ids.end());
}

std::string field_string(const json::Value &m, const char *key, const std::string &where) {
    const json::Value *v = m.find(key);
    if (!v || v->is(json::Type::Null)) return "";
    if (!v->is(json::Type::String)) bad(where, std::string("BPE field '") + key + "' is not a string");
    return v->string;
}

// Run `read` over a deferred JSON section, naming the file and the section when its text is malformed.
template <class F>
void json_section(const std::string &where, const char *field, F read) {
    try {
        read();
    } catch (const Error &) {
        throw;
    } catch (const std::exception &e) {
        bad(where, std::string(field) + ": " + e.what());
    }
}

bool field_bool(const json::Value &m, const char *key) {
    const json::Value *v = m.find(key);
    return v && v->is(json::Type::Bool) && v->boolean;
}

void read_merges(const json::Value &model, const std::string &where, Bpe &bpe) {
    const json::Value *merges = model.find("merges");
    if (!merges) bad(where, "BPE model has no 'merges' list");
    std::string buf;
    auto id = [&](const std::string &tok, size_t rank) {
        int64_t found = bpe.written(tok, buf);
        if (found < 0) bad(where, "merge " + std::to_string(rank) + " names '" + tok + "', which is not in the vocabulary");
        return uint32_t(found);
    };
    size_t rank = 0;
    std::string a, b;
    bpe.merges_.reserve(bpe.ids_.size());
    json_section(where, "model.merges", [&] {
        json::each_item(*merges, [&](const json::Value &m) {
            if (m.is(json::Type::String)) {
                size_t sp = m.string.find(' ');
                if (sp == std::string::npos || m.string.find(' ', sp + 1) != std::string::npos)
                    bad(where, "merge " + std::to_string(rank) + " '" + m.string + "' is not two tokens");
                a.assign(m.string, 0, sp);
                b.assign(m.string, sp + 1);
            } else if (m.is(json::Type::Array) && m.array.size() == 2 && m.array[0].is(json::Type::String) &&
                       m.array[1].is(json::Type::String)) {
                a = m.array[0].string;
                b = m.array[1].string;
            } else {
                bad(where, "merge " + std::to_string(rank) + " is neither \"a b\" nor [\"a\", \"b\"]");
            }
            uint32_t left = id(a, rank), right = id(b, rank);
            // The merged token drops the right part's subword prefix ("t" + "##h" = "th"), as tokenizers builds it.
            size_t cut = bpe.prefix_.size();
            if (cut && b.compare(0, cut, bpe.prefix_) != 0)
                bad(where, "merge " + std::to_string(rank) + " '" + a + " " + b + "': its right part does not start with "
                           "the continuing_subword_prefix '" + bpe.prefix_ + "'");
            bpe.merges_.put(left, right, uint32_t(rank), id(a + b.substr(cut), rank));
            ++rank;
        });
    });
}

void read_byte_level(const std::string &where, Bpe &bpe) {
    if (!bpe.prefix_.empty() || !bpe.suffix_.empty())
        bad(where, "byte-level BPE with continuing_subword_prefix or end_of_word_suffix is not supported");
    std::array<uint32_t, 256> chars = byte_chars();
    for (int b = 0; b < 256; ++b) {
        bpe.byte_ids_[size_t(b)] = bpe.ids_.get(std::string(1, char(b)));
        std::string ch;   // byte fallback spells the byte's character, as tokenizers sees the word
        unicode::append_utf8(ch, chars[size_t(b)]);
        bool all = true;
        for (unsigned char u : ch) all = all && bpe.fallback_[u] >= 0;
        if (all) for (unsigned char u : ch) bpe.byte_fallback_ids_[size_t(b)].push_back(bpe.fallback_[u]);
    }
}

}  // namespace

std::unique_ptr<Model> load_bpe(const json::Value &model, const std::string &where, bool byte_level) {
    auto bpe = std::make_unique<Bpe>();
    bpe->byte_level_ = byte_level;
    const json::Value *vocab = model.find("vocab");
    if (!vocab) bad(where, "BPE model has no 'vocab' object");
    std::string bytes;
    json_section(where, "model.vocab", [&] {
        json::each_member(*vocab, [&](const std::string &tok, const json::Value &id) {
            if (!id.is(json::Type::Number) || !id.integral || id.integer < 0 || id.integer > 0x7FFFFFFF)
                bad(where, "vocabulary id of '" + tok + "' is not a non-negative integer");
            if (!byte_level) bpe->ids_.put(tok, id.integer);
            else if (to_bytes(tok, bytes)) bpe->ids_.put(bytes, id.integer);
        });
    });
    if (const json::Value *d = model.find("dropout"); d && !d->is(json::Type::Null))
        bad(where, "BPE dropout is not supported (it makes tokenization random)");
    bpe->prefix_ = field_string(model, "continuing_subword_prefix", where);
    bpe->suffix_ = field_string(model, "end_of_word_suffix", where);
    bpe->byte_fallback_ = field_bool(model, "byte_fallback");
    bpe->fuse_unk_ = field_bool(model, "fuse_unk");
    bpe->ignore_merges_ = field_bool(model, "ignore_merges");
    if (std::string unk = field_string(model, "unk_token", where); !unk.empty()) {
        bpe->unk_id_ = bpe->written(unk, bytes);
        if (bpe->unk_id_ < 0) bad(where, "unk_token '" + unk + "' is not in the vocabulary");
    }
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        bpe->fallback_[size_t(b)] = bpe->written(name, bytes);
    }
    read_merges(model, where, *bpe);
    if (byte_level) read_byte_level(where, *bpe);
    return bpe;
}

}  // namespace routerm
