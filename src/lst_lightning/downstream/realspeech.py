"""Real recordings from Debian packages, laid out for the kit's own ingest stage.

Two sets (installed by ``make setup-system``):

- ``librivox``: Debian's ``pocketsphinx-testdata`` ships five LibriVox recordings of the start of
  Austen's *Sense and Sensibility*, chapter 1 (one male reader, 16 kHz, 25 s in all; LibriVox
  recordings are in the public domain), with a CMU Sphinx ``transcription`` file
  (``<s> words </s> (file_id)`` per line) in ``/usr/share/pocketsphinx/test/data/librivox``.
- ``asterisk``: ``asterisk-core-sounds-en-wav`` ships the English prompts of the Asterisk PBX,
  recorded by Allison Smith (one female voice, 8 kHz telephone audio, 568 files, about 25 minutes,
  CC BY-SA 3.0) in ``/usr/share/asterisk/sounds/en_US_f_Allison``, and ``asterisk-core-sounds-en``
  their transcripts (``name: transcript`` per line) in
  ``/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz``.

:func:`layout` writes a folder in the layout that
:func:`lst_lightning.data.speech.ingest.iter_folder` reads (``<id>.wav`` linked to the package's
file and a ``<id>.txt`` sidecar transcript); :func:`build_real_set` then runs the kit's ``ingest``
stage (16 kHz, normalised words; the 8 kHz prompts are resampled) and ``units`` stage (the
corpus's unit tokenizer) on it, with ``--on-error skip`` so that a transcript without audio is
counted, not fatal. Transcript clean-up before ingest, so that the reference says what is spoken:
bracketed descriptions (``[this is a simple beep tone]``) are removed and a prompt left without
words is not laid out; hyphens and slashes become spaces (``Call-Forward`` -> ``call forward``,
which ingest would otherwise glue into one word); the Sphinx ``<s>`` / ``</s>`` markers and
trailing ``(file_id)`` are dropped.

``python -m lst_lightning.downstream.realspeech --out data/realspeech --tokenizer
data/embedded/units.pt`` builds both into ``data/realspeech/<set>/{folder,ingest,units}``.
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lst_lightning.data.speech import stages
from lst_lightning.downstream.tasks import SpeechText

LIBRIVOX_DIR = Path("/usr/share/pocketsphinx/test/data/librivox")
ASTERISK_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ASTERISK_TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
SETS = ("librivox", "asterisk")
PACKAGES = {
    "librivox": "pocketsphinx-testdata",
    "asterisk": "asterisk-core-sounds-en-wav and asterisk-core-sounds-en",
}

_BRACKETS = re.compile(r"\[[^\]]*\]")
_JOINERS = re.compile(r"[-/]")
_SPHINX_LINE = re.compile(r"^\s*(?:<s>)?(.*?)(?:</s>)?\s*\(([^()]+)\)\s*$")


@dataclass(frozen=True)
class RealItem:
    """One recording: its id (a relative path without extension), audio file and transcript."""

    file_id: str
    audio: Path
    text: str


def clean_transcript(text: str) -> str:
    """Bracketed descriptions removed, hyphens and slashes as spaces, whitespace collapsed."""
    return " ".join(_JOINERS.sub(" ", _BRACKETS.sub(" ", text)).split())


def librivox_items(root: str | Path = LIBRIVOX_DIR) -> list[RealItem]:
    """The LibriVox recordings and their Sphinx transcripts."""
    root = Path(root)
    trans = root / "transcription"
    if not trans.is_file():
        raise FileNotFoundError(f"no {trans}: install {PACKAGES['librivox']} (make setup-system)")
    items = []
    for lineno, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        match = _SPHINX_LINE.match(line)
        if match is None:
            raise ValueError(f"{trans}:{lineno}: not '<s> words </s> (file_id)': {line[:60]!r}")
        text, file_id = match.group(1), match.group(2).strip()
        items.append(RealItem(file_id, root / f"{file_id}.wav", clean_transcript(text)))
    return items


def asterisk_items(
    sounds: str | Path = ASTERISK_DIR, transcripts: str | Path = ASTERISK_TRANSCRIPTS
) -> list[RealItem]:
    """The Asterisk prompts that have words in their transcript (``name: text`` lines)."""
    sounds, transcripts = Path(sounds), Path(transcripts)
    if not transcripts.is_file():
        raise FileNotFoundError(
            f"no {transcripts}: install {PACKAGES['asterisk']} (make setup-system)"
        )
    if not sounds.is_dir():
        raise FileNotFoundError(f"no {sounds}: install {PACKAGES['asterisk']} (make setup-system)")
    opener = gzip.open if transcripts.suffix == ".gz" else open
    with opener(transcripts, "rt", encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    items = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        name, sep, text = line.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise ValueError(f"{transcripts}:{lineno}: not 'name: transcript': {line[:60]!r}")
        text = clean_transcript(text)
        if text:
            name = name.strip()
            items.append(RealItem(name, sounds / f"{name}.wav", text))
    return items


def real_items(name: str) -> list[RealItem]:
    """The installed recordings of set ``name`` (``librivox`` or ``asterisk``)."""
    if name == "librivox":
        return librivox_items()
    if name == "asterisk":
        return asterisk_items()
    raise ValueError(f"real-speech set must be one of {SETS}, got {name!r}")


def real_set_status(name: str) -> tuple[bool, str]:
    """Whether set ``name``'s package is installed, and if not which package to install."""
    try:
        real_items(name)
    except FileNotFoundError as e:
        return False, str(e)
    return True, ""


