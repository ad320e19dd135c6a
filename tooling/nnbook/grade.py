"""Grade a class's student notebooks: a folder of submissions in, a gradebook out.

    python -m nnbook.grade SUBMISSIONS [--out DIR] [--chapters 01,04] [--cell-timeout 120]
                           [--timeout 600] [--jobs 2]
    make grade SUBMISSIONS=path/to/folder            # the same, writing to _grades/

**Layout of the submissions folder.** One sub-folder per student, or one file-name
prefix per student; both may be mixed, and any chapter may be missing::

    submissions/alice/07-gradient-descent.ipynb      # student "alice"
    submissions/bob_07-gradient-descent.ipynb        # student "bob"

A file is matched to its chapter by the chapter's file name at the end of its own
name (``07-gradient-descent``); a renamed file still counts if its name holds the
chapter number after the student's name (``bob_07.ipynb``, ``bob-ch07-gd.ipynb``).
Other files are ignored.

**What happens to each submission.** It is copied (the code cells only, outputs
dropped) into an empty temporary folder and run there top to bottom, as
"Restart Kernel and Run All Cells" would, in a new kernel process of this Python
environment with a time limit per cell (so that an endless loop stops soon), one
per notebook, a memory limit and a file-size limit, two notebooks at a time. On Linux each kernel is forked from one process that
has imported the libraries (``warm_kernels``), which saves a few seconds of
imports per notebook and shares nothing with other submissions (``--fresh-kernels``
starts each as a new interpreter instead). The submitted file is only read. Right before each
exercise's check cell runs, the grader reads the kernel's variable ``answer``
as plain JSON data (numbers, strings, nested lists) and computes the verdict
*outside* the kernel with :func:`nnexercises.verdict`. Printed verdicts are
never read, so editing the check cell, printing "Correct!" or redefining
``nh.check`` earns nothing, and the answer key is never sent to a student kernel.

**How the exercises are found**: by the marks ``make student`` writes into the
cells' metadata, or by the check calls (the convention: :mod:`nnbook.cells`).
Then, for each exercise:

* the answer read is the value of ``answer`` just before the first check cell
  that follows the exercise's (last) answer cell, so cells a student inserts
  between the two count; if no check cell follows (deleted, or moved above), it is
  read right after the answer cell (noted in the feedback);
* a duplicated answer cell: the last copy counts (noted);
* a deleted answer cell: the exercise is "not checked" (the value of ``answer``
  there could belong to another exercise);
* cells moved elsewhere in the notebook are graded where they are;
* an error in a check cell (e.g. ``answer`` undefined because its cell was
  deleted) is noted and the run goes on: check cells are the book's, not the
  student's work.

**When a submission goes wrong** it fails alone, with its reason in the gradebook,
the feedback and the summary: not valid JSON or not a notebook, another
chapter's notebook under this chapter's name, an exception in a student cell
(run stops there, as Run All does: the exercises before it count, the rest are
"not checked", and the failing cell, its line and the exercise it belongs to are
named), a time limit, a kernel that dies (memory, a crash), more output than
``--max-output-mb``.

**The assignment.** ``--chapters 01,04`` grades those chapters only: the gradebook's
columns, "out of" and the feedback count them alone; other chapters' files are
reported, not graded.

**Outputs** (in ``--out``): ``gradebook.csv`` (a row per student; a column per
exercise, named as the student copies number it, "1.1 params-4323", with 1 for
correct and 0 otherwise; exercise columns and chapter totals empty when the chapter
was not handed in; the overall total, "out of", and the problems),
``feedback/<student>.md`` (each exercise: correct / not quite with the value read
and the hint the student saw / not answered / not checked and why),
``results.json`` (everything, the value read for each answer included); a summary
is printed at the end.

**The result cache.** Each kernel gets a private copy of the book's result cache
(``_output/cache``, see ``nnhelpers.cache_dir``; ``make test`` fills it), so a fit a
student did not change is read instead of recomputed (``--cache off`` to turn it
off, or ``--cache FOLDER``). Private, because cache entries are pickles: what one
kernel writes there, no other kernel ever loads. A forked kernel's copy is a
``tmpfs`` in a user and mount namespace of its own, which no other process sees,
made of the snapshot's files whose digests were recorded before any kernel ran
(``warm_kernels``); where Linux allows no such namespace, that kernel runs with the
cache off. (A kernel started fresh, ``--fresh-kernels``, gets a plain copy.)

**This runs untrusted code.** The temporary folder, the limits (set in the forked
kernel before any of its code runs), the private cache copy, a warm server that
refuses requests from kernels and their descendants, and killing the kernel's
whole process group at the end stop accidents and the attacks the tests plant;
they do not stop a student who means harm from reading or writing what the grading
user can elsewhere. Run the grader as a separate user with no access to anything
else, or in a container (README.md, "Grading").
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nnbook import ROOT, warm_kernels
from nnbook.book import CHAPTERS_DIR, cost_rank
from nnbook.cells import CHECK_CALL, exercise_cells, is_check_cell, mark

DEFAULT_TIMEOUT = 600          # seconds per notebook (chapter 7 takes 1-2 minutes)
DEFAULT_CELL_TIMEOUT = 120     # seconds per cell: the slowest cell of the book takes 16 s uncached
#                                (chapter 7, a busy 2-core machine, 2026-12-05): 7x that
DEFAULT_MEMORY_MB = 6000       # address-space limit of a student kernel
DEFAULT_FILE_MB = 200          # largest file a student kernel may write
DEFAULT_MAX_OUTPUT_MB = 50     # output a notebook may print before grading stops
MAX_NOTEBOOK_MB = 100          # larger submitted files are refused unread
MAX_ANSWER_CHARS = 200_000     # an answer larger than this as JSON is not read
NOT_RUN = "the notebook was not run (see the problem above)"


# --------------------------------------------------------------------------
# Answers out of the kernel, as plain data
# --------------------------------------------------------------------------

# Runs in the student's kernel right before a check cell, in a namespace of its own
# (it binds no name of the student's), and prints one line framed by a random token.
# The conversion is nnexercises.to_plain itself, sent as source: the key stays here.
_DUMP = r'''
import json, numbers
from decimal import Decimal
PLAIN
def _dump(ns, token, limit):
    if "answer" not in ns:
        out = {"__nnbook__": "undefined"}
    else:
        out = to_plain(ns["answer"])
    text = json.dumps(out)
    if len(text) > limit:
        text = json.dumps({"__nnbook__": "too large", "chars": len(text)})
    try:
        shell = get_ipython()       # IPython's builtin: the student's namespace cannot hide it
    except NameError:
        shell = None
    if shell is not None:           # a display message arrives even if sys.stdout was replaced
        shell.display_pub.publish({"text/plain": token + text + token})
    else:
        print(token + text + token)
_dump(_ns, TOKEN, LIMIT)
'''


_PLAIN_SOURCE: list[str] = []


def _plain_source() -> str:
    """The source of ``nnexercises.to_plain``, read once (grade_class reads it before the
    worker processes start, so an edit of nnexercises.py during grading changes nothing)."""
    if not _PLAIN_SOURCE:
        import inspect

        import nnexercises

        source = inspect.getsource(nnexercises._plain) + "\n" + inspect.getsource(nnexercises.to_plain)
        namespace = {}
        exec("import numbers\nfrom decimal import Decimal\n" + source, namespace)
        probe = [(1, 2.5), "x", None]
        if namespace["to_plain"](probe) != nnexercises.to_plain(probe):
            raise RuntimeError("nnexercises.py changed while it was read: run the grader again")
        _PLAIN_SOURCE.append(source)
    return _PLAIN_SOURCE[0]


def dump_code(token: str) -> str:
    """The code that prints the kernel's ``answer`` as JSON between two ``token``."""
    body = (_DUMP.replace("PLAIN", _plain_source()).replace("TOKEN", repr(token))
            .replace("LIMIT", str(MAX_ANSWER_CHARS)))
    return f"exec({body!r}, {{'_ns': globals()}})"


