"""Deterministic hard text for tokenizer parity: what tokenizers' normalizers, regexes and models
are most likely to read differently, as UTF-8 ``bytes`` (some of it invalid on purpose).

    generate(n, seed=0, added_tokens=()) -> [(category, bytes)]   # n strings, categories interleaved

Categories (``CATEGORIES``; each a function of a ``random.Random`` and the kind's added tokens):

* ``combining``: base letters under stacks of combining marks (1-24), CGJ, precomposed letters;
* ``emoji``: ZWJ sequences, skin tones, flags (regional-indicator pairs and odd counts), keycaps,
  tag sequences, variation selectors, lone modifiers;
* ``cjk``: CJK ideographs (BMP and plane 2), hiragana, katakana (halfwidth too), Hangul syllables
  and conjoining jamo (NFC composes them), CJK punctuation;
* ``rtl``: Hebrew with points, Arabic with harakat and presentation forms, bidi controls;
* ``indic``: Devanagari (virama, nukta), Bengali, Tamil, Thai with tone marks;
* ``controls``: C0 controls, DEL, NEL (U+0085), zero-width and line/paragraph separators in words;
* ``whitespace``: runs of space, \\t \\n \\r \\v \\f, U+3000, U+00A0, U+2009, U+202F between words,
  at either end, alone;
* ``digits``: ASCII digit runs of every length 1-40, Arabic-Indic, extended Arabic-Indic,
  Devanagari, fullwidth and mathematical digits, superscripts, numbers with separators;
* ``contractions``: 's 'S 'll 'LL 're 'VE 'd 'M 't in upper and lower case, after letters, digits and
  spaces, with U+2019 / U+02BC / backtick apostrophes, and "'ſ" / "'K" (U+017F, U+212A: they fold
  to s and k under case-insensitive regex matching), "''" and "``";
* ``compat``: ligatures, fullwidth letters, circled and parenthesized numbers, squared units,
  Roman numerals, U+017F, U+212A, U+212B, U+2126, U+FDFA (NFKC writes 18 characters), İ, ß, ς;
* ``added``: the kind's added tokens glued to words ("x<|im_end|>y"), repeated, cut short, with
  spaces around, in other case, decomposed (NFD) and in fullwidth letters (what a "normalized"
  added token must still be found in);
* ``invalid``: text with invalid UTF-8 spliced in: lone continuation bytes, truncated 2/3/4-byte
  sequences (also at the very end), overlongs, encoded surrogates, code points past U+10FFFF,
  bytes C0 C1 F5-FF;
* ``corpus_substring`` / ``corpus_line`` / ``corpus_words``: character substrings, lines and word
  windows of the vendored preference text (what real rows look like);
* ``long``: corpus text of 2k-20k characters, one-letter words of 95-105 characters (WordPiece's
  100-character limit), long digit and whitespace runs;
* ``codepoints``: windows of 16-64 consecutive code points (mostly planes 0-2), as one run or as
  ``a<cp>b`` words: every table (normalization, categories, White_Space, case) gets probed;
* ``mixed``: two to four of the above joined by a space, a newline or nothing.

``generate(n, seed)`` is the same list for the same arguments on every machine; about 1M strings
take about 30 s on one core. The corpus is read once per process (hf_tiny.training_text).
"""
from __future__ import annotations

import functools
import random
import unicodedata
from collections.abc import Callable, Sequence



def _chars(*ranges: tuple[int, int]) -> list[str]:
    return [chr(c) for lo, hi in ranges for c in range(lo, hi + 1)]


_LATIN = _chars((0x41, 0x5A), (0x61, 0x7A)) + list("éàüñçøåßÆœĳ")
_COMBINING = _chars((0x300, 0x36F), (0x483, 0x489), (0x591, 0x5A1), (0x1AB0, 0x1ABE), (0x1DC0, 0x1DCA),
                    (0x20D0, 0x20F0), (0xFE20, 0xFE2F)) + ["\u034f", "\u0f73", "\u0344", "\U0001d165"]
_PRECOMPOSED = list("ÀÁÂÃÄÅǺǻḈḉṩẛẫỗǖǘǚǜȪȫṏ") + ["\u1e9b\u0323", "o\u0308\u0304", "\u0041\u030a"]
_EMOJI = list("😀😂🥰👍👋🙂🤖🎉🔥💯🧑👩👨👧👦🏳🏴❤☃") + ["\u2764\ufe0f", "\u263a\ufe0e"]
_SKIN = _chars((0x1F3FB, 0x1F3FF))
_ZWJ_SEQ = ["👩\u200d💻", "👨\u200d👩\u200d👧\u200d👦", "🧑\u200d🚀", "🏳\ufe0f\u200d🌈", "👁\u200d🗨",
            "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f", "1\ufe0f\u20e3", "#\u20e3"]
