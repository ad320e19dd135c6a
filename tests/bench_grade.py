"""Benchmark: grading a class of generated submissions, as `make grade` does.

    python tests/bench_grade.py                  # 30 students x every chapter with exercises
    python tests/bench_grade.py --students 4     # a quick sample
    python tests/bench_grade.py --cold           # also without the result cache

The class is made from the student copies: of every 10 students, 6 solved every
exercise (the instructors' solution code in the answer cells), 2 got one answer
per chapter wrong, 1 answered only the first exercise, and 1 has a cell that
raises after the first exercise. Half hand in one folder per student, half
prefixed file names.

The grader gives each kernel a private copy of a result cache (``--cache book``,
its default). Here that cache is built first, as an instructor's ``make test``
would: the instructors' chapters run once into an empty cache ("warm-up"), and
the class is then graded with it. ``--cold`` grades the class a second time with
the cache off. Figures are printed, nothing is asserted; the load average shows
whether the machine was busy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))      # planted.py

from nnbook import cells, grade  # noqa: E402
import planted  # noqa: E402


KINDS = ["solved"] * 6 + ["wrong"] * 2 + ["partial", "broken"]    # of every 10 students


def make_class(folder: Path, n_students: int, chapters: list[str]) -> dict:
    """Write the class; return {(student, chapter): expected statuses}."""
    expected = {}
    for stem in chapters:
        solved, names = planted.solved_copy(stem), grade.chapter_exercises(stem)
        for i in range(n_students):
            student, kind = f"student{i + 1:02d}", KINDS[i % len(KINDS)]
            nb = planted.copy.deepcopy(solved)
            statuses = ["correct"] * len(names)
            if kind == "wrong":
                planted.set_answer(nb, names[i % len(names)], "answer = -987.654")
                statuses[i % len(names)] = "not quite"
            elif kind == "partial":
                for name in names[1:]:
                    planted.set_answer(nb, name, "answer = ...")
                statuses[1:] = ["not answered"] * (len(names) - 1)
            elif kind == "broken":
                check = next(k for k, c in enumerate(nb.cells) if c.metadata.get(cells.MARK) ==
                             {"exercise": names[0], "role": "check"})
                nb.cells.insert(check + 1, planted.nbformat.v4.new_code_cell(
                    "raise RuntimeError('something I tried')"))
                statuses[1:] = ["not checked"] * (len(names) - 1)
            path = (folder / student / f"{stem}.ipynb" if i % 2 == 0
                    else folder / f"{student}_{stem}.ipynb")
            planted.write(nb, path)
            expected[(student, stem)] = statuses
    return expected


def _warm(path: str, cache: str) -> str:
    """Run one chapter into the cache; what went wrong, if anything."""
    os.environ["NNBOOK_CACHE_DIR"] = cache
    from nnbook.execute import execute

    try:
        execute(Path(path))
    except Exception as error:
        return f"{Path(path).stem}: {type(error).__name__} {str(error).strip().splitlines()[-1][:200]}"
    return ""


def warm_cache(chapters: list[str], cache: Path, jobs: int) -> float:
    """Run the instructors' chapters once into ``cache``; the wall time."""
    cache.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with ProcessPoolExecutor(jobs) as pool:
        for problem in pool.map(_warm, [str(planted.chapter_path(c)) for c in chapters],
                                [str(cache)] * len(chapters)):
            if problem:
                print(f"  warm-up failed (that chapter's fits stay uncached): {problem}")
    return time.perf_counter() - start


def grade_run(folder: Path, out: Path, jobs: int, cache, expected: dict, label: str) -> None:
    load = os.getloadavg()[0]
    report = grade.grade_class(folder, out, jobs=jobs, cache=cache, echo=lambda *a: None)
    wrong = [(r["student"], r["chapter"], r["problem"],
              [r["exercises"][n]["status"] for n in grade.chapter_exercises(r["chapter"])])
             for r in report["results"]
             if [r["exercises"][n]["status"] for n in grade.chapter_exercises(r["chapter"])]
             != expected[(r["student"], r["chapter"])]]
    per_chapter = {}
    for r in report["results"]:
        per_chapter.setdefault(r["chapter"], []).append(r["seconds"])
    n = len(report["results"])
    print(f"\n{label}: {n} notebooks of {len(report['students'])} students graded in "
          f"{report['seconds']:.0f} s ({report['seconds'] / 60:.1f} min, {jobs} at a time; "
          f"load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end)")
    print(f"  notebooks graded differently from what was planted: {len(wrong)}")
    for student, chapter, problem, statuses in wrong[:5]:
        print(f"    {student} {chapter}: {statuses} {problem}")
    print("  mean seconds per notebook, by chapter: " + ", ".join(
        f"{c[:2]} {sum(s) / len(s):.0f}" for c, s in sorted(per_chapter.items())))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cold", action="store_true", help="also grade with the cache off")
    parser.add_argument("--chapters", nargs="*", help="chapter numbers, e.g. 03 07 (default: all)")
    args = parser.parse_args(argv)
    chapters = [c for c in grade.known_chapters() if not args.chapters or c[:2] in args.chapters]
    base = Path(tempfile.mkdtemp(prefix="nnbook-bench-grade-"))
    try:
        start = time.perf_counter()
        expected = make_class(base / "submissions", args.students, chapters)
        print(f"Grading benchmark: {args.students} students x {len(chapters)} chapters "
              f"({len(expected)} notebooks), generated in {time.perf_counter() - start:.0f} s; "
              f"{os.cpu_count()} CPUs.")
        seconds = warm_cache(chapters, base / "cache", args.jobs)
        print(f"warm-up (the instructors' chapters run once into an empty result cache): "
              f"{seconds:.0f} s")
        grade_run(base / "submissions", base / "grades-warm", args.jobs, str(base / "cache"),
                  expected, "With the result cache")
        if args.cold:
            grade_run(base / "submissions", base / "grades-cold", args.jobs, "off",
                      expected, "Without the result cache")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
