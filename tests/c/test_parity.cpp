// Parity of the C library (public ABI only) with the Python engine, the CLI's output, and (in
// bundle_errors.cpp) the error paths of routerm_engine_create / routerm_score.
//
//   test_parity [--limit N] BUNDLE REFERENCE.jsonl       rewards, domains and token ids vs Python
//   test_parity --compare-cli OUT.jsonl BUNDLE REFERENCE.jsonl
//   test_parity --errors BUNDLE SCRATCH_DIR [EXTERNAL]    bad bundles give a status + message
//                                                        (BUNDLE rodos; EXTERNAL: baseline-external)
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
    bool has_ids;                           // prompt_ids/response_ids given (null for chat/parts bundles)
    std::vector<std::pair<std::string, std::string>> prompt_messages, response_messages;   // (role, content)
    float messages_reward = 0;              // the engine's reward of the row as those messages
};

std::vector<std::pair<std::string, std::string>> messages(const Value *v) {
    std::vector<std::pair<std::string, std::string>> out;
    if (v && v->is(Type::Array))
        for (const Value &m : v->array) out.emplace_back(m.object.at("role").string, m.object.at("content").string);
    return out;
}

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
                        int32_t(v.object.at("given_domain").integer), float(v.object.at("given_reward").number),
                        v.find("prompt_ids") && v.find("prompt_ids")->is(Type::Array), messages(v.find("prompt_messages")),
                        messages(v.find("response_messages")),
                        v.find("messages_reward") ? float(v.object.at("messages_reward").number) : 0.0f});
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

// routerm_score_rows: text sides give routerm_score's rewards; message sides the Python engine's
// rewards of the same conversations (dump_reference.py's messages_reward). Returns failures.
int rows_parity(routerm_engine *rm, const std::vector<Row> &rows, const std::vector<float> &rewards) {
    size_t n = std::min(rows.size(), rewards.size());
    if (n == 0 || rows[0].prompt_messages.empty()) return 0;   // an older reference: nothing to compare
    std::vector<routerm_side> text_p, text_r, chat_p, chat_r;
    std::vector<std::vector<routerm_message>> store;
    store.reserve(2 * n);
    auto side = [&](const std::vector<std::pair<std::string, std::string>> &ms) {
        store.emplace_back();
        for (const auto &[role, content] : ms) store.back().push_back({role.c_str(), content.c_str()});
        return routerm_side{nullptr, store.back().data(), store.back().size()};
    };
    for (size_t i = 0; i < n; ++i) {
        text_p.push_back({rows[i].prompt.c_str(), nullptr, 0});
        text_r.push_back({rows[i].response.c_str(), nullptr, 0});
        chat_p.push_back(side(rows[i].prompt_messages));
        chat_r.push_back(side(rows[i].response_messages));
    }
    std::vector<float> got_text(n), got_chat(n);
    if (routerm_status s = routerm_score_rows(rm, n, text_p.data(), text_r.data(), got_text.data(), nullptr))
        return report("score_rows (text)", s);
    if (routerm_status s = routerm_score_rows(rm, n, chat_p.data(), chat_r.data(), got_chat.data(), nullptr))
        return report("score_rows (messages)", s);
    double text_diff = 0, chat_diff = 0;
    for (size_t i = 0; i < n; ++i) {
        text_diff = std::max(text_diff, std::fabs(double(got_text[i]) - double(rewards[i])));
        chat_diff = std::max(chat_diff, std::fabs(double(got_chat[i]) - double(rows[i].messages_reward)));
    }
    std::printf("routerm_score_rows: max |reward - routerm_score| %.3g (texts), |reward - python| %.3g (messages)\n",
                text_diff, chat_diff);
    return text_diff > 0 || chat_diff > kRewardTolerance;
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

    // The ids entry point with the reference's own (HF) ids must give the same rewards (bundles
    // whose rows read through a chat template or per-part tokenizers have no such ids).
    bool ids_path = std::all_of(rows.begin(), rows.end(), [](const Row &r) { return r.has_ids; });
    std::vector<const int64_t *> p_ids, r_ids;
    std::vector<size_t> p_lens, r_lens;
    for (const Row &r : rows) {
        p_ids.push_back(r.prompt_ids.data()); p_lens.push_back(r.prompt_ids.size());
        r_ids.push_back(r.response_ids.data()); r_lens.push_back(r.response_ids.size());
    }
    if (ids_path) {
        s = routerm_score_ids(rm, n, p_ids.data(), p_lens.data(), r_ids.data(), r_lens.data(), rewards_ids.data(),
                              domains_ids.data());
        if (s) { failures += report("score_ids", s); n = 0; }
    } else {
        rewards_ids.assign(rewards.begin(), rewards.end());   // compared with itself: reported as n/a below
        domains_ids.assign(domains.begin(), domains.end());
    }

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
    failures += rows_parity(rm, rows, rewards);
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

}  // namespace

// bundle_errors.cpp: the --errors mode.
int bundle_errors(const char *bundle, const char *scratch, const char *external);

int main(int argc, char **argv) {
    try {
        if ((argc == 4 || argc == 5) && std::strcmp(argv[1], "--errors") == 0)
            return bundle_errors(argv[2], argv[3], argc == 5 ? argv[4] : nullptr);
        if (argc == 5 && std::strcmp(argv[1], "--compare-cli") == 0) return compare_cli(argv[2], argv[3], argv[4]);
        if (argc == 5 && std::strcmp(argv[1], "--limit") == 0) return parity(argv[3], argv[4], std::stoul(argv[2]));
        if (argc == 3) return parity(argv[1], argv[2], size_t(-1));
        std::fprintf(stderr, "usage: test_parity [--limit N] BUNDLE REFERENCE | --compare-cli OUT BUNDLE REFERENCE | "
                             "--errors BUNDLE SCRATCH [EXTERNAL]\n");
        return 2;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
