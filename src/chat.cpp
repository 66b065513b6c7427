// core/chat.py in C++: the manifest's reduced chat template, render / render_pair, flatten's role
// names. Error texts are core.chat's, character for character (tests/c/test_chat.cpp checks them
// against Python's).
#include "chat.hpp"

#include <algorithm>
#include <cstdio>

#include "error.hpp"
#include "unicode.hpp"

namespace routerm {

namespace {

const char *const kTransforms[] = {"as-is", "strip", "lstrip-newlines"};   // core.chat.CONTENT_TRANSFORMS
const char *const kFields[] = {"start", "start_without_system", "roles", "last_assistant"};
const char *const kRoleFields[] = {"prefix", "suffix", "content"};
const char kSystem[] = "system", kUser[] = "user", kAssistant[] = "assistant";

// Python's str.isspace(): Unicode White_Space plus the separators U+001C..U+001F (their
// bidirectional class is B or S). What str.strip() with no argument removes.
bool py_isspace(uint32_t cp) {
    if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// Python str.strip() of valid UTF-8.
std::string py_strip(const std::string &text) {
    std::vector<uint32_t> cps = unicode::decode_utf8(text.data(), text.size());
    size_t begin = 0, end = cps.size();
    while (begin < end && py_isspace(cps[begin])) ++begin;
    while (end > begin && py_isspace(cps[end - 1])) --end;
    std::string out;
    for (size_t i = begin; i < end; ++i) unicode::append_utf8(out, cps[i]);
    return out;
}

// Python's type(x).__name__ of what json.loads gives for `v`.
const char *py_type(const json::Value &v) {
    switch (v.type) {
    case json::Type::Null: return "NoneType";
    case json::Type::Bool: return "bool";
    case json::Type::Number: return v.integral ? "int" : "float";
    case json::Type::String: return "str";
    case json::Type::Array: return "list";
    case json::Type::Object: return "dict";
    case json::Type::Deferred: break;   // the manifest is parsed without deferral
    }
    return "object";
}

// Python's repr() of a str: exact for ASCII and U+0080..U+00A0 / U+00AD / U+2028 / U+2029 (escaped);
// other code points are written as they are (Python escapes the rest of its non-printable ones too:
// only a role name in a malformed manifest's error message can differ).
std::string py_repr(const std::string &text) {
    bool has_single = text.find('\'') != std::string::npos, has_double = text.find('"') != std::string::npos;
    char quote = has_single && !has_double ? '"' : '\'';
    std::string out(1, quote);
    char buf[16];
    for (uint32_t cp : unicode::decode_utf8(text.data(), text.size())) {
        if (cp == uint32_t(quote) || cp == '\\') out += '\\', out += char(cp);
        else if (cp == '\t') out += "\\t";
        else if (cp == '\n') out += "\\n";
        else if (cp == '\r') out += "\\r";
        else if (cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD) {
            std::snprintf(buf, sizeof buf, "\\x%02x", unsigned(cp));
            out += buf;
        } else if (cp == 0x2028 || cp == 0x2029) {
            std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(cp));
            out += buf;
        } else {
            unicode::append_utf8(out, cp);
        }
    }
    return out + quote;
}

Error bundle_error(const std::string &where, const std::string &what) {
    return Error(ROUTERM_ERR_BUNDLE, where + ": " + what);
}

// core.chat._fields: `d` is an object with exactly the keys `names`; `field` is its path ("" at the top).
template <size_t N>
void check_fields(const json::Value &d, const char *const (&names)[N], const std::string &where,
                  const std::string &field) {
    std::string path = field.empty() ? "" : field + ".";
    if (!d.is(json::Type::Object))
        throw bundle_error(where, (field.empty() ? std::string("the chat template") : "field " + py_repr(field)) +
                                      " must be a JSON object, got " + py_type(d));
    for (const char *name : names)
        if (!d.object.count(name)) throw bundle_error(where, "missing field '" + path + name + "'");
    for (const std::string &key : d.keys) {
        bool known = false;
        for (const char *name : names) known = known || key == name;
        if (!known) throw bundle_error(where, "unknown field '" + path + key + "' (written by a newer RouteRM?)");
    }
}

const std::string &string_field(const json::Value &d, const char *key, const std::string &where,
                                const std::string &field) {
    const json::Value &v = d.object.at(key);
    if (!v.is(json::Type::String))
        throw bundle_error(where, "field '" + field + "' must be a string, got " + py_type(v));
    return v.string;
}

std::string transform_names() {
    std::string out;
    for (const char *name : kTransforms) out += (out.empty() ? "" : ", ") + std::string(name);
    return out;
}

// core.chat._role.
RoleFormat parse_role(const json::Value &d, const std::string &where, const std::string &field) {
    check_fields(d, kRoleFields, where, field);
    RoleFormat role;
    role.prefix = string_field(d, "prefix", where, field + ".prefix");
    role.suffix = string_field(d, "suffix", where, field + ".suffix");
    role.content = string_field(d, "content", where, field + ".content");
    bool known = false;
    for (const char *name : kTransforms) known = known || role.content == name;
    if (!known)
        throw bundle_error(where, "field '" + field + ".content' is '" + role.content + "', expected one of " +
                                      transform_names());
    return role;
}

Error argument_error(const std::string &message) { return Error(ROUTERM_ERR_ARGUMENT, message); }

// core.chat.check_messages, for what C types leave to check: a list that is not empty.
void check_not_empty(const std::vector<Message> &messages, const char *name) {
    if (messages.empty()) throw argument_error(std::string(name) + " has no messages");
}

}  // namespace

std::string RoleFormat::body(const std::string &text) const {
    if (content == "strip") return py_strip(text);
    if (content == "lstrip-newlines") return text.substr(std::min(text.find_first_not_of('\n'), text.size()));
    return text;   // "as-is"
}

ChatFormat ChatFormat::from_json(const json::Value &value, const std::string &where) {
    check_fields(value, kFields, where, "");
    ChatFormat chat;
    chat.start_ = string_field(value, "start", where, "start");
    chat.start_without_system_ = string_field(value, "start_without_system", where, "start_without_system");
    const json::Value &roles = value.object.at("roles");
    if (!roles.is(json::Type::Object))
        throw bundle_error(where, std::string("field 'roles' must be an object, got ") + py_type(roles));
    for (const std::string &name : roles.keys) {
        chat.roles_[name] = parse_role(roles.object.at(name), where, "roles." + name);
        chat.role_names_.push_back(name);
    }
    for (const char *need : {kUser, kAssistant})
        if (!chat.roles_.count(need)) {
            std::string have;
            for (const std::string &name : chat.role_names_) have += (have.empty() ? "" : ", ") + name;
            throw bundle_error(where, std::string("field 'roles' has no '") + need + "' (it has: " +
                                          (have.empty() ? "none" : have) + ")");
        }
    const json::Value &last = value.object.at("last_assistant");
    if (!last.is(json::Type::Null)) {
        chat.last_assistant_ = parse_role(last, where, "last_assistant");
        chat.has_last_assistant_ = true;
    }
    return chat;
}

// core.chat.ChatFormat._turns: the text before the first message, and each message's
// {prefix, transformed content, suffix}.
std::string ChatFormat::turns(const std::vector<Message> &messages, std::vector<Turn> &out) const {
    for (size_t i = 0; i < messages.size(); ++i) {
        std::string role = valid_utf8(messages[i].role);
        auto found = roles_.find(role);
        if (found == roles_.end()) {
            std::string known;
            for (const std::string &name : role_names_) known += (known.empty() ? "" : ", ") + name;
            throw argument_error("message " + std::to_string(i) + " has role '" + role +
                                 "', which this model's chat template does not know (it knows: " + known + ")");
        }
        if (role == kSystem && i > 0)
            throw argument_error("message " + std::to_string(i) + " is a system turn; this model's chat template "
                                 "is reduced for a system turn as the first message only");
        const RoleFormat *fmt = &found->second;
        if (i + 1 == messages.size() && role == kAssistant && has_last_assistant_) fmt = &last_assistant_;
        out.push_back({fmt->prefix, fmt->body(valid_utf8(messages[i].content)), fmt->suffix});
    }
    return valid_utf8(messages[0].role) == kSystem ? start_ : start_without_system_;
}

std::string ChatFormat::render(const std::vector<Message> &messages) const {
    check_not_empty(messages, "messages");
    std::vector<Turn> parts;
    std::string text = turns(messages, parts);
    for (const Turn &t : parts) text += t.prefix + t.body + t.suffix;
    return text;
}

std::pair<std::string, std::string> ChatFormat::render_pair(const std::vector<Message> &prompt,
                                                            const std::vector<Message> &response) const {
    check_not_empty(prompt, "prompt");
    check_not_empty(response, "response");
    std::vector<Message> all(prompt);
    all.insert(all.end(), response.begin(), response.end());
    std::vector<Turn> parts;
    std::string head = turns(all, parts), tail;
    for (size_t i = 0; i < prompt.size(); ++i) head += parts[i].prefix + parts[i].body + parts[i].suffix;
    head += parts[prompt.size()].prefix;
    for (size_t i = prompt.size(); i < parts.size(); ++i)
        tail += (i > prompt.size() ? parts[i].prefix : std::string()) + parts[i].body + parts[i].suffix;
    return {head, tail};
}

bool ChatFormat::writes_think_block() const {
    return has_last_assistant_ && last_assistant_.prefix.find(kThinkEnd) != std::string::npos;
}

std::string flat_role(const std::string &role) {
    if (role == kUser) return "Human";
    if (role == kAssistant) return "Assistant";
    if (role == kSystem) return "System";
    std::string out;   // str.title(): a letter after a letter is lowered, any other letter raised
    bool previous_cased = false;
    for (char c : role) {
        if ((unsigned char)c >= 0x80)
            throw argument_error("role '" + valid_utf8(role) + "' is not ASCII: the C library title-cases ASCII "
                                 "role names only (core.chat.flatten applies Python's str.title())");
        bool lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z';
        if (previous_cased && upper) c = char(c - 'A' + 'a');
        else if (!previous_cased && lower) c = char(c - 'a' + 'A');
        out += c;
        previous_cased = lower || upper;
    }
    return out;
}

}  // namespace routerm
