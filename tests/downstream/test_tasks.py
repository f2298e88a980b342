"""ASR / TTS documents: layout, loss mask over the answer span, speech runs for patching."""

from __future__ import annotations

import numpy as np
import pytest

from lst_lightning.data.records import AlignedWord
from lst_lightning.data.stream.patching import static_patch_lengths
from lst_lightning.data.vocab import SpeechSpan, TextSpan
from lst_lightning.downstream.tasks import (
    SpeechText,
    asr_document,
    task_document,
    task_documents,
    tts_document,
)


def test_asr_document_layout_and_mask(mls_utterances, mls_space) -> None:
    utt = mls_utterances[0]
    doc = asr_document(SpeechText.from_aligned(utt), mls_space)
    assert mls_space.decode_document(doc.tokens) == [
        SpeechSpan(utt.units),
        TextSpan(utt.transcript),
    ]
    assert doc.prompt[-1] == mls_space.text_id and doc.prompt_length == len(utt.units) + 3
    assert list(doc.answer) == [*mls_space.encode_text(utt.transcript), mls_space.eos_id]
    mask = doc.loss_mask
    assert mask.sum() == len(doc.answer) and not mask[: doc.prompt_length].any()
    assert not mls_space.is_unit(doc.tokens[mask]).any()  # the answer holds no unit id
    # target i predicts tokens[i + 1]: the first counted target is the first transcript token
    tmask = doc.target_mask()
    assert len(tmask) == len(doc.tokens) - 1
    assert np.flatnonzero(tmask)[0] == doc.prompt_length - 1


def test_tts_document_layout_and_mask(mls_utterances, mls_space) -> None:
    utt = mls_utterances[1]
    doc = tts_document(SpeechText.from_aligned(utt), mls_space)
    assert mls_space.decode_document(doc.tokens) == [
        TextSpan(utt.transcript),
        SpeechSpan(utt.units),
    ]
    assert doc.prompt[-1] == mls_space.speech_id
    answer = doc.tokens[doc.loss_mask]
    assert answer[-1] == mls_space.eos_id and mls_space.is_unit(answer[:-1]).all()
    assert len(answer) == len(utt.units) + 1


def test_speech_run_keeps_the_alignment_for_patching(mls_utterances, mls_space) -> None:
    utt = mls_utterances[2]
    for task in ("asr", "tts"):
        doc = task_document(task, SpeechText.from_aligned(utt), mls_space).document
        (run,) = doc.speech_runs
        assert doc.tokens[run.start] == mls_space.speech_id
        assert run.num_units == len(utt.units) and run.one_token_per_unit
        assert run.segments == tuple(len(w.units) for w in utt.words if w.units)
        assert sum(static_patch_lengths(doc, 4)) == len(doc.tokens)


def test_unaligned_speech_is_one_segment(mls_space) -> None:
    item = SpeechText("real/0", "hello there", (1, 2, 3, 4, 5))
    doc = asr_document(item, mls_space)
    (run,) = doc.document.speech_runs
    assert run.segments == (5,) and run.silence == (False,)
    docs = task_documents("tts", [item, item], mls_space)
    assert [d.task for d in docs] == ["tts", "tts"]


def test_bad_items_are_named(mls_space) -> None:
    with pytest.raises(ValueError, match="real/1: empty transcript"):
        SpeechText("real/1", "  ", (1,))
    with pytest.raises(ValueError, match="real/2: no speech units"):
        SpeechText("real/2", "hi", ())
    with pytest.raises(ValueError, match="real/3: the words' units"):
        SpeechText("real/3", "hi", (1, 2), (AlignedWord("hi", (1,)),))
    with pytest.raises(ValueError, match="task must be one of"):
        task_document("mt", SpeechText("x", "hi", (1,)), mls_space)
