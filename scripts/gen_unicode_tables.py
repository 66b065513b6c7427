"""Generate src/unicode_tables.inc: the per-code-point data the C WordPiece tokenizer needs, so
the build needs no ICU. Run once by hand; the output is committed:

    .venv/bin/python scripts/gen_unicode_tables.py > src/unicode_tables.inc

What HF ``tokenizers`` (BertNormalizer + BertPreTokenizer, the fast BERT tokenizer) does to
each code point, as five flags and two mappings:

* CONTROL  -- removed by clean_text (NUL, U+FFFD, categories Cc Cf Co -- not \\t \\n \\r);
* SPACE    -- split on by the pre-tokenizer (White_Space); mapped to ' ' by clean_text unless CONTROL;
* PUNCT    -- isolated by the pre-tokenizer (ASCII punctuation, categories P*);
* CJK      -- padded with spaces by handle_chinese_chars (BERT's CJK ideograph blocks);
* MARK     -- category Mn, dropped after NFD when accents are stripped;
* LETTER, NUMBER, RSPACE, WORD -- what the pre-tokenizer regexes' classes \\p{L}, \\p{N}, \\s and \\w
  match in tokenizers (Oniguruma), read by running each class over every code point;
* kFold -- the code points the case-insensitive contractions ``(?i:'s|'t|...)`` match for each of
  their letters (Oniguruma's case folding: U+017F matches ``s``);
* kDecompose -- NFD of one code point (Hangul syllables are decomposed arithmetically in C);
* kLower     -- lowercase of one code point (Rust ``char::to_lowercase``, may be 2-3 chars).

Why the flags are read off ``tokenizers`` itself and not only ``unicodedata``: the Rust crate
behind the flags (unicode_categories) carries Unicode 8-era tables, so ~800 code points assigned
since (U+061D, U+09FD, the Arabic marks at U+0898...) are plain letters to HF, but punctuation or
marks to Python's newer ``unicodedata``; the flags from ``unicodedata`` are computed too and every
disagreement is listed in the generated file's header. Parity is what the C library promises.
"""
from __future__ import annotations

import sys
import unicodedata

import tokenizers
from tokenizers import Regex, normalizers, pre_tokenizers

CONTROL, SPACE, PUNCT, CJK, MARK = 1, 2, 4, 8, 16
LETTER, NUMBER, RSPACE, WORD = 32, 64, 128, 256
REGEX_CLASSES = {LETTER: r"\p{L}", NUMBER: r"\p{N}", RSPACE: r"\s", WORD: r"\w"}
FOLD_LETTERS = "strevmld"
HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3
SURROGATES = range(0xD800, 0xE000)

_clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
_cjk = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False)
_strip = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False)
_nfd = normalizers.NFD()
_lower = normalizers.Lowercase()
_split = pre_tokenizers.BertPreTokenizer()


def hf_flags(cp: int) -> int:
    ch = chr(cp)
    f = 0
    cleaned = _clean.normalize_str(f"a{ch}b")
    words = [w for w, _ in _split.pre_tokenize_str(f"a{ch}b")]
    if cleaned == "ab":
        f |= CONTROL
    if words == ["a", "b"]:
        f |= SPACE
    elif len(words) == 3:
        f |= PUNCT
    # clean_text maps to ' ' exactly the white space it does not remove (\x0b, \x0c, \x85 are removed)
    assert (cleaned == "a b") == (f & SPACE and not f & CONTROL), hex(cp)
    if _cjk.normalize_str(ch) == f" {ch} ":
        f |= CJK
    if _nfd.normalize_str(ch) == ch and _strip.normalize_str(ch) == "":
        f |= MARK
    return f


def regex_members(pattern: str) -> set[int]:
    """Code points (but surrogates) that tokenizers' regex ``pattern`` matches as one character:
    a Split that removes the matches leaves exactly the others."""
    split = pre_tokenizers.Split(Regex(pattern), behavior="removed")
    cps = list(code_points())
    left = set()
    for i in range(0, len(cps), 4096):
        chunk = "".join(chr(cp) for cp in cps[i:i + 4096])
        for piece, _ in split.pre_tokenize_str(chunk):
            left.update(ord(c) for c in piece)
    return set(cps) - left


