"""The result cache of the book's helpers: a fit computed once is not computed again.

nh.sweep (per fit and per cross-validation fold) and nh.train / nh.train_fast
keep their results on disk, keyed by a hash of everything that determines them:
the unfitted estimator or the model's initial weights, the optimizer and its
state, the loss, the data, every call argument, the random-number generators'
states at the call, the library versions and the helpers' code. A hit
leaves the world as the real run would: the same weights, optimizer state,
random-generator states, returned values and printed lines (only the
"took <n> s" duration is the real, shorter one). Anything the key cannot
vouch for (a class or function defined in a notebook, data on a GPU, an
estimator without a fixed random_state) is simply computed, never cached.

Files are written whole and renamed into place (:func:`write_atomically`), so notebooks
running side by side share the cache safely; a damaged file counts as a miss. Students
use it through ``nnhelpers``: ``nh.cache_dir()``, ``with nh.cache_off(): ...``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

_HERE = Path(__file__).resolve().parent       # the helpers' folder (scripts/, or a kit's notebooks/)
ROOT = Path(__file__).resolve().parent.parent
"""The book's folder, where ``_output/cache`` lives (the student kit ships this line as the
notebooks' folder, so that a kit has one ``_output/``)."""

DURATION = re.compile(r"took \d+(\.\d+)? s\b")
"""A printed wall-clock duration ("Training took 1.2 s"): the one thing that may differ
between runs. A cache hit prints its own, real duration here; ``tests/nbval-sanitize.cfg``
hides it from nbval with this same pattern (a test keeps the two equal)."""

# The code whose changes make every stored result stale: the helpers that compute the
# results (nnhelpers: training loops, sweep fits) and this file, which keys and replays
# them. The other helper modules (page data, answer checks, drawings) compute nothing
# that is cached: editing them keeps the cache.
_HELPERS_DIGEST = hashlib.sha256(b"".join(
    (_HERE / name).read_bytes() for name in ("nnhelpers.py", "nncache.py"))).hexdigest()
_CACHE_MAGIC = b"nnbook-result-cache 1\n"
_CACHE_LIBRARIES = ("numpy", "pandas", "scipy", "scikit-learn", "torch", "joblib",
                    "threadpoolctl")
_TRUSTED_MODULES = ("builtins", "collections", "numpy", "pandas", "scipy", "sklearn", "torch",
                    "nnhelpers", __name__)
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
    """What every cache key includes: library versions, machine and the helpers' code."""
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

    path = _cache_file(key)
    if path is None:
        return
    try:
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, _CACHE_MAGIC + key.encode() + b" "
                         + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
    except Exception:
        pass


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see no file or a whole one, never part.

    The bytes go to a temporary file in the same folder, which is then renamed into
    place (a rename within a folder is atomic). On failure the temporary file is removed
    and the error raised.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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


def cached_fits(fit, estimators, X, y, tasks, cv_scoring, n_jobs):
    """Run ``nh.sweep``'s fit tasks with joblib, taking finished ones from the cache.

    ``tasks`` are ``(estimator index, train rows, test rows)``; returns each task's
    ``fit(estimator, X, y, train, test, cv_scoring)``, in order. Only the missing tasks
    are computed (in parallel), then stored. The key holds the very estimator that
    ``fit`` is given (unfitted), so a stored fit is always the fit of the keyed one.
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
                          estimators[i], X, y, train, test, cv_scoring), memo)
                key = h.hexdigest()
            except Exception:       # _Uncacheable, or an object it cannot read: computed
                _cache_count("uncacheable", "sweep fit")
        found = _MISS if key is None else _cache_load(key)
        if key is not None:
            _cache_count("hits" if found is not _MISS else "misses", "sweep fit")
        keys.append(key)
        outputs.append(found)
    todo = [j for j, out in enumerate(outputs) if out is _MISS]
    if todo:
        fresh = Parallel(n_jobs=n_jobs)(
            delayed(fit)(estimators[tasks[j][0]], X, y, tasks[j][1], tasks[j][2], cv_scoring)
            for j in todo)
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


def cached_training(train_function):
    """Decorator: answer a training call from the result cache when possible.

    The key covers every argument (the model's weights, the optimizer and its
    state, the loss, the data, the batch settings, ...), torch's settings and
    the random generators' states. A miss runs the training, shows its output
    as it comes and stores the end state; a hit restores that end state,
    prints the same lines (with the real duration) and returns the same result.
    """
    import functools
    import inspect

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
            if hasattr(result, "seconds"):            # nh.History: the real, shorter time
                result.seconds = seconds
            sys.stdout.write(DURATION.sub(f"took {seconds:.1f} s", entry["printed"]))
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
    a warning (a hit could not repeat it). See :func:`cache_dir`. (``nh.cached`` in the chapters.)
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
