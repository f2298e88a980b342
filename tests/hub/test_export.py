"""Export -> from_pretrained gives the same logits for LST and both baselines; transformers loads
the exported baselines as LlamaForCausalLM with the same logits; checkpoints load weights-only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lst_lightning.data.vocab import SpeechSpan, TextSpan
from lst_lightning.hub.checkpoint import KitCheckpoint, read_checkpoint
from lst_lightning.hub.export import main as export_main
from lst_lightning.hub.pretrained import PretrainedSpeechTextModel

from .conftest import tiny_baseline, tiny_lst

SYSTEMS = {
    "lst": (tiny_lst, {}),
    "baseline": (tiny_baseline, {"packing": {"mode": "tokens"}}),
    "bpe_baseline": (
        tiny_baseline,
        {
            "packing": {"mode": "tokens"},
            "corpus": {"speech_tokenizer": "bpe", "unit_bpe_size": 600},
        },
    ),
}


def documents(model: PretrainedSpeechTextModel) -> torch.Tensor:
    """Two single documents of equal length: interleaved text + speech."""
    space = model.space
    rows = [
        space.encode_document([TextSpan("the old man"), SpeechSpan(tuple(range(3, 40, 2)))]),
        space.encode_document([SpeechSpan(tuple(range(50, 70))), TextSpan("went home")]),
    ]
    n = min(map(len, rows))
    return torch.tensor([r[:n] for r in rows])


@pytest.fixture(scope="module", params=list(SYSTEMS))
def exported(request, hub_corpus: Path, tmp_path_factory, make_checkpoint):
    name = request.param
    network, groups = SYSTEMS[name]
    folder = tmp_path_factory.mktemp(f"export_{name}")
    ckpt = make_checkpoint(
        folder / "run" / "checkpoints" / "last.ckpt", hub_corpus, network(), **groups
    )
    assert export_main(["--ckpt", str(ckpt), "--out", str(folder / "hf")]) == 0
    return name, ckpt, folder / "hf"


def test_checkpoint_loads_weights_only(exported) -> None:
    _, ckpt, _ = exported
    raw = read_checkpoint(ckpt)
    assert "lst_lightning" in raw and "tokenizer.model" in raw["lst_lightning"]["files"]
    # and plain torch with weights_only=True plus nothing else allow-listed reads it too
    torch.load(ckpt, map_location="cpu", weights_only=True)


def test_export_round_trips_to_identical_logits(exported) -> None:
    name, ckpt, folder = exported
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.model", "README.md"} <= names
    if name == "bpe_baseline":
        assert "unit_bpe.model" in names
    original = PretrainedSpeechTextModel.from_checkpoint(ckpt)
    loaded = PretrainedSpeechTextModel.from_pretrained(folder)
    assert type(loaded.network_config) is type(original.network_config)
    assert loaded.network_config == original.network_config
    assert loaded.space.layout() == original.space.layout()
    tokens = documents(original)
    with torch.no_grad():
        assert torch.equal(original(tokens), loaded(tokens))


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_transformers_loads_the_exported_baseline(exported, attn: str) -> None:
    name, ckpt, folder = exported
    if name == "lst":
        config = json.loads((folder / "config.json").read_text())
        assert config["model_type"] == "lst_lightning"
        return
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(folder, attn_implementation=attn).eval()
    assert isinstance(hf, LlamaForCausalLM)
    kit = PretrainedSpeechTextModel.from_checkpoint(ckpt)
    tokens = documents(kit)
    with torch.no_grad():
        ours = kit(tokens)
        theirs = hf(input_ids=tokens).logits
    assert ours.shape == theirs.shape
    diff = (ours - theirs).abs().max().item()
    assert diff < 1e-5, f"max |logit difference| {diff}"


def test_kit_checkpoint_needs_no_corpus(exported, tmp_path: Path) -> None:
    """The checkpoint carries its tokenizers: a copy far from the corpus still loads."""
    _, ckpt, _ = exported
    copy = tmp_path / "elsewhere.ckpt"
    copy.write_bytes(ckpt.read_bytes())
    loaded = KitCheckpoint.load(copy, data_dir=tmp_path / "no_corpus_here")
    assert loaded.space.vocab_size == loaded.network.vocab_size


class RunsCode:
    """Unpickling this would call ``print`` (any callable could stand here)."""

    def __reduce__(self):
        return (print, ("unpickled code ran",))


def test_refuses_a_pickle_with_code(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.ckpt"
    torch.save({"state_dict": {}, "x": RunsCode()}, bad)
    with pytest.raises(ValueError, match="refusing to load"):
        read_checkpoint(bad)
    assert "unpickled code ran" not in capsys.readouterr().out


def test_a_checkpoint_from_before_embedded_tokenizers(
    exported, hub_corpus: Path, tmp_path: Path
) -> None:
    """Old checkpoints (no kit record, the network as the CLI used to save it: a plain mapping
    without its class) load with their corpus, and fail naming the missing file without it."""
    name, ckpt, _ = exported
    raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    del raw["lst_lightning"]
    raw["hyper_parameters"]["network"] = raw["hyper_parameters"]["network"]["init_args"]
    old = tmp_path / "old.ckpt"
    torch.save(raw, old)
    loaded = KitCheckpoint.load(old, data_dir=hub_corpus)
    assert type(loaded.network).__name__ == ("LSTConfig" if name == "lst" else "BaselineConfig")
    assert loaded.space.layout() == KitCheckpoint.load(ckpt).space.layout()
    with pytest.raises(FileNotFoundError, match="tokenizer.model"):
        KitCheckpoint.load(old, data_dir=tmp_path / "gone")


def test_hub_needs_no_lightning() -> None:
    import subprocess
    import sys

    code = (
        "import sys, lst_lightning.hub.pretrained, lst_lightning.hub.warm_start, "
        "lst_lightning.hub.export; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
