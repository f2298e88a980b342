"""espeak-ng synthesis with word timings (skipped where espeak-ng is not installed)."""

from __future__ import annotations

import numpy as np
import pytest

from lst_lightning.data.corpora.tts import (
    ZWSP,
    EngineEvent,
    SynthesisError,
    check_voices,
    espeak_available,
    speakable_text,
    synthesize,
    word_timings,
)
from lst_lightning.data.speech.align import WordTiming
from lst_lightning.data.speech.audio import SAMPLE_RATE

needs_espeak = pytest.mark.skipif(
    not espeak_available(),
    reason="espeak-ng is not installed: run `make setup` as root or `apt-get install espeak-ng`",
)

SENTENCE = (
    '"My dear Mr. Bennet," said his lady, "one of the best houses cost \u00a320,000 in 1811."'
)


def test_speakable_text_keeps_positions():
    text = 'one of the best, Mr. Weston; "Yes," said she.'
    spoken = speakable_text(text)
    assert len(spoken) == len(text)
    # Words without punctuation between them are joined by a zero-width space; a title loses its
    # full stop; a space after punctuation stays a space (a clause boundary).
    assert spoken == f'one{ZWSP}of{ZWSP}the{ZWSP}best, Mr{ZWSP}{ZWSP}Weston; "Yes," said{ZWSP}she.'


def test_word_timings_from_events():
    text = "Yes, ma'am 1811."
    ev = [
        EngineEvent("word", 100, 0),
        EngineEvent("phoneme", 100),
        EngineEvent("pause", 900),  # the comma's pause ends "Yes,"
        EngineEvent("end", 1400),
        EngineEvent("word", 1400, 5),
        EngineEvent("pause", 1400),  # a pause before any voiced phoneme does not end the word
        EngineEvent("phoneme", 1450),
        EngineEvent("word", 2000, 11),  # "1811" is read as several words
        EngineEvent("phoneme", 2000),
        EngineEvent("word", 2600, 12),
        EngineEvent("phoneme", 2600),
        EngineEvent("word", 3000, 2),  # back to an earlier word: ignored
        EngineEvent("pause", 3300),
        EngineEvent("end", 3500),
    ]
    timings = word_timings(text, ev, num_samples=3600, sample_rate=1000)
    assert timings == [
        WordTiming("Yes,", 0.1, 0.9),
        WordTiming("ma'am", 1.4, 2.0),
        WordTiming("1811.", 2.0, 3.3),
    ]
    with pytest.raises(SynthesisError, match='no sound for "ma\'am"'):
        word_timings(text, [e for e in ev if e.position != 5], 3600, 1000)


@needs_espeak
def test_synthesize_gives_monotone_timings_inside_the_audio():
    waveform, timings = synthesize(SENTENCE, "en-us", rate=180, seed=1)
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert 0.05 < np.abs(waveform).max() <= 1.0
    duration = len(waveform) / SAMPLE_RATE
    assert 3.0 < duration < 12.0
    assert [t.word for t in timings] == SENTENCE.split()
    for t in timings:
        assert 0.0 <= t.start <= t.end <= duration
    for a, b in zip(timings, timings[1:], strict=False):
        assert a.end <= b.start + 1e-9
    assert all(t.end - t.start > 0.04 for t in timings), timings
    # Speech is where the words are: the gaps are quieter than the words.
    energy = waveform.astype(np.float64) ** 2
    voiced = np.zeros(len(waveform), bool)
    for t in timings:
        voiced[int(t.start * SAMPLE_RATE) : int(t.end * SAMPLE_RATE)] = True
    assert voiced.mean() > 0.6
    assert energy[voiced].mean() > 5 * energy[~voiced].mean()


@needs_espeak
def test_rate_and_voice_change_the_speech():
    slow, slow_t = synthesize(
        "The family of Dashwood had long been settled in Sussex.", "en-us", 120
    )
    fast, _ = synthesize("The family of Dashwood had long been settled in Sussex.", "en-us", 260)
    assert len(slow) > 1.6 * len(fast)
    other, other_t = synthesize(
        "The family of Dashwood had long been settled in Sussex.", "en+f2", 120
    )
    assert len(other) != len(slow) or not np.allclose(other[: len(slow)], slow)
    assert [t.word for t in other_t] == [t.word for t in slow_t]


@needs_espeak
def test_bad_input_is_named():
    with pytest.raises(SynthesisError, match="empty transcript"):
        synthesize("   ", "en-us")
    with pytest.raises(ValueError, match="no voice 'xx-nowhere'"):
        synthesize("Hello there.", "xx-nowhere")
    with pytest.raises(ValueError, match="no voice 'xx-nowhere'"):
        check_voices(["en-us", "xx-nowhere"])


def test_missing_engine_says_how_to_install(monkeypatch):
    from lst_lightning.data.corpora import tts

    monkeypatch.setattr(tts.ctypes.util, "find_library", lambda name: "libno-such-espeak.so.9")
    with pytest.raises(
        tts.EspeakMissing, match=r"run `make setup` as root or `apt-get install espeak-ng`"
    ):
        tts._Espeak()
