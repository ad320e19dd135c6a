"""The result cache of nh.sweep, nh.train and nh.train_fast (scripts/nncache.py).

A hit must be indistinguishable from a real run (results, weights, optimizer
state, random-generator states, printed lines); anything that changes a result
(a parameter, the data, a library version, the helpers' code) must miss;
damaged files and concurrent writers must never yield a wrong result.
"""

import multiprocessing
import pickle
import random

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nncache
import nnhelpers as nh


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private, empty cache folder and fresh lookup counters."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("NNBOOK_CACHE_DIR", str(folder))
    monkeypatch.delenv("NNBOOK_CACHE_LOG", raising=False)
    for k in nh.cache_stats:
        monkeypatch.setitem(nh.cache_stats, k, 0)
    return folder


def stats():
    return dict(nh.cache_stats)


def cache_files(folder):
    return sorted(p for p in folder.rglob("*.pkl") if not p.name.startswith(".tmp-"))


# ---------------------------------------------------------------- sweeps

def tiny_sweep(configs=({"alpha": 1e-3}, {"alpha": 1.0}), X=None, cv=True):
    XTR, XTS, YTR, YTS = nh.regression_split()
    XTR = XTR.iloc[:200] if X is None else X
    return nh.sweep(lambda **p: nh.regression_pipeline(**{"hidden_layer_sizes": (4,),
                                                         "max_iter": 5, **p}),
                    list(configs), XTR, YTR.iloc[:200], X_test=XTS.set_axis(XTR.columns, axis=1),
                    y_test=YTS,
                    cv_scoring="neg_mean_squared_error" if cv else None, n_jobs=1)


def same_results(a, b):
    for r, s in zip(a, b, strict=True):
        assert r.params == s.params and r.loss_curve == s.loss_curve
        assert r.test_score == s.test_score and r.cv_score == s.cv_score
        assert r.warnings == s.warnings and r.warnings        # max_iter 5: a ConvergenceWarning
        # the same fitted model (a pickle round trip only changes how equal strings are shared)
        assert canonical(r.model) == canonical(s.model)


def canonical(obj):
    return pickle.dumps(pickle.loads(pickle.dumps(obj)))


def test_sweep_hit_is_identical_to_the_computed_result(cache):
    computed = tiny_sweep()
    assert stats() == {"hits": 0, "misses": 12, "uncacheable": 0}     # 2 fits + 2 x 5 folds
    assert len(cache_files(cache)) == 12
    reused = tiny_sweep()
    assert stats()["hits"] == 12 and stats()["misses"] == 12
    same_results(computed, reused)


def test_sweep_misses_when_a_parameter_the_data_a_version_or_the_code_changes(cache, monkeypatch):
    XTR = nh.regression_split()[0].iloc[:200]
    tiny_sweep(cv=False)
    assert stats()["misses"] == 2
    tiny_sweep(cv=False)
    assert stats() == {"hits": 2, "misses": 2, "uncacheable": 0}

    tiny_sweep([{"alpha": 1e-3}, {"alpha": 1.0 + 1e-12}], cv=False)     # one parameter
    assert stats()["hits"] == 3 and stats()["misses"] == 3

    changed = XTR.copy()
    changed.iloc[7, 0] = np.nextafter(changed.iloc[7, 0], 10)           # one value, one bit
    tiny_sweep(X=changed, cv=False)
    assert stats()["misses"] == 5

    renamed = XTR.rename(columns={"X": "x"})                            # a column name
    tiny_sweep(X=renamed, cv=False)
    assert stats()["misses"] == 7

    nncache._environment()
    with monkeypatch.context() as m:
        m.setitem(nncache._VERSIONS, "scikit-learn", "0.0.1")                # a library version
        tiny_sweep(cv=False)
    assert stats()["misses"] == 9
    with monkeypatch.context() as m:
        m.setattr(nncache, "_HELPERS_DIGEST", "0" * 64)                      # the helpers' code
        tiny_sweep(cv=False)
    assert stats()["misses"] == 11
    tiny_sweep(cv=False)
    assert stats() == {"hits": 5, "misses": 11, "uncacheable": 0}


def test_a_sweep_builds_each_model_once_and_stores_the_fit_of_the_keyed_one(cache):
    """A make_model that draws randomness: the estimator the key describes is the one fitted.
    (Built once for the key and again for the fit, the cache stored alpha 2's fit under
    alpha 1's key, and a later sweep of alpha 1 read a model with alpha 2.)"""
    XTR, _, YTR, _ = nh.regression_split()
    drawn, built = iter([1.0, 2.0, 3.0]), []

    def make_model(**params):
        built.append(nh.regression_pipeline(max_iter=2, alpha=next(drawn)))
        return built[-1]

    first = nh.sweep(make_model, [{}], XTR.iloc[:100], YTR.iloc[:100], n_jobs=1)
    assert len(built) == 1 and first[0].model[-1].alpha == 1.0
    again = nh.sweep(lambda **p: nh.regression_pipeline(max_iter=2, alpha=1.0), [{}],
                     XTR.iloc[:100], YTR.iloc[:100], n_jobs=1)
    assert stats()["hits"] == 1 and again[0].model[-1].alpha == 1.0
    assert canonical(again[0].model) == canonical(first[0].model)


