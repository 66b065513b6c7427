"""Render the generated blocks of README.md and docs/*.md from the committed results files.

    python -m lab.render_docs

Each block sits between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->``; the text in
between is replaced by what ``SECTIONS[NAME]`` makes of ``results/``, or by a line saying it is not
measured yet. ``PAGES`` says which page holds which blocks. Nothing in those blocks is typed by hand.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from benchmarks.latency_report import paired_speedup

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"


def _md_file(name: str) -> str | None:
    path = RESULTS / name
    return path.read_text().strip() if path.is_file() else None


def export_table() -> str | None:
    path = RESULTS / "export.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    lines = ["| method | variant | kept | max abs diff vs PyTorch | val. accuracy | Δ accuracy (points) [95% CI] "
             "| decisions equal to fp32 | rank corr. | bundle MB | export s |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def num(value, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    for method, variants in data.items():
        for variant, v in variants.items():
            acc = v.get("accuracy")
            delta = v.get("accuracy_delta")
            if delta is None and acc is not None and v.get("accuracy_reference") is not None:
                delta = acc - v["accuracy_reference"]
            ci = v.get("accuracy_delta_ci95")
            ci_text = f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci and ci != [0.0, 0.0] else ""
            lines.append(f"| {method} | {variant} | {'refused' if 'refused' in v else 'yes'} | "
                         f"{num(v.get('max_abs_diff'), '.2e')} | {num(None if acc is None else 100 * acc, '.1f')} | "
                         f"{num(None if delta is None else 100 * delta, '+.2f')}{ci_text} | "
                         f"{num(None if v.get('decision_agreement') is None else 100 * v['decision_agreement'], '.1f')}% | "
                         f"{num(v.get('reward_rank_correlation'), '.4f')} | {num(v.get('bundle_mb'), '.1f')} | "
                         f"{num(v.get('export_seconds'), '.0f')} |")
    return "\n".join(lines)


def engine_table() -> str | None:
    path = RESULTS / "engine_accuracy.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    lines = ["| bundle | backend | served mean accuracy | training-side mean | max abs diff (points) | router accuracy |",
             "|---|---|---|---|---|---|"]
    for name, r in data.items():
        served = sum(e["accuracy"] for e in r["domains"].values()) / len(r["domains"])
        train = sum(e["training_accuracy"] for e in r["domains"].values()) / len(r["domains"])
        router = "-" if r.get("router_accuracy") is None else f"{100 * r['router_accuracy']:.1f}"
        lines.append(f"| {name.split(':')[0]} | {r['backend']} | {100 * served:.2f} | {100 * train:.2f} | "
                     f"{r['max_abs_diff_points']:.2f} | {router} |")
    return "\n".join(lines)


def kernels_table() -> str | None:
    files = sorted(RESULTS.glob("kernels_*.json"))
    if not files:
        return None
    out = []
    for f in files:
        data = json.loads(f.read_text())
        out.append(f"`{f.name}`: {len(data.get('records', []))} cases on {data.get('machine', {}).get('gpu', '?')}")
    return "\n".join(out)


def footprint_table() -> str | None:
    path = RESULTS / "runtime_footprint.json"
    if not path.is_file():
        return None
    d = json.loads(path.read_text())
    load = round(d.get("load_average_start", [0.0])[0], 2)
    lines = [f"Core install (`pip install .`: onnxruntime, numpy, tokenizers and their dependencies): "
             f"**{d['core_site_packages_mb']:.0f} MB** of site-packages; the development venv: "
             f"{d['dev_site_packages_mb']:.0f} MB. Load average at start: {load}.", "",
             "| bundle | weights on disk MB | `import runtime` s | torch/transformers loaded | RSS after import MB | "
             "after load MB | after first score MB | first score s (8 pairs) | max diff vs dev venv |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in d["bundles"].items():
        if "error" in r:
            lines.append(f"| {name} | error: {r['error']} | | | | | | | |")
            continue
        heavy = ", ".join(r["heavy_modules_after_score"]) or "none"
        lines.append(f"| {name} | {r['weights_on_disk_mb']:.1f} | {r['import_seconds']:.2f} | {heavy} | "
                     f"{r['rss_mb_after_import']:.0f} | {r['rss_mb_after_load']:.0f} | {r['rss_mb_after_first_score']:.0f} | "
                     f"{r['first_score_seconds']:.3f} | {r['max_abs_diff_vs_dev_venv']:.1e} |")
    tok = d.get("tokenization")
    if tok:
        lines += ["", f"Tokenization of the test pairs (batches of 32, 256 tokens, best of 3): transformers "
                      f"{tok['transformers']['ms_per_batch_of_32']:.1f} ms per batch, the runtime's `tokenizers` path "
                      f"{tok['tokenizers']['ms_per_batch_of_32']:.1f} ms."]
    return "\n".join(lines)


def _counts(statuses: dict | None) -> str:
    """``{"200": 19, "429": 29}`` as ``200 x19, 429 x29``."""
    return ", ".join(f"{k} x{v}" for k, v in sorted((statuses or {}).items())) or "none"


def serve_table() -> str | None:
    path = RESULTS / "serve.json"
    if not path.is_file():
        return None
    d = json.loads(path.read_text())
    lines = [f"Load average at start: {d['load_average_start'][0]:.2f}.", "",
             "| method | clients | requests sent | answered once | lost | pairs/s | vs offline batch 32 | p50 ms | p99 ms | statuses |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    faults = []
    for method, row in d["methods"].items():
        for r in row["runs"]:
            lines.append(f"| {method} | {r['clients']} | {r['requests_sent']} | {r['answered_ok']} | {r['lost']} | "
                         f"{r['pairs_per_s']:.1f} | {r['vs_offline']:.2f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {_counts(r['statuses'])} |")
        f = row.get("faults", {})
        faults.append(f"- {method}: offline {row['offline_pairs_per_s_batch32']:.1f} pairs/s; faults: "
                      f"{f.get('disconnects')} mid-request disconnects, malformed-body statuses {_counts(f.get('malformed'))}, "
                      f"burst {_counts(f.get('burst', {}).get('statuses'))}, healthy after: {f.get('healthy_after')}")
    return "\n".join(lines + [""] + faults)


# The router schemes add-domain offers, each with its leave-one-domain-out results file.
ADD_DOMAIN_FILES = {"head": "add_domain.json", "full": "add_domain_full.json"}


def add_domain_table() -> str | None:
    """One row per (router scheme, method, added domain), from ``ADD_DOMAIN_FILES``."""
    files = [RESULTS / name for name in ADD_DOMAIN_FILES.values()]
    runs = [json.loads(f.read_text()) for f in files if f.is_file()]
    if not runs:
        return None
    loads = ", ".join(f"{d.get('router_scheme')} {d['load_average_start'][0]:.2f}" for d in runs)
    lines = [f"Load average at the start of each scheme's latest run (it bears on the seconds, not on accuracy): {loads}.", "",
             "| router | method | added domain | added: routed acc. | five-domain: routed acc. | added minus five-domain [95% CI] "
             "| oracle acc. added / five | old domains: max oracle change | old weights identical | router acc. added / five "
             "| add s | retrain s | add / retrain |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in runs:
        for method in ("arliss", "rodos"):
            for domain, e in d.get(method, {}).items():
                diff = e["added_minus_full"]
                verdict = "within noise" if diff["within_noise"] else ("above" if diff["difference"] > 0 else "below")
                lines.append(
                    f"| {e['router_scheme']} | {method} | {domain} | {100 * e['added_accuracy']:.1f} | {100 * e['full_accuracy']:.1f} | "
                    f"{100 * diff['difference']:+.1f} [{100 * diff['interval'][0]:+.1f}, {100 * diff['interval'][1]:+.1f}] "
                    f"({verdict}) | {100 * e['added_oracle_accuracy']:.1f} / {100 * e['full_oracle_accuracy']:.1f} | "
                    f"{e['old_max_abs_change']:.2f} points | {e['old_weights_identical']} | "
                    f"{100 * e['router_accuracy']:.1f} / {100 * e['full_router_accuracy']:.1f} | {e['add_seconds']:.0f} | "
                    f"{e['retrain_seconds']:.0f} | {e['add_over_retrain']:.3f} |")
    notes = []
    for d in runs:
        for method in ("arliss", "rodos"):
            for domain, e in d.get(method, {}).items():
                run, name = e.get("router_run", {}), f"- {e['router_scheme']} {method} {domain}:"
                if run.get("evals") and run.get("steps"):
                    notes.append(f"{name} router validation accuracy "
                                 + ", ".join(f"{100 * v['accuracy']:.1f}% at step {v['step']}" for v in run["evals"])
                                 + f"; kept step {run['chosen_step']} of {run['steps']}.")
                if "added_router_accuracy" in e:
                    notes.append(f"{name} router accuracy on the added domain's test pairs "
                                 f"{100 * e['added_router_accuracy']:.1f}% (five-domain {100 * e['full_added_router_accuracy']:.1f}%).")
                if run.get("seconds") is not None:
                    part = e["add_train_seconds"] - run["seconds"]
                    notes.append(f"{name} of the {e['add_seconds']:.0f} s add, the new reward part trained {part:.0f} s "
                                 f"({100 * part / e['retrain_seconds']:.0f}% of retraining all five), the router "
                                 f"{run['seconds']:.0f} s{_router_prompts(run, e)}, the rest "
                                 f"{e['add_seconds'] - e['add_train_seconds']:.0f} s.")
    return "\n".join(lines + ([""] + notes if notes else []) + ["", *_add_domain_bar(runs)])


def _router_prompts(run: dict, e: dict) -> str:
    """Which prompts the router's body ran over in an addition (training.router_store)."""
    f = run.get("features")
    if run.get("scheme") != "head":
        return ""
    if not f:
        return " (over every domain's prompts: measured before checkpoints stored their router features)"
    once = e.get("four_domain_router_features")
    stored = f" (storing them in the four-domain checkpoint took {once['seconds']:.0f} s, once)" if once else ""
    return (f" (over the new domain's {sum(f['computed'].values())} prompts; the old domains' "
            f"{sum(f['reused'].values())} from the checkpoint's stored features{stored})")


