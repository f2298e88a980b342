"""Checkpoint files of the kit, read without unpickling code, and what they carry.

A checkpoint written by ``lst-lightning fit`` (or any ``Trainer.save_checkpoint`` of
:class:`~lst_lightning.lit.module.SpeechTextLM`) holds, under the key ``"lst_lightning"``, what scoring
or sampling needs elsewhere: the network config with its class, the text tokenizer and unit BPE
(serialised SentencePiece models), the unit codebook of the corpus when it has one (``units.pt``),
the token-space layout, the static patch size for evaluation and the corpus folder it was trained
on (absolute). :func:`read_checkpoint` loads any checkpoint with ``torch.load(weights_only=True)``
and the kit's config dataclasses allow-listed, so a file handed to eval, sample or export cannot run
code; :class:`KitCheckpoint` turns it into a network and a token space, also for checkpoints from
before the kit embedded its tokenizers (their corpus must then still exist).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..data.vocab import TokenSpace
from ..lit.optim import OptimConfig
from ..model import BaselineConfig, LSTConfig, build_model
from .configs import from_dict, to_dict

KIT_KEY = "lst_lightning"
"""Top-level key of the kit's record in a checkpoint."""
RECORD_FORMAT = 1
UNIT_CODEBOOK_FILE = "units.pt"
"""The corpus's unit tokenizer (codebook) file, copied into checkpoints and exported folders."""


def _config_classes(roots: tuple[type, ...]) -> list[type]:
    """Every dataclass reachable from ``roots`` through field type hints (so configs that gain
    nested dataclasses stay loadable without editing an allow-list)."""
    seen: list[type] = []
    stack = list(roots)
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.append(cls)
        for hint in typing.get_type_hints(cls).values():
            for arg in (hint, *typing.get_args(hint)):
                if isinstance(arg, type) and dataclasses.is_dataclass(arg):
                    stack.append(arg)
    return seen


def safe_globals() -> list[type]:
    """The types a kit checkpoint may hold besides tensors and containers."""
    return _config_classes((LSTConfig, BaselineConfig, OptimConfig))


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load`` of a checkpoint without unpickling arbitrary objects (weights only, the kit's
    config dataclasses allowed); a file that needs more is refused with the reason, and a missing,
    empty, truncated or corrupt one is named (:func:`lst_lightning.lit.checkpointing.read_checkpoint`)."""
    from ..lit.checkpointing import read_checkpoint as read_file

    with torch.serialization.safe_globals(safe_globals()):
        checkpoint = read_file(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{path}: not a Lightning checkpoint (no 'state_dict')")
    return checkpoint


def network_from_hparams(value: Any) -> LSTConfig | BaselineConfig:
    """The network config of a checkpoint's hyperparameters: a config object, a ``class_path``
    mapping (current checkpoints), or a plain mapping of fields (checkpoints written through the
    CLI before this change; the two configs have disjoint keys, ``transformer`` vs
    ``encoder``/``global_model``/``decoder``, so the mapping says which one it is)."""
    if isinstance(value, LSTConfig | BaselineConfig):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"network: expected a config or a mapping, got {type(value).__name__}")
    default = BaselineConfig if "transformer" in value else LSTConfig
    config = from_dict(value, default, where="network")
    if not isinstance(config, LSTConfig | BaselineConfig):
        raise ValueError(f"network: {type(config).__name__} is not a network config")
    return config


def kit_record(network: LSTConfig | BaselineConfig, datamodule: Any | None) -> dict[str, Any]:
    """What :class:`KitCheckpoint` needs to use a checkpoint without its corpus. ``datamodule``:
    a :class:`~lst_lightning.lit.datamodule.SpeechTextDataModule` (or anything with
    ``token_space``, ``data_dir`` and ``eval_patch_size``); ``None`` records the network only."""
    record: dict[str, Any] = {"format": RECORD_FORMAT, "network": to_dict(network)}
    if datamodule is None or not hasattr(datamodule, "token_space"):
        return record
    space = datamodule.token_space
    proto, unit_proto = space.model_bytes
    data_dir = Path(datamodule.data_dir).resolve()
    files = {"tokenizer.model": proto}
    if unit_proto is not None:
        files["unit_bpe.model"] = unit_proto
    codebook = data_dir / UNIT_CODEBOOK_FILE
    if codebook.is_file():
        files[UNIT_CODEBOOK_FILE] = codebook.read_bytes()
    record.update(
        token_space=space.layout(),
        files=files,
        eval_patch_size=datamodule.eval_patch_size(isinstance(network, LSTConfig)),
        data_dir=str(data_dir),
    )
    return record


def net_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The network's weights of a LightningModule state dict (``net.`` prefix removed)."""
    return {k[len("net.") :]: v for k, v in state_dict.items() if k.startswith("net.")}