def read_dump(text: str, token: str):
    """The plain answer printed by :func:`dump_code`, or a dict saying why there is none."""
    parts = text.split(token)
    if len(parts) < 3:
        return {"__nnbook__": "unreadable"}
    try:
        return json.loads(parts[1])
    except ValueError:
        return {"__nnbook__": "unreadable"}


@dataclass
class Outcome:
    """One exercise's result: status is correct / not quite / not answered / not checked."""
    status: str
    hint: str = ""
    why: str = ""          # for "not checked": the reason
    note: str = ""         # something odd about the cells, told to the student
    value: object = None   # the answer read out of the kernel, as plain JSON data


def judge(name: str, plain) -> Outcome:
    """The verdict on a plain answer read out of a kernel, computed here, not there."""
    import nnexercises

    if isinstance(plain, dict) and "__nnbook__" in plain:
        kind = plain["__nnbook__"]
        if kind == "undefined":
            return Outcome("not answered", why="`answer` was never assigned")
        elif kind == "too large":
            return Outcome("not quite", hint="the answer is far larger than any exercise expects")
        else:
            return Outcome("not checked", why="the grader could not read `answer` out of the "
                           "kernel (was print or json redefined?)")
    plain = nnexercises.to_plain(plain)
    result = nnexercises.verdict(name, plain)
    if result.status == "unknown":
        return Outcome("not checked", why=f"{name!r} is not in the answer key", value=plain)
    return Outcome(result.status, hint=result.hint, value=plain)


def shown(value, limit: int = 80) -> str:
    """An answer read out of a kernel, as the feedback shows it (numbers as given)."""
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------
# Running one submission
# --------------------------------------------------------------------------

@dataclass
class NotebookResult:
    student: str
    chapter: str
    path: str
    exercises: dict[str, dict] = field(default_factory=dict)   # name -> asdict(Outcome)
    problem: str = ""          # why the submission (or part of it) could not be graded
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def correct(self) -> int:
        return sum(o["status"] == "correct" for o in self.exercises.values())


def chapter_exercises(chapter: str) -> list[str]:
    """The exercises of a chapter (its file stem), in the answer key's order."""
    import nnexercises

    return [name for name, stem in nnexercises.EXERCISES.items() if stem == chapter]


def chapter_of(name: str) -> str | None:
    import nnexercises

    return nnexercises.EXERCISES.get(name)


def _describe(nb, index: int, line: int | None = None) -> str:
    """'code cell 7 (`answer = model.score(...`)', counting code cells from 1; with
    ``line``, that line of the cell instead of its first one: 'code cell 7, line 3 (`...`)'."""
    number = sum(c.cell_type == "code" for c in nb.cells[: index + 1])
    lines = nb.cells[index].source.splitlines()
    if line is not None and 1 <= line <= len(lines):
        text, where = lines[line - 1].strip(), f"code cell {number}, line {line}"
    else:
        text, where = next((ln for ln in lines if ln.strip()), ""), f"code cell {number}"
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{where} (`{text}`)"


