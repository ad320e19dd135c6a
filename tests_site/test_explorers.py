"""The explorers: interactive OJS figures of chapters 2, 6, 7 and 10, tested in Chromium.

Each explorer (``chapters/_explorers/<name>.qmd``, included by a markdown cell of
its chapter) draws from data that its chapter hands to the page with
``nh.to_page`` (read back here with ``nh.page_data`` from the rendered copy of
the notebook). For each explorer the tests check that

* it renders with no JavaScript or OJS error, every control has an accessible
  name, and it has a description and a live text readout;
* moving each control (with the keyboard, as a reader without a mouse would)
  changes both the drawing and the readout;
* the readout equals the Python values for at least three settings, and the
  gradient-descent page computes the notebook's paths to 1e-9.

Speed is measured, not asserted: the time from navigation to the explorer's
first readout (the page is interactive then) and the time from each input event
to the next frame after the redraw are printed in the "site figures" summary,
with each page's weight.
"""

from __future__ import annotations

import re
import statistics

import numpy as np
import pytest

import nnhelpers as nh
import site_harness as sh

# explorer name -> page (without .html / .ipynb)
EXPLORERS = {
    "neuron": "chapters/02-sklearn-binary-classifier",
    "alpha": "chapters/06-loss-and-regularization",
    "gd": "chapters/07-gradient-descent",
    "sweep": "chapters/07-gradient-descent",
    "mcnemar": "chapters/10-real-data",
}

# Record when each explorer's readout first appears (ms since navigation started).
READY_SCRIPT = """
window.__explorerReady = {};
new MutationObserver(() => {
  for (const el of document.querySelectorAll('.explorer-readout')) {
    if (!(el.id in window.__explorerReady)) window.__explorerReady[el.id] = performance.now();
  }
}).observe(document, {childList: true, subtree: true});
"""

# Arm a measurement: resolves with the ms from the next input (or click) event to the
# animation frame after the explorer's readout has changed.
ARM_REDRAW = """(name) => {
  const root = document.getElementById(`explorer-${name}`);
  const before = document.getElementById(`${name}-readout`).textContent;
  let start = null;
  const mark = () => { if (start === null) start = performance.now(); };
  document.addEventListener('input', mark, true);
  document.addEventListener('click', mark, true);
  window.__redraw = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the readout did not change within 10 s')), 10000);
    const observer = new MutationObserver(() => {
      const now = document.getElementById(`${name}-readout`);
      if (!now || now.textContent === before) return;
      observer.disconnect();
      clearTimeout(timer);
      document.removeEventListener('input', mark, true);
      document.removeEventListener('click', mark, true);
      requestAnimationFrame(() => resolve(performance.now() - (start ?? performance.now())));
    });
    observer.observe(root, {subtree: true, childList: true, characterData: true});
  });
}"""

# Accessible names of the explorer's controls ("" where one is missing).
CONTROL_NAMES = """(root) => [...root.querySelectorAll('form input, form select, form button')].map((el) => {
  const fromLabels = [...(el.labels || [])].map((l) => l.textContent.trim()).join(' ');
  return `${el.tagName.toLowerCase()}[${el.type}]: ` + (el.getAttribute('aria-label') || fromLabels || '');
})"""

REDRAWS: dict[str, list[float]] = {}


class Explorer:
    """One explorer on an open page: its controls, drawing, readout and OJS values."""

    def __init__(self, probe, name):
        self.probe, self.page, self.name = probe, probe.page, name
        self.root = self.page.locator(f"#explorer-{name}")

    def readout(self) -> str:
        return " ".join(self.page.locator(f"#{self.name}-readout").inner_text().split())

    def drawing(self) -> str:
        return self.root.evaluate("(r) => [...r.querySelectorAll('svg[role=img]')].map((s) => s.outerHTML).join('')")

    def value(self, variable):
        """The current value of an OJS variable of the page."""
        return self.page.evaluate("(n) => window._ojs.ojsConnector.mainModule.value(n)", variable)

    def slider(self, label):
        return self.root.get_by_role("slider", name=label, exact=True)

    def number(self, label):
        return self.root.get_by_role("spinbutton", name=label, exact=True)

    def act(self, action) -> float:
        """Run ``action`` (which must change the readout); return the redraw time in ms."""
        self.page.evaluate(ARM_REDRAW, self.name)
        action()
        ms = self.page.evaluate("() => window.__redraw")
        REDRAWS.setdefault(self.name, []).append(ms)
        return ms

    def set_number(self, label, value):
        """Type a value into a slider's number box (as a keyboard user would)."""
        box = self.number(label)
        box.fill(str(value))
        box.press("Enter")


