"""Write the student copies of the chapters: no solutions, no outputs, plain Markdown.

    python -m nnbook.student chapters _student/chapters

**Solutions.** A solution is a code cell tagged ``solution``, or everything between a
markdown cell that opens ``::: {.content-visible when-profile="solutions"}`` and the
markdown cell whose ``:::`` closes it (text may come before that line). Those cells
are dropped, and every output and execution count is cleared.

**Plain Markdown for JupyterLab.** The instructors' notebooks are Quarto sources; the
copies are made to read well in JupyterLab, which knows no Quarto markup:

* an exercise div (``::: {#exr-name}`` with its ``## Title``) becomes the heading
  "Exercise 7.1: Title", numbered as on the site (Quarto numbers exercises, figures
  and equations per chapter; chapters count in the order of ``_quarto.yml``,
  appendices are lettered);
* a callout becomes a block quote that starts with its title in bold;
* ``@fig-``, ``@sec-``, ``@eq-`` and ``@exr-`` references become "Figure 7.1",
  "Chapter 6", "Section 6.2", "Equation 6.2", "Exercise 7.1"; numbered equations
  get their number as a ``\\tag``; section headings get their numbers;
* citations ``[@key]`` and ``@key`` become "(Author Year)" and "Author (Year)" from
  ``references.bib``;
* ``{#...}`` and other attributes, leftover ``:::`` fences and Quarto shortcodes
  (``{{< include ... >}}``, the interactive figures of the web pages) go;
* links to ``.qmd`` pages of the site lose their target (the text stays);
* the cell tagged ``student-notebook-link`` (the site's pointer to these copies)
  becomes a line saying "This is your copy of chapter N".

**Site address (one setting).** When ``book: site-url:`` in ``_quarto.yml`` holds the
address where the book is published (e.g. ``https://example.org/nn-book``), references
to other chapters, citations, shortcodes and ``.qmd`` links point to the published
pages (``<site-url>/chapters/07-gradient-descent.html#fig-gd-paths``). Without it,
a reference to another chapter links to that chapter's student notebook beside this
one, and other references are plain text. References within a chapter stay plain text.
"""

from __future__ import annotations

import functools
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from nnbook import ROOT
from nnbook.cells import mark_exercise_cells

SOLUTION_OPEN = '::: {.content-visible when-profile="solutions"}'
LINK_TAG = "student-notebook-link"
CALLOUT_TITLES = {"note": "Note", "tip": "Tip", "warning": "Warning", "important": "Important",
                  "caution": "Caution"}
REF_KINDS = {"fig": "Figure", "eq": "Equation", "exr": "Exercise", "tbl": "Table", "sec": "Section"}


# --------------------------------------------------------------------------
# Solutions
# --------------------------------------------------------------------------

def _opens_solution(cell) -> bool:
    return cell.cell_type == "markdown" and cell.source.lstrip().startswith(SOLUTION_OPEN)


def _fence_balance(cell) -> int:
    """Divs a markdown cell opens (``::: {...}`` lines) minus those it closes (``:::``)."""
    if cell.cell_type != "markdown":
        return 0
    lines = [ln.strip() for ln in cell.source.splitlines()]
    return sum(ln.startswith(":::") and ln != ":::" for ln in lines) - lines.count(":::")


