"""The nbval sanitizer hides durations and nothing else."""

from nnbook import book
from nnbook import execute as ex


def test_durations_are_hidden():
    assert ex.sanitize("Training took 17.8 s") == "Training took <duration>"
    assert (ex.sanitize("DataLoader loop took 17.8 s, fast loop took 9 s")
            == "DataLoader loop took <duration>, fast loop took <duration>")


def test_real_numbers_are_kept():
    kept = ["Epoch   10  training loss 0.376431", "413 iterations, output activation: logistic",
            "tensor(0.7452, grad_fn=<BinaryCrossEntropyBackward0>)", "test accuracy: 0.460",
            "final loss 0.056, CV score (neg. MSE) -0.116", "batch size 64 took", "0.5 s-shaped",
            "array([0.   , 0.001, 0.999])", "loss against the 10 x 10 table: 0.0954087368"]
    for text in kept:
        assert ex.sanitize(text) == text, text


def test_sanitize_file_has_only_the_duration_rule(root):
    """One rule, with the pattern the helpers use for durations (nncache.DURATION)."""
    pairs = ex.sanitizers(root / "tests" / "nbval-sanitize.cfg")
    assert [(regex.pattern, replacement) for regex, replacement in pairs] == [
        (book.DURATION.pattern, "took <duration>")]
