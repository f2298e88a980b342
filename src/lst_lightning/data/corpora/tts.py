"""Local text-to-speech with true word timings: espeak-ng through its C library.

The embedded corpus needs speech whose word boundaries are known. espeak-ng (Debian's
``espeak-ng``) synthesises offline, has many English voices (accents ``en-us``, ``en-gb``,
``en-gb-scotland``, ``en-029``... times variants ``+m1`` .. ``+f5``), and its library reports, while
it synthesises, a *word* event (the word's character position in the text and the sample where its
sound starts) and a *phoneme* event for every phoneme, pauses (``_``, ``_:``) included. A word's
timing is therefore the engine's own: it starts at its word event and ends at the first pause
after its first voiced phoneme, or at the next word's start. The library is loaded with ctypes; no
Python binding is needed.

Two engine habits are handled here:

- espeak-ng speaks some common pairs ("of the", "to be", "do not") as one dictionary entry and
  reports one word event for both. :func:`speakable_text` joins words that have no punctuation
  between them with a zero-width space instead of a space, which keeps them apart (one event per
  word) without changing the pronunciation or pauses; titles such as ``Mr.`` lose their full stop,
  which espeak-ng would otherwise read as the end of a sentence. The text keeps its length, so the
  engine's character positions index the original text.
- Synthesis is not a pure function of the text: it carries state from one call to the next, which
  neither re-initialising nor anything in the API resets. Output is deterministic for a fresh
  process that synthesises the same utterances in the same order with the same seeds, so the
  embedded build synthesises each shard in a fresh worker process. Where each text must sound the
  same whatever came before (benchmark items), :class:`ResettingEngine` restores the library's
  saved globals before every text.

Audio comes out at the engine's rate (22050 Hz), is converted to float32 and resampled to 16 kHz.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lst_lightning.data.speech.align import WordTiming
from lst_lightning.data.speech.audio import SAMPLE_RATE

ESPEAK_MISSING = (
    "espeak-ng is not installed: run `make setup` as root or `apt-get install espeak-ng`"
)
DEFAULT_VOICE = "en-us"
DEFAULT_RATE_WPM = 175
"""espeak-ng's default speaking rate in words per minute (it accepts 80-450)."""
ZWSP = "\u200b"
TITLES = frozenset("Mr Mrs Ms Messrs Dr St Capt Col Gen Lt Rev".split())
"""Abbreviations read as a word ("Mister"); their full stop would end the sentence in espeak-ng."""

# espeak-ng's C API (speak_lib.h), the parts used here.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_RATE = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_CLAUSE_END = 5
_EVENT_MSG_TERMINATED = 6
_EVENT_PHONEME = 7


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class EspeakMissing(RuntimeError):
    """The espeak-ng library is not installed."""


class SynthesisError(ValueError):
    """One text could not be synthesised with word timings. ``problem`` labels it for counting."""

    def __init__(self, problem: str, detail: str) -> None:
        self.problem = problem
        self.detail = detail
        super().__init__(f"{problem}: {detail}")


@dataclass(frozen=True)
class EngineEvent:
    """One event of the synthesis: ``kind`` is ``"word"``, ``"phoneme"``, ``"pause"`` or ``"end"``.

    ``position``: 0-based character index in the text (words only); ``sample``: where it happens in
    the engine's output.
    """

    kind: str
    sample: int
    position: int = -1


