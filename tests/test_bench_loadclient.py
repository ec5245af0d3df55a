"""The C load client of the benchmarks (``benchmarks/c/loadclient.c``) against real servers on 127.0.0.1.

It must speak WebSocket properly (upgrade with the accept checked, 7-, 16- and 64-bit
lengths, pings answered, a server's close answered), print the Go client's stdout
protocol and JSON, refuse permessage-deflate with exit status 2, and ``ws_echo.py``
must use it by default and say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import c_build  # noqa: E402
import go_build  # noqa: E402

CAN_HAVE_CC = c_build.find_cc(install=False) is not None or (hasattr(os, "geteuid") and os.geteuid() == 0)
pytestmark = pytest.mark.skipif(not CAN_HAVE_CC, reason="no C compiler and not root to install gcc")
LINE_TIMEOUT = 20.0  # seconds for one line of the client's protocol: it dials 20 connections on loopback


@pytest.fixture(scope="module")
def loadclient() -> str:
    return str(c_build.build("loadclient"))


@contextlib.asynccontextmanager
async def echo_server(
    handler: Callable[[ServerConnection], Awaitable[None]] | None = None,
) -> AsyncIterator[int]:
    """A ``websockets`` server on 127.0.0.1 (by default echoing every message); yields its port."""

    async def echo(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for msg in ws:
                await ws.send(msg)

    async with serve(handler or echo, "127.0.0.1", 0, max_size=1 << 20, compression=None) as server:
        yield server.sockets[0].getsockname()[1]


async def run_client(cmd: list[str], timeout: float = 30.0) -> tuple[list[str], str, int]:
    """Run the client to its end; returns its stdout lines, its stderr and its exit status."""
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return out.decode().splitlines(), err.decode(), proc.returncode


def load_cmd(binary: str, port: int, *extra: str) -> list[str]:
    return [binary, f"-url=ws://127.0.0.1:{port}/ws", "-deadline=60", *extra]


@pytest.mark.parametrize(
    ("size", "flags", "frame_bytes"),
    [
        (64, ["-conns=20", "-inflight=4"], 2 + 4 + 64),  # 7-bit length, text
        (4096, ["-conns", "5", "-inflight", "8", "-binary"], 4 + 4 + 4096),  # 16-bit length, Go-style separate values
        (70_000, ["--conns=2", "--inflight=2", "--binary=true"], 10 + 4 + 70_000),  # 64-bit length, --flags
    ],
)
async def test_c_client_measures_an_echo_server_with_the_go_clients_protocol(
    loadclient: str, size: int, flags: list[str], frame_bytes: int
) -> None:
    async with echo_server() as port:
        cmd = load_cmd(loadclient, port, *flags, f"-size={size}", "-warmup=0.2", "-duration=0.4", "-deflate=false")
        lines, err, status = await run_client(cmd)
    assert status == 0, err
    assert lines[0].startswith("connected ") and len(lines[0].split()) == 3, lines
    assert lines[1:3] == ["start", "end"], lines
    result = json.loads(lines[3])
    assert result["msgs"] > 0 and result["rate"] > 0, result
    assert result["wrong_length"] == 0 and result["compressed"] == 0 and result["unexpected"] == 0, result
    assert result["closed"] == 0 and result["lost"] == 0, result
    assert result["frame_bytes"] == frame_bytes
    assert 0 < result["p50_us"] <= result["p99_us"], result
    assert 0.3 < result["seconds"] < 2.0 and result["cpu"] > 0, result
    assert result["binary"] is (size != 64) and result["deflate"] is False


async def test_c_client_answers_pings_with_their_payload(loadclient: str) -> None:
    pongs: list[float] = []

    async def ping_then_echo(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            waiter = await ws.ping(b"are you there")  # answered only if the pong carries this payload
            pongs.append(await asyncio.wait_for(waiter, LINE_TIMEOUT))
            async for msg in ws:
                await ws.send(msg)

    async with echo_server(ping_then_echo) as port:
        lines, err, status = await run_client(load_cmd(loadclient, port, "-conns=3", "-warmup=0.2", "-duration=0.3"))
    assert status == 0, err
    assert len(pongs) == 3
    assert json.loads(lines[-1])["msgs"] > 0


async def test_a_close_from_the_server_ends_the_c_client_cleanly(loadclient: str) -> None:
    """The server closes every connection after 50 echoes: the client answers each close with the
    server's code, counts them, and ends its window at once (not after -duration) with exit 0."""
    answered: list[int | None] = []

    async def echo_50_then_close(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            for _ in range(50):
                await ws.send(await ws.recv())
        await ws.close(1001, "going away")  # returns once the client's close frame came (or after a timeout)
        rcvd = ws.protocol.close_rcvd  # the close frame the client sent back
        answered.append(rcvd.code if rcvd is not None else None)

    async with echo_server(echo_50_then_close) as port:
        cmd = load_cmd(loadclient, port, "-conns=10", "-inflight=2", "-warmup=0.1", "-duration=120")
        lines, err, status = await run_client(cmd, timeout=30)  # far less than -duration
    assert status == 0, err
    assert lines[1:3] == ["start", "end"], lines
    result = json.loads(lines[3])
    assert result["closed"] == 10 and result["lost"] == 0, result
    assert result["wrong_length"] == 0
    assert answered == [1001] * 10  # every close was answered with a close frame carrying the code


async def test_c_client_idle_holds_connections_until_stdin_closes(loadclient: str) -> None:
    open_now: set[ServerConnection] = set()
    all_open, all_closed = asyncio.Event(), asyncio.Event()

    async def hold(ws: ServerConnection) -> None:
        open_now.add(ws)
        if len(open_now) == 7:
            all_open.set()
        try:
            await ws.wait_closed()
        finally:
            open_now.discard(ws)
            if not open_now:
                all_closed.set()

    async with echo_server(hold) as port:
        cmd = load_cmd(loadclient, port, "-idle", "-conns=7", "-hold=60")
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            assert proc.stdout is not None and proc.stdin is not None
            first = await asyncio.wait_for(proc.stdout.readline(), LINE_TIMEOUT)
            assert first.startswith(b"connected 7 "), first
            assert await asyncio.wait_for(proc.stdout.readline(), LINE_TIMEOUT) == b"ready\n"
            await asyncio.wait_for(all_open.wait(), LINE_TIMEOUT)
            assert not all_closed.is_set()  # held
            proc.stdin.close()  # EOF on stdin releases them
            assert await asyncio.wait_for(proc.wait(), LINE_TIMEOUT) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await asyncio.wait_for(all_closed.wait(), LINE_TIMEOUT)  # the server saw every connection close


async def test_c_client_refuses_an_upgrade_with_a_wrong_accept(loadclient: str) -> None:
    async def wrong_accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"  # RFC 6455's example: not for our key
        )
        await writer.drain()
        await reader.read()  # until the client hangs up
        writer.close()

    server = await asyncio.start_server(wrong_accept, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        lines, err, status = await run_client(load_cmd(loadclient, port, "-conns=1"))
    assert status == 1 and lines == []
    assert "Sec-WebSocket-Accept" in err


@pytest.mark.parametrize("flag", ["-deflate", "--deflate", "-deflate=true"])
def test_c_client_refuses_permessage_deflate_with_exit_2(loadclient: str, flag: str) -> None:
    done = subprocess.run([loadclient, flag, "-url=ws://127.0.0.1:9/ws"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "permessage-deflate" in done.stderr and "Go client" in done.stderr
    assert done.stdout == ""


def test_c_client_refuses_an_unknown_flag_with_exit_2(loadclient: str) -> None:
    done = subprocess.run([loadclient, "-conections=5"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "flag provided but not defined: -conections=5" in done.stderr


def test_ws_echo_drives_its_workloads_with_the_c_client_by_default() -> None:
    script = str(ROOT / "benchmarks" / "ws_echo.py")
    cmd = [sys.executable, script, "--part", "servers", "--servers", "ergopy-engine", "--workloads", "1x1,50x16"]
    cmd += ["--rounds", "1", "--seconds", "0.2", "--warmup", "0.1", "--idle", ""]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=True).stdout
    assert "load client: C" in out, out
    for title in ("1 connection x 1 in flight", "50 connections x 16 in flight"):
        table = out[out.index(title) :]
        row = next(line for line in table.splitlines() if line.strip().startswith("ergopy-engine"))
        assert row.split()[-1] == "C", row  # the row says which client measured it
        assert float(row.split()[-2]) > 0  # the client's CPU per message


@pytest.mark.skipif(go_build.find_go(install=False) is None, reason="no Go toolchain: no Go client to fall back on")
def test_ws_echo_falls_back_to_the_go_client_when_the_c_build_fails() -> None:
    script = str(ROOT / "benchmarks" / "ws_echo.py")
    cmd = [sys.executable, script, "--part", "servers", "--servers", "ergopy-engine", "--workloads", "1x1"]
    cmd += ["--rounds", "1", "--seconds", "0.2", "--warmup", "0.1", "--idle", ""]
    env = {**os.environ, "CC": "false"}  # a compiler that fails every build
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=True, env=env)
    assert "the C load client could not be built" in done.stderr and "using the Go load client" in done.stderr
    assert "load client: Go" in done.stdout, done.stdout
    row = next(line for line in done.stdout.splitlines() if line.strip().startswith("ergopy-engine"))
    assert row.split()[-1] == "Go", row
