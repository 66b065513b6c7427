"""Confidence intervals for pairwise accuracy: a bootstrap over prompts.

Pairs that share a prompt are not independent (one prompt, several response pairs), so the
bootstrap resamples *prompts* with replacement and takes every pair of each drawn prompt. The mean
over domains resamples each domain independently and averages the domain accuracies (the mean is
an unweighted mean over domains, as reported). Differences between two methods are *paired*: both
are evaluated on the same test pairs, so one resample of prompts is applied to both.
"""
from __future__ import annotations

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95


def _groups(keys: list[str]) -> list[np.ndarray]:
    index: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        index.setdefault(k, []).append(i)
    return [np.asarray(v) for v in index.values()]


def domain_mean(correct: np.ndarray, names: list[str]) -> tuple[float, dict[str, float]]:
    """(unweighted mean over domains of their accuracies, ``{domain: accuracy}``) of 0/1 ``correct`` [N],
    ``names`` [N] naming each pair's domain (first-seen order): the test metric, for model choice too."""
    correct = np.asarray(correct, dtype=np.float64)
    if len(names) != len(correct):
        raise ValueError(f"{len(names)} domain names for {len(correct)} pairs")
    per_domain = {d: float(correct[g].mean()) for d, g in zip(dict.fromkeys(names), _groups(names))}
    return sum(per_domain.values()) / len(per_domain), per_domain


def _resampled_accuracy(correct: np.ndarray, groups: list[np.ndarray], rng: np.random.Generator,
                        resamples: int) -> np.ndarray:
    """[resamples, M] accuracies; ``correct`` [M, N] holds M outcome vectors over the same N pairs."""
    sums = np.stack([correct[:, g].sum(1) for g in groups], 1)            # [M, G]
    sizes = np.array([len(g) for g in groups])                            # [G]
    draws = rng.integers(0, len(groups), size=(resamples, len(groups)))   # [R, G]
    counts = np.zeros((resamples, len(groups)))
    np.add.at(counts, (np.arange(resamples)[:, None], draws), 1)          # how often each prompt is drawn
    return (counts @ sums.T) / (counts @ sizes)[:, None]                  # [R, M]


def interval(samples: np.ndarray, level: float = LEVEL) -> list[float]:
    lo, hi = np.quantile(samples, [(1 - level) / 2, 1 - (1 - level) / 2])
    return [float(lo), float(hi)]


def domain_and_mean_intervals(domains: dict[str, dict], seed: int = 0, resamples: int = RESAMPLES) -> dict:
    """``domains``: {name: {"correct": [0/1]*N, "groups": [prompt]*N}} -> {"domains": {name: [lo, hi]}, "mean": [lo, hi]}."""
    rng = np.random.default_rng(seed)
    per_domain, out = [], {}
    for name, d in domains.items():
        acc = _resampled_accuracy(np.asarray([d["correct"]], float), _groups(d["groups"]), rng, resamples)[:, 0]
        per_domain.append(acc)
        out[name] = interval(acc)
    return {"domains": out, "mean": interval(np.mean(per_domain, 0))}


def paired_difference(a: dict[str, dict], b: dict[str, dict], seed: int = 0, resamples: int = RESAMPLES) -> dict:
    """Mean accuracy of ``a`` minus ``b`` (same domains, same pairs in the same order): estimate and interval."""
    rng = np.random.default_rng(seed)
    diffs, point = [], []
    for name in a:
        if a[name]["groups"] != b[name]["groups"]:
            raise ValueError(f"domain '{name}': the two evaluations did not score the same pairs")
        both = np.asarray([a[name]["correct"], b[name]["correct"]], float)
        acc = _resampled_accuracy(both, _groups(a[name]["groups"]), rng, resamples)
        diffs.append(acc[:, 0] - acc[:, 1])
        point.append(both[0].mean() - both[1].mean())
    samples = np.mean(diffs, 0)
    lo, hi = interval(samples)
    return {"difference": float(np.mean(point)), "interval": [lo, hi], "within_noise": bool(lo <= 0 <= hi)}