def failing_line(traceback: str) -> int | None:
    """The line of the cell where an error was raised, from the kernel's traceback
    (IPython names the cell being run ``Cell In[N], line K`` in its first frame)."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", traceback or "")
    found = re.search(r"Cell In\[\d*\], line (\d+)", plain)
    return int(found.group(1)) if found else None


def _cell_roles(nb) -> dict[int, tuple[str, str]]:
    """{cell index: (exercise, "answer" | "check")} of a submission's exercise cells."""
    roles = {}
    for name, entry in exercise_cells(nb).items():
        roles.update({i: (name, "answer") for i in entry.answer})
        roles.update({i: (name, "check") for i in entry.check})
    return roles


def _exercise_label(name: str, numbers: dict) -> str:
    number = numbers.get(name, "")
    return f"exercise {number} (`{name}`)" if number else f"exercise `{name}`"


def read_submission(path: Path):
    """The notebook in ``path``; ValueError with a student-readable reason if it is none."""
    import nbformat

    size = path.stat().st_size
    if size > MAX_NOTEBOOK_MB * 2**20:
        raise ValueError(f"the file is {size / 2**20:.0f} MB, more than {MAX_NOTEBOOK_MB} MB: "
                         "clear the outputs (Edit > Clear Outputs of All Cells) and hand it in again")
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"not a notebook: the file is not valid JSON ({error}); "
                         "hand in the .ipynb file saved by JupyterLab") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise ValueError("not a notebook: valid JSON but without notebook cells; "
                         "hand in the .ipynb file saved by JupyterLab")
    try:
        with warnings.catch_warnings():     # e.g. duplicate cell ids of copied cells
            warnings.simplefilter("ignore")
            nb = nbformat.reads(json.dumps(data), as_version=4)
    except Exception as error:  # nbformat raises several kinds
        raise ValueError(f"not a readable notebook ({type(error).__name__}: {error})") from None
    for cell in nb.cells:
        if cell.get("cell_type") not in ("code", "markdown", "raw") or \
                not isinstance(cell.get("source", ""), str):
            raise ValueError("not a readable notebook: a cell has no type or no text")
        cell.setdefault("metadata", {})
    return nb


def plan_exercises(nb, chapter: str, result: NotebookResult) -> dict[int, list[str]]:
    """Where to read each exercise's answer: {cell index to read before: [names]}.

    Index ``len(nb.cells)`` means after the last cell. Exercises that cannot be
    read get their outcome in ``result`` right away.
    """
    expected = chapter_exercises(chapter)
    cells = exercise_cells(nb)
    reads: dict[int, list[str]] = {}
    for name in expected:
        entry = cells.get(name)
        if entry is None or (not entry.answer and not entry.check):
            result.exercises[name] = asdict(Outcome(
                "not checked", why="its answer and check cells were deleted from the notebook"))
            continue
        if not entry.answer:
            result.exercises[name] = asdict(Outcome(
                "not checked", why="its answer cell (`answer = ...`) was deleted; put it back "
                "above the check cell"))
            continue
        notes = []
        last_answer = max(entry.answer)
        if len(entry.answer) > 1:
            notes.append(f"the answer cell appears {len(entry.answer)} times; the last one counts")
        after = [i for i in entry.check if i > last_answer]
        if after:
            read_at = min(after)
            if len(entry.check) > 1:
                notes.append(f"the check cell appears {len(entry.check)} times; the answer is "
                             "read before the first check cell below the answer cell")
        else:
            read_at = last_answer + 1
            notes.append("no check cell below the answer cell (deleted or moved); the answer "
                         "is read right after the answer cell")
        result.exercises[name] = {"read_at": read_at, "note": "; ".join(notes)}
        reads.setdefault(read_at, []).append(name)
    return reads


def wrong_chapter(nb, chapter: str) -> str:
    """A reason if ``nb`` holds another chapter's exercises and none of ``chapter``'s."""
    names = set(exercise_cells(nb))
    if names & set(chapter_exercises(chapter)):
        return ""
    others = sorted({chapter_of(n) for n in names if chapter_of(n)})
    if others:
        return (f"this file holds the exercises of {', '.join(others)}, not of {chapter}: "
                f"hand in each chapter's notebook under its own name")
    return ""


def _kernel_manager_class(memory_mb: int, file_mb: int, prelude: str = ""):
    """An IPC-socket kernel manager whose kernel starts with resource limits.

    ``prelude`` is Python code run in the kernel process before ipykernel starts
    (tests use it to take the repository's helpers off ``sys.path``).
    """
    from nnbook.execute import AsyncIsolatedKernelManager

    code = "import resource\n"
    for limit, megabytes in (("RLIMIT_AS", memory_mb), ("RLIMIT_FSIZE", file_mb)):
        if megabytes:
            code += (f"resource.setrlimit(resource.{limit}, "
                     f"({int(megabytes) * 2**20}, {int(megabytes) * 2**20}))\n")
    code += prelude + "\nimport runpy\nrunpy.run_module('ipykernel_launcher', " \
                      "run_name='__main__', alter_sys=True)\n"

    class LimitedKernelManager(AsyncIsolatedKernelManager):
        def format_kernel_cmd(self, extra_arguments=None):
            cmd = super().format_kernel_cmd(extra_arguments)
            if cmd[1:3] == ["-m", "ipykernel_launcher"]:
                cmd = [cmd[0], "-c", code, *cmd[3:]]
            return cmd

    return LimitedKernelManager


