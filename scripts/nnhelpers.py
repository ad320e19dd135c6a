"""Plumbing shared by the chapters of *Neural Networks, an executable course book*.

The teaching code stays in the notebooks. What lives here is what every chapter
needs and no chapter should repeat: notebook set-up, seeds and devices, the
book's datasets, evaluation tables and plots, a torch training loop, a
parallel sweep over scikit-learn configurations, a result cache that spares
both from computing the same fit twice, and the exercise self-checks.

Plotting helpers take ``ax=None``, return the Axes and never call ``plt.show()``.
"""

from __future__ import annotations

import os
import random
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

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
# Result cache: a fit computed once is not computed again
# --------------------------------------------------------------------------
#
# nh.sweep (per fit and per cross-validation fold) and nh.train / nh.train_fast
# keep their results on disk, keyed by a hash of everything that determines them:
# the unfitted estimator or the model's initial weights, the optimizer and its
# state, the loss, the data, every call argument, the random-number generators'
# states at the call, the library versions and this file's own code. A hit
# leaves the world as the real run would: the same weights, optimizer state,
# random-generator states, returned values and printed lines (only the
# "took <n> s" duration is the real, shorter one). Anything the key cannot
# vouch for (a class or function defined in a notebook, data on a GPU, an
# estimator without a fixed random_state) is simply computed, never cached.

import hashlib  # noqa: E402  (here, with the cache that uses it)

_HELPERS_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
_CACHE_MAGIC = b"nnbook-result-cache 1\n"
_CACHE_LIBRARIES = ("numpy", "pandas", "scipy", "scikit-learn", "torch", "joblib",
                    "threadpoolctl")
_TRUSTED_MODULES = ("builtins", "collections", "numpy", "pandas", "scipy", "sklearn", "torch",
                    __name__)
_MISS = object()
cache_stats = {"hits": 0, "misses": 0, "uncacheable": 0}
"""Result-cache lookups in this process: hits, misses, and calls it could not key."""


class _Uncacheable(Exception):
    """Raised while keying a call whose result the cache cannot vouch for."""


def cache_dir() -> Path | None:
    """Folder of the result cache, or None when the cache is off.

    ``_output/cache`` in the book's folder by default (git-ignored: a fresh
    clone starts with an empty cache). The environment variable
    ``NNBOOK_CACHE_DIR`` moves it; ``NNBOOK_CACHE_DIR=off`` turns it off, so
    that every fit is computed. Delete the folder to empty the cache.
    """
    value = os.environ.get("NNBOOK_CACHE_DIR", "").strip()
    if value.lower() == "off" or _CACHE_PAUSED:
        return None
    return Path(value) if value else ROOT / "_output" / "cache"


_CACHE_PAUSED: list = []


class cache_off:
    """``with nh.cache_off():`` computes every fit and training inside, e.g. to time them.

    Nothing is read from or written to the result cache within the block.
    """

    def __enter__(self):
        _CACHE_PAUSED.append(self)
        return self

    def __exit__(self, *exc):
        _CACHE_PAUSED.remove(self)
        return False


def _library_versions() -> dict:
    """Versions of Python and of the libraries whose code computes the cached results."""
    from importlib import metadata

    versions = {"python": sys.version}
    for name in _CACHE_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


_VERSIONS: dict = {}


def _environment() -> tuple:
    """What every cache key includes: library versions, machine and this file's code."""
    import platform

    if not _VERSIONS:
        _VERSIONS.update(_library_versions())
    return (sorted(_VERSIONS.items()), platform.machine(), _HELPERS_DIGEST)


def _trusted(module) -> bool:
    """True for library code, whose behavior the versions in the key pin down."""
    return (module or "").split(".")[0] in _TRUSTED_MODULES


def _type_name(obj) -> str:
    kind = obj if isinstance(obj, type) else type(obj)
    if not _trusted(kind.__module__):
        raise _Uncacheable(f"{kind.__module__}.{kind.__qualname__} is not library code")
    return f"{kind.__module__}.{kind.__qualname__}"


