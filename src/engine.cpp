#include "engine.hpp"

#include <algorithm>
#include <numeric>

#include "error.hpp"
#include "util.hpp"

namespace routerm {

namespace {

// core.scoring.plan_batches: rows sorted by length (stable), cut greedily so that
// rows x longest row <= max_tokens and rows <= max_rows; a lone over-long row gets its own batch.
std::vector<std::vector<size_t>> plan_batches(const std::vector<size_t> &lengths, size_t max_rows, size_t max_tokens) {
    std::vector<size_t> order(lengths.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return lengths[a] < lengths[b]; });
    std::vector<std::vector<size_t>> batches;
    std::vector<size_t> current;
    for (size_t i : order) {
        if (!current.empty() && (current.size() >= max_rows || (current.size() + 1) * lengths[i] > max_tokens)) {
            batches.push_back(std::move(current));
            current.clear();
        }
        current.push_back(i);
    }
    if (!current.empty()) batches.push_back(std::move(current));
    return batches;
}

}  // namespace

Engine::Engine(const std::string &bundle_dir, const EngineConfig &config)
    : manifest_(load_manifest(bundle_dir, config.verify_checksums)),
      tokenizer_(Tokenizer::load(manifest_.tokenizer_dir, manifest_.tokenizer)),
      config_(config) {
    if (config.max_rows == 0 || config.max_tokens == 0)
        throw Error(ROUTERM_ERR_ARGUMENT, "max_batch_rows and max_batch_tokens must be positive");
    for (const auto &[role, graph] : manifest_.graphs)
        sessions_[role] = std::make_unique<Session>(join_path(bundle_dir, graph.file), config.session);
}

Encoded Engine::encode_pair(const std::string &prompt, const std::string &response) const {
    return routerm::encode_pair(tokenizer_.special(), tokenizer_.encode(prompt), tokenizer_.encode(response),
                                manifest_.max_length, manifest_.truncation);
}

std::vector<Output> Engine::run_batched(const std::string &role, const std::vector<Encoded> &encoded,
                                        const std::vector<size_t> &rows, const std::string &output,
                                        const std::vector<int64_t> *adapter) const {
    const Graph &graph = manifest_.graphs.at(role);
    const Session &session = *sessions_.at(role);
    std::vector<size_t> lengths;
    for (size_t r : rows) lengths.push_back(encoded[r].ids.size());
    std::vector<Output> result(rows.size());
    for (const std::vector<size_t> &batch : plan_batches(lengths, config_.max_rows, config_.max_tokens)) {
        int64_t b = int64_t(batch.size()), width = 0;
        for (size_t j : batch) width = std::max(width, int64_t(lengths[j]));
        Tensor ids{"input_ids", std::vector<int64_t>(size_t(b * width), tokenizer_.pad_id()), {b, width}};
        Tensor mask{"attention_mask", std::vector<int64_t>(size_t(b * width), 0), {b, width}};
        Tensor types{"token_type_ids", std::vector<int64_t>(size_t(b * width), 0), {b, width}};
        Tensor adapters{"adapter_ids", {}, {b}};
        for (int64_t k = 0; k < b; ++k) {
            const Encoded &e = encoded[rows[batch[size_t(k)]]];
            std::copy(e.ids.begin(), e.ids.end(), ids.data.begin() + k * width);
            std::fill_n(mask.data.begin() + k * width, e.ids.size(), 1);
            std::copy(e.types.begin(), e.types.end(), types.data.begin() + k * width);
            if (adapter) adapters.data.push_back((*adapter)[rows[batch[size_t(k)]]]);
        }
        std::vector<Tensor> feeds;
        feeds.push_back(std::move(ids));
        feeds.push_back(std::move(mask));
        if (graph.takes("token_type_ids")) feeds.push_back(std::move(types));
        if (graph.takes("adapter_ids")) {
            if (!adapter) throw Error(ROUTERM_ERR_INTERNAL, "graph '" + role + "' needs adapter_ids");
            feeds.push_back(std::move(adapters));
        }
        Output out = std::move(session.run(feeds, {output})[0]);
        if (out.shape.empty() || out.shape[0] != b)
            throw Error(ROUTERM_ERR_BUNDLE, "graph '" + role + "' output '" + output + "' has no batch dimension of " + std::to_string(b));
        size_t per_row = out.data.size() / size_t(b);
        for (int64_t k = 0; k < b; ++k) {
            Output &row = result[batch[size_t(k)]];
            row.shape.assign(out.shape.begin() + 1, out.shape.end());
            row.data.assign(out.data.begin() + k * per_row, out.data.begin() + (k + 1) * per_row);
        }
    }
    return result;
}

