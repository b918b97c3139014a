"""Strict JAX for every test: silent dtype or rank promotion is a bug (see equinox's conftest).

Also the session's throwaway PostgreSQL server (``postgres_url``), shared by the gradebook tests
and chapter 08's shared optuna study.
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import jax
import pytest

from lessonlib.cache import enable_compile_cache

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

# Programs compiled by one test run are loaded by the next one and by the notebooks' run
# (the course's compile cache, as a chapter turns it on; LESSONLIB_COMPILE_CACHE=0 turns it off).
enable_compile_cache()


# --------------------------------------------------------------------------- PostgreSQL


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user(cmd: list[str]) -> list[str]:
    """initdb refuses to run as root: run the server as nobody when we are root."""
    if os.geteuid() == 0:
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", *cmd]
    return cmd


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL cluster on a loopback port, stopped after the session."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.fail(
            "PostgreSQL is not installed, so the gradebook cannot be tested against it: install "
            "it with `sudo apt-get install -y postgresql` (or run `make test` as root, which runs "
            "tools/system_deps.sh)"
        )
    bindir = Path(bins[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="lessonlib-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    os.chmod(base, 0o755)
    if os.geteuid() == 0:
        for p in (base, sock):
            os.chown(p, 65534, 65534)
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    subprocess.run(
        _as_user(
            [str(bindir / "initdb"), "-D", str(data), "-U", "grader", "--auth=trust", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
        env=env,
    )
    log = base / "server.log"
    if os.geteuid() == 0:
        log.touch()
        os.chown(log, 65534, 65534)
    opts = f"-p {port} -k {sock} -h 127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_user(
            [str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(log), "-w", "start"]
        ),
        check=True,
        capture_output=True,
        env=env,
    )
    url = f"postgresql://grader@127.0.0.1:{port}/postgres"
    try:
        import psycopg2

        for _ in range(50):
            try:
                psycopg2.connect(url).close()
                break
            except psycopg2.OperationalError:
                time.sleep(0.2)
        yield url
    finally:
        subprocess.run(
            _as_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            env=env,
        )
        shutil.rmtree(base, ignore_errors=True)


_SLOW = Path(__file__).with_name("slow.txt")


def pytest_collection_modifyitems(config, items):
    """Mark the tests listed in tests/slow.txt (measured, not guessed) as ``slow``.

    ``make test``/``make check`` run ``pytest -n auto --dist loadfile``: a file's tests stay on one
    worker, so its module fixtures (a trained run, a graded corpus) are computed once. (Not
    ``loadgroup``: pytest-xdist 3.8 writes the group into ``item._nodeid``, which pytest 9.2 no
    longer reads, so every test became its own unit and module fixtures were built twice.)"""
    slow = {
        line.strip()
        for line in _SLOW.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for item in items:
        if item.nodeid in slow:
            item.add_marker(pytest.mark.slow)