def layout(items: list[RealItem], folder: str | Path) -> Path:
    """``<folder>/<file_id>.wav`` (a link to the recording) and ``<file_id>.txt`` per item.

    A missing recording gets only its transcript, which ingest then counts as a record without
    audio. Rewrites the folder's links and transcripts; leaves other files alone.
    """
    folder = Path(folder)
    for item in items:
        target = folder / f"{item.file_id}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        if item.audio.is_file():
            target.symlink_to(item.audio.resolve())
        (folder / f"{item.file_id}.txt").write_text(item.text + "\n", encoding="utf-8")
    return folder


def build_real_set(
    items: list[RealItem], work: str | Path, tokenizer: str | Path, force: bool = False
) -> dict[str, Any]:
    """Layout -> ``ingest`` -> ``units`` in ``work`` (resumable stages); the units stage's info."""
    work = Path(work)
    layout(items, work / "folder")
    stages.ingest(work / "ingest", folder=work / "folder", on_error="skip", force=force)
    return stages.units(work / "ingest", work / "units", tokenizer, on_error="skip", force=force)


def read_real_set(work: str | Path) -> list[tuple[SpeechText, bytes]]:
    """The built set: each utterance's transcript and units, with its 16 kHz WAV bytes."""
    from datasets import load_from_disk

    work = Path(work)
    for stage in ("ingest", "units"):
        stages.read_stage_info(work / stage)  # a clear error when a stage is missing
    audio = {r["file_id"]: r["audio"]["bytes"] for r in load_from_disk(str(work / "ingest"))}
    out = []
    for row in load_from_disk(str(work / "units")):
        if not row["units"]:
            continue  # shorter than one unit frame: nothing to transcribe
        item = SpeechText(row["file_id"], row["text"], tuple(row["units"]))
        out.append((item, audio[row["file_id"]]))
    return out


def iter_sets(names: list[str]) -> Iterator[tuple[str, list[RealItem]]]:
    for name in names:
        ok, why = real_set_status(name)
        if not ok:
            print(f"realspeech: skipping {name}: {why}", file=sys.stderr)
            continue
        yield name, real_items(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lst_lightning.downstream.realspeech", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", default="data/realspeech", help="work folder (one per set)")
    parser.add_argument("--tokenizer", default="data/embedded/units.pt", help="unit tokenizer")
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--force", action="store_true", help="rebuild the stages")
    args = parser.parse_args(argv)
    import datasets

    datasets.disable_progress_bars()
    try:
        for name, items in iter_sets(args.sets):
            info = build_real_set(items, Path(args.out) / name, args.tokenizer, args.force)
            print(f"realspeech: {name}: {info['records']} utterances in {Path(args.out) / name}")
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
