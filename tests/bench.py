"""Benchmarks for `make bench`: prints figures, asserts nothing.

    make bench                          # everything below (about 15 minutes on 2 cores)
    make bench BENCH=quick              # only "chapters" (goal 2 of the speed issue)
    make bench BENCH="ratio chapters"   # any sections, by name

ratio     The lesson's code run as one plain serial script
          (../shared/bench/lesson_reference.py, or LESSON_REFERENCE=path) and
          `make test`, one after the other on this machine, and their ratio.
          `make test` starts with an empty result cache of its own (nnbook.pytest_plugin),
          so strict nbval computes everything; its summary line gives the cache's
          hit rate (the student-copy runs reusing nbval's fits).
          Both print their CPU seconds (every process they waited for): on 2 cores a
          run can take no less than half its CPU seconds.
nbval     The whole book's strict nbval run (`make nbval`), also from an empty cache.
kernels   Starting a kernel and running a chapter's imports: a fresh interpreter (as
          JupyterLab does) and a kernel forked from the warm server (tooling/nnbook/warm_kernels.py,
          as `make test` and `make grade` do).
chapters  Each chapter run top to bottom in a fresh kernel in its folder, as
          JupyterLab's "Restart Kernel and Run All" does: a first run with an empty
          result cache, then a re-run (new kernel) that finds the first run's fits in
          the cache, in its normal place (nh.cache_dir(); the cache that was there is
          set aside during the bench and put back after), with the hit rate.
          BENCH_CHAPTERS="03 07" limits it to some chapters.
draw      mlp_draw: median time to draw and render the lesson's largest network
          (1-80-20-1, 1700 edges) and the iris network (4-3-2-3, with labels).
loops     Training the chapter 3 network for 300 epochs: the DataLoader loop
          (nh.train) against the loop over preloaded tensors (nh.train_fast), and,
          for reference, the fast loop with PyTorch's fused Adam (result cache off).
sweeps    The book's scikit-learn sweeps (alpha, batch size, the two learning-rate
          sweeps with cross-validation) fitted serially and with nh.sweep in
          parallel (result cache off).

The figures depend on what else runs on the machine: measure on a quiet one.
"""

import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import nnhelpers as nh  # noqa: E402
from nnbook import book, warm_kernels  # noqa: E402
from nnbook.book import ROOT  # noqa: E402
from mlp_draw import mlp_draw  # noqa: E402


def median_seconds(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def draw_and_render(model, **kw):
    ax = mlp_draw(model, **kw)
    ax.figure.savefig(io.BytesIO(), format="png")
    plt.close(ax.figure)


def bench_mlp_draw():
    XTR, _, YTR, _ = nh.regression_split()
    reg = nh.regression_pipeline().fit(XTR, YTR)
    XTR_i, _, YTR_i, _ = nh.iris_split()
    iris = nh.iris_mlp().fit(StandardScaler().fit_transform(XTR_i), YTR_i)
    big = median_seconds(lambda: draw_and_render(reg["mlp"], figsize=(16, 16), alpha=0.5), 5)
    small = median_seconds(lambda: draw_and_render(iris, label_pos=1.3 / 7, add_labels=True), 5)
    print("mlp_draw, draw + render to PNG (median of 5)")
    print(f"  regression network 1-80-20-1 (1700 edges): {big:.3f} s")
    print(f"  iris network 4-3-2-3 with weight labels:   {small:.3f} s")


def lesson_network():
    torch.manual_seed(2024)
    nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 1), nn.Sigmoid())
    return nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 1),
                         nn.Sigmoid())


def bench_training_loops():
    XTR, _, YTR, _ = nh.circles_split()
    X = torch.tensor(XTR, dtype=torch.float32)
    y = torch.tensor(YTR, dtype=torch.float32)
    net = lesson_network()
    opt = torch.optim.Adam(net.parameters(), lr=0.001)
    loader = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True)
    slow = nh.train(net, nn.BCELoss(), opt, loader, 300, report_every=0)
    net = lesson_network()
    opt = torch.optim.Adam(net.parameters(), lr=0.001)
    fast = nh.train_fast(net, nn.BCELoss(), opt, X, y, 300, batch_size=16, report_every=0)
    print("Training the 2-8-6-1 network for 300 epochs (batch 16, CPU)")
    print(f"  DataLoader loop (nh.train):      {slow.seconds:.2f} s")
    print(f"  preloaded tensors (train_fast):  {fast.seconds:.2f} s")
    print(f"  speed-up: {slow.seconds / fast.seconds:.2f}x; identical losses: {slow.losses == fast.losses}")
    net = lesson_network()
    opt = torch.optim.Adam(net.parameters(), lr=0.001, fused=True)
    fused = nh.train_fast(net, nn.BCELoss(), opt, X, y, 300, batch_size=16, report_every=0)
    gap = max(abs(a - b) for a, b in zip(fused.losses, slow.losses))
    print(f"  for reference, train_fast with fused Adam: {fused.seconds:.2f} s "
          f"(not bit-identical: losses differ by up to {gap:.1e})")