def test_unfixed_random_state_is_computed_not_cached(cache):
    XTR, _, YTR, _ = nh.regression_split()
    nh.sweep(nh.regression_pipeline, [{"random_state": None, "max_iter": 2,
                                       "hidden_layer_sizes": (2,)}], XTR, YTR, n_jobs=1)
    assert stats() == {"hits": 0, "misses": 0, "uncacheable": 1}
    assert cache_files(cache) == []


def test_cache_can_be_turned_off(cache, monkeypatch):
    monkeypatch.setenv("NNBOOK_CACHE_DIR", "off")
    assert nh.cache_dir() is None
    tiny_sweep(cv=False)
    assert stats() == {"hits": 0, "misses": 0, "uncacheable": 0}
    assert not cache.exists()


def test_default_folder_is_the_git_ignored_output(monkeypatch, root):
    monkeypatch.delenv("NNBOOK_CACHE_DIR", raising=False)
    assert nh.cache_dir() == root / "_output" / "cache"
    assert "_output/" in (root / ".gitignore").read_text().splitlines()


# ---------------------------------------------------------------- keys

def key(*parts):
    return nncache._cache_key(*parts)


def test_key_tells_apart_values_that_compare_equal():
    assert len({key(1), key(1.0), key(True), key(np.float64(1)), key(np.int64(1))}) == 5
    assert key(0.0) != key(-0.0)
    assert key(np.zeros(3)) != key(np.zeros(3, dtype=np.float32))
    assert key(np.zeros(3)) != key(np.zeros((3, 1)))
    assert key(torch.zeros(2)) != key(torch.zeros(2, requires_grad=True))
    frame = pd.DataFrame({"X": [1.0, 2.0]})
    assert key(frame) != key(frame.set_axis([5, 6])) != key(frame["X"])
    assert key(frame) == key(frame.copy())


def test_key_covers_estimator_settings_outside_its_parameters():
    from sklearn.preprocessing import StandardScaler

    assert key(StandardScaler()) != key(StandardScaler().set_output(transform="pandas"))
    assert key(nh.regression_pipeline()) == key(nh.regression_pipeline())
    assert key(nh.regression_pipeline()) != key(nh.regression_pipeline(alpha=1e-4 * 1.5))


def test_code_outside_the_libraries_cannot_be_keyed():
    class MyNet(nn.Module):
        def forward(self, x):
            return x

    for obj in (MyNet(), lambda x: x, test_code_outside_the_libraries_cannot_be_keyed,
                np.random.RandomState(0), torch.Generator()):
        with pytest.raises(nncache._Uncacheable):
            key(obj)
    key(nn.Sequential(nn.Linear(2, 3), nn.ReLU()), nn.functional.mse_loss)


# ---------------------------------------------------------------- training

def training_run(fast, lr=0.01, seed=0, **kw):
    """A tiny training call and everything it leaves behind."""
    nh.set_seed(seed)
    X = torch.randn(64, 2)
    y = (X[:, 0] * X[:, 1] > 0).float()
    net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Dropout(0.2), nn.Linear(4, 1), nn.Sigmoid())
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    if fast:
        history = nh.train_fast(net, nn.BCELoss(), opt, X, y, 6, batch_size=8, report_every=2,
                                eval_data=(X[:16], y[:16]), **kw)
    else:
        loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True)
        history = nh.train(net, nn.BCELoss(), opt, loader, 6, report_every=2,
                           eval_data=(X[:16], y[:16]), **kw)
    after = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    return net, opt, history, after


def assert_same_world(a, b):
    (net_a, opt_a, hist_a, rng_a), (net_b, opt_b, hist_b, rng_b) = a, b
    for (na, pa), (nb, pb) in zip(net_a.named_parameters(), net_b.named_parameters(), strict=True):
        assert na == nb and torch.equal(pa, pb) and torch.equal(pa.grad, pb.grad)
    assert [m.training for m in net_a.modules()] == [m.training for m in net_b.modules()]
    sa, sb = opt_a.state_dict(), opt_b.state_dict()
    assert sa["param_groups"] == sb["param_groups"] and sa["state"].keys() == sb["state"].keys()
    for k in sa["state"]:
        assert all(torch.equal(sa["state"][k][n], sb["state"][k][n]) for n in sa["state"][k])
    for p_a, p_b in zip(net_a.parameters(), net_b.parameters()):       # state sits on the params
        assert torch.equal(opt_a.state[p_a]["exp_avg"], opt_b.state[p_b]["exp_avg"])
    assert torch.equal(rng_a[0], rng_b[0]) and rng_a[2] == rng_b[2]
    assert all(np.array_equal(u, v) for u, v in zip(rng_a[1], rng_b[1]))
    assert (hist_a.losses, hist_a.eval_losses, hist_a.best_epoch, hist_a.stopped_epoch) == (
        hist_b.losses, hist_b.eval_losses, hist_b.best_epoch, hist_b.stopped_epoch)


