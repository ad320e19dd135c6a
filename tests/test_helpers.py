"""Unit tests of scripts/nnhelpers.py."""

import sys
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.neural_network import MLPClassifier

import nnhelpers as nh


# -- set-up, seeds and devices ------------------------------------------------

def test_setup_notebook_sets_text_display_and_short_warnings(capsys):
    import sklearn

    old = warnings.showwarning
    try:
        nh.setup_notebook()
        assert sklearn.get_config()["display"] == "text"
        warnings.warn("something odd\nsecond line", UserWarning)
        err = capsys.readouterr().err
        assert err.strip() == "Note (UserWarning): something odd"
        assert "/" not in err and ".py" not in err
    finally:
        warnings.showwarning = old
        sklearn.set_config(display="diagram")


def test_set_seed_makes_numpy_torch_and_random_repeat():
    import random

    nh.set_seed(7)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    nh.set_seed(7)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_best_device_says_which_and_why(capsys):
    device = nh.best_device()
    out = capsys.readouterr().out
    assert device.type in {"cpu", "cuda", "mps"}
    assert out.startswith(f"Using {device.type}: ")
    if device.type == "cpu":
        assert "no GPU found" in out


def test_output_path_is_inside_the_ignored_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(nh, "OUTPUT_DIR", tmp_path / "out")
    path = nh.output_path("model.pkl")
    assert path.parent == tmp_path / "out" and path.parent.is_dir()


def test_output_path_is_beside_the_running_notebook(tmp_path, monkeypatch):
    monkeypatch.delenv("NNBOOK_OUTPUT_DIR", raising=False)
    monkeypatch.chdir(tmp_path)                       # Jupyter runs a notebook in its folder
    assert nh.output_path("m.pkl") == tmp_path / "_output" / "m.pkl" and (tmp_path / "_output").is_dir()
    monkeypatch.setenv("NNBOOK_OUTPUT_DIR", str(tmp_path / "elsewhere"))
    assert nh.output_path("m.pkl") == tmp_path / "elsewhere" / "m.pkl"


# -- datasets ----------------------------------------------------------------

