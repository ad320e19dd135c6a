"""Plumbing shared by the chapters of *Neural Networks, an executable course book*.

The teaching code stays in the notebooks. What lives here is what every chapter
needs and no chapter should repeat: notebook set-up, seeds and devices, the
book's datasets, evaluation tables and plots, a torch training loop, a
parallel sweep over scikit-learn configurations and the exercise self-checks.
Two modules beside this one hold what students use without reading: the result
cache that spares training and sweeps from computing the same fit twice
(``nncache``: ``nh.cache_dir()``, ``nh.cache_off()``) and the data the chapters
hand to their web pages (``nnpage``: ``nh.to_page(...)``).

Plotting helpers take ``ax=None``, return the Axes and never call ``plt.show()``.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

import nncache
from nncache import cache_dir, cache_off, cache_stats, cached  # noqa: F401  (nh.cached(...) etc.)
from nnpage import PAGE_DATA_LIMIT, page_data, to_page  # noqa: F401  (nh.to_page(...))

ROOT = Path(__file__).resolve().parent.parent
"""The book's top folder (this file lives in ``scripts/``)."""

DATA_DIR = ROOT / "data"
OUTPUT_DIR: Path | None = None
"""Folder where notebooks write files (models, exports); see :func:`output_path`.
None (the default): ``_output/`` in the current working directory, which is the
notebook's own folder when Jupyter runs it; the environment variable
``NNBOOK_OUTPUT_DIR`` overrides that (tests set it so that parallel runs never share files)."""

SEED = 2024
"""The seed the book uses for every random draw."""


# --------------------------------------------------------------------------
# Notebook set-up
# --------------------------------------------------------------------------

def _warning_as_note(message, category, filename, lineno, file=None, line=None):
    """Print a warning as one short line without the file path or source line."""
    text = str(message).strip().splitlines()[0]
    print(f"Note ({category.__name__}): {text}", file=sys.stderr)


def setup_notebook(seed: int = SEED) -> None:
    """Prepare a chapter notebook: text displays, one plot style, tidy warnings.

    * scikit-learn estimators display as text (their HTML repr holds random ids);
    * one seaborn theme with a color-blind-safe palette for every figure;
    * library warnings print as one deterministic line, without a file path;
      each distinct warning is shown once per cell location.
    * Python, NumPy and (if imported) torch are seeded with ``seed``;
    * torch, if imported, computes on one CPU thread: the book's networks are so small that
      more threads cost more than they gain (badly so when notebooks or sweeps
      run side by side), and results then do not depend on the core count.
    """
    import matplotlib as mpl
    import seaborn as sns
    import sklearn

    sklearn.set_config(display="text")
    sns.set_theme(style="whitegrid", palette="colorblind")
    mpl.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "figure.figsize": (6.4, 3.6)})
    warnings.showwarning = _warning_as_note
    set_seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def set_seed(seed: int = SEED) -> None:
    """Seed Python's ``random``, NumPy's legacy global generator and torch.

    torch is seeded only if the notebook has imported it (importing it here
    would cost chapters that never use it a couple of seconds).
    """
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def best_device(verbose: bool = True):
    """Return the fastest torch device here (mps, cuda or cpu), and say why.

    Apple's Metal (MPS) is preferred on Macs, then CUDA, then the CPU.
    """
    import torch

    if torch.backends.mps.is_available():
        device, why = torch.device("mps"), "Apple Metal (MPS) is available"
    elif torch.cuda.is_available():
        device = torch.device("cuda")
        why = f"CUDA GPU found: {torch.cuda.get_device_name(0)}"
    else:
        device, why = torch.device("cpu"), "no GPU found"
    if verbose:
        print(f"Using {device.type}: {why}.")
    return device


def output_path(name: str) -> Path:
    """Path of a file a notebook may write: ``_output/<name>`` beside the running notebook.

    The folder is ``_output/`` in the current working directory (Jupyter starts a
    notebook's kernel in the notebook's folder, so each student's files stay with
    their own notebooks; git ignores every ``_output/``). ``NNBOOK_OUTPUT_DIR``, or
    :data:`OUTPUT_DIR` if set, names another folder. The folder is created if needed.
    """
    folder = OUTPUT_DIR or Path(os.environ.get("NNBOOK_OUTPUT_DIR") or Path.cwd() / "_output")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


