"""Build the student kit: one zip that runs anywhere and holds no solution.

    python -m nnbook.kit [_student/chapters] [_student/neural-networks-student-kit.zip]

``make student`` runs it after writing the student notebooks. The zip holds one
folder, ``neural-networks-student-kit/``::

    README.md                 install, open, hand in
    requirements.txt          the book's exact pins (pip)
    environment.yml           the same for conda
    notebooks/NN-*.ipynb      the student notebooks (no solutions, no outputs)
    notebooks/*.py            the helper modules they import (found by reading the imports)
    data/*.csv                the datasets

The helpers sit beside the notebooks, so ``import nnhelpers as nh`` works from
JupyterLab without installing anything of the book; ``nnhelpers`` finds
``data/`` one folder up, as in the repository. The build refuses to write a kit
in which a file holds a solution cell or a readable answer
(:func:`nnexercises.find_answers`; a notebook is searched for its own exercises'
answers, every other file for all of them).
"""

from __future__ import annotations

import ast
import re
import sys
import zipfile
from pathlib import Path

import nbformat

from nnbook import ROOT
SCRIPTS = ROOT / "scripts"
KIT_NAME = "neural-networks-student-kit"
DEFAULT_NOTEBOOKS = ROOT / "_student" / "chapters"
DEFAULT_ZIP = ROOT / "_student" / f"{KIT_NAME}.zip"
FIXED_TIME = (2024, 1, 1, 0, 0, 0)      # zip entries get one date: the same kit, the same bytes

README = """\
# Neural Networks: student kit

The student notebooks of *Neural Networks, an executable course book*, with
everything they need to run on your own computer. Each exercise has an
`answer = ...` cell and a check cell below it that says *Not answered yet*,
*Correct!* or *Not quite* with a hint.

## Install (once)

You need Python 3.11. In this folder, either with pip:

```bash
python3.11 -m venv .venv
.venv/bin/python -m pip install -r requirements.txt      # Windows: .venv\\Scripts\\python
```

or with conda:

```bash
conda env create -f environment.yml
conda activate nn-course-book
```

The versions are pinned exactly: they are the ones the book's printed numbers
were made with.

## Open the notebooks

```bash
.venv/bin/jupyter lab notebooks        # with conda: jupyter lab notebooks
```

Run each notebook from the top ("Run > Run All Cells" once, then cell by cell).
Keep the `.py` files next to the notebooks: they are the book's helpers
(`import nnhelpers as nh`). Files a notebook writes go to `_output/`; `data/`
holds the datasets as CSV files.

## Hand in

- Save the notebook and hand in the `.ipynb` file itself, **keeping its name**
  (e.g. `07-gradient-descent.ipynb`). If your course collects all files in one
  folder, put your name in front: `alice_07-gradient-descent.ipynb`.
- Keep the `answer = ...` cell and the check cell of each exercise (you may add
  cells between them). Your instructor runs your notebook from the top in a fresh
  kernel and checks each `answer` itself, so make sure "Restart Kernel and Run
  All Cells" works and does not take much longer than the original notebook.
- Do not hand in a notebook under another chapter's name.
"""


def imported_modules(source: str) -> set[str]:
    """Top-level names of every module ``source`` imports (anywhere, also in functions)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:         # notebook cells may hold IPython magics
        tree = ast.parse("\n".join(ln for ln in source.splitlines()
                                   if not ln.lstrip().startswith(("%", "!"))))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def helper_modules(notebooks: list[Path]) -> list[Path]:
    """The book's modules (in scripts/) the notebooks import, and those these import."""
    todo = set()
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                todo |= imported_modules(cell.source)
    found: dict[str, Path] = {}
    while todo:
        name = todo.pop()
        path = SCRIPTS / f"{name}.py"
        if name in found or not path.exists():
            continue
        found[name] = path
        todo |= imported_modules(path.read_text())
    return [found[n] for n in sorted(found)]


def kit_environment(text: str) -> str:
    """The book's environment.yml without the editable install of the repository."""
    lines = [ln for ln in text.splitlines() if ln.strip() != "- -e ."]
    out = "\n".join(lines) + "\n"
    out = re.sub(r"(?m)^#.*\n", "", out)      # the repository's own comments
    return ("# Conda environment of the student kit: `conda env create -f environment.yml`,\n"
            "# `conda activate nn-course-book`, `jupyter lab notebooks`.\n" + out)


def kit_files(notebooks_dir: Path = DEFAULT_NOTEBOOKS) -> dict[str, bytes]:
    """{path inside the kit folder: content}."""
    notebooks = sorted(Path(notebooks_dir).glob("*.ipynb"))
    if not notebooks:
        raise SystemExit(f"no student notebooks in {notebooks_dir}: run `make student` "
                         "(or tooling/nnbook/student.py) first")
    files = {"README.md": README.encode(),
             "requirements.txt": (ROOT / "requirements.txt").read_bytes(),
             "environment.yml": kit_environment((ROOT / "environment.yml").read_text()).encode()}
    for path in notebooks:
        files[f"notebooks/{path.name}"] = path.read_bytes()
    for path in helper_modules(notebooks):
        files[f"notebooks/{path.name}"] = path.read_bytes()
    for path in sorted((ROOT / "data").glob("*.csv")):
        files[f"data/{path.name}"] = path.read_bytes()
    return files


def giveaways(files: dict[str, bytes]) -> list[str]:
    """What in the kit gives a solution or an answer away (empty when nothing does)."""
    import nnexercises

    found = []
    for name, content in files.items():
        if name.endswith(".csv"):
            continue            # data, not answers (thousands of numbers would match by chance)
        text = content.decode("utf-8", errors="replace")
        if name.endswith(".ipynb"):
            nb = nbformat.reads(text, as_version=4)
            if any("solution" in c.metadata.get("tags", []) for c in nb.cells):
                found.append(f"{name}: a cell tagged `solution`")
            if any(c.get("outputs") for c in nb.cells if c.cell_type == "code"):
                found.append(f"{name}: stored outputs")
            text = "\n".join(c.source for c in nb.cells)
            # a notebook is scanned for its own exercises' answers: later chapters use
            # numbers such as Adam's 0.999 that match an earlier answer by chance
            names = [n for n, stem in nnexercises.EXERCISES.items() if f"{stem}.ipynb" in name]
        else:
            names = None        # helpers and text files: every answer
        found += [f"{name}: {number} is the answer to {exercise!r}"
                  for exercise, number in nnexercises.find_answers(text, names)]
    return found


def write_zip(files: dict[str, bytes], target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(f"{KIT_NAME}/{name}", date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, files[name])
    partial.replace(target)
    return target


def main(notebooks_dir: str = str(DEFAULT_NOTEBOOKS), target: str = str(DEFAULT_ZIP)) -> int:
    files = kit_files(Path(notebooks_dir))
    problems = giveaways(files)
    if problems:
        print("The student kit would give answers away; fix these first:", *problems,
              sep="\n  ", file=sys.stderr)
        return 1
    write_zip(files, Path(target))
    helpers = sorted(n[len("notebooks/"):] for n in files if n.endswith(".py"))
    print(f"wrote {target} ({len(files)} files; helpers: {', '.join(helpers)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
