"""tooling/nnbook/execute.py: isolated kernels, stream merging, change detection."""

import nbformat

from nnbook import execute as ex


def test_kernels_get_private_ipc_sockets():
    a, b = ex.IsolatedKernelManager(), ex.AsyncIsolatedKernelManager()
    assert a.transport == b.transport == "ipc"
    assert a.ip != b.ip and a.ip.endswith("-ipc")


def test_coalesce_streams_merges_consecutive_chunks_only():
    cell = nbformat.v4.new_code_cell("print")
    out = nbformat.v4.new_output
    cell.outputs = [out("stream", name="stdout", text="a "), out("stream", name="stdout", text="b\n"),
                    out("stream", name="stderr", text="c\n"), out("stream", name="stdout", text="d\n")]
    nb = ex.coalesce_streams(nbformat.v4.new_notebook(cells=[cell]))
    assert [(o.name, o.text) for o in nb.cells[0].outputs] == [
        ("stdout", "a b\n"), ("stderr", "c\n"), ("stdout", "d\n")]


def _nb(text, count=1):
    cell = nbformat.v4.new_code_cell("x", execution_count=count)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    return nbformat.v4.new_notebook(cells=[cell])


def test_differences_ignore_durations_but_not_numbers():
    assert ex.differences(_nb("Training took 1.2 s\n"), _nb("Training took 9.9 s\n")) == []
    assert ex.differences(_nb("loss 0.1\n"), _nb("loss 0.2\n")) == ["cell 0: outputs differ"]
    assert ex.differences(_nb("same"), _nb("same", count=2)) == ["cell 0: outputs differ"]


def test_execute_runs_a_notebook_in_its_folder(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os\nprint(os.path.basename(os.getcwd()))\nprint('x', end='')\nprint('y')")])
    path = tmp_path / "here" / "n.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    done = ex.execute(path)
    assert [o.text for o in done.cells[0].outputs] == ["here\nxy\n"]
    assert "execution" not in done.cells[0].metadata     # no timing metadata is recorded


def test_run_one_rewrites_the_notebook_whole_and_check_writes_nothing(tmp_path):
    path = tmp_path / "n.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")]), path)
    before = path.read_bytes()
    assert ex.run_one(str(path), check=True)[1] == ["cell 0: outputs differ"]
    assert path.read_bytes() == before
    assert ex.run_one(str(path), check=False)[1] == ["cell 0: outputs differ"]
    assert nbformat.read(path, as_version=4).cells[0].outputs[0].text == "42\n"
    assert [p.name for p in tmp_path.iterdir()] == ["n.ipynb"]         # no temporary file left
