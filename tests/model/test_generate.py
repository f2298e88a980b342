"""The cached step-by-step path equals the full forward, for LST and the baseline."""

from __future__ import annotations

import math

import pytest
import torch

from lst_lightning.model import LST, BaselineConfig, LSTConfig, SpeechLLM, TransformerConfig
from lst_lightning.model.generate import (
    LSTStepper,
    SpeechLLMStepper,
    StaticPatchRule,
    closed_patch_lengths,
    generate,
    teacher_forced_logits,
)

VOCAB = 97
BOS, EOS, SPEECH = 1, 2, 40
UNITS = (48, VOCAB)  # half the token space is speech, so sampling often emits runs


def tiny_lst(
    window: int | None, k: int = 2, cross: tuple[int, int] = (512, 512), compat: bool = False
) -> LST:
    """Local window ``window``; ``cross`` = (W_enc, W_dec) cross-attention windows."""
    torch.manual_seed(0)
    small = dict(d_model=32, n_heads=2, window=window)
    return LST(
        LSTConfig(
            vocab_size=VOCAB,
            encoder=TransformerConfig(n_layers=2, **small),
            global_model=TransformerConfig(n_layers=2, d_model=48, n_heads=2),
            decoder=TransformerConfig(n_layers=2, **small),
            queries_per_patch=k,
            cross_window_encoder=cross[0],
            cross_window_decoder=cross[1],
            release_compat=compat,
            init_std=0.1,
        )
    ).eval()


def tiny_baseline(window: int | None) -> SpeechLLM:
    torch.manual_seed(0)
    tc = TransformerConfig(n_layers=2, d_model=32, n_heads=2, window=window)
    return SpeechLLM(BaselineConfig(vocab_size=VOCAB, transformer=tc, init_std=0.1)).eval()


