"""Token-id parity of the C tokenizer with Hugging Face ``tokenizers``, on hard text, per family.

    PYTHONPATH=tests:tests/c python scripts/tokenizer_parity.py --tool build/tests/c/tokenize_tool [--root DIR] [--kinds ...]
        [--strings 1000000] [--pairs 100000] [--chat-rows 100000] [--seed 0] [--out results/tokenizer_parity.json]

For each tokenizer kind (tests/c/tokenizer_fixtures.py builds and caches the folders under --root):

* **ids**: ``--strings`` strings of tests/c/hard_text.py (UTF-8 bytes, some invalid) and every code
  point (8.7k strings of hard_text.code_point_sweep, unless ``--no-sweep``) go to the C
  library as they are, and to ``tokenizers`` as ``Tokenizer.from_file(...).encode_batch(texts,
  add_special_tokens=False)`` of ``b.decode("utf-8", "replace")`` (the C library reads invalid UTF-8
  as U+FFFD per maximal subpart, as that decode does): the ids must be equal;
* **pairs**: ``--pairs`` (prompt, response) pairs of hard text at max_length 8 / 32 / 128 / 512 under
  both truncation policies: C ``encode_pair`` against ``core.text.encode_pairs`` on the tokenizer the
  Python engine serves with (runtime.tokenizer.BundleTokenizer, which reads the post-processor's
  template; ids and, where the manifest says the graphs take them, token type ids). How often
  transformers' own class (AutoTokenizer, whose ``build_inputs_with_special_tokens`` may ignore the
  post-processor) would join a pair differently is reported beside it, not counted;
* **chat**: ``--chat-rows`` rows (a text or messages on either side, a few the formats refuse) at
  max_length 16 / 64 / 256 / 2048: C ``encode_row`` against ``core.formats.encode_rows``, with every
  chat template the kind is tested with (reduced by export.chat_template.reduce_template), or the
  pair format (messages flattened) for kinds without one. Contents are valid UTF-8 here (the
  engine gets Python strings); a row one side refuses must be refused by the other.

Writes ``--out`` (per kind: strings, tokens, mismatches by category, seconds, the first examples;
the commit) and its table beside it (``.md``; ``--render`` rewrites only that) and prints the first
mismatches. Exit status 1 when any count is not zero.
"""
from __future__ import annotations

import argparse
import json
import random
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import hard_text
import tokenizer_fixtures as fixtures
from core.text import TRUNCATION_POLICIES

ROOT = Path(__file__).resolve().parent.parent

CHUNK = 100_000                    # strings per tool call (bounds memory at 1M strings)
PAIR_LENGTHS = (8, 32, 128, 512)
CHAT_LENGTHS = (16, 64, 256, 2048)
EXAMPLES = 5


# --- the tool's files -----------------------------------------------------------------------------
def write_strings(path: Path, items: list[bytes]) -> None:
    """tokenize_tool's input: each item a uint32 little-endian length and its bytes."""
    with open(path, "wb") as f:
        for b in items:
            f.write(struct.pack("<I", len(b)))
            f.write(b)


