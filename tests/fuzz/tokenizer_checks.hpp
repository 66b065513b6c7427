// What fuzz_bpe and fuzz_unigram check on each encoding: the tokenizers of
// tests/fuzz/make_tokenizers.py (folder ROUTERM_FUZZ_TOKENIZERS), each read back independently of
// the library from its tokenizer.json (id -> the text it stands for), and these invariants of
// Tokenizer::encode(text), any bytes as text:
//   * every id is in the vocabulary (a model token or an added token);
//   * encode(text) == encode(text) (deterministic) == encode(valid_utf8(text)) (invalid UTF-8 reads
//     as U+FFFD, nothing else);
//   * Decode::Bytes (byte-level BPE, no normalizer): the ids' bytes, concatenated, are
//     valid_utf8(text) exactly; Decode::Spaces (SentencePiece-style, byte fallback): the same with
//     "<0xXX>" pieces read as their byte and every ' ' and U+2581 removed from both sides
//     (Decode::SpacesNoLt: on text without '<', so that no "<0xXX>" piece can match literally);
//   * split at an added token T (raw, ASCII, no lstrip/rstrip, not a prefix of another raw token):
//     encode(A + T + B) == encode(A) ++ encode(T + B), where A holds no first byte of a raw token;
//   * encode throws nothing but Error(ROUTERM_ERR_TOKENIZER), and that only where `may_throw`
//     (Unigram with unk_id null); then it throws for A + T + B iff for A or for T + B.
// A violated invariant prints what differs and aborts (a finding under libFuzzer or the driver).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "chat.hpp"
#include "error.hpp"
#include "json.hpp"
#include "tokenizer.hpp"
#include "unicode.hpp"
#include "util.hpp"

namespace fuzz {

enum class Decode { None, Bytes, Spaces, SpacesNoLt };

struct Spec {
    const char *name;   // a folder of make_tokenizers.py
    Decode decode;
    bool may_throw;
};

struct Case {
    Spec spec;
    routerm::Tokenizer tok;
    std::unordered_map<int64_t, std::string> text;   // id -> the bytes it stands for
    std::vector<std::pair<std::string, int64_t>> split_tokens;
    std::string starts;   // first bytes of the raw added tokens
};

[[noreturn]] inline void fail(const Case &c, const char *what, const std::string &text) {
    std::fprintf(stderr, "fuzz %s: %s (text of %zu bytes)\n", c.spec.name, what, text.size());
    std::abort();
}

// GPT-2's byte alphabet read back: character -> byte (written independently of src/bpe.cpp).
inline std::string from_byte_alphabet(const std::string &token) {
    std::unordered_map<uint32_t, char> back;
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
        bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
        back[printable ? b : next++] = char(b);
    }
    std::string out;
    for (uint32_t cp : routerm::unicode::decode_utf8(token.data(), token.size())) {
        auto it = back.find(cp);
        out += it == back.end() ? '?' : it->second;
    }
    return out;
}

// "<0xAB>" -> the byte 0xAB; anything else as it is.
inline std::string byte_piece(const std::string &piece) {
    static const char hex[] = "0123456789ABCDEF";
    auto digit = [](char h) { const char *p = std::strchr(hex, h); return p && h ? int(p - hex) : -1; };
    if (piece.size() == 6 && piece.compare(0, 3, "<0x") == 0 && piece[5] == '>' && digit(piece[3]) >= 0 &&
        digit(piece[4]) >= 0)
        return std::string(1, char(digit(piece[3]) * 16 + digit(piece[4])));
    return piece;
}

inline Case load_case(const Spec &spec, const std::string &dir) {
    std::string path = dir + "/" + spec.name + "/tokenizer.json";
    std::string json_text = routerm::read_file(path, ROUTERM_ERR_TOKENIZER);
    Case c{spec, routerm::Tokenizer::from_json(json_text, path), {}, {}, {}};
    routerm::json::Value root = routerm::json::parse(json_text);
    const routerm::json::Value &model = *root.find("model");
    const routerm::json::Value &vocab = *model.find("vocab");
    if (vocab.is(routerm::json::Type::Array)) {   // Unigram: [[piece, score], ...]
        for (size_t id = 0; id < vocab.array.size(); ++id)
            c.text[int64_t(id)] = byte_piece(vocab.array[id].array[0].string);
    } else {                                      // BPE: {token: id}
        for (const auto &[token, id] : vocab.object)
            c.text[id.integer] = spec.decode == Decode::Bytes ? from_byte_alphabet(token) : byte_piece(token);
    }
    std::vector<std::string> raw;
    for (const routerm::json::Value &a : root.find("added_tokens")->array) {
        const std::string &content = a.find("content")->string;
        c.text[a.find("id")->integer] = content;
        if (a.find("normalized")->boolean) continue;
        raw.push_back(content);
        c.starts += content[0];
    }
    for (const routerm::json::Value &a : root.find("added_tokens")->array) {
        const std::string &content = a.find("content")->string;
        bool usable = !a.find("normalized")->boolean && !a.find("lstrip")->boolean && !a.find("rstrip")->boolean;
        for (unsigned char ch : content) usable = usable && ch < 0x80;
        for (const std::string &other : raw) usable = usable && (other == content || other.rfind(content, 0) != 0);
        if (usable) c.split_tokens.emplace_back(content, a.find("id")->integer);
    }
    return c;
}

