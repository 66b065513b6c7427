// The bundle contract (core/manifest.py, schema ROUTERM_SCHEMA_VERSION), read and validated the same way: the
// field names, the graph set each method needs, paths kept inside the bundle, and, on request,
// the sha256 of every listed file.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "encode.hpp"
#include "json.hpp"

namespace routerm {

struct Graph {
    std::string role, file, kind;              // kind: reward | router | switchable
    std::vector<std::string> inputs, outputs;
    bool takes(const std::string &input) const;
};

struct Manifest {
    std::string dir;                           // the bundle directory
    std::string method;                        // baseline | more | rodos | arliss
    std::vector<std::string> domains;          // order = domain index
    long max_length = 0, router_max_length = 0;
    // truncation.policy; absent = the policy of bundles made before the field
    // (keep_response_cut_prompt_start, as runtime.engine._check_truncation reads it)
    Truncation truncation = Truncation::KeepHead;
    std::string lora;                          // "switchable", "merged" or "" (null)
    std::string precision;
    std::map<std::string, int64_t> adapter_ids;   // switchable only: domain / "router" -> adapter
    std::map<std::string, Graph> graphs;       // role -> graph
    std::vector<std::pair<std::string, std::string>> files;   // relative path, sha256 hex
    json::Value tokenizer;                     // the "tokenizer" object
    std::string tokenizer_dir;                 // folder holding tokenizer.files

    bool routed() const { return method == "rodos" || method == "arliss"; }
    bool switchable() const { return graphs.count("switchable") != 0; }
};

// Parse dir/manifest.json; Error(ROUTERM_ERR_BUNDLE) naming the field, or
// Error(ROUTERM_ERR_CHECKSUM) naming the file when `verify` and a checksum does not match.
Manifest load_manifest(const std::string &dir, bool verify);

}  // namespace routerm
