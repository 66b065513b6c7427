// The C ABI: argument checks, then the C++ engine; every exception becomes a status + message.
#include "routerm.h"

#include <cstring>
#include <initializer_list>
#include <new>
#include <string>
#include <vector>

#include "engine.hpp"
#include "error.hpp"

struct routerm_engine {
    routerm::Engine engine;
};

namespace {

thread_local std::string last_error;

routerm_status fail(routerm_status status, const std::string &message) {
    try {
        last_error = message;
    } catch (...) {
        // no memory for the message: the status still says what happened
    }
    return status;
}

// Run `body` and turn whatever it throws into a status and this thread's last error.
template <typename F>
routerm_status guarded(F &&body) {
    try {
        body();
        return ROUTERM_OK;
    } catch (const routerm::Error &e) {
        return fail(e.status, e.what());
    } catch (const std::bad_alloc &) {
        return fail(ROUTERM_ERR_NO_MEMORY, "out of memory");
    } catch (const std::exception &e) {
        return fail(ROUTERM_ERR_INTERNAL, std::string("internal error: ") + e.what());
    } catch (...) {
        return fail(ROUTERM_ERR_INTERNAL, "internal error: unknown exception");
    }
}

[[noreturn]] void argument(const std::string &what) { throw routerm::Error(ROUTERM_ERR_ARGUMENT, what); }

void need(const void *ptr, const char *name) {
    if (!ptr) argument(std::string(name) + " is NULL");
}

// What every scoring call checks first: the engine, then, when there are rows, each named array
// ({pointer, name} pairs). False when n is 0: nothing to score.
bool rows_given(const routerm_engine *engine, size_t n, std::initializer_list<std::pair<const void *, const char *>> arrays) {
    need(engine, "engine");
    if (n == 0) return false;
    for (const auto &[ptr, name] : arrays) need(ptr, name);
    return true;
}

void copy_out(const std::vector<int64_t> &src, int64_t *dst, size_t capacity, size_t *count) {
    need(count, "count");
    if (capacity && !dst) argument("ids is NULL but capacity is " + std::to_string(capacity));
    *count = src.size();
    if (capacity && !src.empty()) std::memcpy(dst, src.data(), std::min(capacity, src.size()) * sizeof(int64_t));
}

// Rows of text: a string prompt is one user turn and a string response one assistant turn for a
// chat-template bundle (src/formats.hpp).
void text_rows(size_t n, const char *const *prompts, const char *const *responses, std::vector<routerm::Row> &p,
               std::vector<routerm::Row> &r) {
    for (size_t i = 0; i < n; ++i) {
        if (!prompts[i]) argument("prompts[" + std::to_string(i) + "] is NULL");
        if (!responses[i]) argument("responses[" + std::to_string(i) + "] is NULL");
        p[i].text = prompts[i];
        r[i].text = responses[i];
    }
}

// One side of a row from the C form; `what` is "prompts[i]" / "responses[i]" for errors.
routerm::Row side_row(const routerm_side &side, const std::string &what) {
    routerm::Row row;
    if (!side.messages) {
        if (!side.text) argument(what + " has neither text nor messages");
        row.text = side.text;
        return row;
    }
    if (side.num_messages == 0) argument(what + " has no messages");
    row.is_messages = true;
    for (size_t k = 0; k < side.num_messages; ++k) {
        const routerm_message &m = side.messages[k];
        if (!m.role || !m.content) argument(what + " message " + std::to_string(k) + " has a NULL role or content");
        row.messages.push_back({m.role, m.content});
    }
    return row;
}

}  // namespace