def open_explorer(site, name) -> Explorer:
    probe = site.new_probe()
    probe.page.add_init_script(READY_SCRIPT)
    probe.goto("default", EXPLORERS[name] + ".html")
    probe.page.wait_for_selector(f"#{name}-readout", timeout=30_000)
    ready, loaded = probe.page.evaluate(
        "(id) => [window.__explorerReady[id], performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd]",
        f"{name}-readout")
    sh.STATS[f"explorer {name}: interactive after"] = (
        f"{ready:.0f} ms (readout shown, controls live; the page's DOMContentLoaded at {loaded:.0f} ms)")
    return Explorer(probe, name)


@pytest.fixture
def explorer(site, request):
    found = open_explorer(site, request.param)
    yield found
    found.probe.close()


@pytest.fixture(scope="module")
def data(editions):
    """``{explorer page: values handed to it}``, from the rendered copy of each notebook."""
    src = editions["default"].src
    return {page: nh.page_data(src / f"{page}.ipynb") for page in set(EXPLORERS.values())}


def page_weight(editions, page):
    html = (editions["default"].out / f"{page}.html").read_text(encoding="utf-8")
    data = sum(len(m) for m in re.findall(r'<script type="ojs-define">(.*?)</script>', html, re.S))
    ojs = sum(len(m) for m in re.findall(r'<script type="ojs-module-contents">(.*?)</script>', html, re.S))
    kit = (editions["default"].out / "chapters/_explorers/explorer.js").stat().st_size
    return (f"{len(html.encode()) / 1000:.0f} kB HTML, of which {data / 1000:.1f} kB explorer data and "
            f"{ojs / 1000:.1f} kB OJS source; + {kit / 1000:.1f} kB explorer.js")


# --------------------------------------------------------------------------- every explorer

@pytest.mark.parametrize("explorer", list(EXPLORERS), indirect=True)
def test_explorer_renders_with_labels_description_and_readout(explorer, editions):
    page = EXPLORERS[explorer.name]
    sh.STATS[f"page weight {page.split('/')[-1]}"] = page_weight(editions, page)
    assert explorer.readout(), "the explorer shows no readout"
    assert explorer.page.locator(".observablehq--error").count() == 0, \
        explorer.page.locator(".observablehq--error").first.inner_text()
    explorer.probe.assert_clean(console=True)
    description = explorer.root.locator("p").first.inner_text()
    assert len(description.split()) >= 12 and description.rstrip().endswith("."), description
    names = explorer.root.evaluate(CONTROL_NAMES)
    assert names and all(not n.endswith(": ") for n in names), names
    assert explorer.root.locator("svg[role=img][aria-label]").count() >= 1
    assert explorer.page.locator(f"#{explorer.name}-readout[aria-live=polite]").count() == 1


def _press(locator, *keys):
    def action():
        locator.focus()
        for key in keys:
            locator.press(key)
    return action


# For each explorer: the control actions (by keyboard) that must change drawing and readout.
CONTROLS = {
    "neuron": lambda e: [_press(e.slider("bias b"), "PageUp"),      # first: with b = 0, w₁ alone moves no line
                         _press(e.slider("weight w₁"), "ArrowLeft"),
                         _press(e.slider("weight w₂"), "ArrowRight", "ArrowRight"),
                         lambda: e.root.get_by_label("a setting of the notebook").select_option(index=2)],
    "alpha": lambda e: [_press(e.slider("penalty: log₁₀ α"), "ArrowRight"),
                        _press(e.slider("penalty: log₁₀ α"), "End")],
    "gd": lambda e: [_press(e.slider("learning rate η"), "ArrowLeft"),
                     _press(e.slider("momentum μ"), "PageUp"),
                     _press(e.slider("steps"), "ArrowRight"),
                     _press(e.slider("start x"), "PageDown"),
                     _press(e.slider("start y"), "PageDown"),
                     lambda: e.root.get_by_label("a run of the notebook").select_option(index=3),
                     lambda: e.root.locator("svg[role=img]").click(position={"x": 300, "y": 300})],
    "sweep": lambda e: [_press(e.root.get_by_role("radio", name="0.01", exact=True), "ArrowRight"),
                        _press(e.root.get_by_role("checkbox"), "Space")],
    "mcnemar": lambda e: [_press(e.slider("images only the MLP gets right"), "ArrowLeft"),
                          _press(e.slider("images only the logistic regression gets right"), "PageUp")],
}