def book_sweeps():
    XTR, XTS, YTR, YTS = nh.regression_split()
    sgd = dict(solver="sgd", learning_rate="constant")
    rates = [0.00001, 0.005, 0.01, 0.05, 0.1, 0.5]
    return [
        ([{"alpha": 10.0 ** k} for k in range(-5, 5, 2)], dict(X_test=XTS, y_test=YTS)),
        ([{"batch_size": b} for b in (2, 64, 256, len(XTR))], {}),
        ([dict(sgd, learning_rate_init=r, momentum=0) for r in rates],
         dict(cv_scoring="neg_mean_squared_error")),
        ([dict(sgd, learning_rate_init=r) for r in rates], dict(cv_scoring="neg_mean_squared_error")),
    ], XTR, YTR


def bench_sweeps():
    sweeps, XTR, YTR = book_sweeps()
    timings = {}
    for n_jobs in (1, -1):
        start = time.perf_counter()
        curves = [[r.loss_curve for r in nh.sweep(nh.regression_pipeline, configs, XTR, YTR,
                                                   n_jobs=n_jobs, **kw)]
                  for configs, kw in sweeps]
        timings[n_jobs] = (time.perf_counter() - start, curves)
    (serial, c1), (parallel, c2) = timings[1], timings[-1]
    n_fits = sum(len(configs) * (6 if "cv_scoring" in kw else 1) for configs, kw in sweeps)
    print(f"The book's four scikit-learn sweeps ({n_fits} fits), {os.cpu_count()} cores")
    print(f"  serial (n_jobs=1):    {serial:.1f} s")
    print(f"  parallel (n_jobs=-1): {parallel:.1f} s")
    print(f"  speed-up: {serial / parallel:.2f}x; identical loss curves: {c1 == c2}")


LESSON = Path(os.environ.get("LESSON_REFERENCE", ROOT.parent / "shared" / "bench" /
                                                   "lesson_reference.py"))


def run_timed(cmd, **kw):
    """Run a command; return (seconds, completed process). ``done.cpu`` holds the CPU
    seconds (user + system) of the command and every process it waited for."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    done.cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, done


def pytest_summary(done):
    """The result-cache line and the final pass/fail line of a pytest run."""
    lines = done.stdout.splitlines()
    cache = next((ln for ln in lines if ln.startswith("result cache:")), "result cache: no lookups")
    final = next((ln.strip("= ") for ln in reversed(lines) if " in " in ln and
                  ("passed" in ln or "failed" in ln)), "no pytest summary")
    return cache, final


def bench_ratio():
    if not LESSON.exists():
        print(f"The lesson script is not at {LESSON}: set LESSON_REFERENCE=path/to/lesson_reference.py")
        return
    with tempfile.TemporaryDirectory() as tmp:
        lesson, done = run_timed([sys.executable, str(LESSON)], cwd=tmp,
                                 env=dict(os.environ, MPLBACKEND="Agg"))
    if done.returncode:
        print(f"The lesson script failed:\n{done.stderr[-2000:]}")
        return
    sections = re.findall(r"^SECTION (\S+) ([0-9.]+)$", done.stdout, flags=re.M)
    test, run = run_timed(["make", "-s", "test"], cwd=ROOT)
    cache, final = pytest_summary(run)
    print(f"The lesson's code as one serial script and `make test`, side by side, {os.cpu_count()} cores")
    print(f"  lesson script:  {lesson:6.1f} s   (CPU {done.cpu:.0f} s; slowest sections: " + ", ".join(
        f"{name} {float(sec):.0f} s" for name, sec in
        sorted(sections, key=lambda x: -float(x[1]))[:3]) + ")")
    print(f"  make test:      {test:6.1f} s   (CPU {run.cpu:.0f} s on {os.cpu_count()} cores; "
          f"{final}; exit code {run.returncode})")
    print(f"  ratio:          {test / lesson:6.2f}   (goal of issue 29: at most 1.3)")
    print(f"  {cache}")
    if run.returncode:
        print("  make test failed; its last lines:\n" + "\n".join(run.stdout.splitlines()[-15:]))


def bench_nbval():
    seconds, run = run_timed(["make", "-s", "nbval"], cwd=ROOT)
    cache, final = pytest_summary(run)
    print(f"The whole book's strict nbval run (`make nbval`, empty result cache), {os.cpu_count()} cores")
    print(f"  {seconds:.1f} s, CPU {run.cpu:.0f} s   ({final}; exit code {run.returncode})")


def run_notebook(path, log):
    """Seconds to run ``path`` top to bottom in a fresh kernel, and the cache lookups."""
    import nbformat
    from nbclient import NotebookClient

    from nnbook.execute import AsyncIsolatedKernelManager

    Path(log).write_text("")
    os.environ["NNBOOK_CACHE_LOG"] = log          # inherited by the kernel
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   kernel_manager_class=AsyncIsolatedKernelManager,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    return seconds, Counter(line.split()[0] for line in Path(log).read_text().splitlines())


def bench_kernels():
    """Start a kernel and import what a chapter's first cell imports: fresh and warm."""
    import nbformat
    from nbclient import NotebookClient

    from nnbook.execute import AsyncIsolatedKernelManager

    first_cell = ("import nnhelpers as nh\nnh.setup_notebook()\nimport torch, sklearn.neural_network, "
                  "matplotlib.pyplot as plt, seaborn")

    def start_and_import():
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(first_cell)])
        NotebookClient(nb, timeout=120, kernel_name="python3",
                       kernel_manager_class=AsyncIsolatedKernelManager).execute()

    if not warm_kernels.available():
        print("Warm kernels need Linux (fork): no kernel benchmark here.")
        return
    with warm_kernels.turned_off():
        fresh = median_seconds(start_and_import, 5)
    with warm_kernels.serving():
        start_and_import()                          # waits for the server's imports
        warm = median_seconds(start_and_import, 5)
    print("A kernel started and a chapter's imports run (median of 5)")
    print(f"  fresh interpreter (JupyterLab, make execute): {fresh:.2f} s")
    print(f"  forked from the warm server (make test, make grade): {warm:.2f} s")


