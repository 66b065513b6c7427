"""Tokenizer speed, C library vs Hugging Face ``tokenizers``, one thread each, per algorithm.

    PYTHONPATH=scripts:tests:tests/c python benchmarks/tokenizer_speed.py --tool build/tests/c/tokenize_tool [--root DIR]
        [--strings 100000] [--rounds 5] [--text corpus|hard] [--kinds ...]

For each tokenizer of tests/c/tokenizer_fixtures.py (byte-level BPE: gpt2, llama3, qwen2, roberta;
SentencePiece-style BPE with byte fallback: bpe-byte-fallback, bpe-llama2, bpe-metaspace; unigram;
wordpiece, wordpiece-cased; and qwen2-150k, a byte-level BPE of Qwen's size: 151643 pieces, 151387
merges), on the same ``--strings`` strings (``corpus``: lines, word windows and substrings of the
vendored preference text; ``hard``: every tests/c/hard_text.py category):

* **encode**: tokens per second of one pass over the strings without special tokens; C:
  ``Tokenizer::encode`` one string after another (tokenize_tool ``time``); ``tokenizers``:
  ``encode_batch`` with one thread (RAYON_NUM_THREADS=1, TOKENIZERS_PARALLELISM=false, set before
  the import) on the strings decoded as the parity harness decodes them;
* **load**: seconds of ``Tokenizer::load`` vs ``Tokenizer.from_file`` (tokenizer.json), three
  loads a round, the fastest kept.

Rounds interleave the kinds and alternate which side goes first; each figure is the median over
rounds, with the spread (min-max) beside it. Two figures whose spreads overlap are reported as
within noise. ``os.getloadavg()`` is recorded before and after: run it alone on the machine. Writes
``--out`` (JSON) and the markdown table beside it (``.md``, generated from the JSON).
"""
from __future__ import annotations

import os

os.environ["RAYON_NUM_THREADS"] = "1"            # before tokenizers is imported: one thread
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

import tokenizer_parity as parity  # noqa: E402  (scripts/, tests/ and tests/c/ on PYTHONPATH)
from tokenizer_parity import fixtures, hard_text  # noqa: E402

CORPUS = ("corpus_line", "corpus_words", "corpus_substring")
LOADS = 3


def _machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()}


