// The error paths of routerm_engine_create / routerm_score (test_parity --errors): copies of a
// bundle are tampered with under SCRATCH_DIR, and each must give its status and a message naming
// what is wrong (the field, the file, the location).
//
//   test_parity --errors BUNDLE SCRATCH_DIR [EXTERNAL]
//
// BUNDLE is a rodos bundle; EXTERNAL (optional) a baseline bundle whose graph keeps its weights in
// an external-data file (make_bundles.py's baseline-external).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "routerm.h"

namespace fs = std::filesystem;

namespace {

// Each case: what is done, the status expected, a piece of the message expected.
int expect(const char *what, routerm_status got, routerm_status want, const char *needle) {
    const char *msg = routerm_last_error();
    bool ok = got == want && (!needle || std::strstr(msg, needle));
    std::printf("%s %s: %s \"%s\"\n", ok ? "ok  " : "FAIL", what, routerm_status_name(got), msg);
    return ok ? 0 : 1;
}

std::string slurp(const fs::path &path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void rewrite(const fs::path &path, const std::string &from, const std::string &to) {
    std::string text = slurp(path);
    size_t at = text.find(from);
    if (at == std::string::npos) throw std::runtime_error("'" + from + "' not in " + path.string());
    text.replace(at, from.size(), to);
    std::ofstream(path, std::ios::trunc) << text;
}

// Replace the manifest's "truncation" field (an object without nested braces) by `field`
// ("\"truncation\": {...}"), or drop it when `field` is empty; a manifest without it gets it
// first. manifest.json is the one bundle file without a checksum, so the copy still verifies.
void set_truncation(const fs::path &manifest, const std::string &field) {
    std::string text = slurp(manifest);
    size_t at = text.find("\"truncation\"");
    if (at == std::string::npos) {
        if (!field.empty()) text.insert(text.find('{') + 1, field + ",");
    } else {
        size_t end = text.find('}', at) + 1;
        if (size_t next = text.find_first_not_of(" \n", end); field.empty() && next != std::string::npos && text[next] == ',')
            end = next + 1;   // and its comma
        text.replace(at, end - at, field);
    }
    std::ofstream(manifest, std::ios::trunc) << text;
}

std::string policy_field(const char *policy) {
    return std::string("\"truncation\": {\"policy\": \"") + policy + "\", \"prompt_min_divisor\": 4}";
}

// A fresh copy of `bundle` at scratch/name.
fs::path fresh_copy(const char *bundle, const char *scratch, const char *name) {
    fs::path dir = fs::path(scratch) / name;
    fs::remove_all(dir);
    fs::create_directories(dir.parent_path());
    fs::copy(bundle, dir, fs::copy_options::recursive);
    return dir;
}

// The text of the object `"key": {...}` in `text`, '{' to its '}' (no braces inside its strings,
// as in a manifest's tokenizer section).
std::string object_text(const std::string &text, const std::string &key) {
    size_t at = text.find('{', text.find("\"" + key + "\""));
    for (size_t i = at, depth = 0; at != std::string::npos && i < text.size(); ++i) {
        depth += text[i] == '{';
        if (text[i] == '}' && --depth == 0) return text.substr(at, i - at + 1);
    }
    throw std::runtime_error("no object '" + key + "'");
}

// Per-part tokenizers (imported models, core.manifest._parts) on a rodos bundle: a part giving the
// router the bundle's own tokenizer loads and scores as the bundle does; a part naming no graph,
// without a tokenizer, or with a file outside the bundle, is refused naming the field; so is a
// malformed chat template.
int parts_errors(const char *bundle, const char *scratch) {
    std::string tokenizer = object_text(slurp(fs::path(bundle) / "manifest.json"), "tokenizer");
    auto with_parts = [&](const char *name, const std::string &parts) {
        fs::path dir = fresh_copy(bundle, scratch, name);
        rewrite(dir / "manifest.json", "\"method\": \"rodos\"", "\"parts\": " + parts + ", \"method\": \"rodos\"");
        return dir;
    };
    fs::path dir = with_parts("parts", "{\"router\": {\"tokenizer\": " + tokenizer + ", \"max_length\": 32}}");
    routerm_engine *plain = nullptr, *parted = nullptr;
    int failures = expect("parts: the router's own tokenizer", routerm_engine_create(bundle, nullptr, &plain), ROUTERM_OK, nullptr) +
                   expect("parts: the router's own tokenizer", routerm_engine_create(dir.c_str(), nullptr, &parted), ROUTERM_OK, nullptr);
    if (plain && parted) {
        const char *prompt = "How do I sort a list in Python?", *response = "Use sorted(xs).";
        float want = 0, got = 1;
        int32_t want_domain = -2, got_domain = -3;
        failures += expect("parts: score", routerm_score(plain, 1, &prompt, &response, &want, &want_domain), ROUTERM_OK, nullptr) +
                    expect("parts: score", routerm_score(parted, 1, &prompt, &response, &got, &got_domain), ROUTERM_OK, nullptr);
        failures += want != got || want_domain != got_domain;
    }
    routerm_engine_destroy(plain);
    routerm_engine_destroy(parted);
    routerm_engine *rm = nullptr;
    dir = with_parts("parts-role", "{\"reward/nope\": {\"tokenizer\": " + tokenizer + ", \"max_length\": 64}}");
    failures += expect("parts: no such graph", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_BUNDLE,
                       "field 'parts' names 'reward/nope', which is not a graph of this bundle");
    dir = with_parts("parts-tokenizer", "{\"router\": {\"max_length\": 32}}");
    failures += expect("parts: no tokenizer", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_BUNDLE,
                       "parts.router needs a 'tokenizer' object");
    dir = with_parts("parts-outside", "{\"router\": {\"tokenizer\": {\"files\": [\"../vocab.txt\"]}, \"max_length\": 32}}");
    failures += expect("parts: file outside", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_BUNDLE,
                       "parts.router.tokenizer.files names '../vocab.txt', which is outside the bundle");
    dir = fresh_copy(bundle, scratch, "template");
    rewrite(dir / "manifest.json", "\"kind\": \"wordpiece\"", "\"kind\": \"wordpiece\", \"chat_template\": {\"start\": 7}");
    failures += expect("malformed chat template", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_BUNDLE,
                       "chat_template");
    return failures;
}

// Every `from` in a file replaced by `to`, of the same length (a graph's protobuf lengths still hold).
void patch_bytes(const fs::path &path, const std::string &from, const std::string &to) {
    std::string bytes = slurp(path);
    size_t count = 0;
    for (size_t at = bytes.find(from); from.size() == to.size() && at != std::string::npos; at = bytes.find(from, at), ++count)
        bytes.replace(at, from.size(), to);
    if (count == 0) throw std::runtime_error("'" + from + "' not in " + path.string() + " (or not replaceable in place)");
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// A baseline bundle whose reward.onnx keeps its weights in reward.onnx.data (graphs.reward.data):
// a changed data file is a checksum error naming it; a data file outside the bundle or unlisted,
// named by the manifest or by the graph itself, and a graph file that is not a protobuf, are
// refused by name before ONNX Runtime opens the graph, checksums verified or not.
int external_data_errors(const char *bundle, const char *scratch) {
    routerm_engine *rm = nullptr;
    fs::path dir = fresh_copy(bundle, scratch, "external-checksum");
    {
        std::fstream data(dir / "reward.onnx.data", std::ios::in | std::ios::out | std::ios::binary);
        auto middle = std::streamoff(fs::file_size(dir / "reward.onnx.data") / 2);
        char byte = char(data.seekg(middle).get() ^ 0xFF);
        data.seekp(middle).write(&byte, 1);
    }
    int failures = expect("changed data file", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_CHECKSUM,
                          "bundle file 'reward.onnx.data'");
    dir = fresh_copy(bundle, scratch, "external-listed");
    rewrite(dir / "manifest.json", "\"reward.onnx.data\"", "\"../reward.onnx.data\"");   // the first: graphs.reward.data
    failures += expect("data listed outside", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_BUNDLE,
                       "graphs.reward.data names '../reward.onnx.data', which is outside the bundle");
    routerm_options unchecked;
    routerm_options_init(&unchecked);
    unchecked.verify_checksums = 0;
    const char *cases[][2] = {{"../reward.d.data", "is outside the bundle"}, {"/tmp/reward.data", "is outside the bundle"},
                              {"reward.onnx.dat2", "the manifest does not list in graphs.reward.data"}};
    for (const auto &[location, why] : cases) {
        dir = fresh_copy(bundle, scratch, "external-location");
        // Each named file exists where ONNX Runtime would look (but /tmp): only the check refuses it.
        fs::copy_file(dir / "reward.onnx.data", dir / "reward.onnx.dat2");
        fs::copy_file(dir / "reward.onnx.data", dir.parent_path() / "reward.d.data", fs::copy_options::overwrite_existing);
        patch_bytes(dir / "reward.onnx", "reward.onnx.data", location);
        std::string want = std::string("bundle file 'reward.onnx' keeps weights in '") + location + "', which " + why;
        failures += expect(location, routerm_engine_create(dir.c_str(), &unchecked, &rm), ROUTERM_ERR_BUNDLE, want.c_str());
    }
    std::ofstream(dir / "reward.onnx", std::ios::binary | std::ios::trunc) << "\x3a\xff\xff\xff\xff\x0f";   // field 7, too long
    failures += expect("graph not a protobuf", routerm_engine_create(dir.c_str(), &unchecked, &rm), ROUTERM_ERR_BUNDLE,
                       "is not a well-formed ONNX graph");
    return failures;
}

// Truncation policies: unknown names and divisors are refused, naming the field; an over-long
// pair is encoded the way the manifest says, and a manifest without the field (made before it)
// the keep_response_cut_prompt_start way. The response ends in its one "zebra".
int policy_errors(const char *bundle, const char *scratch) {
    auto fresh = [&](const char *name) { return fresh_copy(bundle, scratch, name); };
    routerm_engine *rm = nullptr;
    int failures = 0;
    fs::path dir = fresh("policy-unknown");
    set_truncation(dir / "manifest.json", policy_field("cut_response"));
    failures += expect("unknown policy", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_BUNDLE,
                       "field 'truncation.policy' is 'cut_response', expected one of the policies this library applies "
                       "(prompt_tail_response_head_tail, keep_response_cut_prompt_start)");
    dir = fresh("policy-divisor");
    set_truncation(dir / "manifest.json", "\"truncation\": {\"policy\": \"keep_response_cut_prompt_start\", \"prompt_min_divisor\": 3}");
    failures += expect("other divisor", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_BUNDLE,
                       "field 'truncation.prompt_min_divisor' must be 4");
    std::string long_prompt, long_response;
    for (int i = 0; i < 700; ++i) { long_prompt += "why "; long_response += "one "; }
    long_response += "zebra";
    auto encode = [&](const char *name, const std::string &field, std::vector<int64_t> &ids, int64_t *zebra) {
        fs::path copy = fresh(name);
        set_truncation(copy / "manifest.json", field);
        routerm_engine *engine = nullptr;
        std::string what = std::string(name) + ": load, encode_pair, tokenize";
        int bad = expect(what.c_str(), routerm_engine_create(copy.c_str(), nullptr, &engine), ROUTERM_OK, nullptr);
        size_t count = 0, n = 0;
        ids.assign(4096, -1);
        if (engine) {
            bad += expect(what.c_str(), routerm_encode_pair(engine, long_prompt.c_str(), long_response.c_str(), ids.data(),
                                                            nullptr, ids.size(), &count), ROUTERM_OK, nullptr);
            ids.resize(count);
            bad += expect(what.c_str(), routerm_tokenize(engine, "zebra", zebra, 1, &n), ROUTERM_OK, nullptr) + (n != 1);
        }
        routerm_engine_destroy(engine);
        return bad;
    };
    std::vector<int64_t> head_tail, keep_head, no_field;
    int64_t zebra = -1;
    failures += encode("policy-head-tail", policy_field("prompt_tail_response_head_tail"), head_tail, &zebra);
    failures += encode("policy-keep-head", policy_field("keep_response_cut_prompt_start"), keep_head, &zebra);
    failures += encode("policy-absent", "", no_field, &zebra);
    auto has_zebra = [&](const std::vector<int64_t> &ids) { return std::find(ids.begin(), ids.end(), zebra) != ids.end(); };
    bool ok = head_tail.size() == keep_head.size() && has_zebra(head_tail) && !has_zebra(keep_head) && no_field == keep_head;
    std::printf("%s policy encodings: %zu ids each; the response's end kept by head+tail: %s, by keep-head: %s; "
                "no field = keep-head: %s\n", ok ? "ok  " : "FAIL", head_tail.size(), has_zebra(head_tail) ? "yes" : "no",
                has_zebra(keep_head) ? "yes" : "no", no_field == keep_head ? "yes" : "no");
    failures += !ok;
    return failures;
}

}  // namespace

int bundle_errors(const char *bundle, const char *scratch, const char *external) {
    int failures = 0;
    routerm_engine *rm = reinterpret_cast<routerm_engine *>(1);
    failures += expect("no bundle", routerm_engine_create("/nonexistent/bundle", nullptr, &rm), ROUTERM_ERR_BUNDLE, "no manifest");
    failures += rm != nullptr;
    failures += expect("NULL dir", routerm_engine_create(nullptr, nullptr, &rm), ROUTERM_ERR_ARGUMENT, "bundle_dir is NULL");
    float reward;
    const char *text = "x";
    failures += expect("NULL engine", routerm_score(nullptr, 1, &text, &text, &reward, nullptr), ROUTERM_ERR_ARGUMENT, "engine");
    routerm_options options;
    routerm_options_init(&options);
    options.provider = "NoSuchExecutionProvider";
    failures += expect("unknown provider", routerm_engine_create(bundle, &options, &rm), ROUTERM_ERR_RUNTIME, "NoSuchExecutionProvider");

    auto fresh = [&](const char *name) { return fresh_copy(bundle, scratch, name); };
    fs::path dir = fresh("checksum");
    std::ofstream(dir / "tokenizer_config.json", std::ios::app) << " ";
    failures += expect("changed file", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_CHECKSUM,
                       "bundle file 'tokenizer_config.json'");
    options.provider = nullptr;
    options.verify_checksums = 0;
    failures += expect("changed file, no verify", routerm_engine_create(dir.c_str(), &options, &rm), ROUTERM_OK, nullptr);
    routerm_engine_destroy(rm);

    dir = fresh("badjson");
    rewrite(dir / "manifest.json", "{", "[");
    failures += expect("bad manifest", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_BUNDLE, "not valid JSON");
    dir = fresh("method");
    rewrite(dir / "manifest.json", "\"method\": \"rodos\"", "\"method\": \"baseline\"");
    failures += expect("wrong graph set", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_BUNDLE, "needs graphs");
    dir = fresh("missing");
    fs::remove(dir / "router.onnx");
    failures += expect("missing graph", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_BUNDLE, "router.onnx");
    dir = fresh("escape");
    rewrite(dir / "manifest.json", "\"file\": \"router.onnx\"", "\"file\": \"../router.onnx\"");
    failures += expect("path outside", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_ERR_BUNDLE, "outside the bundle");

    failures += parts_errors(bundle, scratch);
    if (external) failures += external_data_errors(external, scratch);

    // The tokenizer kind is informative: any tokenizer.json the library reads serves text and ids.
    dir = fresh("other");
    rewrite(dir / "manifest.json", "\"kind\": \"wordpiece\"", "\"kind\": \"other\"");
    failures += expect("other tokenizer", routerm_engine_create(dir.c_str(), nullptr, &rm), ROUTERM_OK, nullptr);
    if (rm) {
        int32_t domain;
        failures += expect("text on other", routerm_score(rm, 1, &text, &text, &reward, &domain), ROUTERM_OK, nullptr);
        int64_t ids[] = {7592, 2088};
        const int64_t *p = ids;
        size_t len = 2;
        failures += expect("ids on other", routerm_score_ids(rm, 1, &p, &len, &p, &len, &reward, &domain), ROUTERM_OK, nullptr);
        failures += !std::isfinite(reward);
        routerm_engine_destroy(rm);
    }
    // A tokenizer component the library does not implement is refused when the bundle loads, by name.
    routerm_options unchecked;
    routerm_options_init(&unchecked);
    unchecked.verify_checksums = 0;
    dir = fresh("unsupported-component");
    rewrite(dir / "tokenizer.json", "\"BertPreTokenizer\"", "\"UnicodeScripts\"");
    failures += expect("unsupported pre-tokenizer", routerm_engine_create(dir.c_str(), &unchecked, &rm),
                       ROUTERM_ERR_TOKENIZER, "pre-tokenizer 'UnicodeScripts' is not supported");
    dir = fresh("unsupported-model");
    rewrite(dir / "tokenizer.json", "\"model\": {\n    \"type\": \"WordPiece\"", "\"model\": {\"type\": \"WordLevel\"");
    failures += expect("unsupported model", routerm_engine_create(dir.c_str(), &unchecked, &rm), ROUTERM_ERR_TOKENIZER,
                       "model 'WordLevel' is not supported");

    failures += policy_errors(bundle, scratch);
    fs::remove_all(scratch);
    return failures ? 1 : 0;
}