def fold_members(letter: str) -> list[int]:
    """Code points c for which ``(?i:'<letter>)`` matches "'" + c."""
    split = pre_tokenizers.Split(Regex(f"(?i:'{letter})"), behavior="removed")
    out = []
    cps = list(code_points())
    for i in range(0, len(cps), 2048):
        chunk = cps[i:i + 2048]
        text = "".join("'" + chr(cp) + "\x00" for cp in chunk)
        kept = "".join(piece for piece, _ in split.pre_tokenize_str(text))
        if len(kept) != 3 * len(chunk):
            out += [cp for cp in chunk if not "".join(p for p, _ in split.pre_tokenize_str("'" + chr(cp)))]
    return out


def unicodedata_flags(cp: int) -> int:
    """The same flags from Python's Unicode data (for the header's list of disagreements)."""
    ch, cat = chr(cp), unicodedata.category(chr(cp))
    f = 0
    if cp in (0, 0xFFFD) or (cat in ("Cc", "Cf", "Co") and cp not in (0x9, 0xA, 0xD)):
        f |= CONTROL
    if cp in (0x9, 0xA, 0xB, 0xC, 0xD, 0x85) or (ch.isspace() and cat != "Cc"):
        f |= SPACE
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or cat.startswith("P"):
        f |= PUNCT
    if hf_flags(cp) & CJK:      # a fixed list of blocks, no Unicode data involved
        f |= CJK
    if cat == "Mn":
        f |= MARK
    return f


def code_points():
    return (cp for cp in range(0x110000) if cp not in SURROGATES)


def ranges(flags: dict[int, int]):
    out, start, cur = [], 0, flags.get(0, 0)
    for cp in range(1, 0x110000):
        f = flags.get(cp, 0)
        if f != cur:
            out.append((start, cp - 1, cur))
            start, cur = cp, f
    out.append((start, 0x10FFFF, cur))
    return [r for r in out if r[2]]


def mappings(fn):
    """[(cp, [cps])] for every code point whose mapping differs from itself."""
    out = []
    for cp in code_points():
        if HANGUL_FIRST <= cp <= HANGUL_LAST:
            continue
        m = fn(chr(cp))
        if m != chr(cp):
            out.append((cp, [ord(c) for c in m]))
    return out


def emit_mapping(name: str, items) -> list[str]:
    pool, index = [], []
    for cp, seq in items:
        index.append((cp, len(pool), len(seq)))
        pool.extend(seq)
    lines = [f"static const uint32_t {name}Pool[] = {{"]
    lines += ["    " + ", ".join(f"0x{c:X}" for c in pool[i:i + 12]) + "," for i in range(0, len(pool), 12)]
    lines += ["};", f"static const UnicodeMapping {name}[] = {{"]
    lines += ["    " + " ".join(f"{{0x{cp:X}, {off}, {n}}}," for cp, off, n in index[i:i + 4])
              for i in range(0, len(index), 4)]
    return lines + ["};"]


def main() -> None:
    flags = {cp: hf_flags(cp) for cp in code_points()}
    differ = [cp for cp in code_points() if unicodedata.category(chr(cp)) != "Cn" and unicodedata_flags(cp) != flags[cp]]
    for bit, pattern in REGEX_CLASSES.items():
        for cp in regex_members(pattern):
            flags[cp] |= bit
    lines = [
        f"// Generated by scripts/gen_unicode_tables.py from HF tokenizers {tokenizers.__version__} "
        f"(Python unicodedata {unicodedata.unidata_version} lists the differences). Do not edit.",
        f"// {len(differ)} assigned code points whose flags differ from unicodedata's: "
        + " ".join(f"U+{cp:04X}" for cp in differ[:24]) + (" ..." if len(differ) > 24 else ""),
        f"#define ROUTERM_UNICODE_SOURCE \"tokenizers {tokenizers.__version__}\"",
        "static const UnicodeRange kFlagRanges[] = {",
    ]
    rs = ranges(flags)
    lines += ["    " + " ".join(f"{{0x{a:X}, 0x{b:X}, {f}}}," for a, b, f in rs[i:i + 4]) for i in range(0, len(rs), 4)]
    lines.append("};")
    lines += emit_mapping("kDecompose", mappings(_nfd.normalize_str))
    folds = {letter: fold_members(letter) for letter in FOLD_LETTERS}
    lines.append("// (?i:'x) for x in " + FOLD_LETTERS + ": the code points each letter matches")
    lines.append("static const uint32_t kFold[][4] = {")
    for letter in FOLD_LETTERS:
        cps = folds[letter] + [0] * (4 - len(folds[letter]))
        assert len(folds[letter]) <= 4, (letter, folds[letter])
        lines.append("    {" + ", ".join(f"0x{c:X}" for c in cps) + "},   // " + letter)
    lines.append("};")
    lines += emit_mapping("kLower", mappings(_lower.normalize_str))
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
