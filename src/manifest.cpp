#include "manifest.hpp"

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <set>

#include "error.hpp"
#include "onnx_refs.hpp"
#include "sha256.hpp"
#include "util.hpp"

namespace routerm {

namespace {

// core.manifest's MANIFEST, METHODS and KINDS (graph kind -> the outputs it must have); the
// schema version is routerm.h's ROUTERM_SCHEMA_VERSION. tests/test_runtime.py checks all four.
constexpr const char *kManifestName = "manifest.json";
constexpr const char *kMethods[] = {"baseline", "more", "rodos", "arliss"};
const std::map<std::string, std::vector<std::string>> kKindOutputs = {
    {"reward", {"logits"}}, {"router", {"logits"}}, {"switchable", {"rewards", "router_logits"}}};

// The path's parts without empty and "." ones, joined by '/' ("a/./b//c" -> "a/b/c"), as
// pathlib's as_posix() writes a relative path.
std::string normalized(const std::string &rel) {
    std::string out;
    for (size_t start = 0; start <= rel.size();) {
        size_t slash = std::min(rel.find('/', start), rel.size());
        std::string part = rel.substr(start, slash - start);
        if (!part.empty() && part != ".") out += (out.empty() ? "" : "/") + part;
        start = slash + 1;
    }
    return out;
}

// Whether dir/rel, with symbolic links resolved, lies under dir (core.manifest._inside resolves
// too); a path that does not exist yet is left to the missing-file checks.
bool resolves_inside(const std::string &dir, const std::string &rel) {
    using Path = std::unique_ptr<char, void (*)(void *)>;
    Path full(::realpath(join_path(dir, rel).c_str(), nullptr), &std::free);
    Path root(::realpath(dir.c_str(), nullptr), &std::free);
    if (!full || !root) return true;
    std::string prefix = std::string(root.get()) + (std::string(root.get()) == "/" ? "" : "/");
    return std::string(full.get()).compare(0, prefix.size(), prefix) == 0;
}

struct Reader {
    std::string where;   // ".../manifest.json"
    std::string dir;     // the bundle directory

    [[noreturn]] void fail(const std::string &what) const { throw Error(ROUTERM_ERR_BUNDLE, where + ": " + what); }

