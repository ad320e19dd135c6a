"""nh.cached: any library call (a search's fit, a cross-validation) answered from the result cache.

A hit must leave everything as the real call would (the returned value, the fitted
search, NumPy's global random state); a change of data or settings must miss; a
call the key cannot vouch for, or one that warns, is computed every time.
"""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.neural_network import MLPClassifier
from sklearn.utils import shuffle

import nnhelpers as nh


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private, empty cache folder and fresh lookup counters."""
    monkeypatch.setenv("NNBOOK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("NNBOOK_CACHE_LOG", raising=False)
    for k in nh.cache_stats:
        monkeypatch.setitem(nh.cache_stats, k, 0)
    return tmp_path / "cache"


def data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


def search():
    return GridSearchCV(LogisticRegression(random_state=0), {"C": [0.1, 1.0]},
                        cv=StratifiedKFold(3, shuffle=True, random_state=1))


def test_a_search_hit_leaves_the_search_fitted_as_a_real_fit(cache):
    X, y = data()
    real = search().fit(X, y)
    first = search()
    assert nh.cached(first.fit, X, y) is first
    again = search()
    assert nh.cached(again.fit, X, y) is again
    assert nh.cache_stats["misses"] == 1 and nh.cache_stats["hits"] == 1
    for fitted in (first, again):
        assert fitted.best_params_ == real.best_params_
        assert np.array_equal(fitted.cv_results_["mean_test_score"], real.cv_results_["mean_test_score"])
        assert np.array_equal(fitted.predict(X), real.predict(X))


def test_a_function_hit_returns_the_same_value(cache):
    X, y = data()
    folds = StratifiedKFold(3, shuffle=True, random_state=1)
    computed = nh.cached(cross_val_score, LogisticRegression(random_state=0), X, y, cv=folds)
    read = nh.cached(cross_val_score, LogisticRegression(random_state=0), X, y, cv=folds)
    assert nh.cache_stats["hits"] == 1
    assert np.array_equal(computed, read)
    assert np.array_equal(read, cross_val_score(LogisticRegression(random_state=0), X, y, cv=folds))


def test_a_hit_leaves_numpys_global_random_state_as_the_real_call(cache):
    x = np.arange(10)
    np.random.seed(3)
    computed = nh.cached(shuffle, x)                  # draws from NumPy's global generator
    after_real = np.random.get_state()[1].copy()
    np.random.seed(3)                                 # the same state at the call: a hit
    read = nh.cached(shuffle, x)
    assert nh.cache_stats["hits"] == 1
    assert np.array_equal(computed, read)
    assert np.array_equal(np.random.get_state()[1], after_real)
    np.random.seed(4)                                 # another state: another result, a miss
    nh.cached(shuffle, x)
    assert nh.cache_stats["misses"] == 2


def test_other_data_or_settings_miss(cache):
    X, y = data()
    nh.cached(search().fit, X, y)
    nh.cached(search().fit, *data(seed=1))
    nh.cached(search().set_params(param_grid={"C": [0.1, 10.0]}).fit, X, y)
    assert nh.cache_stats == {"hits": 0, "misses": 3, "uncacheable": 0}


def test_an_estimator_without_a_fixed_random_state_is_computed(cache):
    X, y = data()
    unfixed = GridSearchCV(LogisticRegression(), {"C": [1.0]}, cv=3)     # random_state=None
    nh.cached(unfixed.fit, X, y)
    assert hasattr(unfixed, "best_estimator_")
    assert nh.cache_stats == {"hits": 0, "misses": 0, "uncacheable": 1}
    assert not list(cache.rglob("*.pkl"))


def test_a_call_that_warns_is_not_stored(cache):
    X, y = data()
    short = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = nh._warning_as_note   # as in a notebook after nh.setup_notebook()
        for _ in range(2):
            nh.cached(cross_val_score, short, X, y, cv=3)
    assert nh.cache_stats == {"hits": 0, "misses": 2, "uncacheable": 0}
    assert not list(cache.rglob("*.pkl"))
