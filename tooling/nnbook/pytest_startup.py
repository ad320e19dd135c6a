"""An early pytest plugin: loaded first (``-p nnbook.pytest_startup`` in pyproject.toml's addopts),
before nbval, in the test run's main process and in each of its workers.

nbval imports nbformat, which imports jsonschema, which imports the optional package
rfc3987-syntax (installed for JupyterLab's jupyter-events) if it can: that import builds
38 parsers and costs about 1 s of CPU, in every test process, before the first test can
start. It serves only jsonschema's "iri" format checks; nbformat validates notebooks
without format checks, so the test processes go without it. Nothing else changes:
tests/test_environment.py checks that notebooks are still validated.
"""

import sys

sys.modules.setdefault("rfc3987_syntax", None)     # `import rfc3987_syntax` raises ImportError
