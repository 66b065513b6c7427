// Fuzz target: routerm-score's input line parser (src/cli/jsonl.cpp) on arbitrary bytes.
// Invariants: a parsed row's texts hold no NUL (the C API would cut them there), and its re-encoded
// id is itself valid JSON. Memory errors (ASan/UBSan) and any other exception are findings.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "cli/jsonl.hpp"
#include "json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string line(reinterpret_cast<const char *>(data), size);
    routerm::cli::Row row;
    try {
        row = routerm::cli::parse_pair_line(line);
    } catch (const std::runtime_error &) {   // a clear parse error is the expected answer to bad input
        return 0;
    } catch (const std::invalid_argument &) {
        return 0;
    } catch (const std::out_of_range &) {
        return 0;
    }
    if (row.prompt.holds_nul() || row.response.holds_nul()) std::abort();
    if (!row.id_json.empty()) routerm::json::parse(row.id_json);   // throws (uncaught: a finding) if not JSON
    return 0;
}
