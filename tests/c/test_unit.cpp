// Unit checks without a bundle: sha256 vectors, the JSON reader, routerm-score's id echo, both truncation policies against
// values from core.text.truncate_pair, UTF-8 decoding, and the ABI's argument errors.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli/jsonl.hpp"
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

    // routerm-score echoes a line's id as written (a fuzz finding: 1.5e3001 was echoed as `inf`, not
    // JSON; 1e-9 as 0.000000; integers beyond int64 lost their digits)
    for (const char *id : {"1.5e3001", "1e-9", "-0.25", "123456789012345678901234", "7", "\"x\"", "null"}) {
        cli::Row row = cli::parse_pair_line(std::string(R"({"prompt": "p", "response": "r", "id": )") + id + "}");
        CHECK(row.id_json == id);
    }

    // routerm-score lines: a side is a string or {"role", "content"} messages; anything else is named
    {
        cli::Row row = cli::parse_pair_line(
            R"({"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "response": "Hello"})");
        CHECK(row.prompt.is_messages && row.prompt.messages.size() == 2 && row.prompt.messages[1].second == "Hi");
        CHECK(!row.response.is_messages && row.response.text == "Hello");
        for (const char *bad : {R"({"prompt": [], "response": "r"})", R"({"prompt": [{"role": "user"}], "response": "r"})",
                                R"({"prompt": "p", "response": [{"role": "assistant", "content": 3}]})",
                                R"({"prompt": "p", "response": [{"role": "assistant", "content": "a\u0000b"}]})",
                                R"({"prompt": 1, "response": "r"})"}) {
            bool threw = false;
            try { cli::parse_pair_line(bad); } catch (const std::runtime_error &) { threw = true; }
            CHECK(threw);
        }
    }

    // truncate_pair under both policies: prompt = 0..np-1, response = 100..100+nr-1; the values are
    // core.text.truncate_pair's (prompt keeps its last keep_p tokens, response keeps its first
    // head and last tail tokens). budget 10 -> room 8 (even), 11 -> 9 (odd), 1 -> 1 (all head).
    struct Case { Truncation policy; int np, nr, budget, keep_p, head, tail; };
    const Truncation H = Truncation::HeadTail, K = Truncation::KeepHead;
    for (Case c : {
             //   np   nr budget keep_p head tail
             Case{H,  3,   4,  10,   3,   4,  0}, Case{K,  3,   4,  10,   3,   4,  0},   // fits: nothing cut
             Case{H, 20,  20,  10,   2,   4,  4}, Case{K, 20,  20,  10,   2,   8,  0},   // room 8
             Case{H, 20,  20,  11,   2,   5,  4}, Case{K, 20,  20,  11,   2,   9,  0},   // room 9: odd token to the head
             Case{H,  5,   5,   1,   0,   1,  0}, Case{K,  5,   5,   1,   0,   1,  0},   // room 1
             Case{H,  0,   5,   1,   0,   1,  0}, Case{K,  0,   5,   1,   0,   1,  0},
             Case{H,  5,   5,   2,   0,   1,  1}, Case{K,  5,   5,   2,   0,   2,  0},   // room 2
             Case{H,  5,   5,   3,   0,   2,  1}, Case{K,  5,   5,   3,   0,   3,  0},   // room 3
             Case{H, 30,   2,  10,   8,   2,  0}, Case{K, 30,   2,  10,   8,   2,  0},   // response shorter than room
             Case{H,  7,   7,  13,   6,   7,  0}, Case{K,  7,   7,  13,   6,   7,  0},
             Case{H, 20,   8,  10,   2,   8,  0}, Case{K, 20,   8,  10,   2,   8,  0},   // response = room
             Case{H, 20,   9,  10,   2,   4,  4}, Case{K, 20,   9,  10,   2,   8,  0},   // response = room + 1
             Case{H,  0,  30,  10,   0,   5,  5}, Case{K,  0,  30,  10,   0,  10,  0},   // empty prompt
             Case{H,  0,  30,  11,   0,   6,  5}, Case{K,  0,  30,  11,   0,  11,  0},
             Case{H, 30,   0,  10,  10,   0,  0}, Case{K, 30,   0,  10,  10,   0,  0},   // empty response
             Case{H,  0,   0,   1,   0,   0,  0}, Case{K,  0,   0,   1,   0,   0,  0},   // both empty
             Case{H,  1,  30,  12,   1,   6,  5}, Case{K,  1,  30,  12,   1,  11,  0},   // prompt < budget / 4
             Case{H,100, 300, 126,  31,  48, 47}, Case{K,100, 300, 126,  31,  95,  0}}) {
        std::vector<int64_t> p = range(0, c.np), r = range(100, 100 + c.nr);
        truncate_pair(p, r, c.budget, c.policy);
        std::vector<int64_t> want_r = range(100, 100 + c.head), tail = range(100 + c.nr - c.tail, 100 + c.nr);
        want_r.insert(want_r.end(), tail.begin(), tail.end());
        CHECK(p == range(c.np - c.keep_p, c.np));
        CHECK(r == want_r);
    }
    for (Truncation policy : {H, K}) {
        bool threw = false;
        try { std::vector<int64_t> p{1}, r{2}; truncate_pair(p, r, 0, policy); } catch (const Error &e) { threw = e.status == ROUTERM_ERR_ARGUMENT; }
        CHECK(threw);
    }
    // The manifest's names (core.text.HEAD_TAIL, KEEP_HEAD); anything else is not a policy.
    Truncation policy = K;
    CHECK(truncation_from_name("prompt_tail_response_head_tail", policy) && policy == H);
    CHECK(truncation_from_name("keep_response_cut_prompt_start", policy) && policy == K);
    CHECK(!truncation_from_name("cut_response", policy) && !truncation_from_name("", policy) && policy == K);

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
    CHECK(o.verify_checksums == 1 && o.max_batch_rows == ROUTERM_DEFAULT_MAX_BATCH_ROWS &&
          o.max_batch_tokens == ROUTERM_DEFAULT_MAX_BATCH_TOKENS && o.provider == nullptr);
    CHECK(std::strcmp(routerm_status_name(ROUTERM_ERR_CHECKSUM), "ROUTERM_ERR_CHECKSUM") == 0);

    std::printf("unit: %d failures\n", failures);
    return failures ? 1 : 0;
}
