"""The exercise checks (scripts/nnexercises.py): what a careful student types is judged right.

``TABLE`` holds, for every exercise, its true answer in full (the value the solution
cell computes) and the forms a student plausibly gives: rounded to the stated
precision, over-rounded, badly rounded, scalar and array, percent and fraction,
tuple and list, each with the verdict it must get (``OK`` or the kind of hint).
"""

import json
import re
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import torch

import nnexercises as E
from conftest import CHAPTERS, ROOT, read_notebook

OK, DIGITS, UNITS, COUNT, TYPE, HINT = "correct", "digits", "units", "count", "type", "exercise"
ROUNDING = "rounding"

TABLE = {
    # chapter 1
    "params-4323": ((32, 43), [
        ((32, 43), OK), ([32, 43], OK), (np.array([32, 43]), OK), ((32.0, 43.0), OK),
        ([np.int64(32), 43.0], OK), ((43, 32), HINT), ((33, 43), HINT), (32, COUNT),
        ((32, 43, 0), COUNT), ((32.5, 43), TYPE), ("32, 43", TYPE), (["32", "43"], TYPE)]),
    "collapse": ((3, 5, 2), [
        ((3, 5, 2), OK), ([3, 5, 2], OK), (np.array([[3, 5, 2]]), OK), (np.array([[3], [5], [2]]), OK),
        (np.array([3.0, 5.0, 2.0]), OK), ((5, 3, 2), HINT), ((3, 5), COUNT), ("3, 5, 2", TYPE)]),
    "slope-at-2": ("tanh", [
        ("tanh", OK), ("Tanh", OK), (" tanh ", OK), (["tanh"], OK), ("relu", HINT), ("sigmoid", HINT),
        (1, TYPE), (("tanh", "relu"), COUNT), ("tanh()", OK), ("np.tanh", OK), ("torch.nn.Tanh", OK),
        ("hyperbolic tangent", OK), ("Hyperbolic tangent", OK), ("softplus", TYPE), ("ReLU()", HINT)]),
    "softmax-shift": (1.1102230246251565e-16, [
        (1.1102230246251565e-16, OK), (0, OK), (0.0, OK), (np.float64(2.2e-16), OK), (-5e-10, OK),
        (np.array([0.0]), OK), (1e-6, HINT), ("0", TYPE), (float("nan"), TYPE)]),
    # chapter 2
    "binary-params": (85, [
        (85, OK), (85.0, OK), (np.int64(85), OK), ([85], OK), (84, HINT), (85.5, TYPE), ((85, 2), COUNT)]),
    "identity-boundary": (0.46, [
        (0.46, OK), (np.float64(0.46), OK), (92 / 200, OK), (1 - 0.54, OK), ([0.46], OK),
        (46, UNITS), (46.0, UNITS), (0.5, DIGITS), (0.4, HINT), (0.54, HINT), ("0.46", TYPE)]),
    "forward-by-hand": (0.9819671377526497, [
        (0.982, OK), (0.98197, OK), (0.9819671, OK), (0.9819671377526497, OK),
        (np.array([0.9819671377526497]), OK), (np.array([[0.98196714]]), OK), ([0.982], OK),
        (torch.tensor([0.9819671377526497], dtype=torch.float64), OK),
        (0.98, DIGITS), (1.0, DIGITS), (0.9819, ROUNDING), (0.0180, HINT), (98.2, UNITS),
        (np.array([0.982, 0.018]), COUNT)]),
    # chapter 3
    "optimizer-steps": (10200, [
        (10200, OK), (10200.0, OK), (1.02e4, OK), (np.int64(10200), OK), (9900, HINT), (15000, HINT),
        (34, HINT)]),
    "torch-weights": (-1.1692, [
        (-1.17, OK), (-1.169, OK), (-1.1692, OK), (-1.16923, OK), (np.float32(-1.1692), OK),
        (torch.tensor(-1.1692), OK), (torch.tensor([[-1.1692]]), OK), ([-1.169], OK),
        (-1.2, DIGITS), (1.169, HINT), (-1.168, HINT)]),
    # chapter 4
    "iris-softmax": ((0.00010500448394827535, 0.000742859008270089, 0.9991521365077818), [
        ([0.000105, 0.000743, 0.999], OK), ((0.000105, 0.000743, 0.999), OK),
        (np.array([[0.000105, 0.000743, 0.999]]), OK), ([1.05e-4, 7.43e-4, 0.9992], OK),
        ([0.00010500448394827535, 0.000742859008270089, 0.9991521365077818], OK),
        (np.array([0.00010500448394827535, 0.000742859008270089, 0.9991521365077818], dtype=np.float32), OK),
        ([0.0001, 0.0007, 1.0], DIGITS), ([0.000105, 0.000743, 1.0], DIGITS),
        ([0.000105, 0.000743, 1], DIGITS), ([0.000105, 0.000743, 1.00], DIGITS), ([0, 0.001, 0.999], HINT), ([0.999, 0.000743, 0.000105], HINT),
        ([0.0105, 0.0743, 99.9], UNITS), ([0.1, 0.2], COUNT), (0.999, COUNT)]),
    "iris-accuracy": (29 / 30, [
        (0.967, OK), (0.9667, OK), (0.96667, OK), (29 / 30, OK), (np.float64(29 / 30), OK),
        (Fraction(29, 30), OK), ([0.967], OK),
        (96.7, UNITS), (96.67, UNITS), (0.97, DIGITS), (1, DIGITS), (0.966, ROUNDING), (0.9666, ROUNDING), (0.9668, HINT), (0.96666, ROUNDING),
        (29, HINT), ("96.7%", TYPE)]),
    "softmax-twice": (0.5514447139320511, [
        (0.551, OK), (0.5514, OK), (0.55144, OK), (0.5514447139320511, OK), (np.log(1 + 2 / np.e), OK),
        (torch.tensor(0.5514447), OK), (0.55, DIGITS), (0.576, HINT), (0.0, HINT), (1.5514, HINT)]),
    # chapter 5
    "which-overfits": ("neither", [
        ("neither", OK), (" Neither ", OK), (["neither"], OK), ("20", HINT), ("40", HINT), ("both", HINT),
        (("20", "40"), COUNT)]),
    "noise-floor": (0.10500162601724777, [
        (0.105, OK), (0.1050, OK), (0.105002, OK), (0.10500163, OK), (0.10500162601724777, OK),
        (np.array([0.105]), OK), (0.1052, HINT), (0.0525, HINT), (0.1, DIGITS), (0.11, DIGITS), (0.104, HINT)]),
    # chapter 6
    "log-loss": (0.21234500664788206, [
        (0.212, OK), (0.2123, OK), (0.21235, OK), (0.21234500664788206, OK), (0.2123450066, OK),
        (0.21234, ROUNDING), (0.21, DIGITS), (0.2, DIGITS), (0.213, HINT), (21.2, UNITS), (0.2122, HINT)]),
    "zero-weights": (1.2203309812270375, [
        (1.22, OK), (1.2203, OK), (1.2203309812270375, OK), (np.array([1.22]), OK),
        (2.44, HINT), (1.2, DIGITS), (1.23, HINT)]),
    # chapter 7
    "quadratic-limit": ((-1.2) ** 10, [
        (6.19, OK), (6.192, OK), (6.1917, OK), ((-1.2) ** 10, OK), (6.1917364224, OK),
        (-6.19, HINT), (6.2, DIGITS), (6, DIGITS), (6.18, HINT)]),
    "halving-decay": (0.5 ** (1 / 100), [
        (0.993, OK), (0.9931, OK), (0.99309, OK), (2 ** (-1 / 100), OK), (0.5 ** 0.01, OK),
        (0.99, DIGITS), (1, DIGITS), (0.995, HINT), (0.9932, HINT)]),
    "cv-learning-rate": (-0.10359179536755395, [
        (-0.104, OK), (-0.1036, OK), (-0.10359, OK), (-0.10359179536755395, OK), ([-0.1036], OK),
        (-0.10, DIGITS), (0.1036, HINT), (-0.118, HINT), (-0.1131, HINT), (0.01, HINT)]),
    # chapter 8
    "second-layer-weight": (0.2542581880, [
        (0.254, OK), (0.2543, OK), (0.25426, OK), (0.254258188, OK), (np.array([0.2542581880]), OK),
        (0.25, DIGITS), (0.2542, ROUNDING), (-0.254, HINT)]),
    "dead-relu": (0.0022040531, [
        (0.0022040531, OK), (0.002204, OK), (0.0022041, OK), (2.204e-3, OK), (0.00220, OK),
        (0.002, DIGITS), (0.0022039, HINT), (0.22, UNITS), (0.2204, UNITS)]),
    # chapter 9
    "overfit-more-data": (0.11566325277090073, [
        (0.116, OK), (0.1157, OK), (0.11566325277090073, OK), (torch.tensor(0.11566325277090073), OK),
        (0.11552, OK),     # the same training with SSE-only kernels (OPENBLAS_CORETYPE=Nehalem, ...)
        (0.12, DIGITS), (0.115, HINT)]),   # compared at 3 digits only: no finer rounding to hint at
    "sklearn-patience": (315, [(315, OK), (315.0, OK), (np.int64(315), OK), (314, HINT), (316, HINT)]),
    "torch-patience": (114, [(114, OK), (114.0, OK), (3, HINT), (144, HINT), (23, HINT)]),
    "nesterov-steps": (-0.8049, [
        (-0.805, OK), (-0.8049, OK), (-0.19 - 0.271 - 0.3439, OK), (np.array([-0.8049]), OK),
        (-0.8, DIGITS), (0.805, HINT), (-0.561, HINT), (-0.804, ROUNDING), (0.804, HINT)]),
    "adam-from-scratch": (0.2945330104440351, [
        (0.295, OK), (0.2945, OK), (0.29453, OK), (0.2945330104440351, OK), (0.29, DIGITS), (0.294, ROUNDING)]),
    "torch-default-init": (0.06632410198711117, [
        (0.0663, OK), (0.06632, OK), (0.06632410198711117, OK), (6.63e-2, OK),
        (0.066, DIGITS), (0.07, DIGITS), (15.08, HINT), (0.0664, HINT), (0.49, HINT), (0.00425, HINT)]),
    "identity-interval": ((0.39233051799971463, 0.5291771081104667), [
        ((0.392, 0.529), OK), ([0.3923, 0.5292], OK), (np.array([0.392, 0.529]), OK),
        ((0.39233051799971463, 0.5291771081104667), OK), ((0.39, 0.53), DIGITS),
        ((0.529, 0.392), HINT), ((39.2, 52.9), UNITS), ((39.23, 52.92), UNITS), (0.392, COUNT), ((0.392, 0.46, 0.529), COUNT)]),
    "sigmoid-saturates": (17, [(17, OK), (17.0, OK), (16, HINT), (37, HINT), (17.5, TYPE)]),
    "clipped-gradient": (0.0, [(0.0, OK), (0, OK), (torch.tensor([0.0]), OK), (1.0, HINT), (0.5, HINT)]),
    # chapter 10
    "digits-learning-rate": (0.9843976318325762, [
        (0.984, OK), (0.9844, OK), (0.98440, OK), (np.float64(0.9843976318325762), OK), ([0.984], OK),
        (98.4, UNITS), (98.44, UNITS), (0.98, DIGITS), (0.983, HINT), (0.9829, HINT), ("0.984", TYPE)]),
    "digits-winners-curse": (0.0023626600578274815, [
        (0.0024, OK), (0.00236, OK), (0.0023627, OK), (np.float64(0.0023626600578274815), OK),
        (0.002, DIGITS), (-0.0024, HINT), (0.0023, ROUNDING), (0.9806, HINT)]),
    "digits-peek-at-c": (0.03125, [
        (0.0312, OK), (0.0313, OK), (0.03125, OK), (np.float64(0.03125), OK), ([0.0312], OK),
        (0.03, DIGITS), (0.125, HINT), (0.0625, HINT), (0.00098, HINT), (3.13, UNITS)]),
    "digits-no-decay": (0.12510906159877777, [
        (0.1251, OK), (0.12511, OK), (np.float32(0.12510906), OK), (torch.tensor(0.1251), OK),
        (0.12512817978858948, OK),   # the same training with AVX2 kernels instead of AVX-512
        (0.125, DIGITS), (0.13, DIGITS), (0.0895, HINT), (0.1252, HINT)]),
}