@pytest.mark.parametrize("explorer", list(EXPLORERS), indirect=True)
def test_each_control_changes_the_drawing_and_the_readout(explorer):
    for k, action in enumerate(CONTROLS[explorer.name](explorer)):
        readout, drawing = explorer.readout(), explorer.drawing()
        explorer.act(action)
        assert explorer.readout() != readout, f"control {k}: the readout did not change"
        assert explorer.drawing() != drawing, f"control {k}: the drawing did not change"
    explorer.probe.assert_clean(console=True)
    times = REDRAWS[explorer.name]
    sh.STATS[f"explorer {explorer.name}: redraw"] = (
        f"median {statistics.median(times):.0f} ms, max {max(times):.0f} ms over {len(times)} changes")


# --------------------------------------------------------------------------- readouts = Python

@pytest.mark.parametrize("explorer", ["neuron"], indirect=True)
def test_neuron_readout_counts_what_the_notebook_counts(explorer, data):
    values = data[EXPLORERS["neuron"]]
    n = len(values["neuron_points"]["Y"])
    checks = values["neuron_checks"]
    assert len(checks) >= 3
    for check in checks:                        # typed into the number boxes
        for label, key in (("weight w₁", "w1"), ("weight w₂", "w2"), ("bias b", "b")):
            explorer.set_number(label, check[key])
        explorer.page.wait_for_function(
            "([w1, w2, b]) => document.querySelector('#neuron-readout').textContent"
            ".startsWith(`w₁ = ${w1}, w₂ = ${w2}, b = ${b}:`)", arg=[check["w1"], check["w2"], check["b"]])
        assert f": {check['count']} of the {n} training points" in explorer.readout(), (check, explorer.readout())
    explorer.probe.assert_clean(console=True)


@pytest.mark.parametrize("explorer", ["alpha"], indirect=True)
def test_alpha_readout_equals_the_notebooks_table(explorer, data, editions):
    fits = data[EXPLORERS["alpha"]]["alpha_fits"]
    assert len(fits) >= 3
    table = _printed_table(editions["default"].src / f"{EXPLORERS['alpha']}.ipynb", "alpha")
    slider = explorer.slider("penalty: log₁₀ α")
    slider.focus()
    slider.press("Home")
    for k, fit in enumerate(fits):
        if k:
            explorer.act(lambda: slider.press("ArrowRight"))
        expected = (f"α = {fit['alpha']}: final training loss {fit['loss_curve'][-1]:.4f} after "
                    f"{len(fit['loss_curve'])} epochs, test R² {fit['test_r2']:.4f}.")
        assert explorer.readout() == expected
        row = table[fit["alpha"]]                                  # the notebook's printed row
        assert row["final loss"] == float(f"{fit['loss_curve'][-1]:.4f}")
        assert row["test R²"] == float(f"{fit['test_r2']:.4f}")
        assert row["epochs"] == len(fit["loss_curve"])


@pytest.mark.parametrize("explorer", ["sweep"], indirect=True)
def test_sweep_readout_equals_the_notebooks_sweeps(explorer, data):
    fits = data[EXPLORERS["sweep"]]["sweep_fits"]
    assert len(fits) >= 3
    toggle = explorer.root.get_by_role("checkbox")
    for fit in fits:
        radio = explorer.root.get_by_role("radio", name=fit["lr"], exact=True)
        if not radio.is_checked():
            explorer.act(radio.check)
        if toggle.is_checked() != (fit["momentum"] > 0):
            explorer.act(toggle.click)
        text = explorer.readout()
        assert text.startswith(f"Learning rate {fit['lr']}, "), text
        assert (f"final loss {fit['loss_curve'][-1]:.4f} after {len(fit['loss_curve'])} epochs" in text
                and f"CV score (negative MSE) {fit['cv_score']:.4f}." in text), (fit["lr"], text)
        assert ("without converging" in text) == (not fit["converged"])
        selected = explorer.root.locator("#sweep-table tr.explorer-selected td").all_inner_texts()
        assert selected[:3] == [fit["lr"], f"{fit['momentum']:g}", str(len(fit["loss_curve"]))]