@dataclass
class KitCheckpoint:
    """A checkpoint's network, weights and token space, usable without the training code."""

    path: Path
    network: LSTConfig | BaselineConfig
    weights: dict[str, torch.Tensor] = field(repr=False)
    space: TokenSpace
    eval_patch_size: int | None
    """Static patch size for scoring and generation (LST); ``None`` for token-level models."""
    step: int
    data_dir: Path | None
    """The corpus the model was trained on (absolute for current checkpoints), if recorded."""
    files: dict[str, bytes] = field(default_factory=dict, repr=False)
    """Embedded files by name (``tokenizer.model``, ``unit_bpe.model``, ``units.pt``)."""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: str | Path, data_dir: str | Path | None = None) -> KitCheckpoint:
        """Read ``path`` safely. ``data_dir`` overrides the recorded corpus (needed only for
        checkpoints from before the kit embedded its tokenizers)."""
        path = Path(path)
        raw = read_checkpoint(path)
        hp = raw.get("hyper_parameters") or {}
        record = raw.get(KIT_KEY) or {}
        if record and record.get("format", 0) > RECORD_FORMAT:
            raise ValueError(
                f"{path}: written by a newer lst-lightning (record format {record['format']})"
            )
        if "network" in record:
            network = network_from_hparams(record["network"])
        elif "network" in hp:
            network = network_from_hparams(hp["network"])
            if hp.get("vocab_size") is not None:
                network = dataclasses.replace(network, vocab_size=int(hp["vocab_size"]))
        else:
            raise ValueError(f"{path}: no network config (not written by lst-lightning?)")
        data_hp = _grouped(raw.get("datamodule_hyper_parameters") or {})
        recorded_dir = record.get("data_dir") or data_hp.get("corpus", {}).get("data_dir")
        corpus = Path(data_dir) if data_dir is not None else None
        if corpus is None and recorded_dir is not None:
            corpus = Path(recorded_dir)
        files = dict(record.get("files") or {})
        if "tokenizer.model" in files:
            layout = record.get("token_space") or {}
            space = TokenSpace.from_bytes(
                files["tokenizer.model"],
                int(layout.get("num_units", data_hp.get("corpus", {}).get("num_units", 501))),
                files.get("unit_bpe.model"),
                name=f"{path} (embedded tokenizer)",
            )
            _check_layout(path, space, layout)
            patch_size = record.get("eval_patch_size")
        else:
            space = _space_from_corpus(path, corpus, data_hp)
            patch_size = _legacy_patch_size(network, data_hp)
        if space.vocab_size != network.vocab_size:
            raise ValueError(
                f"{path}: the token space has {space.vocab_size} ids but the network "
                f"{network.vocab_size}: wrong --data-dir?"
            )
        return cls(
            path=path,
            network=network,
            weights=net_state_dict(raw["state_dict"]),
            space=space,
            eval_patch_size=patch_size,
            step=int(raw.get("global_step", 0)),
            data_dir=corpus,
            files=files,
            raw=raw,
        )

    @property
    def is_lst(self) -> bool:
        return isinstance(self.network, LSTConfig)

    @property
    def run_dir(self) -> Path | None:
        """``<run>`` when the checkpoint is ``<run>/checkpoints/x.ckpt``."""
        return self.path.parent.parent if self.path.parent.name == "checkpoints" else None

    def build_net(self) -> torch.nn.Module:
        """The network with the checkpoint's weights, in eval mode, on the CPU."""
        net = build_model(self.network)
        net.load_state_dict(self.weights)
        return net.eval()


def _grouped(data_hp: dict[str, Any]) -> dict[str, Any]:
    from ..data.options import grouped_hparams

    return grouped_hparams(dict(data_hp)) if data_hp else {}


def _check_layout(path: Path, space: TokenSpace, layout: dict[str, Any]) -> None:
    got = space.layout()
    bad = {k: (v, got.get(k)) for k, v in layout.items() if got.get(k) != v}
    if bad:
        detail = ", ".join(f"{k}: recorded {a}, rebuilt {b}" for k, (a, b) in bad.items())
        raise ValueError(
            f"{path}: the embedded tokenizer does not give the recorded layout ({detail})"
        )


def _space_from_corpus(path: Path, corpus: Path | None, data_hp: dict[str, Any]) -> TokenSpace:
    """The token space of a checkpoint without embedded tokenizers, from its corpus folder."""
    options = data_hp.get("corpus", {})
    if corpus is None:
        raise ValueError(f"{path} records no corpus folder: pass --data-dir")
    needed = [corpus / "tokenizer.model"]
    unit_bpe = None
    if options.get("speech_tokenizer") == "bpe":
        unit_bpe = corpus / f"unit_bpe_{options.get('unit_bpe_size', 1000)}.model"
        needed.append(unit_bpe)
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{path} was written before checkpoints carried their tokenizers, and its corpus is "
            f"not here: missing {', '.join(missing)}. Pass --data-dir with the corpus it was "
            "trained on (nothing is rebuilt)"
        )
    return TokenSpace(needed[0], int(options.get("num_units", 501)), unit_bpe)


def _legacy_patch_size(network: LSTConfig | BaselineConfig, data_hp: dict[str, Any]) -> int | None:
    if not isinstance(network, LSTConfig):
        return None
    if data_hp.get("packing", {}).get("mode") == "tokens":
        return None
    return int(data_hp.get("patching", {}).get("size", 4))