def static_lengths(tokens: list[int], p: int) -> list[int]:
    """Independent static(p): each ``<s>``+units run cut into chunks of ``p`` from its start."""
    lengths, i = [], 0
    while i < len(tokens):
        if tokens[i] != SPEECH:
            lengths.append(1)
            i += 1
            continue
        j = i + 1
        while j < len(tokens) and UNITS[0] <= tokens[j] < UNITS[1]:
            j += 1
        run = j - i
        lengths += [p] * (run // p) + ([run % p] if run % p else [])
        i = j
    return lengths


def document(seed: int) -> list[int]:
    """BOS, text, a speech run longer than p, text, short runs, back-to-back runs, EOS."""
    g = torch.Generator().manual_seed(seed)

    def units(n: int) -> list[int]:
        return torch.randint(UNITS[0], UNITS[1], (n,), generator=g).tolist()

    return [BOS, 5, 6, SPEECH, *units(10), 7, SPEECH, *units(2), 8, 9, SPEECH, *units(3)] + [
        SPEECH,
        *units(7),
        EOS,
    ]


def full_logits(model: LST | SpeechLLM, tokens: list[int], lengths: list[int]) -> torch.Tensor:
    t = torch.tensor([tokens])
    with torch.no_grad():
        return model(t, torch.zeros_like(t), torch.tensor([lengths]))[0]


@pytest.mark.parametrize(
    ("window", "p", "k", "cross", "compat"),
    [
        (5, 4, 2, (512, 512), False),
        (3, 3, 1, (512, 512), False),
        (None, 6, 2, (512, 512), False),
        (5, 4, 2, (1, 1), False),
        (3, 3, 2, (2, 3), False),
        (3, 2, 2, (3, 2), True),
    ],
)
def test_teacher_forced_cached_logits_equal_full_forward(
    window: int | None, p: int, k: int, cross: tuple[int, int], compat: bool
) -> None:
    """The cached step-by-step logits equal the full forward at every position, with the paper's
    cross-attention windows (512, wider than the document), W = 1, and windows that slide inside
    the document; also with ``release_compat``."""
    model = tiny_lst(window, k, cross, compat)
    tokens = document(seed=p)
    lengths = static_lengths(tokens, p)
    assert len(tokens) > 2 * (window or 0) and max(lengths) == p and len(lengths) < len(tokens)
    cached = teacher_forced_logits(model, tokens, lengths)
    torch.testing.assert_close(cached, full_logits(model, tokens, lengths), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("window", [3, None])
def test_baseline_cached_logits_equal_full_forward(window: int | None) -> None:
    model = tiny_baseline(window)
    tokens = document(seed=1)
    stepper = SpeechLLMStepper(model)
    with torch.no_grad():
        cached = torch.stack([stepper.feed(tok) for tok in tokens])
    full = full_logits(model, tokens, [1] * len(tokens))
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-4)
    assert stepper.global_steps == len(tokens)
    assert all(len(c) <= (window or len(tokens)) for c in stepper.caches)


def test_online_rule_matches_static_patching_on_finished_runs() -> None:
    rule = StaticPatchRule(patch_size=3, unit_range=UNITS, speech_id=SPEECH)
    tokens = document(seed=2)  # ends in EOS, so every patch is closed
    assert closed_patch_lengths(tokens, rule) == static_lengths(tokens, 3)
    # Without the EOS the last run (8 tokens: 3 + 3 + 2) still has its 2-token tail open.
    assert closed_patch_lengths(tokens[:-1], rule) == static_lengths(tokens, 3)[:-2]


def test_speech_costs_one_global_step_per_patch() -> None:
    p, run_units = 4, 10
    rule = StaticPatchRule(patch_size=p, unit_range=UNITS, speech_id=SPEECH)
    stepper = LSTStepper(tiny_lst(window=5))
    with torch.no_grad():
        for tok in [BOS, 5, SPEECH] + [UNITS[0] + i for i in range(run_units)]:
            stepper.feed(tok, rule)
        run = 1 + run_units
        assert stepper.state.global_steps == 2 + run // p  # the 3-token tail is still open
        assert stepper.open_len == run % p
        stepper.feed(7, rule)  # text closes the tail and is its own patch
    assert stepper.state.global_steps == 2 + math.ceil(run / p) + 1
    assert all(len(c) <= 5 for c in stepper.state.enc_caches + stepper.state.dec_caches)
    assert all(len(c) == stepper.state.global_steps for c in stepper.state.global_caches)


@pytest.mark.parametrize("cross", [(1, 1), (2, 3), (512, 512)])
def test_online_logits_equal_full_forward_on_the_closed_patches(cross: tuple[int, int]) -> None:
    """After every fed token, the online logits equal the full forward's last logits on the patches
    closed so far, also where a short speech patch closes only at the next token (its last token's
    decoder states are then recomputed, reading its own patch's global output)."""
    model = tiny_lst(window=4, cross=cross)
    rule = StaticPatchRule(patch_size=3, unit_range=UNITS, speech_id=SPEECH)
    seq = [BOS, 5, SPEECH, 50, 60, 70, 80, 84, 35, 6, 73, 4, SPEECH, 55, SPEECH, 66, 67, 9, 70]
    stepper = LSTStepper(model)
    with torch.no_grad():
        for i, tok in enumerate(seq):
            online = stepper.feed(tok, rule)
            full = full_logits(model, seq[: i + 1], closed_patch_lengths(seq[: i + 1], rule))
            torch.testing.assert_close(online, full[-1], atol=1e-5, rtol=1e-4)


def test_cross_attention_caches_keep_their_windows() -> None:
    """The decoder keeps the last W_dec global outputs' keys/values per layer, the encoder the
    last W_enc - 1 closed patches' (the open patch completes its window)."""
    rule = StaticPatchRule(patch_size=3, unit_range=UNITS, speech_id=SPEECH)
    stepper = LSTStepper(tiny_lst(window=4, cross=(3, 2)))
    with torch.no_grad():
        for tok in document(seed=3):
            stepper.feed(tok, rule)
    s = stepper.state
    assert s.global_steps > 5
    assert all(len(c) == 2 for c in s.enc_cross) and all(len(c) == 2 for c in s.dec_cross)
    assert all(c.entries[-1][0].shape[2] == 2 for c in s.dec_cross)  # k vectors per output


def reference_generate(
    model: LST | SpeechLLM,
    prompt: list[int],
    n: int,
    rule: StaticPatchRule,
    temperature: float,
    seed: int,
) -> list[int]:
    """Slow reference: the full forward on the growing sequence, closed patches only."""
    g = torch.Generator().manual_seed(seed)
    seq = list(prompt)
    for _ in range(n):
        lengths = closed_patch_lengths(seq, rule) if isinstance(model, LST) else [1] * len(seq)
        logits = full_logits(model, seq, lengths)[-1]
        if temperature == 0:
            tok = int(logits.argmax())
        else:
            probs = torch.softmax(logits / temperature, dim=-1)
            tok = int(torch.multinomial(probs, 1, generator=g))
        seq.append(tok)
        if tok == EOS:
            break
    return seq[len(prompt) :]


@pytest.mark.parametrize("temperature", [0.0, 3.0])
@pytest.mark.parametrize("kind", ["lst", "lst_cross1", "lst_cross23", "baseline"])
def test_generation_equals_full_forward_reference(kind: str, temperature: float) -> None:
    crosses = {"lst": (512, 512), "lst_cross1": (1, 1), "lst_cross23": (2, 3)}
    if kind in crosses:
        model: LST | SpeechLLM = tiny_lst(window=4, cross=crosses[kind])
    else:
        model = tiny_baseline(window=4)
    rule = StaticPatchRule(patch_size=3, unit_range=UNITS, speech_id=SPEECH)
    prompt = [BOS, 5, SPEECH, 50, 60, 70, 80]  # ends inside an open speech patch
    n = 24
    expected = reference_generate(model, prompt, n, rule, temperature, seed=7)
    out = generate(
        model,
        prompt,
        n,
        rule=rule,
        temperature=temperature,
        generator=torch.Generator().manual_seed(7),
        eos_id=EOS,
    )
    assert out.ids == expected
    fed = prompt + out.ids[:-1]
    if kind != "baseline":
        assert out.prompt_global_steps == len(closed_patch_lengths(prompt, rule)) == 3
        assert out.global_steps == len(closed_patch_lengths(fed, rule))
        assert out.global_steps < len(fed) or not any(UNITS[0] <= t < UNITS[1] for t in fed)
    else:
        assert out.global_steps == len(fed)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="patch_size"):
        StaticPatchRule(patch_size=0, unit_range=UNITS, speech_id=SPEECH)
    with pytest.raises(ValueError, match="speech_id"):
        StaticPatchRule(patch_size=4, unit_range=UNITS, speech_id=UNITS[0])
    with pytest.raises(ValueError, match="rule"):
        generate(tiny_lst(window=None), [BOS], 2)
    with pytest.raises(ValueError, match="tile"):
        teacher_forced_logits(tiny_lst(window=None), [BOS, 5], [1])