def test_circles_split_is_scaled_and_stratified():
    XTR, XTS, YTR, YTS = nh.circles_split()
    assert XTR.shape == (800, 2) and XTS.shape == (200, 2)
    np.testing.assert_allclose(XTR.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(XTR.std(axis=0), 1)
    assert YTR.mean() == 0.5 and YTS.mean() == 0.5


def test_regression_data_returns_the_generator_that_drew_the_noise():
    df, rng = nh.regression_data()
    assert df.shape == (1000, 2)
    noise = (df["Y"] - nh.regression_signal(df["X"])) / 0.3
    fresh = np.random.default_rng(2024)
    np.testing.assert_allclose(noise, fresh.normal(size=1000), atol=1e-12)
    assert rng.normal() == fresh.normal()    # the returned generator continues the stream


def test_iris_split_sizes():
    XTR, XTS, YTR, YTS = nh.iris_split()
    assert list(XTR.columns) == nh.IRIS_COLUMNS
    assert len(XTR) == 120 and len(XTS) == 30
    assert YTS.value_counts().tolist() == [10, 10, 10]


# -- evaluation helpers ------------------------------------------------------

@pytest.fixture(scope="module")
def fitted_circles():
    XTR, XTS, YTR, YTS = nh.circles_split()
    model = MLPClassifier(hidden_layer_sizes=(4,), max_iter=300, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(XTR, YTR)
    return model, XTR, XTS, YTR, YTS


def test_prediction_frame_columns_and_values(fitted_circles):
    model, XTR, _, YTR, _ = fitted_circles
    frame = nh.prediction_frame(model, XTR, YTR, "m")
    assert list(frame.columns) == ["x1", "x2", "Y", "m_prob_0", "m_prob_1", "m_pred"]
    np.testing.assert_allclose(frame[["m_prob_0", "m_prob_1"]].sum(axis=1), 1)
    assert (frame["m_pred"] == model.predict(XTR)).all()


def test_prediction_frame_for_a_regressor_keeps_column_names():
    XTR, _, YTR, _ = nh.regression_split()
    model = nh.regression_pipeline(max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(XTR, YTR)
    frame = nh.prediction_frame(model, XTR, YTR, "reg")
    assert list(frame.columns) == ["X", "Y", "reg_pred"]


def test_confusion_pair_counts_and_axes_reuse(fitted_circles):
    model, XTR, XTS, YTR, YTS = fitted_circles
    fig, axes = plt.subplots(1, 2)
    out = nh.plot_confusion_pair(YTR, model.predict(XTR), YTS, model.predict(XTS),
                                 title="t", labels=[1, 0], axes=axes)
    assert list(out) == list(axes) and len(fig.axes) == 2
    numbers = [int(t.get_text()) for t in axes[1].texts]
    assert sum(numbers) == len(YTS)
    assert [a.get_title() for a in axes] == ["Training", "Test"]


def test_confusion_pair_rejects_wrong_number_of_axes():
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="expected 2 Axes"):
        nh.plot_confusion_pair([0, 1], [0, 1], [0, 1], [0, 1], axes=[ax])


def test_roc_pair_draws_chance_line(fitted_circles):
    model, XTR, XTS, YTR, YTS = fitted_circles
    axes = nh.plot_roc_pair(model, XTR, YTR, XTS, YTS)
    assert len(axes) == 2
    assert all(len(ax.lines) >= 2 for ax in axes)   # the curve and the chance line


def test_fitted_vs_observed_and_loss_curve_draw_on_given_axes():
    _, ax = plt.subplots()
    assert nh.plot_fitted_vs_observed([1, 2, 3], [1, 2, 3], [1, 2, 2.5], ax=ax) is ax
    assert len(ax.collections) == 2
    ax2 = nh.plot_loss_curve([3, 2, 1], ax=ax)
    assert ax2 is ax and list(ax.lines[-1].get_ydata()) == [3, 2, 1]


def test_decision_boundary_accepts_estimator_or_function(fitted_circles):
    model, XTR, _, YTR, _ = fitted_circles
    ax = nh.plot_decision_boundary(model, XTR, YTR, grid_points=20)
    ax2 = nh.plot_decision_boundary(lambda p: (p[:, 0] > 0).astype(int), XTR, YTR, grid_points=20)
    assert ax.collections and ax2.collections


def test_plot_helpers_create_a_figure_only_when_no_ax_is_given(fitted_circles):
    model, XTR, _, YTR, _ = fitted_circles
    plt.close("all")
    first = nh.plot_decision_boundary(model, XTR, YTR, grid_points=20)
    second = nh.plot_loss_curve([3, 2, 1])
    assert len(plt.get_fignums()) == 2 and first.figure is not second.figure
    _, given = plt.subplots()
    assert nh.plot_decision_boundary(model, XTR, YTR, grid_points=20, ax=given) is given
    assert nh.plot_loss_curve([3, 2, 1], ax=given) is given
    assert len(plt.get_fignums()) == 3                     # only the one made here


# -- training loops ----------------------------------------------------------

def _tiny_problem(device="cpu"):
    XTR, _, YTR, _ = nh.circles_split()
    X = torch.tensor(XTR[:64], dtype=torch.float32)
    y = torch.tensor(YTR[:64], dtype=torch.float32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1), nn.Sigmoid()).to(device)
    return model, X, y


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device on this machine"))])
def test_train_learns_and_reports(device, capsys):
    model, X, y = _tiny_problem(device)
    loader = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    history = nh.train(model, nn.BCELoss(), opt, loader, n_epochs=20, device=torch.device(device),
                       report_every=10, eval_data=(X, y))
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == [f"Epoch {e:4d}  training loss {history.losses[e - 1]:.6f}" for e in (1, 10, 20)]
    assert out[3].startswith("Training took ") and out[3].endswith(" s")
    assert len(history.losses) == 20 and len(history.eval_losses) == 20
    assert history.losses[-1] < history.losses[0]
    assert history.seconds > 0
    assert all(p.device.type == device for p in model.parameters())


def test_train_fast_is_bit_identical_to_train():
    results = []
    for fast in (False, True):
        model, X, y = _tiny_problem()
        torch.manual_seed(123)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        if fast:
            h = nh.train_fast(model, nn.BCELoss(), opt, X, y, n_epochs=5, batch_size=16,
                              report_every=0)
        else:
            loader = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True)
            h = nh.train(model, nn.BCELoss(), opt, loader, n_epochs=5, report_every=0)
        results.append((h.losses, [p.detach().clone() for p in model.parameters()]))
    assert results[0][0] == results[1][0]
    assert all(torch.equal(a, b) for a, b in zip(results[0][1], results[1][1]))


