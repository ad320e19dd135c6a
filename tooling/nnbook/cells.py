"""The exercise-cell convention, in one place (used by ``student``, ``kit`` and ``grade``).

In a chapter notebook an exercise is a markdown div ``::: {#exr-NAME}`` whose first
heading is its title, followed by two code cells: the **answer cell**, which assigns
``answer = ...``, and right below it the **check cell**, ``nh.check("NAME", answer)``.

The student copies (``make student``) mark both code cells in their metadata::

    {"nnbook": {"exercise": "NAME", "role": "answer" | "check"}}

JupyterLab keeps cell metadata when a cell is edited, moved or copied, so the grader
finds the cells of a submission by these marks. In a notebook without marks (an old
copy, another editor) the check cell is found by its ``nh.check("NAME"`` call and the
answer cell is the nearest code cell above it that assigns ``answer``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MARK = "nnbook"
"""Cell-metadata key of the exercise marks."""

CHECK_CALL = re.compile(r"""^\s*(?:nh\.)?check\(\s*["']([^"']+)["']""", re.M)
"""A check cell's call; group 1 is the exercise's name."""

ASSIGNS_ANSWER = re.compile(r"^answer\s*(?::[^=]*)?=(?!=)", re.M)
"""An answer cell's assignment."""

EXERCISE_DIV = re.compile(r"^:::+\s*\{#exr-([\w-]+)[^}]*\}\s*$", re.M)
"""The opening fence of an exercise div; group 1 is the exercise's name."""


def mark(cell) -> dict:
    """The exercise mark of a cell (``{}`` when it has none or a malformed one)."""
    found = cell.get("metadata", {}).get(MARK, {})
    return found if isinstance(found, dict) and isinstance(found.get("exercise"), str) else {}


def is_check_cell(cell) -> bool:
    return cell.cell_type == "code" and (mark(cell).get("role") == "check"
                                         or bool(CHECK_CALL.search(cell.source)))


def mark_exercise_cells(nb) -> None:
    """Mark each exercise's answer and check cells, in place (marking twice is harmless).

    The check cell is the code cell calling ``nh.check("name", ...)``; the answer
    cell is the nearest code cell above it, which must assign ``answer``.
    """
    code = [c for c in nb.cells if c.cell_type == "code"]
    for k, cell in enumerate(code):
        found = CHECK_CALL.search(cell.source)
        if not found:
            continue
        name = found.group(1)
        if k == 0 or not ASSIGNS_ANSWER.search(code[k - 1].source):
            raise ValueError(f"exercise {name!r}: the code cell above its check cell must be "
                             "its answer cell (`answer = ...`)")
        code[k - 1].metadata[MARK] = {"exercise": name, "role": "answer"}
        cell.metadata[MARK] = {"exercise": name, "role": "check"}


@dataclass
class ExerciseCells:
    answer: list[int] = field(default_factory=list)     # cell indices in the notebook
    check: list[int] = field(default_factory=list)
    by_source: bool = False                             # found without the metadata marks


def exercise_cells(nb) -> dict[str, ExerciseCells]:
    """Where each exercise's answer and check cells are in a (submitted) notebook."""
    found: dict[str, ExerciseCells] = {}
    for i, cell in enumerate(nb.cells):
        role = mark(cell).get("role")
        if cell.cell_type == "code" and role in ("answer", "check"):
            getattr(found.setdefault(mark(cell)["exercise"], ExerciseCells()), role).append(i)
    # notebooks without marks: the check call names the exercise
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or mark(cell):
            continue
        call = CHECK_CALL.search(cell.source)
        if call and (call.group(1) not in found or found[call.group(1)].by_source):
            found.setdefault(call.group(1), ExerciseCells(by_source=True)).check.append(i)
    for entry in found.values():
        if entry.answer or not entry.check:
            continue
        # the nearest unmarked code cell above a check cell that assigns `answer`
        for i in range(max(entry.check) - 1, -1, -1):
            cell = nb.cells[i]
            if cell.cell_type != "code":
                continue
            if mark(cell) or CHECK_CALL.search(cell.source):
                if i < min(entry.check):
                    break
                continue
            if ASSIGNS_ANSWER.search(cell.source):
                entry.answer.append(i)
                entry.by_source = True
                break
    return found


def exercise_headings(nb) -> dict[str, str]:
    """{name: title} of the exercise divs in a chapter notebook's markdown (its first
    heading inside the div, without the ``#``)."""
    titles = {}
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for opened in EXERCISE_DIV.finditer(cell.source):
            heading = re.search(r"^#+\s+(.+?)\s*$", cell.source[opened.end():], re.M)
            titles[opened.group(1)] = heading.group(1) if heading else ""
    return titles
