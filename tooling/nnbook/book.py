"""The book's shared conventions, each defined once, for the tooling and the tests.

* :data:`ROOT`: the book's repository (defined in ``nnbook/__init__.py``), and
  :data:`CHAPTERS_DIR`, the folder of the chapter notebooks.
* :data:`CHAPTERS_BY_COST`: the chapters by the time their notebook takes to run,
  costliest first (the test run hands them out in this order, see ``pytest_plugin``).
* :data:`DURATION`: a printed wall-clock duration, the one thing that may differ
  between runs of a notebook (``tests/nbval-sanitize.cfg`` hides it from nbval).
* :func:`write_atomically`: readers see no file or a whole one.

The last two belong to the helpers students import (``scripts/nncache.py``): the
result cache prints durations and writes its files that way. The tooling imports
them from there; the helpers never import the tooling.
"""

from __future__ import annotations

from pathlib import Path

from nncache import DURATION, write_atomically  # noqa: F401  (re-exported)
from nnbook import ROOT

CHAPTERS_DIR = ROOT / "chapters"

CHAPTERS_BY_COST = ("07", "10", "09", "06", "03", "A-", "02", "05", "01", "04", "08")
"""Chapter notebooks by the time they take to run, costliest first, as the first
characters of their names (measured with ``make bench``: chapter 7's sweeps take
about 30 s, chapter 8 about 4 s). A chapter not listed counts as the cheapest."""


def chapter_notebooks() -> list[Path]:
    """Every notebook of the book (numbered chapters, then appendices), in reading order."""
    return sorted(CHAPTERS_DIR.glob("*.ipynb"))


def cost_rank(name: str) -> int:
    """Position of a chapter (a notebook's name or stem) in :data:`CHAPTERS_BY_COST`."""
    for rank, prefix in enumerate(CHAPTERS_BY_COST):
        if name.startswith(prefix):
            return rank
    return len(CHAPTERS_BY_COST)
