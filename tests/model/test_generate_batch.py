"""Batched KV-cached decoding equals one-at-a-time decoding, for LST and the baseline.

The hard case for LST is rows that close patches at different steps: the sequences below put, at
the same step, one row inside a speech patch, one closing a full patch, one closing a short patch
late (a text token after 1-2 units) and one on text (a 1-token patch every step).
"""

from __future__ import annotations

import pytest
import torch

from lst_lightning.model import LST, LSTConfig, SpeechLLM, TransformerConfig
from lst_lightning.model.batch_generate import generate_batch
from lst_lightning.model.batch_stepper import BatchLSTStepper, BatchSpeechLLMStepper
from lst_lightning.model.generate import (
    LSTStepper,
    SpeechLLMStepper,
    StaticPatchRule,
    closed_patch_lengths,
    generate,
)
from lst_lightning.model.prefill import prefill_baseline, prefill_lst

from .test_generate import BOS, EOS, SPEECH, UNITS, VOCAB, tiny_baseline, tiny_lst

TEXT_IDS = list(range(3, 40))
UNIT_IDS = list(range(*UNITS))

# Equal lengths (14), so they can be fed in lockstep; patches close at different steps per row.
ROWS = [
    [BOS, 5, SPEECH, 50, 60, 70, 80, 84, 35, 6, 73, 4, SPEECH, 55],  # full, tail, text, open
    [BOS, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17],  # text only: one patch per token
    [BOS, SPEECH, 55, 8, SPEECH, 66, 67, 9, 70, SPEECH, 71, 72, 73, 74],  # late closes
    [BOS, 9, SPEECH, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 90],  # one long run
]


