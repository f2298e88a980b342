"""Word alignments: word timings in seconds -> the paper's aligned record in 25 Hz unit frames.

Timings come from one of three sources, all ending in a list of :class:`WordTiming`:

- a TTS engine's own word timings (the embedded corpus) or any precomputed alignment, read from a
  **timings JSONL** file (:func:`read_timings_jsonl`), one object per utterance::

      {"file_id": "a/b/0001", "words": [{"word": "hello", "start": 0.12, "end": 0.48}, ...]}

  times in seconds from the start of the audio, words in spoken order, ``start <= end``;
- CTC forced alignment (:class:`CTCAligner`): a user-supplied CTC model's frame log-probabilities
  and its character vocabulary, aligned with ``torchaudio.functional.forced_align``.

:func:`utterance_from_timings` turns timings plus the utterance's unit sequence into an
:class:`~lst_lightning.data.records.AlignedUtterance`: word ``w`` gets frames
``[round(start * 25), round(end * 25))``, every gap (leading and trailing included) becomes a
``[SIL]`` segment, and every frame lies in exactly one segment. :func:`check_words` verifies that
a transcript and an alignment carry the same words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lst_lightning.data.records import (
    SILENCE,
    AlignedUtterance,
    AlignedWord,
    write_text_atomic,
)
from lst_lightning.data.speech.audio import SAMPLE_RATE, RecordError
from lst_lightning.data.speech.units import FRAME_RATE_HZ, time_to_frame

DEFAULT_TOLERANCE_FRAMES = 2
"""How far (in 25 Hz frames, 80 ms) a word may end past the last unit frame before it is an error;
TTS engines and aligners often pad or round the final boundary by a frame or two."""


@dataclass(frozen=True)
class WordTiming:
    """One spoken word and its start / end time in seconds from the start of the audio."""

    word: str
    start: float
    end: float

    def __post_init__(self) -> None:
        if not self.word or self.word != self.word.strip() or any(c.isspace() for c in self.word):
            raise ValueError(f"word {self.word!r} must be non-empty and contain no whitespace")
        if self.word == SILENCE:
            raise ValueError(f"{SILENCE} is not a word: gaps are derived from the timings")
        if not (np.isfinite(self.start) and np.isfinite(self.end)):
            raise ValueError(f"word {self.word!r}: non-finite time ({self.start}, {self.end})")
        if self.start < 0 or self.end < self.start:
            raise ValueError(
                f"word {self.word!r}: needs 0 <= start <= end, got ({self.start}, {self.end})"
            )


def normalize_words(text: str) -> list[str]:
    """Transcript -> words as the kit stores them: lower case, letters/digits/apostrophes only.

    Matches the MLS fixture's style (``don't``, no punctuation); a token with none of those
    characters (a lone dash, say) is dropped.
    """
    words = []
    for token in text.lower().split():
        word = re.sub(r"[^\w']|_", "", token).strip("'")
        if word:
            words.append(word)
    return words


def check_words(
    file_id: str, transcript_words: Sequence[str], timings: Sequence[WordTiming]
) -> None:
    """Raise a :class:`RecordError` naming ``file_id`` and the first difference when the words differ."""
    aligned = [t.word for t in timings]
    if list(transcript_words) == aligned:
        return
    for i, (a, b) in enumerate(zip(transcript_words, aligned, strict=False)):
        if a != b:
            raise RecordError(
                file_id,
                "transcript does not match alignment",
                f"word {i}: transcript has {a!r}, alignment has {b!r}",
            )
    raise RecordError(
        file_id,
        "transcript does not match alignment",
        f"transcript has {len(transcript_words)} words, alignment has {len(aligned)}",
    )


def utterance_from_timings(
    file_id: str,
    timings: Sequence[WordTiming],
    units: Sequence[int] | np.ndarray,
    tolerance_frames: int = DEFAULT_TOLERANCE_FRAMES,
) -> AlignedUtterance:
    """The aligned record of one utterance: words at ``[round(start*25), round(end*25))``, gaps as ``[SIL]``.

    Boundaries are clipped to the utterance's ``len(units)`` frames; a word may end up to
    ``tolerance_frames`` past the end (clipped), but one that starts or ends later, or that starts
    before the previous word, is a :class:`RecordError`. After rounding, a word that would overlap
    the previous one starts where the previous one ends, so a word may get zero frames. Gaps of
    zero frames produce no ``[SIL]`` segment.
    """
    units = tuple(int(u) for u in units)
    total = len(units)
    if not timings:
        raise RecordError(file_id, "empty alignment", "no word timings")
    words: list[AlignedWord] = []
    cursor = 0
    prev_start = -1.0
    for i, t in enumerate(timings):
        if t.start < prev_start:
            raise RecordError(
                file_id,
                "alignment out of order",
                f"word {i} {t.word!r} starts at {t.start:.3f} s, "
                f"before the previous word ({prev_start:.3f} s)",
            )
        prev_start = t.start
        start, end = time_to_frame(t.start), time_to_frame(t.end)
        if end > total + tolerance_frames:
            raise RecordError(
                file_id,
                "alignment longer than audio",
                f"word {i} {t.word!r} ends at frame {end} ({t.end:.3f} s) but the audio has {total} "
                f"unit frames ({total / FRAME_RATE_HZ:.3f} s)",
            )
        start = min(max(start, cursor), total)
        end = min(max(end, start), total)
        if start > cursor:
            words.append(AlignedWord(SILENCE, units[cursor:start]))
        words.append(AlignedWord(t.word, units[start:end]))
        cursor = end
    if cursor < total:
        words.append(AlignedWord(SILENCE, units[cursor:]))
    return AlignedUtterance(file_id, tuple(words))


# -- precomputed timings files ----------------------------------------------------------------------------


def read_timings_jsonl(path: str | Path) -> dict[str, list[WordTiming]]:
    """Read a timings JSONL file (format in the module docstring); errors name ``file:line``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"alignment file {path} does not exist")
    out: dict[str, list[WordTiming]] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("file_id"), str):
                raise ValueError(f"{where}: expected an object with a string 'file_id'")
            if not isinstance(obj.get("words"), list):
                raise ValueError(f"{where} ({obj['file_id']}): 'words' must be a list")
            if obj["file_id"] in out:
                raise ValueError(f"{where}: file_id {obj['file_id']!r} appears twice")
            timings = []
            for j, w in enumerate(obj["words"]):
                try:
                    timings.append(WordTiming(str(w["word"]), float(w["start"]), float(w["end"])))
                except (KeyError, TypeError, ValueError) as e:
                    raise ValueError(
                        f"{where} ({obj['file_id']}): word {j} needs 'word', 'start', 'end' ({e})"
                    ) from None
            out[obj["file_id"]] = timings
    return out


