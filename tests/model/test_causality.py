"""No information flows from the future or across packed documents, for LST and the baseline."""

from __future__ import annotations

import pytest
import torch

from lst_lightning.model import LST, BaselineConfig, LSTConfig, SpeechLLM, TransformerConfig
from lst_lightning.model.patching import patch_ends

from .helpers import random_packed

VOCAB = 97


def tiny_lst(window: int | None = None) -> LST:
    torch.manual_seed(0)
    small = dict(d_model=32, n_heads=2, window=window)
    return LST(
        LSTConfig(
            vocab_size=VOCAB,
            encoder=TransformerConfig(n_layers=1, **small),
            global_model=TransformerConfig(n_layers=2, d_model=48, n_heads=2),
            decoder=TransformerConfig(n_layers=2, **small),
        )
    ).eval()


def tiny_baseline() -> SpeechLLM:
    torch.manual_seed(0)
    return SpeechLLM(
        BaselineConfig(
            vocab_size=VOCAB, transformer=TransformerConfig(n_layers=2, d_model=32, n_heads=2)
        )
    ).eval()


MODELS = {"lst": tiny_lst, "lst_window": lambda: tiny_lst(window=3), "baseline": tiny_baseline}


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
