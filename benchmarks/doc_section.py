"""One numbered section of ``docs/benchmarks.md``, replaced in place by the benchmark that wrote it.

Each benchmark owns a ``## N. ...`` section; a rerun replaces that section (up to the next ``## ``
heading) and leaves the others as they are, writing the page atomically (temporary file, rename).
"""

from __future__ import annotations

from pathlib import Path

from lst_lightning.data.records import write_text_atomic


def replace_section(
    doc: Path, heading: str, section: str, before: str | None = None, title: str = "# Benchmarks"
) -> None:
    """Put ``section`` where the section whose heading line starts with ``heading`` is; when there
    is none, before the heading starting with ``before`` (if given and present), else at the end.
    A missing ``doc`` starts as ``title``."""
    text = doc.read_text(encoding="utf-8") if doc.is_file() else title + "\n"
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith(heading)]
    body = section.rstrip("\n") + "\n"
    if starts:
        first = starts[0]
        end = next(
            (i for i in range(first + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        new = "".join(lines[:first]) + body + ("\n" if end < len(lines) else "")
        new += "".join(lines[end:])
    else:
        anchor = next(
            (i for i, line in enumerate(lines) if before and line.startswith(before)), None
        )
        if anchor is None:
            new = text.rstrip("\n") + "\n\n" + body
        else:
            new = "".join(lines[:anchor]) + body + "\n" + "".join(lines[anchor:])
    write_text_atomic(doc, new)
