"""Unit tokenizers: the 25 Hz frame contract, determinism, no deduplication, save/load, HuBERT path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lst_lightning.data.speech.kmeans import nearest_centroid, train_kmeans
from lst_lightning.data.speech.units import (
    SAMPLES_PER_FRAME,
    HubertKMeansUnits,
    MelFeatureConfig,
    MelKMeansUnits,
    UnitTokenizer,
    hubert_features,
    load_codebook,
    load_unit_tokenizer,
)


def tones(count: int, seed: int = 0) -> list[np.ndarray]:
    """Piecewise tones with silences: distinct, repeatable 'phones' held for several frames."""
    rng = np.random.default_rng(seed)
    waves = []
    for _ in range(count):
        parts = []
        for _ in range(rng.integers(4, 9)):
            n = int(rng.integers(3, 12)) * SAMPLES_PER_FRAME + int(rng.integers(0, 640))
            freq = rng.choice([0.0, 220.0, 440.0, 880.0, 1760.0, 3000.0])
            t = np.arange(n) / 16000
            parts.append(0.3 * np.sin(2 * np.pi * freq * t) + 0.003 * rng.standard_normal(n))
        waves.append(np.concatenate(parts).astype(np.float32))
    return waves


@pytest.fixture(scope="module")
def mel_units() -> MelKMeansUnits:
    return MelKMeansUnits.fit(tones(12), num_units=16, seed=0)


@pytest.mark.parametrize("n", [0, 639, 640, 641, 1279, 1280, 16000, 16001, 48_000 + 639])
def test_mel_frame_count_is_n_div_640(mel_units, n):
    units = mel_units(np.zeros(n, dtype=np.float32) + 0.01)
    assert units.shape == (n // 640,)
    assert units.dtype == np.int64


def test_mel_fit_is_deterministic_and_seed_matters():
    waves = tones(8, seed=1)
    a = MelKMeansUnits.fit(waves, num_units=12, seed=3)
    b = MelKMeansUnits.fit(waves, num_units=12, seed=3)
    c = MelKMeansUnits.fit(waves, num_units=12, seed=4)
    assert torch.equal(a.centroids, b.centroids)
    assert not torch.equal(a.centroids, c.centroids)
    assert np.array_equal(a(waves[0]), b(waves[0]))


def test_units_are_not_deduplicated(mel_units):
    # A 0.8 s steady tone is 20 frames: it must give 20 units with repeats kept.
    t = np.arange(20 * 640) / 16000
    units = mel_units((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    assert len(units) == 20
    assert (np.diff(units) == 0).sum() >= 10


def test_mel_units_are_in_codebook_and_protocol(mel_units):
    assert isinstance(mel_units, UnitTokenizer)
    for w in tones(3, seed=5):
        units = mel_units(w)
        assert units.min() >= 0 and units.max() < mel_units.num_units
    # the codebook is used: distinct tones get distinct units
    assert len(np.unique(np.concatenate([mel_units(w) for w in tones(4)]))) >= 6


def test_mel_resamples_other_rates(mel_units):
    w = tones(1, seed=2)[0]
    import torchaudio.functional as AF

    w8k = AF.resample(torch.from_numpy(w), 16000, 8000).numpy()
    assert len(mel_units(w8k, sample_rate=8000)) == (len(w8k) * 2) // 640


def test_mel_save_load_roundtrip(mel_units, tmp_path):
    path = tmp_path / "units.pt"
    mel_units.save(path)
    loaded = load_unit_tokenizer(path)
    assert isinstance(loaded, MelKMeansUnits)
    for w in tones(3, seed=9):
        assert np.array_equal(loaded(w), mel_units(w))
    assert [p.name for p in tmp_path.iterdir()] == ["units.pt"]  # no temp file left


def test_mfcc_variant_and_bad_config():
    tok = MelKMeansUnits.fit(tones(4), num_units=8, config=MelFeatureConfig(kind="mfcc", context=0))
    assert tok.centroids.shape == (8, 13)
    with pytest.raises(ValueError, match="kind"):
        MelFeatureConfig(kind="spectrogram")


def test_bad_inputs_are_named(mel_units, tmp_path):
    with pytest.raises(ValueError, match="mono 1-D"):
        mel_units(np.zeros((2, 1600), dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        mel_units(np.full(1600, np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="at least 16 frames"):
        MelKMeansUnits.fit([np.zeros(640 * 5, dtype=np.float32)], num_units=16)
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bogus.pt"):
        load_unit_tokenizer(bogus)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_unit_tokenizer(tmp_path / "missing.pt")


def test_kmeans_recovers_separated_clusters():
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    labels = torch.arange(4).repeat_interleave(50)
    x = centres[labels] + 0.3 * torch.randn(200, 2, generator=gen)
    fitted = train_kmeans(x, 4, seed=0)
    assign = nearest_centroid(x, fitted)
    # same partition up to a relabelling
    for k in range(4):
        assert len(set(assign[labels == k].tolist())) == 1
    assert len(set(assign.tolist())) == 4


# -- HuBERT path: a randomly initialised tiny transformers HubertModel, codebook trained here ----------


@pytest.fixture(scope="module")
def tiny_hubert():
    from transformers import HubertConfig, HubertModel

    config = HubertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    torch.manual_seed(0)
    return HubertModel(config).eval()


def test_hubert_pools_50hz_to_25hz(tiny_hubert):
    w = tones(1, seed=3)[0]
    feats = hubert_features(tiny_hubert, w, layer=2)
    assert feats.shape == (len(w) // 640, 32)
    # frame i is the mean of 50 Hz frames 2i and 2i+1 of layer 2's output
    padded = torch.nn.functional.pad(torch.from_numpy(w), (0, 400 - 320)).unsqueeze(0)
    with torch.no_grad():
        hidden = tiny_hubert(padded, output_hidden_states=True).hidden_states[2][0]
    assert hidden.shape[0] == len(w) // 320
    torch.testing.assert_close(feats[3], hidden[6:8].mean(0))


def test_hubert_kmeans_fit_save_load(tiny_hubert, tmp_path):
    waves = tones(4, seed=4)
    model_dir = tmp_path / "hubert"
    tiny_hubert.save_pretrained(model_dir)
    tok = HubertKMeansUnits.fit(model_dir, waves, num_units=10, seed=0, layer=1)
    units = tok(waves[0])
    assert units.shape == (len(waves[0]) // 640,)
    assert 0 <= units.min() and units.max() < 10
    # user-supplied codebook (.npy) path gives the same units
    np.save(tmp_path / "codebook.npy", tok.centroids.numpy())
    again = HubertKMeansUnits.from_pretrained(model_dir, tmp_path / "codebook.npy", layer=1)
    assert np.array_equal(again(waves[1]), tok(waves[1]))
    tok.save(tmp_path / "hubert_units.pt")
    loaded = load_unit_tokenizer(tmp_path / "hubert_units.pt")
    assert isinstance(loaded, HubertKMeansUnits) and loaded.num_units == 10
    assert np.array_equal(loaded(waves[2]), tok(waves[2]))
    assert load_codebook(tmp_path / "codebook.npy").shape == (10, 32)


def test_hubert_in_memory_model_cannot_be_saved_and_layer_is_checked(tiny_hubert, tmp_path):
    tok = HubertKMeansUnits.fit(tiny_hubert, tones(2), num_units=4, layer=2)
    with pytest.raises(ValueError, match="in-memory"):
        tok.save(tmp_path / "x.pt")
    with pytest.raises(ValueError, match="layer must be in"):
        HubertKMeansUnits(tiny_hubert, tok.centroids, layer=3)
    with pytest.raises(ValueError, match="width"):
        HubertKMeansUnits(tiny_hubert, torch.zeros(4, 7), layer=2)


def test_torchaudio_model_path():
    """A torchaudio Wav2Vec2Model (hubert_base's class), small, in memory: the same 25 Hz contract."""
    import torchaudio.models

    torch.manual_seed(0)
    model = torchaudio.models.wav2vec2_model(
        extractor_mode="group_norm",
        extractor_conv_layer_config=None,
        extractor_conv_bias=False,
        encoder_embed_dim=24,
        encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=16,
        encoder_pos_conv_groups=2,
        encoder_num_layers=2,
        encoder_num_heads=2,
        encoder_attention_dropout=0.0,
        encoder_ff_interm_features=48,
        encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0,
        encoder_layer_norm_first=False,
        encoder_layer_drop=0.0,
        aux_num_out=None,
    ).eval()
    waves = tones(3, seed=6)
    tok = HubertKMeansUnits.fit(model, waves, num_units=6, layer=2)
    assert tok.pool == 2
    for w in waves:
        assert tok(w).shape == (len(w) // 640,)


@pytest.mark.slow
def test_torchaudio_hubert_base_weights_file(tmp_path):
    import torchaudio.models

    torch.save(torchaudio.models.hubert_base().state_dict(), tmp_path / "hubert_base.pt")
    waves = tones(2, seed=8)
    tok = HubertKMeansUnits.fit(tmp_path / "hubert_base.pt", waves, num_units=4, layer=6)
    assert tok.centroids.shape == (4, 768)
    assert tok(waves[0]).shape == (len(waves[0]) // 640,)
    tok.save(tmp_path / "units.pt")
    assert np.array_equal(load_unit_tokenizer(tmp_path / "units.pt")(waves[1]), tok(waves[1]))
