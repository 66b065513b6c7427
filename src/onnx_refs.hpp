// Where an ONNX graph file keeps its weights: the external-data locations it names, read by
// walking the protobuf wire format (no protobuf library), as core/onnx_refs.py does. ONNX Runtime
// opens whatever a graph names, so the engine reads the locations first and refuses one outside
// the bundle (absolute, or climbing with "..") or not checksummed in the manifest before ONNX
// Runtime sees the graph.
#pragma once

#include <set>
#include <string>

namespace routerm {

// Every external-data "location" the graph file at `path` names, as written in it;
// Error(ROUTERM_ERR_BUNDLE) naming the file when it is not a well-formed ONNX protobuf.
std::set<std::string> external_locations(const std::string &path);

// core.onnx_refs.outside: empty, absolute, a drive ("C:"), a backslash, or a ".." part.
bool location_outside(const std::string &location);

}  // namespace routerm
