"""The student copies and the kit hold nothing that is true only of the repository or the site.

A build-time check over every student copy ``make student`` writes and every file of the
kit: each kind of leftover a student would trip over has its own test, so a chapter edit
that brings one back fails here with the file, the cell and the text.
"""

import re
import zipfile

import nbformat
import pytest

from conftest import CHAPTERS, ROOT
from nnbook import kit as make_kit
from nnbook import student as make_student


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """{file name: student notebook} as ``make student`` writes them."""
    folder = tmp_path_factory.mktemp("student")
    make_student.main(str(ROOT / "chapters"), str(folder))
    return {p.name: nbformat.read(p, as_version=4) for p in sorted(folder.glob("*.ipynb"))}


@pytest.fixture(scope="module")
def kit(copies, tmp_path_factory):
    folder = tmp_path_factory.mktemp("kit-notebooks")
    for name, nb in copies.items():
        nbformat.write(nb, folder / name)
    return make_kit.kit_files(folder)


def _found(copies, pattern, kinds=("markdown", "code")):
    return [f"{name} cell {k}: ...{cell.source[max(0, m.start() - 40):m.end() + 40]!r}"
            for name, nb in copies.items() for k, cell in enumerate(nb.cells)
            if cell.cell_type in kinds for m in re.finditer(pattern, cell.source)]


LEFTOVERS = {
    "the repository's scripts/ folder": r"scripts/",
    "the solution, which students do not have": r"the solution says",
    "cross-reference markup": r"(?<![\w\\])@(eq|fig|sec|exr|tbl)-",
    "an explorer 'below' that is not there": r"explorer below|The next cell hands it",
    "Quarto cell options": r"(?m)^#\|",
    "nh.to_page, which prints a line meant for the web page": r"to_page\(",
    "Quarto shortcodes and fences": r"(?m)\{\{<|^:::",
}


@pytest.mark.parametrize("what", LEFTOVERS)
def test_no_leftover(copies, what):
    assert not _found(copies, LEFTOVERS[what]), what


def test_the_copies_are_the_chapters_and_the_notation_appendix(copies):
    assert sorted(copies) == sorted([p.name for p in CHAPTERS] + ["notation.ipynb"])
    notation = copies["notation.ipynb"].cells[0].source
    assert notation.startswith("# A Notation")


def test_appendix_references_link_to_a_file_of_the_kit(copies, kit):
    links = re.findall(r"\[Appendix ([A-Z])\]\(([^)]+)\)", "\n".join(
        c.source for nb in copies.values() for c in nb.cells if c.cell_type == "markdown"))
    assert {"A", "B"} <= {letter for letter, _ in links}
    assert all(f"notebooks/{target}" in kit for _, target in links)
    assert not _found(copies, r"Appendix [A-Z](?!\]\()", ("markdown",))   # never unlinked


def test_explorers_are_said_to_be_on_the_web_page(copies):
    assert _found(copies, r"On this chapter's page of the book's web site, an explorer")


def test_quarto_options_go_and_the_caption_stays_as_a_comment():
    book = make_student.load_book(ROOT)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "#| label: fig-gd-paths\n#| code-fold: true\n#| fig-cap: A caption, see @eq-gd-step.\n"
        "#| fig-alt: >-\n#|   Alt text over\n#|   two lines.\nx = 1  # as in @eq-gd-step\n"
        "nh.to_page(significant=6,\n           data=[1, 2])\nprint(x)")])
    code = make_student.student_copy(nb, book).cells[0].source
    assert code.startswith("# Figure 7.1: A caption, see Equation 7.1.\n")
    assert "#|" not in code and "Alt text" not in code and "to_page" not in code
    assert "x = 1  # as in Equation 7.1\n" in code and code.endswith("print(x)")


def test_a_cell_that_only_hands_data_to_the_page_is_dropped():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("#| code-fold: true\n"
                                                                   "nh.to_page(a=1)")])
    assert make_student.student_copy(nb, make_student.Book()).cells == []


def test_the_kit_ships_no_unused_data_and_one_output_folder(kit):
    text = "\n".join(v.decode("utf-8", "replace") for k, v in kit.items() if not k.startswith("data/"))
    assert all(name[len("data/"):] in text for name in kit if name.startswith("data/"))
    helper = kit["notebooks/nnhelpers.py"].decode()
    assert make_kit.HELPER_ROOT[1] in helper and make_kit.HELPER_ROOT[0] not in helper
    assert "notebooks/_output/" in kit["README.md"].decode()


def test_the_kit_tells_how_to_install_the_cpu_build_of_torch_and_python(kit):
    readme, requirements = kit["README.md"].decode(), kit["requirements.txt"].decode()
    command = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
    assert command in readme and command in requirements
    assert "py -3.11" in readme and "python3.11" in readme and "MB" in readme
    assert "local wheel cache" not in requirements and "torch==2.13.0\n" in requirements
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in kit["environment.yml"].decode()


def test_the_built_zip_holds_the_same_files(kit, tmp_path):
    target = make_kit.write_zip(kit, tmp_path / "kit.zip")
    with zipfile.ZipFile(target) as zf:
        names = {n.split("/", 1)[1] for n in zf.namelist()}
    assert names == set(kit)


def test_with_a_site_url_the_explorer_sentence_links_to_the_chapters_page():
    book = make_student.load_book(ROOT)
    book.site_url = "https://example.org/nn-book"
    path = ROOT / "chapters" / "07-gradient-descent.ipynb"
    copy = make_student.student_copy(nbformat.read(path, as_version=4), book)
    text = "\n".join(c.source for c in copy.cells if c.cell_type == "markdown")
    assert ("On [this chapter's web page](https://example.org/nn-book/chapters/"
            "07-gradient-descent.html), an explorer") in text