_REGIONAL = _chars((0x1F1E6, 0x1F1FF))
_CJK = _chars((0x4E00, 0x4E80), (0x9F00, 0x9FA5), (0x3040, 0x309F), (0x30A0, 0x30FF), (0xFF66, 0xFF9F),
              (0xAC00, 0xAC40), (0xD780, 0xD7A3), (0x3000, 0x3011), (0x20000, 0x20020), (0x3400, 0x3410))
_JAMO_L, _JAMO_V, _JAMO_T = _chars((0x1100, 0x1112)), _chars((0x1161, 0x1175)), _chars((0x11A8, 0x11C2))
_HEBREW = _chars((0x5D0, 0x5EA), (0x5B0, 0x5C7))
_ARABIC = _chars((0x621, 0x64A), (0x64B, 0x652), (0xFB50, 0xFB60), (0xFE70, 0xFE80)) + ["\u0640", "\u06cc"]
_BIDI = ["\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2069", "\u061c"]
_INDIC = _chars((0x905, 0x939), (0x93C, 0x94D), (0x985, 0x9B9), (0x9BC, 0x9CD), (0xB85, 0xB95), (0xBBE, 0xBCD),
                (0xE01, 0xE2E), (0xE31, 0xE3A), (0xE40, 0xE4E))
_CONTROLS = _chars((0x00, 0x1F)) + ["\x7f", "\x85", "\u200b", "\u200c", "\u200d", "\ufeff", "\u2028", "\u2029",
                                     "\u00ad", "\ufffd", "\ufffe"]
_SPACES = [" ", " ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\u3000", "\u00a0", "\u2009", "\u202f", "\u1680",
           "\u2003"]
_DIGIT_SETS = ["0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669",
               "\u06f0\u06f1\u06f2\u06f3\u06f4\u06f5\u06f6\u06f7\u06f8\u06f9", "".join(_chars((0x966, 0x96F))),
               "".join(_chars((0xFF10, 0xFF19))), "".join(_chars((0x1D7CE, 0x1D7D7))), "⁰¹²³⁴⁵⁶⁷⁸⁹", "₀₁₂₃₄₅₆₇₈₉"]
_APOSTROPHES = ["'", "'", "'", "\u2019", "\u02bc", "`", "\u2018"]
_SUFFIXES = ["s", "S", "t", "T", "re", "RE", "Re", "ve", "VE", "m", "M", "ll", "LL", "lL", "d", "D",
             "\u017f", "\u212a", "ſt", "K", "k"]