// The cases of `specs`, loaded once (abort when the folder is not set or a file does not load).
template <size_t N>
const std::vector<Case> &cases(const Spec (&specs)[N]) {
    static const std::vector<Case> loaded = [&] {
        const char *dir = std::getenv("ROUTERM_FUZZ_TOKENIZERS");
        if (!dir) {
            std::fprintf(stderr, "set ROUTERM_FUZZ_TOKENIZERS to the folder tests/fuzz/make_tokenizers.py writes\n");
            std::abort();
        }
        std::vector<Case> out;
        for (const Spec &s : specs) out.push_back(load_case(s, dir));
        return out;
    }();
    return loaded;
}

// encode(text) -> ids; false when it threw Error(ROUTERM_ERR_TOKENIZER) and the case may throw.
inline bool encode(const Case &c, const std::string &text, std::vector<int64_t> &ids) {
    try {
        ids = c.tok.encode(text);
        return true;
    } catch (const routerm::Error &e) {
        if (!c.spec.may_throw || e.status != ROUTERM_ERR_TOKENIZER) {
            std::fprintf(stderr, "unexpected routerm::Error %d: %s\n", int(e.status), e.what());
            fail(c, "encode threw", text);
        }
        return false;
    }
}

inline std::string without_spaces(const std::string &s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == ' ') continue;
        if (s.compare(i, 3, "\xE2\x96\x81") == 0) { i += 2; continue; }   // U+2581
        out += s[i];
    }
    return out;
}

inline void check_decode(const Case &c, const std::string &text) {
    if (c.spec.decode == Decode::None) return;
    std::string input = text;
    if (c.spec.decode == Decode::SpacesNoLt) input.erase(std::remove(input.begin(), input.end(), '<'), input.end());
    std::vector<int64_t> ids;
    if (!encode(c, input, ids)) return;
    std::string decoded;
    for (int64_t id : ids) {
        auto it = c.text.find(id);
        if (it == c.text.end()) fail(c, "an id outside the vocabulary", input);
        decoded += it->second;
    }
    std::string want = routerm::valid_utf8(input);
    if (c.spec.decode != Decode::Bytes) decoded = without_spaces(decoded), want = without_spaces(want);
    if (decoded != want) fail(c, "the ids do not spell the text", text);
}

inline void check_split(const Case &c, const std::string &a_raw, const std::string &b, uint8_t pick) {
    if (c.split_tokens.empty()) return;
    const auto &[token, token_id] = c.split_tokens[pick % c.split_tokens.size()];
    std::string a;
    for (char ch : a_raw)
        if (c.starts.find(ch) == std::string::npos) a += ch;
    std::vector<int64_t> whole, left, right;
    bool ok_whole = encode(c, a + token + b, whole), ok_left = encode(c, a, left);
    bool ok_right = encode(c, token + b, right);
    if (ok_whole != (ok_left && ok_right)) fail(c, "split at an added token: throws differently", a + token + b);
    if (!ok_whole) return;
    if (right.empty() || right[0] != token_id) fail(c, "an added token is not its id", token + b);
    left.insert(left.end(), right.begin(), right.end());
    if (left != whole) fail(c, "encode(A + T + B) != encode(A) ++ encode(T + B)", a + token + b);
}

// Every invariant of the header on `text`; `pick` chooses the added token for the split check,
// made at the first 0xFF byte of `text` (never UTF-8), or at its middle.
inline void check_text(const Case &c, const std::string &text, uint8_t pick) {
    std::vector<int64_t> ids, again, valid;
    bool ok = encode(c, text, ids);
    if (ok != encode(c, text, again) || ids != again) fail(c, "not deterministic", text);
    if (ok != encode(c, routerm::valid_utf8(text), valid) || ids != valid)
        fail(c, "invalid UTF-8 does not read as U+FFFD", text);
    for (int64_t id : ids)
        if (!c.text.count(id)) fail(c, "an id outside the vocabulary", text);
    check_decode(c, text);
    size_t cut = text.find('\xff');
    if (cut == std::string::npos) cut = text.size() / 2;
    check_split(c, text.substr(0, cut), text.substr(std::min(cut + 1, text.size())), pick);
}

// Parse mode: `json_text` as a whole tokenizer.json. Loading either succeeds or throws
// Error(ROUTERM_ERR_TOKENIZER); what loads encodes a fixed text twice alike, or throws that Error.
inline void check_load(const std::string &json_text) {
    static const std::string sample =
        "Hello w\xc3\xb6rld 123 <s> [CLS] \xe2\x96\x81\xe6\x97\xa5\xe6\x9c\xac \xff\xc3 can't\n\n";
    try {
        routerm::Tokenizer tok = routerm::Tokenizer::from_json(json_text, "fuzz/tokenizer.json");
        if (tok.encode(sample) != tok.encode(sample)) std::abort();
        (void)tok.encode(json_text.substr(0, 64));
    } catch (const routerm::Error &e) {
        if (e.status != ROUTERM_ERR_TOKENIZER) {
            std::fprintf(stderr, "tokenizer.json refused with status %d: %s\n", int(e.status), e.what());
            std::abort();
        }
    }
}

// One input of a tokenizer target: [selector][pick] text. selector % (N + 1) picks a case of `specs`,
// or, for N, the rest of the input is a tokenizer.json to load (check_load).
template <size_t N>
int run_input(const Spec (&specs)[N], const uint8_t *data, size_t size) {
    const std::vector<Case> &all = cases(specs);
    if (size < 2) return 0;
    size_t mode = data[0] % (N + 1);
    if (mode == N) check_load(std::string(reinterpret_cast<const char *>(data) + 1, size - 1));
    else check_text(all[mode], std::string(reinterpret_cast<const char *>(data) + 2, size - 2), data[1]);
    return 0;
}

}  // namespace fuzz
