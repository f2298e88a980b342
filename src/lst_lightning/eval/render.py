"""Speech renderers: text -> speech units, for the spoken versions of the benchmarks.

The paper renders the prompt and each ending separately with a TTS engine and joins them; the kit
does the same with any :class:`SpeechRenderer`. Two are provided:

- :class:`GeneratedVoiceRenderer` speaks like the generated default corpus (the same letter -> unit
  voice, rebuilt from the corpus seed), with frame durations and silences drawn from a stream the
  corpus never used, so the renderings are new speech in the training voice.
- :class:`TTSRenderer` synthesises audio with the kit's TTS engine (``lst_lightning.data.corpora.tts``) in a
  voice held out of training and turns it into units with the training unit tokenizer. Each text is
  synthesised from the same saved engine state, so its units do not depend on the build order.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from lst_lightning.data.records import DEFAULT_NUM_UNITS
from lst_lightning.eval.tasks import SAMPLE_RATE, BenchmarkItem, UnitTokenizer, tokenize_audio

RENDER_STREAM = 97
"""Seed stream of the evaluation renderings (the corpus generator uses streams 1-4)."""


@runtime_checkable
class SpeechRenderer(Protocol):
    """Anything that turns a text into a sequence of speech units (deterministically)."""

    name: str

    def render(self, text: str) -> tuple[int, ...]: ...


class GeneratedVoiceRenderer:
    """The generated corpus' voice: each letter is one fixed unit held 1-3 frames, silence between
    words and at both ends (see ``lst_lightning.data.corpora.synthetic.UnitVoice``)."""

    def __init__(self, seed: int, num_units: int = DEFAULT_NUM_UNITS) -> None:
        from lst_lightning.data.corpora.synthetic import UnitVoice

        self.seed = seed
        self.num_units = num_units
        self.voice = UnitVoice(seed, num_units)
        self.name = f"generated(seed={seed})"

    @classmethod
    def from_corpus(cls, corpus_dir: str | Path) -> GeneratedVoiceRenderer:
        """Rebuild the voice of a generated corpus from its ``stats.json`` and check it matches."""
        stats_path = Path(corpus_dir) / "stats.json"
        if not stats_path.is_file():
            raise FileNotFoundError(f"no stats.json in {corpus_dir}: is it a generated corpus?")
        stats = json.loads(stats_path.read_text())
        if stats.get("corpus") != "generated":
            raise ValueError(
                f"{stats_path}: corpus is {stats.get('corpus')!r}, not 'generated'; "
                "use the tts renderer for it"
            )
        renderer = cls(int(stats["seed"]), int(stats["num_units"]))
        if {k: int(v) for k, v in stats["letter_units"].items()} != renderer.voice.letter_units:
            raise ValueError(
                f"{stats_path}: letter_units do not match the voice of seed {stats['seed']}"
            )
        return renderer

    def render(self, text: str) -> tuple[int, ...]:
        rng = np.random.default_rng([self.seed, RENDER_STREAM, zlib.crc32(text.encode("utf-8"))])
        return self.voice.utterance("eval", text, rng).units


Synthesize = Callable[[str, str], tuple[np.ndarray, Any]]
"""``synthesize(text, voice) -> (16 kHz float32 waveform, word timings)``."""


class TTSRenderer:
    """TTS audio in a given voice, turned into units by the training unit tokenizer."""

    def __init__(
        self,
        voice: str,
        tokenizer: UnitTokenizer,
        synthesize: Synthesize | None = None,
        num_units: int | None = None,
    ) -> None:
        """``synthesize`` defaults to a ``lst_lightning.data.corpora.tts.ResettingEngine`` in
        ``voice`` (imported lazily, so the kit works without a TTS engine until this renderer is
        used): it puts espeak-ng back into one saved state before every text, so a text renders
        the same whatever was rendered before it (plain espeak-ng carries state between calls)."""
        if synthesize is None:
            try:
                from lst_lightning.data.corpora.tts import ResettingEngine
            except ImportError as e:
                raise ImportError(
                    f"the tts renderer needs lst_lightning.data.corpora.tts.ResettingEngine ({e})"
                ) from None
            engine = ResettingEngine(voice)

            def synthesize(text: str, voice: str) -> tuple[np.ndarray, list]:
                return engine.synthesize_audio(text), []  # units only: no word timings needed

        self.voice = voice
        self.tokenizer = tokenizer
        self.synthesize = synthesize
        self.num_units = num_units
        self.name = f"tts(voice={voice})"

    @classmethod
    def from_files(
        cls, voice: str, tokenizer_path: str | Path, num_units: int | None = None
    ) -> TTSRenderer:
        """Load the unit tokenizer with ``lst_lightning.data.speech.units.load_unit_tokenizer``."""
        try:
            from lst_lightning.data.speech.units import load_unit_tokenizer
        except ImportError as e:
            raise ImportError(
                f"the tts renderer needs lst_lightning.data.speech.units.load_unit_tokenizer ({e})"
            ) from None
        return cls(voice, load_unit_tokenizer(tokenizer_path), num_units=num_units)

    def render(self, text: str) -> tuple[int, ...]:
        wav, _timings = self.synthesize(text, self.voice)
        wav = np.asarray(wav, dtype=np.float32)
        if wav.ndim != 1 or wav.size == 0:
            raise ValueError(f"synthesize({text[:40]!r}) gave audio of shape {wav.shape}")
        units = tokenize_audio(self.tokenizer, wav, f"rendering of {text[:40]!r}")
        if self.num_units is not None and any(not 0 <= u < self.num_units for u in units):
            raise ValueError(f"the unit tokenizer gave a unit outside [0, {self.num_units})")
        if not units:
            raise ValueError(f"the rendering of {text[:40]!r} has no units")
        return units


def speak_item(item: BenchmarkItem, renderer: SpeechRenderer) -> BenchmarkItem:
    """Add the spoken form: the prompt and every ending rendered separately (joined at scoring).

    An empty prompt (minimal pairs) stays empty rather than becoming a rendering of silence.
    """
    if item.prompt is None or item.endings is None:
        raise ValueError(f"{item.id}: cannot render an item without its text")
    prompt_units = renderer.render(item.prompt) if item.prompt else ()
    endings = tuple(renderer.render(e) for e in item.endings)
    return BenchmarkItem(item.id, item.prompt, item.endings, item.label, prompt_units, endings)


__all__ = [
    "SAMPLE_RATE",
    "GeneratedVoiceRenderer",
    "SpeechRenderer",
    "TTSRenderer",
    "speak_item",
]
