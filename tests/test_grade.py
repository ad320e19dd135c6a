"""The grader: a planted class of good, wrong, partial, cheating and broken submissions.

One class is graded once (module fixture, three notebooks at a time: the kernels spend
much of their short lives waiting) and each test looks at one student's results. The
planted notebooks are chapters 1 and 8, the two fastest; the time limit is short so
that the infinite loop costs little.
"""

import csv
import hashlib
import json
import tempfile

import nbformat
import numpy as np
import pytest

import nnexercises
from nnbook import cells, grade
import planted

CH1, CH8 = "01-neurons-and-networks", "08-backpropagation"
EX1, EX8 = grade.chapter_exercises(CH1), grade.chapter_exercises(CH8)
# chapters 1 and 8 run in about 1 s here (warm kernels); the margin is for a busy machine (the
# test run's other workers), and the runaway notebook's wait overlaps the others' grading
TIMEOUT = 10
CELL_TIMEOUT = 6         # abel's endless loop stops here, before the notebook's limit
MAX_OUTPUT_MB = 5
ORPHAN = ["sleep", "313.25"]         # a process a kernel starts before it dies

# one worker runs the whole module (its fixture grades or builds once)
pytestmark = pytest.mark.xdist_group("grade")


def _insert_after_check(nb, name, source):
    """Insert a code cell right after exercise ``name``'s check cell."""
    k = next(i for i, c in enumerate(nb.cells)
             if c.metadata.get(cells.MARK) == {"exercise": name, "role": "check"})
    nb.cells.insert(k + 1, nbformat.v4.new_code_cell(source))
    return nb


def _cell(nb, name, role):
    return next(c for c in nb.cells if c.metadata.get(cells.MARK) == {"exercise": name, "role": role})