class _Espeak:
    """The process's espeak-ng library, initialised once (it cannot be re-initialised safely)."""

    def __init__(self, library: str | None = None) -> None:
        """``library``: the shared library to load (default: the system's; a private copy gives
        an engine whose state no other caller touches, see :class:`ResettingEngine`)."""
        name = library or ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self.lib = ctypes.CDLL(name)
        except OSError:
            raise EspeakMissing(ESPEAK_MISSING) from None
        libc_name = ctypes.util.find_library("c")
        self.libc = ctypes.CDLL(libc_name) if libc_name else None
        if self.libc is not None:
            self.libc.srand.argtypes = [ctypes.c_uint]
        self.sample_rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT
        )
        if self.sample_rate <= 0:
            raise EspeakMissing(f"{ESPEAK_MISSING} (espeak_Initialize failed: no voice data?)")
        self._chunks: list[np.ndarray] = []
        self._events: list[EngineEvent] = []
        self._callback = _Callback(self._on_audio)  # kept alive as long as the engine
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]

    def _on_audio(self, wav, num_samples: int, events) -> int:
        if num_samples > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            e = events[i]
            if e.type == _EVENT_WORD:
                self._events.append(EngineEvent("word", e.sample, e.text_position - 1))
            elif e.type == _EVENT_PHONEME:
                pause = e.id.startswith(b"_")
                self._events.append(EngineEvent("pause" if pause else "phoneme", e.sample))
            elif e.type in (_EVENT_CLAUSE_END, _EVENT_MSG_TERMINATED):
                self._events.append(EngineEvent("end", e.sample))
            i += 1
        return 0

    def set_voice(self, voice: str, rate: int) -> None:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r} (list them: espeak-ng --voices=en)")
        if self.lib.espeak_SetParameter(_RATE, int(rate), 0) != 0:
            raise ValueError(f"espeak-ng rejected the speaking rate {rate} (words per minute)")

    def run(
        self, text: str, voice: str | None, rate: int, seed: int
    ) -> tuple[np.ndarray, list[EngineEvent]]:
        """Synthesise ``text``; ``voice=None`` keeps the voice and rate already set."""
        if voice is not None:
            self.set_voice(voice, rate)
        if self.libc is not None:
            self.libc.srand(seed & 0xFFFFFFFF)  # voice variants draw from libc's rand()
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        status = self.lib.espeak_Synth(
            data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        self.lib.espeak_Synchronize()
        if status != 0:
            raise SynthesisError("synthesis failed", f"espeak_Synth returned {status}")
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return audio, self._events


_ENGINE: _Espeak | None = None


def _engine() -> _Espeak:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Espeak()
    return _ENGINE


_RESAMPLERS: dict[int, object] = {}


def _to_16k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """int16 engine output -> float32 at 16 kHz; the resampling kernel is built once per rate."""
    import torch
    import torchaudio.transforms as T

    if sample_rate not in _RESAMPLERS:
        _RESAMPLERS[sample_rate] = T.Resample(sample_rate, SAMPLE_RATE)
    waveform = torch.from_numpy(audio.astype(np.float32) / 32768.0)
    with torch.no_grad():
        return _RESAMPLERS[sample_rate](waveform).numpy()


def espeak_available() -> bool:
    """Whether the espeak-ng library can be loaded (the tests skip without it)."""
    try:
        _engine()
    except EspeakMissing:
        return False
    return True


def check_voices(voices: Sequence[str]) -> None:
    """Raise a ``ValueError`` naming the first voice that espeak-ng does not know."""
    engine = _engine()
    for voice in voices:
        if engine.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r} (list them: espeak-ng --voices=en)")


def speakable_text(text: str) -> str:
    """The text as given to espeak-ng, of the same length (see the module docstring)."""
    chars = list(text)
    for m in re.finditer(r"\S+", text):
        word = m.group()
        if word.endswith(".") and word.rstrip(".").lstrip("\"'(") in TITLES:
            chars[m.end() - 1] = ZWSP
    for i, c in enumerate(chars):
        if c == " " and 0 < i < len(chars) - 1 and (chars[i - 1].isalnum() or chars[i - 1] == ZWSP):
            chars[i] = ZWSP
    return "".join(chars)


