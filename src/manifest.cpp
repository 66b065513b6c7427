#include "manifest.hpp"

#include <algorithm>
#include <iterator>
#include <set>

#include "error.hpp"
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

struct Reader {
    std::string where;   // ".../manifest.json"

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
    // core.manifest._inside: relative, no '..', not empty.
    void inside(const std::string &rel, const std::string &field) const {
        bool escapes = rel.empty() || rel[0] == '/';
        size_t start = 0;
        while (!escapes && start <= rel.size()) {
            size_t slash = rel.find('/', start);
            std::string part = rel.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
            escapes = part == "..";
            if (slash == std::string::npos) break;
            start = slash + 1;
        }
        if (escapes) fail(field + " names '" + rel + "', which is outside the bundle");
    }
};

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

}  // namespace

bool Graph::takes(const std::string &input) const {
    return std::find(inputs.begin(), inputs.end(), input) != inputs.end();
}

Manifest load_manifest(const std::string &dir, bool verify) {
    Reader r{join_path(dir, kManifestName)};
    if (!is_file(r.where)) r.fail("no manifest (is '" + dir + "' a RouteRM bundle?)");
    json::Value raw;
    try {
        raw = json::parse(read_file(r.where, ROUTERM_ERR_BUNDLE));
    } catch (const Error &) {
        throw;
    } catch (const std::exception &e) {
        r.fail(std::string("not valid JSON (") + e.what() + ")");
    }
    if (!raw.is(json::Type::Object)) r.fail("expected a JSON object");
    Manifest m;
    m.dir = dir;
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
    auto listed = [&](const std::string &rel) {
        return std::any_of(m.files.begin(), m.files.end(), [&](const auto &f) { return f.first == rel; });
    };

    const json::Value &graphs = r.need(raw, "graphs", json::Type::Object, "dict");
    for (const std::string &role : graphs.keys) {
        const json::Value &g = graphs.object.at(role);
        const json::Value *kind = g.find("kind");
        if (!g.is(json::Type::Object) || !kind || !kind->is(json::Type::String) || !kKindOutputs.count(kind->string))
            r.fail("graph '" + role + "' has no valid 'kind' (one of reward, router, switchable)");
        const json::Value *file = g.find("file");
        if (!file || !file->is(json::Type::String)) r.fail("graph '" + role + "' has no 'file'");
        r.inside(file->string, "graphs." + role + ".file");
        if (!listed(file->string)) r.fail("graph file '" + file->string + "' has no checksum in 'files'");
        Graph graph{role, file->string, kind->string, {}, {}};
        if (const json::Value *in = g.find("inputs")) graph.inputs = r.strings(*in, "graphs." + role + ".inputs");
        if (const json::Value *out = g.find("outputs")) graph.outputs = r.strings(*out, "graphs." + role + ".outputs");
        for (const std::string &o : kKindOutputs.at(graph.kind))
            if (std::find(graph.outputs.begin(), graph.outputs.end(), o) == graph.outputs.end())
                r.fail("graph '" + role + "' lacks output '" + o + "'");
        if (!graph.takes("input_ids") || !graph.takes("attention_mask"))
            r.fail("graph '" + role + "' must take input_ids and attention_mask");
        m.graphs[role] = std::move(graph);
    }
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

    m.max_length = long(r.need_int(raw, "max_length"));
    m.router_max_length = raw.find("router_max_length") ? long(r.need_int(raw, "router_max_length")) : m.max_length;
    // runtime.engine._check_truncation: a bundle without the field (or without its policy)
    // predates it and was made with keep_response_cut_prompt_start (Manifest::truncation's default).
    if (const json::Value *t = raw.find("truncation")) {
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
    m.tokenizer = r.need(raw, "tokenizer", json::Type::Object, "dict");
    // Imported models: a chat template and per-part tokenizers are read by the Python runtime only;
    // serving such a bundle's text with the top-level tokenizer's pair encoding would give wrong
    // rewards. A templated bundle whose tokenizer the library does not implement (kind 'other', every
    // imported decoder) still loads: its text is refused there, and routerm_score_ids takes the ids
    // the template gives.
    const json::Value *kind = m.tokenizer.find("kind");
    const bool wordpiece = !kind || (kind->is(json::Type::String) && kind->string == "wordpiece");
    if (const json::Value *chat = m.tokenizer.find("chat_template"); chat && !chat->is(json::Type::Null) && wordpiece)
        r.fail("field 'tokenizer.chat_template': this library does not apply chat templates yet; serve the bundle "
               "with the Python runtime (runtime.RewardEngine)");
    if (const json::Value *parts = raw.find("parts"); parts && !(parts->is(json::Type::Object) && parts->keys.empty()))
        r.fail("field 'parts': this library reads one tokenizer per bundle; serve a bundle whose graphs have their "
               "own tokenizers with the Python runtime (runtime.RewardEngine)");
    std::set<std::string> parents;
    if (const json::Value *tf = m.tokenizer.find("files"))
        for (const std::string &rel : r.strings(*tf, "tokenizer.files")) {
            r.inside(rel, "tokenizer.files");
            if (!listed(rel)) r.fail("tokenizer file '" + rel + "' has no checksum in 'files'");
            parents.insert(parent_dir(rel));
        }
    if (parents.empty()) r.fail("field 'tokenizer.files' lists no files");
    if (parents.size() != 1) r.fail("tokenizer files must share one folder");
    m.tokenizer_dir = join_path(dir, *parents.begin());

    if (verify) {
        for (const auto &[rel, digest] : m.files) {
            std::string path = join_path(dir, rel);
            if (!is_file(path)) throw Error(ROUTERM_ERR_BUNDLE, "bundle file '" + rel + "' is missing from " + dir);
            if (sha256_file(path) != digest)
                throw Error(ROUTERM_ERR_CHECKSUM, "bundle file '" + rel + "' in " + dir + " does not match its checksum (changed?)");
        }
    }
    return m;
}

}  // namespace routerm
