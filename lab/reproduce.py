"""``make reproduce``: train and evaluate all four methods; write results/accuracy.{json,md},
results/training_curves.png, results/more_routing.{json,png}.

Sized for a 2-core CPU within 90 minutes (see README and ``FULL``): MiniLM-L6, 256 tokens
(prompt tail + response head and tail, one segment), layer-mean pooling; every head starts as a
linear probe fitted on the whole train split's frozen features (training.probe), then the top 3
layers (or LoRA on them) fine-tune on ``train_pairs_per_domain`` pairs a domain for one epoch,
with model choice (the probe start included) on the whole validation split (the mean over domains
for the baseline and MoRE, ``TrainConfig.model_choice``), and one evaluation
on the whole test split (fp32, the precision the exported graphs serve).

Resumable per method: a method whose checkpoint card holds this run's config (the settings that
method reads, ``TrainConfig.for_method``) is not trained again,
and its test evaluation is reused from ``<checkpoint>/test_eval.json``; a crash in the third method
does not redo the first two. ``--fresh`` retrains everything.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
import transformers

from models.checkpoint import CARD, EVAL_FILE, METHODS, load_checkpoint
from training.config import TrainConfig
from core.data import load_splits
from training.evaluate import evaluate
from training.methods import train
from core.stats import domain_and_mean_intervals, paired_difference

RESULTS = Path("results")
FULL = TrainConfig(train_pairs_per_domain=1000, router_examples_per_domain=None, probe_pairs_per_domain=None,
                   val_pairs_per_domain=None, eval_pairs_per_domain=None, max_length=256, train_layers=3, epochs=1,
                   batch_size=16)


def trained_with(cfg: TrainConfig, method: str) -> bool:
    """Whether ``cfg.method_dir(method)`` holds a checkpoint trained with the settings of ``cfg`` that ``method``
    reads (``TrainConfig.for_method``): ``make reproduce`` then reuses it instead of training again."""
    card = cfg.method_dir(method) / CARD
    if not card.is_file():
        return False
    saved = json.loads(card.read_text()).get("train_config")
    if saved is None:
        return False
    wanted = json.loads(json.dumps(cfg.for_method(method)))
    return {k: saved.get(k) for k in wanted} == wanted


def _head(hidden: int) -> str:
    return f"two-layer ({hidden} hidden)" if hidden else "linear"


def _fmt(x: float) -> str:
    return f"{100 * x:.1f}"


def _ci(ci) -> str:
    return f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else ""


def render_markdown(results: dict) -> str:
    """The accuracy table (README and results/accuracy.md are generated from this)."""
    methods = results["methods"]
    domains = list(next(iter(methods.values()))["domains"])
    head = "| method | " + " | ".join(domains) + " | mean [95% CI] | params total | params active | train s |"
    lines = [head, "|" + "---|" * (len(domains) + 5)]
    for name, m in methods.items():
        cells = []
        for d in domains:
            e = m["domains"][d]
            cell = _fmt(e["accuracy"]) + _ci(e.get("ci"))
            if "oracle_accuracy" in e:
                cell += f" (oracle {_fmt(e['oracle_accuracy'])})"
            cells.append(cell)
        mean = f"**{_fmt(m['mean_accuracy'])}**{_ci(m.get('mean_ci'))}"
        if "mean_oracle_accuracy" in m:
            mean += f" (oracle {_fmt(m['mean_oracle_accuracy'])})"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mean} | {m['params_total'] / 1e6:.1f}M | "
                     f"{m['params_active'] / 1e6:.1f}M | {m['train_seconds']:.0f} |")
    out = "\n".join(lines)
    out += ("\n\nPairwise accuracy (%) on the whole test split with 95% bootstrap intervals over prompts; routed "
            "methods show routed accuracy and, in parentheses, the accuracy with the true domain (oracle routing).\n")
    diffs = results.get("vs_baseline", {})
    if diffs:
        out += "\nMean accuracy minus the baseline's (paired bootstrap over the same test prompts):\n\n"
        for name, d in diffs.items():
            verdict = ("within noise (the interval contains 0)" if d["within_noise"]
                       else ("above the baseline" if d["difference"] > 0 else "below the baseline"))
            out += f"- {name}: {100 * d['difference']:+.1f} points [{100 * d['interval'][0]:+.1f}, " \
                   f"{100 * d['interval'][1]:+.1f}]: {verdict}\n"
    for name, r in results.get("router", {}).items():
        out += f"\n{name} router accuracy: {_fmt(r['accuracy'])}% (confusion rows = true domain, columns = routed: "
        out += ", ".join(domains) + ")\n\n"
        out += "\n".join("    " + " ".join(f"{v:5d}" for v in row) for row in r["confusion"]) + "\n"
    cfg = results["config"]
    out += (f"\nConfig: base {Path(cfg['base_model']).name if cfg['base_model'] else 'all-MiniLM-L6-v2'}, "
            f"max_length {cfg['max_length']}, top {cfg['train_layers']} layers trained, "
            f"baseline/MoRE head {_head(cfg.get('single_head_hidden', 0))}, "
            f"{cfg['train_pairs_per_domain']} train pairs/domain, {cfg['epochs']} epoch(s), lr {cfg['lr']:g} "
            f"(heads {cfg['head_lr']:g}, LoRA {cfg['lora_lr']:g} r={cfg['lora_r']}), bf16 autocast {cfg['bf16']}, "
            f"{results['machine']['threads']} CPU threads, {results.get('wall_seconds', 0) / 60:.0f} min wall.\n")
    if results.get("reused"):
        out += (f"Reused from an earlier run with the same settings for that method (not retrained): "
                f"{', '.join(results['reused'])}; their train seconds are that run's, and the wall time above "
                f"covers this run only.\n")
    load = results["machine"].get("load_average_start")
    if load:
        out += f"Load average at start: {load[0]:.2f}"
        if load[0] > 0.5:
            out += " (above 0.5: other work shared the CPU, so the training seconds are upper bounds)"
        out += ".\n"
    return out


def _public(entry: dict) -> dict:
    """The accuracy.json entry without the per-pair vectors used for the intervals."""
    out = {k: v for k, v in entry.items() if k != "domains"}
    out["domains"] = {d: {k: v for k, v in e.items() if k not in ("correct", "oracle_correct", "groups")}
                      for d, e in entry["domains"].items()}
    return out


def summarize(evals: dict, cfg: TrainConfig, machine: dict, wall: float) -> dict:
    results = {"methods": {}, "router": {}, "vs_baseline": {}, "config": {**cfg.to_dict(), "base_model": cfg.base_model},
               "machine": machine, "wall_seconds": wall}
    for method, res in evals.items():
        entry = dict(res["method"])
        cis = domain_and_mean_intervals(entry["domains"])
        for d, ci in cis["domains"].items():
            entry["domains"][d]["ci"] = ci
        entry["mean_ci"] = cis["mean"]
        results["methods"][method] = _public(entry)
        if res["router"]:
            results["router"][method] = res["router"]
    if "baseline" in evals:
        base = evals["baseline"]["method"]["domains"]
        for method, res in evals.items():
            if method != "baseline":
                results["vs_baseline"][method] = paired_difference(res["method"]["domains"], base)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--pairs-per-domain", type=int, default=FULL.train_pairs_per_domain)
    parser.add_argument("--fresh", action="store_true", help="retrain every method even if its checkpoint matches")
    args = parser.parse_args(argv)
    cfg = FULL.with_(train_pairs_per_domain=args.pairs_per_domain)
    splits = load_splits(cfg.domains)
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = {"platform": platform.platform(), "threads": torch.get_num_threads(), "torch": torch.__version__,
               "transformers": transformers.__version__, "load_average_start": list(os.getloadavg())}
    start = time.perf_counter()
    evals, reused = {}, []
    for method in args.methods.split(","):
        out = cfg.method_dir(method)
        if args.fresh or not trained_with(cfg, method):
            (out / EVAL_FILE).unlink(missing_ok=True)
            stats = train(method, splits, cfg)
            print(f"[reproduce] {method}: trained in {stats['wall_seconds']:.0f}s", flush=True)
        else:
            reused.append(method)
            print(f"[reproduce] {method}: checkpoint {out} matches this config, not retrained", flush=True)
        if (out / EVAL_FILE).is_file():
            res = json.loads((out / EVAL_FILE).read_text())
        else:
            ckpt = load_checkpoint(out, method)
            t0 = time.perf_counter()
            res = evaluate(ckpt, splits, cfg.eval_pairs_per_domain)
            res["method"]["train_seconds"] = ckpt.card.extra["train"]["train_seconds"]
            res["method"]["eval_seconds"] = time.perf_counter() - t0
            res["method"]["train"] = ckpt.card.extra["train"]
            (out / EVAL_FILE).write_text(json.dumps(res))
        evals[method] = res
        print(f"[reproduce] {method}: mean test accuracy {res['method']['mean_accuracy']:.3f}", flush=True)
        partial = summarize(evals, cfg, machine, time.perf_counter() - start)
        partial["reused"] = reused
        (RESULTS / "accuracy.json").write_text(json.dumps(partial, indent=1))
    results = summarize(evals, cfg, machine, time.perf_counter() - start)
    results["reused"] = reused
    results["machine"]["load_average_end"] = list(os.getloadavg())
    (RESULTS / "accuracy.json").write_text(json.dumps(results, indent=1))
    (RESULTS / "accuracy.md").write_text(render_markdown(results))
    from lab.figures import more_routing, training_curves
    training_curves(results, RESULTS / "training_curves.png")
    if "more" in evals:
        more_routing(load_checkpoint(cfg.method_dir("more"), "more"), splits, RESULTS / "more_routing")
    print(render_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
