/* routerm.h -- score (prompt, response) pairs with a RouteRM bundle, no Python at run time.
 *
 * A bundle is the directory `export/to_onnx.py` writes: manifest.json (schema v1, see
 * core/manifest.py), ONNX graphs and the tokenizer files. The engine reads the manifest,
 * checks the sha256 of every file, tokenizes text with a native WordPiece tokenizer that gives
 * the ids of the bundle's Hugging Face tokenizer, routes each row to a domain the way
 * runtime.RewardEngine does, and runs the graphs with ONNX Runtime:
 *
 *   baseline, more       graph `reward` on every pair                       domain = -1
 *   rodos, arliss merged graph `router` on the prompt alone -> argmax domain, rows grouped by
 *                        domain through `reward/<domain>`
 *   arliss switchable    graph `switchable` on the prompt with the router adapter -> argmax
 *                        domain, then on the pair with that domain's adapter
 *
 * Every function returns a status; on failure routerm_last_error() holds a message naming the
 * file, field or argument. No function aborts the host or lets a C++ exception through.
 * An engine may be used from several threads at once (ONNX Runtime sessions are thread-safe,
 * the tokenizer is read-only); the last error is per thread.
 */
#ifndef ROUTERM_H
#define ROUTERM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  define ROUTERM_API __declspec(dllexport)
#elif defined(__GNUC__)
#  define ROUTERM_API __attribute__((visibility("default")))
#else
#  define ROUTERM_API
#endif

#define ROUTERM_VERSION "0.1.0"
/* The manifest schema this library reads: core.manifest.SCHEMA_VERSION (tests/test_runtime.py checks). */
#define ROUTERM_SCHEMA_VERSION 1

typedef enum routerm_status {
    ROUTERM_OK = 0,
    ROUTERM_ERR_ARGUMENT = 1,     /* a NULL pointer, a bad option, an unknown domain index */
    ROUTERM_ERR_BUNDLE = 2,       /* missing/invalid manifest.json, missing file, wrong graph set */
    ROUTERM_ERR_CHECKSUM = 3,     /* a bundle file does not match its sha256 */
    ROUTERM_ERR_TOKENIZER = 4,    /* tokenizer files unreadable, or a component the library does not implement */
    ROUTERM_ERR_RUNTIME = 5,      /* ONNX Runtime failed (provider, session, run) */
    ROUTERM_ERR_NO_MEMORY = 6,
    ROUTERM_ERR_INTERNAL = 7      /* a bug: please report the message */
} routerm_status;

typedef struct routerm_engine routerm_engine;

/* Micro-batch limits by default: the same values as core.scoring.BatchLimits (the Python engine);
   tests/test_runtime.py reads these two lines and checks that they agree. The library's own
   defaults (routerm_options_init, routerm::EngineConfig) are these two. */
#define ROUTERM_DEFAULT_MAX_BATCH_ROWS 256
#define ROUTERM_DEFAULT_MAX_BATCH_TOKENS 1024

typedef struct routerm_options {
    int intra_op_threads;    /* 0: ONNX Runtime's default */
    int inter_op_threads;    /* 0: ONNX Runtime's default */
    const char *provider;    /* NULL or "cpu", "cuda", "tensorrt", or any ONNX Runtime provider name */
    int device_id;           /* GPU for cuda/tensorrt */
    int verify_checksums;    /* nonzero (default): check every file's sha256 on load */
    size_t max_batch_rows;   /* rows per graph run (default ROUTERM_DEFAULT_MAX_BATCH_ROWS) */
    size_t max_batch_tokens; /* padded tokens (rows x longest row) per graph run (default ROUTERM_DEFAULT_MAX_BATCH_TOKENS) */
} routerm_options;

/* Fill *options with the defaults above. */
ROUTERM_API void routerm_options_init(routerm_options *options);

/* Load the bundle at `bundle_dir`; `options` may be NULL (defaults). *engine is NULL on failure. */
ROUTERM_API routerm_status routerm_engine_create(const char *bundle_dir, const routerm_options *options,
                                                 routerm_engine **engine);

/* Free the engine (NULL is a no-op). */
ROUTERM_API void routerm_engine_destroy(routerm_engine *engine);