def test_evaluate_loss_restores_training_mode():
    model, X, y = _tiny_problem()
    model.train()
    loss = nh.evaluate_loss(model, nn.BCELoss(), X, y)
    assert model.training and loss > 0


# -- sweeps ------------------------------------------------------------------

@pytest.mark.integration          # starts a pool of worker processes
def test_sweep_parallel_equals_serial_and_keeps_order():
    XTR, XTS, YTR, YTS = nh.regression_split()
    configs = [{"alpha": 1.0, "max_iter": 15}, {"alpha": 0.01, "max_iter": 10}]
    serial = nh.sweep(nh.regression_pipeline, configs, XTR, YTR, XTS, YTS, n_jobs=1)
    parallel = nh.sweep(nh.regression_pipeline, configs, XTR, YTR, XTS, YTS, n_jobs=2)
    assert [r.params for r in parallel] == configs
    for a, b in zip(serial, parallel):
        assert a.loss_curve == b.loss_curve and a.test_score == b.test_score
        assert a.warnings == b.warnings
    assert len(serial[0].loss_curve) == 15
    assert any("ConvergenceWarning" in w for w in serial[0].warnings)


def test_sweep_cv_score_and_table():
    XTR, _, YTR, _ = nh.regression_split()
    res = nh.sweep(nh.regression_pipeline, [{"learning_rate_init": 0.01, "max_iter": 5}],
                   XTR, YTR, cv_scoring="neg_mean_squared_error", n_jobs=1)
    from sklearn.model_selection import cross_val_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # the 5-iteration fits do not converge, on purpose
        expected = cross_val_score(nh.regression_pipeline(learning_rate_init=0.01, max_iter=5),
                                   XTR, YTR, scoring="neg_mean_squared_error").mean()
    assert res[0].cv_score == expected      # the same folds and scorer, to the bit
    table = nh.sweep_table(res, "learning_rate_init")
    assert list(table.columns) == ["learning_rate_init", "epochs", "final loss", "CV score",
                                   "stopped by tol"]
    assert table.loc[0, "epochs"] == 5      # max_iter counts epochs for the adam solver
    assert table.loc[0, "learning_rate_init"] == "0.01" and not table.loc[0, "stopped by tol"]


def test_report_warnings_prints_one_line_per_distinct_warning(capsys):
    r = nh.SweepResult({"lr": 0.1}, None, [1.0], warnings=["ConvergenceWarning: too slow"])
    nh.report_warnings([r], "lr")
    assert capsys.readouterr().out == "lr=0.1: ConvergenceWarning: too slow\n"


# -- exercise checks ---------------------------------------------------------

def _verdict(capsys, name, answer):
    nh.check(name, answer)
    return capsys.readouterr().out


def test_check_three_verdicts(capsys):
    assert "Not answered yet" in _verdict(capsys, "params-4323", ...)
    assert "Correct!" in _verdict(capsys, "params-4323", (32, 43))
    assert "Correct!" in _verdict(capsys, "params-4323", [np.int64(32), 43.0])
    wrong = _verdict(capsys, "params-4323", (33, 43))
    assert "Not quite" in wrong and "Hint:" in wrong
    assert "32" not in wrong.split("Hint:")[1] and "43" not in wrong.split("Hint:")[1]


def test_check_rounding_and_shape(capsys):
    # the rules themselves are tested in test_exercises.py; here only the printed lines
    assert _verdict(capsys, "iris-accuracy", 0.967) == "[iris-accuracy] Correct!\n"
    assert _verdict(capsys, "iris-accuracy", 0.966).startswith("[iris-accuracy] Not quite. Hint: ")
    assert "expected 3 numbers, got 2" in _verdict(capsys, "iris-softmax", [0.1, 0.2])


def test_check_never_raises(capsys):
    assert "Not quite" in _verdict(capsys, "log-loss", "not a number")
    assert "unknown exercise" in _verdict(capsys, "no-such-exercise", 1)


def test_check_says_when_the_key_cannot_be_loaded(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "nnexercises", None)   # import fails
    assert _verdict(capsys, "log-loss", 0.2).startswith("[log-loss] could not be checked")