def word_timings(
    text: str, events: Sequence[EngineEvent], num_samples: int, sample_rate: int
) -> list[WordTiming]:
    """Turn the engine's events into one :class:`WordTiming` per whitespace-separated word of ``text``.

    A word event opens a span that the next word event, the first pause after a voiced phoneme,
    or the end closes. A written word may get several spans (a number read as several words);
    its timing covers them all. Word events that point outside every word or back to an earlier
    word (espeak-ng reports some for quotes) are ignored. A word that gets no span is an error.
    """
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    starts: list[int | None] = [None] * len(spans)
    ends: list[int | None] = [None] * len(spans)
    current: int | None = None  # the word whose span is open
    voiced = False
    last = -1

    def close(sample: int) -> None:
        nonlocal current
        if current is not None:
            ends[current] = min(sample, num_samples)
            current = None

    for event in events:
        if event.kind == "word":
            index = _word_at(spans, event.position)
            if index is None or index < last:
                continue
            close(event.sample)
            if starts[index] is None:
                starts[index] = min(event.sample, num_samples)
            current, voiced, last = index, False, index
        elif event.kind == "phoneme":
            voiced = True
        elif (event.kind == "pause" and voiced) or event.kind == "end":
            close(event.sample)
    close(num_samples)
    timings = []
    for (lo, hi), start, end in zip(spans, starts, ends, strict=True):
        if start is None or end is None:
            raise SynthesisError(
                "word not spoken", f"espeak-ng reported no sound for {text[lo:hi]!r} in {text!r}"
            )
        timings.append(WordTiming(text[lo:hi], start / sample_rate, max(start, end) / sample_rate))
    return timings


def _word_at(spans: list[tuple[int, int]], position: int) -> int | None:
    for i, (lo, hi) in enumerate(spans):
        if lo <= position < hi:
            return i
    return None


def _speak(text: str, voice: str, rate: int, seed: int) -> tuple[np.ndarray, list, int]:
    """Raw engine output: (samples at the engine's rate, events, that rate)."""
    if not text.strip():
        raise SynthesisError("empty transcript", "nothing to say")
    engine = _engine()
    audio, events = engine.run(speakable_text(text), voice, rate, seed)
    if audio.size == 0:
        raise SynthesisError("empty audio", f"espeak-ng produced no samples for {text!r}")
    return audio, events, engine.sample_rate


def synthesize_audio(
    text: str, voice: str = DEFAULT_VOICE, rate: int = DEFAULT_RATE_WPM, seed: int = 0
) -> np.ndarray:
    """Speak ``text`` without word timings (16 kHz mono float32): for renderings that only need
    units, such as spoken benchmark items, where a word the engine slurs into its neighbour is
    no error."""
    audio, _events, sample_rate = _speak(text, voice, rate, seed)
    return _to_16k(audio, sample_rate)


def synthesize(
    text: str, voice: str = DEFAULT_VOICE, rate: int = DEFAULT_RATE_WPM, seed: int = 0
) -> tuple[np.ndarray, list[WordTiming]]:
    """Speak ``text``: (16 kHz mono float32 waveform, one timing per whitespace-separated word).

    ``voice`` is an espeak-ng voice (``en-us``, ``en-gb-scotland+f2``...), ``rate`` in words per
    minute. Timings are in seconds, in order, inside the audio. Words keep their written form
    (``"Yes,"``). ``seed`` seeds the engine's random draws (some voice variants use them). Raises
    :class:`EspeakMissing` without espeak-ng, ``ValueError`` for an unknown voice and
    :class:`SynthesisError` when the text is empty or a word gets no sound.
    """
    audio, events, sample_rate = _speak(text, voice, rate, seed)
    timings = word_timings(text, events, audio.size, sample_rate)
    waveform = _to_16k(audio, sample_rate)
    duration = len(waveform) / SAMPLE_RATE
    timings = [WordTiming(t.word, min(t.start, duration), min(t.end, duration)) for t in timings]
    return waveform, timings


