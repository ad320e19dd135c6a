"""Data for the interactive figures (explorers) of the book's web pages.

A chapter hands values to its page with ``nh.to_page(name=value, ...)`` (``nnhelpers``
re-exports it): the cell's stored output carries them into the rendered page, where
the chapter's OJS code reads them; :func:`page_data` reads them back from a notebook.
Students meet ``to_page`` only as a one-line cell before an interactive figure.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

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
