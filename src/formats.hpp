// How a row becomes the token ids one graph reads: core/formats.py in C++.
//
// A row is a (prompt, response) pair; each side is a text or chat messages. A graph reads rows in
// one of two formats, fixed by the tokenizer of its bundle part:
//   * chat (the tokenizer section has a chat template): the prompt's messages (a text is one user
//     turn), then the response as an assistant turn (a text is one assistant turn), rendered by the
//     template and tokenized without special tokens; a row over max_length is cut as a pair (the
//     text before the response content, the rest) under the bundle's truncation policy;
//   * pair (no template): prompt and response through the tokenizer's special-token template,
//     messages flattened to "Human: ..." / "Assistant: ..." turns (core.chat.flatten).
// The router reads the prompt alone: rendered by the template (its start cut to fit), or flattened
// with the tokenizer's special tokens (encode_prompt).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chat.hpp"
#include "encode.hpp"
#include "tokenizer.hpp"

namespace routerm {

// One side of a row: a text, or chat messages when `messages` is set.
struct Row {
    std::string text;
    bool is_messages = false;
    std::vector<Message> messages;
};

// How one graph reads text (core.formats.TextFormat).
struct TextFormat {
    const Tokenizer *tokenizer = nullptr;
    long max_length = 0;
    int64_t pad_id = 0;
    Truncation policy = Truncation::KeepHead;
    std::optional<ChatFormat> chat;
};

// core.chat.flatten: a text as it is; messages as "Human: ..." turns joined by blank lines, or,
// for the response side (`response` true), their contents joined by blank lines.
std::string flatten(const Row &row, bool response);

// core.formats._chat_split for row `index` (a text prompt is one user turn, a text response one
// assistant turn): (the text before the response's first content, the rest). Refuses (Error
// ROUTERM_ERR_ARGUMENT, core.formats' and core.chat's messages) empty messages, a response whose last
// assistant message holds "</think>" when the template writes a think block (_check_think), and
// what render_pair refuses.
std::pair<std::string, std::string> chat_split(const ChatFormat &chat, const Row &prompt, const Row &response,
                                               size_t index);

// The router's text of a prompt in chat format: core.formats.encode_router_prompts'
// chat.render(conversation(prompt, "")[0]).
std::string chat_prompt(const ChatFormat &chat, const Row &prompt);

// core.formats.encode_rows for one row: unpadded ids (and segment ids) with special tokens.
// Error(ROUTERM_ERR_ARGUMENT) naming row `index` when its messages are refused.
Encoded encode_row(const TextFormat &format, const Row &prompt, const Row &response, size_t index);

// core.formats.encode_router_prompts for one prompt.
Encoded encode_router_prompt(const TextFormat &format, const Row &prompt, size_t index);

}  // namespace routerm
