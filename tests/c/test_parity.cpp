// Parity of the C library (public ABI only) with the Python engine, the CLI's output, and the
// error paths of routerm_engine_create / routerm_score.
//
//   test_parity [--limit N] BUNDLE REFERENCE.jsonl       rewards, domains and token ids vs Python
//   test_parity --compare-cli OUT.jsonl BUNDLE REFERENCE.jsonl
//   test_parity --errors BUNDLE SCRATCH_DIR               bad bundles give a status + message
//
// REFERENCE (dump_reference.py): one object a line with prompt, response, reward, domain (name or
// null), given_domain/given_reward (scored in a given domain), ids/types (core.text.encode_pairs
// under the bundle's truncation policy, named in `policy`) and prompt_ids/response_ids (no special
// tokens).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "json.hpp"
#include "routerm.h"

namespace fs = std::filesystem;
using routerm::json::Type;
using routerm::json::Value;

namespace {

// fp32 bundles, the same graphs run by the same ONNX Runtime: the ids are equal, so only the
// summation order of differently padded micro-batches may differ.
constexpr double kRewardTolerance = 1e-5;

struct Row {
    std::string prompt, response, domain;   // domain "" = null
    std::string policy;                     // the truncation policy of ids
    float reward;
    std::vector<int64_t> ids, types, prompt_ids, response_ids;
    int32_t given_domain;
    float given_reward;
};

std::vector<int64_t> ints(const Value *v) {
    std::vector<int64_t> out;
    if (v && v->is(Type::Array))
        for (const Value &x : v->array) out.push_back(x.integer);
    return out;
}

std::vector<Row> read_reference(const std::string &path, size_t limit) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::vector<Row> rows;
    std::string line;
    while (rows.size() < limit && std::getline(in, line)) {
        Value v = routerm::json::parse(line);
        const Value *domain = v.find("domain");
        const Value *policy = v.find("policy");
        rows.push_back({v.object.at("prompt").string, v.object.at("response").string,
                        domain && domain->is(Type::String) ? domain->string : "",
                        policy && policy->is(Type::String) ? policy->string : "(not named)", float(v.object.at("reward").number),
                        ints(v.find("ids")), ints(v.find("types")), ints(v.find("prompt_ids")), ints(v.find("response_ids")),
                        int32_t(v.object.at("given_domain").integer), float(v.object.at("given_reward").number)});
    }
    return rows;
}

int report(const char *what, routerm_status s) {
    std::fprintf(stderr, "FAIL %s: %s: %s\n", what, routerm_status_name(s), routerm_last_error());
    return 1;
}

std::string domain_name(routerm_engine *rm, int32_t d) {
    const char *name = d >= 0 ? routerm_domain_name(rm, size_t(d)) : nullptr;
    return name ? name : "";
}

