"""``routerm SUBCOMMAND [ARGS...]``: one command line over the pipeline, shaped like ``vllm serve`` or
``optimum-cli export onnx``.

Each subcommand is a thin front: it hands its arguments unchanged to the entry point that
``python -m runtime``, ``python -m training``, ``python export/to_onnx.py`` and
``python benchmarks/latency.py`` run, so the two spellings take the same flags and cannot drift.
Entry points are imported only when their subcommand runs: ``routerm serve`` on a serving-only
install never imports torch, and ``routerm --help`` imports nothing heavy.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Subcommand:
    """``module.main(prefix + args)`` runs it; ``extra`` names the pip extra it needs ("" = the core install)."""

    module: str
    prefix: tuple[str, ...]
    help: str
    extra: str


SUBCOMMANDS = {
    "serve": Subcommand("runtime.__main__", ("serve",), "HTTP reward server over a bundle", "serve"),
    "score": Subcommand("runtime.__main__", ("score",), "score a JSONL file of pairs with a bundle", ""),
    "export": Subcommand("export.to_onnx", (), "export a trained checkpoint to an ONNX bundle", "export"),
    "train": Subcommand("training.__main__", ("train",), "train a method (baseline, more, rodos, arliss)", "train"),
    "add-domain": Subcommand("training.__main__", ("add-domain",),
                             "grow a RODOS or ARLISS checkpoint by one domain", "train"),
    "bench": Subcommand("benchmarks.latency", (), "latency benchmark of bundles against eager PyTorch", "bench"),
}


OUR_PACKAGES = {"core", "models", "training", "export", "runtime", "kernels", "benchmarks", "lab", "routerm"}


def _spec(extra: str) -> str:
    return f"routerm[{extra}]" if extra else "routerm"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="routerm", description="Train, export and serve domain-routed reward models.",
        epilog="`routerm SUBCOMMAND --help` shows that subcommand's flags.")
    sub = p.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    for name, cmd in SUBCOMMANDS.items():
        sub.add_parser(name, help=cmd.help, add_help=False)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in SUBCOMMANDS:
        parser().parse_args(argv)     # prints the help, or the error naming the unknown subcommand
        return 2
    name, rest = argv[0], argv[1:]    # everything after the name is the entry point's, flags included
    cmd = SUBCOMMANDS[name]
    try:
        entry = importlib.import_module(cmd.module)
    except ImportError as exc:
        if (exc.name or "").split(".")[0] in OUR_PACKAGES:
            raise                     # a defect of ours, not a missing extra: show the real trace
        print(f"routerm {name}: {exc.name or exc} is not installed; "
              f"install it with: pip install '{_spec(cmd.extra)}'", file=sys.stderr)
        return 2
    return entry.main([*cmd.prefix, *rest]) or 0
