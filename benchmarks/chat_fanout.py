"""Broadcast fan-out of the chat example: one line to a room of N members, until all have it.

The chat (``ergopy.examples.chat``: a node, the supervision tree, the web server)
runs in this process; N WebSocket clients run in a subprocess (raw asyncio
protocols, uvloop when installed), each process pinned to its own core when
there are two. All clients join one room; then, per round:

* room: one client sends ``{"type": "say"}``; it travels connection -> worker ->
  room process -> ``send_event`` -> one event per worker -> ``send_alias`` to each
  member -> connection -> socket (the chat's real path);
* direct: the baseline, measured on the same N connections in the same run: this
  process calls ``node.send_alias`` N times with one pre-built frame, as a room
  that kept every member's alias would (the time of the bare loop is printed too).

Latency of a client = the moment it read the line minus the moment the line was
sent (``time.monotonic``, one clock for both processes on Linux). Printed per N:
p50 and p99 of per-client latency and the time to the last client, the median
over ``--rounds`` rounds, for both paths and their ratio.

    python benchmarks/chat_fanout.py             # N = 1000 and 5000 (~1 min)
    python benchmarks/chat_fanout.py --quick     # N = 200, a few seconds
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import struct
import subprocess
import sys
import time
from typing import Any

ROUND_TIMEOUT = 30.0  # seconds for every client to get one line; far above any expected figure
SETUP_TIMEOUT = 180.0  # seconds to connect and join N clients
CONNECT_CONCURRENCY = 200  # handshakes in flight: stays under the listen backlog (1024)


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (each client is a file descriptor; the server's too)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pin(cpu: int) -> None:
    if cpu >= 0 and hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


def run(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


# ---- the clients (a subprocess: chat_fanout.py --clients URL N ROOM) ----------------------------


def _frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (an all-zero mask is a valid mask: the payload goes as is)."""
    n = len(payload)
    length = struct.pack("!B", 0x80 | n) if n < 126 else struct.pack("!BH", 0x80 | 126, n)
    return struct.pack("!B", 0x80 | opcode) + length + b"\0\0\0\0" + payload