def _put(h, tag: str, data: bytes = b"") -> None:
    h.update(b"%s %d:" % (tag.encode(), len(data)) + data)


def _data_digest(obj, memo) -> str:
    """sha256 of an array, tensor or pandas object's type, shape, dtype and exact bits."""
    if id(obj) in memo:
        return memo[id(obj)][1]
    h = hashlib.sha256()
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise _Uncacheable("object arrays")
        _put(h, "ndarray", f"{obj.dtype.str} {obj.shape}".encode())
        _put(h, "bytes", np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, (pd.DataFrame, pd.Series)):
        frame = obj.to_frame() if isinstance(obj, pd.Series) else obj
        _put(h, type(obj).__name__, repr(list(frame.columns)).encode())
        _feed(h, obj.name if isinstance(obj, pd.Series) else None, memo)
        _feed(h, dict(obj.attrs), memo)
        _put(h, "index", _data_digest(obj.index, memo).encode())
        for col in range(frame.shape[1]):
            _put(h, "column", _data_digest(frame.iloc[:, col].to_numpy(), memo).encode())
            _put(h, "dtype", str(frame.dtypes.iloc[col]).encode())
    elif isinstance(obj, pd.Index):
        _put(h, type(obj).__name__, f"{obj.dtype} {obj.name!r}".encode())
        _put(h, "values", _data_digest(np.asarray(obj), memo).encode())
    else:                                                   # a torch tensor
        torch = sys.modules["torch"]
        if obj.device.type != "cpu" or obj.layout != torch.strided:
            raise _Uncacheable("tensors off the CPU or not dense")
        t = obj.detach().resolve_conj().resolve_neg().contiguous()
        _put(h, type(obj).__name__, f"{t.dtype} {tuple(t.shape)} {obj.requires_grad}".encode())
        _put(h, "bytes", t.reshape(-1).view(torch.uint8).numpy().tobytes())
    memo[id(obj)] = (obj, h.hexdigest())                  # keep obj alive: ids stay unique
    return memo[id(obj)][1]


