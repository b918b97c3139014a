"""A broken environment never grades anyone as zero.

In a container or nested namespace where the sandbox's mounts fail, each submission used to be
recorded as ``error``, 0 points. Now the sandbox is started once before the first submission
(``Sandbox.check``): when it cannot start, ``lessonlib autograde`` and ``lessonlib grade`` stop
with exit status 3 and a message naming the failing step and the options, and write nothing (no
gradebook, no attempt log, no results). A sandbox that breaks later leaves that submission
ungraded (reported, re-runnable) instead of recording a 0.

The sandbox is broken on purpose: where namespaces are used, one mount of its set-up script points
at a folder that does not exist (a real ``mount`` error); without namespaces, its Python does not
exist.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout

import nbformat
import pytest
from sqlalchemy import create_engine, inspect

from lessonlib.grading import sandbox as sb
from lessonlib.grading.batch import autograde
from lessonlib.grading.cli import main
from lessonlib.grading.gradebook import open_gradebook, recorded_scores
from lessonlib.grading.sandbox import Limits, Sandbox, SandboxError

from .conftest import TEST_LIMITS, correct_submission, limit_args, write_submission


def _run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def break_sandbox(monkeypatch) -> str:
    """Make every start of the sandbox fail; returns (part of) the step the message must name."""
    if sb.isolation_mode().endswith("namespaces"):
        good = 'mount --bind "$S" "$T/scratch"'
        assert good in sb._NS_SCRIPT
        bad = 'mount --bind "$S/no-such-folder" "$T/scratch"'
        monkeypatch.setattr(sb, "_NS_SCRIPT", sb._NS_SCRIPT.replace(good, bad))
        return "bind the scratch folder"
    init = Sandbox.__init__

    def no_python(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.python = "/nonexistent/python3"

    monkeypatch.setattr(Sandbox, "__init__", no_python)
    return "/nonexistent/python3"


@pytest.fixture
def broken(monkeypatch):
    return break_sandbox(monkeypatch)


def _check_message(err: str, step: str) -> None:
    assert "the grading sandbox does not work on this machine" in err, err
    assert f"failing step: {step}" in err or (step in err and "failing step:" in err), err
    assert "nothing was recorded" in err and "--isolation process" in err, err
    assert "error:" in err  # the underlying error (mount's or the OS's message)


def test_the_step_is_named(broken, limits):
    with Sandbox(limits=limits) as box:
        with pytest.raises(SandboxError) as info:
            box.check()
    assert broken in info.value.step or broken in str(info.value)
    assert info.value.mode == sb.isolation_mode() and info.value.detail


def test_autograde_stops_before_the_gradebook(ch99, broken, db_url, tmp_path):
    subs = tmp_path / "submitted"
    for student in ("zoe_broken", "yann_broken"):
        write_submission(subs, student, ch99, correct_submission(ch99))
    args = ["--course", str(ch99.root), "autograde", "99", "--submissions", str(subs)]
    code, out, err = _run(*args, "--db", db_url, *limit_args())
    assert code == 3
    _check_message(err, broken)
    assert "zoe_broken" not in out and "yann_broken" not in out
    if db_url.startswith("sqlite:///"):
        assert not (tmp_path / "course" / "gradebook.db").exists()
    else:
        engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg2://"))
        try:
            assert inspect(engine).get_table_names() == []  # not even nbgrader's tables
        finally:
            engine.dispose()
    for student in ("zoe_broken", "yann_broken"):
        assert not (ch99.root / "course" / "autograded" / student).exists()


def test_grade_logs_nothing_then_grades_with_the_option_it_names(ch99, broken, tmp_path):
    ws = tmp_path / "workspace"
    path = ws / ch99.name / f"{ch99.name}.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(correct_submission(ch99), path)
    before = path.read_bytes()
    base = ["--course", str(ch99.root), "grade", "99", "--workspace", str(ws), *limit_args()]
    code, out, err = _run(*base)
    assert code == 3 and out == ""
    _check_message(err, broken)
    assert not (ws / ".grades.sqlite").exists(), "a broken sandbox logged an attempt"
    assert path.read_bytes() == before
    if broken != "bind the scratch folder":
        return  # without namespaces the suggested option is the mode that just failed
    code, out, err = _run(*base, "--isolation", "process", "--json")
    assert code == 0, err
    assert all(r["status"] == "pass" for r in json.loads(out))
    assert (ws / ".grades.sqlite").exists()


def test_a_sandbox_that_breaks_mid_batch_leaves_the_student_ungraded(ch99, tmp_path, monkeypatch):
    """Graded once; then the sandbox breaks after its check passed (a full /tmp, a lost mount):
    the re-run reports the student as not graded, exits 3, and keeps the recorded grade."""
    subs = tmp_path / "submitted"
    write_submission(subs, "walt", ch99, correct_submission(ch99))
    db = f"sqlite:///{tmp_path / 'gb.db'}"
    kwargs = dict(db_url=db, limits=Limits(**TEST_LIMITS), out_root=tmp_path)
    first = autograde(ch99, subs, **kwargs)
    assert set(first.graded) == {"walt"} and not first.ungraded
    results = tmp_path / "course" / "autograded" / "walt" / ch99.name / "results.json"
    recorded = results.read_bytes()

    break_sandbox(monkeypatch)
    monkeypatch.setattr(Sandbox, "check", lambda self, **kw: None)  # it passed, then broke
    errors = []
    second = autograde(ch99, subs, on_error=lambda s, m: errors.append((s, m)), **kwargs)
    assert second.graded == {} and set(second.ungraded) == {"walt"}
    assert errors and errors[0][0] == "walt" and "SandboxError" in errors[0][1]
    gb = open_gradebook(db)
    try:
        scores = recorded_scores(gb, ch99, "walt")
    finally:
        gb.close()
    assert sum(scores.values()) == sum(ch99.test_points.values()), "the grade became a 0"
    assert results.read_bytes() == recorded

    out, err = io.StringIO(), io.StringIO()
    args = ["--course", str(ch99.root), "autograde", "99", "--submissions", str(subs)]
    with redirect_stdout(out), redirect_stderr(err):
        code = main([*args, "--db", db, "--json", "--no-compile-cache", *limit_args()])
    assert code == 3
    (row,) = json.loads(out.getvalue())
    assert row["student"] == "walt" and row["status"] == "ungraded"
    assert row["error"].startswith("SandboxError: the grading sandbox")
    assert "walt: NOT GRADED" in err.getvalue() and "run the same command again" in err.getvalue()


def test_the_warm_up_is_the_preflight(ch99, broken, tmp_path, monkeypatch):
    """With an empty compile cache the warm-up (the chapter's own solutions) is the sandbox's first
    start: it raises the same SandboxError, before the gradebook, and leaves the cache unmarked."""

    def no_second_start(self, **kwargs):
        raise AssertionError("Sandbox.check ran although the warm-up already started the sandbox")

    monkeypatch.setattr(Sandbox, "check", no_second_start)
    subs = tmp_path / "submitted"
    write_submission(subs, "zed_broken", ch99, correct_submission(ch99))
    gb_path = tmp_path / "gb" / "gradebook.db"
    cache = tmp_path / "xla"
    with pytest.raises(SandboxError) as info:
        autograde(
            ch99,
            subs,
            db_url=f"sqlite:///{gb_path}",
            limits=Limits(**TEST_LIMITS),
            out_root=tmp_path,
            compile_cache=cache,
        )
    assert broken in info.value.step or broken in str(info.value)
    assert not gb_path.exists() and not (tmp_path / "course" / "autograded").exists()
    assert not list(cache.glob(".warm-*")), "a failed warm-up marked the cache as filled"
