"""The rendered HTML of both editions: Quarto's log, sidebar, images, links,
solutions, student notebooks, search index. Each check also runs on a copy with
a planted defect (the ``test_planted_*`` tests), to show that it can fail."""

import json
import re

import pytest
import yaml

import html_checks as hc
import site_harness as sh

EDITION_NAMES = list(sh.EDITIONS)


def none(problems, where=""):
    """Fail with every problem listed, one a line."""
    assert not problems, f"{where}\n  " + "\n  ".join(problems)


@pytest.fixture(params=EDITION_NAMES)
def edition(request, editions):
    return editions[request.param]


def notebook_pages(ed):
    return [p for p in ed.pages if p.source.endswith(".ipynb")]


def numbered_chapters(ed):
    return [p for p in notebook_pages(ed) if hc.NUMBERED.match(p.source.split("/")[-1])]


# --------------------------------------------------------------------------- Quarto's log

def test_quarto_prints_no_warning_or_error(edition):
    assert "Output created" in edition.log, edition.log[-2000:]
    none(hc.log_problems(edition.log))


def test_planted_quarto_warning_is_caught():
    assert hc.log_problems("WARN: chapters/01-x.html: Unable to resolve crossref @sec-x\n")
    assert hc.log_problems("ERROR: something broke")
    known = next(iter(hc.KNOWN_QUARTO_MESSAGES))
    none(hc.log_problems(f"{known}\nOutput created: _book/index.html"))


# --------------------------------------------------------------------------- pages and sidebar

def headings(ed):
    return {p.html: hc.page_heading(ed.html(p)) for p in ed.pages}


def test_every_chapter_is_a_page_in_the_sidebar_in_order(edition):
    assert len(numbered_chapters(edition)) >= 8
    none(hc.unlisted_chapters(edition.src, edition.pages))
    for p in edition.pages:
        assert (edition.out / p.html).is_file(), p.html
    heads = headings(edition)
    for p in edition.pages:          # every page's sidebar, not only the first one
        entries = hc.sidebar(edition.html(p), p.html)
        none(hc.sidebar_problems(entries, edition.pages, heads), p.html)


def test_planted_sidebar_defects_are_caught(editions):
    ed = editions["default"]
    heads = headings(ed)
    entries = hc.sidebar(ed.html(ed.pages[0]), ed.pages[0].html)
    chapters = [i for i, e in enumerate(entries) if hc.NUMBERED.match(e[0].split("/")[-1])]
    swapped = list(entries)
    a, b = chapters[0], chapters[1]
    swapped[a], swapped[b] = swapped[b], swapped[a]
    assert hc.sidebar_problems(swapped, ed.pages, heads)
    renamed = list(entries)
    renamed[a] = (entries[a][0], entries[a][1], "Some other title")
    assert hc.sidebar_problems(renamed, ed.pages, heads)
    missing = [e for i, e in enumerate(entries) if i != b]
    assert hc.sidebar_problems(missing, ed.pages, heads)
    assert hc.unlisted_chapters(ed.src, [p for p in ed.pages if p != numbered_chapters(ed)[-1]])


# --------------------------------------------------------------------------- images

def test_every_image_has_alt_text_that_is_not_the_caption(edition):
    total, problems = 0, []
    for path in edition.html_files():
        n, found = hc.image_problems(path.read_text(encoding="utf-8"))
        total += n
        problems += [f"{path.relative_to(edition.out)}: {f}" for f in found]
    sh.STATS[f"images {edition.name}"] = f"{total} checked in {len(edition.html_files())} HTML files"
    assert total >= 20
    none(problems)


def first_figure_page(ed):
    for p in numbered_chapters(ed):
        html = ed.html(p)
        if re.search(r"<figure[^>]*>.*?<img", html, re.S):
            return html
    raise AssertionError("no chapter has a figure")


def test_planted_alt_text_defects_are_caught(editions):
    html = first_figure_page(editions["default"])
    stripped = re.sub(r'(<img [^>]*?)alt="[^"]*"', r'\1alt=""', html, count=1)
    assert hc.image_problems(stripped)[1]
    doc = hc.BeautifulSoup(html, "html.parser")      # a private copy, modified below
    fig = next(f for f in doc.find_all("figure") if f.find("img") and f.find("figcaption"))
    caption = re.sub(r"^Figure\s*[\dA-Z.]+:\s*", "", hc.squash(fig.figcaption.get_text()))
    fig.img["alt"] = caption
    assert hc.image_problems(str(doc))[1]


# --------------------------------------------------------------------------- links

def test_cross_references_links_and_anchors_resolve(edition):
    problems = []
    for path in edition.html_files():
        rel = str(path.relative_to(edition.out))
        problems += [f"{rel}: {p}" for p in hc.link_problems(path.read_text(encoding="utf-8"), rel, edition.out)]
    none(problems)


def test_planted_broken_links_are_caught(editions):
    ed = editions["default"]
    page = numbered_chapters(ed)[0]
    html = ed.html(page)
    body = "</body>"
    for planted in ('<a href="#no-such-anchor">x</a>', '<a href="no-such-page.html">x</a>',
                    f'<a href="../{ed.pages[0].html}#no-such-id">x</a>', "<p><strong>?@fig-missing</strong></p>"):
        assert hc.link_problems(html.replace(body, planted + body), page.html, ed.out), planted


# --------------------------------------------------------------------------- solutions

def all_solutions(ed):
    return {p.html: hc.solution_cells(ed.src / p.source) for p in notebook_pages(ed)}