@pytest.fixture(autouse=True)
def one_thread():
    """Token-at-a-time matmuls are tiny: a second thread only adds contention (4x slower on a
    loaded 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def rule_for(p: int) -> StaticPatchRule:
    return StaticPatchRule(patch_size=p, unit_range=UNITS, speech_id=SPEECH)


@pytest.mark.parametrize(
    ("window", "p", "cross", "compat"),
    [(4, 3, (512, 512), False), (None, 4, (1, 1), False), (3, 2, (2, 3), True)],
)
def test_batched_stepper_logits_equal_single_rows(
    window: int | None, p: int, cross: tuple[int, int], compat: bool
) -> None:
    """At every step every row's batched logits equal the single-row stepper's (float noise from
    the masked batched attention allowed), and each row's global steps are its closed patches,
    also after a finished row leaves the batch."""
    model = tiny_lst(window=window, cross=cross, compat=compat)
    rule = rule_for(p)
    batch = BatchLSTStepper(model, len(ROWS), capacity=len(ROWS[0]), rule=rule)
    singles = [LSTStepper(model) for _ in ROWS]
    rows = list(range(len(ROWS)))
    steps_per_row: list[set[int]] = [set() for _ in ROWS]
    with torch.no_grad():
        for t in range(len(ROWS[0])):
            if t == 9:  # row 1 leaves the batch
                rows = [0, 2, 3]
                batch.select([0, 2, 3])
            before = [batch.global_steps_of(j) for j in range(len(rows))]
            got = batch.feed([ROWS[r][t] for r in rows])
            for j, r in enumerate(rows):
                want = singles[r].feed(ROWS[r][t], rule)
                torch.testing.assert_close(got[j], want, atol=1e-5, rtol=1e-4)
                closed = closed_patch_lengths(ROWS[r][: t + 1], rule)
                assert batch.global_steps_of(j) == len(closed) == singles[r].state.global_steps
                if batch.global_steps_of(j) > before[j]:
                    steps_per_row[r].add(t)
    # the rows really closed patches at different steps
    assert len({frozenset(s) for s in steps_per_row}) == len(ROWS)


@pytest.mark.parametrize(
    ("window", "p", "cross", "compat"),
    [(4, 3, (512, 512), False), (None, 4, (1, 1), False), (3, 2, (2, 3), True)],
)
def test_prefill_leaves_the_stepper_where_stepping_does(
    window: int | None, p: int, cross: tuple[int, int], compat: bool
) -> None:
    """A parallel prefill of the first L tokens (rows ending mid-patch, after a full patch, on
    text) gives the stepped logits, caches and counts: the rest of the rows then decode alike."""
    model = tiny_lst(window=window, cross=cross, compat=compat)
    rule = rule_for(p)
    for length in (2, 5, 9, 13):
        stepped = BatchLSTStepper(model, len(ROWS), capacity=len(ROWS[0]), rule=rule)
        filled = BatchLSTStepper(model, len(ROWS), capacity=len(ROWS[0]), rule=rule)
        with torch.no_grad():
            for t in range(length):
                want = stepped.feed([r[t] for r in ROWS])
            got = prefill_lst(filled, [r[:length] for r in ROWS])
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
            for name in ("closed", "open_len", "patch_starts", "decoder_steps", "position"):
                assert getattr(filled, name) == getattr(stepped, name), name
            for t in range(length, len(ROWS[0])):
                tokens = [r[t] for r in ROWS]
                torch.testing.assert_close(
                    filled.feed(tokens), stepped.feed(tokens), atol=1e-5, rtol=1e-4
                )
        assert filled.decoder_steps == stepped.decoder_steps


def test_baseline_prefill_equals_stepping() -> None:
    model = tiny_baseline(window=3)
    stepped, filled = (
        BatchSpeechLLMStepper(model, len(ROWS)),
        BatchSpeechLLMStepper(model, len(ROWS)),
    )
    with torch.no_grad():
        for t in range(6):
            want = stepped.feed([r[t] for r in ROWS])
        torch.testing.assert_close(prefill_baseline(filled, [r[:6] for r in ROWS]), want)
        for t in range(6, len(ROWS[0])):
            tokens = [r[t] for r in ROWS]
            torch.testing.assert_close(filled.feed(tokens), stepped.feed(tokens))


def test_windowed_global_model_reads_each_rows_own_window() -> None:
    """A sliding window on the global model: each row's window ends at its own global position."""
    torch.manual_seed(0)
    small = dict(d_model=32, n_heads=2, window=4)
    model = LST(
        LSTConfig(
            vocab_size=VOCAB,
            encoder=TransformerConfig(n_layers=1, **small),
            global_model=TransformerConfig(n_layers=2, d_model=48, n_heads=2, window=3),
            decoder=TransformerConfig(n_layers=1, **small),
            init_std=0.1,
        )
    ).eval()
    rule = rule_for(3)
    batch = BatchLSTStepper(model, len(ROWS), capacity=len(ROWS[0]), rule=rule)
    singles = [LSTStepper(model) for _ in ROWS]
    with torch.no_grad():
        for t in range(len(ROWS[0])):
            got = batch.feed([r[t] for r in ROWS])
            for j, r in enumerate(ROWS):
                want = singles[j].feed(r[t], rule)
                torch.testing.assert_close(got[j], want, atol=1e-5, rtol=1e-4)
    assert min(batch.closed) > 3  # every row's global window slid


def test_batched_baseline_stepper_equals_single_rows() -> None:
    model = tiny_baseline(window=3)
    batch = BatchSpeechLLMStepper(model, len(ROWS))
    singles = [SpeechLLMStepper(model) for _ in ROWS]
    with torch.no_grad():
        for t in range(len(ROWS[0])):
            got = batch.feed([r[t] for r in ROWS])
            for j, r in enumerate(ROWS):
                torch.testing.assert_close(got[j], singles[j].feed(r[t]), atol=1e-5, rtol=1e-4)
    assert batch.global_steps_of(0) == len(ROWS[0])


