"""Shared fixtures: the repository root and the chapter notebooks."""

import matplotlib
import nbformat
import pytest

from nnbook.book import ROOT, chapter_notebooks

matplotlib.use("Agg")

CHAPTERS = chapter_notebooks()                                # every notebook of the book
# Numbered chapters ("01-...") and appendix notebooks ("A-...", listed under `appendices:`).
NUMBERED_CHAPTERS = [p for p in CHAPTERS if p.name[:2].isdigit()]
APPENDIX_NOTEBOOKS = [p for p in CHAPTERS if p not in NUMBERED_CHAPTERS]


@pytest.fixture(scope="session")
def root():
    return ROOT


def read_notebook(path):
    return nbformat.read(path, as_version=4)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(autouse=True)
def _unit_tests_compute_every_fit(request, monkeypatch):
    """Unit tests run with the result cache off: a test that trains twice to compare must
    really train twice. Only the student-copy runs (classes with a ``chapter``) read the
    test run's cache, filled by nbval; tests/test_cache.py gives each test its own."""
    if getattr(request.cls, "chapter", None) is None:
        monkeypatch.setenv("NNBOOK_CACHE_DIR", "off")
