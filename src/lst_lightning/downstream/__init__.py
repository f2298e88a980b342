"""Downstream ASR and TTS (the paper's Tab. 5): task documents, metrics, the listening path, the judge.

One concept per module:

- :mod:`.tasks`: ASR ``BOS <s> units <t> transcript EOS`` and TTS ``BOS <t> text <s> units EOS``
  documents with a loss mask over the answer span.
- :mod:`.metrics`: transcript normalisation, WER and CER (torchmetrics).
- :mod:`.vocoder`: units -> waveform (a Griffin-Lim vocoder built from the log-mel unit codebook, a
  per-unit spectrum vocoder fitted on corpus audio, a unit HiFi-GAN loaded from a local folder).
- :mod:`.judge`: Whisper tiny.en through faster-whisper (the optional ``judge`` extra).
- :mod:`.realspeech`: Debian's real recordings laid out for the kit's ingest stage.
- :mod:`.evalsets`: the evaluation sets (embedded held-out split and voice, real speech) with
  their audio.
- :mod:`.topline`: the judge's WER/CER on original and vocoded ground-truth audio.
"""
