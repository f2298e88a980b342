"""Hugging Face style folders of kit models: ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub``.

``lst-lightning export --ckpt X --out DIR`` writes::

    DIR/config.json         the network config with its class, the token-space layout, patch size
    DIR/model.safetensors   the weights (no pickle)
    DIR/tokenizer.model     the text tokenizer (SentencePiece)
    DIR/unit_bpe.model      the unit BPE (BPE SpeechLLM only)
    DIR/units.pt            the corpus's unit codebook, when it has one (weights-only loadable)
    DIR/README.md           a model card

:meth:`PretrainedSpeechTextModel.from_pretrained` reads it back (a local folder, or a Hub repo id
through ``huggingface_hub``) to the same logits. The Base SpeechLLM and BPE SpeechLLM folders are at
the same time ``transformers`` ``LlamaForCausalLM`` folders (``model_type: llama``, weights in
Llama naming; the kit's record sits under the ``lst_lightning`` key of ``config.json``), so
``AutoModelForCausalLM.from_pretrained(DIR)`` loads them too. The token space is the kit's (text
BPE ids, 8 specials, speech units): encode prompts with ``model.space``, not a ``transformers``
tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from ..data.records import write_bytes_atomic, write_text_atomic
from ..data.vocab import TokenSpace
from ..model import BaselineConfig, LSTConfig, build_model
from .checkpoint import UNIT_CODEBOOK_FILE, KitCheckpoint, network_from_hparams
from .configs import to_dict
from .llama import baseline_to_llama, llama_config, llama_to_baseline

CONFIG_KEY = "lst_lightning"
"""Key of the kit's record inside ``config.json``."""
KIT_MODEL_TYPE = "lst_lightning"
FOLDER_FORMAT = 1
FILES = {
    "tokenizer": "tokenizer.model",
    "unit_bpe": "unit_bpe.model",
    "codebook": UNIT_CODEBOOK_FILE,
}


