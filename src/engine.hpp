// Routing and scoring, as runtime.RewardEngine does it (see routerm.h for the three shapes).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "encode.hpp"
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
    const Tokenizer &tokenizer() const { return tokenizer_; }

    // Rewards [n] and domain per row (-1 when the method has no router) from un-special-tokened
    // ids; `given` (may be null): the domain of each row instead of the router's.
    void score_ids(const std::vector<std::vector<int64_t>> &prompts, const std::vector<std::vector<int64_t>> &responses,
                   float *rewards, int32_t *domains, const int32_t *given = nullptr) const;

    Encoded encode_pair(const std::string &prompt, const std::string &response) const;

private:
    // `output` of graph `role` for `rows` of `encoded`, in the order of `rows`, batched like
    // core.scoring.plan_batches; `adapter` gives the adapter_ids input per row when set.
    std::vector<Output> run_batched(const std::string &role, const std::vector<Encoded> &encoded,
                                    const std::vector<size_t> &rows, const std::string &output,
                                    const std::vector<int64_t> *adapter) const;
    std::vector<int32_t> route(const std::vector<std::vector<int64_t>> &prompts) const;

    Manifest manifest_;
    Tokenizer tokenizer_;
    EngineConfig config_;
    std::map<std::string, std::unique_ptr<Session>> sessions_;
};

}  // namespace routerm