def test_plot_sweep_one_titled_panel_per_result():
    results = [nh.SweepResult({"alpha": a}, None, [3.0, 2.0, 1.0 + a]) for a in (0.1, 1.0, 10.0)]
    axes = nh.plot_sweep(results, lambda r: f"alpha {r.params['alpha']:g}", suptitle="s")
    assert [ax.get_title() for ax in axes] == ["alpha 0.1", "alpha 1", "alpha 10"]
    assert list(axes[2].lines[0].get_ydata()) == [3.0, 2.0, 11.0]
    assert axes[0].figure._suptitle.get_text() == "s"
    wide = nh.plot_sweep(results, lambda r: "", ncols=3)
    assert len(wide) == 3 and wide[0].get_position().y0 == wide[2].get_position().y0
    assert axes[0].get_xlabel() == "epoch"


def test_plot_sweep_shares_the_y_axis_unless_told_not_to():
    results = [nh.SweepResult({"alpha": a}, None, [3.0, 2.0, 1.0 + a]) for a in (0.1, 1.0, 10.0)]
    shared = nh.plot_sweep(results, lambda r: "", yscale="log")
    assert shared[0].get_ylim() == shared[2].get_ylim()
    assert all(ax.get_yscale() == "log" for ax in shared)
    own = nh.plot_sweep(results, lambda r: "", sharey=False)
    assert own[0].get_ylim() != own[2].get_ylim()
    assert own[0].get_yscale() == "linear"
    with pytest.raises(ValueError, match="yscale"):
        nh.plot_sweep(results, lambda r: "", yscale="logarithmic")


def test_lesson_model_builders_carry_the_lessons_settings():
    assert nh.circles_mlp().get_params()["hidden_layer_sizes"] == (8, 6)
    assert nh.circles_mlp().get_params()["max_iter"] == 10000
    assert nh.iris_mlp().get_params()["hidden_layer_sizes"] == (3, 2)
    assert nh.iris_mlp(max_iter=5).get_params()["max_iter"] == 5
    mlp = nh.regression_pipeline(alpha=0.1)[-1].get_params()
    assert (mlp["hidden_layer_sizes"], mlp["alpha"], mlp["random_state"]) == ((80, 20), 0.1, 2024)
    XTR, XTS, YTR, YTS = nh.circles_split()
    assert nh.circles_mlp().fit(XTR, YTR).n_iter_ == 413          # as in chapter 2


# --- baselines and intervals ------------------------------------------------

def test_baseline_score_majority_class_and_mean():
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    X = np.zeros((6, 1))
    y_cls = np.array([0, 1, 1, 1, 0, 1])
    # majority class of training data is 1; test labels: 2 of 4 are 1
    assert nh.baseline_score(MLPClassifier(), X, y_cls, X[:4], np.array([1, 0, 1, 0])) == 0.5
    y_reg = np.array([1.0, 2.0, 3.0])
    assert nh.baseline_mse(y_reg, [2.0, 4.0]) == pytest.approx((0 + 4) / 2)
    # R² of predicting the training mean on the training data itself is 0
    assert nh.baseline_score(MLPRegressor(), X[:3], y_reg, X[:3], y_reg) == pytest.approx(0.0)


def test_wilson_interval_known_values_and_errors():
    lo, hi = nh.wilson_interval(29, 30)
    # closed form for p = 29/30, z = 1.959964: (0.8333, 0.9941)
    assert lo == pytest.approx(0.8333, abs=1e-3) and hi == pytest.approx(0.9941, abs=1e-3)
    assert nh.wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert nh.wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert nh.wilson_interval(5, 10, 0.99)[0] < nh.wilson_interval(5, 10, 0.95)[0]
    for bad in [(31, 30), (-1, 30)]:
        with pytest.raises(ValueError, match="successes"):
            nh.wilson_interval(*bad)
    with pytest.raises(ValueError, match="positive whole"):
        nh.wilson_interval(1, 0)
    with pytest.raises(ValueError, match="confidence"):
        nh.wilson_interval(1, 2, confidence=1.5)


def test_mcnemar_test_counts_the_disagreements_and_matches_scipys_exact_test():
    from scipy.stats import binomtest

    for only_a, only_b in [(11, 0), (0, 1), (6, 1), (15, 5), (3, 3), (0, 0)]:
        right_a = np.array([True] * only_a + [False] * only_b + [True, False])
        right_b = np.array([False] * only_a + [True] * only_b + [True, False])
        got = nh.mcnemar_test(right_a, right_b)
        assert got[:2] == (only_a, only_b)
        n = only_a + only_b
        expected = binomtest(only_a, n).pvalue if n else 1.0
        assert got[2] == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="same items"):
        nh.mcnemar_test([True, False], [True])