def _plant(folder):
    """Write the planted class; return {student: what it tests}."""
    solved1, solved8 = planted.solved_copy(CH1), planted.solved_copy(CH8)
    w = planted.write
    # good, in both layouts
    w(solved1, folder / "alice" / f"{CH1}.ipynb")
    w(solved8, folder / "alice" / f"{CH8}.ipynb")
    # anna: file-name layout, many MB of stored outputs, writes files and changes folder,
    # finds the seeded result cache and writes into it
    anna = _insert_after_check(planted.solved_copy(CH8), EX8[0],
                               "import os\nopen('junk.txt', 'w').write('x')\nos.makedirs('sub')\n"
                               "os.chdir('sub')\nopen('../../grade-was-here.txt', 'w').write('x')\n"
                               "cache = os.environ['NNBOOK_CACHE_DIR']\n"
                               "assert os.listdir(cache) == ['seed.txt']\n"
                               "mounts = [ln.split()[4] for ln in open('/proc/self/mountinfo')]\n"
                               "assert cache in mounts, 'the cache copy is no private mount'\n"
                               "open(os.path.join(cache, 'poison.pkl'), 'w').write('x')")
    anna.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout",
                                                    text="y" * 30_000_000)]
    w(anna, folder / f"anna_{CH8}.ipynb")
    # wrong answers
    wrong = planted.student_copy(CH1)
    for name in EX1:
        planted.set_answer(wrong, name, "answer = -987.654")
    w(wrong, folder / f"bob_{CH1}.ipynb")
    # partial: the first two answered
    partial = planted.student_copy(CH1)
    for name in EX1[:2]:
        planted.set_answer(partial, name, planted.solutions(CH1)[name])
    w(partial, folder / "carol" / f"{CH1}.ipynb")
    # a cheat: wrong answers, check cells that print "Correct!", nh.check redefined,
    # and the printing diverted
    cheat = planted.student_copy(CH1)
    for name in EX1:
        planted.set_answer(cheat, name, "answer = 1")
        _cell(cheat, name, "check").source = f'print("[{name}] Correct!")'
    cheat.cells.insert(1, nbformat.v4.new_code_cell(
        "import nnhelpers as nh\nnh.check = lambda name, answer: print(f'[{name}] Correct!')\n"
        "import io, sys\nsys.stdout = io.StringIO()"))
    w(cheat, folder / "dave" / f"{CH1}.ipynb")
    # not a notebook: invalid JSON, then JSON that is not a notebook
    (folder / f"erin_{CH1}.ipynb").write_text('{"cells": [ this is not json')
    (folder / "frank").mkdir()
    (folder / "frank" / f"{CH1}.ipynb").write_text('{"answer": 42}')
    # chapter 8's notebook handed in as chapter 1
    w(solved8, folder / "gina" / f"{CH1}.ipynb")
    # exercise cells deleted, duplicated, moved
    moved = planted.solved_copy(CH1)
    a, b, c, d = EX1
    for role in ("answer", "check"):                        # a: both cells deleted
        moved.cells.remove(_cell(moved, a, role))
    moved.cells.remove(_cell(moved, b, "answer"))           # b: the answer cell deleted
    first = _cell(moved, c, "answer")                       # c: answer cell duplicated,
    k = moved.cells.index(first)                            #    the last copy is right
    moved.cells.insert(k, nbformat.from_dict(json.loads(json.dumps(first))))
    moved.cells[k].source, moved.cells[k].id = "answer = 'wrong'", "pasted"
    check = _cell(moved, d, "check")                        # d: check cell moved above
    moved.cells.remove(check)
    moved.cells.insert(moved.cells.index(_cell(moved, d, "answer")) - 1, check)
    w(moved, folder / "hank" / f"{CH1}.ipynb")
    # the cells of one exercise moved to the end, and no marks at all (an old copy)
    unmarked = planted.solved_copy(CH1)
    for cell in unmarked.cells:
        cell.metadata.pop(cells.MARK, None)
    w(unmarked, folder / "pete" / f"{CH1}.ipynb")
    # an exception in a student cell after the second exercise
    failing = _insert_after_check(planted.solved_copy(CH1), EX1[1], "x = 1\n1 / 0  # oops")
    w(failing, folder / "ivan" / f"{CH1}.ipynb")
    # an exception in an exercise's own answer cell
    own = planted.set_answer(planted.solved_copy(CH1), EX1[2], "answer = undefined_name")
    w(own, folder / "rita" / f"{CH1}.ipynb")
    # an infinite loop after the first exercise of chapter 8; the name sorts first, so this
    # notebook is graded first and its wait for the time limit overlaps the others' grading
    w(_insert_after_check(planted.solved_copy(CH8), EX8[0], "import time\nwhile True:\n    time.sleep(0.05)"),
      folder / "abel" / f"{CH8}.ipynb")
    # the kernel dies
    w(_insert_after_check(planted.solved_copy(CH8), EX8[0],
                          f"import os, signal, subprocess\nsubprocess.Popen({ORPHAN!r})\n"
                          "os.kill(os.getpid(), signal.SIGKILL)"),
      folder / "kate" / f"{CH8}.ipynb")
    # too much memory: the kernel's limit turns it into a MemoryError
    w(_insert_after_check(planted.solved_copy(CH8), EX8[0], "hog = bytearray(64 * 2**30)"),
      folder / "karl" / f"{CH8}.ipynb")
    # many megabytes of output while grading
    w(_insert_after_check(planted.solved_copy(CH8), EX8[0], "print('x' * 8_000_000)"),
      folder / "liam" / f"{CH8}.ipynb")
    # a file whose name names no chapter, and a checkpoint copy to ignore
    w(solved1, folder / "olga" / "my-homework.ipynb")
    w(solved1, folder / "alice" / ".ipynb_checkpoints" / f"{CH1}-checkpoint.ipynb")


