"""The Latent Speech-Text Transformer: patch encoder -> global transformer -> patch decoder."""

from __future__ import annotations

import torch
from torch import nn

from .config import LSTConfig
from .decoder import PatchDecoder
from .encoder import PatchEncoder
from .global_model import GlobalTransformer
from .layers import init_weights
from .patching import (
    decoder_cross_bounds,
    encoder_cross_bounds,
    patch_doc_ids,
    positions_in_document,
    token_to_patch,
)


class LST(nn.Module):
    """Maps ``(tokens, doc_ids, patch_lengths)`` to next-token logits over the whole token space.

    The global model steps once per patch; text tokens and specials are length-1 patches, so only
    speech is compressed. See ``lst_lightning.data.stream.batch.PackedBatch`` for the input conventions.
    """

    def __init__(self, config: LSTConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = PatchEncoder(config)
        self.global_model = GlobalTransformer(
            config.global_model, final_norm=not config.release_compat
        )
        self.decoder = PatchDecoder(config)
        layers = config.encoder.n_layers + config.global_model.n_layers + config.decoder.n_layers
        init_weights(self, config.init_std, layers)

    def forward(
        self, tokens: torch.Tensor, doc_ids: torch.Tensor, patch_lengths: torch.Tensor
    ) -> torch.Tensor:
        t, p = tokens.shape[1], patch_lengths.shape[1]
        cfg = self.config
        positions = positions_in_document(doc_ids)
        patch_index = token_to_patch(patch_lengths, t)
        patch_docs = patch_doc_ids(patch_lengths, doc_ids)
        enc_bounds = encoder_cross_bounds(patch_lengths, patch_docs, cfg.cross_window_encoder)
        token_states, patches = self.encoder(tokens, doc_ids, positions, patch_index, enc_bounds)
        global_out = self.global_model(patches, patch_docs, positions_in_document(patch_docs))
        context = self.decoder.patch_context(global_out)
        dec_bounds = decoder_cross_bounds(
            patch_lengths, doc_ids, patch_docs, cfg.cross_window_decoder
        )
        bounds = self.decoder.context_bounds(dec_bounds, p)
        return self.decoder(token_states, context, bounds, doc_ids, positions)