class PretrainedSpeechTextModel(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="lst-lightning",
    tags=["speech", "spoken-language-model", "speech-text", "lst"],
):
    """A kit network (LST or a baseline) with its token space, as saved in an exported folder.

    ``model(tokens)`` returns next-token logits for rows that each hold one document (or pass
    ``doc_ids`` for packed rows); LST's patch lengths default to static patches of
    ``eval_patch_size``, as evaluation and generation use.
    """

    def __init__(
        self,
        network: LSTConfig | BaselineConfig,
        space: TokenSpace,
        eval_patch_size: int | None = None,
        files: dict[str, bytes] | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.network_config = network_from_hparams(network)
        self.net = build_model(self.network_config)
        self.space = space
        self.eval_patch_size = eval_patch_size
        self.files = dict(files or {})
        """The unit codebook (``units.pt``) and other files carried along, by name."""
        self.info = dict(info or {})
        """Provenance: source checkpoint, training step."""

    @property
    def is_lst(self) -> bool:
        return isinstance(self.network_config, LSTConfig)

    def forward(
        self,
        tokens: torch.Tensor,
        doc_ids: torch.Tensor | None = None,
        patch_lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if doc_ids is None:
            doc_ids = torch.zeros_like(tokens)
        if patch_lengths is None:
            patch_lengths = self.static_patch_lengths(tokens)
        return self.net(tokens, doc_ids, patch_lengths)

    def static_patch_lengths(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[B, P]`` static patch lengths of one-document rows (``<s>`` + units cut into chunks of
        ``eval_patch_size``; every other token its own patch); one per token for baselines."""
        p = self.eval_patch_size if self.is_lst else None
        rows = [_static_lengths(row.tolist(), self.space, p) for row in tokens]
        out = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, : len(row)] = torch.tensor(row)
        return out.to(tokens.device)

    # -- saving ---------------------------------------------------------------------------------
    def record(self) -> dict[str, Any]:
        proto, unit_proto = self.space.model_bytes
        files = {"tokenizer": FILES["tokenizer"]}
        if unit_proto is not None:
            files["unit_bpe"] = FILES["unit_bpe"]
        if UNIT_CODEBOOK_FILE in self.files:
            files["codebook"] = FILES["codebook"]
        return {
            "format": FOLDER_FORMAT,
            "network": to_dict(self.network_config),
            "token_space": self.space.layout(),
            "eval_patch_size": self.eval_patch_size,
            "files": files,
            **self.info,
        }

    def _save_pretrained(self, save_directory: Path) -> None:
        from safetensors.torch import save_file

        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        weights = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        if isinstance(self.network_config, BaselineConfig):
            n_layers = self.network_config.transformer.n_layers
            config = llama_config(self.network_config, self.space.layout(), max_positions=4096)
            weights = baseline_to_llama(weights, n_layers)
            layout = "llama"
        else:
            config = {"model_type": KIT_MODEL_TYPE, "architectures": ["LST"]}
            layout = "kit"
        config[CONFIG_KEY] = {**self.record(), "weights": layout}
        save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
        proto, unit_proto = self.space.model_bytes
        write_bytes_atomic(folder / FILES["tokenizer"], proto)
        if unit_proto is not None:
            write_bytes_atomic(folder / FILES["unit_bpe"], unit_proto)
        if UNIT_CODEBOOK_FILE in self.files:
            write_bytes_atomic(folder / FILES["codebook"], self.files[UNIT_CODEBOOK_FILE])
        write_text_atomic(
            folder / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n"
        )

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(
        cls, path: str | Path, data_dir: str | Path | None = None
    ) -> PretrainedSpeechTextModel:
        """The model of a training checkpoint (read weights-only)."""
        ckpt = KitCheckpoint.load(path, data_dir)
        model = cls(
            ckpt.network,
            ckpt.space,
            ckpt.eval_patch_size,
            files={k: v for k, v in ckpt.files.items() if k == UNIT_CODEBOOK_FILE},
            info={"step": ckpt.step, "source": Path(path).name},
        )
        model.net.load_state_dict(ckpt.weights)
        return model.eval()

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls, pretrained_model_name_or_path: str | Path, **hub_kwargs: Any
    ) -> PretrainedSpeechTextModel:
        """Load an exported folder; a name that is not a local folder is a Hub repo id
        (downloaded with ``huggingface_hub.snapshot_download(**hub_kwargs)``)."""
        folder = Path(pretrained_model_name_or_path)
        if not folder.is_dir():
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(str(pretrained_model_name_or_path), **hub_kwargs))
        return cls._from_folder(folder)

    @classmethod
    def _from_folder(cls, folder: Path) -> PretrainedSpeechTextModel:
        from safetensors.torch import load_file

        record = read_record(folder)
        network = network_from_hparams(record["network"])
        files = record.get("files") or {}
        layout = record.get("token_space") or {}
        unit_bpe = folder / files["unit_bpe"] if "unit_bpe" in files else None
        space = TokenSpace.from_bytes(
            (folder / files.get("tokenizer", FILES["tokenizer"])).read_bytes(),
            int(layout.get("num_units", 501)),
            unit_bpe.read_bytes() if unit_bpe is not None else None,
            name=str(folder / FILES["tokenizer"]),
        )
        if layout and space.layout() != layout:
            raise ValueError(f"{folder}: the tokenizer files do not give the recorded token layout")
        carried = {}
        if "codebook" in files:
            carried[UNIT_CODEBOOK_FILE] = (folder / files["codebook"]).read_bytes()
        info = {k: record[k] for k in ("step", "source") if k in record}
        model = cls(network, space, record.get("eval_patch_size"), carried, info)
        weights_path = folder / "model.safetensors"
        if not weights_path.is_file():
            raise FileNotFoundError(f"{folder}: no model.safetensors")
        weights = load_file(weights_path)
        if record.get("weights") == "llama":
            weights = llama_to_baseline(weights, network.transformer.n_layers, str(folder))
        model.net.load_state_dict(weights)
        return model.eval()


def read_record(folder: str | Path) -> dict[str, Any]:
    """The kit's record in an exported folder's ``config.json`` (an error if there is none)."""
    folder = Path(folder)
    path = folder / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no config.json (not an exported lst-lightning folder)")
    config = json.loads(path.read_text())
    record = config.get(CONFIG_KEY)
    if not isinstance(record, dict) or "network" not in record:
        raise ValueError(f"{path}: no '{CONFIG_KEY}' record (not exported by lst-lightning)")
    if record.get("format", 0) > FOLDER_FORMAT:
        raise ValueError(f"{path}: written by a newer lst-lightning (format {record['format']})")
    return record


def is_kit_folder(folder: str | Path) -> bool:
    path = Path(folder) / "config.json"
    return path.is_file() and CONFIG_KEY in json.loads(path.read_text())


def _static_lengths(ids: list[int], space: TokenSpace, p: int | None) -> list[int]:
    """Static patch lengths of one document's ids (see ``data.stream.patching``)."""
    if p is None:
        return [1] * len(ids)
    lengths: list[int] = []
    i = 0
    while i < len(ids):
        if ids[i] != space.speech_id:
            lengths.append(1)
            i += 1
            continue
        j = i + 1
        while j < len(ids) and space.is_unit(ids[j]):
            j += 1
        full, rest = divmod(j - i, p)
        lengths += [p] * full + ([rest] if rest else [])
        i = j
    return lengths


def export_checkpoint(
    ckpt: str | Path, out: str | Path, data_dir: str | Path | None = None
) -> Path:
    """Write the exported folder of a training checkpoint; returns ``out``."""
    model = PretrainedSpeechTextModel.from_checkpoint(ckpt, data_dir)
    out = Path(out)
    model.save_pretrained(out)
    return out
