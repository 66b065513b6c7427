"""Generate src/normalize_tables.inc: the Unicode normalization data (NFC, NFD, NFKC, NFKD) and the
StripAccents marks of src/normalizer.cpp. Run once by hand; the output is committed:

    .venv/bin/python scripts/gen_normalize_tables.py > src/normalize_tables.inc

HF ``tokenizers`` normalizes with the crate ``unicode-normalization-alignments``, a fork whose
tables are older than Python's ``unicodedata`` (characters assigned since, such as U+1F16C or
U+32FF, do not decompose there). So every table is read off ``tokenizers`` itself:

* decompositions -- ``NFD``/``NFKD`` of each code point alone: the full (recursive) mapping;
* combining classes -- ``unicodedata.combining``, kept only where ``NFD`` shows the crate reorders
  the code point past a mark of class 1 (or 240); a class never changes once assigned, so the
  crate's class is either Python's or 0 (not yet assigned there);
* composition pairs -- the canonical pairs of ``unicodedata.decomposition``, kept only where the
  crate's ``NFC`` composes them back (this drops the composition exclusions and the pairs the
  crate does not know);
* quick-check flags -- "NFC/NFKC changes the code point alone" and "composes with a preceding
  code point": with non-decreasing combining classes, text free of both is already normalized;
* accent marks -- what ``StripAccents`` removes (General_Category M, Mn Mc Me, of the crate).

Hangul syllables are left to arithmetic in C (checked against the crate here). Every disagreement
with ``unicodedata`` is counted in the generated file's header.
"""
from __future__ import annotations

import sys
import unicodedata as ud

import tokenizers
from tokenizers import normalizers

NFD, NFKD, NFC, NFKC = (normalizers.NFD(), normalizers.NFKD(), normalizers.NFC(), normalizers.NFKC())
ACCENTS = normalizers.StripAccents()
SURROGATES = range(0xD800, 0xE000)
HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3
L_BASE, V_BASE, T_BASE, V_COUNT, T_COUNT = 0x1100, 0x1161, 0x11A7, 21, 28

# Flag bits of a NormRecord (keep in step with src/normalizer.cpp).
CANON, COMPAT, NFC_NO, NFKC_NO, SECOND, ACCENT = 1, 2, 4, 8, 16, 32


def code_points():
    return (cp for cp in range(0x110000) if cp not in SURROGATES)


