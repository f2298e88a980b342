"""The training stream: aligned records -> documents -> patches -> packed rows -> batches.

- :mod:`.documents`: text-only, speech-only and interleaved documents (interleaving on the fly).
- :mod:`.patching`: patch lengths per document (static, aligned and its variants, mixed,
  curriculum).
- :mod:`.packing`: rows of whole documents and the collate into :class:`~.batch.PackedBatch`.
- :mod:`.dataset`: the iterable dataset, re-mixed every epoch, sharded across loader workers.
- :mod:`.batch`: the one batch type every model takes.
"""