def read_records(path: Path, with_types: bool) -> list[tuple]:
    """tokenize_tool's output: per record (ids, types) or (None, message) when it was refused."""
    data = Path(path).read_bytes()
    words = np.frombuffer(data[: len(data) // 4 * 4], dtype="<i4")
    out, at = [], 0
    while at < len(words):
        n = int(words[at])
        if n < 0:
            size = int(words[at + 1])
            start = 4 * (at + 2)
            out.append((None, data[start:start + size].decode("utf-8", "replace")))
            at += 2 + (size + 3) // 4   # the message is zero-padded to 4 bytes
            continue
        ids = words[at + 1: at + 1 + n].tolist()
        at += 1 + n
        types = None
        if with_types:
            m = int(words[at])
            types = words[at + 1: at + 1 + m].tolist()
            at += 1 + m
        out.append((ids, types))
    return out


def run_tool(tool: str, mode: str, folder: Path, items: list[bytes], records: int, *extra: str) -> list[tuple]:
    """The ``records`` records of tokenize_tool ``mode`` over ``items`` (strings of the input format)."""
    with tempfile.TemporaryDirectory(prefix="parity-") as tmp:
        src, dst = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        write_strings(src, items)
        proc = subprocess.run([tool, mode, str(folder), str(src), str(dst), *extra], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"tokenize_tool {mode} {folder} failed ({proc.returncode}): {proc.stderr.strip()}")
        out = read_records(dst, mode != "ids")
    if len(out) != records:
        raise RuntimeError(f"tokenize_tool {mode} {folder} wrote {len(out)} records for {records}")
    return out


# --- references -----------------------------------------------------------------------------------
class Reference:
    """What ``tokenizers`` and the Python engine give for one fixture folder."""

    def __init__(self, folder: Path):
        from tokenizers import Tokenizer

        from core.errors import BundleError
        from runtime.tokenizer import BundleTokenizer
        self.folder = folder
        self.section = json.loads((folder / "manifest_tokenizer.json").read_text("utf-8"))
        self.tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tok.no_truncation()
        self.tok.no_padding()
        self.hf = fixtures.load_hf(folder)
        self.note = None
        try:
            self.engine = BundleTokenizer(folder / "tokenizer.json", self.section["pad_token_id"],
                                          self.section["uses_token_type_ids"])
        except BundleError as exc:   # the engine refuses the post-processor: transformers' class stands in
            self.engine, self.note = self.hf, f"runtime.tokenizer.BundleTokenizer refuses the folder: {exc}"
        self.added = [t["content"] for t in json.loads((folder / "tokenizer.json").read_text("utf-8"))["added_tokens"]]

    def ids(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tok.encode_batch(texts, add_special_tokens=False)]

    def tokens(self, ids) -> list[str]:
        return [self.tok.id_to_token(i) if i is not None and 0 <= i < 2 ** 31 else "?" for i in ids]


def _first_difference(want: list, got: list) -> int:
    return next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))


def _example(ref: Reference, what: dict, want: list | None, got: list | None, refused: str | None = None) -> dict:
    """A mismatch as printed and stored: the input, then ids and tokens around the first difference."""
    out = dict(what)
    if want is None or got is None:
        out.update(expected=want if want is not None else "refused", got=got if got is not None else "refused",
                   message=refused)
        return out
    at = _first_difference(want, got)
    lo = max(0, at - 6)
    window = slice(lo, at + 10)
    out.update(first_difference=at, expected_len=len(want), got_len=len(got), expected=want[window],
               got=got[window], expected_tokens=ref.tokens(want[window]), got_tokens=ref.tokens(got[window]))
    return out


def _shown(b: bytes | str, limit: int = 240) -> str:
    return repr(b[:limit]) + (f" ... ({len(b)} long)" if len(b) > limit else "")


# --- the three checks -------------------------------------------------------------------------------
def check_ids(tool: str, ref: Reference, items: list[tuple[str, bytes]]) -> dict:
    """C ``encode`` against ``tokenizers`` on every string; counts by hard_text category."""
    result = {"strings": len(items), "tokens": 0, "mismatches": 0, "by_category": {}, "examples": [],
              "seconds": {"c": 0.0, "python": 0.0}}
    for start in range(0, len(items), CHUNK):
        chunk = items[start:start + CHUNK]
        t0 = time.perf_counter()
        got = run_tool(tool, "ids", ref.folder, [b for _, b in chunk], len(chunk))
        t1 = time.perf_counter()
        want = ref.ids([hard_text.decode(b) for _, b in chunk])
        result["seconds"]["c"] += t1 - t0
        result["seconds"]["python"] += time.perf_counter() - t1
        for (category, text), w, (g, message) in zip(chunk, want, got):
            result["tokens"] += len(w)
            if g == w:
                continue
            result["mismatches"] += 1
            result["by_category"][category] = result["by_category"].get(category, 0) + 1
            if len(result["examples"]) < EXAMPLES:
                result["examples"].append(_example(ref, {"category": category, "text": _shown(text)}, w, g, message))
    return result


