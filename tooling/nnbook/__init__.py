"""The course tooling: what builds, checks, tests and grades the book.

Students never import this package; it imports the book's helpers (``scripts/``),
never the reverse. Each module is run with ``python -m nnbook.<module>`` (see the
Makefile):

* ``book``: the shared conventions (the chapters and their cost order, durations, atomic
  writes), each defined once;
* ``execute``: re-run notebooks in place, or check that a re-run changes nothing;
* ``student``: the student copies of the chapters (no solutions, no outputs);
* ``kit``: the student kit zip;
* ``grade``: grade a class's submitted notebooks;
* ``warm_kernels``: kernels forked from a process that has imported the libraries;
* ``data``: the CSV files in ``data/``;
* ``pytest_plugin``: the test run's set-up (loaded by pytest, see pyproject.toml).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]      # the book's repository
