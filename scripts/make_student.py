"""Write the student copies of the chapters: no solutions, no outputs.

    python scripts/make_student.py chapters _student/chapters

A solution is a code cell tagged ``solution``, or everything between a markdown
cell that opens ``::: {.content-visible when-profile="solutions"}`` and the
markdown cell whose ``:::`` closes it (text may come before that line). Those cells are dropped, every
output and execution count is cleared, and every other cell is kept as it is.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

SOLUTION_OPEN = '::: {.content-visible when-profile="solutions"}'


def _opens_solution(cell) -> bool:
    return cell.cell_type == "markdown" and cell.source.lstrip().startswith(SOLUTION_OPEN)


def _fence_balance(cell) -> int:
    """Divs a markdown cell opens (``::: {...}`` lines) minus those it closes (``:::``)."""
    if cell.cell_type != "markdown":
        return 0
    lines = [ln.strip() for ln in cell.source.splitlines()]
    return sum(ln.startswith(":::") and ln != ":::" for ln in lines) - lines.count(":::")


def student_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` without solution cells or outputs."""
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


def main(source: str, target: str) -> None:
    out = Path(target)
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(Path(source).glob("*.ipynb")):
        nbformat.write(student_copy(nbformat.read(path, as_version=4)), out / path.name)
        print(f"wrote {out / path.name}")


if __name__ == "__main__":
    main(*(sys.argv[1:3] if len(sys.argv) > 2 else ("chapters", "_student/chapters")))
