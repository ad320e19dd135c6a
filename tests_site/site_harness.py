"""Render the book's two editions and drive them in a real, offline browser.

This module is the reusable part of the site tests (``make test-site``); the
fixtures in ``tests_site/conftest.py`` wrap it. Tests of other site features
(for example the OJS explorers) use those fixtures and need nothing else.

Fixtures (defined in ``tests_site/conftest.py``)
-----------------------------------------------
``editions`` (session)
    ``{"default": Edition, "solutions": Edition}``: both editions rendered once
    per run, in parallel, each from a fresh copy of the sources under
    ``_output/site-test/<edition>/src`` with ``make site`` / ``make site SOLUTIONS=1``
    (so the Makefile target itself is exercised). ``Edition.out`` is the
    rendered folder, ``Edition.log`` Quarto's output, ``Edition.seconds`` the
    render time, ``Edition.pages`` the book's pages in reading order
    (``BookPage(source, html, kind)``, read from ``_quarto.yml``).
    ``SITE_TEST_REUSE=1`` reuses the last render (quick iteration on tests only);
    ``SITE_TEST_DIR=/some/folder`` renders there instead of ``_output/site-test``.
``site`` (session)
    A ``SiteBrowser``: Debian's Chromium (``/usr/bin/chromium``, or
    ``$CHROMIUM``) started by Playwright, plus a local HTTP server that serves
    both editions at ``site.url(edition, path)``.
``page`` (function)
    A ``Probe`` on a fresh desktop page (1280 x 800). ``probe.goto("default",
    "chapters/07-gradient-descent.html")`` loads a page and waits for the
    network to go idle and for MathJax to finish. ``probe.page`` is the
    Playwright ``Page``. ``probe.assert_clean()`` fails on any JavaScript
    error, failed request or request to an outside host. ``site.new_probe(
    width=390, height=844)`` gives a phone-sized one (close it with
    ``probe.close()``).

Offline CDNs
------------
Readers' browsers fetch MathJax, jQuery, require.js and the OJS libraries from
public CDNs. Every page is routed through ``CdnCache``: a request to
``cdn.jsdelivr.net/npm/<pkg>@<version>/<file>``, ``unpkg.com/...`` or
``cdnjs.cloudflare.com/ajax/libs/<lib>/<version>/<file>`` is answered with
that file from the same npm package at the same version, fetched once with
``npm pack`` into ``_output/cdn-cache/`` (git-ignored). Any other request that
leaves the local server is aborted and recorded in ``probe.outside``, which
``assert_clean`` reports as a failure. The one exception is Cloudflare's
polyfill service, which MathJax pages reference: it sends no code to current
browsers, so it is answered with an empty script (``POLYFILL_URL``). The
themes' Google web fonts are switched off in ``site.scss``, so pages ask for none.
Where the npm file differs from the CDN's (cdnjs serves a minified
``require.min.js``, npm's ``requirejs`` ships only ``require.js``), the page's
subresource-integrity hash cannot match; the served HTML then has that one
``integrity`` attribute removed, and the URL is listed in
``probe.integrity_dropped``.

Example::

    def test_slider_moves_the_line(page):
        page.goto("default", "chapters/06-loss-and-regularization.html")
        page.page.get_by_label("weight").fill("2")
        ...
        page.assert_clean()
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import os
import re
import shutil
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "_output"
# Where the editions are rendered (a copy of the sources per edition); SITE_TEST_DIR moves it,
# e.g. for two people testing in one working tree at the same time.
WORK = Path(os.environ.get("SITE_TEST_DIR") or OUTPUT / "site-test")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--disable-background-networking", "--disable-extensions",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--mute-audio", "--metrics-recording-only"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
POLYFILL_URL = "https://cdnjs.cloudflare.com/polyfill/v3/polyfill.min.js"
QUARTO_MIN = (1, 7)

# The two editions: the make arguments that render each and the folder it renders to.
# (`site SOLUTIONS=1` is what `make site-solutions` runs, without a sub-make, which
# would not inherit the `-o` below.)
EDITIONS = {"default": (["site"], "_book"), "solutions": (["site", "SOLUTIONS=1"], "_book-solutions")}
# Not copied into the render's source copy: outputs, caches, environments.
NOT_COPIED = {".git", ".venv", "_output", "_student", ".quarto", "_book", "_book-solutions",
              "_site", "__pycache__", ".ipynb_checkpoints", ".pytest_cache", "node_modules",
              "tests_site", "_grades"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Figures of the run, printed at its end by tests_site/conftest.py (name -> text).
STATS: dict[str, str] = {}


# --------------------------------------------------------------------------- the book

@dataclass(frozen=True)
class BookPage:
    """One page of the book: its source (``chapters/01-x.ipynb``), its HTML path
    relative to the edition's root, and its kind ("chapter", "appendix", "page")."""

    source: str
    html: str
    kind: str