# -- deterministic renderings ------------------------------------------------------------------------
def _writable_sections(path: str) -> list[tuple[int, int]]:
    """``(address, size)`` of the ``.data`` and ``.bss`` sections of an ELF64 shared library:
    where espeak-ng keeps its state between calls (its globals and statics)."""
    import struct

    with open(path, "rb") as f:
        elf = f.read()
    if elf[:5] != b"\x7fELF\x02":
        raise EspeakMissing(f"{path} is not a 64-bit ELF library")
    (shoff,) = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def header(i: int) -> tuple[int, int, int, int]:
        name, _type, _flags, addr, offset, size = struct.unpack_from(
            "<IIQQQQ", elf, shoff + i * shentsize
        )
        return name, addr, offset, size

    names_offset = header(shstrndx)[2]
    found = {}
    for i in range(shnum):
        name, addr, _offset, size = header(i)
        end = elf.index(b"\0", names_offset + name)
        found[elf[names_offset + name : end].decode()] = (addr, size)
    missing = [s for s in (".data", ".bss") if s not in found]
    if missing:
        raise EspeakMissing(f"{path} has no {', '.join(missing)} section")
    return [found[".data"], found[".bss"]]


WARM_UP_TEXT = "Warm up."
"""Synthesised once before :class:`ResettingEngine` saves its state."""


class ResettingEngine:
    """An espeak-ng engine of its own, put back into the same state before every text, so that a
    text's audio does not depend on what was synthesised before (see the module docstring).

    It loads a private copy of the library (its globals are then its own: no other caller's
    synthesis changes them), sets the voice and rate, synthesises :data:`WARM_UP_TEXT` once (the
    engine allocates its buffers on first use), then saves the library's ``.data`` and ``.bss``
    sections and restores them before every text. One voice per engine: setting the voice again
    after a restore would reload it and leak the previous copy.
    """

    def __init__(self, voice: str, rate: int = DEFAULT_RATE_WPM) -> None:
        import os
        import shutil
        import tempfile

        system = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        source = _library_file(system)
        folder = tempfile.mkdtemp(prefix="lst-espeak-")
        private = os.path.join(folder, f"libespeak-ng-{id(self):x}.so")
        shutil.copyfile(source, private)
        try:
            self.engine = _Espeak(private)
            base = _mapped_base(private)
            sections = _writable_sections(private)
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # the mapping outlives the file
        self.voice, self.rate = voice, rate
        self.engine.set_voice(voice, rate)
        self.engine.run(speakable_text(WARM_UP_TEXT), None, rate, 0)
        self._state = [
            (base + addr, ctypes.string_at(base + addr, size)) for addr, size in sections
        ]

    def synthesize_audio(self, text: str, seed: int = 0) -> np.ndarray:
        """Like :func:`synthesize_audio`, from the engine's saved state."""
        if not text.strip():
            raise SynthesisError("empty transcript", "nothing to say")
        for address, saved in self._state:
            ctypes.memmove(address, saved, len(saved))
        audio, _events = self.engine.run(speakable_text(text), None, self.rate, seed)
        if audio.size == 0:
            raise SynthesisError("empty audio", f"espeak-ng produced no samples for {text!r}")
        return _to_16k(audio, self.engine.sample_rate)


def _library_file(name: str) -> str:
    """The file behind a library name (``libespeak-ng.so.1`` -> its path), via the loader."""
    import os

    if os.path.isfile(name):
        return os.path.realpath(name)
    try:
        ctypes.CDLL(name)
    except OSError:
        raise EspeakMissing(ESPEAK_MISSING) from None
    stem = name.split(".so")[0]
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if os.path.basename(path).startswith(stem) and os.path.isfile(path):
                return os.path.realpath(path)
    raise EspeakMissing(f"cannot find the file of {name} in /proc/self/maps")


def _mapped_base(path: str) -> int:
    """Load address of the library file ``path`` in this process (its lowest mapping)."""
    with open("/proc/self/maps") as f:
        starts = [int(line.split("-")[0], 16) for line in f if path in line]
    if not starts:
        raise EspeakMissing(f"{path} is not mapped in this process")
    return min(starts)
