"""Early stopping in ``nh.train`` / ``nh.train_fast``: the stop rule and its arguments.

Most tests use a scripted run: a one-weight model that SGD moves by exactly
+1 per epoch (so after epoch e its weight is e), and a loss function that, on
the validation data, returns a given list of validation losses, one per epoch.
That makes the epochs at which the rule must stop, and the weights it must
restore, known in advance.
"""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nnhelpers as nh

X_ONE = torch.ones(1, 1)
Y_TRAIN = -torch.ones(1)     # marks training batches
Y_VAL = torch.ones(1)        # marks validation data


@pytest.fixture(autouse=True)
def _no_result_cache(monkeypatch):
    """These tests check the training loop itself, never a cached result."""
    monkeypatch.setenv("NNBOOK_CACHE_DIR", "off")


def _scripted_loss(val_curve):
    """Training: loss -w (gradient -1, so SGD with lr 1 adds 1 to w per epoch).
    Validation: the scripted loss of the epoch whose weights the model holds."""
    def loss_fn(pred, y):
        if y.flatten()[0] < 0:
            return -pred.mean()
        return torch.tensor(float(val_curve[int(round(pred.item())) - 1]))
    return loss_fn


def _one_weight_model():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    return model


def scripted_run(val_curve, n_epochs=None, use_loader=False, **kwargs):
    """Train the one-weight model; returns (final weight, History)."""
    torch.manual_seed(0)
    n_epochs = len(val_curve) if n_epochs is None else n_epochs
    model = _one_weight_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    common = dict(report_every=0, eval_data=(X_ONE, Y_VAL), **kwargs)
    if use_loader:
        loader = DataLoader(TensorDataset(X_ONE, Y_TRAIN), batch_size=1, shuffle=True)
        history = nh.train(model, _scripted_loss(val_curve), optimizer, loader, n_epochs, **common)
    else:
        history = nh.train_fast(model, _scripted_loss(val_curve), optimizer, X_ONE, Y_TRAIN,
                                n_epochs, batch_size=1, **common)
    return model.weight.item(), history


def test_scripted_run_moves_the_weight_by_one_per_epoch():
    weight, history = scripted_run([5, 4, 3, 2, 1])
    assert weight == 5.0
    assert history.eval_losses == [5, 4, 3, 2, 1]
    assert history.best_epoch is None and history.stopped_epoch is None


@pytest.mark.parametrize("use_loader", [False, True])
def test_stops_after_patience_epochs_without_improvement_and_restores_best(use_loader):
    curve = [5, 4, 3, 3.5, 3.6, 3.7, 3.8, 3.9, 4.0, 4.1]
    weight, history = scripted_run(curve, patience=3, use_loader=use_loader)
    assert history.best_epoch == 3
    assert history.stopped_epoch == 6            # epochs 4, 5, 6 did not improve
    assert len(history.losses) == len(history.eval_losses) == 6
    assert weight == 3.0                         # the weights after epoch 3


def test_an_improvement_resets_the_count():
    curve = [5, 4, 4.5, 4.6, 3, 3.1, 3.2, 3.3, 3.4, 3.5]
    weight, history = scripted_run(curve, patience=3)
    assert (history.best_epoch, history.stopped_epoch, weight) == (5, 8, 5.0)


def test_a_tie_is_not_an_improvement():
    weight, history = scripted_run([5, 4, 4, 4, 4, 4], patience=2)
    assert (history.best_epoch, history.stopped_epoch, weight) == (2, 4, 2.0)


def test_patience_one_stops_at_the_first_worse_epoch():
    weight, history = scripted_run([5, 4, 6, 1, 1, 1], patience=1)
    assert (history.best_epoch, history.stopped_epoch, weight) == (2, 3, 2.0)


def test_never_stops_before_min_epochs():
    curve = [5, 4, 3, 3.5, 3.6, 3.7, 3.8, 3.9, 4.0, 4.1, 4.2, 4.3]
    weight, history = scripted_run(curve, patience=2, min_epochs=9)
    assert history.stopped_epoch == 9
    assert len(history.losses) == 9
    assert (history.best_epoch, weight) == (3, 3.0)


