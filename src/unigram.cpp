// The Unigram model (src/unigram.hpp): a double-array trie over the pieces' bytes and a forward
// Viterbi pass over byte positions, giving exactly what tokenizers 0.22's Unigram::encode_optimized
// and Model::tokenize give. As tokenizers behaves:
//   * a piece listed twice answers to its last id, and scores with that id's score; the minimum
//     score (for the unknown node) is taken over every entry, repeats included;
//   * best[p] is the best path ending at byte p; starts are visited left to right, each start's
//     matches shortest first, then its unknown node; a candidate replaces best[p] only when
//     strictly greater, so among equal sums the path whose last piece starts earliest wins;
//   * a candidate's sum is piece score + best[start] in double, as tokenizers adds them;
//   * every path node whose id is unk_id (an unknown node, or a match of the unk piece itself)
//     joins its neighbours of that id into one span; the span's id is the vocabulary's id of the
//     span's text when it has one, else with byte_fallback the "<0xXX>" ids of its bytes when all
//     of them exist, else unk_id;
//   * with unk_id null, an unknown node that would become best[p] makes encode throw
//     Error(ROUTERM_ERR_TOKENIZER), as tokenizers fails the whole encode; one that loses is harmless.
// A word that is not valid UTF-8 (tokenizers never sees one) reads each maximal invalid subpart
// as one character, as unicode::decode_utf8 does, so any bytes encode without failing.
#include "unigram.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <utility>

#include "error.hpp"

namespace routerm {

namespace {

constexpr double kUnkPenalty = 10.0;   // tokenizers' K_UNK_PENALTY: unknown node = min score - 10

[[noreturn]] void bad(const std::string &where, const std::string &what) {
    throw Error(ROUTERM_ERR_TOKENIZER, where + ": " + what);
}

// Bytes in the character that starts at p[0] (1..4, never past n): a valid UTF-8 sequence, or one
// maximal invalid subpart.
size_t char_len(const unsigned char *p, size_t n) {
    unsigned char c = p[0];
    if (c < 0x80) return 1;
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;   // allowed range of the first continuation byte
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) { need = 2; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 3; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 1;
    size_t j = 1;
    for (; j <= need && j < n; ++j) {
        unsigned char lo_j = j == 1 ? lo : 0x80, hi_j = j == 1 ? hi : 0xBF;
        if (p[j] < lo_j || p[j] > hi_j) break;
    }
    return j;
}

// The double serde_json (default features, as tokenizers 0.22 is built) reads for a valid JSON
// number literal, or NaN where serde_json refuses it as out of range. Not correctly rounded (strtod
// differs in the last bit for 6-24% of the 17-digit scores of vocabularies trained here): up to
// 19-20 significant digits kept in a u64 (later integer digits only scale, later fraction digits
// are dropped), then one multiply or divide by a power of ten.
double serde_f64(const std::string &lit) {
    static const std::vector<double> pow10 = [] {
        std::vector<double> p(309);
        for (size_t k = 0; k < p.size(); ++k) p[k] = std::strtod(("1e" + std::to_string(k)).c_str(), nullptr);
        return p;
    }();
    constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
    auto overflows = [](uint64_t sig, uint64_t d) { return sig > kMax / 10 || (sig == kMax / 10 && d > kMax % 10); };
    const double nan = std::numeric_limits<double>::quiet_NaN();
    size_t i = 0;
    const bool positive = lit[0] != '-';
    if (!positive) ++i;
    uint64_t sig = 0;
    int64_t exp = 0;
    bool long_integer = false;
    for (; i < lit.size() && lit[i] >= '0' && lit[i] <= '9'; ++i) {
        uint64_t d = uint64_t(lit[i] - '0');
        long_integer = long_integer || overflows(sig, d);
        if (long_integer) ++exp;
        else sig = sig * 10 + d;
    }
    if (i < lit.size() && lit[i] == '.') {
        for (++i; i < lit.size() && lit[i] >= '0' && lit[i] <= '9'; ++i) {
            uint64_t d = uint64_t(lit[i] - '0');
            if (overflows(sig, d)) {   // this digit and every later fraction digit are dropped
                while (i + 1 < lit.size() && lit[i + 1] >= '0' && lit[i + 1] <= '9') ++i;
                continue;
            }
            sig = sig * 10 + d;
            --exp;
        }
    }
    if (i < lit.size() && (lit[i] == 'e' || lit[i] == 'E')) {
        ++i;
        const bool exp_positive = lit[i] != '-';
        if (lit[i] == '+' || lit[i] == '-') ++i;
        int64_t e = 0;
        for (; i < lit.size(); ++i) {
            e = e * 10 + (lit[i] - '0');
            if (e > std::numeric_limits<int32_t>::max()) return sig != 0 && exp_positive ? nan : positive ? 0.0 : -0.0;
        }
        exp = exp_positive ? exp + e : exp - e;
        exp = std::clamp<int64_t>(exp, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max());
    }
    double f = double(sig);
    for (; exp < -308 && f != 0.0; exp += 308) f /= 1e308;   // serde's steps below the table
    if (exp > 308 && f != 0.0) return nan;
    if (std::abs(exp) <= 308) f = exp >= 0 ? f * pow10[size_t(exp)] : f / pow10[size_t(-exp)];
    if (std::isinf(f)) return nan;
    return positive ? f : -f;
}

// A double-array trie over bytes: the child of slot s by byte c is t = base[s] + c when
// check[t] == s; id >= 0 marks a slot that ends a piece. The array is padded by 256 slots past the
// largest base, so base[s] + c never needs a bounds check.
class Trie {
public:
    struct Slot { int32_t base = 0, check = -1, id = -1; };

