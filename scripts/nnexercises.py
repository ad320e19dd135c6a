"""The exercises' answer key and the checking logic: one home for ``nh.check`` and the grader.

    verdict(name, answer) -> Verdict      # what nh.check prints, as data
    to_plain(answer)                       # JSON-able numbers, strings and nested lists
    EXERCISES                              # ordered mapping: exercise name -> chapter stem
    python scripts/nnexercises.py encode NAME VALUE [VALUE ...] [options]   # add an answer
    python scripts/nnexercises.py list                                      # every exercise's rule
    find_answers(text)                     # numbers in a text that the key accepts (give-aways)

Which answers are accepted
--------------------------
Every exercise's prompt ends with an **Answer form:** line; the key below holds the
matching rule for each exercise:

* ``number``: a real number (or ``size`` of them). An answer is right when it equals the
  expected value *correctly rounded to the number of significant digits the student
  gave*, and gives at least ``sig`` significant digits (3 unless the key says
  otherwise). The digits of a float are those of its shortest repr (``0.123`` has 3,
  ``1800.0`` has 2, trailing zeros do not count; ``1800`` still counts as right for
  1800.4 at 3 digits). An answer with more than ``digits`` significant digits (10
  by default; fewer for values that come out of a long training, which may differ in
  the last digits between machines) is compared at ``digits`` digits, with one unit
  of that digit to spare: a full-precision answer computed slightly differently still
  counts. An answer that sits on a rounding boundary of the expected value (e.g.
  0.125 to 2 digits) is right both ways. A float that a 32-bit float represents
  exactly and that shows more than 9 digits (a torch result) is read with the digits
  its 32-bit repr shows, of which 6 are trusted. Since a float cannot tell 0.00220
  from 0.0022, trailing zeros up to ``sig`` digits are taken as given.
  Every number answer that is right once divided by 100 gets the units hint (a
  percentage given for a fraction); ``fraction=True`` only documents that the value
  is a fraction between 0 and 1. An answer one unit of its last digit away from the
  right rounding (12.34 for 12.346: cut off, or computed from rounded numbers) gets a
  rounding hint.
  The rule of significant digits applies to every element of an answer.
* ``near``: a number (or several) within ``atol`` of the exact value (for answers that
  are zero up to round-off).
* ``whole``: whole numbers (an int, or a float with no fractional part).
* ``string``: a word, compared without case, surrounding blanks or quotes, call
  parentheses or a module prefix (``np.tanh()`` is ``tanh``), with obvious synonyms
  (:data:`SYNONYMS`: "hyperbolic tangent"); a word that is none of the prompt's
  choices (:data:`CHOICES`) gets the hint "answer one of ...".

Shapes are squeezed: a scalar, a (1,) array and a one-element list are the same
answer, and so are a (3,) array, a (1, 3) array, a list and a tuple of three numbers.
Hints diagnose the form (too few digits, a percentage, the count of numbers) and
otherwise give the exercise's own hint; they never show the expected value.
:func:`verdict` never raises.

How the answers are stored (no answer in plain sight)
----------------------------------------------------
The key holds no expected value, only salted digests (SHA-256, first 12 hex digits)::

    digest(name, tag, text) = sha256("nnbook-answers-v1|<name>|<tag>|<text>")

* ``number``: for element ``i`` (counting from 0) and every precision ``d`` from 1 to
  ``digits``, the text is the expected value rounded to ``d`` significant digits,
  written canonically as ``<sign><d digits>e<exponent>`` (``123e-1`` for 0.123 at 3
  digits), with tag ``"i:d"``. When the value lies on (or within 1e-12 of) a rounding
  boundary, the rounding on the other side is stored too. A student's answer is
  written the same way at ``max(its digits, sig)`` digits and its digest looked up
  (and, if it gives fewer than ``sig`` digits, at its own digits, to tell "right so
  far, give more digits" from a wrong answer).
* ``near``: the number line is cut into cells of ``atol/10``; the digests of the
  indices of all cells within ``atol`` of the value are stored (tag ``"i:near"``).
* ``whole``: one digest of the comma-joined whole numbers (tag ``"whole"``).
* ``string``: one digest of the normalized word (tag ``"string"``).

The digests of one exercise are sorted and stored as one string, so nothing tells
which digest belongs to which precision. The exercise's name salts every digest,
so equal answers of two exercises do not look alike. This stops reading an answer
off the key; it does not stop a determined student from trying every 3-digit number
against it (which takes a program and more effort than the exercise). Grading
(``tooling/nnbook/grade.py``) checks answers outside the student's kernel with this module.

Adding or changing an answer
----------------------------
Compute the value in the solution cell, then print a key entry without writing
the value into any file::

    python scripts/nnexercises.py encode my-exercise 0.1234567 --chapter 08-backpropagation \\
        --hint "change the bias in a copy of biases, then call backprop with the copy."
    python scripts/nnexercises.py encode my-pair 12 34 --form whole --chapter ...

and paste the printed entry into ``KEY`` below (``encode(...)`` does the same from
Python). Options: ``--form number|whole|string|near``, ``--sig N`` (least
significant digits), ``--digits N`` (digits compared at most), ``--fraction``,
``--atol X`` (for ``near``). Then state the same rule in the prompt's **Answer form:** line.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext

__all__ = ["Exercise", "Verdict", "KEY", "EXERCISES", "verdict", "to_plain", "encode",
           "find_answers", "number_matches"]

_SCHEME = "nnbook-answers-v1"
_DIGEST_CHARS = 12
_MAX_DIGITS = 16      # a double holds 15 to 17 significant digits


@dataclass(frozen=True)
class Exercise:
    """One exercise's entry in the answer key (see the module docstring)."""

    chapter: str           # stem of the chapter notebook, e.g. "07-gradient-descent"
    form: str              # "number", "near", "whole" or "string"
    hint: str              # the exercise's own hint (never the value)
    key: str               # sorted salted digests, separated by blanks
    size: int = 1          # how many numbers the answer holds
    sig: int = 3           # least significant digits accepted ("number")
    digits: int = 10       # significant digits compared at most ("number")
    fraction: bool = False  # a fraction between 0 and 1: a percentage gets a units hint
    atol: float = 0.0      # accepted distance ("near")

    @property
    def digests(self) -> frozenset:
        return frozenset(self.key.split())


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one answer."""

    status: str            # "correct", "not quite", "not answered" or "unknown"
    hint: str              # the hint shown after "Not quite." ("" otherwise)
    message: str           # the line nh.check prints
    hint_kind: str = ""    # "exercise", "digits", "units", "rounding", "count", "type", ""


# --------------------------------------------------------------------------
# The answer key. Entries are printed by `python scripts/nnexercises.py encode ...`.
# --------------------------------------------------------------------------

KEY: dict[str, Exercise] = {}

EXERCISES: dict[str, str] = {}
"""Exercise name -> chapter stem, in the book's order (filled from :data:`KEY`)."""