def _pair_items(n: int, seed: int, added: list[str]) -> list[tuple[int, str, bytes, bytes]]:
    texts = [b for _, b in hard_text.generate(2 * n, seed, added)]
    return [(PAIR_LENGTHS[i % len(PAIR_LENGTHS)], TRUNCATION_POLICIES[(i // len(PAIR_LENGTHS)) % 2],
             texts[2 * i], texts[2 * i + 1]) for i in range(n)]


def _grouped(rows: list, encode) -> list:
    """``encode(max_length, policy, [row])`` over rows grouped by their (max_length, policy)."""
    out: list = [None] * len(rows)
    groups: dict = {}
    for i, row in enumerate(rows):
        groups.setdefault(row[:2], []).append(i)
    for (max_length, policy), index in groups.items():
        for i, e in zip(index, encode(max_length, policy, [rows[i] for i in index])):
            out[i] = e
    return out


def check_pairs(tool: str, ref: Reference, n: int, seed: int) -> dict:
    """C ``encode_pair`` against core.text.encode_pairs on the engine's tokenizer, both policies."""
    from core.text import encode_pairs
    rows = _pair_items(n, seed, ref.added)
    items = [x for ml, pol, p, r in rows for x in (str(ml).encode(), pol.encode(), p, r)]
    got = run_tool(tool, "pair", ref.folder, items, len(rows))

    def encode(tokenizer):
        return lambda ml, pol, group: encode_pairs(tokenizer, [hard_text.decode(p) for *_, p, _ in group],
                                                   [hard_text.decode(r) for *_, r in group], ml, pol)
    want = _grouped(rows, encode(ref.engine))
    hf = _grouped(rows, encode(ref.hf)) if ref.engine is not ref.hf else want
    result = {"rows": n, "mismatches": 0, "examples": [], "note": ref.note,
              "hf_class_differs": sum(a.input_ids != b.input_ids for a, b in zip(want, hf))}
    for (ml, pol, p, r), w, (g_ids, g_types) in zip(rows, want, got):
        same = g_ids == w.input_ids and (w.token_type_ids is None or g_types == w.token_type_ids)
        if not same:
            result["mismatches"] += 1
            if len(result["examples"]) < EXAMPLES:
                what = {"max_length": ml, "policy": pol, "prompt": _shown(p, 120), "response": _shown(r, 120)}
                if g_ids == w.input_ids:
                    what["types"] = {"expected": w.token_type_ids, "got": g_types}
                result["examples"].append(_example(ref, what, w.input_ids, g_ids, g_types if g_ids is None else None))
    return result


def _chat_rows(n: int, seed: int, added: list[str]) -> list[tuple]:
    """(max_length, policy, prompt, response) rows: a side is a text or messages; about 1 in 30 is a
    shape the formats refuse (a later system turn, an unknown role, no messages)."""
    rng = random.Random(seed)
    texts = iter([hard_text.decode(b) for _, b in hard_text.generate(8 * n, seed, added + ["</think>"])])
    rows = []
    for i in range(n):
        r = rng.random()
        if r < 0.4:
            prompt = next(texts)
        else:
            turns = ["user"] + ["assistant", "user"] * rng.randint(0, 2)
            prompt = [{"role": role, "content": next(texts)} for role in (["system"] if r < 0.6 else []) + turns]
        response = next(texts) if rng.random() < 0.7 else [{"role": "assistant", "content": next(texts)}]
        if rng.random() < 1 / 30:
            bad = rng.choice(([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}],
                              [{"role": "tool", "content": "c"}], []))
            prompt, response = (bad, response) if rng.random() < 0.5 else (prompt, bad)
        rows.append((CHAT_LENGTHS[i % len(CHAT_LENGTHS)], TRUNCATION_POLICIES[(i // len(CHAT_LENGTHS)) % 2],
                     prompt, response))
    return rows


def _side(value) -> list[bytes]:
    if isinstance(value, str):
        return [b"text", value.encode("utf-8")]
    return [f"messages:{len(value)}".encode()] + [m[k].encode("utf-8") for m in value for k in ("role", "content")]


def _chat_reference(ref: Reference, chat, rows: list[tuple]) -> list:
    """core.formats.encode_rows per row (Encoded, or the refusal's message)."""
    from core.formats import TextFormat, encode_rows
    pad = ref.section["pad_token_id"]

    def encode(ml, pol, group):
        fmt = TextFormat(ref.engine, ml, pad, pol, chat)
        try:
            return encode_rows(fmt, [g[2] for g in group], [g[3] for g in group])
        except (ValueError, TypeError):   # a refused row in the batch: find which, one at a time
            out = []
            for g in group:
                try:
                    out += encode_rows(fmt, [g[2]], [g[3]])
                except (ValueError, TypeError) as exc:
                    out.append(str(exc))
            return out
    return _grouped(rows, encode)


def check_chat(tool: str, ref: Reference, n: int, seed: int) -> dict:
    """C ``encode_row`` against core.formats.encode_rows for each chat format of the kind (or pairs)."""
    from core.chat import ChatFormat
    formats = {name: path for name, path in fixtures.chat_formats(ref.folder).items()} or {"pair-format": None}
    rows = _chat_rows(n, seed, ref.added)
    items = [x for ml, pol, p, r in rows for x in [str(ml).encode(), pol.encode(), *_side(p), *_side(r)]]
    result = {}
    for name, path in formats.items():
        chat = None if path is None else ChatFormat.from_dict(json.loads(path.read_text("utf-8")), str(path))
        got = run_tool(tool, "chat", ref.folder, items, len(rows), *(["--chat", str(path)] if path else []))
        want = _chat_reference(ref, chat, rows)
        counts = {"rows": n, "refused": sum(isinstance(w, str) for w in want), "mismatches": 0, "examples": []}
        for (ml, pol, p, r), w, (g_ids, g_types) in zip(rows, want, got):
            if isinstance(w, str):
                same = g_ids is None
            else:
                same = g_ids == w.input_ids and (w.token_type_ids is None or g_types == w.token_type_ids)
            if not same:
                counts["mismatches"] += 1
                if len(counts["examples"]) < EXAMPLES:
                    what = {"max_length": ml, "policy": pol, "prompt": _shown(repr(p), 200),
                            "response": _shown(repr(r), 200)}
                    expected = None if isinstance(w, str) else w.input_ids
                    message = w if isinstance(w, str) else (g_types if g_ids is None else None)
                    counts["examples"].append(_example(ref, what, expected, g_ids, message))
        result[name] = counts
    return result


# --- driver ----------------------------------------------------------------------------------------
def commit() -> dict:
    """The checked-out commit and whether the tree differs from it (read-only git calls)."""
    def git(*args):
        proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


def check_kind(args, kind: str) -> dict:
    start = time.perf_counter()
    ref = Reference(fixtures.build(kind, args.root))
    items = hard_text.generate(args.strings, args.seed, ref.added)
    items += hard_text.code_point_sweep() if args.sweep else []
    out = {"ids": check_ids(args.tool, ref, items)}
    if args.pairs:
        out["pairs"] = check_pairs(args.tool, ref, args.pairs, args.seed + 1)
    if args.chat_rows:
        out["chat"] = check_chat(args.tool, ref, args.chat_rows, args.seed + 2)
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def mismatches(entry: dict) -> int:
    return (entry["ids"]["mismatches"] + entry.get("pairs", {}).get("mismatches", 0)
            + sum(c["mismatches"] for c in entry.get("chat", {}).values()))


def report(kind: str, entry: dict) -> None:
    ids = entry["ids"]
    chat = ", ".join(f"{name} {c['mismatches']}/{c['rows']} ({c['refused']} refused)"
                     for name, c in entry.get("chat", {}).items())
    pairs = entry.get("pairs")
    print(f"{kind}: ids {ids['mismatches']}/{ids['strings']} strings ({ids['tokens']} tokens)"
          + (f", pairs {pairs['mismatches']}/{pairs['rows']}" if pairs else "")
          + (f", chat {chat}" if chat else "") + f" [{entry['seconds']} s]")
    if ids["by_category"]:
        print(f"  ids mismatches by category: {ids['by_category']}")
    if pairs and pairs.get("note"):
        print(f"  note: {pairs['note']}")
    if pairs and pairs.get("hf_class_differs"):
        print(f"  note: transformers' class joins {pairs['hf_class_differs']} pairs otherwise than the engine")
    examples = ids["examples"] + (pairs or {}).get("examples", []) + \
        [e for c in entry.get("chat", {}).values() for e in c["examples"]]
    for e in examples[:EXAMPLES]:
        print("  " + json.dumps(e, ensure_ascii=False))


def markdown(results: dict) -> str:
    """The results table of the C library's docs (lab.render_docs reads it), from the JSON."""
    lines = [f"`scripts/tokenizer_parity.py`, tokenizers {results['tokenizers']}, commit {str(results['commit'])[:7]}"
             f"{' (uncommitted changes)' if results['dirty'] else ''}, seed {results['seed']}.", "",
             "| kind | strings | tokens | id mismatches | pairs (mismatches) | chat rows (refused by both; mismatches) |",
             "|---|---|---|---|---|---|"]
    for kind, e in results["kinds"].items():
        pairs = e.get("pairs", {})
        chat = "; ".join(f"{name}: {c['rows']:,} ({c['refused']:,}; {c['mismatches']})" for name, c in e.get("chat", {}).items())
        lines.append(f"| {kind} | {e['ids']['strings']:,} | {e['ids']['tokens']:,} | {e['ids']['mismatches']} | "
                     f"{pairs.get('rows', 0):,} ({pairs.get('mismatches', 0)}) | {chat or '-'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", required=True, help="the tokenize_tool executable")
    ap.add_argument("--root", default=str(ROOT / "build-parity" / "tokenizers"), help="fixture folder cache")
    ap.add_argument("--kinds", nargs="+", default=list(fixtures.KINDS), choices=(*fixtures.KINDS, fixtures.LARGE_KIND))
    ap.add_argument("--strings", type=int, default=1_000_000)
    ap.add_argument("--pairs", type=int, default=100_000)
    ap.add_argument("--chat-rows", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-sweep", dest="sweep", action="store_false",
                    help="leave out the strings of every code point (hard_text.code_point_sweep)")
    ap.add_argument("--out", default=str(ROOT / "results" / "tokenizer_parity.json"))
    ap.add_argument("--render", action="store_true", help="only rewrite --out's markdown table (.md) from it")
    args = ap.parse_args()
    if args.render:
        Path(args.out).with_suffix(".md").write_text(markdown(json.loads(Path(args.out).read_text())), encoding="utf-8")
        return
    import tokenizers
    results = {"tokenizers": tokenizers.__version__, **commit(), "seed": args.seed, "kinds": {}}
    for kind in args.kinds:
        entry = check_kind(args, kind)
        report(kind, entry)
        results["kinds"][kind] = entry
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    Path(args.out).with_suffix(".md").write_text(markdown(results), encoding="utf-8")
    total = sum(mismatches(e) for e in results["kinds"].values())
    print(f"{args.out}: {total} mismatches over {len(args.kinds)} kinds")
    sys.exit(1 if total else 0)


if __name__ == "__main__":
    main()
