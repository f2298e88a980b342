from __future__ import annotations

import numpy as np
import pytest

from lst_lightning.data.records import AlignedUtterance, AlignedWord, read_aligned_jsonl
from lst_lightning.data.stream.documents import (
    EncodedDocument,
    interleaved_document,
    plan_interleaving,
    speech_document,
    text_document,
)
from lst_lightning.data.vocab import SpeechSpan, TextSpan


def spoken(words):
    return [w.text for w in words if not w.is_silence]


def test_every_word_once_per_draw(mls_utterances):
    rng = np.random.default_rng(0)
    for _ in range(20):
        for utt in mls_utterances:
            plan = plan_interleaving(utt, rng)
            assert [w.text for span in plan for w in span.words if not w.is_silence] == spoken(
                utt.words
            )
            assert all(not w.is_silence for s in plan if s.modality == "text" for w in s.words)
            modalities = [s.modality for s in plan]
            assert all(a != b for a, b in zip(modalities, modalities[1:], strict=False))


@pytest.mark.parametrize("source", ["mls", "generated"])
def test_speech_to_text_word_ratio_is_one_to_two(source, mls_utterances, tiny_corpus):
    utterances = (
        mls_utterances if source == "mls" else read_aligned_jsonl(tiny_corpus / "train.jsonl")
    )
    rng = np.random.default_rng(1)
    counts = {"text": 0, "speech": 0}
    starts = {"text": 0, "speech": 0}
    for _ in range(3000 // len(utterances)):
        for utt in utterances:
            plan = plan_interleaving(utt, rng)
            starts[plan[0].modality] += 1
            for span in plan:
                counts[span.modality] += len(spoken(span.words))
    assert counts["speech"] / counts["text"] == pytest.approx(0.5, rel=0.05)
    assert starts["text"] / sum(starts.values()) == pytest.approx(0.5, abs=0.05)


def test_text_span_sizes(mls_utterances):
    rng = np.random.default_rng(2)
    sizes = [
        len(span.words)
        for _ in range(50)
        for utt in mls_utterances
        for span in plan_interleaving(utt, rng)
        if span.modality == "text"
    ]
    assert max(sizes) == 30 and min(sizes) >= 1
    assert 5 <= np.median(sizes) <= 30


def utt_from(spec):
    """``[("a", n), ...]``: words with n frames; ``"_"`` is a silence."""
    frames = iter(range(1000))
    return AlignedUtterance(
        "u",
        tuple(
            AlignedWord("[SIL]" if w == "_" else w, tuple(next(frames) for _ in range(n)))
            for w, n in spec
        ),
    )


def test_boundary_silences_are_halved():
    words = [("_", 4)] + [x for i in range(40) for x in ((f"w{i}", 2), ("_", 3))]
    utt = utt_from(words)
    rng = np.random.default_rng(3)
    for _ in range(30):
        plan = plan_interleaving(utt, rng)
        for k, span in enumerate(plan):
            if span.modality != "speech":
                continue
            inner = span.words
            # inner gaps are kept whole; a boundary gap keeps the half next to the words
            assert not inner[0].is_silence or len(inner[0].units) in (1, 2)
            assert not inner[-1].is_silence or len(inner[-1].units) == 1
            first = next(w for w in inner if not w.is_silence)
            lead = inner[0].units if inner[0].is_silence else ()
            assert lead == tuple(range(first.units[0] - len(lead), first.units[0]))
            middle = [w for w in inner[1:-1] if w.is_silence]
            assert all(len(w.units) == 3 for w in middle)
            assert k == 0 or plan[k - 1].modality == "text"


def test_encoded_interleaved_document(mls_utterances, mls_space):
    rng = np.random.default_rng(4)
    for utt in mls_utterances:
        doc = interleaved_document(utt, mls_space, rng)
        assert isinstance(doc, EncodedDocument) and doc.tokens.dtype == np.int64
        spans = mls_space.decode_document(doc.tokens)
        speech = [s for s in spans if isinstance(s, SpeechSpan)]
        assert len(speech) == len(doc.speech_runs)
        for run, span in zip(doc.speech_runs, speech, strict=True):
            assert doc.tokens[run.start] == mls_space.speech_id
            assert run.num_units == len(span.units) and run.length == len(span.units) + 1
            assert len(run.segments) == len(run.silence) and min(run.segments) > 0
        text = " ".join(s.text for s in spans if isinstance(s, TextSpan))
        assert set(text.split()) <= set(utt.transcript.split())


def test_text_and_speech_documents(mls_utterances, mls_space):
    s = mls_space
    doc = text_document("the little river", s)
    assert doc.kind == "text" and doc.speech_runs == ()
    assert s.decode_document(doc.tokens) == [TextSpan("the little river")]
    utt = mls_utterances[0]
    doc = speech_document(utt, s)
    assert doc.tokens.tolist() == [
        s.bos_id,
        s.speech_id,
        *(s.unit_offset + u for u in utt.units),
        s.eos_id,
    ]
    (run,) = doc.speech_runs
    nonempty = [w for w in utt.words if w.units]
    assert run.start == 1 and run.segments == tuple(len(w.units) for w in nonempty)
    assert run.silence == tuple(w.is_silence for w in nonempty)


def test_silence_only_utterance_becomes_speech():
    utt = utt_from([("_", 5)])
    plan = plan_interleaving(utt, np.random.default_rng(0))
    assert [(p.modality, len(p.words)) for p in plan] == [("speech", 1)]
