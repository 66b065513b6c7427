// Chat templates as the manifest stores them (core/chat.py's reduced form, written at export and
// checked there against apply_chat_template): fixed text around each message, no Jinja.
//
//   render(m) = (start if m[0].role == "system" else start_without_system)
//               + concat over i of  f.prefix + transform[f.content](m[i].content) + f.suffix
//   where f = last_assistant  if i == n - 1, m[i].role == "assistant" and last_assistant is set
//             roles[m[i].role] otherwise
//   transform: "as-is" (unchanged), "strip" (Python str.strip(): code points of str.isspace(),
//              Unicode White_Space and U+001C..U+001F, off both ends), "lstrip-newlines" (leading '\n'
//              removed)
//
// Text is UTF-8; roles and contents are read with each invalid sequence as U+FFFD (valid_utf8)
// before anything else, so what is rendered is the str Python's engine would be given (and two
// contents that are invalid apart never join into one valid character).
//
// A role the template does not know, or a system turn other than the first, is refused
// (Error(ROUTERM_ERR_ARGUMENT) naming the message index, counted from 0), exactly as core.chat does.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "json.hpp"
#include "unicode.hpp"

namespace routerm {

// "</think>": what Qwen3's template moves reasoning before (core.formats.THINK_END).
inline constexpr char kThinkEnd[] = "</think>";

// `text` with each invalid or truncated UTF-8 sequence replaced by U+FFFD (as Python's
// bytes.decode("utf-8", "replace")): src/unicode.hpp's.
using unicode::valid_utf8;

// core.chat.flatten's name of a role: "Human", "Assistant", "System", else Python's str.title() of
// it; Error(ROUTERM_ERR_ARGUMENT) for a role that is not ASCII (title-casing beyond ASCII is not
// implemented, so it is refused rather than written differently).
std::string flat_role(const std::string &role);

struct Message {
    std::string role, content;
};

struct RoleFormat {
    std::string prefix, suffix, content;   // content: the transform's name
    std::string body(const std::string &text) const;
};

class ChatFormat {
public:
    // Parse manifest.tokenizer.chat_template; Error(ROUTERM_ERR_BUNDLE) naming `where` and the field
    // ("chat_template.roles.user.prefix") when it is malformed, as core.chat.ChatFormat.from_dict.
    static ChatFormat from_json(const json::Value &value, const std::string &where);

    // core.chat.ChatFormat.render.
    std::string render(const std::vector<Message> &messages) const;
    // core.chat.ChatFormat.render_pair: render(prompt + response) cut where the first response
    // message's transformed content starts -> (prompt text with that turn's prefix, the rest).
    std::pair<std::string, std::string> render_pair(const std::vector<Message> &prompt,
                                                    const std::vector<Message> &response) const;
    // Whether the last assistant turn's prefix holds "</think>" (Qwen3): core.formats._check_think
    // refuses a response whose last assistant message holds "</think>" then.
    bool writes_think_block() const;

private:
    struct Turn {
        std::string prefix, body, suffix;
    };
    // core.chat.ChatFormat._turns: appends each message's turn to `out`, returns the start text.
    std::string turns(const std::vector<Message> &messages, std::vector<Turn> &out) const;

    std::string start_, start_without_system_;
    std::map<std::string, RoleFormat> roles_;
    std::vector<std::string> role_names_;   // in the manifest's order, as errors list them
    bool has_last_assistant_ = false;
    RoleFormat last_assistant_;
};

}  // namespace routerm
