"""Real English prose for the embedded corpus: Jane Austen's six novels, from Debian.

Nothing can be downloaded from a hub here, so the text comes from a package registry. Debian's
``r-cran-janeaustenr`` ships the full text of *Sense and Sensibility*, *Pride and Prejudice*,
*Mansfield Park*, *Emma*, *Northanger Abbey* and *Persuasion* (about 720k words of edited
prose, public domain; the R package that carries them is MIT-licensed, by Julia Silge). The novels
sit in R's lazy-load data format, so they are exported with ``Rscript`` (R itself is a dependency
of the Debian package); ``make setup-system`` installs it. Any other plain-text file can be used
instead through :func:`load_text_file` (paragraphs separated by blank lines).

Cleaning is deterministic and keeps the written form: case and punctuation stay on the words
(``"Yes,"`` is one word), Project Gutenberg's ``_italics_`` markers are dropped, ``--`` dashes
become an em dash on the preceding word, ``&`` becomes ``and``; headings (``CHAPTER IV``), title
lines and bracketed editorial notes are skipped. Paragraphs are split into sentences at ``.``,
``!`` or ``?`` followed by a capitalised word, except after titles such as ``Mr.``. Every word of
a cleaned paragraph contains a letter or a digit, so a TTS engine speaks each one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SOURCE_PACKAGE = "r-cran-janeaustenr"
"""The Debian package that ships the text (``apt-get install --no-install-recommends ...``)."""
SOURCE_LICENCE = (
    "Jane Austen's novels (1811-1818) are in the public domain; the janeaustenr package that "
    "ships them (Julia Silge, Debian's r-cran-janeaustenr) is MIT-licensed"
)
BOOKS: dict[str, str] = {
    "sensesensibility": "Sense and Sensibility",
    "prideprejudice": "Pride and Prejudice",
    "mansfieldpark": "Mansfield Park",
    "emma": "Emma",
    "northangerabbey": "Northanger Abbey",
    "persuasion": "Persuasion",
}
"""The data sets of janeaustenr (one character vector of lines per novel) and their titles."""
MISSING_MESSAGE = (
    f"the text source {SOURCE_PACKAGE} (Jane Austen's novels, a Debian package) is not installed: "
    f"run `make setup-system` as root or `apt-get install --no-install-recommends {SOURCE_PACKAGE}`"
)
ABBREVIATIONS = frozenset(
    "Mr Mrs Ms Messrs Dr St Esq Capt Col Gen Lt Rev Sir Bart Co No Vol Mt viz etc".split()
)
"""Words that end in a full stop without ending the sentence (``Mr. Weston``)."""
_HEADING = re.compile(r"^(chapter|volume|book|part|the end|finis)\b", re.IGNORECASE)
_EXPORT_SCRIPT = """
args <- commandArgs(trailingOnly = TRUE)
for (name in args[-1]) {
  env <- new.env()
  data(list = name, package = "janeaustenr", envir = env)
  writeLines(enc2utf8(env[[name]]), file.path(args[1], paste0(name, ".txt")), useBytes = TRUE)
}
"""


class TextSourceError(RuntimeError):
    """The text source is not installed or could not be read."""


@dataclass(frozen=True)
class Paragraph:
    """One cleaned paragraph of a book, as sentences; ``index`` counts kept paragraphs from 0."""

    book: str
    index: int
    sentences: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.sentences)

    @property
    def num_words(self) -> int:
        return sum(len(s.split()) for s in self.sentences)


def clean_paragraph(text: str) -> str:
    """Normalise one paragraph (its lines already joined); ``""`` when nothing speakable is left."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(c if c.isprintable() else " " for c in text)
    text = text.replace("_", "").replace("&", " and ")
    text = re.sub(r"^\s*-{2,}\s*", "", text)  # a paragraph opening with a dash
    text = re.sub(r"\s*-{2,}\s*", "\u2014 ", text)  # "came--a" -> "came\u2014 a"
    words = text.split()
    # A word without a letter or digit ("*", a lone dash or quote) would be silent: attach it to
    # its neighbour, or drop it when it is all there is.
    kept: list[str] = []
    pending = ""
    for word in words:
        if not any(c.isalnum() for c in word):
            if kept:
                kept[-1] += word
            else:
                pending += word
            continue
        kept.append(pending + word)
        pending = ""
    return " ".join(kept)