def without_durations(text):
    return nncache.DURATION.sub("took <n> s", text)


@pytest.mark.parametrize("fast", [False, True], ids=["train", "train_fast"])
def test_training_hit_leaves_the_world_as_a_real_run(cache, capsys, fast):
    computed = training_run(fast)
    printed = capsys.readouterr().out
    assert stats() == {"hits": 0, "misses": 1, "uncacheable": 0}
    reused = training_run(fast)
    assert stats() == {"hits": 1, "misses": 1, "uncacheable": 0}
    assert_same_world(computed, reused)
    again = capsys.readouterr().out
    assert "Epoch    6" in printed and without_durations(again) == without_durations(printed)


def test_training_hit_with_early_stopping(cache, capsys):
    computed = training_run(True, patience=1)
    reused = training_run(True, patience=1)
    assert stats()["hits"] == 1
    assert_same_world(computed, reused)


def test_training_misses_when_anything_that_matters_changes(cache):
    training_run(True)
    training_run(True, lr=0.02)                  # an optimizer hyperparameter
    training_run(True, seed=1)                   # the data, the initial weights, the RNG state
    training_run(True, patience=2)               # a training argument
    training_run(False)                          # the other loop
    assert stats() == {"hits": 0, "misses": 5, "uncacheable": 0}
    training_run(True)
    assert stats()["hits"] == 1


def test_training_key_includes_the_random_state_at_the_call(cache):
    net, opt, _, _ = training_run(True)
    X, y = torch.randn(32, 2), torch.ones(32)
    state = [p.detach().clone() for p in net.parameters()]
    for draw_first in (False, True, False):
        with torch.no_grad():
            for p, s in zip(net.parameters(), state):
                p.copy_(s)
        torch.manual_seed(5)
        if draw_first:
            torch.rand(1)                        # only the generator's state differs
        nh.train_fast(net, nn.BCELoss(), torch.optim.SGD(net.parameters(), lr=0.1), X, y, 1,
                      report_every=0)
    assert stats() == {"hits": 1, "misses": 3, "uncacheable": 0}


def test_training_with_an_unknown_model_class_is_computed(cache):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 1)

        def forward(self, x):
            return torch.sigmoid(self.lin(x))

    X, y = torch.randn(16, 2), torch.ones(16)
    net = Net()
    nh.train_fast(net, nn.BCELoss(), torch.optim.SGD(net.parameters(), lr=0.1), X, y, 2,
                  report_every=0)
    assert stats() == {"hits": 0, "misses": 0, "uncacheable": 1}


# ---------------------------------------------------------------- files

@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_damaged_files_are_misses_and_get_replaced(cache, damage):
    computed = tiny_sweep(cv=False)
    path = cache_files(cache)[0]
    blob = path.read_bytes()
    path.write_bytes({"truncate": blob[: len(blob) // 2],
                      "flip": blob[:-10] + bytes([blob[-10] ^ 1]) + blob[-9:],
                      "garbage": b"not a cache file",
                      "empty": b""}[damage])
    reused = tiny_sweep(cv=False)
    assert stats()["hits"] == 1 and stats()["misses"] == 3
    same_results(computed, reused)
    assert path.read_bytes() == blob                    # rewritten whole


def _write_many(args):
    folder, letter = args
    import os

    os.environ["NNBOOK_CACHE_DIR"] = folder
    for _ in range(30):
        nncache._cache_store("ab" * 32, letter * 300_000)
    return True


def test_concurrent_writers_never_leave_a_torn_file(cache):
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        pending = pool.map_async(_write_many, [(str(cache), "A"), (str(cache), "B")])
        seen = set()
        while not pending.ready():
            value = nncache._cache_load("ab" * 32)
            if value is not nncache._MISS:
                assert value in ("A" * 300_000, "B" * 300_000)
                seen.add(value[0])
        assert pending.get() == [True, True]
    assert nncache._cache_load("ab" * 32)[0] in "AB"
    assert not list(cache.rglob(".tmp-*"))              # no temporary file left behind


def test_cache_off_block_computes_everything(cache):
    with nh.cache_off():
        assert nh.cache_dir() is None
        training_run(True)
        training_run(True)
    assert nh.cache_dir() == cache
    assert stats() == {"hits": 0, "misses": 0, "uncacheable": 0} and not cache.exists()


def test_global_torch_hooks_make_training_uncacheable(cache):
    handle = nn.modules.module.register_module_forward_hook(lambda module, inputs, output: None)
    try:
        training_run(True)
    finally:
        handle.remove()
    assert stats() == {"hits": 0, "misses": 0, "uncacheable": 1}
