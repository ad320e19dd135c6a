"""Checks of a rendered edition's HTML, as pure functions that return a list of
problems (empty = fine). ``test_rendered_html.py`` runs each on the real
render and on a copy with a planted defect, to show that it can fail."""

from __future__ import annotations

import json
import posixpath
import re
from functools import lru_cache
from pathlib import Path

import nbformat
from bs4 import BeautifulSoup

# Quarto messages that cannot be avoided, matched exactly (substring of the line).
KNOWN_QUARTO_MESSAGES = {
    # Quarto 1.7 computes OJS line numbers for .qmd sources only and prints this
    # once per ```{ojs} block of an .ipynb chapter; the blocks work (see the notes).
    "WARN: OJS block count mismatch. Line number reporting is likely to be wrong",
}
SOLUTION_OPEN = '::: {.content-visible when-profile="solutions"}'
NUMBERED = re.compile(r"^(\d+)-")


@lru_cache(maxsize=32)
def soup(html: str) -> BeautifulSoup:
    """The parsed page (cached: the same pages are read by many checks; do not modify it)."""
    return BeautifulSoup(html, "html.parser")


def squash(text: str) -> str:
    return " ".join(text.replace("\xa0", " ").split())


# --------------------------------------------------------------------------- Quarto's log

def log_problems(log: str) -> list[str]:
    """WARN/ERROR lines of Quarto's output that are not known and explained."""
    bad = []
    for line in log.splitlines():
        text = line.strip()
        if re.match(r"^(WARN|WARNING|ERROR)\b", text) and not any(k in text for k in KNOWN_QUARTO_MESSAGES):
            bad.append(text)
    return bad


# --------------------------------------------------------------------------- sidebar

def page_heading(html: str) -> tuple[str | None, str]:
    """(chapter number or None, title) of a page's h1."""
    h1 = soup(html).find("h1", class_="title")
    if h1 is None:
        return None, ""
    number = h1.find(class_="chapter-number")
    title = h1.find(class_="chapter-title")
    return (squash(number.get_text()) if number else None,
            squash((title or h1).get_text()))


def sidebar(html: str, page_path: str) -> list[tuple[str, str | None, str]]:
    """(target path, chapter number, title) of each sidebar link, in order."""
    entries = []
    base = posixpath.dirname(page_path)
    for a in soup(html).select("#quarto-sidebar a.sidebar-link"):
        href = a.get("href", "")
        if not href or href.startswith(("http:", "https:")):
            continue
        target = posixpath.normpath(posixpath.join(base, href.split("#")[0]))
        number = a.find(class_="chapter-number")
        title = a.find(class_="chapter-title")
        entries.append((target, squash(number.get_text()) if number else None,
                        squash((title or a).get_text())))
    return entries


def sidebar_problems(entries, pages, headings) -> list[str]:
    """The sidebar lists every page in reading order, each numbered chapter
    ``NN-*`` with number NN, and each with its page's own title.

    ``pages``: the book's pages in order (``BookPage``); ``headings``: html path ->
    (number, title) of that page's h1."""
    problems = []
    kinds = {p.html: p.kind for p in pages}     # the preface's heading is the book's title
    order = [e[0] for e in entries]
    wanted = [p.html for p in pages]
    if [t for t in order if t in wanted] != wanted:
        problems.append(f"sidebar order {order} is not the reading order {wanted}")
    for target, number, title in entries:
        if target not in headings:
            continue
        stem = Path(target).name
        m = NUMBERED.match(stem)
        if m and number != str(int(m.group(1))):
            problems.append(f"{target} is numbered {number} in the sidebar, not {int(m.group(1))}")
        h_number, h_title = headings[target]
        if m and h_number != str(int(m.group(1))):
            problems.append(f"{target}: the page's heading is numbered {h_number}")
        if kinds.get(target) != "page" and not (title and h_title.endswith(title)):
            problems.append(f"{target}: sidebar says {title!r}, the page {h_title!r}")
    return problems


def unlisted_chapters(src: Path, pages) -> list[str]:
    """Chapter notebooks in ``chapters/`` that are not pages of the book."""
    listed = {p.source for p in pages}
    return [f"chapters/{p.name}" for p in sorted((src / "chapters").glob("*.ipynb"))
            if not p.name.startswith("_") and f"chapters/{p.name}" not in listed]


# --------------------------------------------------------------------------- images

def image_problems(html: str) -> tuple[int, list[str]]:
    """(number of images, problems): every <img> has alt text, not its caption repeated."""
    problems = []
    imgs = soup(html).find_all("img")
    for img in imgs:
        alt = squash(img.get("alt") or "")
        src = img.get("src", "?")
        if not alt:
            problems.append(f"{src}: no alt text")
            continue
        figure = img.find_parent("figure")
        caption = figure.find("figcaption") if figure else None
        if caption is not None:
            text = re.sub(r"^(Figure|Fig\.)\s*[\dA-Z.]+:\s*", "", squash(caption.get_text()))
            if squash(alt).lower() == text.lower():
                problems.append(f"{src}: the alt text repeats the caption")
    return len(imgs), problems


# --------------------------------------------------------------------------- links

@lru_cache(maxsize=None)
def _ids(path: Path) -> frozenset[str]:
    return frozenset(t["id"] for t in soup(path.read_text(encoding="utf-8")).find_all(id=True))