_COMPAT = list("ﬁﬂﬀﬃﬄﬅﬆＡＢＣｆｕｌｌ①②⑳⑴⒜㎏㎞㍱㍿Ⅻⅻ½¼™℃№ſKÅΩİıßςǄǅǆĲŉ") + ["\ufdfa", "\ufdfb", "\u1e9e", "\u2460"]
_WORDS = ["the", "The", "THE", "don", "I", "we", "it", "x", "naïve", "café", "hello", "world", "ok", "Zoë"]
# Invalid UTF-8 pieces: lone continuation, truncated 2/3/4-byte, overlongs, surrogates, > U+10FFFF.
_INVALID = [b"\x80", b"\xbf", b"\x80\x80", b"\xc3", b"\xe2\x82", b"\xe2", b"\xf0\x9f\x98", b"\xf0\x9f", b"\xf0",
            b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xe0\x9f\xbf", b"\xf0\x80\x80\xaf", b"\xf0\x8f\xbf\xbf",
            b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\xa0\x80\xed\xb0\x80", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",
            b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80", b"\xfe", b"\xff", b"\xc2\x41", b"\xe2\x28\xa1"]


@functools.lru_cache(maxsize=1)
def _corpus() -> tuple[list[str], list[str], list[list[str]]]:
    """(texts, lines, words per text) of the vendored preference text (300 records a domain)."""
    from hf_tiny import training_text
    texts = training_text(300)
    lines = [line for t in texts for line in t.splitlines() if line.strip()]
    return texts, lines, [t.split(" ") for t in texts]


def _run(rng: random.Random, pool: Sequence[str], lo: int, hi: int) -> str:
    return "".join(rng.choices(pool, k=rng.randint(lo, hi)))


def _words(rng: random.Random, make: Callable[[], str], lo: int = 1, hi: int = 6) -> str:
    return " ".join(make() for _ in range(rng.randint(lo, hi)))


def _combining(rng, _):
    def word():
        if rng.random() < 0.3:
            return _run(rng, _PRECOMPOSED, 1, 4)
        return "".join(rng.choice(_LATIN) + _run(rng, _COMBINING, 1, rng.choice((1, 2, 3, 8, 24)))
                       for _ in range(rng.randint(1, 4)))
    return _words(rng, word)


def _emoji(rng, _):
    def piece():
        r = rng.random()
        if r < 0.3:
            return rng.choice(_ZWJ_SEQ)
        if r < 0.5:
            return _run(rng, _REGIONAL, 1, 5)
        if r < 0.7:
            return rng.choice(_EMOJI) + rng.choice(_SKIN) + ("\u200d" + rng.choice(_EMOJI) if rng.random() < .5 else "")
        return rng.choice(_SKIN + ["\u200d", "\ufe0f"]) if r < 0.75 else rng.choice(_WORDS) + _run(rng, _EMOJI, 1, 3)
    return "".join(piece() + rng.choice(("", " ", "")) for _ in range(rng.randint(1, 6)))


def _cjk(rng, _):
    def piece():
        if rng.random() < 0.25:   # conjoining jamo: L V (T) composes to a syllable under NFC
            return "".join(rng.choice(_JAMO_L) + rng.choice(_JAMO_V) + (rng.choice(_JAMO_T) if rng.random() < .5
                                                                        else "") for _ in range(rng.randint(1, 3)))
        return _run(rng, _CJK, 1, 12)
    return "".join(piece() + rng.choice(("", "", " ", "、", "abc", "12")) for _ in range(rng.randint(1, 4)))


def _rtl(rng, _):
    pool = _HEBREW if rng.random() < 0.5 else _ARABIC
    return _words(rng, lambda: _run(rng, pool, 1, 8) + (rng.choice(_BIDI) if rng.random() < .2 else ""))


def _indic(rng, _):
    return _words(rng, lambda: _run(rng, _INDIC, 1, 10))


def _controls(rng, _):
    return "".join(rng.choice(_WORDS) if rng.random() < 0.5 else _run(rng, _CONTROLS, 1, 3)
                   for _ in range(rng.randint(1, 8)))


def _whitespace(rng, _):
    parts = [_run(rng, _SPACES, 0, 12)]
    for _ in range(rng.randint(0, 4)):
        parts += [rng.choice(_WORDS), _run(rng, _SPACES, 1, rng.choice((1, 2, 3, 12)))]
    return "".join(parts)


def _digits(rng, _):
    def number():
        digits = rng.choice(_DIGIT_SETS) if rng.random() < 0.4 else _DIGIT_SETS[0]
        text = "".join(rng.choices(digits, k=rng.randint(1, 40)))
        return rng.choice(("", "$", "-", "x", "v", " ")) + text + rng.choice(("", ",000", ".5", "rd", "%", "ab", "٫٥"))
    return rng.choice(("", " ")).join(number() for _ in range(rng.randint(1, 4)))


def _contractions(rng, _):
    def word():
        head = rng.choice(_WORDS + ["1", "", " ", "\u2019", "'"])
        return head + rng.choice(_APOSTROPHES) + rng.choice(_SUFFIXES) + rng.choice(("", "", "x", "'", "''", "``"))
    return rng.choice((" ", "")).join(word() for _ in range(rng.randint(1, 5)))


def _compat(rng, _):
    return _words(rng, lambda: rng.choice(("", rng.choice(_WORDS))) + _run(rng, _COMPAT, 1, 4))


def _added(rng, added_tokens):
    tokens = list(added_tokens) or ["<|endoftext|>"]

    def piece():
        token = rng.choice(tokens)
        r = rng.random()
        if r < 0.15:
            token = token[:rng.randint(1, max(1, len(token) - 1))]   # cut short: plain text
        elif r < 0.25:
            token = token.upper() if token != token.upper() else token.lower()
        elif r < 0.32:   # decomposed: equal to the token after NFC
            token = unicodedata.normalize("NFD", token)
        elif r < 0.39:   # fullwidth ASCII: equal to the token after NFKC
            token = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in token)
        return rng.choice(("", "x", " ", "  ", "\n", "word")) + token + rng.choice(("", "y", " ", "\n", "s"))
    return "".join(piece() for _ in range(rng.randint(1, 5)))


def _valid_text(rng: random.Random) -> str:
    return rng.choice((_combining, _cjk, _emoji, _contractions, _corpus_substring))(rng, ())


def _invalid(rng, _) -> bytes:
    text = _valid_text(rng).encode("utf-8")
    for _ in range(rng.randint(1, 4)):
        at = rng.randint(0, len(text))
        text = text[:at] + rng.choice(_INVALID) + text[at:]
    if rng.random() < 0.2:   # a sequence cut at the very end
        text += rng.choice((b"\xe2\x82", b"\xf0\x9f\x98", b"\xc3", b"\xed\xa0"))
    return text