class _Client(asyncio.Protocol):
    """One WebSocket client: handshake, then unmasked server frames parsed from a buffer."""

    def __init__(self, host: str, join: dict[str, Any], joined: asyncio.Future[None]) -> None:
        self.host = host
        self.join = join
        self.buf = b""
        self.upgraded = False
        self.joined = joined
        self.marker: bytes | None = None
        self.arrived: float | None = None
        self.on_arrival: Any = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        transport.write(
            b"GET /ws HTTP/1.1\r\nHost: " + self.host.encode() + b"\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )

    def send_text(self, data: dict[str, Any]) -> None:
        assert self.transport is not None
        self.transport.write(_frame(0x1, json.dumps(data).encode()))

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buf = self.buf + data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            if b" 101 " not in buf[: buf.find(b"\r\n")]:
                raise ConnectionError(f"handshake refused: {buf[:end]!r}")
            self.upgraded = True
            buf = buf[end + 4 :]
            self.send_text(self.join)
        pos = 0
        while len(buf) - pos >= 2:
            opcode = buf[pos] & 0x0F
            n = buf[pos + 1] & 0x7F
            start = pos + 2
            if n == 126:
                if len(buf) - pos < 4:
                    break
                (n,) = struct.unpack_from("!H", buf, pos + 2)
                start = pos + 4
            elif n == 127:
                if len(buf) - pos < 10:
                    break
                (n,) = struct.unpack_from("!Q", buf, pos + 2)
                start = pos + 10
            if len(buf) < start + n:
                break
            self._on_frame(opcode, buf[start : start + n], now)
            pos = start + n
        self.buf = buf[pos:]

    def _on_frame(self, opcode: int, payload: bytes, now: float) -> None:
        if opcode == 0x9 and self.transport is not None:
            self.transport.write(_frame(0xA, payload))  # keepalive ping
        elif opcode == 0x1:
            if self.marker is not None and self.arrived is None and self.marker in payload:
                self.arrived = now
                self.on_arrival()
            elif not self.joined.done() and b'"type":"joined"' in payload:
                self.joined.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.joined.done():
            self.joined.set_exception(ConnectionError(f"connection lost before joining: {exc}"))


class _Countdown:
    """Completes ``done`` when called ``n`` times (once per client that got the line)."""

    def __init__(self, n: int, done: asyncio.Future[None]) -> None:
        self.left, self.done = n, done

    def __call__(self) -> None:
        self.left -= 1
        if self.left == 0 and not self.done.done():
            self.done.set_result(None)


async def clients_main(url: str, n: int, room: str) -> None:
    """Connect and join N clients, then obey ``arm``/``quit`` lines on stdin; answer on stdout."""
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    loop = asyncio.get_running_loop()
    clients: list[_Client] = []
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def connect(i: int) -> None:
        async with gate:
            joined: asyncio.Future[None] = loop.create_future()
            join = {"type": "join", "nick": f"u{i}", "room": room}
            _, c = await loop.create_connection(lambda: _Client(host_port, join, joined), host, int(port))
            await joined
            clients.append(c)

    async with asyncio.timeout(SETUP_TIMEOUT):
        await asyncio.gather(*(connect(i) for i in range(n)))
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("ready", flush=True)
    while line := (await reader.readline()).decode().strip():
        cmd, *rest = line.split()
        if cmd == "quit":
            break
        marker, sender = rest[0], rest[1] == "say"
        done: asyncio.Future[None] = loop.create_future()
        arrived = _Countdown(len(clients), done)
        for c in clients:
            c.marker, c.arrived, c.on_arrival = f'"text":"{marker}"'.encode(), None, arrived
        t0 = None
        if sender:
            t0 = time.monotonic()
            clients[0].send_text({"type": "say", "text": marker})
        else:
            print("armed", flush=True)
        try:
            async with asyncio.timeout(ROUND_TIMEOUT):
                await done
        except TimeoutError:
            pass
        times = [c.arrived for c in clients if c.arrived is not None]
        print(json.dumps({"t0": t0, "times": times, "missing": len(clients) - len(times)}), flush=True)
    for c in clients:
        if c.transport is not None:
            c.transport.close()


# ---- the server side and the report (this process) ----------------------------------------------


def _summary(t0: float, times: list[float]) -> tuple[float, float, float]:
    lat = sorted(t - t0 for t in times)
    p50 = lat[len(lat) // 2]
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return p50 * 1e3, p99 * 1e3, lat[-1] * 1e3


async def measure(node: Any, url: str, n: int, rounds: int, workers: int, client_cpu: int) -> dict[str, Any]:
    from ergopy.examples.chat import protocol
    from ergopy.meta import websocket

    room = f"bench{n}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, __file__, "--clients", url, str(n), room, "--client-cpu", str(client_cpu)]
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, limit=1 << 24
    )
    assert proc.stdin is not None and proc.stdout is not None
    results: dict[str, list[tuple[float, float, float]]] = {"room": [], "direct": []}
    loop_times: list[float] = []
    try:
        t_setup = time.monotonic()
        async with asyncio.timeout(SETUP_TIMEOUT):
            ready = (await proc.stdout.readline()).decode().strip()
        if ready != "ready":
            raise RuntimeError(f"the clients did not start: {ready!r}")
        setup = time.monotonic() - t_setup
        aliases = []
        for i in range(1, workers + 1):
            aliases += await node.call(f"chat_worker{i}", ("members", room))
        if len(aliases) != n:
            raise RuntimeError(f"{len(aliases)} members in room {room}, expected {n}")
        for r in range(rounds):
            for mode in ("room", "direct"):
                marker = f"{mode}-{r}-{time.monotonic_ns()}"
                proc.stdin.write(f"arm {marker} {'say' if mode == 'room' else 'wait'}\n".encode())
                await proc.stdin.drain()
                t0 = None
                if mode == "direct":
                    armed = (await proc.stdout.readline()).decode().strip()
                    assert armed == "armed", armed
                    frame = websocket.Message(body=protocol.encode({"type": "direct", "text": marker}))
                    t0 = time.monotonic()
                    for alias in aliases:
                        node.send_alias(alias, frame)
                    loop_times.append(time.monotonic() - t0)
                result = json.loads(await proc.stdout.readline())
                if result["missing"]:
                    raise RuntimeError(f"{result['missing']} of {n} clients did not get the {mode} line")
                results[mode].append(_summary(result["t0"] if t0 is None else t0, result["times"]))
        proc.stdin.write(b"quit\n")
        await proc.stdin.drain()
        async with asyncio.timeout(30):
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return {"n": n, "setup": setup, "results": results, "loop": statistics.median(loop_times)}


def report(m: dict[str, Any]) -> None:
    n = m["n"]
    print(f"\nN = {n} members in one room (setup: connect + join in {m['setup']:.1f} s)")
    print(f"  {'path':<34} {'p50 ms':>8} {'p99 ms':>8} {'last ms':>8} {'best last':>10}")
    med = {}
    for mode, label in (("room", "room: say -> send_event -> workers"), ("direct", "direct: N x node.send_alias")):
        rows = m["results"][mode]
        p50, p99, last = (statistics.median(col) for col in zip(*rows, strict=True))
        med[mode] = last
        print(f"  {label:<34} {p50:8.2f} {p99:8.2f} {last:8.2f} {min(r[2] for r in rows):10.2f}")
    loop_ms = m["loop"] * 1e3
    print(f"  bare loop of {n} send_alias calls: {loop_ms:.2f} ms ({m['loop'] / n * 1e6:.2f} µs each)")
    print(f"  time to last, room / direct: {med['room'] / med['direct']:.2f}x")


async def server_main(args: argparse.Namespace) -> None:
    import ergopy
    from ergopy.examples.chat import ChatOptions, start_chat

    node = await ergopy.start_node("fanout@localhost")
    try:
        chat = await start_chat(node, ChatOptions(host="127.0.0.1", port=0, workers=args.workers))
        for n in args.n:
            report(await measure(node, chat.ws_url, n, args.rounds, args.workers, args.client_cpu))
    finally:
        await node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 5000])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="N = 200, 3 rounds")
    parser.add_argument("--server-cpu", type=int, default=0, help="-1: do not pin")
    parser.add_argument("--client-cpu", type=int, default=1, help="-1: do not pin")
    parser.add_argument("--clients", nargs=3, metavar=("URL", "N", "ROOM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    fds = raise_fd_limit()
    if args.clients:
        pin(args.client_cpu)
        url, n, room = args.clients
        run(clients_main(url, int(n), room))
        return
    if args.quick:
        args.n, args.rounds = [200], 3
    need = 2 * max(args.n) + 100  # both ends of every connection may share this machine's limit
    if fds < need:
        sys.exit(f"RLIMIT_NOFILE is {fds}; N={max(args.n)} needs about {need}: raise the hard limit (ulimit -Hn)")
    pin(args.server_cpu)
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    print(
        f"chat fan-out: python {sys.version.split()[0]}, loop={loop}, workers={args.workers}, "
        f"rounds={args.rounds}, cpus: server {args.server_cpu}, clients {args.client_cpu}, fd limit {fds}"
    )
    run(server_main(args))


if __name__ == "__main__":
    main()