def link_problems(html: str, page: str, out: Path) -> list[str]:
    """Unresolved cross-references (``?@...``), and internal links or anchors
    that point at no file or no id. ``page`` is the path relative to ``out``."""
    problems = []
    doc = soup(html)
    for s in doc.find_all(string=re.compile(r"\?@[\w-]+")):
        problems.append(f"unresolved cross-reference: {squash(str(s))[:80]}")
    own_ids = {t["id"] for t in doc.find_all(id=True)}
    base = posixpath.dirname(page)
    for tag in doc.find_all(["a", "img", "link", "script"]):
        url = tag.get("href") or tag.get("src")
        if not url or re.match(r"^[a-z][a-z0-9+.-]*:", url, re.I) or url.startswith("//"):
            continue
        path, _, anchor = url.partition("#")
        path = path.split("?")[0]
        if not path:
            if anchor and anchor not in own_ids:
                problems.append(f"#{anchor}: no such id on the page")
            continue
        target = out / posixpath.normpath(posixpath.join(base, path))
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            problems.append(f"{url}: no such file")
        elif anchor and target.suffix == ".html" and anchor not in _ids(target):
            problems.append(f"{url}: no id {anchor!r} in {target.name}")
    return problems


# --------------------------------------------------------------------------- solutions

def code_lines(source: str) -> str:
    """A code cell's source without cell options, squashed."""
    return squash("\n".join(ln for ln in source.splitlines() if not ln.startswith("#|")))


def solution_cells(notebook: Path) -> list[str]:
    """Squashed sources of the code cells tagged ``solution``."""
    nb = nbformat.read(notebook, as_version=4)
    return [code_lines(c.source) for c in nb.cells
            if c.cell_type == "code" and "solution" in c.metadata.get("tags", []) and code_lines(c.source)]


def page_code(html: str) -> str:
    """All code shown on a page, squashed into one string."""
    return " \n ".join(squash(pre.get_text()) for pre in soup(html).find_all("pre"))


def solution_problems(html: str, solutions: list[str], shown: bool) -> list[str]:
    """With ``shown``: every solution is on the page; without: none is."""
    code = page_code(html)
    problems = []
    for sol in solutions:
        if (sol in code) != shown:
            problems.append(("missing" if shown else "published") + f" solution: {sol[:70]}")
    return problems


# --------------------------------------------------------------------------- notebooks

def student_links(html: str, page: str) -> list[str]:
    """Paths (relative to the edition) of the student notebooks a page links to."""
    base = posixpath.dirname(page)
    found = []
    for a in soup(html).find_all("a", href=True):
        href = a["href"].split("#")[0]
        if "_student/" in href and href.endswith(".ipynb") and not re.match(r"^[a-z]+:", href):
            found.append(posixpath.normpath(posixpath.join(base, href)))
    return found


def full_notebook_problems(html: str, page: str) -> list[str]:
    """Links to a chapter notebook that is not a student copy (a full notebook
    holds the solutions): plain links, repository source links, Quarto's
    notebook links."""
    problems = []
    doc = soup(html)
    for a in doc.find_all("a", href=True):
        href = a["href"].split("#")[0].split("?")[0]
        if href.endswith(".ipynb") and "_student/" not in href:
            problems.append(f"{page} links a full notebook: {a['href']}")
    if doc.select(".quarto-alternate-notebooks, .quarto-notebook-link"):
        problems.append(f"{page} has Quarto notebook links")
    return problems


def published_full_notebooks(out: Path) -> list[str]:
    return [str(p.relative_to(out)) for p in out.rglob("*.ipynb") if "_student" not in p.parts]


def student_notebook_problems(path: Path, solutions: list[str]) -> list[str]:
    """A published student notebook is valid nbformat and holds no solution."""
    if not path.is_file():
        return [f"{path.name}: not published"]
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:     # noqa: BLE001 - any reading/validation error is the finding
        return [f"{path.name}: not a valid notebook ({type(exc).__name__}: {str(exc)[:200]})"]
    problems = []
    for cell in nb.cells:
        if "solution" in cell.metadata.get("tags", []):
            problems.append(f"{path.name}: a cell tagged solution")
        if cell.cell_type == "markdown" and SOLUTION_OPEN in cell.source:
            problems.append(f"{path.name}: a solutions-only div")
    code = " \n ".join(code_lines(c.source) for c in nb.cells if c.cell_type == "code")
    problems += [f"{path.name}: holds the solution {s[:60]}" for s in solutions if s in code]
    return problems


# --------------------------------------------------------------------------- search

def search_problems(search_json: str, pages) -> list[str]:
    """Every page of the book has entries in Quarto's search index."""
    hrefs = {entry["href"].split("#")[0] for entry in json.loads(search_json)}
    return [f"{p.html} is not in search.json" for p in pages if p.html not in hrefs]


# --------------------------------------------------------------------------- code folding

def folded_cells(notebook: Path) -> int:
    """Code cells that ask to be folded (``#| code-fold: true``)."""
    nb = nbformat.read(notebook, as_version=4)
    return sum(1 for c in nb.cells if c.cell_type == "code"
               and re.search(r"^#\|\s*code-fold:\s*true\s*$", c.source, re.M))


def fold_problems(html: str, expected: int) -> list[str]:
    """The page folds exactly the cells that ask for it, closed, under "Show the code"."""
    folds = soup(html).select("details.code-fold")
    problems = []
    if len(folds) != expected:
        problems.append(f"{len(folds)} folded code blocks, {expected} cells ask for folding")
    for d in folds:
        summary = squash(d.summary.get_text()) if d.summary else ""
        if summary != "Show the code":
            problems.append(f"a fold says {summary!r}, not 'Show the code'")
        if d.has_attr("open"):
            problems.append("a fold is open by default")
    return problems


# --------------------------------------------------------------------------- edition title

def edition_title_problems(html: str, instructors: bool) -> list[str]:
    """The instructors' edition says so in every page's title; the default edition never does."""
    doc = soup(html)
    title = squash(doc.title.get_text()) if doc.title else ""
    if ("with solutions" in title) != instructors:
        return [f"page title {title!r} " + ("does not say" if instructors else "says") + " 'with solutions'"]
    return []