# What makes an addition worth it over retraining: within 1.5 points of the five-domain model's
# accuracy on the added domain, for at most a quarter of the five-domain training time.
ADD_BAR_POINTS, ADD_BAR_SHARE = 1.5, 0.25


def _add_domain_bar(runs: list[dict]) -> list[str]:
    """Per router scheme, which (method, added domain) rows meet that bar on accuracy and on time."""
    out = []
    for d in runs:
        groups = {"within 1.5 points and at most 0.25 of retraining": [], "within 1.5 points, over 0.25 of retraining": [],
                  "more than 1.5 points below": [], "more than 1.5 points above": []}
        for method in ("arliss", "rodos"):
            for domain, e in d.get(method, {}).items():
                diff = 100 * e["added_minus_full"]["difference"]
                if abs(diff) <= ADD_BAR_POINTS:
                    key = ("within 1.5 points and at most 0.25 of retraining" if e["add_over_retrain"] <= ADD_BAR_SHARE
                           else "within 1.5 points, over 0.25 of retraining")
                else:
                    key = "more than 1.5 points below" if diff < 0 else "more than 1.5 points above"
                groups[key].append(f"{method} {domain}")
        out.append(f"- `{d.get('router_scheme')}` against the bar (added minus five-domain point estimate; add / retrain): "
                   + "; ".join(f"{k}: {', '.join(v)}" for k, v in groups.items() if v) + ".")
    return out


