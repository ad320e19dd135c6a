"""The pinned environment: requirements.txt and environment.yml agree, pins are exact."""

import re
import shlex

import yaml

REQUIRED = {"torch": "2.13.0", "numpy": "2.4.6", "pandas": "3.1.1", "scipy": "1.17.1",
            "scikit-learn": "1.9.1", "matplotlib": "3.11.2", "seaborn": "0.13.2",
            "networkx": "3.6.1", "nbval": "0.11.0"}


def requirements(root):
    pins = {}
    for line in (root / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"'{line}' is not pinned with =="
            pins[name.lower()] = version
    return pins


def test_required_pins(root):
    pins = requirements(root)
    for name, version in REQUIRED.items():
        assert pins.get(name) == version, name
    for name in ("jupyterlab", "ipykernel", "pytest", "pytest-xdist"):
        assert re.fullmatch(r"\d+(\.\d+)+", pins[name]), name


def test_environment_yml_agrees_with_requirements(root):
    env = yaml.safe_load((root / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pins = dict(line.split("==") for line in pip if "==" in line)
    assert {k.lower(): v for k, v in pins.items()} == requirements(root)
    assert "-e ." in pip


def test_installed_versions_are_the_pinned_ones(root):
    from importlib.metadata import version

    for name, pinned in requirements(root).items():
        assert version(name).split("+")[0] == pinned, name


def test_quarto_is_not_a_test_dependency(root):
    assert "quarto" not in (root / "requirements.txt").read_text()
    assert "quarto-cli" in (root / "requirements-site.txt").read_text()


def ci_commands(script: str) -> list[list[str]]:
    """The command lines a shell script runs, as words (comments and blank lines dropped)."""
    commands = []
    for line in script.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands.append(words)
    return commands


def test_ci_runs_make_test_then_the_site_tests_and_stops_at_a_failure(root):
    commands = ci_commands((root / ".ci" / "run").read_text())
    assert ["set", "-euo", "pipefail"] in commands                 # a failing step fails CI
    runs = [words for words in commands if words[0] == "make"]
    assert runs == [["make", "test"], ["make", "test-site"]]
    usage = (root / "README.md").read_text().split("```bash\n", 1)[1].split("```", 1)[0]
    assert ["make", "test"] in ci_commands(usage)                  # the README's own command


def test_ci_commands_are_read_from_command_lines_not_comments():
    script = "# runs make test\necho 'make test'  # make test\nmake test-site\n"
    assert [w for w in ci_commands(script) if w[0] == "make"] == [["make", "test-site"]]


def test_test_processes_validate_notebooks_without_rfc3987_syntax():
    """The test-run plugin keeps jsonschema from importing rfc3987-syntax in the test processes;
    nbformat's validation, which uses no format checks, still rejects a broken notebook."""
    import sys

    import nbformat
    import pytest

    assert "rfc3987_syntax" in sys.modules and sys.modules["rfc3987_syntax"] is None
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nbformat.validate(nb)
    nb.cells[0]["cell_type"] = "spreadsheet"
    with pytest.raises(nbformat.ValidationError):
        nbformat.validate(nb)