extern "C" {

void routerm_options_init(routerm_options *options) {
    if (!options) return;
    options->intra_op_threads = 0;
    options->inter_op_threads = 0;
    options->provider = nullptr;
    options->device_id = 0;
    options->verify_checksums = 1;
    options->max_batch_rows = ROUTERM_DEFAULT_MAX_BATCH_ROWS;
    options->max_batch_tokens = ROUTERM_DEFAULT_MAX_BATCH_TOKENS;
}

routerm_status routerm_engine_create(const char *bundle_dir, const routerm_options *options, routerm_engine **engine) {
    if (engine) *engine = nullptr;
    return guarded([&] {
        need(bundle_dir, "bundle_dir");
        need(engine, "engine");
        routerm_options defaults;
        routerm_options_init(&defaults);
        const routerm_options &o = options ? *options : defaults;
        if (o.intra_op_threads < 0 || o.inter_op_threads < 0) argument("thread counts must be >= 0");
        if (o.device_id < 0) argument("device_id must be >= 0");
        routerm::EngineConfig config;
        config.session.intra_op_threads = o.intra_op_threads;
        config.session.inter_op_threads = o.inter_op_threads;
        config.session.provider = o.provider ? o.provider : "cpu";
        config.session.device_id = o.device_id;
        config.verify_checksums = o.verify_checksums != 0;
        config.max_rows = o.max_batch_rows;
        config.max_tokens = o.max_batch_tokens;
        *engine = new routerm_engine{routerm::Engine(bundle_dir, config)};
    });
}

void routerm_engine_destroy(routerm_engine *engine) {
    try {
        delete engine;
    } catch (...) {
        // destructors of ONNX Runtime handles do not throw; nothing may escape anyway
    }
}

routerm_status routerm_score(routerm_engine *engine, size_t n, const char *const *prompts, const char *const *responses,
                             float *rewards, int32_t *domains) {
    return guarded([&] {
        if (!rows_given(engine, n, {{prompts, "prompts"}, {responses, "responses"}, {rewards, "rewards"}})) return;
        std::vector<routerm::Row> p(n), r(n);
        text_rows(n, prompts, responses, p, r);
        engine->engine.score_rows(p, r, rewards, domains);
    });
}

routerm_status routerm_score_in_domains(routerm_engine *engine, size_t n, const char *const *prompts,
                                        const char *const *responses, const int32_t *domains_in, float *rewards) {
    return guarded([&] {
        if (!rows_given(engine, n, {{prompts, "prompts"}, {responses, "responses"}, {domains_in, "domains_in"},
                                    {rewards, "rewards"}}))
            return;
        std::vector<routerm::Row> p(n), r(n);
        text_rows(n, prompts, responses, p, r);
        engine->engine.score_rows(p, r, rewards, nullptr, domains_in);
    });
}

routerm_status routerm_score_rows(routerm_engine *engine, size_t n, const routerm_side *prompts,
                                  const routerm_side *responses, float *rewards, int32_t *domains) {
    return guarded([&] {
        if (!rows_given(engine, n, {{prompts, "prompts"}, {responses, "responses"}, {rewards, "rewards"}})) return;
        std::vector<routerm::Row> p, r;
        for (size_t i = 0; i < n; ++i) {
            p.push_back(side_row(prompts[i], "prompts[" + std::to_string(i) + "]"));
            r.push_back(side_row(responses[i], "responses[" + std::to_string(i) + "]"));
        }
        engine->engine.score_rows(p, r, rewards, domains);
    });
}

routerm_status routerm_score_ids(routerm_engine *engine, size_t n, const int64_t *const *prompt_ids,
                                 const size_t *prompt_lens, const int64_t *const *response_ids,
                                 const size_t *response_lens, float *rewards, int32_t *domains) {
    return guarded([&] {
        if (!rows_given(engine, n, {{prompt_ids, "prompt_ids"}, {prompt_lens, "prompt_lens"},
                                    {response_ids, "response_ids"}, {response_lens, "response_lens"}, {rewards, "rewards"}}))
            return;
        std::vector<std::vector<int64_t>> p(n), r(n);
        for (size_t i = 0; i < n; ++i) {
            if (prompt_lens[i] && !prompt_ids[i]) argument("prompt_ids[" + std::to_string(i) + "] is NULL");
            if (response_lens[i] && !response_ids[i]) argument("response_ids[" + std::to_string(i) + "] is NULL");
            if (prompt_lens[i]) p[i].assign(prompt_ids[i], prompt_ids[i] + prompt_lens[i]);
            if (response_lens[i]) r[i].assign(response_ids[i], response_ids[i] + response_lens[i]);
        }
        engine->engine.score_ids(p, r, rewards, domains);
    });
}

routerm_status routerm_tokenize(const routerm_engine *engine, const char *text, int64_t *ids, size_t capacity,
                                size_t *count) {
    return guarded([&] {
        need(engine, "engine");
        need(text, "text");
        copy_out(engine->engine.tokenizer().encode(text), ids, capacity, count);
    });
}

routerm_status routerm_encode_pair(const routerm_engine *engine, const char *prompt, const char *response, int64_t *ids,
                                   int64_t *type_ids, size_t capacity, size_t *count) {
    return guarded([&] {
        need(engine, "engine");
        need(prompt, "prompt");
        need(response, "response");
        routerm::Encoded e = engine->engine.encode_pair(prompt, response);
        copy_out(e.ids, ids, capacity, count);
        if (type_ids && capacity && !e.types.empty())
            std::memcpy(type_ids, e.types.data(), std::min(capacity, e.types.size()) * sizeof(int64_t));
    });
}

size_t routerm_num_domains(const routerm_engine *engine) {
    return engine ? engine->engine.manifest().domains.size() : 0;
}

const char *routerm_domain_name(const routerm_engine *engine, size_t i) {
    if (!engine || i >= engine->engine.manifest().domains.size()) return nullptr;
    return engine->engine.manifest().domains[i].c_str();
}

const char *routerm_method(const routerm_engine *engine) {
    return engine ? engine->engine.manifest().method.c_str() : nullptr;
}

const char *routerm_last_error(void) { return last_error.c_str(); }

const char *routerm_status_name(routerm_status status) {
    switch (status) {
        case ROUTERM_OK: return "ROUTERM_OK";
        case ROUTERM_ERR_ARGUMENT: return "ROUTERM_ERR_ARGUMENT";
        case ROUTERM_ERR_BUNDLE: return "ROUTERM_ERR_BUNDLE";
        case ROUTERM_ERR_CHECKSUM: return "ROUTERM_ERR_CHECKSUM";
        case ROUTERM_ERR_TOKENIZER: return "ROUTERM_ERR_TOKENIZER";
        case ROUTERM_ERR_RUNTIME: return "ROUTERM_ERR_RUNTIME";
        case ROUTERM_ERR_NO_MEMORY: return "ROUTERM_ERR_NO_MEMORY";
        case ROUTERM_ERR_INTERNAL: return "ROUTERM_ERR_INTERNAL";
    }
    return "ROUTERM_ERR_UNKNOWN";
}

}  // extern "C"
