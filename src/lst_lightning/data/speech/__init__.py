"""The speech front end: audio -> 25 Hz units -> word alignments -> aligned records.

- :mod:`.audio`: read any file or HF ``Audio`` cell as 16 kHz mono float32.
- :mod:`.units` (+ :mod:`.kmeans`): one discrete unit per 25 Hz frame, offline log-mel k-means or
  HuBERT + k-means.
- :mod:`.align`: word timings (engine events, CTC forced alignment, files) -> the paper's aligned
  record in unit frames.
- :mod:`.ingest`, :mod:`.stages`: the resumable stages from an HF dataset or an audio folder to the
  paper's aligned-unit JSONL (``python -m lst_lightning.data.speech.stages``).
"""
