"""The Quarto book configuration, checked without Quarto (it is not installable here)."""

import re

import pytest
import yaml

from conftest import APPENDIX_NOTEBOOKS, CHAPTERS, NUMBERED_CHAPTERS, read_notebook


@pytest.fixture(scope="module")
def config(root):
    return yaml.safe_load((root / "_quarto.yml").read_text())


def book_texts(root):
    """(name, markdown text, code cells) of every page of the book."""
    pages = []
    for qmd in ("index.qmd", "references.qmd"):
        pages.append((qmd, (root / qmd).read_text(), []))
    for qmd in sorted((root / "appendices").glob("*.qmd")):
        pages.append((qmd.name, qmd.read_text(), []))
    for path in CHAPTERS:
        nb = read_notebook(path)
        md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        pages.append((path.name, md, [c for c in nb.cells if c.cell_type == "code"]))
    return pages


def test_config_is_a_book_with_the_required_settings(config):
    assert config["project"]["type"] == "book"
    html = config["format"]["html"]
    assert set(html["theme"]) == {"light", "dark"}
    assert html["code-copy"] is True
    assert config["bibliography"] == "references.bib"
    assert config["book"]["title"] and config["book"]["author"]
    # no repository link unless a real one is configured (README), never the full notebooks' source
    assert "nn-course-book/neural-networks" not in config["book"].get("repo-url", "")
    assert "source" not in config["book"].get("repo-actions", [])
    assert html["code-summary"] == "Show the code" and html["code-fold"] is False
    assert "freeze" in config["execute"]


def test_every_chapter_is_listed_in_order_and_exists(root, config):
    listed = config["book"]["chapters"]
    assert listed[0] == "index.qmd" and listed[-1] == "references.qmd"
    assert listed[1:-1] == [f"chapters/{p.name}" for p in NUMBERED_CHAPTERS]
    appendices = config["book"]["appendices"]
    assert "appendices/notation.qmd" in appendices
    assert [a for a in appendices if a.endswith(".ipynb")] == [
        f"chapters/{p.name}" for p in APPENDIX_NOTEBOOKS]
    for page in listed + appendices:
        assert (root / page).exists(), page


def test_solutions_profile_exists_and_says_so(root):
    profile = yaml.safe_load((root / "_quarto-solutions.yml").read_text())
    assert "with solutions" in profile["book"]["title"]
    assert profile["project"]["output-dir"] != "_book"


def test_every_citation_is_in_the_bibliography(root):
    keys = set(re.findall(r"^@\w+\{([\w-]+),", (root / "references.bib").read_text(), flags=re.M))
    cited = set()
    for _, text, _ in book_texts(root):
        cited |= set(re.findall(r"@([a-z]+\d{4})\b", text))
    assert cited, "the book cites its sources"
    assert cited <= keys, cited - keys
    assert {"glassner2021", "mcculloch1943", "fitch1944", "hechtnielsen1990", "hornik1990",
            "james2023"} <= cited


def test_every_cross_reference_points_at_a_label(root):
    labels, refs, main_figures = set(), set(), set()
    for _, text, code in book_texts(root):
        labels |= set(re.findall(r"\{#((?:sec|exr|eq)-[\w-]+)\}", text))
        labels |= set(re.findall(r"\{#((?:sec|exr|eq)-[\w-]+)[ }]", text))
        for cell in code:
            found = set(re.findall(r"^#\| label: (fig-[\w-]+)$", cell.source, flags=re.M))
            labels |= found
            if "solution" not in cell.metadata.get("tags", []):
                main_figures |= found
        refs |= set(re.findall(r"@((?:fig|sec|exr|eq)-[\w-]*\w)", text))
    missing = refs - labels
    assert not missing, missing
    unreferenced_figures = main_figures - refs     # solution figures may stand alone
    assert not unreferenced_figures, unreferenced_figures


def test_every_figure_cell_has_caption_and_alt_text(root):
    for name, _, code in book_texts(root):
        for cell in code:
            if "plt.show()" in cell.source:
                assert "#| fig-cap: " in cell.source and "#| fig-alt: " in cell.source, \
                    f"{name}: {cell.source[:60]}"


def test_chapters_start_with_goals_and_end_with_a_summary(root):
    for path in NUMBERED_CHAPTERS:
        md = [c.source for c in read_notebook(path).cells if c.cell_type == "markdown"]
        assert any("## You will learn" in s for s in md[:2]), path.name
        assert md[-1].startswith("## Summary") and "@exr-" in md[-1], path.name
