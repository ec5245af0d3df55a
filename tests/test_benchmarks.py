"""The benchmarks run (``--quick``) and print their figures; no thresholds, figures are not tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

try:
    import uvloop  # noqa: F401

    LOOPS = ["asyncio", "uvloop"]
except ImportError:
    LOOPS = ["asyncio"]


@pytest.mark.parametrize("loop", LOOPS)
def test_local_messaging_quick_runs(loop: str) -> None:
    script = str(ROOT / "benchmarks" / "local_messaging.py")
    out = subprocess.run(
        [sys.executable, script, "--quick", "--no-pykka", "--cpu", "-1", "--loop", loop],
        capture_output=True,
        text=True,
        timeout=50,
        check=True,
    ).stdout
    assert f"loop={loop}" in out
    assert "sender -> receiver" in out
    assert "ping-pong (tell)" in out
    assert "targets" in out


def test_ws_memory_runs_and_prints_the_allocations_per_connection() -> None:
    script = str(ROOT / "benchmarks" / "ws_memory.py")
    out = subprocess.run(
        [sys.executable, script, "100", "--top", "5"], capture_output=True, text=True, timeout=90, check=True
    ).stdout
    assert "100 idle connections: traced" in out
    assert "caused by" in out
