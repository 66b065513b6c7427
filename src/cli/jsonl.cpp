#include "cli/jsonl.hpp"

#include <stdexcept>

namespace routerm::cli {

std::string encode_id(const json::Value &v) {
    if (v.is(json::Type::String)) return json::quote(v.string);
    // the literal, not a re-formatted double: 1e-9 stays 1e-9 (not 0.000000), 1.5e3001 stays valid JSON (not inf)
    if (v.is(json::Type::Number)) return v.literal;
    return "null";
}

Row parse_pair_line(const std::string &line) {
    json::Value v = json::parse(line);
    const json::Value *prompt = v.find("prompt"), *response = v.find("response"), *id = v.find("id");
    if (!prompt || !prompt->is(json::Type::String) || !response || !response->is(json::Type::String))
        throw std::runtime_error("needs string fields \"prompt\" and \"response\"");
    for (const auto &[name, text] : {std::pair{"prompt", &prompt->string}, std::pair{"response", &response->string}})
        if (text->find('\0') != std::string::npos)
            throw std::runtime_error(std::string("field \"") + name + "\" holds U+0000, which the C API cannot pass");
    return {id ? encode_id(*id) : std::string(), prompt->string, response->string};
}

}  // namespace routerm::cli