PROMPTS = [
    [BOS, 5, SPEECH, 50, 60, 70, 80],  # ends inside an open speech patch
    [BOS, 5, 6, 7],  # ends in text
    [BOS, SPEECH],  # ends with <s>
    [BOS, 9, SPEECH, 60, 61, 62, 63, 64, 65, 8, 9, SPEECH, 70, 71, 72, 73],  # long, a full patch
    [BOS],
]


@pytest.mark.parametrize("kind", ["lst", "lst_cross1", "lst_cross23", "lst_compat", "baseline"])
def test_generate_batch_greedy_equals_one_at_a_time(kind: str) -> None:
    """Same tokens and counts as :func:`generate` per prompt, with prompts of different lengths and
    a vocabulary restricted to text, ``<s>`` and units so that rows switch modality (short
    patches close late) at different steps."""
    models = {
        "lst": lambda: tiny_lst(window=4),
        "lst_cross1": lambda: tiny_lst(window=4, cross=(1, 1)),
        "lst_cross23": lambda: tiny_lst(window=3, cross=(2, 3)),
        "lst_compat": lambda: tiny_lst(window=4, compat=True),
        "baseline": lambda: tiny_baseline(window=4),
    }
    model: LST | SpeechLLM = models[kind]()
    rule = rule_for(3)
    allowed = [5, 6, 7, 8, SPEECH, *UNIT_IDS]
    n = 40
    batch = generate_batch(model, PROMPTS, n, rule, eos_id=EOS, allowed_ids=allowed, batch_size=3)
    stepped = generate_batch(
        model, PROMPTS, n, rule, eos_id=EOS, allowed_ids=allowed, prefill=False
    )
    assert stepped == batch
    for prompt, got in zip(PROMPTS, batch, strict=True):
        want = generate(model, prompt, n, rule=rule, eos_id=EOS, allowed_ids=allowed)
        assert got == want
        fed = prompt + got.ids[:-1]
        if isinstance(model, LST):
            assert got.global_steps == len(closed_patch_lengths(fed, rule))
            assert got.prompt_global_steps == len(closed_patch_lengths(prompt, rule))
        else:
            assert got.global_steps == got.decoder_steps == len(fed)
            assert got.prompt_global_steps == len(prompt)
        assert got.stopped_at_eos == (got.ids[-1] == EOS) != got.hit_limit
        assert got.stopped_at_eos or len(got.ids) == n
    if isinstance(model, LST):  # the outputs mix text and speech runs, so the test has teeth
        ids = [t for g in batch for t in g.ids]
        assert any(t in UNIT_IDS for t in ids) and any(t in (5, 6, 7, 8) for t in ids)
        late = [
            g.decoder_steps - len(p) - len(g.ids) + 1 for p, g in zip(PROMPTS, batch, strict=True)
        ]
        assert any(late)  # some speech patches closed late (their last token re-decoded)


def test_batch_size_and_order_do_not_change_greedy_output() -> None:
    model = tiny_lst(window=4)
    rule = rule_for(4)
    one = generate_batch(model, PROMPTS, 20, rule, eos_id=EOS, batch_size=1)
    all_at_once = generate_batch(model, PROMPTS, 20, rule, eos_id=EOS, batch_size=len(PROMPTS))
    reversed_ = generate_batch(model, PROMPTS[::-1], 20, rule, eos_id=EOS)[::-1]
    assert one == all_at_once == reversed_