def _client_class():
    from nbclient import NotebookClient

    class GradingClient(NotebookClient):
        """Keeps no student output (only the grader's own cells'), counting its size."""

        keep_outputs = False
        output_chars = 0
        max_output_chars = DEFAULT_MAX_OUTPUT_MB * 2**20
        over_limit = False

        def output(self, outs, msg, display_id, cell_index):
            if self.keep_outputs:
                return super().output(outs, msg, display_id, cell_index)
            self.output_chars += len(json.dumps(msg.get("content", {})))
            if self.output_chars > self.max_output_chars and not self.over_limit:
                self.over_limit = True
                asyncio.ensure_future(self.km.interrupt_kernel())
            return None

    return GradingClient


async def _run(nb, result: NotebookResult, reads: dict[int, list[str]], workdir: Path,
               timeout: float, memory_mb: int, file_mb: int, max_output_mb: float,
               prelude: str = "", cache: str = "off", cpus_per_kernel: int = 1,
               cell_timeout: float = DEFAULT_CELL_TIMEOUT, numbers: dict | None = None,
               private_cache: dict | None = None) -> None:
    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    numbers = numbers or {}
    token = "@@" + secrets.token_hex(16) + "@@"
    run_nb = nbformat.v4.new_notebook()
    client = _client_class()(run_nb, timeout=timeout, kernel_name="python3", record_timing=False,
                             allow_errors=False, shutdown_kernel="immediate",
                             kernel_manager_class=_kernel_manager_class(memory_mb, file_mb, prelude),
                             resources={"metadata": {"path": str(workdir)}})
    client.max_output_chars = int(max_output_mb * 2**20)
    env = dict(os.environ, NNBOOK_OUTPUT_DIR=str(workdir / "_output"), MPLBACKEND="agg",
               PYTHONDONTWRITEBYTECODE="1", NNBOOK_CACHE_DIR=cache,
               # the notebooks graded side by side already keep the cores busy: each
               # kernel's sweeps run serially (nh.sweep's results do not depend on it)
               LOKY_MAX_CPU_COUNT=str(cpus_per_kernel),
               # applied by the warm server in the forked kernel before any of its code runs
               **{warm_kernels.LIMITS_ENV: warm_kernels.limits_text(
                   {"AS": memory_mb * 2**20, "FSIZE": file_mb * 2**20})})
    if private_cache:       # a forked kernel fills a cache folder only it can see
        env[warm_kernels.PRIVATE_CACHE_ENV] = json.dumps(private_cache)
    pending = [name for names in reads.values() for name in names]
    roles = _cell_roles(nb)

    def whose(index: int) -> str:
        """', the answer cell of exercise 4.2 (`iris-accuracy`)' for an exercise's cell."""
        if index not in roles:
            return ""
        name, role = roles[index]
        return f", the {role} cell of {_exercise_label(name, numbers)}"

    def give_up(why: str, index: int | None = None, own: str = "") -> None:
        """Every exercise not yet read is not checked; ``own``: the reason given to the
        exercise whose answer cell (``index``) stopped the run."""
        for name in pending:
            own_cell = index is not None and roles.get(index) == (name, "answer")
            result.exercises[name] = asdict(Outcome(
                "not checked", why=own if own_cell and own else why,
                note=result.exercises[name].get("note", "")))
        pending.clear()

    def cell_limit() -> float:
        return min(cell_timeout, deadline - time.monotonic())

    async def read_answers(index: int) -> None:
        names = reads.get(index, [])
        if not names:
            return
        cell = nbformat.v4.new_code_cell(dump_code(token))
        run_nb.cells.append(cell)
        client.keep_outputs = True
        client.timeout = max(1, math.ceil(cell_limit()))
        try:
            await client.async_execute_cell(cell, len(run_nb.cells) - 1, store_history=False)
        except CellExecutionError:      # the student's code broke what the dump relies on
            cell.outputs = []
        finally:
            client.keep_outputs = False
        printed = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                          for o in cell.outputs)
        plain = read_dump(printed, token)
        for name in names:
            outcome = judge(name, plain)
            outcome.note = result.exercises[name].get("note", "")
            result.exercises[name] = asdict(outcome)
            pending.remove(name)

    check_cells = {i for i, c in enumerate(nb.cells) if is_check_cell(c)}
    started, pgid, index, cell_started = False, None, 0, time.monotonic()
    try:
        async with client.async_setup_kernel(env=env):
            started, pgid = True, getattr(client.km.provisioner, "pgid", None)
            # the limit is for the notebook's code: a kernel's start (e.g. waiting for the
            # warm server to finish its imports) does not count
            deadline = time.monotonic() + timeout
            for index, cell in enumerate(nb.cells):
                await read_answers(index)
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                clean = nbformat.v4.new_code_cell(cell.source)
                run_nb.cells.append(clean)
                if cell_limit() <= 0:
                    raise CellTimeoutError("time limit")
                client.timeout = max(1, math.ceil(cell_limit()))
                cell_started = time.monotonic()
                try:
                    await client.async_execute_cell(clean, len(run_nb.cells) - 1)
                except CellExecutionError as error:
                    if client.over_limit:
                        raise
                    where = _describe(nb, index, failing_line(error.traceback)) + whose(index)
                    if index in check_cells:    # e.g. `answer` undefined: the book's cell, go on
                        result.notes.append(f"{where} raised {error.ename}")
                        continue
                    what = f"{error.ename}: {str(error.evalue).strip()[:200]}"
                    result.problem = f"{where} raised {what}"
                    give_up(f"the notebook stopped at an error in {_describe(nb, index)}"
                            f"{whose(index)}, above this exercise", index,
                            f"its answer cell raised {what} "
                            f"({_describe(nb, index, failing_line(error.traceback))})")
                    return
                if client.over_limit:
                    raise CellExecutionError("", "OutputLimit", "")
            await read_answers(len(nb.cells))
    except (CellTimeoutError, TimeoutError, asyncio.TimeoutError):
        if not started:
            result.problem = "the kernel did not start in time"
            give_up("the kernel did not start")
        else:
            where = _describe(nb, index) + whose(index)
            ran = time.monotonic() - cell_started
            if ran >= cell_timeout - 1:
                result.problem = (f"{where} ran into the time limit of {cell_timeout:.0f} s per "
                                  "cell (an endless loop?); grading stopped there")
            else:
                result.problem = (f"time limit of {timeout:.0f} s per notebook reached while "
                                  f"running {where}")
            give_up(f"the notebook was stopped in {_describe(nb, index)}{whose(index)}, above "
                    "this exercise (time limit)", index,
                    "its answer cell ran out of time (time limit; an endless loop?)")
    except DeadKernelError:
        where = (_describe(nb, index) + whose(index)) if started else "its start"
        result.problem = (f"the Python kernel died while running {where} (out of memory, "
                          "or the code ended the process)")
        give_up("the kernel died before reaching this exercise", index,
                "the kernel died while running its answer cell")
    except CellExecutionError:
        where = _describe(nb, index) + whose(index)
        result.problem = (f"{where} printed more than {max_output_mb:g} MB of output; grading "
                          "stopped there (print less, e.g. a summary instead of whole arrays)")
        give_up("the notebook was stopped before this exercise (too much output)", index,
                "its answer cell printed too much output")
    except Exception as error:  # anything else in the machinery: this notebook alone fails
        result.problem = f"the grader could not run this notebook ({type(error).__name__}: {error})"
        give_up("the notebook could not be run")
    finally:
        if pgid:    # processes the kernel started, also after the kernel itself died
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass
    if client.output_chars > 5 * 2**20 and not client.over_limit:
        result.notes.append(f"the notebook printed {client.output_chars / 2**20:.0f} MB of output")


