"""Test-run set-up: kernels that cannot collide, and the slowest notebooks first.

pytest-xdist (``--dist loadscope``) hands out whole notebooks (and whole test
classes) to its workers in collection order. Starting with the chapters that
run sweeps and long trainings, both their nbval run and the run of their
student copy, lets the short ones fill the gaps, so both cores finish together.
"""

import re

import nbval.kernel

from execute_notebooks import IsolatedKernelManager

# nbval starts its kernels through this name; give them private IPC sockets so
# that two kernels started at once by the two xdist workers never share a port.
nbval.kernel.KernelManager = IsolatedKernelManager

SLOWEST_FIRST = ("07", "03", "06")   # sweeps with cross-validation; 300-epoch training; sweeps


def _rank(item):
    for k, chapter in enumerate(SLOWEST_FIRST):
        if re.search(rf"(?<![0-9]){chapter}[-_]", item.nodeid):
            return k
    if item.path.suffix == ".ipynb" or "StudentCopy" in item.nodeid:
        return len(SLOWEST_FIRST)
    return len(SLOWEST_FIRST) + 1


def pytest_collection_modifyitems(items):
    items.sort(key=_rank)      # a stable sort: cells keep their order within a notebook