ROWS = [(name, k, answer, want) for name, (_, rows) in TABLE.items()
        for k, (answer, want) in enumerate(rows)]


# -- the exercises of the notebooks, and their prompts ---------------------------------

def _prompts():
    """{exercise name: (chapter stem, prompt text)} over every chapter notebook."""
    found = {}
    for path in CHAPTERS:
        for cell in read_notebook(path).cells:
            if cell.cell_type != "markdown":
                continue
            for m in re.finditer(r"^::: \{#exr-([\w-]+)\}\n(.*?)^:::", cell.source, re.S | re.M):
                found[m.group(1)] = (path.stem, m.group(2))
    return found


PROMPTS = _prompts()


def test_every_exercise_of_the_book_is_in_the_key_and_the_table():
    assert set(PROMPTS) == set(E.KEY) == set(TABLE)
    assert {name: stem for name, (stem, _) in PROMPTS.items()} == dict(E.EXERCISES)
    order = [stem for stem in E.EXERCISES.values()]
    assert order == sorted(order)                      # EXERCISES is in the book's order


@pytest.mark.parametrize("name, k, answer, want", ROWS, ids=[f"{r[0]}-{r[1]}" for r in ROWS])
def test_student_answer_table(name, k, answer, want):
    v = E.verdict(name, answer)
    got = v.status if v.status != "not quite" else v.hint_kind
    assert got == want, f"{name}: {answer!r} -> {v.message}"
    assert v == E.verdict(name, E.to_plain(answer))   # what the grader sees gives the same verdict
    if want == OK:
        assert v.message == f"[{name}] Correct!" and v.hint == ""
    else:
        assert v.message == f"[{name}] Not quite. Hint: {v.hint}" and v.hint


