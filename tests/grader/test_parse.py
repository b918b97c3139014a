"""grading.course.parse: ast.parse that survives CPython 3.11's threaded AST-constructor bug."""

import ast

import pytest

from lessonlib.grading import course


def _flaky(times: int, message: str):
    real, calls = ast.parse, []

    def parse(source):
        calls.append(source)
        if len(calls) <= times:
            raise SystemError(message)
        return real(source)

    return parse, calls


def test_a_depth_mismatch_is_parsed_again(monkeypatch):
    fake, calls = _flaky(2, "AST constructor recursion depth mismatch (before=27, after=29)")
    monkeypatch.setattr(course.ast, "parse", fake)
    tree = course.parse("x = 1")
    assert isinstance(tree.body[0], ast.Assign) and len(calls) == 3


def test_a_lasting_mismatch_and_other_errors_are_raised(monkeypatch):
    fake, calls = _flaky(99, "AST constructor recursion depth mismatch (before=1, after=2)")
    monkeypatch.setattr(course.ast, "parse", fake)
    with pytest.raises(SystemError, match="mismatch"):
        course.parse("x = 1")
    assert len(calls) == 5
    fake, calls = _flaky(1, "something else")
    monkeypatch.setattr(course.ast, "parse", fake)
    with pytest.raises(SystemError, match="something else"):
        course.parse("x = 1")
    assert len(calls) == 1
    monkeypatch.undo()
    with pytest.raises(SyntaxError):
        course.parse("x = (")