# --------------------------------------------------------------------------
# The book's datasets
# --------------------------------------------------------------------------

def circles_data(seed: int = SEED):
    """Chapter 2's make_circles sample: 1000 points, factor 0.2, noise 0.15."""
    from sklearn.datasets import make_circles

    return make_circles(n_samples=1000, factor=0.2, noise=0.15, random_state=seed)


def circles_split():
    """Scaled stratified 80/20 split of :func:`circles_data`, as in chapter 2.

    Returns ``XTR, XTS, YTR, YTS`` as NumPy arrays; the scaler is fitted on the
    training part only.
    """
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, Y = circles_data()
    XTR, XTS, YTR, YTS = train_test_split(X, Y, test_size=0.2, random_state=1, stratify=Y)
    scaler = StandardScaler().fit(XTR)
    return scaler.transform(XTR), scaler.transform(XTS), YTR, YTS


IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def iris_frame() -> pd.DataFrame:
    """The iris data with named columns and the integer ``species`` code."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    df = pd.DataFrame(iris["data"], columns=IRIS_COLUMNS)
    df["species"] = iris["target"]
    return df


def iris_split():
    """Stratified 80/20 split of :func:`iris_frame` with seed 1 (unscaled frames)."""
    from sklearn.model_selection import train_test_split

    df = iris_frame()
    return train_test_split(df[IRIS_COLUMNS], df["species"], test_size=0.2,
                            random_state=1, stratify=df["species"])


def regression_data(n: int = 1000, seed: int = SEED):
    """Chapter 5's synthetic regression data, and the generator that made it.

    ``Y = X/2 + sin(X) cos(2X) + 0.3 * noise`` on ``n`` evenly spaced X in [0, 5].
    The generator is returned because chapter 6 continues drawing from it.
    """
    rng = np.random.default_rng(seed)
    X = np.linspace(start=0, stop=5, num=n)
    Y = regression_signal(X) + 0.3 * rng.normal(size=n)
    return pd.DataFrame({"X": X, "Y": Y}), rng


def regression_signal(X):
    """The noise-free curve behind the regression data."""
    return X / 2 + np.sin(X) * np.cos(2 * X)


def regression_split():
    """The 80/20 split (seed 1) of :func:`regression_data`, as frames/series."""
    from sklearn.model_selection import train_test_split

    df, _ = regression_data()
    return train_test_split(df[["X"]], df["Y"], test_size=0.2, random_state=1)


def circles_mlp(**params):
    """Chapter 2's (unfitted) two-circles classifier: (8, 6) ReLU, max_iter 10000, seed 2024."""
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(**{**dict(hidden_layer_sizes=(8, 6), activation="relu",
                                   max_iter=10000, random_state=SEED), **params})


def iris_mlp(**params):
    """Chapter 4's (unfitted) iris classifier: (3, 2) ReLU, max_iter 6000, seed 2024."""
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(**{**dict(hidden_layer_sizes=(3, 2), activation="relu",
                                   max_iter=6000, random_state=SEED), **params})


def regression_pipeline(**mlp_params):
    """Scaler (pandas output) plus ``MLPRegressor`` with chapter 5's settings.

    Chapter 5's regressor has hidden layers (80, 20), ReLU, random_state 2024
    and max_iter 2000; keyword arguments override or add MLP parameters.
    """
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    params = dict(hidden_layer_sizes=(80, 20), activation="relu",
                  random_state=SEED, max_iter=2000)
    params.update(mlp_params)
    scaler = StandardScaler().set_output(transform="pandas")
    return Pipeline(steps=[("scaler", scaler), ("mlp", MLPRegressor(**params))])


# --------------------------------------------------------------------------
# Evaluation tables and plots
# --------------------------------------------------------------------------

