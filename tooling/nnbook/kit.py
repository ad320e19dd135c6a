"""Build the student kit: one zip that runs anywhere and holds no solution.

    python -m nnbook.kit [_student/chapters] [_student/neural-networks-student-kit.zip]

``make student`` runs it after writing the student notebooks. The zip holds one
folder, ``neural-networks-student-kit/``::

    README.md                 install (with the CPU-only build of torch), open, hand in
    requirements.txt          the book's exact pins (pip), commented for students
    environment.yml           the same for conda
    notebooks/*.ipynb         the student notebooks (no solutions, no outputs), and the
                              notation appendix as a notebook (notation.ipynb)
    notebooks/*.py            the helper modules they import (found by reading the imports)
    data/<name>               only a data file that a shipped notebook or helper names

The helpers sit beside the notebooks, so ``import nnhelpers as nh`` works from
JupyterLab without installing anything of the book. In the kit the helpers take the
notebooks' folder as the book's folder (:data:`HELPER_ROOT`), so that everything a
notebook writes, its files and the result cache, goes to one ``notebooks/_output/``.
The build refuses to write a kit
in which a file holds a solution cell or a readable answer
(:func:`nnexercises.find_answers`; a notebook is searched for its own exercises'
answers, every other file for all of them).
"""

from __future__ import annotations

import ast
import io
import re
import sys
import zipfile
from pathlib import Path

import nbformat

from nnbook import ROOT
from nnbook.book import write_atomically
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

You need **Python 3.11** (the book's printed numbers were made with it). Check
with `python3.11 --version` (Windows: `py -3.11 --version`). To get it: on Windows and
macOS, the installer of Python 3.11 from <https://www.python.org/downloads/>; on Linux,
your package manager (Debian/Ubuntu: `sudo apt install python3.11 python3.11-venv`; on
Ubuntu releases without it, the "deadsnakes" PPA), or conda (below).

In this folder, with pip. On **Linux and Windows**, install the CPU-only build of torch
first, as PyTorch's own install page (<https://pytorch.org/get-started/locally/>)
says: the plain `pip install torch` on Linux downloads the build for NVIDIA GPUs, over
3 GB, which the book does not need.

```bash
# Linux
python3.11 -m venv .venv
.venv/bin/python -m pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
.venv/bin/python -m pip install -r requirements.txt
```

```bat
rem Windows
py -3.11 -m venv .venv
.venv\\Scripts\\python -m pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
.venv\\Scripts\\python -m pip install -r requirements.txt
```

```bash
# macOS: PyPI's torch is already the CPU (and Apple GPU) build
python3.11 -m venv .venv
.venv/bin/python -m pip install -r requirements.txt
```

Expect about 350 MB of downloads (torch's CPU build is about 190 MB of it) and
1.6 GB on disk once installed; it takes 3 to 10 minutes, depending on your
connection. If pip reports `No matching distribution found for torch==2.13.0`,
your Python is not 3.11 (or not 64-bit).

Or with conda, which installs Python 3.11 itself (`environment.yml` takes torch's
CPU-only build from PyTorch's index):

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
(`import nnhelpers as nh`). `notation.ipynb` is the book's Appendix A, the
notation every chapter uses. Everything a notebook writes (files, and the results
it keeps so that a second run is quick) goes to `notebooks/_output/`; delete that
folder to start afresh. The interactive figures are on the book's web pages.

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


REQUIREMENTS_HEADER = """\
# The exact versions the book's printed numbers were made with (Python 3.11).
# Linux and Windows: install torch's CPU-only build first (README.md), as PyTorch's
# install page says; pip then keeps it:
#   python -m pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
#   python -m pip install -r requirements.txt
# macOS: only the second line.
"""

CPU_INDEX = "https://download.pytorch.org/whl/cpu"

HELPER_ROOT = ("ROOT = Path(__file__).resolve().parent.parent",
               "ROOT = Path(__file__).resolve().parent      # student kit: the notebooks' folder")
"""The line of the helpers that names the book's folder, and what it says in the kit (one
``_output/`` beside the notebooks for what they write and for the result cache)."""


def kit_requirements(text: str) -> str:
    """The book's requirements.txt with the student's comments instead of the repository's."""
    pins = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return REQUIREMENTS_HEADER + "\n".join(pins) + "\n"


def kit_helper(path: Path) -> bytes:
    """A helper module as shipped: its ROOT is the notebooks' folder (:data:`HELPER_ROOT`)."""
    text = path.read_text()
    if "ROOT = " in text and "_output" in text:
        if HELPER_ROOT[0] not in text:
            raise SystemExit(f"{path.name}: the kit sets ROOT to the notebooks' folder but cannot "
                             f"find {HELPER_ROOT[0]!r}; update kit.HELPER_ROOT")
        text = text.replace(HELPER_ROOT[0], HELPER_ROOT[1])
    return text.encode()


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
    # torch's CPU-only build: pip takes 2.13.0+cpu from PyTorch's index on Linux and Windows
    # (the same wheel as PyPI's on macOS), not the multi-GB build for NVIDIA GPUs
    if CPU_INDEX not in out:
        out = re.sub(r"(?m)^(\s*)- pip:\n", r"\g<0>\1    - --extra-index-url "
                     + CPU_INDEX + "\n", out, count=1)
    return ("# Conda environment of the student kit: `conda env create -f environment.yml`,\n"
            "# `conda activate nn-course-book`, `jupyter lab notebooks`. The extra index is\n"
            "# PyTorch's, for its CPU-only build (no multi-GB download for NVIDIA GPUs).\n" + out)


def kit_files(notebooks_dir: Path = DEFAULT_NOTEBOOKS) -> dict[str, bytes]:
    """{path inside the kit folder: content}."""
    notebooks = sorted(Path(notebooks_dir).glob("*.ipynb"))
    if not notebooks:
        raise SystemExit(f"no student notebooks in {notebooks_dir}: run `make student` "
                         "(or tooling/nnbook/student.py) first")
    files = {"README.md": README.encode(),
             "requirements.txt": kit_requirements((ROOT / "requirements.txt").read_text()).encode(),
             "environment.yml": kit_environment((ROOT / "environment.yml").read_text()).encode()}
    for path in notebooks:
        files[f"notebooks/{path.name}"] = path.read_bytes()
    for path in helper_modules(notebooks):
        files[f"notebooks/{path.name}"] = kit_helper(path)
    shipped = "\n".join(content.decode("utf-8", errors="replace") for content in files.values())
    for path in sorted((ROOT / "data").glob("*.csv")):
        if path.name in shipped:            # only data a notebook or helper reads
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
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(f"{KIT_NAME}/{name}", date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, files[name])
    write_atomically(target, buffer.getvalue())
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
