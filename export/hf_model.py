"""Opening a local Hugging Face sequence classifier for import, checked before any work is done.

    open_model(path, labels=1) -> HFModel       a reward model (one logit)
    open_model(path, labels=n) -> HFModel       a router (n logits, ``id2label`` naming the domains)

What is refused, each with an error naming the folder and the file or field (``ImportModelError``):
a folder without ``config.json`` or without a fast tokenizer (``tokenizer.json``); a config or
tokenizer config that asks for remote code (``auto_map``: importing a folder never runs code that
came with it, and ``trust_remote_code`` is never set); an architecture for which Optimum registers
no text-classification ONNX export; a label count other than the one asked for; a checkpoint whose
classification head was not saved (a base LM, whose ``score`` head transformers would initialise at
random); a decoder with no pad token (its graph finds each row's last token by it); a chat template
that cannot be reduced to fixed text per role (``export.chat_template``).

Models load with eager attention, the reference implementation (sdpa drops Gemma 2's attention
soft-capping). The model keeps its own pooling and head (the last non-pad token for decoders, BERT's pooler,
DeBERTa's ContextPooler, ModernBERT's head): the graph computes what transformers computes,
``logits``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core.chat import ChatFormat

# Tokens a graph may read when neither the caller nor the model says less: the memory of attention
# grows with its square, and reward models are trained on a few thousand tokens at most.
DEFAULT_MAX_LENGTH = 2048
FUSABLE = ("bert",)          # model types whose graphs ORT's BERT fusion pass understands


class ImportModelError(ValueError):
    """A model folder RouteRM cannot import; the message names the folder and what is wrong."""


@dataclass(frozen=True)
class HFModel:
    path: Path
    model: object                   # transformers *ForSequenceClassification, eval mode
    tokenizer: object               # transformers fast tokenizer
    chat: ChatFormat | None         # the reduced chat template, when the tokenizer has one
    pad_id: int                     # what rows are padded with (config.pad_token_id where set)
    max_length: int
    token_types: bool               # the graph takes token_type_ids (BERT's segment embeddings)
    labels: tuple[str, ...]         # id2label, in index order

    @property
    def model_type(self) -> str:
        return self.model.config.model_type

    @property
    def fusable(self) -> bool:
        return self.model_type in FUSABLE


def _json(path: Path, where: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ImportModelError(f"{path}: not readable JSON ({exc}); is '{where}' a Hugging Face model folder?") from None


def check_folder(path: Path) -> dict:
    """The folder's ``config.json`` as a dict, after the checks that need no library."""
    if not path.is_dir():
        raise ImportModelError(f"'{path}' is not a directory (a Hugging Face model folder is expected)")
    if not (path / "config.json").is_file():
        raise ImportModelError(f"'{path}' has no config.json: not a Hugging Face model folder")
    config = _json(path / "config.json", path)
    for name in ("config.json", "tokenizer_config.json"):
        raw = config if name == "config.json" else (_json(path / name, path) if (path / name).is_file() else {})
        if raw.get("auto_map"):
            raise ImportModelError(
                f"{path / name} asks for remote code (auto_map: {sorted(raw['auto_map'])}); RouteRM never runs code "
                f"that came with a model folder: import a model whose architecture transformers ships")
    if not (path / "tokenizer.json").is_file():
        raise ImportModelError(f"'{path}' has no tokenizer.json: RouteRM serves fast (tokenizers-library) "
                               f"tokenizers; save one with AutoTokenizer.from_pretrained(...).save_pretrained('{path}')")
    return config


def check_architecture(path: Path, model_type: str) -> None:
    from optimum.exporters.tasks import TasksManager
    import optimum.exporters.onnx.model_configs  # noqa: F401  (registers the ONNX configs)
    try:
        TasksManager.get_exporter_config_constructor("onnx", task="text-classification", model_type=model_type,
                                                     library_name="transformers")
    except (KeyError, ValueError) as exc:
        raise ImportModelError(f"{path / 'config.json'}: model_type '{model_type}' has no text-classification ONNX "
                               f"export config in Optimum, so RouteRM cannot export it ({str(exc).splitlines()[0]})") from None


def _labels(path: Path, config, want: int) -> tuple[str, ...]:
    if config.num_labels != want:
        what = "a reward model has one (num_labels == 1)" if want == 1 else f"a router over {want} domains has {want}"
        raise ImportModelError(f"{path / 'config.json'}: num_labels is {config.num_labels} (id2label "
                               f"{dict(config.id2label)}); {what}")
    return tuple(str(config.id2label[i]) for i in range(config.num_labels))


def _head_loaded(path: Path, info: dict) -> None:
    missing = [k for k in info.get("missing_keys", []) if k.split(".")[0] in ("score", "classifier", "pooler", "head")]
    if missing:
        raise ImportModelError(f"'{path}' holds no trained classification head (weights {missing[:3]} are missing, "
                               f"so transformers would initialise them at random): import a *ForSequenceClassification "
                               f"checkpoint, e.g. one saved by TRL's RewardTrainer")


def _pad_id(path: Path, model, tokenizer) -> int:
    pad = model.config.pad_token_id
    if pad is None:
        pad = tokenizer.pad_token_id
        model.config.pad_token_id = pad
    if pad is None:
        raise ImportModelError(f"{path / 'config.json'}: pad_token_id is not set and the tokenizer has no pad token; "
                               f"a sequence classifier finds each row's last token by it. Set pad_token_id in config.json")
    return int(pad)


def _max_length(path: Path, config, tokenizer, asked: int | None) -> int:
    limits = [n for n in (getattr(config, "max_position_embeddings", None), tokenizer.model_max_length)
              if isinstance(n, int) and 0 < n < 1_000_000]
    most = min(limits) if limits else None
    if asked is None:
        return min([DEFAULT_MAX_LENGTH, *limits])
    if asked < 8 or (most is not None and asked > most):
        raise ImportModelError(f"--max-length {asked} for '{path}': the model reads between 8 and {most} tokens")
    return asked


def open_model(path, labels: int = 1, max_length: int | None = None) -> HFModel:
    """Load and check the model folder ``path`` (module docstring); ``labels``: the logits it must give."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
    from export.chat_template import reduce_template

    path = Path(path)
    check_folder(path)
    config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    check_architecture(path, config.model_type)
    names = _labels(path, config, labels)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    if not getattr(tokenizer, "is_fast", False):
        raise ImportModelError(f"'{path}': the tokenizer did not load as a fast tokenizer from tokenizer.json")
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            path, trust_remote_code=False, output_loading_info=True, dtype=torch.float32, attn_implementation="eager")
    except (OSError, ValueError) as exc:
        raise ImportModelError(f"'{path}': transformers could not load the weights ({exc})") from None
    _head_loaded(path, info)
    model.eval()
    template_file = path / "chat_template.jinja"
    where = template_file if template_file.is_file() else path / "tokenizer_config.json"
    types = "token_type_ids" in tokenizer.model_input_names and getattr(config, "type_vocab_size", 0) > 0
    return HFModel(path, model, tokenizer, reduce_template(tokenizer, str(where)), _pad_id(path, model, tokenizer),
                   _max_length(path, config, tokenizer, max_length), types, names)
