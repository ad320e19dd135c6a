"""Benchmarks for `make bench`: prints figures, asserts nothing.

1. mlp_draw: median time to draw and render the lesson's largest network
   (1-80-20-1, 1700 edges) and the iris network (4-3-2-3, with labels).
2. Training the chapter 3 network for 300 epochs: the DataLoader loop
   (nh.train) against the loop over preloaded tensors (nh.train_fast), and,
   for reference, the fast loop with PyTorch's fused Adam.
3. The book's scikit-learn sweeps (alpha, batch size, the two learning-rate
   sweeps with cross-validation) fitted serially and with nh.sweep in parallel.
"""

import io
import os
import statistics
import sys
import time
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import nnhelpers as nh  # noqa: E402
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


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)      # as in the chapters (nh.setup_notebook)
    which = sys.argv[1:] or ["draw", "loops", "sweeps"]
    for name, fn in [("draw", bench_mlp_draw), ("loops", bench_training_loops),
                     ("sweeps", bench_sweeps)]:
        if name in which:
            fn()
            print()