def test_min_epochs_does_not_delay_a_late_stop():
    curve = [5, 4, 3, 3.5, 3.6, 3.7, 3.8, 3.9]
    _, history = scripted_run(curve, patience=2, min_epochs=2)
    assert history.stopped_epoch == 5


def test_running_all_epochs_still_restores_the_best_weights():
    curve = [5, 4, 3, 2, 2.5, 2.6]
    weight, history = scripted_run(curve, patience=10)
    assert history.stopped_epoch is None
    assert len(history.losses) == 6
    assert (history.best_epoch, weight) == (4, 4.0)


def test_a_stop_due_exactly_at_the_last_epoch_is_not_an_early_stop():
    weight, history = scripted_run([5, 4, 4.5, 4.6], patience=2)
    assert history.stopped_epoch is None and len(history.losses) == 4
    assert (history.best_epoch, weight) == (2, 2.0)


def test_the_report_says_where_it_stopped(capsys):
    curve = [5, 4, 3, 3.5, 3.6, 3.7, 3.8]
    scripted_run(curve, patience=2)                # scripted_run uses report_every=0
    assert capsys.readouterr().out == ""
    torch.manual_seed(0)
    model = _one_weight_model()
    nh.train_fast(model, _scripted_loss(curve), torch.optim.SGD(model.parameters(), lr=1.0),
                  X_ONE, Y_TRAIN, 7, batch_size=1, report_every=1, eval_data=(X_ONE, Y_VAL),
                  patience=2)
    out = capsys.readouterr().out
    assert "Stopped at epoch 5; restored the weights of epoch 3 (eval loss 3.000000)" in out


def _real_run(**kwargs):
    """A small network on a noisy regression problem, trained with train_fast."""
    torch.manual_seed(3)
    X = torch.linspace(-2, 2, 64).unsqueeze(1)
    y = torch.sin(2 * X).squeeze(1) + 0.3 * torch.randn(64)
    X_val = torch.linspace(-1.97, 1.97, 32).unsqueeze(1)
    y_val = torch.sin(2 * X_val).squeeze(1)
    model = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    history = nh.train_fast(model, nn.MSELoss(), optimizer, X, y, 40, batch_size=16,
                            report_every=0, eval_data=(X_val, y_val), **kwargs)
    return model, history


def test_a_patience_that_never_fires_changes_no_loss():
    _, plain = _real_run()
    _, watched = _real_run(patience=40)
    assert watched.stopped_epoch is None
    assert watched.losses == plain.losses             # bit-identical training
    assert watched.eval_losses == plain.eval_losses


def test_restored_model_has_the_best_validation_loss():
    model, history = _real_run(patience=40)
    best = min(history.eval_losses)
    assert history.best_epoch == history.eval_losses.index(best) + 1
    X_val = torch.linspace(-1.97, 1.97, 32).unsqueeze(1)
    y_val = torch.sin(2 * X_val).squeeze(1)
    assert nh.evaluate_loss(model, nn.MSELoss(), X_val, y_val) == pytest.approx(best, rel=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    (dict(patience=3, eval_data=None), "pass eval_data"),
    (dict(patience=0), "patience must be a whole number"),
    (dict(patience=-2), "patience must be a whole number"),
    (dict(patience=2.5), "patience must be a whole number"),
    (dict(patience=True), "patience must be a whole number"),
    (dict(min_epochs=3), "give patience"),
    (dict(patience=2, min_epochs=-1), "min_epochs must be a whole number"),
    (dict(patience=2, min_epochs=1.5), "min_epochs must be a whole number"),
    (dict(patience=2, min_epochs=11), "min_epochs must be a whole number between 0 and n_epochs=10"),
])
def test_bad_early_stopping_arguments_raise_clear_errors(kwargs, message):
    model = _one_weight_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    arguments = dict(report_every=0, eval_data=(X_ONE, Y_VAL))
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        nh.train_fast(model, _scripted_loss([1] * 10), optimizer, X_ONE, Y_TRAIN, 10,
                      batch_size=1, **arguments)
    assert model.weight.item() == 0.0                 # refused before any training
