"""The hardened runner: learner code in a separate, resource-limited process that sees only scratch.

One launch of :func:`run_job` executes a submission's cells and then calls its functions on the
grader's cases (``worker.py`` is the code that runs inside). Around it:

- **Process limits** (``resource.setrlimit``): address space, CPU time, file size (bounds output
  floods: stdout/stderr go to files in scratch), open files, no core dumps; when grading as root
  also a process count.
- **Time limits**, watched from outside: start-up (interpreter + ``import jax``), each cell, each
  exercise (all its cases, JIT compilation included), and the whole notebook.
- **Crash containment**: the worker writes one result file per finished unit. When the process
  dies (``os._exit``, segfault, memory) or overruns a limit, the unit it was in is marked, and a
  fresh process runs the remaining units (skipping a cell that crashed), so a fault costs only
  what it breaks.
- **Isolation**: a clean environment, ``python -I -S`` with ``sys.path`` set to a copy of the
  library (its subpackages such as ``demos/`` included) without the exercise specs or the grader,
  plus the virtual environment's packages. Where Linux namespaces are available (``unshare``), the
  process also gets no network, its own process table, a private ``/tmp`` holding only its
  scratch folder, and the course folder, the submissions, the gradebook's folder and the grader's
  home hidden under empty file systems; when grading as root it runs as ``nobody``. See
  :func:`isolation_mode` and docs/instructors.md.
- **Compiled-program cache** (optional, ``compile_cache``): JAX's persistent cache of compiled XLA
  programs, filled only by trusted runs (``run_job(..., save_cache=True)`` on the instructor's own
  solutions, see ``grader.warm_compile_cache``). Each job gets a private copy in its scratch folder
  that it may read but never writes back, so one submission cannot plant a program for another.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from lessonlib.cache import atomic_write

from . import worker

PACKAGE = Path(__file__).resolve().parent.parent  # lessonlib/
NOBODY = 65534
MAX_RESULT_BYTES = 64 << 20
CACHE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}")  # file names in JAX's compilation cache
MAX_CACHE_BYTES = 512 << 20  # a compile cache above this is cleared before it is filled again


def default_compile_cache() -> Path:
    """The grader's compile cache: ``$LESSONLIB_CACHE/grader-xla`` (``~/.cache/lessonlib/...``)."""
    from lessonlib.cache import cache_dir

    return cache_dir() / "grader-xla"


@dataclass(frozen=True)
class Limits:
    """Limits for one submission (seconds, MiB). Defaults fit JAX: ``import jax`` takes ~1 s and a
    first jit of a small function compiles in ~0.5–2 s on a loaded 2-core CPU."""

    startup_timeout: float = 60.0  # interpreter start + imports, before any learner code
    cell_timeout: float = 60.0  # each executed cell
    exercise_timeout: float = 60.0  # each exercise: all its visible and hidden cases
    notebook_timeout: float = 600.0  # everything for one submission, relaunches included
    memory_mb: int = 4096  # address space (RLIMIT_AS); JAX on CPU needs ~1 GiB to start
    output_mb: int = 16  # largest file the sandbox may write (stdout, stderr, results)

    def __post_init__(self) -> None:
        for name in ("startup_timeout", "cell_timeout", "exercise_timeout", "notebook_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {getattr(self, name)}")
        if not 512 <= self.memory_mb <= 1 << 20:
            raise ValueError(f"memory_mb must be in [512, 1048576], got {self.memory_mb}")
        if not 1 <= self.output_mb <= 4096:
            raise ValueError(f"output_mb must be in [1, 4096], got {self.output_mb}")


@dataclass
class UnitResult:
    """What happened to one exercise: its raw outcomes, or why there are none."""

    outcomes: list[dict] | None = None  # [{"value": ...} | {"error": "..."}], still encoded
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    status: str = "ok"  # ok | timeout | error
    message: str = ""