    struct Key { std::string_view bytes; int32_t id; };
    // keys: distinct, sorted by bytes.
    void build(const std::vector<Key> &keys);

    const Slot *slots() const { return slots_.data(); }
    // The id of exactly `key`, or -1.
    int32_t find(const unsigned char *key, size_t n) const {
        int32_t s = 0;
        for (size_t i = 0; i < n; ++i) {
            int32_t t = slots_[size_t(s)].base + key[i];
            if (slots_[size_t(t)].check != s) return -1;
            s = t;
        }
        return slots_[size_t(s)].id;
    }

private:
    int32_t place(const unsigned char *labels, size_t count, int32_t parent);
    size_t next_free(size_t i);

    std::vector<Slot> slots_;
    std::vector<uint32_t> skip_;   // build only: skip_[i] == i for an unused slot, else a slot after i
};

// The lowest unused slot >= i (union-find with path compression over used slots).
size_t Trie::next_free(size_t i) {
    size_t r = i;
    while (r < skip_.size() && skip_[r] != r) r = skip_[r];
    for (size_t next; i < r; i = next) next = std::exchange(skip_[i], uint32_t(r));
    return r;
}

// The lowest base >= 1 whose slots base + labels[k] are all unused, claimed for `parent`.
// labels: ascending, count >= 1.
int32_t Trie::place(const unsigned char *labels, size_t count, int32_t parent) {
    for (size_t p = next_free(labels[0] + 1u);; p = next_free(p + 1)) {
        const size_t base = p - labels[0];
        bool fits = true;
        for (size_t k = 1; fits && k < count; ++k)
            fits = base + labels[k] >= slots_.size() || slots_[base + labels[k]].check == -1;
        if (!fits) continue;
        if (slots_.size() < base + 257) {
            size_t old = skip_.size();
            slots_.resize(base + 257);
            skip_.resize(base + 257);
            for (size_t j = old; j < skip_.size(); ++j) skip_[j] = uint32_t(j);
        }
        for (size_t k = 0; k < count; ++k) {
            slots_[base + labels[k]].check = parent;
            skip_[base + labels[k]] = uint32_t(base + labels[k] + 1);
        }
        return int32_t(base);
    }
}

void Trie::build(const std::vector<Key> &keys) {
    slots_.assign(512, Slot{});
    slots_[0].check = -2;   // the root: used, and nobody's child
    skip_.resize(slots_.size());
    for (size_t j = 0; j < skip_.size(); ++j) skip_[j] = uint32_t(j);
    skip_[0] = 1;
    struct Work { int32_t slot; size_t depth, lo, hi; };   // node at `slot`: keys[lo, hi) share depth bytes
    std::vector<Work> stack{{0, 0, 0, keys.size()}};
    unsigned char labels[256];
    size_t ends[256];
    while (!stack.empty()) {
        const Work w = stack.back();
        stack.pop_back();
        size_t lo = w.lo, count = 0;
        if (lo < w.hi && keys[lo].bytes.size() == w.depth) slots_[size_t(w.slot)].id = keys[lo++].id;
        for (size_t i = lo; i < w.hi; ++count) {   // one child per distinct byte at `depth`
            const auto c = static_cast<unsigned char>(keys[i].bytes[w.depth]);
            while (i < w.hi && static_cast<unsigned char>(keys[i].bytes[w.depth]) == c) ++i;
            labels[count] = c;
            ends[count] = i;
        }
        if (count == 0) continue;
        const int32_t base = place(labels, count, w.slot);
        slots_[size_t(w.slot)].base = base;
        for (size_t k = 0; k < count; ++k)
            stack.push_back({base + labels[k], w.depth + 1, k ? ends[k - 1] : lo, ends[k]});
    }
    skip_ = {};
}

// One position of the Viterbi pass: the best path ending at this byte offset.
// Left uninitialized on purpose (words run on a stack array); viterbi() sets [0, n].
struct Best {
    double score;
    int64_t start;   // where its last piece starts; -1 while no path ends here
    int32_t id;      // its last piece's id (unk_id for an unknown node)
};

class Unigram final : public Model {
public:
    Unigram(std::vector<double> scores, double min_score, int32_t unk_id, bool byte_fallback, std::string where)
        : scores_(std::move(scores)), unk_score_(min_score - kUnkPenalty), unk_id_(unk_id),
          byte_fallback_(byte_fallback), where_(std::move(where)) {}
    void build_trie(const std::vector<std::string_view> &pieces);

