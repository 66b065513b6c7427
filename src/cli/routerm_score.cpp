// routerm-score: score JSON lines of (prompt, response) with a RouteRM bundle.
//
//   routerm-score [--threads N] [--provider P] [--batch N] [--no-verify] BUNDLE < pairs.jsonl > rewards.jsonl
//
// Each input line is an object with string fields "prompt" and "response" (and optionally
// "id", copied through); each output line is {"id"?, "reward": float, "domain": name|null}, in
// input order. A malformed line (see cli/jsonl.hpp) stops the run with exit status 1 and a message
// naming the line.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "cli/jsonl.hpp"
#include "json.hpp"
#include "routerm.h"

namespace {

using routerm::cli::Row;

// Lines scored per routerm_score call (each chunk is written before the next is read), the
// default of `python -m runtime score --batch-size` (runtime.__main__.DEFAULT_BATCH_SIZE).
constexpr long kDefaultBatch = 64;

int usage(const char *argv0) {
    std::fprintf(stderr,
                 "usage: %s [--threads N] [--provider cpu|cuda|tensorrt|NAME] [--batch N] [--no-verify] BUNDLE "
                 "< pairs.jsonl > rewards.jsonl\n"
                 "  input lines: {\"prompt\": P, \"response\": R, \"id\": any (optional)}, P and R each a\n"
                 "    string or a list of {\"role\": str, \"content\": str} chat messages\n"
                 "  output lines: {\"id\": ..., \"reward\": float, \"domain\": str|null}\n"
                 "  --batch N: lines per engine call (default %ld)\n",
                 argv0, kDefaultBatch);
    return 2;
}

bool parse_count(const char *text, long &out) {
    errno = 0;
    char *end = nullptr;
    out = std::strtol(text, &end, 10);
    return errno == 0 && end && *end == '\0' && out >= 0;
}

bool flush(routerm_engine *engine, std::vector<Row> &rows) {
    if (rows.empty()) return true;
    // The C form of each side: its text, or its messages (kept alive by `messages` until the call ends).
    std::vector<std::vector<routerm_message>> messages;
    std::vector<routerm_side> prompts, responses;
    auto c_side = [&](const routerm::cli::Side &side) {
        routerm_side out{side.text.c_str(), nullptr, 0};
        if (side.is_messages) {
            messages.emplace_back();
            for (const auto &[role, content] : side.messages) messages.back().push_back({role.c_str(), content.c_str()});
            out.messages = messages.back().data();
            out.num_messages = messages.back().size();
        }
        return out;
    };
    messages.reserve(2 * rows.size());   // no reallocation: the sides point into it
    for (const Row &r : rows) {
        prompts.push_back(c_side(r.prompt));
        responses.push_back(c_side(r.response));
    }
    std::vector<float> rewards(rows.size());
    std::vector<int32_t> domains(rows.size());
    routerm_status s = routerm_score_rows(engine, rows.size(), prompts.data(), responses.data(), rewards.data(), domains.data());
    if (s != ROUTERM_OK) {
        std::fprintf(stderr, "routerm-score: %s: %s\n", routerm_status_name(s), routerm_last_error());
        return false;
    }
    for (size_t i = 0; i < rows.size(); ++i) {
        const char *domain = domains[i] >= 0 ? routerm_domain_name(engine, size_t(domains[i])) : nullptr;
        std::string line = "{";
        if (!rows[i].id_json.empty()) line += "\"id\": " + rows[i].id_json + ", ";
        char reward[32];
        std::snprintf(reward, sizeof reward, "%.9g", double(rewards[i]));
        line += std::string("\"reward\": ") + reward + ", \"domain\": " + (domain ? routerm::json::quote(domain) : "null") + "}\n";
        std::fputs(line.c_str(), stdout);
    }
    rows.clear();
    return std::fflush(stdout) == 0;
}

}  // namespace

int main(int argc, char **argv) {
    routerm_options options;
    routerm_options_init(&options);
    long batch = kDefaultBatch;
    const char *bundle = nullptr;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        long value = 0;
        bool has_value = i + 1 < argc;
        if (arg == "--threads" && has_value && parse_count(argv[i + 1], value)) { options.intra_op_threads = int(value); ++i; }
        else if (arg == "--provider" && has_value) options.provider = argv[++i];
        else if (arg == "--batch" && has_value && parse_count(argv[i + 1], value) && value > 0) { batch = value; ++i; }
        else if (arg == "--no-verify") options.verify_checksums = 0;
        else if (arg == "-h" || arg == "--help") return usage(argv[0]), 0;
        else if (!bundle && arg.rfind("--", 0) != 0) bundle = argv[i];
        else return usage(argv[0]);
    }
    if (!bundle) return usage(argv[0]);

    routerm_engine *engine = nullptr;
    routerm_status s = routerm_engine_create(bundle, &options, &engine);
    if (s != ROUTERM_OK) {
        std::fprintf(stderr, "routerm-score: %s: %s\n", routerm_status_name(s), routerm_last_error());
        return 1;
    }
    int status = 0;
    std::vector<Row> rows;
    std::string line;
    for (long number = 1; std::getline(std::cin, line); ++number) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        try {
            rows.push_back(routerm::cli::parse_pair_line(line));
        } catch (const std::exception &e) {
            std::fprintf(stderr, "routerm-score: stdin line %ld: %s\n", number, e.what());
            status = 1;
            break;
        }
        if (long(rows.size()) >= batch && !flush(engine, rows)) { status = 1; break; }
    }
    if (status == 0 && !flush(engine, rows)) status = 1;
    routerm_engine_destroy(engine);
    return status;
}