def _hrefs(entries):
    for entry in entries or []:
        if isinstance(entry, str):
            yield entry
        elif isinstance(entry, dict):
            if "part" in entry and isinstance(entry["part"], str) and entry["part"].endswith((".qmd", ".ipynb", ".md")):
                yield entry["part"]
            if "href" in entry or "file" in entry:
                yield entry.get("href") or entry.get("file")
            yield from _hrefs(entry.get("chapters"))


def book_pages(config: dict) -> list[BookPage]:
    """The book's pages in reading order, from a parsed ``_quarto.yml``
    (chapters, parts and appendices)."""
    book = config["book"]
    pages = []
    for kind, entries in (("chapter", book.get("chapters")), ("appendix", book.get("appendices"))):
        for src in _hrefs(entries):
            html = str(Path(src).with_suffix(".html"))
            pages.append(BookPage(src, html, kind if src not in ("index.qmd",) else "page"))
    return pages


def read_config(root: Path = ROOT) -> dict:
    return yaml.safe_load((root / "_quarto.yml").read_text())


# --------------------------------------------------------------------------- rendering

@dataclass
class Edition:
    """A rendered edition: ``out`` is its folder (``.../_book``), ``log`` Quarto's output."""

    name: str
    src: Path
    out: Path
    log: str
    seconds: float
    returncode: int
    pages: list[BookPage] = field(default_factory=list)

    def html(self, page: BookPage | str) -> str:
        rel = page.html if isinstance(page, BookPage) else page
        return (self.out / rel).read_text(encoding="utf-8")

    def html_files(self) -> list[Path]:
        """Every HTML file of the edition except Quarto's own libraries."""
        return sorted(p for p in self.out.rglob("*.html") if "site_libs" not in p.parts)


def quarto_version() -> tuple[int, ...]:
    """Quarto's version, or a clear error when it is missing or too old."""
    exe = shutil.which("quarto")
    if exe is None:
        raise RuntimeError("quarto is not on PATH: run ../shared/tools/quarto/install.sh "
                           "(or install Quarto 1.7+ from quarto.org), then run make test-site again")
    text = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    version = tuple(int(x) for x in re.findall(r"\d+", text)[:3])
    if version[:2] < QUARTO_MIN:
        raise RuntimeError(f"Quarto {text.strip()} is too old: the book needs 1.7 or newer")
    return version


