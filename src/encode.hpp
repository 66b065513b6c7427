// Token ids -> model input, as models/text.py does it (truncation policy
// keep_response_cut_prompt_start, then the tokenizer's special-token template).
#pragma once

#include <cstdint>
#include <vector>

#include "tokenizer.hpp"

namespace routerm {

struct Encoded {
    std::vector<int64_t> ids;     // with special tokens, unpadded
    std::vector<int64_t> types;   // token type (segment) ids, same length
};

// models.text.truncate_pair: with budget = max_length - special tokens, nothing is cut if the
// pair fits; otherwise the prompt keeps min(len(prompt), budget / 4) tokens at least, the
// response keeps its start up to the rest of the budget, and the prompt fills what is left with
// its *last* tokens. Throws Error(ROUTERM_ERR_ARGUMENT) when budget <= 0.
void truncate_pair(std::vector<int64_t> &prompt, std::vector<int64_t> &response, long budget);

// models.text.encode_pairs for one pair of un-special-tokened ids.
Encoded encode_pair(const SpecialTemplate &special, std::vector<int64_t> prompt, std::vector<int64_t> response,
                    long max_length);

// models.text.encode_prompts: the prompt alone, its start cut to fit router_max_length.
Encoded encode_prompt(const SpecialTemplate &special, std::vector<int64_t> prompt, long router_max_length);

}  // namespace routerm