def test_no_hint_reveals_a_value():
    for name, (value, rows) in TABLE.items():
        for answer, _ in rows:
            hint = E.verdict(name, answer).hint
            assert not E.find_answers(hint, [name], min_whole=0), (name, hint)


# -- issue 13, item 18: the answer in the form the prompt states is "Correct!" --------

def _rule(prompt):
    """The answer form stated on the prompt's '**Answer form:**' line."""
    m = re.search(r"\*\*Answer form:\*\*(.*)", prompt)
    assert m, "the prompt ends with an '**Answer form:**' line"
    line = m.group(1).lower()
    words = {"a": 1, "a pair": 2, "two": 2, "three": 3, "four": 4}
    count = next((n for w, n in words.items() if re.search(rf"\b{w} (of )?(whole )?(numbers?|fraction)", line)), 1)
    if "string" in line:
        return {"form": "string", "choices": re.findall(r'"([^"]+)"', line), "size": 1}
    if "whole number" in line:
        return {"form": "whole", "size": count}
    within = re.search(r"within ([0-9.e+-]+)", line)
    if within:
        return {"form": "near", "atol": float(within.group(1)), "size": count}
    sig = re.search(r"at least (\d+) significant digits?", line)
    assert sig, f"a number's answer form says how many significant digits: {line}"
    return {"form": "number", "sig": int(sig.group(1)), "size": count, "fraction": "fraction" in line,
            "containers": "list" in line or "array" in line or "tuple" in line}


