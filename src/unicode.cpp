#include "unicode.hpp"

#include <algorithm>
#include <iterator>

namespace routerm::unicode {

namespace {

struct UnicodeRange { uint32_t first, last; uint16_t flags; };
struct UnicodeMapping { uint32_t cp; uint32_t offset; uint8_t length; };

#include "unicode_tables.inc"

// Hangul syllables decompose arithmetically (Unicode 15, section 3.12) instead of by table.
constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = 11172;

template <size_t N>
const UnicodeMapping *find_mapping(const UnicodeMapping (&table)[N], uint32_t cp) {
    auto it = std::lower_bound(std::begin(table), std::end(table), cp,
                               [](const UnicodeMapping &m, uint32_t c) { return m.cp < c; });
    return (it != std::end(table) && it->cp == cp) ? it : nullptr;
}

}  // namespace

uint16_t flags(uint32_t cp) {
    auto it = std::upper_bound(std::begin(kFlagRanges), std::end(kFlagRanges), cp,
                               [](uint32_t c, const UnicodeRange &r) { return c < r.first; });
    if (it == std::begin(kFlagRanges)) return 0;
    --it;
    return cp <= it->last ? it->flags : 0;
}

bool folds_to(char letter, uint32_t cp) {
    static constexpr char kLetters[] = "strevmld";   // the row order of kFold
    for (size_t row = 0; row + 1 < sizeof kLetters; ++row)
        if (kLetters[row] == letter)
            for (uint32_t c : kFold[row])
                if (c && c == cp) return true;
    return false;
}

void decompose(uint32_t cp, std::vector<uint32_t> &out) {
    if (cp >= kSBase && cp < kSBase + kSCount) {
        uint32_t s = cp - kSBase;
        out.push_back(kLBase + s / kNCount);
        out.push_back(kVBase + (s % kNCount) / kTCount);
        if (s % kTCount) out.push_back(kTBase + s % kTCount);
        return;
    }
    if (const UnicodeMapping *m = find_mapping(kDecompose, cp)) {
        out.insert(out.end(), kDecomposePool + m->offset, kDecomposePool + m->offset + m->length);
        return;
    }
    out.push_back(cp);
}

void lower(uint32_t cp, std::vector<uint32_t> &out) {
    if (cp < 0x80) {   // the common case, no search
        out.push_back(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
        return;
    }
    if (const UnicodeMapping *m = find_mapping(kLower, cp)) {
        out.insert(out.end(), kLowerPool + m->offset, kLowerPool + m->offset + m->length);
        return;
    }
    out.push_back(cp);
}

std::vector<uint32_t> decode_utf8(const char *s, size_t n) {
    // Invalid input becomes one U+FFFD per maximal subpart (Unicode 15, section 3.9), exactly
    // what Python's bytes.decode("utf-8", "replace") gives.
    std::vector<uint32_t> out;
    out.reserve(n);
    const auto *p = reinterpret_cast<const unsigned char *>(s);
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80) { out.push_back(c); ++i; continue; }
        int need;                       // continuation bytes
        unsigned char lo = 0x80, hi = 0xBF;   // allowed range of the first continuation byte
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
        else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
        else { out.push_back(0xFFFD); ++i; continue; }
        size_t j = i + 1;
        for (int k = 0; k < need; ++k, ++j) {
            if (j >= n || p[j] < (k ? 0x80 : lo) || p[j] > (k ? 0xBF : hi)) break;
            cp = (cp << 6) | (p[j] & 0x3F);
        }
        out.push_back(j - i == size_t(need) + 1 ? cp : 0xFFFD);
        i = j;
    }
    return out;
}

void append_utf8(std::string &out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

namespace {

// Whether s[0..n) is well-formed UTF-8 (the sequences decode_utf8 accepts, nothing else).
bool well_formed(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c < 0x80) { ++i; continue; }
        size_t need = c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2 : c >= 0xF0 && c <= 0xF4 ? 3 : 0;
        if (need == 0 || n - i <= need) return false;   // not a lead byte, or the text ends inside it
        unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80, hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
        if (s[i + 1] < lo || s[i + 1] > hi) return false;
        for (size_t k = 2; k <= need; ++k)
            if ((s[i + k] & 0xC0) != 0x80) return false;
        i += need + 1;
    }
    return true;
}

}  // namespace

std::string valid_utf8(const std::string &text) {
    if (well_formed(reinterpret_cast<const unsigned char *>(text.data()), text.size())) return text;
    std::string out;
    out.reserve(text.size() + 8);
    for (uint32_t cp : decode_utf8(text.data(), text.size())) append_utf8(out, cp);
    return out;
}

const char *table_source() { return ROUTERM_UNICODE_SOURCE; }

}  // namespace routerm::unicode