/* Score n pairs of NUL-terminated UTF-8 texts (invalid UTF-8 reads as U+FFFD, one per maximal
 * invalid subpart, as Python's bytes.decode("utf-8", "replace"); a text cannot hold U+0000). rewards: [n]
 * float32; domains: [n] int32 or NULL -- the domain index each row was scored by (-1 for
 * baseline and more). Each graph reads the rows as its bundle part says: a chat-template bundle writes
 * the prompt as one user turn and the response as one assistant turn through its template. */
ROUTERM_API routerm_status routerm_score(routerm_engine *engine, size_t n, const char *const *prompts,
                                         const char *const *responses, float *rewards, int32_t *domains);

/* One chat message: NUL-terminated UTF-8 role ("system", "user", "assistant", ...) and content. */
typedef struct routerm_message {
    const char *role;
    const char *content;
} routerm_message;

/* One side of a row: a text (messages NULL), or num_messages >= 1 chat messages (TRL's
 * conversational form; text is then ignored). */
typedef struct routerm_side {
    const char *text;
    const routerm_message *messages;
    size_t num_messages;
} routerm_side;

/* routerm_score with each side a text or messages, as the Python engine takes rows: a chat-template
 * bundle writes the prompt's messages (a text: one user turn) and then the response's (a text: one
 * assistant turn) through its template; a bundle without one reads messages flattened to
 * "Human: ..." / "Assistant: ..." turns (prompt) and their contents joined by blank lines (response).
 * A refused conversation (a role the template does not know, a system turn not first) is
 * ROUTERM_ERR_ARGUMENT naming the row. */
ROUTERM_API routerm_status routerm_score_rows(routerm_engine *engine, size_t n, const routerm_side *prompts,
                                              const routerm_side *responses, float *rewards, int32_t *domains);

/* Score n pairs given as token ids WITHOUT special tokens (what the bundle's tokenizer returns
 * with add_special_tokens=False); the engine truncates and adds the special tokens as the text
 * path does. Row i: prompt_ids[i][0 .. prompt_lens[i]), response_ids[i][0 .. response_lens[i]).
 * Ids of the top-level tokenizer; ROUTERM_ERR_ARGUMENT for a bundle whose graphs have tokenizers of
 * their own (manifest "parts"). */
ROUTERM_API routerm_status routerm_score_ids(routerm_engine *engine, size_t n,
                                             const int64_t *const *prompt_ids, const size_t *prompt_lens,
                                             const int64_t *const *response_ids, const size_t *response_lens,
                                             float *rewards, int32_t *domains);

/* routerm_score with the domain of each row given (domains_in: [n] indices into the bundle's
 * domains) instead of routed: RODOS and ARLISS score row i with domain domains_in[i]'s reward
 * model; baseline and more have one reward model and only check the indices. */
ROUTERM_API routerm_status routerm_score_in_domains(routerm_engine *engine, size_t n, const char *const *prompts,
                                                    const char *const *responses, const int32_t *domains_in,
                                                    float *rewards);

/* Token ids of one text without special tokens. Writes at most `capacity` ids; *count gets the
 * full number (call with capacity 0 to size the buffer). The top-level tokenizer's ids. */
ROUTERM_API routerm_status routerm_tokenize(const routerm_engine *engine, const char *text, int64_t *ids,
                                            size_t capacity, size_t *count);

/* The model input of one pair (truncated under the manifest's truncation.policy, special tokens
 * added) as the reward graphs see it: ids and token type ids (type_ids may be NULL), sized like
 * routerm_tokenize. */
ROUTERM_API routerm_status routerm_encode_pair(const routerm_engine *engine, const char *prompt,
                                               const char *response, int64_t *ids, int64_t *type_ids,
                                               size_t capacity, size_t *count);

/* Number of domains and the name of domain i (owned by the engine; NULL if i is out of range). */
ROUTERM_API size_t routerm_num_domains(const routerm_engine *engine);
ROUTERM_API const char *routerm_domain_name(const routerm_engine *engine, size_t i);

/* "baseline", "more", "rodos" or "arliss" (owned by the engine). */
ROUTERM_API const char *routerm_method(const routerm_engine *engine);

/* The message of this thread's last failure ("" if none); valid until the next call that fails. */
ROUTERM_API const char *routerm_last_error(void);

/* A constant name for a status ("ROUTERM_ERR_BUNDLE", ...). */
ROUTERM_API const char *routerm_status_name(routerm_status status);

#ifdef __cplusplus
}
#endif
#endif /* ROUTERM_H */