int parity(const char *bundle, const char *reference, size_t limit) {
    std::vector<Row> rows = read_reference(reference, limit);
    routerm_options options;
    routerm_options_init(&options);
    options.intra_op_threads = 1;
    routerm_engine *rm = nullptr;
    if (routerm_status s = routerm_engine_create(bundle, &options, &rm)) return report("create", s);
    size_t n = rows.size();
    std::vector<const char *> prompts, responses;
    for (const Row &r : rows) { prompts.push_back(r.prompt.c_str()); responses.push_back(r.response.c_str()); }
    std::vector<float> rewards(n), rewards_ids(n);
    std::vector<int32_t> domains(n), domains_ids(n);
    int failures = 0;
    routerm_status s = routerm_score(rm, n, prompts.data(), responses.data(), rewards.data(), domains.data());
    if (s) { failures += report("score", s); n = 0; }

    // The ids entry point with the reference's own (HF) ids must give the same rewards.
    std::vector<const int64_t *> p_ids, r_ids;
    std::vector<size_t> p_lens, r_lens;
    for (const Row &r : rows) {
        p_ids.push_back(r.prompt_ids.data()); p_lens.push_back(r.prompt_ids.size());
        r_ids.push_back(r.response_ids.data()); r_lens.push_back(r.response_ids.size());
    }
    s = routerm_score_ids(rm, n, p_ids.data(), p_lens.data(), r_ids.data(), r_lens.data(), rewards_ids.data(), domains_ids.data());
    if (s) { failures += report("score_ids", s); n = 0; }

    // Every domain's reward model, with the domain given instead of routed.
    std::vector<int32_t> given;
    std::vector<float> rewards_given(n);
    for (const Row &r : rows) given.push_back(r.given_domain);
    s = routerm_score_in_domains(rm, n, prompts.data(), responses.data(), given.data(), rewards_given.data());
    if (s) { failures += report("score_in_domains", s); n = 0; }

    double max_diff = 0, max_diff_ids = 0, max_diff_given = 0;
    size_t domain_mismatch = 0, id_mismatch = 0, bad_rows = 0;
    std::map<std::string, size_t> histogram;
    std::vector<int64_t> ids(4096), types(4096);
    for (size_t i = 0; i < n; ++i) {
        const Row &r = rows[i];
        double diff = std::fabs(double(rewards[i]) - double(r.reward));
        max_diff = std::max(max_diff, diff);
        max_diff_ids = std::max(max_diff_ids, std::fabs(double(rewards_ids[i]) - double(r.reward)));
        max_diff_given = std::max(max_diff_given, std::fabs(double(rewards_given[i]) - double(r.given_reward)));
        std::string got = domain_name(rm, domains[i]);
        histogram[got.empty() ? "(none)" : got]++;
        bool same_domain = got == r.domain && domains_ids[i] == domains[i];
        domain_mismatch += !same_domain;
        size_t count = 0;
        if ((s = routerm_encode_pair(rm, prompts[i], responses[i], ids.data(), types.data(), ids.size(), &count)))
            return report("encode_pair", s);
        bool same_ids = count == r.ids.size() && std::equal(r.ids.begin(), r.ids.end(), ids.begin()) &&
                        (r.types.empty() || std::equal(r.types.begin(), r.types.end(), types.begin()));
        id_mismatch += !same_ids;
        if ((diff > kRewardTolerance || !same_domain || !same_ids) && ++bad_rows <= 5)
            std::fprintf(stderr, "row %zu: reward %.8f vs %.8f, domain '%s' vs '%s', ids %s\n", i, double(rewards[i]),
                         double(r.reward), got.c_str(), r.domain.c_str(), same_ids ? "same" : "DIFFER");
    }
    std::printf("%s (%s, truncation %s): %zu pairs; max |reward - python| %.3g (routed, text), %.3g (routed, ids), "
                "%.3g (every domain given); %zu domain and %zu token-id mismatches; routed to:", bundle, routerm_method(rm),
                rows.empty() ? "" : rows[0].policy.c_str(), n, max_diff, max_diff_ids, max_diff_given, domain_mismatch,
                id_mismatch);
    for (const auto &[name, count] : histogram) std::printf(" %s=%zu", name.c_str(), count);
    std::printf("\n");
    routerm_engine_destroy(rm);
    if (n < std::min<size_t>(limit, 200)) { std::fprintf(stderr, "FAIL: only %zu pairs\n", n); ++failures; }
    return failures || max_diff > kRewardTolerance || max_diff_ids > kRewardTolerance || max_diff_given > kRewardTolerance ||
           domain_mismatch || id_mismatch;
}

int compare_cli(const char *out, const char *bundle, const char *reference) {
    std::vector<Row> rows = read_reference(reference, size_t(-1));
    std::ifstream in(out);
    std::string line;
    size_t i = 0, bad = 0;
    double max_diff = 0;
    for (; std::getline(in, line); ++i) {
        Value v = routerm::json::parse(line);
        if (i >= rows.size()) { ++bad; continue; }
        const Value *domain = v.find("domain");
        std::string got = domain && domain->is(Type::String) ? domain->string : "";
        double diff = std::fabs(v.object.at("reward").number - double(rows[i].reward));
        max_diff = std::max(max_diff, diff);
        bad += diff > kRewardTolerance || got != rows[i].domain;
    }
    std::printf("routerm-score %s: %zu lines (reference %zu), max |reward - python| %.3g, %zu mismatches\n", bundle, i,
                rows.size(), max_diff, bad);
    return bad || i != rows.size();
}

// Each case: what is done, the status expected, a piece of the message expected.
int expect(const char *what, routerm_status got, routerm_status want, const char *needle) {
    const char *msg = routerm_last_error();
    bool ok = got == want && (!needle || std::strstr(msg, needle));
    std::printf("%s %s: %s \"%s\"\n", ok ? "ok  " : "FAIL", what, routerm_status_name(got), msg);
    return ok ? 0 : 1;
}

