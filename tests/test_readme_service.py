"""The README's WebSocket service survives the race every real application has (issue 9 §1).

1,000 clients each send one line and close at once, so most echoes are sent to a
connection that has just gone. Each of those sends is a dead letter (dropped and
counted), not an exception that kills the worker: the service, run as the README
prints it, keeps both workers and still echoes afterwards.

The service is the README's first ``python`` block, saved to a file and started with
the interpreter; the only change is its port (9898 becomes a free one). The clients
are an independent implementation (the ``websockets`` package), at most
``CONCURRENCY`` at a time, all within ``STORM_TIMEOUT``.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import websockets

README = Path(__file__).resolve().parent.parent / "README.md"
README_PORT = 9898
CLIENTS = 1000
CONCURRENCY = 50  # clients open at once
STORM_TIMEOUT = 120.0  # seconds for all of them, on two shared cores
TIMEOUT = 20.0  # one start, one echo, one stop

pytestmark = pytest.mark.timeout(300)


def service_block() -> str:
    """The README's service: its first ``python`` block, as printed."""
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)
    service = blocks[0]
    assert "ergopy.run(main)" in service and 'process_pool=["w1", "w2"]' in service
    assert service.count(str(README_PORT)) == 1
    return service


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Returns once 127.0.0.1:port accepts; fails if the service ends or TIMEOUT passes."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:  # bounded: a connect attempt every 50 ms
        if proc.poll() is not None:
            pytest.fail(f"echo.py exited with {proc.returncode} before listening: {log.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"echo.py is not listening on {port} after {TIMEOUT} s")


async def send_one_line_and_close(url: str, n: int, concurrency: int) -> list[str]:
    """``n`` clients, ``concurrency`` at a time: connect, send one line, close at once.
    Returns what went wrong, one line per client that failed."""
    gate = asyncio.Semaphore(concurrency)
    failures: list[str] = []

    async def client(i: int) -> None:
        async with gate:
            try:
                async with websockets.connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
                    await ws.send(f"line {i}")
            except (OSError, TimeoutError, websockets.WebSocketException) as e:
                failures.append(f"client {i}: {e!r}")

    async with asyncio.timeout(STORM_TIMEOUT):
        await asyncio.gather(*(client(i) for i in range(n)))
    return failures


async def echoes(url: str, rounds: int) -> list[str]:
    """``rounds`` clients one after another (round-robin: each worker several times), each echoed."""
    got = []
    for i in range(rounds):
        async with websockets.connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
            await ws.send(f"after {i}")
            reply = await asyncio.wait_for(ws.recv(), TIMEOUT)
            assert isinstance(reply, str)
            got.append(reply)
    return got


def test_the_readme_service_survives_1000_clients_that_send_and_close_at_once(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "echo.py").write_text(service_block().replace(str(README_PORT), str(port)))
    log = tmp_path / "echo.log"  # a file, not a pipe: 2,000 log lines must never block the service
    with log.open("wb") as out:
        service = subprocess.Popen([sys.executable, "echo.py"], cwd=tmp_path, stdout=out, stderr=out)
    try:
        wait_listening(port, service, log)
        url = f"ws://127.0.0.1:{port}/ws"
        failures = asyncio.run(send_one_line_and_close(url, CLIENTS, CONCURRENCY))
        assert not failures, f"{len(failures)} of {CLIENTS} clients failed, first: {failures[:3]}"
        assert service.poll() is None, f"the service died: {log.read_text()[-2000:]}"
        # both workers are still there: four connections in a row reach each twice
        assert asyncio.run(echoes(url, 4)) == [f"echo: after {i}" for i in range(4)]
        service.send_signal(signal.SIGINT)  # Ctrl-C
        service.wait(timeout=TIMEOUT)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
    text = log.read_text()
    assert service.returncode == 0, text[-2000:]
    assert "Traceback" not in text, text[text.index("Traceback") - 500 :][:3000]
    assert "[error]" not in text, [line for line in text.splitlines() if "[error]" in line][:5]
    assert text.count("connected ") >= CLIENTS + 4  # every client reached a worker