def prediction_frame(model, X, y, name: str = "model") -> pd.DataFrame:
    """Inputs, target, class probabilities and predicted class in one frame.

    Columns: the inputs, ``Y``, one ``<name>_prob_<class>`` column per class and
    ``<name>_pred``. For a regressor only ``<name>_pred`` is added.
    """
    frame = pd.DataFrame(np.asarray(X), columns=_column_names(X))
    frame["Y"] = np.asarray(y)
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        for k, label in enumerate(model.classes_):
            frame[f"{name}_prob_{label}"] = proba[:, k]
    frame[f"{name}_pred"] = model.predict(X)
    return frame


def baseline_score(model, X_train, y_train, X_test, y_test) -> float:
    """Test score of the trivial model that ignores the inputs.

    For a classifier: always predict the majority class of the training data
    (score = accuracy). For a regressor: always predict the training mean
    (score = R², so about 0; use :func:`baseline_mse` for its error). ``model``
    only tells which kind of trivial model to use.
    """
    from sklearn.base import is_classifier
    from sklearn.dummy import DummyClassifier, DummyRegressor

    trivial = (DummyClassifier(strategy="most_frequent") if is_classifier(model)
               else DummyRegressor(strategy="mean"))
    return float(trivial.fit(X_train, np.ravel(y_train)).score(X_test, np.ravel(y_test)))


def baseline_mse(y_train, y_test) -> float:
    """Mean squared error on ``y_test`` of always predicting the mean of ``y_train``."""
    y_train, y_test = np.ravel(y_train).astype(float), np.ravel(y_test).astype(float)
    return float(np.mean((y_test - y_train.mean()) ** 2))


def mcnemar_test(right_a, right_b) -> tuple[int, int, float]:
    """Exact two-sided McNemar test of two classifiers scored on the same items.

    ``right_a`` and ``right_b`` are boolean arrays, True where each classifier is
    right. Returns ``(only_a, only_b, p_value)``: the items only ``a`` gets right, the
    items only ``b`` gets right, and the probability that a fair coin splits
    ``only_a + only_b`` tosses at least this unevenly (chapter 9 computes it by hand).
    """
    right_a, right_b = np.asarray(right_a, dtype=bool), np.asarray(right_b, dtype=bool)
    if right_a.shape != right_b.shape:
        raise ValueError(f"mcnemar_test needs the two classifiers' results on the same items; "
                         f"got shapes {right_a.shape} and {right_b.shape}")
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    n, k = only_a + only_b, min(only_a, only_b)
    p_value = min(1.0, 2 * sum(math.comb(n, j) for j in range(k + 1)) / 2**n)
    return only_a, only_b, p_value


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion, e.g. an accuracy of ``successes``/``n``.

    Better than the normal approximation for small ``n`` or proportions near 0
    or 1 (29 of 30 correct gives about (0.83, 0.99), not (0.90, 1.03)).
    """
    from scipy.stats import norm

    if not (isinstance(n, (int, np.integer)) and n > 0):
        raise ValueError(f"n must be a positive whole number of trials, got {n!r}.")
    if not (0 <= successes <= n):
        raise ValueError(f"successes must lie between 0 and n={n}, got {successes!r}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}.")
    z = norm.ppf(0.5 + confidence / 2)
    p = successes / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float(max(0.0, center - half)), float(min(1.0, center + half))


def _column_names(X):
    if hasattr(X, "columns"):
        return list(X.columns)
    return [f"x{k + 1}" for k in range(np.asarray(X).shape[1])]     # inputs count from 1


def _figure_axes(axes, n, figsize):
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, n, figsize=figsize, layout="constrained")
    if len(axes) != n:
        raise ValueError(f"expected {n} Axes, got {len(axes)}; pass axes=None to create them")
    return axes


def plot_confusion_pair(y_train, pred_train, y_test, pred_test, title=None,
                        labels=None, axes=None):
    """Confusion matrices for training and test predictions, side by side.

    Returns the two Axes. ``labels`` fixes the row/column order (the book
    puts the positive class first: ``labels=[1, 0]``).
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    axes = _figure_axes(axes, 2, (6.4, 2.8))
    for ax, y, pred, part in zip(axes, (y_train, y_test), (pred_train, pred_test),
                                 ("Training", "Test")):
        ConfusionMatrixDisplay.from_predictions(y, pred, labels=labels, cmap="Greens",
                                                colorbar=False, ax=ax)
        ax.set_title(part)
        ax.grid(False)
    if title:
        axes[0].figure.suptitle(title)
    return axes


