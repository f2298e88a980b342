"""WER / CER: equal to torchmetrics on hand-made strings, with the documented normalisation."""

from __future__ import annotations

import pytest
import torchmetrics.text as tm

from lst_lightning.downstream.metrics import cer, error_rates, normalize_transcript, wer

REFS = ["the cat sat on the mat", "she was very happy", "call forward on no answer"]
HYPS = ["the cat sat on mat", "she was vary happy indeed", "call forward no answer"]


def test_equal_to_torchmetrics_on_normalised_strings() -> None:
    w, c = tm.WordErrorRate(), tm.CharErrorRate()
    w.update(HYPS, REFS)
    c.update(HYPS, REFS)
    assert wer(HYPS, REFS) == pytest.approx(float(w.compute()))
    assert cer(HYPS, REFS) == pytest.approx(float(c.compute()))
    # by hand: 1 deletion + (1 sub + 1 ins) + 1 deletion over 6 + 4 + 5 words
    assert wer(HYPS, REFS) == pytest.approx(4 / 15)
    rates = error_rates(HYPS, REFS)
    assert rates.reference_words == 15 and rates.utterances == 3
    assert rates.as_percent()[0] == pytest.approx(100 * 4 / 15)


def test_normalisation_ignores_case_and_punctuation() -> None:
    assert normalize_transcript('"Who is Colonel Brandon?"') == "who is colonel brandon"
    assert normalize_transcript("Call-Forward on No\u00a0Answer.") == "call forward on no answer"
    assert normalize_transcript("Don\u2019t 'quote' me") == "don't quote me"
    refs = ["Mister Dashwood, had then leisure."]
    assert wer(["mister dashwood had then leisure"], refs) == 0.0
    assert wer(["mister dashwood had then leisure"], refs, normalize=False) > 0
    assert cer(["Mister Dashwood had then leisure"], refs) == 0.0


def test_numbers_are_spelled() -> None:
    assert normalize_transcript("Press 1, then 20.") == "press one then twenty"
    assert normalize_transcript("1,342 men in 1811") == (
        "one thousand three hundred forty two men in one thousand eight hundred eleven"
    )
    assert normalize_transcript("3.5 miles on the 2nd day") == "3 5 miles on the 2nd day"
    assert wer(["press 0 for an operator"], ["press zero for an operator"]) == 0.0


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        wer(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="reference 0 is empty after normalisation"):
        cer(["a"], ["?!"])
    with pytest.raises(TypeError, match="not a single string"):
        wer("a b", "a b")