def _stated_forms(value, rule):
    """Answers in the form the prompt states, from the true value."""
    values = list(value) if isinstance(value, tuple) else [value]
    if rule["form"] == "string":
        return [value, value.upper()]
    if rule["form"] == "whole":
        ints = [int(v) for v in values]
        return [ints[0], np.int64(ints[0]), float(ints[0])] if len(ints) == 1 else [
            tuple(ints), ints, np.array(ints)]
    if rule["form"] == "near":
        return [v for v in (value, value + rule["atol"] / 2, value - rule["atol"] / 2, 0.0)]
    answers = []
    for d in range(rule["sig"], 16):
        rounded = [float(f"{v:.{d}g}") for v in values]
        answers += [rounded[0]] if len(rounded) == 1 else [rounded, tuple(rounded), np.array(rounded)]
    answers += [values[0], np.float64(values[0])] if len(values) == 1 else [np.array(values)]
    return answers


@pytest.mark.parametrize("name", sorted(TABLE))
def test_answer_in_the_stated_form_is_correct(name):
    value, _ = TABLE[name]
    rule = _rule(PROMPTS[name][1])
    ex = E.KEY[name]
    assert (ex.form, ex.size) == (rule["form"], rule["size"]), f"the key's rule differs from the prompt: {rule}"
    if rule["form"] == "number":
        assert (ex.sig, ex.fraction) == (rule["sig"], rule["fraction"]), rule
        assert rule["containers"] == (ex.size > 1)
    if rule["form"] == "near":
        assert ex.atol == rule["atol"]
    if rule["form"] == "string":           # exactly one of the words offered is right
        assert [E.verdict(name, w).status for w in rule["choices"]].count("correct") == 1
    for answer in _stated_forms(value, rule):
        assert E.verdict(name, answer).message == f"[{name}] Correct!", (answer, rule)


