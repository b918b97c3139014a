"""Every module's doctests run: one test per module under ``lessonlib/`` (subpackages included).

A docstring example is documentation a learner may copy; if it stops working, this fails. A
module without examples passes. Examples run under the strict dtype/rank promotion of
``conftest.py``, like every other test.
"""

import doctest
import importlib
import pkgutil
import types

import pytest

import lessonlib

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(lessonlib.__path__, prefix="lessonlib.")
)


def test_every_module_is_found():
    for name in (
        "lessonlib._checks",
        "lessonlib.train",
        "lessonlib.demos",
        "lessonlib.grading.cli",
    ):
        assert name in MODULES


def run_doctests(module) -> tuple[doctest.TestResults, str]:
    """Run every example of ``module``; return the counts and the report of the failures."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    for test in finder.find(module, module.__name__):
        runner.run(test, out=report.append)
    return runner.summarize(verbose=False), "".join(report)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result, report = run_doctests(importlib.import_module(name))
    assert result.failed == 0, report


def test_a_wrong_example_fails():
    module = types.ModuleType("fake", "An example that lies.\n\n>>> 1 + 1\n3\n")
    result, report = run_doctests(module)
    assert (result.attempted, result.failed) == (1, 1) and "Expected:" in report


@pytest.mark.parametrize(
    "name", ["_checks", "_hp", "data", "layers", "lr_finder", "optim", "schedules", "transforms"]
)
def test_core_modules_have_examples(name):
    module = importlib.import_module(f"lessonlib.{name}")
    assert sum(len(t.examples) for t in doctest.DocTestFinder().find(module)) > 0