def _digests(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("class")
    folder, out, scratch = base / "submissions", base / "grades", base / "tmp"
    folder.mkdir()
    scratch.mkdir()
    _plant(folder)
    before = _digests(folder)
    seed = base / "cache"
    seed.mkdir()
    (seed / "seed.txt").write_text("a cached fit")
    saved, tempfile.tempdir = tempfile.tempdir, str(scratch)   # the kernels' folders go here
    try:
        report = grade.grade_class(folder, out, jobs=3, timeout=TIMEOUT, cache=str(seed),
                                   max_output_mb=MAX_OUTPUT_MB, echo=lambda *a: None,
                                   cell_timeout=CELL_TIMEOUT)
    finally:
        tempfile.tempdir = saved
    return {"report": report, "out": out, "folder": folder, "scratch": scratch, "seed": seed,
            "before": before, "after": _digests(folder)}


def _result(graded, student, chapter=CH1):
    return next(r for r in graded["report"]["results"]
                if r["student"] == student and r["chapter"] == chapter)


def _statuses(graded, student, chapter=CH1):
    res = _result(graded, student, chapter)
    return [res["exercises"][n]["status"] for n in grade.chapter_exercises(chapter)]


def test_submitted_files_are_never_modified(graded):
    assert graded["after"] == graded["before"]


def test_kernels_ran_in_temporary_folders_that_are_gone(graded):
    assert list(graded["scratch"].iterdir()) == []


def test_good_submissions_in_both_layouts(graded):
    assert _statuses(graded, "alice") == ["correct"] * len(EX1)
    assert _statuses(graded, "alice", CH8) == ["correct"] * len(EX8)
    assert _statuses(graded, "anna", CH8) == ["correct"] * len(EX8)
    assert not _result(graded, "alice")["problem"]


def test_wrong_answers_get_the_hint(graded):
    res = _result(graded, "bob")
    assert _statuses(graded, "bob") == ["not quite"] * len(EX1)
    assert all(res["exercises"][n]["hint"] for n in EX1)


def test_partial_submission(graded):
    assert _statuses(graded, "carol") == ["correct"] * 2 + ["not answered"] * (len(EX1) - 2)


def test_printed_verdicts_and_a_redefined_check_earn_nothing(graded):
    assert _statuses(graded, "dave") == ["not quite"] * len(EX1)


@pytest.mark.parametrize("student, words", [("erin", "not valid JSON"),
                                            ("frank", "not a notebook")])
def test_not_a_notebook(graded, student, words):
    res = _result(graded, student)
    assert words in res["problem"]
    assert _statuses(graded, student) == ["not checked"] * len(EX1)


def test_another_chapter_under_this_name(graded):
    res = _result(graded, "gina")
    assert CH8 in res["problem"] and "under its own name" in res["problem"]
    assert _statuses(graded, "gina") == ["not checked"] * len(EX1)


def test_deleted_duplicated_and_moved_cells(graded):
    res = _result(graded, "hank")["exercises"]
    a, b, c, d = EX1
    assert res[a]["status"] == "not checked" and "deleted" in res[a]["why"]
    assert res[b]["status"] == "not checked" and "answer cell" in res[b]["why"]
    assert res[c]["status"] == "correct" and "last one counts" in res[c]["note"]
    assert res[d]["status"] == "correct" and "no check cell below" in res[d]["note"]


def test_notebook_without_marks_is_found_by_its_check_calls(graded):
    assert _statuses(graded, "pete") == ["correct"] * len(EX1)


def test_exception_keeps_earlier_exercises_and_names_the_cell(graded):
    res = _result(graded, "ivan")
    assert _statuses(graded, "ivan") == ["correct"] * 2 + ["not checked"] * (len(EX1) - 2)
    assert "ZeroDivisionError" in res["problem"] and "line 2 (`1 / 0  # oops`)" in res["problem"]
    assert "above this exercise" in res["exercises"][EX1[2]]["why"]


def test_an_error_in_an_answer_cell_names_that_exercise_not_above_it(graded):
    res = _result(graded, "rita")
    assert "NameError" in res["problem"] and "the answer cell of exercise 1.3" in res["problem"]
    own = res["exercises"][EX1[2]]
    assert own["status"] == "not checked" and "above" not in own["why"]
    assert own["why"].startswith("its answer cell raised NameError")
    assert "above this exercise" in res["exercises"][EX1[3]]["why"]


def test_an_endless_loop_stops_at_the_per_cell_limit(graded):
    res = _result(graded, "abel", CH8)
    assert f"time limit of {CELL_TIMEOUT} s per cell" in res["problem"]
    assert "while True:" not in res["problem"] or "code cell" in res["problem"]


def test_the_values_read_are_recorded(graded):
    res = _result(graded, "bob")
    assert all(res["exercises"][n]["value"] == -987.654 for n in EX1)
    saved = json.loads((graded["out"] / "results.json").read_text())
    assert any(r["student"] == "bob" and r["exercises"][EX1[0]]["value"] == -987.654
               for r in saved["results"])
    assert "your answer: `-987.654`" in (graded["out"] / "feedback" / "bob.md").read_text()


@pytest.mark.parametrize("student, words", [("abel", "time limit"),
                                            ("kate", "kernel died"),
                                            ("karl", "MemoryError"),
                                            ("liam", f"more than {MAX_OUTPUT_MB} MB")])
def test_runaway_notebooks_fail_alone(graded, student, words):
    res = _result(graded, student, CH8)
    assert words in res["problem"]
    assert _statuses(graded, student, CH8) == ["correct", "not checked"]


def test_no_process_outlives_its_kernel(graded):
    import psutil

    assert not [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ORPHAN]


def test_stored_outputs_file_writes_and_a_changed_folder_do_no_harm(graded):
    assert _statuses(graded, "anna", CH8) == ["correct"] * len(EX8)
    assert not _result(graded, "anna", CH8)["problem"]


def test_each_kernel_gets_a_private_copy_of_the_result_cache(graded):
    """anna's kernel found the seeded cache and wrote into it; no other kernel sees that."""
    assert sorted(p.name for p in graded["seed"].iterdir()) == ["seed.txt"]


def test_gradebook(graded):
    with open(graded["out"] / "gradebook.csv") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"alice", "anna", "bob", "carol", "dave", "erin", "frank", "gina",
                         "hank", "pete", "ivan", "abel", "kate", "karl", "liam", "olga", "rita"}
    alice = rows["alice"]
    columns = [grade.column_name(n, graded["report"]["titles"]) for n in EX1 + EX8]
    assert columns[0] == f"1.1 {EX1[0]}" and columns[-1] == f"8.{len(EX8)} {EX8[-1]}"
    assert [alice[c] for c in columns] == ["1"] * (len(EX1) + len(EX8))
    assert alice["chapter 1 total"] == str(len(EX1))
    assert alice["total"] == str(len(EX1) + len(EX8))
    assert alice["out of"] == str(len(nnexercises.EXERCISES))
    assert rows["anna"][columns[0]] == ""                  # chapter 1 not handed in:
    assert rows["anna"]["chapter 1 total"] == ""           # blank, not 0
    assert rows["anna"]["chapter 8 total"] == str(len(EX8))
    assert rows["carol"]["total"] == "2"
    assert "ZeroDivisionError" in rows["ivan"]["problems"]
    assert "names no chapter" in rows["olga"]["problems"]
    assert rows["alice"]["problems"] == ""                 # the checkpoint copy is ignored