# -- the rules themselves ------------------------------------------------------------

@pytest.fixture
def key_entry(monkeypatch):
    """Add a made-up exercise to the key: key_entry(name, *values, **rule)."""
    def add(name, *values, form="number", fraction=False, **kw):
        ex = E.Exercise("99-test", form, "the exercise's own hint.",
                        E.encode(name, *values, form=form, **kw), size=len(values),
                        fraction=fraction, **kw)
        monkeypatch.setitem(E.KEY, name, ex)
        return ex
    return add


def _status(name, answer):
    v = E.verdict(name, answer)
    return v.status if v.status != "not quite" else v.hint_kind


def test_an_answer_on_a_rounding_boundary_is_right_both_ways(key_entry):
    key_entry("t-tie", 0.125, sig=2)
    assert _status("t-tie", 0.12) == OK and _status("t-tie", 0.13) == OK
    assert _status("t-tie", 0.125) == OK and _status("t-tie", 0.11) == HINT
    key_entry("t-near-tie", 2.675000000000001, sig=3)      # a float that prints just above a tie
    assert _status("t-near-tie", 2.67) == OK and _status("t-near-tie", 2.68) == OK
    assert _status("t-near-tie", 2.66) == HINT


def test_rounding_to_a_new_power_of_ten(key_entry):
    key_entry("t-carry", 9.9996, sig=3)
    assert _status("t-carry", 10.0) == OK and _status("t-carry", 10) == OK and _status("t-carry", 9.9996) == OK
    assert _status("t-carry", 9.999) == "rounding" and _status("t-carry", 9.99) == HINT


def test_significant_digits_count_for_every_element(key_entry, monkeypatch):
    """1.0 for 0.99915 has one significant digit, not three: the digits hint, as for any
    element; also with a key written before the power-of-ten fix (a spurious 1.00)."""
    ex = key_entry("t-each", 0.000105, 0.99915)
    assert _status("t-each", [0.000105, 0.999]) == OK
    assert _status("t-each", [0.000105, 1.0]) == DIGITS
    old = E.Exercise(ex.chapter, ex.form, ex.hint, " ".join(sorted(
        {*ex.key.split(), E._digest("t-each", "1:3", "100e0")})), size=2)
    monkeypatch.setitem(E.KEY, "t-each", old)
    assert _status("t-each", [0.000105, 1.0]) == DIGITS
    assert _status("t-each", [0.000105, 0.999]) == OK


