"""Submissions for testing and benchmarking the grader, made from the chapters.

* :func:`student_copy`: what ``make student`` hands out (exercise cells marked);
* :func:`solved_copy`: the same with each exercise's answer cell replaced by the
  solution code of the instructors' notebook, as a student who solved everything;
* :func:`set_answer`: one exercise answered with any code.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from nnbook import cells, grade
from nnbook import student as make_student
from nnbook.book import CHAPTERS_DIR


def chapter_path(stem: str) -> Path:
    return CHAPTERS_DIR / f"{stem}.ipynb"


def student_copy(stem: str) -> nbformat.NotebookNode:
    nb = make_student.student_copy(nbformat.read(chapter_path(stem), as_version=4))
    cells.mark_exercise_cells(nb)     # make_student may already have: marking twice is harmless
    return nb


def solutions(stem: str) -> dict[str, str]:
    """{exercise: the code of its solution cells} from the instructors' notebook."""
    nb = nbformat.read(chapter_path(stem), as_version=4)
    found, code = {}, []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if "solution" in cell.metadata.get("tags", []):
            code.append(cell.source)
            continue
        call = cells.CHECK_CALL.search(cell.source)
        if call:
            found[call.group(1)] = "\n".join(code)
        if call or cells.ASSIGNS_ANSWER.search(cell.source):
            code = []
    return found


def answer_cell(nb, name: str):
    return next(c for c in nb.cells if c.metadata.get(cells.MARK) ==
                {"exercise": name, "role": "answer"})


def set_answer(nb, name: str, source: str) -> nbformat.NotebookNode:
    """Give exercise ``name`` the answer cell ``source`` (in place; returns nb)."""
    answer_cell(nb, name).source = source
    return nb


def solved_copy(stem: str) -> nbformat.NotebookNode:
    nb = student_copy(stem)
    for name, code in solutions(stem).items():
        set_answer(nb, name, code)
    return nb


def write(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(copy.deepcopy(nb), path)
    return path
