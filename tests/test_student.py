"""Student notebooks: generated without solutions, and they run top to bottom (the copies of
the chapters with exercises run here; a copy that loses no code runs as its nbval run shows)."""

import nbformat
import pytest
from nbclient import NotebookClient

from nnbook import student as make_student
from nnbook.execute import AsyncIsolatedKernelManager
from conftest import CHAPTERS, read_notebook


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("student") / "chapters"
    make_student.main(str(CHAPTERS[0].parent), str(out))
    return out


def test_one_copy_per_chapter(student_dir):
    assert sorted(p.name for p in student_dir.glob("*.ipynb")) == sorted(
        [p.name for p in CHAPTERS] + ["notation.ipynb"])      # and the notation appendix


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_copy_has_no_solution_and_no_outputs(student_dir, path):
    original, copy = read_notebook(path), read_notebook(student_dir / path.name)
    text = nbformat.writes(copy)
    assert "when-profile" not in text and '"solution"' not in text
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in copy.cells if c.cell_type == "code")
    kept = [c for c in original.cells if "solution" not in c.metadata.get("tags", [])]
    # every code cell outside the solution divs is kept, in order, with only what the
    # copies change for a student (Quarto options, references, nh.to_page:
    # tests/test_student_copies.py); the markdown: tests/test_student_markdown.py
    book = make_student.load_book()
    convert = make_student._Converter(book, book.document_of(original))
    sources = [c.source for c in copy.cells if c.cell_type == "code"]
    it = iter(convert.code(c.source) for c in kept if c.cell_type == "code")
    assert all(any(s == k for k in it) for s in sources)
    assert len(sources) >= sum(c.cell_type == "code" for c in kept) - 3 - 2 * (
        sum(c.source.startswith("::: {#exr-") for c in original.cells))
    dropped = len(original.cells) - len(copy.cells)
    n_exercises = sum(c.source.startswith("::: {#exr-") for c in original.cells)
    assert dropped >= 3 * n_exercises


def test_unclosed_solution_div_is_an_error():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell('::: {.content-visible when-profile="solutions"}'),
        nbformat.v4.new_code_cell("answer = 1")])
    with pytest.raises(ValueError, match="never closed"):
        make_student.student_copy(nb)


class _StudentCopyRun:
    """Runs one chapter's student copy top to bottom (one class per chapter, below).

    The pytest plugin (tooling/nnbook/pytest_plugin.py) schedules each class right after its chapter's nbval run, on the
    same worker, so that the copy's fits come from the test run's result cache
    (``nh.sweep``, ``nh.train``), filled by that nbval run, instead of being
    computed a second time; every cell still runs. Figures are drawn but not
    rendered to PNG (matplotlib's Agg backend, as the grader runs submissions): the
    copy's figure cells are the chapter's own, rendered by its nbval run."""

    chapter = None

    def test_runs_and_every_check_says_not_answered(self, student_dir, tmp_path, monkeypatch):
        monkeypatch.setenv("NNBOOK_OUTPUT_DIR", str(tmp_path))  # never share files with nbval's run
        monkeypatch.setenv("MPLBACKEND", "agg")
        nb = read_notebook(student_dir / self.chapter.name)
        NotebookClient(nb, timeout=900, kernel_name="python3",
                       kernel_manager_class=AsyncIsolatedKernelManager,
                       resources={"metadata": {"path": str(student_dir)}}).execute()
        checks = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("nh.check(")]
        assert checks
        for cell in checks:
            printed = "".join(o.get("text", "") for o in cell.outputs)
            assert "Not answered yet" in printed, printed


def _code(nb):
    return [(c.source, c.metadata.get("tags", [])) for c in nb.cells if c.cell_type == "code"]


def _has_exercises(path):
    return any(c.source.startswith("::: {#exr-") for c in read_notebook(path).cells)


WITH_EXERCISES = [p for p in CHAPTERS if _has_exercises(p)]
WITHOUT_EXERCISES = [p for p in CHAPTERS if p not in WITH_EXERCISES]     # the appendices


@pytest.mark.parametrize("path", WITHOUT_EXERCISES, ids=lambda p: p.stem)
def test_copy_without_exercises_keeps_every_code_cell(student_dir, path):
    """A notebook without exercises loses no code in its copy (same cells, same tags, in
    order): the copy runs as the notebook's nbval run shows, every cell of it, so it needs
    no run of its own (the copies of the chapters with exercises do: the classes below)."""
    code = _code(read_notebook(path))
    assert _code(read_notebook(student_dir / path.name)) == code
    # ... and nbval runs every one of those cells, none allowed to fail
    assert not [source for source, tags in code
                if {"nbval-skip", "skip-execution", "raises-exception"} & set(tags)
                or "NBVAL_SKIP" in source or "NBVAL_RAISES_EXCEPTION" in source]


for _path in WITH_EXERCISES:
    _name = "TestStudentCopy_" + _path.stem.replace("-", "_")
    globals()[_name] = type(_name, (_StudentCopyRun,), {"chapter": _path})


def test_solution_div_may_close_after_text_and_nest():
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook(cells=[
        md("intro"),
        md('::: {.content-visible when-profile="solutions"}\n**Solution.**'),
        code("answer = 1"),
        md("::: {.callout-tip}\nnested\n:::"),
        md("Some closing words.\n:::"),
        code("check(answer)")])
    copy = make_student.student_copy(nb)
    assert [c.source for c in copy.cells] == ["intro", "check(answer)"]