def test_default_edition_shows_no_solution_and_instructors_edition_all(editions):
    total = 0
    for name, shown in (("default", False), ("solutions", True)):
        ed = editions[name]
        for page, sols in all_solutions(ed).items():
            total += len(sols) if shown else 0
            none(hc.solution_problems(ed.html(page), sols, shown), (name, page))
    assert total >= 8, "every chapter has exercises with solutions"


def test_instructors_edition_says_so_and_default_does_not(editions):
    for name, instructors in (("default", False), ("solutions", True)):
        ed = editions[name]
        for p in ed.pages:
            none(hc.edition_title_problems(ed.html(p), instructors), f"{name}: {p.html}")
    config = yaml.safe_load((editions["solutions"].src / "_quarto-solutions.yml").read_text())
    assert "with solutions" in config["book"]["title"]


def test_planted_edition_title_defects_are_caught(editions):
    page = editions["default"].pages[1]
    assert hc.edition_title_problems(editions["default"].html(page), instructors=True)
    assert hc.edition_title_problems(editions["solutions"].html(page), instructors=False)


def test_planted_solution_leak_is_caught(editions):
    ed = editions["default"]
    page, sols = next((p, s) for p, s in all_solutions(ed).items() if s)
    leaked = ed.html(page).replace("</body>", f"<pre><code>{sols[0]}</code></pre></body>")
    assert hc.solution_problems(leaked, sols, shown=False)
    sol_ed = editions["solutions"]
    assert hc.solution_problems(ed.html(page), sols, shown=True)   # the default page lacks them
    none(hc.solution_problems(sol_ed.html(page), sols, shown=True))


# --------------------------------------------------------------------------- notebooks

def test_each_chapter_links_its_published_student_notebook(edition):
    sols = all_solutions(edition)
    for page in numbered_chapters(edition):
        links = hc.student_links(edition.html(page), page.html)
        want = f"_student/chapters/{page.source.split('/')[-1]}"
        assert want in links, f"{page.html} does not link {want}"
        none(hc.student_notebook_problems(edition.out / want, sols[page.html]))


def test_student_notebook_link_cell_is_near_the_top(editions):
    ed = editions["default"]
    for page in numbered_chapters(ed):
        nb = hc.nbformat.read(ed.src / page.source, as_version=4)
        tagged = [i for i, c in enumerate(nb.cells) if "student-notebook-link" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{page.source}: one markdown cell tagged student-notebook-link"
        cell = nb.cells[tagged[0]]
        assert cell.cell_type == "markdown" and tagged[0] <= 4, page.source
        assert f"_student/chapters/{page.source.split('/')[-1]}" in cell.source, page.source


def test_default_edition_never_links_or_publishes_a_full_notebook(editions):
    ed = editions["default"]
    none(hc.published_full_notebooks(ed.out))
    problems = []
    for path in ed.html_files():
        problems += hc.full_notebook_problems(path.read_text(encoding="utf-8"), str(path.relative_to(ed.out)))
    none(problems)
    config = yaml.safe_load((ed.src / "_quarto.yml").read_text())
    assert "source" not in (config["book"].get("repo-actions") or []), \
        "the source action links the full chapter notebooks"
    assert "nn-course-book/neural-networks" not in config["book"].get("repo-url", ""), \
        "placeholder repository URL"


def test_planted_full_notebook_defects_are_caught(editions, tmp_path):
    ed = editions["default"]
    page = numbered_chapters(ed)[0]
    name = page.source.split("/")[-1]
    html = ed.html(page)
    for planted in (f'<a href="{name}">Download notebook</a>',
                    f'<a href="https://github.com/someone/book/blob/main/{page.source}">Source</a>',
                    '<div class="quarto-alternate-notebooks"></div>'):
        assert hc.full_notebook_problems(html.replace("</body>", planted + "</body>"), page.html), planted
    full = tmp_path / "book"
    (full / "chapters").mkdir(parents=True)
    (full / page.source).write_text("{}")
    assert hc.published_full_notebooks(full)
    sols = hc.solution_cells(ed.src / page.source)
    assert hc.student_notebook_problems(ed.src / page.source, sols)       # the full notebook
    (tmp_path / "broken.ipynb").write_text('{"cells": 3}')
    assert hc.student_notebook_problems(tmp_path / "broken.ipynb", [])
    assert hc.student_notebook_problems(tmp_path / "missing.ipynb", [])


# --------------------------------------------------------------------------- search index

def test_search_index_covers_every_page(edition):
    none(hc.search_problems((edition.out / "search.json").read_text(), edition.pages))


def test_planted_search_gap_is_caught(editions):
    ed = editions["default"]
    entries = json.loads((ed.out / "search.json").read_text())
    gone = numbered_chapters(ed)[-1].html
    assert hc.search_problems(json.dumps([e for e in entries if not e["href"].startswith(gone)]), ed.pages)


# --------------------------------------------------------------------------- code folding

def test_figure_code_folds_closed_under_show_the_code(edition):
    total = 0
    for page in notebook_pages(edition):
        expected = hc.folded_cells(edition.src / page.source)
        total += expected
        none(hc.fold_problems(edition.html(page), expected), page.html)
    assert total >= 8, "figure-only cells of the chapters fold"


def test_planted_fold_defects_are_caught(editions):
    ed = editions["default"]
    page = next(p for p in numbered_chapters(ed) if hc.folded_cells(ed.src / p.source))
    html, n = ed.html(page), hc.folded_cells(ed.src / page.source)
    assert hc.fold_problems(html, n + 1)                                        # a fold missing
    assert hc.fold_problems(html.replace('<details class="code-fold">', '<details class="code-fold" open>', 1), n)
    assert hc.fold_problems(html.replace("Show the code", "Code", 1), n)