def plot_roc_pair(model, X_train, y_train, X_test, y_test, title=None, axes=None):
    """ROC curves with the chance line for training and test data, side by side."""
    from sklearn.metrics import RocCurveDisplay

    axes = _figure_axes(axes, 2, (9, 4))
    for ax, X, y, part in zip(axes, (X_train, X_test), (y_train, y_test), ("Training", "Test")):
        RocCurveDisplay.from_estimator(model, X, y, plot_chance_level=True, ax=ax)
        ax.set_title(part)
    if title:
        axes[0].figure.suptitle(title)
    return axes


def plot_decision_boundary(model, X, y, ax=None, grid_points=200, cmap="Greens"):
    """Decision regions of a two-input classifier, with the points colored by class.

    ``model`` is a fitted estimator or any function mapping an (n, 2) array to
    class labels (e.g. a wrapped torch network). The regions are drawn with
    scikit-learn's ``DecisionBoundaryDisplay``; returns the Axes.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns
    from sklearn.inspection import DecisionBoundaryDisplay

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    X = np.asarray(X)
    predict = model.predict if hasattr(model, "predict") else model
    pad = 0.5
    xx0, xx1 = np.meshgrid(np.linspace(X[:, 0].min() - pad, X[:, 0].max() + pad, grid_points),
                           np.linspace(X[:, 1].min() - pad, X[:, 1].max() + pad, grid_points))
    response = np.asarray(predict(np.c_[xx0.ravel(), xx1.ravel()])).reshape(xx0.shape)
    n_classes = len(np.unique(np.asarray(y)))
    DecisionBoundaryDisplay(xx0=xx0, xx1=xx1, response=response, n_classes=n_classes).plot(
        ax=ax, cmap=cmap, alpha=0.5, xlabel="x1", ylabel="x2")
    sns.scatterplot(x=X[:, 0], y=X[:, 1], hue=np.asarray(y), ax=ax, s=15)
    ax.legend(title="Y", loc="upper right")
    return ax


def plot_fitted_vs_observed(x, y, y_pred, title=None, ax=None):
    """Observed values and the model's fitted values against one input."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3))
    x = np.asarray(x).ravel()
    ax.scatter(x, np.asarray(y), s=6, color="C3", alpha=0.5, label="observed")
    ax.scatter(x, np.asarray(y_pred), s=6, color="C0", label="fitted")
    ax.set_xlabel("X")
    ax.set_ylabel("Y")
    ax.legend(loc="upper left")
    if title:
        ax.set_title(title)
    return ax


def plot_loss_curve(losses, title=None, ax=None, label=None, **line_kw):
    """One loss curve (loss against epoch); returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    ax.plot(np.arange(1, len(losses) + 1), losses, label=label, **line_kw)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    if title:
        ax.set_title(title)
    return ax


# --------------------------------------------------------------------------
# Training torch models
# --------------------------------------------------------------------------

@dataclass
class History:
    """What :func:`train` returns: per-epoch losses and the time taken.

    ``losses`` are mean training-batch losses; ``eval_losses`` (when evaluation
    data were given) the loss on those data, computed in ``eval()`` mode.
    With early stopping (``patience``), ``best_epoch`` is the epoch whose
    weights the model holds at the end and ``stopped_epoch`` the last epoch
    run, or None if training ran all ``n_epochs``.
    """

    losses: list = field(default_factory=list)
    eval_losses: list = field(default_factory=list)
    seconds: float = 0.0
    best_epoch: int | None = None
    stopped_epoch: int | None = None


def _report(epoch, loss, report_every, n_epochs):
    if report_every and (epoch == 1 or epoch % report_every == 0 or epoch == n_epochs):
        print(f"Epoch {epoch:4d}  training loss {loss:.6f}")


def _step(model, loss_fn, optimizer, x, y):
    """One forward pass, backward pass and update; returns the batch loss."""
    loss = loss_fn(model(x), y.unsqueeze(-1) if y.dim() == 1 else y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def model_device(model):
    """The device of a model's first parameter (the CPU for a parameterless one)."""
    import torch

    return next(model.parameters(), torch.empty(0)).device