@dataclass
class JobResult:
    exercises: dict[str, UnitResult]
    cell_errors: dict[int, str]  # cell index -> error (exception, crash or timeout)
    launches: int
    stderr_tail: str = ""


class SandboxError(RuntimeError):
    """The sandbox itself failed before any learner code ran (a mount, the namespaces, the user
    switch, Python or JAX could not start): the environment's fault, never the learner's. Nothing
    it produced may be graded; ``step`` names what failed, ``detail`` says how."""

    def __init__(self, mode: str, step: str, detail: str):
        self.mode, self.step, self.detail = mode, step, detail.strip()
        super().__init__(f"the grading sandbox ({mode} isolation) failed to {step}: {self.detail}")


# --------------------------------------------------------------------------- isolation


_NO_CAPS = ("--inh-caps=-all", "--bounding-set=-all", "--no-new-privs")  # for setpriv


def _can_run(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


ISOLATION_MODES = ("root-namespaces", "root", "user-namespaces", "process")


@lru_cache(maxsize=1)
def isolation_mode() -> str:
    """``"root-namespaces"``: as root, with mount/network/PID namespaces, running as nobody;
    ``"root"``: as root without namespaces, running as nobody; ``"user-namespaces"``: not root,
    with an unprivileged user namespace; ``"process"``: a plain child process (same user)."""
    probe = "mount -t tmpfs none /mnt 2>/dev/null || mount -t tmpfs none /tmp; true"
    if os.geteuid() == 0:
        if shutil.which("unshare") and _can_run(
            ["unshare", "--mount", "--net", "--pid", "--fork", "--mount-proc"]
            + ["--propagation", "private", "sh", "-c", probe]
        ):
            return "root-namespaces"
        return "root"
    drop = f"setpriv {' '.join(_NO_CAPS)} -- true"
    if shutil.which("unshare") and _can_run(
        ["unshare", "--user", "--map-root-user", "--mount", "--net", "--pid", "--fork"]
        + ["--mount-proc", "--propagation", "private", "sh", "-c", f"{probe} && {drop}"]
    ):
        return "user-namespaces"
    return "process"


# The namespace set-up, run as (namespace) root before dropping to the learner's process:
# a fresh /tmp holding only scratch, the runtime copy and the packages; secrets hidden under empty
# tmpfs mounts, with the Python installation (which may live under a hidden home) bound back.
# Each step is named in $STEP: when one fails, the last line on stderr says which (``check``).
STEP_MARK = "lessonlib-sandbox-step:"
_NS_SCRIPT = r"""
set -e
STEP="start the namespace set-up"
trap 'rc=$?; [ "$rc" = 0 ] || echo "lessonlib-sandbox-step: $STEP" >&2' EXIT
T="$1"; S="$2"; R="$3"; P="$4"; shift 4
STEP="mount a private /tmp (tmpfs on $T)"
mount -t tmpfs -o size=64m,mode=1777 lessonlib-tmp "$T"
mkdir -p "$T/scratch" "$T/runtime" "$T/site" "$T/.keep"
STEP="bind the scratch folder $S"
mount --bind "$S" "$T/scratch"
STEP="bind the library copy $R"
mount --bind "$R" "$T/runtime"
STEP="bind the Python packages $P"
mount --bind "$P" "$T/site"
STEP="make the library copy and the packages read-only (remount,bind,ro)"
mount -o remount,bind,ro "$T/runtime"; mount -o remount,bind,ro "$T/site"
i=0; hide=""; keep=""
while [ "$1" != "--" ]; do hide="$hide $1"; shift; done; shift
while [ "$1" != "--" ]; do
  STEP="bind the Python installation $1"
  i=$((i+1)); mkdir -p "$T/.keep/$i"; mount --bind "$1" "$T/.keep/$i"; keep="$keep $1"; shift
done; shift
STEP="move the private /tmp into place (mount --move)"
mount --move "$T" /tmp
for d in $hide; do
  STEP="hide $d (tmpfs over it)"
  [ -d "$d" ] && mount -t tmpfs -o size=16k,mode=0755 lessonlib-hidden "$d"
done
i=0
for k in $keep; do
  STEP="bind the Python installation back at $k"
  i=$((i+1)); mkdir -p "$k"; mount --bind "/tmp/.keep/$i" "$k"; umount -l "/tmp/.keep/$i"
done
rmdir /tmp/.keep/* /tmp/.keep 2>/dev/null || true
for d in /var/tmp /dev/shm /run/lock; do
  STEP="empty $d (tmpfs over it)"
  [ -d "$d" ] && mount -t tmpfs -o size=1m lessonlib-empty "$d"
done
cd /tmp/scratch
STEP="start $1"
exec "$@"
"""

# The first code the sandbox's interpreter runs (before any learner code): resource limits (hard =
# soft, so they cannot be raised again), a private umask, then the worker.
_BOOT = (
    "import os, resource, sys\n"
    "for item in sys.argv[4].split(','):\n"
    "    name, value = item.split('=')\n"
    "    resource.setrlimit(getattr(resource, name), (int(value), int(value)))\n"
    "os.umask(0o077)\n"
    "sys.path[:0] = [sys.argv[2]]; sys.path.append(sys.argv[3]); sys.argv = sys.argv[:2]\n"
    "import _lessonlib_worker\n"
    "_lessonlib_worker.main()\n"
)


# Subpackages of lessonlib the sandbox never gets: the chapter specs (hidden cases, references)
# and the grader itself. Of ``exercises/`` only the spec *format*, ``__init__.py``, goes in.
PRIVATE_PACKAGES = frozenset({"exercises", "grading"})


def _runtime_files() -> dict[str, Path]:
    """What the sandbox may import from lessonlib: every module of the package and of its
    subpackages (``demos/``, and any added later) except ``PRIVATE_PACKAGES``, plus the
    exercise-spec format ``exercises/__init__.py``. Keys are paths relative to the copy."""
    files = {}
    for p in sorted(PACKAGE.rglob("*.py")):
        rel = p.relative_to(PACKAGE)
        if len(rel.parts) > 1 and rel.parts[0] in PRIVATE_PACKAGES:
            continue
        if any(part.startswith((".", "__pycache__")) for part in rel.parts):
            continue  # editor and build leftovers
        files[f"lessonlib/{rel.as_posix()}"] = p
    files["lessonlib/exercises/__init__.py"] = PACKAGE / "exercises" / "__init__.py"
    files["_lessonlib_worker.py"] = Path(worker.__file__)
    return files


def package_version(name: str) -> str:
    """An installed distribution's version, read without importing it (``import jax`` costs 1 s)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


def library_digest() -> str:
    """A digest of the library copy the sandbox imports (``_runtime_files``), Python, JAX and
    jaxlib: what the compile cache's marker and the stored references are keyed on."""
    versions = f"{sys.version}|jax {package_version('jax')}|jaxlib {package_version('jaxlib')}"
    h = hashlib.sha256(versions.encode())
    for rel, src in sorted(_runtime_files().items()):
        h.update(rel.encode() + b"\0" + src.read_bytes())
    return h.hexdigest()[:16]


def _safe_sandbox_path(p: Path) -> bool:
    return p.resolve() not in (Path("/"), Path("/tmp"), Path("/usr"), Path("/proc"))


class Sandbox:
    """Runs jobs in isolated processes. One instance per grading run; ``close()`` removes its
    temporary folders. ``hide`` lists folders the learner's code must not see (course folder,
    submissions, gradebook folder); they are hidden where namespaces are available."""

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        hide: list[Path] = (),
        mode: str | None = None,
        compile_cache: Path | None = None,
    ):
        self.limits = limits or Limits()
        self.mode = mode or isolation_mode()
        self.compile_cache = compile_cache
        self.base = Path(tempfile.mkdtemp(prefix="lessonlib-grade-"))
        os.chmod(self.base, 0o711)  # the sandbox user can enter its own folder but list none
        self.runtime = self.base / "runtime"
        for rel, src in _runtime_files().items():
            dest = self.runtime / "lib" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
        for d in [self.runtime, *self.runtime.rglob("*")]:
            os.chmod(d, 0o755 if d.is_dir() else 0o644)
        self.site = Path(sysconfig.get_paths()["purelib"])
        home = Path(os.path.expanduser("~"))
        # Always hidden: the checkout lessonlib is imported from (it holds the chapter specs with
        # references and hidden cases, the source notebooks, .git), the grader's home and its cache
        # folder (the compile cache, copied into each job before it starts, and the stored
        # references, see references.py).
        from lessonlib.cache import cache_dir

        always = [home.resolve(), PACKAGE.parent, cache_dir().resolve()]
        hidden = [Path(h).resolve() for h in hide if h] + always
        self.hide = sorted(
            {h for h in hidden if _safe_sandbox_path(h) and not self.base.is_relative_to(h)}
        )
        prefix = Path(sys.base_prefix).resolve()
        self.keep = [prefix] if any(prefix.is_relative_to(h) for h in self.hide) else []
        if PACKAGE.is_relative_to(self.site):  # a non-editable install: hide it in the bound copy
            self.hide.append(Path("/tmp/site") / PACKAGE.relative_to(self.site))
        self.python = (
            str(Path(sys._base_executable).resolve())  # type: ignore[attr-defined]
            if self.mode in ("root-namespaces", "user-namespaces")
            else sys.executable
        )
        self._early: tuple[Path, subprocess.Popen, float] | None = None  # see start_early

    def close(self) -> None:
        self._drop_early()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- one job

    def check(self, *, imports: bool = False) -> None:
        """Start the sandbox once with nothing to grade (the preflight); SandboxError naming the
        failing step when it cannot. With ``imports``, it also imports JAX and lessonlib there,
        as every submission's start does (about 1.5 s more)."""
        scratch = self.new_scratch()
        try:
            os.chmod(scratch, 0o700)
            self._own(scratch)
            plan = {"check": "imports" if imports else "start"}
            proc = self._launch(scratch, "check", plan, stdout=False)
            out = scratch / "out-check"
            deadline = time.monotonic() + self.limits.startup_timeout
            try:
                while proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.01)
                late = proc.poll() is None
            finally:
                _kill(proc)
            if (out / "ready.json").exists():
                return
            tail = _tail(scratch / "stderr-check")
            why = f"timeout: not started within {self.limits.startup_timeout:g} s" if late else ""
            why = why or _exit_reason(proc.returncode)
            raise SandboxError(self.mode, self._failed_step(tail, out), self._detail(why, tail))
        finally:
            self._remove_scratch(scratch)

    def _launch(
        self, scratch: Path, tag: str, plan: dict[str, Any], *, stdout: bool = True
    ) -> subprocess.Popen:
        """Start the worker in ``scratch`` on ``plan`` (written to ``plan-<tag>.json``), with its
        output folder ``out-<tag>`` and its output in ``stdout-<tag>`` / ``stderr-<tag>``. A
        relaunch follows learner code that could write in ``scratch``: whatever it left under
        these names (a link out of the sandbox, a folder) is removed, never followed."""
        out = _fresh(scratch / f"out-{tag}")
        out.mkdir()
        self._own(out)
        plan_name = f"plan-{tag}.json"
        with _new_file(scratch / plan_name, "w", encoding="utf-8") as f:
            json.dump({**plan, "out": out.name}, f)
        cmd, cwd = self._command(scratch, plan_name)
        with _new_file(scratch / f"stderr-{tag}", "wb") as se:
            if not stdout:
                return self._popen(cmd, cwd, subprocess.DEVNULL, se)
            with _new_file(scratch / f"stdout-{tag}", "wb") as so:
                return self._popen(cmd, cwd, so, se)

    def _popen(self, cmd: list[str], cwd: str, stdout, stderr) -> subprocess.Popen:
        try:
            return subprocess.Popen(
                cmd,
                cwd=cwd,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        except OSError as e:  # no such program, not executable
            raise SandboxError(self.mode, f"start {cmd[0]}", f"{type(e).__name__}: {e}") from None

    @staticmethod
    def _detail(why: str, stderr: str) -> str:
        """What went wrong, for a SandboxError: the reason and stderr's end, without step marks."""
        lines = [ln for ln in stderr.splitlines() if STEP_MARK not in ln and ln.strip()]
        return f"{why}; {' / '.join(lines)[-800:]}".strip("; ")

    def _failed_step(self, stderr: str, out: Path) -> str:
        """Which step of the sandbox's start failed, from its stderr and the files it wrote."""
        marks = [ln.split(STEP_MARK, 1)[1].strip() for ln in stderr.splitlines() if STEP_MARK in ln]
        if marks:
            return marks[-1]
        if "unshare:" in stderr:
            user = "--user --map-root-user " if self.mode == "user-namespaces" else ""
            return f"create the Linux namespaces (unshare {user}--mount --net --pid --mount-proc)"
        if "setpriv:" in stderr and "failed to execute" not in stderr:
            if self.mode == "user-namespaces":
                return "drop its capabilities (setpriv)"
            return f"switch to the user nobody ({NOBODY}) without capabilities (setpriv)"
        if not (out / "started.json").exists():
            return f"start Python ({self.python} -I -S) and the grader's worker"
        return "import JAX and lessonlib inside the sandbox"

    def new_scratch(self) -> Path:
        scratch = Path(tempfile.mkdtemp(dir=self.base, prefix="s-"))
        return scratch

    def _own(self, path: Path) -> None:
        if self.mode in ("root", "root-namespaces"):
            os.chown(path, NOBODY, NOBODY)

    def _command(self, scratch: Path, plan_name: str) -> tuple[list[str], str]:
        """The command line for one launch, and its working directory."""
        namespaces = self.mode in ("root-namespaces", "user-namespaces")
        lib, site = (
            ("/tmp/runtime/lib", "/tmp/site")
            if namespaces
            else (str(self.runtime / "lib"), str(self.site))
        )
        cmd = [self.python, "-I", "-S", "-c", _BOOT, plan_name, lib, site, self._rlimits()]
        if self.mode in ("root", "root-namespaces"):
            drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
            cmd = drop + [*_NO_CAPS, "--", *cmd]
        elif self.mode == "user-namespaces":  # root of its namespace, but without capabilities:
            cmd = ["setpriv", *_NO_CAPS, "--", *cmd]  # it could unmount what hides the secrets
        if not namespaces:
            return cmd, str(scratch)
        ns = ["unshare", "--mount", "--net", "--pid", "--fork", "--mount-proc"]
        ns += ["--propagation", "private"]
        if self.mode == "user-namespaces":
            ns[1:1] = ["--user", "--map-root-user"]
        newtmp = scratch.parent / (scratch.name + "-ns")
        newtmp.mkdir(exist_ok=True)
        script = ns + ["sh", "-c", _NS_SCRIPT, "sh", str(newtmp), str(scratch)]
        script += [str(self.runtime), str(self.site), *map(str, self.hide), "--"]
        script += [*map(str, self.keep), "--", *cmd]
        return script, "/"

    def _env(self) -> dict[str, str]:
        home = "/tmp/scratch" if self.mode.endswith("namespaces") else "."
        return {
            "PATH": "/usr/bin:/bin",
            "HOME": home,
            "LANG": "C.UTF-8",
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": f"{home}/.mpl",
            "JAX_PLATFORMS": "cpu",
            "OMP_NUM_THREADS": "1",
            "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
        }

    def _rlimits(self) -> str:
        """``RLIMIT_X=value,...`` for the boot code: address space, CPU seconds (all threads),
        largest file (output floods), no core dumps, open files; a process count as nobody."""
        lim = self.limits
        values = {
            "RLIMIT_AS": lim.memory_mb << 20,
            "RLIMIT_CPU": int(lim.notebook_timeout * 2) + 10,
            "RLIMIT_FSIZE": lim.output_mb << 20,
            "RLIMIT_CORE": 0,
            "RLIMIT_NOFILE": 256,
        }
        if self.mode in ("root", "root-namespaces"):
            values["RLIMIT_NPROC"] = 512
        return ",".join(f"{k}={v}" for k, v in values.items())

    def runtime_digest(self) -> str:
        """A digest of what the sandbox runs: the library copy, Python, JAX and the environment."""
        env = f"{library_digest()}|{sorted(self._env().items())}"
        return hashlib.sha256(env.encode()).hexdigest()[:16]

    def warm_marker(self, name: str, source: bytes) -> Path | None:
        """The compile cache's marker for a chapter ``name`` with source notebook bytes
        ``source``: present once its solutions ran with write access (``grader.
        warm_compile_cache``) under this library, JAX and environment. None without a cache."""
        if self.compile_cache is None:
            return None
        digest = hashlib.sha256(source + self.runtime_digest().encode()).hexdigest()[:16]
        return self.compile_cache / f".warm-{name}-{digest}"

    def start_early(self) -> bool:
        """Launch the next ``run_job``'s process now, before its job is built: Python, JAX and
        lessonlib start (about 1.5 s) while the grader builds the job and prepares its judges,
        and the process then waits for the job (``worker._await``). Its scratch folder and its
        private copy of the compile cache are made now, so call it once the cache is filled (not
        for a ``save_cache`` run, which starts its own). False (and nothing started) when it
        cannot start; ``run_job`` then launches as usual and reports why it cannot."""
        if self._early is not None:
            return True
        scratch = self.new_scratch()
        try:
            if self.compile_cache is not None:
                self._copy_cache(self.compile_cache, scratch / "xla-cache")
            os.chmod(scratch, 0o700)
            self._own(scratch)
            plan: dict[str, Any] = {"await": "go-1.json"}
            if self.compile_cache is not None:
                plan["xla_cache"] = {"dir": "xla-cache", "write": False}
            proc = self._launch(scratch, "1", plan)
        except (OSError, SandboxError):
            self._remove_scratch(scratch)
            return False
        self._early = (scratch, proc, time.monotonic())
        return True

    def _drop_early(self) -> None:
        if self._early is not None:
            scratch, proc, _ = self._early
            self._early = None
            _kill(proc)
            self._remove_scratch(scratch)

    @staticmethod
    def _remove_scratch(scratch: Path) -> None:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(scratch.parent / (scratch.name + "-ns"), ignore_errors=True)

    def run_job(
        self, job: dict, arrays: dict[str, np.ndarray], *, save_cache: bool = False
    ) -> JobResult:
        """Execute ``job`` (cells + exercises, see worker.py) in fresh processes until every unit
        has a result, crashed or ran out of time.

        With a ``compile_cache``, the job starts from a private copy of it; ``save_cache=True``
        (only for trusted jobs) copies the programs it compiled back into the cache. A process
        from ``start_early`` runs the job's first launch (not for ``save_cache``)."""
        lim = self.limits
        if save_cache:
            self._drop_early()  # its copy of the cache predates this run
        early, self._early = self._early, None
        scratch = early[0] if early else self.new_scratch()
        try:
            with open(scratch / "job.json", "w", encoding="utf-8") as f:
                json.dump(job, f)
            with open(scratch / "inputs.npz", "wb") as f:
                np.savez(f, **arrays)
            for p in (scratch / "job.json", scratch / "inputs.npz"):
                os.chmod(p, 0o644)
            if self.compile_cache is not None and early is None:
                self._copy_cache(self.compile_cache, scratch / "xla-cache")
                if save_cache:
                    self._own(scratch / "xla-cache")
            os.chmod(scratch, 0o700)
            self._own(scratch)
            result = self._run(scratch, job, lim, save_cache=save_cache, early=early)
            if save_cache and self.compile_cache is not None:
                try:
                    self._copy_cache(scratch / "xla-cache", self.compile_cache)
                except OSError:  # a full or read-only disk costs speed, never a grade
                    pass
            return result
        finally:
            if early is not None:
                _kill(early[1])
            self._remove_scratch(scratch)

    @staticmethod
    def _copy_cache(src: Path, dest: Path) -> None:
        """Copy the regular files of a compile cache that ``dest`` lacks (links and odd names are
        skipped; a copy appears under its name only when complete)."""
        dest.mkdir(parents=True, exist_ok=True)
        os.chmod(dest, 0o755)
        try:
            names = set(os.listdir(src)) - set(os.listdir(dest))
        except OSError:  # no cache yet, or one we may not read: nothing to copy
            return
        for name in sorted(names):
            if not CACHE_NAME.fullmatch(name) or name.startswith("."):
                continue
            data = _open_regular(src, name)
            if data is None:
                continue
            with atomic_write(dest / name) as f:  # its temporary name starts with "." (skipped)
                f.write(data)
                os.fchmod(f.fileno(), 0o644)

    def _run(
        self,
        scratch: Path,
        job: dict,
        lim: Limits,
        *,
        save_cache: bool = False,
        early: tuple[Path, subprocess.Popen, float] | None = None,
    ) -> JobResult:
        cells = list(range(len(job["cells"])))
        remaining = list(job["exercises"])
        results: dict[str, UnitResult] = {}
        cell_errors: dict[int, str] = {}
        skipped_cells: set[int] = set()
        notebook_deadline = time.monotonic() + lim.notebook_timeout
        launches, stderr_tail = 0, ""
        while remaining:
            launches += 1
            run_cells = [c for c in cells if c not in skipped_cells]
            out = scratch / f"out-{launches}"
            units = ["ready"] + [f"cell-{c}" for c in run_cells] + list(remaining)
            limits = [lim.startup_timeout] + [lim.cell_timeout] * len(run_cells)
            limits += [lim.exercise_timeout] * len(remaining)
            if early is not None and launches == 1:  # started already: hand it its units
                with atomic_write(scratch / "go-1.json", "w", encoding="utf-8") as f:
                    json.dump({"cells": run_cells, "exercises": remaining}, f)
                    os.fchmod(f.fileno(), 0o644)
                proc, unit_start = early[1], early[2]
            else:
                plan = {"cells": run_cells, "exercises": remaining}
                if self.compile_cache is not None:
                    plan["xla_cache"] = {"dir": "xla-cache", "write": save_cache}
                proc = self._launch(scratch, str(launches), plan)
                unit_start = time.monotonic()
            idx, reason = 0, None
            try:
                while True:
                    while idx < len(units) and (out / f"{units[idx]}.json").exists():
                        idx, unit_start = idx + 1, time.monotonic()
                    code = proc.poll()
                    if code is not None:
                        while idx < len(units) and (out / f"{units[idx]}.json").exists():
                            idx += 1
                        if idx < len(units):
                            reason = _exit_reason(code)
                        break
                    now = time.monotonic()
                    if idx >= len(units):  # every unit written: nothing more to wait for
                        break
                    if now - unit_start > limits[idx]:
                        reason = f"timeout: over the {limits[idx]:g} s limit"
                        break
                    if now > notebook_deadline:
                        reason = f"timeout: over the notebook's {lim.notebook_timeout:g} s limit"
                        break
                    time.sleep(0.01)
            finally:
                _kill(proc)
            stderr_tail = _tail(scratch / f"stderr-{launches}")
            # read results only once the process is gone
            for k in list(remaining):
                res = _read_unit(out, k)
                if res is not None:
                    results[k] = res
                    remaining.remove(k)
            for c in run_cells:
                info = _read_json(out, f"cell-{c}")
                if info and isinstance(info.get("error"), str):
                    cell_errors.setdefault(c, info["error"])
            if not remaining:
                break
            failing = units[idx] if idx < len(units) else None
            status = "timeout" if reason and reason.startswith("timeout") else "error"
            reason = reason or "the sandbox stopped without finishing"
            if failing == "ready" and launches == 1:  # before any learner code: not theirs
                step = self._failed_step(stderr_tail, out)
                raise SandboxError(self.mode, step, self._detail(reason or "", stderr_tail))
            if failing == "ready" or failing is None:  # after their code ran, or unreadable results
                msg = f"the sandbox stopped early ({reason}); {stderr_tail[-300:]}".strip()
                for k in remaining:
                    results[k] = UnitResult(status="error", message=msg)
                break
            if failing.startswith("cell-"):
                c = int(failing.split("-")[1])
                skipped_cells.add(c)
                cell_errors[c] = f"{reason}"
            else:
                results[failing] = UnitResult(status=status, message=reason)
                remaining.remove(failing)
            if time.monotonic() > notebook_deadline:
                for k in remaining:
                    results[k] = UnitResult(
                        status="timeout",
                        message=f"timeout: over the notebook's {lim.notebook_timeout:g} s limit",
                    )
                break
        return JobResult(results, cell_errors, launches, stderr_tail)


def _exit_reason(code: int) -> str:
    if code < 0 or code > 128:
        signum = -code if code < 0 else code - 128
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = str(signum)
        hints = {
            "SIGSEGV": "segmentation fault",
            "SIGKILL": "killed (memory or CPU limit)",
            "SIGXCPU": "CPU time limit",
            "SIGXFSZ": "output size limit",
        }
        return f"the process died ({name}: {hints.get(name, 'signal')})"
    return f"the process exited with code {code} before finishing"


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _fresh(path: Path) -> Path:
    """Remove whatever is at ``path`` (a file, a link, a folder), following no link; return it."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
    return path


def _new_file(path: Path, mode: str, **kwargs):
    """``open(path, mode)`` on a new file (mode 0o644, readable in the sandbox) created where
    nothing is left, never through a link: ``O_CREAT | O_EXCL | O_NOFOLLOW``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    fd = os.open(_fresh(path), flags, 0o644)
    os.fchmod(fd, 0o644)  # whatever the umask
    return open(fd, mode, **kwargs)


def _tail(path: Path, n: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - n))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _open_regular(directory: Path, name: str) -> bytes | None:
    """Read a file the sandbox wrote without following links it may have planted."""
    try:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dfd)
    except OSError:
        return None
    finally:
        os.close(dfd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_RESULT_BYTES:
            return None
        with os.fdopen(fd, "rb") as f:
            fd = -1
            return f.read(MAX_RESULT_BYTES + 1)
    finally:
        if fd >= 0:
            os.close(fd)


def _read_json(directory: Path, name: str) -> dict | None:
    data = _open_regular(directory, f"{name}.json")
    if data is None:
        return None
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def _read_unit(out: Path, key: str) -> UnitResult | None:
    info = _read_json(out, key)
    if info is None:
        return None
    outcomes = info.get("outcomes")
    if not isinstance(outcomes, list):
        return UnitResult(status="error", message="the sandbox returned no outcomes")
    arrays: dict[str, Any] = {}
    raw = _open_regular(out, f"{key}.npz")
    if raw is not None:
        import io

        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception:  # a malformed file is the learner's problem, reported as an error
            return UnitResult(status="error", message="the sandbox returned unreadable arrays")
    return UnitResult(outcomes=outcomes, arrays=arrays)
