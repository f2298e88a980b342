"""Where the training stream's records come from: Hugging Face ``datasets`` read by index
(memory-mapped Arrow: :mod:`.arrow`), the JSONL / txt layout converted once to Arrow
(:mod:`.cache`), streamed text (:mod:`.streamed`), several weighted sources of a kind
(:mod:`.mixing`) and the ``data.sources`` options (:mod:`.options`).

Nothing here imports ``datasets`` at import time: only opening a source does.
"""