@pytest.mark.parametrize("explorer", ["mcnemar"], indirect=True)
def test_mcnemar_readout_equals_python(explorer, data):
    from scipy.stats import binomtest

    counts = data[EXPLORERS["mcnemar"]]["mcnemar_counts"]
    n, both_wrong = counts["n"], counts["both_wrong"]
    settings = [(counts["only_mlp"], counts["only_linear"]), (5, 3), (12, 12), (0, 8), (20, 4)]
    for k, (wins, losses) in enumerate(settings):
        if k:                                        # typed into the number boxes
            explorer.set_number("images only the MLP gets right", wins)
            explorer.set_number("images only the logistic regression gets right", losses)
            explorer.page.wait_for_function(
                "(t) => document.querySelector('#mcnemar-readout').textContent.includes(t)",
                arg=f"won {wins} to {losses}:")
        both_right = n - both_wrong - wins - losses
        mlp, linear = both_right + wins, both_right + losses
        (a, b), (c, d) = nh.wilson_interval(mlp, n), nh.wilson_interval(linear, n)
        overlap = "overlap" if max(a, c) <= min(b, d) else "do not overlap"
        p = binomtest(wins, wins + losses).pvalue
        assert explorer.readout() == (
            f"MLP {mlp} of {n} right (95% interval {a:.4f} to {b:.4f}), logistic regression {linear} "
            f"({c:.4f} to {d:.4f}): the intervals {overlap}. Disagreements won {wins} to {losses}: "
            f"McNemar's exact p = {p:.5f}."), (wins, losses)
    explorer.probe.assert_clean(console=True)


def _f(x, y):          # the two-valley function of chapter 7
    return (x**2 - 1) ** 2 + 0.3 * x + 5 * y**2


@pytest.mark.parametrize("explorer", ["gd"], indirect=True)
def test_gd_page_computes_the_notebooks_paths(explorer, data):
    runs = data[EXPLORERS["gd"]]["gd_runs"]
    assert len(runs) >= 3 and any(run["momentum"] > 0 for run in runs)
    select = explorer.root.get_by_label("a run of the notebook")
    for k, run in enumerate(runs):
        explorer.act(lambda: select.select_option(index=k + 1))
        path = np.array(explorer.value("gdPath"))
        expected = np.array(run["path"])
        assert path.shape == expected.shape, run["label"]
        assert np.max(np.abs(path - expected)) < 1e-9, run["label"]
        x, y = expected[-1]
        assert explorer.readout().endswith(f"final point ({x:.3f}, {y:.3f}), f = {_f(x, y):.3f}.".replace("-0.000", "0.000")), \
            (run["label"], explorer.readout())


@pytest.mark.parametrize("explorer", ["gd"], indirect=True)
def test_gd_click_on_the_plot_sets_the_start(explorer):
    plot = explorer.root.locator("svg[role=img]")
    box = plot.bounding_box()
    # the frame maps x in [-2, 2.2] to [56, 426] and y in [-2, 2.2] to [378, 12] in a 440 x 420 viewBox
    px, py = 56 + (1.0 + 2) / 4.2 * 370, 378 - (-1.0 + 2) / 4.2 * 366
    explorer.act(lambda: plot.click(position={"x": px * box["width"] / 440, "y": py * box["height"] / 420}))
    x0, y0 = explorer.value("gdX0"), explorer.value("gdY0")
    assert abs(x0 - 1.0) <= 0.03 and abs(y0 + 1.0) <= 0.03, (x0, y0)
    assert explorer.value("gdPath")[0] == [x0, y0]
    assert f"steps from ({x0:.2f}, {y0:.2f})" in explorer.readout()


def _printed_table(notebook, first_column):
    """The rows of a text table the notebook printed whose header starts with
    ``first_column``, as ``{first cell: {column: value}}`` (numbers where numeric)."""
    import nbformat

    def parse(cell):
        try:
            return float(cell)
        except ValueError:
            return cell

    for cell in nbformat.read(notebook, as_version=4).cells:
        for out in cell.get("outputs", []):
            lines = out.get("data", {}).get("text/plain", "").splitlines()
            if lines and lines[0].split()[:1] == [first_column]:
                header = re.split(r"\s{2,}", lines[0].strip())
                rows = [line.split()[1:] for line in lines[1:]]      # drop the index
                return {row[0]: dict(zip(header, map(parse, row))) for row in rows}
    raise AssertionError(f"{notebook.name}: no printed table starting with {first_column!r}")
