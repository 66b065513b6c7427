"""Linear probes: heads fitted on frozen features before fine-tuning (LP-FT, Kumar et al., ICLR 2022).

A fresh random head makes the first fine-tuning steps pull the pretrained features toward noise;
on this project's data that left fine-tuned models below a linear probe on frozen features. So
every head starts as the best L2-regularised linear fit on the pretrained model's pooled features,
over the whole train split, and fine-tuning starts from there:

- reward heads: Bradley-Terry logistic regression on feature differences,
  ``P(chosen > rejected) = sigmoid(w . (f_chosen - f_rejected))`` (the bias cancels; it stays 0);
- two-layer reward heads (``RewardModel`` with ``head_hidden``, the single models): the same
  Bradley-Terry loss on ``mlp(f_chosen) - mlp(f_rejected)``, fitted by AdamW on standardised
  features with input dropout, the epoch chosen on validation (``fit_pairwise_mlp``);
- routers: multinomial logistic regression on prompt features.

The L2 weight is chosen on the validation split from ``LAMBDAS`` (``ROUTER_LAMBDAS`` for routers). Features are computed once per
(base model, pooling, length, truncation policy, texts) and cached on disk (``FeatureCache``), so the
baseline, every RODOS model and every ARLISS adapter (LoRA starts as the identity) share them.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from models.reward import score_head
from core.text import Encoded
from training.loop import autocast, batch_of
from core.stats import domain_mean

LAMBDAS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
# Routers chose the grid's smallest weight (1e-3) in the first LP-FT run: their grid reaches lower.
ROUTER_LAMBDAS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)


def pooled_features(pool_fn: Callable[[dict], torch.Tensor], encoded: list[Encoded], pad_id: int,
                    batch_size: int = 64, bf16: bool = True) -> torch.Tensor:
    """[N, H] fp32 features ``pool_fn(batch)`` of ``encoded`` (batched by length, inference mode)."""
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
    chunks = []
    with torch.inference_mode(), autocast(bf16):
        for s in range(0, len(order), batch_size):
            chunks.append(pool_fn(batch_of([encoded[i] for i in order[s:s + batch_size]], pad_id)).float().cpu())
    out = torch.empty(len(encoded), chunks[0].shape[1])
    out[torch.tensor(order)] = torch.cat(chunks)
    return out


class FeatureCache:
    """``get(key, compute)``: a tensor saved under ``root/<sha256 of key>.pt``, computed on a miss.

    For the *pretrained base model's* features, which the probe starts of every method read
    (training.recipe.pair_features, router_features): the base never changes, so a key made of the
    texts' hash and the settings that change features (base, pooling, length, truncation) is
    enough, and one cache beside the run's checkpoints serves every method and every later run.
    ``root`` None: no cache, ``compute`` every time.

    Not training.router_store.RouterFeatures, which holds a *trained router body's* features: those
    are valid for that body's weights only, so they live inside its checkpoint (keyed by domain
    and split, checked against the body's sha256) and are dropped when the body changes.
    """

    def __init__(self, root: str | Path | None):
        self.root = Path(root) if root is not None else None

    def get(self, key: dict, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        if self.root is None:
            return compute()
        path = self.root / (hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24] + ".pt")
        if path.is_file():
            return torch.load(path)
        value = compute()
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(value, tmp)
        tmp.replace(path)
        return value


def _lbfgs(params: list[torch.Tensor], loss_fn: Callable[[], torch.Tensor], iters: int = 200) -> None:
    opt = torch.optim.LBFGS(params, max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    opt.step(closure)


def _val_names(val_domains: list[str] | None, n: int) -> list[str]:
    """One domain name per validation row (one unnamed group without ``val_domains``)."""
    if val_domains is not None and len(val_domains) != n:
        raise ValueError(f"{len(val_domains)} domain names for {n} validation rows")
    return list(val_domains) if val_domains is not None else [""] * n


def fit_pairwise_head(train_diff: torch.Tensor, val_diff: torch.Tensor, lambdas=LAMBDAS,
                      val_domains: list[str] | None = None) -> tuple[torch.Tensor, dict]:
    """Reward head ``w`` [H] from feature differences (chosen - rejected) [N, H]; L2 weight chosen on ``val_diff``.

    ``val_domains`` (one name per validation row) scores each lambda by the mean of its per-domain
    accuracies (the test metric) instead of the share of rows. Returns ``(w, info)``; info holds
    every lambda's validation loss/accuracy and the chosen one.
    """
    if train_diff.ndim != 2 or val_diff.ndim != 2 or train_diff.shape[1] != val_diff.shape[1]:
        raise ValueError(f"feature differences must be [N, H] with one H, got {tuple(train_diff.shape)} "
                         f"and {tuple(val_diff.shape)}")
    names = _val_names(val_domains, len(val_diff))
    trials = []
    for lam in lambdas:
        w = torch.zeros(train_diff.shape[1], requires_grad=True)
        _lbfgs([w], lambda: F.softplus(-(train_diff @ w)).mean() + lam * (w * w).sum())
        w = w.detach()
        margin = val_diff @ w
        trials.append({"lambda": lam, "val_loss": float(F.softplus(-margin).mean()),
                       "val_accuracy": domain_mean((margin > 0).numpy(), names)[0], "w": w})
    best = max(trials, key=lambda t: (t["val_accuracy"], -t["val_loss"]))
    info = {"chosen_lambda": best["lambda"], "train_pairs": len(train_diff), "val_pairs": len(val_diff),
            "trials": [{k: v for k, v in t.items() if k != "w"} for t in trials]}
    return best["w"], info


MLP_EPOCHS, MLP_LR, MLP_WEIGHT_DECAY, MLP_DROPOUT, MLP_BATCH = 20, 1e-3, 0.01, 0.1, 128


def fit_pairwise_mlp(train_c: torch.Tensor, train_r: torch.Tensor, val_c: torch.Tensor, val_r: torch.Tensor,
                     hidden: int, val_domains: list[str] | None = None, seed: int = 0,
                     epochs: int = MLP_EPOCHS) -> tuple[dict[str, torch.Tensor], dict]:
    """Two-layer reward head on features of chosen / rejected responses ([N, H] each, rows paired).

    Returns ``({"0.weight" [h, H], "0.bias" [h], "2.weight" [1, h], "2.bias" [1]}, info)``: the
    state dict of ``models.reward.score_head(H, 1, h)`` for raw (unstandardised) features, the
    standardisation folded into the first layer. The kept epoch is the one with the best
    validation accuracy (domain mean with ``val_domains``); info holds every epoch's.
    """
    for name, (c, r) in {"train": (train_c, train_r), "validation": (val_c, val_r)}.items():
        if c.ndim != 2 or c.shape != r.shape or c.shape[1] != train_c.shape[1]:
            raise ValueError(f"{name} features must be two [N, H] tensors of one shape with the train H, "
                             f"got {tuple(c.shape)} and {tuple(r.shape)}")
    names = _val_names(val_domains, len(val_c))
    both = torch.cat([train_c, train_r])
    mu, sd = both.mean(0), both.std(0) + 1e-6
    z = lambda x: (x - mu) / sd
    xc, xr, vc, vr = z(train_c), z(train_r), z(val_c), z(val_r)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = score_head(xc.shape[1], 1, hidden, init_std=None)      # the head the model carries
    drop = torch.nn.Dropout(MLP_DROPOUT)
    opt = torch.optim.AdamW(net.parameters(), lr=MLP_LR, weight_decay=MLP_WEIGHT_DECAY)
    best, trials = None, []
    for epoch in range(epochs):
        perm = torch.randperm(len(xc), generator=gen)
        for s in range(0, len(xc), MLP_BATCH):
            idx = perm[s:s + MLP_BATCH]
            loss = F.softplus(-(net(drop(xc[idx])) - net(drop(xr[idx]))).squeeze(-1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            margin = (net(vc) - net(vr)).squeeze(-1)
        trial = {"epoch": epoch + 1, "val_loss": float(F.softplus(-margin).mean()),
                 "val_accuracy": domain_mean((margin > 0).numpy(), names)[0]}
        trials.append(trial)
        if best is None or (trial["val_accuracy"], -trial["val_loss"]) > (best[0]["val_accuracy"], -best[0]["val_loss"]):
            best = (trial, {k: v.detach().clone() for k, v in net.state_dict().items()})
    state = best[1]
    w1 = state["0.weight"] / sd                                   # W (x - mu) / sd = (W / sd) x - (W / sd) mu
    state["0.bias"] = state["0.bias"] - w1 @ mu
    state["0.weight"] = w1
    info = {"head_hidden": hidden, "chosen_epoch": best[0]["epoch"], "train_pairs": len(xc), "val_pairs": len(vc),
            "trials": trials}
    return state, info


def fit_router_head(x: torch.Tensor, y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor,
                    n: int, lambdas=ROUTER_LAMBDAS) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """n-way router head ``(weight [n, H], bias [n])`` by softmax regression; L2 weight chosen on validation.

    ``info``: ``chosen_lambda``, the chosen weight's ``val_accuracy`` and ``val_confusion`` ([n][n]
    counts, row: true class, column: predicted), and every trial."""
    trials = []
    for lam in lambdas:
        w = torch.zeros(x.shape[1], n, requires_grad=True)
        b = torch.zeros(n, requires_grad=True)
        _lbfgs([w, b], lambda: F.cross_entropy(x @ w + b, y) + lam * (w * w).sum())
        logits = val_x @ w.detach() + b.detach()
        trials.append({"lambda": lam, "val_loss": float(F.cross_entropy(logits, val_y)),
                       "val_accuracy": float((logits.argmax(-1) == val_y).float().mean()),
                       "w": w.detach().t().contiguous(), "b": b.detach(), "pred": logits.argmax(-1)})
    best = max(trials, key=lambda t: (t["val_accuracy"], -t["val_loss"]))
    confusion = torch.zeros(n, n, dtype=torch.long).index_put_((val_y, best["pred"]), torch.tensor(1), accumulate=True)
    info = {"chosen_lambda": best["lambda"], "val_accuracy": best["val_accuracy"], "val_confusion": confusion.tolist(),
            "train_examples": len(x),
            "val_examples": len(val_x), "trials": [{k: v for k, v in t.items() if k not in ("w", "b", "pred")} for t in trials]}
    return best["w"], best["b"], info