def _corpus_substring(rng, _):
    texts = _corpus()[0]
    text = rng.choice(texts)
    start = rng.randint(0, max(0, len(text) - 1))
    return text[start:start + rng.choice((1, 3, 10, 40, 200, 1000))]


def _corpus_line(rng, _):
    return rng.choice(_corpus()[1])


def _corpus_words(rng, _):
    words = rng.choice(_corpus()[2])
    start = rng.randint(0, max(0, len(words) - 1))
    return " ".join(words[start:start + rng.randint(1, 60)])


def _long(rng, _):
    r = rng.random()
    if r < 0.4:
        texts = _corpus()[0]
        out = ""
        while len(out) < rng.randint(2000, 20000):
            out += rng.choice(texts) + "\n\n"
        return out
    if r < 0.7:
        return rng.choice(_WORDS) + " " + rng.choice("aé字") * rng.randint(95, 105) + " end"
    return rng.choice(("", "x ")) + (rng.choice(_DIGIT_SETS[:2]) * 40)[: rng.randint(50, 400)] + \
        _run(rng, _SPACES, 20, 300)


def _codepoints(rng, _):
    """A window of consecutive code points (surrogates skipped): as one run, or as ``a<cp>b`` words."""
    r = rng.random()
    start = rng.randrange(0x10000) if r < 0.7 else rng.randrange(0x10000, 0x30000) if r < 0.9 else \
        rng.randrange(0x30000, 0x110000)
    cps = [chr(c) for c in range(start, min(start + rng.randint(16, 64), 0x110000)) if not 0xD800 <= c <= 0xDFFF]
    return "".join(cps) if rng.random() < 0.5 else " ".join(f"a{c}b" for c in cps)


def _mixed(rng, added_tokens):
    parts = [rng.choice(_MIXABLE)(rng, added_tokens) for _ in range(rng.randint(2, 4))]
    sep = rng.choice((b" ", b"\n", b""))
    return sep.join(p if isinstance(p, bytes) else p.encode("utf-8") for p in parts)


_MIXABLE = [_combining, _emoji, _cjk, _rtl, _indic, _controls, _whitespace, _digits, _contractions, _compat,
            _added, _invalid, _corpus_substring, _corpus_words]
CATEGORIES: dict[str, Callable] = {
    "combining": _combining, "emoji": _emoji, "cjk": _cjk, "rtl": _rtl, "indic": _indic, "controls": _controls,
    "whitespace": _whitespace, "digits": _digits, "contractions": _contractions, "compat": _compat,
    "added": _added, "invalid": _invalid, "corpus_substring": _corpus_substring, "corpus_line": _corpus_line,
    "corpus_words": _corpus_words, "long": _long, "codepoints": _codepoints, "mixed": _mixed}
# How often each category comes, out of sum(_WEIGHTS.values()): real text first, long text rarely.
_WEIGHTS = {name: 2 for name in CATEGORIES} | {"corpus_substring": 4, "corpus_line": 4, "corpus_words": 4,
                                               "mixed": 4, "long": 1}
_ORDER = [name for name, w in _WEIGHTS.items() for _ in range(w)]


def generate(n: int, seed: int = 0, added_tokens: Sequence[str] = (),
             categories: Sequence[str] | None = None) -> list[tuple[str, bytes]]:
    """``n`` (category, UTF-8 bytes) strings: the categories (all, or ``categories``) in a fixed
    weighted rotation, each string drawn from ``random.Random(seed)``; ``added_tokens`` feed the
    ``added`` category."""
    unknown = sorted(set(categories or ()) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"unknown hard_text categories {unknown}; known: {sorted(CATEGORIES)}")
    order = [name for name in _ORDER if categories is None or name in categories]
    rng = random.Random(seed)
    out = []
    for i in range(n):
        name = order[i % len(order)]
        text = CATEGORIES[name](rng, added_tokens)
        out.append((name, text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")))
    return out


def code_point_sweep(per_string: int = 256) -> list[tuple[str, bytes]]:
    """Every code point but the surrogates, ``per_string`` a string, twice: as one run of consecutive
    code points (category ``sweep_run``) and as ``a<cp>b`` words (``sweep_words``)."""
    cps = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    out = []
    for i in range(0, len(cps), per_string):
        window = cps[i:i + per_string]
        out.append(("sweep_run", "".join(window).encode("utf-8")))
        out.append(("sweep_words", " ".join(f"a{c}b" for c in window).encode("utf-8")))
    return out


def decode(text: bytes) -> str:
    """What the Python side is given for ``text``: invalid UTF-8 as U+FFFD per maximal subpart."""
    return text.decode("utf-8", "replace")
