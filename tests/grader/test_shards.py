"""Class autograding split across machines: ``lessonlib autograde CHAPTER --shard i/N``.

Each shard grades the students whose stable hash falls in it, so a job array (Slurm, Kubernetes)
splits a class without coordination, every shard writing the same PostgreSQL gradebook. Two
shards run here as two concurrent processes against one real PostgreSQL server: every student is
graded exactly once, and running a shard again leaves the gradebook's rows exactly as they were.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout

import psycopg2
import pytest

from lessonlib.grading.batch import parse_shard, shard_of
from lessonlib.grading.cli import main
from lessonlib.grading.course import UsageError

from .conftest import (
    FIXTURES,
    correct_submission,
    limit_args,
    new_database,
    set_answer,
    write_submission,
)
from .exploits.corpus import WRONG_L2

STUDENTS = ["ada", "bert", "emil", "gus"]  # two in each of two shards: one right, one wrong

# The grader's command in a fresh interpreter, with the test chapter 99 registered first.
DRIVER = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("lessonlib.exercises.ch99", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
from lessonlib.grading.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("good, want", [("0/1", (0, 1)), ("3/4", (3, 4)), (" 0/2 ", (0, 2))])
def test_shard_argument(good, want):
    assert parse_shard(good) == want


@pytest.mark.parametrize("bad", ["4/4", "1/0", "0/0", "-1/4", "1", "a/b", "1/2/3", "", "0/100001"])
def test_bad_shard_argument_names_it(bad, ch99, tmp_path):
    with pytest.raises(UsageError, match="--shard must be i/N with 0 <= i < N"):
        parse_shard(bad)
    err = io.StringIO()
    args = ["--course", str(ch99.root), "autograde", "99", "--submissions", str(tmp_path)]
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        code = main([*args, f"--shard={bad}"])
    assert code == 2 and "--shard" in err.getvalue() and repr(bad) in err.getvalue()


def test_shards_partition_the_class_stably():
    names = [f"student{k:03d}" for k in range(400)]
    for n in (1, 2, 3, 8):
        shards = [[s for s in names if shard_of(s, n) == i] for i in range(n)]
        assert sorted(sum(shards, [])) == sorted(names)  # each student in exactly one shard
        assert all(len(s) > 400 / n / 2 for s in shards)  # none nearly empty
    # by the student's own id, not their place in the list: a newcomer moves no one else
    before = {s: shard_of(s, 4) for s in names}
    after = {s: shard_of(s, 4) for s in ["aaa-newcomer", *names]}
    assert all(after[s] == before[s] for s in names)
    assert [shard_of("ada", 4), shard_of("emil", 2)] == [2, 1]  # the same on every machine


def _dump(url: str) -> dict:
    """Every row that grading writes, with its primary keys (so a re-run must reuse them)."""
    con = psycopg2.connect(url)
    try:
        cur = con.cursor()
        out = {}
        for table, cols in {
            "student": "id",
            "submitted_assignment": "id, student_id, assignment_id",
            "submitted_notebook": "id, assignment_id, notebook_id, flagged",
            "grade": "id, notebook_id, cell_id, auto_score, manual_score",
            "comment": "id, notebook_id, cell_id",
        }.items():
            cur.execute(f"SELECT {cols} FROM {table} ORDER BY 1")
            out[table] = cur.fetchall()
        cur.execute(
            "SELECT student_id, COUNT(*) FROM submitted_assignment GROUP BY student_id ORDER BY 1"
        )
        out["per_student"] = cur.fetchall()
        return out
    finally:
        con.close()


def test_two_concurrent_shards_grade_everyone_once(ch99, postgres_url, request, tmp_path):
    db_url = new_database(postgres_url, request.node.nodeid)  # the class's one gradebook
    subs = tmp_path / "submitted"
    shards = {s: shard_of(s, 2) for s in STUDENTS}
    assert set(shards.values()) == {0, 1}, "pick names that fill both shards"
    correct = correct_submission(ch99)
    for k, s in enumerate(STUDENTS):
        nb = correct if k % 2 == 0 else set_answer(correct, "ch99-ex-l2", WRONG_L2)
        write_submission(subs, s, ch99, nb)
    env = {**os.environ, "LESSONLIB_CACHE": str(tmp_path / "cache")}  # shared by both shards

    def shard(i: int) -> subprocess.Popen:
        args = ["--course", str(ch99.root), "autograde", "99", "--submissions", str(subs)]
        args += ["--db", db_url, "--shard", f"{i}/2", "--json", *limit_args()]
        return subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(FIXTURES / "ch99.py"), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    procs = [shard(0), shard(1)]  # at the same time, like two array tasks
    outputs = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    graded = [{r["student"] for r in json.loads(out)} for out, _ in outputs]
    assert graded[0] == {s for s, i in shards.items() if i == 0}
    assert graded[1] == {s for s, i in shards.items() if i == 1}
    assert not graded[0] & graded[1] and graded[0] | graded[1] == set(STUDENTS)

    first = _dump(db_url)
    assert first["per_student"] == [(s, 1) for s in sorted(STUDENTS)]  # everyone exactly once
    cells = len(ch99.test_points)
    assert len(first["grade"]) == len(STUDENTS) * cells
    assert all(g[3] is not None for g in first["grade"])  # every test cell has an auto score
    scores = {}
    for out, _ in outputs:
        for r in json.loads(out):
            scores[r["student"]] = scores.get(r["student"], 0) + r["points"]
    assert {s for s, v in scores.items() if v == sum(ch99.test_points.values())} == set(
        STUDENTS[::2]
    )

    again = shard(0)  # a re-run (a retried array task) changes nothing
    out, err = again.communicate(timeout=900)
    assert again.returncode == 0, err
    assert {r["student"] for r in json.loads(out)} == graded[0]
    assert _dump(db_url) == first