    void encode(std::string_view word, std::vector<int64_t> &out) const override;

private:
    void viterbi(const unsigned char *w, size_t n, Best *best) const;
    void emit_unknown(const unsigned char *span, size_t n, std::vector<int64_t> &out) const;

    Trie trie_;
    std::vector<double> scores_;   // by id
    double unk_score_;
    int32_t unk_id_;               // -1: none
    bool byte_fallback_;
    int32_t byte_ids_[256];        // id of "<0xXX>", or -1
    std::string where_;
};

void Unigram::build_trie(const std::vector<std::string_view> &pieces) {
    // Copied into one buffer (the views point all over the JSON tree) and sorted by (bytes, id),
    // comparing a big-endian 8-byte prefix first: sorting is most of the load time.
    std::string arena;
    arena.reserve(std::accumulate(pieces.begin(), pieces.end(), size_t(0),
                                  [](size_t total, std::string_view p) { return total + p.size(); }));
    for (std::string_view p : pieces) arena += p;
    struct Entry { uint64_t prefix; Trie::Key key; };
    std::vector<Entry> order(pieces.size());
    for (size_t i = 0, at = 0; i < pieces.size(); at += pieces[i].size(), ++i) {
        uint64_t prefix = 0;
        for (size_t k = 0; k < 8; ++k)
            prefix = prefix << 8 | (k < pieces[i].size() ? static_cast<unsigned char>(pieces[i][k]) : 0u);
        order[i] = {prefix, {std::string_view(arena).substr(at, pieces[i].size()), int32_t(i)}};
    }
    std::sort(order.begin(), order.end(), [](const Entry &a, const Entry &b) {
        if (a.prefix != b.prefix) return a.prefix < b.prefix;
        int c = a.key.bytes.compare(b.key.bytes);   // string_view compares bytes as unsigned
        return c < 0 || (c == 0 && a.key.id < b.key.id);
    });
    std::vector<Trie::Key> keys;   // of equal pieces only the last id, the one tokenizers answers
    keys.reserve(order.size());
    for (size_t i = 0; i < order.size(); ++i)
        if (i + 1 == order.size() || order[i].key.bytes != order[i + 1].key.bytes) keys.push_back(order[i].key);
    trie_.build(keys);
    for (unsigned b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        byte_ids_[b] = trie_.find(reinterpret_cast<const unsigned char *>(name), 6);
    }
}

// best[0..n]: best[p] for every character boundary p (other offsets may hold dead entries).
void Unigram::viterbi(const unsigned char *w, size_t n, Best *best) const {
    const Trie::Slot *slots = trie_.slots();
    best[0] = Best{0.0, -1, -1};
    for (size_t p = 1; p <= n; ++p) best[p].start = -1;
    for (size_t i = 0; i < n;) {
        const double here = best[i].score;
        const size_t clen = char_len(w + i, n - i);
        bool single = false;   // some piece is exactly the character at i
        int32_t s = 0;
        for (size_t j = i; j < n; ++j) {
            int32_t t = slots[s].base + w[j];
            if (slots[t].check != s) break;
            s = t;
            int32_t id = slots[s].id;
            if (id < 0) continue;
            double cand = scores_[size_t(id)] + here;
            Best &b = best[j + 1];
            if (b.start < 0 || cand > b.score) b = Best{cand, int64_t(i), id};
            single = single || j + 1 - i == clen;
        }
        if (!single) {
            double cand = unk_score_ + here;
            Best &b = best[i + clen];
            if (b.start < 0 || cand > b.score) {
                if (unk_id_ < 0) bad(where_, "character at byte " + std::to_string(i) +
                                                 " is in no piece and unk_id is null");
                b = Best{cand, int64_t(i), unk_id_};
            }
        }
        i += clen;
    }
}

// The ids of one span of fused unknown pieces.
void Unigram::emit_unknown(const unsigned char *span, size_t n, std::vector<int64_t> &out) const {
    if (int32_t id = trie_.find(span, n); id >= 0) return out.push_back(id);
    if (byte_fallback_) {
        bool all = true;
        for (size_t k = 0; all && k < n; ++k) all = byte_ids_[span[k]] >= 0;
        if (all) {
            for (size_t k = 0; k < n; ++k) out.push_back(byte_ids_[span[k]]);
            return;
        }
    }
    out.push_back(unk_id_);
}

void Unigram::encode(std::string_view word, std::vector<int64_t> &out) const {
    const size_t n = word.size();
    if (n == 0) return;
    const auto *w = reinterpret_cast<const unsigned char *>(word.data());
    constexpr size_t kSmall = 256;   // words up to this many bytes run on the stack
    Best small[kSmall + 1];
    std::vector<Best> large(n > kSmall ? n + 1 : 0);
    Best *best = n > kSmall ? large.data() : small;
    viterbi(w, n, best);

    // Walk back from n, turning each boundary's link around: best[p].start becomes the next
    // boundary after p on the best path (best[q].id stays the id of the piece ending at q).
    for (int64_t q = int64_t(n), p = best[n].start;;) {
        int64_t prev = best[p].start;
        best[p].start = q;
        if (p == 0) break;
        q = p;
        p = prev;
    }
    size_t unk_begin = n;   // start of the pending run of unk_id pieces; n: none
    for (size_t p = 0, q; p < n; p = q) {
        q = size_t(best[p].start);
        int32_t id = best[q].id;
        if (unk_id_ >= 0 && id == unk_id_) {
            if (unk_begin == n) unk_begin = p;
            continue;
        }
        if (unk_begin != n) emit_unknown(w + unk_begin, p - unk_begin, out);
        unk_begin = n;
        out.push_back(id);
    }
    if (unk_begin != n) emit_unknown(w + unk_begin, n - unk_begin, out);
}

}  // namespace

std::unique_ptr<Model> load_unigram(const json::Value &model, const std::string &where) {
    if (!model.is(json::Type::Object)) bad(where, "model is not an object");
    const json::Value *type = model.find("type");
    if (type && !(type->is(json::Type::String) && type->string == "Unigram")) bad(where, "model.type is not \"Unigram\"");
    const json::Value *vocab = model.find("vocab");
    if (!vocab || !(vocab->is(json::Type::Array) || vocab->is(json::Type::Deferred)))
        bad(where, "model.vocab is missing or not an array");
    std::vector<std::string> owned;   // the pieces (a deferred vocabulary is read item by item)
    std::vector<double> scores;
    double min_score = std::numeric_limits<double>::infinity();   // over every entry, repeats included
    try {
        json::each_item(*vocab, [&](const json::Value &item) {
            size_t i = owned.size();
            if (!item.is(json::Type::Array) || item.array.size() != 2 || !item.array[0].is(json::Type::String) ||
                !item.array[1].is(json::Type::Number))
                bad(where, "model.vocab[" + std::to_string(i) + "] is not [piece, score]");
            owned.push_back(item.array[0].string);
            scores.push_back(serde_f64(item.array[1].literal));   // the bits tokenizers reads, not strtod's
            if (std::isnan(scores[i])) bad(where, "model.vocab[" + std::to_string(i) + "] score is out of range");
            min_score = std::min(min_score, scores[i]);
        });
    } catch (const Error &) {
        throw;
    } catch (const std::exception &e) {
        bad(where, std::string("model.vocab: ") + e.what());
    }
    const size_t n = owned.size();
    if (n == 0) bad(where, "model.vocab is empty");
    if (n >= size_t(std::numeric_limits<int32_t>::max())) bad(where, "model.vocab has too many pieces");
    std::vector<std::string_view> pieces(owned.begin(), owned.end());
    int32_t unk_id = -1;
    if (const json::Value *unk = model.find("unk_id"); unk && !unk->is(json::Type::Null)) {
        if (!unk->is(json::Type::Number) || !unk->integral || unk->integer < 0 || unk->integer >= int64_t(n))
            bad(where, "model.unk_id is not null or an id below the vocabulary size " + std::to_string(n));
        unk_id = int32_t(unk->integer);
    }
    bool byte_fallback = false;
    if (const json::Value *bf = model.find("byte_fallback"); bf && !bf->is(json::Type::Null)) {
        if (!bf->is(json::Type::Bool)) bad(where, "model.byte_fallback is not a boolean");
        byte_fallback = bf->boolean;
    }
    auto m = std::make_unique<Unigram>(std::move(scores), min_score, unk_id, byte_fallback, where);
    m->build_trie(pieces);
    return m;
}

}  // namespace routerm
