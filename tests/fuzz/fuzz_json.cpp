// Fuzz target: the JSON reader (src/json.cpp) on arbitrary bytes. Any exception other than the
// reader's own parse errors, and any memory error (ASan/UBSan), is a finding.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    try {
        routerm::json::Value v = routerm::json::parse(std::string(reinterpret_cast<const char *>(data), size));
        (void)v;
    } catch (const std::runtime_error &) {   // a clear parse error is the expected answer to bad input
    } catch (const std::invalid_argument &) {
    } catch (const std::out_of_range &) {
    }
    return 0;
}
