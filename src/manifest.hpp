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
    std::vector<std::string> data;             // external-data files of its weights (bundle-relative, checksummed)
    bool takes(const std::string &input) const;
};

// How one graph reads text: a tokenizer section of the manifest, the folder holding its files
// (the bundle directory joined with their one shared folder) and the tokens per encoding.
struct Part {
    json::Value tokenizer;                     // {"kind", "files", "pad_token_id", "chat_template", ...}
    std::string tokenizer_dir;
    long max_length = 0;
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
    // "parts": graph role -> its own tokenizer and max_length (imported models under one router);
    // empty for bundles of one tokenizer.
    std::map<std::string, Part> parts;

    bool routed() const { return method == "rodos" || method == "arliss"; }
    bool switchable() const { return graphs.count("switchable") != 0; }
    // How `role` reads text, as runtime.engine.text_formats: parts[role] when the role has a part;
    // else the top-level tokenizer with max_length, or router_max_length for "router". `role` is a
    // graph role, or "router" for the routing pass of any routed bundle (the router graph, or the
    // switchable graph with the router adapter: its scoring pass is role "switchable").
    // Error(ROUTERM_ERR_INTERNAL) for any other role.
    Part part_of(const std::string &role) const;
};

// Parse dir/manifest.json; Error(ROUTERM_ERR_BUNDLE) naming the field, or
// Error(ROUTERM_ERR_CHECKSUM) naming the file when `verify` and a checksum does not match
// (external-data files are in "files", so they are verified with the graphs).
Manifest load_manifest(const std::string &dir, bool verify);

// core.manifest.check_graph_data: the external-data locations graph `role`'s file names (read from
// the file itself, src/onnx_refs.hpp) are all inside the bundle and listed in its graphs.<role>.data
// (so checksummed); Error(ROUTERM_ERR_BUNDLE) naming the graph file and the location otherwise, or
// when the file is not a readable ONNX graph. Call it before ONNX Runtime opens the graph.
void check_graph_data(const Manifest &m, const std::string &role);

}  // namespace routerm
