"""The book's test-run set-up, a pytest plugin (``-p nnbook.pytest_plugin`` in pyproject.toml).

Loaded first, in the run's main process and in each xdist worker.

* **What each test is**, as a marker: ``notebook`` (strict nbval of a chapter, and the
  run of its student copy), ``integration`` (tests that start kernels, servers, process
  pools or whole builds: the modules of :data:`INTEGRATION`, and single tests marked so
  in their module), ``unit`` (everything else, quick and self-contained).
  ``make unit`` runs ``-m unit``.
* **Kernels**: nbval's kernels get private IPC sockets (``execute.IsolatedKernelManager``)
  and fork from one process that has already imported torch and scikit-learn
  (``warm_kernels.serving``): a kernel is ready in 0.6 s instead of 4.4 s.
  ``make execute-check`` shows that fresh interpreters give the same outputs.
* **One cold result cache**: the whole run shares one new, empty cache
  (``NNBOOK_CACHE_DIR``, see ``nh.cache_dir``), never the working tree's: strict nbval
  computes every stored output from scratch, and the student-copy runs then read its
  fits. The summary counts hits and misses; after a run that passed, its fits are added
  to the working tree's cache (``_output/cache``), where JupyterLab and grading find them.
  ``NNBOOK_TEST_CACHE_DIR=_output/cache make nbval`` runs against that warm cache
  instead: it checks that cache hits reproduce every stored output.
* **Schedule** (``pytest -n 3 --dist loadscope``): a chapter's nbval cells and its
  student copy form one work unit, so one worker runs them one after the other (the
  copy second, reading the fits); a test module is one unit, as loadscope makes it.
  Units go out costliest chapter first (``book.CHAPTERS_BY_COST``, with the heavy test
  modules placed among them), then the unit tests fill the gaps. (``--dist loadgroup``
  with ``xdist_group`` marks would say the same without a scheduler of our own, but
  with the pinned pytest 9.2 and pytest-xdist 3.8 it groups nothing: xdist tags a
  test's ``item._nodeid``, which pytest 9.2 no longer reads; the cells of one notebook
  then run on different workers and fail: pytest-xdist issue 1386.)
* A run of only the site tests (``tests_site/``) executes no notebook: it gets none of
  the kernels and cache set-up.
* nbval imports nbformat, which imports jsonschema, which imports the optional package
  rfc3987-syntax (installed for JupyterLab) if it can: that builds 38 parsers, about 1 s
  of CPU in every test process, for jsonschema's "iri" format checks only. nbformat
  validates notebooks without format checks, so test processes go without it
  (``tests/test_environment.py`` checks that notebooks are still validated).
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest

sys.modules.setdefault("rfc3987_syntax", None)      # `import rfc3987_syntax` raises ImportError

from nnbook import ROOT, book  # noqa: E402

KINDS = ("unit", "notebook", "integration")

INTEGRATION = {"test_grade.py": "07", "test_warm_kernels.py": "09", "test_kit.py": "03",
               "test_student_markdown.py": None, "test_execute.py": None}
"""Test modules that start kernels, servers or whole builds, each with the chapter it costs
about as much as (it goes out right after that chapter's group), or None (with the unit
tests). Their tests are marked ``integration``."""

NOTEBOOK_MODULES = ("test_student.py",)
"""Test modules that run chapter notebooks (the student copies): marked ``notebook``."""


def pytest_configure(config):
    for kind, what in zip(KINDS, ("quick, self-contained checks (make unit)",
                                  "a chapter notebook run: strict nbval or its student copy",
                                  "starts kernels, servers or whole builds")):
        config.addinivalue_line("markers", f"{kind}: {what}")
    config.option.loadscopereorder = False           # keep the order set below
    if not _runs_notebooks(config):
        return
    import nbval.kernel

    import nncache
    from nnbook import warm_kernels
    from nnbook.execute import IsolatedKernelManager

    # nbval starts its kernels through this name; private IPC sockets mean that two
    # kernels started at once by two workers never share a port
    nbval.kernel.KernelManager = IsolatedKernelManager
    if hasattr(config, "workerinput"):
        return                                       # a worker inherits the environment below

    chosen = os.environ.get("NNBOOK_TEST_CACHE_DIR")
    folder = tempfile.mkdtemp(prefix="nnbook-test-cache-")
    config._nnbook_run = folder
    if chosen:          # a maintainer's check that a warm cache replays every output exactly
        config._nnbook_book_cache = None
        os.environ["NNBOOK_CACHE_DIR"] = os.path.abspath(chosen)
    else:
        config._nnbook_book_cache = nncache.cache_dir()   # the working tree's cache, or None
        os.environ["NNBOOK_CACHE_DIR"] = os.path.join(folder, "cache")
    os.environ["NNBOOK_CACHE_LOG"] = os.path.join(folder, "lookups.log")
    os.environ["NNBOOK_WARM_LOG"] = os.path.join(folder, "kernels.log")
    # the workers already keep both cores busy: each kernel's sweeps run serially
    # (nh.sweep's results do not depend on it), sparing each kernel two worker processes,
    # and its matrix products on one thread (4% fewer CPU seconds: docs/speed.md)
    os.environ.setdefault("LOKY_MAX_CPU_COUNT", "1")
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    config._nnbook_warm = contextlib.ExitStack()     # closed in pytest_unconfigure
    config._nnbook_warm.enter_context(warm_kernels.serving())


def _runs_notebooks(config) -> bool:
    """False for a run of only the site tests, which render and browse but execute nothing."""
    site = ROOT / "tests_site"
    paths = [Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
             for arg in config.args]
    return not paths or not all(p == site or site in p.parents for p in paths)


@pytest.hookimpl(tryfirst=True)     # before -m selects by kind
def pytest_collection_modifyitems(config, items):
    """Mark each test with its kind; sort the costliest work first."""
    for item in items:
        if any(item.get_closest_marker(kind) for kind in KINDS):
            continue                                  # the test says itself what it is
        name = item.path.name
        kind = ("notebook" if _chapter(item) or name in NOTEBOOK_MODULES else
                "integration" if name in INTEGRATION else "unit")
        item.add_marker(kind)
    items.sort(key=_rank)      # a stable sort: cells keep their order within a notebook


def _chapter(item):
    """The chapter notebook an item runs (nbval cell or student copy), else None."""
    if item.path.suffix == ".ipynb":
        return item.path.stem
    chapter = getattr(item.cls, "chapter", None)
    return chapter.stem if chapter is not None else None


def _rank(item):
    chapter = _chapter(item)
    if chapter:
        rank, after = book.cost_rank(chapter), 0
    elif INTEGRATION.get(item.path.name):
        rank, after = book.cost_rank(INTEGRATION[item.path.name]), 1
    else:
        rank, after = len(book.CHAPTERS_BY_COST) + 1, 0      # unit tests last
    return (rank, after, chapter or "", item.path.suffix != ".ipynb")   # nbval before copy


def _work_unit(nodeid):
    """xdist work unit of a test id: its chapter for nbval cells and student copies
    ("chapters/07-x.ipynb::Cell 3" and "...::TestStudentCopy_07_x::test_..." -> "07_x"),
    else, as loadscope does, its module or class."""
    path, _, rest = nodeid.partition("::")
    if path.endswith(".ipynb"):
        return os.path.basename(path)[: -len(".ipynb")].replace("-", "_")
    if rest.startswith("TestStudentCopy_"):
        return rest.split("::")[0][len("TestStudentCopy_"):]
    return nodeid.rsplit("::", 1)[0]


@pytest.hookimpl(optionalhook=True)      # an xdist hook: runs without xdist too
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadscope`` with a chapter's nbval run and student copy in one unit."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ChapterScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return _work_unit(nodeid)

    return ChapterScheduling(config, log)


def pytest_collection_finish(session):
    """The test modules have imported the libraries (torch, scikit-learn, ...): keep their
    objects out of the garbage collector's scans for the rest of the run."""
    gc.freeze()


