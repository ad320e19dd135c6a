"""Test-run set-up: kernels that cannot collide, one cold result cache, and a schedule.

* nbval's kernels get private IPC sockets (see ``execute_notebooks``).
* The whole run shares one new, empty result cache (``NNBOOK_CACHE_DIR``, see
  ``nh.cache_dir``), never the cache of the working tree: strict nbval
  computes every stored output from scratch, and the student-copy runs
  (``tests/test_student.py``) then reuse its fits instead of computing them a
  second time. The terminal summary reports the cache's hits and misses.
  After a run that passed, its fits are added to the working tree's cache
  (``_output/cache``), where JupyterLab runs and grading find them.
  ``NNBOOK_TEST_CACHE_DIR=_output/cache make nbval`` instead runs against that
  (warm) cache: it checks that cache hits reproduce every stored output.
* The xdist workers, like the kernels, are forks of the warm server
  (``warm_kernels.python_command``): each starts with torch and scikit-learn
  already imported.
* Scheduling (``make test`` runs ``pytest -n 3 --dist loadscope`` on our
  2-core machines): each chapter's nbval run and its student-copy run form one
  work unit, so one worker runs them one after the other, the student copy
  second. Units go out slowest chapter first (in the order below, not xdist's
  reordering by number of tests), then the unit tests, one module at a time,
  fill the gaps. The third worker keeps a core busy while another waits (for a
  kernel, a time limit, a process to end).
* Priority: the slowest unit (chapter 7, one process computing for some 45 s) would
  otherwise get only its share of the two cores while the other workers run, and
  finish alone at the end with a core idle. So every process forked from the warm
  server for the xdist workers (the workers, their kernels) starts at niceness 10,
  except that unit's kernels (``NNBOOK_NICE``, see ``warm_kernels``): it gets nearly a
  core of its own, the rest shares the other and takes both once it is done. (A kernel
  started fresh, which the run does only to test that path, runs at normal priority.)
"""

import contextlib
import gc
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import nbval.kernel
import pytest

import warm_kernels
from execute_notebooks import IsolatedKernelManager

# nbval starts its kernels through this name; give them private IPC sockets so
# that two kernels started at once by two xdist workers never share a port.
nbval.kernel.KernelManager = IsolatedKernelManager

# Work units by their time in the test run, slowest first: chapters by number (sweeps with
# cross-validation, long trainings), test modules by path (test_grade grades a whole class).
# Chapters not listed follow these, in reading order, then the other unit tests.
SLOWEST_FIRST = ("07", "10", "tests/test_grade.py", "09", "tests/test_warm_kernels.py", "06", "03",
                 "tests/test_kit.py", "A-", "02", "05", "01", "04", "08")


# Niceness of all the test run's work except the longest unit's kernels. Without it the
# longest unit (chapter 7's sweeps, one process) gets only its share of the two cores
# while the other workers run, and then finishes alone with a core idle for 10 s.
BACKGROUND_NICENESS = 10


def pytest_configure(config):
    if not hasattr(config, "workerinput"):          # the controller (or a run without xdist)
        import nnhelpers

        chosen = os.environ.get("NNBOOK_TEST_CACHE_DIR")
        if chosen:          # a maintainer's check that a warm cache replays every output exactly
            folder = tempfile.mkdtemp(prefix="nnbook-test-log-")
            config._nnbook_book_cache = None
            os.environ["NNBOOK_CACHE_DIR"] = os.path.abspath(chosen)
        else:
            config._nnbook_book_cache = nnhelpers.cache_dir()   # the working tree's cache, or None
            folder = tempfile.mkdtemp(prefix="nnbook-test-cache-")
            # inherited by the xdist workers and by every kernel they start
            os.environ["NNBOOK_CACHE_DIR"] = os.path.join(folder, "cache")
        config._nnbook_cache = folder
        os.environ["NNBOOK_CACHE_LOG"] = os.path.join(folder, "lookups.log")
        # the workers already keep both cores busy: each kernel's sweeps run serially
        # (nh.sweep's results do not depend on it), sparing each kernel two worker processes
        os.environ.setdefault("LOKY_MAX_CPU_COUNT", "1")
        # kernels fork from one process that has imported the libraries (warm_kernels);
        # `make execute-check` shows that fresh interpreters give the same outputs
        config._nnbook_warm = contextlib.ExitStack()     # closed in pytest_unconfigure
        config._nnbook_warm.enter_context(warm_kernels.serving())
        os.environ["NNBOOK_WARM_LOG"] = os.path.join(folder, "kernels.log")
        # the xdist workers fork from it too: they find the libraries imported
        if warm_kernels.server_address():
            config.option.tx = warm_kernels.forked_worker_specs(config.getoption("tx", None) or [])
            os.environ["NNBOOK_FORKED_WORKERS"] = "1"     # for the test that checks it
            if config.option.tx:
                # the longest unit comes first on the CPU: the workers and the kernels they
                # fork run at niceness 10, the longest unit's kernels at 0 (pytest_runtest_setup)
                os.environ[warm_kernels.NICE_ENV] = str(BACKGROUND_NICENESS)
    config.option.loadscopereorder = False           # keep the order set below


