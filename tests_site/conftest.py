"""Fixtures of the site tests (``make test-site``); see ``site_harness`` for their API.

``editions``  both editions rendered once per run (``SITE_TEST_REUSE=1`` reuses the last render)
``site``      Chromium + local server + offline CDNs (session)
``page``      a routed desktop ``Probe`` (function scope)
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import site_harness as sh  # noqa: E402


@pytest.fixture(scope="session")
def editions():
    reuse = os.environ.get("SITE_TEST_REUSE") == "1"
    found = sh.render_editions(reuse=reuse)
    for ed in found.values():
        sh.STATS[f"render {ed.name}"] = f"{ed.seconds:.0f} s, {len(ed.pages)} pages" + (" (reused)" if reuse else "")
        if ed.returncode:
            pytest.fail(f"rendering the {ed.name} edition failed:\n{ed.log[-3000:]}")
    return found


@pytest.fixture(scope="session")
def cdn():
    return sh.CdnCache()


@pytest.fixture(scope="session")
def site(editions, cdn):
    browser = sh.SiteBrowser(editions, cdn)
    yield browser
    browser.close()


@pytest.fixture
def page(site):
    probe = site.new_probe()
    yield probe
    probe.close()


def pytest_terminal_summary(terminalreporter):
    if sh.STATS:
        terminalreporter.section("site figures")
        for name, text in sh.STATS.items():
            terminalreporter.write_line(f"{name}: {text}")