def is_heading(text: str) -> bool:
    """Chapter and volume headings, title lines, editorial notes: not prose."""
    if text.startswith("[") or _HEADING.match(text):
        return True
    words = text.split()
    return len(words) < 4 or not any(c.islower() for c in text)


def _ends_sentence(word: str, next_word: str) -> bool:
    core = word.rstrip("\"')]\u2014")
    if not core.endswith((".", "!", "?")):
        return False
    stem = core.rstrip(".!?").lstrip("\"'([")
    if core.endswith(".") and (stem in ABBREVIATIONS or (len(stem) == 1 and stem.isupper())):
        return False
    first = next_word.lstrip("\"'([")
    return bool(first) and (first[0].isupper() or first[0].isdigit())


def split_sentences(paragraph: str) -> list[str]:
    """Split a cleaned paragraph into sentences (whitespace-separated words are kept intact)."""
    words = paragraph.split()
    sentences: list[str] = []
    start = 0
    for i in range(len(words) - 1):
        if _ends_sentence(words[i], words[i + 1]):
            sentences.append(" ".join(words[start : i + 1]))
            start = i + 1
    if start < len(words):
        sentences.append(" ".join(words[start:]))
    return sentences


def paragraphs_from_lines(book: str, lines: Iterable[str]) -> list[Paragraph]:
    """Group lines into paragraphs at blank lines, clean them, drop headings, split sentences."""
    paragraphs: list[Paragraph] = []
    block: list[str] = []

    def close() -> None:
        text = clean_paragraph(" ".join(block))
        block.clear()
        if text and not is_heading(text):
            paragraphs.append(Paragraph(book, len(paragraphs), tuple(split_sentences(text))))

    for line in lines:
        if line.strip():
            block.append(line.strip())
        elif block:
            close()
    if block:
        close()
    return paragraphs


def load_text_file(path: str | Path, book: str | None = None) -> list[Paragraph]:
    """Paragraphs of a UTF-8 plain-text file (blank lines between paragraphs)."""
    path = Path(path)
    if not path.is_file():
        raise TextSourceError(f"text file {path} does not exist")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise TextSourceError(f"{path}: not UTF-8 text ({e})") from None
    paragraphs = paragraphs_from_lines(book or path.stem, lines)
    if not paragraphs:
        raise TextSourceError(f"{path}: no paragraph of prose (of at least 4 words) in the file")
    return paragraphs


def export_austen(books: Iterable[str] = BOOKS, rscript: str | None = None) -> dict[str, list[str]]:
    """The raw lines of each novel, read from the installed R package with one ``Rscript`` call."""
    books = list(books)
    unknown = [b for b in books if b not in BOOKS]
    if unknown:
        raise ValueError(f"unknown Austen book(s) {unknown}; choose from {sorted(BOOKS)}")
    found = shutil.which(rscript or "Rscript")
    if found is None:
        raise TextSourceError(
            f"{MISSING_MESSAGE} (no Rscript {'at ' + rscript if rscript else 'on PATH'})"
        )
    with tempfile.TemporaryDirectory(prefix="austen.") as tmp:
        result = subprocess.run(
            [found, "--vanilla", "-e", _EXPORT_SCRIPT, tmp, *books],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            detail = result.stderr.strip().splitlines()[-1:] or ["no message"]
            if "janeaustenr" in result.stderr:
                raise TextSourceError(f"{MISSING_MESSAGE} ({detail[0]})")
            raise TextSourceError(f"Rscript could not export the novels: {detail[0]}")
        return {b: (Path(tmp) / f"{b}.txt").read_text(encoding="utf-8").splitlines() for b in books}


def load_austen(books: Iterable[str] = BOOKS, rscript: str | None = None) -> list[Paragraph]:
    """Every cleaned paragraph of the chosen novels, book by book, in reading order."""
    return [
        p
        for book, lines in export_austen(books, rscript).items()
        for p in paragraphs_from_lines(book, lines)
    ]


def austen_available() -> bool:
    """Whether Rscript and the janeaustenr package are installed (the tests skip otherwise)."""
    try:
        export_austen(["persuasion"])
    except TextSourceError:
        return False
    return True
