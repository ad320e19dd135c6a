"""Write the student copies of the chapters: no solutions, no outputs.

    python scripts/make_student.py chapters _student/chapters

A solution is a code cell tagged ``solution``, or everything between a markdown
cell that opens ``::: {.content-visible when-profile="solutions"}`` and the
markdown cell that closes it with ``:::``. Those cells are dropped, every
output and execution count is cleared, and every other cell is kept as it is.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

SOLUTION_OPEN = '::: {.content-visible when-profile="solutions"}'


def _opens_solution(cell) -> bool:
    return cell.cell_type == "markdown" and cell.source.lstrip().startswith(SOLUTION_OPEN)


def _closes_div(cell) -> bool:
    return cell.cell_type == "markdown" and cell.source.strip() == ":::"


def student_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` without solution cells or outputs."""
    out = nbformat.v4.new_notebook(metadata=nb.metadata)
    inside = False
    for cell in nb.cells:
        if _opens_solution(cell):
            if inside:
                raise ValueError("a solution div opens inside another one: close it with ':::'")
            inside = True
            continue
        if inside:
            if _closes_div(cell):
                inside = False
            continue
        if "solution" in cell.get("metadata", {}).get("tags", []):
            continue
        cell = nbformat.from_dict(dict(cell))
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        out.cells.append(cell)
    if inside:
        raise ValueError("a solution div is never closed: add a markdown cell holding ':::'")
    return out


def main(source: str, target: str) -> None:
    out = Path(target)
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(Path(source).glob("*.ipynb")):
        nbformat.write(student_copy(nbformat.read(path, as_version=4)), out / path.name)
        print(f"wrote {out / path.name}")


if __name__ == "__main__":
    main(*(sys.argv[1:3] if len(sys.argv) > 2 else ("chapters", "_student/chapters")))