def test_tts_global_steps_are_a_quarter_of_the_baselines() -> None:
    """TTS-like prompts ``BOS <t> text <s>``, units-only output of the same length for both
    models (no EOS): with static p = 4 LST takes one global step per 4 units."""
    rule = rule_for(4)
    prompts = [[BOS, SPEECH - 1, 5, 6, 7, SPEECH], [BOS, SPEECH - 1, 9, SPEECH]]
    n = 64
    lst = generate_batch(tiny_lst(window=4), prompts, n, rule, allowed_ids=UNIT_IDS)
    base = generate_batch(tiny_baseline(window=4), prompts, n, rule, allowed_ids=UNIT_IDS)
    for prompt, a, b in zip(prompts, lst, base, strict=True):
        assert len(a.ids) == len(b.ids) == n and a.hit_limit and b.hit_limit
        assert all(t in UNIT_IDS for t in a.ids + b.ids)
        assert a.answer_global_steps == len(closed_patch_lengths(prompt + a.ids[:-1], rule)) - (
            len(closed_patch_lengths(prompt, rule))
        )
        assert b.answer_global_steps == n - 1
        ratio = a.answer_global_steps / b.answer_global_steps
        assert 0.24 <= ratio <= 0.27, ratio
        assert a.context_positions == len(prompt) - 1 + -(-(n + 1) // 4)  # <s> + n units
        assert b.context_positions == len(prompt) + n


def test_modality_restriction_holds() -> None:
    """ASR (``BOS <s> units <t>``) restricted to text ids + EOS emits no unit id, TTS
    (``BOS <t> text <s>``) restricted to units + EOS no text id, also when sampling hot; without
    the restriction the same sampling emits both."""
    model = tiny_lst(window=4)
    rule = rule_for(4)
    asr = [[BOS, SPEECH, *range(50, 62), SPEECH - 1], [BOS, SPEECH, 70, 71, SPEECH - 1]]
    tts = [[BOS, SPEECH - 1, 5, 6, 7, SPEECH], [BOS, SPEECH - 1, 9, SPEECH]]

    def run(prompts: list[list[int]], allowed: list[int] | None, temperature: float) -> list[int]:
        out = generate_batch(
            model,
            prompts,
            30,
            rule,
            eos_id=EOS,
            allowed_ids=allowed,
            temperature=temperature,
            generator=torch.Generator().manual_seed(0),
        )
        return [t for g in out for t in g.ids]

    for temperature in (0.0, 3.0):
        assert not any(t in UNIT_IDS for t in run(asr, TEXT_IDS, temperature))
        assert not any(t in TEXT_IDS for t in run(tts, UNIT_IDS, temperature))
    free = run(asr + tts, None, 3.0)
    assert any(t in UNIT_IDS for t in free) and any(t in TEXT_IDS for t in free)


def test_sampling_is_reproducible_with_a_seeded_generator() -> None:
    model = tiny_lst(window=4)
    rule = rule_for(3)

    def run(seed: int, **options) -> list[list[int]]:
        g = torch.Generator().manual_seed(seed)
        out = generate_batch(model, PROMPTS, 24, rule, eos_id=EOS, generator=g, **options)
        return [o.ids for o in out]

    hot = dict(temperature=1.5, top_k=20, top_p=0.9)
    assert run(1, **hot) == run(1, **hot)
    assert run(1, **hot) != run(2, **hot)
    greedy = run(0, temperature=0.0)
    assert run(5, temperature=2.0, top_k=1) == greedy
    assert run(5, temperature=2.0, top_p=1e-6) == greedy


def test_bad_arguments_name_the_option() -> None:
    model, rule = tiny_lst(window=None), rule_for(4)
    with pytest.raises(ValueError, match="rule"):
        generate_batch(model, [[BOS]], 2)
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        generate_batch(model, [[BOS], []], 2, rule)
    with pytest.raises(ValueError, match="prompt 0 holds ids outside"):
        generate_batch(model, [[VOCAB]], 2, rule)
    with pytest.raises(ValueError, match="top_p"):
        generate_batch(model, [[BOS]], 2, rule, temperature=1.0, top_p=0.0)
    with pytest.raises(ValueError, match="top_k"):
        generate_batch(model, [[BOS]], 2, rule, top_k=0)
    with pytest.raises(ValueError, match="allowed_ids mask has shape"):
        generate_batch(model, [[BOS]], 2, rule, allowed_ids=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="allowed_ids must lie"):
        generate_batch(model, [[BOS]], 2, rule, allowed_ids=[VOCAB + 1])
    assert generate_batch(model, [[BOS], [BOS, 5]], 0, rule)[1].ids == []
