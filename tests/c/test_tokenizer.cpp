// Token-id parity of the native WordPiece tokenizer with HF BertTokenizerFast.
//
//   test_tokenizer TOKENIZER_DIR REFERENCE.jsonl
//
// REFERENCE comes from tests/c/dump_token_ids.py: raw ids of every test text of the five domains,
// edge cases and every code point; pair encodings under each truncation policy (truncation +
// [CLS] p [SEP] r [SEP], segment ids) and router encodings. Every line must match exactly; the
// first mismatches are printed.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "encode.hpp"
#include "error.hpp"
#include "json.hpp"
#include "tokenizer.hpp"

using namespace routerm;

static std::vector<int64_t> ints(const json::Value &v) {
    std::vector<int64_t> out;
    for (const json::Value &x : v.array) out.push_back(x.integer);
    return out;
}

static std::string show(const std::vector<int64_t> &v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
    return s + "]";
}

int main(int argc, char **argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s TOKENIZER_DIR REFERENCE.jsonl\n", argv[0]);
        return 2;
    }
    try {
        json::Value manifest_tokenizer = json::parse(R"({"kind": "wordpiece", "do_lower_case": true})");
        Tokenizer tok = Tokenizer::load(argv[1], manifest_tokenizer);
        std::ifstream in(argv[2]);
        if (!in) { std::fprintf(stderr, "cannot read %s\n", argv[2]); return 2; }
        std::string line;
        size_t texts = 0, pairs = 0, prompts = 0, bad = 0, tokens = 0;
        std::map<std::string, size_t> pairs_by_policy;
        while (std::getline(in, line)) {
            json::Value row = json::parse(line);
            std::vector<int64_t> want = ints(row.object.at("ids")), got, got_types;
            std::string what;
            if (const json::Value *text = row.find("text")) {
                got = tok.encode(text->string);
                what = "text";
                ++texts;
            } else if (const json::Value *max_length = row.find("max_length")) {
                const std::string &name = row.object.at("policy").string;
                Truncation policy{};
                if (!truncation_from_name(name, policy)) throw std::runtime_error("unknown policy '" + name + "'");
                Encoded e = encode_pair(tok.special(), tok.encode(row.object.at("prompt").string),
                                        tok.encode(row.object.at("response").string), long(max_length->integer), policy);
                got = e.ids;
                got_types = e.types;
                what = "pair, " + name;
                ++pairs;
                ++pairs_by_policy[name];
            } else {
                Encoded e = encode_prompt(tok.special(), tok.encode(row.object.at("prompt").string),
                                          long(row.object.at("router_max_length").integer));
                got = e.ids;
                got_types = e.types;
                what = "prompt";
                ++prompts;
            }
            tokens += want.size();
            bool same = got == want;
            if (const json::Value *types = row.find("types"); types && types->is(json::Type::Array))
                same = same && got_types == ints(*types);
            if (!same && ++bad <= 5) {
                std::string text = row.find("text") ? row.object.at("text").string : row.object.at("prompt").string;
                std::fprintf(stderr, "MISMATCH (%s) %.200s\n  want %s\n  got  %s\n", what.c_str(), text.c_str(),
                             show(want).substr(0, 400).c_str(), show(got).substr(0, 400).c_str());
            }
        }
        std::string per_policy;
        bool every_policy = pairs_by_policy.size() == std::size(kTruncationPolicies);
        for (const auto &[name, n] : pairs_by_policy) {
            per_policy += (per_policy.empty() ? "" : ", ") + name + " " + std::to_string(n);
            every_policy = every_policy && n >= 400;
        }
        std::printf("tokenizer parity: %zu texts, %zu pair encodings (%s), %zu router encodings, %zu tokens; %zu mismatches\n",
                    texts, pairs, per_policy.c_str(), prompts, tokens, bad);
        if (texts < 1000 || !every_policy || prompts < 200) {
            std::fprintf(stderr, "reference file too small (>= 400 pair encodings under each truncation policy wanted)\n");
            return 1;
        }
        return bad ? 1 : 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
