// core/formats.py in C++ (a row -> the ids one graph reads); the formats are described in formats.hpp.
// Python's Formatted text (vLLM's pre-rendered input) has no C counterpart.
#include "formats.hpp"

#include <algorithm>

#include "error.hpp"

namespace routerm {

namespace {

// core.chat.conversation for one side: a text is one message of `role`; messages must not be empty.
std::vector<Message> side_messages(const Row &row, const char *name, const char *role) {
    if (!row.is_messages) return {Message{role, row.text}};
    if (row.messages.empty()) throw Error(ROUTERM_ERR_ARGUMENT, std::string(name) + " has no messages");
    return row.messages;
}

// core.formats._check_think: a template that writes an empty think block before the final answer
// (Qwen3) would move text before a "</think>" in that answer into the block; fixed text cannot.
void check_think(const ChatFormat &chat, size_t index, const std::vector<Message> &response) {
    if (chat.writes_think_block() && !response.empty() && response.back().role == "assistant" &&
        response.back().content.find(kThinkEnd) != std::string::npos)
        throw Error(ROUTERM_ERR_ARGUMENT,
                    "response " + std::to_string(index) + " holds '" + kThinkEnd +
                        "': this model's chat template moves the reasoning before it into a think block, which "
                        "RouteRM's fixed-text template does not reproduce; score the final answer without its "
                        "reasoning");
}

Encoded zero_types(std::vector<int64_t> ids) {
    Encoded e;
    e.types.assign(ids.size(), 0);
    e.ids = std::move(ids);
    return e;
}

}  // namespace

std::string flatten(const Row &row, bool response) {
    if (!row.is_messages) return valid_utf8(row.text);
    std::string out;
    for (size_t i = 0; i < row.messages.size(); ++i) {
        if (i) out += "\n\n";
        if (!response) out += flat_role(row.messages[i].role) + ": ";
        out += valid_utf8(row.messages[i].content);
    }
    return out;
}

std::pair<std::string, std::string> chat_split(const ChatFormat &chat, const Row &prompt, const Row &response,
                                               size_t index) {
    std::vector<Message> prompt_msgs = side_messages(prompt, "prompt", "user");
    std::vector<Message> response_msgs = side_messages(response, "response", "assistant");
    check_think(chat, index, response_msgs);
    return chat.render_pair(prompt_msgs, response_msgs);
}

std::string chat_prompt(const ChatFormat &chat, const Row &prompt) {
    return chat.render(side_messages(prompt, "prompt", "user"));
}

Encoded encode_row(const TextFormat &format, const Row &prompt, const Row &response, size_t index) {
    const Tokenizer &tok = *format.tokenizer;
    if (!format.chat)
        return encode_pair(tok.special(), tok.encode(flatten(prompt, false)), tok.encode(flatten(response, true)),
                           format.max_length, format.policy);
    auto [head, tail] = chat_split(*format.chat, prompt, response, index);
    std::vector<int64_t> ids = tok.encode(head + tail);
    if (long(ids.size()) > format.max_length) {
        // Cut as a pair: the text before the response content, and the rest (which keeps the end of
        // turn a decoder pools).
        std::vector<int64_t> p = tok.encode(head), r = tok.encode(tail);
        truncate_pair(p, r, format.max_length, format.policy);
        ids = std::move(p);
        ids.insert(ids.end(), r.begin(), r.end());
    }
    return zero_types(std::move(ids));
}

Encoded encode_router_prompt(const TextFormat &format, const Row &prompt, size_t index) {
    (void)index;   // the prompt's refusals (core.chat's) name message indices, not the row
    const Tokenizer &tok = *format.tokenizer;
    if (!format.chat) return encode_prompt(tok.special(), tok.encode(flatten(prompt, false)), format.max_length);
    std::vector<int64_t> ids = tok.encode(chat_prompt(*format.chat, prompt));
    long keep = std::max(0L, format.max_length);   // the last max_length tokens: the start is cut
    if (long(ids.size()) > keep) ids.erase(ids.begin(), ids.end() - keep);
    return zero_types(std::move(ids));
}

}  // namespace routerm