def grade_notebook(path: str, student: str, chapter: str, timeout: float = DEFAULT_TIMEOUT,
                   memory_mb: int = DEFAULT_MEMORY_MB, file_mb: int = DEFAULT_FILE_MB,
                   max_output_mb: float = DEFAULT_MAX_OUTPUT_MB, prelude: str = "",
                   cache_seed: str | None = None, cpus_per_kernel: int = 1,
                   cell_timeout: float = DEFAULT_CELL_TIMEOUT, numbers: dict | None = None,
                   cache_files: dict | None = None) -> dict:
    """Run one submission in a fresh kernel and judge its exercises; never raises.

    ``cache_seed``: a result cache (see :func:`nnhelpers.cache_dir`) that the
    kernel gets a private copy of; None turns the cache off. ``cache_files``: the
    seed's files and their digests (:func:`warm_kernels.manifest`), recorded before any
    kernel ran: a forked kernel then gets its copy in a folder no other process can
    write, made of the files that still have those digests. ``numbers``:
    {exercise: "4.2"}, to name exercises as the student copies do.
    """
    start = time.perf_counter()
    result = NotebookResult(student, chapter, path)
    try:
        try:
            nb = read_submission(Path(path))
        except ValueError as error:
            result.problem = str(error)
        else:
            result.problem = wrong_chapter(nb, chapter)
        if result.problem:          # said once, in the problem: not again per exercise
            for name in chapter_exercises(chapter):
                result.exercises[name] = asdict(Outcome("not checked", why=NOT_RUN))
            return asdict(result)
        reads = plan_exercises(nb, chapter, result)
        if reads:
            # the kernel runs in <temporary folder>/work/: files it writes there, or one
            # level up, go when the temporary folder is removed
            scratch = Path(tempfile.mkdtemp(prefix="nnbook-grade-"))
            workdir = scratch / "work"
            try:
                workdir.mkdir()
                (workdir / Path(path).name).write_text(json.dumps(_code_only(nb)))
                cache, private = "off", None
                if cache_seed is not None:      # a private copy: what a kernel writes there
                    cache = str(scratch / "cache")          # (pickles) no other kernel reads
                    if cache_files is not None and warm_kernels.server_address():
                        os.mkdir(cache)         # the forked kernel mounts its own over it
                        private = {"seed": cache_seed, "target": cache, "files": cache_files}
                    else:
                        shutil.copytree(cache_seed, cache)
                asyncio.run(_run(nb, result, reads, workdir, timeout, memory_mb, file_mb,
                                 max_output_mb, prelude, cache, cpus_per_kernel,
                                 cell_timeout, numbers, private))
            finally:
                _remove(scratch)
    except Exception as error:  # a bug or a surprise: fail this notebook, not the class
        result.problem = f"the grader failed on this notebook ({type(error).__name__}: {error})"
        for name in chapter_exercises(chapter):
            if "status" not in result.exercises.get(name, {}):
                result.exercises[name] = asdict(Outcome("not checked", why=result.problem))
    result.seconds = time.perf_counter() - start
    return asdict(result)


def _remove(folder: Path) -> None:
    """Remove a kernel's folder, even where the student's code made files read-only."""
    def retry(function, name, _):
        os.chmod(os.path.dirname(name), 0o700)
        os.chmod(name, 0o700)
        function(name)

    shutil.rmtree(folder, onerror=retry)


