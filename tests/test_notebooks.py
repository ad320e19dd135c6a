"""Static checks of the stored chapter notebooks (nbval checks their outputs)."""

import json
import re

import pytest

from conftest import APPENDIX_NOTEBOOKS, CHAPTERS, NUMBERED_CHAPTERS, read_notebook

FIGURE_OUTPUT = ("image/png", "image/svg+xml")
MACHINE_PATH = re.compile(r"(/root/|/home/|/tmp/|/Users/|site-packages|[A-Z]:\\\\)")


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def options(cell):
    return dict(re.findall(r"^#\| ([\w-]+): (.*)$", cell.source, flags=re.M))


def makes_figure(cell):
    return any(set(o.get("data", {})) & set(FIGURE_OUTPUT) for o in cell.get("outputs", []))


def test_there_are_ten_chapters_in_reading_order():
    names = [p.name for p in NUMBERED_CHAPTERS]
    assert len(names) == 10
    assert [n[:3] for n in names] == [f"{k:02d}-" for k in range(1, 11)]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
class TestChapter:
    def test_executed_top_to_bottom_in_one_kernel(self, path):
        counts = [c.execution_count for c in code_cells(read_notebook(path))]
        assert counts == list(range(1, len(counts) + 1))

    def test_kernel_is_python3(self, path):
        assert read_notebook(path).metadata.kernelspec.name == "python3"

    def test_starts_with_setup_and_title(self, path):
        nb = read_notebook(path)
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
        assert "nh.setup_notebook()" in code_cells(nb)[0].source

    def test_no_errors_paths_or_raw_warnings_in_outputs(self, path):
        for cell in code_cells(read_notebook(path)):
            for out in cell.outputs:
                assert out.output_type != "error", cell.source[:60]
                text = json.dumps(out)
                assert not MACHINE_PATH.search(text), cell.source[:60]
                assert "warnings.warn" not in text and "Warning:" not in text.replace(
                    "ConvergenceWarning: Stochastic", ""), cell.source[:60]
                if out.output_type == "stream" and out.name == "stderr":
                    assert all(line.startswith("Note (") for line in out.text.splitlines())

    def test_no_stray_reprs_after_plots(self, path):
        for cell in code_cells(read_notebook(path)):
            if makes_figure(cell):
                for out in cell.outputs:
                    if out.output_type == "execute_result":
                        pytest.fail(f"plotting cell ends with a repr: {cell.source[:60]}")

    def test_every_figure_has_label_caption_and_alt_text(self, path):
        for cell in code_cells(read_notebook(path)):
            if makes_figure(cell):
                opts = options(cell)
                assert opts.get("label", "").startswith("fig-"), cell.source[:60]
                assert len(opts.get("fig-cap", "")) > 20, opts.get("label")
                assert len(opts.get("fig-alt", "")) > 60, opts.get("label")

    def test_every_code_cell_is_introduced(self, path):
        """A code cell follows prose, unless it draws a figure (its caption introduces it)."""
        nb = read_notebook(path)
        for prev, cell in zip(nb.cells, nb.cells[1:]):
            if cell.cell_type == "code" and prev.cell_type == "code":
                assert makes_figure(cell), cell.source[:60]

    def test_exercises_have_student_cell_solution_and_correct_check(self, path):
        nb = read_notebook(path)
        cells = nb.cells
        starts = [k for k, c in enumerate(cells) if c.cell_type == "markdown"
                  and c.source.startswith("::: {#exr-")]
        assert starts or path in APPENDIX_NOTEBOOKS, "every numbered chapter has exercises"
        for k in starts:
            name = re.match(r"::: \{#exr-([\w-]+)\}", cells[k].source).group(1)
            assert cells[k].source.rstrip().endswith(":::")
            student, open_div, solution = cells[k + 1], cells[k + 2], cells[k + 3]
            assert student.cell_type == "code" and "= ..." in student.source
            assert open_div.source.startswith('::: {.content-visible when-profile="solutions"}')
            assert "solution" in solution.metadata.get("tags", [])
            close = next(j for j in range(k + 3, len(cells))
                         if cells[j].cell_type == "markdown" and cells[j].source.rstrip().endswith(":::"))
            check = cells[close + 1]
            assert check.source.strip() == f'nh.check("{name}", answer)'
            printed = "".join(o.get("text", "") for o in check.outputs)
            assert printed == f"[{name}] Correct!\n"