def timings_record(file_id: str, timings: Iterable[WordTiming]) -> str:
    """One line of a timings JSONL file (without the newline)."""
    words = [{"word": t.word, "start": t.start, "end": t.end} for t in timings]
    return json.dumps({"file_id": file_id, "words": words})


def write_timings_jsonl(
    path: str | Path, alignments: Iterable[tuple[str, Sequence[WordTiming]]]
) -> None:
    """Write ``(file_id, timings)`` pairs as a timings JSONL file, atomically."""
    write_text_atomic(path, "".join(timings_record(f, t) + "\n" for f, t in alignments))


# -- CTC forced alignment ---------------------------------------------------------------------------------


def ctc_word_timings(
    file_id: str,
    log_probs: torch.Tensor,
    words: Sequence[str],
    vocabulary: dict[str, int],
    frame_seconds: float,
    blank: int = 0,
) -> list[WordTiming]:
    """Force-align ``words`` to CTC frame log-probabilities ``[T, C]`` and return word timings.

    Each word's characters are looked up in ``vocabulary`` (exact, then upper case, then lower
    case); the word separator is not a target, so a word spans from its first character's first
    frame to its last character's last frame. CTC frame ``f`` starts at ``f * frame_seconds``.
    """
    if log_probs.ndim != 2:
        raise ValueError(f"{file_id}: CTC log-probabilities must be [frames, classes]")
    if not words:
        raise RecordError(file_id, "empty transcript")
    targets: list[int] = []
    lengths: list[int] = []
    for word in words:
        ids = []
        for ch in word:
            for key in (ch, ch.upper(), ch.lower()):
                if key in vocabulary:
                    ids.append(vocabulary[key])
                    break
            else:
                raise RecordError(
                    file_id, "character not in the CTC vocabulary", f"{ch!r} in word {word!r}"
                )
        targets.extend(ids)
        lengths.append(len(ids))
    import torchaudio.functional as AF

    emissions = log_probs.float().log_softmax(-1).unsqueeze(0).cpu()
    try:
        path, scores = AF.forced_align(emissions, torch.tensor([targets]), blank=blank)
    except RuntimeError as e:
        raise RecordError(
            file_id,
            "CTC alignment failed",
            f"{len(targets)} characters in {log_probs.shape[0]} CTC frames ({e})",
        ) from None
    spans = AF.merge_tokens(path[0], scores[0].exp())
    if len(spans) != len(targets):
        raise RecordError(
            file_id, "CTC alignment failed", "token spans do not match the transcript"
        )
    timings = []
    i = 0
    for word, n in zip(words, lengths, strict=True):
        first, last = spans[i], spans[i + n - 1]
        timings.append(WordTiming(word, first.start * frame_seconds, last.end * frame_seconds))
        i += n
    return timings


