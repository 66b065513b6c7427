"""Preference data: load, validate and split the five vendored reward domains.

Each line of ``data/preferences/<domain>.jsonl.gz`` is one JSON object::

    {"id": str, "domain": str, "source": str, "prompt": str, "chosen": str, "rejected": str, "meta": {...}}

A bad line is a :class:`DataError` naming the file, the line and the field. The split is by
prompt (several pairs share a prompt: GSM8K, QA-Feedback), deterministic (sha256 of the prompt),
and exact: whole prompt groups go to test until it holds at least ``test_fraction`` of the
domain's pairs, then to validation, the rest to train.
"""
from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from core.errors import DataError
from core.inputs import json_object

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "preferences"
DOMAINS = ("helpfulness", "harmlessness", "long_form_qa", "math", "instruction_following")
SPLITS = ("train", "validation", "test")
_REQUIRED_STR = ("id", "domain", "prompt", "chosen", "rejected")


@dataclass(frozen=True)
class Pair:
    id: str
    domain: str
    prompt: str
    chosen: str
    rejected: str


@dataclass(frozen=True)
class SplitConfig:
    test_fraction: float = 0.15
    validation_fraction: float = 0.10
    min_test_pairs: int = 100
    seed: str = "routerm-v1"


def _parse_line(line: str, where: str, domain: str) -> Pair:
    obj = json_object(line, where, DataError)
    for field in _REQUIRED_STR:
        if field not in obj:
            raise DataError(f"{where}: missing field '{field}'")
        if not isinstance(obj[field], str):
            raise DataError(f"{where}: field '{field}' must be a string, got {type(obj[field]).__name__}")
    for field in ("chosen", "rejected"):
        if not obj[field].strip():
            raise DataError(f"{where}: field '{field}' is empty")
    if obj["domain"] != domain:
        raise DataError(f"{where}: field 'domain' is '{obj['domain']}' but the file holds domain '{domain}'")
    if obj["chosen"] == obj["rejected"]:
        raise DataError(f"{where}: fields 'chosen' and 'rejected' are identical")
    return Pair(obj["id"], domain, obj["prompt"], obj["chosen"], obj["rejected"])


def load_domain(domain: str, data_dir: Path | str = DATA_DIR) -> list[Pair]:
    """All pairs of one domain, validated line by line."""
    return load_pairs_file(Path(data_dir) / f"{domain}.jsonl.gz", domain)


def load_pairs_file(path: Path | str, domain: str) -> list[Pair]:
    """All pairs of ``path`` (JSONL, gzipped if it ends in .gz), each line's ``domain`` must be ``domain``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (domain '{domain}')")
    opener = gzip.open if path.suffix == ".gz" else open
    pairs, seen = [], set()
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                pair = _parse_line(line, f"{path}:{lineno}", domain)
                if pair.id in seen:
                    raise DataError(f"{path}:{lineno}: duplicate id '{pair.id}'")
                seen.add(pair.id)
                pairs.append(pair)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable ({exc})") from None
    if not pairs:
        raise DataError(f"{path}: holds no pairs")
    return pairs


def _prompt_key(prompt: str, seed: str) -> str:
    return hashlib.sha256(f"{seed}\0{prompt}".encode("utf-8")).hexdigest()


def split_pairs(pairs: list[Pair], config: SplitConfig = SplitConfig()) -> dict[str, list[Pair]]:
    """Split one domain's pairs by prompt into train/validation/test (deterministic)."""
    groups: dict[str, list[Pair]] = {}
    for pair in pairs:
        groups.setdefault(pair.prompt, []).append(pair)
    order = sorted(groups, key=lambda p: _prompt_key(p, config.seed))
    n = len(pairs)
    test_target = max(config.test_fraction * n, config.min_test_pairs)
    val_target = config.validation_fraction * n
    out = {name: [] for name in SPLITS}
    for prompt in order:
        if len(out["test"]) < test_target:
            out["test"].extend(groups[prompt])
        elif len(out["validation"]) < val_target:
            out["validation"].extend(groups[prompt])
        else:
            out["train"].extend(groups[prompt])
    if len(out["test"]) < test_target:
        raise DataError(f"domain '{pairs[0].domain}': only {n} pairs, cannot hold out {test_target:.0f} for test")
    return out


def load_splits(
    domains: tuple[str, ...] = DOMAINS, data_dir: Path | str = DATA_DIR, config: SplitConfig = SplitConfig()
) -> dict[str, dict[str, list[Pair]]]:
    """``{domain: {"train"|"validation"|"test": [Pair]}}`` for the given domains."""
    return {d: split_pairs(load_domain(d, data_dir), config) for d in domains}


def take(pairs: list[Pair], limit: int | None) -> list[Pair]:
    """A deterministic subset: the first ``limit`` pairs in id-hash order (None: all)."""
    if limit is None or limit >= len(pairs):
        return list(pairs)
    return sorted(pairs, key=lambda p: hashlib.sha256(p.id.encode()).hexdigest())[:limit]