def test_feedback_file_per_student(graded):
    text = (graded["out"] / "feedback" / "bob.md").read_text()
    assert "- Exercise 1.1: " in text and f"(`{EX1[0]}`): not quite; your answer: " in text
    assert ". Hint: " in text
    assert f"## {CH8}" in text and "Not handed in." in text
    hank = (graded["out"] / "feedback" / "hank.md").read_text()
    assert "could not be checked: its answer and check cells were deleted" in hank
    ivan = (graded["out"] / "feedback" / "ivan.md").read_text()
    assert "**Problem:**" in ivan and "ZeroDivisionError" in ivan
    frank = (graded["out"] / "feedback" / "frank.md").read_text()
    assert frank.count("not a notebook") == 1               # said once, not per exercise
    assert f"None of its {len(EX1)} exercises could be checked." in frank


def test_summary_lists_rates_and_failures(graded):
    text = grade.summary(graded["report"], graded["out"])
    assert "Graded " in text and "17 students" in text
    assert f"{EX1[0]}" in text and "%" in text
    abel = next(line for line in text.splitlines() if "abel 08-backpropagation: " in line)
    assert "time limit" in abel


# ---------------------------------------------------------------- without a kernel

@pytest.mark.parametrize("name, expected", [
    (f"{CH1}.ipynb", ("", CH1)),
    (f"alice_{CH1}.ipynb", ("alice", CH1)),
    (f"al_ice-{CH8}.ipynb", ("al_ice", CH8)),
    ("bob_08.ipynb", ("bob", CH8)),
    ("bob-ch01-neurons.ipynb", ("bob", CH1)),
    ("notes.ipynb", None),
])
def test_file_names(name, expected):
    assert grade.match_chapter(name, grade.known_chapters()) == expected


def test_duplicate_files_grade_the_newer(tmp_path):
    nb = planted.student_copy(CH1)
    old = planted.write(nb, tmp_path / "s" / "alice" / f"{CH1}.ipynb")
    new = planted.write(nb, tmp_path / "s" / f"alice_{CH1}.ipynb")
    import os
    os.utime(old, (1, 1))
    chosen, problems = grade.find_submissions(tmp_path / "s", grade.known_chapters())
    assert chosen == {("alice", CH1): new}
    assert problems[0][0] == "alice" and "graded the newer" in problems[0][2]


