"""Talking to node processes started in network namespaces of our own (the partition tests)."""

from __future__ import annotations

import subprocess


def sh(*cmd: str) -> None:
    """Run one setup command (``ip ...``); raises if it fails or takes over 10 s."""
    subprocess.run(cmd, check=True, capture_output=True, timeout=10)


def say(p: subprocess.Popen[str], text: str) -> None:
    """One line to the process's stdin."""
    assert p.stdin is not None
    p.stdin.write(text + "\n")
    p.stdin.flush()


def hear(p: subprocess.Popen[str]) -> str:
    """The process's next stdout line, stripped."""
    assert p.stdout is not None
    return p.stdout.readline().strip()  # each node answers within seconds or exits
