"""The student kit: unpacked into an empty folder outside the repository, it runs
on its own, and no file in it gives a solution or an answer away.

The book's environment (.venv) has the repository's ``scripts/`` on its path (the
editable install). Every Python started here takes it off first, so a helper
missing from the kit fails instead of being found in the repository.
"""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import nnexercises
from nnbook import cells, grade
from nnbook import ROOT
from nnbook import kit as make_kit
from nnbook import student as make_student

SCRIPTS = str(ROOT / "scripts")
FAST_CHAPTER = "01-neurons-and-networks"

# run first in every Python of these tests: forget the repository's helpers (its folder on
# sys.path, and the finder of the editable install, which maps the book's module names to it)
HIDE_REPO = f"""
import os, sys
sys.path[:] = [p for p in sys.path if os.path.realpath(p or '.') != {SCRIPTS!r}]
sys.meta_path[:] = [f for f in sys.meta_path
                    if not getattr(f, '__module__', '').startswith('__editable__')]
"""

# one worker runs the whole module (its fixture grades or builds once)
pytestmark = pytest.mark.xdist_group("kit")


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    base = tmp_path_factory.mktemp("kit")
    make_student.main(str(ROOT / "chapters"), str(base / "student"))
    assert make_kit.main(str(base / "student"), str(base / "kit.zip")) == 0
    unpacked = base / "unpacked"
    unpacked.mkdir()
    with zipfile.ZipFile(base / "kit.zip") as zf:
        zf.extractall(unpacked)
    folder = unpacked / make_kit.KIT_NAME
    assert ROOT not in folder.parents
    return {"zip": base / "kit.zip", "folder": folder, "student": base / "student"}


def _kit_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NNBOOK_") and k != "PYTHONPATH"}
    return dict(env, MPLBACKEND="agg")


def test_kit_holds_everything_a_student_needs(kit):
    folder = kit["folder"]
    names = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    chapters = sorted(p.name for p in kit["student"].glob("*.ipynb"))
    assert {f"notebooks/{c}" for c in chapters} <= names
    assert {"README.md", "requirements.txt", "environment.yml", "notebooks/nnhelpers.py",
            "notebooks/mlp_draw.py", "notebooks/nnexercises.py"} <= names
    assert not [n for n in names if n.startswith("data/")]          # no notebook reads data/
    pins = [ln for ln in (ROOT / "requirements.txt").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]
    assert [ln for ln in (folder / "requirements.txt").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")] == pins
    env = (folder / "environment.yml").read_text()
    assert "-e ." not in env and "torch==2.13.0" in env
    readme = (folder / "README.md").read_text()
    assert "## Install" in readme and "jupyter lab notebooks" in readme and "## Hand in" in readme


def test_every_import_of_the_notebooks_resolves_inside_the_kit(kit):
    notebooks = kit["folder"] / "notebooks"
    modules = set()
    for path in notebooks.glob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                modules |= make_kit.imported_modules(cell.source)
    book_modules = sorted(m for m in modules | {"nnexercises"} if (ROOT / "scripts" / f"{m}.py").exists())
    code = HIDE_REPO + f"""
import importlib
for name in {book_modules!r}:
    module = importlib.import_module(name)
    print(name, os.path.relpath(module.__file__))
import nnhelpers
# one _output/ beside the notebooks: the files they write and the result cache
here = nnhelpers.Path.cwd() / "_output"
assert nnhelpers.output_path("x").parent.resolve() == here.resolve()
assert nnhelpers.cache_dir().resolve() == (here / "cache").resolve(), nnhelpers.cache_dir()
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=notebooks, env=_kit_env(),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [w for m in book_modules for w in (m, f"{m}.py")]


def test_a_missing_helper_is_not_found_in_the_repository(kit, tmp_path):
    """The test set-up itself: without nnexercises.py in the kit, the import fails."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (notebooks / "nnhelpers.py").write_bytes((kit["folder"] / "notebooks" / "nnhelpers.py").read_bytes())
    code = HIDE_REPO + "import nnexercises"
    out = subprocess.run([sys.executable, "-c", code], cwd=notebooks, env=_kit_env(),
                         capture_output=True, text=True)
    assert out.returncode != 0 and "No module named 'nnexercises'" in out.stderr


def test_a_student_notebook_runs_from_the_unpacked_kit(kit):
    notebooks = kit["folder"] / "notebooks"
    nb = nbformat.read(notebooks / f"{FAST_CHAPTER}.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import sys as _s\n"
        f"print(sorted(n for n, m in list(_s.modules.items()) if getattr(m, '__file__', None) "
        f"and str(m.__file__).startswith({str(ROOT) + os.sep!r}) "
        f"and not str(m.__file__).startswith({str(ROOT / '.venv') + os.sep!r})))"))
    manager = grade._kernel_manager_class(0, 0, prelude=HIDE_REPO)
    NotebookClient(nb, timeout=600, kernel_name="python3", kernel_manager_class=manager,
                   resources={"metadata": {"path": str(notebooks)}}).execute(env=_kit_env())
    checks = [c for c in nb.cells if c.cell_type == "code" and cells.CHECK_CALL.search(c.source)]
    assert len(checks) == len(grade.chapter_exercises(FAST_CHAPTER))
    for cell in checks:
        printed = "".join(o.get("text", "") for o in cell.outputs)
        assert "Not answered yet" in printed, printed
    loaded_from_repo = nb.cells[-1].outputs[0]["text"].strip()
    assert loaded_from_repo == "[]"


def test_no_file_of_the_kit_gives_an_answer_away(kit):
    folder = kit["folder"]
    files = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert make_kit.giveaways(files) == []
    for name, content in files.items():
        assert b'"solution"' not in content and b"when-profile" not in content, name


def test_giveaways_are_caught():
    """The kit's own check finds a solution cell, stored outputs and a written answer."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("answer = 1")])
    nb.cells[0].metadata["tags"] = ["solution"]
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="1")]
    name, chapter = next(iter(nnexercises.EXERCISES.items()))
    found = make_kit.giveaways({f"notebooks/{chapter}.ipynb": nbformat.writes(nb).encode(),
                                "notes.md": b"iris accuracy: 0.967"})
    assert any("tagged `solution`" in f for f in found)
    assert any("stored outputs" in f for f in found)
    assert any(f.startswith("notes.md: 0.967") for f in found)


def test_the_zip_is_the_same_when_built_twice(kit, tmp_path):
    assert make_kit.main(str(kit["student"]), str(tmp_path / "again.zip")) == 0
    assert (tmp_path / "again.zip").read_bytes() == kit["zip"].read_bytes()
