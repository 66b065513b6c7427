// Unit checks without a bundle: sha256 vectors, the JSON reader, the truncation policy against
// values from models.text.truncate_pair, UTF-8 decoding, and the ABI's argument errors.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "encode.hpp"
#include "error.hpp"
#include "json.hpp"
#include "routerm.h"
#include "sha256.hpp"
#include "unicode.hpp"

using namespace routerm;

static int failures = 0;
#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) { std::fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); ++failures; } \
    } while (0)

static std::string sha(const std::string &s) {
    Sha256 h;
    h.update(s.data(), s.size());
    return h.hex_digest();
}

static std::vector<int64_t> range(int64_t lo, int64_t hi) {
    std::vector<int64_t> v;
    for (int64_t i = lo; i < hi; ++i) v.push_back(i);
    return v;
}

int main() {
    // FIPS 180-4 examples.
    CHECK(sha("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    {
        Sha256 h;   // one million 'a', fed in uneven pieces
        std::string chunk(997, 'a');
        size_t left = 1000000;
        while (left) { size_t n = std::min(left, chunk.size()); h.update(chunk.data(), n); left -= n; }
        CHECK(h.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    }

    // JSON: escapes, surrogate pairs, lone surrogates -> U+FFFD, numbers, errors.
    json::Value v = json::parse(R"({"a": [1, -2.5e1, true, null], "s": "x\u00e9\ud83d\ude00\ud800y\n", "a": 3})");
    CHECK(v.find("a")->integer == 3);   // duplicate key: the last wins
    CHECK(v.find("s")->string == "x\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbdy\n");
    CHECK(json::parse("[1, -2.5e1]").array[1].number == -25.0);
    for (const char *bad : {"", "{", "[1,]", "{\"a\" 1}", "\"\\x\"", "01", "[1] 2", "\"a\nb\""}) {
        bool threw = false;
        try { json::parse(bad); } catch (const std::runtime_error &) { threw = true; }
        CHECK(threw);
    }
    CHECK(json::quote("a\"b\\\x01") == "\"a\\\"b\\\\\\u0001\"");

    // truncate_pair, values from models.text.truncate_pair.
    struct Case { int np, nr, budget, keep_p, keep_r; };
    for (Case c : {Case{3, 4, 10, 3, 4}, Case{20, 20, 10, 2, 8}, Case{2, 30, 10, 2, 8}, Case{30, 2, 10, 8, 2},
                   Case{0, 30, 10, 0, 10}, Case{7, 7, 13, 6, 7}}) {
        std::vector<int64_t> p = range(0, c.np), r = range(100, 100 + c.nr);
        truncate_pair(p, r, c.budget);
        CHECK(int(p.size()) == c.keep_p && int(r.size()) == c.keep_r);
        CHECK(p.empty() || p.back() == c.np - 1);    // the prompt keeps its end
        CHECK(r.empty() || r.front() == 100);        // the response keeps its start
    }
    bool threw = false;
    try { std::vector<int64_t> p, r; truncate_pair(p, r, 0); } catch (const Error &e) { threw = e.status == ROUTERM_ERR_ARGUMENT; }
    CHECK(threw);

    // UTF-8: invalid bytes, overlongs and surrogates read as U+FFFD, one per maximal subpart.
    const char bytes[] = "a\xff\xc3\xa9\xed\xa0\x80\xc0\xaf\xf0\x9f\x98\x80\xe2\x82";
    auto cps = unicode::decode_utf8(bytes, sizeof bytes - 1);
    // = list(b"...".decode("utf-8", "replace"))
    std::vector<uint32_t> want = {'a', 0xFFFD, 0xE9, 0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD, 0x1F600, 0xFFFD};
    CHECK(cps == want);

    // ABI argument errors: statuses and messages, nothing aborts.
    routerm_engine *rm = nullptr;
    CHECK(routerm_engine_create("/nonexistent", nullptr, nullptr) == ROUTERM_ERR_ARGUMENT);
    CHECK(std::strstr(routerm_last_error(), "engine is NULL") != nullptr);
    CHECK(routerm_engine_create("/nonexistent", nullptr, &rm) == ROUTERM_ERR_BUNDLE && rm == nullptr);
    CHECK(std::strstr(routerm_last_error(), "/nonexistent/manifest.json") != nullptr);
    size_t count = 0;
    CHECK(routerm_tokenize(nullptr, "x", nullptr, 0, &count) == ROUTERM_ERR_ARGUMENT);
    CHECK(routerm_num_domains(nullptr) == 0 && routerm_domain_name(nullptr, 0) == nullptr);
    routerm_engine_destroy(nullptr);
    routerm_options o;
    routerm_options_init(&o);
    CHECK(o.verify_checksums == 1 && o.max_batch_rows == 256 && o.max_batch_tokens == 8192 && o.provider == nullptr);
    CHECK(std::strcmp(routerm_status_name(ROUTERM_ERR_CHECKSUM), "ROUTERM_ERR_CHECKSUM") == 0);

    std::printf("unit: %d failures\n", failures);
    return failures ? 1 : 0;
}
