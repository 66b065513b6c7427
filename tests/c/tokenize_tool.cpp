// The C tokenizer over a file of strings, for the parity harness (scripts/tokenizer_parity.py) and
// the speed benchmark (benchmarks/tokenizer_speed.py).
//
//   tokenize_tool ids  DIR IN OUT [--manifest FILE]
//   tokenize_tool pair DIR IN OUT [--manifest FILE]
//   tokenize_tool chat DIR IN OUT [--manifest FILE] [--chat FILE]
//   tokenize_tool time DIR IN     [--manifest FILE] [--repeat N] [--loads K]
//
// DIR is a tokenizer folder, read by Tokenizer::load(DIR, manifest) with the manifest's "tokenizer"
// section taken from --manifest, else DIR/manifest_tokenizer.json, else {"kind": "other"}.
// IN is a sequence of strings, each a uint32 little-endian byte length and the bytes; records:
//   ids   one string a record: the text                    -> Tokenizer::encode(text)
//   pair  max_length (decimal), policy name, prompt, response
//                                                           -> encode_pair(special(), ...)
//   chat  max_length, policy name, prompt side, response side, where a side is "text" and one
//         string, or "messages:N" and N (role, content) string pairs
//                                                           -> encode_row(TextFormat{..., chat}, ...)
//         (--chat FILE: the reduced template's JSON, core.chat.ChatFormat.to_dict(); without it the
//         pair format, messages flattened)
// OUT gets, per record, int32 count and that many int32 ids (ids mode), followed by int32 count and
// the type ids (pair, chat); a record the library refuses is int32 -1, int32 length and the message,
// zero-padded to a multiple of 4 bytes.
// time: loads the tokenizer K times (default 3) and encodes every string N times (default 3); prints
// one JSON object: {"load_seconds": [...], "encode_seconds": [...], "strings", "bytes", "tokens"}.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "chat.hpp"
#include "encode.hpp"
#include "error.hpp"
#include "formats.hpp"
#include "json.hpp"
#include "tokenizer.hpp"
#include "util.hpp"

using namespace routerm;

namespace {

struct Options {
    std::string mode, dir, in, out, manifest, chat;
    int repeat = 3, loads = 3;
};

[[noreturn]] void usage(const char *why) {
    std::fprintf(stderr, "tokenize_tool: %s\nusage: tokenize_tool ids|pair|chat DIR IN OUT [--manifest FILE] "
                         "[--chat FILE]\n       tokenize_tool time DIR IN [--manifest FILE] [--repeat N] [--loads K]\n",
                 why);
    std::exit(2);
}

Options parse_args(int argc, char **argv) {
    Options o;
    std::vector<std::string> positional;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg.rfind("--", 0) == 0) {
            if (i + 1 >= argc) usage(("missing value of " + arg).c_str());
            std::string value = argv[++i];
            if (arg == "--manifest") o.manifest = value;
            else if (arg == "--chat") o.chat = value;
            else if (arg == "--repeat") o.repeat = std::stoi(value);
            else if (arg == "--loads") o.loads = std::stoi(value);
            else usage(("unknown option " + arg).c_str());
        } else {
            positional.push_back(arg);
        }
    }
    if (positional.empty()) usage("no mode");
    o.mode = positional[0];
    size_t want = o.mode == "time" ? 3 : 4;
    if (o.mode != "ids" && o.mode != "pair" && o.mode != "chat" && o.mode != "time") usage("unknown mode");
    if (positional.size() != want) usage("wrong number of arguments");
    o.dir = positional[1];
    o.in = positional[2];
    if (want == 4) o.out = positional[3];
    if (o.repeat < 1 || o.loads < 1) usage("--repeat and --loads must be at least 1");
    return o;
}

std::vector<std::string> read_strings(const std::string &path) {
    std::string data = read_file(path, ROUTERM_ERR_ARGUMENT);
    std::vector<std::string> out;
    size_t at = 0;
    while (at < data.size()) {
        if (data.size() - at < 4) throw std::runtime_error(path + ": truncated length at byte " + std::to_string(at));
        uint32_t n = 0;
        for (int k = 0; k < 4; ++k) n |= uint32_t(uint8_t(data[at + k])) << (8 * k);
        at += 4;
        if (data.size() - at < n) throw std::runtime_error(path + ": truncated string at byte " + std::to_string(at));
        out.emplace_back(data, at, n);
        at += n;
    }
    return out;
}

// Consecutive strings of the input, read record by record.
class Cursor {
public:
    explicit Cursor(std::vector<std::string> items) : items_(std::move(items)) {}
    bool done() const { return at_ == items_.size(); }
    const std::string &next() {
        if (at_ >= items_.size()) throw std::runtime_error("input ends inside a record");
        return items_[at_++];
    }
    long next_long() { return std::stol(next()); }

private:
    std::vector<std::string> items_;
    size_t at_ = 0;
};

