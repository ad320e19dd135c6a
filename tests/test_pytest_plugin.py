"""The test run's set-up (tooling/nnbook/pytest_plugin.py): what it starts, marks and orders."""

import types
from pathlib import Path

from nnbook import ROOT, book
from nnbook import pytest_plugin as plugin


def _config(*args, where=ROOT):
    return types.SimpleNamespace(args=list(args),
                                 invocation_params=types.SimpleNamespace(dir=where))


def test_only_a_run_of_the_site_tests_alone_starts_no_kernels():
    assert not plugin._runs_notebooks(_config("tests_site"))
    assert not plugin._runs_notebooks(_config("test_browser.py::test_x", where=ROOT / "tests_site"))
    assert plugin._runs_notebooks(_config())                          # testpaths: tests/
    assert plugin._runs_notebooks(_config("tests", "chapters"))
    assert plugin._runs_notebooks(_config("tests_site", "chapters/01-x.ipynb"))


def test_a_chapters_nbval_cells_and_student_copy_are_one_work_unit():
    units = {plugin._work_unit(nodeid) for nodeid in (
        "chapters/07-gradient-descent.ipynb::Cell 3",
        "tests/test_student.py::TestStudentCopy_07_gradient_descent::test_runs")}
    assert units == {"07_gradient_descent"}
    assert plugin._work_unit("tests/test_cache.py::test_a") == "tests/test_cache.py"
    assert plugin._work_unit("tests/test_notebooks.py::TestChapter::test_b[01]") == (
        "tests/test_notebooks.py::TestChapter")


def _item(path, chapter=None):
    cls = types.SimpleNamespace(chapter=chapter) if chapter else None
    return types.SimpleNamespace(path=Path(path), cls=cls, nodeid=str(path))


def test_work_goes_out_costliest_chapter_first_then_the_unit_tests():
    chapters = book.chapter_notebooks()
    first = next(p for p in chapters if p.name.startswith(book.CHAPTERS_BY_COST[0]))
    cheapest = next(p for p in chapters if p.name.startswith(book.CHAPTERS_BY_COST[-1]))
    items = [_item(ROOT / "tests" / "test_cache.py"),
             _item(ROOT / "tests" / "test_student.py", chapter=cheapest),
             _item(cheapest), _item(ROOT / "tests" / "test_grade.py"),
             _item(ROOT / "tests" / "test_student.py", chapter=first), _item(first)]
    ordered = sorted(items, key=plugin._rank)
    assert [(i.path.name, bool(i.cls)) for i in ordered] == [
        (first.name, False), ("test_student.py", True),             # chapter 7: nbval, then copy
        ("test_grade.py", False),                                     # costs about as much
        (cheapest.name, False), ("test_student.py", True),
        ("test_cache.py", False)]


def test_the_modules_named_integration_or_notebook_tests_exist():
    """A renamed module would otherwise slip into make unit unnoticed."""
    modules = {p.name for p in (ROOT / "tests").glob("test_*.py")}
    assert set(plugin.INTEGRATION) | set(plugin.NOTEBOOK_MODULES) <= modules
    assert all(chapter is None or book.cost_rank(chapter) < len(book.CHAPTERS_BY_COST)
               for chapter in plugin.INTEGRATION.values())
