"""Unit tokenizer speed: seconds of audio tokenised per second of wall time, on this machine's CPU.

``run()`` returns one row per measurement; ``python benchmarks/bench_units.py`` prints a markdown
table. The audio is generated (tones, chirps and noise bursts with pauses), so nothing is needed
from outside; speed does not depend on what is said. The tiny HuBERT is randomly initialised
(2 layers, width 64): it measures the pipeline, not a real HuBERT base (12 x 768), which is
roughly two orders of magnitude more compute per frame.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from lst_lightning.data.speech.units import HubertKMeansUnits, MelKMeansUnits


def speechlike_audio(seconds: float, seed: int = 0, chunk: float = 10.0) -> list[np.ndarray]:
    """Utterances of ``chunk`` seconds: segments of tones, chirps, noise and silence."""
    rng = np.random.default_rng(seed)
    waves = []
    for _ in range(max(1, int(seconds / chunk))):
        parts, total = [], 0
        while total < chunk * 16000:
            n = int(rng.integers(1600, 8000))
            t = np.arange(n) / 16000
            kind = rng.integers(4)
            if kind == 0:
                seg = np.sin(2 * np.pi * rng.uniform(100, 3000) * t)
            elif kind == 1:
                f0, f1 = rng.uniform(100, 3000, size=2)
                seg = np.sin(2 * np.pi * (f0 + (f1 - f0) * t / t[-1] / 2) * t)
            elif kind == 2:
                seg = rng.standard_normal(n)
            else:
                seg = np.zeros(n)
            parts.append(0.2 * seg)
            total += n
        waves.append(np.concatenate(parts)[: int(chunk * 16000)].astype(np.float32))
    return waves


def _measure(name: str, fn, waves: list[np.ndarray]) -> dict:
    fn(waves[0][:16000])  # warm-up
    start = time.perf_counter()
    frames = sum(len(fn(w)) for w in waves)
    wall = time.perf_counter() - start
    audio = sum(len(w) for w in waves) / 16000
    return {
        "measurement": name,
        "audio_s": round(audio, 1),
        "wall_s": round(wall, 3),
        "audio_s_per_s": round(audio / wall, 1),
        "frames": frames,
    }


def run(
    mel_seconds: float = 120.0, hubert_seconds: float = 20.0, fit_seconds: float = 600.0
) -> list[dict]:
    """Fit a 501-unit mel codebook on ``fit_seconds`` of audio, then time both tokenizers."""
    torch.set_num_threads(torch.get_num_threads())
    rows = []
    fit_waves = speechlike_audio(fit_seconds, seed=1)
    start = time.perf_counter()
    mel = MelKMeansUnits.fit(fit_waves, num_units=501, seed=0)
    wall = time.perf_counter() - start
    rows.append(
        {
            "measurement": "MelKMeansUnits.fit (501 units, k-means++ + 25 Lloyd iterations)",
            "audio_s": fit_seconds,
            "wall_s": round(wall, 3),
            "audio_s_per_s": round(fit_seconds / wall, 1),
            "frames": int(fit_seconds * 25),
        }
    )
    rows.append(
        _measure(
            "MelKMeansUnits (log-mel 40 x 3 frames, 501 units)", mel, speechlike_audio(mel_seconds)
        )
    )
    from transformers import HubertConfig, HubertModel

    config = HubertConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
    )
    torch.manual_seed(0)
    model = HubertModel(config).eval()
    hubert = HubertKMeansUnits.fit(model, speechlike_audio(60, seed=2), num_units=501, layer=2)
    rows.append(
        _measure(
            "HubertKMeansUnits (random tiny HuBERT 2 x 64, 501 units)",
            hubert,
            speechlike_audio(hubert_seconds),
        )
    )
    return rows


def markdown(rows: list[dict]) -> str:
    head = "| measurement | audio (s) | wall (s) | audio s / s | frames |\n| --- | --- | --- | --- | --- |"
    body = [
        f"| {r['measurement']} | {r['audio_s']} | {r['wall_s']} | {r['audio_s_per_s']} | {r['frames']} |"
        for r in rows
    ]
    return "\n".join([head, *body])


if __name__ == "__main__":
    print(f"torch threads: {torch.get_num_threads()}")
    print(markdown(run()))
