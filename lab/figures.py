"""Figures of ``make reproduce``: training curves and MoRE's expert use per domain."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from models.more import moe_blocks
from models.base import collate
from core.data import take
from training.evaluate import pair_encodings


def _smooth(values: list[float], window: int = 25) -> np.ndarray:
    v = np.asarray(values, float)
    if len(v) < window:
        return v
    return np.convolve(v, np.ones(window) / window, mode="valid")


def training_curves(results: dict, path: Path) -> None:
    """One panel per method: each run's training loss (moving mean of 25 steps) and validation loss."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = results["methods"]
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 3.6), squeeze=False)
    for ax, (name, m) in zip(axes[0], methods.items()):
        for i, (run, r) in enumerate(m["train"]["runs"].items()):
            if run == "router":
                continue
            color = f"C{i % 10}"
            smooth = _smooth(r["losses"])
            ax.plot(np.arange(len(smooth)) + (len(r["losses"]) - len(smooth)), smooth, color=color, lw=1, label=f"{run} train")
            ev = r.get("evals", [])
            if ev:
                ax.plot([e["step"] for e in ev], [e["loss"] for e in ev], "o--", color=color, ms=3, lw=0.8,
                        label=f"{run} val")
        ax.axhline(np.log(2), color="grey", lw=0.8, ls=":")
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.set_ylabel("Bradley-Terry loss")
        ax.legend(fontsize=6)
    fig.suptitle("Training (moving mean, 25 steps) and validation loss; dotted: ln 2 (chance)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@torch.inference_mode()
def expert_use(ckpt, splits: dict, pairs_per_domain: int = 60, split: str = "validation") -> dict:
    """Share of top-k slots each expert gets, per domain and MoE layer, over chosen responses' real tokens."""
    model = ckpt.models["reward"].eval()
    blocks = moe_blocks(model)
    layers = list(model.config.moe_layers)
    out = {}
    for domain in ckpt.domains:
        chosen, _ = pair_encodings(ckpt, take(splits[domain][split], pairs_per_domain))
        counts = np.zeros((len(blocks), blocks[0].num_experts))
        for s in range(0, len(chosen), 16):
            model(**collate(chosen[s:s + 16], ckpt.tokenizer.pad_token_id))
            for li, b in enumerate(blocks):
                counts[li] += np.bincount(b.last_expert_ids.reshape(-1).long().numpy(), minlength=b.num_experts)
        out[domain] = {str(layer): (counts[li] / counts[li].sum()).round(4).tolist() for li, layer in enumerate(layers)}
    return out


def more_routing(ckpt, splits: dict, stem: Path) -> dict:
    """``stem``.json (the numbers) and ``stem``.png (a heatmap per MoE layer: domains x experts)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    use = expert_use(ckpt, splits)
    domains = list(use)
    layers = list(next(iter(use.values())))
    Path(f"{stem}.json").write_text(json.dumps({"split": "validation", "share_of_topk_slots": use}, indent=1))
    fig, axes = plt.subplots(1, len(layers), figsize=(3.4 * len(layers), 3.2), squeeze=False)
    for ax, layer in zip(axes[0], layers):
        grid = np.array([use[d][layer] for d in domains])
        im = ax.imshow(grid, vmin=0, vmax=max(0.5, grid.max()), cmap="viridis")
        ax.set_title(f"layer {layer}")
        ax.set_xlabel("expert")
        ax.set_xticks(range(grid.shape[1]))
        ax.set_yticks(range(len(domains)))
        ax.set_yticklabels(domains if ax is axes[0][0] else [""] * len(domains), fontsize=7)
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="w" if v < 0.3 else "k")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="share of top-2 slots")
    fig.suptitle("MoRE: which experts each domain's tokens use (validation, chosen responses)", fontsize=9)
    fig.savefig(f"{stem}.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return use