class CTCAligner:
    """Word timings from a user-supplied CTC model and its character vocabulary.

    ``model`` maps a ``[1, samples]`` float tensor at 16 kHz to logits ``[1, frames, classes]``
    (a transformers ``*ForCTC`` model's output object with ``.logits`` works too); each of its
    frames lasts ``frame_seconds`` (20 ms for wav2vec2). :meth:`from_pretrained` opens a local
    transformers CTC model folder with its ``vocab.json``.
    """

    def __init__(
        self,
        model: Callable[[torch.Tensor], object],
        vocabulary: dict[str, int],
        frame_seconds: float,
        blank: int = 0,
    ) -> None:
        if frame_seconds <= 0:
            raise ValueError(f"frame_seconds must be positive, got {frame_seconds}")
        self.model = model
        self.vocabulary = dict(vocabulary)
        self.frame_seconds = frame_seconds
        self.blank = blank

    @classmethod
    def from_pretrained(cls, path: str | Path, blank_token: str = "<pad>") -> CTCAligner:
        """A local transformers CTC model (e.g. ``Wav2Vec2ForCTC``) and the ``vocab.json`` beside it."""
        from transformers import AutoModelForCTC

        path = Path(path)
        vocab_file = path / "vocab.json"
        if not vocab_file.is_file():
            raise FileNotFoundError(
                f"{path}: a CTC model folder needs vocab.json (character -> id)"
            )
        vocabulary = json.loads(vocab_file.read_text(encoding="utf-8"))
        if blank_token not in vocabulary:
            raise ValueError(
                f"{vocab_file}: the blank token {blank_token!r} is not in the vocabulary"
            )
        model = AutoModelForCTC.from_pretrained(path, local_files_only=True).eval()
        hop = int(np.prod(model.config.conv_stride))
        return cls(model, vocabulary, hop / SAMPLE_RATE, blank=vocabulary[blank_token])

    @torch.no_grad()
    def __call__(
        self, file_id: str, waveform16k: np.ndarray, words: Sequence[str]
    ) -> list[WordTiming]:
        wav = torch.from_numpy(np.ascontiguousarray(waveform16k, dtype=np.float32)).unsqueeze(0)
        out = self.model(wav)
        logits = getattr(out, "logits", out)
        if not isinstance(logits, torch.Tensor) or logits.ndim != 3:
            raise TypeError("the CTC model must return logits [1, frames, classes] (or .logits)")
        return ctc_word_timings(
            file_id, logits[0], words, self.vocabulary, self.frame_seconds, self.blank
        )
