"""Measure what serving costs on the core install (no torch): disk, import time, memory, first call.

    python scripts/runtime_footprint.py --bundles bundles [--core-venv /tmp/routerm-core]

1. Builds a fresh venv with the core profile only (``pip install --no-deps .`` plus onnxruntime,
   numpy, tokenizers and their own dependencies from the local package index) unless it exists,
   and records its site-packages size next to the development venv's (``.venv``).
2. In that core venv, one fresh process per bundle: ``import runtime`` time, the modules that
   import pulled in (torch/transformers/peft must be absent), RSS after loading the bundle and
   after the first ``score`` of 8 pairs, the first call's latency, the bundle's size on disk,
   and the rewards; the same rewards from the development venv's engine (max difference).
3. Tokenization time per batch of 32 test pairs (256 tokens, head+tail policy): the old path
   (transformers' fast tokenizer) against the runtime's (runtime.tokenizer on ``tokenizers``).

Writes ``results/runtime_footprint.json``; the README table comes from it (lab/render_docs.py).
Measures, asserts nothing; run it alone on the machine (the load average is recorded).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ["onnxruntime==1.32.0", "numpy<3", "tokenizers>=0.22,<0.23"]

PROBE = r"""
import json, os, sys, time
t0 = time.perf_counter()
import runtime
t1 = time.perf_counter()
def rss():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmRSS")) / 1024
heavy = sorted(m for m in ("torch", "transformers", "peft", "optimum") if m in sys.modules)
rss_import = rss()
engine = runtime.RewardEngine.from_bundle(sys.argv[1], threads=2)
rss_load = rss()
prompts = ["How do I bake bread at home?", "What is 12 * 7?"] * 4
responses = ["Mix flour, water, yeast and salt, knead, let it rise, bake at 230 C.", "84"] * 4
t2 = time.perf_counter()
rewards = engine.score(prompts, responses).rewards
t3 = time.perf_counter()
heavy_after = sorted(m for m in ("torch", "transformers", "peft", "optimum") if m in sys.modules)
print(json.dumps({"import_seconds": t1 - t0, "heavy_modules_after_import": heavy, "heavy_modules_after_score": heavy_after,
                  "rss_mb_after_import": rss_import, "rss_mb_after_load": rss_load, "rss_mb_after_first_score": rss(),
                  "first_score_seconds": t3 - t2, "rewards": [float(r) for r in rewards]}))
"""


TOKENIZE = r"""
import json, sys, time
from pathlib import Path
from models.base import default_base_model, load_tokenizer
from core.text import encode_pairs, single_segment
from runtime.tokenizer import BundleTokenizer
from core.data import DOMAINS, load_splits
splits = load_splits()
pairs = [p for d in DOMAINS for p in splits[d]["test"]]
hf = single_segment(load_tokenizer(default_base_model()))
fast = BundleTokenizer(Path(default_base_model()) / "tokenizer.json", hf.pad_token_id, False)
out = {}
for name, tok in (("transformers", hf), ("tokenizers", fast)):
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for s in range(0, len(pairs), 32):
            b = pairs[s:s + 32]
            encode_pairs(tok, [p.prompt for p in b], [p.chosen for p in b], 256)
        best = min(best, time.perf_counter() - t)
    out[name] = {"ms_per_batch_of_32": 1000 * best / -(-len(pairs) // 32), "pairs": len(pairs)}
print(json.dumps(out))
"""


def du_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def make_core_venv(venv: Path) -> None:
    if (venv / "bin" / "python").exists():
        return
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run(pip + CORE, check=True)
    subprocess.run(pip + ["--no-deps", str(ROOT)], check=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", default="bundles", help="directory holding baseline, more, rodos, arliss, arliss-merged")
    parser.add_argument("--core-venv", default="/tmp/routerm-core-venv")
    parser.add_argument("--out", default="results/runtime_footprint.json")
    args = parser.parse_args(argv)
    core = Path(args.core_venv)
    make_core_venv(core)
    result = {"load_average_start": list(os.getloadavg()),
              "core_site_packages_mb": round(du_mb(site_packages(core)), 1),
              "dev_site_packages_mb": round(du_mb(site_packages(ROOT / ".venv")), 1),
              "core_packages": subprocess.run([str(core / "bin" / "python"), "-m", "pip", "freeze"], capture_output=True,
                                              text=True, check=True).stdout.split(),
              "bundles": {}}
    for name in ("baseline", "more", "rodos", "arliss", "arliss-merged"):
        bundle = Path(args.bundles) / name
        if not (bundle / "manifest.json").is_file():
            print(f"{bundle}: no bundle, skipped", file=sys.stderr)
            continue
        env = {**os.environ, "PYTHONPATH": ""}
        out = subprocess.run([str(core / "bin" / "python"), "-c", PROBE, str(bundle.resolve())], capture_output=True,
                             text=True, env=env, cwd="/")
        if out.returncode != 0:
            result["bundles"][name] = {"error": out.stderr.strip().splitlines()[-1:]}
            continue
        row = json.loads(out.stdout.strip().splitlines()[-1])
        dev = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", PROBE, str(bundle.resolve())],
                             capture_output=True, text=True, cwd=ROOT, check=True)
        dev_rewards = json.loads(dev.stdout.strip().splitlines()[-1])["rewards"]
        row["max_abs_diff_vs_dev_venv"] = max(abs(a - b) for a, b in zip(row["rewards"], dev_rewards))
        row["weights_on_disk_mb"] = round(sum(p.stat().st_size for p in bundle.rglob("*.onnx*")) / 2**20, 1)
        result["bundles"][name] = row
        print(name, {k: v for k, v in row.items() if k != "rewards"}, flush=True)
    tok = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", TOKENIZE], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    result["tokenization"] = json.loads(tok.stdout.strip().splitlines()[-1])
    print("tokenization", result["tokenization"], flush=True)
    result["load_average_end"] = list(os.getloadavg())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