def without_solutions(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` without solution cells or outputs (markdown unchanged)."""
    out = nbformat.v4.new_notebook(metadata=nb.metadata)
    depth = 0          # open divs since the solution div opened; 0 = outside a solution
    for cell in nb.cells:
        if _opens_solution(cell):
            if depth:
                raise ValueError("a solution div opens inside another one: close it with ':::'")
            depth = _fence_balance(cell)
            continue
        if depth:
            depth += _fence_balance(cell)
            continue
        if "solution" in cell.get("metadata", {}).get("tags", []):
            continue
        cell = nbformat.from_dict(dict(cell))
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        out.cells.append(cell)
    if depth:
        raise ValueError("a solution div is never closed: add a markdown cell holding ':::'")
    return out


# --------------------------------------------------------------------------
# The book: numbers of chapters, sections, figures, equations, exercises
# --------------------------------------------------------------------------

@dataclass
class Target:
    """What a cross-reference label points to."""
    text: str              # "Figure 7.1", "Chapter 6", ...
    doc: str               # the document's path relative to the book, e.g. "chapters/07-x.ipynb"


@dataclass
class Document:
    path: str              # relative to the book's folder
    number: str            # "7", "B" or "" (unnumbered)
    appendix: bool
    title: str = ""
    notebook: bool = False

    @property
    def student_copy(self) -> str:
        """File name of this document's student copy ("" if it has none): every notebook,
        and every Markdown appendix (the notation page), made a notebook."""
        return Path(self.path).stem + ".ipynb" if self.notebook or self.appendix else ""


@dataclass
class Book:
    """Numbering of the whole book, as Quarto numbers it, and the bibliography."""
    documents: dict = field(default_factory=dict)      # path -> Document
    labels: dict = field(default_factory=dict)         # label -> Target
    bib: dict = field(default_factory=dict)            # key -> (authors text, year)
    site_url: str = ""

    def document_of(self, nb) -> Document | None:
        """The book's document that ``nb`` is (found by its chapter label or title)."""
        first = _first_heading(nb)
        if first:
            label = _heading_label(first)
            for doc in self.documents.values():
                if label and self.labels.get(label, Target("", "")).doc == doc.path:
                    return doc
                if doc.title and doc.title == _clean_heading(first):
                    return doc
        return None

    def page_url(self, path: str, anchor: str = "") -> str:
        html = re.sub(r"\.(ipynb|qmd)$", ".html", path)
        return f"{self.site_url.rstrip('/')}/{html}" + (f"#{anchor}" if anchor else "")


def _first_heading(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line
    return ""


_ATTR = re.compile(r"\s*\{([^{}]*)\}\s*$")


def _heading_label(line: str) -> str:
    m = _ATTR.search(line)
    if m:
        found = re.search(r"#([\w-]+)", m.group(1))
        return found.group(1) if found else ""
    return ""


def _clean_heading(line: str) -> str:
    return _ATTR.sub("", line.lstrip("#")).strip()


def _unnumbered(line: str) -> bool:
    m = _ATTR.search(line)
    return bool(m) and (".unnumbered" in m.group(1) or re.search(r"(^|\s)-(\s|$)", m.group(1)))


def _markdown_and_labels(doc_path: Path):
    """(kind, text) pieces of a document in order: ("md", markdown) or ("fig", label)."""
    if doc_path.suffix == ".ipynb":
        nb = without_solutions(nbformat.read(doc_path, as_version=4))
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                yield "md", cell.source
            else:
                for label in re.findall(r"^#\|\s*label:\s*(fig-[\w-]+)", cell.source, re.M):
                    yield "fig", label
    else:
        text = doc_path.read_text()
        text = re.sub(r'^::: \{\.content-visible when-profile="solutions"\}.*?^:::\s*$', "",
                      text, flags=re.S | re.M)
        # code chunks: their figure labels; everything else is markdown
        pos = 0
        for m in re.finditer(r"^```\{[^}]*\}.*?^```\s*$", text, re.S | re.M):
            yield "md", text[pos:m.start()]
            for label in re.findall(r"^#\|\s*label:\s*(fig-[\w-]+)", m.group(0), re.M):
                yield "fig", label
            pos = m.end()
        yield "md", text[pos:]


def _number_document(book: Book, doc: Document, root: Path) -> None:
    counters = {"fig": 0, "eq": 0, "exr": 0, "tbl": 0}
    sections = [0, 0, 0, 0, 0, 0]
    n = doc.number

    def add(label, kind):
        counters[kind] += 1
        book.labels[label] = Target(f"{REF_KINDS[kind]} {n}.{counters[kind]}" if n
                                    else f"{REF_KINDS[kind]} {counters[kind]}", doc.path)

    for kind, text in _markdown_and_labels(root / doc.path):
        if kind == "fig":
            add(text, "fig")
            continue
        depth = 0
        in_code = False
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith("```"):
                in_code = not in_code
            if in_code:
                continue
            if stripped.startswith(":::"):
                label = re.match(r":::+\s*\{#(exr-[\w-]+)", stripped)
                if label:
                    add(label.group(1), "exr")
                depth += -1 if stripped.strip(":") == "" else 1
                depth = max(depth, 0)
                continue
            for label in re.findall(r"\{#(eq-[\w-]+)\}", line):
                add(label, "eq")
            for label in re.findall(r"\{#(fig-[\w-]+)[^}]*\}", line):
                add(label, "fig")
            for label in re.findall(r"\{#(tbl-[\w-]+)[^}]*\}", line):
                add(label, "tbl")
            heading = re.match(r"^(#{1,6}) ", line)
            if heading and depth == 0:
                level = len(heading.group(1))
                label = _heading_label(line)
                if level == 1:
                    doc.title = _clean_heading(line)
                    text_ = (("Appendix " if doc.appendix else "Chapter ") + n) if n else doc.title
                    if label:
                        book.labels[label] = Target(text_, doc.path)
                    continue
                if _unnumbered(line) or not n:
                    number = ""
                else:
                    sections[level - 1] += 1
                    for k in range(level, len(sections)):
                        sections[k] = 0
                    number = ".".join([n] + [str(s) for s in sections[1:level]])
                if label:
                    book.labels[label] = Target(f"Section {number}" if number
                                                else _clean_heading(line), doc.path)


