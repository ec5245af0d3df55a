"""benchmarks/c/chatmembers.c: the C members of chat_fanout.py's throughput mode, against the real chat.

The chat runs as chat_fanout.py runs it (``--chat-node``: a node process alone);
the members (C, and the Python ones for the same protocol) connect to it, join one
room, obey ``step`` / ``quit`` on stdin and answer with the JSON the driver reads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from c_build import BuildError, build  # noqa: E402
from proc_lines import Lines  # noqa: E402

SCRIPT = str(ROOT / "benchmarks" / "chat_fanout.py")
FIELDS = {"lines", "complete", "sent_for", "span", "p50", "p99", "last_p50", "last_p99", "lost"}
MEMBERS, SENDERS = 20, 3


@pytest.fixture(scope="module")
def binary() -> Path:
    try:
        return build("chatmembers")
    except BuildError as e:
        if "no C compiler" in str(e):
            pytest.skip(str(e))
        raise


@pytest.fixture(scope="module")
def chat_url() -> Iterator[str]:
    """The chat on one node, as the throughput mode starts it; its WebSocket URL."""
    node = subprocess.Popen(
        [sys.executable, SCRIPT, "--chat-node", "chatmembers@localhost", "0", "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        lines = Lines(node)
        port = int(lines.readline(30))
        assert lines.readline(30) == "connected"
        yield f"ws://127.0.0.1:{port}/ws"
    finally:
        assert node.stdin is not None
        node.stdin.close()  # the node stops when its stdin closes
        try:
            node.wait(20)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()
        assert node.stdout is not None
        node.stdout.close()


def _start(cmd: list[str]) -> tuple[subprocess.Popen[bytes], Lines]:
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, Lines(proc)


def _write(proc: subprocess.Popen[bytes], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line.encode() + b"\n")
    proc.stdin.flush()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def _step(proc: subprocess.Popen[bytes], lines: Lines, index: int, rate: float, seconds: float) -> dict[str, float]:
    _write(proc, f"step {index} {rate:g} {seconds:g} 5")
    assert lines.readline(10) == "go"
    assert lines.readline(10) == "sent"
    result: dict[str, float] = json.loads(lines.readline(30))
    return result


@pytest.mark.parametrize("client", ["c", "python"])
def test_members_answer_each_step_with_every_line_at_every_member_and_quit_ends_them(
    client: str, binary: Path, chat_url: str
) -> None:
    """C and Python members alike: ready once joined; per step go, sent and one JSON line with the
    same fields (every line at every member, none lost, latencies in order); quit ends them (exit 0)."""
    if client == "c":
        cmd = [str(binary), chat_url, str(MEMBERS), "tp", str(SENDERS), "-deadline", "120"]
    else:
        cmd = [sys.executable, SCRIPT, "--member-clients", chat_url, str(MEMBERS), "tp", str(SENDERS)]
    proc, lines = _start(cmd)
    try:
        assert lines.readline(60) == "ready"
        for index, (rate, seconds) in enumerate([(40.0, 0.5), (200.0, 0.25)]):  # two steps: counts start afresh
            r = _step(proc, lines, index, rate, seconds)
            assert set(r) == FIELDS, r
            assert r["lines"] == round(rate * seconds)
            assert r["complete"] == r["lines"] and r["lost"] == 0, r
            assert 0 < r["p50"] <= r["p99"] < 5000 and 0 < r["last_p50"] <= r["last_p99"] < 5000, r
            assert seconds * 0.8 < r["sent_for"] < seconds + 2 and r["sent_for"] <= r["span"] < 10, r
        _write(proc, "quit")
        assert proc.wait(20) == 0
    finally:
        _stop(proc)


def test_c_members_count_only_the_current_step(binary: Path, chat_url: str) -> None:
    """A step whose index is reused (INDEX is two digits: the driver sends i % 100) counts its own
    lines only: the previous step's are over before it starts, so nothing is counted twice."""
    proc, lines = _start([str(binary), chat_url, "5", "tp", "1", "-deadline", "60"])
    try:
        assert lines.readline(60) == "ready"
        for _ in range(2):
            r = _step(proc, lines, 7, 20.0, 0.5)
            assert (r["lines"], r["complete"], r["lost"]) == (10, 10, 0), r
        _write(proc, "quit")
        assert proc.wait(20) == 0
    finally:
        _stop(proc)


def test_c_members_exit_at_their_deadline_whatever_they_wait_for(binary: Path, chat_url: str) -> None:
    """-deadline bounds the run: members left waiting for a command exit (status 2) once it passes."""
    proc, lines = _start([str(binary), chat_url, "5", "tp", "1", "-deadline", "2"])
    try:
        assert lines.readline(30) == "ready"
        assert proc.wait(15) == 2
        assert proc.stderr is not None and b"deadline" in proc.stderr.read()
    finally:
        _stop(proc)


def test_c_members_refuse_a_server_that_does_not_upgrade(binary: Path, chat_url: str) -> None:
    """A 404 to the upgrade (a wrong path) is a failed setup: exit 1, no "ready"."""
    proc, lines = _start([str(binary), chat_url.replace("/ws", "/nowhere"), "3", "tp", "1", "-deadline", "30"])
    try:
        with pytest.raises(EOFError):
            lines.readline(30)
        assert proc.wait(10) == 1
        assert proc.stderr is not None and b"handshake refused" in proc.stderr.read()
    finally:
        _stop(proc)