def evaluate_loss(model, loss_fn, X, y):
    """Loss of ``model`` on tensors ``X, y`` in eval mode, without gradients."""
    import torch

    was_training = model.training
    model.eval()
    device = model_device(model)
    with torch.no_grad():
        y = y.to(device)
        loss = loss_fn(model(X.to(device)), y.unsqueeze(-1) if y.dim() == 1 else y).item()
    model.train(was_training)
    return loss


def _check_patience(patience, min_epochs, eval_data, n_epochs):
    """Raise a clear error for early-stopping arguments that cannot work."""
    if patience is None:
        if min_epochs:
            raise ValueError("min_epochs only applies with early stopping: "
                             "give patience=<epochs> too, or leave min_epochs at 0.")
        return
    if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) or patience < 1:
        raise ValueError(f"patience must be a whole number of epochs >= 1, got {patience!r}.")
    if eval_data is None:
        raise ValueError("patience needs validation data to watch: pass eval_data=(X_val, y_val).")
    if (isinstance(min_epochs, bool) or not isinstance(min_epochs, (int, np.integer))
            or not 0 <= min_epochs <= n_epochs):
        raise ValueError(f"min_epochs must be a whole number between 0 and n_epochs={n_epochs}, "
                         f"got {min_epochs!r}.")


def _train_epochs(model, loss_fn, optimizer, epoch_batches, n_epochs, report_every, eval_data,
                  patience=None, min_epochs=0):
    """The epoch loop shared by :func:`train` and :func:`train_fast`.

    ``epoch_batches()`` yields one epoch's ``(x, y)`` batches, already on the
    model's device. With ``patience`` (epochs), training stops once the loss on
    ``eval_data`` has not improved for ``patience`` epochs in a row, but not
    before epoch ``min_epochs``; the model then gets back the weights of its
    best epoch (the optimizer keeps its state).
    """
    _check_patience(patience, min_epochs, eval_data, n_epochs)
    model.train()
    history = History()
    best_loss = best_state = None          # of the best epoch so far, with patience
    start = time.perf_counter()
    for epoch in range(1, n_epochs + 1):
        total, n_batches = 0.0, 0
        for x, y in epoch_batches():
            total += _step(model, loss_fn, optimizer, x, y)
            n_batches += 1
        history.losses.append(total / n_batches)
        if eval_data is not None:
            history.eval_losses.append(evaluate_loss(model, loss_fn, *eval_data))
        _report(epoch, history.losses[-1], report_every, n_epochs)
        if patience is not None:
            if history.best_epoch is None or history.eval_losses[-1] < best_loss:
                best_loss, history.best_epoch = history.eval_losses[-1], epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if epoch - history.best_epoch >= patience and epoch >= min_epochs and epoch < n_epochs:
                history.stopped_epoch = epoch
                break
    if patience is not None:
        model.load_state_dict(best_state)
        if report_every:
            ran = (f"Stopped at epoch {history.stopped_epoch}" if history.stopped_epoch
                   else f"Ran all {n_epochs} epochs")
            print(f"{ran}; restored the weights of epoch {history.best_epoch} "
                  f"(eval loss {best_loss:.6f})")
    history.seconds = time.perf_counter() - start
    if report_every:
        print(f"Training took {history.seconds:.1f} s")
    return history


@nncache.cached_training
def train(model, loss_fn, optimizer, loader, n_epochs, device=None, report_every=10,
          eval_data=None, patience=None, min_epochs=0):
    """Train ``model`` for ``n_epochs`` over the batches of a DataLoader.

    Each batch is moved to ``device`` (default: the model's device). A target of
    shape ``(batch,)`` is turned into ``(batch, 1)`` to match a one-output net.
    Prints the mean training loss at epoch 1, every ``report_every`` epochs and
    the last one (``report_every=0`` prints nothing), then the total time.
    With ``eval_data=(X, y)`` the loss on those data is also recorded after
    every epoch. Early stopping: with ``patience=k`` training stops after ``k``
    epochs in a row without a lower loss on ``eval_data`` (never before epoch
    ``min_epochs``) and the model gets back the weights of its best epoch.
    Returns a :class:`History`.
    """
    device = model_device(model) if device is None else device
    model.to(device)
    batches = lambda: ((x.to(device), y.to(device)) for x, y in loader)  # noqa: E731
    return _train_epochs(model, loss_fn, optimizer, batches, n_epochs, report_every, eval_data,
                         patience, min_epochs)