std::vector<int32_t> Engine::route(const std::vector<std::vector<int64_t>> &prompts) const {
    // Identical prompts are routed once (as RewardEngine._route does), in first-seen order.
    std::map<std::vector<int64_t>, size_t> index;
    std::vector<size_t> back;
    std::vector<Encoded> unique;
    for (const auto &p : prompts) {
        auto [it, fresh] = index.emplace(p, unique.size());
        if (fresh) unique.push_back(encode_prompt(tokenizer_.special(), p, manifest_.router_max_length));
        back.push_back(it->second);
    }
    std::vector<size_t> rows(unique.size());
    std::iota(rows.begin(), rows.end(), 0);
    std::vector<Output> logits;
    if (manifest_.switchable()) {
        std::vector<int64_t> router(unique.size(), manifest_.adapter_ids.at("router"));
        logits = run_batched("switchable", unique, rows, "router_logits", &router);
    } else {
        logits = run_batched("router", unique, rows, "logits", nullptr);
    }
    size_t n = manifest_.domains.size();
    std::vector<int32_t> picked(unique.size());
    for (size_t i = 0; i < unique.size(); ++i) {
        if (logits[i].data.size() != n)
            throw Error(ROUTERM_ERR_BUNDLE, "router graph returned " + std::to_string(logits[i].data.size()) +
                                                " logits per row, expected " + std::to_string(n));
        // numpy argmax: the first of equal maxima
        picked[i] = int32_t(std::max_element(logits[i].data.begin(), logits[i].data.end()) - logits[i].data.begin());
    }
    std::vector<int32_t> out;
    for (size_t u : back) out.push_back(picked[u]);
    return out;
}

void Engine::score_ids(const std::vector<std::vector<int64_t>> &prompts, const std::vector<std::vector<int64_t>> &responses,
                       float *rewards, int32_t *domains, const int32_t *given) const {
    size_t n = prompts.size();
    if (n == 0) return;
    std::vector<int32_t> ids(n, -1);
    if (given) {
        for (size_t i = 0; i < n; ++i)
            if (given[i] < 0 || size_t(given[i]) >= manifest_.domains.size())
                throw Error(ROUTERM_ERR_ARGUMENT, "domains_in[" + std::to_string(i) + "] is " + std::to_string(given[i]) +
                                                      ", not a domain index of this bundle (0.." +
                                                      std::to_string(manifest_.domains.size() - 1) + ")");
        ids.assign(given, given + n);
    } else if (manifest_.routed()) {
        ids = route(prompts);
    }
    std::vector<Encoded> encoded;
    for (size_t i = 0; i < n; ++i)
        encoded.push_back(routerm::encode_pair(tokenizer_.special(), prompts[i], responses[i], manifest_.max_length,
                                               manifest_.truncation));
    std::vector<size_t> rows(n);
    std::iota(rows.begin(), rows.end(), 0);
    auto put = [&](const std::vector<size_t> &group, const std::vector<Output> &out) {
        for (size_t k = 0; k < group.size(); ++k) {
            if (out[k].data.size() != 1)
                throw Error(ROUTERM_ERR_BUNDLE, "reward graph returned " + std::to_string(out[k].data.size()) + " values per row, expected 1");
            rewards[group[k]] = out[k].data[0];
        }
    };
    if (manifest_.graphs.count("reward")) {
        put(rows, run_batched("reward", encoded, rows, "logits", nullptr));
    } else if (manifest_.switchable()) {
        std::vector<int64_t> adapter;
        for (int32_t d : ids) adapter.push_back(manifest_.adapter_ids.at(manifest_.domains[size_t(d)]));
        put(rows, run_batched("switchable", encoded, rows, "rewards", &adapter));
    } else {
        for (size_t d = 0; d < manifest_.domains.size(); ++d) {
            std::vector<size_t> group;
            for (size_t i = 0; i < n; ++i)
                if (ids[i] == int32_t(d)) group.push_back(i);
            if (!group.empty()) put(group, run_batched("reward/" + manifest_.domains[d], encoded, group, "logits", nullptr));
        }
    }
    if (domains) std::copy(ids.begin(), ids.end(), domains);
}

}  // namespace routerm
