"""Exercise specs: the single source of truth for instant checks, visible tests and hidden tests.

Each chapter has a module ``chNN.py`` with a list ``EXERCISES`` of ``Exercise`` objects. An
exercise names the function (or value) the learner defines in the notebook, the inputs it is called
on (``cases`` are visible, ``hidden`` only run at grading time), and how the result is judged: by
default against a trusted ``reference`` implementation within a tolerance, or by a custom
``judge`` for answers that are random or have several right forms (dropout masks, ...).

The split matters for the grader: ``run_case`` is the only part that touches the learner's code
(it calls it and turns the result into plain data: numbers, strings, numpy arrays); ``judge_case``
runs in the trusted grader process on that plain data. ``check`` glues the two together inside the
notebook so the learner sees exactly the verdict the grader will give.

In a notebook::

    from lessonlib.exercises import check
    check("01.l2_penalty", l2_penalty)     # prints a pass line, or raises CheckFailed + hint
    check("01.lam_best")                   # a value exercise: looks up lam_best itself
"""

from __future__ import annotations

import copy
import importlib
import inspect
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Key:
    """A PRNG key in a case, written as its seed so cases stay plain data: ``Key(3)``."""

    seed: int


@dataclass(frozen=True)
class Case:
    """One call of the learner's function: ``fn(*args, **kwargs)``, or ``probe(fn, *args, **kwargs)``.

    A probe is a function of the spec module that runs next to the learner's code and returns plain
    data (e.g. calls ``dropout`` twice with two keys and returns both outputs). ``note`` describes
    the case in feedback ("x = ones(10_000), rate = 0.3").
    """

    args: tuple = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    probe: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Outcome:
    """What came back from one case: a plain-data ``value`` or an ``error`` ("ValueError: ...")."""

    value: Any = None
    error: str | None = None


@dataclass(frozen=True)
class Exercise:
    id: str  # "01.l2_penalty": chapter number, dot, a short name
    name: str  # the function or variable the learner defines in the notebook
    points: float
    cases: tuple[Case, ...]
    hidden: tuple[Case, ...] = ()
    reference: Any = None  # trusted implementation (same signature), or for a value: it or a thunk
    judge: Callable[[Case, Outcome], str | None] | None = None  # custom verdict: None = pass
    kind: str = "function"  # or "value": the learner defines a variable, compared as one case
    rtol: float = 1e-5
    atol: float = 1e-6
    hint: str = ""
    probes: Mapping[str, Callable] = field(default_factory=dict)
    prepare: Precomputed | None = None  # trusted precomputation the judge relies on (below)


# --------------------------------------------------------------------------- precomputed references

_ARRAY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class Precomputed:
    """A trusted computation of no arguments that judges read, e.g. chapter 01's lambda sweep.

    Use it as a decorator, ``@precomputed``. Like ``functools.cache`` it runs once per process
    (thread-safe) and then returns the same result; the result must be a flat dict of numpy
    arrays (plain data), returned read-only. The grader keeps that result on disk between runs
    (``lessonlib.grading.references``) and hands it back with ``load``, so grading a chapter does
    not repeat an 8-second training sweep every time.

    >>> import numpy as np
    >>> calls = []
    >>> @precomputed
    ... def squares():
    ...     calls.append(1)
    ...     return {"x": np.arange(3.0) ** 2}
    >>> squares()["x"], squares()["x"].flags.writeable, len(calls)
    (array([0., 1., 4.]), False, 1)
    >>> fresh = Precomputed(squares.compute)
    >>> fresh.load({"x": np.array([0.0, 1.0, 4.0])})
    >>> float(fresh()["x"][2]), len(calls)  # loaded, not computed again
    (4.0, 1)
    """

    def __init__(self, compute: Callable[[], Mapping[str, Any]]):
        self.compute = compute
        self.__name__ = getattr(compute, "__name__", "precomputed")
        self.__qualname__ = getattr(compute, "__qualname__", self.__name__)
        self.__module__ = getattr(compute, "__module__", __name__)
        self.__doc__ = compute.__doc__
        self._value: dict[str, np.ndarray] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, np.ndarray]:
        with self._lock:
            if self._value is None:
                self._value = plain_arrays(self.compute())
            return self._value

    @property
    def ready(self) -> bool:
        """Whether the result is in memory (computed or loaded)."""
        return self._value is not None

    def load(self, arrays: Mapping[str, Any]) -> None:
        """Use ``arrays`` (a stored result of ``compute``) instead of computing."""
        value = plain_arrays(arrays)
        with self._lock:
            self._value = value

    def forget(self) -> None:
        """Drop the result from memory (the next call computes or a ``load`` fills it again)."""
        with self._lock:
            self._value = None