def _coverage(c: dict | None) -> str:
    """libFuzzer's edge and feature counts, and gcov line coverage of a replay of the inputs."""
    if not c:
        return "not measured"
    edges = f"cov {c['cov']:,}, ft {c['ft']:,}; " if c.get("cov") is not None else ""
    if c.get("line_coverage") is None:
        return edges + "lines not measured"
    files = ", ".join(f"{name} {f['executed']}/{f['lines']}" for name, f in c["files"].items())
    inputs = f"first {c['executions']:,} inputs" if "executions" in c else f"{c.get('corpus_units') or 0:,}-input corpus"
    return f"{edges}{100 * c['line_coverage']:.0f}% of lines ({files}; {inputs})"


def fuzz_table() -> str | None:
    path = RESULTS / "fuzz.json"
    if not path.is_file():
        return None
    d = json.loads(path.read_text())
    lines = [f"{d['engine']}; sanitizers {d['sanitizers']}; {d['compiler']}.", "",
             "| target | engine | commit | seconds | executions | executions/s | targets at a time | seed inputs "
             "| load at start | findings open | findings fixed | coverage |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in d["targets"]:
        rate = f"{t['executions'] / t['seconds']:,.0f}" if t.get("executions") and t["seconds"] else "-"
        engine = "libFuzzer" if t.get("engine", "").lower().startswith("libfuzzer") else "random driver"
        lines.append(f"| {t['target']} | {engine} | {t['commit']} | {t['seconds']:.0f} | {t.get('executions') or 0:,} | {rate} | "
                     f"{t['jobs']} | {t['seeds']} | {t['load_average_start']:.2f} | {t['open_findings']} | "
                     f"{len(t['findings_fixed'])} | {_coverage(t.get('coverage'))} |")
    return "\n".join(lines)


def profile_section() -> str | None:
    """results/profile.md, and how a call compares with the run at another micro-batch budget
    (``results/profile_<max_tokens>/``, e.g. the 8192 tokens the engine used before)."""
    body = _md_file("profile.md")
    if body is None:
        return None
    now = json.loads((RESULTS / "profile.json").read_text())
    for path in sorted(RESULTS.glob("profile_*/profile.json")):
        other = json.loads(path.read_text())
        common = [m for m in now["methods"] if m in other["methods"]]
        if not common:
            continue

        def span(run, key):
            values = [key(run["methods"][m]) for m in common]
            return min(values), max(values)

        def ms(r):
            return r["per_call_ms"]["score"]

        ratio = [ms(other["methods"][m]) / ms(now["methods"][m]) for m in common]
        pad_o, pad_n = (span(run, lambda r: 100 * r["padding_share"]) for run in (other, now))
        ms_o, ms_n = span(other, ms), span(now, ms)
        body += (f"\n\nAgainst `{path.parent.relative_to(ROOT)}` (micro-batches of at most {other['max_tokens']} "
                 f"padded tokens, load {other['load_average_start'][0]:.2f} at its start): a call took "
                 f"{ms_o[0]:.0f}-{ms_o[1]:.0f} ms with {pad_o[0]:.0f}-{pad_o[1]:.0f}% padding there and "
                 f"{ms_n[0]:.0f}-{ms_n[1]:.0f} ms with {pad_n[0]:.0f}-{pad_n[1]:.0f}% here, "
                 f"{min(ratio):.2f}-{max(ratio):.2f}x as long there ({', '.join(common)}).")
    return body


def _interval(low: float, high: float, signed: bool = False) -> str:
    fmt = "+.1f" if signed else ".1f"
    return f"[{100 * low:{fmt}}, {100 * high:{fmt}}]"


def _millions(n: int) -> str:
    return f"{n / 1e6:.1f}M"


# The README's speed line: ARLISS as bundles serve it against the same model in PyTorch + PEFT.
SPEED_ENGINES = {"routerm-ort-optimized": "fp32 bundle (the default export)", "routerm-ort-int8": "int8 bundle"}
SPEED_REFERENCE = "peft-eager"


def _arliss_speed(path: Path) -> list[str]:
    """ARLISS's bundles against PEFT-eager per batch size: median speed-up over rounds and its range."""
    if not path.is_file():
        return []
    d = json.loads(path.read_text())
    records = [r for r in d["records"] if r["method"] == "arliss"]
    peft = {r["batch_size"]: r for r in records if r["engine"] == SPEED_REFERENCE}
    sizes = sorted(peft)
    rows = []
    for engine, label in SPEED_ENGINES.items():
        mine = {r["batch_size"]: r for r in records if r["engine"] == engine}
        cells = []
        for b in sizes:
            s = b in mine and paired_speedup(mine[b]["round_ms"], peft[b]["round_ms"])
            cells.append(f"**{s['median']:.2f}x** ({s['low']:.2f}-{s['high']:.2f})" if s else "-")
        if any(c != "-" for c in cells):
            rows.append(f"| {label} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    m, c = d["machine"], d["config"]
    same = all(r["accuracy"] == peft[r["batch_size"]]["accuracy"] for r in records
               if r["engine"] in SPEED_ENGINES and r["batch_size"] in peft)
    return ["", "| ARLISS throughput over PEFT-eager | " + " | ".join(f"batch {b}" for b in sizes) + " |",
            "|---|" + "---:|" * len(sizes), *rows, "",
            f"PEFT-eager: the same checkpoint in PyTorch with PEFT adapters, one batch per call. Median speed-up over "
            f"{c['repeats']} interleaved rounds (range in parentheses), {c['requests']} test pairs, {m['cpu']}, "
            f"{m['threads']} threads; accuracy on those pairs {'the same' if same else 'differs'}. "
            f"More engines and methods: [benchmarks](docs/benchmarks.md)."]


def summary_section() -> str | None:
    """The README's one results table: mean test accuracy per method, its difference from the
    baseline (paired bootstrap), parameters; then ARLISS's speed against PEFT-eager."""
    path = RESULTS / "accuracy.json"
    if not path.is_file():
        return None
    d = json.loads(path.read_text())
    lines = ["| method | mean accuracy % [95% CI] | minus baseline, points [95% CI] | params total / active |",
             "|---|---|---|---|"]
    for method, r in d["methods"].items():
        vs = d.get("vs_baseline", {}).get(method)
        diff = "-" if vs is None else (f"{100 * vs['difference']:+.1f} {_interval(*vs['interval'], signed=True)}"
                                       + (" (within noise)" if vs["within_noise"] else ""))
        lines.append(f"| {method} | **{100 * r['mean_accuracy']:.1f}** {_interval(*r['mean_ci'])} | {diff} | "
                     f"{_millions(r['params_total'])} / {_millions(r['params_active'])} |")
    lines += ["", "Pairwise accuracy on the test split of the five domains, averaged over domains; 95% bootstrap "
                  "intervals over prompts. Per domain, routing and the recipe: [accuracy](docs/accuracy.md)."]
    return "\n".join(lines + _arliss_speed(RESULTS / "latency.json"))


SECTIONS = {
    "summary": summary_section,
    "accuracy": lambda: _md_file("accuracy.md"),
    "export": export_table,
    "int8": lambda: _md_file("int8_sensitivity.md"),
    "engine": engine_table,
    "latency": lambda: _md_file("latency.md"),
    "profile": profile_section,
    "kernels": kernels_table,
    "footprint": footprint_table,
    "serve": serve_table,
    "add_domain": add_domain_table,
    "fuzz": fuzz_table,
    "large_model": lambda: _md_file("large_model.md"),
    "tokenizer_parity": lambda: _md_file("tokenizer_parity.md"),
    "tokenizer_speed": lambda: _md_file("tokenizer_speed.md"),
}


# Which page holds which generated blocks (paths relative to the repository root).
PAGES = {
    "README.md": ("summary",),
    "docs/accuracy.md": ("accuracy", "engine"),
    "docs/export.md": ("export", "int8"),
    "docs/serving.md": ("footprint", "serve"),
    "docs/add-domain.md": ("add_domain",),
    "docs/c-library.md": ("tokenizer_parity", "tokenizer_speed", "fuzz"),
    "docs/benchmarks.md": ("latency", "large_model", "profile", "kernels"),
}


def render(text: str, names=tuple(SECTIONS)) -> str:
    """``text`` with the blocks ``names`` regenerated (the others untouched)."""
    for name in names:
        make = SECTIONS[name]
        pattern = re.compile(rf"(<!-- results:{name} -->).*?(<!-- /results:{name} -->)", re.S)
        body = make() or f"_Not measured yet: `results/` has no {name} file._"
        text = pattern.sub(lambda m: f"{m.group(1)}\n{body}\n{m.group(2)}", text)
    return text


def main() -> int:
    for page, names in PAGES.items():
        path = ROOT / page
        path.write_text(render(path.read_text(), names))
        print(f"rendered {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
