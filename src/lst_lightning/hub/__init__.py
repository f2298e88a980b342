"""Moving models in and out of the kit (no Lightning needed):

- :mod:`.configs`: config dataclasses as ``{"class_path", "init_args"}`` JSON and back, generically.
- :mod:`.checkpoint`: weights-only reading of training checkpoints and the tokenizers, codebook
  and token layout they carry (:class:`~.checkpoint.KitCheckpoint`).
- :mod:`.pretrained`: Hugging Face style folders (``save_pretrained`` / ``from_pretrained`` /
  ``push_to_hub``); baselines double as ``transformers`` ``LlamaForCausalLM`` folders.
- :mod:`.llama`: the kit's stacks in ``transformers`` Llama naming, both ways.
- :mod:`.warm_start`: initialise a network from a Llama folder or another kit model.
- :mod:`.export`: ``lst-lightning export --ckpt X --out DIR``.
"""
