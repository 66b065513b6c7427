// Routing and scoring, as runtime.RewardEngine does it (see routerm.h for the three shapes).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "encode.hpp"
#include "formats.hpp"
#include "manifest.hpp"
#include "ort.hpp"
#include "routerm.h"
#include "tokenizer.hpp"

namespace routerm {

struct EngineConfig {
    SessionConfig session;
    bool verify_checksums = true;
    // routerm.h's defaults, which equal core.scoring.BatchLimits's (tests/test_runtime.py checks)
    size_t max_rows = ROUTERM_DEFAULT_MAX_BATCH_ROWS, max_tokens = ROUTERM_DEFAULT_MAX_BATCH_TOKENS;
};

class Engine {
public:
    Engine(const std::string &bundle_dir, const EngineConfig &config);

    const Manifest &manifest() const { return manifest_; }
    // The top-level tokenizer (manifest "tokenizer"): what routerm_tokenize and the ids path read.
    const Tokenizer &tokenizer() const { return *formats_.at("").tokenizer; }

    // Rewards [n] and domain per row (-1 when the method has no router) from rows of text or
    // messages, each graph reading them its own way (its part's tokenizer, template and budget:
    // src/formats.hpp); `given` (may be null): the domain of each row instead of the router's.
    void score_rows(const std::vector<Row> &prompts, const std::vector<Row> &responses, float *rewards,
                    int32_t *domains, const int32_t *given = nullptr) const;
    // score_rows from un-special-tokened ids of the top-level tokenizer; Error(ROUTERM_ERR_ARGUMENT)
    // for a bundle whose graphs have tokenizers of their own (ids of which one?).
    void score_ids(const std::vector<std::vector<int64_t>> &prompts, const std::vector<std::vector<int64_t>> &responses,
                   float *rewards, int32_t *domains, const int32_t *given = nullptr) const;

    // The reward graphs' input of one pair of texts (the top-level format).
    Encoded encode_pair(const std::string &prompt, const std::string &response) const;

private:
    using RowEncoder = std::function<Encoded(const TextFormat &format, size_t row)>;
    const TextFormat &format(const std::string &role) const;
    void score(size_t n, const RowEncoder &reward, const RowEncoder &router, float *rewards, int32_t *domains,
               const int32_t *given) const;
    // `output` of graph `role` for `rows` of `encoded`, in the order of `rows`, batched like
    // core.scoring.plan_batches and padded with `pad`; `adapter` gives the adapter_ids input per row when set.
    std::vector<Output> run_batched(const std::string &role, const std::vector<Encoded> &encoded,
                                    const std::vector<size_t> &rows, const std::string &output,
                                    const std::vector<int64_t> *adapter, int64_t pad) const;
    std::vector<int32_t> route(size_t n, const RowEncoder &router) const;

    Manifest manifest_;
    std::map<std::string, Tokenizer> tokenizers_;   // by folder: parts may share one
    // by graph role, "router" for the routing pass, "" for the top-level tokenizer section
    std::map<std::string, TextFormat> formats_;
    EngineConfig config_;
    std::map<std::string, std::unique_ptr<Session>> sessions_;
};

}  // namespace routerm
