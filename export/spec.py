"""What one export makes: a frozen, validated spec, as Optimum's exporter declares a graph's config.

    ExportSpec(method="arliss", precision="int8", lora="merged", optimize=True, opset=17)
    .variant      "int8-merged"              <precision>[-<lora>, ARLISS only][-noopt]
    .default_out  bundles/arliss-int8-merged bundles/<method>[-<precision> unless fp32][-merged][-noopt]
    .lora_mode    "merged"                   the manifest's ``lora``: None for methods without adapters

``lora`` is ``"switchable"`` (one graph, the adapter picked per row by ``adapter_ids``) or
``"merged"`` (one graph per adapter, LoRA folded into the weights); it names nothing for the
methods without adapters and is ignored there, as on the command line. ``precision`` is one of
``core.manifest.PRECISIONS`` (the precisions a bundle can declare): fp32, fp16 (GPUs), ``int8``
(rowwise, ``export.rowwise_int8``) or ``int8-blockwise`` (``export.optimize``). ``optimize`` keeps
ONNX Runtime's transformer fusion where it measures faster (``export.optimize.finish_graph``).
``opset`` >= 14: the attention export needs it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.manifest import METHODS, PRECISIONS

LORA_MODES = ("switchable", "merged")
DEFAULT_OPSET = 17
MIN_OPSET = 14


@dataclass(frozen=True)
class ExportSpec:
    method: str
    precision: str = "fp32"
    lora: str = "switchable"
    optimize: bool = True
    opset: int = DEFAULT_OPSET
    external_data: bool = False     # weights in <graph>.onnx.data whatever the size (always past 2 GB)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"ExportSpec.method must be one of {METHODS}, got {self.method!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"ExportSpec.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.lora not in LORA_MODES:
            raise ValueError(f"ExportSpec.lora must be one of {LORA_MODES}, got {self.lora!r}")
        if not isinstance(self.optimize, bool):
            raise TypeError(f"ExportSpec.optimize must be a bool, got {type(self.optimize).__name__}")
        if not isinstance(self.external_data, bool):
            raise TypeError(f"ExportSpec.external_data must be a bool, got {type(self.external_data).__name__}")
        if isinstance(self.opset, bool) or not isinstance(self.opset, int) or self.opset < MIN_OPSET:
            raise ValueError(f"ExportSpec.opset must be an int >= {MIN_OPSET} (attention export needs it), "
                             f"got {self.opset!r}")

    @property
    def lora_mode(self) -> str | None:
        """The manifest's ``lora``: the LoRA mode for ARLISS, None for the methods without adapters."""
        return self.lora if self.method == "arliss" else None

    @property
    def reduced(self) -> bool:
        """fp16 or int8: the export must check its decisions against fp32 on a validation split."""
        return self.precision != "fp32"

    @property
    def _noopt(self) -> list[str]:
        return [] if self.optimize else ["noopt"]

    @property
    def variant(self) -> str:
        """``<precision>[-<lora>][-noopt]``, the LoRA mode for ARLISS only: ``fp32-switchable``, ``int8``."""
        return "-".join([self.precision] + ([self.lora] if self.lora_mode else []) + self._noopt)

    @property
    def default_out(self) -> Path:
        """``bundles/<method>[-<precision>][-merged][-noopt]``: fp32 and switchable are the unnamed defaults."""
        parts = [self.method] + ([self.precision] if self.precision != "fp32" else []) + \
            (["merged"] if self.lora_mode == "merged" else []) + self._noopt
        return Path("bundles") / "-".join(parts)