def _code_only(nb) -> dict:
    """The notebook without outputs: the copy the kernel's folder gets."""
    import nbformat

    copy = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in copy.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return copy


# --------------------------------------------------------------------------
# The class: finding submissions, grading them all, writing the results
# --------------------------------------------------------------------------

def known_chapters() -> list[str]:
    """Chapter file stems that have exercises, in the book's order."""
    import nnexercises

    return list(dict.fromkeys(nnexercises.EXERCISES.values()))


def match_chapter(filename: str, chapters: list[str]) -> tuple[str, str] | None:
    """(student prefix, chapter) for a file name, or None if it names no chapter."""
    stem = filename[: -len(".ipynb")]
    for chapter in chapters:
        if stem.lower().endswith(chapter.lower()):
            return stem[: len(stem) - len(chapter)].rstrip("_- ."), chapter
    by_number = {c[:2]: c for c in chapters}
    found = re.match(r"^(.*?)[_\- .]+(?:ch(?:apter)?[_\- ]?)?(\d\d)(?:\D.*)?$", stem, re.I)
    if found and found.group(2) in by_number:
        return found.group(1), by_number[found.group(2)]
    return None


def find_submissions(folder: Path, chapters: list[str]):
    """({(student, chapter): path}, [problems]) for a submissions folder."""
    found: dict[tuple[str, str], list[Path]] = {}
    problems: list[tuple[str, str, str]] = []      # (student, file, reason)
    for path in sorted(folder.rglob("*.ipynb")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):      # .ipynb_checkpoints, hidden
            continue
        match = match_chapter(path.name, chapters)
        student = rel.parts[0] if len(rel.parts) > 1 else (match[0] if match else "")
        if not student:
            problems.append(("?", str(rel), "cannot tell whose file this is: put it in a folder "
                             "named after the student or prefix the file name (alice_07-...)"))
            continue
        if match is None:
            problems.append((student, str(rel), "the file name names no chapter with exercises"))
            continue
        found.setdefault((student, match[1]), []).append(path)
    chosen = {}
    for key, paths in found.items():
        chosen[key] = max(paths, key=lambda p: (p.stat().st_mtime, str(p)))
        for other in paths:
            if other != chosen[key]:
                problems.append((key[0], str(other.relative_to(folder)),
                                 f"a second file for {key[1]}: graded the newer "
                                 f"{chosen[key].relative_to(folder)} instead"))
    return chosen, problems