def _refresh_index() -> None:
    EXERCISES.clear()
    for name, ex in sorted(KEY.items(), key=lambda item: item[1].chapter):  # stable: key order within a chapter
        EXERCISES[name] = ex.chapter


# --------------------------------------------------------------------------
# Digests and canonical forms
# --------------------------------------------------------------------------

def _digest(name: str, tag: str, text: str) -> str:
    return hashlib.sha256(f"{_SCHEME}|{name}|{tag}|{text}".encode()).hexdigest()[:_DIGEST_CHARS]


def _decimal(x) -> Decimal:
    """A float or int as the decimal its shortest repr shows (what the student typed)."""
    if isinstance(x, Decimal):
        return x
    if isinstance(x, int):
        return Decimal(x)
    return Decimal(repr(float(x)))


def _sig_digits(x: Decimal) -> int:
    """Significant digits of ``x`` (trailing zeros do not count; 0 has one)."""
    if x == 0:
        return 1
    return len(x.normalize().as_tuple().digits)


def _round(x: Decimal, d: int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec, ctx.rounding = d, ROUND_HALF_EVEN
        return +x


def _canonical(x: Decimal, d: int) -> str:
    """``x`` rounded to ``d`` significant digits, written as ``<sign><d digits>e<exp>``."""
    if x == 0:
        return "0"
    y = _round(x, d)
    sign, digits, _ = y.as_tuple()
    text = "".join(map(str, digits)).ljust(d, "0")[:d]
    return f"{'-' if sign else ''}{text}e{y.adjusted()}"


def _unit(x: Decimal, d: int) -> Decimal:
    """The value of one unit in the ``d``-th significant digit of ``x``."""
    return Decimal(1).scaleb(x.adjusted() - d + 1)


def _roundings(v: Decimal, d: int) -> set[str]:
    """Canonical ``d``-digit roundings of ``v``: the correct one, and its neighbor when
    ``v`` lies on (or within 1e-12 relative of) the boundary between the two."""
    if v == 0:
        return {"0"}
    with localcontext() as ctx:
        ctx.prec = 60
        delta = abs(v) * Decimal("1e-12") + _unit(v, d) * Decimal("5e-10")
        return {_canonical(v, d), _canonical(v - delta, d), _canonical(v + delta, d)}


def _consistent(name: str, i: int, c: Decimal, d: int, most: int) -> bool:
    """Whether the ``d``-digit value ``c`` is backed by a ``d + 1``-digit rounding in the key
    within half a unit of ``c``'s last digit. (Keys written before the rounding-boundary fix
    hold a spurious neighbor at a power of ten, e.g. 1.00 for 0.99915; this makes it harmless.)"""
    if d >= most or c == 0:
        return True
    unit = _unit(c, d)
    with localcontext() as ctx:
        ctx.prec = 60
        candidates = [c + k * unit / 10 for k in range(-5, 6)]
        candidates += [c - k * unit / 100 for k in range(1, 6)]     # below a power of ten
        return any(x != 0 and abs(x - c) <= unit / 2
                   and _digest(name, f"{i}:{d + 1}", _canonical(x, d + 1)) in KEY[name].digests
                   for x in candidates)


def _near_cells(v: Decimal, atol: Decimal) -> range:
    cell = atol / 10
    lo = math.floor((v - atol) / cell)
    hi = math.floor((v + atol) / cell)
    return range(lo, hi + 1)


SYNONYMS = {"hyperbolic tangent": "tanh", "tangens hyperbolicus": "tanh",
            "logistic": "sigmoid", "logistic sigmoid": "sigmoid", "logistic function": "sigmoid",
            "rectified linear unit": "relu", "rectifier": "relu", "rectified linear": "relu"}
"""Other names of the words the exercises ask for (activation functions)."""

CHOICES = {"slope-at-2": ("sigmoid", "tanh", "relu")}
"""The words a string exercise's prompt lists (not secret: the prompt says them)."""


def _normal_word(s: str) -> str:
    """A word as compared: no case, blanks, quotes, call parentheses or module prefix
    (``"np.tanh()"``, ``"torch.nn.Tanh"`` and ``" TANH "`` are ``"tanh"``), synonyms
    (``"hyperbolic tangent"``) replaced."""
    word = s.strip().strip("'\"").strip().lower()
    word = re.sub(r"\s*\(\s*\)$", "", word)
    word = re.sub(r"[\s_-]+", " ", word).strip()
    if re.fullmatch(r"[\w.]+", word):
        word = word.rsplit(".", 1)[-1]
    return SYNONYMS.get(word, word)


# --------------------------------------------------------------------------
# Encoding (adding answers to the key)
# --------------------------------------------------------------------------

def encode(name: str, *values, form: str = "number", sig: int = 3, digits: int = 10,
           atol: float = 0.0) -> str:
    """The ``key`` string of an exercise whose answer is ``values`` (see module docstring).

    ``form`` is "number" (each value real), "near" (within ``atol``), "whole" or
    "string". The value itself is not part of the result.
    """
    if form == "number":
        if not 1 <= sig <= digits <= _MAX_DIGITS:
            raise ValueError(f"need 1 <= sig <= digits <= {_MAX_DIGITS}, got sig={sig}, digits={digits}")
        found = {_digest(name, f"{i}:{d}", text)
                 for i, v in enumerate(values) for d in range(1, digits + 1)
                 for text in _roundings(_decimal(v), d)}
    elif form == "near":
        if not atol > 0:
            raise ValueError("form 'near' needs a positive atol, e.g. atol=1e-9")
        found = {_digest(name, f"{i}:near", str(k)) for i, v in enumerate(values)
                 for k in _near_cells(_decimal(v), _decimal(atol))}
    elif form == "whole":
        if not all(float(v).is_integer() for v in values):
            raise ValueError("form 'whole' needs whole numbers")
        found = {_digest(name, "whole", ",".join(str(int(float(v))) for v in values))}
    elif form == "string":
        if len(values) != 1 or not isinstance(values[0], str):
            raise ValueError("form 'string' needs exactly one string")
        found = {_digest(name, "string", _normal_word(values[0]))}
    else:
        raise ValueError(f"unknown form {form!r}: use number, near, whole or string")
    return " ".join(sorted(found))


def _entry_source(name, values, chapter, hint, form, sig, digits, fraction, atol) -> str:
    key = encode(name, *values, form=form, sig=sig, digits=digits, atol=atol)
    words = key.split()
    lines = [" ".join(words[k:k + 6]) for k in range(0, len(words), 6)]
    key_src = "\n".join(f'            "{ln}{" " if k < len(lines) - 1 else ""}"'
                        for k, ln in enumerate(lines))
    hint_src = f'"{hint}"' if '"' not in hint and "\\" not in hint else repr(hint)
    extra = ""
    if len(values) != 1:
        extra += f", size={len(values)}"
    if form == "number" and sig != 3:
        extra += f", sig={sig}"
    if form == "number" and digits != 10:
        extra += f", digits={digits}"
    if fraction:
        extra += ", fraction=True"
    if form == "near":
        extra += f", atol={atol!r}"
    return (f'    "{name}": Exercise(\n        "{chapter}", "{form}",\n        {hint_src},\n'
            f'        key=(\n{key_src}){extra}),')


# --------------------------------------------------------------------------
# Plain data
# --------------------------------------------------------------------------

def to_plain(answer):
    """``answer`` as plain, JSON-able data: numbers, strings, booleans, None, nested lists.

    NumPy and torch arrays and scalars, pandas objects, tuples and other sequences
    become (nested) lists; 32-bit floats keep the digits they show. ``...`` becomes
    None (both mean "not answered"). Anything else becomes a short description
    string, which no exercise accepts. ``verdict(name, to_plain(a)) == verdict(name, a)``.
    (NaN and infinities stay floats: ``json.dumps`` writes them as NaN/Infinity.)
    """
    try:
        return _plain(answer, 0)
    except Exception:  # never raise: an unconvertible answer is simply wrong
        return f"<{type(answer).__name__}>"


def _plain(a, depth):
    if depth > 20:
        return "<nested too deeply>"
    if a is None or a is ...:
        return None
    if isinstance(a, (bool, str)):
        return a
    if isinstance(a, int):
        return int(a)
    if isinstance(a, float):
        return float(a)
    mod = type(a).__module__.split(".")[0]
    if mod == "numpy":
        import numpy as np

        if isinstance(a, np.bool_):
            return bool(a)
        if isinstance(a, np.integer):
            return int(a)
        if isinstance(a, np.floating):
            return float(a)     # exact, also for float32 (verdict reads the digits it shows)
        if isinstance(a, np.ndarray):
            if a.ndim == 0:
                return _plain(a[()], depth + 1)
            return [_plain(x, depth + 1) for x in a]
    if mod == "torch" and hasattr(a, "detach"):
        return _plain(a.detach().cpu().numpy(), depth + 1)
    if mod == "pandas" and hasattr(a, "to_numpy"):
        return _plain(a.to_numpy(), depth + 1)
    if isinstance(a, Decimal):
        return float(a)
    if isinstance(a, numbers.Integral):
        return int(a)
    if isinstance(a, numbers.Real):
        return float(a)
    if isinstance(a, (list, tuple, range)):
        return [_plain(x, depth + 1) for x in a]
    return f"<{type(a).__name__}>"


def _leaves(plain) -> list:
    """The flat list of a plain answer's values: shapes squeezed, lists of lists flattened."""
    if isinstance(plain, list):
        return [leaf for x in plain for leaf in _leaves(x)]
    return [plain]


# --------------------------------------------------------------------------
# Checking
# --------------------------------------------------------------------------

_DIGITS_EXAMPLE = "0.000123 and 12.3 have three, 0.0001 and 0.1 have one"


def verdict(name: str, answer) -> Verdict:
    """Check ``answer`` to exercise ``name``. Never raises."""
    if name not in KEY:
        return Verdict("unknown", "", f"[{name}] unknown exercise name: check the spelling.")
    plain = to_plain(answer)
    if plain is None:
        return Verdict("not answered", "", f"[{name}] Not answered yet: replace ... with your answer.")
    try:
        ok, kind, hint = _judge(name, KEY[name], plain)
    except Exception:  # a malformed answer is a wrong answer, not a crash
        ok, kind, hint = False, "exercise", KEY[name].hint
    if ok:
        return Verdict("correct", "", f"[{name}] Correct!")
    return Verdict("not quite", hint, f"[{name}] Not quite. Hint: {hint}", kind)


def _count_hint(ex: Exercise, got: int) -> str:
    want = "a single number" if ex.size == 1 else f"{ex.size} numbers"
    if ex.form == "string":
        want = "a single string"
    return f"expected {want}, got {got}."


def _judge(name: str, ex: Exercise, plain):
    leaves = _leaves(plain)
    if ex.form != "string" and any(isinstance(x, str) for x in leaves):
        return False, "type", ("give numbers, not text in quotes (e.g. (3, 4), not '3, 4')."
                               if ex.size > 1 else "give a number, not text in quotes.")
    if len(leaves) != ex.size:
        return False, "count", _count_hint(ex, len(leaves))
    if ex.form == "string":
        choices = CHOICES.get(name)
        if not isinstance(leaves[0], str):
            return False, "type", ("give a string in quotes, one of "
                                   + (" / ".join(f'"{c}"' for c in choices) if choices
                                      else "the words the prompt lists") + ".")
        word = _normal_word(leaves[0])
        if choices and word not in choices:
            return False, "type", f"answer one of {' / '.join(choices)}."
        return _digest(name, "string", word) in ex.digests, "exercise", ex.hint
    if any(isinstance(x, (str, bool)) or x is None for x in leaves):
        return False, "type", ("give numbers, not text in quotes." if ex.size > 1
                               else "give a number, not text in quotes.")
    if not all(math.isfinite(x) for x in leaves):
        return False, "type", "the answer is not a finite number (NaN or infinity): check the computation."
    if ex.form == "whole":
        if not all(float(x).is_integer() for x in leaves):
            return False, "type", "give whole numbers." if ex.size > 1 else "give a whole number."
        text = ",".join(str(int(x)) if isinstance(x, int) else str(int(float(x))) for x in leaves)
        return _digest(name, "whole", text) in ex.digests, "exercise", ex.hint
    if ex.form == "near":
        atol = _decimal(ex.atol)
        ok = all(_digest(name, f"{i}:near", str(math.floor(_decimal(x) / (atol / 10)))) in ex.digests
                 for i, x in enumerate(leaves))
        return ok, "exercise", ex.hint
    # form "number"
    readings = [_reading(x) for x in leaves]
    results = [_element(name, ex, i, x, trust) for i, (x, trust) in enumerate(readings)]
    if all(r == "ok" for r in results):
        return True, "", ""
    if all(r in ("ok", "short") for r in results):
        return False, "digits", (f"right so far, but give at least {ex.sig} significant digits "
                                 f"({_DIGITS_EXAMPLE}).")
    # one rule for every answer: right once divided by 100 means a percentage was given
    percent = [_element(name, ex, i, x / 100, trust) for i, (x, trust) in enumerate(readings)]
    if all(r == "ok" for r in percent):
        return False, "units", ("right value, but as a percentage: give a fraction between 0 "
                                "and 1." if ex.fraction else "right digits, but 100 times too "
                                "large: give the value itself, not a percentage.")
    if all(r == "ok" or _truncated(name, ex, i, readings[i][0]) for i, r in enumerate(results)):
        return False, "rounding", ("right up to the last digit: round only the final value, to "
                                   "the digits you give (don't cut digits off, and don't "
                                   "compute it from numbers already rounded for printing).")
    hint = ex.hint
    if any(_sig_digits(x) < ex.sig for x, _ in readings):
        hint += f" And give at least {ex.sig} significant digits ({_DIGITS_EXAMPLE})."
    return False, "exercise", hint


def _reading(x) -> tuple[Decimal, int]:
    """A number as the decimal it shows, and how many of its digits to trust.

    A float with more than 9 significant digits that a 32-bit float represents
    exactly was computed in 32 bits (by torch, say; a 64-bit result is 32-bit exact
    by chance once in 500 million): read it with the digits its 32-bit repr shows,
    and trust 6 of them.
    """
    if isinstance(x, float):
        shown = _decimal(x)
        if _sig_digits(shown) > 9:
            import numpy as np

            single = np.float32(x)
            if float(single) == x:
                return Decimal(str(single)), 6
        return shown, _MAX_DIGITS
    return _decimal(x), _MAX_DIGITS


def _element(name: str, ex: Exercise, i: int, x: Decimal, trust: int = _MAX_DIGITS) -> str:
    """"ok", "short" (right to the digits given, but fewer than ``sig``) or "wrong"."""
    return "ok" if _number_ok(name, ex, i, x, trust) else (
        "short" if _sig_digits(x) < ex.sig and _digest(
            name, f"{i}:{_sig_digits(x)}", _canonical(x, _sig_digits(x))) in ex.digests
        else "wrong")


def _truncated(name: str, ex: Exercise, i: int, x: Decimal) -> bool:
    """Whether ``x``, given to at least ``sig`` digits, is the right value with its digits cut
    off instead of rounded (12.34 for 12.346): the key's rounding to one more digit lies
    between ``x`` plus half a unit of its last digit and ``x`` plus a unit."""
    d = _sig_digits(x)
    if d < ex.sig or d >= ex.digits or x == 0:
        return False
    unit = _unit(x, d) * (1 if x > 0 else -1)
    with localcontext() as ctx:
        ctx.prec = 60
        return any(_digest(name, f"{i}:{d + 1}", _canonical(x + k * unit / 10, d + 1)) in ex.digests
                   for k in range(5, 10))


def _number_ok(name: str, ex: Exercise, i: int, x: Decimal, trust: int = _MAX_DIGITS) -> bool:
    """Whether ``x`` is right to the digits it gives (see the module docstring);
    beyond ``min(ex.digits, trust)`` digits, within one unit of the last digit compared."""
    given, most = _sig_digits(x), min(ex.digits, trust)
    if given <= most:
        d = max(given, ex.sig)
        return (_digest(name, f"{i}:{d}", _canonical(x, d)) in ex.digests
                and _consistent(name, i, x, d, ex.digits))
    d = most
    y = _round(x, d)
    with localcontext() as ctx:
        ctx.prec = 60
        candidates = (y, y - _unit(y, d), y + _unit(y, d))
    return any(_digest(name, f"{i}:{d}", _canonical(c, d)) in ex.digests for c in candidates)


def number_matches(name: str, value, index: int | None = None) -> bool:
    """Whether the number ``value`` is accepted as (element ``index`` of) the answer
    to exercise ``name``, by the rule of its form; any element if ``index`` is None.

    Used to scan text for answers given away (see :func:`find_answers`).
    """
    ex = KEY[name]
    try:
        x = _decimal(value)
        indices = range(ex.size) if index is None else [index]
        if ex.form == "number":
            return any(_number_ok(name, ex, i, x) for i in indices)
        if ex.form == "near":
            cell = math.floor(x / (_decimal(ex.atol) / 10))
            return any(_digest(name, f"{i}:near", str(cell)) in ex.digests for i in indices)
        if ex.form == "whole" and ex.size == 1 and x == x.to_integral_value():
            return _digest(name, "whole", str(int(x))) in ex.digests
    except (InvalidOperation, ValueError, OverflowError):
        pass
    return False


_NUMBER = re.compile(r"(?<![\w.])[-\u2212]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?!\w|\.\d)")


def find_answers(text: str, names=None, *, min_whole: int = 100) -> list[tuple[str, str]]:
    """``(exercise name, number as written)`` for every number in ``text`` that the key
    accepts as (part of) an answer. ``names`` limits the exercises searched (default all).

    What counts as giving an answer away:

    * a ``number`` answer written to at least the exercise's ``sig`` digits (a mere
      "0.1" is no give-away) and correctly rounded;
    * a ``whole`` answer of at least ``min_whole`` (100 by default: small whole
      numbers are everywhere in code; pass ``min_whole=0`` to scan prose); an
      answer of several whole numbers when they are written as a list ("32, 43");
    * an answer of several numbers only when all of them occur in ``text``;
    * ``near`` answers (zero up to round-off) and ``string`` answers (words such as
      an activation's name) are never reported: code and prose are full of them.
    """
    tokens = {m.group(0).replace("\u2212", "-").rstrip(".") for m in _NUMBER.finditer(text)}
    numbers = []
    for t in sorted(tokens):
        try:
            numbers.append((t, Decimal(t)))
        except InvalidOperation:
            continue
    found = []
    for name in (KEY if names is None else names):
        ex = KEY[name]
        if ex.form == "number":
            hits = [[t for t, x in numbers if _sig_digits(x) >= ex.sig and number_matches(name, x, i)]
                    for i in range(ex.size)]
            if all(hits):                                  # every element of the answer is there
                found += [(name, t) for t in sorted({t for h in hits for t in h})]
        elif ex.form == "whole" and ex.size == 1:
            found += [(name, t) for t, x in numbers
                      if x == x.to_integral_value() and abs(x) >= min_whole
                      and number_matches(name, x)]
        elif ex.form == "whole":                           # the numbers written as a list
            sep = r"\s*[,;]\s*"
            run = re.compile(r"(?<![\w.])(?=" + sep.join([r"(-?\d+)"] * ex.size) + r"(?!\w|\.\d))")
            for m in run.finditer(text):                   # overlapping runs of numbers
                ints = [int(g) for g in m.groups()]
                if max(map(abs, ints)) >= min_whole and \
                        _digest(name, "whole", ",".join(map(str, ints))) in ex.digests:
                    found.append((name, ", ".join(m.groups())))
    return found


# --------------------------------------------------------------------------
# The key itself
# --------------------------------------------------------------------------

KEY.update({
    "params-4323": Exercise(
        "01-neurons-and-networks", "whole",
        "each layer has (inputs + 1) x neurons parameters; answer a pair (a, b).",
        key=(
            "c7804101cdd4"), size=2),
    "collapse": Exercise(
        "01-neurons-and-networks", "whole",
        "the weights are the matrix product W2 W1 and the bias is W2 b1 + b2.",
        key=(
            "947d2328d2fc"), size=3),
    "slope-at-2": Exercise(
        "01-neurons-and-networks", "string",
        "compute the three slopes at z = 2 with the formulas given, and pick the smallest.",
        key=(
            "172fc5b77e8c")),
    "softmax-shift": Exercise(
        "01-neurons-and-networks", "near",
        "compute both score vectors and take the largest absolute difference.",
        key=(
            "1357372ec427 264dd1e0bbf4 2d50479dcf1a 38902e961ef5 62046197e99c 6401fb2b55a6 "
            "6576ca21fbbb 6584019701b2 65b8b44b1e8c 666611335aaa 70fc1df9d3f1 7c258b715fa7 "
            "8df6a43c4150 ad33e920a68e b20334c88493 b90692c7d7d7 c510a98fcb44 d1d53d719d8f "
            "e31c71a5271b f7a29889b953 f890adb1bbd2"), atol=1e-09),
    "binary-params": Exercise(
        "02-sklearn-binary-classifier", "whole",
        "add up the sizes of every array in coefs_ and intercepts_.",
        key=(
            "f163391b89ef")),
    "identity-boundary": Exercise(
        "02-sklearn-binary-classifier", "number",
        "keep hidden_layer_sizes, max_iter and random_state as before; use model.score on the test data.",
        key=(
            "0c426c998302 3f642f5c55b8 430f545f1de3 62619ed2d880 77b88fc9ea59 9a139511361b "
            "b59d2f22eab9 b817742c62f0 d1249c205f78 f7c763370f9c"), fraction=True),
    "forward-by-hand": Exercise(
        "02-sklearn-binary-classifier", "number",
        "use a @ W + b per layer, ReLU on hidden layers, sigmoid at the end.",
        key=(
            "06d3e1fc8252 7b4319314fd6 8358845c3966 8b8231b4d4b9 8f8799fb3ca1 b390df42d65d "
            "b90dc23d4a34 c354d4ed5558"), digits=8),
    "optimizer-steps": Exercise(
        "03-pytorch-binary-classifier", "whole",
        "count the batches in one epoch of 800 points: the last, smaller batch is a step too.",
        key=(
            "ab5c3f39a2c2")),
    "torch-weights": Exercise(
        "03-pytorch-binary-classifier", "number",
        "torch's Linear.weight has shape (outputs, inputs): mind the order.",
        key=(
            "25745f898830 5a71d45fae9c 7de6371e1110 806b960885cc e113819a62d1"), digits=5),
    "iris-softmax": Exercise(
        "04-multiclass-iris", "number",
        "three scores: exp(z) divided by the sum of exp(z), for the first test flower.",
        key=(
            "0cfbf30574f9 2719da042c29 292361fb99f4 2f567d4decf5 30650db91bb1 4e0cd3313925 "
            "50eaf39973db 50fb0cd71cda 59f051576af7 70cba34fa3a5 77ab7e6b7eac 7c181262b819 "
            "8d4ac11e11f4 95e37c2fe980 99995b9002af 9d47a0d391f1 9df8d5e4839d ae4228752a7f "
            "ae4866c83787 b3308e233cca bddeaa017946 c667a85b66fb d142123d8575 d2d0fa3450e0 "
            "e1c9ebbfb2d9"), size=3, digits=8),
    "iris-accuracy": Exercise(
        "04-multiclass-iris", "number",
        "correct predictions sit on the diagonal; divide by the number of flowers.",
        key=(
            "110b266b1b4f 3ce15bf792d4 40ca52e1b813 65bf9eadefa0 6b00da58143f 87ade3172727 "
            "93dae5f44e5d a54ede9a76a8 f25d87ca4490 f727e56b8bd0"), fraction=True),
    "softmax-twice": Exercise(
        "04-multiclass-iris", "number",
        "the loss applies a softmax to (1, 0, 0) and takes minus the log of the first entry.",
        key=(
            "318be632ce48 59548475d973 7aa7349b5659 7b0277f8d5be 956cd49ea24e 9caa0b41c547 "
            "c02e5f209f63 cce12061c5b7 db3f5092721f f1ad274c13f4")),
    "which-overfits": Exercise(
        "05-regression", "string",
        "compare each fit's training MSE with the true curve's MSE on the same points: only a fit that follows the noise can go below it.",
        key=(
            "4c70102c5e0f")),
    "noise-floor": Exercise(
        "05-regression", "number",
        "use sklearn.metrics.mean_squared_error on the test set (no factor 1/2).",
        key=(
            "864fbe079bbf 868d0387f161 8bbd802b9e79 d74c628a20fd f18e432fdc35 f21311f40432 "
            "f776d764e813 f89581e87f56"), digits=8),
    "log-loss": Exercise(
        "06-loss-and-regularization", "number",
        "average -[y log p + (1 - y) log(1 - p)] over the four observations.",
        key=(
            "0652612e3c91 0e02282fba87 124146ebf1de 15ff2e765e5d 360735ba2fdc 3612060e20d8 "
            "a64a270a4230 bc9240baf7ed d11c42c29e0e e275199583a8")),
    "zero-weights": Exercise(
        "06-loss-and-regularization", "number",
        "the prediction is then the same constant for every input; use the 1/2n loss of the chapter on the training set.",
        key=(
            "0d512793448e 1ca318a7270a 932db815cfdc aef2ff334251 b28e3ae87ada b4bf02f9f16e "
            "b53f98578bfb ec63db7a62c6"), digits=8),
    "quadratic-limit": Exercise(
        "07-gradient-descent", "number",
        "each step multiplies p by the same factor 1 - lr * a.",
        key=(
            "04fb0f009cff 13c94f509f9e 1de3c18c88f1 1e11005db7e5 3371adce83be 792a12532e27 "
            "8c7a3663093d aa5545248796 e8a399da7fda f7b00c92d1b1")),
    "halving-decay": Exercise(
        "07-gradient-descent", "number",
        "solve s ** 100 == 1/2 for s.",
        key=(
            "0d1b9bd5f422 0e856fd48e5e 3f6542719819 92b46162b174 9946a2c13456 9f9d78c98042 "
            "a41b5aeb4627 aa428eccce01 c1e2b58b12e9 d0973d77ecce e3b86bf209f7")),
    "cv-learning-rate": Exercise(
        "07-gradient-descent", "number",
        "the CV score is minus the held-out MSE: look for the largest one over both sweeps, not the lowest final loss.",
        key=(
            "3451877de708 36aebcfae58f 3bbeca2da602 4270c294dc7c 758330637c93 7b140744f88c "
            "884589be2266 8ac5e74e8024 956b50166ba7 a5e98190d1c2")),
    "second-layer-weight": Exercise(
        "08-backpropagation", "number",
        "one path only: dL/dyhat, the output weight, ReLU' of the layer-2 neuron and the activation feeding the weight.",
        key=(
            "01f4f4597b72 0c82a6e62020 1017bcdfb3d3 445b8f59fc88 49cdae574942 5895a7b9880f "
            "75b0487889a8 a33003f2aaf1 bf02542b47e0 cfc108f4ed1f")),
    "dead-relu": Exercise(
        "08-backpropagation", "number",
        "change the bias in a copy of biases, then call backprop with the copy.",
        key=(
            "0b0fbe250e57 147d0c7f1a3f 2217a7db924f 2336eb1c2917 2d8a3671261e 48d91f8e52bb "
            "d6103ed49116 d709debb539d"), digits=8),
    "overfit-more-data": Exercise(
        "09-training-in-practice", "number",
        "seed 2024 just before building the network; batch_size=120 and eval_data=(XR_val_t, YR_val_t); take the minimum of eval_losses.",
        key=(
            "6b48a5cdc033 7aae71bf6be0 e1d9f95704f4"), digits=3),
    "sklearn-patience": Exercise(
        "09-training-in-practice", "whole",
        "early_stopping=True and n_iter_no_change=50; read n_iter_ of the fitted MLP.",
        key=(
            "b2ce7728fe61")),
    "torch-patience": Exercise(
        "09-training-in-practice", "whole",
        "training stops only after 30 epochs in a row without a new lowest validation loss: find when the curve first drops below its early low, and what it does after.",
        key=(
            "788bfcf67255")),
    "nesterov-steps": Exercise(
        "09-training-in-practice", "number",
        "each step: first v <- mu v - lr g, then theta changes by mu v - lr g; add the three changes, keeping the sign.",
        key=(
            "0d92c93560b0 239b5c99f294 3e7d2c73466c 4965cc1bf138 5ab495bcf4aa 63789ee1c83f "
            "66fa7cfb037c 95ece8b94c23 b22d76d8d3fd d42321b407fc")),
    "adam-from-scratch": Exercise(
        "09-training-in-practice", "number",
        "apply the bias corrections 1 - beta^t with t counting steps from 1; the output bias is the last entry of the biases.",
        key=(
            "157fa196c1be 5910cbf6ce1a 6b09bafa19ea f2b8086e7d78 f2c8a009b2c2"), digits=5),
    "torch-default-init": Exercise(
        "09-training-in-practice", "number",
        "build all ten nn.Linear layers right after the seed, keep their default biases, use ReLU in backprop; then divide layer 2's norm by layer 9's.",
        key=(
            "26d47e5737fd 47c82de37511 4a183c4542c2 5d75f3904d01 932aa39c95b7"), digits=5),
    "identity-interval": Exercise(
        "09-training-in-practice", "number",
        "nh.wilson_interval(successes, n) with the number correct and the number of test points.",
        key=(
            "13d43bb1b450 15343df2bdda 1b10f76bd731 1f5458bb708a 384177584d12 5924b132e692 "
            "601d447b0d03 cabb385c456f"), size=2, digits=4),
    "sigmoid-saturates": Exercise(
        "09-training-in-practice", "whole",
        "loop over z = 0, 1, 2, ... and compare torch.sigmoid(torch.tensor(float(z))) with 1.0 (32-bit).",
        key=(
            "01f2903f65ef")),
    "clipped-gradient": Exercise(
        "09-training-in-practice", "near",
        "use z = torch.tensor([40.0], requires_grad=True), the BCELoss version, backward(), then z.grad.",
        key=(
            "2750994f4ca5 48ee1386de5e 4a160acba0d2 5286a21c82af 6013ea000b9c 690a56198ca4 "
            "747b1ea7a58f 7cdaf19e7657 7d0f6f938bcb 8a7ed21b90e5 8e8ceaeec6cd 8f1b3d19bf38 "
            "983f8e0bcb04 98ebb4b0f477 9fa5970bf605 a2548b98b22c ccf8b7ee1c0f cf6e0bedc6b3 "
            "d7e60d1f1ebb ee0a4cf83bf6 ffd672e13745"), atol=1e-09),
    "digits-learning-rate": Exercise(
        "10-real-data", "number",
        "clone(best_mlp).set_params(mlp__learning_rate_init=0.001), cross_val_score with cv=folds, then the mean of the five scores.",
        key=(
            "3bf4fbcf9ee6 4057a123eadb 4ba4747d1e7d 599d9772fee4 ae321ec48a42 bab9e96c5b27"), digits=6, fraction=True),
    "digits-winners-curse": Exercise(
        "10-real-data", "number",
        "search.best_score_ minus the mean of the MLP column of seed_table; the answer is positive and small.",
        key=(
            "2031b2871f16 ba1016e92ebc bd05a1b0ea36 bebb78978410 dab9b6c4c2ac f14759d58d44"), sig=2, digits=6),
    "digits-peek-at-c": Exercise(
        "10-real-data", "number",
        "fit the C = 1 pipeline on the training set, mark which test images it gets right, and pass mlp_right and that array to nh.mcnemar_test.",
        key=(
            "044ef8820970 52cf0e664d8f 80e8e7eee7b3 84a7773fec43 92b70e8b5415 b389e45bbe66 "
            "b6693f72bca4"), digits=6),
    "digits-no-decay": Exercise(
        "10-real-data", "number",
        "seed 2024 right before building the network, plain Adam without weight_decay, patience=20; the minimum of eval_losses.",
        key=(
            "7ed5550baa89 be1280528419 c2ec608babf3 f7b01c38b1c7"), sig=4, digits=4),
})
_refresh_index()


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python scripts/nnexercises.py",
        description="Answer key of the exercises. 'encode' prints a key entry for an answer.")
    sub = parser.add_subparsers(dest="command", required=True)
    enc = sub.add_parser("encode", help="print the KEY entry of an exercise's answer")
    enc.add_argument("name")
    enc.add_argument("values", nargs="+", help="the answer: one value, or several numbers")
    enc.add_argument("--form", default="number", choices=["number", "near", "whole", "string"])
    enc.add_argument("--chapter", default="NN-chapter-name")
    enc.add_argument("--hint", default="(the exercise's hint; never the value)")
    enc.add_argument("--sig", type=int, default=3, help="least significant digits accepted")
    enc.add_argument("--digits", type=int, default=10, help="significant digits compared at most")
    enc.add_argument("--fraction", action="store_true", help="a fraction between 0 and 1")
    enc.add_argument("--atol", type=float, default=0.0, help="accepted distance (form near)")
    sub.add_parser("list", help="list the exercises and their rules")
    args = parser.parse_args(argv)
    if args.command == "encode":
        try:
            values = args.values if args.form == "string" else [
                int(v) if re.fullmatch(r"-?\d+", v) else float(v) for v in args.values]
        except ValueError:
            parser.error(f"the values must be numbers (or use --form string): {args.values}")
        try:
            print(_entry_source(args.name, values, args.chapter, args.hint, args.form, args.sig,
                                args.digits, args.fraction, args.atol))
        except ValueError as err:
            parser.error(str(err))
    else:
        for name, ex in KEY.items():
            rule = {"number": f"{ex.size} number(s), >= {ex.sig} significant digits"
                              + (", fraction" if ex.fraction else ""),
                    "near": f"{ex.size} number(s) within {ex.atol:g}",
                    "whole": f"{ex.size} whole number(s)", "string": "a string"}[ex.form]
            print(f"{ex.chapter:28} {name:24} {rule}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
