"""A reward model at real size: a random-weight model of the Qwen3-0.6B shape, imported as a
Hugging Face reward model would be and served at fp32, int8 and int4, beside HF eager and Optimum ORT.

    python benchmarks/large_model.py [--rounds 5] [--threads 2] [--work build/large] [--layers 28]

Writes ``results/large_model.json`` (one record per engine and batch size) and
``results/large_model.md`` (the table docs/benchmarks.md shows). Run it alone: its figures are
worthless beside a test suite (the load average is recorded at start and end).

* **The model**: ``Qwen3ForSequenceClassification`` with Qwen3-0.6B's shape (28 layers, hidden
  1024, 16 query and 8 key/value heads of 128, FFN 3072, a 151,936-token vocabulary, tied
  embeddings), ``num_labels`` 1, random weights, and a byte-level BPE tokenizer with the Qwen2
  regex trained here on the vendored text, with a ChatML template. Speed and memory do not depend
  on the weights; decision agreement and accuracy do, so none is reported: the int8 and int4
  bundles are marked unvalidated, as any import is.
* **Export**: ``export.from_hf.import_bundle`` at 256 tokens per row; export seconds and bundle MB.
* **Engines**, each in its own process (load seconds, peak RSS): ``routerm-<precision>``
  (``RewardEngine``: tokenizing, micro-batching and scoring included), ``hf-eager`` (the HF model in
  PyTorch, sdpa attention, as a user loads it) and ``optimum-ort`` (``ORTModelForSequenceClassification``
  on the fp32 bundle's graph); the last two are fed ids made by the same ``core.formats`` call, so
  every engine tokenizes the same way inside the timed call.
* **Rows**: 256 tokens each (long vendored texts cut to the bundle's 256); a *pair* is one
  (prompt, response) row. Batch 1 and 4; rounds interleave the engines so load changes hit all alike.
* **GEMM share**: the model's matmul FLOPs per call (linear layers and attention) over the call's
  time, divided by the GEMM rate measured in the same run on the model's own shapes (fp32 through
  ONNX Runtime; int8 and int4 engines against the int8 ``MatMulInteger`` rate, the arithmetic
  they run).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QWEN3_06B = dict(hidden_size=1024, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                 intermediate_size=3072, vocab_size=151936, max_position_embeddings=40960, rope_theta=1e6,
                 rms_norm_eps=1e-6, tie_word_embeddings=True)
PRECISIONS = ("fp32", "int8", "int4")
ENGINES = tuple(f"routerm-{p}" for p in PRECISIONS) + ("hf-eager", "optimum-ort")
ROW_TOKENS = 256
WORKER_TIMEOUT_S = 1800
BATCHES = (1, 4)
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
               r"|\s+(?!\S)|\s+")


def texts(n: int = 400) -> list[str]:
    from core.data import DOMAINS, load_domain
    out = []
    for domain in DOMAINS:
        for pair in load_domain(domain)[: n // len(DOMAINS)]:
            out += [pair.prompt, pair.chosen]
    return out


def build_model(out: Path, layers: int, vocab: int | None) -> Path:
    """The random Qwen3-0.6B-shape reward model with its tokenizer (built once, then reused)."""
    if (out / "config.json").is_file():
        return out
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForSequenceClassification
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN2_REGEX), "isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok.train_from_iterator(texts(), trainers.BpeTrainer(vocab_size=4000, special_tokens=specials,
                                                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHATML
    shape = {**QWEN3_06B, "num_hidden_layers": layers, **({"vocab_size": vocab} if vocab else {})}
    config = Qwen3Config(**shape, num_labels=1, pad_token_id=fast.pad_token_id, eos_token_id=fast.eos_token_id)
    torch.manual_seed(0)
    model = Qwen3ForSequenceClassification(config).eval()
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp)
    fast.save_pretrained(tmp)
    tmp.rename(out)
    return out


def export_all(model: Path, work: Path) -> dict:
    """{precision: bundle path} (reused when present); export seconds and MB are in each manifest."""
    from export.from_hf import ImportSpec, import_bundle
    out = {}
    for precision in PRECISIONS:
        bundle = work / f"bundle-{precision}"
        if not (bundle / "manifest.json").is_file():
            import_bundle(ImportSpec("baseline", (("general", model),), precision=precision, max_length=ROW_TOKENS), bundle)
        out[precision] = bundle
    return out


def rows(n: int) -> tuple[list[str], list[str]]:
    """``n`` rows long enough that every one is cut to ROW_TOKENS."""
    pool = texts()
    long = [" ".join(pool[i:i + 6]) for i in range(0, 6 * n, 6)]
    return long[:n], long[::-1][:n]


# --- workers ---------------------------------------------------------------------------------------

class _Ids:
    """Rows -> padded int64 ids, as the fp32 bundle reads them (core.formats), for the non-RouteRM engines."""

    def __init__(self, model: Path, bundle: Path):
        from transformers import AutoTokenizer
        from core.chat import ChatFormat
        from core.formats import TextFormat
        from core.manifest import load_manifest
        manifest = load_manifest(bundle)
        tok = AutoTokenizer.from_pretrained(model)
        chat = ChatFormat.from_dict(manifest.tokenizer["chat_template"], str(bundle))
        self.fmt = TextFormat(tok, manifest.max_length, manifest.tokenizer["pad_token_id"], chat=chat)

    def __call__(self, prompts, responses) -> dict:
        from core.formats import encode_rows
        from core.text import collate_numpy
        return collate_numpy(encode_rows(self.fmt, prompts, responses), self.fmt.pad_id)


def make_engine(name: str, model: Path, bundles: dict, threads: int):
    """``score(prompts, responses) -> rewards`` for one engine."""
    if name.startswith("routerm-"):
        from runtime import RewardEngine
        engine = RewardEngine.from_bundle(bundles[name.split("-", 1)[1]], threads=threads)
        return lambda p, r: engine.score(p, r).rewards
    ids = _Ids(model, bundles["fp32"])
    if name == "hf-eager":
        import torch
        from transformers import AutoModelForSequenceClassification
        hf = AutoModelForSequenceClassification.from_pretrained(model).eval()

        def hf_score(p, r):
            with torch.inference_mode():
                return hf(**{k: torch.from_numpy(v) for k, v in ids(p, r).items()}).logits[:, 0].numpy()
        return hf_score
    import onnxruntime
    from optimum.onnxruntime import ORTModelForSequenceClassification
    from transformers import AutoConfig
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = onnxruntime.InferenceSession(str(bundles["fp32"] / "reward.onnx"), options, providers=["CPUExecutionProvider"])
    ort_model = ORTModelForSequenceClassification(config=AutoConfig.from_pretrained(model), session=session,
                                                  use_io_binding=False, model_save_dir=str(bundles["fp32"]))
    import numpy as np
    return lambda p, r: np.asarray(ort_model(**ids(p, r)).logits)[:, 0]


def worker(conn, name: str, model: str, bundles: dict, threads: int) -> None:
    """Load one engine, then answer ("time", batch, repeats) with call times in ms until ("stop",)."""
    import torch
    from benchmarks.latency_engines import _peak_rss_mb, _reset_peak, _status_mb
    torch.set_num_threads(threads)
    _reset_peak()
    base = _status_mb("VmRSS") or 0.0
    start = time.perf_counter()
    try:
        score = make_engine(name, Path(model), {k: Path(v) for k, v in bundles.items()}, threads)
        prompts, responses = rows(max(BATCHES))
        score(prompts[:1], responses[:1])                   # first runs allocate
    except Exception as exc:  # reported to the parent, which stops the run naming the engine
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
        return
    conn.send({"load_s": time.perf_counter() - start})
    while True:
        message = conn.recv()
        if message[0] != "time":
            peak = _peak_rss_mb()
            conn.send({"peak_rss_mb": peak, "model_rss_mb": peak - base})
            return
        _, batch, repeats = message
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            score(prompts[:batch], responses[:batch])
            times.append((time.perf_counter() - t0) * 1e3)
        conn.send({"ms": times})


# --- measuring -------------------------------------------------------------------------------------

def matmul_flops(config: dict, tokens_per_row: int, batch: int) -> float:
    """Matmul FLOPs of one call: every linear layer over every token, plus attention's two products."""
    h, d, layers = config["hidden_size"], config["head_dim"], config["num_hidden_layers"]
    q, kv, ffn = config["num_attention_heads"] * d, config["num_key_value_heads"] * d, config["intermediate_size"]
    linear = layers * (h * q + 2 * h * kv + q * h + 3 * h * ffn)
    tokens = batch * tokens_per_row
    attention = layers * batch * 2 * 2 * tokens_per_row * tokens_per_row * q
    return 2.0 * tokens * linear + attention


