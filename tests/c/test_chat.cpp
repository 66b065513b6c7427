// Chat formatting of the C library (src/chat.cpp, src/formats.cpp) against Python's core.chat and
// core.formats.
//
//   test_chat CASES.jsonl [TOKENIZER_DIR]
//
// CASES comes from tests/c/dump_chat.py: reduced templates of four families and a made-up one;
// render, render_pair, the row split before the response content, the router's prompt text and
// flatten must give Python's text exactly; what Python refuses must throw Error(ROUTERM_ERR_ARGUMENT)
// (ROUTERM_ERR_BUNDLE for a malformed template) with Python's message. With TOKENIZER_DIR (the
// all-MiniLM-L6-v2 tokenizer dump_chat.py saved), encode_row / encode_router_prompt must give
// encode_rows' / encode_router_prompts' ids and segment ids, in chat format and pair format.
// Then the C-only rules: invalid UTF-8 reads as U+FFFD per content, a non-ASCII role is not flattened.
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "chat.hpp"
#include "error.hpp"
#include "formats.hpp"
#include "json.hpp"
#include "tokenizer.hpp"

using namespace routerm;

namespace {

const char kWhere[] = "bundle/manifest.json: tokenizer.chat_template";
using Fields = std::map<std::string, std::string>;   // a case's output fields -> their text

struct Tally {
    size_t checked = 0, bad = 0;
    std::map<std::string, size_t> by_case, refusals;