def pytest_sessionfinish(session, exitstatus):
    """After a run that passed, add its fits to the working tree's cache (never replacing a
    file), so that JupyterLab and grading (``nnbook.grade``) find them there."""
    config = session.config
    folder, cache = getattr(config, "_nnbook_run", None), getattr(config, "_nnbook_book_cache", None)
    if not folder or cache is None or exitstatus != 0:
        return
    for entry in Path(folder, "cache").glob("*/*.pkl"):
        target = cache / entry.parent.name / entry.name
        if entry.name.startswith(".") or target.exists():
            continue
        with contextlib.suppress(OSError):
            target.parent.mkdir(parents=True, exist_ok=True)
            book.write_atomically(target, entry.read_bytes())


def pytest_unconfigure(config):
    if getattr(config, "_nnbook_warm", None):
        config._nnbook_warm.close()                   # stops the warm server
    folder = getattr(config, "_nnbook_run", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def pytest_terminal_summary(terminalreporter, config):
    folder = getattr(config, "_nnbook_run", None)
    if not folder:
        return
    kernels, lookups = Path(folder, "kernels.log"), Path(folder, "lookups.log")
    if kernels.exists():
        lines = [line.strip() for line in kernels.read_text().splitlines() if line.strip()]
        ways = Counter(line.split()[0] for line in lines)
        why = sorted({line.split(" ", 1)[1] for line in lines if line.startswith("fresh ")})
        terminalreporter.write_line(
            f"warm kernels: {ways['forked']} forked from the warm server, {ways['fresh']} "
            "refused and started fresh" + (f" ({'; '.join(why[:3])})" if why else ""))
    if lookups.exists():
        counts = Counter(line.split()[0] for line in lookups.read_text().splitlines() if line)
        hits, misses = counts["hits"], counts["misses"]
        terminalreporter.write_line(
            f"result cache: {hits} hits, {misses} misses "
            f"({hits / max(1, hits + misses):.0%} of the fits were read, not computed)")
