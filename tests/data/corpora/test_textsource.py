"""The text source: cleaning, sentence splitting, plain-text files, and the Austen novels."""

from __future__ import annotations

import pytest

from lst_lightning.data.corpora.textsource import (
    BOOKS,
    TextSourceError,
    austen_available,
    clean_paragraph,
    export_austen,
    is_heading,
    load_austen,
    load_text_file,
    paragraphs_from_lines,
    split_sentences,
)

needs_austen = pytest.mark.skipif(
    not austen_available(),
    reason="r-cran-janeaustenr (and Rscript) not installed: run `make setup-system` as root",
)


def test_clean_paragraph_keeps_the_written_form():
    raw = 'Sorrow came--a gentle _sorrow_--but not at all; "Yes," said she & he. * * *'
    assert (
        clean_paragraph(raw)
        == 'Sorrow came\u2014 a gentle sorrow\u2014 but not at all; "Yes," said she and he.***'
    )
    assert clean_paragraph("--Miss Taylor married.") == "Miss Taylor married."
    assert clean_paragraph("* * *") == ""


def test_every_cleaned_word_has_a_letter_or_digit():
    text = clean_paragraph('" -- " He said -- "no" -- ! and -- 1811 --')
    assert all(any(c.isalnum() for c in w) for w in text.split()), text


def test_split_sentences_respects_titles_and_initials():
    text = (
        'Mr. Weston was a man of fortune. He had married Miss Churchill! "Did he?" asked '
        "Emma. J. Smith came later. It cost \u00a320,000."
    )
    assert split_sentences(text) == [
        "Mr. Weston was a man of fortune.",
        "He had married Miss Churchill!",
        '"Did he?" asked Emma.',
        "J. Smith came later.",
        "It cost \u00a320,000.",
    ]
    # No capital after the stop: the same sentence goes on.
    assert split_sentences("It was 5 p.m. in town. Then") == ["It was 5 p.m. in town.", "Then"]


def test_headings_are_not_prose():
    for heading in (
        "CHAPTER IV",
        "Chapter 12",
        "VOLUME II",
        "PRIDE AND PREJUDICE",
        "By Jane Austen",
    ):
        assert is_heading(heading), heading
    assert is_heading("[At this point in the first and second editions, Volume 1 ends.]")
    assert not is_heading("It is a truth universally acknowledged.")


def test_paragraphs_from_lines_groups_at_blank_lines():
    lines = [
        "EMMA",
        "",
        "CHAPTER I",
        "",
        "Emma Woodhouse, handsome, clever,",
        "and rich. She was happy.",
        "",
        "",
        "Her father was a nervous man.",
    ]
    paragraphs = paragraphs_from_lines("emma", lines)
    assert [p.sentences for p in paragraphs] == [
        ("Emma Woodhouse, handsome, clever, and rich.", "She was happy."),
        ("Her father was a nervous man.",),
    ]
    assert [p.index for p in paragraphs] == [0, 1]
    assert paragraphs[0].num_words == 9


def test_load_text_file_errors_name_the_file(tmp_path):
    with pytest.raises(TextSourceError, match="does not exist"):
        load_text_file(tmp_path / "missing.txt")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 au lait is good today".encode("latin-1"))
    with pytest.raises(TextSourceError, match="latin1.txt: not UTF-8"):
        load_text_file(bad)
    empty = tmp_path / "headings.txt"
    empty.write_text("CHAPTER I\n\nTHE END\n")
    with pytest.raises(TextSourceError, match="headings.txt: no paragraph"):
        load_text_file(empty)
    good = tmp_path / "story.txt"
    good.write_text("One fine day the fox ran.\n\nThe dog slept all day long.\n")
    assert [p.text for p in load_text_file(good)] == [
        "One fine day the fox ran.",
        "The dog slept all day long.",
    ]


def test_missing_source_gives_the_install_command(tmp_path):
    with pytest.raises(TextSourceError, match="make setup-system"):
        export_austen(["emma"], rscript=str(tmp_path / "no-such-Rscript"))
    # An R without the package fails like this one.
    fake = tmp_path / "Rscript"
    fake.write_text(
        "#!/bin/sh\necho \"Error: there is no package called 'janeaustenr'\" >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    with pytest.raises(
        TextSourceError, match="apt-get install --no-install-recommends r-cran-janeaustenr"
    ):
        export_austen(["emma"], rscript=str(fake))
    with pytest.raises(ValueError, match="unknown Austen book"):
        export_austen(["ulysses"])


@needs_austen
def test_austen_novels_are_real_prose():
    paragraphs = load_austen()
    assert {p.book for p in paragraphs} == set(BOOKS)
    words = sum(p.num_words for p in paragraphs)
    assert 650_000 < words < 800_000, words
    first = next(p for p in paragraphs if p.book == "prideprejudice")
    assert first.sentences[0] == (
        "It is a truth universally acknowledged, that a single man in possession of a good "
        "fortune, must be in want of a wife."
    )
    assert not any(is_heading(p.text) for p in paragraphs)
    assert load_austen(["persuasion"]) == [p for p in paragraphs if p.book == "persuasion"]
