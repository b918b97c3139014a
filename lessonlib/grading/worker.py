"""The sandbox side of the grader: runs a learner's cells and calls their functions on given cases.

This module is copied into the sandbox's runtime folder and started there as
``python -I -S -c "...; import _lessonlib_worker; _lessonlib_worker.main()" PLAN`` with the
working directory set to a scratch folder. Everything it reads and writes is plain data:

- ``job.json`` + ``inputs.npz`` (written by the grader): the cells to execute, the exercises with
  their cases (inputs encoded by :func:`encode`), and the source of the probes they use;
- ``PLAN`` (JSON): which cells and exercises this launch runs, and the output folder; or, for a
  process started before its job was built (``Sandbox.start_early``), the output folder and the
  name of the file that will name the cells and exercises (``"await"``): it imports JAX and
  lessonlib, then waits for that file;
- ``<out>/started.json`` (Python runs), ``<out>/ready.json`` (imports done: learner code next),
  ``<out>/cell-<i>.json``, ``<out>/<exercise key>.json`` (+ ``.npz``): one
  file per finished unit, written atomically, so the grader sees progress and, after a crash, knows
  which unit broke.

Nothing is pickled: arrays travel in ``.npz`` files read with ``allow_pickle=False``. The grader
treats every byte written here as untrusted; this module only needs to be correct for honest code.
The trusted side imports :func:`encode` and :func:`decode` from here, so both agree on the format.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import numpy as np

MAX_DEPTH = 32


def encode(value: Any, arrays: dict[str, np.ndarray], *, key_type: type | None = None) -> Any:
    """Plain data -> JSON-able data; numpy arrays go into ``arrays`` and are referenced by name.

    Tagged objects: ``{"__nd__": name}`` (array), ``{"__tuple__": [...]}``, ``{"__dict__": {...}}``,
    ``{"__key__": seed}`` (a PRNG key written as its seed, only for case inputs).
    """
    if key_type is not None and isinstance(value, key_type):
        return {"__key__": int(value.seed)}
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, int | float):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError("arrays of Python objects are not plain data")
        name = f"a{len(arrays)}"
        arrays[name] = value
        return {"__nd__": name}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, arrays, key_type=key_type) for v in value]}
    if isinstance(value, list):
        return [encode(v, arrays, key_type=key_type) for v in value]
    if isinstance(value, dict):
        return {
            "__dict__": {str(k): encode(v, arrays, key_type=key_type) for k, v in value.items()}
        }
    raise TypeError(f"not plain data: {type(value).__name__}")


def decode(obj: Any, arrays: Any, *, key_type: type | None = None, depth: int = 0) -> Any:
    """Inverse of :func:`encode`; refuses anything that is not plain data (ValueError)."""
    if depth > MAX_DEPTH:
        raise ValueError("nested too deeply")
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, list):
        return [decode(v, arrays, key_type=key_type, depth=depth + 1) for v in obj]
    if isinstance(obj, dict) and len(obj) == 1:
        ((tag, inner),) = obj.items()
        if tag == "__nd__" and isinstance(inner, str):
            if inner not in arrays:
                raise ValueError(f"missing array {inner!r}")
            arr = arrays[inner]
            if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
                raise ValueError(f"arrays must hold numbers, got dtype {arr.dtype}")
            return arr
        if tag == "__tuple__" and isinstance(inner, list):
            return tuple(decode(v, arrays, key_type=key_type, depth=depth + 1) for v in inner)
        if tag == "__dict__" and isinstance(inner, dict):
            return {
                str(k): decode(v, arrays, key_type=key_type, depth=depth + 1)
                for k, v in inner.items()
            }
        if tag == "__key__" and key_type is not None and isinstance(inner, int):
            return key_type(inner)
    raise ValueError(f"not plain data: {type(obj).__name__}")


# --------------------------------------------------------------------------- sandbox side


def _write(out: str, name: str, payload: dict, arrays: dict | None = None) -> None:
    """Write ``<out>/<name>.json`` (and ``.npz``) atomically: the json appears last."""
    if arrays:
        with open(os.path.join(out, f"{name}.npz.tmp"), "wb") as f:
            np.savez(f, **arrays)
        os.replace(os.path.join(out, f"{name}.npz.tmp"), os.path.join(out, f"{name}.npz"))
    tmp = os.path.join(out, f"{name}.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f)
    os.replace(tmp, os.path.join(out, f"{name}.json"))


def _error(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:500]


# Display-only modules, and heavy ones a chapter's demos use (chapter 05 integrates SELU's moments
# with scipy.integrate, about 0.7 s to import): the chapters import them at the top, but grading
# runs only definitions and answers, which rarely draw or integrate. They load on first attribute
# access instead (``import m`` and ``from pkg import m``; ``from m import name`` loads m at once).
LAZY_MODULES = frozenset({"lessonlib.viz", "ipywidgets", "matplotlib.pyplot", "scipy.integrate"})


class _LazyFinder:
    """A ``sys.meta_path`` finder that wraps the loaders of ``LAZY_MODULES`` in ``LazyLoader``."""

    def find_spec(self, name, path=None, target=None):
        if name not in LAZY_MODULES:
            return None
        import importlib.util

        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


AWAIT_LIMIT_S = 600.0  # a process started early whose grader went away stops by itself


def _await(name: str) -> dict:
    """Wait for the grader's file ``name`` (written atomically once ``job.json`` and
    ``inputs.npz`` are in place) and return the cells and exercises it names."""
    import time

    deadline = time.monotonic() + AWAIT_LIMIT_S
    while not os.path.exists(name):
        if time.monotonic() > deadline:
            os._exit(3)
        time.sleep(0.002)
    with open(name, encoding="utf-8") as f:
        got = json.load(f)
    return {"cells": got["cells"], "exercises": got["exercises"]}


def main() -> None:
    plan_path = sys.argv[1]
    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    out = plan["out"]
    _write(out, "started", {})  # Python runs: a failure from here on is in the imports
    check = plan.get("check")  # the grader's preflight: "start", or "imports" (JAX, lessonlib)
    if check == "start":
        _write(out, "ready", {})
        return

    import jax  # imported before any learner code, so its time counts as start-up

    # No compiled-program cache unless the plan names the grader's own (below): the chapters'
    # cache (lessonlib.demos turns it on in a learner's kernel) must not turn on in here.
    jax.config.update("jax_enable_compilation_cache", False)

    if check == "imports":
        from lessonlib import exercises  # noqa: F401

        _write(out, "ready", {})
        return
    if plan.get("await"):  # started before its job was built: the imports above ran meanwhile
        from lessonlib import exercises  # noqa: F401

        plan.update(_await(plan["await"]))
    with open("job.json", encoding="utf-8") as f:
        job = json.load(f)
    inputs = dict(np.load("inputs.npz", allow_pickle=False)) if os.path.exists("inputs.npz") else {}

    cache = plan.get("xla_cache")
    if cache:  # the grader's compiled programs: a private copy, written only in trusted runs
        jax.config.update("jax_enable_compilation_cache", True)
        jax.config.update("jax_compilation_cache_dir", os.path.abspath(cache["dir"]))
        jax.config.update("jax_persistent_cache_enable_xla_caches", "none")
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
        min_secs = 0.0 if cache["write"] else 1e9  # only entries compiled for longer are written
        jax.config.update("jax_persistent_cache_min_compile_time_secs", min_secs)

    from lessonlib import exercises as lx

    sys.meta_path.insert(0, _LazyFinder())
    _write(out, "ready", {})

    import builtins

    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    for index in plan["cells"]:
        cell = job["cells"][index]
        error = None
        try:
            exec(compile(cell["source"], f"<cell {cell['label']}>", "exec"), namespace)
        except BaseException as e:  # learner code may raise anything, SystemExit included
            error = _error(e)
        _write(out, f"cell-{index}", {"error": error})

    probes: dict[str, Any] = {"__name__": "lessonlib_probes"}
    exec(compile(job.get("probe_source", ""), "<probes>", "exec"), probes)

    for key in plan["exercises"]:
        spec = job["exercises"][key]
        exercise = lx.Exercise(
            id=spec["id"],
            name=spec["name"],
            points=0,
            cases=(),
            kind=spec["kind"],
            probes={name: probes[name] for name in spec["probes"]},
        )
        outcomes, arrays = [], {}
        missing = spec["name"] not in namespace
        for raw in spec["cases"]:
            if missing:
                outcomes.append({"error": f"NameError: name {spec['name']!r} is not defined"})
                continue
            try:
                case = lx.Case(
                    args=decode(raw["args"], inputs, key_type=lx.Key),
                    kwargs=decode(raw["kwargs"], inputs, key_type=lx.Key),
                    probe=raw["probe"],
                )
                outcome = lx.run_case(exercise, namespace[spec["name"]], case)
                if outcome.error is not None:
                    outcomes.append({"error": str(outcome.error)[:500]})
                else:
                    outcomes.append({"value": encode(outcome.value, arrays)})
            except BaseException as e:  # SystemExit, unencodable results, ...
                outcomes.append({"error": _error(e)})
        _write(out, key, {"outcomes": outcomes}, arrays)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # everything is written; skip the interpreter's (and JAX's) slow teardown
