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
    : manifest_(load_manifest(bundle_dir, config.verify_checksums)), config_(config) {
    if (config.max_rows == 0 || config.max_tokens == 0)
        throw Error(ROUTERM_ERR_ARGUMENT, "max_batch_rows and max_batch_tokens must be positive");
    // How each graph reads text (runtime.engine.text_formats): "" is the top-level section.
    std::vector<std::string> roles{""};
    for (const auto &[role, graph] : manifest_.graphs) roles.push_back(role);
    if (manifest_.routed()) roles.push_back("router");
    for (const std::string &role : roles) {
        Part part = role.empty() ? Part{manifest_.tokenizer, manifest_.tokenizer_dir, manifest_.max_length}
                                 : manifest_.part_of(role);
        auto it = tokenizers_.find(part.tokenizer_dir);
        if (it == tokenizers_.end())
            it = tokenizers_.emplace(part.tokenizer_dir, Tokenizer::load(part.tokenizer_dir, part.tokenizer)).first;
        TextFormat f;
        f.tokenizer = &it->second;
        f.max_length = part.max_length;
        f.pad_id = it->second.pad_id();
        f.policy = manifest_.truncation;
        const json::Value *chat = part.tokenizer.find("chat_template");
        if (chat && !chat->is(json::Type::Null))
            f.chat = ChatFormat::from_json(*chat, join_path(bundle_dir, "manifest.json") + ": " +
                                                      (manifest_.parts.count(role) ? "parts." + role + ".tokenizer" : "tokenizer") +
                                                      ".chat_template");
        formats_.emplace(role, std::move(f));
    }
    for (const auto &[role, graph] : manifest_.graphs) {
        check_graph_data(manifest_, role);   // before ONNX Runtime opens the graph and its data
        sessions_[role] = std::make_unique<Session>(join_path(bundle_dir, graph.file), config.session);
    }
}

const TextFormat &Engine::format(const std::string &role) const {
    auto it = formats_.find(role);
    if (it == formats_.end()) throw Error(ROUTERM_ERR_INTERNAL, "no text format for graph role '" + role + "'");
    return it->second;
}

Encoded Engine::encode_pair(const std::string &prompt, const std::string &response) const {
    Row p, r;
    p.text = prompt;
    r.text = response;
    return encode_row(format(""), p, r, 0);
}

