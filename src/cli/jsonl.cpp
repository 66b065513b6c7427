#include "cli/jsonl.hpp"

#include <stdexcept>

namespace routerm::cli {

namespace {

void no_nul(const std::string &text, const std::string &where) {
    if (text.find('\0') != std::string::npos)
        throw std::runtime_error(where + " holds U+0000, which the C API cannot pass");
}

Side side(const json::Value *v, const char *name) {
    const std::string field = std::string("field \"") + name + "\"";
    Side out;
    if (v && v->is(json::Type::String)) {
        no_nul(v->string, field);
        out.text = v->string;
        return out;
    }
    if (!v || !v->is(json::Type::Array))
        throw std::runtime_error("needs fields \"prompt\" and \"response\", each a string or a list of "
                                 "{\"role\", \"content\"} messages");
    if (v->array.empty()) throw std::runtime_error(field + " has no messages");
    out.is_messages = true;
    for (size_t k = 0; k < v->array.size(); ++k) {
        const json::Value &m = v->array[k];
        const json::Value *role = m.find("role"), *content = m.find("content");
        std::string where = field + " message " + std::to_string(k);
        if (!role || !role->is(json::Type::String) || !content || !content->is(json::Type::String))
            throw std::runtime_error(where + " needs string \"role\" and \"content\"");
        no_nul(role->string, where);
        no_nul(content->string, where);
        out.messages.emplace_back(role->string, content->string);
    }
    return out;
}

}  // namespace

bool Side::holds_nul() const {
    if (text.find('\0') != std::string::npos) return true;
    for (const auto &[role, content] : messages)
        if (role.find('\0') != std::string::npos || content.find('\0') != std::string::npos) return true;
    return false;
}

std::string encode_id(const json::Value &v) {
    if (v.is(json::Type::String)) return json::quote(v.string);
    // the literal, not a re-formatted double: 1e-9 stays 1e-9 (not 0.000000), 1.5e3001 stays valid JSON (not inf)
    if (v.is(json::Type::Number)) return v.literal;
    return "null";
}

Row parse_pair_line(const std::string &line) {
    json::Value v = json::parse(line);
    const json::Value *id = v.find("id");
    Row row;
    row.prompt = side(v.find("prompt"), "prompt");
    row.response = side(v.find("response"), "response");
    row.id_json = id ? encode_id(*id) : std::string();
    return row;
}

}  // namespace routerm::cli
