// The bundle's tokenizer in native code: a WordPiece tokenizer identical to HF
// BertTokenizerFast (text -> ids), and the special-token template of every tokenizer kind
// (ids -> model input, like build_inputs_with_special_tokens / create_token_type_ids_from_sequences).
//
// Text -> ids, as HF tokenizers does it for BERT:
//   1. added (special) tokens found in the raw text, leftmost-longest ("[SEP]" in a text is 102);
//   2. BertNormalizer on the rest: clean_text (drop controls, white space -> ' '), spaces around
//      CJK ideographs, NFD + drop Mn when stripping accents, lowercase;
//   3. BertPreTokenizer: split on white space (dropped) and punctuation (kept, one char a word);
//   4. WordPiece: greedy longest match from the start of each word, later pieces prefixed '##';
//      a word with no full cover, or longer than max_input_chars_per_word, is [UNK].
// Per-code-point steps use src/unicode_tables.inc. Known gap: NFD's canonical reordering of
// combining marks is not applied (it only matters for marks that are kept, i.e. not Mn).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "json.hpp"

namespace routerm {

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

    bool has_text_path() const { return wordpiece_; }
    const std::string &kind() const { return kind_; }
    int64_t pad_id() const { return pad_id_; }
    const SpecialTemplate &special() const { return template_; }

    // Ids of `text` without special tokens; Error(ROUTERM_ERR_TOKENIZER) when not WordPiece.
    std::vector<int64_t> encode(const std::string &text) const;

private:
    void encode_segment(const std::vector<uint32_t> &cps, std::vector<int64_t> &out) const;
    void encode_word(const std::vector<uint32_t> &word, std::vector<int64_t> &out) const;

    std::string kind_;
    bool wordpiece_ = false;
    bool clean_text_ = true, handle_chinese_ = true, strip_accents_ = true, lowercase_ = true;
    std::unordered_map<std::string, int64_t> vocab_;
    std::vector<std::pair<std::string, int64_t>> added_;   // raw-text special tokens, longest first
    std::string prefix_ = "##";
    int64_t unk_id_ = -1;
    size_t max_word_chars_ = 100;
    int64_t pad_id_ = 0;
    SpecialTemplate template_;
};

}  // namespace routerm