std::string slurp(const fs::path &path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void rewrite(const fs::path &path, const std::string &from, const std::string &to) {
    std::string text = slurp(path);
    size_t at = text.find(from);
    if (at == std::string::npos) throw std::runtime_error("'" + from + "' not in " + path.string());
    text.replace(at, from.size(), to);
    std::ofstream(path, std::ios::trunc) << text;
}

// Replace the manifest's "truncation" field (an object without nested braces) by `field`
// ("\"truncation\": {...}"), or drop it when `field` is empty; a manifest without it gets it
// first. manifest.json is the one bundle file without a checksum, so the copy still verifies.
void set_truncation(const fs::path &manifest, const std::string &field) {
    std::string text = slurp(manifest);
    size_t at = text.find("\"truncation\"");
    if (at == std::string::npos) {
        if (!field.empty()) text.insert(text.find('{') + 1, field + ",");
    } else {
        size_t end = text.find('}', at) + 1;
        if (size_t next = text.find_first_not_of(" \n", end); field.empty() && next != std::string::npos && text[next] == ',')
            end = next + 1;   // and its comma
        text.replace(at, end - at, field);
    }
    std::ofstream(manifest, std::ios::trunc) << text;
}

std::string policy_field(const char *policy) {
    return std::string("\"truncation\": {\"policy\": \"") + policy + "\", \"prompt_min_divisor\": 4}";
}

int errors(const char *bundle, const char *scratch) {
    int failures = 0;
    routerm_engine *rm = reinterpret_cast<routerm_engine *>(1);
    failures += expect("no bundle", routerm_engine_create("/nonexistent/bundle", nullptr, &rm), ROUTERM_ERR_BUNDLE, "no manifest");
    failures += rm != nullptr;
    failures += expect("NULL dir", routerm_engine_create(nullptr, nullptr, &rm), ROUTERM_ERR_ARGUMENT, "bundle_dir is NULL");
    float reward;
    const char *text = "x";
    failures += expect("NULL engine", routerm_score(nullptr, 1, &text, &text, &reward, nullptr), ROUTERM_ERR_ARGUMENT, "engine");
    routerm_options options;
    routerm_options_init(&options);
    options.provider = "NoSuchExecutionProvider";
    failures += expect("unknown provider", routerm_engine_create(bundle, &options, &rm), ROUTERM_ERR_RUNTIME, "NoSuchExecutionProvider");

    auto fresh = [&](const char *name) {
        fs::path dir = fs::path(scratch) / name;
        fs::remove_all(dir);
        fs::create_directories(dir.parent_path());
        fs::copy(bundle, dir, fs::copy_options::recursive);
        return dir;
    };
    fs::path dir = fresh("checksum");
    std::ofstream(dir / "tokenizer_config.json", std::ios::app) << " ";
    failures += expect("changed file", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_CHECKSUM,
                       "bundle file 'tokenizer_config.json'");
    options.provider = nullptr;
    options.verify_checksums = 0;
    failures += expect("changed file, no verify", routerm_engine_create(dir.c_str(), &options, &rm), ROUTERM_OK, nullptr);
    routerm_engine_destroy(rm);

    dir = fresh("badjson");
    rewrite(dir / "manifest.json", "{", "[");
    failures += expect("bad manifest", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_BUNDLE, "not valid JSON");
    dir = fresh("method");
    rewrite(dir / "manifest.json", "\"method\": \"rodos\"", "\"method\": \"baseline\"");
    failures += expect("wrong graph set", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_BUNDLE, "needs graphs");
    dir = fresh("missing");
    fs::remove(dir / "router.onnx");
    failures += expect("missing graph", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_BUNDLE, "router.onnx");
    dir = fresh("escape");
    rewrite(dir / "manifest.json", "\"file\": \"router.onnx\"", "\"file\": \"../router.onnx\"");
    failures += expect("path outside", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_BUNDLE, "outside the bundle");

    // Imported models' fields this library does not read yet: per-part tokenizers, and a chat
    // template over a tokenizer it would otherwise apply as a text pair. Refused by field name.
    dir = fresh("parts");
    rewrite(dir / "manifest.json", "\"method\": \"rodos\"", "\"parts\": {\"router\": {}}, \"method\": \"rodos\"");
    failures += expect("parts", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_BUNDLE, "field 'parts'");
    dir = fresh("template");
    rewrite(dir / "manifest.json", "\"kind\": \"wordpiece\"", "\"kind\": \"wordpiece\", \"chat_template\": {}");
    failures += expect("template", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_BUNDLE,
                       "field 'tokenizer.chat_template'");

    // A tokenizer the C library does not implement: ids work, text is a clear error.
    dir = fresh("other");
    rewrite(dir / "manifest.json", "\"kind\": \"wordpiece\"", "\"kind\": \"other\"");
    failures += expect("other tokenizer", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_OK, nullptr);
    if (rm) {
        int32_t domain;
        failures += expect("text on other", routerm_score(rm, 1, &text, &text, &reward, &domain), ROUTERM_ERR_TOKENIZER,
                           "routerm_score_ids");
        int64_t ids[] = {7592, 2088};
        const int64_t *p = ids;
        size_t len = 2;
        failures += expect("ids on other", routerm_score_ids(rm, 1, &p, &len, &p, &len, &reward, &domain), ROUTERM_OK, nullptr);
        failures += !std::isfinite(reward);
        routerm_engine_destroy(rm);
    }

    // Truncation policies: unknown names and divisors are refused, naming the field; an over-long
    // pair is encoded the way the manifest says, and a manifest without the field (made before
    // it) the keep_response_cut_prompt_start way. The response ends in its one "zebra".
    dir = fresh("policy-unknown");
    set_truncation(dir / "manifest.json", policy_field("cut_response"));
    failures += expect("unknown policy", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_BUNDLE,
                       "field 'truncation.policy' is 'cut_response', expected one of the policies this library applies "
                       "(prompt_tail_response_head_tail, keep_response_cut_prompt_start)");
    dir = fresh("policy-divisor");
    set_truncation(dir / "manifest.json", "\"truncation\": {\"policy\": \"keep_response_cut_prompt_start\", \"prompt_min_divisor\": 3}");
    failures += expect("other divisor", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_BUNDLE,
                       "field 'truncation.prompt_min_divisor' must be 4");
    std::string long_prompt, long_response;
    for (int i = 0; i < 700; ++i) { long_prompt += "why "; long_response += "one "; }
    long_response += "zebra";
    auto encode = [&](const char *name, const std::string &field, std::vector<int64_t> &ids, int64_t *zebra) {
        fs::path copy = fresh(name);
        set_truncation(copy / "manifest.json", field);
        routerm_engine *engine = nullptr;
        std::string what = std::string(name) + ": load, encode_pair, tokenize";
        int bad = expect(what.c_str(), routerm_engine_create(copy.c_str(), nullptr, &engine), ROUTERM_OK, nullptr);
        size_t count = 0, n = 0;
        ids.assign(4096, -1);
        if (engine) {
            bad += expect(what.c_str(), routerm_encode_pair(engine, long_prompt.c_str(), long_response.c_str(), ids.data(),
                                                            nullptr, ids.size(), &count), ROUTERM_OK, nullptr);
            ids.resize(count);
            bad += expect(what.c_str(), routerm_tokenize(engine, "zebra", zebra, 1, &n), ROUTERM_OK, nullptr) + (n != 1);
        }
        routerm_engine_destroy(engine);
        return bad;
    };
    std::vector<int64_t> head_tail, keep_head, no_field;
    int64_t zebra = -1;
    failures += encode("policy-head-tail", policy_field("prompt_tail_response_head_tail"), head_tail, &zebra);
    failures += encode("policy-keep-head", policy_field("keep_response_cut_prompt_start"), keep_head, &zebra);
    failures += encode("policy-absent", "", no_field, &zebra);
    auto has_zebra = [&](const std::vector<int64_t> &ids) { return std::find(ids.begin(), ids.end(), zebra) != ids.end(); };
    bool ok = head_tail.size() == keep_head.size() && has_zebra(head_tail) && !has_zebra(keep_head) && no_field == keep_head;
    std::printf("%s policy encodings: %zu ids each; the response's end kept by head+tail: %s, by keep-head: %s; "
                "no field = keep-head: %s\n", ok ? "ok  " : "FAIL", head_tail.size(), has_zebra(head_tail) ? "yes" : "no",
                has_zebra(keep_head) ? "yes" : "no", no_field == keep_head ? "yes" : "no");
    failures += !ok;

    fs::remove_all(scratch);
    return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char **argv) {
    try {
        if (argc == 4 && std::strcmp(argv[1], "--errors") == 0) return errors(argv[2], argv[3]);
        if (argc == 5 && std::strcmp(argv[1], "--compare-cli") == 0) return compare_cli(argv[2], argv[3], argv[4]);
        if (argc == 5 && std::strcmp(argv[1], "--limit") == 0) return parity(argv[3], argv[4], std::stoul(argv[2]));
        if (argc == 3) return parity(argv[1], argv[2], size_t(-1));
        std::fprintf(stderr, "usage: test_parity [--limit N] BUNDLE REFERENCE | --compare-cli OUT BUNDLE REFERENCE | "
                             "--errors BUNDLE SCRATCH\n");
        return 2;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