def _c_round(tool: str, folder: Path, strings: Path) -> dict:
    """One tokenize_tool ``time`` run: fastest of LOADS loads, one encode pass."""
    proc = subprocess.run([tool, "time", str(folder), str(strings), "--repeat", "1", "--loads", str(LOADS)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"tokenize_tool time {folder} failed: {proc.stderr.strip()}")
    out = json.loads(proc.stdout)
    return {"tokens": out["tokens"], "encode_s": out["encode_seconds"][0], "load_s": min(out["load_seconds"])}


def _python_round(folder: Path, texts: list[str]) -> dict:
    """The same with tokenizers: fastest of LOADS ``from_file``, one ``encode_batch`` pass."""
    from tokenizers import Tokenizer
    loads = []
    for _ in range(LOADS):
        start = time.perf_counter()
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        loads.append(time.perf_counter() - start)
    tok.no_truncation()
    tok.no_padding()
    start = time.perf_counter()
    encodings = tok.encode_batch(texts, add_special_tokens=False)
    seconds = time.perf_counter() - start
    return {"tokens": sum(len(e.ids) for e in encodings), "encode_s": seconds, "load_s": min(loads)}


def _summary(rounds: list[dict], tokens: int) -> dict:
    """Medians and spreads of tokens/s and load seconds over rounds."""
    rates = [tokens / r["encode_s"] for r in rounds]
    loads = [r["load_s"] for r in rounds]
    return {"tokens_per_s": round(statistics.median(rates)),
            "tokens_per_s_range": [round(min(rates)), round(max(rates))],
            "load_s": statistics.median(loads), "load_s_range": [min(loads), max(loads)], "rounds": rounds}


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def measure(args, kinds: list[str]) -> dict:
    """Interleaved rounds over ``kinds``; per kind the C and tokenizers summaries."""
    data, rounds = {}, {k: {"c": [], "python": []} for k in kinds}
    with tempfile.TemporaryDirectory(prefix="tokspeed-") as tmp:
        for kind in kinds:
            folder = fixtures.build(kind, args.root)
            added = [t["content"] for t in json.loads((folder / "tokenizer.json").read_text("utf-8"))["added_tokens"]]
            items = [b for _, b in hard_text.generate(args.strings, args.seed, added,
                                                      CORPUS if args.text == "corpus" else None)]
            path = Path(tmp) / f"{kind}.bin"
            parity.write_strings(path, items)
            data[kind] = (folder, path, [hard_text.decode(b) for b in items], sum(map(len, items)))
        for r in range(args.rounds):
            for kind in kinds:
                folder, path, texts, _ = data[kind]
                sides = [("c", lambda: _c_round(args.tool, folder, path)),
                         ("python", lambda: _python_round(folder, texts))]
                for side, run in (sides if r % 2 == 0 else sides[::-1]):
                    rounds[kind][side].append(run())
    out = {}
    for kind in kinds:
        c, py = rounds[kind]["c"], rounds[kind]["python"]
        tokens = py[0]["tokens"]
        if any(x["tokens"] != tokens for x in c + py):
            raise RuntimeError(f"{kind}: C and tokenizers count different tokens ({c[0]['tokens']} vs {tokens}): "
                               "run scripts/tokenizer_parity.py first")
        cs, ps = _summary(c, tokens), _summary(py, tokens)
        out[kind] = {"strings": args.strings, "bytes": data[kind][3], "tokens": tokens, "c": cs, "tokenizers": ps,
                     "encode_ratio": round(cs["tokens_per_s"] / ps["tokens_per_s"], 2),
                     "load_ratio": round(ps["load_s"] / cs["load_s"], 2),
                     "encode_within_noise": _overlap(cs["tokens_per_s_range"], ps["tokens_per_s_range"]),
                     "load_within_noise": _overlap(cs["load_s_range"], ps["load_s_range"])}
    return out


def markdown(results: dict) -> str:
    """The table of results/tokenizer_speed.md, from the JSON alone."""
    cfg = results["config"]
    lines = [f"# Tokenizer speed: C library vs tokenizers {results['versions']['tokenizers']}, one thread", "",
             f"{cfg['strings']} {cfg['text']} strings a kind, {cfg['rounds']} interleaved rounds, medians "
             f"(range); load: fastest of {LOADS} loads a round. Machine: {results['machine']['cpu']} "
             f"({results['machine']['cores']} cores); load average {results['loadavg']['before'][0]:.2f} before, "
             f"{results['loadavg']['after'][0]:.2f} after. Commit {results['commit']}"
             f"{' (with uncommitted changes)' if results['dirty'] else ''}.", "",
             "| tokenizer | tokens | C tokens/s | tokenizers tokens/s | C / tokenizers | C load s "
             "| tokenizers load s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    notes = [] if cfg["rounds"] >= 3 else [f"With {cfg['rounds']} round(s) the noise is not measured: no two "
                                           "figures here can be told apart with confidence."]
    for kind, k in results["kinds"].items():
        c, p = k["c"], k["tokenizers"]
        lines.append(f"| {kind} | {k['tokens']} | {c['tokens_per_s']:,} ({c['tokens_per_s_range'][0]:,}-"
                     f"{c['tokens_per_s_range'][1]:,}) | {p['tokens_per_s']:,} ({p['tokens_per_s_range'][0]:,}-"
                     f"{p['tokens_per_s_range'][1]:,}) | {k['encode_ratio']}x | {c['load_s']:.4f} "
                     f"| {p['load_s']:.4f} |")
        for what, flag in (("encoding speeds", "encode_within_noise"), ("load times", "load_within_noise")):
            if k[flag] and cfg["rounds"] >= 3:
                notes.append(f"{kind}: the two {what} are within noise (their ranges over rounds overlap).")
    return "\n".join(lines + [""] + notes + ([""] if notes else [])) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", required=True, help="the tokenize_tool executable")
    ap.add_argument("--root", default=str(ROOT / "build-parity" / "tokenizers"), help="fixture folder cache")
    ap.add_argument("--kinds", nargs="+", default=[*fixtures.KINDS, fixtures.LARGE_KIND],
                    choices=(*fixtures.KINDS, fixtures.LARGE_KIND))
    ap.add_argument("--strings", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--text", choices=("corpus", "hard"), default="corpus")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "results" / "tokenizer_speed.json"))
    args = ap.parse_args()
    import tokenizers
    before = os.getloadavg()
    kinds = measure(args, args.kinds)
    results = {"machine": _machine(), "versions": {"tokenizers": tokenizers.__version__}, **parity.commit(),
               "config": {"strings": args.strings, "rounds": args.rounds, "text": args.text, "seed": args.seed,
                          "threads": 1},
               "loadavg": {"before": list(before), "after": list(os.getloadavg())}, "kinds": kinds}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown(results), encoding="utf-8")
    print(markdown(results))


if __name__ == "__main__":
    main()