class Output {
public:
    explicit Output(const std::string &path) : f_(path, std::ios::binary) {
        if (!f_) throw std::runtime_error("cannot write " + path);
    }
    void i32(int32_t v) {
        char b[4];
        for (int k = 0; k < 4; ++k) b[k] = char((uint32_t(v) >> (8 * k)) & 0xff);
        f_.write(b, 4);
    }
    void ids(const std::vector<int64_t> &v) {
        i32(int32_t(v.size()));
        for (int64_t x : v) i32(int32_t(x));
    }
    void refused(const std::string &message) {
        i32(-1);
        i32(int32_t(message.size()));
        f_.write(message.data(), std::streamsize(message.size()));
        f_.write("\0\0\0", std::streamsize((4 - message.size() % 4) % 4));   // keep records 4-byte aligned
    }
    void close() {
        f_.close();
        if (!f_) throw std::runtime_error("write failed");
    }

private:
    std::ofstream f_;
};

json::Value manifest_section(const Options &o) {
    std::string path = o.manifest.empty() ? join_path(o.dir, "manifest_tokenizer.json") : o.manifest;
    if (!o.manifest.empty() || is_file(path)) return json::parse(read_file(path, ROUTERM_ERR_ARGUMENT));
    return json::parse(R"({"kind": "other"})");
}

Truncation policy_named(const std::string &name) {
    Truncation policy{};
    if (!truncation_from_name(name, policy)) throw std::runtime_error("unknown truncation policy '" + name + "'");
    return policy;
}

Row read_side(Cursor &in) {
    const std::string &head = in.next();
    Row row;
    if (head == "text") {
        row.text = in.next();
        return row;
    }
    if (head.rfind("messages:", 0) != 0) throw std::runtime_error("a side starts with '" + head + "'");
    row.is_messages = true;
    long n = std::stol(head.substr(9));
    for (long i = 0; i < n; ++i) {
        Message m;
        m.role = in.next();
        m.content = in.next();
        row.messages.push_back(std::move(m));
    }
    return row;
}

void run_ids(const Tokenizer &tok, Cursor &in, Output &out) {
    while (!in.done()) {
        const std::string &text = in.next();
        try {
            out.ids(tok.encode(text));
        } catch (const Error &e) {
            out.refused(e.what());
        }
    }
}

void run_pair(const Tokenizer &tok, Cursor &in, Output &out) {
    while (!in.done()) {
        long max_length = in.next_long();
        Truncation policy = policy_named(in.next());
        const std::string &prompt = in.next();
        const std::string &response = in.next();
        try {
            Encoded e = encode_pair(tok.special(), tok.encode(prompt), tok.encode(response), max_length, policy);
            out.ids(e.ids);
            out.ids(e.types);
        } catch (const Error &e) {
            out.refused(e.what());
        }
    }
}

void run_chat(const Tokenizer &tok, const Options &o, Cursor &in, Output &out) {
    TextFormat format;
    format.tokenizer = &tok;
    format.pad_id = tok.pad_id();
    if (!o.chat.empty()) format.chat = ChatFormat::from_json(json::parse(read_file(o.chat, ROUTERM_ERR_ARGUMENT)), o.chat);
    for (size_t index = 0; !in.done(); ++index) {
        format.max_length = in.next_long();
        format.policy = policy_named(in.next());
        Row prompt = read_side(in);
        Row response = read_side(in);
        try {
            Encoded e = encode_row(format, prompt, response, index);
            out.ids(e.ids);
            out.ids(e.types);
        } catch (const Error &e) {
            out.refused(e.what());
        }
    }
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void run_time(const Options &o, const json::Value &section, const std::vector<std::string> &texts) {
    std::vector<double> loads, encodes;
    std::optional<Tokenizer> tok;
    for (int k = 0; k < o.loads; ++k) {
        tok.reset();
        auto start = std::chrono::steady_clock::now();
        tok.emplace(Tokenizer::load(o.dir, section));
        loads.push_back(seconds_since(start));
    }
    size_t bytes = 0, tokens = 0;
    for (const std::string &t : texts) bytes += t.size();
    for (int r = 0; r < o.repeat; ++r) {
        size_t count = 0;
        auto start = std::chrono::steady_clock::now();
        for (const std::string &t : texts) count += tok->encode(t).size();
        encodes.push_back(seconds_since(start));
        tokens = count;
    }
    auto list = [](const std::vector<double> &v) {
        std::string s = "[";
        for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
        return s + "]";
    };
    std::printf("{\"load_seconds\": %s, \"encode_seconds\": %s, \"strings\": %zu, \"bytes\": %zu, \"tokens\": %zu}\n",
                list(loads).c_str(), list(encodes).c_str(), texts.size(), bytes, tokens);
}

}  // namespace

int main(int argc, char **argv) {
    Options o = parse_args(argc, argv);
    try {
        json::Value section = manifest_section(o);
        Cursor in(read_strings(o.in));
        if (o.mode == "time") {
            std::vector<std::string> texts;
            while (!in.done()) texts.push_back(in.next());
            run_time(o, section, texts);
            return 0;
        }
        Tokenizer tok = Tokenizer::load(o.dir, section);
        std::fprintf(stderr, "tokenize_tool: %s: %s\n", o.dir.c_str(), tok.describe().c_str());
        Output out(o.out);
        if (o.mode == "ids") run_ids(tok, in, out);
        else if (o.mode == "pair") run_pair(tok, in, out);
        else run_chat(tok, o, in, out);
        out.close();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "tokenize_tool: %s\n", e.what());
        return 1;
    }
    return 0;
}