def pytest_sessionfinish(session, exitstatus):
    """After a run that passed, add its fits to the working tree's cache (never replacing a
    file), so that JupyterLab and grading (scripts/grade.py) find them there."""
    config = session.config
    folder, book = getattr(config, "_nnbook_cache", None), getattr(config, "_nnbook_book_cache", None)
    if not folder or book is None or exitstatus != 0:
        return
    for entry in Path(folder, "cache").glob("*/*.pkl"):
        target = book / entry.parent.name / entry.name
        if entry.name.startswith(".") or target.exists():
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".tmp-{os.getpid()}-{entry.name}")
            shutil.copyfile(entry, temporary)
            os.replace(temporary, target)           # readers see no file or a whole one
        except OSError:
            pass


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before a test starts its kernels (nbval starts one at a notebook's first cell): the
    longest unit's kernels run at normal priority, the rest at ``BACKGROUND_NICENESS``."""
    if os.environ.get(warm_kernels.NICE_ENV):
        chapter = _chapter(item)
        first = chapter is not None and chapter[:2] == SLOWEST_FIRST[0]
        os.environ[warm_kernels.NICE_ENV] = "0" if first else str(BACKGROUND_NICENESS)


def pytest_collection_finish(session):
    """The test modules have imported the libraries (torch, scikit-learn, ...): keep their
    objects out of the garbage collector's scans for the rest of the run."""
    gc.freeze()


def pytest_unconfigure(config):
    if getattr(config, "_nnbook_warm", None):
        config._nnbook_warm.close()                   # stops the warm server
    folder = getattr(config, "_nnbook_cache", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def _chapter(item):
    """The chapter notebook an item runs (nbval cell or student copy), else None."""
    if item.path.suffix == ".ipynb":
        return item.path.stem
    chapter = getattr(item.cls, "chapter", None)
    return chapter.stem if chapter is not None else None


def _rank(item):
    chapter = _chapter(item)
    name = chapter[:2] if chapter else item.nodeid.split("::")[0]
    if name in SLOWEST_FIRST:
        order = SLOWEST_FIRST.index(name)
    else:
        order = len(SLOWEST_FIRST) + (chapter is None)      # other unit tests last
    return (order, chapter or "", item.path.suffix != ".ipynb")   # nbval run before student copy


def pytest_collection_modifyitems(items):
    items.sort(key=_rank)      # a stable sort: cells keep their order within a notebook


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


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadscope`` with a chapter's nbval run and student copy in one unit."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ChapterScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return _work_unit(nodeid)

    return ChapterScheduling(config, log)


def pytest_terminal_summary(terminalreporter, config):
    folder = getattr(config, "_nnbook_cache", None)
    log = os.path.join(folder, "lookups.log") if folder else None
    kernels = os.path.join(folder, "kernels.log") if folder else None
    if kernels and os.path.exists(kernels):
        with open(kernels) as f:
            lines = [line.strip() for line in f if line.strip()]
        ways = Counter(line.split()[0] for line in lines)
        why = sorted({line.split(" ", 1)[1] for line in lines if line.startswith("fresh ")})
        terminalreporter.write_line(
            f"warm kernels: {ways['forked']} forked from the warm server, {ways['fresh']} "
            "refused and started fresh" + (f" ({'; '.join(why[:3])})" if why else ""))
    if not log or not os.path.exists(log):
        return
    with open(log) as f:
        counts = Counter(line.split()[0] for line in f if line.strip())   # "hits nh.train", ...
    hits, misses = counts["hits"], counts["misses"]
    terminalreporter.write_line(
        f"result cache: {hits} hits, {misses} misses "
        f"({hits / max(1, hits + misses):.0%} of the fits were read, not computed)")
