"""``python -m runtime score --bundle DIR --input pairs.jsonl --output rewards.jsonl``
(``python -m runtime serve --bundle DIR``: the HTTP server, see runtime.server)

Streams a JSONL file through a :class:`RewardEngine` in chunks, with a progress bar. Each input
line is a JSON object with ``prompt`` and ``response`` (written back as ``reward``), or ``prompt``,
``chosen`` and ``rejected`` (written back as ``reward_chosen``, ``reward_rejected`` and
``p_chosen`` = sigmoid(reward_chosen - reward_rejected)); ``id`` is copied through, blank lines are
skipped, ``-`` is stdin/stdout. Every output line also carries the ``domain`` used (null for
baseline/MoRE). A malformed line stops the run with an error naming its line number (exit 2);
the chunks before it are already written.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from contextlib import nullcontext
from pathlib import Path

from core.errors import BundleError, ProviderError
from core.inputs import json_object
from core.scoring import DEFAULT_MAX_TOKENS, sigmoid

from .engine import RewardEngine
from .server import DEFAULT_HOST, DEFAULT_PORT, ServerConfig, serve as run_server

# ``score --batch-size``: input lines per chunk (each chunk is written before the next is read, so
# memory stays flat on large files) and rows per model run; routerm-score's --batch (src/cli) too.
DEFAULT_BATCH_SIZE = 64


class InputError(ValueError):
    """A malformed input line; the message names the file and line number."""


def parse_line(text: str, where: str) -> dict | None:
    """One input line -> {"id"?, "prompt", "response"} or {"id"?, "prompt", "chosen", "rejected"}; None if blank."""
    if not text.strip():
        return None
    obj = json_object(text, where, InputError)
    if "response" in obj:
        fields = ("prompt", "response")
    elif "chosen" in obj or "rejected" in obj:
        fields = ("prompt", "chosen", "rejected")
    else:
        fields = ("prompt", "response")
    for field in fields:
        if field not in obj:
            raise InputError(f"{where}: missing field '{field}' (a line needs 'prompt' and 'response', "
                             f"or 'prompt', 'chosen' and 'rejected')")
        if not isinstance(obj[field], str):
            raise InputError(f"{where}: field '{field}' must be a string, got {type(obj[field]).__name__}")
    row = {k: obj[k] for k in fields}
    if "id" in obj:
        row["id"] = obj["id"]
    return row


def score_rows(engine: RewardEngine, rows: list[dict]) -> list[dict]:
    """Score a chunk: pairs contribute two rows (same prompt, hence the same routed domain)."""
    prompts, responses = [], []
    for row in rows:
        if "response" in row:
            prompts.append(row["prompt"])
            responses.append(row["response"])
        else:
            prompts += [row["prompt"], row["prompt"]]
            responses += [row["chosen"], row["rejected"]]
    result = engine.score(prompts, responses)
    out, k = [], 0
    for row in rows:
        record = {"id": row["id"]} if "id" in row else {}
        if "response" in row:
            record |= {"reward": float(result.rewards[k]), "domain": result.domains[k]}
            k += 1
        else:
            r_c, r_r = float(result.rewards[k]), float(result.rewards[k + 1])
            record |= {"reward_chosen": r_c, "reward_rejected": r_r,
                       "p_chosen": sigmoid(r_c - r_r), "domain": result.domains[k]}
            k += 2
        out.append(record)
    return out


def _count_lines(path: str) -> int | None:
    if path == "-":
        return None
    with open(path, "rb") as fh:
        return sum(1 for _ in fh)


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n: int) -> None:
        pass


def _progress(total: int | None, enabled: bool):
    """A tqdm bar on stderr; the core install has no tqdm, so say once that progress is off."""
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        print("routerm-score: no progress bar (tqdm is not installed: pip install 'routerm[cli]')", file=sys.stderr)
        return _NoBar()
    return tqdm(total=total, unit="line", file=sys.stderr)


def score_file(engine: RewardEngine, input_path: str, output_path: str, chunk: int, progress: bool = True) -> int:
    """Stream ``input_path`` to ``output_path``; returns the number of records written."""
    name = "<stdin>" if input_path == "-" else input_path
    written = 0
    # invalid UTF-8 bytes become lone surrogates here, which the engine replaces by U+FFFD
    if input_path == "-":
        sys.stdin.reconfigure(encoding="utf-8", errors="surrogateescape")
    src = nullcontext(sys.stdin) if input_path == "-" else open(input_path, encoding="utf-8", errors="surrogateescape")
    dst = nullcontext(sys.stdout) if output_path == "-" else open(output_path, "w", encoding="utf-8")
    with src as fin, dst as fout, _progress(total=_count_lines(input_path), enabled=progress) as bar:
        pending: list[dict] = []

        def flush():
            nonlocal written
            for record in score_rows(engine, pending):
                fout.write(json.dumps(record) + "\n")  # ASCII: ids with bad bytes stay writable
            written += len(pending)
            pending.clear()

        for number, line in enumerate(fin, 1):
            row = parse_line(line, f"{name} line {number}")
            bar.update(1)
            if row is not None:
                pending.append(row)
            if len(pending) >= chunk:
                flush()
        if pending:
            flush()
    return written


def _add_server_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per ServerConfig field (``max_wait_ms`` -> ``--max-wait-ms``): its type, default and help."""
    for limit in dataclasses.fields(ServerConfig):
        parser.add_argument("--" + limit.name.replace("_", "-"), type=type(limit.default), default=limit.default,
                            help=f"{limit.metadata['help']} (default: %(default)s)")