    const json::Value &need(const json::Value &obj, const std::string &key, json::Type type, const char *type_name) const {
        const json::Value *v = obj.find(key);
        if (!v) fail("missing field '" + key + "'");
        if (!v->is(type)) fail("field '" + key + "' has the wrong type (expected " + type_name + ")");
        return *v;
    }
    int64_t need_int(const json::Value &obj, const std::string &key) const {
        const json::Value &v = need(obj, key, json::Type::Number, "int");
        if (!v.integral) fail("field '" + key + "' has the wrong type (expected int)");
        return v.integer;
    }
    std::vector<std::string> strings(const json::Value &v, const std::string &field) const {
        std::vector<std::string> out;
        if (!v.is(json::Type::Array)) fail("field '" + field + "' must be a list of strings");
        for (const json::Value &x : v.array) {
            if (!x.is(json::Type::String)) fail("field '" + field + "' must be a list of strings");
            out.push_back(x.string);
        }
        return out;
    }
    // core.manifest._inside: not empty, relative, no ".." part, and inside once links are resolved.
    void inside(const std::string &rel, const std::string &field) const {
        bool escapes = rel.empty() || rel[0] == '/';
        for (size_t start = 0; !escapes && start <= rel.size();) {
            size_t slash = std::min(rel.find('/', start), rel.size());
            escapes = rel.compare(start, slash - start, "..") == 0;
            start = slash + 1;
        }
        if (escapes || !resolves_inside(dir, rel)) fail(field + " names '" + rel + "', which is outside the bundle");
    }
};

bool listed(const Manifest &m, const std::string &rel) {
    return std::any_of(m.files.begin(), m.files.end(), [&](const auto &f) { return f.first == rel; });
}

std::set<std::string> expected_roles(const std::string &method, const std::string &lora,
                                     const std::vector<std::string> &domains) {
    if (method == "baseline" || method == "more") return {"reward"};
    if (method == "arliss" && lora == "switchable") return {"switchable"};
    std::set<std::string> roles{"router"};
    for (const std::string &d : domains) roles.insert("reward/" + d);
    return roles;
}

std::string method_names() {
    std::string s;
    for (const char *m : kMethods) s += std::string(s.empty() ? "" : ", ") + m;
    return s;
}

std::string policy_names() {
    std::string s;
    for (const TruncationName &t : kTruncationPolicies) s += std::string(s.empty() ? "" : ", ") + t.name;
    return s;
}

std::string join(const std::set<std::string> &xs) {
    std::string s = "[";
    for (const std::string &x : xs) s += (s.size() > 1 ? ", '" : "'") + x + "'";
    return s + "]";
}

json::Value read_json(const Reader &r) {
    if (!is_file(r.where)) r.fail("no manifest (is '" + r.dir + "' a RouteRM bundle?)");
    json::Value raw;
    try {
        raw = json::parse(read_file(r.where, ROUTERM_ERR_BUNDLE));
    } catch (const Error &) {
        throw;
    } catch (const std::exception &e) {
        r.fail(std::string("not valid JSON (") + e.what() + ")");
    }
    if (!raw.is(json::Type::Object)) r.fail("expected a JSON object");
    return raw;
}

// schema_version, method, domains, lora, precision and files (each inside the bundle).
void read_header(const Reader &r, const json::Value &raw, Manifest &m) {
    int64_t version = r.need_int(raw, "schema_version");
    if (version != ROUTERM_SCHEMA_VERSION)
        r.fail("unknown schema_version " + std::to_string(version) + " (this library reads " +
               std::to_string(ROUTERM_SCHEMA_VERSION) + ")");
    m.method = r.need(raw, "method", json::Type::String, "str").string;
    if (std::none_of(std::begin(kMethods), std::end(kMethods), [&](const char *x) { return m.method == x; }))
        r.fail("field 'method' is '" + m.method + "', expected one of " + method_names());
    m.domains = r.strings(r.need(raw, "domains", json::Type::Array, "list"), "domains");
    if (m.domains.empty() || std::set<std::string>(m.domains.begin(), m.domains.end()).size() != m.domains.size())
        r.fail("field 'domains' must be a non-empty list of unique names");
    if (const json::Value *lora = raw.find("lora"); lora && lora->is(json::Type::String)) m.lora = lora->string;
    if (const json::Value *p = raw.find("precision"); p && p->is(json::Type::String)) m.precision = p->string;
    const json::Value &files = r.need(raw, "files", json::Type::Object, "dict");
    for (const std::string &rel : files.keys) {
        r.inside(rel, "files");
        const json::Value &digest = files.object.at(rel);
        if (!digest.is(json::Type::String)) r.fail("files['" + rel + "'] is not a sha256 hex string");
        m.files.emplace_back(rel, digest.string);
    }
}

// One entry of "graphs": kind, file and data (inside the bundle, checksummed), inputs, outputs.
Graph read_graph(const Reader &r, const Manifest &m, const std::string &role, const json::Value &g) {
    const json::Value *kind = g.find("kind");
    if (!g.is(json::Type::Object) || !kind || !kind->is(json::Type::String) || !kKindOutputs.count(kind->string))
        r.fail("graph '" + role + "' has no valid 'kind' (one of reward, router, switchable)");
    const json::Value *file = g.find("file");
    if (!file || !file->is(json::Type::String)) r.fail("graph '" + role + "' has no 'file'");
    r.inside(file->string, "graphs." + role + ".file");
    if (!listed(m, file->string)) r.fail("graph file '" + file->string + "' has no checksum in 'files'");
    Graph graph{role, file->string, kind->string, {}, {}, {}};
    if (const json::Value *in = g.find("inputs")) graph.inputs = r.strings(*in, "graphs." + role + ".inputs");
    if (const json::Value *out = g.find("outputs")) graph.outputs = r.strings(*out, "graphs." + role + ".outputs");
    for (const std::string &o : kKindOutputs.at(graph.kind))
        if (std::find(graph.outputs.begin(), graph.outputs.end(), o) == graph.outputs.end())
            r.fail("graph '" + role + "' lacks output '" + o + "'");
    if (!graph.takes("input_ids") || !graph.takes("attention_mask"))
        r.fail("graph '" + role + "' must take input_ids and attention_mask");
    if (const json::Value *data = g.find("data")) {
        bool names = data->is(json::Type::Array) &&
                     std::all_of(data->array.begin(), data->array.end(), [](const json::Value &x) { return x.is(json::Type::String); });
        if (!names) r.fail("graphs." + role + ".data must be a list of file names");
        for (const json::Value &rel : data->array) {
            r.inside(rel.string, "graphs." + role + ".data");
            if (!listed(m, rel.string)) r.fail("graph data file '" + rel.string + "' has no checksum in 'files'");
            graph.data.push_back(rel.string);
        }
    }
    return graph;
}

// "graphs": the set the method needs; a switchable graph's adapter_ids.
void read_graphs(const Reader &r, const json::Value &raw, Manifest &m) {
    const json::Value &graphs = r.need(raw, "graphs", json::Type::Object, "dict");
    for (const std::string &role : graphs.keys) m.graphs[role] = read_graph(r, m, role, graphs.object.at(role));
    std::set<std::string> want = expected_roles(m.method, m.lora, m.domains), have;
    for (const auto &g : m.graphs) have.insert(g.first);
    if (want != have)
        r.fail("method '" + m.method + "' (lora=" + (m.lora.empty() ? "None" : m.lora) + ") needs graphs " + join(want) +
               ", has " + join(have));
    if (m.switchable()) {
        const json::Value *ids = raw.find("adapter_ids");
        std::set<std::string> names(m.domains.begin(), m.domains.end());
        names.insert("router");
        if (!ids || !ids->is(json::Type::Object) || std::set<std::string>(ids->keys.begin(), ids->keys.end()) != names)
            r.fail("field 'adapter_ids' must map every domain and 'router' to an index");
        for (const std::string &k : ids->keys) m.adapter_ids[k] = r.need_int(*ids, k);
        if (!m.graphs["switchable"].takes("adapter_ids")) r.fail("graph 'switchable' does not take 'adapter_ids'");
    }
}

// max_length, router_max_length and truncation.
void read_lengths(const Reader &r, const json::Value &raw, Manifest &m) {
    m.max_length = long(r.need_int(raw, "max_length"));
    m.router_max_length = raw.find("router_max_length") ? long(r.need_int(raw, "router_max_length")) : m.max_length;
    // runtime.engine._check_truncation: a bundle without the field (or without its policy)
    // predates it and was made with keep_response_cut_prompt_start (Manifest::truncation's default).
    const json::Value *t = raw.find("truncation");
    if (!t) return;
    if (!t->is(json::Type::Object)) r.fail("field 'truncation' has the wrong type (expected dict)");
    if (const json::Value *policy = t->find("policy");
        policy && !(policy->is(json::Type::String) && truncation_from_name(policy->string, m.truncation)))
        r.fail("field 'truncation.policy' is " + (policy->is(json::Type::String) ? "'" + policy->string + "'" : "not a string") +
               ", expected one of the policies this library applies (" + policy_names() + ")");
    if (const json::Value *divisor = t->find("prompt_min_divisor");
        divisor && !(divisor->is(json::Type::Number) && divisor->integral && divisor->integer == kPromptMinDivisor))
        r.fail("field 'truncation.prompt_min_divisor' must be " + std::to_string(kPromptMinDivisor) +
               " (the only one this library applies)");
}

// The folder holding the files of tokenizer section `section` (manifest field `field`): each
// inside the bundle and checksummed, all in one folder. The section's other keys (kind,
// chat_template, ...) are read by the tokenizer and chat code.
std::string tokenizer_dir(const Reader &r, const Manifest &m, const json::Value &section, const std::string &field) {
    std::set<std::string> parents;
    if (const json::Value *tf = section.find("files"))
        for (const std::string &rel : r.strings(*tf, field + ".files")) {
            r.inside(rel, field + ".files");
            if (!listed(m, rel)) r.fail("tokenizer file '" + rel + "' has no checksum in 'files'");
            parents.insert(parent_dir(rel));
        }
    if (parents.empty()) r.fail("field '" + field + ".files' lists no files");
    if (parents.size() != 1) r.fail(field + " files must share one folder");
    return join_path(m.dir, *parents.begin());
}

// core.manifest._parts: "parts" (absent or null = none), graph role -> {"tokenizer": {...}, "max_length": int}.
void read_parts(const Reader &r, const json::Value &raw, Manifest &m) {
    const json::Value *parts = raw.find("parts");
    if (!parts || parts->is(json::Type::Null)) return;
    if (!parts->is(json::Type::Object)) r.fail("field 'parts' must be an object of graph roles");
    for (const std::string &role : parts->keys) {
        const json::Value &part = parts->object.at(role);
        if (!m.graphs.count(role)) r.fail("field 'parts' names '" + role + "', which is not a graph of this bundle");
        const json::Value *tokenizer = part.find("tokenizer");
        if (!tokenizer || !tokenizer->is(json::Type::Object)) r.fail("parts." + role + " needs a 'tokenizer' object");
        const json::Value *length = part.find("max_length");
        if (!length || !length->is(json::Type::Number) || !length->integral)
            r.fail("parts." + role + ".max_length must be an int");
        m.parts[role] = Part{*tokenizer, tokenizer_dir(r, m, *tokenizer, "parts." + role + ".tokenizer"), long(length->integer)};
    }
}

// core.manifest.verify_files: every listed file (graphs, their data, tokenizers) exists and
// matches its sha256.
void verify_files(const Manifest &m) {
    for (const auto &[rel, digest] : m.files) {
        std::string path = join_path(m.dir, rel);
        if (!is_file(path)) throw Error(ROUTERM_ERR_BUNDLE, "bundle file '" + rel + "' is missing from " + m.dir);
        if (sha256_file(path) != digest)
            throw Error(ROUTERM_ERR_CHECKSUM, "bundle file '" + rel + "' in " + m.dir + " does not match its checksum (changed?)");
    }
}

}  // namespace

bool Graph::takes(const std::string &input) const {
    return std::find(inputs.begin(), inputs.end(), input) != inputs.end();
}

Part Manifest::part_of(const std::string &role) const {
    bool routing = role == "router" && routed();
    if (!graphs.count(role) && !routing) throw Error(ROUTERM_ERR_INTERNAL, "bundle " + dir + " has no graph '" + role + "'");
    if (auto part = parts.find(role); part != parts.end()) return part->second;
    return Part{tokenizer, tokenizer_dir, role == "router" ? router_max_length : max_length};
}

Manifest load_manifest(const std::string &dir, bool verify) {
    Reader r{join_path(dir, kManifestName), dir};
    json::Value raw = read_json(r);
    Manifest m;
    m.dir = dir;
    read_header(r, raw, m);
    read_graphs(r, raw, m);
    read_lengths(r, raw, m);
    // A chat template (tokenizer.chat_template, parts.<role>.tokenizer.chat_template) is parsed by
    // the engine (src/chat.hpp), which names the field when it is malformed.
    m.tokenizer = r.need(raw, "tokenizer", json::Type::Object, "dict");
    m.tokenizer_dir = tokenizer_dir(r, m, m.tokenizer, "tokenizer");
    read_parts(r, raw, m);
    if (verify) verify_files(m);
    return m;
}

void check_graph_data(const Manifest &m, const std::string &role) {
    auto it = m.graphs.find(role);
    if (it == m.graphs.end()) throw Error(ROUTERM_ERR_INTERNAL, "bundle " + m.dir + " has no graph '" + role + "'");
    const Graph &graph = it->second;
    std::set<std::string> locations;
    try {
        locations = external_locations(join_path(m.dir, graph.file));
    } catch (const Error &e) {
        throw Error(ROUTERM_ERR_BUNDLE, "graph '" + role + "': " + e.what());
    }
    for (const std::string &location : locations) {
        // ONNX Runtime reads a location relative to the graph file's folder.
        bool outside = location_outside(location);
        std::string rel = outside ? "" : normalized(join_path(parent_dir(graph.file), location));
        if (!outside && std::find(graph.data.begin(), graph.data.end(), rel) != graph.data.end()) continue;
        std::string why = outside ? "is outside the bundle" : "the manifest does not list in graphs." + role + ".data";
        throw Error(ROUTERM_ERR_BUNDLE, "bundle file '" + graph.file + "' keeps weights in '" + location + "', which " + why +
                                            "; refusing to open graph '" + role + "'");
    }
}

}  // namespace routerm