def grade_class(folder: Path, out: Path, jobs: int = 2, timeout: float = DEFAULT_TIMEOUT,
                memory_mb: int = DEFAULT_MEMORY_MB, file_mb: int = DEFAULT_FILE_MB,
                max_output_mb: float = DEFAULT_MAX_OUTPUT_MB, prelude: str = "",
                cache: str | None = "book", echo=print, warm: bool = True,
                chapters: list[str] | None = None,
                cell_timeout: float = DEFAULT_CELL_TIMEOUT) -> dict:
    """Grade every submission in ``folder``; write the results to ``out``; return them.

    ``chapters``: the assignment, as chapter numbers or names (``["01", "04"]``);
    other chapters' files are reported and not graded. Default: every chapter.

    ``cache``: "book" seeds each kernel with a private copy of the book's result
    cache (the fits ``make test`` or ``make execute`` computed: a student's
    unchanged fit is then read, not recomputed); a folder path seeds it from there;
    None or "off" turns the cache off.

    ``warm``: fork each kernel from one process that has imported the libraries
    (``warm_kernels``; Linux), which spares every notebook the seconds a fresh
    Python spends importing torch and scikit-learn; False starts each kernel as a
    new interpreter. Both run each submission in a process and folder of its own.
    """
    folder, out = Path(folder).resolve(), Path(out).resolve()
    if not folder.is_dir():
        raise SystemExit(f"{folder} is not a folder: give the folder of submissions, "
                         "e.g. make grade SUBMISSIONS=path/to/folder")
    if out == folder or folder in out.parents:
        raise SystemExit(f"write the grades outside the submissions folder (not {out})")
    every = known_chapters()
    assigned = assignment(chapters, every)
    _plain_source()
    chosen, problems = find_submissions(folder, every)
    for key in [k for k in chosen if k[1] not in assigned]:
        problems.append((key[0], str(chosen.pop(key).relative_to(folder)),
                         f"{key[1]} is not part of this assignment: not graded"))
    students = sorted({s for s, _ in chosen} | {s for s, _, _ in problems if s != "?"})
    titles = exercise_titles(assigned)
    numbers = {name: t["number"] for name, t in titles.items()}
    # slowest chapters first, so that the two workers finish together
    order = sorted(chosen, key=lambda k: (cost_rank(k[1]), k))
    echo(f"Grading {_count(len(chosen), 'notebook')} of {_count(len(students), 'student')}, "
         f"{jobs} at a time (time limits: {cell_timeout:.0f} s per cell, {timeout:.0f} s per "
         "notebook).")
    results, start = [], time.perf_counter()
    seed_holder = tempfile.TemporaryDirectory(prefix="nnbook-grade-cache-")
    seed = _cache_seed(cache, Path(seed_holder.name) / "cache")
    cache_files = warm_kernels.manifest(seed) if seed else None    # before any kernel runs
    warm_server = warm_kernels.serving() if warm else warm_kernels.turned_off()
    with seed_holder, warm_server, ProcessPoolExecutor(max(1, jobs)) as pool:
        futures = {pool.submit(grade_notebook, str(chosen[k]), k[0], k[1], timeout, memory_mb,
                               file_mb, max_output_mb, prelude, seed,
                               max(1, (os.cpu_count() or 1) // max(1, jobs)),
                               cell_timeout, numbers, cache_files): k for k in order}
        for done, future in enumerate(as_completed(futures), 1):
            student, chapter = futures[future]
            try:
                res = future.result()
            except Exception as error:  # the worker process itself died
                res = asdict(NotebookResult(student, chapter, str(chosen[(student, chapter)]),
                                            problem=f"the grading process failed ({error})"))
                for name in chapter_exercises(chapter):
                    res["exercises"][name] = asdict(Outcome("not checked", why=NOT_RUN))
            results.append(res)
            ok = sum(o["status"] == "correct" for o in res["exercises"].values())
            bar = "#" * (20 * done // len(futures))
            echo(f"[{bar:<20}] {done:>3}/{len(futures)}  {student} {chapter}: {ok}/"
                 f"{len(res['exercises'])} correct ({res['seconds']:.0f} s)"
                 + (f"  PROBLEM: {res['problem']}" if res["problem"] else ""))
    elapsed = time.perf_counter() - start
    results.sort(key=lambda r: (r["student"], r["chapter"]))
    report = {"students": students, "chapters": assigned, "results": results,
              "file_problems": [list(p) for p in problems], "seconds": elapsed,
              "titles": titles}
    write_outputs(report, out)
    echo(summary(report, out))
    return report


def _count(n: int, word: str) -> str:
    """'1 student', '2 students'."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def assignment(chosen: list[str] | None, every: list[str]) -> list[str]:
    """The chapters of an assignment (``["01", "04"]`` or full names), in the book's order;
    SystemExit naming the choices for one that has no exercises."""
    if not chosen:
        return list(every)
    picked = set()
    for item in chosen:
        item = item.strip().removesuffix(".ipynb")
        found = [c for c in every if c == item or (item.isdigit() and c[:2] == item.zfill(2))]
        if not found:
            raise SystemExit(f"--chapters: no chapter with exercises is called {item!r}; "
                             f"choose among {', '.join(c[:2] for c in every)}")
        picked.update(found)
    return [c for c in every if c in picked]


def _cache_seed(cache: str | None, snapshot: Path) -> str | None:
    """A snapshot of the result cache to seed the kernels with (None: cache off)."""
    if cache is None or cache == "off":
        return None
    if cache == "book":
        import nnhelpers

        source = nnhelpers.cache_dir()
    else:
        source = Path(cache)
    if source is not None and source.is_dir():
        shutil.copytree(source, snapshot, ignore=shutil.ignore_patterns(".tmp-*"))
    else:
        snapshot.mkdir(parents=True)
    return str(snapshot)


def exercise_titles(chapters: list[str]) -> dict[str, dict]:
    """{exercise: {"number": "7.2", "title": "A schedule that halves"}}, numbered as on the
    site and in the student copies (empty entries if the chapters cannot be read)."""
    import nbformat

    from nnbook.cells import exercise_headings
    from nnbook.student import load_book

    try:
        book = load_book(ROOT)
    except Exception:           # a broken _quarto.yml: the feedback names exercises only
        book = None
    titles = {}
    for chapter in chapters:
        try:
            headings = exercise_headings(nbformat.read(CHAPTERS_DIR / f"{chapter}.ipynb",
                                                       as_version=4))
        except Exception:
            headings = {}
        for name in chapter_exercises(chapter):
            target = book.labels.get(f"exr-{name}") if book else None
            titles[name] = {"number": target.text.split(" ", 1)[1] if target else "",
                            "title": headings.get(name, "")}
    return titles


def column_name(name: str, titles: dict) -> str:
    """A gradebook column: "1.1 params-4323" (the exercise's number as in the student copies)."""
    number = titles.get(name, {}).get("number", "")
    return f"{number} {name}" if number else name


def chapter_label(chapter: str) -> str:
    """"chapter 1" for "01-neurons-and-networks"."""
    return f"chapter {int(chapter[:2])}" if chapter[:2].isdigit() else chapter


def write_outputs(report: dict, out: Path) -> None:
    import nnexercises

    out.mkdir(parents=True, exist_ok=True)
    titles = report.get("titles", {})
    names = [n for n in nnexercises.EXERCISES if nnexercises.EXERCISES[n] in report["chapters"]]
    by_key = {(r["student"], r["chapter"]): r for r in report["results"]}
    header = ["student", *(column_name(n, titles) for n in names),
              *(f"{chapter_label(c)} total" for c in report["chapters"]), "total",
              "out of", "problems"]
    with open(out / "gradebook.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for student in report["students"]:
            row, totals, problems = [student], [], []
            for name in names:
                res = by_key.get((student, nnexercises.EXERCISES[name]))
                row.append("" if res is None else
                           int(res["exercises"].get(name, {}).get("status") == "correct"))
            for chapter in report["chapters"]:
                res = by_key.get((student, chapter))
                # blank, not 0, for a chapter not handed in
                totals.append("" if res is None else
                              sum(o["status"] == "correct" for o in res["exercises"].values()))
                if res is not None and res["problem"]:
                    problems.append(f"{chapter[:2]}: {res['problem']}")
            problems += [f"{file}: {why}" for s, file, why in report["file_problems"] if s == student]
            handed = [t for t in totals if t != ""]
            writer.writerow(row + totals + [sum(handed) if handed else "", len(names),
                                            " | ".join(problems)])
    feedback = out / "feedback"
    feedback.mkdir(exist_ok=True)
    for student in report["students"]:
        (feedback / f"{_safe(student)}.md").write_text(feedback_text(student, report, by_key))
    (out / "results.json").write_text(json.dumps(report, indent=1))


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "student"


STATUS_WORDS = {"correct": "correct", "not quite": "not quite", "not answered": "not answered",
                "not checked": "could not be checked"}


def feedback_text(student: str, report: dict, by_key: dict) -> str:
    titles = report.get("titles", {})
    total = sum(len(chapter_exercises(c)) for c in report["chapters"])
    correct = sum(r["exercises"][n]["status"] == "correct" for r in report["results"]
                  if r["student"] == student for n in r["exercises"])
    lines = [f"# Feedback for {student}", "",
             f"**{correct} of {total}** exercises correct.", ""]
    for file_student, file, why in report["file_problems"]:
        if file_student == student:
            lines += [f"- `{file}`: {why}", ""]
    for chapter in report["chapters"]:
        res = by_key.get((student, chapter))
        if res is None:
            lines += [f"## {chapter}", "", "Not handed in.", ""]
            continue
        ok = sum(o["status"] == "correct" for o in res["exercises"].values())
        lines += [f"## {chapter}: {ok} of {len(res['exercises'])}", ""]
        if res["problem"]:
            lines += [f"**Problem:** {res['problem']}", ""]
        for note in res["notes"]:
            lines += [f"Note: {note}", ""]
        if all(o.get("why") == NOT_RUN for o in res["exercises"].values()):
            lines += [f"None of its {len(res['exercises'])} exercises could be checked.", ""]
            continue
        for name in chapter_exercises(chapter):
            o = res["exercises"].get(name, {"status": "not checked", "why": "missing"})
            title = titles.get(name, {})
            label = f"Exercise {title['number']}" if title.get("number") else "Exercise"
            label += f": {title['title']}" if title.get("title") else ""
            label += f" (`{name}`)"
            text = f"- {label}: {STATUS_WORDS.get(o['status'], o['status'])}"
            if o["status"] in ("correct", "not quite") and o.get("value") is not None:
                text += f"; your answer: `{shown(o['value'])}`"
            if o["status"] == "not quite" and o.get("hint"):
                text += f". Hint: {o['hint']}"
            if o["status"] == "not checked" and o.get("why"):
                text += f": {o['why']}"
            if o.get("note"):
                text += f" (note: {o['note']})"
            lines.append(text)
        lines.append("")
    return "\n".join(lines)


def summary(report: dict, out: Path) -> str:
    import nnexercises

    results = report["results"]
    lines = ["", f"Graded {_count(len(results), 'notebook')} of "
             f"{_count(len(report['students']), 'student')} in {report['seconds']:.0f} s. "
             f"Results in {out}/ (gradebook.csv, feedback/).",
             "", "Success rate per exercise (of the notebooks handed in):"]
    for name, chapter in nnexercises.EXERCISES.items():
        handed = [r for r in results if r["chapter"] == chapter]
        if chapter not in report["chapters"] or not handed:
            continue
        ok = sum(r["exercises"].get(name, {}).get("status") == "correct" for r in handed)
        lines.append(f"  {column_name(name, report.get('titles', {})):<28} {ok:>3}/{len(handed):<3} "
                     f"({100 * ok / len(handed):.0f} %)")
    failed = [r for r in results if r["problem"]]
    lines += ["", f"Submissions with problems: {len(failed) + len(report['file_problems'])}"]
    lines += [f"  {r['student']} {r['chapter']}: {r['problem']}" for r in failed]
    lines += [f"  {s} {file}: {why}" for s, file, why in report["file_problems"]]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submissions", type=Path, help="folder of submitted notebooks")
    parser.add_argument("--out", type=Path, default=Path("_grades"),
                        help="folder for gradebook.csv and feedback/ (default: _grades)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks run at a time (2)")
    parser.add_argument("--chapters", default="",
                        help="the assignment: chapter numbers, comma-separated (e.g. 01,04); "
                             "default: every chapter with exercises")
    parser.add_argument("--cell-timeout", type=float, default=DEFAULT_CELL_TIMEOUT,
                        help="seconds a single cell may run, so that an endless loop stops "
                             f"soon ({DEFAULT_CELL_TIMEOUT})")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="seconds per notebook, from the moment its kernel is ready "
                             f"({DEFAULT_TIMEOUT})")
    parser.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB,
                        help=f"address-space limit of a kernel, MB ({DEFAULT_MEMORY_MB}; 0: none)")
    parser.add_argument("--max-output-mb", type=float, default=DEFAULT_MAX_OUTPUT_MB,
                        help=f"output a notebook may print ({DEFAULT_MAX_OUTPUT_MB} MB)")
    parser.add_argument("--cache", default="book",
                        help="result cache each kernel gets a private copy of: 'book' (the "
                             "book's _output/cache, default), a folder, or 'off'")
    parser.add_argument("--fresh-kernels", action="store_true",
                        help="start each kernel as a new Python instead of forking it from "
                             "one that has imported the libraries (slower; Linux forks)")
    args = parser.parse_args(argv)
    grade_class(args.submissions, args.out, args.jobs, args.timeout, args.memory_mb,
                DEFAULT_FILE_MB, args.max_output_mb, cache=args.cache,
                warm=not args.fresh_kernels,
                chapters=[c for c in args.chapters.split(",") if c.strip()] or None,
                cell_timeout=args.cell_timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