def bench_chapters():
    folder = nh.cache_dir()
    if folder is None:
        print("The result cache is off (NNBOOK_CACHE_DIR=off): no chapter benchmark.")
        return
    saved = folder.with_name(folder.name + f".saved-by-bench-{os.getpid()}")
    if folder.exists():
        folder.rename(saved)
    only = os.environ.get("BENCH_CHAPTERS", "").split()       # e.g. BENCH_CHAPTERS="03 07"
    chapters = [p for p in book.chapter_notebooks()
                if not only or p.name.startswith(tuple(only))]
    rows, totals = [], Counter()
    print(f"Each chapter in a fresh kernel, first run (empty cache) and re-run, {os.cpu_count()} cores")
    print(f"  {'chapter':34s} {'first':>7s} {'re-run':>7s}   cache (first run; re-run)", flush=True)
    try:
        # fresh kernels, as JupyterLab starts them
        with warm_kernels.turned_off(), tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "lookups.log")
            for path in chapters:
                shutil.rmtree(folder, ignore_errors=True)        # every first run starts cold
                first, c1 = run_notebook(path, log)
                again, c2 = run_notebook(path, log)
                totals.update(c2)
                rows.append((path.stem, first, again))
                print(f"  {path.stem:34s} {first:6.1f}s {again:6.1f}s   "
                      f"{c1['misses']} misses, {c1['hits']} hits; "
                      f"{c2['hits']} hits, {c2['misses']} misses"
                      + (f", {c2['uncacheable']} uncacheable" if c2["uncacheable"] else ""),
                      flush=True)
    finally:
        os.environ.pop("NNBOOK_CACHE_LOG", None)
        shutil.rmtree(folder, ignore_errors=True)
        if saved.exists():
            saved.rename(folder)
    if not rows:
        return
    print(f"  {'all chapters':34s} {sum(r[1] for r in rows):6.1f}s {sum(r[2] for r in rows):6.1f}s")
    print(f"  slowest: first run {max(r[1] for r in rows):.1f} s (goal 60 s), "
          f"re-run {max(r[2] for r in rows):.1f} s (goal 15 s)")
    lookups = totals["hits"] + totals["misses"]
    print(f"  re-run cache hit rate: {totals['hits']} of {lookups} lookups"
          + (f" ({totals['hits'] / lookups:.0%})" if lookups else ""))


SECTIONS = {"ratio": bench_ratio, "nbval": bench_nbval, "kernels": bench_kernels,
            "chapters": bench_chapters,
            "draw": bench_mlp_draw, "loops": bench_training_loops, "sweeps": bench_sweeps}


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)      # as in the chapters (nh.setup_notebook)
    which = sys.argv[1:] or os.environ.get("BENCH", "").split() or list(SECTIONS)
    if which == ["quick"]:
        which = ["chapters"]
    unknown = set(which) - set(SECTIONS)
    if unknown:
        sys.exit(f"Unknown benchmark section(s) {sorted(unknown)}: choose from "
                 f"{', '.join(SECTIONS)} or quick.")
    for name in SECTIONS:
        if name in which:
            if name in ("loops", "sweeps"):
                os.environ["NNBOOK_CACHE_DIR"] = "off"      # time the computation itself
            SECTIONS[name]()
            print(flush=True)
