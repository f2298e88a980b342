"""The listening path: unit sequences become audio of the right duration (frames / 25 s)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from lst_lightning.data.speech.units import MelFeatureConfig, MelKMeansUnits
from lst_lightning.downstream.hifigan import (
    HiFiGANConfig,
    HiFiGANVocoder,
    UnitHiFiGAN,
)
from lst_lightning.downstream.listen import load_vocoder, main, speak_to_wav
from lst_lightning.downstream.vocoder import GriffinLimVocoder, mel_levels


def _tone(seconds: float, freq: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def tokenizer() -> MelKMeansUnits:
    """A 12-unit log-mel codebook trained on tones and noise (seconds, no corpus needed)."""
    rng = np.random.default_rng(0)
    waves = [_tone(1.0, f) for f in (200, 500, 1200, 3000)]
    waves.append((0.1 * rng.standard_normal(16000)).astype(np.float32))
    return MelKMeansUnits.fit(waves, num_units=12, seed=0)


@pytest.mark.parametrize("inverse", ["interp", "lstsq"])
def test_codebook_vocoder_duration(tokenizer, inverse) -> None:
    vocoder = GriffinLimVocoder.from_codebook(tokenizer, inverse=inverse)
    for n in (1, 7, 50):
        units = np.arange(n) % tokenizer.num_units
        wav = vocoder(units)
        assert wav.dtype == np.float32 and len(wav) == n * 640  # n frames / 25 s at 16 kHz
        assert np.isfinite(wav).all() and 0.85 < np.abs(wav).max() <= 0.9 + 1e-6
    assert np.array_equal(vocoder(units), vocoder(units))  # seeded phase: deterministic


def test_codebook_vocoder_keeps_the_spectrum(tokenizer) -> None:
    """A unit of a 3 kHz tone speaks with its energy near 3 kHz, not near 200 Hz."""
    tone = _tone(1.0, 3000)
    levels = mel_levels([_tone(1.0, f) for f in (200, 500, 1200, 3000)], tokenizer)
    vocoder = GriffinLimVocoder.fit(
        [tone], tokenizer, GriffinLimVocoder.from_codebook(tokenizer, levels)
    )
    unit = int(np.bincount(tokenizer(tone)).argmax())
    wav = vocoder([unit] * 25)
    spec = np.abs(np.fft.rfft(wav))
    freqs = np.fft.rfftfreq(len(wav), 1 / 16000)
    assert abs(freqs[spec.argmax()] - 3000) < 150


def test_vocoder_save_load_and_errors(tokenizer, tmp_path: Path) -> None:
    vocoder = GriffinLimVocoder.from_codebook(tokenizer)
    vocoder.save(tmp_path / "v.pt")
    again = load_vocoder(tmp_path / "v.pt")
    assert torch.equal(again.log_spectra, vocoder.log_spectra)
    with pytest.raises(ValueError, match="unit 12 is outside"):
        vocoder([0, 12])
    with pytest.raises(ValueError, match="non-empty"):
        vocoder([])
    mfcc = MelKMeansUnits(
        torch.zeros(3, 39), torch.zeros(39), torch.ones(39), MelFeatureConfig(kind="mfcc")
    )
    with pytest.raises(ValueError, match="needs log-mel units"):
        GriffinLimVocoder.from_codebook(mfcc)
    with pytest.raises(FileNotFoundError, match="no vocoder at"):
        load_vocoder(tmp_path / "missing.pt")


def _tiny_hifigan_config() -> HiFiGANConfig:
    return HiFiGANConfig(
        num_embeddings=20,
        embedding_dim=8,
        upsample_rates=(5, 4, 4, 4, 2),
        upsample_kernel_sizes=(11, 8, 8, 8, 4),
        upsample_initial_channel=64,
        resblock_kernel_sizes=(3,),
        resblock_dilation_sizes=((1, 3),),
    )


@pytest.mark.filterwarnings("ignore:.*weight_norm.*is deprecated:FutureWarning")
def test_hifigan_loads_random_weight_normed_weights(tmp_path: Path) -> None:
    """Weights saved the way speech-resynthesis saves them (weight norm, ``{"generator": ...}``)
    load through the folder path and give the same audio as the generator they came from."""
    import json

    config = _tiny_hifigan_config()
    torch.manual_seed(0)
    model = UnitHiFiGAN(config)
    normed = UnitHiFiGAN(config)
    for module in list(normed.modules()):
        if isinstance(module, torch.nn.Conv1d | torch.nn.ConvTranspose1d):
            torch.nn.utils.weight_norm(module)
    state = normed.state_dict()
    assert any(k.endswith("weight_g") for k in state)
    folder = tmp_path / "hifigan"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config.to_json()))
    torch.save({"generator": state}, folder / "g_00000100")
    vocoder = load_vocoder(folder)
    assert isinstance(vocoder, HiFiGANVocoder) and vocoder.samples_per_unit == 640
    units = np.array([1, 5, 5, 19, 0, 3, 3])
    wav = vocoder(units)
    assert len(wav) == len(units) * 640  # 7 frames = 0.28 s
    with torch.no_grad():
        expected = normed(torch.as_tensor(units)[None])[0].numpy()
    np.testing.assert_allclose(wav, expected, atol=1e-5)
    # a plain state dict in generator.pt, written by save(), loads too
    HiFiGANVocoder(model).save(tmp_path / "plain")
    assert len(load_vocoder(tmp_path / "plain")(units[:3])) == 3 * 640


def test_hifigan_bad_folders_are_named(tmp_path: Path) -> None:
    import json

    with pytest.raises(FileNotFoundError, match="no unit HiFi-GAN config"):
        HiFiGANVocoder.from_folder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"f0": True}))
    with pytest.raises(ValueError, match="f0 inputs are not supported"):
        HiFiGANVocoder.from_folder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(_tiny_hifigan_config().to_json()))
    with pytest.raises(FileNotFoundError, match="exactly one"):
        HiFiGANVocoder.from_folder(tmp_path)
    torch.save({"generator": {"dict.weight": torch.zeros(3, 3)}}, tmp_path / "generator.pt")
    with pytest.raises(ValueError, match="does not fit"):
        HiFiGANVocoder.from_folder(tmp_path)
    torch.save({"dict.weight": torch.zeros(20, 8)}, tmp_path / "generator.pt")
    with pytest.raises(ValueError, match="missing"):
        HiFiGANVocoder.from_folder(tmp_path)


def test_speak_writes_a_wav(tokenizer, tmp_path: Path, capsys) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    tokenizer.save(corpus / "units.pt")
    path = speak_to_wav(load_vocoder(None, corpus), [1, 2, 3, 4, 5], tmp_path / "a.wav")
    data, rate = soundfile.read(path)
    assert rate == 16000 and len(data) == 5 * 640
    assert (
        main(
            [
                "speak",
                "--data-dir",
                str(corpus),
                "--units",
                "1 2 3",
                "--out",
                str(tmp_path / "b.wav"),
            ]
        )
        == 0
    )
    assert "0.12 s" in capsys.readouterr().out and (tmp_path / "b.wav").is_file()
    assert main(["speak", "--data-dir", str(tmp_path), "--units", "1", "--out", "x.wav"]) == 1
    assert "no unit tokenizer" in capsys.readouterr().err