def test_a_string_for_numbers_and_the_choices_of_a_word(key_entry):
    key_entry("t-pair", 32, 43, form="whole")
    assert E.verdict("t-pair", "32, 43").hint.startswith("give numbers, not text")
    assert E.verdict("slope-at-2", "softplus").hint == "answer one of sigmoid / tanh / relu."
    assert E.verdict("slope-at-2", 3).hint == 'give a string in quotes, one of "sigmoid" / "tanh" / "relu".'


def test_full_precision_answers_get_a_relative_tolerance(key_entry):
    key_entry("t-full", 1 / 3)
    assert _status("t-full", 1 / 3 * (1 + 1e-12)) == OK
    assert _status("t-full", 0.3333333333) == OK          # 10 digits, correctly rounded
    assert _status("t-full", 1 / 3 * (1 + 1e-6)) == HINT


def test_numbers_of_whatever_type(key_entry):
    key_entry("t-types", 0.25, 1.5)
    for answer in ([0.25, 1.5], (Fraction(1, 4), 1.5), np.array([0.25, 1.5], dtype=np.float32),
                   torch.tensor([[0.25], [1.5]]), np.array([[0.25, 1.5]]), [[0.25], [1.5]]):
        assert _status("t-types", answer) == OK, answer


def test_verdict_never_raises_and_to_plain_is_json():
    class Odd:
        def __float__(self):
            raise RuntimeError("no")

    weird = [Odd(), {"a": 1}, object(), iter([1, 2]), 10 ** 400, -1e308, float("inf"), [[], []], [[1, 2], 3],
             b"bytes", 1j, np.array([]), np.array([[1, 2], [3, 4]]), set(), lambda: 1, "", [None], True]
    for name in E.KEY:
        for answer in weird:
            v = E.verdict(name, answer)
            assert v.status in {"not quite", "correct"} and v.message.startswith(f"[{name}] ")
            plain = E.to_plain(answer)
            assert json.loads(json.dumps(plain)) == plain
            assert E.to_plain(plain) == plain


def test_unknown_and_not_answered():
    assert E.verdict("no-such-exercise", 1).status == "unknown"
    assert E.verdict("log-loss", ...).message == "[log-loss] Not answered yet: replace ... with your answer."
    assert E.verdict("log-loss", None).status == "not answered"


# -- no answer in plain sight -----------------------------------------------------------

def test_the_key_holds_digests_only():
    for name, ex in E.KEY.items():
        assert re.fullmatch(r"[0-9a-f]{12}( [0-9a-f]{12})*", ex.key), name
        assert ex.key.split() == sorted(set(ex.key.split())), name
        assert ex.hint and ex.form in {"number", "near", "whole", "string"}


def test_no_answer_in_plain_text_in_the_scripts():
    for path in sorted((ROOT / "scripts").glob("*.py")):
        assert E.find_answers(path.read_text()) == [], path.name


def test_find_answers_finds_what_it_should():
    assert E.find_answers("accuracy 0.967 and the test MSE 0.1050.") == [
        ("iris-accuracy", "0.967"), ("noise-floor", "0.1050")]
    assert E.find_answers("10200 steps", min_whole=0) == [("optimizer-steps", "10200")]
    assert E.find_answers("0.1 and 0.97 and 12") == []


def test_encode_cli_prints_an_entry_without_the_value(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "nnexercises.py"), "encode", "t-cli",
                          "0.4321", "0.8765", "--chapter", "99-test", "--hint", "a hint.", "--fraction"],
                         capture_output=True, text=True, check=True).stdout
    assert "4321" not in out and "8765" not in out
    namespace = {"Exercise": E.Exercise}
    exec("entries = {\n" + out + "\n}", namespace)
    ex = namespace["entries"]["t-cli"]
    assert (ex.chapter, ex.size, ex.fraction) == ("99-test", 2, True)
    E.KEY["t-cli"] = ex
    try:
        assert E.verdict("t-cli", [0.432, 0.877]).status == "correct"
        assert E.verdict("t-cli", [43.2, 87.7]).hint_kind == UNITS
    finally:
        del E.KEY["t-cli"]
