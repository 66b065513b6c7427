// Fuzz target: chat templates (src/chat.cpp: ChatFormat::from_json, render, render_pair,
// flat_role) and rows to ids (src/formats.cpp: encode_row, encode_router_prompt) on any bytes as
// roles and contents, invalid UTF-8 included.
//
// Input: [selector][flags][max_length] then fields separated by 0xFF (never UTF-8):
//   selector % 6 < 5: one of kFormats (the manifest's reduced templates of tests/c/dump_chat.py);
//                5: the first field is a chat_template JSON (from_json must succeed or throw
//                   Error(ROUTERM_ERR_BUNDLE));
//   then role, content, role, content...: a role field of one byte names kRoles[byte % 6], a longer
//   one is the role's bytes;
//   flags: bits 4-7 how many messages are the prompt, the rest the response; bit 0 / 1 the prompt
//   / response is a text (its messages' contents joined) instead of messages; bit 2 the truncation
//   policy; bit 3 the pair format (no template: flattened text and the tokenizer's special tokens);
//   max_length: the byte - 4 (so budgets <= 0 occur).
// Invariants: every call succeeds or throws Error(ROUTERM_ERR_ARGUMENT); render_pair(p, r)
// succeeds iff render(p + r) does (both non-empty) and head + tail == render(p + r); a fixed
// template renders valid UTF-8; encode_row gives ids of the tokenizer's vocabulary, as many types,
// at most max_length of them, and exactly encode(head + tail) when that fits; the router prompt has at
// most max(0, max_length) ids.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "formats.hpp"
#include "tokenizer_checks.hpp"

namespace {

const char *const kFormats[] = {
    // Llama 3
    R"({"start": "<|begin_of_text|>", "start_without_system": "<|begin_of_text|>", "last_assistant": null, "roles": {
      "system": {"prefix": "<|start_header_id|>system<|end_header_id|>\n\n", "suffix": "<|eot_id|>",
                 "content": "strip"},
      "user": {"prefix": "<|start_header_id|>user<|end_header_id|>\n\n", "suffix": "<|eot_id|>", "content": "strip"},
      "assistant": {"prefix": "<|start_header_id|>assistant<|end_header_id|>\n\n", "suffix": "<|eot_id|>",
                    "content": "strip"}}})",
    // ChatML (Qwen2): a default system turn
    R"({"start": "", "last_assistant": null,
      "start_without_system":
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n",
      "roles": {
      "system": {"prefix": "<|im_start|>system\n", "suffix": "<|im_end|>\n", "content": "as-is"},
      "user": {"prefix": "<|im_start|>user\n", "suffix": "<|im_end|>\n", "content": "as-is"},
      "assistant": {"prefix": "<|im_start|>assistant\n", "suffix": "<|im_end|>\n", "content": "as-is"}}})",
    // Qwen3: the last assistant turn after an empty think block
    R"({"start": "", "start_without_system": "", "roles": {
      "system": {"prefix": "<|im_start|>system\n", "suffix": "<|im_end|>\n", "content": "as-is"},
      "user": {"prefix": "<|im_start|>user\n", "suffix": "<|im_end|>\n", "content": "as-is"},
      "assistant": {"prefix": "<|im_start|>assistant\n", "suffix": "<|im_end|>\n", "content": "as-is"}},
      "last_assistant": {"prefix": "<|im_start|>assistant\n<think>\n\n</think>\n\n", "suffix": "<|im_end|>\n",
                         "content": "lstrip-newlines"}})",
    // Gemma 2: no system role
    R"({"start": "<bos>", "start_without_system": "<bos>", "last_assistant": null, "roles": {
      "user": {"prefix": "<start_of_turn>user\n", "suffix": "<end_of_turn>\n", "content": "strip"},
      "assistant": {"prefix": "<start_of_turn>model\n", "suffix": "<end_of_turn>\n", "content": "strip"}}})",
    // made up: a third role, no text between turns, "strip" on the last assistant turn
    R"({"start": "[S]", "start_without_system": "", "roles": {
      "assistant": {"prefix": "", "suffix": "", "content": "lstrip-newlines"},
      "tool": {"prefix": "<tool>", "suffix": "</tool>", "content": "as-is"},
      "user": {"prefix": "", "suffix": "|", "content": "strip"},
      "system": {"prefix": "sys:", "suffix": "\n", "content": "as-is"}},
      "last_assistant": {"prefix": "<final></think>", "suffix": "", "content": "strip"}})",
};
constexpr size_t kNumFormats = sizeof kFormats / sizeof kFormats[0];
const char *const kRoles[] = {"user", "assistant", "system", "tool", "d\xc3\xa9veloppeur", ""};

// The tokenizer each format's rows are encoded with (a template from the input: bpe-gpt2, which
// also has the special-token template the pair format needs).
const fuzz::Spec kTokenizers[] = {
    {"bpe-llama3", fuzz::Decode::None, false}, {"bpe-qwen2", fuzz::Decode::None, false},
    {"bpe-qwen2", fuzz::Decode::None, false},  {"bpe-gemma", fuzz::Decode::None, false},
    {"bpe-gpt2", fuzz::Decode::None, false},   {"bpe-gpt2", fuzz::Decode::None, false},
};

