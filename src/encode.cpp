#include "encode.hpp"

#include <algorithm>
#include <string>

#include "error.hpp"

namespace routerm {

bool truncation_from_name(const std::string &name, Truncation &policy) {
    for (const TruncationName &t : kTruncationPolicies)
        if (name == t.name) {
            policy = t.policy;
            return true;
        }
    return false;
}

void truncate_pair(std::vector<int64_t> &prompt, std::vector<int64_t> &response, long budget, Truncation policy) {
    if (budget <= 0)
        throw Error(ROUTERM_ERR_ARGUMENT, "max_length leaves no room for text (budget " + std::to_string(budget) + ")");
    long np = long(prompt.size()), nr = long(response.size());
    if (np + nr <= budget) return;
    long keep_prompt_min = std::min(np, budget / kPromptMinDivisor);
    long room = budget - keep_prompt_min;   // >= 1: budget / 4 < budget
    if (nr > room) {
        if (policy == Truncation::HeadTail) {
            long tail = room / 2;   // the head gets the odd token
            response.erase(response.begin() + (room - tail), response.end() - tail);
        } else {
            response.resize(size_t(room));
        }
    }
    long keep_prompt = budget - long(response.size());   // < np here, since the pair did not fit
    prompt.erase(prompt.begin(), prompt.begin() + (np - keep_prompt));
}

Encoded encode_pair(const SpecialTemplate &special, std::vector<int64_t> prompt, std::vector<int64_t> response,
                    long max_length, Truncation policy) {
    truncate_pair(prompt, response, max_length - long(special.num_special(true)), policy);
    Encoded e;
    special.build(prompt, &response, e.ids, e.types);
    return e;
}

Encoded encode_prompt(const SpecialTemplate &special, std::vector<int64_t> prompt, long router_max_length) {
    long budget = router_max_length - long(special.num_special(false));
    if (budget <= 0)
        throw Error(ROUTERM_ERR_ARGUMENT, "router_max_length leaves no room for text (budget " + std::to_string(budget) + ")");
    if (long(prompt.size()) > budget) prompt.erase(prompt.begin(), prompt.end() - budget);
    Encoded e;
    special.build(prompt, nullptr, e.ids, e.types);
    return e;
}

}  // namespace routerm