def gemm_rates(config: dict, threads: int) -> dict:
    """Best measured GFLOP/s (fp32, int8) on the model's dense shapes at the batches timed."""
    from benchmarks.latency_machine import best, gemm_shapes, measure_gemm
    records = []
    for batch in BATCHES:
        records += measure_gemm(gemm_shapes(batch * ROW_TOKENS, config["hidden_size"], config["intermediate_size"]),
                                threads, int8=True)
    return {"fp32": best(records, "fp32"), "int8": best(records, "int8"), "records": records}


def time_engines(workers: dict, rounds: int, repeats: dict) -> dict:
    """{(engine, batch): {"ms": [...], "rounds": [pairs/s per round]}}, engines interleaved in every round."""
    out = {(e, b): {"ms": [], "rounds": []} for e in workers for b in BATCHES}
    for r in range(rounds):
        for batch in BATCHES:
            for engine, conn in workers.items():
                conn.send(("time", batch, repeats[batch]))
                ms = conn.recv()["ms"]
                out[(engine, batch)]["ms"] += ms
                out[(engine, batch)]["rounds"].append(round(batch * len(ms) / (sum(ms) / 1e3), 4))
        print(f"round {r + 1}/{rounds} done", flush=True)
    return out


def records_of(timed: dict, loads: dict, peaks: dict, bundles: dict, config: dict, rates: dict) -> list[dict]:
    from core.manifest import load_manifest
    out = []
    for (engine, batch), t in timed.items():
        precision = engine.split("-", 1)[1] if engine.startswith("routerm-") else "fp32"
        manifest = load_manifest(bundles[precision], verify=False)
        p50 = statistics.median(t["ms"])
        rate = rates["int8" if precision in ("int8", "int4") else "fp32"]
        achieved = matmul_flops(config, ROW_TOKENS, batch) / (p50 / 1e3) / 1e9
        out.append({
            "engine": engine, "precision": precision, "batch_size": batch, "row_tokens": ROW_TOKENS,
            "bundle_mb": manifest.export["figures"]["bundle_mb"] if engine.startswith("routerm-") else None,
            "export_s": manifest.export["figures"]["export_seconds"] if engine.startswith("routerm-") else None,
            "load_s": round(loads[engine], 2), "peak_rss_mb": round(peaks[engine]["peak_rss_mb"], 1),
            "p50_ms": round(p50, 1), "p95_ms": round(sorted(t["ms"])[min(len(t["ms"]) - 1, int(0.95 * len(t["ms"])))], 1),
            "pairs_per_s": round(batch / (p50 / 1e3), 3), "pairs_per_s_rounds": t["rounds"],
            "gflops": round(achieved, 1), "gemm_share": round(achieved / rate, 3), "calls": len(t["ms"]),
        })
    return out


