"""The downstream evaluation sets, each utterance with its transcript, units and original audio.

=================  ==========================================================================
``valid``          the embedded corpus's held-out split (training voices, unseen sentences):
                   ``valid.jsonl``; its audio is not kept in the corpus folder, so it is
                   re-synthesised with espeak-ng from the corpus's own plan (``build.json``:
                   same sentence, voice, rate and seed), and checked against the stored units
``heldout_voice``  the held-out voice: ``heldout_voice.jsonl`` + ``heldout_voice_audio/``
``librivox``       real speech (:mod:`.realspeech`), built with the corpus's unit tokenizer
``asterisk``       real speech, 8 kHz telephone prompts
=================  ==========================================================================

``limit`` keeps that many utterances, evenly spaced through the set (deterministic), so a short
measurement still spans the set. The training split's audio is available the same way
(:func:`embedded_split_audio`) for fitting a vocoder without touching evaluation audio.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lst_lightning.data.records import read_aligned_jsonl
from lst_lightning.data.speech.audio import load_audio
from lst_lightning.data.speech.units import load_unit_tokenizer
from lst_lightning.downstream.realspeech import SETS as REAL_SETS
from lst_lightning.downstream.realspeech import read_real_set
from lst_lightning.downstream.tasks import SpeechText

EMBEDDED_SETS = ("valid", "heldout_voice")
ALL_SETS = EMBEDDED_SETS + REAL_SETS


@dataclass(frozen=True)
class EvalUtterance:
    """One evaluation utterance: transcript and ground-truth units, and its 16 kHz audio."""

    item: SpeechText
    waveform: np.ndarray


@dataclass(frozen=True)
class EvalSet:
    name: str
    utterances: tuple[EvalUtterance, ...]
    note: str = ""
    """How the audio was obtained, or what was left out (for reports)."""

    @property
    def items(self) -> list[SpeechText]:
        return [u.item for u in self.utterances]

    @property
    def seconds(self) -> float:
        return sum(len(u.waveform) for u in self.utterances) / 16000


def spread(n: int, limit: int | None) -> list[int]:
    """``limit`` indices evenly spaced over ``range(n)`` (all of them when ``limit`` is None)."""
    if limit is None or limit >= n:
        return list(range(n))
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    return sorted({int(i) for i in np.linspace(0, n - 1, limit).round()})


def _plan(corpus: Path):
    from lst_lightning.data.corpora.embedded import EmbeddedConfig, load_paragraphs, plan_corpus

    build = corpus / "build.json"
    if not build.is_file():
        raise FileNotFoundError(f"{build} is missing: {corpus} is not an embedded corpus")
    raw = json.loads(build.read_text())["config"]
    config = EmbeddedConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
    return plan_corpus(config, load_paragraphs(config))


def embedded_split_audio(
    corpus: str | Path, split: str, file_ids: Sequence[str] | None = None, limit: int | None = None
) -> list[tuple[str, np.ndarray]]:
    """Re-synthesise utterances of ``split`` (``train`` / ``valid``) from the corpus's plan:
    ``file_ids`` when given, else ``limit`` evenly spaced ones. Needs espeak-ng and the Austen
    package (``make setup-system``)."""
    from lst_lightning.data.corpora.tts import synthesize

    planned = [u for u in _plan(Path(corpus)).utterances if u.split == split]
    if file_ids is not None:
        by_id = {u.file_id: u for u in planned}
        missing = [f for f in file_ids if f not in by_id]
        if missing:
            raise ValueError(f"{corpus}: {missing[0]} is not a planned {split} utterance")
        planned = [by_id[f] for f in file_ids]
    else:
        planned = [planned[i] for i in spread(len(planned), limit)]
    return [(u.file_id, synthesize(u.text, u.voice, u.rate, u.seed)[0]) for u in planned]


def embedded_valid(corpus: str | Path, limit: int | None = None) -> EvalSet:
    """The held-out split with re-synthesised audio, compared with the stored units."""
    corpus = Path(corpus)
    utts = read_aligned_jsonl(corpus / "valid.jsonl")
    utts = [utts[i] for i in spread(len(utts), limit)]
    audio = dict(embedded_split_audio(corpus, "valid", [u.file_id for u in utts]))
    tokenizer = load_unit_tokenizer(corpus / "units.pt")
    out, same, frames = [], 0, 0
    for u in utts:
        wav = audio[u.file_id]
        units = tokenizer(wav)
        n = min(len(units), len(u.units))
        same += int((units[:n] == np.asarray(u.units[:n])).sum())
        frames += len(u.units)
        out.append(EvalUtterance(SpeechText.from_aligned(u), wav))
    # espeak-ng's output is not bit-identical from run to run; report how close it came
    note = f"audio re-synthesised from build.json (its units equal valid.jsonl's on {100 * same / frames:.1f}% of frames)"
    return EvalSet("valid", tuple(out), note)


def embedded_heldout_voice(corpus: str | Path, limit: int | None = None) -> EvalSet:
    """The held-out voice's utterances and their stored audio."""
    from datasets import load_from_disk

    corpus = Path(corpus)
    utts = read_aligned_jsonl(corpus / "heldout_voice.jsonl")
    utts = [utts[i] for i in spread(len(utts), limit)]
    rows = load_from_disk(str(corpus / "heldout_voice_audio"))
    index = {fid: i for i, fid in enumerate(rows["file_id"])}
    out = []
    for u in utts:
        if u.file_id not in index:
            raise ValueError(f"{corpus / 'heldout_voice_audio'} has no audio for {u.file_id}")
        row = rows[index[u.file_id]]
        out.append(
            EvalUtterance(SpeechText.from_aligned(u), load_audio(row["audio"]["bytes"], u.file_id))
        )
    return EvalSet("heldout_voice", tuple(out), "stored audio")


def real_eval_set(work: str | Path, name: str, limit: int | None = None) -> EvalSet:
    """A built real-speech set (``python -m lst_lightning.downstream.realspeech``)."""
    built = read_real_set(work)
    built = [built[i] for i in spread(len(built), limit)]
    out = [EvalUtterance(item, load_audio(wav, item.file_id)) for item, wav in built]
    return EvalSet(name, tuple(out), "real recordings")


def load_eval_set(
    name: str,
    corpus: str | Path = "data/embedded",
    real_dir: str | Path = "data/realspeech",
    limit: int | None = None,
) -> EvalSet:
    """One set by name (see the module docstring)."""
    if name == "valid":
        return embedded_valid(corpus, limit)
    if name == "heldout_voice":
        return embedded_heldout_voice(corpus, limit)
    if name in REAL_SETS:
        return real_eval_set(Path(real_dir) / name, name, limit)
    raise ValueError(f"evaluation set must be one of {ALL_SETS}, got {name!r}")
