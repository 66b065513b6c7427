// Token ids -> model input, as core/text.py does it (the bundle's truncation policy, then the
// tokenizer's special-token template).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer.hpp"

namespace routerm {

struct Encoded {
    std::vector<int64_t> ids;     // with special tokens, unpadded
    std::vector<int64_t> types;   // token type (segment) ids, same length
};

// core.text's truncation policies: which of an over-long response's tokens are kept.
enum class Truncation {
    HeadTail,   // prompt_tail_response_head_tail (core.text.HEAD_TAIL): its start and its end
    KeepHead,   // keep_response_cut_prompt_start (core.text.KEEP_HEAD): its start only
};

// Both policies keep at least min(len(prompt), budget / kPromptMinDivisor) prompt tokens.
inline constexpr long kPromptMinDivisor = 4;   // core.text.PROMPT_MIN_DIVISOR

// The manifest's name of each policy (core.text.TRUNCATION_POLICIES, in that order).
struct TruncationName {
    Truncation policy;
    const char *name;
};
inline constexpr TruncationName kTruncationPolicies[] = {
    {Truncation::HeadTail, "prompt_tail_response_head_tail"},
    {Truncation::KeepHead, "keep_response_cut_prompt_start"},
};

// The policy named `name`; false (and `policy` untouched) when no policy has that name.
bool truncation_from_name(const std::string &name, Truncation &policy);

// core.text.truncate_pair: with budget = max_length - special tokens, nothing is cut if the
// pair fits; otherwise the prompt keeps min(len(prompt), budget / 4) tokens at least, the
// response gets room = budget - that, and, when longer, keeps
//   HeadTail: response[:room - room / 2] + response[len - room / 2:]   (its middle cut)
//   KeepHead: response[:room]                                          (its end cut);
// the prompt fills what is left with its *last* tokens. Throws Error(ROUTERM_ERR_ARGUMENT) when
// budget <= 0.
void truncate_pair(std::vector<int64_t> &prompt, std::vector<int64_t> &response, long budget, Truncation policy);

// core.text.encode_pairs for one pair of un-special-tokened ids.
Encoded encode_pair(const SpecialTemplate &special, std::vector<int64_t> prompt, std::vector<int64_t> response,
                    long max_length, Truncation policy);

// core.text.encode_prompts: the prompt alone, its start cut to fit router_max_length.
Encoded encode_prompt(const SpecialTemplate &special, std::vector<int64_t> prompt, long router_max_length);

}  // namespace routerm
