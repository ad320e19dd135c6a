"""The shipped CSV files are exactly what tooling/nnbook/data.py writes."""

from nnbook import data as make_data


def test_data_files_match_the_generator_byte_for_byte(root):
    for name, frame in make_data.datasets().items():
        shipped = (root / "data" / name).read_bytes()
        assert shipped == make_data.csv_text(frame).encode("utf-8"), f"data/{name} is stale: run make data"


def test_every_data_file_is_documented(root):
    readme = (root / "data" / "README.md").read_text()
    files = sorted(p.name for p in (root / "data").glob("*.csv"))
    assert files == sorted(make_data.datasets())
    for name in files:
        assert f"`{name}`" in readme


def test_make_data_writes_into_a_given_folder(tmp_path, capsys):
    make_data.main(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(make_data.datasets())
    assert "1000 rows" in capsys.readouterr().out
