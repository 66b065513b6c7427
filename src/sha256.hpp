// SHA-256 (FIPS 180-4), for the bundle's file checksums.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace routerm {

class Sha256 {
public:
    Sha256();
    void update(const void *data, size_t size);
    std::string hex_digest();    // finishes the hash; call once

private:
    void block(const uint8_t *p);
    uint32_t h_[8];
    uint8_t buf_[64];
    size_t buf_len_ = 0;
    uint64_t total_ = 0;
};

// Lowercase hex sha256 of a file's bytes; throws routerm::Error(ROUTERM_ERR_BUNDLE) if unreadable.
std::string sha256_file(const std::string &path);

}  // namespace routerm
