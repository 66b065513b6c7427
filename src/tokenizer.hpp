// The bundle's tokenizer in native code: Hugging Face tokenizers' pipeline read from
// tokenizer.json (text -> ids), and the special-token template of the post-processor
// (ids -> model input, like build_inputs_with_special_tokens / create_token_type_ids_from_sequences).
//
// Text -> ids, as tokenizers' TokenizerImpl::encode(add_special_tokens=False) does it:
//   1. added tokens split out of the text (leftmost-longest; those marked "normalized" are found
//      in the normalized text, the others in the raw text); each is its id;
//   2. the normalizer on every other segment (src/normalizer.hpp);
//   3. the pre-tokenizer splits it into words (src/pretokenizer.hpp);
//   4. the model gives each word's ids (WordPiece src/wordpiece.hpp, BPE src/bpe.hpp, Unigram
//      src/unigram.hpp).
// Text is UTF-8; each invalid or truncated sequence reads as U+FFFD, exactly as Python's
// bytes.decode("utf-8", "replace") (what the Python engine is given) reads it.
//
// A component the library does not implement is refused at load (Error(ROUTERM_ERR_TOKENIZER)
// naming the file, the field and the component's type): never a silently different tokenization.
// A slow-tokenizer folder (vocab.txt + tokenizer_config.json, no tokenizer.json) is read as the
// WordPiece pipeline BertTokenizerFast would build from it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "json.hpp"

namespace routerm {

class Model;
class Normalizer;
class PreTokenizer;
struct AddedTokens;

// Where the special tokens go around one sequence (A) or a pair (A, B), with segment ids.
struct SpecialTemplate {
    struct Piece { int sequence; std::vector<int64_t> ids; int64_t type_id; };   // sequence 0=A, 1=B, -1=special
    std::vector<Piece> single, pair;

    // ids (and type ids) of the template filled with a (and b, when pair).
    void build(const std::vector<int64_t> &a, const std::vector<int64_t> *b, std::vector<int64_t> &ids,
               std::vector<int64_t> &types) const;
    size_t num_special(bool is_pair) const;
};

class Tokenizer {
public:
    // Read the tokenizer files in `dir` (tokenizer.json, else vocab.txt + tokenizer_config.json);
    // `manifest_tokenizer` is the manifest's "tokenizer" object (kind, do_lower_case, pad_token_id).
    static Tokenizer load(const std::string &dir, const json::Value &manifest_tokenizer);
    // The pipeline of one tokenizer.json document; `where` names it in errors.
    static Tokenizer from_json(const std::string &text, const std::string &where);

    Tokenizer();
    ~Tokenizer();
    Tokenizer(Tokenizer &&) noexcept;
    Tokenizer &operator=(Tokenizer &&) noexcept;

    int64_t pad_id() const { return pad_id_; }
    const SpecialTemplate &special() const { return template_; }
    // "BPE (byte-level) + Split(Qwen2 regex) + ...": what was read, for messages and tools.
    const std::string &describe() const { return describe_; }

    // Ids of `text` without special tokens; Error(ROUTERM_ERR_TOKENIZER) when the bundle has no
    // tokenizer files the library reads.
    std::vector<int64_t> encode(const std::string &text) const;

private:
    void encode_segment(std::u32string text, bool first, std::vector<int64_t> &out) const;

    std::string describe_;
    int64_t pad_id_ = 0;
    SpecialTemplate template_;
    std::unique_ptr<AddedTokens> added_;
    std::unique_ptr<Normalizer> normalizer_;
    std::unique_ptr<PreTokenizer> pre_;
    std::unique_ptr<Model> model_;
};

}  // namespace routerm
