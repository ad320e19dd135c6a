"""Test-run order: the slowest chapter notebooks start first.

pytest-xdist (``--dist loadscope``) hands whole notebooks to its workers in
collection order. Starting with the notebooks that run sweeps and long
trainings lets the short ones fill the gaps, so both cores finish together.
"""

SLOWEST_FIRST = ("07-", "03-", "06-")   # sweeps with cross-validation; two 300-epoch trainings


def _rank(item):
    name = item.path.name
    for k, prefix in enumerate(SLOWEST_FIRST):
        if name.startswith(prefix) and name.endswith(".ipynb"):
            return k
    return len(SLOWEST_FIRST) + (0 if item.path.suffix == ".ipynb" else 1)


def pytest_collection_modifyitems(items):
    items.sort(key=_rank)      # stable: cells keep their order within a notebook