def precomputed(compute: Callable[[], Mapping[str, Any]]) -> Precomputed:
    """Decorator: ``compute`` as a :class:`Precomputed` reference (see there)."""
    return Precomputed(compute)


def plain_arrays(arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A flat dict of read-only numeric numpy arrays, or ValueError naming what is not."""
    if not isinstance(arrays, Mapping):
        raise ValueError(
            f"a precomputed reference must be a dict of arrays, got {type(arrays).__name__}"
        )
    out = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not _ARRAY_NAME.fullmatch(name):
            raise ValueError(f"array names must be identifiers, got {name!r}")
        arr = np.array(value)  # a copy: the caller's arrays stay writable
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise ValueError(f"array {name!r} must hold numbers, got dtype {arr.dtype}")
        arr.setflags(write=False)
        out[name] = arr
    return out


# --------------------------------------------------------------------------- registry


def chapter_exercises(chapter: str) -> list[Exercise]:
    """The exercises of chapter ``"01"`` (from ``lessonlib.exercises.ch01``), in notebook order."""
    module = importlib.import_module(f"lessonlib.exercises.ch{chapter}")
    return list(module.EXERCISES)


def get(exercise_id: str) -> Exercise:
    """The exercise with id ``"NN.name"``."""
    chapter, _, _ = exercise_id.partition(".")
    try:
        exercises = chapter_exercises(chapter)
    except ModuleNotFoundError:
        raise KeyError(f"no chapter {chapter!r} for exercise id {exercise_id!r}") from None
    for ex in exercises:
        if ex.id == exercise_id:
            return ex
    raise KeyError(
        f"no exercise {exercise_id!r}; chapter {chapter} has {[e.id for e in exercises]}"
    )


# --------------------------------------------------------------------------- plain data


def to_plain(value: Any) -> Any:
    """Turn a result into plain data: numpy arrays, Python numbers/str/bool/None, lists, dicts.

    Anything else (an object with a custom ``__eq__``, a function, ...) is refused with TypeError,
    so what a learner's code returns can be judged without running any of its code.
    """
    import jax

    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float | np.integer | np.floating | np.bool_):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, jax.Array):
        if jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
            raise TypeError("a PRNG key cannot be graded; return an array of numbers")
        return np.asarray(value)
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError("arrays of Python objects are not plain data")
        return value.copy()
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    raise TypeError(f"expected numbers or arrays, got an object of type {type(value).__name__}")


def _to_inputs(value: Any) -> Any:
    """Turn case inputs into what the learner's function expects (JAX arrays and keys)."""
    import jax
    import jax.numpy as jnp

    if isinstance(value, Key):
        return jax.random.key(value.seed)
    if isinstance(value, np.ndarray):
        return jnp.asarray(value)
    if isinstance(value, list | tuple):
        return type(value)(_to_inputs(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_inputs(v) for k, v in value.items()}
    return value


def run_case(exercise: Exercise, fn: Any, case: Case) -> Outcome:
    """Call the learner's ``fn`` (or take its value) on ``case``; return plain data or the error.

    This is the only function that runs learner code; the grader calls it in a sandbox.
    """
    try:
        if exercise.kind == "value":
            result = fn
        else:
            if not callable(fn):
                return Outcome(error=f"TypeError: {exercise.name} must be a function")
            args, kwargs = _to_inputs(case.args), _to_inputs(dict(case.kwargs))
            if case.probe:
                result = exercise.probes[case.probe](fn, *args, **kwargs)
            else:
                result = fn(*args, **kwargs)
        return Outcome(value=to_plain(result))
    except NotImplementedError:
        return Outcome(error="NotImplementedError: not solved yet")
    except Exception as e:  # the learner's code may raise anything; report it as data
        return Outcome(error=f"{type(e).__name__}: {e}")


def expected_outcome(exercise: Exercise, case: Case) -> Outcome:
    """The reference's outcome on ``case`` (trusted code only).

    For a ``kind="value"`` exercise the reference is the expected value itself, or a function of no
    arguments that computes it.

    A result is remembered for this exercise and case object (a copy is returned each time): a
    judge asks for it several times per case (``default_verdict``, then its own feedback), and
    the grader once more when it rehearses the judges, so the reference runs once per process.
    An error is not remembered (it may come from a reference not prepared yet).
    """
    if exercise.reference is None:
        raise ValueError(f"{exercise.id} has no reference implementation")
    key = (id(exercise), id(case))
    with _EXPECTED_LOCK:
        hit = _EXPECTED.get(key)
    if hit is not None and hit[0] is exercise and hit[1] is case:
        return copy.deepcopy(hit[2])
    if exercise.kind == "value" and callable(exercise.reference):
        try:
            outcome = Outcome(value=to_plain(exercise.reference()))
        except Exception as e:
            return Outcome(error=f"{type(e).__name__}: {e}")
    else:
        outcome = run_case(exercise, exercise.reference, case)
    if outcome.error is None:
        with _EXPECTED_LOCK:
            while len(_EXPECTED) >= _EXPECTED_MAX:  # tests build many exercises: stay bounded
                del _EXPECTED[next(iter(_EXPECTED))]
            _EXPECTED[key] = (exercise, case, copy.deepcopy(outcome))
    return outcome


# (id(exercise), id(case)) -> (exercise, case, outcome); the objects are kept so an id is never
# reused for another exercise or case while its entry lives.
_EXPECTED: dict[tuple[int, int], tuple[Exercise, Case, Outcome]] = {}
_EXPECTED_LOCK = threading.Lock()
_EXPECTED_MAX = 4096


def judge_case(exercise: Exercise, case: Case, outcome: Outcome) -> str | None:
    """The verdict on one outcome: None when right, else a message saying what went wrong."""
    if exercise.judge is not None:
        return exercise.judge(case, outcome)
    return default_verdict(exercise, case, outcome)


def default_verdict(exercise: Exercise, case: Case, outcome: Outcome) -> str | None:
    """The verdict without a custom judge: the same error as the reference, or values within
    ``exercise.rtol``/``atol`` (custom judges call it first and then say more)."""
    expected = expected_outcome(exercise, case)
    if expected.error is not None:
        want = expected.error.split(":")[0]
        if outcome.error is None:
            return f"expected {want} to be raised, but it returned normally"
        if outcome.error.split(":")[0] != want:
            return f"expected {want}, got {outcome.error}"
        return None
    if outcome.error is not None:
        return outcome.error
    return compare(outcome.value, expected.value, rtol=exercise.rtol, atol=exercise.atol)


def compare(got: Any, want: Any, *, rtol: float = 1e-5, atol: float = 1e-6) -> str | None:
    """None when ``got`` matches ``want`` (same structure, shapes, values within tolerance)."""
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            return f"expected a dict with keys {sorted(want)}, got {_describe(got)}"
        for k in want:
            msg = compare(got[k], want[k], rtol=rtol, atol=atol)
            if msg:
                return f"[{k!r}]: {msg}"
        return None
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return f"expected a sequence of {len(want)} items, got {_describe(got)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            msg = compare(g, w, rtol=rtol, atol=atol)
            if msg:
                return f"item {i}: {msg}"
        return None
    if isinstance(got, dict | list | str) or got is None:
        return f"expected a number or array, got {_describe(got)}"
    g, w = np.asarray(got), np.asarray(want)
    if g.shape != w.shape:
        return f"expected shape {w.shape}, got shape {g.shape}"
    if not np.issubdtype(g.dtype, np.number) and g.dtype != np.bool_:
        return f"expected numbers, got dtype {g.dtype}"
    if not np.allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol):
        diff = np.abs(g.astype(np.float64) - w.astype(np.float64))
        where = np.unravel_index(np.argmax(diff), diff.shape) if diff.ndim else ()
        gv, wv = (g[where], w[where]) if diff.ndim else (g, w)
        loc = f" at index {tuple(int(i) for i in where)}" if diff.ndim else ""
        return f"expected {float(wv):.6g}{loc}, got {float(gv):.6g}"
    return None


def judge_with_mistakes(
    reference: Callable, mistakes: dict[str, Callable], *, rtol: float = 1e-5, atol: float = 1e-6
) -> Callable[[Case, Outcome], str | None]:
    """A judge: compare with ``reference``; on a mismatch, name the first mistake that matches.

    ``mistakes`` maps a description ("the square is lost") to a function computing that wrong
    answer; the feedback then reads "expected ..., got ... — this is what you get when <label>".
    A reference that raises ValueError makes the case an "expect ValueError" case.
    """

    def judge(case: Case, outcome: Outcome) -> str | None:
        try:
            want = to_plain(reference(*case.args, **case.kwargs))
        except ValueError as e:
            if outcome.error is None:
                return f"expected ValueError ({e}), but it returned normally"
            if not outcome.error.startswith("ValueError"):
                return f"expected ValueError, got {outcome.error}"
            return None
        if outcome.error is not None:
            return outcome.error
        why = compare(outcome.value, want, rtol=rtol, atol=atol)
        if why is None:
            return None
        if _has_nonfinite(outcome.value):
            why += " (your result contains NaN or inf)"
        for label, wrong in mistakes.items():
            try:
                with np.errstate(all="ignore"):  # a mistake may divide by zero: stay quiet
                    bad = to_plain(wrong(*case.args, **case.kwargs))
                if compare(outcome.value, bad, rtol=rtol, atol=atol) is None:
                    return f"{why} — this is what you get when {label}"
            except Exception:  # a mistake variant that does not apply to this case
                continue
        return why

    return judge


def _has_nonfinite(tree: Any) -> bool:
    """Whether any numeric leaf of a plain result (dicts, lists, tuples, arrays) is NaN or inf."""
    if isinstance(tree, dict):
        return any(_has_nonfinite(v) for v in tree.values())
    if isinstance(tree, list | tuple):
        return any(_has_nonfinite(v) for v in tree)
    a = np.asarray(tree)
    return np.issubdtype(a.dtype, np.number) and not np.isfinite(a.astype(np.float64)).all()


def _describe(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape}"
    return f"a {type(x).__name__}"


# --------------------------------------------------------------------------- in the notebook


@dataclass(frozen=True)
class Report:
    exercise: Exercise
    failures: tuple[tuple[Case, str], ...]
    total: int
    unsolved: bool = False  # the answer still raises NotImplementedError, or is not defined yet

    @property
    def passed(self) -> bool:
        return not self.failures

    def lines(self) -> list[tuple[str, str]]:
        """The message as ``(style, text)`` lines; style is ``"pass"``, ``"fail"``, ``"detail"``
        or ``"hint"`` (``message`` joins the texts, ``CheckFailed`` colours them)."""
        ex = self.exercise
        if self.passed:
            return [
                (
                    "pass",
                    f"✔ {ex.id}: all {self.total} checks passed ({ex.points:g} points at grading).",
                )
            ]
        if self.unsolved:
            what = "the variable" if ex.kind == "value" else "the function"
            return [
                ("fail", f"✘ {ex.id}: not solved yet."),
                (
                    "detail",
                    f"  Write {what} `{ex.name}` in the exercise cell above, run it, then run this cell.",
                ),
            ]
        case, why = self.failures[0]
        out = [("fail", f"✘ {ex.id}: {len(self.failures)} of {self.total} checks failed.")]
        out.append(("detail", f"  First failure{f' ({case.note})' if case.note else ''}: {why}"))
        if ex.hint:
            out.append(("hint", f"  Hint: {ex.hint}"))
        return out

    def message(self) -> str:
        return "\n".join(text for _, text in self.lines())


def evaluate(exercise: Exercise, obj: Any, *, hidden: bool = False) -> Report:
    """Run the visible cases (and the hidden ones if ``hidden``) and judge every outcome."""
    cases = exercise.cases + (exercise.hidden if hidden else ())
    failures, errors = [], []
    for case in cases:
        outcome = run_case(exercise, obj, case)
        errors.append(outcome.error or "")
        why = judge_case(exercise, case, outcome)
        if why:
            failures.append((case, why))
    unsolved = all(e.startswith("NotImplementedError") for e in errors)
    return Report(exercise, tuple(failures), len(cases), unsolved=bool(failures) and unsolved)


# ANSI styles of the failure message: JupyterLab and the terminal render them in an error output.
_STYLES = {"fail": "\x1b[1;31m", "detail": "", "hint": "\x1b[34m", "pass": "\x1b[32m"}
_RESET = "\x1b[0m"


class CheckFailed(AssertionError):
    """Raised by ``check`` when an answer is wrong; the message says what and gives a hint.

    In IPython and Jupyter it shows itself as that message alone — the verdict, the first failing
    case and the hint, a few coloured lines — instead of a traceback through this module
    (``_render_traceback_`` is IPython's hook for that). It is still an exception: the cell ends
    with an error output, so nbgrader's autograde scores the test cell 0, and Run All continues
    past it only because every test cell is tagged ``raises-exception``.
    """

    def __init__(self, report: Report | str):
        self.report = report if isinstance(report, Report) else None
        super().__init__(report.message() if isinstance(report, Report) else report)

    def _render_traceback_(self) -> list[str]:
        if self.report is None:
            return [f"{_STYLES['fail']}✘ {self}{_RESET}"]
        return [
            f"{_STYLES[style]}{text}{_RESET}" if _STYLES[style] else text
            for style, text in self.report.lines()
        ]


_MISSING = object()


def check(exercise_id: str, obj: Any = _MISSING, *, hidden: bool = False) -> None:
    """Instant check in the notebook: print a pass line, or raise ``CheckFailed`` with the hint.

    ``obj`` is the learner's function (or, for a value exercise, its value). Leave it out to have
    ``check`` look up the exercise's name among the caller's variables: a value exercise's test
    cell is ``check("01.lam_best")``, so an unsolved exercise (the variable never assigned) reads
    "not solved yet" instead of a ``NameError`` traceback.

    Returns None on purpose: a test cell must not end in a value (nbgrader would take a bare
    value as the cell's score).
    """
    exercise = get(exercise_id)
    if obj is _MISSING:
        frame = inspect.currentframe()
        caller = frame.f_back.f_globals if frame is not None and frame.f_back is not None else {}
        if exercise.name not in caller:
            why = f"NameError: {exercise.name} is not defined yet"
            cases = exercise.cases + (exercise.hidden if hidden else ())
            raise CheckFailed(Report(exercise, tuple((c, why) for c in cases), len(cases), True))
        obj = caller[exercise.name]
    report = evaluate(exercise, obj, hidden=hidden)
    if not report.passed:
        raise CheckFailed(report)
    print(report.message())