COMPARED = (("routerm-int8", "routerm-fp32"), ("routerm-int4", "routerm-fp32"), ("routerm-fp32", "optimum-ort"),
            ("routerm-fp32", "hf-eager"))


def ratios(data: dict, batch: int) -> list[str]:
    """Per-round pairs/s ratios of COMPARED engines at ``batch``, said in words when within noise."""
    by = {(r["engine"], r["batch_size"]): r["pairs_per_s_rounds"] for r in data["records"]}
    out = []
    for a, b in COMPARED:
        if (a, batch) not in by or (b, batch) not in by:
            continue
        per = [x / y for x, y in zip(by[(a, batch)], by[(b, batch)])]
        noise = " (within noise: the rounds fall on both sides of 1)" if min(per) <= 1 <= max(per) else ""
        out.append(f"- {a} / {b} at batch {batch}: {statistics.median(per):.2f}x "
                   f"(rounds {min(per):.2f}-{max(per):.2f}){noise}")
    return out


def markdown(data: dict) -> str:
    lines = ["| engine | batch | pairs/s | p50 ms | p95 ms | GEMM share | bundle MB | export s | load s | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in data["records"]:
        def opt(v):
            return "-" if v is None else f"{v:g}"
        lines.append(f"| {r['engine']} | {r['batch_size']} | {r['pairs_per_s']:.3f} | {r['p50_ms']:.0f} | "
                     f"{r['p95_ms']:.0f} | {r['gemm_share']:.2f} | {opt(r['bundle_mb'])} | {opt(r['export_s'])} | "
                     f"{r['load_s']:.1f} | {r['peak_rss_mb']:.0f} |")
    m = data["machine"]
    lines += ["", "Pairs/s ratios, median over rounds (each round times every engine in turn):", "",
              *ratios(data, max(BATCHES))]
    lines += ["", f"A random-weight `Qwen3ForSequenceClassification` of Qwen3-0.6B's shape ({data['params_m']:.0f}M "
                  f"parameters, {data['config']['num_hidden_layers']} layers), {ROW_TOKENS}-token rows, "
                  f"{m['threads']} threads on {m['cpu']}; load average {m['load_before_timing']} before timing (two minutes "
                  f"after the exports and loads), {m['load_end']} at the end; measured GEMM rate {data['gemm']['fp32']:.0f} GFLOP/s fp32, {data['gemm']['int8']:.0f} "
                  f"GOP/s int8. GEMM share: matmul FLOPs per second over that rate (int8 and int4 engines over the "
                  f"int8 rate). Random weights give speed and memory only: decision agreement and accuracy need real "
                  f"weights, so the int8 and int4 bundles are unvalidated. Written by `python benchmarks/large_model.py`."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "large")
    parser.add_argument("--layers", type=int, default=QWEN3_06B["num_hidden_layers"], help="fewer for a smoke run")
    parser.add_argument("--vocab", type=int, help="a smaller vocabulary for a smoke run")
    parser.add_argument("--out", type=Path, default=ROOT / "results", help="where large_model.{json,md} go")
    parser.add_argument("--render", action="store_true", help="only rewrite large_model.md from large_model.json")
    args = parser.parse_args(argv)
    if args.render:
        (args.out / "large_model.md").write_text(markdown(json.loads((args.out / "large_model.json").read_text())))
        return 0
    from benchmarks.latency_machine import cpu_name
    load_start = os.getloadavg()[0]
    args.work.mkdir(parents=True, exist_ok=True)
    model = build_model(args.work / f"qwen3-0.6b-shape-{args.layers}l{'-v%d' % args.vocab if args.vocab else ''}",
                        args.layers, args.vocab)
    bundles = export_all(model, args.work / model.name)
    config = json.loads((model / "config.json").read_text())
    ctx = mp.get_context("spawn")
    workers, loads, procs = {}, {}, []
    for name in ENGINES:                         # one at a time: loading is timed alone too
        here, there = ctx.Pipe()
        proc = ctx.Process(target=worker, args=(there, name, str(model), {k: str(v) for k, v in bundles.items()},
                                                args.threads), daemon=True)
        proc.start()
        procs.append(proc)
        if not here.poll(WORKER_TIMEOUT_S):
            raise SystemExit(f"engine {name} did not load within {WORKER_TIMEOUT_S}s (exit code {proc.exitcode})")
        reply = here.recv()
        if "error" in reply:
            raise SystemExit(f"engine {name} failed to load: {reply['error']}")
        loads[name] = reply["load_s"]
        workers[name] = here
    time.sleep(120)                      # let the load of exporting and loading decay before timing
    load_timing = os.getloadavg()[0]
    rates = gemm_rates(config, args.threads)
    timed = time_engines(workers, args.rounds, {1: 3, 4: 2})
    peaks = {}
    for name, conn in workers.items():
        conn.send(("stop",))
        peaks[name] = conn.recv()
    for proc in procs:
        proc.join(timeout=60)
    params = json.loads((bundles["fp32"] / "manifest.json").read_text())["params"]["total"]
    data = {"config": config, "params_m": params / 1e6, "gemm": rates,
            "machine": {"cpu": cpu_name(), "threads": args.threads, "load_start": round(load_start, 2),
                        "load_before_timing": round(load_timing, 2), "load_end": round(os.getloadavg()[0], 2)},
            "records": records_of(timed, loads, peaks, bundles, config, rates)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "large_model.json").write_text(json.dumps(data, indent=2) + "\n")
    (args.out / "large_model.md").write_text(markdown(data))
    print(markdown(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
