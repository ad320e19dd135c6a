"""Unit tests of ``nh.to_page`` and ``nh.page_data``: Python values handed to the web page.

``to_page`` displays a ``<script type="ojs-define">`` output that Quarto turns
into OJS variables; ``page_data`` reads those values back from a stored
notebook. The chapters' stored explorer data must stay under the size limit.
"""

import json
import re

import IPython.display
import nbformat
import numpy as np
import pandas as pd
import pytest

import nnhelpers as nh
from conftest import CHAPTERS


@pytest.fixture
def shown(monkeypatch):
    """Capture what ``to_page`` displays, as ``(data, metadata)`` pairs."""
    calls = []

    def fake_display(data, raw=False, metadata=None):
        assert raw, "to_page must display a raw MIME bundle"
        calls.append((data, metadata))

    monkeypatch.setattr(IPython.display, "display", fake_display)
    return calls


def _payload(html):
    assert html.startswith('<script type="ojs-define">') and html.endswith("</script>")
    return json.loads(html[len('<script type="ojs-define">'):-len("</script>")])


def _notebook_with(outputs):
    """A one-cell notebook whose code cell holds the captured displays as outputs."""
    cell = nbformat.v4.new_code_cell("nh.to_page(...)", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("display_data", data=data, metadata=metadata)
                    for data, metadata in outputs]
    return nbformat.v4.new_notebook(cells=[cell])


def test_to_page_emits_quartos_ojs_define_format(shown):
    nh.to_page(rates=[0.1, 0.5], label="plain SGD")
    (data, metadata), = shown
    assert metadata == {"ojs_define": True}
    assert _payload(data["text/html"]) == {"contents": [
        {"name": "rates", "value": [0.1, 0.5]}, {"name": "label", "value": "plain SGD"}]}
    assert data["text/plain"].startswith("Data for the interactive figure on this chapter's web page: rates, label (")


def test_to_page_rounds_floats_to_the_significant_digits_asked(shown):
    nh.to_page(x=np.array([[0.123456, 1234.5678], [-2.5e-7, 3.0]]), n=np.int64(7), flag=np.bool_(True))
    nh.to_page(significant=12, x=np.pi)
    first, second = (_payload(data["text/html"])["contents"] for data, _ in shown)
    assert first == [{"name": "x", "value": [[0.1235, 1235.0], [-2.5e-07, 3.0]]},
                     {"name": "n", "value": 7}, {"name": "flag", "value": True}]
    assert second[0]["value"] == 3.14159265359


def test_to_page_sends_frames_as_column_lists_and_keeps_nesting(shown):
    frame = pd.DataFrame({"alpha": [1e-5, 10.0], "test R²": [0.91644, 0.85381]})
    nh.to_page(table=frame, series=pd.Series([1.23456], name="s"),
               runs={"a": {"path": (1, 2.0)}, "b": None})
    (data, _), = shown
    values = {c["name"]: c["value"] for c in _payload(data["text/html"])["contents"]}
    assert values["table"] == {"alpha": [1e-05, 10.0], "test R²": [0.9164, 0.8538]}
    assert values["series"] == [1.235]
    assert values["runs"] == {"a": {"path": [1, 2.0]}, "b": None}


def test_page_data_reads_back_what_to_page_sent(shown):
    path = np.cumsum(np.full((41, 2), 0.1), axis=0)
    nh.to_page(significant=15, path=path)
    nh.to_page(note="</script> inside a string is harmless")
    values = nh.page_data(_notebook_with(shown))
    assert values["path"] == [[float(f"{v:.15g}") for v in row] for row in path]
    assert np.allclose(values["path"], path, rtol=1e-14, atol=0)
    assert values["note"] == "</script> inside a string is harmless"
    assert "</script>" not in shown[1][0]["text/html"][:-len("</script>")]


@pytest.mark.parametrize("call, problem", [
    (lambda: nh.to_page(**{"2curves": [1]}), "cannot name a JavaScript variable"),
    (lambda: nh.to_page(**{"loss-curve": [1]}), "cannot name a JavaScript variable"),
    (lambda: nh.to_page(), "at least one value"),
    (lambda: nh.to_page(significant=0, x=1.0), "significant must be"),
    (lambda: nh.to_page(significant=2.5, x=1.0), "significant must be"),
    (lambda: nh.to_page(x=[1.0, float("nan")]), "JSON cannot carry"),
    (lambda: nh.to_page(x=np.full(100_000, 1 / 3)), "more than a chapter may send"),
])
def test_to_page_refuses_bad_input_with_a_clear_message(shown, call, problem):
    with pytest.raises(ValueError, match=problem):
        call()
    assert shown == []


def test_to_page_refuses_values_json_cannot_carry(shown):
    with pytest.raises(TypeError, match="set, which to_page cannot send"):
        nh.to_page(x={1, 2})
    with pytest.raises(TypeError, match="keys must be strings"):
        nh.to_page(x={1: 2})


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_stored_page_data_of_each_chapter_is_small(notebook):
    outputs = [out for cell in nbformat.read(notebook, as_version=4).cells
               for out in cell.get("outputs", []) if out.get("metadata", {}).get("ojs_define")]
    size = sum(len(out["data"]["text/html"].encode()) for out in outputs)
    assert size < nh.PAGE_DATA_LIMIT, f"{notebook.name} sends {size / 1000:.0f} kB to its page"
    assert len(nh.page_data(notebook)) >= len(outputs)     # every output holds at least one value


INCLUDE = re.compile(r"\{\{< include (_explorers/[\w-]+\.qmd) >\}\}")
OJS_BLOCK = re.compile(r"```\{ojs\}\n(.*?)```", re.S)


def _ojs_data_names(qmd):
    """Snake_case names the OJS code of an explorer uses: the data its chapter must send
    (the explorers' own variables are camelCase)."""
    code = "\n".join(OJS_BLOCK.findall(qmd.read_text()))
    code = re.sub(r"//[^\n]*", "", code)                         # comments
    code = re.sub(r"`[^`]*`|\"[^\"]*\"", "", code)                # strings and templates
    return set(re.findall(r"(?<![.\w])[a-z]+(?:_[a-z0-9]+)+\b", code))      # not fields (fit.loss_curve)


def test_each_explorer_is_included_once_and_gets_the_data_its_code_uses():
    included = []
    for notebook in CHAPTERS:
        nb = nbformat.read(notebook, as_version=4)
        includes = [inc for cell in nb.cells if cell.cell_type == "markdown"
                    for inc in INCLUDE.findall(cell.source)]
        assert len(includes) == len(set(includes)), f"{notebook.name} includes an explorer twice"
        sent = nh.page_data(nb)
        for inc in includes:
            needed = _ojs_data_names(notebook.parent / inc)
            assert needed, f"{inc}: no data names found in its OJS code"
            assert needed <= set(sent), f"{notebook.name} does not send {sorted(needed - set(sent))} to {inc}"
        included += includes
    explorers = sorted(f"_explorers/{p.name}" for p in (CHAPTERS[0].parent / "_explorers").glob("*.qmd"))
    assert sorted(included) == explorers