def server_config(args: argparse.Namespace) -> ServerConfig:
    """The ServerConfig that ``serve``'s flags (one per field, :func:`_add_server_flags`) describe."""
    return ServerConfig(**{limit.name: getattr(args, limit.name) for limit in dataclasses.fields(ServerConfig)})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m runtime", description="Serve RouteRM rewards from a bundle.")
    sub = parser.add_subparsers(dest="command", required=True)
    score = sub.add_parser("score", help="score a JSONL file of (prompt, response) or (prompt, chosen, rejected)")
    score.add_argument("--bundle", required=True, help="bundle directory (export/to_onnx.py writes one)")
    score.add_argument("--input", required=True, help="JSONL input, '-' for stdin")
    score.add_argument("--output", required=True, help="JSONL output, '-' for stdout")
    score.add_argument("--backend", choices=("onnxruntime", "torch"), default="onnxruntime")
    score.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                       help="rows per model run and input lines per chunk (default: %(default)s)")
    score.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS,
                       help="padded tokens per model run (default: %(default)s)")
    score.add_argument("--providers", nargs="+", default=None, help="e.g. cuda cpu (default: best available)")
    score.add_argument("--threads", type=int, default=None, help="intra-op threads")
    score.add_argument("--allow-fallback", action="store_true", help="run elsewhere if a named provider is missing")
    score.add_argument("--quiet", action="store_true", help="no progress bar")
    serve = sub.add_parser("serve", help="HTTP reward server (TEI /predict, OpenRLHF /get_reward, /v1/rewards)")
    serve.add_argument("--bundle", required=True, help="bundle directory")
    serve.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on (default: %(default)s)")
    serve.add_argument("--threads", type=int, default=None, help="intra-op threads")
    serve.add_argument("--providers", nargs="+", default=None, help="e.g. cuda cpu (default: best available)")
    _add_server_flags(serve)
    return parser


def _serve(args: argparse.Namespace) -> int:
    try:
        run_server(args.bundle, args.host, args.port, server_config(args), threads=args.threads,
                   providers=args.providers)
    except ImportError as exc:
        print(f"error: the server needs starlette and uvicorn (pip install 'routerm[serve]'): {exc}", file=sys.stderr)
        return 1
    except (BundleError, ProviderError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.command == "serve":
        return _serve(args)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be positive, got {args.batch_size}")
    if args.input != "-" and not Path(args.input).is_file():
        parser.error(f"--input '{args.input}' is not a file")
    try:
        engine = RewardEngine.from_bundle(args.bundle, backend=args.backend, providers=args.providers,
                                          threads=args.threads, allow_fallback=args.allow_fallback,
                                          max_tokens=args.max_tokens, batch_size=args.batch_size)
        n = score_file(engine, args.input, args.output, args.batch_size, progress=not args.quiet)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (BundleError, ProviderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"scored {n} records -> {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