    void fail(const std::string &what, const std::string &want, const std::string &got) {
        if (++bad <= 8)
            std::fprintf(stderr, "MISMATCH %s\n  want %s\n  got  %s\n", what.c_str(), json::quote(want).c_str(),
                         json::quote(got).c_str());
    }
};

std::vector<Message> messages(const json::Value &v) {
    std::vector<Message> out;
    for (const json::Value &m : v.array) out.push_back({m.object.at("role").string, m.object.at("content").string});
    return out;
}

Row row(const json::Value &v) {
    Row r;
    if (v.is(json::Type::String)) r.text = v.string;
    else r.is_messages = true, r.messages = messages(v);
    return r;
}

// Runs `make` (which gives the case's output fields) and compares with the line: the same fields, or,
// when the line has "error", an Error of `status` with that message.
void expect(Tally &tally, const json::Value &line, const std::string &what, routerm_status status,
            const std::function<Fields()> &make) {
    ++tally.checked;
    ++tally.by_case[line.object.at("case").string];
    const json::Value *error = line.find("error");
    try {
        Fields got = make();
        if (error) return tally.fail(what + ": Python refuses", error->string, "(no error)");
        for (const auto &[field, text] : got)
            if (text != line.object.at(field).string)
                tally.fail(what + " " + field, line.object.at(field).string, text);
    } catch (const Error &e) {
        if (!error) return tally.fail(what + ": Python accepts", "(no error)", e.what());
        if (e.status != status || e.what() != error->string)
            tally.fail(what + " (status " + std::to_string(int(e.status)) + ")", error->string, e.what());
        ++tally.refusals[line.object.at("case").string];
    }
}

std::vector<int64_t> ints(const json::Value &v) {
    std::vector<int64_t> out;
    for (const json::Value &x : v.array) out.push_back(x.integer);
    return out;
}

std::string show(const std::vector<int64_t> &v) {
    std::string s;
    for (int64_t x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
    return "[" + s + "]";
}

void check_encoded(Tally &tally, const json::Value &line, const std::string &what, const Encoded &e) {
    ++tally.checked;
    ++tally.by_case[line.object.at("case").string];
    std::vector<int64_t> ids = ints(line.object.at("ids")), types = ints(line.object.at("types"));
    if (e.ids != ids) tally.fail(what + " ids", show(ids), show(e.ids));
    else if (e.types != types) tally.fail(what + " types", show(types), show(e.types));
}

// One line of the reference; `chats` collects the "format" lines, `tok` is null without TOKENIZER_DIR.
void check_line(Tally &tally, const json::Value &line, const std::string &what,
                std::map<std::string, ChatFormat> &chats, const Tokenizer *tok) {
    const std::string &kind = line.object.at("case").string;
    const json::Value *name = line.find("format");
    const ChatFormat *chat = nullptr;
    if (name && name->is(json::Type::String) && chats.count(name->string)) chat = &chats.at(name->string);
    const json::Value *prompt = line.find("prompt"), *response = line.find("response");
    if (kind == "format") {
        chats.emplace(line.object.at("name").string, ChatFormat::from_json(line.object.at("template"), kWhere));
    } else if (kind == "render") {
        expect(tally, line, what, ROUTERM_ERR_ARGUMENT,
               [&] { return Fields{{"text", chat->render(messages(line.object.at("messages")))}}; });
    } else if (kind == "render_pair") {
        expect(tally, line, what, ROUTERM_ERR_ARGUMENT, [&] {
            auto [head, tail] = chat->render_pair(messages(*prompt), messages(*response));
            return Fields{{"head", head}, {"tail", tail}};
        });
    } else if (kind == "split") {
        expect(tally, line, what, ROUTERM_ERR_ARGUMENT, [&] {
            size_t index = size_t(line.object.at("index").integer);
            auto [head, tail] = chat_split(*chat, row(*prompt), row(*response), index);
            return Fields{{"head", head}, {"tail", tail}};
        });
    } else if (kind == "router") {
        expect(tally, line, what, ROUTERM_ERR_ARGUMENT,
               [&] { return Fields{{"text", chat_prompt(*chat, row(*prompt))}}; });
    } else if (kind == "flatten") {
        expect(tally, line, what, ROUTERM_ERR_ARGUMENT, [&] {
            bool response_side = line.object.at("response").boolean;
            return Fields{{"text", flatten(row(line.object.at("row")), response_side)}};
        });
    } else if (kind == "from_json") {
        expect(tally, line, what, ROUTERM_ERR_BUNDLE, [&] {
            ChatFormat::from_json(line.object.at("template"), kWhere);
            return Fields{};
        });
    } else if ((kind == "encode" || kind == "encode_router") && tok) {
        TextFormat fmt;
        fmt.tokenizer = tok;
        fmt.max_length = long(line.object.at("max_length").integer);
        fmt.pad_id = tok->pad_id();
        if (chat) fmt.chat = *chat;
        if (kind == "encode_router")
            return check_encoded(tally, line, what, encode_router_prompt(fmt, row(*prompt), 0));
        if (!truncation_from_name(line.object.at("policy").string, fmt.policy))
            throw std::runtime_error("unknown policy " + line.object.at("policy").string);
        check_encoded(tally, line, what, encode_row(fmt, row(*prompt), row(*response), 0));
    } else if (kind != "encode" && kind != "encode_router") {
        throw std::runtime_error("unknown case '" + kind + "'");
    }
}

// What only the C library has: bytes that are not UTF-8, and roles it does not title-case.
void check_c_rules(Tally &tally) {
    ChatFormat bare = ChatFormat::from_json(json::parse(R"({"start": "", "start_without_system": "",
        "roles": {"user": {"prefix": "", "suffix": "", "content": "strip"},
                  "assistant": {"prefix": "", "suffix": "", "content": "as-is"}}, "last_assistant": null})"), kWhere);
    // "\xe4" then "\xb8\xad": U+4E2D if joined, but each content is read alone (Python is given str).
    std::string got = bare.render({{"user", "\xe4"}, {"assistant", "\xb8\xad"}});
    ++tally.checked;
    if (got != "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd")
        tally.fail("invalid UTF-8 per content", "\uFFFD\uFFFD\uFFFD", got);
    // A strip template strips around U+FFFD, never into a broken sequence: "\xc2" + NBSP.
    ++tally.checked;
    if ((got = bare.render({{"user", " \xc2 \xc2\xa0"}})) != "\xef\xbf\xbd")
        tally.fail("strip of U+FFFD", "\uFFFD", got);
    Row row;
    row.is_messages = true;
    row.messages = {{"d\xc3\xa9veloppeur", "x"}};
    ++tally.checked;
    try {
        got = flatten(row, false);
        tally.fail("non-ASCII role flattened", "(an error)", got);
    } catch (const Error &e) {
        std::string want = "role 'd\xc3\xa9veloppeur' is not ASCII: the C library title-cases ASCII role names only "
                           "(core.chat.flatten applies Python's str.title())";
        if (e.status != ROUTERM_ERR_ARGUMENT || e.what() != want) tally.fail("non-ASCII role", want, e.what());
    }
    ++tally.checked;
    if ((got = flatten(row, true)) != "x") tally.fail("response side ignores roles", "x", got);
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 2 && argc != 3) {
        std::fprintf(stderr, "usage: %s CASES.jsonl [TOKENIZER_DIR]\n", argv[0]);
        return 2;
    }
    try {
        std::optional<Tokenizer> tok;
        if (argc == 3)
            tok = Tokenizer::load(argv[2], json::parse(R"({"kind": "wordpiece", "do_lower_case": true})"));
        std::ifstream in(argv[1]);
        if (!in) { std::fprintf(stderr, "cannot read %s\n", argv[1]); return 2; }
        Tally tally;
        std::map<std::string, ChatFormat> chats;
        std::string text;
        for (size_t n = 1; std::getline(in, text); ++n)
            check_line(tally, json::parse(text), std::string(argv[1]) + ":" + std::to_string(n), chats,
                       tok ? &*tok : nullptr);
        check_c_rules(tally);
        std::string cases, refused;
        for (const auto &[kind, count] : tally.by_case) cases += " " + kind + "=" + std::to_string(count);
        for (const auto &[kind, count] : tally.refusals) refused += " " + kind + "=" + std::to_string(count);
        std::printf("%zu checks, %zu mismatches; cases:%s; refusals:%s\n", tally.checked, tally.bad, cases.c_str(),
                    refused.c_str());
        bool encoded = tally.by_case.count("encode") && tally.by_case.count("encode_router");
        if (tok && !encoded) { std::fprintf(stderr, "no encode cases in %s\n", argv[1]); return 1; }
        if (chats.size() < 4 || tally.refusals.size() < 4) {
            std::fprintf(stderr, "too few formats or refusals in %s\n", argv[1]);
            return 1;
        }
        return tally.bad ? 1 : 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