def _feed(h, obj, memo, depth=0) -> None:
    """Add ``obj`` to the hash ``h``: its type and its full content, recursively.

    Raises :class:`_Uncacheable` for anything whose behavior is not pinned down
    by its content and the library versions.
    """
    import types

    if depth > 60:
        raise _Uncacheable("too deeply nested")
    torch = sys.modules.get("torch")
    if obj is None or isinstance(obj, (bool, str, bytes)):
        _put(h, type(obj).__name__, obj.encode() if isinstance(obj, str) else
             obj if isinstance(obj, bytes) else repr(obj).encode())
    elif isinstance(obj, int) and type(obj) is int:
        _put(h, "int", str(obj).encode())
    elif isinstance(obj, float) and type(obj) is float:
        _put(h, "float", obj.hex().encode())
    elif isinstance(obj, np.generic):
        _put(h, "np." + obj.dtype.str, np.asarray(obj).tobytes())
    elif isinstance(obj, (np.ndarray, pd.DataFrame, pd.Series, pd.Index)) or (
            torch is not None and isinstance(obj, torch.Tensor)):
        _put(h, "data", _data_digest(obj, memo).encode())
    elif torch is not None and isinstance(obj, (torch.dtype, torch.device)):
        _put(h, type(obj).__name__, str(obj).encode())
    elif torch is not None and isinstance(obj, torch.optim.Optimizer):
        _put(h, "optimizer", _type_name(obj).encode())
        if any(getattr(obj, name, None) for name in
               ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks")):
            raise _Uncacheable("optimizer hooks")
        _feed(h, obj.state_dict(), memo, depth + 1)
        for group in obj.param_groups:
            for p in group["params"]:
                _feed(h, p, memo, depth + 1)
    elif isinstance(obj, (list, tuple)):
        _put(h, _type_name(obj), str(len(obj)).encode())
        for item in obj:
            _feed(h, item, memo, depth + 1)
    elif isinstance(obj, dict):
        _put(h, _type_name(obj), str(len(obj)).encode())
        for key, value in obj.items():
            if key == "random_state" and not isinstance(value, (int, np.integer)):
                raise _Uncacheable("random_state is not a fixed whole number")
            _feed(h, key, memo, depth + 1)
            _feed(h, value, memo, depth + 1)
    elif isinstance(obj, (set, frozenset)):
        parts = []
        for item in obj:
            sub = hashlib.sha256()
            _feed(sub, item, memo, depth + 1)
            parts.append(sub.hexdigest())
        _put(h, _type_name(obj), " ".join(sorted(parts)).encode())
    elif isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
        if not _trusted(getattr(obj, "__module__", None)) or "<lambda>" in obj.__qualname__:
            raise _Uncacheable(f"{obj!r} is not library code")
        _put(h, "code", f"{obj.__module__}.{obj.__qualname__}".encode())
    elif hasattr(obj, "__dict__"):
        _put(h, "object", _type_name(obj).encode())
        _feed(h, vars(obj), memo, depth + 1)
    else:
        raise _Uncacheable(f"cannot key a {type(obj).__name__}")


def _cache_key(*parts) -> str:
    """Hex key of ``parts`` and the environment; raises :class:`_Uncacheable` if it cannot."""
    h = hashlib.sha256()
    _feed(h, (_environment(), parts), {})
    return h.hexdigest()


def _cache_file(key: str) -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / key[:2] / f"{key}.pkl"


def _cache_load(key):
    """The value stored under ``key``, or ``_MISS`` (also for unreadable or damaged files)."""
    import pickle

    path = _cache_file(key)
    try:
        blob = path.read_bytes()
        header, digest, payload = blob.split(b"\n", 2)[0] + b"\n", *blob.split(b"\n", 2)[1:]
        if (header != _CACHE_MAGIC or not digest.startswith(key.encode() + b" ")
                or digest.split(b" ")[1] != hashlib.sha256(payload).hexdigest().encode()):
            raise ValueError("damaged cache file")
        return pickle.loads(payload)
    except Exception:           # missing, partial, corrupt or from another version: a miss
        return _MISS


def _cache_store(key, value) -> None:
    """Store ``value`` under ``key`` atomically (write a temporary file, then rename).

    Concurrent writers of one key write the same bytes, and readers see either
    no file or a whole one. A failure to write (e.g. a read-only folder) only
    costs the speed-up.
    """
    import pickle
    import tempfile

    path = _cache_file(key)
    if path is None:
        return
    try:
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pkl")
        with os.fdopen(fd, "wb") as f:
            f.write(_CACHE_MAGIC + key.encode() + b" "
                    + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
        os.replace(tmp, path)
    except Exception:
        try:
            os.unlink(tmp)
        except Exception:
            pass


def _cache_count(outcome: str, what: str) -> None:
    """Count a lookup; with ``NNBOOK_CACHE_LOG`` set, also append it to that file."""
    cache_stats[outcome] += 1
    log = os.environ.get("NNBOOK_CACHE_LOG")
    if log:
        try:
            with open(log, "a") as f:
                f.write(f"{outcome} {what}\n")
        except OSError:
            pass


def _cached_fit_tasks(make_model, configs, X, y, tasks, cv_scoring, n_jobs):
    """Run :func:`sweep`'s fit tasks with joblib, taking finished ones from the cache.

    ``tasks`` are ``(config index, train rows, test rows)``; returns each task's
    :func:`_fit_task` output, in order. Only the missing tasks are computed
    (in parallel), then stored.
    """
    import sklearn
    from joblib import Parallel, delayed

    keys, outputs, memo = [], [], {}
    for i, train, test in tasks:
        key = None
        if cache_dir() is not None:
            try:
                h = hashlib.sha256()
                _feed(h, (_environment(), "nh.sweep fit", sklearn.get_config(),
                          make_model(**configs[i]), X, y, train, test, cv_scoring), memo)
                key = h.hexdigest()
            except Exception:       # _Uncacheable, or a bad config: the real fit reports it
                _cache_count("uncacheable", "sweep fit")
        found = _MISS if key is None else _cache_load(key)
        if key is not None:
            _cache_count("hits" if found is not _MISS else "misses", "sweep fit")
        keys.append(key)
        outputs.append(found)
    todo = [j for j, out in enumerate(outputs) if out is _MISS]
    if todo:
        fresh = Parallel(n_jobs=n_jobs)(
            delayed(_fit_task)(make_model, configs[tasks[j][0]], X, y, tasks[j][1], tasks[j][2],
                               cv_scoring) for j in todo)
        for j, out in zip(todo, fresh):
            outputs[j] = out
            if keys[j] is not None:
                _cache_store(keys[j], out)
    return outputs


class _Tee:
    """A text stream that passes everything on to ``stream`` and keeps a copy."""

    def __init__(self, stream):
        self._stream, self.copy = stream, []

    def write(self, text):
        self.copy.append(text)
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _training_objects(arguments):
    """The modules and optimizers among a training call's arguments.

    Raises :class:`_Uncacheable` unless restoring them restores everything the
    call changes (an optimizer must update only the modules' own parameters).
    """
    torch = sys.modules["torch"]
    hooks = [getattr(torch.nn.modules.module, f"_global_{kind}_hooks", None)
             for kind in ("forward", "forward_pre", "backward", "backward_pre")]
    hooks += [getattr(sys.modules.get("torch.optim.optimizer"), f"_global_optimizer_{kind}_hooks",
                      None) for kind in ("pre", "post")]
    if any(hooks):
        raise _Uncacheable("global torch hooks are registered")
    modules = [v for v in arguments.values() if isinstance(v, torch.nn.Module)]
    optimizers = [v for v in arguments.values() if isinstance(v, torch.optim.Optimizer)]
    owned = {id(p) for m in modules for p in m.parameters()}
    if any(id(p) not in owned for o in optimizers for g in o.param_groups for p in g["params"]):
        raise _Uncacheable("the optimizer updates tensors outside the model")
    return modules, optimizers


def _training_snapshot(modules, optimizers):
    """Copies of all that training changes: weights, buffers, gradients and modes of
    the modules, the optimizers' state, and the random generators' states."""
    import copy

    torch = sys.modules["torch"]
    saved = []
    for m in modules:
        params = [(n, p.detach().clone(), None if p.grad is None else p.grad.detach().clone())
                  for n, p in m.named_parameters(remove_duplicate=False)]
        buffers = [(n, b.detach().clone()) for n, b in m.named_buffers(remove_duplicate=False)]
        saved.append((params, buffers, [sub.training for sub in m.modules()]))
    if any(t.device.type != "cpu" for params, buffers, _ in saved
           for t in [p for _, p, _ in params] + [b for _, b in buffers]):
        raise _Uncacheable("the model ended up off the CPU")
    return {"modules": saved, "optimizers": [copy.deepcopy(o.state_dict()) for o in optimizers],
            "rng": (torch.get_rng_state(), np.random.get_state(), random.getstate())}


def _training_restore(snapshot, modules, optimizers):
    """Put a snapshot taken after a real run back: the state a real run would leave."""
    torch = sys.modules["torch"]
    saved = snapshot["modules"]
    named = [(list(m.named_parameters(remove_duplicate=False)),
              list(m.named_buffers(remove_duplicate=False)), list(m.modules())) for m in modules]
    fits = len(saved) == len(named) and len(snapshot["optimizers"]) == len(optimizers) and all(
        [(n, p.shape, p.dtype) for n, p in params] == [(n, v.shape, v.dtype) for n, v, _ in s_params]
        and [(n, b.shape, b.dtype) for n, b in bufs] == [(n, v.shape, v.dtype) for n, v in s_bufs]
        and len(subs) == len(modes)
        for (params, bufs, subs), (s_params, s_bufs, modes) in zip(named, saved))
    if not fits:
        raise _Uncacheable("the stored state does not fit this model")
    with torch.no_grad():
        for (params, bufs, subs), (s_params, s_bufs, modes) in zip(named, saved):
            for (_, p), (_, value, grad) in zip(params, s_params):
                p.copy_(value)
                p.grad = None if grad is None else grad.clone()
            for (_, b), (_, value) in zip(bufs, s_bufs):
                b.copy_(value)
            for sub, mode in zip(subs, modes):
                sub.training = mode
    for optimizer, state in zip(optimizers, snapshot["optimizers"]):
        optimizer.load_state_dict(state)
    torch_rng, numpy_rng, python_rng = snapshot["rng"]
    torch.set_rng_state(torch_rng)
    np.random.set_state(numpy_rng)
    random.setstate(python_rng)


def _cached_training(train_function):
    """Decorator: answer a training call from the result cache when possible.

    The key covers every argument (the model's weights, the optimizer and its
    state, the loss, the data, the batch settings, ...), torch's settings and
    the random generators' states. A miss runs the training, shows its output
    as it comes and stores the end state; a hit restores that end state,
    prints the same lines (with the real duration) and returns the same result.
    """
    import functools
    import inspect
    import re

    signature = inspect.signature(train_function)
    what = f"nh.{train_function.__name__}"

    @functools.wraps(train_function)
    def cached(*args, **kwargs):
        torch = sys.modules.get("torch")
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            bound = None                  # the real function reports the bad call
        if cache_dir() is None or torch is None or bound is None:
            return train_function(*args, **kwargs)
        bound.apply_defaults()
        try:
            modules, optimizers = _training_objects(bound.arguments)
            key = _cache_key(what, torch.get_num_threads(), torch.get_default_dtype(),
                             torch.is_grad_enabled(), torch.are_deterministic_algorithms_enabled(),
                             torch.get_rng_state(), np.random.get_state(), random.getstate(),
                             list(bound.arguments.items()))
        except _Uncacheable:
            _cache_count("uncacheable", what)
            return train_function(*args, **kwargs)
        start = time.perf_counter()
        entry = _cache_load(key)
        if entry is not _MISS:
            try:
                _training_restore(entry["state"], modules, optimizers)
            except _Uncacheable:
                entry = _MISS
        if entry is not _MISS:
            _cache_count("hits", what)
            result = entry["result"]
            seconds = time.perf_counter() - start
            if isinstance(result, History):
                result.seconds = seconds
            sys.stdout.write(re.sub(r"took \d+(\.\d+)? s\b", f"took {seconds:.1f} s",
                                    entry["printed"]))
            return result
        _cache_count("misses", what)
        out, err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = tee_out, tee_err = _Tee(out), _Tee(err)
        try:
            result = train_function(*args, **kwargs)
        finally:
            sys.stdout, sys.stderr = out, err
        if not tee_err.copy:              # a warning was printed: a hit could not repeat it
            try:
                _cache_store(key, {"state": _training_snapshot(modules, optimizers),
                                   "printed": "".join(tee_out.copy), "result": result})
            except _Uncacheable:
                pass
        return result

    return cached


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


@_cached_training
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


@_cached_training
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


def _fit_task(make_model, params, X, y, train=None, test=None, scoring=None):
    """One fit of a sweep: the full fit (``train is None``) or one CV fold.

    Returns the fitted model (full fit) or the fold's score, plus the distinct
    warnings the fit raised.
    """
    from sklearn.metrics import get_scorer

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if train is None:
            result = make_model(**params).fit(X, y)
        else:
            model = make_model(**params).fit(_rows(X, train), _rows(y, train))
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
    serial run (``n_jobs=1``). A fit computed before (same estimator, data and
    library versions) is read from the result cache instead (:func:`cache_dir`).
    """
    from sklearn.model_selection import KFold

    folds = list(KFold(n_splits=5).split(X)) if cv_scoring else []
    tasks = [(i, None, None) for i in range(len(configs))]
    tasks += [(i, train, test) for i in range(len(configs)) for train, test in folds]
    outputs = _cached_fit_tasks(make_model, configs, X, y, tasks, cv_scoring, n_jobs)
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
    ``converged`` is False where a fit stopped at ``max_iter`` with a
    ConvergenceWarning.
    """
    rows = []
    for r in results:
        row = {key: f"{r.params[key]:g}", "epochs": len(r.loss_curve),
               "final loss": r.loss_curve[-1]}
        if r.test_score is not None:
            row["test score"] = r.test_score
        if r.cv_score is not None:
            row["CV score"] = r.cv_score
        row["converged"] = not any("ConvergenceWarning" in w for w in r.warnings)
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


def cached(function, *args, **kwargs):
    """``function(*args, **kwargs)``, read from the result cache if it was computed before.

    For scikit-learn's long computations that :func:`sweep` does not cover, such as
    fitting a search, ``nh.cached(search.fit, X, y)`` (which leaves ``search`` fitted,
    as ``search.fit(X, y)`` would), or ``nh.cached(cross_val_score, model, X, y, cv=folds)``.
    The key covers the function, the object whose method it is, every argument (the
    data, estimators with all their settings), NumPy's global random state and the
    library versions; a hit also leaves that random state as the real call would.
    A call the key cannot vouch for (code defined in a notebook, an estimator or
    splitter without a fixed ``random_state``) is computed, and so is one that prints
    a warning (a hit could not repeat it). See :func:`cache_dir`.
    """
    import types

    import sklearn

    owner = function.__self__ if isinstance(function, types.MethodType) else None
    plain = function.__func__ if owner is not None else function
    what = f"nh.cached {getattr(plain, '__qualname__', plain)}"
    key = None
    if cache_dir() is not None:
        try:
            key = _cache_key("nh.cached", sklearn.get_config(), plain, owner, list(args), kwargs,
                             np.random.get_state())
        except _Uncacheable:
            _cache_count("uncacheable", what)
    entry = _MISS if key is None else _cache_load(key)
    if key is not None:
        _cache_count("misses" if entry is _MISS else "hits", what)
    if entry is not _MISS:
        np.random.set_state(entry["numpy_rng"])
        if owner is None:
            return entry["result"]
        vars(owner).clear()
        vars(owner).update(vars(entry["owner"]))
        return owner if entry["returns_owner"] else entry["result"]
    err = sys.stderr
    sys.stderr = tee_err = _Tee(err)
    try:
        result = function(*args, **kwargs)
    finally:
        sys.stderr = err
    if key is not None and not tee_err.copy:
        returns_owner = owner is not None and result is owner
        _cache_store(key, {"result": None if returns_owner else result, "owner": owner,
                           "returns_owner": returns_owner, "numpy_rng": np.random.get_state()})
    return result


# --------------------------------------------------------------------------
# Exercise self-checks
# --------------------------------------------------------------------------

def check(name: str, answer) -> None:
    """Say whether an exercise's answer is right. Never raises.

    Prints one of three verdicts: not answered yet, correct, or not quite (with a
    hint that does not give the answer away). The answer key and the rules (correct
    roundings, squeezed shapes, hints on digits and units) live in ``exercises.py``;
    new answers are added there with ``python scripts/exercises.py encode ...``.
    """
    try:
        import exercises

        message = exercises.verdict(name, answer).message
    except Exception as err:  # a broken installation must not stop the notebook
        message = f"[{name}] could not be checked ({type(err).__name__}: {err})."
    print(message)


# --------------------------------------------------------------------------
# Data for the interactive figures (explorers) of the web page
# --------------------------------------------------------------------------

PAGE_DATA_LIMIT = 200_000
"""Most bytes of data one chapter may hand to its web page through :func:`to_page`
(checked per call here, and per chapter by ``tests/test_to_page.py``)."""

_JS_NAME = r"^[A-Za-z_$][A-Za-z0-9_$]*$"


def to_page(significant: int = 4, **named_values) -> None:
    """Hand Python values to the interactive figures (OJS cells) of this chapter's web page.

    Each keyword becomes an OJS variable of that name on the chapter's page.
    The cell shows one output in the format of Quarto's own ``ojs_define``: a
    ``<script type="ojs-define">`` element holding the values as JSON (invisible
    in JupyterLab and on the page), with a one-line text summary; nbval compares
    it like any other output, and no file is written.

    Every float is rounded to ``significant`` significant digits: 4 (the
    default) is plenty for a plot; use more where a test compares the page's
    numbers with Python's. Values may be numbers, strings, booleans, None,
    lists, tuples, dicts with string keys, NumPy arrays and scalars, and pandas
    Series (sent as a list) and DataFrames (a dict of column lists, the layout
    OJS's ``transpose`` expects).

    Example: ``nh.to_page(alphas=alphas, curves=[r.loss_curve for r in results])``.
    """
    import json
    import re

    from IPython.display import display

    if not (isinstance(significant, (int, np.integer)) and 1 <= significant <= 17):
        raise ValueError(f"significant must be a whole number of digits from 1 to 17, "
                         f"got {significant!r}.")
    if not named_values:
        raise ValueError("to_page needs at least one value, e.g. nh.to_page(losses=curve).")
    for name in named_values:
        if not re.match(_JS_NAME, name):
            raise ValueError(f"{name!r} cannot name a JavaScript variable: use letters, digits "
                             f"and underscores, not starting with a digit.")
    contents = [{"name": name, "value": _page_value(value, significant, name)}
                for name, value in named_values.items()]
    payload = json.dumps({"contents": contents}, separators=(",", ":"), allow_nan=False)
    payload = payload.replace("</", "<\\/")          # never close the script element early
    size = len(payload.encode())
    if size > PAGE_DATA_LIMIT:
        raise ValueError(f"{size / 1000:.0f} kB of page data is more than a chapter may send "
                         f"({PAGE_DATA_LIMIT // 1000} kB): round to fewer significant digits "
                         f"or send fewer points.")
    summary = (f"Data for the interactive figure on this chapter's web page: "
               f"{', '.join(named_values)} ({size / 1000:.1f} kB)")
    display({"text/html": f'<script type="ojs-define">{payload}</script>', "text/plain": summary},
            raw=True, metadata={"ojs_define": True})


def _page_value(value, significant, name):
    """``value`` as plain JSON-able data, floats rounded to ``significant`` digits."""
    if value is None or isinstance(value, (str, bool, np.bool_)):
        return value if not isinstance(value, np.bool_) else bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            raise ValueError(f"{name} holds {value}, which JSON cannot carry: "
                             f"replace NaN and infinities (e.g. by None) before calling to_page.")
        return float(f"{float(value):.{significant}g}")
    if isinstance(value, pd.Series):
        value = value.to_numpy()
    if isinstance(value, pd.DataFrame):
        return {str(col): _page_value(value[col].tolist(), significant, f"{name}.{col}")
                for col in value.columns}
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_page_value(v, significant, name) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{name}: dict keys must be strings to travel as JSON.")
        return {k: _page_value(v, significant, f"{name}.{k}") for k, v in value.items()}
    raise TypeError(f"{name} is a {type(value).__name__}, which to_page cannot send: "
                    f"convert it to numbers, strings, lists, dicts, arrays or frames first.")


def page_data(notebook) -> dict:
    """The values a stored notebook hands to its web page: the inverse of :func:`to_page`.

    ``notebook`` is a path or an nbformat notebook; returns ``{name: value}`` over
    all its ``to_page`` outputs, in the rounded form the page receives (tests
    compare the page's numbers with these).
    """
    import json

    import nbformat

    if not hasattr(notebook, "cells"):
        notebook = nbformat.read(notebook, as_version=4)
    values = {}
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            html = out.get("data", {}).get("text/html")
            if out.get("metadata", {}).get("ojs_define") and html:
                html = "".join(html) if isinstance(html, list) else html
                text = html.split(">", 1)[1].rsplit("</script>", 1)[0]
                for entry in json.loads(text)["contents"]:
                    values[entry["name"]] = entry["value"]
    return values