def copy_sources(root: Path, target: Path) -> None:
    """A fresh copy of the book's sources (no outputs, caches or environment)."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(root, target, ignore=lambda d, names: [n for n in names if n in NOT_COPIED])


def render_edition(name: str, root: Path = ROOT, work: Path = WORK) -> Edition:
    """Render one edition from a fresh copy of the sources with its make target."""
    make_args, out_dir = EDITIONS[name]
    base = work / name
    src = base / "src"
    venv = (root / ".venv").resolve()
    copy_sources(root, src)
    start = time.perf_counter()
    proc = subprocess.run(
        ["make", "-C", str(src), *make_args, f"VENV={venv}", "-o", f"{venv}/.installed"],
        capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    seconds = time.perf_counter() - start
    log = ANSI.sub("", proc.stdout + proc.stderr)
    meta = {"seconds": seconds, "returncode": proc.returncode}
    (base / "render.log").write_text(log)
    (base / "render.json").write_text(json.dumps(meta))
    return Edition(name, src, src / out_dir, log, seconds, proc.returncode, book_pages(read_config(src)))


def load_edition(name: str, work: Path = WORK) -> Edition | None:
    """The last render of an edition, if one is there."""
    base = work / name
    if not (base / "render.json").exists():
        return None
    meta = json.loads((base / "render.json").read_text())
    src = base / "src"
    return Edition(name, src, src / EDITIONS[name][1], (base / "render.log").read_text(),
                   meta["seconds"], meta["returncode"], book_pages(read_config(src)))


def render_editions(root: Path = ROOT, reuse: bool = False) -> dict[str, Edition]:
    """Both editions, rendered in parallel (or the last render, with ``reuse``)."""
    if reuse:
        found = {name: load_edition(name) for name in EDITIONS}
        if all(found.values()):
            return found
    quarto_version()
    results: dict[str, Edition] = {}

    def run(name):
        results[name] = render_edition(name, root)

    threads = [threading.Thread(target=run, args=(name,)) for name in EDITIONS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {name: results[name] for name in EDITIONS}


# --------------------------------------------------------------------------- offline CDNs

class CdnCache:
    """Answers CDN URLs from npm packages fetched with ``npm pack`` into ``folder``."""

    JSDELIVR = re.compile(r"https://(?:cdn\.jsdelivr\.net/npm|unpkg\.com)/"
                          r"((?:@[^/@]+/)?[^/@]+)(?:@([^/]+))?(/[^?#]*)?")
    CDNJS = re.compile(r"https://cdnjs\.cloudflare\.com/ajax/libs/([^/]+)/([^/]+)/([^?#]+)")
    # cdnjs library name -> npm package name (when they differ)
    CDNJS_NPM = {"require.js": "requirejs"}

    def __init__(self, folder: Path = OUTPUT / "cdn-cache"):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._index_file = self.folder / "index.json"
        self._index = json.loads(self._index_file.read_text()) if self._index_file.exists() else {}
        self.served: dict[str, str] = {}     # URL -> "<package>@<version>/<file>"

    def package(self, spec: str) -> Path:
        """The unpacked folder of npm package ``spec`` (e.g. ``mathjax@3``)."""
        with self._lock:
            if spec in self._index and (self.folder / self._index[spec]).is_dir():
                return self.folder / self._index[spec]
            tarballs = self.folder / "tarballs"
            tarballs.mkdir(exist_ok=True)
            proc = subprocess.run(["npm", "pack", spec, "--json", "--pack-destination", str(tarballs)],
                                  capture_output=True, text=True)
            if proc.returncode:
                raise RuntimeError(f"npm pack {spec} failed (is the npm registry reachable?):\n"
                                   f"{proc.stderr[-2000:]}")
            info = json.loads(proc.stdout)[0]
            name = f"{info['name']}@{info['version']}".replace("/", "__")
            dest = self.folder / "packages" / name
            if not dest.is_dir():
                tmp = dest.with_name(dest.name + ".tmp")
                shutil.rmtree(tmp, ignore_errors=True)
                with tarfile.open(tarballs / info["filename"]) as tar:
                    tar.extractall(tmp, filter="data")
                tmp.rename(dest)
            self._index[spec] = str(dest.relative_to(self.folder))
            self._index_file.write_text(json.dumps(self._index, indent=1))
            return dest

    @staticmethod
    def _default_file(pkg: Path) -> str:
        meta = json.loads((pkg / "package" / "package.json").read_text())
        for key in ("jsdelivr", "unpkg", "browser", "main"):
            if isinstance(meta.get(key), str):
                return meta[key]
        return "index.js"

    def locate(self, url: str) -> tuple[Path, str] | None:
        """(file, "<package>@<version>/<path>") serving ``url``, or None if not a known CDN."""
        m = self.JSDELIVR.match(url)
        if m:
            name, version, path = m.group(1), m.group(2) or "latest", (m.group(3) or "/").lstrip("/")
            pkg = self.package(f"{name}@{version}")
            path = path or self._default_file(pkg)
            candidates = [path, path + ".js", path.rstrip("/") + "/index.js"]
        else:
            m = self.CDNJS.match(url)
            if not m:
                return None
            lib, version, path = m.groups()
            pkg = self.package(f"{self.CDNJS_NPM.get(lib, lib)}@{version}")
            unminified = re.sub(r"\.min\.(js|css)$", r".\1", path)
            candidates = [f"dist/{path}", path, f"dist/{unminified}", unminified]
        for rel in candidates:
            f = pkg / "package" / unquote(rel)
            if f.is_file():
                return f, f"{pkg.name}/{rel}"
        raise FileNotFoundError(f"{url}: none of {candidates} in npm package {pkg.name}")

    def respond(self, url: str) -> tuple[bytes, str] | None:
        """(body, content type) for a CDN ``url``, or None when it is not a CDN URL."""
        if url.split("?")[0] == POLYFILL_URL:
            return b"/* no polyfills are needed by current browsers */\n", "application/javascript"
        found = self.locate(url)
        if found is None:
            return None
        path, origin = found
        self.served[url] = origin
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if path.suffix in (".js", ".mjs"):
            ctype = "application/javascript"
        return path.read_bytes(), ctype


def sri_matches(integrity: str, body: bytes) -> bool:
    """Does ``body`` satisfy a subresource-integrity attribute value?"""
    for token in integrity.split():
        algo, _, digest = token.partition("-")
        if algo in ("sha256", "sha384", "sha512"):
            if base64.b64encode(hashlib.new(algo, body).digest()).decode() == digest:
                return True
    return False


# --------------------------------------------------------------------------- local server

def serve(roots: dict[str, Path]) -> tuple[ThreadingHTTPServer, str]:
    """An HTTP server on 127.0.0.1 serving ``roots[name]`` at ``/<name>/``."""

    class Handler(SimpleHTTPRequestHandler):
        def translate_path(self, path):
            parts = urlsplit(path).path.lstrip("/").split("/", 1)
            root = roots.get(parts[0])
            if root is None:
                return str(Path("/nonexistent"))
            rel = unquote(parts[1]) if len(parts) > 1 else ""
            return str(Path(root) / rel)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


# --------------------------------------------------------------------------- browser

TAG_WITH_INTEGRITY = re.compile(r"<(?:script|link)\b[^>]*\bintegrity=\"([^\"]*)\"[^>]*>", re.I)
TAG_URL = re.compile(r"\b(?:src|href)=\"(https?://[^\"]+)\"", re.I)


class Probe:
    """A browser page whose every request is routed: local files from the
    server, CDN files from npm packages, anything else aborted and recorded."""

    def __init__(self, site: "SiteBrowser", viewport: dict):
        self.site = site
        self.context = site.browser.new_context(viewport=viewport, service_workers="block")
        self.page = self.context.new_page()
        self.errors: list[str] = []           # uncaught JavaScript exceptions
        self.console_errors: list[str] = []   # console.error messages
        self.failed: list[str] = []           # failed requests and HTTP errors
        self.outside: list[str] = []          # requests to hosts that are not served here
        self.integrity_dropped: list[str] = []
        self.context.route("**/*", self._route)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        self.page.on("requestfailed",
                     lambda r: self.failed.append(f"{r.url} ({r.failure})"))
        self.page.on("response",
                     lambda r: r.status >= 400 and self.failed.append(f"{r.url} (HTTP {r.status})"))

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.site.base) or url.startswith(("data:", "blob:")):
            if route.request.resource_type == "document":
                response = route.fetch()
                ctype = response.headers.get("content-type", "")
                if "html" in ctype and response.ok:
                    route.fulfill(response=response, body=self._fix_integrity(response.text()))
                    return
                route.fulfill(response=response)
                return
            route.continue_()
            return
        try:
            answer = self.site.cdn.respond(url)
        except FileNotFoundError as exc:
            self.failed.append(str(exc))
            route.abort()
            return
        if answer is None:
            self.outside.append(url)
            route.abort("blockedbyclient")
            return
        body, ctype = answer
        route.fulfill(status=200, body=body, content_type=ctype,
                      headers={"Access-Control-Allow-Origin": "*"})

    def _fix_integrity(self, html: str) -> str:
        """Remove integrity attributes that the npm copy of a CDN file cannot meet."""

        def fix(m):
            tag = m.group(0)
            url = TAG_URL.search(tag)
            if not url:
                return tag
            answer = self.site.cdn.respond(url.group(1))
            if answer is None or sri_matches(m.group(1), answer[0]):
                return tag
            self.integrity_dropped.append(url.group(1))
            return tag.replace(f' integrity="{m.group(1)}"', "")

        return TAG_WITH_INTEGRITY.sub(fix, html)

    def goto(self, edition: str, path: str = "index.html", timeout: float = 60_000):
        """Load a page of an edition; wait for the network to settle and MathJax to finish."""
        response = self.page.goto(self.site.url(edition, path), wait_until="networkidle",
                                  timeout=timeout)
        self.page.evaluate(
            "() => (window.MathJax && MathJax.startup && MathJax.startup.promise)"
            " ? MathJax.startup.promise.then(() => true) : false")
        return response

    def problems(self, console: bool = False) -> list[str]:
        found = ([f"JavaScript error: {e}" for e in self.errors]
                 + [f"failed request: {f}" for f in self.failed]
                 + [f"outside request: {u}" for u in self.outside])
        if console:
            found += [f"console error: {c}" for c in self.console_errors]
        return found

    def assert_clean(self, console: bool = False) -> None:
        """Fail on JavaScript errors, failed requests and outside requests."""
        found = self.problems(console)
        assert not found, f"{self.page.url}:\n  " + "\n  ".join(found)

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path))
        return path

    def close(self) -> None:
        self.context.close()


class SiteBrowser:
    """Chromium (via Playwright) plus the local server for the rendered editions."""

    def __init__(self, editions: dict[str, Edition], cdn: CdnCache | None = None):
        from playwright.sync_api import sync_playwright

        if not Path(CHROMIUM).exists():
            raise RuntimeError(f"{CHROMIUM} not found: install Debian's chromium "
                               "(apt-get install -y chromium) or set CHROMIUM=/path/to/chromium")
        self.cdn = cdn or CdnCache()
        self.server, self.base = serve({name: ed.out for name, ed in editions.items()})
        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

    def url(self, edition: str, path: str = "index.html") -> str:
        return f"{self.base}/{edition}/{path}"

    def new_probe(self, width: int = DESKTOP["width"], height: int = DESKTOP["height"]) -> Probe:
        return Probe(self, {"width": width, "height": height})

    def close(self) -> None:
        self.browser.close()
        self._pw.stop()
        self.server.shutdown()
