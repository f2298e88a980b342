"""The listening path: pick a vocoder, speak units, write a WAV.

``load_vocoder(spec, data_dir)`` opens

- a folder with ``config.json``: a unit HiFi-GAN (:mod:`.hifigan`; the path for HuBERT units);
- a ``.pt`` file: a saved :class:`~.vocoder.GriffinLimVocoder`;
- nothing: the codebook vocoder of the corpus's own unit tokenizer (``<data_dir>/units.pt``), with
  per-band levels measured on up to 50 utterances of the corpus folder's audio
  (``heldout_voice_audio/`` in the embedded corpus) when it has any, flat levels otherwise.

Command line::

    python -m lst_lightning.downstream.listen speak --data-dir data/embedded --units "3 3 41 ..." --out x.wav
    python -m lst_lightning.downstream.listen build --data-dir data/embedded --out vocoder.pt [--fit]

``build --fit`` fits the per-unit spectrum table on the corpus folder's audio instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from lst_lightning.data.speech.audio import load_audio
from lst_lightning.data.speech.units import MelKMeansUnits, load_unit_tokenizer
from lst_lightning.downstream.hifigan import HiFiGANVocoder
from lst_lightning.downstream.vocoder import GriffinLimVocoder, mel_levels, write_wav

Vocoder = Callable[[np.ndarray], np.ndarray]
LEVEL_UTTERANCES = 50


def corpus_audio(data_dir: str | Path, limit: int | None = None) -> Iterator[np.ndarray]:
    """16 kHz waveforms from the audio datasets a corpus folder holds (``*_audio/``)."""
    from datasets import load_from_disk

    n = 0
    for folder in sorted(Path(data_dir).glob("*_audio")):
        if not (folder / "state.json").is_file():
            continue
        for row in load_from_disk(str(folder)):
            if limit is not None and n >= limit:
                return
            yield load_audio(row["audio"]["bytes"], row["file_id"])
            n += 1


def codebook_vocoder(data_dir: str | Path, fit: bool = False) -> GriffinLimVocoder:
    """The Griffin-Lim vocoder of ``<data_dir>/units.pt`` (see the module docstring)."""
    units_file = Path(data_dir) / "units.pt"
    if not units_file.is_file():
        raise FileNotFoundError(f"no unit tokenizer at {units_file}: give --vocoder")
    tokenizer = load_unit_tokenizer(units_file)
    if not isinstance(tokenizer, MelKMeansUnits):
        raise ValueError(
            f"{units_file} holds HuBERT units: their vocoder is a unit HiFi-GAN folder (--vocoder)"
        )
    audio = list(corpus_audio(data_dir, None if fit else LEVEL_UTTERANCES))
    levels = mel_levels(audio, tokenizer) if audio else None
    base = GriffinLimVocoder.from_codebook(tokenizer, levels)
    if fit:
        if not audio:
            raise ValueError(f"{data_dir} holds no audio (*_audio/) to fit a vocoder on")
        return GriffinLimVocoder.fit(audio, tokenizer, fallback=base)
    return base


def load_vocoder(spec: str | Path | None, data_dir: str | Path | None = None) -> Vocoder:
    """A units -> 16 kHz waveform callable (see the module docstring)."""
    if spec is None:
        if data_dir is None:
            raise ValueError("give a vocoder (a .pt file or a HiFi-GAN folder) or a corpus folder")
        return codebook_vocoder(data_dir)
    path = Path(spec)
    if path.is_dir():
        return HiFiGANVocoder.from_folder(path)
    if path.is_file():
        return GriffinLimVocoder.load(path)
    raise FileNotFoundError(f"no vocoder at {path} (a .pt file or a unit HiFi-GAN folder)")


def speak_to_wav(vocoder: Vocoder, units: np.ndarray | list[int], out: str | Path) -> Path:
    """Vocode ``units`` and write the 16 kHz WAV to ``out``."""
    return write_wav(out, vocoder(np.asarray(units, dtype=np.int64)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lst_lightning.downstream.listen")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("speak", help="units -> WAV")
    p.add_argument("--units", required=True, help="space-separated unit ids")
    p.add_argument("--out", required=True, help="WAV file to write")
    p.add_argument("--vocoder", default=None, help="a .pt vocoder or a unit HiFi-GAN folder")
    p.add_argument("--data-dir", default="data/embedded", help="corpus folder (codebook vocoder)")
    p = sub.add_parser("build", help="save the corpus's Griffin-Lim vocoder")
    p.add_argument("--out", required=True, help=".pt file to write")
    p.add_argument("--data-dir", default="data/embedded")
    p.add_argument("--fit", action="store_true", help="fit per-unit spectra on the corpus audio")
    args = parser.parse_args(argv)
    try:
        if args.command == "speak":
            units = [int(u) for u in args.units.split()]
            vocoder = load_vocoder(args.vocoder, args.data_dir)
            path = speak_to_wav(vocoder, units, args.out)
            print(f"wrote {len(units)} units ({len(units) / 25:.2f} s) to {path}")
        else:
            vocoder = codebook_vocoder(args.data_dir, fit=args.fit)
            vocoder.save(args.out)
            print(f"wrote a {vocoder.source} vocoder to {args.out}")
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
