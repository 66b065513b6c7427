// Fuzz target: the manifest loader (src/manifest.cpp) on mutated manifest.json files, written into
// a private temporary bundle folder (no checksum verification: the loader's own parsing is tested).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "error.hpp"
#include "manifest.hpp"

static std::string folder() {
    static std::string dir = [] {
        char tmpl[] = "/tmp/routerm-fuzz-manifest-XXXXXX";
        if (!mkdtemp(tmpl)) std::abort();
        return std::string(tmpl);
    }();
    return dir;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string path = folder() + "/manifest.json";
    FILE *f = std::fopen(path.c_str(), "wb");
    if (!f) std::abort();
    if (size) std::fwrite(data, 1, size, f);
    std::fclose(f);
    try {
        routerm::Manifest m = routerm::load_manifest(folder(), false);
        (void)m;
    } catch (const routerm::Error &) {   // a clear error naming manifest.json and the field
    }
    return 0;
}
