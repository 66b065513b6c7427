"""Reference token ids from the HF tokenizer, for the C tokenizer's CTest (test_tokenizer).

    python tests/c/dump_token_ids.py --out FILE [--save-tokenizer DIR] [--tokenizer DIR] [--limit N]

Writes one JSON object a line:

* ``{"text": str, "ids": [int]}`` -- ``tokenizer(text, add_special_tokens=False)``: every prompt,
  chosen and rejected text of the test split of all five domains (core.data.load_splits),
  edge cases (accents, CJK, controls, special tokens in text, 100+ char words), and every
  Unicode code point (but surrogates) in ``a<cp>b`` words, 512 code points a line;
* ``{"prompt", "response", "max_length", "policy", "ids", "types"}`` -- core.text.encode_pairs
  (truncation and ``[CLS] p [SEP] r [SEP]``) under each truncation policy, at a short and a long
  max_length;
* ``{"prompt", "router_max_length", "ids", "types"}`` -- core.text.encode_prompts.

The tokenizer defaults to the real all-MiniLM-L6-v2 one (models.base.default_base_model).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.data import load_splits
from core.text import TRUNCATION_POLICIES, encode_pairs, encode_prompts
from models.base import default_base_model, load_tokenizer

EDGE_CASES = [
    "", " ", "Hello, World!", "naïve café résumé ÀÉÎÕÜ Ångström", "İstanbul ΣΑΣ straße ﬁne Ǆ",
    "中文字符和日本語のテキスト 한국어 텍스트", "tab\there\nnew\r\nline\x0bvt\x0cff\x85nel\u00a0nbsp\u3000ideo",
    "zero\u200bwidth\u200djoiner\ufeffbom\x00nul\x07bell\ufffdrepl", "emoji 😀👍🏽 🥰 🧑‍🚀 flags 🇫🇷",
    "[CLS] [SEP][MASK]x[UNK] [unk] [PAD]y [SE P]", "a" * 101, "b" * 100, "x" + "é" * 99 + "y",
    "unaffable supercalifragilisticexpialidocious antidisestablishmentarianism",
    "$100 + 5% = <html> {a|b} ~tilde` ^caret @at #hash", "e\u0301 a\u0300\u0316 \u1e0b\u0323 o\u0308\u0304",
    "\u0f73 \u0344 \u1d165\U0001d165\U0001d16e", "Ⅻ ① ㎏ ﬀ ｆｕｌｌｗｉｄｔｈ ＡＢＣ", "\u00ad soft\u00adhyphen",
    "\U000e0001 tag \U000f0000 private \ue000 pua", "Ελληνικά Русский текст עברית العربية हिन्दी ไทย",
]


def code_point_lines(per_line: int = 512):
    cps = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    for i in range(0, len(cps), per_line):
        yield " ".join(f"a{chr(cp)}b" for cp in cps[i:i + per_line])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokenizer", default=None, help="tokenizer folder (default: all-MiniLM-L6-v2)")
    ap.add_argument("--limit", type=int, default=None, help="test pairs per domain (default: all)")
    ap.add_argument("--save-tokenizer", default=None, help="also save the tokenizer's files here (for the C test)")
    args = ap.parse_args()
    tok = load_tokenizer(args.tokenizer or default_base_model())
    if args.save_tokenizer:
        tok.save_pretrained(args.save_tokenizer)
    pairs = [p for d in load_splits().values() for p in d["test"][: args.limit]]
    texts = [t for p in pairs for t in (p.prompt, p.chosen, p.rejected)] + EDGE_CASES + list(code_point_lines())
    ids = tok(texts, add_special_tokens=False)["input_ids"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n_pairs, differ = 0, {}
    with open(out, "w", encoding="utf-8") as fh:
        for text, row in zip(texts, ids):
            fh.write(json.dumps({"text": text, "ids": row}) + "\n")
        prompts = [p.prompt for p in pairs for _ in (0, 1)]
        responses = [r for p in pairs for r in (p.chosen, p.rejected)]
        for max_length in (32, 128):
            by_policy = {policy: encode_pairs(tok, prompts, responses, max_length, policy=policy)
                         for policy in TRUNCATION_POLICIES}
            for policy, encoded in by_policy.items():
                for p, r, e in zip(prompts, responses, encoded):
                    fh.write(json.dumps({"prompt": p, "response": r, "max_length": max_length, "policy": policy,
                                         "ids": e.input_ids, "types": e.token_type_ids}) + "\n")
                    n_pairs += 1
            differ[max_length] = sum(len({tuple(enc[i].input_ids) for enc in by_policy.values()}) > 1
                                     for i in range(len(prompts)))
        for router_max_length in (16, 64):
            unique = list(dict.fromkeys(p.prompt for p in pairs))
            for p, e in zip(unique, encode_prompts(tok, unique, router_max_length)):
                fh.write(json.dumps({"prompt": p, "router_max_length": router_max_length,
                                     "ids": e.input_ids, "types": e.token_type_ids}) + "\n")
    print(f"{out}: {len(texts)} texts ({len(pairs)} test pairs over {len({p.domain for p in pairs})} domains), "
          f"{n_pairs} pair encodings; pairs the policies encode differently per max_length: {differ}")
    if not differ[32]:
        raise SystemExit(f"{out}: no pair is encoded differently by {TRUNCATION_POLICIES} at max_length 32, "
                         "so the C test could not tell the policies apart")


if __name__ == "__main__":
    main()