def shuffled_batches(X, y, batch_size):
    """Yield shuffled mini-batches of preloaded tensors in a DataLoader's order.

    ``DataLoader(..., shuffle=True)`` draws two numbers from torch's global
    generator at the start of each epoch (a worker base seed, then the seed of
    its sampler's private generator) and permutes with that private generator.
    Drawing the same numbers here yields exactly the same batches, so training
    results are bit-identical.
    """
    import torch

    torch.empty((), dtype=torch.int64).random_()          # the loader's base seed
    seed = int(torch.empty((), dtype=torch.int64).random_().item())
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
    for idx in order.split(batch_size):
        idx = idx.to(X.device)
        yield X[idx], y[idx]


@nncache.cached_training
def train_fast(model, loss_fn, optimizer, X, y, n_epochs, batch_size=16, report_every=10,
               eval_data=None, patience=None, min_epochs=0):
    """Like :func:`train`, but on tensors held on the model's device, without a DataLoader.

    Batches come from :func:`shuffled_batches`, which follows the DataLoader's
    random draws, so the losses equal :func:`train`'s to the bit.
    """
    device = model_device(model)
    X, y = X.to(device), y.to(device)
    batches = lambda: shuffled_batches(X, y, batch_size)  # noqa: E731
    return _train_epochs(model, loss_fn, optimizer, batches, n_epochs, report_every, eval_data,
                         patience, min_epochs)


# --------------------------------------------------------------------------
# Parallel sweeps over scikit-learn configurations
# --------------------------------------------------------------------------

@dataclass
class SweepResult:
    """One configuration of a sweep: its parameters, fitted model and scores."""

    params: dict
    model: object
    loss_curve: list
    test_score: float | None = None
    cv_score: float | None = None
    warnings: list = field(default_factory=list)


def _fit_task(estimator, X, y, train=None, test=None, scoring=None):
    """One fit of a sweep, on a fresh copy of ``estimator``: the full fit
    (``train is None``) or one CV fold.

    Returns the fitted model (full fit) or the fold's score, plus the distinct
    warnings the fit raised.
    """
    from sklearn.base import clone
    from sklearn.metrics import get_scorer

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if train is None:
            result = clone(estimator).fit(X, y)
        else:
            model = clone(estimator).fit(_rows(X, train), _rows(y, train))
            result = get_scorer(scoring)(model, _rows(X, test), _rows(y, test))
    return result, {f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught}


def _rows(data, index):
    return data.iloc[index] if hasattr(data, "iloc") else data[index]


def sweep(make_model, configs, X, y, X_test=None, y_test=None, cv_scoring=None, n_jobs=-1):
    """Fit ``make_model(**params)`` for every dict in ``configs``, in parallel.

    Each result holds the fitted model, its loss curve, the test score (R² or
    accuracy, when test data are given), the mean 5-fold cross-validated score
    (when ``cv_scoring`` is given: the same folds and score as scikit-learn's
    ``cross_val_score``) and the distinct warnings the fits raised, collected
    instead of printed. Every fit, including each cross-validation fold, is a
    separate job for joblib, so one slow configuration does not hold up the
    rest. Results come back in the order of ``configs`` and are identical to a
    serial run (``n_jobs=1``). ``make_model`` is called once per configuration;
    the full fit and every fold fit a copy of that one estimator. A fit computed
    before (same estimator, data and library versions) is read from the result
    cache instead (:func:`cache_dir`).
    """
    from sklearn.model_selection import KFold

    estimators = [make_model(**params) for params in configs]
    folds = list(KFold(n_splits=5).split(X)) if cv_scoring else []
    tasks = [(i, None, None) for i in range(len(configs))]
    tasks += [(i, train, test) for i in range(len(configs)) for train, test in folds]
    outputs = nncache.cached_fits(_fit_task, estimators, X, y, tasks, cv_scoring, n_jobs)
    results = []
    for i, params in enumerate(configs):
        mine = [out for (k, train, _), out in zip(tasks, outputs) if k == i]
        model, notes = mine[0]
        scores = [score for score, _ in mine[1:]]
        notes = set(notes).union(*(n for _, n in mine[1:]))
        mlp = model[-1] if hasattr(model, "steps") else model
        test = None if X_test is None else float(model.score(X_test, y_test))
        cv = float(np.mean(scores)) if scores else None
        results.append(SweepResult(params, model, list(mlp.loss_curve_), test, cv, sorted(notes)))
    return results


