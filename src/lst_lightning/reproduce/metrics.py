"""Headline metrics that compare across systems, and their statistics over seeds.

Nats per token do not compare: LST, the Base SpeechLLM and the BPE SpeechLLM predict different
tokens (units, unit-BPE pieces) at different rates. What they share is the signal, so the kit
reports **speech bits per second of audio** (the summed code length of each utterance's unit
sequence, over its duration at 25 frames per second) and **text bits per character**, on one fixed
held-out set that does not depend on the data seed:

- speech: every utterance of ``valid.jsonl`` (held-out utterances in the training voices) and of
  ``heldout_voice.jsonl`` (a voice never trained on; the embedded corpus has one, the generated
  corpus not), or every ``speech_every``-th of them, each as a speech-only document
  ``BOS <s> units EOS``; only the unit tokens are scored (not ``<s>``, not ``EOS``);
- text: the documents of ``text_valid.txt`` in file order until ``text_chars`` characters
  (a document longer than the rest of the allowance is cut at a space), each as
  ``BOS <t> text EOS``, its text pieces scored.

LST reads static patches of its patch size, as in every evaluation of the kit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lst_lightning.callbacks.curriculum import FRAME_RATE_HZ
from lst_lightning.data.records import read_aligned_jsonl
from lst_lightning.data.stream.documents import EncodedDocument, SpeechRun
from lst_lightning.data.stream.patching import static_patch_lengths
from lst_lightning.data.vocab import TokenSpace
from lst_lightning.eval.scoring import Candidate, score_candidates

SPEECH_FILES = ("valid.jsonl", "heldout_voice.jsonl")
ROW_TOKENS, ROWS = 512, 16
"""Packed rows of the scoring batches: short rows keep the CPU's masked attention cheap."""

T_975 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
    10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042,
}  # fmt: skip
"""Two-sided 95 % quantiles of Student's t by degrees of freedom (above 30: 1.96)."""


@dataclass(frozen=True)
class HeldOut:
    """The fixed held-out documents, tokenised for one token space and patch size."""

    speech: list[Candidate]
    seconds: float
    text: list[Candidate]
    chars: int


def _candidate(tokens: list[int], start: int, end: int, runs, patch_size, chars) -> Candidate:
    array = np.asarray(tokens, dtype=np.int64)
    if patch_size is None:
        lengths = np.ones(len(array), dtype=np.int64)
    else:
        doc = EncodedDocument(array, tuple(runs), "interleaved")
        lengths = np.asarray(static_patch_lengths(doc, patch_size), dtype=np.int64)
    return Candidate(array, start, end, lengths, chars)


def text_documents(path: Path, text_chars: int) -> list[str]:
    """The first ``text_chars`` characters of held-out text, whole documents where they fit."""
    out, left = [], text_chars
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or left <= 0:
            continue
        if len(line) > left:
            cut = line.rfind(" ", 0, left)
            line = line[: cut if cut > 0 else left]
        out.append(line)
        left -= len(line)
    return out


def held_out(
    data_dir: Path,
    space: TokenSpace,
    patch_size: int | None,
    text_chars: int,
    speech_every: int = 1,
) -> HeldOut:
    """The fixed held-out set of :mod:`this module <lst_lightning.reproduce.metrics>`, tokenised
    for ``space`` (with static patches of ``patch_size``, ``None`` for token-level models)."""
    speech, frames = [], 0
    for name in SPEECH_FILES:
        path = data_dir / name
        if not path.is_file():
            if name == SPEECH_FILES[0]:
                raise FileNotFoundError(
                    f"reproduce: the held-out speech file {path} does not exist"
                )
            continue  # a corpus without a held-out voice (the generated one)
        for i, utt in enumerate(read_aligned_jsonl(path, space.num_units)):
            units = utt.units
            if i % speech_every:
                continue
            if not units:
                continue
            ids = list(space.encode_units(units))
            tokens = [space.bos_id, space.speech_id, *ids, space.eos_id]
            run = SpeechRun(
                start=1, length=1 + len(ids), segments=(len(units),), silence=(False,),
                words=(utt.transcript,),
            )  # fmt: skip
            speech.append(_candidate(tokens, 2, 2 + len(ids), [run], patch_size, 0))
            frames += len(units)
    texts = text_documents(data_dir / "text_valid.txt", text_chars)
    text = []
    for doc in texts:
        ids = list(space.encode_text(doc))
        tokens = [space.bos_id, space.text_id, *ids, space.eos_id]
        text.append(_candidate(tokens, 2, 2 + len(ids), [], patch_size, len(doc)))
    if not speech or not text:
        raise ValueError(f"reproduce: {data_dir} gives no held-out speech or no held-out text")
    return HeldOut(speech, frames / FRAME_RATE_HZ, text, sum(len(t) for t in texts))


def bits(model, held: HeldOut, space: TokenSpace) -> dict[str, float]:
    """``speech_bits_per_second`` and ``text_bits_per_char`` of ``model`` on ``held``."""
    speech = -score_candidates(
        model, held.speech, space, max_tokens=ROW_TOKENS, max_rows=ROWS
    ).sum()
    text = -score_candidates(model, held.text, space, max_tokens=ROW_TOKENS, max_rows=ROWS).sum()
    return {
        "speech_bits_per_second": float(speech / math.log(2) / held.seconds),
        "text_bits_per_char": float(text / math.log(2) / held.chars),
    }


def t_quantile(df: int) -> float:
    if df < 1:
        return float("nan")
    known = [k for k in T_975 if k <= df]
    return T_975[max(known)] if df <= 30 else 1.96


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (NaN sd for one value)."""
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else float("nan")


@dataclass(frozen=True)
class Paired:
    """LST minus baseline, paired by seed: mean difference, its 95 % t interval, and the count."""

    mean: float
    low: float
    high: float
    n: int
    wins: int
    """Seeds at which the difference is negative (LST better: fewer bits)."""


def paired_difference(lst: Sequence[float], base: Sequence[float]) -> Paired:
    """The paired difference ``lst[i] - base[i]`` (same seed ``i``) with a 95 % t interval."""
    if len(lst) != len(base) or not lst:
        raise ValueError(
            f"paired_difference needs equal, non-empty lists, got {len(lst)}, {len(base)}"
        )
    d = np.asarray(lst, dtype=np.float64) - np.asarray(base, dtype=np.float64)
    mean = float(d.mean())
    if len(d) < 2:
        return Paired(mean, float("nan"), float("nan"), 1, int((d < 0).sum()))
    half = t_quantile(len(d) - 1) * float(d.std(ddof=1)) / math.sqrt(len(d))
    return Paired(mean, mean - half, mean + half, len(d), int((d < 0).sum()))