def _read_bib(path: Path) -> dict:
    """{key: (authors as cited, year)} from a BibTeX file (the fields this book uses)."""
    if not path.exists():
        return {}
    text = path.read_text()
    found = {}
    for m in re.finditer(r"@\w+\s*\{\s*([^,\s]+)\s*,(.*?)\n\}", text, re.S):
        key, body = m.group(1), m.group(2)
        fields = {f.group(1).lower(): f.group(2) for f in
                  re.finditer(r"(\w+)\s*=\s*\{((?:[^{}]|\{[^{}]*\})*)\}", body)}
        names = [a.strip() for a in re.split(r"\s+and\s+", fields.get("author", "")) if a.strip()]
        lasts = [re.sub(r"[{}]", "", a.split(",")[0].strip() if "," in a else a.split()[-1])
                 for a in names]
        if len(lasts) == 1:
            authors = lasts[0]
        elif len(lasts) == 2:
            authors = f"{lasts[0]} and {lasts[1]}"
        elif len(lasts) == 3:
            authors = f"{lasts[0]}, {lasts[1]}, and {lasts[2]}"
        else:
            authors = f"{lasts[0]} et al." if lasts else key
        year = fields.get("year") or fields.get("date", "")[:4] or "n.d."
        found[key] = (authors, year)
    return found


