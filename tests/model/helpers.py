"""Random but valid packed inputs for model tests."""

from __future__ import annotations

import torch


def random_packed(
    batch: int = 2,
    docs_per_row: tuple[int, ...] = (3, 2),
    max_patch: int = 4,
    patches_per_doc: int = 6,
    pad_tokens: int = 3,
    pad_patches: int = 2,
    vocab: int = 97,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(tokens, doc_ids, patch_lengths)`` with several documents per row, several multi-token
    patches per document, trailing padding tokens and padding patches."""
    g = torch.Generator().manual_seed(seed)
    rows_len, rows_docs, rows_tokens = [], [], []
    for b in range(batch):
        lens, docs = [], []
        for d in range(docs_per_row[b % len(docs_per_row)]):
            n = int(torch.randint(2, patches_per_doc + 1, (1,), generator=g))
            doc_lens = [1] + torch.randint(1, max_patch + 1, (n - 1,), generator=g).tolist()
            lens += doc_lens
            docs += [d] * sum(doc_lens)
        rows_len.append(lens)
        rows_docs.append(docs)
    t = max(len(d) for d in rows_docs) + pad_tokens
    p = max(len(x) for x in rows_len) + pad_patches
    patch_lengths = torch.zeros(batch, p, dtype=torch.long)
    doc_ids = torch.full((batch, t), -1, dtype=torch.long)
    for b in range(batch):
        patch_lengths[b, : len(rows_len[b])] = torch.tensor(rows_len[b])
        doc_ids[b, : len(rows_docs[b])] = torch.tensor(rows_docs[b])
        rows_tokens.append(torch.randint(0, vocab, (t,), generator=g))
    return torch.stack(rows_tokens), doc_ids, patch_lengths