def sweep_table(results, key: str) -> pd.DataFrame:
    """One row per sweep result: the swept parameter (as text), epochs and scores.

    ``epochs`` is the length of the loss curve: for scikit-learn's ``sgd`` and
    ``adam`` solvers, ``n_iter_`` and ``max_iter`` count epochs (passes over
    the training data), not updates. ``final loss`` is the last entry of
    ``loss_curve_`` (for a regressor, half the MSE plus the L2 penalty).
    ``stopped by tol`` is True where scikit-learn's stopping rule ended the
    fit (the loss or validation score failed to improve by ``tol`` for
    ``n_iter_no_change`` epochs), which says the progress slowed, not that
    the fit is good; False where it ran to ``max_iter`` (a ConvergenceWarning).
    """
    rows = []
    for r in results:
        row = {key: f"{r.params[key]:g}", "epochs": len(r.loss_curve),
               "final loss": r.loss_curve[-1]}
        if r.test_score is not None:
            row["test score"] = r.test_score
        if r.cv_score is not None:
            row["CV score"] = r.cv_score
        row["stopped by tol"] = not any("ConvergenceWarning" in w for w in r.warnings)
        rows.append(row)
    return pd.DataFrame(rows)


def plot_sweep(results, title, ncols=1, figsize=None, suptitle=None, sharey=True,
               yscale="linear"):
    """One loss curve per sweep result (loss against epoch), each titled by ``title(result)``.

    Panels are laid out in ``ncols`` columns (default: stacked in one column).
    By default all panels share one y-axis, so that their losses can be
    compared by eye; ``sharey=False`` gives each panel its own. ``yscale="log"``
    suits losses that span orders of magnitude. Returns the flat array of Axes.
    """
    import matplotlib.pyplot as plt

    if yscale not in {"linear", "log"}:
        raise ValueError(f"yscale must be 'linear' or 'log', not {yscale!r}")
    nrows = -(-len(results) // ncols)
    figsize = figsize or (6 if ncols == 1 else 3.5 * ncols, 2.2 * nrows)
    _, axes = plt.subplots(nrows, ncols, figsize=figsize, layout="constrained", squeeze=False,
                           sharey=sharey)
    axes = axes.ravel()
    for ax, r in zip(axes, results):
        plot_loss_curve(r.loss_curve, ax=ax, title=title(r))
        ax.set_xlabel("epoch")
        ax.set_yscale(yscale)
    if suptitle:
        axes[0].figure.suptitle(suptitle)
    return axes


def report_warnings(results, key: str) -> None:
    """Print each sweep configuration's collected warnings as one short line."""
    for r in results:
        for w in r.warnings:
            print(f"{key}={r.params[key]}: {w}")


# --------------------------------------------------------------------------
# Exercise self-checks
# --------------------------------------------------------------------------

def check(name: str, answer) -> None:
    """Say whether an exercise's answer is right. Never raises.

    Prints one of three verdicts: not answered yet, correct, or not quite (with a
    hint that does not give the answer away). The answer key and the rules (correct
    roundings, squeezed shapes, hints on digits and units) live in ``nnexercises.py``;
    new answers are added there with ``python scripts/nnexercises.py encode ...``.
    """
    try:
        import nnexercises

        message = nnexercises.verdict(name, answer).message
    except Exception as err:  # a broken installation must not stop the notebook
        message = f"[{name}] could not be checked ({type(err).__name__}: {err})."
    print(message)
