"""Student copies read cleanly in JupyterLab: plain Markdown, numbered as on the site, no answers."""

import re

import mistune
import nbformat
import pytest

import nnexercises as E
from nnbook import student as make_student
from conftest import CHAPTERS, ROOT, read_notebook


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    out = tmp_path_factory.mktemp("student") / "chapters"
    make_student.main(str(ROOT / "chapters"), str(out))
    return {p.stem: read_notebook(out / p.name) for p in CHAPTERS}


@pytest.fixture(scope="module")
def book():
    return make_student.load_book(ROOT)


def _markdown(nb):
    return [c.source for c in nb.cells if c.cell_type == "markdown"]


_render = mistune.create_markdown(renderer="html")


def _visible_text(source: str) -> str:
    """What a reader sees of a markdown cell: rendered, without code and math."""
    html = _render(source)
    html = re.sub(r"<(code|pre)>.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r"\$\$.*?\$\$|\$[^$\n]+\$", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_quarto_markup_is_left(copies, path):
    for source in _markdown(copies[path.stem]):
        text = _visible_text(source)
        assert ":::" not in text, source[:200]
        assert not re.search(r"\{[#.][\w-]", text), source[:200]             # {#sec-...}, {.callout}
        assert not re.search(r"(?<![\w`])-?@[A-Za-z][\w-]*", text), source[:200]   # bare @key
        assert "{{<" not in text and ".qmd" not in text, source[:200]
        assert not re.search(r"\]\([^)]*_student/", source), source[:200]    # links to the copies


def test_exercises_are_numbered_headings_as_on_the_site(copies, book):
    for path in CHAPTERS:
        doc = book.documents[f"chapters/{path.name}"]
        names = re.findall(r"::: \{#exr-([\w-]+)\}", "\n".join(_markdown(read_notebook(path))))
        titles = [m for s in _markdown(copies[path.stem])
                  for m in re.findall(r"^## Exercise (\S+): \S", s, re.M)]
        assert titles == [f"{doc.number}.{k}" for k in range(1, len(names) + 1)], path.stem
        assert [book.labels[f"exr-{n}"].text for n in names] == [f"Exercise {t}" for t in titles]


def test_chapters_are_numbered_in_the_order_of_the_book(copies, book):
    numbered = [d for d in book.documents.values() if d.number and not d.appendix]
    assert [d.number for d in numbered] == [str(k) for k in range(1, len(numbered) + 1)]
    for path in CHAPTERS:
        doc = book.documents[f"chapters/{path.name}"]
        first = _markdown(copies[path.stem])[0]
        assert first.startswith(f"# {doc.number} {doc.title}\n"), first[:80]


def test_references_become_numbers_and_link_to_other_chapters(copies, book):
    for path in CHAPTERS:
        original = "\n".join(_markdown(make_student.without_solutions(read_notebook(path))))
        copy = "\n".join(_markdown(copies[path.stem]))
        for label in set(re.findall(r"(?<![\w@])@((?:fig|sec|eq|exr)-[\w-]*\w)", original)):
            target = book.labels[label]        # every reference resolves
            if target.doc == f"chapters/{path.name}":
                assert target.text in copy, (path.stem, label)
            elif target.doc.endswith(".ipynb"):
                assert f"[{target.text}]({target.doc.split('/')[-1]})" in copy, (path.stem, label)
            else:
                assert target.text in copy, (path.stem, label)


def test_numbered_equations_carry_their_number(copies, book):
    for path in CHAPTERS:
        original = "\n".join(_markdown(read_notebook(path)))
        copy = "\n".join(_markdown(copies[path.stem]))
        for label in re.findall(r"\$\$\s*\{#(eq-[\w-]+)\}", original):
            number = book.labels[label].text.split()[1]
            assert f"\\tag{{{number}}} $$" in copy, label


def test_callouts_become_titled_block_quotes():
    book = make_student.Book()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "Before.\n\n::: {.callout-tip}\n## A tip\nDo this.\n\nAnd that.\n:::\n\n"
        "::: {.callout-warning}\nNo title here.\n:::\n\n::: {.column-margin}\nAside.\n:::")])
    text = make_student.student_copy(nb, book).cells[0].source
    assert text == ("Before.\n\n> **A tip**\n>\n> Do this.\n>\n> And that.\n\n"
                    "> **Warning**\n>\n> No title here.\n\nAside.")


def test_citations_from_the_bibliography(tmp_path):
    bib = tmp_path / "refs.bib"
    bib.write_text("@book{one,\n  author = {Glass, Ann},\n  year = {2021}\n}\n\n"
                   "@article{two,\n  author = {Mc{C}ulloch, W. and Pitts, Walter},\n  year = {1943}\n}\n\n"
                   "@article{three,\n  author = {A, B. and C, D. and E, F.},\n  year = {1990}\n}\n\n"
                   "@book{many,\n  author = {James, G. and Witten, D. and Hastie, T. and Tibshirani, R.},\n"
                   "  year = {2023}\n}\n")
    book = make_student.Book(bib=make_student._read_bib(bib))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "As [@two; reviewed in @one] and [see chapter 15 of @three] show, @many: fine; "
        "[-@one]. Mail me@example.org, `@decorator`.")])
    text = make_student.student_copy(nb, book).cells[0].source
    assert text == ("As (McCulloch and Pitts 1943; reviewed in Glass 2021) and "
                    "(see chapter 15 of A, C, and E 1990) show, James et al. (2023): fine; "
                    "(2021). Mail me@example.org, `@decorator`.")


def test_site_address_turns_references_into_links(book):
    linked = make_student.Book(documents=book.documents, labels=book.labels, bib=book.bib,
                               site_url="https://example.org/nn/")
    path = next(p for p in CHAPTERS if p.stem.startswith("08"))
    copy = make_student.student_copy(read_notebook(path), linked)
    text = "\n".join(_markdown(copy))
    assert "](https://example.org/nn/chapters/07-gradient-descent.html#sec-gradient-descent)" in text
    assert "](https://example.org/nn/references.html" in text


def test_the_link_to_the_student_copy_becomes_a_line_saying_this_is_it(copies, book):
    for path in CHAPTERS:
        tagged = [c for c in read_notebook(path).cells
                  if make_student.LINK_TAG in c.metadata.get("tags", [])]
        lines = [c.source for c in copies[path.stem].cells
                 if make_student.LINK_TAG in c.metadata.get("tags", [])]
        assert len(lines) == len(tagged) == 1, path.stem
        doc = book.documents[f"chapters/{path.name}"]
        kind = "appendix" if doc.appendix else "chapter"
        assert lines[0].startswith(f"**This is your copy of {kind} {doc.number}**"), lines[0]
        assert "](" not in lines[0]


def test_no_exercise_answer_in_the_markdown_of_a_copy(copies):
    """Numbers in each chapter's prose that its own exercises would accept as answers."""
    for path in CHAPTERS:
        names = [n for n, stem in E.EXERCISES.items() if stem == path.stem]
        prose = "\n".join(_markdown(copies[path.stem]))
        assert E.find_answers(prose, names, min_whole=0) == [], path.stem