def load_book(root: Path = ROOT) -> Book:
    """The numbering of the book in ``root`` (from ``_quarto.yml``), and its bibliography."""
    book = Book()
    config = root / "_quarto.yml"
    if not config.exists():
        return book
    import yaml

    meta = yaml.safe_load(config.read_text()) or {}
    spec = meta.get("book", {})
    book.site_url = str(spec.get("site-url") or "")
    chapter_number, letters = 0, iter("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    for part, appendix in ((spec.get("chapters") or [], False), (spec.get("appendices") or [], True)):
        for entry in part:
            paths = entry.get("chapters", []) if isinstance(entry, dict) else [entry]
            for path in paths:
                source = root / path
                if not source.exists():
                    continue
                first = next((t for k, t in _markdown_and_labels(source) if k == "md"
                              and re.search(r"^# ", t, re.M)), "")
                heading = re.search(r"^# .*$", first, re.M)
                numbered = not (heading and _unnumbered(heading.group(0)))
                if numbered and not appendix:
                    chapter_number += 1
                number = (next(letters) if appendix else str(chapter_number)) if numbered else ""
                doc = Document(path, number, appendix, notebook=path.endswith(".ipynb"))
                book.documents[path] = doc
                _number_document(book, doc, root)
    bibliography = meta.get("bibliography")
    if bibliography:
        book.bib = _read_bib(root / bibliography)
    return book


# --------------------------------------------------------------------------
# Quarto markup -> plain Markdown
# --------------------------------------------------------------------------

_REF = re.compile(r"(?<![\w@\\])(-?)@((fig|sec|eq|exr|tbl)-[\w-]*\w)")

EXPLORER_SENTENCE = r"On the book's web page, the explorer below"
"""How a chapter introduces an interactive figure of its web page (rewritten: a student
copy has no explorer below, and says where the page is)."""

STUDENT_WORDING = [
    (r"\s*The next cell hands it [^.]*\.", ""),                # the nh.to_page cell is gone
    (r"from the book's `scripts/` folder", "from the helper modules beside this notebook"),
    (r"the book's `scripts/` folder", "the helper modules beside this notebook"),
    (r"`scripts/(\w+\.py)`", r"`\1` (beside this notebook)"),
    (r"scripts/(\w+\.py)", r"\1"),
    (r"\s*\(the solution says[^)]*\)", ""),                     # students have no solution
]
"""(regex, replacement) for what the book says about its repository that is not so in the
student kit. ``tests/test_student_copies.py`` fails on any leftover."""


def _without_to_page(source: str) -> str:
    """``source`` without its top-level ``nh.to_page(...)`` statements."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    drop = set()
    for node in tree.body:
        call = node.value if isinstance(node, ast.Expr) else None
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr == "to_page"):
            drop.update(range(node.lineno, node.end_lineno + 1))
    if not drop:
        return source
    kept = [ln for k, ln in enumerate(source.split("\n"), 1) if k not in drop]
    return "\n".join(kept).strip("\n")
_CITE_BRACKET = re.compile(r"\[([^\[\]]*?-?@[\w:.-]+[^\[\]]*)\](?!\()")
_BARE_CITE = re.compile(r"(?<![\w@\\/.])(-?)@([A-Za-z][\w:.-]*\w)")


class _Converter:
    def __init__(self, book: Book, doc: Document | None):
        self.book, self.doc = book, doc
        self.path = doc.path if doc else ""
        self.number = doc.number if doc else ""
        self.sections = [0] * 6
        self.exercises = 0
        self.equations = 0

    # -- references -----------------------------------------------------------
    def _link(self, text: str, target_doc: str, anchor: str) -> str:
        if target_doc == self.path:
            return text
        if self.book.site_url:
            return f"[{text}]({self.book.page_url(target_doc, anchor)})"
        doc = self.book.documents.get(target_doc)
        if doc and doc.student_copy and self.doc and self.doc.student_copy:
            return f"[{text}]({doc.student_copy})"
        return text

    def ref(self, m: re.Match, plain: bool = False) -> str:
        suppress, label = m.group(1), m.group(2)
        target = self.book.labels.get(label)
        if target is None:
            name = label.split('-', 1)[1]
            return f"{REF_KINDS[m.group(3)].lower()} {name if plain else '*' + name + '*'}"
        text = target.text
        if suppress:
            text = text.split(" ", 1)[-1]
        return text if plain else self._link(text, target.doc, label)

    def _cite_one(self, key: str, suppress: bool, bracketed: bool) -> str | None:
        if key not in self.book.bib:
            return None
        authors, year = self.book.bib[key]
        text = year if suppress else (f"{authors} {year}" if bracketed else f"{authors} ({year})")
        if self.book.site_url:
            return f"[{text}]({self.book.site_url.rstrip('/')}/references.html#ref-{key})"
        return text

    def cite_bracket(self, m: re.Match) -> str:
        inner = m.group(1)
        ok = True

        def one(k):
            nonlocal ok
            key = k.group(2).rstrip(".:")
            tail = k.group(2)[len(key):]
            text = self._cite_one(key, bool(k.group(1)), True)
            if text is None:
                ok = False
                return k.group(0)
            return text + tail

        converted = _BARE_CITE.sub(one, inner)
        return f"({converted})" if ok else m.group(0)

    def cite_bare(self, m: re.Match) -> str:
        key = m.group(2).rstrip(".:")
        tail = m.group(2)[len(key):]
        text = self._cite_one(key, bool(m.group(1)), False)
        return m.group(0) if text is None else text + tail

    def inline(self, line: str) -> str:
        """Convert the markup of one line of text, leaving code spans alone."""
        parts = re.split(r"(`+[^`]*?`+)", line)
        return "".join(p if k % 2 else self._inline_text(p) for k, p in enumerate(parts))

    def _inline_text(self, line: str) -> str:
        line = _REF.sub(self.ref, line)
        line = _CITE_BRACKET.sub(self.cite_bracket, line)
        line = _BARE_CITE.sub(self.cite_bare, line)
        line = re.sub(r"\[([^\[\]]+)\]\(([^)\s]+\.qmd)(#[\w-]+)?\)", self.qmd_link, line)
        line = re.sub(r"\[([^\[\]]+)\]\{[^{}]*\}", r"\1", line)            # [text]{.class}
        line = re.sub(r"(!\[[^\]]*\]\([^)]*\))\{[^{}]*\}", r"\1", line)      # image attributes
        return line

    def qmd_link(self, m: re.Match) -> str:
        text, target, anchor = m.group(1), m.group(2), (m.group(3) or "")[1:]
        resolved = (Path(self.path).parent / target) if self.path else Path(target)
        parts = []
        for part in resolved.parts:
            if part == "..":
                parts = parts[:-1]
            elif part != ".":
                parts.append(part)
        if not self.book.site_url:
            return self._link(text, "/".join(parts), "")
        return f"[{text}]({self.book.page_url('/'.join(parts), anchor)})"

    def web_page(self) -> str:
        """Where this chapter's interactive figures are: a link when ``site-url`` is set."""
        if self.book.site_url and self.path:
            return f"[this chapter's web page]({self.book.page_url(self.path)})"
        return "this chapter's page of the book's web site"

    def shortcode(self, m: re.Match) -> str:
        if "include" in m.group(0) and "_explorers" in m.group(0) and not self.explained:
            return f"*An interactive figure on {self.web_page()} lets you try this out.*"
        return ""

    # -- blocks -----------------------------------------------------------------
    def markdown(self, source: str) -> str:
        self.explained = bool(re.search(EXPLORER_SENTENCE, source))
        return self._wording(self._markdown(source))

    def _wording(self, text: str) -> str:
        """What the book's text says about the repository and the web pages, said as it
        is for a student with the kit (see :data:`STUDENT_WORDING`)."""
        text = re.sub(EXPLORER_SENTENCE, f"On {self.web_page()}, an explorer", text)
        for pattern, replacement in STUDENT_WORDING:
            text = re.sub(pattern, replacement, text)
        return text

    def code(self, source: str) -> str:
        """A code cell as a student sees it: no Quarto cell options (``#| label``,
        ``#| code-fold``, ``#| fig-alt`` over several lines), the caption as a comment
        ("# Figure 7.1: ..."), references in comments and docstrings as text, and no
        ``nh.to_page(...)`` (it hands data to the web page; it prints nothing useful here)."""
        lines, options, k = source.split("\n"), {}, 0
        while k < len(lines) and lines[k].startswith("#|"):
            key = re.match(r"#\|\s*([\w-]+)\s*:\s*(.*)$", lines[k])
            value = [key.group(2)] if key else []
            k += 1
            while k < len(lines) and re.match(r"#\|\s{2,}\S|#\|\s*$", lines[k]):
                value.append(lines[k][2:].strip())
                k += 1
            if key:
                options[key.group(1)] = " ".join(v for v in value if v not in (">", ">-", "|"))
        body = "\n".join(lines[k:])
        caption = options.get("fig-cap", "").strip().strip("'\"")
        if caption:
            label = self.book.labels.get(options.get("label", ""))
            caption = "\n".join(textwrap.wrap(
                f"{label.text + ': ' if label else ''}{self._plain(caption)}", 88,
                initial_indent="# ", subsequent_indent="# ")) + "\n"
        body = _without_to_page(body)
        body = _REF.sub(lambda m: self.ref(m, plain=True), body)
        return (caption + body) if body.strip() else ""

    def _plain(self, text: str) -> str:
        """Inline markup as plain text (for a comment)."""
        text = _REF.sub(lambda m: self.ref(m, plain=True), text)
        return re.sub(r"\[([^\[\]]+)\]\([^)]*\)", r"\1", text)

    def _markdown(self, source: str) -> str:
        out: list[str] = []
        stack: list[dict] = []          # open divs: {"kind": "exr"|"callout"|"other", "titled": bool}
        in_code = False
        in_math = False
        for line in source.split("\n"):
            stripped = line.strip()
            if not stripped and out and out[-1].strip() == ">":
                continue                                  # one blank line after a callout's title
            quote = "> " * sum(d["kind"] == "callout" for d in stack)
            if stripped.startswith("```"):
                in_code = not in_code
                out.append(quote + line)
                continue
            if in_code:
                out.append(quote + line)
                continue
            if in_math:                                   # inside display math: as it is
                if "$$" in stripped:
                    in_math = False
                    line = self.math_line(line)
                out.append(quote + line)
                continue
            if stripped.startswith("$$"):
                if stripped.count("$$") >= 2:             # a one-line display
                    out.append(quote + self.math_line(line))
                else:
                    in_math = True
                    out.append(quote + line)
                continue
            if stripped.startswith(":::"):
                rest = stripped.lstrip(":").strip()
                if not rest:                                      # a closing fence
                    if stack:
                        div = stack.pop()
                        if div["kind"] == "callout" and out and out[-1].strip() == ">":
                            out.pop()
                    continue
                exr = re.match(r"\{#(exr-[\w-]+)", rest)
                callout = re.search(r"\.callout-(\w+)", rest)
                if exr:
                    self.exercises += 1
                    target = self.book.labels.get(exr.group(1))
                    number = target.text.split(" ", 1)[1] if target else (
                        f"{self.number}.{self.exercises}" if self.number else str(self.exercises))
                    stack.append({"kind": "exr", "number": number, "titled": False})
                elif callout:
                    title = re.search(r'title="([^"]*)"', rest)
                    stack.append({"kind": "callout", "titled": bool(title),
                                  "default": CALLOUT_TITLES.get(callout.group(1), "Note")})
                    quote = "> " * sum(d["kind"] == "callout" for d in stack)
                    if title:
                        out.append(f"{quote}**{self.inline(title.group(1))}**")
                        out.append(quote.rstrip())
                else:
                    stack.append({"kind": "other", "titled": True})
                continue
            if re.match(r"^\{\{<.*>\}\}\s*$", stripped):
                out.append(quote + re.sub(r"\{\{<.*?>\}\}", self.shortcode, stripped))
                continue
            heading = re.match(r"^(#{1,6}) (.*)$", line)
            if heading:
                out.extend(self.heading(heading, stack).split("\n"))
                continue
            if stack and stack[-1]["kind"] == "callout" and not stack[-1]["titled"] and stripped:
                stack[-1]["titled"] = True
                out.append(f"{quote}**{stack[-1]['default']}**")
                out.append(quote.rstrip())
            if stack and stack[-1]["kind"] == "exr" and not stack[-1]["titled"] and stripped:
                stack[-1]["titled"] = True
                out.append(f"## Exercise {stack[-1]['number']}")
                out.append("")
            line = re.sub(r"\{\{<.*?>\}\}", self.shortcode, line)
            line = re.sub(r"\s*\{#[\w-]+[^{}]*\}\s*$", "", line)    # leftover attributes
            out.append((quote + self.inline(line)).rstrip() if stripped else quote.rstrip())
        return "\n".join(out).strip("\n") + ("\n" if source.endswith("\n") else "")

    def math_line(self, line: str) -> str:
        """The closing line of a display: its ``{#eq-...}`` label becomes a ``\\tag``."""
        m = re.match(r"^(.*)\$\$\s*\{#(eq-[\w-]+)\}\s*$", line)
        if not m:
            return line
        self.equations += 1
        target = self.book.labels.get(m.group(2))
        number = target.text.split(" ", 1)[1] if target else (
            f"{self.number}.{self.equations}" if self.number else str(self.equations))
        return f"{m.group(1)}\\tag{{{number}}} $$"

    def heading(self, m: re.Match, stack) -> str:
        hashes, text = m.group(1), m.group(2)
        title = self.inline(_clean_heading(text))
        quote = "> " * sum(d["kind"] == "callout" for d in stack)
        if stack:
            div = stack[-1]
            if div["kind"] == "exr" and not div["titled"]:
                div["titled"] = True
                return f"{hashes} Exercise {div['number']}: {title}"
            if div["kind"] == "callout" and not div["titled"]:
                div["titled"] = True
                return f"{quote}**{title}**\n{quote.rstrip()}"
            return f"{quote}**{title}**"
        level = len(hashes)
        if level == 1 or _unnumbered(text) or not self.number:
            return f"{hashes} {self.number + ' ' if level == 1 and self.number else ''}{title}"
        self.sections[level - 1] += 1
        for k in range(level, len(self.sections)):
            self.sections[k] = 0
        number = ".".join([self.number] + [str(s) for s in self.sections[1:level]])
        return f"{hashes} {number} {title}"


def _your_copy_line(doc: Document | None, exercises: bool) -> str:
    if doc is None or not doc.number:
        what = "this chapter"
    else:
        what = f"{'appendix' if doc.appendix else 'chapter'} {doc.number}"
    if not exercises:
        return f"**This is your copy of {what}**: run its code, change it and run it again.\n"
    return (f"**This is your copy of {what}**, without the solutions: answer each exercise "
            f"in its `answer = ...` cell, then run the check below it.\n")


@functools.lru_cache(maxsize=1)
def _default_book() -> Book:
    return load_book(ROOT)


def student_copy(nb: nbformat.NotebookNode, book: Book | None = None) -> nbformat.NotebookNode:
    """A copy of ``nb`` without solution cells or outputs, in plain Markdown.

    ``book`` gives the numbering (default: the book this script belongs to); the
    chapter is recognized by its title heading's label.
    """
    book = _default_book() if book is None else book
    out = without_solutions(nb)
    doc = book.document_of(out)
    convert = _Converter(book, doc)
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.source = convert.code(cell.source)
            continue
        if cell.cell_type != "markdown":
            continue
        if LINK_TAG in cell.get("metadata", {}).get("tags", []):
            cell.source = _your_copy_line(doc, any(
                "nh.check(" in c.source for c in out.cells if c.cell_type == "code"))
            continue
        cell.source = convert.markdown(cell.source)
    out.cells = [c for c in out.cells if c.cell_type != "code" or c.source.strip()]
    mark_exercise_cells(out)           # for grading (nnbook.cells)
    return out


def appendix_copy(path: Path, book: Book) -> nbformat.NotebookNode:
    """The student copy of a Markdown appendix (``.qmd``, e.g. the notation page): a
    notebook of one markdown cell, converted as the chapters' markdown is."""
    text = path.read_text()
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)          # YAML front matter
    text = re.sub(r'^::: \{\.content-visible when-profile="solutions"\}.*?^:::\s*$', "",
                  text, flags=re.S | re.M)
    rel = path.resolve().relative_to(ROOT.resolve()) if path.resolve().is_relative_to(
        ROOT.resolve()) else Path(path.name)
    doc = book.documents.get(str(rel)) or next(
        (d for d in book.documents.values() if Path(d.path).name == path.name), None)
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(_Converter(book, doc).markdown(text)))
    return nb


def main(source: str, target: str) -> None:
    out = Path(target)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(source).resolve().parent
    book = load_book(root)
    for path in sorted(Path(source).glob("*.ipynb")):
        nbformat.write(student_copy(nbformat.read(path, as_version=4), book), out / path.name)
        print(f"wrote {out / path.name}")
    for doc in book.documents.values():          # the Markdown appendices (notation)
        if doc.student_copy and not doc.notebook:
            nbformat.write(appendix_copy(root / doc.path, book), out / doc.student_copy)
            print(f"wrote {out / doc.student_copy}")


if __name__ == "__main__":
    main(*(sys.argv[1:3] if len(sys.argv) > 2 else ("chapters", "_student/chapters")))
