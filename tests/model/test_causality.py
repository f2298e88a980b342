"""No information flows from the future or across packed documents, for LST and the baseline."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from lst_lightning.model import LST, BaselineConfig, LSTConfig, SpeechLLM, TransformerConfig
from lst_lightning.model.patching import patch_ends

from .helpers import random_packed

VOCAB = 97


def tiny_lst(window: int | None = None, w_enc: int = 512, w_dec: int = 512, n_enc: int = 1) -> LST:
    """Local self-attention ``window``; cross-attention windows ``w_enc``, ``w_dec`` (paper: 512)."""
    torch.manual_seed(0)
    small = dict(d_model=32, n_heads=2, window=window)
    return LST(
        LSTConfig(
            vocab_size=VOCAB,
            encoder=TransformerConfig(n_layers=n_enc, **small),
            global_model=TransformerConfig(n_layers=2, d_model=48, n_heads=2),
            decoder=TransformerConfig(n_layers=2, **small),
            cross_window_encoder=w_enc,
            cross_window_decoder=w_dec,
        )
    ).eval()


def tiny_baseline() -> SpeechLLM:
    torch.manual_seed(0)
    return SpeechLLM(
        BaselineConfig(
            vocab_size=VOCAB, transformer=TransformerConfig(n_layers=2, d_model=32, n_heads=2)
        )
    ).eval()


MODELS = {
    "lst": tiny_lst,  # cross-attention windows 512, as the paper
    "lst_window": lambda: tiny_lst(window=3),
    "lst_cross_window": lambda: tiny_lst(window=3, w_enc=2, w_dec=3),
    "lst_cross1": lambda: tiny_lst(w_enc=1, w_dec=1),
    "baseline": tiny_baseline,
}


def perturb_from(tokens: torch.Tensor, row: int, start: int) -> torch.Tensor:
    changed = tokens.clone()
    changed[row, start:] = (
        changed[row, start:] + 1 + torch.arange(changed.shape[1] - start)
    ) % VOCAB
    return changed


@pytest.mark.parametrize("name", sorted(MODELS))
def test_no_information_from_the_future(name: str) -> None:
    model = MODELS[name]()
    tokens, doc_ids, patch_lengths = random_packed(vocab=VOCAB)
    with torch.no_grad():
        base = model(tokens, doc_ids, patch_lengths)
        real = int((doc_ids[0] >= 0).sum())
        for t in range(1, real):
            out = model(perturb_from(tokens, 0, t), doc_ids, patch_lengths)
            torch.testing.assert_close(
                out[0, :t], base[0, :t], msg=f"{name}: position < {t} changed"
            )
            assert not torch.allclose(out[0, t], base[0, t]), (
                f"{name}: position {t} ignores its input"
            )
            torch.testing.assert_close(out[1], base[1], msg=f"{name}: another row changed")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_packed_documents_do_not_see_each_other(name: str) -> None:
    model = MODELS[name]()
    tokens, doc_ids, patch_lengths = random_packed(vocab=VOCAB, seed=3)
    first_doc = doc_ids[0] == 0
    with torch.no_grad():
        base = model(tokens, doc_ids, patch_lengths)
        changed = tokens.clone()
        changed[0, first_doc] = (changed[0, first_doc] + 7) % VOCAB
        out = model(changed, doc_ids, patch_lengths)
    later = doc_ids[0] >= 1
    assert later.any()
    torch.testing.assert_close(out[0, later], base[0, later])
    assert not torch.allclose(out[0, first_doc], base[0, first_doc])


def test_decoder_uses_global_outputs_up_to_the_closed_patch_only() -> None:
    """Zeroing global output j leaves every logit before the end of patch j (and every other
    document) unchanged, and changes the logits at patch j's last token, which predict the first
    token of patch j+1."""
    model = tiny_lst()
    tokens, doc_ids, patch_lengths = random_packed(vocab=VOCAB, seed=5, max_patch=5)
    ends = patch_ends(patch_lengths)[0]
    with torch.no_grad():
        base = model(tokens, doc_ids, patch_lengths)
        for j in range(int((patch_lengths[0] > 0).sum())):
            hook = model.global_model.register_forward_hook(
                lambda _m, _i, out, j=j: out.index_fill(1, torch.tensor([j]), 0.0)
            )
            out = model(tokens, doc_ids, patch_lengths)
            hook.remove()
            changed = ~torch.isclose(out[0], base[0]).all(dim=-1)
            last = int(ends[j]) - 1
            assert not changed[:last].any(), (
                f"patch {j}: tokens before its end saw its global output"
            )
            assert changed[last], f"patch {j}: the token closing it does not see its global output"
            doc = doc_ids[0, last]
            other_docs = doc_ids[0] != doc
            assert not changed[other_docs].any(), f"patch {j}: leaked into another document"


def test_first_token_of_a_patch_is_predicted_from_the_previous_patch() -> None:
    """Merging patches 1 and 2 removes patch 1's global output: the logits at the token that closed
    patch 1 (they predict the first token of patch 2) must change; every earlier logit must not."""
    model = tiny_lst()
    tokens = torch.randint(0, VOCAB, (1, 12), generator=torch.Generator().manual_seed(7))
    doc_ids = torch.zeros(1, 12, dtype=torch.long)
    split = torch.tensor([[1, 3, 2, 4, 2]])
    merged = torch.tensor([[1, 5, 4, 2, 0]])
    with torch.no_grad():
        base = model(tokens, doc_ids, split)
        out = model(tokens, doc_ids, merged)
    torch.testing.assert_close(out[0, :3], base[0, :3])
    assert not torch.allclose(out[0, 3], base[0, 3])


def patch_spans(patch_lengths: torch.Tensor, doc_ids: torch.Tensor, row: int = 0):
    """``[(document, start, end)]`` of the real patches of ``row``."""
    ends = patch_ends(patch_lengths)[row].tolist()
    out = []
    for j, n in enumerate(patch_lengths[row].tolist()):
        if n:
            out.append((int(doc_ids[row, ends[j] - 1]), ends[j] - n, ends[j]))
    return out


def test_decoder_reaches_exactly_its_window_of_global_outputs() -> None:
    """Local windows 1 (so a logit sees only its own token and its cross-attention window): a
    perturbation of global output j - m changes the logits that predict patch j + 1 for
    0 <= m < W_dec and leaves them exactly unchanged for m >= W_dec, for later patches and for
    other packed documents."""
    w_dec = 3
    model = tiny_lst(window=1, w_enc=2, w_dec=w_dec)
    tokens, doc_ids, patch_lengths = random_packed(
        vocab=VOCAB, seed=8, max_patch=3, patches_per_doc=9, docs_per_row=(3,)
    )
    spans = patch_spans(patch_lengths, doc_ids)
    noise = torch.randn(
        model.config.global_model.d_model, generator=torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        base = model(tokens, doc_ids, patch_lengths)[0]
        for i, (doc_i, _, _) in enumerate(spans):

            def add_noise(_m, _a, out: torch.Tensor, i: int = i) -> torch.Tensor:
                out = out.clone()
                out[0, i] += noise
                return out

            hook = model.global_model.register_forward_hook(add_noise)
            out = model(tokens, doc_ids, patch_lengths)[0]
            hook.remove()
            changed = (out != base).any(dim=-1)
            for j in range(len(spans) - 1):
                doc_j, _, end_j = spans[j]
                doc_next, _, end_next = spans[j + 1]
                if doc_next != doc_j:
                    continue
                predicting = slice(end_j - 1, end_next - 1)  # the logits of patch j+1's tokens
                m = j - i
                if doc_i == doc_j and 0 <= m < w_dec:
                    assert changed[predicting].all(), f"patch {j + 1} does not see output {i}"
                else:
                    assert not changed[predicting].any(), f"patch {j + 1} sees output {i}"
            other = doc_ids[0] != doc_i
            assert not changed[other].any(), f"output {i} leaked into another document"


@pytest.mark.parametrize("n_enc", [1, 2])
def test_encoder_reaches_exactly_its_window_of_patches(n_enc: int) -> None:
    """Encoder self-attention window 1: perturbing the tokens of patch q - m changes patch vector
    q for 0 <= m < W_enc and leaves it exactly unchanged for m >= W_enc, for earlier patches and
    in other packed documents."""
    w_enc = 3
    model = tiny_lst(window=1, w_enc=w_enc, w_dec=2, n_enc=n_enc)
    tokens, doc_ids, patch_lengths = random_packed(
        vocab=VOCAB, seed=9, max_patch=3, patches_per_doc=9, docs_per_row=(3,)
    )
    spans = patch_spans(patch_lengths, doc_ids)
    captured: list[torch.Tensor] = []
    hook = model.global_model.register_forward_pre_hook(
        lambda _m, args: captured.append(args[0][0])
    )
    with torch.no_grad():
        model(tokens, doc_ids, patch_lengths)
        for i, (doc_i, start, end) in enumerate(spans):
            changed_tokens = tokens.clone()
            changed_tokens[0, start:end] = (changed_tokens[0, start:end] + 5) % VOCAB
            model(changed_tokens, doc_ids, patch_lengths)
            changed = (captured[-1] != captured[0]).any(dim=-1)
            for q, (doc_q, _, _) in enumerate(spans):
                if doc_q == doc_i and 0 <= q - i < w_enc:
                    assert changed[q], f"patch {q} does not see patch {i}"
                else:
                    assert not changed[q], f"patch {q} sees patch {i}"
    hook.remove()


def test_release_compat_changes_the_function_not_the_causality() -> None:
    """The release's doubled residual and missing global norm give other logits; future and
    document isolation hold all the same."""
    torch.manual_seed(0)
    config = tiny_lst().config
    compat = LST(replace(config, release_compat=True)).eval()
    compat.load_state_dict(tiny_lst().state_dict(), strict=False)
    tokens, doc_ids, patch_lengths = random_packed(vocab=VOCAB, seed=3)
    with torch.no_grad():
        base = tiny_lst()(tokens, doc_ids, patch_lengths)
        out = compat(tokens, doc_ids, patch_lengths)
        assert not torch.allclose(out, base)
        changed = perturb_from(tokens, 0, 6)
        after = compat(changed, doc_ids, patch_lengths)
    torch.testing.assert_close(after[0, :6], out[0, :6])
    torch.testing.assert_close(after[1], out[1])