std::vector<Output> Engine::run_batched(const std::string &role, const std::vector<Encoded> &encoded,
                                        const std::vector<size_t> &rows, const std::string &output,
                                        const std::vector<int64_t> *adapter, int64_t pad) const {
    const Graph &graph = manifest_.graphs.at(role);
    const Session &session = *sessions_.at(role);
    std::vector<size_t> lengths;
    for (size_t r : rows) lengths.push_back(encoded[r].ids.size());
    std::vector<Output> result(rows.size());
    for (const std::vector<size_t> &batch : plan_batches(lengths, config_.max_rows, config_.max_tokens)) {
        int64_t b = int64_t(batch.size()), width = 0;
        for (size_t j : batch) width = std::max(width, int64_t(lengths[j]));
        Tensor ids{"input_ids", std::vector<int64_t>(size_t(b * width), pad), {b, width}};
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

std::vector<int32_t> Engine::route(size_t n, const RowEncoder &router) const {
    // Identical prompts are routed once (as RewardEngine._route does), in first-seen order.
    const TextFormat &fmt = format("router");
    std::map<std::vector<int64_t>, size_t> index;
    std::vector<size_t> back;
    std::vector<Encoded> unique;
    for (size_t i = 0; i < n; ++i) {
        Encoded e = router(fmt, i);
        auto [it, fresh] = index.emplace(e.ids, unique.size());
        if (fresh) unique.push_back(std::move(e));
        back.push_back(it->second);
    }
    std::vector<size_t> rows(unique.size());
    std::iota(rows.begin(), rows.end(), 0);
    std::vector<Output> logits;
    if (manifest_.switchable()) {
        std::vector<int64_t> adapter(unique.size(), manifest_.adapter_ids.at("router"));
        logits = run_batched("switchable", unique, rows, "router_logits", &adapter, fmt.pad_id);
    } else {
        logits = run_batched("router", unique, rows, "logits", nullptr, fmt.pad_id);
    }
    size_t domains = manifest_.domains.size();
    std::vector<int32_t> picked(unique.size());
    for (size_t i = 0; i < unique.size(); ++i) {
        if (logits[i].data.size() != domains)
            throw Error(ROUTERM_ERR_BUNDLE, "router graph returned " + std::to_string(logits[i].data.size()) +
                                                " logits per row, expected " + std::to_string(domains));
        // numpy argmax: the first of equal maxima
        picked[i] = int32_t(std::max_element(logits[i].data.begin(), logits[i].data.end()) - logits[i].data.begin());
    }
    std::vector<int32_t> out;
    for (size_t u : back) out.push_back(picked[u]);
    return out;
}

void Engine::score(size_t n, const RowEncoder &reward, const RowEncoder &router, float *rewards, int32_t *domains,
                   const int32_t *given) const {
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
        ids = route(n, router);
    }
    auto put = [&](const std::vector<size_t> &group, const std::vector<Output> &out) {
        for (size_t k = 0; k < group.size(); ++k) {
            if (out[k].data.size() != 1)
                throw Error(ROUTERM_ERR_BUNDLE, "reward graph returned " + std::to_string(out[k].data.size()) + " values per row, expected 1");
            rewards[group[k]] = out[k].data[0];
        }
    };
    // Each graph encodes the rows it scores, in its own format; the others are not encoded for it.
    auto encode_for = [&](const std::string &role, const std::vector<size_t> &group) {
        std::vector<Encoded> encoded(n);
        const TextFormat &fmt = format(role);
        for (size_t i : group) encoded[i] = reward(fmt, i);
        return encoded;
    };
    std::vector<size_t> rows(n);
    std::iota(rows.begin(), rows.end(), 0);
    if (manifest_.graphs.count("reward")) {
        put(rows, run_batched("reward", encode_for("reward", rows), rows, "logits", nullptr, format("reward").pad_id));
    } else if (manifest_.switchable()) {
        std::vector<int64_t> adapter;
        for (int32_t d : ids) adapter.push_back(manifest_.adapter_ids.at(manifest_.domains[size_t(d)]));
        put(rows, run_batched("switchable", encode_for("switchable", rows), rows, "rewards", &adapter,
                             format("switchable").pad_id));
    } else {
        for (size_t d = 0; d < manifest_.domains.size(); ++d) {
            std::vector<size_t> group;
            for (size_t i = 0; i < n; ++i)
                if (ids[i] == int32_t(d)) group.push_back(i);
            std::string role = "reward/" + manifest_.domains[d];
            if (!group.empty()) put(group, run_batched(role, encode_for(role, group), group, "logits", nullptr, format(role).pad_id));
        }
    }
    if (domains) std::copy(ids.begin(), ids.end(), domains);
}

void Engine::score_rows(const std::vector<Row> &prompts, const std::vector<Row> &responses, float *rewards,
                        int32_t *domains, const int32_t *given) const {
    score(
        prompts.size(), [&](const TextFormat &f, size_t i) { return encode_row(f, prompts[i], responses[i], i); },
        [&](const TextFormat &f, size_t i) { return encode_router_prompt(f, prompts[i], i); }, rewards, domains, given);
}

void Engine::score_ids(const std::vector<std::vector<int64_t>> &prompts, const std::vector<std::vector<int64_t>> &responses,
                       float *rewards, int32_t *domains, const int32_t *given) const {
    if (!manifest_.parts.empty())
        throw Error(ROUTERM_ERR_ARGUMENT, "this bundle's graphs read text with tokenizers of their own (manifest field "
                                          "'parts'): token ids cannot be given for all of them; score texts instead");
    score(
        prompts.size(),
        [&](const TextFormat &f, size_t i) {
            return routerm::encode_pair(f.tokenizer->special(), prompts[i], responses[i], f.max_length, f.policy);
        },
        [&](const TextFormat &f, size_t i) { return encode_prompt(f.tokenizer->special(), prompts[i], f.max_length); },
        rewards, domains, given);
}

}  // namespace routerm
