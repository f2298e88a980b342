"""A tiny folder of spoken "words" (tones) with transcripts and word timings, for the stage tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from lst_lightning.data.speech.align import WordTiming, write_timings_jsonl


def make_audio_folder(root: Path, name: str = "audio", count: int = 4, shift: int = 0) -> Path:
    """``count`` utterances of 2-3 tone "words" with 0.12 s gaps; ``shift`` changes the tones.
    Writes ``<root>/<name>/utt<i>.wav`` + ``.txt`` and ``<root>/<name>.timings.jsonl``."""
    folder = root / name
    folder.mkdir(parents=True)
    table = []
    for i in range(count):
        parts, timings, t = [np.zeros(3200, dtype=np.float32)], [], 0.2
        for j in range(2 + i % 2):
            n = int(0.32 * 16000)
            freq = 300.0 * (1 + (i + j + shift) % 4)
            parts.append((0.3 * np.sin(2 * np.pi * freq * np.arange(n) / 16000)).astype("f4"))
            parts.append(np.zeros(1920, dtype=np.float32))
            timings.append(WordTiming(f"w{int(freq)}x{j}", t, t + 0.32))
            t += 0.32 + 0.12
        parts.append(np.zeros(1280, dtype=np.float32))
        soundfile.write(folder / f"utt{i}.wav", np.concatenate(parts), 16000)
        (folder / f"utt{i}.txt").write_text(" ".join(w.word for w in timings))
        table.append((f"utt{i}", timings))
    write_timings_jsonl(root / f"{name}.timings.jsonl", table)
    return folder