def hangul_nfd(cp: int) -> str:
    s = cp - HANGUL_FIRST
    out = chr(L_BASE + s // (V_COUNT * T_COUNT)) + chr(V_BASE + (s % (V_COUNT * T_COUNT)) // T_COUNT)
    return out + (chr(T_BASE + s % T_COUNT) if s % T_COUNT else "")


def crate_ccc(cp: int, decomposed: bool) -> int:
    """The crate's canonical combining class: Python's where NFD reorders the code point."""
    c = ud.combining(chr(cp))
    if c == 0 or decomposed:
        return c        # a decomposable code point's class is never looked up (its parts' are)
    if c > 1:
        return c if NFD.normalize_str("a" + chr(cp) + "\u0334") == "a\u0334" + chr(cp) else 0
    return c if NFD.normalize_str("a\u0345" + chr(cp)) == "a" + chr(cp) + "\u0345" else 0


def compose_pairs(canon: dict[int, str]) -> tuple[list[tuple[int, int, int]], list[int], list[int]]:
    """[(first, second, composite)] the crate composes; Python's exclusions; pairs only Python composes."""
    pairs, excluded, unknown = [], [], []
    for cp in code_points():
        fields = ud.decomposition(chr(cp)).split()
        if len(fields) != 2 or fields[0].startswith("<"):
            continue
        first, second = (int(f, 16) for f in fields)
        if cp in canon and NFC.normalize_str(chr(first) + chr(second)) == chr(cp):
            pairs.append((first, second, cp))
        elif not ud.is_normalized("NFC", chr(cp)):
            excluded.append(cp)
        else:
            unknown.append(cp)
    return sorted(pairs), excluded, unknown


def collect():
    canon, compat, ccc, flags = {}, {}, {}, {}
    for cp in code_points():
        ch = chr(cp)
        d, kd = NFD.normalize_str(ch), NFKD.normalize_str(ch)
        if HANGUL_FIRST <= cp <= HANGUL_LAST:
            assert d == kd == hangul_nfd(cp), hex(cp)
        f = (CANON if d != ch else 0) | (COMPAT if kd != ch else 0)
        f |= (NFC_NO if NFC.normalize_str(ch) != ch else 0) | (NFKC_NO if NFKC.normalize_str(ch) != ch else 0)
        f |= ACCENT if ACCENTS.normalize_str(ch) == "" else 0
        if d != ch and not HANGUL_FIRST <= cp <= HANGUL_LAST:
            canon[cp] = d
        if kd != ch and not HANGUL_FIRST <= cp <= HANGUL_LAST:
            compat[cp] = kd
        ccc[cp] = crate_ccc(cp, d != ch)
        flags[cp] = f
    return canon, compat, ccc, flags


def differences(canon, compat, ccc, flags) -> list[str]:
    """One header line per kind of disagreement with Python's unicodedata."""
    def listed(cps):
        return f"{len(cps)}: " + " ".join(f"U+{c:04X}" for c in cps[:16]) + (" ..." if len(cps) > 16 else "")

    py_nfd = [cp for cp in code_points() if ud.normalize("NFD", chr(cp)) != (canon.get(cp) or
              (hangul_nfd(cp) if HANGUL_FIRST <= cp <= HANGUL_LAST else chr(cp)))]
    py_nfkd = [cp for cp in code_points() if ud.normalize("NFKD", chr(cp)) != (compat.get(cp) or
               (hangul_nfd(cp) if HANGUL_FIRST <= cp <= HANGUL_LAST else chr(cp)))]
    py_ccc = [cp for cp in code_points() if ud.combining(chr(cp)) != ccc[cp]]
    py_mark = [cp for cp in code_points()
               if (ud.category(chr(cp)) in ("Mn", "Mc", "Me")) != bool(flags[cp] & ACCENT)]
    return [f"//   NFD differs ({listed(py_nfd)})", f"//   NFKD differs ({listed(py_nfkd)})",
            f"//   combining class 0 in the crate, not in Python ({listed(py_ccc)})",
            f"//   StripAccents vs Python's category M ({listed(py_mark)})"]


def build_records(canon, compat, ccc, flags):
    """Dedupe per-code-point records; returns (records, pool, record index per code point)."""
    pool, where, records, rec_index, per_cp = [], {}, [], {}, [0] * 0x110000

    def place(seq: str) -> tuple[int, int]:
        if not seq:
            return 0, 0
        if seq not in where:
            where[seq] = len(pool)
            pool.extend(ord(c) for c in seq)
        return where[seq], len(seq)

    for cp in code_points():
        c_off, c_len = place(canon.get(cp, ""))
        k_off, k_len = place(compat.get(cp, ""))
        rec = (c_off, k_off, c_len, k_len, ccc[cp], flags[cp])
        if rec not in rec_index:
            rec_index[rec] = len(records)
            records.append(rec)
        per_cp[cp] = rec_index[rec]
    assert len(pool) < 65536 and len(records) < 65536 and max(map(len, compat.values())) < 256
    return records, pool, per_cp


def build_trie(per_cp: list[int], shift: int):
    blocks, stage1, stage2 = {}, [], []
    size = 1 << shift
    for start in range(0, 0x110000, size):
        block = tuple(per_cp[start:start + size])
        if block not in blocks:
            blocks[block] = len(blocks)
            stage2.extend(block)
        stage1.append(blocks[block])
    return stage1, stage2


def array(ctype: str, name: str, values, per_line: int = 16, fmt=str) -> list[str]:
    values = list(values)
    lines = [f"static const {ctype} {name}[] = {{"]
    lines += ["    " + ", ".join(fmt(v) for v in values[i:i + per_line]) + "," for i in range(0, len(values), per_line)]
    return lines + ["};"]


def first_unstable(ccc, flags, mask: int) -> int:
    return next(cp for cp in code_points() if ccc[cp] or flags[cp] & mask)


def main() -> None:
    canon, compat, ccc, flags = collect()
    pairs, excluded, unknown = compose_pairs(canon)
    for first, second, _ in pairs:
        flags[second] |= SECOND
    for cp in list(range(V_BASE, V_BASE + V_COUNT)) + list(range(T_BASE + 1, T_BASE + T_COUNT)):
        flags[cp] |= SECOND                      # Hangul L+V and LV+T compose arithmetically
    records, pool, per_cp = build_records(canon, compat, ccc, flags)
    shift = min(range(5, 10), key=lambda s: sum(len(x) for x in build_trie(per_cp, s)))
    stage1, stage2 = build_trie(per_cp, shift)
    hexa = lambda v: f"0x{v:X}"
    no_class = {cp: 0 for cp in ccc}
    lines = [
        f"// Generated by scripts/gen_normalize_tables.py from HF tokenizers {tokenizers.__version__}. Do not edit.",
        f"// Disagreements with Python unicodedata {ud.unidata_version} (the crate's Unicode is older; the crate wins):",
        *differences(canon, compat, ccc, flags),
        f"//   canonical pairs Python composes and the crate does not: {len(unknown)}: "
        + " ".join(f"U+{c:04X}" for c in unknown[:16]) + (" ..." if len(unknown) > 16 else ""),
        f"// {len(pairs)} composition pairs; {len(excluded)} canonical pairs are composition exclusions in both.",
        f"#define ROUTERM_NORMALIZE_SOURCE \"tokenizers {tokenizers.__version__}\"",
        f"constexpr int kNormShift = {shift};",
        f"constexpr uint32_t kFirstUnstableNfd = 0x{first_unstable(ccc, flags, CANON):X};",
        f"constexpr uint32_t kFirstUnstableNfkd = 0x{first_unstable(ccc, flags, COMPAT):X};",
        f"constexpr uint32_t kFirstUnstableNfc = 0x{first_unstable(ccc, flags, NFC_NO | SECOND):X};",
        f"constexpr uint32_t kFirstUnstableNfkc = 0x{first_unstable(ccc, flags, NFKC_NO | SECOND):X};",
        f"constexpr uint32_t kFirstAccent = 0x{first_unstable(no_class, flags, ACCENT):X};",
        f"constexpr uint32_t kFirstSecond = 0x{first_unstable(no_class, flags, SECOND):X};",
        f"constexpr uint32_t kFirstNonStarter = 0x{first_unstable(ccc, flags, 0):X};",
    ]
    lines += array("NormRecord", "kNormRecords", (f"{{{a}, {b}, {c}, {d}, {e}, {f}}}" for a, b, c, d, e, f in records), 6)
    lines += array("uint16_t", "kNormStage1", stage1, 24)
    lines += array("uint16_t", "kNormStage2", stage2, 24)
    lines += array("uint32_t", "kNormPool", pool, 12, hexa)
    lines += array("ComposePair", "kComposePairs",
                   (f"{{0x{(a << 21) | b:X}ull, 0x{c:X}}}" for a, b, c in pairs), 4)
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
