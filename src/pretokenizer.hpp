// tokenizer.json's "pre_tokenizer": normalized text -> words, as Hugging Face tokenizers'
// pre-tokenizers split it (empty pieces are dropped after every step, as tokenizers drops them).
//
// Implemented types (anything else is refused at load, naming the type):
//   ByteLevel {add_prefix_space, use_regex}   a ' ' before a piece that does not start with one;
//        the GPT-2 regex split; the byte-to-character mapping itself is folded into the byte-level
//        BPE (src/bpe.hpp), so ByteLevel must be the last step and the model a BPE
//   Split {pattern: {"String": s} | {"Regex": r}, behavior, invert: false}
//        r one of the GPT-2, Llama-3 and Qwen2 regexes (src/split_regex.hpp);
//        behavior Removed | Isolated | MergedWithPrevious | MergedWithNext | Contiguous
//   Metaspace {replacement, prepend_scheme always | first | never, split}
//        ' ' -> replacement; the replacement before a piece not starting with it (first: only the
//        piece at the very start of the text); then split before each replacement (MergedWithNext)
//   Digits {individual_digits}   \p{N} characters isolated, one by one or as runs
//   Whitespace                   \w+|[^\w\s]+ kept, the rest dropped
//   WhitespaceSplit              split on White_Space, which is dropped
//   BertPreTokenizer             White_Space dropped, punctuation isolated
//   Sequence {pretokenizers}     in order
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "json.hpp"

namespace routerm {

struct Piece {
    std::u32string text;
    bool at_start = false;   // begins at the start of the original text (Metaspace's "first")
};

class PreTokenizer {
public:
    virtual ~PreTokenizer() = default;
    // Replace `pieces` by their splits, in order.
    virtual void split(std::vector<Piece> &pieces) const = 0;
    // Whether the words are byte-level BPE input (a ByteLevel step ends the pipeline).
    virtual bool byte_level() const { return false; }
};

// The pre-tokenizer of tokenizer.json's "pre_tokenizer" value; nullptr for JSON null (the whole
// segment is one word). Error(ROUTERM_ERR_TOKENIZER) naming `where` and the type when unsupported.
std::unique_ptr<PreTokenizer> load_pre_tokenizer(const json::Value &value, const std::string &where);

}  // namespace routerm
