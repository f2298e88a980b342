"""Spoken items render deterministically: a text's audio does not depend on what came before."""

from __future__ import annotations

import numpy as np
import pytest

from lst_lightning.data.corpora.tts import ResettingEngine, espeak_available, synthesize_audio
from lst_lightning.eval.render import TTSRenderer

needs_espeak = pytest.mark.skipif(
    not espeak_available(),
    reason="espeak-ng is not installed: run `make setup` as root or `apt-get install espeak-ng`",
)
VOICE = "en-gb-x-rp+f3"
A = "It is a truth universally acknowledged, that a single man"
B = "she was the youngest of the two daughters"


@needs_espeak
def test_resetting_engine_renders_a_text_the_same_whatever_came_before():
    one, two = ResettingEngine(VOICE), ResettingEngine(VOICE)
    b_after_a = (one.synthesize_audio(A), one.synthesize_audio(B))[1]
    b_first = two.synthesize_audio(B)
    a_after_b = two.synthesize_audio(A)
    assert np.array_equal(b_after_a, b_first)
    assert np.array_equal(a_after_b, ResettingEngine(VOICE).synthesize_audio(A))
    synthesize_audio(A, "en-us")  # another caller's synthesis does not reach the private engine
    assert np.array_equal(one.synthesize_audio(B), b_first)
    with pytest.raises(ValueError, match="no voice"):
        ResettingEngine("no-such-voice")


@needs_espeak
def test_tts_renderer_units_do_not_depend_on_the_order():
    def tokenizer(wav, sr):  # a deterministic stand-in for the unit tokenizer: energy per frame
        frames = wav[: len(wav) // 640 * 640].reshape(-1, 640)
        return np.minimum((np.abs(frames).mean(1) * 4000).astype(np.int64), 500)

    ab = TTSRenderer(VOICE, tokenizer, num_units=501)
    ba = TTSRenderer(VOICE, tokenizer, num_units=501)
    units_ab = [ab.render(A), ab.render(B)]
    units_ba = [ba.render(B), ba.render(A)]
    assert units_ab == units_ba[::-1]
