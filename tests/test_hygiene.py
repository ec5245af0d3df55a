"""The suite itself fails when something breaks quietly: each test here runs a small test
file under this repository's conftest.py and pytest settings, in a child pytest, and
checks that it fails (or passes) as it should."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

pytestmark = pytest.mark.timeout(120)


def run_pytest(
    tmp_path: Path, source: str, *, ci: bool = False, pythonpath: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs ``source`` as a test file beside a copy of conftest.py, with pyproject's settings."""
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(source))
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS", "ERGOPY_TEST_LOOPS")}
    if ci:
        env["CI"] = "true"
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    cmd = [sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"), "--rootdir", str(tmp_path)]
    cmd += ["-p", "no:cacheprovider", "-q", str(tmp_path / "test_inner.py")]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=110)


def outcome(r: subprocess.CompletedProcess[str]) -> str:
    """pytest's last summary line, e.g. ``1 failed, 1 passed in 0.1s`` without the time."""
    lines = [line for line in r.stdout.splitlines() if line.strip()]
    return re.sub(r" in [\d.]+s.*$", "", lines[-1].strip("= ")) if lines else r.stderr


def test_a_task_destroyed_while_pending_fails_the_test(tmp_path: Path) -> None:
    r = run_pytest(
        tmp_path,
        """
        import asyncio, gc

        async def wait_forever() -> None:
            await asyncio.get_running_loop().create_future()

        async def test_drops_a_pending_task() -> None:
            task = asyncio.get_running_loop().create_task(wait_forever())
            await asyncio.sleep(0)  # the task now waits on a future only it references
            del task
            gc.collect()
        """,
    )
    assert r.returncode == 1, r.stdout
    assert "Task was destroyed but it is pending" in r.stdout
    assert outcome(r) == "2 passed, 2 errors", r.stdout  # on both loops, as a teardown error


def test_a_task_exception_never_retrieved_fails_the_test(tmp_path: Path) -> None:
    r = run_pytest(
        tmp_path,
        """
        import asyncio, gc

        async def fail() -> None:
            raise ValueError("nobody reads this")

        async def test_drops_a_failed_task() -> None:
            task = asyncio.get_running_loop().create_task(fail())
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            assert task.done()
            del task
            gc.collect()
        """,
    )
    assert r.returncode == 1, r.stdout
    assert "Task exception was never retrieved" in r.stdout
    assert outcome(r) == "2 passed, 2 errors", r.stdout


def test_an_unawaited_coroutine_fails_the_test(tmp_path: Path) -> None:
    r = run_pytest(
        tmp_path,
        """
        async def work() -> None:
            pass

        def test_forgets_to_await() -> None:
            work()
        """,
    )
    assert r.returncode == 1, r.stdout
    assert "coroutine 'work' was never awaited" in r.stdout
    assert outcome(r) == "1 failed", r.stdout


def test_an_exception_in_a_thread_fails_the_test(tmp_path: Path) -> None:
    r = run_pytest(
        tmp_path,
        """
        import threading

        def boom() -> None:
            raise RuntimeError("lost in a thread")

        def test_thread_raises() -> None:
            t = threading.Thread(target=boom)
            t.start()
            t.join()
        """,
    )
    assert r.returncode == 1, r.stdout
    assert "lost in a thread" in r.stdout
    assert outcome(r) == "1 failed", r.stdout


CLEAN = """
async def test_runs() -> None:
    pass
"""


def _without_uvloop(tmp_path: Path) -> Path:
    hide = tmp_path / "hide"
    (hide / "uvloop").mkdir(parents=True)
    (hide / "uvloop" / "__init__.py").write_text("raise ImportError('uvloop hidden by the test')\n")
    return hide


def test_in_ci_a_missing_uvloop_fails_the_run(tmp_path: Path) -> None:
    r = run_pytest(tmp_path, CLEAN, ci=True, pythonpath=_without_uvloop(tmp_path))
    assert r.returncode != 0
    assert "CI is set but uvloop is not importable" in r.stdout + r.stderr


def test_outside_ci_a_missing_uvloop_runs_the_asyncio_loop_only(tmp_path: Path) -> None:
    r = run_pytest(tmp_path, CLEAN, pythonpath=_without_uvloop(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert outcome(r) == "1 passed"


def test_in_ci_both_loops_run(tmp_path: Path) -> None:
    r = run_pytest(tmp_path, CLEAN, ci=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert outcome(r) == "2 passed"


PROPERTY = """
from hypothesis import given, settings, strategies as st

def test_profile() -> None:
    print("derandomize", settings.default.derandomize, "print_blob", settings.default.print_blob)
    assert settings.default.derandomize and settings.default.print_blob

@given(st.integers(min_value=0, max_value=10**9))
@settings(database=None)
def test_fails_on_big_numbers(n: int) -> None:
    assert n < 1000
"""


def _seed_section(r: subprocess.CompletedProcess[str]) -> str:
    m = re.search(r"hypothesis seed -+\n(.*)\n", r.stdout)
    assert m, r.stdout
    return m.group(1)


def test_in_ci_hypothesis_is_derandomized_and_prints_its_seed_and_blob(tmp_path: Path) -> None:
    first = run_pytest(tmp_path, PROPERTY, ci=True)
    assert outcome(first) == "1 failed, 1 passed", first.stdout
    assert "@reproduce_failure(" in first.stdout  # print_blob
    seed = _seed_section(first)
    assert re.fullmatch(r"derandomized \(profile 'ci'\): seed \d+, the same on every run", seed)
    again = run_pytest(tmp_path, PROPERTY, ci=True)
    assert _seed_section(again) == seed


def test_outside_ci_a_failing_property_prints_the_seed_to_rerun_it(tmp_path: Path) -> None:
    r = run_pytest(tmp_path, PROPERTY)
    assert outcome(r) == "2 failed", r.stdout  # the profile test too: not derandomized here
    m = re.search(r"seed (\d+): rerun with --hypothesis-seed=(\d+)", _seed_section(r))
    assert m and m.group(1) == m.group(2), r.stdout