[[noreturn]] void fail(const char *what) {
    std::fprintf(stderr, "fuzz chat: %s\n", what);
    std::abort();
}

// Run `f`; true when it returned, false when it threw Error(`allowed`) (anything else aborts).
template <class F>
bool attempt(F f, routerm_status allowed = ROUTERM_ERR_ARGUMENT) {
    try {
        f();
        return true;
    } catch (const routerm::Error &e) {
        if (e.status != allowed) {
            std::fprintf(stderr, "routerm::Error %d (expected %d): %s\n", int(e.status), int(allowed), e.what());
            fail("an unexpected error status");
        }
        return false;
    }
}

std::vector<std::string> fields(const std::string &bytes) {
    std::vector<std::string> out;
    size_t begin = 0;
    for (size_t cut; (cut = bytes.find('\xff', begin)) != std::string::npos; begin = cut + 1)
        out.push_back(bytes.substr(begin, cut - begin));
    out.push_back(bytes.substr(begin));
    return out;
}

routerm::Row side(const std::vector<routerm::Message> &messages, bool as_text) {
    routerm::Row row;
    row.is_messages = !as_text;
    if (as_text)
        for (const routerm::Message &m : messages) row.text += m.content;
    else
        row.messages = messages;
    return row;
}

void check_known(const fuzz::Case &tok, const std::vector<int64_t> &ids) {
    for (int64_t id : ids)
        if (!tok.text.count(id)) fail("an id outside the vocabulary");
}

void check_rows(const routerm::TextFormat &format, const fuzz::Case &tok, const routerm::Row &prompt,
                const routerm::Row &response) {
    routerm::Encoded row, router;
    if (attempt([&] { row = routerm::encode_row(format, prompt, response, 3); })) {
        if (row.ids.size() != row.types.size() || long(row.ids.size()) > format.max_length)
            fail("encode_row: more ids than max_length, or types of another length");
        check_known(tok, row.ids);
        if (format.chat) {
            auto [head, tail] = routerm::chat_split(*format.chat, prompt, response, 3);
            std::vector<int64_t> whole = tok.tok.encode(head + tail);
            if (long(whole.size()) <= format.max_length && whole != row.ids) fail("encode_row != encode(head + tail)");
        }
    }
    if (attempt([&] { router = routerm::encode_router_prompt(format, prompt, 3); })) {
        if (router.ids.size() != router.types.size() || long(router.ids.size()) > std::max(0L, format.max_length))
            fail("encode_router_prompt: more ids than max_length");
        check_known(tok, router.ids);
    }
    for (bool response_side : {false, true}) {
        std::string flat;
        if (attempt([&] { flat = routerm::flatten(response_side ? response : prompt, response_side); }) &&
            routerm::valid_utf8(flat) != flat)
            fail("flatten: invalid UTF-8");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const auto &tokenizers = fuzz::cases(kTokenizers);
    if (size < 3) return 0;
    const size_t selector = data[0] % (kNumFormats + 1);
    const uint8_t flags = data[1];
    std::vector<std::string> parts = fields(std::string(reinterpret_cast<const char *>(data) + 3, size - 3));
    const bool fixed = selector < kNumFormats;
    std::string template_text = fixed ? kFormats[selector] : parts.front();
    if (!fixed) parts.erase(parts.begin());

    routerm::TextFormat format;
    format.tokenizer = &tokenizers[selector].tok;
    format.max_length = long(data[2]) - 4;
    format.policy = flags & 4 ? routerm::Truncation::KeepHead : routerm::Truncation::HeadTail;
    routerm::json::Value value;
    try {
        value = routerm::json::parse(template_text);
    } catch (const std::runtime_error &) {   // malformed JSON: the JSON reader's refusal (fuzz_json)
        if (fixed) fail("a fixed template is not JSON");
        return 0;
    }
    routerm::ChatFormat chat;
    if (!attempt([&] { chat = routerm::ChatFormat::from_json(value, "fuzz"); }, ROUTERM_ERR_BUNDLE)) {
        if (fixed) fail("a fixed template is refused");
        return 0;
    }

    std::vector<routerm::Message> messages;
    for (size_t i = 0; i + 1 < parts.size(); i += 2)
        messages.push_back({parts[i].size() == 1 ? kRoles[uint8_t(parts[i][0]) % 6] : parts[i], parts[i + 1]});
    const size_t k = std::min<size_t>(flags >> 4, messages.size());
    const std::vector<routerm::Message> p(messages.begin(), messages.begin() + long(k)),
        r(messages.begin() + long(k), messages.end());

    std::string whole;
    bool rendered = attempt([&] { whole = chat.render(messages); });
    if (rendered && fixed && routerm::valid_utf8(whole) != whole) fail("render: invalid UTF-8");
    std::pair<std::string, std::string> halves;
    bool split = attempt([&] { halves = chat.render_pair(p, r); });
    if (!p.empty() && !r.empty() && split != rendered) fail("render_pair and render disagree on refusing");
    if (split && halves.first + halves.second != whole) fail("render_pair's halves do not make render");

    if (!(flags & 8)) format.chat = chat;
    check_rows(format, tokenizers[selector], side(p, flags & 1), side(r, flags & 2));
    return 0;
}