def test_the_time_limit_starts_when_the_kernel_is_ready(tmp_path):
    """A kernel that takes 5 s to start (here: a prelude that sleeps, as when the warm server
    is still importing) leaves the notebook its whole 5 s limit (chapter 8 needs 0.4 s of
    CPU: the margin is for a busy machine, where `make test` runs this at low priority)."""
    path = planted.write(planted.solved_copy(CH8), tmp_path / f"alice_{CH8}.ipynb")
    res = grade.grade_notebook(str(path), "alice", CH8, timeout=5,
                               prelude="import time\ntime.sleep(5)")
    assert not res["problem"], res["problem"]
    assert [res["exercises"][n]["status"] for n in EX8] == ["correct"] * len(EX8)


def test_command_line_on_a_class_without_a_runnable_notebook(tmp_path, capsys):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / f"erin_{CH8}.ipynb").write_text("not json")
    assert grade.main([str(tmp_path / "s"), "--out", str(tmp_path / "g")]) == 0
    assert (tmp_path / "g" / "gradebook.csv").read_text().splitlines()[1].startswith("erin,")
    assert (tmp_path / "g" / "feedback" / "erin.md").exists()
    printed = capsys.readouterr().out
    assert "Submissions with problems: 1" in printed
    assert "1 notebook of 1 student," in printed and "1 notebook of 1 student in" in printed


def test_an_assignment_of_some_chapters(tmp_path, capsys):
    """--chapters 08: only chapter 8 counts (columns, "out of", feedback); a chapter 1 file is
    reported, not graded."""
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / f"erin_{CH8}.ipynb").write_text("not json")
    (tmp_path / "s" / f"erin_{CH1}.ipynb").write_text("not json either")
    assert grade.main([str(tmp_path / "s"), "--out", str(tmp_path / "g"), "--chapters", "8"]) == 0
    with open(tmp_path / "g" / "gradebook.csv") as f:
        rows = list(csv.DictReader(f))
    assert [k for k in rows[0] if k[0].isdigit()] == [f"8.{k + 1} {n}" for k, n in enumerate(EX8)]
    assert rows[0]["out of"] == str(len(EX8)) and "chapter 1 total" not in rows[0]
    assert "not part of this assignment" in rows[0]["problems"]
    feedback = (tmp_path / "g" / "feedback" / "erin.md").read_text()
    assert f"## {CH1}" not in feedback and f"## {CH8}" in feedback
    with pytest.raises(SystemExit, match="choose among 01"):
        grade.main([str(tmp_path / "s"), "--out", str(tmp_path / "g"), "--chapters", "3x"])


def test_grades_go_outside_the_submissions(tmp_path):
    with pytest.raises(SystemExit, match="outside the submissions"):
        grade.grade_class(tmp_path, tmp_path / "grades")


def _through_the_dump(value):
    """What the grader reads of ``value`` after the dump code ran in a namespace."""
    import contextlib
    import io

    token, printed = "@@t@@", io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(grade.dump_code(token), {"answer": value})
    return grade.read_dump(printed.getvalue(), token)


@pytest.mark.parametrize("value", [..., None, 3, 3.25, np.float64(0.5), np.int64(7), True, "tanh",
                                   (1, 2), [0.1, 0.2, 0.3], np.array([[0.1, 0.2, 0.3]]),
                                   np.array([0.46]), float("nan")],
                         ids=repr)
def test_answers_travel_as_plain_data_without_changing_a_verdict(value):
    plain = _through_the_dump(value)
    json.dumps(plain)
    for name in nnexercises.EXERCISES:
        direct = nnexercises.verdict(name, value)
        read = grade.judge(name, plain)
        assert (read.status, read.hint) == (direct.status, direct.hint), name


def test_torch_answers_are_plain_too():
    torch = pytest.importorskip("torch")
    assert _through_the_dump(torch.tensor([1.5, 2.0])) == [1.5, 2.0]
    assert _through_the_dump(torch.tensor(0.25)) == 0.25


def test_odd_answers():
    assert grade.judge(EX1[0], _through_the_dump({"a": 1})).status == "not quite"
    assert grade.judge(EX1[0], _through_the_dump(np.zeros(10**6))).status == "not quite"
    assert grade.judge(EX1[0], {"__nnbook__": "undefined"}).status == "not answered"
    assert grade.judge(EX1[0], grade.read_dump("Correct!", "@@t@@")).status == "not checked"


def test_the_dump_binds_no_name():
    namespace = {"answer": 1.5}
    exec(grade.dump_code("@@t@@"), namespace)
    assert set(namespace) == {"answer", "__builtins__"}


def test_marks_need_an_answer_cell_above_the_check():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell('nh.check("a", answer)')])
    with pytest.raises(ValueError, match="answer cell"):
        cells.mark_exercise_cells(nb)
